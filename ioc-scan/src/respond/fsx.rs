//! File operations on raw path bytes, relative to directory fds: a path is
//! walked one component at a time with `openat(O_NOFOLLOW)`, so names with
//! newlines or non-UTF-8 bytes work, full paths longer than PATH_MAX (4096
//! bytes, through nested directories) work, and a symlink swapped in for a
//! directory after detection is refused instead of followed.

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use sha2::{Digest, Sha256};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

/// Bytes read per `pread` while hashing or copying.
pub const CHUNK: usize = 256 << 10;

/// A path's parent directory, open, and its last component.
#[derive(Debug)]
pub struct Located {
    pub dir: OwnedFd,
    pub name: CString,
}

/// Why a path could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("empty path")]
    Empty,
    #[error("the path has a `..` component")]
    DotDot,
    #[error("the path holds a NUL byte")]
    Nul,
    #[error("a directory of the path is a symlink (not followed)")]
    Symlink,
    #[error("opening directory {component}: {source}")]
    Dir { component: String, source: io::Error },
}

/// Open the parent directory of `path` (absolute, or relative to the
/// current directory) without following any symlink, and return it with
/// the last component. The last component itself is not opened.
pub fn locate(path: &[u8]) -> Result<Located, LocateError> {
    if path.contains(&0) {
        return Err(LocateError::Nul);
    }
    let mut parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if parts.iter().any(|c| *c == b"..") {
        return Err(LocateError::DotDot);
    }
    let name = parts.pop().ok_or(LocateError::Empty)?;
    let start: &[u8] = if path.starts_with(b"/") { b"/" } else { b"." };
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open(OsStr::from_bytes(start), flags, Mode::empty()).map_err(|e| LocateError::Dir {
        component: escape(start),
        source: e.into(),
    })?;
    for comp in parts {
        dir = openat(
            dir.as_fd(),
            OsStr::from_bytes(comp),
            flags | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| {
            if e == Errno::ELOOP || e == Errno::ENOTDIR && is_symlink(dir.as_fd(), comp) {
                LocateError::Symlink
            } else {
                LocateError::Dir {
                    component: escape(comp),
                    source: e.into(),
                }
            }
        })?;
    }
    // `name` has no NUL (checked above).
    let name = CString::new(name).map_err(|_| LocateError::Nul)?;
    Ok(Located { dir, name })
}

fn is_symlink(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    fstatat(dir, OsStr::from_bytes(name), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

impl Located {
    /// lstat of the last component.
    pub fn lstat(&self) -> nix::Result<FileStat> {
        fstatat(
            self.dir.as_fd(),
            self.name.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
    }

    /// Open the last component for reading: never through a symlink,
    /// never blocking on a FIFO, without updating its access time where
    /// allowed (evidence stays as found); it must be a regular file.
    pub fn open_regular(&self) -> io::Result<(File, FileStat)> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = match openat(
            self.dir.as_fd(),
            self.name.as_c_str(),
            flags | OFlag::O_NOATIME,
            Mode::empty(),
        ) {
            // O_NOATIME needs ownership or CAP_FOWNER.
            Err(Errno::EPERM) => openat(self.dir.as_fd(), self.name.as_c_str(), flags, Mode::empty())?,
            r => r?,
        };
        let st = fstat(fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::other("not a regular file"));
        }
        Ok((File::from(fd), st))
    }

    /// fsync the parent directory (makes a rename or unlink in it durable).
    pub fn sync_dir(&self) -> io::Result<()> {
        sync_dir(self.dir.as_fd())
    }
}

/// fsync a directory given by an fd (O_PATH fds cannot be fsynced:
/// reopen it for reading first).
pub fn sync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    nix::unistd::fsync(fd.as_fd())?;
    Ok(())
}

/// SHA-256 and length of a file's whole content (read with `pread` from
/// offset 0, whatever the file position).
pub fn sha256_file(file: &File) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        let n = match file.read_at(&mut buf, off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        off += n as u64;
    }
    Ok((hasher.finalize().into(), off))
}

/// A path's bytes for messages and listings: printable ASCII and valid
/// UTF-8 as they are, control characters and invalid bytes as `\xNN`
/// (a newline in a name cannot break a line of output).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                if (c as u32) < 0x80 {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                } else {
                    out.push_str(&c.escape_unicode().to_string());
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The time of `CLOCK_BOOTTIME` in nanoseconds (counts suspend; what the
/// kernel programs read with `bpf_ktime_get_boot_ns`).
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_text_and_escapes_the_rest() {
        assert_eq!(escape(b"/tmp/a b"), "/tmp/a b");
        assert_eq!(escape(b"/tmp/a\nb"), "/tmp/a\\x0ab");
        assert_eq!(escape(b"/tmp/\xff\xfe"), "/tmp/\\xff\\xfe");
        assert_eq!(escape("/tmp/é".as_bytes()), "/tmp/é");
        assert_eq!(escape(b"a\\b"), "a\\x5cb");
    }

    #[test]
    fn locate_refuses_dotdot_and_symlinked_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/f"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let base = dir.path().as_os_str().as_bytes().to_vec();
        let mut p = base.clone();
        p.extend_from_slice(b"/real/f");
        let loc = locate(&p).unwrap();
        assert_eq!(loc.open_regular().unwrap().1.st_size, 1);
        let mut p = base.clone();
        p.extend_from_slice(b"/link/f");
        assert!(matches!(locate(&p), Err(LocateError::Symlink)));
        let mut p = base;
        p.extend_from_slice(b"/real/../real/f");
        assert!(matches!(locate(&p), Err(LocateError::DotDot)));
    }

    #[test]
    fn open_regular_refuses_a_fifo_and_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let loc = locate(fifo.as_os_str().as_bytes()).unwrap();
        assert!(loc.open_regular().is_err());
        std::fs::write(dir.path().join("t"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("t"), dir.path().join("l")).unwrap();
        let loc = locate(dir.path().join("l").as_os_str().as_bytes()).unwrap();
        assert!(loc.open_regular().is_err());
    }
}
