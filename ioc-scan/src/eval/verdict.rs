//! [`Verdicts`]: from group hits (one object satisfies one group) to
//! detections (an IOC is true), incrementally: hits arrive in any order from
//! any collector, over a whole scan or forever (`monitor`).
//!
//! Formulas are monotone (no negation above items), so a group once
//! satisfied stays so, and each formula node turns true, and "contributing"
//! (true under true ancestors up to the root), at most once: the work per
//! IOC over its whole life is linear in its size, whatever the number of
//! hits.

use super::compile::{CompiledCollection, FNode, IocTable};
use super::matcher::GroupHit;
use super::observation::ObjectRef;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Hits kept per group while they cannot be reported yet (e.g. processes
/// waiting for the file an AND also needs). Later ones are counted
/// ([`Verdicts::dropped_hits`]) and not kept.
pub const MAX_WAITING_HITS_PER_GROUP: usize = 1024;

/// An IOC found true, and one object that makes it true.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub ioc_id: String,
    pub ioc_name: String,
    pub ioc_description: Option<String>,
    /// The IOC file it came from.
    pub ioc_source: String,
    pub object: ObjectRef,
    /// Ids of the items this object satisfied.
    pub matched_items: Vec<String>,
}

/// One IOC's progress.
#[derive(Debug)]
struct IocState {
    /// Per formula node: true (some objects make it true).
    value: Vec<bool>,
    /// Per AND node: how many children are true.
    true_kids: Vec<u32>,
    /// Per node: true and under true ancestors up to the root.
    contributes: Vec<bool>,
    /// Hits on leaves that do not contribute yet, with their object key.
    waiting: HashMap<u32, Vec<(String, GroupHit)>>,
    /// (leaf, object) already seen.
    seen: HashSet<(u32, String)>,
    /// Objects already reported for this IOC.
    reported: HashSet<String>,
    dropped: u64,
}

impl IocState {
    fn new(n: usize) -> Self {
        IocState {
            value: vec![false; n],
            true_kids: vec![0; n],
            contributes: vec![false; n],
            waiting: HashMap::new(),
            seen: HashSet::new(),
            reported: HashSet::new(),
            dropped: 0,
        }
    }
}

/// Accumulates hits from every collector and thread (feed it from one
/// thread, or behind a `Mutex`) and says when IOCs become true.
#[derive(Debug)]
pub struct Verdicts {
    table: Arc<IocTable>,
    state: HashMap<u32, IocState>,
    detected: HashSet<u32>,
}

impl Verdicts {
    pub fn new(compiled: &CompiledCollection) -> Self {
        Verdicts {
            table: Arc::clone(&compiled.table),
            state: HashMap::new(),
            detected: HashSet::new(),
        }
    }

    /// Add one hit; returns the detections that this hit makes true now:
    /// - an IOC whose formula becomes true with this hit: one detection per
    ///   object contributing to the true formula (including hits that were
    ///   waiting, e.g. the process of an AND(process, file) whose file just
    ///   arrived);
    /// - an IOC already true: this hit's detection at once when its group
    ///   contributes (a hit on a branch of an AND whose other branch is still
    ///   false waits);
    /// - otherwise nothing (the hit waits).
    ///
    /// An object (same [`ObjectRef`]) is reported at most once per IOC.
    pub fn add(&mut self, hit: GroupHit) -> Vec<Detection> {
        self.add_all([hit])
    }

