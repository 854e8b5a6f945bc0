//! Live monitoring: load the sensors, evaluate the processes and sockets
//! already there (the /proc snapshot), then every exec, exit, connection
//! and DNS message as it happens, with the same evaluator as a scan (as
//! ProcessItem, PortItem, DnsEntryItem and Network/DNS observations, and as
//! eventItem records, [`event_item`](super::event_item)); act on what is
//! found when asked; report through a [`LiveSink`]; stop at the end of the
//! duration or when the stop flag is set.
//!
//! Used by `ioc-scan monitor` (which prints what the sink gets) and by task
//! runs that ask for live monitoring ([`crate::agent::EngineScanner`]).
//!
//! Enforcement only on request ([`LiveOptions`]):
//! - `kill_at_exec`: the exec program SIGKILLs, before their first
//!   instruction, processes on the kill list ([`rules::kill_rules`]).
//! - `kill_detected`: other process detections are killed from user space
//!   through a pidfd ([`terminate::terminate`]), after checking that the
//!   pid still names the matched process (start time, executable).
//! - `block`: connects and UDP sends to the block list
//!   ([`rules::block_rules`]) and to the addresses a detected DNS answer
//!   gave are refused in the cgroup connect / sendmsg programs.
//!
//! Never pid 1, kernel threads, ioc-scan itself or its ancestors: the rule
//! of [`crate::respond::protect`], for the user-space kills and, through
//! the kernel's protected list, for the kills at exec.

use super::dns_wire;
use super::event_item::{self, EventBody, EventCounter, EventObservation};
use super::events::{Conn, DecodeError, Dns, Event, Exec, Exit, KernelKill};
use super::loader::{Kernel, LoadError, Options, ProgramStatus, Sensors, Settings};
use super::observe::{self, Md5Cache, ProcessTable};
use super::reader::EventReader;
use super::rules::{BlockRule, KillRules};
use crate::collect::host::{self, CollectContext, HostRoot, Reply, Wanted};
use crate::collect::{dns, port, process};
use crate::eval::{CompiledCollection, Detection, Matcher, Observation, Outcome, Verdicts};
use crate::respond::terminate::{self, Identity};
use crate::terms::support::{self, Support};
use crate::terms::{ids, TermId};
use ioc_scan_common as k;
use serde_json::{json, Value as Json};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Events taken from the ring buffer per batch.
const BATCH: usize = 512;

/// How often the stop flag is looked at (besides every batch).
const STOP_CHECK: Duration = Duration::from_millis(50);

/// The event kinds by index (`EVENT_*`), as lost-event counts name them.
pub const KIND_NAMES: [&str; k::EVENT_KIND_COUNT as usize] = ["none", "exec", "exit", "connection", "blocked", "dns"];

/// The documents live observations answer.
pub const LIVE_DOCUMENTS: [&str; 5] = ["ProcessItem", "PortItem", "DnsEntryItem", "Network", "eventItem"];

/// How to monitor.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Kill at exec, in the kernel, the processes `kill_rules` name.
    pub kill_at_exec: bool,
    /// Kill the other processes that are detected, from user space
    /// (pidfd, start time checked). Callers with their own response (a
    /// task's terminate action) leave this off and act in their sink.
    pub kill_detected: bool,
    pub kill_rules: KillRules,
    /// Refuse connections to `block_rules` and to the addresses detected
    /// DNS answers gave.
    pub block: bool,
    pub block_rules: Vec<BlockRule>,
    /// See every DNS query with its name, also those no answer follows (a
    /// per-packet program on the cgroup's outgoing packets: see
    /// [`Sensors::dns_queries`]); else queries are seen through their answers.
    pub dns_queries: bool,
    /// The cgroup v2 directory the network programs attach to; `None`:
    /// the cgroup v2 root (every process).
    pub cgroup: Option<PathBuf>,
    /// Stop after this long; `None`: only when the stop flag is set.
    pub duration: Option<Duration>,
    /// Size of the event ring buffer in bytes (a power of two).
    pub ring_buffer_bytes: u32,
    /// How often the ring buffer is drained without a wake-up.
    pub poll_interval: Duration,
    /// How often the lost-event counters are read.
    pub lost_interval: Duration,
    /// Wait this long after `ready` before reading events (tests: make the
    /// ring buffer overflow on purpose).
    pub read_delay: Duration,
    /// Count the programs' runs and run time (benchmarks).
    pub program_stats: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            kill_at_exec: false,
            kill_detected: false,
            kill_rules: KillRules::default(),
            block: false,
            block_rules: Vec::new(),
            dns_queries: false,
            cgroup: None,
            duration: None,
            ring_buffer_bytes: Options::default().ring_buffer_bytes,
            poll_interval: Duration::from_millis(20),
            lost_interval: Duration::from_secs(1),
            read_delay: Duration::ZERO,
            program_stats: false,
        }
    }
}

