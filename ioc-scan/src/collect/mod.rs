//! Collectors: one per kind of object. Each produces
//! [`crate::eval::Observation`]s for evaluation and knows nothing of XML.
//!
//! Host collectors (one module per document, listed in [`host`]) read the
//! host's state under a [`host::HostRoot`]; [`coverage`] says which terms
//! they answer and why the others are not. Every read of a host file goes
//! through [`safe_read`] (no FIFO, device or planted symlink; bounded).

pub mod arp;
pub mod coverage;
pub mod dhcp;
pub mod dns;
pub mod ebpf;
pub mod files;
pub mod host;
pub mod login;
pub mod logs;
pub mod module;
pub mod module_sig;
pub mod port;
pub mod process;
pub mod route;
pub mod safe_read;
pub mod shell_history;
pub mod system;
pub mod task;
pub mod user;
pub mod volume;
