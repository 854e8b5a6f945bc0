//! Compiling IOCs: items into typed comparisons, each IOC's tree into
//! groups (what one object must satisfy together) and a formula over groups,
//! and the groups into per-document anchor indexes. Nothing here recurses:
//! trees are walked with explicit stacks.
//!
//! Everything is charged to the collection's [`CompileBudget`] before it is
//! done (see [`super::budget`]): without distribution the compiled form is
//! linear in the input; distribution (one group per branch of an OR, for
//! the anchor index) is done one level deep only, and only while its copies
//! fit in the part of the budget set aside for it.

use super::budget::{CompileBudget, CompileCost, Exceeded, Meter};
use super::compare::CompiledItem;
use super::content::{ContentPatterns, ContentPatternsBuilder};
use super::diagnostic::{Diagnostic, Severity, Stage};
use super::index::{anchor_keys, expensive, score, AnchorKey, DocPlan};
use super::matcher::Matcher;
use super::termset::TermSet;
use super::value::{compile_operand, Operand, REGEX_CACHE_CAPACITY, REGEX_SIZE_LIMIT};
use crate::indicator::{Condition, Ioc, Node, Operator, Position};
use crate::terms::{self, support, TermId};
use std::collections::HashMap;
use std::sync::Arc;

/// One step of a group's program, laid out in pre-order: an operator is
/// followed by its `count` operands and `end` is the index just past them
/// (so a decided AND/OR skips the rest).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Item(u32),
    And { count: u32, end: u32 },
    Or { count: u32, end: u32 },
}

/// What one object must satisfy: the conjunction of some subtrees of one
/// IOC, all on one document.
#[derive(Debug)]
pub(crate) struct Group {
    pub ioc: u32,
    pub doc: u16,
    /// Its program: `ops[start..end]`.
    pub start: u32,
    pub end: u32,
    /// Its items (indexes into `items`), in document order.
    pub items: Box<[u32]>,
}

/// A node of an IOC's formula over groups.
#[derive(Debug, Clone)]
pub(crate) enum FNode {
    Group(u32),
    And(Box<[u32]>),
    Or(Box<[u32]>),
}

/// An IOC's formula, in post-order (children before parents, the root
/// last). Empty: the IOC can never match.
#[derive(Debug, Clone, Default)]
pub(crate) struct Formula {
    pub nodes: Vec<FNode>,
    /// Parent of each node (`u32::MAX` for the root).
    pub parent: Vec<u32>,
}

impl Formula {
    fn link_parents(&mut self) {
        self.parent = vec![u32::MAX; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if let FNode::And(k) | FNode::Or(k) = n {
                for c in k.iter() {
                    self.parent[*c as usize] = i as u32;
                }
            }
        }
    }
}

/// What verdicts need, shared (`Arc`) between the collection and every
/// [`super::Verdicts`].
#[derive(Debug)]
pub(crate) struct IocTable {
    pub iocs: Vec<Ioc>,
    pub formulas: Vec<Formula>,
    /// Global group id → its IOC and its node in that IOC's formula.
    pub group_ioc: Vec<u32>,
    pub group_leaf: Vec<u32>,
}

/// A collection of IOCs compiled for evaluation. Built once, then shared by
/// every thread (`Send + Sync`); each thread evaluates with its own
/// [`Matcher`].
#[derive(Debug)]
pub struct CompiledCollection {
    pub(crate) table: Arc<IocTable>,
    pub(crate) items: Vec<CompiledItem>,
    pub(crate) groups: Vec<Group>,
    pub(crate) ops: Vec<Op>,
    pub(crate) docs: Vec<DocPlan>,
    pub(crate) content: Option<ContentPatterns>,
    pub(crate) cost: CompileCost,
    pub(crate) budget: CompileBudget,
}

impl CompiledCollection {
    /// Compile `iocs`. Never fails: whatever is wrong in an IOC is reported
    /// as a [`Diagnostic`] and the items concerned never match; the rest of
    /// the IOC is evaluated.
    pub fn compile(iocs: &[Ioc]) -> (CompiledCollection, Vec<Diagnostic>) {
        Self::compile_with_budget(iocs, CompileBudget::default())
    }

    /// [`Self::compile`] under another budget than the default one. An IOC
    /// (or a regex) that does not fit is not evaluated and has an error
    /// diagnostic naming the budget.
    pub fn compile_with_budget(
        iocs: &[Ioc],
        budget: CompileBudget,
    ) -> (CompiledCollection, Vec<Diagnostic>) {
        Self::compile_with(iocs, support::status, budget)
    }

    /// [`Self::compile`] with another list of supported terms than
    /// [`support::status`]: for tests and tools that evaluate terms no
    /// collector reports yet.
    pub fn compile_with_support(
        iocs: &[Ioc],
        support: fn(TermId) -> support::Support,
    ) -> (CompiledCollection, Vec<Diagnostic>) {
        Self::compile_with(iocs, support, CompileBudget::default())
    }

