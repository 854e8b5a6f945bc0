//! The managed agent's own state, in a redb file of its own: its identity
//! (console, device id, device token), the jobs the console handed it (so a
//! restart, or a console that cannot be reached, loses none), the results
//! waiting to be uploaded (the outbox), and the jobs already done (so a job
//! the console hands out again is not run twice).
//!
//! A finished job leaves the job list and enters the outbox in one
//! transaction; a result leaves the outbox only once the console
//! acknowledged it (or answered that it has it already). Resending is safe:
//! the console keys results by run key. A result the console refuses stays
//! in the outbox with the refusal ([`DeliveryV1`]): nothing is dropped
//! without a person seeing it (`ioc-scan agent status`).
//!
//! A run in progress is kept too ([`AgentState::begin_run`]): each
//! detection whose response actions were taken is written before the run
//! goes on, so that a run killed after acting is reported `interrupted`
//! with those actions ([`AgentState::recover_interrupted`]) instead of
//! being forgotten, or run (and acted on) a second time.

use crate::console::protocol::{Job, ResultUpload};
use crate::store::{DetectionRecordV1, Encoded, Json, Record};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const IDENTITY: TableDefinition<&str, Json<IdentityV1>> = TableDefinition::new("agent_identity");
const JOBS: TableDefinition<u64, Json<Job>> = TableDefinition::new("agent_jobs");
const OUTBOX: TableDefinition<&str, Json<ResultUpload>> = TableDefinition::new("agent_outbox");
/// Job id → when it was done (ms).
const DONE: TableDefinition<u64, i64> = TableDefinition::new("agent_done");
/// Run key → how delivering that outbox entry went so far.
const DELIVERY: TableDefinition<&str, Json<DeliveryV1>> = TableDefinition::new("agent_outbox_delivery");
/// Job id → the run in progress: its detections that carry response actions.
const IN_FLIGHT: TableDefinition<u64, Json<ResultUpload>> = TableDefinition::new("agent_in_flight");
/// `last_error` → the agent's last error talking to the console.
const NOTES: TableDefinition<&str, Json<AgentErrorV1>> = TableDefinition::new("agent_notes");

/// Most action-carrying detections kept for one run in progress (the rest
/// are counted: `detections_left_out`).
const MAX_IN_FLIGHT_DETECTIONS: usize = 10_000;
/// Longest error text kept.
const MAX_ERROR_CHARS: usize = 2048;

/// The count of detections a result does not carry (over a limit).
pub const LEFT_OUT: &str = "detections_left_out";

/// Adds `n` to the count `name` (made if missing).
pub fn add_count(counts: &mut Vec<(String, u64)>, name: &str, n: u64) {
    match counts.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v = v.saturating_add(n),
        None => counts.push((name.to_string(), n)),
    }
}

impl Record for Job {
    const TYPE_NAME: &'static str = "ioc_scan::agent::JobV1";
}
impl Record for ResultUpload {
    const TYPE_NAME: &'static str = "ioc_scan::agent::ResultUploadV1";
}

/// Who this device is to its console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityV1 {
    pub console: String,
    pub device_id: u64,
    pub device_name: String,
    /// The device token (a secret: the file is created readable by its owner only).
    pub token: String,
}
impl Record for IdentityV1 {
    const TYPE_NAME: &'static str = "ioc_scan::agent::IdentityV1";
}

/// How delivering one queued result went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryV1 {
    pub attempts: u32,
    /// When it was last tried (ms).
    pub last_attempt_at: i64,
    /// The console's HTTP status, if it answered.
    pub last_status: Option<u16>,
    pub last_error: String,
}
impl Record for DeliveryV1 {
    const TYPE_NAME: &'static str = "ioc_scan::agent::DeliveryV1";
}

/// The agent's last error talking to the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentErrorV1 {
    pub at: i64,
    pub message: String,
}
impl Record for AgentErrorV1 {
    const TYPE_NAME: &'static str = "ioc_scan::agent::AgentErrorV1";
}

