//! Kernel tests: need root and BPF. Each is #[ignore]; `cargo xtask kernel-tests`
//! runs them one at a time. With IOC_SCAN_REQUIRE_BPF=1 a missing BPF is a failure.
