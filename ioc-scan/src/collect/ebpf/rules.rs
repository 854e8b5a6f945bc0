//! Which indicators the kernel programs can decide on their own, turned
//! into kill and block lists.
//!
//! An item can act alone when its truth makes the whole IOC true: it is
//! the root, or a child of an OR that acts alone, or the only child of an
//! AND that acts alone. Such items, not negated, with `is`:
//! - `ProcessItem/name`, `eventItem/processEvent/process` (at most 15
//!   bytes, the kernel's `comm`) → kill by name;
//! - `ProcessItem/path`, `eventItem/processEvent/processPath` → kill by path
//!   (as given to execve) and by the file's device + inode when it is a
//!   regular file there now;
//! - `FileItem/Md5sum|Sha1sum|Sha256sum`, `eventItem/processEvent/md5` →
//!   kill by device + inode of every IOC-named path whose content has that
//!   hash (a quick hash pass, bounded in files, bytes and time);
//! - `PortItem/remoteIP|remotePort`, `eventItem/ipv4NetworkEvent/remoteIP|
//!   remotePort` → block; an AND of exactly one remote address and one
//!   remote port blocks the pair.
//!
//! Everything else is decided by the evaluator in user space (and, with
//! `--kill`, enforced there through a pidfd).
//!
//! An inode is taken from a path a local user may control (`/tmp/x`, a
//! home directory): the path is walked without following any symlink
//! ([`fsx::locate`]), opened with `O_NOFOLLOW | O_NONBLOCK` and checked on
//! the descriptor (a regular file; for a path rule, no other hard link),
//! so that a symlink, hard link or FIFO put there cannot put another
//! program (bash) on the kill list or hang the start. The executables of
//! init, ioc-scan and its ancestors are never put on it.

use crate::indicator::{Condition, Ioc, Item, Node, NodeId, Operator};
use crate::respond::fsx;
use ioc_scan_common::{COMM_LEN, MATCH_CASELESS, MATCH_EXACT, PATH_LEN};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// A process name or path to kill at exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    /// `preserve-case="true"`: compare exactly (else ASCII case-insensitively).
    pub preserve_case: bool,
}

/// The kill lists for the exec program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillRules {
    pub names: Vec<Pattern>,
    pub paths: Vec<Pattern>,
    /// (device as `stat` gives it, inode).
    pub inodes: Vec<(u64, u64)>,
    /// Where each inode came from (path, and why), for the report.
    pub inode_sources: Vec<String>,
    /// Items that could act alone but the kernel cannot compare (a name
    /// longer than the kernel's 15-byte comm, a path longer than the key):
    /// left to user space.
    pub user_space_only: Vec<String>,
    /// IOC-named paths whose inode was not put on the kill list, and why
    /// (a symlink, not a regular file, other hard links, a protected
    /// executable, over the hash pass's budget).
    pub inodes_refused: Vec<String>,
}

impl KillRules {
    /// Keys and `MATCH_*` values for the name map.
    pub fn comm_keys(&self) -> Vec<([u8; COMM_LEN], u32)> {
        keys::<COMM_LEN>(&self.names)
    }

    /// Keys and `MATCH_*` values for the path map.
    pub fn path_keys(&self) -> Vec<([u8; PATH_LEN], u32)> {
        keys::<PATH_LEN>(&self.paths)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.paths.is_empty() && self.inodes.is_empty()
    }
}

/// Zero-padded keys (text < N bytes, so a NUL always follows), case-folded
/// unless case is preserved; one value per key with the `MATCH_*` bits of
/// every pattern that produced it.
fn keys<const N: usize>(patterns: &[Pattern]) -> Vec<([u8; N], u32)> {
    let mut out: BTreeMap<[u8; N], u32> = BTreeMap::new();
    for p in patterns {
        let bytes = p.text.as_bytes();
        if bytes.is_empty() || bytes.len() >= N {
            continue;
        }
        let mut key = [0u8; N];
        key[..bytes.len()].copy_from_slice(bytes);
        let bit = if p.preserve_case {
            MATCH_EXACT
        } else {
            key.make_ascii_lowercase();
            MATCH_CASELESS
        };
        *out.entry(key).or_default() |= bit;
    }
    out.into_iter().collect()
}

