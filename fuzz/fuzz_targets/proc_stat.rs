//! /proc/PID/stat and status parsers: never panic, and a parsed stat's
//! comm is what lies between the first `(` and the last `)`.
#![no_main]
use ioc_scan::collect::process::{parse_stat, parse_status_uid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(stat) = parse_stat(data) {
        assert!(stat.comm.len() <= data.len() * 3);
    }
    let _ = parse_status_uid(&String::from_utf8_lossy(data));
});
