//! UserItem and GroupItem: the accounts of /etc/passwd and /etc/group.
//!
//! /etc/shadow is read only to derive the account's state (locked, password
//! required, password age, expired): the password hash itself is dropped as
//! soon as the line is parsed and never reaches an observation or output.
//! Last logins come from /var/log/lastlog.

use super::host::{field, object_ref, read_text, CollectContext, CollectStats, HostCollector, HostRoot, Sink};
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::collections::HashMap;

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The GECOS field in full.
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// Parse /etc/passwd; malformed lines are returned as their line numbers.
pub fn parse_passwd(text: &str) -> (Vec<PasswdEntry>, Vec<usize>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let entry = (f.len() == 7)
            .then(|| {
                Some(PasswdEntry {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    gecos: f[4].to_string(),
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                })
            })
            .flatten();
        match entry {
            Some(e) if !e.name.is_empty() => out.push(e),
            _ => bad.push(n + 1),
        }
    }
    (out, bad)
}

/// One line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub fn parse_group(text: &str) -> (Vec<GroupEntry>, Vec<usize>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        match (f.len() == 4).then(|| f[2].parse::<u32>().ok()).flatten() {
            Some(gid) if !f[0].is_empty() => out.push(GroupEntry {
                name: f[0].to_string(),
                gid,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            }),
            _ => bad.push(n + 1),
        }
    }
    (out, bad)
}

/// What /etc/shadow says of an account, without its password hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowState {
    /// The password is locked (`!` prefix).
    pub locked: bool,
    /// No password is needed (empty field).
    pub no_password: bool,
    /// No password can be used (`*`, `!` or `!!` alone).
    pub no_login_password: bool,
    /// Day of the last change (days since the epoch).
    pub last_change_day: Option<i64>,
    /// Day the account expires.
    pub expire_day: Option<i64>,
}

/// Parse /etc/shadow into account states; the hashes are dropped here.
pub fn parse_shadow(text: &str) -> HashMap<String, ShadowState> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 2 || f[0].is_empty() {
            continue;
        }
        let pw = f[1];
        let day = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
        out.insert(
            f[0].to_string(),
            ShadowState {
                locked: pw.starts_with('!'),
                no_password: pw.is_empty(),
                no_login_password: matches!(pw.trim_start_matches('!'), "" | "*" | "x") && !pw.is_empty(),
                last_change_day: day(2),
                expire_day: day(7),
            },
        );
    }
    out
}

/// One record of /var/log/lastlog: indexed by uid, 292 bytes on 64-bit
/// Linux (`int32 time; char line[32]; char host[256]`).
pub const LASTLOG_RECORD: usize = 292;

/// The last login time of `uid`, read from its record only (lastlog is
/// sparse and, with large uids, terabytes long: never read whole).
pub fn lastlog_time_in(lastlog: &super::safe_read::HostFile, uid: u32) -> Option<i64> {
    let start = (uid as u64).checked_mul(LASTLOG_RECORD as u64)?;
    let rec = lastlog.read_at(start, 4)?;
    lastlog_time(&rec, 0)
}

/// The last login time of `uid` from the lastlog file's bytes.
pub fn lastlog_time(lastlog: &[u8], uid: u32) -> Option<i64> {
    let start = (uid as usize).checked_mul(LASTLOG_RECORD)?;
    let rec = lastlog.get(start..start.checked_add(4)?)?;
    let t = i32::from_le_bytes(rec.try_into().ok()?);
    (t > 0).then_some(t as i64)
}

/// A UserItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserObservation {
    pub entry: PasswdEntry,
    /// The primary group's and the supplementary groups' names.
    pub groups: Vec<String>,
    pub shadow: Option<ShadowState>,
    pub last_login: Option<i64>,
    /// Today, as days since the epoch (for the password's age).
    pub today: i64,
}

pub const USER_TERMS: &[TermId] = &[
    ids::UserItem_Username,
    ids::UserItem_userid,
    ids::UserItem_homedirectory,
    ids::UserItem_shell,
    ids::UserItem_fullname,
    ids::UserItem_description,
    ids::UserItem_grouplist_groupname,
    ids::UserItem_disabled,
    ids::UserItem_lockedout,
    ids::UserItem_passwordrequired,
    ids::UserItem_userpasswordage,
    ids::UserItem_LastLogin,
];

