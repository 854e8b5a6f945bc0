//! `ioc-scan scan` and `ioc_scan::scan` on real temporary trees: one
//! detection per FileItem term, the JSON-lines format, exit codes, reading
//! only what an IOC needs, and a scan that never aborts on a bad entry.
use crate::common::{fifo_and_socket, ioc_scan};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

// --- IOC writing helpers -------------------------------------------------

fn item(search: &str, condition: &str, content_type: &str, value: &str) -> String {
    format!(
        r#"<IndicatorItem id="item-{n}" condition="{condition}" preserve-case="false" negate="false">
  <Context document="FileItem" search="FileItem/{search}" type="mir"/>
  <Content type="{content_type}">{value}</Content>
</IndicatorItem>
"#,
        n = search.replace('/', "-")
    )
}

fn indicator(op: &str, body: &[String]) -> String {
    format!(
        "<Indicator operator=\"{op}\" id=\"ind-{op}\">\n{}</Indicator>\n",
        body.concat()
    )
}

fn ioc_xml(id: &str, criteria: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="{id}" last-modified="2026-01-01T00:00:00Z">
  <metadata><short_description>{id}</short_description><authored_by>test</authored_by></metadata>
  <criteria>
{criteria}  </criteria>
</OpenIOC>
"#
    )
}

/// Write IOC `id` (a single OR over `items`) into `dir`.
fn write_ioc(dir: &Path, id: &str, items: &[String]) -> PathBuf {
    let path = dir.join(format!("{id}.ioc"));
    std::fs::write(&path, ioc_xml(id, &indicator("OR", items))).unwrap();
    path
}

struct Run {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn of_type(&self, t: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == t).collect()
    }

    fn summary(&self) -> &Value {
        let s = self.of_type("summary");
        assert_eq!(s.len(), 1, "one summary line: {:?} {}", self.lines, self.stderr);
        assert_eq!(self.lines.last().unwrap()["type"], "summary", "the summary comes last");
        s[0]
    }

    /// IOC id → paths detected.
    fn detected(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for d in self.of_type("detection") {
            m.entry(d["ioc_id"].as_str().unwrap().to_string())
                .or_default()
                .insert(d["object"]["path"].as_str().unwrap().to_string());
        }
        m
    }
}

