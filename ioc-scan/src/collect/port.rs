//! PortItem: the host's TCP and UDP sockets from /proc/net/{tcp,tcp6,udp,udp6},
//! joined to the process owning each through its socket inode.
//!
//! The live eBPF sensors reuse [`PortInfo`] and [`PortObservation`] for
//! connection events (`kind: "connection"`).

use super::host::{field, object_ref, CollectContext, CollectStats, HostCollector, HostRoot, Sink};
use super::process;
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One socket's addresses and owner. Addresses given as IPv4-mapped IPv6
/// (`::ffff:1.2.3.4`, a tcp6 socket talking IPv4) are reported as the IPv4
/// address they carry; `is_ipv6` still says the socket's family.
#[derive(Debug, Clone, PartialEq)]
pub struct PortInfo {
    /// `TCP` or `UDP`.
    pub protocol: &'static str,
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: Option<IpAddr>,
    pub remote_port: Option<u16>,
    /// Kernel state name: `LISTEN`, `ESTABLISHED`, `TIME_WAIT`...; an
    /// unconnected UDP socket is `UNCONN` (as `ss` says).
    pub state: Option<&'static str>,
    pub pid: Option<u32>,
    /// The owning process's name.
    pub process: Option<String>,
    /// The owning process's executable.
    pub path: Option<String>,
    pub is_ipv6: bool,
    /// Socket inode (0 when unknown).
    pub inode: u64,
    /// Owner's user id as the socket table gives it.
    pub uid: Option<u32>,
    /// When the event happened (live events), seconds since the epoch.
    pub creation_time: Option<i64>,
}

impl PortInfo {
    /// A socket with only its protocol and local address known.
    pub fn new(protocol: &'static str, local_ip: IpAddr, local_port: u16) -> Self {
        PortInfo {
            protocol,
            local_ip: unmap(local_ip),
            local_port,
            remote_ip: None,
            remote_port: None,
            state: None,
            pid: None,
            process: None,
            path: None,
            is_ipv6: local_ip.is_ipv6(),
            inode: 0,
            uid: None,
            creation_time: None,
        }
    }
}

/// A PortItem observation. `kind` names it in detections: `"port"` for the
/// /proc snapshot, `"connection"` for live events.
#[derive(Debug, Clone, PartialEq)]
pub struct PortObservation {
    pub kind: &'static str,
    pub info: PortInfo,
}

impl PortObservation {
    pub fn snapshot(info: PortInfo) -> Self {
        PortObservation { kind: "port", info }
    }

    pub fn connection(info: PortInfo) -> Self {
        PortObservation { kind: "connection", info }
    }
}

/// The PortItem terms answered.
pub const TERMS: &[TermId] = &[
    ids::PortItem_isIPv6,
    ids::PortItem_localIP,
    ids::PortItem_localPort,
    ids::PortItem_path,
    ids::PortItem_pid,
    ids::PortItem_process,
    ids::PortItem_protocol,
    ids::PortItem_remoteIP,
    ids::PortItem_remotePort,
    ids::PortItem_state,
];

impl Observation for PortObservation {
    fn document(&self) -> &'static str {
        "PortItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let p = &self.info;
        match term {
            ids::PortItem_isIPv6 => field::bool(p.is_ipv6),
            ids::PortItem_localIP => field::ip(Some(p.local_ip)),
            ids::PortItem_localPort => field::int(p.local_port.into()),
            ids::PortItem_path => field::opt_str(p.path.as_deref()),
            ids::PortItem_pid => field::opt_int(p.pid.map(i64::from)),
            ids::PortItem_process => field::opt_str(p.process.as_deref()),
            ids::PortItem_protocol => field::str(p.protocol),
            ids::PortItem_remoteIP => field::ip(p.remote_ip),
            ids::PortItem_remotePort => field::opt_int(p.remote_port.map(i64::from)),
            ids::PortItem_state => field::opt_str(p.state),
            ids::PortItem_CreationTime => field::time(p.creation_time),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let p = &self.info;
        object_ref(
            self.kind,
            [
                ("protocol", p.protocol.into()),
                ("local", format!("{}", std::net::SocketAddr::new(p.local_ip, p.local_port)).into()),
                (
                    "remote",
                    match (p.remote_ip, p.remote_port) {
                        (Some(ip), Some(port)) => format!("{}", std::net::SocketAddr::new(ip, port)).into(),
                        _ => serde_json::Value::Null,
                    },
                ),
                ("state", p.state.into()),
                ("pid", p.pid.into()),
                ("process", p.process.clone().into()),
                ("path", p.path.clone().into()),
            ],
        )
    }
}

