//! SudoLogItem, Syslog and Log: the text logs of syslog daemons.
//!
//! Files: /var/log/{auth.log,secure,syslog,messages,kern.log,daemon.log,
//! user.log,sudo.log} and their first rotation (`.1`); compressed rotations
//! (`.gz`) are not read. The systemd journal's binary files are not read
//! either (on a journal-only host, `journalctl` output would be the source:
//! not done, as it can run for minutes on a large journal).
//!
//! Lines are in the traditional `Mmm dd hh:mm:ss host sender[pid]: message`
//! form (the year is taken from the file's modification time) or in RFC 3339
//! form (`2024-01-02T03:04:05.123+01:00 host sender[pid]: message`).
//! An unreadable log is reported; a line that is not of either form is
//! skipped (logs hold continuation lines).

use super::host::{field, object_ref, CollectContext, CollectError, CollectStats, HostCollector, HostRoot, Sink, MAX_LINE};
use super::safe_read::{is_missing, open_system};
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};
use chrono::{Datelike, NaiveDate, TimeZone};

/// One syslog line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine {
    /// The timestamp as written.
    pub date: String,
    /// The timestamp, seconds since the epoch, when it could be read.
    pub time: Option<i64>,
    pub host: String,
    /// The program (`sshd`, `sudo`, `kernel`).
    pub sender: String,
    pub pid: Option<i64>,
    pub message: String,
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// How to turn a year-less local timestamp into a time.
#[derive(Debug, Clone, Copy)]
pub struct LogClock {
    /// The log file's modification time: the year of its last lines.
    pub file_mtime: Option<i64>,
    /// Interpret local times in the host's zone (live) or as UTC.
    pub local: bool,
}

impl LogClock {
    fn bsd_time(&self, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
        let reference = chrono::DateTime::from_timestamp(self.file_mtime.unwrap_or_else(|| chrono::Utc::now().timestamp()), 0)?;
        let mut year = reference.year();
        // A line dated after the file's last change is from the year before.
        if month > reference.month() + 1 {
            year -= 1;
        }
        let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, m, s)?;
        if self.local {
            chrono::Local.from_local_datetime(&naive).earliest().map(|t| t.timestamp())
        } else {
            Some(naive.and_utc().timestamp())
        }
    }
}

/// Split `sender[pid]: message` (or `sender: message`).
fn split_sender(rest: &str) -> Option<(String, Option<i64>, String)> {
    let colon = rest.find(": ").or_else(|| rest.strip_suffix(':').map(|r| r.len()))?;
    let tag = &rest[..colon];
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let message = rest.get(colon + 2..).unwrap_or("").to_string();
    match tag.split_once('[') {
        Some((name, pid)) => Some((name.to_string(), pid.strip_suffix(']').and_then(|p| p.parse().ok()), message)),
        None => Some((tag.to_string(), None, message)),
    }
}

/// Parse one syslog line.
pub fn parse_syslog_line(line: &str, clock: &LogClock) -> Option<SyslogLine> {
    // The whole BSD date is ASCII: slicing it by bytes is safe.
    let bsd = line.len() > 16 && line.as_bytes()[..16].is_ascii() && MONTHS.contains(&&line[..3]) && line.as_bytes()[15] == b' ';
    let (date, time, rest) = if bsd {
        // Mmm dd hh:mm:ss
        let date = &line[..15];
        let month = MONTHS.iter().position(|m| *m == &date[..3])? as u32 + 1;
        let day: u32 = date[4..6].trim().parse().ok()?;
        let hms: Vec<u32> = date[7..15].split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        if hms.len() != 3 {
            return None;
        }
        (date.to_string(), clock.bsd_time(month, day, hms[0], hms[1], hms[2]), &line[16..])
    } else {
        let (date, rest) = line.split_once(' ')?;
        let t = chrono::DateTime::parse_from_rfc3339(date).ok()?;
        (date.to_string(), Some(t.timestamp()), rest)
    };
    let (host, rest) = rest.split_once(' ')?;
    let (sender, pid, message) = split_sender(rest)?;
    Some(SyslogLine {
        date,
        time,
        host: host.to_string(),
        sender,
        pid,
        message,
    })
}

/// One su or sudo use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SudoEvent {
    /// `sudo` or `su`.
    pub su_or_sudo: &'static str,
    pub username: Option<String>,
    pub execute_as: Option<String>,
    pub tty: Option<String>,
    pub pwd: Option<String>,
    pub command: Option<String>,
    pub success: bool,
}

