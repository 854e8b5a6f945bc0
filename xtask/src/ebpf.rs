//! `cargo xtask build-ebpf`: build the kernel programs on their own (the
//! same build ioc-scan/build.rs runs for every `cargo build`), to see the
//! compiler's output directly while working on them.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

pub const TARGET: &str = "bpfel-unknown-none";

pub fn run(root: &Path, release: bool) -> Result<()> {
    if crate::setup::bpf_linker_version().is_none() {
        bail!("bpf-linker is not installed: run `cargo xtask setup`");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("bpf");
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        "build",
        "--locked",
        "--target",
        TARGET,
        "-Z",
        "build-std=core",
    ])
    .arg("--target-dir")
    .arg(&target_dir)
    .current_dir(root.join("ioc-scan-ebpf"));
    if release {
        cmd.arg("--release");
    }
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
    ] {
        cmd.env_remove(var);
    }
    println!("+ {cmd:?}");
    let status = cmd.status().context("running rustup run nightly cargo build")?;
    if !status.success() {
        bail!("building the eBPF programs failed");
    }
    let object = target_dir
        .join(TARGET)
        .join(if release { "release" } else { "debug" })
        .join("ioc-scan-ebpf");
    let size = std::fs::metadata(&object).map(|m| m.len()).unwrap_or(0);
    println!("{} ({size} bytes)", object.display());
    Ok(())
}
