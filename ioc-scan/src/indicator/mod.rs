//! The indicator model: what an IOC says, independent of the XML it came from.
//!
//! An [`Ioc`] holds its metadata and a tree of [`Node`]s stored in an arena
//! (`Vec<Node>`, children referenced by [`NodeId`]) so that no code walking a
//! deep tree recurses: a hostile file nested 100,000 levels deep cannot
//! overflow the stack, neither here, nor when evaluating, nor when dropping.
//! This module does no I/O and knows no XML.

use serde::{Deserialize, Serialize};

/// Where something stands in its source file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Which OpenIOC dialect a file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenIocVersion {
    /// `http://schemas.mandiant.com/2010/ioc`, root `ioc`, `definition`.
    V1_0,
    /// `http://openioc.org/schemas/OpenIOC_1.1`, root `OpenIOC`, `metadata`, `criteria`.
    V1_1,
}

/// A `<link rel="..." href="...">text</link>` of the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Link {
    pub rel: String,
    pub href: Option<String>,
    pub value: String,
}

/// The descriptive part of an IOC.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IocMeta {
    pub short_description: Option<String>,
    pub description: Option<String>,
    pub keywords: Option<String>,
    pub authored_by: Option<String>,
    pub authored_date: Option<String>,
    pub last_modified: Option<String>,
    pub published_date: Option<String>,
    pub links: Vec<Link>,
}

/// AND / OR of an `<Indicator>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operator {
    And,
    Or,
}

/// The comparison an item makes. OpenIOC 1.0's `isnot` and `containsnot` are
/// read as `Is` / `Contains` with `negate = true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    Is,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    GreaterThan,
    LessThan,
}

impl Condition {
    /// The 1.1 spelling (`is`, `contains`, `starts-with`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Is => "is",
            Condition::Contains => "contains",
            Condition::StartsWith => "starts-with",
            Condition::EndsWith => "ends-with",
            Condition::Matches => "matches",
            Condition::GreaterThan => "greater-than",
            Condition::LessThan => "less-than",
        }
    }
}

/// `<Context document search type>`: which object and which of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Context {
    /// e.g. `FileItem`
    pub document: String,
    /// e.g. `FileItem/Md5sum`: the term.
    pub search: String,
    /// e.g. `mir`, `endpoint`
    pub context_type: String,
}

/// `<Content type>value</Content>`: the value, still as text; it is typed
/// (int, date, hash, IP...) when the collection is compiled for evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Content {
    /// e.g. `string`, `md5`, `int`, `date`, `IP`
    pub content_type: String,
    pub value: String,
}

/// One `<IndicatorItem>`: a single test on one field of one kind of object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub condition: Condition,
    pub context: Context,
    pub content: Content,
    /// 1.1 `negate="true"`, or 1.0 `isnot` / `containsnot`.
    pub negate: bool,
    /// 1.1 `preserve-case="true"`: string comparison is case-sensitive.
    pub preserve_case: bool,
    /// Where the `<IndicatorItem>` starts in its file.
    pub position: Position,
    /// Why this item cannot be evaluated (unknown condition, missing
    /// `<Context>` or `<Content>`...), as reported by the reader. Such an item
    /// is kept so that it is listed, but it never matches: see
    /// [`Item::evaluable`].
    #[serde(default)]
    pub problem: Option<String>,
}

impl Item {
    /// False when the reader found the item unusable ([`Item::problem`]);
    /// evaluation must then treat it as never matching.
    pub fn evaluable(&self) -> bool {
        self.problem.is_none()
    }
}

/// One `<Indicator>`: AND/OR over its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub id: String,
    pub operator: Operator,
    pub children: Vec<NodeId>,
    pub position: Position,
}

/// Index of a node in [`Ioc::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    Indicator(Indicator),
    Item(Item),
}

/// One IOC: metadata plus the indicator tree. `nodes[0]` is the top
/// `<Indicator>` (an IOC with an empty definition has no nodes and never
/// matches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ioc {
    pub id: String,
    pub version: OpenIocVersion,
    pub meta: IocMeta,
    pub nodes: Vec<Node>,
    /// The file it was read from (as the user named it), for diagnostics.
    pub source: String,
}

impl Ioc {
    /// The top indicator, if the definition is not empty.
    pub fn root(&self) -> Option<NodeId> {
        (!self.nodes.is_empty()).then_some(NodeId(0))
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// A short human name: the short description, else the id.
    pub fn name(&self) -> &str {
        self.meta.short_description.as_deref().filter(|s| !s.is_empty()).unwrap_or(&self.id)
    }

    /// Every item of the tree, in document order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Item(i) => Some(i),
            Node::Indicator(_) => None,
        })
    }

    /// Nodes in depth-first pre-order with their depth (0 = root), without
    /// recursion.
    pub fn walk(&self) -> Vec<(usize, NodeId)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(usize, NodeId)> = self.root().map(|r| (0, r)).into_iter().collect();
        while let Some((depth, id)) = stack.pop() {
            out.push((depth, id));
            if let Node::Indicator(ind) = self.node(id) {
                for child in ind.children.iter().rev() {
                    stack.push((depth + 1, *child));
                }
            }
        }
        out
    }
}

