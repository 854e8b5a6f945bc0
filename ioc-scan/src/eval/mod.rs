//! Evaluation: compile a collection of IOCs into matchers, evaluate
//! observations of objects against them, and turn hits into detections.
//! No I/O happens here: collectors hand in [`Observation`]s.
//!
//! # Use
//!
//! ```ignore
//! let (compiled, diagnostics) = CompiledCollection::compile(&iocs);
//! // which collectors to run, which digests to compute:
//! for doc in compiled.documents() { /* ... */ }
//! let need_sha256 = compiled.terms_used("FileItem").contains(terms::ids::FileItem_Sha256sum);
//! let mut verdicts = Verdicts::new(&compiled);
//! let mut matcher = compiled.matcher(); // one per thread
//! loop {
//!     match matcher.evaluate(&observation) {
//!         Outcome::NoMatch => break,
//!         Outcome::NeedTerms(terms) => observation.compute(terms), // then evaluate again
//!         Outcome::Hits(hits) => {
//!             for hit in hits { for d in verdicts.add(hit) { report(d) } }
//!             break;
//!         }
//!     }
//! }
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
//! # Speed
//!
//! Per object, only the groups an [`index`](self) lookup of its values
//! returns are evaluated, plus the groups without anchor; 100,000 hash IOCs
//! cost one hash lookup per object. Evaluation allocates nothing when
//! nothing matches ([`Matcher`] keeps its buffers).

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

pub use compare::Tri;
pub use compile::CompiledCollection;
pub use content::{ContentMatches, ContentPatterns, ContentScanner};
pub use diagnostic::{Diagnostic, Severity};
pub use matcher::{GroupHit, Matcher, Outcome};
pub use observation::{Field, ObjectRef, Observation, Value};
pub use termset::TermSet;
pub use value::REGEX_SIZE_LIMIT;
pub use verdict::{Detection, Verdicts, MAX_WAITING_HITS_PER_GROUP};