/// Read a sudo line's message: `alice : TTY=pts/0 ; PWD=/h ; USER=root ; COMMAND=/bin/id`,
/// possibly with a failure reason before the fields.
pub fn parse_sudo_message(msg: &str) -> Option<SudoEvent> {
    let (user, rest) = msg.trim_start().split_once(" : ")?;
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    let mut ev = SudoEvent {
        su_or_sudo: "sudo",
        username: Some(user.to_string()),
        success: true,
        ..Default::default()
    };
    let mut saw_field = false;
    for part in rest.split(" ; ") {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=').filter(|(k, _)| k.chars().all(|c| c.is_ascii_uppercase())) {
            saw_field = true;
            match k {
                "TTY" => ev.tty = Some(v.to_string()),
                "PWD" => ev.pwd = Some(v.to_string()),
                "USER" => ev.execute_as = Some(v.to_string()),
                "COMMAND" => ev.command = Some(v.to_string()),
                _ => {}
            }
        } else {
            // A reason: "3 incorrect password attempts", "user NOT in sudoers", "command not allowed".
            ev.success = false;
        }
    }
    saw_field.then_some(ev)
}

/// Read an su line's message (util-linux, shadow and PAM forms).
pub fn parse_su_message(msg: &str) -> Option<SudoEvent> {
    let su = |user: &str, target: &str, tty: Option<&str>, success: bool| SudoEvent {
        su_or_sudo: "su",
        username: Some(user.to_string()),
        execute_as: Some(target.to_string()),
        tty: tty.map(str::to_string),
        success,
        ..Default::default()
    };
    let msg = msg.trim();
    // "(to root) alice on pts/0", "FAILED SU (to root) alice on pts/0"
    let (failed, body) = match msg.strip_prefix("FAILED SU ") {
        Some(b) => (true, b),
        None => (false, msg),
    };
    if let Some(b) = body.strip_prefix("(to ") {
        let (target, rest) = b.split_once(") ")?;
        let (user, tty) = match rest.split_once(" on ") {
            Some((u, t)) => (u, Some(t)),
            None => (rest, None),
        };
        return Some(su(user, target, tty, !failed));
    }
    // "Successful su for root by alice", "FAILED su for root by alice"
    for (prefix, ok) in [("Successful su for ", true), ("FAILED su for ", false)] {
        if let Some(b) = msg.strip_prefix(prefix) {
            let (target, user) = b.split_once(" by ")?;
            return Some(su(user, target, None, ok));
        }
    }
    // "+ pts/0 alice:root", "- pts/0 alice:root"
    let ok = msg.starts_with("+ ");
    if ok || msg.starts_with("- ") {
        let (tty, pair) = msg[2..].split_once(' ')?;
        let (user, target) = pair.split_once(':')?;
        return Some(su(user, target, Some(tty), ok));
    }
    None
}

/// A Syslog (or Log) observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogObservation {
    pub line: SyslogLine,
    pub log_file: String,
    pub line_number: u64,
    pub log_modified: Option<i64>,
    /// `Syslog` or `Log`.
    pub document: &'static str,
}

pub const SYSLOG_TERMS: &[TermId] = &[
    ids::Syslog_Date,
    ids::Syslog_Host,
    ids::Syslog_LogFile,
    ids::Syslog_LogFileModified,
    ids::Syslog_Message,
    ids::Syslog_PID,
    ids::Syslog_Sender,
];

pub const LOG_TERMS: &[TermId] = &[ids::Log_msg, ids::Log_pid, ids::Log_process_name, ids::Log_time];

impl Observation for SyslogObservation {
    fn document(&self) -> &'static str {
        self.document
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let l = &self.line;
        match term {
            ids::Syslog_Date => field::str(&l.date),
            ids::Syslog_Host => field::str(&l.host),
            ids::Syslog_LogFile => field::str(&self.log_file),
            ids::Syslog_LogFileModified => field::time(self.log_modified),
            ids::Syslog_Message | ids::Log_msg => field::str(&l.message),
            ids::Syslog_PID | ids::Log_pid => field::opt_int(l.pid),
            ids::Syslog_Sender | ids::Log_process_name => field::str(&l.sender),
            ids::Log_time => field::time(l.time),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref(
            "syslog",
            [
                ("file", self.log_file.clone().into()),
                ("line", self.line_number.into()),
                ("sender", self.line.sender.clone().into()),
                ("date", self.line.date.clone().into()),
            ],
        )
    }
}

/// A SudoLogItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoObservation {
    pub event: SudoEvent,
    pub line: SyslogLine,
    pub source_log: String,
    pub line_number: u64,
    pub log_modified: Option<i64>,
}

