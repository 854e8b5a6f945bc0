//! Retention in the console: the maintenance pass deletes results older
//! than the retention period, with their finished jobs and result keys, and
//! keeps the rest. The store's clock is moved instead of waiting.
use crate::store_common::{create_task, open_at, t};
use ioc_scan::console::ingest::{store_batch, Received};
use ioc_scan::console::protocol::ResultUpload;
use ioc_scan::console::{self, fleet, AppState, ConsoleConfig};
use ioc_scan::store::{ManualClock, RunStatus, RunTrigger, TaskRecordV1};
use std::sync::Arc;

fn result(job: u64, key: &str, at: i64) -> ResultUpload {
    ResultUpload {
        run_key: key.into(),
        job_id: job,
        task_id: 1,
        collection_version: 1,
        trigger: RunTrigger::Manual,
        started_at: at,
        ended_at: at + 1000,
        status: RunStatus::NoIocDetected,
        counts: Vec::new(),
        error: None,
        detections: Vec::new(),
    }
}

#[test]
fn maintenance_prunes_results_jobs_and_keys_past_the_retention_period() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")));
    let store = Arc::new(open_at(&dir.path().join("c.redb"), clock.clone()));
    console::prepare(&store).unwrap();
    let task: TaskRecordV1 = create_task(&store, "kept", &[("a.ioc", "a", "/x")]);
    let hash = {
        let (secret, _) = console::accounts::new_token(
            &store,
            console::tables::TokenKindV1::Enrollment { group_id: None, uses_left: None },
            "t",
            None,
        )
        .unwrap();
        console::accounts::secret_hash(&secret)
    };
    let request = |name: &str| console::protocol::EnrollRequest {
        name: name.into(),
        hostname: None,
        os: None,
        agent_version: None,
    };
    let (device, _) = fleet::enroll(&store, &hash, request("dev")).unwrap();
    // Jobs as the device has them: made and handed out.
    let handed_out = |store: &ioc_scan::store::Store| {
        let job = fleet::dispatch(store, task.id, &[device.id], RunTrigger::Manual, None).unwrap()[0].clone();
        fleet::mark_dispatched(store, device.id, &[job.id]).unwrap();
        job
    };
    let old_job = handed_out(&store);
    // Handed out now, reported after the retention period (below).
    let late_job = handed_out(&store);
    let received = |job: u64, key: &str, at: i64| Received { device_id: device.id, upload: result(job, key, at) };
    let jan1 = t("2026-01-01T00:00:00Z").timestamp_millis();
    let old = received(old_job.id, "old", jan1);
    store_batch(&store, &[&old], 0).unwrap().pop().unwrap().unwrap();

    // 40 days later, a new run; then the maintenance pass with a 30-day retention.
    clock.advance(chrono::Duration::days(40));
    let new_job = handed_out(&store);
    let new = received(new_job.id, "new", jan1 + 40 * 86_400_000);
    store_batch(&store, &[&new], 0).unwrap().pop().unwrap().unwrap();
    assert_eq!(store.run_count().unwrap(), 2);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let state = AppState::new(store.clone(), ConsoleConfig::default()).unwrap();
    let removed = runtime.block_on(console::maintain(&state)).unwrap();
    assert!(removed >= 3, "the run, its job and its key: {removed}");
    assert_eq!(store.run_count().unwrap(), 1);
    let jobs = fleet::jobs(&store, None, false, 10).unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![new_job.id, late_job.id]);
    assert!(store.check_consistency().unwrap().is_empty());
    // A result older than the retention period is acknowledged and not stored.
    let late = received(late_job.id, "late", jan1);
    let oldest_kept = (ioc_scan::store::Clock::now(&*clock) - chrono::Duration::days(30)).timestamp_millis();
    let ack = store_batch(&store, &[&late], oldest_kept).unwrap().pop().unwrap().unwrap();
    assert!(ack.run_id.is_none() && ack.discarded.is_some(), "{ack:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}
