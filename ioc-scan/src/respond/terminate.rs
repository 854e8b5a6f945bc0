//! Terminate detected processes, never the wrong one.
//!
//! A process is named by its pid and start time (pids are reused). The
//! kill goes through a pidfd (`pidfd_open`), which pins the process: after
//! opening it, /proc/PID is read (start time, or the executable's inode for
//! processes found running a detected file), then a null signal through
//! the pidfd proves the pidfd's process is still alive, so what was read
//! is its own; only if it is the detected process is the signal sent
//! through the same pidfd.
//!
//! Signal: SIGKILL directly by default. Malware may catch SIGTERM and use
//! a grace period to react (respawn, wipe, exfiltrate); SIGKILL cannot be
//! caught. [`Options::grace`] sends SIGTERM first and SIGKILL after the
//! grace period for those who prefer it. Then the exit is awaited (poll on
//! the pidfd) for at most [`Options::wait`], and the record says whether
//! it was seen.
//!
//! Never signalled: what [`super::protect`] protects (pid 1 and 0, kernel
//! threads, ioc-scan itself and its ancestors), nor a process that is not
//! the matched one ([`protect::check`]). The live monitor's kills go
//! through [`terminate`] too.

use super::protect::{self, ProcFacts};
use super::target::Target;
use super::{fsx, Action, ActionRecord, Outcome};
use crate::eval::Detection;
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How processes are terminated.
#[derive(Debug, Clone)]
pub struct Options {
    /// Send SIGTERM first and SIGKILL after this long; None: SIGKILL at once.
    pub grace: Option<Duration>,
    /// How long to wait for the process to exit after SIGKILL (the record
    /// says whether it did).
    pub wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            grace: None,
            wait: Duration::from_secs(5),
        }
    }
}

pub use super::protect::{protected, Identity};

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd it returns is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from pidfd_open, owned here only.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_signal(pidfd: &OwnedFd, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: plain syscall on an owned pidfd, no siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Wait until the process exits (its pidfd becomes readable), at most `limit`.
fn wait_exit(pidfd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 || left.is_zero() {
            return false;
        }
        // EINTR: poll again until the deadline.
    }
}

/// Signal the process `pid` if it is still the one described by
/// `identity`; returns the outcome and the facts for the record.
pub fn terminate(pid: u32, identity: Identity, opts: &Options) -> (Outcome, serde_json::Value) {
    let mut details = json!({"pid": pid});
    if let Some(why) = protected(pid) {
        return (Outcome::Refused(format!("not signalled: {why}")), details);
    }
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            return (Outcome::Refused("the process is already gone".into()), details)
        }
        Err(e) => return (Outcome::Failed(format!("pidfd_open: {e}")), details),
    };
    let Some(facts) = ProcFacts::read(pid) else {
        return (Outcome::Refused("the process is already gone".into()), details);
    };
    details["start_time"] = json!(facts.start_time);
    details["exe"] = json!(facts.exe);
    let verdict = protect::check(&facts, &identity);
    // The null signal proves the pidfd's process is alive, so the pid was
    // not reused while /proc was read: what was read is the pidfd's process.
    if let Err(e) = pidfd_signal(&pidfd, 0) {
        return if e.raw_os_error() == Some(libc::ESRCH) {
            (Outcome::Refused("the process is already gone".into()), details)
        } else {
            (Outcome::Failed(format!("pidfd_send_signal: {e}")), details)
        };
    }
    if let Err(why) = verdict {
        return (Outcome::Refused(why), details);
    }
    let mut signals = Vec::new();
    if let Some(grace) = opts.grace {
        if let Err(e) = pidfd_signal(&pidfd, libc::SIGTERM) {
            return signal_error(e, details);
        }
        signals.push("SIGTERM");
        if wait_exit(&pidfd, grace) {
            details["signals"] = json!(signals);
            details["exited"] = json!(true);
            return (Outcome::Done, details);
        }
    }
    if let Err(e) = pidfd_signal(&pidfd, libc::SIGKILL) {
        if e.raw_os_error() == Some(libc::ESRCH) && !signals.is_empty() {
            // It exited between the grace period's end and SIGKILL.
            details["signals"] = json!(signals);
            details["exited"] = json!(true);
            return (Outcome::Done, details);
        }
        details["signals"] = json!(signals);
        return signal_error(e, details);
    }
    signals.push("SIGKILL");
    details["signals"] = json!(signals);
    details["exited"] = json!(wait_exit(&pidfd, opts.wait));
    (Outcome::Done, details)
}

fn signal_error(e: std::io::Error, details: serde_json::Value) -> (Outcome, serde_json::Value) {
    if e.raw_os_error() == Some(libc::ESRCH) {
        (Outcome::Refused("the process is already gone".into()), details)
    } else {
        (Outcome::Failed(format!("pidfd_send_signal: {e}")), details)
    }
}

/// Processes whose executable is the inode (dev, ino), by pid.
pub fn running(dev: u64, ino: u64) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| protect::exe_inode(*pid) == Some((dev, ino)))
        .collect();
    out.sort_unstable();
    out
}

