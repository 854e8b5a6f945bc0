//! RouteEntryItem: the IPv4 (/proc/net/route) and IPv6 (/proc/net/ipv6_route)
//! routing tables (the main table; policy routing tables need rtnetlink).

use super::host::{field, object_ref, parse_lines, CollectContext, CollectStats, HostCollector, Sink, CONFIG_LIMIT};
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub destination: IpAddr,
    pub netmask: IpAddr,
    pub prefix_len: u8,
    /// None when the destination is directly attached.
    pub gateway: Option<IpAddr>,
    pub interface: String,
    /// RTF_* flags.
    pub flags: u32,
    pub metric: u32,
    /// 0 when the interface's MTU applies.
    pub mtu: u32,
}

const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
const RTF_HOST: u32 = 0x4;
const RTF_REINSTATE: u32 = 0x8;
const RTF_DYNAMIC: u32 = 0x10;
const RTF_MODIFIED: u32 = 0x20;
const RTF_REJECT: u32 = 0x200;

impl RouteEntry {
    /// Flags as `route -n` prints them (`UG`, `UH`, `!`...).
    pub fn flag_letters(&self) -> String {
        let mut s = String::new();
        for (bit, c) in [
            (RTF_UP, 'U'),
            (RTF_GATEWAY, 'G'),
            (RTF_HOST, 'H'),
            (RTF_REINSTATE, 'R'),
            (RTF_DYNAMIC, 'D'),
            (RTF_MODIFIED, 'M'),
            (RTF_REJECT, '!'),
        ] {
            if self.flags & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    /// `direct` (attached network), `indirect` (via a gateway) or `reject`.
    pub fn route_type(&self) -> &'static str {
        if self.flags & RTF_REJECT != 0 {
            "reject"
        } else if self.gateway.is_some() {
            "indirect"
        } else {
            "direct"
        }
    }
}

fn hex_v4(s: &str) -> Option<Ipv4Addr> {
    if s.len() != 8 {
        return None;
    }
    Some(Ipv4Addr::from(u32::from_str_radix(s, 16).ok()?.to_ne_bytes()))
}

fn hex_v6(s: &str) -> Option<Ipv6Addr> {
    // ipv6_route prints the 16 bytes in network order.
    if s.len() != 32 {
        return None;
    }
    Some(Ipv6Addr::from(u128::from_str_radix(s, 16).ok()?))
}

/// Parse one data line of /proc/net/route.
pub fn parse_route_line(line: &str) -> Option<RouteEntry> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() < 11 {
        return None;
    }
    let destination = hex_v4(f[1])?;
    let gateway = hex_v4(f[2])?;
    let flags = u32::from_str_radix(f[3], 16).ok()?;
    let mask = hex_v4(f[7])?;
    Some(RouteEntry {
        destination: destination.into(),
        netmask: mask.into(),
        prefix_len: u32::from(mask).leading_ones() as u8,
        gateway: (flags & RTF_GATEWAY != 0 || !gateway.is_unspecified()).then_some(gateway.into()),
        interface: f[0].to_string(),
        flags,
        metric: f[6].parse().ok()?,
        mtu: f[8].parse().ok()?,
    })
}

/// Parse one line of /proc/net/ipv6_route.
pub fn parse_ipv6_route_line(line: &str) -> Option<RouteEntry> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() != 10 {
        return None;
    }
    let destination = hex_v6(f[0])?;
    let prefix_len = u8::from_str_radix(f[1], 16).ok().filter(|p| *p <= 128)?;
    let next_hop = hex_v6(f[4])?;
    let flags = u32::from_str_radix(f[8], 16).ok()?;
    let mask = if prefix_len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix_len))
    };
    Some(RouteEntry {
        destination: destination.into(),
        netmask: Ipv6Addr::from(mask).into(),
        prefix_len,
        gateway: (!next_hop.is_unspecified()).then_some(next_hop.into()),
        interface: f[9].to_string(),
        flags,
        metric: u32::from_str_radix(f[5], 16).ok()?,
        mtu: 0,
    })
}