    fn compile_with(
        iocs: &[Ioc],
        support: fn(TermId) -> support::Support,
        budget: CompileBudget,
    ) -> (CompiledCollection, Vec<Diagnostic>) {
        // Three quarters for what evaluating the IOCs needs, one for what
        // only makes it faster: refusals never depend on the latter.
        let required = CompileBudget {
            work: budget.work - budget.work / 4,
            memory: budget.memory - budget.memory / 4,
        };
        let optional = CompileBudget {
            work: budget.work / 4,
            memory: budget.memory / 4,
        };
        Self::compile_split(iocs, support, budget, required, optional)
    }

    /// [`Self::compile_with_support`] without distribution: every group is
    /// evaluated as the tree it is. The same results, found more slowly:
    /// for differential tests of the plan.
    #[doc(hidden)]
    pub fn compile_as_trees(
        iocs: &[Ioc],
        support: fn(TermId) -> support::Support,
    ) -> (CompiledCollection, Vec<Diagnostic>) {
        let budget = CompileBudget::default();
        let nothing = CompileBudget { work: 0, memory: 0 };
        Self::compile_split(iocs, support, budget, budget, nothing)
    }

    fn compile_split(
        iocs: &[Ioc],
        support: fn(TermId) -> support::Support,
        budget: CompileBudget,
        required: CompileBudget,
        optional: CompileBudget,
    ) -> (CompiledCollection, Vec<Diagnostic>) {
        let mut b = Builder {
            support: Some(support),
            required: Meter::new(required),
            optional: Meter::new(optional),
            ..Builder::default()
        };
        for (i, ioc) in iocs.iter().enumerate() {
            b.add_ioc(i as u32, ioc);
        }
        // The IOCs for verdicts (metadata, item ids): a refused one without
        // its tree, which was not charged.
        let kept = iocs
            .iter()
            .zip(&b.refused)
            .map(|(ioc, refused)| {
                if *refused {
                    Ioc {
                        id: ioc.id.clone(),
                        version: ioc.version,
                        meta: ioc.meta.clone(),
                        nodes: Vec::new(),
                        source: ioc.source.clone(),
                    }
                } else {
                    ioc.clone()
                }
            })
            .collect();
        b.finish(kept, budget)
    }

    /// Everything compiling `iocs` can report, in any mode (scan, monitor,
    /// agent): the diagnostics of [`Self::compile`], plus the budget
    /// refusals of a compile where every term is supported (the live mode
    /// evaluates more terms than the scan: what fits here fits there). What
    /// `validate` and the console's upload check.
    pub fn check(iocs: &[Ioc]) -> (Vec<Diagnostic>, CompileCost) {
        let (compiled, mut diags) = Self::compile(iocs);
        let mut cost = compiled.cost();
        drop(compiled);
        let (everything, all) = Self::compile_with(
            iocs,
            |_| support::Support::Supported,
            CompileBudget::default(),
        );
        let known: std::collections::HashSet<Diagnostic> =
            diags.iter().filter(|d| d.over_budget).cloned().collect();
        for d in all.into_iter().filter(|d| d.over_budget) {
            if !known.contains(&d) {
                diags.push(d);
            }
        }
        let c = everything.cost();
        cost.work = cost.work.max(c.work);
        cost.memory = cost.memory.max(c.memory);
        cost.distributions_skipped = cost.distributions_skipped.max(c.distributions_skipped);
        (diags, cost)
    }

    /// What compiling this collection was charged (within
    /// [`Self::budget`]).
    pub fn cost(&self) -> CompileCost {
        self.cost
    }

    /// The budget it was compiled under.
    pub fn budget(&self) -> CompileBudget {
        self.budget
    }

    /// The documents (object kinds: `FileItem`, `ProcessItem`...) some IOC
    /// asks about. A collector need not run when its document is not here.
    pub fn documents(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.docs.iter().filter(|d| d.groups > 0).map(|d| d.doc)
    }

    /// Whether some IOC asks about `document`.
    pub fn uses_document(&self, document: &str) -> bool {
        self.doc_plan(document).is_some()
    }

    /// Every term of `document` that some supported item uses: e.g. whether
    /// a file scan must compute SHA-256 at all.
    pub fn terms_used(&self, document: &str) -> TermSet {
        self.doc_plan(document).map(|d| d.terms).unwrap_or_default()
    }

    /// The literals to search in file content, if any item searches it (see
    /// [`ContentPatterns`] for the handshake).
    pub fn content_patterns(&self) -> Option<&ContentPatterns> {
        self.content.as_ref()
    }

    /// The IOCs, in the order given to [`Self::compile`]; `GroupHit::ioc`
    /// indexes this.
    pub fn iocs(&self) -> &[Ioc] {
        &self.table.iocs
    }

    /// Number of groups (what [`Matcher::groups_evaluated`] counts).
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// A matcher for one thread.
    pub fn matcher(&self) -> Matcher<'_> {
        Matcher::new(self)
    }

    pub(crate) fn doc_plan(&self, document: &str) -> Option<&DocPlan> {
        self.docs.iter().find(|d| d.doc == document && d.groups > 0)
    }

    /// The id of the item behind `items[i]`.
    pub(crate) fn item_id(&self, i: u32) -> &str {
        let item = &self.items[i as usize];
        match self.table.iocs[item.ioc as usize]
            .nodes
            .get(item.node as usize)
        {
            Some(Node::Item(it)) => &it.id,
            _ => "",
        }
    }
}

