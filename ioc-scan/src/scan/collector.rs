//! The seam for host collectors (processes, ports, DNS...) in a scan: each
//! runs in its own thread alongside the file walk, only when the collection
//! asks about its document, and hands every object to the scan's evaluation.

use super::summary::CollectorSummary;
use crate::eval::{Observation, Outcome};

/// A source of observations of one document, run once per scan.
pub trait Collector: Send + Sync {
    /// The OpenIOC document it answers (`ProcessItem`...).
    fn document(&self) -> &'static str;

    /// Observe every object once, handing each to `evaluate`. When the
    /// answer is [`Outcome::NeedTerms`], compute those terms (a value, or
    /// `Absent`) and hand the same object in again; a second `NeedTerms` is
    /// answered by moving on. Never aborts on one bad object.
    fn collect(&self, evaluate: &mut dyn FnMut(&dyn Observation) -> Outcome) -> CollectorSummary;
}