/// The paths a scan walks because the IOCs name them, sorted and
/// deduplicated: what a task shows as "paths named in the IOCs" and what its
/// runs add to their scopes (one function, so the two cannot disagree).
///
/// From `FileItem/FullPath` and `FileItem/FilePath` items that can match
/// (evaluable, not negated, `is` or `starts-with`): for `is` the path itself;
/// for `starts-with` the directory that holds every path with that prefix
/// (`/opt/x/kdevtmp` → `/opt/x`, `/opt/x/` → `/opt/x`), never `/`.
/// Windows-looking values (`C:\...`, `%TEMP%`, relative paths) are skipped.
/// No I/O: the scan drops what does not exist on its host.
pub fn paths_named(iocs: &[Ioc]) -> Vec<String> {
    use crate::terms::{self, ids};
    let mut out: Vec<String> = Vec::new();
    for item in iocs.iter().flat_map(Ioc::items) {
        if item.negate || !item.evaluable() {
            continue;
        }
        let term = terms::lookup(&item.context.search);
        if term != Some(ids::FileItem_FullPath) && term != Some(ids::FileItem_FilePath) {
            continue;
        }
        let value = item.content.value.trim();
        if !value.starts_with('/') || value.contains('\\') || value == "/" {
            continue;
        }
        let root = match item.condition {
            Condition::Is => value,
            // Up to the last '/': the directory of every name with this prefix.
            Condition::StartsWith => value[..value.rfind('/').unwrap_or(0)].trim_end_matches('/'),
            _ => continue,
        };
        if !root.is_empty() {
            out.push(root.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Node {
        Node::Item(Item {
            id: id.into(),
            condition: Condition::Is,
            context: Context::default(),
            content: Content::default(),
            negate: false,
            preserve_case: false,
            position: Position::default(),
            problem: None,
        })
    }

    #[test]
    fn walk_is_preorder_with_depth() {
        let ioc = Ioc {
            id: "x".into(),
            version: OpenIocVersion::V1_1,
            meta: IocMeta::default(),
            nodes: vec![
                Node::Indicator(Indicator {
                    id: "root".into(),
                    operator: Operator::Or,
                    children: vec![NodeId(1), NodeId(2)],
                    position: Position::default(),
                }),
                Node::Indicator(Indicator {
                    id: "and".into(),
                    operator: Operator::And,
                    children: vec![NodeId(3)],
                    position: Position::default(),
                }),
                item("b"),
                item("a"),
            ],
            source: "t.ioc".into(),
        };
        let order: Vec<_> = ioc.walk().into_iter().map(|(d, n)| (d, n.0)).collect();
        assert_eq!(order, vec![(0, 0), (1, 1), (2, 3), (1, 2)]);
        assert_eq!(ioc.items().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec!["b", "a"]);
    }

    fn path_ioc(items: &[(&str, Condition, &str, bool)]) -> Ioc {
        let nodes = items
            .iter()
            .map(|(search, condition, value, negate)| {
                Node::Item(Item {
                    id: "i".into(),
                    condition: *condition,
                    context: Context {
                        document: "FileItem".into(),
                        search: search.to_string(),
                        context_type: "mir".into(),
                    },
                    content: Content {
                        content_type: "string".into(),
                        value: value.to_string(),
                    },
                    negate: *negate,
                    preserve_case: false,
                    position: Position::default(),
                    problem: None,
                })
            })
            .collect();
        Ioc {
            id: "t".into(),
            version: OpenIocVersion::V1_1,
            meta: IocMeta::default(),
            nodes,
            source: "t.ioc".into(),
        }
    }

    #[test]
    fn paths_named_keep_unix_literals_and_skip_windows_ones() {
        let got = paths_named(&[path_ioc(&[
            ("FileItem/FullPath", Condition::Is, " /opt/x/evil ", false),
            ("FileItem/FilePath", Condition::Is, "/opt/x", false),
            (
                "FileItem/FullPath",
                Condition::Is,
                "C:\\Windows\\evil.exe",
                false,
            ),
            ("FileItem/FilePath", Condition::Is, "Local\\Temp", false),
            ("FileItem/FullPath", Condition::Is, "%TEMP%/evil", false),
            ("FileItem/FullPath", Condition::Is, "/", false),
            ("FileItem/FullPath", Condition::Contains, "/usr", false),
            ("FileItem/FullPath", Condition::EndsWith, "/usr", false),
            ("FileItem/FullPath", Condition::Is, "/etc/passwd", true),
            ("FileItem/FileName", Condition::Is, "/etc", false),
        ])]);
        assert_eq!(got, vec!["/opt/x", "/opt/x/evil"]);
    }

    #[test]
    fn a_starts_with_path_names_the_directory_of_its_prefix_never_root() {
        let got = paths_named(&[path_ioc(&[
            (
                "FileItem/FullPath",
                Condition::StartsWith,
                "/var/tmp/kdevtmp",
                false,
            ),
            (
                "FileItem/FullPath",
                Condition::StartsWith,
                "/opt/evil/",
                false,
            ),
            (
                "FileItem/FilePath",
                Condition::StartsWith,
                "/srv//cache",
                false,
            ),
            (
                "FileItem/FullPath",
                Condition::StartsWith,
                "/kdevtmp",
                false,
            ),
            ("FileItem/FullPath", Condition::StartsWith, "//x", false),
        ])]);
        assert_eq!(got, vec!["/opt/evil", "/srv", "/var/tmp"]);
    }

    #[test]
    fn an_unevaluable_item_names_no_path_and_duplicates_fold() {
        let mut broken = path_ioc(&[("FileItem/FullPath", Condition::Is, "/opt/broken", false)]);
        if let Node::Item(item) = &mut broken.nodes[0] {
            item.problem = Some("unknown condition".into());
        }
        let plain = path_ioc(&[
            ("FileItem/FullPath", Condition::Is, "/opt/a", false),
            (
                "FileItem/FullPath",
                Condition::StartsWith,
                "/opt/a/b",
                false,
            ),
        ]);
        assert_eq!(paths_named(&[broken, plain.clone(), plain]), vec!["/opt/a"]);
    }
}
