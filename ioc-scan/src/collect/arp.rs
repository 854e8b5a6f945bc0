//! ArpEntryItem: the IPv4 neighbour cache from /proc/net/arp.
//!
//! IPv6 neighbours have no /proc file: they need an rtnetlink dump
//! (RTM_GETNEIGH), not done here; `ArpEntryItem/IPv6Address` is not a Linux
//! term of the dictionary either.

use super::host::{field, object_ref, parse_lines, CollectContext, CollectStats, HostCollector, Sink, CONFIG_LIMIT};
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};
use std::net::Ipv4Addr;

/// One line of /proc/net/arp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpEntry {
    pub ip: Ipv4Addr,
    /// ARPHRD_* hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// ATF_* flags (0x2 complete, 0x4 permanent).
    pub flags: u16,
    /// `aa:bb:cc:dd:ee:ff`, lower case, as the kernel prints it.
    pub mac: String,
    pub interface: String,
}

impl ArpEntry {
    /// `static` for permanent entries, `dynamic` for learnt complete ones,
    /// `incomplete` while unresolved.
    pub fn cache_type(&self) -> &'static str {
        if self.flags & 0x4 != 0 {
            "static"
        } else if self.flags & 0x2 != 0 {
            "dynamic"
        } else {
            "incomplete"
        }
    }

    pub fn interface_type(&self) -> &'static str {
        match self.hw_type {
            1 => "Ethernet",
            24 => "IEEE1394",
            32 => "InfiniBand",
            512 => "PPP",
            768 => "IPIP",
            772 => "Loopback",
            776 => "SIT",
            778 => "GRE",
            801 => "IEEE80211",
            _ => "Other",
        }
    }
}

/// Parse one data line (not the header).
pub fn parse_arp_line(line: &str) -> Option<ArpEntry> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() != 6 {
        return None;
    }
    let hex = |s: &str| u16::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    Some(ArpEntry {
        ip: f[0].parse().ok()?,
        hw_type: hex(f[1])?,
        flags: hex(f[2])?,
        mac: f[3].to_ascii_lowercase(),
        interface: f[5].to_string(),
    })
}

/// An ArpEntryItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpObservation(pub ArpEntry);

pub const TERMS: &[TermId] = &[
    ids::ArpEntryItem_CacheType,
    ids::ArpEntryItem_IPv4Address,
    ids::ArpEntryItem_Interface,
    ids::ArpEntryItem_InterfaceType,
    ids::ArpEntryItem_PhysicalAddress,
];

impl Observation for ArpObservation {
    fn document(&self) -> &'static str {
        "ArpEntryItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let e = &self.0;
        match term {
            ids::ArpEntryItem_CacheType => field::str(e.cache_type()),
            ids::ArpEntryItem_IPv4Address => field::ip(Some(e.ip.into())),
            ids::ArpEntryItem_Interface => field::str(&e.interface),
            ids::ArpEntryItem_InterfaceType => field::str(e.interface_type()),
            ids::ArpEntryItem_PhysicalAddress => field::str(&e.mac),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let e = &self.0;
        object_ref(
            "arp",
            [
                ("ip", e.ip.to_string().into()),
                ("mac", e.mac.clone().into()),
                ("interface", e.interface.clone().into()),
            ],
        )
    }
}

/// The ArpEntryItem collector.
pub struct ArpCollector;

impl HostCollector for ArpCollector {
    fn document(&self) -> &'static str {
        "ArpEntryItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("ArpEntryItem");
        let path = cx.root.proc_path("net/arp");
        for e in parse_lines(&path, CONFIG_LIMIT, 1, parse_arp_line, "not an arp table line", &mut stats) {
            stats.emit(sink, &mut ArpObservation(e), |_, _| {});
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arp_lines() {
        let e = parse_arp_line("192.0.2.1        0x1         0x2         02:FC:00:00:00:05     *        eth0").unwrap();
        assert_eq!(e.ip, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(e.mac, "02:fc:00:00:00:05");
        assert_eq!(e.cache_type(), "dynamic");
        assert_eq!(e.interface_type(), "Ethernet");
        assert_eq!(parse_arp_line("192.0.2.1 0x1 0x2 x"), None);
        assert_eq!(parse_arp_line("nope 0x1 0x2 a * eth0"), None);
    }
}
