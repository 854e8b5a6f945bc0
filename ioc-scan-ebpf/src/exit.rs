//! Process exit: lets user space drop the process from its table.
//!
//! Attach point: tracepoint `sched/sched_process_exit` (stable tracing
//! ABI). Fires for every exiting thread; only thread group leaders (a
//! process as user space sees it) are reported.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated},
    macros::tracepoint,
    programs::TracePointContext,
};
use ioc_scan_common::{ExitEvent, EVENT_EXIT};

use crate::maps::{config_ref, count_lost, submit_flags, EVENTS};

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    match try_sched_process_exit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_sched_process_exit(_ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if tgid != tid {
        return Ok(());
    }
    let ev = ExitEvent {
        kind: EVENT_EXIT,
        flags: 0,
        pid: tgid,
        _pad: 0,
        // SAFETY: helper without arguments.
        time_ns: unsafe { generated::bpf_ktime_get_boot_ns() },
    };
    if EVENTS.output::<ExitEvent>(&ev, config_ref().map_or(0, submit_flags)).is_err() {
        count_lost(EVENT_EXIT);
    }
    Ok(())
}
