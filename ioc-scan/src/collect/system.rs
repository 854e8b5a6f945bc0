//! SystemInfoItem (the host itself) and AgentInfo (ioc-scan itself).
//!
//! Most values come from files under the root (/proc/sys/kernel,
//! /etc/os-release, /proc/meminfo, /etc/localtime, DHCP lease files:
//! [`super::dhcp`]); interface addresses come
//! from getifaddrs(3) and so only on the live host (a forensic root gets MAC
//! addresses from /sys/class/net only).

use super::host::{field, object_ref, read_text, CollectContext, CollectError, CollectStats, HostCollector, HostRoot, Sink};
use super::login;
use super::route;
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::net::IpAddr;

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// `aa:bb:cc:dd:ee:ff`
    pub mac: Option<String>,
    pub ipv4: Vec<IpAddr>,
    pub ipv6: Vec<IpAddr>,
    /// IPv4 netmasks (dotted), one per IPv4 address.
    pub netmasks: Vec<String>,
    /// Gateways of the routes through this interface.
    pub gateways: Vec<IpAddr>,
    /// The current DHCP lease ([`super::dhcp`]).
    pub dhcp: Option<super::dhcp::Lease>,
}

/// What is known of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    pub hostname: Option<String>,
    pub domain: Option<String>,
    /// `PRETTY_NAME` of os-release.
    pub os: Option<String>,
    /// `NAME` of os-release.
    pub product_name: Option<String>,
    pub kernel_version: Option<String>,
    /// `x86_64`...
    pub arch: Option<String>,
    pub processor: Option<String>,
    pub total_physical: Option<u64>,
    pub avail_physical: Option<u64>,
    /// Seconds since boot.
    pub uptime: Option<u64>,
    pub date: i64,
    /// `+HH:MM`
    pub gmt_offset: Option<String>,
    /// `Europe/Berlin`
    pub timezone: Option<String>,
    pub timezone_standard: Option<String>,
    pub timezone_dst: Option<String>,
    pub install_date: Option<i64>,
    pub logged_on_users: Vec<String>,
    pub interfaces: Vec<Interface>,
    pub primary_ipv4: Option<IpAddr>,
    pub primary_ipv6: Option<IpAddr>,
    /// Hypervisor, when running as a guest.
    pub virtualization: Option<String>,
}

fn first_line(root: &HostRoot, proc_rel: &str) -> Option<String> {
    let text = read_text(&root.proc_path(proc_rel)).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty() && line != "(none)").then_some(line)
}

/// `KEY=value` pairs of an os-release file (quotes removed).
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').trim_matches('\'').to_string()))
        })
        .collect()
}

/// A /proc/meminfo value in bytes.
pub fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    let kb: u64 = line.split(':').nth(1)?.split_ascii_whitespace().next()?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The standard and daylight-saving zone abbreviations from a TZif file's
/// POSIX TZ footer (`CET-1CEST,M3.5.0,M10.5.0/3` → `CET`, `CEST`).
pub fn tz_abbreviations(tzif: &[u8]) -> Option<(String, Option<String>)> {
    if !tzif.starts_with(b"TZif") || !tzif.ends_with(b"\n") {
        return None;
    }
    let body = &tzif[..tzif.len() - 1];
    let start = body.iter().rposition(|&b| b == b'\n')? + 1;
    let footer = std::str::from_utf8(&body[start..]).ok()?;
    let rule = footer.split(',').next()?;
    let mut names = Vec::new();
    let mut rest = rule;
    while !rest.is_empty() && names.len() < 2 {
        let (name, after) = if let Some(r) = rest.strip_prefix('<') {
            let end = r.find('>')?;
            (&r[..end], &r[end + 1..])
        } else {
            let end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if name.is_empty() {
            return None;
        }
        names.push(name.to_string());
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | ':'));
    }
    let mut it = names.into_iter();
    Some((it.next()?, it.next()))
}

/// The zone's name from /etc/timezone or the /etc/localtime link.
fn timezone_name(root: &HostRoot) -> Option<String> {
    if let Ok(t) = read_text(&root.path("/etc/timezone")) {
        let t = t.trim();
        if !t.is_empty() {
            return Some(t.to_string());
        }
    }
    let link = std::fs::read_link(root.path("/etc/localtime")).ok()?;
    let s = link.to_string_lossy();
    s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
}