/// A RouteEntryItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteObservation(pub RouteEntry);

pub const TERMS: &[TermId] = &[
    ids::RouteEntryItem_Destination,
    ids::RouteEntryItem_Flags,
    ids::RouteEntryItem_Gateway,
    ids::RouteEntryItem_Interface,
    ids::RouteEntryItem_MTU,
    ids::RouteEntryItem_Netmask,
    ids::RouteEntryItem_RouteType,
    ids::RouteEntryItem_IsIPv6,
    ids::RouteEntryItem_Metric,
    ids::RouteEntryItem_IsLoopback,
];

impl Observation for RouteObservation {
    fn document(&self) -> &'static str {
        "RouteEntryItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let r = &self.0;
        match term {
            ids::RouteEntryItem_Destination => field::ip(Some(r.destination)),
            ids::RouteEntryItem_Flags => field::owned(r.flag_letters()),
            ids::RouteEntryItem_Gateway => field::ip(r.gateway),
            ids::RouteEntryItem_Interface => field::str(&r.interface),
            ids::RouteEntryItem_MTU => field::owned(r.mtu.to_string()),
            ids::RouteEntryItem_Netmask => field::ip(Some(r.netmask)),
            ids::RouteEntryItem_RouteType => field::str(r.route_type()),
            ids::RouteEntryItem_IsIPv6 => field::bool(r.destination.is_ipv6()),
            ids::RouteEntryItem_Metric => field::int(r.metric.into()),
            ids::RouteEntryItem_IsLoopback => field::bool(r.interface == "lo"),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let r = &self.0;
        object_ref(
            "route",
            [
                ("destination", format!("{}/{}", r.destination, r.prefix_len).into()),
                ("gateway", r.gateway.map(|g| g.to_string()).into()),
                ("interface", r.interface.clone().into()),
            ],
        )
    }
}

/// The RouteEntryItem collector.
pub struct RouteCollector;

impl HostCollector for RouteCollector {
    fn document(&self) -> &'static str {
        "RouteEntryItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("RouteEntryItem");
        type Parser = fn(&str) -> Option<RouteEntry>;
        let tables: [(&str, Parser, usize); 2] = [("net/route", parse_route_line, 1), ("net/ipv6_route", parse_ipv6_route_line, 0)];
        for (table, parse, header) in tables {
            let path = cx.root.proc_path(table);
            if header == 0 && !path.exists() {
                continue; // IPv6 disabled
            }
            for r in parse_lines(&path, CONFIG_LIMIT, header, parse, "not a route line", &mut stats) {
                stats.emit(sink, &mut RouteObservation(r), |_, _| {});
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_routes() {
        let r = parse_route_line("eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0").unwrap();
        assert_eq!(r.destination, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(r.gateway, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(r.flag_letters(), "UG");
        assert_eq!(r.route_type(), "indirect");
        assert_eq!(r.metric, 100);
        let r = parse_route_line("eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t1500\t0\t0").unwrap();
        assert_eq!(r.destination, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)));
        assert_eq!(r.netmask, IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(r.prefix_len, 24);
        assert_eq!(r.gateway, None);
        assert_eq!(r.mtu, 1500);
        assert_eq!(parse_route_line("eth0 zz"), None);
    }

    #[test]
    fn parses_v6_routes() {
        let r = parse_ipv6_route_line("00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0").unwrap();
        assert_eq!(r.gateway, Some("fd00::1".parse().unwrap()));
        assert_eq!(r.metric, 0x400);
        let r = parse_ipv6_route_line("fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0").unwrap();
        assert_eq!(r.netmask, "ffff:ffff:ffff:ffff::".parse::<IpAddr>().unwrap());
        assert_eq!(r.gateway, None);
        assert_eq!(parse_ipv6_route_line("fe80 ff 0 0 0 0 0 0 0 eth0"), None);
    }
}
