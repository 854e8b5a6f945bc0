//! `ioc-scan results [--task ID] [--device NAME] [--since DATE] [--status S] [--json]`:
//! the results table, newest first: run, status, device, date and time,
//! task, and a summary of what was found.

use super::task::{fmt_time, run_json, DbArgs};
use super::validate::printable;
use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ioc_scan::store::{RunFilter, RunRecordV1, RunStatus};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Only the runs of this task.
    #[arg(long)]
    pub task: Option<u64>,
    /// Only the runs of this device.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Only runs started at or after this local date (YYYY-MM-DD), local
    /// date and time (YYYY-MM-DD HH:MM[:SS]) or RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Only runs with this status: ioc-detected, no-ioc-detected, error, running, interrupted.
    #[arg(long, value_name = "S")]
    pub status: Option<RunStatus>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// JSON lines, one run per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = |naive: NaiveDateTime| {
        chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Some(t) = NaiveDateTime::parse_from_str(s, fmt).ok().and_then(local) {
            return Ok(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(local)
        .ok_or_else(|| {
            format!("{s:?} is not a date (YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339)")
        })
}

/// One line saying what a run found.
pub(crate) fn summary(run: &RunRecordV1) -> String {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let found = format!(
        "{} detection{} of {} IOC{}",
        run.detections,
        plural(run.detections),
        run.iocs_detected,
        plural(run.iocs_detected)
    );
    match run.status {
        RunStatus::IocDetected => found,
        RunStatus::NoIocDetected => "no IOC detected".into(),
        RunStatus::Error => format!("error: {}", run.error.as_deref().unwrap_or("unknown")),
        RunStatus::Running => format!("running, {found} so far"),
        RunStatus::Interrupted => format!("did not finish, {found}"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = args.db.open(false)?;
    let filter = RunFilter {
        task: args.task,
        device: args.device.clone(),
        since: args.since,
        status: args.status,
        limit: args.limit,
    };
    let runs = store.list_runs(&filter)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if !args.json {
        writeln!(
            out,
            "{:>6}  {:<15}  {:<16}  {:<19}  {:<20}  RESULT",
            "RUN", "STATUS", "DEVICE", "DATE AND TIME", "TASK"
        )?;
    }
    for run in &runs {
        if args.json {
            writeln!(out, "{}", run_json(run))?;
        } else {
            writeln!(
                out,
                "{:>6}  {:<15}  {:<16}  {:<19}  {:<20}  {}",
                run.id,
                run.status.as_str(),
                printable(&run.device),
                fmt_time(run.started_at),
                printable(&format!("{} {}", run.task_id, run.task_name)),
                printable(&summary(run))
            )?;
        }
    }
    out.flush().context("writing the results")?;
    Ok(ExitCode::SUCCESS)
}
