//! eventItem: the live sensors' events as the OpenIOC event records HX-style
//! IOCs describe (`eventItem/processEvent/*`, `eventItem/ipv4NetworkEvent/*`,
//! `eventItem/dnsLookupEvent/*` and the common `eventItem/*` header), so that
//! one evaluator handles them like every other document.
//!
//! Which events become records (see [`super::live`]):
//! - processEvent: every exec (`eventType` `start`) and every exit of a
//!   process the monitor knew (`end`, with what the process table knew);
//! - ipv4NetworkEvent: a TCP connection when it is established (either
//!   direction, with both ends' addresses), a UDP `connect` or first send to
//!   a peer, and every connect or send the block list refused; IPv4 only
//!   (IPv4-mapped IPv6 included), as the name says;
//! - dnsLookupEvent: each question of a DNS answer the DNS sensor saw (a
//!   lookup is reported when it is answered; the dictionary marks these
//!   terms for Windows and macOS only, the Linux sensors answer them too).
//!
//! `eventItem/uid` is `SESSION-SEQUENCE`, unique per monitor session;
//! `sequence_num` counts the records of a session from 1. `details/detail`
//! lists every field of the record as name/value pairs.

use crate::collect::host::{field, object_ref};
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// The header terms every record answers.
pub const COMMON_TERMS: &[TermId] = &[
    ids::eventItem_uid,
    ids::eventItem_sequence_num,
    ids::eventItem_timestamp,
    ids::eventItem_eventType,
    ids::eventItem_details_detail_name,
    ids::eventItem_details_detail_value,
];

pub const PROCESS_TERMS: &[TermId] = &[
    ids::eventItem_processEvent_timestamp,
    ids::eventItem_processEvent_eventType,
    ids::eventItem_processEvent_pid,
    ids::eventItem_processEvent_processPath,
    ids::eventItem_processEvent_process,
    ids::eventItem_processEvent_parentPid,
    ids::eventItem_processEvent_parentProcessPath,
    ids::eventItem_processEvent_parentProcess,
    ids::eventItem_processEvent_username,
    ids::eventItem_processEvent_startTime,
    ids::eventItem_processEvent_md5,
    ids::eventItem_processEvent_processCmdLine,
];

pub const NETWORK_TERMS: &[TermId] = &[
    ids::eventItem_ipv4NetworkEvent_timestamp,
    ids::eventItem_ipv4NetworkEvent_remoteIP,
    ids::eventItem_ipv4NetworkEvent_remotePort,
    ids::eventItem_ipv4NetworkEvent_localIP,
    ids::eventItem_ipv4NetworkEvent_localPort,
    ids::eventItem_ipv4NetworkEvent_protocol,
    ids::eventItem_ipv4NetworkEvent_pid,
    ids::eventItem_ipv4NetworkEvent_process,
    ids::eventItem_ipv4NetworkEvent_processPath,
    ids::eventItem_ipv4NetworkEvent_username,
];

pub const DNS_LOOKUP_TERMS: &[TermId] = &[
    ids::eventItem_dnsLookupEvent_timestamp,
    ids::eventItem_dnsLookupEvent_hostname,
    ids::eventItem_dnsLookupEvent_pid,
    ids::eventItem_dnsLookupEvent_process,
    ids::eventItem_dnsLookupEvent_processPath,
    ids::eventItem_dnsLookupEvent_username,
];

/// Every eventItem term the live monitor answers.
pub fn terms() -> impl Iterator<Item = TermId> {
    [COMMON_TERMS, PROCESS_TERMS, NETWORK_TERMS, DNS_LOOKUP_TERMS]
        .into_iter()
        .flatten()
        .copied()
}

/// The process behind an event, as the process table knew it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
}

/// A process started (`start`) or ended (`end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEvent {
    /// `start` or `end`.
    pub event_type: &'static str,
    pub pid: u32,
    pub parent_pid: u32,
    pub process: String,
    pub path: Option<String>,
    pub cmdline: Option<String>,
    pub username: Option<String>,
    /// Seconds since the epoch.
    pub start_time: Option<i64>,
    /// ns after boot: the identity a kill checks (see ProcessInfo).
    pub start_boottime_ns: Option<u64>,
    pub parent_process: Option<String>,
    pub parent_path: Option<String>,
    /// The executable's MD5, once computed (see [`EventObservation::needs_md5`]).
    pub md5: Option<[u8; 16]>,
    /// The executable could not be read: md5 is absent, not pending.
    pub md5_unavailable: bool,
}

