//! `ioc-scan terms`: the OpenIOC terms and whether ioc-scan evaluates each.
//!
//! Lists every term the dictionary marks for Linux plus the other terms
//! ioc-scan answers anyway (UserItem, DnsEntryItem, dnsLookupEvent...), with its document,
//! type and status: `supported`, `live monitor only` (the eBPF sensors see
//! it, a snapshot does not) or `not supported` with the reason.
//! `--linux-only` keeps the dictionary's Linux terms, `--all` lists all of
//! them; `--json` prints JSON lines; `--markdown` renders the README's
//! coverage table.

use ioc_scan::collect::coverage::{host_status, Coverage};
use ioc_scan::terms::support::{status, Support};
use ioc_scan::terms::{TermDef, TermId, TERMS};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Only the terms the dictionary marks for Linux.
    #[arg(long, conflicts_with = "all")]
    pub linux_only: bool,
    /// Every term of the dictionary.
    #[arg(long)]
    pub all: bool,
    /// Only the terms of this document (`ProcessItem`...).
    #[arg(long, value_name = "DOCUMENT")]
    pub document: Option<String>,
    /// Print JSON lines.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the coverage table (Markdown) for the README.
    #[arg(long)]
    pub markdown: bool,
}

/// One term and its status.
#[derive(Debug, Serialize)]
pub struct TermRow {
    pub term: &'static str,
    pub document: &'static str,
    #[serde(rename = "type")]
    pub display_type: &'static str,
    pub linux: bool,
    /// `supported`, `live monitor only`, `not supported`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

fn row(id: TermId, def: &'static TermDef) -> TermRow {
    let live = matches!(host_status(id), Some(Coverage::LiveOnly(_)));
    let (status, reason) = match status(id) {
        Support::Supported => ("supported", None),
        Support::Unsupported(r) if live => ("live monitor only", Some(r.trim_start_matches("live monitor only: "))),
        Support::Unsupported(r) => ("not supported", Some(r)),
    };
    TermRow {
        term: def.text,
        document: def.document(),
        display_type: def.display_type,
        linux: def.on_linux(),
        status,
        reason,
    }
}

/// The rows asked for.
pub fn rows(args: &Args) -> Vec<TermRow> {
    TERMS
        .iter()
        .enumerate()
        .map(|(i, def)| row(TermId(i as u16), def))
        .filter(|r| {
            let chosen = if args.all {
                true
            } else if args.linux_only {
                r.linux
            } else {
                r.linux || r.status != "not supported"
            };
            chosen && args.document.as_deref().is_none_or(|d| d.eq_ignore_ascii_case(r.document))
        })
        .collect()
}

/// The README's coverage table: per document, how many of its listed terms
/// each status has, then the terms not supported with their reasons.
pub fn markdown(rows: &[TermRow]) -> String {
    let mut by_doc: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in rows {
        let c = by_doc.entry(r.document).or_default();
        c[match r.status {
            "supported" => 0,
            "live monitor only" => 1,
            _ => 2,
        }] += 1;
    }
    let mut s = String::from("| Document | Terms | Supported | Live monitor only | Not supported |\n|---|---:|---:|---:|---:|\n");
    let mut total = [0usize; 3];
    for (doc, c) in &by_doc {
        s += &format!("| {doc} | {} | {} | {} | {} |\n", c.iter().sum::<usize>(), c[0], c[1], c[2]);
        for i in 0..3 {
            total[i] += c[i];
        }
    }
    s += &format!(
        "| **All** | {} | {} | {} | {} |\n",
        total.iter().sum::<usize>(),
        total[0],
        total[1],
        total[2]
    );
    // Group the unanswered terms by reason: one line per reason.
    let mut reasons: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status != "supported") {
        reasons.entry((r.status, r.reason.unwrap_or(""))).or_default().push(r.term);
    }
    if !reasons.is_empty() {
        s += "\n| Terms | Status | Why |\n|---|---|---|\n";
        for ((status, reason), terms) in reasons {
            let list = terms.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
            s += &format!("| {list} | {status} | {reason} |\n");
        }
    }
    s
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rows = rows(&args);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.markdown {
        out.write_all(markdown(&rows).as_bytes())?;
    } else if args.json {
        for r in &rows {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
        }
    } else {
        let width = rows.iter().map(|r| r.term.len()).max().unwrap_or(0);
        for r in &rows {
            let reason = r.reason.map(|x| format!(": {x}")).unwrap_or_default();
            writeln!(out, "{:<width$}  {:<8}  {}{}", r.term, r.display_type, r.status, reason)?;
        }
        let supported = rows.iter().filter(|r| r.status == "supported").count();
        writeln!(out, "{} terms, {supported} supported", rows.len())?;
    }
    Ok(ExitCode::SUCCESS)
}
