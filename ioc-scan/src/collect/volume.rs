//! VolumeItem (mounted file systems, from /proc/self/mountinfo and
//! statvfs) and DiskItem (block devices and their partitions, from
//! /sys/block).
//!
//! Sizes come from statvfs(3) on the live host only, and never for remote
//! or automounted file systems (a dead NFS server would hang the scan).
//! Volume UUIDs and labels come from /dev/disk/by-uuid and by-label when udev
//! maintains them; partition types from udev's database (/run/udev/data).

use super::host::{field, object_ref, read_text, CollectContext, CollectStats, HostCollector, HostRoot, Sink};
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// One line of mountinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    /// `MAJOR:MINOR`
    pub device_id: String,
    pub mount_point: String,
    pub options: Vec<String>,
    pub fs_type: String,
    pub source: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Undo udev's `\xHH` escapes in /dev/disk link names.
pub fn unescape_hex(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(v) if b[i] == b'\\' && b[i + 1] == b'x' => {
                out.push(v);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse one mountinfo line.
pub fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    if l.len() < 6 {
        return None;
    }
    let r: Vec<&str> = right.split(' ').collect();
    if r.len() < 2 {
        return None;
    }
    Some(Mount {
        device_id: l[2].to_string(),
        mount_point: unescape(l[4]),
        options: l[5].split(',').map(str::to_string).collect(),
        fs_type: r[0].to_string(),
        source: unescape(r[1]),
    })
}

/// File systems whose data lives on another host.
pub fn is_remote(fs_type: &str) -> bool {
    matches!(
        fs_type,
        "nfs"
            | "nfs4"
            | "cifs"
            | "smb3"
            | "smbfs"
            | "ncpfs"
            | "9p"
            | "ceph"
            | "glusterfs"
            | "afs"
            | "fuse.sshfs"
            | "sshfs"
            | "fuse.glusterfs"
            | "lustre"
            | "davfs"
            | "fuse.rclone"
    )
}

/// A volume as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume {
    pub mount: Mount,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub removable: Option<bool>,
    pub total_size: Option<u64>,
    pub free_size: Option<u64>,
}

impl Volume {
    /// `host` of `host:/export` or `//host/share`.
    pub fn remote_address(&self) -> Option<&str> {
        if !is_remote(&self.mount.fs_type) {
            return None;
        }
        let s = self.mount.source.as_str();
        if let Some(rest) = s.strip_prefix("//") {
            return rest.split('/').next();
        }
        if let Some(rest) = s.strip_prefix('[') {
            return rest.split(']').next();
        }
        s.split_once(':').map(|(h, _)| h.rsplit('@').next().unwrap_or(h))
    }
}

/// The VolumeItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeObservation(pub Volume);

pub const VOLUME_TERMS: &[TermId] = &[
    ids::VolumeItem_DeviceID,
    ids::VolumeItem_DevicePath,
    ids::VolumeItem_FileSystemName,
    ids::VolumeItem_Flags_ReadOnly,
    ids::VolumeItem_Flags_Removable,
    ids::VolumeItem_FreeSize,
    ids::VolumeItem_IsMounted,
    ids::VolumeItem_MountPoint,
    ids::VolumeItem_RemoteAddress,
    ids::VolumeItem_RemoteFS,
    ids::VolumeItem_TotalSize,
    ids::VolumeItem_VolumeID,
    ids::VolumeItem_VolumeName,
];

impl Observation for VolumeObservation {
    fn document(&self) -> &'static str {
        "VolumeItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let v = &self.0;
        match term {
            ids::VolumeItem_DeviceID => field::str(&v.mount.device_id),
            ids::VolumeItem_DevicePath => field::str(&v.mount.source),
            ids::VolumeItem_FileSystemName => field::str(&v.mount.fs_type),
            ids::VolumeItem_Flags_ReadOnly => field::bool(v.mount.options.iter().any(|o| o == "ro")),
            ids::VolumeItem_Flags_Removable => v.removable.map_or(Field::Absent, field::bool),
            ids::VolumeItem_FreeSize => field::opt_uint(v.free_size),
            ids::VolumeItem_TotalSize => field::opt_uint(v.total_size),
            ids::VolumeItem_IsMounted => field::bool(true),
            ids::VolumeItem_MountPoint => field::str(&v.mount.mount_point),
            ids::VolumeItem_RemoteAddress => field::opt_str(v.remote_address()),
            ids::VolumeItem_RemoteFS => field::bool(is_remote(&v.mount.fs_type)),
            ids::VolumeItem_VolumeID => field::opt_str(v.uuid.as_deref()),
            ids::VolumeItem_VolumeName => field::opt_str(v.label.as_deref()),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let m = &self.0.mount;
        object_ref(
            "volume",
            [
                ("mount_point", m.mount_point.clone().into()),
                ("device", m.source.clone().into()),
                ("fs_type", m.fs_type.clone().into()),
            ],
        )
    }
}

