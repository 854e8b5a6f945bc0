//! Structs that cross the kernel/user boundary: `#[repr(C)]`, no_std, shared
//! by `ioc-scan-ebpf` (kernel) and `ioc-scan` (user, feature `user`).
//!
//! Every event written to the ring buffer starts with `kind: u32` (one of
//! the `EVENT_*` numbers) so that user space can tell the struct from its
//! first four bytes and check the record's size before reading it. Flags
//! are `u32` bit sets (no `bool`: its only valid values are 0 and 1, which
//! the kernel side cannot promise for bytes it copies around).
//! Addresses are in network byte order (as on the wire), ports in host byte
//! order.
#![no_std]

use core::mem::size_of;

// ---------------------------------------------------------------- event kinds

/// A program was executed ([`ExecEvent`]).
pub const EVENT_EXEC: u32 = 1;
/// A process (thread group leader) exited ([`ExitEvent`]).
pub const EVENT_EXIT: u32 = 2;
/// A TCP state change, or a UDP connect/send to a new peer ([`ConnEvent`]).
pub const EVENT_CONN: u32 = 3;
/// A connect/send refused by the block list ([`ConnEvent`]).
pub const EVENT_BLOCKED: u32 = 4;
/// A DNS message (UDP port 53) seen on a socket ([`DnsEvent`]).
pub const EVENT_DNS: u32 = 5;
/// One past the highest event kind: the size of the [`MAP_LOST`] array.
pub const EVENT_KIND_COUNT: u32 = 6;

// ---------------------------------------------------------------- map names

/// Ring buffer carrying every event to user space.
pub const MAP_EVENTS: &str = "EVENTS";
/// Per-CPU array of `u64`, indexed by event kind: events dropped because
/// the ring buffer was full.
pub const MAP_LOST: &str = "LOST";
/// Array with one [`Config`] at index 0, written by user space before the
/// programs are attached.
pub const MAP_CONFIG: &str = "CONFIG";
/// Hash map `[u8; COMM_LEN]` → `u32` `MATCH_*`: process names to kill at exec.
pub const MAP_KILL_COMM: &str = "KILL_COMM";
/// Hash map `[u8; PATH_LEN]` → `u32` `MATCH_*`: executable paths to kill at exec.
pub const MAP_KILL_PATH: &str = "KILL_PATH";
/// Hash map [`InodeKey`] → `u32`: executables (device + inode) to kill at exec.
pub const MAP_KILL_INODE: &str = "KILL_INODE";
/// Hash map `u32` tgid → [`ProtectedTask`]: processes the kill at exec
/// spares whatever lists they match (ioc-scan's ancestors; pid 1, ioc-scan
/// itself and kernel threads are spared without it).
pub const MAP_PROTECTED: &str = "PROTECTED";
/// Entries [`MAP_PROTECTED`] holds at most.
pub const PROTECTED_MAX: u32 = 256;
/// Hash map [`Block4Key`] → `u32`: IPv4 destinations to refuse.
pub const MAP_BLOCK_V4: &str = "BLOCK_V4";
/// Hash map [`Block6Key`] → `u32`: IPv6 destinations to refuse.
pub const MAP_BLOCK_V6: &str = "BLOCK_V6";

// ---------------------------------------------------------------- program names

/// `sched/sched_process_exec` tracepoint.
pub const PROG_EXEC: &str = "sched_process_exec";
/// `sched/sched_process_exit` tracepoint.
pub const PROG_EXIT: &str = "sched_process_exit";
/// `sock/inet_sock_set_state` tracepoint (used when [`SockOffsets`] are unknown).
pub const PROG_TCP_STATE: &str = "inet_sock_set_state";
/// `sock/inet_sock_set_state` as a BTF tracepoint (`tp_btf`): no trace
/// record is built for the program, which reads the socket directly at the
/// offsets of [`GLOBAL_SOCK_OFFSETS`].
pub const PROG_TCP_STATE_BTF: &str = "inet_sock_set_state_btf";

// ---------------------------------------------------------------- globals

