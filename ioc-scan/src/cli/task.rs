//! `ioc-scan task create|edit|list|show|delete|export|run`: IOC Scan tasks
//! kept in the database (`--db PATH`, `IOC_SCAN_DB`, or the default per user).
//! Also the database options and helpers shared by `results`, `alert` and
//! `agent`.

use super::validate::printable;
use anyhow::{bail, Context as _};
use ioc_scan::agent;
use ioc_scan::indicator::{self, Ioc, Node, Operator};
use ioc_scan::openioc;
use ioc_scan::store::{
    self, clock, CollectionRecordV1, DetectionRecordV1, Holder, IocFile, NewCollection, NewTask,
    OpenOptions, PruneBudget, ResponseAction, ResponseSettingsV1, RunStatus, RunTrigger, Schedule,
    ScopeV1, Store, TaskRecordV1,
};
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Where the state is, and how long results are kept.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// Database file [env: IOC_SCAN_DB] [default: /var/lib/ioc-scan/ioc-scan.redb for root,
    /// $XDG_STATE_HOME/ioc-scan/ioc-scan.redb (~/.local/state) for others]. A database
    /// held by another process is waited for up to IOC_SCAN_DB_WAIT seconds (30).
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,
    /// Delete results older than this many days [env: IOC_SCAN_RETENTION_DAYS]
    #[arg(long, value_name = "DAYS", global = true)]
    pub retention_days: Option<u32>,
}

impl DbArgs {
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.db {
            return Ok(p.clone());
        }
        if let Some(p) = std::env::var_os("IOC_SCAN_DB").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        if nix::unistd::geteuid().is_root() {
            return Ok(PathBuf::from("/var/lib/ioc-scan/ioc-scan.redb"));
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .context("no --db given, and neither XDG_STATE_HOME nor HOME is set")?;
        Ok(state.join("ioc-scan/ioc-scan.redb"))
    }

    pub fn retention(&self) -> anyhow::Result<chrono::Duration> {
        let days = match self.retention_days {
            Some(d) => d,
            None => match std::env::var("IOC_SCAN_RETENTION_DAYS") {
                Ok(v) => v.trim().parse().with_context(|| {
                    format!("IOC_SCAN_RETENTION_DAYS={v:?} is not a number of days")
                })?,
                Err(_) => store::DEFAULT_RETENTION_DAYS,
            },
        };
        if days == 0 {
            bail!("the retention must be at least one day");
        }
        Ok(chrono::Duration::days(days as i64))
    }

