//! The parallel file walker on real trees: every regular file once, special
//! files and symlinks reported and never opened or followed, pseudo
//! filesystems refused, exclusions, per-entry errors as values.
use crate::common::fifo_and_socket;
use ioc_scan::collect::files::{SkipReason, WalkBuilder, WalkEvent, WalkState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Default, Debug)]
struct Seen {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    skipped: Vec<(PathBuf, SkipReason)>,
    errors: Vec<String>,
}

impl Seen {
    fn skipped_for(&self, reason: SkipReason) -> Vec<PathBuf> {
        let mut v: Vec<_> = self
            .skipped
            .iter()
            .filter(|(_, r)| *r == reason)
            .map(|(p, _)| p.clone())
            .collect();
        v.sort();
        v
    }
}

fn walk(b: &WalkBuilder) -> Seen {
    let seen = Mutex::new(Seen::default());
    b.build_parallel().run(|| {
        let seen = &seen;
        move |ev: WalkEvent<'_>| {
            let mut s = seen.lock().unwrap();
            match ev {
                WalkEvent::Dir(p) => s.dirs.push(p.to_path_buf()),
                WalkEvent::File(f) => {
                    // Metadata is read through the directory descriptor.
                    assert!(f.metadata().unwrap().is_file());
                    s.files.push(f.path().to_path_buf())
                }
                WalkEvent::Skipped { path, reason } => s.skipped.push((path.to_path_buf(), reason)),
                WalkEvent::Error(e) => s.errors.push(e.to_string()),
            }
            WalkState::Continue
        }
    });
    let mut s = seen.into_inner().unwrap();
    s.files.sort();
    s.dirs.sort();
    s
}

fn tree(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..files {
        let sub = dir.path().join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    dir
}

#[test]
fn every_regular_file_is_visited_once_even_with_overlapping_roots() {
    let dir = tree(300);
    let root = dir.path().canonicalize().unwrap();
    let seen = walk(WalkBuilder::new().root(&root).root(root.join("d3")).threads(4));
    assert_eq!(seen.files.len(), 300, "{:?}", seen.errors);
    let unique: std::collections::BTreeSet<_> = seen.files.iter().collect();
    assert_eq!(unique.len(), 300);
    assert_eq!(seen.dirs.len(), 1 + 7 + 21);
    assert!(seen.errors.is_empty());
    assert_eq!(seen.skipped_for(SkipReason::AlreadyVisited), vec![root.join("d3")]);
}

#[test]
fn fifos_and_sockets_are_reported_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let _sock = fifo_and_socket(&root);
    std::fs::write(root.join("plain"), b"x").unwrap();
    // A visitor opening every file it is given would block forever on the
    // FIFO (no writer): the walk must finish.
    let seen = Mutex::new(Vec::new());
    WalkBuilder::new().root(&root).build_parallel().run(|| {
        let seen = &seen;
        move |ev: WalkEvent<'_>| {
            if let WalkEvent::File(f) = ev {
                let (mut file, _) = f.open().unwrap();
                let mut s = String::new();
                std::io::Read::read_to_string(&mut file, &mut s).unwrap();
                seen.lock().unwrap().push(s);
            }
            WalkState::Continue
        }
    });
    assert_eq!(seen.into_inner().unwrap(), vec!["x".to_string()]);
    let seen = walk(WalkBuilder::new().root(&root));
    assert_eq!(
        seen.skipped_for(SkipReason::Special),
        vec![root.join("fifo"), root.join("sock")]
    );
    assert_eq!(seen.files, vec![root.join("plain")]);
}

#[test]
fn symlinks_are_reported_not_followed_loops_included() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/inside"), b"x").unwrap();
    std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("outside")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
    let seen = walk(WalkBuilder::new().root(&root));
    assert_eq!(seen.files, vec![root.join("sub/inside")]);
    assert_eq!(
        seen.skipped_for(SkipReason::Symlink),
        vec![root.join("outside"), root.join("passwd"), root.join("sub/loop")]
    );
    // A root that is a symlink is reported too.
    let seen = walk(WalkBuilder::new().root(root.join("outside")));
    assert_eq!(seen.skipped_for(SkipReason::Symlink), vec![root.join("outside")]);
    assert!(seen.files.is_empty());
}

