//! What every host collector shares: where it reads ([`HostRoot`]), what it
//! is ([`HostCollector`]), what it reports ([`CollectStats`]), and the
//! registry that picks the collectors for the documents the loaded IOCs use
//! ([`collectors_for`]), so that a file-only collection never walks /proc.
//!
//! A collector hands each object to a [`Sink`] as a
//! [`crate::eval::Observation`]. Some fields cost I/O (hashes of the files a
//! process holds open): the observation answers [`crate::eval::Field::Pending`]
//! for them, the sink replies [`Reply::Need`] with the terms it needs, and the
//! collector computes them and hands the completed observation in once more.

use crate::eval::{ObjectRef, Observation};
use crate::terms::TermId;
use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Where the host's files are. `/` and `/proc` on a live host; a test or a
/// forensic image points them elsewhere (e.g. a temporary directory holding a
/// crafted `etc/passwd`). Paths are joined lexically: a symlink inside the
/// root that points to an absolute path still resolves on the live host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
    proc_root: PathBuf,
}

impl Default for HostRoot {
    fn default() -> Self {
        HostRoot::system()
    }
}

impl HostRoot {
    /// The live host: `/` and `/proc`.
    pub fn system() -> Self {
        HostRoot {
            root: PathBuf::from("/"),
            proc_root: PathBuf::from("/proc"),
        }
    }

    /// A host whose root is `root` (its /proc is `root/proc`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let proc_root = root.join("proc");
        HostRoot { root, proc_root }
    }

    /// Read /proc from `proc_root` instead.
    pub fn with_proc(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn proc(&self) -> &Path {
        &self.proc_root
    }

    /// The host's absolute path `abs` (`/etc/passwd`) under this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.root.join(abs.strip_prefix("/").unwrap_or(abs))
    }

    /// A path under the proc root (`net/tcp` → `/proc/net/tcp`).
    pub fn proc_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.proc_root.join(rel)
    }

    /// Whether this is the running host itself: only then do system calls
    /// (uname, getifaddrs, statvfs) describe the same host as the files.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/") && self.proc_root == Path::new("/proc")
    }
}

/// The terms the loaded IOCs use. Collectors skip work no term needs (open
/// handles, mapped libraries); `all()` collects everything.
#[derive(Debug, Clone, Default)]
pub struct Wanted(Option<HashSet<TermId>>);

impl Wanted {
    pub fn all() -> Self {
        Wanted(None)
    }

    pub fn terms(terms: impl IntoIterator<Item = TermId>) -> Self {
        Wanted(Some(terms.into_iter().collect()))
    }

    pub fn has(&self, term: TermId) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(&term))
    }

    /// Whether any term whose text starts with `prefix` is wanted.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        match &self.0 {
            None => true,
            Some(set) => set.iter().any(|t| t.text().starts_with(prefix)),
        }
    }
}

/// What a collector works with.
#[derive(Debug, Clone, Default)]
pub struct CollectContext {
    pub root: HostRoot,
    pub wanted: Wanted,
}

impl CollectContext {
    pub fn new(root: HostRoot, wanted: Wanted) -> Self {
        CollectContext { root, wanted }
    }
}

/// The sink's answer to one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Evaluated (matched or not): go on.
    Done,
    /// Some fields were [`crate::eval::Field::Pending`] and decide the
    /// outcome: compute these terms and hand the observation in again. The
    /// collector answers a second `Need` by going on.
    Need(Vec<TermId>),
}

/// Where a collector hands its observations.
pub type Sink<'a> = dyn FnMut(&dyn Observation) -> Reply + 'a;

/// Why one object (or one source) was missed. A collection never aborts on
/// one: it is counted and reported.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: larger than {limit} bytes, skipped")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path}:{line}: {reason}")]
    Malformed { path: PathBuf, line: u64, reason: String },
    #[error("{what}: only readable on the live host (the root is {root})")]
    NotLive { what: &'static str, root: PathBuf },
    #[error("{what}: {reason}")]
    Other { what: String, reason: String },
    /// Exists but was not read: a FIFO, a device, a symlink a user could
    /// have planted, a file of another user (see [`super::safe_read`]).
    #[error("{path}: {reason}, not read")]
    Refused {
        path: PathBuf,
        reason: super::safe_read::Refusal,
    },
    /// Only the first `limit` bytes were read.
    #[error("{path}: longer than {limit} bytes, the rest not read")]
    Truncated { path: PathBuf, limit: u64 },
}

/// How many problems a collection keeps in full; the rest are only counted.
pub const MAX_KEPT_ERRORS: usize = 64;

