//! The agent of a managed device: enrolls with the console once, then asks
//! it for jobs (long poll), runs each when due with the scan engine, and
//! uploads the results. Results wait in the agent's state file
//! ([`super::queue`]) while the console is unreachable and go out, once
//! each, when it answers again.
//!
//! No result is lost: one too large for the console is cut down to fit
//! (the detections left out are counted, those with response actions kept
//! first); one the console refuses stays queued with the refusal (shown by
//! `ioc-scan agent status`) and is offered again later; a run stopped after
//! it took response actions is reported `interrupted` with them. Only the
//! console's "already have it" (a duplicate) removes a result unstored.
//!
//! The console stays reachable through an isolation this agent turns on
//! ([`super::reachable`]), and the console can lift it (a command).

use super::console_client::{ClientError, ConsoleClient, Transport};
use super::execute::{RunSink, ScanJob, Scanner};
use super::queue::{add_count, AgentState, IdentityV1, QueueError, LEFT_OUT};
use super::reachable::KeepReachable;
use crate::console::protocol::{
    run_key, CommandKind, CommandReport, DeviceCommand, EnrollRequest, Job, ResultAck, ResultUpload,
};
use crate::respond::isolate;
use crate::store::{DetectionRecordV1, RunStatus};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ManagedConfig {
    /// `https://host:port` of the console.
    pub console: String,
    /// Needed the first time only (enrollment).
    pub enrollment_token: Option<String>,
    pub device_name: String,
    /// PEM CA certificate to trust (a self-signed console).
    pub ca_pem: Option<Vec<u8>>,
    /// The agent's state file.
    pub state_path: PathBuf,
    /// Longest a poll waits for a job.
    pub poll_wait: Duration,
    /// Longest pause between tries while the console is unreachable.
    pub max_backoff: Duration,
    /// Whether `http://` consoles are accepted (tokens in clear).
    pub transport: Transport,
    /// Largest result body sent (bytes); the console's default limit is
    /// [`crate::console::api::MAX_RESULT_BODY`]. A console answering 413
    /// makes the agent halve it for that result.
    pub max_result_bytes: usize,
}

/// Default [`ManagedConfig::max_result_bytes`]: under the console's default limit.
pub const DEFAULT_MAX_RESULT_BYTES: usize = crate::console::api::MAX_RESULT_BODY - (1 << 20);

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error(transparent)]
    State(#[from] QueueError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("this device is not enrolled yet: give an enrollment token (--token)")]
    NoToken,
    #[error("this device is enrolled with the console {enrolled}, not {asked}; remove {state} to enroll anew")]
    OtherConsole { enrolled: String, asked: String, state: PathBuf },
    #[error("the console no longer accepts this device ({0}); it may have been removed")]
    Revoked(String),
}

/// What the agent tells its caller as it goes (the CLI prints it).
pub trait ManagedEvents {
    fn enrolled(&mut self, _identity: &IdentityV1) {}
    fn jobs_received(&mut self, _new: usize) {}
    fn run_started(&mut self, _job: &Job) {}
    fn run_finished(&mut self, _result: &ResultUpload) {}
    fn uploaded(&mut self, _result: &ResultUpload, _ack: &ResultAck) {}
    /// A result the console refused: it stays queued (`attempts` so far).
    fn refused(&mut self, _result: &ResultUpload, _why: &str, _attempts: u32) {}
    /// A result cut down to fit the console's limit (`left_out` detections in all).
    fn truncated(&mut self, _result: &ResultUpload, _left_out: u64) {}
    /// A detection's response actions were taken and recorded.
    fn actions_recorded(&mut self, _job: &Job, _detection: &DetectionRecordV1) {}
    /// A run stopped after it took response actions: reported `interrupted`.
    fn interrupted(&mut self, _result: &ResultUpload) {}
    /// A command from the console was carried out (or failed).
    fn command(&mut self, _command: &DeviceCommand, _report: &CommandReport) {}
    /// Addresses added to the isolation in place to keep the console reachable.
    fn reachable_added(&mut self, _nets: &[ipnet::IpNet]) {}
    fn unreachable(&mut self, _why: &str, _queued: usize) {}
}

impl ManagedEvents for () {}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn tz_offset_minutes() -> i32 {
    use chrono::Offset;
    chrono::Local::now().offset().fix().local_minus_utc() / 60
}

