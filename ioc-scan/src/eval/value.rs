//! Typed values: the IOC side (an item's `<Content>` text parsed once, at
//! compile time, into an [`Operand`]) and the observed side (coercing a
//! collector's [`Value`] into the operand's type, without allocating in the
//! common cases).
//!
//! The type of an item comes from its term (`TermDef::display_type`), with
//! one refinement from the content type: `<Content type="duration">` makes a
//! duration of a string or int term (e.g. `ProcessItem/kernelTime`).

use super::observation::Value;
use crate::indicator::{Condition, Item};
use crate::terms::{ids, DataType, TermId};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use ipnet::IpNet;
use memchr::memmem;
use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use std::net::IpAddr;

/// Upper bound of a compiled regex (bytes of program), so that a hostile
/// pattern cannot take memory or time without bound.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most bytes of a regex's lazy DFA cache, per scanning thread (the compile
/// budget charges one): past it the DFA starts over or gives way to a
/// slower engine, never to more memory.
pub(crate) const REGEX_CACHE_CAPACITY: usize = 64 << 10;

/// How observed values are coerced for a numeric operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NumKind {
    Int,
    /// Seconds since the epoch, UTC.
    Time,
    /// Seconds.
    Duration,
    /// Permission bits: observed numbers are masked with `0o7777` (a full
    /// `st_mode` compares as its permissions), strings parsed as modes.
    Mode,
}

/// The type an item is evaluated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    /// Signed int (`int` terms) or unsigned (`uint64` terms).
    Int {
        unsigned: bool,
    },
    Date,
    Duration,
    /// Digest of this many bytes.
    Digest(usize),
    Ip,
    Bool,
    /// Unix permission bits (`FileItem/Permissions`): octal `755` / `0o755`
    /// or symbolic `rwxr-xr-x`.
    Mode,
}

impl Kind {
    pub(crate) fn of(term: TermId, content_type: &str) -> Kind {
        if term == ids::FileItem_Permissions {
            return Kind::Mode;
        }
        let def = term.def();
        let duration = content_type.eq_ignore_ascii_case("duration");
        match def.display_type {
            "md5" => Kind::Digest(16),
            "sha1" => Kind::Digest(20),
            "sha256" => Kind::Digest(32),
            "IP" => Kind::Ip,
            _ if duration => Kind::Duration,
            _ => match def.data_type {
                DataType::Int => Kind::Int { unsigned: false },
                DataType::UInt64 => Kind::Int { unsigned: true },
                DataType::DateTime => Kind::Date,
                DataType::Boolean => Kind::Bool,
                DataType::String => Kind::Str,
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int { unsigned: false } => "int",
            Kind::Int { unsigned: true } => "uint64",
            Kind::Date => "date",
            Kind::Duration => "duration",
            Kind::Digest(16) => "md5",
            Kind::Digest(20) => "sha1",
            Kind::Digest(_) => "sha256",
            Kind::Ip => "IP",
            Kind::Bool => "bool",
            Kind::Mode => "permissions",
        }
    }
}

/// A string operand: the text (ASCII/Unicode-lowercased unless
/// preserve-case) and a prebuilt substring finder for `contains`.
#[derive(Debug, Clone)]
pub(crate) struct StrOperand {
    pub text: Box<str>,
    pub finder: memmem::Finder<'static>,
}

/// An item's value, typed and ready to compare.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Str(StrOperand),
    Regex(Regex),
    /// Inclusive range (`lo == hi` for a single value).
    Num {
        kind: NumKind,
        lo: i128,
        hi: i128,
    },
    Digest(Box<[u8]>),
    Ip(IpAddr),
    Net(IpNet),
    Bool(bool),
    /// A literal searched in file content (`FileItem/StringList/string`):
    /// the id of its pattern in [`super::ContentPatterns`] and the text for
    /// observations that give the strings themselves.
    Content {
        pattern: u32,
        text: StrOperand,
    },
}

