//! The console's API against a real console process on a loopback port
//! over a real redb file.
use crate::console_common::*;
use reqwest::header;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Read;

const CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn setup(extra: &[&str]) -> (tempfile::TempDir, Console, Api) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", extra);
    let api = console.api(&token);
    (dir, console, api)
}

fn two_iocs() -> Vec<(&'static str, Vec<u8>)> {
    vec![("one.ioc", ioc_file("ioc-one", "one.bin", "first")), ("two.ioc", ioc_file("ioc-two", "two.bin", "second"))]
}

fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

#[test]
fn every_api_route_and_page_needs_credentials() {
    let (_dir, console, api) = setup(&[]);
    let anonymous = Api { token: None, ..console.api("") };
    for path in [
        "/tasks",
        "/devices",
        "/groups",
        "/results",
        "/results/1",
        "/jobs",
        "/users",
        "/tokens",
        "/session",
        "/agent/jobs",
    ] {
        let r = anonymous.get(path);
        assert_eq!(r.status(), 401, "GET {path}");
        let v: Value = r.json().unwrap();
        assert_eq!(v["error"], "unauthorized");
    }
    for (path, body) in [
        ("/tasks/1/run", json!({"all": true})),
        ("/agent/results", json!({})),
        ("/devices/enroll", json!({"name": "x"})),
    ] {
        assert_eq!(anonymous.post(path, &body).status(), 401, "POST {path}");
    }
    // A wrong token is no better than none.
    assert_eq!(api.with_token("api_0000").get("/tasks").status(), 401);
    // The page sends strangers to the sign-in page; its script needs a session too.
    let http = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(format!("{}/", console.url)).send().unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[header::LOCATION], "/login");
    assert_eq!(http.get(format!("{}/assets/app.js", console.url)).send().unwrap().status(), 401);
    assert_eq!(http.get(format!("{}/login", console.url)).send().unwrap().status(), 200);
    // Device tokens only open the agent routes, user tokens never do.
    let (_, device_token) = api.enroll("dev-a");
    assert_eq!(api.with_token(&device_token).get("/tasks").status(), 403);
    assert_eq!(api.get("/agent/jobs").status(), 403);
    assert_eq!(api.with_token(&device_token).get("/agent/jobs").status(), 200);
}

#[test]
fn sign_in_sets_a_strict_http_only_cookie_and_failures_are_rate_limited() {
    let (_dir, console, api) = setup(&[]);
    let http = client();
    let sign_in = |user: &str, password: &str| {
        http.post(format!("{}/api/v1/session", console.url))
            .json(&json!({"username": user, "password": password}))
            .send()
            .unwrap()
    };
    let ok = sign_in("admin", "correct horse battery");
    assert_eq!(ok.status(), 200);
    let cookie = ok.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    // The cookie reads; a change without the CSRF header is refused, with it allowed.
    let me = http.get(format!("{}/api/v1/session", console.url)).header(header::COOKIE, &session).send().unwrap();
    assert_eq!(me.json::<Value>().unwrap()["user"]["name"], "admin");
    let group = |csrf: bool| {
        let mut r = http.post(format!("{}/api/v1/groups", console.url)).header(header::COOKIE, &session);
        if csrf {
            r = r.header("X-IOC-Scan-CSRF", "1");
        }
        r.json(&json!({"name": format!("g{csrf}")})).send().unwrap().status()
    };
    assert_eq!(group(false), 403);
    assert_eq!(group(true), 201);
    // Wrong passwords: 401, then 429 with Retry-After, even with the right one.
    for _ in 0..5 {
        assert_eq!(sign_in("admin", "wrong password").status(), 401);
    }
    let limited = sign_in("admin", "correct horse battery");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(limited.json::<Value>().unwrap()["error"], "rate-limited");
    // Signing out ends the session.
    let out = http
        .delete(format!("{}/api/v1/session", console.url))
        .header(header::COOKIE, &session)
        .header("X-IOC-Scan-CSRF", "1")
        .send()
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = http.get(format!("{}/api/v1/session", console.url)).header(header::COOKIE, &session).send().unwrap();
    assert_eq!(after.status(), 401);
    // Tokens are unaffected.
    assert_eq!(api.get("/tasks").status(), 200);
}

#[test]
fn every_response_carries_the_strict_content_security_policy() {
    let (_dir, console, api) = setup(&[]);
    let http = client();
    for url in [
        format!("{}/login", console.url),
        format!("{}/assets/app.css", console.url),
        format!("{}/api/v1/tasks", console.url),
    ] {
        let r = http.get(&url).send().unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.starts_with(CSP), "{url}: {csp}");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{url}");
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY", "{url}");
    }
    assert!(api.get("/tasks").headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with(CSP));
}

