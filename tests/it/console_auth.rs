//! Sign-in limiting and roles, attacked over real HTTP against a real console
//! process: parallel password guessing, lock-outs from another address,
//! oversized names, and every API route tried by every kind of caller.
use crate::console_common::*;
use reqwest::blocking::{Client, Response};
use reqwest::{header, Method};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

const ADMIN_PASSWORD: &str = "correct horse battery";

fn setup() -> (tempfile::TempDir, Console, Api) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&token);
    (dir, console, api)
}

/// A client whose connections come from `source` (a loopback address).
fn client_from(source: &str) -> Client {
    Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()
        .unwrap()
}

fn sign_in(http: &Client, console: &Console, user: &str, password: &str) -> Response {
    http.post(format!("{}/api/v1/session", console.url))
        .json(&json!({"username": user, "password": password}))
        .send()
        .unwrap()
}

/// A person of the console: id, API token and session cookie (`name=value`).
struct Person {
    id: u64,
    token: String,
    cookie: String,
}

/// Creates a user with `role` (as the administrator `admin`), signs them in
/// (a session) and makes them an API token.
fn add_person(console: &Console, admin: &Api, name: &str, role: &str) -> Person {
    let password = format!("{name} password");
    let r = admin.post("/users", &json!({"name": name, "password": password, "role": role}));
    let status = r.status();
    let v: Value = r.json().unwrap();
    assert_eq!(status, 201, "{v}");
    let id = v["user"]["id"].as_u64().unwrap();
    let http = client();
    let r = sign_in(&http, console, name, &password);
    assert_eq!(r.status(), 200);
    let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let r = http
        .post(format!("{}/api/v1/tokens", console.url))
        .header(header::COOKIE, &cookie)
        .header("X-IOC-Scan-CSRF", "1")
        .json(&json!({"name": "script"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().unwrap()["token"].as_str().unwrap().to_string();
    Person { id, token, cookie }
}

/// GET /session with a cookie: its status.
fn session_status(console: &Console, cookie: &str) -> u16 {
    client()
        .get(format!("{}/api/v1/session", console.url))
        .header(header::COOKIE, cookie)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn put(api: &Api, path: &str, body: &Value) -> Response {
    let mut r = api.http.put(format!("{}{path}", api.base)).json(body);
    if let Some(t) = &api.token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

#[test]
fn parallel_wrong_passwords_are_limited_before_argon2() {
    let (_dir, console, _api) = setup();
    let http = client_from("127.0.0.1");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|_| s.spawn(|| sign_in(&http, &console, "admin", "wrong password").status().as_u16()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let verified = statuses.iter().filter(|&&s| s == 401).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    // Each attempt is reserved before its password is checked: of 30 at
    // once, only the 5 allowed to (admin, 127.0.0.1) reach argon2.
    assert!(verified <= 5 && limited >= 25, "{statuses:?}");
    assert_eq!(verified + limited, 30, "{statuses:?}");
    // The address stays locked for that user, even with the right password.
    assert_eq!(sign_in(&http, &console, "admin", ADMIN_PASSWORD).status(), 429);
}

#[test]
fn locked_out_attacker_does_not_lock_out_owner_from_another_address() {
    let (_dir, console, _api) = setup();
    let attacker = client_from("127.0.0.2");
    let statuses: Vec<u16> =
        (0..12).map(|_| sign_in(&attacker, &console, "admin", "guessed password").status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 7, "{statuses:?}");
    // Locked: not even the right password gets through from there ...
    assert_eq!(sign_in(&attacker, &console, "admin", ADMIN_PASSWORD).status(), 429);
    // ... but the owner, from their own address, signs in.
    let owner = client_from("127.0.0.1");
    assert_eq!(sign_in(&owner, &console, "admin", ADMIN_PASSWORD).status(), 200);
}

#[test]
fn oversized_user_name_refused_before_work() {
    let (_dir, console, _api) = setup();
    let http = client_from("127.0.0.1");
    // 257 bytes: refused as invalid, neither verified nor counted, so they
    // cannot spend the address's attempts either; a body over the sign-in
    // limit (16 KiB) is refused before it is parsed (small enough to be
    // written whole before the answer: a larger one can meet a reset
    // instead of the 413 under load).
    for (name, status, error) in
        [("a".repeat(257), 400, "invalid"), ("é".repeat(129), 400, "invalid"), ("x".repeat(20_000), 413, "too-large")]
    {
        for _ in 0..15 {
            let r = sign_in(&http, &console, &name, "wrong password");
            assert_eq!(r.status(), status, "a {} byte name", name.len());
            assert_eq!(r.json::<Value>().unwrap()["error"], error);
        }
    }
    // 256 bytes is a name like any other (unknown: 401).
    assert_eq!(sign_in(&http, &console, &"b".repeat(256), "wrong password").status(), 401);
    assert_eq!(sign_in(&http, &console, "admin", ADMIN_PASSWORD).status(), 200);
}

#[test]
fn analyst_cannot_change_another_users_password() {
    let (_dir, console, admin) = setup();
    let analyst = add_person(&console, &admin, "ana", "analyst");
    let viewer = add_person(&console, &admin, "vic", "viewer");
    let ana = admin.with_token(&analyst.token);
    // The administrator's (id 1) and another person's password: refused.
    for target in [1, viewer.id] {
        let r = put(&ana, &format!("/users/{target}/password"), &json!({"password": "taken over now"}));
        assert_eq!(r.status(), 403, "user {target}");
    }
    let owner = client();
    assert_eq!(sign_in(&owner, &console, "admin", ADMIN_PASSWORD).status(), 200);
    assert_eq!(sign_in(&owner, &console, "vic", "vic password").status(), 200);
    assert_eq!(sign_in(&owner, &console, "admin", "taken over now").status(), 401);
    // Nor make themselves administrator, or add one.
    assert_eq!(ana.patch(&format!("/users/{}", analyst.id), &json!({"role": "admin"})).status(), 403);
    let r = ana.post("/users", &json!({"name": "mallory", "password": "mallory password", "role": "admin"}));
    assert_eq!(r.status(), 403);
}

#[test]
fn own_password_change_needs_old_password() {
    let (_dir, console, admin) = setup();
    let analyst = add_person(&console, &admin, "ana", "analyst");
    let ana = admin.with_token(&analyst.token);
    let path = format!("/users/{}/password", analyst.id);
    // A stolen session or token alone does not let its thief take the account.
    assert_eq!(put(&ana, &path, &json!({"password": "thief's password"})).status(), 403);
    let wrong = json!({"password": "thief's password", "old_password": "not the password"});
    assert_eq!(put(&ana, &path, &wrong).status(), 403);
    let http = client();
    assert_eq!(sign_in(&http, &console, "ana", "thief's password").status(), 401);
    // With the old password it changes.
    let right = json!({"password": "ana's new password", "old_password": "ana password"});
    assert_eq!(put(&ana, &path, &right).status(), 204);
    assert_eq!(sign_in(&http, &console, "ana", "ana's new password").status(), 200);
    assert_eq!(sign_in(&http, &console, "ana", "ana password").status(), 401);
}

#[test]
fn password_change_revokes_tokens_and_sessions() {
    let (_dir, console, admin) = setup();
    let analyst = add_person(&console, &admin, "ana", "analyst");
    let ana = admin.with_token(&analyst.token);
    assert_eq!(ana.get("/tasks").status(), 200);
    assert_eq!(session_status(&console, &analyst.cookie), 200);
    // The administrator resets the password (say the old one leaked).
    let r = put(&admin, &format!("/users/{}/password", analyst.id), &json!({"password": "reset by admin"}));
    assert_eq!(r.status(), 204);
    assert_eq!(ana.get("/tasks").status(), 401, "the API token outlived the password");
    assert_eq!(session_status(&console, &analyst.cookie), 401, "the session outlived the password");
    // Changing one's own password also ends one's tokens and sessions.
    let again = add_person(&console, &admin, "bob", "viewer");
    let bob = admin.with_token(&again.token);
    let r = put(
        &bob,
        &format!("/users/{}/password", again.id),
        &json!({"password": "bob's new password", "old_password": "bob password"}),
    );
    assert_eq!(r.status(), 204);
    assert_eq!(bob.get("/tasks").status(), 401);
    assert_eq!(session_status(&console, &again.cookie), 401);
    // Other people's credentials are untouched.
    assert_eq!(admin.get("/tasks").status(), 200);
}

#[test]
fn deleted_user_tokens_and_sessions_stop_at_once() {
    let (_dir, console, admin) = setup();
    let analyst = add_person(&console, &admin, "ana", "analyst");
    let ana = admin.with_token(&analyst.token);
    assert_eq!(ana.get("/tasks").status(), 200);
    assert_eq!(admin.delete(&format!("/users/{}", analyst.id)).status(), 204);
    assert_eq!(ana.get("/tasks").status(), 401);
    assert_eq!(session_status(&console, &analyst.cookie), 401);
    assert_eq!(sign_in(&client(), &console, "ana", "ana password").status(), 401);
    let users = admin.json("/users");
    assert!(users["users"].as_array().unwrap().iter().all(|u| u["name"] != "ana"), "{users}");
    // The last administrator can be neither deleted nor demoted.
    assert_eq!(admin.delete("/users/1").status(), 409);
    assert_eq!(admin.patch("/users/1", &json!({"role": "analyst"})).status(), 409);
    let second = add_person(&console, &admin, "root2", "admin");
    assert_eq!(admin.with_token(&second.token).delete("/users/1").status(), 204);
    assert_eq!(admin.get("/tasks").status(), 401);
}

#[test]
fn viewer_cannot_create_tasks() {
    let (_dir, console, admin) = setup();
    let iocs = [("one.ioc", ioc_file("ioc-one", "one.bin", "first"))];
    let files: Vec<(&str, &[u8])> = iocs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let task = admin.create_task(json!({"name": "existing"}), &files);
    let id = task["id"].as_u64().unwrap();
    let viewer = add_person(&console, &admin, "vic", "viewer");
    let vic = admin.with_token(&viewer.token);
    let r = vic.multipart(Method::POST, "/tasks", task_form(&json!({"name": "viewer's"}), &files));
    assert_eq!(r.status(), 403);
    assert_eq!(vic.post(&format!("/tasks/{id}/run"), &json!({"all": true})).status(), 403);
    assert_eq!(vic.delete(&format!("/tasks/{id}")).status(), 403);
    // Reading is what a viewer is for.
    let tasks = vic.json("/tasks");
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(vic.get(&format!("/tasks/{id}")).status(), 200);
    // An analyst may.
    let analyst = add_person(&console, &admin, "ana", "analyst");
    admin.with_token(&analyst.token).create_task(json!({"name": "analyst's"}), &files);
}

/// Who calls a route in [`every_api_route_by_every_caller_is_allowed_or_forbidden_as_documented`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Admin,
    Analyst,
    Viewer,
    Device,
    Enrollment,
    Nobody,
}
use Caller::*;
const CALLERS: [Caller; 6] = [Admin, Analyst, Viewer, Device, Enrollment, Nobody];

const PEOPLE: &[Caller] = &[Admin, Analyst, Viewer];
const ANALYSTS: &[Caller] = &[Admin, Analyst];
const ADMINS: &[Caller] = &[Admin];

/// Every API route: method, path, a body, who may call it. Ids are of
/// nothing (999999) so an allowed call is answered 404/400 and changes nothing.
fn route_table() -> Vec<(Method, &'static str, &'static str, Value, &'static [Caller])> {
    let none = Value::Null;
    vec![
        (Method::POST, "/session", "/session", json!({}), &[Admin, Analyst, Viewer, Device, Enrollment, Nobody]),
        (Method::GET, "/session", "/session", none.clone(), PEOPLE),
        (Method::DELETE, "/session", "/session", none.clone(), PEOPLE),
        (Method::GET, "/users", "/users", none.clone(), ADMINS),
        (Method::POST, "/users", "/users", json!({}), ADMINS),
        (Method::PATCH, "/users/{id}", "/users/999999", json!({"role": "viewer"}), ADMINS),
        (Method::DELETE, "/users/{id}", "/users/999999", none.clone(), ADMINS),
        // Another person's password (one's own needs the old password).
        (Method::PUT, "/users/{id}/password", "/users/999999/password", json!({"password": "p4ssword!"}), ADMINS),
        (Method::GET, "/tokens", "/tokens", none.clone(), PEOPLE),
        (Method::POST, "/tokens", "/tokens", json!({"name": "table"}), PEOPLE),
        (Method::DELETE, "/tokens/{id}", "/tokens/999999", none.clone(), PEOPLE),
        (Method::GET, "/enrollment-tokens", "/enrollment-tokens", none.clone(), ADMINS),
        (Method::POST, "/enrollment-tokens", "/enrollment-tokens", json!({"uses": 0}), ADMINS),
        (Method::GET, "/devices", "/devices", none.clone(), PEOPLE),
        (Method::POST, "/devices/enroll", "/devices/enroll", json!({}), &[Enrollment]),
        (Method::GET, "/devices/{id}", "/devices/999999", none.clone(), PEOPLE),
        (Method::PATCH, "/devices/{id}", "/devices/999999", json!({}), ADMINS),
        (Method::DELETE, "/devices/{id}", "/devices/999999", none.clone(), ADMINS),
        (Method::GET, "/groups", "/groups", none.clone(), PEOPLE),
        (Method::POST, "/groups", "/groups", json!({}), ADMINS),
        (Method::PATCH, "/groups/{id}", "/groups/999999", json!({}), ADMINS),
        (Method::DELETE, "/groups/{id}", "/groups/999999", none.clone(), ADMINS),
        (Method::POST, "/iocs/preview", "/iocs/preview", json!({}), ANALYSTS),
        (Method::GET, "/tasks", "/tasks", none.clone(), PEOPLE),
        (Method::POST, "/tasks", "/tasks", json!({}), ANALYSTS),
        (Method::GET, "/tasks/{id}", "/tasks/999999", none.clone(), PEOPLE),
        (Method::PATCH, "/tasks/{id}", "/tasks/999999", json!({}), ANALYSTS),
        (Method::DELETE, "/tasks/{id}", "/tasks/999999", none.clone(), ANALYSTS),
        (Method::GET, "/tasks/{id}/export", "/tasks/999999/export", none.clone(), PEOPLE),
        (Method::GET, "/tasks/{id}/files/{index}", "/tasks/999999/files/0", none.clone(), PEOPLE),
        (Method::POST, "/tasks/{id}/run", "/tasks/999999/run", json!({"all": true}), ANALYSTS),
        (Method::PUT, "/tasks/{id}/schedule", "/tasks/999999/schedule", json!({}), ANALYSTS),
        (Method::GET, "/jobs", "/jobs", none.clone(), PEOPLE),
        (Method::GET, "/results", "/results", none.clone(), PEOPLE),
        (Method::GET, "/results/{id}", "/results/999999", none.clone(), PEOPLE),
        (Method::GET, "/agent/jobs", "/agent/jobs", none.clone(), &[Device]),
        (Method::POST, "/agent/results", "/agent/results", json!({}), &[Device]),
        (Method::POST, "/devices/{id}/lift-isolation", "/devices/999999/lift-isolation", none.clone(), ANALYSTS),
        (Method::GET, "/devices/{id}/commands", "/devices/999999/commands", none.clone(), PEOPLE),
        (Method::POST, "/agent/commands/{id}", "/agent/commands/999999", json!({"outcome": "done"}), &[Device]),
    ]
}

#[test]
fn every_api_route_by_every_caller_is_allowed_or_forbidden_as_documented() {
    // The table covers exactly the routes the router has: a new route
    // without a row here fails.
    let table = route_table();
    let tested: BTreeSet<(String, String)> = table.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())).collect();
    assert_eq!(tested.len(), table.len(), "a route is twice in the table");
    let routed: BTreeSet<(String, String)> =
        ioc_scan::console::api::routes().iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(tested, routed, "the table and the router's routes differ");

    let (_dir, console, admin) = setup();
    let analyst = add_person(&console, &admin, "ana", "analyst");
    let viewer = add_person(&console, &admin, "vic", "viewer");
    let (_, device_token) = admin.enroll("dev-a");
    let enrollment = admin.enrollment_token();
    let credentials = |caller: Caller| -> Option<String> {
        match caller {
            Admin => admin.token.clone(),
            Analyst => Some(analyst.token.clone()),
            Viewer => Some(viewer.token.clone()),
            Device => Some(device_token.clone()),
            Enrollment => Some(enrollment.clone()),
            Nobody => None,
        }
    };
    let http = client();
    let mut wrong = Vec::new();
    for (method, route, path, body, allowed) in &table {
        for caller in CALLERS {
            let mut r = http.request(method.clone(), format!("{}{path}", admin.base));
            if let Some(t) = credentials(caller) {
                r = r.bearer_auth(t);
            }
            if !body.is_null() {
                r = r.json(body);
            }
            let status = r.send().unwrap().status().as_u16();
            let expected_denial = if caller == Nobody { 401 } else { 403 };
            let ok = if allowed.contains(&caller) {
                !matches!(status, 401 | 403 | 405 | 429 | 500..)
            } else {
                status == expected_denial
            };
            if !ok {
                let want = if allowed.contains(&caller) { "allowed" } else { "denied" };
                wrong.push(format!("{method} {route} as {caller:?}: {status}, expected {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn console_user_add_gives_the_role_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let _ = init(&db);
    let add = |user: &str, role: &str| {
        crate::common::ioc_scan()
            .args(["console", "user", "add", "--user", user, "--role", role, "--password", "analyst password", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    let out = add("ana", "analyst");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = add("eve", "root");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"), "{}", String::from_utf8_lossy(&out.stderr));
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let http = client();
    let r = sign_in(&http, &console, "ana", "analyst password");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["user"]["role"], "analyst");
    assert_eq!(sign_in(&http, &console, "eve", "analyst password").status(), 401);
}

#[test]
fn guessed_session_cookies_are_limited_per_address() {
    let (_dir, console, _api) = setup();
    let guesser = client_from("127.0.0.3");
    let statuses: Vec<u16> = (0..130)
        .map(|n| {
            let r = guesser
                .get(format!("{}/api/v1/session", console.url))
                .header(header::COOKIE, format!("ioc_scan_session=s_{n:064x}"))
                .send()
                .unwrap();
            r.status().as_u16()
        })
        .collect();
    assert!(statuses[..100].iter().all(|&s| s == 401), "{statuses:?}");
    assert!(statuses[100..].iter().all(|&s| s == 429), "{statuses:?}");
    // Others, and right credentials, are not held up.
    let owner = client_from("127.0.0.1");
    assert_eq!(sign_in(&owner, &console, "admin", ADMIN_PASSWORD).status(), 200);
}
