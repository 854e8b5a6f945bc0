//! Structs that cross the kernel/user boundary: `#[repr(C)]`, no_std, shared
//! by `ioc-scan-ebpf` (kernel) and `ioc-scan` (user, feature `user`).
#![no_std]
