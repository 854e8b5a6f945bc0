//! DHCP leases of the host's interfaces, for SystemInfoItem's
//! `networkInfo/dhcp*` terms.
//!
//! Read from the two formats Linux DHCP clients write:
//! - ISC dhclient (`/var/lib/dhcp/dhclient*.leases`, `/var/lib/dhclient/*.lease*`,
//!   NetworkManager's `/var/lib/NetworkManager/*.lease` with dhclient):
//!   `lease { interface "eth0"; option dhcp-server-identifier 10.0.2.2;
//!   option dhcp-lease-time 86400; expire 4 2026/11/26 10:00:00; }`, times in
//!   UTC (or `expire epoch N;`); the file keeps older leases, the last one of
//!   an interface is current. Obtained = expire − lease time.
//! - systemd-networkd (`/run/systemd/netif/leases/IFINDEX`, and
//!   NetworkManager's internal client `internal-*-IFACE.lease`): `KEY=value`
//!   lines with `SERVER_ADDRESS` and `LIFETIME` (seconds); the file is
//!   written when the lease is obtained, so its mtime is the obtained time.

use super::host::{read_text, HostRoot};
use std::net::IpAddr;

/// The current lease of one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    pub interface: String,
    pub server: Option<IpAddr>,
    /// Seconds since the epoch.
    pub obtained: Option<i64>,
    pub expires: Option<i64>,
}

/// Lease files read at most per directory (a host has a handful).
const MAX_FILES: usize = 256;

/// Every current lease found under `root`, one per interface (the newest
/// file wins when several clients wrote one).
pub fn leases(root: &HostRoot) -> Vec<Lease> {
    let mut found: Vec<(i64, Lease)> = Vec::new();
    let mut add = |mtime: i64, lease: Lease| match found.iter_mut().find(|(_, l)| l.interface == lease.interface) {
        Some(old) if old.0 <= mtime => *old = (mtime, lease),
        Some(_) => {}
        None => found.push((mtime, lease)),
    };
    for dir in ["/var/lib/dhcp", "/var/lib/dhclient", "/var/lib/NetworkManager"] {
        for (path, mtime) in files(root, dir) {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !name.contains(".lease") {
                continue;
            }
            let Ok(text) = read_text(&path) else { continue };
            if is_networkd(&text) {
                // NetworkManager's internal client: `internal-UUID-IFACE.lease`.
                let iface = name.trim_end_matches(".lease").rsplit('-').next().unwrap_or_default().to_string();
                if let Some(l) = parse_networkd(&text, &iface, mtime) {
                    add(mtime, l);
                }
            } else {
                for l in parse_dhclient(&text) {
                    add(mtime, l);
                }
            }
        }
    }
    for (path, mtime) in files(root, "/run/systemd/netif/leases") {
        let Some(index) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(iface) = interface_of_index(root, index) else { continue };
        let Ok(text) = read_text(&path) else { continue };
        if let Some(l) = parse_networkd(&text, &iface, mtime) {
            add(mtime, l);
        }
    }
    found.into_iter().map(|(_, l)| l).collect()
}

/// Regular files of a directory with their mtimes.
fn files(root: &HostRoot, dir: &str) -> Vec<(std::path::PathBuf, i64)> {
    let Ok(rd) = std::fs::read_dir(root.path(dir)) else { return Vec::new() };
    rd.flatten()
        .take(MAX_FILES)
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
            Some((e.path(), mtime))
        })
        .collect()
}

/// The interface whose `/sys/class/net/*/ifindex` is `index`.
fn interface_of_index(root: &HostRoot, index: u32) -> Option<String> {
    let rd = std::fs::read_dir(root.path("/sys/class/net")).ok()?;
    rd.flatten().find_map(|e| {
        let i: u32 = read_text(&e.path().join("ifindex")).ok()?.trim().parse().ok()?;
        (i == index).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

fn is_networkd(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.contains('=') && !l.contains('{'))
}

/// A networkd lease file of `interface`, written at `mtime`.
pub fn parse_networkd(text: &str, interface: &str, mtime: i64) -> Option<Lease> {
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim())
    };
    get("ADDRESS")?;
    let lifetime: Option<i64> = get("LIFETIME").and_then(|v| v.parse().ok());
    Some(Lease {
        interface: interface.to_string(),
        server: get("SERVER_ADDRESS").and_then(|v| v.parse().ok()),
        obtained: Some(mtime),
        expires: lifetime.map(|l| mtime.saturating_add(l)),
    })
}

