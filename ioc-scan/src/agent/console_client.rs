//! The agent's HTTP(S) client of the console: enroll, poll for jobs (long
//! poll), upload results. Errors say whether trying again later can help
//! ([`ClientError::Unreachable`]) or not ([`ClientError::Rejected`]).
//!
//! Tokens (enrollment and device) only ever travel over HTTPS: an `http://`
//! console is refused before any request unless the caller accepts plain
//! HTTP explicitly ([`Transport::InsecureHttp`]), and redirects are never
//! followed (a redirect could downgrade the scheme or change the host).

use crate::console::protocol::{
    CommandReport, EnrollRequest, EnrollResponse, JobsResponse, ResultAck, ResultUpload,
};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer, or the console cannot take it now (5xx, 429): try again later.
    #[error("console unreachable: {0}")]
    Unreachable(String),
    /// The console refused the request; sending it again will not help.
    #[error("console refused ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// Bad configuration (URL, CA certificate).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The console no longer accepts this device's token.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ClientError::Rejected { status: 401 | 403, .. })
    }
}

pub struct ConsoleClient {
    base: String,
    http: Client,
    token: Option<String>,
}

impl std::fmt::Debug for ConsoleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleClient").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Which schemes the client may use to reach the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// `https://` only (the default): tokens never travel in clear.
    #[default]
    HttpsOnly,
    /// `http://` accepted too: the operator said so (`--insecure-http`).
    InsecureHttp,
}

/// Checks the console URL's scheme against `transport`, before anything is sent.
pub fn check_console_url(base: &str, transport: Transport) -> Result<(), ClientError> {
    let lower = base.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    if lower.starts_with("http://") {
        return match transport {
            Transport::InsecureHttp => Ok(()),
            Transport::HttpsOnly => Err(ClientError::Config(format!(
                "{base:?}: refusing to send this device's token over plain HTTP; serve the console over \
                 https:// (ioc-scan console --tls-cert PEM --tls-key PEM) and give the agent its certificate \
                 with --ca-cert PEM if it is self-signed, or pass --insecure-http to accept the risk"
            ))),
        };
    }
    Err(ClientError::Config(format!("{base:?}: the console URL must start with https://")))
}

impl ConsoleClient {
    /// A client of the console at `base` (`https://host:port`), trusting the
    /// system's CAs and `ca_pem` (a PEM certificate, e.g. a self-signed console's).
    /// `http://` only with [`Transport::InsecureHttp`].
    pub fn new(base: &str, ca_pem: Option<&[u8]>, transport: Transport) -> Result<ConsoleClient, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        check_console_url(&base, transport)?;
        let mut builder = Client::builder()
            .use_rustls_tls()
            .https_only(transport == Transport::HttpsOnly)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("ioc-scan-agent/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Config(format!("CA certificate: {e}")))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(ConsoleClient { base, http, token: None })
    }

    /// The console's base URL (`https://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn set_token(&mut self, token: &str) {
        self.token = Some(token.to_string());
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn send<T: DeserializeOwned>(&self, request: RequestBuilder, token: Option<&str>) -> Result<T, ClientError> {
        let request = match token.or(self.token.as_deref()) {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let response = request.send().map_err(|e| ClientError::Unreachable(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().map_err(|e| ClientError::Unreachable(format!("bad answer: {e}")));
        }
        let message = response
            .json::<serde_json::Value>()
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| status.to_string());
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(ClientError::Unreachable(format!("{status}: {message}")))
        } else {
            Err(ClientError::Rejected { status: status.as_u16(), message })
        }
    }

    /// Enrolls with an enrollment token; returns the device's own token.
    pub fn enroll(&self, enrollment_token: &str, request: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        self.send(self.http.post(self.url("/devices/enroll")).json(request), Some(enrollment_token))
    }

    /// Every job of this device not yet reported; waits up to `wait` for a new one.
    pub fn poll(&self, wait: Duration, started: bool, tz_offset_minutes: i32) -> Result<JobsResponse, ClientError> {
        let request = self.http.get(self.url("/agent/jobs")).query(&[
            ("wait", wait.as_secs().to_string()),
            ("started", started.to_string()),
            ("tz_offset", tz_offset_minutes.to_string()),
        ]);
        self.send(request, None)
    }

    pub fn upload(&self, result: &ResultUpload) -> Result<ResultAck, ClientError> {
        self.send(self.http.post(self.url("/agent/results")).json(result), None)
    }

    /// Reports what became of command `id` (lift isolation...).
    pub fn report_command(&self, id: u64, report: &CommandReport) -> Result<serde_json::Value, ClientError> {
        self.send(self.http.post(self.url(&format!("/agent/commands/{id}"))).json(report), None)
    }
}

/// An error with its causes (reqwest's own message alone hides them).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
