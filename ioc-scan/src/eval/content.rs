//! Content search for `FileItem/StringList/string`: every literal of every
//! item on that term, compiled into Aho-Corasick automata, so that the file
//! collector reads a file once and learns which literals it contains.
//!
//! # The handshake with the file collector
//!
//! 1. `compiled.content_patterns()` is `Some` when any item searches file
//!    content (and `terms_used("FileItem")` contains
//!    `FileItem/StringList/string`).
//! 2. The collector first reports `FileItem/StringList/string` as
//!    [`Field::Pending`]; when [`super::Matcher::evaluate`] answers
//!    `NeedTerms` containing that term, it reads the file once, feeding each
//!    chunk (any size, any boundaries) to a [`ContentScanner`] (and to its
//!    hashers in the same pass), then calls [`ContentScanner::finish`].
//! 3. Its observation then answers that term with
//!    [`ContentMatches::field`]: the ids of the patterns found, as
//!    `Value::UInt(pattern id)`. Items on that term (`contains` or `is`, both
//!    meaning "the file contains this literal") match when their pattern id
//!    is among them. (A `Value::Str` there is taken as a string of the file
//!    and compared as usual; the scan never produces one.)
//!
//! Literals of case-insensitive items (no `preserve-case`) are matched ASCII
//! case-insensitively; non-ASCII letters must match exactly. A collector may
//! stop reading early when [`ContentScanner::all_found`] says every pattern
//! was found.

use super::observation::{Field, Value};
use crate::terms::{ids, TermId};

/// Whether items on `term` search file content: `FileItem/StringList/string`
/// and `FileItem/StringMatchList/StringMatch/MatchedString` (HX's name for a
/// string a content search matched) mean the same search.
pub fn searches_content(term: TermId) -> bool {
    term == ids::FileItem_StringList_string || term == ids::FileItem_StringMatchList_StringMatch_MatchedString
}
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{dfa, nfa, Anchored, MatchKind};

/// Above this many patterns, or this many bytes of patterns, the (faster,
/// bigger: up to a kilobyte per pattern byte) DFA gives way to a contiguous
/// NFA (tens of bytes per pattern byte, what the compile budget charges).
const DFA_MAX_PATTERNS: usize = 2_000;
const DFA_MAX_PATTERN_BYTES: usize = 64 << 10;

/// All literals searched in file content, ready to scan.
#[derive(Debug)]
pub struct ContentPatterns {
    /// Pattern id → literal as written in the IOC.
    literals: Vec<Box<str>>,
    /// Pattern id → whether it is matched case-sensitively.
    preserve_case: Vec<bool>,
    /// Case-insensitive patterns, then case-sensitive ones.
    engines: Vec<Engine>,
}

#[derive(Debug)]
struct Engine {
    automaton: AnyAutomaton,
    /// Automaton pattern index → our pattern id.
    ids: Vec<u32>,
}

#[derive(Debug)]
enum AnyAutomaton {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

/// Distinct literals being collected while compiling.
#[derive(Debug, Default)]
pub(crate) struct ContentPatternsBuilder {
    index: std::collections::HashMap<(Box<str>, bool), u32>,
    literals: Vec<Box<str>>,
    preserve_case: Vec<bool>,
}

impl ContentPatternsBuilder {
    /// The id of `(literal, preserve_case)`, registering it when new.
    pub(crate) fn add(&mut self, literal: &str, preserve_case: bool) -> u32 {
        let key = (Box::<str>::from(literal), preserve_case);
        if let Some(id) = self.index.get(&key) {
            return *id;
        }
        let id = self.literals.len() as u32;
        self.literals.push(key.0.clone());
        self.preserve_case.push(preserve_case);
        self.index.insert(key, id);
        id
    }

    /// `None` when there is nothing to search, or the automaton could not be
    /// built (the error message).
    pub(crate) fn build(self) -> Result<Option<ContentPatterns>, String> {
        if self.literals.is_empty() {
            return Ok(None);
        }
        let mut engines = Vec::new();
        for sensitive in [false, true] {
            let ids: Vec<u32> = (0..self.literals.len() as u32)
                .filter(|i| self.preserve_case[*i as usize] == sensitive)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let pats: Vec<&[u8]> = ids
                .iter()
                .map(|i| self.literals[*i as usize].as_bytes())
                .collect();
            let bytes: usize = pats.iter().map(|p| p.len()).sum();
            let automaton = if pats.len() <= DFA_MAX_PATTERNS && bytes <= DFA_MAX_PATTERN_BYTES {
                dfa::DFA::builder()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(!sensitive)
                    .build(&pats)
                    .map(AnyAutomaton::Dfa)
                    .map_err(|e| e.to_string())
            } else {
                nfa::contiguous::NFA::builder()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(!sensitive)
                    .build(&pats)
                    .map(AnyAutomaton::Nfa)
                    .map_err(|e| e.to_string())
            }?;
            engines.push(Engine { automaton, ids });
        }
        Ok(Some(ContentPatterns {
            literals: self.literals,
            preserve_case: self.preserve_case,
            engines,
        }))
    }
}

impl ContentPatterns {
    /// Number of patterns; ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.literals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.literals.is_empty()
    }

