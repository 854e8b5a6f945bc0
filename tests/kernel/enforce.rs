//! --kill and --block: what is refused, what is killed and when, and what
//! is left alone.

use crate::harness::*;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// Run `program marker [extra]` and return (pid, exit status).
fn run_marker(program: &std::path::Path, marker: &std::path::Path, extra: &[&str]) -> (u32, std::process::ExitStatus) {
    let mut child = Command::new(program).arg(marker).args(extra).spawn().unwrap();
    let pid = child.id();
    (pid, child.wait().unwrap())
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn kill_by_name_happens_before_the_first_instruction() {
    if !bpf_or_skip("kill_by_name_happens_before_the_first_instruction") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iock");
    let bin = marker_copy(dir.path(), &name);
    // Upper case in the IOC: names compare case-insensitively, in the kernel too.
    let ioc = write_ioc(dir.path(), "kill-name", &[("ProcessItem/name", "is", &name.to_uppercase())]);
    let cg = TestCgroup::new("killname");
    let mut m = Monitor::start(&ioc, &cg, &["--kill"]);

    let marker = dir.path().join("ran");
    let (pid, status) = run_marker(&bin, &marker, &[]);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the parent sees SIGKILL");
    assert!(!marker.exists(), "killed before its first action (writing the marker)");

    let action = m.wait_for(|v| v["type"] == "action" && v["pid"] == pid).expect("a kill action");
    assert_eq!(action["action"], "kill");
    assert_eq!(action["by"], "kernel");
    assert_eq!(action["outcome"], "done");
    m.wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "kill-name" && v["object"]["pid"] == pid)
        .expect("the detection");

    // Another program is left alone.
    let other = marker_copy(dir.path(), &unique_name("iocok"));
    let other_marker = dir.path().join("other-ran");
    let (_, status) = run_marker(&other, &other_marker, &[]);
    assert!(status.success());
    assert!(other_marker.exists());
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn kill_by_path_and_by_inode_spares_an_identical_copy() {
    if !bpf_or_skip("kill_by_path_and_by_inode_spares_an_identical_copy") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let by_path = marker_copy(dir.path(), &unique_name("iocp"));
    let by_inode = marker_copy(dir.path(), &unique_name("ioci"));
    let copy = marker_copy(dir.path(), &unique_name("iocc"));
    let link = dir.path().join("link-to-path-one");
    std::os::unix::fs::symlink(&by_path, &link).unwrap();
    let meta = std::fs::metadata(&by_inode).unwrap();
    let ioc = write_ioc(dir.path(), "kill-path", &[("ProcessItem/path", "is", by_path.to_str().unwrap())]);
    let cg = TestCgroup::new("killpath");
    let inode_arg = format!("{}:{}", meta.dev(), meta.ino());
    let mut m = Monitor::start(&ioc, &cg, &["--kill", "--kill-inode", &inode_arg]);

    for (program, what) in [
        (&by_path, "the listed path"),
        (&link, "a symlink to it (same inode)"),
        (&by_inode, "the --kill-inode file"),
    ] {
        let marker = dir.path().join(format!("ran-{}", program.file_name().unwrap().to_string_lossy()));
        let (pid, status) = run_marker(program, &marker, &[]);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{what} is killed");
        assert!(!marker.exists(), "{what}: killed before its first action");
        let action = m.wait_for(|v| v["type"] == "action" && v["pid"] == pid).expect("a kill action");
        assert_eq!(action["by"], "kernel");
        assert!(
            action["matched"].as_array().unwrap().contains(&serde_json::json!("inode")),
            "{what}: matched by inode: {action}"
        );
    }
    // Same bytes, other inode: not killed.
    let marker = dir.path().join("ran-copy");
    let (_, status) = run_marker(&copy, &marker, &[]);
    assert!(status.success(), "an identical copy at another inode runs");
    assert!(marker.exists());
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn user_space_kills_what_the_kernel_cannot_decide_through_a_pidfd() {
    if !bpf_or_skip("user_space_kills_what_the_kernel_cannot_decide_through_a_pidfd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iocu");
    let bin = marker_copy(dir.path(), &name);
    // AND of two process items: only the evaluator can decide it.
    let items = items_xml(&[("ProcessItem/name", "is", &name), ("ProcessItem/arguments", "contains", "linger")]);
    let ioc = write_ioc_tree(dir.path(), "kill-user", &items, "AND");
    let cg = TestCgroup::new("killuser");
    let mut m = Monitor::start(&ioc, &cg, &["--kill"]);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").unwrap().clone();
    assert_eq!(ready["kill"]["names"], serde_json::json!([]), "nothing for the kernel to decide");

    let marker = dir.path().join("ran");
    let (pid, status) = run_marker(&bin, &marker, &["linger"]);
    // Killed by user space, after the exec: whether it wrote its marker
    // first is a race, and not the point.
    assert_eq!(status.signal(), Some(libc::SIGKILL), "killed while lingering");
    let action = m.wait_for(|v| v["type"] == "action" && v["pid"] == pid).expect("a kill action");
    assert_eq!(action["by"], "user");
    assert_eq!(action["outcome"], "done");
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn never_kills_itself_and_says_so() {
    if !bpf_or_skip("never_kills_itself_and_says_so") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The monitor runs from a uniquely named copy: the IOC names it and no
    // other process on the host.
    let name = unique_name("iocself");
    let binary = dir.path().join(&name);
    std::fs::copy(env!("CARGO_BIN_EXE_ioc-scan"), &binary).unwrap();
    let ioc = write_ioc(dir.path(), "kill-self", &[("ProcessItem/name", "is", &name)]);
    let cg = TestCgroup::new("killself");
    let mut m = Monitor::start_binary(&binary, &ioc, &cg, &["--kill"]);
    let pid = m.pid();
    let action = m
        .wait_for(|v| v["type"] == "action" && v["pid"] == pid)
        .expect("an action about itself");
    assert_eq!(action["outcome"], "refused");
    assert!(action["reason"].as_str().unwrap().contains("ioc-scan itself"), "{action}");
    let (status, lines) = m.stop();
    assert_eq!(status.code(), Some(1), "still alive to exit normally, with a detection");
    assert!(lines.iter().any(|v| v["type"] == "summary"));
}

fn accept_forever(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn block_refuses_a_listed_address_only_inside_the_cgroup() {
    if !bpf_or_skip("block_refuses_a_listed_address_only_inside_the_cgroup") {
        return;
    }
    let listed = TcpListener::bind("127.0.0.2:0").unwrap();
    let listed_port = listed.local_addr().unwrap().port().to_string();
    let other = TcpListener::bind("127.0.0.3:0").unwrap();
    let other_port = other.local_addr().unwrap().port().to_string();
    accept_forever(listed);
    accept_forever(other);
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "block-ip", &[("PortItem/remoteIP", "is", "127.0.0.2")]);
    let cg = TestCgroup::new("block");
    let mut m = Monitor::start(&ioc, &cg, &["--block"]);

    let connect = trigger("connect");
    let mut inside = cg.command(&connect);
    inside.args(["tcp", "127.0.0.2", &listed_port]);
    let child = inside.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("errno {}", libc::EPERM),
        "refused inside the cgroup"
    );

    let (status, said) = run(cg.command(&connect).args(["tcp", "127.0.0.3", &other_port]));
    assert!(status.success(), "another address still works: {said}");
    let (status, said) = run(cg.command(&connect).args(["udp", "127.0.0.2", &listed_port]));
    assert_eq!(
        said,
        format!("errno {}", libc::EPERM),
        "UDP to the listed address is refused too ({status})"
    );
    let (status, said) = run(Command::new(&connect).args(["tcp", "127.0.0.2", &listed_port]));
    assert!(status.success(), "a process outside the cgroup is unaffected: {said}");

    let action = m
        .wait_for(|v| v["type"] == "action" && v["action"] == "block" && v["pid"] == pid)
        .expect("a block action");
    assert_eq!(action["outcome"], "done");
    assert_eq!(action["remote"], format!("127.0.0.2:{listed_port}").as_str());
    m.wait_for(|v| v["type"] == "detection" && v["ioc_id"] == "block-ip" && v["object"]["state"] == "BLOCKED")
        .expect("the refused attempt is a detection");
    m.stop();
}

#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn block_that_cannot_be_enforced_is_an_error_not_a_warning() {
    if !bpf_or_skip("block_that_cannot_be_enforced_is_an_error_not_a_warning") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "block-nowhere", &[("PortItem/remoteIP", "is", "127.0.0.2")]);
    // A directory that is not a cgroup: nothing can be attached to it.
    let out = Command::new(env!("CARGO_BIN_EXE_ioc-scan"))
        .args(["monitor", "--json", "--block", "--duration", "0", "--cgroup"])
        .arg(dir.path())
        .arg("--ioc")
        .arg(&ioc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing would be blocked"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"ready\""), "never says ready");
}