/// Parse `item`'s content for `term`. `content_pattern` registers a literal
/// for content search and returns its id. The error is the diagnostic's
/// message.
pub(crate) fn compile_operand(
    item: &Item,
    term: TermId,
    regex_limit: usize,
    content_pattern: &mut dyn FnMut(&str, bool) -> u32,
) -> Result<Operand, String> {
    let kind = Kind::of(term, &item.content.content_type);
    let text = item.content.value.as_str();
    let cond = item.condition;
    let bad_condition = || {
        Err(format!(
            "condition `{}` does not apply to {} values of {}",
            cond.as_str(),
            kind.name(),
            term.text()
        ))
    };
    // `preserve-case` on other types is harmless (the spec says it applies
    // only to strings): ignored.
    if super::content::searches_content(term) {
        return match cond {
            Condition::Is | Condition::Contains => {
                if text.is_empty() {
                    return Err("empty string searched in file content".into());
                }
                let pattern = content_pattern(text, item.preserve_case);
                Ok(Operand::Content { pattern, text: str_operand(text, item.preserve_case) })
            }
            _ => Err(format!(
                "only `contains` and `is` are evaluated on {} (a search of the file's content), not `{}`",
                term.text(),
                cond.as_str()
            )),
        };
    }
    match kind {
        Kind::Str => match cond {
            Condition::Matches => {
                compile_regex(text, item.preserve_case, regex_limit).map(Operand::Regex)
            }
            Condition::GreaterThan | Condition::LessThan => bad_condition(),
            _ => Ok(Operand::Str(str_operand(text, item.preserve_case))),
        },
        Kind::Int { unsigned } => num_operand(cond, text, NumKind::Int, |s| {
            parse_int(s, unsigned).map(|v| (v, v))
        })
        .or_else(|e| {
            if is_ordering_or_is(cond) {
                Err(e)
            } else {
                bad_condition()
            }
        }),
        Kind::Date => num_operand(cond, text, NumKind::Time, parse_date).or_else(|e| {
            if is_ordering_or_is(cond) {
                Err(e)
            } else {
                bad_condition()
            }
        }),
        Kind::Duration => num_operand(cond, text, NumKind::Duration, |s| {
            parse_duration(s).map(|d| (d, d))
        })
        .or_else(|e| {
            if is_ordering_or_is(cond) {
                Err(e)
            } else {
                bad_condition()
            }
        }),
        Kind::Mode => match cond {
            Condition::Is => parse_mode(text).map(|m| Operand::Num {
                kind: NumKind::Mode,
                lo: m,
                hi: m,
            }),
            _ => bad_condition(),
        },
        Kind::Digest(len) => match cond {
            Condition::Is => parse_digest(text, len).map(|d| Operand::Digest(d.into())),
            _ => bad_condition(),
        },
        Kind::Ip => match cond {
            Condition::Is | Condition::Matches => match parse_ip(text) {
                Ok(op) => Ok(op),
                // `matches` with something that is not an address: a regex
                // over the address's text.
                Err(_) if cond == Condition::Matches => {
                    compile_regex(text, false, regex_limit).map(Operand::Regex)
                }
                Err(e) => Err(e),
            },
            _ => bad_condition(),
        },
        Kind::Bool => match cond {
            Condition::Is => parse_bool(text)
                .map(Operand::Bool)
                .ok_or_else(|| format!("`{text}` is not a bool (true, false, 1, 0)")),
            _ => bad_condition(),
        },
    }
}

fn is_ordering_or_is(cond: Condition) -> bool {
    matches!(
        cond,
        Condition::Is | Condition::GreaterThan | Condition::LessThan
    )
}

