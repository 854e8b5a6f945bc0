//! Tasks and their IOC collection versions.
//!
//! A collection version is immutable: changing a task's IOC files makes a new
//! version, and every run names the version it used. File bytes are stored
//! once per distinct sha256 and reference-counted by the versions holding
//! them.

use super::codec::Encoded;
use super::error::{DbError, TaskError};
use super::records::{
    monitor_seconds, CollectionRecordV1, IocFileRefV1, ResponseSettingsV1, ScheduleStateV1,
    ScopeV1, TaskRecordV1,
};
use super::schedule::Schedule;
use super::tables::{COLLECTIONS, IOC_BLOBS, IOC_BLOB_REFS, RUNS_BY_TASK, SCHEDULE_STATE, TASKS};
use super::{clock, next_id, Store};
use crate::indicator::Ioc;
use redb::{ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// An IOC file as uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocFile {
    /// The file name (no folder), as it will be exported.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The IOC files of a new collection version and the indicators read from
/// them (each [`Ioc::source`] naming the file it came from).
#[derive(Debug, Clone)]
pub struct NewCollection {
    pub files: Vec<IocFile>,
    pub iocs: Vec<Ioc>,
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub name: String,
    pub description: String,
    pub collection: NewCollection,
    pub scope: ScopeV1,
    pub response: ResponseSettingsV1,
    pub schedule: Schedule,
    /// Live monitoring after the scan, in seconds (see
    /// [`TaskRecordV1::monitor_seconds`]).
    pub monitor_seconds: Option<u32>,
}

/// `Some(0)` is off; more than
/// [`MAX_MONITOR_SECONDS`](super::records::MAX_MONITOR_SECONDS) is refused.
fn check_monitor(seconds: Option<u32>) -> Result<Option<u32>, TaskError> {
    match seconds {
        Some(s) => Ok(monitor_seconds(u64::from(s))?),
        None => Ok(None),
    }
}

impl NewCollection {
    /// Refuses an empty collection, two files of one name, and one IOC id in
    /// two places (naming both files).
    fn validate(&self) -> Result<(), TaskError> {
        if self.files.is_empty() {
            return Err(TaskError::NoIocFiles);
        }
        let mut names = HashMap::new();
        for f in &self.files {
            if names.insert(f.name.as_str(), ()).is_some() {
                return Err(TaskError::DuplicateFileName(f.name.clone()));
            }
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for ioc in &self.iocs {
            if let Some(first) = seen.insert(ioc.id.as_str(), ioc.source.as_str()) {
                return Err(TaskError::DuplicateIoc {
                    id: ioc.id.clone(),
                    first: first.to_string(),
                    second: ioc.source.clone(),
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Store {
    pub fn create_task(&self, new: NewTask) -> Result<TaskRecordV1, TaskError> {
        if new.name.trim().is_empty() {
            return Err(TaskError::EmptyName);
        }
        new.collection.validate()?;
        let monitor_seconds = check_monitor(new.monitor_seconds)?;
        let now = self.now_millis();
        let txn = self.write()?;
        let id = next_id(&txn, "task")?;
        let task = TaskRecordV1 {
            id,
            name: new.name,
            description: new.description,
            collection_version: 1,
            scope: new.scope,
            response: new.response,
            schedule: new.schedule,
            monitor_seconds,
            created_at: now,
            updated_at: now,
        };
        put_collection(&txn, id, 1, new.collection, now)?;
        txn.open_table(TASKS)?.insert(id, Encoded::encode(&task))?;
        txn.commit().map_err(DbError::from)?;
        Ok(task)
    }

    /// Changes a task: `edit` may change name, description, scope, response,
    /// schedule and live monitoring; a `collection` makes a new collection version. Ids,
    /// versions and creation time are kept whatever `edit` does.
    pub fn edit_task(
        &self,
        id: u64,
        collection: Option<NewCollection>,
        edit: impl FnOnce(&mut TaskRecordV1),
    ) -> Result<TaskRecordV1, TaskError> {
        if let Some(c) = &collection {
            c.validate()?;
        }
        let now = self.now_millis();
        let txn = self.write()?;
        let old = get_task(&txn.open_table(TASKS)?, id)?.ok_or(TaskError::NotFound(id))?;
        let mut task = old.clone();
        edit(&mut task);
        if task.name.trim().is_empty() {
            return Err(TaskError::EmptyName);
        }
        task.monitor_seconds = check_monitor(task.monitor_seconds)?;
        task.id = old.id;
        task.created_at = old.created_at;
        task.collection_version = old.collection_version;
        task.updated_at = now;
        if let Some(c) = collection {
            // The highest existing version + 1 (versions of a task are never reused).
            let version = {
                let collections = txn.open_table(COLLECTIONS)?;
                let last = collections
                    .range((id, 0)..=(id, u32::MAX))?
                    .next_back()
                    .transpose()?;
                last.map(|(k, _)| k.value().1).unwrap_or(0) + 1
            };
            put_collection(&txn, id, version, c, now)?;
            task.collection_version = version;
        }
        if task.schedule != old.schedule {
            // A new schedule starts afresh.
            txn.open_table(SCHEDULE_STATE)?.remove(id)?;
        }
        txn.open_table(TASKS)?.insert(id, Encoded::encode(&task))?;
        txn.commit().map_err(DbError::from)?;
        Ok(task)
    }

    pub fn task(&self, id: u64) -> Result<Option<TaskRecordV1>, TaskError> {
        let read = self.read()?;
        get_task(&read.open_table(TASKS)?, id)
    }

    /// Every task, by id.
    pub fn tasks(&self) -> Result<Vec<TaskRecordV1>, TaskError> {
        let read = self.read()?;
        let table = read.open_table(TASKS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(entry?.1.value().decode()?);
        }
        Ok(out)
    }

    /// Deletes a task. Its runs stay (results are history) with the
    /// collection versions they used; those versions go when the last of
    /// the runs is pruned.
    pub fn delete_task(&self, id: u64) -> Result<TaskRecordV1, TaskError> {
        let txn = self.write()?;
        let task = {
            let mut tasks = txn.open_table(TASKS)?;
            let removed = tasks.remove(id)?;
            match removed {
                Some(t) => t.value().decode()?,
                None => return Err(TaskError::NotFound(id)),
            }
        };
        txn.open_table(SCHEDULE_STATE)?.remove(id)?;
        drop_orphan_collections(&txn, id)?;
        txn.commit().map_err(DbError::from)?;
        Ok(task)
    }

    /// One collection version of a task (also of a deleted task whose runs remain).
    pub fn collection(&self, task: u64, version: u32) -> Result<CollectionRecordV1, TaskError> {
        let read = self.read()?;
        let table = read.open_table(COLLECTIONS)?;
        let got = table.get((task, version))?;
        match got {
            Some(c) => Ok(c.value().decode()?),
            None => Err(TaskError::NoSuchVersion { task, version }),
        }
    }

    /// The versions of a task's collection, oldest first.
    pub fn collection_versions(&self, task: u64) -> Result<Vec<u32>, TaskError> {
        let read = self.read()?;
        let table = read.open_table(COLLECTIONS)?;
        let mut out = Vec::new();
        for entry in table.range((task, 0)..=(task, u32::MAX))? {
            out.push(entry?.0.value().1);
        }
        Ok(out)
    }

    /// The bytes of an IOC file, by sha256 (hex).
    pub fn ioc_file_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, TaskError> {
        let read = self.read()?;
        let table = read.open_table(IOC_BLOBS)?;
        let got = table.get(sha256)?;
        Ok(got.map(|b| b.value().to_vec()))
    }

    /// When the agent last started the task by its schedule.
    pub fn schedule_state(&self, task: u64) -> Result<ScheduleStateV1, TaskError> {
        let read = self.read()?;
        let table = read.open_table(SCHEDULE_STATE)?;
        let got = table.get(task)?;
        Ok(got
            .map(|s| s.value().decode())
            .transpose()?
            .unwrap_or_default())
    }

    /// When `task` falls due next, by its schedule and the time it last
    /// fired (`None`: never again, or not by time); daily times are in `tz`.
    pub fn next_due<Tz: chrono::TimeZone>(
        &self,
        task: &TaskRecordV1,
        tz: &Tz,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, TaskError> {
        let last_fired = self.schedule_state(task.id)?.last_fired_at;
        Ok(task.schedule.next_due(
            clock::from_millis(task.created_at),
            last_fired.map(clock::from_millis),
            tz,
        ))
    }

    /// Records that the schedule of `task` fired at `at`.
    pub fn record_fire(
        &self,
        task: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), TaskError> {
        let txn = self.write()?;
        let state = ScheduleStateV1 {
            last_fired_at: Some(clock::to_millis(at)),
        };
        txn.open_table(SCHEDULE_STATE)?
            .insert(task, Encoded::encode(&state))?;
        txn.commit().map_err(DbError::from)?;
        Ok(())
    }
}

pub(crate) fn get_task(
    table: &impl ReadableTable<u64, super::codec::Json<TaskRecordV1>>,
    id: u64,
) -> Result<Option<TaskRecordV1>, TaskError> {
    let got = table.get(id)?;
    Ok(got.map(|t| t.value().decode()).transpose()?)
}

/// Writes a collection version and its blobs (stored once per sha256).
fn put_collection(
    txn: &WriteTransaction,
    task: u64,
    version: u32,
    collection: NewCollection,
    now: i64,
) -> Result<(), DbError> {
    let mut blobs = txn.open_table(IOC_BLOBS)?;
    let mut refs = txn.open_table(IOC_BLOB_REFS)?;
    let mut files = Vec::with_capacity(collection.files.len());
    let mut counted: Vec<String> = Vec::new();
    for file in &collection.files {
        let sha = sha256_hex(&file.bytes);
        if blobs.get(sha.as_str())?.is_none() {
            blobs.insert(sha.as_str(), file.bytes.as_slice())?;
        }
        // One reference per version, even if it holds the same bytes twice.
        if !counted.contains(&sha) {
            let n = refs.get(sha.as_str())?.map(|v| v.value()).unwrap_or(0);
            refs.insert(sha.as_str(), n + 1)?;
            counted.push(sha.clone());
        }
        files.push(IocFileRefV1 {
            name: file.name.clone(),
            sha256: sha,
            size: file.bytes.len() as u64,
        });
    }
    let record = CollectionRecordV1 {
        task_id: task,
        version,
        files,
        ioc_paths: crate::indicator::paths_named(&collection.iocs),
        iocs: collection.iocs,
        created_at: now,
    };
    txn.open_table(COLLECTIONS)?
        .insert((task, version), Encoded::encode(&record))?;
    Ok(())
}

/// If `task` is deleted and no run of it remains, deletes its collection
/// versions and releases their blobs.
pub(crate) fn drop_orphan_collections(txn: &WriteTransaction, task: u64) -> Result<(), DbError> {
    if txn.open_table(TASKS)?.get(task)?.is_some() {
        return Ok(());
    }
    if txn
        .open_table(RUNS_BY_TASK)?
        .range((task, i64::MIN, 0)..=(task, i64::MAX, u64::MAX))?
        .next()
        .is_some()
    {
        return Ok(());
    }
    let mut collections = txn.open_table(COLLECTIONS)?;
    let mut blobs = txn.open_table(IOC_BLOBS)?;
    let mut refs = txn.open_table(IOC_BLOB_REFS)?;
    let versions: Vec<CollectionRecordV1> = collections
        .extract_from_if((task, 0)..=(task, u32::MAX), |_, _| true)?
        .map(|e| {
            e.map_err(DbError::from)
                .and_then(|(_, v)| Ok(v.value().decode()?))
        })
        .collect::<Result<_, _>>()?;
    for version in versions {
        let mut released: Vec<&str> = Vec::new();
        for file in &version.files {
            if released.contains(&file.sha256.as_str()) {
                continue;
            }
            released.push(&file.sha256);
            let n = refs
                .get(file.sha256.as_str())?
                .map(|v| v.value())
                .unwrap_or(0);
            if n <= 1 {
                refs.remove(file.sha256.as_str())?;
                blobs.remove(file.sha256.as_str())?;
            } else {
                refs.insert(file.sha256.as_str(), n - 1)?;
            }
        }
    }
    Ok(())
}
