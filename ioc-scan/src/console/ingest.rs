//! Storing the results agents upload, each exactly once: a job has at most
//! one result, keyed by (device, job) in the store, and the key, the run,
//! its detections and the end of its job are written in one transaction. A
//! resent result (the agent never saw the answer), or another result for a
//! job already reported under any run key, finds the key and is answered
//! `duplicate` with the first run.
//!
//! A device reports only jobs handed to it, while it is enrolled; what it
//! sends is bounded before any work ([`check_upload`], [`cut_text`]), and its
//! clock is not trusted: times out of bounds are replaced by the console's
//! ([`bounded_times`]), so that ordering and retention follow the console's
//! clock.
//!
//! Uploads are written by one thread in batches (group commit): every
//! result waiting when a transaction starts goes into it, and each upload is
//! answered only once that transaction is durable.

use super::error::{ConsoleError, Result};
use super::protocol::{ResultAck, ResultUpload};
use super::tables::{
    DeviceRecordV1, JobRecordV1, JobResultV1, JobStatus, ResultKeyV1, DEVICES, JOBS, JOB_RESULTS, OPEN_JOBS,
    RESULT_KEYS, RUNS_BY_DEVICE_ID,
};
use crate::store::tables::{COLLECTIONS, RUN_DETECTIONS, TASKS};
use crate::store::{next_id, DeviceTimesV1, Encoded, RunRecordV1, RunStatus, Store, TaskRecordV1};
use redb::ReadableTable;
use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc};

/// Most detections one uploaded run may carry.
pub const MAX_DETECTIONS: usize = 100_000;
/// Longest run key.
pub const MAX_RUN_KEY: usize = 128;
/// Most named counts of a run; longest count name (bytes).
pub const MAX_COUNTS: usize = 256;
pub const MAX_COUNT_NAME: usize = 256;
/// Longest identifier in a detection (IOC id, matched item id, response
/// action and outcome), in bytes.
pub const MAX_ID: usize = 4096;
/// Most matched items, and most response outcomes, of one detection.
pub const MAX_MATCHED_ITEMS: usize = 4096;
pub const MAX_RESPONSES: usize = 64;
/// Largest matched object of one detection (its JSON), in bytes.
pub const MAX_OBJECT: usize = 1 << 20;
/// Free text (IOC name and description, response detail) is cut to this many bytes.
pub const MAX_TEXT: usize = 64 << 10;
/// A run's error message is cut to this many bytes.
pub const MAX_ERROR: usize = 4096;
/// How far a device's clock may be trusted: a time later than the
/// receipt plus this, or earlier than the job's creation minus this, is
/// replaced by that bound (receipt, creation).
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// Most uploads in one transaction.
const MAX_BATCH: usize = 512;

/// A result as received from a device (the device its token names).
#[derive(Debug, Clone)]
pub struct Received {
    pub device_id: u64,
    pub upload: ResultUpload,
}