/// A numeric operand: `is` takes a value or a range `A TO B` / `[A TO B]`;
/// `greater-than` / `less-than` take a value.
fn num_operand(
    cond: Condition,
    text: &str,
    kind: NumKind,
    parse: impl Fn(&str) -> Result<(i128, i128), String>,
) -> Result<Operand, String> {
    if !is_ordering_or_is(cond) {
        return Err(String::new());
    }
    if let Some((a, b)) = split_range(text) {
        if cond != Condition::Is {
            return Err(format!("a range (`{text}`) is only allowed with `is`"));
        }
        let (lo, _) = parse(a)?;
        let (_, hi) = parse(b)?;
        if lo > hi {
            return Err(format!("empty range `{text}`: its start is after its end"));
        }
        return Ok(Operand::Num { kind, lo, hi });
    }
    let (lo, hi) = parse(text)?;
    Ok(Operand::Num { kind, lo, hi })
}

/// `A TO B` or `[A TO B]` (the `TO` in any case).
fn split_range(text: &str) -> Option<(&str, &str)> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    let upper = t.to_ascii_uppercase();
    let at = upper.find(" TO ")?;
    Some((t[..at].trim(), t[at + 4..].trim()))
}

pub(crate) fn str_operand(text: &str, preserve_case: bool) -> StrOperand {
    let text: Box<str> = if preserve_case {
        text.into()
    } else {
        fold_owned(text).into()
    };
    let finder = memmem::Finder::new(text.as_bytes()).into_owned();
    StrOperand { text, finder }
}

/// A regex whose program is at most `limit` bytes (at most
/// [`REGEX_SIZE_LIMIT`]: what is left of the collection's compile budget);
/// its lazy DFA cache per thread by [`REGEX_CACHE_CAPACITY`].
fn compile_regex(pattern: &str, preserve_case: bool, limit: usize) -> Result<Regex, String> {
    let limit = limit.min(REGEX_SIZE_LIMIT);
    Regex::builder()
        .syntax(syntax::Config::new().case_insensitive(!preserve_case))
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(limit))
                .onepass_size_limit(Some(limit))
                .dfa_size_limit(Some(limit))
                .hybrid_cache_capacity(REGEX_CACHE_CAPACITY),
        )
        .build(pattern)
        .map_err(|e| match e.size_limit() {
            Some(limit) => format!("regex `{pattern}` is too big (limit {limit} bytes)"),
            None => format!("bad regex: {e}"),
        })
}

/// An int; `0x` for hex; `unsigned` refuses negatives and allows the whole
/// u64 range.
pub(crate) fn parse_int(text: &str, unsigned: bool) -> Result<i128, String> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let parsed = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse::<u64>(),
    };
    let magnitude = parsed.map_err(|_| format!("`{text}` is not an integer"))? as i128;
    let v = if neg { -magnitude } else { magnitude };
    let (lo, hi) = if unsigned {
        (0, u64::MAX as i128)
    } else {
        (i64::MIN as i128, i64::MAX as i128)
    };
    if v < lo || v > hi {
        return Err(format!(
            "`{text}` is out of range for {}",
            if unsigned { "uint64" } else { "int" }
        ));
    }
    Ok(v)
}

/// A date: RFC 3339 / ISO 8601 with or without zone (UTC when none), `T` or
/// space between date and time, or a date alone. Returns the seconds since
/// the epoch of its first and last second (a date alone spans its day).
pub(crate) fn parse_date(text: &str) -> Result<(i128, i128), String> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        let s = d.timestamp() as i128;
        return Ok((s, s));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            let s = d.and_utc().timestamp() as i128;
            return Ok((s, s));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let start = d
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp() as i128);
        if let Some(s) = start {
            return Ok((s, s + 86_399));
        }
    }
    Err(format!(
        "`{text}` is not a date (e.g. 2014-10-17T08:22:49Z or 2014-10-17)"
    ))
}

