//! A local user against root's monitor (issue 14): an unprivileged user
//! must not be able to turn `monitor --kill` against other programs, hang
//! its start, or get a process killed that the IOC did not match (a reused
//! pid, ioc-scan's own ancestors).

use crate::harness::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged user the attacks run as.
const NOBODY: u32 = 65534;

/// A world-traversable directory for one test, with `user/` inside owned
/// by the unprivileged user (not sticky, not world-writable: the kernel's
/// protected_symlinks does not apply there, as in a user's home).
fn attack_dirs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = dir.path().join("user");
    std::fs::create_dir(&user).unwrap();
    std::os::unix::fs::chown(&user, Some(NOBODY), Some(NOBODY)).unwrap();
    (dir, user)
}

/// A command run as the unprivileged user (setuid in the forked child).
fn as_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    // (std drops root's supplementary groups when it changes the uid.)
    cmd.uid(NOBODY).gid(NOBODY);
    cmd
}

/// Run `program marker [extra]` and return (pid, exit status).
fn run_marker(program: &Path, marker: &Path, extra: &[&str]) -> (u32, std::process::ExitStatus) {
    let mut child = Command::new(program).arg(marker).args(extra).spawn().unwrap();
    let pid = child.id();
    (pid, child.wait().unwrap())
}

/// A user makes a path a process-path IOC names a symlink to another
/// program (here a harmless copy standing for /bin/bash). The monitor must
/// not put that program's inode on the kill-at-exec list: it runs. A real
/// regular file at an IOC path is still killed at exec.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn symlink_named_by_process_path_ioc_does_not_get_bash_killed() {
    if !bpf_or_skip("symlink_named_by_process_path_ioc_does_not_get_bash_killed") {
        return;
    }
    let (dir, user) = attack_dirs();
    // "bash": a program every user runs, root's, nowhere an IOC names.
    let bash = marker_copy(dir.path(), &unique_name("iocbash"));
    let named = user.join("x");
    let (status, said) = run(as_user("ln").arg("-s").arg(&bash).arg(&named));
    assert!(status.success(), "the user makes the symlink: {said}");
    assert_eq!(std::fs::symlink_metadata(&named).unwrap().uid(), NOBODY);
    let evil = marker_copy(dir.path(), &unique_name("iocevil"));
    let items = [
        ("ProcessItem/path", "is", named.to_str().unwrap()),
        ("ProcessItem/path", "is", evil.to_str().unwrap()),
    ];
    let ioc = write_ioc(dir.path(), "kill-symlink", &items);
    let cg = TestCgroup::new("killsymlink");
    let mut m = Monitor::start(&ioc, &cg, &["--kill"]);
    let marker = dir.path().join("bash-ran");
    let (pid, status) = run_marker(&bash, &marker, &[]);
    assert!(status.success(), "the program the symlink points to runs ({status:?})");
    assert!(marker.exists());
    assert!(
        !m.seen.iter().any(|v| v["type"] == "action" && v["pid"] == pid),
        "no kill action for it"
    );
    let ready = m.seen.iter().find(|v| v["type"] == "ready").unwrap().clone();
    assert!(
        !ready["kill"]["inodes"].to_string().contains("/user/x"),
        "no inode taken through the symlink: {ready}"
    );
    assert!(
        ready["kill"]["inodes_refused"].to_string().contains("/user/x"),
        "the refusal is said: {ready}"
    );

    let marker = dir.path().join("evil-ran");
    let (pid, status) = run_marker(&evil, &marker, &[]);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the regular file at an IOC path is killed"
    );
    assert!(!marker.exists(), "before its first instruction");
    let action = m
        .wait_for(|v| v["type"] == "action" && v["pid"] == pid)
        .expect("a kill action");
    assert_eq!(action["outcome"], "done", "{action}");
    m.stop();
}

