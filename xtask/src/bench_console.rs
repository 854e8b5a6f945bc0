//! `cargo xtask bench-console`: 1,000 simulated agents (tokio tasks, each
//! with its own enrolled device and token) upload results to one console
//! (the release binary) on loopback. Reports sustained uploads per second,
//! latency percentiles, and the time to return the results page data for
//! 1,000 devices. Targets: 2,000 uploads/s, p99 < 50 ms, page data < 200 ms.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AGENTS: usize = 1000;
/// Results each agent uploads.
const UPLOADS_PER_AGENT: usize = 20;
/// Each agent uploads every this long (1,000 agents: 2,000 uploads/s offered),
/// agents staggered evenly over one period. An agent whose upload is still
/// running when its next one is due sends the next right after it.
const PERIOD: Duration = Duration::from_millis(500);

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ioc() -> String {
    r#"<?xml version="1.0" encoding="utf-8"?>
<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="bench-ioc">
  <metadata><short_description>bench</short_description></metadata>
  <criteria><Indicator operator="OR" id="bench-top">
    <IndicatorItem id="bench-item" condition="is"><Context document="FileItem" search="FileItem/FileName" type="mir"/><Content type="string">bench.bin</Content></IndicatorItem>
  </Indicator></criteria>
</OpenIOC>"#
        .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn check(r: reqwest::Response, what: &str) -> Result<Value> {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "{what}: {status} {body}");
    Ok(body)
}

