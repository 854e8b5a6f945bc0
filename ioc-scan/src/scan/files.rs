//! The file part of a scan: the per-thread walk visitor that evaluates each
//! file on its metadata, reads it (once) only when some IOC could still
//! match it, and evaluates it again with its digests and content matches.

use super::summary::Counters;
use super::{Progress, Shared};
use crate::collect::files::safety::OpenError;
use crate::collect::files::{
    ContentNeeds, ContentReader, ContentSink, FileEntry, FileObservation, SkipReason, Visitor, WalkEvent, WalkState,
};
use crate::eval::{ContentScanner, Matcher, Outcome, TermSet};
use crate::terms::ids;
use std::sync::atomic::Ordering;

impl ContentSink for ContentScanner<'_> {
    fn feed(&mut self, chunk: &[u8]) {
        ContentScanner::feed(self, chunk)
    }

    fn done(&self) -> bool {
        self.all_found()
    }
}

/// What reading a file must compute for these pending terms.
pub(crate) fn content_needs(terms: &TermSet) -> ContentNeeds {
    ContentNeeds {
        md5: terms.contains(ids::FileItem_Md5sum),
        sha1: terms.contains(ids::FileItem_Sha1sum),
        sha256: terms.contains(ids::FileItem_Sha256sum),
        strings: terms.iter().any(crate::eval::searches_content),
    }
}

/// Progress counters are published every this many files.
const PUBLISH_EVERY: u64 = 256;

pub(crate) struct FileVisitor<'s, 'c> {
    shared: &'s Shared<'c>,
    matcher: Matcher<'c>,
    reader: ContentReader,
    counters: Counters,
    /// Counters already published to the progress display.
    published_files: u64,
    published_bytes: u64,
}

impl<'s, 'c> FileVisitor<'s, 'c> {
    pub(crate) fn new(shared: &'s Shared<'c>) -> Self {
        FileVisitor {
            shared,
            matcher: shared.compiled.matcher(),
            reader: ContentReader::default(),
            counters: Counters::default(),
            published_files: 0,
            published_bytes: 0,
        }
    }

    fn publish(&mut self, progress: &Progress) {
        progress
            .files
            .fetch_add(self.counters.files - self.published_files, Ordering::Relaxed);
        progress
            .bytes
            .fetch_add(self.counters.bytes_read - self.published_bytes, Ordering::Relaxed);
        self.published_files = self.counters.files;
        self.published_bytes = self.counters.bytes_read;
    }

    fn file(&mut self, entry: &FileEntry<'_>) {
        self.counters.files += 1;
        let shared = self.shared;
        let mut obs = FileObservation::new(entry, shared.accounts);
        let mut outcome = self.matcher.evaluate(&obs);
        if let Outcome::NeedTerms(terms) = &outcome {
            let needs = content_needs(terms);
            if needs.any() {
                self.read_content(entry, &mut obs, needs);
            }
            obs.finish_content();
            outcome = self.matcher.evaluate(&obs);
        }
        if let Outcome::Hits(hits) = outcome {
            shared.report(hits);
        }
    }

    /// Read the file once for `needs` and fill `obs` in; every way this can
    /// fail is counted and leaves the content terms absent.
    fn read_content(&mut self, entry: &FileEntry<'_>, obs: &mut FileObservation<'_>, needs: ContentNeeds) {
        let shared = self.shared;
        let too_large = |size: u64| size > shared.options.max_file_size;
        if entry.cached_metadata().is_some_and(|m| too_large(m.size)) {
            self.counters.skip(SkipReason::TooLarge);
            obs.set_content_unavailable();
            return;
        }
        let (mut file, meta) = match entry.open() {
            Ok(f) => f,
            Err(OpenError::Vanished) => {
                self.counters.skip(SkipReason::Vanished);
                obs.set_content_unavailable();
                return;
            }
            Err(OpenError::Replaced) | Err(OpenError::NotRegular) => {
                self.counters.skip(SkipReason::Replaced);
                obs.set_content_unavailable();
                return;
            }
            Err(OpenError::Io(e)) => {
                shared.error(entry.path(), &format!("open: {e}"));
                obs.set_content_unavailable();
                return;
            }
        };
        if too_large(meta.size) {
            self.counters.skip(SkipReason::TooLarge);
            obs.set_content_unavailable();
            return;
        }
        let mut scanner = if needs.strings {
            shared.compiled.content_patterns().map(|p| p.scanner())
        } else {
            None
        };
        let sink = scanner.as_mut().map(|s| s as &mut dyn ContentSink);
        let read = self
            .reader
            .read(&mut file, meta.size, shared.options.max_file_size, needs, sink);
        match read {
            Ok((digests, report)) => {
                self.counters.files_read += 1;
                self.counters.bytes_read += report.bytes_read;
                if needs.md5 || needs.sha1 || needs.sha256 {
                    self.counters.bytes_hashed += report.bytes_read;
                }
                if report.grew || report.shrank || report.truncated {
                    self.counters.changed += 1;
                }
                let strings = scanner.map(|s| s.finish().ids().to_vec());
                obs.set_content(digests, strings, report);
            }
            Err(e) => {
                shared.error(entry.path(), &format!("read: {e}"));
                obs.set_content_unavailable();
            }
        }
    }
}

impl Visitor for FileVisitor<'_, '_> {
    fn visit(&mut self, event: WalkEvent<'_>) -> WalkState {
        let shared = self.shared;
        if shared.cancel.load(Ordering::Relaxed) {
            return WalkState::Quit;
        }
        match event {
            WalkEvent::File(entry) => {
                self.file(entry);
                if let Some(p) = shared.progress.as_deref() {
                    if self.counters.files - self.published_files >= PUBLISH_EVERY {
                        self.publish(p);
                    }
                }
            }
            WalkEvent::Dir(path) => {
                self.counters.dirs += 1;
                if let Some(p) = shared.progress.as_deref() {
                    p.set_current_dir(path);
                }
            }
            WalkEvent::Skipped { reason, .. } => self.counters.skip(reason),
            WalkEvent::Error(e) => {
                shared.error(&e.path, &format!("{}: {}", e.op, e.source));
            }
        }
        WalkState::Continue
    }
}

impl Drop for FileVisitor<'_, '_> {
    fn drop(&mut self) {
        if let Some(p) = self.shared.progress.as_deref() {
            self.publish(p);
        }
        let mut summary = self.shared.summary.lock().unwrap_or_else(|e| e.into_inner());
        self.counters.add_to(&mut summary);
    }
}
