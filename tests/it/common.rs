//! Helpers shared by the integration tests.
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;

/// The `ioc-scan` binary built by cargo for this test run.
pub fn ioc_scan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ioc-scan"))
}

/// Root of the workspace (fixtures/, ../shared live relative to it).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The shared OpenIOC reference data (../shared/openioc from the workspace;
/// from a git worktree nested one level deeper, the nearest ancestor's
/// shared/openioc).
pub fn shared_openioc() -> PathBuf {
    workspace()
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/openioc"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| workspace().join("../shared/openioc"))
}
