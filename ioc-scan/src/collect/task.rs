//! TaskItem: scheduled tasks — cron tables, anacron jobs, the scripts of
//! /etc/cron.{hourly,daily,weekly,monthly}, and systemd timers with the
//! service each starts (system units and users' `~/.config/systemd/user`).
//!
//! `path` is the program a task runs (the first word of its command when
//! absolute); its digests are computed only when an IOC asks.

use super::host::{
    digest, field, object_ref, read_text, CollectContext, CollectStats, DigestKinds, Digests, HostCollector, HostRoot, Sink,
};
use super::user::load_passwd;
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::collections::HashSet;

/// One scheduled task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Task {
    /// Job identifier, script or timer name, or `FILE:LINE` for a cron line.
    pub name: String,
    pub command: Option<String>,
    pub minute: Option<String>,
    pub hour: Option<String>,
    pub day_of_month: Option<String>,
    pub month: Option<String>,
    pub day_of_week: Option<String>,
    /// `@reboot`, `@daily`...; for timers `OnBootSec=5min`...
    pub event: Option<String>,
    /// anacron: period in days (or `@monthly`); timers: `OnCalendar` value;
    /// cron.daily scripts: `daily`.
    pub period: Option<String>,
    /// anacron: delay in minutes.
    pub delay: Option<i64>,
    /// anacron job identifier.
    pub job_identifier: Option<String>,
    /// The file defining the task (cron table, timer unit).
    pub crontab_path: String,
    /// The program run.
    pub path: Option<String>,
    pub user: Option<String>,
    /// `cron`, `anacron`, `cron_script`, `systemd_timer`.
    pub kind: &'static str,
    pub line: Option<u64>,
    pub digests: Option<Digests>,
}

/// Whether a cron line sets a variable (`MAILTO=root`, `PATH = /bin`).
fn is_assignment(line: &str) -> bool {
    match line.split_once('=') {
        Some((name, _)) => {
            let name = name.trim();
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// The program of a command: its first word when it is an absolute path.
pub fn program(command: &str) -> Option<String> {
    let first = command.split_ascii_whitespace().next()?;
    first.starts_with('/').then(|| first.to_string())
}

/// Split off the first `n` whitespace-separated words.
fn words(line: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = line.trim_start();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let end = rest.find(|c: char| c.is_ascii_whitespace())?;
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Some((out, rest))
}

/// Parse a cron table. `user` is the owner of a per-user table; None for
/// system tables, whose lines name the user after the schedule.
pub fn parse_crontab(text: &str, file: &str, user: Option<&str>) -> Vec<Task> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || is_assignment(line) {
            continue;
        }
        let mut task = Task {
            crontab_path: file.to_string(),
            kind: "cron",
            line: Some(n as u64 + 1),
            name: format!("{file}:{}", n + 1),
            ..Default::default()
        };
        let rest = if line.starts_with('@') {
            let Some((w, rest)) = words(line, 1) else { continue };
            task.event = Some(w[0].to_string());
            rest
        } else {
            let Some((w, rest)) = words(line, 5) else { continue };
            task.minute = Some(w[0].to_string());
            task.hour = Some(w[1].to_string());
            task.day_of_month = Some(w[2].to_string());
            task.month = Some(w[3].to_string());
            task.day_of_week = Some(w[4].to_string());
            rest
        };
        let command = match user {
            Some(u) => {
                task.user = Some(u.to_string());
                rest
            }
            None => {
                let Some((w, cmd)) = words(rest, 1) else { continue };
                task.user = Some(w[0].to_string());
                cmd
            }
        };
        if command.is_empty() {
            continue;
        }
        task.path = program(command);
        task.command = Some(command.to_string());
        out.push(task);
    }
    out
}

/// Parse /etc/anacrontab: `period delay job-identifier command`.
pub fn parse_anacrontab(text: &str, file: &str) -> Vec<Task> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || is_assignment(line) {
            continue;
        }
        let Some((w, command)) = words(line, 3) else { continue };
        if command.is_empty() {
            continue;
        }
        out.push(Task {
            name: w[2].to_string(),
            period: Some(w[0].to_string()),
            delay: w[1].parse().ok(),
            job_identifier: Some(w[2].to_string()),
            command: Some(command.to_string()),
            path: program(command),
            crontab_path: file.to_string(),
            user: Some("root".into()),
            kind: "anacron",
            line: Some(n as u64 + 1),
            ..Default::default()
        });
    }
    out
}

