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

/// The shared OpenIOC reference data (../shared/openioc from the workspace).
pub fn shared_openioc() -> PathBuf {
    workspace().join("../shared/openioc")
}
