//! TCP connections: outgoing (SYN_SENT, then ESTABLISHED with the source
//! port), incoming (ESTABLISHED from SYN_RECV) and listening sockets.
//!
//! Attach point: `sock/inet_sock_set_state` (stable tracing ABI, the one
//! tcplife/tcpconnect-style tools use), as a BTF tracepoint (`tp_btf`) when
//! user space found the socket's field offsets in the kernel's BTF, else as
//! a classic tracepoint. The BTF one costs far less on the path of every
//! connection: the kernel builds no trace record for it, the transitions of
//! no interest (SYN_RECV, FIN_WAIT*, CLOSE..., five of a connection's eight)
//! end after one comparison of an argument, and the socket's fields are
//! plain loads (checked by the verifier against the kernel's BTF) rather
//! than helper calls. SYN_SENT and LISTEN run in the process's context and
//! name the owner; ESTABLISHED runs in softirq context and carries the
//! socket id user space ties back to it.

use aya_ebpf::{
    helpers::generated,
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext, Global,
};
use ioc_scan_common::{
    Config, ConnEvent, SockOffsets, COMM_LEN, CONN_FROM_TCP_STATE, CONN_IPV6, CONN_OWNER_KNOWN, EVENT_CONN, TCP_ESTABLISHED,
    TCP_LISTEN, TCP_SYN_SENT,
};

use crate::maps::{config_ref, count_lost, current_owner, submit_flags, EVENTS};

const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;

/// Set by the loader from the kernel's BTF (read-only data: the verifier
/// sees constants, so each load below is checked against `struct sock`).
#[unsafe(no_mangle)]
static SOCK_OFFSETS: Global<SockOffsets> = Global::new(SockOffsets {
    daddr: 0,
    rcv_saddr: 0,
    dport: 0,
    num: 0,
    family: 0,
    v6_daddr: 0,
    v6_rcv_saddr: 0,
    protocol: 0,
});

/// The transitions user space is told about.
#[inline(always)]
fn wanted(state: u16) -> bool {
    matches!(state, TCP_SYN_SENT | TCP_LISTEN | TCP_ESTABLISHED)
}

/// Arguments `(const struct sock *sk, int oldstate, int newstate)`, the
/// tracepoint's TP_PROTO.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state_btf(ctx: BtfTracePointContext) -> i32 {
    let state = ctx.arg::<u64>(2) as u16;
    if wanted(state) {
        on_btf(&ctx, state);
    }
    0
}

#[inline(always)]
fn on_btf(ctx: &BtfTracePointContext, state: u16) {
    let o = SOCK_OFFSETS.load();
    let sk: *const u8 = ctx.arg(0);
    // SAFETY (every load through `sk`): the tracepoint's socket, typed by
    // BTF; the verifier checks each (constant) offset and size against
    // `struct sock` and turns the load into a fault-safe one.
    if unsafe { field::<u16>(sk, o.protocol) } != IPPROTO_TCP {
        return;
    }
    let v6 = unsafe { field::<u16>(sk, o.family) } == AF_INET6;
    if v6 && o.v6_daddr == 0 {
        return;
    }
    let Some(cfg) = config_ref() else { return };
    // Written in place in the ring buffer: no copy of the event, and no
    // zeroing of a stack buffer first.
    let Some(mut entry) = EVENTS.reserve::<ConnEvent>(0) else {
        count_lost(EVENT_CONN);
        return;
    };
    let ev = entry.as_mut_ptr();
    let owner = matches!(state, TCP_SYN_SENT | TCP_LISTEN);
    // SAFETY: `ev` points to a reserved, writable ConnEvent-sized record
    // (8-byte aligned); every field is written before the submit.
    unsafe {
        (*ev).kind = EVENT_CONN;
        (*ev).flags = CONN_FROM_TCP_STATE | if v6 { CONN_IPV6 } else { 0 } | if owner { CONN_OWNER_KNOWN } else { 0 };
        (*ev).protocol = IPPROTO_TCP;
        (*ev).old_state = ctx.arg::<u64>(1) as u16;
        (*ev).state = state;
        (*ev).local_port = field::<u16>(sk, o.num);
        (*ev).remote_port = u16::from_be(field::<u16>(sk, o.dport));
        // Element by element: LLVM would make a 6-byte zeroing a memset call.
        for i in 0..3 {
            core::ptr::write_volatile(&mut (*ev)._pad[i], 0);
        }
        let (local, remote) = if v6 {
            (
                [field::<u64>(sk, o.v6_rcv_saddr), field::<u64>(sk, o.v6_rcv_saddr + 8)],
                [field::<u64>(sk, o.v6_daddr), field::<u64>(sk, o.v6_daddr + 8)],
            )
        } else {
            (
                [u64::from(field::<u32>(sk, o.rcv_saddr)), 0],
                [u64::from(field::<u32>(sk, o.daddr)), 0],
            )
        };
        // The address fields are 8-byte aligned in the record.
        *(*ev).local_addr.as_mut_ptr().cast::<[u64; 2]>() = local;
        *(*ev).remote_addr.as_mut_ptr().cast::<[u64; 2]>() = remote;
        (*ev).time_ns = generated::bpf_ktime_get_boot_ns();
        (*ev).sock = sk as u64;
        if owner {
            // SYN_SENT and LISTEN run in the owner's context; ESTABLISHED
            // in softirq: user space ties it to the owner by the socket id
            // (no map work here, on the path of every connection).
            let pid_tgid = generated::bpf_get_current_pid_tgid();
            (*ev).pid = (pid_tgid >> 32) as u32;
            (*ev).uid = generated::bpf_get_current_uid_gid() as u32;
            let comm = (*ev).comm.as_mut_ptr();
            if generated::bpf_get_current_comm(comm.cast(), COMM_LEN as u32) != 0 {
                *comm.cast::<[u64; 2]>() = [0, 0];
            }
        } else {
            (*ev).pid = 0;
            (*ev).uid = 0;
            *(*ev).comm.as_mut_ptr().cast::<[u64; 2]>() = [0, 0];
        }
    }
    entry.submit(submit_flags(cfg));
}

