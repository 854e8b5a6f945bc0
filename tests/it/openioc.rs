//! The OpenIOC reader against real files, hand-written fixtures, malformed
//! and hostile input.

use crate::common;
use ioc_scan::indicator::{Condition, Ioc, Item, Node, OpenIocVersion, Operator, Position};
use ioc_scan::openioc::{self, ErrorKind, Limits, OpenIocError, Severity};
use std::path::{Path, PathBuf};

fn real_dirs() -> [PathBuf; 2] {
    let shared = common::shared_openioc();
    [shared.join("mandiant-iocs"), shared.join("ioc_writer-assets/openioc_11_assets")]
}

fn fixture(name: &str) -> PathBuf {
    common::workspace().join("fixtures/iocs/parser").join(name)
}

fn parse_fixture(name: &str) -> openioc::Parsed {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap();
    openioc::parse_bytes(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fixture that must parse without a single diagnostic.
fn parse_clean_fixture(name: &str) -> openioc::Parsed {
    let parsed = parse_fixture(name);
    assert!(parsed.diagnostics.is_empty(), "{name}: {:#?}", parsed.diagnostics);
    parsed
}

fn fail_fixture(name: &str) -> OpenIocError {
    let bytes = std::fs::read(fixture(name)).unwrap();
    match openioc::parse_bytes(name, &bytes) {
        Ok(_) => panic!("{name} loaded"),
        Err(err) => err,
    }
}

/// Every `*.ioc` file under `dir`, recursively.
pub fn ioc_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "ioc") {
                out.push(path);
            }
        }
    }
    out
}

/// `<IndicatorItem` occurrences in the raw text: counted without the reader.
pub fn raw_item_count(path: &Path) -> usize {
    let text = std::fs::read(path).unwrap();
    text.windows(b"<IndicatorItem".len()).filter(|w| w == b"<IndicatorItem").count()
}

fn item<'a>(ioc: &'a Ioc, id: &str) -> &'a Item {
    ioc.items().find(|i| i.id == id).unwrap_or_else(|| panic!("no item {id}"))
}

/// Each item's (id, condition, negate, preserve case, position) as read.
fn assert_items(ioc: &Ioc, expect: &[(&str, Condition, bool, bool, Position)]) {
    for &(id, condition, negate, preserve_case, position) in expect {
        let it = item(ioc, id);
        assert_eq!(
            (it.condition, it.negate, it.preserve_case, it.position),
            (condition, negate, preserve_case, position),
            "{id}"
        );
    }
}

fn pos(line: u32, column: u32) -> Position {
    Position { line, column }
}

#[test]
fn real_files_load_without_errors_and_with_every_item() {
    let dirs = real_dirs();
    let files: Vec<PathBuf> = dirs.iter().flat_map(|d| ioc_files(d)).collect();
    assert_eq!(files.len(), 28, "the shared OpenIOC files are missing: {:?}", dirs);
    let collection = openioc::load_files(&dirs);
    assert_eq!(collection.errors, vec![], "files failed to load");
    let errors: Vec<_> = collection.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "error diagnostics: {errors:#?}");
    assert_eq!(collection.iocs.len(), 28);
    let raw_total: usize = files.iter().map(|f| raw_item_count(f)).sum();
    assert_eq!(collection.item_count(), raw_total);
    for file in &files {
        let ioc = collection.iocs.iter().find(|i| Path::new(&i.source) == file).expect("loaded");
        assert_eq!(ioc.items().count(), raw_item_count(file), "{}", file.display());
        assert!(ioc.items().all(|i| i.evaluable() && !i.context.search.is_empty()), "{}", file.display());
        assert!(ioc.items().all(|i| i.position.line > 1 && i.position.column > 1));
    }
    let versions = collection.iocs.iter().filter(|i| i.version == OpenIocVersion::V1_1).count();
    assert_eq!(versions, 4);
}

