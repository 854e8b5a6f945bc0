//! Build, generate and test helpers: `cargo xtask --help`.
mod bench_console;
mod bench_scan;
mod setup_browser;
mod bench_store;
mod gen_terms;
mod test_all;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
enum Cmd {
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
    /// Benchmark the console: 1,000 simulated agents uploading results on loopback.
    BenchConsole,
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
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::GenTerms { check } => gen_terms::run(&workspace_root(), check),
        Cmd::Test => test_all::run(&workspace_root()),
        Cmd::BenchStore => bench_store::run(&workspace_root()),
        Cmd::BenchConsole => bench_console::run(&workspace_root()),
        Cmd::SetupBrowser => setup_browser::run(),
        Cmd::BenchScan { runs, million } => bench_scan::run(&workspace_root(), bench_scan::Options { runs, million }),
    }
}
