//! `cargo xtask kernel-tests`: the root + BPF tests (tests/kernel), one at
//! a time (they attach programs and count events host-wide). The eBPF
//! toolchain is set up first, so that the binary under test embeds the
//! programs; with IOC_SCAN_REQUIRE_BPF=1 a test that cannot run fails.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

pub fn run(root: &Path, extra: &[String]) -> Result<()> {
    crate::setup::run_setup()?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("kernel tests need root: each will say it skips");
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["test", "-p", "ioc-scan", "--test", "kernel", "--"])
        .args(extra)
        .args(["--ignored", "--test-threads=1"])
        .current_dir(root);
    println!("+ {cmd:?}");
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!("kernel tests failed");
    }
    Ok(())
}
