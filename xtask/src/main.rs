//! Build, generate and test helpers: `cargo xtask --help`.
mod bench_collect;
mod bench_compile;
mod bench_console;
mod bench_monitor;
mod bench_scan;
mod bench_store;
mod demo;
mod ebpf;
mod gen_terms;
mod kernel_tests;
mod setup;
mod setup_browser;
mod test_all;

use anyhow::{ensure, Context};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
enum Cmd {
    /// Install what is missing, build ioc-scan (release) and scan this host
    /// with the bundled demo IOCs; arguments after `--` go to `ioc-scan scan`.
    Demo {
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Regenerate the term registry from the OpenIOC 1.1 dictionary.
    GenTerms {
        /// Only check that the generated file is current.
        #[arg(long)]
        check: bool,
    },
    /// Run every test: unit, integration, and the kernel tests (as root).
    Test,
    /// Benchmark the results store: 100,000 runs, list one device, prune a day.
    BenchStore,
    /// Time each host collector, and a full-host snapshot with 500 processes.
    BenchCollect,
    /// Benchmark the console: 1,000 simulated agents uploading results on loopback.
    BenchConsole,
    /// Compile the worst 32 MiB collections (AND over OR, deep nesting, many
    /// ORs under AND, regexes...): time, peak RSS, budget charged.
    BenchCompile,
    /// (bench-compile helper) Parse and compile the IOC files of DIR.
    #[command(hide = true)]
    CompileCase {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Install headless Chromium and chromedriver (Debian packages) for the browser tests.
    SetupBrowser,
    /// Benchmark `ioc-scan scan` on a synthetic tree (built once in
    /// target/bench-tree) against find|xargs sha256sum and raw SHA-256.
    BenchScan {
        /// Measured runs per case (after one warm-up run); the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Also measure peak memory on 1,000,000 empty files (built once; slow).
        #[arg(long)]
        million: bool,
    },
    /// Install what building the eBPF programs needs (llvm-22-dev,
    /// bpf-linker, nightly rust-src), each only if missing.
    Setup,
    /// Build the eBPF programs on their own (cargo build does it too).
    BuildEbpf {
        /// Debug profile instead of release (the embedded object is release).
        #[arg(long)]
        debug: bool,
    },
    /// Run the root + BPF tests (tests/kernel) one at a time.
    KernelTests {
        /// Passed to the test binary (e.g. a test name filter).
        args: Vec<String>,
    },
    /// Time exec and connect storms without and with `ioc-scan monitor`,
    /// count lost events, measure the exec-to-kill latency (root).
    BenchMonitor {
        #[arg(long, default_value_t = 20_000)]
        execs: usize,
        #[arg(long, default_value_t = 20_000)]
        connects: usize,
        /// Rounds of the exec workload, each one timing without and one with
        /// the monitor; the median of the rounds' ratios is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Rounds of the connect workload (as --rounds).
        #[arg(long, default_value_t = 15)]
        connect_rounds: usize,
        /// Run the connect workload's client and server on this one CPU, in
        /// both arms (no cross-CPU wake-ups: a steadier figure of what the
        /// kernel programs cost per connection).
        #[arg(long, value_name = "CPU")]
        pin_cpu: Option<usize>,
        /// Bench this ioc-scan binary instead of building the workspace's
        /// (a before/after under the same conditions).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        indicators: usize,
        /// Execs of the kill binary for the latency figure.
        #[arg(long, default_value_t = 200)]
        kill_samples: usize,
    },
    /// (bench-scan helper) Print the raw SHA-256 speed of N threads, bytes/s.
    #[command(hide = true)]
    RawSha256 {
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 4)]
        rounds: usize,
    },
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

/// Builds the `ioc-scan` binary (release profile); returns its path.
fn build_release_binary(root: &Path) -> anyhow::Result<PathBuf> {
    println!("+ cargo build --release -p ioc-scan --bin ioc-scan");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "ioc-scan", "--bin", "ioc-scan"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build --release failed ({status})");
    Ok(root.join("target/release/ioc-scan"))
}

/// For benchmarks: in a debug build of xtask, runs `cargo xtask COMMAND`
/// again from a release build and returns true (its work is done); in a
/// release build, returns false.
fn rerun_in_release(root: &Path, command: &str) -> anyhow::Result<bool> {
    if !cfg!(debug_assertions) {
        return Ok(false);
    }
    let status = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--release", "--package", "xtask", "--", command])
        .current_dir(root)
        .status()
        .context("running the release build of xtask")?;
    ensure!(status.success(), "{command} failed");
    Ok(true)
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let ok = |r: anyhow::Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
    ok(match Cmd::parse() {
        Cmd::Demo { args } => return demo::run(&workspace_root(), &args),
        Cmd::GenTerms { check } => gen_terms::run(&workspace_root(), check),
        Cmd::Test => test_all::run(&workspace_root()),
        Cmd::BenchStore => bench_store::run(&workspace_root()),
        Cmd::RawSha256 { threads, rounds } => {
            bench_scan::raw_sha256(threads, rounds);
            Ok(())
        }
        Cmd::BenchCollect => bench_collect::run(&workspace_root()),
        Cmd::BenchConsole => bench_console::run(&workspace_root()),
        Cmd::BenchCompile => bench_compile::run(&workspace_root()),
        Cmd::CompileCase { dir } => bench_compile::case(&dir),
        Cmd::SetupBrowser => setup_browser::run(),
        Cmd::BenchScan { runs, million } => bench_scan::run(&workspace_root(), bench_scan::Options { runs, million }),
        Cmd::Setup => setup::run_setup(),
        Cmd::BuildEbpf { debug } => ebpf::run(&workspace_root(), !debug),
        Cmd::KernelTests { args } => kernel_tests::run(&workspace_root(), &args),
        Cmd::BenchMonitor { execs, connects, rounds, connect_rounds, pin_cpu, binary, indicators, kill_samples } => bench_monitor::run(
            &workspace_root(),
            &bench_monitor::Params { execs, connects, rounds, connect_rounds, pin_cpu, binary, indicators, kill_samples },
        ),
    })
}