#[test]
fn real_file_metadata_and_positions() {
    let path = common::shared_openioc().join("mandiant-iocs/APT12/2384c8ce-6eca-4d06-8aa4-151b53d9a6bc.ioc");
    let parsed = openioc::parse_bytes("apt12.ioc", &std::fs::read(path).unwrap()).unwrap();
    let ioc = parsed.ioc;
    assert_eq!(ioc.id, "2384c8ce-6eca-4d06-8aa4-151b53d9a6bc");
    assert_eq!(ioc.version, OpenIocVersion::V1_0);
    assert_eq!(ioc.meta.short_description.as_deref(), Some("DARWIN (BLOGPOST)"));
    assert_eq!(ioc.meta.authored_by.as_deref(), Some("FireEye"));
    assert_eq!(ioc.meta.authored_date.as_deref(), Some("2014-08-28T15:57:54Z"));
    assert_eq!(ioc.meta.last_modified.as_deref(), Some("2014-09-03T19:35:19"));
    assert_eq!(ioc.meta.keywords, None);
    assert_eq!(ioc.meta.links.len(), 4);
    assert_eq!((ioc.meta.links[1].rel.as_str(), ioc.meta.links[1].value.as_str()), ("threatgroup", "APT12"));
    let Node::Indicator(root) = ioc.node(ioc.root().unwrap()) else { panic!("root is not an Indicator") };
    assert_eq!((root.operator, root.position), (Operator::Or, pos(33, 5)));
    let first = item(&ioc, "9a7be55a-b92b-4345-8001-d3bf9b6129ad");
    assert_eq!(first.position, pos(34, 7));
    assert_eq!(first.context.search, "FileItem/Md5sum");
    assert_eq!(first.content.value, "f6fafb7c30b1114befc93f39d0698560");
}

#[test]
fn v10_conditions_negate_preserve_case_and_nesting() {
    let parsed = parse_clean_fixture("valid/v10-conditions.ioc");
    let ioc = &parsed.ioc;
    assert_eq!(ioc.id, "parser-v10-conditions");
    assert_eq!(ioc.version, OpenIocVersion::V1_0);
    assert_eq!(ioc.meta.description.as_deref(), Some("Every OpenIOC 1.0 condition & attribute."));
    assert_eq!(ioc.meta.keywords.as_deref(), Some("test parser"));
    assert_eq!(ioc.meta.links[1].href.as_deref(), Some("https://example.com/report"));
    let expect = [
        ("v10-is", Condition::Is, false, false, pos(16, 7)),
        ("v10-isnot", Condition::Is, true, false, pos(20, 7)),
        ("v10-contains", Condition::Contains, false, true, pos(24, 7)),
        ("v10-containsnot", Condition::Contains, true, false, pos(28, 7)),
        // isnot + negate="true": the two negations cancel.
        ("v10-isnot-negated", Condition::Is, false, false, pos(32, 7)),
        ("v10-deep2", Condition::Is, false, false, pos(37, 9)),
        ("v10-deep4", Condition::Contains, false, false, pos(43, 13)),
        ("v10-deep3", Condition::Is, false, false, pos(48, 11)),
    ];
    assert_items(ioc, &expect);
    for (id, ..) in expect {
        assert!(item(ioc, id).evaluable(), "{id}");
    }
    // Surrounding whitespace trimmed, inner kept; entities, character
    // references and CDATA decoded.
    assert_eq!(item(ioc, "v10-is").content.value, "0123456789abcdef0123456789abcdef");
    assert_eq!(item(ioc, "v10-contains").content.value, "Temp  Dir <x> A");
    assert_eq!(item(ioc, "v10-containsnot").content.value, r"C:\Windows<x>");
    assert_eq!(item(ioc, "v10-deep3").content.content_type, "IP");
    assert_eq!(item(ioc, "v10-deep3").context.document, "PortItem");
    assert_eq!(item(ioc, "v10-deep3").context.context_type, "mir");
    // Four Indicator levels: OR > and > OR > AND; the lowercase operator reads.
    let depths: Vec<(usize, &str)> = ioc
        .walk()
        .into_iter()
        .map(|(d, n)| match ioc.node(n) {
            Node::Indicator(i) => (d, i.id.as_str()),
            Node::Item(i) => (d, i.id.as_str()),
        })
        .collect();
    assert_eq!(
        depths,
        vec![
            (0, "v10-root"),
            (1, "v10-is"),
            (1, "v10-isnot"),
            (1, "v10-contains"),
            (1, "v10-containsnot"),
            (1, "v10-isnot-negated"),
            (1, "v10-level2"),
            (2, "v10-deep2"),
            (2, "v10-level3"),
            (3, "v10-level4"),
            (4, "v10-deep4"),
            (3, "v10-deep3"),
        ]
    );
    let Node::Indicator(level2) = &ioc.nodes[6] else { panic!() };
    assert_eq!((level2.id.as_str(), level2.operator), ("v10-level2", Operator::And));
}

