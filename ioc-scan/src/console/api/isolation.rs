//! Lifting a device's network isolation from the console: a person asks
//! (`POST /devices/{id}/lift-isolation`), the device's agent gets the
//! command with its jobs, lifts and reports (`POST /agent/commands/{id}`).

use super::JsonBody;
use crate::console::auth::{CurrentDevice, CurrentUser};
use crate::console::commands::{self, CommandRecordV1};
use crate::console::error::Result;
use crate::console::protocol::{CommandKind, CommandReport};
use crate::console::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

fn view(c: &CommandRecordV1) -> Value {
    json!({
        "id": c.id,
        "device_id": c.device_id,
        "kind": c.kind,
        "requested_by": c.requested_by,
        "requested_at": c.requested_at,
        "status": c.status,
        "done_at": c.done_at,
        "detail": c.detail,
    })
}

/// `POST /api/v1/devices/{id}/lift-isolation` (an analyst's or
/// administrator's route): asks the device to lift its isolation; 202 with
/// the command (the same open one if asked twice).
pub async fn lift(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<Value>)> {
    let by = user.user.name.clone();
    let command = state.db(move |s| commands::request(s, id, CommandKind::LiftIsolation, &by)).await?;
    state.jobs_changed.notify_waiters();
    Ok((StatusCode::ACCEPTED, Json(view(&command))))
}

/// `GET /api/v1/devices/{id}/commands`: the device's commands and their outcome.
pub async fn list(State(state): State<AppState>, _: CurrentUser, Path(id): Path<u64>) -> Result<Json<Value>> {
    let list = state.db(move |s| commands::of_device(s, id)).await?;
    Ok(Json(json!({ "commands": list.iter().map(view).collect::<Vec<_>>() })))
}

/// `POST /api/v1/agent/commands/{id}`: the device reports a command.
pub async fn report(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
    Path(id): Path<u64>,
    JsonBody(report): JsonBody<CommandReport>,
) -> Result<Json<Value>> {
    let command = state.db(move |s| commands::report(s, device.id, id, &report)).await?;
    Ok(Json(view(&command)))
}
