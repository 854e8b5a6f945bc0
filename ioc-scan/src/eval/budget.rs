//! [`CompileBudget`]: what compiling one collection may cost, in work and
//! in memory, for the whole collection. Every step of the compiler whose
//! size the input drives is charged here *before* it is done: an IOC's
//! linear part (its nodes, values and the copy kept for verdicts) when the
//! IOC is read, a regex's program when it is built (its size limit is what is
//! left), a content literal's automaton share, and the optional copies that
//! distribution makes for the anchor index.
//!
//! What does not fit is refused with a [`Diagnostic`](super::Diagnostic)
//! (error, at the IOC or item, naming the budget): `validate` fails, the
//! console refuses the upload with 422. Distribution, which only speeds
//! matching up, is skipped instead when it does not fit (the group is then
//! evaluated as the tree it is, with the same result).

use serde::Serialize;

/// Bounds for compiling one collection. The defaults fit any collection
/// of the console's size limit (32 MiB) of ordinary IOCs, and keep the
/// compile under ~2 s and ~512 MiB of peak memory (`cargo xtask
/// bench-compile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompileBudget {
    /// Work units: about one per node, value byte group, operation laid
    /// out or anchor key made.
    pub work: u64,
    /// Bytes of compiled structures (estimated per node and value byte,
    /// measured for regexes).
    pub memory: u64,
}

impl Default for CompileBudget {
    fn default() -> Self {
        CompileBudget {
            work: 64_000_000,
            memory: 448 << 20,
        }
    }
}

/// What compiling a collection was charged (never above its budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CompileCost {
    pub work: u64,
    pub memory: u64,
    /// Groups that were not split per OR branch because the budget would
    /// not cover the copies (evaluated as trees instead: same result).
    pub distributions_skipped: u64,
}

/// A charge that did not fit: what it asked and what was left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exceeded {
    pub work: u64,
    pub memory: u64,
    pub work_left: u64,
    pub memory_left: u64,
}

impl Exceeded {
    /// The diagnostic's text, naming the budget.
    pub(crate) fn describe(&self, what: &str, budget: &CompileBudget) -> String {
        format!(
            "compile budget exceeded: {what} needs {} work units and {} bytes, \
             {} work units and {} bytes are left of the collection's budget \
             ({} work units, {} bytes): it is not evaluated",
            self.work, self.memory, self.work_left, self.memory_left, budget.work, budget.memory
        )
    }
}

/// The running account of one compile.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meter {
    pub budget: CompileBudget,
    pub used: CompileCost,
}

impl Meter {
    pub(crate) fn new(budget: CompileBudget) -> Self {
        Meter {
            budget,
            used: CompileCost::default(),
        }
    }

    pub(crate) fn memory_left(&self) -> u64 {
        self.budget.memory.saturating_sub(self.used.memory)
    }

    pub(crate) fn work_left(&self) -> u64 {
        self.budget.work.saturating_sub(self.used.work)
    }

    /// Charge `work` and `memory` if both fit; otherwise charge nothing.
    pub(crate) fn charge(&mut self, work: u64, memory: u64) -> Result<(), Exceeded> {
        if work > self.work_left() || memory > self.memory_left() {
            return Err(Exceeded {
                work,
                memory,
                work_left: self.work_left(),
                memory_left: self.memory_left(),
            });
        }
        self.used.work += work;
        self.used.memory += memory;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_that_does_not_fit_charges_nothing() {
        let mut m = Meter::new(CompileBudget {
            work: 10,
            memory: 100,
        });
        m.charge(6, 50).unwrap();
        assert!(m.charge(5, 10).is_err());
        assert!(m.charge(1, 51).is_err());
        assert_eq!((m.used.work, m.used.memory), (6, 50));
        m.charge(4, 50).unwrap();
        assert_eq!((m.work_left(), m.memory_left()), (0, 0));
    }
}
