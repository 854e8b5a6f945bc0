//! A parallel directory walker in the style of ripgrep's (`ignore`'s
//! `WalkParallel`), built for scanning a live system rather than a source
//! tree:
//!
//! - every directory is opened relative to its parent's descriptor
//!   (`openat(parent, name, O_NOFOLLOW|O_DIRECTORY)`), or, when too many
//!   are held, beneath its root's descriptor (`openat2` with
//!   `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`), never by its path: no symlink
//!   swapped into a path after it was listed can lead the walk out of its
//!   scope;
//! - entries are read with `getdents64` into a per-thread buffer and typed
//!   from `d_type` (one `statx` only when the filesystem does not fill it);
//!   a regular file costs no allocation and no `stat` until the visitor asks
//!   for its metadata ([`FileEntry::metadata`]);
//! - symlinks are reported, never followed; FIFOs, sockets and devices are
//!   reported, never opened; pseudo filesystems are never entered; a walk
//!   stays on the filesystem of each root unless told otherwise; a directory
//!   (device, inode) is read once, whatever the number of roots or bind
//!   mounts leading to it;
//! - per-entry problems are values ([`WalkEvent::Skipped`],
//!   [`WalkEvent::Error`]) carrying the path: nothing aborts the walk but the
//!   visitor's [`WalkState::Quit`].
//!
//! Work is shared through one LIFO stack of directories (depth first, so the
//! number of pending directories stays near depth × fan-out); each thread
//! reads a whole directory and hands the subdirectories it finds to the
//! stack, early when other threads are idle.

use super::meta::Meta;
use super::safety::{dir_policy, is_pseudo_fs, open_regular, DirPolicy, OpenError};
use globset::GlobSet;
use rustix::fs::{FileType, Mode, OFlags, RawDir, CWD};
use rustix::io::Errno;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What the visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkState {
    Continue,
    /// On a [`WalkEvent::Dir`]: do not read this directory. Otherwise the
    /// same as `Continue`.
    Skip,
    /// Stop the whole walk (all threads) as soon as possible.
    Quit,
}

/// Why an entry was not examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A symbolic link: reported, not followed.
    Symlink,
    /// A FIFO, socket, character or block device: never opened.
    Special,
    /// A directory on another filesystem than its scope root.
    OtherFilesystem,
    /// /proc, /sys, /dev (but /dev/shm), cgroup, debugfs...
    PseudoFilesystem,
    /// Matched an exclusion glob.
    Excluded,
    /// A directory already read (overlapping roots, bind mounts).
    AlreadyVisited,
    /// Gone between listing and use.
    Vanished,
    /// Replaced (by a symlink or another object) between listing and use.
    Replaced,
    /// Larger than the size limit: evaluated on metadata, not read.
    TooLarge,
}

impl SkipReason {
    pub const ALL: [SkipReason; 9] = [
        SkipReason::Symlink,
        SkipReason::Special,
        SkipReason::OtherFilesystem,
        SkipReason::PseudoFilesystem,
        SkipReason::Excluded,
        SkipReason::AlreadyVisited,
        SkipReason::Vanished,
        SkipReason::Replaced,
        SkipReason::TooLarge,
    ];

    /// snake_case name, as used in JSON summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Symlink => "symlink",
            SkipReason::Special => "special_file",
            SkipReason::OtherFilesystem => "other_filesystem",
            SkipReason::PseudoFilesystem => "pseudo_filesystem",
            SkipReason::Excluded => "excluded",
            SkipReason::AlreadyVisited => "already_visited",
            SkipReason::Vanished => "vanished",
            SkipReason::Replaced => "replaced",
            SkipReason::TooLarge => "too_large",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The operation that failed on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkOp {
    Stat,
    OpenDir,
    ReadDir,
    OpenFile,
    ReadFile,
}

impl std::fmt::Display for WalkOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WalkOp::Stat => "stat",
            WalkOp::OpenDir => "open directory",
            WalkOp::ReadDir => "read directory",
            WalkOp::OpenFile => "open",
            WalkOp::ReadFile => "read",
        })
    }
}

