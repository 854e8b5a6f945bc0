//! Runs: written `running` in their own transaction, detections appended in
//! batched transactions, finished in a final one. A run whose process dies
//! is found by its runner record and shown `interrupted`.

use super::codec::Encoded;
use super::error::{DbError, RunError};
use super::liveness;
use super::records::{DetectionRecordV1, RunRecordV1, RunStatus, RunTrigger};
use super::tables::{
    RUNNERS, RUNS, RUNS_BY_DEVICE, RUNS_BY_START, RUNS_BY_TASK, RUN_DETECTIONS, TASKS,
};
use super::{clock, next_id, Store};
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Detections buffered before a write transaction.
const BATCH_DETECTIONS: usize = 512;
/// Longest a detection waits in the buffer.
const BATCH_AGE: Duration = Duration::from_secs(2);

/// What a run is of.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub task_id: u64,
    pub device: String,
    pub trigger: RunTrigger,
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// Named counters (files scanned, errors...), in display order.
    pub counts: Vec<(String, u64)>,
    /// Set when the scan failed.
    pub error: Option<String>,
}

/// Which results to list (all conditions must hold), newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub task: Option<u64>,
    pub device: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub status: Option<RunStatus>,
    pub limit: Option<usize>,
}

/// An unfinished run: detections go in through [`RunWriter::record`].
/// Dropped without [`RunWriter::finish`], the run is marked `interrupted`.
pub struct RunWriter<'s> {
    store: &'s Store,
    run: RunRecordV1,
    pending: Vec<DetectionRecordV1>,
    oldest_pending: Option<Instant>,
    next_seq: u32,
    iocs: HashSet<String>,
    done: bool,
}

