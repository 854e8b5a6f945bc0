//! The web console: an HTTP(S) server (axum on tokio) over the store's redb
//! file, for people (the web page and a JSON API under `/api/v1`) and for
//! the agents of managed devices (enrollment, jobs, result uploads).
//!
//! - [`accounts`]: users, sessions, tokens; [`auth`]: who is asking;
//!   [`device_tokens`]: the cache of device tokens.
//! - [`fleet`]: devices, groups, task targets, jobs and schedules.
//! - [`ingest`]: results stored exactly once, in group-committed batches.
//! - [`upload`]: IOC file uploads with limits and per-file errors.
//! - [`api`]: the routes; [`view`]: their JSON; [`web`]: the page.
//! - [`protocol`]: what console and agents exchange.
//!
//! Everything the console keeps is in the database: a restart loses no
//! task, job or result. Store calls are blocking and run on tokio's
//! blocking pool.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod commands;
pub mod device_tokens;
pub mod error;
pub mod fleet;
pub mod ingest;
pub mod protocol;
pub mod results;
pub mod tables;
pub mod upload;
pub mod view;
pub mod web;
pub mod write;

pub use error::ConsoleError;
pub use upload::UploadLimits;

use crate::store::{PruneBudget, Store};
use auth::{AttemptLimiter, LIMITER_CAPACITY};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the console runs.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub uploads: UploadLimits,
    /// Results older than this are pruned (and not accepted).
    pub retention: chrono::Duration,
    pub prune_every: Duration,
    pub session_lifetime: chrono::Duration,
    /// Scheduled runs are handed to devices this long before they are due.
    pub schedule_horizon: chrono::Duration,
    /// Sign-in attempts (counted before the password is checked; a right
    /// password gives its attempt back) allowed per address, and per user
    /// name from one address, in `signin_window`. Per name *and* address, so
    /// that whoever guesses a name's password locks out only themselves.
    pub signin_attempts_per_ip: u32,
    pub signin_attempts_per_user_and_ip: u32,
    pub signin_window: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            tls: None,
            uploads: UploadLimits::default(),
            retention: chrono::Duration::days(crate::store::DEFAULT_RETENTION_DAYS as i64),
            prune_every: Duration::from_secs(3600),
            session_lifetime: chrono::Duration::hours(12),
            schedule_horizon: chrono::Duration::minutes(10),
            signin_attempts_per_ip: 20,
            signin_attempts_per_user_and_ip: 5,
            signin_window: Duration::from_secs(15 * 60),
        }
    }
}

/// The rate limiters of sign-in (per address; per user name and address)
/// and of bearer tokens (per address).
#[derive(Debug)]
pub struct Limiters {
    pub signin_ip: AttemptLimiter,
    pub signin_user: AttemptLimiter,
    pub tokens: AttemptLimiter,
}

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub config: Arc<ConsoleConfig>,
    pub ingest: ingest::Ingest,
    /// Woken when jobs are made (long polls look again).
    pub jobs_changed: Arc<tokio::sync::Notify>,
    /// Last contact per device, persisted now and then.
    pub last_seen: Arc<Mutex<HashMap<u64, i64>>>,
    /// Long polls waiting, per device (a device's token cannot hold
    /// any number of them open).
    pub long_polls: Arc<Mutex<HashMap<u64, u32>>>,
    pub limits: Arc<Limiters>,
    pub tls: bool,
    /// Devices by the sha256 of their token, so that an upload needs no
    /// database read to know its device. Emptied whenever a device changes.
    pub devices_by_token: Arc<device_tokens::DeviceTokens>,
}

impl AppState {
    pub fn new(store: Arc<Store>, config: ConsoleConfig) -> std::io::Result<AppState> {
        let retention = config.retention;
        let clock_store = store.clone();
        let ingest = ingest::Ingest::start(store.clone(), move || {
            crate::store::clock::to_millis(clock_store.clock().now() - retention)
        })?;
        let limits = Limiters {
            signin_ip: AttemptLimiter::new(config.signin_attempts_per_ip, config.signin_window, LIMITER_CAPACITY),
            signin_user: AttemptLimiter::new(
                config.signin_attempts_per_user_and_ip,
                config.signin_window,
                LIMITER_CAPACITY,
            ),
            tokens: AttemptLimiter::new(100, Duration::from_secs(60), LIMITER_CAPACITY),
        };
        Ok(AppState {
            tls: config.tls.is_some(),
            store,
            config: Arc::new(config),
            ingest,
            jobs_changed: Arc::new(tokio::sync::Notify::new()),
            last_seen: Arc::new(Mutex::new(HashMap::new())),
            long_polls: Arc::new(Mutex::new(HashMap::new())),
            limits: Arc::new(limits),
            devices_by_token: Arc::new(device_tokens::DeviceTokens::default()),
        })
    }

