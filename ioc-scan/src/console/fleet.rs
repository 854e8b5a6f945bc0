//! Managed devices: enrollment, administration groups, the devices a task
//! targets, and jobs (one run asked of one device), made when someone runs a
//! task now or when a task's schedule falls due for a device.

use super::accounts::{check_name, insert_token, secret_hash};
use super::error::{ConsoleError, Result};
use super::protocol::EnrollRequest;
use super::tables::{
    DeviceRecordV1, GroupRecordV1, JobRecordV1, JobStatus, TargetsV1, TokenKindV1, TokenRecordV1, DEVICES,
    DEVICES_BY_NAME, DEVICE_SCHEDULE, GROUPS, JOBS, JOB_RESULTS, OPEN_JOBS, RESULT_KEYS, RUNS_BY_DEVICE_ID, SEQ_DEVICE,
    SEQ_GROUP, SEQ_JOB, TASK_TARGETS, TOKENS,
};
use crate::store::{clock, next_id, DbError, Encoded, RunTrigger, Schedule, Store, TaskRecordV1};
use chrono::{DateTime, FixedOffset, Utc};
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use std::collections::{BTreeSet, HashMap};

/// Longest free text kept from a device (host name, OS).
const MAX_DEVICE_TEXT: usize = 256;
/// Most devices enrolled at once: an enrollment token with unlimited uses
/// cannot grow the tables without end.
pub const MAX_DEVICES: u64 = 100_000;

fn bounded(s: Option<String>) -> Option<String> {
    s.map(|s| s.chars().filter(|c| !c.is_control()).take(MAX_DEVICE_TEXT).collect())
}

/// Enrolls a device with the enrollment token whose hash is
/// `enrollment_hash` (one use of it is spent); returns the device and its
/// own token (shown once).
pub fn enroll(store: &Store, enrollment_hash: &str, req: EnrollRequest) -> Result<(DeviceRecordV1, String)> {
    check_name("a device name", &req.name)?;
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let (device, secret) = {
        if txn.open_table(DEVICES)?.len()? >= MAX_DEVICES {
            return Err(ConsoleError::Conflict(format!(
                "{MAX_DEVICES} devices are enrolled, the most this console takes; remove some first"
            )));
        }
        let mut tokens = txn.open_table(TOKENS)?;
        let token: TokenRecordV1 = match tokens.get(enrollment_hash)? {
            Some(t) => t.value().decode()?,
            None => return Err(ConsoleError::Unauthorized),
        };
        let TokenKindV1::Enrollment { group_id, uses_left } = token.kind.clone() else {
            return Err(ConsoleError::Forbidden("not an enrollment token".into()));
        };
        if token.expires_at.is_some_and(|e| e <= now) || uses_left == Some(0) {
            return Err(ConsoleError::Unauthorized);
        }
        match uses_left {
            Some(1) => {
                tokens.remove(enrollment_hash)?;
            }
            Some(n) => {
                let mut t = token.clone();
                t.kind = TokenKindV1::Enrollment { group_id, uses_left: Some(n - 1) };
                tokens.insert(enrollment_hash, Encoded::encode(&t))?;
            }
            None => {}
        }
        drop(tokens);
        let mut by_name = txn.open_table(DEVICES_BY_NAME)?;
        if by_name.get(req.name.as_str())?.is_some() {
            return Err(ConsoleError::Conflict(format!(
                "a device named {:?} is enrolled; remove it in the console, or choose another name",
                req.name
            )));
        }
        let id = next_id(&txn, SEQ_DEVICE)?;
        // A group deleted since the token was made: enroll into no group.
        let group_id = match group_id {
            Some(g) if txn.open_table(GROUPS)?.get(g)?.is_some() => Some(g),
            _ => None,
        };
        let (secret, _) = insert_token(&txn, now, TokenKindV1::Device { device_id: id }, &req.name, None)?;
        let device = DeviceRecordV1 {
            id,
            name: req.name.clone(),
            hostname: bounded(req.hostname),
            os: bounded(req.os),
            agent_version: bounded(req.agent_version),
            group_id,
            enrolled_at: now,
            last_seen: Some(now),
            token_hash: secret_hash(&secret),
        };
        by_name.insert(req.name.as_str(), id)?;
        txn.open_table(DEVICES)?.insert(id, Encoded::encode(&device))?;
        (device, secret)
    };
    txn.commit()?;
    Ok((device, secret))
}

