//! Opening the database file: create a new one, or check that an existing
//! one is ours and not newer than us before writing anything to it.
//!
//! An existing file is first opened read-only and checked (redb header, our
//! `ioc_scan_meta` table, schema version); only then is it opened for
//! writing. A file that is not redb, a redb file of another program and a
//! newer schema are refused and their bytes stay as they were. (A redb file
//! left mid-transaction by a crash cannot be opened read-only: redb repairs it
//! on the writable open, and the check follows.)

use super::clock::{Clock, SystemClock};
use super::error::{DbError, Holder, OpenError};
use super::liveness;
use super::records::RunStatus;
use super::tables::{self, META, META_SCHEMA_VERSION, SCHEMA_VERSION};
use super::Store;
use redb::{ConcurrencyMode, DatabaseError, ReadableDatabase, ReadableTable, TableError};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Told who holds the database when a wait begins.
pub type WaitNotice = Arc<dyn Fn(&[Holder]) + Send + Sync>;

/// How to open the store.
#[derive(Clone)]
pub struct OpenOptions {
    pub clock: Arc<dyn Clock>,
    /// How long to wait for a process that holds the file exclusively, or
    /// that is in a write transaction, before giving up.
    pub wait: Duration,
    /// Told once, after a second of waiting, who holds the database.
    pub on_wait: Option<WaitNotice>,
    /// redb page cache size.
    pub cache_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            clock: Arc::new(SystemClock),
            wait: Duration::from_secs(10),
            on_wait: None,
            cache_bytes: 64 << 20,
        }
    }
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// What the check of an existing file found.
enum Found {
    Ours,
    /// A redb file without any table: safe to initialize.
    Empty,
}

impl Store {
    /// Opens the database at `path`, creating it (and its folder) if it does
    /// not exist or is an empty file. Runs whose process is gone are marked
    /// `interrupted`. Pruning is separate: [`Store::prune`].
    pub fn open(path: impl AsRef<Path>, options: OpenOptions) -> Result<Store, OpenError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        let fresh = match std::fs::metadata(&path) {
            Ok(meta) => meta.len() == 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(io(e)),
        };
        if fresh {
            // Results say where a host is compromised: owner-only folder and file.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io)?;
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        } else {
            // Check before any writable open touches the file.
            match with_retry(&path, &options, |b| b.open_read_only(&path)) {
                Ok(ro) => {
                    check(&path, &ro)?;
                    drop(ro);
                }
                // Left mid-transaction by a crash: only a writable open repairs it.
                Err(OpenError::NotRedb { .. }) if needs_repair(&path, &options) => {}
                Err(e) => return Err(e),
            }
        }
        let db = with_retry(&path, &options, |b| {
            if fresh {
                b.create(&path)
            } else {
                b.open(&path)
            }
        })?;
        let store = Store {
            db,
            path: path.clone(),
            clock: options.clock.clone(),
            wait: options.wait,
            on_wait: options.on_wait.clone(),
        };
        let db_err = |source| OpenError::Db {
            path: path.clone(),
            source,
        };
        let found = {
            let read = store.db.begin_read().map_err(|e| db_err(e.into()))?;
            check_txn(&path, &read)?
        };
        if let Found::Empty = found {
            store.initialize().map_err(db_err)?;
        }
        store.mark_interrupted().map_err(db_err)?;
        Ok(store)
    }

    /// Creates the tables and the schema version in a redb file that has no
    /// table (re-checked inside the transaction: two processes may race here).
    fn initialize(&self) -> Result<(), DbError> {
        let txn = self.write()?;
        let untouched =
            txn.list_tables()?.next().is_none() && txn.list_multimap_tables()?.next().is_none();
        if untouched {
            tables::create_all(&txn)?;
            txn.open_table(META)?
                .insert(META_SCHEMA_VERSION, SCHEMA_VERSION)?;
            txn.commit()?;
        }
        Ok(())
    }

    /// Marks `running` runs whose process is gone (killed, crashed, rebooted)
    /// as `interrupted`. Returns how many.
    pub fn mark_interrupted(&self) -> Result<usize, DbError> {
        let dead: Vec<u64> = {
            let read = self.read()?;
            let runners = read.open_table(tables::RUNNERS)?;
            let mut dead = Vec::new();
            for entry in runners.iter()? {
                let (id, runner) = entry?;
                if !liveness::is_alive(&runner.value().decode()?) {
                    dead.push(id.value());
                }
            }
            dead
        };
        if dead.is_empty() {
            return Ok(0);
        }
        let txn = self.write()?;
        let mut marked = 0;
        {
            let mut runners = txn.open_table(tables::RUNNERS)?;
            let mut runs = txn.open_table(tables::RUNS)?;
            for id in dead {
                // Re-checked in the transaction: another process may have done it.
                let Some(runner) = runners.remove(id)?.map(|r| r.value().decode()) else {
                    continue;
                };
                if liveness::is_alive(&runner?) {
                    continue;
                }
                let run = runs.get(id)?.map(|r| r.value().decode()).transpose()?;
                if let Some(mut run) = run.filter(|r| r.status == RunStatus::Running) {
                    run.status = RunStatus::Interrupted;
                    runs.insert(id, super::codec::Encoded::encode(&run))?;
                    marked += 1;
                }
            }
        }
        txn.commit()?;
        Ok(marked)
    }
}

