//! The agent of a managed device: enrolls with the console once, then asks
//! it for jobs (long poll), runs each when due with the scan engine, and
//! uploads the results. Results wait in the agent's state file
//! ([`super::queue`]) while the console is unreachable and go out, once
//! each, when it answers again.

use super::console_client::{ClientError, ConsoleClient};
use super::execute::{RunSink, ScanJob, Scanner};
use super::queue::{AgentState, IdentityV1, QueueError};
use crate::console::protocol::{run_key, EnrollRequest, Job, ResultAck, ResultUpload};
use crate::store::{DetectionRecordV1, RunStatus};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most detections kept per run (the console accepts as many).
const MAX_DETECTIONS: usize = crate::console::ingest::MAX_DETECTIONS;

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
}

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
    /// A result the console refused for good (dropped from the outbox).
    fn refused(&mut self, _result: &ResultUpload, _why: &str) {}
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

/// Collects a run's detections, up to what the console accepts.
struct Collector {
    detections: Vec<DetectionRecordV1>,
    dropped: u64,
}

impl RunSink for Collector {
    fn detection(&mut self, detection: DetectionRecordV1) {
        // The scanner applied the task's response actions already (their
        // outcomes are in `detection.responses`).
        if self.detections.len() < MAX_DETECTIONS {
            self.detections.push(detection);
        } else {
            self.dropped += 1;
        }
    }

    fn idle(&mut self) {}
}

/// Runs one job; `None` if the agent was stopped meanwhile (the job stays
/// and runs again after a restart).
pub fn run_job(job: &Job, device_id: u64, scanner: &dyn Scanner, stop: &AtomicBool) -> Option<ResultUpload> {
    let started_at = now_ms();
    let mut sink = Collector { detections: Vec::new(), dropped: 0 };
    let report = scanner.scan(&ScanJob { task: &job.task, collection: &job.collection, stop }, &mut sink);
    if stop.load(Ordering::SeqCst) {
        return None;
    }
    let mut counts = report.counts;
    if sink.dropped > 0 {
        counts.push(("detections_not_sent".into(), sink.dropped));
    }
    let status = if !sink.detections.is_empty() {
        RunStatus::IocDetected
    } else if report.error.is_some() {
        RunStatus::Error
    } else {
        RunStatus::NoIocDetected
    };
    Some(ResultUpload {
        run_key: run_key(device_id, job.id),
        job_id: job.id,
        task_id: job.task.id,
        collection_version: job.collection.version,
        trigger: job.trigger,
        started_at,
        ended_at: now_ms().max(started_at),
        status,
        counts,
        error: report.error,
        detections: sink.detections,
    })
}

/// Uploads the outbox, oldest first, until done or the console stops answering.
/// Returns whether everything went out.
fn flush(client: &ConsoleClient, state: &AgentState, events: &mut dyn ManagedEvents) -> Result<bool, ManagedError> {
    let outbox = state.outbox()?;
    let total = outbox.len();
    for (sent, result) in outbox.into_iter().enumerate() {
        match client.upload(&result) {
            Ok(ack) => {
                state.acknowledged(&result.run_key)?;
                events.uploaded(&result, &ack);
            }
            Err(e @ ClientError::Unreachable(_)) => {
                events.unreachable(&e.to_string(), total - sent);
                return Ok(false);
            }
            Err(e) if e.is_unauthorized() => return Err(ManagedError::Revoked(e.to_string())),
            Err(e) => {
                // Refused for good (job unknown to this console...): keeping it would block the queue.
                events.refused(&result, &e.to_string());
                state.acknowledged(&result.run_key)?;
            }
        }
    }
    Ok(true)
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
    let state = AgentState::open(&config.state_path)?;
    let mut client = ConsoleClient::new(&config.console, config.ca_pem.as_deref())?;
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
    let mut started = true;
    let mut backoff = Duration::from_secs(1);
    let mut last_prune = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let reachable = flush(&client, &state, events)?;
        // Wait for new jobs no longer than until the next one is due.
        let jobs = state.jobs()?;
        let now = now_ms();
        let next_due = jobs.iter().map(|j| j.not_before.unwrap_or(i64::MIN)).min();
        let until_due = next_due.map(|t| Duration::from_millis(t.saturating_sub(now).max(0) as u64));
        let mut wait = until_due.map_or(config.poll_wait, |d| d.min(config.poll_wait));
        if reachable {
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
                    wait = Duration::ZERO;
                }
                Err(e @ ClientError::Unreachable(_)) => {
                    events.unreachable(&e.to_string(), state.outbox()?.len());
                }
                Err(e) if e.is_unauthorized() => return Err(ManagedError::Revoked(e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        if wait > Duration::ZERO || !reachable {
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
            let Some(result) = run_job(&job, identity.device_id, scanner, stop) else { break };
            state.finish_job(&result)?;
            events.run_finished(&result);
            flush(&client, &state, events)?;
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            state.prune_done(chrono::Duration::days(60))?;
            last_prune = Instant::now();
        }
    }
    Ok(())
}