pub fn devices(store: &Store) -> Result<Vec<DeviceRecordV1>> {
    let read = store.read()?;
    let table = read.open_table(DEVICES)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        out.push(entry?.1.value().decode()?);
    }
    Ok(out)
}

pub fn device(store: &Store, id: u64) -> Result<Option<DeviceRecordV1>> {
    let read = store.read()?;
    let got = read.open_table(DEVICES)?.get(id)?;
    Ok(got.map(|d| d.value().decode()).transpose()?)
}

/// Renames a device and/or moves it to a group (`Some(None)`: out of any group).
pub fn update_device(
    store: &Store,
    id: u64,
    name: Option<String>,
    group: Option<Option<u64>>,
) -> Result<DeviceRecordV1> {
    let txn = super::write::begin(store)?;
    let device = {
        let mut devices = txn.open_table(DEVICES)?;
        let mut device: DeviceRecordV1 = match devices.get(id)? {
            Some(d) => d.value().decode()?,
            None => return Err(ConsoleError::not_found(format_args!("device with id {id}"))),
        };
        if let Some(name) = name.filter(|n| *n != device.name) {
            check_name("a device name", &name)?;
            let mut by_name = txn.open_table(DEVICES_BY_NAME)?;
            if by_name.get(name.as_str())?.is_some() {
                return Err(ConsoleError::Conflict(format!("a device named {name:?} exists")));
            }
            by_name.remove(device.name.as_str())?;
            by_name.insert(name.as_str(), id)?;
            device.name = name;
        }
        if let Some(group) = group {
            if let Some(g) = group {
                if txn.open_table(GROUPS)?.get(g)?.is_none() {
                    return Err(ConsoleError::Invalid(format!("no group with id {g}")));
                }
            }
            device.group_id = group;
        }
        devices.insert(id, Encoded::encode(&device))?;
        device
    };
    txn.commit()?;
    Ok(device)
}

/// Removes a device: its token stops working and its open jobs are
/// cancelled. Its results stay.
pub fn delete_device(store: &Store, id: u64) -> Result<DeviceRecordV1> {
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let device = {
        let device: DeviceRecordV1 = match txn.open_table(DEVICES)?.remove(id)? {
            Some(d) => d.value().decode()?,
            None => return Err(ConsoleError::not_found(format_args!("device with id {id}"))),
        };
        txn.open_table(DEVICES_BY_NAME)?.remove(device.name.as_str())?;
        txn.open_table(TOKENS)?.remove(device.token_hash.as_str())?;
        let open: Vec<u64> = {
            let index = txn.open_table(OPEN_JOBS)?;
            let mut ids = Vec::new();
            for entry in index.range((id, 0)..=(id, u64::MAX))? {
                ids.push(entry?.0.value().1);
            }
            ids
        };
        for job in open {
            close_job(&txn, id, job, JobStatus::Cancelled, now, None)?;
        }
        txn.open_table(DEVICE_SCHEDULE)?.retain(|(_, d), _| d != id)?;
        device
    };
    txn.commit()?;
    Ok(device)
}

