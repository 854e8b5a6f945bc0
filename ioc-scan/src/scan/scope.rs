//! Where a scan looks: the user's scopes, or the critical areas of a Linux
//! system, the paths the IOCs themselves name, and the executables of
//! running processes; made canonical and deduplicated so that each file is
//! examined once.

use crate::indicator::{self, Ioc};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

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

/// [`indicator::paths_named`] that exist on this host: the IOCs' share of
/// a scan's roots (one that does not exist here is no error).
pub fn named_roots(iocs: &[Ioc]) -> Vec<PathBuf> {
    indicator::paths_named(iocs)
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
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
    paths.extend(named_roots(iocs));
    paths.extend(process_executables());
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn named_roots_are_the_named_paths_that_exist_here() {
        use crate::indicator::{
            Condition, Content, Context, IocMeta, Item, Node, OpenIocVersion, Position,
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("evil"), b"").unwrap();
        let item = |condition, value: String| {
            Node::Item(Item {
                id: "i".into(),
                condition,
                context: Context {
                    document: "FileItem".into(),
                    search: "FileItem/FullPath".into(),
                    context_type: "mir".into(),
                },
                content: Content {
                    content_type: "string".into(),
                    value,
                },
                negate: false,
                preserve_case: false,
                position: Position::default(),
                problem: None,
            })
        };
        let ioc = Ioc {
            id: "t".into(),
            version: OpenIocVersion::V1_1,
            meta: IocMeta::default(),
            nodes: vec![
                item(Condition::Is, format!("{d}/evil")),
                item(Condition::StartsWith, format!("{d}/kdevtmp")),
                item(Condition::Is, format!("{d}/missing")),
                item(Condition::StartsWith, format!("{d}/gone/x")),
            ],
            source: "t.ioc".into(),
        };
        assert_eq!(
            named_roots(&[ioc]),
            vec![dir.path().to_path_buf(), dir.path().join("evil")]
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
