//! Command-line interface: argument parsing and output (human, JSON lines).
//! One file per command; each has its `Args` and a `run` returning the exit code.

pub mod agent;
pub mod alert;
pub mod console;
pub mod indicators;
pub mod results;
pub mod scan;
pub mod task;
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
    /// Manage IOC Scan tasks (IOC files, scope, response, schedule).
    Task(task::Args),
    /// List the results of task runs.
    Results(results::Args),
    /// Show the alert details of a run.
    Alert(alert::Args),
    /// Run this device's scheduled tasks until stopped.
    Agent(agent::Args),
    /// Serve the web console and the agents of managed devices.
    Console(console::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Indicators(args) => indicators::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Task(args) => task::run(args),
        Command::Results(args) => results::run(args),
        Command::Alert(args) => alert::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Console(args) => console::run(args),
    }
}
