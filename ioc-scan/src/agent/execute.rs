//! One run of one task: record it `running`, scan, append detections as
//! they come, finish it (or leave it `interrupted` when stopped).

use crate::store::{
    CollectionRecordV1, DetectionRecordV1, RunError, RunOutcome, RunRecordV1, RunStart, RunTrigger,
    RunWriter, Store, TaskError, TaskRecordV1,
};
use std::sync::atomic::{AtomicBool, Ordering};

/// What to scan: the task and the collection version the run uses.
pub struct ScanJob<'a> {
    pub task: &'a TaskRecordV1,
    pub collection: &'a CollectionRecordV1,
    /// Set when the process is asked to stop: the scan should end soon.
    pub stop: &'a AtomicBool,
    /// Peers an isolation this run turns on must leave reachable, beyond
    /// `IOC_SCAN_ISOLATION_ALLOW` (the managed agent's console and DNS servers).
    pub isolation_allow: &'a [ipnet::IpNet],
}

/// How a scan ended.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Named counters (files scanned, errors...), in display order.
    pub counts: Vec<(String, u64)>,
    /// Set when the scan could not be done.
    pub error: Option<String>,
}

/// Where a scan hands its detections.
pub trait RunSink {
    /// A detection, as soon as it is found.
    fn detection(&mut self, detection: DetectionRecordV1);
    /// Call now and then while nothing is found (at least every second):
    /// detections waiting in a batch get written.
    fn idle(&mut self);
}

/// Runs a task's scan, handing each detection to the sink as it is found.
pub trait Scanner {
    fn scan(&self, job: &ScanJob<'_>, sink: &mut dyn RunSink) -> ScanReport;
}

/// The sink of [`execute`]: show, then record.
struct Recorder<'w, 's, 'o> {
    writer: &'w mut RunWriter<'s>,
    on_detection: &'o mut dyn FnMut(&DetectionRecordV1),
    error: Option<RunError>,
}

impl RunSink for Recorder<'_, '_, '_> {
    fn detection(&mut self, detection: DetectionRecordV1) {
        (self.on_detection)(&detection);
        // The response actions were taken already: their record is written
        // before the run goes on, so that a crash cannot lose it.
        let acted = !detection.responses.is_empty();
        if self.error.is_none() {
            let written = self.writer.record(detection).and_then(|()| {
                if acted {
                    self.writer.flush()?;
                    crate::respond::test_pause("run-action-recorded");
                }
                Ok(())
            });
            if let Err(e) = written {
                self.error = Some(e);
            }
        }
    }

    fn idle(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.writer.flush_if_due() {
                self.error = Some(e);
            }
        }
    }
}

/// Runs `task_id` now on `device` with `scanner` and records the run.
/// `on_detection` sees each detection first (to print it). If `stop` is set
/// when the scan returns, the run is left `interrupted`.
pub fn execute(
    store: &Store,
    task_id: u64,
    device: &str,
    trigger: RunTrigger,
    scanner: &dyn Scanner,
    stop: &AtomicBool,
    on_detection: &mut dyn FnMut(&DetectionRecordV1),
) -> Result<RunRecordV1, RunError> {
    let mut writer = store.begin_run(RunStart {
        task_id,
        device: device.to_string(),
        trigger,
    })?;
    let (task, collection) = match load(store, task_id, writer.run().collection_version) {
        Ok(found) => found,
        Err(e) => {
            let message = e.to_string();
            writer.finish(RunOutcome {
                counts: Vec::new(),
                error: Some(message),
            })?;
            return Err(RunError::TaskNotFound(task_id));
        }
    };
    let mut recorder = Recorder {
        writer: &mut writer,
        on_detection,
        error: None,
    };
    let report = scanner.scan(
        &ScanJob {
            task: &task,
            collection: &collection,
            stop,
            isolation_allow: &[],
        },
        &mut recorder,
    );
    if let Some(e) = recorder.error {
        // Dropping the writer marks the run interrupted.
        return Err(e);
    }
    if stop.load(Ordering::SeqCst) {
        return writer.interrupt();
    }
    writer.finish(RunOutcome {
        counts: report.counts,
        error: report.error,
    })
}

fn load(
    store: &Store,
    task: u64,
    version: u32,
) -> Result<(TaskRecordV1, CollectionRecordV1), TaskError> {
    let t = store.task(task)?.ok_or(TaskError::NotFound(task))?;
    Ok((t, store.collection(task, version)?))
}
