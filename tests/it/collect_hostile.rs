//! Hostile hosts: what an unprivileged user (here the real `nobody`, who
//! plants his files himself through `runuser`) or a broken disk puts where
//! root's host collectors read: FIFOs, symlinks to root-only files,
//! /dev/zero, 10 GB sparse files, files that vanish, invalid UTF-8, 1 MB
//! lines. Every collection must finish (a watchdog turns a hang into a
//! failure; no speed is asserted) and read nothing outside what it means to
//! read.

use crate::collect_util::{matches, observe, FakeRoot, Snapshot};
use ioc_scan::collect::host::{
    all_collectors, CollectError, CollectStats, HostCollector, HostRoot,
};
use ioc_scan::collect::safe_read::Refusal;
use ioc_scan::collect::{shell_history::ShellHistoryCollector, task::TaskCollector};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// Only turns a hang into a failure (a collection takes well under a second).
const WATCHDOG: Duration = Duration::from_secs(60);

/// What a root-only file holds: must never appear in an observation.
const SECRET: &str = "ROOT_ONLY_SECRET_3f9c1";

/// `nobody`: the unprivileged user of these tests (ioc_eve in the fake
/// root's passwd has his uid).
const NOBODY: u32 = 65534;

/// Run `f` on its own thread; fail if it does not finish within the
/// watchdog (the thread of a hung collection is left behind).
fn within_watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after {WATCHDOG:?}: the scan hangs")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// Observe with `collector` under `root`, within the watchdog.
fn observe_bounded(
    collector: Box<dyn HostCollector>,
    root: HostRoot,
) -> (Vec<Snapshot>, CollectStats) {
    let what = collector.document();
    within_watchdog(what, move || observe(collector.as_ref(), &root))
}

fn leaks(obs: &[Snapshot], marker: &str) -> Vec<String> {
    obs.iter()
        .map(|o| format!("{o:?}"))
        .filter(|s| s.contains(marker))
        .collect()
}