fn scan_json(iocs: &[&Path], scope: &Path, extra: &[&str]) -> Run {
    let mut cmd = ioc_scan();
    cmd.arg("scan")
        .arg("--json")
        .arg("--ioc")
        .args(iocs)
        .arg("--scope")
        .arg(scope)
        .args(extra);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn set_times(path: &Path, secs: u64) {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

// --- tests -----------------------------------------------------------------

/// 2001-02-03T04:05:06Z
const T2001: u64 = 981_173_106;

#[test]
fn every_file_item_term_detects_its_file_and_only_it() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let sub = root.join("deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let file = |name: &str, body: &[u8]| {
        let p = sub.join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let decoy = file("decoy.txt", b"nothing to see");
    let named = file("kdevtmpfsi", b"x");
    let ext = file("payload.elfx", b"x");
    let sized = file("sized", &[0u8; 4321]);
    let dated = file("dated", b"x");
    set_times(&dated, T2001);
    let moded = file("moded", b"x");
    std::fs::set_permissions(&moded, std::fs::Permissions::from_mode(0o4711)).unwrap();
    let hashed = file("hashed", b"The quick brown fox jumps over the lazy dog");
    // A literal straddling a read boundary.
    let mut big = vec![b'.'; 600 * 1024];
    let at = ioc_scan::collect::files::content::READ_SIZE * 3 - 5;
    big[at..at + 12].copy_from_slice(b"EVIL-MARKER!");
    let stringy = file("stringy", &big);
    let ino = std::fs::metadata(&decoy).unwrap().ino();
    // Everything else in the tree is older than 2001 so that "Modified
    // greater-than" and btime checks discriminate.
    for p in [&decoy, &named, &ext, &sized, &moded, &hashed, &stringy] {
        set_times(p, 1_000);
    }

    let p = |x: &PathBuf| x.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>, BTreeSet<String>)> = vec![
        (
            "name",
            vec![item("FileName", "is", "string", "KDEVTMPFSI")],
            [p(&named)].into(),
        ),
        (
            "fullpath",
            vec![item("FullPath", "is", "string", &p(&decoy))],
            [p(&decoy)].into(),
        ),
        (
            "ext",
            vec![item("FileExtension", "is", "string", "elfx")],
            [p(&ext)].into(),
        ),
        (
            "size",
            vec![item("SizeInBytes", "is", "int", "4321")],
            [p(&sized)].into(),
        ),
        (
            "modified",
            vec![item("Modified", "is", "date", "2001-02-03")],
            [p(&dated)].into(),
        ),
        (
            "accessed",
            vec![item("Accessed", "is", "date", "2001-02-03T04:05:06Z")],
            [p(&dated)].into(),
        ),
        (
            "perms",
            vec![item("Permissions", "is", "int", "4711")],
            [p(&moded)].into(),
        ),
        (
            "md5",
            vec![item("Md5sum", "is", "md5", "9e107d9d372bb6826bd81d3542a419d6")],
            [p(&hashed)].into(),
        ),
        (
            "sha1",
            vec![item(
                "Sha1sum",
                "is",
                "sha1",
                "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            )],
            [p(&hashed)].into(),
        ),
        (
            "sha256",
            vec![item(
                "Sha256sum",
                "is",
                "sha256",
                "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592",
            )],
            [p(&hashed)].into(),
        ),
        (
            "strings",
            vec![item("StringList/string", "contains", "string", "evil-marker!")],
            [p(&stringy)].into(),
        ),
        (
            "inode",
            vec![item("INode", "is", "int", &ino.to_string())],
            [p(&decoy)].into(),
        ),
    ];
    let mut paths = Vec::new();
    for (id, items, _) in &cases {
        paths.push(write_ioc(iocs.path(), id, items));
    }
    // Terms every file shares: each must detect all nine files.
    let all: BTreeSet<String> = [&decoy, &named, &ext, &sized, &dated, &moded, &hashed, &stringy]
        .iter()
        .map(|x| p(x))
        .collect();
    let shared: Vec<(&str, Vec<String>)> = vec![
        ("filepath", vec![item("FilePath", "is", "string", &p(&sub))]),
        ("owner", vec![item("Username", "is", "string", "root")]),
        ("group", vec![item("Group", "is", "string", "root")]),
        ("gid", vec![item("GroupID", "is", "string", "0")]),
        (
            "changed",
            vec![item("Changed", "greater-than", "date", "2020-01-01T00:00:00Z")],
        ),
    ];
    for (id, items) in &shared {
        paths.push(write_ioc(iocs.path(), id, items));
    }
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let run = scan_json(&refs, &root, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let detected = run.detected();
    for (id, _, want) in &cases {
        assert_eq!(detected.get(*id), Some(want), "IOC {id}: {detected:#?}");
    }
    for (id, _) in &shared {
        assert_eq!(detected.get(*id), Some(&all), "IOC {id}");
    }
    // The digests a detection computed are in its object.
    let sha = run
        .of_type("detection")
        .into_iter()
        .find(|d| d["ioc_id"] == "sha256")
        .unwrap()
        .clone();
    assert_eq!(
        sha["object"]["sha256"],
        "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
    );
    assert_eq!(sha["object"]["kind"], "file");
    assert_eq!(sha["object"]["size"], 43);
    assert!(sha["matched_items"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(run.summary()["files_examined"], 8);
}

#[test]
fn birth_time_is_reported_when_the_filesystem_has_it() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("new"), b"x").unwrap();
    let has_btime = std::fs::metadata(root.join("new")).unwrap().created().is_ok();
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(
        iocs.path(),
        "created",
        &[item("Created", "greater-than", "date", "2020-01-01T00:00:00Z")],
    );
    let run = scan_json(&[&ioc], &root, &[]);
    // Where there is no birth time, the term is absent and nothing matches.
    assert_eq!(run.code, if has_btime { 1 } else { 0 }, "{}", run.stderr);
}

#[test]
fn json_lines_have_the_documented_shape() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("xmrig"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(iocs.path(), "miner", &[item("FileName", "is", "string", "xmrig")]);
    let run = scan_json(&[&ioc], &root, &[]);
    assert_eq!(run.code, 1);
    let d = run.of_type("detection");
    assert_eq!(d.len(), 1);
    for key in ["ioc_id", "ioc_name", "object", "matched_items"] {
        assert!(d[0].get(key).is_some(), "detection has {key}: {}", d[0]);
    }
    assert_eq!(d[0]["object"]["path"], root.join("xmrig").to_str().unwrap());
    let s = run.summary();
    for key in [
        "files_examined",
        "bytes_hashed",
        "bytes_read",
        "skipped",
        "error_count",
        "elapsed_seconds",
        "detections",
    ] {
        assert!(s.get(key).is_some(), "summary has {key}: {s}");
    }
    assert_eq!(s["detections"], 1);
    assert!(s["elapsed_seconds"].as_f64().is_some());
}

#[test]
fn exit_codes_say_nothing_found_found_or_error() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("benign"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let miss = write_ioc(iocs.path(), "miss", &[item("FileName", "is", "string", "absent-name")]);
    let hit = write_ioc(iocs.path(), "hit", &[item("FileName", "is", "string", "benign")]);
    let bad = iocs.path().join("bad.ioc");
    std::fs::write(&bad, "<OpenIOC><criteria>").unwrap();
    assert_eq!(scan_json(&[&miss], &root, &[]).code, 0);
    assert_eq!(scan_json(&[&hit], &root, &[]).code, 1);
    // No IOC loadable at all.
    let run = scan_json(&[&bad], &root, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.of_type("ioc_error").len(), 1);
    // A scope that does not exist.
    assert_eq!(scan_json(&[&hit], &root.join("nope"), &[]).code, 2);
    // Human output, same codes.
    let out = ioc_scan()
        .args(["scan", "--no-progress", "--ioc"])
        .arg(&hit)
        .arg("--scope")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DETECTED hit") && text.contains(root.join("benign").to_str().unwrap()),
        "{text}"
    );
}

#[test]
fn a_bad_ioc_file_among_good_ones_is_reported_and_the_rest_scans() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("xmrig"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    write_ioc(iocs.path(), "good", &[item("FileName", "is", "string", "xmrig")]);
    std::fs::write(iocs.path().join("broken.ioc"), "not xml at all <<<").unwrap();
    let run = scan_json(&[iocs.path()], &root, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let errs = run.of_type("ioc_error");
    assert_eq!(errs.len(), 1);
    assert!(errs[0]["file"].as_str().unwrap().ends_with("broken.ioc"));
    assert_eq!(run.detected().len(), 1);
    assert_eq!(run.summary()["ioc_files_failed"], 1);
}

#[test]
fn name_only_iocs_read_no_file_content() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    for i in 0..50 {
        std::fs::write(root.join(format!("f{i}")), vec![b'a'; 1000]).unwrap();
    }
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(
        iocs.path(),
        "names",
        &[
            item("FileName", "is", "string", "f7"),
            item("FullPath", "starts-with", "string", "/nonexistent/"),
        ],
    );
    let run = scan_json(&[&ioc], &root, &[]);
    assert_eq!(run.code, 1);
    let s = run.summary();
    assert_eq!(s["files_examined"], 50);
    assert_eq!(s["bytes_read"], 0, "{s}");
    assert_eq!(s["files_read"], 0);
}

#[test]
fn a_name_anchored_hash_ioc_reads_only_the_files_with_that_name() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    for i in 0..20 {
        std::fs::write(root.join(format!("f{i}")), b"0123456789").unwrap();
    }
    let iocs = tempfile::tempdir().unwrap();
    let path = iocs.path().join("and.ioc");
    let criteria = indicator(
        "AND",
        &[
            item("FileName", "is", "string", "f3"),
            item(
                "Sha256sum",
                "is",
                "sha256",
                "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882",
            ),
        ],
    );
    std::fs::write(&path, ioc_xml("and", &criteria)).unwrap();
    let run = scan_json(&[&path], &root, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.summary()["files_read"], 1);
    assert_eq!(run.summary()["bytes_hashed"], 10);
}

#[test]
fn special_files_symlinks_and_loops_never_stop_or_mislead_a_scan() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("xmrig"), b"x").unwrap();
    let _sock = fifo_and_socket(&root);
    std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("xmrig"), root.join("xmrig-link")).unwrap();
    std::fs::write(root.join("plain"), b"hello").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    // A hash IOC makes the scan want to read every file; a name IOC would
    // match the file outside the scope.
    let ioc = write_ioc(
        iocs.path(),
        "both",
        &[
            item("FileName", "is", "string", "xmrig"),
            item(
                "Sha256sum",
                "is",
                "sha256",
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            ),
        ],
    );
    let run = scan_json(&[&ioc], &root, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.detected()["both"],
        [root.join("plain").to_str().unwrap().to_string()].into()
    );
    let s = run.summary();
    assert_eq!(s["skipped"]["special_file"], 2, "{s}");
    assert_eq!(s["skipped"]["symlink"], 3, "{s}");
    assert_eq!(s["files_examined"], 1);
    assert_eq!(s["error_count"], 0);
}

