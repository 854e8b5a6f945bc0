//! What a managed device (or whoever holds its token or an enrollment token)
//! can do to the console's records: one result per job, times bounded by the
//! console's clock, results owned by a device id (not a reusable name), and a
//! removed device's token refused at once. Real consoles over real HTTP: the
//! built binary, or `console::serve` in-process on a manual clock where time
//! must move.
use crate::console_common::*;
use crate::store_common::{create_task, open_at, t};
use ioc_scan::console::{self, ConsoleConfig};
use ioc_scan::store::{ManualClock, RunRecordV1, RunStatus, RunTrigger, Store};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn setup() -> (tempfile::TempDir, Console, Api) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&token);
    (dir, console, api)
}

/// A manual task over one IOC file; returns its id.
fn task(api: &Api, name: &str) -> u64 {
    let ioc = ioc_file(&format!("{name}-ioc"), "marker.bin", "device tests");
    api.create_task(json!({ "name": name }), &[("one.ioc", &ioc)])["id"].as_u64().unwrap()
}

/// Runs task `id` now on `device`; returns the job ids made.
fn run_on(api: &Api, id: u64, device: u64) -> Vec<u64> {
    let r = api.post(&format!("/tasks/{id}/run"), &json!({ "devices": [device] }));
    assert_eq!(r.status(), 201);
    r.json::<Value>().unwrap()["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_u64().unwrap()).collect()
}

/// The jobs handed to the device now.
fn poll(dev: &Api) -> Vec<Value> {
    dev.json("/agent/jobs")["jobs"].as_array().unwrap().clone()
}

/// A finished run of `job` as an agent uploads it.
fn result(job: u64, run_key: &str, started_at: i64, ended_at: i64) -> Value {
    json!({
        "run_key": run_key, "job_id": job, "task_id": 1, "collection_version": 1, "trigger": "manual",
        "started_at": started_at, "ended_at": ended_at, "status": "no-ioc-detected",
        "counts": [["files_examined", 1]],
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn results(api: &Api, query: &str) -> Vec<Value> {
    api.json(&format!("/results{query}"))["results"].as_array().unwrap().clone()
}

#[test]
fn device_cannot_post_two_results_for_one_job() {
    let (_dir, _console, api) = setup();
    let id = task(&api, "once");
    let (device, token) = api.enroll("dev-once");
    let dev = api.with_token(&token);
    let job = run_on(&api, id, device)[0];
    assert_eq!(poll(&dev).len(), 1);
    let now = now_ms();
    let first = dev.post("/agent/results", &result(job, &format!("d{device}-j{job}"), now - 1000, now));
    assert_eq!(first.status(), 201);
    let first: Value = first.json().unwrap();
    // The same job under fresh run keys, one after another and then many at once.
    for key in ["another-key", "yet-another"] {
        let r = dev.post("/agent/results", &result(job, key, now - 500, now));
        assert_eq!(r.status(), 200, "a second result for job {job} was accepted");
        let ack: Value = r.json().unwrap();
        assert_eq!((ack["duplicate"].as_bool(), &ack["run_id"]), (Some(true), &first["run_id"]), "{ack}");
    }
    let job2 = run_on(&api, id, device)[0];
    assert_eq!(poll(&dev).len(), 1);
    let created = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for n in 0..16 {
            let (dev, created) = (&dev, &created);
            s.spawn(move || {
                let r = dev.post("/agent/results", &result(job2, &format!("racing-{n}"), now - 500, now));
                assert!(r.status().is_success(), "{}", r.status());
                if r.status() == 201 {
                    created.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(created.load(Ordering::SeqCst), 1, "racing uploads of one job stored more than once");
    assert_eq!(results(&api, &format!("?task={id}")).len(), 2);
}

/// A console served in-process over real HTTP, on a store whose clock the
/// test moves (retention without waiting 30 days).
struct ClockedConsole {
    url: String,
    admin: String,
    clock: Arc<ManualClock>,
    store: Arc<Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl ClockedConsole {
    /// Starts on a new database, which `before` may fill first.
    fn start(at: &str, before: impl FnOnce(&Store)) -> ClockedConsole {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t(at)));
        let store = Arc::new(open_at(&dir.path().join("console.redb"), clock.clone()));
        let (_, admin) = console::init(&store, "admin", "correct horse battery").unwrap();
        before(&store);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = ConsoleConfig { prune_every: Duration::from_secs(1), ..Default::default() };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = store.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime
                .block_on(console::serve(served, config, listener, async {
                    let _ = stopped.await;
                }))
                .unwrap();
        });
        ClockedConsole { url, admin, clock, store, stop: Some(stop), thread: Some(thread), _dir: dir }
    }

    fn api(&self) -> Api {
        Api { base: format!("{}/api/v1", self.url), token: Some(self.admin.clone()), http: client() }
    }
}

impl Drop for ClockedConsole {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn device_time_far_in_future_is_clamped_and_pruned_by_console_time() {
    let far_future = i64::MAX / 2;
    // A run an older console stored as the device dated it.
    let console = ClockedConsole::start("2026-01-01T00:00:00Z", |store| {
        let task = create_task(store, "legacy", &[("legacy.ioc", "legacy-ioc", "/legacy")]);
        let run = RunRecordV1 {
            id: 0,
            task_id: task.id,
            task_name: task.name,
            collection_version: 1,
            device: "legacy-dev".into(),
            trigger: RunTrigger::Manual,
            started_at: far_future,
            ended_at: Some(far_future + 1000),
            status: RunStatus::NoIocDetected,
            detections: 0,
            iocs_detected: 0,
            counts: Vec::new(),
            error: None,
            device_id: None,
            received_at: None,
            device_times: None,
        };
        store.import_runs([(run, Vec::new())]).unwrap();
    });
    let api = console.api();
    let legacy = wait_for("the stored future run re-dated", Duration::from_secs(30), || {
        let list = results(&api, "?device_name=legacy-dev");
        (list[0]["started_at"] == "2026-01-01T00:00:00.000Z").then(|| list[0].clone())
    });
    assert_eq!(legacy["device_times"]["started_at"], far_future, "{legacy}");
    assert!(console.store.check_consistency().unwrap().is_empty());
    let id = task(&api, "clock");
    let (device, token) = api.enroll("dev-clock");
    let dev = api.with_token(&token);
    let jobs: Vec<u64> = (0..3).flat_map(|_| run_on(&api, id, device)).collect();
    assert_eq!(poll(&dev).len(), 3);
    // The results arrive ten minutes after the jobs were made.
    console.clock.advance(chrono::Duration::minutes(10));
    let received = "2026-01-01T00:10:00.000Z";
    let created = "2026-01-01T00:00:00.000Z";
    let r = dev.post("/agent/results", &result(jobs[0], "future", far_future, i64::MAX));
    assert_eq!(r.status(), 201);
    let future_run = r.json::<Value>().unwrap()["run_id"].as_u64().unwrap();
    // A device clock in 1970: stored at the job's creation, not dropped as too old.
    let r = dev.post("/agent/results", &result(jobs[1], "past", 1, 2));
    assert_eq!(r.status(), 201);
    let past_run = r.json::<Value>().unwrap()["run_id"].as_u64().unwrap();
    // A plausible time (within the skew) is kept as the device said.
    let honest = t("2026-01-01T00:09:00Z").timestamp_millis();
    let r = dev.post("/agent/results", &result(jobs[2], "honest", honest, honest + 30_000));
    assert_eq!(r.status(), 201);

    let shown = api.json(&format!("/results/{future_run}"))["run"].clone();
    assert_eq!((shown["started_at"].as_str(), shown["ended_at"].as_str()), (Some(received), Some(received)), "{shown}");
    assert_eq!(shown["device_times"]["started_at"], far_future, "the device's own value is kept aside: {shown}");
    let shown = api.json(&format!("/results/{past_run}"))["run"].clone();
    assert_eq!(shown["started_at"].as_str(), Some(created), "{shown}");
    let list: Vec<Value> = results(&api, "").into_iter().filter(|r| r["device"] == "dev-clock").collect();
    assert_eq!(list.len(), 3);
    // Newest first by the console's bounds: the far-future run does not pin the top.
    assert_eq!(list[0]["started_at"], received, "{list:?}");
    assert_eq!(list[1]["started_at"], "2026-01-01T00:09:00.000Z", "{list:?}");

    // Past the retention period by the console's clock: all go.
    console.clock.advance(chrono::Duration::days(30) + chrono::Duration::hours(1));
    wait_for("the maintenance pass to prune the results", Duration::from_secs(60), || {
        results(&api, "").is_empty().then_some(())
    });
}

#[test]
fn device_enrolled_under_deleted_name_does_not_inherit_history() {
    let (_dir, _console, api) = setup();
    let id = task(&api, "history");
    let group = api.post("/groups", &json!({"name": "web"})).json::<Value>().unwrap()["id"].as_u64().unwrap();
    let (old, old_token) = api.enroll("web-1");
    assert_eq!(api.patch(&format!("/devices/{old}"), &json!({"group_id": group})).status(), 200);
    let old_dev = api.with_token(&old_token);
    let job = run_on(&api, id, old)[0];
    assert_eq!(poll(&old_dev).len(), 1);
    let now = now_ms();
    let r = old_dev.post("/agent/results", &result(job, "old", now - 1000, now));
    assert_eq!(r.status(), 201);
    let old_run = r.json::<Value>().unwrap()["run_id"].as_u64().unwrap();
    let pending = run_on(&api, id, old)[0];
    assert_eq!(api.delete(&format!("/devices/{old}")).status(), 204);

    // Whoever holds an enrollment token takes the name back.
    let (new, new_token) = api.enroll("web-1");
    assert_ne!(new, old);
    assert_eq!(api.patch(&format!("/devices/{new}"), &json!({"group_id": group})).status(), 200);
    let new_dev = api.with_token(&new_token);
    assert!(results(&api, &format!("?device={new}")).is_empty(), "the new device shows the old one's results");
    assert!(results(&api, &format!("?group={group}")).is_empty(), "the group shows a removed device's results");
    let shown = api.json(&format!("/results/{old_run}"))["run"].clone();
    assert_eq!(shown["device_id"], old, "{shown}");
    let all = results(&api, "");
    assert_eq!((all.len(), &all[0]["device_id"]), (1, &json!(old)), "{all:?}");
    // The name's whole history is still there to ask for.
    assert_eq!(results(&api, "?device_name=web-1").len(), 1);
    // Neither the old jobs nor the old token.
    assert!(poll(&new_dev).is_empty());
    let jobs = api.json(&format!("/jobs?task={id}"))["jobs"].as_array().unwrap().clone();
    assert!(jobs.iter().all(|j| j["device_id"] != new), "{jobs:?}");
    let r = new_dev.post("/agent/results", &result(pending, "inherited", now, now));
    assert_eq!(r.status(), 404, "the new device reported the old device's job");
    assert_eq!(old_dev.get("/agent/jobs").status(), 401);
    // Its own results are its own.
    let job = run_on(&api, id, new)[0];
    assert_eq!(poll(&new_dev).len(), 1);
    let now = now_ms();
    assert_eq!(new_dev.post("/agent/results", &result(job, "new", now - 1000, now)).status(), 201);
    let mine = results(&api, &format!("?device={new}"));
    assert_eq!((mine.len(), &mine[0]["device_id"]), (1, &json!(new)), "{mine:?}");
    // And stay its own under a new name.
    assert_eq!(api.patch(&format!("/devices/{new}"), &json!({"name": "web-2"})).status(), 200);
    let mine = results(&api, &format!("?device={new}"));
    assert_eq!((mine.len(), &mine[0]["device"]), (1, &json!("web-1")), "{mine:?}");
    assert_eq!(results(&api, &format!("?group={group}")).len(), 1);
}

#[test]
fn deleted_device_token_stops_at_once() {
    let (_dir, _console, api) = setup();
    let scheduled = ioc_file("scheduled-ioc", "secret-marker.bin", "what the fleet looks for");

    // A long poll already past authentication when the device is removed:
    // a job made afterwards must not reach it.
    let (device, token) = api.enroll("doomed");
    let dev = api.with_token(&token);
    std::thread::sleep(Duration::from_millis(20));
    let enrolled = api.json(&format!("/devices/{device}"))["last_seen"].clone();
    let polling = std::thread::spawn(move || {
        let r = dev.get("/agent/jobs?wait=30");
        let status = r.status();
        (status, r.text().unwrap())
    });
    wait_for("the long poll authenticated", Duration::from_secs(30), || {
        (api.json(&format!("/devices/{device}"))["last_seen"] != enrolled).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.delete(&format!("/devices/{device}")).status(), 204);
    let settings = json!({"name": "every hour", "schedule": "every:1h", "targets": {"all": true}});
    api.create_task(settings, &[("scheduled.ioc", &scheduled)]);
    let (status, body) = polling.join().unwrap();
    assert!(!body.contains("secret-marker.bin"), "a removed device was handed a job: {status} {body}");
    assert_eq!(status, 401, "{body}");
    assert_eq!(api.with_token(&token).get("/agent/jobs").status(), 401);

    // Requests racing the removal: once it has answered, none gets through,
    // whatever was read (and cached) while it ran. (Few rounds: each refused
    // token counts against the address's token failure limit.)
    for round in 0..5 {
        let (device, token) = api.enroll(&format!("raced-{round}"));
        let dev = api.with_token(&token);
        assert_eq!(dev.get("/agent/jobs").status(), 200);
        let deleted = AtomicBool::new(false);
        let admitted_after = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (dev, deleted, admitted_after) = (&dev, &deleted, &admitted_after);
                s.spawn(move || {
                    for _ in 0..2000 {
                        let was_deleted = deleted.load(Ordering::SeqCst);
                        let status = dev.get("/agent/jobs").status();
                        if status == 200 && was_deleted {
                            admitted_after.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        if status != 200 {
                            return;
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(api.delete(&format!("/devices/{device}")).status(), 204);
            deleted.store(true, Ordering::SeqCst);
        });
        assert_eq!(
            admitted_after.load(Ordering::SeqCst),
            0,
            "round {round}: the token worked after its device was removed"
        );
    }
}

#[test]
fn device_cannot_post_result_for_job_of_another_device() {
    let (_dir, _console, api) = setup();
    let id = task(&api, "theirs");
    let (a, token_a) = api.enroll("dev-a");
    let (b, token_b) = api.enroll("dev-b");
    let (dev_a, dev_b) = (api.with_token(&token_a), api.with_token(&token_b));
    let dispatched = run_on(&api, id, a)[0];
    assert_eq!(poll(&dev_a).len(), 1);
    let undispatched = run_on(&api, id, a)[0];
    let own_undispatched = run_on(&api, id, b)[0];
    let now = now_ms();
    // B cannot report A's jobs, nor learn that they exist: the answer is
    // that of a job that does not exist.
    let nonexistent = dev_b.post("/agent/results", &result(999_999, "x", now, now));
    assert_eq!(nonexistent.status(), 404);
    let nonexistent: Value = nonexistent.json().unwrap();
    for (job, key) in [(dispatched, format!("d{a}-j{dispatched}")), (undispatched, "y".to_string())] {
        let r = dev_b.post("/agent/results", &result(job, &key, now, now));
        assert_eq!(r.status(), 404, "device {b} reported job {job} of device {a}");
        let body: Value = r.json().unwrap();
        let said = |v: &Value, id: &str| v["message"].as_str().map(|m| m.replace(id, "N"));
        assert_eq!(said(&body, &job.to_string()), said(&nonexistent, "999999"), "{body}");
    }
    // Nor its own job before it was handed out.
    assert_eq!(dev_b.post("/agent/results", &result(own_undispatched, "z", now, now)).status(), 404);
    assert!(results(&api, "").is_empty());
    // A's jobs are untouched: A reports them.
    assert_eq!(poll(&dev_a).len(), 2);
    let r = dev_a.post("/agent/results", &result(dispatched, &format!("d{a}-j{dispatched}"), now - 1000, now));
    assert_eq!(r.status(), 201);
    let mine = results(&api, "");
    assert_eq!((mine.len(), &mine[0]["device"]), (1, &json!("dev-a")), "{mine:?}");
}

#[test]
fn device_posted_fields_are_bounded_before_storing() {
    let (_dir, _console, api) = setup();
    let id = task(&api, "bounded");
    let (device, token) = api.enroll("dev-bounded");
    let dev = api.with_token(&token);
    let job = run_on(&api, id, device)[0];
    assert_eq!(poll(&dev).len(), 1);
    let now = now_ms();
    let detection = |items: usize, object_bytes: usize, description_bytes: usize| {
        json!({
            "ioc_id": "bounded-ioc", "ioc_name": "bounded", "ioc_description": "d".repeat(description_bytes),
            "matched_items": (0..items).map(|i| format!("item-{i}")).collect::<Vec<_>>(),
            "object": {"kind": "file", "path": "p".repeat(object_bytes)},
            "responses": [],
        })
    };
    let with = |detections: Vec<Value>, counts: Value| {
        let mut body = result(job, &format!("d{device}-j{job}"), now - 1000, now);
        body["status"] = json!("ioc-detected");
        body["detections"] = json!(detections);
        body["counts"] = counts;
        body
    };
    let ok_counts = json!([["files_examined", 1]]);
    // Refused whole, naming what is too large; the job stays open.
    let r = dev.post("/agent/results", &with(vec![detection(1, 10, 10), detection(5000, 10, 10)], ok_counts.clone()));
    assert_eq!(r.status(), 413, "5000 matched items were accepted");
    assert!(r.text().unwrap().contains("detection 1"));
    let r = dev.post("/agent/results", &with(vec![detection(1, 2 << 20, 10)], ok_counts.clone()));
    assert_eq!(r.status(), 413, "a 2 MiB object was accepted");
    let r = dev.post("/agent/results", &with(vec![detection(1, 10, 10)], json!([["n".repeat(1000), 1]])));
    assert_eq!(r.status(), 400, "a 1000-byte count name was accepted");
    assert!(results(&api, "").is_empty());
    assert_eq!(poll(&dev).len(), 1);
    // Free text is cut, not refused.
    let r = dev.post("/agent/results", &with(vec![detection(1, 10, 1 << 20)], ok_counts));
    assert_eq!(r.status(), 201);
    let run = r.json::<Value>().unwrap()["run_id"].as_u64().unwrap();
    let shown = api.json(&format!("/results/{run}"));
    let description = shown["detections"][0]["ioc_description"].as_str().unwrap();
    assert_eq!(description.len(), 64 << 10);
}

#[test]
fn device_token_cannot_hold_any_number_of_long_polls() {
    let (_dir, _console, api) = setup();
    let id = task(&api, "polls");
    let (device, token) = api.enroll("dev-polls");
    let dev = api.with_token(&token);
    let started = std::time::Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let polls: Vec<_> = (0..12)
        .map(|_| {
            let (dev, tx) = (dev.with_token(&token), tx.clone());
            std::thread::spawn(move || {
                let r = dev.get("/agent/jobs?wait=60");
                let _ = tx.send(r.status());
            })
        })
        .collect();
    // Those past the device's share (4) are answered at once, with what there is.
    for _ in 0..8 {
        let status = rx.recv_timeout(Duration::from_secs(30)).expect("a long poll past the share was kept waiting");
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(50));
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "more than the share were answered at once");
    // The ones waiting get the next job.
    run_on(&api, id, device);
    for poll in polls {
        poll.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(55));
    assert_eq!(poll(&dev).len(), 1);
}
