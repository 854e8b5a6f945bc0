//! ProcessItem: the host's processes from /proc.
//!
//! Each process is read through an open directory fd of /proc/PID, so every
//! file read belongs to the same process even if its pid is reused meanwhile;
//! a process that exits while being read is counted as vanished and left out,
//! never reported half-read.
//!
//! The live eBPF sensors reuse [`ProcessInfo`] and [`ProcessObservation`].

use super::host::{
    digest, field, object_ref, CollectContext, CollectError, CollectStats, DigestKinds, Digests, HostCollector, HostRoot, Sink, UserNames,
};
use super::port::{socket_table, SocketEntry};
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstatat, Mode};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What is known of one process. Times are whole seconds: `start_time`
/// since the Unix epoch, `kernel_time` / `user_time` of CPU time spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Effective user id.
    pub uid: Option<u32>,
    pub username: Option<String>,
    /// The kernel's `comm` (15 bytes at most), or the executable's full file
    /// name when `comm` is its truncated start.
    pub name: String,
    /// The executable (`/proc/PID/exe`), without the kernel's ` (deleted)`.
    pub path: Option<String>,
    /// The command line, arguments joined with spaces (`argv[0]` included).
    pub arguments: Option<String>,
    pub start_time: Option<i64>,
    /// When it started, in ns after boot (at /proc's clock-tick
    /// resolution when read from /proc): what a kill checks, since whole
    /// seconds cannot tell a pid reused within the same second.
    pub start_boottime_ns: Option<u64>,
    pub kernel_time: Option<u64>,
    pub user_time: Option<u64>,
    /// The executable was deleted after the process started it.
    pub exe_deleted: bool,
}

impl ProcessInfo {
    /// A process with only its ids and name known.
    pub fn new(pid: u32, ppid: u32, name: impl Into<String>) -> Self {
        ProcessInfo {
            pid,
            ppid,
            uid: None,
            username: None,
            name: name.into(),
            path: None,
            arguments: None,
            start_time: None,
            start_boottime_ns: None,
            kernel_time: None,
            user_time: None,
            exe_deleted: false,
        }
    }
}

/// One open file descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub fd: u32,
    /// The link target: a path, `socket:[INODE]`, `pipe:[INODE]`, `anon_inode:[eventfd]`.
    pub name: String,
    /// `file`, `directory`, `device`, `socket`, `pipe`, `anon_inode`, `other`.
    pub kind: &'static str,
    pub inode: Option<u64>,
    /// `MAJOR:MINOR` of the device holding the file.
    pub device: Option<String>,
    pub size: Option<u64>,
    /// Owner of the opened object.
    pub user: Option<String>,
    pub socket: Option<SocketEntry>,
    /// Digests of a regular file's content, once computed.
    pub digests: Option<Digests>,
}

/// A ProcessItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessObservation {
    pub info: ProcessInfo,
    /// Open handles (None: not collected, e.g. no IOC asks or a live event).
    pub handles: Option<Vec<Handle>>,
}

impl ProcessObservation {
    pub fn new(info: ProcessInfo) -> Self {
        ProcessObservation { info, handles: None }
    }
}

/// The ProcessItem terms answered.
pub const TERMS: &[TermId] = &[
    ids::ProcessItem_pid,
    ids::ProcessItem_parentpid,
    ids::ProcessItem_name,
    ids::ProcessItem_path,
    ids::ProcessItem_arguments,
    ids::ProcessItem_Username,
    ids::ProcessItem_startTime,
    ids::ProcessItem_kernelTime,
    ids::ProcessItem_userTime,
    ids::ProcessItem_HandleList_Handle_Device,
    ids::ProcessItem_HandleList_Handle_FileDescriptor,
    ids::ProcessItem_HandleList_Handle_INode,
    ids::ProcessItem_HandleList_Handle_Md5sum,
    ids::ProcessItem_HandleList_Handle_Name,
    ids::ProcessItem_HandleList_Handle_Sha1sum,
    ids::ProcessItem_HandleList_Handle_Sha256sum,
    ids::ProcessItem_HandleList_Handle_Size,
    ids::ProcessItem_HandleList_Handle_SocketLocalAddress,
    ids::ProcessItem_HandleList_Handle_SocketLocalPort,
    ids::ProcessItem_HandleList_Handle_SocketProtocol,
    ids::ProcessItem_HandleList_Handle_SocketRemoteAddress,
    ids::ProcessItem_HandleList_Handle_SocketRemotePort,
    ids::ProcessItem_HandleList_Handle_SocketState,
    ids::ProcessItem_HandleList_Handle_SocketType,
    ids::ProcessItem_HandleList_Handle_Type,
    ids::ProcessItem_HandleList_Handle_User,
];

