//! Diagnostics of the compiler: the one [`Diagnostic`] type of the
//! reader ([`crate::openioc::Diagnostic`]), with [`Stage::Compile`]. A
//! diagnostic never stops the IOC from loading: the item concerned never
//! matches and the rest of the IOC is evaluated (an IOC over the compile
//! budget is not evaluated at all).

pub use crate::openioc::{Diagnostic, Severity, Stage};
