//! Orders to a device that are not scans (for now: lift its network
//! isolation): asked by a person, handed to the device with its jobs
//! (`commands` of the jobs answer), reported done or failed by the device.
//! A command stays open, handed out at each poll, until its report comes:
//! carrying one out twice must be harmless (lifting an isolation is).
//!
//! Its own table (created on first use), so older databases need nothing.

use super::error::{ConsoleError, Result};
use super::protocol::{CommandKind, CommandReport, DeviceCommand};
use super::tables::DEVICES;
use crate::store::{next_id, Encoded, Json, Record, Store};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// (device id, command id) → command.
const COMMANDS: TableDefinition<(u64, u64), Json<CommandRecordV1>> = TableDefinition::new("console_device_commands");
const SEQ_COMMAND: &str = "console_command";
/// Most commands kept per device (the oldest finished ones go first).
const MAX_PER_DEVICE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandStatus {
    /// Waiting for the device's report.
    Open,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecordV1 {
    pub id: u64,
    pub device_id: u64,
    pub kind: CommandKind,
    /// Who asked (user name).
    pub requested_by: String,
    pub requested_at: i64,
    pub status: CommandStatus,
    pub done_at: Option<i64>,
    /// What the device said.
    pub detail: Option<String>,
}
impl Record for CommandRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::CommandRecordV1";
}

/// Asks device `device_id` to carry out `kind`. One open command of a kind
/// per device: asking again while one is open returns that one.
pub fn request(store: &Store, device_id: u64, kind: CommandKind, requested_by: &str) -> Result<CommandRecordV1> {
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let record = {
        if txn.open_table(DEVICES)?.get(device_id)?.is_none() {
            return Err(ConsoleError::not_found(format_args!("device with id {device_id}")));
        }
        let mut table = txn.open_table(COMMANDS)?;
        let mut mine = Vec::new();
        for entry in table.range((device_id, 0)..=(device_id, u64::MAX))? {
            let c: CommandRecordV1 = entry?.1.value().decode()?;
            mine.push(c);
        }
        if let Some(open) = mine.iter().find(|c| c.kind == kind && c.status == CommandStatus::Open) {
            return Ok(open.clone());
        }
        // Bounded history: the oldest finished ones go.
        let finished: Vec<u64> = mine.iter().filter(|c| c.status != CommandStatus::Open).map(|c| c.id).collect();
        for id in finished.iter().take((mine.len() + 1).saturating_sub(MAX_PER_DEVICE)) {
            table.remove((device_id, *id))?;
        }
        let record = CommandRecordV1 {
            id: next_id(&txn, SEQ_COMMAND)?,
            device_id,
            kind,
            requested_by: requested_by.chars().take(256).collect(),
            requested_at: now,
            status: CommandStatus::Open,
            done_at: None,
            detail: None,
        };
        table.insert((device_id, record.id), Encoded::encode(&record))?;
        record
    };
    txn.commit()?;
    Ok(record)
}

/// The device's commands, oldest first.
pub fn of_device(store: &Store, device_id: u64) -> Result<Vec<CommandRecordV1>> {
    let read = store.read()?;
    let table = match read.open_table(COMMANDS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in table.range((device_id, 0)..=(device_id, u64::MAX))? {
        out.push(entry?.1.value().decode()?);
    }
    Ok(out)
}

/// The device's open commands, as handed to its agent.
pub fn open_for_agent(store: &Store, device_id: u64) -> Result<Vec<DeviceCommand>> {
    Ok(of_device(store, device_id)?
        .into_iter()
        .filter(|c| c.status == CommandStatus::Open)
        .map(|c| DeviceCommand { id: c.id, kind: c.kind, requested_at: c.requested_at })
        .collect())
}

/// The device's report of command `id` (its own commands only). A second
/// report of a finished command changes nothing.
pub fn report(store: &Store, device_id: u64, id: u64, report: &CommandReport) -> Result<CommandRecordV1> {
    let status = match report.outcome.as_str() {
        "done" => CommandStatus::Done,
        "failed" => CommandStatus::Failed,
        other => return Err(ConsoleError::Invalid(format!("outcome {other:?}: expected done or failed"))),
    };
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let record = {
        let mut table = txn.open_table(COMMANDS)?;
        let current: Option<CommandRecordV1> = table.get((device_id, id))?.map(|v| v.value().decode()).transpose()?;
        let mut record = current.ok_or_else(|| ConsoleError::not_found(format_args!("command {id} of this device")))?;
        if record.status == CommandStatus::Open {
            record.status = status;
            record.done_at = Some(now);
            record.detail = report.detail.as_ref().map(|d| d.chars().take(2048).collect());
            table.insert((device_id, id), Encoded::encode(&record))?;
        }
        record
    };
    txn.commit()?;
    Ok(record)
}
