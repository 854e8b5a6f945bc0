//! Retention: runs that started before `now - retention` are deleted with
//! their detections and index entries, a bounded number per transaction, for
//! at most a time budget per pass (the next pass goes on where this stopped).

use super::error::{DbError, PruneError};
use super::records::{DeviceTimesV1, RunRecordV1, RunStatus};
use super::tables::{RUNNERS, RUNS, RUNS_BY_DEVICE, RUNS_BY_START, RUNS_BY_TASK, RUN_DETECTIONS};
use super::{clock, tasks, Store};
use redb::{ReadableTable, WriteTransaction};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// How much one pruning pass may do.
#[derive(Debug, Clone, Copy)]
pub struct PruneBudget {
    /// Runs deleted per write transaction.
    pub runs_per_transaction: usize,
    /// The pass stops starting new transactions after this long.
    pub time: Duration,
}

impl Default for PruneBudget {
    fn default() -> Self {
        PruneBudget {
            runs_per_transaction: 1000,
            time: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub runs_deleted: u64,
    pub detections_deleted: u64,
    /// Older runs remain (budget spent): run another pass later.
    pub more: bool,
}

impl Store {
    /// Deletes the runs that started more than `retention` before the
    /// store's clock says now. Runs still in progress are kept.
    pub fn prune(
        &self,
        retention: chrono::Duration,
        budget: PruneBudget,
    ) -> Result<PruneReport, PruneError> {
        let cutoff = clock::to_millis(self.clock().now() - retention);
        let start = Instant::now();
        let mut report = PruneReport::default();
        // Where the next transaction resumes: past runs kept because running.
        let mut from = (i64::MIN, 0u64);
        loop {
            let txn = self.write()?;
            let (batch, next, exhausted) = {
                let index = txn.open_table(RUNS_BY_START)?;
                let mut batch = Vec::new();
                let mut next = from;
                let mut exhausted = true;
                for entry in index.range(from..(cutoff, 0))? {
                    if batch.len() >= budget.runs_per_transaction.max(1) {
                        exhausted = false;
                        break;
                    }
                    let (start, id) = entry?.0.value();
                    batch.push(id);
                    next = (start, id.saturating_add(1));
                }
                (batch, next, exhausted)
            };
            let mut touched_tasks = BTreeSet::new();
            for id in batch {
                if let Some((run, detections)) = delete_run(&txn, id, true)? {
                    report.runs_deleted += 1;
                    report.detections_deleted += detections;
                    touched_tasks.insert(run.task_id);
                }
            }
            for task in touched_tasks {
                tasks::drop_orphan_collections(&txn, task)?;
            }
            txn.commit().map_err(DbError::from)?;
            from = next;
            if exhausted {
                return Ok(report);
            }
            if start.elapsed() >= budget.time {
                report.more = true;
                return Ok(report);
            }
        }
    }
}

impl Store {
    /// Re-dates finished runs that start after `latest` to `to`: runs a
    /// device reported with its clock far ahead, stored before the console
    /// bounded device times. Dated in the future they would never be pruned
    /// and would head every list. Their own times are kept in
    /// `device_times`; the end becomes `to` too when it was out of bounds.
    /// At most `limit` runs per call; returns how many were re-dated.
    pub fn redate_runs_after(&self, latest: i64, to: i64, limit: usize) -> Result<u64, DbError> {
        let txn = self.write()?;
        let found: Vec<(i64, u64)> = {
            let index = txn.open_table(RUNS_BY_START)?;
            let mut found = Vec::new();
            for entry in index.range((latest.saturating_add(1), 0)..)? {
                if found.len() >= limit {
                    break;
                }
                found.push(entry?.0.value());
            }
            found
        };
        let mut n = 0u64;
        for (start, id) in found {
            let run: Option<RunRecordV1> = txn
                .open_table(RUNS)?
                .get(id)?
                .map(|r| r.value().decode())
                .transpose()?;
            let Some(mut run) = run.filter(|r| r.status != RunStatus::Running) else {
                continue;
            };
            txn.open_table(RUNS_BY_START)?.remove((start, id))?;
            txn.open_table(RUNS_BY_DEVICE)?
                .remove((run.device.as_str(), start, id))?;
            txn.open_table(RUNS_BY_TASK)?
                .remove((run.task_id, start, id))?;
            run.device_times.get_or_insert(DeviceTimesV1 {
                started_at: run.started_at,
                ended_at: run.ended_at.unwrap_or(run.started_at),
            });
            run.started_at = to;
            run.ended_at = run
                .ended_at
                .map(|e| if e > latest || e < to { to } else { e });
            super::runs::insert_run(&txn, &run)?;
            n += 1;
        }
        txn.commit()?;
        Ok(n)
    }
}

/// Deletes a run, its detections and its index entries; a `running` run is
/// kept when `skip_running`. Returns the run and its number of detections.
pub(crate) fn delete_run(
    txn: &WriteTransaction,
    id: u64,
    skip_running: bool,
) -> Result<Option<(RunRecordV1, u64)>, DbError> {
    let mut runs = txn.open_table(RUNS)?;
    let run: RunRecordV1 = match runs.get(id)? {
        Some(r) => r.value().decode()?,
        None => {
            return Err(DbError::Inconsistent(format!(
                "index names missing run {id}"
            )))
        }
    };
    if skip_running && run.status == RunStatus::Running {
        return Ok(None);
    }
    runs.remove(id)?;
    txn.open_table(RUNS_BY_START)?
        .remove((run.started_at, id))?;
    txn.open_table(RUNS_BY_DEVICE)?
        .remove((run.device.as_str(), run.started_at, id))?;
    txn.open_table(RUNS_BY_TASK)?
        .remove((run.task_id, run.started_at, id))?;
    txn.open_table(RUNNERS)?.remove(id)?;
    let mut detections = txn.open_table(RUN_DETECTIONS)?;
    let mut n = 0u64;
    detections.retain_in((id, 0)..=(id, u32::MAX), |_, _| {
        n += 1;
        false
    })?;
    Ok(Some((run, n)))
}
