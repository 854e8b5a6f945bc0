//! Loading many files into one [`Collection`]: directory expansion, bounded
//! reads, duplicate IOC ids. One bad file never stops the others.

use super::error::{Diagnostic, ErrorKind, OpenIocError, Severity, Stage};
use super::{reader, Limits, Parsed};
use crate::indicator::Ioc;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileSummary {
    /// The file as named (a directory argument joined with the file's path).
    pub source: String,
    /// IOCs the file added to the collection (0 if it failed, or if its IOC
    /// id was already loaded from an earlier file).
    pub iocs: usize,
    /// Items of those IOCs.
    pub items: usize,
    /// Why the file could not be loaded (also in [`Collection::errors`]).
    pub error: Option<OpenIocError>,
}

/// IOCs read from a set of files, with everything worth telling about them.
#[derive(Debug, Default)]
pub struct Collection {
    pub iocs: Vec<Ioc>,
    /// Non-fatal problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Files that could not be loaded, in file order.
    pub errors: Vec<OpenIocError>,
    /// Every file considered, in load order.
    pub files: Vec<FileSummary>,
    by_id: HashMap<String, usize>,
}

impl Collection {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse `bytes` (an upload, a stored blob) as the file `name` and add it.
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) {
        self.add(name, reader::parse(name, bytes, &Limits::default()));
    }

    /// Add the outcome of reading the file `source`. An IOC whose id is
    /// already in the collection is not added (the first one read wins): a
    /// warning names both files.
    pub fn add(&mut self, source: &str, outcome: Result<Parsed, OpenIocError>) {
        let parsed = match outcome {
            Ok(parsed) => parsed,
            Err(err) => {
                self.files.push(FileSummary { source: source.to_owned(), iocs: 0, items: 0, error: Some(err.clone()) });
                self.errors.push(err);
                return;
            }
        };
        self.diagnostics.extend(parsed.diagnostics);
        let ioc = parsed.ioc;
        if let Some(&first) = self.by_id.get(&ioc.id) {
            self.diagnostics.push(Diagnostic {
                file: source.to_owned(),
                line: parsed.root.line,
                column: parsed.root.column,
                stage: Stage::Read,
                over_budget: false,
                severity: Severity::Warning,
                ioc_id: Some(ioc.id.clone()),
                item_id: None,
                message: format!(
                    "duplicate IOC id {}: already loaded from {}; this copy is ignored",
                    ioc.id, self.iocs[first].source
                ),
            });
            self.files.push(FileSummary { source: source.to_owned(), iocs: 0, items: 0, error: None });
            return;
        }
        let items = ioc.items().count();
        self.by_id.insert(ioc.id.clone(), self.iocs.len());
        self.iocs.push(ioc);
        self.files.push(FileSummary { source: source.to_owned(), iocs: 1, items, error: None });
    }

    /// The IOC with this id.
    pub fn get(&self, id: &str) -> Option<&Ioc> {
        self.by_id.get(id).map(|&i| &self.iocs[i])
    }

    pub fn item_count(&self) -> usize {
        self.iocs.iter().map(|ioc| ioc.items().count()).sum()
    }

    /// Files that failed plus error diagnostics.
    pub fn error_count(&self) -> usize {
        self.errors.len() + self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
    }
}

/// Load files and directories (expanded to their `*.ioc` / `*.xml` files,
/// recursively, sorted) with the default [`Limits`].
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Collection {
    load_files_with(paths, &Limits::default())
}

pub fn load_files_with<P: AsRef<Path>>(paths: &[P], limits: &Limits) -> Collection {
    let entries = expand_paths(paths);
    let outcomes: Vec<(String, Result<Parsed, OpenIocError>)> = entries
        .into_par_iter()
        .map(|entry| match entry {
            Ok(path) => {
                let name = path.display().to_string();
                let outcome = read_bounded(&path, &name, limits).and_then(|bytes| reader::parse(&name, &bytes, limits));
                (name, outcome)
            }
            Err(err) => (err.file.clone(), Err(err)),
        })
        .collect();
    let mut collection = Collection::new();
    for (name, outcome) in outcomes {
        collection.add(&name, outcome);
    }
    collection
}

/// Paths named by the user, directories replaced by the IOC files under them
/// (`.ioc` / `.xml`, any case; symlinked directories are not followed, so a
/// link loop cannot trap the walk). Files named explicitly are taken
/// whatever their extension. A path named twice is read once.
pub fn expand_paths<P: AsRef<Path>>(paths: &[P]) -> Vec<Result<PathBuf, OpenIocError>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Err(err) => out.push(Err(io_error(path, &err))),
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                let mut dirs = vec![path.to_path_buf()];
                while let Some(dir) = dirs.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(entries) => entries,
                        Err(err) => {
                            out.push(Err(io_error(&dir, &err)));
                            continue;
                        }
                    };
                    for entry in entries.flatten() {
                        let child = entry.path();
                        let Ok(kind) = entry.file_type() else { continue };
                        if kind.is_dir() {
                            dirs.push(child);
                        } else if (kind.is_file() || (kind.is_symlink() && child.is_file())) && is_ioc_file(&child) {
                            found.push(child);
                        }
                    }
                }
                found.sort();
                out.extend(found.into_iter().filter(|p| seen.insert(p.clone())).map(Ok));
            }
            Ok(_) => {
                if seen.insert(path.to_path_buf()) {
                    out.push(Ok(path.to_path_buf()));
                }
            }
        }
    }
    out
}

fn is_ioc_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("ioc") || e.eq_ignore_ascii_case("xml"))
}

/// Read at most `limits.max_file_bytes` (a file growing while read cannot
/// push past the bound).
fn read_bounded(path: &Path, name: &str, limits: &Limits) -> Result<Vec<u8>, OpenIocError> {
    let too_large = || OpenIocError {
        file: name.to_owned(),
        line: 0,
        column: 0,
        kind: ErrorKind::TooLarge,
        message: format!("file is larger than the limit of {} bytes", limits.max_file_bytes),
    };
    let file = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limits.max_file_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limits.max_file_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

fn io_error(path: &Path, err: &std::io::Error) -> OpenIocError {
    OpenIocError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        kind: ErrorKind::Io,
        message: format!("cannot read: {err}"),
    }
}
