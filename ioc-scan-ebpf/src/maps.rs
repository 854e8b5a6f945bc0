//! The maps every hook shares, and small helpers over them.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use ioc_scan_common::{
    Block4Key, Block6Key, Config, ExecEvent, InodeKey, ProtectedTask, SockOwner, COMM_LEN, EVENT_KIND_COUNT, PATH_LEN,
    PROTECTED_MAX,
};

/// Every event, to user space. User space sets the size at load time.
#[map(name = "EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Events dropped because [`EVENTS`] was full, per CPU, by event kind.
#[map(name = "LOST")]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(EVENT_KIND_COUNT, 0);

#[map(name = "CONFIG")]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map(name = "KILL_COMM")]
pub static KILL_COMM: HashMap<[u8; COMM_LEN], u32> = HashMap::with_max_entries(4096, 0);

#[map(name = "KILL_PATH")]
pub static KILL_PATH: HashMap<[u8; PATH_LEN], u32> = HashMap::with_max_entries(4096, 0);

#[map(name = "KILL_INODE")]
pub static KILL_INODE: HashMap<InodeKey, u32> = HashMap::with_max_entries(4096, 0);

/// ioc-scan's ancestors: never killed at exec (see [`ProtectedTask`]).
#[map(name = "PROTECTED")]
pub static PROTECTED: HashMap<u32, ProtectedTask> = HashMap::with_max_entries(PROTECTED_MAX, 0);

#[map(name = "BLOCK_V4")]
pub static BLOCK_V4: HashMap<Block4Key, u32> = HashMap::with_max_entries(8192, 0);

#[map(name = "BLOCK_V6")]
pub static BLOCK_V6: HashMap<Block6Key, u32> = HashMap::with_max_entries(8192, 0);

/// The UDP sockets of the monitored cgroup that connected or sent to port
/// 53: socket cookie → the process that did, for the DNS programs (which
/// run in softirq, without the process context). The DNS answer program
/// reports only sockets found here: that keeps its host-wide tracepoint to
/// the cgroup, and to sockets that asked.
#[map(name = "DNS_SOCKETS")]
pub static DNS_SOCKETS: LruHashMap<u64, SockOwner> = LruHashMap::with_max_entries(16384, 0);

/// An exec event is built here (too big for the 512-byte stack), then
/// checked against the kill maps, then copied to [`EVENTS`]: enforcement
/// does not depend on room in the ring buffer.
#[repr(C)]
pub struct ExecScratch {
    pub event: ExecEvent,
    /// The lowercased path / name, for case-insensitive lookups.
    pub folded_path: [u8; PATH_LEN],
    pub folded_comm: [u8; COMM_LEN],
}

#[map(name = "EXEC_SCRATCH")]
pub static EXEC_SCRATCH: PerCpuArray<ExecScratch> = PerCpuArray::with_max_entries(1, 0);

/// The settings user space wrote, or the defaults (all off) before it did.
#[inline(always)]
pub fn config() -> Config {
    CONFIG.get(0).copied().unwrap_or_default()
}

/// The settings, in place (no copy: for the programs on every packet and
/// connection). None only before user space wrote them.
#[inline(always)]
pub fn config_ref() -> Option<&'static Config> {
    CONFIG.get(0)
}

/// Flags for a ring buffer submit: no wake-up while little is waiting (user
/// space polls on a timer too), a forced one past the configured amount.
/// Waking the reader on every event would cost more than the event.
#[inline(always)]
pub fn submit_flags(cfg: &Config) -> u64 {
    use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
    if cfg.wakeup_bytes == 0 {
        return 0;
    }
    if EVENTS.query(u64::from(BPF_RB_AVAIL_DATA)) >= u64::from(cfg.wakeup_bytes) {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}

/// Count one event of `kind` that did not fit in the ring buffer.
#[inline(always)]
pub fn count_lost(kind: u32) {
    if let Some(counter) = LOST.get_ptr_mut(kind) {
        // SAFETY: the pointer is to this CPU's u64 slot of the array, valid
        // for the program's run. An atomic add (BPF_ATOMIC) keeps a nested
        // program on the same CPU (softirq over a tracepoint) from losing a
        // count; core has no 64-bit fetch_add for this target.
        unsafe {
            core::arch::asm!(
                "lock *(u64 *)({p} + 0) += {v}",
                p = in(reg) counter,
                v = in(reg) 1u64,
            )
        };
    }
}

/// The current process as a socket owner.
#[inline(always)]
pub fn current_owner() -> SockOwner {
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let uid_gid = aya_ebpf::helpers::bpf_get_current_uid_gid();
    SockOwner {
        pid: (pid_tgid >> 32) as u32,
        uid: uid_gid as u32,
        comm: aya_ebpf::helpers::bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
    }
}