pub fn run(root: &Path) -> Result<()> {
    let bin = crate::build_release_binary(root)?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("console.redb");
    let out = Command::new(&bin).args(["console", "init", "--password", "bench password", "--db"]).arg(&db).output()?;
    ensure!(out.status.success(), "console init: {}", String::from_utf8_lossy(&out.stderr));
    let admin = String::from_utf8(out.stdout)?.trim().to_string();
    let mut child = Command::new(&bin)
        .args(["console", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("console stdout")?).read_line(&mut line)?;
    let _console = Killed(child);
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
    ensure!(base.starts_with("http://"), "no address from the console: {line:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(format!("{base}/api/v1"), admin))
}

async fn bench(api: String, admin: String) -> Result<()> {
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(AGENTS).build()?;
    // A task, an enrollment token, 1,000 devices.
    let form = reqwest::multipart::Form::new()
        .part("task", reqwest::multipart::Part::text(json!({"name": "bench"}).to_string()))
        .part("file", reqwest::multipart::Part::text(ioc()).file_name("bench.ioc"));
    let task =
        check(http.post(format!("{api}/tasks")).bearer_auth(&admin).multipart(form).send().await?, "create task")
            .await?;
    let task_id = task["id"].as_u64().context("task id")?;
    let enrollment = check(
        http.post(format!("{api}/enrollment-tokens"))
            .bearer_auth(&admin)
            .json(&json!({"name": "bench"}))
            .send()
            .await?,
        "enrollment token",
    )
    .await?["token"]
        .as_str()
        .context("token")?
        .to_string();
    println!("enrolling {AGENTS} devices...");
    let started = Instant::now();
    let mut devices = Vec::with_capacity(AGENTS);
    for chunk in (0..AGENTS).collect::<Vec<_>>().chunks(50) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (http, api, enrollment) = (http.clone(), api.clone(), enrollment.clone());
            set.spawn(async move {
                let r = http
                    .post(format!("{api}/devices/enroll"))
                    .bearer_auth(&enrollment)
                    .json(&json!({"name": format!("bench-{i:04}")}))
                    .send()
                    .await?;
                let v = check(r, "enroll").await?;
                Ok::<_, anyhow::Error>((
                    v["device_id"].as_u64().unwrap_or(0),
                    v["token"].as_str().unwrap_or("").to_string(),
                ))
            });
        }
        while let Some(d) = set.join_next().await {
            devices.push(d??);
        }
    }
    println!("  {AGENTS} devices enrolled in {:.1} s", started.elapsed().as_secs_f64());
    check(
        http.post(format!("{api}/tasks/{task_id}/run")).bearer_auth(&admin).json(&json!({"all": true})).send().await?,
        "run",
    )
    .await?;

    // Each agent takes its job, then uploads its results one after the other.
    println!("{AGENTS} agents uploading {UPLOADS_PER_AGENT} results each...");
    let barrier = Arc::new(tokio::sync::Barrier::new(AGENTS + 1));
    let mut set = tokio::task::JoinSet::new();
    for (n, (device, token)) in devices.into_iter().enumerate() {
        let (http, api, barrier) = (http.clone(), api.clone(), barrier.clone());
        set.spawn(async move {
            let jobs = check(http.get(format!("{api}/agent/jobs?wait=0")).bearer_auth(&token).send().await?, "poll").await?;
            let job = jobs["jobs"][0].clone();
            barrier.wait().await;
            let first = tokio::time::Instant::now() + PERIOD.mul_f64(n as f64 / AGENTS as f64);
            let mut latencies = Vec::with_capacity(UPLOADS_PER_AGENT);
            for k in 0..UPLOADS_PER_AGENT {
                tokio::time::sleep_until(first + PERIOD * k as u32).await;
                let now = chrono::Utc::now().timestamp_millis();
                let detections: Vec<Value> = if k % 10 == 0 {
                    vec![json!({"ioc_id": "bench-ioc", "ioc_name": "bench", "ioc_description": null,
                        "matched_items": ["bench-item"], "object": {"kind": "file", "path": "/srv/bench.bin"}, "responses": []})]
                } else {
                    Vec::new()
                };
                let body = json!({
                    "run_key": format!("d{device}-j{}-{k}", job["id"]),
                    "job_id": job["id"], "task_id": job["task"]["id"], "collection_version": job["collection"]["version"],
                    "trigger": "manual", "started_at": now - 500, "ended_at": now,
                    "status": if detections.is_empty() { "no-ioc-detected" } else { "ioc-detected" },
                    "counts": [["files_examined", 1234], ["errors", 0]],
                    "detections": detections,
                });
                let t = Instant::now();
                let r = http.post(format!("{api}/agent/results")).bearer_auth(&token).json(&body).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                latencies.push(t.elapsed());
                if !status.is_success() {
                    bail!("upload: {status}");
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(AGENTS * UPLOADS_PER_AGENT);
    while let Some(l) = set.join_next().await {
        latencies.extend(l??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let total = latencies.len();
    let rate = total as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));

    // The results page data for 1,000 devices.
    let mut page = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let v =
            check(http.get(format!("{api}/results?limit=1000")).bearer_auth(&admin).send().await?, "results").await?;
        page.push(t.elapsed());
        ensure!(v["results"].as_array().map(|a| a.len()) == Some(1000), "expected 1000 results");
    }
    page.sort();
    let mut devices_page = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        check(http.get(format!("{api}/devices")).bearer_auth(&admin).send().await?, "devices").await?;
        devices_page.push(t.elapsed());
    }
    devices_page.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\nconsole bench ({AGENTS} agents, {total} uploads, loopback, release build)");
    println!(
        "  offered load          {:>10.0} /s     (each agent every {} ms)",
        AGENTS as f64 / PERIOD.as_secs_f64(),
        PERIOD.as_millis()
    );
    println!("  sustained uploads     {rate:>10.0} /s     (target 2000)");
    println!("  upload latency p50    {:>10.1} ms", ms(p50));
    println!("  upload latency p99    {:>10.1} ms     (target < 50)", ms(p99));
    println!("  upload latency max    {:>10.1} ms", ms(*latencies.last().unwrap_or(&Duration::ZERO)));
    println!("  results page data     {:>10.1} ms     (1000 runs, median of 5; target < 200)", ms(page[2]));
    println!("  devices list          {:>10.1} ms     (1000 devices, median of 5)", ms(devices_page[2]));
    let mut missed = Vec::new();
    if rate < 0.95 * AGENTS as f64 / PERIOD.as_secs_f64() {
        missed.push("uploads/s");
    }
    if ms(p99) >= 50.0 {
        missed.push("p99");
    }
    if ms(page[2]) >= 200.0 {
        missed.push("page data");
    }
    if !missed.is_empty() {
        println!("  targets missed: {}", missed.join(", "));
    }
    Ok(())
}