#[test]
fn preview_lists_indicators_marks_unsupported_items_and_reports_bad_files_with_line_and_column_without_saving() {
    let (_dir, _console, api) = setup(&[]);
    let good = ioc_file("ioc-one", "one.bin", "first");
    let r = api.multipart(Method::POST, "/iocs/preview", files_form(&[("one.ioc", &good), ("bad.ioc", BROKEN_IOC)]));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["failed_files"], 1);
    let bad = &v["files"][1];
    assert_eq!(bad["name"], "bad.ioc");
    assert_eq!(bad["error"]["line"], 3);
    assert!(bad["error"]["column"].as_u64().unwrap() >= 1);
    assert_eq!(v["files"][0]["ioc_id"], "ioc-one");
    let ioc = &v["iocs"][0];
    assert_eq!(ioc["id"], "ioc-one");
    assert_eq!(ioc["items"], 2);
    assert_eq!(ioc["unsupported_items"], 1);
    let items: Vec<&Value> = ioc["tree"].as_array().unwrap().iter().filter(|n| n["kind"] == "item").collect();
    assert_eq!(items[0]["support"], "supported");
    assert_eq!(items[1]["term"], "RegistryItem/Path");
    assert_eq!(items[1]["support"], "unsupported");
    assert!(items[1]["reason"].as_str().is_some());
    // Nothing was saved.
    assert_eq!(api.json("/tasks")["tasks"].as_array().unwrap().len(), 0);
}

#[test]
fn a_task_with_a_malformed_file_is_refused_with_per_file_errors_unless_bad_files_are_skipped() {
    let (_dir, _console, api) = setup(&[]);
    let good = ioc_file("ioc-one", "one.bin", "first");
    let files: [(&str, &[u8]); 2] = [("one.ioc", &good), ("bad.ioc", BROKEN_IOC)];
    let r = api.multipart(Method::POST, "/tasks", task_form(&json!({"name": "t"}), &files));
    assert_eq!(r.status(), 422);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "bad-ioc-files");
    assert!(v["message"].as_str().unwrap().contains("bad.ioc (line 3"), "{v}");
    assert_eq!(v["files"][1]["error"]["line"], 3);
    assert_eq!(api.json("/tasks")["tasks"].as_array().unwrap().len(), 0);
    let r = api.multipart(Method::POST, "/tasks?skip_invalid=true", task_form(&json!({"name": "t"}), &files));
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    assert_eq!(v["files"][0]["name"], "one.ioc");
}

#[test]
fn uploads_over_the_limits_get_413_with_a_json_message() {
    let (_dir, _console, api) = setup(&["--max-file-bytes", "2000", "--max-collection-bytes", "3000"]);
    let big = vec![b' '; 2500];
    let r = api.multipart(Method::POST, "/iocs/preview", files_form(&[("big.ioc", &big)]));
    assert_eq!(r.status(), 413);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "too-large");
    assert!(v["message"].as_str().unwrap().contains("big.ioc"), "{v}");
    let a = vec![b' '; 1800];
    let r = api.multipart(Method::POST, "/tasks", task_form(&json!({"name": "t"}), &[("a.ioc", &a), ("b.ioc", &a)]));
    assert_eq!(r.status(), 413);
    let v: Value = r.json().unwrap();
    assert!(v["message"].as_str().unwrap().contains("collection"), "{v}");
    // A body far over every limit is answered before it is all sent: the
    // client sends the start of 64 MiB and reads the answer.
    let answer = raw_upload(&_console.url, api.token.as_deref().unwrap(), 64 << 20);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error\":\"too-large\""), "{answer}");
}