#[test]
fn v11_conditions_and_attributes() {
    let parsed = parse_clean_fixture("valid/v11-conditions.ioc");
    let ioc = &parsed.ioc;
    assert_eq!(ioc.version, OpenIocVersion::V1_1);
    assert_eq!(ioc.meta.published_date.as_deref(), Some("2024-02-04T00:00:00"));
    assert_eq!(ioc.meta.last_modified.as_deref(), Some("2024-02-03T04:05:06Z"));
    assert_eq!(ioc.meta.short_description.as_deref(), Some("Parser 1.1 conditions"));
    assert_eq!(ioc.meta.links.len(), 1);
    let expect = [
        ("v11-is", Condition::Is, false, false, pos(14, 7)),
        ("v11-contains", Condition::Contains, true, true, pos(18, 7)),
        ("v11-starts-with", Condition::StartsWith, false, true, pos(22, 7)),
        ("v11-ends-with", Condition::EndsWith, false, false, pos(26, 7)),
        ("v11-matches", Condition::Matches, false, false, pos(31, 9)),
        ("v11-greater-than", Condition::GreaterThan, false, false, pos(36, 11)),
        ("v11-less-than", Condition::LessThan, true, false, pos(40, 11)),
    ];
    assert_items(ioc, &expect);
    assert_eq!(item(ioc, "v11-matches").content.value, r"^nc\s+-e");
    let max_depth = ioc.walk().into_iter().map(|(d, _)| d).max();
    assert_eq!(max_depth, Some(3));
    assert_eq!(ioc.nodes.len(), 10);
}

#[test]
fn bom_and_comment_before_declaration_load() {
    let parsed = parse_clean_fixture("valid/v11-bom-comment.ioc");
    assert_eq!(parsed.ioc.id, "parser-v11-bom-comment");
    // Lines count from the file's start; the BOM takes no column.
    assert_eq!(parsed.root, pos(3, 1));
    assert_eq!(item(&parsed.ioc, "bom-item").position, pos(9, 7));
}

#[test]
fn malformed_files_fail_with_position_and_expectation() {
    let cases: [(&str, ErrorKind, u32, u32, &str); 7] = [
        ("malformed/mismatched-end.ioc", ErrorKind::Malformed, 8, 7, "expected `</Content>`"),
        ("malformed/truncated.ioc", ErrorKind::Malformed, 4, 5, "<Indicator> is never closed"),
        ("malformed/wrong-root.ioc", ErrorKind::NotOpenIoc, 3, 3, "root element is <html>; expected <ioc"),
        (
            "malformed/wrong-namespace.ioc",
            ErrorKind::NotOpenIoc,
            2,
            1,
            "expected \"http://schemas.mandiant.com/2010/ioc\"",
        ),
        ("malformed/garbage.ioc", ErrorKind::NotOpenIoc, 1, 1, "text before the root element"),
        ("malformed/empty.ioc", ErrorKind::NotOpenIoc, 1, 1, "empty file"),
        ("malformed/doctype.ioc", ErrorKind::Doctype, 2, 1, "DOCTYPE"),
    ];
    for (name, kind, line, column, message) in cases {
        let err = fail_fixture(name);
        assert_eq!((err.kind, err.line, err.column), (kind, line, column), "{name}: {err}");
        assert!(err.message.contains(message), "{name}: {err}");
        assert_eq!(err.file, name);
        assert!(err.to_string().starts_with(&format!("{name}:{line}:{column}: ")), "{err}");
    }
}

