//! `ioc-scan agent [--once] [--device-name NAME]`: run this device's
//! scheduled tasks until SIGINT/SIGTERM, pruning old results every hour.
//! Local only (no console yet). Progress lines go to stderr.

use super::task::{catch_stop_signals, engine, DbArgs, STOP};
use super::validate::printable;
use ioc_scan::agent::{self, Agent, AgentConfig, AgentEvents};
use ioc_scan::store::{RunError, RunRecordV1, RunTrigger, TaskRecordV1};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
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
    /// Longest wait of one poll for jobs, in seconds (managed mode).
    #[arg(long, default_value_t = 20, value_name = "SECS", hide = true)]
    pub poll_wait: u64,
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
    if let Some(url) = &args.console {
        return super::console::run_managed_agent(
            &args.db,
            url,
            args.token.clone(),
            args.device_name.clone(),
            args.ca_cert.clone(),
            args.poll_wait,
        );
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
