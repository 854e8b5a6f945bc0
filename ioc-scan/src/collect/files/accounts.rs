//! uid → user name and gid → group name, read once from /etc/passwd and
//! /etc/group (no NSS lookup per file: `getpwuid` per file would cost a
//! file parse or a network round trip each time).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

/// Files larger than this are read only up to it (hostile or broken input).
const MAX_ACCOUNTS_FILE: u64 = 16 << 20;

#[derive(Debug, Default, Clone)]
pub struct Accounts {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Accounts {
    /// The host's accounts, read on first use. Unreadable files give empty
    /// maps (names then answer "absent").
    pub fn system() -> &'static Accounts {
        static SYSTEM: OnceLock<Accounts> = OnceLock::new();
        SYSTEM.get_or_init(|| Accounts::from_files(Path::new("/etc/passwd"), Path::new("/etc/group")))
    }

    pub fn from_files(passwd: &Path, group: &Path) -> Accounts {
        // A regular file only, never blocking, bounded (a larger file is
        // read as empty: names then answer "absent").
        let read = |p: &Path| {
            crate::collect::safe_read::read_system(p, MAX_ACCOUNTS_FILE)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        };
        Accounts::parse(&read(passwd), &read(group))
    }

    /// Parse `name:x:id:...` lines of passwd and group files. The first name
    /// listed for an id wins (as getpwuid does).
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        fn table(text: &str) -> HashMap<u32, String> {
            let mut map = HashMap::new();
            for line in text.lines() {
                let mut fields = line.split(':');
                let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
                    continue;
                };
                if name.is_empty() || name.starts_with('#') {
                    continue;
                }
                if let Ok(id) = id.trim().parse::<u32>() {
                    map.entry(id).or_insert_with(|| name.to_string());
                }
            }
            map
        }
        Accounts {
            users: table(passwd),
            groups: table(group),
        }
    }

    pub fn user(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group_lines_and_skips_junk() {
        let a = Accounts::parse(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\nalias:x:1000:1000::/:/bin/sh\n",
            "root:x:0:\nstaff:x:50:alice,bob\n",
        );
        assert_eq!(a.user(0), Some("root"));
        assert_eq!(a.user(1000), Some("alice"));
        assert_eq!(a.user(7), None);
        assert_eq!(a.group(50), Some("staff"));
    }

    #[test]
    fn system_accounts_know_root() {
        assert_eq!(Accounts::system().user(0), Some("root"));
    }
}