    /// The literal of pattern `id` as written in the IOC.
    pub fn literal(&self, id: u32) -> Option<&str> {
        self.literals.get(id as usize).map(|s| &**s)
    }

    /// Whether pattern `id` is matched case-sensitively.
    pub fn preserve_case(&self, id: u32) -> bool {
        self.preserve_case
            .get(id as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The longest literal, in bytes (a collector reading overlapping windows
    /// would need this much overlap; a [`ContentScanner`] does not).
    pub fn max_len(&self) -> usize {
        self.literals.iter().map(|l| l.len()).max().unwrap_or(0)
    }

    /// A new streaming search (one per file).
    pub fn scanner(&self) -> ContentScanner<'_> {
        let states = self.engines.iter().map(|e| e.automaton.start()).collect();
        ContentScanner {
            patterns: self,
            states,
            found: vec![0; self.literals.len().div_ceil(64)],
            found_count: 0,
        }
    }
}

impl AnyAutomaton {
    fn start(&self) -> StateID {
        // Unanchored start states exist for every automaton built with the
        // default start kind.
        let r = match self {
            AnyAutomaton::Dfa(a) => a.start_state(Anchored::No),
            AnyAutomaton::Nfa(a) => a.start_state(Anchored::No),
        };
        r.unwrap_or(StateID::ZERO)
    }
}

/// A search of one file's content across chunks.
#[derive(Debug)]
pub struct ContentScanner<'p> {
    patterns: &'p ContentPatterns,
    states: Vec<StateID>,
    found: Vec<u64>,
    found_count: usize,
}

impl ContentScanner<'_> {
    /// Search the next bytes of the content (matches across chunk
    /// boundaries are found).
    pub fn feed(&mut self, chunk: &[u8]) {
        for (engine, state) in self.patterns.engines.iter().zip(self.states.iter_mut()) {
            match &engine.automaton {
                AnyAutomaton::Dfa(a) => step(
                    a,
                    state,
                    chunk,
                    &engine.ids,
                    &mut self.found,
                    &mut self.found_count,
                ),
                AnyAutomaton::Nfa(a) => step(
                    a,
                    state,
                    chunk,
                    &engine.ids,
                    &mut self.found,
                    &mut self.found_count,
                ),
            }
        }
    }

    /// Every pattern has been found: reading further changes nothing.
    pub fn all_found(&self) -> bool {
        self.found_count == self.patterns.len()
    }

    /// The patterns found.
    pub fn finish(self) -> ContentMatches {
        let mut ids = Vec::with_capacity(self.found_count);
        for (w, bits) in self.found.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                ids.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        ContentMatches { ids }
    }
}

fn step<A: Automaton>(
    a: &A,
    state: &mut StateID,
    chunk: &[u8],
    ids: &[u32],
    found: &mut [u64],
    count: &mut usize,
) {
    let mut sid = *state;
    for &b in chunk {
        sid = a.next_state(Anchored::No, sid, b);
        if a.is_special(sid) && a.is_match(sid) {
            for i in 0..a.match_len(sid) {
                let id = ids[a.match_pattern(sid, i).as_usize()] as usize;
                let (w, bit) = (id / 64, 1u64 << (id % 64));
                if found[w] & bit == 0 {
                    found[w] |= bit;
                    *count += 1;
                }
            }
        }
    }
    *state = sid;
}

/// The patterns found in one file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentMatches {
    ids: Vec<u32>,
}

impl ContentMatches {
    /// Ids of the patterns found, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The field to report for `FileItem/StringList/string`.
    pub fn field(&self) -> Field<'static> {
        Field::Values(self.ids.iter().map(|id| Value::UInt(*id as u64)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[(&str, bool)]) -> ContentPatterns {
        let mut b = ContentPatternsBuilder::default();
        for (l, p) in list {
            b.add(l, *p);
        }
        b.build().unwrap().unwrap()
    }

    #[test]
    fn overlapping_across_chunks_and_case() {
        let p = patterns(&[
            ("abc", false),
            ("bcd", false),
            ("Evil", true),
            ("zzz", false),
        ]);
        let mut s = p.scanner();
        s.feed(b"xxAB");
        s.feed(b"Cd evil EVIL Ev");
        s.feed(b"il");
        assert!(!s.all_found());
        assert_eq!(s.finish().ids(), &[0, 1, 2]);
    }

    #[test]
    fn many_patterns_use_the_nfa() {
        let lits: Vec<String> = (0..DFA_MAX_PATTERNS + 10)
            .map(|i| format!("needle{i:05}"))
            .collect();
        let list: Vec<(&str, bool)> = lits.iter().map(|l| (l.as_str(), false)).collect();
        let p = patterns(&list);
        assert!(matches!(p.engines[0].automaton, AnyAutomaton::Nfa(_)));
        let mut s = p.scanner();
        s.feed(b"...NEEDLE02001...needle00007");
        assert_eq!(s.finish().ids(), &[7, 2001]);
    }
}
