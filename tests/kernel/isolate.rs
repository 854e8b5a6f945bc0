//! Network isolation against the real kernel: a test cgroup (never the
//! root cgroup) and two network namespaces joined by a veth pair, both made
//! here; traffic from a process in the cgroup against one outside it.

use crate::harness::{bpf_or_skip, trigger, TestCgroup, PATIENCE};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ioc-scan"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) {
    run_ok(Command::new("ip").args(args));
}

/// Two network namespaces joined by a veth pair: `a` (10.77.N.1) and `b`
/// (10.77.N.2). Deleted on drop (the veth pair with them).
struct NetPair {
    a: String,
    b: String,
    a_addr: String,
    b_addr: String,
}

impl NetPair {
    fn new() -> NetPair {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let (a, b) = (format!("iocscan-a-{id}"), format!("iocscan-b-{id}"));
        let (va, vb) = (
            format!("isoa{}", id.replace('-', "")),
            format!("isob{}", id.replace('-', "")),
        );
        let (va, vb) = (va[..va.len().min(15)].to_string(), vb[..vb.len().min(15)].to_string());
        let pair = NetPair {
            a: a.clone(),
            b: b.clone(),
            a_addr: format!("10.77.{}.1", n % 250),
            b_addr: format!("10.77.{}.2", n % 250),
        };
        ip(&["netns", "add", &a]);
        ip(&["netns", "add", &b]);
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &a]);
        ip(&["link", "set", &vb, "netns", &b]);
        ip(&["-n", &a, "addr", "add", &format!("{}/24", pair.a_addr), "dev", &va]);
        ip(&["-n", &b, "addr", "add", &format!("{}/24", pair.b_addr), "dev", &vb]);
        for (ns, dev) in [(&a, &va), (&b, &vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
    }
}

/// An isolation under its own name (pins /sys/fs/bpf/ioc-scan/NAME), lifted on drop.
struct Isolation {
    name: String,
}

impl Isolation {
    fn new() -> Isolation {
        Isolation {
            name: format!("test-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst)),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.args(args)
            .env("IOC_SCAN_ISOLATION_NAME", &self.name)
            .env_remove("IOC_SCAN_ISOLATION_CGROUP")
            .env_remove("IOC_SCAN_ISOLATION_ALLOW");
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(run_ok(&mut self.cmd(args)).stdout).unwrap()
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["isolation", "status", "--json"])).unwrap()
    }

    fn pins(&self) -> PathBuf {
        Path::new("/sys/fs/bpf/ioc-scan").join(&self.name)
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let _ = self.cmd(&["isolation", "off"]).output();
    }
}

/// `connect udp|tcp ADDR PORT` run in namespace `ns`, inside `cgroup` or not.
fn connect(cgroup: Option<&TestCgroup>, ns: &str, proto: &str, addr: &str, port: u16) -> String {
    let mut cmd = match cgroup {
        Some(cg) => cg.command("ip"),
        None => Command::new("ip"),
    };
    let out = cmd
        .args(["netns", "exec", ns])
        .arg(trigger("connect"))
        .args([proto, addr, &port.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sending from inside the cgroup: "ok", or "errno 1" when the egress
/// program drops the datagram.
fn send_inside(cg: &TestCgroup, net: &NetPair) -> String {
    connect(Some(cg), &net.a, "udp", &net.b_addr, 9)
}

const UDP_SINK: &str = r#"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("bind"); return 1; }
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    for (;;) {
        if (recv(fd, buf, sizeof buf, 0) >= 0) { printf("got\n"); fflush(stdout); }
    }
}
"#;

fn udp_sink_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("ioc-scan-udp-sink")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::write(dir.join("udp_sink.c"), UDP_SINK).unwrap();
        let status = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(dir.join("udp_sink"))
            .arg(dir.join("udp_sink.c"))
            .status()
            .unwrap();
        assert!(status.success());
        dir.join("udp_sink")
    })
    .clone()
}

/// A UDP receiver in namespace `a`, started inside the cgroup: its socket
/// belongs to the cgroup, so the ingress program sees its datagrams.
struct Sink {
    child: Child,
    lines: Receiver<String>,
    port: u16,
}