/// One result waiting in the outbox, as `ioc-scan agent status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedResult {
    pub run_key: String,
    pub job_id: u64,
    pub task_id: u64,
    pub status: crate::store::RunStatus,
    pub ended_at: i64,
    pub detections: usize,
    pub delivery: Option<DeliveryV1>,
}

/// What `ioc-scan agent status` shows: who the device is (never its
/// token), the jobs waiting, the outbox with each entry's refusal, the last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub console: Option<String>,
    pub device_id: Option<u64>,
    pub device_name: Option<String>,
    pub jobs_waiting: Vec<u64>,
    pub runs_in_progress: Vec<u64>,
    pub outbox: Vec<QueuedResult>,
    pub last_error: Option<AgentErrorV1>,
    /// When this was taken (ms).
    pub taken_at: i64,
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_ERROR_CHARS).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("agent state {path}: {source}")]
    Db { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
}

/// The agent's state file.
pub struct AgentState {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState").field("path", &self.path).finish()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl AgentState {
    /// Opens (or creates, readable by its owner only) the state file.
    pub fn open(path: &Path) -> Result<AgentState, QueueError> {
        let open_err =
            |e: Box<dyn std::error::Error + Send + Sync>| QueueError::Open { path: path.to_path_buf(), source: e };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        }
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| open_err(e.into()))?;
        }
        let db = redb::Database::create(path).map_err(|e| open_err(e.into()))?;
        let state = AgentState { db, path: path.to_path_buf() };
        let txn = state.db.begin_write().map_err(|e| state.err(e))?;
        txn.open_table(IDENTITY).map_err(|e| state.err(e))?;
        txn.open_table(JOBS).map_err(|e| state.err(e))?;
        txn.open_table(OUTBOX).map_err(|e| state.err(e))?;
        txn.open_table(DONE).map_err(|e| state.err(e))?;
        txn.open_table(DELIVERY).map_err(|e| state.err(e))?;
        txn.open_table(IN_FLIGHT).map_err(|e| state.err(e))?;
        txn.open_table(NOTES).map_err(|e| state.err(e))?;
        txn.commit().map_err(|e| state.err(e))?;
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> QueueError {
        QueueError::Db { path: self.path.clone(), source: e.into() }
    }

    /// The record under `key` of a table keyed by name.
    fn get_named<T: Record>(&self, table: TableDefinition<&str, Json<T>>, key: &str) -> Result<Option<T>, QueueError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = read.open_table(table).map_err(|e| self.err(e))?;
        let got = table.get(key).map_err(|e| self.err(e))?;
        got.map(|v| v.value().decode().map_err(|e| self.err(e))).transpose()
    }

    /// Writes (durably) the record under `key` of a table keyed by name.
    fn put_named<T: Record>(&self, table: TableDefinition<&str, Json<T>>, key: &str, record: &T) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(table)
            .map_err(|e| self.err(e))?
            .insert(key, Encoded::encode(record))
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    pub fn identity(&self) -> Result<Option<IdentityV1>, QueueError> {
        self.get_named(IDENTITY, "self")
    }

    pub fn set_identity(&self, identity: &IdentityV1) -> Result<(), QueueError> {
        self.put_named(IDENTITY, "self", identity)
    }

    /// Keeps the jobs not seen before; returns how many were new.
    pub fn add_jobs(&self, jobs: &[Job]) -> Result<usize, QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut added = 0;
        {
            let mut table = txn.open_table(JOBS).map_err(|e| self.err(e))?;
            let done = txn.open_table(DONE).map_err(|e| self.err(e))?;
            for job in jobs {
                let known = table.get(job.id).map_err(|e| self.err(e))?.is_some()
                    || done.get(job.id).map_err(|e| self.err(e))?.is_some();
                if !known {
                    table.insert(job.id, Encoded::encode(job)).map_err(|e| self.err(e))?;
                    added += 1;
                }
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(added)
    }

    /// Forgets waiting jobs the console no longer lists (cancelled).
    pub fn retain_jobs(&self, listed: &[u64]) -> Result<usize, QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut dropped = 0;
        txn.open_table(JOBS)
            .map_err(|e| self.err(e))?
            .retain(|id, _| {
                let keep = listed.contains(&id);
                dropped += usize::from(!keep);
                keep
            })
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(dropped)
    }

    /// Waiting jobs, the earliest due first.
    pub fn jobs(&self) -> Result<Vec<Job>, QueueError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = read.open_table(JOBS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = entry.map_err(|e| self.err(e))?;
            out.push(v.value().decode().map_err(|e| self.err(e))?);
        }
        out.sort_by_key(|j: &Job| (j.not_before.unwrap_or(i64::MIN), j.id));
        Ok(out)
    }

    /// Records a finished job: off the job list, into the outbox, in one transaction.
    pub fn finish_job(&self, result: &ResultUpload) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(JOBS).map_err(|e| self.err(e))?.remove(result.job_id).map_err(|e| self.err(e))?;
        txn.open_table(IN_FLIGHT).map_err(|e| self.err(e))?.remove(result.job_id).map_err(|e| self.err(e))?;
        txn.open_table(DONE).map_err(|e| self.err(e))?.insert(result.job_id, now_ms()).map_err(|e| self.err(e))?;
        txn.open_table(OUTBOX)
            .map_err(|e| self.err(e))?
            .insert(result.run_key.as_str(), Encoded::encode(result))
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// Results waiting to be uploaded, oldest run first.
    pub fn outbox(&self) -> Result<Vec<ResultUpload>, QueueError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = read.open_table(OUTBOX).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = entry.map_err(|e| self.err(e))?;
            out.push(v.value().decode().map_err(|e| self.err(e))?);
        }
        out.sort_by_key(|r: &ResultUpload| (r.ended_at, r.job_id));
        Ok(out)
    }

    /// The console has the result: it leaves the outbox.
    pub fn acknowledged(&self, run_key: &str) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(OUTBOX).map_err(|e| self.err(e))?.remove(run_key).map_err(|e| self.err(e))?;
        txn.open_table(DELIVERY).map_err(|e| self.err(e))?.remove(run_key).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// A queued result replaced (made smaller to fit the console's limit); same run key.
    pub fn replace_queued(&self, result: &ResultUpload) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(OUTBOX)
            .map_err(|e| self.err(e))?
            .insert(result.run_key.as_str(), Encoded::encode(result))
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// A try to deliver `run_key` failed: it stays queued, with why.
    pub fn delivery_failed(&self, run_key: &str, status: Option<u16>, error: &str) -> Result<DeliveryV1, QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let delivery = {
            let mut table = txn.open_table(DELIVERY).map_err(|e| self.err(e))?;
            let before: Option<DeliveryV1> = match table.get(run_key).map_err(|e| self.err(e))? {
                Some(v) => Some(v.value().decode().map_err(|e| self.err(e))?),
                None => None,
            };
            let delivery = DeliveryV1 {
                attempts: before.map_or(0, |d| d.attempts).saturating_add(1),
                last_attempt_at: now_ms(),
                last_status: status,
                last_error: clip(error),
            };
            table.insert(run_key, Encoded::encode(&delivery)).map_err(|e| self.err(e))?;
            delivery
        };
        txn.commit().map_err(|e| self.err(e))?;
        Ok(delivery)
    }

    /// How delivering `run_key` went so far, if it was tried and failed.
    pub fn delivery(&self, run_key: &str) -> Result<Option<DeliveryV1>, QueueError> {
        self.get_named(DELIVERY, run_key)
    }

    pub fn set_last_error(&self, message: &str) -> Result<(), QueueError> {
        self.put_named(NOTES, "last_error", &AgentErrorV1 { at: now_ms(), message: clip(message) })
    }

    pub fn last_error(&self) -> Result<Option<AgentErrorV1>, QueueError> {
        self.get_named(NOTES, "last_error")
    }

    /// A run starts: it is kept (status `running`, no detection yet) until it
    /// finishes, so that actions it takes survive a crash.
    pub fn begin_run(&self, run: &ResultUpload) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(IN_FLIGHT)
            .map_err(|e| self.err(e))?
            .insert(run.job_id, Encoded::encode(run))
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// A detection of the run of `job_id` whose response actions were just
    /// taken: written (durably) before the run goes on.
    pub fn record_action(&self, job_id: u64, detection: &DetectionRecordV1) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(IN_FLIGHT).map_err(|e| self.err(e))?;
            let run: Option<ResultUpload> = match table.get(job_id).map_err(|e| self.err(e))? {
                Some(v) => Some(v.value().decode().map_err(|e| self.err(e))?),
                None => None,
            };
            if let Some(mut run) = run {
                if run.detections.len() < MAX_IN_FLIGHT_DETECTIONS {
                    run.detections.push(detection.clone());
                } else {
                    add_count(&mut run.counts, LEFT_OUT, 1);
                }
                run.ended_at = now_ms().max(run.started_at);
                table.insert(job_id, Encoded::encode(&run)).map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// A run stopped before it took any action: forgotten (its job runs again).
    pub fn abandon_run(&self, job_id: u64) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(IN_FLIGHT).map_err(|e| self.err(e))?.remove(job_id).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// The run of `job_id` stopped (stop asked, or the agent died): if it
    /// took response actions, it is finished as `interrupted` with them (its
    /// job will not run again: the actions are done); else it is forgotten
    /// and its job runs again. Returns the interrupted result, if any.
    pub fn interrupt_run(&self, job_id: u64) -> Result<Option<ResultUpload>, QueueError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let run: Option<ResultUpload> = {
            let table = read.open_table(IN_FLIGHT).map_err(|e| self.err(e))?;
            let got = table.get(job_id).map_err(|e| self.err(e))?;
            got.map(|v| v.value().decode().map_err(|e| self.err(e))).transpose()?
        };
        drop(read);
        match run {
            Some(mut run) if !run.detections.is_empty() => {
                run.status = crate::store::RunStatus::Interrupted;
                run.error = Some("the agent stopped during the run, after it took response actions".into());
                self.finish_job(&run)?;
                Ok(Some(run))
            }
            _ => {
                self.abandon_run(job_id)?;
                Ok(None)
            }
        }
    }

    /// After a restart: every run left in progress, through [`Self::interrupt_run`].
    pub fn recover_interrupted(&self) -> Result<Vec<ResultUpload>, QueueError> {
        let ids: Vec<u64> = {
            let read = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = read.open_table(IN_FLIGHT).map_err(|e| self.err(e))?;
            let mut ids = Vec::new();
            for entry in table.iter().map_err(|e| self.err(e))? {
                ids.push(entry.map_err(|e| self.err(e))?.0.value());
            }
            ids
        };
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.interrupt_run(id)?);
        }
        Ok(out)
    }

    /// What `ioc-scan agent status` shows.
    pub fn status(&self) -> Result<AgentStatus, QueueError> {
        let identity = self.identity()?;
        let jobs_waiting = self.jobs()?.iter().map(|j| j.id).collect();
        let runs_in_progress = {
            let read = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = read.open_table(IN_FLIGHT).map_err(|e| self.err(e))?;
            let mut ids = Vec::new();
            for entry in table.iter().map_err(|e| self.err(e))? {
                ids.push(entry.map_err(|e| self.err(e))?.0.value());
            }
            ids
        };
        let mut outbox = Vec::new();
        for r in self.outbox()? {
            outbox.push(QueuedResult {
                delivery: self.delivery(&r.run_key)?,
                run_key: r.run_key,
                job_id: r.job_id,
                task_id: r.task_id,
                status: r.status,
                ended_at: r.ended_at,
                detections: r.detections.len(),
            });
        }
        Ok(AgentStatus {
            console: identity.as_ref().map(|i| i.console.clone()),
            device_id: identity.as_ref().map(|i| i.device_id),
            device_name: identity.map(|i| i.device_name),
            jobs_waiting,
            runs_in_progress,
            outbox,
            last_error: self.last_error()?,
            taken_at: now_ms(),
        })
    }

    /// Forgets done jobs older than `age` (the console will not hand them out again).
    pub fn prune_done(&self, age: chrono::Duration) -> Result<(), QueueError> {
        let before = now_ms() - age.num_milliseconds();
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(DONE).map_err(|e| self.err(e))?.retain(|_, at| at >= before).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        CollectionRecordV1, ResponseSettingsV1, RunStatus, RunTrigger, Schedule, ScopeV1, TaskRecordV1,
    };

    fn job(id: u64) -> Job {
        Job {
            id,
            trigger: RunTrigger::Manual,
            not_before: None,
            task: TaskRecordV1 {
                id: 1,
                name: "t".into(),
                description: String::new(),
                collection_version: 1,
                scope: ScopeV1::default(),
                response: ResponseSettingsV1::default(),
                schedule: Schedule::Manual,
                monitor_seconds: None,
                created_at: 0,
                updated_at: 0,
            },
            collection: CollectionRecordV1 {
                task_id: 1,
                version: 1,
                files: Vec::new(),
                iocs: Vec::new(),
                ioc_paths: Vec::new(),
                created_at: 0,
            },
        }
    }

    fn result(job: u64) -> ResultUpload {
        ResultUpload {
            run_key: format!("d1-j{job}"),
            job_id: job,
            task_id: 1,
            collection_version: 1,
            trigger: RunTrigger::Manual,
            started_at: 1,
            ended_at: 2,
            status: RunStatus::NoIocDetected,
            counts: Vec::new(),
            error: None,
            detections: Vec::new(),
        }
    }

    #[test]
    fn a_finished_job_waits_in_the_outbox_across_reopen_and_is_not_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let state = AgentState::open(&path).unwrap();
            assert_eq!(state.add_jobs(&[job(1), job(2)]).unwrap(), 2);
            assert_eq!(state.add_jobs(&[job(1)]).unwrap(), 0);
            state.finish_job(&result(1)).unwrap();
        }
        let state = AgentState::open(&path).unwrap();
        assert_eq!(state.jobs().unwrap().iter().map(|j| j.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(state.outbox().unwrap(), vec![result(1)]);
        // The console hands job 1 out again before it got the result: not run twice.
        assert_eq!(state.add_jobs(&[job(1), job(2)]).unwrap(), 0);
        state.acknowledged("d1-j1").unwrap();
        assert!(state.outbox().unwrap().is_empty());
        assert_eq!(state.retain_jobs(&[]).unwrap(), 1);
        assert!(state.jobs().unwrap().is_empty());
    }

    #[test]
    fn a_run_cut_short_after_an_action_is_finished_as_interrupted_and_one_without_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let mut acted = result(1);
        acted.status = crate::store::RunStatus::Running;
        {
            let state = AgentState::open(&path).unwrap();
            state.add_jobs(&[job(1), job(2)]).unwrap();
            state.begin_run(&acted).unwrap();
            let d = DetectionRecordV1 {
                ioc_id: "i".into(),
                ioc_name: "i".into(),
                ioc_description: None,
                matched_items: Vec::new(),
                object: serde_json::Value::Null,
                responses: vec![crate::store::ResponseOutcomeV1 {
                    action: "quarantine".into(),
                    outcome: "done".into(),
                    detail: None,
                }],
            };
            state.record_action(1, &d).unwrap();
            let mut quiet = result(2);
            quiet.status = crate::store::RunStatus::Running;
            state.begin_run(&quiet).unwrap();
            // The process dies here.
        }
        let state = AgentState::open(&path).unwrap();
        let recovered = state.recover_interrupted().unwrap();
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].status, crate::store::RunStatus::Interrupted);
        assert_eq!(recovered[0].detections.len(), 1);
        assert_eq!(state.outbox().unwrap().len(), 1);
        // Job 1 acted: done, not run again; job 2 did not: it runs again.
        assert_eq!(state.jobs().unwrap().iter().map(|j| j.id).collect::<Vec<_>>(), vec![2]);
        assert!(state.status().unwrap().runs_in_progress.is_empty());
        // A refusal keeps it queued, with why.
        let d = state.delivery_failed("d1-j1", Some(404), "no job").unwrap();
        assert_eq!(d.attempts, 1);
        assert_eq!(state.status().unwrap().outbox[0].delivery.as_ref().unwrap().last_status, Some(404));
        state.acknowledged("d1-j1").unwrap();
        assert!(state.delivery("d1-j1").unwrap().is_none());
    }
}
