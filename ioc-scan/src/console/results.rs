//! Listing results (runs) for the results table through the store's
//! indexes: by device (one range per device of a group), by task, or all,
//! newest first, within a time window.

use super::error::Result;
use crate::store::tables::{RUNS, RUNS_BY_DEVICE, RUNS_BY_START, RUNS_BY_TASK};
use crate::store::{DbError, RunRecordV1, RunStatus, Store};

/// Which runs (all conditions hold), newest first.
#[derive(Debug, Clone, Default)]
pub struct ResultQuery {
    pub task: Option<u64>,
    /// Device names; `None`: every device.
    pub devices: Option<Vec<String>>,
    pub status: Option<RunStatus>,
    /// Started at or after (ms).
    pub since: Option<i64>,
    /// Started at or before (ms).
    pub until: Option<i64>,
    pub limit: usize,
}

pub fn query(store: &Store, q: &ResultQuery) -> Result<Vec<RunRecordV1>> {
    let read = store.read()?;
    let runs = read.open_table(RUNS)?;
    let (since, until) = (q.since.unwrap_or(i64::MIN), q.until.unwrap_or(i64::MAX));
    let mut out: Vec<RunRecordV1> = Vec::new();
    let wanted =
        |run: &RunRecordV1| q.task.is_none_or(|t| run.task_id == t) && q.status.is_none_or(|s| run.status == s);
    let get = |id: u64| -> Result<RunRecordV1> {
        match runs.get(id)? {
            Some(r) => Ok(r.value().decode()?),
            None => Err(DbError::Inconsistent(format!("index names missing run {id}")).into()),
        }
    };
    if q.limit == 0 || since > until {
        return Ok(out);
    }
    match &q.devices {
        Some(devices) => {
            let index = read.open_table(RUNS_BY_DEVICE)?;
            for device in devices {
                let mut n = 0;
                for entry in index.range((device.as_str(), since, 0)..=(device.as_str(), until, u64::MAX))?.rev() {
                    let run = get(entry?.0.value().2)?;
                    if wanted(&run) {
                        out.push(run);
                        n += 1;
                        if n >= q.limit {
                            break;
                        }
                    }
                }
            }
            out.sort_by_key(|r| std::cmp::Reverse((r.started_at, r.id)));
            out.truncate(q.limit);
        }
        None => {
            if let Some(task) = q.task {
                let index = read.open_table(RUNS_BY_TASK)?;
                for entry in index.range((task, since, 0)..=(task, until, u64::MAX))?.rev() {
                    let run = get(entry?.0.value().2)?;
                    if wanted(&run) {
                        out.push(run);
                        if out.len() >= q.limit {
                            break;
                        }
                    }
                }
            } else {
                let index = read.open_table(RUNS_BY_START)?;
                for entry in index.range((since, 0)..=(until, u64::MAX))?.rev() {
                    let run = get(entry?.0.value().1)?;
                    if wanted(&run) {
                        out.push(run);
                        if out.len() >= q.limit {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}
