//! The quarantine store: verified copies of detected files with their
//! metadata, never executable, in a root-only directory.
//!
//! ```text
//! DIR/                  0700
//!   objects/SHA256      0400  the content, named by its sha256 (one copy per content)
//!   records/ID.json     0600  one per quarantined file: original path (raw bytes),
//!                             size, mode, owner, times, sha256, detection, time
//!   tmp/                      copies and records being written
//! ```
//!
//! A copy is written to `tmp/`, fsynced, checked against what detection saw
//! (sha256, size, mtime) and against the original's metadata before and
//! after copying (a file changing while copied is refused), renamed into
//! `objects/`, read back and hashed again, and only then is its record
//! written (temp + fsync + rename). The original is only read. Killed at any
//! point, the store holds at most a stray temp file or an unreferenced
//! object (both harmless, cleaned by [`QuarantineStore::open`]), never a
//! record without its verified object.

use super::fsx::{self, escape, locate, LocateError, Located};
use super::target::{FileFacts, Target};
use super::{test_pause, Action, ActionRecord, Outcome, ResponseContext};
use crate::eval::Detection;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, futimens, FileStat, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fsync, unlinkat, Gid, Uid, UnlinkatFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Where the store lives unless told: `IOC_SCAN_QUARANTINE_DIR`, else
/// /var/lib/ioc-scan/quarantine.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("IOC_SCAN_QUARANTINE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/var/lib/ioc-scan/quarantine"),
    }
}

/// Records larger than this are not read (a record is ~1 KiB plus twice
/// the path length; paths are at most a few tens of KiB).
const MAX_RECORD_BYTES: u64 = 4 << 20;
/// Temp files older than this are leftovers of a killed process.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);

/// A time as stat(2) gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTime {
    pub sec: i64,
    pub nsec: i64,
}

/// What detection said, as kept with the copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionInfo {
    pub ioc_id: String,
    pub ioc_name: String,
    pub matched_items: Vec<String>,
    pub object: serde_json::Value,
}

impl DetectionInfo {
    pub fn of(d: &Detection) -> DetectionInfo {
        DetectionInfo {
            ioc_id: d.ioc_id.clone(),
            ioc_name: d.ioc_name.clone(),
            matched_items: d.matched_items.clone(),
            object: serde_json::to_value(&d.object).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The metadata record of one quarantined file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// Layout version of this record (1).
    pub version: u32,
    pub id: String,
    /// The original path's raw bytes, hex (what restore uses).
    pub original_path_hex: String,
    /// The original path for display (escaped).
    pub original_path: String,
    /// Lowercase hex; also the object's name.
    pub sha256: String,
    pub size: u64,
    /// The full st_mode (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: FileTime,
    pub mtime: FileTime,
    /// Noted only: restore cannot set it.
    pub ctime: FileTime,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub detection: Option<DetectionInfo>,
    /// RFC 3339, UTC.
    pub quarantined_at: String,
}

impl QuarantineRecord {
    pub fn original_path_bytes(&self) -> Vec<u8> {
        hex::decode(&self.original_path_hex).unwrap_or_default()
    }
}

/// Why a quarantine operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("{path}: {source}")]
    Locate { path: String, source: LocateError },
    #[error("{path}: not found (gone since detection)")]
    Gone { path: String },
    #[error("{path}: not a regular file")]
    NotRegular { path: String },
    #[error("{path}: {size} bytes, larger than the quarantine limit of {max}")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{path}: {reason}")]
    Changed { path: String, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("the stored copy {path} does not verify: sha256 {found}, expected {expected}")]
    Damaged {
        path: String,
        expected: String,
        found: String,
    },
    #[error("no quarantined file with id {0:?}")]
    NotFound(String),
    #[error("{path} exists with other content (use --force to overwrite)")]
    Exists { path: String },
    #[error("record {path}: {reason}")]
    Record { path: String, reason: String },
}

impl QuarantineError {
    /// Refused: nothing was tried because the object is not what was
    /// detected or not safe to act on; Failed: tried, and it did not work.
    pub fn outcome(&self) -> Outcome {
        use QuarantineError::*;
        match self {
            Locate { .. }
            | Gone { .. }
            | NotRegular { .. }
            | TooLarge { .. }
            | Changed { .. }
            | Exists { .. }
            | NotFound(_) => Outcome::Refused(self.to_string()),
            Store { .. } | Io { .. } | Damaged { .. } | Record { .. } => Outcome::Failed(self.to_string()),
        }
    }
}

fn io_err(op: &'static str, path: impl AsRef<[u8]>) -> impl FnOnce(io::Error) -> QuarantineError {
    let path = escape(path.as_ref());
    move |source| QuarantineError::Io { op, path, source }
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn time_of(sec: i64, nsec: i64) -> FileTime {
    FileTime { sec, nsec }
}

/// A copy in the store.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub record: QuarantineRecord,
    /// It was already there (same path, same content): nothing was written.
    pub already: bool,
}

/// How a restore went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The content was written back.
    Written,
    /// The same content was already there; its mode, owner and times were set.
    AlreadyInPlace,
}