#[test]
fn files_over_the_size_limit_are_counted_not_hashed_but_still_named() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("big"), vec![b'a'; 5000]).unwrap();
    std::fs::write(root.join("small"), b"hello").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let big_sha = "1df4b8ac4d0e7d4a2d9d2ae1c1d9db8a32e1b8fc4b0c2d1f3b0f6c5a2b3e4d5c"; // never computed
    let hash = write_ioc(iocs.path(), "hash", &[item("Sha256sum", "is", "sha256", big_sha)]);
    let name = write_ioc(iocs.path(), "name", &[item("FileName", "is", "string", "big")]);
    let run = scan_json(&[&hash, &name], &root, &["--max-file-size", "4K"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.detected().keys().collect::<Vec<_>>(), vec!["name"]);
    let s = run.summary();
    assert_eq!(s["skipped"]["too_large"], 1, "{s}");
    assert_eq!(s["bytes_hashed"], 5, "only the small file is hashed: {s}");
}

#[test]
fn excluded_paths_are_neither_examined_nor_detected() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("cache/deep")).unwrap();
    std::fs::write(root.join("cache/deep/xmrig"), b"x").unwrap();
    std::fs::write(root.join("xmrig.log"), b"x").unwrap();
    std::fs::write(root.join("xmrig"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(iocs.path(), "m", &[item("FileName", "starts-with", "string", "xmrig")]);
    let run = scan_json(&[&ioc], &root, &["--exclude", "**/cache", "--exclude", "*.log"]);
    assert_eq!(
        run.detected()["m"],
        [root.join("xmrig").to_str().unwrap().to_string()].into()
    );
    assert_eq!(run.summary()["skipped"]["excluded"], 2);
    // A bad glob is an error.
    assert_eq!(scan_json(&[&ioc], &root, &["--exclude", "a[b"]).code, 2);
}

#[test]
fn a_missing_scope_among_good_ones_is_an_error_entry_not_an_abort() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("xmrig"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(iocs.path(), "m", &[item("FileName", "is", "string", "xmrig")]);
    let missing = root.join("missing");
    let run = scan_json(&[&ioc], &root, &["--scope", missing.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let s = run.summary();
    assert_eq!(s["error_count"], 1);
    assert_eq!(s["errors"][0]["path"], missing.to_str().unwrap());
}

#[test]
fn non_utf8_paths_round_trip_through_json() {
    use std::os::unix::ffi::OsStrExt;
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"xmrig\xff");
    std::fs::write(root.join(name), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(iocs.path(), "m", &[item("FileName", "starts-with", "string", "xmrig")]);
    let run = scan_json(&[&ioc], &root, &[]);
    let d = run.of_type("detection");
    assert_eq!(d.len(), 1);
    let bytes = hex::decode(d[0]["object"]["path_bytes_hex"].as_str().unwrap()).unwrap();
    assert_eq!(Path::new(std::ffi::OsStr::from_bytes(&bytes)), root.join(name));
}

#[test]
fn the_library_streams_detections_and_skips_the_walk_when_no_ioc_asks_about_files() {
    use ioc_scan::eval::CompiledCollection;
    use ioc_scan::scan::{Scan, ScanOptions};
    use std::sync::Mutex;
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("xmrig"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let ioc = write_ioc(iocs.path(), "m", &[item("FileName", "is", "string", "xmrig")]);
    let collection = ioc_scan::openioc::load_files(&[ioc]);
    let (compiled, _) = CompiledCollection::compile(&collection.iocs);
    let options = ScanOptions {
        scopes: vec![root.clone()],
        threads: 2,
        ..ScanOptions::default()
    };
    let seen = Mutex::new(Vec::new());
    let summary = Scan::new(&compiled, options.clone())
        .run(&|d| seen.lock().unwrap().push(d))
        .unwrap();
    assert_eq!(summary.detections, 1);
    assert_eq!(
        seen.into_inner().unwrap()[0].object.fields["path"],
        root.join("xmrig").to_str().unwrap()
    );

    // A process-only collection does not walk files at all.
    let proc_ioc = iocs.path().join("p.ioc");
    std::fs::write(
        &proc_ioc,
        ioc_xml(
            "p",
            &indicator(
                "OR",
                &[item("FileName", "is", "string", "unused")
                    .replace("FileItem/FileName", "ProcessItem/name")
                    .replace("document=\"FileItem\"", "document=\"ProcessItem\"")],
            ),
        ),
    )
    .unwrap();
    let collection = ioc_scan::openioc::load_files(&[proc_ioc]);
    let (compiled, _) = CompiledCollection::compile(&collection.iocs);
    let summary = Scan::new(&compiled, options).run(&|_| {}).unwrap();
    assert_eq!(summary.files_examined, 0);
    assert_eq!(summary.dirs, 0);
}

#[test]
fn unreadable_files_and_directories_are_counted_errors_and_the_scan_goes_on() {
    use std::os::unix::process::CommandExt;
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(root.join("locked")).unwrap();
    std::fs::write(root.join("locked/xmrig"), b"x").unwrap();
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(root.join("secret"), b"x").unwrap();
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(root.join("open"), b"hello").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(iocs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Wanting every file's SHA-256 makes the scan open "secret".
    let ioc = write_ioc(
        iocs.path(),
        "h",
        &[item(
            "Sha256sum",
            "is",
            "sha256",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        )],
    );
    std::fs::set_permissions(&ioc, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = ioc_scan();
    cmd.args(["scan", "--json", "--ioc"])
        .arg(&ioc)
        .arg("--scope")
        .arg(&root);
    // Root reads everything: drop to nobody for this scan.
    if rustix::process::geteuid().is_root() {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.detected()["h"],
        [root.join("open").to_str().unwrap().to_string()].into()
    );
    let s = run.summary();
    assert_eq!(s["error_count"], 2, "{s}");
    let mut paths: Vec<&str> = s["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            root.join("locked").to_str().unwrap(),
            root.join("secret").to_str().unwrap()
        ]
    );
    let _ = std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o755));
}

/// A collector stand-in: one object of its document, named `kinsing`.
struct FakeCollector {
    document: &'static str,
    ran: std::sync::atomic::AtomicBool,
}

/// A file seen by some other means than the walk (e.g. a remote listing).
struct FakeObject;

impl ioc_scan::eval::Observation for FakeObject {
    fn document(&self) -> &'static str {
        "FileItem"
    }
    fn field(&self, term: ioc_scan::terms::TermId) -> ioc_scan::eval::Field<'_> {
        use ioc_scan::eval::{Field, Value};
        if term == ioc_scan::terms::ids::FileItem_FileName {
            Field::One(Value::Str("kinsing".into()))
        } else {
            Field::Absent
        }
    }
    fn object_ref(&self) -> ioc_scan::eval::ObjectRef {
        ioc_scan::eval::ObjectRef {
            kind: "virtual",
            fields: [("name".to_string(), "kinsing".into())].into_iter().collect(),
        }
    }
}

impl ioc_scan::scan::Collector for FakeCollector {
    fn document(&self) -> &'static str {
        self.document
    }
    fn collect(
        &self,
        evaluate: &mut dyn FnMut(&dyn ioc_scan::eval::Observation) -> ioc_scan::eval::Outcome,
    ) -> ioc_scan::scan::CollectorSummary {
        self.ran.store(true, std::sync::atomic::Ordering::Relaxed);
        evaluate(&FakeObject);
        ioc_scan::scan::CollectorSummary {
            document: self.document,
            objects: 1,
            errors: 0,
        }
    }
}

