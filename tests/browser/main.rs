//! The web console in real headless Chromium, driven over WebDriver
//! (chromedriver on a loopback port): sign in, create a task from two
//! uploaded IOC files, see the indicators, run it on two real agents, read
//! the results for all devices and for one, open an alert's details.
//! Screenshots go to target/screenshots/. Needs `chromium` and
//! `chromium-driver` (`cargo xtask setup-browser` installs them).
#[path = "../it/common.rs"]
mod common;
#[path = "../it/console_common.rs"]
mod console_common;

use common::ioc_scan;
use console_common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver in its own process group: dropping it kills the browsers it started too.
struct DriverGroup(Child);
impl Drop for DriverGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver on a loopback port, and a WebDriver session of headless Chromium.
async fn browser(profile: &Path) -> (DriverGroup, Client) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: run `cargo xtask setup-browser` (apt-get install chromium chromium-driver)"
        );
    }
    let port = free_port();
    use std::os::unix::process::CommandExt;
    let driver = DriverGroup(
        std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector).capabilities(caps).connect(&url).await.expect("a WebDriver session");
    (driver, client)
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the script returns true.
async fn until(client: &Client, what: &str, script: &str) {
    let start = Instant::now();
    loop {
        let v = client.execute(script, vec![]).await.unwrap();
        if v == Value::Bool(true) {
            return;
        }
        if start.elapsed() > Duration::from_secs(30) {
            shot(client, "timeout").await;
            let page = client.execute("return location.href + ' :: ' + document.body.innerText", vec![]).await.unwrap();
            panic!("timed out waiting for {what}; the page: {page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn eval(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

fn start_agent(console: &str, token: &str, name: &str, dir: &Path) -> Killed {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Killed(
        ioc_scan()
            .args(["agent", "--console", console, "--insecure-http", "--token", token, "--device-name", name, "--poll-wait", "2", "--db"])
            .arg(dir.join(name).join("local.redb"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

#[test]
fn the_console_page_end_to_end_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let admin = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let base = console.url.clone();

    // Two devices with agents; a folder with the file one IOC names.
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).unwrap();
    std::fs::write(scan.join("browser-marker.bin"), b"planted").unwrap();
    let api = console.api(&admin);
    let group = api.post("/groups", &json!({"name": "Web servers"})).json::<Value>().unwrap()["id"].as_u64().unwrap();
    let enrollment = api.enrollment_token();
    let _agents: Vec<Killed> =
        ["web-01", "db-01"].iter().map(|n| start_agent(&base, &enrollment, n, dir.path())).collect();
    let devices = wait_for("two devices", Duration::from_secs(60), || {
        let d = api.json("/devices")["devices"].as_array().unwrap().clone();
        (d.len() == 2).then_some(d)
    });
    let web = devices.iter().find(|d| d["name"] == "web-01").unwrap()["id"].as_u64().unwrap();
    let viewer = json!({"name": "vic", "password": "viewer password", "role": "viewer"});
    assert_eq!(api.post("/users", &viewer).status(), 201);
    assert_eq!(api.patch(&format!("/devices/{web}"), &json!({"group_id": group})).status(), 200);

    // IOC files: one finds the planted file and has hostile text in its
    // name and description; the other finds nothing.
    let hostile = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=1\">";
    let iocs = dir.path().join("iocs");
    std::fs::create_dir_all(&iocs).unwrap();
    std::fs::write(iocs.join("planted.ioc"), ioc_file("browser-planted", "browser-marker.bin", hostile)).unwrap();
    std::fs::write(iocs.join("absent.ioc"), ioc_file("browser-absent", "never-there.bin", "nothing to see")).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(drive(&base, dir.path(), &iocs, &scan, hostile));
    // The page was served under the strict policy.
    let csp = client::csp(&base);
    assert!(
        csp.starts_with(
            "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "{csp}"
    );
}

async fn drive(base: &str, dir: &Path, iocs: &Path, scan: &Path, hostile: &str) {
    let (_driver, client) = browser(&dir.join("chromium-profile")).await;

    // Sign in.
    client.goto(&format!("{base}/")).await.unwrap();
    until(&client, "the sign-in page", "return location.pathname === '/login' && !!document.getElementById('signin')")
        .await;
    shot(&client, "01-sign-in").await;
    client.find(Locator::Id("username")).await.unwrap().send_keys("admin").await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys("correct horse battery").await.unwrap();
    client.find(Locator::Id("signin-button")).await.unwrap().click().await.unwrap();
    until(&client, "the results page", "return location.pathname === '/' && !!document.getElementById('results')")
        .await;
    assert_eq!(eval(&client, "return document.getElementById('who').textContent").await, "admin");

    // Devices and groups.
    client.goto(&format!("{base}/#/devices")).await.unwrap();
    until(&client, "the devices", "return document.querySelectorAll('#devices tbody tr').length === 2").await;
    shot(&client, "02-devices").await;

    // A new task from two IOC files: the indicators appear before saving.
    client.goto(&format!("{base}/#/tasks/new")).await.unwrap();
    until(&client, "the task editor", "return !!document.getElementById('ioc-files')").await;
    let files = format!("{}\n{}", iocs.join("planted.ioc").display(), iocs.join("absent.ioc").display());
    client.find(Locator::Id("ioc-files")).await.unwrap().send_keys(&files).await.unwrap();
    until(&client, "the preview", "return !!document.getElementById('preview-summary')").await;
    let summary = eval(&client, "return document.getElementById('preview-summary').textContent").await;
    assert!(summary.as_str().unwrap().starts_with("2 IOC(s), 4 item(s), 2 not evaluated"), "{summary}");
    assert_eq!(eval(&client, "return document.querySelectorAll('#indicators article.ioc').length").await, 2);
    assert_eq!(eval(&client, "return document.querySelectorAll('#indicators .badge.unsupported').length").await, 2);
    // The hostile description is shown as text, and ran nothing.
    let shown =
        eval(&client, "return document.querySelector('[data-ioc-id=\"browser-planted\"] .description').textContent")
            .await;
    assert_eq!(shown, hostile);
    assert_eq!(
        eval(&client, "return document.querySelectorAll('#indicators img, #indicators script').length").await,
        0
    );
    client.find(Locator::Id("task-name")).await.unwrap().send_keys("Browser sweep").await.unwrap();
    client.find(Locator::Id("scope-critical")).await.unwrap().click().await.unwrap();
    client.find(Locator::Id("scope-ioc-paths")).await.unwrap().click().await.unwrap();
    client.find(Locator::Id("scope-custom")).await.unwrap().send_keys(&scan.display().to_string()).await.unwrap();
    client.find(Locator::Id("response-apply")).await.unwrap().click().await.unwrap();
    client.find(Locator::Id("action-quarantine")).await.unwrap().click().await.unwrap();
    shot(&client, "03-new-task-preview").await;
    client.find(Locator::Id("save-task")).await.unwrap().click().await.unwrap();
    until(&client, "the task page", "return !!document.getElementById('run-now')").await;
    assert_eq!(eval(&client, "return document.querySelectorAll('#indicators article.ioc').length").await, 2);
    shot(&client, "04-task").await;

    // Run it on all devices; the results table fills in.
    client.find(Locator::Id("run-now")).await.unwrap().click().await.unwrap();
    until(&client, "two results", "return document.querySelectorAll('#results tbody tr[data-run]').length === 2").await;
    let rows = eval(&client, "return Array.from(document.querySelectorAll('#results tbody tr[data-run]')).map(r => [r.dataset.device, r.dataset.status, r.cells[2].textContent, r.cells[4].textContent])").await;
    let mut devices: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r[0].as_str().unwrap()).collect();
    devices.sort();
    assert_eq!(devices, ["db-01", "web-01"]);
    for r in rows.as_array().unwrap() {
        assert_eq!(r[1], "ioc-detected", "{r}");
        assert!(!r[2].as_str().unwrap().is_empty());
        assert!(r[3].as_str().unwrap().contains("1 IOC detected"), "{r}");
    }
    assert_eq!(eval(&client, "return document.querySelectorAll('#results .status.bad').length").await, 2);
    shot(&client, "05-results-all-devices").await;

    // One device; then the devices of one group.
    let pick = |value: &str| {
        format!("const s = document.getElementById('device-selector'); s.value = Array.from(s.options).find(o => o.textContent === '{value}').value; s.dispatchEvent(new Event('change')); return true;")
    };
    eval(&client, &pick("db-01")).await;
    until(&client, "db-01 only", "return Array.from(document.querySelectorAll('#results tbody tr[data-run]')).map(r => r.dataset.device).join() === 'db-01'").await;
    shot(&client, "06-results-one-device").await;
    eval(&client, &pick("All devices of Web servers (1)")).await;
    until(&client, "the group's device only", "return Array.from(document.querySelectorAll('#results tbody tr[data-run]')).map(r => r.dataset.device).join() === 'web-01'").await;

    // The alert details of a run.
    client.find(Locator::Css("#results a.details")).await.unwrap().click().await.unwrap();
    until(&client, "the alert details", "return !!document.getElementById('detections')").await;
    let text = eval(&client, "return document.getElementById('detections').textContent").await;
    let text = text.as_str().unwrap();
    assert!(text.contains("FileItem/FileName") && text.contains("browser-marker.bin"), "{text}");
    assert!(text.contains(hostile), "the description is shown as text");
    assert!(text.contains("quarantine"), "the response action and its outcome are listed: {text}");
    shot(&client, "07-alert-details").await;

    // Live monitoring in the task form: on (10 minutes by default), shown on the task page.
    client.goto(&format!("{base}/#/tasks/1/edit")).await.unwrap();
    until(&client, "the task editor", "return !!document.getElementById('monitor-on')").await;
    assert_eq!(eval(&client, "return document.getElementById('monitor-amount').disabled").await, true);
    client.find(Locator::Id("monitor-on")).await.unwrap().click().await.unwrap();
    shot(&client, "08-live-monitoring").await;
    client.find(Locator::Id("save-task")).await.unwrap().click().await.unwrap();
    until(&client, "the task page", "return !!document.getElementById('monitor-setting')").await;
    let monitor = eval(&client, "return document.getElementById('monitor-setting').textContent").await;
    assert!(monitor.as_str().unwrap().starts_with("for 10 minutes after the scan"), "{monitor}");

    // Export link of the collection.
    client.goto(&format!("{base}/#/tasks")).await.unwrap();
    until(&client, "the tasks list", "return document.querySelectorAll('#tasks tbody tr').length === 1").await;
    let href = eval(&client, "return document.querySelector('#tasks a[download]').getAttribute('href')").await;
    assert!(href.as_str().unwrap().ends_with("/export"), "{href}");
    shot(&client, "09-tasks").await;

    // A viewer is offered reading only: no new task, no run, no users or
    // enrollment tokens (the API would refuse them anyway).
    client.find(Locator::Id("signout")).await.unwrap().click().await.unwrap();
    until(&client, "the sign-in page", "return location.pathname === '/login' && !!document.getElementById('signin')")
        .await;
    client.find(Locator::Id("username")).await.unwrap().send_keys("vic").await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys("viewer password").await.unwrap();
    client.find(Locator::Id("signin-button")).await.unwrap().click().await.unwrap();
    until(&client, "the results page", "return location.pathname === '/' && !!document.getElementById('results')")
        .await;
    client.goto(&format!("{base}/#/tasks")).await.unwrap();
    until(&client, "the tasks list", "return document.querySelectorAll('#tasks tbody tr').length === 1").await;
    assert_eq!(eval(&client, "return !!document.getElementById('new-task')").await, false);
    assert_eq!(eval(&client, "return document.querySelectorAll('#tasks button').length").await, 0);
    client.goto(&format!("{base}/#/settings")).await.unwrap();
    until(&client, "the settings", "return document.body.textContent.includes('Create API token')").await;
    let settings = eval(&client, "return document.getElementById('main').textContent").await;
    assert!(!settings.as_str().unwrap().contains("Enrollment tokens"), "{settings}");
    assert!(!settings.as_str().unwrap().contains("Add user"), "{settings}");
    shot(&client, "10-viewer-settings").await;

    // Nothing hostile ever ran, and the page runs under the strict policy.
    assert_eq!(eval(&client, "return typeof window.__xss").await, "undefined");
    assert_eq!(
        eval(&client, "return Array.from(document.scripts).map(s => s.getAttribute('src')).join()").await,
        "/assets/app.js"
    );
    client.close().await.unwrap();
}

mod client {
    /// The Content-Security-Policy the console sends with its page.
    pub fn csp(base: &str) -> String {
        let r = reqwest::blocking::Client::new().get(format!("{base}/login")).send().unwrap();
        r.headers()["content-security-policy"].to_str().unwrap().to_string()
    }
}
