//! The agent's scheduling and run recording with an injected clock and a
//! scripted scanner.
use crate::store_common::*;
use chrono::{Duration, Utc};
use ioc_scan::agent::{execute, Agent, AgentConfig, RunSink, ScanJob, ScanReport, Scanner};
use ioc_scan::store::{DetectionRecordV1, RunFilter, RunStatus, RunTrigger, Schedule};
use std::sync::atomic::{AtomicBool, Ordering};

/// Detects every IOC of the collection once; or raises `stop` midway.
struct Scripted {
    stop_midway: bool,
}

impl Scanner for Scripted {
    fn scan(&self, job: &ScanJob<'_>, sink: &mut dyn RunSink) -> ScanReport {
        for ioc in &job.collection.iocs {
            sink.detection(DetectionRecordV1 {
                ioc_id: ioc.id.clone(),
                ioc_name: ioc.name().to_string(),
                ioc_description: ioc.meta.description.clone(),
                matched_items: ioc.items().map(|i| i.id.clone()).collect(),
                object: serde_json::json!({"kind": "file", "path": "/x"}),
                responses: vec![],
            });
            if self.stop_midway {
                job.stop.store(true, Ordering::SeqCst);
            }
        }
        ScanReport {
            counts: vec![("files".into(), 10)],
            error: None,
        }
    }
}

fn config() -> AgentConfig {
    AgentConfig {
        device: "dev1".into(),
        ..Default::default()
    }
}

#[test]
fn the_agent_runs_each_schedule_when_due_and_only_then() {
    let base = t("2026-03-01T10:00:00Z");
    let (_dir, clock, store) = temp_store("2026-03-01T10:00:00Z");
    let mk = |name: &str, schedule: &str| {
        let mut task = new_task(name, collection(&[(&format!("{name}.ioc"), name, "/x")]));
        task.schedule = schedule.parse::<Schedule>().unwrap();
        store.create_task(task).unwrap().id
    };
    let manual = mk("manual", "manual");
    let every = mk("every", "every:30m");
    let once = mk("once", "once:2026-03-01T12:00:00Z");
    let daily = mk("daily", "daily:03:00");
    let start = mk("start", "agent-start");
    let agent = Agent {
        store: &store,
        scanner: &Scripted { stop_midway: false },
        config: config(),
        tz: Utc,
    };
    let stop = AtomicBool::new(false);
    let runs_of = |task| {
        store
            .list_runs(&RunFilter {
                task: Some(task),
                ..Default::default()
            })
            .unwrap()
    };

    // Agent start at 10:00: `every` (never ran) and `agent-start`.
    agent.run(true, &stop, &mut ()).unwrap();
    assert_eq!(runs_of(every).len(), 1);
    assert_eq!(runs_of(start).len(), 1);
    assert_eq!(runs_of(start)[0].trigger, RunTrigger::AgentStart);
    assert_eq!(runs_of(every)[0].trigger, RunTrigger::Schedule);
    assert_eq!(runs_of(every)[0].status, RunStatus::IocDetected);
    assert_eq!(runs_of(every)[0].device, "dev1");
    for task in [manual, once, daily] {
        assert!(runs_of(task).is_empty());
    }
    // 10:20: nothing due; the agent-start task does not run again.
    clock.set(base + Duration::minutes(20));
    agent.run_due(false, &stop, &mut ()).unwrap();
    assert_eq!(runs_of(every).len(), 1);
    assert_eq!(runs_of(start).len(), 1);
    // 12:00: `every` and `once`.
    clock.set(t("2026-03-01T12:00:00Z"));
    agent.run_due(false, &stop, &mut ()).unwrap();
    assert_eq!(runs_of(every).len(), 2);
    assert_eq!(runs_of(once).len(), 1);
    // Next day 03:00: `daily`, `every`; `once` never again.
    clock.set(t("2026-03-02T03:00:00Z"));
    agent.run_due(false, &stop, &mut ()).unwrap();
    assert_eq!(runs_of(daily).len(), 1);
    assert_eq!(runs_of(every).len(), 3);
    assert_eq!(runs_of(once).len(), 1);
    clock.set(t("2026-03-02T03:10:00Z"));
    agent.run_due(false, &stop, &mut ()).unwrap();
    assert_eq!(runs_of(daily).len(), 1);
    assert!(runs_of(manual).is_empty());
    // The agent prunes on start: move 40 days on and start again.
    clock.set(t("2026-04-12T03:10:00Z"));
    agent.run(true, &stop, &mut ()).unwrap();
    assert!(runs_of(once).is_empty(), "old results pruned");
    assert_eq!(runs_of(start).len(), 1, "only the new agent-start run");
    assert!(store.check_consistency().unwrap().is_empty());
}

#[test]
fn a_stop_during_a_scan_leaves_the_run_interrupted_with_its_detections() {
    let (_dir, _, store) = temp_store("2026-03-01T10:00:00Z");
    let task = create_task(&store, "t", &[("a.ioc", "A", "/a"), ("b.ioc", "B", "/b")]);
    let stop = AtomicBool::new(false);
    let mut seen = 0;
    let run = execute(
        &store,
        task.id,
        "d",
        RunTrigger::Manual,
        &Scripted { stop_midway: true },
        &stop,
        &mut |_| seen += 1,
    )
    .unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(seen, 2);
    assert_eq!(store.detections(run.id).unwrap().len(), 2);
    assert!(store.check_consistency().unwrap().is_empty());
}
