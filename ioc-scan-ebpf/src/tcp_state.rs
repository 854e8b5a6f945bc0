//! TCP connections: outgoing (SYN_SENT, then ESTABLISHED with the source
//! port), incoming (ESTABLISHED from SYN_RECV) and listening sockets.
//!
//! Attach point: tracepoint `sock/inet_sock_set_state` (stable tracing ABI,
//! the one tcplife/tcpconnect-style tools use). SYN_SENT and LISTEN run in
//! the process's context and name the owner; ESTABLISHED runs in softirq
//! context and carries the socket id user space ties back to it.

use aya_ebpf::{helpers::generated, macros::tracepoint, programs::TracePointContext, EbpfContext};
use ioc_scan_common::{
    ConnEvent, SockOwner, CONN_FROM_TCP_STATE, CONN_IPV6, CONN_OWNER_KNOWN, EVENT_CONN, TCP_ESTABLISHED, TCP_LISTEN, TCP_SYN_SENT,
};

use crate::maps::{config, count_lost, current_owner, submit_flags, EVENTS};

const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;

/// The tracepoint record, as its format file publishes it.
#[repr(C)]
struct InetSockSetState {
    common: u64,
    skaddr: u64,
    oldstate: i32,
    newstate: i32,
    sport: u16,
    dport: u16,
    family: u16,
    protocol: u16,
    saddr: [u8; 4],
    daddr: [u8; 4],
    saddr_v6: [u8; 16],
    daddr_v6: [u8; 16],
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    match try_inet_sock_set_state(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_inet_sock_set_state(ctx: &TracePointContext) -> Result<(), i32> {
    // Most transitions are of no interest: decide on the state first, with
    // direct reads of the record (cheaper than a probe_read of all of it).
    let raw = ctx.as_ptr() as *const InetSockSetState;
    // SAFETY: a tracepoint program may read its record directly; the
    // layout is the published tracepoint format.
    let (newstate, protocol) = unsafe { ((*raw).newstate, (*raw).protocol) };
    let state = newstate as u16;
    if protocol != IPPROTO_TCP || !matches!(state, TCP_SYN_SENT | TCP_LISTEN | TCP_ESTABLISHED) {
        return Ok(());
    }
    // SAFETY: as above.
    let rec: InetSockSetState = unsafe { ctx.read_at(0) }?;
    // SYN_SENT and LISTEN run in the owner's context; ESTABLISHED in
    // softirq: user space ties it to the owner by the socket id (no map
    // work here, on the path of every connection).
    let owner: Option<SockOwner> = match state {
        TCP_SYN_SENT | TCP_LISTEN => Some(current_owner()),
        _ => None,
    };

    let mut ev = ConnEvent {
        kind: EVENT_CONN,
        flags: CONN_FROM_TCP_STATE,
        pid: 0,
        uid: 0,
        protocol: IPPROTO_TCP,
        old_state: rec.oldstate as u16,
        state,
        local_port: rec.sport,
        remote_port: rec.dport,
        _pad: [0; 3],
        local_addr: [0; 16],
        remote_addr: [0; 16],
        // SAFETY: helper without arguments.
        time_ns: unsafe { generated::bpf_ktime_get_boot_ns() },
        sock: rec.skaddr,
        comm: [0; 16],
    };
    if rec.family == AF_INET6 {
        ev.flags |= CONN_IPV6;
        ev.local_addr = rec.saddr_v6;
        ev.remote_addr = rec.daddr_v6;
    } else {
        ev.local_addr[..4].copy_from_slice(&rec.saddr);
        ev.remote_addr[..4].copy_from_slice(&rec.daddr);
    }
    if let Some(owner) = owner {
        ev.flags |= CONN_OWNER_KNOWN;
        ev.pid = owner.pid;
        ev.uid = owner.uid;
        ev.comm = owner.comm;
    }
    if EVENTS.output::<ConnEvent>(&ev, submit_flags(&config())).is_err() {
        count_lost(EVENT_CONN);
    }
    Ok(())
}
