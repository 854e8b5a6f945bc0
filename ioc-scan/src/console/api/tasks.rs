//! Tasks: create (multipart upload of IOC files), edit, delete, list, show
//! with the indicators, export of the IOC files as uploaded, run now,
//! schedule; the preview of uploaded files; jobs.

use super::JsonBody;
use crate::console::auth::CurrentUser;
use crate::console::error::{ConsoleError, Result};
use crate::console::tables::TargetsV1;
use crate::console::{fleet, upload, view, AppState};
use crate::store::{
    monitor_seconds, CollectionRecordV1, NewCollection, NewTask, ResponseSettingsV1, RunTrigger, Schedule, ScopeV1, Store, TaskRecordV1,
};
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;

/// Most custom paths / exclusions per task, and their longest length.
const MAX_PATHS: usize = 256;
const MAX_PATH_CHARS: usize = 4096;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeIn {
    critical_areas: Option<bool>,
    ioc_paths: Option<bool>,
    custom_paths: Option<Vec<String>>,
    excludes: Option<Vec<String>>,
}

/// Task settings, in the `task` part of an upload or a JSON body. On edit,
/// absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSettings {
    name: Option<String>,
    description: Option<String>,
    scope: Option<ScopeIn>,
    response: Option<ResponseSettingsV1>,
    /// `manual`, `once:<RFC3339>`, `every:<N>m|h`, `daily:HH:MM`, `agent-start`.
    schedule: Option<String>,
    /// Live monitoring after the scan, in seconds: 0 is off, at most 24 h.
    monitor_seconds: Option<u64>,
    targets: Option<TargetsV1>,
}

fn settings_of(v: Option<Value>) -> Result<TaskSettings> {
    match v {
        None => Ok(TaskSettings::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| ConsoleError::Invalid(format!("task settings: {e}"))),
    }
}

fn check_paths(what: &str, paths: &[String], absolute: bool) -> Result<()> {
    if paths.len() > MAX_PATHS {
        return Err(ConsoleError::Invalid(format!("at most {MAX_PATHS} {what}")));
    }
    for p in paths {
        if p.is_empty() || p.chars().count() > MAX_PATH_CHARS || p.chars().any(char::is_control) {
            return Err(ConsoleError::Invalid(format!("{what}: {p:?} is empty, too long or has control characters")));
        }
        if absolute && !p.starts_with('/') {
            return Err(ConsoleError::Invalid(format!("{what}: {p:?} is not an absolute path")));
        }
        if !absolute {
            globset::Glob::new(p).map_err(|e| ConsoleError::Invalid(format!("{what}: {p:?}: {e}")))?;
        }
    }
    Ok(())
}

impl TaskSettings {
    /// Applies the settings to `task` (checking them).
    fn apply(&self, task: &mut TaskRecordV1) -> Result<()> {
        if let Some(n) = &self.name {
            task.name = n.trim().to_string();
        }
        if let Some(d) = &self.description {
            task.description = d.clone();
        }
        if let Some(s) = &self.scope {
            if let Some(v) = s.critical_areas {
                task.scope.critical_areas = v;
            }
            if let Some(v) = s.ioc_paths {
                task.scope.ioc_paths = v;
            }
            if let Some(v) = &s.custom_paths {
                check_paths("custom paths", v, true)?;
                task.scope.custom_paths = v.clone();
            }
            if let Some(v) = &s.excludes {
                check_paths("exclusions", v, false)?;
                task.scope.excludes = v.clone();
            }
        }
        if let Some(r) = &self.response {
            if r.actions.len() > 16 {
                return Err(ConsoleError::Invalid("at most 16 response actions".into()));
            }
            task.response = r.clone();
        }
        if let Some(s) = &self.schedule {
            task.schedule = s.parse::<Schedule>().map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        }
        if let Some(s) = self.monitor_seconds {
            task.monitor_seconds = monitor_seconds(s).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        }
        if task.name.is_empty() || task.name.chars().count() > 200 {
            return Err(ConsoleError::Invalid("the task name must be 1 to 200 characters".into()));
        }
        if task.description.len() > 64 << 10 {
            return Err(ConsoleError::Invalid("the description is longer than 64 KiB".into()));
        }
        Ok(())
    }
}

