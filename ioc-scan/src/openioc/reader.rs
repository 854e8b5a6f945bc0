//! The streaming reader: the bytes of one file → one [`Ioc`] and its
//! diagnostics, or an [`OpenIocError`].
//!
//! One pass over quick-xml events with an explicit stack of open elements
//! ([`Open`]); the indicator tree goes straight into the node arena, so
//! neither reading nor dropping recurses however deep the input nests.

use super::error::{Diagnostic, ErrorKind, OpenIocError, Severity, Stage};
use super::position::LineCursor;
use super::schema::{self, Dialect, Element};
use super::{Limits, Parsed};
use crate::indicator::{
    Condition, Content, Context, Indicator, Ioc, IocMeta, Item, Link, Node, NodeId, OpenIocVersion, Operator, Position,
};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// Diagnostics kept per file; one more says that the rest were dropped.
const MAX_DIAGNOSTICS: usize = 1000;

const CONDITIONS: &str = "is, isnot, contains, containsnot, starts-with, ends-with, matches, greater-than, less-than";

/// What an open element is, for the reader.
enum Frame {
    Root,
    /// 1.1 `<metadata>`.
    Metadata,
    /// A descriptive element whose text is collected.
    Text(Element, String),
    Links,
    Link(Link),
    /// 1.0 `<definition>` / 1.1 `<criteria>`.
    Definition,
    Indicator(NodeId),
    Item(ItemState),
    Content {
        item: NodeId,
        content_type: String,
        text: String,
    },
    /// Unknown or misplaced element: it and everything inside is ignored.
    Skip,
}

struct ItemState {
    node: NodeId,
    /// Why the item cannot be evaluated, if it cannot.
    problems: Vec<String>,
    has_context: bool,
    has_content: bool,
}

struct Open {
    frame: Frame,
    /// Byte offset of the element's `<`.
    start: usize,
}

/// Parse one file. See the module docs of [`super`] for what is accepted.
pub(crate) fn parse(file: &str, bytes: &[u8], limits: &Limits) -> Result<Parsed, OpenIocError> {
    let fail = |kind, message: String| OpenIocError { file: file.to_owned(), line: 0, column: 0, kind, message };
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(fail(
            ErrorKind::TooLarge,
            format!("file is {} bytes; the limit is {} bytes", bytes.len(), limits.max_file_bytes),
        ));
    }
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        let mut err = fail(ErrorKind::Encoding, "file is UTF-16; expected UTF-8 (convert it with iconv)".into());
        (err.line, err.column) = (1, 1);
        return Err(err);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let at = LineCursor::new(valid).position(valid.len());
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            return Err(OpenIocError {
                line: at.line,
                column: at.column,
                ..fail(ErrorKind::Encoding, format!("invalid UTF-8 (byte 0x{byte:02x}): expected UTF-8 XML text"))
            });
        }
    };
    if text.trim_matches(is_xml_space).is_empty() {
        return Err(OpenIocError {
            line: 1,
            column: 1,
            ..fail(ErrorKind::NotOpenIoc, "empty file: expected an OpenIOC document (<ioc> or <OpenIOC>)".into())
        });
    }
    Parser::new(file, text, limits).run()
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

struct Parser<'a> {
    file: &'a str,
    text: &'a str,
    limits: &'a Limits,
    lines: LineCursor<'a>,
    /// Set by the root element.
    version: Option<OpenIocVersion>,
    /// The root's namespace (`None`: none declared, accepted with a warning).
    namespace: Option<String>,
    id: String,
    meta: IocMeta,
    nodes: Vec<Node>,
    stack: Vec<Open>,
    diagnostics: Vec<Diagnostic>,
    root_position: Position,
    root_closed: bool,
    has_top_indicator: bool,
}

/// Where the parent of a new element stands, copied out of the stack.
#[derive(Clone, Copy)]
enum Parent {
    Root,
    Metadata,
    Links,
    Definition,
    Indicator(NodeId),
    Item(NodeId),
    Other,
}