/// A destination to refuse: `None` = any address / any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRule {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    /// The IOC it comes from.
    pub ioc_id: String,
}

/// The nodes of `ioc` that make it true on their own.
fn sufficient_nodes(ioc: &Ioc) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut stack: Vec<NodeId> = ioc.root().into_iter().collect();
    while let Some(id) = stack.pop() {
        if id.0 as usize >= ioc.nodes.len() {
            continue;
        }
        out.push(id);
        if let Node::Indicator(ind) = ioc.node(id) {
            if ind.operator == Operator::Or || ind.children.len() == 1 {
                stack.extend(ind.children.iter().copied());
            }
        }
    }
    out
}

fn item_of(ioc: &Ioc, id: NodeId) -> Option<&Item> {
    match ioc.nodes.get(id.0 as usize)? {
        Node::Item(item) if item.condition == Condition::Is && !item.negate && item.evaluable() => Some(item),
        _ => None,
    }
}

fn term(item: &Item) -> &str {
    item.context.search.as_str()
}

/// Whether `item` is on one of `terms` (case-insensitively, as the reader
/// resolves terms).
fn term_is(item: &Item, terms: &[&str]) -> bool {
    terms.iter().any(|t| term(item).eq_ignore_ascii_case(t))
}

const NAME_TERMS: &[&str] = &["ProcessItem/name", "eventItem/processEvent/process"];
const PATH_TERMS: &[&str] = &["ProcessItem/path", "eventItem/processEvent/processPath"];
const REMOTE_IP_TERMS: &[&str] = &["PortItem/remoteIP", "eventItem/ipv4NetworkEvent/remoteIP"];
const REMOTE_PORT_TERMS: &[&str] = &["PortItem/remotePort", "eventItem/ipv4NetworkEvent/remotePort"];

/// The kill lists of a collection (see the module docs).
pub fn kill_rules(iocs: &[Ioc]) -> KillRules {
    let mut rules = KillRules::default();
    let mut hashes: Vec<(String, String)> = Vec::new(); // (algorithm, lowercase hex)
    for ioc in iocs {
        for id in sufficient_nodes(ioc) {
            let Some(item) = item_of(ioc, id) else { continue };
            let value = item.content.value.trim();
            let pattern = Pattern {
                text: value.to_string(),
                preserve_case: item.preserve_case,
            };
            if term_is(item, NAME_TERMS) {
                if !value.is_empty() && value.len() < COMM_LEN {
                    rules.names.push(pattern);
                } else {
                    rules.user_space_only.push(format!(
                        "{}: {} {value:?} is longer than the kernel's 15-byte process name",
                        ioc.id,
                        term(item)
                    ));
                }
            } else if term_is(item, PATH_TERMS) {
                if !value.is_empty() && value.len() < PATH_LEN {
                    rules.paths.push(pattern);
                } else {
                    rules.user_space_only.push(format!(
                        "{}: {} {value:?} is too long for the kernel's path key",
                        ioc.id,
                        term(item)
                    ));
                }
                match path_inode(value) {
                    Ok(inode) => {
                        rules.inodes.push(inode);
                        rules.inode_sources.push(format!("{value} ({} of {})", term(item), ioc.id));
                    }
                    Err(InodeRefusal::Absent) => {}
                    Err(InodeRefusal::Unsafe(why)) => rules.inodes_refused.push(format!("{value}: {why}")),
                }
            } else if term_is(item, &["eventItem/processEvent/md5"]) {
                hashes.push(("Md5sum".to_string(), value.to_ascii_lowercase()));
            } else {
                for algo in ["Md5sum", "Sha1sum", "Sha256sum"] {
                    if term(item).eq_ignore_ascii_case(&format!("FileItem/{algo}")) {
                        hashes.push((algo.to_string(), value.to_ascii_lowercase()));
                    }
                }
            }
        }
    }
    if !hashes.is_empty() {
        let pass = hash_pass(iocs, &hashes, &HashBudget::default());
        rules.inodes_refused.extend(pass.skipped);
        for (path, dev, ino, algo) in pass.found {
            if !rules.inodes.contains(&(dev, ino)) {
                rules.inodes.push((dev, ino));
                rules.inode_sources.push(format!("{path} ({algo} named by an IOC)"));
            }
        }
    }
    let protected = protected_executables();
    let mut i = 0;
    while i < rules.inodes.len() {
        if protected.contains(&rules.inodes[i]) {
            rules.inodes.remove(i);
            let source = rules.inode_sources.remove(i);
            rules.inodes_refused.push(format!(
                "{source}: the executable of init, ioc-scan or one of its ancestors is never killed by inode"
            ));
        } else {
            i += 1;
        }
    }
    rules
}

