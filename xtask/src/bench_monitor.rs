//! `cargo xtask bench-monitor`: what `ioc-scan monitor` costs the host.
//!
//! In one run, alternating without and with a monitor (1,000 indicators,
//! `--kill --block`, network programs on a bench cgroup the workload runs
//! in): N fork+exec of /bin/true and N loopback TCP connects, timed. Each
//! workload has its own rounds, each round one timing without and one with
//! a freshly started monitor, in ABBA order (every other round starts with
//! the monitor); the slowdown is the median over rounds of each round's
//! with/without ratio (target: at most 5%): pairing the two timings of a
//! round cancels the drift of a machine shared with other work, which
//! moves a loopback connect's time by more than the monitor does. The
//! monitor's summary gives the events it lost (target: 0). Then the
//! exec-to-kill latency: spawn-to-reaped time of a binary the kernel kills
//! at exec, next to the same time for an identical binary it leaves alone.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub struct Params {
    pub execs: usize,
    pub connects: usize,
    /// Rounds of the exec workload.
    pub rounds: usize,
    /// Rounds of the connect workload (cheap, and noisier: more of them).
    pub connect_rounds: usize,
    /// Run the connect workload (client and server) on this one CPU.
    pub pin_cpu: Option<usize>,
    /// Bench this `ioc-scan` binary instead of building the workspace's
    /// (e.g. an older build, for a before/after under the same conditions).
    pub binary: Option<PathBuf>,
    pub indicators: usize,
    pub kill_samples: usize,
}

const KILL_NAME: &str = "iocbenchkill";
const SPARE_NAME: &str = "iocbenchspare";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// One OpenIOC 1.1 file with one item.
fn ioc_xml(id: &str, term: &str, value: &str) -> String {
    let doc = term.split('/').next().unwrap_or(term);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<OpenIOC id=\"{id}\" xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\"><metadata><short_description>{id}</short_description></metadata><criteria><Indicator operator=\"OR\" id=\"{id}-root\"><IndicatorItem id=\"{id}-item\" condition=\"is\"><Context document=\"{doc}\" search=\"{term}\" type=\"mir\"/><Content type=\"string\">{value}</Content></IndicatorItem></Indicator></criteria></OpenIOC>\n"
    )
}

/// `indicators` IOCs on the three live documents, none of which the
/// workload matches, one of them naming the kill binary. The PortItem ones
/// name remote addresses and ports (both go to the kernel's block list), so
/// every connect is looked up there and evaluated in user space.
fn write_iocs(dir: &Path, indicators: usize) -> Result<PathBuf> {
    let iocs = dir.join("iocs");
    std::fs::create_dir_all(&iocs)?;
    for i in 0..indicators.saturating_sub(1) {
        let (term, value) = match i % 5 {
            0 | 1 => ("ProcessItem/name", format!("bench-nomatch-{i}")),
            2 => ("ProcessItem/path", format!("/opt/bench/nomatch/{i}")),
            // Addresses and ports nobody uses (below the ephemeral range the
            // bench's listener gets its port from), so that the block list
            // harms no one.
            3 if i % 2 == 0 => ("PortItem/remoteIP", format!("127.255.{}.{}", (i / 250) % 250, i % 250 + 1)),
            3 => ("PortItem/remotePort", format!("{}", 20_000 + i % 10_000)),
            _ => ("DnsEntryItem/RecordName", format!("nomatch-{i}.bench.invalid")),
        };
        std::fs::write(iocs.join(format!("bench-{i}.ioc")), ioc_xml(&format!("bench-{i}"), term, &value))?;
    }
    std::fs::write(iocs.join("bench-kill.ioc"), ioc_xml("bench-kill", "ProcessItem/name", KILL_NAME))?;
    Ok(iocs)
}

fn cgroup2_root() -> Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .context("no cgroup v2 mount")
}

/// This process's cgroup v2 path (relative to the mount).
fn own_cgroup() -> Result<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .context("no cgroup v2 entry in /proc/self/cgroup")
}

