//! Storing the results agents upload, each exactly once: a result is keyed
//! by (device, run key), and the key, the run, its detections and the end of
//! its job are written in one transaction. A resent result (the agent never
//! saw the answer) finds its key and is acknowledged again.
//!
//! Uploads are written by one thread in batches (group commit): every
//! result waiting when a transaction starts goes into it, and each upload is
//! answered only once that transaction is durable.

use super::error::{ConsoleError, Result};
use super::protocol::{ResultAck, ResultUpload};
use super::tables::{JobRecordV1, JobStatus, ResultKeyV1, JOBS, OPEN_JOBS, RESULT_KEYS};
use crate::store::tables::{COLLECTIONS, RUN_DETECTIONS, TASKS};
use crate::store::{next_id, Encoded, RunRecordV1, RunStatus, Store, TaskRecordV1};
use redb::ReadableTable;
use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc};

/// Most detections one uploaded run may carry.
pub const MAX_DETECTIONS: usize = 100_000;
/// Longest run key.
pub const MAX_RUN_KEY: usize = 128;
/// Most uploads in one transaction.
const MAX_BATCH: usize = 512;

/// A result as received from a device.
#[derive(Debug, Clone)]
pub struct Received {
    pub device_id: u64,
    pub device_name: String,
    pub upload: ResultUpload,
}

fn check(r: &Received) -> Result<()> {
    let u = &r.upload;
    if u.run_key.is_empty() || u.run_key.len() > MAX_RUN_KEY || u.run_key.chars().any(char::is_control) {
        return Err(ConsoleError::Invalid(format!("run_key must be 1 to {MAX_RUN_KEY} printable characters")));
    }
    if u.detections.len() > MAX_DETECTIONS {
        return Err(ConsoleError::TooLarge(format!("a run may carry at most {MAX_DETECTIONS} detections")));
    }
    if u.counts.len() > 256 {
        return Err(ConsoleError::Invalid("at most 256 counts per run".into()));
    }
    if u.ended_at < u.started_at {
        return Err(ConsoleError::Invalid("ended_at is before started_at".into()));
    }
    Ok(())
}

/// The tables a batch writes, opened once per transaction.
struct Tables<'t> {
    keys: redb::Table<'t, (u64, &'static str), crate::store::Json<ResultKeyV1>>,
    jobs: redb::Table<'t, u64, crate::store::Json<JobRecordV1>>,
    open_jobs: redb::Table<'t, (u64, u64), ()>,
    detections: redb::Table<'t, (u64, u32), crate::store::Json<crate::store::DetectionRecordV1>>,
    /// Task id → its name, or `None` if deleted or without that collection version.
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
            keys: txn.open_table(RESULT_KEYS)?,
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
    check(r)?;
    let u = &r.upload;
    let key = (r.device_id, u.run_key.as_str());
    if let Some(seen) = t.keys.get(key)? {
        let seen: ResultKeyV1 = seen.value().decode()?;
        return Ok(ResultAck { run_id: seen.run_id, duplicate: true, discarded: seen.discarded });
    }
    let mut job: JobRecordV1 = match t.jobs.get(u.job_id)? {
        Some(j) => j.value().decode()?,
        None => return Err(ConsoleError::NotFound(format!("no job with id {}", u.job_id))),
    };
    if job.device_id != r.device_id {
        return Err(ConsoleError::Forbidden(format!("job {} is not this device's", job.id)));
    }
    let task_name = task_name(txn, t, job.task_id, job.collection_version)?;
    let discarded = if job.status == JobStatus::Cancelled {
        Some("the job was cancelled".to_string())
    } else if task_name.is_none() {
        Some(format!("task {} was deleted", job.task_id))
    } else if u.started_at < oldest_kept {
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
            device: r.device_name.clone(),
            trigger: job.trigger,
            started_at: u.started_at,
            ended_at: Some(u.ended_at),
            status,
            detections: u.detections.len() as u64,
            iocs_detected: iocs.len() as u64,
            counts: u.counts.clone(),
            error: u.error.as_ref().map(|e| e.chars().take(4096).collect()),
        };
        crate::store::runs::insert_run(txn, &run)?;
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
    let record = ResultKeyV1 { run_id, received_at: now, discarded: discarded.clone() };
    t.keys.insert(key, Encoded::encode(&record))?;
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