impl Sink {
    fn start(cg: &TestCgroup, net: &NetPair, port: u16) -> Sink {
        let mut child = cg
            .command("ip")
            .args(["netns", "exec", &net.a])
            .arg(udp_sink_binary())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "ready");
        Sink { child, lines: rx, port }
    }

    /// Datagrams the kernel dropped for this socket (/proc/net/udp `drops`).
    fn drops(&self, net: &NetPair) -> u64 {
        let out = run_ok(Command::new("ip").args(["netns", "exec", &net.a, "cat", "/proc/net/udp"]));
        let text = String::from_utf8(out.stdout).unwrap();
        let port = format!(":{:04X}", self.port);
        text.lines()
            .skip(1)
            .find(|l| l.split_whitespace().nth(1).is_some_and(|local| local.ends_with(&port)))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .expect("the sink's socket is listed")
    }

    /// Send from `b` (outside the cgroup) until the datagram is received
    /// (true) or dropped (false): whichever the kernel does first.
    fn deliver(&self, net: &NetPair) -> bool {
        let dropped = self.drops(net);
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            assert_eq!(connect(None, &net.b, "udp", &net.a_addr, self.port), "ok");
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                assert_eq!(line, "got");
                return true;
            }
            if self.drops(net) > dropped {
                return false;
            }
        }
        panic!("a datagram was neither received nor dropped");
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore]
fn isolation_drops_a_cgroups_traffic_both_ways_but_not_loopback_nor_other_processes() {
    if !bpf_or_skip("isolation_drops_a_cgroups_traffic_both_ways_but_not_loopback_nor_other_processes") {
        return;
    }
    let net = NetPair::new();
    let cg = TestCgroup::new("isolate");
    let iso = Isolation::new();
    let sink = Sink::start(&cg, &net, 7001);
    assert_eq!(send_inside(&cg, &net), "ok", "before isolation");
    assert!(sink.deliver(&net), "before isolation");

    let cgs = cg.path().to_str().unwrap();
    let out = iso.ok(&["isolation", "on", "--duration", "10m", "--cgroup", cgs]);
    assert!(out.contains("network isolation on"), "{out}");
    // The command has exited: the pinned links keep isolation in place.
    assert!(iso.pins().join("egress_link").exists());
    let status = iso.status();
    assert_eq!(status["status"], "active", "{status}");
    assert_eq!(status["cgroup"], cgs);
    assert!(status["remaining_seconds"].as_u64().unwrap() > 500);

    assert_eq!(send_inside(&cg, &net), "errno 1", "egress from the cgroup is dropped");
    assert!(!sink.deliver(&net), "ingress to the cgroup is dropped");
    assert_eq!(
        connect(None, &net.a, "udp", &net.b_addr, 9),
        "ok",
        "a process outside the cgroup is not isolated"
    );
    assert_eq!(
        connect(Some(&cg), &net.a, "udp", "127.0.0.1", 9),
        "ok",
        "loopback stays open"
    );
    assert_eq!(
        connect(Some(&cg), &net.a, "udp", &net.a_addr, 9),
        "ok",
        "the host's own address stays open"
    );

    // The allow list (merged into the running isolation) opens one peer, both ways.
    let out = iso.ok(&[
        "isolation",
        "on",
        "--duration",
        "1m",
        "--cgroup",
        cgs,
        "--allow",
        &net.b_addr,
    ]);
    assert!(out.contains("extended"), "{out}");
    let status = iso.status();
    assert!(
        status["remaining_seconds"].as_u64().unwrap() > 500,
        "the expiry is never shortened: {status}"
    );
    assert_eq!(status["allow"], serde_json::json!([format!("{}/32", net.b_addr)]));
    assert_eq!(send_inside(&cg, &net), "ok");
    assert!(sink.deliver(&net));

    let out = iso.ok(&["isolation", "off"]);
    assert!(out.contains("lifted"), "{out}");
    assert!(!iso.pins().exists());
    assert_eq!(iso.status()["status"], "off");
    let out = iso.ok(&["isolation", "off"]);
    assert!(out.contains("was not on"), "{out}");
}

