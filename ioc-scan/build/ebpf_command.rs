//! How the kernel programs (`ioc-scan-ebpf`) are built: one definition for
//! ioc-scan/build.rs (every `cargo build`) and `cargo xtask build-ebpf`
//! (which includes this file by path), so that both run the same nightly
//! build into the same target dir and neither makes the other rebuild.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "bpfel-unknown-none";
const BIN: &str = "ioc-scan-ebpf";

/// Where the eBPF build writes: `$CARGO_TARGET_DIR/bpf`, else
/// `WORKSPACE/target/bpf`.
pub fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("bpf")
}

/// `rustup run nightly cargo build` of the programs, without the variables
/// of an outer cargo: its compiler, flags, toolchain and build-script
/// variables must not leak into the nested nightly build (they would also
/// make it rebuild whenever they differ between build.rs and xtask).
pub fn build_command(workspace: &Path, release: bool) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", "build", "--locked", "--target", TARGET, "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(target_dir(workspace))
        .current_dir(workspace.join("ioc-scan-ebpf"));
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
        "CARGO_BUILD_TARGET",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTDOC",
        "HOST",
        "TARGET",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if ["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "CARGO_MANIFEST_", "DEP_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            cmd.env_remove(&var);
        }
    }
    cmd
}

/// The object `build_command` writes.
pub fn object(workspace: &Path, release: bool) -> PathBuf {
    target_dir(workspace)
        .join(TARGET)
        .join(if release { "release" } else { "debug" })
        .join(BIN)
}