/// Why a path gives no inode rule.
#[derive(Debug, PartialEq, Eq)]
enum InodeRefusal {
    /// Nothing there now (the path rule still applies).
    Absent,
    /// Something is there that must not be killed by inode.
    Unsafe(String),
}

/// The parent directory of `path`, walked without following symlinks.
fn locate(path: &str) -> Result<fsx::Located, InodeRefusal> {
    fsx::locate(path.as_bytes()).map_err(|e| match e {
        fsx::LocateError::Dir { source, .. } if source.kind() == std::io::ErrorKind::NotFound => InodeRefusal::Absent,
        e => InodeRefusal::Unsafe(e.to_string()),
    })
}

/// Open the file at `path` the way a path a local user may control must be
/// opened: no symlink followed at any component, never blocking (a FIFO),
/// no access time changed; a regular file, checked on the descriptor.
fn open_regular(path: &str) -> Result<(std::fs::File, nix::sys::stat::FileStat), InodeRefusal> {
    let located = locate(path)?;
    match located.lstat() {
        Err(nix::errno::Errno::ENOENT) => return Err(InodeRefusal::Absent),
        Err(e) => return Err(InodeRefusal::Unsafe(e.to_string())),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
            return Err(InodeRefusal::Unsafe("a symlink (not followed)".into()))
        }
        Ok(_) => {}
    }
    located.open_regular().map_err(|e| InodeRefusal::Unsafe(e.to_string()))
}

/// The inode of the executable at an IOC-named process path: a regular
/// file with no other name (a hard link would put the other name's
/// program on the kill list too).
fn path_inode(path: &str) -> Result<(u64, u64), InodeRefusal> {
    let located = locate(path)?;
    // O_PATH: names the file without opening its content (no FIFO wait, no
    // lease break); the type and links are read from that descriptor.
    let fd = nix::fcntl::openat(
        located.dir.as_fd(),
        located.name.as_c_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENOENT => InodeRefusal::Absent,
        e => InodeRefusal::Unsafe(e.to_string()),
    })?;
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| InodeRefusal::Unsafe(e.to_string()))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFLNK => return Err(InodeRefusal::Unsafe("a symlink (not followed)".into())),
        _ => return Err(InodeRefusal::Unsafe("not a regular file".into())),
    }
    if st.st_nlink != 1 {
        return Err(InodeRefusal::Unsafe(format!(
            "the file has {} hard links: killing its inode would kill the other names too",
            st.st_nlink
        )));
    }
    Ok((st.st_dev, st.st_ino))
}

/// (device, inode) of the executables of pid 1, ioc-scan and its ancestors.
fn protected_executables() -> Vec<(u64, u64)> {
    let mut pids = vec![1, std::process::id()];
    pids.extend(crate::respond::protect::ancestors().into_iter().map(|(p, _)| p));
    pids.into_iter().filter_map(crate::respond::protect::exe_inode).collect()
}