fn refusals(stats: &CollectStats) -> Vec<(PathBuf, Refusal)> {
    stats
        .errors
        .iter()
        .filter_map(|e| match e {
            CollectError::Refused { path, reason } => Some((path.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

/// A fake host root where `ioc_eve` (uid of `nobody`) owns
/// /home/ioc_eve, plus a root-only file outside it holding [`SECRET`].
struct Host {
    root: FakeRoot,
    /// 0700 root directory holding `secret` (0600) and a tree of root-only
    /// files (`share/fish/fish_history`, `systemd/user/*.timer`).
    private: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        let root = FakeRoot::new();
        std::fs::set_permissions(root.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        root.write(
            "/etc/passwd",
            format!(
                "root:x:0:0:root:/root:/bin/bash\nioc_eve:x:{NOBODY}:{NOBODY}::/home/ioc_eve:/bin/bash\nioc_mallory:x:4301:4301::/home/ioc_mallory:/bin/bash\n"
            ),
        )
        .write("/etc/group", "root:x:0:\n");
        std::fs::create_dir_all(root.path("/home/ioc_eve")).unwrap();
        std::fs::set_permissions(root.path("/home"), PermissionsExt::from_mode(0o755)).unwrap();
        root.own("/home/ioc_eve", NOBODY, NOBODY);
        std::fs::create_dir_all(root.path("/root")).unwrap();
        let private = tempfile::tempdir().unwrap();
        std::fs::set_permissions(private.path(), PermissionsExt::from_mode(0o755)).unwrap();
        let p = private.path();
        std::fs::write(p.join("secret"), format!("{SECRET}\n")).unwrap();
        std::fs::create_dir_all(p.join("share/fish")).unwrap();
        std::fs::write(
            p.join("share/fish/fish_history"),
            format!("- cmd: {SECRET}\n  when: 1700000000\n"),
        )
        .unwrap();
        std::fs::create_dir_all(p.join("systemd/user")).unwrap();
        std::fs::write(
            p.join("systemd/user/root-only.timer"),
            format!("[Timer]\nOnCalendar={SECRET}\n"),
        )
        .unwrap();
        // Root-only: nobody may read none of it (he may still name it).
        for f in [
            "secret",
            "share/fish/fish_history",
            "systemd/user/root-only.timer",
        ] {
            std::fs::set_permissions(p.join(f), PermissionsExt::from_mode(0o600)).unwrap();
        }
        Host { root, private }
    }

    fn home(&self) -> PathBuf {
        self.root.path("/home/ioc_eve")
    }

    fn secret(&self) -> PathBuf {
        self.private.path().join("secret")
    }

    /// Run `script` as `nobody` in his home (he plants his own files).
    fn as_nobody(&self, script: &str) {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--", "sh", "-c", script])
            .current_dir(self.home())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

#[test]
fn fifo_as_bash_history_does_not_hang_the_scan() {
    let h = Host::new();
    h.as_nobody("mkfifo .bash_history && printf 'ls\\nnc -l 4444\\n' > .zsh_history");
    let (obs, stats) = observe_bounded(Box::new(ShellHistoryCollector), h.root.root());
    // His real history is still read.
    assert!(
        obs.iter()
            .any(|o| o.get("ShellHistoryItem/Command") == ["nc -l 4444"]),
        "{obs:?}"
    );
    let refused = refusals(&stats);
    assert!(
        refused
            .iter()
            .any(|(p, r)| p.ends_with(".bash_history") && *r == Refusal::NotRegular("FIFO")),
        "{:?}",
        stats.errors
    );
}

#[test]
fn symlinked_bash_history_does_not_leak_root_only_content() {
    let h = Host::new();
    // The file itself, and a directory on the way (fish's history).
    h.as_nobody(&format!(
        "ln -s {} .bash_history && ln -s {} .local",
        h.secret().display(),
        h.private.path().display()
    ));
    let (obs, stats) = observe_bounded(Box::new(ShellHistoryCollector), h.root.root());
    assert!(
        leaks(&obs, SECRET).is_empty(),
        "root-only content reported: {:?}",
        leaks(&obs, SECRET)
    );
    let refused = refusals(&stats);
    for f in [".bash_history", ".local/share/fish/fish_history"] {
        assert!(
            refused
                .iter()
                .any(|(p, r)| p.ends_with(f) && *r == Refusal::Symlink),
            "{f}: {:?}",
            stats.errors
        );
    }
}

#[test]
fn file_owned_by_another_user_in_home_is_not_that_users() {
    let h = Host::new();
    // Another user's file (eve made her home writable to him), and a hard
    // link to a root-owned file.
    h.root
        .write("/home/ioc_eve/.bash_history", "mallory-was-here\n");
    h.root.own("/home/ioc_eve/.bash_history", 4301, 4301);
    std::fs::hard_link(h.secret(), h.home().join(".zsh_history")).unwrap();
    let (obs, stats) = observe_bounded(Box::new(ShellHistoryCollector), h.root.root());
    assert!(
        !obs.iter()
            .any(|o| o.get("ShellHistoryItem/UserName") == ["ioc_eve"]),
        "another user's file reported as ioc_eve's: {obs:?}"
    );
    assert!(leaks(&obs, SECRET).is_empty());
    let owners: Vec<_> = refusals(&stats)
        .into_iter()
        .filter_map(|(p, r)| match r {
            Refusal::Owner { owner, expected } => {
                Some((p.file_name().unwrap().to_owned(), owner, expected))
            }
            _ => None,
        })
        .collect();
    assert!(
        owners.contains(&(".bash_history".into(), 4301, NOBODY)),
        "{:?}",
        stats.errors
    );
    assert!(
        owners.contains(&(".zsh_history".into(), 0, NOBODY)),
        "{:?}",
        stats.errors
    );
}

/// A host whose ioc_eve has the crontab `line` (written with crontab(1):
/// owned by him in root's spool) and whose /dev is the real one.
fn crontab_host(line: &str) -> Host {
    let h = Host::new();
    h.root
        .write("/var/spool/cron/crontabs/ioc_eve", format!("{line}\n"));
    h.root
        .own("/var/spool/cron/crontabs/ioc_eve", NOBODY, NOBODY);
    std::os::unix::fs::symlink("/dev", h.root.path("/dev")).unwrap();
    h
}

/// Match a TaskItem IOC naming the crontab's command and a digest: the
/// digest is computed through the Pending handshake.
fn task_hits(h: &Host, command: &str, md5: &str) -> Vec<ioc_scan::eval::ObjectRef> {
    let root = h.root.root();
    let (command, md5) = (command.to_string(), md5.to_string());
    within_watchdog("TaskItem", move || {
        matches(
            Box::new(TaskCollector),
            &root,
            &[
                ("TaskItem/crontabCommand", "contains", "string", &command),
                ("TaskItem/md5sum", "is", "md5", &md5),
            ],
        )
    })
}

#[test]
fn crontab_command_dev_zero_is_not_hashed_forever() {
    let h = crontab_host("* * * * * /dev/zero");
    assert!(task_hits(&h, "/dev/zero", &md5_hex(b"")).is_empty());
}

#[test]
fn crontab_command_fifo_does_not_hang_the_scan() {
    let h = crontab_host("* * * * * /home/ioc_eve/pipe");
    h.as_nobody("mkfifo pipe");
    assert!(task_hits(&h, "/home/ioc_eve/pipe", &md5_hex(b"")).is_empty());
}

#[test]
fn users_task_cannot_have_a_root_only_file_hashed() {
    let h = crontab_host("* * * * * /home/ioc_eve/link --x");
    h.as_nobody(&format!("ln -s {} link", h.secret().display()));
    let secret_md5 = md5_hex(format!("{SECRET}\n").as_bytes());
    assert!(
        task_hits(&h, "/home/ioc_eve/link", &secret_md5).is_empty(),
        "the digest of a root-only file was computed for an unprivileged user's task"
    );
    // His own program is hashed.
    h.as_nobody("printf '#!/bin/sh\\n' > mine && chmod 700 mine");
    h.root.write(
        "/var/spool/cron/crontabs/ioc_eve",
        "* * * * * /home/ioc_eve/mine\n",
    );
    h.root
        .own("/var/spool/cron/crontabs/ioc_eve", NOBODY, NOBODY);
    assert_eq!(
        task_hits(&h, "/home/ioc_eve/mine", &md5_hex(b"#!/bin/sh\n")).len(),
        1
    );
}

#[test]
fn system_crontab_line_run_as_a_user_cannot_have_a_root_only_file_hashed() {
    let h = Host::new();
    std::os::unix::fs::symlink("/dev", h.root.path("/dev")).unwrap();
    h.root.write("/etc/crontab", "* * * * * ioc_eve /home/ioc_eve/job\n");
    // Root wrote the line; eve owns the path it names.
    h.as_nobody(&format!("ln -s {} job", h.secret().display()));
    let secret_md5 = md5_hex(format!("{SECRET}\n").as_bytes());
    assert!(task_hits(&h, "/home/ioc_eve/job", &secret_md5).is_empty());
}

#[test]
fn crontab_of_another_owner_is_not_that_users() {
    let h = crontab_host("* * * * * /tmp/not-eves");
    h.root.own("/var/spool/cron/crontabs/ioc_eve", 4301, 4301);
    let (obs, stats) = observe_bounded(Box::new(TaskCollector), h.root.root());
    assert!(
        !obs.iter()
            .any(|o| o.get("TaskItem/userName") == ["ioc_eve"]),
        "{obs:?}"
    );
    assert!(refusals(&stats)
        .iter()
        .any(|(_, r)| matches!(r, Refusal::Owner { owner: 4301, .. })));
}

#[test]
fn symlinked_user_unit_dir_does_not_leak_roots_units() {
    let h = Host::new();
    h.as_nobody(&format!("ln -s {} .config", h.private.path().display()));
    let (obs, stats) = observe_bounded(Box::new(TaskCollector), h.root.root());
    assert!(leaks(&obs, SECRET).is_empty(), "{:?}", leaks(&obs, SECRET));
    assert!(
        !obs.iter()
            .any(|o| o.get("TaskItem/Name") == ["root-only.timer"]),
        "{obs:?}"
    );
    assert!(
        refusals(&stats).iter().any(|(_, r)| *r == Refusal::Symlink),
        "{:?}",
        stats.errors
    );
    // A symlinked unit inside a real unit directory: the same.
    h.as_nobody(&format!(
        "rm .config && mkdir -p .config/systemd/user && ln -s {}/systemd/user/root-only.timer .config/systemd/user/x.timer",
        h.private.path().display()
    ));
    let (obs, _) = observe_bounded(Box::new(TaskCollector), h.root.root());
    assert!(leaks(&obs, SECRET).is_empty(), "{:?}", leaks(&obs, SECRET));
}

#[test]
fn thousands_of_sparse_user_units_do_not_hold_the_scan() {
    let h = Host::new();
    // 3000 timers of 1 GB each (sparse: they cost him nothing).
    h.as_nobody(
        "mkdir -p .config/systemd/user && cd .config/systemd/user && \
         i=0; while [ $i -lt 3000 ]; do truncate -s 1G t$i.timer; i=$((i+1)); done",
    );
    let (_, stats) = observe_bounded(Box::new(TaskCollector), h.root.root());
    let said = format!("{:?}", stats.errors);
    assert!(said.contains("of this user's units read already"), "{said}");
}

/// A process of `nobody` holding a 10 GB (sparse) file open: an IOC on the
/// digests of open files must not hash it to its end.
#[test]
fn process_holding_a_10_gb_file_is_not_hashed_past_the_limit() {
    use ioc_scan::collect::process::ProcessCollector;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let name = format!("iochuge{}", std::process::id() % 100_000);
    let exe = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let big = dir.path().join("big");
    std::fs::File::create(&big).unwrap().set_len(10 << 30).unwrap();
    std::os::unix::fs::chown(&big, Some(NOBODY), Some(NOBODY)).unwrap();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(&exe)
            .arg("300")
            .stdin(std::fs::File::open(&big).unwrap())
            .uid(NOBODY)
            .gid(NOBODY)
            .spawn()
            .unwrap()
    };
    let root = HostRoot::system();
    for _ in 0..500 {
        let running = ioc_scan::collect::process::read_process(&root, child.id());
        if running.is_ok_and(|p| p.path.as_deref() == exe.to_str()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // It is seen (so the digest below is asked of it).
    let seen = matches(Box::new(ProcessCollector), &root, &[("ProcessItem/name", "is", "string", &name)]);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let md5 = md5_hex(b"");
    let hits = within_watchdog("ProcessItem", move || {
        matches(
            Box::new(ProcessCollector),
            &root,
            &[
                ("ProcessItem/HandleList/Handle/Md5sum", "is", "md5", &md5),
                ("ProcessItem/name", "is", "string", &name),
            ],
        )
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(hits.is_empty(), "{hits:?}");
}

/// What a hostile host puts at every path a collector reads.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    Fifo,
    DevZero,
    /// 10 GB, sparse.
    Sparse,
    /// A dangling symlink: the file vanished.
    Vanished,
    /// Invalid UTF-8 and a 1 MB line.
    BadText,
    /// A symlink to a root-only file (where a user writes only).
    Secret,
}

/// Files the host collectors read, by host path (under the root's /proc
/// for the proc ones).
const SYSTEM_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/os-release",
    "/etc/timezone",
    "/etc/localtime",
    "/etc/crontab",
    "/etc/anacrontab",
    "/etc/cron.d/job",
    "/etc/cron.daily/script",
    "/etc/systemd/system/x.timer",
    "/etc/systemd/system/x.service",
    "/var/log/lastlog",
    "/var/log/wtmp",
    "/var/log/btmp",
    "/var/run/utmp",
    "/var/log/syslog",
    "/var/log/auth.log",
    "/var/log/messages",
    "/var/lib/dhcp/dhclient.eth0.leases",
    "/run/systemd/netif/leases/2",
    "/proc/net/tcp",
    "/proc/net/tcp6",
    "/proc/net/udp",
    "/proc/net/unix",
    "/proc/net/arp",
    "/proc/net/route",
    "/proc/net/ipv6_route",
    "/proc/modules",
    "/proc/stat",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/uptime",
    "/proc/mounts",
    "/proc/self/mountinfo",
    "/proc/sys/kernel/osrelease",
    "/proc/4242/stat",
    "/proc/4242/status",
    "/proc/4242/cmdline",
    "/proc/4242/environ",
    "/proc/4242/maps",
    "/sys/class/net/eth0/address",
    "/sys/class/net/eth0/ifindex",
    "/sys/module/evil/initstate",
];

/// Files in ioc_eve's own places.
const USER_FILES: &[&str] = &[
    "/home/ioc_eve/.bash_history",
    "/home/ioc_eve/.local/share/fish/fish_history",
    "/home/ioc_eve/.config/systemd/user/x.timer",
    "/home/ioc_eve/.config/systemd/user/x.service",
];

fn plant(path: &Path, kind: Hostile, secret: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    match kind {
        Hostile::Fifo => rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap(),
        Hostile::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Hostile::Sparse => std::fs::File::create(path)
            .unwrap()
            .set_len(10 << 30)
            .unwrap(),
        Hostile::Vanished => {
            std::os::unix::fs::symlink("/nonexistent/ioc-scan-vanished", path).unwrap()
        }
        Hostile::BadText => {
            let mut b = b"ok line\n\xff\xfe\xc3\x28 invalid\n".to_vec();
            b.extend(std::iter::repeat_n(b'A', 1 << 20));
            b.extend(b"\n: 1:0;\xff\n- cmd: \xc3\n[Timer]\nOnCalendar=\xff\n");
            std::fs::write(path, b).unwrap();
        }
        Hostile::Secret => std::os::unix::fs::symlink(secret, path).unwrap(),
    }
}

/// A host where every path a collector reads is `kind` (the user's own
/// files also, and they are his).
fn hostile_root(kind: Hostile) -> Host {
    let h = Host::new();
    for f in SYSTEM_FILES {
        // Root's own places hold what a broken disk or package may hold; a
        // planted symlink there needs root already (their symlinks are
        // followed by design).
        let kind = if matches!(kind, Hostile::Secret) {
            Hostile::BadText
        } else {
            kind
        };
        // /etc/passwd stays readable: the user files hang off it.
        if *f == "/etc/passwd" && !matches!(kind, Hostile::BadText) {
            continue;
        }
        plant(&h.root.path(f), kind, &h.secret());
    }
    for f in USER_FILES {
        let p = h.root.path(f);
        plant(&p, kind, &h.secret());
        let _ = std::os::unix::fs::lchown(&p, Some(NOBODY), Some(NOBODY));
    }
    Command::new("chown")
        .args(["-R", "-h", &format!("{NOBODY}:{NOBODY}")])
        .arg(h.home())
        .status()
        .unwrap();
    h
}

/// Run `collector` on every kind of hostile host: it must finish and
/// report nothing of the root-only file.
fn hostile_host(make: fn() -> Box<dyn HostCollector>) {
    for kind in [
        Hostile::Fifo,
        Hostile::DevZero,
        Hostile::Sparse,
        Hostile::Vanished,
        Hostile::BadText,
        Hostile::Secret,
    ] {
        let h = hostile_root(kind);
        let collector = make();
        let what = format!("{} on {kind:?}", collector.document());
        let root = h.root.root();
        let (obs, _stats) = within_watchdog(&what, move || observe(collector.as_ref(), &root));
        assert!(
            leaks(&obs, SECRET).is_empty(),
            "{what}: {:?}",
            leaks(&obs, SECRET)
        );
    }
}

macro_rules! hostile_host_tests {
    ($($name:ident: $make:expr;)*) => {
        $(
            #[test]
            fn $name() {
                hostile_host(|| Box::new($make));
            }
        )*
        /// Every collector has its hostile host test.
        #[test]
        fn every_collector_has_a_hostile_host_test() {
            let tested: Vec<&str> = vec![$( HostCollector::document(&$make), )*];
            for c in all_collectors() {
                assert!(tested.contains(&c.document()), "no hostile host test for {}", c.document());
            }
        }
    };
}

use ioc_scan::collect::{
    arp, dns, login, logs, module, port, process, route, system, user, volume,
};

hostile_host_tests! {
    hostile_host_process: process::ProcessCollector;
    hostile_host_port: port::PortCollector;
    hostile_host_arp: arp::ArpCollector;
    hostile_host_route: route::RouteCollector;
    hostile_host_system: system::SystemCollector;
    hostile_host_agent: system::AgentCollector;
    hostile_host_user: user::UserCollector;
    hostile_host_group: user::GroupCollector;
    hostile_host_dns: dns::DnsCollector;
    hostile_host_module: module::ModuleCollector;
    hostile_host_volume: volume::VolumeCollector;
    hostile_host_disk: volume::DiskCollector;
    hostile_host_login: login::LoginCollector;
    hostile_host_sudo_log: logs::SudoLogCollector;
    hostile_host_syslog: logs::SyslogCollector::syslog();
    hostile_host_log: logs::SyslogCollector::log();
    hostile_host_shell_history: ShellHistoryCollector;
    hostile_host_task: TaskCollector;
}
