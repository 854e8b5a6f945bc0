//! Evaluation: compile a collection of IOCs into matchers, evaluate
//! observations of objects against them, and turn item hits into verdicts.
//! No I/O happens here: collectors hand in [`Observation`]s.

pub mod observation;

pub use observation::{Field, ObjectRef, Observation, Value};
