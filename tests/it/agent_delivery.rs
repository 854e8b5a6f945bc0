//! The managed agent against a real console (separate processes of the
//! built binary, real HTTP on loopback, real redb files): it never sends
//! its token over plain HTTP unless told to, and it never loses a result —
//! too large ones are cut down with a count, refused ones stay queued and
//! visible, a run killed after it acted is reported `interrupted` with its
//! actions.
use crate::common::ioc_scan;
use crate::console_common::*;
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A managed agent process; killed (SIGKILL) when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Agent {
    fn start(console: &str, token: &str, name: &str, dir: &Path, envs: &[(&str, &str)]) -> Agent {
        let args: Vec<String> = [
            "agent",
            "--console",
            console,
            "--insecure-http",
            "--token",
            token,
            "--device-name",
            name,
            "--poll-wait",
            "1",
            "--db",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.join(name).join("local.redb").display().to_string()])
        .collect();
        let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let log = dir.join(format!("{name}.log"));
        let child = Self::spawn(&args, &envs, &log);
        Agent { child, log, args, envs }
    }

    fn spawn(args: &[String], envs: &[(String, String)], log: &Path) -> Child {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        ioc_scan()
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str, text: &str) {
        wait_for(what, Duration::from_secs(60), || self.log().contains(text).then_some(()));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, then start again (without the environment of `keep_env` false).
    fn restart(&mut self, keep_env: bool) {
        self.kill();
        if !keep_env {
            self.envs.clear();
        }
        self.child = Self::spawn(&self.args, &self.envs, &self.log);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn results(api: &Api, task: u64) -> Vec<Value> {
    api.json(&format!("/results?task={task}"))["results"].as_array().unwrap().clone()
}

fn wait_enrolled(api: &Api) {
    wait_for("the device enrolled", Duration::from_secs(60), || {
        (api.json("/devices")["devices"].as_array().unwrap().len() == 1).then_some(())
    });
}

/// An IOC matching every file whose name contains `part`.
fn ioc_name_contains(id: &str, part: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="{id}" last-modified="2026-01-01T00:00:00Z">
  <metadata><short_description>{id}</short_description><authored_by>tests</authored_by></metadata>
  <criteria>
    <Indicator operator="OR" id="{id}-top">
      <IndicatorItem id="{id}-name" condition="contains">
        <Context document="FileItem" search="FileItem/FileName" type="mir"/>
        <Content type="string">{part}</Content>
      </IndicatorItem>
    </Indicator>
  </criteria>
</OpenIOC>
"#
    )
    .into_bytes()
}

/// A listener on loopback that records every connection and what it was sent.
struct Recorder {
    port: u16,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Recorder { port, connections, received }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

#[test]
fn agent_refuses_plain_http_console_without_insecure_flag() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Recorder::start();
    let url = format!("http://127.0.0.1:{}", listener.port);
    let token = "enroll_secret-that-must-not-travel-in-clear";
    let agent = |extra: &[&str]| {
        let mut c = ioc_scan();
        c.args(["agent", "--console", &url, "--token", token, "--device-name", "clear", "--poll-wait", "1"])
            .args(extra)
            .arg("--db")
            .arg(dir.path().join("agent/local.redb"));
        c
    };
    let stderr_path = dir.path().join("refused.err");
    let mut refused = agent(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    // It must exit by itself, at once; one that keeps running is killed (and fails).
    let started = Instant::now();
    let exit = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = refused.kill();
            let _ = refused.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(listener.connections.load(Ordering::SeqCst), 0, "the agent connected: {}", listener.received());
    let exit = exit.unwrap_or_else(|| panic!("the agent ran on with an http:// console: {stderr}"));
    assert!(!exit.success(), "an http:// console must be refused: {stderr}");
    assert!(stderr.contains("plain HTTP") && stderr.contains("--insecure-http"), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "says how to trust a console certificate instead: {stderr}");
    // Give a stray connection time to show up: none may.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(listener.connections.load(Ordering::SeqCst), 0, "the agent connected: {}", listener.received());
    assert!(!dir.path().join("agent/console-agent.redb").exists(), "nothing is set up before the refusal");

    // The listener does see an agent that was told to accept plain HTTP
    // (so the check above could have failed).
    let mut accepted = agent(&["--insecure-http"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the token to arrive in clear", Duration::from_secs(30), || {
        listener.received().contains(token).then_some(())
    });
    let _ = accepted.kill();
    let _ = accepted.wait();
}

#[test]
fn oversized_run_is_truncated_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    // A console that takes results of 64 KiB at most.
    let console = Console::start(&db, "127.0.0.1:0", &["--max-result-bytes", "65536"]);
    let api = console.api(&admin);
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    const FILES: usize = 300;
    for i in 0..FILES {
        std::fs::write(scan.join(format!("oversize-marker-{i:04}.bin")), b"x").unwrap();
    }
    let _agent = Agent::start(&console.url, &api.enrollment_token(), "big", dir.path(), &[]);
    wait_enrolled(&api);
    let settings = json!({
        "name": "oversize",
        "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]},
    });
    let id = api.create_task(settings, &[("o.ioc", &ioc_name_contains("oversize", "oversize-marker-"))])["id"]
        .as_u64()
        .unwrap();
    assert_eq!(api.post(&format!("/tasks/{id}/run"), &json!({"all": true})).status(), 201);
    let run = wait_for("the cut-down result", Duration::from_secs(90), || results(&api, id).into_iter().next());
    let alert = api.json(&format!("/results/{}", run["id"]));
    let kept = alert["detections"].as_array().unwrap().len();
    let counts = alert["run"]["counts"].as_array().unwrap();
    let left_out = counts
        .iter()
        .find(|c| c["name"] == "detections_left_out")
        .unwrap_or_else(|| panic!("no detections_left_out count: {alert}"))["value"]
        .as_u64()
        .unwrap() as usize;
    assert!(kept > 0 && left_out > 0, "{kept} kept, {left_out} left out");
    assert_eq!(kept + left_out, FILES, "every detection is either sent or counted");
    assert_eq!(run["status"], "ioc-detected");
    let summary = run["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("{left_out} detections left out")), "{summary}");
}

#[test]
fn rejected_upload_stays_queued_and_visible_in_agent_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    let mut console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&admin);
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    let agent = Agent::start(&console.url, &api.enrollment_token(), "refused", dir.path(), &[]);
    wait_enrolled(&api);
    let settings = json!({
        "name": "refused",
        "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]},
    });
    let id =
        api.create_task(settings, &[("r.ioc", &ioc_file("refused-ioc", "absent.bin", ""))])["id"].as_u64().unwrap();
    // A run a little ahead: the device gets the job, then the console goes down.
    let due = chrono::Utc::now() + chrono::Duration::seconds(6);
    let schedule = format!("once:{}", due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let r = api.patch(&format!("/tasks/{id}"), &json!({"schedule": schedule, "targets": {"all": true}}));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let job = wait_for("the job handed to the device", Duration::from_secs(10), || {
        let jobs = api.json(&format!("/jobs?task={id}&open=true"))["jobs"].as_array().unwrap().clone();
        jobs.iter().find(|j| j["status"] == "dispatched").and_then(|j| j["id"].as_u64())
    });
    let device = api.json("/devices")["devices"][0]["id"].as_u64().unwrap();
    let port = console.port();
    console.kill();
    agent.wait_log("the run done while the console is down", "finished");
    // The console loses the job (restored from an older backup, say): it
    // will refuse the result with 404.
    {
        let redb = redb::Database::create(&db).unwrap();
        let txn = redb.begin_write().unwrap();
        txn.open_table(ioc_scan::console::tables::JOBS).unwrap().remove(job).unwrap();
        txn.open_table(ioc_scan::console::tables::OPEN_JOBS).unwrap().remove((device, job)).unwrap();
        txn.commit().unwrap();
    }
    let _console = Console::start(&db, &format!("127.0.0.1:{port}"), &[]);
    agent.wait_log("the refusal", "refused by the console");
    let status = wait_for("the refusal in agent status", Duration::from_secs(30), || {
        let out = ioc_scan()
            .args(["agent", "status", "--json", "--db"])
            .arg(dir.path().join("refused/local.redb"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        (status["outbox"][0]["delivery"]["last_status"] == 404).then_some(status)
    });
    let outbox = status["outbox"].as_array().unwrap();
    assert_eq!(outbox.len(), 1, "the refused result is still queued: {status}\n{}", agent.log());
    assert_eq!(outbox[0]["job_id"], job);
    assert_eq!(outbox[0]["delivery"]["last_status"], 404, "{status}");
    assert!(outbox[0]["delivery"]["last_error"].as_str().unwrap().contains("no job"), "{status}");
    assert!(status["last_error"]["message"].as_str().unwrap().contains("no job"), "{status}");
    let text =
        ioc_scan().args(["agent", "status", "--db"]).arg(dir.path().join("refused/local.redb")).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("results queued: 1") && text.contains("HTTP 404"), "{text}");
    assert!(!agent.log().contains("dropped"), "{}", agent.log());
}

#[test]
fn run_interrupted_after_response_actions_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&admin);
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    std::fs::write(scan.join("interrupt-marker.bin"), b"planted").unwrap();
    let quarantine = dir.path().join("quarantine");
    // The agent stops for good right after it recorded the first action:
    // the test kills it there (SIGKILL), mid-run.
    let mut agent = Agent::start(
        &console.url,
        &api.enrollment_token(),
        "interrupted",
        dir.path(),
        &[
            ("IOC_SCAN_QUARANTINE_DIR", quarantine.to_str().unwrap()),
            ("IOC_SCAN_TEST_PAUSE_AFTER", "agent-action-recorded"),
        ],
    );
    wait_enrolled(&api);
    let settings = json!({
        "name": "interrupt",
        "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]},
        "response": {"apply": true, "actions": [{"action": "quarantine"}]},
    });
    let id = api.create_task(settings, &[("i.ioc", &ioc_file("interrupt-ioc", "interrupt-marker.bin", ""))])["id"]
        .as_u64()
        .unwrap();
    assert_eq!(api.post(&format!("/tasks/{id}/run"), &json!({"all": true})).status(), 201);
    agent.wait_log("the action taken and recorded", "test pause after agent-action-recorded");
    assert!(results(&api, id).is_empty(), "nothing reported yet");
    agent.restart(false);
    let run = wait_for("the interrupted run", Duration::from_secs(60), || results(&api, id).into_iter().next());
    assert_eq!(run["status"], "interrupted", "{run}\n{}", agent.log());
    let alert = api.json(&format!("/results/{}", run["id"]));
    let r = &alert["detections"][0]["responses"][0];
    assert_eq!(r["action"], "quarantine", "{alert}");
    assert_eq!(r["outcome"], "done", "{alert}");
    // The job is over: not run (and acted on) a second time.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(results(&api, id).len(), 1);
    assert_eq!(api.json(&format!("/jobs?task={id}&open=true"))["jobs"].as_array().unwrap().len(), 0);
    assert_eq!(agent.log().matches("response actions recorded").count(), 1, "{}", agent.log());
}