const DIGEST_TERMS: [TermId; 3] = [
    ids::ProcessItem_HandleList_Handle_Md5sum,
    ids::ProcessItem_HandleList_Handle_Sha1sum,
    ids::ProcessItem_HandleList_Handle_Sha256sum,
];

impl ProcessObservation {
    fn handle_values<'a>(&'a self, f: impl Fn(&'a Handle) -> Option<Value<'a>>) -> Field<'a> {
        match &self.handles {
            None => Field::Absent,
            Some(h) => Field::Values(h.iter().filter_map(f).collect()),
        }
    }

    fn handle_digest<'a>(&'a self, pick: impl Fn(&'a Digests) -> Option<&'a [u8]>) -> Field<'a> {
        let Some(handles) = &self.handles else { return Field::Absent };
        let mut out = Vec::new();
        for h in handles.iter().filter(|h| h.kind == "file") {
            match &h.digests {
                None => return Field::Pending,
                Some(d) => out.extend(pick(d).map(|b| Value::Digest(Cow::Borrowed(b)))),
            }
        }
        Field::Values(out)
    }
}

fn s(x: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(x))
}

impl Observation for ProcessObservation {
    fn document(&self) -> &'static str {
        "ProcessItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let p = &self.info;
        match term {
            ids::ProcessItem_pid => field::int(p.pid.into()),
            ids::ProcessItem_parentpid => field::int(p.ppid.into()),
            ids::ProcessItem_name => field::str(&p.name),
            ids::ProcessItem_path => field::opt_str(p.path.as_deref()),
            ids::ProcessItem_arguments => field::opt_str(p.arguments.as_deref()),
            ids::ProcessItem_Username => field::opt_str(p.username.as_deref()),
            ids::ProcessItem_startTime => field::time(p.start_time),
            ids::ProcessItem_kernelTime => field::duration(p.kernel_time),
            ids::ProcessItem_userTime => field::duration(p.user_time),
            ids::ProcessItem_HandleList_Handle_Device => self.handle_values(|h| h.device.as_deref().map(s)),
            ids::ProcessItem_HandleList_Handle_FileDescriptor => self.handle_values(|h| Some(Value::Str(Cow::Owned(h.fd.to_string())))),
            ids::ProcessItem_HandleList_Handle_INode => self.handle_values(|h| h.inode.map(|i| Value::Int(i as i64))),
            ids::ProcessItem_HandleList_Handle_Name => self.handle_values(|h| Some(s(&h.name))),
            ids::ProcessItem_HandleList_Handle_Size => self.handle_values(|h| h.size.map(|n| Value::Str(Cow::Owned(n.to_string())))),
            ids::ProcessItem_HandleList_Handle_Type => self.handle_values(|h| Some(s(h.kind))),
            ids::ProcessItem_HandleList_Handle_User => self.handle_values(|h| h.user.as_deref().map(s)),
            ids::ProcessItem_HandleList_Handle_SocketLocalAddress => {
                self.handle_values(|h| h.socket.as_ref()?.local_address.as_deref().map(s))
            }
            ids::ProcessItem_HandleList_Handle_SocketLocalPort => {
                self.handle_values(|h| h.socket.as_ref()?.local_port.map(|p| Value::Str(Cow::Owned(p.to_string()))))
            }
            ids::ProcessItem_HandleList_Handle_SocketProtocol => self.handle_values(|h| Some(s(h.socket.as_ref()?.protocol))),
            ids::ProcessItem_HandleList_Handle_SocketRemoteAddress => {
                self.handle_values(|h| h.socket.as_ref()?.remote_address.as_deref().map(s))
            }
            ids::ProcessItem_HandleList_Handle_SocketRemotePort => {
                self.handle_values(|h| h.socket.as_ref()?.remote_port.map(|p| Value::Str(Cow::Owned(p.to_string()))))
            }
            ids::ProcessItem_HandleList_Handle_SocketState => self.handle_values(|h| h.socket.as_ref()?.state.map(s)),
            ids::ProcessItem_HandleList_Handle_SocketType => self.handle_values(|h| Some(s(h.socket.as_ref()?.socket_type))),
            ids::ProcessItem_HandleList_Handle_Md5sum => self.handle_digest(|d| d.md5.as_ref().map(|b| &b[..])),
            ids::ProcessItem_HandleList_Handle_Sha1sum => self.handle_digest(|d| d.sha1.as_ref().map(|b| &b[..])),
            ids::ProcessItem_HandleList_Handle_Sha256sum => self.handle_digest(|d| d.sha256.as_ref().map(|b| &b[..])),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let p = &self.info;
        object_ref(
            "process",
            [
                ("pid", p.pid.into()),
                ("ppid", p.ppid.into()),
                ("name", p.name.clone().into()),
                ("path", p.path.clone().into()),
                ("start_time", p.start_time.into()),
                ("start_boottime_ns", p.start_boottime_ns.into()),
                ("username", p.username.clone().into()),
                ("exe_deleted", if p.exe_deleted { true.into() } else { serde_json::Value::Null }),
            ],
        )
    }
}

