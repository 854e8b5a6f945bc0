//! `ioc-scan monitor --ioc PATH... [--kill] [--block] [--dns-queries] [--json] [--cgroup PATH] [--duration DURATION]`:
//! watch the host through the kernel sensors (exec, exit, TCP/UDP
//! connections, DNS) and evaluate ProcessItem, PortItem, DnsEntryItem,
//! Network/DNS and eventItem indicators on every event with the same
//! evaluator as `scan`.
//!
//! Output (JSON lines with `--json`, text otherwise): `ready` once every
//! program is attached (and the /proc snapshot is evaluated), one
//! `detection` per IOC and object, an `action` per kill or block
//! (`outcome`: `done`, `refused`, `failed`, with the `reason`),
//! `lost_events` whenever the ring buffer overflowed, a `summary` at the end.
//!
//! Enforcement only on request:
//! - `--kill`: processes matching a ProcessItem `name`/`path` (or
//!   eventItem/processEvent `process`/`processPath`) `is` item that
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
use ioc_scan::collect::ebpf::events::Event;
use ioc_scan::collect::ebpf::live::{
    self, DetectionContext, LiveAction, LiveError, LiveOptions, LiveSink, LiveSummary, Lost, Notice, Ready,
};
use ioc_scan::collect::ebpf::rules::{self, KillRules};
use ioc_scan::eval::{CompiledCollection, Detection, Severity};
use ioc_scan::openioc;
use serde_json::{json, Value as Json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// See every DNS query with its name, also those no answer follows (by
    /// default a query is seen through its answer). Costs a cgroup skb
    /// program run on every packet the monitored cgroup sends.
    #[arg(long)]
    pub dns_queries: bool,
    /// Stop after this long: 90 (seconds), 90s, 10m, 1h30m; 0 stops once
    /// ready (default: until SIGINT or SIGTERM).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<u64>,
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

fn parse_duration(s: &str) -> Result<u64, String> {
    ioc_scan::duration::parse(s).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let duration = args.duration.map(Duration::from_secs);
    let inodes = args
        .kill_inode
        .iter()
        .map(|s| parse_dev_ino(s))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let collection = openioc::load_files(&args.ioc);
    for err in &collection.errors {
        eprintln!("ioc-scan: {err}");
    }
    for d in collection
        .diagnostics
        .iter()
        .filter(|d| d.severity == openioc::Severity::Error)
    {
        eprintln!("ioc-scan: {d}");
    }
    if collection.iocs.is_empty() {
        bail!(
            "no IOC loaded from {}",
            args.ioc
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (compiled, diagnostics) = CompiledCollection::compile_with_support(&collection.iocs, live::live_support);
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
    let options = LiveOptions {
        kill_at_exec: args.kill,
        kill_detected: args.kill,
        kill_rules,
        block: args.block,
        block_rules,
        dns_queries: args.dns_queries,
        cgroup: args.cgroup.clone(),
        duration,
        ring_buffer_bytes: args.ring_buffer_bytes,
        poll_interval: Duration::from_millis(args.poll_ms),
        lost_interval: Duration::from_millis(args.lost_interval_ms),
        read_delay: Duration::from_millis(args.read_delay_ms),
        program_stats: args.program_stats,
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(monitor(&args, &compiled, &options))
}

/// `DEV:INO` in decimal, as `stat -c %d:%i` prints them.
fn parse_dev_ino(s: &str) -> anyhow::Result<(u64, u64)> {
    let (dev, ino) = s
        .split_once(':')
        .with_context(|| format!("--kill-inode {s:?}: expected DEV:INO"))?;
    Ok((
        dev.trim()
            .parse()
            .with_context(|| format!("--kill-inode {s:?}: bad device number"))?,
        ino.trim()
            .parse()
            .with_context(|| format!("--kill-inode {s:?}: bad inode number"))?,
    ))
}

/// Runs the monitor, SIGINT and SIGTERM setting its stop flag. The handlers
/// are installed first: a signal that comes while loading still ends the
/// monitor cleanly, programs detached.
async fn monitor(args: &Args, compiled: &CompiledCollection, options: &LiveOptions) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let stop = AtomicBool::new(false);
    let mut printer = Printer {
        json: args.json,
        print_events: args.print_events,
        out: std::io::BufWriter::new(std::io::stdout()),
    };
    let result = {
        let run = live::monitor(compiled, options, &stop, &mut printer);
        tokio::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => break result,
                _ = sigint.recv() => stop.store(true, Ordering::SeqCst),
                _ = sigterm.recv() => stop.store(true, Ordering::SeqCst),
            }
        }
    };
    printer.out.flush().ok();
    match result {
        Ok(summary) => Ok(if summary.detections > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }),
        Err(LiveError::BlockUnavailable(cgroup)) => bail!(
            "--block: the cgroup connect programs could not be attached to {}: nothing would be blocked",
            cgroup.display()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Prints what the monitor reports: JSON lines with `--json`, text otherwise.
struct Printer {
    json: bool,
    print_events: bool,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl LiveSink for Printer {
    fn notice(&mut self, notice: Notice<'_>) {
        match notice {
            Notice::NoExecDetails(why) => {
                eprintln!("ioc-scan: exec events lack parent, start time, inode and arguments: {why}")
            }
            Notice::SensorUnavailable(p) => eprintln!(
                "ioc-scan: sensor {} unavailable ({} on {}): {}",
                p.sensor,
                p.program,
                p.attach,
                p.unavailable.as_deref().unwrap_or("")
            ),
            Notice::KillWithoutExec => eprintln!("ioc-scan: --kill: the exec sensor is unavailable, so no kill happens at exec; snapshot processes are still killed through pidfds"),
            Notice::BadEvent(err) => eprintln!("ioc-scan: bad kernel event: {err}"),
        }
    }

    fn ready(&mut self, r: &Ready<'_>) {
        let attached = r.programs.iter().filter(|p| p.unavailable.is_none()).count();
        let line = json!({
            "type": "ready",
            "iocs": r.iocs,
            "sensors": r.sensors,
            // Sensors no IOC or option needs, left unattached.
            "not_needed": r.not_needed,
            "programs": r.programs.iter().map(|p| json!({"sensor": p.sensor, "program": p.program, "attach": p.attach,
                "attached": p.unavailable.is_none(), "reason": p.unavailable})).collect::<Vec<_>>(),
            "cgroup": r.cgroup.display().to_string(),
            "processes": r.processes,
            "kill": r.kill.map(|kill| json!({
                "names": kill.names.iter().map(|p| &p.text).collect::<Vec<_>>(),
                "paths": kill.paths.iter().map(|p| &p.text).collect::<Vec<_>>(),
                "inodes": kill.inode_sources,
                "user_space_only": kill.user_space_only,
                // IOC paths and files left off the inode list, and why
                // (a symlink, a FIFO, a hard link, over the hash budget).
                "inodes_refused": kill.inodes_refused,
            })),
            "block": r.block.map(|block| block.iter().map(|r| json!({"ip": r.ip.map(|i| i.to_string()), "port": r.port, "ioc_id": r.ioc_id})).collect::<Vec<_>>()),
        });
        let text = || {
            // The sensors with a fallback program say which one runs.
            let sensors: Vec<String> = r
                .sensors
                .iter()
                .map(|s| {
                    let used: Vec<&str> = r
                        .programs
                        .iter()
                        .filter(|p| p.sensor == *s && p.unavailable.is_none() && matches!(*s, "tcp" | "dns"))
                        .map(|p| p.program)
                        .collect();
                    if used.is_empty() {
                        s.to_string()
                    } else {
                        format!("{s}: {}", used.join("+"))
                    }
                })
                .collect();
            format!(
                "monitoring {} IOCs with {} kernel programs ({}{}); network programs on {}; {} processes already running{}{}",
                r.iocs,
                attached,
                sensors.join(", "),
                if r.not_needed.is_empty() {
                    String::new()
                } else {
                    format!("; not needed: {}", r.not_needed.join(", "))
                },
                r.cgroup.display(),
                r.processes,
                match r.kill {
                    Some(kill) => format!(
                        "; kill: {} names, {} paths, {} inodes in the kernel{}",
                        kill.names.len(),
                        kill.paths.len(),
                        kill.inodes.len(),
                        if kill.inodes_refused.is_empty() {
                            String::new()
                        } else {
                            format!(" ({} refused: {})", kill.inodes_refused.len(), kill.inodes_refused.join("; "))
                        }
                    ),
                    None => String::new(),
                },
                match r.block {
                    Some(block) => format!("; block: {} rules", block.len()),
                    None => String::new(),
                },
            )
        };
        self.line(line, text);
        self.out.flush().ok();
    }

    fn event(&mut self, event: &Event) {
        if self.print_events {
            self.line(json!({"type": "event", "event": event}), || format!("event {event:?}"));
        }
    }

    fn detection(&mut self, d: &Detection, _context: &DetectionContext<'_>) {
        let mut line = serde_json::to_value(d).unwrap_or(Json::Null);
        if let Json::Object(map) = &mut line {
            map.insert("type".into(), "detection".into());
        }
        let text = || {
            format!(
                "DETECTED {} [{}] {} {} (items: {})",
                d.ioc_name,
                d.ioc_id,
                d.object.kind,
                d.object
                    .fields
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                d.matched_items.join(", ")
            )
        };
        self.line(line, text);
    }

    fn action(&mut self, action: &LiveAction) {
        self.line(action.line.clone(), || action.text.clone());
    }

    fn lost(&mut self, lost: &Lost) {
        let by_kind: serde_json::Map<String, Json> = lost
            .by_kind
            .iter()
            .map(|(kind, n)| (kind.to_string(), json!(n)))
            .collect();
        eprintln!(
            "ioc-scan: {} kernel events lost (ring buffer full), {} in total: {}",
            lost.count,
            lost.total,
            Json::Object(by_kind.clone())
        );
        if self.json {
            self.write(json!({"type": "lost_events", "count": lost.count, "total": lost.total, "by_kind": by_kind}));
        }
    }

    fn batch_done(&mut self) {
        self.out.flush().ok();
    }

    fn summary(&mut self, s: &LiveSummary) {
        let programs: serde_json::Map<String, Json> = s
            .program_stats
            .iter()
            .map(|(name, runs, ns)| (name.to_string(), json!({"runs": runs, "ns_per_run": ns / runs.max(&1)})))
            .collect();
        let line = json!({"type": "summary", "events": s.events, "detections": s.detections, "actions": s.actions,
                          "lost_events": s.lost, "decode_errors": s.decode_errors, "program_stats": programs});
        let text = || {
            format!(
                "{} events, {} detections, {} actions, {} events lost",
                s.events, s.detections, s.actions, s.lost
            )
        };
        self.line(line, text);
        self.out.flush().ok();
    }
}

impl Printer {
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
