//! Process exec: report every exec, and SIGKILL the ones on the kill lists
//! before the new program runs its first instruction.
//!
//! Attach point: tracepoint `sched/sched_process_exec`. Tracepoints are the
//! kernel's stable tracing ABI (format published in tracefs, relied on by
//! perf and every exec tracer). It fires in the context of the process
//! that has just exec'd, after the new image is set up and before it
//! returns to user space, so a signal sent here kills it before it runs.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_probe_read_kernel_str_bytes, generated},
    macros::tracepoint,
    programs::TracePointContext,
    EbpfContext,
};
use ioc_scan_common::{
    Config, ExecEvent, InodeKey, ARGS_LEN, COMM_LEN, CONFIG_COMM_CASELESS, CONFIG_INODES, CONFIG_KILL, CONFIG_OFFSETS,
    CONFIG_PATH_CASELESS, EVENT_EXEC, EXEC_ARGS_TRUNCATED, EXEC_KILLED, EXEC_KILL_FAILED, EXEC_KILL_REFUSED, EXEC_MATCH_COMM,
    EXEC_MATCH_INODE, EXEC_MATCH_PATH, EXEC_PATH_TRUNCATED, EXEC_TASK_FIELDS, MATCH_CASELESS, MATCH_EXACT, PATH_LEN,
};

use crate::maps::{
    config, count_lost, submit_flags, ExecScratch, EVENTS, EXEC_SCRATCH, KILL_COMM, KILL_INODE, KILL_PATH, PROTECTED,
};

/// `__data_loc char[] filename` of the tracepoint record (see its format file).
const FILENAME_LOC: usize = 8;
/// `PF_KTHREAD` of `task_struct.flags`.
const PF_KTHREAD: u32 = 0x0020_0000;
const SIGKILL: u32 = 9;

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    match try_sched_process_exec(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_sched_process_exec(ctx: &TracePointContext) -> Result<(), i64> {
    let cfg = config();
    let scratch = EXEC_SCRATCH.get_ptr_mut(0).ok_or(-1i64)?;
    // SAFETY: the per-CPU slot is valid and ours for this program's run.
    let scratch: &mut ExecScratch = unsafe { &mut *scratch };
    let ev = &mut scratch.event;

    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    ev.kind = EVENT_EXEC;
    ev.flags = 0;
    ev.pid = (pid_tgid >> 32) as u32;
    ev.ppid = 0;
    ev.uid = uid_gid as u32;
    ev.gid = (uid_gid >> 32) as u32;
    ev.start_boottime_ns = 0;
    // SAFETY: helper without arguments.
    ev.time_ns = unsafe { generated::bpf_ktime_get_boot_ns() };
    ev.dev = 0;
    ev.ino = 0;
    ev.args_len = 0;
    ev.comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);

    // The path as given to execve; zero-padded because it is a map key.
    zero(&mut ev.path);
    // SAFETY: reading the tracepoint record through its published layout.
    let loc: u32 = unsafe { ctx.read_at(FILENAME_LOC) }.map_err(i64::from)?;
    let name = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    // SAFETY: the helper bounds the read by the buffer and stops at NUL.
    let len = unsafe { bpf_probe_read_kernel_str_bytes(name, &mut ev.path) }
        .map(|s| s.len())
        .unwrap_or(0);
    ev.path_len = len as u32;
    if len >= PATH_LEN - 1 {
        ev.flags |= EXEC_PATH_TRUNCATED;
    }

    let mut task_flags = 0u32;
    if cfg.flags & CONFIG_OFFSETS != 0 {
        // Reads that fail leave their fields 0; the event still goes out.
        if read_task_fields(&cfg, ev, &mut task_flags).is_ok() {
            ev.flags |= EXEC_TASK_FIELDS;
        }
    }

    if cfg.flags & CONFIG_KILL != 0 {
        let matched = kill_match(&cfg, scratch);
        let ev = &mut scratch.event;
        if matched != 0 {
            ev.flags |= matched;
            // The rule of ioc-scan's respond::protect, as far as the kernel
            // can apply it: pid 1, ioc-scan, its ancestors, kernel threads.
            if ev.pid <= 1
                || ev.pid == cfg.self_tgid
                || task_flags & PF_KTHREAD != 0
                || is_protected(ev.pid, ev.start_boottime_ns)
            {
                ev.flags |= EXEC_KILL_REFUSED;
            } else {
                // SAFETY: signals the current process (the one exec'ing).
                let ret = unsafe { generated::bpf_send_signal(SIGKILL) };
                ev.flags |= if ret == 0 { EXEC_KILLED } else { EXEC_KILL_FAILED };
            }
        }
    }

    if EVENTS.output::<ExecEvent>(&scratch.event, submit_flags(&cfg)).is_err() {
        count_lost(EVENT_EXEC);
    }
    Ok(())
}