/// Why live monitoring could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("no kernel program could be attached:\n  {}", .0.join("\n  "))]
    NothingAttached(Vec<String>),
    /// Asked to block and cannot: better to stop than to seem to protect.
    #[error("the cgroup connect programs could not be attached to {}: nothing would be blocked", .0.display())]
    BlockUnavailable(PathBuf),
    #[error("registering the ring buffer with the event loop: {0}")]
    Register(std::io::Error),
    #[error("reading the event ring buffer: {0}")]
    Read(std::io::Error),
    #[error("starting the tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// Everything attached, the snapshot evaluated: events are read from now on.
#[derive(Debug)]
pub struct Ready<'a> {
    pub iocs: usize,
    /// Every program, attached or not (with the reason).
    pub programs: &'a [ProgramStatus],
    /// Sensors whose programs are all attached.
    pub sensors: Vec<&'static str>,
    /// Sensors no IOC or option needs, left unattached.
    pub not_needed: Vec<&'static str>,
    /// Where the network programs are attached.
    pub cgroup: &'a Path,
    /// Processes in the snapshot.
    pub processes: usize,
    /// The kill rules, when killing.
    pub kill: Option<&'a KillRules>,
    /// The block rules, when blocking.
    pub block: Option<&'a [BlockRule]>,
}

/// Something the caller may want to tell a person; monitoring goes on.
#[derive(Debug)]
pub enum Notice<'a> {
    /// The exec program runs without struct offsets (no BTF): exec events
    /// lack parent, start time, inode and arguments.
    NoExecDetails(&'a str),
    /// A sensor some IOC needs could not be attached.
    SensorUnavailable(&'a ProgramStatus),
    /// Kill at exec asked, but the exec sensor is unavailable.
    KillWithoutExec,
    /// A kernel event that could not be decoded.
    BadEvent(&'a DecodeError),
}

/// A kill or block, done or not.
#[derive(Debug, Clone)]
pub struct LiveAction {
    /// `kill` or `block`.
    pub action: &'static str,
    /// `kernel` or `user`.
    pub by: &'static str,
    /// `done`, `refused` or `failed`.
    pub outcome: &'static str,
    pub reason: String,
    pub pid: Option<u32>,
    /// Every fact, as `ioc-scan monitor --json` prints it (`type`: `action`).
    pub line: Json,
    /// The same in one line of text.
    pub text: String,
}

/// Where a detection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The /proc snapshot at start (processes and sockets already there).
    Snapshot,
    Exec,
    Exit,
    Connection,
    Dns,
}

/// What goes with a detection.
#[derive(Debug, Clone, Copy)]
pub struct DetectionContext<'a> {
    pub origin: Origin,
    /// For a connection: whether the kernel refused it.
    pub blocked: Option<bool>,
    /// For an exec: the kernel's kill of this process at exec, if it
    /// tried (reported through [`LiveSink::action`] just before).
    pub kernel_kill: Option<&'a LiveAction>,
}

