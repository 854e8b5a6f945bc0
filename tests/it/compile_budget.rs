//! Hostile IOC collections against the compile budget, end to end: the real
//! binary (`scan`, `validate`) and a real console over HTTP.

use crate::common;
use crate::console_common::{init, task_form, Console};
use reqwest::Method;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::Path;

const HEADER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="ID">
  <metadata><short_description>ID</short_description></metadata>
  <criteria>
"#;
const FOOTER: &str = "  </criteria>\n</OpenIOC>\n";

fn item(id: &str, search: &str, condition: &str, kind: &str, value: &str) -> String {
    format!(
        "<IndicatorItem id=\"{id}\" condition=\"{condition}\"><Context document=\"FileItem\" search=\"{search}\" type=\"mir\"/><Content type=\"{kind}\">{value}</Content></IndicatorItem>\n"
    )
}

/// `AND(OR of 15,000 Md5sum items, 8 x OR of 2 FileName items)` (3.3 MB):
/// what the distribution of AND over OR used to turn into 15,000 x 2^8
/// groups (50 s, 9.2 GB). Item `md5-7777` is `md5`; every OR holds `name`.
fn blowup_ioc(md5: &str, name: &str) -> String {
    let mut x = HEADER.replace("ID", "blowup");
    x.push_str("<Indicator operator=\"AND\" id=\"top\">\n<Indicator operator=\"OR\" id=\"md5s\">\n");
    for k in 0..15_000 {
        let value = if k == 7777 { md5.to_string() } else { format!("{k:032x}") };
        let id = format!("md5-{k}-{:0>80}", "");
        let id = if k == 7777 { "md5-7777".to_string() } else { id };
        x.push_str(&item(&id, "FileItem/Md5sum", "is", "md5", &value));
    }
    x.push_str("</Indicator>\n");
    for j in 0..8 {
        x.push_str(&format!("<Indicator operator=\"OR\" id=\"names-{j}\">\n"));
        x.push_str(&item(&format!("name-{j}"), "FileItem/FileName", "is", "string", name));
        x.push_str(&item(&format!("other-{j}"), "FileItem/FileName", "is", "string", &format!("x{j}.bin")));
        x.push_str("</Indicator>\n");
    }
    x.push_str("</Indicator>\n");
    x.push_str(FOOTER);
    x
}

/// Runs the binary with its address space capped: the old compiler needed
/// 9.2 GB for the blow-up collection and dies here instead of eating the
/// host.
fn run_capped(args: &[&str]) -> std::process::Output {
    const CAP: libc::rlim_t = 2 << 30;
    let mut cmd = common::ioc_scan();
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: CAP, rlim_max: CAP };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("ioc-scan runs")
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn compile_blowup_and_over_or_collection_compiles_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let content = b"the file the blow-up IOC describes\n";
    std::fs::write(tree.join("dropper.exe"), content).unwrap();
    std::fs::write(tree.join("innocent.exe"), b"something else\n").unwrap();
    let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(content));
    let ioc = dir.path().join("blowup.ioc");
    let text = blowup_ioc(&md5, "dropper.exe");
    assert!(text.len() > 3_000_000, "{}", text.len());
    std::fs::write(&ioc, text).unwrap();

    let out = run_capped(&[
        "scan",
        "--json",
        "--no-progress",
        "--ioc",
        ioc.to_str().unwrap(),
        "--scope",
        tree.to_str().unwrap(),
    ]);
    let lines = json_lines(&out);
    // 1: some IOC detected.
    assert_eq!(out.status.code(), Some(1), "{:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    let detections: Vec<&Value> = lines.iter().filter(|l| l["type"] == "detection").collect();
    assert_eq!(detections.len(), 1, "{lines:?}");
    assert_eq!(detections[0]["object"]["path"], tree.join("dropper.exe").to_str().unwrap());
    let matched = detections[0]["matched_items"].as_array().unwrap();
    assert!(matched.contains(&json!("md5-7777")) && matched.contains(&json!("name-0")), "{matched:?}");
    // What the compile was charged, as the tool reports it: within the
    // budget, and small for this shape (the old compiler needed 9.2 GB).
    let summary = lines.iter().find(|l| l["type"] == "summary").expect("a summary line");
    let (cost, budget) = (&summary["compile"], &summary["compile_budget"]);
    let (work, memory) = (cost["work"].as_u64().unwrap(), cost["memory"].as_u64().unwrap());
    assert!(work <= budget["work"].as_u64().unwrap(), "{summary}");
    assert!(memory <= budget["memory"].as_u64().unwrap(), "{summary}");
    assert!(memory <= 128 << 20 && work <= 24_000_000, "{summary}");
}