/// A duration in seconds: a plain integer, `90s` / `5m` / `2h` / `1d`,
/// `hh:mm:ss[.fff]`, or ISO 8601 `P1DT2H3M4S`. Fractions of a second are
/// dropped.
pub(crate) fn parse_duration(text: &str) -> Result<i128, String> {
    let t = text.trim();
    let err = || format!("`{text}` is not a duration (seconds, 5m, 01:02:03 or P1DT2H)");
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v as i128);
    }
    let unit = |c: char| match c.to_ascii_lowercase() {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        'w' => Some(7 * 86_400),
        _ => None,
    };
    if let Some(last) = t.chars().last() {
        if let (Some(mult), Ok(v)) = (
            unit(last),
            t[..t.len() - last.len_utf8()].trim().parse::<u64>(),
        ) {
            return Ok(v as i128 * mult);
        }
    }
    if t.contains(':') {
        let mut total: i128 = 0;
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() > 3 {
            return Err(err());
        }
        for p in &parts {
            let whole = p.split('.').next().unwrap_or("");
            let v: u64 = whole.parse().map_err(|_| err())?;
            total = total * 60 + v as i128;
        }
        return Ok(total);
    }
    if let Some(rest) = t.strip_prefix('P').or_else(|| t.strip_prefix('p')) {
        let mut total: i128 = 0;
        let mut in_time = false;
        let mut num = String::new();
        let mut any = false;
        for c in rest.chars() {
            match c {
                '0'..='9' | '.' => num.push(c),
                'T' | 't' if num.is_empty() => in_time = true,
                _ => {
                    let whole = num.split('.').next().unwrap_or("");
                    let v: u64 = whole.parse().map_err(|_| err())?;
                    let mult = match (c.to_ascii_uppercase(), in_time) {
                        ('W', false) => 7 * 86_400,
                        ('D', false) => 86_400,
                        ('H', true) => 3600,
                        ('M', true) => 60,
                        ('S', true) => 1,
                        _ => return Err(err()),
                    };
                    total += v as i128 * mult;
                    num.clear();
                    any = true;
                }
            }
        }
        if any && num.is_empty() {
            return Ok(total);
        }
    }
    Err(err())
}

/// Hex of exactly `len` bytes, any case.
pub(crate) fn parse_digest(text: &str, len: usize) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let name = Kind::Digest(len).name();
    if t.len() != len * 2 {
        return Err(format!(
            "{name} `{t}` must be {} hex digits, not {}",
            len * 2,
            t.len()
        ));
    }
    hex::decode(t).map_err(|_| format!("{name} `{t}` is not hexadecimal"))
}

/// An address (v4 or v6) or a network in CIDR notation.
pub(crate) fn parse_ip(text: &str) -> Result<Operand, String> {
    let t = text.trim();
    if t.contains('/') {
        return t
            .parse::<IpNet>()
            .map(|n| Operand::Net(n.trunc()))
            .map_err(|_| format!("`{t}` is not an IP network"));
    }
    t.parse::<IpAddr>()
        .map(|a| Operand::Ip(canonical_ip(a)))
        .map_err(|_| format!("`{t}` is not an IP address"))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as their IPv4.
pub(crate) fn canonical_ip(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        v4 => v4,
    }
}

pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") || t == "1" {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(false)
    } else {
        None
    }
}

/// Permission bits: octal (`755`, `0755`, `0o4755`) or symbolic
/// (`rwxr-xr-x`, with an optional leading file type char, `s`/`S`/`t`/`T`).
pub(crate) fn parse_mode(text: &str) -> Result<i128, String> {
    let t = text.trim();
    let err = || format!("`{t}` is not a permission mode (octal 755 or symbolic rwxr-xr-x)");
    let oct = t.strip_prefix("0o").unwrap_or(t);
    if !oct.is_empty() && oct.len() <= 5 && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(oct, 8)
            .map(|m| (m & 0o7777) as i128)
            .map_err(|_| err());
    }
    let b = t.as_bytes();
    let sym = match b.len() {
        9 => b,
        10 => &b[1..],
        _ => return Err(err()),
    };
    let mut mode: u32 = 0;
    for (i, &c) in sym.iter().enumerate() {
        let who = 2 - (i / 3) as u32; // 2 = user, 1 = group, 0 = other
        let shift = who * 3;
        let special = match who {
            2 => 0o4000,
            1 => 0o2000,
            _ => 0o1000,
        };
        match (i % 3, c) {
            (_, b'-') => {}
            (0, b'r') => mode |= 4 << shift,
            (1, b'w') => mode |= 2 << shift,
            (2, b'x') => mode |= 1 << shift,
            (2, b's') if who > 0 => mode |= special | (1 << shift),
            (2, b'S') if who > 0 => mode |= special,
            (2, b't') if who == 0 => mode |= special | 1,
            (2, b'T') if who == 0 => mode |= special,
            _ => return Err(err()),
        }
    }
    Ok(mode as i128)
}