pub const GROUP_TERMS: &[TermId] = &[ids::GroupItem_GroupName, ids::GroupItem_gid, ids::GroupItem_userlist_username];

impl UserObservation {
    fn disabled(&self) -> Option<bool> {
        let sh = self.shadow.as_ref();
        let expired = sh.and_then(|s| s.expire_day).is_some_and(|d| d <= self.today);
        let nologin = self.entry.shell.ends_with("/nologin") || self.entry.shell.ends_with("/false");
        Some(expired || nologin || sh.is_some_and(|s| s.locked))
    }
}

impl Observation for UserObservation {
    fn document(&self) -> &'static str {
        "UserItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let e = &self.entry;
        let sh = self.shadow.as_ref();
        match term {
            ids::UserItem_Username => field::str(&e.name),
            ids::UserItem_userid => field::int(e.uid.into()),
            ids::UserItem_homedirectory => field::str(&e.home),
            ids::UserItem_shell => field::str(&e.shell),
            ids::UserItem_fullname => field::str(e.gecos.split(',').next().unwrap_or("")),
            ids::UserItem_description => field::str(&e.gecos),
            ids::UserItem_grouplist_groupname => Field::Values(self.groups.iter().map(|g| Value::Str(Cow::Borrowed(g.as_str()))).collect()),
            ids::UserItem_disabled => self.disabled().map_or(Field::Absent, field::bool),
            ids::UserItem_lockedout => sh.map_or(Field::Absent, |s| field::bool(s.locked)),
            ids::UserItem_passwordrequired => sh.map_or(Field::Absent, |s| field::bool(!s.no_password)),
            ids::UserItem_userpasswordage => {
                match sh.and_then(|s| s.last_change_day).filter(|d| *d > 0) {
                    // Age in days.
                    Some(d) => field::owned((self.today - d).max(0).to_string()),
                    None => Field::Absent,
                }
            }
            ids::UserItem_LastLogin => field::time(self.last_login),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref(
            "user",
            [
                ("name", self.entry.name.clone().into()),
                ("uid", self.entry.uid.into()),
                ("home", self.entry.home.clone().into()),
            ],
        )
    }
}

/// A GroupItem observation: the group with its members, listed and by
/// primary group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupObservation {
    pub entry: GroupEntry,
    pub users: Vec<String>,
}

impl Observation for GroupObservation {
    fn document(&self) -> &'static str {
        "GroupItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        match term {
            ids::GroupItem_GroupName => field::str(&self.entry.name),
            ids::GroupItem_gid => field::int(self.entry.gid.into()),
            ids::GroupItem_userlist_username => Field::Values(self.users.iter().map(|u| Value::Str(Cow::Borrowed(u.as_str()))).collect()),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref("group", [("name", self.entry.name.clone().into()), ("gid", self.entry.gid.into())])
    }
}

/// The accounts of a root, for this and other collectors (shell history).
pub fn load_passwd(root: &HostRoot, stats: &mut CollectStats) -> Vec<PasswdEntry> {
    load_entries(root, "/etc/passwd", parse_passwd, "not a passwd entry", stats)
}

fn load_groups(root: &HostRoot, stats: &mut CollectStats) -> Vec<GroupEntry> {
    load_entries(root, "/etc/group", parse_group, "not a group entry", stats)
}

/// Reads and parses one account file of `root`; a read error and each
/// malformed line (`malformed` says what it is not) go to `stats`.
fn load_entries<T>(
    root: &HostRoot,
    file: &str,
    parse: fn(&str) -> (Vec<T>, Vec<usize>),
    malformed: &str,
    stats: &mut CollectStats,
) -> Vec<T> {
    let path = root.path(file);
    match read_text(&path) {
        Ok(text) => {
            let (entries, bad) = parse(&text);
            for n in bad {
                stats.malformed(&path, n as u64, malformed);
            }
            entries
        }
        Err(e) => {
            stats.error(e);
            Vec::new()
        }
    }
}

fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 86_400)
}

/// The UserItem collector.
pub struct UserCollector;

