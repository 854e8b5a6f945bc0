//! DnsEntryItem: static name resolution from /etc/hosts and the resolvers
//! of /etc/resolv.conf. Live queries and answers come from the eBPF sensors,
//! which reuse [`DnsRecord`] and [`DnsObservation`] (`source: "live"`).
//!
//! An /etc/hosts line `1.2.3.4 name alias` gives one `A` record per name.
//! A `nameserver 1.2.3.4` line gives a record of type `NS` whose host and
//! address are the server's address; `search`/`domain` lines give records of
//! type `SEARCH` naming each domain.

use super::host::{field, object_ref, read_text, CollectContext, CollectStats, HostCollector, Sink};
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::PathBuf;

/// One name resolution record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The name resolved (`www.example.com`).
    pub host: String,
    /// `A`, `AAAA`, `CNAME`, `NS`, `SEARCH`...
    pub record_type: String,
    pub addresses: Vec<IpAddr>,
    /// Names in the record's data (CNAME target, search domain).
    pub data_hosts: Vec<String>,
    pub ttl: Option<u32>,
    /// `hosts`, `resolv` or `live`.
    pub source: &'static str,
    /// The process that asked (live events).
    pub pid: Option<u32>,
    /// The file and line it came from (`/etc/hosts:3`), if any.
    pub location: Option<String>,
}

impl DnsRecord {
    pub fn new(host: impl Into<String>, record_type: impl Into<String>, source: &'static str) -> Self {
        DnsRecord {
            host: host.into(),
            record_type: record_type.into(),
            addresses: Vec::new(),
            data_hosts: Vec::new(),
            ttl: None,
            source,
            pid: None,
            location: None,
        }
    }
}

/// A DnsEntryItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsObservation {
    pub record: DnsRecord,
}

impl DnsObservation {
    pub fn new(record: DnsRecord) -> Self {
        DnsObservation { record }
    }
}

/// The DnsEntryItem terms answered.
pub const TERMS: &[TermId] = &[
    ids::DnsEntryItem_Host,
    ids::DnsEntryItem_RecordName,
    ids::DnsEntryItem_RecordType,
    ids::DnsEntryItem_TimeToLive,
    ids::DnsEntryItem_DataLength,
    ids::DnsEntryItem_RecordData_IPv4Address,
    ids::DnsEntryItem_RecordData_IPv6Address,
    ids::DnsEntryItem_RecordData_Host,
];

impl Observation for DnsObservation {
    fn document(&self) -> &'static str {
        "DnsEntryItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let r = &self.record;
        match term {
            ids::DnsEntryItem_Host | ids::DnsEntryItem_RecordName => field::str(&r.host),
            ids::DnsEntryItem_RecordType => field::str(&r.record_type),
            ids::DnsEntryItem_TimeToLive => r.ttl.map_or(Field::Absent, |t| field::owned(t.to_string())),
            ids::DnsEntryItem_DataLength => {
                let len: usize = r.addresses.iter().map(|a| if a.is_ipv4() { 4 } else { 16 }).sum::<usize>()
                    + r.data_hosts.iter().map(|h| h.len()).sum::<usize>();
                field::uint(len as u64)
            }
            ids::DnsEntryItem_RecordData_IPv4Address => field::ips(r.addresses.iter().copied().filter(IpAddr::is_ipv4)),
            ids::DnsEntryItem_RecordData_IPv6Address => field::ips(r.addresses.iter().copied().filter(IpAddr::is_ipv6)),
            ids::DnsEntryItem_RecordData_Host => {
                Field::Values(r.data_hosts.iter().map(|h| Value::Str(Cow::Borrowed(h.as_str()))).collect())
            }
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let r = &self.record;
        object_ref(
            "dns",
            [
                ("host", r.host.clone().into()),
                ("record_type", r.record_type.clone().into()),
                ("addresses", r.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().into()),
                ("source", r.source.into()),
                ("pid", r.pid.into()),
                ("location", r.location.clone().into()),
            ],
        )
    }
}

/// Parse an /etc/hosts file: one record per name of each line.
pub fn parse_hosts(text: &str, file: &str) -> Vec<DnsRecord> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_ascii_whitespace();
        let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words {
            let mut r = DnsRecord::new(name, if ip.is_ipv4() { "A" } else { "AAAA" }, "hosts");
            r.addresses.push(ip);
            r.location = Some(format!("{file}:{}", n + 1));
            out.push(r);
        }
    }
    out
}

/// Parse /etc/resolv.conf: its name servers and search domains.
pub fn parse_resolv(text: &str, file: &str) -> Vec<DnsRecord> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_ascii_whitespace();
        let loc = Some(format!("{file}:{}", n + 1));
        match words.next() {
            Some("nameserver") => {
                let Some(word) = words.next() else { continue };
                let Ok(ip) = word.split('%').next().unwrap_or(word).parse::<IpAddr>() else {
                    continue;
                };
                let mut r = DnsRecord::new(ip.to_string(), "NS", "resolv");
                r.addresses.push(ip);
                r.location = loc;
                out.push(r);
            }
            Some("search") | Some("domain") => {
                for domain in words {
                    let mut r = DnsRecord::new(domain, "SEARCH", "resolv");
                    r.data_hosts.push(domain.to_string());
                    r.location = loc.clone();
                    out.push(r);
                }
            }
            _ => {}
        }
    }
    out
}

/// The DnsEntryItem collector.
pub struct DnsCollector;

impl HostCollector for DnsCollector {
    fn document(&self) -> &'static str {
        "DnsEntryItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("DnsEntryItem");
        type Parser = fn(&str, &str) -> Vec<DnsRecord>;
        let sources: [(&str, Parser); 2] = [("/etc/hosts", parse_hosts), ("/etc/resolv.conf", parse_resolv)];
        for (file, parse) in sources {
            let path: PathBuf = cx.root.path(file);
            match read_text(&path) {
                Ok(text) => {
                    for record in parse(&text, file) {
                        stats.emit(sink, &mut DnsObservation::new(record), |_, _| {});
                    }
                }
                Err(e) => stats.error(e),
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_give_one_record_per_name() {
        let recs = parse_hosts(
            "# c\n127.0.0.1\tlocalhost lh # x\n::1 ip6-localhost\nbad line\n10.0.0.1\n",
            "/etc/hosts",
        );
        let names: Vec<_> = recs
            .iter()
            .map(|r| (r.host.as_str(), r.record_type.as_str(), r.addresses[0].to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("localhost", "A", "127.0.0.1".to_string()),
                ("lh", "A", "127.0.0.1".into()),
                ("ip6-localhost", "AAAA", "::1".into())
            ]
        );
        assert_eq!(recs[2].location.as_deref(), Some("/etc/hosts:3"));
    }

    #[test]
    fn resolv_conf_servers_and_search_domains() {
        let recs = parse_resolv(
            "nameserver 10.1.2.3\nnameserver fe80::1%eth0\nsearch a.example b.example\noptions ndots:2\nnameserver\n",
            "r",
        );
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].addresses, ["10.1.2.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(recs[1].record_type, "NS");
        assert_eq!(recs[3].data_hosts, ["b.example"]);
    }
}