/// An IOC whose `contains` values add up to `bytes`: cheap to write, but
/// their substring automaton would cost ~50 bytes per value byte.
fn substring_heavy_ioc(id: &str, bytes: usize) -> String {
    const VALUE: usize = 64 << 10;
    let mut x = HEADER.replace("ID", id);
    x.push_str(&format!("<Indicator operator=\"OR\" id=\"{id}-top\">\n"));
    // Values share a long prefix, so that what the budget accepts is quick
    // to build even unoptimized.
    let prefix = "a".repeat(VALUE - 16);
    for k in 0..bytes / VALUE {
        x.push_str(&item(&format!("{id}-{k}"), "FileItem/FullPath", "contains", "string", &format!("{prefix}{k:016}")));
    }
    x.push_str("</Indicator>\n");
    x.push_str(FOOTER);
    x
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn validate_refuses_collection_over_compile_budget_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = (0..3)
        .map(|i| write(dir.path(), &format!("heavy{i}.ioc"), &substring_heavy_ioc(&format!("heavy{i}"), 3_900_000)))
        .collect();
    let mut args = vec!["validate", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = run_capped(&args);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let lines = json_lines(&out);
    let refused: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "diagnostic" && l["over_budget"] == true).collect();
    assert!(!refused.is_empty(), "{lines:?}");
    for d in &refused {
        assert_eq!(d["stage"], "compile");
        assert_eq!(d["severity"], "error");
        assert!(d["message"].as_str().unwrap().contains("compile budget exceeded"), "{d}");
        // The IOC's top indicator, where its file has it.
        assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(5), Some(1)), "{d}");
        assert!(d["item_id"].as_str().unwrap().ends_with("-top"), "{d}");
    }
    // The first file fits; what is refused is named.
    assert!(refused.iter().all(|d| d["file"] != files[0].as_str()), "{refused:?}");
    let summary = lines.iter().find(|l| l["kind"] == "summary").unwrap();
    let c = &summary["compile"];
    assert!(c["cost"]["memory"].as_u64().unwrap() <= c["budget"]["memory"].as_u64().unwrap(), "{summary}");
}

#[test]
fn validate_reports_bad_regex_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = HEADER.replace("ID", "regex");
    x.push_str("<Indicator operator=\"OR\" id=\"top\">\n");
    x.push_str(&item("good", "FileItem/FileName", "is", "string", "a.exe"));
    x.push_str("  ");
    x.push_str(&item("bad-regex", "FileItem/FileName", "matches", "string", "(unclosed[group"));
    x.push_str(&item("bad-md5", "FileItem/Md5sum", "is", "md5", "not-a-digest"));
    x.push_str("</Indicator>\n");
    x.push_str(FOOTER);
    let file = write(dir.path(), "regex.ioc", &x);

    let out = common::ioc_scan().args(["validate", &file]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("{file}:7:3: error: bad regex")), "{text}");
    assert!(text.contains("[regex / bad-regex]"), "{text}");
    assert!(text.contains(&format!("{file}:8:1: error: ")), "{text}");
    assert!(text.contains("[regex / bad-md5]"), "{text}");

    let out = common::ioc_scan().args(["validate", "--json", &file]).output().unwrap();
    let lines = json_lines(&out);
    let d = lines.iter().find(|l| l["item_id"] == "bad-regex").expect("a diagnostic for the regex");
    assert_eq!((d["stage"].as_str(), d["line"].as_u64(), d["column"].as_u64()), (Some("compile"), Some(7), Some(3)));
    assert_eq!(lines.last().unwrap()["errors"], 2, "{lines:?}");
}

#[test]
fn console_upload_refuses_collection_over_compile_budget_with_422() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.redb");
    let token = init(&db);
    let console = Console::start(&db, "127.0.0.1:0", &[]);
    let api = console.api(&token);
    let texts: Vec<String> = (0..3).map(|i| substring_heavy_ioc(&format!("heavy{i}"), 3_900_000)).collect();
    let names = ["heavy0.ioc", "heavy1.ioc", "heavy2.ioc"];
    let files: Vec<(&str, &[u8])> = names.iter().zip(&texts).map(|(n, t)| (*n, t.as_bytes())).collect();

    let r = api.multipart(Method::POST, "/tasks", task_form(&json!({"name": "heavy"}), &files));
    assert_eq!(r.status(), 422);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "bad-ioc-files", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("compile budget"), "{message}");
    assert!(message.contains("heavy1.ioc (line 5, column 1, item heavy1-top)"), "{message}");
    let refused = v["files"][1]["diagnostics"].as_array().unwrap();
    assert!(refused.iter().any(|d| d["over_budget"] == true && d["stage"] == "compile"), "{v}");
    assert_eq!(api.json("/tasks")["tasks"].as_array().unwrap().len(), 0);
    // Skipping invalid files does not let it through either.
    let r = api.multipart(Method::POST, "/tasks?skip_invalid=true", task_form(&json!({"name": "heavy"}), &files));
    assert_eq!(r.status(), 422);
    // One of them alone is fine.
    let r = api.multipart(Method::POST, "/tasks", task_form(&json!({"name": "one"}), &files[..1]));
    assert_eq!(r.status(), 201);
}
