//! Integration tests against the built `ioc-scan` binary and the library.
mod cli_validate;
mod common;
mod eval;
mod monitor_cli;
mod openioc;