impl std::fmt::Debug for RunWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunWriter")
            .field("run", &self.run.id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Records a new run of a task, status `running`, using the task's
    /// current collection version, with this process as its runner.
    pub fn begin_run(&self, start: RunStart) -> Result<RunWriter<'_>, RunError> {
        let now = self.now_millis();
        let txn = self.write()?;
        let task = super::tasks::get_task(&txn.open_table(TASKS)?, start.task_id)
            .map_err(|e| match e {
                super::TaskError::Db(db) => RunError::Db(db),
                _ => RunError::TaskNotFound(start.task_id),
            })?
            .ok_or(RunError::TaskNotFound(start.task_id))?;
        let id = next_id(&txn, "run")?;
        let run = RunRecordV1 {
            id,
            task_id: task.id,
            task_name: task.name,
            collection_version: task.collection_version,
            device: start.device,
            trigger: start.trigger,
            started_at: now,
            ended_at: None,
            status: RunStatus::Running,
            detections: 0,
            iocs_detected: 0,
            counts: Vec::new(),
            error: None,
            device_id: None,
            received_at: None,
            device_times: None,
        };
        insert_run(&txn, &run)?;
        txn.open_table(RUNNERS)?
            .insert(id, Encoded::encode(&liveness::current_runner()))?;
        txn.commit().map_err(DbError::from)?;
        Ok(RunWriter {
            store: self,
            run,
            pending: Vec::new(),
            oldest_pending: None,
            next_seq: 0,
            iocs: HashSet::new(),
            done: false,
        })
    }

    pub fn run(&self, id: u64) -> Result<RunRecordV1, RunError> {
        let read = self.read()?;
        let table = read.open_table(RUNS)?;
        let got = table.get(id)?;
        match got {
            Some(r) => Ok(r.value().decode()?),
            None => Err(RunError::NotFound(id)),
        }
    }

    /// How many runs are stored.
    pub fn run_count(&self) -> Result<u64, RunError> {
        use redb::ReadableTableMetadata;
        let read = self.read()?;
        let n = read.open_table(RUNS)?.len()?;
        Ok(n)
    }

    /// The detections of a run, in the order found.
    pub fn detections(&self, run: u64) -> Result<Vec<DetectionRecordV1>, RunError> {
        let read = self.read()?;
        let table = read.open_table(RUN_DETECTIONS)?;
        let mut out = Vec::new();
        for entry in table.range((run, 0)..=(run, u32::MAX))? {
            out.push(entry?.1.value().decode()?);
        }
        Ok(out)
    }

    /// Lists runs, newest first, through the narrowest index the filter allows.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecordV1>, RunError> {
        let read = self.read()?;
        let runs = read.open_table(RUNS)?;
        let since = filter.since.map(clock::to_millis).unwrap_or(i64::MIN);
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let keep = |run_id: u64, out: &mut Vec<RunRecordV1>| -> Result<bool, RunError> {
            let got = runs.get(run_id)?;
            let Some(run) = got.map(|r| r.value().decode()).transpose()? else {
                return Err(
                    DbError::Inconsistent(format!("index names missing run {run_id}")).into(),
                );
            };
            let wanted = filter.task.is_none_or(|t| run.task_id == t)
                && filter.device.as_deref().is_none_or(|d| run.device == d)
                && filter.status.is_none_or(|s| run.status == s);
            if wanted {
                out.push(run);
            }
            Ok(out.len() < limit)
        };
        if let Some(device) = filter.device.as_deref() {
            let index = read.open_table(RUNS_BY_DEVICE)?;
            for entry in index
                .range((device, since, 0)..=(device, i64::MAX, u64::MAX))?
                .rev()
            {
                if !keep(entry?.0.value().2, &mut out)? {
                    break;
                }
            }
        } else if let Some(task) = filter.task {
            let index = read.open_table(RUNS_BY_TASK)?;
            for entry in index
                .range((task, since, 0)..=(task, i64::MAX, u64::MAX))?
                .rev()
            {
                if !keep(entry?.0.value().2, &mut out)? {
                    break;
                }
            }
        } else {
            let index = read.open_table(RUNS_BY_START)?;
            for entry in index.range((since, 0)..=(i64::MAX, u64::MAX))?.rev() {
                if !keep(entry?.0.value().1, &mut out)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Stores finished runs with their detections in one transaction (runs
    /// reported by another device, a console's offline queue, benchmarks).
    /// Run ids are assigned here; the tasks' collection versions must exist.
    /// Returns the ids.
    pub fn import_runs(
        &self,
        runs: impl IntoIterator<Item = (RunRecordV1, Vec<DetectionRecordV1>)>,
    ) -> Result<Vec<u64>, RunError> {
        let txn = self.write()?;
        let mut ids = Vec::new();
        {
            let collections = txn.open_table(super::tables::COLLECTIONS)?;
            let mut detections = txn.open_table(RUN_DETECTIONS)?;
            for (mut run, dets) in runs {
                if collections
                    .get((run.task_id, run.collection_version))?
                    .is_none()
                {
                    return Err(RunError::MissingCollection {
                        id: run.id,
                        task: run.task_id,
                        version: run.collection_version,
                    });
                }
                run.id = next_id(&txn, "run")?;
                run.detections = dets.len() as u64;
                if run.status == RunStatus::Running {
                    run.status = RunStatus::Interrupted;
                }
                insert_run(&txn, &run)?;
                for (seq, det) in dets.iter().enumerate() {
                    let seq = u32::try_from(seq)
                        .map_err(|_| DbError::Inconsistent("too many detections".into()))?;
                    detections.insert((run.id, seq), Encoded::encode(det))?;
                }
                ids.push(run.id);
            }
        }
        txn.commit().map_err(DbError::from)?;
        Ok(ids)
    }
}

/// Writes a run record and its index entries.
pub(crate) fn insert_run(txn: &WriteTransaction, run: &RunRecordV1) -> Result<(), DbError> {
    txn.open_table(RUNS)?.insert(run.id, Encoded::encode(run))?;
    txn.open_table(RUNS_BY_DEVICE)?
        .insert((run.device.as_str(), run.started_at, run.id), ())?;
    txn.open_table(RUNS_BY_TASK)?
        .insert((run.task_id, run.started_at, run.id), ())?;
    txn.open_table(RUNS_BY_START)?
        .insert((run.started_at, run.id), ())?;
    Ok(())
}

impl RunWriter<'_> {
    pub fn id(&self) -> u64 {
        self.run.id
    }

    /// The run as recorded so far.
    pub fn run(&self) -> &RunRecordV1 {
        &self.run
    }

    /// Adds a detection; written with the next batch.
    pub fn record(&mut self, detection: DetectionRecordV1) -> Result<(), RunError> {
        self.pending.push(detection);
        let oldest = *self.oldest_pending.get_or_insert_with(Instant::now);
        if self.pending.len() >= BATCH_DETECTIONS || oldest.elapsed() >= BATCH_AGE {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered detections if the oldest has waited long enough.
    pub fn flush_if_due(&mut self) -> Result<(), RunError> {
        match self.oldest_pending {
            Some(t) if t.elapsed() >= BATCH_AGE => self.flush(),
            _ => Ok(()),
        }
    }

    /// Writes the buffered detections and the run's counts in one transaction.
    pub fn flush(&mut self) -> Result<(), RunError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let txn = self.store.write()?;
        let mut run = self.run.clone();
        let mut seq = self.next_seq;
        let mut iocs = self.iocs.clone();
        {
            let mut table = txn.open_table(RUN_DETECTIONS)?;
            for det in &self.pending {
                table.insert((run.id, seq), Encoded::encode(det))?;
                seq = seq
                    .checked_add(1)
                    .ok_or_else(|| DbError::Inconsistent("too many detections".into()))?;
                iocs.insert(det.ioc_id.clone());
            }
        }
        run.detections += self.pending.len() as u64;
        run.iocs_detected = iocs.len() as u64;
        txn.open_table(RUNS)?
            .insert(run.id, Encoded::<RunRecordV1>::encode(&run))?;
        txn.commit().map_err(DbError::from)?;
        // Only once committed does the writer's view move on.
        self.run = run;
        self.next_seq = seq;
        self.iocs = iocs;
        self.pending.clear();
        self.oldest_pending = None;
        Ok(())
    }

    /// Writes the last detections and ends the run: `ioc-detected` if any
    /// detection was recorded, else `error` if the scan failed, else
    /// `no-ioc-detected`.
    pub fn finish(mut self, outcome: RunOutcome) -> Result<RunRecordV1, RunError> {
        self.flush()?;
        let status = if self.run.detections > 0 {
            RunStatus::IocDetected
        } else if outcome.error.is_some() {
            RunStatus::Error
        } else {
            RunStatus::NoIocDetected
        };
        let run = self.end(status, outcome)?;
        self.done = true;
        Ok(run)
    }

    /// Writes the last detections and leaves the run `interrupted` (the
    /// process was asked to stop).
    pub fn interrupt(mut self) -> Result<RunRecordV1, RunError> {
        self.flush()?;
        let run = self.end(RunStatus::Interrupted, RunOutcome::default())?;
        self.done = true;
        Ok(run)
    }

    fn end(&mut self, status: RunStatus, outcome: RunOutcome) -> Result<RunRecordV1, RunError> {
        let mut run = self.run.clone();
        run.status = status;
        run.ended_at = Some(self.store.now_millis());
        run.counts = outcome.counts;
        run.error = outcome.error;
        let txn = self.store.write()?;
        {
            let mut runs = txn.open_table(RUNS)?;
            let current = runs.get(run.id)?.map(|r| r.value().decode()).transpose()?;
            match current {
                Some(c) if c.status == RunStatus::Running => {}
                Some(_) => return Err(RunError::Finished(run.id)),
                None => return Err(RunError::NotFound(run.id)),
            }
            runs.insert(run.id, Encoded::<RunRecordV1>::encode(&run))?;
        }
        txn.open_table(RUNNERS)?.remove(run.id)?;
        txn.commit().map_err(DbError::from)?;
        self.run = run.clone();
        Ok(run)
    }
}

impl Drop for RunWriter<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: keep what was found, and say the run did not finish.
            let _ = self.flush();
            let _ = self.end(RunStatus::Interrupted, RunOutcome::default());
        }
    }
}
