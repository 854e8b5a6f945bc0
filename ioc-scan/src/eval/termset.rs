//! [`TermSet`]: a fixed-size bitset over every term of the dictionary.

use crate::terms::{TermId, TERMS};
use serde::{Serialize, Serializer};

const WORDS: usize = TERMS.len().div_ceil(64);

/// A set of terms (one bit per dictionary term; `Copy`, no allocation).
///
/// Used for "which terms does this document need at all"
/// ([`super::CompiledCollection::terms_used`]) and "which pending terms would
/// decide this object" ([`super::Outcome::NeedTerms`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TermSet([u64; WORDS]);

impl Default for TermSet {
    fn default() -> Self {
        TermSet::EMPTY
    }
}

impl TermSet {
    pub const EMPTY: TermSet = TermSet([0; WORDS]);

    pub fn new() -> Self {
        TermSet::EMPTY
    }

    pub fn insert(&mut self, term: TermId) {
        let i = term.0 as usize;
        if i < WORDS * 64 {
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    pub fn remove(&mut self, term: TermId) {
        let i = term.0 as usize;
        if i < WORDS * 64 {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }

    pub fn contains(&self, term: TermId) -> bool {
        let i = term.0 as usize;
        i < WORDS * 64 && self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn union(mut self, other: TermSet) -> TermSet {
        self.union_with(&other);
        self
    }

    pub fn union_with(&mut self, other: &TermSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    pub fn intersection(mut self, other: TermSet) -> TermSet {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a &= b;
        }
        self
    }

    /// The terms, in [`TermId`] order.
    pub fn iter(&self) -> impl Iterator<Item = TermId> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut bits = *bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some(TermId((w * 64) as u16 + b as u16))
            })
        })
    }
}

impl FromIterator<TermId> for TermSet {
    fn from_iter<I: IntoIterator<Item = TermId>>(iter: I) -> Self {
        let mut s = TermSet::EMPTY;
        for t in iter {
            s.insert(t);
        }
        s
    }
}

impl std::fmt::Debug for TermSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|t| t.text()))
            .finish()
    }
}

/// Serialized as the list of term texts.
impl Serialize for TermSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|t| t.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::ids;

    #[test]
    fn insert_iter_remove() {
        let mut s: TermSet = [ids::FileItem_Sha256sum, ids::FileItem_Md5sum]
            .into_iter()
            .collect();
        assert_eq!(s.len(), 2);
        assert!(s.contains(ids::FileItem_Md5sum));
        assert!(!s.contains(ids::FileItem_Sha1sum));
        let mut v: Vec<_> = s.iter().collect();
        v.sort();
        let mut want = vec![ids::FileItem_Md5sum, ids::FileItem_Sha256sum];
        want.sort();
        assert_eq!(v, want);
        s.remove(ids::FileItem_Md5sum);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![ids::FileItem_Sha256sum]);
        let last = TermId((TERMS.len() - 1) as u16);
        s.insert(last);
        assert!(s.iter().any(|t| t == last));
    }
}
