//! Kernel events as the same observations the /proc snapshot produces
//! ([`ProcessObservation`], [`PortObservation`] with kind `connection`,
//! [`DnsObservation`] with source `live`), as event records
//! ([`event_item`](super::event_item)) and as `Network/DNS` names, so that
//! one evaluator handles them all; and the live process table (seeded from
//! /proc, kept current by exec and exit events) that names the process
//! behind a connection.

use super::dns_wire::{self, Message, RData};
use super::event_item::{Actor, DnsLookupEvent, NetworkEvent, ProcessEvent};
use super::events::{Conn, Dns, Exec, Protocol};
use crate::collect::dns::{DnsObservation, DnsRecord};
use crate::collect::host::{field, object_ref, DigestKinds, HostRoot, UserNames};
use crate::collect::port::{unmap, PortInfo, PortObservation};
use crate::collect::process::{self, ProcDir, ProcessInfo, ProcessObservation, ProcessReader};
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// Processes kept at most (pid_max can be 4M; a host rarely has 100k).
pub const MAX_PROCESSES: usize = 1 << 20;

/// One process as the monitor knows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub info: ProcessInfo,
    /// Start, ns since boot (tick resolution from /proc): with the pid,
    /// names the process for a pidfd kill.
    pub start_boottime_ns: Option<u64>,
    /// The executable (device as `stat` gives it, inode) the exec event
    /// saw: with the start, names the process for a kill.
    pub exe: Option<(u64, u64)>,
}

/// pid → process, seeded from /proc and kept current by events.
pub struct ProcessTable {
    root: HostRoot,
    users: UserNames,
    /// Boot time, seconds since the epoch (/proc/stat btime).
    boot_time: Option<i64>,
    entries: HashMap<u32, Entry>,
}

impl ProcessTable {
    /// Read every process of /proc (a process that exits meanwhile is
    /// left out).
    pub fn snapshot(root: &HostRoot) -> ProcessTable {
        let reader = ProcessReader::new(root);
        let ticks = process::clock_ticks().max(1);
        let mut entries = HashMap::new();
        let mut stats = crate::collect::host::CollectStats::new("ProcessItem");
        for pid in process::pids(root, &mut stats) {
            let Ok(dir) = ProcDir::open(root, pid) else { continue };
            if let Ok((info, stat)) = reader.read(&dir) {
                let start = stat.starttime.saturating_mul(1_000_000_000 / ticks);
                entries.insert(
                    pid,
                    Entry {
                        info,
                        start_boottime_ns: Some(start),
                        exe: None,
                    },
                );
            }
            if entries.len() >= MAX_PROCESSES {
                break;
            }
        }
        ProcessTable {
            root: root.clone(),
            users: UserNames::load(root),
            boot_time: process::boot_time(root),
            entries,
        }
    }

    /// Where /proc and the executables are read.
    pub fn root(&self) -> &HostRoot {
        &self.root
    }

