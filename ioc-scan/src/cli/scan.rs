//! `ioc-scan scan --ioc PATH... [--scope PATH...]`: evaluate an IOC
//! collection against this host's files (and, as host collectors land, its
//! processes, ports...).
//!
//! Without `--scope`, the critical areas of the system are scanned (system
//! binaries and libraries, /etc and startup objects, /boot, homes, /tmp,
//! /var/tmp, /dev/shm, /opt...), plus the paths the IOCs name and the
//! executables of running processes.
//!
//! Output: one block per detection as it is found, then a summary; with
//! `--json`, JSON lines: `{"type":"ioc_error",...}` per IOC file that failed
//! to load, `{"type":"detection",...}` per detection, and a last
//! `{"type":"summary",...}`. A progress line is drawn on stderr when it is a
//! terminal (never with `--json` or `--no-progress`).
//!
//! Exit status: 0 nothing detected, 1 some IOC detected, 2 error (no IOC
//! could be loaded, bad arguments, no scope exists).

use anyhow::Context as _;
use ioc_scan::eval::{CompiledCollection, Detection, Severity};
use ioc_scan::openioc;
use ioc_scan::scan::{Progress, Scan, ScanOptions, ScanSummary, DEFAULT_MAX_FILE_SIZE};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// IOC files, or directories searched for *.ioc and *.xml files.
    #[arg(long = "ioc", required = true, num_args = 1.., value_name = "PATH")]
    pub iocs: Vec<PathBuf>,
    /// Directories or files to scan (default: the system's critical areas).
    #[arg(long = "scope", num_args = 1.., value_name = "PATH")]
    pub scopes: Vec<PathBuf>,
    /// Skip paths matching this glob (on full paths, e.g. '/var/cache/**',
    /// '**/node_modules'); repeatable.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Files larger than this are not read or hashed (still evaluated on
    /// name, size, times...). Bytes, or with a suffix: 64K, 256M, 1G (binary
    /// multiples; KiB/MiB/GiB spellings accepted).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
    /// Walking threads (default: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Descend into other filesystems mounted below a scope.
    #[arg(long)]
    pub cross_filesystems: bool,
    /// Never draw the progress line.
    #[arg(long)]
    pub no_progress: bool,
}

/// `1234`, `64k`, `256M`, `256MiB`, `1g`, `2GB`: binary multiples.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 1048576, 64K, 256M, 1G)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("`{text}`: unknown size unit (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct IocError<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    message: &'a str,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    iocs_loaded: usize,
    ioc_files_failed: usize,
    /// What compiling the IOCs cost, and its budget.
    compile: ioc_scan::eval::CompileCost,
    compile_budget: ioc_scan::eval::CompileBudget,
    #[serde(flatten)]
    scan: &'a ScanSummary,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let collection = openioc::load_files(&args.iocs);
    let stdout = Mutex::new(std::io::stdout());
    for err in &collection.errors {
        if args.json {
            let body = IocError {
                file: &err.file,
                line: err.line,
                column: err.column,
                message: &err.message,
            };
            print_json(
                &stdout,
                &Line {
                    kind: "ioc_error",
                    body: &body,
                },
            )?;
        } else {
            eprintln!("ioc-scan: cannot load IOC file: {err}");
        }
    }
    if collection.iocs.is_empty() {
        anyhow::bail!("no IOC could be loaded from {}", list(&args.iocs));
    }
    let (compiled, diagnostics) = CompiledCollection::compile(&collection.iocs);
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = collection.diagnostics.len() + diagnostics.len() - errors;
    if (errors > 0 || warnings > 0) && !args.json {
        eprintln!(
            "ioc-scan: {errors} error(s) and {warnings} warning(s) in the IOCs (items concerned never match; \
             `ioc-scan validate` tells more)"
        );
    }

    let options = ScanOptions {
        critical_areas: args.scopes.is_empty(),
        scopes: args.scopes.clone(),
        excludes: args.excludes.clone(),
        max_file_size: args.max_file_size,
        cross_filesystems: args.cross_filesystems,
        threads: args.threads,
    };
    let mut scan = Scan::new(&compiled, options)
        .with_collectors(ioc_scan::collect::host::scan_collectors(&compiled, &ioc_scan::collect::host::HostRoot::system()));
    let show_progress = !args.json && !args.no_progress && std::io::stderr().is_terminal();
    let progress = show_progress.then(|| ProgressLine::start(scan.progress()));
    let bar = progress.as_ref().map(|p| p.bar.clone());

    let write_failed = AtomicBool::new(false);
    let on_detection = |d: Detection| {
        let res = if args.json {
            print_json(
                &stdout,
                &Line {
                    kind: "detection",
                    body: &d,
                },
            )
        } else {
            let text = human_detection(&d);
            let mut out = stdout.lock().unwrap_or_else(|e| e.into_inner());
            match &bar {
                Some(bar) => bar.suspend(|| out.write_all(text.as_bytes()).and_then(|()| out.flush())),
                None => out.write_all(text.as_bytes()).and_then(|()| out.flush()),
            }
            .map_err(anyhow::Error::from)
        };
        if res.is_err() {
            write_failed.store(true, Ordering::Relaxed);
        }
    };
    let result = scan.run(&on_detection);
    if let Some(p) = progress {
        p.stop();
    }
    let summary = result?;
    if write_failed.load(Ordering::Relaxed) {
        anyhow::bail!("writing the report to stdout failed");
    }
    let body = SummaryLine {
        iocs_loaded: collection.iocs.len(),
        ioc_files_failed: collection.errors.len(),
        compile: compiled.cost(),
        compile_budget: compiled.budget(),
        scan: &summary,
    };
    if args.json {
        print_json(
            &stdout,
            &Line {
                kind: "summary",
                body: &body,
            },
        )?;
    } else {
        let mut out = stdout.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(human_summary(&body).as_bytes())
            .context("writing the summary")?;
        out.flush()?;
    }
    Ok(if summary.detections > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_json(out: &Mutex<std::io::Stdout>, value: &impl Serialize) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    out.write_all(&line)?;
    out.flush()?;
    Ok(())
}

