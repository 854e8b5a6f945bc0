//! Kernel tests: need root and BPF. Each is #[ignore]; `cargo xtask kernel-tests`
//! runs them one at a time. With IOC_SCAN_REQUIRE_BPF=1 a missing BPF is a failure.
//!
//! Each test runs the real `ioc-scan monitor` against the real kernel, with
//! its network programs attached to a cgroup the test creates (never the
//! root cgroup), and triggers events with the small programs of
//! fixtures/triggers (compiled here with `cc`). Only processes the test
//! started are ever killed.
mod harness;

mod enforce;
mod event_items;
mod ipv6;
mod isolate;
mod local_user;
mod lost;
mod sensors;
mod task_monitor;