/// An open quarantine store.
#[derive(Debug)]
pub struct QuarantineStore {
    dir: PathBuf,
}

fn ensure_private_dir(path: &Path) -> Result<(), QuarantineError> {
    let store_err = |reason: String| QuarantineError::Store {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(store_err(format!("creating: {e}"))),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| store_err(e.to_string()))?;
    if !meta.is_dir() {
        return Err(store_err("not a directory (a symlink is not followed)".into()));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(store_err(format!(
            "owned by uid {}, not by this user (uid {me}): not used",
            meta.uid()
        )));
    }
    if meta.mode() & 0o7777 != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| store_err(format!("chmod 0700: {e}")))?;
    }
    Ok(())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other process or call of this one uses.
fn unique(seed: &[u8]) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(seed);
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hex::encode(&h.finalize()[..8])
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Write all of `data`, retrying on EINTR.
fn write_all_at(file: &File, mut data: &[u8], mut off: u64) -> io::Result<()> {
    while !data.is_empty() {
        match file.write_at(data, off) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) => {
                data = &data[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copy `src` to `dst` from offset 0, hashing what is copied; at most
/// `limit` bytes (a file growing meanwhile is caught by the caller).
fn copy_hashing(src: &File, dst: &File, limit: u64) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; fsx::CHUNK];
    let mut off = 0u64;
    while off < limit {
        let want = buf.len().min((limit - off) as usize);
        let n = match src.read_at(&mut buf[..want], off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        write_all_at(dst, &buf[..n], off)?;
        off += n as u64;
    }
    Ok((hasher.finalize().into(), off))
}

/// The same file, unchanged: inode, size and modification/change times.
fn same_version(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev
        && a.st_ino == b.st_ino
        && a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
        && a.st_ctime == b.st_ctime
        && a.st_ctime_nsec == b.st_ctime_nsec
}

/// Open the file at `path` (raw bytes) for reading, refusing what is not
/// a regular file.
pub(crate) fn open_original(path: &[u8]) -> Result<(Located, File, FileStat), QuarantineError> {
    let shown = escape(path);
    let loc = locate(path).map_err(|source| match &source {
        LocateError::Dir { source: e, .. } if e.raw_os_error() == Some(libc::ENOENT) => {
            QuarantineError::Gone { path: shown.clone() }
        }
        _ => QuarantineError::Locate {
            path: shown.clone(),
            source,
        },
    })?;
    match loc.lstat() {
        Err(Errno::ENOENT) => return Err(QuarantineError::Gone { path: shown }),
        Err(e) => return Err(io_err("stat", path)(errno_io(e))),
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => {
            return Err(QuarantineError::NotRegular { path: shown })
        }
        Ok(_) => {}
    }
    let (file, st) = loc.open_regular().map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => QuarantineError::Gone { path: shown.clone() },
        Some(libc::ELOOP) => QuarantineError::NotRegular { path: shown.clone() },
        _ if e.kind() == io::ErrorKind::Other => QuarantineError::NotRegular { path: shown.clone() },
        _ => io_err("open", path)(e),
    })?;
    Ok((loc, file, st))
}