/// Per node while compiling one IOC.
#[derive(Debug, Clone, Copy)]
enum St {
    /// Can never be true (unsupported/malformed item, or folded away).
    Never,
    /// `doc`: `Some(d)` when every item below is on document `d`.
    Live { doc: Option<u16>, cost: u32 },
}

/// A piece of formula still to build.
enum Task {
    /// "Some object satisfies this single-document subtree."
    Standalone(u32),
    /// A subtree over several documents.
    Mixed(u32),
    /// "One object of `doc` satisfies all these subtrees"; the flag: it may
    /// still be distributed (false for the copies a distribution made).
    Group(u16, Vec<u32>, bool),
}

struct Frame {
    and: bool,
    todo: Vec<Task>,
    done: Vec<u32>,
}

#[derive(Default)]
struct Builder {
    items: Vec<CompiledItem>,
    groups: Vec<Group>,
    ops: Vec<Op>,
    formulas: Vec<Formula>,
    group_ioc: Vec<u32>,
    group_leaf: Vec<u32>,
    docs: Vec<&'static str>,
    content: ContentPatternsBuilder,
    diags: Vec<Diagnostic>,
    /// Per group: the anchors it could use.
    anchor_options: Vec<Vec<(TermId, AnchorKey)>>,
    support: Option<fn(TermId) -> support::Support>,
    /// What evaluating the IOCs needs (refused when it does not fit).
    required: Meter,
    /// What distribution may use (skipped when it does not fit).
    optional: Meter,
    /// Per IOC: refused by the budget.
    refused: Vec<bool>,
}

/// One IOC's tree, validated, with per-node state.
struct Tree<'a> {
    ioc: &'a Ioc,
    index: u32,
    /// Validated children of each node: `kids[kid_range[n]]`.
    kids: Vec<u32>,
    kid_range: Vec<(u32, u32)>,
    st: Vec<St>,
    /// Node → index in `items` (items only).
    item_of: Vec<u32>,
}

impl Tree<'_> {
    fn kids(&self, n: u32) -> &[u32] {
        let (s, e) = self.kid_range[n as usize];
        &self.kids[s as usize..e as usize]
    }

    fn live_kids(&self, n: u32) -> impl Iterator<Item = u32> + '_ {
        self.kids(n)
            .iter()
            .copied()
            .filter(|k| matches!(self.st[*k as usize], St::Live { .. }))
    }

    fn doc(&self, n: u32) -> Option<u16> {
        match self.st[n as usize] {
            St::Live { doc, .. } => doc,
            St::Never => None,
        }
    }

    fn cost(&self, n: u32) -> u32 {
        match self.st[n as usize] {
            St::Live { cost, .. } => cost,
            St::Never => 0,
        }
    }

    fn operator(&self, n: u32) -> Option<Operator> {
        match &self.ioc.nodes[n as usize] {
            Node::Indicator(ind) => Some(ind.operator),
            Node::Item(_) => None,
        }
    }
}

impl Builder {
    fn diag(
        &mut self,
        ioc: &Ioc,
        at: Position,
        id: Option<&str>,
        severity: Severity,
        message: String,
    ) {
        self.diags.push(Diagnostic {
            file: ioc.source.clone(),
            line: at.line,
            column: at.column,
            stage: Stage::Compile,
            ioc_id: Some(ioc.id.clone()),
            item_id: id.map(str::to_owned),
            severity,
            message,
            over_budget: false,
        });
    }

    /// An error diagnostic for what the budget refused.
    fn diag_over_budget(&mut self, ioc: &Ioc, at: Position, id: Option<&str>, message: String) {
        self.diag(ioc, at, id, Severity::Error, message);
        if let Some(d) = self.diags.last_mut() {
            d.over_budget = true;
        }
    }

    fn doc_id(&mut self, doc: &'static str) -> u16 {
        match self.docs.iter().position(|d| *d == doc) {
            Some(i) => i as u16,
            None => {
                self.docs.push(doc);
                (self.docs.len() - 1) as u16
            }
        }
    }

    fn add_ioc(&mut self, index: u32, ioc: &Ioc) {
        let n = ioc.nodes.len();
        if n == 0 || n > u32::MAX as usize / 2 {
            self.diag(
                ioc,
                Position::default(),
                None,
                Severity::Warning,
                "empty definition: this IOC never matches".into(),
            );
            self.formulas.push(Formula::default());
            self.refused.push(false);
            return;
        }
        let (work, memory) = linear_estimate(ioc);
        let charged = self.required.charge(work, memory);
        self.refused.push(charged.is_err());
        if let Err(e) = charged {
            let msg = e.describe("this IOC", &self.required.budget);
            let id = node_id(ioc, 0).to_owned();
            self.diag_over_budget(ioc, position(ioc, 0), Some(&id), msg);
            self.formulas.push(Formula::default());
            return;
        }
        let mut tree = Tree {
            ioc,
            index,
            kids: Vec::new(),
            kid_range: vec![(0, 0); n],
            st: vec![St::Never; n],
            item_of: vec![u32::MAX; n],
        };
        let order = self.validate(&mut tree);
        for &id in &order {
            if let Node::Item(_) = &ioc.nodes[id as usize] {
                self.compile_item(&mut tree, id);
            }
        }
        self.fold(&mut tree, &order);
        let mut formula = self.build_formula(&tree);
        formula.link_parents();
        if formula.nodes.is_empty() {
            let at = position(ioc, 0);
            let id = node_id(ioc, 0).to_owned();
            self.diag(
                ioc,
                at,
                Some(&id),
                Severity::Warning,
                "this IOC can never match (see the other diagnostics)".into(),
            );
        }
        self.formulas.push(formula);
    }

