//! The managed agent's own state, in a redb file of its own: its identity
//! (console, device id, device token), the jobs the console handed it (so a
//! restart, or a console that cannot be reached, loses none), the results
//! waiting to be uploaded (the outbox), and the jobs already done (so a job
//! the console hands out again is not run twice).
//!
//! A finished job leaves the job list and enters the outbox in one
//! transaction; a result leaves the outbox only once the console
//! acknowledged it. Resending is safe: the console keys results by run key.

use crate::console::protocol::{Job, ResultUpload};
use crate::store::{Encoded, Json, Record};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const IDENTITY: TableDefinition<&str, Json<IdentityV1>> = TableDefinition::new("agent_identity");
const JOBS: TableDefinition<u64, Json<Job>> = TableDefinition::new("agent_jobs");
const OUTBOX: TableDefinition<&str, Json<ResultUpload>> = TableDefinition::new("agent_outbox");
/// Job id → when it was done (ms).
const DONE: TableDefinition<u64, i64> = TableDefinition::new("agent_done");

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
        txn.commit().map_err(|e| state.err(e))?;
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> QueueError {
        QueueError::Db { path: self.path.clone(), source: e.into() }
    }

    pub fn identity(&self) -> Result<Option<IdentityV1>, QueueError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = read.open_table(IDENTITY).map_err(|e| self.err(e))?;
        let got = table.get("self").map_err(|e| self.err(e))?;
        got.map(|v| v.value().decode().map_err(|e| self.err(e))).transpose()
    }

    pub fn set_identity(&self, identity: &IdentityV1) -> Result<(), QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(IDENTITY)
            .map_err(|e| self.err(e))?
            .insert("self", Encoded::encode(identity))
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
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
        txn.commit().map_err(|e| self.err(e))
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
}
