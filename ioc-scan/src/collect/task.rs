//! TaskItem: scheduled tasks — cron tables, anacron jobs, the scripts of
//! /etc/cron.{hourly,daily,weekly,monthly}, and systemd timers with the
//! service each starts (system units and users' `~/.config/systemd/user`).
//!
//! `path` is the program a task runs (the first word of its command when
//! absolute); its digests are computed only when an IOC asks.
//!
//! Users write their crontabs and `~/.config/systemd/user`: a crontab must
//! be owned by root or the user it is named after, a user's units are read
//! beneath his home without following symlinks and must be his, and the
//! program of a user's task is hashed only if it is a regular file he could
//! read (all through [`super::safe_read`]).

use super::host::{
    field, object_ref, read_text, CollectContext, CollectError, CollectStats, DigestKinds, Digests, HostCollector, HostRoot, Sink,
};
use super::safe_read::{is_missing, open_program, system_dir_names, HostDir, MAX_DIR_NAMES, PROGRAM_LIMIT};
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
    /// The uid of the unprivileged user who defined the task (his crontab,
    /// his units) or whom it runs as (`alice` on a line of /etc/crontab,
    /// `User=alice`): he controls or may control the program's path, so
    /// only a program he could read himself is hashed. `None`: root's.
    pub definer_uid: Option<u32>,
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

/// A directory of unit files. A system one (root's) is read through its
/// path, following root's symlinks (`x.service -> /lib/...`); a user's
/// (`~/.config/systemd/user`) beneath his home, no symlink followed, and
/// only the files he owns.
struct UnitDir {
    /// The host path (as reported).
    abs: String,
    /// The opened directory.
    dir: HostDir,
    /// The user whose directory it is.
    user_uid: Option<u32>,
    /// Bytes still allowed to be read from this directory: a user can fill
    /// his with thousands of large (sparse) units.
    budget: std::cell::Cell<u64>,
}

/// Most bytes read of one user unit file, and of all of one user's units.
pub const USER_UNIT_LIMIT: u64 = 1 << 20;
pub const USER_UNITS_BUDGET: u64 = 16 << 20;
/// Most names read of a user's unit directory.
pub const USER_UNIT_NAMES: usize = 4096;
/// Most bytes read of a user's crontab (crontab(1) writes it for him).
pub const USER_CRONTAB_LIMIT: u64 = 1 << 20;

impl UnitDir {
    fn system(root: &HostRoot, abs: &str) -> Option<UnitDir> {
        let dir = HostDir::open_system(&root.path(abs)).ok()?;
        Some(UnitDir {
            abs: abs.to_string(),
            dir,
            user_uid: None,
            budget: std::cell::Cell::new(u64::MAX),
        })
    }

    fn user(root: &HostRoot, home: &str, uid: u32, stats: &mut CollectStats) -> Option<UnitDir> {
        let home = home.trim_end_matches('/');
        let rel = ".config/systemd/user";
        let opened = HostDir::open_system(&root.path(home)).and_then(|h| h.open_dir(rel));
        match opened {
            Ok(dir) => Some(UnitDir {
                abs: format!("{home}/{rel}"),
                dir,
                user_uid: Some(uid),
                budget: std::cell::Cell::new(USER_UNITS_BUDGET),
            }),
            Err(e) if is_missing(&e) => None,
            Err(e) => {
                stats.error(e);
                None
            }
        }
    }

    /// The text of unit `name`; `None` when absent (other problems go to
    /// `stats`).
    fn read(&self, root: &HostRoot, name: &str, stats: &mut CollectStats) -> Option<String> {
        let (opened, limit) = match self.user_uid {
            None => (
                super::safe_read::open_system(&root.path(format!("{}/{name}", self.abs))),
                super::host::CONFIG_LIMIT,
            ),
            Some(uid) => (self.dir.open_file(name).and_then(|f| f.owned_by(&[uid])), USER_UNIT_LIMIT),
        };
        let budget = self.budget.get();
        if budget == 0 {
            stats.error(CollectError::Other {
                what: format!("{}/{name}", self.abs),
                reason: format!("not read: {USER_UNITS_BUDGET} bytes of this user's units read already"),
            });
            return None;
        }
        let read = opened.and_then(|f| {
            // Charged before reading: a refused (too large) file costs too.
            self.budget.set(budget.saturating_sub(f.size().min(limit).max(1)));
            f.read_to_end(limit.min(budget))
        });
        match read {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if is_missing(&e) => None,
            Err(e) => {
                stats.error(e);
                None
            }
        }
    }
}

