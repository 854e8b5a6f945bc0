//! `ioc-scan indicators PATH... [--json]`: what a reviewer of an IOC
//! collection needs to see: per IOC its id, name, description, author, source
//! file, and its tree of items, each with whether ioc-scan can evaluate it
//! on this host.
//!
//! Files that fail to load are reported on stderr (exit status 2); the
//! others are listed. `--json` prints one document
//! `{"iocs": [...], "errors": [...]}` where each IOC has a nested `tree`
//! (written with an explicit stack, no recursion).

use super::validate::{printable, write_report};
use anyhow::Context as _;
use ioc_scan::indicator::{Indicator, Ioc, Item, Node, OpenIocVersion};
use ioc_scan::openioc::{self, Collection};
use ioc_scan::terms::support::ItemSupport as Support;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

pub use super::validate::Args;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let collection = openioc::load_files(&args.paths);
    for err in &collection.errors {
        eprintln!("ioc-scan: {}", printable(&err.to_string()));
    }
    write_report(args.json, &collection, write_json, write_human).context("writing the listing")?;
    Ok(if collection.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn version_label(version: OpenIocVersion) -> &'static str {
    match version {
        OpenIocVersion::V1_0 => "1.0",
        OpenIocVersion::V1_1 => "1.1",
    }
}

struct Counts {
    items: usize,
    supported: usize,
    unsupported: usize,
    invalid: usize,
}

fn counts(ioc: &Ioc) -> Counts {
    let mut c = Counts { items: 0, supported: 0, unsupported: 0, invalid: 0 };
    for item in ioc.items() {
        c.items += 1;
        match Support::of(item) {
            Support::Supported => c.supported += 1,
            Support::Unsupported(_) => c.unsupported += 1,
            Support::Invalid(_) => c.invalid += 1,
        }
    }
    c
}

fn write_human(out: &mut impl Write, collection: &Collection) -> std::io::Result<()> {
    for (n, ioc) in collection.iocs.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        write_ioc_human(out, ioc)?;
    }
    writeln!(
        out,
        "{}{} IOCs, {} items",
        if collection.iocs.is_empty() { "" } else { "\n" },
        collection.iocs.len(),
        collection.item_count()
    )
}

fn write_ioc_human(out: &mut impl Write, ioc: &Ioc) -> std::io::Result<()> {
    let meta = &ioc.meta;
    if ioc.name() == ioc.id {
        writeln!(out, "{}", printable(&ioc.id))?;
    } else {
        writeln!(out, "{}  {}", printable(&ioc.id), printable(ioc.name()))?;
    }
    writeln!(out, "  source:      {} (OpenIOC {})", printable(&ioc.source), version_label(ioc.version))?;
    let author = [meta.authored_by.as_deref(), meta.authored_date.as_deref()].into_iter().flatten().collect::<Vec<_>>();
    if !author.is_empty() {
        writeln!(out, "  authored:    {}", printable(&author.join(", ")))?;
    }
    if let Some(modified) = &meta.last_modified {
        writeln!(out, "  modified:    {}", printable(modified))?;
    }
    if let Some(keywords) = &meta.keywords {
        writeln!(out, "  keywords:    {}", printable(keywords))?;
    }
    if !meta.links.is_empty() {
        let links = meta
            .links
            .iter()
            .map(|l| match &l.href {
                Some(href) => format!("{}={} <{}>", l.rel, l.value, href),
                None => format!("{}={}", l.rel, l.value),
            })
            .collect::<Vec<_>>();
        writeln!(out, "  links:       {}", printable(&links.join(", ")))?;
    }
    if let Some(description) = &meta.description {
        writeln!(out, "  description: {}", printable(description))?;
    }
    let c = counts(ioc);
    writeln!(
        out,
        "  items:       {} ({} supported, {} unsupported, {} invalid)",
        c.items, c.supported, c.unsupported, c.invalid
    )?;
    if ioc.root().is_none() {
        writeln!(out, "  (empty definition: never matches)")?;
    }
    for (depth, id) in ioc.walk() {
        let indent = "  ".repeat(depth + 1);
        match ioc.node(id) {
            Node::Indicator(ind) => writeln!(out, "{indent}{}  id {}", operator(ind), printable(&ind.id))?,
            Node::Item(item) => writeln!(out, "{indent}- {}", item_line(item))?,
        }
    }
    Ok(())
}

