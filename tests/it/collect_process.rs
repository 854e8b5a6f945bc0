//! ProcessItem and PortItem on the live host: a process the test starts
//! under a unique name and a loopback listener it opens.

use crate::collect_util::{matches, observe};
use ioc_scan::collect::host::HostRoot;
use ioc_scan::collect::port::PortCollector;
use ioc_scan::collect::process::{read_process, ProcessCollector};
use std::io::Write;
use std::process::{Child, Command, Stdio};

/// A copy of /bin/sleep under a unique name, running with a crafted file as
/// its stdin; killed on drop.
struct Sleeper {
    child: Child,
    name: String,
    exe: std::path::PathBuf,
    input: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Sleeper {
    fn start(tag: &str) -> Sleeper {
        let dir = tempfile::tempdir().unwrap();
        // Short enough to be the whole `comm` (15 bytes).
        let name = format!("ioc{tag}{}", std::process::id() % 100_000);
        let exe = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let input = dir.path().join("handle-input.txt");
        std::fs::File::create(&input).unwrap().write_all(b"ioc-scan handle test\n").unwrap();
        let child = Command::new(&exe)
            .arg("300")
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it has exec'd (its exe is the copy).
        for _ in 0..200 {
            if read_process(&HostRoot::system(), child.id()).is_ok_and(|p| p.path.as_deref() == exe.to_str()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Sleeper {
            child,
            name,
            exe,
            input,
            _dir: dir,
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn process_observation_of_a_started_process() {
    let s = Sleeper::start("p");
    let (obs, stats) = observe(&ProcessCollector, &HostRoot::system());
    assert!(stats.error_count() < 5, "{:?}", stats.errors);
    let me = obs
        .iter()
        .find(|o| o.one("ProcessItem/pid") == s.child.id().to_string())
        .expect("the sleeper is observed");
    assert_eq!(me.one("ProcessItem/name"), s.name);
    assert_eq!(me.one("ProcessItem/path"), s.exe.to_str().unwrap());
    assert_eq!(me.one("ProcessItem/arguments"), format!("{} 300", s.exe.display()));
    assert_eq!(me.one("ProcessItem/parentpid"), std::process::id().to_string());
    assert_eq!(me.one("ProcessItem/Username"), username_of_me());
    let start: i64 = me.one("ProcessItem/startTime").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 600..=now + 1).contains(&start), "start {start} now {now}");
    // Handles: stdin is the crafted file, hashed on demand.
    assert!(me
        .get("ProcessItem/HandleList/Handle/Name")
        .contains(&s.input.to_str().unwrap().to_string()));
    assert!(me.get("ProcessItem/HandleList/Handle/FileDescriptor").contains(&"0".to_string()));
    let md5 = {
        use md5::Digest;
        format!("{:x}", md5::Md5::digest(b"ioc-scan handle test\n"))
    };
    assert!(me.get("ProcessItem/HandleList/Handle/Md5sum").contains(&md5));
}

fn username_of_me() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

#[test]
fn process_ioc_matches_only_the_started_process() {
    let s = Sleeper::start("m");
    let hits = matches(
        Box::new(ProcessCollector),
        &HostRoot::system(),
        &[
            ("ProcessItem/name", "is", "string", &s.name),
            ("ProcessItem/arguments", "ends-with", "string", " 300"),
        ],
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].kind, "process");
    assert_eq!(hits[0].fields["pid"], s.child.id());
    assert_eq!(hits[0].fields["name"], s.name.as_str());
    assert_eq!(hits[0].fields["path"], s.exe.to_str().unwrap());
}

#[test]
fn process_ioc_on_an_open_file_hash() {
    let s = Sleeper::start("h");
    let md5 = {
        use md5::Digest;
        format!("{:x}", md5::Md5::digest(b"ioc-scan handle test\n"))
    };
    let hits = matches(
        Box::new(ProcessCollector),
        &HostRoot::system(),
        &[
            ("ProcessItem/HandleList/Handle/Md5sum", "is", "md5", &md5),
            ("ProcessItem/name", "is", "string", &s.name),
        ],
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].fields["pid"], s.child.id());
}

#[test]
fn a_process_gone_before_its_turn_is_not_an_error() {
    let mut s = Sleeper::start("v");
    let pid = s.child.id();
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    assert!(read_process(&HostRoot::system(), pid).is_err());
    let (obs, _) = observe(&ProcessCollector, &HostRoot::system());
    assert!(!obs.iter().any(|o| o.one("ProcessItem/pid") == pid.to_string()));
}

#[test]
fn port_observation_of_a_loopback_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (obs, stats) = observe(&PortCollector, &HostRoot::system());
    assert!(stats.error_count() < 5, "{:?}", stats.errors);
    let mine = obs
        .iter()
        .find(|o| o.one("PortItem/localPort") == port.to_string() && o.one("PortItem/protocol") == "TCP")
        .expect("the listener is observed");
    assert_eq!(mine.one("PortItem/localIP"), "127.0.0.1");
    assert_eq!(mine.one("PortItem/state"), "LISTEN");
    assert_eq!(mine.one("PortItem/pid"), std::process::id().to_string());
    assert_eq!(mine.one("PortItem/isIPv6"), "false");
    assert_eq!(mine.one("PortItem/path"), std::env::current_exe().unwrap().to_str().unwrap());

    let hits = matches(
        Box::new(PortCollector),
        &HostRoot::system(),
        &[
            ("PortItem/localPort", "is", "int", &port.to_string()),
            ("PortItem/state", "is", "string", "LISTEN"),
            ("PortItem/localIP", "is", "IP", "127.0.0.1"),
        ],
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].kind, "port");
    assert_eq!(hits[0].fields["pid"], std::process::id());
    assert_eq!(hits[0].fields["local"], format!("127.0.0.1:{port}"));
    drop(listener);
}

#[test]
fn established_connection_has_both_ends() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let local_port = client.local_addr().unwrap().port();
    let hits = matches(
        Box::new(PortCollector),
        &HostRoot::system(),
        &[
            ("PortItem/remotePort", "is", "int", &port.to_string()),
            ("PortItem/localPort", "is", "int", &local_port.to_string()),
            ("PortItem/state", "is", "string", "ESTABLISHED"),
        ],
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].fields["remote"], format!("127.0.0.1:{port}"));
}
