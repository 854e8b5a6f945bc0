//! `cargo xtask demo`: the newcomer's first command. Installs what is
//! missing (the eBPF toolchain), builds ioc-scan in release, and scans this
//! host (its critical areas, running processes, ports, users...) with the
//! bundled demo IOC collection in `fixtures/iocs/demo`.

use anyhow::{Context, Result};
use std::path::Path;
use std::process::{Command, ExitCode};

pub fn run(root: &Path, extra: &[String]) -> Result<ExitCode> {
    crate::setup::run_setup()?;
    let binary = crate::build_release_binary(root)?;
    let mut scan = Command::new(&binary);
    scan.arg("scan").arg("--ioc").arg(root.join("fixtures/iocs/demo")).args(extra);
    println!("+ {scan:?}");
    let status = scan.status().with_context(|| format!("running {}", binary.display()))?;
    // ioc-scan's own exit code: 0 nothing detected, 1 IOC detected, 2 error.
    Ok(ExitCode::from(status.code().unwrap_or(2) as u8))
}