#[test]
fn binary_and_utf16_files_fail_with_encoding_error() {
    let mut bytes =
        b"<?xml version=\"1.0\"?>\n<ioc id=\"x\" xmlns=\"http://schemas.mandiant.com/2010/ioc\">\n  \xff\xfe\x00\x01"
            .to_vec();
    bytes.extend_from_slice(b"</ioc>");
    let err = openioc::parse_bytes("binary.ioc", &bytes).unwrap_err();
    assert_eq!((err.kind, err.line, err.column), (ErrorKind::Encoding, 3, 3), "{err}");
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("<ioc/>".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    assert_eq!(openioc::parse_bytes("u16.ioc", &utf16).unwrap_err().kind, ErrorKind::Encoding);
    let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    assert!(openioc::parse_bytes("elf.ioc", elf).is_err());
}

#[test]
fn unknown_condition_keeps_an_unevaluable_item() {
    let parsed = parse_fixture("malformed/unknown-condition.ioc");
    let bad = item(&parsed.ioc, "bad-condition");
    assert!(!bad.evaluable());
    assert!(bad.problem.as_deref().unwrap().contains("unknown condition \"resembles\""));
    assert_eq!(bad.content.value, "evil.exe");
    assert!(item(&parsed.ioc, "good").evaluable());
    let [d] = parsed.diagnostics.as_slice() else { panic!("{:#?}", parsed.diagnostics) };
    assert_eq!((d.severity, d.line, d.column), (Severity::Error, 9, 4));
    assert_eq!(d.ioc_id.as_deref(), Some("parser-unknown-condition"));
    assert_eq!(d.item_id.as_deref(), Some("bad-condition"));
    assert_eq!(d.file, "malformed/unknown-condition.ioc");
}

#[test]
fn missing_content_keeps_an_unevaluable_item() {
    let parsed = parse_fixture("malformed/missing-content.ioc");
    let bad = item(&parsed.ioc, "no-content");
    assert!(!bad.evaluable());
    assert!(bad.problem.as_deref().unwrap().contains("no <Content>"));
    assert_eq!(bad.context.search, "FileItem/FileName");
    let [d] = parsed.diagnostics.as_slice() else { panic!("{:#?}", parsed.diagnostics) };
    assert_eq!((d.severity, d.line, d.column), (Severity::Error, 10, 9));
    assert_eq!(d.item_id.as_deref(), Some("no-content"));
}

#[test]
fn missing_context_and_condition_are_reported() {
    let xml = r#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="m"><criteria>
<Indicator operator="OR" id="r">
<IndicatorItem id="a"><Content type="string">x</Content></IndicatorItem>
<IndicatorItem id="b" condition="is"><Context document="FileItem"/><Content type="string">x</Content></IndicatorItem>
</Indicator></criteria></OpenIOC>"#;
    let parsed = openioc::parse_bytes("m.ioc", xml.as_bytes()).unwrap();
    let a = item(&parsed.ioc, "a").problem.clone().unwrap();
    assert!(a.contains("no condition attribute") && a.contains("no <Context>"), "{a}");
    assert!(item(&parsed.ioc, "b").problem.as_deref().unwrap().contains("no search attribute"));
    let lines: Vec<u32> = parsed.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![3, 4]);
}

#[test]
fn collection_with_bad_files_loads_the_good_ones() {
    let collection = openioc::load_files(&[fixture("")]);
    let mut ids: Vec<&str> = collection.iocs.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "parser-missing-content",
            "parser-unknown-condition",
            "parser-v10-conditions",
            "parser-v11-bom-comment",
            "parser-v11-conditions"
        ]
    );
    let mut failed: Vec<String> =
        collection.errors.iter().map(|e| e.file.rsplit('/').next().unwrap().to_owned()).collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "doctype.ioc",
            "empty.ioc",
            "garbage.ioc",
            "mismatched-end.ioc",
            "truncated.ioc",
            "wrong-namespace.ioc",
            "wrong-root.ioc"
        ]
    );
    // Files are listed sorted; each names its outcome.
    let sources: Vec<&str> = collection.files.iter().map(|f| f.source.as_str()).collect();
    let mut sorted = sources.clone();
    sorted.sort();
    assert_eq!(sources, sorted);
    assert_eq!(collection.files.iter().filter(|f| f.error.is_some()).count(), 7);
}