/// The block list's three kinds of entry (an address on any port, a port
/// on any address, an address with a port): each refuses what it names and
/// nothing else. The programs look up only the kinds the list holds.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn block_by_port_and_by_address_with_port_refuses_only_what_they_name() {
    if !bpf_or_skip("block_by_port_and_by_address_with_port_refuses_only_what_they_name") {
        return;
    }
    let listen = |ip: &str| {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port().to_string();
        accept_forever(l);
        port
    };
    let (port_listed, port_free) = (listen("127.0.0.6"), listen("127.0.0.6"));
    let (pair_listed, pair_other) = (listen("127.0.0.7"), listen("127.0.0.7"));
    let dir = tempfile::tempdir().unwrap();
    write_ioc(dir.path(), "block-port", &[("PortItem/remotePort", "is", &port_listed)]);
    let pair = items_xml(&[("PortItem/remoteIP", "is", "127.0.0.7"), ("PortItem/remotePort", "is", &pair_listed)]);
    write_ioc_tree(dir.path(), "block-pair", &pair, "AND");
    let cg = TestCgroup::new("blockkinds");
    let m = Monitor::start(dir.path(), &cg, &["--block"]);
    let ready = m.seen.iter().find(|v| v["type"] == "ready").unwrap();
    assert_eq!(ready["block"].as_array().map(Vec::len), Some(2), "{ready}");

    let connect = trigger("connect");
    let refused = format!("errno {}", libc::EPERM);
    for (ip, port, blocked) in [
        ("127.0.0.6", &port_listed, true),
        ("127.0.0.6", &port_free, false),
        ("127.0.0.7", &pair_listed, true),
        ("127.0.0.7", &pair_other, false),
    ] {
        let (status, said) = run(cg.command(&connect).args(["tcp", ip, port]));
        if blocked {
            assert_eq!(said, refused, "{ip}:{port} is listed ({status})");
        } else {
            assert!(status.success(), "{ip}:{port} is not listed: {said}");
        }
    }
    m.stop();
}