/// An IPv4 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkEvent {
    /// `TCP` or `UDP`.
    pub protocol: &'static str,
    pub local_ip: Option<Ipv4Addr>,
    pub local_port: Option<u16>,
    pub remote_ip: Option<Ipv4Addr>,
    pub remote_port: Option<u16>,
    pub actor: Actor,
    /// Refused by the block list.
    pub blocked: bool,
}

/// A name looked up (and answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsLookupEvent {
    pub hostname: String,
    pub actor: Actor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    Process(ProcessEvent),
    Network(NetworkEvent),
    DnsLookup(DnsLookupEvent),
}

impl EventBody {
    /// `eventItem/eventType`.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventBody::Process(_) => "processEvent",
            EventBody::Network(_) => "ipv4NetworkEvent",
            EventBody::DnsLookup(_) => "dnsLookupEvent",
        }
    }
}

/// One event record: an eventItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventObservation {
    pub uid: String,
    pub sequence: u64,
    /// Seconds since the epoch.
    pub timestamp: Option<i64>,
    pub body: EventBody,
}

/// The kind of object a detection's object acts as for responses: a
/// process start record as its `process` (it can be killed), a network
/// record as its `connection`; any other object as itself.
pub fn acts_as(object: &ObjectRef) -> &'static str {
    let field = |k: &str| object.fields.get(k).and_then(serde_json::Value::as_str);
    match (object.kind, field("event_type")) {
        ("event", Some("processEvent")) if field("event") == Some("start") => "process",
        ("event", Some("ipv4NetworkEvent")) => "connection",
        (kind, _) => kind,
    }
}

/// Numbers the records of one monitor session.
#[derive(Debug)]
pub struct EventCounter {
    session: String,
    next: u64,
}

impl EventCounter {
    /// `session`: what makes uids unique across sessions (e.g. the start
    /// time in ns since the epoch, in hex).
    pub fn new(session: impl Into<String>) -> Self {
        EventCounter {
            session: session.into(),
            next: 1,
        }
    }

    pub fn record(&mut self, timestamp: Option<i64>, body: EventBody) -> EventObservation {
        let sequence = self.next;
        self.next += 1;
        EventObservation {
            uid: format!("{}-{sequence}", self.session),
            sequence,
            timestamp,
            body,
        }
    }
}

impl EventObservation {
    /// A process event whose executable has not been hashed yet (and can be).
    pub fn needs_md5(&self) -> bool {
        matches!(&self.body, EventBody::Process(p) if p.md5.is_none() && !p.md5_unavailable)
    }

    /// The fields as (name, value) pairs: `eventItem/details/detail`.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        fn push<T: ToString>(out: &mut Vec<(&'static str, String)>, name: &'static str, v: Option<T>) {
            if let Some(v) = v {
                out.push((name, v.to_string()));
            }
        }
        fn actor(out: &mut Vec<(&'static str, String)>, a: &Actor) {
            push(out, "pid", a.pid);
            push(out, "process", a.process.as_deref());
            push(out, "processPath", a.path.as_deref());
            push(out, "username", a.username.as_deref());
        }
        let mut out = Vec::new();
        match &self.body {
            EventBody::Process(p) => {
                push(&mut out, "eventType", Some(p.event_type));
                push(&mut out, "pid", Some(p.pid));
                push(&mut out, "parentPid", Some(p.parent_pid));
                push(&mut out, "process", Some(&p.process));
                push(&mut out, "processPath", p.path.as_deref());
                push(&mut out, "processCmdLine", p.cmdline.as_deref());
                push(&mut out, "username", p.username.as_deref());
                push(&mut out, "startTime", p.start_time);
                push(&mut out, "parentProcess", p.parent_process.as_deref());
                push(&mut out, "parentProcessPath", p.parent_path.as_deref());
                push(&mut out, "md5", p.md5.map(hex::encode));
            }
            EventBody::Network(n) => {
                push(&mut out, "protocol", Some(n.protocol));
                push(&mut out, "localIP", n.local_ip);
                push(&mut out, "localPort", n.local_port);
                push(&mut out, "remoteIP", n.remote_ip);
                push(&mut out, "remotePort", n.remote_port);
                actor(&mut out, &n.actor);
                if n.blocked {
                    out.push(("blocked", "true".into()));
                }
            }
            EventBody::DnsLookup(d) => {
                push(&mut out, "hostname", Some(&d.hostname));
                actor(&mut out, &d.actor);
            }
        }
        out
    }
}

fn actor_field(a: &Actor, what: ActorField) -> Field<'_> {
    match what {
        ActorField::Pid => field::opt_int(a.pid.map(i64::from)),
        ActorField::Process => field::opt_str(a.process.as_deref()),
        ActorField::Path => field::opt_str(a.path.as_deref()),
        ActorField::Username => field::opt_str(a.username.as_deref()),
    }
}

