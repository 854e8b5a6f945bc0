//! LoginHistoryItem: logins, logouts and boots from /var/log/wtmp (and its
//! rotated `wtmp.1`), failed logins from /var/log/btmp (`btmp.1`).
//!
//! The files are arrays of glibc `struct utmp` records (384 bytes on every
//! 64-bit Linux glibc ABI, little-endian here). Each record is parsed with
//! bounds; a trailing partial record is reported. A login is paired with the
//! next logout on the same terminal (or the next boot or shutdown) for its
//! end time, as `last` does.

use super::host::{field, object_ref, CollectContext, CollectError, CollectStats, HostCollector, Sink};
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Size of one `struct utmp`.
pub const UTMP_RECORD: usize = 384;

/// ut_type values.
pub const RUN_LVL: i16 = 1;
pub const BOOT_TIME: i16 = 2;
pub const NEW_TIME: i16 = 3;
pub const OLD_TIME: i16 = 4;
pub const INIT_PROCESS: i16 = 5;
pub const LOGIN_PROCESS: i16 = 6;
pub const USER_PROCESS: i16 = 7;
pub const DEAD_PROCESS: i16 = 8;
pub const ACCOUNTING: i16 = 9;

/// One utmp record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtmpRecord {
    pub ut_type: i16,
    pub pid: i32,
    /// Terminal (`pts/0`, `tty1`, `~` for boot and run level records).
    pub line: String,
    pub user: String,
    /// Remote host (or the kernel version for boot records).
    pub host: String,
    /// Seconds since the epoch.
    pub time: i64,
    pub addr: Option<IpAddr>,
}

/// A NUL-terminated fixed-size string field.
fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Parse one record (exactly [`UTMP_RECORD`] bytes, else None).
pub fn parse_utmp(rec: &[u8]) -> Option<UtmpRecord> {
    if rec.len() != UTMP_RECORD {
        return None;
    }
    let i16_at = |o: usize| i16::from_le_bytes([rec[o], rec[o + 1]]);
    let i32_at = |o: usize| i32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
    // Layout: type(2) pad(2) pid(4) line[32]@8 id[4]@40 user[32]@44 host[256]@76
    // exit(4)@332 session(4)@336 tv_sec(4)@340 tv_usec(4)@344 addr_v6[16]@348 unused[20]@364
    let ut_type = i16_at(0);
    let addr_bytes: [u8; 16] = rec[348..364].try_into().ok()?;
    let addr = if addr_bytes == [0; 16] {
        None
    } else if addr_bytes[4..] == [0; 12] {
        Some(IpAddr::V4(Ipv4Addr::new(
            addr_bytes[0],
            addr_bytes[1],
            addr_bytes[2],
            addr_bytes[3],
        )))
    } else {
        Some(IpAddr::V6(Ipv6Addr::from(addr_bytes)))
    };
    Some(UtmpRecord {
        ut_type,
        pid: i32_at(4),
        line: cstr(&rec[8..40]),
        user: cstr(&rec[44..76]),
        host: cstr(&rec[76..332]),
        time: i64::from(i32_at(340) as u32),
        addr,
    })
}

/// The name of a record type.
pub fn type_name(t: i16) -> &'static str {
    match t {
        0 => "EMPTY",
        RUN_LVL => "RUN_LVL",
        BOOT_TIME => "BOOT_TIME",
        NEW_TIME => "NEW_TIME",
        OLD_TIME => "OLD_TIME",
        INIT_PROCESS => "INIT_PROCESS",
        LOGIN_PROCESS => "LOGIN_PROCESS",
        USER_PROCESS => "USER_PROCESS",
        DEAD_PROCESS => "DEAD_PROCESS",
        ACCOUNTING => "ACCOUNTING",
        _ => "UNKNOWN",
    }
}

/// Largest utmp file read (about 2.8 million records).
pub const UTMP_LIMIT: u64 = 1 << 30;