impl<'a> Parser<'a> {
    fn new(file: &'a str, text: &'a str, limits: &'a Limits) -> Self {
        Parser {
            file,
            text,
            limits,
            lines: LineCursor::new(text),
            version: None,
            namespace: None,
            id: String::new(),
            meta: IocMeta::default(),
            nodes: Vec::new(),
            stack: Vec::new(),
            diagnostics: Vec::new(),
            root_position: Position { line: 1, column: 1 },
            root_closed: false,
            has_top_indicator: false,
        }
    }

    fn run(mut self) -> Result<Parsed, OpenIocError> {
        let mut reader = NsReader::from_str(self.text);
        loop {
            let start = offset(reader.buffer_position());
            let (ns, event) = match reader.read_resolved_event() {
                Ok(ok) => ok,
                Err(err) => return Err(self.xml_error(&err, offset(reader.error_position()).max(start))),
            };
            match event {
                Event::Start(e) => self.start(&e, &ns, start)?,
                Event::Empty(e) => {
                    self.start(&e, &ns, start)?;
                    self.end(start)?;
                }
                Event::End(_) => self.end(start)?,
                Event::Text(t) => self.text(&t.xml10_content(), start)?,
                Event::CData(c) => self.text(&c.xml10_content(), start)?,
                Event::GeneralRef(r) => self.reference(&r, start)?,
                Event::DocType(_) => {
                    return Err(self.error_at(
                        start,
                        ErrorKind::Doctype,
                        "<!DOCTYPE> is not accepted: OpenIOC needs no DTD, and entities are never expanded".into(),
                    ))
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        self.finish()
    }

    fn finish(mut self) -> Result<Parsed, OpenIocError> {
        if let Some(open) = self.stack.last() {
            let start = open.start;
            let end = self.lines.position(self.text.len());
            let name = element_name_at(self.text, start).to_owned();
            return Err(self.error_at(
                start,
                ErrorKind::Malformed,
                format!("<{name}> is never closed: expected </{name}> before the end of the file at {end}"),
            ));
        }
        let Some(version) = self.version else {
            return Err(self.error_at(
                0,
                ErrorKind::NotOpenIoc,
                "no root element: expected an OpenIOC document (<ioc> or <OpenIOC>)".into(),
            ));
        };
        if !self.has_top_indicator {
            let position = self.root_position;
            let section = if version == OpenIocVersion::V1_0 { "definition" } else { "criteria" };
            self.diagnose(
                position,
                Severity::Warning,
                None,
                format!("no <Indicator> in <{section}>: this IOC never matches"),
            );
        }
        let ioc = Ioc { id: self.id, version, meta: self.meta, nodes: self.nodes, source: self.file.to_owned() };
        Ok(Parsed { ioc, diagnostics: self.diagnostics, root: self.root_position })
    }

    fn start(&mut self, e: &BytesStart, ns: &ResolveResult, start: usize) -> Result<(), OpenIocError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error_at(
                start,
                ErrorKind::Limit,
                format!("elements nested deeper than {} levels", self.limits.max_depth),
            ));
        }
        self.check_attributes(e, start)?;
        let local = e.local_name().into_inner();
        let Some(version) = self.version else {
            return self.root(e, ns, local, start);
        };
        if self.root_closed {
            return Err(self.error_at(
                start,
                ErrorKind::Malformed,
                format!("second root element <{local}>: expected nothing but comments after the root element"),
            ));
        }
        let in_namespace = match ns {
            ResolveResult::Bound(n) => self.namespace.as_deref() == Some(n.into_inner()),
            ResolveResult::Unbound => self.namespace.is_none(),
            ResolveResult::Unknown(_) => false,
        };
        let element = if in_namespace { Element::from_local(version, local) } else { None };
        let parent = match self.stack.last().map(|o| &o.frame) {
            Some(Frame::Root) => Parent::Root,
            Some(Frame::Metadata) => Parent::Metadata,
            Some(Frame::Links) => Parent::Links,
            Some(Frame::Definition) => Parent::Definition,
            Some(Frame::Indicator(id)) => Parent::Indicator(*id),
            Some(Frame::Item(state)) => Parent::Item(state.node),
            _ => Parent::Other,
        };
        let v1_0 = version == OpenIocVersion::V1_0;
        use Element as E;
        let frame = match (parent, element) {
            (Parent::Root, Some(E::Metadata)) => Frame::Metadata,
            (
                Parent::Root,
                Some(f @ (E::ShortDescription | E::Description | E::Keywords | E::AuthoredBy | E::AuthoredDate)),
            ) if v1_0 => Frame::Text(f, String::new()),
            (
                Parent::Metadata,
                Some(f @ (E::ShortDescription | E::Description | E::Keywords | E::AuthoredBy | E::AuthoredDate)),
            ) => Frame::Text(f, String::new()),
            (Parent::Root, Some(E::Links)) if v1_0 => Frame::Links,
            (Parent::Metadata, Some(E::Links)) => Frame::Links,
            (Parent::Links, Some(E::Link)) => {
                let [rel, href] = Self::attributes(e, ["rel", "href"]);
                Frame::Link(Link { rel: rel.unwrap_or_default(), href, value: String::new() })
            }
            (Parent::Root, Some(E::Definition)) => Frame::Definition,
            (Parent::Definition, Some(E::Indicator)) if !self.has_top_indicator => {
                self.has_top_indicator = true;
                Frame::Indicator(self.indicator(e, start, None)?)
            }
            (Parent::Definition, Some(E::Indicator)) => {
                let at = self.lines.position(start);
                self.diagnose(
                    at,
                    Severity::Error,
                    None,
                    "a second top-level <Indicator>: ignored (expected one)".into(),
                );
                Frame::Skip
            }
            (Parent::Definition, Some(E::IndicatorItem)) => {
                let at = self.lines.position(start);
                self.diagnose(
                    at,
                    Severity::Error,
                    None,
                    "<IndicatorItem> outside an <Indicator>: ignored (expected it inside the top <Indicator>)".into(),
                );
                Frame::Skip
            }
            (Parent::Indicator(parent), Some(E::Indicator)) => {
                Frame::Indicator(self.indicator(e, start, Some(parent))?)
            }
            (Parent::Indicator(parent), Some(E::IndicatorItem)) => Frame::Item(self.item(e, start, parent, version)?),
            (Parent::Item(item), Some(E::Context)) => {
                self.context(e, start, item)?;
                Frame::Skip
            }
            (Parent::Item(item), Some(E::Content)) => self.content(e, start, item)?,
            _ => Frame::Skip,
        };
        self.stack.push(Open { frame, start });
        Ok(())
    }

