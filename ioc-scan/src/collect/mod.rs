//! Collectors: one per kind of object. Each produces
//! [`crate::eval::Observation`]s for evaluation and knows nothing of XML.
//!
//! Host collectors (one module per document, listed in [`host`]) read the
//! host's state under a [`host::HostRoot`].

pub mod dns;
pub mod host;
pub mod port;
pub mod process;
