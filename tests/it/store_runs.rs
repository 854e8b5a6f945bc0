//! Tasks, collection versions, runs and pruning through the store API, on
//! real redb files with a manual clock.
use crate::store_common::*;
use chrono::Duration;
use ioc_scan::store::{
    DetectionRecordV1, PruneBudget, RunFilter, RunOutcome, RunStart, RunStatus, RunTrigger,
    TaskError,
};

fn detection(ioc: &str, path: &str) -> DetectionRecordV1 {
    DetectionRecordV1 {
        ioc_id: ioc.into(),
        ioc_name: format!("{ioc} name"),
        ioc_description: None,
        matched_items: vec![format!("{ioc}-item")],
        object: serde_json::json!({"kind": "file", "path": path}),
        responses: vec![],
    }
}

fn start(task: u64, device: &str) -> RunStart {
    RunStart {
        task_id: task,
        device: device.into(),
        trigger: RunTrigger::Manual,
    }
}

#[test]
fn duplicate_ioc_ids_are_refused_naming_both_files() {
    let (_dir, _, store) = temp_store("2026-03-01T00:00:00Z");
    let err = store
        .create_task(new_task(
            "dup",
            collection(&[("first.ioc", "X", "/a"), ("second.ioc", "X", "/b")]),
        ))
        .unwrap_err();
    assert!(matches!(err, TaskError::DuplicateIoc { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("first.ioc") && msg.contains("second.ioc") && msg.contains("X"),
        "{msg}"
    );
    assert!(store.tasks().unwrap().is_empty());
}

#[test]
fn identical_files_are_stored_once_and_released_with_the_last_version() {
    let (_dir, _, store) = temp_store("2026-03-01T00:00:00Z");
    let a = create_task(&store, "a", &[("same.ioc", "S", "/s")]);
    let b = create_task(&store, "b", &[("same.ioc", "S", "/s")]);
    let ca = store.collection(a.id, 1).unwrap();
    let cb = store.collection(b.id, 1).unwrap();
    assert_eq!(ca.files[0].sha256, cb.files[0].sha256);
    assert_eq!(ca.ioc_paths, vec!["/s".to_string()]);
    store.delete_task(a.id).unwrap();
    assert!(store.ioc_file_bytes(&cb.files[0].sha256).unwrap().is_some());
    store.delete_task(b.id).unwrap();
    assert!(store.ioc_file_bytes(&cb.files[0].sha256).unwrap().is_none());
    assert!(store.check_consistency().unwrap().is_empty());
}

#[test]
fn a_run_keeps_its_collection_version_after_the_task_is_edited() {
    let (_dir, clock, store) = temp_store("2026-03-01T00:00:00Z");
    let task = create_task(&store, "t", &[("old.ioc", "OLD", "/old")]);
    let mut run = store.begin_run(start(task.id, "host1")).unwrap();
    assert_eq!(store.run(run.id()).unwrap().status, RunStatus::Running);
    run.record(detection("OLD", "/old")).unwrap();
    let old_run = run
        .finish(RunOutcome {
            counts: vec![("files".into(), 3)],
            error: None,
        })
        .unwrap();
    assert_eq!(old_run.status, RunStatus::IocDetected);
    assert_eq!((old_run.detections, old_run.iocs_detected), (1, 1));

    clock.advance(Duration::hours(1));
    let edited = store
        .edit_task(
            task.id,
            Some(collection(&[("new.ioc", "NEW", "/new")])),
            |t| t.name = "renamed".into(),
        )
        .unwrap();
    assert_eq!(edited.collection_version, 2);
    let new_run = store
        .begin_run(start(task.id, "host1"))
        .unwrap()
        .finish(RunOutcome::default())
        .unwrap();
    assert_eq!(new_run.status, RunStatus::NoIocDetected);
    assert_eq!(new_run.collection_version, 2);

    let old = store.run(old_run.id).unwrap();
    assert_eq!((old.collection_version, old.task_name.as_str()), (1, "t"));
    let coll = store.collection(task.id, old.collection_version).unwrap();
    assert_eq!(coll.iocs[0].id, "OLD");
    assert_eq!(coll.files[0].name, "old.ioc");
    assert_eq!(
        store.detections(old.id).unwrap()[0].matched_items,
        vec!["OLD-item".to_string()]
    );
    assert_eq!(store.collection_versions(task.id).unwrap(), vec![1, 2]);
}

#[test]
fn detections_are_written_in_batches_and_a_dropped_writer_leaves_an_interrupted_run() {
    let (_dir, _, store) = temp_store("2026-03-01T00:00:00Z");
    let task = create_task(&store, "t", &[("a.ioc", "A", "/a")]);
    let id = {
        let mut run = store.begin_run(start(task.id, "h")).unwrap();
        for i in 0..1500 {
            run.record(detection("A", &format!("/a/{i}"))).unwrap();
        }
        // Full batches are already visible to readers.
        assert!(store.run(run.id()).unwrap().detections >= 1024);
        run.id()
    };
    let run = store.run(id).unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(run.detections, 1500);
    assert_eq!(store.detections(id).unwrap().len(), 1500);
    assert!(store.check_consistency().unwrap().is_empty());
}

#[test]
fn listing_filters_by_device_task_status_and_date_newest_first() {
    let (_dir, clock, store) = temp_store("2026-03-01T00:00:00Z");
    let a = create_task(&store, "a", &[("a.ioc", "A", "/a")]);
    let b = create_task(&store, "b", &[("b.ioc", "B", "/b")]);
    let mut ids = Vec::new();
    for (i, (task, device, hit)) in [
        (a.id, "d1", true),
        (b.id, "d1", false),
        (a.id, "d2", false),
        (b.id, "d2", true),
    ]
    .into_iter()
    .enumerate()
    {
        clock.set(t("2026-03-01T00:00:00Z") + Duration::days(i as i64));
        let mut run = store.begin_run(start(task, device)).unwrap();
        if hit {
            run.record(detection("A", "/x")).unwrap();
        }
        ids.push(run.finish(RunOutcome::default()).unwrap().id);
    }
    let list = |f: RunFilter| {
        store
            .list_runs(&f)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(RunFilter::default()),
        vec![ids[3], ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            device: Some("d1".into()),
            ..Default::default()
        }),
        vec![ids[1], ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            task: Some(a.id),
            ..Default::default()
        }),
        vec![ids[2], ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            task: Some(b.id),
            device: Some("d2".into()),
            ..Default::default()
        }),
        vec![ids[3]]
    );
    assert_eq!(
        list(RunFilter {
            status: Some(RunStatus::IocDetected),
            ..Default::default()
        }),
        vec![ids[3], ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            since: Some(t("2026-03-02T00:00:00Z")),
            ..Default::default()
        }),
        vec![ids[3], ids[2], ids[1]]
    );
    assert_eq!(
        list(RunFilter {
            limit: Some(1),
            ..Default::default()
        }),
        vec![ids[3]]
    );
}