/// Map a `/dev/disk/by-*` directory: device name (`sda1`) → link name.
fn by_links(root: &HostRoot, dir: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(root.path(dir)) {
        for e in rd.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                if let Some(dev) = target.file_name() {
                    map.insert(dev.to_string_lossy().into_owned(), unescape_hex(&e.file_name().to_string_lossy()));
                }
            }
        }
    }
    map
}

fn removable(root: &HostRoot, dev: &str) -> Option<bool> {
    let class = root.path(format!("/sys/class/block/{dev}"));
    let own = read_text(&class.join("removable")).ok();
    let v = own.or_else(|| read_text(&class.join("../removable")).ok())?;
    Some(v.trim() == "1")
}

/// The VolumeItem collector.
pub struct VolumeCollector;

impl HostCollector for VolumeCollector {
    fn document(&self) -> &'static str {
        "VolumeItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("VolumeItem");
        let path = cx.root.proc_path("self/mountinfo");
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(e) => {
                stats.error(e);
                return stats;
            }
        };
        let uuids = by_links(&cx.root, "/dev/disk/by-uuid");
        let labels = by_links(&cx.root, "/dev/disk/by-label");
        let want_sizes = cx.root.is_live() && (cx.wanted.has(ids::VolumeItem_FreeSize) || cx.wanted.has(ids::VolumeItem_TotalSize));
        for (n, line) in text.lines().enumerate() {
            let Some(mount) = parse_mountinfo_line(line) else {
                if !line.trim().is_empty() {
                    stats.malformed(&path, n as u64 + 1, "not a mountinfo line");
                }
                continue;
            };
            let dev = mount
                .source
                .strip_prefix("/dev/")
                .map(|d| d.rsplit('/').next().unwrap_or(d).to_string());
            let mut vol = Volume {
                uuid: dev.as_ref().and_then(|d| uuids.get(d).cloned()),
                label: dev.as_ref().and_then(|d| labels.get(d).cloned()),
                removable: dev.as_ref().and_then(|d| removable(&cx.root, d)),
                mount,
                ..Default::default()
            };
            if want_sizes && !is_remote(&vol.mount.fs_type) && vol.mount.fs_type != "autofs" {
                if let Ok(s) = nix::sys::statvfs::statvfs(Path::new(&vol.mount.mount_point)) {
                    let frag = s.fragment_size();
                    vol.total_size = Some(s.blocks().saturating_mul(frag));
                    vol.free_size = Some(s.blocks_available().saturating_mul(frag));
                }
            }
            stats.emit(sink, &mut VolumeObservation(vol), |_, _| {});
        }
        stats
    }
}

/// One partition of a disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub number: Option<i64>,
    /// Bytes from the disk's start.
    pub offset: Option<u64>,
    pub length: Option<u64>,
    /// udev's ID_PART_ENTRY_TYPE (GPT type GUID or MBR type `0x83`).
    pub part_type: Option<String>,
}

/// A block device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disk {
    pub name: String,
    pub size: Option<u64>,
    /// `usb`, `ata`, `nvme`, `virtio`, `scsi`, `mmc`, `virtual`...
    pub connection: String,
    /// `removable` or `fixed`.
    pub disk_type: &'static str,
    pub partitions: Vec<Partition>,
}

/// The DiskItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskObservation(pub Disk);

pub const DISK_TERMS: &[TermId] = &[
    ids::DiskItem_DevicePath,
    ids::DiskItem_DiskConnection,
    ids::DiskItem_DiskName,
    ids::DiskItem_DiskSize,
    ids::DiskItem_PartitionList_Partition_PartitionLength,
    ids::DiskItem_PartitionList_Partition_PartitionNumber,
    ids::DiskItem_PartitionList_Partition_PartitionOffset,
    ids::DiskItem_PartitionList_Partition_PartitionType,
    ids::DiskItem_Type,
];

