//! The IPv6 paths of the network sensors and of blocking: TCP state events
//! with v6 addresses, `connect6`/`sendmsg6` refusing a listed v6 address,
//! DNS answers from a v6 server.

use crate::harness::*;
use std::net::TcpListener;
use std::process::Command;

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn an_ipv6_tcp_connection_is_seen_with_its_v6_addresses_and_owner() {
    if !bpf_or_skip("an_ipv6_tcp_connection_is_seen_with_its_v6_addresses_and_owner") {
        return;
    }
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    accept_forever(listener);
    let dir = tempfile::tempdir().unwrap();
    let items = items_xml(&[
        ("PortItem/remoteIP", "is", "::1"),
        ("PortItem/remotePort", "is", &port),
        ("PortItem/isIPv6", "is", "true"),
    ]);
    let ioc = write_ioc_tree(dir.path(), "tcp6", &items, "AND");
    let cg = TestCgroup::new("tcp6");
    let mut m = Monitor::start(&ioc, &cg, &[]);

    let mut child = cg.command(trigger("connect")).args(["tcp", "::1", &port]).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());

    let est = m
        .wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "tcp6" && v["object"]["state"] == "ESTABLISHED")
        .expect("a detection of the v6 connection once established");
    assert_eq!(est["object"]["remote"], format!("[::1]:{port}").as_str());
    assert_eq!(est["object"]["pid"], pid);
    assert_eq!(est["object"]["process"], "connect");
    let local = est["object"]["local"].as_str().unwrap();
    assert!(local.starts_with("[::1]:") && !local.ends_with(":0"), "{local}");
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn block_refuses_a_listed_ipv6_address_for_tcp_and_udp_and_nothing_else() {
    if !bpf_or_skip("block_refuses_a_listed_ipv6_address_for_tcp_and_udp_and_nothing_else") {
        return;
    }
    let listed = TcpListener::bind("[::1]:0").unwrap();
    let listed_port = listed.local_addr().unwrap().port().to_string();
    let other = TcpListener::bind("[::1]:0").unwrap();
    let other_port = other.local_addr().unwrap().port().to_string();
    accept_forever(listed);
    accept_forever(other);
    let dir = tempfile::tempdir().unwrap();
    // The pair [::1]:listed only: the same address on another port works.
    let items = items_xml(&[("PortItem/remoteIP", "is", "::1"), ("PortItem/remotePort", "is", &listed_port)]);
    let ioc = write_ioc_tree(dir.path(), "block6", &items, "AND");
    let cg = TestCgroup::new("block6");
    let mut m = Monitor::start(&ioc, &cg, &["--block"]);

    let connect = trigger("connect");
    let eperm = format!("errno {}", libc::EPERM);
    let (_, said) = run(cg.command(&connect).args(["tcp", "::1", &listed_port]));
    assert_eq!(said, eperm, "TCP to the listed v6 pair is refused");
    let (_, said) = run(cg.command(&connect).args(["udp", "::1", &listed_port]));
    assert_eq!(said, eperm, "UDP to the listed v6 pair is refused");
    let (status, said) = run(cg.command(&connect).args(["tcp", "::1", &other_port]));
    assert!(status.success(), "another port of the address still works: {said}");
    let (status, said) = run(Command::new(&connect).args(["tcp", "::1", &listed_port]));
    assert!(status.success(), "a process outside the cgroup is unaffected: {said}");

    let action = m
        .wait_for(|v| v["type"] == "action" && v["action"] == "block" && v["outcome"] == "done")
        .expect("a block action");
    assert_eq!(action["remote"], format!("[::1]:{listed_port}").as_str());
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn a_dns_answer_from_an_ipv6_server_is_seen_with_the_asking_process() {
    if !bpf_or_skip("a_dns_answer_from_an_ipv6_server_is_seen_with_the_asking_process") {
        return;
    }
    let (server, responder) = dns_responder_v6();
    let name = format!("{}.ioc-test.example", unique_name("v6q"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "dns6", &[("DnsEntryItem/RecordName", "is", &name)]);
    let cg = TestCgroup::new("dns6");
    let mut m = Monitor::start(&ioc, &cg, &[]);

    let pid = resolve_in(&cg, &server, &name);
    responder.join().unwrap();

    let answer = m
        .wait_for(|v| {
            v["type"] == "detection" && v["ioc_id"] == "dns6" && v["object"]["addresses"] == serde_json::json!(["127.0.0.9"])
        })
        .expect("a detection for the answer");
    assert_eq!(answer["object"]["host"], name.as_str());
    assert_eq!(answer["object"]["pid"], pid);
    m.stop();
}
