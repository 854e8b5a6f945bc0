//! The vocabulary of OpenIOC 1.0 and 1.1: namespaces, element names,
//! conditions, booleans.

use crate::indicator::{Condition, OpenIocVersion, Operator};

pub(crate) const NS_1_0: &str = "http://schemas.mandiant.com/2010/ioc";
pub(crate) const NS_1_1: &str = "http://openioc.org/schemas/OpenIOC_1.1";

/// The elements the reader acts on; everything else is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    /// `ioc` (1.0) or `OpenIOC` (1.1).
    Root,
    /// 1.1 `metadata`.
    Metadata,
    ShortDescription,
    Description,
    Keywords,
    AuthoredBy,
    AuthoredDate,
    Links,
    Link,
    /// 1.0 `definition` or 1.1 `criteria`.
    Definition,
    Indicator,
    IndicatorItem,
    Context,
    Content,
}

impl Element {
    /// Classify a local name within a document of `version`.
    pub(crate) fn from_local(version: OpenIocVersion, local: &str) -> Option<Element> {
        Some(match (version, local) {
            (OpenIocVersion::V1_0, "ioc") | (OpenIocVersion::V1_1, "OpenIOC") => Element::Root,
            (OpenIocVersion::V1_1, "metadata") => Element::Metadata,
            (_, "short_description") => Element::ShortDescription,
            (_, "description") => Element::Description,
            (_, "keywords") => Element::Keywords,
            (_, "authored_by") => Element::AuthoredBy,
            (_, "authored_date") => Element::AuthoredDate,
            (_, "links") => Element::Links,
            (_, "link") => Element::Link,
            (OpenIocVersion::V1_0, "definition") | (OpenIocVersion::V1_1, "criteria") => Element::Definition,
            (_, "Indicator") => Element::Indicator,
            (_, "IndicatorItem") => Element::IndicatorItem,
            (_, "Context") => Element::Context,
            (_, "Content") => Element::Content,
            _ => return None,
        })
    }
}

/// The version a root element announces, from its local name and namespace
/// (`None` = no namespace, accepted with a warning).
pub(crate) fn root_version(local: &str, namespace: Option<&str>) -> Result<OpenIocVersion, String> {
    match (local, namespace) {
        ("ioc", Some(NS_1_0) | None) => Ok(OpenIocVersion::V1_0),
        ("OpenIOC", Some(NS_1_1) | None) => Ok(OpenIocVersion::V1_1),
        ("ioc" | "OpenIOC", Some(other)) => Err(format!(
            "root element <{local}> is in namespace {other:?}; expected {:?}",
            if local == "ioc" { NS_1_0 } else { NS_1_1 }
        )),
        _ => Err(format!(
            "root element is <{local}>; expected <ioc xmlns=\"{NS_1_0}\"> (OpenIOC 1.0) \
             or <OpenIOC xmlns=\"{NS_1_1}\"> (OpenIOC 1.1)"
        )),
    }
}

/// Which dialect a condition spelling belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Both,
    Only(OpenIocVersion),
}

/// A `condition` attribute: the condition, whether the spelling itself
/// negates (1.0 `isnot`, `containsnot`), and which dialect spells it so.
/// Matched case-insensitively, surrounding whitespace ignored.
pub(crate) fn parse_condition(raw: &str) -> Option<(Condition, bool, Dialect)> {
    let lower = raw.trim().to_ascii_lowercase();
    Some(match lower.as_str() {
        "is" => (Condition::Is, false, Dialect::Both),
        "contains" => (Condition::Contains, false, Dialect::Both),
        "isnot" => (Condition::Is, true, Dialect::Only(OpenIocVersion::V1_0)),
        "containsnot" => (Condition::Contains, true, Dialect::Only(OpenIocVersion::V1_0)),
        "starts-with" => (Condition::StartsWith, false, Dialect::Only(OpenIocVersion::V1_1)),
        "ends-with" => (Condition::EndsWith, false, Dialect::Only(OpenIocVersion::V1_1)),
        "matches" => (Condition::Matches, false, Dialect::Only(OpenIocVersion::V1_1)),
        "greater-than" => (Condition::GreaterThan, false, Dialect::Only(OpenIocVersion::V1_1)),
        "less-than" => (Condition::LessThan, false, Dialect::Only(OpenIocVersion::V1_1)),
        _ => return None,
    })
}

/// `AND` / `OR`, case-insensitively.
pub(crate) fn parse_operator(raw: &str) -> Option<Operator> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("and") {
        Some(Operator::And)
    } else if raw.eq_ignore_ascii_case("or") {
        Some(Operator::Or)
    } else {
        None
    }
}

/// An `xs:boolean`: `true`, `false`, `1`, `0` (case-insensitive, trimmed).
pub(crate) fn parse_bool(raw: &str) -> Option<bool> {
    let raw = raw.trim();
    if raw == "1" || raw.eq_ignore_ascii_case("true") {
        Some(true)
    } else if raw == "0" || raw.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn version_name(version: OpenIocVersion) -> &'static str {
    match version {
        OpenIocVersion::V1_0 => "OpenIOC 1.0",
        OpenIocVersion::V1_1 => "OpenIOC 1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_of_both_dialects() {
        assert_eq!(parse_condition("is"), Some((Condition::Is, false, Dialect::Both)));
        assert_eq!(parse_condition(" IsNot "), Some((Condition::Is, true, Dialect::Only(OpenIocVersion::V1_0))));
        assert_eq!(parse_condition("containsnot").map(|c| (c.0, c.1)), Some((Condition::Contains, true)));
        assert_eq!(parse_condition("starts-with").map(|c| c.0), Some(Condition::StartsWith));
        assert_eq!(parse_condition("ends-with").map(|c| c.0), Some(Condition::EndsWith));
        assert_eq!(parse_condition("matches").map(|c| c.0), Some(Condition::Matches));
        assert_eq!(parse_condition("greater-than").map(|c| c.0), Some(Condition::GreaterThan));
        assert_eq!(parse_condition("less-than").map(|c| c.0), Some(Condition::LessThan));
        assert_eq!(parse_condition("startswith"), None);
        assert_eq!(parse_condition(""), None);
    }

    #[test]
    fn operators_and_booleans() {
        assert_eq!(parse_operator("or"), Some(Operator::Or));
        assert_eq!(parse_operator(" AND"), Some(Operator::And));
        assert_eq!(parse_operator("XOR"), None);
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn root_versions() {
        assert_eq!(root_version("ioc", Some(NS_1_0)), Ok(OpenIocVersion::V1_0));
        assert_eq!(root_version("OpenIOC", Some(NS_1_1)), Ok(OpenIocVersion::V1_1));
        assert_eq!(root_version("OpenIOC", None), Ok(OpenIocVersion::V1_1));
        assert!(root_version("ioc", Some(NS_1_1)).is_err());
        assert!(root_version("html", None).is_err());
    }
}