impl QuarantineStore {
    /// Open the store at `dir`, creating it (0700, owned by this user) if
    /// needed. A store owned by someone else is refused. Stale temp files
    /// of killed processes are removed.
    pub fn open(dir: &Path) -> Result<QuarantineStore, QuarantineError> {
        if let Some(parent) = dir.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| QuarantineError::Store {
                        path: dir.display().to_string(),
                        reason: format!("creating {}: {e}", parent.display()),
                    })?;
            }
        }
        ensure_private_dir(dir)?;
        for sub in ["objects", "records", "tmp"] {
            ensure_private_dir(&dir.join(sub))?;
        }
        let store = QuarantineStore { dir: dir.to_path_buf() };
        store.clean_temp();
        Ok(store)
    }

    /// Open an existing store without creating anything (for listing).
    pub fn open_existing(dir: &Path) -> Result<QuarantineStore, QuarantineError> {
        if !dir.join("records").is_dir() {
            return Err(QuarantineError::Store {
                path: dir.display().to_string(),
                reason: "no quarantine store here".into(),
            });
        }
        Ok(QuarantineStore { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored copy of a content.
    pub fn object_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir.join("objects").join(sha256_hex)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join("records").join(format!("{id}.json"))
    }

    fn clean_temp(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("tmp")) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TEMP));
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Copy the file at `path` into the store (see the module docs), unless
    /// it differs from what detection saw (`expect`). Idempotent: the same
    /// path with the same content already stored returns that record.
    pub fn put(
        &self,
        path: &[u8],
        expect: Option<&FileFacts>,
        detection: Option<DetectionInfo>,
        max_bytes: u64,
    ) -> Result<Quarantined, QuarantineError> {
        let shown = escape(path);
        let (_loc, src, before) = open_original(path)?;
        let size = before.st_size as u64;
        if size > max_bytes {
            return Err(QuarantineError::TooLarge {
                path: shown,
                size,
                max: max_bytes,
            });
        }
        let tmp_path = self.dir.join("tmp").join(format!("{}.part", unique(path)));
        let tmp = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp_path)
            .map_err(io_err("creating", tmp_path.as_os_str().as_encoded_bytes()))?;
        // From here on, the temp file goes away on every early return.
        let cleanup = TempGuard(Some(tmp_path.clone()));
        let (sha, copied) = copy_hashing(&src, &tmp, size.saturating_add(1)).map_err(|e| QuarantineError::Io {
            op: "copying into the quarantine store",
            path: shown.clone(),
            source: e,
        })?;
        tmp.sync_all()
            .map_err(io_err("fsync", tmp_path.as_os_str().as_encoded_bytes()))?;
        drop(tmp);
        test_pause("copy");
        let after = fstat(src.as_fd()).map_err(|e| io_err("stat", path)(errno_io(e)))?;
        if !same_version(&before, &after) || copied != size {
            return Err(QuarantineError::Changed {
                path: shown,
                reason: "changed while being copied".into(),
            });
        }
        if let Some(facts) = expect {
            if let Some(reason) = facts.changed(&sha, size, before.st_mtime) {
                return Err(QuarantineError::Changed { path: shown, reason });
            }
        }
        let sha_hex = hex::encode(sha);
        if let Some(existing) = self.find(path, &sha_hex) {
            if self.verify(&existing).is_ok() {
                return Ok(Quarantined {
                    record: existing,
                    already: true,
                });
            }
        }
        let object = self.object_path(&sha_hex);
        let existed = object.exists();
        std::fs::rename(&tmp_path, &object).map_err(io_err("renaming into", object.as_os_str().as_encoded_bytes()))?;
        cleanup.disarm();
        sync_path(&self.dir.join("objects"))?;
        test_pause("object");
        let remove_new_object = || {
            if !existed {
                let _ = std::fs::remove_file(&object);
            }
        };
        // Read back what is stored: the copy must be the detected content.
        if let Err(e) = self.verify_object(&sha_hex, size) {
            remove_new_object();
            return Err(e);
        }
        let record = QuarantineRecord {
            version: 1,
            id: unique(sha_hex.as_bytes()),
            original_path_hex: hex::encode(path),
            original_path: shown,
            sha256: sha_hex,
            size,
            mode: before.st_mode,
            uid: before.st_uid,
            gid: before.st_gid,
            atime: time_of(before.st_atime, before.st_atime_nsec),
            mtime: time_of(before.st_mtime, before.st_mtime_nsec),
            ctime: time_of(before.st_ctime, before.st_ctime_nsec),
            dev: before.st_dev,
            ino: before.st_ino,
            nlink: before.st_nlink,
            detection,
            quarantined_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        if let Err(e) = self.write_record(&record) {
            remove_new_object();
            return Err(e);
        }
        test_pause("quarantine");
        Ok(Quarantined { record, already: false })
    }

    fn write_record(&self, record: &QuarantineRecord) -> Result<(), QuarantineError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| QuarantineError::Record {
            path: record.id.clone(),
            reason: e.to_string(),
        })?;
        let tmp_path = self.dir.join("tmp").join(format!("{}.json.part", record.id));
        let guard = TempGuard(Some(tmp_path.clone()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp_path)
            .map_err(io_err("creating", tmp_path.as_os_str().as_encoded_bytes()))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(io_err("writing", tmp_path.as_os_str().as_encoded_bytes()))?;
        drop(f);
        let dest = self.record_path(&record.id);
        let records = open_dir(&self.dir.join("records"))?;
        let tmp_dir = open_dir(&self.dir.join("tmp"))?;
        let tmp_name = CString::new(format!("{}.json.part", record.id))
            .map_err(|_| QuarantineError::NotFound(record.id.clone()))?;
        let dest_name =
            CString::new(format!("{}.json", record.id)).map_err(|_| QuarantineError::NotFound(record.id.clone()))?;
        renameat2(
            tmp_dir.as_fd(),
            tmp_name.as_c_str(),
            records.as_fd(),
            dest_name.as_c_str(),
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| io_err("renaming into", dest.as_os_str().as_encoded_bytes())(errno_io(e)))?;
        guard.disarm();
        fsync(records.as_fd()).map_err(|e| io_err("fsync", b"records")(errno_io(e)))?;
        Ok(())
    }

    /// Every record, oldest first; unreadable records are returned apart.
    pub fn list(&self) -> Result<(Vec<QuarantineRecord>, Vec<QuarantineError>), QuarantineError> {
        let dir = self.dir.join("records");
        let entries = std::fs::read_dir(&dir).map_err(io_err("listing", dir.as_os_str().as_encoded_bytes()))?;
        let mut records = Vec::new();
        let mut bad = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            match self.get(id) {
                Ok(r) => records.push(r),
                Err(err) => bad.push(err),
            }
        }
        records.sort_by(|a, b| a.quarantined_at.cmp(&b.quarantined_at).then(a.id.cmp(&b.id)));
        Ok((records, bad))
    }

    /// One record by id.
    pub fn get(&self, id: &str) -> Result<QuarantineRecord, QuarantineError> {
        if !valid_id(id) {
            return Err(QuarantineError::NotFound(id.into()));
        }
        let path = self.record_path(id);
        let shown = path.display().to_string();
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(QuarantineError::NotFound(id.into())),
            Err(e) => {
                return Err(QuarantineError::Io {
                    op: "reading",
                    path: shown,
                    source: e,
                })
            }
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(f, MAX_RECORD_BYTES), &mut bytes).map_err(|e| {
            QuarantineError::Io {
                op: "reading",
                path: shown.clone(),
                source: e,
            }
        })?;
        let record: QuarantineRecord = serde_json::from_slice(&bytes).map_err(|e| QuarantineError::Record {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if record.id != id || hex::decode(&record.sha256).map(|b| b.len()) != Ok(32) {
            return Err(QuarantineError::Record {
                path: shown,
                reason: "id or sha256 malformed".into(),
            });
        }
        Ok(record)
    }

    /// The record of `path` with this content, if quarantined already.
    pub fn find(&self, path: &[u8], sha256_hex: &str) -> Option<QuarantineRecord> {
        let want = hex::encode(path);
        let (records, _) = self.list().ok()?;
        records
            .into_iter()
            .find(|r| r.sha256 == sha256_hex && r.original_path_hex == want)
    }

    /// The newest verified record of a file with what detection saw of it
    /// (its path, and its sha256 when detection computed one).
    pub fn find_earlier(&self, facts: &FileFacts) -> Option<QuarantineRecord> {
        let want = hex::encode(&facts.path);
        let sha = facts.sha256.map(hex::encode);
        let (records, _) = self.list().ok()?;
        records
            .into_iter()
            .rev()
            .filter(|r| {
                r.original_path_hex == want
                    && sha.as_ref().is_none_or(|s| *s == r.sha256)
                    && facts.size.is_none_or(|n| n == r.size)
            })
            .find(|r| self.verify(r).is_ok())
    }

    fn verify_object(&self, sha256_hex: &str, size: u64) -> Result<(), QuarantineError> {
        let path = self.object_path(sha256_hex);
        let shown = path.display().to_string();
        let f = File::open(&path).map_err(|e| QuarantineError::Io {
            op: "opening",
            path: shown.clone(),
            source: e,
        })?;
        let (sha, len) = fsx::sha256_file(&f).map_err(|e| QuarantineError::Io {
            op: "reading",
            path: shown.clone(),
            source: e,
        })?;
        let found = hex::encode(sha);
        if found != sha256_hex || len != size {
            return Err(QuarantineError::Damaged {
                path: shown,
                expected: sha256_hex.into(),
                found,
            });
        }
        Ok(())
    }

    /// Hash the stored copy of a record again.
    pub fn verify(&self, record: &QuarantineRecord) -> Result<(), QuarantineError> {
        self.verify_object(&record.sha256, record.size)
    }

    /// Write a quarantined file back to its original path (or `to`), with
    /// its mode, owner and access/modification times. An existing file
    /// with other content is replaced only with `force`; a directory never.
    pub fn restore(&self, id: &str, to: Option<&[u8]>, force: bool) -> Result<Restored, QuarantineError> {
        let record = self.get(id)?;
        self.verify(&record)?;
        let original = record.original_path_bytes();
        let dest: &[u8] = to.unwrap_or(&original);
        let shown = escape(dest);
        let loc = locate(dest).map_err(|source| QuarantineError::Locate {
            path: shown.clone(),
            source,
        })?;
        let object =
            File::open(self.object_path(&record.sha256)).map_err(io_err("opening", record.sha256.as_bytes()))?;
        let mut replace = false;
        match loc.lstat() {
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(io_err("stat", dest)(errno_io(e))),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                return Err(QuarantineError::Exists { path: shown })
            }
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                let (existing, _) = loc.open_regular().map_err(io_err("open", dest))?;
                let (sha, _) = fsx::sha256_file(&existing).map_err(io_err("reading", dest))?;
                if hex::encode(sha) == record.sha256 {
                    set_metadata(&existing, &record).map_err(io_err("setting mode, owner and times of", dest))?;
                    return Ok(Restored::AlreadyInPlace);
                }
                if !force {
                    return Err(QuarantineError::Exists { path: shown });
                }
                replace = true;
            }
            Ok(_) if !force => return Err(QuarantineError::Exists { path: shown }),
            Ok(_) => replace = true,
        }
        let tmp_name = CString::new(format!(".ioc-scan-restore.{}.{}", record.id, std::process::id()))
            .map_err(|_| QuarantineError::NotFound(id.into()))?;
        let _ = unlinkat(loc.dir.as_fd(), tmp_name.as_c_str(), UnlinkatFlags::NoRemoveDir);
        let fd = openat(
            loc.dir.as_fd(),
            tmp_name.as_c_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| io_err("creating a temp file next to", dest)(errno_io(e)))?;
        let tmp = File::from(fd);
        let result = (|| -> Result<(), QuarantineError> {
            let (sha, len) =
                copy_hashing(&object, &tmp, record.size.saturating_add(1)).map_err(io_err("writing", dest))?;
            if hex::encode(sha) != record.sha256 || len != record.size {
                return Err(QuarantineError::Damaged {
                    path: shown.clone(),
                    expected: record.sha256.clone(),
                    found: hex::encode(sha),
                });
            }
            tmp.sync_all().map_err(io_err("fsync", dest))?;
            set_metadata(&tmp, &record).map_err(io_err("setting mode, owner and times of", dest))?;
            tmp.sync_all().map_err(io_err("fsync", dest))?;
            let renamed = if replace {
                renameat(
                    loc.dir.as_fd(),
                    tmp_name.as_c_str(),
                    loc.dir.as_fd(),
                    loc.name.as_c_str(),
                )
            } else {
                renameat2(
                    loc.dir.as_fd(),
                    tmp_name.as_c_str(),
                    loc.dir.as_fd(),
                    loc.name.as_c_str(),
                    RenameFlags::RENAME_NOREPLACE,
                )
            };
            match renamed {
                Ok(()) => Ok(()),
                Err(Errno::EEXIST) => Err(QuarantineError::Exists { path: shown.clone() }),
                Err(e) => Err(io_err("renaming into", dest)(errno_io(e))),
            }
        })();
        if let Err(e) = result {
            let _ = unlinkat(loc.dir.as_fd(), tmp_name.as_c_str(), UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        loc.sync_dir().map_err(io_err("fsync the directory of", dest))?;
        Ok(Restored::Written)
    }

    /// Remove a record, and its stored copy when no other record uses it.
    /// Returns whether the copy was removed.
    pub fn purge(&self, id: &str) -> Result<bool, QuarantineError> {
        let record = self.get(id)?;
        let path = self.record_path(id);
        std::fs::remove_file(&path).map_err(io_err("removing", path.as_os_str().as_encoded_bytes()))?;
        sync_path(&self.dir.join("records"))?;
        let (others, _) = self.list()?;
        if others.iter().any(|r| r.sha256 == record.sha256) {
            return Ok(false);
        }
        let object = self.object_path(&record.sha256);
        match std::fs::remove_file(&object) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", object.as_os_str().as_encoded_bytes())(e)),
        }
        sync_path(&self.dir.join("objects"))?;
        Ok(true)
    }
}