/// What one collection did.
#[derive(Debug, Default)]
pub struct CollectStats {
    pub document: &'static str,
    /// Observations handed to the sink.
    pub objects: u64,
    /// Processes that exited while being read (normal churn, not an error):
    /// they are left out rather than reported half-read.
    pub vanished: u64,
    /// Problems, first [`MAX_KEPT_ERRORS`] kept.
    pub errors: Vec<CollectError>,
    /// Problems beyond those kept.
    pub errors_dropped: u64,
}

impl CollectStats {
    pub fn new(document: &'static str) -> Self {
        CollectStats {
            document,
            ..Default::default()
        }
    }

    pub fn error(&mut self, e: CollectError) {
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(e);
        } else {
            self.errors_dropped += 1;
        }
    }

    pub fn read_error(&mut self, path: impl Into<PathBuf>, source: io::Error) {
        self.error(CollectError::Read { path: path.into(), source });
    }

    pub fn malformed(&mut self, path: impl Into<PathBuf>, line: u64, reason: impl Into<String>) {
        self.error(CollectError::Malformed {
            path: path.into(),
            line,
            reason: reason.into(),
        });
    }

    /// All problems, kept or not.
    pub fn error_count(&self) -> u64 {
        self.errors.len() as u64 + self.errors_dropped
    }

    /// Hand `obs` to the sink, and once more completed if it asks for terms.
    pub fn emit<O: Observation>(&mut self, sink: &mut Sink<'_>, obs: &mut O, complete: impl FnOnce(&mut O, &[TermId])) {
        self.objects += 1;
        if let Reply::Need(terms) = sink(obs) {
            complete(obs, &terms);
            sink(obs);
        }
    }
}

/// A collector of one document's objects on a host.
pub trait HostCollector: Send + Sync {
    /// The OpenIOC document it answers (`ProcessItem`...).
    fn document(&self) -> &'static str;
    /// Hand every object to `sink`; never aborts on one bad object.
    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats;
}

/// Every host collector, one per document.
pub fn all_collectors() -> Vec<Box<dyn HostCollector>> {
    use super::*;
    vec![
        Box::new(process::ProcessCollector),
        Box::new(port::PortCollector),
        Box::new(arp::ArpCollector),
        Box::new(route::RouteCollector),
        Box::new(system::SystemCollector),
        Box::new(system::AgentCollector),
        Box::new(user::UserCollector),
        Box::new(user::GroupCollector),
        Box::new(dns::DnsCollector),
        Box::new(module::ModuleCollector),
        Box::new(volume::VolumeCollector),
        Box::new(volume::DiskCollector),
        Box::new(login::LoginCollector),
        Box::new(logs::SudoLogCollector),
        Box::new(logs::SyslogCollector::syslog()),
        Box::new(logs::SyslogCollector::log()),
        Box::new(shell_history::ShellHistoryCollector),
        Box::new(task::TaskCollector),
    ]
}

/// The documents a host collector answers.
pub fn documents() -> Vec<&'static str> {
    all_collectors().iter().map(|c| c.document()).collect()
}

/// The collectors for the documents the loaded IOCs use (others' documents,
/// e.g. `FileItem`, are ignored).
pub fn collectors_for<'d>(documents: impl IntoIterator<Item = &'d str>) -> Vec<Box<dyn HostCollector>> {
    let wanted: HashSet<&str> = documents.into_iter().collect();
    all_collectors().into_iter().filter(|c| wanted.contains(c.document())).collect()
}

/// A host collector bound to a root and to the terms the loaded IOCs use,
/// as a scan runs it (beside the file walk, in its own thread).
pub struct ScanCollector {
    inner: Box<dyn HostCollector>,
    cx: CollectContext,
}

impl ScanCollector {
    pub fn new(inner: Box<dyn HostCollector>, cx: CollectContext) -> Self {
        ScanCollector { inner, cx }
    }
}

impl crate::scan::Collector for ScanCollector {
    fn document(&self) -> &'static str {
        self.inner.document()
    }

    fn collect(&self, evaluate: &mut dyn FnMut(&dyn Observation) -> crate::eval::Outcome) -> crate::scan::CollectorSummary {
        let mut sink = |obs: &dyn Observation| match evaluate(obs) {
            crate::eval::Outcome::NeedTerms(terms) => Reply::Need(terms.iter().collect()),
            _ => Reply::Done,
        };
        let stats = self.inner.collect(&self.cx, &mut sink);
        for e in &stats.errors {
            tracing::debug!(document = stats.document, "{e}");
        }
        crate::scan::CollectorSummary {
            document: stats.document,
            objects: stats.objects,
            errors: stats.error_count(),
        }
    }
}

