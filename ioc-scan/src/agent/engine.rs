//! The real scanner of tasks: compiles the run's collection version and runs
//! [`crate::scan::Scan`] over the task's scope. The scan runs on its own
//! thread; this one records detections as they arrive, flushes waiting
//! batches, and turns a stop request into the scan's cancellation.

use super::execute::{RunSink, ScanJob, ScanReport, Scanner};
use crate::eval::{CompiledCollection, Detection};
use crate::scan::{scope, Collector, Scan, ScanOptions, ScanSummary, DEFAULT_MAX_FILE_SIZE};
use crate::store::DetectionRecordV1;
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
    /// Host collectors (processes, ports...) for each scan.
    pub collectors: fn() -> Vec<Box<dyn Collector>>,
}

impl Default for EngineScanner {
    fn default() -> Self {
        EngineScanner {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            threads: 0,
            collectors: Vec::new,
        }
    }
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
        let iocs = &job.collection.iocs;
        let mut scopes: Vec<PathBuf> = task.scope.custom_paths.iter().map(PathBuf::from).collect();
        if task.scope.ioc_paths && !task.scope.critical_areas {
            // (With the critical areas on, the scan adds these itself.)
            scopes.extend(scope::paths_named_by(iocs));
        }
        if scopes.is_empty() && !task.scope.critical_areas {
            return if task.scope.ioc_paths {
                // The paths the IOCs name do not exist here: nothing to find.
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
        let (compiled, _diagnostics) = CompiledCollection::compile(iocs);
        let options = ScanOptions {
            scopes,
            critical_areas: task.scope.critical_areas,
            excludes: task.scope.excludes.clone(),
            max_file_size: self.max_file_size,
            threads: self.threads,
            ..ScanOptions::default()
        };
        let scan = Scan::new(&compiled, options).with_collectors((self.collectors)());
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
                    Ok(d) => sink.detection(detection_record(d)),
                    Err(mpsc::RecvTimeoutError::Timeout) => sink.idle(),
                    // The scan ended (its sender dropped).
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if job.stop.load(Ordering::SeqCst) {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            match worker.join() {
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
            }
        })
    }
}
