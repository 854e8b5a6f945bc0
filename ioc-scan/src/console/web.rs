//! The web page: plain HTML, JavaScript and CSS files embedded in the
//! binary (no build step, nothing fetched from elsewhere), and the security
//! headers every response carries.

use super::auth::{session_cookie, CurrentUser};
use super::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

const INDEX_HTML: &str = include_str!("web/index.html");
const LOGIN_HTML: &str = include_str!("web/login.html");
const APP_JS: &str = include_str!("web/app.js");
const LOGIN_JS: &str = include_str!("web/login.js");
const APP_CSS: &str = include_str!("web/app.css");
const ICON_SVG: &str = include_str!("web/icon.svg");

/// The Content-Security-Policy of every response: only this origin's
/// scripts and styles, no plugins, no framing, no `<base>` tricks.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Adds the security headers to every response.
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    if is_api || !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.tls {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response()
}

/// Whether the request has a session (looked up like the API's: wrong
/// cookies count against the address).
async fn signed_in(state: &AppState, request: Request) -> bool {
    let (mut parts, _) = request.into_parts();
    session_cookie(&parts.headers).is_some() && CurrentUser::from_request_parts(&mut parts, state).await.is_ok()
}

/// `/`: the application (signed-in people only; others go to `/login`).
pub async fn index(State(state): State<AppState>, request: Request) -> Response {
    if !signed_in(&state, request).await {
        return Redirect::to("/login").into_response();
    }
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `/assets/app.js`: the application's script (signed-in people only).
pub async fn app_js(State(state): State<AppState>, request: Request) -> Response {
    if !signed_in(&state, request).await {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn login() -> Response {
    asset("text/html; charset=utf-8", LOGIN_HTML)
}

pub async fn login_js() -> Response {
    asset("text/javascript; charset=utf-8", LOGIN_JS)
}

pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub async fn icon() -> Response {
    asset("image/svg+xml", ICON_SVG)
}
