//! `ioc-scan agent [--once] [--device-name NAME]`: run this device's
//! scheduled tasks until SIGINT/SIGTERM, pruning old results every hour.
//! With `--console URL`: the managed agent (jobs from the console, results
//! to it; HTTPS only unless `--insecure-http`). `ioc-scan agent status`:
//! the managed agent's queue and last error. Progress lines go to stderr.

use super::task::{catch_stop_signals, engine, DbArgs, STOP};
use super::validate::printable;
use anyhow::Context as _;
use ioc_scan::agent::console_client::Transport;
use ioc_scan::agent::managed::{self, ManagedConfig, ManagedEvents};
use ioc_scan::agent::queue::{AgentState, AgentStatus, IdentityV1};
use ioc_scan::agent::{self, Agent, AgentConfig, AgentEvents};
use ioc_scan::console::protocol::{CommandReport, DeviceCommand, Job, ResultAck, ResultUpload};
use ioc_scan::store::{DetectionRecordV1, RunError, RunRecordV1, RunTrigger, TaskRecordV1};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// Run the tasks due now (and the agent-start ones), then exit.
    #[arg(long)]
    pub once: bool,
    /// Device name recorded with each run (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
    /// Seconds between two looks at the schedules (at most).
    #[arg(long, default_value_t = 30, value_name = "SECS", hide = true)]
    pub tick: u64,
    /// Managed mode: take jobs from this console (https://host:port) and upload results there.
    #[arg(long, value_name = "URL")]
    pub console: Option<String>,
    /// Enrollment token for the first start with --console (then the device's own token is kept).
    #[arg(long, value_name = "TOKEN", requires = "console")]
    pub token: Option<String>,
    /// PEM certificate to trust for the console (e.g. a self-signed one).
    #[arg(long, value_name = "PEM", requires = "console")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Accept an http:// console: the device's token then travels in clear.
    /// Without it, an http:// console is refused before anything is sent.
    #[arg(long, requires = "console")]
    pub insecure_http: bool,
    /// Longest wait of one poll for jobs, in seconds (managed mode).
    #[arg(long, default_value_t = 20, value_name = "SECS", hide = true)]
    pub poll_wait: u64,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(clap::Subcommand)]
