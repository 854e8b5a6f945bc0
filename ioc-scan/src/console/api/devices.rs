//! Devices (enrollment, listing, group membership) and administration groups.

use super::JsonBody;
use crate::console::auth::{CurrentUser, Enrollment};
use crate::console::error::{ConsoleError, Result};
use crate::console::protocol::{EnrollRequest, EnrollResponse};
use crate::console::{fleet, view, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/devices/enroll` with an enrollment token.
pub async fn enroll(
    State(state): State<AppState>,
    Enrollment(hash): Enrollment,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollResponse>)> {
    let (device, token) = state.db(move |s| fleet::enroll(s, &hash, req)).await?;
    Ok((StatusCode::CREATED, Json(EnrollResponse { device_id: device.id, name: device.name, token })))
}

pub async fn list(State(state): State<AppState>, _: CurrentUser) -> Result<Json<Value>> {
    let (devices, groups) = state.db(|s| Ok((fleet::devices(s)?, fleet::groups(s)?))).await?;
    let now = state.store.now_millis();
    let list: Vec<Value> = devices.iter().map(|d| view::device(d, state.last_seen_of(d.id), now, &groups)).collect();
    Ok(Json(json!({ "devices": list })))
}

pub async fn show(State(state): State<AppState>, _: CurrentUser, Path(id): Path<u64>) -> Result<Json<Value>> {
    let (device, groups) = state.db(move |s| Ok((fleet::device(s, id)?, fleet::groups(s)?))).await?;
    let device = device.ok_or_else(|| ConsoleError::not_found(format_args!("device with id {id}")))?;
    Ok(Json(view::device(&device, state.last_seen_of(id), state.store.now_millis(), &groups)))
}

#[derive(Deserialize)]
pub struct DevicePatch {
    name: Option<String>,
    /// A group id, or null for no group; absent: unchanged.
    #[serde(default, with = "double_option")]
    group_id: Option<Option<u64>>,
}

/// Tells an absent field (`None`) from an explicit null (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
        Ok(Some(Option::<u64>::deserialize(d)?))
    }
}

pub async fn update(
    State(state): State<AppState>,
    _: CurrentUser,
    Path(id): Path<u64>,
    JsonBody(patch): JsonBody<DevicePatch>,
) -> Result<Json<Value>> {
    let (device, groups) =
        state.db(move |s| Ok((fleet::update_device(s, id, patch.name, patch.group_id)?, fleet::groups(s)?))).await?;
    state.forget_devices();
    Ok(Json(view::device(&device, state.last_seen_of(id), state.store.now_millis(), &groups)))
}

pub async fn remove(State(state): State<AppState>, _: CurrentUser, Path(id): Path<u64>) -> Result<StatusCode> {
    state.db(move |s| fleet::delete_device(s, id)).await?;
    state.forget_devices();
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_groups(State(state): State<AppState>, _: CurrentUser) -> Result<Json<Value>> {
    let (groups, devices) = state.db(|s| Ok((fleet::groups(s)?, fleet::devices(s)?))).await?;
    let list: Vec<Value> =
        groups.iter().map(|g| view::group(g, devices.iter().filter(|d| d.group_id == Some(g.id)).count())).collect();
    Ok(Json(json!({ "groups": list })))
}

#[derive(Deserialize)]
pub struct NewGroup {
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create_group(
    State(state): State<AppState>,
    _: CurrentUser,
    JsonBody(body): JsonBody<NewGroup>,
) -> Result<(StatusCode, Json<Value>)> {
    let group = state.db(move |s| fleet::create_group(s, &body.name, &body.description)).await?;
    Ok((StatusCode::CREATED, Json(view::group(&group, 0))))
}

#[derive(Deserialize)]
pub struct GroupPatch {
    name: Option<String>,
    description: Option<String>,
}

pub async fn update_group(
    State(state): State<AppState>,
    _: CurrentUser,
    Path(id): Path<u64>,
    JsonBody(body): JsonBody<GroupPatch>,
) -> Result<Json<Value>> {
    let group = state.db(move |s| fleet::update_group(s, id, body.name, body.description)).await?;
    Ok(Json(view::group(&group, 0)))
}

pub async fn delete_group(State(state): State<AppState>, _: CurrentUser, Path(id): Path<u64>) -> Result<StatusCode> {
    state.db(move |s| fleet::delete_group(s, id)).await?;
    state.forget_devices();
    Ok(StatusCode::NO_CONTENT)
}