#[test]
fn missing_path_is_an_error_not_a_stop() {
    let collection = openioc::load_files(&[fixture("no-such-file.ioc"), fixture("valid/v11-bom-comment.ioc")]);
    assert_eq!(collection.iocs.len(), 1);
    assert_eq!(collection.errors.len(), 1);
    assert_eq!(collection.errors[0].kind, ErrorKind::Io);
    assert_eq!(collection.errors[0].line, 0);
}

#[test]
fn duplicate_ioc_ids_keep_the_first_and_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(fixture("valid/v11-bom-comment.ioc")).unwrap();
    std::fs::write(dir.path().join("a.ioc"), &original).unwrap();
    std::fs::write(dir.path().join("b.xml"), &original).unwrap();
    std::fs::write(dir.path().join("ignored.txt"), &original).unwrap();
    let collection = openioc::load_files(&[dir.path()]);
    assert_eq!(collection.iocs.len(), 1);
    assert!(collection.iocs[0].source.ends_with("a.ioc"));
    assert_eq!(collection.files.len(), 2, "only .ioc and .xml files are read from directories");
    let [d] = collection.diagnostics.as_slice() else { panic!("{:#?}", collection.diagnostics) };
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.file.ends_with("b.xml"));
    assert!(d.message.contains("parser-v11-bom-comment") && d.message.contains("a.ioc"), "{}", d.message);
    assert_eq!((d.line, d.column), (3, 1));
    assert_eq!(collection.error_count(), 0);
}