#[test]
#[ignore]
fn isolation_ends_at_expiry_without_any_process_and_status_reports_it() {
    if !bpf_or_skip("isolation_ends_at_expiry_without_any_process_and_status_reports_it") {
        return;
    }
    let net = NetPair::new();
    let cg = TestCgroup::new("isolate-expiry");
    let iso = Isolation::new();
    iso.ok(&[
        "isolation",
        "on",
        "--duration",
        "3s",
        "--cgroup",
        cg.path().to_str().unwrap(),
    ]);
    assert_eq!(send_inside(&cg, &net), "errno 1");
    // No ioc-scan process runs now; the programs stop dropping by themselves.
    let deadline = Instant::now() + PATIENCE;
    while send_inside(&cg, &net) != "ok" {
        assert!(Instant::now() < deadline, "isolation never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(iso.pins().exists(), "nothing lifted it yet");
    let status = iso.status();
    assert_eq!(status["status"], "expired", "{status}");
    assert!(!iso.pins().exists(), "reporting expiry lifts it");
    assert_eq!(iso.status()["status"], "off");

    // Any other command lifts an expired isolation too.
    iso.ok(&[
        "isolation",
        "on",
        "--duration",
        "1s",
        "--cgroup",
        cg.path().to_str().unwrap(),
    ]);
    let deadline = Instant::now() + PATIENCE;
    while send_inside(&cg, &net) != "ok" {
        assert!(Instant::now() < deadline, "isolation never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    run_ok(iso.cmd(&["terms"]).stdout(Stdio::null()));
    assert!(!iso.pins().exists());
}

#[test]
#[ignore]
fn an_isolation_is_not_moved_to_another_cgroup() {
    if !bpf_or_skip("an_isolation_is_not_moved_to_another_cgroup") {
        return;
    }
    let one = TestCgroup::new("isolate-one");
    let two = TestCgroup::new("isolate-two");
    let iso = Isolation::new();
    iso.ok(&[
        "isolation",
        "on",
        "--duration",
        "5m",
        "--cgroup",
        one.path().to_str().unwrap(),
    ]);
    let out = iso
        .cmd(&[
            "isolation",
            "on",
            "--duration",
            "5m",
            "--cgroup",
            two.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("turn it off first"));
    assert_eq!(iso.status()["cgroup"], one.path().to_str().unwrap());
}

#[test]
#[ignore]
fn a_task_run_with_the_isolate_action_isolates_and_records_it() {
    if !bpf_or_skip("a_task_run_with_the_isolate_action_isolates_and_records_it") {
        return;
    }
    let net = NetPair::new();
    let cg = TestCgroup::new("isolate-task");
    let iso = Isolation::new();
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    std::fs::create_dir(&scan).unwrap();
    std::fs::write(scan.join("beacon.bin"), b"c2 beacon").unwrap();
    let ioc = crate::harness::write_ioc(tmp.path(), "beacon", &[("FileItem/FileName", "is", "beacon.bin")]);
    let task = |args: &[&str]| {
        let mut c = iso.cmd(args);
        c.env("IOC_SCAN_DB", tmp.path().join("db.redb"))
            .env("IOC_SCAN_ISOLATION_CGROUP", cg.path())
            .env("IOC_SCAN_ISOLATION_ALLOW", "192.0.2.10, 2001:db8::53")
            .env("IOC_SCAN_QUARANTINE_DIR", tmp.path().join("q"));
        c.output().unwrap()
    };
    let out = task(&[
        "task",
        "create",
        "--name",
        "iso",
        "--ioc",
        ioc.to_str().unwrap(),
        "--scope",
        scan.to_str().unwrap(),
        "--no-critical-areas",
        "--no-ioc-paths",
        "--respond",
        "isolate:10m",
        "--apply-response",
        "on",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = task(&["task", "run", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(send_inside(&cg, &net), "errno 1", "the run isolated the cgroup");
    let out = task(&["alert", &run["id"].to_string(), "--json"]);
    let alert: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &alert["detections"][0]["responses"][0];
    assert_eq!(r["action"], "isolate:10m");
    assert_eq!(r["outcome"], "done", "{r}");
    let detail: Value = serde_json::from_str(r["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["object"]["cgroup"], cg.path().to_str().unwrap());
    assert_eq!(
        detail["details"]["allow"],
        serde_json::json!(["192.0.2.10/32", "2001:db8::53/128"])
    );
    iso.ok(&["isolation", "off"]);
    assert_eq!(send_inside(&cg, &net), "ok");
}

/// A command that joins `cg` and the network namespace `netns` before it
/// execs (`ip netns exec` would also give it a mount namespace of its own,
/// hiding the host's bpffs, where isolation pins its programs).
fn in_cgroup_and_netns(cgroup: &Path, netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    let ns = std::ffi::CString::new(format!("/var/run/netns/{netns}")).unwrap();
    let procs = std::ffi::CString::new(cgroup.join("cgroup.procs").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: only async-signal-safe calls (open, write, setns, close)
    // between fork and exec; the paths were allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let joined = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::close(fd);
            if !joined {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::open(ns.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let r = libc::setns(fd, libc::CLONE_NEWNET);
            libc::close(fd);
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Moves the calling thread (only) into the network namespace `netns`;
/// processes and threads it starts afterwards are in it too.
fn enter_netns(netns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{netns}")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace descriptor; affects this thread only.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "{}", std::io::Error::last_os_error());
}

/// A child process killed (SIGKILL) and reaped when dropped, panics included.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The whole path, for real: a console in namespace `b`, a managed agent in
/// namespace `a` inside the test cgroup. A task's isolate action cuts the
/// cgroup off — but not from the console (its address is on the allow
/// list, with the DNS servers): the result still arrives, and the console
/// lifts the isolation through the agent.
#[test]
#[ignore]
fn the_console_stays_reachable_through_isolation_and_lifts_it() {
    if !bpf_or_skip("the_console_stays_reachable_through_isolation_and_lifts_it") {
        return;
    }
    let net = NetPair::new();
    // A second peer in `b`, not the console: isolation must cut it off.
    let other = net.b_addr.replace(".2", ".3");
    ip(&["-n", &net.b, "addr", "add", &format!("{other}/32"), "dev", "lo"]);
    let cg = TestCgroup::new("isolate-console");
    let iso = Isolation::new();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("console.redb");
    let out = run_ok(bin().args(["console", "init", "--password", "correct horse battery", "--db"]).arg(&db));
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(connect(Some(&cg), &net.a, "udp", &other, 9), "ok", "before isolation");

    let (b, a_ns, b_addr) = (net.b.clone(), net.a.clone(), net.b_addr.clone());
    let (cg_path, iso_name) = (cg.path().to_path_buf(), iso.name.clone());
    let scan = tmp.path().join("scan");
    std::fs::create_dir(&scan).unwrap();
    std::fs::write(scan.join("isolate-me.bin"), b"c2 beacon").unwrap();
    let ioc = crate::harness::write_ioc(tmp.path(), "isolate-me", &[("FileItem/FileName", "is", "isolate-me.bin")]);
    let ioc_bytes = std::fs::read(&ioc).unwrap();
    let agent_db = tmp.path().join("agent/local.redb");
    let agent_log = tmp.path().join("agent.log");
    // The console side runs in namespace `b` (a thread of its own: only it moves there).
    let console_side = std::thread::spawn(move || {
        enter_netns(&b);
        let mut console = KillOnDrop(
            bin()
                .args(["console", "--listen", &format!("{b_addr}:0"), "--db"])
                .arg(&db)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(console.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://"), "{line}");
        let http = reqwest::blocking::Client::builder().no_proxy().timeout(PATIENCE).build().unwrap();
        let api = |method: reqwest::Method, path: &str| {
            http.request(method, format!("{url}/api/v1{path}")).bearer_auth(&admin)
        };
        let enrollment: Value = api(reqwest::Method::POST, "/enrollment-tokens")
            .json(&serde_json::json!({"name": "t"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let agent = in_cgroup_and_netns(&cg_path, &a_ns, env!("CARGO_BIN_EXE_ioc-scan"))
            .args(["agent", "--console", &url, "--insecure-http", "--device-name", "isolated", "--poll-wait", "1"])
            .arg("--token")
            .arg(enrollment["token"].as_str().unwrap())
            .arg("--db")
            .arg(&agent_db)
            .env("IOC_SCAN_ISOLATION_NAME", &iso_name)
            .env("IOC_SCAN_ISOLATION_CGROUP", &cg_path)
            .env_remove("IOC_SCAN_ISOLATION_ALLOW")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&agent_log).unwrap()))
            .spawn()
            .unwrap();
        let agent = KillOnDrop(agent);
        let log = || std::fs::read_to_string(&agent_log).unwrap_or_default();
        let device = wait_until("the agent enrolled", || {
            let v: Value = api(reqwest::Method::GET, "/devices").send().ok()?.json().ok()?;
            v["devices"][0]["id"].as_u64()
        });
        let settings = serde_json::json!({
            "name": "isolate",
            "scope": {"critical_areas": false, "ioc_paths": false, "custom_paths": [scan.display().to_string()]},
            "response": {"apply": true, "actions": [{"action": "isolate", "seconds": 600}]},
        });
        let form = reqwest::blocking::multipart::Form::new()
            .part(
                "task",
                reqwest::blocking::multipart::Part::text(settings.to_string()).mime_str("application/json").unwrap(),
            )
            .part("file", reqwest::blocking::multipart::Part::bytes(ioc_bytes).file_name("i.ioc"));
        let task: Value = api(reqwest::Method::POST, "/tasks").multipart(form).send().unwrap().json().unwrap();
        let task = task["id"].as_u64().unwrap_or_else(|| panic!("{task}"));
        let r = api(reqwest::Method::POST, &format!("/tasks/{task}/run")).json(&serde_json::json!({"all": true}));
        assert_eq!(r.send().unwrap().status(), 201);
        // The run isolated the agent's own cgroup; its result still arrives.
        let run = wait_until("the result of the isolating run", || {
            let v: Value = api(reqwest::Method::GET, &format!("/results?task={task}")).send().ok()?.json().ok()?;
            v["results"].as_array()?.first().cloned()
        });
        let alert: Value =
            api(reqwest::Method::GET, &format!("/results/{}", run["id"])).send().unwrap().json().unwrap();
        let r = &alert["detections"][0]["responses"][0];
        assert_eq!(r["outcome"], "done", "{alert}\n{}", log());
        let detail: Value = serde_json::from_str(r["detail"].as_str().unwrap()).unwrap();
        (agent, device, detail, api(reqwest::Method::POST, &format!("/devices/{device}/lift-isolation")), {
            let http = http.clone();
            let url = url.clone();
            let admin = admin.clone();
            move |device: u64| -> Value {
                http.get(format!("{url}/api/v1/devices/{device}/commands")).bearer_auth(&admin).send().unwrap().json().unwrap()
            }
        }, console)
    });
    let (agent, device, detail, lift, commands, console) = console_side.join().unwrap();
    let allow = detail["details"]["allow"].as_array().unwrap().clone();
    assert!(allow.contains(&Value::from(format!("{}/32", net.b_addr))), "the console is allowed: {detail}");
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for ns in ioc_scan::agent::reachable::nameservers(&resolv) {
        let net = ipnet::IpNet::from(ns).to_string();
        assert!(allow.contains(&Value::from(net.clone())), "the DNS server {net} is allowed: {detail}");
    }
    assert_eq!(iso.status()["status"], "active");
    assert_eq!(connect(Some(&cg), &net.a, "udp", &other, 9), "errno 1", "the cgroup is isolated");
    assert_eq!(connect(Some(&cg), &net.a, "udp", &net.b_addr, 9), "ok", "but not from the console");

    // The console lifts it, through the isolated agent.
    let lift = std::thread::spawn({
        let b = net.b.clone();
        move || {
            enter_netns(&b);
            let r = lift.send().unwrap();
            assert_eq!(r.status(), 202);
            wait_until("the lift reported done", || {
                let v = commands(device);
                (v["commands"][0]["status"] == "done").then_some(v)
            })
        }
    })
    .join()
    .unwrap();
    assert_eq!(lift["commands"][0]["kind"], "lift-isolation", "{lift}");
    assert_eq!(iso.status()["status"], "off");
    assert_eq!(connect(Some(&cg), &net.a, "udp", &other, 9), "ok", "isolation lifted");
    drop((agent, console));
}

/// An isolation someone turned on by hand, without the console on its
/// allow list: the agent that starts inside it opens it to its console (and
/// its DNS servers) before it enrolls, and the console can lift it.
#[test]
#[ignore]
fn an_agent_opens_an_isolation_turned_on_by_hand_to_its_console() {
    if !bpf_or_skip("an_agent_opens_an_isolation_turned_on_by_hand_to_its_console") {
        return;
    }
    let net = NetPair::new();
    let cg = TestCgroup::new("isolate-by-hand");
    let iso = Isolation::new();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("console.redb");
    let out = run_ok(bin().args(["console", "init", "--password", "correct horse battery", "--db"]).arg(&db));
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    iso.ok(&["isolation", "on", "--duration", "10m", "--cgroup", cg.path().to_str().unwrap()]);
    assert_eq!(connect(Some(&cg), &net.a, "udp", &net.b_addr, 9), "errno 1", "the console's peer is cut off");

    let (b, a_ns, b_addr) = (net.b.clone(), net.a.clone(), net.b_addr.clone());
    let (cg_path, iso_name) = (cg.path().to_path_buf(), iso.name.clone());
    let agent_log = tmp.path().join("agent.log");
    let agent_db = tmp.path().join("agent/local.redb");
    let log_path = agent_log.clone();
    let (agent, console, lifted) = std::thread::spawn(move || {
        enter_netns(&b);
        let mut console = KillOnDrop(
            bin()
                .args(["console", "--listen", &format!("{b_addr}:0"), "--db"])
                .arg(&db)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(console.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        let http = reqwest::blocking::Client::builder().no_proxy().timeout(PATIENCE).build().unwrap();
        let api = |method: reqwest::Method, path: &str| {
            http.request(method, format!("{url}/api/v1{path}")).bearer_auth(&admin)
        };
        let enrollment: Value = api(reqwest::Method::POST, "/enrollment-tokens")
            .json(&serde_json::json!({"name": "t"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let agent = KillOnDrop(
            in_cgroup_and_netns(&cg_path, &a_ns, env!("CARGO_BIN_EXE_ioc-scan"))
                .args(["agent", "--console", &url, "--insecure-http", "--device-name", "by-hand", "--poll-wait", "1"])
                .arg("--token")
                .arg(enrollment["token"].as_str().unwrap())
                .arg("--db")
                .arg(&agent_db)
                .env("IOC_SCAN_ISOLATION_NAME", &iso_name)
                .env("IOC_SCAN_ISOLATION_CGROUP", &cg_path)
                .env_remove("IOC_SCAN_ISOLATION_ALLOW")
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(&agent_log).unwrap()))
                .spawn()
                .unwrap(),
        );
        // It enrolls from inside the isolation: it opened it to the console.
        let device = wait_until("the isolated agent enrolled", || {
            let v: Value = api(reqwest::Method::GET, "/devices").send().ok()?.json().ok()?;
            v["devices"][0]["id"].as_u64()
        });
        let r = api(reqwest::Method::POST, &format!("/devices/{device}/lift-isolation")).send().unwrap();
        assert_eq!(r.status(), 202);
        let lifted = wait_until("the lift reported done", || {
            let v: Value = api(reqwest::Method::GET, &format!("/devices/{device}/commands")).send().ok()?.json().ok()?;
            (v["commands"][0]["status"] == "done").then_some(v)
        });
        (agent, console, lifted)
    })
    .join()
    .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(log.contains(&format!("added {}/32", net.b_addr)), "{log}");
    assert_eq!(lifted["commands"][0]["kind"], "lift-isolation", "{lifted}");
    assert_eq!(iso.status()["status"], "off");
    assert_eq!(connect(Some(&cg), &net.a, "udp", &net.b_addr, 9), "ok", "isolation lifted");
    drop((agent, console));
}
