//! Ring buffer records decoded into owned, checked Rust values.

use ioc_scan_common as k;
use ioc_scan_common::read;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One kernel event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Exec(Exec),
    Exit(Exit),
    Conn(Conn),
    /// A connect/send the block list refused.
    Blocked(Conn),
    Dns(Dns),
}

/// What the kernel did about an exec that matched a kill list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelKill {
    /// SIGKILL sent before the program ran.
    Killed,
    /// Protected process (pid 1, ioc-scan itself, kernel thread).
    Refused,
    /// bpf_send_signal failed.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exec {
    pub pid: u32,
    /// Parent (from the task; absent when the kernel offsets were unknown).
    pub ppid: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    /// The process name (comm): at most 15 bytes.
    pub comm: String,
    /// The path given to execve (may be relative).
    pub filename: String,
    pub filename_truncated: bool,
    pub args: Vec<String>,
    pub args_truncated: bool,
    /// Process start, ns since boot (`CLOCK_BOOTTIME`), as /proc/PID/stat.
    pub start_boottime_ns: Option<u64>,
    pub time_ns: u64,
    /// The executable's device (user-space `dev_t`, as `stat` gives it) and inode.
    pub dev: Option<u64>,
    pub ino: Option<u64>,
    /// Which kill lists matched (`name`, `path`, `inode`).
    pub kill_matched: Vec<&'static str>,
    pub kernel_kill: Option<KernelKill>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exit {
    pub pid: u32,
    pub time_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Other,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Conn {
    /// The owning process, when known (see `CONN_OWNER_KNOWN`).
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub comm: Option<String>,
    pub protocol: Protocol,
    /// TCP state name (`SYN_SENT`, `ESTABLISHED`, `LISTEN`); None for UDP.
    pub state: Option<&'static str>,
    pub old_state: Option<&'static str>,
    /// Unknown (unspecified, port 0) when the hook does not see it.
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    /// `tcp_state`, `connect` or `sendmsg`.
    pub source: &'static str,
    pub time_ns: u64,
    /// The socket's id ([`ioc_scan_common::ConnEvent::sock`]); not printed
    /// (for TCP it is a kernel address).
    #[serde(skip)]
    pub sock: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dns {
    pub pid: Option<u32>,
    /// Came in (an answer) rather than went out (a query).
    pub ingress: bool,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub truncated: bool,
    /// Seen as it was queued on the asking socket (the `sk_data_ready`
    /// sensor), which sees answers only: their question stands for the
    /// query. False from the per-packet fallback, which sees queries too.
    pub at_socket: bool,
    pub time_ns: u64,
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("ring buffer record of {0} bytes has no event kind")]
    Short(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("event kind {kind}: {len} bytes, expected {expected}")]
    Size { kind: u32, len: usize, expected: usize },
}

fn sized<T: aya::Pod>(kind: u32, record: &[u8]) -> Result<T, DecodeError> {
    read::event::<T>(record).ok_or(DecodeError::Size {
        kind,
        len: record.len(),
        expected: std::mem::size_of::<T>(),
    })
}

/// Decode one ring buffer record.
pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    let kind = read::kind(record).ok_or(DecodeError::Short(record.len()))?;
    match kind {
        k::EVENT_EXEC => Ok(Event::Exec(exec(&sized::<k::ExecEvent>(kind, record)?))),
        k::EVENT_EXIT => {
            let e = sized::<k::ExitEvent>(kind, record)?;
            Ok(Event::Exit(Exit {
                pid: e.pid,
                time_ns: e.time_ns,
            }))
        }
        k::EVENT_CONN => Ok(Event::Conn(conn(&sized::<k::ConnEvent>(kind, record)?))),
        k::EVENT_BLOCKED => Ok(Event::Blocked(conn(&sized::<k::ConnEvent>(kind, record)?))),
        k::EVENT_DNS => Ok(Event::Dns(dns(&sized::<k::DnsEvent>(kind, record)?))),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

/// Bytes up to the first NUL (or all), as text.
fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The kernel's `dev_t` (major << 20 | minor) as user space's (`stat`).
pub fn user_dev(kernel_dev: u64) -> u64 {
    libc::makedev((kernel_dev >> 20) as u32, (kernel_dev & 0xf_ffff) as u32)
}

/// User space's `dev_t` as the kernel's (for the inode kill list).
pub fn kernel_dev(user_dev: u64) -> u64 {
    (u64::from(libc::major(user_dev)) << 20) | u64::from(libc::minor(user_dev))
}

fn exec(e: &k::ExecEvent) -> Exec {
    let task = e.flags & k::EXEC_TASK_FIELDS != 0;
    let args_len = (e.args_len as usize).min(e.args.len());
    let mut args: Vec<String> = e.args[..args_len]
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // The list ends with a NUL: drop the empty piece after it.
    if args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    let mut kill_matched = Vec::new();
    for (bit, name) in [
        (k::EXEC_MATCH_COMM, "name"),
        (k::EXEC_MATCH_PATH, "path"),
        (k::EXEC_MATCH_INODE, "inode"),
    ] {
        if e.flags & bit != 0 {
            kill_matched.push(name);
        }
    }
    let kernel_kill = if e.flags & k::EXEC_KILLED != 0 {
        Some(KernelKill::Killed)
    } else if e.flags & k::EXEC_KILL_REFUSED != 0 {
        Some(KernelKill::Refused)
    } else if e.flags & k::EXEC_KILL_FAILED != 0 {
        Some(KernelKill::Failed)
    } else {
        None
    };
    Exec {
        pid: e.pid,
        ppid: task.then_some(e.ppid),
        uid: e.uid,
        gid: e.gid,
        comm: c_str(&e.comm),
        filename: c_str(&e.path),
        filename_truncated: e.flags & k::EXEC_PATH_TRUNCATED != 0,
        args,
        args_truncated: e.flags & k::EXEC_ARGS_TRUNCATED != 0,
        start_boottime_ns: task.then_some(e.start_boottime_ns),
        time_ns: e.time_ns,
        dev: task.then(|| user_dev(e.dev)),
        ino: task.then_some(e.ino),
        kill_matched,
        kernel_kill,
    }
}

fn ip(bytes: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

pub fn tcp_state_name(state: u16) -> Option<&'static str> {
    Some(match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => return None,
    })
}

fn conn(e: &k::ConnEvent) -> Conn {
    let v6 = e.flags & k::CONN_IPV6 != 0;
    let owner = e.flags & k::CONN_OWNER_KNOWN != 0;
    let protocol = match e.protocol {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => Protocol::Other,
    };
    let from_tcp_state = e.flags & k::CONN_FROM_TCP_STATE != 0;
    Conn {
        pid: owner.then_some(e.pid),
        uid: owner.then_some(e.uid),
        comm: owner.then(|| c_str(&e.comm)),
        protocol,
        state: if from_tcp_state { tcp_state_name(e.state) } else { None },
        old_state: if from_tcp_state { tcp_state_name(e.old_state) } else { None },
        local_ip: ip(&e.local_addr, v6),
        local_port: e.local_port,
        remote_ip: ip(&e.remote_addr, v6),
        remote_port: e.remote_port,
        source: if from_tcp_state {
            "tcp_state"
        } else if e.flags & k::CONN_FROM_SENDMSG != 0 {
            "sendmsg"
        } else {
            "connect"
        },
        time_ns: e.time_ns,
        sock: e.sock,
    }
}

fn dns(e: &k::DnsEvent) -> Dns {
    let v6 = e.flags & k::DNS_IPV6 != 0;
    let len = (e.payload_len as usize).min(e.payload.len());
    Dns {
        pid: (e.flags & k::DNS_OWNER_KNOWN != 0).then_some(e.pid),
        ingress: e.flags & k::DNS_INGRESS != 0,
        src_ip: ip(&e.src_addr, v6),
        src_port: e.src_port,
        dst_ip: ip(&e.dst_addr, v6),
        dst_port: e.dst_port,
        payload: e.payload[..len].to_vec(),
        truncated: e.flags & k::DNS_TRUNCATED != 0,
        at_socket: e.flags & k::DNS_AT_SOCKET != 0,
        time_ns: e.time_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<T: aya::Pod>(v: &T) -> Vec<u8> {
        // SAFETY: T is Pod: every byte is initialised plain data.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }.to_vec()
    }

    #[test]
    fn exec_record_decodes_with_args_and_kill_outcome() {
        let mut e = k::ExecEvent {
            kind: k::EVENT_EXEC,
            flags: k::EXEC_TASK_FIELDS | k::EXEC_MATCH_COMM | k::EXEC_KILLED,
            pid: 10,
            ppid: 9,
            uid: 0,
            gid: 0,
            path_len: 9,
            args_len: 12,
            start_boottime_ns: 5,
            time_ns: 6,
            dev: (8 << 20) | 1,
            ino: 77,
            comm: [0; 16],
            path: [0; k::PATH_LEN],
            args: [0; k::ARGS_LEN],
        };
        e.comm[..4].copy_from_slice(b"true");
        e.path[..9].copy_from_slice(b"/bin/true");
        e.args[..12].copy_from_slice(b"true\0-x\0--y\0");
        let Event::Exec(x) = decode(&bytes(&e)).unwrap() else {
            panic!("not exec")
        };
        assert_eq!(x.comm, "true");
        assert_eq!(x.filename, "/bin/true");
        assert_eq!(x.args, vec!["true", "-x", "--y"]);
        assert_eq!(x.ppid, Some(9));
        assert_eq!(x.dev, Some(libc::makedev(8, 1)));
        assert_eq!(kernel_dev(x.dev.unwrap()), (8 << 20) | 1);
        assert_eq!(x.kill_matched, vec!["name"]);
        assert_eq!(x.kernel_kill, Some(KernelKill::Killed));
    }

    #[test]
    fn wrong_sizes_and_kinds_are_errors() {
        assert_eq!(decode(&[1, 0]).unwrap_err(), DecodeError::Short(2));
        assert_eq!(decode(&[99, 0, 0, 0]).unwrap_err(), DecodeError::UnknownKind(99));
        assert!(matches!(decode(&[1, 0, 0, 0, 0]).unwrap_err(), DecodeError::Size { kind: 1, .. }));
    }
}