/// A task with its current collection and targets.
fn task_json(store: &Store, t: &TaskRecordV1) -> Result<Value> {
    let c = store.collection(t.id, t.collection_version).ok();
    let targets = fleet::targets(store, t.id)?;
    Ok(view::task(t, c.as_ref(), &targets))
}

pub async fn list(State(state): State<AppState>, _: CurrentUser) -> Result<Json<Value>> {
    let tasks = state
        .db(|s| {
            let mut out = Vec::new();
            for t in s.tasks()? {
                out.push(task_json(s, &t)?);
            }
            Ok(out)
        })
        .await?;
    Ok(Json(json!({ "tasks": tasks })))
}

#[derive(Deserialize, Default)]
pub struct VersionQuery {
    version: Option<u32>,
}

/// `GET /api/v1/tasks/{id}`: the task, its files and its indicators.
pub async fn show(
    State(state): State<AppState>,
    _: CurrentUser,
    Path(id): Path<u64>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Value>> {
    let v = state
        .db(move |s| {
            let t = s.task(id)?.ok_or_else(|| ConsoleError::not_found(format_args!("task with id {id}")))?;
            let version = q.version.unwrap_or(t.collection_version);
            let c = s.collection(id, version)?;
            let mut v = task_json(s, &t)?;
            v["versions"] = json!(s.collection_versions(id)?);
            v["shown_version"] = json!(version);
            v["files"] = json!(c
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"index": i, "name": f.name, "sha256": f.sha256, "size": f.size}))
                .collect::<Vec<_>>());
            v["indicators"] = json!(c.iocs.iter().map(view::ioc).collect::<Vec<_>>());
            Ok(v)
        })
        .await?;
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
pub struct CreateQuery {
    /// Store the files that load and leave out those that do not.
    #[serde(default)]
    skip_invalid: bool,
}

/// `POST /api/v1/iocs/preview`: parses uploaded files and returns the
/// indicators, without saving anything.
pub async fn preview(State(state): State<AppState>, _: CurrentUser, multipart: Multipart) -> Result<Json<Value>> {
    let up = upload::read(multipart, &state.config.uploads).await?;
    if up.files.is_empty() {
        return Err(ConsoleError::Invalid("no IOC file in the upload".into()));
    }
    let v = tokio::task::spawn_blocking(move || upload::preview(&upload::parse_all(&up.files)))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    Ok(Json(v))
}

/// `POST /api/v1/tasks` (multipart): IOC files plus a `task` JSON part.
pub async fn create(
    State(state): State<AppState>,
    _: CurrentUser,
    Query(q): Query<CreateQuery>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Value>)> {
    let up = upload::read(multipart, &state.config.uploads).await?;
    let settings = settings_of(up.task)?;
    if up.files.is_empty() {
        return Err(ConsoleError::Invalid("a task needs at least one IOC file".into()));
    }
    let mut task = TaskRecordV1 {
        id: 0,
        name: String::new(),
        description: String::new(),
        collection_version: 1,
        scope: ScopeV1 { critical_areas: true, ioc_paths: true, custom_paths: Vec::new(), excludes: Vec::new() },
        response: ResponseSettingsV1::default(),
        schedule: Schedule::Manual,
        monitor_seconds: None,
        created_at: 0,
        updated_at: 0,
    };
    settings.apply(&mut task)?;
    let targets = settings.targets.clone().unwrap_or_default();
    let files = up.files;
    let skip = q.skip_invalid;
    let v = state
        .db(move |s| {
            let (collection, report) = upload::into_collection(files, skip)?;
            let created = s.create_task(NewTask {
                name: task.name,
                description: task.description,
                collection,
                scope: task.scope,
                response: task.response,
                schedule: task.schedule,
                monitor_seconds: task.monitor_seconds,
            })?;
            fleet::set_targets(s, created.id, &targets)?;
            let mut v = task_json(s, &created)?;
            v["upload"] = Value::Array(report);
            Ok(v)
        })
        .await?;
    state.jobs_changed.notify_waiters();
    Ok((StatusCode::CREATED, Json(v)))
}

