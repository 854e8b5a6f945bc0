//! `ioc-scan quarantine list|show|restore|purge`: the files quarantined by
//! response actions (see `ioc_scan::respond::quarantine`).

use anyhow::Context;
use ioc_scan::respond::fsx::escape;
use ioc_scan::respond::quarantine::{default_dir, QuarantineRecord, QuarantineStore, Restored};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The quarantine store [env: IOC_SCAN_QUARANTINE_DIR] [default: /var/lib/ioc-scan/quarantine].
    #[arg(long, value_name = "DIR", global = true)]
    pub quarantine_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

#[derive(clap::Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined files, oldest first.
    List {
        /// JSON lines, one record each.
        #[arg(long)]
        json: bool,
    },
    /// Show one quarantined file's record (and check its stored copy).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a quarantined file back, byte-identical, with its mode, owner
    /// and access/modification times.
    Restore {
        id: String,
        /// Where to write it (default: its original path).
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
        /// Replace an existing file with other content.
        #[arg(long)]
        force: bool,
    },
    /// Remove a record (and its stored copy unless another record uses it).
    Purge { id: String },
}

fn time_text(t: &ioc_scan::respond::quarantine::FileTime) -> String {
    chrono::DateTime::from_timestamp(t.sec, t.nsec.clamp(0, 999_999_999) as u32)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| format!("{}.{:09}", t.sec, t.nsec))
}

fn show_text(out: &mut impl Write, r: &QuarantineRecord, verified: Result<(), String>) -> std::io::Result<()> {
    writeln!(out, "Id:            {}", r.id)?;
    writeln!(out, "Original path: {}", r.original_path)?;
    writeln!(out, "Path bytes:    {}", r.original_path_hex)?;
    writeln!(out, "SHA-256:       {}", r.sha256)?;
    writeln!(out, "Size:          {}", r.size)?;
    writeln!(out, "Mode:          {:o}", r.mode)?;
    writeln!(out, "Owner:         uid {} gid {}", r.uid, r.gid)?;
    writeln!(out, "Accessed:      {}", time_text(&r.atime))?;
    writeln!(out, "Modified:      {}", time_text(&r.mtime))?;
    writeln!(out, "Changed:       {} (not restorable)", time_text(&r.ctime))?;
    writeln!(out, "Quarantined:   {}", r.quarantined_at)?;
    if let Some(d) = &r.detection {
        writeln!(
            out,
            "Detection:     {} {} (items {})",
            escape(d.ioc_id.as_bytes()),
            escape(d.ioc_name.as_bytes()),
            escape(d.matched_items.join(", ").as_bytes())
        )?;
    }
    match verified {
        Ok(()) => writeln!(out, "Stored copy:   verified"),
        Err(e) => writeln!(out, "Stored copy:   DAMAGED: {e}"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args.quarantine_dir.unwrap_or_else(default_dir);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.command {
        QuarantineCommand::List { json } => {
            let (records, bad) = match QuarantineStore::open_existing(&dir) {
                Ok(store) => store.list()?,
                // No store yet: nothing was ever quarantined.
                Err(_) if !dir.exists() => (Vec::new(), Vec::new()),
                Err(e) => return Err(e.into()),
            };
            for e in &bad {
                eprintln!("ioc-scan: warning: {e}");
            }
            if json {
                for r in &records {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                }
            } else if records.is_empty() {
                writeln!(out, "no quarantined files in {}", dir.display())?;
            } else {
                writeln!(
                    out,
                    "{:<16}  {:>10}  {:<24}  {:<20}  ORIGINAL PATH",
                    "ID", "SIZE", "QUARANTINED", "IOC"
                )?;
                for r in &records {
                    let ioc = r
                        .detection
                        .as_ref()
                        .map(|d| escape(d.ioc_id.as_bytes()))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{:<16}  {:>10}  {:<24}  {:<20}  {}",
                        r.id, r.size, r.quarantined_at, ioc, r.original_path
                    )?;
                }
            }
            out.flush()?;
            Ok(if bad.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        QuarantineCommand::Show { id, json } => {
            let store = QuarantineStore::open_existing(&dir)?;
            let r = store.get(&id)?;
            let verified = store.verify(&r).map_err(|e| e.to_string());
            if json {
                let mut v = serde_json::to_value(&r)?;
                v["verified"] = serde_json::json!(verified.is_ok());
                writeln!(out, "{v}")?;
            } else {
                show_text(&mut out, &r, verified.clone())?;
            }
            out.flush()?;
            Ok(if verified.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        QuarantineCommand::Restore { id, to, force } => {
            let store = QuarantineStore::open_existing(&dir)?;
            let r = store.get(&id)?;
            let dest = to.as_ref().map(|p| p.as_os_str().as_bytes().to_vec());
            let restored = store
                .restore(&id, dest.as_deref(), force)
                .with_context(|| format!("restoring {id}"))?;
            let shown = dest.as_deref().map(escape).unwrap_or_else(|| r.original_path.clone());
            match restored {
                Restored::Written => writeln!(out, "restored {id} to {shown}")?,
                Restored::AlreadyInPlace => writeln!(
                    out,
                    "{id}: {shown} already has this content (mode, owner and times set)"
                )?,
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Purge { id } => {
            let store = QuarantineStore::open_existing(&dir)?;
            let removed = store.purge(&id)?;
            writeln!(
                out,
                "purged {id}{}",
                if removed {
                    ""
                } else {
                    " (its content is kept for another record)"
                }
            )?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
