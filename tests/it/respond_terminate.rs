//! Terminate on real processes the test started, found by the process
//! collector: killed through a pidfd when still the detected process,
//! left alone when the detection names another start time, never init.

use crate::respond_common::{detect, write_ioc};
use ioc_scan::respond::{apply, Action, Outcome, ResponseContext, ResponsePlan, Target};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::time::Duration;

fn plan() -> ResponsePlan {
    ResponsePlan::new(true, [Action::Terminate])
}

/// `sleep` under a unique process name (a symlink to it).
fn start(dir: &std::path::Path, name: &str) -> Child {
    let exe = dir.join(name);
    std::os::unix::fs::symlink("/bin/sleep", &exe).unwrap();
    let mut child = Command::new(&exe).arg("600").spawn().unwrap();
    // Wait until the exec happened (comm is the new name).
    let comm = format!("/proc/{}/comm", child.id());
    for _ in 0..1000 {
        if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == name) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{name} never started");
}

fn unique(prefix: &str) -> String {
    let mut n = format!("{prefix}{:x}", std::process::id());
    n.truncate(15);
    n
}

#[test]
fn a_detected_process_is_killed_and_only_it() {
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("rsp-kill-");
    let mut target = start(tmp.path(), &name);
    let mut bystander = Command::new("sleep").arg("600").spawn().unwrap();
    let ioc = write_ioc(tmp.path(), "proc", &[("ProcessItem/name", "is", &name)]);
    let detections = detect(&ioc, tmp.path(), true);
    assert_eq!(detections.len(), 1, "{detections:#?}");
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.outcome, Outcome::Done, "{r:#?}");
    assert!(matches!(r.object, Target::Process { pid, start_time: Some(_), .. } if pid == target.id()));
    assert_eq!(r.details["signals"], serde_json::json!(["SIGKILL"]));
    assert_eq!(target.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(bystander.try_wait().unwrap().is_none(), "nothing else is touched");
    bystander.kill().unwrap();
    bystander.wait().unwrap();

    // Again: the process is gone; refused, nothing sent anywhere.
    let again = apply(&plan(), &detections, &ResponseContext::from_env(None));
    assert!(matches!(&again[0].outcome, Outcome::Refused(_)), "{again:#?}");
}

#[test]
fn a_pid_that_names_another_process_is_never_signalled() {
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("rsp-reuse-");
    let mut target = start(tmp.path(), &name);
    let ioc = write_ioc(tmp.path(), "proc", &[("ProcessItem/name", "is", &name)]);
    let mut detections = detect(&ioc, tmp.path(), true);
    assert_eq!(detections.len(), 1);
    // As if the detected process had exited and its pid were reused: the
    // detection's start time is not this process's (a detection of an
    // older ioc-scan: whole seconds only).
    detections[0].object.fields.remove("start_boottime_ns");
    let start = detections[0].object.fields["start_time"].as_i64().unwrap();
    detections[0]
        .object
        .fields
        .insert("start_time".into(), (start - 100).into());
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    assert!(
        matches!(&records[0].outcome, Outcome::Refused(why) if why.contains("another process")),
        "{records:#?}"
    );
    assert!(target.try_wait().unwrap().is_none(), "still running");
    // Without a start time the identity cannot be checked: refused too.
    detections[0].object.fields.remove("start_time");
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    assert!(matches!(&records[0].outcome, Outcome::Refused(_)), "{records:#?}");
    assert!(target.try_wait().unwrap().is_none(), "still running");
    target.kill().unwrap();
    target.wait().unwrap();
}

/// A pid reused within the same second as the detected process's start:
/// whole seconds cannot tell them apart, the start tick can.
#[test]
fn task_terminate_never_kills_a_pid_reused_within_the_same_second() {
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("rsp-tick-");
    let mut target = start(tmp.path(), &name);
    let ioc = write_ioc(tmp.path(), "proc", &[("ProcessItem/name", "is", &name)]);
    let mut detections = detect(&ioc, tmp.path(), true);
    assert_eq!(detections.len(), 1);
    let fields = &mut detections[0].object.fields;
    let started = fields["start_boottime_ns"].as_u64().expect("the detection carries its start instant");
    // The detected process started one clock tick (10 ms) before the one
    // now at the pid: the same second (start_time unchanged), not the same
    // process.
    let tick_ns = 1_000_000_000 / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
    fields.insert("start_boottime_ns".into(), (started - tick_ns).into());
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    assert!(
        matches!(&records[0].outcome, Outcome::Refused(why) if why.contains("another process")),
        "{records:#?}"
    );
    assert!(target.try_wait().unwrap().is_none(), "still running");
    // The real start instant: the detected process, killed.
    detections[0].object.fields.insert("start_boottime_ns".into(), started.into());
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    assert_eq!(records[0].outcome, Outcome::Done, "{records:#?}");
    assert_eq!(target.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn init_ioc_scan_and_its_ancestors_are_never_terminated() {
    let tmp = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    let mut protected = vec![1, me, parent];
    let mut detections = Vec::new();
    // The test process's own record (ProcessItem/pid is ME) and init's.
    for pid in [1, me, parent] {
        let ioc = write_ioc(
            tmp.path(),
            &format!("pid{pid}"),
            &[("ProcessItem/pid", "is", &pid.to_string())],
        );
        detections.extend(detect(&ioc, tmp.path(), true));
    }
    assert_eq!(detections.len(), 3, "{detections:#?}");
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    for r in &records {
        assert!(
            matches!(&r.outcome, Outcome::Refused(why) if why.starts_with("not signalled")),
            "{r:#?}"
        );
        if let Target::Process { pid, .. } = r.object {
            protected.retain(|p| *p != pid);
        }
    }
    assert!(protected.is_empty());
}

#[test]
fn a_file_detection_terminates_the_processes_running_that_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let exe = root.join("dropper");
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let spawn = || {
        for _ in 0..100 {
            match Command::new(&exe).arg("600").spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(Duration::from_millis(20)),
                r => return r.unwrap(),
            }
        }
        panic!("ETXTBSY for ever");
    };
    let mut a = spawn();
    let mut b = spawn();
    let mut other = Command::new("sleep").arg("600").spawn().unwrap();
    for c in [&a, &b] {
        let link = format!("/proc/{}/exe", c.id());
        while !std::fs::read_link(&link).is_ok_and(|p| p == exe) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let ioc = write_ioc(&root, "dropper", &[("FileItem/FileName", "is", "dropper")]);
    let detections = detect(&ioc, &root, false);
    assert_eq!(detections.len(), 1);
    let records = apply(&plan(), &detections, &ResponseContext::from_env(None));
    let mut pids: Vec<u32> = records
        .iter()
        .map(|r| {
            assert_eq!(r.outcome, Outcome::Done, "{r:#?}");
            match r.object {
                Target::Process { pid, .. } => pid,
                _ => panic!("{r:#?}"),
            }
        })
        .collect();
    pids.sort();
    let mut want = vec![a.id(), b.id()];
    want.sort();
    assert_eq!(pids, want);
    assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(other.try_wait().unwrap().is_none());
    other.kill().unwrap();
    other.wait().unwrap();
}