/// An error on one entry; the walk goes on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {op}: {source}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub op: WalkOp,
    #[source]
    pub source: std::io::Error,
}

impl WalkError {
    pub fn new(path: &Path, op: WalkOp, source: impl Into<std::io::Error>) -> WalkError {
        WalkError {
            path: path.to_path_buf(),
            op,
            source: source.into(),
        }
    }
}

/// A regular file found by the walk, as cheap as possible: its directory's
/// descriptor, its name and the full path (both borrowed from the walker's
/// per-thread buffers), and its metadata fetched on first request.
pub struct FileEntry<'a> {
    dir: BorrowedFd<'a>,
    name: &'a CStr,
    path: &'a Path,
    meta: OnceCell<Result<Meta, Errno>>,
}

impl<'a> FileEntry<'a> {
    /// An entry for `name` in the open directory `dir`; `path` is the full
    /// path it is reported under.
    pub fn new(dir: BorrowedFd<'a>, name: &'a CStr, path: &'a Path) -> FileEntry<'a> {
        FileEntry {
            dir,
            name,
            path,
            meta: OnceCell::new(),
        }
    }

    fn with_meta(self, meta: Meta) -> FileEntry<'a> {
        let _ = self.meta.set(Ok(meta));
        self
    }

    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn file_name(&self) -> &'a OsStr {
        OsStr::from_bytes(self.name.to_bytes())
    }

    /// `statx` of the entry (not following a symlink), done once.
    pub fn metadata(&self) -> Result<Meta, Errno> {
        *self.meta.get_or_init(|| Meta::at(self.dir, self.name))
    }

    /// The metadata, if already fetched.
    pub fn cached_metadata(&self) -> Option<Meta> {
        self.meta.get().and_then(|r| r.ok())
    }

    /// Open it for reading with every safety check of
    /// [`super::safety::open_regular`]; returns the file and its metadata at
    /// open time (which also answers [`FileEntry::metadata`] from then on
    /// when it had not been fetched: one `statx` per file read, not two).
    pub fn open(&self) -> Result<(File, Meta), OpenError> {
        let expected = match self.meta.get() {
            Some(Ok(m)) => Some(*m),
            Some(Err(Errno::NOENT)) => return Err(OpenError::Vanished),
            Some(Err(e)) => return Err(OpenError::Io((*e).into())),
            None => None,
        };
        let (file, now) = open_regular(self.dir, self.name, expected.as_ref())?;
        let _ = self.meta.set(Ok(now));
        Ok((file, now))
    }
}

