//! What the cgroup connect and sendmsg programs share: the block list
//! check, the DNS sockets (with their owner) for the DNS programs, and the
//! UDP report.

use aya_ebpf::{helpers::generated, macros::map, maps::LruHashMap, programs::SockAddrContext, EbpfContext};
use ioc_scan_common::{
    Block4Key, Block6Key, ConnEvent, CONFIG_BLOCK, CONFIG_BLOCK_ANY_ADDR, CONFIG_BLOCK_ANY_PORT, CONFIG_BLOCK_EXACT, CONN_FROM_SENDMSG,
    CONN_IPV6, CONN_OWNER_KNOWN, EVENT_BLOCKED, EVENT_CONN,
};

use crate::maps::{config_ref, count_lost, current_owner, submit_flags, BLOCK_V4, BLOCK_V6, DNS_SOCKETS, EVENTS};

/// Return values of cgroup sock_addr programs.
pub const ALLOW: i32 = 1;
pub const DENY: i32 = 0;

const IPPROTO_UDP: u32 = 17;
const DNS_PORT: u16 = 53;

/// A (socket, destination) already reported for unconnected UDP sends.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UdpDest {
    cookie: u64,
    addr: [u8; 16],
    port: u16,
    _pad: [u16; 3],
}

#[map(name = "UDP_SEEN")]
static UDP_SEEN: LruHashMap<UdpDest, u8> = LruHashMap::with_max_entries(16384, 0);

/// The body of connect4/6 and sendmsg4/6: refuse a listed destination
/// (and report it), remember UDP sockets that talk to port 53 with their
/// owner, report new UDP peers. TCP connects are reported by the TCP state
/// tracepoint.
#[inline(always)]
pub fn on_sock_addr(ctx: &SockAddrContext, v6: bool, from: u32) -> Result<i32, i64> {
    // SAFETY: the context the kernel passed; the verifier checks each field access.
    let sa = unsafe { &*ctx.sock_addr };
    let protocol = sa.protocol;
    let port = u16::from_be(sa.user_port as u16);
    let mut remote = [0u8; 16];
    if v6 {
        remote[0..4].copy_from_slice(&sa.user_ip6[0].to_ne_bytes());
        remote[4..8].copy_from_slice(&sa.user_ip6[1].to_ne_bytes());
        remote[8..12].copy_from_slice(&sa.user_ip6[2].to_ne_bytes());
        remote[12..16].copy_from_slice(&sa.user_ip6[3].to_ne_bytes());
    } else {
        remote[0..4].copy_from_slice(&sa.user_ip4.to_ne_bytes());
    }

    let cfg = config_ref().ok_or(-1i64)?;
    let blocked = cfg.flags & CONFIG_BLOCK != 0 && is_blocked(cfg.flags, &remote, port, v6);
    let udp = protocol == IPPROTO_UDP;
    if !blocked && !udp {
        return Ok(ALLOW);
    }
    let owner = current_owner();
    // SAFETY: the helper takes this program type's context.
    let cookie = unsafe { generated::bpf_get_socket_cookie(ctx.as_ptr()) };
    if udp && port == DNS_PORT {
        let _ = DNS_SOCKETS.insert(&cookie, &owner, 0);
    }
    if !blocked && from == CONN_FROM_SENDMSG {
        let key = UdpDest {
            cookie,
            addr: remote,
            port,
            _pad: [0; 3],
        };
        if UDP_SEEN.get_ptr(&key).is_some() {
            return Ok(ALLOW);
        }
        let _ = UDP_SEEN.insert(&key, &1, 0);
    }

    let kind = if blocked { EVENT_BLOCKED } else { EVENT_CONN };
    let ev = ConnEvent {
        kind,
        flags: from | CONN_OWNER_KNOWN | if v6 { CONN_IPV6 } else { 0 },
        pid: owner.pid,
        uid: owner.uid,
        protocol: protocol as u16,
        old_state: 0,
        state: 0,
        local_port: 0,
        remote_port: port,
        _pad: [0; 3],
        local_addr: [0; 16],
        remote_addr: remote,
        // SAFETY: helper without arguments.
        time_ns: unsafe { generated::bpf_ktime_get_boot_ns() },
        sock: cookie,
        comm: owner.comm,
    };
    if EVENTS.output::<ConnEvent>(&ev, submit_flags(cfg)).is_err() {
        count_lost(kind);
    }
    Ok(if blocked { DENY } else { ALLOW })
}

/// Is (addr, port) on the block list: the exact pair, the address on any
/// port, or the port on any address. An IPv4-mapped IPv6 address is
/// looked up as IPv4. Only the kinds of entry the lists hold (`flags`,
/// `CONFIG_BLOCK_*`) are looked up: one lookup per connect in the usual
/// case of address-only indicators.
#[inline(always)]
fn is_blocked(flags: u32, addr: &[u8; 16], port: u16, v6: bool) -> bool {
    let (exact, any_port, any_addr) = (
        flags & CONFIG_BLOCK_EXACT != 0,
        flags & CONFIG_BLOCK_ANY_PORT != 0,
        flags & CONFIG_BLOCK_ANY_ADDR != 0 && port != 0,
    );
    let mapped = v6 && addr[..10] == [0u8; 10] && addr[10] == 0xff && addr[11] == 0xff;
    if !v6 || mapped {
        let a = if mapped {
            [addr[12], addr[13], addr[14], addr[15]]
        } else {
            [addr[0], addr[1], addr[2], addr[3]]
        };
        let exact_key = Block4Key { addr: a, port, _pad: 0 };
        let any_port_key = Block4Key { addr: a, port: 0, _pad: 0 };
        let any_addr_key = Block4Key {
            addr: [0; 4],
            port,
            _pad: 0,
        };
        return (exact && BLOCK_V4.get_ptr(&exact_key).is_some())
            || (any_port && BLOCK_V4.get_ptr(&any_port_key).is_some())
            || (any_addr && BLOCK_V4.get_ptr(&any_addr_key).is_some());
    }
    let exact_key = Block6Key {
        addr: *addr,
        port,
        _pad: 0,
    };
    let any_port_key = Block6Key {
        addr: *addr,
        port: 0,
        _pad: 0,
    };
    let any_addr_key = Block6Key {
        addr: [0; 16],
        port,
        _pad: 0,
    };
    (exact && BLOCK_V6.get_ptr(&exact_key).is_some())
        || (any_port && BLOCK_V6.get_ptr(&any_port_key).is_some())
        || (any_addr && BLOCK_V6.get_ptr(&any_addr_key).is_some())
}