#[test]
fn collectors_run_beside_the_walk_only_for_documents_the_iocs_use() {
    use ioc_scan::eval::CompiledCollection;
    use ioc_scan::scan::{Scan, ScanOptions};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::write(root.join("kinsing"), b"x").unwrap();
    let iocs = tempfile::tempdir().unwrap();
    let path = write_ioc(iocs.path(), "k", &[item("FileName", "is", "string", "kinsing")]);
    let collection = ioc_scan::openioc::load_files(&[path]);
    let (compiled, _) = CompiledCollection::compile(&collection.iocs);
    let files = Arc::new(FakeCollector {
        document: "FileItem",
        ran: false.into(),
    });
    let ports = Arc::new(FakeCollector {
        document: "PortItem",
        ran: false.into(),
    });
    struct Shared(Arc<FakeCollector>);
    impl ioc_scan::scan::Collector for Shared {
        fn document(&self) -> &'static str {
            self.0.document()
        }
        fn collect(
            &self,
            e: &mut dyn FnMut(&dyn ioc_scan::eval::Observation) -> ioc_scan::eval::Outcome,
        ) -> ioc_scan::scan::CollectorSummary {
            self.0.collect(e)
        }
    }
    let options = ScanOptions {
        scopes: vec![root.clone()],
        ..ScanOptions::default()
    };
    let found = std::sync::Mutex::new(Vec::new());
    let summary = Scan::new(&compiled, options)
        .with_collectors(vec![Box::new(Shared(files.clone())), Box::new(Shared(ports.clone()))])
        .run(&|d| found.lock().unwrap().push(d.object.kind))
        .unwrap();
    assert!(files.ran.load(Ordering::Relaxed));
    assert!(!ports.ran.load(Ordering::Relaxed), "no IOC asks about ports");
    let mut kinds = found.into_inner().unwrap();
    kinds.sort();
    assert_eq!(kinds, vec!["file", "virtual"]);
    assert_eq!(summary.collectors.len(), 1);
    assert_eq!(summary.collectors[0].document, "FileItem");
}

