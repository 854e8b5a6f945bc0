//! Integration tests against the built `ioc-scan` binary and the library.
mod cli_task;
mod common;
mod console_api;
mod console_common;
mod console_prune;
mod fleet;
mod store_agent;
mod store_common;
mod store_crash;
mod store_open;
mod store_runs;
mod walk;
mod scan;