/// One thing the walk found.
pub enum WalkEvent<'a> {
    /// About to read this directory (a visitor may answer `Skip`).
    Dir(&'a Path),
    /// A regular file.
    File(&'a FileEntry<'a>),
    /// An entry not examined, and why.
    Skipped { path: &'a Path, reason: SkipReason },
    /// An entry that could not be read.
    Error(WalkError),
}

/// A per-thread consumer of walk events. Closures
/// `FnMut(WalkEvent<'_>) -> WalkState` are visitors.
pub trait Visitor: Send {
    fn visit(&mut self, event: WalkEvent<'_>) -> WalkState;
}

impl<F> Visitor for F
where
    F: for<'a> FnMut(WalkEvent<'a>) -> WalkState + Send,
{
    fn visit(&mut self, event: WalkEvent<'_>) -> WalkState {
        self(event)
    }
}

/// Configures a walk.
#[derive(Clone, Default)]
pub struct WalkBuilder {
    roots: Vec<PathBuf>,
    threads: usize,
    excludes: Option<GlobSet>,
    cross_filesystems: bool,
    max_held_dirs: Option<usize>,
}

impl WalkBuilder {
    pub fn new() -> WalkBuilder {
        WalkBuilder::default()
    }

    /// Add a root (a directory or a single file). Relative roots are made
    /// absolute against the current directory; symlinks in the root path are
    /// NOT resolved (a root that is itself a symlink is reported as one:
    /// canonicalize roots first if they should be followed).
    pub fn root(&mut self, path: impl AsRef<Path>) -> &mut WalkBuilder {
        let path = path.as_ref();
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.roots.push(path);
        self
    }

    /// Number of walking threads; 0 (the default) means one per CPU.
    pub fn threads(&mut self, n: usize) -> &mut WalkBuilder {
        self.threads = n;
        self
    }

    /// Entries whose full path matches are skipped (directories are not
    /// entered).
    pub fn excludes(&mut self, set: GlobSet) -> &mut WalkBuilder {
        self.excludes = (!set.is_empty()).then_some(set);
        self
    }

    /// Descend into mount points of other filesystems below a root
    /// (pseudo filesystems are refused all the same).
    pub fn cross_filesystems(&mut self, yes: bool) -> &mut WalkBuilder {
        self.cross_filesystems = yes;
        self
    }

    /// Most directory descriptors held open for queued subdirectories
    /// (default: a quarter of the descriptor limit, 16 to 4096); past it a
    /// subdirectory is reopened beneath its scope root's descriptor. Tests
    /// set it low (0: always reopen) to exercise that path.
    pub fn max_held_dirs(&mut self, n: usize) -> &mut WalkBuilder {
        self.max_held_dirs = Some(n);
        self
    }

    pub fn build_parallel(&self) -> WalkParallel {
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            self.threads
        };
        WalkParallel {
            builder: self.clone(),
            threads,
        }
    }
}

/// A configured walk; [`WalkParallel::run`] runs it.
pub struct WalkParallel {
    builder: WalkBuilder,
    threads: usize,
}

/// A directory descriptor kept open while subdirectories queued under it are
/// waiting to be opened relative to it.
struct HeldDir<'h> {
    fd: OwnedFd,
    held: &'h AtomicUsize,
}

impl Drop for HeldDir<'_> {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The root directory of a walk, held open for the whole walk: a
/// subdirectory whose parent is no longer held is reopened beneath it.
struct Scope {
    fd: OwnedFd,
    path: PathBuf,
}

/// A directory (or root) waiting to be read.
struct Job<'h> {
    path: PathBuf,
    /// Open it relative to this descriptor (by its last component); `None`:
    /// a root (by its path), or, when too many descriptors are held,
    /// beneath `scope` (no symlink followed in any component).
    parent: Option<Arc<HeldDir<'h>>>,
    /// The root directory this job lies under (`None` for a root).
    scope: Option<Arc<Scope>>,
    /// Device of the scope root (`None` for a root: its own).
    root_dev: Option<u64>,
    /// Device of the parent directory (to notice mount points).
    parent_dev: Option<u64>,
    is_root: bool,
}

struct Queue<'h> {
    stack: Vec<Job<'h>>,
    /// Jobs being processed: the walk is over when none is and the stack
    /// is empty.
    active: usize,
}

struct Shared<'h> {
    queue: Mutex<Queue<'h>>,
    wake: Condvar,
    idle: AtomicUsize,
    quit: AtomicBool,
    visited: Mutex<HashSet<(u64, u64)>>,
    held: &'h AtomicUsize,
    max_held: usize,
    excludes: Option<&'h GlobSet>,
    cross_filesystems: bool,
}

/// Per-thread buffers, reused for every directory and file.
struct Local<'h> {
    dirbuf: Vec<u8>,
    path: PathBuf,
    batch: Vec<Job<'h>>,
}

const DIRBUF_SIZE: usize = 64 * 1024;

