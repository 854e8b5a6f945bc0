//! Evaluating one compiled item against one observed object.

use super::observation::{Field, Observation, Value};
use super::value::{
    as_bool, as_digest, as_ip, as_num, as_text, fold_into, DigestBuf, Operand, StrOperand,
};
use crate::indicator::Condition;
use crate::terms::TermId;

/// Three-valued truth: `Unknown` when a field the answer depends on is
/// [`Field::Pending`]. AND/OR follow Kleene's logic (`False` AND `Unknown` is
/// `False`, `True` OR `Unknown` is `True`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    False,
    True,
    Unknown,
}

impl Tri {
    pub(crate) fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// An item ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct CompiledItem {
    pub term: TermId,
    pub condition: Condition,
    pub negate: bool,
    pub preserve_case: bool,
    pub operand: Operand,
    /// Index of its IOC in the collection and of its node in the IOC.
    pub ioc: u32,
    pub node: u32,
}

/// Reused buffers, so that comparing allocates nothing once warmed up.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub text: String,
    pub folded: String,
    pub digest: DigestBuf,
}

/// The item's truth for `obs`.
///
/// - `Field::Absent` gives `False`, whether negated or not (negation
///   applies to values that exist).
/// - `Field::Pending` gives `Unknown`.
/// - one value: the comparison, inverted by `negate`.
/// - several values: true when ANY value matches; negated, when NO value
///   matches (an empty list: no value matches).
pub(crate) fn eval_item(item: &CompiledItem, obs: &dyn Observation, scratch: &mut Scratch) -> Tri {
    match obs.field(item.term) {
        Field::Absent => Tri::False,
        Field::Pending => Tri::Unknown,
        Field::One(v) => Tri::from_bool(test(item, &v, scratch) != item.negate),
        Field::Values(vs) => {
            Tri::from_bool(vs.iter().any(|v| test(item, v, scratch)) != item.negate)
        }
    }
}

/// The comparison itself (before negation). A value of a type that cannot be
/// compared with the operand does not match.
pub(crate) fn test(item: &CompiledItem, v: &Value<'_>, scratch: &mut Scratch) -> bool {
    let cond = item.condition;
    match &item.operand {
        Operand::Str(s) => {
            let text = as_text(v, &mut scratch.text);
            test_str(s, cond, item.preserve_case, text, &mut scratch.folded)
        }
        Operand::Regex(re) => re.is_match(as_text(v, &mut scratch.text)),
        Operand::Num { kind, lo, hi } => match as_num(v, *kind) {
            Some(x) => match cond {
                Condition::Is => *lo <= x && x <= *hi,
                Condition::GreaterThan => x > *hi,
                Condition::LessThan => x < *lo,
                _ => false,
            },
            None => false,
        },
        Operand::Digest(d) => as_digest(v, &mut scratch.digest.0).is_some_and(|o| o == &d[..]),
        Operand::Ip(a) => as_ip(v).is_some_and(|o| o == *a),
        Operand::Net(n) => as_ip(v).is_some_and(|o| n.contains(&o)),
        Operand::Bool(b) => as_bool(v) == Some(*b),
        Operand::Content { pattern, text } => match v {
            // Produced by the content scan: this pattern was found.
            Value::UInt(id) => *id == *pattern as u64,
            // A string of the file (from another source): the usual
            // comparison.
            Value::Str(s) => test_str(text, cond, item.preserve_case, s, &mut scratch.folded),
            _ => false,
        },
    }
}

fn test_str(
    op: &StrOperand,
    cond: Condition,
    preserve_case: bool,
    text: &str,
    fold_buf: &mut String,
) -> bool {
    let text = if preserve_case {
        text
    } else {
        fold_into(text, fold_buf)
    };
    let want: &str = &op.text;
    match cond {
        Condition::Is => text == want,
        Condition::Contains => op.finder.find(text.as_bytes()).is_some(),
        Condition::StartsWith => text.starts_with(want),
        Condition::EndsWith => text.ends_with(want),
        // Compiled as other operands; strings refuse ordering at compile time.
        Condition::Matches | Condition::GreaterThan | Condition::LessThan => false,
    }
}
