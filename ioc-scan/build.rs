//! Builds the kernel programs (`ioc-scan-ebpf`, for bpfel-unknown-none)
//! so that the binary embeds a fresh object (`collect::ebpf::object`).
//!
//! Needs nightly with rust-src and bpf-linker (`cargo xtask setup`
//! installs them). Without them the build still succeeds: a cargo warning
//! says so, no object is embedded, `scan` works and `monitor` explains what
//! to install. With them, a failing eBPF build fails the build.
//! `IOC_SCAN_SKIP_EBPF=1` skips the eBPF build on purpose.

#[path = "build/ebpf_command.rs"]
mod ebpf_command;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ioc_scan_ebpf)");
    println!("cargo::rerun-if-env-changed=IOC_SCAN_SKIP_EBPF");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("ioc-scan lives in the workspace").to_path_buf();
    for input in [
        "ioc-scan-ebpf/src",
        "ioc-scan-ebpf/Cargo.toml",
        "ioc-scan-ebpf/Cargo.lock",
        "ioc-scan-common/src",
        "ioc-scan-common/Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(input).display());
    }
    if env::var_os("IOC_SCAN_SKIP_EBPF").is_some_and(|v| v == "1") {
        println!("cargo::warning=IOC_SCAN_SKIP_EBPF=1: eBPF programs not built; `ioc-scan monitor` will not work");
        return;
    }

    let linker_dir = cargo_home().map(|h| h.join("bin"));
    if let Err(missing) = prerequisites(linker_dir.as_deref()) {
        println!("cargo::warning=eBPF programs not built ({missing}); `ioc-scan monitor` will not work: run `cargo xtask setup`");
        // A path that does not exist makes cargo run this script again on
        // the next build, so the programs get built once setup has run.
        if let Some(dir) = &linker_dir {
            println!("cargo::rerun-if-changed={}", dir.join("bpf-linker").display());
        }
        return;
    }

    let mut cmd = ebpf_command::build_command(&root, true);
    if let Some(dir) = &linker_dir {
        let path = env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.clone()];
        dirs.extend(env::split_paths(&path));
        if let Ok(joined) = env::join_paths(dirs) {
            cmd.env("PATH", joined);
        }
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(err) => fail(&format!("running {cmd:?}: {err}")),
    };
    if !output.status.success() {
        fail(&format!(
            "building the eBPF programs failed ({cmd:?}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let object = ebpf_command::object(&root, true);
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ioc-scan-ebpf.o");
    if let Err(err) = std::fs::copy(&object, &out) {
        fail(&format!("copying {} to {}: {err}", object.display(), out.display()));
    }
    println!("cargo::rustc-cfg=ioc_scan_ebpf");
}

/// Stop the build with a message (no panic backtrace around it).
fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}

fn cargo_home() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// What the eBPF build needs: bpf-linker, and a nightly toolchain with rust-src.
fn prerequisites(linker_dir: Option<&Path>) -> Result<(), String> {
    let linker_ok = |cmd: &mut Command| cmd.arg("--version").output().is_ok_and(|o| o.status.success());
    let in_path = linker_ok(&mut Command::new("bpf-linker"));
    let in_home = linker_dir.is_some_and(|d| linker_ok(&mut Command::new(d.join("bpf-linker"))));
    if !in_path && !in_home {
        return Err("bpf-linker not found".into());
    }
    let sysroot = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .ok_or("no nightly toolchain (rustup run nightly)")?;
    if !sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml").exists() {
        return Err("nightly has no rust-src component".into());
    }
    Ok(())
}
