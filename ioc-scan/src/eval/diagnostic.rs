//! [`Diagnostic`]: what compiling an IOC found wrong with it. A diagnostic
//! never stops the IOC from loading: the item concerned never matches and
//! the rest of the IOC is evaluated.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, changes nothing (e.g. an indicator that can never match
    /// because of another diagnostic).
    Info,
    /// The IOC uses something ioc-scan does not evaluate (unknown or
    /// unsupported term): those items never match.
    Warning,
    /// The IOC is wrong (malformed value, bad regex, condition that makes no
    /// sense for the type): those items never match.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding about one IOC, located in its source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// [`crate::indicator::Ioc::source`].
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    pub column: u32,
    pub ioc_id: String,
    /// The id of the item (or indicator) concerned; `None` for the IOC as a
    /// whole.
    pub item_id: Option<String>,
    pub severity: Severity,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    /// `file:line:column: severity: message (ioc ID, item ID)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {} (ioc {}",
            self.file, self.line, self.column, self.severity, self.message, self.ioc_id
        )?;
        if let Some(item) = &self.item_id {
            write!(f, ", item {item}")?;
        }
        f.write_str(")")
    }
}
