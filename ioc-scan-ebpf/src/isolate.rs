//! Network isolation: `cgroup_skb/egress` and `cgroup_skb/ingress` programs
//! that drop every packet of the cgroup's sockets except
//!
//! - loopback: the `lo` interface (ifindex 1 in every network namespace),
//!   127.0.0.0/8 and ::1, and packets whose source is their destination
//!   (a connection to one of the host's own addresses);
//! - peers in the allow lists (LPM tries: the console, named DNS servers);
//! - DHCP / DHCPv6 when asked (the device keeps its address).
//!
//! While isolation is off, or once `CLOCK_BOOTTIME` passes the expiry user
//! space wrote, every packet passes: expiry needs no process to lift it.
//! User space attaches these programs through pinned links, so isolation
//! outlives the ioc-scan process that turned it on.

use aya_ebpf::{
    helpers::generated,
    macros::{cgroup_skb, map},
    maps::{lpm_trie::Key, Array, LpmTrie},
    programs::SkBuffContext,
};
use ioc_scan_common::{IsolateState, ISOLATE_ALLOW_DHCP, ISOLATE_ALLOW_MAX, ISOLATE_ON};

const PASS: i32 = 1;
const DROP: i32 = 0;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_UDP: u8 = 17;
const LOOPBACK_IFINDEX: u32 = 1;

#[map(name = "ISOLATE_STATE")]
static ISOLATE_STATE: Array<IsolateState> = Array::with_max_entries(1, 0);

#[map(name = "ISOLATE_ALLOW_V4")]
static ISOLATE_ALLOW_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(ISOLATE_ALLOW_MAX, 0);

#[map(name = "ISOLATE_ALLOW_V6")]
static ISOLATE_ALLOW_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(ISOLATE_ALLOW_MAX, 0);

#[cgroup_skb(egress)]
pub fn isolate_egress(ctx: SkBuffContext) -> i32 {
    decide(&ctx, false)
}

#[cgroup_skb(ingress)]
pub fn isolate_ingress(ctx: SkBuffContext) -> i32 {
    decide(&ctx, true)
}

#[inline(always)]
fn decide(ctx: &SkBuffContext, ingress: bool) -> i32 {
    let Some(state) = ISOLATE_STATE.get(0) else { return PASS };
    if state.flags & ISOLATE_ON == 0 {
        return PASS;
    }
    // SAFETY: helper without arguments.
    if unsafe { generated::bpf_ktime_get_boot_ns() } >= state.expires_boot_ns {
        return PASS;
    }
    let skb = ctx.skb.skb;
    // SAFETY: the context the kernel passed; the verifier checks each access.
    let (ifindex, protocol) = unsafe { ((*skb).ifindex, u16::from_be((*skb).protocol as u16)) };
    if ifindex == LOOPBACK_IFINDEX {
        return PASS;
    }
    // Anything unreadable is dropped: isolation fails closed.
    match protocol {
        ETH_P_IP => v4(ctx, ingress, state.flags).unwrap_or(DROP),
        ETH_P_IPV6 => v6(ctx, ingress, state.flags).unwrap_or(DROP),
        _ => DROP,
    }
}

#[inline(always)]
fn v4(ctx: &SkBuffContext, ingress: bool, flags: u32) -> Result<i32, i64> {
    let src: [u8; 4] = ctx.load(12)?;
    let dst: [u8; 4] = ctx.load(16)?;
    let peer = if ingress { src } else { dst };
    if peer[0] == 127 || src == dst {
        return Ok(PASS);
    }
    if ISOLATE_ALLOW_V4.get(&Key::new(32, peer)).is_some() {
        return Ok(PASS);
    }
    if flags & ISOLATE_ALLOW_DHCP != 0 && ctx.load::<u8>(9)? == IPPROTO_UDP {
        let version_ihl: u8 = ctx.load(0)?;
        let ihl = usize::from(version_ihl & 0x0f) * 4;
        let frag: u16 = ctx.load(6)?;
        if ihl >= 20 && u16::from_be(frag) & 0x1fff == 0 {
            let sport = u16::from_be(ctx.load::<u16>(ihl)?);
            let dport = u16::from_be(ctx.load::<u16>(ihl + 2)?);
            if (sport == 68 && dport == 67) || (sport == 67 && dport == 68) {
                return Ok(PASS);
            }
        }
    }
    Ok(DROP)
}

#[inline(always)]
fn v6(ctx: &SkBuffContext, ingress: bool, flags: u32) -> Result<i32, i64> {
    let src: [u8; 16] = ctx.load(8)?;
    let dst: [u8; 16] = ctx.load(24)?;
    let peer = if ingress { src } else { dst };
    let loopback = peer[..15] == [0u8; 15] && peer[15] == 1;
    if loopback || src == dst {
        return Ok(PASS);
    }
    if ISOLATE_ALLOW_V6.get(&Key::new(128, peer)).is_some() {
        return Ok(PASS);
    }
    // DHCPv6: only a UDP header right after the fixed header.
    if flags & ISOLATE_ALLOW_DHCP != 0 && ctx.load::<u8>(6)? == IPPROTO_UDP {
        let sport = u16::from_be(ctx.load::<u16>(40)?);
        let dport = u16::from_be(ctx.load::<u16>(42)?);
        if (sport == 546 && dport == 547) || (sport == 547 && dport == 546) {
            return Ok(PASS);
        }
    }
    Ok(DROP)
}
