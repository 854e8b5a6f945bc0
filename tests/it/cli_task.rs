//! `ioc-scan task|results|alert|agent` end to end, through the binary, on
//! real redb files in tempdirs.
use crate::common::{expect_code, ioc_scan, sha256_hex};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An OpenIOC 1.0 file with one `FileItem/FullPath is PATH` item.
pub fn ioc_xml(id: &str, name: &str, path: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="us-ascii"?>
<ioc xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" id="{id}" last-modified="2013-01-01T00:00:00" xmlns="http://schemas.mandiant.com/2010/ioc">
  <short_description>{name}</short_description>
  <description>{name} description</description>
  <definition>
    <Indicator operator="OR" id="{id}-ind">
      <IndicatorItem id="{id}-item" condition="is">
        <Context document="FileItem" search="FileItem/FullPath" type="mir" />
        <Content type="string">{path}</Content>
      </IndicatorItem>
    </Indicator>
  </definition>
</ioc>
"#
    )
}

/// A tempdir with a database path, an `iocs/` folder and a `scan/` tree.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("iocs")).unwrap();
        std::fs::create_dir_all(dir.path().join("scan")).unwrap();
        Env { dir }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("state/ioc-scan.redb")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes an IOC file under iocs/ and returns its path.
    pub fn ioc(&self, file: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path("iocs").join(file);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Writes `scan/evil.bin` and an IOC `hit` (iocs/hit.ioc) that names it.
    pub fn hit_ioc(&self) -> PathBuf {
        let evil = self.path("scan/evil.bin");
        std::fs::write(&evil, b"x").unwrap();
        self.ioc("hit.ioc", ioc_xml("hit", "Hit", s(&evil)))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = ioc_scan();
        c.args(args)
            .env("IOC_SCAN_DB", self.db())
            .env_remove("IOC_SCAN_RETENTION_DAYS");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects this exit code; returns stdout.
    pub fn ok(&self, args: &[&str], code: i32) -> String {
        expect_code(self.cmd(args), code)
    }

    /// Runs and expects the command to be refused (exit code 2); returns
    /// stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(2), "ioc-scan {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `task create --name NAME --ioc IOC... --no-critical-areas EXTRA...`;
    /// returns stdout.
    pub fn create_task(&self, name: &str, iocs: &[&Path], extra: &[&str]) -> String {
        let mut args = vec!["task", "create", "--name", name, "--ioc"];
        args.extend(iocs.iter().map(|p| s(p)));
        args.push("--no-critical-areas");
        args.extend_from_slice(extra);
        self.ok(&args, 0)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, 0)).unwrap()
    }

    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        self.ok(args, 0)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn task_create_list_show_edit_delete() {
    let env = Env::new();
    let evil = env.path("scan/evil.bin");
    let a = env.ioc("a.ioc", ioc_xml("aaaa-1111", "Evil A", s(&evil)));
    let out = env.ok(
        &[
            "task",
            "create",
            "--name",
            "first",
            "--description",
            "the first task",
            "--ioc",
            s(&a),
            "--scope",
            "/srv",
            "--exclude",
            "*.log",
            "--respond",
            "quarantine",
            "isolate:30m",
            "critical-areas-scan",
            "--schedule",
            "daily:03:30",
        ],
        0,
    );
    assert!(
        out.contains("created task 1 first (1 IOC from 1 file)"),
        "{out}"
    );

    let list = env.ok(&["task", "list"], 0);
    assert!(
        list.contains("first")
            && list.contains("daily:03:30")
            && list.contains("quarantine,isolate:30m,critical-areas-scan"),
        "{list}"
    );
    let tasks = env.json_lines(&["task", "list", "--json"]);
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t["id"], 1);
    assert_eq!(t["schedule"], "daily:03:30");
    assert_eq!(t["scope"]["critical_areas"], true);
    assert_eq!(t["scope"]["custom_paths"][0], "/srv");
    assert_eq!(t["scope"]["excludes"][0], "*.log");
    assert_eq!(t["scope"]["ioc_paths"][0], s(&evil));
    assert_eq!(t["response"]["apply"], true);
    assert_eq!(
        t["response"]["actions"],
        serde_json::json!(["quarantine", "isolate:30m", "critical-areas-scan"])
    );
    assert!(t["next_due"].is_string());

    let show = env.ok(&["task", "show", "1"], 0);
    for want in [
        "Task 1: first",
        "the first task",
        "a.ioc",
        "aaaa-1111",
        "Evil A",
        "FileItem/FullPath is",
        "aaaa-1111-item",
        "daily:03:30",
    ] {
        assert!(show.contains(want), "missing {want} in\n{show}");
    }
    let shown = env.json(&["task", "show", "1", "--json"]);
    assert_eq!(
        shown["indicators"][0]["items"][0]["term"],
        "FileItem/FullPath"
    );
    assert_eq!(shown["indicators"][0]["items"][0]["value"], s(&evil));

    // Edit: settings only (same collection version), then the IOC files.
    env.ok(
        &[
            "task",
            "edit",
            "1",
            "--name",
            "renamed",
            "--no-critical-areas",
            "--schedule",
            "every:2h",
            "--apply-response",
            "off",
            "--clear-excludes",
        ],
        0,
    );
    let t = &env.json_lines(&["task", "list", "--json"])[0];
    assert_eq!(t["name"], "renamed");
    assert_eq!(t["collection_version"], 1);
    assert_eq!(t["scope"]["critical_areas"], false);
    assert_eq!(t["scope"]["excludes"], serde_json::json!([]));
    assert_eq!(t["scope"]["custom_paths"][0], "/srv");
    assert_eq!(t["schedule"], "every:2h");
    assert_eq!(t["response"]["apply"], false);
    assert_eq!(t["response"]["actions"][0], "quarantine");
    let b = env.ioc("b.ioc", ioc_xml("bbbb-2222", "Evil B", "/nonexistent/b"));
    let out = env.ok(&["task", "edit", "1", "--ioc", s(&b)], 0);
    assert!(out.contains("collection version 2"), "{out}");
    let shown = env.json(&["task", "show", "1", "--json"]);
    assert_eq!(shown["versions"], serde_json::json!([1, 2]));
    assert_eq!(shown["indicators"][0]["id"], "bbbb-2222");
    let old = env.json(&["task", "show", "1", "--json", "--version", "1"]);
    assert_eq!(old["indicators"][0]["id"], "aaaa-1111");

    // Bad input is refused with a message, nothing stored.
    let broken = env.ioc("broken.ioc", "<ioc><unclosed>");
    for (args, why) in [
        (vec![s(&a), "--schedule", "weekly"], "bad schedule"),
        (vec![s(&a), "--respond", "explode"], "unknown response action"),
        (vec![s(&broken)], "broken.ioc"),
    ] {
        let err = env.refused(&[&["task", "create", "--name", "x", "--ioc"][..], &args].concat());
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(env.json_lines(&["task", "list", "--json"]).len(), 1);

    let out = env.ok(&["task", "delete", "1"], 0);
    assert!(out.contains("deleted task 1"), "{out}");
    assert!(env.json_lines(&["task", "list", "--json"]).is_empty());
    let err = env.refused(&["task", "show", "1"]);
    assert!(err.contains("no task with id 1"), "{err}");
}

