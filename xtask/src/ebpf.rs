//! `cargo xtask build-ebpf`: build the kernel programs on their own (the
//! same build ioc-scan/build.rs runs for every `cargo build`), to see the
//! compiler's output directly while working on them.

use anyhow::{bail, Context, Result};
use std::path::Path;

#[path = "../../ioc-scan/build/ebpf_command.rs"]
mod ebpf_command;

pub fn run(root: &Path, release: bool) -> Result<()> {
    if crate::setup::bpf_linker_version().is_none() {
        bail!("bpf-linker is not installed: run `cargo xtask setup`");
    }
    let mut cmd = ebpf_command::build_command(root, release);
    println!("+ {cmd:?}");
    let status = cmd.status().context("running rustup run nightly cargo build")?;
    if !status.success() {
        bail!("building the eBPF programs failed");
    }
    let object = ebpf_command::object(root, release);
    let size = std::fs::metadata(&object).map(|m| m.len()).unwrap_or(0);
    println!("{} ({size} bytes)", object.display());
    Ok(())
}
