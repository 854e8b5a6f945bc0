//! ioc-scan: an eBPF-assisted indicator-of-compromise scanner for Linux.
//!
//! Data flows one way:
//! [`openioc`] (XML) → [`indicator`] (model) → [`eval`] (compiled matchers) ←
//! [`collect`] (files, /proc, eBPF observations) → verdicts → [`respond`] →
//! [`store`] → CLI / console / agent.

pub mod agent;
pub mod console;
pub mod duration;
pub mod collect;
pub mod eval;
pub mod indicator;
pub mod openioc;
pub mod respond;
pub mod store;
pub mod terms;
pub mod scan;