/// Refuses an upload whose shape is out of bounds (too many detections,
/// items, counts; identifiers or objects too large), before any work is done
/// on it. Free text is not refused but cut ([`cut_text`]).
pub fn check_upload(u: &ResultUpload) -> Result<()> {
    if u.run_key.is_empty() || u.run_key.len() > MAX_RUN_KEY || u.run_key.chars().any(char::is_control) {
        return Err(ConsoleError::Invalid(format!("run_key must be 1 to {MAX_RUN_KEY} printable characters")));
    }
    if u.detections.len() > MAX_DETECTIONS {
        return Err(ConsoleError::TooLarge(format!("a run may carry at most {MAX_DETECTIONS} detections")));
    }
    if u.counts.len() > MAX_COUNTS || u.counts.iter().any(|(name, _)| name.len() > MAX_COUNT_NAME) {
        return Err(ConsoleError::Invalid(format!(
            "at most {MAX_COUNTS} counts per run, names of at most {MAX_COUNT_NAME} bytes"
        )));
    }
    for (i, d) in u.detections.iter().enumerate() {
        let too_large = |what: &str| ConsoleError::TooLarge(format!("detection {i}: {what}"));
        if d.ioc_id.len() > MAX_ID {
            return Err(too_large(&format!("ioc_id is longer than {MAX_ID} bytes")));
        }
        if d.matched_items.len() > MAX_MATCHED_ITEMS || d.matched_items.iter().any(|m| m.len() > MAX_ID) {
            return Err(too_large(&format!("at most {MAX_MATCHED_ITEMS} matched_items of at most {MAX_ID} bytes")));
        }
        if d.responses.len() > MAX_RESPONSES
            || d.responses.iter().any(|r| r.action.len() > MAX_ID || r.outcome.len() > MAX_ID)
        {
            return Err(too_large(&format!(
                "at most {MAX_RESPONSES} responses, action and outcome of at most {MAX_ID} bytes"
            )));
        }
        if !fits_json(&d.object, MAX_OBJECT) {
            return Err(too_large(&format!("object is larger than {MAX_OBJECT} bytes")));
        }
    }
    Ok(())
}

/// Whether `value` serializes to at most `max` bytes (counted, stopping
/// once over, never built).
fn fits_json(value: &serde_json::Value, max: usize) -> bool {
    struct Counter {
        n: usize,
        max: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.max {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Counter { n: 0, max }, value).is_ok()
}

/// Cuts the free text of an upload to its bounds (on a character boundary).
pub fn cut_text(u: &mut ResultUpload) {
    fn cut(s: &mut String, max: usize) {
        if s.len() > max {
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
    }
    if let Some(e) = &mut u.error {
        cut(e, MAX_ERROR);
    }
    for d in &mut u.detections {
        cut(&mut d.ioc_name, MAX_TEXT);
        if let Some(text) = &mut d.ioc_description {
            cut(text, MAX_TEXT);
        }
        for r in &mut d.responses {
            if let Some(text) = &mut r.detail {
                cut(text, MAX_TEXT);
            }
        }
    }
}

/// The start and end stored for a run reported at `received` for a job made
/// at `job_created` (both by the console's clock): the device's own times
/// when within [`CLOCK_SKEW_MS`] of those bounds, else the bound; the end is
/// never before the start. Also returns the device's times when they were
/// replaced.
pub fn bounded_times(
    started_at: i64,
    ended_at: i64,
    job_created: i64,
    received: i64,
) -> (i64, i64, Option<DeviceTimesV1>) {
    let bound = |t: i64| {
        if t > received.saturating_add(CLOCK_SKEW_MS) {
            received
        } else if t < job_created.saturating_sub(CLOCK_SKEW_MS) {
            job_created.min(received)
        } else {
            t
        }
    };
    let started = bound(started_at);
    let ended = bound(ended_at).max(started);
    let replaced = (started, ended) != (started_at, ended_at);
    (started, ended, replaced.then_some(DeviceTimesV1 { started_at, ended_at }))
}

/// The tables a batch writes, opened once per transaction.
struct Tables<'t> {
    devices: redb::Table<'t, u64, crate::store::Json<DeviceRecordV1>>,
    old_keys: redb::Table<'t, (u64, &'static str), crate::store::Json<ResultKeyV1>>,
    job_results: redb::Table<'t, (u64, u64), crate::store::Json<JobResultV1>>,
    runs_by_device_id: redb::Table<'t, (u64, i64, u64), ()>,
    jobs: redb::Table<'t, u64, crate::store::Json<JobRecordV1>>,
    open_jobs: redb::Table<'t, (u64, u64), ()>,
    detections: redb::Table<'t, (u64, u32), crate::store::Json<crate::store::DetectionRecordV1>>,
    /// Task id → its name, or `None` if deleted or without that collection
    /// version (at most one entry per job of the batch).
    tasks: HashMap<(u64, u32), Option<String>>,
}