fn operator(ind: &Indicator) -> &'static str {
    match ind.operator {
        ioc_scan::indicator::Operator::And => "AND",
        ioc_scan::indicator::Operator::Or => "OR",
    }
}

/// `FileItem/FilePath NOT contains "windows" (string, preserve-case)  id ...  [unsupported: ...]`
/// An invalid item shows no condition: the reader could not read one.
fn item_line(item: &Item) -> String {
    let condition = match (&item.problem, item.negate) {
        (Some(_), _) => String::new(),
        (None, true) => format!(" NOT {}", item.condition.as_str()),
        (None, false) => format!(" {}", item.condition.as_str()),
    };
    let mut line = format!(
        "{}{} {:?} ({}{})",
        printable(&item.context.search),
        condition,
        item.content.value,
        printable(&item.content.content_type),
        if item.preserve_case { ", preserve-case" } else { "" },
    );
    let term_document = item.context.search.split('/').next().unwrap_or_default();
    if !item.context.document.is_empty() && item.context.document != term_document {
        line.push_str(&format!(" document {}", printable(&item.context.document)));
    }
    line.push_str(&format!("  id {}", printable(&item.id)));
    match Support::of(item) {
        Support::Supported => {}
        s => line.push_str(&format!("  [{}: {}]", s.label(), printable(s.reason().unwrap_or_default()))),
    }
    line
}

#[derive(Serialize)]
struct IocJson<'a> {
    id: &'a str,
    name: &'a str,
    version: &'static str,
    source: &'a str,
    short_description: Option<&'a str>,
    description: Option<&'a str>,
    keywords: Option<&'a str>,
    authored_by: Option<&'a str>,
    authored_date: Option<&'a str>,
    last_modified: Option<&'a str>,
    published_date: Option<&'a str>,
    links: &'a [ioc_scan::indicator::Link],
    items: usize,
    supported_items: usize,
    unsupported_items: usize,
    invalid_items: usize,
}

#[derive(Serialize)]
struct IndicatorJson<'a> {
    r#type: &'static str,
    id: &'a str,
    operator: &'static str,
    line: u32,
    column: u32,
}

#[derive(Serialize)]
struct ItemJson<'a> {
    r#type: &'static str,
    id: &'a str,
    document: &'a str,
    search: &'a str,
    /// `null` for an invalid item (the reader could not read a condition).
    condition: Option<&'static str>,
    negate: bool,
    preserve_case: bool,
    content_type: &'a str,
    value: &'a str,
    line: u32,
    column: u32,
    support: &'static str,
    reason: Option<&'a str>,
}

fn write_json(out: &mut impl Write, collection: &Collection) -> std::io::Result<()> {
    out.write_all(b"{\"iocs\":[")?;
    for (n, ioc) in collection.iocs.iter().enumerate() {
        if n > 0 {
            out.write_all(b",")?;
        }
        write_ioc_json(out, ioc)?;
    }
    out.write_all(b"],\"errors\":")?;
    serde_json::to_writer(&mut *out, &collection.errors)?;
    out.write_all(b"}\n")
}

