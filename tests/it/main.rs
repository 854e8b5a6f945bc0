//! Integration tests against the built `ioc-scan` binary and the library.
mod cli_validate;
mod common;
mod eval;
mod openioc;
mod cli_task;
mod store_agent;
mod store_common;
mod store_crash;
mod store_open;
mod store_runs;
mod walk;
mod scan;
mod collect_config;
mod collect_util;
mod collect_logs;
mod collect_kernel;
mod collect_process;
