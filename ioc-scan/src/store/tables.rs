//! Every table of the store, in one place. Keys are ordered tuples so that
//! the indexes answer range queries; values are versioned records
//! ([`super::records`]) or plain redb types.
//!
//! Schema version 1. A new table, a new key layout or a new record version
//! raises [`SCHEMA_VERSION`] and adds a migration in `super::open`.

use super::codec::Json;
use super::records::{
    CollectionRecordV1, DetectionRecordV1, RunRecordV1, RunnerRecordV1, ScheduleStateV1,
    TaskRecordV1,
};
use redb::TableDefinition;

/// The layout this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// Key of the schema version in [`META`].
pub const META_SCHEMA_VERSION: &str = "schema_version";

/// File identity and layout: `schema_version` → N. Its presence is what makes
/// a redb file ours.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("ioc_scan_meta");

/// Id counters (`task`, `run`): ids are never reused, even after deletion or pruning.
pub const SEQUENCES: TableDefinition<&str, u64> = TableDefinition::new("sequences");

/// Task id → task.
pub const TASKS: TableDefinition<u64, Json<TaskRecordV1>> = TableDefinition::new("tasks");

/// (task id, collection version) → the immutable collection version.
pub const COLLECTIONS: TableDefinition<(u64, u32), Json<CollectionRecordV1>> =
    TableDefinition::new("collections");

/// sha256 (hex) → IOC file bytes exactly as uploaded; shared by every
/// collection version that holds an identical file.
pub const IOC_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("ioc_blobs");

/// sha256 (hex) → how many collection versions reference the blob.
pub const IOC_BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("ioc_blob_refs");

/// Run id → run (the row of the results table).
pub const RUNS: TableDefinition<u64, Json<RunRecordV1>> = TableDefinition::new("runs");

/// (run id, sequence) → one detection of the run, in the order found.
pub const RUN_DETECTIONS: TableDefinition<(u64, u32), Json<DetectionRecordV1>> =
    TableDefinition::new("run_detections");

/// Index: (device, start ms, run id) → (): one device's results by time.
pub const RUNS_BY_DEVICE: TableDefinition<(&str, i64, u64), ()> =
    TableDefinition::new("runs_by_device");

/// Index: (task id, start ms, run id) → (): one task's results by time.
pub const RUNS_BY_TASK: TableDefinition<(u64, i64, u64), ()> = TableDefinition::new("runs_by_task");

/// Index: (start ms, run id) → (): all results by time, oldest first (pruning, listing).
pub const RUNS_BY_START: TableDefinition<(i64, u64), ()> = TableDefinition::new("runs_by_start");

/// Run id → the process running it, for each run in status `running`.
pub const RUNNERS: TableDefinition<u64, Json<RunnerRecordV1>> = TableDefinition::new("runners");

/// Task id → when the agent last started it by its schedule.
pub const SCHEDULE_STATE: TableDefinition<u64, Json<ScheduleStateV1>> =
    TableDefinition::new("schedule_state");

/// Creates every table (in a new file's first transaction).
pub(crate) fn create_all(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(SEQUENCES)?;
    txn.open_table(TASKS)?;
    txn.open_table(COLLECTIONS)?;
    txn.open_table(IOC_BLOBS)?;
    txn.open_table(IOC_BLOB_REFS)?;
    txn.open_table(RUNS)?;
    txn.open_table(RUN_DETECTIONS)?;
    txn.open_table(RUNS_BY_DEVICE)?;
    txn.open_table(RUNS_BY_TASK)?;
    txn.open_table(RUNS_BY_START)?;
    txn.open_table(RUNNERS)?;
    txn.open_table(SCHEDULE_STATE)?;
    Ok(())
}
