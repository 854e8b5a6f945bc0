//! The one way a host collector opens and reads a file of the host (the
//! file walker has its own checked open in `files::safety`, and uses
//! [`open_beneath_fd`] from here to reopen directories).
//!
//! A scan runs as root; the files it reads may be planted by an
//! unprivileged user (shell history, crontabs, user units, the program a
//! task runs). So every open here:
//! - never blocks (`O_NONBLOCK`: a FIFO cannot hang the scan) and refuses
//!   anything but a regular file, judged on the opened descriptor (`fstat`:
//!   no race with a swap after a `stat`);
//! - never follows a symlink in a place a user controls: under a home,
//!   files are opened beneath the home's descriptor with `openat2`
//!   (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), and must be owned by that
//!   user (like sshd's StrictModes: a file of another user is not his);
//! - is read with a byte bound ([`HostFile::read_to_end`],
//!   [`HostFile::for_each_line`], [`HostFile::digest`]).
//!
//! Root-controlled places (/etc, /proc, /sys, /var/log, /usr/lib, the spool
//! of crontab(1)) are opened with [`open_system`]: their symlinks are root's
//! (/etc/resolv.conf → /run/...) and are followed.
//!
//! This module decides how a file is opened and how much of it is read; it
//! does not decide which files a collector reads, nor parse them.

use super::host::{CollectError, DigestKinds, Digests};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

/// Why a file was not read although it exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a symbolic link where a user could have planted one")]
    Symlink,
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("owned by uid {owner}, not by uid {expected} whose it is said to be")]
    Owner { owner: u32, expected: u32 },
    #[error("not readable by uid {uid}, who named it")]
    NotReadableBy { uid: u32 },
    #[error("a path leaving the directory it must stay beneath")]
    Escapes,
}

const BASE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "unknown type",
    }
}

fn io_err(path: &Path, e: impl Into<io::Error>) -> CollectError {
    CollectError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

fn refused(path: &Path, reason: Refusal) -> CollectError {
    CollectError::Refused {
        path: path.to_path_buf(),
        reason,
    }
}

/// Whether a collection error only says the file is not there (a missing
/// history or crontab is normal, not a problem to report).
pub fn is_missing(e: &CollectError) -> bool {
    matches!(e, CollectError::Read { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
}

/// Open `rel` beneath `dir`, following no symlink in any component and never
/// leaving `dir` (`..`, absolute paths). `openat2` where the kernel has it
/// (5.6+); otherwise one `openat(O_NOFOLLOW)` per component.
pub fn open_beneath_fd<Fd: AsFd>(dir: Fd, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    match rustix::fs::openat2(dir.as_fd(), rel, flags | OFlags::NOFOLLOW, Mode::empty(), resolve) {
        // No openat2 (before 5.6), or a seccomp filter refusing it.
        Err(Errno::NOSYS) | Err(Errno::PERM) => open_by_components(dir, rel, flags),
        other => other,
    }
}

/// [`open_beneath_fd`] without `openat2`.
fn open_by_components<Fd: AsFd>(dir: Fd, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(Ok(p)),
            Component::CurDir => None,
            _ => Some(Err(Errno::XDEV)),
        })
        .collect::<Result<_, _>>()?;
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = rustix::fs::openat(dir.as_fd(), ".", dir_flags, Mode::empty())?;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let f = if last { flags | OFlags::NOFOLLOW } else { dir_flags };
        cur = rustix::fs::openat(&cur, *part, f, Mode::empty())?;
    }
    if parts.is_empty() {
        cur = rustix::fs::openat(&cur, ".", flags, Mode::empty())?;
    }
    Ok(cur)
}

/// An opened host file: a regular file, checked on its descriptor.
#[derive(Debug)]
pub struct HostFile {
    file: File,
    stat: Stat,
    path: PathBuf,
}

