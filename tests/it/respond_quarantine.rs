//! Quarantine and delete on real files: odd names and very long paths
//! round-trip through quarantine and restore (content, mode, owner,
//! times), files changed since detection are left alone, a full disk
//! fails cleanly and deletes nothing.

use crate::common::{ioc_scan, sha256_hex};
use crate::respond_common::{detect, is_root, write_ioc};
use ioc_scan::respond::{apply, Action, Outcome, ResponseContext, ResponsePlan};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const PAYLOAD: &[u8] = b"#!/bin/sh\necho owned\n";

fn ctx(q: &Path) -> ResponseContext<'static> {
    let mut c = ResponseContext::from_env(None);
    c.quarantine_dir = q.to_path_buf();
    c
}

fn plan(actions: &[Action]) -> ResponsePlan {
    ResponsePlan::new(true, actions.iter().copied())
}

/// Walk `path` (any length) with openat from `/` and return the parent
/// dir fd and the last name.
fn walk(path: &[u8]) -> (OwnedFd, Vec<u8>) {
    let mut parts: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let name = parts.pop().unwrap().to_vec();
    let mut dir = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    for c in parts {
        dir = openat(
            dir.as_fd(),
            OsStr::from_bytes(c),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
    }
    (dir, name)
}

fn read_long(path: &[u8]) -> Option<Vec<u8>> {
    let (dir, name) = walk(path);
    let fd = openat(dir.as_fd(), OsStr::from_bytes(&name), OFlag::O_RDONLY, Mode::empty()).ok()?;
    let mut out = Vec::new();
    File::from(fd).read_to_end(&mut out).unwrap();
    Some(out)
}

fn stat_long(path: &[u8]) -> nix::sys::stat::FileStat {
    let (dir, name) = walk(path);
    nix::sys::stat::fstatat(
        dir.as_fd(),
        OsStr::from_bytes(&name),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap()
}

/// Create nested directories under `root` until the full path is longer
/// than PATH_MAX, then a file in the deepest; returns the file's path.
fn deep_file(root: &Path, content: &[u8]) -> Vec<u8> {
    let mut path = root.as_os_str().as_bytes().to_vec();
    let mut dir = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    let comp = vec![b'd'; 200];
    while path.len() < 4200 {
        mkdirat(dir.as_fd(), OsStr::from_bytes(&comp), Mode::from_bits_truncate(0o755)).unwrap();
        dir = openat(
            dir.as_fd(),
            OsStr::from_bytes(&comp),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        path.push(b'/');
        path.extend_from_slice(&comp);
    }
    let fd = openat(
        dir.as_fd(),
        "deep.bin",
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::io::Write::write_all(&mut File::from(fd), content).unwrap();
    path.extend_from_slice(b"/deep.bin");
    path
}

/// Give `path` a recognisable mode, owner (when root) and times.
fn set_meta(path: &[u8]) {
    let (dir, name) = walk(path);
    let fd = openat(dir.as_fd(), OsStr::from_bytes(&name), OFlag::O_RDONLY, Mode::empty()).unwrap();
    if is_root() {
        nix::unistd::fchown(
            fd.as_fd(),
            Some(nix::unistd::Uid::from_raw(1234)),
            Some(nix::unistd::Gid::from_raw(5678)),
        )
        .unwrap();
    }
    nix::sys::stat::fchmod(fd.as_fd(), Mode::from_bits_truncate(0o750)).unwrap();
    let at = nix::sys::time::TimeSpec::new(1_000_000_000, 123_456_789);
    let mt = nix::sys::time::TimeSpec::new(1_100_000_000, 500_000_000);
    nix::sys::stat::futimens(fd.as_fd(), &at, &mt).unwrap();
}

/// A tempdir (canonical path `root`) with an empty tree `scan/` to
/// detect in, and the path `q` (not created) of the quarantine store.
struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    scan: PathBuf,
    q: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let scan = root.join("scan");
    std::fs::create_dir(&scan).unwrap();
    let q = root.join("q");
    Dirs { _tmp: tmp, root, scan, q }
}

fn qcmd(q: &Path, args: &[&str]) -> std::process::Output {
    ioc_scan()
        .arg("quarantine")
        .args(args)
        .arg("--quarantine-dir")
        .arg(q)
        .output()
        .unwrap()
}

fn qok(q: &Path, args: &[&str]) -> String {
    let out = qcmd(q, args);
    assert!(
        out.status.success(),
        "quarantine {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn odd_names_and_very_long_paths_round_trip_through_quarantine_delete_and_restore() {
    let Dirs { _tmp, root, scan, q } = dirs();
    let mut paths: Vec<Vec<u8>> = Vec::new();
    for name in [&b"new\nline.bin"[..], &b"bad\xff\xfe name.bin"[..], &b"plain.bin"[..]] {
        let mut p = scan.as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        std::fs::write(OsStr::from_bytes(&p), PAYLOAD).unwrap();
        paths.push(p);
    }
    paths.push(deep_file(&scan, PAYLOAD));
    assert!(paths[3].len() > 4096);
    for p in &paths {
        set_meta(p);
    }
    let before: Vec<_> = paths.iter().map(|p| stat_long(p)).collect();

    let ioc = write_ioc(&root, "payload", &[("FileItem/Sha256sum", "is", &sha256_hex(PAYLOAD))]);
    let detections = detect(&ioc, &scan, false);
    let mut detected: Vec<Vec<u8>> = detections
        .iter()
        .map(|d| match d.object.fields.get("path_bytes_hex") {
            Some(h) => hex::decode(h.as_str().unwrap()).unwrap(),
            None => d.object.fields["path"].as_str().unwrap().as_bytes().to_vec(),
        })
        .collect();
    detected.sort();
    let mut expected = paths.clone();
    expected.sort();
    assert_eq!(detected, expected, "every file is detected, by its exact bytes");

    let records = apply(&plan(&[Action::Quarantine, Action::Delete]), &detections, &ctx(&q));
    assert_eq!(records.len(), 8, "{records:#?}");
    for r in &records {
        assert_eq!(r.outcome, Outcome::Done, "{r:#?}");
    }
    let deletes: Vec<_> = records.iter().filter(|r| r.action == Action::Delete).collect();
    assert!(deletes
        .iter()
        .all(|r| r.details["deleted"] == true && r.details["quarantine"]["verified"] == true));
    for p in &paths {
        assert!(read_long(p).is_none(), "deleted: {}", String::from_utf8_lossy(p));
    }
    // One stored copy (content-addressed), 0400; the store is root-only.
    let objects: Vec<_> = std::fs::read_dir(q.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(objects.len(), 1);
    assert_eq!(std::fs::metadata(&objects[0]).unwrap().mode() & 0o7777, 0o400);
    assert_eq!(std::fs::metadata(&q).unwrap().mode() & 0o7777, 0o700);

    let listed: Vec<Value> = qok(&q, &["list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 4);
    let human = qok(&q, &["list"]);
    assert_eq!(
        human.lines().count(),
        5,
        "a header and one line per file, newlines escaped:\n{human}"
    );
    assert!(
        human.contains("new\\x0aline.bin") && human.contains("bad\\xff\\xfe name.bin"),
        "{human}"
    );
    for rec in &listed {
        let id = rec["id"].as_str().unwrap();
        let original = hex::decode(rec["original_path_hex"].as_str().unwrap()).unwrap();
        assert!(paths.contains(&original));
        assert_eq!(rec["sha256"], sha256_hex(PAYLOAD));
        assert_eq!(rec["detection"]["ioc_id"], "payload");
        let show = qok(&q, &["show", id]);
        assert!(show.contains("verified"), "{show}");
        let out = qok(&q, &["restore", id]);
        assert!(out.starts_with("restored"), "{out}");
        // Idempotent: the same content is already there.
        let again = qok(&q, &["restore", id]);
        assert!(again.contains("already has this content"), "{again}");
    }
    for (p, b) in paths.iter().zip(&before) {
        let st = stat_long(p);
        let rec = listed
            .iter()
            .find(|r| r["original_path_hex"] == hex::encode(p))
            .unwrap();
        assert_eq!((st.st_mode, st.st_uid, st.st_gid), (b.st_mode, b.st_uid, b.st_gid));
        assert_eq!((st.st_mtime, st.st_mtime_nsec), (b.st_mtime, b.st_mtime_nsec));
        // The access time as it was when quarantined (the scan read the file).
        assert_eq!(
            (st.st_atime, st.st_atime_nsec),
            (
                rec["atime"]["sec"].as_i64().unwrap(),
                rec["atime"]["nsec"].as_i64().unwrap()
            )
        );
        assert_eq!(read_long(p).as_deref(), Some(PAYLOAD), "{}", String::from_utf8_lossy(p));
    }

    // Purge: the shared copy goes with the last record.
    for (i, rec) in listed.iter().enumerate() {
        qok(&q, &["purge", rec["id"].as_str().unwrap()]);
        let left = std::fs::read_dir(q.join("objects")).unwrap().count();
        assert_eq!(left, usize::from(i + 1 < listed.len()));
    }
    assert!(qok(&q, &["list", "--json"]).is_empty());
    let out = qcmd(&q, &["show", listed[0]["id"].as_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn restore_refuses_to_overwrite_other_content_unless_forced_and_can_go_elsewhere() {
    let Dirs { _tmp, root, scan, q } = dirs();
    let file = scan.join("evil.bin");
    std::fs::write(&file, PAYLOAD).unwrap();
    let ioc = write_ioc(&root, "evil", &[("FileItem/FileName", "is", "evil.bin")]);
    let records = apply(&plan(&[Action::Quarantine]), &detect(&ioc, &scan, false), &ctx(&q));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Done);
    assert_eq!(std::fs::read(&file).unwrap(), PAYLOAD, "quarantine leaves the original");
    let id = records[0].details["quarantine_id"].as_str().unwrap().to_string();

    std::fs::write(&file, b"a new, legitimate file").unwrap();
    let out = qcmd(&q, &["restore", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read(&file).unwrap(), b"a new, legitimate file");

    let elsewhere = root.join("copy.bin");
    qok(&q, &["restore", &id, "--to", elsewhere.to_str().unwrap()]);
    assert_eq!(std::fs::read(&elsewhere).unwrap(), PAYLOAD);

    qok(&q, &["restore", &id, "--force"]);
    assert_eq!(std::fs::read(&file).unwrap(), PAYLOAD);
    // A directory in the way is never replaced.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    assert_eq!(qcmd(&q, &["restore", &id, "--force"]).status.code(), Some(2));
    assert!(file.is_dir());
}

#[test]
fn a_file_changed_since_detection_is_neither_quarantined_nor_deleted() {
    let Dirs { _tmp, root, scan, q } = dirs();
    let file = scan.join("evil.bin");
    std::fs::write(&file, PAYLOAD).unwrap();
    let ioc = write_ioc(&root, "evil", &[("FileItem/Sha256sum", "is", &sha256_hex(PAYLOAD))]);
    let detections = detect(&ioc, &scan, false);
    assert_eq!(detections.len(), 1);
    // Replaced by other content (same size) after detection.
    let other = vec![b'x'; PAYLOAD.len()];
    std::fs::write(&file, &other).unwrap();
    let records = apply(&plan(&[Action::Quarantine, Action::Delete]), &detections, &ctx(&q));
    assert_eq!(records.len(), 2);
    for r in &records {
        assert!(
            matches!(&r.outcome, Outcome::Refused(why) if why.contains("changed since detection")),
            "{r:#?}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), other);
    assert_eq!(std::fs::read_dir(q.join("records")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(q.join("objects")).unwrap().count(), 0);
}

#[test]
fn responding_twice_does_it_once() {
    let Dirs { _tmp, root, scan, q } = dirs();
    std::fs::write(scan.join("evil.bin"), PAYLOAD).unwrap();
    let ioc = write_ioc(&root, "evil", &[("FileItem/Sha256sum", "is", &sha256_hex(PAYLOAD))]);
    let detections = detect(&ioc, &scan, false);
    let p = plan(&[Action::Quarantine, Action::Delete]);
    let first = apply(&p, &detections, &ctx(&q));
    let second = apply(&p, &detections, &ctx(&q));
    assert!(
        first.iter().chain(&second).all(|r| r.outcome == Outcome::Done),
        "{second:#?}"
    );
    assert_eq!(second[0].details["already_quarantined"], true);
    assert_eq!(second[1].details["already_gone"], true);
    assert_eq!(second[0].details["quarantine_id"], first[0].details["quarantine_id"]);
    assert_eq!(std::fs::read_dir(q.join("records")).unwrap().count(), 1);
}

#[test]
fn a_process_detection_is_not_a_file_to_quarantine() {
    let tmp = tempfile::tempdir().unwrap();
    let q = tmp.path().join("q");
    let d = ioc_scan::eval::Detection {
        ioc_id: "p".into(),
        ioc_name: "p".into(),
        ioc_description: None,
        ioc_source: "p.ioc".into(),
        object: ioc_scan::eval::ObjectRef {
            kind: "process",
            fields: serde_json::json!({"pid": 1, "start_time": 0, "path": "/sbin/init"})
                .as_object()
                .unwrap()
                .clone(),
        },
        matched_items: vec![],
    };
    let records = apply(&plan(&[Action::Quarantine, Action::Delete]), &[d], &ctx(&q));
    assert!(
        records.iter().all(|r| matches!(r.outcome, Outcome::Refused(_))),
        "{records:#?}"
    );
    assert!(!q.exists(), "nothing was even opened");
}

/// A tmpfs of 64 KiB mounted for one test, unmounted on drop.
struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn quarantine_on_a_full_disk_fails_cleanly_and_deletes_nothing() {
    if !is_root() {
        eprintln!("SKIP: mounting a tmpfs needs root");
        return;
    }
    let Dirs { _tmp, root, scan, q } = dirs();
    std::fs::create_dir(&q).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &q,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k,mode=0700"),
    )
    .unwrap();
    let disk = SmallDisk(q.clone());
    let big: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = scan.join("big-evil.bin");
    std::fs::write(&file, &big).unwrap();
    let ioc = write_ioc(&root, "big", &[("FileItem/FileName", "is", "big-evil.bin")]);
    let detections = detect(&ioc, &scan, false);
    assert_eq!(detections.len(), 1);
    let records = apply(&plan(&[Action::Quarantine, Action::Delete]), &detections, &ctx(&q));
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(
        matches!(&records[0].outcome, Outcome::Failed(why) if why.contains("No space left")),
        "{records:#?}"
    );
    assert!(
        matches!(&records[1].outcome, Outcome::Refused(why) if why.starts_with("not deleted")),
        "{records:#?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), big, "the original is untouched");
    for sub in ["objects", "records", "tmp"] {
        assert_eq!(std::fs::read_dir(q.join(sub)).unwrap().count(), 0, "{sub} left empty");
    }
    drop(disk);
}
