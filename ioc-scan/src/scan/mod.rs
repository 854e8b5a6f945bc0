//! One scan of a host against a compiled IOC collection: the parallel file
//! walk (when some IOC asks about files) and the host collectors (processes,
//! ports... when some IOC asks about their documents) run side by side; each
//! object is evaluated as it is observed and detections stream to the
//! caller's callback as they appear. The CLI, the task runner, the agent and
//! the console all run scans through [`Scan`].
//!
//! ```no_run
//! # use ioc_scan::{eval::CompiledCollection, scan::{Scan, ScanOptions}};
//! # fn f(compiled: &CompiledCollection) -> Result<(), ioc_scan::scan::ScanError> {
//! let options = ScanOptions { scopes: vec!["/tmp".into()], ..ScanOptions::default() };
//! let summary = Scan::new(compiled, options).run(&|d| println!("{}", d.ioc_name))?;
//! println!("{} files, {} detections", summary.files_examined, summary.detections);
//! # Ok(()) }
//! ```

pub mod collector;
mod files;
pub mod scope;
pub mod summary;

pub use collector::Collector;
pub use scope::{Scopes, CRITICAL_AREAS};
pub use summary::{CollectorSummary, ScanIssue, ScanSummary, MAX_KEPT_ERRORS};

use crate::collect::files::{Accounts, WalkBuilder};
use crate::eval::{CompiledCollection, Detection, GroupHit, Outcome, Verdicts};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Files larger than this are evaluated on their metadata only.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// What to scan and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Directories or files to walk.
    pub scopes: Vec<PathBuf>,
    /// Also walk the critical areas of the system ([`CRITICAL_AREAS`]), the
    /// paths the IOCs name and the executables of running processes. The
    /// CLI sets this when no scope is given.
    pub critical_areas: bool,
    /// Globs on full paths (`globset` syntax: `**/node_modules`,
    /// `/var/cache/**`): matching entries are skipped, directories not
    /// entered.
    pub excludes: Vec<String>,
    /// Files larger than this are not read (their content terms are absent).
    pub max_file_size: u64,
    /// Walk into other filesystems mounted below a scope.
    pub cross_filesystems: bool,
    /// Walking threads; 0 = one per CPU.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            scopes: Vec::new(),
            critical_areas: false,
            excludes: Vec::new(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            cross_filesystems: false,
            threads: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("invalid exclude glob `{glob}`: {source}")]
    Exclude {
        glob: String,
        #[source]
        source: globset::Error,
    },
    #[error("nothing to scan: {}", list(.0))]
    NoScope(Vec<PathBuf>),
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no scope given".into();
    }
    let names: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("{} not found", names.join(", "))
}

/// Live counters for a progress display (updated every few hundred files).
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    current_dir: Mutex<String>,
}

impl Progress {
    /// The directory most recently entered.
    pub fn current_dir(&self) -> String {
        self.current_dir.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set_current_dir(&self, path: &Path) {
        // Never wait for the display thread.
        if let Ok(mut s) = self.current_dir.try_lock() {
            s.clear();
            s.push_str(&path.to_string_lossy());
        }
    }
}

/// A scan, configured; [`Scan::run`] runs it (and may be called again).
pub struct Scan<'c> {
    compiled: &'c CompiledCollection,
    options: ScanOptions,
    collectors: Vec<Box<dyn Collector>>,
    progress: Option<Arc<Progress>>,
    cancel: Arc<AtomicBool>,
}

/// What every walking thread shares.
pub(crate) struct Shared<'c> {
    compiled: &'c CompiledCollection,
    options: &'c ScanOptions,
    accounts: &'static Accounts,
    verdicts: Mutex<Verdicts>,
    on_detection: &'c (dyn Fn(Detection) + Sync),
    detections: AtomicU64,
    summary: Mutex<ScanSummary>,
    progress: Option<Arc<Progress>>,
    cancel: &'c AtomicBool,
}

impl Shared<'_> {
    /// Turn hits into detections and hand them out (outside the lock).
    fn report(&self, hits: Vec<GroupHit>) {
        let mut found = Vec::new();
        {
            let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
            for hit in hits {
                found.extend(verdicts.add(hit));
            }
        }
        self.detections.fetch_add(found.len() as u64, Ordering::Relaxed);
        for d in found {
            (self.on_detection)(d);
        }
    }

    fn error(&self, path: &Path, message: &str) {
        let mut s = self.summary.lock().unwrap_or_else(|e| e.into_inner());
        s.error(path.to_string_lossy(), message);
    }

    /// Evaluate one object of a host collector.
    fn evaluate(&self, matcher: &mut crate::eval::Matcher<'_>, obs: &dyn crate::eval::Observation) -> Outcome {
        let outcome = matcher.evaluate(obs);
        if let Outcome::Hits(hits) = &outcome {
            self.report(hits.clone());
        }
        outcome
    }
}

