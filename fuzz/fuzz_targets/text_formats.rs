//! Text formats read from the host: syslog lines, sudo/su messages, shell
//! histories, crontabs, unit files, passwd/group/shadow, hosts/resolv.conf,
//! os-release, TZif footers, lastlog, DHCP leases.
#![no_main]
use ioc_scan::collect::{dhcp, dns, logs, shell_history, system, task, user};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let clock = logs::LogClock { file_mtime: Some(1_700_000_000), local: false };
    for line in text.lines() {
        if let Some(l) = logs::parse_syslog_line(line, &clock) {
            let _ = logs::parse_sudo_message(&l.message);
            let _ = logs::parse_su_message(&l.message);
        }
        let _ = logs::parse_sudo_message(line);
        let _ = logs::parse_su_message(line);
    }
    for shell in ["bash", "zsh", "fish", "sh"] {
        let entries = shell_history::parse_history(data, shell);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.order, i as i64 + 1);
        }
    }
    let _ = task::parse_crontab(&text, "f", None);
    let _ = task::parse_crontab(&text, "f", Some("u"));
    let _ = task::parse_anacrontab(&text, "f");
    let _ = task::unit_settings(&text, "Timer");
    let _ = user::parse_passwd(&text);
    let _ = user::parse_group(&text);
    let shadow = user::parse_shadow(&text);
    assert!(!format!("{shadow:?}").contains("$6$") || text.lines().any(|l| l.split(':').next().is_some_and(|n| n.contains("$6$"))));
    let _ = user::lastlog_time(data, 3);
    let _ = dns::parse_hosts(&text, "h");
    let _ = dns::parse_resolv(&text, "r");
    let _ = system::parse_os_release(&text);
    let _ = system::meminfo_bytes(&text, "MemTotal");
    let _ = system::tz_abbreviations(data);
    let _ = dhcp::parse_dhclient(&text);
    let _ = dhcp::parse_networkd(&text, "eth0", 0);
});