/// Control characters in names from the host or the IOCs are shown escaped:
/// a file name must not drive the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn human_detection(d: &Detection) -> String {
    let mut s = format!("DETECTED {} [{}]\n", printable(&d.ioc_name), printable(&d.ioc_id));
    if let Some(desc) = d.ioc_description.as_deref().filter(|t| !t.trim().is_empty()) {
        let first = desc.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        s += &format!("  about:   {}\n", printable(first));
    }
    s += &format!("  ioc:     {}\n", printable(&d.ioc_source));
    let fields = &d.object.fields;
    let name = fields
        .get("path")
        .or_else(|| fields.get("name"))
        .and_then(|v| v.as_str())
        .map(printable)
        .unwrap_or_else(|| printable(&serde_json::Value::Object(fields.clone()).to_string()));
    s += &format!("  {:<8} {}\n", format!("{}:", d.object.kind), name);
    for (k, v) in fields {
        if k == "path" || k == "name" {
            continue;
        }
        let v = match v {
            serde_json::Value::String(t) => printable(t),
            other => printable(&other.to_string()),
        };
        s += &format!("    {k}: {v}\n");
    }
    s += &format!("  matched: {}\n\n", printable(&d.matched_items.join(", ")));
    s
}

fn human_summary(b: &SummaryLine<'_>) -> String {
    let s = b.scan;
    let mut out = format!(
        "{} detection(s); {} IOC(s) loaded{}\n",
        s.detections,
        b.iocs_loaded,
        if b.ioc_files_failed > 0 {
            format!(", {} IOC file(s) failed", b.ioc_files_failed)
        } else {
            String::new()
        }
    );
    out += &format!(
        "{} files examined in {} directories, {} read ({} hashed) in {:.2}s\n",
        s.files_examined,
        s.dirs,
        human_bytes(s.bytes_read),
        human_bytes(s.bytes_hashed),
        s.elapsed_seconds
    );
    if !s.skipped.is_empty() {
        let parts: Vec<_> = s.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out += &format!("skipped: {}\n", parts.join(", "));
    }
    for c in &s.collectors {
        out += &format!("{}: {} objects, {} errors\n", c.document, c.objects, c.errors);
    }
    if s.error_count > 0 {
        out += &format!("{} error(s):\n", s.error_count);
        for e in &s.errors {
            out += &format!("  {}: {}\n", printable(&e.path), printable(&e.message));
        }
        if s.error_count as usize > s.errors.len() {
            out += &format!("  ... and {} more\n", s.error_count as usize - s.errors.len());
        }
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The progress line on stderr, refreshed by its own thread.
struct ProgressLine {
    bar: indicatif::ProgressBar,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressLine {
    fn start(progress: Arc<Progress>) -> ProgressLine {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bar, stop) = (bar.clone(), stop.clone());
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let files = progress.files.load(Ordering::Relaxed);
                    let rate = files as f64 / start.elapsed().as_secs_f64().max(0.001);
                    let mut dir = printable(&progress.current_dir());
                    if dir.chars().count() > 60 {
                        dir = format!(
                            "…{}",
                            dir.chars()
                                .rev()
                                .take(59)
                                .collect::<Vec<_>>()
                                .into_iter()
                                .rev()
                                .collect::<String>()
                        );
                    }
                    bar.set_message(format!(
                        "{files} files ({rate:.0}/s), {} read  {dir}",
                        human_bytes(progress.bytes.load(Ordering::Relaxed))
                    ));
                    bar.tick();
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        ProgressLine { bar, stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert!(parse_size("12x").is_err());
        assert!(parse_size("").is_err());
    }
}
