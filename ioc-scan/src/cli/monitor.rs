//! `ioc-scan monitor --ioc PATH... [--kill] [--block] [--json] [--cgroup PATH] [--duration SECS]`:
//! watch the host through the kernel sensors (exec, exit, TCP/UDP
//! connections, DNS) and evaluate ProcessItem, PortItem and DnsEntryItem
//! indicators on every event with the same evaluator as `scan`.
//!
//! Output (JSON lines with `--json`, text otherwise): `ready` once every
//! program is attached (and the /proc snapshot is evaluated), one
//! `detection` per IOC and object, an `action` per kill or block
//! (`outcome`: `done`, `refused`, `failed`, with the `reason`),
//! `lost_events` whenever the ring buffer overflowed, a `summary` at the end.
//!
//! Enforcement only on request:
//! - `--kill`: processes matching a ProcessItem `name`/`path` `is` item that
//!   decides its IOC alone, or an executable given by `--kill-inode DEV:INO`
//!   (or an IOC-named path whose hash an IOC lists), get SIGKILL in the exec
//!   tracepoint before their first instruction; other process detections
//!   are killed from user space through a pidfd after checking the start
//!   time. Never pid 1, kernel threads or ioc-scan.
//! - `--block`: connects and UDP sends to PortItem `remoteIP`/`remotePort`
//!   `is` items (and to the addresses a detected DNS answer gave) are
//!   refused (EPERM) in the cgroup connect/sendmsg programs, attached to
//!   `--cgroup` (default: the cgroup v2 root).
//!
//! Exit status: 0 nothing detected, 1 something detected, 2 error.

use anyhow::{bail, Context as _};
use ioc_scan::collect::ebpf::enforce::{self, KillOutcome};
use ioc_scan::collect::ebpf::events::{Conn, Dns, Event, Exec, KernelKill};
use ioc_scan::collect::ebpf::observe::{self, ProcessTable};
use ioc_scan::collect::ebpf::reader::EventReader;
use ioc_scan::collect::ebpf::rules::{self, BlockRule, KillRules};
use ioc_scan::collect::ebpf::{Kernel, Options, Sensors, Settings};
use ioc_scan::collect::host::{self, CollectContext, HostRoot, Reply, Wanted};
use ioc_scan::collect::{dns, port, process};
use ioc_scan::eval::{CompiledCollection, Detection, Matcher, Observation, Outcome, Severity, Verdicts};
use ioc_scan::openioc;
use ioc_scan::terms::support::{self, Support};
use ioc_scan::terms::TermId;
use ioc_scan_common as k;
use serde_json::{json, Value as Json};
use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// IOC files, or directories searched for *.ioc and *.xml files.
    #[arg(long = "ioc", value_name = "PATH", required = true, num_args = 1..)]
    pub ioc: Vec<PathBuf>,
    /// Kill processes that match (in the kernel at exec where it can decide,
    /// else through a pidfd).
    #[arg(long)]
    pub kill: bool,
    /// Refuse connections to the addresses and ports IOCs name.
    #[arg(long)]
    pub block: bool,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// The cgroup v2 directory the network programs (UDP, DNS, block) attach
    /// to; default: the cgroup v2 root (every process).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,
    /// Stop after this many seconds (default: until SIGINT or SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Also kill at exec the executable with this device and inode, as
    /// `stat -c %d:%i FILE` prints them (e.g. a file a scan found by hash).
    #[arg(long = "kill-inode", value_name = "DEV:INO", requires = "kill")]
    pub kill_inode: Vec<String>,
    /// Size of the event ring buffer in bytes (power of two).
    #[arg(long, hide = true, default_value_t = 8 << 20)]
    pub ring_buffer_bytes: u32,
    /// Print every kernel event (debugging, tests).
    #[arg(long, hide = true)]
    pub print_events: bool,
    /// How often lost-event counters are read, in milliseconds.
    #[arg(long, hide = true, default_value_t = 1000)]
    pub lost_interval_ms: u64,
    /// Count the programs' runs and run time, report them in the summary
    /// (benchmarks).
    #[arg(long, hide = true)]
    pub program_stats: bool,
    /// How often the ring buffer is drained without a wake-up, in milliseconds.
    #[arg(long, hide = true, default_value_t = 20)]
    pub poll_ms: u64,
    /// Wait this long after `ready` before reading events (tests: make the
    /// ring buffer overflow on purpose).
    #[arg(long, hide = true, default_value_t = 0)]
    pub read_delay_ms: u64,
}

