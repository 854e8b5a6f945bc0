//! A full consistency check of the tables: every run indexed exactly where
//! its record says, every index entry and detection belonging to a run,
//! every run's collection version present, blob references counted right.
//! Used by tests after crashes and by the benchmark.

use super::error::DbError;
use super::records::RunStatus;
use super::tables::{
    COLLECTIONS, IOC_BLOBS, IOC_BLOB_REFS, RUNNERS, RUNS, RUNS_BY_DEVICE, RUNS_BY_START,
    RUNS_BY_TASK, RUN_DETECTIONS,
};
use super::Store;
use redb::{ReadableTable, ReadableTableMetadata};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn check(store: &Store) -> Result<Vec<String>, DbError> {
    let read = store.read()?;
    let mut problems = Vec::new();
    let runs = read.open_table(RUNS)?;
    let mut by_start = BTreeSet::new();
    let mut by_device = BTreeSet::new();
    let mut by_task = BTreeSet::new();
    let mut detections_of: BTreeMap<u64, u64> = BTreeMap::new();
    let mut versions_used = BTreeSet::new();
    for entry in runs.iter()? {
        let (id, run) = entry?;
        let (id, run) = (id.value(), run.value().decode()?);
        if run.id != id {
            problems.push(format!("run {id} holds the record of run {}", run.id));
        }
        by_start.insert((run.started_at, id));
        by_device.insert((run.device.clone(), run.started_at, id));
        by_task.insert((run.task_id, run.started_at, id));
        detections_of.insert(id, run.detections);
        versions_used.insert((run.task_id, run.collection_version));
    }
    let index: BTreeSet<(i64, u64)> = read
        .open_table(RUNS_BY_START)?
        .iter()?
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    if index != by_start {
        problems.push(format!(
            "runs_by_start has {} entries for {} runs, or wrong ones",
            index.len(),
            by_start.len()
        ));
    }
    let index: BTreeSet<(String, i64, u64)> = read
        .open_table(RUNS_BY_DEVICE)?
        .iter()?
        .map(|e| {
            e.map(|(k, _)| {
                let (d, s, i) = k.value();
                (d.to_string(), s, i)
            })
        })
        .collect::<Result<_, _>>()?;
    if index != by_device {
        problems.push(format!(
            "runs_by_device has {} entries for {} runs, or wrong ones",
            index.len(),
            by_device.len()
        ));
    }
    let index: BTreeSet<(u64, i64, u64)> = read
        .open_table(RUNS_BY_TASK)?
        .iter()?
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    if index != by_task {
        problems.push(format!(
            "runs_by_task has {} entries for {} runs, or wrong ones",
            index.len(),
            by_task.len()
        ));
    }
    let mut counted: BTreeMap<u64, u64> = BTreeMap::new();
    for entry in read.open_table(RUN_DETECTIONS)?.iter()? {
        let (key, det) = entry?;
        det.value().decode()?;
        *counted.entry(key.value().0).or_default() += 1;
    }
    for (run, n) in &counted {
        match detections_of.get(run) {
            None => problems.push(format!("{n} detections of missing run {run}")),
            Some(recorded) if recorded != n => problems.push(format!(
                "run {run} records {recorded} detections, {n} stored"
            )),
            Some(_) => {}
        }
    }
    for entry in read.open_table(RUNNERS)?.iter()? {
        let id = entry?.0.value();
        let status = runs
            .get(id)?
            .map(|r| r.value().decode())
            .transpose()?
            .map(|r| r.status);
        if status != Some(RunStatus::Running) {
            problems.push(format!("runner record for run {id}, which is {status:?}"));
        }
    }
    let collections = read.open_table(COLLECTIONS)?;
    for (task, version) in &versions_used {
        if collections.get((*task, *version))?.is_none() {
            problems.push(format!(
                "collection version {version} of task {task} is missing"
            ));
        }
    }
    let mut refs: BTreeMap<String, u64> = BTreeMap::new();
    for entry in collections.iter()? {
        let c = entry?.1.value().decode()?;
        let distinct: BTreeSet<&str> = c.files.iter().map(|f| f.sha256.as_str()).collect();
        for sha in distinct {
            *refs.entry(sha.to_string()).or_default() += 1;
        }
    }
    let stored: BTreeMap<String, u64> = read
        .open_table(IOC_BLOB_REFS)?
        .iter()?
        .map(|e| e.map(|(k, v)| (k.value().to_string(), v.value())))
        .collect::<Result<_, _>>()?;
    if stored != refs {
        problems.push("ioc_blob_refs does not match the collection versions".into());
    }
    let blobs = read.open_table(IOC_BLOBS)?;
    if blobs.len()? != refs.len() as u64 {
        problems.push(format!(
            "{} blobs stored for {} referenced",
            blobs.len()?,
            refs.len()
        ));
    }
    for sha in refs.keys() {
        match blobs.get(sha.as_str())? {
            Some(bytes) if super::tasks::sha256_hex(bytes.value()) == *sha => {}
            Some(_) => problems.push(format!("blob {sha} does not hash to its key")),
            None => problems.push(format!("blob {sha} is missing")),
        }
    }
    Ok(problems)
}
