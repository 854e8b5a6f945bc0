//! File metadata, read with one `statx` (which also gives the birth time
//! where the filesystem records one: ext4, xfs, btrfs, tmpfs...).

use rustix::fs::{AtFlags, FileType, StatxAttributes, StatxFlags, StatxTimestamp};
use std::ffi::CStr;
use std::os::fd::AsFd;

/// What evaluation and the walker need to know of a file, without its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    /// Birth time, when the filesystem reports it.
    pub btime: Option<i64>,
    /// `STATX_ATTR_*` bits the filesystem reports and has set (immutable,
    /// append-only...): see [`Meta::attribute_names`].
    pub attributes: u64,
}

/// The statx attributes by the names `lsattr -l` gives the inode flags
/// (and statx's own for the others).
const ATTRIBUTE_NAMES: [(StatxAttributes, &str); 9] = [
    (StatxAttributes::IMMUTABLE, "Immutable"),
    (StatxAttributes::APPEND, "Append_Only"),
    (StatxAttributes::NODUMP, "No_Dump"),
    (StatxAttributes::COMPRESSED, "Compression_Requested"),
    (StatxAttributes::ENCRYPTED, "Encrypted"),
    (StatxAttributes::VERITY, "Verity"),
    (StatxAttributes::DAX, "DAX"),
    (StatxAttributes::AUTOMOUNT, "Automount"),
    (StatxAttributes::MOUNT_ROOT, "Mount_Root"),
];

impl Meta {
    /// `statx(dirfd, name, AT_SYMLINK_NOFOLLOW)`: the entry itself, never
    /// what a symlink points to.
    pub fn at<Fd: AsFd>(dir: Fd, name: &CStr) -> rustix::io::Result<Meta> {
        let stx = rustix::fs::statx(
            dir,
            name,
            AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        )?;
        Ok(Meta::from_statx(&stx))
    }

    /// `statx` of an open file descriptor.
    pub fn of_fd<Fd: AsFd>(fd: Fd) -> rustix::io::Result<Meta> {
        let stx = rustix::fs::statx(
            fd,
            c"",
            AtFlags::EMPTY_PATH,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        )?;
        Ok(Meta::from_statx(&stx))
    }

    fn from_statx(stx: &rustix::fs::Statx) -> Meta {
        let secs = |t: &StatxTimestamp| t.tv_sec;
        let has_btime = StatxFlags::from_bits_retain(stx.stx_mask).contains(StatxFlags::BTIME);
        Meta {
            dev: rustix::fs::makedev(stx.stx_dev_major, stx.stx_dev_minor),
            ino: stx.stx_ino,
            mode: u32::from(stx.stx_mode),
            nlink: stx.stx_nlink,
            uid: stx.stx_uid,
            gid: stx.stx_gid,
            size: stx.stx_size,
            atime: secs(&stx.stx_atime),
            mtime: secs(&stx.stx_mtime),
            ctime: secs(&stx.stx_ctime),
            btime: has_btime.then(|| secs(&stx.stx_btime)),
            attributes: (stx.stx_attributes & stx.stx_attributes_mask).bits(),
        }
    }

    /// `FileItem/FileAttributes`: the names of the attributes set.
    pub fn attribute_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        ATTRIBUTE_NAMES
            .iter()
            .filter(|(bit, _)| self.attributes & bit.bits() != 0)
            .map(|(_, name)| *name)
    }

    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }

    /// Same object as `other` (device and inode)?
    pub fn same_file(&self, other: &Meta) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn statx_agrees_with_std_metadata() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        let dirfd = std::fs::File::open(dir.path()).unwrap();
        let m = Meta::at(&dirfd, c"f").unwrap();
        let std = std::fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!(m.size, 5);
        assert_eq!(m.ino, std.ino());
        assert_eq!(m.dev, std.dev());
        assert_eq!(m.mode, std.mode());
        assert_eq!(m.mtime, std.mtime());
        assert!(m.is_file());
        let f = std::fs::File::open(dir.path().join("f")).unwrap();
        assert!(Meta::of_fd(&f).unwrap().same_file(&m));
    }
}
