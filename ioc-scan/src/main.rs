//! The `ioc-scan` binary: parse arguments, run the command, map errors to
//! exit code 2 (0 = nothing detected, 1 = IOC detected, 2 = error).
mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ioc-scan: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