/// `PATCH /api/v1/tasks/{id}`: JSON settings, or multipart with new IOC
/// files (a new collection version) and optional settings.
pub async fn edit(
    State(state): State<AppState>,
    _: CurrentUser,
    Path(id): Path<u64>,
    Query(q): Query<CreateQuery>,
    request: Request,
) -> Result<Json<Value>> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (settings, files) = if is_multipart {
        let mp = Multipart::from_request(request, &state).await.map_err(|e| ConsoleError::Invalid(e.body_text()))?;
        let up = upload::read(mp, &state.config.uploads).await?;
        (settings_of(up.task)?, Some(up.files).filter(|f| !f.is_empty()))
    } else {
        let JsonBody(v) = JsonBody::<Value>::from_request(request, &state).await?;
        (settings_of(Some(v))?, None)
    };
    let skip = q.skip_invalid;
    let v = state
        .db(move |s| {
            let collection: Option<NewCollection> = match files {
                Some(f) => Some(upload::into_collection(f, skip)?.0),
                None => None,
            };
            let before = s.task(id)?.ok_or_else(|| ConsoleError::not_found(format_args!("task with id {id}")))?;
            let mut checked = before.clone();
            settings.apply(&mut checked)?;
            let task = s.edit_task(id, collection, |t| {
                t.name = checked.name.clone();
                t.description = checked.description.clone();
                t.scope = checked.scope.clone();
                t.response = checked.response.clone();
                t.schedule = checked.schedule;
                t.monitor_seconds = checked.monitor_seconds;
            })?;
            if let Some(targets) = &settings.targets {
                fleet::set_targets(s, id, targets)?;
            }
            if task.schedule != before.schedule || settings.targets.is_some() {
                fleet::reset_schedule(s, id)?;
            }
            task_json(s, &task)
        })
        .await?;
    state.jobs_changed.notify_waiters();
    Ok(Json(v))
}