/// Read-only global [`SockOffsets`], set by the loader from the kernel's
/// BTF: constants to the verifier, so the program's loads through the
/// socket pointer are checked against the socket's real layout.
pub const GLOBAL_SOCK_OFFSETS: &str = "SOCK_OFFSETS";
/// Read-only global [`DnsOffsets`], set by the loader from the kernel's
/// BTF (as [`GLOBAL_SOCK_OFFSETS`]).
pub const GLOBAL_DNS_OFFSETS: &str = "DNS_OFFSETS";
/// `cgroup/connect4`.
pub const PROG_CONNECT4: &str = "connect4";
/// `cgroup/connect6`.
pub const PROG_CONNECT6: &str = "connect6";
/// `cgroup/sendmsg4`.
pub const PROG_SENDMSG4: &str = "sendmsg4";
/// `cgroup/sendmsg6`.
pub const PROG_SENDMSG6: &str = "sendmsg6";
/// `sock/sk_data_ready` as a BTF tracepoint: DNS answers as they are
/// queued on a socket that sent to port 53 (reads the socket and its
/// newest datagram at the offsets of [`GLOBAL_DNS_OFFSETS`]).
pub const PROG_DNS_DATA_READY: &str = "dns_data_ready";
/// `cgroup_skb/egress`: DNS queries (the fallback when
/// [`PROG_DNS_DATA_READY`] cannot be used; runs on every packet).
pub const PROG_DNS_EGRESS: &str = "dns_egress";
/// `cgroup_skb/ingress`: DNS answers (fallback, with [`PROG_DNS_EGRESS`]).
pub const PROG_DNS_INGRESS: &str = "dns_ingress";

// ---------------------------------------------------------------- sizes

/// `TASK_COMM_LEN`: a process name is at most 15 bytes plus NUL.
pub const COMM_LEN: usize = 16;
/// Bytes of the executed path kept (longer paths are cut, flagged).
pub const PATH_LEN: usize = 256;
/// Bytes of the NUL-separated argument list kept (longer lists are cut, flagged).
pub const ARGS_LEN: usize = 512;
/// Bytes of a DNS message kept (a classic UDP DNS message is at most 512).
pub const DNS_PAYLOAD_LEN: usize = 512;

// ---------------------------------------------------------------- config

/// Kill matching executables at exec (`--kill`).
pub const CONFIG_KILL: u32 = 1 << 0;
/// Refuse connections to the block list (`--block`).
pub const CONFIG_BLOCK: u32 = 1 << 1;
/// [`Config::offsets`] holds offsets read from the kernel's BTF: the exec
/// program may follow task_struct pointers.
pub const CONFIG_OFFSETS: u32 = 1 << 2;
/// [`MAP_KILL_COMM`] has entries matched case-insensitively (look up the
/// lowercased name too).
pub const CONFIG_COMM_CASELESS: u32 = 1 << 3;
/// [`MAP_KILL_PATH`] has entries matched case-insensitively.
pub const CONFIG_PATH_CASELESS: u32 = 1 << 4;
/// [`MAP_KILL_INODE`] is not empty.
pub const CONFIG_INODES: u32 = 1 << 5;
/// The block lists hold (address, port) entries: look them up. With the
/// next two bits, the connect programs skip the lookups that cannot hit.
pub const CONFIG_BLOCK_EXACT: u32 = 1 << 6;
/// The block lists hold (address, any port) entries.
pub const CONFIG_BLOCK_ANY_PORT: u32 = 1 << 7;
/// The block lists hold (any address, port) entries.
pub const CONFIG_BLOCK_ANY_ADDR: u32 = 1 << 8;

/// Map values of [`MAP_KILL_COMM`] / [`MAP_KILL_PATH`]: the key matches as it is.
pub const MATCH_EXACT: u32 = 1 << 0;
/// The key is lowercased (ASCII) and matches a lowercased name or path.
pub const MATCH_CASELESS: u32 = 1 << 1;