    pub fn get(&self, pid: u32) -> Option<&Entry> {
        self.entries.get(&pid)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seconds since the epoch of a `CLOCK_BOOTTIME` instant.
    pub fn epoch(&self, boottime_ns: u64) -> Option<i64> {
        self.boot_time.map(|b| b + (boottime_ns / 1_000_000_000) as i64)
    }

    /// Record an exec and return the process as it is now.
    pub fn exec(&mut self, e: &Exec) -> &Entry {
        // The executable's absolute path: /proc/PID/exe while the process
        // lives (it may already be gone, e.g. killed at exec); else the path
        // given to execve. Read late, /proc/PID may be another process that
        // got the pid since: with the event's start time, it must match.
        let exe = ProcDir::open(&self.root, e.pid)
            .ok()
            .filter(|d| match e.start_boottime_ns {
                Some(ns) => d
                    .stat()
                    .is_ok_and(|st| st.starttime == ns / (1_000_000_000 / process::clock_ticks().max(1))),
                None => true,
            })
            .and_then(|d| d.exe());
        let (path, deleted) = match exe {
            Some((p, deleted)) => (Some(p), deleted),
            None => (Some(e.filename.clone()).filter(|f| !f.is_empty()), false),
        };
        let argv0 = e.args.first().map(String::as_str);
        let name = process::full_name(&e.comm, path.as_deref().or(Some(e.filename.as_str())), argv0);
        let ppid = e.ppid.or_else(|| self.entries.get(&e.pid).map(|p| p.info.ppid)).unwrap_or(0);
        let start_boottime_ns = e
            .start_boottime_ns
            .or_else(|| self.entries.get(&e.pid).and_then(|p| p.start_boottime_ns));
        let info = ProcessInfo {
            pid: e.pid,
            ppid,
            uid: Some(e.uid),
            username: Some(self.username(e.uid)),
            name,
            path,
            arguments: (!e.args.is_empty()).then(|| e.args.join(" ")),
            start_time: start_boottime_ns.and_then(|s| self.epoch(s)),
            start_boottime_ns,
            // Just started: no CPU time to speak of.
            kernel_time: Some(0),
            user_time: Some(0),
            exe_deleted: deleted,
        };
        if self.entries.len() >= MAX_PROCESSES && !self.entries.contains_key(&e.pid) {
            // Full: make room rather than stop tracking new processes.
            if let Some(&old) = self.entries.keys().next() {
                self.entries.remove(&old);
            }
        }
        let exe = e.dev.zip(e.ino);
        self.entries.insert(
            e.pid,
            Entry {
                info,
                start_boottime_ns,
                exe,
            },
        );
        &self.entries[&e.pid]
    }

    pub fn exit(&mut self, pid: u32) -> Option<Entry> {
        self.entries.remove(&pid)
    }

    /// The user name of a uid (the uid itself when it has none).
    pub fn username(&self, uid: u32) -> String {
        self.users.name(uid).map_or_else(|| uid.to_string(), str::to_string)
    }

    /// The process behind an event: what the table knows of `pid`, else
    /// what the event itself carried.
    pub fn actor(&self, pid: Option<u32>, uid: Option<u32>, comm: Option<&str>) -> Actor {
        let entry = pid.and_then(|p| self.get(p));
        Actor {
            pid,
            process: entry.map(|e| e.info.name.clone()).or_else(|| comm.map(str::to_string)),
            path: entry.and_then(|e| e.info.path.clone()),
            username: uid
                .map(|u| self.username(u))
                .or_else(|| entry.and_then(|e| e.info.username.clone())),
        }
    }

    /// A processEvent (`start` or `end`) of a process, with its parent as
    /// the table knows it now.
    pub fn process_event(&self, entry: &Entry, event_type: &'static str) -> ProcessEvent {
        let p = &entry.info;
        let parent = self.get(p.ppid);
        ProcessEvent {
            event_type,
            pid: p.pid,
            parent_pid: p.ppid,
            process: p.name.clone(),
            path: p.path.clone(),
            cmdline: p.arguments.clone(),
            username: p.username.clone(),
            start_time: p.start_time,
            start_boottime_ns: p.start_boottime_ns,
            parent_process: parent.map(|e| e.info.name.clone()),
            parent_path: parent.and_then(|e| e.info.path.clone()),
            md5: None,
            md5_unavailable: false,
        }
    }
}

/// Owners of TCP sockets, from the SYN_SENT / LISTEN events that ran in
/// their context, for the ESTABLISHED events that run in softirq context
/// (the kernel side keeps no map on the connection path).
#[derive(Debug, Default)]
pub struct TcpOwners {
    owners: HashMap<u64, (u32, Option<u32>, Option<String>)>,
    /// Insertion order, to forget the oldest first.
    order: std::collections::VecDeque<u64>,
}

/// Sockets remembered at most (a connection that never establishes is
/// forgotten once this many newer ones came).
pub const MAX_TCP_OWNERS: usize = 65536;

impl TcpOwners {
    /// Remember the owner of a TCP event that names one; give an
    /// ESTABLISHED event without one the owner its socket had.
    pub fn resolve(&mut self, c: &mut Conn) {
        if c.protocol != Protocol::Tcp || c.source != "tcp_state" || c.sock == 0 {
            return;
        }
        match c.pid {
            Some(pid) => {
                if self.owners.insert(c.sock, (pid, c.uid, c.comm.clone())).is_none() {
                    self.order.push_back(c.sock);
                }
                while self.owners.len() > MAX_TCP_OWNERS {
                    match self.order.pop_front() {
                        Some(old) => {
                            self.owners.remove(&old);
                        }
                        None => break,
                    }
                }
            }
            None => {
                // A client socket is established once: its entry is done.
                // (A listener's is kept: accepted sockets are new ones.)
                if let Some((pid, uid, comm)) = self.owners.remove(&c.sock) {
                    c.pid = Some(pid);
                    c.uid = uid;
                    c.comm = comm;
                }
            }
        }
        if self.order.len() > 2 * MAX_TCP_OWNERS {
            let owners = &self.owners;
            self.order.retain(|s| owners.contains_key(s));
        }
    }
}

/// The ProcessItem observation of a process.
pub fn process_observation(entry: &Entry) -> ProcessObservation {
    ProcessObservation::new(entry.info.clone())
}

/// A connection event as a PortItem observation (`kind: "connection"`).
pub fn connection_observation(c: &Conn, table: &ProcessTable, blocked: bool) -> PortObservation {
    let v6 = c.local_ip.is_ipv6() || c.remote_ip.is_ipv6();
    let mut info = PortInfo::new(c.protocol.as_str(), c.local_ip, c.local_port);
    info.is_ipv6 = v6;
    let listening = c.state == Some("LISTEN");
    let no_peer = c.remote_ip.is_unspecified() && c.remote_port == 0;
    if !listening && !no_peer {
        info.remote_ip = Some(unmap(c.remote_ip));
        info.remote_port = Some(c.remote_port);
    }
    info.state = if blocked {
        Some("BLOCKED")
    } else {
        match (c.protocol, c.source) {
            (Protocol::Tcp, _) => c.state,
            (Protocol::Udp, "connect") => Some("ESTABLISHED"),
            (Protocol::Udp, _) => Some("UNCONN"),
            _ => None,
        }
    };
    info.pid = c.pid;
    info.uid = c.uid;
    let owner = c.pid.and_then(|p| table.get(p));
    info.process = owner.map(|o| o.info.name.clone()).or_else(|| c.comm.clone());
    info.path = owner.and_then(|o| o.info.path.clone());
    info.creation_time = table.epoch(c.time_ns);
    PortObservation::connection(info)
}

/// A connection event as an ipv4NetworkEvent: a TCP connection once
/// established (both ends known), a UDP connect or first send to a peer,
/// any refused connect or send; not SYN_SENT or LISTEN (a connection is
/// one event), not IPv6.
pub fn network_event(c: &Conn, table: &ProcessTable, blocked: bool) -> Option<NetworkEvent> {
    let wanted = blocked
        || match c.source {
            "tcp_state" => c.state == Some("ESTABLISHED"),
            _ => c.protocol == Protocol::Udp,
        };
    let v4 = |ip: IpAddr| match unmap(ip) {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    };
    let remote = v4(c.remote_ip)?;
    // Unknown ends are unspecified / port 0 (a connect hook runs before
    // the source is chosen).
    let local = if c.local_ip.is_unspecified() {
        None
    } else {
        Some(v4(c.local_ip)?)
    };
    if !wanted {
        return None;
    }
    Some(NetworkEvent {
        protocol: c.protocol.as_str(),
        local_ip: local,
        local_port: (c.local_port != 0).then_some(c.local_port),
        remote_ip: Some(remote),
        remote_port: Some(c.remote_port),
        actor: table.actor(c.pid, c.uid, c.comm.as_deref()),
        blocked,
    })
}

/// The names an answered DNS message (`msg`, parsed from `d`) looked up
/// (its questions), as dnsLookupEvents; queries give none (the lookup is
/// reported when answered).
pub fn dns_lookups(d: &Dns, msg: &Message, table: &ProcessTable) -> Vec<DnsLookupEvent> {
    if !msg.response {
        return Vec::new();
    }
    msg.questions
        .iter()
        .map(|q| DnsLookupEvent {
            hostname: q.name.clone(),
            actor: table.actor(d.pid, None, None),
        })
        .collect()
}

/// A name in DNS traffic as a `Network/DNS` observation (the one Network
/// term the sensors can answer: they read DNS messages, no other payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDnsObservation {
    pub host: String,
    pub pid: Option<u32>,
}