/// Interfaces with their addresses: getifaddrs on the live host, only
/// MAC addresses from /sys/class/net otherwise.
fn interfaces(root: &HostRoot, stats: &mut CollectStats) -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    fn entry<'a>(out: &'a mut Vec<Interface>, name: &str) -> &'a mut Interface {
        if let Some(i) = out.iter().position(|i| i.name == name) {
            &mut out[i]
        } else {
            out.push(Interface {
                name: name.to_string(),
                ..Default::default()
            });
            out.last_mut().expect("just pushed")
        }
    }
    if root.is_live() {
        match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => {
                for a in addrs {
                    let iface = entry(&mut out, &a.interface_name);
                    let Some(addr) = a.address else { continue };
                    if let Some(link) = addr.as_link_addr() {
                        if let Some(mac) = link.addr().filter(|m| *m != [0; 6]) {
                            iface.mac = Some(mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
                        }
                    } else if let Some(v4) = addr.as_sockaddr_in() {
                        iface.ipv4.push(IpAddr::V4(v4.ip()));
                        if let Some(mask) = a.netmask.as_ref().and_then(|m| m.as_sockaddr_in()) {
                            iface.netmasks.push(mask.ip().to_string());
                        }
                    } else if let Some(v6) = addr.as_sockaddr_in6() {
                        iface.ipv6.push(IpAddr::V6(v6.ip()));
                    }
                }
            }
            Err(e) => stats.error(CollectError::Other {
                what: "getifaddrs".into(),
                reason: e.to_string(),
            }),
        }
    } else {
        stats.error(CollectError::NotLive {
            what: "interface addresses",
            root: root.root().to_path_buf(),
        });
        if let Ok(rd) = std::fs::read_dir(root.path("/sys/class/net")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let mac = read_text(&e.path().join("address"))
                    .ok()
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty() && m != "00:00:00:00:00:00");
                entry(&mut out, &name).mac = mac;
            }
        }
    }
    out
}

/// The hypervisor a guest runs on: DMI vendor, else the cpuinfo flag.
fn virtualization(root: &HostRoot, cpuinfo: &str) -> Option<String> {
    let dmi = |f: &str| {
        read_text(&root.path(format!("/sys/class/dmi/id/{f}")))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let vendor = format!(
        "{} {}",
        dmi("sys_vendor").unwrap_or_default(),
        dmi("product_name").unwrap_or_default()
    )
    .to_ascii_lowercase();
    for (needle, name) in [
        ("qemu", "kvm"),
        ("kvm", "kvm"),
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("microsoft corporation virtual", "hyper-v"),
        ("xen", "xen"),
        ("amazon ec2", "kvm"),
        ("google compute engine", "kvm"),
        ("firecracker", "firecracker"),
    ] {
        if vendor.contains(needle) {
            return Some(name.to_string());
        }
    }
    if let Ok(t) = read_text(&root.proc_path("xen/capabilities")) {
        if !t.contains("control_d") {
            return Some("xen".into());
        }
    }
    cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_ascii_whitespace().any(|f| f == "hypervisor"))
        .then(|| "unknown".to_string())
}