/// Byte offsets of the kernel struct fields the exec program reads, taken
/// from the running kernel's BTF by user space (the Rust eBPF toolchain has
/// no CO-RE relocations, so the layout is handed in, never assumed).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskOffsets {
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_tgid: u32,
    pub task_flags: u32,
    pub task_start_boottime: u32,
    pub task_mm: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_exe_file: u32,
    pub file_f_inode: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub sb_s_dev: u32,
    pub _pad: u32,
}

/// Byte offsets in `struct sock` of the fields the TCP state program reads
/// ([`GLOBAL_SOCK_OFFSETS`]; see [`TaskOffsets`] for why they are handed in).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockOffsets {
    /// `skc_daddr` (IPv4 remote address, network order).
    pub daddr: u16,
    /// `skc_rcv_saddr` (IPv4 local address).
    pub rcv_saddr: u16,
    /// `skc_dport` (remote port, network order).
    pub dport: u16,
    /// `skc_num` (local port, host order).
    pub num: u16,
    /// `skc_family`.
    pub family: u16,
    /// `skc_v6_daddr` (0: the kernel has no IPv6).
    pub v6_daddr: u16,
    /// `skc_v6_rcv_saddr`.
    pub v6_rcv_saddr: u16,
    /// `sk_protocol`.
    pub protocol: u16,
}

/// Byte offsets of the fields the DNS answer program reads
/// ([`GLOBAL_DNS_OFFSETS`]; see [`TaskOffsets`] for why they are handed in).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsOffsets {
    /// `sock.sk_protocol`.
    pub protocol: u16,
    /// `sock.sk_receive_queue`: the queue head, which the newest-skb
    /// pointer of an empty queue points back to.
    pub receive_queue: u16,
    /// `sock.sk_receive_queue` + `sk_buff_head.prev`: the newest skb.
    pub receive_queue_prev: u16,
    /// `sk_buff.head` (start of the buffer, which the header offsets count from).
    pub skb_head: u16,
    /// `sk_buff.data` (start of the data not yet consumed).
    pub skb_data: u16,
    /// `sk_buff.len` (bytes from `data` on, linear and paged).
    pub skb_len: u16,
    /// `sk_buff.data_len` (of which paged).
    pub skb_data_len: u16,
    /// `sk_buff.transport_header` (offset from `head`).
    pub skb_transport_header: u16,
    /// `sk_buff.network_header` (offset from `head`).
    pub skb_network_header: u16,
    pub _pad: u16,
}

/// Settings user space gives the programs ([`MAP_CONFIG`], index 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `CONFIG_*` bits.
    pub flags: u32,
    /// ioc-scan's own process id: never killed.
    pub self_tgid: u32,
    /// Wake user space up only once this many bytes wait in the ring
    /// buffer (it also polls on a timer); 0: wake up on every event.
    pub wakeup_bytes: u32,
    pub _pad: u32,
    pub offsets: TaskOffsets,
}

/// Key of [`MAP_KILL_INODE`]: the executable's device (kernel `dev_t`
/// encoding: major << 20 | minor) and inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    pub dev: u64,
    pub ino: u64,
}

/// Value of [`MAP_PROTECTED`]: the protected process started in
/// `[start_from_ns, start_to_ns)` (ns since boot: /proc's clock tick), so
/// that a later process given the same pid is not spared. An exec whose
/// start time is unknown (no BTF) is spared.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtectedTask {
    pub start_from_ns: u64,
    pub start_to_ns: u64,
}

/// Key of [`MAP_BLOCK_V4`]. `addr` all zero = any address, `port` 0 = any
/// port; the programs look up (addr, port), (addr, 0) and (0, port).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Block4Key {
    pub addr: [u8; 4],
    pub port: u16,
    pub _pad: u16,
}

/// Key of [`MAP_BLOCK_V6`], as [`Block4Key`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Block6Key {
    pub addr: [u8; 16],
    pub port: u16,
    pub _pad: u16,
}

// ---------------------------------------------------------------- events