/// Why one process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessReadError {
    /// It exited (or its pid was reused) while being read.
    #[error("process {pid} exited while being read")]
    Vanished { pid: u32 },
    #[error("process {pid}: {file}: {errno}")]
    Read { pid: u32, file: &'static str, errno: Errno },
    #[error("process {pid}: {file}: malformed")]
    Malformed { pid: u32, file: &'static str },
}

/// The fields of /proc/PID/stat a ProcessItem needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// The kernel's task flags (`PF_*`; `PF_KTHREAD` marks a kernel thread).
    pub flags: u64,
    pub utime: u64,
    pub stime: u64,
    /// Clock ticks after boot.
    pub starttime: u64,
}

/// Parse /proc/PID/stat. `comm` may hold spaces and parentheses: it runs
/// from the first `(` to the last `)`.
pub fn parse_stat(bytes: &[u8]) -> Option<Stat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&bytes[..open]).ok()?.trim().parse().ok()?;
    let comm = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().take(20).collect();
    // Fields after comm, numbered as in proc(5) minus 3.
    let num = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: u32::try_from(num(1)?).ok()?,
        flags: num(6)?,
        utime: num(11)?,
        stime: num(12)?,
        starttime: num(19)?,
    })
}

/// The effective uid from /proc/PID/status.
pub fn parse_status_uid(text: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line[4..].split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Boot time (seconds since the epoch) from /proc/stat `btime`.
pub fn boot_time(root: &HostRoot) -> Option<i64> {
    let text = super::host::read_text(&root.proc_path("stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Clock ticks per second (USER_HZ).
pub fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// An open /proc/PID directory: everything read through it belongs to the
/// same process.
pub struct ProcDir {
    pub pid: u32,
    fd: OwnedFd,
}

const SMALL: u64 = 64 << 10;
/// The kernel caps a command line at a few pages in practice; argv can be larger.
const CMDLINE_LIMIT: u64 = 256 << 10;

fn vanished(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ESRCH)
}

impl ProcDir {
    pub fn open(root: &HostRoot, pid: u32) -> Result<ProcDir, ProcessReadError> {
        let path = root.proc_path(pid.to_string());
        let fd = nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
            if vanished(errno) {
                ProcessReadError::Vanished { pid }
            } else {
                ProcessReadError::Read { pid, file: "", errno }
            }
        })?;
        Ok(ProcDir { pid, fd })
    }

    fn err(&self, file: &'static str, errno: Errno) -> ProcessReadError {
        if vanished(errno) {
            ProcessReadError::Vanished { pid: self.pid }
        } else {
            ProcessReadError::Read {
                pid: self.pid,
                file,
                errno,
            }
        }
    }

    /// Read `file` (at most `limit` bytes; longer content is cut).
    pub fn read(&self, file: &'static str, limit: u64) -> Result<Vec<u8>, ProcessReadError> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let fd = openat(self.fd.as_fd(), file, flags, Mode::empty()).map_err(|e| self.err(file, e))?;
        let mut buf = Vec::new();
        File::from(fd)
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(|e| self.err(file, Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        Ok(buf)
    }

    pub fn readlink(&self, file: &'static str) -> Result<Vec<u8>, ProcessReadError> {
        readlinkat(self.fd.as_fd(), file)
            .map(|s| s.as_bytes().to_vec())
            .map_err(|e| self.err(file, e))
    }

    pub fn stat(&self) -> Result<Stat, ProcessReadError> {
        let bytes = self.read("stat", SMALL)?;
        parse_stat(&bytes).ok_or(ProcessReadError::Malformed {
            pid: self.pid,
            file: "stat",
        })
    }

    /// The executable's path and whether it was deleted; None for kernel
    /// threads and processes we may not look into.
    pub fn exe(&self) -> Option<(String, bool)> {
        let raw = self.readlink("exe").ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        Some(match text.strip_suffix(" (deleted)") {
            Some(p) => (p.to_string(), true),
            None => (text, false),
        })
    }

    /// Open one of the process's fds for reading (works for deleted files).
    pub fn open_fd(&self, fd: u32) -> std::io::Result<File> {
        let name = format!("fd/{fd}");
        let owned = openat(
            self.fd.as_fd(),
            name.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)?;
        Ok(File::from(owned))
    }

    /// Digests of the regular file behind one of the process's fds, judged
    /// on the opened descriptor (the fd may have been replaced by a FIFO or
    /// /dev/zero since it was listed), at most
    /// [`super::safe_read::PROGRAM_LIMIT`] bytes.
    pub fn digest_fd(&self, fd: u32, kinds: DigestKinds) -> std::io::Result<Digests> {
        let file = self.open_fd(fd)?;
        let st = rustix::fs::fstat(&file)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        let limit = super::safe_read::PROGRAM_LIMIT;
        if st.st_size as u64 > limit {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        let mut reader = file.take(limit);
        let d = digest(&mut reader, kinds)?;
        if reader.limit() == 0 && reader.into_inner().read(&mut [0u8; 1])? > 0 {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        Ok(d)
    }

    /// The process's open fds with their link targets.
    pub fn fds(&self) -> Result<Vec<(u32, Vec<u8>)>, ProcessReadError> {
        let mut dir = Dir::openat(
            self.fd.as_fd(),
            "fd",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("fd", e))?;
        let dir_fd = dir
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| self.err("fd", Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let Ok(entry) = entry else { continue };
            let Some(fd) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // A fd closed meanwhile is simply gone.
            if let Ok(target) = readlinkat(dir_fd.as_fd(), entry.file_name()) {
                out.push((fd, target.as_bytes().to_vec()));
            }
        }
        Ok(out)
    }

    /// stat(2) of the object behind one of the process's fds.
    pub fn fd_stat(&self, fd: u32) -> Option<nix::sys::stat::FileStat> {
        let name = format!("fd/{fd}");
        fstatat(self.fd.as_fd(), name.as_str(), nix::fcntl::AtFlags::empty()).ok()
    }
}

/// The name to report: `comm`, or the executable's (or `argv[0]`'s) file name
/// when `comm` is its start cut at 15 bytes.
pub fn full_name(comm: &str, exe: Option<&str>, argv0: Option<&str>) -> String {
    if comm.len() >= 15 {
        for cand in [exe, argv0].into_iter().flatten() {
            let base = cand.rsplit('/').next().unwrap_or(cand);
            if base.len() > comm.len() && base.starts_with(comm) {
                return base.to_string();
            }
        }
    }
    comm.to_string()
}

/// Whatever one collection of processes shares.
pub struct ProcessReader {
    pub root: HostRoot,
    boot_time: Option<i64>,
    ticks: u64,
    users: UserNames,
}

impl ProcessReader {
    pub fn new(root: &HostRoot) -> Self {
        ProcessReader {
            root: root.clone(),
            boot_time: boot_time(root),
            ticks: clock_ticks(),
            users: UserNames::load(root),
        }
    }

    pub fn users(&self) -> &UserNames {
        &self.users
    }

    /// Read one process. The caller checks [`ProcessReader::still_same`]
    /// after reading anything more through `dir`.
    pub fn read(&self, dir: &ProcDir) -> Result<(ProcessInfo, Stat), ProcessReadError> {
        let stat = dir.stat()?;
        let uid = dir
            .read("status", SMALL)
            .ok()
            .and_then(|b| parse_status_uid(&String::from_utf8_lossy(&b)));
        let cmdline = dir.read("cmdline", CMDLINE_LIMIT)?;
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let exe = dir.exe();
        let name = full_name(&stat.comm, exe.as_ref().map(|(p, _)| p.as_str()), args.first().map(String::as_str));
        let ticks = self.ticks.max(1);
        let info = ProcessInfo {
            pid: dir.pid,
            ppid: stat.ppid,
            uid,
            username: uid.map(|u| self.users.name(u).map_or_else(|| u.to_string(), str::to_string)),
            name,
            path: exe.as_ref().map(|(p, _)| p.clone()),
            arguments: (!args.is_empty()).then(|| args.join(" ")),
            start_time: self.boot_time.map(|b| b + (stat.starttime / ticks) as i64),
            start_boottime_ns: Some(stat.starttime.saturating_mul(1_000_000_000 / ticks.max(1))),
            kernel_time: Some(stat.stime / ticks),
            user_time: Some(stat.utime / ticks),
            exe_deleted: exe.is_some_and(|(_, d)| d),
        };
        Ok((info, stat))
    }

    /// Whether the process read as `first` is still alive and the same.
    pub fn still_same(&self, dir: &ProcDir, first: &Stat) -> Result<(), ProcessReadError> {
        match dir.stat() {
            Ok(now) if now.starttime == first.starttime && now.state != 'X' => Ok(()),
            Ok(_) => Err(ProcessReadError::Vanished { pid: dir.pid }),
            Err(e) => Err(e),
        }
    }

    /// The process's open handles, sockets described from `sockets`.
    pub fn handles(&self, dir: &ProcDir, sockets: &HashMap<u64, SocketEntry>) -> Result<Vec<Handle>, ProcessReadError> {
        let mut out = Vec::new();
        for (fd, target) in dir.fds()? {
            let name = String::from_utf8_lossy(&target).into_owned();
            let st = dir.fd_stat(fd);
            let fmt = st.map(|s| s.st_mode & libc::S_IFMT);
            let kind = if name.starts_with("socket:[") {
                "socket"
            } else if name.starts_with("pipe:[") {
                "pipe"
            } else if name.starts_with("anon_inode:") {
                "anon_inode"
            } else {
                match fmt {
                    Some(libc::S_IFREG) => "file",
                    Some(libc::S_IFDIR) => "directory",
                    Some(libc::S_IFCHR) | Some(libc::S_IFBLK) => "device",
                    Some(libc::S_IFIFO) => "pipe",
                    Some(libc::S_IFSOCK) => "socket",
                    _ => "other",
                }
            };
            let inode = st.map(|s| s.st_ino);
            out.push(Handle {
                fd,
                kind,
                inode,
                device: st.map(|s| format!("{}:{}", libc::major(s.st_dev), libc::minor(s.st_dev))),
                size: st.filter(|_| kind == "file").map(|s| s.st_size as u64),
                user: st.map(|s| self.users.name(s.st_uid).map_or_else(|| s.st_uid.to_string(), str::to_string)),
                socket: if kind == "socket" {
                    inode.and_then(|i| sockets.get(&i).cloned())
                } else {
                    None
                },
                digests: None,
                name,
            });
        }
        Ok(out)
    }
}

/// Compute the digests `terms` ask for of the regular files a process holds open.
pub fn complete_digests(dir: &ProcDir, obs: &mut ProcessObservation, terms: &[TermId]) {
    let kinds = DigestKinds {
        md5: terms.contains(&DIGEST_TERMS[0]),
        sha1: terms.contains(&DIGEST_TERMS[1]),
        sha256: terms.contains(&DIGEST_TERMS[2]),
    };
    let Some(handles) = obs.handles.as_mut() else { return };
    for h in handles.iter_mut().filter(|h| h.kind == "file" && h.digests.is_none()) {
        // An unreadable file gets empty digests: absent, not pending forever.
        h.digests = Some(if kinds.any() {
            dir.digest_fd(h.fd, kinds).unwrap_or_default()
        } else {
            Digests::default()
        });
    }
}

/// The pids under the proc root.
pub fn pids(root: &HostRoot, stats: &mut CollectStats) -> Vec<u32> {
    let path = root.proc();
    match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(e) => {
            stats.read_error(path, e);
            Vec::new()
        }
    }
}

/// Who owns a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOwner {
    pub pid: u32,
    pub name: String,
    pub path: Option<String>,
}

/// The process owning each socket inode (the first found when shared).
pub fn socket_owners(root: &HostRoot, stats: &mut CollectStats) -> HashMap<u64, SocketOwner> {
    let mut owners = HashMap::new();
    for pid in pids(root, stats) {
        let Ok(dir) = ProcDir::open(root, pid) else { continue };
        let Ok(fds) = dir.fds() else { continue };
        let inodes: Vec<u64> = fds
            .iter()
            .filter_map(|(_, t)| {
                t.strip_prefix(b"socket:[")?
                    .strip_suffix(b"]")
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
            })
            .collect();
        if inodes.is_empty() {
            continue;
        }
        let Ok(stat) = dir.stat() else { continue };
        let exe = dir.exe();
        let owner = SocketOwner {
            pid,
            name: full_name(&stat.comm, exe.as_ref().map(|(p, _)| p.as_str()), None),
            path: exe.map(|(p, _)| p),
        };
        for inode in inodes {
            owners.entry(inode).or_insert_with(|| owner.clone());
        }
    }
    owners
}

/// The ProcessItem collector.
pub struct ProcessCollector;

impl HostCollector for ProcessCollector {
    fn document(&self) -> &'static str {
        "ProcessItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("ProcessItem");
        let reader = ProcessReader::new(&cx.root);
        if reader.boot_time.is_none() {
            stats.error(CollectError::Other {
                what: cx.root.proc_path("stat").display().to_string(),
                reason: "no btime: start times unknown".into(),
            });
        }
        let want_handles = cx.wanted.has_prefix("ProcessItem/HandleList/");
        let sockets = if want_handles && cx.wanted.has_prefix("ProcessItem/HandleList/Handle/Socket") {
            socket_table(&cx.root, &mut stats)
        } else {
            HashMap::new()
        };
        for pid in pids(&cx.root, &mut stats) {
            let read = ProcDir::open(&cx.root, pid).and_then(|dir| {
                let (info, first) = reader.read(&dir)?;
                let handles = if want_handles {
                    Some(reader.handles(&dir, &sockets)?)
                } else {
                    None
                };
                reader.still_same(&dir, &first)?;
                Ok((dir, ProcessObservation { info, handles }))
            });
            match read {
                Ok((dir, mut obs)) => stats.emit(sink, &mut obs, |obs, terms| complete_digests(&dir, obs, terms)),
                Err(ProcessReadError::Vanished { .. }) => stats.vanished += 1,
                Err(e) => stats.error(CollectError::Other {
                    what: format!("process {pid}"),
                    reason: e.to_string(),
                }),
            }
        }
        stats
    }
}

/// Read one process of the live host (or of `root`) by pid, e.g. to describe
/// the process behind a live event.
pub fn read_process(root: &HostRoot, pid: u32) -> Result<ProcessInfo, ProcessReadError> {
    let reader = ProcessReader::new(root);
    let dir = ProcDir::open(root, pid)?;
    let (info, first) = reader.read(&dir)?;
    reader.still_same(&dir, &first)?;
    Ok(info)
}

/// Whether `path` names a process directory (`/proc/123`).
pub fn is_pid_dir(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 10 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 42);
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.utime, 7);
        assert_eq!(s.stime, 3);
        assert_eq!(s.starttime, 12345);
    }

    #[test]
    fn rejects_bad_stat() {
        for bad in [&b""[..], b"42", b"42 (x", b"x (y) S 1", b"42 )x( S 1 2 3", b"42 (x) S 1 2"] {
            assert_eq!(parse_stat(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn status_uid_is_the_effective_one() {
        assert_eq!(parse_status_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\n"), Some(0));
        assert_eq!(parse_status_uid("Name:\tx\n"), None);
    }

    #[test]
    fn full_name_only_extends_a_truncated_comm() {
        assert_eq!(full_name("sleep", Some("/usr/bin/sleep"), None), "sleep");
        assert_eq!(
            full_name("ioc_test_marker", Some("/tmp/ioc_test_marker_123"), None),
            "ioc_test_marker_123"
        );
        assert_eq!(
            full_name("ioc_test_marker", Some("/tmp/other"), Some("ioc_test_marker_x")),
            "ioc_test_marker_x"
        );
        assert_eq!(full_name("kworker/0:1-eve", None, None), "kworker/0:1-eve");
    }

    #[test]
    fn reads_this_process() {
        let me = read_process(&HostRoot::system(), std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert_eq!(me.path.as_deref(), std::env::current_exe().ok().as_deref().and_then(|p| p.to_str()));
        assert!(me.start_time.is_some());
    }
}