/// `Key=value` settings of a unit file section (the last one wins, except
/// that every value is kept for keys given several times).
pub fn unit_settings(text: &str, section: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if !inside || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The command of an `ExecStart=` value without its prefixes (`-@:+!`).
fn exec_command(v: &str) -> String {
    v.trim_start_matches(['-', '@', ':', '+', '!']).to_string()
}

/// Systemd unit directories, most important first.
const SYSTEM_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
const USER_UNIT_DIRS: &[&str] = &["/etc/systemd/user", "/usr/lib/systemd/user"];

/// The timers of unit directories `dirs` (host paths), one per name.
fn timers(root: &HostRoot, dirs: &[String], user: Option<&str>, seen: &mut HashSet<String>, out: &mut Vec<Task>) {
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(root.path(dir)) else { continue };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".timer"))
            .collect();
        names.sort();
        for name in names {
            if !seen.insert(format!("{}/{name}", user.unwrap_or(""))) {
                continue;
            }
            let unit_path = format!("{dir}/{name}");
            let Ok(text) = read_text(&root.path(&unit_path)) else { continue };
            let timer = unit_settings(&text, "Timer");
            let mut task = Task {
                name: name.clone(),
                crontab_path: unit_path,
                kind: "systemd_timer",
                user: user.map(str::to_string),
                ..Default::default()
            };
            let mut events = Vec::new();
            let mut calendars = Vec::new();
            let mut service = name.trim_end_matches(".timer").to_string() + ".service";
            for (k, v) in timer {
                match k.as_str() {
                    "OnCalendar" => calendars.push(v),
                    "OnActiveSec" | "OnBootSec" | "OnStartupSec" | "OnUnitActiveSec" | "OnUnitInactiveSec" => {
                        events.push(format!("{k}={v}"))
                    }
                    "Unit" => service = v,
                    _ => {}
                }
            }
            task.period = (!calendars.is_empty()).then(|| calendars.join("; "));
            task.event = (!events.is_empty()).then(|| events.join("; "));
            for d in dirs {
                if let Ok(svc) = read_text(&root.path(format!("{d}/{service}"))) {
                    let s = unit_settings(&svc, "Service");
                    if let Some((_, v)) = s.iter().find(|(k, _)| k == "ExecStart") {
                        let cmd = exec_command(v);
                        task.path = program(&cmd);
                        task.command = Some(cmd);
                    }
                    if user.is_none() {
                        task.user = Some(
                            s.iter()
                                .find(|(k, _)| k == "User")
                                .map_or_else(|| "root".to_string(), |(_, v)| v.clone()),
                        );
                    }
                    break;
                }
            }
            out.push(task);
        }
    }
}