/// [`ExecEvent`]: ppid, start time, device, inode and arguments were read
/// from the task (the kernel offsets were known).
pub const EXEC_TASK_FIELDS: u32 = 1 << 0;
/// The path was longer than [`PATH_LEN`] and is cut.
pub const EXEC_PATH_TRUNCATED: u32 = 1 << 1;
/// The arguments were longer than [`ARGS_LEN`] and are cut.
pub const EXEC_ARGS_TRUNCATED: u32 = 1 << 2;
/// The process name matched [`MAP_KILL_COMM`].
pub const EXEC_MATCH_COMM: u32 = 1 << 3;
/// The path matched [`MAP_KILL_PATH`].
pub const EXEC_MATCH_PATH: u32 = 1 << 4;
/// The executable's device and inode matched [`MAP_KILL_INODE`].
pub const EXEC_MATCH_INODE: u32 = 1 << 5;
/// SIGKILL was sent from the exec tracepoint.
pub const EXEC_KILLED: u32 = 1 << 6;
/// A match, but the process is protected (pid 1, ioc-scan, kernel thread).
pub const EXEC_KILL_REFUSED: u32 = 1 << 7;
/// A match, but `bpf_send_signal` failed.
pub const EXEC_KILL_FAILED: u32 = 1 << 8;

/// A program was executed: `sched/sched_process_exec`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecEvent {
    pub kind: u32,
    /// `EXEC_*` bits.
    pub flags: u32,
    /// Thread group id (the "process id" of user space).
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes of `path` used (without the NUL).
    pub path_len: u32,
    /// Bytes of `args` used (NUL-separated arguments).
    pub args_len: u32,
    /// The process's start, nanoseconds since boot (`CLOCK_BOOTTIME`), as
    /// /proc/PID/stat counts it: with the pid, it names the process.
    pub start_boottime_ns: u64,
    /// When the exec happened, nanoseconds since boot (`CLOCK_BOOTTIME`).
    pub time_ns: u64,
    /// The executable's device (kernel encoding, major << 20 | minor).
    pub dev: u64,
    pub ino: u64,
    pub comm: [u8; COMM_LEN],
    /// The path as given to execve (may be relative), NUL-terminated.
    pub path: [u8; PATH_LEN],
    pub args: [u8; ARGS_LEN],
}

/// A process exited: `sched/sched_process_exit`, thread group leaders only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub kind: u32,
    pub flags: u32,
    pub pid: u32,
    pub _pad: u32,
    pub time_ns: u64,
}

/// [`ConnEvent`]: the addresses are IPv6 (else IPv4 in the first 4 bytes).
pub const CONN_IPV6: u32 = 1 << 0;
/// `pid`, `uid` and `comm` are known (the event ran in the process's
/// context). TCP state changes in softirq context (ESTABLISHED) leave them
/// to user space, which remembers the owner by [`ConnEvent::sock`].
pub const CONN_OWNER_KNOWN: u32 = 1 << 1;
/// From `sock/inet_sock_set_state` (TCP).
pub const CONN_FROM_TCP_STATE: u32 = 1 << 2;
/// From a cgroup connect hook.
pub const CONN_FROM_CONNECT: u32 = 1 << 3;
/// From a cgroup sendmsg hook (unconnected UDP).
pub const CONN_FROM_SENDMSG: u32 = 1 << 4;

/// TCP states as the kernel numbers them (`include/net/tcp_states.h`).
pub const TCP_ESTABLISHED: u16 = 1;
pub const TCP_SYN_SENT: u16 = 2;
pub const TCP_SYN_RECV: u16 = 3;
pub const TCP_CLOSE: u16 = 7;
pub const TCP_LISTEN: u16 = 10;