impl WalkParallel {
    /// Run the walk on `threads` threads. `make_visitor` is called once per
    /// thread, on that thread.
    pub fn run<F, V>(self, make_visitor: F)
    where
        F: Fn() -> V + Sync,
        V: Visitor,
    {
        let held = AtomicUsize::new(0);
        // Keep well below the descriptor limit: the visitor opens files too.
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1024);
        let max_held = self
            .builder
            .max_held_dirs
            .unwrap_or((soft / 4).clamp(16, 4096) as usize);
        let shared = Shared {
            queue: Mutex::new(Queue {
                stack: self
                    .builder
                    .roots
                    .iter()
                    .rev()
                    .map(|p| Job {
                        path: p.clone(),
                        parent: None,
                        scope: None,
                        root_dev: None,
                        parent_dev: None,
                        is_root: true,
                    })
                    .collect(),
                active: 0,
            }),
            wake: Condvar::new(),
            idle: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            visited: Mutex::new(HashSet::new()),
            held: &held,
            max_held,
            excludes: self.builder.excludes.as_ref(),
            cross_filesystems: self.builder.cross_filesystems,
        };
        std::thread::scope(|s| {
            for _ in 0..self.threads {
                s.spawn(|| {
                    let mut visitor = make_visitor();
                    let mut local = Local {
                        dirbuf: Vec::with_capacity(DIRBUF_SIZE),
                        path: PathBuf::new(),
                        batch: Vec::new(),
                    };
                    shared.work(&mut visitor, &mut local);
                });
            }
        });
    }
}

impl<'h> Shared<'h> {
    fn work<V: Visitor>(&self, visitor: &mut V, local: &mut Local<'h>) {
        while let Some(job) = self.next_job() {
            let state = self.process(job, visitor, local);
            if state == WalkState::Quit {
                self.quit.store(true, Ordering::Relaxed);
            }
            self.flush(local);
            self.finish_job();
        }
    }

