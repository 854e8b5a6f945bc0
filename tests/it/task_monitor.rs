//! A task's live monitoring setting (`monitor_seconds`): through the API,
//! the CLI and to the agents; records written before it existed; and a run
//! where BPF is unavailable says so while the scan's results stand. (The
//! monitoring itself is tested against the kernel in tests/kernel.)
use crate::cli_task::{ioc_xml, Env};
use crate::console_common::*;
use ioc_scan::store::TaskRecordV1;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

fn console() -> (tempfile::TempDir, Console, Api) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&token);
    (dir, console, api)
}

#[test]
fn the_monitor_setting_round_trips_through_the_api_and_reaches_the_agents() {
    let (_dir, _console, api) = console();
    let file = ioc_file("ioc-live", "live.bin", "live");
    let created = api.create_task(json!({"name": "live", "monitor_seconds": 600}), &[("live.ioc", &file)]);
    assert_eq!(created["monitor_seconds"], 600, "{created}");
    let id = created["id"].as_u64().unwrap();
    assert_eq!(api.json(&format!("/tasks/{id}"))["monitor_seconds"], 600);
    assert_eq!(api.json("/tasks")["tasks"][0]["monitor_seconds"], 600);

    // Other edits leave it alone.
    let v: Value = api
        .patch(&format!("/tasks/{id}"), &json!({"name": "renamed"}))
        .json()
        .unwrap();
    assert_eq!(v["monitor_seconds"], 600, "{v}");

    // The job an agent gets carries it (the agent runs the monitor).
    let (device, token) = api.enroll("dev-live");
    assert_eq!(
        api.post(&format!("/tasks/{id}/run"), &json!({"devices": [device]}))
            .status(),
        201
    );
    let jobs = api.with_token(&token).json("/agent/jobs");
    assert_eq!(jobs["jobs"][0]["task"]["monitor_seconds"], 600, "{jobs}");

    // At most 24 hours; refused edits change nothing.
    for bad in [json!(86_401), json!(-1), json!("10m"), json!(1.5)] {
        let r = api.patch(&format!("/tasks/{id}"), &json!({ "monitor_seconds": bad }));
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(api.json(&format!("/tasks/{id}"))["monitor_seconds"], 600);
    let v: Value = api
        .patch(&format!("/tasks/{id}"), &json!({"monitor_seconds": 86_400}))
        .json()
        .unwrap();
    assert_eq!(v["monitor_seconds"], 86_400);

    // 0 turns it off; a task created without it has it off.
    let v: Value = api
        .patch(&format!("/tasks/{id}"), &json!({"monitor_seconds": 0}))
        .json()
        .unwrap();
    assert_eq!(v["monitor_seconds"], 0, "{v}");
    let plain = api.create_task(
        json!({"name": "plain"}),
        &[("plain.ioc", &ioc_file("ioc-plain", "p.bin", "p"))],
    );
    assert_eq!(plain["monitor_seconds"], 0);
}

#[test]
fn the_monitor_setting_round_trips_through_the_cli() {
    let env = Env::new();
    let ioc = env.ioc("a.ioc", ioc_xml("ioc-a", "A", "/nonexistent/a"));
    let ioc = ioc.to_str().unwrap();
    env.ok(&["task", "create", "--name", "t", "--ioc", ioc, "--monitor", "90s"], 0);
    let show = env.ok(&["task", "show", "1", "--json"], 0);
    let v: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v["monitor_seconds"], 90, "{v}");
    assert!(env
        .ok(&["task", "show", "1"], 0)
        .contains("Live monitoring: 1m30s after the scan"));

    env.ok(&["task", "edit", "1", "--monitor", "2h"], 0);
    let v: Value = serde_json::from_str(&env.ok(&["task", "show", "1", "--json"], 0)).unwrap();
    assert_eq!(v["monitor_seconds"], 7200);
    // A bare number is seconds.
    env.ok(&["task", "edit", "1", "--monitor", "45"], 0);
    let v: Value = serde_json::from_str(&env.ok(&["task", "show", "1", "--json"], 0)).unwrap();
    assert_eq!(v["monitor_seconds"], 45);

    for bad in ["25h", "86401", "soon", "-5"] {
        let out = env.run(&["task", "edit", "1", &format!("--monitor={bad}")]);
        assert_eq!(out.status.code(), Some(2), "--monitor {bad}");
    }
    env.ok(&["task", "edit", "1", "--monitor", "off"], 0);
    let v: Value = serde_json::from_str(&env.ok(&["task", "show", "1", "--json"], 0)).unwrap();
    assert_eq!(v["monitor_seconds"], 0);
    assert!(env.ok(&["task", "show", "1"], 0).contains("Live monitoring: off"));
}