fn nested(depth: usize) -> String {
    let mut xml = String::from(r#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="deep"><criteria>"#);
    for i in 0..depth {
        xml.push_str(&format!("<Indicator operator=\"{}\" id=\"n{i}\">", if i % 2 == 0 { "OR" } else { "AND" }));
    }
    xml.push_str(r#"<IndicatorItem id="leaf" condition="is"><Context document="FileItem" search="FileItem/Md5sum"/><Content type="md5">00</Content></IndicatorItem>"#);
    for _ in 0..depth {
        xml.push_str("</Indicator>");
    }
    xml.push_str("</criteria></OpenIOC>");
    xml
}

#[test]
fn ioc_nested_100000_deep_is_refused_without_overflow() {
    let xml = nested(100_000);
    let err = openioc::parse_bytes("deep.ioc", xml.as_bytes()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit);
    assert_eq!(err.line, 1);
    assert!(err.message.contains("10000"), "{err}");
}

#[test]
fn ioc_nested_9000_deep_loads_walks_and_drops() {
    let xml = nested(9_000);
    let parsed = openioc::parse_bytes("deep.ioc", xml.as_bytes()).unwrap();
    let walk = parsed.ioc.walk();
    assert_eq!(walk.len(), 9_001);
    assert_eq!(walk.last().map(|(d, _)| *d), Some(9_000));
    assert!(parsed.ioc.items().all(|i| i.evaluable()));
    // A copy and a drop, both of the whole tree.
    let copy = parsed.ioc.clone();
    drop(parsed);
    assert_eq!(copy.nodes.len(), 9_001);
}

#[test]
fn limits_on_size_and_nodes() {
    let bytes = std::fs::read(fixture("valid/v11-conditions.ioc")).unwrap();
    let small = Limits { max_file_bytes: 100, ..Limits::default() };
    assert_eq!(openioc::parse_bytes_with("x", &bytes, &small).unwrap_err().kind, ErrorKind::TooLarge);
    let few = Limits { max_nodes: 5, ..Limits::default() };
    let err = openioc::parse_bytes_with("x", &bytes, &few).unwrap_err();
    assert_eq!((err.kind, err.line, err.column), (ErrorKind::Limit, 30, 7), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.ioc"), &bytes).unwrap();
    let collection = openioc::load_files_with(&[dir.path()], &small);
    assert_eq!(collection.errors[0].kind, ErrorKind::TooLarge);
}

#[test]
fn entities_other_than_the_predefined_ones_are_refused() {
    let xml =
        "<ioc xmlns=\"http://schemas.mandiant.com/2010/ioc\" id=\"e\">\n <description>a &xxe; b</description></ioc>";
    let err = openioc::parse_bytes("e.ioc", xml.as_bytes()).unwrap_err();
    assert_eq!((err.kind, err.line, err.column), (ErrorKind::Malformed, 2, 17), "{err}");
    let xml = "<ioc xmlns=\"http://schemas.mandiant.com/2010/ioc\" id=\"a&#x42;&amp;\"/>";
    assert_eq!(openioc::parse_bytes("e.ioc", xml.as_bytes()).unwrap().ioc.id, "aB&");
    let xml = "<ioc xmlns=\"http://schemas.mandiant.com/2010/ioc\" id=\"&ent;\"/>";
    assert_eq!(openioc::parse_bytes("e.ioc", xml.as_bytes()).unwrap_err().kind, ErrorKind::Malformed);
}

#[test]
fn namespaces_are_resolved_not_matched_by_prefix() {
    // A prefixed OpenIOC 1.0 document reads; elements of another namespace
    // with the same local names are skipped.
    let xml = r#"<o:ioc xmlns:o="http://schemas.mandiant.com/2010/ioc" xmlns:z="urn:other" id="ns">
  <o:short_description>prefixed</o:short_description>
  <z:short_description>other</z:short_description>
  <o:definition><o:Indicator operator="OR" id="r">
    <o:IndicatorItem id="i" condition="is"><o:Context document="FileItem" search="FileItem/Md5sum"/><o:Content type="md5">aa</o:Content></o:IndicatorItem>
    <z:IndicatorItem id="other" condition="is"/>
    <IndicatorItem id="unbound" condition="is"/>
  </o:Indicator></o:definition></o:ioc>"#;
    let parsed = openioc::parse_bytes("ns.ioc", xml.as_bytes()).unwrap();
    assert_eq!(parsed.ioc.meta.short_description.as_deref(), Some("prefixed"));
    assert_eq!(parsed.ioc.items().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i"]);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
}

#[test]
fn root_without_namespace_and_foreign_conditions_warn() {
    let xml = r#"<ioc id="nn"><definition><Indicator operator="XOR" id="r">
<IndicatorItem id="i" condition="starts-with"><Context document="FileItem" search="FileItem/NoSuchTerm"/><Content type="string">x</Content></IndicatorItem>
<IndicatorItem id="j" condition="is" negate="maybe"><Context document="FileItem" search="FileItem/FileName"/><Content type="string"></Content></IndicatorItem>
</Indicator></definition></ioc>"#;
    let parsed = openioc::parse_bytes("nn.ioc", xml.as_bytes()).unwrap();
    let ioc = &parsed.ioc;
    assert_eq!(ioc.version, OpenIocVersion::V1_0);
    let Node::Indicator(root) = &ioc.nodes[0] else { panic!() };
    assert_eq!(root.operator, Operator::And, "an unknown operator reads as AND");
    assert_eq!(item(ioc, "i").condition, Condition::StartsWith);
    assert!(item(ioc, "i").evaluable());
    assert!(!item(ioc, "j").negate);
    let found: Vec<(Severity, &str)> = parsed
        .diagnostics
        .iter()
        .map(|d| {
            let key = [
                "no namespace",
                "operator",
                "belongs to OpenIOC 1.1",
                "dictionary",
                "not a boolean",
                "empty <Content>",
            ]
            .into_iter()
            .find(|k| d.message.contains(k))
            .unwrap_or(d.message.as_str());
            (d.severity, key)
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (Severity::Warning, "no namespace"),
            (Severity::Error, "operator"),
            (Severity::Warning, "belongs to OpenIOC 1.1"),
            (Severity::Warning, "dictionary"),
            (Severity::Warning, "not a boolean"),
            (Severity::Warning, "empty <Content>"),
        ]
    );
}

#[test]
fn structure_errors_are_diagnosed() {
    let xml = r#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="s"><criteria>
<IndicatorItem id="stray" condition="is"/>
<Indicator operator="OR" id="r"/>
<Indicator operator="OR" id="second"><IndicatorItem id="x"/></Indicator>
</criteria></OpenIOC>"#;
    let parsed = openioc::parse_bytes("s.ioc", xml.as_bytes()).unwrap();
    assert_eq!(parsed.ioc.nodes.len(), 1);
    let lines: Vec<(u32, Severity)> = parsed.diagnostics.iter().map(|d| (d.line, d.severity)).collect();
    assert_eq!(lines, vec![(2, Severity::Error), (3, Severity::Warning), (4, Severity::Error)]);
    let empty = br#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="e"><criteria/></OpenIOC>"#;
    let parsed = openioc::parse_bytes("e.ioc", empty).unwrap();
    assert_eq!(parsed.ioc.root(), None);
    assert_eq!(parsed.diagnostics.len(), 1);
    let after = br#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="e"/><OpenIOC/>"#;
    assert_eq!(openioc::parse_bytes("a.ioc", after).unwrap_err().kind, ErrorKind::Malformed);
    let text_after = br#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="e"/> junk"#;
    assert_eq!(openioc::parse_bytes("a.ioc", text_after).unwrap_err().kind, ErrorKind::Malformed);
}

#[test]
fn truncated_and_mutated_real_files_never_panic() {
    let mut files: Vec<PathBuf> = real_dirs().iter().flat_map(|d| ioc_files(d)).collect();
    files.extend(ioc_files(&fixture("")));
    assert!(files.len() >= 28 + 12);
    // Seeded, so that a failure repeats.
    let mut rng = fastrand::Rng::with_seed(0x1234_5678_9abc_def1);
    let mut parses = 0usize;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        // Every prefix, in steps that give about 300 prefixes per file.
        let step = (bytes.len() / 300).max(1);
        for len in (0..=bytes.len()).step_by(step) {
            let _ = openioc::parse_bytes("prefix.ioc", &bytes[..len]);
            parses += 1;
        }
        // Random byte flips, insertions of markup characters, deletions.
        for _ in 0..150 {
            let mut mutated = bytes.clone();
            for _ in 0..1 + rng.usize(..8) {
                if mutated.is_empty() {
                    break;
                }
                let at = rng.usize(..mutated.len());
                match rng.usize(..4) {
                    0 => mutated[at] ^= 1 << rng.usize(..8),
                    1 => {
                        let markup = b"<>/&;\"'=!?[]-\0\xff";
                        mutated[at] = markup[rng.usize(..markup.len())];
                    }
                    2 => {
                        mutated.remove(at);
                    }
                    _ => {
                        let markup = b"<>/&;\"'";
                        mutated.insert(at, markup[rng.usize(..markup.len())]);
                    }
                }
            }
            let _ = openioc::parse_bytes("mutated.ioc", &mutated);
            parses += 1;
        }
    }
    assert!(parses > 10_000);
}

#[test]
fn namespace_declarations_in_scope_are_bounded() {
    // Each name resolution scans the declarations in scope: many of them
    // would make every element expensive.
    let declarations: String = (0..300).map(|i| format!(" xmlns:p{i}=\"urn:{i}\"")).collect();
    let xml =
        format!("<ioc xmlns=\"http://schemas.mandiant.com/2010/ioc\" id=\"n\">\n<definition{declarations}/></ioc>");
    let err = openioc::parse_bytes("ns.ioc", xml.as_bytes()).unwrap_err();
    assert_eq!((err.kind, err.line, err.column), (ErrorKind::Limit, 2, 1), "{err}");
    // Redeclaring the default namespace on every element is fine: the
    // declarations leave scope with their elements.
    let ns = "xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\"";
    let item = format!(
        "<IndicatorItem {ns} id=\"i\" condition=\"is\"><Context {ns} document=\"FileItem\" search=\"FileItem/Md5sum\"/><Content {ns} type=\"md5\">00</Content></IndicatorItem>"
    );
    let xml = format!(
        "<OpenIOC {ns} id=\"r\"><criteria {ns}><Indicator {ns} operator=\"OR\" id=\"t\">{}</Indicator></criteria></OpenIOC>",
        item.repeat(1000)
    );
    let parsed = openioc::parse_bytes("redeclared.ioc", xml.as_bytes()).unwrap();
    assert_eq!(parsed.ioc.items().count(), 1000);
}
