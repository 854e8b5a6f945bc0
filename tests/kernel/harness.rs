//! What the kernel tests share: skipping (or failing) without BPF, the
//! trigger programs, a test cgroup, a running monitor and its JSON lines.
#![allow(dead_code)]

use serde_json::Value;
use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long to wait for the monitor's output before giving up (a hang
/// guard, not a speed assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Why BPF tests cannot run here, if they cannot: not root, or the binary
/// was built without the eBPF programs.
fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not running as root".into());
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ioc = write_ioc(dir.path(), "probe", &[("ProcessItem/name", "is", "ioc-probe-none")]);
        let cg = TestCgroup::new("probe");
        let out = Command::new(env!("CARGO_BIN_EXE_ioc-scan"))
            .args(["monitor", "--json", "--duration", "0", "--ioc"])
            .arg(&ioc)
            .arg("--cgroup")
            .arg(cg.path())
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(2) {
            return Some(format!("ioc-scan monitor cannot run: {}", stderr.trim()));
        }
        None
    })
    .clone()
}

/// True when the test can run. Otherwise prints why it skips, or fails
/// when `IOC_SCAN_REQUIRE_BPF=1` (CI): a skip must not pass for a success.
pub fn bpf_or_skip(test: &str) -> bool {
    match unavailable() {
        None => true,
        Some(why) => {
            if std::env::var_os("IOC_SCAN_REQUIRE_BPF").is_some_and(|v| v == "1") {
                panic!("{test}: BPF is required (IOC_SCAN_REQUIRE_BPF=1) but unavailable: {why}");
            }
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

/// The trigger programs of fixtures/triggers, compiled once per test run.
pub fn trigger(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("ioc-scan-triggers").tempdir().unwrap().keep();
        for t in ["marker", "connect", "resolve", "receive", "swap", "lease"] {
            let src = workspace().join("fixtures/triggers").join(format!("{t}.c"));
            let status = Command::new("cc")
                .args(["-O2", "-Wall", "-o"])
                .arg(dir.join(t))
                .arg(&src)
                .status()
                .expect("running cc");
            assert!(status.success(), "compiling {}", src.display());
        }
        dir
    });
    dir.join(name)
}

/// A name unique to this test run, at most 15 bytes (the kernel's comm).
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tail = format!("{:x}", (std::process::id() as u64) << 20 ^ u64::from(nanos) >> 10);
    let mut name = format!("{prefix}{tail}");
    name.truncate(15);
    name
}

/// Write a one-IOC OpenIOC 1.1 file: OR of `(term, condition, value)` items.
pub fn write_ioc(dir: &Path, id: &str, items: &[(&str, &str, &str)]) -> PathBuf {
    write_ioc_tree(dir, id, &items_xml(items), "OR")
}

pub fn items_xml(items: &[(&str, &str, &str)]) -> String {
    let mut xml = String::new();
    for (i, (term, condition, value)) in items.iter().enumerate() {
        let doc = term.split('/').next().unwrap();
        xml.push_str(&format!(
            "<IndicatorItem id=\"item-{i}\" condition=\"{condition}\"><Context document=\"{doc}\" search=\"{term}\" type=\"mir\"/><Content type=\"string\">{value}</Content></IndicatorItem>\n"
        ));
    }
    xml
}

/// Write an IOC whose top indicator (`operator`) holds `inner` XML.
pub fn write_ioc_tree(dir: &Path, id: &str, inner: &str, operator: &str) -> PathBuf {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<OpenIOC id=\"{id}\" xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\"><metadata><short_description>{id}</short_description></metadata><criteria><Indicator operator=\"{operator}\" id=\"{id}-root\">\n{inner}</Indicator></criteria></OpenIOC>\n"
    );
    let path = dir.join(format!("{id}.ioc"));
    std::fs::write(&path, xml).unwrap();
    path
}

/// A cgroup v2 directory for one test, removed (with its processes gone) on drop.
pub struct TestCgroup {
    path: PathBuf,
}

pub fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let dir = mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
        })
        .expect("a cgroup v2 mount");
    PathBuf::from(dir)
}

impl TestCgroup {
    pub fn new(what: &str) -> TestCgroup {
        let path = cgroup2_root().join(format!("ioc-scan-test-{what}-{}", std::process::id()));
        let _ = std::fs::create_dir(&path);
        TestCgroup { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command whose process joins this cgroup before it execs.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let procs = CString::new(self.path.join("cgroup.procs").into_os_string().into_encoded_bytes()).unwrap();
        let mut cmd = Command::new(program);
        // SAFETY: only async-signal-safe calls (open, write, close) between
        // fork and exec; the path was allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        cmd
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Our processes in it have exited (the tests wait for them); retry
        // briefly while the kernel finishes tearing them down.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: could not remove {}", self.path.display());
    }
}

/// A running `ioc-scan monitor --json`, its JSON lines read by a thread.
pub struct Monitor {
    child: Child,
    lines: Receiver<Value>,
    /// Every line seen so far.
    pub seen: Vec<Value>,
}

impl Monitor {
    /// Start the monitor with `args` (plus `--json`) and wait for `ready`.
    pub fn start(ioc: &Path, cgroup: &TestCgroup, args: &[&str]) -> Monitor {
        Monitor::start_binary(Path::new(env!("CARGO_BIN_EXE_ioc-scan")), ioc, cgroup, args)
    }