/// Sends the headers and the first 256 KiB of a multipart upload announcing
/// `length` bytes, then reads whatever the console answers.
fn raw_upload(url: &str, token: &str, length: usize) -> String {
    use std::io::Write;
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/v1/iocs/preview HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {length}\r\n\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.ioc\"\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&vec![b' '; 256 << 10]);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn tasks_keep_their_files_byte_for_byte_under_bare_names_and_export_them() {
    let (_dir, _console, api) = setup(&[]);
    let files = two_iocs();
    let mut refs = as_refs(&files);
    refs[0].0 = "../../etc/one.ioc";
    let settings = json!({
        "name": "Two markers",
        "description": "d",
        "scope": {"critical_areas": false, "custom_paths": ["/srv"], "excludes": ["/srv/cache/**"]},
        "response": {"apply": true, "actions": [{"action": "quarantine"}, {"action": "isolate", "seconds": 7200}]},
        "schedule": "every:6h",
        "targets": {"all": false, "groups": [], "devices": []},
    });
    let task = api.create_task(settings, &refs);
    let id = task["id"].as_u64().unwrap();
    assert_eq!(task["files"][0]["name"], "one.ioc", "the folder part of an uploaded name is dropped");
    let shown = api.json(&format!("/tasks/{id}"));
    assert_eq!(shown["schedule"], "every:6h");
    assert_eq!(shown["response"]["actions"][1]["seconds"], 7200);
    assert_eq!(shown["scope"]["excludes"][0], "/srv/cache/**");
    assert_eq!(shown["indicators"].as_array().unwrap().len(), 2);
    assert_eq!(shown["indicators"][1]["description"], "second");
    // One file, byte for byte, as an attachment.
    let r = api.get(&format!("/tasks/{id}/files/1"));
    assert_eq!(r.status(), 200);
    assert!(r.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().contains("two.ioc"));
    assert_eq!(r.bytes().unwrap().as_ref(), files[1].1.as_slice());
    // The whole collection as a zip.
    let r = api.get(&format!("/tasks/{id}/export"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(r.bytes().unwrap().to_vec())).unwrap();
    assert_eq!(zip.len(), 2);
    for (name, bytes) in [("one.ioc", &files[0].1), ("two.ioc", &files[1].1)] {
        let mut got = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(&got, bytes);
    }
}

#[test]
fn editing_changes_settings_or_makes_a_new_collection_version_and_deleting_keeps_results() {
    let (_dir, _console, api) = setup(&[]);
    let files = two_iocs();
    let id = api.create_task(json!({"name": "t"}), &as_refs(&files))["id"].as_u64().unwrap();
    let r = api.patch(&format!("/tasks/{id}"), &json!({"name": "renamed", "schedule": "daily:03:30"}));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(
        (v["name"].as_str(), v["schedule"].as_str(), v["collection_version"].as_u64()),
        (Some("renamed"), Some("daily:03:30"), Some(1))
    );
    assert_eq!(api.patch(&format!("/tasks/{id}"), &json!({"schedule": "sometimes"})).status(), 400);
    assert_eq!(api.patch(&format!("/tasks/{id}"), &json!({"bogus": 1})).status(), 400);
    let third = ioc_file("ioc-three", "three.bin", "third");
    let r = api.multipart(Method::PATCH, &format!("/tasks/{id}"), files_form(&[("three.ioc", &third)]));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["collection_version"], 2);
    assert_eq!(v["name"], "renamed");
    let old = api.json(&format!("/tasks/{id}?version=1"));
    assert_eq!(old["indicators"].as_array().unwrap().len(), 2);
    // A run, then the task goes; its result stays.
    let (device, token) = api.enroll("dev-a");
    let run = api.post(&format!("/tasks/{id}/run"), &json!({"devices": [device]}));
    assert_eq!(run.status(), 201);
    let dev = api.with_token(&token);
    let jobs = dev.json("/agent/jobs");
    upload(&dev, &jobs["jobs"][0], device, "no-ioc-detected", &[]);
    assert_eq!(api.delete(&format!("/tasks/{id}")).status(), 204);
    assert_eq!(api.get(&format!("/tasks/{id}")).status(), 404);
    let results = api.json("/results");
    assert_eq!(results["results"].as_array().unwrap().len(), 1);
    assert_eq!(results["results"][0]["task_name"], "renamed");
}

/// Uploads the result of `job` as the device would.
fn upload(dev: &Api, job: &Value, device: u64, status: &str, detections: &[Value]) -> reqwest::blocking::Response {
    let now = chrono::Utc::now().timestamp_millis();
    let body = json!({
        "run_key": format!("d{device}-j{}", job["id"]),
        "job_id": job["id"],
        "task_id": job["task"]["id"],
        "collection_version": job["collection"]["version"],
        "trigger": job["trigger"],
        "started_at": now - 1000,
        "ended_at": now,
        "status": status,
        "counts": [["files_examined", 3]],
        "detections": detections,
    });
    let r = dev.post("/agent/results", &body);
    assert!(r.status().is_success(), "{}", r.status());
    r
}