/// Every task under `root`.
pub fn tasks(root: &HostRoot, stats: &mut CollectStats) -> Vec<Task> {
    let mut out = Vec::new();
    let read = |file: &str, stats: &mut CollectStats| -> Option<String> {
        let path = root.path(file);
        match read_text(&path) {
            Ok(t) => Some(t),
            Err(super::host::CollectError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                stats.error(e);
                None
            }
        }
    };
    let list = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.path(dir))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    if let Some(t) = read("/etc/crontab", stats) {
        out.extend(parse_crontab(&t, "/etc/crontab", None));
    }
    for name in list("/etc/cron.d") {
        // cron skips files with dots in their names (package backups).
        if name.contains('.') || name.ends_with('~') {
            continue;
        }
        let file = format!("/etc/cron.d/{name}");
        if let Some(t) = read(&file, stats) {
            out.extend(parse_crontab(&t, &file, None));
        }
    }
    for dir in ["/var/spool/cron/crontabs", "/var/spool/cron"] {
        for user in list(dir) {
            let file = format!("{dir}/{user}");
            if let Some(t) = read(&file, stats) {
                out.extend(parse_crontab(&t, &file, Some(&user)));
            }
        }
    }
    if let Some(t) = read("/etc/anacrontab", stats) {
        out.extend(parse_anacrontab(&t, "/etc/anacrontab"));
    }
    for period in ["hourly", "daily", "weekly", "monthly"] {
        let dir = format!("/etc/cron.{period}");
        for name in list(&dir) {
            if name.starts_with('.') {
                continue;
            }
            let script = format!("{dir}/{name}");
            out.push(Task {
                name,
                command: Some(script.clone()),
                path: Some(script),
                period: Some(period.to_string()),
                crontab_path: dir.clone(),
                user: Some("root".into()),
                kind: "cron_script",
                ..Default::default()
            });
        }
    }
    let mut seen = HashSet::new();
    let system: Vec<String> = SYSTEM_UNIT_DIRS.iter().map(|d| d.to_string()).collect();
    timers(root, &system, None, &mut seen, &mut out);
    let user_global: Vec<String> = USER_UNIT_DIRS.iter().map(|d| d.to_string()).collect();
    timers(root, &user_global, Some("*"), &mut seen, &mut out);
    for u in load_passwd(root, stats) {
        if u.home.starts_with('/') && u.home != "/" {
            let dirs = vec![format!("{}/.config/systemd/user", u.home.trim_end_matches('/'))];
            timers(root, &dirs, Some(&u.name), &mut seen, &mut out);
        }
    }
    out
}

/// A TaskItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObservation(pub Task);

pub const TERMS: &[TermId] = &[
    ids::TaskItem_Name,
    ids::TaskItem_crontabCommand,
    ids::TaskItem_crontabDayOfMonth,
    ids::TaskItem_crontabDayOfWeek,
    ids::TaskItem_crontabDelay,
    ids::TaskItem_crontabEvent,
    ids::TaskItem_crontabHour,
    ids::TaskItem_crontabJobIdentifier,
    ids::TaskItem_crontabMinute,
    ids::TaskItem_crontabMonth,
    ids::TaskItem_crontabPath,
    ids::TaskItem_crontabPeriod,
    ids::TaskItem_md5sum,
    ids::TaskItem_path,
    ids::TaskItem_sha1sum,
    ids::TaskItem_sha256sum,
    ids::TaskItem_userName,
];

impl TaskObservation {
    fn digest_field(&self, pick: impl Fn(&Digests) -> Option<&[u8]>) -> Field<'_> {
        if self.0.path.is_none() {
            return Field::Absent;
        }
        match &self.0.digests {
            None => Field::Pending,
            Some(d) => pick(d).map_or(Field::Absent, |b| Field::One(Value::Digest(Cow::Borrowed(b)))),
        }
    }
}

