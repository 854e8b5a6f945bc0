//! What the response tests share: IOC files, detections from a real scan,
//! a listing of a tree (to prove nothing changed), tasks run through the
//! binary.
#![allow(dead_code)]

use crate::common::{expect_code, ioc_scan, sha256_hex};
use ioc_scan::eval::{CompiledCollection, Detection};
use ioc_scan::scan::{Scan, ScanOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// An OpenIOC 1.1 file: one IOC, OR of `(document/term, condition, value)`.
pub fn write_ioc(dir: &Path, id: &str, items: &[(&str, &str, &str)]) -> PathBuf {
    let mut body = String::new();
    for (i, (term, condition, value)) in items.iter().enumerate() {
        let doc = term.split('/').next().unwrap();
        body.push_str(&format!(
            "<IndicatorItem id=\"{id}-item-{i}\" condition=\"{condition}\"><Context document=\"{doc}\" search=\"{term}\" type=\"mir\"/><Content type=\"string\">{value}</Content></IndicatorItem>\n"
        ));
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<OpenIOC xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\" id=\"{id}\" last-modified=\"2026-01-01T00:00:00Z\"><metadata><short_description>{id}</short_description></metadata><criteria><Indicator operator=\"OR\" id=\"{id}-root\">\n{body}</Indicator></criteria></OpenIOC>\n"
    );
    let path = dir.join(format!("{id}.ioc"));
    std::fs::write(&path, xml).unwrap();
    path
}

/// Detections of a real scan of `scope` (files; processes too when
/// `host` is set) with the IOC file `ioc`.
pub fn detect(ioc: &Path, scope: &Path, host: bool) -> Vec<Detection> {
    let collection = ioc_scan::openioc::load_files(&[ioc.to_path_buf()]);
    let (compiled, _) = CompiledCollection::compile(&collection.iocs);
    let options = ScanOptions {
        scopes: vec![scope.to_path_buf()],
        threads: 2,
        ..ScanOptions::default()
    };
    let mut scan = Scan::new(&compiled, options);
    if host {
        scan = scan.with_collectors(ioc_scan::collect::host::scan_collectors(
            &compiled,
            &ioc_scan::collect::host::HostRoot::system(),
        ));
    }
    let found = Mutex::new(Vec::new());
    scan.run(&|d| found.lock().unwrap().push(d)).unwrap();
    found.into_inner().unwrap()
}

/// Every entry under `root`: path bytes → (kind, size, mode, uid, gid,
/// mtime ns, sha256 of regular files). Walks nested directories without
/// building paths longer than the kernel takes (it descends with cd-like
/// relative opens through `std::fs` on relative paths of one component).
pub fn listing(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let mut name = rel.clone();
            name.push(b'/');
            name.extend_from_slice(e.file_name().as_bytes());
            let hash = if meta.is_file() {
                sha256_hex(&std::fs::read(e.path()).unwrap())
            } else {
                String::new()
            };
            out.insert(
                name.clone(),
                format!(
                    "{:o} {} {}:{} {}.{} {}",
                    meta.mode(),
                    meta.size(),
                    meta.uid(),
                    meta.gid(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    hash
                ),
            );
            if meta.is_dir() {
                stack.push((e.path(), name));
            }
        }
    }
    out
}

/// A tempdir holding a database, IOC files and a tree to scan; the
/// binary runs with the database, the quarantine store and the critical
/// areas pointed into it.
pub struct TaskEnv {
    pub dir: tempfile::TempDir,
}

impl TaskEnv {
    pub fn new() -> TaskEnv {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["iocs", "scan", "critical"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        TaskEnv { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().canonicalize().unwrap().join(rel)
    }

    pub fn quarantine(&self) -> PathBuf {
        self.path("quarantine")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = ioc_scan();
        c.args(args)
            .env("IOC_SCAN_DB", self.path("state/db.redb"))
            .env("IOC_SCAN_QUARANTINE_DIR", self.quarantine())
            .env("IOC_SCAN_CRITICAL_AREAS", self.path("critical"))
            .env_remove("IOC_SCAN_TEST_PAUSE_AFTER")
            .env_remove("IOC_SCAN_RETENTION_DAYS");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects exit code `code`; returns stdout.
    pub fn ok(&self, args: &[&str], code: i32) -> String {
        expect_code(self.cmd(args), code)
    }

    /// Create a task scanning `scan/` only, with `respond` actions and the
    /// switch `apply`; returns its id.
    pub fn task(&self, ioc: &Path, respond: &[&str], apply: bool) -> String {
        let scan = self.path("scan");
        let mut args = vec![
            "task",
            "create",
            "--name",
            "t",
            "--ioc",
            ioc.to_str().unwrap(),
            "--scope",
            scan.to_str().unwrap(),
            "--no-critical-areas",
            "--no-ioc-paths",
        ];
        if !respond.is_empty() {
            args.push("--respond");
            args.extend_from_slice(respond);
        }
        args.extend_from_slice(&["--apply-response", if apply { "on" } else { "off" }]);
        let out = self.ok(&args, 0);
        let id = out.split_whitespace().nth(2).unwrap().to_string();
        assert!(id.parse::<u64>().is_ok(), "{out}");
        id
    }

    /// `task run ID --json`: the detection lines and the run line.
    pub fn run_task(&self, id: &str, code: i32) -> (Vec<Value>, Value) {
        let out = self.ok(&["task", "run", id, "--json"], code);
        let mut lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let run = lines.pop().unwrap();
        (lines, run)
    }

    /// `alert RUN --json`.
    pub fn alert(&self, run_id: &Value) -> Value {
        let id = run_id.as_u64().unwrap().to_string();
        serde_json::from_str(&self.ok(&["alert", &id, "--json"], 0)).unwrap()
    }

    /// `quarantine list --json`.
    pub fn quarantined(&self) -> Vec<Value> {
        self.ok(&["quarantine", "list", "--json"], 0)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The responses of a detection in `alert --json`, as (action, outcome, detail JSON).
pub fn responses(detection: &Value) -> Vec<(String, String, Value)> {
    detection["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let detail = r["detail"]
                .as_str()
                .map(|d| serde_json::from_str(d).unwrap())
                .unwrap_or(Value::Null);
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                detail,
            )
        })
        .collect()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