#[test]
fn results_are_stored_once_per_run_key_and_filtered_by_device_group_status_and_date() {
    let (_dir, _console, api) = setup(&[]);
    let files = two_iocs();
    let id = api.create_task(json!({"name": "t"}), &as_refs(&files))["id"].as_u64().unwrap();
    let group = api.post("/groups", &json!({"name": "servers"})).json::<Value>().unwrap()["id"].as_u64().unwrap();
    let (a, token_a) = api.enroll("dev-a");
    let (b, token_b) = api.enroll("dev-b");
    assert_eq!(api.patch(&format!("/devices/{a}"), &json!({"group_id": group})).status(), 200);
    let jobs = api.post(&format!("/tasks/{id}/run"), &json!({"all": true})).json::<Value>().unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2);
    let (dev_a, dev_b) = (api.with_token(&token_a), api.with_token(&token_b));
    let job_a = dev_a.json("/agent/jobs")["jobs"][0].clone();
    let job_b = dev_b.json("/agent/jobs")["jobs"][0].clone();
    assert_eq!(job_a["collection"]["iocs"].as_array().unwrap().len(), 2);
    // Another device's job is refused, as if it did not exist.
    let now = chrono::Utc::now().timestamp_millis();
    let stolen = json!({"run_key": "x", "job_id": job_a["id"], "task_id": id, "collection_version": 1, "trigger": "manual",
        "started_at": now, "ended_at": now, "status": "no-ioc-detected"});
    assert_eq!(dev_b.post("/agent/results", &stolen).status(), 404);
    let detection = json!({
        "ioc_id": "ioc-one", "ioc_name": "ioc-one marker", "ioc_description": "first",
        "matched_items": ["ioc-one-name"], "object": {"kind": "file", "path": "/srv/one.bin"},
        "responses": [{"action": "quarantine", "outcome": "done", "detail": "moved"}],
    });
    let first = upload(&dev_a, &job_a, a, "ioc-detected", std::slice::from_ref(&detection));
    assert_eq!(first.status(), 201);
    let ack: Value = first.json().unwrap();
    // The same run sent again (the agent never saw the answer): acknowledged, not stored twice.
    let again = upload(&dev_a, &job_a, a, "ioc-detected", &[detection]);
    assert_eq!(again.status(), 200);
    let again: Value = again.json().unwrap();
    assert_eq!((again["duplicate"].as_bool(), &again["run_id"]), (Some(true), &ack["run_id"]));
    upload(&dev_b, &job_b, b, "no-ioc-detected", &[]);
    // The jobs are done: not handed out again.
    assert_eq!(dev_a.json("/agent/jobs")["jobs"].as_array().unwrap().len(), 0);
    let all = api.json("/results");
    assert_eq!(all["results"].as_array().unwrap().len(), 2);
    let by_device = api.json(&format!("/results?device={b}"));
    assert_eq!(by_device["results"].as_array().unwrap().len(), 1);
    assert_eq!(by_device["results"][0]["device"], "dev-b");
    let by_group = api.json(&format!("/results?group={group}"));
    assert_eq!(by_group["results"].as_array().unwrap().len(), 1);
    assert_eq!(by_group["results"][0]["device"], "dev-a");
    let detected = api.json("/results?status=ioc-detected");
    assert_eq!(detected["results"][0]["device_id"], a);
    assert_eq!(api.json(&format!("/results?task={id}&since=2000-01-01"))["results"].as_array().unwrap().len(), 2);
    assert_eq!(api.json("/results?until=2000-01-01")["results"].as_array().unwrap().len(), 0);
    assert_eq!(api.get("/results?status=maybe").status(), 400);
    // Alert details: the matched item looked up in the collection, the object, the response.
    let run_id = ack["run_id"].as_u64().unwrap();
    let details = api.json(&format!("/results/{run_id}"));
    assert_eq!(details["run"]["status"], "ioc-detected");
    let d = &details["detections"][0];
    assert_eq!(d["matched_items"][0]["term"], "FileItem/FileName");
    assert_eq!(d["matched_items"][0]["value"], "one.bin");
    assert_eq!(d["object"]["path"], "/srv/one.bin");
    assert_eq!(d["responses"][0]["outcome"], "done");
}

