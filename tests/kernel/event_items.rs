//! eventItem records of live events: processEvent at exec and exit,
//! ipv4NetworkEvent per connection, dnsLookupEvent and Network/DNS per answer;
//! and the kernel's kill by a processEvent item.

use crate::harness::*;
use serde_json::Value;
use std::net::TcpListener;
use std::process::Command;

fn md5_hex(path: &std::path::Path) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(std::fs::read(path).unwrap()))
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn process_start_and_end_are_seen_as_process_events_with_parent_and_md5() {
    if !bpf_or_skip("process_start_and_end_are_seen_as_process_events_with_parent_and_md5") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocev");
    let bin = marker_copy(dir.path(), &name);
    let bin_path = bin.to_str().unwrap();
    let md5 = md5_hex(&bin);
    let me = std::process::id().to_string();
    let start = items_xml(&[
        ("eventItem/processEvent/eventType", "is", "start"),
        ("eventItem/processEvent/process", "is", &name),
        ("eventItem/processEvent/parentPid", "is", &me),
        ("eventItem/processEvent/md5", "is", &md5),
        ("eventItem/processEvent/processCmdLine", "contains", "plain"),
    ]);
    let end = items_xml(&[
        ("eventItem/processEvent/eventType", "is", "end"),
        ("eventItem/processEvent/processPath", "is", bin_path),
    ]);
    let ioc_dir = dir.path().join("iocs");
    std::fs::create_dir(&ioc_dir).unwrap();
    write_ioc_tree(&ioc_dir, "ev-start", &start, "AND");
    write_ioc_tree(&ioc_dir, "ev-end", &end, "AND");
    // A near miss: another md5 must not match.
    let other = items_xml(&[
        ("eventItem/processEvent/process", "is", &name),
        ("eventItem/processEvent/md5", "is", "00000000000000000000000000000000"),
    ]);
    write_ioc_tree(&ioc_dir, "ev-other-md5", &other, "AND");
    let cg = TestCgroup::new("evproc");
    let mut m = Monitor::start(&ioc_dir, &cg, &[]);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").unwrap();
    assert_eq!(
        ready["not_needed"],
        serde_json::json!(["tcp", "udp", "dns"]),
        "process events only: no network program"
    );

    let marker = dir.path().join("ran");
    let mut child = Command::new(&bin).arg(&marker).arg("plain").spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());

    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "ev-start")
        .expect("a detection of the start event");
    let obj = &det["object"];
    assert_eq!(obj["kind"], "event");
    assert_eq!(obj["event_type"], "processEvent");
    assert_eq!(obj["event"], "start");
    assert_eq!(obj["pid"], pid);
    assert_eq!(obj["ppid"], std::process::id());
    assert_eq!(obj["name"], name.as_str());
    assert_eq!(obj["path"], bin_path);
    assert_eq!(obj["md5"], md5.as_str());
    assert!(obj["parent_path"].as_str().unwrap().ends_with(
        std::env::current_exe().unwrap().file_name().unwrap().to_str().unwrap()
    ));
    assert_eq!(det["matched_items"].as_array().unwrap().len(), 5);

    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "ev-end")
        .expect("a detection of the end event");
    assert_eq!(det["object"]["event"], "end");
    assert_eq!(det["object"]["pid"], pid);
    let (_, lines) = m.stop();
    assert_eq!(detections(&lines, "ev-other-md5").count(), 0, "another md5 matched");
    assert_eq!(detections(&lines, "ev-start").count(), 1, "one exec, one start event");
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn a_tcp_connection_is_one_ipv4_network_event_with_both_ends_and_its_process() {
    if !bpf_or_skip("a_tcp_connection_is_one_ipv4_network_event_with_both_ends_and_its_process") {
        return;
    }
    let ip = "127.0.0.6";
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let items = items_xml(&[
        ("eventItem/ipv4NetworkEvent/remoteIP", "is", ip),
        ("eventItem/ipv4NetworkEvent/remotePort", "is", &port),
        ("eventItem/ipv4NetworkEvent/protocol", "is", "TCP"),
        ("eventItem/ipv4NetworkEvent/process", "is", "connect"),
    ]);
    let ioc = write_ioc_tree(dir.path(), "ev-net", &items, "AND");
    let cg = TestCgroup::new("evnet");
    let mut m = Monitor::start(&ioc, &cg, &[]);

    let mut child = cg.command(trigger("connect")).args(["tcp", ip, &port]).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());

    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "ev-net")
        .expect("a detection of the network event");
    let obj = &det["object"];
    assert_eq!(obj["kind"], "event");
    assert_eq!(obj["event_type"], "ipv4NetworkEvent");
    assert_eq!(obj["remote"], format!("{ip}:{port}").as_str());
    assert_eq!(obj["pid"], pid);
    assert_eq!(obj["username"], "root");
    let local = obj["local"].as_str().unwrap();
    assert!(local.starts_with("127.") && !local.ends_with(":0"), "both ends known: {local}");
    let (_, lines) = m.stop();
    let events: Vec<&Value> = detections(&lines, "ev-net").collect();
    assert_eq!(events.len(), 1, "one connection, one event (not SYN_SENT and ESTABLISHED): {events:?}");
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn an_answered_lookup_is_a_dns_lookup_event_and_a_network_dns_name() {
    if !bpf_or_skip("an_answered_lookup_is_a_dns_lookup_event_and_a_network_dns_name") {
        return;
    }
    let (server, responder) = dns_responder();
    let name = format!("{}.ioc-test.example", unique_name("l"));
    let dir = tempfile::tempdir().unwrap();
    let ioc_dir = dir.path().join("iocs");
    std::fs::create_dir(&ioc_dir).unwrap();
    let lookup = items_xml(&[
        ("eventItem/dnsLookupEvent/hostname", "is", &name),
        ("eventItem/dnsLookupEvent/process", "is", "resolve"),
    ]);
    write_ioc_tree(&ioc_dir, "ev-lookup", &lookup, "AND");
    write_ioc(&ioc_dir, "net-dns", &[("Network/DNS", "is", &name)]);
    let cg = TestCgroup::new("evdns");
    let mut m = Monitor::start(&ioc_dir, &cg, &[]);

    let child = cg
        .command(trigger("resolve"))
        .args([server.as_str(), name.as_str()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    responder.join().unwrap();

    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "ev-lookup")
        .expect("a detection of the lookup event");
    assert_eq!(det["object"]["event_type"], "dnsLookupEvent");
    assert_eq!(det["object"]["hostname"], name.as_str());
    assert_eq!(det["object"]["pid"], pid);
    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "net-dns")
        .expect("a detection of the Network/DNS name");
    assert_eq!(det["object"]["kind"], "network");
    assert_eq!(det["object"]["dns"], name.as_str());
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn kill_by_a_process_event_name_happens_in_the_kernel_at_exec() {
    if !bpf_or_skip("kill_by_a_process_event_name_happens_in_the_kernel_at_exec") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocevk");
    let bin = marker_copy(dir.path(), &name);
    let ioc = write_ioc(dir.path(), "ev-kill", &[("eventItem/processEvent/process", "is", &name)]);
    let cg = TestCgroup::new("evkill");
    let mut m = Monitor::start(&ioc, &cg, &["--kill"]);
    let marker = dir.path().join("ran");
    let status = Command::new(&bin).arg(&marker).arg("plain").status().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
    assert!(!marker.exists(), "the program never ran its own code");
    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "ev-kill" && v["object"]["event"] == "start")
        .expect("the start event detection");
    assert_eq!(det["object"]["name"], name.as_str());
    m.wait_for(|v| v["type"] == "action" && v["by"] == "kernel" && v["outcome"] == "done")
        .expect("the kernel's kill reported");
    m.stop();
}