#[derive(Clone, Copy)]
enum ActorField {
    Pid,
    Process,
    Path,
    Username,
}

fn port(p: Option<u16>) -> Field<'static> {
    field::opt_int(p.map(i64::from))
}

fn ip(a: Option<Ipv4Addr>) -> Field<'static> {
    field::ip(a.map(Into::into))
}

impl Observation for EventObservation {
    fn document(&self) -> &'static str {
        "eventItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        match term {
            ids::eventItem_uid => field::str(&self.uid),
            ids::eventItem_sequence_num => field::owned(self.sequence.to_string()),
            ids::eventItem_timestamp => field::time(self.timestamp),
            ids::eventItem_eventType => field::str(self.body.event_type()),
            ids::eventItem_details_detail_name => {
                Field::Values(self.details().into_iter().map(|(n, _)| Value::Str(Cow::Borrowed(n))).collect())
            }
            ids::eventItem_details_detail_value => {
                Field::Values(self.details().into_iter().map(|(_, v)| Value::Str(Cow::Owned(v))).collect())
            }
            _ => match &self.body {
                EventBody::Process(p) => match term {
                    ids::eventItem_processEvent_timestamp => field::time(self.timestamp),
                    ids::eventItem_processEvent_eventType => field::str(p.event_type),
                    ids::eventItem_processEvent_pid => field::int(p.pid.into()),
                    ids::eventItem_processEvent_parentPid => field::int(p.parent_pid.into()),
                    ids::eventItem_processEvent_process => field::str(&p.process),
                    ids::eventItem_processEvent_processPath => field::opt_str(p.path.as_deref()),
                    ids::eventItem_processEvent_processCmdLine => field::opt_str(p.cmdline.as_deref()),
                    ids::eventItem_processEvent_username => field::opt_str(p.username.as_deref()),
                    ids::eventItem_processEvent_startTime => field::time(p.start_time),
                    ids::eventItem_processEvent_parentProcess => field::opt_str(p.parent_process.as_deref()),
                    ids::eventItem_processEvent_parentProcessPath => field::opt_str(p.parent_path.as_deref()),
                    ids::eventItem_processEvent_md5 => match p.md5 {
                        Some(d) => Field::One(Value::Digest(Cow::Owned(d.to_vec()))),
                        None if p.md5_unavailable => Field::Absent,
                        None => Field::Pending,
                    },
                    _ => Field::Absent,
                },
                EventBody::Network(n) => match term {
                    ids::eventItem_ipv4NetworkEvent_timestamp => field::time(self.timestamp),
                    ids::eventItem_ipv4NetworkEvent_protocol => field::str(n.protocol),
                    ids::eventItem_ipv4NetworkEvent_localIP => ip(n.local_ip),
                    ids::eventItem_ipv4NetworkEvent_localPort => port(n.local_port),
                    ids::eventItem_ipv4NetworkEvent_remoteIP => ip(n.remote_ip),
                    ids::eventItem_ipv4NetworkEvent_remotePort => port(n.remote_port),
                    ids::eventItem_ipv4NetworkEvent_pid => actor_field(&n.actor, ActorField::Pid),
                    ids::eventItem_ipv4NetworkEvent_process => actor_field(&n.actor, ActorField::Process),
                    ids::eventItem_ipv4NetworkEvent_processPath => actor_field(&n.actor, ActorField::Path),
                    ids::eventItem_ipv4NetworkEvent_username => actor_field(&n.actor, ActorField::Username),
                    _ => Field::Absent,
                },
                EventBody::DnsLookup(d) => match term {
                    ids::eventItem_dnsLookupEvent_timestamp => field::time(self.timestamp),
                    ids::eventItem_dnsLookupEvent_hostname => field::str(&d.hostname),
                    ids::eventItem_dnsLookupEvent_pid => actor_field(&d.actor, ActorField::Pid),
                    ids::eventItem_dnsLookupEvent_process => actor_field(&d.actor, ActorField::Process),
                    ids::eventItem_dnsLookupEvent_processPath => actor_field(&d.actor, ActorField::Path),
                    ids::eventItem_dnsLookupEvent_username => actor_field(&d.actor, ActorField::Username),
                    _ => Field::Absent,
                },
            },
        }
    }

    fn object_ref(&self) -> ObjectRef {
        use serde_json::Value as J;
        let common = [
            ("event_type", J::from(self.body.event_type())),
            ("uid", self.uid.clone().into()),
            ("timestamp", self.timestamp.into()),
        ];
        let actor = |a: &Actor| {
            [
                ("pid", J::from(a.pid)),
                ("process", a.process.clone().into()),
                ("path", a.path.clone().into()),
                ("username", a.username.clone().into()),
            ]
        };
        let addr = |ip: Option<Ipv4Addr>, port: Option<u16>| match (ip, port) {
            (Some(ip), Some(port)) => J::from(format!("{ip}:{port}")),
            (Some(ip), None) => J::from(ip.to_string()),
            _ => J::Null,
        };
        let specific: Vec<(&'static str, J)> = match &self.body {
            EventBody::Process(p) => vec![
                ("event", p.event_type.into()),
                ("pid", p.pid.into()),
                ("ppid", p.parent_pid.into()),
                ("name", p.process.clone().into()),
                ("path", p.path.clone().into()),
                ("arguments", p.cmdline.clone().into()),
                ("username", p.username.clone().into()),
                ("start_time", p.start_time.into()),
                ("start_boottime_ns", p.start_boottime_ns.into()),
                ("parent_name", p.parent_process.clone().into()),
                ("parent_path", p.parent_path.clone().into()),
                ("md5", p.md5.map(hex::encode).into()),
            ],
            EventBody::Network(n) => {
                let mut v = vec![
                    ("protocol", J::from(n.protocol)),
                    ("local", addr(n.local_ip, n.local_port)),
                    ("remote", addr(n.remote_ip, n.remote_port)),
                    ("blocked", if n.blocked { J::Bool(true) } else { J::Null }),
                ];
                v.extend(actor(&n.actor));
                v
            }
            EventBody::DnsLookup(d) => {
                let mut v = vec![("hostname", J::from(d.hostname.clone()))];
                v.extend(actor(&d.actor));
                v
            }
        };
        object_ref("event", common.into_iter().chain(specific))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> EventBody {
        EventBody::Process(ProcessEvent {
            event_type: "start",
            pid: 42,
            parent_pid: 1,
            process: "evil".into(),
            path: Some("/tmp/evil".into()),
            cmdline: Some("/tmp/evil -x".into()),
            username: Some("root".into()),
            start_time: Some(1_700_000_000),
            start_boottime_ns: None,
            parent_process: Some("bash".into()),
            parent_path: Some("/usr/bin/bash".into()),
            md5: None,
            md5_unavailable: false,
        })
    }

    #[test]
    fn records_are_numbered_and_answer_their_own_terms_only() {
        let mut counter = EventCounter::new("s");
        let a = counter.record(Some(5), start());
        let b = counter.record(
            Some(6),
            EventBody::DnsLookup(DnsLookupEvent {
                hostname: "evil.example".into(),
                actor: Actor::default(),
            }),
        );
        assert_eq!((a.sequence, a.uid.as_str()), (1, "s-1"));
        assert_eq!((b.sequence, b.uid.as_str()), (2, "s-2"));
        assert_eq!(a.field(ids::eventItem_eventType), field::str("processEvent"));
        assert_eq!(a.field(ids::eventItem_processEvent_parentProcess), field::str("bash"));
        assert_eq!(a.field(ids::eventItem_processEvent_md5), Field::Pending);
        assert_eq!(a.field(ids::eventItem_ipv4NetworkEvent_pid), Field::Absent);
        assert_eq!(b.field(ids::eventItem_dnsLookupEvent_hostname), field::str("evil.example"));
        assert_eq!(b.field(ids::eventItem_processEvent_pid), Field::Absent);
        assert_eq!(b.field(ids::eventItem_dnsLookupEvent_pid), Field::Absent, "unknown asker");
        let obj = a.object_ref();
        assert_eq!(obj.kind, "event");
        assert_eq!(obj.fields["event_type"], "processEvent");
        assert_eq!(obj.fields["event"], "start");
        assert_eq!(obj.fields["pid"], 42);
    }

    #[test]
    fn details_pair_every_known_field() {
        let rec = EventCounter::new("s").record(None, start());
        let d = rec.details();
        assert!(d.contains(&("parentProcess", "bash".to_string())));
        assert!(d.contains(&("processCmdLine", "/tmp/evil -x".to_string())));
        assert!(!d.iter().any(|(n, _)| *n == "md5"), "not computed: not listed");
        let Field::Values(names) = rec.field(ids::eventItem_details_detail_name) else { panic!() };
        assert_eq!(names.len(), d.len());
    }

    #[test]
    fn an_unreadable_executable_makes_md5_absent_not_pending() {
        let mut body = start();
        if let EventBody::Process(p) = &mut body {
            p.md5_unavailable = true;
        }
        let rec = EventCounter::new("s").record(None, body);
        assert!(!rec.needs_md5());
        assert_eq!(rec.field(ids::eventItem_processEvent_md5), Field::Absent);
    }
}