#[test]
fn duplicate_ioc_ids_are_refused_naming_both_files() {
    let env = Env::new();
    let a = env.ioc("first.ioc", ioc_xml("dup-id", "A", "/x"));
    let b = env.ioc("second.ioc", ioc_xml("dup-id", "B", "/y"));
    let err = env.refused(&["task", "create", "--name", "dup", "--ioc", s(&a), s(&b)]);
    assert!(
        err.contains("duplicate IOC id dup-id")
            && err.contains("first.ioc")
            && err.contains("second.ioc"),
        "{err}"
    );
}

#[test]
fn export_writes_the_files_byte_for_byte_including_bom_and_crlf() {
    let env = Env::new();
    let plain = ioc_xml("plain-1", "Plain", "/x").into_bytes();
    let mut bom_crlf = b"\xEF\xBB\xBF".to_vec();
    bom_crlf.extend(
        ioc_xml("bom-2", "Bom", "/y")
            .replace('\n', "\r\n")
            .into_bytes(),
    );
    let p1 = env.ioc("plain.ioc", &plain);
    let p2 = env.ioc("windows.ioc", &bom_crlf);
    env.ok(
        &["task", "create", "--name", "t", "--ioc", s(&p1), s(&p2)],
        0,
    );
    let out = env.path("export1");
    env.ok(&["task", "export", "1", "--out", s(&out)], 0);
    assert_eq!(
        sha256_hex(&std::fs::read(out.join("plain.ioc")).unwrap()),
        sha256_hex(&plain)
    );
    assert_eq!(
        sha256_hex(&std::fs::read(out.join("windows.ioc")).unwrap()),
        sha256_hex(&bom_crlf)
    );

    // After an edit, --version 1 still exports the original upload.
    let p3 = env.ioc("new.ioc", ioc_xml("new-3", "New", "/z"));
    env.ok(&["task", "edit", "1", "--ioc", s(&p3)], 0);
    let out2 = env.path("export2");
    env.ok(
        &["task", "export", "1", "--out", s(&out2), "--version", "1"],
        0,
    );
    assert_eq!(std::fs::read(out2.join("windows.ioc")).unwrap(), bom_crlf);
    let out3 = env.path("export3");
    env.ok(&["task", "export", "1", "--out", s(&out3)], 0);
    assert!(out3.join("new.ioc").exists() && !out3.join("plain.ioc").exists());
    // Existing files are not overwritten.
    env.refused(&["task", "export", "1", "--out", s(&out3)]);
}

