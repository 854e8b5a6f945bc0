//! The one grammar of a duration typed by a user (CLI flags, task response
//! actions, schedules, the console): a bare number is seconds; otherwise
//! numbers with the units `d`, `h`, `m`, `s`, largest first, each at most
//! once (`90`, `90s`, `1h30m`, `2d`). Pure: text in, seconds out. Ranges
//! (at least 1 s, at most 24 h...) are the callers' business; `0` parses.
//! Not for durations inside IOC documents (`eval::value`: ISO 8601, HH:MM:SS).

/// Longest text accepted, checked before any work (`99999d23h59m59s` fits).
pub const MAX_LEN: usize = 32;

/// What every error says was expected.
pub const EXPECTED: &str = "seconds, or numbers with units d, h, m, s such as 90, 90s, 1h30m, 2d";

const UNITS: [(char, u64); 4] = [('d', 86400), ('h', 3600), ('m', 60), ('s', 1)];

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {text:?}: {why} (expected {EXPECTED})")]
pub struct DurationError {
    pub text: String,
    pub why: &'static str,
}

/// Seconds in `text` (surrounding white space ignored).
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let err = |why| DurationError {
        text: text.chars().take(MAX_LEN).collect(),
        why,
    };
    if text.len() > MAX_LEN {
        return Err(err("too long"));
    }
    let s = text.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| err("too large"));
    }
    let mut total: u64 = 0;
    let mut units = UNITS.iter();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("a number must come before each unit, and nothing else"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err("too large"))?;
        let unit = rest[digits..]
            .chars()
            .next()
            .ok_or_else(|| err("the last number has no unit"))?;
        if !UNITS.iter().any(|&(u, _)| u == unit) {
            return Err(err("unknown unit"));
        }
        let &(_, mult) = units
            .find(|&&(u, _)| u == unit)
            .ok_or_else(|| err("units must go largest first, each at most once"))?;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(total)
}

/// `seconds` in the same grammar, largest units first (`1h30m`, `45s`, `0s`).
pub fn format(mut seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse("90"), Ok(90));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse(" 90 "), Ok(90));
    }

    #[test]
    fn units_combine_largest_first() {
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("1h30m"), Ok(5400));
        assert_eq!(parse("2d"), Ok(172_800));
        assert_eq!(parse("1d2h3m4s"), Ok(93_784));
        assert_eq!(parse("0h"), Ok(0));
    }

    #[test]
    fn refuses_what_is_not_a_duration_and_says_what_was_expected() {
        for (text, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("1x", "unknown unit"),
            ("-5", "a number must come before each unit"),
            ("99999999999999999999s", "too large"),
            ("99999999999999999999", "too large"),
            ("300000000000000d", "too large"),
            ("h", "a number must come before each unit"),
            ("1h30", "the last number has no unit"),
            ("30m1h", "units must go largest first"),
            ("1m1m", "units must go largest first"),
            ("1h 30m", "a number must come before each unit"),
            ("1.5h", "unknown unit"),
            ("5é", "unknown unit"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.why.starts_with(why), "{text:?}: {e}");
            assert!(e.to_string().contains("1h30m"), "{e}");
        }
        let long = "1".repeat(MAX_LEN + 1);
        assert_eq!(parse(&long).unwrap_err().why, "too long");
    }

    #[test]
    fn format_round_trips() {
        for s in [0, 1, 45, 90, 3600, 5400, 86400, 93_784, u64::MAX] {
            assert_eq!(parse(&format(s)), Ok(s), "{}", format(s));
        }
        assert_eq!(format(5400), "1h30m");
        assert_eq!(format(90), "1m30s");
    }
}
