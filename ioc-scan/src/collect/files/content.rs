//! One read pass over a file's content: every byte read once, into a
//! per-thread buffer, and fed to only the hashers the matcher asked for and
//! to the content-pattern automaton (IOC literals of `FileItem/StringList`).
//!
//! The automaton is run over a window made of the last `longest pattern − 1`
//! bytes of the previous read followed by the new bytes, so a literal that
//! straddles two reads is found. Patterns are a set (found or not), so a
//! match seen twice in the carried bytes is harmless.

use aho_corasick::{AhoCorasick, MatchKind, PatternID};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{ErrorKind, Read};

/// Default size of one read: small files are read in one call, large files
/// stream through the L2 cache.
pub const READ_SIZE: usize = 256 * 1024;

/// What to compute from the content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentNeeds {
    pub md5: bool,
    pub sha1: bool,
    pub sha256: bool,
    /// Run the content-pattern automaton.
    pub strings: bool,
}

impl ContentNeeds {
    pub fn any(&self) -> bool {
        self.md5 || self.sha1 || self.sha256 || self.strings
    }

    pub fn union(self, other: ContentNeeds) -> ContentNeeds {
        ContentNeeds {
            md5: self.md5 || other.md5,
            sha1: self.sha1 || other.sha1,
            sha256: self.sha256 || other.sha256,
            strings: self.strings || other.strings,
        }
    }
}

/// The digests computed (those not asked for are `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digests {
    pub md5: Option<[u8; 16]>,
    pub sha1: Option<[u8; 20]>,
    pub sha256: Option<[u8; 32]>,
}

/// How reading went. Digests cover exactly `bytes_read` bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReport {
    pub bytes_read: u64,
    /// More bytes than the size stat'ed before reading (a growing file).
    pub grew: bool,
    /// Fewer bytes than stat'ed (truncated while read).
    pub shrank: bool,
    /// Reading stopped at the size limit (the file grew past it).
    pub truncated: bool,
}

/// Per-thread reader: owns the read buffer and the set of patterns found in
/// the last file read.
pub struct ContentReader {
    buf: Vec<u8>,
    read_size: usize,
    found: Vec<bool>,
    found_list: Vec<PatternID>,
}

impl Default for ContentReader {
    fn default() -> Self {
        ContentReader::new(READ_SIZE)
    }
}

impl ContentReader {
    pub fn new(read_size: usize) -> ContentReader {
        ContentReader { buf: Vec::new(), read_size: read_size.max(1), found: Vec::new(), found_list: Vec::new() }
    }

    /// Patterns found by the last [`ContentReader::read`] with `strings`.
    pub fn found(&self) -> &[PatternID] {
        &self.found_list
    }

    /// Read `file` (stat'ed at `expected_size` bytes) to its end, but no more
    /// than `limit` bytes, computing what `needs` asks for.
    pub fn read(
        &mut self,
        file: &mut File,
        expected_size: u64,
        limit: u64,
        needs: ContentNeeds,
        patterns: Option<&AhoCorasick>,
    ) -> std::io::Result<(Digests, ReadReport)> {
        if expected_size > self.read_size as u64 {
            // Ask for aggressive readahead; errors are irrelevant.
            let _ = rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::Sequential);
        }
        self.read_from(file, expected_size, limit, needs, patterns)
    }

    /// [`ContentReader::read`] on any reader (tests, in-memory content).
    pub fn read_from(
        &mut self,
        file: &mut impl Read,
        expected_size: u64,
        limit: u64,
        needs: ContentNeeds,
        patterns: Option<&AhoCorasick>,
    ) -> std::io::Result<(Digests, ReadReport)> {
        let patterns = patterns.filter(|p| needs.strings && p.patterns_len() > 0);
        let carry_max = patterns.map_or(0, |p| p.max_pattern_len().saturating_sub(1));
        let want_buf = carry_max + self.read_size;
        if self.buf.len() < want_buf {
            self.buf.resize(want_buf, 0);
        }
        self.found_list.clear();
        if let Some(p) = patterns {
            self.found.clear();
            self.found.resize(p.patterns_len(), false);
        }
        let overlapping = patterns.is_some_and(|p| p.match_kind() == MatchKind::Standard);

        let mut md5 = needs.md5.then(Md5::new);
        let mut sha1 = needs.sha1.then(Sha1::new);
        let mut sha256 = needs.sha256.then(Sha256::new);
        let mut report = ReadReport::default();
        let mut carry = 0usize;
        let mut searching = patterns.is_some();

        loop {
            let room = (limit - report.bytes_read.min(limit)).min(self.read_size as u64) as usize;
            if room == 0 {
                // At the limit: is there more?
                let mut probe = [0u8; 1];
                if read_retry(file, &mut probe)? > 0 {
                    report.truncated = true;
                }
                break;
            }
            let n = read_retry(file, &mut self.buf[carry..carry + room])?;
            if n == 0 {
                break;
            }
            report.bytes_read += n as u64;
            let new = &self.buf[carry..carry + n];
            if let Some(h) = md5.as_mut() {
                h.update(new);
            }
            if let Some(h) = sha1.as_mut() {
                h.update(new);
            }
            if let Some(h) = sha256.as_mut() {
                h.update(new);
            }
            if searching {
                if let Some(ac) = patterns {
                    let window = &self.buf[..carry + n];
                    let mut mark = |id: PatternID| {
                        if !self.found[id.as_usize()] {
                            self.found[id.as_usize()] = true;
                            self.found_list.push(id);
                        }
                    };
                    if overlapping {
                        for m in ac.find_overlapping_iter(window) {
                            mark(m.pattern());
                        }
                    } else {
                        for m in ac.find_iter(window) {
                            mark(m.pattern());
                        }
                    }
                    if self.found_list.len() == ac.patterns_len() {
                        searching = false;
                    } else {
                        let keep = carry_max.min(carry + n);
                        self.buf.copy_within(carry + n - keep..carry + n, 0);
                        carry = keep;
                    }
                }
            }
        }
        report.grew = report.bytes_read > expected_size;
        report.shrank = report.bytes_read < expected_size && !report.truncated;
        let digests = Digests {
            md5: md5.map(|h| h.finalize().into()),
            sha1: sha1.map(|h| h.finalize().into()),
            sha256: sha256.map(|h| h.finalize().into()),
        };
        Ok((digests, report))
    }
}

