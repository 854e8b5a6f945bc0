//! `ioc-scan validate PATH...`: load IOC files and tell, per file, whether it
//! loaded and what is wrong in it.
//!
//! What loads is also compiled for evaluation, as `scan`, `monitor` and the
//! agent would: bad values, bad regexes and IOCs over the compile budget are
//! error diagnostics too (stage `compile`), with file, line and column (the
//! compiler's warnings about terms not evaluated here are `scan`'s).
//!
//! Human output: per file `OK path (N IOCs, M items)` or
//! `ERROR path:line:col: message`, followed by its diagnostics
//! (`path:line:col: info|warning|error: message [ioc id / item id]`), then a
//! line with the compile's cost against its budget, and a count line. `--json`: the same
//! as JSON lines (`"kind"`: `file`, `diagnostic` (with its `"stage"`: `read`
//! or `compile`), `summary` (with `"compile"`: cost and budget)).
//!
//! Exit status: 0 when every file loaded and no diagnostic is an error
//! (warnings do not fail validation), 2 otherwise.

use anyhow::Context as _;
use ioc_scan::eval::{CompileBudget, CompileCost, CompiledCollection};
use ioc_scan::openioc::{self, Collection, Diagnostic, Severity};
use serde_json::json;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The arguments of `validate` and of `indicators` (which reports on the
/// same IOC files).
#[derive(clap::Args)]
pub struct Args {
    /// IOC files, or directories searched for *.ioc and *.xml files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print JSON instead of text (validate: JSON lines; indicators: one
    /// document).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut collection = openioc::load_files(&args.paths);
    let (diagnostics, cost) = CompiledCollection::check(&collection.iocs);
    // The errors (the items concerned never match); what the compiler only
    // warns about (terms this platform does not evaluate) `scan` tells.
    collection.diagnostics.extend(diagnostics.into_iter().filter(|d| d.severity == Severity::Error));
    write_report(args.json, &collection, |out, c| write_json(out, c, &cost), |out, c| write_human(out, c, &cost))
        .context("writing the report")?;
    Ok(if collection.error_count() == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

type Stdout = std::io::BufWriter<std::io::StdoutLock<'static>>;

/// Writes the JSON or the text report on `collection` to stdout.
pub(super) fn write_report(
    json: bool,
    collection: &Collection,
    write_json: impl FnOnce(&mut Stdout, &Collection) -> std::io::Result<()>,
    write_human: impl FnOnce(&mut Stdout, &Collection) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json { write_json(&mut out, collection) } else { write_human(&mut out, collection) }?;
    out.flush()
}

fn diagnostics_by_file(collection: &Collection) -> HashMap<&str, Vec<&Diagnostic>> {
    let mut by_file: HashMap<&str, Vec<&Diagnostic>> = HashMap::new();
    for d in &collection.diagnostics {
        by_file.entry(d.file.as_str()).or_default().push(d);
    }
    by_file
}

fn write_human(out: &mut impl Write, collection: &Collection, cost: &CompileCost) -> std::io::Result<()> {
    let by_file = diagnostics_by_file(collection);
    for file in &collection.files {
        match &file.error {
            None => writeln!(
                out,
                "OK {} ({} IOC{}, {} item{})",
                printable(&file.source),
                file.iocs,
                plural(file.iocs),
                file.items,
                plural(file.items)
            )?,
            Some(err) => writeln!(out, "ERROR {}", printable(&err.to_string()))?,
        }
        for d in by_file.get(file.source.as_str()).into_iter().flatten() {
            writeln!(out, "{}", printable(&d.to_string()))?;
        }
    }
    let failed = collection.errors.len();
    let budget = CompileBudget::default();
    writeln!(out, "compile: {} of {} work units, {} of {} bytes", cost.work, budget.work, cost.memory, budget.memory)?;
    writeln!(
        out,
        "{} file{}: {} loaded, {} failed; {} IOC{}, {} item{}; {} error{}, {} warning{}",
        collection.files.len(),
        plural(collection.files.len()),
        collection.files.len() - failed.min(collection.files.len()),
        failed,
        collection.iocs.len(),
        plural(collection.iocs.len()),
        collection.item_count(),
        plural(collection.item_count()),
        collection.error_count(),
        plural(collection.error_count()),
        collection.warning_count(),
        plural(collection.warning_count()),
    )
}

fn write_json(out: &mut impl Write, collection: &Collection, cost: &CompileCost) -> std::io::Result<()> {
    let by_file = diagnostics_by_file(collection);
    for file in &collection.files {
        let line = match &file.error {
            None => json!({
                "kind": "file", "file": file.source, "status": "ok", "iocs": file.iocs, "items": file.items,
            }),
            Some(err) => json!({
                "kind": "file", "file": file.source, "status": "error", "line": err.line, "column": err.column,
                "error": err.kind, "message": err.message,
            }),
        };
        writeln!(out, "{line}")?;
        for d in by_file.get(file.source.as_str()).into_iter().flatten() {
            let mut line = serde_json::to_value(d).map_err(std::io::Error::other)?;
            if let Some(map) = line.as_object_mut() {
                map.insert("kind".into(), "diagnostic".into());
            }
            writeln!(out, "{line}")?;
        }
    }
    let summary = json!({
        "kind": "summary",
        "files": collection.files.len(),
        "failed": collection.errors.len(),
        "iocs": collection.iocs.len(),
        "items": collection.item_count(),
        "errors": collection.error_count(),
        "warnings": collection.warning_count(),
        "compile": { "cost": cost, "budget": CompileBudget::default() },
    });
    writeln!(out, "{summary}")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `s` with control characters escaped: IOC files are untrusted, and their
/// text must not drive the terminal (escape sequences, carriage returns).
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect())
}
