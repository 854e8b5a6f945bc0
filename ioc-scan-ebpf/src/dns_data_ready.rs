//! DNS over UDP, at delivery: copy each answer queued on a socket that
//! sent to port 53 to user space, which parses it. The answer repeats the
//! question, so it also tells what was asked (user space reports that as
//! the query); a query that gets no answer is seen only as the socket's
//! UDP connect/send to port 53 (the connect and sendmsg programs).
//!
//! Attach point: `sock/sk_data_ready` (stable tracing ABI; its format is
//! published in tracefs), as a BTF tracepoint (`tp_btf`, argument 0 the
//! `struct sock *`). The kernel fires it from `sock_def_readable` when data
//! is queued on a socket: for UDP once per datagram (or once per batch of
//! datagrams queued together), after the datagram is on the receive queue
//! and before a waiting reader is woken. It replaces per-packet cgroup skb
//! programs ([`crate::dns`], still the fallback where this one cannot load):
//! a loopback TCP connect and close passes about ten packets, each a cgroup
//! skb run, but makes one data-ready call (the listener's new connection),
//! which ends here after one load and comparison (not UDP).
//!
//! A UDP socket is reported only when the cgroup connect / sendmsg programs
//! saw it send to port 53 ([`DNS_SOCKETS`], which also names its owner):
//! that keeps this host-wide tracepoint to the monitored cgroup. The
//! datagram read is the newest on the socket's receive queue, with source
//! port 53. What can be missed, honestly:
//! - a reader already awake on another CPU (non-blocking or busy polling)
//!   may take the datagram between its queueing and this program: then the
//!   queue is empty (nothing reported) or its newest datagram is another;
//! - datagrams queued together in one batch (a burst to one socket) give
//!   one call: only the newest of them is read;
//! - a run the kernel skips because this program is already running on the
//!   CPU (a softirq over a process-context run for a TCP socket) is not
//!   counted as lost: nearly all runs are for sockets that are not DNS;
//! - answers from a port other than 53, or over TCP, are not seen.
//!
//! Only the linear part of the datagram is copied (up to
//! [`DNS_PAYLOAD_LEN`] bytes); longer or partly paged answers are marked
//! truncated.

use aya_ebpf::{helpers::generated, macros::btf_tracepoint, programs::BtfTracePointContext, Global};
use ioc_scan_common::{DnsOffsets, DNS_AT_SOCKET, DNS_INGRESS, DNS_IPV6, DNS_OWNER_KNOWN, DNS_PAYLOAD_LEN, DNS_TRUNCATED};

use crate::dns_event::{self, DnsHeader};
use crate::maps::DNS_SOCKETS;

const IPPROTO_UDP: u16 = 17;
const DNS_PORT: u16 = 53;
/// UDP header bytes.
const UDP_HLEN: u64 = 8;
/// The IP header bytes read: the IPv6 fixed header (IPv4 needs 20).
const IP_HLEN: usize = 40;

/// Set by the loader from the kernel's BTF (read-only data: the verifier
/// sees constants, so each load below is checked against the kernel's
/// `struct sock` and `struct sk_buff`).
#[unsafe(no_mangle)]
static DNS_OFFSETS: Global<DnsOffsets> = Global::new(DnsOffsets {
    protocol: 0,
    receive_queue: 0,
    receive_queue_prev: 0,
    skb_head: 0,
    skb_data: 0,
    skb_len: 0,
    skb_data_len: 0,
    skb_transport_header: 0,
    skb_network_header: 0,
    _pad: 0,
});