#[test]
fn runs_keep_their_collection_version_and_alerts_show_the_indicators_they_used() {
    let env = Env::new();
    let scan = env.path("scan");
    let evil = scan.join("evil.bin");
    std::fs::write(&evil, b"evil").unwrap();
    let a = env.ioc("old.ioc", ioc_xml("old-ioc", "Old IOC", s(&evil)));
    env.create_task("t", &[&a], &["--scope", s(&scan)]);

    let out = env.ok(&["task", "run", "1", "--device-name", "host-a"], 1);
    assert!(
        out.contains("DETECTED old-ioc") && out.contains("evil.bin"),
        "{out}"
    );
    assert!(out.contains("ioc-detected"), "{out}");

    let b = env.ioc("new.ioc", ioc_xml("new-ioc", "New IOC", "/nonexistent/new"));
    env.ok(&["task", "edit", "1", "--ioc", s(&b)], 0);
    let lines = env.json_lines(&["task", "run", "1", "--json", "--device-name", "host-b"]);
    let run = lines.last().unwrap();
    assert_eq!(run["type"], "run");
    assert_eq!(run["status"], "no-ioc-detected");
    assert_eq!(run["collection_version"], 2);

    let results = env.json_lines(&["results", "--json"]);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["id"], 2, "newest first");
    assert_eq!(results[1]["status"], "ioc-detected");
    assert_eq!(results[1]["collection_version"], 1);
    let human = env.ok(&["results"], 0);
    assert!(
        human.contains("ioc-detected")
            && human.contains("no-ioc-detected")
            && human.contains("host-a"),
        "{human}"
    );
    assert!(human.contains("1 detection of 1 IOC"), "{human}");

    // The old run's alert shows the old indicators, looked up in version 1.
    let alert = env.json(&["alert", "1", "--json"]);
    assert_eq!(alert["run"]["collection_version"], 1);
    let det = &alert["detections"][0];
    assert_eq!(det["ioc"]["id"], "old-ioc");
    assert_eq!(det["ioc"]["name"], "Old IOC");
    assert_eq!(det["ioc"]["description"], "Old IOC description");
    assert_eq!(det["matched_items"][0]["id"], "old-ioc-item");
    assert_eq!(det["matched_items"][0]["term"], "FileItem/FullPath");
    assert_eq!(det["matched_items"][0]["condition"], "is");
    assert_eq!(det["matched_items"][0]["value"], s(&evil));
    assert_eq!(det["object"]["kind"], "file");
    assert_eq!(det["object"]["path"], s(&evil));
    assert_eq!(det["responses"], serde_json::json!([]));
    assert_eq!(alert["indicators"][0]["id"], "old-ioc");
    let text = env.ok(&["alert", "1"], 0);
    for want in [
        "Run 1: ioc-detected",
        "Old IOC",
        "FileItem/FullPath is",
        "evil.bin",
        "Response: none",
        "collection version 1",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    let err = env.refused(&["alert", "99"]);
    assert!(err.contains("no run with id 99"), "{err}");

    env.create_task("t2", &[&a], &["--scope", s(&scan)]);
    // `task run --json` speaks `scan --json`'s detection lines (same keys).
    let detected = |args: &[&str]| -> Vec<serde_json::Value> {
        env.ok(args, 1).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let task_lines = detected(&["task", "run", "2", "--json", "--device-name", "host-a"]);
    let scan_lines = detected(&["scan", "--json", "--ioc", s(&a), "--scope", s(&scan)]);
    let keys = |l: &serde_json::Value| l.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
    let (task_d, scan_d) = (&task_lines[0], &scan_lines[0]);
    assert_eq!((&task_d["type"], &scan_d["type"]), (&"detection".into(), &"detection".into()));
    for key in keys(scan_d) {
        if key != "ioc_source" {
            assert!(task_d.get(&key).is_some(), "task run --json lacks {key}: {task_d}");
        }
    }
    assert_eq!(task_d["object"]["path"], scan_d["object"]["path"]);
    assert_eq!(task_d["matched_items"], scan_d["matched_items"]);
}

#[test]
fn results_filter_by_task_device_status_and_date() {
    let env = Env::new();
    let hit = env.hit_ioc();
    let miss = env.ioc("miss.ioc", ioc_xml("miss", "Miss", "/nonexistent/miss"));
    env.create_task("hit", &[&hit], &[]);
    env.create_task("miss", &[&miss], &[]);
    env.ok(&["task", "run", "1", "--device-name", "d1"], 1);
    env.ok(&["task", "run", "2", "--device-name", "d1"], 0);
    env.ok(&["task", "run", "2", "--device-name", "d2"], 0);
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["results", "--json"];
        a.extend_from_slice(args);
        env.json_lines(&a)
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&[]), vec![3, 2, 1]);
    assert_eq!(ids(&["--task", "2"]), vec![3, 2]);
    assert_eq!(ids(&["--device", "d1"]), vec![2, 1]);
    assert_eq!(ids(&["--status", "ioc-detected"]), vec![1]);
    assert_eq!(ids(&["--task", "2", "--device", "d2"]), vec![3]);
    assert_eq!(ids(&["--since", "2000-01-01"]), vec![3, 2, 1]);
    assert_eq!(ids(&["--since", "2999-01-01T00:00:00Z"]), Vec::<u64>::new());
    env.refused(&["results", "--status", "fine"]);
}