/// Events taken from the ring buffer per batch (output is flushed per batch).
const BATCH: usize = 512;

const KIND_NAMES: [&str; k::EVENT_KIND_COUNT as usize] = ["none", "exec", "exit", "connection", "blocked", "dns"];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.duration.is_some_and(|d| !(d.is_finite() && d >= 0.0)) {
        bail!("--duration must be a number of seconds");
    }
    let inodes = args
        .kill_inode
        .iter()
        .map(|s| parse_dev_ino(s))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let collection = openioc::load_files(&args.ioc);
    for err in &collection.errors {
        eprintln!("ioc-scan: {err}");
    }
    for d in collection.diagnostics.iter().filter(|d| d.severity == openioc::Severity::Error) {
        eprintln!("ioc-scan: {d}");
    }
    if collection.iocs.is_empty() {
        bail!(
            "no IOC loaded from {}",
            args.ioc.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let (compiled, diagnostics) = CompiledCollection::compile_with_support(&collection.iocs, live_support);
    for d in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        eprintln!("ioc-scan: {d}");
    }

    let mut kill_rules = if args.kill {
        rules::kill_rules(&collection.iocs)
    } else {
        KillRules::default()
    };
    for (dev, ino) in inodes {
        kill_rules.inodes.push((dev, ino));
        kill_rules.inode_sources.push(format!("--kill-inode {dev}:{ino}"));
    }
    let block_rules = if args.block {
        rules::block_rules(&collection.iocs)
    } else {
        Vec::new()
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(monitor(&args, &compiled, kill_rules, block_rules))
}

/// The terms the live observations answer are evaluated (the process, port
/// and DNS collectors' terms), whatever the scan-wide support list says.
fn live_support(id: TermId) -> Support {
    if process::TERMS.contains(&id) || port::TERMS.contains(&id) || dns::TERMS.contains(&id) {
        Support::Supported
    } else {
        support::status(id)
    }
}

/// `DEV:INO` in decimal, as `stat -c %d:%i` prints them.
fn parse_dev_ino(s: &str) -> anyhow::Result<(u64, u64)> {
    let (dev, ino) = s.split_once(':').with_context(|| format!("--kill-inode {s:?}: expected DEV:INO"))?;
    Ok((
        dev.trim()
            .parse()
            .with_context(|| format!("--kill-inode {s:?}: bad device number"))?,
        ino.trim()
            .parse()
            .with_context(|| format!("--kill-inode {s:?}: bad inode number"))?,
    ))
}

/// SIGINT and SIGTERM, caught from the start (a signal that comes while
/// loading must still end the monitor cleanly, programs detached).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

async fn monitor(
    args: &Args,
    compiled: &CompiledCollection,
    kill_rules: KillRules,
    block_rules: Vec<BlockRule>,
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut signals = Signals {
        int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
    };
    let options = Options {
        ring_buffer_bytes: args.ring_buffer_bytes,
        cgroup: args.cgroup.clone(),
    };
    let mut kernel = Kernel::open(&options)?;
    if let Err(why) = &kernel.offsets {
        eprintln!("ioc-scan: exec events lack parent, start time, inode and arguments: {why}");
    }
    let settings = Settings {
        kill: args.kill,
        block: args.block,
        kill_rules: kill_rules.clone(),
        block_rules: block_rules.clone(),
    };
    kernel.configure(&settings)?;
    // Only the sensors the IOCs and options need.
    let ports = compiled.uses_document("PortItem");
    let names = compiled.uses_document("DnsEntryItem");
    let wanted = Sensors {
        tcp: ports,
        udp: ports || names || args.block,
        dns: names,
    };
    let programs = kernel.attach(&wanted).to_vec();
    if programs.iter().all(|p| p.unavailable.is_some()) {
        let reasons: Vec<String> = programs
            .iter()
            .map(|p| format!("{}: {}", p.program, p.unavailable.as_deref().unwrap_or("")))
            .collect();
        bail!("no kernel program could be attached:\n  {}", reasons.join("\n  "));
    }
    for p in programs.iter().filter(|p| p.unavailable.is_some()) {
        eprintln!(
            "ioc-scan: sensor {} unavailable ({} on {}): {}",
            p.sensor,
            p.program,
            p.attach,
            p.unavailable.as_deref().unwrap_or("")
        );
    }
    if args.kill && !kernel.sensor_ok("exec") {
        eprintln!("ioc-scan: --kill: the exec sensor is unavailable, so no kill happens at exec; snapshot processes are still killed through pidfds");
    }
    let skipped: Vec<&str> = [("tcp", wanted.tcp), ("udp", wanted.udp), ("dns", wanted.dns)]
        .into_iter()
        .filter(|(_, w)| !w)
        .map(|(s, _)| s)
        .collect();
    if args.block && !kernel.sensor_ok("udp") {
        // Asked to enforce and cannot: better to stop than to seem to protect.
        bail!(
            "--block: the cgroup connect programs could not be attached to {}: nothing would be blocked",
            kernel.cgroup().display()
        );
    }
    let reader = EventReader::new(kernel.take_events()?).context("registering the ring buffer with the event loop")?;
    let _stats_fd = if args.program_stats { Some(kernel.enable_stats()?) } else { None };

    let root = HostRoot::system();
    let mut m = Monitor {
        json: args.json,
        print_events: args.print_events,
        kill: args.kill,
        block: args.block,
        out: std::io::BufWriter::new(std::io::stdout()),
        matcher: compiled.matcher(),
        verdicts: Verdicts::new(compiled),
        table: ProcessTable::snapshot(&root),
        kernel,
        stats: Stats::default(),
        lost_seen: [0; k::EVENT_KIND_COUNT as usize],
        kill_attempted: HashSet::new(),
        blocked_ips: HashSet::new(),
        tcp_owners: observe::TcpOwners::default(),
    };

    // Processes and sockets that were there before the monitor.
    m.evaluate_snapshot(compiled, &root);
    m.ready(compiled, &programs, &skipped, &kill_rules, &block_rules);

    if args.read_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(args.read_delay_ms)).await;
    }
    let result = m.run(reader, args, &mut signals).await;
    m.report_lost();
    m.summary();
    m.out.flush().ok();
    result?;
    Ok(if m.stats.detections > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Default)]