/// The host collectors a compiled collection needs, ready for
/// [`crate::scan::Scan::with_collectors`]: one per document some IOC asks
/// about, each told which of its terms are used.
pub fn scan_collectors(compiled: &crate::eval::CompiledCollection, root: &HostRoot) -> Vec<Box<dyn crate::scan::Collector>> {
    let documents: Vec<&str> = compiled.documents().collect();
    collectors_for(documents.iter().copied())
        .into_iter()
        .map(|c| {
            let wanted = Wanted::terms(compiled.terms_used(c.document()).iter());
            Box::new(ScanCollector::new(c, CollectContext::new(root.clone(), wanted))) as Box<dyn crate::scan::Collector>
        })
        .collect()
}

/// Run `collectors` one after another on `cx`, handing everything to `sink`.
pub fn collect_all(collectors: &[Box<dyn HostCollector>], cx: &CollectContext, sink: &mut Sink<'_>) -> Vec<CollectStats> {
    collectors.iter().map(|c| c.collect(cx, sink)).collect()
}

/// Read a whole file of at most `limit` bytes (the host's small text files:
/// /etc/passwd, /proc/PID/stat...) in a root-controlled place: a regular
/// file only, never blocking ([`super::safe_read::read_system`]).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, CollectError> {
    super::safe_read::read_system(path, limit)
}

/// Size limit for configuration files (passwd, hosts, crontabs, units).
pub const CONFIG_LIMIT: u64 = 16 << 20;

/// Read a small text file, lossily decoded.
pub fn read_text(path: &Path) -> Result<String, CollectError> {
    read_bounded(path, CONFIG_LIMIT).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The entries of a line table (`/proc/net/arp`, `/proc/modules`...) of at
/// most `limit` bytes: `parse` reads each line after the `header` first;
/// blank lines are skipped, a line it refuses is reported as malformed
/// (`not_a` says what it is not), a read error goes to `stats` and leaves
/// no entries.
pub fn parse_lines<T>(
    path: &Path,
    limit: u64,
    header: usize,
    parse: impl Fn(&str) -> Option<T>,
    not_a: &str,
    stats: &mut CollectStats,
) -> Vec<T> {
    let text = match read_bounded(path, limit) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            stats.error(e);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(header) {
        match parse(line) {
            Some(entry) => out.push(entry),
            None if line.trim().is_empty() => {}
            None => stats.malformed(path, n as u64 + 1, not_a),
        }
    }
    out
}

/// Build an [`ObjectRef`] from `(name, value)` pairs, leaving out nulls.
pub fn object_ref(kind: &'static str, fields: impl IntoIterator<Item = (&'static str, serde_json::Value)>) -> ObjectRef {
    let fields = fields
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    ObjectRef { kind, fields }
}

/// Field helpers for observations.
pub(crate) mod field {
    use crate::eval::{Field, Value};
    use std::borrow::Cow;
    use std::net::IpAddr;

    pub fn str(s: &str) -> Field<'_> {
        Field::One(Value::Str(Cow::Borrowed(s)))
    }

    pub fn opt_str(s: Option<&str>) -> Field<'_> {
        s.map_or(Field::Absent, str)
    }

    pub fn owned(s: String) -> Field<'static> {
        Field::One(Value::Str(Cow::Owned(s)))
    }

    pub fn int(i: i64) -> Field<'static> {
        Field::One(Value::Int(i))
    }

    pub fn opt_int(i: Option<i64>) -> Field<'static> {
        i.map_or(Field::Absent, int)
    }

    pub fn uint(u: u64) -> Field<'static> {
        Field::One(Value::UInt(u))
    }

    pub fn opt_uint(u: Option<u64>) -> Field<'static> {
        u.map_or(Field::Absent, uint)
    }

    pub fn time(t: Option<i64>) -> Field<'static> {
        t.map_or(Field::Absent, |t| Field::One(Value::Time(t)))
    }

    pub fn bool(b: bool) -> Field<'static> {
        Field::One(Value::Bool(b))
    }

    pub fn ip(ip: Option<IpAddr>) -> Field<'static> {
        ip.map_or(Field::Absent, |ip| Field::One(Value::Ip(ip)))
    }

    pub fn ips(ips: impl IntoIterator<Item = IpAddr>) -> Field<'static> {
        Field::Values(ips.into_iter().map(Value::Ip).collect())
    }

    pub fn duration(d: Option<u64>) -> Field<'static> {
        d.map_or(Field::Absent, |d| Field::One(Value::Duration(d)))
    }
}

/// Resolve user ids to names from the root's /etc/passwd (not NSS: a
/// forensic root's users are its own).
#[derive(Debug, Default, Clone)]
pub struct UserNames(std::collections::HashMap<u32, String>);