impl SystemInfo {
    /// Gather everything answerable under `root`.
    pub fn gather(root: &HostRoot, stats: &mut CollectStats) -> SystemInfo {
        let mut info = SystemInfo {
            hostname: first_line(root, "sys/kernel/hostname"),
            domain: first_line(root, "sys/kernel/domainname"),
            kernel_version: first_line(root, "sys/kernel/osrelease"),
            arch: first_line(root, "sys/kernel/arch").or_else(|| {
                root.is_live()
                    .then(|| nix::sys::utsname::uname().ok())
                    .flatten()
                    .map(|u| u.machine().to_string_lossy().into_owned())
            }),
            date: chrono::Utc::now().timestamp(),
            ..Default::default()
        };
        for file in ["/etc/os-release", "/usr/lib/os-release"] {
            if let Ok(t) = read_text(&root.path(file)) {
                let kv = parse_os_release(&t);
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                info.os = get("PRETTY_NAME").or_else(|| get("NAME"));
                info.product_name = get("NAME");
                break;
            }
        }
        let cpuinfo = read_text(&root.proc_path("cpuinfo")).unwrap_or_default();
        info.processor = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        match read_text(&root.proc_path("meminfo")) {
            Ok(m) => {
                info.total_physical = meminfo_bytes(&m, "MemTotal");
                info.avail_physical = meminfo_bytes(&m, "MemAvailable").or_else(|| meminfo_bytes(&m, "MemFree"));
            }
            Err(e) => stats.error(e),
        }
        info.uptime = read_text(&root.proc_path("uptime"))
            .ok()
            .and_then(|t| t.split_ascii_whitespace().next()?.parse::<f64>().ok())
            .map(|s| s as u64);
        info.timezone = timezone_name(root);
        if let Ok(bytes) = super::host::read_bounded(&root.path("/etc/localtime"), 1 << 20) {
            if let Some((std, dst)) = tz_abbreviations(&bytes) {
                info.timezone_standard = Some(std);
                info.timezone_dst = dst;
            }
        }
        if root.is_live() {
            use chrono::Offset;
            let secs = chrono::Local::now().offset().fix().local_minus_utc();
            info.gmt_offset = Some(format!(
                "{}{:02}:{:02}",
                if secs < 0 { '-' } else { '+' },
                secs.abs() / 3600,
                secs.abs() % 3600 / 60
            ));
        }
        info.install_date = std::fs::metadata(root.path("/"))
            .and_then(|m| m.created())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        for utmp in ["/run/utmp", "/var/run/utmp"] {
            if let Ok((records, _)) = login::read_utmp(&root.path(utmp)) {
                for r in records
                    .into_iter()
                    .filter(|r| r.ut_type == login::USER_PROCESS && !r.user.is_empty())
                {
                    if !info.logged_on_users.contains(&r.user) {
                        info.logged_on_users.push(r.user);
                    }
                }
                break;
            }
        }
        info.interfaces = interfaces(root, stats);
        for lease in super::dhcp::leases(root) {
            if let Some(iface) = info.interfaces.iter_mut().find(|i| i.name == lease.interface) {
                iface.dhcp = Some(lease);
            }
        }
        // Gateways and primary addresses from the routing tables.
        let mut default_ifaces = (None, None);
        for (table, v6) in [("net/route", false), ("net/ipv6_route", true)] {
            let Ok(text) = read_text(&root.proc_path(table)) else { continue };
            for line in text.lines().skip(usize::from(!v6)) {
                let parsed = if v6 {
                    route::parse_ipv6_route_line(line)
                } else {
                    route::parse_route_line(line)
                };
                let Some(r) = parsed else { continue };
                if let Some(gw) = r.gateway {
                    if let Some(iface) = info.interfaces.iter_mut().find(|i| i.name == r.interface) {
                        if !iface.gateways.contains(&gw) {
                            iface.gateways.push(gw);
                        }
                    }
                    if r.prefix_len == 0 {
                        if v6 {
                            default_ifaces.1.get_or_insert(r.interface.clone());
                        } else {
                            default_ifaces.0.get_or_insert(r.interface.clone());
                        }
                    }
                }
            }
        }
        let find = |name: &Option<String>, v6: bool| {
            let iface = info.interfaces.iter().find(|i| Some(&i.name) == name.as_ref())?;
            if v6 {
                iface
                    .ipv6
                    .iter()
                    .copied()
                    .find(|a| matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 != 0xfe80))
            } else {
                iface.ipv4.first().copied()
            }
        };
        info.primary_ipv4 = find(&default_ifaces.0, false);
        info.primary_ipv6 = find(&default_ifaces.1, true);
        info.virtualization = virtualization(root, &cpuinfo);
        info
    }
}

/// A SystemInfoItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemObservation(pub SystemInfo);

pub const SYSTEM_TERMS: &[TermId] = &[
    ids::SystemInfoItem_MAC,
    ids::SystemInfoItem_OS,
    ids::SystemInfoItem_OSbitness,
    ids::SystemInfoItem_appCreated,
    ids::SystemInfoItem_appVersion,
    ids::SystemInfoItem_availphysical,
    ids::SystemInfoItem_date,
    ids::SystemInfoItem_domain,
    ids::SystemInfoItem_gmtoffset,
    ids::SystemInfoItem_hostname,
    ids::SystemInfoItem_installDate,
    ids::SystemInfoItem_kernelVersion,
    ids::SystemInfoItem_loggedOnUser,
    ids::SystemInfoItem_machine,
    ids::SystemInfoItem_networkArray_networkInfo_MAC,
    ids::SystemInfoItem_networkArray_networkInfo_adapter,
    ids::SystemInfoItem_networkArray_networkInfo_ipArray_ipInfo_ipAddress,
    ids::SystemInfoItem_networkArray_networkInfo_ipArray_ipInfo_ipv6Address,
    ids::SystemInfoItem_networkArray_networkInfo_ipArray_ipInfo_subnetMask,
    ids::SystemInfoItem_networkArray_networkInfo_ipGatewayArray_ipGateway,
    ids::SystemInfoItem_networkArray_networkInfo_dhcpLeaseExpires,
    ids::SystemInfoItem_networkArray_networkInfo_dhcpLeaseObtained,
    ids::SystemInfoItem_networkArray_networkInfo_dhcpServerArray_dhcpServer,
    ids::SystemInfoItem_platform,
    ids::SystemInfoItem_primaryIpAddress,
    ids::SystemInfoItem_primaryIpv4Address,
    ids::SystemInfoItem_primaryIpv6Address,
    ids::SystemInfoItem_procConfigInfo_virtualization,
    ids::SystemInfoItem_procConfigInfo_vmGuest,
    ids::SystemInfoItem_processor,
    ids::SystemInfoItem_productName,
    ids::SystemInfoItem_timezone,
    ids::SystemInfoItem_timezoneDST,
    ids::SystemInfoItem_timezoneStandard,
    ids::SystemInfoItem_totalphysical,
    ids::SystemInfoItem_uptime,
    ids::SystemInfoItem_user,
];