/// Lowercase for case-insensitive comparison (Unicode-aware).
pub(crate) fn fold_owned(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// Lowercase `s` into `buf` (reused: no allocation once it is big enough);
/// ASCII fast path. Gives the same result as [`fold_owned`].
pub(crate) fn fold_into<'b>(s: &str, buf: &'b mut String) -> &'b str {
    buf.clear();
    if s.is_ascii() {
        buf.push_str(s);
        buf.make_ascii_lowercase();
    } else {
        for c in s.chars() {
            buf.extend(c.to_lowercase());
        }
        // `to_lowercase` of a whole string maps a final capital sigma to
        // `ς`; keep folding identical to `str::to_lowercase`.
        if s.contains('Σ') {
            *buf = s.to_lowercase();
        }
    }
    buf
}

/// The text of an observed value (numbers, addresses... are formatted into
/// `buf`).
pub(crate) fn as_text<'v>(v: &'v Value<'_>, buf: &'v mut String) -> &'v str {
    use std::fmt::Write;
    match v {
        Value::Str(s) => s,
        other => {
            buf.clear();
            let _ = match other {
                Value::Int(i) => write!(buf, "{i}"),
                Value::UInt(u) | Value::Duration(u) => write!(buf, "{u}"),
                Value::Time(t) => match DateTime::from_timestamp(*t, 0) {
                    Some(d) => write!(buf, "{}", d.format("%Y-%m-%dT%H:%M:%SZ")),
                    None => write!(buf, "{t}"),
                },
                Value::Digest(d) => {
                    for b in d.iter() {
                        let _ = write!(buf, "{b:02x}");
                    }
                    Ok(())
                }
                Value::Ip(a) => write!(buf, "{a}"),
                Value::Bool(b) => write!(buf, "{b}"),
                Value::Str(_) => Ok(()),
            };
            buf
        }
    }
}

/// An observed value as a number of `kind` (strings are parsed).
pub(crate) fn as_num(v: &Value<'_>, kind: NumKind) -> Option<i128> {
    if kind == NumKind::Mode {
        return match v {
            Value::Int(i) => Some((*i & 0o7777) as i128),
            Value::UInt(u) => Some((*u & 0o7777) as i128),
            Value::Str(s) => parse_mode(s).ok(),
            _ => None,
        };
    }
    match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) | Value::Duration(u) => Some(*u as i128),
        Value::Time(t) => Some(*t as i128),
        Value::Bool(b) => Some(*b as i128),
        Value::Str(s) => match kind {
            NumKind::Int => parse_int(s, false).or_else(|_| parse_int(s, true)).ok(),
            NumKind::Time => parse_date(s).ok().map(|(lo, _)| lo),
            NumKind::Duration => parse_duration(s).ok(),
            NumKind::Mode => None,
        },
        Value::Digest(_) | Value::Ip(_) => None,
    }
}

/// Room for the bytes of any digest decoded from hex.
#[derive(Debug)]
pub(crate) struct DigestBuf(pub [u8; 64]);

impl Default for DigestBuf {
    fn default() -> Self {
        DigestBuf([0; 64])
    }
}

/// An observed value as digest bytes (hex strings are decoded into `buf`).
pub(crate) fn as_digest<'v>(v: &'v Value<'_>, buf: &'v mut [u8; 64]) -> Option<&'v [u8]> {
    match v {
        Value::Digest(d) => Some(d),
        Value::Str(s) => {
            let s = s.trim();
            let n = s.len() / 2;
            if s.len() % 2 != 0 || n > buf.len() {
                return None;
            }
            hex::decode_to_slice(s, &mut buf[..n]).ok()?;
            Some(&buf[..n])
        }
        _ => None,
    }
}