impl Observation for DiskObservation {
    fn document(&self) -> &'static str {
        "DiskItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let d = &self.0;
        let parts = || d.partitions.iter();
        match term {
            ids::DiskItem_DevicePath => field::owned(format!("/dev/{}", d.name)),
            ids::DiskItem_DiskConnection => field::str(&d.connection),
            ids::DiskItem_DiskName => field::str(&d.name),
            ids::DiskItem_DiskSize => field::opt_uint(d.size),
            ids::DiskItem_Type => field::str(d.disk_type),
            ids::DiskItem_PartitionList_Partition_PartitionLength => {
                Field::Values(parts().filter_map(|p| p.length.map(Value::UInt)).collect())
            }
            ids::DiskItem_PartitionList_Partition_PartitionNumber => {
                Field::Values(parts().filter_map(|p| p.number.map(Value::Int)).collect())
            }
            ids::DiskItem_PartitionList_Partition_PartitionOffset => {
                Field::Values(parts().filter_map(|p| p.offset.map(|o| Value::Int(o as i64))).collect())
            }
            ids::DiskItem_PartitionList_Partition_PartitionType => Field::Values(
                parts()
                    .filter_map(|p| p.part_type.as_deref().map(|t| Value::Str(Cow::Borrowed(t))))
                    .collect(),
            ),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref("disk", [("name", self.0.name.clone().into()), ("size", self.0.size.into())])
    }
}

fn sys_u64(p: &Path) -> Option<u64> {
    read_text(p).ok()?.trim().parse().ok()
}

/// How a disk is attached, from its sysfs device path.
fn connection(root: &HostRoot, name: &str) -> String {
    let link = std::fs::read_link(root.path(format!("/sys/block/{name}")))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (needle, conn) in [
        ("/usb", "usb"),
        ("/nvme", "nvme"),
        ("/ata", "ata"),
        ("/virtio", "virtio"),
        ("/mmc", "mmc"),
        ("/host", "scsi"),
        ("/virtual/", "virtual"),
    ] {
        if link.contains(needle) {
            return conn.to_string();
        }
    }
    "unknown".to_string()
}

/// udev's properties of a block device (`/run/udev/data/bMAJ:MIN`).
fn udev_prop(root: &HostRoot, dev_id: &str, key: &str) -> Option<String> {
    let text = read_text(&root.path(format!("/run/udev/data/b{dev_id}"))).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("E:")?.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// Read one disk from /sys/block/NAME.
pub fn read_disk(root: &HostRoot, name: &str) -> Disk {
    let dir = root.path(format!("/sys/block/{name}"));
    let mut partitions = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if !p.join("partition").exists() {
                continue;
            }
            let dev_id = read_text(&p.join("dev")).map(|s| s.trim().to_string()).unwrap_or_default();
            partitions.push(Partition {
                name: e.file_name().to_string_lossy().into_owned(),
                number: sys_u64(&p.join("partition")).map(|n| n as i64),
                offset: sys_u64(&p.join("start")).map(|s| s.saturating_mul(512)),
                length: sys_u64(&p.join("size")).map(|s| s.saturating_mul(512)),
                part_type: udev_prop(root, &dev_id, "ID_PART_ENTRY_TYPE"),
            });
        }
    }
    partitions.sort_by_key(|p| p.number);
    Disk {
        name: name.to_string(),
        size: sys_u64(&dir.join("size")).map(|s| s.saturating_mul(512)),
        connection: connection(root, name),
        disk_type: if sys_u64(&dir.join("removable")) == Some(1) {
            "removable"
        } else {
            "fixed"
        },
        partitions,
    }
}

/// The DiskItem collector.
pub struct DiskCollector;

impl HostCollector for DiskCollector {
    fn document(&self) -> &'static str {
        "DiskItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("DiskItem");
        let path = cx.root.path("/sys/block");
        match std::fs::read_dir(&path) {
            Ok(rd) => {
                let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                for name in names {
                    stats.emit(sink, &mut DiskObservation(read_disk(&cx.root, &name)), |_, _| {});
                }
            }
            Err(e) => stats.read_error(path, e),
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo() {
        let m = parse_mountinfo_line("36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue").unwrap();
        assert_eq!(m.mount_point, "/mnt two");
        assert_eq!(m.device_id, "98:0");
        assert_eq!(m.fs_type, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert_eq!(parse_mountinfo_line("36 35 98:0 / /x rw"), None);
        assert_eq!(parse_mountinfo_line("36 - ext4"), None);
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape_hex("my\\x20disk\\x2"), "my disk\\x2");
    }

    #[test]
    fn remote_addresses() {
        let v = |fs: &str, src: &str| Volume {
            mount: Mount {
                fs_type: fs.into(),
                source: src.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(v("nfs4", "files.example:/export").remote_address(), Some("files.example"));
        assert_eq!(v("cifs", "//srv/share").remote_address(), Some("srv"));
        assert_eq!(v("fuse.sshfs", "bob@h:/x").remote_address(), Some("h"));
        assert_eq!(v("ext4", "/dev/sda1").remote_address(), None);
    }
}
