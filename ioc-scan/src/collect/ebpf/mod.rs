//! Kernel sensors and enforcement through eBPF: load the embedded programs
//! ([`loader`]), read their events from the ring buffer ([`reader`],
//! [`events`]), and turn IOCs into what the kernel can enforce on its own
//! ([`rules`]); kills the kernel cannot decide go through
//! [`crate::respond::terminate`], under [`crate::respond::protect`]'s rule.
//! [`live`] puts them together: live monitoring with the IOC evaluator.
//!
//! Sensors: exec and exit (tracepoints `sched/sched_process_exec`,
//! `sched/sched_process_exit`), TCP connections (`sock/inet_sock_set_state`),
//! UDP peers and the block list (`cgroup/connect4|6`, `cgroup/sendmsg4|6`),
//! DNS answers as they reach the asking socket (`sock/sk_data_ready`, or
//! per packet with `cgroup_skb/egress|ingress` where that cannot load;
//! parsed by [`dns_wire`]).

pub mod btf;
pub mod dns_wire;
pub mod event_item;
pub mod events;
pub mod live;
pub mod loader;
pub mod object;
pub mod observe;
pub mod reader;
pub mod rules;

pub use events::Event;
pub use loader::{Kernel, LoadError, Options, ProgramStatus, Sensors, Settings};