fn write_ioc_json(out: &mut impl Write, ioc: &Ioc) -> std::io::Result<()> {
    let meta = &ioc.meta;
    let c = counts(ioc);
    let header = IocJson {
        id: &ioc.id,
        name: ioc.name(),
        version: version_label(ioc.version),
        source: &ioc.source,
        short_description: meta.short_description.as_deref(),
        description: meta.description.as_deref(),
        keywords: meta.keywords.as_deref(),
        authored_by: meta.authored_by.as_deref(),
        authored_date: meta.authored_date.as_deref(),
        last_modified: meta.last_modified.as_deref(),
        published_date: meta.published_date.as_deref(),
        links: &meta.links,
        items: c.items,
        supported_items: c.supported,
        unsupported_items: c.unsupported,
        invalid_items: c.invalid,
    };
    // The header is a flat object: reopen it to append the tree.
    let header = serde_json::to_vec(&header)?;
    out.write_all(&header[..header.len().saturating_sub(1)])?;
    out.write_all(b",\"tree\":")?;
    write_tree_json(out, ioc)?;
    out.write_all(b"}")
}

/// The indicator tree as nested JSON, from the pre-order walk and a stack of
/// the depths of the indicators still open.
fn write_tree_json(out: &mut impl Write, ioc: &Ioc) -> std::io::Result<()> {
    if ioc.root().is_none() {
        return out.write_all(b"null");
    }
    let mut open: Vec<usize> = Vec::new();
    let mut first_child = true;
    for (depth, id) in ioc.walk() {
        while open.last().is_some_and(|&d| d >= depth) {
            open.pop();
            out.write_all(b"]}")?;
            first_child = false;
        }
        if !first_child {
            out.write_all(b",")?;
        }
        match ioc.node(id) {
            Node::Indicator(ind) => {
                let json = IndicatorJson {
                    r#type: "indicator",
                    id: &ind.id,
                    operator: operator(ind),
                    line: ind.position.line,
                    column: ind.position.column,
                };
                let json = serde_json::to_vec(&json)?;
                out.write_all(&json[..json.len().saturating_sub(1)])?;
                out.write_all(b",\"children\":[")?;
                open.push(depth);
                first_child = true;
            }
            Node::Item(item) => {
                let s = Support::of(item);
                let json = ItemJson {
                    r#type: "item",
                    id: &item.id,
                    document: &item.context.document,
                    search: &item.context.search,
                    condition: item.problem.is_none().then(|| item.condition.as_str()),
                    negate: item.negate,
                    preserve_case: item.preserve_case,
                    content_type: &item.content.content_type,
                    value: &item.content.value,
                    line: item.position.line,
                    column: item.position.column,
                    support: s.label(),
                    reason: s.reason(),
                };
                serde_json::to_writer(&mut *out, &json)?;
                first_child = false;
            }
        }
    }
    for _ in open {
        out.write_all(b"]}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_json(xml: &str) -> String {
        let parsed = openioc::parse_bytes("t.ioc", xml.as_bytes()).expect("parses");
        let mut out = Vec::new();
        write_tree_json(&mut out, &parsed.ioc).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tree_json_nests_and_closes() {
        let xml = r#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="x"><criteria>
            <Indicator operator="OR" id="a">
              <Indicator operator="AND" id="b">
                <IndicatorItem id="i1" condition="is"><Context document="FileItem" search="FileItem/Md5sum"/><Content type="md5">00</Content></IndicatorItem>
                <Indicator operator="OR" id="c"/>
              </Indicator>
              <IndicatorItem id="i2" condition="contains"><Context document="FileItem" search="FileItem/FileName"/><Content type="string">x</Content></IndicatorItem>
            </Indicator></criteria></OpenIOC>"#;
        let json: serde_json::Value = serde_json::from_str(&tree_json(xml)).unwrap();
        assert_eq!(json["id"], "a");
        assert_eq!(json["children"][0]["id"], "b");
        assert_eq!(json["children"][0]["children"][0]["id"], "i1");
        assert_eq!(json["children"][0]["children"][1]["id"], "c");
        assert_eq!(json["children"][0]["children"][1]["children"], serde_json::json!([]));
        assert_eq!(json["children"][1]["id"], "i2");
        assert_eq!(json["children"][1]["support"], "supported");
        assert_eq!(json["children"].as_array().unwrap().len(), 2);
    }
}