/// The last lease of each interface in a dhclient lease file.
pub fn parse_dhclient(text: &str) -> Vec<Lease> {
    let mut out: Vec<Lease> = Vec::new();
    let mut current: Option<(Lease, Option<i64>)> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with("lease") && line.ends_with('{') {
            current = Some((Lease::default(), None));
            continue;
        }
        let Some((lease, lease_time)) = current.as_mut() else { continue };
        if line.starts_with('}') {
            let (mut lease, lease_time) = current.take().expect("inside a lease");
            if let (Some(exp), Some(t)) = (lease.expires, lease_time) {
                lease.obtained = Some(exp.saturating_sub(t));
            }
            if lease.interface.is_empty() {
                continue;
            }
            match out.iter_mut().find(|l| l.interface == lease.interface) {
                Some(old) => *old = lease,
                None => out.push(lease),
            }
            continue;
        }
        // `expire epoch N; # human-readable time`
        let line = line.split(" #").next().unwrap_or(line).trim().trim_end_matches(';');
        if let Some(v) = line.strip_prefix("interface ") {
            lease.interface = v.trim().trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("option dhcp-server-identifier ") {
            lease.server = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("option dhcp-lease-time ") {
            *lease_time = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("expire ") {
            lease.expires = dhclient_time(v);
        }
    }
    out
}

/// `4 2026/11/26 10:00:00` (weekday, UTC) or `epoch 1795687200 # ...`;
/// `never` is no time.
fn dhclient_time(v: &str) -> Option<i64> {
    let v = v.split('#').next()?.trim();
    if let Some(e) = v.strip_prefix("epoch ") {
        return e.trim().parse().ok();
    }
    let (_, when) = v.split_once(' ')?;
    chrono::NaiveDateTime::parse_from_str(when.trim(), "%Y/%m/%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DHCLIENT: &str = r#"lease {
  interface "eth0";
  fixed-address 10.0.2.15;
  option subnet-mask 255.255.255.0;
  option dhcp-lease-time 86400;
  option dhcp-server-identifier 10.0.2.2;
  renew 3 2026/11/25 22:00:00;
  expire 4 2026/11/26 10:00:00;
}
lease {
  interface "eth0";
  option dhcp-lease-time 3600;
  option dhcp-server-identifier 10.0.2.3;
  expire epoch 1795948200; # Sun Nov 29 10:30:00 2026
}
lease {
  interface "wlan0";
  option dhcp-server-identifier 192.168.1.1;
  expire never;
}
lease {
  option dhcp-server-identifier 192.168.9.9;
"#;

    #[test]
    fn the_last_dhclient_lease_of_each_interface_is_current() {
        let leases = parse_dhclient(DHCLIENT);
        assert_eq!(
            leases,
            vec![
                Lease {
                    interface: "eth0".into(),
                    server: Some("10.0.2.3".parse().unwrap()),
                    obtained: Some(1_795_948_200 - 3600),
                    expires: Some(1_795_948_200),
                },
                Lease {
                    interface: "wlan0".into(),
                    server: Some("192.168.1.1".parse().unwrap()),
                    obtained: None,
                    expires: None,
                },
            ],
            "the unterminated last block is dropped"
        );
        assert_eq!(dhclient_time("4 2026/11/26 10:00:00"), Some(1_795_687_200));
    }

    #[test]
    fn networkd_leases_take_their_times_from_the_file() {
        let text = "# This is private data. Do not parse.\nADDRESS=10.0.2.15\nSERVER_ADDRESS=10.0.2.2\nLIFETIME=86400\n";
        assert!(is_networkd(text));
        assert!(!is_networkd(DHCLIENT));
        let l = parse_networkd(text, "eth0", 1_000).unwrap();
        assert_eq!(l.server, Some("10.0.2.2".parse().unwrap()));
        assert_eq!((l.obtained, l.expires), (Some(1_000), Some(87_400)));
        assert_eq!(parse_networkd("SERVER_ADDRESS=1.2.3.4\n", "eth0", 0), None, "no address: no lease");
    }
}
