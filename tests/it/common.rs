//! Helpers shared by the integration tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
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

/// Runs `cmd` and expects exit code `code`; returns its stdout.
pub fn expect_code(mut cmd: Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Special files in `dir`: a named pipe `fifo` and a listening socket
/// `sock` (kept while the listener lives). A scan or walk must never open
/// them: with no writer, opening the pipe blocks.
pub fn fifo_and_socket(dir: &Path) -> std::os::unix::net::UnixListener {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap()
}
