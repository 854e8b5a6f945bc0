//! The evaluation engine through its public API: hand-built IOCs, a tiny
//! in-memory observation.

use ioc_scan::eval::{
    CompiledCollection, Diagnostic, Field, GroupHit, Matcher, ObjectRef, Observation, Outcome,
    Severity, TermSet, Value, Verdicts,
};
use ioc_scan::indicator::{
    Condition, Content, Context, Indicator, Ioc, IocMeta, Item, Node, NodeId, OpenIocVersion,
    Operator, Position,
};
use ioc_scan::terms::{ids, support::Support, TermId};
use std::collections::HashMap;

// ---------------------------------------------------------------- builders

/// A tree to turn into an IOC arena.
enum T {
    And(Vec<T>),
    Or(Vec<T>),
    Item(Spec),
}

struct Spec {
    term: &'static str,
    cond: Condition,
    value: String,
    content_type: &'static str,
    negate: bool,
    preserve_case: bool,
    id: Option<&'static str>,
}

fn item(term: &'static str, cond: Condition, value: impl Into<String>) -> T {
    T::Item(Spec {
        term,
        cond,
        value: value.into(),
        content_type: "string",
        negate: false,
        preserve_case: false,
        id: None,
    })
}
fn is(term: &'static str, value: impl Into<String>) -> T {
    item(term, Condition::Is, value)
}

impl T {
    fn spec(mut self, f: impl FnOnce(&mut Spec)) -> T {
        if let T::Item(s) = &mut self {
            f(s);
        }
        self
    }
    fn negate(self) -> T {
        self.spec(|s| s.negate = true)
    }
    fn case(self) -> T {
        self.spec(|s| s.preserve_case = true)
    }
    fn ctype(self, t: &'static str) -> T {
        self.spec(|s| s.content_type = t)
    }
    fn id(self, id: &'static str) -> T {
        self.spec(|s| s.id = Some(id))
    }
}

/// Node `i` is at line `i + 2`, column 5 (so diagnostics can be checked).
fn ioc(id: &str, tree: T) -> Ioc {
    let mut nodes = Vec::new();
    // (tree, slot in the parent's children to fill)
    let mut stack: Vec<(T, Option<(usize, usize)>)> = vec![(tree, None)];
    while let Some((t, parent)) = stack.pop() {
        let me = nodes.len();
        if let Some((p, slot)) = parent {
            if let Node::Indicator(ind) = &mut nodes[p] {
                ind.children[slot] = NodeId(me as u32);
            }
        }
        let position = Position {
            line: me as u32 + 2,
            column: 5,
        };
        match t {
            T::And(kids) => {
                push_indicator(&mut nodes, &mut stack, me, Operator::And, kids, position)
            }
            T::Or(kids) => push_indicator(&mut nodes, &mut stack, me, Operator::Or, kids, position),
            T::Item(s) => nodes.push(Node::Item(Item {
                id: s
                    .id
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("item-{me}")),
                condition: s.cond,
                context: Context {
                    document: s.term.split('/').next().unwrap().into(),
                    search: s.term.into(),
                    context_type: "mir".into(),
                },
                content: Content {
                    content_type: s.content_type.into(),
                    value: s.value,
                },
                negate: s.negate,
                preserve_case: s.preserve_case,
                problem: None,
                position,
            })),
        }
    }
    Ioc {
        id: id.into(),
        version: OpenIocVersion::V1_1,
        meta: IocMeta {
            short_description: Some(format!("{id} name")),
            ..Default::default()
        },
        nodes,
        source: format!("{id}.ioc"),
    }
}

fn push_indicator(
    nodes: &mut Vec<Node>,
    stack: &mut Vec<(T, Option<(usize, usize)>)>,
    me: usize,
    operator: Operator,
    kids: Vec<T>,
    position: Position,
) {
    nodes.push(Node::Indicator(Indicator {
        id: format!("ind-{me}"),
        operator,
        children: vec![NodeId(u32::MAX); kids.len()],
        position,
    }));
    for (slot, k) in kids.into_iter().enumerate().rev() {
        stack.push((k, Some((me, slot))));
    }
}

/// Every term evaluable (tests of ProcessItem, PortItem... before their
/// collectors exist), except the ones the real list marks not for Linux.
fn all_linux(id: TermId) -> Support {
    if id.def().on_linux() || ioc_scan::terms::support::status(id).is_supported() {
        Support::Supported
    } else {
        ioc_scan::terms::support::status(id)
    }
}

fn compile(iocs: &[Ioc]) -> (CompiledCollection, Vec<Diagnostic>) {
    CompiledCollection::compile_with_support(iocs, all_linux)
}

// ------------------------------------------------------------ observation

#[derive(Clone)]
struct Obj {
    doc: &'static str,
    name: String,
    fields: HashMap<TermId, Field<'static>>,
}

fn file(name: &str) -> Obj {
    Obj {
        doc: "FileItem",
        name: name.into(),
        fields: HashMap::new(),
    }
    .with(ids::FileItem_FileName, Value::Str(name.to_owned().into()))
}
fn process(name: &str) -> Obj {
    Obj {
        doc: "ProcessItem",
        name: name.into(),
        fields: HashMap::new(),
    }
    .with(ids::ProcessItem_name, Value::Str(name.to_owned().into()))
}

impl Obj {
    fn with(mut self, t: TermId, v: Value<'static>) -> Self {
        self.fields.insert(t, Field::One(v));
        self
    }
    fn field(mut self, t: TermId, f: Field<'static>) -> Self {
        self.fields.insert(t, f);
        self
    }
    fn s(self, t: TermId, v: &str) -> Self {
        self.with(t, Value::Str(v.to_owned().into()))
    }
}

impl Observation for Obj {
    fn document(&self) -> &'static str {
        self.doc
    }
    fn field(&self, term: TermId) -> Field<'_> {
        self.fields.get(&term).cloned().unwrap_or(Field::Absent)
    }
    fn object_ref(&self) -> ObjectRef {
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), self.name.clone().into());
        ObjectRef {
            kind: if self.doc == "FileItem" {
                "file"
            } else {
                "process"
            },
            fields,
        }
    }
}