/// Most detections kept per run (the console accepts as many).
const MAX_DETECTIONS: usize = crate::console::ingest::MAX_DETECTIONS;
/// A result the console refused is offered again after this long (times the
/// number of refusals, at most [`MAX_RETRY_REFUSED`]).
const RETRY_REFUSED: Duration = Duration::from_secs(60);
const MAX_RETRY_REFUSED: Duration = Duration::from_secs(3600);
/// Longest error text a result carries.
const MAX_RESULT_ERROR: usize = 4096;

/// Collects a run's detections, up to what the console accepts; each one
/// with response actions is written to the state file at once.
struct Collector<'a> {
    state: &'a AgentState,
    job: &'a Job,
    events: &'a mut dyn ManagedEvents,
    detections: Vec<DetectionRecordV1>,
    left_out: u64,
    /// Writing an action to the state file failed (the run goes on).
    record_error: Option<QueueError>,
}

impl RunSink for Collector<'_> {
    fn detection(&mut self, detection: DetectionRecordV1) {
        // The scanner applied the task's response actions already (their
        // outcomes are in `detection.responses`): record them before going on.
        if !detection.responses.is_empty() {
            match self.state.record_action(self.job.id, &detection) {
                Ok(()) => {
                    self.events.actions_recorded(self.job, &detection);
                    crate::respond::test_pause("agent-action-recorded");
                }
                Err(e) => {
                    tracing::error!("recording the response actions of job {}: {e}", self.job.id);
                    self.record_error.get_or_insert(e);
                }
            }
        }
        if self.detections.len() < MAX_DETECTIONS {
            self.detections.push(detection);
        } else {
            self.left_out += 1;
        }
    }

    fn idle(&mut self) {}
}

/// How a job's run ended.
pub enum RunEnd {
    Finished(ResultUpload),
    /// Stopped before its end (the stop flag).
    Stopped,
}

/// Runs one job; the run in progress is kept in `state` so that the
/// actions it takes survive a crash.
pub fn run_job(
    job: &Job,
    device_id: u64,
    scanner: &dyn Scanner,
    stop: &AtomicBool,
    state: &AgentState,
    isolation_allow: &[ipnet::IpNet],
    events: &mut dyn ManagedEvents,
) -> Result<RunEnd, QueueError> {
    let started_at = now_ms();
    let mut result = ResultUpload {
        run_key: run_key(device_id, job.id),
        job_id: job.id,
        task_id: job.task.id,
        collection_version: job.collection.version,
        trigger: job.trigger,
        started_at,
        ended_at: started_at,
        status: RunStatus::Running,
        counts: Vec::new(),
        error: None,
        detections: Vec::new(),
    };
    state.begin_run(&result)?;
    let mut sink =
        Collector { state, job, events, detections: Vec::new(), left_out: 0, record_error: None };
    let report = scanner.scan(
        &ScanJob { task: &job.task, collection: &job.collection, stop, isolation_allow },
        &mut sink,
    );
    if stop.load(Ordering::SeqCst) {
        return Ok(RunEnd::Stopped);
    }
    let mut counts = report.counts;
    if sink.left_out > 0 {
        add_count(&mut counts, LEFT_OUT, sink.left_out);
    }
    result.status = if !sink.detections.is_empty() {
        RunStatus::IocDetected
    } else if report.error.is_some() {
        RunStatus::Error
    } else {
        RunStatus::NoIocDetected
    };
    result.ended_at = now_ms().max(started_at);
    result.counts = counts;
    let error = match (report.error, sink.record_error.take()) {
        (e, None) => e,
        (None, Some(r)) => Some(format!("recording the response actions: {r}")),
        (Some(e), Some(r)) => Some(format!("{e}; recording the response actions: {r}")),
    };
    result.error = error.map(|e| e.chars().take(MAX_RESULT_ERROR).collect());
    result.detections = sink.detections;
    Ok(RunEnd::Finished(result))
}

