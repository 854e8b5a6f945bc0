//! Killing a process from user space, for indicators the exec program
//! cannot decide: through a pidfd, after checking that the pid still names
//! the process that was seen (same start time), never by a bare pid.

use std::os::fd::{FromRawFd, OwnedFd};

/// How a kill went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOutcome {
    Done,
    /// Not attempted; the reason says why (protected process, gone...).
    Refused(String),
    Failed(String),
}

/// Clock ticks per second of /proc/PID/stat's start time.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot), read
/// through the pidfd's process: None if it is gone.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is a kernel thread (PF_KTHREAD in /proc/PID/stat flags).
fn is_kernel_thread(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else { return false };
    let flags: u64 = stat[close + 1..]
        .split_whitespace()
        .nth(6)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    flags & 0x0020_0000 != 0
}

/// Why `pid` must not be killed, if it must not.
pub fn protected(pid: u32) -> Option<String> {
    if pid <= 1 {
        return Some(format!("pid {pid} is init (or the idle task)"));
    }
    if pid == std::process::id() {
        return Some("it is ioc-scan itself".into());
    }
    if is_kernel_thread(pid) {
        return Some("it is a kernel thread".into());
    }
    None
}

/// SIGKILL the process `pid` if it is still the one that started at
/// `start_boottime_ns` (ns since boot, as the exec event or the /proc
/// snapshot saw it; compared at /proc's clock-tick resolution).
pub fn kill(pid: u32, start_boottime_ns: Option<u64>) -> KillOutcome {
    if let Some(why) = protected(pid) {
        return KillOutcome::Refused(why);
    }
    // SAFETY: plain syscall; the fd it returns is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::ESRCH) {
            KillOutcome::Refused("the process is already gone".into())
        } else {
            KillOutcome::Failed(format!("pidfd_open: {err}"))
        };
    }
    // SAFETY: a fresh fd from pidfd_open, owned here only.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pidfd pins the process: if the pid was reused before it was
    // opened, the start time read now differs and nothing is sent.
    if let Some(expected_ns) = start_boottime_ns {
        let tick_ns = 1_000_000_000 / ticks_per_second();
        match start_ticks(pid) {
            Some(ticks) if ticks == expected_ns / tick_ns => {}
            Some(_) => return KillOutcome::Refused("the pid now names another process (start time differs)".into()),
            None => return KillOutcome::Refused("the process is already gone".into()),
        }
    }
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on an owned pidfd, no siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 {
        KillOutcome::Done
    } else {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            KillOutcome::Refused("the process is already gone".into())
        } else {
            KillOutcome::Failed(format!("pidfd_send_signal: {err}"))
        }
    }
}

/// The start time (ns since boot, tick resolution) of a live process.
pub fn start_boottime_ns(pid: u32) -> Option<u64> {
    start_ticks(pid).map(|t| t * (1_000_000_000 / ticks_per_second()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_init_and_itself() {
        assert!(matches!(kill(1, None), KillOutcome::Refused(_)));
        assert!(matches!(kill(std::process::id(), None), KillOutcome::Refused(_)));
    }

    #[test]
    fn refuses_when_the_start_time_differs() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = start_boottime_ns(pid).unwrap();
        // A different start time: the pid "was reused".
        assert!(matches!(kill(pid, Some(start + 10_000_000_000)), KillOutcome::Refused(_)));
        assert!(child.try_wait().unwrap().is_none(), "must still run");
        assert_eq!(kill(pid, Some(start)), KillOutcome::Done);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