    /// The root element: it decides the version, or that this is no OpenIOC.
    fn root(&mut self, e: &BytesStart, ns: &ResolveResult, local: &str, start: usize) -> Result<(), OpenIocError> {
        let namespace = match ns {
            ResolveResult::Bound(n) => Some(n.into_inner()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(self.error_at(
                    start,
                    ErrorKind::NotOpenIoc,
                    format!("root element <{}> uses the undeclared namespace prefix {prefix:?}", e.name().into_inner()),
                ))
            }
        };
        let version =
            schema::root_version(local, namespace).map_err(|m| self.error_at(start, ErrorKind::NotOpenIoc, m))?;
        self.version = Some(version);
        self.namespace = namespace.map(str::to_owned);
        self.root_position = self.lines.position(start);
        let [id, last_modified, published] = Self::attributes(e, ["id", "last-modified", "published-date"]);
        match id.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
            Some(id) => self.id = id,
            None => {
                self.id = self.file.to_owned();
                let at = self.root_position;
                self.diagnose(
                    at,
                    Severity::Warning,
                    None,
                    format!("<{local}> has no id attribute: the file name stands in for it"),
                );
            }
        }
        self.meta.last_modified = last_modified;
        self.meta.published_date = published;
        if namespace.is_none() {
            let at = self.root_position;
            let expected = if version == OpenIocVersion::V1_0 { schema::NS_1_0 } else { schema::NS_1_1 };
            let name = schema::version_name(version);
            self.diagnose(
                at,
                Severity::Warning,
                None,
                format!("<{local}> has no namespace (expected xmlns=\"{expected}\"): read as {name}"),
            );
        }
        self.stack.push(Open { frame: Frame::Root, start });
        Ok(())
    }

    fn indicator(&mut self, e: &BytesStart, start: usize, parent: Option<NodeId>) -> Result<NodeId, OpenIocError> {
        let [id, operator] = Self::attributes(e, ["id", "operator"]);
        let position = self.lines.position(start);
        let id = id.unwrap_or_default();
        let operator = match operator.as_deref().map(schema::parse_operator) {
            Some(Some(op)) => op,
            Some(None) => {
                let raw = operator.as_deref().unwrap_or_default();
                self.diagnose_item(
                    position,
                    Severity::Error,
                    &id,
                    format!("unknown Indicator operator {raw:?}: expected AND or OR; read as AND"),
                );
                Operator::And
            }
            None => {
                self.diagnose_item(position, Severity::Error, &id, "<Indicator> has no operator: read as AND".into());
                Operator::And
            }
        };
        let node =
            self.push_node(start, Node::Indicator(Indicator { id, operator, children: Vec::new(), position }))?;
        if let Some(parent) = parent {
            self.add_child(parent, node);
        }
        Ok(node)
    }

    fn item(
        &mut self,
        e: &BytesStart,
        start: usize,
        parent: NodeId,
        version: OpenIocVersion,
    ) -> Result<ItemState, OpenIocError> {
        let [id, condition, negate, preserve_case] =
            Self::attributes(e, ["id", "condition", "negate", "preserve-case"]);
        let position = self.lines.position(start);
        let id = id.unwrap_or_default();
        let mut problems = Vec::new();
        let (condition, spelled_negated) = match condition.as_deref() {
            None => {
                problems.push("no condition attribute".to_owned());
                (Condition::Is, false)
            }
            Some(raw) => match schema::parse_condition(raw) {
                Some((condition, negated, dialect)) => {
                    if let Dialect::Only(of) = dialect {
                        if of != version {
                            self.diagnose_item(
                                position,
                                Severity::Warning,
                                &id,
                                format!(
                                    "condition {raw:?} belongs to {}; accepted in this {} file",
                                    schema::version_name(of),
                                    schema::version_name(version)
                                ),
                            );
                        }
                    }
                    (condition, negated)
                }
                None => {
                    problems.push(format!("unknown condition {raw:?} (expected one of {CONDITIONS})"));
                    (Condition::Is, false)
                }
            },
        };
        let negate = self.boolean(negate.as_deref(), "negate", position, &id);
        let preserve_case = self.boolean(preserve_case.as_deref(), "preserve-case", position, &id);
        let node = self.push_node(
            start,
            Node::Item(Item {
                id,
                condition,
                context: Context::default(),
                content: Content::default(),
                // `isnot` with negate="true" is a double negation.
                negate: spelled_negated ^ negate,
                preserve_case,
                position,
                problem: None,
            }),
        )?;
        self.add_child(parent, node);
        Ok(ItemState { node, problems, has_context: false, has_content: false })
    }

    fn context(&mut self, e: &BytesStart, start: usize, item: NodeId) -> Result<(), OpenIocError> {
        let [document, search, context_type] = Self::attributes(e, ["document", "search", "type"]);
        let Some(Open { frame: Frame::Item(state), .. }) = self.stack.last_mut() else { return Ok(()) };
        if state.has_context {
            let at = self.lines.position(start);
            let id = self.item_id(item);
            self.diagnose_item(at, Severity::Warning, &id, "a second <Context> in one item: ignored".into());
            return Ok(());
        }
        state.has_context = true;
        let search = search.map(|s| s.trim().to_owned()).unwrap_or_default();
        if search.is_empty() {
            state.problems.push("<Context> has no search attribute (the term)".into());
        }
        if let Node::Item(it) = &mut self.nodes[item.0 as usize] {
            it.context = Context {
                document: document.map(|s| s.trim().to_owned()).unwrap_or_default(),
                search,
                context_type: context_type.unwrap_or_default(),
            };
        }
        Ok(())
    }

    fn content(&mut self, e: &BytesStart, start: usize, item: NodeId) -> Result<Frame, OpenIocError> {
        let [content_type] = Self::attributes(e, ["type"]);
        let Some(Open { frame: Frame::Item(state), .. }) = self.stack.last_mut() else { return Ok(Frame::Skip) };
        if state.has_content {
            let at = self.lines.position(start);
            let id = self.item_id(item);
            self.diagnose_item(at, Severity::Warning, &id, "a second <Content> in one item: ignored".into());
            return Ok(Frame::Skip);
        }
        state.has_content = true;
        Ok(Frame::Content { item, content_type: content_type.unwrap_or_default(), text: String::new() })
    }

    fn end(&mut self, start: usize) -> Result<(), OpenIocError> {
        let Some(open) = self.stack.pop() else {
            // quick-xml reports unmatched end tags before we see them.
            return Err(self.error_at(start, ErrorKind::Malformed, "end tag without a start tag".into()));
        };
        match open.frame {
            Frame::Root => self.root_closed = true,
            Frame::Text(field, text) => {
                let text = text.trim_matches(is_xml_space);
                let value = (!text.is_empty()).then(|| text.to_owned());
                let slot = match field {
                    Element::ShortDescription => &mut self.meta.short_description,
                    Element::Description => &mut self.meta.description,
                    Element::Keywords => &mut self.meta.keywords,
                    Element::AuthoredBy => &mut self.meta.authored_by,
                    _ => &mut self.meta.authored_date,
                };
                *slot = value;
            }
            Frame::Link(mut link) => {
                link.value = link.value.trim_matches(is_xml_space).to_owned();
                self.meta.links.push(link);
            }
            Frame::Content { item, content_type, text } => {
                if let Node::Item(it) = &mut self.nodes[item.0 as usize] {
                    it.content = Content { content_type, value: text.trim_matches(is_xml_space).to_owned() };
                }
            }
            Frame::Item(state) => self.finish_item(state),
            Frame::Indicator(node) => {
                if let Node::Indicator(ind) = &self.nodes[node.0 as usize] {
                    if ind.children.is_empty() {
                        let (at, id) = (ind.position, ind.id.clone());
                        self.diagnose_item(at, Severity::Warning, &id, "empty <Indicator>".into());
                    }
                }
            }
            Frame::Metadata | Frame::Links | Frame::Definition | Frame::Skip => {}
        }
        Ok(())
    }

    fn finish_item(&mut self, mut state: ItemState) {
        if !state.has_context {
            state.problems.push("no <Context> (which object and field to test)".into());
        }
        if !state.has_content {
            state.problems.push("no <Content> (the value to compare with)".into());
        }
        let Node::Item(item) = &mut self.nodes[state.node.0 as usize] else { return };
        let (at, id) = (item.position, item.id.clone());
        if !state.problems.is_empty() {
            let problem = state.problems.join("; ");
            item.problem = Some(problem.clone());
            self.diagnose_item(at, Severity::Error, &id, format!("{problem}: the item is listed but never matches"));
            return;
        }
        let search = item.context.search.clone();
        let document = item.context.document.clone();
        let empty_value = item.content.value.is_empty();
        if crate::terms::lookup(&search).is_none() {
            let message = format!("term {search:?} is not in the OpenIOC 1.1 term dictionary");
            self.diagnose_item(at, Severity::Warning, &id, message);
        }
        if !document.is_empty() && search.split('/').next() != Some(document.as_str()) {
            let message = format!("Context document {document:?} does not match the term {search:?}");
            self.diagnose_item(at, Severity::Warning, &id, message);
        }
        if empty_value {
            self.diagnose_item(at, Severity::Warning, &id, "empty <Content> value".into());
        }
    }

    /// Text, CDATA: collected by the element that wants it, harmless
    /// whitespace elsewhere, an error outside the root element.
    fn text(&mut self, text: &str, start: usize) -> Result<(), OpenIocError> {
        if let Some(buffer) = self.collecting() {
            buffer.push_str(text);
        } else if self.stack.is_empty() && !text.trim_matches(is_xml_space).is_empty() {
            return Err(self.outside_root(start));
        }
        Ok(())
    }

    /// `&amp;`, `&#x41;`: only the predefined entities and character
    /// references exist (no DTD is read), anything else is not well-formed.
    fn reference(&mut self, reference: &BytesRef, start: usize) -> Result<(), OpenIocError> {
        if self.stack.is_empty() {
            return Err(self.outside_root(start));
        }
        let name: &str = reference;
        let mut utf8 = [0u8; 4];
        let resolved: &str = if reference.is_char_ref() {
            match reference.resolve_char_ref() {
                Ok(Some(c)) => c.encode_utf8(&mut utf8),
                _ => {
                    return Err(self.error_at(
                        start,
                        ErrorKind::Malformed,
                        format!("invalid character reference &{name};"),
                    ))
                }
            }
        } else if let Some(text) = resolve_predefined_entity(name) {
            text
        } else {
            return Err(self.error_at(
                start,
                ErrorKind::Malformed,
                format!("undeclared entity &{name};: expected &lt; &gt; &amp; &quot; &apos; or a character reference"),
            ));
        };
        if let Some(buffer) = self.collecting() {
            buffer.push_str(resolved);
        }
        Ok(())
    }

    fn collecting(&mut self) -> Option<&mut String> {
        match self.stack.last_mut().map(|o| &mut o.frame) {
            Some(Frame::Text(_, text)) | Some(Frame::Content { text, .. }) => Some(text),
            Some(Frame::Link(link)) => Some(&mut link.value),
            _ => None,
        }
    }

    fn outside_root(&mut self, start: usize) -> OpenIocError {
        let (kind, message) = if self.version.is_none() {
            (ErrorKind::NotOpenIoc, "text before the root element: expected an XML document starting with '<'")
        } else {
            (ErrorKind::Malformed, "text after the root element: expected nothing but comments")
        };
        self.error_at(start, kind, message.into())
    }

    /// Check every attribute of `e` for well-formedness (syntax, duplicates,
    /// entities).
    fn check_attributes(&mut self, e: &BytesStart, start: usize) -> Result<(), OpenIocError> {
        for attribute in e.attributes() {
            let attribute = match attribute {
                Ok(a) => a,
                Err(err) => {
                    let message = format!("bad attribute in <{}>: {err}", e.name().into_inner());
                    return Err(self.error_at(start, ErrorKind::Malformed, message));
                }
            };
            if let Err(err) = attribute.normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_predefined_entity) {
                let message = format!(
                    "bad value of attribute {} in <{}>: {err}",
                    attribute.key.into_inner(),
                    e.name().into_inner()
                );
                return Err(self.error_at(start, ErrorKind::Malformed, message));
            }
        }
        Ok(())
    }

    /// The wanted (unprefixed) attributes of `e`, unescaped. `start` has
    /// already checked them all.
    fn attributes<const N: usize>(e: &BytesStart, wanted: [&str; N]) -> [Option<String>; N] {
        let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
        for attribute in e.attributes().flatten() {
            if attribute.key.prefix().is_some() {
                continue;
            }
            let key = attribute.key.local_name().into_inner();
            if let Some(i) = wanted.iter().position(|w| *w == key) {
                let value = attribute.normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_predefined_entity);
                found[i] = value.ok().map(|v| v.into_owned());
            }
        }
        found
    }

    /// An optional `xs:boolean` attribute; a bad value warns and reads false.
    fn boolean(&mut self, raw: Option<&str>, name: &str, at: Position, item_id: &str) -> bool {
        let Some(raw) = raw else { return false };
        schema::parse_bool(raw).unwrap_or_else(|| {
            let message = format!("{name}={raw:?} is not a boolean (true/false): read as false");
            self.diagnose_item(at, Severity::Warning, item_id, message);
            false
        })
    }

    fn push_node(&mut self, start: usize, node: Node) -> Result<NodeId, OpenIocError> {
        if self.nodes.len() >= self.limits.max_nodes {
            let message = format!("more than {} Indicator and IndicatorItem elements", self.limits.max_nodes);
            return Err(self.error_at(start, ErrorKind::Limit, message));
        }
        // max_nodes is capped at u32::MAX by Limits::max_nodes' use here.
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(node);
        Ok(id)
    }

    fn add_child(&mut self, parent: NodeId, child: NodeId) {
        if let Some(Node::Indicator(ind)) = self.nodes.get_mut(parent.0 as usize) {
            ind.children.push(child);
        }
    }

    fn item_id(&self, node: NodeId) -> String {
        match self.nodes.get(node.0 as usize) {
            Some(Node::Item(it)) => it.id.clone(),
            Some(Node::Indicator(ind)) => ind.id.clone(),
            None => String::new(),
        }
    }

    /// quick-xml's error; `at` is where it points (some errors point at the
    /// event's start only).
    fn xml_error(&mut self, err: &quick_xml::Error, at: usize) -> OpenIocError {
        use quick_xml::name::NamespaceError;
        let (kind, message) = match err {
            // quick-xml resolves names by scanning the declarations in
            // scope, and bounds them (128) so that no file makes every
            // element expensive.
            quick_xml::Error::Namespace(NamespaceError::TooManyBindings(max)) => {
                (ErrorKind::Limit, format!("more than {max} namespace declarations in scope"))
            }
            quick_xml::Error::Namespace(NamespaceError::TooDeeplyNested(max)) => {
                (ErrorKind::Limit, format!("elements nested deeper than {max} levels"))
            }
            other => (ErrorKind::Malformed, format!("not well-formed XML: {other}")),
        };
        self.error_at(at, kind, message)
    }

    fn error_at(&mut self, offset: usize, kind: ErrorKind, message: String) -> OpenIocError {
        let at = self.lines.position(offset);
        OpenIocError { file: self.file.to_owned(), line: at.line, column: at.column, kind, message }
    }

    fn diagnose_item(&mut self, at: Position, severity: Severity, item_id: &str, message: String) {
        let item_id = (!item_id.is_empty()).then_some(item_id);
        self.diagnose(at, severity, item_id, message);
    }

    fn diagnose(&mut self, at: Position, severity: Severity, item_id: Option<&str>, message: String) {
        if self.diagnostics.len() > MAX_DIAGNOSTICS {
            return;
        }
        let (severity, message) = if self.diagnostics.len() == MAX_DIAGNOSTICS {
            (Severity::Warning, format!("more than {MAX_DIAGNOSTICS} diagnostics: the rest are not reported"))
        } else {
            (severity, message)
        };
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            stage: Stage::Read,
            severity,
            ioc_id: (!self.id.is_empty()).then(|| self.id.clone()),
            item_id: item_id.map(str::to_owned),
            message,
            over_budget: false,
        });
    }
}

fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// The name of the element whose `<` is at `start` (for messages).
fn element_name_at(text: &str, start: usize) -> &str {
    let rest = text.get(start + 1..).unwrap_or_default();
    let end = rest
        .char_indices()
        .take(200)
        .find(|(_, c)| c.is_whitespace() || *c == '>' || *c == '/')
        .map_or_else(|| rest.char_indices().nth(200).map_or(rest.len(), |(i, _)| i), |(i, _)| i);
    &rest[..end]
}
