//! Integration tests against the built `ioc-scan` binary and the library.
mod common;
mod eval;
mod walk;
mod collect_config;
mod collect_util;
mod collect_logs;
mod collect_kernel;
mod collect_process;
mod collect_host;
mod collect_terms;
mod scan;
