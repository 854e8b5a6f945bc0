//! The one rule on which processes ioc-scan may signal, for every kill
//! path: a task's terminate action ([`super::terminate`]), the live
//! monitor's kills from user space, and what the kernel's kill at exec is
//! told to spare ([`ancestors`] fills its protected list).
//!
//! Never: pid 0 or 1, a kernel thread, ioc-scan itself, one of its
//! ancestors (its parent, the agent's supervisor, the shell that started
//! it). And only the process that was matched, checked at the moment of
//! the action: the same start time (and executable, when the detection
//! knows it); a detection without a start time is acted on only if the
//! process now at the pid provably held it when it was matched.
//!
//! This module decides; it signals nothing. /proc/PID/stat is read only
//! through the fuzzed [`parse_stat`].

use crate::collect::host::HostRoot;
use crate::collect::process::{boot_time, clock_ticks, parse_stat, Stat};
use std::io::Read;

/// PF_KTHREAD in /proc/PID/stat's flags.
pub const PF_KTHREAD: u64 = 0x0020_0000;
/// How far up the parent chain protection goes (a bound, not a real depth).
const MAX_ANCESTORS: usize = 4096;
/// /proc/PID/stat is a line of a few hundred bytes; read no more than this.
const STAT_MAX_BYTES: u64 = 4096;

/// /proc/PID/stat of a live process, parsed; None when it is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    let file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut bytes = Vec::with_capacity(512);
    file.take(STAT_MAX_BYTES).read_to_end(&mut bytes).ok()?;
    parse_stat(&bytes)
}

/// Nanoseconds per /proc clock tick (10 ms at USER_HZ 100).
pub fn tick_ns() -> u64 {
    1_000_000_000 / clock_ticks().max(1)
}

/// What must still be true of the process when it is signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// It started at this time (seconds since the epoch, as the process
    /// collector computes it: boot time + start ticks / USER_HZ).
    StartTime(i64),
    /// It started at this instant (ns since boot, as the exec event or the
    /// /proc snapshot saw it; compared at /proc's clock-tick resolution)
    /// and, when known, runs this executable (device as `stat` gives it,
    /// inode): a pid reused within the same tick runs another program.
    Started { boottime_ns: u64, exe: Option<(u64, u64)> },
    /// Its start time is unknown (a kernel without BTF); it was matched at
    /// this instant (ns since boot). Acted on only if the process now at
    /// the pid started at least a clock tick before: then it held the pid.
    HeldPidAt(u64),
    /// Its executable is this inode.
    Exe { dev: u64, ino: u64 },
}

/// What /proc says of a process at the moment of the action.
#[derive(Debug, Clone)]
pub struct ProcFacts {
    pub pid: u32,
    pub state: char,
    pub flags: u64,
    /// Clock ticks after boot.
    pub start_ticks: u64,
    /// Seconds since the epoch.
    pub start_time: Option<i64>,
    /// /proc/PID/exe's target; None for kernel threads (and zombies).
    pub exe: Option<String>,
    pub exe_inode: Option<(u64, u64)>,
}

impl ProcFacts {
    /// Read now; None when the process is gone.
    pub fn read(pid: u32) -> Option<ProcFacts> {
        let stat = stat(pid)?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let exe_inode = exe_inode(pid);
        Some(ProcFacts {
            pid,
            state: stat.state,
            flags: stat.flags,
            start_ticks: stat.starttime,
            start_time: boot_time(&HostRoot::system()).map(|b| b + (stat.starttime / clock_ticks().max(1)) as i64),
            exe,
            exe_inode,
        })
    }
}

/// The (device as `stat` gives it, inode) of a process's executable,
/// from the kernel's cached attributes (`AT_STATX_DONT_SYNC`): a user's
/// FUSE file system serving the executable is not asked (it could make
/// the stat wait for ever).
pub fn exe_inode(pid: u32) -> Option<(u64, u64)> {
    use rustix::fs::{makedev, statx, AtFlags, StatxFlags, CWD};
    let st = statx(
        CWD,
        format!("/proc/{pid}/exe"),
        AtFlags::STATX_DONT_SYNC,
        StatxFlags::INO,
    )
    .ok()?;
    Some((makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino))
}

/// Why `pid` must never be signalled, if it must not: pid 0 or 1,
/// ioc-scan itself, its ancestors, a kernel thread.
pub fn protected(pid: u32) -> Option<String> {
    if pid <= 1 {
        return Some(format!("pid {pid} is init (or the idle task)"));
    }
    if pid == std::process::id() {
        return Some("it is ioc-scan itself".into());
    }
    if ancestors().iter().any(|(p, _)| *p == pid) {
        return Some("it is an ancestor of ioc-scan (its parent, or above)".into());
    }
    if stat(pid).is_some_and(|s| s.flags & PF_KTHREAD != 0) {
        return Some("it is a kernel thread".into());
    }
    None
}

/// ioc-scan's ancestors, parent first, up to (not including) pid 1, with
/// their start times (clock ticks after boot).
pub fn ancestors() -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut cur = std::process::id();
    // Each process's stat is read once: it gives its start and its parent.
    let Some(mut cur_stat) = stat(cur) else { return out };
    for _ in 0..MAX_ANCESTORS {
        let parent = cur_stat.ppid;
        if parent <= 1 || parent == cur || out.iter().any(|(p, _)| *p == parent) {
            break;
        }
        let Some(parent_stat) = stat(parent) else { break };
        out.push((parent, parent_stat.starttime));
        cur = parent;
        cur_stat = parent_stat;
    }
    out
}

