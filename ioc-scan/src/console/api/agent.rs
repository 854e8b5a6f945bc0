//! The routes of devices: their jobs (long poll) and their results.

use super::JsonBody;
use crate::console::auth::CurrentDevice;
use crate::console::error::{ConsoleError, Result};
use crate::console::ingest::{self, Received};
use crate::console::protocol::{Job, JobsResponse, ResultAck, ResultUpload};
use crate::console::tables::JobStatus;
use crate::console::{fleet, AppState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::FixedOffset;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest a poll waits for a job.
const MAX_WAIT_SECS: u64 = 60;
/// Long polls one device may have waiting; more are answered at once.
const MAX_LONG_POLLS: u32 = 4;

/// A device's turn to wait in a long poll, given back when the poll ends.
struct LongPoll {
    polls: Arc<Mutex<HashMap<u64, u32>>>,
    device: u64,
}

impl LongPoll {
    /// A turn, unless the device already has [`MAX_LONG_POLLS`] waiting.
    fn take(state: &AppState, device: u64) -> Option<LongPoll> {
        let mut polls = state.long_polls.lock().unwrap_or_else(|p| p.into_inner());
        let n = polls.entry(device).or_insert(0);
        if *n >= MAX_LONG_POLLS {
            return None;
        }
        *n += 1;
        Some(LongPoll { polls: state.long_polls.clone(), device })
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        let mut polls = self.polls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = polls.get_mut(&self.device) {
            *n -= 1;
            if *n == 0 {
                polls.remove(&self.device);
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct PollQuery {
    /// Seconds to wait for a new job when there is none (long poll).
    #[serde(default)]
    wait: u64,
    /// The agent has just started (runs its `agent-start` tasks).
    #[serde(default)]
    started: bool,
    /// The device's UTC offset in minutes (for `daily:HH:MM` schedules).
    #[serde(default)]
    tz_offset: i32,
}

/// `GET /api/v1/agent/jobs?wait=SECS&started=BOOL&tz_offset=MIN`: every job
/// of the device not yet reported; waits up to `wait` seconds while none is new.
pub async fn jobs(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
    Query(q): Query<PollQuery>,
) -> Result<Json<JobsResponse>> {
    let tz = FixedOffset::east_opt(q.tz_offset.clamp(-18 * 60, 18 * 60) * 60)
        .ok_or_else(|| ConsoleError::Invalid("tz_offset out of range".into()))?;
    // Past its share of waiting polls, a device is answered at once.
    let turn = if q.wait > 0 { LongPoll::take(&state, device.id) } else { None };
    let wait = if turn.is_some() { q.wait.min(MAX_WAIT_SECS) } else { 0 };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let horizon = state.config.schedule_horizon;
    let mut started = q.started;
    loop {
        // Registered before looking, so a job made meanwhile is not missed.
        let notified = state.jobs_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let d = device.clone();
        let first = started;
        let open = state
            .db(move |s| {
                // Each time round: a device removed (or changed) while its
                // poll waits gets no job, and no schedule runs on a stale copy.
                let d = fleet::device(s, d.id)?
                    .filter(|now| now.token_hash == d.token_hash)
                    .ok_or(ConsoleError::Unauthorized)?;
                fleet::schedule_jobs(s, &d, &tz, first, horizon)?;
                fleet::open_jobs(s, d.id)
            })
            .await?;
        started = false;
        let fresh: Vec<u64> = open.iter().filter(|j| j.status == JobStatus::Pending).map(|j| j.id).collect();
        let id = device.id;
        let commands = state.db(move |s| crate::console::commands::open_for_agent(s, id)).await?;
        if !fresh.is_empty() || !commands.is_empty() || tokio::time::Instant::now() >= deadline {
            let jobs = state
                .db(move |s| {
                    fleet::mark_dispatched(s, id, &fresh)?;
                    let mut jobs = Vec::new();
                    for j in open {
                        let Some(task) = s.task(j.task_id)? else { continue };
                        let Ok(collection) = s.collection(j.task_id, j.collection_version) else { continue };
                        jobs.push(Job { id: j.id, trigger: j.trigger, not_before: j.not_before, task, collection });
                    }
                    Ok(jobs)
                })
                .await?;
            state.seen(device.id);
            return Ok(Json(JobsResponse { jobs, commands }));
        }
        // Wake for a new job, the deadline, or a schedule coming due.
        let recheck = tokio::time::Instant::now() + Duration::from_secs(15);
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline.min(recheck)) => {}
        }
    }
}

/// `POST /api/v1/agent/results`: one finished run; stored once per job.
pub async fn upload(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
    JsonBody(mut upload): JsonBody<ResultUpload>,
) -> Result<(StatusCode, Json<ResultAck>)> {
    // Bounded here, before the writer spends any work on it.
    ingest::check_upload(&upload)?;
    ingest::cut_text(&mut upload);
    let ack = state.ingest.submit(Received { device_id: device.id, upload }).await?;
    let status = if ack.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ack)))
}