/// A user swaps the directory of the paths a process-path IOC names
/// between one holding regular files and one holding FIFOs, as fast as
/// the kernel lets them: the start-up hash pass (there is a hash IOC) must
/// never block on a FIFO, so the monitor gets ready.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn fifo_at_process_path_ioc_does_not_hang_monitor_start() {
    if !bpf_or_skip("fifo_at_process_path_ioc_does_not_hang_monitor_start") {
        return;
    }
    const PATHS: usize = 200;
    let (dir, user) = attack_dirs();
    let (regular, fifos) = (user.join("cur"), user.join("alt"));
    for d in [&regular, &fifos] {
        std::fs::create_dir(d).unwrap();
    }
    for i in 0..PATHS {
        std::fs::write(regular.join(format!("x{i}")), b"not evil").unwrap();
        nix::unistd::mkfifo(
            &fifos.join(format!("x{i}")),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
    }
    let (status, said) = run(Command::new("chown").arg("-R").arg(NOBODY.to_string()).arg(&user));
    assert!(status.success(), "{said}");
    let paths: Vec<String> = (0..PATHS)
        .map(|i| regular.join(format!("x{i}")).to_string_lossy().into_owned())
        .collect();
    let mut items: Vec<(&str, &str, &str)> = paths.iter().map(|p| ("ProcessItem/path", "is", p.as_str())).collect();
    items.push(("FileItem/Md5sum", "is", "0123456789abcdef0123456789abcdef"));
    let ioc = write_ioc(dir.path(), "kill-fifo", &items);

    let mut swapper = as_user(trigger("swap"))
        .arg(&regular)
        .arg(&fifos)
        .arg("60")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The swapping is under way before the monitor starts.
    std::thread::sleep(Duration::from_millis(200));
    assert!(swapper.try_wait().unwrap().is_none(), "the swapper runs");
    let cg = TestCgroup::new("killfifo");
    let started = Instant::now();
    let m = Monitor::start(&ioc, &cg, &["--kill"]);
    eprintln!("ready after {:?} while the user swapped FIFOs in", started.elapsed());
    let _ = swapper.kill();
    let _ = swapper.wait();
    m.stop();
}

/// A user runs a program from their directory, and once it has exited
/// puts a FIFO at its path before the monitor reads the exec event. An IOC
/// asks for the executable's MD5: the monitor must not open the FIFO (it
/// would wait for a writer for ever and see nothing more). It goes on and
/// detects the next process.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn fifo_at_exec_event_path_does_not_hang_monitor() {
    if !bpf_or_skip("fifo_at_exec_event_path_does_not_hang_monitor") {
        return;
    }
    let (dir, user) = attack_dirs();
    let program = marker_copy(&user, &unique_name("iocf"));
    std::os::unix::fs::chown(&program, Some(NOBODY), Some(NOBODY)).unwrap();
    let (status, md5) = run(Command::new("md5sum").arg(&program));
    assert!(status.success());
    let md5 = md5.split_whitespace().next().unwrap().to_string();
    let ioc = write_ioc(dir.path(), "md5-fifo", &[("eventItem/processEvent/md5", "is", &md5)]);
    let cg = TestCgroup::new("md5fifo");
    // The monitor reads its events 2 s after ready: time to swap the path.
    let mut m = Monitor::start(&ioc, &cg, &["--read-delay-ms", "2000"]);
    let (status, said) = run(as_user(&program).arg(user.join("ran")));
    assert!(status.success(), "the user's program runs: {said}");
    let swap = format!("rm '{p}' && mkfifo '{p}'", p = program.display());
    let (status, said) = run(as_user("/bin/sh").arg("-c").arg(&swap));
    assert!(status.success(), "the user puts a FIFO there: {said}");
    // The next process with that content, still running when read.
    let copy = marker_copy(dir.path(), &unique_name("iocg"));
    let mut next = Command::new(&copy).arg(dir.path().join("next-ran")).arg("linger").spawn().unwrap();
    let pid = next.id();
    let found = m.wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "md5-fifo" && v["object"]["pid"] == pid);
    let _ = next.kill();
    let _ = next.wait();
    assert!(found.is_some(), "the monitor goes on after the FIFO: {:?}", m.seen);
    m.stop();
}