/// Read every record of a utmp file. A trailing partial record is an error
/// returned beside the records read.
pub fn read_utmp(path: &Path) -> Result<(Vec<UtmpRecord>, Option<CollectError>), CollectError> {
    let err = |source: io::Error| CollectError::Read {
        path: path.to_path_buf(),
        source,
    };
    // A regular file only, opened without blocking (never a FIFO).
    let file = super::safe_read::open_system(path)?;
    let len = file.size();
    if len > UTMP_LIMIT {
        return Err(CollectError::TooLarge {
            path: path.to_path_buf(),
            limit: UTMP_LIMIT,
        });
    }
    let mut reader = io::BufReader::new(file.into_file().take(UTMP_LIMIT));
    let mut out = Vec::new();
    let mut rec = [0u8; UTMP_RECORD];
    loop {
        let mut filled = 0;
        while filled < UTMP_RECORD {
            match reader.read(&mut rec[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(e)),
            }
        }
        if filled == 0 {
            return Ok((out, None));
        }
        if filled < UTMP_RECORD {
            let line = out.len() as u64 + 1;
            return Ok((
                out,
                Some(CollectError::Malformed {
                    path: path.to_path_buf(),
                    line,
                    reason: format!("partial record of {filled} bytes"),
                }),
            ));
        }
        out.extend(parse_utmp(&rec));
    }
}

/// One login history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginEntry {
    pub record: UtmpRecord,
    /// The file it came from.
    pub path: String,
    /// Index of the record in the file (0-based).
    pub index: usize,
    pub failed: bool,
    pub end_time: Option<i64>,
}

impl LoginEntry {
    /// Remote unless the host is empty or a local X display (`:0`).
    pub fn is_remote(&self) -> bool {
        let h = &self.record.host;
        self.record.addr.is_some_and(|a| !a.is_loopback() && !a.is_unspecified()) || (!h.is_empty() && !h.starts_with(':'))
    }
}

/// Pair logins with their ends and drop the records that only end one.
pub fn history(records: Vec<UtmpRecord>, path: &str, failed: bool) -> Vec<LoginEntry> {
    let mut out: Vec<LoginEntry> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for (index, record) in records.into_iter().enumerate() {
        match record.ut_type {
            DEAD_PROCESS if !failed => {
                if let Some(i) = open.remove(&record.line) {
                    out[i].end_time = Some(record.time);
                }
                continue;
            }
            BOOT_TIME | RUN_LVL if !failed => {
                for (_, i) in open.drain() {
                    out[i].end_time = Some(record.time);
                }
            }
            USER_PROCESS if !failed => {
                if let Some(i) = open.insert(record.line.clone(), out.len()) {
                    // A new login on the same line ends the previous one.
                    out[i].end_time.get_or_insert(record.time);
                }
            }
            0 | INIT_PROCESS | ACCOUNTING if !failed => continue,
            _ => {}
        }
        out.push(LoginEntry {
            record,
            path: path.to_string(),
            index,
            failed,
            end_time: None,
        });
    }
    out
}

/// A LoginHistoryItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginObservation(pub LoginEntry);

pub const TERMS: &[TermId] = &[
    ids::LoginHistoryItem_EndTime,
    ids::LoginHistoryItem_Hostname,
    ids::LoginHistoryItem_IPv4Address,
    ids::LoginHistoryItem_IPv6Address,
    ids::LoginHistoryItem_IsFailedLogin,
    ids::LoginHistoryItem_IsRemoteLogin,
    ids::LoginHistoryItem_PID,
    ids::LoginHistoryItem_Path,
    ids::LoginHistoryItem_RecordType,
    ids::LoginHistoryItem_SessionLength,
    ids::LoginHistoryItem_StartTime,
    ids::LoginHistoryItem_Terminal,
    ids::LoginHistoryItem_Username,
];

impl Observation for LoginObservation {
    fn document(&self) -> &'static str {
        "LoginHistoryItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        fn nonempty(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        let e = &self.0;
        let r = &e.record;
        match term {
            ids::LoginHistoryItem_EndTime => field::time(e.end_time),
            ids::LoginHistoryItem_Hostname => field::opt_str(nonempty(&r.host)),
            ids::LoginHistoryItem_IPv4Address => field::ip(r.addr.filter(IpAddr::is_ipv4)),
            ids::LoginHistoryItem_IPv6Address => field::ip(r.addr.filter(IpAddr::is_ipv6)),
            ids::LoginHistoryItem_IsFailedLogin => field::bool(e.failed),
            ids::LoginHistoryItem_IsRemoteLogin => field::bool(e.is_remote()),
            ids::LoginHistoryItem_PID => field::int(r.pid.into()),
            ids::LoginHistoryItem_Path => field::str(&e.path),
            ids::LoginHistoryItem_RecordType => field::str(type_name(r.ut_type)),
            // Seconds.
            ids::LoginHistoryItem_SessionLength => e
                .end_time
                .map_or(Field::Absent, |end| field::owned((end - r.time).max(0).to_string())),
            ids::LoginHistoryItem_StartTime => field::time(Some(r.time)),
            ids::LoginHistoryItem_Terminal => field::opt_str(nonempty(&r.line)),
            ids::LoginHistoryItem_Username => field::opt_str(nonempty(&r.user)),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let e = &self.0;
        object_ref(
            "login",
            [
                ("path", e.path.clone().into()),
                ("record", e.index.into()),
                ("type", type_name(e.record.ut_type).into()),
                ("user", e.record.user.clone().into()),
                ("terminal", e.record.line.clone().into()),
                ("host", e.record.host.clone().into()),
                ("time", e.record.time.into()),
            ],
        )
    }
}