/// The same for a run of the local store (`ioc-scan task run`, the local
/// agent): killed right after a response action, the run is found
/// `interrupted` with the action on record.
#[test]
fn local_run_killed_after_a_response_action_keeps_its_record() {
    use crate::respond_common::{write_ioc, TaskEnv};
    use std::io::{BufRead, BufReader};
    let env = TaskEnv::new();
    std::fs::write(env.path("scan/acted-on.bin"), b"planted").unwrap();
    let ioc = write_ioc(&env.path("iocs"), "acted", &[("FileItem/FileName", "is", "acted-on.bin")]);
    let id = env.task(&ioc, &["quarantine"], true);
    let mut child = env
        .cmd(&["task", "run", &id])
        .env("IOC_SCAN_TEST_PAUSE_AFTER", "run-action-recorded")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("test pause after run-action-recorded") {
            break;
        }
    }
    assert!(seen.contains("test pause after run-action-recorded"), "the run never recorded its action:\n{seen}");
    child.kill().unwrap();
    child.wait().unwrap();
    let runs: Vec<Value> =
        env.ok(&["results", "--json"], 0).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "interrupted", "{runs:?}");
    let alert = env.alert(&runs[0]["id"]);
    let responses = crate::respond_common::responses(&alert["detections"][0]);
    assert_eq!((responses[0].0.as_str(), responses[0].1.as_str()), ("quarantine", "done"), "{alert}");
}