pub const SUDO_TERMS: &[TermId] = &[
    ids::SudoLogItem_ModifiedTimestamp,
    ids::SudoLogItem_SourceLog,
    ids::SudoLogItem_command,
    ids::SudoLogItem_pwd,
    ids::SudoLogItem_suOrSudo,
    ids::SudoLogItem_success,
    ids::SudoLogItem_timestamp,
    ids::SudoLogItem_tty,
    ids::SudoLogItem_userExecuteAs,
    ids::SudoLogItem_username,
];

impl Observation for SudoObservation {
    fn document(&self) -> &'static str {
        "SudoLogItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let e = &self.event;
        match term {
            ids::SudoLogItem_ModifiedTimestamp => field::time(self.log_modified),
            ids::SudoLogItem_SourceLog => field::str(&self.source_log),
            ids::SudoLogItem_command => field::opt_str(e.command.as_deref()),
            ids::SudoLogItem_pwd => field::opt_str(e.pwd.as_deref()),
            ids::SudoLogItem_suOrSudo => field::str(e.su_or_sudo),
            ids::SudoLogItem_success => field::bool(e.success),
            ids::SudoLogItem_timestamp => match self.line.time {
                Some(t) => field::time(Some(t)),
                None => field::str(&self.line.date),
            },
            ids::SudoLogItem_tty => field::opt_str(e.tty.as_deref()),
            ids::SudoLogItem_userExecuteAs => field::opt_str(e.execute_as.as_deref()),
            ids::SudoLogItem_username => field::opt_str(e.username.as_deref()),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref(
            "sudo_log",
            [
                ("file", self.source_log.clone().into()),
                ("line", self.line_number.into()),
                ("user", self.event.username.clone().into()),
                ("command", self.event.command.clone().into()),
            ],
        )
    }
}

/// Logs holding authentication events.
pub const AUTH_LOGS: &[&str] = &[
    "/var/log/auth.log",
    "/var/log/auth.log.1",
    "/var/log/secure",
    "/var/log/secure.1",
    "/var/log/sudo.log",
];
/// Every syslog file read.
pub const SYSLOG_FILES: &[&str] = &[
    "/var/log/syslog",
    "/var/log/syslog.1",
    "/var/log/messages",
    "/var/log/messages.1",
    "/var/log/auth.log",
    "/var/log/auth.log.1",
    "/var/log/secure",
    "/var/log/secure.1",
    "/var/log/kern.log",
    "/var/log/daemon.log",
    "/var/log/user.log",
];

/// Most bytes read of one log file: a log filled to the disk's size (or a
/// sparse file) must not hold the scan; the rest is reported as not read.
pub const LOG_LIMIT: u64 = 1 << 30;

