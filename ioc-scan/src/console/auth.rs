//! Who is asking: a person (session cookie, or their API token), a device
//! (its device token) or an enrolling device (an enrollment token). Each is
//! an axum extractor that answers 401 when credentials are missing or wrong,
//! and 429 once an address (or a user name from that address) has failed
//! too often. [`require_role`] is the layer that lets a person through only
//! with the role a route needs (403 otherwise).
//!
//! Password attempts are counted before they are verified
//! ([`AttemptLimiter::reserve`]): however many guesses arrive at once, at most
//! the limit reach argon2. Wrong tokens and session cookies are counted per
//! address too, checked before the lookup. Every limiter map is a bounded LRU,
//! whatever the number of addresses or names it is fed.
//!
//! Cookies are `HttpOnly; SameSite=Strict` (plus `Secure` over TLS); a
//! cookie-authenticated request that changes something must also carry the
//! `X-IOC-Scan-CSRF` header, which a cross-site form cannot send.

use super::accounts;
use super::error::{ConsoleError, Result};
use super::tables::{DeviceRecordV1, Role, TokenKindV1, UserRecordV1};
use super::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lru::LruCache;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "ioc_scan_session";
pub const CSRF_HEADER: &str = "x-ioc-scan-csrf";

/// Longest user name a sign-in may give, in bytes: longer ones are refused
/// before they are looked up, counted or hashed (names are at most 64
/// characters, so 256 bytes).
pub const MAX_USER_NAME_BYTES: usize = 256;

/// Keys a limiter remembers at most; past that the least recently used goes.
pub const LIMITER_CAPACITY: usize = 65_536;

/// Attempts per key over a window, taken before the attempt is verified;
/// past `max` in the window, refused until the window ends. A key's window
/// starts at its first attempt.
#[derive(Debug)]
pub struct AttemptLimiter {
    max: u32,
    window: Duration,
    entries: Mutex<LruCache<String, AttemptWindow>>,
}

#[derive(Debug, Clone, Copy)]
struct AttemptWindow {
    start: Instant,
    used: u32,
}