/// One line of a /proc/net/{tcp,udp}{,6} table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetEntry {
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    /// The kernel's state number (`0A` = listen).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// The socket tables, with their protocol and family.
pub const TABLES: &[(&str, &str, bool)] = &[
    ("net/tcp", "TCP", false),
    ("net/tcp6", "TCP", true),
    ("net/udp", "UDP", false),
    ("net/udp6", "UDP", true),
];

/// Parse `hex` of an address as the kernel prints it: each 32-bit word in
/// host byte order.
fn parse_ip(hex: &str, v6: bool) -> Option<IpAddr> {
    let words = if v6 { 4 } else { 1 };
    if hex.len() != words * 8 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..words {
        let w = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    Some(if v6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    })
}

fn parse_endpoint(s: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    Some((parse_ip(ip, v6)?, u16::from_str_radix(port, 16).ok()?))
}

/// Parse one data line of a socket table (not the header).
pub fn parse_net_line(line: &str, v6: bool) -> Option<NetEntry> {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    let mut f = line.split_ascii_whitespace();
    let _sl = f.next()?;
    let (local_ip, local_port) = parse_endpoint(f.next()?, v6)?;
    let (remote_ip, remote_port) = parse_endpoint(f.next()?, v6)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    let _queues = f.next()?;
    let _timer = f.next()?;
    let _retransmits = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let _timeout = f.next()?;
    let inode = f.next()?.parse().ok()?;
    Some(NetEntry {
        local_ip,
        local_port,
        remote_ip,
        remote_port,
        state,
        uid,
        inode,
    })
}

/// The kernel's name of a TCP state (include/net/tcp_states.h).
pub fn tcp_state(state: u8) -> Option<&'static str> {
    Some(match state {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        0x0C => "NEW_SYN_RECV",
        _ => return None,
    })
}

/// A UDP socket's state: connected or not.
pub fn udp_state(state: u8) -> Option<&'static str> {
    match state {
        0x01 => Some("ESTABLISHED"),
        0x07 => Some("UNCONN"),
        _ => tcp_state(state),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Read one socket table; lines that do not parse are reported.
pub fn read_table(path: &Path, v6: bool, stats: &mut CollectStats) -> Vec<NetEntry> {
    super::host::parse_lines(path, 256 << 20, 1, |line| parse_net_line(line, v6), "not a socket table line", stats)
}

/// A socket as the process collector shows it in a handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    /// `TCP`, `UDP` or `UNIX`.
    pub protocol: &'static str,
    /// `STREAM`, `DGRAM`, `SEQPACKET`.
    pub socket_type: &'static str,
    pub local_address: Option<String>,
    pub local_port: Option<u16>,
    pub remote_address: Option<String>,
    pub remote_port: Option<u16>,
    pub state: Option<&'static str>,
}

/// Every inet and unix socket of the host by inode.
pub fn socket_table(root: &HostRoot, stats: &mut CollectStats) -> HashMap<u64, SocketEntry> {
    let mut map = HashMap::new();
    for &(table, protocol, v6) in TABLES {
        let path = root.proc_path(table);
        if !path.exists() {
            continue;
        }
        for e in read_table(&path, v6, stats) {
            let tcp = protocol == "TCP";
            let connected = !e.remote_ip.is_unspecified() || e.remote_port != 0;
            map.insert(
                e.inode,
                SocketEntry {
                    protocol,
                    socket_type: if tcp { "STREAM" } else { "DGRAM" },
                    local_address: Some(unmap(e.local_ip).to_string()),
                    local_port: Some(e.local_port),
                    remote_address: connected.then(|| unmap(e.remote_ip).to_string()),
                    remote_port: connected.then_some(e.remote_port),
                    state: if tcp { tcp_state(e.state) } else { udp_state(e.state) },
                },
            );
        }
    }
    let unix = root.proc_path("net/unix");
    if let Ok(b) = super::host::read_bounded(&unix, 256 << 20) {
        for line in String::from_utf8_lossy(&b).lines().skip(1) {
            if let Some((inode, entry)) = parse_unix_line(line) {
                map.insert(inode, entry);
            }
        }
    }
    map
}

