//! Each sensor sees its event, with the right fields.

use crate::harness::*;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::MetadataExt;
use serde_json::Value;
use std::process::Command;

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn exec_sensor_reports_the_process_with_its_fields() {
    if !bpf_or_skip("exec_sensor_reports_the_process_with_its_fields") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocx");
    let bin = marker_copy(dir.path(), &name);
    let marker = dir.path().join("ran");
    let ioc = write_ioc(dir.path(), "exec-sensor", &[("ProcessItem/name", "is", &name)]);
    let cg = TestCgroup::new("exec");
    let mut m = Monitor::start(&ioc, &cg, &["--print-events"]);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").unwrap();
    assert_eq!(
        ready["not_needed"],
        serde_json::json!(["tcp", "udp", "dns"]),
        "only process indicators: no network program"
    );

    let mut child = Command::new(&bin).arg(&marker).arg("plain").spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());

    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "exec-sensor")
        .expect("a detection for the exec");
    let obj = &det["object"];
    assert_eq!(obj["kind"], "process");
    assert_eq!(obj["pid"], pid);
    assert_eq!(obj["ppid"], std::process::id());
    assert_eq!(obj["name"], name.as_str());
    assert_eq!(obj["path"], bin.to_str().unwrap());
    assert_eq!(obj["username"], "root");
    assert!(obj["start_time"].as_i64().unwrap() > 1_600_000_000);

    let ev = m
        .wait_for(|v| v["type"] == "event" && v["event"]["event"] == "exec" && v["event"]["pid"] == pid)
        .expect("the exec event");
    let ev = &ev["event"];
    let meta = std::fs::metadata(&bin).unwrap();
    assert_eq!(ev["comm"], name.as_str());
    assert_eq!(ev["filename"], bin.to_str().unwrap());
    assert_eq!(
        ev["args"],
        serde_json::json!([bin.to_str().unwrap(), marker.to_str().unwrap(), "plain"])
    );
    assert_eq!(ev["ppid"], std::process::id());
    assert_eq!(ev["uid"], 0);
    assert_eq!(ev["ino"], meta.ino());
    assert_eq!(ev["dev"], meta.dev());
    assert!(ev["start_boottime_ns"].as_u64().unwrap() > 0);
    assert!(ev["kernel_kill"].is_null());

    m.wait_for(|v| v["type"] == "event" && v["event"]["event"] == "exit" && v["event"]["pid"] == pid)
        .expect("the exit event");
    let (status, _) = m.stop();
    assert_eq!(status.code(), Some(1), "exit status 1: something was detected");
}