/// IOC ids detected when each object is evaluated alone.
fn detect(iocs: &[Ioc], objects: &[Obj]) -> Vec<String> {
    let (c, _) = compile(iocs);
    let mut v = Verdicts::new(&c);
    let mut m = c.matcher();
    let mut out = Vec::new();
    for o in objects {
        match m.evaluate(o) {
            Outcome::Hits(hits) => {
                for h in hits {
                    out.extend(v.add(h).into_iter().map(|d| d.ioc_id));
                }
            }
            Outcome::NoMatch => {}
            Outcome::NeedTerms(t) => panic!("unexpected NeedTerms {t:?}"),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn matches_one(tree: T, obj: Obj) -> bool {
    !detect(&[ioc("x", tree)], &[obj]).is_empty()
}

const NAME: &str = "FileItem/FileName";
const PATH: &str = "FileItem/FullPath";
const SIZE: &str = "FileItem/SizeInBytes";
const MD5: &str = "FileItem/Md5sum";
const SHA1: &str = "FileItem/Sha1sum";
const SHA256: &str = "FileItem/Sha256sum";
const MODIFIED: &str = "FileItem/Modified";
const STRINGS: &str = "FileItem/StringList/string";

// ------------------------------------------------------------- conditions

#[test]
fn strings_compare_case_insensitively_unless_preserve_case() {
    let f = || file("Evil.EXE");
    assert!(matches_one(is(NAME, "evil.exe"), f()));
    assert!(!matches_one(is(NAME, "evil.exe").case(), f()));
    assert!(matches_one(is(NAME, "Evil.EXE").case(), f()));
    assert!(matches_one(item(NAME, Condition::Contains, "IL.ex"), f()));
    assert!(!matches_one(
        item(NAME, Condition::Contains, "IL.ex").case(),
        f()
    ));
    assert!(matches_one(item(NAME, Condition::StartsWith, "EVIL"), f()));
    assert!(!matches_one(item(NAME, Condition::StartsWith, "exe"), f()));
    assert!(matches_one(item(NAME, Condition::EndsWith, ".exe"), f()));
    assert!(!matches_one(
        item(NAME, Condition::EndsWith, ".exe").case(),
        f()
    ));
    // Unicode lowercase on both sides.
    assert!(matches_one(is(NAME, "ÉCOLE.txt"), file("école.TXT")));
    assert!(matches_one(
        item(NAME, Condition::Contains, "CÔTÉ"),
        file("la-côté.doc")
    ));
}

#[test]
fn regex_matches_unanchored_case_rules_and_bad_regex() {
    let f = || file("reallyBad/duck.exe");
    assert!(matches_one(
        item(NAME, Condition::Matches, "foo|DUCK\\.exe"),
        f()
    ));
    assert!(!matches_one(
        item(NAME, Condition::Matches, "DUCK\\.exe").case(),
        f()
    ));
    assert!(matches_one(
        item(NAME, Condition::Matches, "^really[^G]ad/").case(),
        f()
    ));
    let (c, d) = compile(&[ioc(
        "bad",
        T::Or(vec![item(NAME, Condition::Matches, "a(b"), is(NAME, "x")]),
    )]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].severity, d[0].line, d[0].column),
        (Severity::Error, 3, 5)
    );
    assert!(d[0].message.contains("regex"), "{}", d[0].message);
    // The IOC is still evaluated.
    assert!(matches!(c.matcher().evaluate(&file("x")), Outcome::Hits(_)));
    // A regex too big for the size limit is a diagnostic, not a hang.
    let (_, d) = compile(&[ioc(
        "big",
        item(NAME, Condition::Matches, "(\\w{100}){100}"),
    )]);
    assert!(d.iter().any(|d| d.message.contains("too big")), "{d:?}");
}

#[test]
fn ints_uints_ranges_and_ordering() {
    let f = |n: u64| file("f").with(ids::FileItem_SizeInBytes, Value::UInt(n));
    assert!(matches_one(is(SIZE, "1000").ctype("int"), f(1000)));
    assert!(!matches_one(is(SIZE, "1000"), f(1001)));
    assert!(matches_one(
        item(SIZE, Condition::GreaterThan, "1000"),
        f(1001)
    ));
    assert!(!matches_one(
        item(SIZE, Condition::GreaterThan, "1000"),
        f(1000)
    ));
    assert!(matches_one(item(SIZE, Condition::LessThan, "1000"), f(999)));
    assert!(!matches_one(
        item(SIZE, Condition::LessThan, "1000"),
        f(1000)
    ));
    assert!(matches_one(is(SIZE, "100 TO 200"), f(100)));
    assert!(matches_one(is(SIZE, "[100 TO 200]"), f(200)));
    assert!(!matches_one(is(SIZE, "[100 TO 200]"), f(201)));
    assert!(matches_one(is(SIZE, "18446744073709551615"), f(u64::MAX)));
    // int terms are signed
    let pid = |n: i64| process("p").with(ids::ProcessItem_pid, Value::Int(n));
    assert!(matches_one(
        item("ProcessItem/pid", Condition::GreaterThan, "-5"),
        pid(-4)
    ));
    assert!(matches_one(is("ProcessItem/pid", "0x10"), pid(16)));
    // A collector giving the number as text is still compared as a number.
    assert!(matches_one(
        is(SIZE, "42"),
        file("f").s(ids::FileItem_SizeInBytes, "042")
    ));
    for (bad, what) in [
        ("-1", "out of range"),
        ("12kb", "not an integer"),
        ("5 TO 1", "empty range"),
    ] {
        let (_, d) = compile(&[ioc("b", is(SIZE, bad))]);
        assert!(d[0].message.contains(what), "{bad}: {d:?}");
    }
    let (_, d) = compile(&[ioc("b", item(SIZE, Condition::GreaterThan, "1 TO 5"))]);
    assert!(d[0].message.contains("only allowed with `is`"), "{d:?}");
    // ordering on strings is refused
    let (_, d) = compile(&[ioc("b", item(NAME, Condition::GreaterThan, "a"))]);
    assert!(d[0].message.contains("greater-than"), "{d:?}");
}

#[test]
fn dates_exact_day_range_and_ordering() {
    let t = 1408782169; // 2014-08-23T08:22:49Z
    let f = |s: i64| file("f").with(ids::FileItem_Modified, Value::Time(s));
    assert!(matches_one(
        is(MODIFIED, "2014-08-23T08:22:49Z").ctype("date"),
        f(t)
    ));
    assert!(matches_one(is(MODIFIED, "2014-08-23T08:22:49"), f(t)));
    assert!(matches_one(is(MODIFIED, "2014-08-23T10:22:49+02:00"), f(t)));
    assert!(!matches_one(is(MODIFIED, "2014-08-23T08:22:50Z"), f(t)));
    // a date alone is its whole day
    assert!(matches_one(is(MODIFIED, "2014-08-23"), f(t)));
    assert!(!matches_one(is(MODIFIED, "2014-08-24"), f(t)));
    assert!(matches_one(is(MODIFIED, "2014-08-01 TO 2014-08-23"), f(t)));
    assert!(!matches_one(
        is(MODIFIED, "[2014-08-01 TO 2014-08-22]"),
        f(t)
    ));
    assert!(matches_one(
        item(MODIFIED, Condition::GreaterThan, "2014-08-22"),
        f(t)
    ));
    assert!(!matches_one(
        item(MODIFIED, Condition::GreaterThan, "2014-08-23"),
        f(t)
    ));
    assert!(matches_one(
        item(MODIFIED, Condition::LessThan, "2014-08-24T00:00:00Z"),
        f(t)
    ));
    assert!(!matches_one(
        item(MODIFIED, Condition::LessThan, "2014-08-23"),
        f(t)
    ));
    let (_, d) = compile(&[ioc("b", is(MODIFIED, "2014-02-30"))]);
    assert_eq!(
        (d[0].severity, d[0].line, d[0].column),
        (Severity::Error, 2, 5)
    );
    assert!(d[0].message.contains("not a date"), "{d:?}");
}

#[test]
fn durations_by_content_type() {
    let p = |s: u64| process("p").with(ids::ProcessItem_kernelTime, Value::Duration(s));
    let kt = "ProcessItem/kernelTime";
    assert!(matches_one(is(kt, "90").ctype("duration"), p(90)));
    assert!(matches_one(
        item(kt, Condition::GreaterThan, "1m").ctype("duration"),
        p(61)
    ));
    assert!(!matches_one(
        item(kt, Condition::GreaterThan, "00:01:00").ctype("duration"),
        p(60)
    ));
    assert!(matches_one(
        item(kt, Condition::LessThan, "PT1H").ctype("duration"),
        p(3599)
    ));
    assert!(matches_one(is(kt, "60 TO 120").ctype("duration"), p(120)));
    let (_, d) = compile(&[ioc("b", is(kt, "soon").ctype("duration"))]);
    assert!(d[0].message.contains("not a duration"), "{d:?}");
}

#[test]
fn digests_any_case_exact_length_is_only() {
    let md5 = "0123456789abcdef0123456789ABCDEF";
    let bytes = hex::decode(md5).unwrap();
    let f = || file("f").with(ids::FileItem_Md5sum, Value::Digest(bytes.clone().into()));
    assert!(matches_one(is(MD5, md5).ctype("md5"), f()));
    assert!(matches_one(is(MD5, md5.to_lowercase()), f()));
    assert!(matches_one(is(MD5, md5.to_uppercase()), f()));
    assert!(!matches_one(
        is(MD5, "0123456789abcdef0123456789abcdee"),
        f()
    ));
    // a collector giving hex text
    assert!(matches_one(
        is(MD5, md5),
        file("f").s(ids::FileItem_Md5sum, &md5.to_lowercase())
    ));
    let sha1 = "a9993e364706816aba3e25717850c26c9cd0d89d";
    assert!(matches_one(
        is(SHA1, sha1.to_uppercase()),
        file("f").with(
            ids::FileItem_Sha1sum,
            Value::Digest(hex::decode(sha1).unwrap().into())
        )
    ));
    let sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert!(matches_one(
        is(SHA256, sha256),
        file("f").with(
            ids::FileItem_Sha256sum,
            Value::Digest(hex::decode(sha256).unwrap().into())
        )
    ));
    for (term, bad) in [
        (MD5, "0123"),
        (SHA1, md5),
        (SHA256, sha1),
        (MD5, "0123456789abcdef0123456789abcdeg"),
    ] {
        let (_, d) = compile(&[ioc("b", is(term, bad))]);
        assert_eq!(d[0].severity, Severity::Error, "{term} {bad}");
    }
    let (_, d) = compile(&[ioc("b", item(MD5, Condition::Contains, "0123"))]);
    assert!(d[0].message.contains("does not apply"), "{d:?}");
}

#[test]
fn ip_equality_and_cidr() {
    let port = |ip: &str| {
        Obj {
            doc: "PortItem",
            name: ip.into(),
            fields: HashMap::new(),
        }
        .with(ids::PortItem_remoteIP, Value::Ip(ip.parse().unwrap()))
    };
    let rip = "PortItem/remoteIP";
    assert!(matches_one(
        is(rip, "10.1.2.3").ctype("IP"),
        port("10.1.2.3")
    ));
    assert!(!matches_one(is(rip, "10.1.2.3"), port("10.1.2.4")));
    assert!(matches_one(is(rip, "10.0.0.0/8"), port("10.1.2.4")));
    assert!(matches_one(
        item(rip, Condition::Matches, "10.1.0.0/16"),
        port("10.1.2.4")
    ));
    assert!(!matches_one(
        item(rip, Condition::Matches, "10.2.0.0/16"),
        port("10.1.2.4")
    ));
    assert!(matches_one(is(rip, "2001:db8::/32"), port("2001:db8::1")));
    assert!(matches_one(is(rip, "10.1.2.3"), port("::ffff:10.1.2.3")));
    // `matches` with a regex over the address's text
    assert!(matches_one(
        item(rip, Condition::Matches, "^10\\.1\\."),
        port("10.1.9.9")
    ));
    let (_, d) = compile(&[ioc("b", is(rip, "10.1.2"))]);
    assert!(d[0].message.contains("not an IP"), "{d:?}");
}

#[test]
fn bools() {
    let term = "PortItem/isIPv6";
    let port = |b: bool| {
        Obj {
            doc: "PortItem",
            name: "p".into(),
            fields: HashMap::new(),
        }
        .with(ids::PortItem_isIPv6, Value::Bool(b))
    };
    assert!(matches_one(is(term, "true"), port(true)));
    assert!(matches_one(is(term, "0"), port(false)));
    assert!(!matches_one(is(term, "FALSE"), port(true)));
    let (_, d) = compile(&[ioc("b", is(term, "yes"))]);
    assert!(d[0].message.contains("not a bool"), "{d:?}");
}

#[test]
fn permissions_octal_or_symbolic() {
    let f = |m: i64| file("f").with(ids::FileItem_Permissions, Value::Int(m));
    assert!(matches_one(is("FileItem/Permissions", "755"), f(0o755)));
    assert!(matches_one(
        is("FileItem/Permissions", "rwsr-xr-x"),
        f(0o4755)
    ));
    assert!(!matches_one(is("FileItem/Permissions", "0644"), f(0o755)));
    // a whole st_mode (regular file 0o100755), or the mode as text
    assert!(matches_one(is("FileItem/Permissions", "0755"), f(0o100755)));
    assert!(matches_one(
        is("FileItem/Permissions", "755"),
        file("f").s(ids::FileItem_Permissions, "-rwxr-xr-x")
    ));
}

// ----------------------------------------------------------------- negate

#[test]
fn negate_single_multi_and_absent() {
    let f = || file("a.exe");
    assert!(!matches_one(is(NAME, "a.exe").negate(), f()));
    assert!(matches_one(is(NAME, "b.exe").negate(), f()));
    // Multi-valued: any value matches; negated: no value matches.
    let multi = |vals: &[&str]| {
        file("f").field(
            ids::FileItem_StringList_string,
            Field::Values(
                vals.iter()
                    .map(|s| Value::Str(s.to_string().into()))
                    .collect(),
            ),
        )
    };
    assert!(matches_one(
        item(STRINGS, Condition::Contains, "bad"),
        multi(&["good", "so bad"])
    ));
    assert!(!matches_one(
        item(STRINGS, Condition::Contains, "bad").negate(),
        multi(&["good", "so bad"])
    ));
    assert!(matches_one(
        item(STRINGS, Condition::Contains, "bad").negate(),
        multi(&["good", "fine"])
    ));
    assert!(matches_one(
        item(STRINGS, Condition::Contains, "bad").negate(),
        multi(&[])
    ));
    // Absent: false, negated or not.
    assert!(!matches_one(
        is(MD5, "0123456789abcdef0123456789abcdef"),
        f()
    ));
    assert!(!matches_one(
        is(MD5, "0123456789abcdef0123456789abcdef").negate(),
        f()
    ));
    assert!(!matches_one(is(PATH, "/x").negate(), f()));
}

// ---------------------------------------------------------------- nesting

#[test]
fn and_or_nesting_four_deep() {
    // OR(AND(name is a.exe, OR(size > 100, AND(path contains tmp, NOT size is 5))), name is z)
    let tree = || {
        T::Or(vec![
            T::And(vec![
                is(NAME, "a.exe"),
                T::Or(vec![
                    item(SIZE, Condition::GreaterThan, "100"),
                    T::And(vec![
                        item(PATH, Condition::Contains, "tmp"),
                        is(SIZE, "5").negate(),
                    ]),
                ]),
            ]),
            is(NAME, "z"),
        ])
    };
    let f = |name: &str, path: &str, size: u64| {
        file(name)
            .s(ids::FileItem_FullPath, path)
            .with(ids::FileItem_SizeInBytes, Value::UInt(size))
    };
    assert!(matches_one(tree(), f("a.exe", "/usr/a.exe", 101)));
    assert!(!matches_one(tree(), f("a.exe", "/usr/a.exe", 100)));
    assert!(matches_one(tree(), f("a.exe", "/tmp/a.exe", 6)));
    assert!(!matches_one(tree(), f("a.exe", "/tmp/a.exe", 5)));
    assert!(!matches_one(tree(), f("b.exe", "/tmp/b.exe", 500)));
    assert!(matches_one(tree(), f("z", "/", 0)));
}

// ------------------------------------------------------- same-object rule

#[test]
fn and_on_one_document_needs_one_object() {
    let md5 = "0123456789abcdef0123456789abcdef";
    let tree = || T::And(vec![is(NAME, "a.exe"), is(MD5, md5)]);
    let digest = Value::Digest(hex::decode(md5).unwrap().into());
    let named = file("a.exe").with(ids::FileItem_Md5sum, Value::Digest(vec![0; 16].into()));
    let hashed = file("b.exe").with(ids::FileItem_Md5sum, digest.clone());
    assert!(detect(&[ioc("x", tree())], &[named, hashed]).is_empty());
    let both = file("a.exe").with(ids::FileItem_Md5sum, digest);
    assert_eq!(detect(&[ioc("x", tree())], &[both]), vec!["x"]);
}

#[test]
fn and_across_documents_needs_one_object_of_each() {
    let tree = || {
        T::And(vec![
            is(NAME, "payload.bin"),
            item("ProcessItem/name", Condition::StartsWith, "kwork"),
            is("ProcessItem/pid", "4242"),
        ])
    };
    let (c, d) = compile(&[ioc("x", tree())]);
    assert!(d.is_empty(), "{d:?}");
    let mut docs: Vec<_> = c.documents().collect();
    docs.sort();
    assert_eq!(docs, vec!["FileItem", "ProcessItem"]);
    let mut v = Verdicts::new(&c);
    let mut m = c.matcher();
    // A process with the name but another pid, and one with the pid but
    // another name: neither satisfies the process group.
    assert_eq!(
        m.evaluate(&process("kworker").with(ids::ProcessItem_pid, Value::Int(1))),
        Outcome::NoMatch
    );
    assert_eq!(
        m.evaluate(&process("bash").with(ids::ProcessItem_pid, Value::Int(4242))),
        Outcome::NoMatch
    );
    // The file alone: waits.
    let f = hits(&mut m, &file("payload.bin"));
    assert_eq!(f.len(), 1);
    assert!(v.add(f[0].clone()).is_empty());
    assert!(!v.is_detected(0));
    // The process arrives: one detection per contributing object.
    let p = hits(
        &mut m,
        &process("kworker/0").with(ids::ProcessItem_pid, Value::Int(4242)),
    );
    let ds = v.add(p[0].clone());
    let mut objs: Vec<_> = ds
        .iter()
        .map(|d| (d.object.kind, d.matched_items.len()))
        .collect();
    objs.sort();
    assert_eq!(objs, vec![("file", 1), ("process", 2)]);
    assert_eq!(ds[0].ioc_name, "x name");
    assert!(v.is_detected(0));
    // The same process again: nothing new; another file: reported at once.
    assert!(v.add(p[0].clone()).is_empty());
    let f2 = hits(
        &mut m,
        &Obj {
            name: "other".into(),
            ..file("payload.bin")
        },
    );
    assert_eq!(v.add(f2[0].clone()).len(), 1);
}

#[test]
fn or_ioc_is_detected_at_once_and_late_branch_waits() {
    // OR(file a, AND(file b, process p))
    let tree = T::Or(vec![
        is(NAME, "a"),
        T::And(vec![is(NAME, "b"), is("ProcessItem/name", "p")]),
    ]);
    let (c, _) = compile(&[ioc("x", tree)]);
    let mut v = Verdicts::new(&c);
    let mut m = c.matcher();
    let mut add = |o: &Obj| match m.evaluate(o) {
        Outcome::Hits(h) => v.add_all(h).len(),
        _ => 0,
    };
    assert_eq!(add(&file("a")), 1);
    // The other branch is not true yet: its file waits.
    assert_eq!(add(&file("b")), 0);
    // Now it is: the waiting file and the process are reported.
    assert_eq!(add(&process("p")), 2);
}

fn hits(m: &mut Matcher<'_>, o: &Obj) -> Vec<GroupHit> {
    match m.evaluate(o) {
        Outcome::Hits(h) => h,
        other => panic!("{other:?}"),
    }
}

// ----------------------------------------------------- pending / handshake

#[test]
fn pending_terms_are_requested_only_when_they_decide() {
    let md5 = "0123456789abcdef0123456789abcdef";
    let iocs = [ioc("x", T::And(vec![is(NAME, "a.exe"), is(MD5, md5)]))];
    let (c, _) = compile(&iocs);
    assert!(c.terms_used("FileItem").contains(ids::FileItem_Md5sum));
    assert!(!c.terms_used("FileItem").contains(ids::FileItem_Sha1sum));
    assert!(c.terms_used("ProcessItem").is_empty());
    let mut m = c.matcher();
    let pending = |name: &str| file(name).field(ids::FileItem_Md5sum, Field::Pending);
    // Another name: decided without the digest.
    assert_eq!(m.evaluate(&pending("b.exe")), Outcome::NoMatch);
    // The name matches: the digest decides.
    let want: TermSet = [ids::FileItem_Md5sum].into_iter().collect();
    assert_eq!(m.evaluate(&pending("a.exe")), Outcome::NeedTerms(want));
    let full = file("a.exe").with(
        ids::FileItem_Md5sum,
        Value::Digest(hex::decode(md5).unwrap().into()),
    );
    assert!(
        matches!(m.evaluate(&full), Outcome::Hits(h) if h.len() == 1 && h[0].matched_items.len() == 2)
    );
    // Absent (unreadable file) settles it.
    assert_eq!(m.evaluate(&file("a.exe")), Outcome::NoMatch);
}

#[test]
fn pending_anchor_asks_for_all_pending_terms_of_its_groups() {
    // Anchored on the digest (the only anchor), with content also pending.
    let md5 = "0123456789abcdef0123456789abcdef";
    let iocs = [ioc(
        "x",
        T::And(vec![
            is(MD5, md5),
            item(STRINGS, Condition::Contains, "evil"),
        ]),
    )];
    let (c, _) = compile(&iocs);
    let mut m = c.matcher();
    let obs = file("f")
        .field(ids::FileItem_Md5sum, Field::Pending)
        .field(ids::FileItem_StringList_string, Field::Pending);
    let want: TermSet = [ids::FileItem_Md5sum, ids::FileItem_StringList_string]
        .into_iter()
        .collect();
    assert_eq!(m.evaluate(&obs), Outcome::NeedTerms(want));
}

#[test]
fn content_search_handshake() {
    let iocs = [
        ioc(
            "content",
            T::And(vec![
                item(STRINGS, Condition::Contains, "EvilMarker"),
                is(NAME, "a.sh"),
            ]),
        ),
        ioc(
            "exact-case",
            item(STRINGS, Condition::Contains, "CaseMatters").case(),
        ),
        ioc("other", item(STRINGS, Condition::Is, "never-there")),
    ];
    let (c, d) = compile(&iocs);
    assert!(d.is_empty(), "{d:?}");
    assert!(c
        .terms_used("FileItem")
        .contains(ids::FileItem_StringList_string));
    let patterns = c.content_patterns().expect("content patterns");
    assert_eq!(patterns.len(), 3);
    let mut m = c.matcher();
    let first = file("a.sh").field(ids::FileItem_StringList_string, Field::Pending);
    let want: TermSet = [ids::FileItem_StringList_string].into_iter().collect();
    assert_eq!(m.evaluate(&first), Outcome::NeedTerms(want));
    // The collector reads the file once through the scanner.
    let mut scan = patterns.scanner();
    for chunk in [&b"#!/bin/sh\n# evilmar"[..], b"ker\ncasematters\n"] {
        scan.feed(chunk);
    }
    let found = scan.finish();
    assert_eq!(found.ids().len(), 1);
    assert_eq!(patterns.literal(found.ids()[0]), Some("EvilMarker"));
    let second = file("a.sh").field(ids::FileItem_StringList_string, found.field());
    match m.evaluate(&second) {
        Outcome::Hits(h) => {
            assert_eq!(h.len(), 1);
            assert_eq!(c.iocs()[h[0].ioc as usize].id, "content");
        }
        other => panic!("{other:?}"),
    }
    // Another name: the content group is false whatever the content.
    let mut scan = patterns.scanner();
    scan.feed(b"CaseMatters");
    let other = file("b.sh").field(ids::FileItem_StringList_string, scan.finish().field());
    assert!(
        matches!(m.evaluate(&other), Outcome::Hits(h) if c.iocs()[h[0].ioc as usize].id == "exact-case")
    );
}

// ------------------------------------------------ unsupported, malformed

#[test]
fn unsupported_and_unknown_terms_warn_and_never_match() {
    let md5 = "0123456789abcdef0123456789abcdef";
    let iocs = [
        ioc(
            "or",
            T::Or(vec![
                is("FileItem/PEInfo/PETimeStamp", "2014-08-23T08:22:49Z").id("pe"),
                is(MD5, md5),
            ]),
        ),
        ioc(
            "and",
            T::And(vec![
                is("NoSuchItem/thing", "x").id("unknown"),
                is(NAME, "a"),
            ]),
        ),
    ];
    // The real support list.
    let (c, d) = CompiledCollection::compile(&iocs);
    let pe = d
        .iter()
        .find(|d| d.item_id.as_deref() == Some("pe"))
        .expect("pe diag");
    assert_eq!(
        (pe.severity, pe.line, pe.column, pe.file.as_str()),
        (Severity::Warning, 3, 5, "or.ioc")
    );
    assert!(
        pe.message.contains("not available on Linux"),
        "{}",
        pe.message
    );
    let unk = d
        .iter()
        .find(|d| d.item_id.as_deref() == Some("unknown"))
        .expect("unknown diag");
    assert!(unk.message.contains("unknown term"), "{}", unk.message);
    // AND(unsupported, ...) says it can never match.
    assert!(
        d.iter()
            .any(|d| d.ioc_id.as_deref() == Some("and") && d.message.contains("can never")),
        "{d:?}"
    );
    // OR(unsupported, md5) still works.
    let mut m = c.matcher();
    let f = file("a").with(
        ids::FileItem_Md5sum,
        Value::Digest(hex::decode(md5).unwrap().into()),
    );
    match m.evaluate(&f) {
        Outcome::Hits(h) => assert_eq!(
            h.iter()
                .map(|h| c.iocs()[h.ioc as usize].id.as_str())
                .collect::<Vec<_>>(),
            ["or"]
        ),
        other => panic!("{other:?}"),
    }
    // Linux terms no collector answers say why.
    let (_, d) = CompiledCollection::compile(&[ioc(
        "h",
        is("FileItem/StringMatchList/StringMatch/StringsBefore/string", "x"),
    )]);
    assert!(d[0].message.contains("around a content match"), "{d:?}");
}

#[test]
fn malformed_tree_is_reported_not_panicking() {
    let mut bad = ioc("bad", T::Or(vec![is(NAME, "a"), is(NAME, "b")]));
    if let Node::Indicator(ind) = &mut bad.nodes[0] {
        ind.children.push(NodeId(99)); // out of range
        ind.children.push(NodeId(0)); // a cycle
        ind.children.push(NodeId(1)); // twice
    }
    let (c, d) = compile(&[bad]);
    assert!(d.iter().any(|d| d.message.contains("malformed")), "{d:?}");
    assert!(matches!(c.matcher().evaluate(&file("b")), Outcome::Hits(_)));
}

// --------------------------------------------------------------- limits

#[test]
fn nested_100000_deep_compiles_and_evaluates() {
    const DEPTH: usize = 100_000;
    // AND(OR(AND(OR(... deep.bin ..., side.bin), ...), side.bin)): every OR
    // has its own side leaf, appended after the chain.
    let mut nodes = Vec::with_capacity(DEPTH * 3 / 2 + 1);
    let mut sides = Vec::new();
    for i in 0..DEPTH {
        let operator = if i % 2 == 0 {
            Operator::And
        } else {
            Operator::Or
        };
        let mut children = vec![NodeId(i as u32 + 1)];
        if i % 2 == 1 {
            children.push(NodeId((DEPTH + 1 + sides.len()) as u32));
            sides.push(i);
        }
        nodes.push(Node::Indicator(Indicator {
            id: format!("i{i}"),
            operator,
            children,
            position: Position::default(),
        }));
    }
    let leaf = |id: String, name: &str| {
        Node::Item(Item {
            id,
            condition: Condition::Is,
            context: Context {
                document: "FileItem".into(),
                search: NAME.into(),
                context_type: "mir".into(),
            },
            content: Content {
                content_type: "string".into(),
                value: name.into(),
            },
            negate: false,
            preserve_case: false,
            problem: None,
            position: Position::default(),
        })
    };
    nodes.push(leaf("deep".into(), "deep.bin"));
    for i in &sides {
        nodes.push(leaf(format!("side{i}"), "side.bin"));
    }
    let deep = Ioc {
        id: "deep".into(),
        version: OpenIocVersion::V1_1,
        meta: IocMeta::default(),
        nodes,
        source: "deep.ioc".into(),
    };
    // Also a mixed (two-document) deep tree.
    let mut mixed = deep.clone();
    mixed.id = "mixed".into();
    for n in &mut mixed.nodes[DEPTH + 1..] {
        if let Node::Item(it) = n {
            it.context.search = "ProcessItem/name".into();
        }
    }
    let (c, d) = compile(&[deep, mixed]);
    assert!(d.is_empty(), "{d:?}");
    let mut v = Verdicts::new(&c);
    let mut m = c.matcher();
    for (o, want) in [
        (file("deep.bin"), 2),
        (file("side.bin"), 1),
        (process("side.bin"), 1),
        (file("nope"), 0),
    ] {
        let got = match m.evaluate(&o) {
            Outcome::Hits(h) => v.add_all(h).len(),
            _ => 0,
        };
        assert_eq!(got, want, "{}", o.name);
    }
}

#[test]
fn index_evaluates_only_the_right_candidate_among_100000_hashes() {
    const N: usize = 100_000;
    let md5 = |i: usize| format!("{:032x}", (i as u128) * 0x9e3779b97f4a7c15);
    let mut iocs: Vec<Ioc> = (0..N)
        .map(|i| ioc(&format!("h{i}"), is(MD5, md5(i))))
        .collect();
    // And one IOC with 100,000 hashes in one OR, and some low-selectivity
    // ANDs that must anchor on the digest, not on the extension.
    iocs.push(ioc(
        "big-or",
        T::Or(
            (0..N)
                .map(|i| is(SHA1, format!("{:040x}", i + 1)))
                .collect(),
        ),
    ));
    for i in 0..1000 {
        iocs.push(ioc(
            &format!("ext{i}"),
            T::And(vec![
                is("FileItem/FileExtension", "exe"),
                is(MD5, md5(N + i)),
            ]),
        ));
    }
    let (c, d) = compile(&iocs);
    assert!(d.is_empty());
    assert_eq!(c.group_count(), 2 * N + 1000);
    let mut m = c.matcher();
    let digest = |hex_text: String| Value::Digest(hex::decode(hex_text).unwrap().into());
    let obj = |md5v: String, sha1v: String| {
        file("x.exe")
            .s(ids::FileItem_FileExtension, "exe")
            .with(ids::FileItem_Md5sum, digest(md5v))
            .with(ids::FileItem_Sha1sum, digest(sha1v))
    };
    let before = m.groups_evaluated();
    assert_eq!(
        m.evaluate(&obj(md5(N * 7), format!("{:040x}", 0))),
        Outcome::NoMatch
    );
    assert_eq!(m.groups_evaluated() - before, 0);
    let before = m.groups_evaluated();
    match m.evaluate(&obj(md5(31337), format!("{:040x}", 5))) {
        Outcome::Hits(h) => {
            let mut ids: Vec<_> = h
                .iter()
                .map(|h| c.iocs()[h.ioc as usize].id.clone())
                .collect();
            ids.sort();
            assert_eq!(ids, ["big-or", "h31337"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.groups_evaluated() - before, 2);
    let before = m.groups_evaluated();
    assert!(
        matches!(m.evaluate(&obj(md5(N + 3), format!("{:040x}", 0))), Outcome::Hits(h) if h.len() == 1)
    );
    assert_eq!(m.groups_evaluated() - before, 1);
}

#[test]
fn hash_list_under_a_common_condition_is_indexed_per_hash() {
    // AND(FileExtension is exe, OR(500 digests)): one group per digest.
    let md5 = |i: usize| format!("{:032x}", i + 1);
    let tree = T::And(vec![
        is("FileItem/FileExtension", "exe"),
        T::Or((0..500).map(|i| is(MD5, md5(i))).collect()),
    ]);
    let (c, _) = compile(&[ioc("x", tree)]);
    assert_eq!(c.group_count(), 500);
    let mut m = c.matcher();
    let obj = |ext: &str, i: usize| {
        file("f").s(ids::FileItem_FileExtension, ext).with(
            ids::FileItem_Md5sum,
            Value::Digest(hex::decode(md5(i)).unwrap().into()),
        )
    };
    let before = m.groups_evaluated();
    assert_eq!(m.evaluate(&obj("exe", 9999)), Outcome::NoMatch);
    assert_eq!(m.groups_evaluated() - before, 0);
    let before = m.groups_evaluated();
    let h = hits(&mut m, &obj("EXE", 7));
    assert_eq!(m.groups_evaluated() - before, 1);
    assert_eq!(h[0].matched_items.len(), 2);
    // Same object rule still holds: the digest of a non-exe does not match.
    assert_eq!(m.evaluate(&obj("dll", 7)), Outcome::NoMatch);
}

#[test]
fn substring_index_among_many_contains() {
    let iocs: Vec<Ioc> = (0..5000)
        .map(|i| {
            ioc(
                &format!("c{i}"),
                item(PATH, Condition::Contains, format!("/Drop{i}/")),
            )
        })
        .collect();
    let (c, _) = compile(&iocs);
    let mut m = c.matcher();
    let before = m.groups_evaluated();
    let o = file("a").s(ids::FileItem_FullPath, "/tmp/drop42/x");
    assert!(
        matches!(m.evaluate(&o), Outcome::Hits(h) if h.len() == 1 && c.iocs()[h[0].ioc as usize].id == "c42")
    );
    assert_eq!(m.groups_evaluated() - before, 1);
}

#[test]
fn detection_serializes_with_ioc_metadata() {
    let (c, _) = compile(&[ioc("x", is(NAME, "a").id("the-item"))]);
    let mut v = Verdicts::new(&c);
    let Outcome::Hits(h) = c.matcher().evaluate(&file("a")) else {
        panic!()
    };
    let d = v.add(h.into_iter().next().unwrap());
    let json = serde_json::to_value(&d[0]).unwrap();
    assert_eq!(json["ioc_id"], "x");
    assert_eq!(json["ioc_source"], "x.ioc");
    assert_eq!(json["object"]["kind"], "file");
    assert_eq!(json["object"]["name"], "a");
    assert_eq!(json["matched_items"][0], "the-item");
}

/// A quick measurement, not an assertion: `cargo test --release --test it
/// eval::bench_evaluate -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_evaluate() {
    for n in [10usize, 100_000] {
        let iocs: Vec<Ioc> = (0..n)
            .map(|i| ioc(&format!("h{i}"), is(MD5, format!("{:032x}", i + 1))))
            .collect();
        let (c, _) = compile(&iocs);
        let mut m = c.matcher();
        let o = file("x")
            .s(ids::FileItem_FullPath, "/usr/bin/x")
            .with(ids::FileItem_Md5sum, Value::Digest(vec![7; 16].into()));
        let rounds = 1_000_000;
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(m.evaluate(std::hint::black_box(&o)));
        }
        println!(
            "{n} hash IOCs: {:.0} ns per evaluate",
            t.elapsed().as_nanos() as f64 / rounds as f64
        );
    }
}

// ------------------------------------------------------------- regressions

/// An item the reader flagged (here: an unknown condition, read as `is` so
/// that it can still be listed) must never match, even when its value would.
#[test]
fn item_with_reader_problem_never_matches() {
    let xml = br#"<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="flagged">
<criteria><Indicator operator="OR" id="r">
<IndicatorItem id="bad" condition="is-like"><Context document="FileItem" search="FileItem/FileName"/><Content type="string">evil.sh</Content></IndicatorItem>
<IndicatorItem id="nocond"><Context document="FileItem" search="FileItem/FileName"/><Content type="string">evil.sh</Content></IndicatorItem>
</Indicator></criteria></OpenIOC>"#;
    let parsed = ioc_scan::openioc::parse_bytes("flagged.ioc", xml).unwrap();
    assert!(parsed.ioc.nodes.iter().any(|n| matches!(n, Node::Item(i) if !i.evaluable())));
    assert_eq!(detect(&[parsed.ioc], &[file("evil.sh")]), Vec::<String>::new());
    // The same IOC with a known condition is detected: the file is right.
    let good = std::str::from_utf8(xml).unwrap().replace("is-like", "is");
    let parsed = ioc_scan::openioc::parse_bytes("good.ioc", good.as_bytes()).unwrap();
    assert_eq!(detect(&[parsed.ioc], &[file("evil.sh")]), vec!["flagged".to_string()]);
}

// ---------------------------------------------------- differential (plans)

/// A random tree over a small vocabulary (so that objects match often):
/// file names, extensions, digests, process names, some negated.
fn random_tree(rng: &mut fastrand::Rng, depth: u32) -> T {
    if depth == 0 || rng.u8(0..4) == 0 {
        let leaf = match rng.u8(0..6) {
            0 => is(NAME, ["a.exe", "b.dll", "c.exe"][rng.usize(0..3)]),
            1 => item(NAME, Condition::Contains, ["a", "b", "."][rng.usize(0..3)]),
            2 => is(MD5, format!("{:032x}", rng.u8(1..4))),
            3 => is("FileItem/FileExtension", ["exe", "dll"][rng.usize(0..2)]),
            4 => is("ProcessItem/name", ["p", "q"][rng.usize(0..2)]),
            _ => is("FileItem/SizeInBytes", format!("{}", rng.u8(1..3))).ctype("int"),
        };
        return if rng.u8(0..5) == 0 { leaf.negate() } else { leaf };
    }
    let kids = (0..rng.usize(1..5)).map(|_| random_tree(rng, depth - 1)).collect();
    if rng.bool() {
        T::And(kids)
    } else {
        T::Or(kids)
    }
}

fn random_objects(rng: &mut fastrand::Rng) -> Vec<Obj> {
    let mut out = Vec::new();
    for i in 0..rng.usize(1..8) {
        let name = ["a.exe", "b.dll", "c.exe", "zz"][rng.usize(0..4)];
        let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
        let mut f = file(name).s(ids::FileItem_FileExtension, extension);
        f.name = format!("{name}#{i}");
        if rng.bool() {
            let digest = vec![0u8; 15].into_iter().chain([rng.u8(1..4)]).collect::<Vec<u8>>();
            f = f.with(ids::FileItem_Md5sum, Value::Digest(digest.into()));
        }
        if rng.bool() {
            f = f.with(ids::FileItem_SizeInBytes, Value::UInt(rng.u64(1..3)));
        }
        out.push(f);
    }
    for i in 0..rng.usize(0..3) {
        let mut p = process(["p", "q", "r"][rng.usize(0..3)]);
        p.name = format!("{}#{i}", p.name);
        out.push(p);
    }
    out
}

/// (IOC id, object, matched items sorted) of every detection.
fn detections(c: &CompiledCollection, objects: &[Obj]) -> Vec<(String, String, Vec<String>)> {
    let mut v = Verdicts::new(c);
    let mut m = c.matcher();
    let mut out = Vec::new();
    for o in objects {
        match m.evaluate(o) {
            Outcome::Hits(hits) => {
                for d in v.add_all(hits) {
                    let mut items = d.matched_items;
                    items.sort();
                    out.push((d.ioc_id, d.object.fields["name"].to_string(), items));
                }
            }
            Outcome::NoMatch => {}
            Outcome::NeedTerms(t) => panic!("nothing is pending, yet {t:?}"),
        }
    }
    out.sort();
    out
}

#[test]
fn distributed_plan_and_tree_plan_detect_the_same() {
    let mut rng = fastrand::Rng::with_seed(14);
    let (mut distributed_groups, mut detected) = (0, 0);
    for round in 0..300 {
        let iocs: Vec<Ioc> = (0..rng.usize(1..6))
            .map(|i| ioc(&format!("r{round}-{i}"), random_tree(&mut rng, 4)))
            .collect();
        let (planned, _) = compile(&iocs);
        let (trees, _) = CompiledCollection::compile_as_trees(&iocs, all_linux);
        distributed_groups += planned.group_count() - trees.group_count();
        for _ in 0..5 {
            let objects = random_objects(&mut rng);
            let found = detections(&planned, &objects);
            detected += found.len();
            assert_eq!(found, detections(&trees, &objects), "round {round}");
        }
    }
    // The plans did differ (distribution happened).
    assert!(distributed_groups > 100, "{distributed_groups}");
    assert!(detected > 300, "{detected}");
}