/// Whether the process `facts` describes may be signalled as the one
/// `identity` names; else why not. [`protected`] is checked apart (before
/// anything is opened).
pub fn check(facts: &ProcFacts, identity: &Identity) -> Result<(), String> {
    if facts.flags & PF_KTHREAD != 0 || facts.exe.is_none() && !matches!(facts.state, 'Z' | 'X') {
        return Err("not signalled: it is a kernel thread (or has no executable)".into());
    }
    if matches!(facts.state, 'Z' | 'X') {
        return Err("the process has already exited".into());
    }
    let tick = tick_ns();
    match *identity {
        Identity::StartTime(t) if facts.start_time != Some(t) => Err(format!(
            "the pid now names another process (started at {:?}, the detected one at {t})",
            facts.start_time
        )),
        Identity::Started { boottime_ns, exe } => {
            if facts.start_ticks != boottime_ns / tick {
                return Err(format!(
                    "the pid now names another process (start time {} ticks after boot, the detected one {})",
                    facts.start_ticks,
                    boottime_ns / tick
                ));
            }
            match exe {
                Some(e) if facts.exe_inode != Some(e) => Err(
                    "the pid now runs another executable than the detected process (same start tick: reused, or exec'd again)"
                        .into(),
                ),
                _ => Ok(()),
            }
        }
        Identity::HeldPidAt(matched_ns) => {
            let started_ns = facts.start_ticks.saturating_mul(tick);
            if started_ns > matched_ns {
                Err("the pid now names another process: it started after the detected one was seen".into())
            } else if started_ns.saturating_add(tick) > matched_ns {
                Err("the detection has no start time and the process now at the pid started within the same clock tick: its identity cannot be confirmed".into())
            } else {
                Ok(())
            }
        }
        Identity::Exe { dev, ino } if facts.exe_inode != Some((dev, ino)) => {
            Err("the process no longer runs the detected file".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep").arg("60").spawn().unwrap()
    }

    #[test]
    fn init_itself_ancestors_and_kernel_threads_are_protected() {
        assert!(protected(0).is_some());
        assert!(protected(1).is_some());
        assert!(protected(std::process::id()).unwrap().contains("itself"));
        let parent = std::os::unix::process::parent_id();
        if parent > 1 {
            assert!(protected(parent).unwrap().contains("ancestor"));
            assert_eq!(ancestors().first().map(|a| a.0), Some(parent));
        }
        // kthreadd is pid 2 in the initial pid namespace.
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            assert!(protected(2).unwrap().contains("kernel thread"));
            let facts = ProcFacts::read(2).unwrap();
            assert!(check(&facts, &Identity::StartTime(facts.start_time.unwrap_or(0))).is_err());
        }
        let mut child = sleeper();
        assert_eq!(protected(child.id()), None, "a child is not protected");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn only_the_same_start_tick_and_executable_match() {
        let mut child = sleeper();
        let facts = ProcFacts::read(child.id()).unwrap();
        let tick = tick_ns();
        let start_ns = facts.start_ticks * tick;
        let exe = facts.exe_inode;
        assert_eq!(
            check(
                &facts,
                &Identity::Started {
                    boottime_ns: start_ns + tick / 2,
                    exe
                }
            ),
            Ok(())
        );
        let other_tick = check(
            &facts,
            &Identity::Started {
                boottime_ns: start_ns + tick,
                exe,
            },
        );
        assert!(other_tick.unwrap_err().contains("another process"));
        let other_exe = check(
            &facts,
            &Identity::Started {
                boottime_ns: start_ns,
                exe: Some((0, 1)),
            },
        );
        assert!(other_exe.unwrap_err().contains("another executable"));
        assert_eq!(check(&facts, &Identity::StartTime(facts.start_time.unwrap())), Ok(()));
        assert!(check(&facts, &Identity::StartTime(facts.start_time.unwrap() - 5)).is_err());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn an_unknown_start_must_be_provably_before_the_match() {
        let mut child = sleeper();
        let facts = ProcFacts::read(child.id()).unwrap();
        let tick = tick_ns();
        let start_ns = facts.start_ticks * tick;
        // Matched before it started: another process had the pid then.
        assert!(check(&facts, &Identity::HeldPidAt(start_ns.saturating_sub(1)))
            .unwrap_err()
            .contains("started after"));
        // Matched within its start tick: cannot be told apart.
        assert!(check(&facts, &Identity::HeldPidAt(start_ns + tick - 1))
            .unwrap_err()
            .contains("cannot be confirmed"));
        // Matched a tick or more after it started: it held the pid.
        assert_eq!(check(&facts, &Identity::HeldPidAt(start_ns + tick)), Ok(()));
        child.kill().unwrap();
        child.wait().unwrap();
        // A zombie is not signalled.
        let mut child = sleeper();
        child.kill().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(facts) = ProcFacts::read(child.id()) {
            assert!(check(&facts, &Identity::HeldPidAt(u64::MAX))
                .unwrap_err()
                .contains("exited"));
        }
        child.wait().unwrap();
    }
}