/// Accept connections until the listener is dropped with the test.
fn accept_forever(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn tcp_connection_is_seen_with_addresses_pid_and_state() {
    if !bpf_or_skip("tcp_connection_is_seen_with_addresses_pid_and_state") {
        return;
    }
    tcp_sensor_sees_a_connection("127.0.0.3", &[]);
}

/// The TCP sensor's fallback (the classic tracepoint, for kernels where the
/// BTF tracepoint cannot be used) sees the same as the BTF one.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn tcp_connection_is_seen_by_the_classic_tracepoint_too() {
    if !bpf_or_skip("tcp_connection_is_seen_by_the_classic_tracepoint_too") {
        return;
    }
    let ready = tcp_sensor_sees_a_connection("127.0.0.13", &[("IOC_SCAN_TCP_TRACEPOINT", "classic")]);
    let tcp: Vec<&Value> = ready["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["sensor"] == "tcp")
        .collect();
    assert_eq!(tcp.len(), 1, "{ready}");
    assert_eq!(tcp[0]["program"], "inet_sock_set_state", "{ready}");
    assert_eq!(tcp[0]["attached"], true, "{ready}");
}

/// Connect to `ip` from a trigger program and check the detections at
/// SYN_SENT and ESTABLISHED; returns the monitor's `ready` line.
fn tcp_sensor_sees_a_connection(ip: &str, env: &[(&str, &str)]) -> Value {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    accept_forever(listener);
    let dir = tempfile::tempdir().unwrap();
    let items = items_xml(&[("PortItem/remoteIP", "is", ip), ("PortItem/remotePort", "is", &port.to_string())]);
    let ioc = write_ioc_tree(dir.path(), "tcp-sensor", &items, "AND");
    let cg = TestCgroup::new("tcp");
    let mut m = Monitor::start_env(&ioc, &cg, &[], env);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").cloned().unwrap();

    let mut child = Command::new(trigger("connect")).args(["tcp", ip, &port.to_string()]).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());

    let remote = format!("{ip}:{port}");
    let syn = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "tcp-sensor" && v["object"]["state"] == "SYN_SENT")
        .expect("a detection at SYN_SENT");
    assert_eq!(syn["object"]["kind"], "connection");
    assert_eq!(syn["object"]["protocol"], "TCP");
    assert_eq!(syn["object"]["remote"], remote.as_str());
    assert_eq!(syn["object"]["pid"], pid);
    assert_eq!(syn["object"]["process"], "connect");
    let est = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "tcp-sensor" && v["object"]["state"] == "ESTABLISHED")
        .expect("a detection at ESTABLISHED (owner remembered from SYN_SENT)");
    assert_eq!(est["object"]["pid"], pid);
    assert_eq!(est["object"]["remote"], remote.as_str());
    let local = est["object"]["local"].as_str().unwrap();
    assert!(!local.ends_with(":0"), "the source port is known once established: {local}");
    m.stop();
    ready
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn udp_peer_is_seen_only_from_the_monitored_cgroup() {
    if !bpf_or_skip("udp_peer_is_seen_only_from_the_monitored_cgroup") {
        return;
    }
    let server = UdpSocket::bind("127.0.0.4:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let items = items_xml(&[("PortItem/remoteIP", "is", "127.0.0.4"), ("PortItem/remotePort", "is", &port)]);
    let ioc = write_ioc_tree(dir.path(), "udp-sensor", &items, "AND");
    let cg = TestCgroup::new("udp");
    let mut m = Monitor::start(&ioc, &cg, &[]);

    let mut inside = cg.command(trigger("connect")).args(["udp", "127.0.0.4", &port]).spawn().unwrap();
    let inside_pid = inside.id();
    assert!(inside.wait().unwrap().success());
    let mut outside = Command::new(trigger("connect")).args(["udp", "127.0.0.4", &port]).spawn().unwrap();
    let outside_pid = outside.id();
    assert!(outside.wait().unwrap().success());

    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "udp-sensor")
        .expect("a UDP detection");
    assert_eq!(det["object"]["protocol"], "UDP");
    assert_eq!(det["object"]["remote"], format!("127.0.0.4:{port}").as_str());
    assert_eq!(det["object"]["pid"], inside_pid);
    let (_, lines) = m.stop();
    assert!(
        detections(&lines, "udp-sensor").all(|d| d["object"]["pid"] != outside_pid),
        "a process outside the cgroup is not seen by the cgroup programs"
    );
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn dns_query_and_answer_are_seen_with_the_asking_process() {
    if !bpf_or_skip("dns_query_and_answer_are_seen_with_the_asking_process") {
        return;
    }
    let (server, responder) = dns_responder();
    let name = format!("{}.ioc-test.example", unique_name("q"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "dns-sensor", &[("DnsEntryItem/RecordName", "is", &name)]);
    let cg = TestCgroup::new("dns");
    let mut m = Monitor::start(&ioc, &cg, &[]);

    let child = cg
        .command(trigger("resolve"))
        .args([server.as_str(), name.as_str()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "resolve: {}", String::from_utf8_lossy(&out.stdout));
    responder.join().unwrap();

    let answer = m
        .wait_for(|v| {
            v["type"] == "detection" && v["ioc_id"] == "dns-sensor" && v["object"]["addresses"] == serde_json::json!(["127.0.0.9"])
        })
        .expect("a detection for the answer");
    assert_eq!(answer["object"]["kind"], "dns");
    assert_eq!(answer["object"]["host"], name.as_str());
    assert_eq!(answer["object"]["record_type"], "A");
    assert_eq!(answer["object"]["pid"], pid);
    assert_eq!(answer["object"]["source"], "live");
    let query = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "dns-sensor" && v["object"]["addresses"] == serde_json::json!([]))
        .expect("a detection for the query");
    assert_eq!(query["object"]["pid"], pid);
    m.stop();
}
