//! [`Matcher`]: evaluating one object at a time against a compiled
//! collection (one matcher per thread).

use super::compare::{eval_item, CompiledItem, Scratch, Tri};
use super::compile::{CompiledCollection, Op};
use super::index::{Candidates, LookupBufs};
use super::observation::{Field, ObjectRef, Observation};
use super::termset::TermSet;
use serde::Serialize;

/// The answer for one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No group of any IOC is satisfied by this object.
    NoMatch,
    /// Some group's truth depends on fields the observation reported as
    /// [`Field::Pending`]: compute (at least) these terms and evaluate the
    /// same object again with them filled in (a value, or `Absent` when they
    /// cannot be had). Hits, if any, are reported by that later call.
    NeedTerms(TermSet),
    /// Groups satisfied by this object; feed them to [`super::Verdicts`].
    Hits(Vec<GroupHit>),
}

/// One object satisfies one group of one IOC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupHit {
    /// Index in [`CompiledCollection::iocs`].
    pub ioc: u32,
    /// Group id (unique in the collection).
    pub group: u32,
    pub object: ObjectRef,
    /// Ids of the group's items that are true for this object.
    pub matched_items: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    and: bool,
    acc: Tri,
    left: u32,
    end: u32,
}

/// Per-thread evaluation state: reused buffers, so that evaluating an object
/// that matches nothing allocates nothing.
#[derive(Debug)]
pub struct Matcher<'c> {
    c: &'c CompiledCollection,
    candidates: Candidates,
    bufs: LookupBufs,
    scratch: Scratch,
    frames: Vec<Frame>,
    hits: Vec<u32>,
    unknown: Vec<u32>,
    groups_evaluated: u64,
}

impl<'c> Matcher<'c> {
    pub(crate) fn new(c: &'c CompiledCollection) -> Self {
        Matcher {
            c,
            candidates: Candidates::new(c.groups.len()),
            bufs: LookupBufs::default(),
            scratch: Scratch::default(),
            frames: Vec::new(),
            hits: Vec::new(),
            unknown: Vec::new(),
            groups_evaluated: 0,
        }
    }

    /// Groups evaluated so far by this matcher (candidates from the anchor
    /// index plus unanchored groups): what evaluating an object costs, for
    /// tests and benchmarks.
    pub fn groups_evaluated(&self) -> u64 {
        self.groups_evaluated
    }

    /// Evaluate one object.
    ///
    /// Pending fields make the groups that depend on them unknown; then the
    /// answer is [`Outcome::NeedTerms`] with the pending terms that would
    /// decide them, and the caller evaluates the same object again once it
    /// has them. That may happen more than once (a digest that makes a group
    /// a candidate, whose content is then needed): a collector that reads
    /// the file once should, when asked for any costly term, compute every
    /// pending term of [`CompiledCollection::terms_used`] in that pass. The
    /// caller must eventually answer every requested term (with a value, or
    /// `Absent` when it cannot be had), or stop asking.
    pub fn evaluate(&mut self, obs: &dyn Observation) -> Outcome {
        let c = self.c;
        let Some(plan) = c.doc_plan(obs.document()) else {
            return Outcome::NoMatch;
        };
        self.candidates.reset();
        self.hits.clear();
        self.unknown.clear();
        let mut need = TermSet::EMPTY;
        let mut pending_anchor_terms = TermSet::EMPTY;
        for anchor in &plan.anchors {
            match obs.field(anchor.term) {
                Field::Absent => {}
                Field::Pending => {
                    need.insert(anchor.term);
                    pending_anchor_terms.union_with(&anchor.terms);
                }
                Field::One(v) => anchor.lookup(&v, &mut self.bufs, &mut self.candidates),
                Field::Values(vs) => {
                    for v in &vs {
                        anchor.lookup(v, &mut self.bufs, &mut self.candidates);
                    }
                }
            }
        }
        let all = plan.unanchored.iter().chain(self.candidates.list.iter());
        for &g in all {
            self.groups_evaluated += 1;
            match run_group(c, g, obs, &mut self.frames, &mut self.scratch) {
                Tri::True => self.hits.push(g),
                Tri::Unknown => self.unknown.push(g),
                Tri::False => {}
            }
        }
        if !need.is_empty() || !self.unknown.is_empty() {
            // The pending terms that could decide the unknown groups and the
            // groups behind pending anchors.
            let mut ask = pending_anchor_terms;
            for &g in &self.unknown {
                for &i in c.groups[g as usize].items.iter() {
                    ask.insert(c.items[i as usize].term);
                }
            }
            for t in ask.iter() {
                if !need.contains(t) && matches!(obs.field(t), Field::Pending) {
                    need.insert(t);
                }
            }
            return Outcome::NeedTerms(need);
        }
        if self.hits.is_empty() {
            return Outcome::NoMatch;
        }
        let object = obs.object_ref();
        let mut out = Vec::with_capacity(self.hits.len());
        for &g in &self.hits {
            let group = &c.groups[g as usize];
            let matched_items = group
                .items
                .iter()
                .filter(|i| eval_item(&c.items[**i as usize], obs, &mut self.scratch) == Tri::True)
                .map(|i| c.item_id(*i).to_owned())
                .collect();
            out.push(GroupHit {
                ioc: group.ioc,
                group: g,
                object: object.clone(),
                matched_items,
            });
        }
        Outcome::Hits(out)
    }
}

/// Run group `g`'s program for `obs`: Kleene AND/OR with short-circuit,
/// on an explicit stack (no recursion whatever the depth).
fn run_group(
    c: &CompiledCollection,
    g: u32,
    obs: &dyn Observation,
    frames: &mut Vec<Frame>,
    scratch: &mut Scratch,
) -> Tri {
    let group = &c.groups[g as usize];
    let ops = &c.ops[..group.end as usize];
    let items: &[CompiledItem] = &c.items;
    frames.clear();
    let mut pc = group.start as usize;
    loop {
        let Some(op) = ops.get(pc) else {
            return Tri::False;
        };
        let mut v = match *op {
            Op::Item(i) => {
                pc += 1;
                eval_item(&items[i as usize], obs, scratch)
            }
            Op::And { count, end } => {
                frames.push(Frame {
                    and: true,
                    acc: Tri::True,
                    left: count,
                    end,
                });
                pc += 1;
                continue;
            }
            Op::Or { count, end } => {
                frames.push(Frame {
                    and: false,
                    acc: Tri::False,
                    left: count,
                    end,
                });
                pc += 1;
                continue;
            }
        };
        loop {
            let Some(f) = frames.last_mut() else { return v };
            f.acc = if f.and { and3(f.acc, v) } else { or3(f.acc, v) };
            f.left = f.left.saturating_sub(1);
            let decided = if f.and {
                f.acc == Tri::False
            } else {
                f.acc == Tri::True
            };
            if decided || f.left == 0 {
                v = f.acc;
                pc = f.end as usize;
                frames.pop();
            } else {
                break;
            }
        }
    }
}

fn and3(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::False, _) | (_, Tri::False) => Tri::False,
        (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
        _ => Tri::True,
    }
}

fn or3(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::True, _) | (_, Tri::True) => Tri::True,
        (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
        _ => Tri::False,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kleene() {
        use Tri::*;
        assert_eq!(and3(False, Unknown), False);
        assert_eq!(and3(True, Unknown), Unknown);
        assert_eq!(and3(True, True), True);
        assert_eq!(or3(True, Unknown), True);
        assert_eq!(or3(False, Unknown), Unknown);
        assert_eq!(or3(False, False), False);
    }
}
