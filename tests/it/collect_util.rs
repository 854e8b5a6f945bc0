//! Helpers for the host collector tests: build an IOC from items, run one
//! collector through the scan adapter against it, and gather observations.
#![allow(dead_code)]

use ioc_scan::collect::host::{CollectContext, CollectStats, HostCollector, HostRoot, Reply, ScanCollector, Wanted};
use ioc_scan::eval::{CompiledCollection, Field, ObjectRef, Observation, Outcome, Value};
use ioc_scan::openioc;
use ioc_scan::scan::Collector as _;
use ioc_scan::terms::{self, TermId};

/// One IndicatorItem: term, condition, content type, value.
pub type ItemSpec<'a> = (&'a str, &'a str, &'a str, &'a str);

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An OpenIOC 1.1 document whose criteria are the AND of `items`.
pub fn ioc_xml(id: &str, items: &[ItemSpec]) -> String {
    let mut body = String::new();
    for (i, (term, cond, ty, value)) in items.iter().enumerate() {
        let doc = term.split('/').next().unwrap();
        body += &format!(
            "<IndicatorItem id=\"{id}-i{i}\" condition=\"{cond}\" preserve-case=\"false\" negate=\"false\">\
             <Context document=\"{doc}\" search=\"{term}\" type=\"mir\"/><Content type=\"{ty}\">{}</Content></IndicatorItem>\n",
            escape(value)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<OpenIOC xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\" id=\"{id}\" last-modified=\"2026-01-01T00:00:00Z\">\
         <metadata><short_description>{id}</short_description></metadata><criteria><Indicator operator=\"AND\" id=\"{id}-root\">\n{body}</Indicator></criteria></OpenIOC>\n"
    )
}

/// Compile one IOC; panics on any diagnostic (an unsupported term would
/// make the test meaningless).
pub fn compile(items: &[ItemSpec]) -> CompiledCollection {
    let parsed = openioc::parse_bytes("test.ioc", ioc_xml("test-ioc", items).as_bytes()).expect("IOC parses");
    assert!(parsed.diagnostics.is_empty(), "parse diagnostics: {:?}", parsed.diagnostics);
    let (compiled, diags) = CompiledCollection::compile(&[parsed.ioc]);
    assert!(diags.is_empty(), "compile diagnostics: {diags:?}");
    compiled
}

/// Run `collector` under `root` against an IOC made of `items`, through the
/// scan adapter (with its Pending handshake); returns the matched objects.
pub fn matches(collector: Box<dyn HostCollector>, root: &HostRoot, items: &[ItemSpec]) -> Vec<ObjectRef> {
    let compiled = compile(items);
    let wanted = Wanted::terms(compiled.terms_used(collector.document()).iter());
    let adapter = ScanCollector::new(collector, CollectContext::new(root.clone(), wanted));
    let mut matcher = compiled.matcher();
    let mut hits = Vec::new();
    let mut evaluate = |obs: &dyn Observation| {
        let outcome = matcher.evaluate(obs);
        if let Outcome::Hits(h) = &outcome {
            hits.extend(h.iter().map(|h| h.object.clone()));
        }
        outcome
    };
    let summary = adapter.collect(&mut evaluate);
    assert!(summary.objects > 0, "the collector observed nothing");
    hits
}

/// A plain snapshot of one observation: term text → values as strings.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub object: ObjectRef,
    pub fields: Vec<(TermId, Vec<String>)>,
}

impl Snapshot {
    pub fn get(&self, term: &str) -> Vec<String> {
        let id = terms::lookup(term).unwrap_or_else(|| panic!("no term {term}"));
        self.fields
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn one(&self, term: &str) -> String {
        let v = self.get(term);
        assert_eq!(v.len(), 1, "{term}: {v:?}");
        v[0].clone()
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Time(t) => t.to_string(),
        Value::Digest(d) => d.iter().map(|b| format!("{b:02x}")).collect(),
        Value::Ip(ip) => ip.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Duration(d) => d.to_string(),
    }
}

/// Every observation of `collector` under `root` with every term of its
/// document read (Pending fields completed through the handshake).
pub fn observe(collector: &dyn HostCollector, root: &HostRoot) -> (Vec<Snapshot>, CollectStats) {
    let doc = collector.document();
    let doc_terms: Vec<TermId> = terms::TERMS
        .iter()
        .enumerate()
        .filter(|(_, t)| t.document() == doc)
        .map(|(i, _)| TermId(i as u16))
        .collect();
    let mut out: Vec<Snapshot> = Vec::new();
    let mut sink = |obs: &dyn Observation| {
        let pending: Vec<TermId> = doc_terms.iter().copied().filter(|t| obs.field(*t) == Field::Pending).collect();
        if !pending.is_empty() {
            return Reply::Need(pending);
        }
        let fields = doc_terms
            .iter()
            .filter_map(|t| match obs.field(*t) {
                Field::One(v) => Some((*t, vec![render(&v)])),
                Field::Values(vs) => Some((*t, vs.iter().map(render).collect())),
                Field::Pending | Field::Absent => None,
            })
            .collect();
        out.push(Snapshot {
            object: obs.object_ref(),
            fields,
        });
        Reply::Done
    };
    let stats = collector.collect(&CollectContext::new(root.clone(), Wanted::all()), &mut sink);
    (out, stats)
}

/// A temporary host root with files written into it.
pub struct FakeRoot {
    pub dir: tempfile::TempDir,
}

impl FakeRoot {
    pub fn new() -> Self {
        FakeRoot {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Write `content` at the host path `abs` (`/etc/passwd`).
    pub fn write(&self, abs: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.dir.path().join(abs.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    /// The real path of host path `abs`.
    pub fn path(&self, abs: &str) -> std::path::PathBuf {
        self.dir.path().join(abs.trim_start_matches('/'))
    }

    /// Give host path `abs` (not following a symlink) to `uid`:`gid`, as a
    /// user's own file is.
    pub fn own(&self, abs: &str, uid: u32, gid: u32) -> &Self {
        std::os::unix::fs::lchown(self.path(abs), Some(uid), Some(gid)).unwrap();
        self
    }

    pub fn root(&self) -> HostRoot {
        HostRoot::new(self.dir.path())
    }
}
