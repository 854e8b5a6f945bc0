//! `ioc-scan isolation on|off|status`: cut the device (or a cgroup) off the
//! network for a set time, except loopback, an allow list and DHCP (see
//! `ioc_scan::respond::isolate`).

use anyhow::bail;
use ioc_scan::duration::format as format_duration;
use ioc_scan::respond::isolate::{self, parse_net, Options, Status};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: IsolationCommand,
}

#[derive(clap::Subcommand)]
pub enum IsolationCommand {
    /// Isolate now. Already on for the same cgroup: the expiry becomes the
    /// later one and the allow lists are merged.
    On {
        /// How long: 90 (seconds), 90s, 30m, 2h, 1d, 1h30m (at most 30d).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        duration: u64,
        /// Peers that stay reachable: addresses or CIDRs (the console, DNS
        /// servers) [env: IOC_SCAN_ISOLATION_ALLOW, added to these].
        #[arg(long, value_name = "CIDR", num_args = 1.., value_parser = net)]
        allow: Vec<ipnet::IpNet>,
        /// The cgroup v2 directory to isolate (default: the cgroup v2 root,
        /// the whole device) [env: IOC_SCAN_ISOLATION_CGROUP].
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
        /// Do not let DHCP through.
        #[arg(long)]
        no_dhcp: bool,
        /// Print what would be isolated, for how long, and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Lift isolation now.
    Off {
        #[arg(long)]
        json: bool,
    },
    /// Whether isolation is on, until when, for which cgroup; an expired
    /// isolation is reported and lifted.
    Status {
        #[arg(long)]
        json: bool,
    },
}

fn duration(s: &str) -> Result<u64, String> {
    ioc_scan::duration::parse(s).map_err(|e| e.to_string())
}

fn net(s: &str) -> Result<ipnet::IpNet, String> {
    parse_net(s).ok_or_else(|| format!("{s:?} is not an address or CIDR"))
}

/// Lift an expired isolation, quietly (every command calls this; only
/// root can have isolated, and a missing pin costs one stat).
pub fn lift_expired() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    if let Ok(Some(state)) = isolate::lift_if_expired(&Options::from_env()) {
        tracing::info!(
            "network isolation of {} expired at {}: lifted",
            state.cgroup,
            state.expires_at
        );
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = Options::from_env();
    match args.command {
        IsolationCommand::On {
            duration,
            allow,
            cgroup,
            no_dhcp,
            dry_run,
            json,
        } => {
            if duration == 0 || duration > isolate::MAX_SECONDS {
                bail!(
                    "--duration {}: 1s to {}",
                    format_duration(duration),
                    format_duration(isolate::MAX_SECONDS)
                );
            }
            opts.allow.extend(allow);
            if cgroup.is_some() {
                opts.cgroup = cgroup;
            }
            opts.dhcp = !no_dhcp;
            if dry_run {
                let allow: Vec<String> = opts.allow.iter().map(|n| n.to_string()).collect();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"status": "dry-run", "seconds": duration, "cgroup": opts.cgroup, "allow": allow, "dhcp": opts.dhcp})
                    );
                } else {
                    println!(
                        "would isolate {} for {} (nothing changed)",
                        opts.cgroup
                            .as_ref()
                            .map_or("the whole device".into(), |c| c.display().to_string()),
                        format_duration(duration)
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let r = isolate::on(duration, &opts)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"status": "active", "already": r.already, "state": r.state})
                );
            } else {
                println!(
                    "network isolation {} for {} until {} (allowed: loopback{}{}{})",
                    if r.already { "extended" } else { "on" },
                    r.state.cgroup,
                    r.state.expires_at,
                    if r.state.dhcp { ", DHCP" } else { "" },
                    if r.state.allow.is_empty() { "" } else { ", " },
                    r.state.allow.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        IsolationCommand::Off { json } => {
            let was = isolate::off(&opts)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"status": "off", "was_on": was.is_some(), "state": was})
                );
            } else {
                match was {
                    Some(s) => println!("network isolation of {} lifted", s.cgroup),
                    None => println!("network isolation was not on"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        IsolationCommand::Status { json } => {
            let status = isolate::status(&opts)?;
            if let Status::Expired { .. } = &status {
                isolate::off(&opts)?;
            }
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                match &status {
                    Status::Off => println!("network isolation: off"),
                    Status::Active {
                        state,
                        remaining_seconds,
                    } => println!(
                        "network isolation: on for {} until {} ({} left); allowed: loopback{}{}{}",
                        state.cgroup,
                        state.expires_at,
                        format_duration(*remaining_seconds),
                        if state.dhcp { ", DHCP" } else { "" },
                        if state.allow.is_empty() { "" } else { ", " },
                        state.allow.join(", ")
                    ),
                    Status::Expired { state } => {
                        println!("network isolation: expired at {} (lifted now)", state.expires_at)
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