/// A connection seen or refused (see the flags for where from).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnEvent {
    pub kind: u32,
    /// `CONN_*` bits.
    pub flags: u32,
    pub pid: u32,
    pub uid: u32,
    /// `IPPROTO_TCP` (6) or `IPPROTO_UDP` (17).
    pub protocol: u16,
    /// TCP state before (0 for UDP).
    pub old_state: u16,
    /// TCP state now (0 for UDP).
    pub state: u16,
    pub local_port: u16,
    pub remote_port: u16,
    pub _pad: [u16; 3],
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    pub time_ns: u64,
    /// Which socket (TCP: the kernel's socket address, an opaque id that
    /// ties a later state change to the SYN_SENT / LISTEN that named its
    /// owner; cgroup hooks: the socket cookie).
    pub sock: u64,
    pub comm: [u8; COMM_LEN],
}

/// [`DnsEvent`]: the message came in (else it went out).
pub const DNS_INGRESS: u32 = 1 << 0;
/// The addresses are IPv6.
pub const DNS_IPV6: u32 = 1 << 1;
/// The UDP payload was longer than [`DNS_PAYLOAD_LEN`] and is cut.
pub const DNS_TRUNCATED: u32 = 1 << 2;
/// `pid` is known (remembered at connect/send for the socket).
pub const DNS_OWNER_KNOWN: u32 = 1 << 3;
/// Seen as it was queued on the asking socket ([`PROG_DNS_DATA_READY`]),
/// which sees answers only: the answer's question stands for the query.
pub const DNS_AT_SOCKET: u32 = 1 << 4;

/// A DNS message over UDP (either port 53): an answer queued on a socket
/// that sent to port 53 ([`PROG_DNS_DATA_READY`]), or a query or answer
/// passing the cgroup skb programs (the fallback).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DnsEvent {
    pub kind: u32,
    /// `DNS_*` bits.
    pub flags: u32,
    pub pid: u32,
    /// Bytes of `payload` used.
    pub payload_len: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub _pad: u32,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub time_ns: u64,
    pub payload: [u8; DNS_PAYLOAD_LEN],
}

/// Who owns a UDP socket that sent to port 53, remembered at connect /
/// sendmsg for the DNS programs, which run without the process context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SockOwner {
    pub pid: u32,
    pub uid: u32,
    pub comm: [u8; COMM_LEN],
}

// The layouts are part of the kernel/user contract: a change must be seen.
const _: () = assert!(size_of::<TaskOffsets>() == 56);
const _: () = assert!(size_of::<SockOffsets>() == 16);
const _: () = assert!(size_of::<DnsOffsets>() == 20);
const _: () = assert!(size_of::<Config>() == 72);
const _: () = assert!(size_of::<InodeKey>() == 16);
const _: () = assert!(size_of::<ProtectedTask>() == 16);
const _: () = assert!(size_of::<Block4Key>() == 8);
const _: () = assert!(size_of::<Block6Key>() == 20);
const _: () = assert!(size_of::<ExecEvent>() == 64 + COMM_LEN + PATH_LEN + ARGS_LEN);
const _: () = assert!(size_of::<ExitEvent>() == 24);
const _: () = assert!(size_of::<ConnEvent>() == 32 + 16 + 16 + 8 + 8 + COMM_LEN);
const _: () = assert!(size_of::<DnsEvent>() == 24 + 32 + 8 + DNS_PAYLOAD_LEN);
const _: () = assert!(size_of::<SockOwner>() == 24);
// Ring buffer records are 8-byte aligned; the kernel refuses larger alignments.
const _: () = assert!(core::mem::align_of::<ExecEvent>() <= 8);
const _: () = assert!(core::mem::align_of::<DnsEvent>() <= 8);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: every type below is #[repr(C)], made only of integers and
    // integer arrays, with explicit padding fields: any bit pattern is valid.
    unsafe impl aya::Pod for TaskOffsets {}
    unsafe impl aya::Pod for SockOffsets {}
    unsafe impl aya::Pod for DnsOffsets {}
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for InodeKey {}
    unsafe impl aya::Pod for ProtectedTask {}
    unsafe impl aya::Pod for Block4Key {}
    unsafe impl aya::Pod for Block6Key {}
    unsafe impl aya::Pod for ExecEvent {}
    unsafe impl aya::Pod for ExitEvent {}
    unsafe impl aya::Pod for ConnEvent {}
    unsafe impl aya::Pod for DnsEvent {}
    unsafe impl aya::Pod for SockOwner {}
}

