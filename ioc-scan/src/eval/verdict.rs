//! [`Verdicts`]: from group hits (one object satisfies one group) to
//! detections (an IOC is true), incrementally: hits arrive in any order from
//! any collector, over a whole scan or forever (`monitor`).

use super::compile::{CompiledCollection, FNode, IocTable};
use super::matcher::GroupHit;
use super::observation::ObjectRef;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Hits kept per group while their IOC is not yet true (e.g. processes
/// waiting for the file an AND also needs). Beyond this the oldest are
/// kept and later ones only counted.
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

#[derive(Debug, Default)]
struct IocState {
    /// Formula leaves (groups) satisfied by some object.
    satisfied: HashSet<u32>,
    /// Hits not yet turned into detections.
    waiting: Vec<GroupHit>,
    waiting_per_group: HashMap<u32, usize>,
    /// (group, object) already seen: the same object hitting again adds
    /// nothing.
    seen: HashSet<(u32, String)>,
    dropped: u64,
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
    /// - an IOC already true: this hit's detection at once, when its group
    ///   contributes (a hit on one branch of an AND whose other branch is
    ///   still false waits);
    /// - otherwise nothing (the hit waits).
    ///
    /// The same object hitting the same group again yields nothing.
    pub fn add(&mut self, hit: GroupHit) -> Vec<Detection> {
        let table = &*self.table;
        let ioc = hit.ioc;
        let Some(formula) = table.formulas.get(ioc as usize) else {
            return Vec::new();
        };
        let Some(&leaf) = table.group_leaf.get(hit.group as usize) else {
            return Vec::new();
        };
        if table.group_ioc.get(hit.group as usize) != Some(&ioc) || formula.nodes.is_empty() {
            return Vec::new();
        }
        let st = self.state.entry(ioc).or_default();
        let key = (leaf, serde_json::to_string(&hit.object).unwrap_or_default());
        if !st.seen.insert(key) {
            return Vec::new();
        }
        st.satisfied.insert(leaf);
        let count = st.waiting_per_group.entry(leaf).or_default();
        if *count >= MAX_WAITING_HITS_PER_GROUP {
            st.dropped += 1;
        } else {
            *count += 1;
            st.waiting.push(hit);
        }
        // The formula's value, children before parents (post-order).
        let n = formula.nodes.len();
        let mut value = vec![false; n];
        for (i, node) in formula.nodes.iter().enumerate() {
            value[i] = match node {
                FNode::Group(g) => {
                    debug_assert_eq!(table.group_leaf.get(*g as usize), Some(&(i as u32)));
                    st.satisfied.contains(&(i as u32))
                }
                FNode::And(k) => k.iter().all(|c| value[*c as usize]),
                FNode::Or(k) => k.iter().any(|c| value[*c as usize]),
            };
        }
        if !value[n - 1] {
            return Vec::new();
        }
        self.detected.insert(ioc);
        // Leaves that contribute: true ones below true nodes, from the root.
        let mut contributes = vec![false; n];
        contributes[n - 1] = true;
        for i in (0..n).rev() {
            if !contributes[i] {
                continue;
            }
            if let FNode::And(k) | FNode::Or(k) = &formula.nodes[i] {
                for c in k.iter() {
                    if value[*c as usize] {
                        contributes[*c as usize] = true;
                    }
                }
            }
        }
        let meta = &table.iocs[ioc as usize];
        let mut out = Vec::new();
        let mut keep = Vec::with_capacity(st.waiting.len());
        for h in st.waiting.drain(..) {
            let leaf = table.group_leaf[h.group as usize];
            if !contributes[leaf as usize] {
                keep.push(h);
                continue;
            }
            if let Some(c) = st.waiting_per_group.get_mut(&leaf) {
                *c = c.saturating_sub(1);
            }
            out.push(Detection {
                ioc_id: meta.id.clone(),
                ioc_name: meta.name().to_owned(),
                ioc_description: meta.meta.description.clone(),
                ioc_source: meta.source.clone(),
                object: h.object,
                matched_items: h.matched_items,
            });
        }
        st.waiting = keep;
        out
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
