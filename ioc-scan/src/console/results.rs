//! Listing results (runs) for the results table through the store's
//! indexes: by device (one range per device of a group), by task, or all,
//! newest first, within a time window.
//!
//! A run belongs to the device id that reported it, not to its name: a name
//! can be enrolled again once its device is removed, and the new device must
//! not show (or be shown with) the old one's history ([`belongs_to`]). A
//! device's runs are read through the console's index by device id (so a
//! renamed device keeps them), plus, under its name, the runs stored before
//! ids were kept.

use super::error::Result;
use super::tables::{DeviceRecordV1, RUNS_BY_DEVICE_ID};
use crate::store::tables::{RUNS, RUNS_BY_DEVICE, RUNS_BY_START, RUNS_BY_TASK};
use crate::store::{DbError, RunRecordV1, RunStatus, Store};
use std::collections::HashMap;

/// Whose results.
#[derive(Debug, Clone)]
pub enum Owner {
    /// An enrolled device's own ([`belongs_to`]).
    Device { id: u64, name: String, enrolled_at: i64 },
    /// Every run stored under a device name, whichever device reported it
    /// (the history of removed devices).
    Name(String),
}

impl Owner {
    pub fn of(device: &DeviceRecordV1) -> Owner {
        Owner::Device { id: device.id, name: device.name.clone(), enrolled_at: device.enrolled_at }
    }
}

/// Whether `run` is a result of the device `id` (named `name`, enrolled at
/// `enrolled_at`): it reported it; or, for a run stored before device ids were
/// kept, the run is under its name and started after it was enrolled.
pub fn belongs_to(run: &RunRecordV1, id: u64, name: &str, enrolled_at: i64) -> bool {
    match run.device_id {
        Some(owner) => owner == id,
        None => run.device == name && run.started_at >= enrolled_at,
    }
}

/// The enrolled devices by name (names are unique among them), for [`device_of`].
pub fn by_name(devices: &[DeviceRecordV1]) -> HashMap<&str, &DeviceRecordV1> {
    devices.iter().map(|d| (d.name.as_str(), d)).collect()
}

/// The id of the device a run belongs to: the one that reported it (even
/// once removed), or for a run stored before ids were kept, the enrolled
/// device of its name if the run is its own ([`belongs_to`]).
pub fn device_of(run: &RunRecordV1, by_name: &HashMap<&str, &DeviceRecordV1>) -> Option<u64> {
    run.device_id.or_else(|| {
        by_name.get(run.device.as_str()).filter(|d| belongs_to(run, d.id, &d.name, d.enrolled_at)).map(|d| d.id)
    })
}

/// Which runs (all conditions hold), newest first.
#[derive(Debug, Clone, Default)]
pub struct ResultQuery {
    pub task: Option<u64>,
    /// Whose; `None`: every device's.
    pub devices: Option<Vec<Owner>>,
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
            let by_name = read.open_table(RUNS_BY_DEVICE)?;
            let by_id = read.open_table(RUNS_BY_DEVICE_ID)?;
            for owner in devices {
                let mut n = 0;
                let mut keep = |run: RunRecordV1, out: &mut Vec<RunRecordV1>| {
                    out.push(run);
                    n += 1;
                    n < q.limit
                };
                match owner {
                    Owner::Device { id, name, enrolled_at } => {
                        // What it reported, under whatever name it had then.
                        for entry in by_id.range((*id, since, 0)..=(*id, until, u64::MAX))?.rev() {
                            let run_id = entry?.0.value().2;
                            // Pruned since (the index is cleaned by the next maintenance).
                            let Some(run) = runs.get(run_id)?.map(|r| r.value().decode()).transpose()? else {
                                continue;
                            };
                            if wanted(&run) && !keep(run, &mut out) {
                                break;
                            }
                        }
                        // Runs stored before ids were kept: under its name, since it was enrolled.
                        let from = since.max(*enrolled_at);
                        for entry in by_name.range((name.as_str(), from, 0)..=(name.as_str(), until, u64::MAX))?.rev() {
                            let run = get(entry?.0.value().2)?;
                            if run.device_id.is_none() && wanted(&run) && !keep(run, &mut out) {
                                break;
                            }
                        }
                    }
                    Owner::Name(name) => {
                        for entry in by_name.range((name.as_str(), since, 0)..=(name.as_str(), until, u64::MAX))?.rev()
                        {
                            let run = get(entry?.0.value().2)?;
                            if wanted(&run) && !keep(run, &mut out) {
                                break;
                            }
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