/// One line of /proc/net/unix: `Num RefCount Protocol Flags Type St Inode Path`.
pub fn parse_unix_line(line: &str) -> Option<(u64, SocketEntry)> {
    let mut f = line.split_ascii_whitespace();
    let _num = f.next()?;
    let _refs = f.next()?;
    let _proto = f.next()?;
    let _flags = f.next()?;
    let ty = u16::from_str_radix(f.next()?, 16).ok()?;
    let st = u8::from_str_radix(f.next()?, 16).ok()?;
    let inode = f.next()?.parse().ok()?;
    let path = f.next().map(str::to_string);
    let socket_type = match ty {
        1 => "STREAM",
        2 => "DGRAM",
        5 => "SEQPACKET",
        _ => "OTHER",
    };
    let state = match st {
        1 => Some("UNCONNECTED"),
        2 => Some("CONNECTING"),
        3 => Some("CONNECTED"),
        4 => Some("DISCONNECTING"),
        _ => None,
    };
    Some((
        inode,
        SocketEntry {
            protocol: "UNIX",
            socket_type,
            local_address: path,
            local_port: None,
            remote_address: None,
            remote_port: None,
            state,
        },
    ))
}

/// The PortItem collector.
pub struct PortCollector;

impl HostCollector for PortCollector {
    fn document(&self) -> &'static str {
        "PortItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("PortItem");
        let mut entries = Vec::new();
        for &(table, protocol, v6) in TABLES {
            let path = cx.root.proc_path(table);
            if !path.exists() && v6 {
                continue; // IPv6 disabled
            }
            entries.extend(read_table(&path, v6, &mut stats).into_iter().map(|e| (protocol, v6, e)));
        }
        // Always joined (even when no term asks): a detection names the process.
        let owners = process::socket_owners(&cx.root, &mut stats);
        for (protocol, v6, e) in entries {
            let owner = owners.get(&e.inode);
            let connected = !e.remote_ip.is_unspecified() || e.remote_port != 0;
            let info = PortInfo {
                protocol,
                local_ip: unmap(e.local_ip),
                local_port: e.local_port,
                remote_ip: Some(unmap(e.remote_ip)),
                remote_port: Some(e.remote_port),
                state: if protocol == "TCP" {
                    tcp_state(e.state)
                } else if connected {
                    Some("ESTABLISHED")
                } else {
                    Some("UNCONN")
                },
                pid: owner.map(|o| o.pid),
                process: owner.map(|o| o.name.clone()),
                path: owner.and_then(|o| o.path.clone()),
                is_ipv6: v6,
                inode: e.inode,
                uid: Some(e.uid),
                creation_time: None,
            };
            stats.emit(sink, &mut PortObservation::snapshot(info), |_, _| {});
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_tcp6_lines() {
        let v4 = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        let e = parse_net_line(v4, false).unwrap();
        assert_eq!(e.local_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(e.local_port, 8080);
        assert_eq!(e.state, 0x0A);
        assert_eq!(e.inode, 12345);
        let v6 = "   1: 00000000000000000000000001000000:0016 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 999 1";
        let e = parse_net_line(v6, true).unwrap();
        assert_eq!(e.local_ip, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(e.local_port, 22);
        assert_eq!(unmap(e.remote_ip), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(e.remote_port, 50000);
        assert_eq!(e.uid, 1000);
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            "",
            "0:",
            "0: 0100007F:1F90",
            "0: 0100007F 00000000:0000 0A",
            "0: ZZZZZZZZ:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
        ] {
            assert_eq!(parse_net_line(bad, false), None, "{bad:?}");
        }
        // Multibyte input must not panic on slicing.
        assert_eq!(parse_net_line("0: é0000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1", false), None);
    }
}