    /// Walk the tree from the root without recursion, in pre-order; a child
    /// out of range or reached twice is reported and left out.
    fn validate(&mut self, t: &mut Tree) -> Vec<u32> {
        let ioc = t.ioc;
        let n = ioc.nodes.len();
        let mut reached = vec![false; n];
        reached[0] = true;
        let mut order = Vec::with_capacity(n);
        let mut stack = vec![0u32];
        let mut bad = 0usize;
        while let Some(id) = stack.pop() {
            order.push(id);
            if let Node::Indicator(ind) = &ioc.nodes[id as usize] {
                let start = t.kids.len() as u32;
                for c in &ind.children {
                    let c = c.0 as usize;
                    if c >= n || reached[c] {
                        bad += 1;
                        continue;
                    }
                    reached[c] = true;
                    t.kids.push(c as u32);
                }
                let end = t.kids.len() as u32;
                t.kid_range[id as usize] = (start, end);
                stack.extend(t.kids[start as usize..end as usize].iter().rev());
            }
        }
        if bad > 0 {
            self.diag(
                ioc,
                position(ioc, 0),
                None,
                Severity::Error,
                format!("malformed indicator tree: {bad} child reference(s) out of range or repeated were ignored"),
            );
        }
        order
    }

    fn compile_item(&mut self, t: &mut Tree, id: u32) {
        let ioc = t.ioc;
        let Node::Item(item) = &ioc.nodes[id as usize] else {
            return;
        };
        let never = "this item never matches";
        // The reader already reported what is wrong with it (file, line,
        // column); repeating that here would only double the diagnostic.
        if !item.evaluable() {
            return;
        }
        let Some(term) = terms::lookup(&item.context.search) else {
            let msg = format!("unknown term `{}`: {never}", item.context.search);
            self.diag(ioc, item.position, Some(&item.id), Severity::Warning, msg);
            return;
        };
        let status = self.support.unwrap_or(support::status);
        if let support::Support::Unsupported(why) = status(term) {
            let msg = format!("term `{}` is not supported ({why}): {never}", term.text());
            self.diag(ioc, item.position, Some(&item.id), Severity::Warning, msg);
            return;
        }
        let content = &mut self.content;
        // A regex gets what is left of the budget as its size limit.
        if item.condition == Condition::Matches {
            // Building a regex costs time whatever its size: charged before
            // trying, with its cache.
            if let Err(e) = self.required.charge(REGEX_WORK, REGEX_CACHE_BYTES as u64) {
                let msg = e.describe("this item's regex", &self.required.budget);
                self.diag_over_budget(ioc, item.position, Some(&item.id), msg);
                return;
            }
        }
        let regex_limit = usize::try_from(self.required.memory_left()).unwrap_or(usize::MAX);
        let operand = compile_operand(item, term, regex_limit, &mut |lit, pc| content.add(lit, pc));
        let operand = match operand {
            Ok(op) => op,
            Err(e) if regex_limit < REGEX_SIZE_LIMIT && e.starts_with("regex `") => {
                // Too big for what is left of the budget, not for the
                // per-regex limit.
                let msg = Exceeded {
                    work: 0,
                    memory: REGEX_SIZE_LIMIT as u64,
                    work_left: self.required.work_left(),
                    memory_left: self.required.memory_left(),
                }
                .describe("this item's regex", &self.required.budget);
                self.diag_over_budget(ioc, item.position, Some(&item.id), msg);
                return;
            }
            Err(e) => {
                self.diag(
                    ioc,
                    item.position,
                    Some(&item.id),
                    Severity::Error,
                    format!("{e}: {never}"),
                );
                return;
            }
        };
        if let Err(msg) = self.charge_regex(&operand) {
            self.diag_over_budget(ioc, item.position, Some(&item.id), msg);
            return;
        }
        let doc = self.doc_id(term.def().document());
        let cost = if expensive(term) { 8 } else { 1 }
            + if matches!(operand, Operand::Regex(_)) {
                2
            } else {
                0
            };
        t.item_of[id as usize] = self.items.len() as u32;
        self.items.push(CompiledItem {
            term,
            condition: item.condition,
            negate: item.negate,
            preserve_case: item.preserve_case,
            operand,
            ioc: t.index,
            node: id,
        });
        t.st[id as usize] = St::Live {
            doc: Some(doc),
            cost,
        };
    }

