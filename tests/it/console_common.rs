//! A real console (the built binary) on a loopback port over a real redb
//! file, and a blocking HTTP client for its API.
#![allow(dead_code)]
use crate::common::ioc_scan;
use reqwest::blocking::{multipart, Client, Response};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Creates the first administrator of `db`; returns their API token.
pub fn init(db: &Path) -> String {
    let out =
        ioc_scan().args(["console", "init", "--password", "correct horse battery", "--db"]).arg(db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("api_"), "{token}");
    token
}

/// A console process; killed when dropped.
pub struct Console {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    pub db: PathBuf,
}

impl Console {
    /// Starts `ioc-scan console` on `listen` (e.g. `127.0.0.1:0`) and waits for its address line.
    pub fn start(db: &Path, listen: &str, extra: &[&str]) -> Console {
        let mut child = ioc_scan()
            .args(["console", "--listen", listen, "--db"])
            .arg(db)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
        assert!(url.starts_with("http"), "no address line from the console: {line:?}");
        Console { child, url, db: db.to_path_buf() }
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGKILL: nothing gets to shut down cleanly.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn api(&self, token: &str) -> Api {
        Api { base: format!("{}/api/v1", self.url), token: Some(token.to_string()), http: client() }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A console serving HTTPS with a fresh self-signed certificate for
/// 127.0.0.1 and localhost (written to DIR/cert.pem and DIR/key.pem).
pub struct TlsConsole {
    pub console: Console,
    pub cert_path: PathBuf,
    pub cert_pem: String,
}

impl TlsConsole {
    pub fn start(dir: &Path, db: &Path) -> TlsConsole {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        let console = Console::start(
            db,
            "127.0.0.1:0",
            &["--tls-cert", cert_path.to_str().unwrap(), "--tls-key", key_path.to_str().unwrap()],
        );
        TlsConsole { console, cert_path, cert_pem: cert.cert.pem() }
    }

    /// A client that trusts the console's certificate.
    pub fn client(&self) -> Client {
        Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap())
            .no_proxy()
            .build()
            .unwrap()
    }
}

pub fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).no_proxy().build().unwrap()
}

/// A bearer-token client of `/api/v1`.
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: Client,
}

impl Api {
    pub fn with_token(&self, token: &str) -> Api {
        Api { base: self.base.clone(), token: Some(token.to_string()), http: self.http.clone() }
    }

    fn auth(&self, r: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.auth(self.http.get(format!("{}{path}", self.base))).send().unwrap()
    }

    pub fn delete(&self, path: &str) -> Response {
        self.auth(self.http.delete(format!("{}{path}", self.base))).send().unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.auth(self.http.post(format!("{}{path}", self.base))).json(body).send().unwrap()
    }

    pub fn patch(&self, path: &str, body: &Value) -> Response {
        self.auth(self.http.patch(format!("{}{path}", self.base))).json(body).send().unwrap()
    }

    pub fn multipart(&self, method: reqwest::Method, path: &str, form: multipart::Form) -> Response {
        self.auth(self.http.request(method, format!("{}{path}", self.base))).multipart(form).send().unwrap()
    }

    /// GET expecting 200 and JSON.
    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        let status = r.status();
        let v: Value = r.json().unwrap();
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Creates a task from `(file name, bytes)` and settings; expects 201.
    pub fn create_task(&self, settings: Value, files: &[(&str, &[u8])]) -> Value {
        let r = self.multipart(reqwest::Method::POST, "/tasks", task_form(&settings, files));
        let status = r.status();
        let v: Value = r.json().unwrap();
        assert_eq!(status, 201, "{v}");
        v
    }

    /// Makes an enrollment token.
    pub fn enrollment_token(&self) -> String {
        let r = self.post("/enrollment-tokens", &json!({"name": "test"}));
        assert_eq!(r.status(), 201);
        r.json::<Value>().unwrap()["token"].as_str().unwrap().to_string()
    }

    /// Enrolls a device named `name` with a fresh enrollment token; returns
    /// (device id, device token).
    pub fn enroll(&self, name: &str) -> (u64, String) {
        let enrollment = self.enrollment_token();
        let r = self.with_token(&enrollment).post("/devices/enroll", &json!({"name": name}));
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        (v["device_id"].as_u64().unwrap(), v["token"].as_str().unwrap().to_string())
    }
}

pub fn task_form(settings: &Value, files: &[(&str, &[u8])]) -> multipart::Form {
    let mut form = multipart::Form::new()
        .part("task", multipart::Part::text(settings.to_string()).mime_str("application/json").unwrap());
    for (name, bytes) in files {
        form = form.part("file", multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()));
    }
    form
}

pub fn files_form(files: &[(&str, &[u8])]) -> multipart::Form {
    let mut form = multipart::Form::new();
    for (name, bytes) in files {
        form = form.part("file", multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()));
    }
    form
}

/// An OpenIOC 1.1 file: `FileItem/FileName is NAME` OR an item on a term
/// ioc-scan does not evaluate on Linux (a registry key); `description` is
/// put in as given (escaped for XML).
pub fn ioc_file(id: &str, file_name: &str, description: &str) -> Vec<u8> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="{id}" last-modified="2026-01-01T00:00:00Z">
  <metadata>
    <short_description>{id} marker</short_description>
    <description>{}</description>
    <authored_by>tests</authored_by>
  </metadata>
  <criteria>
    <Indicator operator="OR" id="{id}-top">
      <IndicatorItem id="{id}-name" condition="is">
        <Context document="FileItem" search="FileItem/FileName" type="mir"/>
        <Content type="string">{}</Content>
      </IndicatorItem>
      <IndicatorItem id="{id}-reg" condition="is">
        <Context document="RegistryItem" search="RegistryItem/Path" type="mir"/>
        <Content type="string">HKLM\Software\Run</Content>
      </IndicatorItem>
    </Indicator>
  </criteria>
</OpenIOC>
"#,
        esc(description),
        esc(file_name)
    )
    .into_bytes()
}

/// Not well-formed: `<metadata>` is never closed (error at line 3).
pub const BROKEN_IOC: &[u8] =
    b"<OpenIOC xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\" id=\"broken\">\n <metadata>\n</OpenIOC>\n";

/// Polls `f` until it returns Some, for at most `limit` (then panics with `what`).
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
