//! Kernel module signature trailers and their PKCS#7: never panic, and a
//! parsed signature's key and signature are colon-separated hex.
#![no_main]
use ioc_scan::collect::module_sig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(sig)) = module_sig::parse(data) {
        assert!(sig.key.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
        assert!(sig.signature.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
    }
});
