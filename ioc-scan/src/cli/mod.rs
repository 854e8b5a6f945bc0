//! Command-line interface: argument parsing and output (human, JSON lines).
//! One file per command; each has its `Args` and a `run` returning the exit code.

pub mod indicators;
pub mod monitor;
pub mod scan;
pub mod terms;
pub mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ioc-scan", version, about = "Hunt for OpenIOC indicators of compromise on Linux")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check IOC files and print per-file diagnostics.
    Validate(validate::Args),
    /// List the indicators of an IOC collection.
    Indicators(indicators::Args),
    /// Evaluate an IOC collection against this host.
    Scan(scan::Args),
    /// Watch the host through kernel sensors (eBPF) and evaluate process,
    /// connection and DNS indicators live; optionally kill and block.
    Monitor(monitor::Args),
    /// List the OpenIOC terms and whether ioc-scan evaluates each.
    Terms(terms::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Indicators(args) => indicators::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Terms(args) => terms::run(args),
    }
}
