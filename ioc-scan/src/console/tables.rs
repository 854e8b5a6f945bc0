//! The console's own tables, in the same redb file as the store's (the
//! store's [`crate::store::tables`] hold tasks, collections and runs). They
//! are created when a console first opens the file (`create_all`); the
//! store's schema check ignores them. Records follow the store's rule: a
//! versioned type name, JSON encoded ([`crate::store::Json`]).

use crate::store::{Json, Record, RunTrigger};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// Sequence names in the store's `sequences` table.
pub const SEQ_USER: &str = "console_user";
pub const SEQ_TOKEN: &str = "console_token";
pub const SEQ_DEVICE: &str = "console_device";
pub const SEQ_GROUP: &str = "console_group";
pub const SEQ_JOB: &str = "console_job";

/// User id → user.
pub const USERS: TableDefinition<u64, Json<UserRecordV1>> = TableDefinition::new("console_users");
/// User name → user id.
pub const USERS_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("console_users_by_name");
/// sha256 (hex) of a session cookie → session.
pub const SESSIONS: TableDefinition<&str, Json<SessionRecordV1>> = TableDefinition::new("console_sessions");
/// sha256 (hex) of a bearer token → what it stands for. Tokens themselves are never stored.
pub const TOKENS: TableDefinition<&str, Json<TokenRecordV1>> = TableDefinition::new("console_tokens");
/// Device id → device.
pub const DEVICES: TableDefinition<u64, Json<DeviceRecordV1>> = TableDefinition::new("console_devices");
/// Device name → device id (names are unique).
pub const DEVICES_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("console_devices_by_name");
/// Group id → administration group.
pub const GROUPS: TableDefinition<u64, Json<GroupRecordV1>> = TableDefinition::new("console_groups");
/// Task id → the devices its schedule runs on.
pub const TASK_TARGETS: TableDefinition<u64, Json<TargetsV1>> = TableDefinition::new("console_task_targets");
/// (task id, device id) → when the task's schedule last fired for that device (ms).
pub const DEVICE_SCHEDULE: TableDefinition<(u64, u64), i64> = TableDefinition::new("console_device_schedule");
/// Job id → job.
pub const JOBS: TableDefinition<u64, Json<JobRecordV1>> = TableDefinition::new("console_jobs");
/// Index: (device id, job id) → () for every job not yet reported.
pub const OPEN_JOBS: TableDefinition<(u64, u64), ()> = TableDefinition::new("console_open_jobs");
/// (device id, run key) → what became of the first upload with that key.
/// Written by consoles before results were keyed by job; still read (a
/// resent old result is a duplicate) and pruned, no longer written.
pub const RESULT_KEYS: TableDefinition<(u64, &str), Json<ResultKeyV1>> = TableDefinition::new("console_result_keys");
/// Index: (device id, start ms, run id) → (): the runs each device reported,
/// by time, whatever its name was then. Entries of runs pruned since are
/// skipped when read and dropped by the console's maintenance.
pub const RUNS_BY_DEVICE_ID: TableDefinition<(u64, i64, u64), ()> = TableDefinition::new("console_runs_by_device_id");
/// (device id, job id) → the one result of the job: its key is what makes
/// a job report once, whatever run keys a device sends.
pub const JOB_RESULTS: TableDefinition<(u64, u64), Json<JobResultV1>> = TableDefinition::new("console_job_results");

/// Creates every console table (idempotent).
pub(crate) fn create_all(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(USERS)?;
    txn.open_table(USERS_BY_NAME)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(DEVICES)?;
    txn.open_table(DEVICES_BY_NAME)?;
    txn.open_table(GROUPS)?;
    txn.open_table(TASK_TARGETS)?;
    txn.open_table(DEVICE_SCHEDULE)?;
    txn.open_table(JOBS)?;
    txn.open_table(OPEN_JOBS)?;
    txn.open_table(RESULT_KEYS)?;
    txn.open_table(JOB_RESULTS)?;
    txn.open_table(RUNS_BY_DEVICE_ID)?;
    Ok(())
}

