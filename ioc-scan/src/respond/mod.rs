//! Response actions: what ioc-scan does about a detection when a task's
//! "apply response actions" switch is on, and the exact record of what it
//! did.
//!
//! - [`quarantine`]: a verified, content-addressed copy of the detected file
//!   with its metadata (the original stays); list, show, restore, purge.
//! - [`delete`]: quarantine first, hash the original again, then unlink; a
//!   file that changed since detection is left alone.
//! - [`terminate`]: SIGKILL through a pidfd, after checking the process is
//!   still the one detected (pid and start time); never init, kernel
//!   threads, ioc-scan or its ancestors ([`protect`]: the one rule every
//!   kill path follows, the live monitor's too).
//! - [`isolate`]: eBPF cgroup skb programs dropping all but loopback and an
//!   allow list, pinned in bpffs, lifted at expiry or on request.
//! - [`follow_up`]: a critical areas scan with the same collection.
//!
//! Every action is idempotent (doing it twice leaves the host as once),
//! bounded (sizes, waits), and reported as an [`ActionRecord`]: nothing is
//! done without a record, and no record claims more than what was done.
//! With an empty [`ResponsePlan`] (the switch off) nothing is touched.

pub mod delete;
pub mod follow_up;
pub mod fsx;
pub mod isolate;
pub mod protect;
pub mod quarantine;
pub mod target;
pub mod terminate;

use crate::eval::{CompiledCollection, Detection};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

pub use target::Target;

/// One response action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Action {
    /// Copy the detected file into the quarantine store.
    Quarantine,
    /// Quarantine, then remove the detected file.
    Delete,
    /// Kill the detected process (or the processes running the detected file).
    Terminate,
    /// Cut the device (or a cgroup) off the network for this many seconds.
    Isolate { seconds: u64 },
    /// Scan the critical areas again with the same collection.
    CriticalAreasScan,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Quarantine => f.write_str("quarantine"),
            Action::Delete => f.write_str("delete"),
            Action::Terminate => f.write_str("terminate"),
            Action::Isolate { seconds } => write!(f, "isolate:{}", crate::duration::format(*seconds)),
            Action::CriticalAreasScan => f.write_str("critical-areas-scan"),
        }
    }
}

/// Why an action name could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown response action {0:?} (expected quarantine, delete, terminate, isolate:DURATION, critical-areas-scan)"
)]
pub struct ParseActionError(pub String);

impl std::str::FromStr for Action {
    type Err = ParseActionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "quarantine" => Action::Quarantine,
            "delete" => Action::Delete,
            "terminate" => Action::Terminate,
            "critical-areas-scan" => Action::CriticalAreasScan,
            _ => {
                let d = s.strip_prefix("isolate:").ok_or_else(|| ParseActionError(s.into()))?;
                // Records were always written with units (`isolate:1h30m`),
                // so the one grammar reads old ones as they were meant.
                let seconds = crate::duration::parse(d).map_err(|_| ParseActionError(s.into()))?;
                Action::Isolate { seconds }
            }
        })
    }
}