#[test]
fn excluded_files_and_directories_are_skipped_and_not_entered() {
    let dir = tree(60);
    let root = dir.path().canonicalize().unwrap();
    let set = globset::GlobSetBuilder::new()
        .add(globset::Glob::new("**/d1").unwrap())
        .add(globset::Glob::new("**/f5").unwrap())
        .build()
        .unwrap();
    let seen = walk(WalkBuilder::new().root(&root).excludes(set));
    assert!(seen.files.iter().all(|f| !f.starts_with(root.join("d1"))));
    assert!(!seen.files.contains(&root.join("d5/e2/f5")));
    // d1 holds files 1, 8, 15, ... (9 of them); f5 is elsewhere.
    assert_eq!(seen.files.len(), 60 - 9 - 1);
    assert_eq!(
        seen.skipped_for(SkipReason::Excluded),
        vec![root.join("d1"), root.join("d5/e2/f5")]
    );
}

#[test]
fn a_root_may_be_a_single_file() {
    let dir = tree(5);
    let root = dir.path().canonicalize().unwrap();
    let file = root.join("d2/e2/f2");
    let seen = walk(WalkBuilder::new().root(&file));
    assert_eq!(seen.files, vec![file]);
    assert!(seen.dirs.is_empty());
}

#[test]
fn missing_roots_are_errors_not_aborts() {
    let dir = tree(5);
    let root = dir.path().canonicalize().unwrap();
    let seen = walk(WalkBuilder::new().root(root.join("nope")).root(&root));
    assert_eq!(seen.files.len(), 5);
    assert_eq!(seen.errors.len(), 1);
    assert!(seen.errors[0].contains("nope"), "{:?}", seen.errors);
}

#[test]
fn proc_and_sys_are_never_entered() {
    let seen = walk(WalkBuilder::new().root("/proc").root("/sys/kernel").root("/proc/self"));
    assert!(seen.files.is_empty() && seen.dirs.is_empty(), "{seen:?}");
    assert_eq!(seen.skipped_for(SkipReason::PseudoFilesystem).len(), 2);
}

#[test]
fn of_dev_only_dev_shm_is_entered() {
    let dir = tempfile::Builder::new()
        .prefix("walk-test")
        .tempdir_in("/dev/shm")
        .unwrap();
    std::fs::write(dir.path().join("miner"), b"x").unwrap();
    let seen = walk(WalkBuilder::new().root("/dev").cross_filesystems(true));
    assert!(
        seen.dirs
            .iter()
            .all(|d| d == Path::new("/dev") || d.starts_with("/dev/shm")),
        "{:?}",
        seen.dirs
    );
    assert!(seen.files.contains(&dir.path().join("miner")));
    // No device node of /dev was even looked at.
    assert!(seen
        .skipped_for(SkipReason::Special)
        .iter()
        .all(|p| p.starts_with("/dev/shm")));
}

#[test]
fn a_walk_stays_on_the_root_filesystem_unless_told() {
    let dir = tree(3);
    let root = dir.path().canonicalize().unwrap();
    let mnt = root.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "walk-test", mnt.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?): other-filesystem check not exercised");
        return;
    }
    std::fs::write(mnt.join("on-tmpfs"), b"x").unwrap();
    let same = walk(WalkBuilder::new().root(&root));
    let cross = walk(WalkBuilder::new().root(&root).cross_filesystems(true));
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_eq!(same.skipped_for(SkipReason::OtherFilesystem), vec![mnt.clone()]);
    assert_eq!(same.files.len(), 3);
    assert!(cross.files.contains(&mnt.join("on-tmpfs")));
    assert_eq!(cross.files.len(), 4);
}

#[test]
fn quit_stops_every_thread() {
    let dir = tree(500);
    let count = Mutex::new(0usize);
    WalkBuilder::new().root(dir.path()).threads(3).build_parallel().run(|| {
        let count = &count;
        move |ev: WalkEvent<'_>| {
            if let WalkEvent::File(_) = ev {
                let mut c = count.lock().unwrap();
                *c += 1;
                if *c >= 10 {
                    return WalkState::Quit;
                }
            }
            WalkState::Continue
        }
    });
    // Each thread stops at its next event after the quit.
    assert!(count.into_inner().unwrap() < 20);
}

#[test]
fn skip_on_a_directory_does_not_read_it() {
    let dir = tree(70);
    let root = dir.path().canonicalize().unwrap();
    let files = Mutex::new(0usize);
    WalkBuilder::new().root(&root).build_parallel().run(|| {
        let (files, root) = (&files, &root);
        move |ev: WalkEvent<'_>| match ev {
            WalkEvent::Dir(p) if p != root.as_path() && p.starts_with(root.join("d0")) => WalkState::Skip,
            WalkEvent::File(_) => {
                *files.lock().unwrap() += 1;
                WalkState::Continue
            }
            _ => WalkState::Continue,
        }
    });
    assert_eq!(files.into_inner().unwrap(), 60);
}