#[test]
fn a_task_record_written_before_the_monitor_setting_reads_as_off() {
    // The V1 layout as first written (no monitor_seconds).
    let old = json!({
        "id": 3, "name": "old", "description": "", "collection_version": 1,
        "scope": {"critical_areas": true, "ioc_paths": true, "custom_paths": [], "excludes": []},
        "response": {"apply": false, "actions": []},
        "schedule": "manual", "created_at": 0, "updated_at": 0,
    });
    let task: TaskRecordV1 = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(task.monitor_seconds, None);
    // And a task without it is written as before.
    assert_eq!(serde_json::to_value(&task).unwrap(), old);
}

/// The uid to run `ioc-scan` as so that it has no BPF: nobody when the
/// tests run as root, else the tests' own.
fn without_bpf(cmd: &mut std::process::Command) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
}

#[test]
fn without_bpf_the_run_says_live_monitoring_failed_and_the_scan_results_stand() {
    let env = Env::new();
    // Reachable and writable for the unprivileged user.
    for p in [env.dir.path().to_path_buf(), env.path("iocs"), env.path("scan")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let target = env.path("scan/evil.bin");
    std::fs::write(&target, b"x").unwrap();
    let found = env.ioc("found.ioc", ioc_xml("ioc-found", "Found", target.to_str().unwrap()));
    let none = env.ioc("none.ioc", ioc_xml("ioc-none", "None", "/nonexistent/none"));
    let live = env.ioc(
        "live.ioc",
        r#"<?xml version="1.0" encoding="utf-8"?>
<OpenIOC id="ioc-live" xmlns="http://openioc.org/schemas/OpenIOC_1.1"><metadata><short_description>live</short_description></metadata><criteria><Indicator operator="OR" id="live-top">
<IndicatorItem id="live-item" condition="is"><Context document="ProcessItem" search="ProcessItem/name" type="mir"/><Content type="string">no-such-process-x</Content></IndicatorItem></Indicator></criteria></OpenIOC>
"#,
    );
    let cmd = |args: &[&str]| {
        let mut c = env.cmd(args);
        without_bpf(&mut c);
        c.output().unwrap()
    };
    let scan = env.path("scan");
    let scan = scan.to_str().unwrap();
    let (found, none, live) = (found.to_str().unwrap(), none.to_str().unwrap(), live.to_str().unwrap());
    let base = [
        "--no-critical-areas",
        "--no-ioc-paths",
        "--scope",
        scan,
        "--monitor",
        "5s",
    ];
    for (name, iocs) in [("found", [found, live]), ("none", [none, live])] {
        let mut args = vec!["task", "create", "--name", name];
        args.extend(base);
        args.extend(["--ioc", iocs[0], iocs[1]]);
        let out = cmd(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    // Found by the scan: the detection stands, the run says what failed.
    let out = cmd(&["task", "run", "1", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(run["status"], "ioc-detected", "{run}");
    assert_eq!(run["detections"], 1, "{run}");
    assert_eq!(run["counts"]["live_failed"], 1, "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("live monitoring could not run"),
        "{run}"
    );

    // Nothing found: the run is an error, not a clean "no IOC detected".
    let out = cmd(&["task", "run", "2", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let run: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(run["status"], "error", "{run}");
    assert_eq!(run["counts"]["files_examined"], 1, "the scan ran: {run}");
    assert!(
        run["error"].as_str().unwrap().contains("live monitoring could not run"),
        "{run}"
    );
}