/// Cuts `result` down to at most `max_bytes` of JSON: detections with
/// response actions are kept first, then the others in order; those left
/// out are counted ([`LEFT_OUT`]). Returns how many were left out now.
pub fn fit_to(result: &mut ResultUpload, max_bytes: usize) -> u64 {
    let size = |r: &ResultUpload| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
    if size(result) <= max_bytes || result.detections.is_empty() {
        return 0;
    }
    let detections = std::mem::take(&mut result.detections);
    let before = detections.len() as u64;
    let already = result.counts.iter().find(|(k, _)| k == LEFT_OUT).map_or(0, |(_, v)| *v);
    // The count is in place, at its largest, before the rest is measured.
    set_count(&mut result.counts, LEFT_OUT, already.saturating_add(before));
    let mut used = size(result);
    let (acted, plain): (Vec<_>, Vec<_>) = detections.into_iter().partition(|d| !d.responses.is_empty());
    let mut kept = Vec::new();
    for d in acted.into_iter().chain(plain) {
        let bytes = serde_json::to_vec(&d).map_or(usize::MAX, |v| v.len()).saturating_add(1);
        if used.saturating_add(bytes) > max_bytes {
            continue;
        }
        used += bytes;
        kept.push(d);
    }
    let left_out = before - kept.len() as u64;
    set_count(&mut result.counts, LEFT_OUT, already.saturating_add(left_out));
    result.detections = kept;
    left_out
}

fn set_count(counts: &mut Vec<(String, u64)>, name: &str, n: u64) {
    match counts.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v = n,
        None => counts.push((name.to_string(), n)),
    }
}

/// Whether a refused result is due to be offered again.
fn retry_due(state: &AgentState, run_key: &str) -> Result<bool, QueueError> {
    let Some(d) = state.delivery(run_key)? else { return Ok(true) };
    if d.last_status.is_none() {
        return Ok(true);
    }
    let wait = (RETRY_REFUSED * d.attempts.max(1)).min(MAX_RETRY_REFUSED);
    Ok(now_ms().saturating_sub(d.last_attempt_at) >= wait.as_millis() as i64)
}

/// Uploads the outbox, oldest first, until done or the console stops
/// answering; then publishes the status. Returns whether the console answered.
fn flush(
    client: &ConsoleClient,
    state: &AgentState,
    events: &mut dyn ManagedEvents,
) -> Result<bool, ManagedError> {
    let answered = flush_outbox(client, state, events);
    publish_status(state);
    answered
}

fn flush_outbox(
    client: &ConsoleClient,
    state: &AgentState,
    events: &mut dyn ManagedEvents,
) -> Result<bool, ManagedError> {
    let outbox = state.outbox()?;
    let total = outbox.len();
    for (sent, mut result) in outbox.into_iter().enumerate() {
        if !retry_due(state, &result.run_key)? {
            continue;
        }
        loop {
            match client.upload(&result) {
                Ok(ack) => {
                    // A duplicate: the console has it already. Delivered.
                    state.acknowledged(&result.run_key)?;
                    events.uploaded(&result, &ack);
                }
                Err(e @ ClientError::Unreachable(_)) => {
                    state.delivery_failed(&result.run_key, None, &e.to_string())?;
                    state.set_last_error(&e.to_string())?;
                    events.unreachable(&e.to_string(), total - sent);
                    return Ok(false);
                }
                Err(e @ ClientError::Rejected { status: 401, .. }) => {
                    state.set_last_error(&e.to_string())?;
                    return Err(ManagedError::Revoked(e.to_string()));
                }
                Err(ClientError::Rejected { status: 409, ref message }) if message.contains("duplicate") => {
                    // The console has a result for this job already.
                    state.acknowledged(&result.run_key)?;
                    let ack = ResultAck { run_id: None, duplicate: true, discarded: None };
                    events.uploaded(&result, &ack);
                }
                Err(ref e @ ClientError::Rejected { status: 413, .. }) if !result.detections.is_empty() => {
                    // Too large for this console: halve and offer again.
                    let size = serde_json::to_vec(&result).map_or(usize::MAX, |v| v.len());
                    let left_out = fit_to(&mut result, size / 2);
                    if left_out == 0 {
                        let d = state.delivery_failed(&result.run_key, Some(413), &e.to_string())?;
                        events.refused(&result, &e.to_string(), d.attempts);
                        break;
                    }
                    state.replace_queued(&result)?;
                    state.delivery_failed(&result.run_key, Some(413), &e.to_string())?;
                    events.truncated(&result, left_out);
                    continue;
                }
                Err(e) => {
                    // Refused: kept, with why, for a person to see; offered again later.
                    let status = match &e {
                        ClientError::Rejected { status, .. } => Some(*status),
                        _ => None,
                    };
                    let why = e.to_string();
                    let d = state.delivery_failed(&result.run_key, status, &why)?;
                    state.set_last_error(&format!("run {}: {why}", result.run_key))?;
                    events.refused(&result, &why, d.attempts);
                }
            }
            break;
        }
    }
    Ok(true)
}