/// Walk the lines of the present files among `files` (regular files only,
/// opened without blocking, at most [`LOG_LIMIT`] bytes each); a file that exists
/// but cannot be read is reported, a missing one skipped.
fn each_log_line(
    root: &HostRoot,
    files: &[&'static str],
    stats: &mut CollectStats,
    mut f: impl FnMut(&'static str, u64, Option<i64>, SyslogLine, &mut CollectStats),
) {
    for &file in files {
        let path = root.path(file);
        let fh = match open_system(&path) {
            Ok(fh) => fh,
            Err(e) if is_missing(&e) => continue,
            Err(e) => {
                stats.error(e);
                continue;
            }
        };
        let modified = Some(fh.mtime());
        let clock = LogClock {
            file_mtime: modified,
            local: root.is_live(),
        };
        let mut lines = Vec::new();
        let result = fh.for_each_line(LOG_LIMIT, MAX_LINE, |n, bytes| {
            let text = String::from_utf8_lossy(bytes);
            if let Some(l) = parse_syslog_line(&text, &clock) {
                lines.push((n, l));
            }
            // Hand over in batches to bound memory on huge logs.
            if lines.len() >= 4096 {
                for (n, l) in lines.drain(..) {
                    f(file, n, modified, l, stats);
                }
            }
        });
        for (n, l) in lines {
            f(file, n, modified, l, stats);
        }
        match result {
            Ok(false) => {}
            Ok(true) => stats.error(CollectError::Truncated { path, limit: LOG_LIMIT }),
            Err(e) => stats.error(e),
        }
    }
}

/// The SudoLogItem collector.
pub struct SudoLogCollector;

impl HostCollector for SudoLogCollector {
    fn document(&self) -> &'static str {
        "SudoLogItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("SudoLogItem");
        each_log_line(&cx.root, AUTH_LOGS, &mut stats, |file, n, modified, line, stats| {
            let event = match line.sender.as_str() {
                "sudo" => parse_sudo_message(&line.message),
                "su" => parse_su_message(&line.message),
                _ => None,
            };
            if let Some(event) = event {
                let mut obs = SudoObservation {
                    event,
                    line,
                    source_log: file.to_string(),
                    line_number: n,
                    log_modified: modified,
                };
                stats.emit(sink, &mut obs, |_, _| {});
            }
        });
        stats
    }
}

/// The Syslog collector (also answering the `Log` document).
pub struct SyslogCollector {
    document: &'static str,
}

impl SyslogCollector {
    pub fn syslog() -> Self {
        SyslogCollector { document: "Syslog" }
    }

    pub fn log() -> Self {
        SyslogCollector { document: "Log" }
    }
}

impl HostCollector for SyslogCollector {
    fn document(&self) -> &'static str {
        self.document
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new(self.document);
        let document = self.document;
        each_log_line(&cx.root, SYSLOG_FILES, &mut stats, |file, n, modified, line, stats| {
            let mut obs = SyslogObservation {
                line,
                log_file: file.to_string(),
                line_number: n,
                log_modified: modified,
                document,
            };
            stats.emit(sink, &mut obs, |_, _| {});
        });
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: LogClock = LogClock {
        file_mtime: Some(1_704_067_200 + 86_400 * 40),
        local: false,
    }; // 2024-02-10

    #[test]
    fn parses_bsd_and_rfc3339_lines() {
        let l = parse_syslog_line("Feb  9 03:04:05 web1 sshd[812]: Accepted publickey for bob", &UTC).unwrap();
        assert_eq!(
            (l.host.as_str(), l.sender.as_str(), l.pid, l.message.as_str()),
            ("web1", "sshd", Some(812), "Accepted publickey for bob")
        );
        assert_eq!(l.time, Some(1_707_447_845)); // 2024-02-09T03:04:05Z
                                                 // December lines in a February file are from the year before.
        let l = parse_syslog_line("Dec 31 23:00:00 h kernel: x", &UTC).unwrap();
        assert_eq!(l.time, Some(1_704_063_600));
        assert_eq!(l.pid, None);
        let l = parse_syslog_line("2024-01-02T03:04:05.123456+01:00 h CRON[9]: (root) CMD (x)", &UTC).unwrap();
        assert_eq!(l.time, Some(1_704_161_045));
        assert_eq!(l.sender, "CRON");
        // An impossible date keeps the line, without a time.
        assert_eq!(parse_syslog_line("Feb 30 03:04:05 h x: y", &UTC).unwrap().time, None);
        for bad in ["", "Feb  9 03:04:05", "not a log line at all", "Fée 9 03:04:05 h x: y"] {
            assert_eq!(parse_syslog_line(bad, &UTC), None, "{bad:?}");
        }
    }

    #[test]
    fn regression_multibyte_char_inside_a_bsd_date_does_not_panic() {
        // Found by the text_formats fuzz target: slicing the date at byte 4.
        assert_eq!(parse_syslog_line("Nov\u{fffd} 14 2:12:00 web1 sudo:  eve : TTY=pts/7", &UTC), None);
        assert_eq!(parse_syslog_line("Nov 1\u{e9}4 22:12:00 web1 x: y", &UTC), None);
    }

    #[test]
    fn parses_sudo_lines() {
        let e = parse_sudo_message("   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u").unwrap();
        assert!(e.success);
        assert_eq!(e.command.as_deref(), Some("/usr/bin/id -u"));
        assert_eq!(e.execute_as.as_deref(), Some("root"));
        let e = parse_sudo_message("mallory : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh").unwrap();
        assert!(!e.success);
        assert_eq!(parse_sudo_message("pam_unix(sudo:session): session opened for user root"), None);
    }

    #[test]
    fn parses_su_lines() {
        let e = parse_su_message("(to root) alice on pts/0").unwrap();
        assert!(e.success && e.username.as_deref() == Some("alice") && e.tty.as_deref() == Some("pts/0"));
        assert!(!parse_su_message("FAILED SU (to root) bob on pts/2").unwrap().success);
        assert_eq!(
            parse_su_message("Successful su for root by carol").unwrap().username.as_deref(),
            Some("carol")
        );
        let e = parse_su_message("- pts/3 dave:root").unwrap();
        assert!(!e.success && e.execute_as.as_deref() == Some("root"));
        assert_eq!(parse_su_message("pam_unix(su:session): session closed"), None);
    }
}