/// What a person may do, each role all that the smaller ones may: a viewer
/// reads; an analyst also makes and runs tasks; an administrator also
/// manages users, enrollment tokens, devices and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: expected admin, analyst or viewer"))
    }
}

/// Users written before roles existed have no `role`: they were all
/// administrators, and read as such. (The field has a default, so the
/// record keeps its name and old tables stay readable.)
fn role_of_users_before_roles() -> Role {
    Role::Admin
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecordV1 {
    pub id: u64,
    pub name: String,
    /// argon2id PHC string (salt and parameters included).
    pub password_hash: String,
    pub created_at: i64,
    #[serde(default = "role_of_users_before_roles")]
    pub role: Role,
}
impl Record for UserRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::UserRecordV1";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecordV1 {
    pub user_id: u64,
    pub created_at: i64,
    pub expires_at: i64,
}
impl Record for SessionRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::SessionRecordV1";
}

/// What a bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum TokenKindV1 {
    /// A person's API token (scripts).
    Api { user_id: u64 },
    /// A device's own token.
    Device { device_id: u64 },
    /// Lets devices enroll (into `group`, if set), `uses_left` more times.
    Enrollment { group_id: Option<u64>, uses_left: Option<u32> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecordV1 {
    pub id: u64,
    pub kind: TokenKindV1,
    /// A label chosen by whoever made it.
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}
impl Record for TokenRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::TokenRecordV1";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecordV1 {
    pub id: u64,
    pub name: String,
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub agent_version: Option<String>,
    pub group_id: Option<u64>,
    pub enrolled_at: i64,
    /// Last contact, as last persisted (the console keeps fresher values in memory).
    pub last_seen: Option<i64>,
    /// sha256 (hex) of the device's token, to revoke it with the device.
    pub token_hash: String,
}
impl Record for DeviceRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::DeviceRecordV1";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecordV1 {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}
impl Record for GroupRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::GroupRecordV1";
}

/// The devices a task's schedule runs on: every device, or those of the
/// groups and those named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetsV1 {
    pub all: bool,
    #[serde(default)]
    pub groups: Vec<u64>,
    #[serde(default)]
    pub devices: Vec<u64>,
}
impl Default for TargetsV1 {
    fn default() -> Self {
        TargetsV1 { all: true, groups: Vec::new(), devices: Vec::new() }
    }
}
impl Record for TargetsV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::TargetsV1";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Waiting for the device to ask.
    Pending,
    /// Handed to the device; no result yet.
    Dispatched,
    /// The result arrived.
    Done,
    /// Withdrawn (task deleted, device removed).
    Cancelled,
}

/// One run asked of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecordV1 {
    pub id: u64,
    pub task_id: u64,
    pub collection_version: u32,
    pub device_id: u64,
    pub trigger: RunTrigger,
    pub created_at: i64,
    pub not_before: Option<i64>,
    pub status: JobStatus,
    pub dispatched_at: Option<i64>,
    pub done_at: Option<i64>,
    /// The run that reported it.
    pub run_id: Option<u64>,
}
impl Record for JobRecordV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::JobRecordV1";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultKeyV1 {
    pub run_id: Option<u64>,
    pub received_at: i64,
    pub discarded: Option<String>,
}
impl Record for ResultKeyV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::ResultKeyV1";
}

/// What became of the one result a job may have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResultV1 {
    /// The run stored (`None` when discarded).
    pub run_id: Option<u64>,
    /// The run key of the upload that was stored (for the record).
    pub run_key: String,
    /// By the console's clock (ms).
    pub received_at: i64,
    pub discarded: Option<String>,
}
impl Record for JobResultV1 {
    const TYPE_NAME: &'static str = "ioc_scan::console::JobResultV1";
}
