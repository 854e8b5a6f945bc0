//! The routes: the page, `/api/v1` for people and scripts, `/api/v1/agent`
//! for devices. docs/api.md describes each.

mod agent;
mod devices;
mod isolation;
mod results;
mod session;
mod tasks;

use super::error::ConsoleError;
use super::{web, AppState};
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;

/// Most bytes of a JSON request body (results uploads have their own limit).
const MAX_JSON_BODY: usize = 1 << 20;
/// Most bytes of one uploaded run (its detections).
pub const MAX_RESULT_BODY: usize = 64 << 20;

/// A JSON body whose errors are answered as JSON (400).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ConsoleError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ConsoleError::TooLarge(e.body_text()))
            }
            Err(e) => Err(ConsoleError::Invalid(e.body_text())),
        }
    }
}

/// Parses an optional time given as RFC 3339 or milliseconds since the epoch.
pub(crate) fn parse_time(what: &str, s: Option<&str>) -> Result<Option<i64>, ConsoleError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(Some(ms));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.timestamp_millis()));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis());
        return Ok(t);
    }
    Err(ConsoleError::Invalid(format!("{what}: expected an RFC 3339 time, a date (YYYY-MM-DD) or milliseconds")))
}

pub fn router(state: AppState) -> Router {
    let upload_limit = state.config.uploads.max_collection_bytes + (1 << 20);
    let api = Router::new()
        .route("/session", post(session::sign_in).get(session::me).delete(session::sign_out))
        .route("/users", get(session::list_users).post(session::create_user))
        .route("/users/{id}/password", put(session::set_password))
        .route("/tokens", get(session::list_tokens).post(session::create_token))
        .route("/tokens/{id}", delete(session::revoke_token))
        .route("/enrollment-tokens", get(session::list_tokens).post(session::create_enrollment_token))
        .route("/devices", get(devices::list))
        .route("/devices/enroll", post(devices::enroll))
        .route("/devices/{id}", get(devices::show).patch(devices::update).delete(devices::remove))
        .route("/groups", get(devices::list_groups).post(devices::create_group))
        .route("/groups/{id}", axum::routing::patch(devices::update_group).delete(devices::delete_group))
        .route("/iocs/preview", post(tasks::preview).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/tasks", get(tasks::list).post(tasks::create).layer(DefaultBodyLimit::max(upload_limit)))
        .route(
            "/tasks/{id}",
            get(tasks::show).patch(tasks::edit).delete(tasks::remove).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/tasks/{id}/export", get(tasks::export))
        .route("/tasks/{id}/files/{index}", get(tasks::file))
        .route("/tasks/{id}/run", post(tasks::run))
        .route("/tasks/{id}/schedule", put(tasks::schedule))
        .route("/jobs", get(tasks::jobs))
        .route("/results", get(results::list))
        .route("/results/{id}", get(results::show))
        .route("/agent/jobs", get(agent::jobs))
        .route("/devices/{id}/lift-isolation", post(isolation::lift))
        .route("/devices/{id}/commands", get(isolation::list))
        .route("/agent/commands/{id}", post(isolation::report))
        .route("/agent/results", post(agent::upload).layer(DefaultBodyLimit::max(state.config.uploads.max_result_bytes)))
        .fallback(|| async { ConsoleError::NotFound("no such API route".into()) })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    Router::new()
        .route("/", get(web::index))
        .route("/login", get(web::login))
        .route("/assets/app.js", get(web::app_js))
        .route("/assets/login.js", get(web::login_js))
        .route("/assets/app.css", get(web::app_css))
        .route("/assets/icon.svg", get(web::icon))
        .route("/favicon.ico", get(web::icon))
        .nest("/api/v1", api)
        .layer(axum::middleware::from_fn_with_state(state.clone(), web::security_headers))
        .with_state(state)
}