fn read_retry(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> ContentNeeds {
        ContentNeeds { md5: true, sha1: true, sha256: true, strings: true }
    }

    #[test]
    fn digests_match_known_values() {
        let mut r = ContentReader::new(7);
        let data = b"The quick brown fox jumps over the lazy dog";
        let (d, rep) = r.read_from(&mut &data[..], data.len() as u64, u64::MAX, all(), None).unwrap();
        assert_eq!(hex::encode(d.md5.unwrap()), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(hex::encode(d.sha1.unwrap()), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
        assert_eq!(
            hex::encode(d.sha256.unwrap()),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
        assert_eq!(rep, ReadReport { bytes_read: 43, ..Default::default() });
    }

    #[test]
    fn only_needed_digests_are_computed() {
        let mut r = ContentReader::default();
        let needs = ContentNeeds { sha1: true, ..Default::default() };
        let (d, _) = r.read_from(&mut &b"x"[..], 1, u64::MAX, needs, None).unwrap();
        assert!(d.md5.is_none() && d.sha256.is_none() && d.sha1.is_some());
    }

    #[test]
    fn patterns_straddling_read_boundaries_are_found() {
        let ac = AhoCorasick::builder().ascii_case_insensitive(true).build(["EVIL-PAYLOAD", "abc", "bcd", "zzz"]).unwrap();
        // Every split position of the long pattern across 8-byte reads.
        for pad in 0..16 {
            let mut data = vec![b'.'; pad];
            data.extend_from_slice(b"xx evil-payload yy abcd");
            let mut r = ContentReader::new(8);
            r.read_from(&mut &data[..], data.len() as u64, u64::MAX, all(), Some(&ac)).unwrap();
            let mut found: Vec<usize> = r.found().iter().map(|p| p.as_usize()).collect();
            found.sort();
            assert_eq!(found, vec![0, 1, 2], "pad {pad}");
        }
    }

    #[test]
    fn growing_shrinking_and_limited_files_are_noted() {
        let mut r = ContentReader::new(4);
        let needs = ContentNeeds { sha256: true, ..Default::default() };
        let (_, rep) = r.read_from(&mut &b"0123456789"[..], 5, u64::MAX, needs, None).unwrap();
        assert!(rep.grew && !rep.truncated && rep.bytes_read == 10);
        let (_, rep) = r.read_from(&mut &b"0123"[..], 5, u64::MAX, needs, None).unwrap();
        assert!(rep.shrank && rep.bytes_read == 4);
        let (d, rep) = r.read_from(&mut &b"0123456789"[..], 5, 6, needs, None).unwrap();
        assert!(rep.truncated && rep.bytes_read == 6);
        // The digest covers what was read.
        let (d6, _) = r.read_from(&mut &b"012345"[..], 6, u64::MAX, needs, None).unwrap();
        assert_eq!(d.sha256, d6.sha256);
    }

    #[test]
    fn nothing_needed_reads_nothing_useful_but_counts() {
        let mut r = ContentReader::default();
        let (d, rep) = r.read_from(&mut &b"abc"[..], 3, u64::MAX, ContentNeeds::default(), None).unwrap();
        assert_eq!(d, Digests::default());
        assert_eq!(rep.bytes_read, 3);
    }
}