pub enum AgentCommand {
    /// The managed agent's state: its console, the jobs waiting, the results
    /// waiting to be delivered (each with the console's last refusal), the last error.
    Status(StatusArgs),
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

struct Log;

impl AgentEvents for Log {
    fn run_started(&mut self, task: &TaskRecordV1, trigger: RunTrigger) {
        eprintln!(
            "ioc-scan agent: running task {} {} ({trigger:?})",
            task.id,
            printable(&task.name)
        );
    }
    fn run_finished(&mut self, run: &Result<RunRecordV1, RunError>) {
        match run {
            Ok(run) => eprintln!(
                "ioc-scan agent: run {}: {} ({})",
                run.id,
                run.status,
                super::results::summary(run)
            ),
            Err(e) => eprintln!("ioc-scan agent: run failed: {e}"),
        }
    }
    fn pruned(&mut self, runs: u64) {
        eprintln!(
            "ioc-scan agent: pruned {runs} old result{}",
            if runs == 1 { "" } else { "s" }
        );
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(AgentCommand::Status(status)) = &args.command {
        return run_status(status);
    }
    if let Some(url) = &args.console {
        return run_managed_agent(&args, url);
    }
    catch_stop_signals()?;
    let store = args.db.open(false)?;
    let config = AgentConfig {
        device: args
            .device_name
            .clone()
            .unwrap_or_else(agent::default_device_name),
        tick: Duration::from_secs(args.tick.max(1)),
        retention: args.db.retention()?,
        ..Default::default()
    };
    eprintln!(
        "ioc-scan agent: device {}, database {}",
        printable(&config.device),
        store.path().display()
    );
    let scanner = engine();
    let agent = Agent {
        store: &store,
        scanner: &scanner,
        config,
        tz: chrono::Local,
    };
    agent.run(args.once, &STOP, &mut Log)?;
    eprintln!("ioc-scan agent: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The managed agent's state file: next to the database.
fn state_path(db: &DbArgs) -> anyhow::Result<PathBuf> {
    let db_path = db.path()?;
    Ok(db_path
        .parent()
        .map(|d| d.join("console-agent.redb"))
        .unwrap_or_else(|| "console-agent.redb".into()))
}

struct ManagedLog;

impl ManagedEvents for ManagedLog {
    fn enrolled(&mut self, id: &IdentityV1) {
        eprintln!("ioc-scan agent: enrolled as device {} {}", id.device_id, printable(&id.device_name));
    }
    fn jobs_received(&mut self, new: usize) {
        eprintln!("ioc-scan agent: {new} new job{}", if new == 1 { "" } else { "s" });
    }
    fn run_started(&mut self, job: &Job) {
        eprintln!(
            "ioc-scan agent: running job {} (task {} {})",
            job.id,
            job.task.id,
            printable(&job.task.name)
        );
    }
    fn run_finished(&mut self, r: &ResultUpload) {
        eprintln!(
            "ioc-scan agent: job {} finished: {} ({} detections), run {} queued",
            r.job_id,
            r.status,
            r.detections.len(),
            r.run_key
        );
    }
    fn uploaded(&mut self, r: &ResultUpload, ack: &ResultAck) {
        let how = if ack.duplicate { " (already there)" } else { "" };
        eprintln!("ioc-scan agent: run {} uploaded{how}", r.run_key);
    }
    fn refused(&mut self, r: &ResultUpload, why: &str, attempts: u32) {
        eprintln!(
            "ioc-scan agent: run {} refused by the console (try {attempts}), kept queued: {}",
            r.run_key,
            printable(why)
        );
    }
    fn truncated(&mut self, r: &ResultUpload, left_out: u64) {
        eprintln!(
            "ioc-scan agent: run {} too large for the console: {left_out} detections left out (counted)",
            r.run_key
        );
    }
    fn actions_recorded(&mut self, job: &Job, d: &DetectionRecordV1) {
        let actions: Vec<String> = d.responses.iter().map(|r| format!("{} {}", r.action, r.outcome)).collect();
        eprintln!(
            "ioc-scan agent: job {}: response actions recorded: {}",
            job.id,
            printable(&actions.join(", "))
        );
    }
    fn interrupted(&mut self, r: &ResultUpload) {
        eprintln!(
            "ioc-scan agent: job {} was interrupted after response actions: run {} queued as interrupted ({} detections)",
            r.job_id,
            r.run_key,
            r.detections.len()
        );
    }
    fn command(&mut self, c: &DeviceCommand, report: &CommandReport) {
        eprintln!(
            "ioc-scan agent: command {} ({:?}): {} {}",
            c.id,
            c.kind,
            report.outcome,
            printable(report.detail.as_deref().unwrap_or(""))
        );
    }
    fn reachable_added(&mut self, nets: &[ipnet::IpNet]) {
        let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
        eprintln!("ioc-scan agent: isolation allow list: added {}", list.join(", "));
    }
    fn unreachable(&mut self, why: &str, queued: usize) {
        eprintln!(
            "ioc-scan agent: {} ({queued} result{} queued)",
            printable(why),
            if queued == 1 { "" } else { "s" }
        );
    }
}

/// `ioc-scan agent --console URL [--token TOKEN]`: the managed agent.
fn run_managed_agent(args: &Args, url: &str) -> anyhow::Result<ExitCode> {
    let transport = if args.insecure_http { Transport::InsecureHttp } else { Transport::HttpsOnly };
    // Refused before anything else (no state file made, nothing sent).
    ioc_scan::agent::console_client::check_console_url(url, transport)?;
    catch_stop_signals()?;
    let ca_pem = match &args.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let config = ManagedConfig {
        console: url.to_string(),
        enrollment_token: args.token.clone(),
        device_name: args.device_name.clone().unwrap_or_else(agent::default_device_name),
        ca_pem,
        state_path: state_path(&args.db)?,
        poll_wait: Duration::from_secs(args.poll_wait.clamp(1, 60)),
        max_backoff: Duration::from_secs(30),
        transport,
        max_result_bytes: managed::DEFAULT_MAX_RESULT_BYTES,
    };
    eprintln!(
        "ioc-scan agent: console {}, device {}, state {}",
        printable(url),
        printable(&config.device_name),
        config.state_path.display()
    );
    let scanner = engine();
    managed::run(&config, &scanner, &STOP, &mut ManagedLog)?;
    eprintln!("ioc-scan agent: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The status: from the state file, or (while the agent runs and holds it)
/// from what the agent last published.
fn read_status(path: &Path) -> anyhow::Result<(AgentStatus, bool)> {
    if !path.exists() {
        anyhow::bail!("{}: no managed agent state here (run `ioc-scan agent --console URL` first)", path.display());
    }
    match AgentState::open(path) {
        Ok(state) => Ok((state.status()?, false)),
        Err(open_error) => {
            let published = managed::status_path(path);
            let bytes = std::fs::read(&published)
                .with_context(|| format!("{open_error}; and reading {}", published.display()))?;
            Ok((serde_json::from_slice(&bytes).with_context(|| published.display().to_string())?, true))
        }
    }
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

fn run_status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let path = state_path(&args.db)?;
    let (status, running) = read_status(&path)?;
    if args.json {
        let mut v = serde_json::to_value(&status)?;
        v["agent_running"] = serde_json::json!(running);
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "console: {}   device: {} (id {})",
        printable(status.console.as_deref().unwrap_or("(not enrolled)")),
        printable(status.device_name.as_deref().unwrap_or("-")),
        status.device_id.map_or("-".to_string(), |d| d.to_string())
    );
    if running {
        println!("(the agent is running; as of {})", when(status.taken_at));
    }
    println!("jobs waiting: {}", status.jobs_waiting.len());
    if !status.runs_in_progress.is_empty() {
        println!("runs in progress: {:?}", status.runs_in_progress);
    }
    println!("results queued: {}", status.outbox.len());
    for r in &status.outbox {
        let delivery = match &r.delivery {
            None => "not tried yet".to_string(),
            Some(d) => format!(
                "{} tr{}, last {}{}: {}",
                d.attempts,
                if d.attempts == 1 { "y" } else { "ies" },
                when(d.last_attempt_at),
                d.last_status.map_or(String::new(), |s| format!(" (HTTP {s})")),
                printable(&d.last_error)
            ),
        };
        println!(
            "  run {} job {} task {}: {}, {} detections; {delivery}",
            r.run_key, r.job_id, r.task_id, r.status, r.detections
        );
    }
    match &status.last_error {
        Some(e) => println!("last error ({}): {}", when(e.at), printable(&e.message)),
        None => println!("last error: none"),
    }
    Ok(ExitCode::SUCCESS)
}