/// The files read, and whether they hold failed logins.
pub const FILES: &[(&str, bool)] = &[
    ("/var/log/wtmp", false),
    ("/var/log/wtmp.1", false),
    ("/var/log/btmp", true),
    ("/var/log/btmp.1", true),
];

/// The LoginHistoryItem collector.
pub struct LoginCollector;

impl HostCollector for LoginCollector {
    fn document(&self) -> &'static str {
        "LoginHistoryItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("LoginHistoryItem");
        for &(file, failed) in FILES {
            let path = cx.root.path(file);
            if file.ends_with(".1") && !path.exists() {
                continue;
            }
            match read_utmp(&path) {
                Ok((records, partial)) => {
                    if let Some(e) = partial {
                        stats.error(e);
                    }
                    for entry in history(records, file, failed) {
                        stats.emit(sink, &mut LoginObservation(entry), |_, _| {});
                    }
                }
                Err(e) => stats.error(e),
            }
        }
        stats
    }
}

/// Build a utmp record's bytes (tests and fuzzing seeds).
pub fn encode_utmp(r: &UtmpRecord) -> [u8; UTMP_RECORD] {
    let mut b = [0u8; UTMP_RECORD];
    b[0..2].copy_from_slice(&r.ut_type.to_le_bytes());
    b[4..8].copy_from_slice(&r.pid.to_le_bytes());
    let put = |b: &mut [u8; UTMP_RECORD], at: usize, len: usize, s: &str| {
        let n = s.len().min(len);
        b[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
    };
    put(&mut b, 8, 32, &r.line);
    put(&mut b, 44, 32, &r.user);
    put(&mut b, 76, 256, &r.host);
    b[340..344].copy_from_slice(&(r.time as u32).to_le_bytes());
    match r.addr {
        Some(IpAddr::V4(a)) => b[348..352].copy_from_slice(&a.octets()),
        Some(IpAddr::V6(a)) => b[348..364].copy_from_slice(&a.octets()),
        None => {}
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ut_type: i16, line: &str, user: &str, host: &str, time: i64) -> UtmpRecord {
        UtmpRecord {
            ut_type,
            pid: 42,
            line: line.into(),
            user: user.into(),
            host: host.into(),
            time,
            addr: None,
        }
    }

    #[test]
    fn records_round_trip() {
        let mut r = rec(USER_PROCESS, "pts/0", "alice", "203.0.113.9", 1_700_000_000);
        r.addr = Some("203.0.113.9".parse().unwrap());
        assert_eq!(parse_utmp(&encode_utmp(&r)), Some(r.clone()));
        r.addr = Some("2001:db8::1".parse().unwrap());
        assert_eq!(parse_utmp(&encode_utmp(&r)), Some(r));
        assert_eq!(parse_utmp(&[0u8; 383]), None);
    }

    #[test]
    fn logins_end_at_logout_or_boot() {
        let recs = vec![
            rec(BOOT_TIME, "~", "reboot", "6.1.0", 100),
            rec(USER_PROCESS, "pts/0", "alice", "h1", 200),
            rec(USER_PROCESS, "pts/1", "bob", "", 210),
            rec(DEAD_PROCESS, "pts/0", "", "", 300),
            rec(BOOT_TIME, "~", "reboot", "6.1.0", 400),
        ];
        let h = history(recs, "/var/log/wtmp", false);
        let summary: Vec<_> = h.iter().map(|e| (e.record.user.as_str(), e.end_time)).collect();
        assert_eq!(
            summary,
            [("reboot", None), ("alice", Some(300)), ("bob", Some(400)), ("reboot", None)]
        );
        assert!(h[1].is_remote() && !h[2].is_remote());
    }
}