impl AttemptLimiter {
    pub fn new(max: u32, window: Duration, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        AttemptLimiter { max, window, entries: Mutex::new(LruCache::new(capacity)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, AttemptWindow>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one attempt of `key`, or refuses (with the seconds to wait) a
    /// key whose attempts in the window are spent. Call it before verifying;
    /// [`refund`](Self::refund) the attempt if it succeeds.
    pub fn reserve(&self, key: &str) -> Result<()> {
        let mut entries = self.lock();
        let now = Instant::now();
        // `get` (not `peek`): a key refused stays the most recently used.
        if let Some(w) = entries.get(key) {
            self.refuse_if_spent(w, now)?;
        }
        self.count(&mut entries, key, now);
        Ok(())
    }

    /// Refuses (with the seconds to wait) a window whose attempts are spent.
    fn refuse_if_spent(&self, w: &AttemptWindow, now: Instant) -> Result<()> {
        let age = now.duration_since(w.start);
        if age < self.window && w.used >= self.max {
            return Err(ConsoleError::RateLimited { retry_after_secs: (self.window - age).as_secs().max(1) });
        }
        Ok(())
    }

    /// Counts one attempt of `key`: in its window, or starting a new one
    /// when the last has ended.
    fn count(&self, entries: &mut LruCache<String, AttemptWindow>, key: &str, now: Instant) {
        match entries.get_mut(key) {
            Some(w) if now.duration_since(w.start) < self.window => w.used = w.used.saturating_add(1),
            Some(w) => *w = AttemptWindow { start: now, used: 1 },
            None => {
                entries.push(key.to_string(), AttemptWindow { start: now, used: 1 });
            }
        }
    }

    /// Refuses a key whose attempts in the window are spent, taking none.
    /// For cheap checks of unguessable secrets only (tokens, cookies);
    /// passwords are [`reserve`](Self::reserve)d.
    pub fn check(&self, key: &str) -> Result<()> {
        match self.lock().peek(key) {
            Some(w) => self.refuse_if_spent(w, Instant::now()),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt of `key` (after a [`check`](Self::check)).
    pub fn fail(&self, key: &str) {
        self.count(&mut self.lock(), key, Instant::now());
    }

    /// Gives back an attempt that succeeded.
    pub fn refund(&self, key: &str) {
        if let Some(w) = self.lock().peek_mut(key) {
            w.used = w.used.saturating_sub(1);
        }
    }

    /// Forgets a key (its owner proved who they are).
    pub fn clear(&self, key: &str) {
        self.lock().pop(key);
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an address is limited as: IPv4 addresses one by one, IPv6 by /64
/// (one host usually holds a whole /64, so counting its addresses one by one
/// would count nothing).
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip.map(|i| i.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => String::new(),
    }
}

/// One password attempt of `name` from an address, reserved in both sign-in
/// limiters (per address, per user name and address) before the password is
/// verified. Dropped as is, it stays counted (a failure); [`succeeded`]
/// gives it back.
///
/// [`succeeded`]: PasswordAttempt::succeeded
pub struct PasswordAttempt<'a> {
    state: &'a AppState,
    address: String,
    user_key: String,
}

impl<'a> PasswordAttempt<'a> {
    /// Refuses names over [`MAX_USER_NAME_BYTES`] and passwords over
    /// [`accounts::MAX_PASSWORD_BYTES`] (400, nothing counted), then reserves.
    pub fn reserve(state: &'a AppState, ip: Option<IpAddr>, name: &str, password: &str) -> Result<Self> {
        if name.len() > MAX_USER_NAME_BYTES {
            return Err(ConsoleError::Invalid(format!("a user name has at most {MAX_USER_NAME_BYTES} bytes")));
        }
        if password.len() > accounts::MAX_PASSWORD_BYTES {
            return Err(ConsoleError::Invalid(format!(
                "a password has at most {} bytes",
                accounts::MAX_PASSWORD_BYTES
            )));
        }
        let address = address_key(ip);
        // The name last: it is the only part of unbounded charset.
        let user_key = format!("{address} {name}");
        let limits = &state.limits;
        limits.signin_ip.reserve(&address)?;
        if let Err(e) = limits.signin_user.reserve(&user_key) {
            limits.signin_ip.refund(&address);
            return Err(e);
        }
        Ok(PasswordAttempt { state, address, user_key })
    }

    /// The password was right: the attempt does not count.
    pub fn succeeded(self) {
        self.state.limits.signin_user.clear(&self.user_key);
        self.state.limits.signin_ip.refund(&self.address);
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

/// Looks a presented secret (bearer token, session cookie) up with `find`:
/// refused at once from an address whose wrong secrets are spent, a wrong
/// one counted. Unlike passwords these are not reserved before the lookup:
/// the lookup is a hash and one read, the secrets have 256 random bits (the
/// few extra guesses a burst in flight gets change nothing), and counting
/// attempts in flight would refuse a fleet behind one address that
/// reconnects at once.
async fn counted_lookup<T, F>(state: &AppState, parts: &Parts, find: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&crate::store::Store) -> Result<Option<T>> + Send + 'static,
{
    let key = address_key(client_ip(parts));
    state.limits.tokens.check(&key)?;
    match state.db(find).await? {
        Some(found) => Ok(found),
        None => {
            state.limits.tokens.fail(&key);
            Err(ConsoleError::Unauthorized)
        }
    }
}

/// Looks a bearer token up (counted, see [`counted_lookup`]).
async fn token_of(state: &AppState, parts: &Parts, secret: &str) -> Result<super::tables::TokenRecordV1> {
    let secret = secret.to_string();
    counted_lookup(state, parts, move |s| accounts::lookup_token(s, &secret)).await
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
        // Already found by the route's role layer.
        if let Some(known) = parts.extensions.get::<CurrentUser>() {
            return Ok(known.clone());
        }
        if let Some(secret) = bearer(parts) {
            let token = token_of(state, parts, secret).await?;
            let TokenKindV1::Api { user_id } = token.kind else {
                return Err(ConsoleError::Forbidden("this token is not a user's API token".into()));
            };
            let user = state.db(move |s| accounts::user(s, user_id)).await?.ok_or(ConsoleError::Unauthorized)?;
            return Ok(CurrentUser { user, session: None });
        }
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Err(ConsoleError::Unauthorized);
        };
        if !matches!(parts.method, Method::GET | Method::HEAD) && !parts.headers.contains_key(CSRF_HEADER) {
            return Err(ConsoleError::Forbidden(format!("missing the {CSRF_HEADER} header")));
        }
        let c = cookie.clone();
        let user = counted_lookup(state, parts, move |s| accounts::session_user(s, &c)).await?;
        Ok(CurrentUser { user, session: Some(cookie) })
    }
}

/// The layer of a route for people with at least role `need`: 401 without
/// valid credentials, 403 with too small a role or with a device's or
/// enrollment token. The person found is kept for the route's [`CurrentUser`].
pub async fn require_role(State((state, need)): State<(AppState, Role)>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let refusal = match CurrentUser::from_request_parts(&mut parts, &state).await {
        Ok(user) if user.user.role >= need => {
            parts.extensions.insert(user);
            return next.run(Request::from_parts(parts, body)).await;
        }
        Ok(user) => ConsoleError::Forbidden(format!(
            "this needs the {need} role (or a larger one); {} is {}",
            user.user.name, user.user.role
        )),
        Err(e) => e,
    };
    // Read what a small body has sent (bounded in bytes and time) so that
    // the client, still sending, gets the refusal rather than a reset.
    let _ = tokio::time::timeout(REFUSED_BODY_WAIT, axum::body::to_bytes(body, REFUSED_BODY_BYTES)).await;
    refusal.into_response()
}

/// At most this much of a refused request's body is read, for at most this long.
const REFUSED_BODY_BYTES: usize = 64 << 10;
const REFUSED_BODY_WAIT: Duration = Duration::from_secs(1);

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn attempts_are_taken_before_verifying_and_refunded_on_success() {
        let limiter = AttemptLimiter::new(3, Duration::from_secs(60), 16);
        for _ in 0..3 {
            limiter.reserve("k").unwrap();
        }
        let refused = limiter.reserve("k").unwrap_err();
        assert!(matches!(refused, ConsoleError::RateLimited { retry_after_secs } if retry_after_secs >= 1));
        limiter.refund("k");
        limiter.reserve("k").unwrap();
        assert!(limiter.reserve("k").is_err());
        // Another key is not affected; a cleared one starts over.
        limiter.reserve("other").unwrap();
        limiter.clear("k");
        limiter.reserve("k").unwrap();
    }

    #[test]
    fn failures_checked_then_counted_lock_the_key_and_never_hold_up_others() {
        let limiter = AttemptLimiter::new(2, Duration::from_secs(60), 16);
        limiter.check("k").unwrap();
        limiter.fail("k");
        limiter.check("k").unwrap();
        limiter.fail("k");
        assert!(matches!(limiter.check("k"), Err(ConsoleError::RateLimited { .. })));
        limiter.check("other").unwrap();
    }

    #[test]
    fn a_spent_window_starts_over() {
        let limiter = AttemptLimiter::new(1, Duration::from_millis(50), 16);
        limiter.reserve("k").unwrap();
        assert!(limiter.reserve("k").is_err());
        std::thread::sleep(Duration::from_millis(60));
        limiter.reserve("k").unwrap();
    }

    #[test]
    fn limiter_stays_bounded_with_a_million_distinct_addresses() {
        let limiter = AttemptLimiter::new(5, Duration::from_secs(900), LIMITER_CAPACITY);
        for n in 0..1_000_000u32 {
            let key = address_key(Some(IpAddr::V4(Ipv4Addr::from(n))));
            limiter.reserve(&key).unwrap();
            assert!(limiter.len() <= LIMITER_CAPACITY);
        }
        assert_eq!(limiter.len(), LIMITER_CAPACITY);
        // The most recent addresses are the ones remembered.
        let last = address_key(Some(IpAddr::V4(Ipv4Addr::from(999_999u32))));
        for _ in 0..4 {
            limiter.reserve(&last).unwrap();
        }
        assert!(limiter.reserve(&last).is_err());
    }

    #[test]
    fn ipv6_addresses_are_limited_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "192.0.2.7");
    }
}
