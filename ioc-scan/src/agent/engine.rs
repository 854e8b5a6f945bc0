//! The real scanner of tasks: compiles the run's collection version and runs
//! [`crate::scan::Scan`] over the task's scope. The scan runs on its own
//! thread; this one records detections as they arrive, flushes waiting
//! batches, and turns a stop request into the scan's cancellation.
//!
//! When the task's "apply response actions" switch is on, each detection
//! gets the task's response actions ([`crate::respond`]) before it is
//! recorded, and their records go into its alert details; a critical areas
//! scan runs after the scan, its new detections recorded with the rest.
//!
//! When the task asks for live monitoring, the eBPF sensors then watch the
//! device for that long ([`live`]), each live detection recorded in the
//! same run with the same responses.

use super::execute::{RunSink, ScanJob, ScanReport, Scanner};
use super::live;
use crate::eval::{CompiledCollection, Detection};
use crate::respond::{self, ActionRecord, Responder, ResponseContext, ResponsePlan};
use crate::scan::{scope, Collector, Scan, ScanOptions, ScanSummary, DEFAULT_MAX_FILE_SIZE};
use crate::store::{DetectionRecordV1, ResponseAction, ResponseOutcomeV1, ResponseSettingsV1};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

/// Scans with [`crate::scan`].
pub struct EngineScanner {
    /// Files larger than this are not read.
    pub max_file_size: u64,
    /// Walking threads (0 = one per CPU).
    pub threads: usize,
    /// Host collectors (processes, ports...) for each scan, given what the
    /// run's IOCs ask about.
    pub collectors: fn(&CompiledCollection) -> Vec<Box<dyn Collector>>,
}

impl Default for EngineScanner {
    fn default() -> Self {
        EngineScanner {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            threads: 0,
            collectors: host_collectors,
        }
    }
}

/// This host's collectors, for the documents the IOCs use.
fn host_collectors(compiled: &CompiledCollection) -> Vec<Box<dyn Collector>> {
    crate::collect::host::scan_collectors(compiled, &crate::collect::host::HostRoot::system())
}

/// A detection as stored.
pub fn detection_record(d: Detection) -> DetectionRecordV1 {
    DetectionRecordV1 {
        ioc_id: d.ioc_id,
        ioc_name: d.ioc_name,
        ioc_description: d.ioc_description,
        matched_items: d.matched_items,
        object: serde_json::to_value(&d.object).unwrap_or(serde_json::Value::Null),
        responses: Vec::new(),
    }
}

/// The response plan of a task: its actions when its switch is on, else none.
pub fn response_plan(r: &ResponseSettingsV1) -> ResponsePlan {
    ResponsePlan::new(
        r.apply,
        r.actions.iter().map(|a| match *a {
            ResponseAction::Quarantine => respond::Action::Quarantine,
            ResponseAction::Delete => respond::Action::Delete,
            ResponseAction::Terminate => respond::Action::Terminate,
            ResponseAction::Isolate { seconds } => respond::Action::Isolate { seconds },
            ResponseAction::CriticalAreasScan => respond::Action::CriticalAreasScan,
        }),
    )
}

/// Action records as kept in a detection's alert details: the detail is
/// the JSON of the object acted on, the reason and the action's details.
pub fn response_outcomes(records: &[ActionRecord]) -> Vec<ResponseOutcomeV1> {
    records
        .iter()
        .map(|r| ResponseOutcomeV1 {
            action: r.action.to_string(),
            outcome: r.outcome.as_str().to_string(),
            detail: Some(
                serde_json::json!({"object": r.object, "reason": r.outcome.reason(), "details": r.details})
                    .to_string(),
            ),
        })
        .collect()
}

/// The counters of a critical areas scan, stored with the run.
fn follow_up_counts(r: &ActionRecord) -> Vec<(String, u64)> {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let d = &r.details;
    vec![
        (
            "critical_areas_scan_done".to_string(),
            u64::from(r.outcome.is_done()),
        ),
        (
            "critical_areas_scan_files_examined".to_string(),
            n(&d["summary"]["files_examined"]),
        ),
        (
            "critical_areas_scan_errors".to_string(),
            n(&d["summary"]["error_count"]),
        ),
        (
            "critical_areas_scan_new_detections".to_string(),
            n(&d["new_detections"]),
        ),
    ]
}

/// The counters of a scan, as stored with the run.
pub fn summary_counts(s: &ScanSummary) -> Vec<(String, u64)> {
    let mut counts = vec![
        ("files_examined".to_string(), s.files_examined),
        ("dirs".to_string(), s.dirs),
        ("files_read".to_string(), s.files_read),
        ("bytes_read".to_string(), s.bytes_read),
        ("skipped".to_string(), s.skipped.values().sum()),
        ("errors".to_string(), s.error_count),
    ];
    for c in &s.collectors {
        counts.push((format!("{}_objects", c.document), c.objects));
    }
    counts.push((
        "elapsed_ms".to_string(),
        (s.elapsed_seconds * 1000.0) as u64,
    ));
    counts
}