impl From<Action> for String {
    fn from(a: Action) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Action {
    type Error = ParseActionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The actions to take on detections. Empty: respond with nothing (the
/// task's switch is off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsePlan {
    pub actions: Vec<Action>,
}

impl ResponsePlan {
    /// The plan of a task: its actions when `apply` is on, else none.
    pub fn new(apply: bool, actions: impl IntoIterator<Item = Action>) -> ResponsePlan {
        if !apply {
            return ResponsePlan::default();
        }
        let mut seen = HashSet::new();
        ResponsePlan {
            actions: actions.into_iter().filter(|a| seen.insert(*a)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    fn has(&self, a: Action) -> bool {
        self.actions.contains(&a)
    }

    fn isolate(&self) -> Option<u64> {
        self.actions.iter().find_map(|a| match a {
            Action::Isolate { seconds } => Some(*seconds),
            _ => None,
        })
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// Done (or found already done: the details say which).
    Done,
    /// Deliberately not done: not applicable, unsafe, or the object changed
    /// since detection. Nothing was changed.
    Refused(String),
    /// Tried and failed; the details say what was left where.
    Failed(String),
}

impl Outcome {
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }

    /// `done`, `refused`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Done => None,
            Outcome::Refused(r) | Outcome::Failed(r) => Some(r),
        }
    }
}

/// What one action did to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub action: Action,
    /// What it acted on: a file, a process, the network, a scan.
    pub object: Target,
    pub outcome: Outcome,
    /// Action-specific facts: quarantine id and sha256, signals sent,
    /// isolation expiry, the follow-up scan's summary...
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl ActionRecord {
    pub fn new(action: Action, object: Target, outcome: Outcome, details: serde_json::Value) -> ActionRecord {
        ActionRecord {
            action,
            object,
            outcome,
            details,
        }
    }
}

/// Where and how the actions work.
pub struct ResponseContext<'a> {
    /// The quarantine store (created root-only 0700 when first used).
    pub quarantine_dir: PathBuf,
    /// Files larger than this are not quarantined (nor deleted).
    pub max_quarantine_bytes: u64,
    pub terminate: terminate::Options,
    pub isolation: isolate::Options,
    /// The collection for a critical areas scan (none: that action is refused).
    pub collection: Option<&'a CompiledCollection>,
    /// Where the critical areas scan looks; None: the built-in critical
    /// areas ([`crate::scan::CRITICAL_AREAS`] and the rest, see [`follow_up`]).
    pub critical_areas: Option<Vec<PathBuf>>,
}

/// Default [`ResponseContext::max_quarantine_bytes`]: 2 GiB.
pub const DEFAULT_MAX_QUARANTINE_BYTES: u64 = 2 << 30;

impl<'a> ResponseContext<'a> {
    /// The defaults, with the environment's overrides
    /// (`IOC_SCAN_QUARANTINE_DIR`, `IOC_SCAN_ISOLATION_ALLOW`,
    /// `IOC_SCAN_ISOLATION_CGROUP`, `IOC_SCAN_ISOLATION_NAME`,
    /// `IOC_SCAN_CRITICAL_AREAS`).
    pub fn from_env(collection: Option<&'a CompiledCollection>) -> ResponseContext<'a> {
        ResponseContext {
            quarantine_dir: quarantine::default_dir(),
            max_quarantine_bytes: DEFAULT_MAX_QUARANTINE_BYTES,
            terminate: terminate::Options::default(),
            isolation: isolate::Options::from_env(),
            collection,
            critical_areas: follow_up::areas_from_env(),
        }
    }
}

/// Test hook: with `IOC_SCAN_TEST_PAUSE_AFTER=STEP`, the process announces
/// the step on stderr and sleeps for ever right after it, so that a test
/// can SIGKILL it there (crash safety of quarantine + delete). Steps:
/// `copy` (temp copy written), `object` (copy in place, no record yet),
/// `quarantine` (record written), `rehash` (original hashed again, not
/// yet deleted), `delete` (unlinked, not yet reported).
pub(crate) fn test_pause(step: &str) {
    if std::env::var("IOC_SCAN_TEST_PAUSE_AFTER").is_ok_and(|v| v == step) {
        eprintln!("ioc-scan: test pause after {step}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// The follow-up scan's record, and each new detection with its records.
pub type FollowUp = (ActionRecord, Vec<(Detection, Vec<ActionRecord>)>);

/// Applies a plan to the detections of one run, one detection at a time
/// (as they are found), then the run-level follow-up scan
/// ([`Responder::finish`]).
///
/// Per detection the order is: isolate (once per run: cut the network
/// first), terminate (stop what runs), quarantine, delete.
pub struct Responder<'p, 'c> {
    plan: &'p ResponsePlan,
    ctx: &'p ResponseContext<'c>,
    isolated: bool,
    /// Detections already handled (IOC id + object), to tell new ones of
    /// the follow-up scan.
    seen: HashSet<String>,
    finished: bool,
}

/// A detection's identity within a run.
pub fn detection_key(d: &Detection) -> String {
    format!(
        "{}\u{0}{}",
        d.ioc_id,
        serde_json::to_string(&d.object).unwrap_or_default()
    )
}

impl<'p, 'c> Responder<'p, 'c> {
    pub fn new(plan: &'p ResponsePlan, ctx: &'p ResponseContext<'c>) -> Self {
        Responder {
            plan,
            ctx,
            isolated: false,
            seen: HashSet::new(),
            finished: false,
        }
    }

    /// The actions for one detection, in order, with their records.
    pub fn respond(&mut self, d: &Detection) -> Vec<ActionRecord> {
        self.seen.insert(detection_key(d));
        let mut out = Vec::new();
        if self.plan.is_empty() {
            return out;
        }
        if let Some(seconds) = self.plan.isolate() {
            if !self.isolated {
                self.isolated = true;
                out.push(isolate::respond(seconds, &self.ctx.isolation));
            }
        }
        let target = Target::of(d);
        if self.plan.has(Action::Terminate) {
            out.extend(terminate::respond(d, &target, &self.ctx.terminate));
        }
        let wants_quarantine = self.plan.has(Action::Quarantine);
        let wants_delete = self.plan.has(Action::Delete);
        if wants_quarantine && !wants_delete {
            out.push(quarantine::respond(d, &target, self.ctx));
        }
        if wants_delete {
            // Delete quarantines first; with both asked, both records show.
            let (q, del) = delete::respond(d, &target, self.ctx);
            if wants_quarantine {
                out.push(q);
            }
            out.push(del);
        }
        out
    }

    /// The run-level actions after the scan: the critical areas scan (once),
    /// whose new detections get the per-detection actions too. Returns its
    /// record, and each new detection with its records.
    pub fn finish(&mut self) -> Option<FollowUp> {
        if self.finished || !self.plan.has(Action::CriticalAreasScan) {
            return None;
        }
        self.finished = true;
        let (record, found) =
            follow_up::critical_areas_scan(self.ctx.collection, self.ctx.critical_areas.as_deref(), &self.seen);
        let mut new = Vec::new();
        for d in found {
            let recs = self.respond(&d);
            new.push((d, recs));
        }
        Some((record, new))
    }
}

/// Applies `plan` to `detections` (then the run-level actions) and returns
/// every record, in order. The follow-up scan's new detections' records
/// are nested in its record's details.
pub fn apply(plan: &ResponsePlan, detections: &[Detection], ctx: &ResponseContext<'_>) -> Vec<ActionRecord> {
    let mut responder = Responder::new(plan, ctx);
    let mut out = Vec::new();
    for d in detections {
        out.extend(responder.respond(d));
    }
    if let Some((mut record, new)) = responder.finish() {
        if let serde_json::Value::Object(map) = &mut record.details {
            let list: Vec<_> = new
                .iter()
                .map(|(d, recs)| serde_json::json!({"ioc_id": d.ioc_id, "ioc_name": d.ioc_name, "object": d.object, "responses": recs}))
                .collect();
            map.insert("responses_to_new_detections".into(), serde_json::Value::Array(list));
        }
        out.push(record);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_as_strings() {
        for a in [
            Action::Quarantine,
            Action::Delete,
            Action::Terminate,
            Action::Isolate { seconds: 1800 },
            Action::CriticalAreasScan,
        ] {
            let s = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<Action>(&s).unwrap(), a, "{s}");
        }
        assert_eq!(
            "isolate:30m".parse::<Action>().unwrap(),
            Action::Isolate { seconds: 1800 }
        );
        assert!("isolate".parse::<Action>().is_err());
        // Records written before the one duration grammar (always with units)
        // read as they were meant.
        for (old, seconds) in [("\"isolate:1h30m\"", 5400), ("\"isolate:45s\"", 45), ("\"isolate:2d\"", 172_800)] {
            assert_eq!(serde_json::from_str::<Action>(old).unwrap(), Action::Isolate { seconds }, "{old}");
        }
        assert!("nuke".parse::<Action>().is_err());
    }

    #[test]
    fn switch_off_is_an_empty_plan() {
        assert!(ResponsePlan::new(false, [Action::Delete]).is_empty());
        assert_eq!(
            ResponsePlan::new(true, [Action::Delete, Action::Delete]).actions,
            vec![Action::Delete]
        );
    }

    #[test]
    fn outcome_serializes_with_its_reason() {
        let o = Outcome::Refused("changed since detection".into());
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"status": "refused", "reason": "changed since detection"})
        );
        assert_eq!(
            serde_json::to_value(Outcome::Done).unwrap(),
            serde_json::json!({"status": "done"})
        );
    }
}