    fn next_job(&self) -> Option<Job<'h>> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.quit.load(Ordering::Relaxed) {
                q.stack.clear();
                self.wake.notify_all();
                return None;
            }
            if let Some(job) = q.stack.pop() {
                q.active += 1;
                return Some(job);
            }
            if q.active == 0 {
                self.wake.notify_all();
                return None;
            }
            self.idle.fetch_add(1, Ordering::Relaxed);
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            self.idle.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn finish_job(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.active -= 1;
        if q.active == 0 && q.stack.is_empty() {
            self.wake.notify_all();
        }
    }

    /// Hand the subdirectories found so far to the other threads.
    fn flush(&self, local: &mut Local<'h>) {
        if local.batch.is_empty() {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let n = local.batch.len();
        q.stack.append(&mut local.batch);
        drop(q);
        if n == 1 {
            self.wake.notify_one();
        } else {
            self.wake.notify_all();
        }
    }

    fn process<V: Visitor>(&self, job: Job<'h>, visitor: &mut V, local: &mut Local<'h>) -> WalkState {
        if job.is_root {
            self.process_root(job, visitor, local)
        } else {
            self.process_dir(job, visitor, local)
        }
    }

    /// A root: a directory to walk, or a single file.
    fn process_root<V: Visitor>(&self, job: Job<'h>, visitor: &mut V, local: &mut Local<'h>) -> WalkState {
        let path = job.path.as_path();
        let skip = |visitor: &mut V, reason| visitor.visit(WalkEvent::Skipped { path, reason });
        if self.excluded(path) {
            return skip(visitor, SkipReason::Excluded);
        }
        let meta = match rustix::fs::statx(
            CWD,
            path,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW | rustix::fs::AtFlags::NO_AUTOMOUNT,
            rustix::fs::StatxFlags::TYPE,
        ) {
            Ok(stx) => FileType::from_raw_mode(u32::from(stx.stx_mode)),
            Err(e) => return visitor.visit(WalkEvent::Error(WalkError::new(path, WalkOp::Stat, e))),
        };
        match meta {
            FileType::Directory => {
                if dir_policy(path) == DirPolicy::Deny {
                    return skip(visitor, SkipReason::PseudoFilesystem);
                }
                self.process_dir(job, visitor, local)
            }
            FileType::RegularFile => {
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    return skip(visitor, SkipReason::Special);
                };
                let dir = match open_dir(CWD, parent) {
                    Ok(fd) => fd,
                    Err(e) => return visitor.visit(WalkEvent::Error(WalkError::new(parent, WalkOp::OpenDir, e))),
                };
                let Ok(name) = CString::new(name.as_bytes()) else {
                    return skip(visitor, SkipReason::Special);
                };
                let entry = FileEntry::new(dir.as_fd(), &name, path);
                visitor.visit(WalkEvent::File(&entry))
            }
            FileType::Symlink => skip(visitor, SkipReason::Symlink),
            _ => skip(visitor, SkipReason::Special),
        }
    }

    fn excluded(&self, path: &Path) -> bool {
        self.excludes.is_some_and(|set| set.is_match(path))
    }

    fn process_dir<V: Visitor>(&self, job: Job<'h>, visitor: &mut V, local: &mut Local<'h>) -> WalkState {
        let path = job.path.as_path();
        let skip = |visitor: &mut V, reason| visitor.visit(WalkEvent::Skipped { path, reason });
        let opened = match (&job.parent, &job.scope) {
            (Some(parent), _) => match path.file_name() {
                Some(name) => open_dir(&parent.fd, name),
                None => Err(Errno::INVAL),
            },
            // Never by its path: an intermediate directory swapped for a
            // symlink since it was listed would lead the walk elsewhere.
            (None, Some(scope)) => match path.strip_prefix(&scope.path) {
                Ok(rel) => open_dir_beneath(&scope.fd, rel),
                Err(_) => Err(Errno::XDEV),
            },
            (None, None) => open_dir(CWD, path),
        };
        drop(job.parent);
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return skip(visitor, SkipReason::Vanished),
            // ELOOP: a symlink on the way; EXDEV: the path left the scope.
            Err(Errno::LOOP) | Err(Errno::NOTDIR) | Err(Errno::XDEV) => return skip(visitor, SkipReason::Replaced),
            Err(e) => return visitor.visit(WalkEvent::Error(WalkError::new(path, WalkOp::OpenDir, e))),
        };
        let stat = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => return visitor.visit(WalkEvent::Error(WalkError::new(path, WalkOp::Stat, e))),
        };
        let (dev, ino) = (stat.st_dev, stat.st_ino);
        let root_dev = job.root_dev.unwrap_or(dev);
        if dev != root_dev && !self.cross_filesystems {
            return skip(visitor, SkipReason::OtherFilesystem);
        }
        if job.parent_dev != Some(dev) && is_pseudo_fs(&fd) {
            return skip(visitor, SkipReason::PseudoFilesystem);
        }
        if !self
            .visited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((dev, ino))
        {
            return skip(visitor, SkipReason::AlreadyVisited);
        }
        match visitor.visit(WalkEvent::Dir(path)) {
            WalkState::Continue => {}
            WalkState::Skip => return WalkState::Continue,
            WalkState::Quit => return WalkState::Quit,
        }
        let only_shm = dir_policy(path) == DirPolicy::OnlyShm;
        let scope = match job.scope {
            Some(scope) => scope,
            None => match fd.try_clone() {
                Ok(dup) => Arc::new(Scope {
                    fd: dup,
                    path: path.to_path_buf(),
                }),
                Err(e) => {
                    let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                    return visitor.visit(WalkEvent::Error(WalkError::new(path, WalkOp::OpenDir, errno)));
                }
            },
        };
        self.held.fetch_add(1, Ordering::Relaxed);
        let dir = Arc::new(HeldDir { fd, held: self.held });

        let Local {
            dirbuf,
            path: cur,
            batch,
        } = local;
        cur.clear();
        cur.push(path);
        let mut entries = RawDir::new(&dir.fd, dirbuf.spare_capacity_mut());
        let mut seen = 0usize;
        while let Some(entry) = entries.next() {
            if self.quit.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let state = visitor.visit(WalkEvent::Error(WalkError::new(path, WalkOp::ReadDir, e)));
                    return if state == WalkState::Quit {
                        WalkState::Quit
                    } else {
                        WalkState::Continue
                    };
                }
            };
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." || (only_shm && bytes != b"shm") {
                continue;
            }
            cur.push(OsStr::from_bytes(bytes));
            let state = self.entry(name, entry.file_type(), &dir, &scope, dev, root_dev, cur, batch, visitor);
            cur.pop();
            if state == WalkState::Quit {
                return WalkState::Quit;
            }
            seen += 1;
            // Share work early when another thread has none.
            if seen.is_multiple_of(64) && !batch.is_empty() && self.idle.load(Ordering::Relaxed) > 0 {
                self.flush_from(batch);
            }
        }
        WalkState::Continue
    }

    fn flush_from(&self, batch: &mut Vec<Job<'h>>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.stack.append(batch);
        drop(q);
        self.wake.notify_all();
    }

    /// One directory entry, already appended to `path`.
    #[allow(clippy::too_many_arguments)]
    fn entry<V: Visitor>(
        &self,
        name: &CStr,
        file_type: FileType,
        dir: &Arc<HeldDir<'h>>,
        scope: &Arc<Scope>,
        dev: u64,
        root_dev: u64,
        path: &Path,
        batch: &mut Vec<Job<'h>>,
        visitor: &mut V,
    ) -> WalkState {
        if self.excluded(path) {
            return visitor.visit(WalkEvent::Skipped {
                path,
                reason: SkipReason::Excluded,
            });
        }
        let mut known_meta = None;
        let file_type = if file_type == FileType::Unknown {
            // Filesystems that do not fill d_type (some network and old ones).
            match Meta::at(&dir.fd, name) {
                Ok(m) => {
                    known_meta = Some(m);
                    m.file_type()
                }
                Err(Errno::NOENT) => {
                    return visitor.visit(WalkEvent::Skipped {
                        path,
                        reason: SkipReason::Vanished,
                    })
                }
                Err(e) => return visitor.visit(WalkEvent::Error(WalkError::new(path, WalkOp::Stat, e))),
            }
        } else {
            file_type
        };
        match file_type {
            FileType::RegularFile => {
                let entry = FileEntry::new(dir.fd.as_fd(), name, path);
                let entry = match known_meta {
                    Some(m) => entry.with_meta(m),
                    None => entry,
                };
                visitor.visit(WalkEvent::File(&entry))
            }
            FileType::Directory => {
                if dir_policy(path) == DirPolicy::Deny {
                    return visitor.visit(WalkEvent::Skipped {
                        path,
                        reason: SkipReason::PseudoFilesystem,
                    });
                }
                let parent = if self.held.load(Ordering::Relaxed) < self.max_held {
                    Some(dir.clone())
                } else {
                    None
                };
                batch.push(Job {
                    path: path.to_path_buf(),
                    parent,
                    scope: Some(scope.clone()),
                    root_dev: Some(root_dev),
                    parent_dev: Some(dev),
                    is_root: false,
                });
                WalkState::Continue
            }
            FileType::Symlink => visitor.visit(WalkEvent::Skipped {
                path,
                reason: SkipReason::Symlink,
            }),
            _ => visitor.visit(WalkEvent::Skipped {
                path,
                reason: SkipReason::Special,
            }),
        }
    }
}

/// Open the directory `rel` beneath `scope`, following no symlink in any
/// component and never leaving `scope` (`openat2` `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS`).
fn open_dir_beneath(scope: &OwnedFd, rel: &Path) -> Result<OwnedFd, Errno> {
    crate::collect::safe_read::open_beneath_fd(scope, rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY)
}

/// Open a directory for reading, refusing a symlink in its last component.
fn open_dir<Fd: AsFd, P: rustix::path::Arg>(dir: Fd, path: P) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}