/// `Network/DNS` terms answered.
pub const NETWORK_TERMS: &[TermId] = &[ids::Network_DNS];

impl Observation for NetworkDnsObservation {
    fn document(&self) -> &'static str {
        "Network"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        match term {
            ids::Network_DNS => field::str(&self.host),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref("network", [("dns", self.host.clone().into()), ("pid", self.pid.into())])
    }
}

/// The question names of a DNS message (query or answer), once each.
pub fn network_dns(d: &Dns, msg: &Message) -> Vec<NetworkDnsObservation> {
    let mut out: Vec<NetworkDnsObservation> = Vec::new();
    for q in &msg.questions {
        if !out.iter().any(|o| o.host.eq_ignore_ascii_case(&q.name)) {
            out.push(NetworkDnsObservation {
                host: q.name.clone(),
                pid: d.pid,
            });
        }
    }
    out
}

/// Executables larger than this are not hashed for processEvent/md5 (the
/// monitor hashes on its event thread).
pub const MD5_MAX_BYTES: u64 = 256 << 20;
/// Digests remembered at most.
const MD5_CACHE_ENTRIES: usize = 4096;

/// MD5s of executables by (device, inode, size, mtime): each program
/// hashed once however often it runs.
#[derive(Debug, Default)]
pub struct Md5Cache {
    digests: HashMap<(u64, u64, u64, i64), [u8; 16]>,
}

