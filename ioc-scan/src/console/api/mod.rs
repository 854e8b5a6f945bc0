//! The routes: the page, `/api/v1` for people and scripts, `/api/v1/agent`
//! for devices. docs/api.md describes each. [`routes`] is the one table of
//! the API's routes and who may call each: the router is built from it.

mod agent;
mod devices;
mod isolation;
mod results;
mod session;
mod tasks;

use super::auth::require_role;
use super::error::ConsoleError;
use super::tables::Role;
use super::{web, AppState};
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::Method;
use axum::routing::{get, MethodFilter, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;

/// Most bytes of a JSON request body (results uploads have their own limit).
const MAX_JSON_BODY: usize = 1 << 20;
/// Most bytes of one uploaded run (its detections).
pub const MAX_RESULT_BODY: usize = 64 << 20;
/// Most bytes of a sign-in body: a name of 256 bytes and a password of
/// 1024, each escaped as `\uXXXX` (6 bytes a byte), and room to spare.
const MAX_SIGN_IN_BODY: usize = 16 << 10;

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
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
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

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (signing in).
    Anyone,
    /// A person (session or API token) with at least this role; checked by
    /// the route's [`require_role`] layer before anything else runs.
    Person(Role),
    /// A device with its device token (the route's [`CurrentDevice`]).
    ///
    /// [`CurrentDevice`]: crate::console::auth::CurrentDevice
    Device,
    /// An enrollment token (the route's [`Enrollment`]).
    ///
    /// [`Enrollment`]: crate::console::auth::Enrollment
    Enrollment,
}

/// One route of `/api/v1`: method, path (axum's syntax) and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// A route with its handler and its body limit (bytes; none: [`MAX_JSON_BODY`]).
struct RouteEntry {
    route: ApiRoute,
    handler: MethodRouter<AppState>,
    body_limit: Option<usize>,
}

const VIEWER: Access = Access::Person(Role::Viewer);
const ANALYST: Access = Access::Person(Role::Analyst);
const ADMIN: Access = Access::Person(Role::Admin);

/// `METHOD "path" ACCESS => handler [, limit BYTES];` rows: the one list
/// the router is built from, so that [`routes`] is exactly what it serves.
macro_rules! route_table {
    ($($method:ident $path:literal $access:expr => $handler:expr $(, limit $limit:expr)?;)*) => {
        vec![$(RouteEntry {
            route: ApiRoute { method: Method::$method, path: $path, access: $access },
            handler: axum::routing::on(MethodFilter::$method, $handler),
            body_limit: None $(.or(Some($limit)))?,
        }),*]
    };
}

