//! What a scan did: counts, skips by reason, errors (a bounded list and a
//! total), time.

use crate::collect::files::SkipReason;
use serde::Serialize;
use std::collections::BTreeMap;

/// Errors kept in full in a summary; the rest are counted.
pub const MAX_KEPT_ERRORS: usize = 100;

/// One entry that could not be examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanIssue {
    pub path: String,
    pub message: String,
}

/// What one host collector did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CollectorSummary {
    pub document: &'static str,
    pub objects: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanSummary {
    /// The roots walked (canonical).
    pub scopes: Vec<String>,
    /// Regular files evaluated.
    pub files_examined: u64,
    /// Directories read.
    pub dirs: u64,
    /// Files whose content was read.
    pub files_read: u64,
    /// Bytes of content read.
    pub bytes_read: u64,
    /// Bytes fed to at least one hasher.
    pub bytes_hashed: u64,
    /// Files that grew or shrank while read (digests cover what was read).
    pub files_changed_while_read: u64,
    /// Entries not examined, by reason (`symlink`, `special_file`,
    /// `too_large`, `excluded`, `other_filesystem`, `vanished`...).
    pub skipped: BTreeMap<&'static str, u64>,
    pub error_count: u64,
    /// The first [`MAX_KEPT_ERRORS`] errors.
    pub errors: Vec<ScanIssue>,
    pub detections: u64,
    pub collectors: Vec<CollectorSummary>,
    pub elapsed_seconds: f64,
}

impl ScanSummary {
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped.get(reason.as_str()).copied().unwrap_or(0)
    }

    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(ScanIssue {
                path: path.into(),
                message: message.into(),
            });
        }
    }
}

/// Per-thread counters, added into the summary when the thread ends (no
/// shared cache line touched per file).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub files: u64,
    pub dirs: u64,
    pub files_read: u64,
    pub bytes_read: u64,
    pub bytes_hashed: u64,
    pub changed: u64,
    pub skipped: [u64; SkipReason::ALL.len()],
}

impl Counters {
    pub fn skip(&mut self, reason: SkipReason) {
        self.skipped[reason.index()] += 1;
    }

    pub fn add_to(&self, s: &mut ScanSummary) {
        s.files_examined += self.files;
        s.dirs += self.dirs;
        s.files_read += self.files_read;
        s.bytes_read += self.bytes_read;
        s.bytes_hashed += self.bytes_hashed;
        s.files_changed_while_read += self.changed;
        for r in SkipReason::ALL {
            let n = self.skipped[r.index()];
            if n > 0 {
                *s.skipped.entry(r.as_str()).or_default() += n;
            }
        }
    }
}
