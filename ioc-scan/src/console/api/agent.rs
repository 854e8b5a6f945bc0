//! The routes of devices: their jobs (long poll) and their results.

use super::JsonBody;
use crate::console::auth::CurrentDevice;
use crate::console::error::{ConsoleError, Result};
use crate::console::ingest::Received;
use crate::console::protocol::{Job, JobsResponse, ResultAck, ResultUpload};
use crate::console::tables::JobStatus;
use crate::console::{fleet, AppState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::FixedOffset;
use serde::Deserialize;
use std::time::Duration;

/// Longest a poll waits for a job.
const MAX_WAIT_SECS: u64 = 60;

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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(MAX_WAIT_SECS));
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
                fleet::schedule_jobs(s, &d, &tz, first, horizon)?;
                fleet::open_jobs(s, d.id)
            })
            .await?;
        started = false;
        let fresh: Vec<u64> = open.iter().filter(|j| j.status == JobStatus::Pending).map(|j| j.id).collect();
        let device_id = device.id;
        let commands = state.db(move |s| crate::console::commands::open_for_agent(s, device_id)).await?;
        if !fresh.is_empty() || !commands.is_empty() || tokio::time::Instant::now() >= deadline {
            let jobs = state
                .db(move |s| {
                    fleet::mark_dispatched(s, &fresh)?;
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

/// `POST /api/v1/agent/results`: one finished run; stored once per run key.
pub async fn upload(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
    JsonBody(upload): JsonBody<ResultUpload>,
) -> Result<(StatusCode, Json<ResultAck>)> {
    let ack = state.ingest.submit(Received { device_id: device.id, device_name: device.name, upload }).await?;
    let status = if ack.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ack)))
}
