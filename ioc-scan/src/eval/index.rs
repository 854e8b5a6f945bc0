//! The anchor index: which groups an object can possibly satisfy, found by
//! hashing its values instead of evaluating every group.
//!
//! A group's *anchor* is one item the group cannot be true without (reached
//! from the group's roots through AND nodes only), not negated, whose truth
//! implies that a key derived from the observed value is in a table:
//! - exact anchors: `is` on a string (key: the lowercased text), a single
//!   number, a digest, an IP address, or a content pattern id;
//! - substring anchors: `contains` / `starts-with` / `ends-with` / `is` on a
//!   case-insensitive string (an Aho-Corasick automaton per term over the
//!   lowercased literals).
//!
//! Among its possible anchors a group takes the one with the lowest score:
//! the number of groups sharing that key, +16 for a substring anchor, +64
//! for a term that costs I/O to observe (digests, file content): a pending
//! anchor term is requested from the collector for every object, so an
//! expensive anchor is only worth it when the cheap ones are shared by many
//! groups (`AND(FileExtension is exe, Md5sum is X)` × 100,000 anchors on the
//! digest, `AND(FileName is a, Md5sum is X)` on the name). Groups without
//! any anchor are evaluated for every object of their document.

use super::compare::CompiledItem;
use super::observation::Value;
use super::termset::TermSet;
use super::value::{
    as_digest, as_ip, as_num, as_text, fold_into, fold_owned, DigestBuf, NumKind, Operand,
};
use crate::indicator::Condition;
use crate::terms::TermId;
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::collections::HashMap;
use std::net::IpAddr;

/// What an anchor item requires of the observed value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum AnchorKey {
    Str(Box<str>),
    Bytes(Box<[u8]>),
    Num(NumKind, i128),
    Ip(IpAddr),
    Content(u32),
    Substr(Box<str>),
}

/// Terms whose observation costs I/O (the collector reports them
/// `Pending` first).
pub(crate) fn expensive(term: TermId) -> bool {
    super::content::searches_content(term)
        || matches!(term.def().display_type, "md5" | "sha1" | "sha256")
}

/// The keys `item` could anchor its group with.
pub(crate) fn anchor_keys(item: &CompiledItem, out: &mut Vec<AnchorKey>) {
    if item.negate {
        return;
    }
    match (&item.condition, &item.operand) {
        (Condition::Is, Operand::Str(s)) => {
            out.push(AnchorKey::Str(if item.preserve_case {
                fold_owned(&s.text).into()
            } else {
                s.text.clone()
            }));
            if !item.preserve_case && !s.text.is_empty() {
                out.push(AnchorKey::Substr(s.text.clone()));
            }
        }
        (Condition::Contains | Condition::StartsWith | Condition::EndsWith, Operand::Str(s))
            if !item.preserve_case && !s.text.is_empty() =>
        {
            out.push(AnchorKey::Substr(s.text.clone()))
        }
        (Condition::Is, Operand::Num { kind, lo, hi }) if lo == hi => {
            out.push(AnchorKey::Num(*kind, *lo))
        }
        (Condition::Is, Operand::Digest(d)) => out.push(AnchorKey::Bytes(d.clone())),
        (Condition::Is | Condition::Matches, Operand::Ip(a)) => out.push(AnchorKey::Ip(*a)),
        (_, Operand::Content { pattern, .. }) => out.push(AnchorKey::Content(*pattern)),
        _ => {}
    }
}

pub(crate) fn score(term: TermId, key: &AnchorKey, sharing: u32) -> u64 {
    let mut s = sharing as u64;
    if matches!(key, AnchorKey::Substr(_)) {
        s += 16;
    }
    if expensive(term) {
        s += 64;
    }
    s
}

/// Groups anchored on one term of one document.
#[derive(Debug)]
pub(crate) struct AnchorIndex {
    pub term: TermId,
    strs: HashMap<Box<str>, Vec<u32>>,
    bytes: HashMap<Box<[u8]>, Vec<u32>>,
    nums: Vec<(NumKind, HashMap<i128, Vec<u32>>)>,
    ips: HashMap<IpAddr, Vec<u32>>,
    content: HashMap<u32, Vec<u32>>,
    /// Groups anchored on a content pattern (all candidates when the
    /// observation gives the file's strings instead of pattern ids).
    content_all: Vec<u32>,
    substr_pending: HashMap<Box<str>, Vec<u32>>,
    substr: Option<(AhoCorasick, Vec<Vec<u32>>)>,
    /// Every term used by the groups anchored here: what to ask for when
    /// this anchor's field is pending.
    pub terms: TermSet,
}

impl AnchorIndex {
    pub(crate) fn new(term: TermId) -> Self {
        AnchorIndex {
            term,
            strs: HashMap::new(),
            bytes: HashMap::new(),
            nums: Vec::new(),
            ips: HashMap::new(),
            content: HashMap::new(),
            content_all: Vec::new(),
            substr_pending: HashMap::new(),
            substr: None,
            terms: TermSet::EMPTY,
        }
    }

