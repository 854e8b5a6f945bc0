//! connect(2) on IPv4/IPv6 sockets: refuse destinations on the block list
//! (the caller gets EPERM), report UDP peers (TCP is reported by the state
//! tracepoint).
//!
//! Attach points: `cgroup/connect4` and `cgroup/connect6` on the cgroup
//! given by `--cgroup` (default: the cgroup v2 root). Cgroup sock_addr
//! hooks are BPF UAPI (`BPF_CGROUP_INET4_CONNECT`), stable since 4.17, and
//! run in the connecting process's context.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use ioc_scan_common::CONN_FROM_CONNECT;

use crate::sock_addr::{on_sock_addr, ALLOW};

#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    // On an internal error, let the connection through (fail open).
    on_sock_addr(&ctx, false, CONN_FROM_CONNECT).unwrap_or(ALLOW)
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    on_sock_addr(&ctx, true, CONN_FROM_CONNECT).unwrap_or(ALLOW)
}