#[test]
fn enrollment_tokens_are_spent_and_device_names_are_unique() {
    let (_dir, _console, api) = setup(&[]);
    let r = api.post("/enrollment-tokens", &json!({"name": "once", "uses": 1}));
    let token = r.json::<Value>().unwrap()["token"].as_str().unwrap().to_string();
    let enrolling = api.with_token(&token);
    assert_eq!(enrolling.post("/devices/enroll", &json!({"name": "dev-a"})).status(), 201);
    assert_eq!(enrolling.post("/devices/enroll", &json!({"name": "dev-b"})).status(), 401);
    let again = api.with_token(&api.enrollment_token()).post("/devices/enroll", &json!({"name": "dev-a"}));
    assert_eq!(again.status(), 409);
    // Removing a device revokes its token.
    let (id, device_token) = api.enroll("dev-c");
    assert_eq!(api.delete(&format!("/devices/{id}")).status(), 204);
    assert_eq!(api.with_token(&device_token).get("/agent/jobs").status(), 401);
}

#[test]
fn a_restarted_console_on_the_same_database_has_every_task_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let mut console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&token);
    let files = two_iocs();
    let id = api.create_task(json!({"name": "kept"}), &as_refs(&files))["id"].as_u64().unwrap();
    let (device, device_token) = api.enroll("dev-a");
    api.post(&format!("/tasks/{id}/run"), &json!({"all": true}));
    let dev = api.with_token(&device_token);
    let job = dev.json("/agent/jobs")["jobs"][0].clone();
    upload(&dev, &job, device, "no-ioc-detected", &[]);
    let port = console.port();
    console.kill();
    let console = Console::start(&db, &format!("127.0.0.1:{port}"), &[]);
    let api = console.api(&token);
    assert_eq!(api.json("/tasks")["tasks"][0]["name"], "kept");
    assert_eq!(api.json("/results")["results"].as_array().unwrap().len(), 1);
    // The device's token still works, and the stored run is not taken twice.
    let again = upload(&api.with_token(&device_token), &job, device, "no-ioc-detected", &[]);
    assert_eq!(again.json::<Value>().unwrap()["duplicate"], true);
}

#[test]
fn the_console_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let console = Console::start(
        &db,
        "127.0.0.1:0",
        &["--tls-cert", cert_path.to_str().unwrap(), "--tls-key", key_path.to_str().unwrap()],
    );
    assert!(console.url.starts_with("https://"), "{}", console.url);
    let trusted = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let r = trusted.get(format!("{}/api/v1/session", console.url)).bearer_auth(&token).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key(header::STRICT_TRANSPORT_SECURITY));
    let r = trusted
        .post(format!("{}/api/v1/session", console.url))
        .json(&json!({"username": "admin", "password": "correct horse battery"}))
        .send()
        .unwrap();
    assert!(r.headers()[header::SET_COOKIE].to_str().unwrap().contains("Secure"));
    // A client that does not trust the certificate gets nowhere.
    let untrusted = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .no_proxy()
        .build()
        .unwrap();
    assert!(untrusted.get(format!("{}/login", console.url)).send().is_err());
    // Neither does plain HTTP on the TLS port.
    let plain = console.url.replace("https://", "http://");
    assert!(client().get(format!("{plain}/login")).send().map(|r| !r.status().is_success()).unwrap_or(true));
}

#[test]
fn regression_a_task_part_sent_with_a_file_name_is_the_settings_not_an_ioc_file() {
    // Browsers send a FormData Blob part with the file name "blob".
    let (_dir, _console, api) = setup(&[]);
    let good = ioc_file("ioc-one", "one.bin", "first");
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "task",
            reqwest::blocking::multipart::Part::text(json!({"name": "from a page"}).to_string())
                .file_name("blob")
                .mime_str("application/json")
                .unwrap(),
        )
        .part("file", reqwest::blocking::multipart::Part::bytes(good).file_name("one.ioc"));
    let r = api.multipart(Method::POST, "/tasks", form);
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    assert_eq!(v["name"], "from a page");
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
}

/// Issue 15: the console's task JSON listed every `is`/`starts-with` path
/// spelling, not what the agents' runs walk (a prefix's directory, no
/// unevaluable item).
#[test]
fn the_console_shows_a_task_the_paths_its_runs_scan() {
    let (_dir, _console, api) = setup(&[]);
    let xml = crate::cli_task::paths_ioc_xml("/opt/named", "/opt/skipped");
    let settings = json!({
        "name": "Paths",
        "scope": {"critical_areas": false, "ioc_paths": true},
        "targets": {"all": true, "groups": [], "devices": []},
    });
    let task = api.create_task(settings, &[("paths.ioc", xml.as_bytes())]);
    let shown = api.json(&format!("/tasks/{}", task["id"]));
    assert_eq!(
        shown["paths_named_by_iocs"],
        json!(["/opt/named", "/opt/named/evil"]),
        "{shown}"
    );
}
