//! `ioc-scan terms`: every Linux term with its status, none unexplained.

use crate::common::ioc_scan;

#[test]
fn every_linux_term_is_supported_or_explained() {
    let out = ioc_scan().args(["terms", "--json", "--linux-only"]).output().unwrap();
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 292);
    for r in &rows {
        let status = r["status"].as_str().unwrap();
        assert!(["supported", "live monitor only", "not supported"].contains(&status), "{r}");
        if status != "supported" {
            let reason = r["reason"].as_str().unwrap_or("");
            assert!(!reason.is_empty(), "{r}");
            // Only the file walk may still have terms "not implemented yet".
            if reason == "not implemented yet" {
                assert_eq!(r["document"], "FileItem", "{r}");
            }
        }
    }
    let status_of = |t: &str| {
        rows.iter()
            .find(|r| r["term"] == t)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of("ProcessItem/HandleList/Handle/Md5sum").as_deref(), Some("supported"));
    assert_eq!(status_of("eventItem/processEvent/pid").as_deref(), Some("live monitor only"));
    assert_eq!(status_of("AgentInfo/proxyHost").as_deref(), Some("not supported"));
}

#[test]
fn default_list_adds_answered_non_linux_terms_and_markdown_renders() {
    let out = ioc_scan().args(["terms", "--document", "UserItem"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("UserItem/Username") && text.contains("supported"), "{text}");
    let md = ioc_scan().args(["terms", "--markdown", "--linux-only"]).output().unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.starts_with("| Document | Terms |"));
    assert!(md.contains("| **All** | 292 |"), "{md}");
}

/// The README's coverage table is `terms --markdown --linux-only`, verbatim.
/// `IOC_SCAN_BLESS=1 cargo test --test it readme_coverage` rewrites it.
#[test]
fn readme_coverage_table_is_current() {
    let out = ioc_scan().args(["terms", "--markdown", "--linux-only"]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let path = crate::common::workspace().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- terms:begin -->\n", "<!-- terms:end -->");
    let start = readme.find(begin).expect("README has no terms:begin marker") + begin.len();
    let stop = readme.find(end).expect("README has no terms:end marker");
    if readme[start..stop] != table {
        if std::env::var_os("IOC_SCAN_BLESS").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[stop..])).unwrap();
        } else {
            panic!("README's coverage table is stale: rerun with IOC_SCAN_BLESS=1");
        }
    }
}