/// The bench runs inside its own cgroup (the monitor's network programs
/// attach there, never to the host's root); it moves back when dropped.
struct BenchCgroup {
    path: PathBuf,
    back: PathBuf,
}

impl BenchCgroup {
    fn enter() -> Result<BenchCgroup> {
        let root = cgroup2_root()?;
        let back = root.join(own_cgroup()?.trim_start_matches('/'));
        let path = root.join(format!("ioc-scan-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(path.join("cgroup.procs"), std::process::id().to_string()).context("joining the bench cgroup")?;
        Ok(BenchCgroup { path, back })
    }
}

impl Drop for BenchCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.back.join("cgroup.procs"), std::process::id().to_string());
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// CPU seconds (user + system) used so far by this process and by its
/// reaped children.
fn cpu_now() -> f64 {
    let secs = |who| {
        // SAFETY: getrusage fills the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// Wall and CPU seconds of one workload.
#[derive(Clone, Copy)]
struct Cost {
    wall: f64,
    cpu: f64,
}

fn measure(f: impl FnOnce() -> Result<()>) -> Result<Cost> {
    let (start, cpu) = (Instant::now(), cpu_now());
    f()?;
    Ok(Cost {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_now() - cpu,
    })
}

fn time_execs(n: usize) -> Result<Cost> {
    measure(|| {
        for _ in 0..n {
            let status = Command::new("/bin/true").status().context("running /bin/true")?;
            if !status.success() {
                bail!("/bin/true failed");
            }
        }
        Ok(())
    })
}

/// Close with RST (SO_LINGER 0): no TIME_WAIT piles up over 100,000s of connects.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on an open socket with a valid struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
}

/// The calling thread's CPU affinity.
fn affinity() -> Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
    }
    Ok(set)
}

fn set_affinity(set: &libc::cpu_set_t) -> Result<()> {
    // SAFETY: a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// `n` loopback connections, one at a time: connect, wait for the server
/// to accept and close (EOF), close with RST. Waiting keeps the accept
/// queue from overflowing (a dropped SYN costs a 1 s retransmit). With
/// `pin`, client and server run on that one CPU (the monitor, started
/// before, keeps its own affinity): no cross-CPU wake-ups, whose latency
/// on a virtual machine varies more from run to run than the monitor costs.
fn time_connects(n: usize, pin: Option<usize>) -> Result<Cost> {
    let before = affinity()?;
    if let Some(cpu) = pin {
        // SAFETY: a zeroed cpu_set_t is valid; CPU_SET bounds-checks cpu.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut one) };
        set_affinity(&one)?;
    }
    let cost = connects(n);
    set_affinity(&before)?;
    cost
}

fn connects(n: usize) -> Result<Cost> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // Spawned after the caller's affinity is set: it inherits it.
    let server = std::thread::spawn(move || {
        for _ in 0..n {
            match listener.accept() {
                Ok((s, _)) => drop(s),
                Err(_) => break,
            }
        }
    });
    let cost = measure(|| {
        let mut buf = [0u8; 1];
        for _ in 0..n {
            let mut s = TcpStream::connect(addr).context("loopback connect")?;
            let _ = std::io::Read::read(&mut s, &mut buf);
            reset_on_close(&s);
        }
        Ok(())
    });
    server.join().ok();
    cost
}

struct Monitor {
    child: Child,
    lines: Receiver<Value>,
}

impl Monitor {
    fn start(binary: &Path, iocs: &Path, cgroup: &Path, extra: &[&str]) -> Result<Monitor> {
        let mut child = Command::new(binary)
            .args(["monitor", "--json", "--kill", "--block"])
            .args(extra)
            .arg("--ioc")
            .arg(iocs)
            .arg("--cgroup")
            .arg(cgroup)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting ioc-scan monitor")?;
        let stdout = child.stdout.take().context("monitor stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let m = Monitor { child, lines: rx };
        loop {
            match m.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(v) if v["type"] == "ready" => return Ok(m),
                Ok(_) => {}
                Err(_) => bail!("the monitor did not get ready"),
            }
        }
    }