impl Scanner for EngineScanner {
    fn scan(&self, job: &ScanJob<'_>, sink: &mut dyn RunSink) -> ScanReport {
        let task = job.task;
        let (compiled, _diagnostics) = CompiledCollection::compile(&job.collection.iocs);
        let plan = response_plan(&task.response);
        let mut ctx = ResponseContext::from_env(Some(&compiled));
        for net in job.isolation_allow {
            if !ctx.isolation.allow.contains(net) {
                ctx.isolation.allow.push(*net);
            }
        }
        let mut responder = Responder::new(&plan, &ctx);
        // A long-running agent lifts an expired isolation at each run (the
        // kernel programs stopped dropping at expiry already).
        let _ = respond::isolate::lift_if_expired(&ctx.isolation);
        let mut recorded = HashSet::new();
        let mut report = self.scan_files(job, &compiled, &mut responder, &mut recorded, sink);
        if let Some(seconds) = task.monitor_seconds.filter(|s| *s > 0) {
            if !job.stop.load(Ordering::SeqCst) {
                let live = live::run(
                    job,
                    Duration::from_secs(u64::from(seconds)),
                    &plan,
                    &mut responder,
                    &mut recorded,
                    sink,
                );
                report.counts.extend(live.counts);
                if let Some(e) = live.error {
                    report.error = Some(match report.error.take() {
                        Some(scan) => format!("{scan}; {e}"),
                        None => e,
                    });
                }
            }
        }
        report
    }
}

impl EngineScanner {
    /// The file and host scan of the task's scope; each detection recorded
    /// (its key in `recorded`) with the responses, then the follow-up scan.
    fn scan_files(
        &self,
        job: &ScanJob<'_>,
        compiled: &CompiledCollection,
        responder: &mut Responder<'_, '_>,
        recorded: &mut HashSet<String>,
        sink: &mut dyn RunSink,
    ) -> ScanReport {
        let task = job.task;
        let iocs = &job.collection.iocs;
        let mut scopes: Vec<PathBuf> = task.scope.custom_paths.iter().map(PathBuf::from).collect();
        if task.scope.ioc_paths && !task.scope.critical_areas {
            // (With the critical areas on, the scan adds these itself.)
            scopes.extend(scope::named_roots(iocs));
        }
        if scopes.is_empty() && !task.scope.critical_areas {
            return if task.scope.ioc_paths || task.monitor_seconds.is_some_and(|s| s > 0) {
                // The paths the IOCs name do not exist here (or the task
                // only monitors): no file to look at.
                ScanReport {
                    counts: vec![("files_examined".into(), 0)],
                    error: None,
                }
            } else {
                ScanReport {
                    counts: Vec::new(),
                    error: Some(
                        "nothing to scan: critical areas off, no custom path, IOC paths off".into(),
                    ),
                }
            };
        }
        let options = ScanOptions {
            scopes,
            critical_areas: task.scope.critical_areas,
            excludes: task.scope.excludes.clone(),
            max_file_size: self.max_file_size,
            threads: self.threads,
            ..ScanOptions::default()
        };
        let scan = Scan::new(compiled, options).with_collectors((self.collectors)(compiled));
        let cancel = scan.cancel_handle();
        let (tx, rx) = mpsc::channel::<Detection>();
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let send = move |d: Detection| {
                    let _ = tx.send(d);
                };
                scan.run(&send)
            });
            loop {
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(d) => {
                        recorded.insert(respond::detection_key(&d));
                        let records = responder.respond(&d);
                        let mut rec = detection_record(d);
                        rec.responses = response_outcomes(&records);
                        sink.detection(rec);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => sink.idle(),
                    // The scan ended (its sender dropped).
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if job.stop.load(Ordering::SeqCst) {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            let mut report = match worker.join() {
                Ok(Ok(summary)) => ScanReport {
                    counts: summary_counts(&summary),
                    error: None,
                },
                Ok(Err(e)) => ScanReport {
                    counts: Vec::new(),
                    error: Some(e.to_string()),
                },
                Err(_) => ScanReport {
                    counts: Vec::new(),
                    error: Some("the scan panicked".into()),
                },
            };
            if report.error.is_none() && !job.stop.load(Ordering::SeqCst) {
                if let Some((follow_up, new)) = responder.finish() {
                    report.counts.extend(follow_up_counts(&follow_up));
                    // Each new detection names the scan that found it (its
                    // summary; the list of detections is the run itself).
                    let mut follow_up = follow_up;
                    if let Some(details) = follow_up.details.as_object_mut() {
                        details.remove("detections");
                    }
                    for (d, records) in new {
                        recorded.insert(respond::detection_key(&d));
                        let mut rec = detection_record(d);
                        rec.responses =
                            response_outcomes(&[vec![follow_up.clone()], records].concat());
                        sink.detection(rec);
                    }
                }
            }
            report
        })
    }
}
