//! ioc-scan's kernel programs: sensors (exec, exit, TCP state, UDP
//! connect/send, DNS answers) and enforcement (SIGKILL at exec, refused
//! connects).
//!
//! One hook per file; each is a thin program function over a `try_`
//! function returning `Result`. Only stable attach points are used:
//! tracepoints (ABI-stable, their formats are published in tracefs) and
//! cgroup hooks (`cgroup/connect*`, `cgroup/sendmsg*`, `cgroup_skb/*`,
//! part of the BPF UAPI). No kprobes (none on this kernel) and no
//! trampolines (LSM, fentry, fmod_ret are refused with EPERM here).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Inline BPF assembly (an atomic add, see maps::count_lost).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod connect;
#[cfg(target_arch = "bpf")]
mod dns;
#[cfg(target_arch = "bpf")]
mod dns_data_ready;
#[cfg(target_arch = "bpf")]
mod dns_event;
#[cfg(target_arch = "bpf")]
mod exec;
#[cfg(target_arch = "bpf")]
mod exit;
#[cfg(target_arch = "bpf")]
mod isolate;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod sendmsg;
#[cfg(target_arch = "bpf")]
mod sock_addr;
#[cfg(target_arch = "bpf")]
mod tcp_state;

/// GPL-compatible: bpf_probe_read_kernel and bpf_send_signal are GPL-only.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program whose panic path is reachable: a
    // panic here means the program does not load, never a kernel crash.
    loop {}
}

/// Built for the host (e.g. `cargo check` in this folder), there is nothing to run.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