impl HostFile {
    /// A descriptor opened elsewhere (e.g. without following symlinks by
    /// another walk), held to the same rule: a regular file, on `fstat`.
    pub fn checked(fd: OwnedFd, path: &Path) -> Result<HostFile, CollectError> {
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_err(path, e))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(refused(path, Refusal::NotRegular(kind_name(kind))));
        }
        Ok(HostFile {
            file: File::from(fd),
            stat,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    pub fn size(&self) -> u64 {
        self.stat.st_size as u64
    }

    pub fn uid(&self) -> u32 {
        self.stat.st_uid
    }

    /// Modification time, seconds since the epoch.
    pub fn mtime(&self) -> i64 {
        self.stat.st_mtime
    }

    /// `len` bytes at `offset` (positioned read), `None` past the end or on
    /// an error.
    pub fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }

    /// The open file, for a reader of its own (the caller bounds it).
    pub fn into_file(self) -> File {
        self.file
    }

    /// Keep the file only if one of `owners` owns it.
    pub fn owned_by(self, owners: &[u32]) -> Result<HostFile, CollectError> {
        if owners.contains(&self.stat.st_uid) {
            Ok(self)
        } else {
            Err(refused(
                &self.path,
                Refusal::Owner {
                    owner: self.stat.st_uid,
                    expected: owners.last().copied().unwrap_or(0),
                },
            ))
        }
    }

    /// Keep the file only if user `uid` could read it himself: it is his,
    /// or readable by all (group membership is not looked up: refusing a
    /// group-readable file of another user errs on the safe side).
    pub fn readable_by(self, uid: u32) -> Result<HostFile, CollectError> {
        let mode = self.stat.st_mode;
        if uid == 0 || (self.stat.st_uid == uid && mode & 0o400 != 0) || mode & 0o004 != 0 {
            Ok(self)
        } else {
            Err(refused(&self.path, Refusal::NotReadableBy { uid }))
        }
    }

    /// The whole file, refused when longer than `limit` bytes.
    pub fn read_to_end(self, limit: u64) -> Result<Vec<u8>, CollectError> {
        let path = self.path;
        let mut buf = Vec::with_capacity((self.stat.st_size as u64).min(limit).min(1 << 20) as usize);
        (&self.file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| io_err(&path, e))?;
        if buf.len() as u64 > limit {
            return Err(CollectError::TooLarge { path, limit });
        }
        Ok(buf)
    }

    /// Call `f` with each line (see [`super::host::for_each_line`]) of the
    /// first `limit` bytes. Returns whether the file went on past `limit`
    /// (its tail was not read).
    pub fn for_each_line(&self, limit: u64, max_line: usize, f: impl FnMut(u64, &[u8])) -> Result<bool, CollectError> {
        let mut file = &self.file;
        super::host::for_each_line(file.take(limit), max_line, f).map_err(|e| io_err(&self.path, e))?;
        let mut probe = [0u8; 1];
        loop {
            match file.read(&mut probe) {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&self.path, e)),
            }
        }
    }

    /// Digests of the whole file; a file larger than `limit` (or growing
    /// past it while read) is not hashed: a digest of a part is no digest.
    pub fn digest(self, kinds: DigestKinds, limit: u64) -> Result<Digests, CollectError> {
        if self.size() > limit {
            return Err(CollectError::TooLarge { path: self.path, limit });
        }
        let mut reader = (&self.file).take(limit.saturating_add(1));
        let mut counted = Counted(&mut reader, 0);
        let d = super::host::digest(&mut counted, kinds).map_err(|e| io_err(&self.path, e))?;
        if counted.1 > limit {
            return Err(CollectError::TooLarge { path: self.path, limit });
        }
        Ok(d)
    }
}

/// A reader counting the bytes read.
struct Counted<R>(R, u64);

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

/// Open a file in a root-controlled place (symlinks followed: they are
/// root's), refusing anything but a regular file, without blocking.
pub fn open_system(path: &Path) -> Result<HostFile, CollectError> {
    let fd = rustix::fs::openat(rustix::fs::CWD, path, BASE_FLAGS, Mode::empty()).map_err(|e| io_err(path, e))?;
    HostFile::checked(fd, path)
}

/// Read a whole file of a root-controlled place, refused when longer than
/// `limit` bytes.
pub fn read_system(path: &Path, limit: u64) -> Result<Vec<u8>, CollectError> {
    open_system(path)?.read_to_end(limit)
}

/// Open the program a task names (a cron line, an `ExecStart=`), to hash
/// it: a regular file only, never blocking. `user`: the user whose task it
/// is, when not root: he chose the path, so the file must be one he could
/// read himself (a symlink planted in his home to a root-only file is
/// followed to a file he cannot read, and refused).
pub fn open_program(path: &Path, user: Option<u32>) -> Result<HostFile, CollectError> {
    let f = open_system(path)?;
    match user {
        Some(uid) => f.readable_by(uid),
        None => Ok(f),
    }
}

/// A directory of the host, held open: what is opened through it stays
/// beneath it and follows no symlink.
#[derive(Debug)]
pub struct HostDir {
    fd: OwnedFd,
    path: PathBuf,
    uid: u32,
}

