//! sendmsg(2)/sendto(2) on unconnected UDP sockets: refuse destinations on
//! the block list, report each (socket, destination) once, and remember the
//! socket's owner for the DNS programs.
//!
//! Attach points: `cgroup/sendmsg4` and `cgroup/sendmsg6` (BPF UAPI,
//! `BPF_CGROUP_UDP4_SENDMSG`, stable since 4.18), process context. They
//! run only for sends that name a destination (connected sockets skip
//! them: their destination was checked at connect).

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use ioc_scan_common::CONN_FROM_SENDMSG;

use crate::sock_addr::{on_sock_addr, ALLOW};

#[cgroup_sock_addr(sendmsg4)]
pub fn sendmsg4(ctx: SockAddrContext) -> i32 {
    on_sock_addr(&ctx, false, CONN_FROM_SENDMSG).unwrap_or(ALLOW)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn sendmsg6(ctx: SockAddrContext) -> i32 {
    on_sock_addr(&ctx, true, CONN_FROM_SENDMSG).unwrap_or(ALLOW)
}
