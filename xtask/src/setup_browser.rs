//! `cargo xtask setup-browser`: installs Debian's `chromium` and
//! `chromium-driver` when missing (the browser tests drive them); CI calls it
//! before the tests.

use anyhow::{ensure, Result};
use std::path::Path;
use std::process::Command;

pub fn run() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() {
        println!("chromium and chromedriver are installed");
        return Ok(());
    }
    let apt = |args: &[&str]| -> Result<()> {
        println!("+ apt-get {}", args.join(" "));
        let status = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status()?;
        ensure!(status.success(), "apt-get {} failed ({status})", args.join(" "));
        Ok(())
    };
    apt(&["update"])?;
    apt(&["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])?;
    ensure!(Path::new("/usr/bin/chromedriver").exists(), "chromedriver is still missing after the install");
    Ok(())
}
