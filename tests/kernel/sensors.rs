//! Each sensor sees its event, with the right fields.

use crate::harness::*;
use std::io::BufRead;
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
    let ready = dns_sensor_sees_a_query_and_its_answer(&[]);
    assert_eq!(dns_programs(&ready), ["dns_data_ready"], "{ready}");
}

/// The DNS sensor's fallback (the per-packet cgroup skb programs, for
/// kernels where the BTF tracepoint cannot be used) sees the same.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn dns_query_and_answer_are_seen_by_the_cgroup_skb_fallback_too() {
    if !bpf_or_skip("dns_query_and_answer_are_seen_by_the_cgroup_skb_fallback_too") {
        return;
    }
    let ready = dns_sensor_sees_a_query_and_its_answer(&[("IOC_SCAN_DNS_HOOK", "cgroup_skb")]);
    assert_eq!(dns_programs(&ready), ["dns_egress", "dns_ingress"], "{ready}");
}

/// The attached DNS programs of a `ready` line.
fn dns_programs(ready: &Value) -> Vec<String> {
    ready["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["sensor"] == "dns" && p["attached"] == true)
        .map(|p| p["program"].as_str().unwrap().to_string())
        .collect()
}

/// Resolve a name from a trigger in the test cgroup and check the
/// detections of the answer and of the query; returns the `ready` line.
fn dns_sensor_sees_a_query_and_its_answer(env: &[(&str, &str)]) -> Value {
    let (server, responder) = dns_responder();
    let name = format!("{}.ioc-test.example", unique_name("q"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "dns-sensor", &[("DnsEntryItem/RecordName", "is", &name)]);
    let cg = TestCgroup::new("dns");
    let mut m = Monitor::start_env(&ioc, &cg, &[], env);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").cloned().unwrap();

    let pid = resolve_in(&cg, &server, &name);
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
    assert_eq!(query["object"]["host"], name.as_str());
    m.stop();
    ready
}

/// The DNS sensor reads only sockets that sent to port 53: a datagram from
/// port 53 to a socket that only received is not a DNS answer to report.
/// (The per-packet fallback cannot tell, and reports it.)
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn dns_sensor_ignores_a_socket_that_never_sent_to_port_53() {
    if !bpf_or_skip("dns_sensor_ignores_a_socket_that_never_sent_to_port_53") {
        return;
    }
    let unasked = format!("{}.ioc-test.example", unique_name("u"));
    let asked = format!("{}.ioc-test.example", unique_name("a"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(
        dir.path(),
        "dns-unasked",
        &[("DnsEntryItem/RecordName", "is", &unasked), ("DnsEntryItem/RecordName", "is", &asked)],
    );
    let cg = TestCgroup::new("dns-unasked");
    let mut m = Monitor::start(&ioc, &cg, &["--print-events"]);

    // A receiver in the monitored cgroup gets an answer from port 53 it
    // never asked for.
    let mut receiver = cg
        .command(trigger("receive"))
        .arg("127.0.0.1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(receiver.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let port: u16 = first.strip_prefix("port ").and_then(|p| p.parse().ok()).expect(&first);
    let (server, _ip) = dns_server_socket();
    server
        .send_to(&dns_answer(&dns_query(&unasked), &[[127, 0, 0, 9]]), ("127.0.0.1", port))
        .unwrap();
    let got = lines.next().unwrap().unwrap();
    assert!(got.starts_with("got ") && got.ends_with("from port 53"), "receive: {got}");
    assert!(receiver.wait().unwrap().success());

    // Then a real question and answer, which the sensor must see: once it
    // is reported, the unasked one (earlier) would have been too.
    drop(server);
    let (ip, responder) = dns_responder();
    let (status, said) = run(cg.command(trigger("resolve")).args([ip.as_str(), asked.as_str()]));
    assert!(status.success(), "resolve: {said}");
    responder.join().unwrap();
    m.wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "dns-unasked" && v["object"]["host"] == asked.as_str())
        .expect("the asked name is seen");
    let (_, lines) = m.stop();
    assert!(
        detections(&lines, "dns-unasked").all(|d| d["object"]["host"] != unasked.as_str()),
        "the unasked answer was reported"
    );
    assert!(
        !lines
            .iter()
            .any(|v| v["type"] == "event" && v["event"]["event"] == "dns" && v["event"]["dst_port"] == port),
        "a DNS event for the socket that never asked"
    );
}

/// An answer longer than the sensor copies (DNS_PAYLOAD_LEN) is reported,
/// marked truncated, with the records that fit.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn dns_answer_longer_than_the_copy_is_reported_truncated() {
    if !bpf_or_skip("dns_answer_longer_than_the_copy_is_reported_truncated") {
        return;
    }
    let name = format!("{}.ioc-test.example", unique_name("t"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "dns-long", &[("DnsEntryItem/RecordName", "is", &name)]);
    let cg = TestCgroup::new("dns-long");
    let mut m = Monitor::start(&ioc, &cg, &["--print-events"]);

    // 40 A records: 12 + 5 + name + 40 * 16 bytes, well past 512.
    let (sock, ip) = dns_server_socket();
    let addresses: Vec<[u8; 4]> = (1..=40).map(|i| [127, 0, 1, i]).collect();
    let responder = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        let answer = dns_answer(&buf[..n], &addresses);
        assert!(answer.len() > 600);
        sock.send_to(&answer, from).unwrap();
    });
    let (status, said) = run(cg.command(trigger("resolve")).args([ip.as_str(), name.as_str()]));
    assert!(status.success(), "resolve: {said}");
    responder.join().unwrap();

    let event = m
        .wait_for(|v| v["type"] == "event" && v["event"]["event"] == "dns" && v["event"]["src_port"] == 53)
        .expect("the answer's event");
    assert_eq!(event["event"]["truncated"], true, "{event}");
    // One detection per A record (all from this one event, so all printed
    // by the time the first is).
    m.wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "dns-long" && v["object"]["addresses"] == serde_json::json!(["127.0.1.1"]))
        .expect("a detection for the first record");
    let (_, lines) = m.stop();
    let records = detections(&lines, "dns-long")
        .filter(|d| d["object"]["addresses"] != serde_json::json!([]))
        .count();
    assert!(records > 20 && records < 40, "{records} records: those in the first 512 bytes");
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn an_unanswered_query_is_named_only_with_dns_queries() {
    if !bpf_or_skip("an_unanswered_query_is_named_only_with_dns_queries") {
        return;
    }
    // A server that takes queries and never answers.
    let (_silent, server) = dns_server_socket();
    let name = format!("{}.ioc-test.example", unique_name("nq"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "dns-unanswered", &[("DnsEntryItem/RecordName", "is", &name)]);
    let cg = TestCgroup::new("dnsq");
    let ask = || {
        cg.command(trigger("resolve"))
            .args([server.as_str(), name.as_str()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };

    // By default a query is seen through its answer: here only as the
    // UDP connection to port 53.
    let mut m = Monitor::start(&ioc, &cg, &["--print-events"]);
    let mut child = ask();
    let pid = child.id();
    m.wait_for(|v| v["type"] == "event" && v["event"]["event"] == "conn" && v["event"]["remote_port"] == 53 && v["event"]["pid"] == pid)
        .expect("the UDP connection to the server");
    // The query itself went out right after the connect.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let (_, lines) = m.stop();
    assert_eq!(detections(&lines, "dns-unanswered").count(), 0, "no answer, no name");

    let mut m = Monitor::start(&ioc, &cg, &["--dns-queries"]);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").cloned().unwrap();
    let programs: Vec<&str> = ready["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["sensor"] == "dns" && p["unavailable"].is_null())
        .map(|p| p["program"].as_str().unwrap())
        .collect();
    assert_eq!(programs, ["dns_data_ready", "dns_egress"], "{ready}");
    let mut child = ask();
    let pid = child.id();
    let det = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "dns-unanswered")
        .expect("the query, named");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(det["object"]["host"], name.as_str());
    assert_eq!(det["object"]["pid"], pid);
    assert_eq!(det["object"]["addresses"], serde_json::json!([]));
    m.stop();
}