/// Carries out a command of the console and reports it.
fn run_command(
    client: &ConsoleClient,
    command: &DeviceCommand,
    events: &mut dyn ManagedEvents,
) -> Result<(), ClientError> {
    let report = match command.kind {
        CommandKind::LiftIsolation => match isolate::off(&isolate::Options::from_env()) {
            Ok(Some(was)) => CommandReport {
                outcome: "done".into(),
                detail: Some(format!("network isolation of {} lifted", was.cgroup)),
            },
            Ok(None) => CommandReport { outcome: "done".into(), detail: Some("network isolation was not on".into()) },
            Err(e) => CommandReport { outcome: "failed".into(), detail: Some(e.to_string()) },
        },
        CommandKind::Unknown => CommandReport {
            outcome: "failed".into(),
            detail: Some("this agent does not know this kind of command".into()),
        },
    };
    events.command(command, &report);
    client.report_command(command.id, &report).map(|_| ())
}

fn enroll(
    config: &ManagedConfig,
    client: &ConsoleClient,
    state: &AgentState,
    stop: &AtomicBool,
    events: &mut dyn ManagedEvents,
) -> Result<Option<IdentityV1>, ManagedError> {
    let token = config.enrollment_token.as_deref().ok_or(ManagedError::NoToken)?;
    let request = EnrollRequest {
        name: config.device_name.clone(),
        hostname: Some(super::default_device_name()),
        os: nix::sys::utsname::uname()
            .ok()
            .map(|u| format!("{} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy())),
        agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match client.enroll(token, &request) {
            Ok(answer) => {
                let identity = IdentityV1 {
                    console: config.console.clone(),
                    device_id: answer.device_id,
                    device_name: answer.name,
                    token: answer.token,
                };
                state.set_identity(&identity)?;
                events.enrolled(&identity);
                return Ok(Some(identity));
            }
            Err(e @ ClientError::Unreachable(_)) => {
                events.unreachable(&e.to_string(), 0);
                super::sleep_unless_stopped(backoff, stop);
                if stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs the managed agent until `stop` is set.
pub fn run(
    config: &ManagedConfig,
    scanner: &dyn Scanner,
    stop: &AtomicBool,
    events: &mut dyn ManagedEvents,
) -> Result<(), ManagedError> {
    // Before anything is opened or sent: no token over plain HTTP unless asked.
    let mut client = ConsoleClient::new(&config.console, config.ca_pem.as_deref(), config.transport)?;
    let state = AgentState::open(&config.state_path)?;
    // An isolation already on (turned on by hand, or before a restart) is
    // opened to the console first: enrolling and polling need it.
    let isolation = isolate::Options::from_env();
    let mut reachable = KeepReachable::new(&config.console);
    let added = reachable.keep_current(&isolation, true);
    if !added.is_empty() {
        events.reachable_added(&added);
    }
    let identity = match state.identity()? {
        Some(id) if id.console.trim_end_matches('/') != config.console.trim_end_matches('/') => {
            return Err(ManagedError::OtherConsole {
                enrolled: id.console,
                asked: config.console.clone(),
                state: config.state_path.clone(),
            })
        }
        Some(id) => id,
        None => match enroll(config, &client, &state, stop, events)? {
            Some(id) => id,
            None => return Ok(()),
        },
    };
    client.set_token(&identity.token);
    // Runs a crash cut short after they took response actions: reported now.
    for result in state.recover_interrupted()? {
        events.interrupted(&result);
    }
    let mut started = true;
    let mut backoff = Duration::from_secs(1);
    let mut last_prune = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let added = reachable.keep_current(&isolation, false);
        if !added.is_empty() {
            events.reachable_added(&added);
        }
        let answered = flush(&client, &state, events)?;
        // Wait for new jobs no longer than until the next one is due.
        let jobs = state.jobs()?;
        let now = now_ms();
        let next_due = jobs.iter().map(|j| j.not_before.unwrap_or(i64::MIN)).min();
        let until_due = next_due.map(|t| Duration::from_millis(t.saturating_sub(now).max(0) as u64));
        let mut wait = until_due.map_or(config.poll_wait, |d| d.min(config.poll_wait));
        let mut unreachable = !answered;
        if answered {
            match client.poll(wait, started, tz_offset_minutes()) {
                Ok(answer) => {
                    started = false;
                    backoff = Duration::from_secs(1);
                    let new = state.add_jobs(&answer.jobs)?;
                    let listed: Vec<u64> = answer.jobs.iter().map(|j| j.id).collect();
                    state.retain_jobs(&listed)?;
                    if new > 0 {
                        events.jobs_received(new);
                    }
                    for command in &answer.commands {
                        if let Err(e) = run_command(&client, command, events) {
                            state.set_last_error(&format!("reporting command {}: {e}", command.id))?;
                        }
                    }
                    wait = Duration::ZERO;
                }
                Err(e @ ClientError::Unreachable(_)) => {
                    state.set_last_error(&e.to_string())?;
                    events.unreachable(&e.to_string(), state.outbox()?.len());
                    unreachable = true;
                }
                Err(e) if e.is_unauthorized() => {
                    state.set_last_error(&e.to_string())?;
                    return Err(ManagedError::Revoked(e.to_string()));
                }
                Err(e) => {
                    state.set_last_error(&e.to_string())?;
                    return Err(e.into());
                }
            }
        }
        if wait > Duration::ZERO || unreachable {
            // Unreachable: back off, but wake for a job that falls due.
            let pause = backoff.min(wait.max(Duration::from_millis(200)));
            super::sleep_unless_stopped(pause, stop);
            backoff = (backoff * 2).min(config.max_backoff);
        }
        for job in state.jobs()? {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if job.not_before.is_some_and(|t| t > now_ms()) {
                continue;
            }
            events.run_started(&job);
            // The isolate action of this run gets the console's current addresses.
            reachable.refresh(true);
            match run_job(&job, identity.device_id, scanner, stop, &state, reachable.nets(), events)? {
                RunEnd::Finished(mut result) => {
                    let left_out = fit_to(&mut result, config.max_result_bytes);
                    state.finish_job(&result)?;
                    if left_out > 0 {
                        events.truncated(&result, left_out);
                    }
                    events.run_finished(&result);
                }
                RunEnd::Stopped => {
                    if let Some(result) = state.interrupt_run(job.id)? {
                        events.interrupted(&result);
                    }
                    break;
                }
            }
            flush(&client, &state, events)?;
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            state.prune_done(chrono::Duration::days(60))?;
            last_prune = Instant::now();
        }
        publish_status(&state);
    }
    Ok(())
}

/// Where the agent publishes its status while it runs (its state file is
/// locked then): next to the state file.
pub fn status_path(state_path: &std::path::Path) -> PathBuf {
    state_path.with_extension("status.json")
}

/// Writes the status for `ioc-scan agent status` (readable by the owner only).
fn publish_status(state: &AgentState) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(status) = state.status() else { return };
    let path = status_path(state.path());
    let tmp = path.with_extension("json.part");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(&status).unwrap_or_default()))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!("agent status {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ResponseOutcomeV1, RunTrigger};

    fn detection(i: usize, acted: bool) -> DetectionRecordV1 {
        DetectionRecordV1 {
            ioc_id: format!("ioc-{i}"),
            ioc_name: "n".into(),
            ioc_description: Some("x".repeat(200)),
            matched_items: Vec::new(),
            object: serde_json::json!({"path": format!("/tmp/f{i}")}),
            responses: if acted {
                vec![ResponseOutcomeV1 { action: "quarantine".into(), outcome: "done".into(), detail: None }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn a_result_over_the_limit_keeps_acted_detections_first_and_counts_the_rest() {
        let mut r = ResultUpload {
            run_key: "d1-j1".into(),
            job_id: 1,
            task_id: 1,
            collection_version: 1,
            trigger: RunTrigger::Manual,
            started_at: 1,
            ended_at: 2,
            status: RunStatus::IocDetected,
            counts: vec![(LEFT_OUT.into(), 5)],
            error: None,
            detections: (0..100).map(|i| detection(i, i == 99)).collect(),
        };
        let left_out = fit_to(&mut r, 4096);
        let size = serde_json::to_vec(&r).unwrap().len();
        assert!(size <= 4096, "{size}");
        assert!(left_out > 0 && !r.detections.is_empty());
        assert_eq!(r.detections.len() as u64 + left_out, 100);
        assert_eq!(r.detections[0].ioc_id, "ioc-99", "the detection with actions is kept first");
        // Those left out before (over MAX_DETECTIONS) are still counted.
        assert_eq!(r.counts, vec![(LEFT_OUT.to_string(), 5 + left_out)]);
        assert_eq!(fit_to(&mut r, 1 << 20), 0, "a result that fits is left alone");
    }
}
