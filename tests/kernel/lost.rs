//! Events the ring buffer had no room for are counted and reported.

use crate::harness::*;
use std::process::Command;

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn lost_events_are_counted_and_reported() {
    if !bpf_or_skip("lost_events_are_counted_and_reported") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "lost", &[("ProcessItem/name", "is", &unique_name("iocl"))]);
    let cg = TestCgroup::new("lost");
    // A one-page ring buffer (4 exec events), not read for 3 s: an exec
    // storm meanwhile must overflow it.
    let mut m = Monitor::start(
        &ioc,
        &cg,
        &[
            "--ring-buffer-bytes",
            "4096",
            "--read-delay-ms",
            "3000",
            "--lost-interval-ms",
            "100",
        ],
    );
    for _ in 0..100 {
        Command::new("/bin/true").status().unwrap();
    }
    let lost = m.wait_for(|v| v["type"] == "lost_events").expect("a lost_events line");
    assert!(lost["count"].as_u64().unwrap() > 0);
    assert!(lost["by_kind"]["exec"].as_u64().unwrap() > 0, "{lost}");
    let (_, lines) = m.stop();
    let summary = lines.iter().find(|v| v["type"] == "summary").expect("a summary");
    assert!(summary["lost_events"].as_u64().unwrap() >= lost["count"].as_u64().unwrap());
}
