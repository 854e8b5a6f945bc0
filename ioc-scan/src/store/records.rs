//! The records stored in the tables of [`super::tables`]. Every record type
//! carries its layout version in its name (`...V1`) and in its redb type name;
//! a later layout gets a new type and a migration, never an in-place change.
//! Times are milliseconds since the Unix epoch, UTC.

use super::codec::Record;
use super::schedule::Schedule;
use crate::indicator::Ioc;
use serde::{Deserialize, Serialize};

/// An IOC Scan task: what to look for, where, what to do, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecordV1 {
    pub id: u64,
    pub name: String,
    pub description: String,
    /// The collection version new runs use (versions start at 1).
    pub collection_version: u32,
    pub scope: ScopeV1,
    pub response: ResponseSettingsV1,
    pub schedule: Schedule,
    /// After the scan, watch the device live (eBPF sensors) for this many
    /// seconds (1 to [`MAX_MONITOR_SECONDS`]); `None`: no live monitoring.
    /// Added to the V1 layout compatibly: records written before it read
    /// as `None`, and readers that do not know it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_seconds: Option<u32>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The longest live monitoring a task may ask for: 24 hours.
pub const MAX_MONITOR_SECONDS: u32 = 24 * 3600;

/// Why a live monitoring duration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("live monitoring lasts at most 24 hours ({MAX_MONITOR_SECONDS} seconds), not {0} seconds")]
pub struct MonitorTooLong(pub u64);

/// A task's live monitoring setting from a number of seconds: 0 is off,
/// more than [`MAX_MONITOR_SECONDS`] is refused.
pub fn monitor_seconds(seconds: u64) -> Result<Option<u32>, MonitorTooLong> {
    match seconds {
        0 => Ok(None),
        s if s <= u64::from(MAX_MONITOR_SECONDS) => Ok(Some(s as u32)),
        s => Err(MonitorTooLong(s)),
    }
}

impl Record for TaskRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::TaskRecordV1";
}

/// Where a task scans. The paths named in the IOCs are derived from the
/// collection ([`CollectionRecordV1::ioc_paths`]), not stored here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopeV1 {
    /// Scan the built-in critical areas (system binaries, autostart...).
    pub critical_areas: bool,
    /// Also scan the paths the IOCs name.
    pub ioc_paths: bool,
    pub custom_paths: Vec<String>,
    /// Glob patterns of paths not to scan.
    pub excludes: Vec<String>,
}

/// The "apply response actions" switch and the chosen actions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponseSettingsV1 {
    pub apply: bool,
    pub actions: Vec<ResponseAction>,
}

/// A response to a detection (carried out by the response module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum ResponseAction {
    Quarantine,
    Delete,
    Terminate,
    /// Cut the device off the network for this many seconds.
    Isolate {
        seconds: u64,
    },
    CriticalAreasScan,
}

impl std::fmt::Display for ResponseAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseAction::Quarantine => f.write_str("quarantine"),
            ResponseAction::Delete => f.write_str("delete"),
            ResponseAction::Terminate => f.write_str("terminate"),
            ResponseAction::Isolate { seconds } => {
                write!(f, "isolate:{}", crate::duration::format(*seconds))
            }
            ResponseAction::CriticalAreasScan => f.write_str("critical-areas-scan"),
        }
    }
}

/// Why a response action could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseActionError {
    #[error("unknown response action {0:?} (expected quarantine, delete, terminate, isolate[:DURATION], critical-areas-scan)")]
    Unknown(String),
    #[error("response action {0:?}: {1}")]
    IsolateDuration(String, String),
}

impl std::str::FromStr for ResponseAction {
    type Err = ParseActionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseActionError::Unknown(s.to_string());
        Ok(match s {
            "quarantine" => ResponseAction::Quarantine,
            "delete" => ResponseAction::Delete,
            "terminate" => ResponseAction::Terminate,
            "critical-areas-scan" => ResponseAction::CriticalAreasScan,
            "isolate" => ResponseAction::Isolate { seconds: 3600 },
            _ => match s
                .strip_prefix("isolate:")
                .or_else(|| s.strip_prefix("isolate="))
            {
                Some(d) => ResponseAction::Isolate {
                    seconds: isolate_seconds(d)
                        .map_err(|why| ParseActionError::IsolateDuration(s.to_string(), why))?,
                },
                None => return Err(err()),
            },
        })
    }
}

/// The seconds of `isolate:DURATION` as typed ([`crate::duration`]: a bare
/// number is seconds), 1 s to the longest isolation. Stored tasks hold the
/// seconds as a number, so no stored record is read through this.
fn isolate_seconds(text: &str) -> Result<u64, String> {
    use crate::respond::isolate::MAX_SECONDS;
    match crate::duration::parse(text).map_err(|e| e.to_string())? {
        s if (1..=MAX_SECONDS).contains(&s) => Ok(s),
        s => Err(format!(
            "isolation lasts 1s to {}, not {}",
            crate::duration::format(MAX_SECONDS),
            crate::duration::format(s)
        )),
    }
}

