//! utmp/wtmp records: parse every whole record, pair logins and logouts,
//! and check that a parsed record encodes back to the same fields.
#![no_main]
use ioc_scan::collect::login::{encode_utmp, history, parse_utmp, UTMP_RECORD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let records: Vec<_> = data.chunks(UTMP_RECORD).filter_map(parse_utmp).collect();
    for r in &records {
        // Strings with NULs or cut UTF-8 do not round-trip; the rest must.
        if r.line.len() < 32 && r.user.len() < 32 && r.host.len() < 256 && !r.user.contains('\u{fffd}') && !r.line.contains('\u{fffd}') && !r.host.contains('\u{fffd}') {
            let again = parse_utmp(&encode_utmp(r)).expect("a whole record parses");
            assert_eq!(again.user, r.user);
            assert_eq!(again.time, r.time);
        }
    }
    let n = records.len();
    let h = history(records, "/var/log/wtmp", false);
    assert!(h.len() <= n);
});