/// The timers of unit directories `dirs`, one per name.
fn timers(root: &HostRoot, dirs: &[UnitDir], user: Option<&str>, seen: &mut HashSet<String>, out: &mut Vec<Task>, stats: &mut CollectStats) {
    for dir in dirs {
        let max_names = if dir.user_uid.is_some() { USER_UNIT_NAMES } else { MAX_DIR_NAMES };
        let Ok(names) = dir.dir.names(max_names) else { continue };
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".timer"))
            .collect();
        for name in names {
            if !seen.insert(format!("{}/{name}", user.unwrap_or(""))) {
                continue;
            }
            let unit_path = format!("{}/{name}", dir.abs);
            let Some(text) = dir.read(root, &name, stats) else { continue };
            let timer = unit_settings(&text, "Timer");
            let mut task = Task {
                name: name.clone(),
                crontab_path: unit_path,
                kind: "systemd_timer",
                user: user.map(str::to_string),
                definer_uid: dir.user_uid.filter(|&u| u != 0),
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
                if let Some(svc) = d.read(root, &service, stats) {
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
    // Regular files only (a stat: nothing is opened here).
    let list = |dir: &str| -> Vec<String> {
        system_dir_names(&root.path(dir))
            .into_iter()
            .filter(|n| std::fs::metadata(root.path(format!("{dir}/{n}"))).is_ok_and(|m| m.is_file()))
            .collect()
    };
    let users = load_passwd(root, stats);
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
            // crontab(1) writes a user's table owned by him; cron runs only
            // a table owned by root or by the user it is named after.
            let uid = users.iter().find(|u| u.name == user).map(|u| u.uid);
            let owners: Vec<u32> = [Some(0), uid].into_iter().flatten().collect();
            let opened = super::safe_read::open_system(&root.path(&file))
                .and_then(|f| f.owned_by(&owners))
                .and_then(|f| f.read_to_end(USER_CRONTAB_LIMIT));
            match opened {
                Ok(b) => {
                    let t = String::from_utf8_lossy(&b);
                    out.extend(parse_crontab(&t, &file, Some(&user)).into_iter().map(|mut task| {
                        task.definer_uid = uid.filter(|&u| u != 0);
                        task
                    }));
                }
                Err(e) if is_missing(&e) => {}
                Err(e) => stats.error(e),
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
    let system: Vec<UnitDir> = SYSTEM_UNIT_DIRS.iter().filter_map(|d| UnitDir::system(root, d)).collect();
    timers(root, &system, None, &mut seen, &mut out, stats);
    let user_global: Vec<UnitDir> = USER_UNIT_DIRS.iter().filter_map(|d| UnitDir::system(root, d)).collect();
    timers(root, &user_global, Some("*"), &mut seen, &mut out, stats);
    let mut homes_seen = HashSet::new();
    for u in &users {
        if u.home.starts_with('/') && u.home != "/" && homes_seen.insert(u.home.clone()) {
            if let Some(dir) = UnitDir::user(root, &u.home, u.uid, stats) {
                timers(root, &[dir], Some(&u.name), &mut seen, &mut out, stats);
            }
        }
    }
    // A task root defined to run as another user runs his program: he may
    // own its path (a script in his home he can swap for a symlink).
    for task in out.iter_mut().filter(|t| t.definer_uid.is_none()) {
        let uid = task.user.as_deref().and_then(|n| users.iter().find(|u| u.name == n)).map(|u| u.uid);
        task.definer_uid = uid.filter(|&u| u != 0);
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
    // A regular file only (a task naming /dev/zero or a FIFO is not hashed
    // forever), bounded, and one its definer could read himself.
    let digests = open_program(&root.path(p), obs.0.definer_uid).and_then(|f| f.digest(kinds, PROGRAM_LIMIT));
    obs.0.digests = Some(digests.unwrap_or_default());
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
