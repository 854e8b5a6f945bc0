//! `cargo xtask setup`: install what building the eBPF programs needs, each
//! piece only when it is missing (quick when everything is there):
//! - `llvm-22-dev` (apt): the LLVM bpf-linker is built against;
//! - `bpf-linker` 0.13.0 (cargo install, LLVM 22);
//! - `rust-src` for the nightly toolchain (`-Z build-std=core`).
//!
//! The nightly toolchain itself is not installed here: a nightly built on
//! LLVM 23 cannot link with the LLVM 22 bpf-linker; use the one the
//! machine provides.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

/// The installed bpf-linker's version line, if any.
pub fn bpf_linker_version() -> Option<String> {
    for program in [cargo_home().join("bin/bpf-linker"), PathBuf::from("bpf-linker")] {
        if let Ok(out) = Command::new(&program).arg("--version").output() {
            if out.status.success() {
                return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
        }
    }
    None
}

fn run(cmd: &mut Command) -> Result<()> {
    println!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn llvm() -> Result<()> {
    if Path::new(LLVM_PREFIX).join("bin/llvm-config").exists() {
        println!("llvm-22-dev: present");
        return Ok(());
    }
    if !is_root() {
        bail!("llvm-22-dev is missing and installing it needs root: apt-get install -y llvm-22-dev");
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "llvm-22-dev"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn bpf_linker() -> Result<()> {
    if let Some(v) = bpf_linker_version() {
        if v.contains(BPF_LINKER_VERSION) {
            println!("bpf-linker: present ({v})");
            return Ok(());
        }
        println!("bpf-linker: {v}, want {BPF_LINKER_VERSION}: reinstalling");
    }
    run(Command::new("cargo")
        .args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--force",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        // Without these the build finds the system's older llvm-config.
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX)
        .env_remove("RUSTUP_TOOLCHAIN"))
}

fn rust_src() -> Result<()> {
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("running rustup")?;
    if !String::from_utf8_lossy(&toolchains.stdout)
        .lines()
        .any(|l| l.starts_with("nightly"))
    {
        bail!("no nightly toolchain: the eBPF programs need one whose LLVM is 22 (e.g. nightly 1.97); install it with rustup");
    }
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("running rustup")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        println!("rust-src (nightly): present");
        return Ok(());
    }
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

pub fn run_setup() -> Result<()> {
    llvm()?;
    bpf_linker()?;
    rust_src()?;
    println!("eBPF toolchain ready: `cargo build` embeds the kernel programs");
    Ok(())
}