/// Parent, start time, executable inode and arguments, through the kernel
/// struct offsets user space read from BTF.
#[inline(always)]
fn read_task_fields(cfg: &Config, ev: &mut ExecEvent, task_flags: &mut u32) -> Result<(), i64> {
    let o = &cfg.offsets;
    // SAFETY: helper without arguments.
    let task = unsafe { generated::bpf_get_current_task() } as *const u8;
    // SAFETY (all reads below): bpf_probe_read_kernel checks the address
    // and fails cleanly on a bad one; offsets come from this kernel's BTF.
    unsafe {
        *task_flags = read::<u32>(task, o.task_flags)?;
        let parent = read::<*const u8>(task, o.task_real_parent)?;
        ev.ppid = read::<i32>(parent, o.task_tgid)? as u32;
        let leader = read::<*const u8>(task, o.task_group_leader)?;
        ev.start_boottime_ns = read::<u64>(leader, o.task_start_boottime)?;
        let mm = read::<*const u8>(task, o.task_mm)?;
        let file = read::<*const u8>(mm, o.mm_exe_file)?;
        let inode = read::<*const u8>(file, o.file_f_inode)?;
        ev.ino = read::<u64>(inode, o.inode_i_ino)?;
        let sb = read::<*const u8>(inode, o.inode_i_sb)?;
        ev.dev = u64::from(read::<u32>(sb, o.sb_s_dev)?);

        let start = read::<u64>(mm, o.mm_arg_start)?;
        let end = read::<u64>(mm, o.mm_arg_end)?;
        let mut n = end.wrapping_sub(start);
        if n > ARGS_LEN as u64 {
            n = ARGS_LEN as u64;
            ev.flags |= EXEC_ARGS_TRUNCATED;
        }
        if n > 0 && n <= ARGS_LEN as u64 {
            // The argument strings were just copied onto the new stack by
            // exec: present in memory, so the non-faulting read succeeds.
            let ret = generated::bpf_probe_read_user(ev.args.as_mut_ptr().cast(), n as u32, start as *const _);
            if ret == 0 {
                ev.args_len = n as u32;
            }
        }
    }
    Ok(())
}

/// Whether `tgid` is on the protected list with this start (0: unknown,
/// then spared too).
#[inline(always)]
fn is_protected(tgid: u32, start_ns: u64) -> bool {
    match PROTECTED.get_ptr(&tgid) {
        // SAFETY: a value pointer of this map, read at once.
        Some(p) => {
            let p = unsafe { *p };
            start_ns == 0 || (p.start_from_ns <= start_ns && start_ns < p.start_to_ns)
        }
        None => false,
    }
}

/// Which kill lists this exec matches (`EXEC_MATCH_*` bits).
#[inline(always)]
fn kill_match(cfg: &Config, s: &mut ExecScratch) -> u32 {
    let mut matched = 0;
    let ev = &s.event;
    if cfg.flags & CONFIG_INODES != 0 && ev.flags & EXEC_TASK_FIELDS != 0 {
        let key = InodeKey { dev: ev.dev, ino: ev.ino };
        if KILL_INODE.get_ptr(&key).is_some() {
            matched |= EXEC_MATCH_INODE;
        }
    }
    if has(KILL_PATH.get_ptr(&ev.path), MATCH_EXACT) {
        matched |= EXEC_MATCH_PATH;
    }
    if has(KILL_COMM.get_ptr(&ev.comm), MATCH_EXACT) {
        matched |= EXEC_MATCH_COMM;
    }
    if cfg.flags & CONFIG_PATH_CASELESS != 0 {
        fold(&s.event.path, &mut s.folded_path);
        if has(KILL_PATH.get_ptr(&s.folded_path), MATCH_CASELESS) {
            matched |= EXEC_MATCH_PATH;
        }
    }
    if cfg.flags & CONFIG_COMM_CASELESS != 0 {
        fold(&s.event.comm, &mut s.folded_comm);
        if has(KILL_COMM.get_ptr(&s.folded_comm), MATCH_CASELESS) {
            matched |= EXEC_MATCH_COMM;
        }
    }
    matched
}

#[inline(always)]
fn has(value: Option<*const u32>, bit: u32) -> bool {
    // SAFETY: a pointer the map lookup returned, valid for this run.
    value.is_some_and(|v| unsafe { *v } & bit != 0)
}

/// ASCII lowercase of `src` into `dst`.
#[inline(always)]
fn fold<const N: usize>(src: &[u8; N], dst: &mut [u8; N]) {
    for i in 0..N {
        let c = src[i];
        dst[i] = if c.is_ascii_uppercase() { c + 32 } else { c };
    }
}

/// Zero a buffer with volatile stores (LLVM would turn a plain loop into a
/// memset call, which BPF does not have for large sizes).
#[inline(always)]
fn zero<const N: usize>(buf: &mut [u8; N]) {
    let words = buf.as_mut_ptr() as *mut u64;
    for i in 0..N / 8 {
        // SAFETY: N / 8 words fit in the N-byte buffer; map values are
        // 8-byte aligned.
        unsafe { core::ptr::write_volatile(words.add(i), 0) };
    }
}

/// Read a `T` at `base + offset` in kernel memory.
#[inline(always)]
unsafe fn read<T>(base: *const u8, offset: u32) -> Result<T, i64> {
    if base.is_null() {
        return Err(-1);
    }
    // SAFETY: see the caller; the helper validates the address.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel(base.add(offset as usize) as *const T) }.map_err(i64::from)
}