    /// Children before parents: constant-false items fold their AND
    /// ancestors away and drop out of ORs; each indicator learns whether it
    /// is single-document.
    fn fold(&mut self, t: &mut Tree, order: &[u32]) {
        let ioc = t.ioc;
        for &id in order.iter().rev() {
            let Node::Indicator(ind) = &ioc.nodes[id as usize] else {
                continue;
            };
            let kids = t.kids(id);
            if kids.is_empty() {
                self.diag(
                    ioc,
                    ind.position,
                    Some(&ind.id),
                    Severity::Warning,
                    "empty indicator: never true".into(),
                );
                continue;
            }
            let and = ind.operator == Operator::And;
            let mut doc: Option<Option<u16>> = None;
            let mut cost = 0u32;
            let mut never_item = None;
            let mut any_never = false;
            for &k in kids {
                match t.st[k as usize] {
                    St::Never => {
                        any_never = true;
                        if never_item.is_none() {
                            if let Node::Item(it) = &ioc.nodes[k as usize] {
                                never_item = Some(it.id.as_str());
                            }
                        }
                    }
                    St::Live { doc: d, cost: c } => {
                        cost = cost.saturating_add(c);
                        doc = Some(match doc {
                            None => d,
                            Some(prev) if prev == d => d,
                            Some(_) => None,
                        });
                    }
                }
            }
            if and && any_never {
                if let Some(item) = never_item {
                    let msg = format!(
                        "this AND indicator can never be true: its item {item} never matches"
                    );
                    self.diag(ioc, ind.position, Some(&ind.id), Severity::Info, msg);
                }
                continue;
            }
            if let Some(doc) = doc {
                t.st[id as usize] = St::Live { doc, cost };
            }
        }
    }

    /// The IOC's formula over groups, built iteratively in post-order.
    fn build_formula(&mut self, t: &Tree) -> Formula {
        let mut f = Formula::default();
        let root_task = match t.st[0] {
            St::Never => return f,
            St::Live { doc: Some(_), .. } => Task::Standalone(0),
            St::Live { doc: None, .. } => Task::Mixed(0),
        };
        let mut stack: Vec<Frame> = Vec::new();
        match self.expand(t, &mut f, root_task) {
            Ok(_) => return f,
            Err(frame) => stack.push(frame),
        }
        loop {
            let Some(top) = stack.last_mut() else {
                return f;
            };
            if let Some(task) = top.todo.pop() {
                match self.expand(t, &mut f, task) {
                    Ok(node) => top.done.push(node),
                    Err(frame) => stack.push(frame),
                }
                continue;
            }
            let Some(frame) = stack.pop() else { return f };
            let node = if frame.done.len() == 1 {
                frame.done[0]
            } else {
                let kids = frame.done.into_boxed_slice();
                f.nodes.push(if frame.and {
                    FNode::And(kids)
                } else {
                    FNode::Or(kids)
                });
                (f.nodes.len() - 1) as u32
            };
            match stack.last_mut() {
                Some(parent) => parent.done.push(node),
                None => return f,
            }
        }
    }

