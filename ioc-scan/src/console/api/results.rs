//! Results (the runs of tasks on devices) and their alert details.

use crate::console::auth::CurrentUser;
use crate::console::error::{ConsoleError, Result};
use crate::console::results::{by_name, device_of, query, Owner, ResultQuery};
use crate::console::{fleet, view, AppState};
use crate::store::RunStatus;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Most results one request returns.
const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize, Default)]
pub struct ResultsQuery {
    task: Option<u64>,
    /// A device id.
    device: Option<u64>,
    /// A device name (also of removed devices).
    device_name: Option<String>,
    /// An administration group id: its devices.
    group: Option<u64>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/results?task=&device=&group=&status=&since=&until=&limit=`
pub async fn list(State(state): State<AppState>, _: CurrentUser, Query(q): Query<ResultsQuery>) -> Result<Json<Value>> {
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<RunStatus>().map_err(ConsoleError::Invalid))
        .transpose()?;
    let since = super::parse_time("since", q.since.as_deref())?;
    let until = super::parse_time("until", q.until.as_deref())?;
    let limit = q.limit.unwrap_or(500).min(MAX_LIMIT);
    let results = state
        .db(move |s| {
            let devices = fleet::devices(s)?;
            // A device's results are those it reported (by id), not all under its name.
            let owners: Option<Vec<Owner>> = if let Some(id) = q.device {
                let d = devices
                    .iter()
                    .find(|d| d.id == id)
                    .ok_or_else(|| ConsoleError::not_found(format_args!("device with id {id}")))?;
                Some(vec![Owner::of(d)])
            } else if let Some(name) = q.device_name {
                Some(vec![Owner::Name(name)])
            } else {
                q.group.map(|g| devices.iter().filter(|d| d.group_id == Some(g)).map(Owner::of).collect())
            };
            let runs = query(s, &ResultQuery { task: q.task, devices: owners, status, since, until, limit })?;
            let by_name = by_name(&devices);
            Ok(runs.iter().map(|r| view::run(r, device_of(r, &by_name))).collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({ "results": results })))
}

/// `GET /api/v1/results/{id}`: the run and its alert details (matched IOC
/// and items, objects, response actions and their outcomes).
pub async fn show(State(state): State<AppState>, _: CurrentUser, Path(id): Path<u64>) -> Result<Json<Value>> {
    let v = state
        .db(move |s| {
            let run = s.run(id)?;
            let detections = s.detections(id)?;
            let collection = s.collection(run.task_id, run.collection_version).ok();
            let devices = fleet::devices(s)?;
            let device_id = device_of(&run, &by_name(&devices));
            Ok(json!({
                "run": view::run(&run, device_id),
                "detections": detections.iter().map(|d| view::detection(d, collection.as_ref())).collect::<Vec<_>>(),
            }))
        })
        .await?;
    Ok(Json(v))
}
