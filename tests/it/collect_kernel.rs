//! ArpEntryItem, RouteEntryItem, VolumeItem, DiskItem, ModuleItem,
//! SystemInfoItem and AgentInfo from crafted /proc and /sys files, plus the
//! live host for what only it can answer.

use crate::collect_util::{matches, observe, FakeRoot};
use ioc_scan::collect::arp::ArpCollector;
use ioc_scan::collect::host::HostRoot;
use ioc_scan::collect::module::ModuleCollector;
use ioc_scan::collect::route::RouteCollector;
use ioc_scan::collect::system::{AgentCollector, SystemCollector};
use ioc_scan::collect::volume::{DiskCollector, VolumeCollector};

#[test]
fn arp_entries() {
    let r = FakeRoot::new();
    r.write(
        "/proc/net/arp",
        "IP address       HW type     Flags       HW address            Mask     Device\n\
         192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n\
         192.0.2.66       0x1         0x6         de:ad:be:ef:00:66     *        eth1\n",
    );
    let (obs, stats) = observe(&ArpCollector, &r.root());
    assert_eq!(stats.error_count(), 0);
    assert_eq!(obs.len(), 2);
    assert_eq!(obs[1].one("ArpEntryItem/PhysicalAddress"), "de:ad:be:ef:00:66");
    assert_eq!(obs[1].one("ArpEntryItem/CacheType"), "static");
    assert_eq!(obs[1].one("ArpEntryItem/InterfaceType"), "Ethernet");
    let hits = matches(
        Box::new(ArpCollector),
        &r.root(),
        &[
            ("ArpEntryItem/PhysicalAddress", "is", "string", "de:ad:be:ef:00:66"),
            ("ArpEntryItem/Interface", "is", "string", "eth1"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "arp");
    assert_eq!(hits[0].fields["ip"], "192.0.2.66");
}

#[test]
fn routes_v4_and_v6() {
    let r = FakeRoot::new();
    r.write(
        "/proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
         tun9\t0071000A\t4200000A\t0003\t0\t0\t5\t00FFFFFF\t1400\t0\t0\n",
    )
    .write("/proc/net/ipv6_route", "20010db8000000000000000000000000 20 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000064 00000001 00000000 00000003     tun9\n");
    let (obs, stats) = observe(&RouteCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    assert_eq!(obs.len(), 3);
    assert_eq!(obs[1].one("RouteEntryItem/Destination"), "10.0.113.0");
    assert_eq!(obs[1].one("RouteEntryItem/Netmask"), "255.255.255.0");
    assert_eq!(obs[1].one("RouteEntryItem/Gateway"), "10.0.0.66");
    assert_eq!(obs[1].one("RouteEntryItem/MTU"), "1400");
    assert_eq!(obs[1].one("RouteEntryItem/Flags"), "UG");
    assert_eq!(obs[2].one("RouteEntryItem/Destination"), "2001:db8::");
    assert_eq!(obs[2].one("RouteEntryItem/Gateway"), "fe80::1");
    let hits = matches(
        Box::new(RouteCollector),
        &r.root(),
        &[("RouteEntryItem/Gateway", "is", "IP", "10.0.0.66")],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "route");
    assert_eq!(hits[0].fields["destination"], "10.0.113.0/24");
}

#[test]
fn volumes_and_disks() {
    let r = FakeRoot::new();
    r.write(
        "/proc/self/mountinfo",
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
         40 27 8:1 / /mnt/ioc\\040usb ro,nosuid - vfat /dev/sdz1 ro\n\
         41 27 0:50 / /mnt/share rw - nfs4 files.ioc-test.example:/export rw\n",
    )
    .write("/sys/devices/pci0000:00/usb1/1-1/host9/block/sdz/size", "2048\n")
    .write("/sys/devices/pci0000:00/usb1/1-1/host9/block/sdz/removable", "1\n")
    .write("/sys/devices/pci0000:00/usb1/1-1/host9/block/sdz/sdz1/partition", "1\n")
    .write("/sys/devices/pci0000:00/usb1/1-1/host9/block/sdz/sdz1/start", "63\n")
    .write("/sys/devices/pci0000:00/usb1/1-1/host9/block/sdz/sdz1/size", "1000\n")
    .write("/sys/devices/pci0000:00/usb1/1-1/host9/block/sdz/sdz1/dev", "8:1\n")
    .write("/run/udev/data/b8:1", "E:ID_PART_ENTRY_TYPE=0xc\n");
    let base = r.dir.path();
    std::fs::create_dir_all(base.join("sys/block")).unwrap();
    std::os::unix::fs::symlink("../devices/pci0000:00/usb1/1-1/host9/block/sdz", base.join("sys/block/sdz")).unwrap();
    std::fs::create_dir_all(base.join("sys/class/block")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/usb1/1-1/host9/block/sdz/sdz1",
        base.join("sys/class/block/sdz1"),
    )
    .unwrap();

    let (vols, stats) = observe(&VolumeCollector, &r.root());
    assert_eq!(stats.error_count(), 0, "{:?}", stats.errors);
    assert_eq!(vols.len(), 3);
    let usb = &vols[1];
    assert_eq!(usb.one("VolumeItem/MountPoint"), "/mnt/ioc usb");
    assert_eq!(usb.one("VolumeItem/Flags/ReadOnly"), "true");
    assert_eq!(usb.one("VolumeItem/Flags/Removable"), "true");
    assert_eq!(usb.one("VolumeItem/FileSystemName"), "vfat");
    assert_eq!(vols[2].one("VolumeItem/RemoteAddress"), "files.ioc-test.example");
    assert_eq!(vols[2].one("VolumeItem/RemoteFS"), "true");
    let hits = matches(
        Box::new(VolumeCollector),
        &r.root(),
        &[
            ("VolumeItem/Flags/Removable", "is", "bool", "true"),
            ("VolumeItem/DevicePath", "is", "string", "/dev/sdz1"),
        ],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "volume");

    let (disks, _) = observe(&DiskCollector, &r.root());
    assert_eq!(disks.len(), 1);
    let d = &disks[0];
    assert_eq!(d.one("DiskItem/DiskName"), "sdz");
    assert_eq!(d.one("DiskItem/DiskSize"), "1048576");
    assert_eq!(d.one("DiskItem/DiskConnection"), "usb");
    assert_eq!(d.one("DiskItem/Type"), "removable");
    assert_eq!(d.one("DiskItem/PartitionList/Partition/PartitionOffset"), "32256");
    assert_eq!(d.one("DiskItem/PartitionList/Partition/PartitionLength"), "512000");
    assert_eq!(d.one("DiskItem/PartitionList/Partition/PartitionType"), "0xc");
    let hits = matches(
        Box::new(DiskCollector),
        &r.root(),
        &[("DiskItem/DiskConnection", "is", "string", "usb")],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "disk");
}

#[test]
fn kernel_modules_loaded_hidden_and_hashed() {
    let r = FakeRoot::new();
    let ko = b"not really an ELF module";
    r.write(
        "/proc/modules",
        "ioc_evilmod 16384 1 ioc_user, Live 0xffffffffc0a00000 (OE)\nioc_user 8192 0 - Live 0xffffffffc0b00000\n",
    )
    .write("/proc/sys/kernel/osrelease", "6.1.0-ioc\n")
    .write("/sys/module/ioc_evilmod/initstate", "live\n")
    .write("/sys/module/ioc_evilmod/taint", "OE\n")
    .write("/sys/module/ioc_evilmod/srcversion", "ABCDEF0123456789\n")
    .write("/sys/module/ioc_evilmod/parameters/hide_pid", "0\n")
    .write("/sys/module/ioc_hidden/initstate", "live\n")
    .write("/lib/modules/6.1.0-ioc/modules.dep", "extra/ioc-evilmod.ko: kernel/ioc_user.ko\n")
    .write("/lib/modules/6.1.0-ioc/extra/ioc-evilmod.ko", ko);
    let (obs, _) = observe(&ModuleCollector, &r.root());
    assert_eq!(obs.len(), 3);
    let evil = obs.iter().find(|o| o.get("ModuleItem/Module") == ["ioc_evilmod"]).unwrap();
    assert_eq!(evil.one("ModuleItem/Size"), "16384");
    assert_eq!(evil.one("ModuleItem/Status"), "Live");
    assert_eq!(evil.one("ModuleItem/Address"), "0xffffffffc0a00000");
    assert_eq!(evil.get("ModuleItem/UsedByList/Module"), ["ioc_user"]);
    assert_eq!(evil.get("ModuleItem/DependsList/Depends/Module"), ["ioc_user"]);
    assert_eq!(evil.get("ModuleItem/ParmList/Parm/Name"), ["hide_pid"]);
    assert_eq!(evil.one("ModuleItem/Intree"), "false");
    assert_eq!(evil.one("ModuleItem/SrcVersion"), "ABCDEF0123456789");
    assert_eq!(evil.one("ModuleItem/Filename"), "/lib/modules/6.1.0-ioc/extra/ioc-evilmod.ko");
    let hidden = obs.iter().find(|o| o.get("ModuleItem/Module") == ["ioc_hidden"]).unwrap();
    assert_eq!(hidden.one("ModuleItem/Status"), "hidden");
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(ko))
    };
    let hits = matches(
        Box::new(ModuleCollector),
        &r.root(),
        &[("ModuleItem/Sha256sum", "is", "sha256", &sha)],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "module");
    assert_eq!(hits[0].fields["name"], "ioc_evilmod");
}

#[test]
fn a_loaded_modules_signature_names_signer_key_and_algorithm() {
    let ko = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/modules/signed.ko")).unwrap();
    let r = FakeRoot::new();
    r.write("/proc/modules", "ioc_signed 8192 0 - Live 0xffffffffc0c00000\nioc_plain 8192 0 - Live 0xffffffffc0d00000\n")
        .write("/proc/sys/kernel/osrelease", "6.1.0-ioc\n")
        .write("/lib/modules/6.1.0-ioc/modules.dep", "extra/ioc_signed.ko:\nextra/ioc_plain.ko:\n")
        .write("/lib/modules/6.1.0-ioc/extra/ioc_signed.ko", &ko)
        .write("/lib/modules/6.1.0-ioc/extra/ioc_plain.ko", b"unsigned module");
    let (obs, stats) = observe(&ModuleCollector, &r.root());
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    let signed = obs.iter().find(|o| o.get("ModuleItem/Module") == ["ioc_signed"]).unwrap();
    assert_eq!(signed.one("ModuleItem/Signer"), "ioc-scan test module signing key");
    assert_eq!(signed.one("ModuleItem/SigKey"), "1C:0F:FE:E5");
    assert_eq!(signed.one("ModuleItem/SigHashAlgorithm"), "sha256");
    assert!(signed.one("ModuleItem/Signat").starts_with("11:E6:65:81"));
    let plain = obs.iter().find(|o| o.get("ModuleItem/Module") == ["ioc_plain"]).unwrap();
    assert!(plain.get("ModuleItem/Signer").is_empty());
    // An IOC for modules signed by anyone but the distribution's key.
    let hits = matches(
        Box::new(ModuleCollector),
        &r.root(),
        &[("ModuleItem/Signer", "contains", "string", "ioc-scan test")],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].fields["name"], "ioc_signed");
}