    /// A formula node (leaf) for `task`, or the frame to fill in.
    fn expand(&mut self, t: &Tree, f: &mut Formula, mut task: Task) -> Result<u32, Frame> {
        loop {
            match task {
                Task::Group(doc, roots, may_split) => {
                    let roots = flatten_and(t, roots);
                    let split = if may_split {
                        self.distributable(t, &roots)
                    } else {
                        None
                    };
                    if let Some((at, kids)) = split {
                        // One object satisfies AND(a, OR(b1..bn)) iff one
                        // satisfies some AND(a, bi): one group per bi, each
                        // anchored on its own bi (a list of digests under
                        // a common condition).
                        let others: Vec<u32> = roots
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| *i != at)
                            .map(|(_, r)| *r)
                            .collect();
                        let todo = kids
                            .into_iter()
                            .rev()
                            .map(|k| {
                                let mut r = others.clone();
                                r.push(k);
                                Task::Group(doc, r, false)
                            })
                            .collect();
                        return Err(Frame {
                            and: false,
                            todo,
                            done: Vec::new(),
                        });
                    }
                    let g = self.make_group(t, doc, &roots);
                    f.nodes.push(FNode::Group(g));
                    let leaf = (f.nodes.len() - 1) as u32;
                    self.group_leaf.push(leaf);
                    return Ok(leaf);
                }
                Task::Standalone(n) => {
                    if t.operator(n) == Some(Operator::Or) {
                        // Some object satisfies OR(a, b) iff some object
                        // satisfies a or some object satisfies b: split, so
                        // that each branch gets its own anchor.
                        let live: Vec<u32> = t.live_kids(n).collect();
                        if live.len() == 1 {
                            task = Task::Standalone(live[0]);
                            continue;
                        }
                        let todo = live.into_iter().rev().map(Task::Standalone).collect();
                        return Err(Frame {
                            and: false,
                            todo,
                            done: Vec::new(),
                        });
                    }
                    let doc = t.doc(n).unwrap_or(0);
                    task = Task::Group(doc, vec![n], true);
                }
                Task::Mixed(n) => {
                    let sub = |k: u32| {
                        if t.doc(k).is_some() {
                            Task::Standalone(k)
                        } else {
                            Task::Mixed(k)
                        }
                    };
                    if t.operator(n) == Some(Operator::Or) {
                        let todo = t
                            .live_kids(n)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .map(sub)
                            .collect();
                        return Err(Frame {
                            and: false,
                            todo,
                            done: Vec::new(),
                        });
                    }
                    // AND: single-document children of the same document
                    // must be met by one object together.
                    let mut by_doc: Vec<(u16, Vec<u32>)> = Vec::new();
                    let mut todo = Vec::new();
                    for k in t.live_kids(n) {
                        match t.doc(k) {
                            Some(d) => match by_doc.iter_mut().find(|(x, _)| *x == d) {
                                Some((_, roots)) => roots.push(k),
                                None => by_doc.push((d, vec![k])),
                            },
                            None => todo.push(Task::Mixed(k)),
                        }
                    }
                    for (d, roots) in by_doc {
                        todo.push(if roots.len() == 1 {
                            Task::Standalone(roots[0])
                        } else {
                            Task::Group(d, roots, true)
                        });
                    }
                    todo.reverse();
                    return Err(Frame {
                        and: true,
                        todo,
                        done: Vec::new(),
                    });
                }
            }
        }
    }

    /// Whether a group's roots (flattened) are `a..., OR(b1..bn)` worth
    /// distributing: every `bi` is an item that can anchor, the copies of
    /// `a` stay small, and they fit in the optional budget (charged here).
    /// Returns the OR's position and its live children.
    fn distributable(&mut self, t: &Tree, roots: &[u32]) -> Option<(usize, Vec<u32>)> {
        /// Nodes of `a` (walked, and copied per branch) at most.
        const MAX_OTHER_NODES: u64 = 64;
        const MAX_OTHER_ITEMS: u64 = 16;
        let at = roots
            .iter()
            .position(|r| t.operator(*r) == Some(Operator::Or))?;
        let kids: Vec<u32> = t.live_kids(roots[at]).collect();
        let mut keys = Vec::new();
        let anchorable = |k: &u32, keys: &mut Vec<AnchorKey>| {
            t.operator(*k).is_none() && {
                keys.clear();
                anchor_keys(&self.items[t.item_of[*k as usize] as usize], keys);
                !keys.is_empty()
            }
        };
        if kids.len() < 2 || !kids.iter().all(|k| anchorable(k, &mut keys)) {
            return None;
        }
        // Nodes, items and value bytes in the other roots (counting stops
        // past the limit).
        let (mut nodes, mut items, mut bytes) = (0u64, 0u64, 0u64);
        let mut stack: Vec<u32> = roots
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, r)| *r)
            .collect();
        while let Some(n) = stack.pop() {
            nodes += 1;
            if nodes > MAX_OTHER_NODES {
                return None;
            }
            match &t.ioc.nodes[n as usize] {
                Node::Item(it) => {
                    items += 1;
                    bytes += it.content.value.len() as u64;
                    if items > MAX_OTHER_ITEMS {
                        return None;
                    }
                }
                Node::Indicator(_) => stack.extend(t.live_kids(n)),
            }
        }
        // Per copy: a group, its program and items, its formula leaf, the
        // copies of the other roots' anchor options and keys (two per string
        // value) and their index entries.
        let copies = kids.len() as u64;
        let work = copies * (nodes + 2) * WORK_PER_NODE;
        let memory = copies * (GROUP_BYTES + (nodes + 1) * COPY_NODE_BYTES + 2 * bytes);
        match self.optional.charge(work, memory) {
            Ok(()) => Some((at, kids)),
            Err(_) => {
                self.optional.used.distributions_skipped += 1;
                None
            }
        }
    }

    /// Charge a built regex's size to the required budget.
    fn charge_regex(&mut self, op: &Operand) -> Result<(), String> {
        let Operand::Regex(re) = op else {
            return Ok(());
        };
        let memory = re.memory_usage() as u64;
        self.required
            .charge(memory / 64, memory)
            .map_err(|e| e.describe("this item's regex", &self.required.budget))
    }

    /// Lay out a group's program and list its items and anchor options.
    fn make_group(&mut self, t: &Tree, doc: u16, roots: &[u32]) -> u32 {
        enum Work {
            Enter(u32),
            Exit(usize),
        }
        let gid = self.groups.len() as u32;
        let start = self.ops.len();
        let mut work = Vec::new();
        let mut items = Vec::new();
        if roots.len() > 1 {
            self.ops.push(Op::And {
                count: roots.len() as u32,
                end: 0,
            });
            work.push(Work::Exit(start));
        }
        let mut ordered: Vec<u32> = roots.to_vec();
        ordered.sort_by_key(|r| t.cost(*r));
        work.extend(ordered.iter().rev().map(|r| Work::Enter(*r)));
        while let Some(w) = work.pop() {
            match w {
                Work::Exit(p) => {
                    let end = self.ops.len() as u32;
                    if let Op::And { end: e, .. } | Op::Or { end: e, .. } = &mut self.ops[p] {
                        *e = end;
                    }
                }
                Work::Enter(n) => match t.operator(n) {
                    None => {
                        let i = t.item_of[n as usize];
                        self.ops.push(Op::Item(i));
                        items.push(i);
                    }
                    Some(op) => {
                        // Cheap operands first, so that AND/OR decide before
                        // touching digests or content.
                        let mut live: Vec<u32> = t.live_kids(n).collect();
                        live.sort_by_key(|k| t.cost(*k));
                        if live.len() == 1 {
                            work.push(Work::Enter(live[0]));
                            continue;
                        }
                        let p = self.ops.len();
                        let count = live.len() as u32;
                        self.ops.push(if op == Operator::And {
                            Op::And { count, end: 0 }
                        } else {
                            Op::Or { count, end: 0 }
                        });
                        work.push(Work::Exit(p));
                        work.extend(live.iter().rev().map(|k| Work::Enter(*k)));
                    }
                },
            }
        }
        items.sort_by_key(|i| self.items[*i as usize].node);
        // Anchor options: items required by the group (below AND nodes only).
        let mut options = Vec::new();
        let mut keys = Vec::new();
        let mut stack: Vec<u32> = roots.to_vec();
        while let Some(n) = stack.pop() {
            match t.operator(n) {
                None => {
                    let item = &self.items[t.item_of[n as usize] as usize];
                    keys.clear();
                    anchor_keys(item, &mut keys);
                    options.extend(keys.drain(..).map(|k| (item.term, k)));
                }
                Some(Operator::And) => stack.extend(t.live_kids(n)),
                Some(Operator::Or) => {
                    // An OR with a single live child requires that child.
                    let live: Vec<u32> = t.live_kids(n).collect();
                    if live.len() == 1 {
                        stack.push(live[0]);
                    }
                }
            }
        }
        self.anchor_options.push(options);
        self.groups.push(Group {
            ioc: t.index,
            doc,
            start: start as u32,
            end: self.ops.len() as u32,
            items: items.into(),
        });
        self.group_ioc.push(t.index);
        gid
    }

    fn finish(
        mut self,
        iocs: Vec<Ioc>,
        budget: CompileBudget,
    ) -> (CompiledCollection, Vec<Diagnostic>) {
        // How many groups share each anchor key.
        let mut sharing: HashMap<(TermId, &AnchorKey), u32> = HashMap::new();
        for options in &self.anchor_options {
            for (term, key) in options {
                *sharing.entry((*term, key)).or_default() += 1;
            }
        }
        let mut choice: Vec<Option<usize>> = Vec::with_capacity(self.groups.len());
        for options in &self.anchor_options {
            let best = options
                .iter()
                .enumerate()
                .min_by_key(|(i, (term, key))| (score(*term, key, sharing[&(*term, key)]), *i))
                .map(|(i, _)| i);
            choice.push(best);
        }
        drop(sharing);
        let mut docs: Vec<DocPlan> = self.docs.iter().map(|d| DocPlan::new(d)).collect();
        let options = std::mem::take(&mut self.anchor_options);
        for ((gid, group), (mut opts, best)) in self
            .groups
            .iter()
            .enumerate()
            .zip(options.into_iter().zip(choice))
        {
            let plan = &mut docs[group.doc as usize];
            plan.groups += 1;
            let terms: TermSet = group
                .items
                .iter()
                .map(|i| self.items[*i as usize].term)
                .collect();
            plan.terms.union_with(&terms);
            match best {
                Some(b) => {
                    let (term, key) = opts.swap_remove(b);
                    let anchor = plan.anchor_mut(term);
                    anchor.terms.union_with(&terms);
                    anchor.insert(key, gid as u32);
                }
                None => plan.unanchored.push(gid as u32),
            }
        }
        let mut problems = Vec::new();
        for plan in &mut docs {
            for a in &mut plan.anchors {
                if let Err(e) = a.finish() {
                    problems.push(format!("substring index of {}: {e}", a.term.text()));
                }
            }
        }
        let content = match std::mem::take(&mut self.content).build() {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("content search automaton: {e}"));
                None
            }
        };
        for message in problems {
            // Cannot happen with the sizes IOC files have; reported rather
            // than panicking.
            self.diags.push(Diagnostic {
                file: String::new(),
                line: 0,
                column: 0,
                stage: Stage::Compile,
                ioc_id: None,
                item_id: None,
                severity: Severity::Error,
                message,
                over_budget: false,
            });
        }
        let table = Arc::new(IocTable {
            iocs,
            formulas: self.formulas,
            group_ioc: self.group_ioc,
            group_leaf: self.group_leaf,
        });
        let c = CompiledCollection {
            table,
            items: self.items,
            groups: self.groups,
            ops: self.ops,
            docs,
            content,
            cost: CompileCost {
                work: self.required.used.work + self.optional.used.work,
                memory: self.required.used.memory + self.optional.used.memory,
                distributions_skipped: self.optional.used.distributions_skipped,
            },
            budget,
        };
        (c, self.diags)
    }
}