/// Argument `(struct sock *sk)`, the tracepoint's TP_PROTO.
#[btf_tracepoint(function = "sk_data_ready")]
pub fn dns_data_ready(ctx: BtfTracePointContext) -> i32 {
    match try_dns_data_ready(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

#[inline(always)]
fn try_dns_data_ready(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let o = DNS_OFFSETS.load();
    let sk: *const u8 = ctx.arg(0);
    // SAFETY (every `field` load through `sk`): the tracepoint's socket,
    // typed by BTF; the verifier checks each (constant) offset and size
    // against `struct sock` and makes the load fault-safe.
    // Everything but UDP (TCP above all) ends here.
    if unsafe { field::<u16>(sk, o.protocol) } != IPPROTO_UDP {
        return Ok(());
    }
    // SAFETY: the helper takes a socket pointer in tracing programs (5.12+).
    let cookie = unsafe { generated::bpf_get_socket_cookie(sk as *mut _) };
    // SAFETY: a value the lookup returned, copied out at once.
    let Some(owner_pid) = (unsafe { DNS_SOCKETS.get(&cookie) }).map(|o| o.pid) else {
        return Ok(());
    };

    // The newest datagram: the receive queue's last skb, unless the queue
    // is empty (its last pointer then points back to the queue head).
    let skb = unsafe { field::<*const u8>(sk, o.receive_queue_prev) };
    let queue_head = sk.wrapping_add(usize::from(o.receive_queue));
    if skb.is_null() || skb == queue_head {
        return Ok(());
    }
    // SAFETY (loads through `skb`): typed by BTF as `struct sk_buff *`, read
    // with fault-safe loads; the reader may free it meanwhile (see the
    // module docs), then what is read is checked like any datagram.
    let (head, data, len, data_len, transport, network) = unsafe {
        (
            field::<u64>(skb, o.skb_head),
            field::<u64>(skb, o.skb_data),
            field::<u32>(skb, o.skb_len),
            field::<u32>(skb, o.skb_data_len),
            field::<u16>(skb, o.skb_transport_header),
            field::<u16>(skb, o.skb_network_header),
        )
    };
    let udp_at = head + u64::from(transport);
    // SAFETY: a fault-safe kernel read into a stack value.
    let udp: [u8; 8] = unsafe { aya_ebpf::helpers::bpf_probe_read_kernel(udp_at as *const [u8; 8]) }.map_err(i64::from)?;
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    if src_port != DNS_PORT {
        return Ok(());
    }
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    // SAFETY: as above. 40 bytes from the IP header stay inside the skb's
    // buffer (its shared info follows the data) even for a short IPv4 one.
    let ip: [u8; IP_HLEN] =
        unsafe { aya_ebpf::helpers::bpf_probe_read_kernel((head + u64::from(network)) as *const [u8; IP_HLEN]) }
            .map_err(i64::from)?;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    let v6 = match ip[0] >> 4 {
        4 => {
            src[..4].copy_from_slice(&ip[12..16]);
            dst[..4].copy_from_slice(&ip[16..20]);
            false
        }
        6 => {
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            true
        }
        _ => return Ok(()),
    };

    // The payload runs from after the UDP header to the end of the data
    // (`data + len`, whether or not UDP already pulled its header); the
    // last `data_len` bytes of it are in pages, not in the linear buffer.
    let payload_at = udp_at + UDP_HLEN;
    let end = data + u64::from(len);
    if end <= payload_at {
        return Ok(());
    }
    let total = end - payload_at;
    let linear = total.saturating_sub(u64::from(data_len));
    let mut flags = DNS_INGRESS | DNS_AT_SOCKET | DNS_OWNER_KNOWN | if v6 { DNS_IPV6 } else { 0 };
    let mut n = linear;
    if n > DNS_PAYLOAD_LEN as u64 {
        n = DNS_PAYLOAD_LEN as u64;
    }
    if total > n {
        flags |= DNS_TRUNCATED;
    }

    let header = DnsHeader {
        flags,
        pid: owner_pid,
        src_port,
        dst_port,
        src,
        dst,
    };
    // SAFETY: a fault-safe kernel read into the record's payload.
    dns_event::submit(&header, n, |to, n| unsafe {
        generated::bpf_probe_read_kernel(to.cast(), n, payload_at as *const _)
    });
    Ok(())
}

/// A `T` at `base + offset`, a plain load.
#[inline(always)]
unsafe fn field<T: Copy>(base: *const u8, offset: u16) -> T {
    // SAFETY: see the callers.
    unsafe { core::ptr::read_volatile(base.add(usize::from(offset)).cast::<T>()) }
}
