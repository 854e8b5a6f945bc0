//! What a scan never enters and never opens.
//!
//! - Pseudo filesystems (/proc, /sys, cgroup, debugfs, ...): reading them is
//!   meaningless for IOC file terms and some files block or have side
//!   effects. Refused by path (/proc, /sys, /dev except /dev/shm) and, when a
//!   walk crosses into another filesystem, by `statfs` magic number.
//! - FIFOs, sockets and device nodes: never opened (the walker knows the type
//!   from `d_type` or `statx` before it opens anything).
//! - Regular files are opened with [`open_regular`]: `O_NOFOLLOW` (a symlink
//!   swapped in after the stat is refused), `O_NONBLOCK` (a FIFO swapped in
//!   cannot block), `O_NOATIME` when permitted (a scan does not disturb access
//!   times), `O_CLOEXEC`, and the opened descriptor must still be a regular
//!   file with the device and inode that were stat'ed.

use super::meta::Meta;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

/// What the walker does with a directory, decided by its absolute path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirPolicy {
    Enter,
    /// A pseudo filesystem: never entered.
    Deny,
    /// `/dev`: only its `shm` child (a tmpfs where malware likes to hide) is
    /// entered.
    OnlyShm,
}

pub fn dir_policy(path: &Path) -> DirPolicy {
    if path.starts_with("/proc") || path.starts_with("/sys") {
        DirPolicy::Deny
    } else if path == Path::new("/dev") {
        DirPolicy::OnlyShm
    } else if path.starts_with("/dev") && !path.starts_with("/dev/shm") {
        DirPolicy::Deny
    } else {
        DirPolicy::Enter
    }
}

/// `statfs` magic numbers of filesystems that hold no real files
/// (linux/magic.h). devtmpfs reports tmpfs's number and is refused by path.
const PSEUDO_FS_MAGIC: &[u64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0xcafe_4a11, // bpf
    0x6265_6570, // configfs
    0x1cd1,      // devpts
    0x6165_676c, // pstore
    0xde5e_81e4, // efivarfs
    0x6573_5543, // fusectl
    0x4249_4e4d, // binfmt_misc
    0x1980_0202, // mqueue
    0xf97c_ff8c, // selinuxfs
    0x4341_5d53, // smackfs
    0x6e73_6673, // nsfs
    0x0187,      // autofs: opening an unmounted mount point would trigger (and maybe hang on) a mount
    0x958458f6,  // hugetlbfs
];

/// Is the filesystem holding `fd` a pseudo filesystem? (Errors answer no:
/// the directory will be read and its entries judged one by one.)
pub fn is_pseudo_fs<Fd: AsFd>(fd: Fd) -> bool {
    match rustix::fs::fstatfs(fd) {
        Ok(st) => PSEUDO_FS_MAGIC.contains(&(st.f_type as u64)),
        Err(_) => false,
    }
}

/// Why a regular file could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("vanished before it could be opened")]
    Vanished,
    #[error("replaced (by a symlink or another file) between stat and open")]
    Replaced,
    #[error("not a regular file")]
    NotRegular,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Open the regular file `name` in directory `dir` for reading, and return
/// it with its metadata at open time (from the descriptor: authoritative).
/// `expected`: its metadata from an earlier `statx`, when there was one (the
/// walker knows an entry is a regular file from `d_type` and does not stat
/// what it need not); the opened file must be that same object.
pub fn open_regular<Fd: AsFd>(dir: Fd, name: &CStr, expected: Option<&Meta>) -> Result<(File, Meta), OpenError> {
    if expected.is_some_and(|m| !m.is_file()) {
        return Err(OpenError::NotRegular);
    }
    let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let dir = dir.as_fd();
    let fd = match rustix::fs::openat(dir, name, base | OFlags::NOATIME, Mode::empty()) {
        // O_NOATIME needs ownership of the file or CAP_FOWNER.
        Err(Errno::PERM) => rustix::fs::openat(dir, name, base, Mode::empty()),
        other => other,
    };
    let fd = match fd {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Err(OpenError::Vanished),
        Err(Errno::LOOP) => return Err(OpenError::Replaced),
        // ENXIO: a socket; EWOULDBLOCK and friends: not a plain file.
        Err(Errno::NXIO) | Err(Errno::AGAIN) => return Err(OpenError::NotRegular),
        Err(e) => return Err(OpenError::Io(e.into())),
    };
    let now = Meta::of_fd(&fd).map_err(|e| OpenError::Io(e.into()))?;
    if !now.is_file() {
        return Err(OpenError::NotRegular);
    }
    if expected.is_some_and(|m| !now.same_file(m)) {
        return Err(OpenError::Replaced);
    }
    Ok((File::from(fd), now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_paths_are_refused_but_dev_shm_is_entered() {
        assert_eq!(dir_policy(Path::new("/proc")), DirPolicy::Deny);
        assert_eq!(dir_policy(Path::new("/proc/1")), DirPolicy::Deny);
        assert_eq!(dir_policy(Path::new("/sys/kernel")), DirPolicy::Deny);
        assert_eq!(dir_policy(Path::new("/dev")), DirPolicy::OnlyShm);
        assert_eq!(dir_policy(Path::new("/dev/mqueue")), DirPolicy::Deny);
        assert_eq!(dir_policy(Path::new("/dev/shm")), DirPolicy::Enter);
        assert_eq!(dir_policy(Path::new("/dev/shm/x")), DirPolicy::Enter);
        assert_eq!(dir_policy(Path::new("/devices")), DirPolicy::Enter);
        assert_eq!(dir_policy(Path::new("/processes")), DirPolicy::Enter);
        assert_eq!(dir_policy(Path::new("/tmp")), DirPolicy::Enter);
    }

    #[test]
    fn proc_is_a_pseudo_fs_and_tmp_dirs_are_not() {
        let proc = File::open("/proc").unwrap();
        assert!(is_pseudo_fs(&proc));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_pseudo_fs(File::open(dir.path()).unwrap()));
    }

    #[test]
    fn open_regular_refuses_a_file_replaced_after_stat() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"one").unwrap();
        let dirfd = File::open(dir.path()).unwrap();
        let before = Meta::at(&dirfd, c"a").unwrap();
        // Same name, another inode.
        std::fs::write(dir.path().join("b"), b"two").unwrap();
        std::fs::rename(dir.path().join("b"), dir.path().join("a")).unwrap();
        assert!(matches!(
            open_regular(&dirfd, c"a", Some(&before)),
            Err(OpenError::Replaced)
        ));
        // Now a symlink.
        let now = Meta::at(&dirfd, c"a").unwrap();
        std::fs::remove_file(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("a")).unwrap();
        assert!(matches!(
            open_regular(&dirfd, c"a", Some(&now)),
            Err(OpenError::Replaced)
        ));
        std::fs::remove_file(dir.path().join("a")).unwrap();
        assert!(matches!(
            open_regular(&dirfd, c"a", Some(&now)),
            Err(OpenError::Vanished)
        ));
    }

    #[test]
    fn open_regular_never_blocks_on_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let dirfd = File::open(dir.path()).unwrap();
        let m = Meta::at(&dirfd, c"p").unwrap();
        assert!(matches!(
            open_regular(&dirfd, c"p", Some(&m)),
            Err(OpenError::NotRegular)
        ));
        // Also when the caller did not stat it first (a race on d_type).
        assert!(matches!(open_regular(&dirfd, c"p", None), Err(OpenError::NotRegular)));
    }
}