/// What the start-up hash pass may spend (it runs before monitoring
/// starts, on paths a local user may fill).
#[derive(Debug, Clone)]
struct HashBudget {
    /// Files larger than this are not hashed.
    max_file_bytes: u64,
    /// At most this many IOC-named paths are hashed.
    max_files: usize,
    /// At most this many bytes in all.
    max_total_bytes: u64,
    /// And for at most this long.
    max_time: Duration,
}

impl Default for HashBudget {
    fn default() -> Self {
        HashBudget {
            max_file_bytes: 256 << 20,
            max_files: 1000,
            max_total_bytes: 1 << 30,
            max_time: Duration::from_secs(30),
        }
    }
}

/// What the hash pass found, and what it left out (with why).
#[derive(Debug, Default)]
struct HashPass {
    found: Vec<(String, u64, u64, String)>,
    skipped: Vec<String>,
}

/// Hash every regular file an IOC names by path (`FileItem/FullPath`,
/// `ProcessItem/path`, `is`) and return those whose hash is listed.
fn hash_pass(iocs: &[Ioc], hashes: &[(String, String)], budget: &HashBudget) -> HashPass {
    use sha2::Digest;
    let mut paths: Vec<&str> = Vec::new();
    for ioc in iocs {
        for item in ioc.items() {
            let t = term(item);
            if item.condition == Condition::Is
                && !item.negate
                && item.evaluable()
                && (t.eq_ignore_ascii_case("FileItem/FullPath") || term_is(item, PATH_TERMS))
            {
                let p = item.content.value.trim();
                if p.starts_with('/') && !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
    }
    let mut out = HashPass::default();
    if paths.len() > budget.max_files {
        out.skipped.push(format!(
            "{} paths named, only the first {} hashed",
            paths.len(),
            budget.max_files
        ));
    }
    let deadline = Instant::now() + budget.max_time;
    let mut total: u64 = 0;
    for path in paths.into_iter().take(budget.max_files) {
        // The budget is checked before each file is opened.
        if Instant::now() >= deadline || total >= budget.max_total_bytes {
            out.skipped.push(format!("{path}: not hashed, the start-up hash pass's budget is spent"));
            continue;
        }
        let (mut file, st) = match open_regular(path) {
            Ok(f) => f,
            Err(InodeRefusal::Absent) => continue,
            Err(InodeRefusal::Unsafe(why)) => {
                out.skipped.push(format!("{path}: {why}"));
                continue;
            }
        };
        let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
        if size > budget.max_file_bytes || total.saturating_add(size) > budget.max_total_bytes {
            out.skipped.push(format!("{path}: {size} bytes, over the start-up hash pass's budget"));
            continue;
        }
        let (mut md5, mut sha1, mut sha256) = (md5::Md5::new(), sha1::Sha1::new(), sha2::Sha256::new());
        let mut buf = vec![0u8; 64 * 1024];
        let mut read: u64 = 0;
        let ok = loop {
            // The file may grow after the fstat: never read past its budget.
            if read > budget.max_file_bytes || Instant::now() >= deadline {
                break false;
            }
            match file.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    read += n as u64;
                    md5.update(&buf[..n]);
                    sha1.update(&buf[..n]);
                    sha256.update(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        total = total.saturating_add(read);
        if !ok {
            out.skipped.push(format!("{path}: not read to the end within the budget"));
            continue;
        }
        let digests = [
            ("Md5sum", hex::encode(md5.finalize())),
            ("Sha1sum", hex::encode(sha1.finalize())),
            ("Sha256sum", hex::encode(sha256.finalize())),
        ];
        for (algo, digest) in digests {
            if hashes.iter().any(|(a, h)| a == algo && *h == digest) {
                // The inode of the descriptor that was hashed, not of
                // whatever the path names now.
                out.found.push((path.to_string(), st.st_dev, st.st_ino, algo.to_string()));
                break;
            }
        }
    }
    out
}

/// The block list of a collection (see the module docs).
pub fn block_rules(iocs: &[Ioc]) -> Vec<BlockRule> {
    let mut out = Vec::new();
    for ioc in iocs {
        for id in sufficient_nodes(ioc) {
            match ioc.node(id) {
                Node::Item(_) => {
                    if let Some(rule) = item_of(ioc, id).and_then(block_item) {
                        let rule = match rule {
                            BlockPart::Ip(ip) => BlockRule {
                                ip: Some(ip),
                                port: None,
                                ioc_id: ioc.id.clone(),
                            },
                            BlockPart::Port(port) => BlockRule {
                                ip: None,
                                port: Some(port),
                                ioc_id: ioc.id.clone(),
                            },
                        };
                        out.push(rule);
                    }
                }
                Node::Indicator(ind) if ind.operator == Operator::And && ind.children.len() == 2 => {
                    let parts: Vec<Option<BlockPart>> = ind.children.iter().map(|c| item_of(ioc, *c).and_then(block_item)).collect();
                    if let [Some(BlockPart::Ip(ip)), Some(BlockPart::Port(port))] | [Some(BlockPart::Port(port)), Some(BlockPart::Ip(ip))] =
                        parts.as_slice()
                    {
                        out.push(BlockRule {
                            ip: Some(*ip),
                            port: Some(*port),
                            ioc_id: ioc.id.clone(),
                        });
                    }
                }
                Node::Indicator(_) => {}
            }
        }
    }
    out.dedup();
    out
}

enum BlockPart {
    Ip(IpAddr),
    Port(u16),
}

fn block_item(item: &Item) -> Option<BlockPart> {
    let value = item.content.value.trim();
    if term_is(item, REMOTE_IP_TERMS) {
        value.parse().ok().map(BlockPart::Ip)
    } else if term_is(item, REMOTE_PORT_TERMS) {
        value.parse().ok().filter(|p| *p != 0).map(BlockPart::Port)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{Content, Context, Indicator, IocMeta, OpenIocVersion, Position};
    use std::os::unix::fs::MetadataExt;

    fn item(search: &str, value: &str) -> Node {
        Node::Item(Item {
            id: format!("i-{search}"),
            condition: Condition::Is,
            context: Context {
                document: search.split('/').next().unwrap().into(),
                search: search.into(),
                context_type: "mir".into(),
            },
            content: Content {
                content_type: "string".into(),
                value: value.into(),
            },
            negate: false,
            preserve_case: false,
            position: Position::default(),
            problem: None,
        })
    }

    fn ind(op: Operator, children: &[u32]) -> Node {
        Node::Indicator(Indicator {
            id: "ind".into(),
            operator: op,
            children: children.iter().map(|c| NodeId(*c)).collect(),
            position: Position::default(),
        })
    }

    fn ioc(nodes: Vec<Node>) -> Ioc {
        Ioc {
            id: "ioc-1".into(),
            version: OpenIocVersion::V1_1,
            meta: IocMeta::default(),
            nodes,
            source: "t.ioc".into(),
        }
    }

    #[test]
    fn items_under_or_act_alone_items_under_and_do_not() {
        // OR(name=evil, AND(name=both, path=/x), path=/opt/evil)
        let c = ioc(vec![
            ind(Operator::Or, &[1, 2, 5]),
            item("ProcessItem/name", "Evil"),
            ind(Operator::And, &[3, 4]),
            item("ProcessItem/name", "both"),
            item("ProcessItem/path", "/x"),
            item("ProcessItem/path", "/opt/evil"),
        ]);
        let rules = kill_rules(&[c]);
        assert_eq!(
            rules.names,
            vec![Pattern {
                text: "Evil".into(),
                preserve_case: false
            }]
        );
        assert_eq!(
            rules.paths,
            vec![Pattern {
                text: "/opt/evil".into(),
                preserve_case: false
            }]
        );
        // Case-folded key, MATCH_CASELESS.
        let keys = rules.comm_keys();
        assert_eq!(&keys[0].0[..5], b"evil\0");
        assert_eq!(keys[0].1, MATCH_CASELESS);
    }

    #[test]
    fn names_longer_than_comm_are_left_to_user_space() {
        let rules = kill_rules(&[ioc(vec![
            ind(Operator::Or, &[1]),
            item("ProcessItem/name", "a-very-long-process-name"),
        ])]);
        assert!(rules.names.is_empty());
        assert_eq!(rules.user_space_only.len(), 1);
    }

    #[test]
    fn negated_and_non_is_items_are_not_kernel_rules() {
        let mut n = item("ProcessItem/name", "evil");
        if let Node::Item(i) = &mut n {
            i.negate = true;
        }
        let mut c = item("ProcessItem/name", "evil2");
        if let Node::Item(i) = &mut c {
            i.condition = Condition::Contains;
        }
        let rules = kill_rules(&[ioc(vec![ind(Operator::Or, &[1, 2]), n, c])]);
        assert!(rules.is_empty());
    }

    #[test]
    fn ports_addresses_and_pairs_become_block_rules() {
        let c = ioc(vec![
            ind(Operator::Or, &[1, 2, 3]),
            item("PortItem/remoteIP", "127.0.0.2"),
            item("PortItem/remotePort", "4444"),
            ind(Operator::And, &[4, 5]),
            item("PortItem/remotePort", "8443"),
            item("PortItem/remoteIP", "::1"),
        ]);
        let rules = block_rules(&[c]);
        let pairs: Vec<_> = rules.iter().map(|r| (r.ip, r.port)).collect();
        assert!(pairs.contains(&(Some("127.0.0.2".parse().unwrap()), None)));
        assert!(pairs.contains(&(None, Some(4444))));
        assert!(pairs.contains(&(Some("::1".parse().unwrap()), Some(8443))));
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn and_with_other_items_is_not_a_block_rule() {
        let c = ioc(vec![
            ind(Operator::And, &[1, 2]),
            item("PortItem/remoteIP", "127.0.0.2"),
            item("ProcessItem/name", "curl"),
        ]);
        assert!(block_rules(std::slice::from_ref(&c)).is_empty());
        assert!(kill_rules(&[c]).is_empty());
    }

    #[test]
    fn a_hash_named_with_a_path_kills_that_file_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("evil-bin");
        std::fs::write(&file, b"evil payload").unwrap();
        let sha256 = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(b"evil payload"))
        };
        let path = file.to_str().unwrap();
        let c = ioc(vec![
            ind(Operator::Or, &[1, 2]),
            item("FileItem/Sha256sum", &sha256.to_uppercase()),
            // The path alone (under AND) is not a kill rule; it names the file to hash.
            ind(Operator::And, &[3, 4]),
            item("FileItem/FullPath", path),
            item("FileItem/SizeInBytes", "12"),
        ]);
        let rules = kill_rules(&[c]);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(rules.inodes, vec![(meta.dev(), meta.ino())]);
        assert!(rules.paths.is_empty());
    }

    #[test]
    fn process_and_network_event_items_become_kill_and_block_rules_like_their_item_twins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("evil-exe");
        std::fs::write(&file, b"md5 me").unwrap();
        let md5 = {
            use md5::Digest;
            hex::encode(md5::Md5::digest(b"md5 me"))
        };
        let path = file.to_str().unwrap();
        let c = ioc(vec![
            ind(Operator::Or, &[1, 2, 3, 4, 5, 6]),
            item("eventItem/processEvent/process", "evil"),
            item("eventItem/processEvent/processPath", "/opt/evil"),
            item("eventItem/processEvent/md5", &md5),
            item("eventItem/ipv4NetworkEvent/remoteIP", "127.0.0.7"),
            item("eventItem/ipv4NetworkEvent/remotePort", "6667"),
            // Names the file the md5 pass hashes.
            item("FileItem/FullPath", path),
        ]);
        let kill = kill_rules(std::slice::from_ref(&c));
        assert_eq!(kill.names, vec![Pattern { text: "evil".into(), preserve_case: false }]);
        assert_eq!(kill.paths, vec![Pattern { text: "/opt/evil".into(), preserve_case: false }]);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(kill.inodes, vec![(meta.dev(), meta.ino())]);
        let mut block: Vec<_> = block_rules(&[c]).iter().map(|r| (r.ip, r.port)).collect();
        block.sort();
        assert_eq!(block, vec![(None, Some(6667)), (Some("127.0.0.7".parse().unwrap()), None)]);
    }

    #[test]
    fn a_symlink_at_a_process_path_gives_no_inode_rule() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("bash");
        std::fs::write(&other, b"a program every user runs").unwrap();
        let named = dir.path().join("x");
        std::os::unix::fs::symlink(&other, &named).unwrap();
        // Through a symlinked directory too.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("d")).unwrap();
        let via_dir = dir.path().join("d/bash");
        let rules = kill_rules(&[ioc(vec![
            ind(Operator::Or, &[1, 2]),
            item("ProcessItem/path", named.to_str().unwrap()),
            item("ProcessItem/path", via_dir.to_str().unwrap()),
        ])]);
        assert!(rules.inodes.is_empty(), "{:?}", rules.inode_sources);
        assert_eq!(rules.paths.len(), 2, "the path rules stay");
        assert_eq!(rules.inodes_refused.len(), 2, "{:?}", rules.inodes_refused);
    }

    #[test]
    fn a_hard_link_or_a_fifo_at_a_process_path_gives_no_inode_rule() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("bash");
        std::fs::write(&other, b"a program every user runs").unwrap();
        let linked = dir.path().join("x");
        std::fs::hard_link(&other, &linked).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let rules = kill_rules(&[ioc(vec![
            ind(Operator::Or, &[1, 2, 3]),
            item("ProcessItem/path", linked.to_str().unwrap()),
            item("ProcessItem/path", fifo.to_str().unwrap()),
            item("ProcessItem/path", dir.path().join("absent").to_str().unwrap()),
        ])]);
        assert!(rules.inodes.is_empty());
        let refused = rules.inodes_refused.join("\n");
        assert!(refused.contains("hard links"), "{refused}");
        assert!(refused.contains("fifo"), "{refused}");
        assert!(!refused.contains("absent"), "nothing there is no refusal: {refused}");
    }

    #[test]
    fn the_hash_pass_never_blocks_on_a_fifo_and_keeps_to_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 4096]).unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"evil").unwrap();
        let sha256 = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(b"evil"))
        };
        let c = ioc(vec![
            ind(Operator::Or, &[1, 2, 3, 4]),
            item("FileItem/Sha256sum", &sha256),
            item("FileItem/FullPath", fifo.to_str().unwrap()),
            item("FileItem/FullPath", big.to_str().unwrap()),
            item("FileItem/FullPath", small.to_str().unwrap()),
        ]);
        let hashes = vec![("Sha256sum".to_string(), sha256)];
        // Opening the FIFO for reading would wait for a writer for ever.
        let pass = hash_pass(std::slice::from_ref(&c), &hashes, &HashBudget::default());
        assert_eq!(pass.found.len(), 1);
        assert!(pass.skipped.iter().any(|s| s.contains("fifo")), "{:?}", pass.skipped);
        let tight = HashBudget {
            max_file_bytes: 1024,
            ..HashBudget::default()
        };
        let pass = hash_pass(std::slice::from_ref(&c), &hashes, &tight);
        assert!(pass.skipped.iter().any(|s| s.contains("big") && s.contains("budget")), "{:?}", pass.skipped);
        let spent = HashBudget {
            max_total_bytes: 0,
            ..HashBudget::default()
        };
        let pass = hash_pass(&[c], &hashes, &spent);
        assert!(pass.found.is_empty(), "nothing hashed once the budget is spent");
    }
}