#[test]
fn agent_once_runs_the_due_and_agent_start_tasks() {
    let env = Env::new();
    let hit = env.hit_ioc();
    env.create_task("every", &[&hit], &["--schedule", "every:1h"]);
    env.create_task("start", &[&hit], &["--schedule", "agent-start"]);
    env.create_task("manual", &[&hit], &[]);
    env.create_task("later", &[&hit], &["--schedule", "once:2999-01-01T00:00:00Z"]);
    env.ok(&["agent", "--once", "--device-name", "agent-dev"], 0);
    let runs = env.json_lines(&["results", "--json"]);
    let mut tasks: Vec<u64> = runs
        .iter()
        .map(|r| r["task_id"].as_u64().unwrap())
        .collect();
    tasks.sort();
    assert_eq!(tasks, vec![1, 2]);
    assert!(runs
        .iter()
        .all(|r| r["device"] == "agent-dev" && r["status"] == "ioc-detected"));
    // Again at once: `every:1h` is not due yet; agent-start runs on each start.
    env.ok(&["agent", "--once", "--device-name", "agent-dev"], 0);
    let runs = env.json_lines(&["results", "--json", "--task", "1"]);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        env.json_lines(&["results", "--json", "--task", "2"]).len(),
        2
    );
}

#[test]
fn a_damaged_or_foreign_database_file_is_refused_by_every_command_and_left_unchanged() {
    let env = Env::new();
    std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..20000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(env.db(), &garbage).unwrap();
    let a = env.ioc("a.ioc", ioc_xml("a", "A", "/x"));
    for args in [
        vec!["results"],
        vec!["task", "list"],
        vec!["task", "create", "--name", "x", "--ioc", s(&a)],
        vec!["agent", "--once"],
    ] {
        let err = env.refused(&args);
        assert!(
            err.contains("not an ioc-scan database") && err.contains("left unchanged"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(env.db()).unwrap(), garbage);
}

/// `isolation on --duration D --dry-run --json`: the seconds it would isolate for.
fn isolation_seconds(env: &Env, duration: &str) -> u64 {
    let out = env.ok(
        &[
            "isolation",
            "on",
            "--duration",
            duration,
            "--dry-run",
            "--json",
        ],
        0,
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
    v["seconds"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

/// Creates a task with these extra arguments; returns its `task list --json` line.
fn task_with(env: &Env, name: &str, extra: &[&str]) -> Value {
    let ioc = env.hit_ioc();
    let mut args = vec!["task", "create", "--name", name, "--ioc", s(&ioc)];
    args.extend_from_slice(extra);
    env.ok(&args, 0);
    let tasks = env.json_lines(&["task", "list", "--json"]);
    tasks.into_iter().find(|t| t["name"] == name).unwrap()
}

/// Issue 15: a bare number was seconds for `isolation on --duration` but
/// minutes for a task's `--respond isolate:N`; one grammar now.
#[test]
fn isolate_response_duration_90_means_90_seconds_like_isolation_on() {
    let env = Env::new();
    let t = task_with(&env, "iso90", &["--respond", "isolate:90"]);
    assert_eq!(
        t["response"]["actions"],
        serde_json::json!(["isolate:1m30s"]),
        "{t}"
    );
    assert_eq!(isolation_seconds(&env, "90"), 90);
}

#[test]
fn one_duration_grammar_accepts_1h30m_everywhere() {
    let env = Env::new();
    let t = task_with(
        &env,
        "mixed",
        &["--respond", "isolate:1h30m", "--monitor", "1h30m"],
    );
    assert_eq!(
        t["response"]["actions"],
        serde_json::json!(["isolate:1h30m"]),
        "{t}"
    );
    assert_eq!(t["monitor_seconds"], 5400, "{t}");
    assert_eq!(isolation_seconds(&env, "1h30m"), 5400);
    // Every place refuses what the grammar refuses, saying what it expected.
    for bad in ["1x", "-5", "99999999999999999999s", ""] {
        let iso = env.refused(&["isolation", "on", &format!("--duration={bad}"), "--dry-run"]);
        let task = env.refused(&[
            "task",
            "create",
            "--name",
            "bad",
            "--ioc",
            "x",
            &format!("--respond=isolate:{bad}"),
        ]);
        let monitor = env.refused(&[
            "task",
            "create",
            "--name",
            "bad",
            "--ioc",
            "x",
            &format!("--monitor={bad}"),
        ]);
        for err in [iso, task, monitor] {
            assert!(err.contains("1h30m"), "{bad:?}: {err}");
        }
    }
}

/// An OpenIOC 1.0 file `paths` naming paths four ways: `starts-with
/// NAMED/kdevtmp`, an unevaluable item (unknown condition) on
/// `SKIPPED/marker`, `is NAMED/evil`, and `FileName is marker` (no path).
pub fn paths_ioc_xml(named_s: &str, skipped_s: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="us-ascii"?>
<ioc xmlns="http://schemas.mandiant.com/2010/ioc" id="paths" last-modified="2013-01-01T00:00:00">
  <short_description>Paths</short_description>
  <definition>
    <Indicator operator="OR" id="paths-ind">
      <IndicatorItem id="prefix" condition="starts-with">
        <Context document="FileItem" search="FileItem/FullPath" type="mir" />
        <Content type="string">{named_s}/kdevtmp</Content>
      </IndicatorItem>
      <IndicatorItem id="unevaluable" condition="bogus">
        <Context document="FileItem" search="FileItem/FullPath" type="mir" />
        <Content type="string">{skipped_s}/marker</Content>
      </IndicatorItem>
      <IndicatorItem id="exact" condition="is">
        <Context document="FileItem" search="FileItem/FullPath" type="mir" />
        <Content type="string">{named_s}/evil</Content>
      </IndicatorItem>
      <IndicatorItem id="name" condition="is">
        <Context document="FileItem" search="FileItem/FileName" type="mir" />
        <Content type="string">marker</Content>
      </IndicatorItem>
    </Indicator>
  </definition>
</ioc>
"#
    )
}

/// Issue 15: what a task shows as "paths named in the IOCs" was computed
/// apart from what its runs walk (it listed a `starts-with` prefix that the
/// scan widens to its directory, and an unevaluable item the scan skips).
#[test]
fn task_shows_the_paths_its_runs_scan() {
    let env = Env::new();
    let dir = |rel: &str| {
        std::fs::create_dir_all(env.path(rel)).unwrap();
        env.path(rel).canonicalize().unwrap()
    };
    let (named, skipped) = (dir("scan/named"), dir("scan/skipped"));
    std::fs::write(named.join("evil"), b"x").unwrap();
    std::fs::write(named.join("kdevtmpfsi"), b"x").unwrap();
    // Walked, this file would match the FileName item: its absence from the
    // detections shows the unevaluable item naming it adds no scope.
    std::fs::write(skipped.join("marker"), b"x").unwrap();
    let (named_s, skipped_s) = (s(&named), s(&skipped));
    let ioc = env.ioc("paths.ioc", paths_ioc_xml(named_s, skipped_s));
    env.create_task("paths", &[&ioc], &[]);

    let shown = env.json(&["task", "show", "1", "--json"]);
    let want = serde_json::json!([named_s, format!("{named_s}/evil")]);
    assert_eq!(shown["scope"]["ioc_paths"], want, "{shown}");
    let human = env.ok(&["task", "show", "1"], 0);
    assert!(
        human.contains(&format!(
            "paths named in the IOCs: {named_s} {named_s}/evil\n"
        )),
        "{human}"
    );

    // The run walks exactly those: both files under the prefix's directory
    // are found, nothing under the unevaluable item's path.
    let out = env.ok(&["task", "run", "1", "--json", "--device-name", "h"], 1);
    let mut found: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "detection")
        .map(|l| l["object"]["path"].as_str().unwrap_or_default().to_string())
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![format!("{named_s}/evil"), format!("{named_s}/kdevtmpfsi")],
        "{out}"
    );
}