    /// Runs a store operation on the blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ConsoleError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ConsoleError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ConsoleError::Internal(format!("a database task failed: {e}")))?
    }

    /// Forgets the cached devices (one was changed or removed; call once
    /// the change is committed).
    pub fn forget_devices(&self) {
        self.devices_by_token.changed();
    }

    /// Notes that a device made contact now.
    pub fn seen(&self, device: u64) {
        let now = self.store.now_millis();
        self.last_seen.lock().unwrap_or_else(|p| p.into_inner()).insert(device, now);
    }

    pub fn last_seen_of(&self, device: u64) -> Option<i64> {
        self.last_seen.lock().unwrap_or_else(|p| p.into_inner()).get(&device).copied()
    }

    /// Writes the last-contact times to the database.
    pub async fn flush_last_seen(&self) -> Result<(), ConsoleError> {
        let seen = std::mem::take(&mut *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()));
        let keep = seen.clone();
        let result = self.db(move |s| fleet::record_last_seen(s, &seen)).await;
        if result.is_err() {
            // Keep them for the next try.
            let mut current = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            for (k, v) in keep {
                current.entry(k).or_insert(v);
            }
        }
        result
    }
}

/// Creates the console's tables in the store's file (if missing).
pub fn prepare(store: &Store) -> Result<(), ConsoleError> {
    let txn = write::begin(store)?;
    tables::create_all(&txn)?;
    txn.commit()?;
    Ok(())
}

/// First setup: creates an administrator and an API token for them.
/// Returns the token (shown once).
pub fn init(store: &Store, user: &str, password: &str) -> Result<(tables::UserRecordV1, String), ConsoleError> {
    prepare(store)?;
    let user = accounts::create_user(store, user, password, tables::Role::Admin)?;
    let (token, _) =
        accounts::new_token(store, tables::TokenKindV1::Api { user_id: user.id }, "created by console init", None)?;
    Ok((user, token))
}

/// One maintenance pass: persist last-contact times, re-date runs stored
/// in the future, prune old results, finished jobs, expired sessions and tokens.
pub async fn maintain(state: &AppState) -> Result<u64, ConsoleError> {
    state.flush_last_seen().await?;
    let retention = state.config.retention;
    state
        .db(move |s| {
            // Runs an older console stored with a device's far-ahead clock:
            // dated now, so that retention applies to them.
            let now = s.now_millis();
            let latest = now.saturating_add(ingest::CLOCK_SKEW_MS);
            while s.redate_runs_after(latest, now, 1000)? == 1000 {}
            let mut removed = 0;
            loop {
                let report = s.prune(retention, PruneBudget::default()).map_err(|e| match e {
                    crate::store::PruneError::Db(db) => ConsoleError::Db(db),
                })?;
                removed += report.runs_deleted;
                if !report.more {
                    break;
                }
            }
            removed += accounts::prune_expired(s)?;
            let before = crate::store::clock::to_millis(s.clock().now() - retention);
            removed += fleet::prune(s, before)?;
            Ok(removed)
        })
        .await
}

/// Serves the console on `listener` until `shutdown` completes.
pub async fn serve(
    store: Arc<Store>,
    config: ConsoleConfig,
    listener: std::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    prepare(&store)?;
    let state = AppState::new(store, config.clone()).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let app = api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();

    // Maintenance: last-contact times every 30 s, pruning on its period.
    let maint_state = state.clone();
    let maintenance = tokio::spawn(async move {
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= maint_state.config.prune_every) {
                if let Err(e) = maintain(&maint_state).await {
                    tracing::warn!("console: maintenance: {e}");
                }
                last_prune = Some(tokio::time::Instant::now());
            } else if let Err(e) = maint_state.flush_last_seen().await {
                tracing::warn!("console: saving last contact times: {e}");
            }
            tokio::time::sleep(Duration::from_secs(30).min(maint_state.config.prune_every)).await;
        }
    });

    listener.set_nonblocking(true).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let served = match &config.tls {
        Some((cert, key)) => {
            // One crypto provider for the process (ring); a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| ConsoleError::Invalid(format!("TLS certificate or key: {e}")))?;
            axum_server::from_tcp_rustls(listener, tls).handle(handle).serve(app).await
        }
        None => axum_server::from_tcp(listener).handle(handle).serve(app).await,
    };
    maintenance.abort();
    let _ = state.flush_last_seen().await;
    served.map_err(|e| ConsoleError::Internal(format!("serving: {e}")))
}