    /// [`Self::add`] for several hits (e.g. all the hits of one object):
    /// an object satisfying several groups of one IOC gives one detection
    /// listing all the items it matched.
    pub fn add_all(&mut self, hits: impl IntoIterator<Item = GroupHit>) -> Vec<Detection> {
        let mut released = Vec::new();
        for hit in hits {
            self.release(hit, &mut released);
        }
        let table = &*self.table;
        let mut out: Vec<Detection> = Vec::new();
        let mut batch: HashMap<(u32, String), usize> = HashMap::new();
        // Items already listed per detection of this batch.
        let mut listed: Vec<HashSet<String>> = Vec::new();
        for (ioc, key, hit) in released {
            let Some(st) = self.state.get_mut(&ioc) else {
                continue;
            };
            match batch.get(&(ioc, key.clone())) {
                Some(&at) => {
                    for i in hit.matched_items {
                        if listed[at].insert(i.clone()) {
                            out[at].matched_items.push(i);
                        }
                    }
                }
                None => {
                    if !st.reported.insert(key.clone()) {
                        continue;
                    }
                    let meta = &table.iocs[ioc as usize];
                    batch.insert((ioc, key), out.len());
                    listed.push(hit.matched_items.iter().cloned().collect());
                    out.push(Detection {
                        ioc_id: meta.id.clone(),
                        ioc_name: meta.name().to_owned(),
                        ioc_description: meta.meta.description.clone(),
                        ioc_source: meta.source.clone(),
                        object: hit.object,
                        matched_items: hit.matched_items,
                    });
                }
            }
        }
        out
    }

    /// Record `hit`; push the hits that can be reported now.
    fn release(&mut self, hit: GroupHit, ready: &mut Vec<(u32, String, GroupHit)>) {
        let table = &*self.table;
        let ioc = hit.ioc;
        let Some(formula) = table.formulas.get(ioc as usize) else {
            return;
        };
        let Some(&leaf) = table.group_leaf.get(hit.group as usize) else {
            return;
        };
        if table.group_ioc.get(hit.group as usize) != Some(&ioc) || formula.nodes.is_empty() {
            return;
        }
        let n = formula.nodes.len();
        let st = self.state.entry(ioc).or_insert_with(|| IocState::new(n));
        let key = serde_json::to_string(&hit.object).unwrap_or_default();
        if !st.seen.insert((leaf, key.clone())) {
            return;
        }
        if st.contributes[leaf as usize] {
            ready.push((ioc, key, hit));
        } else {
            let w = st.waiting.entry(leaf).or_default();
            if w.len() < MAX_WAITING_HITS_PER_GROUP {
                w.push((key, hit));
            } else {
                st.dropped += 1;
            }
        }
        if st.value[leaf as usize] {
            return;
        }
        // Turn true upwards as far as it goes.
        st.value[leaf as usize] = true;
        let mut top = leaf;
        loop {
            let p = formula.parent[top as usize];
            if p == u32::MAX || st.value[p as usize] {
                break;
            }
            let now_true = match &formula.nodes[p as usize] {
                FNode::Or(_) => true,
                FNode::And(k) => {
                    st.true_kids[p as usize] += 1;
                    st.true_kids[p as usize] as usize == k.len()
                }
                FNode::Group(_) => false,
            };
            if !now_true {
                break;
            }
            st.value[p as usize] = true;
            top = p;
        }
        // The newly true part contributes if it is the root or hangs under
        // a contributing node: spread down through true nodes, releasing
        // their waiting hits.
        let p = formula.parent[top as usize];
        let spread = if p == u32::MAX {
            top as usize == n - 1
        } else {
            st.contributes[p as usize]
        };
        if !spread {
            return;
        }
        self.detected.insert(ioc);
        let mut stack = vec![top];
        while let Some(x) = stack.pop() {
            if st.contributes[x as usize] || !st.value[x as usize] {
                continue;
            }
            st.contributes[x as usize] = true;
            match &formula.nodes[x as usize] {
                FNode::Group(g) => {
                    debug_assert_eq!(table.group_ioc.get(*g as usize), Some(&ioc));
                    if let Some(w) = st.waiting.remove(&x) {
                        ready.extend(w.into_iter().map(|(k, h)| (ioc, k, h)));
                    }
                }
                FNode::And(k) | FNode::Or(k) => stack.extend(k.iter().copied()),
            }
        }
    }

    /// Whether IOC `ioc` (index in [`CompiledCollection::iocs`]) has been
    /// found true.
    pub fn is_detected(&self, ioc: u32) -> bool {
        self.detected.contains(&ioc)
    }

    /// Number of IOCs found true so far.
    pub fn detected_count(&self) -> usize {
        self.detected.len()
    }

    /// Hits not kept because [`MAX_WAITING_HITS_PER_GROUP`] was reached.
    pub fn dropped_hits(&self) -> u64 {
        self.state.values().map(|s| s.dropped).sum()
    }
}