#[test]
fn shared_objects_mapped_by_this_process() {
    // The test binary maps libc: find it through the live /proc.
    let root = HostRoot::system();
    let (obs, _) = observe(&ModuleCollector, &root);
    let libc = obs
        .iter()
        .find(|o| o.one("ModuleItem/Module").starts_with("libc.so") && o.object.fields["pids"].as_array().is_some_and(|p| !p.is_empty()))
        .expect("libc is mapped by some process");
    assert!(libc.one("ModuleItem/Filename").ends_with(&libc.one("ModuleItem/Module")));
    assert_eq!(libc.one("ModuleItem/Status"), "mapped");
}

#[test]
fn system_info_from_a_crafted_root() {
    let r = FakeRoot::new();
    r.write("/proc/sys/kernel/hostname", "ioc-test-host\n")
        .write("/proc/sys/kernel/domainname", "(none)\n")
        .write("/proc/sys/kernel/osrelease", "6.1.0-ioc\n")
        .write("/proc/sys/kernel/arch", "x86_64\n")
        .write(
            "/etc/os-release",
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .write(
            "/proc/meminfo",
            "MemTotal:       2048 kB\nMemFree:        1024 kB\nMemAvailable:   1536 kB\n",
        )
        .write("/proc/uptime", "12345.67 100.00\n")
        .write(
            "/proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu hypervisor\n",
        )
        .write("/etc/timezone", "Europe/Berlin\n")
        .write("/etc/localtime", b"TZif2\0\0\0\nCET-1CEST,M3.5.0,M10.5.0/3\n")
        .write("/sys/class/net/eth9/address", "02:00:00:00:00:99\n");
    let (obs, stats) = observe(&SystemCollector, &r.root());
    assert_eq!(obs.len(), 1);
    let s = &obs[0];
    assert_eq!(s.one("SystemInfoItem/hostname"), "ioc-test-host");
    assert!(s.get("SystemInfoItem/domain").is_empty(), "(none) is no domain");
    assert_eq!(s.one("SystemInfoItem/kernelVersion"), "6.1.0-ioc");
    assert_eq!(s.one("SystemInfoItem/OS"), "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(s.one("SystemInfoItem/productName"), "Debian GNU/Linux");
    assert_eq!(s.one("SystemInfoItem/OSbitness"), "64-bit");
    assert_eq!(s.one("SystemInfoItem/totalphysical"), "2097152");
    assert_eq!(s.one("SystemInfoItem/availphysical"), "1572864");
    assert_eq!(s.one("SystemInfoItem/uptime"), "12345");
    assert_eq!(s.one("SystemInfoItem/processor"), "Test CPU");
    assert_eq!(s.one("SystemInfoItem/timezone"), "Europe/Berlin");
    assert_eq!(s.one("SystemInfoItem/timezoneStandard"), "CET");
    assert_eq!(s.one("SystemInfoItem/timezoneDST"), "CEST");
    assert_eq!(s.one("SystemInfoItem/procConfigInfo/vmGuest"), "true");
    assert_eq!(s.get("SystemInfoItem/MAC"), ["02:00:00:00:00:99"]);
    assert!(stats
        .errors
        .iter()
        .any(|e| e.to_string().contains("only readable on the live host")));
    let hits = matches(
        Box::new(SystemCollector),
        &r.root(),
        &[("SystemInfoItem/hostname", "is", "string", "ioc-test-host")],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "system");
    assert!(matches(
        Box::new(SystemCollector),
        &r.root(),
        &[("SystemInfoItem/hostname", "is", "string", "other-host")]
    )
    .is_empty());
}

#[test]
fn dhcp_leases_of_dhclient_and_networkd_name_their_interfaces() {
    let r = FakeRoot::new();
    r.write("/sys/class/net/eth0/address", "02:00:00:00:00:01\n")
        .write("/sys/class/net/eth0/ifindex", "2\n")
        .write("/sys/class/net/eth1/address", "02:00:00:00:00:02\n")
        .write("/sys/class/net/eth1/ifindex", "3\n")
        .write(
            "/var/lib/dhcp/dhclient.eth0.leases",
            "lease {\n  interface \"eth0\";\n  option dhcp-server-identifier 10.9.0.1;\n  option dhcp-lease-time 7200;\n  expire 4 2026/11/26 10:00:00;\n}\n",
        )
        .write(
            "/run/systemd/netif/leases/3",
            "# This is private data. Do not parse.\nADDRESS=10.8.0.5\nSERVER_ADDRESS=10.8.0.1\nLIFETIME=3600\n",
        );
    let (obs, _) = observe(&SystemCollector, &r.root());
    let s = &obs[0];
    let mut servers = s.get("SystemInfoItem/networkArray/networkInfo/dhcpServerArray/dhcpServer");
    servers.sort();
    assert_eq!(servers, ["10.8.0.1", "10.9.0.1"]);
    let hits = matches(
        Box::new(SystemCollector),
        &r.root(),
        &[
            ("SystemInfoItem/networkArray/networkInfo/dhcpServerArray/dhcpServer", "is", "IP", "10.9.0.1"),
            ("SystemInfoItem/networkArray/networkInfo/dhcpLeaseExpires", "is", "date", "2026-11-26T10:00:00Z"),
            ("SystemInfoItem/networkArray/networkInfo/dhcpLeaseObtained", "is", "date", "2026-11-26T08:00:00Z"),
        ],
    );
    assert_eq!(hits.len(), 1, "server, expiry and obtained (expiry - lease time) of eth0");
    assert!(matches(
        Box::new(SystemCollector),
        &r.root(),
        &[("SystemInfoItem/networkArray/networkInfo/dhcpServerArray/dhcpServer", "is", "IP", "10.7.0.1")]
    )
    .is_empty());
}

#[test]
fn live_system_has_interfaces_and_agent_describes_itself() {
    let (obs, _) = observe(&SystemCollector, &HostRoot::system());
    let s = &obs[0];
    assert!(s.get("SystemInfoItem/networkArray/networkInfo/adapter").contains(&"lo".to_string()));
    assert!(s
        .get("SystemInfoItem/networkArray/networkInfo/ipArray/ipInfo/ipAddress")
        .contains(&"127.0.0.1".to_string()));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(s.one("SystemInfoItem/hostname"), hostname.trim());
    let (agent, _) = observe(&AgentCollector, &HostRoot::system());
    assert_eq!(agent[0].one("AgentInfo/appVersion"), env!("CARGO_PKG_VERSION"));
    let hits = matches(
        Box::new(AgentCollector),
        &HostRoot::system(),
        &[("AgentInfo/appVersion", "is", "string", env!("CARGO_PKG_VERSION"))],
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, "agent");
}