/// `DELETE /api/v1/tasks/{id}`: the task goes, its open jobs are cancelled,
/// its results stay.
pub async fn remove(State(state): State<AppState>, _: CurrentUser, Path(id): Path<u64>) -> Result<StatusCode> {
    state
        .db(move |s| {
            s.delete_task(id)?;
            fleet::cancel_task_jobs(s, id)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/tasks/{id}/schedule`: `{"schedule": ..., "targets": ...}`.
pub async fn schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<u64>,
    Query(q): Query<CreateQuery>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let allowed = body.as_object().is_some_and(|o| o.keys().all(|k| k == "schedule" || k == "targets"));
    if !allowed {
        return Err(ConsoleError::Invalid("send {\"schedule\": ..., \"targets\": ...}".into()));
    }
    let request = Request::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    edit(State(state), user, Path(id), Query(q), request).await
}

/// Where to run a task now.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RunTarget {
    #[serde(default)]
    all: bool,
    group: Option<u64>,
    #[serde(default)]
    devices: Vec<u64>,
}

/// `POST /api/v1/tasks/{id}/run`: one job per device (`all`, a `group`, `devices`).
pub async fn run(
    State(state): State<AppState>,
    _: CurrentUser,
    Path(id): Path<u64>,
    JsonBody(target): JsonBody<RunTarget>,
) -> Result<(StatusCode, Json<Value>)> {
    let jobs = state
        .db(move |s| {
            let targets =
                TargetsV1 { all: target.all, groups: target.group.into_iter().collect(), devices: target.devices };
            let mut ids: Vec<u64> = fleet::resolve_targets(s, &targets)?.iter().map(|d| d.id).collect();
            // Named devices that do not exist are an error, not silently skipped.
            for d in &targets.devices {
                if !ids.contains(d) {
                    ids.push(*d);
                }
            }
            if ids.is_empty() {
                return Err(ConsoleError::Invalid(
                    "no device to run on (give all, a group with devices, or devices)".into(),
                ));
            }
            fleet::dispatch(s, id, &ids, RunTrigger::Manual, None)
        })
        .await?;
    state.jobs_changed.notify_waiters();
    Ok((StatusCode::CREATED, Json(json!({ "jobs": jobs.iter().map(|j| view::job(j, None)).collect::<Vec<_>>() }))))
}

#[derive(Deserialize, Default)]
pub struct JobsQuery {
    task: Option<u64>,
    #[serde(default)]
    open: bool,
    limit: Option<usize>,
}

/// `GET /api/v1/jobs`: runs asked of devices, newest first.
pub async fn jobs(State(state): State<AppState>, _: CurrentUser, Query(q): Query<JobsQuery>) -> Result<Json<Value>> {
    let (jobs, devices) = state
        .db(move |s| Ok((fleet::jobs(s, q.task, q.open, q.limit.unwrap_or(500).min(10_000))?, fleet::devices(s)?)))
        .await?;
    let list: Vec<Value> = jobs
        .iter()
        .map(|j| view::job(j, devices.iter().find(|d| d.id == j.device_id).map(|d| d.name.as_str())))
        .collect();
    Ok(Json(json!({ "jobs": list })))
}

/// `filename="..."` (ASCII stand-in) and `filename*=UTF-8''...` (exact) for Content-Disposition.
fn disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-+".contains(c) { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn download(name: &str, content_type: &'static str, bytes: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition(name))],
        Body::from(bytes),
    )
        .into_response()
}

/// The collection version a download asks for, else the task's current one.
fn requested_collection(s: &Store, id: u64, version: Option<u32>) -> Result<CollectionRecordV1> {
    let version = match version {
        Some(v) => v,
        None => s.task(id)?.ok_or_else(|| ConsoleError::not_found(format_args!("task with id {id}")))?.collection_version,
    };
    Ok(s.collection(id, version)?)
}

/// `GET /api/v1/tasks/{id}/files/{index}`: one IOC file, byte for byte as uploaded.
pub async fn file(
    State(state): State<AppState>,
    _: CurrentUser,
    Path((id, index)): Path<(u64, usize)>,
    Query(q): Query<VersionQuery>,
) -> Result<Response> {
    let (name, bytes) = state
        .db(move |s| {
            let c = requested_collection(s, id, q.version)?;
            let f =
                c.files.get(index).ok_or_else(|| ConsoleError::not_found(format_args!("file {index} in task {id}")))?;
            let bytes =
                s.ioc_file_bytes(&f.sha256)?.ok_or_else(|| ConsoleError::Internal("file bytes missing".into()))?;
            Ok((f.name.clone(), bytes))
        })
        .await?;
    Ok(download(&name, "application/octet-stream", bytes))
}

/// `GET /api/v1/tasks/{id}/export`: the IOC files of a collection version in a zip.
pub async fn export(
    State(state): State<AppState>,
    _: CurrentUser,
    Path(id): Path<u64>,
    Query(q): Query<VersionQuery>,
) -> Result<Response> {
    let (name, zip) = state
        .db(move |s| {
            let c = requested_collection(s, id, q.version)?;
            let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for f in &c.files {
                let bytes =
                    s.ioc_file_bytes(&f.sha256)?.ok_or_else(|| ConsoleError::Internal("file bytes missing".into()))?;
                // Stored names are bare names already; a zip entry must never name a folder.
                let entry = upload::clean_file_name(&f.name).unwrap_or_else(|_| format!("file-{}.ioc", f.sha256));
                writer.start_file(entry, options).map_err(|e| ConsoleError::Internal(e.to_string()))?;
                writer.write_all(&bytes).map_err(|e| ConsoleError::Internal(e.to_string()))?;
            }
            let cursor = writer.finish().map_err(|e| ConsoleError::Internal(e.to_string()))?;
            Ok((format!("task-{id}-v{}.zip", c.version), cursor.into_inner()))
        })
        .await?;
    Ok(download(&name, "application/zip", zip))
}