/// One immutable version of a task's IOC collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionRecordV1 {
    pub task_id: u64,
    pub version: u32,
    /// The IOC files as uploaded; their bytes are in `IOC_BLOBS` by sha256.
    pub files: Vec<IocFileRefV1>,
    /// The indicators read from the files.
    pub iocs: Vec<Ioc>,
    /// [`crate::indicator::paths_named`] of `iocs`, when the version was
    /// made; kept for the record format. Views derive the paths from `iocs`
    /// (records written before issue 15 hold an older derivation).
    pub ioc_paths: Vec<String>,
    pub created_at: i64,
}

impl Record for CollectionRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::CollectionRecordV1";
}

/// An uploaded IOC file: its name and the key of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IocFileRefV1 {
    pub name: String,
    /// Lowercase hex sha256 of the bytes.
    pub sha256: String,
    pub size: u64,
}

/// Outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    IocDetected,
    NoIocDetected,
    Error,
    Running,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::IocDetected => "ioc-detected",
            RunStatus::NoIocDetected => "no-ioc-detected",
            RunStatus::Error => "error",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            RunStatus::IocDetected,
            RunStatus::NoIocDetected,
            RunStatus::Error,
            RunStatus::Running,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            format!("unknown status {s:?} (expected ioc-detected, no-ioc-detected, error, running, interrupted)")
        })
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunTrigger {
    Manual,
    Schedule,
    AgentStart,
}

/// One run of a task on one device: the row of the results table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecordV1 {
    pub id: u64,
    pub task_id: u64,
    /// The task's name when the run started (the task may be renamed or deleted).
    pub task_name: String,
    pub collection_version: u32,
    pub device: String,
    pub trigger: RunTrigger,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub status: RunStatus,
    /// Detections recorded so far.
    pub detections: u64,
    /// Distinct IOCs detected.
    pub iocs_detected: u64,
    /// Named counters of the scan (files scanned, errors...), in order.
    pub counts: Vec<(String, u64)>,
    /// Why the run ended in `error`.
    pub error: Option<String>,
    /// The console's id of the device that reported the run: a device name
    /// can be enrolled again once its device is removed, an id is never
    /// reused. `None` for local runs and runs stored before ids were kept.
    /// (Added to the V1 layout compatibly, like the fields below: records
    /// without them read as `None`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<u64>,
    /// When the console received the run, by its own clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
    /// The times the device reported, kept when they were out of bounds and
    /// the console stored bounded ones in `started_at`/`ended_at` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_times: Option<DeviceTimesV1>,
}

/// Start and end of a run by the clock of the device that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTimesV1 {
    pub started_at: i64,
    pub ended_at: i64,
}

impl Record for RunRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::RunRecordV1";
}

/// One detection of a run: the alert details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRecordV1 {
    pub ioc_id: String,
    pub ioc_name: String,
    pub ioc_description: Option<String>,
    /// Ids of the indicator items that matched (look them up in the run's
    /// collection version for term, condition and value).
    pub matched_items: Vec<String>,
    /// The matched object, `{"kind":"file","path":...}`.
    pub object: serde_json::Value,
    pub responses: Vec<ResponseOutcomeV1>,
}

impl Record for DetectionRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::DetectionRecordV1";
}

/// What a response action did about one detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseOutcomeV1 {
    pub action: String,
    /// e.g. `done`, `failed`, `skipped`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// The process running a `running` run, to tell a live run from one whose
/// process was killed: pid plus its start time (pids are reused) and the boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRecordV1 {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat: start time in clock ticks since boot.
    pub start_ticks: u64,
    /// /proc/sys/kernel/random/boot_id
    pub boot_id: String,
}

impl Record for RunnerRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::RunnerRecordV1";
}

/// When the agent last started a task by its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScheduleStateV1 {
    pub last_fired_at: Option<i64>,
}

impl Record for ScheduleStateV1 {
    const TYPE_NAME: &'static str = "ioc_scan::ScheduleStateV1";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored tasks hold an isolation's seconds as a number, never the text
    /// typed: a task stored before the one duration grammar keeps its meaning.
    #[test]
    fn a_stored_isolate_action_keeps_its_seconds_across_the_grammar_change() {
        let old: ResponseSettingsV1 = serde_json::from_str(
            r#"{"apply":true,"actions":[{"action":"isolate","seconds":5400}]}"#,
        )
        .unwrap();
        assert_eq!(old.actions, [ResponseAction::Isolate { seconds: 5400 }]);
        assert_eq!(old.actions[0].to_string(), "isolate:1h30m");
        assert_eq!(
            "isolate:90".parse(),
            Ok(ResponseAction::Isolate { seconds: 90 })
        );
        assert_eq!(
            "isolate:1h30m".parse(),
            Ok(ResponseAction::Isolate { seconds: 5400 })
        );
        assert!("isolate:0".parse::<ResponseAction>().is_err());
        assert!("isolate:31d".parse::<ResponseAction>().is_err());
    }
}
