//! Errors of the store, one enum per operation, each convertible into
//! [`StoreError`] (as redb does with its own errors).

use super::codec::DecodeError;
use std::path::PathBuf;

/// A failure of the database underneath (I/O, redb) or a damaged record.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Redb(#[from] redb::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("damaged database: {0}")]
    Inconsistent(String),
    #[error("{path}: gave up after waiting {waited_secs} s for another process to finish writing{}", holders_suffix(.holders))]
    Busy {
        path: PathBuf,
        holders: Vec<Holder>,
        waited_secs: u64,
    },
}

fn holders_suffix(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return String::new();
    }
    let who: Vec<String> = holders.iter().map(|h| h.to_string()).collect();
    format!(" (database in use by {})", who.join(", "))
}

macro_rules! into_db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(e.into())
            }
        }
    )*};
}
into_db_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Who holds the database when we could not get in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The process's command name (`ioc-scan`), if readable.
    pub command: Option<String>,
    /// The subcommand (`agent`, `task`...) if it is an ioc-scan.
    pub subcommand: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)?;
        match (&self.command, &self.subcommand) {
            (_, Some(sub)) => write!(f, " ({sub})"),
            (Some(cmd), None) => write!(f, " ({cmd})"),
            (None, None) => Ok(()),
        }
    }
}

fn holder_suffix(holder: &Option<Holder>) -> String {
    holder
        .as_ref()
        .map(|h| format!(" by {h}"))
        .unwrap_or_default()
}

/// Opening (or creating) the database file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an ioc-scan database (not a redb file, or damaged: {detail}); the file was left unchanged")]
    NotRedb { path: PathBuf, detail: String },
    #[error("{path}: a redb database of another program (no ioc-scan metadata); the file was left unchanged")]
    Foreign { path: PathBuf },
    #[error("{path}: database schema version {found} is newer than this ioc-scan supports ({supported}); upgrade ioc-scan")]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("{path}: the database is in use{}, gave up after waiting {waited_secs} s", holder_suffix(.holder))]
    InUse {
        path: PathBuf,
        holder: Option<Holder>,
        waited_secs: u64,
    },
    #[error("{path}: {source}")]
    Db { path: PathBuf, source: DbError },
}

/// Creating, editing, reading or deleting a task.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task with id {0}")]
    NotFound(u64),
    #[error("task {task} has no collection version {version}")]
    NoSuchVersion { task: u64, version: u32 },
    #[error("a task needs at least one IOC file")]
    NoIocFiles,
    #[error("duplicate IOC id {id}: in {first} and in {second}")]
    DuplicateIoc {
        id: String,
        first: String,
        second: String,
    },
    #[error("two IOC files are named {0}")]
    DuplicateFileName(String),
    #[error("task name must not be empty")]
    EmptyName,
    #[error(transparent)]
    MonitorTooLong(#[from] super::records::MonitorTooLong),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Recording or reading a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no run with id {0}")]
    NotFound(u64),
    #[error("no task with id {0}")]
    TaskNotFound(u64),
    #[error("run {0} is already finished")]
    Finished(u64),
    #[error("run {id} uses collection version {version} of task {task}, which is missing")]
    MissingCollection { id: u64, task: u64, version: u32 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A pruning pass.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Any error of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error(transparent)]
    Db(#[from] DbError),
}

macro_rules! via_db_error {
    ($($target:ty),*) => {$(
        impl From<redb::Error> for $target { fn from(e: redb::Error) -> Self { DbError::from(e).into() } }
        impl From<redb::TransactionError> for $target { fn from(e: redb::TransactionError) -> Self { DbError::from(e).into() } }
        impl From<redb::TableError> for $target { fn from(e: redb::TableError) -> Self { DbError::from(e).into() } }
        impl From<redb::StorageError> for $target { fn from(e: redb::StorageError) -> Self { DbError::from(e).into() } }
        impl From<redb::CommitError> for $target { fn from(e: redb::CommitError) -> Self { DbError::from(e).into() } }
        impl From<DecodeError> for $target { fn from(e: DecodeError) -> Self { DbError::from(e).into() } }
    )*};
}
via_db_error!(TaskError, RunError, PruneError);
