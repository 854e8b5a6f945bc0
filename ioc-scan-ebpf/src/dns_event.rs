//! What the two DNS programs ([`crate::dns_data_ready`] and its fallback
//! [`crate::dns`]) send: one [`DnsEvent`] per message, with up to
//! [`DNS_PAYLOAD_LEN`] bytes of it. Not a hook: the record both fill.

use aya_ebpf::helpers::generated;
use ioc_scan_common::{DnsEvent, DNS_PAYLOAD_LEN, EVENT_DNS};

use crate::maps::{config_ref, count_lost, submit_flags, EVENTS};

/// Where a DNS message came from and who it is for.
pub struct DnsHeader {
    /// `DNS_*` flags.
    pub flags: u32,
    /// The asking process (with `DNS_OWNER_KNOWN`), else 0.
    pub pid: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// Send `header` and the first `len` bytes of the message, which `copy(dst,
/// n)` writes into the record (a helper's return value: 0 on success). A
/// full ring buffer is counted as a lost DNS event.
#[inline(always)]
pub fn submit(header: &DnsHeader, len: u64, copy: impl FnOnce(*mut u8, u32) -> i64) {
    let Some(mut entry) = EVENTS.reserve::<DnsEvent>(0) else {
        count_lost(EVENT_DNS);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to a reserved, writable DnsEvent-sized record;
    // every field is written before the submit.
    unsafe {
        (*ev).kind = EVENT_DNS;
        (*ev).flags = header.flags;
        (*ev).pid = header.pid;
        (*ev).payload_len = 0;
        (*ev).src_port = header.src_port;
        (*ev).dst_port = header.dst_port;
        (*ev)._pad = 0;
        (*ev).src_addr = header.src;
        (*ev).dst_addr = header.dst;
        (*ev).time_ns = generated::bpf_ktime_get_boot_ns();
        // Hide n's range from LLVM so that the bounds check below stays in
        // the program: the verifier needs to see 1 <= n <= 512 itself.
        let mut n = len;
        core::arch::asm!("{0} = {0}", inout(reg) n);
        if n > 0 && n <= DNS_PAYLOAD_LEN as u64 && copy((*ev).payload.as_mut_ptr(), n as u32) == 0 {
            (*ev).payload_len = n as u32;
        }
    }
    entry.submit(config_ref().map_or(0, submit_flags));
}