impl Observation for TaskObservation {
    fn document(&self) -> &'static str {
        "TaskItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let t = &self.0;
        match term {
            ids::TaskItem_Name => field::str(&t.name),
            ids::TaskItem_crontabCommand => field::opt_str(t.command.as_deref()),
            ids::TaskItem_crontabDayOfMonth => field::opt_str(t.day_of_month.as_deref()),
            ids::TaskItem_crontabDayOfWeek => field::opt_str(t.day_of_week.as_deref()),
            ids::TaskItem_crontabDelay => field::opt_int(t.delay),
            ids::TaskItem_crontabEvent => field::opt_str(t.event.as_deref()),
            ids::TaskItem_crontabHour => field::opt_str(t.hour.as_deref()),
            ids::TaskItem_crontabJobIdentifier => field::opt_str(t.job_identifier.as_deref()),
            ids::TaskItem_crontabMinute => field::opt_str(t.minute.as_deref()),
            ids::TaskItem_crontabMonth => field::opt_str(t.month.as_deref()),
            ids::TaskItem_crontabPath => field::str(&t.crontab_path),
            ids::TaskItem_crontabPeriod => field::opt_str(t.period.as_deref()),
            ids::TaskItem_path => field::opt_str(t.path.as_deref()),
            ids::TaskItem_userName => field::opt_str(t.user.as_deref()),
            ids::TaskItem_md5sum => self.digest_field(|d| d.md5.as_ref().map(|b| &b[..])),
            ids::TaskItem_sha1sum => self.digest_field(|d| d.sha1.as_ref().map(|b| &b[..])),
            ids::TaskItem_sha256sum => self.digest_field(|d| d.sha256.as_ref().map(|b| &b[..])),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let t = &self.0;
        object_ref(
            "task",
            [
                ("name", t.name.clone().into()),
                ("task_kind", t.kind.into()),
                ("file", t.crontab_path.clone().into()),
                ("line", t.line.into()),
                ("command", t.command.clone().into()),
                ("user", t.user.clone().into()),
            ],
        )
    }
}

fn complete_digests(root: &HostRoot, obs: &mut TaskObservation, terms: &[TermId]) {
    let kinds = DigestKinds {
        md5: terms.contains(&ids::TaskItem_md5sum),
        sha1: terms.contains(&ids::TaskItem_sha1sum),
        sha256: terms.contains(&ids::TaskItem_sha256sum),
    };
    let Some(p) = obs.0.path.as_ref() else { return };
    obs.0.digests = Some(std::fs::File::open(root.path(p)).and_then(|f| digest(f, kinds)).unwrap_or_default());
}

/// The TaskItem collector.
pub struct TaskCollector;

impl HostCollector for TaskCollector {
    fn document(&self) -> &'static str {
        "TaskItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("TaskItem");
        for task in tasks(&cx.root, &mut stats) {
            stats.emit(sink, &mut TaskObservation(task), |obs, terms| {
                complete_digests(&cx.root, obs, terms)
            });
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_and_user_crontabs() {
        let t = parse_crontab(
            "SHELL=/bin/sh\n# c\n17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n@reboot root /opt/x --y\n*/5 * * *\n",
            "/etc/crontab",
            None,
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].user.as_deref(), Some("root"));
        assert_eq!(t[0].minute.as_deref(), Some("17"));
        assert_eq!(t[0].command.as_deref(), Some("cd / && run-parts --report /etc/cron.hourly"));
        assert_eq!(t[0].path, None);
        assert_eq!(t[1].event.as_deref(), Some("@reboot"));
        assert_eq!(t[1].path.as_deref(), Some("/opt/x"));
        let u = parse_crontab("* * * * * /tmp/.x/miner -o pool\n", "/var/spool/cron/crontabs/bob", Some("bob"));
        assert_eq!(u[0].user.as_deref(), Some("bob"));
        assert_eq!(u[0].path.as_deref(), Some("/tmp/.x/miner"));
        assert_eq!(u[0].name, "/var/spool/cron/crontabs/bob:1");
    }

    #[test]
    fn anacrontab_and_units() {
        let a = parse_anacrontab(
            "SHELL=/bin/sh\n1\t5\tcron.daily\trun-parts --report /etc/cron.daily\n@monthly 15 m x\n",
            "/etc/anacrontab",
        );
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].period.as_deref(), a[0].delay, a[0].job_identifier.as_deref()),
            (Some("1"), Some(5), Some("cron.daily"))
        );
        let s = unit_settings(
            "[Unit]\nDescription=x\n[Timer]\nOnCalendar=daily\n# OnBootSec=1\nUnit=y.service\n",
            "Timer",
        );
        assert_eq!(
            s,
            [("OnCalendar".to_string(), "daily".to_string()), ("Unit".into(), "y.service".into())]
        );
        assert_eq!(exec_command("-/usr/bin/x a"), "/usr/bin/x a");
    }
}
