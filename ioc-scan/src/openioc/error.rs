//! What the reader reports: a fatal [`OpenIocError`] (the file is not
//! loaded) or non-fatal [`Diagnostic`]s (the IOC loads, perhaps with
//! unevaluable items).

use serde::Serialize;
use std::fmt;

/// Why a file could not be loaded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The file could not be read (missing, permission, directory walk).
    Io,
    /// Larger than [`super::Limits::max_file_bytes`].
    TooLarge,
    /// Not UTF-8 (UTF-16 files, Latin-1 bytes, binary data).
    Encoding,
    /// Not well-formed XML.
    Malformed,
    /// A `<!DOCTYPE>`: refused so that no DTD or entity is ever expanded.
    Doctype,
    /// Well-formed, but not an OpenIOC 1.0/1.1 document (wrong root element or
    /// namespace, no root element at all).
    NotOpenIoc,
    /// Deeper than [`super::Limits::max_depth`] or more nodes than
    /// [`super::Limits::max_nodes`].
    Limit,
}

/// A file that could not be loaded. `line`/`column` are 1-based; both are 0
/// when the problem has no place in the file (I/O, size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct OpenIocError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub kind: ErrorKind,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for OpenIocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, changes nothing (e.g. an indicator that can never
    /// match because of another diagnostic).
    Info,
    /// Suspicious but harmless to evaluation (unknown term, duplicate IOC id,
    /// misplaced element...); also an unsupported term (its items never
    /// match).
    Warning,
    /// Something in the IOC cannot be evaluated as written (unknown
    /// condition, malformed value, bad regex, over the compile budget): the
    /// items concerned never match.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Which step found the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading the file ([`super::parse_bytes`], [`super::load_files`]).
    Read,
    /// Compiling the collection for evaluation
    /// ([`crate::eval::CompiledCollection::compile`]).
    Compile,
}

/// A non-fatal problem, found by the reader or by the compiler: the IOC
/// still loads (the items concerned never match). One type for both, printed
/// one way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    pub column: u32,
    pub stage: Stage,
    pub severity: Severity,
    pub ioc_id: Option<String>,
    /// The item (or indicator) concerned; `None` for the IOC as a whole.
    pub item_id: Option<String>,
    pub message: String,
    /// The IOC or item was refused because compiling it would exceed the
    /// collection's [`crate::eval::CompileBudget`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub over_budget: bool,
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: severity: message [ioc id / item id]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.severity, self.message)?;
        match (&self.ioc_id, &self.item_id) {
            (Some(ioc), Some(item)) => write!(f, " [{ioc} / {item}]"),
            (Some(ioc), None) => write!(f, " [{ioc}]"),
            (None, Some(item)) => write!(f, " [/ {item}]"),
            (None, None) => Ok(()),
        }
    }
}
