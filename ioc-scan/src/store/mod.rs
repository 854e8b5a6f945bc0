//! Persistent state in one redb file: IOC Scan tasks with their versioned IOC
//! collections, runs (results) with their detections (alert details),
//! schedules, and retention.
//!
//! - [`tables`]: every table; [`records`]: the versioned record types.
//! - [`Store::open`] refuses foreign, damaged and newer files without writing
//!   to them, and marks runs whose process died as `interrupted`.
//! - Several processes may have the file open at once (redb's multi-writer
//!   mode): the agent keeps it open while a user lists results; writes are
//!   short transactions, and a writer that has to wait says for whom.

pub mod clock;
mod codec;
mod error;
mod liveness;
mod open;
mod prune;
pub mod records;
pub mod runs;
pub mod schedule;
pub mod tables;
pub mod tasks;
mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{DecodeError, Json, Record};
pub(crate) use codec::Encoded;
pub use error::{DbError, Holder, OpenError, PruneError, RunError, StoreError, TaskError};
pub use open::{OpenOptions, WaitNotice};
pub use prune::{PruneBudget, PruneReport, DEFAULT_RETENTION_DAYS};
pub use records::*;
pub use runs::{RunFilter, RunOutcome, RunStart, RunWriter};
pub use schedule::Schedule;
pub use tasks::{IocFile, NewCollection, NewTask};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open ioc-scan database.
pub struct Store {
    db: redb::Database,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    /// How long a write waits for another process's write transaction.
    wait: Duration,
    on_wait: Option<open::WaitNotice>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// Begins a write transaction, waiting (with backoff) while another
    /// process writes, telling `on_wait` once who that is, and giving up
    /// after the configured wait with [`OpenError::InUse`].
    pub(crate) fn write(&self) -> Result<redb::WriteTransaction, DbError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut told = false;
        loop {
            match self.db.try_begin_write() {
                Ok(txn) => return Ok(txn),
                Err(redb::TransactionError::WouldBlock) => {}
                Err(e) => return Err(e.into()),
            }
            let waited = start.elapsed();
            if waited >= self.wait {
                return Err(DbError::Busy {
                    path: self.path.clone(),
                    holders: liveness::lock_holders(&self.path),
                    waited_secs: waited.as_secs(),
                });
            }
            if !told && waited >= Duration::from_secs(1) {
                told = true;
                if let Some(on_wait) = &self.on_wait {
                    on_wait(&liveness::lock_holders(&self.path));
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    pub(crate) fn read(&self) -> Result<redb::ReadTransaction, DbError> {
        use redb::ReadableDatabase;
        Ok(self.db.begin_read()?)
    }

    pub(crate) fn now_millis(&self) -> i64 {
        clock::to_millis(self.clock.now())
    }

    /// Checks that indexes, records and references agree; returns the
    /// problems found (empty when consistent). For tests and `--verify`.
    pub fn check_consistency(&self) -> Result<Vec<String>, DbError> {
        verify::check(self)
    }
}

/// The next id of a sequence (1, 2, ...), never reused.
pub(crate) fn next_id(txn: &redb::WriteTransaction, sequence: &str) -> Result<u64, DbError> {
    use redb::ReadableTable;
    let mut seq = txn.open_table(tables::SEQUENCES)?;
    let next = seq.get(sequence)?.map(|v| v.value()).unwrap_or(0) + 1;
    seq.insert(sequence, next)?;
    Ok(next)
}