/// A `T` at `base + offset`, a plain load.
#[inline(always)]
unsafe fn field<T: Copy>(base: *const u8, offset: u16) -> T {
    // SAFETY: see the caller.
    unsafe { core::ptr::read_volatile(base.add(usize::from(offset)).cast::<T>()) }
}

/// The classic tracepoint record, as its format file publishes it.
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
    if protocol != IPPROTO_TCP || !wanted(state) {
        return Ok(());
    }
    // SAFETY: as above.
    let rec: InetSockSetState = unsafe { ctx.read_at(0) }?;
    let mut ev = new_event(rec.oldstate as u16, state, rec.sport, rec.dport, rec.skaddr);
    if rec.family == AF_INET6 {
        ev.flags |= CONN_IPV6;
        ev.local_addr = rec.saddr_v6;
        ev.remote_addr = rec.daddr_v6;
    } else {
        ev.local_addr[..4].copy_from_slice(&rec.saddr);
        ev.remote_addr[..4].copy_from_slice(&rec.daddr);
    }
    if let Some(cfg) = config_ref() {
        emit(&mut ev, cfg);
    }
    Ok(())
}

#[inline(always)]
fn new_event(old_state: u16, state: u16, local_port: u16, remote_port: u16, sock: u64) -> ConnEvent {
    ConnEvent {
        kind: EVENT_CONN,
        flags: CONN_FROM_TCP_STATE,
        pid: 0,
        uid: 0,
        protocol: IPPROTO_TCP,
        old_state,
        state,
        local_port,
        remote_port,
        _pad: [0; 3],
        local_addr: [0; 16],
        remote_addr: [0; 16],
        // SAFETY: helper without arguments.
        time_ns: unsafe { generated::bpf_ktime_get_boot_ns() },
        sock,
        comm: [0; 16],
    }
}

/// Name the owner where the event runs in its context, and send.
#[inline(always)]
fn emit(ev: &mut ConnEvent, cfg: &Config) {
    // SYN_SENT and LISTEN run in the owner's context; ESTABLISHED in
    // softirq: user space ties it to the owner by the socket id (no map
    // work here, on the path of every connection).
    if matches!(ev.state, TCP_SYN_SENT | TCP_LISTEN) {
        let owner = current_owner();
        ev.flags |= CONN_OWNER_KNOWN;
        ev.pid = owner.pid;
        ev.uid = owner.uid;
        ev.comm = owner.comm;
    }
    if EVENTS.output::<ConnEvent>(ev, submit_flags(cfg)).is_err() {
        count_lost(EVENT_CONN);
    }
}

