//! `cargo xtask bench-store`: 100,000 stored runs (31 days of 20 devices,
//! one detection each), then the median time of listing one device's results
//! and of pruning one day's worth. Targets: < 100 ms each.
//!
//! Built with optimizations: a debug xtask re-runs itself in release.

use anyhow::bail;
use chrono::{DateTime, Duration, Utc};
use ioc_scan::store::{
    DetectionRecordV1, IocFile, ManualClock, NewCollection, NewTask, OpenOptions, PruneBudget,
    ResponseSettingsV1, RunFilter, RunRecordV1, RunStatus, RunTrigger, Schedule, ScopeV1, Store,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 100_000;
const DEVICES: usize = 20;
const DAYS: i64 = 31;
const SAMPLES: usize = 5;
const TARGET_MS: f64 = 100.0;

const IOC: &str = r#"<?xml version="1.0" encoding="us-ascii"?>
<ioc xmlns="http://schemas.mandiant.com/2010/ioc" id="bench-0001">
  <short_description>Bench</short_description>
  <definition>
    <Indicator operator="OR" id="i1">
      <IndicatorItem id="item1" condition="is">
        <Context document="FileItem" search="FileItem/FullPath" type="mir" />
        <Content type="string">/tmp/bench/evil</Content>
      </IndicatorItem>
    </Indicator>
  </definition>
</ioc>
"#;

pub fn run(root: &Path) -> anyhow::Result<()> {
    if crate::rerun_in_release(root, "bench-store")? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.redb");
    let base: DateTime<Utc> =
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.with_timezone(&Utc);
    let clock = Arc::new(ManualClock::new(base));
    let store = Store::open(
        &path,
        OpenOptions {
            clock: clock.clone(),
            ..Default::default()
        },
    )?;

    let parsed = ioc_scan::openioc::parse_bytes("bench.ioc", IOC.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let task = store.create_task(NewTask {
        name: "bench".into(),
        description: String::new(),
        collection: NewCollection {
            files: vec![IocFile {
                name: "bench.ioc".into(),
                bytes: IOC.as_bytes().to_vec(),
            }],
            iocs: vec![parsed.ioc],
        },
        scope: ScopeV1::default(),
        response: ResponseSettingsV1::default(),
        schedule: Schedule::Manual,
        monitor_seconds: None,
    })?;

    // Runs spread evenly over DAYS days, devices round-robin.
    let step_ms = DAYS * 86_400_000 / RUNS as i64;
    let t0 = Instant::now();
    for chunk in (0..RUNS).collect::<Vec<_>>().chunks(10_000) {
        let batch = chunk.iter().map(|&i| {
            let started = base.timestamp_millis() + i as i64 * step_ms;
            let run = RunRecordV1 {
                id: 0,
                task_id: task.id,
                task_name: task.name.clone(),
                collection_version: 1,
                device: format!("device-{:02}", i % DEVICES),
                trigger: RunTrigger::Schedule,
                started_at: started,
                ended_at: Some(started + 60_000),
                status: RunStatus::IocDetected,
                detections: 1,
                iocs_detected: 1,
                counts: vec![("files".into(), 123_456), ("errors".into(), 0)],
                error: None,
                device_id: None,
                received_at: None,
                device_times: None,
            };
            let det = DetectionRecordV1 {
                ioc_id: "bench-0001".into(),
                ioc_name: "Bench".into(),
                ioc_description: None,
                matched_items: vec!["item1".into()],
                object: serde_json::json!({"kind": "file", "path": format!("/tmp/bench/evil{i}")}),
                responses: vec![],
            };
            (run, vec![det])
        });
        store.import_runs(batch)?;
    }
    let insert = t0.elapsed();
    let size = std::fs::metadata(&path)?.len();
    println!(
        "inserted {RUNS} runs ({DEVICES} devices, {DAYS} days, 1 detection each) in {:.2} s; file {:.1} MiB",
        insert.as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );

    let mut list_ms = Vec::new();
    let mut listed = 0;
    for _ in 0..SAMPLES {
        let t = Instant::now();
        listed = store
            .list_runs(&RunFilter {
                device: Some("device-07".into()),
                ..Default::default()
            })?
            .len();
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    let mut prune_ms = Vec::new();
    let mut pruned = Vec::new();
    let retention = Duration::days(30);
    // Day 0 is pruned when now passes day 30; each sample prunes one more day.
    for day in 1..=SAMPLES as i64 {
        clock.set(base + Duration::days(30 + day));
        let budget = PruneBudget {
            time: std::time::Duration::from_secs(60),
            ..Default::default()
        };
        let t = Instant::now();
        let report = store.prune(retention, budget)?;
        prune_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        pruned.push(report.runs_deleted);
    }
    let problems = store.check_consistency()?;
    if !problems.is_empty() {
        bail!("inconsistent after the benchmark: {problems:?}");
    }
    let list = median(&mut list_ms);
    let prune = median(&mut prune_ms);
    println!("list one device's results ({listed} runs): median {list:.1} ms of {SAMPLES} (target < {TARGET_MS} ms)");
    println!(
        "prune one day ({} runs each): median {prune:.1} ms of {SAMPLES} (target < {TARGET_MS} ms)",
        pruned[0]
    );
    if list >= TARGET_MS || prune >= TARGET_MS {
        println!("TARGET MISSED");
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