/// Every route of `/api/v1`. docs/api.md has a row for each; the API tests
/// try each with every kind of caller.
fn route_table(upload_limit: usize, result_limit: usize) -> Vec<RouteEntry> {
    route_table! {
        POST "/session" Access::Anyone => session::sign_in, limit MAX_SIGN_IN_BODY;
        GET "/session" VIEWER => session::me;
        DELETE "/session" VIEWER => session::sign_out;
        GET "/users" ADMIN => session::list_users;
        POST "/users" ADMIN => session::create_user;
        PATCH "/users/{id}" ADMIN => session::update_user;
        DELETE "/users/{id}" ADMIN => session::delete_user;
        // One's own password (with the old one), or anyone's by an administrator.
        PUT "/users/{id}/password" VIEWER => session::set_password;
        // One's own tokens; an administrator sees and revokes all.
        GET "/tokens" VIEWER => session::list_tokens;
        POST "/tokens" VIEWER => session::create_token;
        DELETE "/tokens/{id}" VIEWER => session::revoke_token;
        GET "/enrollment-tokens" ADMIN => session::list_tokens;
        POST "/enrollment-tokens" ADMIN => session::create_enrollment_token;
        GET "/devices" VIEWER => devices::list;
        POST "/devices/enroll" Access::Enrollment => devices::enroll;
        GET "/devices/{id}" VIEWER => devices::show;
        PATCH "/devices/{id}" ADMIN => devices::update;
        DELETE "/devices/{id}" ADMIN => devices::remove;
        GET "/groups" VIEWER => devices::list_groups;
        POST "/groups" ADMIN => devices::create_group;
        PATCH "/groups/{id}" ADMIN => devices::update_group;
        DELETE "/groups/{id}" ADMIN => devices::delete_group;
        POST "/iocs/preview" ANALYST => tasks::preview, limit upload_limit;
        GET "/tasks" VIEWER => tasks::list;
        POST "/tasks" ANALYST => tasks::create, limit upload_limit;
        GET "/tasks/{id}" VIEWER => tasks::show;
        PATCH "/tasks/{id}" ANALYST => tasks::edit, limit upload_limit;
        DELETE "/tasks/{id}" ANALYST => tasks::remove;
        GET "/tasks/{id}/export" VIEWER => tasks::export;
        GET "/tasks/{id}/files/{index}" VIEWER => tasks::file;
        POST "/tasks/{id}/run" ANALYST => tasks::run;
        PUT "/tasks/{id}/schedule" ANALYST => tasks::schedule;
        GET "/jobs" VIEWER => tasks::jobs;
        GET "/results" VIEWER => results::list;
        GET "/results/{id}" VIEWER => results::show;
        GET "/agent/jobs" Access::Device => agent::jobs;
        POST "/agent/results" Access::Device => agent::upload, limit result_limit;
        POST "/devices/{id}/lift-isolation" ANALYST => isolation::lift;
        GET "/devices/{id}/commands" VIEWER => isolation::list;
        POST "/agent/commands/{id}" Access::Device => isolation::report;
    }
}

/// Every route of `/api/v1` and who may call it.
pub fn routes() -> Vec<ApiRoute> {
    route_table(0, 0).into_iter().map(|e| e.route).collect()
}

pub fn router(state: AppState) -> Router {
    let upload_limit = state.config.uploads.max_collection_bytes + (1 << 20);
    let mut api = Router::new();
    for RouteEntry { route, mut handler, body_limit } in route_table(upload_limit, state.config.uploads.max_result_bytes) {
        if let Some(limit) = body_limit {
            handler = handler.layer(DefaultBodyLimit::max(limit));
        }
        if let Access::Person(role) = route.access {
            handler = handler.route_layer(axum::middleware::from_fn_with_state((state.clone(), role), require_role));
        }
        // Rows of one path merge into one method router (axum panics on a
        // method given twice).
        api = api.route(route.path, handler);
    }
    let api = api
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The word of docs/api.md's "who" column for `access`.
    fn who(access: Access) -> &'static str {
        match access {
            Access::Anyone => "anyone",
            Access::Person(role) => role.as_str(),
            Access::Device => "device",
            Access::Enrollment => "enrollment",
        }
    }

    /// The (method, path, who) of each route row of docs/api.md.
    fn documented() -> Vec<(String, String, String)> {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"));
        let mut rows = Vec::new();
        for line in doc.lines() {
            let Some(rest) = line.strip_prefix("| `") else { continue };
            let Some((method, rest)) = rest.split_once(' ') else { continue };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
                continue;
            }
            let path: String = rest.chars().take_while(|c| !matches!(c, '`' | '[' | '?' | ' ')).collect();
            let cells: Vec<&str> = line.split(" | ").collect();
            rows.push((method.to_string(), path, cells.get(1).map(|c| c.trim().to_string()).unwrap_or_default()));
        }
        rows
    }

    #[test]
    fn docs_api_md_has_one_row_per_route_with_who_may_call_it() {
        let mut documented = documented();
        documented.sort();
        let mut routed: Vec<(String, String, String)> = routes()
            .into_iter()
            .map(|r| (r.method.to_string(), r.path.to_string(), who(r.access).to_string()))
            .collect();
        routed.sort();
        assert_eq!(documented, routed);
    }

    #[test]
    fn the_router_builds_from_the_table() {
        // axum panics on a method given twice for one path.
        let _ =
            route_table(1 << 20, 1 << 20).into_iter().fold(Router::<AppState>::new(), |r, e| r.route(e.route.path, e.handler));
    }
}