/// Reading an event record from the ring buffer (user space only).
#[cfg(feature = "user")]
pub mod read {
    use super::*;

    /// The event kind of a ring buffer record (its first four bytes).
    pub fn kind(record: &[u8]) -> Option<u32> {
        let bytes: [u8; 4] = record.get(..4)?.try_into().ok()?;
        Some(u32::from_ne_bytes(bytes))
    }

    /// Copy a record into `T` if it is exactly `T`'s size.
    ///
    /// `T` must be one of this crate's event structs (`aya::Pod`: any bit
    /// pattern valid).
    pub fn event<T: aya::Pod>(record: &[u8]) -> Option<T> {
        if record.len() != size_of::<T>() {
            return None;
        }
        // SAFETY: the length is checked; T is Pod (any bit pattern is a
        // valid T); read_unaligned does not need the record's alignment.
        Some(unsafe { core::ptr::read_unaligned(record.as_ptr().cast::<T>()) })
    }
}

#[cfg(all(test, feature = "user"))]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_the_wrong_size_is_refused() {
        let ev = ExitEvent {
            kind: EVENT_EXIT,
            flags: 0,
            pid: 42,
            _pad: 0,
            time_ns: 7,
        };
        // SAFETY: ExitEvent is repr(C) with no implicit padding.
        let bytes: [u8; 24] = unsafe { core::mem::transmute(ev) };
        assert_eq!(read::kind(&bytes), Some(EVENT_EXIT));
        assert_eq!(read::event::<ExitEvent>(&bytes).map(|e| e.pid), Some(42));
        assert!(read::event::<ExitEvent>(&bytes[..20]).is_none());
        assert!(read::event::<ExecEvent>(&bytes).is_none());
        assert_eq!(read::kind(&bytes[..3]), None);
    }
}

// ---------------------------------------------------------------- network isolation

/// `cgroup_skb/egress`: network isolation (drops all but loopback and the allow list).
pub const PROG_ISOLATE_EGRESS: &str = "isolate_egress";
/// `cgroup_skb/ingress`: network isolation.
pub const PROG_ISOLATE_INGRESS: &str = "isolate_ingress";
/// Array with one [`IsolateState`] at index 0.
pub const MAP_ISOLATE_STATE: &str = "ISOLATE_STATE";
/// LPM trie `{prefix_len: u32, addr: [u8; 4]}` → `u8`: IPv4 peers always allowed.
pub const MAP_ISOLATE_ALLOW_V4: &str = "ISOLATE_ALLOW_V4";
/// LPM trie `{prefix_len: u32, addr: [u8; 16]}` → `u8`: IPv6 peers always allowed.
pub const MAP_ISOLATE_ALLOW_V6: &str = "ISOLATE_ALLOW_V6";
/// Entries of each allow list.
pub const ISOLATE_ALLOW_MAX: u32 = 1024;

/// [`IsolateState::flags`]: isolation is on (until `expires_boot_ns`).
pub const ISOLATE_ON: u32 = 1 << 0;
/// Let DHCP (UDP ports 67/68, DHCPv6 546/547) through, so the device keeps
/// its address while isolated.
pub const ISOLATE_ALLOW_DHCP: u32 = 1 << 1;

/// The isolation programs' settings ([`MAP_ISOLATE_STATE`], index 0). The
/// programs drop nothing once `CLOCK_BOOTTIME` reaches `expires_boot_ns`:
/// expiry holds even when no ioc-scan process runs to lift it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IsolateState {
    /// `bpf_ktime_get_boot_ns()` at which isolation ends.
    pub expires_boot_ns: u64,
    /// `ISOLATE_*` bits.
    pub flags: u32,
    pub _pad: u32,
}

const _: () = assert!(size_of::<IsolateState>() == 16);

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], integers only, explicit padding: any bit pattern is valid.
unsafe impl aya::Pod for IsolateState {}