/// Work units per node of an IOC (validating, folding, building its
/// formula and its group's program, choosing its anchor).
const WORK_PER_NODE: u64 = 32;
/// Bytes per item of what the compiled form keeps or builds on the way
/// (copy of the IOC for verdicts, tree state, compiled item, program step,
/// anchor options and index entries), value bytes aside.
const NODE_BYTES: u64 = 512;
/// The same per indicator.
const INDICATOR_BYTES: u64 = 256;
/// The same per IOC (its copy, metadata, formula, verdict state).
const IOC_BYTES: u64 = 512;
/// Bytes per node copied by distribution: a program step, an item entry,
/// an anchor option and its share of the index.
const COPY_NODE_BYTES: u64 = 128;
/// Bytes per group beyond its nodes.
const GROUP_BYTES: u64 = 160;
/// Bytes kept per value byte (copy of the IOC, typed operand, substring
/// finder, anchor keys and index).
const VALUE_BYTES: u64 = 8;
/// Bytes per value byte that goes into an Aho-Corasick automaton (content
/// literals, `contains`/`starts-with`/`ends-with` anchors), while building.
const AUTOMATON_BYTES: u64 = 48;
/// Bytes per pattern in such an automaton beyond its bytes.
const AUTOMATON_PATTERN_BYTES: u64 = 1024;
/// Per regex, beyond its program: its lazy DFA's cache (one thread's).
const REGEX_CACHE_BYTES: usize = REGEX_CACHE_CAPACITY;
/// Per regex: parsing and building it (~100 µs for a short pattern; a
/// collection of 32 MiB could otherwise hold 150,000 of them).
const REGEX_WORK: u64 = 4096;

