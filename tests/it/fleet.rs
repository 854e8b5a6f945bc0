//! One console and three agents, all separate processes of the built
//! binary: a task runs on every device; then the console is killed while
//! the devices run a scheduled task, one agent is killed and restarted with
//! its result still queued, the console comes back on the same database and
//! port, and every result arrives exactly once.
use crate::common::ioc_scan;
use crate::console_common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

struct Agent {
    child: Child,
    log: PathBuf,
    args: Vec<String>,
}

impl Agent {
    fn start(console: &str, token: &str, name: &str, dir: &Path) -> Agent {
        let log = dir.join(format!("{name}.log"));
        let args = vec![
            "agent".to_string(),
            "--console".into(),
            console.into(),
            "--insecure-http".into(),
            "--token".into(),
            token.into(),
            "--device-name".into(),
            name.into(),
            "--db".into(),
            dir.join(name).join("local.redb").display().to_string(),
            "--poll-wait".into(),
            "2".into(),
        ];
        let child = Self::spawn(&args, &log);
        Agent { child, log, args }
    }

    fn spawn(args: &[String], log: &Path) -> Child {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        ioc_scan().args(args).stdout(Stdio::null()).stderr(Stdio::from(out)).spawn().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.args, &self.log);
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

/// Once the one agent has enrolled, runs task `id` on all devices and
/// waits for its result.
fn run_on_the_one_device(api: &Api, id: u64) -> Vec<Value> {
    wait_for("the device enrolled", Duration::from_secs(60), || {
        (api.json("/devices")["devices"].as_array().unwrap().len() == 1).then_some(())
    });
    assert_eq!(api.post(&format!("/tasks/{id}/run"), &json!({"all": true})).status(), 201);
    wait_for("the result", Duration::from_secs(60), || {
        let r = results(api, id);
        (!r.is_empty()).then_some(r)
    })
}

#[test]
fn a_task_runs_on_three_agents_and_every_result_arrives_exactly_once_across_a_console_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    let mut console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&admin);
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    std::fs::write(scan.join("fleet-marker.bin"), b"planted").unwrap();

    let enrollment = api.enrollment_token();
    let names = ["fleet-a", "fleet-b", "fleet-c"];
    let mut agents: Vec<Agent> = names.iter().map(|n| Agent::start(&console.url, &enrollment, n, dir.path())).collect();
    let devices = wait_for("three enrolled devices", Duration::from_secs(60), || {
        let d = api.json("/devices")["devices"].as_array().unwrap().clone();
        (d.len() == 3).then_some(d)
    });
    let mut enrolled: Vec<&str> = devices.iter().map(|d| d["name"].as_str().unwrap()).collect();
    enrolled.sort();
    assert_eq!(enrolled, names);

    let found = ioc_file("fleet-found", "fleet-marker.bin", "planted marker");
    let absent = ioc_file("fleet-absent", "no-such-file.bin", "never there");
    let settings = json!({
        "name": "fleet sweep",
        "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]},
    });
    let task = api.create_task(settings, &[("found.ioc", &found), ("absent.ioc", &absent)]);
    let id = task["id"].as_u64().unwrap();

    // Run now on all devices: three results, one per device, each detecting the marker.
    assert_eq!(api.post(&format!("/tasks/{id}/run"), &json!({"all": true})).status(), 201);
    let first = wait_for("three results", Duration::from_secs(90), || {
        let r = results(&api, id);
        (r.len() >= 3).then_some(r)
    });
    assert_eq!(first.len(), 3);
    let mut devices_done: Vec<&str> = first.iter().map(|r| r["device"].as_str().unwrap()).collect();
    devices_done.sort();
    assert_eq!(devices_done, names);
    for r in &first {
        assert_eq!(r["status"], "ioc-detected", "{r}");
        assert_eq!(r["iocs_detected"], 1);
    }

    // A scheduled run a little ahead: the devices get it early, the console
    // goes down before it is due, the devices run it anyway and queue the results.
    let due = chrono::Utc::now() + chrono::Duration::seconds(15);
    let schedule = format!("once:{}", due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let r = api.patch(&format!("/tasks/{id}"), &json!({"schedule": schedule, "targets": {"all": true}}));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    wait_for("the scheduled jobs handed to the three devices", Duration::from_secs(10), || {
        let jobs = api.json(&format!("/jobs?task={id}&open=true"))["jobs"].as_array().unwrap().clone();
        (jobs.len() == 3 && jobs.iter().all(|j| j["status"] == "dispatched")).then_some(())
    });
    assert!(chrono::Utc::now() < due, "the setup took longer than the schedule's lead time");
    let port = console.port();
    console.kill();

    // Each agent runs the job on time and cannot deliver: its result waits in its queue.
    for agent in &agents {
        wait_for("a run queued while the console is down", Duration::from_secs(60), || {
            let log = agent.log();
            let after = log.rsplit("job ").next().unwrap_or("");
            (log.matches("finished").count() >= 2 && log.contains("unreachable") && !after.contains("uploaded"))
                .then_some(())
        });
    }
    // An agent restart loses nothing queued.
    agents[0].restart();
    std::thread::sleep(Duration::from_secs(1));

    let console = Console::start(&db, &format!("127.0.0.1:{port}"), &[]);
    let api = console.api(&admin);
    let all = wait_for("six results", Duration::from_secs(120), || {
        let r = results(&api, id);
        (r.len() >= 6).then_some(r)
    });
    // Give resends a moment: they must not add anything.
    for agent in &agents {
        wait_for("the queued result uploaded", Duration::from_secs(60), || {
            (agent.log().matches("uploaded").count() >= 2).then_some(())
        });
    }
    let all_again = results(&api, id);
    assert_eq!(all.len(), 6);
    assert_eq!(all_again.len(), 6);
    for name in names {
        let runs: Vec<&Value> = all_again.iter().filter(|r| r["device"] == name).collect();
        assert_eq!(runs.len(), 2, "{name}: {runs:?}");
        let triggers: Vec<&str> = runs.iter().map(|r| r["trigger"].as_str().unwrap()).collect();
        assert!(triggers.contains(&"manual") && triggers.contains(&"schedule"), "{name}: {triggers:?}");
        assert!(runs.iter().all(|r| r["status"] == "ioc-detected"));
    }
    assert_eq!(api.json(&format!("/jobs?task={id}&open=true"))["jobs"].as_array().unwrap().len(), 0);
    // The scheduled runs really ran while the console was down.
    let due_ms = due.timestamp_millis();
    for r in all_again.iter().filter(|r| r["trigger"] == "schedule") {
        let started =
            chrono::DateTime::parse_from_rfc3339(r["started_at"].as_str().unwrap()).unwrap().timestamp_millis();
        assert!(started >= due_ms - 1000, "{r}");
    }
}