    /// [`Monitor::start`] with another copy of the binary.
    pub fn start_binary(binary: &Path, ioc: &Path, cgroup: &TestCgroup, args: &[&str]) -> Monitor {
        Monitor::start_with(binary, ioc, cgroup, args, &[])
    }

    /// [`Monitor::start`] with environment variables set for it.
    pub fn start_env(ioc: &Path, cgroup: &TestCgroup, args: &[&str], env: &[(&str, &str)]) -> Monitor {
        Monitor::start_with(Path::new(env!("CARGO_BIN_EXE_ioc-scan")), ioc, cgroup, args, env)
    }

    fn start_with(binary: &Path, ioc: &Path, cgroup: &TestCgroup, args: &[&str], env: &[(&str, &str)]) -> Monitor {
        let mut child = Command::new(binary)
            .envs(env.iter().copied())
            .args(["monitor", "--json", "--ioc"])
            .arg(ioc)
            .arg("--cgroup")
            .arg(cgroup.path())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting ioc-scan monitor");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(e) => panic!("monitor printed a line that is not JSON ({e}): {line}"),
                }
            }
        });
        let mut m = Monitor {
            child,
            lines: rx,
            seen: Vec::new(),
        };
        m.wait_for(|v| v["type"] == "ready").expect("the monitor never said ready");
        m
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until a line satisfies `pred` (or the monitor ends, or PATIENCE).
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// SIGINT the monitor, collect the rest of its output, return its exit status.
    pub fn stop(mut self) -> (ExitStatus, Vec<Value>) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        while let Ok(v) = self.lines.recv_timeout(PATIENCE) {
            self.seen.push(v);
        }
        let status = self.child.wait().unwrap();
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // A test that panicked: do not leave the monitor (and its programs) behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn detections<'a>(lines: &'a [Value], ioc_id: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    lines.iter().filter(move |v| v["type"] == "detection" && v["ioc_id"] == ioc_id)
}

/// Copy the marker trigger to `dir/name` (a unique executable name).
pub fn marker_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(trigger("marker"), &path).unwrap();
    path
}

/// Run a command to completion with its stdout.
pub fn run(cmd: &mut Command) -> (ExitStatus, String) {
    let out = cmd.stderr(Stdio::inherit()).output().expect("running a trigger");
    (out.status, String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Answer one A query for anything with 127.0.0.9, from 127.0.0.X:53.
pub fn dns_responder() -> (String, std::thread::JoinHandle<()>) {
    let (sock, ip) = dns_server_socket();
    (ip, answer_once(sock))
}

/// [`dns_responder`] on [::1]:53.
pub fn dns_responder_v6() -> (String, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("[::1]:53").expect("[::1]:53 free");
    ("::1".to_string(), answer_once(sock))
}

/// Answer one A query on `sock` with 127.0.0.9.
fn answer_once(sock: UdpSocket) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let Ok((n, from)) = sock.recv_from(&mut buf) else { return };
        let _ = sock.send_to(&dns_answer(&buf[..n], &[[127, 0, 0, 9]]), from);
    })
}

/// A UDP socket on a free 127.0.0.X:53, and X's address.
pub fn dns_server_socket() -> (UdpSocket, String) {
    (100..=250)
        .find_map(|x| {
            let ip = format!("127.0.0.{x}");
            UdpSocket::bind((ip.as_str(), 53)).ok().map(|s| (s, ip))
        })
        .expect("a free 127.0.0.X:53")
}

/// A query for the A record of `name` (as fixtures/triggers/resolve.c sends it).
pub fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The answer to `query` (one question) with an A record per address.
pub fn dns_answer(query: &[u8], addresses: &[[u8; 4]]) -> Vec<u8> {
    let mut answer = query[..2].to_vec();
    answer.extend_from_slice(&[0x81, 0x80, 0, 1]);
    answer.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    answer.extend_from_slice(&[0, 0, 0, 0]);
    answer.extend_from_slice(&query[12..]);
    for a in addresses {
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        answer.extend_from_slice(a);
    }
    answer
}

/// Resolve `name` against `server` (a [`dns_responder`]) from the
/// `resolve` trigger run in `cgroup`; returns the trigger's pid.
pub fn resolve_in(cgroup: &TestCgroup, server: &str, name: &str) -> u32 {
    let child = cgroup
        .command(trigger("resolve"))
        .args([server, name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "resolve: {}", String::from_utf8_lossy(&out.stdout));
    pid
}

/// Accept connections on `listener` until the test process ends.
pub fn accept_forever(listener: std::net::TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
}