/// Clears an inode flag set by a test, also when the test fails (an
/// immutable file would outlive its temporary directory).
struct Chattr<'a>(&'a Path, &'static str);

impl Drop for Chattr<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr").arg(self.1).arg(self.0).status();
    }
}

#[test]
fn file_attributes_name_immutable_and_append_only_files() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    for f in ["locked", "log", "plain"] {
        std::fs::write(root.join(f), b"x").unwrap();
    }
    let set = |flag: &str, f: &str| {
        std::process::Command::new("chattr")
            .arg(flag)
            .arg(root.join(f))
            .status()
            .is_ok_and(|s| s.success())
    };
    // Needs root (CAP_LINUX_IMMUTABLE) and a filesystem with inode flags.
    if !set("+i", "locked") {
        eprintln!("skipped: chattr +i is not possible here");
        return;
    }
    let locked = root.join("locked");
    let _unlock = Chattr(&locked, "-i");
    assert!(set("+a", "log"));
    let log = root.join("log");
    let _unappend = Chattr(&log, "-a");

    let iocs = tempfile::tempdir().unwrap();
    let immutable = write_ioc(iocs.path(), "immutable", &[item("FileAttributes", "is", "string", "Immutable")]);
    let append = write_ioc(iocs.path(), "append", &[item("FileAttributes", "contains", "string", "append")]);
    let run = scan_json(&[&immutable, &append], &root, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let detected = run.detected();
    let one = |p: &Path| BTreeSet::from([p.to_str().unwrap().to_string()]);
    assert_eq!(detected["immutable"], one(&locked));
    assert_eq!(detected["append"], one(&log));
}