    /// CPU seconds (user + system) the monitor used so far.
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return f64::NAN;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return f64::NAN;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// SIGINT it and return its summary line.
    fn stop(mut self) -> Result<Value> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let mut summary = Value::Null;
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(60)) {
            if v["type"] == "summary" {
                summary = v;
            }
        }
        self.child.wait()?;
        Ok(summary)
    }
}

/// Spawn-to-reaped times (ms) of `program`, and how many died of SIGKILL.
fn spawn_times(program: &Path, n: usize) -> Result<(Vec<f64>, usize)> {
    let mut times = Vec::with_capacity(n);
    let mut killed = 0;
    for _ in 0..n {
        let start = Instant::now();
        let status = Command::new(program).status()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if status.signal() == Some(libc::SIGKILL) {
            killed += 1;
        }
    }
    Ok((times, killed))
}

pub fn run(root: &Path, p: &Params) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench-monitor needs root (it loads eBPF programs)");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = match &p.binary {
        Some(b) => b.clone(),
        None => {
            println!("building ioc-scan (release)");
            let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["build", "--release", "-p", "ioc-scan"])
                .current_dir(root)
                .status()?;
            if !status.success() {
                bail!("cargo build --release failed");
            }
            target.join("release/ioc-scan")
        }
    };
    // Under target/, not /tmp: nothing else cleans it up under our feet.
    std::fs::create_dir_all(&target)?;
    let dir = tempfile::Builder::new().prefix("bench-monitor-").tempdir_in(&target)?;
    let iocs = write_iocs(dir.path(), p.indicators)?;
    let kill_bin = dir.path().join(KILL_NAME);
    let spare_bin = dir.path().join(SPARE_NAME);
    std::fs::copy("/bin/true", &kill_bin)?;
    std::fs::copy("/bin/true", &spare_bin)?;
    let cgroup = BenchCgroup::enter()?;

    println!(
        "{} exec rounds of {} fork+exec of /bin/true and {} connect rounds of {} loopback connects{}, each without and with `ioc-scan monitor` ({} indicators, --kill --block, cgroup {})",
        p.rounds,
        p.execs,
        p.connect_rounds,
        p.connects,
        p.pin_cpu.map(|c| format!(" (client and server on CPU {c})")).unwrap_or_default(),
        p.indicators,
        cgroup.path.display()
    );
    // Warm-up (page cache, binaries), not counted.
    time_execs(p.execs / 20)?;
    time_connects(p.connects / 20, p.pin_cpu)?;
    let mut lost_total = 0u64;
    let mut events_total = 0u64;
    let mut monitor_cpu = 0.0;
    let mut results = Vec::new();
    let workloads: [(&str, usize, &dyn Fn() -> Result<Cost>); 2] = [
        ("exec", p.rounds, &|| time_execs(p.execs)),
        ("connect", p.connect_rounds, &|| time_connects(p.connects, p.pin_cpu)),
    ];
    for (name, rounds, work) in workloads {
        let mut pairs = Vec::with_capacity(rounds);
        for round in 0..rounds {
            // ABBA: every other round starts with the monitor, so that a
            // drift in the machine's load favours neither side.
            let monitor_first = round % 2 == 1;
            let mut without = None;
            if !monitor_first {
                without = Some(work()?);
            }
            let m = Monitor::start(&binary, &iocs, &cgroup.path, &[])?;
            let cpu0 = m.cpu_seconds();
            let with = work()?;
            let cpu = m.cpu_seconds() - cpu0;
            let summary = m.stop()?;
            let without = match without {
                Some(w) => w,
                None => work()?,
            };
            let lost = summary["lost_events"].as_u64().unwrap_or(u64::MAX);
            let events = summary["events"].as_u64().unwrap_or(0);
            println!(
                "{name} round {}: {:.3}s -> {:.3}s wall ({:+.1}%), {:.3} -> {:.3} CPU s ({:+.1}%); monitor: {} events, {} lost, {:.2} CPU s",
                round + 1,
                without.wall,
                with.wall,
                (with.wall / without.wall - 1.0) * 100.0,
                without.cpu,
                with.cpu,
                (with.cpu / without.cpu - 1.0) * 100.0,
                events,
                lost,
                cpu
            );
            pairs.push((without, with));
            lost_total = lost_total.saturating_add(lost);
            events_total += events;
            monitor_cpu += cpu;
        }
        results.push((name, pairs));
    }

    // Exec-to-kill latency, and the programs' own run time (BPF stats cost
    // a little per run: only in this last, untimed run).
    let m = Monitor::start(&binary, &iocs, &cgroup.path, &["--program-stats"])?;
    let (mut spare, spare_killed) = spawn_times(&spare_bin, p.kill_samples)?;
    let (mut killed_times, killed) = spawn_times(&kill_bin, p.kill_samples)?;
    time_execs(p.execs / 10)?;
    time_connects(p.connects / 10, p.pin_cpu)?;
    let kill_summary = m.stop()?;
    let last_stats = kill_summary["program_stats"].clone();

    let (spare_ms, kill_ms) = (median(&mut spare), median(&mut killed_times));
    println!();
    let pct = |r: f64| (r - 1.0) * 100.0;
    for (name, pairs) in &results {
        if pairs.is_empty() {
            continue;
        }
        let ratios = |f: fn(&Cost) -> f64| -> Vec<f64> { pairs.iter().map(|(w, m)| f(m) / f(w)).collect() };
        let (mut wall, mut cpu) = (ratios(|c| c.wall), ratios(|c| c.cpu));
        let (w_lo, w_hi) = (wall.iter().copied().fold(f64::INFINITY, f64::min), wall.iter().copied().fold(0.0, f64::max));
        println!(
            "{name:<7} median of {} paired rounds: wall {:+.1}% (rounds from {:+.1}% to {:+.1}%), workload CPU {:+.1}%; target <= +5%",
            pairs.len(),
            pct(median(&mut wall)),
            pct(w_lo),
            pct(w_hi),
            pct(median(&mut cpu))
        );
        let side = |f: fn(&(Cost, Cost)) -> f64| -> Vec<f64> { pairs.iter().map(f).collect() };
        let (ww, wm) = (median(&mut side(|p| p.0.wall)), median(&mut side(|p| p.1.wall)));
        let (cw, cm) = (median(&mut side(|p| p.0.cpu)), median(&mut side(|p| p.1.cpu)));
        println!(
            "{name:<7} medians of each side: wall {ww:.3}s -> {wm:.3}s ({:+.1}%), workload CPU {cw:.3}s -> {cm:.3}s ({:+.1}%)",
            pct(wm / ww),
            pct(cm / cw)
        );
    }
    println!("lost events: {lost_total} of {events_total} (target 0); the monitor itself used {monitor_cpu:.2} CPU s over the timed runs");
    if let Some(programs) = last_stats.as_object() {
        let per: Vec<String> = programs
            .iter()
            .map(|(name, v)| format!("{name} {} ns x {}", v["ns_per_run"], v["runs"]))
            .collect();
        println!("kernel programs (average run time x runs, last run): {}", per.join(", "));
    }
    println!(
        "exec-to-kill: {killed}/{} killed at exec, spawn-to-reaped median {:.3} ms (an identical binary left alone: {:.3} ms, {} killed); lost in that run: {}",
        p.kill_samples,
        kill_ms,
        spare_ms,
        spare_killed,
        kill_summary["lost_events"]
    );
    if killed != p.kill_samples || spare_killed != 0 {
        bail!("the kill binary was not killed every time, or the spare one was");
    }
    Ok(())
}