/// Persists the last-contact times kept in memory.
pub fn record_last_seen(store: &Store, seen: &HashMap<u64, i64>) -> Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let txn = super::write::begin(store)?;
    {
        let mut devices = txn.open_table(DEVICES)?;
        for (&id, &at) in seen {
            let current: Option<DeviceRecordV1> = devices.get(id)?.map(|d| d.value().decode()).transpose()?;
            if let Some(mut d) = current.filter(|d| d.last_seen.is_none_or(|l| l < at)) {
                d.last_seen = Some(at);
                devices.insert(id, Encoded::encode(&d))?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

pub fn groups(store: &Store) -> Result<Vec<GroupRecordV1>> {
    let read = store.read()?;
    let table = read.open_table(GROUPS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        out.push(entry?.1.value().decode()?);
    }
    Ok(out)
}

pub fn create_group(store: &Store, name: &str, description: &str) -> Result<GroupRecordV1> {
    check_name("a group name", name)?;
    let txn = super::write::begin(store)?;
    let group = {
        let mut table = txn.open_table(GROUPS)?;
        for entry in table.iter()? {
            if entry?.1.value().decode()?.name == name {
                return Err(ConsoleError::Conflict(format!("a group named {name:?} exists")));
            }
        }
        let id = next_id(&txn, SEQ_GROUP)?;
        let group =
            GroupRecordV1 { id, name: name.into(), description: description.into(), created_at: store.now_millis() };
        table.insert(id, Encoded::encode(&group))?;
        group
    };
    txn.commit()?;
    Ok(group)
}

pub fn update_group(
    store: &Store,
    id: u64,
    name: Option<String>,
    description: Option<String>,
) -> Result<GroupRecordV1> {
    let txn = super::write::begin(store)?;
    let group = {
        let mut table = txn.open_table(GROUPS)?;
        let mut group: GroupRecordV1 = match table.get(id)? {
            Some(g) => g.value().decode()?,
            None => return Err(ConsoleError::not_found(format_args!("group with id {id}"))),
        };
        if let Some(name) = name {
            check_name("a group name", &name)?;
            group.name = name;
        }
        if let Some(d) = description {
            group.description = d;
        }
        table.insert(id, Encoded::encode(&group))?;
        group
    };
    txn.commit()?;
    Ok(group)
}

/// Deletes a group; its devices are then in no group.
pub fn delete_group(store: &Store, id: u64) -> Result<()> {
    let txn = super::write::begin(store)?;
    {
        if txn.open_table(GROUPS)?.remove(id)?.is_none() {
            return Err(ConsoleError::not_found(format_args!("group with id {id}")));
        }
        let mut devices = txn.open_table(DEVICES)?;
        let members: Vec<DeviceRecordV1> = devices
            .iter()?
            .map(|e| e.map_err(DbError::from).and_then(|(_, v)| Ok(v.value().decode()?)))
            .collect::<std::result::Result<Vec<_>, DbError>>()?
            .into_iter()
            .filter(|d| d.group_id == Some(id))
            .collect();
        for mut d in members {
            d.group_id = None;
            devices.insert(d.id, Encoded::encode(&d))?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// The devices a task's schedule runs on (all devices when never set).
pub fn targets(store: &Store, task: u64) -> Result<TargetsV1> {
    let read = store.read()?;
    let got = read.open_table(TASK_TARGETS)?.get(task)?;
    Ok(got.map(|t| t.value().decode()).transpose()?.unwrap_or_default())
}

pub fn set_targets(store: &Store, task: u64, targets: &TargetsV1) -> Result<()> {
    let txn = super::write::begin(store)?;
    txn.open_table(TASK_TARGETS)?.insert(task, Encoded::encode(targets))?;
    txn.commit()?;
    Ok(())
}

/// Forgets when a task's schedule fired on each device (the schedule changed).
pub fn reset_schedule(store: &Store, task: u64) -> Result<()> {
    let txn = super::write::begin(store)?;
    txn.open_table(DEVICE_SCHEDULE)?.retain(|(t, _), _| t != task)?;
    txn.commit()?;
    Ok(())
}

/// Whether `targets` include `device`.
pub fn targets_device(targets: &TargetsV1, device: &DeviceRecordV1) -> bool {
    targets.all || targets.devices.contains(&device.id) || device.group_id.is_some_and(|g| targets.groups.contains(&g))
}

/// The enrolled devices `targets` name, by id.
pub fn resolve_targets(store: &Store, targets: &TargetsV1) -> Result<Vec<DeviceRecordV1>> {
    Ok(devices(store)?.into_iter().filter(|d| targets_device(targets, d)).collect())
}

/// Asks each device to run the task now (or at `not_before`); one job per device.
pub fn dispatch(
    store: &Store,
    task_id: u64,
    device_ids: &[u64],
    trigger: RunTrigger,
    not_before: Option<i64>,
) -> Result<Vec<JobRecordV1>> {
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let jobs = {
        let task = crate::store::tasks::get_task(&txn.open_table(crate::store::tables::TASKS)?, task_id)?
            .ok_or_else(|| ConsoleError::not_found(format_args!("task with id {task_id}")))?;
        let devices = txn.open_table(DEVICES)?;
        let mut jobs = Vec::new();
        let unique: BTreeSet<u64> = device_ids.iter().copied().collect();
        for device in unique {
            if devices.get(device)?.is_none() {
                return Err(ConsoleError::Invalid(format!("no device with id {device}")));
            }
            jobs.push(insert_job(&txn, &task, device, trigger, now, not_before)?);
        }
        jobs
    };
    txn.commit()?;
    Ok(jobs)
}

fn insert_job(
    txn: &WriteTransaction,
    task: &TaskRecordV1,
    device_id: u64,
    trigger: RunTrigger,
    now: i64,
    not_before: Option<i64>,
) -> Result<JobRecordV1> {
    let id = next_id(txn, SEQ_JOB)?;
    let job = JobRecordV1 {
        id,
        task_id: task.id,
        collection_version: task.collection_version,
        device_id,
        trigger,
        created_at: now,
        not_before,
        status: JobStatus::Pending,
        dispatched_at: None,
        done_at: None,
        run_id: None,
    };
    txn.open_table(JOBS)?.insert(id, Encoded::encode(&job))?;
    txn.open_table(OPEN_JOBS)?.insert((device_id, id), ())?;
    Ok(job)
}

/// Ends a job (done with its run, or cancelled) and takes it off the device's list.
pub(crate) fn close_job(
    txn: &WriteTransaction,
    device_id: u64,
    job_id: u64,
    status: JobStatus,
    now: i64,
    run_id: Option<u64>,
) -> Result<Option<JobRecordV1>> {
    txn.open_table(OPEN_JOBS)?.remove((device_id, job_id))?;
    let mut jobs = txn.open_table(JOBS)?;
    let current: Option<JobRecordV1> = jobs.get(job_id)?.map(|j| j.value().decode()).transpose()?;
    let Some(mut job) = current else { return Ok(None) };
    if matches!(job.status, JobStatus::Pending | JobStatus::Dispatched) {
        job.status = status;
        job.done_at = Some(now);
        job.run_id = run_id;
        jobs.insert(job_id, Encoded::encode(&job))?;
    }
    Ok(Some(job))
}

/// The device's jobs not yet reported, oldest first.
pub fn open_jobs(store: &Store, device_id: u64) -> Result<Vec<JobRecordV1>> {
    let read = store.read()?;
    let index = read.open_table(OPEN_JOBS)?;
    let jobs = read.open_table(JOBS)?;
    let mut out = Vec::new();
    for entry in index.range((device_id, 0)..=(device_id, u64::MAX))? {
        let id = entry?.0.value().1;
        if let Some(job) = jobs.get(id)? {
            out.push(job.value().decode()?);
        }
    }
    Ok(out)
}

/// Marks pending jobs of `device_id` as handed out; refused (nothing is
/// handed out) once the device is removed.
pub fn mark_dispatched(store: &Store, device_id: u64, job_ids: &[u64]) -> Result<()> {
    if job_ids.is_empty() {
        return Ok(());
    }
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    {
        if txn.open_table(DEVICES)?.get(device_id)?.is_none() {
            return Err(ConsoleError::Unauthorized);
        }
        let mut jobs = txn.open_table(JOBS)?;
        for &id in job_ids {
            let current: Option<JobRecordV1> = jobs.get(id)?.map(|j| j.value().decode()).transpose()?;
            if let Some(mut job) = current.filter(|j| j.status == JobStatus::Pending && j.device_id == device_id) {
                job.status = JobStatus::Dispatched;
                job.dispatched_at = Some(now);
                jobs.insert(id, Encoded::encode(&job))?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// Jobs, newest first: of one task, or all; at most `limit`.
pub fn jobs(store: &Store, task: Option<u64>, open_only: bool, limit: usize) -> Result<Vec<JobRecordV1>> {
    let read = store.read()?;
    let table = read.open_table(JOBS)?;
    let mut out = Vec::new();
    for entry in table.iter()?.rev() {
        let job: JobRecordV1 = entry?.1.value().decode()?;
        let open = matches!(job.status, JobStatus::Pending | JobStatus::Dispatched);
        if task.is_none_or(|t| job.task_id == t) && (!open_only || open) {
            out.push(job);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Cancels every open job of a task (it was deleted).
pub fn cancel_task_jobs(store: &Store, task_id: u64) -> Result<usize> {
    let open = jobs(store, Some(task_id), true, usize::MAX)?;
    if open.is_empty() {
        return Ok(0);
    }
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    for job in &open {
        close_job(&txn, job.device_id, job.id, JobStatus::Cancelled, now, None)?;
    }
    txn.open_table(TASK_TARGETS)?.remove(task_id)?;
    txn.open_table(DEVICE_SCHEDULE)?.retain(|(t, _), _| t != task_id)?;
    txn.commit()?;
    Ok(open.len())
}

/// Makes the jobs of `device` that its tasks' schedules call for: those due
/// before `now + horizon` (handed out early, to start at their time even if
/// the console is unreachable then), and the `agent-start` tasks when the
/// agent has just started. Missed occurrences collapse into one run.
/// Returns how many jobs were made.
pub fn schedule_jobs(
    store: &Store,
    device: &DeviceRecordV1,
    tz: &FixedOffset,
    agent_started: bool,
    horizon: chrono::Duration,
) -> Result<usize> {
    let now = store.clock().now();
    let now_ms = clock::to_millis(now);
    // First without writing: most polls find nothing due.
    let mut due: Vec<(TaskRecordV1, RunTrigger, Option<i64>, Option<i64>)> = Vec::new();
    {
        let tasks = store.tasks()?;
        let read = store.read()?;
        let targets_table = read.open_table(TASK_TARGETS)?;
        let fired = read.open_table(DEVICE_SCHEDULE)?;
        for task in tasks {
            if task.schedule == Schedule::Manual {
                continue;
            }
            let targets: TargetsV1 =
                targets_table.get(task.id)?.map(|t| t.value().decode()).transpose()?.unwrap_or_default();
            if !targets_device(&targets, device) {
                continue;
            }
            if task.schedule == Schedule::AgentStart {
                if agent_started {
                    due.push((task, RunTrigger::AgentStart, None, None));
                }
                continue;
            }
            let last = fired.get((task.id, device.id))?.map(|v| v.value());
            if let Some(at) = next_due(&task, last, tz) {
                if at <= now + horizon {
                    due.push((task, RunTrigger::Schedule, last, Some(clock::to_millis(at))));
                }
            }
        }
    }
    if due.is_empty() {
        return Ok(0);
    }
    let txn = super::write::begin(store)?;
    let mut made = 0;
    {
        // Read again in the writing transaction: a device removed since the
        // look above gets no job (and no schedule state).
        if txn.open_table(DEVICES)?.get(device.id)?.is_none() {
            return Err(ConsoleError::Unauthorized);
        }
        for (task, trigger, last_seen, at) in due {
            let mut fired = txn.open_table(DEVICE_SCHEDULE)?;
            if let Some(at) = at {
                // Another poll of this device may have made it meanwhile.
                if fired.get((task.id, device.id))?.map(|v| v.value()) != last_seen {
                    continue;
                }
                fired.insert((task.id, device.id), at.max(now_ms))?;
            }
            drop(fired);
            let not_before = at.filter(|&a| a > now_ms);
            insert_job(&txn, &task, device.id, trigger, now_ms, not_before)?;
            made += 1;
        }
    }
    txn.commit()?;
    Ok(made)
}

fn next_due(task: &TaskRecordV1, last_ms: Option<i64>, tz: &FixedOffset) -> Option<DateTime<Utc>> {
    task.schedule.next_due(clock::from_millis(task.created_at), last_ms.map(clock::from_millis), tz)
}

/// Deletes finished jobs, and the result keys of results received, before
/// `before` (ms, by the console's clock).
pub fn prune(store: &Store, before: i64) -> Result<u64> {
    let txn = super::write::begin(store)?;
    let mut n = 0u64;
    {
        txn.open_table(JOBS)?.retain(|_, j| {
            let keep = j
                .decode()
                .map(|j| matches!(j.status, JobStatus::Pending | JobStatus::Dispatched) || j.created_at >= before)
                .unwrap_or(false);
            n += u64::from(!keep);
            keep
        })?;
        txn.open_table(RESULT_KEYS)?.retain(|_, k| {
            let keep = k.decode().map(|k| k.received_at >= before).unwrap_or(false);
            n += u64::from(!keep);
            keep
        })?;
        // The store prunes runs that started before the same cutoff.
        txn.open_table(RUNS_BY_DEVICE_ID)?.retain(|(_, started, _), _| started >= before)?;
        txn.open_table(JOB_RESULTS)?.retain(|_, k| {
            let keep = k.decode().map(|k| k.received_at >= before).unwrap_or(false);
            n += u64::from(!keep);
            keep
        })?;
    }
    txn.commit()?;
    Ok(n)
}
