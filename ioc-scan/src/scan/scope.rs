//! Where a scan looks: the user's scopes, or the critical areas of a Linux
//! system, the paths the IOCs themselves name, and the executables of
//! running processes; made canonical and deduplicated so that each file is
//! examined once.

use crate::indicator::{Condition, Ioc};
use crate::terms::{self, ids};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where malware and its persistence live on Linux: system binaries and
/// libraries, configuration and startup objects, boot files, home
/// directories, world-writable temporary places, third-party software and
/// served web content. Several are under others (/etc/cron.d under /etc) or
/// are symlinks (/bin → usr/bin on merged-/usr systems): [`dedupe`] folds
/// them.
pub const CRITICAL_AREAS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local/lib",
    "/etc",
    "/boot",
    "/etc/systemd",
    "/lib/systemd/system",
    "/usr/lib/systemd",
    "/etc/cron.d",
    "/etc/cron.daily",
    "/etc/cron.hourly",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/etc/crontab",
    "/var/spool/cron",
    "/etc/init.d",
    "/etc/rc.local",
    "/etc/profile.d",
    "/etc/ld.so.preload",
    "/home",
    "/root",
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/opt",
    "/var/www",
    "/srv",
];

/// The resolved roots of a scan and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// Canonical, existing, deduplicated: directories and single files.
    pub roots: Vec<PathBuf>,
    /// Paths asked for that do not exist or could not be resolved.
    pub missing: Vec<PathBuf>,
}

/// Canonicalize (following symlinks in the given paths: `/bin` becomes
/// `/usr/bin` on merged-/usr systems), drop what does not exist, and drop
/// every root inside another root on the same filesystem (the walk of the
/// outer one examines it; one on another filesystem is kept, since a walk
/// stays on its root's filesystem unless `cross_filesystems`).
pub fn dedupe(paths: impl IntoIterator<Item = PathBuf>, cross_filesystems: bool) -> Scopes {
    let mut scopes = Scopes::default();
    let mut canon: Vec<(PathBuf, u64, bool)> = Vec::new();
    let mut seen = HashSet::new();
    for p in paths {
        match p.canonicalize().and_then(|c| std::fs::metadata(&c).map(|m| (c, m))) {
            Ok((c, m)) => {
                if seen.insert(c.clone()) {
                    canon.push((c, m.dev(), m.is_dir()));
                }
            }
            Err(_) => scopes.missing.push(p),
        }
    }
    // Shorter paths first: an ancestor is met before what it contains.
    canon.sort_by(|a, b| {
        a.0.components()
            .count()
            .cmp(&b.0.components().count())
            .then(a.0.cmp(&b.0))
    });
    let mut kept: Vec<(PathBuf, u64, bool)> = Vec::new();
    for (path, dev, is_dir) in canon {
        let covered = kept
            .iter()
            .any(|(k, kdev, kdir)| *kdir && path.starts_with(k) && (cross_filesystems || *kdev == dev));
        if !covered {
            kept.push((path, dev, is_dir));
        }
    }
    scopes.roots = kept.into_iter().map(|(p, _, _)| p).collect();
    scopes
}

/// Paths the IOCs name in `FileItem/FullPath` or `FileItem/FilePath` items
/// with `is` or `starts-with` (not negated): the literal itself when it
/// exists, else (for `starts-with`, a prefix of names) its parent directory
/// unless that is `/`. Windows-looking values (`C:\...`, `%TEMP%`, relative
/// paths) are skipped.
pub fn paths_named_by(iocs: &[Ioc]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ioc in iocs {
        for item in ioc.items() {
            if item.negate || !item.evaluable() || !matches!(item.condition, Condition::Is | Condition::StartsWith) {
                continue;
            }
            let term = terms::lookup(&item.context.search);
            if term != Some(ids::FileItem_FullPath) && term != Some(ids::FileItem_FilePath) {
                continue;
            }
            let value = item.content.value.trim();
            if !value.starts_with('/') || value.contains('\\') || value == "/" {
                continue;
            }
            let path = PathBuf::from(value);
            if path.exists() {
                out.push(path);
            } else if item.condition == Condition::StartsWith {
                if let Some(parent) = path.parent().filter(|p| *p != Path::new("/") && p.is_dir()) {
                    out.push(parent.to_path_buf());
                }
            }
        }
    }
    out
}