impl HostCollector for UserCollector {
    fn document(&self) -> &'static str {
        "UserItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("UserItem");
        let users = load_passwd(&cx.root, &mut stats);
        let groups = if cx.wanted.has(ids::UserItem_grouplist_groupname) {
            load_groups(&cx.root, &mut stats)
        } else {
            Vec::new()
        };
        let shadow_terms = [
            ids::UserItem_disabled,
            ids::UserItem_lockedout,
            ids::UserItem_passwordrequired,
            ids::UserItem_userpasswordage,
        ];
        let shadow = if shadow_terms.iter().any(|t| cx.wanted.has(*t)) {
            let path = cx.root.path("/etc/shadow");
            match read_text(&path) {
                Ok(t) => Some(parse_shadow(&t)),
                Err(e) => {
                    stats.error(e);
                    None
                }
            }
        } else {
            None
        };
        let lastlog = if cx.wanted.has(ids::UserItem_LastLogin) {
            super::safe_read::open_system(&cx.root.path("/var/log/lastlog")).ok()
        } else {
            None
        };
        let gid_names: HashMap<u32, &str> = groups.iter().map(|g| (g.gid, g.name.as_str())).collect();
        let today = today();
        for entry in users {
            let mut names: Vec<String> = gid_names.get(&entry.gid).map(|n| n.to_string()).into_iter().collect();
            for g in &groups {
                if g.members.contains(&entry.name) && !names.contains(&g.name) {
                    names.push(g.name.clone());
                }
            }
            let mut obs = UserObservation {
                shadow: shadow.as_ref().and_then(|s| s.get(&entry.name).cloned()),
                last_login: lastlog.as_ref().and_then(|l| lastlog_time_in(l, entry.uid)),
                groups: names,
                entry,
                today,
            };
            stats.emit(sink, &mut obs, |_, _| {});
        }
        stats
    }
}

/// The GroupItem collector.
pub struct GroupCollector;

impl HostCollector for GroupCollector {
    fn document(&self) -> &'static str {
        "GroupItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("GroupItem");
        let groups = load_groups(&cx.root, &mut stats);
        let users = if cx.wanted.has(ids::GroupItem_userlist_username) {
            load_passwd(&cx.root, &mut stats)
        } else {
            Vec::new()
        };
        for entry in groups {
            let mut members = entry.members.clone();
            for u in users.iter().filter(|u| u.gid == entry.gid) {
                if !members.contains(&u.name) {
                    members.push(u.name.clone());
                }
            }
            stats.emit(sink, &mut GroupObservation { entry, users: members }, |_, _| {});
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group_lines() {
        let (users, bad) = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n\nbroken:x:zz:0::/:/bin/sh\nalice:x:1000:1000:Alice A,,,:/home/alice:/bin/zsh\nshort:x:1\n",
        );
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].gecos, "Alice A,,,");
        assert_eq!(bad, [3, 5]);
        let (groups, bad) = parse_group("sudo:x:27:alice, bob\nempty:x:5:\nbad:x:y:\n");
        assert_eq!(groups[0].members, ["alice", "bob"]);
        assert!(groups[1].members.is_empty());
        assert_eq!(bad, [3]);
    }

    #[test]
    fn shadow_keeps_no_hash() {
        let s = parse_shadow("alice:$6$salt$hash:19000:0:99999:7:::\nlocked:!$6$x$y:19000::::::\nnopw::19000::::::\nsvc:*:19000::::::\n");
        assert!(!s["alice"].locked && !s["alice"].no_password && !s["alice"].no_login_password);
        assert!(s["locked"].locked);
        assert!(s["nopw"].no_password);
        assert!(s["svc"].no_login_password);
        assert_eq!(s["alice"].last_change_day, Some(19000));
        assert!(!format!("{s:?}").contains("$6$"), "no hash kept");
    }

    #[test]
    fn lastlog_records_by_uid() {
        let mut buf = vec![0u8; LASTLOG_RECORD * 3];
        buf[LASTLOG_RECORD * 2..LASTLOG_RECORD * 2 + 4].copy_from_slice(&1_700_000_000i32.to_le_bytes());
        assert_eq!(lastlog_time(&buf, 2), Some(1_700_000_000));
        assert_eq!(lastlog_time(&buf, 1), None);
        assert_eq!(lastlog_time(&buf, 3), None);
        assert_eq!(lastlog_time(&buf, u32::MAX), None);
    }
}