#[test]
fn a_file_vanishing_between_listing_and_use_is_a_value_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for n in ["a", "b"] {
        std::fs::write(root.join(n), b"x").unwrap();
    }
    let outcomes = Mutex::new(BTreeMap::new());
    WalkBuilder::new().root(&root).threads(1).build_parallel().run(|| {
        let (outcomes, root) = (&outcomes, &root);
        move |ev: WalkEvent<'_>| {
            if let WalkEvent::File(f) = ev {
                // The first file seen deletes the other one, already listed.
                let other = if f.file_name() == "a" { "b" } else { "a" };
                let _ = std::fs::remove_file(root.join(other));
                let r = match f.open() {
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.to_string(),
                };
                outcomes.lock().unwrap().insert(f.file_name().to_owned(), r);
            }
            WalkState::Continue
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    let values: Vec<_> = outcomes.values().cloned().collect();
    assert!(values.contains(&"ok".to_string()));
    // Both were in the same getdents batch: the second one vanished.
    assert_eq!(values.len(), 2, "{outcomes:?}");
    assert!(values.iter().any(|v| v.contains("vanished")), "{outcomes:?}");
}

#[test]
fn deep_trees_do_not_exhaust_descriptors_or_stack() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = dir.path().canonicalize().unwrap();
    for i in 0..400 {
        p.push(format!("{}", i % 10));
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("bottom"), b"x").unwrap();
    let seen = walk(WalkBuilder::new().root(dir.path()).threads(2));
    assert_eq!(seen.files, vec![p.join("bottom")]);
    assert_eq!(seen.dirs.len(), 401);
}

/// A user owning a directory inside the scope swaps an intermediate
/// directory for a symlink to a root-only tree while the walk is under
/// way; past the held-directory limit (forced to 0: every subdirectory is
/// reopened) the walk must not follow it out of its scope.
#[test]
fn walk_reopen_does_not_follow_a_swapped_intermediate_directory() {
    use std::os::unix::fs::PermissionsExt;
    let scope = tempfile::tempdir().unwrap();
    let scope_path = scope.path().canonicalize().unwrap();
    std::fs::create_dir_all(scope_path.join("a/b/c")).unwrap();
    std::fs::write(scope_path.join("a/b/c/inside.txt"), b"in scope").unwrap();
    // Root-only, outside the scope, shaped like the path being walked.
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(outside.path().join("b/c")).unwrap();
    std::fs::write(outside.path().join("b/c/root-only-secret.txt"), b"secret").unwrap();

    let swapped = AtomicBool::new(false);
    let files = Mutex::new(Vec::new());
    let replaced = Mutex::new(Vec::new());
    WalkBuilder::new()
        .root(&scope_path)
        .threads(1)
        .max_held_dirs(0)
        .build_parallel()
        .run(|| {
            let (scope_path, outside, swapped, files, replaced) =
                (&scope_path, outside.path(), &swapped, &files, &replaced);
            move |ev: WalkEvent<'_>| {
                match ev {
                    // a/b is listed, c queued by its path: swap a now.
                    WalkEvent::Dir(p)
                        if p == scope_path.join("a/b") && !swapped.swap(true, Ordering::SeqCst) =>
                    {
                        std::fs::rename(scope_path.join("a"), scope_path.join("a-moved")).unwrap();
                        std::os::unix::fs::symlink(outside, scope_path.join("a")).unwrap();
                    }
                    WalkEvent::File(f) => {
                        let mut s = String::new();
                        if let Ok(mut fh) = f.open().map(|(fh, _)| fh) {
                            let _ = std::io::Read::read_to_string(&mut fh, &mut s);
                        }
                        files.lock().unwrap().push((f.path().to_path_buf(), s));
                    }
                    WalkEvent::Skipped {
                        path,
                        reason: SkipReason::Replaced,
                    } => replaced.lock().unwrap().push(path.to_path_buf()),
                    _ => {}
                }
                WalkState::Continue
            }
        });
    assert!(swapped.load(Ordering::SeqCst), "the swap never happened");
    let files = files.into_inner().unwrap();
    assert!(
        files.iter().all(|(_, content)| content != "secret"),
        "the walk followed the swapped directory out of its scope: {files:?}"
    );
    assert_eq!(
        replaced.into_inner().unwrap(),
        vec![scope_path.join("a/b/c")]
    );
}
