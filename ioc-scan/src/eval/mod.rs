//! Evaluation: compile a collection of IOCs into matchers, evaluate
//! observations of objects against them, and turn hits into detections.
//! No I/O happens here: collectors hand in [`Observation`]s.
//!
//! # Use
//!
//! ```
//! use ioc_scan::eval::{CompiledCollection, Field, ObjectRef, Observation, Outcome, Value, Verdicts};
//! use ioc_scan::terms::{ids, TermId};
//!
//! /// A file whose digest costs a read: reported `Pending` until computed.
//! struct File { name: String, md5: Option<Vec<u8>> }
//! impl Observation for File {
//!     fn document(&self) -> &'static str { "FileItem" }
//!     fn field(&self, term: TermId) -> Field<'_> {
//!         match term {
//!             ids::FileItem_FileName => Field::One(Value::Str(self.name.as_str().into())),
//!             ids::FileItem_Md5sum => match &self.md5 {
//!                 Some(d) => Field::One(Value::Digest(d.as_slice().into())),
//!                 None => Field::Pending,
//!             },
//!             _ => Field::Absent,
//!         }
//!     }
//!     fn object_ref(&self) -> ObjectRef {
//!         let mut fields = serde_json::Map::new();
//!         fields.insert("path".into(), self.name.clone().into());
//!         ObjectRef { kind: "file", fields }
//!     }
//! }
//!
//! # fn run(iocs: &[ioc_scan::indicator::Ioc]) {
//! let (compiled, diagnostics) = CompiledCollection::compile(iocs);
//! for d in &diagnostics { eprintln!("{d}"); }
//! // Which collectors to run, which digests to compute at all:
//! let scan_files = compiled.uses_document("FileItem");
//! let need_md5 = compiled.terms_used("FileItem").contains(ids::FileItem_Md5sum);
//! let mut verdicts = Verdicts::new(&compiled);
//! let mut matcher = compiled.matcher(); // one per thread
//! let mut file = File { name: "a.exe".into(), md5: None };
//! loop {
//!     match matcher.evaluate(&file) {
//!         Outcome::NoMatch => break,
//!         // Read the file once, compute what is asked, evaluate again.
//!         Outcome::NeedTerms(_terms) => file.md5 = Some(vec![0; 16]),
//!         Outcome::Hits(hits) => {
//!             for d in verdicts.add_all(hits) { println!("{}", serde_json::to_string(&d).unwrap()) }
//!             break;
//!         }
//!     }
//! }
//! # let _ = (scan_files, need_md5);
//! # }
//! # run(&[]);
//! ```
//!
//! # What an IOC means
//!
//! This is ioc-scan's definition (OpenIOC leaves it open):
//!
//! - An IOC is detected when its top indicator is true.
//! - An **item** tests one field of one kind of object (its *document*,
//!   `FileItem`, `ProcessItem`...). A subtree whose items are all on one
//!   document D is *single-document*; a maximal single-document subtree is
//!   true iff **some object of kind D satisfies the whole subtree** (plain
//!   boolean logic on that one object).
//! - Under a mixed (several documents) AND, the single-document children on
//!   the same document D are grouped: **one object of kind D must satisfy
//!   all of them together**. So `AND(FileName is a, Md5sum is X)` needs one
//!   file with both, never a file named `a` and another file with hash X;
//!   `AND(FileItem..., ProcessItem...)` needs one file and one process.
//!   Mixed children are evaluated recursively on their own.
//! - Under a mixed OR, each child independently.
//!
//! Each IOC is thus compiled into **groups** (a document and subtrees that
//! one object must satisfy together) and a **formula** over groups (AND/OR,
//! leaves = groups). An OR whose truth is "some object satisfies it" is split
//! into one group per branch (the same meaning, and each branch gets its own
//! anchor in the index).
//!
//! # Items
//!
//! - The content text is typed by the term (see [`value`](self)): string,
//!   int/uint64, date, duration, md5/sha1/sha256, IP, bool; a malformed value
//!   is a [`Diagnostic`] and the item never matches.
//! - Conditions: `is`, `contains`, `starts-with`, `ends-with`, `matches`
//!   (regex, size-bounded), `greater-than`, `less-than`; `is` on numbers and
//!   dates takes ranges `A TO B` / `[A TO B]` (inclusive); a date alone
//!   (`2014-10-17`) spans its day. IP `is`/`matches` with a CIDR network
//!   means "in the network".
//! - Strings compare case-insensitively (Unicode lowercase) unless
//!   `preserve-case`; `matches` likewise.
//! - Several values (`Field::Values`): the item is true when ANY value
//!   matches; negated, when NO value matches.
//! - `Field::Absent` (the object has no such field): the item is false,
//!   **also when negated** — negation applies to values that exist.
//! - `Field::Pending`: unknown (three-valued logic; AND/OR decide without it
//!   when they can), see [`Outcome::NeedTerms`].
//! - Items on unknown or unsupported terms ([`crate::terms::support`]) are
//!   constant false, with a warning: `OR(unsupported, Md5sum is X)` still
//!   works, `AND(unsupported, ...)` never matches (and says so).
//!
//! # Budget
//!
//! Compiling is charged to a [`CompileBudget`] for the whole collection
//! (work and memory), before each step; an IOC or regex that does not fit
//! is not evaluated and has an error [`Diagnostic`] (`over_budget`), which
//! `validate` reports and the console refuses at upload (422). The compiled
//! form is linear in the input: the per-branch groups of an OR under an
//! AND (see above) are made one level deep only, and only while their
//! copies fit in a quarter of the budget set aside for them; otherwise the
//! group is evaluated as the tree it is (the same result). What a compile
//! was charged: [`CompiledCollection::cost`].
//!
//! # Speed
//!
//! Per object, only the groups an [`index`](self) lookup of its values
//! returns are evaluated, plus the groups without anchor; 100,000 hash IOCs
//! cost one hash lookup per object. Evaluation allocates nothing when
//! nothing matches ([`Matcher`] keeps its buffers).

mod budget;
mod compare;
mod compile;
mod content;
mod diagnostic;
mod index;
mod matcher;
pub mod observation;
mod termset;
mod value;
mod verdict;

pub use budget::{CompileBudget, CompileCost};
pub use compare::Tri;
pub use compile::CompiledCollection;
pub use content::{searches_content, ContentMatches, ContentPatterns, ContentScanner};
pub use diagnostic::{Diagnostic, Severity, Stage};
pub use matcher::{GroupHit, Matcher, Outcome};
pub use observation::{Field, ObjectRef, Observation, Value};
pub use termset::TermSet;
pub use value::REGEX_SIZE_LIMIT;
pub use verdict::{Detection, Verdicts, MAX_WAITING_HITS_PER_GROUP};