impl HostDir {
    /// A directory of a root-controlled place (a home as /etc/passwd names
    /// it: the path is root's; what lies beneath is the user's).
    pub fn open_system(path: &Path) -> Result<HostDir, CollectError> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| io_err(path, e))?;
        HostDir::checked(fd, path.to_path_buf())
    }

    fn checked(fd: OwnedFd, path: PathBuf) -> Result<HostDir, CollectError> {
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_err(&path, e))?;
        Ok(HostDir {
            fd,
            path,
            uid: stat.st_uid,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's owner.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    fn beneath(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, CollectError> {
        let path = self.path.join(rel);
        open_beneath_fd(&self.fd, rel, flags).map_err(|e| match e {
            Errno::LOOP => refused(&path, Refusal::Symlink),
            Errno::XDEV => refused(&path, Refusal::Escapes),
            Errno::NXIO => refused(&path, Refusal::NotRegular("socket")),
            e => io_err(&path, e),
        })
    }

    /// The subdirectory `rel` (no symlink followed).
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<HostDir, CollectError> {
        let rel = rel.as_ref();
        let fd = self.beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY)?;
        HostDir::checked(fd, self.path.join(rel))
    }

    /// The regular file `rel` (no symlink followed, never blocking).
    pub fn open_file(&self, rel: impl AsRef<Path>) -> Result<HostFile, CollectError> {
        let rel = rel.as_ref();
        let fd = self.beneath(rel, BASE_FLAGS)?;
        HostFile::checked(fd, &self.path.join(rel))
    }

    /// The names in the directory, sorted (`.` and `..` left out), at most
    /// `limit` of them.
    pub fn names(&self, limit: usize) -> Result<Vec<OsString>, CollectError> {
        let fd = rustix::fs::openat(&self.fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| io_err(&self.path, e))?;
        let mut dir = rustix::fs::Dir::read_from(&fd).map_err(|e| io_err(&self.path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io_err(&self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push(OsString::from_vec(name.to_vec()));
        }
        out.sort();
        Ok(out)
    }
}

/// Most bytes hashed of a program (a task's, a module's, a file a process
/// holds open): the scan's default file size limit.
pub const PROGRAM_LIMIT: u64 = crate::scan::DEFAULT_MAX_FILE_SIZE;

/// Most names read from one directory (a user can fill his with millions).
pub const MAX_DIR_NAMES: usize = 1 << 16;

/// The names in a root-controlled directory (`/etc/cron.d`), sorted, at
/// most [`MAX_DIR_NAMES`]; a missing directory has none.
pub fn system_dir_names(path: &Path) -> Vec<String> {
    HostDir::open_system(path)
        .and_then(|d| d.names(MAX_DIR_NAMES))
        .map(|v| v.into_iter().map(|n| n.to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path) {
        rustix::fs::mknodat(rustix::fs::CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        fifo(&dir.path().join("p"));
        let e = open_system(&dir.path().join("p")).unwrap_err();
        assert!(matches!(e, CollectError::Refused { reason: Refusal::NotRegular("FIFO"), .. }), "{e}");
        let home = HostDir::open_system(dir.path()).unwrap();
        assert!(home.open_file("p").is_err());
    }

    #[test]
    fn a_device_is_refused() {
        let e = open_system(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, CollectError::Refused { .. }), "{e}");
    }

    #[test]
    fn beneath_refuses_symlinks_in_any_component_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::fs::create_dir(outside.path().join("d")).unwrap();
        std::fs::write(outside.path().join("d/secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("last")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("d"), dir.path().join("mid")).unwrap();
        let home = HostDir::open_system(dir.path()).unwrap();
        for rel in ["last", "mid/secret"] {
            let e = home.open_file(rel).unwrap_err();
            assert!(matches!(e, CollectError::Refused { reason: Refusal::Symlink, .. }), "{rel}: {e}");
        }
        assert!(home.open_dir("mid").is_err());
        let up = format!("../{}/secret", outside.path().file_name().unwrap().to_string_lossy());
        assert!(home.open_file(&up).is_err());
        assert!(home.open_file("/etc/passwd").is_err());
        // The fallback walk refuses the same.
        for rel in ["last", "mid/secret", "../x", "/etc/passwd"] {
            assert!(open_by_components(&home.fd, Path::new(rel), BASE_FLAGS).is_err(), "{rel}");
        }
        std::fs::write(dir.path().join("ok"), b"fine").unwrap();
        assert_eq!(open_by_components(&home.fd, Path::new("ok"), BASE_FLAGS).map(|_| ()), Ok(()));
        assert_eq!(home.open_file("ok").unwrap().read_to_end(10).unwrap(), b"fine");
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789\nab\n").unwrap();
        assert!(matches!(read_system(&p, 5), Err(CollectError::TooLarge { .. })));
        let f = open_system(&p).unwrap();
        let mut lines = Vec::new();
        assert!(f.for_each_line(12, 100, |n, l| lines.push((n, l.to_vec()))).unwrap());
        assert_eq!(lines, [(1, b"0123456789".to_vec()), (2, b"a".to_vec())]);
        let kinds = DigestKinds {
            sha256: true,
            ..Default::default()
        };
        assert!(matches!(open_system(&p).unwrap().digest(kinds, 5), Err(CollectError::TooLarge { .. })));
        assert!(open_system(&p).unwrap().digest(kinds, 14).unwrap().sha256.is_some());
    }

    #[test]
    fn owner_and_readability_are_checked_on_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let me = rustix::process::geteuid().as_raw();
        assert!(open_system(&p).unwrap().owned_by(&[me]).is_ok());
        assert!(matches!(
            open_system(&p).unwrap().owned_by(&[me + 1]),
            Err(CollectError::Refused { reason: Refusal::Owner { .. }, .. })
        ));
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(open_system(&p).unwrap().readable_by(me + 1).is_err());
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o604)).unwrap();
        assert!(open_system(&p).unwrap().readable_by(me + 1).is_ok());
    }
}