    /// Opens the database; with `write`, also runs a pruning pass first.
    pub fn open(&self, write: bool) -> anyhow::Result<Store> {
        let path = self.path()?;
        let shown = path.display().to_string();
        // How long to wait for another process holding the database.
        let wait = std::env::var("IOC_SCAN_DB_WAIT")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(30);
        let options = OpenOptions {
            wait: std::time::Duration::from_secs(wait),
            on_wait: Some(Arc::new(move |holders: &[Holder]| {
                let who: Vec<String> = holders.iter().map(|h| h.to_string()).collect();
                let who = if who.is_empty() {
                    String::new()
                } else {
                    format!(", in use by {}", who.join(", "))
                };
                eprintln!("ioc-scan: waiting for the database {shown}{who}...");
            })),
            ..Default::default()
        };
        let store = Store::open(&path, options)?;
        if write {
            store
                .prune(self.retention()?, PruneBudget::default())
                .context("pruning old results")?;
        }
        Ok(store)
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TaskCommand,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(clap::Subcommand)]
pub enum TaskCommand {
    /// Create a task from IOC files.
    Create(CreateArgs),
    /// Change a task (--ioc replaces its IOC files: a new collection version).
    Edit(EditArgs),
    /// List the tasks.
    List(ListArgs),
    /// Show a task with its indicators.
    Show(ShowArgs),
    /// Delete a task (its results stay until pruned).
    Delete(IdArg),
    /// Write a task's IOC files, byte for byte as uploaded, into a folder.
    Export(ExportArgs),
    /// Run a task's scan now on this device and record the result.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    /// IOC files (or folders of *.ioc / *.xml files).
    #[arg(long = "ioc", value_name = "PATH", required = true, num_args = 1..)]
    pub iocs: Vec<PathBuf>,
    #[arg(long, default_value = "")]
    pub description: String,
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Scope, response and schedule options (create and edit).
#[derive(clap::Args, Default)]
pub struct SettingArgs {
    /// Also scan this path (repeatable; on edit, replaces the custom paths).
    #[arg(long = "scope", value_name = "PATH", num_args = 1..)]
    pub scopes: Vec<String>,
    /// Do not scan paths matching this glob (repeatable; on edit, replaces the exclusions).
    #[arg(long = "exclude", value_name = "GLOB", num_args = 1..)]
    pub excludes: Vec<String>,
    /// Do not scan the critical areas.
    #[arg(long)]
    pub no_critical_areas: bool,
    /// Do not scan the paths the IOCs name.
    #[arg(long)]
    pub no_ioc_paths: bool,
    /// Response action: quarantine, delete, terminate, isolate[:DURATION], critical-areas-scan
    /// (repeatable; turns responses on; on edit, replaces the actions).
    #[arg(long = "respond", value_name = "ACTION", num_args = 1..)]
    pub respond: Vec<ResponseAction>,
    /// Turn applying the response actions on or off.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub apply_response: Option<bool>,
    /// manual, once:<RFC3339>, every:<N>m|h, daily:HH:MM, agent-start
    #[arg(long, value_name = "SPEC")]
    pub schedule: Option<Schedule>,
    /// After the scan, monitor the device live (eBPF sensors: new processes,
    /// connections, DNS) for this long: 90 (seconds), 90s, 10m, 1h30m, at
    /// most 24h; off (or 0) turns it off.
    #[arg(long, value_name = "DURATION", value_parser = parse_monitor)]
    pub monitor: Option<Monitor>,
}

/// A task's live monitoring setting as given on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Monitor(pub Option<u32>);

/// `off`, or a duration ([`ioc_scan::duration`]: `0` is off, a bare number
/// is seconds, `1h30m`).
fn parse_monitor(s: &str) -> Result<Monitor, String> {
    let seconds = if s.trim() == "off" {
        0
    } else {
        ioc_scan::duration::parse(s).map_err(|e| format!("{e}, or off"))?
    };
    store::monitor_seconds(seconds)
        .map(Monitor)
        .map_err(|e| e.to_string())
}

/// How a task's live monitoring reads.
fn monitor_text(seconds: Option<u32>) -> String {
    match seconds {
        Some(s) => format!(
            "{} after the scan",
            ioc_scan::duration::format(u64::from(s))
        ),
        None => "off".into(),
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

#[derive(clap::Args)]
pub struct EditArgs {
    pub id: u64,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Replace the IOC files (a new collection version).
    #[arg(long = "ioc", value_name = "PATH", num_args = 1..)]
    pub iocs: Vec<PathBuf>,
    /// Scan the critical areas again.
    #[arg(long, conflicts_with = "no_critical_areas")]
    pub critical_areas: bool,
    /// Scan the paths the IOCs name again.
    #[arg(long, conflicts_with = "no_ioc_paths")]
    pub ioc_paths: bool,
    /// Remove every custom scope path.
    #[arg(long, conflicts_with = "scopes")]
    pub clear_scopes: bool,
    /// Remove every exclusion.
    #[arg(long, conflicts_with = "excludes")]
    pub clear_excludes: bool,
    #[command(flatten)]
    pub settings: SettingArgs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// JSON lines, one task per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    pub id: u64,
    /// Show this collection version instead of the current one.
    #[arg(long)]
    pub version: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct IdArg {
    pub id: u64,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    pub id: u64,
    /// Folder to write the files into (created if missing; existing files are not overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Collection version (default: the current one).
    #[arg(long)]
    pub version: Option<u32>,
}

#[derive(clap::Args)]
pub struct RunArgs {
    pub id: u64,
    /// JSON lines: one per detection, then the run.
    #[arg(long)]
    pub json: bool,
    /// Device name recorded with the run (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let db = &args.db;
    match args.command {
        TaskCommand::Create(a) => create(db, a),
        TaskCommand::Edit(a) => edit(db, a),
        TaskCommand::List(a) => list(db, a),
        TaskCommand::Show(a) => show(db, a),
        TaskCommand::Delete(a) => {
            let store = db.open(true)?;
            let task = store.delete_task(a.id)?;
            println!("deleted task {} {}", task.id, printable(&task.name));
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Export(a) => export(db, a),
        TaskCommand::Run(a) => run_now(db, a),
    }
}

/// Reads IOC files as uploaded and parses each; any file that does not load
/// refuses the whole collection. Warnings go to stderr.
fn read_collection(paths: &[PathBuf]) -> anyhow::Result<NewCollection> {
    let limits = openioc::Limits::default();
    let mut files = Vec::new();
    let mut iocs = Vec::new();
    let mut failed = 0;
    for entry in openioc::expand_paths(paths) {
        let path = entry.map_err(|e| anyhow::anyhow!("{e}"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{}: not a file name", path.display()))?;
        let bytes = read_bounded(&path, limits.max_file_bytes)?;
        match openioc::parse_bytes_with(&name, &bytes, &limits) {
            Ok(parsed) => {
                for d in &parsed.diagnostics {
                    eprintln!(
                        "ioc-scan: {}: {}",
                        path.display(),
                        printable(&d.to_string())
                    );
                }
                iocs.push(parsed.ioc);
            }
            Err(e) => {
                eprintln!(
                    "ioc-scan: {}: {}",
                    path.display(),
                    printable(&e.to_string())
                );
                failed += 1;
            }
        }
        files.push(IocFile { name, bytes });
    }
    if failed > 0 {
        bail!(
            "{failed} IOC file{} could not be loaded; nothing was changed",
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(NewCollection { files, iocs })
}

fn read_bounded(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!("{}: larger than {max} bytes", path.display());
    }
    Ok(bytes)
}

fn response_settings(s: &SettingArgs, current: Option<&ResponseSettingsV1>) -> ResponseSettingsV1 {
    let mut r = current.cloned().unwrap_or_default();
    if !s.respond.is_empty() {
        r.actions = s.respond.clone();
        r.apply = true;
    }
    if let Some(apply) = s.apply_response {
        r.apply = apply;
    }
    r
}

fn create(db: &DbArgs, a: CreateArgs) -> anyhow::Result<ExitCode> {
    let collection = read_collection(&a.iocs)?;
    let s = &a.settings;
    let new = NewTask {
        name: a.name,
        description: a.description,
        collection,
        scope: ScopeV1 {
            critical_areas: !s.no_critical_areas,
            ioc_paths: !s.no_ioc_paths,
            custom_paths: s.scopes.clone(),
            excludes: s.excludes.clone(),
        },
        response: response_settings(s, None),
        schedule: s.schedule.unwrap_or(Schedule::Manual),
        monitor_seconds: s.monitor.unwrap_or_default().0,
    };
    let store = db.open(true)?;
    let task = store.create_task(new)?;
    let c = store.collection(task.id, task.collection_version)?;
    println!(
        "created task {} {} ({} IOC{} from {} file{})",
        task.id,
        printable(&task.name),
        c.iocs.len(),
        if c.iocs.len() == 1 { "" } else { "s" },
        c.files.len(),
        if c.files.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

fn edit(db: &DbArgs, a: EditArgs) -> anyhow::Result<ExitCode> {
    let collection = if a.iocs.is_empty() {
        None
    } else {
        Some(read_collection(&a.iocs)?)
    };
    let store = db.open(true)?;
    let s = &a.settings;
    let task = store.edit_task(a.id, collection, |t| {
        if let Some(n) = &a.name {
            t.name = n.clone();
        }
        if let Some(d) = &a.description {
            t.description = d.clone();
        }
        if s.no_critical_areas {
            t.scope.critical_areas = false;
        }
        if a.critical_areas {
            t.scope.critical_areas = true;
        }
        if s.no_ioc_paths {
            t.scope.ioc_paths = false;
        }
        if a.ioc_paths {
            t.scope.ioc_paths = true;
        }
        if a.clear_scopes {
            t.scope.custom_paths.clear();
        }
        if !s.scopes.is_empty() {
            t.scope.custom_paths = s.scopes.clone();
        }
        if a.clear_excludes {
            t.scope.excludes.clear();
        }
        if !s.excludes.is_empty() {
            t.scope.excludes = s.excludes.clone();
        }
        t.response = response_settings(s, Some(&t.response));
        if let Some(sc) = s.schedule {
            t.schedule = sc;
        }
        if let Some(m) = s.monitor {
            t.monitor_seconds = m.0;
        }
    })?;
    println!(
        "task {} {} is at collection version {}",
        task.id,
        printable(&task.name),
        task.collection_version
    );
    Ok(ExitCode::SUCCESS)
}

/// Local date and time of a stored time.
pub(crate) fn fmt_time(ms: i64) -> String {
    clock::from_millis(ms)
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(crate) fn rfc3339(ms: i64) -> String {
    clock::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn next_due(store: &Store, task: &TaskRecordV1) -> anyhow::Result<Option<i64>> {
    let last = store
        .schedule_state(task.id)?
        .last_fired_at
        .map(clock::from_millis);
    Ok(task
        .schedule
        .next_due(clock::from_millis(task.created_at), last, &chrono::Local)
        .map(clock::to_millis))
}

fn response_text(r: &ResponseSettingsV1) -> String {
    let actions: Vec<String> = r.actions.iter().map(|a| a.to_string()).collect();
    match (r.apply, actions.is_empty()) {
        (_, true) => "off".into(),
        (true, false) => actions.join(","),
        (false, false) => format!("off ({})", actions.join(",")),
    }
}

fn task_json(
    store: &Store,
    task: &TaskRecordV1,
    c: &CollectionRecordV1,
) -> anyhow::Result<serde_json::Value> {
    Ok(json!({
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "collection_version": task.collection_version,
        "iocs": c.iocs.len(),
        "files": c.files,
        "scope": {
            "critical_areas": task.scope.critical_areas,
            "ioc_paths": if task.scope.ioc_paths { indicator::paths_named(&c.iocs) } else { Vec::new() },
            "custom_paths": task.scope.custom_paths,
            "excludes": task.scope.excludes,
        },
        "response": {"apply": task.response.apply, "actions": task.response.actions.iter().map(|a| a.to_string()).collect::<Vec<_>>()},
        "schedule": task.schedule.to_string(),
        "monitor_seconds": task.monitor_seconds.unwrap_or(0),
        "next_due": next_due(store, task)?.map(rfc3339),
        "created_at": rfc3339(task.created_at),
        "updated_at": rfc3339(task.updated_at),
    }))
}

fn list(db: &DbArgs, a: ListArgs) -> anyhow::Result<ExitCode> {
    let store = db.open(false)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let tasks = store.tasks()?;
    if !a.json {
        writeln!(
            out,
            "{:>4}  {:<24} {:>7} {:>5}  {:<28} {:<19}  RESPONSE",
            "ID", "NAME", "VERSION", "IOCS", "SCHEDULE", "NEXT RUN"
        )?;
    }
    for task in &tasks {
        let c = store.collection(task.id, task.collection_version)?;
        if a.json {
            writeln!(out, "{}", task_json(&store, task, &c)?)?;
        } else {
            let next = next_due(&store, task)?
                .map(fmt_time)
                .unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "{:>4}  {:<24} {:>7} {:>5}  {:<28} {:<19}  {}",
                task.id,
                printable(&task.name),
                task.collection_version,
                c.iocs.len(),
                task.schedule.to_string(),
                next,
                response_text(&task.response)
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn operator(op: Operator) -> &'static str {
    match op {
        Operator::And => "AND",
        Operator::Or => "OR",
    }
}

/// An IOC's items as (depth, text) lines, in document order.
fn item_lines(ioc: &Ioc) -> Vec<(usize, String)> {
    ioc.walk()
        .into_iter()
        .map(|(depth, id)| {
            let text = match ioc.node(id) {
                Node::Indicator(ind) => format!("{} [{}]", operator(ind.operator), ind.id),
                Node::Item(item) => format!(
                    "{} {}{} {:?} [{}]",
                    item.context.search,
                    if item.negate { "not " } else { "" },
                    item.condition.as_str(),
                    item.content.value,
                    item.id
                ),
            };
            (depth, text)
        })
        .collect()
}

pub(crate) fn indicators_json(c: &CollectionRecordV1) -> serde_json::Value {
    json!(c
        .iocs
        .iter()
        .map(|ioc| json!({
            "id": ioc.id,
            "name": ioc.name(),
            "description": ioc.meta.description,
            "source": ioc.source,
            "items": ioc.items().map(|i| json!({
                "id": i.id,
                "term": i.context.search,
                "condition": i.condition.as_str(),
                "negate": i.negate,
                "value": i.content.value,
            })).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

fn show(db: &DbArgs, a: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = db.open(false)?;
    let task = store.task(a.id)?.ok_or(store::TaskError::NotFound(a.id))?;
    let version = a.version.unwrap_or(task.collection_version);
    let c = store.collection(task.id, version)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        let mut doc = task_json(&store, &task, &c)?;
        doc["shown_version"] = json!(version);
        doc["versions"] = json!(store.collection_versions(task.id)?);
        doc["indicators"] = indicators_json(&c);
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "Task {}: {}", task.id, printable(&task.name))?;
        if !task.description.is_empty() {
            writeln!(out, "Description: {}", printable(&task.description))?;
        }
        let versions = store.collection_versions(task.id)?;
        writeln!(
            out,
            "Collection version: {version} (versions: {})",
            join(&versions)
        )?;
        writeln!(out, "IOC files:")?;
        for f in &c.files {
            writeln!(
                out,
                "  {}  {} bytes  sha256 {}",
                printable(&f.name),
                f.size,
                f.sha256
            )?;
        }
        writeln!(out, "Scope:")?;
        writeln!(
            out,
            "  critical areas: {}",
            if task.scope.critical_areas {
                "on"
            } else {
                "off"
            }
        )?;
        if task.scope.ioc_paths {
            let paths = indicator::paths_named(&c.iocs);
            writeln!(
                out,
                "  paths named in the IOCs: {}",
                if paths.is_empty() {
                    "-".into()
                } else {
                    printable(&paths.join(" ")).into_owned()
                }
            )?;
        } else {
            writeln!(out, "  paths named in the IOCs: off")?;
        }
        writeln!(
            out,
            "  custom paths: {}",
            if task.scope.custom_paths.is_empty() {
                "-".into()
            } else {
                printable(&task.scope.custom_paths.join(" ")).into_owned()
            }
        )?;
        writeln!(
            out,
            "  exclusions: {}",
            if task.scope.excludes.is_empty() {
                "-".into()
            } else {
                printable(&task.scope.excludes.join(" ")).into_owned()
            }
        )?;
        writeln!(out, "Response: {}", response_text(&task.response))?;
        let next = next_due(&store, &task)?
            .map(fmt_time)
            .unwrap_or_else(|| "-".into());
        writeln!(out, "Schedule: {} (next run: {next})", task.schedule)?;
        writeln!(
            out,
            "Live monitoring: {}",
            monitor_text(task.monitor_seconds)
        )?;
        writeln!(
            out,
            "Created: {}  Updated: {}",
            fmt_time(task.created_at),
            fmt_time(task.updated_at)
        )?;
        writeln!(out, "Indicators ({}):", c.iocs.len())?;
        for ioc in &c.iocs {
            writeln!(
                out,
                "  {}  {}  ({})",
                ioc.id,
                printable(ioc.name()),
                printable(&ioc.source)
            )?;
            for (depth, line) in item_lines(ioc) {
                writeln!(
                    out,
                    "    {}{}",
                    "  ".repeat(depth.min(20)),
                    printable(&line)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn join(v: &[u32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn export(db: &DbArgs, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = db.open(false)?;
    let task = store.task(a.id)?.ok_or(store::TaskError::NotFound(a.id))?;
    let c = store.collection(task.id, a.version.unwrap_or(task.collection_version))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for f in &c.files {
        // Names were stored as bare file names; refuse anything else.
        if f.name.is_empty() || f.name.contains('/') || f.name == "." || f.name == ".." {
            bail!("refusing to export a file named {:?}", f.name);
        }
        let bytes = store
            .ioc_file_bytes(&f.sha256)?
            .with_context(|| format!("the bytes of {} are missing", f.name))?;
        let path = a.out.join(&f.name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(&bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The scan engine behind `task run` and the agent.
pub(crate) fn engine() -> agent::EngineScanner {
    agent::EngineScanner::default()
}

/// Set by SIGINT / SIGTERM: scans end early and their run is `interrupted`.
pub(crate) static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`STOP`] (a second signal still kills: the
/// handler is reset after the first).
pub(crate) fn catch_stop_signals() -> anyhow::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.context("installing a signal handler")?;
    }
    Ok(())
}

/// A detection as a JSON line: the fields of `scan --json`'s detection
/// lines, plus what the response actions did.
pub(crate) fn detection_json(d: &DetectionRecordV1) -> serde_json::Value {
    json!({
        "type": "detection",
        "ioc_id": d.ioc_id,
        "ioc_name": d.ioc_name,
        "ioc_description": d.ioc_description,
        "matched_items": d.matched_items,
        "object": d.object,
        "responses": d.responses,
    })
}

pub(crate) fn object_text(object: &serde_json::Value) -> String {
    let kind = object
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("object");
    let rest: Vec<String> = object
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "kind")
                .map(|(k, v)| match v.as_str() {
                    Some(s) => format!("{k}={s}"),
                    None => format!("{k}={v}"),
                })
                .collect()
        })
        .unwrap_or_default();
    printable(&format!("{kind} {}", rest.join(" "))).into_owned()
}

fn run_now(db: &DbArgs, a: RunArgs) -> anyhow::Result<ExitCode> {
    catch_stop_signals()?;
    let store = db.open(true)?;
    let device = a
        .device_name
        .clone()
        .unwrap_or_else(agent::default_device_name);
    if let Some(seconds) = store.task(a.id)?.and_then(|t| t.monitor_seconds) {
        eprintln!(
            "ioc-scan: after the scan, monitoring live for {} (Ctrl-C ends the run early, as interrupted)",
            ioc_scan::duration::format(u64::from(seconds))
        );
    }
    let json_out = a.json;
    let mut print = |d: &DetectionRecordV1| {
        let mut out = std::io::stdout().lock();
        let _ = if json_out {
            writeln!(out, "{}", detection_json(d))
        } else {
            writeln!(
                out,
                "DETECTED {} {}: {}",
                d.ioc_id,
                printable(&d.ioc_name),
                object_text(&d.object)
            )
        };
    };
    let run = agent::execute(
        &store,
        a.id,
        &device,
        RunTrigger::Manual,
        &engine(),
        &STOP,
        &mut print,
    )?;
    if a.json {
        println!("{}", run_json(&run));
    } else {
        println!(
            "run {}: {} ({})",
            run.id,
            run.status,
            super::results::summary(&run)
        );
    }
    if let (Some(e), RunStatus::IocDetected) = (&run.error, run.status) {
        // Detections, but a part of the run failed (e.g. live monitoring).
        eprintln!("ioc-scan: {}", printable(e));
    }
    Ok(match run.status {
        RunStatus::IocDetected => ExitCode::from(1),
        RunStatus::NoIocDetected => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    })
}

pub(crate) fn run_json(run: &store::RunRecordV1) -> serde_json::Value {
    json!({
        "type": "run",
        "id": run.id,
        "task_id": run.task_id,
        "task_name": run.task_name,
        "collection_version": run.collection_version,
        "device": run.device,
        "trigger": run.trigger,
        "status": run.status,
        "started_at": rfc3339(run.started_at),
        "ended_at": run.ended_at.map(rfc3339),
        "detections": run.detections,
        "iocs_detected": run.iocs_detected,
        "counts": run.counts.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "error": run.error,
    })
}