/// Owner, then mode (chown clears set-id bits), then times (last: the
/// other two change ctime only).
fn set_metadata(f: &File, r: &QuarantineRecord) -> io::Result<()> {
    fchown(f.as_fd(), Some(Uid::from_raw(r.uid)), Some(Gid::from_raw(r.gid))).map_err(errno_io)?;
    fchmod(f.as_fd(), Mode::from_bits_truncate((r.mode & 0o7777) as libc::mode_t)).map_err(errno_io)?;
    futimens(
        f.as_fd(),
        &TimeSpec::new(r.atime.sec, r.atime.nsec),
        &TimeSpec::new(r.mtime.sec, r.mtime.nsec),
    )
    .map_err(errno_io)?;
    Ok(())
}

fn open_dir(path: &Path) -> Result<File, QuarantineError> {
    File::open(path).map_err(io_err("opening", path.as_os_str().as_encoded_bytes()))
}

fn sync_path(dir: &Path) -> Result<(), QuarantineError> {
    let f = open_dir(dir)?;
    fsync(f.as_fd()).map_err(|e| io_err("fsync", dir.as_os_str().as_encoded_bytes())(errno_io(e)))
}

/// Removes a temp file on drop unless disarmed.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The quarantine action for one detection.
pub fn respond(d: &Detection, target: &Target, ctx: &ResponseContext<'_>) -> ActionRecord {
    match quarantine_detection(d, target, ctx) {
        Ok(q) => ActionRecord::new(Action::Quarantine, target.clone(), Outcome::Done, details(&q, ctx)),
        Err(rec) => *rec,
    }
}