pub(crate) fn as_ip(v: &Value<'_>) -> Option<IpAddr> {
    match v {
        Value::Ip(a) => Some(canonical_ip(*a)),
        Value::Str(s) => s.trim().parse::<IpAddr>().ok().map(canonical_ip),
        _ => None,
    }
}

pub(crate) fn as_bool(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(0) | Value::UInt(0) => Some(false),
        Value::Int(1) | Value::UInt(1) => Some(true),
        Value::Str(s) => parse_bool(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2014-08-23T08:22:49Z"),
            Ok((1408782169, 1408782169))
        );
        assert_eq!(
            parse_date("2014-08-23T08:22:49"),
            Ok((1408782169, 1408782169))
        );
        assert_eq!(
            parse_date("2014-08-23 08:22:49"),
            Ok((1408782169, 1408782169))
        );
        assert_eq!(
            parse_date("2014-08-23T10:22:49+02:00"),
            Ok((1408782169, 1408782169))
        );
        assert_eq!(
            parse_date("2014-08-23T08:22:49.750Z"),
            Ok((1408782169, 1408782169))
        );
        assert_eq!(
            parse_date("2014-10-17"),
            Ok((1413504000, 1413504000 + 86399))
        );
        assert!(parse_date("2014-13-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(" 42 ", false), Ok(42));
        assert_eq!(parse_int("-42", false), Ok(-42));
        assert_eq!(parse_int("0x10", false), Ok(16));
        assert_eq!(
            parse_int("18446744073709551615", true),
            Ok(u64::MAX as i128)
        );
        assert!(parse_int("18446744073709551615", false).is_err());
        assert!(parse_int("-1", true).is_err());
        assert!(parse_int("12a", false).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("01:02:03"), Ok(3723));
        assert_eq!(parse_duration("00:00:01.500"), Ok(1));
        assert_eq!(parse_duration("P1DT2H3M4S"), Ok(86400 + 7200 + 180 + 4));
        assert_eq!(parse_duration("PT5M"), Ok(300));
        assert!(parse_duration("P").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("755"), Ok(0o755));
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("0o4755"), Ok(0o4755));
        assert_eq!(parse_mode("rwxr-xr-x"), Ok(0o755));
        assert_eq!(parse_mode("-rwsr-xr-x"), Ok(0o4755));
        assert_eq!(parse_mode("rwxrwxrwt"), Ok(0o1777));
        assert!(parse_mode("rwxr-xr-q").is_err());
        assert!(parse_mode("999").is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(split_range("1 TO 5"), Some(("1", "5")));
        assert_eq!(
            split_range("[2014-01-01 to 2014-02-01]"),
            Some(("2014-01-01", "2014-02-01"))
        );
        assert_eq!(split_range("15"), None);
    }

    #[test]
    fn folding_matches_to_lowercase() {
        let mut buf = String::new();
        for s in [
            "ABC",
            "ÉCOLE",
            "ΟΔΟΣ",
            "İstanbul",
            "straße",
            "\u{212A}elvin",
        ] {
            assert_eq!(fold_into(s, &mut buf), s.to_lowercase(), "{s}");
            assert_eq!(fold_owned(s), s.to_lowercase());
        }
    }

    #[test]
    fn observed_coercions() {
        let mut buf = [0u8; 64];
        assert_eq!(
            as_digest(&Value::Str("0A0b".into()), &mut buf),
            Some(&[10u8, 11][..])
        );
        assert_eq!(
            as_num(&Value::Str("2014-10-17".into()), NumKind::Time),
            Some(1413504000)
        );
        assert_eq!(
            as_ip(&Value::Str("::ffff:10.0.0.1".into())),
            Some("10.0.0.1".parse().unwrap())
        );
        let mut s = String::new();
        assert_eq!(
            as_text(&Value::Digest(vec![0xab, 0x01].into()), &mut s),
            "ab01"
        );
    }
}
