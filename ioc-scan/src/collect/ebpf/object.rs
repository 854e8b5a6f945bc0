//! The compiled kernel programs, embedded in the binary at build time
//! (ioc-scan/build.rs): no path to a build folder is needed at run time.

#[cfg(ioc_scan_ebpf)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ioc-scan-ebpf.o"));

/// The eBPF object, or `None` when this binary was built without the eBPF
/// toolchain (`cargo xtask setup` installs it).
pub fn object() -> Option<&'static [u8]> {
    #[cfg(ioc_scan_ebpf)]
    {
        Some(OBJECT)
    }
    #[cfg(not(ioc_scan_ebpf))]
    {
        None
    }
}