#[test]
fn pruning_deletes_exactly_the_runs_older_than_the_retention() {
    let (_dir, clock, store) = temp_store("2026-01-01T00:00:00Z");
    let base = t("2026-01-01T00:00:00Z");
    let task = create_task(&store, "t", &[("a.ioc", "A", "/a")]);
    // One run every 6 hours for 60 days, each with 2 detections.
    let mut started = Vec::new();
    for i in 0..240 {
        clock.set(base + Duration::hours(6 * i));
        let mut run = store
            .begin_run(start(task.id, if i % 2 == 0 { "even" } else { "odd" }))
            .unwrap();
        run.record(detection("A", "/1")).unwrap();
        run.record(detection("A", "/2")).unwrap();
        let run = run.finish(RunOutcome::default()).unwrap();
        started.push((run.id, run.started_at));
    }
    // A run still in progress from long ago is kept.
    clock.set(base - Duration::days(100));
    let running = store.begin_run(start(task.id, "even")).unwrap();

    let now = base + Duration::days(60);
    clock.set(now);
    let cutoff = (now - Duration::days(30)).timestamp_millis();
    // Small transactions and several passes: the result must be the same.
    let mut total = 0;
    loop {
        let report = store
            .prune(
                Duration::days(30),
                PruneBudget {
                    runs_per_transaction: 7,
                    time: std::time::Duration::ZERO,
                },
            )
            .unwrap();
        total += report.runs_deleted;
        if !report.more {
            break;
        }
    }
    let expected_gone: Vec<u64> = started
        .iter()
        .filter(|(_, s)| *s < cutoff)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(total, expected_gone.len() as u64);
    assert_eq!(expected_gone.len(), 120);
    let mut remaining: Vec<u64> = store
        .list_runs(&RunFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    remaining.sort();
    let mut expected: Vec<u64> = started
        .iter()
        .filter(|(_, s)| *s >= cutoff)
        .map(|(id, _)| *id)
        .collect();
    expected.push(running.id());
    expected.sort();
    assert_eq!(remaining, expected);
    for id in &expected_gone {
        assert!(store.detections(*id).unwrap().is_empty());
    }
    assert!(store.check_consistency().unwrap().is_empty());
    drop(running);
}

#[test]
fn a_deleted_tasks_collection_stays_while_its_runs_do_and_goes_with_the_last() {
    let (_dir, clock, store) = temp_store("2026-01-01T00:00:00Z");
    let base = t("2026-01-01T00:00:00Z");
    let task = create_task(&store, "t", &[("a.ioc", "A", "/a")]);
    let run = store
        .begin_run(start(task.id, "h"))
        .unwrap()
        .finish(RunOutcome::default())
        .unwrap();
    store.delete_task(task.id).unwrap();
    assert_eq!(
        store
            .collection(task.id, run.collection_version)
            .unwrap()
            .iocs[0]
            .id,
        "A"
    );
    clock.set(base + Duration::days(31));
    store
        .prune(Duration::days(30), PruneBudget::default())
        .unwrap();
    assert!(store.collection(task.id, 1).is_err());
    assert!(store.check_consistency().unwrap().is_empty());
}