/// A user holds write leases on regular files at the paths a
/// process-path IOC names (there is a hash IOC, so they are hashed at
/// start): an open that waits for the lease to break waits 45 s per file.
/// The start-up pass opens without blocking, so the monitor gets ready;
/// the path and inode rules still stand.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn leased_file_at_process_path_ioc_does_not_hang_monitor_start() {
    if !bpf_or_skip("leased_file_at_process_path_ioc_does_not_hang_monitor_start") {
        return;
    }
    let (dir, user) = attack_dirs();
    let files: Vec<PathBuf> = (0..3).map(|i| user.join(format!("x{i}"))).collect();
    for f in &files {
        std::fs::write(f, b"not evil").unwrap();
        std::os::unix::fs::chown(f, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let paths: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let mut items: Vec<(&str, &str, &str)> = paths.iter().map(|p| ("ProcessItem/path", "is", *p)).collect();
    items.push(("FileItem/Md5sum", "is", "0123456789abcdef0123456789abcdef"));
    let ioc = write_ioc(dir.path(), "kill-lease", &items);
    let mut holder = as_user(trigger("lease"))
        .arg("120")
        .args(&files)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut said).unwrap();
    assert_eq!(said.trim(), "leased 3", "the user holds the leases");
    let cg = TestCgroup::new("killlease");
    let started = Instant::now();
    // Waiting for each lease to break would take 3 x 45 s: longer than PATIENCE.
    let m = Monitor::start(&ioc, &cg, &["--kill"]);
    eprintln!("ready after {:?} while the user held leases", started.elapsed());
    let ready = m.seen.iter().find(|v| v["type"] == "ready").unwrap().clone();
    assert_eq!(ready["kill"]["paths"].as_array().map(Vec::len), Some(3), "{ready}");
    assert_eq!(ready["kill"]["inodes"].as_array().map(Vec::len), Some(3), "{ready}");
    let _ = holder.kill();
    let _ = holder.wait();
    m.stop();
}

/// A shell (named as an IOC names a process) starts the monitor with
/// --kill. The monitor finds its own parent in the /proc snapshot: the
/// detection stands, the kill is refused and says why, the parent lives.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn monitor_never_kills_its_own_ancestors() {
    if !bpf_or_skip("monitor_never_kills_its_own_ancestors") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocpar");
    let shell = dir.path().join(&name);
    std::fs::copy("/bin/sh", &shell).unwrap();
    let ioc = write_ioc(dir.path(), "kill-parent", &[("ProcessItem/name", "is", &name)]);
    let cg = TestCgroup::new("killparent");
    let script = format!(
        "'{}' monitor --json --kill --duration 3 --ioc '{}' --cgroup '{}'; echo '{{\"type\":\"parent-alive\"}}'",
        env!("CARGO_BIN_EXE_ioc-scan"),
        ioc.display(),
        cg.path().display()
    );
    let child = Command::new(&shell)
        .arg("-c")
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let parent = child.id();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        out.status.success() && lines.iter().any(|v| v["type"] == "parent-alive"),
        "the parent shell survives ({:?}): {lines:?}",
        out.status
    );
    assert!(
        detections(&lines, "kill-parent").any(|d| d["object"]["pid"] == parent),
        "the parent is detected: {lines:?}"
    );
    let action = lines
        .iter()
        .find(|v| v["type"] == "action" && v["pid"] == parent)
        .unwrap_or_else(|| panic!("an action about the parent: {lines:?}"));
    assert_eq!(action["outcome"], "refused", "{action}");
    assert!(action["reason"].as_str().unwrap().contains("ancestor"), "{action}");
}