/// Stores a batch of results in one transaction; one answer per result, in
/// order. A result that is refused (unknown job, another device's job) does
/// not stop the others; a database failure fails them all.
pub fn store_batch(store: &Store, batch: &[&Received], oldest_kept: i64) -> Result<Vec<Result<ResultAck>>> {
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let mut answers = Vec::with_capacity(batch.len());
    {
        let mut t = Tables {
            devices: txn.open_table(DEVICES)?,
            old_keys: txn.open_table(RESULT_KEYS)?,
            job_results: txn.open_table(JOB_RESULTS)?,
            runs_by_device_id: txn.open_table(RUNS_BY_DEVICE_ID)?,
            jobs: txn.open_table(JOBS)?,
            open_jobs: txn.open_table(OPEN_JOBS)?,
            detections: txn.open_table(RUN_DETECTIONS)?,
            tasks: HashMap::new(),
        };
        for r in batch {
            answers.push(store_one(&txn, &mut t, r, now, oldest_kept));
        }
    }
    if let Some(pos) = answers.iter().position(|a| matches!(a, Err(ConsoleError::Db(_)))) {
        // Leave nothing half-written: the transaction is dropped (aborted).
        return Err(answers.swap_remove(pos).err().unwrap_or_else(|| ConsoleError::Internal("write failed".into())));
    }
    txn.commit()?;
    Ok(answers)
}

fn task_name(txn: &redb::WriteTransaction, t: &mut Tables<'_>, task: u64, version: u32) -> Result<Option<String>> {
    if let Some(name) = t.tasks.get(&(task, version)) {
        return Ok(name.clone());
    }
    let record: Option<TaskRecordV1> = crate::store::tasks::get_task(&txn.open_table(TASKS)?, task).map_err(task_db)?;
    let has_collection = txn.open_table(COLLECTIONS)?.get((task, version))?.is_some();
    let name = record.filter(|_| has_collection).map(|r| r.name);
    t.tasks.insert((task, version), name.clone());
    Ok(name)
}

