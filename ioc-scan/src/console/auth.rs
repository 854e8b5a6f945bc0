//! Who is asking: a person (session cookie, or their API token), a device
//! (its device token) or an enrolling device (an enrollment token). Each is
//! an axum extractor that answers 401 when credentials are missing or wrong,
//! and 429 once an address or user name has failed too often.
//!
//! Cookies are `HttpOnly; SameSite=Strict` (plus `Secure` over TLS); a
//! cookie-authenticated request that changes something must also carry the
//! `X-IOC-Scan-CSRF` header, which a cross-site form cannot send.

use super::accounts;
use super::error::{ConsoleError, Result};
use super::tables::{DeviceRecordV1, TokenKindV1, UserRecordV1};
use super::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts, Method};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "ioc_scan_session";
pub const CSRF_HEADER: &str = "x-ioc-scan-csrf";

/// Failures counted per key over a window; past `max`, refused until the window ends.
#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter { max, window, entries: Mutex::new(HashMap::new()) }
    }

    /// Refuses (with the seconds to wait) a key that failed `max` times in the window.
    pub fn check(&self, key: &str) -> Result<()> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((start, n)) = entries.get(key) {
            let age = start.elapsed();
            if age < self.window && *n >= self.max {
                let retry_after_secs = (self.window - age).as_secs().max(1);
                return Err(ConsoleError::RateLimited { retry_after_secs });
            }
        }
        Ok(())
    }

    pub fn fail(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            // Bounded memory: forget windows that are over.
            let window = self.window;
            entries.retain(|_, (start, _)| start.elapsed() < window);
        }
        let now = Instant::now();
        let e = entries.entry(key.to_string()).or_insert((now, 0));
        if e.0.elapsed() >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    pub fn clear(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The address the request came from.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of the session cookie, if sent.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == SESSION_COOKIE && !v.is_empty() {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

/// Looks a bearer token up, counting failures per address.
async fn token_of(state: &AppState, parts: &Parts, secret: &str) -> Result<super::tables::TokenRecordV1> {
    let key = format!("token-ip:{}", client_ip(parts).map(|i| i.to_string()).unwrap_or_default());
    state.limits.tokens.check(&key)?;
    let secret = secret.to_string();
    let found = state.db(move |s| accounts::lookup_token(s, &secret)).await?;
    match found {
        Some(t) => Ok(t),
        None => {
            state.limits.tokens.fail(&key);
            Err(ConsoleError::Unauthorized)
        }
    }
}

/// A signed-in person (session cookie or API token).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: UserRecordV1,
    /// Signed in with a cookie (not a token).
    pub session: Option<String>,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(secret) = bearer(parts) {
            let token = token_of(state, parts, secret).await?;
            let TokenKindV1::Api { user_id } = token.kind else {
                return Err(ConsoleError::Forbidden("this token is not a user's API token".into()));
            };
            let user = state.db(move |s| accounts::user(s, user_id)).await?.ok_or(ConsoleError::Unauthorized)?;
            return Ok(CurrentUser { user, session: None });
        }
        let Some(cookie) = session_cookie(&parts.headers) else { return Err(ConsoleError::Unauthorized) };
        if !matches!(parts.method, Method::GET | Method::HEAD) && !parts.headers.contains_key(CSRF_HEADER) {
            return Err(ConsoleError::Forbidden(format!("missing the {CSRF_HEADER} header")));
        }
        let c = cookie.clone();
        let user = state.db(move |s| accounts::session_user(s, &c)).await?.ok_or(ConsoleError::Unauthorized)?;
        Ok(CurrentUser { user, session: Some(cookie) })
    }
}

/// An enrolled device (its device token).
#[derive(Debug, Clone)]
pub struct CurrentDevice(pub DeviceRecordV1);

impl FromRequestParts<AppState> for CurrentDevice {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let secret = bearer(parts).ok_or(ConsoleError::Unauthorized)?;
        let hash = accounts::secret_hash(secret);
        if let Some(device) = state.devices_by_token.get(&hash) {
            state.seen(device.id);
            return Ok(CurrentDevice(device));
        }
        // Taken before reading: a device removed while this reads is not cached again.
        let generation = state.devices_by_token.generation();
        let token = token_of(state, parts, secret).await?;
        let TokenKindV1::Device { device_id } = token.kind else {
            return Err(ConsoleError::Forbidden("this route is for devices (a device token)".into()));
        };
        let device = state
            .db(move |s| super::fleet::device(s, device_id))
            .await?
            .filter(|d| d.token_hash == hash)
            .ok_or(ConsoleError::Unauthorized)?;
        state.devices_by_token.insert(generation, device.token_hash.clone(), device.clone());
        state.seen(device.id);
        Ok(CurrentDevice(device))
    }
}

/// An enrollment token: the sha256 of the secret presented.
#[derive(Debug, Clone)]
pub struct Enrollment(pub String);

impl FromRequestParts<AppState> for Enrollment {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let secret = bearer(parts).ok_or(ConsoleError::Unauthorized)?.to_string();
        let token = token_of(state, parts, &secret).await?;
        match token.kind {
            TokenKindV1::Enrollment { .. } => Ok(Enrollment(accounts::secret_hash(&secret))),
            _ => Err(ConsoleError::Forbidden("enrolling takes an enrollment token".into())),
        }
    }
}

/// The `Set-Cookie` value of a session (empty value and `Max-Age=0` to end it).
pub fn session_set_cookie(value: Option<&str>, secure: bool, max_age_secs: i64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{SESSION_COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}
