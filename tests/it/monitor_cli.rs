//! `ioc-scan monitor` argument and input errors: reported before any
//! kernel program is loaded, so these run without root or BPF.

use crate::common::{ioc_scan, workspace};

fn valid_ioc() -> std::path::PathBuf {
    workspace().join("fixtures/iocs/parser/valid/v11-bom-comment.ioc")
}

#[test]
fn monitor_without_ioc_is_a_usage_error() {
    let out = ioc_scan().arg("monitor").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ioc"));
}

#[test]
fn kill_inode_needs_dev_colon_ino_and_kill() {
    let out = ioc_scan()
        .args(["monitor", "--kill", "--kill-inode", "12345", "--ioc"])
        .arg(valid_ioc())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected DEV:INO"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ioc_scan()
        .args(["monitor", "--kill-inode", "1:2", "--ioc"])
        .arg(valid_ioc())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--kill-inode without --kill");
}

#[test]
fn a_negative_duration_is_refused() {
    let out = ioc_scan()
        .args(["monitor", "--duration=-1", "--ioc"])
        .arg(valid_ioc())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"));
}

#[test]
fn no_loadable_ioc_is_an_error_naming_the_paths() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("garbage.ioc");
    std::fs::write(&bad, "not xml at all").unwrap();
    let out = ioc_scan().args(["monitor", "--ioc"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no IOC loaded") && stderr.contains("garbage.ioc"), "{stderr}");
}