fn strs<'a>(items: impl Iterator<Item = &'a String>) -> Field<'a> {
    Field::Values(items.map(|s| Value::Str(Cow::Borrowed(s.as_str()))).collect())
}

impl Observation for SystemObservation {
    fn document(&self) -> &'static str {
        "SystemInfoItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let s = &self.0;
        let ifaces = || s.interfaces.iter();
        match term {
            ids::SystemInfoItem_MAC | ids::SystemInfoItem_networkArray_networkInfo_MAC => strs(ifaces().filter_map(|i| i.mac.as_ref())),
            ids::SystemInfoItem_networkArray_networkInfo_adapter => strs(ifaces().map(|i| &i.name)),
            ids::SystemInfoItem_networkArray_networkInfo_ipArray_ipInfo_ipAddress => {
                field::ips(ifaces().flat_map(|i| i.ipv4.iter().copied()))
            }
            ids::SystemInfoItem_networkArray_networkInfo_ipArray_ipInfo_ipv6Address => {
                field::ips(ifaces().flat_map(|i| i.ipv6.iter().copied()))
            }
            ids::SystemInfoItem_networkArray_networkInfo_ipArray_ipInfo_subnetMask => strs(ifaces().flat_map(|i| i.netmasks.iter())),
            ids::SystemInfoItem_networkArray_networkInfo_ipGatewayArray_ipGateway => {
                field::ips(ifaces().flat_map(|i| i.gateways.iter().copied()))
            }
            ids::SystemInfoItem_networkArray_networkInfo_dhcpLeaseExpires => {
                Field::Values(ifaces().filter_map(|i| i.dhcp.as_ref()?.expires).map(Value::Time).collect())
            }
            ids::SystemInfoItem_networkArray_networkInfo_dhcpLeaseObtained => {
                Field::Values(ifaces().filter_map(|i| i.dhcp.as_ref()?.obtained).map(Value::Time).collect())
            }
            ids::SystemInfoItem_networkArray_networkInfo_dhcpServerArray_dhcpServer => {
                field::ips(ifaces().filter_map(|i| i.dhcp.as_ref()?.server))
            }
            ids::SystemInfoItem_OS => field::opt_str(s.os.as_deref()),
            ids::SystemInfoItem_productName => field::opt_str(s.product_name.as_deref()),
            ids::SystemInfoItem_OSbitness => match s.arch.as_deref() {
                Some(a) if a.contains("64") || a == "s390x" => field::str("64-bit"),
                Some(_) => field::str("32-bit"),
                None => Field::Absent,
            },
            ids::SystemInfoItem_appCreated => field::time(agent_created()),
            ids::SystemInfoItem_appVersion => field::str(env!("CARGO_PKG_VERSION")),
            ids::SystemInfoItem_availphysical => field::opt_uint(s.avail_physical),
            ids::SystemInfoItem_totalphysical => field::opt_uint(s.total_physical),
            ids::SystemInfoItem_date => field::time(Some(s.date)),
            ids::SystemInfoItem_domain => field::opt_str(s.domain.as_deref()),
            ids::SystemInfoItem_gmtoffset => field::opt_str(s.gmt_offset.as_deref()),
            ids::SystemInfoItem_hostname | ids::SystemInfoItem_machine => field::opt_str(s.hostname.as_deref()),
            ids::SystemInfoItem_installDate => field::time(s.install_date),
            ids::SystemInfoItem_kernelVersion => field::opt_str(s.kernel_version.as_deref()),
            ids::SystemInfoItem_loggedOnUser | ids::SystemInfoItem_user => strs(s.logged_on_users.iter()),
            ids::SystemInfoItem_platform => field::str("Linux"),
            ids::SystemInfoItem_primaryIpAddress => field::ip(s.primary_ipv4.or(s.primary_ipv6)),
            ids::SystemInfoItem_primaryIpv4Address => field::ip(s.primary_ipv4),
            ids::SystemInfoItem_primaryIpv6Address => field::ip(s.primary_ipv6),
            ids::SystemInfoItem_procConfigInfo_virtualization => field::str(s.virtualization.as_deref().unwrap_or("none")),
            ids::SystemInfoItem_procConfigInfo_vmGuest => field::str(if s.virtualization.is_some() { "true" } else { "false" }),
            ids::SystemInfoItem_processor => field::opt_str(s.processor.as_deref()),
            ids::SystemInfoItem_timezone => field::opt_str(s.timezone.as_deref()),
            ids::SystemInfoItem_timezoneDST => field::opt_str(s.timezone_dst.as_deref()),
            ids::SystemInfoItem_timezoneStandard => field::opt_str(s.timezone_standard.as_deref()),
            // Seconds since boot.
            ids::SystemInfoItem_uptime => field::duration(s.uptime),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref(
            "system",
            [("hostname", self.0.hostname.clone().into()), ("os", self.0.os.clone().into())],
        )
    }
}