/// The executables of running processes (`/proc/PID/exe`), one per
/// (device, inode), leaving out those whose file was deleted (the link then
/// names a path that no longer holds it).
pub fn process_executables() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        if exe.as_os_str().as_encoded_bytes().ends_with(b" (deleted)") {
            continue;
        }
        // Stat the path (not /proc/PID/exe): the file the walk would see.
        let Ok(meta) = std::fs::symlink_metadata(&exe) else {
            continue;
        };
        if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
            out.push(exe);
        }
    }
    out
}

/// Every path of a default scan, before [`dedupe`].
pub fn default_paths(iocs: &[Ioc]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = CRITICAL_AREAS.iter().map(PathBuf::from).collect();
    paths.extend(paths_named_by(iocs));
    paths.extend(process_executables());
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{Content, Context, IocMeta, Item, Node, OpenIocVersion, Position};

    fn ioc(items: &[(&str, Condition, &str, bool)]) -> Ioc {
        Ioc {
            id: "t".into(),
            version: OpenIocVersion::V1_1,
            meta: IocMeta::default(),
            nodes: items
                .iter()
                .map(|(search, condition, value, negate)| {
                    Node::Item(Item {
                        id: "i".into(),
                        condition: *condition,
                        context: Context {
                            document: "FileItem".into(),
                            search: search.to_string(),
                            context_type: "mir".into(),
                        },
                        content: Content {
                            content_type: "string".into(),
                            value: value.to_string(),
                        },
                        negate: *negate,
                        preserve_case: false,
                        position: Position::default(),
                        problem: None,
                    })
                })
                .collect(),
            source: "t.ioc".into(),
        }
    }

    #[test]
    fn ioc_paths_keep_unix_literals_and_skip_windows_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("evil"), b"").unwrap();
        let i = ioc(&[
            ("FileItem/FullPath", Condition::Is, &format!("{d}/evil"), false),
            (
                "FileItem/FullPath",
                Condition::StartsWith,
                &format!("{d}/kdevtmp"),
                false,
            ),
            ("FileItem/FilePath", Condition::Is, d, false),
            ("FileItem/FullPath", Condition::Is, "C:\\Windows\\evil.exe", false),
            ("FileItem/FilePath", Condition::Is, "Local\\Temp", false),
            ("FileItem/FullPath", Condition::Contains, "/usr", false),
            ("FileItem/FullPath", Condition::Is, "/nonexistent/x", false),
            ("FileItem/FullPath", Condition::Is, "/etc/passwd", true),
            ("FileItem/FileName", Condition::Is, "/etc", false),
        ]);
        let got = paths_named_by(&[i]);
        assert_eq!(
            got,
            vec![
                dir.path().join("evil"),
                dir.path().to_path_buf(),
                dir.path().to_path_buf()
            ]
        );
    }

    #[test]
    fn nested_roots_on_one_filesystem_fold_into_the_outer_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"").unwrap();
        std::fs::create_dir_all(root.join("ab")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
        let s = dedupe(
            vec![
                root.join("a/b"),
                root.join("a/b/f"),
                root.join("link"),
                root.join("ab"),
                root.join("missing"),
            ],
            false,
        );
        assert_eq!(s.roots, vec![root.join("a"), root.join("ab")]);
        assert_eq!(s.missing, vec![root.join("missing")]);
    }

    #[test]
    fn a_root_on_another_filesystem_is_kept() {
        // /dev/shm (tmpfs) is inside /dev (devtmpfs).
        let s = dedupe(vec![PathBuf::from("/dev"), PathBuf::from("/dev/shm")], false);
        assert_eq!(s.roots, vec![PathBuf::from("/dev"), PathBuf::from("/dev/shm")]);
        let s = dedupe(vec![PathBuf::from("/dev"), PathBuf::from("/dev/shm")], true);
        assert_eq!(s.roots, vec![PathBuf::from("/dev")]);
    }

    #[test]
    fn this_test_binary_is_a_process_executable() {
        let me = std::env::current_exe().unwrap();
        assert!(process_executables().iter().any(|p| p == &me));
    }
}
