//! One read pass over a file's content: every byte read once, into a
//! per-thread buffer, and fed to only the hashers the matcher asked for and
//! to the content-pattern search (IOC literals of `FileItem/StringList`),
//! which carries its own state across reads (a literal straddling two reads
//! is found: see `eval::content`).

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
    /// Feed the content to the pattern search.
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

/// Where the content goes besides the hashers: the streaming search of the
/// IOC literals.
pub trait ContentSink {
    /// The next bytes of the file, in order, each byte once.
    fn feed(&mut self, chunk: &[u8]);
    /// Nothing more to learn from further bytes (every pattern found).
    fn done(&self) -> bool {
        false
    }
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
    /// Reading stopped before the end: nothing computed needed more bytes.
    pub stopped_early: bool,
}

/// Per-thread reader: owns the read buffer.
pub struct ContentReader {
    buf: Vec<u8>,
    read_size: usize,
}

impl Default for ContentReader {
    fn default() -> Self {
        ContentReader::new(READ_SIZE)
    }
}

impl ContentReader {
    pub fn new(read_size: usize) -> ContentReader {
        ContentReader {
            buf: Vec::new(),
            read_size: read_size.max(1),
        }
    }

    /// Read `file` (stat'ed at `expected_size` bytes) to its end, but no more
    /// than `limit` bytes, computing what `needs` asks for.
    pub fn read(
        &mut self,
        file: &mut File,
        expected_size: u64,
        limit: u64,
        needs: ContentNeeds,
        sink: Option<&mut dyn ContentSink>,
    ) -> std::io::Result<(Digests, ReadReport)> {
        if expected_size > self.read_size as u64 {
            // Ask for aggressive readahead; errors are irrelevant.
            let _ = rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::Sequential);
        }
        self.read_from(file, expected_size, limit, needs, sink)
    }

    /// [`ContentReader::read`] on any reader (tests, in-memory content).
    pub fn read_from(
        &mut self,
        file: &mut impl Read,
        expected_size: u64,
        limit: u64,
        needs: ContentNeeds,
        sink: Option<&mut dyn ContentSink>,
    ) -> std::io::Result<(Digests, ReadReport)> {
        if self.buf.len() < self.read_size {
            self.buf.resize(self.read_size, 0);
        }
        let mut sink = sink.filter(|_| needs.strings);
        let mut md5 = needs.md5.then(Md5::new);
        let mut sha1 = needs.sha1.then(Sha1::new);
        let mut sha256 = needs.sha256.then(Sha256::new);
        let mut report = ReadReport::default();

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
            let n = read_retry(file, &mut self.buf[..room])?;
            if n == 0 {
                break;
            }
            report.bytes_read += n as u64;
            // A read that did not fill the buffer and reached the stat'ed
            // size met the end of the file: skip the read() that would
            // return 0 (most files are read in one call).
            let at_end = n < room && report.bytes_read == expected_size;
            let new = &self.buf[..n];
            if let Some(h) = md5.as_mut() {
                h.update(new);
            }
            if let Some(h) = sha1.as_mut() {
                h.update(new);
            }
            if let Some(h) = sha256.as_mut() {
                h.update(new);
            }
            let mut searching = false;
            if let Some(search) = sink.as_mut() {
                if !search.done() {
                    search.feed(new);
                    searching = !search.done();
                }
            }
            if !searching && md5.is_none() && sha1.is_none() && sha256.is_none() {
                // Only the search wanted the bytes, and it has seen enough.
                report.stopped_early = !at_end;
                break;
            }
            if at_end {
                break;
            }
        }
        report.grew = report.bytes_read > expected_size;
        report.shrank = report.bytes_read < expected_size && !report.truncated && !report.stopped_early;
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
        ContentNeeds {
            md5: true,
            sha1: true,
            sha256: true,
            strings: true,
        }
    }

    #[test]
    fn digests_match_known_values() {
        let mut r = ContentReader::new(7);
        let data = b"The quick brown fox jumps over the lazy dog";
        let (d, rep) = r
            .read_from(&mut &data[..], data.len() as u64, u64::MAX, all(), None)
            .unwrap();
        assert_eq!(hex::encode(d.md5.unwrap()), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(hex::encode(d.sha1.unwrap()), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
        assert_eq!(
            hex::encode(d.sha256.unwrap()),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
        assert_eq!(
            rep,
            ReadReport {
                bytes_read: 43,
                ..Default::default()
            }
        );
    }

    #[test]
    fn only_needed_digests_are_computed() {
        let mut r = ContentReader::default();
        let needs = ContentNeeds {
            sha1: true,
            ..Default::default()
        };
        let (d, _) = r.read_from(&mut &b"x"[..], 1, u64::MAX, needs, None).unwrap();
        assert!(d.md5.is_none() && d.sha256.is_none() && d.sha1.is_some());
    }

    /// Records what it is fed.
    #[derive(Default)]
    struct Tape(Vec<u8>, usize);

    impl ContentSink for Tape {
        fn feed(&mut self, chunk: &[u8]) {
            self.0.extend_from_slice(chunk);
            self.1 += 1;
        }
    }

    #[test]
    fn the_sink_sees_every_byte_once_in_order() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut r = ContentReader::new(64);
        let mut tape = Tape::default();
        r.read_from(&mut &data[..], 1000, u64::MAX, all(), Some(&mut tape))
            .unwrap();
        assert_eq!(tape.0, data);
        assert_eq!(tape.1, 1000usize.div_ceil(64));
        // Not fed when strings are not needed.
        let mut tape = Tape::default();
        let needs = ContentNeeds {
            md5: true,
            ..Default::default()
        };
        r.read_from(&mut &data[..], 1000, u64::MAX, needs, Some(&mut tape))
            .unwrap();
        assert!(tape.0.is_empty());
    }

    /// Counts read calls.
    struct Calls<'a>(&'a [u8], usize);

    impl Read for Calls<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 += 1;
            self.0.read(buf)
        }
    }

    #[test]
    fn a_small_file_of_the_stated_size_takes_one_read_call() {
        let mut r = ContentReader::new(64);
        let needs = ContentNeeds {
            sha256: true,
            ..Default::default()
        };
        let mut calls = Calls(b"0123456789", 0);
        let (_, rep) = r.read_from(&mut calls, 10, u64::MAX, needs, None).unwrap();
        assert_eq!((calls.1, rep.bytes_read), (1, 10));
        // A buffer-full read cannot tell the end: one more call.
        let mut r = ContentReader::new(10);
        let mut calls = Calls(b"0123456789", 0);
        r.read_from(&mut calls, 10, u64::MAX, needs, None).unwrap();
        assert_eq!(calls.1, 2);
    }

    #[test]
    fn growing_shrinking_and_limited_files_are_noted() {
        let mut r = ContentReader::new(4);
        let needs = ContentNeeds {
            sha256: true,
            ..Default::default()
        };
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
    fn nothing_needed_stops_after_the_first_read() {
        let mut r = ContentReader::new(2);
        let (d, rep) = r
            .read_from(&mut &b"abcdef"[..], 6, u64::MAX, ContentNeeds::default(), None)
            .unwrap();
        assert_eq!(d, Digests::default());
        assert!(rep.stopped_early && !rep.shrank && rep.bytes_read == 2);
    }
}
