//! Command-line interface: argument parsing and output (human, JSON lines).
//! One file per command; each has its `Args` and a `run` returning the exit code.

pub mod agent;
pub mod alert;
pub mod console;
pub mod indicators;
pub mod isolation;
pub mod monitor;
pub mod quarantine;
pub mod results;
pub mod scan;
pub mod task;
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
    /// Manage IOC Scan tasks (IOC files, scope, response, schedule).
    Task(task::Args),
    /// List the results of task runs.
    Results(results::Args),
    /// Show the alert details of a run.
    Alert(alert::Args),
    /// Run this device's scheduled tasks until stopped.
    Agent(agent::Args),
    /// List the OpenIOC terms and whether ioc-scan evaluates each.
    Terms(terms::Args),
    /// Files quarantined by response actions: list, show, restore, purge.
    Quarantine(quarantine::Args),
    /// Network isolation: on (for a duration), off, status.
    Isolation(isolation::Args),
    /// Serve the web console and the agents of managed devices.
    Console(console::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Any command lifts an expired network isolation (`isolation` itself
    // reports it first).
    if !matches!(cli.command, Command::Isolation(_)) {
        isolation::lift_expired();
    }
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Indicators(args) => indicators::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Task(args) => task::run(args),
        Command::Results(args) => results::run(args),
        Command::Alert(args) => alert::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Terms(args) => terms::run(args),
        Command::Quarantine(args) => quarantine::run(args),
        Command::Isolation(args) => isolation::run(args),
        Command::Console(args) => console::run(args),
    }
}
