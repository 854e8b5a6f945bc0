//! `ioc-scan task run` of a task with live monitoring (`--monitor`): the
//! task scans no file, so every detection comes from the sensors; trigger
//! programs with a unique name are started while the run monitors, and the
//! run's alert details show the process (and, with terminate, its kill).

use crate::harness::{bpf_or_skip, marker_copy, unique_name, write_ioc, PATIENCE};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long the task monitors: long enough for loading and attaching on a
/// busy machine (the run ends when it is over).
const WINDOW: &str = "20s";

struct Db {
    path: PathBuf,
}

impl Db {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ioc-scan"));
        c.args(args).env("IOC_SCAN_DB", &self.path);
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "ioc-scan {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// A `task run --json` in progress, its lines read by a thread.
struct Run {
    child: Child,
    lines: Receiver<Value>,
    seen: Vec<Value>,
}

impl Run {
    fn start(db: &Db, task: &str) -> Run {
        let mut child = db
            .cmd(&["task", "run", task, "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting ioc-scan task run");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Run {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Takes the lines printed within `wait`; false once the run has ended.
    fn poll(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok(v) => {
                self.seen.push(v);
                while let Ok(v) = self.lines.try_recv() {
                    self.seen.push(v);
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    fn detected(&self) -> bool {
        self.seen.iter().any(|v| v["type"] == "detection")
    }

    /// Waits for the end of the run; returns its exit code and `run` line.
    fn finish(mut self) -> (Option<i32>, Value) {
        while self.poll(PATIENCE) {}
        let status = self.child.wait().unwrap();
        let run = self
            .seen
            .iter()
            .find(|v| v["type"] == "run")
            .cloned()
            .expect("task run printed its run");
        (status.code(), run)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a task watching for processes named `name` and returns its id.
fn create_task(db: &Db, dir: &Path, name: &str, extra: &[&str]) -> String {
    let ioc = write_ioc(dir, "task-live", &[("ProcessItem/name", "is", name)]);
    let mut args = vec![
        "task",
        "create",
        "--name",
        "live",
        "--no-critical-areas",
        "--no-ioc-paths",
        "--monitor",
        WINDOW,
        "--ioc",
        ioc.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = db.cmd(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let show = db.json(&["task", "show", "1", "--json"]);
    assert_eq!(show["monitor_seconds"], 20, "{show}");
    "1".to_string()
}

/// Starts `exe MARKER [linger]` (waiting for it unless it lingers).
fn trigger(exe: &Path, dir: &Path, n: usize, linger: bool) -> (Child, PathBuf) {
    let marker = dir.join(format!("marker-{n}"));
    let mut cmd = Command::new(exe);
    cmd.arg(&marker);
    if linger {
        cmd.arg("linger");
    }
    let mut child = cmd.spawn().expect("starting a trigger");
    if !linger {
        child.wait().unwrap();
    }
    (child, marker)
}

/// Starts triggers until the run reports a detection (the sensors are
/// attached then), then one more: that one runs while the run monitors
/// for sure. Returns them all, the last one last.
fn trigger_until_detected(run: &mut Run, exe: &Path, dir: &Path, linger: bool) -> Vec<(Child, PathBuf)> {
    let mut started = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !run.detected() {
        assert!(Instant::now() < deadline, "no detection: {:?}", run.seen);
        started.push(trigger(exe, dir, started.len(), linger));
        assert!(
            run.poll(Duration::from_millis(200)),
            "the run ended without a detection: {:?}",
            run.seen
        );
    }
    started.push(trigger(exe, dir, started.len(), linger));
    started
}

#[test]
#[ignore]
fn a_process_started_while_a_task_monitors_is_recorded_in_its_run() {
    if !bpf_or_skip("a_process_started_while_a_task_monitors_is_recorded_in_its_run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Db {
        path: dir.path().join("db.redb"),
    };
    let name = unique_name("iocmon");
    let exe = marker_copy(dir.path(), &name);
    let task = create_task(&db, dir.path(), &name, &[]);

    let mut run = Run::start(&db, &task);
    let started = trigger_until_detected(&mut run, &exe, dir.path(), false);
    let pids: Vec<u64> = started.iter().map(|(c, _)| u64::from(c.id())).collect();
    let last = *pids.last().unwrap();
    let (code, run_line) = run.finish();
    assert_eq!(code, Some(1), "{run_line}");
    assert_eq!(run_line["status"], "ioc-detected", "{run_line}");
    assert_eq!(run_line["counts"]["live_seconds"], 20, "{run_line}");
    assert!(run_line["counts"]["live_detections"].as_u64() >= Some(1), "{run_line}");

    let run_id = run_line["id"].to_string();
    let alert = db.json(&["alert", &run_id, "--json"]);
    let detections = alert["detections"].as_array().unwrap();
    assert!(!detections.is_empty(), "{alert}");
    for d in detections {
        assert_eq!(d["ioc"]["id"], "task-live", "{d}");
        let object = &d["object"];
        assert_eq!(object["kind"], "process", "{d}");
        assert_eq!(object["name"], name.as_str(), "{d}");
        assert!(pids.contains(&object["pid"].as_u64().unwrap()), "one of ours: {d}");
        assert_eq!(d["matched_items"][0]["term"], "ProcessItem/name", "{d}");
        assert!(d["responses"].as_array().unwrap().is_empty(), "no response asked: {d}");
    }
    // Started after the monitor was running: seen at exec.
    assert!(
        detections.iter().any(|d| d["object"]["pid"] == last),
        "the last trigger ({last}) is in the run: {alert}"
    );
}

#[test]
#[ignore]
fn a_task_that_terminates_kills_the_processes_it_sees_while_monitoring() {
    if !bpf_or_skip("a_task_that_terminates_kills_the_processes_it_sees_while_monitoring") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Db {
        path: dir.path().join("db.redb"),
    };
    let name = unique_name("iocterm");
    let exe = marker_copy(dir.path(), &name);
    let task = create_task(&db, dir.path(), &name, &["--respond", "terminate"]);

    let mut run = Run::start(&db, &task);
    // Lingering triggers: each one the sensors see is killed, at exec in the
    // kernel, or through a pidfd if it ran before the programs were attached.
    let started = trigger_until_detected(&mut run, &exe, dir.path(), true);
    let (code, run_line) = run.finish();
    assert_eq!(code, Some(1), "{run_line}");

    let last = started.last().unwrap().0.id();
    let mut by_kernel = Vec::new();
    let alert = db.json(&["alert", &run_line["id"].to_string(), "--json"]);
    let detections = alert["detections"].as_array().unwrap();
    for (mut child, marker) in started {
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "trigger {} was killed",
            child.id()
        );
        let d = detections
            .iter()
            .find(|d| d["object"]["pid"] == child.id())
            .unwrap_or_else(|| panic!("trigger {} is in the run: {alert}", child.id()));
        let terminate = &d["responses"][0];
        assert_eq!(terminate["action"], "terminate", "{d}");
        assert_eq!(terminate["outcome"], "done", "{d}");
        if !marker.exists() {
            // It never ran its own code: the kernel killed it at exec.
            let detail: Value = serde_json::from_str(terminate["detail"].as_str().unwrap()).unwrap();
            assert_eq!(detail["details"]["by"], "kernel", "{d}");
            by_kernel.push(child.id());
        }
    }
    // Started after the monitor was running: killed at exec.
    assert!(
        by_kernel.contains(&last),
        "the last trigger ({last}) was killed at exec: {alert}"
    );
}
