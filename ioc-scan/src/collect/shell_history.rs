//! ShellHistoryItem: the commands in users' shell history files.
//!
//! Users and their home directories come from the root's /etc/passwd
//! (plus /root). Files: `.bash_history`, `.zsh_history`, `.zhistory`,
//! `.history`, `.sh_history`, `.ash_history`, `.mksh_history` and fish's
//! `.local/share/fish/fish_history`. Timestamps are read where the shell
//! writes them: bash `#EPOCH` lines (HISTTIMEFORMAT), zsh extended history
//! `: EPOCH:DURATION;command`, fish `when: EPOCH`.
//!
//! A home is the user's: its files are opened beneath it with no symlink
//! followed, must be regular files owned by that user, and are read up to
//! [`HISTORY_LIMIT`] bytes (see [`super::safe_read`]).

use super::host::{field, for_each_line, object_ref, CollectContext, CollectError, CollectStats, HostCollector, Sink, MAX_LINE};
use super::safe_read::{is_missing, HostDir};
use super::user::load_passwd;
use crate::eval::{Field, ObjectRef, Observation};
use crate::terms::{ids, TermId};

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub command: String,
    /// 1-based position of the command in its file.
    pub order: i64,
    pub timestamp: Option<i64>,
}

/// Most bytes read of one history file (a user can make his as large as
/// his quota allows); the rest is not read and the file is reported.
pub const HISTORY_LIMIT: u64 = 16 << 20;

/// The history files and the shell writing each.
pub const FILES: &[(&str, &str)] = &[
    (".bash_history", "bash"),
    (".zsh_history", "zsh"),
    (".zhistory", "zsh"),
    (".history", "sh"),
    (".sh_history", "sh"),
    (".ash_history", "ash"),
    (".mksh_history", "mksh"),
    (".local/share/fish/fish_history", "fish"),
];

/// zsh "metafies" bytes ≥ 0x80: 0x83 followed by the byte xor 0x20.
fn unmetafy(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut it = line.iter();
    while let Some(&b) = it.next() {
        if b == 0x83 {
            if let Some(&n) = it.next() {
                out.push(n ^ 0x20);
            }
        } else {
            out.push(b);
        }
    }
    out
}

/// Undo fish's escapes of a command (`\\n` newline, `\\\\` backslash).
fn fish_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses history lines one by one for one shell.
#[derive(Debug)]
pub struct HistoryParser {
    shell: &'static str,
    order: i64,
    pending_time: Option<i64>,
    /// fish: the entry being read (its `when:` follows the `- cmd:` line).
    fish_entry: Option<HistoryEntry>,
    /// zsh: a command continued on the next line (ends with `\`).
    zsh_continued: Option<HistoryEntry>,
}

impl HistoryParser {
    pub fn new(shell: &'static str) -> Self {
        HistoryParser {
            shell,
            order: 0,
            pending_time: None,
            fish_entry: None,
            zsh_continued: None,
        }
    }

    fn entry(&mut self, command: String, timestamp: Option<i64>) -> HistoryEntry {
        self.order += 1;
        HistoryEntry {
            command,
            order: self.order,
            timestamp,
        }
    }

    /// Feed one line; returns the entries it completes.
    pub fn line(&mut self, raw: &[u8]) -> Vec<HistoryEntry> {
        let mut out = Vec::new();
        match self.shell {
            "fish" => {
                let text = String::from_utf8_lossy(raw);
                if let Some(cmd) = text.strip_prefix("- cmd: ") {
                    out.extend(self.fish_entry.take());
                    let cmd = fish_unescape(cmd);
                    self.fish_entry = Some(self.entry(cmd, None));
                } else if let Some(when) = text.trim_start().strip_prefix("when: ") {
                    if let Some(e) = self.fish_entry.as_mut() {
                        e.timestamp = when.trim().parse().ok();
                    }
                }
            }
            "zsh" => {
                let bytes = unmetafy(raw);
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if let Some(mut cont) = self.zsh_continued.take() {
                    cont.command.push('\n');
                    cont.command.push_str(text.strip_suffix('\\').unwrap_or(&text));
                    if text.ends_with('\\') {
                        self.zsh_continued = Some(cont);
                    } else {
                        out.push(cont);
                    }
                    return out;
                }
                // ": 1700000000:0;command"
                let (time, cmd) = match text.strip_prefix(": ").and_then(|r| r.split_once(';')) {
                    Some((meta, cmd)) => (meta.split(':').next().and_then(|t| t.trim().parse().ok()), cmd.to_string()),
                    None => (None, text),
                };
                if cmd.is_empty() {
                    return out;
                }
                let continued = cmd.ends_with('\\');
                let e = self.entry(cmd.strip_suffix('\\').map(str::to_string).unwrap_or(cmd), time);
                if continued {
                    self.zsh_continued = Some(e);
                } else {
                    out.push(e);
                }
            }
            _ => {
                let text = String::from_utf8_lossy(raw).into_owned();
                if self.shell == "bash" {
                    if let Some(t) = text
                        .strip_prefix('#')
                        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    {
                        self.pending_time = t.parse().ok();
                        return out;
                    }
                }
                if text.is_empty() {
                    return out;
                }
                let time = self.pending_time.take();
                out.push(self.entry(text, time));
            }
        }
        out
    }

    /// Entries still open at the end of the file.
    pub fn finish(&mut self) -> Vec<HistoryEntry> {
        self.fish_entry.take().into_iter().chain(self.zsh_continued.take()).collect()
    }
}

