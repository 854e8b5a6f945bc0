//! Is the process that started a run still alive? And who holds the database
//! file? Both read /proc.

use super::error::Holder;
use super::records::RunnerRecordV1;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Start time (clock ticks after boot) of a running process, from
/// /proc/PID/stat (through the one, fuzzed, parser); `None` if there is no
/// such process or it is a zombie (killed, not yet reaped by its parent).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = crate::respond::protect::stat(pid)?;
    if stat.state == 'Z' || stat.state == 'X' {
        return None;
    }
    Some(stat.starttime)
}

/// This process, as the runner of a run.
pub fn current_runner() -> RunnerRecordV1 {
    let pid = std::process::id();
    RunnerRecordV1 {
        pid,
        start_ticks: start_ticks(pid).unwrap_or(0),
        boot_id: boot_id(),
    }
}

/// Whether the recorded runner is still running (same boot, same pid, same start).
pub fn is_alive(runner: &RunnerRecordV1) -> bool {
    runner.boot_id == boot_id() && start_ticks(runner.pid) == Some(runner.start_ticks)
}

/// The processes (other than us) holding a lock on the file, from /proc/locks.
pub fn lock_holders(path: &Path) -> Vec<Holder> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut pids: Vec<u32> = Vec::new();
    for line in locks.lines() {
        // "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a "->" marks a waiter).
        if line.contains("->") {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(pid), Some(dev_ino)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let Some(ino) = dev_ino
            .rsplit(':')
            .next()
            .and_then(|i| i.parse::<u64>().ok())
        else {
            continue;
        };
        if ino != meta.ino() {
            continue;
        }
        if let Ok(pid) = pid.parse::<u32>() {
            if pid != me && !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    pids.into_iter().map(describe).collect()
}

fn describe(pid: u32) -> Holder {
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string());
    let subcommand = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|raw| {
            let args: Vec<String> = raw
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_ours = args.first().is_some_and(|a| a.ends_with("ioc-scan"));
            // The first argument that is not an option is the subcommand.
            is_ours
                .then(|| args.iter().skip(1).find(|a| !a.starts_with('-')).cloned())
                .flatten()
        });
    Holder {
        pid,
        command,
        subcommand,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let me = current_runner();
        assert!(me.start_ticks > 0);
        assert!(is_alive(&me));
        assert!(!is_alive(&RunnerRecordV1 {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        }));
        assert!(!is_alive(&RunnerRecordV1 {
            boot_id: "other-boot".into(),
            ..me
        }));
    }
}