/// An address a listed domain resolved to is refused from then on: the
/// entry is added while the programs run, the first of its kind.
#[test]
#[ignore = "needs root and BPF: cargo xtask kernel-tests"]
fn block_refuses_the_address_a_listed_domain_resolved_to() {
    if !bpf_or_skip("block_refuses_the_address_a_listed_domain_resolved_to") {
        return;
    }
    let (server, responder) = dns_responder();
    let target = TcpListener::bind("127.0.0.9:0").unwrap();
    let port = target.local_addr().unwrap().port().to_string();
    accept_forever(target);
    let name = format!("{}.ioc-test.example", unique_name("b"));
    let dir = tempfile::tempdir().unwrap();
    let ioc = write_ioc(dir.path(), "block-dns", &[("DnsEntryItem/RecordName", "is", &name)]);
    let cg = TestCgroup::new("blockdns");
    let mut m = Monitor::start(&ioc, &cg, &["--block"]);

    let connect = trigger("connect");
    let (status, said) = run(cg.command(&connect).args(["tcp", "127.0.0.9", &port]));
    assert!(status.success(), "not blocked before the answer: {said}");
    let (status, said) = run(cg.command(trigger("resolve")).args([server.as_str(), name.as_str()]));
    assert!(status.success(), "resolve: {said}");
    responder.join().unwrap();
    let action = m
        .wait_for(|v| v["type"] == "action" && v["action"] == "block" && v["remote"] == "127.0.0.9")
        .expect("a block action for the answered address");
    assert_eq!(action["outcome"], "done", "{action}");
    let (status, said) = run(cg.command(&connect).args(["tcp", "127.0.0.9", &port]));
    assert_eq!(said, format!("errno {}", libc::EPERM), "refused after the answer ({status})");
    m.stop();
}