    pub(crate) fn insert(&mut self, key: AnchorKey, group: u32) {
        match key {
            AnchorKey::Str(s) => self.strs.entry(s).or_default().push(group),
            AnchorKey::Bytes(b) => self.bytes.entry(b).or_default().push(group),
            AnchorKey::Num(kind, n) => {
                let at = match self.nums.iter().position(|(k, _)| *k == kind) {
                    Some(at) => at,
                    None => {
                        self.nums.push((kind, HashMap::new()));
                        self.nums.len() - 1
                    }
                };
                self.nums[at].1.entry(n).or_default().push(group)
            }
            AnchorKey::Ip(a) => self.ips.entry(a).or_default().push(group),
            AnchorKey::Content(p) => {
                self.content.entry(p).or_default().push(group);
                self.content_all.push(group);
            }
            AnchorKey::Substr(s) => self.substr_pending.entry(s).or_default().push(group),
        }
    }

    /// Build the substring automaton once every group is inserted.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        if self.substr_pending.is_empty() {
            return Ok(());
        }
        let mut pats = Vec::with_capacity(self.substr_pending.len());
        let mut groups = Vec::with_capacity(self.substr_pending.len());
        for (p, g) in std::mem::take(&mut self.substr_pending) {
            pats.push(p);
            groups.push(g);
        }
        // A DFA costs up to a kilobyte per pattern byte: only for small
        // sets (what the compile budget charges is the contiguous NFA's).
        let bytes: usize = pats.iter().map(|p| p.len()).sum();
        let kind = (bytes > 64 << 10).then_some(AhoCorasickKind::ContiguousNFA);
        let ac = AhoCorasick::builder()
            .kind(kind)
            .match_kind(MatchKind::Standard)
            .build(pats.iter().map(|p| p.as_bytes()))
            .map_err(|e| e.to_string())?;
        self.substr = Some((ac, groups));
        Ok(())
    }

    /// Push the groups `v` may satisfy.
    pub(crate) fn lookup(&self, v: &Value<'_>, bufs: &mut LookupBufs, out: &mut Candidates) {
        if !self.strs.is_empty() || self.substr.is_some() {
            let text = as_text(v, &mut bufs.text);
            let folded = fold_into(text, &mut bufs.folded);
            if let Some(g) = self.strs.get(folded) {
                out.extend(g);
            }
            if let Some((ac, groups)) = &self.substr {
                for m in ac.find_overlapping_iter(folded) {
                    out.extend(&groups[m.pattern().as_usize()]);
                }
            }
        }
        if !self.bytes.is_empty() {
            if let Some(g) = as_digest(v, &mut bufs.digest.0).and_then(|d| self.bytes.get(d)) {
                out.extend(g);
            }
        }
        for (kind, map) in &self.nums {
            if let Some(g) = as_num(v, *kind).and_then(|n| map.get(&n)) {
                out.extend(g);
            }
        }
        if !self.ips.is_empty() {
            if let Some(g) = as_ip(v).and_then(|a| self.ips.get(&a)) {
                out.extend(g);
            }
        }
        if !self.content.is_empty() {
            match v {
                Value::UInt(id) => {
                    if let Some(g) = u32::try_from(*id).ok().and_then(|id| self.content.get(&id)) {
                        out.extend(g);
                    }
                }
                Value::Str(_) => out.extend(&self.content_all),
                _ => {}
            }
        }
    }
}

/// Buffers reused by [`AnchorIndex::lookup`].
#[derive(Debug, Default)]
pub(crate) struct LookupBufs {
    text: String,
    folded: String,
    digest: DigestBuf,
}

/// Candidate groups of one evaluation, deduplicated with generation stamps
/// (no clearing of a big array per object).
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    pub list: Vec<u32>,
    stamps: Vec<u32>,
    generation: u32,
}

impl Candidates {
    pub(crate) fn new(groups: usize) -> Self {
        Candidates {
            list: Vec::new(),
            stamps: vec![0; groups],
            generation: 0,
        }
    }

    /// Start a new evaluation.
    pub(crate) fn reset(&mut self) {
        self.list.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
    }

    pub(crate) fn extend(&mut self, groups: &[u32]) {
        for &g in groups {
            if let Some(s) = self.stamps.get_mut(g as usize) {
                if *s != self.generation {
                    *s = self.generation;
                    self.list.push(g);
                }
            }
        }
    }
}

/// Everything about one document (object kind).
#[derive(Debug)]
pub(crate) struct DocPlan {
    pub doc: &'static str,
    pub anchors: Vec<AnchorIndex>,
    /// Groups evaluated for every object of this document.
    pub unanchored: Vec<u32>,
    /// Every term used by this document's groups.
    pub terms: TermSet,
    pub groups: u32,
}

impl DocPlan {
    pub(crate) fn new(doc: &'static str) -> Self {
        DocPlan {
            doc,
            anchors: Vec::new(),
            unanchored: Vec::new(),
            terms: TermSet::EMPTY,
            groups: 0,
        }
    }

    pub(crate) fn anchor_mut(&mut self, term: TermId) -> &mut AnchorIndex {
        let at = match self.anchors.iter().position(|a| a.term == term) {
            Some(at) => at,
            None => {
                self.anchors.push(AnchorIndex::new(term));
                self.anchors.len() - 1
            }
        };
        &mut self.anchors[at]
    }
}