impl<'c> Scan<'c> {
    pub fn new(compiled: &'c CompiledCollection, options: ScanOptions) -> Scan<'c> {
        Scan {
            compiled,
            options,
            collectors: Vec::new(),
            progress: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Host collectors to run alongside the walk; each runs only when the
    /// collection asks about its document.
    pub fn with_collectors(mut self, collectors: Vec<Box<dyn Collector>>) -> Scan<'c> {
        self.collectors = collectors;
        self
    }

    /// Live counters for a progress display.
    pub fn progress(&mut self) -> Arc<Progress> {
        self.progress.get_or_insert_with(Default::default).clone()
    }

    /// Set it to stop the scan early (from another thread).
    pub fn cancel_handle(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    pub fn options(&self) -> &ScanOptions {
        &self.options
    }

    /// The roots the walk will take.
    pub fn scopes(&self) -> Scopes {
        let mut paths = self.options.scopes.clone();
        if self.options.critical_areas {
            paths.extend(scope::default_paths(self.compiled.iocs()));
        }
        scope::dedupe(paths, self.options.cross_filesystems)
    }

    fn excludes(&self) -> Result<GlobSet, ScanError> {
        let mut b = GlobSetBuilder::new();
        for g in &self.options.excludes {
            let glob = Glob::new(g).map_err(|source| ScanError::Exclude {
                glob: g.clone(),
                source,
            })?;
            b.add(glob);
        }
        b.build().map_err(|source| ScanError::Exclude {
            glob: self.options.excludes.join(" "),
            source,
        })
    }

    /// Run the scan; `on_detection` is called (from any thread) for each
    /// detection as it appears.
    pub fn run(&self, on_detection: &(dyn Fn(Detection) + Sync)) -> Result<ScanSummary, ScanError> {
        let start = Instant::now();
        let excludes = self.excludes()?;
        let walk_files = self.compiled.uses_document("FileItem");
        let scopes = if walk_files { self.scopes() } else { Scopes::default() };
        if walk_files && scopes.roots.is_empty() && !self.options.scopes.is_empty() {
            return Err(ScanError::NoScope(scopes.missing));
        }
        let shared = Shared {
            compiled: self.compiled,
            options: &self.options,
            accounts: Accounts::system(),
            verdicts: Mutex::new(Verdicts::new(self.compiled)),
            on_detection,
            detections: AtomicU64::new(0),
            summary: Mutex::new(ScanSummary {
                scopes: scopes.roots.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
                ..ScanSummary::default()
            }),
            progress: self.progress.clone(),
            cancel: &self.cancel,
        };
        for missing in &scopes.missing {
            if self.options.scopes.contains(missing) {
                shared.error(missing, "scope not found");
            }
        }
        let wanted: Vec<&dyn Collector> = self
            .collectors
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| self.compiled.uses_document(c.document()))
            .collect();
        std::thread::scope(|s| {
            let shared = &shared;
            let mut handles = Vec::new();
            for c in wanted {
                handles.push(s.spawn(move || {
                    let mut matcher = shared.compiled.matcher();
                    let mut eval = |obs: &dyn crate::eval::Observation| shared.evaluate(&mut matcher, obs);
                    c.collect(&mut eval)
                }));
            }
            if walk_files && !scopes.roots.is_empty() {
                let mut walk = WalkBuilder::new();
                for root in &scopes.roots {
                    walk.root(root);
                }
                walk.threads(self.options.threads)
                    .excludes(excludes.clone())
                    .cross_filesystems(self.options.cross_filesystems);
                walk.build_parallel().run(|| files::FileVisitor::new(shared));
            }
            let mut summary = shared.summary.lock().unwrap_or_else(|e| e.into_inner());
            for h in handles {
                match h.join() {
                    Ok(c) => summary.collectors.push(c),
                    Err(_) => summary.error("", "a host collector panicked"),
                }
            }
        });
        let mut summary = shared.summary.into_inner().unwrap_or_else(|e| e.into_inner());
        summary.detections = shared.detections.load(Ordering::Relaxed);
        summary.elapsed_seconds = start.elapsed().as_secs_f64();
        Ok(summary)
    }
}
