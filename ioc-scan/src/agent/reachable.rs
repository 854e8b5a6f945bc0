//! What must stay reachable while the device is isolated, so that the
//! console can still reach the agent (and lift the isolation): the
//! console's addresses and the DNS servers needed to find it. Loopback is
//! always open (the kernel programs pass it).
//!
//! The console's name is resolved when the agent starts, before each run
//! (the isolate action uses the list) and again every
//! [`REFRESH_EVERY`]; while an isolation is on, new addresses are added to
//! its allow list at once ([`isolate::allow_more`]): a console that moves to
//! a new address stays reachable. Addresses are only ever added, never
//! removed, during one isolation (an old one may still be in use).
//!
//! This module only reads `/etc/resolv.conf` (and systemd-resolved's list of
//! its upstream servers) and resolves one name; it never isolates.

use crate::respond::isolate;
use ipnet::IpNet;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How often the console's name is resolved again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The files naming the DNS servers: the resolver's, and systemd-resolved's
/// upstream ones (when /etc/resolv.conf names only its stub, 127.0.0.53).
const RESOLV_FILES: &[&str] = &["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];
/// Most bytes read of one resolver file.
const MAX_RESOLV_BYTES: u64 = 64 * 1024;
/// Most servers taken from the resolver files.
const MAX_DNS_SERVERS: usize = 16;
/// Most console addresses kept.
const MAX_CONSOLE_ADDRESSES: usize = 64;

/// The `nameserver` addresses of resolv.conf text (loopback ones left out:
/// loopback is always open).
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // `fe80::1%eth0`: the zone is not part of the address.
        let Some(addr) = words.next().map(|w| w.split('%').next().unwrap_or(w)) else { continue };
        if let Ok(ip) = addr.parse::<IpAddr>() {
            if !ip.is_loopback() && !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// The DNS servers of this host.
pub fn dns_servers() -> Vec<IpAddr> {
    use std::io::Read;
    let mut out = Vec::new();
    for path in RESOLV_FILES {
        let mut text = String::new();
        // Non-blocking, a regular file only (checked on the descriptor).
        let Ok(file) = crate::collect::safe_read::open_system(std::path::Path::new(path)) else { continue };
        if file.into_file().take(MAX_RESOLV_BYTES).read_to_string(&mut text).is_err() {
            continue;
        }
        for ip in nameservers(&text) {
            if !out.contains(&ip) && out.len() < MAX_DNS_SERVERS {
                out.push(ip);
            }
        }
    }
    out
}

/// Host and port of an `https://host:port/...` URL.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let port = parsed.port_or_known_default()?;
    let host = parsed.host_str()?;
    // An IPv6 literal comes in brackets.
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host.to_string(), port))
}

/// The console's addresses now (empty if its name does not resolve).
pub fn console_addresses(url: &str) -> Vec<IpAddr> {
    let Some((host, port)) = host_port(url) else { return Vec::new() };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    let mut out = Vec::new();
    if let Ok(addrs) = (host.as_str(), port).to_socket_addrs() {
        for a in addrs {
            if !out.contains(&a.ip()) && out.len() < MAX_CONSOLE_ADDRESSES {
                out.push(a.ip());
            }
        }
    }
    out
}

/// The allow list an isolation of this device gets, kept current.
#[derive(Debug)]
pub struct KeepReachable {
    console: String,
    nets: Vec<IpNet>,
    resolved_at: Option<Instant>,
}

impl KeepReachable {
    pub fn new(console_url: &str) -> KeepReachable {
        KeepReachable { console: console_url.to_string(), nets: Vec::new(), resolved_at: None }
    }

    /// The addresses to allow (the console's, the DNS servers'), as last resolved.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Resolves again if [`REFRESH_EVERY`] passed (or `force`); returns the
    /// addresses not known before.
    pub fn refresh(&mut self, force: bool) -> Vec<IpNet> {
        if !force && self.resolved_at.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
            return Vec::new();
        }
        self.resolved_at = Some(Instant::now());
        let mut new = Vec::new();
        for ip in console_addresses(&self.console).into_iter().chain(dns_servers()) {
            let net = IpNet::from(ip);
            if !self.nets.contains(&net) {
                self.nets.push(net);
                new.push(net);
            }
        }
        new
    }

    /// Resolves again when due and adds to an isolation in place (`opts`
    /// names it; whoever turned it on) what its allow list lacks. Returns
    /// the addresses added to it. Cheap when no isolation is on (two stats).
    pub fn keep_current(&mut self, opts: &isolate::Options, force: bool) -> Vec<IpNet> {
        self.refresh(force);
        match isolate::allow_more(opts, &self.nets) {
            Ok(added) => added,
            Err(e) => {
                tracing::warn!("keeping the console reachable during isolation: {e}");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_skip_loopback_zones_and_junk() {
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n\
                    nameserver nope\nsearch example.com\nnameserver 10.0.0.2\n";
        let got = nameservers(text);
        assert_eq!(got, vec!["10.0.0.2".parse::<IpAddr>().unwrap(), "fe80::1".parse().unwrap()]);
    }

    #[test]
    fn host_and_port_of_console_urls() {
        assert_eq!(host_port("https://console.example:8443"), Some(("console.example".into(), 8443)));
        assert_eq!(host_port("https://[2001:db8::1]/"), Some(("2001:db8::1".into(), 443)));
        assert_eq!(console_addresses("https://192.0.2.7:8443"), vec!["192.0.2.7".parse::<IpAddr>().unwrap()]);
    }
}