struct Stats {
    events: u64,
    detections: u64,
    actions: u64,
    decode_errors: u64,
    lost: u64,
}

struct Monitor<'c> {
    json: bool,
    print_events: bool,
    kill: bool,
    block: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    matcher: Matcher<'c>,
    verdicts: Verdicts,
    table: ProcessTable,
    kernel: Kernel,
    stats: Stats,
    lost_seen: [u64; k::EVENT_KIND_COUNT as usize],
    /// (pid, start) already sent a kill (or refused one): at most one action each.
    kill_attempted: HashSet<(u32, Option<u64>)>,
    blocked_ips: HashSet<IpAddr>,
    tcp_owners: observe::TcpOwners,
}

impl Monitor<'_> {
    async fn run(&mut self, mut reader: EventReader, args: &Args, signals: &mut Signals) -> anyhow::Result<()> {
        let Signals {
            int: sigint,
            term: sigterm,
        } = signals;
        let deadline = args.duration.map(Duration::from_secs_f64);
        let sleep = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(u64::from(u32::MAX))));
        tokio::pin!(sleep);
        let mut lost_timer = tokio::time::interval(Duration::from_millis(args.lost_interval_ms.max(10)));
        let mut poll_timer = tokio::time::interval(Duration::from_millis(args.poll_ms.max(1)));
        poll_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                read = reader.read(&mut batch, BATCH) => {
                    read.context("reading the event ring buffer")?;
                    self.handle_batch(&mut batch);
                }
                _ = poll_timer.tick() => {
                    while reader.drain(&mut batch, BATCH) > 0 {
                        self.handle_batch(&mut batch);
                    }
                }
                _ = lost_timer.tick() => {
                    self.report_lost();
                    self.out.flush().ok();
                }
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                _ = &mut sleep, if deadline.is_some() => break,
            }
        }
        // What is still in the ring buffer when asked to stop.
        while reader.drain(&mut batch, BATCH) > 0 {
            self.handle_batch(&mut batch);
        }
        Ok(())
    }

    fn handle_batch(&mut self, batch: &mut Vec<Result<Event, ioc_scan::collect::ebpf::events::DecodeError>>) {
        for record in batch.drain(..) {
            self.stats.events += 1;
            match record {
                Ok(event) => self.handle(event),
                Err(err) => {
                    self.stats.decode_errors += 1;
                    eprintln!("ioc-scan: bad kernel event: {err}");
                }
            }
        }
        self.out.flush().ok();
    }

    fn evaluate(&mut self, obs: &dyn Observation) -> Vec<Detection> {
        match self.matcher.evaluate(obs) {
            Outcome::Hits(hits) => self.verdicts.add_all(hits),
            // Live observations have no pending fields: nothing more to compute.
            Outcome::NoMatch | Outcome::NeedTerms(_) => Vec::new(),
        }
    }

    fn evaluate_snapshot(&mut self, compiled: &CompiledCollection, root: &HostRoot) {
        let docs: Vec<&str> = ["ProcessItem", "PortItem"]
            .into_iter()
            .filter(|d| compiled.uses_document(d))
            .collect();
        if docs.is_empty() {
            return;
        }
        let mut wanted_terms = Vec::new();
        for d in &docs {
            wanted_terms.extend(compiled.terms_used(d).iter());
        }
        let cx = CollectContext::new(root.clone(), Wanted::terms(wanted_terms));
        let collectors = host::collectors_for(docs);
        let mut detections = Vec::new();
        {
            let matcher = &mut self.matcher;
            let verdicts = &mut self.verdicts;
            let mut sink = |obs: &dyn Observation| match matcher.evaluate(obs) {
                Outcome::NoMatch => Reply::Done,
                Outcome::NeedTerms(terms) => Reply::Need(terms.iter().collect()),
                Outcome::Hits(hits) => {
                    detections.extend(verdicts.add_all(hits));
                    Reply::Done
                }
            };
            for stats in host::collect_all(&collectors, &cx, &mut sink) {
                for e in &stats.errors {
                    tracing::debug!("snapshot {}: {e}", stats.document);
                }
            }
        }
        for d in detections {
            self.detection(&d, None);
        }
    }

    fn handle(&mut self, event: Event) {
        if self.print_events {
            self.line(json!({"type": "event", "event": &event}), || format!("event {event:?}"));
        }
        match event {
            Event::Exec(e) => self.exec(&e),
            Event::Exit(x) => self.table.exit(x.pid),
            Event::Conn(mut c) => {
                self.tcp_owners.resolve(&mut c);
                self.connection(&c, false)
            }
            Event::Blocked(c) => {
                self.action_block_done(&c);
                self.connection(&c, true);
            }
            Event::Dns(d) => self.dns(&d),
        }
    }

    fn exec(&mut self, e: &Exec) {
        let entry = self.table.exec(e).clone();
        if let Some(kill) = e.kernel_kill {
            let (outcome, reason) = match kill {
                KernelKill::Killed => ("done", format!("SIGKILL at exec ({} on the kill list)", e.kill_matched.join(", "))),
                KernelKill::Refused => (
                    "refused",
                    "protected process: pid 1, ioc-scan itself or a kernel thread".to_string(),
                ),
                KernelKill::Failed => ("failed", "bpf_send_signal failed".to_string()),
            };
            self.kill_attempted.insert((e.pid, entry.start_boottime_ns));
            self.action(
                json!({"type": "action", "action": "kill", "by": "kernel", "outcome": outcome, "reason": reason,
                       "pid": e.pid, "name": entry.info.name, "path": entry.info.path, "matched": e.kill_matched}),
                format!("ACTION kill pid {} ({}) in the kernel: {outcome}: {reason}", e.pid, entry.info.name),
            );
        }
        let obs = observe::process_observation(&entry);
        for d in self.evaluate(&obs) {
            self.detection(&d, None);
        }
    }

    fn connection(&mut self, c: &Conn, blocked: bool) {
        let obs = observe::connection_observation(c, &self.table, blocked);
        for d in self.evaluate(&obs) {
            self.detection(&d, Some(blocked));
        }
    }

    fn dns(&mut self, d: &Dns) {
        for obs in observe::dns_observations(d) {
            for det in self.evaluate(&obs) {
                self.detection(&det, None);
            }
        }
    }

    /// Report a detection and act on it as asked. `blocked`: for a
    /// connection, whether the kernel refused it.
    fn detection(&mut self, d: &Detection, blocked: Option<bool>) {
        self.stats.detections += 1;
        let mut line = serde_json::to_value(d).unwrap_or(Json::Null);
        if let Json::Object(map) = &mut line {
            map.insert("type".into(), "detection".into());
        }
        let fields = &d.object.fields;
        let text = format!(
            "DETECTED {} [{}] {} {} (items: {})",
            d.ioc_name,
            d.ioc_id,
            d.object.kind,
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            d.matched_items.join(", ")
        );
        self.line(line, || text);
        match d.object.kind {
            "process" if self.kill => self.kill_from_user_space(d),
            "dns" if self.block => self.block_answers(d),
            "connection" if self.block && blocked == Some(false) => {
                self.action(
                    json!({"type": "action", "action": "block", "by": "kernel", "outcome": "refused", "ioc_id": d.ioc_id,
                           "remote": fields.get("remote"), "pid": fields.get("pid"),
                           "reason": "the kernel blocks only PortItem remoteIP/remotePort items that decide their IOC alone; this connection was already made"}),
                    format!("ACTION block {}: refused: not decidable in the kernel; the connection was already made", fields.get("remote").unwrap_or(&Json::Null)),
                );
            }
            _ => {}
        }
    }

    fn kill_from_user_space(&mut self, d: &Detection) {
        let Some(pid) = d
            .object
            .fields
            .get("pid")
            .and_then(Json::as_u64)
            .and_then(|p| u32::try_from(p).ok())
        else {
            return;
        };
        let start = self.table.get(pid).and_then(|e| e.start_boottime_ns);
        if !self.kill_attempted.insert((pid, start)) {
            return;
        }
        let name = d.object.fields.get("name").cloned().unwrap_or(Json::Null);
        let (outcome, reason) = match enforce::kill(pid, start) {
            KillOutcome::Done => ("done", "SIGKILL through a pidfd (start time checked)".to_string()),
            KillOutcome::Refused(why) => ("refused", why),
            KillOutcome::Failed(why) => ("failed", why),
        };
        self.action(
            json!({"type": "action", "action": "kill", "by": "user", "outcome": outcome, "reason": reason, "pid": pid, "name": name, "ioc_id": d.ioc_id}),
            format!("ACTION kill pid {pid} ({}) from user space: {outcome}: {reason}", name.as_str().unwrap_or("?")),
        );
    }

    /// Block the addresses a detected DNS answer gave.
    fn block_answers(&mut self, d: &Detection) {
        let Some(addresses) = d.object.fields.get("addresses").and_then(Json::as_array) else {
            return;
        };
        let host = d.object.fields.get("host").cloned().unwrap_or(Json::Null);
        for ip in addresses.iter().filter_map(Json::as_str).filter_map(|s| s.parse::<IpAddr>().ok()) {
            if !self.blocked_ips.insert(ip) {
                continue;
            }
            let (outcome, reason) = match self.kernel.block(Some(ip), None) {
                Ok(()) => ("done", format!("answered for {host}: connections to it are refused from now on")),
                Err(e) => ("failed", e.to_string()),
            };
            self.action(
                json!({"type": "action", "action": "block", "by": "kernel", "outcome": outcome, "reason": reason, "remote": ip.to_string(), "ioc_id": d.ioc_id}),
                format!("ACTION block {ip}: {outcome}: {reason}"),
            );
        }
    }

    fn action_block_done(&mut self, c: &Conn) {
        let remote = std::net::SocketAddr::new(c.remote_ip, c.remote_port).to_string();
        self.action(
            json!({"type": "action", "action": "block", "by": "kernel", "outcome": "done", "reason": "destination on the block list: connect refused",
                   "remote": remote, "protocol": c.protocol.as_str(), "pid": c.pid, "process": c.comm}),
            format!("ACTION block {remote} ({}) for pid {}: done", c.protocol.as_str(), c.pid.map_or("?".into(), |p| p.to_string())),
        );
    }

    fn action(&mut self, line: Json, text: String) {
        self.stats.actions += 1;
        self.line(line, || text);
    }

    fn ready(
        &mut self,
        compiled: &CompiledCollection,
        programs: &[ioc_scan::collect::ebpf::ProgramStatus],
        skipped: &[&str],
        kill: &KillRules,
        block: &[BlockRule],
    ) {
        let attached: Vec<&str> = programs.iter().filter(|p| p.unavailable.is_none()).map(|p| p.program).collect();
        let mut sensors: Vec<&str> = programs.iter().map(|p| p.sensor).collect();
        sensors.dedup();
        let sensors_ok: Vec<&str> = sensors.into_iter().filter(|s| self.kernel.sensor_ok(s)).collect();
        let line = json!({
            "type": "ready",
            "iocs": compiled.iocs().len(),
            "sensors": sensors_ok,
            // Sensors no IOC or option needs, left unattached.
            "not_needed": skipped,
            "programs": programs.iter().map(|p| json!({"sensor": p.sensor, "program": p.program, "attach": p.attach,
                "attached": p.unavailable.is_none(), "reason": p.unavailable})).collect::<Vec<_>>(),
            "cgroup": self.kernel.cgroup().display().to_string(),
            "processes": self.table.len(),
            "kill": self.kill.then(|| json!({
                "names": kill.names.iter().map(|p| &p.text).collect::<Vec<_>>(),
                "paths": kill.paths.iter().map(|p| &p.text).collect::<Vec<_>>(),
                "inodes": kill.inode_sources,
                "user_space_only": kill.user_space_only,
            })),
            "block": self.block.then(|| block.iter().map(|r| json!({"ip": r.ip.map(|i| i.to_string()), "port": r.port, "ioc_id": r.ioc_id})).collect::<Vec<_>>()),
        });
        let text = format!(
            "monitoring {} IOCs with {} kernel programs ({}{}); network programs on {}; {} processes already running{}{}",
            compiled.iocs().len(),
            attached.len(),
            sensors_ok.join(", "),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; not needed: {}", skipped.join(", "))
            },
            self.kernel.cgroup().display(),
            self.table.len(),
            if self.kill {
                format!(
                    "; kill: {} names, {} paths, {} inodes in the kernel",
                    kill.names.len(),
                    kill.paths.len(),
                    kill.inodes.len()
                )
            } else {
                String::new()
            },
            if self.block {
                format!("; block: {} rules", block.len())
            } else {
                String::new()
            },
        );
        self.line(line, || text);
        self.out.flush().ok();
    }

    /// Report events the kernel dropped since the last report.
    fn report_lost(&mut self) {
        let Ok(now) = self.kernel.lost() else { return };
        let delta: Vec<u64> = now.iter().zip(self.lost_seen.iter()).map(|(n, s)| n.saturating_sub(*s)).collect();
        let count: u64 = delta.iter().sum();
        if count == 0 {
            return;
        }
        self.lost_seen = now;
        self.stats.lost += count;
        let by_kind: serde_json::Map<String, Json> = delta
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (KIND_NAMES[i].to_string(), json!(n)))
            .collect();
        eprintln!(
            "ioc-scan: {count} kernel events lost (ring buffer full), {} in total: {}",
            self.stats.lost,
            Json::Object(by_kind.clone())
        );
        if self.json {
            self.write(json!({"type": "lost_events", "count": count, "total": self.stats.lost, "by_kind": by_kind}));
        }
    }

    fn summary(&mut self) {
        let s = &self.stats;
        let programs: serde_json::Map<String, Json> = self
            .kernel
            .program_stats()
            .into_iter()
            .filter(|(_, runs, _)| *runs > 0)
            .map(|(name, runs, ns)| (name.to_string(), json!({"runs": runs, "ns_per_run": ns / runs})))
            .collect();
        let line = json!({"type": "summary", "events": s.events, "detections": s.detections, "actions": s.actions,
                          "lost_events": s.lost, "decode_errors": s.decode_errors, "program_stats": programs});
        let text = format!(
            "{} events, {} detections, {} actions, {} events lost",
            s.events, s.detections, s.actions, s.lost
        );
        self.line(line, || text);
    }

    fn line(&mut self, json: Json, text: impl FnOnce() -> String) {
        if self.json {
            self.write(json);
        } else {
            let t = text();
            if writeln!(self.out, "{t}").is_err() {
                std::process::exit(2);
            }
        }
    }

    fn write(&mut self, json: Json) {
        if writeln!(self.out, "{json}").is_err() {
            // stdout closed (e.g. a pipe reader went away): nobody to report to.
            std::process::exit(2);
        }
    }
}