/// The terminate action for one detection: the detected process, or every
/// process running the detected file.
pub fn respond(d: &Detection, target: &Target, opts: &Options) -> Vec<ActionRecord> {
    let rec = |object: Target, outcome, details| ActionRecord::new(Action::Terminate, object, outcome, details);
    match target {
        Target::Process {
            pid,
            start_boottime_ns: Some(ns),
            ..
        } => {
            let (outcome, details) = terminate(*pid, Identity::Started { boottime_ns: *ns, exe: None }, opts);
            vec![rec(target.clone(), outcome, details)]
        }
        Target::Process { pid, start_time, .. } => {
            let Some(t) = start_time else {
                return vec![rec(
                    target.clone(),
                    Outcome::Refused(
                        "the detection has no start time for the process: its identity cannot be checked".into(),
                    ),
                    json!({"pid": pid}),
                )];
            };
            let (outcome, details) = terminate(*pid, Identity::StartTime(*t), opts);
            vec![rec(target.clone(), outcome, details)]
        }
        Target::File { .. } => {
            let Some(facts) = super::target::FileFacts::of(d) else {
                return vec![rec(
                    target.clone(),
                    Outcome::Refused("no path in the detection".into()),
                    serde_json::Value::Null,
                )];
            };
            let st = fsx::locate(&facts.path).ok().and_then(|loc| loc.lstat().ok());
            let Some(st) = st else {
                return vec![rec(
                    target.clone(),
                    Outcome::Refused("the file is gone: no process can be matched to it".into()),
                    serde_json::Value::Null,
                )];
            };
            let pids = running(st.st_dev, st.st_ino);
            if pids.is_empty() {
                return vec![rec(
                    target.clone(),
                    Outcome::Refused("no running process executes this file".into()),
                    json!({"processes": 0}),
                )];
            }
            pids.into_iter()
                .map(|pid| {
                    let (outcome, details) = terminate(
                        pid,
                        Identity::Exe {
                            dev: st.st_dev,
                            ino: st.st_ino,
                        },
                        opts,
                    );
                    let object = Target::Process {
                        pid,
                        start_time: details.get("start_time").and_then(serde_json::Value::as_i64),
                        start_boottime_ns: None,
                        path: Some(fsx::escape(&facts.path)),
                    };
                    rec(object, outcome, details)
                })
                .collect()
        }
        _ => vec![rec(
            target.clone(),
            Outcome::Refused(format!(
                "terminate applies to processes and executable files; the detection names {}",
                target.describe()
            )),
            serde_json::Value::Null,
        )],
    }
}

/// The start time (seconds since the epoch) of a live process, as the
/// process collector reports it.
pub fn start_time(pid: u32) -> Option<i64> {
    ProcFacts::read(pid)?.start_time
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn never_init_itself_or_ancestors() {
        assert!(protected(1).is_some());
        assert!(protected(0).is_some());
        assert!(protected(std::process::id()).is_some());
        assert!(protected(std::os::unix::process::parent_id()).is_some());
        let (o, _) = terminate(std::process::id(), Identity::StartTime(0), &Options::default());
        assert!(matches!(o, Outcome::Refused(_)));
    }

    #[test]
    fn kernel_threads_are_refused() {
        // kthreadd is pid 2 on every Linux (in the initial pid namespace).
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            let t = start_time(2).unwrap_or(0);
            let (o, _) = terminate(2, Identity::StartTime(t), &Options::default());
            assert!(
                matches!(&o, Outcome::Refused(r) if r.contains("kernel thread")),
                "{o:?}"
            );
        }
    }

    #[test]
    fn kills_only_the_same_process() {
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id();
        let t = start_time(pid).unwrap();
        let (o, _) = terminate(pid, Identity::StartTime(t - 5), &Options::default());
        assert!(
            matches!(&o, Outcome::Refused(r) if r.contains("another process")),
            "{o:?}"
        );
        assert!(child.try_wait().unwrap().is_none());
        let (o, d) = terminate(pid, Identity::StartTime(t), &Options::default());
        assert_eq!(o, Outcome::Done, "{d}");
        assert_eq!(d["signals"], json!(["SIGKILL"]));
        assert_eq!(d["exited"], json!(true));
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        // Gone now (a zombie reaped): refused, nothing sent.
        let (o, _) = terminate(pid, Identity::StartTime(t), &Options::default());
        assert!(matches!(o, Outcome::Refused(_)));
    }

    #[test]
    fn sigterm_first_with_a_grace_period() {
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id();
        let t = start_time(pid).unwrap();
        let opts = Options {
            grace: Some(Duration::from_secs(10)),
            wait: Duration::from_secs(5),
        };
        let (o, d) = terminate(pid, Identity::StartTime(t), &opts);
        assert_eq!(o, Outcome::Done);
        assert_eq!(d["signals"], json!(["SIGTERM"]));
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    }
}