#[test]
fn an_agent_enrolls_and_reports_over_https_trusting_the_console_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    let tls = TlsConsole::start(dir.path(), &db);
    let console = &tls.console;
    let api = Api { base: format!("{}/api/v1", console.url), token: Some(admin), http: tls.client() };
    let enrollment = api.enrollment_token();
    let log = dir.path().join("agent.log");
    let mut agent = Agent {
        child: Agent::spawn(
            &[
                "agent".into(),
                "--console".into(),
                console.url.clone(),
                "--token".into(),
                enrollment,
                "--ca-cert".into(),
                tls.cert_path.display().to_string(),
                "--device-name".into(),
                "tls-dev".into(),
                "--db".into(),
                dir.path().join("agent/local.redb").display().to_string(),
                "--poll-wait".into(),
                "2".into(),
            ],
            &log,
        ),
        log: log.clone(),
        args: Vec::new(),
    };
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    let ioc = ioc_file("tls-ioc", "nothing-here.bin", "");
    let settings = json!({"name": "tls", "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]}});
    let id = api.create_task(settings, &[("tls.ioc", &ioc)])["id"].as_u64().unwrap();
    let r = run_on_the_one_device(&api, id);
    assert_eq!(r[0]["device"], "tls-dev");
    assert_eq!(r[0]["status"], "no-ioc-detected");
    agent.kill();
}

/// Regression: the managed agent once replaced the outcomes of the task's
/// response actions with "skipped"; they must be the real ones.
#[test]
fn a_managed_agent_applies_the_tasks_response_actions_and_reports_their_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&admin);
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    let planted = scan.join("respond-marker.bin");
    std::fs::write(&planted, b"planted").unwrap();
    let quarantine = dir.path().join("quarantine");
    let log = dir.path().join("agent.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = ioc_scan()
        .args(["agent", "--console", &console.url, "--insecure-http", "--token", &api.enrollment_token()])
        .args(["--device-name", "responder"])
        .arg("--db")
        .arg(dir.path().join("agent/local.redb"))
        .args(["--poll-wait", "2"])
        .env("IOC_SCAN_QUARANTINE_DIR", &quarantine)
        .stdout(Stdio::null())
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let mut agent = Agent { child, log, args: Vec::new() };
    let ioc = ioc_file("respond-ioc", "respond-marker.bin", "quarantine me");
    let settings = json!({
        "name": "respond",
        "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]},
        "response": {"apply": true, "actions": [{"action": "quarantine"}]},
    });
    let id = api.create_task(settings, &[("respond.ioc", &ioc)])["id"].as_u64().unwrap();
    let r = run_on_the_one_device(&api, id);
    assert_eq!(r[0]["status"], "ioc-detected", "{}", agent.log());
    let alert = api.json(&format!("/results/{}", r[0]["id"]));
    let responses = &alert["detections"][0]["responses"];
    assert_eq!(responses[0]["action"], "quarantine", "{alert}");
    assert_eq!(responses[0]["outcome"], "done", "{alert}");
    // A quarantine copy: the original stays, its verified copy is stored.
    let sha = &serde_json::from_str::<Value>(responses[0]["detail"].as_str().unwrap()).unwrap()["details"]["sha256"];
    assert_eq!(std::fs::read(quarantine.join("objects").join(sha.as_str().unwrap())).unwrap(), b"planted");
    assert!(planted.exists());
    agent.kill();
}
