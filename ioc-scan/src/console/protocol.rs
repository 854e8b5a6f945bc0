//! What the console and its agents say to each other (JSON over HTTPS):
//! enrollment, the jobs a device is to run, and the results it uploads.
//! Shared by the console's agent routes and [`crate::agent::console_client`].

use crate::store::{CollectionRecordV1, DetectionRecordV1, RunStatus, RunTrigger, TaskRecordV1};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/devices/enroll`, authenticated with an enrollment token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The device name shown in the console (unique).
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub agent_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: u64,
    pub name: String,
    /// The device's own bearer token: shown once, stored by the agent.
    pub token: String,
}

/// One run the device is to do: the task as it is now and the collection
/// version the run uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub trigger: RunTrigger,
    /// Do not start before this time (ms since the epoch): scheduled runs
    /// are handed out ahead of time so that a device runs them on time even
    /// when it cannot reach the console then.
    pub not_before: Option<i64>,
    pub task: TaskRecordV1,
    pub collection: CollectionRecordV1,
}

/// `GET /api/v1/agent/jobs`: every job of the device not yet reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobsResponse {
    pub jobs: Vec<Job>,
    /// Orders that are not scans (lift isolation), not yet reported done.
    /// Absent for agents and consoles that predate them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<DeviceCommand>,
}

/// An order to a device that is not a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCommand {
    pub id: u64,
    pub kind: CommandKind,
    /// When a person asked for it (ms since the epoch).
    pub requested_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    /// Lift the device's network isolation now.
    LiftIsolation,
    /// A kind this agent does not know (a newer console): reported failed.
    #[serde(other)]
    Unknown,
}

/// `POST /api/v1/agent/commands/{id}`: what became of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReport {
    /// `done` or `failed`.
    pub outcome: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// `POST /api/v1/agent/results`: one finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultUpload {
    /// The device's id for this run (`d{device}-j{job}`), kept with the
    /// result. The console stores one result per (device, job), however
    /// often and under whatever run key it is sent; consoles before that
    /// keyed results by (device, run_key), which is why agents send it.
    pub run_key: String,
    pub job_id: u64,
    /// Informative: the console stores the job's task, version and trigger.
    pub task_id: u64,
    pub collection_version: u32,
    pub trigger: RunTrigger,
    /// By the device's clock (ms); the console bounds them by its own
    /// (`console::ingest::bounded_times`).
    pub started_at: i64,
    pub ended_at: i64,
    /// `ioc-detected`, `no-ioc-detected` or `error`.
    pub status: RunStatus,
    #[serde(default)]
    pub counts: Vec<(String, u64)>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub detections: Vec<DetectionRecordV1>,
}

/// The console's answer to a result upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultAck {
    /// The run's id in the console (`None` when discarded).
    pub run_id: Option<u64>,
    /// This job's result had already been received: nothing was stored again.
    pub duplicate: bool,
    /// Why the result was accepted but not stored (its task was deleted...).
    pub discarded: Option<String>,
}

/// The agent's idempotency key of the run of `job` on `device`: a job runs
/// once, so re-running it after a crash reports under the same key.
pub fn run_key(device_id: u64, job_id: u64) -> String {
    format!("d{device_id}-j{job_id}")
}