/// Events dropped by the kernel (ring buffer full) since the last report.
#[derive(Debug, Clone)]
pub struct Lost {
    pub count: u64,
    pub total: u64,
    /// Per event kind ([`KIND_NAMES`]), only kinds with losses.
    pub by_kind: Vec<(&'static str, u64)>,
}

/// What a monitoring session saw.
#[derive(Debug, Clone, Default)]
pub struct LiveSummary {
    pub events: u64,
    pub detections: u64,
    pub actions: u64,
    pub decode_errors: u64,
    pub lost: u64,
    /// (program, runs, total run time in ns), with `program_stats` on.
    pub program_stats: Vec<(&'static str, u64, u64)>,
}

/// Where monitoring reports, in order: snapshot detections, `ready`, then
/// events, detections, actions and lost events as they come, `summary`.
/// Calls come from the monitoring thread.
pub trait LiveSink {
    fn notice(&mut self, _notice: Notice<'_>) {}
    fn ready(&mut self, _ready: &Ready<'_>) {}
    /// Every kernel event, before it is evaluated.
    fn event(&mut self, _event: &Event) {}
    fn detection(&mut self, detection: &Detection, context: &DetectionContext<'_>);
    fn action(&mut self, _action: &LiveAction) {}
    fn lost(&mut self, _lost: &Lost) {}
    /// After a batch of events (a good time to flush output).
    fn batch_done(&mut self) {}
    /// At the end, also when reading failed.
    fn summary(&mut self, _summary: &LiveSummary) {}
}

/// The terms only live observations answer (a scan reports them as
/// "live monitor only": `collect::coverage`).
pub fn live_only_terms() -> impl Iterator<Item = TermId> {
    [ids::PortItem_CreationTime]
        .into_iter()
        .chain(observe::NETWORK_TERMS.iter().copied())
        .chain(event_item::terms())
}

/// Terms live observations answer are evaluated (the process, port and DNS
/// collectors' terms and [`live_only_terms`]), whatever the scan-wide
/// support list says.
pub fn live_support(id: TermId) -> Support {
    if process::TERMS.contains(&id)
        || port::TERMS.contains(&id)
        || dns::TERMS.contains(&id)
        || live_only_terms().any(|t| t == id)
    {
        Support::Supported
    } else {
        support::status(id)
    }
}

/// The sensors the IOCs and options need.
fn wanted_sensors(compiled: &CompiledCollection, options: &LiveOptions) -> Sensors {
    let events = compiled.terms_used("eventItem");
    let uses = |terms: &[TermId]| terms.iter().any(|t| events.contains(*t));
    // The header terms (eventType, timestamp...) apply to every kind of event.
    let any_event = uses(event_item::COMMON_TERMS);
    let network_events = any_event || uses(event_item::NETWORK_TERMS);
    let lookups = any_event || uses(event_item::DNS_LOOKUP_TERMS);
    let ports = compiled.uses_document("PortItem") || network_events;
    let names = compiled.uses_document("DnsEntryItem") || compiled.uses_document("Network") || lookups;
    Sensors {
        tcp: ports,
        udp: ports || names || options.block,
        dns: names,
        dns_queries: names && options.dns_queries,
    }
}

/// Whether live monitoring can find anything for these IOCs.
pub fn has_live_indicators(compiled: &CompiledCollection) -> bool {
    LIVE_DOCUMENTS.iter().any(|d| compiled.uses_document(d))
}

/// [`monitor`] on a runtime of its own, on this thread. Must not be called
/// from inside a tokio runtime.
pub fn monitor_blocking(
    compiled: &CompiledCollection,
    options: &LiveOptions,
    stop: &AtomicBool,
    sink: &mut dyn LiveSink,
) -> Result<LiveSummary, LiveError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LiveError::Runtime)?;
    runtime.block_on(monitor(compiled, options, stop, sink))
}

/// Monitor until `options.duration` has passed or `stop` is set. The
/// collection should be compiled with [`live_support`]. Must run inside a
/// tokio runtime with I/O and time enabled.
pub async fn monitor(
    compiled: &CompiledCollection,
    options: &LiveOptions,
    stop: &AtomicBool,
    sink: &mut dyn LiveSink,
) -> Result<LiveSummary, LiveError> {
    let mut kernel = Kernel::open(&Options {
        ring_buffer_bytes: options.ring_buffer_bytes,
        cgroup: options.cgroup.clone(),
    })?;
    if let Err(why) = &kernel.offsets {
        sink.notice(Notice::NoExecDetails(why));
    }
    kernel.configure(&Settings {
        kill: options.kill_at_exec,
        block: options.block,
        kill_rules: options.kill_rules.clone(),
        block_rules: options.block_rules.clone(),
    })?;
    // Only the sensors the IOCs and options need.
    let wanted = wanted_sensors(compiled, options);
    let programs = kernel.attach(&wanted).to_vec();
    if programs.iter().all(|p| p.unavailable.is_some()) {
        return Err(LiveError::NothingAttached(
            programs
                .iter()
                .map(|p| format!("{}: {}", p.program, p.unavailable.as_deref().unwrap_or("")))
                .collect(),
        ));
    }
    for p in programs.iter().filter(|p| p.unavailable.is_some()) {
        sink.notice(Notice::SensorUnavailable(p));
    }
    if options.kill_at_exec && !kernel.sensor_ok("exec") {
        sink.notice(Notice::KillWithoutExec);
    }
    let not_needed: Vec<&'static str> = [("tcp", wanted.tcp), ("udp", wanted.udp), ("dns", wanted.dns)]
        .into_iter()
        .filter(|(_, w)| !w)
        .map(|(s, _)| s)
        .collect();
    if options.block && !kernel.sensor_ok("udp") {
        return Err(LiveError::BlockUnavailable(kernel.cgroup().to_path_buf()));
    }
    let reader = EventReader::new(kernel.take_events()?).map_err(LiveError::Register)?;
    let _stats_fd = if options.program_stats {
        Some(kernel.enable_stats()?)
    } else {
        None
    };

    let root = HostRoot::system();
    let mut m = Monitor {
        options,
        sink,
        matcher: compiled.matcher(),
        verdicts: Verdicts::new(compiled),
        table: ProcessTable::snapshot(&root),
        events: compiled.uses_document("eventItem").then(|| {
            let session = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            EventCounter::new(format!("{session:x}"))
        }),
        md5: Md5Cache::default(),
        kernel,
        stats: LiveSummary::default(),
        lost_seen: [0; k::EVENT_KIND_COUNT as usize],
        kill_attempted: HashSet::new(),
        exec_time_ns: None,
        blocked_ips: HashSet::new(),
        tcp_owners: observe::TcpOwners::default(),
    };

    // Processes and sockets that were there before the monitor.
    m.evaluate_snapshot(compiled, &root);
    m.ready(compiled, &programs, not_needed);

    if !options.read_delay.is_zero() {
        tokio::time::sleep(options.read_delay).await;
    }
    let result = m.run(reader, stop).await;
    m.report_lost();
    m.stats.program_stats = m
        .kernel
        .program_stats()
        .into_iter()
        .filter(|(_, runs, _)| *runs > 0)
        .collect();
    m.sink.summary(&m.stats);
    result?;
    Ok(m.stats)
}

struct Monitor<'c, 'o, 's> {
    options: &'o LiveOptions,
    sink: &'s mut dyn LiveSink,
    matcher: Matcher<'c>,
    verdicts: Verdicts,
    table: ProcessTable,
    /// Numbers eventItem records; None when no IOC uses eventItem.
    events: Option<EventCounter>,
    md5: Md5Cache,
    kernel: Kernel,
    stats: LiveSummary,
    lost_seen: [u64; k::EVENT_KIND_COUNT as usize],
    /// (pid, start) already sent a kill (or refused one): at most one action each.
    kill_attempted: HashSet<(u32, Option<u64>)>,
    /// When the exec being handled happened (ns since boot): a detection
    /// without a start time is killed only if the process provably held
    /// the pid then.
    exec_time_ns: Option<u64>,
    blocked_ips: HashSet<IpAddr>,
    tcp_owners: observe::TcpOwners,
}

impl Monitor<'_, '_, '_> {
    async fn run(&mut self, mut reader: EventReader, stop: &AtomicBool) -> Result<(), LiveError> {
        let deadline = self.options.duration;
        let sleep = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(u64::from(u32::MAX))));
        tokio::pin!(sleep);
        let mut lost_timer = tokio::time::interval(self.options.lost_interval.max(Duration::from_millis(10)));
        let mut poll_timer = tokio::time::interval(self.options.poll_interval.max(Duration::from_millis(1)));
        poll_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop_timer = tokio::time::interval(STOP_CHECK);
        stop_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(BATCH);
        while !stop.load(Ordering::SeqCst) {
            tokio::select! {
                read = reader.read(&mut batch, BATCH) => {
                    read.map_err(LiveError::Read)?;
                    self.handle_batch(&mut batch);
                }
                _ = poll_timer.tick() => {
                    while reader.drain(&mut batch, BATCH) > 0 {
                        self.handle_batch(&mut batch);
                    }
                }
                _ = lost_timer.tick() => {
                    self.report_lost();
                    self.sink.batch_done();
                }
                _ = stop_timer.tick() => {}
                _ = &mut sleep, if deadline.is_some() => break,
            }
        }
        // What is still in the ring buffer when asked to stop.
        while reader.drain(&mut batch, BATCH) > 0 {
            self.handle_batch(&mut batch);
        }
        Ok(())
    }

    fn handle_batch(&mut self, batch: &mut Vec<Result<Event, DecodeError>>) {
        for record in batch.drain(..) {
            self.stats.events += 1;
            match record {
                Ok(event) => self.handle(event),
                Err(err) => {
                    self.stats.decode_errors += 1;
                    self.sink.notice(Notice::BadEvent(&err));
                }
            }
        }
        self.sink.batch_done();
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
            self.detection(&d, Origin::Snapshot, None, None);
        }
    }

    fn handle(&mut self, event: Event) {
        self.sink.event(&event);
        match event {
            Event::Exec(e) => self.exec(&e),
            Event::Exit(x) => self.exit(&x),
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
        let kernel_kill = e.kernel_kill.map(|kill| {
            let (outcome, reason) = match kill {
                KernelKill::Killed => (
                    "done",
                    format!("SIGKILL at exec ({} on the kill list)", e.kill_matched.join(", ")),
                ),
                KernelKill::Refused => (
                    "refused",
                    "protected process: pid 1, ioc-scan itself or one of its ancestors, or a kernel thread".to_string(),
                ),
                KernelKill::Failed => ("failed", "bpf_send_signal failed".to_string()),
            };
            self.kill_attempted.insert((e.pid, entry.start_boottime_ns));
            let action = LiveAction {
                action: "kill",
                by: "kernel",
                outcome,
                pid: Some(e.pid),
                line: json!({"type": "action", "action": "kill", "by": "kernel", "outcome": outcome, "reason": reason,
                       "pid": e.pid, "name": entry.info.name, "path": entry.info.path, "matched": e.kill_matched}),
                text: format!(
                    "ACTION kill pid {} ({}) in the kernel: {outcome}: {reason}",
                    e.pid, entry.info.name
                ),
                reason,
            };
            self.action(&action);
            action
        });
        self.exec_time_ns = Some(e.time_ns);
        let obs = observe::process_observation(&entry);
        for d in self.evaluate(&obs) {
            self.detection(&d, Origin::Exec, None, kernel_kill.as_ref());
        }
        if self.events.is_some() {
            let body = EventBody::Process(self.table.process_event(&entry, "start"));
            let time = self.table.epoch(e.time_ns);
            self.event_record(time, body, Origin::Exec, None, kernel_kill.as_ref());
        }
        self.exec_time_ns = None;
    }

    fn exit(&mut self, x: &Exit) {
        let Some(entry) = self.table.exit(x.pid) else { return };
        if self.events.is_some() {
            let body = EventBody::Process(self.table.process_event(&entry, "end"));
            self.event_record(self.table.epoch(x.time_ns), body, Origin::Exit, None, None);
        }
    }

    fn connection(&mut self, c: &Conn, blocked: bool) {
        let obs = observe::connection_observation(c, &self.table, blocked);
        for d in self.evaluate(&obs) {
            self.detection(&d, Origin::Connection, Some(blocked), None);
        }
        if self.events.is_some() {
            if let Some(n) = observe::network_event(c, &self.table, blocked) {
                let time = self.table.epoch(c.time_ns);
                self.event_record(time, EventBody::Network(n), Origin::Connection, Some(blocked), None);
            }
        }
    }

    fn dns(&mut self, d: &Dns) {
        // A message that does not parse gives nothing to evaluate.
        let Ok(msg) = dns_wire::parse(&d.payload) else { return };
        for obs in observe::dns_observations(d, &msg) {
            for det in self.evaluate(&obs) {
                self.detection(&det, Origin::Dns, None, None);
            }
        }
        for obs in observe::network_dns(d, &msg) {
            for det in self.evaluate(&obs) {
                self.detection(&det, Origin::Dns, None, None);
            }
        }
        if self.events.is_some() {
            let time = self.table.epoch(d.time_ns);
            for lookup in observe::dns_lookups(d, &msg, &self.table) {
                self.event_record(time, EventBody::DnsLookup(lookup), Origin::Dns, None, None);
            }
        }
    }

    /// Number an eventItem record and evaluate it; the executable's MD5 is
    /// computed only when an item asks for it.
    fn event_record(
        &mut self,
        timestamp: Option<i64>,
        body: EventBody,
        origin: Origin,
        blocked: Option<bool>,
        kernel_kill: Option<&LiveAction>,
    ) {
        let Some(counter) = self.events.as_mut() else { return };
        let mut record: EventObservation = counter.record(timestamp, body);
        let mut detections = Vec::new();
        for _ in 0..2 {
            match self.matcher.evaluate(&record) {
                Outcome::Hits(hits) => detections = self.verdicts.add_all(hits),
                Outcome::NoMatch => {}
                Outcome::NeedTerms(_) if record.needs_md5() => {
                    if let EventBody::Process(p) = &mut record.body {
                        let pid = (p.event_type == "start").then_some(p.pid);
                        p.md5 = self.md5.executable(self.table.root(), pid, p.path.as_deref());
                        p.md5_unavailable = p.md5.is_none();
                    }
                    continue;
                }
                Outcome::NeedTerms(_) => {}
            }
            break;
        }
        for d in detections {
            self.detection(&d, origin, blocked, kernel_kill);
        }
    }

    /// Report a detection and act on it as asked. `blocked`: for a
    /// connection, whether the kernel refused it.
    fn detection(&mut self, d: &Detection, origin: Origin, blocked: Option<bool>, kernel_kill: Option<&LiveAction>) {
        self.stats.detections += 1;
        self.sink.detection(
            d,
            &DetectionContext {
                origin,
                blocked,
                kernel_kill,
            },
        );
        let fields = &d.object.fields;
        match event_item::acts_as(&d.object) {
            "process" if self.options.kill_detected => self.kill_from_user_space(d),
            "dns" if self.options.block => self.block_answers(d),
            "connection" if self.options.block && blocked == Some(false) => {
                let reason = "the kernel blocks only remoteIP/remotePort items (PortItem or ipv4NetworkEvent) that decide their IOC alone; this connection was already made";
                let action = LiveAction {
                    action: "block",
                    by: "kernel",
                    outcome: "refused",
                    reason: reason.to_string(),
                    pid: fields
                        .get("pid")
                        .and_then(Json::as_u64)
                        .and_then(|p| u32::try_from(p).ok()),
                    line: json!({"type": "action", "action": "block", "by": "kernel", "outcome": "refused", "ioc_id": d.ioc_id,
                           "remote": fields.get("remote"), "pid": fields.get("pid"), "reason": reason}),
                    text: format!(
                        "ACTION block {}: refused: not decidable in the kernel; the connection was already made",
                        fields.get("remote").unwrap_or(&Json::Null)
                    ),
                };
                self.action(&action);
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
        let entry = self.table.get(pid);
        let start = entry.and_then(|e| e.start_boottime_ns);
        if !self.kill_attempted.insert((pid, start)) {
            return;
        }
        let name = d.object.fields.get("name").cloned().unwrap_or(Json::Null);
        // The matched process: its start (and executable) when known, else
        // the time it was seen at the pid.
        let identity = match (start, self.exec_time_ns) {
            (Some(boottime_ns), _) => Some(Identity::Started {
                boottime_ns,
                exe: entry.and_then(|e| e.exe),
            }),
            (None, Some(at)) => Some(Identity::HeldPidAt(at)),
            (None, None) => None,
        };
        let (outcome, reason) = match identity {
            None => (
                "refused",
                "the detection has neither a start time nor the time of an exec: the process cannot be identified".to_string(),
            ),
            Some(identity) => {
                let options = terminate::Options {
                    grace: None,
                    // The exit is seen as an event; the monitor does not wait.
                    wait: Duration::ZERO,
                };
                match terminate::terminate(pid, identity, &options).0 {
                    crate::respond::Outcome::Done => (
                        "done",
                        "SIGKILL through a pidfd (start time and executable checked)".to_string(),
                    ),
                    crate::respond::Outcome::Refused(why) => ("refused", why),
                    crate::respond::Outcome::Failed(why) => ("failed", why),
                }
            }
        };
        let action = LiveAction {
            action: "kill",
            by: "user",
            outcome,
            pid: Some(pid),
            line: json!({"type": "action", "action": "kill", "by": "user", "outcome": outcome, "reason": reason, "pid": pid, "name": name, "ioc_id": d.ioc_id}),
            text: format!(
                "ACTION kill pid {pid} ({}) from user space: {outcome}: {reason}",
                name.as_str().unwrap_or("?")
            ),
            reason,
        };
        self.action(&action);
    }

    /// Block the addresses a detected DNS answer gave.
    fn block_answers(&mut self, d: &Detection) {
        let Some(addresses) = d.object.fields.get("addresses").and_then(Json::as_array) else {
            return;
        };
        let host = d.object.fields.get("host").cloned().unwrap_or(Json::Null);
        for ip in addresses
            .iter()
            .filter_map(Json::as_str)
            .filter_map(|s| s.parse::<IpAddr>().ok())
        {
            if !self.blocked_ips.insert(ip) {
                continue;
            }
            let (outcome, reason) = match self.kernel.block(Some(ip), None) {
                Ok(()) => (
                    "done",
                    format!("answered for {host}: connections to it are refused from now on"),
                ),
                Err(e) => ("failed", e.to_string()),
            };
            let action = LiveAction {
                action: "block",
                by: "kernel",
                outcome,
                pid: None,
                line: json!({"type": "action", "action": "block", "by": "kernel", "outcome": outcome, "reason": reason, "remote": ip.to_string(), "ioc_id": d.ioc_id}),
                text: format!("ACTION block {ip}: {outcome}: {reason}"),
                reason,
            };
            self.action(&action);
        }
    }

    fn action_block_done(&mut self, c: &Conn) {
        let remote = std::net::SocketAddr::new(c.remote_ip, c.remote_port).to_string();
        let reason = "destination on the block list: connect refused";
        let action = LiveAction {
            action: "block",
            by: "kernel",
            outcome: "done",
            reason: reason.to_string(),
            pid: c.pid,
            line: json!({"type": "action", "action": "block", "by": "kernel", "outcome": "done", "reason": reason,
                   "remote": remote, "protocol": c.protocol.as_str(), "pid": c.pid, "process": c.comm}),
            text: format!(
                "ACTION block {remote} ({}) for pid {}: done",
                c.protocol.as_str(),
                c.pid.map_or("?".into(), |p| p.to_string())
            ),
        };
        self.action(&action);
    }

    fn action(&mut self, action: &LiveAction) {
        self.stats.actions += 1;
        self.sink.action(action);
    }

    fn ready(&mut self, compiled: &CompiledCollection, programs: &[ProgramStatus], not_needed: Vec<&'static str>) {
        let mut sensors: Vec<&'static str> = programs.iter().map(|p| p.sensor).collect();
        sensors.dedup();
        let sensors: Vec<&'static str> = sensors.into_iter().filter(|s| self.kernel.sensor_ok(s)).collect();
        let options = self.options;
        let ready = Ready {
            iocs: compiled.iocs().len(),
            programs,
            sensors,
            not_needed,
            cgroup: self.kernel.cgroup(),
            processes: self.table.len(),
            kill: (options.kill_at_exec || options.kill_detected).then_some(&options.kill_rules),
            block: options.block.then_some(options.block_rules.as_slice()),
        };
        self.sink.ready(&ready);
    }

    /// Report events the kernel dropped since the last report.
    fn report_lost(&mut self) {
        let Ok(now) = self.kernel.lost() else { return };
        let delta: Vec<u64> = now
            .iter()
            .zip(self.lost_seen.iter())
            .map(|(n, s)| n.saturating_sub(*s))
            .collect();
        let count: u64 = delta.iter().sum();
        if count == 0 {
            return;
        }
        self.lost_seen = now;
        self.stats.lost += count;
        let by_kind = delta
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (KIND_NAMES[i], *n))
            .collect();
        self.sink.lost(&Lost {
            count,
            total: self.stats.lost,
            by_kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(items: &[(&str, &str)]) -> CompiledCollection {
        let mut xml = String::from(
            r#"<OpenIOC id="t" xmlns="http://openioc.org/schemas/OpenIOC_1.1"><criteria><Indicator operator="OR" id="r">"#,
        );
        for (i, (term, value)) in items.iter().enumerate() {
            let doc = term.split('/').next().unwrap();
            xml.push_str(&format!(
                r#"<IndicatorItem id="i{i}" condition="is"><Context document="{doc}" search="{term}" type="mir"/><Content type="string">{value}</Content></IndicatorItem>"#
            ));
        }
        xml.push_str("</Indicator></criteria></OpenIOC>");
        let ioc = crate::openioc::parse_bytes("t.ioc", xml.as_bytes()).unwrap().ioc;
        CompiledCollection::compile_with_support(&[ioc], live_support).0
    }

    fn sensors(s: &Sensors) -> (bool, bool, bool) {
        assert!(!s.dns_queries, "only when asked");
        (s.tcp, s.udp, s.dns)
    }

    #[test]
    fn event_items_are_live_indicators_and_attach_only_their_sensors() {
        let options = LiveOptions::default();
        let c = compiled(&[("eventItem/processEvent/process", "evil")]);
        assert!(has_live_indicators(&c));
        assert_eq!(sensors(&wanted_sensors(&c, &options)), (false, false, false));
        let c = compiled(&[("eventItem/ipv4NetworkEvent/remotePort", "4444")]);
        assert_eq!(sensors(&wanted_sensors(&c, &options)), (true, true, false));
        let c = compiled(&[("eventItem/dnsLookupEvent/hostname", "evil.example")]);
        assert_eq!(sensors(&wanted_sensors(&c, &options)), (false, true, true));
        let c = compiled(&[("Network/DNS", "evil.example")]);
        assert_eq!(sensors(&wanted_sensors(&c, &options)), (false, true, true));
        // A header term applies to every kind of event.
        let c = compiled(&[("eventItem/eventType", "ipv4NetworkEvent")]);
        assert_eq!(sensors(&wanted_sensors(&c, &options)), (true, true, true));
        // A file-only collection needs nothing live.
        let c = compiled(&[("FileItem/FileName", "x")]);
        assert!(!has_live_indicators(&c));
    }
}