pub(crate) fn details(q: &Quarantined, ctx: &ResponseContext<'_>) -> serde_json::Value {
    serde_json::json!({
        "quarantine_id": q.record.id,
        "sha256": q.record.sha256,
        "size": q.record.size,
        "store": ctx.quarantine_dir.display().to_string(),
        "verified": true,
        "already_quarantined": q.already,
    })
}

/// Quarantine the file of `d`, or the record saying why not. A file gone
/// since detection whose detected content is already in the store (an
/// earlier quarantine + delete) counts as quarantined already.
pub(crate) fn quarantine_detection(
    d: &Detection,
    target: &Target,
    ctx: &ResponseContext<'_>,
) -> Result<Quarantined, Box<ActionRecord>> {
    let refuse = |o: Outcome| {
        Box::new(ActionRecord::new(
            Action::Quarantine,
            target.clone(),
            o,
            serde_json::Value::Null,
        ))
    };
    let Some(facts) = FileFacts::of(d) else {
        return Err(refuse(Outcome::Refused(format!(
            "quarantine applies to files; the detection names {}",
            target.describe()
        ))));
    };
    let store = QuarantineStore::open(&ctx.quarantine_dir).map_err(|e| refuse(e.outcome()))?;
    match store.put(
        &facts.path,
        Some(&facts),
        Some(DetectionInfo::of(d)),
        ctx.max_quarantine_bytes,
    ) {
        Ok(q) => Ok(q),
        Err(e @ QuarantineError::Gone { .. }) => match store.find_earlier(&facts) {
            Some(record) => Ok(Quarantined { record, already: true }),
            None => Err(refuse(e.outcome())),
        },
        Err(e) => Err(refuse(e.outcome())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn bytes(p: &Path) -> Vec<u8> {
        p.as_os_str().as_bytes().to_vec()
    }

    #[test]
    fn put_verify_restore_purge() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::open(&dir.path().join("q")).unwrap();
        let f = dir.path().join("evil");
        std::fs::write(&f, b"evil content").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o751)).unwrap();
        let q = store.put(&bytes(&f), None, None, 1 << 20).unwrap();
        assert!(!q.already);
        assert_eq!(q.record.size, 12);
        assert_eq!(q.record.mode & 0o7777, 0o751);
        let obj = store.object_path(&q.record.sha256);
        assert_eq!(std::fs::read(&obj).unwrap(), b"evil content");
        assert_eq!(std::fs::metadata(&obj).unwrap().mode() & 0o7777, 0o400);
        assert_eq!(std::fs::metadata(dir.path().join("q")).unwrap().mode() & 0o7777, 0o700);
        // Idempotent.
        let again = store.put(&bytes(&f), None, None, 1 << 20).unwrap();
        assert!(again.already);
        assert_eq!(again.record.id, q.record.id);
        // Restore onto the same content: already in place.
        assert_eq!(
            store.restore(&q.record.id, None, false).unwrap(),
            Restored::AlreadyInPlace
        );
        // Different content: refused without force.
        std::fs::write(&f, b"other").unwrap();
        assert!(matches!(
            store.restore(&q.record.id, None, false),
            Err(QuarantineError::Exists { .. })
        ));
        assert_eq!(store.restore(&q.record.id, None, true).unwrap(), Restored::Written);
        assert_eq!(std::fs::read(&f).unwrap(), b"evil content");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o751);
        assert!(store.purge(&q.record.id).unwrap());
        assert!(!obj.exists());
        assert!(matches!(store.get(&q.record.id), Err(QuarantineError::NotFound(_))));
    }

    #[test]
    fn refuses_content_other_than_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::open(&dir.path().join("q")).unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"now").unwrap();
        let facts = FileFacts {
            path: bytes(&f),
            sha256: Some([0; 32]),
            size: None,
            mtime: None,
        };
        let err = store.put(&bytes(&f), Some(&facts), None, 1 << 20).unwrap_err();
        assert!(matches!(err, QuarantineError::Changed { .. }), "{err}");
        assert!(matches!(err.outcome(), Outcome::Refused(_)));
        assert_eq!(std::fs::read_dir(dir.path().join("q/objects")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join("q/tmp")).unwrap().count(), 0);
    }

    #[test]
    fn refuses_too_large_and_missing_and_special() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::open(&dir.path().join("q")).unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![1u8; 100]).unwrap();
        assert!(matches!(
            store.put(&bytes(&f), None, None, 99),
            Err(QuarantineError::TooLarge { .. })
        ));
        assert!(matches!(
            store.put(&bytes(&dir.path().join("nope")), None, None, 99),
            Err(QuarantineError::Gone { .. })
        ));
        assert!(matches!(
            store.put(&bytes(dir.path()), None, None, 99),
            Err(QuarantineError::NotRegular { .. })
        ));
    }

    #[test]
    fn ids_are_checked_before_use_as_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::open(&dir.path().join("q")).unwrap();
        for id in ["", "../x", "ABC", "a/b"] {
            assert!(matches!(store.get(id), Err(QuarantineError::NotFound(_))), "{id}");
        }
    }
}
