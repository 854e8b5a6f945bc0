//! `cargo xtask test`: the one command that runs every test (README, CI).
//! Order: generated files are current → build prerequisites (eBPF toolchain,
//! headless Chromium) → unit, integration and browser tests → kernel tests
//! (root + BPF), one at a time.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    println!("+ cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

pub fn run(root: &Path) -> Result<()> {
    crate::gen_terms::run(root, true)?;
    crate::setup::run_setup()?;
    crate::setup_browser::run()?;
    cargo(root, &["test", "--workspace", "--no-fail-fast"])?;
    cargo(root, &["test", "-p", "ioc-scan", "--test", "kernel", "--", "--ignored", "--test-threads=1"])?;
    Ok(())
}
