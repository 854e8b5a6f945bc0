//! `ioc-scan validate` and `ioc-scan indicators`, end to end through the
//! built binary.

use crate::common;
use crate::openioc::{ioc_files, raw_item_count};
use std::path::PathBuf;
use std::process::Output;

fn run(args: &[&str]) -> Output {
    common::ioc_scan().args(args).output().expect("ioc-scan runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn real_dirs() -> [String; 2] {
    let shared = common::shared_openioc();
    [
        shared.join("mandiant-iocs").display().to_string(),
        shared.join("ioc_writer-assets/openioc_11_assets").display().to_string(),
    ]
}

fn fixture(name: &str) -> String {
    common::workspace().join("fixtures/iocs/parser").join(name).display().to_string()
}

fn raw_total() -> usize {
    real_dirs().iter().flat_map(|d| ioc_files(&PathBuf::from(d))).map(|f| raw_item_count(&f)).sum()
}

#[test]
fn validate_real_files_load_and_name_their_never_matching_items() {
    let [a, b] = real_dirs();
    let out = run(&["validate", &a, &b]);
    let text = stdout(&out);
    // Every file reads; compiling them finds the items that never match
    // (`contains` on an IP address), with their line and column.
    assert_eq!(out.status.code(), Some(2), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 9, "{text}");
    assert!(errors.iter().all(|l| l.contains("condition `contains` does not apply to IP values")), "{text}");
    assert!(text.contains("APT18/0ae061d7-c624-4a84-8adf-00281b97797b.ioc:33:7: error: "), "{text}");
    let ok_lines = text.lines().filter(|l| l.starts_with("OK ")).count();
    assert_eq!(ok_lines, 28, "{text}");
    assert!(text.contains("APT12/2384c8ce-6eca-4d06-8aa4-151b53d9a6bc.ioc (1 IOC, 25 items)"), "{text}");
    let expected = format!("28 files: 28 loaded, 0 failed; 28 IOCs, {} items; 9 errors, 0 warnings", raw_total());
    assert_eq!(text.lines().last(), Some(expected.as_str()));
}

#[test]
fn validate_malformed_files_fails_with_positions() {
    let out = run(&["validate", &fixture("malformed"), &fixture("valid/v11-conditions.ioc")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let dir = fixture("malformed");
    for expected in [
        format!("ERROR {dir}/mismatched-end.ioc:8:7: not well-formed XML"),
        format!("ERROR {dir}/truncated.ioc:4:5: <Indicator> is never closed"),
        format!("ERROR {dir}/wrong-root.ioc:3:3: root element is <html>"),
        format!("ERROR {dir}/empty.ioc:1:1: empty file"),
        format!("ERROR {dir}/garbage.ioc:1:1: text before the root element"),
        format!("ERROR {dir}/doctype.ioc:2:1: <!DOCTYPE> is not accepted"),
        format!("OK {dir}/unknown-condition.ioc (1 IOC, 2 items)"),
        format!("{dir}/unknown-condition.ioc:9:4: error: unknown condition \"resembles\""),
        format!("{dir}/missing-content.ioc:10:9: error: no <Content>"),
        format!("OK {}", fixture("valid/v11-conditions.ioc")),
    ] {
        assert!(text.lines().any(|l| l.starts_with(&expected)), "missing {expected:?} in\n{text}");
    }
    assert!(text.contains("[parser-missing-content / no-content]"), "{text}");
    assert_eq!(
        text.lines().last(),
        Some("10 files: 3 loaded, 7 failed; 3 IOCs, 11 items; 9 errors, 0 warnings"),
        "{text}"
    );
    // A diagnostic follows its file's line.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with(&format!("OK {dir}/unknown-condition.ioc"))).unwrap();
    assert!(lines[at + 1].contains("unknown condition"));
}

#[test]
fn validate_warnings_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let ioc = std::fs::read(fixture("valid/v11-bom-comment.ioc")).unwrap();
    std::fs::write(dir.path().join("one.ioc"), &ioc).unwrap();
    std::fs::write(dir.path().join("two.ioc"), &ioc).unwrap();
    let out = run(&["validate", &dir.path().display().to_string()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("two.ioc:3:1: warning: duplicate IOC id parser-v11-bom-comment"), "{text}");
    assert!(text.contains("two.ioc (0 IOCs, 0 items)"), "{text}");
    assert!(text.ends_with("2 files: 2 loaded, 0 failed; 1 IOC, 1 item; 0 errors, 1 warning\n"), "{text}");
}

#[test]
fn validate_json_lines() {
    let out =
        run(&["validate", "--json", &fixture("malformed/unknown-condition.ioc"), &fixture("malformed/empty.ioc")]);
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["file", "diagnostic", "file", "summary"]);
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[0]["items"], 2);
    assert_eq!(lines[1]["severity"], "error");
    assert_eq!((lines[1]["line"].as_u64(), lines[1]["column"].as_u64()), (Some(9), Some(4)));
    assert_eq!(lines[1]["item_id"], "bad-condition");
    assert_eq!(lines[2]["status"], "error");
    assert_eq!(lines[2]["error"], "not-open-ioc");
    assert_eq!(lines[2]["line"], 1);
    assert_eq!(lines[3]["errors"], 2);
    assert_eq!(lines[3]["failed"], 1);
}

#[test]
fn validate_needs_a_path() {
    assert_eq!(run(&["validate"]).status.code(), Some(2));
}

/// Items of an IOC's JSON tree, with an explicit stack.
fn json_items(tree: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut items = Vec::new();
    let mut stack = vec![tree];
    while let Some(node) = stack.pop() {
        match node["type"].as_str() {
            Some("item") => items.push(node),
            Some("indicator") => stack.extend(node["children"].as_array().unwrap()),
            _ => assert!(node.is_null(), "unexpected node {node}"),
        }
    }
    items
}

#[test]
fn indicators_json_lists_every_item_of_the_real_files() {
    let [a, b] = real_dirs();
    let out = run(&["indicators", "--json", &a, &b]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let iocs = doc["iocs"].as_array().unwrap();
    assert_eq!(iocs.len(), 28);
    assert_eq!(doc["errors"], serde_json::json!([]));
    let mut total = 0;
    for ioc in iocs {
        let source = PathBuf::from(ioc["source"].as_str().unwrap());
        let items = json_items(&ioc["tree"]);
        assert_eq!(items.len(), raw_item_count(&source), "{}", source.display());
        assert_eq!(ioc["items"].as_u64(), Some(items.len() as u64));
        assert!(items.iter().all(|i| ["supported", "unsupported"].contains(&i["support"].as_str().unwrap())));
        total += items.len();
    }
    assert_eq!(total, raw_total());
    let apt17 = iocs.iter().find(|i| i["id"] == "7b9e87c5-b619-4a13-b862-0145614d359a").unwrap();
    assert_eq!(apt17["name"], "BLACKCOFFEE (FAMILY)");
    assert_eq!(apt17["authored_by"], "FireEye");
    assert_eq!(apt17["version"], "1.0");
}

#[test]
fn indicators_json_item_fields() {
    let out =
        run(&["indicators", "--json", &fixture("valid/v11-conditions.ioc"), &fixture("malformed/missing-content.ioc")]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v11 = &doc["iocs"][0];
    assert_eq!(v11["published_date"], "2024-02-04T00:00:00");
    let tree = &v11["tree"];
    assert_eq!(
        (tree["operator"].as_str(), tree["line"].as_u64(), tree["column"].as_u64()),
        (Some("OR"), Some(13), Some(5))
    );
    let items = json_items(tree);
    let contains = items.iter().find(|i| i["id"] == "v11-contains").unwrap();
    assert_eq!(contains["condition"], "contains");
    assert_eq!(contains["negate"], true);
    assert_eq!(contains["preserve_case"], true);
    assert_eq!(contains["search"], "FileItem/FullPath");
    assert_eq!(contains["document"], "FileItem");
    assert_eq!(contains["content_type"], "string");
    assert_eq!(contains["value"], "/tmp/");
    assert_eq!(contains["support"], "supported");
    let missing = json_items(&doc["iocs"][1]["tree"]).into_iter().find(|i| i["id"] == "no-content").unwrap();
    assert_eq!(missing["support"], "invalid");
    assert_eq!(missing["condition"], serde_json::Value::Null);
    assert!(missing["reason"].as_str().unwrap().contains("no <Content>"));
    assert_eq!(doc["iocs"][1]["invalid_items"], 1);
}

#[test]
fn indicators_human_tree() {
    let out = run(&["indicators", &fixture("valid/v10-conditions.ioc"), &fixture("malformed/garbage.ioc")]);
    assert_eq!(out.status.code(), Some(2), "a file that fails to load fails the command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("garbage.ioc:1:1: text before the root element"), "{stderr}");
    let text = stdout(&out);
    for expected in [
        "parser-v10-conditions  Parser 1.0 conditions",
        "  authored:    ioc-scan tests, 2024-01-01T00:00:00Z",
        "  items:       8 (8 supported, 0 unsupported, 0 invalid)",
        "  OR  id v10-root",
        "    - FileItem/FileName NOT is \"good.exe\" (string)  id v10-isnot",
        "    - FileItem/FilePath contains \"Temp  Dir <x> A\" (string, preserve-case)  id v10-contains",
        "    AND  id v10-level2",
        "      OR  id v10-level3",
        "        AND  id v10-level4",
        "          - ProcessItem/name contains \"evil\" (string)  id v10-deep4",
        "        - PortItem/remoteIP is \"10.0.0.1\" (IP)  id v10-deep3",
    ] {
        assert!(text.lines().any(|l| l == expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn indicators_marks_unsupported_terms_and_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.ioc");
    std::fs::write(
        &path,
        r#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="u">
<metadata><short_description>evil&#x1b;[2Jname</short_description></metadata>
<criteria><Indicator operator="OR" id="r">
<IndicatorItem id="win" condition="is"><Context document="RegistryItem" search="RegistryItem/Path"/><Content type="string">HKLM</Content></IndicatorItem>
<IndicatorItem id="unknown" condition="is"><Context document="FileItem" search="FileItem/NoSuchTerm"/><Content type="string">x</Content></IndicatorItem>
<IndicatorItem id="later" condition="is"><Context document="FileItem" search="FileItem/StringMatchList/StringMatch/StringsBefore/string"/><Content type="string">x</Content></IndicatorItem>
</Indicator></criteria></OpenIOC>"#,
    )
    .unwrap();
    let out = run(&["indicators", &path.display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "terminal escape passed through: {text:?}");
    assert!(text.contains("u  evil\\u{1b}[2Jname"), "{text}");
    assert!(text.contains("id win  [unsupported: not a Linux term]"), "{text}");
    assert!(text.contains("id unknown  [unsupported: term not in the OpenIOC 1.1 dictionary]"), "{text}");
    // A Linux term no collector answers yet is not "supported" (regression:
    // `indicators` once trusted the dictionary's platform list alone).
    assert!(text.contains("id later  [unsupported: the text around a content match"), "{text}");
    assert!(text.contains("items:       3 (0 supported, 3 unsupported, 0 invalid)"), "{text}");
}

#[test]
fn indicators_json_of_a_deeply_nested_ioc() {
    let depth = 5_000;
    let mut xml = String::from(r#"<ioc xmlns="http://schemas.mandiant.com/2010/ioc" id="deep"><definition>"#);
    for _ in 0..depth {
        xml.push_str(r#"<Indicator operator="AND" id="n">"#);
    }
    xml.push_str(r#"<IndicatorItem id="leaf" condition="is"><Context document="FileItem" search="FileItem/Md5sum"/><Content type="md5">00</Content></IndicatorItem>"#);
    for _ in 0..depth {
        xml.push_str("</Indicator>");
    }
    xml.push_str("</definition></ioc>");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.ioc");
    std::fs::write(&path, xml).unwrap();
    let path = path.display().to_string();
    let out = run(&["indicators", "--json", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert_eq!(text.matches(r#""type":"indicator""#).count(), depth);
    assert_eq!(text.matches(r#""type":"item""#).count(), 1);
    // Balanced: every object and array the writer opened, it closed.
    assert_eq!(text.matches('{').count(), text.matches('}').count());
    assert_eq!(text.matches('[').count(), text.matches(']').count());
    let human = run(&["indicators", &path]);
    assert_eq!(human.status.code(), Some(0));
    assert!(stdout(&human).contains(&format!("{}- FileItem/Md5sum is \"00\" (md5)  id leaf", "  ".repeat(depth + 1))));
    // Compiled too, without recursion: the leaf's bad digest is found.
    let valid = run(&["validate", &path]);
    assert_eq!(valid.status.code(), Some(2));
    assert!(stdout(&valid).contains(" / leaf]"), "{}", stdout(&valid));
}