/// The SystemInfoItem collector: one observation.
pub struct SystemCollector;

impl HostCollector for SystemCollector {
    fn document(&self) -> &'static str {
        "SystemInfoItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("SystemInfoItem");
        let info = SystemInfo::gather(&cx.root, &mut stats);
        stats.emit(sink, &mut SystemObservation(info), |_, _| {});
        stats
    }
}

/// When the running ioc-scan binary was built (installed): its file's mtime.
fn agent_created() -> Option<i64> {
    let exe = std::env::current_exe().ok()?;
    let m = std::fs::metadata(exe).ok()?.modified().ok()?;
    Some(m.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// When this ioc-scan process started.
fn agent_started() -> Option<i64> {
    super::process::read_process(&HostRoot::system(), std::process::id())
        .ok()?
        .start_time
}

/// An AgentInfo observation: ioc-scan describing itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentObservation {
    pub version: &'static str,
    pub created: Option<i64>,
    pub started: Option<i64>,
    /// The kernel's FIPS mode (/proc/sys/crypto/fips_enabled).
    pub fips: Option<bool>,
}

pub const AGENT_TERMS: &[TermId] = &[
    ids::AgentInfo_appVersion,
    ids::AgentInfo_appCreated,
    ids::AgentInfo_appStarted,
    ids::AgentInfo_FIPS,
];

impl Observation for AgentObservation {
    fn document(&self) -> &'static str {
        "AgentInfo"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        match term {
            ids::AgentInfo_appVersion => field::str(self.version),
            ids::AgentInfo_appCreated => field::time(self.created),
            ids::AgentInfo_appStarted => field::time(self.started),
            ids::AgentInfo_FIPS => self
                .fips
                .map_or(Field::Absent, |f| field::str(if f { "enabled" } else { "disabled" })),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        object_ref("agent", [("name", "ioc-scan".into()), ("version", self.version.into())])
    }
}

/// The AgentInfo collector: one observation of ioc-scan itself.
pub struct AgentCollector;

impl HostCollector for AgentCollector {
    fn document(&self) -> &'static str {
        "AgentInfo"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("AgentInfo");
        let fips = read_text(&cx.root.proc_path("sys/crypto/fips_enabled"))
            .ok()
            .map(|t| t.trim() == "1");
        let mut obs = AgentObservation {
            version: env!("CARGO_PKG_VERSION"),
            created: agent_created(),
            started: agent_started(),
            fips,
        };
        stats.emit(sink, &mut obs, |_, _| {});
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tz_footer_names() {
        let mut f = b"TZif2....\n".to_vec();
        f.extend_from_slice(b"CET-1CEST,M3.5.0,M10.5.0/3\n");
        assert_eq!(tz_abbreviations(&f), Some(("CET".into(), Some("CEST".into()))));
        assert_eq!(tz_abbreviations(b"TZif\nUTC0\n"), Some(("UTC".into(), None)));
        assert_eq!(tz_abbreviations(b"TZif\n<+03>-3\n"), Some(("+03".into(), None)));
        assert_eq!(tz_abbreviations(b"TZif\n\n"), None);
        assert_eq!(tz_abbreviations(b"nope"), None);
    }

    #[test]
    fn os_release_and_meminfo() {
        let kv = parse_os_release("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME='Debian 12'\nbad\n");
        assert_eq!(kv[0], ("NAME".into(), "Debian GNU/Linux".into()));
        assert_eq!(kv[1].1, "Debian 12");
        assert_eq!(
            meminfo_bytes("MemTotal:       1000 kB\nMemFree: 5 kB\n", "MemTotal"),
            Some(1_024_000)
        );
        assert_eq!(meminfo_bytes("MemTotal: x kB\n", "MemTotal"), None);
    }
}