/// The shell that started the monitor execs a program on the kill list:
/// the kernel's kill at exec spares it (ioc-scan's ancestors are on its
/// protected list) and says so; the program runs.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn kill_at_exec_spares_an_ancestor_of_the_monitor() {
    if !bpf_or_skip("kill_at_exec_spares_an_ancestor_of_the_monitor") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocanc");
    let bin = marker_copy(dir.path(), &name);
    let ioc = write_ioc(dir.path(), "kill-ancestor", &[("ProcessItem/name", "is", &name)]);
    let cg = TestCgroup::new("killancestor");
    let out_file = dir.path().join("monitor.jsonl");
    let marker = dir.path().join("ran");
    // The shell starts the monitor, waits until it is ready, then becomes
    // the listed program.
    let script = format!(
        "'{}' monitor --json --kill --duration 6 --ioc '{}' --cgroup '{}' > '{out}' & \
         for i in $(seq 600); do grep -q '\"ready\"' '{out}' && break; sleep 0.1; done; exec '{}' '{}'",
        env!("CARGO_BIN_EXE_ioc-scan"),
        ioc.display(),
        cg.path().display(),
        bin.display(),
        marker.display(),
        out = out_file.display(),
    );
    let mut shell = Command::new("/bin/sh").arg("-c").arg(&script).spawn().unwrap();
    let pid = shell.id();
    let status = shell.wait().unwrap();
    assert!(status.success(), "the ancestor runs the listed program ({status:?})");
    assert!(marker.exists());
    // The monitor goes on to the end of its duration.
    let deadline = Instant::now() + PATIENCE;
    let lines = loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        if text.contains("\"summary\"") || Instant::now() > deadline {
            break text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let action = lines
        .iter()
        .find(|v| v["type"] == "action" && v["pid"] == pid)
        .unwrap_or_else(|| panic!("an action about the ancestor: {lines:?}"));
    assert_eq!(action["by"], "kernel", "{action}");
    assert_eq!(action["outcome"], "refused", "{action}");
    assert!(action["reason"].as_str().unwrap().contains("ancestors"), "{action}");
}

/// Spawn `sleep 60` with exactly `pid` (through ns_last_pid), retrying
/// while other processes of the host take it first.
fn spawn_with_pid(pid: u32) -> Option<std::process::Child> {
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        if child.id() == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// A detected process exits and another takes its pid before the monitor
/// reads the exec event: the kill must be refused, the new process lives.
fn reused_pid_is_not_killed(test: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocr");
    let bin = marker_copy(dir.path(), &name);
    // An AND: decided in user space only (the kernel would kill at exec).
    let items = items_xml(&[
        ("ProcessItem/name", "is", &name),
        ("ProcessItem/username", "is", "root"),
    ]);
    let ioc = write_ioc_tree(dir.path(), "kill-reused", &items, "AND");
    let cg = TestCgroup::new("killreused");
    // The monitor reads its events 3 s after ready: time to reuse the pid.
    let mut m = Monitor::start_env(&ioc, &cg, &["--kill", "--read-delay-ms", "3000"], env);
    let (pid, status) = run_marker(&bin, &dir.path().join("ran"), &[]);
    assert!(status.success(), "{test}: exits by itself ({status:?})");
    let mut victim = spawn_with_pid(pid).expect("the pid taken again");
    let action = m
        .wait_for(|v| v["type"] == "action" && v["pid"] == pid)
        .expect("an action about the pid");
    std::thread::sleep(Duration::from_millis(200));
    let alive = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(alive, "{test}: the process that took the pid is not killed: {action}");
    assert_eq!(action["outcome"], "refused", "{action}");
    m.stop();
    action
}

/// Without the kernel's start time (a kernel without BTF) the monitor does
/// not know which process the pid named: it must confirm it at the kill
/// (it started no later than the event), not kill whatever has the pid.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn monitor_does_not_kill_a_reused_pid() {
    if !bpf_or_skip("monitor_does_not_kill_a_reused_pid") {
        return;
    }
    let action = reused_pid_is_not_killed(
        "monitor_does_not_kill_a_reused_pid",
        &[("IOC_SCAN_EXEC_OFFSETS", "none")],
    );
    // Started after the exec, or within its clock tick: not confirmed.
    let reason = action["reason"].as_str().unwrap();
    assert!(reason.contains("started"), "{action}");
}

/// With the kernel's start time: the process that has the pid now started
/// at another time, the kill is refused.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn kill_refused_when_start_time_does_not_match() {
    if !bpf_or_skip("kill_refused_when_start_time_does_not_match") {
        return;
    }
    let action = reused_pid_is_not_killed("kill_refused_when_start_time_does_not_match", &[]);
    assert!(action["reason"].as_str().unwrap().contains("start"), "{action}");
}