/// What an IOC costs to compile when nothing is distributed (regexes aside:
/// they are charged once built): linear in its size.
fn linear_estimate(ioc: &Ioc) -> (u64, u64) {
    let nodes = ioc.nodes.len() as u64;
    let mut bytes = (ioc.id.len() + ioc.source.len()) as u64;
    let mut items = 0u64;
    let mut automaton = 0u64;
    for node in &ioc.nodes {
        match node {
            Node::Item(it) => {
                items += 1;
                let value = it.content.value.len() as u64;
                bytes += value
                    + (it.id.len()
                        + it.context.search.len()
                        + it.context.document.len()
                        + it.context.context_type.len()
                        + it.content.content_type.len()
                        + it.problem.as_ref().map_or(0, String::len)) as u64;
                let substring = matches!(
                    it.condition,
                    Condition::Contains | Condition::StartsWith | Condition::EndsWith
                );
                if substring
                    || terms::lookup(&it.context.search).is_some_and(super::searches_content)
                {
                    // Plus the pattern's share of the dense states near
                    // the automaton's root.
                    automaton += value + AUTOMATON_PATTERN_BYTES / AUTOMATON_BYTES;
                }
            }
            Node::Indicator(ind) => bytes += ind.id.len() as u64 + 4 * ind.children.len() as u64,
        }
    }
    let m = &ioc.meta;
    for s in [
        &m.short_description,
        &m.description,
        &m.keywords,
        &m.authored_by,
        &m.authored_date,
        &m.last_modified,
        &m.published_date,
    ]
    .into_iter()
    .flatten()
    {
        bytes += s.len() as u64;
    }
    for l in &m.links {
        bytes += (l.rel.len() + l.value.len() + l.href.as_ref().map_or(0, String::len)) as u64;
    }
    let work = (nodes + 1) * WORK_PER_NODE + bytes / 16 + automaton;
    let memory = IOC_BYTES
        + items * NODE_BYTES
        + (nodes - items) * INDICATOR_BYTES
        + bytes * VALUE_BYTES
        + automaton * AUTOMATON_BYTES;
    (work, memory)
}

/// A conjunction of roots with every AND root replaced by its children
/// (the same meaning; the ORs become visible for distribution).
fn flatten_and(t: &Tree, roots: Vec<u32>) -> Vec<u32> {
    if !roots.iter().any(|r| t.operator(*r) == Some(Operator::And)) {
        return roots;
    }
    let mut out = Vec::with_capacity(roots.len());
    let mut stack: Vec<u32> = roots.into_iter().rev().collect();
    while let Some(n) = stack.pop() {
        if t.operator(n) == Some(Operator::And) {
            let kids: Vec<u32> = t.live_kids(n).collect();
            stack.extend(kids.into_iter().rev());
        } else {
            out.push(n);
        }
    }
    out
}

fn position(ioc: &Ioc, n: usize) -> Position {
    match ioc.nodes.get(n) {
        Some(Node::Indicator(i)) => i.position,
        Some(Node::Item(i)) => i.position,
        None => Position::default(),
    }
}

fn node_id(ioc: &Ioc, n: usize) -> &str {
    match ioc.nodes.get(n) {
        Some(Node::Indicator(i)) => &i.id,
        Some(Node::Item(i)) => &i.id,
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shareable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<CompiledCollection>();
        send::<Matcher<'static>>();
        send::<super::super::Verdicts>();
    }
}