impl Md5Cache {
    /// The MD5 of a process's executable: `/proc/PID/exe` while it lives
    /// (also when the file was deleted or replaced), else `path`. None when
    /// neither can be read or it is larger than [`MD5_MAX_BYTES`].
    ///
    /// `path` comes from the event (what was given to execve) and its
    /// owner may have replaced it since: it must be absolute, is walked
    /// without following symlinks and opened without blocking, and must
    /// be a regular file (a FIFO put there cannot stall the monitor).
    pub fn executable(&mut self, root: &HostRoot, pid: Option<u32>, path: Option<&str>) -> Option<[u8; 16]> {
        let proc_exe = || {
            // The kernel's own link to the running file (a magic link, not a
            // user's symlink); non-blocking all the same.
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(root.path(format!("/proc/{}/exe", pid?)))
                .ok()
        };
        let event_path = || {
            let p = path.filter(|p| p.starts_with('/'))?;
            let located = crate::respond::fsx::locate(root.path(p).as_os_str().as_bytes()).ok()?;
            located.open_regular().ok().map(|(file, _)| file)
        };
        let file = proc_exe().or_else(event_path)?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MD5_MAX_BYTES {
            return None;
        }
        let key = (meta.dev(), meta.ino(), meta.len(), meta.mtime());
        if let Some(d) = self.digests.get(&key) {
            return Some(*d);
        }
        // Bounded while read too: the file may grow after the fstat above.
        let file = crate::collect::safe_read::HostFile::checked(file.into(), std::path::Path::new("executable")).ok()?;
        let digests = file
            .digest(
                DigestKinds {
                    md5: true,
                    ..DigestKinds::default()
                },
                MD5_MAX_BYTES,
            )
            .ok()?;
        let md5 = digests.md5?;
        if self.digests.len() >= MD5_CACHE_ENTRIES {
            self.digests.clear();
        }
        self.digests.insert(key, md5);
        Some(md5)
    }
}