/// Parse a whole history file's bytes.
pub fn parse_history(bytes: &[u8], shell: &'static str) -> Vec<HistoryEntry> {
    let mut p = HistoryParser::new(shell);
    let mut out = Vec::new();
    let _ = for_each_line(bytes, MAX_LINE, |_, l| out.extend(p.line(l)));
    out.extend(p.finish());
    out
}

/// A ShellHistoryItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellHistoryObservation {
    pub entry: HistoryEntry,
    pub shell: &'static str,
    pub username: String,
    /// The history file (as the host sees it).
    pub path: String,
}

pub const TERMS: &[TermId] = &[
    ids::ShellHistoryItem_Command,
    ids::ShellHistoryItem_FileOrder,
    ids::ShellHistoryItem_Shell,
    ids::ShellHistoryItem_Timestamp,
    ids::ShellHistoryItem_UserName,
];

impl Observation for ShellHistoryObservation {
    fn document(&self) -> &'static str {
        "ShellHistoryItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        match term {
            ids::ShellHistoryItem_Command => field::str(&self.entry.command),
            ids::ShellHistoryItem_FileOrder => field::int(self.entry.order),
            ids::ShellHistoryItem_Shell => field::str(self.shell),
            ids::ShellHistoryItem_Timestamp => field::time(self.entry.timestamp),
            ids::ShellHistoryItem_UserName => field::str(&self.username),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref(
            "shell_history",
            [
                ("path", self.path.clone().into()),
                ("order", self.entry.order.into()),
                ("user", self.username.clone().into()),
                ("command", self.entry.command.clone().into()),
            ],
        )
    }
}

/// The ShellHistoryItem collector.
pub struct ShellHistoryCollector;

impl HostCollector for ShellHistoryCollector {
    fn document(&self) -> &'static str {
        "ShellHistoryItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("ShellHistoryItem");
        let mut homes: Vec<(String, u32, String)> = load_passwd(&cx.root, &mut stats)
            .into_iter()
            .filter(|u| u.home.starts_with('/') && u.home != "/" && u.home != "/nonexistent")
            .map(|u| (u.name, u.uid, u.home))
            .collect();
        if !homes.iter().any(|(_, _, h)| h == "/root") {
            homes.push(("root".into(), 0, "/root".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for (user, uid, home) in homes {
            let home = home.trim_end_matches('/').to_string();
            if !seen.insert(home.clone()) {
                continue; // two accounts sharing a home
            }
            // The home's path is root's (/etc/passwd); what lies beneath
            // it is the user's: opened beneath it, no symlink followed.
            let home_dir = match HostDir::open_system(&cx.root.path(&home)) {
                Ok(d) => d,
                Err(e) if is_missing(&e) => continue,
                Err(e) => {
                    stats.error(e);
                    continue;
                }
            };
            for &(file, shell) in FILES {
                let abs = format!("{home}/{file}");
                // A file of another user is not this user's history.
                let fh = match home_dir.open_file(file).and_then(|f| f.owned_by(&[uid])) {
                    Ok(f) => f,
                    Err(e) if is_missing(&e) => continue,
                    Err(e) => {
                        stats.error(e);
                        continue;
                    }
                };
                // Each entry is handed over as soon as it is parsed: memory
                // stays one line, whatever the file holds.
                let mut parser = HistoryParser::new(shell);
                let mut emit = |entry: HistoryEntry, stats: &mut CollectStats| {
                    let mut obs = ShellHistoryObservation {
                        entry,
                        shell,
                        username: user.clone(),
                        path: abs.clone(),
                    };
                    stats.emit(sink, &mut obs, |_, _| {});
                };
                let result = fh.for_each_line(HISTORY_LIMIT, MAX_LINE, |_, l| {
                    for e in parser.line(l) {
                        emit(e, &mut stats);
                    }
                });
                for e in parser.finish() {
                    emit(e, &mut stats);
                }
                match result {
                    Ok(false) => {}
                    Ok(true) => stats.error(CollectError::Truncated {
                        path: fh.path().to_path_buf(),
                        limit: HISTORY_LIMIT,
                    }),
                    Err(e) => stats.error(e),
                }
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_with_and_without_timestamps() {
        let e = parse_history(b"ls\n#1700000000\ncurl http://x | sh\n\n#notatime\n", "bash");
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].order, e[0].timestamp), (1, None));
        assert_eq!((e[1].command.as_str(), e[1].timestamp), ("curl http://x | sh", Some(1_700_000_000)));
        assert_eq!(e[2].command, "#notatime");
    }

    #[test]
    fn zsh_extended_and_continued() {
        let e = parse_history(
            b": 1700000001:0;wget x\n: 1700000002:3;for i in 1\\\ndo echo\\\ndone\nplain\n",
            "zsh",
        );
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].command.as_str(), e[0].timestamp), ("wget x", Some(1_700_000_001)));
        assert_eq!(e[1].command, "for i in 1\ndo echo\ndone");
        assert_eq!(e[2].command, "plain");
        assert_eq!(unmetafy(b"\x83\xa9x\x83"), [0x89, b'x']);
    }

    #[test]
    fn fish_entries() {
        let e = parse_history(b"- cmd: nc -l 4444\n  when: 1700000003\n- cmd: echo a\\\\nb\n", "fish");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].command.as_str(), e[0].timestamp), ("nc -l 4444", Some(1_700_000_003)));
        assert_eq!(e[1].timestamp, None);
        assert_eq!(e[1].command, "echo a\\nb");
    }
}