fn store_one(
    txn: &redb::WriteTransaction,
    t: &mut Tables<'_>,
    r: &Received,
    now: i64,
    oldest_kept: i64,
) -> Result<ResultAck> {
    check_upload(&r.upload)?;
    let u = &r.upload;
    // Checked here, in the writing transaction: a device removed meanwhile
    // (its token let the request in just before) stores nothing.
    let device: DeviceRecordV1 = match t.devices.get(r.device_id)? {
        Some(d) => d.value().decode()?,
        None => return Err(ConsoleError::Unauthorized),
    };
    // A result stored by an older console under its run key.
    if let Some(seen) = t.old_keys.get((r.device_id, u.run_key.as_str()))? {
        let seen: ResultKeyV1 = seen.value().decode()?;
        return Ok(ResultAck { run_id: seen.run_id, duplicate: true, discarded: seen.discarded });
    }
    // Only a job handed to this device. Another device's job, a job not yet
    // handed out and one that does not exist get the same answer: a device
    // learns nothing of jobs that are not its own.
    let job: Option<JobRecordV1> = t.jobs.get(u.job_id)?.map(|j| j.value().decode()).transpose()?;
    let Some(mut job) = job.filter(|j| j.device_id == r.device_id && j.dispatched_at.is_some()) else {
        return Err(ConsoleError::NotFound(format!("no job {} was handed to this device", u.job_id)));
    };
    let key = (r.device_id, job.id);
    if let Some(seen) = t.job_results.get(key)? {
        let seen: JobResultV1 = seen.value().decode()?;
        return Ok(ResultAck { run_id: seen.run_id, duplicate: true, discarded: seen.discarded });
    }
    if job.status == JobStatus::Done {
        // Reported to an older console, under another run key.
        return Ok(ResultAck { run_id: job.run_id, duplicate: true, discarded: None });
    }
    let (started_at, ended_at, device_times) = bounded_times(u.started_at, u.ended_at, job.created_at, now);
    let task_name = task_name(txn, t, job.task_id, job.collection_version)?;
    let discarded = if job.status == JobStatus::Cancelled {
        Some("the job was cancelled".to_string())
    } else if task_name.is_none() {
        Some(format!("task {} was deleted", job.task_id))
    } else if started_at < oldest_kept {
        Some("the run is older than the retention period".to_string())
    } else {
        None
    };
    let mut run_id = None;
    if let (None, Some(task_name)) = (&discarded, task_name) {
        let id = next_id(txn, "run")?;
        let iocs: HashSet<&str> = u.detections.iter().map(|d| d.ioc_id.as_str()).collect();
        let status = match u.status {
            // Stopped after it acted: its detections (with the actions) say so.
            RunStatus::Interrupted => RunStatus::Interrupted,
            _ if !u.detections.is_empty() => RunStatus::IocDetected,
            RunStatus::Running | RunStatus::IocDetected => RunStatus::Interrupted,
            other => other,
        };
        let run = RunRecordV1 {
            id,
            task_id: job.task_id,
            task_name,
            collection_version: job.collection_version,
            device: device.name.clone(),
            trigger: job.trigger,
            started_at,
            ended_at: Some(ended_at),
            status,
            detections: u.detections.len() as u64,
            iocs_detected: iocs.len() as u64,
            counts: u.counts.clone(),
            error: u.error.as_ref().map(|e| e.chars().take(MAX_ERROR).collect()),
            device_id: Some(device.id),
            received_at: Some(now),
            device_times,
        };
        crate::store::runs::insert_run(txn, &run)?;
        t.runs_by_device_id.insert((device.id, started_at, id), ())?;
        for (seq, det) in u.detections.iter().enumerate() {
            t.detections.insert((id, seq as u32), Encoded::encode(det))?;
        }
        run_id = Some(id);
    }
    // The job is done (a job already done stays as it was).
    t.open_jobs.remove((r.device_id, job.id))?;
    if matches!(job.status, JobStatus::Pending | JobStatus::Dispatched) {
        job.status = JobStatus::Done;
        job.done_at = Some(now);
        job.run_id = run_id;
        t.jobs.insert(job.id, Encoded::encode(&job))?;
    }
    let record = JobResultV1 { run_id, run_key: u.run_key.clone(), received_at: now, discarded: discarded.clone() };
    t.job_results.insert(key, Encoded::encode(&record))?;
    Ok(ResultAck { run_id, duplicate: false, discarded })
}

fn task_db(e: crate::store::TaskError) -> ConsoleError {
    ConsoleError::from(e)
}

struct Pending {
    received: Received,
    reply: tokio::sync::oneshot::Sender<Result<ResultAck>>,
}

/// The writer thread of uploads.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Pending>,
}

impl Ingest {
    /// Starts the writer; `oldest_kept` gives the start time (ms) before which
    /// runs are not stored (the retention period).
    pub fn start(store: Arc<Store>, oldest_kept: impl Fn() -> i64 + Send + 'static) -> std::io::Result<Ingest> {
        let (tx, rx) = mpsc::channel::<Pending>();
        std::thread::Builder::new().name("console-ingest".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let received: Vec<&Received> = batch.iter().map(|p| &p.received).collect();
                let outcome = store_batch(&store, &received, oldest_kept());
                match outcome {
                    Ok(answers) => {
                        for (p, a) in batch.into_iter().zip(answers) {
                            let _ = p.reply.send(a);
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for p in batch {
                            let _ = p.reply.send(Err(ConsoleError::Internal(message.clone())));
                        }
                    }
                }
            }
        })?;
        Ok(Ingest { tx })
    }

    /// Stores one result (with whatever else is waiting); answers once it is durable.
    pub async fn submit(&self, received: Received) -> Result<ResultAck> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Pending { received, reply })
            .map_err(|_| ConsoleError::Internal("the result writer has stopped".into()))?;
        answer.await.map_err(|_| ConsoleError::Internal("the result writer has stopped".into()))?
    }
}