/// A DNS message (`msg`, parsed from `d`) as DnsEntryItem observations
/// (`source: "live"`): a query
/// gives one record per question (the name asked, no data); an answer one
/// record per answer record, plus one for the question name with every
/// address when the answer went through CNAMEs. An answer seen at the
/// socket ([`Dns::at_socket`]: that sensor sees no queries) gives first the
/// query's records, from its question section, which every answer repeats
/// (NXDOMAIN too); a query that gets no answer is then seen only as the
/// UDP connection to port 53 (a PortItem).
pub fn dns_observations(d: &Dns, msg: &Message) -> Vec<DnsObservation> {
    let mut out = Vec::new();
    let record = |host: &str, rtype: u16| {
        let mut r = DnsRecord::new(host.to_string(), dns_wire::type_name(rtype), "live");
        r.pid = d.pid;
        r
    };
    if !msg.response || d.at_socket {
        for q in &msg.questions {
            out.push(DnsObservation::new(record(&q.name, q.qtype)));
        }
    }
    if !msg.response {
        return out;
    }
    let mut all_addresses: Vec<IpAddr> = Vec::new();
    let mut aliases: Vec<String> = Vec::new();
    for a in &msg.answers {
        let mut r = record(&a.name, a.rtype);
        r.ttl = Some(a.ttl);
        match &a.data {
            RData::A(ip) => r.addresses.push(IpAddr::V4(*ip)),
            RData::Aaaa(ip) => r.addresses.push(IpAddr::V6(*ip)),
            RData::Name(host) => r.data_hosts.push(host.clone()),
            RData::Mx { host, .. } => r.data_hosts.push(host.clone()),
            RData::Txt(_) | RData::Other(_) => {}
        }
        all_addresses.extend(r.addresses.iter().copied());
        if a.rtype == 5 {
            aliases.extend(r.data_hosts.iter().cloned());
        }
        out.push(DnsObservation::new(r));
    }
    if let Some(q) = msg.questions.first() {
        if msg.answers.iter().any(|a| !a.name.eq_ignore_ascii_case(&q.name)) {
            let mut r = record(&q.name, q.qtype);
            r.addresses = all_addresses;
            r.data_hosts = aliases;
            out.push(DnsObservation::new(r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Observation;
    use crate::terms::ids;
    use std::net::Ipv4Addr;

    fn parsed(d: &Dns) -> Message {
        dns_wire::parse(&d.payload).unwrap()
    }

    fn dns_observations(d: &Dns) -> Vec<DnsObservation> {
        super::dns_observations(d, &parsed(d))
    }

    fn dns(payload: Vec<u8>, ingress: bool) -> Dns {
        Dns {
            pid: Some(42),
            ingress,
            src_ip: Ipv4Addr::LOCALHOST.into(),
            src_port: 53,
            dst_ip: Ipv4Addr::LOCALHOST.into(),
            dst_port: 40000,
            payload,
            truncated: false,
            at_socket: false,
            time_ns: 0,
        }
    }

    #[test]
    fn a_query_names_the_host_asked() {
        let mut q = vec![0, 7, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x04evil\x07example\x00\x00\x01\x00\x01");
        let obs = dns_observations(&dns(q, false));
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].record.host, "evil.example");
        assert_eq!(obs[0].record.record_type, "A");
        assert_eq!(obs[0].record.pid, Some(42));
        assert_eq!(obs[0].document(), "DnsEntryItem");
    }

    #[test]
    fn an_answer_through_a_cname_also_gives_the_asked_name_its_addresses() {
        let mut m = vec![0, 7, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x04evil\x07example\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 4, 1, b'c', 0xc0, 17]);
        let c_at = (m.len() - 4) as u8;
        m.extend_from_slice(&[0xc0, c_at, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 127, 0, 0, 9]);
        let obs = dns_observations(&dns(m, true));
        assert_eq!(obs.len(), 3);
        let asked = obs
            .iter()
            .find(|o| o.record.host == "evil.example" && o.record.record_type == "A")
            .unwrap();
        assert_eq!(asked.record.addresses, vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))]);
        assert_eq!(asked.record.data_hosts, vec!["c.example".to_string()]);
        assert!(matches!(asked.field(ids::DnsEntryItem_RecordData_IPv4Address), crate::eval::Field::Values(v) if v.len() == 1));
    }

    fn tcp(sock: u64, state: &'static str, pid: Option<u32>) -> Conn {
        Conn {
            pid,
            uid: pid.map(|_| 0),
            comm: pid.map(|_| "curl".to_string()),
            protocol: Protocol::Tcp,
            state: Some(state),
            old_state: None,
            local_ip: Ipv4Addr::LOCALHOST.into(),
            local_port: 0,
            remote_ip: Ipv4Addr::new(127, 0, 0, 2).into(),
            remote_port: 80,
            source: "tcp_state",
            time_ns: 0,
            sock,
        }
    }

    #[test]
    fn established_gets_the_owner_its_socket_had_at_syn_sent() {
        let mut owners = TcpOwners::default();
        owners.resolve(&mut tcp(7, "SYN_SENT", Some(42)));
        let mut est = tcp(7, "ESTABLISHED", None);
        owners.resolve(&mut est);
        assert_eq!(est.pid, Some(42));
        assert_eq!(est.comm.as_deref(), Some("curl"));
        // Used up: an unrelated socket that reuses the address later gets no owner.
        let mut again = tcp(7, "ESTABLISHED", None);
        owners.resolve(&mut again);
        assert_eq!(again.pid, None);
        // An incoming connection (no SYN_SENT) stays without owner.
        let mut incoming = tcp(9, "ESTABLISHED", None);
        owners.resolve(&mut incoming);
        assert_eq!(incoming.pid, None);
    }

    #[test]
    fn tcp_owners_stay_bounded() {
        let mut owners = TcpOwners::default();
        for sock in 1..=(MAX_TCP_OWNERS as u64 + 10) {
            owners.resolve(&mut tcp(sock, "SYN_SENT", Some(1)));
        }
        assert_eq!(owners.owners.len(), MAX_TCP_OWNERS);
        let mut oldest = tcp(1, "ESTABLISHED", None);
        owners.resolve(&mut oldest);
        assert_eq!(oldest.pid, None, "the oldest was forgotten");
    }

    #[test]
    fn an_answer_seen_at_the_socket_also_gives_the_query() {
        // NXDOMAIN: no answer records, the question only.
        let mut m = vec![0, 7, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x04evil\x07example\x00\x00\x1c\x00\x01");
        let mut d = dns(m, true);
        assert!(dns_observations(&d).is_empty(), "the fallback saw the query itself");
        d.at_socket = true;
        let obs = dns_observations(&d);
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].record.host, "evil.example");
        assert_eq!(obs[0].record.record_type, "AAAA");
        assert_eq!(obs[0].record.pid, Some(42));
        assert!(obs[0].record.addresses.is_empty() && obs[0].record.data_hosts.is_empty());
    }


    fn empty_table() -> ProcessTable {
        ProcessTable {
            root: HostRoot::system(),
            users: UserNames::default(),
            boot_time: Some(1_000),
            entries: HashMap::new(),
        }
    }

    #[test]
    fn a_connection_is_one_network_event_once_established_or_refused() {
        let table = empty_table();
        assert!(network_event(&tcp(1, "SYN_SENT", Some(42)), &table, false).is_none());
        assert!(network_event(&tcp(1, "LISTEN", Some(42)), &table, false).is_none());
        let mut est = tcp(1, "ESTABLISHED", Some(42));
        est.local_port = 40000;
        let n = network_event(&est, &table, false).expect("established");
        assert_eq!(n.local_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(n.local_port, Some(40000));
        assert_eq!(n.remote_port, Some(80));
        assert_eq!(n.actor.pid, Some(42));
        assert_eq!(n.actor.process.as_deref(), Some("curl"), "from the event when the table does not know it");
        // A refused connect: the local end is not known yet.
        let mut refused = tcp(2, "SYN_SENT", Some(42));
        refused.source = "connect";
        refused.local_ip = Ipv4Addr::UNSPECIFIED.into();
        let n = network_event(&refused, &table, true).expect("refused");
        assert!(n.blocked);
        assert_eq!((n.local_ip, n.local_port), (None, None));
        // Not IPv4.
        let mut v6 = tcp(3, "ESTABLISHED", Some(42));
        v6.remote_ip = "2001:db8::1".parse().unwrap();
        assert!(network_event(&v6, &table, false).is_none());
        // IPv4-mapped IPv6 is IPv4.
        let mut mapped = tcp(4, "ESTABLISHED", Some(42));
        mapped.remote_ip = "::ffff:10.0.0.1".parse().unwrap();
        mapped.local_ip = "::ffff:10.0.0.2".parse().unwrap();
        let n = network_event(&mapped, &table, false).expect("mapped");
        assert_eq!(n.remote_ip, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn only_answers_give_lookup_events_and_both_give_network_dns_names() {
        let table = empty_table();
        let mut q = vec![0, 7, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x04evil\x07example\x00\x00\x01\x00\x01");
        let query = dns(q.clone(), false);
        assert!(dns_lookups(&query, &parsed(&query), &table).is_empty());
        assert_eq!(network_dns(&query, &parsed(&query))[0].host, "evil.example");
        let mut a = q;
        a[2] = 0x81;
        let answer = dns(a, true);
        let lookups = dns_lookups(&answer, &parsed(&answer), &table);
        assert_eq!(lookups.len(), 1);
        assert_eq!(lookups[0].hostname, "evil.example");
        assert_eq!(lookups[0].actor.pid, Some(42));
    }

    #[test]
    fn an_executable_is_hashed_once_per_content() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("prog");
        std::fs::write(&exe, b"abc").unwrap();
        let root = HostRoot::system();
        let mut cache = Md5Cache::default();
        let md5 = cache.executable(&root, None, exe.to_str()).unwrap();
        assert_eq!(hex::encode(md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(cache.digests.len(), 1);
        assert_eq!(cache.executable(&root, None, exe.to_str()), Some(md5));
        assert_eq!(cache.digests.len(), 1);
        assert_eq!(cache.executable(&root, None, Some("/nonexistent/prog")), None);
    }

    /// The path of an exec event belongs to whoever exec'd it: replaced by
    /// a FIFO or a symlink after the process ended, it gives no MD5 (and
    /// does not stall the monitor on the FIFO).
    #[test]
    fn an_event_path_replaced_by_a_fifo_or_a_symlink_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"abc").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        let root = HostRoot::system();
        let mut cache = Md5Cache::default();
        assert_eq!(cache.executable(&root, None, fifo.to_str()), None);
        assert_eq!(cache.executable(&root, None, link.to_str()), None);
        assert_eq!(cache.executable(&root, None, Some("relative/prog")), None);
        assert!(cache.executable(&root, None, other.to_str()).is_some());
    }
}
