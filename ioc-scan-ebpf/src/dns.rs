//! DNS over UDP, per packet (the fallback of [`crate::dns_data_ready`],
//! for kernels where its BTF tracepoint cannot be used): copy queries going
//! out (destination port 53) and answers coming in (source port 53) to
//! user space, which parses them.
//!
//! Attach points: `cgroup_skb/egress` and `cgroup_skb/ingress` on the
//! cgroup given by `--cgroup` (BPF UAPI, `BPF_CGROUP_INET_EGRESS` /
//! `_INGRESS`, stable since 4.10). They see every packet of the sockets in
//! the cgroup, starting at the IP header, and always let it pass: they only
//! observe. Taking queries at egress and answers at ingress reports each
//! message once, from the point of view of the process in the cgroup. The
//! cost is the kernel's cgroup BPF call on every packet of the cgroup, even
//! those that end at the first check.

use aya_ebpf::{helpers::generated, macros::cgroup_skb, programs::SkBuffContext};
use ioc_scan_common::{DNS_INGRESS, DNS_IPV6, DNS_OWNER_KNOWN, DNS_PAYLOAD_LEN, DNS_TRUNCATED};

use crate::dns_event::{self, DnsHeader};
use crate::maps::DNS_SOCKETS;

const PASS: i32 = 1;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_UDP: u8 = 17;
const DNS_PORT: u16 = 53;

#[cgroup_skb(egress)]
pub fn dns_egress(ctx: SkBuffContext) -> i32 {
    match try_dns(&ctx, false) {
        Ok(()) | Err(_) => PASS,
    }
}

#[cgroup_skb(ingress)]
pub fn dns_ingress(ctx: SkBuffContext) -> i32 {
    match try_dns(&ctx, true) {
        Ok(()) | Err(_) => PASS,
    }
}

fn try_dns(ctx: &SkBuffContext, ingress: bool) -> Result<(), i64> {
    let skb = ctx.skb.skb;
    // Fast path for every other packet, without a helper call: the
    // socket's own ports. A connected socket whose peer is not port 53 (and
    // that is not itself port 53) carries no DNS; unconnected sockets (peer
    // port 0) go on to the packet headers.
    let local = ctx.skb.local_port();
    let remote = ctx.skb.remote_port();
    // remote_port holds the big-endian port, shifted up 16 bits on some kernels.
    let remote = u16::from_be(if remote > 0xffff { remote >> 16 } else { remote } as u16);
    if local != u32::from(DNS_PORT) && remote != DNS_PORT && remote != 0 {
        return Ok(());
    }
    // SAFETY: the context the kernel passed; the verifier checks the access.
    let protocol = u16::from_be(unsafe { (*skb).protocol } as u16);
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    let (l4, v6) = match protocol {
        ETH_P_IP => {
            let version_ihl: u8 = ctx.load(0)?;
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            // Fragments (offset or more-fragments set) carry no usable UDP header.
            let frag: u16 = ctx.load(6)?;
            if version_ihl >> 4 != 4 || ihl < 20 || u16::from_be(frag) & 0x3fff != 0 {
                return Ok(());
            }
            if ctx.load::<u8>(9)? != IPPROTO_UDP {
                return Ok(());
            }
            let s: [u8; 4] = ctx.load(12)?;
            let d: [u8; 4] = ctx.load(16)?;
            src[..4].copy_from_slice(&s);
            dst[..4].copy_from_slice(&d);
            (ihl, false)
        }
        ETH_P_IPV6 => {
            // Only a UDP header right after the fixed header (no extension headers).
            if ctx.load::<u8>(6)? != IPPROTO_UDP {
                return Ok(());
            }
            src = ctx.load(8)?;
            dst = ctx.load(24)?;
            (40, true)
        }
        _ => return Ok(()),
    };
    let src_port = u16::from_be(ctx.load::<u16>(l4)?);
    let dst_port = u16::from_be(ctx.load::<u16>(l4 + 2)?);
    if (ingress && src_port != DNS_PORT) || (!ingress && dst_port != DNS_PORT) {
        return Ok(());
    }

    let payload_at = l4 + 8;
    let total = ctx.len() as usize;
    if total <= payload_at {
        return Ok(());
    }
    let mut flags = if ingress { DNS_INGRESS } else { 0 } | if v6 { DNS_IPV6 } else { 0 };
    let mut n = total - payload_at;
    if n > DNS_PAYLOAD_LEN {
        n = DNS_PAYLOAD_LEN;
        flags |= DNS_TRUNCATED;
    }

    // SAFETY: the helper takes this program type's context.
    let cookie = unsafe { generated::bpf_get_socket_cookie(skb.cast()) };
    // SAFETY: a value the lookup returned, copied out at once.
    let owner = unsafe { DNS_SOCKETS.get(&cookie) }.copied();

    let mut pid = 0;
    if let Some(owner) = owner {
        flags |= DNS_OWNER_KNOWN;
        pid = owner.pid;
    }
    let header = DnsHeader {
        flags,
        pid,
        src_port,
        dst_port,
        src,
        dst,
    };
    // SAFETY: the helper takes this program type's context.
    dns_event::submit(&header, n as u64, |to, n| unsafe {
        generated::bpf_skb_load_bytes(skb.cast(), payload_at as u32, to.cast(), n)
    });
    Ok(())
}
