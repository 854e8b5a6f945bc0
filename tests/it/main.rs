//! Integration tests against the built `ioc-scan` binary and the library.
mod cli_validate;
mod collect_config;
mod collect_host;
mod collect_kernel;
mod collect_logs;
mod collect_process;
mod collect_terms;
mod collect_util;
mod common;
mod eval;
mod monitor_cli;
mod openioc;
mod scan;
mod walk;