impl UserNames {
    pub fn load(root: &HostRoot) -> Self {
        let mut map = std::collections::HashMap::new();
        if let Ok(text) = read_text(&root.path("/etc/passwd")) {
            for line in text.lines() {
                let mut parts = line.split(':');
                let (Some(name), Some(_), Some(uid)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                if let Ok(uid) = uid.parse::<u32>() {
                    map.entry(uid).or_insert_with(|| name.to_string());
                }
            }
        }
        UserNames(map)
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        self.0.get(&uid).map(String::as_str)
    }
}

/// Longest line kept of a log or history file; the rest of a longer line is
/// dropped (the line is still counted).
pub const MAX_LINE: usize = 64 << 10;

/// Call `f` with each line (without its `\n`, at most `max_line` bytes) and
/// its 1-based number, never holding more than one line in memory.
pub fn for_each_line(reader: impl Read, max_line: usize, mut f: impl FnMut(u64, &[u8])) -> io::Result<()> {
    use std::io::BufRead;
    let mut reader = io::BufReader::with_capacity(64 << 10, reader);
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !line.is_empty() {
                n += 1;
                f(n, &line);
            }
            return Ok(());
        }
        let (chunk, done, used) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true, i + 1),
            None => (buf, false, buf.len()),
        };
        let room = max_line.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if done {
            n += 1;
            f(n, &line);
            line.clear();
        }
    }
}

/// Digests of one file's content; each only when asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    pub md5: Option<[u8; 16]>,
    pub sha1: Option<[u8; 20]>,
    pub sha256: Option<[u8; 32]>,
}

/// Which digests to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestKinds {
    pub md5: bool,
    pub sha1: bool,
    pub sha256: bool,
}

impl DigestKinds {
    pub fn any(self) -> bool {
        self.md5 || self.sha1 || self.sha256
    }
}

/// Hash `reader` to its end (streamed, 64 KiB at a time). The caller bounds
/// the reader: a host file is hashed through [`super::safe_read::HostFile::digest`].
pub fn digest(mut reader: impl Read, kinds: DigestKinds) -> io::Result<Digests> {
    use md5::Digest as _;
    let mut md5 = kinds.md5.then(md5::Md5::new);
    let mut sha1 = kinds.sha1.then(sha1::Sha1::new);
    let mut sha256 = kinds.sha256.then(sha2::Sha256::new);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(h) = md5.as_mut() {
            h.update(&buf[..n]);
        }
        if let Some(h) = sha1.as_mut() {
            h.update(&buf[..n]);
        }
        if let Some(h) = sha256.as_mut() {
            h.update(&buf[..n]);
        }
    }
    Ok(Digests {
        md5: md5.map(|h| h.finalize().into()),
        sha1: sha1.map(|h| h.finalize().into()),
        sha256: sha256.map(|h| h.finalize().into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::ids;

    #[test]
    fn host_root_joins_absolute_paths_under_the_root() {
        let root = HostRoot::new("/tmp/x");
        assert_eq!(root.path("/etc/passwd"), Path::new("/tmp/x/etc/passwd"));
        assert_eq!(root.proc_path("net/tcp"), Path::new("/tmp/x/proc/net/tcp"));
        assert!(!root.is_live());
        assert!(HostRoot::system().is_live());
    }

    #[test]
    fn registry_picks_only_the_documents_asked_for() {
        let picked = collectors_for(["FileItem", "ProcessItem", "UserItem"]);
        let docs: Vec<_> = picked.iter().map(|c| c.document()).collect();
        assert_eq!(docs, ["ProcessItem", "UserItem"]);
        assert!(collectors_for(["FileItem"]).is_empty());
        let all = documents();
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "one collector per document");
    }

    #[test]
    fn lines_are_bounded() {
        let mut got = Vec::new();
        for_each_line(&b"ab\ncdefgh\n\nlast"[..], 3, |n, l| got.push((n, l.to_vec()))).unwrap();
        assert_eq!(got, [(1, b"ab".to_vec()), (2, b"cde".to_vec()), (3, vec![]), (4, b"las".to_vec())]);
    }

    #[test]
    fn wanted_terms() {
        let w = Wanted::terms([ids::ProcessItem_HandleList_Handle_Md5sum]);
        assert!(w.has(ids::ProcessItem_HandleList_Handle_Md5sum));
        assert!(!w.has(ids::ProcessItem_pid));
        assert!(w.has_prefix("ProcessItem/HandleList/"));
        assert!(!w.has_prefix("ProcessItem/PortList/"));
        assert!(Wanted::all().has(ids::ProcessItem_pid));
    }
}
