//! Reading OpenIOC 1.0 and 1.1 files (quick-xml, streaming) into the
//! [`crate::indicator`] model, with diagnostics that name file, line, column.
//!
//! # Versions
//!
//! * **OpenIOC 1.0**: root `<ioc xmlns="http://schemas.mandiant.com/2010/ioc">`
//!   (attributes `id`, `last-modified`), the descriptive elements
//!   (`short_description`, `description`, `keywords`, `authored_by`,
//!   `authored_date`, `links/link`) directly under it, the tree in
//!   `<definition>`. Conditions `is`, `isnot`, `contains`, `containsnot`.
//! * **OpenIOC 1.1**: root `<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1">`
//!   (`id`, `last-modified`, `published-date`), the same descriptive elements
//!   in `<metadata>`, the tree in `<criteria>`; `<parameters>` is skipped.
//!   Conditions `is`, `contains`, `starts-with`, `ends-with`, `matches`,
//!   `greater-than`, `less-than`; attributes `negate`, `preserve-case`.
//!
//! Either dialect's conditions are accepted in the other (with a warning);
//! `isnot`/`containsnot` read as `is`/`contains` with `negate` flipped, so
//! `isnot` with `negate="true"` is a plain `is`. Conditions, operators and
//! booleans are matched case-insensitively. A root element without a
//! namespace is read by its name, with a warning. Elements of other
//! namespaces and unknown elements or attributes are skipped. A UTF-8 BOM and
//! comments anywhere outside the root element are fine; the encoding must be
//! UTF-8 (or its ASCII subset). `<Content>` text is trimmed of surrounding
//! whitespace, inner whitespace is kept.
//!
//! # Errors and diagnostics
//!
//! A file that cannot be read, is not well-formed XML, or is not OpenIOC
//! (empty, binary, wrong root element or namespace) gives an
//! [`OpenIocError`] with file, line, column and what was expected; the other
//! files of a [`Collection`] still load. Anything else is a [`Diagnostic`]
//! and the IOC loads:
//!
//! * **error**: an `<IndicatorItem>` with an unknown or missing condition, or
//!   without `<Context>` (or its `search`) or `<Content>`, is kept in the
//!   tree so that it is listed, with [`Item::problem`](crate::indicator::Item::problem)
//!   set: it never matches ([`Item::evaluable`](crate::indicator::Item::evaluable)).
//!   An `<Indicator>` with a missing or unknown operator reads as AND (the
//!   conservative choice). A second top-level `<Indicator>`, or an item
//!   outside any `<Indicator>`, is ignored.
//! * **warning**: a term not in the 1.1 dictionary, a `document` that does
//!   not match the term, an empty value, a non-boolean `negate`, an empty
//!   `<Indicator>` or definition, a missing IOC id (the file name stands in),
//!   a duplicate IOC id within a collection (the first file read wins; the
//!   later copy is dropped and the warning names both files).
//!
//! [`Diagnostic`] is also the compiler's ([`crate::eval`]): its [`Stage`]
//! says which found it (`read` here, `compile` there); both print one way.
//!
//! # Limits (untrusted input)
//!
//! [`Limits`]: 64 MiB per file, element nesting 10,000 deep, 1,000,000
//! Indicator/IndicatorItem nodes per IOC; beyond, the file fails with
//! [`ErrorKind::Limit`] / [`ErrorKind::TooLarge`]. `<!DOCTYPE>` is refused
//! ([`ErrorKind::Doctype`]): no DTD is read and no entity is expanded beyond
//! the five predefined ones and character references. quick-xml bounds the
//! namespace declarations in scope (128; it resolves names by scanning
//! them). At most 1,000 diagnostics are kept per file. Nothing recurses on input depth, and no
//! input makes the reader panic.

mod collection;
mod error;
mod position;
mod reader;
mod schema;

pub use collection::{expand_paths, load_files, load_files_with, Collection, FileSummary};
pub use error::{Diagnostic, ErrorKind, OpenIocError, Severity, Stage};

use crate::indicator::{Ioc, Position};

/// Bounds on what one file may make the reader do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Deepest element nesting (the root element is level 1).
    pub max_depth: usize,
    /// Most `<Indicator>` + `<IndicatorItem>` elements in one IOC.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_bytes: 64 << 20, max_depth: 10_000, max_nodes: 1_000_000 }
    }
}

/// One file read successfully.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub ioc: Ioc,
    pub diagnostics: Vec<Diagnostic>,
    /// Where the root element starts (for diagnostics about the whole IOC).
    pub root: Position,
}

/// Parse one OpenIOC document held in memory (an upload, a stored blob);
/// `name` stands for the file in the result and in diagnostics.
pub fn parse_bytes(name: &str, bytes: &[u8]) -> Result<Parsed, OpenIocError> {
    reader::parse(name, bytes, &Limits::default())
}

pub fn parse_bytes_with(name: &str, bytes: &[u8], limits: &Limits) -> Result<Parsed, OpenIocError> {
    reader::parse(name, bytes, limits)
}
