//! Line parsers of /proc tables (net/tcp{,6}, net/udp, net/unix, net/arp,
//! net/route, net/ipv6_route, modules, PID/maps, self/mountinfo).
#![no_main]
use ioc_scan::collect::{arp, module, port, route, volume};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = port::parse_net_line(line, false);
        let _ = port::parse_net_line(line, true);
        let _ = port::parse_unix_line(line);
        let _ = arp::parse_arp_line(line);
        let _ = route::parse_route_line(line);
        let _ = route::parse_ipv6_route_line(line);
        let _ = module::parse_modules_line(line);
        let _ = module::parse_maps_line(line);
        let _ = volume::parse_mountinfo_line(line);
    }
    let _ = module::parse_modules_dep(&text);
    let _ = volume::unescape(&text);
    let _ = volume::unescape_hex(&text);
    let _ = module::modinfo(data);
});
