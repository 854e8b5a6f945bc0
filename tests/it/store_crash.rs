//! Crashes and concurrency with real processes: kill -9 during a run and
//! during pruning, `results` while an agent holds the database, and waiting
//! for a process that holds the file exclusively.
use crate::cli_task::{ioc_xml, s, Env};
use crate::store_common::open_at;
use chrono::{Duration, Utc};
use ioc_scan::store::{
    DetectionRecordV1, IocFile, ManualClock, NewCollection, NewTask, OpenOptions,
    ResponseSettingsV1, RunRecordV1, RunStatus, RunTrigger, Schedule, ScopeV1, Store,
};
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Instant;

/// Polls `cond` every 50 ms; panics after `secs` (a guard against hanging,
/// not a timing assertion).
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed().as_secs() < secs,
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn signal(child: &Child, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

fn kill9(child: &mut Child) {
    signal(child, Signal::SIGKILL);
    child.wait().unwrap();
}

/// Starts `ioc-scan ARGS` in the background, its output discarded.
fn spawn_quiet(env: &Env, args: &[&str]) -> Child {
    env.cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn open(env: &Env) -> Store {
    Store::open(env.db(), OpenOptions::default()).unwrap()
}

/// An IOC that makes the scan hash every file (an md5 no file has).
fn hash_everything_ioc() -> String {
    r#"<?xml version="1.0" encoding="us-ascii"?>
<ioc xmlns="http://schemas.mandiant.com/2010/ioc" id="hash-all">
  <short_description>Hash all</short_description>
  <definition>
    <Indicator operator="OR" id="h-ind">
      <IndicatorItem id="h-item" condition="is">
        <Context document="FileItem" search="FileItem/Md5sum" type="mir" />
        <Content type="md5">00000000000000000000000000000001</Content>
      </IndicatorItem>
    </Indicator>
  </definition>
</ioc>
"#
    .to_string()
}

#[test]
fn kill_9_during_a_run_leaves_it_interrupted_and_the_rest_intact() {
    let env = Env::new();
    let hits = env.path("scan/hits");
    let big = env.path("scan/big");
    std::fs::create_dir_all(&hits).unwrap();
    std::fs::create_dir_all(&big).unwrap();
    let hit = hits.join("hit.bin");
    std::fs::write(&hit, b"hit").unwrap();
    // A slow scope: large sparse files (no disk space used) that must be hashed.
    for i in 0..40 {
        let f = std::fs::File::create(big.join(format!("f{i:02}"))).unwrap();
        f.set_len(200 << 20).unwrap();
    }
    let hit_ioc = env.ioc("hit.ioc", ioc_xml("hit-ioc", "Hit", s(&hit)));
    let hash_ioc = env.ioc("hash.ioc", hash_everything_ioc());
    env.create_task("quick", &[&hit_ioc], &[]);
    env.create_task("slow", &[&hit_ioc, &hash_ioc], &["--scope", s(&hits), s(&big)]);
    env.ok(&["task", "run", "1"], 1);

    let mut child = spawn_quiet(&env, &["task", "run", "2"]);
    // Wait until the run is recorded `running` with its first detection written.
    wait_for(120, "the slow run to record a detection", || {
        let runs = env.json_lines(&["results", "--json", "--task", "2"]);
        runs.first()
            .is_some_and(|r| r["status"] == "running" && r["detections"].as_u64() >= Some(1))
    });
    kill9(&mut child);

    let runs = env.json_lines(&["results", "--json"]);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["status"], "interrupted", "{:?}", runs[0]);
    assert!(runs[0]["detections"].as_u64() >= Some(1));
    assert_eq!(runs[1]["status"], "ioc-detected");
    assert_eq!(runs[1]["detections"], 1);
    let alert = env.json(&["alert", &runs[0]["id"].to_string(), "--json"]);
    assert_eq!(alert["detections"][0]["ioc"]["id"], "hit-ioc");
    let alert = env.json(&["alert", "1", "--json"]);
    assert_eq!(alert["detections"].as_array().unwrap().len(), 1);
    assert!(open(&env).check_consistency().unwrap().is_empty());
    // The database takes new runs after the crash.
    env.ok(&["task", "run", "1"], 1);
}

#[test]
fn sigterm_during_a_task_run_ends_the_scan_and_records_it_interrupted() {
    let env = Env::new();
    let big = env.path("scan/big");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(big.join("hit.bin"), b"hit").unwrap();
    for i in 0..40 {
        std::fs::File::create(big.join(format!("f{i:02}")))
            .unwrap()
            .set_len(200 << 20)
            .unwrap();
    }
    let hit_ioc = env.ioc(
        "hit.ioc",
        ioc_xml("hit-ioc", "Hit", s(&big.join("hit.bin"))),
    );
    let hash_ioc = env.ioc("hash.ioc", hash_everything_ioc());
    env.create_task("slow", &[&hit_ioc, &hash_ioc], &["--scope", s(&big)]);
    let child = env
        .cmd(&["task", "run", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(120, "the run to start", || {
        env.json_lines(&["results", "--json"])
            .first()
            .is_some_and(|r| r["status"] == "running")
    });
    signal(&child, Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let run = &env.json_lines(&["results", "--json"])[0];
    assert_eq!(run["status"], "interrupted");
    assert!(
        run["ended_at"].is_string(),
        "a stopped run records its end: {run}"
    );
    assert!(open(&env).check_consistency().unwrap().is_empty());
}

/// 20,000 finished runs from 40 to 60 days ago, 2 detections each.
fn seed_old_runs(env: &Env) -> usize {
    let clock = Arc::new(ManualClock::new(Utc::now() - Duration::days(61)));
    let store = open_at(&env.db(), clock);
    let xml = ioc_xml("old", "Old", "/nonexistent");
    let parsed = ioc_scan::openioc::parse_bytes("old.ioc", xml.as_bytes()).unwrap();
    let task = store
        .create_task(NewTask {
            name: "old".into(),
            description: String::new(),
            collection: NewCollection {
                files: vec![IocFile {
                    name: "old.ioc".into(),
                    bytes: xml.into_bytes(),
                }],
                iocs: vec![parsed.ioc],
            },
            scope: ScopeV1::default(),
            response: ResponseSettingsV1::default(),
            schedule: Schedule::Manual,
            monitor_seconds: None,
        })
        .unwrap();
    let base = (Utc::now() - Duration::days(60)).timestamp_millis();
    let n = 20_000;
    let runs = (0..n).map(|i| {
        let started = base + i as i64 * 86_400; // 20,000 runs over 20 days
        let det = DetectionRecordV1 {
            ioc_id: "old".into(),
            ioc_name: "Old".into(),
            ioc_description: None,
            matched_items: vec!["old-item".into()],
            object: serde_json::json!({"kind": "file", "path": format!("/f{i}")}),
            responses: vec![],
        };
        let run = RunRecordV1 {
            id: 0,
            task_id: task.id,
            task_name: "old".into(),
            collection_version: 1,
            device: format!("d{}", i % 7),
            trigger: RunTrigger::Schedule,
            started_at: started,
            ended_at: Some(started + 1000),
            status: RunStatus::IocDetected,
            detections: 2,
            iocs_detected: 1,
            counts: vec![],
            error: None,
            device_id: None,
            received_at: None,
            device_times: None,
        };
        (run, vec![det.clone(), det])
    });
    store.import_runs(runs).unwrap();
    n
}

#[test]
fn kill_9_during_pruning_leaves_a_consistent_database() {
    let env = Env::new();
    // A recent run that pruning must keep (made first: commands that write prune).
    let hit = env.hit_ioc();
    env.create_task("recent", &[&hit], &[]);
    env.ok(&["task", "run", "1"], 1);
    let seeded = seed_old_runs(&env);

    // `agent --once` prunes first. Kill it right away (during its open), then
    // twice just after it committed a pruning transaction (so during the next).
    let count = || open(&env).run_count().unwrap();
    let mut child = spawn_quiet(&env, &["agent", "--once"]);
    kill9(&mut child);
    assert_eq!(
        open(&env).check_consistency().unwrap(),
        Vec::<String>::new()
    );
    let mut remaining = vec![count()];
    assert_eq!(remaining[0], seeded as u64 + 1);
    for _ in 0..2 {
        let before = *remaining.last().unwrap();
        let mut child = spawn_quiet(&env, &["agent", "--once"]);
        wait_for(120, "a pruning commit", || count() < before);
        kill9(&mut child);
        let store = open(&env);
        assert_eq!(store.check_consistency().unwrap(), Vec::<String>::new());
        remaining.push(store.run_count().unwrap());
    }
    eprintln!("runs left after each kill: {remaining:?}");
    assert!(remaining.windows(2).all(|w| w[1] < w[0]), "{remaining:?}");
    env.ok(&["agent", "--once"], 0);
    let runs = env.json_lines(&["results", "--json"]);
    assert_eq!(runs.len(), 1, "only the recent run is left");
    assert_eq!(runs[0]["task_name"], "recent");
    assert!(open(&env).check_consistency().unwrap().is_empty());
}

#[test]
fn results_and_task_create_work_while_an_agent_holds_the_database() {
    let env = Env::new();
    let hit = env.hit_ioc();
    env.create_task("every", &[&hit], &["--schedule", "every:1h"]);
    let mut agent = env
        .cmd(&["agent", "--device-name", "ag", "--tick", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(60, "the agent's first run", || {
        env.json_lines(&["results", "--json"]).len() == 1
    });
    // A write from another process while the agent is running.
    env.create_task("second", &[&hit], &["--schedule", "every:1h"]);
    wait_for(60, "the agent to pick up the new task", || {
        env.json_lines(&["results", "--json", "--task", "2"]).len() == 1
    });
    let table = env.ok(&["results", "--device", "ag"], 0);
    assert!(
        table.contains("every") && table.contains("second"),
        "{table}"
    );
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent is still running"
    );
    signal(&agent, Signal::SIGTERM);
    let out = agent.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
    assert!(open(&env).check_consistency().unwrap().is_empty());
}

#[test]
fn a_process_holding_the_file_exclusively_is_waited_for_and_named() {
    let env = Env::new();
    let a = env.ioc("a.ioc", ioc_xml("a", "A", "/nonexistent"));
    env.ok(&["task", "create", "--name", "t", "--ioc", s(&a)], 0);
    // redb's default mode locks the whole file, as an exclusive holder would.
    let exclusive = redb::Database::open(env.db()).unwrap();
    let me = std::process::id();

    // Gives up after IOC_SCAN_DB_WAIT, naming the holder.
    let out = env
        .cmd(&["results"])
        .env("IOC_SCAN_DB_WAIT", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("waiting for the database") && err.contains(&format!("pid {me}")),
        "{err}"
    );
    assert!(err.contains("in use") && err.contains("gave up"), "{err}");

    // Waits, and gets in once the holder lets go.
    let mut child = env
        .cmd(&["results", "--json"])
        .env("IOC_SCAN_DB_WAIT", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("waiting for the database"), "{line}");
    drop(exclusive);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}