/// Opens with `open`, retrying with backoff while another process holds the
/// file exclusively; maps redb's refusals to clear errors. A panic inside
/// redb on a damaged file is reported as a damaged file.
fn with_retry<T>(
    path: &Path,
    options: &OpenOptions,
    open: impl Fn(&redb::Builder) -> Result<T, DatabaseError>,
) -> Result<T, OpenError> {
    let mut builder = redb::Builder::new();
    builder
        .set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .set_cache_size(options.cache_bytes);
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    let mut told = false;
    loop {
        let result = catch_unwind(AssertUnwindSafe(|| open(&builder)));
        let err = match result {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => e,
            Err(_) => return Err(not_redb(path, "redb could not read it".into())),
        };
        match err {
            DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                let waited = start.elapsed();
                if waited >= options.wait {
                    return Err(OpenError::InUse {
                        path: path.to_path_buf(),
                        holder: liveness::lock_holders(path).into_iter().next(),
                        waited_secs: waited.as_secs(),
                    });
                }
                if !told && waited >= Duration::from_secs(1) {
                    told = true;
                    if let Some(on_wait) = &options.on_wait {
                        on_wait(&liveness::lock_holders(path));
                    }
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            // redb reports a bad header (magic number, truncated file) as invalid data.
            DatabaseError::Storage(redb::StorageError::Io(source))
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(not_redb(path, source.to_string()))
            }
            DatabaseError::Storage(redb::StorageError::Io(source)) => {
                return Err(OpenError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
            DatabaseError::UpgradeRequired(v) => {
                return Err(not_redb(
                    path,
                    format!("written in redb file format {v}, which this build cannot read"),
                ))
            }
            other => return Err(not_redb(path, other.to_string())),
        }
    }
}

fn not_redb(path: &Path, detail: String) -> OpenError {
    OpenError::NotRedb {
        path: path.to_path_buf(),
        detail,
    }
}

/// Whether a read-only open failed only because the file needs redb's crash
/// repair (which a writable open does).
fn needs_repair(path: &Path, options: &OpenOptions) -> bool {
    let mut builder = redb::Builder::new();
    builder
        .set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .set_cache_size(options.cache_bytes);
    matches!(
        catch_unwind(AssertUnwindSafe(|| builder.open_read_only(path))),
        Ok(Err(DatabaseError::RepairAborted))
    )
}

fn check(path: &Path, db: &redb::ReadOnlyDatabase) -> Result<Found, OpenError> {
    let read = db.begin_read().map_err(|e| OpenError::Db {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    check_txn(path, &read)
}

/// Is this redb file ours, and of a schema version we read?
fn check_txn(path: &Path, read: &redb::ReadTransaction) -> Result<Found, OpenError> {
    let path: PathBuf = path.to_path_buf();
    let db_err = |source: DbError| OpenError::Db {
        path: path.clone(),
        source,
    };
    let meta = match read.open_table(META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            let empty = read
                .list_tables()
                .map_err(|e| db_err(e.into()))?
                .next()
                .is_none()
                && read
                    .list_multimap_tables()
                    .map_err(|e| db_err(e.into()))?
                    .next()
                    .is_none();
            return if empty {
                Ok(Found::Empty)
            } else {
                Err(OpenError::Foreign { path })
            };
        }
        Err(TableError::TableTypeMismatch { .. } | TableError::TableIsMultimap(_)) => {
            return Err(OpenError::Foreign { path })
        }
        Err(e) => return Err(db_err(e.into())),
    };
    let version = meta
        .get(META_SCHEMA_VERSION)
        .map_err(|e| db_err(e.into()))?
        .map(|v| v.value());
    match version {
        None | Some(0) => Err(OpenError::Foreign { path }),
        Some(v) if v > SCHEMA_VERSION => Err(OpenError::TooNew {
            path,
            found: v,
            supported: SCHEMA_VERSION,
        }),
        // Version 1 is the first layout: nothing to migrate from yet.
        Some(_) => Ok(Found::Ours),
    }
}
