//! What an action acts on, read from a detection's object: a file (raw path
//! bytes, and what detection saw of it) or a process (pid and start time).

use super::fsx::escape;
use crate::eval::Detection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The object of an [`super::ActionRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    File {
        /// The path for display (control characters and invalid UTF-8
        /// escaped as `\xNN`).
        path: String,
        /// The raw path bytes in hex, when `path` is not them verbatim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path_hex: Option<String>,
    },
    Process {
        pid: u32,
        /// Seconds since the Unix epoch.
        start_time: Option<i64>,
        /// ns after boot, when the detection has it: checked at the
        /// kill at /proc's clock-tick resolution instead of whole seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_boottime_ns: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// The network of a cgroup (the cgroup v2 root: the whole device).
    Network { cgroup: String },
    /// A follow-up scan.
    Scan { scope: String },
    /// A detection's object no action applies to (`port`, `user`...).
    Other { object_kind: String },
}

impl Target {
    /// The target named by a detection's object.
    pub fn of(d: &Detection) -> Target {
        if let Some(f) = FileFacts::of(d) {
            return Target::file(&f.path);
        }
        // A process start event record names its process like a process object.
        if crate::collect::ebpf::event_item::acts_as(&d.object) == "process" {
            if let Some(pid) = d
                .object
                .fields
                .get("pid")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
            {
                return Target::Process {
                    pid,
                    start_time: d.object.fields.get("start_time").and_then(Value::as_i64),
                    start_boottime_ns: d.object.fields.get("start_boottime_ns").and_then(Value::as_u64),
                    path: d.object.fields.get("path").and_then(Value::as_str).map(str::to_string),
                };
            }
        }
        Target::Other {
            object_kind: d.object.kind.to_string(),
        }
    }

    pub fn file(path: &[u8]) -> Target {
        let shown = escape(path);
        let path_hex = (shown.as_bytes() != path).then(|| hex::encode(path));
        Target::File { path: shown, path_hex }
    }

    /// A short description for refusals ("a process", "a port").
    pub fn describe(&self) -> String {
        match self {
            Target::File { .. } => "a file".into(),
            Target::Process { .. } => "a process".into(),
            Target::Network { .. } => "the network".into(),
            Target::Scan { .. } => "a scan".into(),
            Target::Other { object_kind } => format!("a {object_kind} object"),
        }
    }
}

/// What the detection saw of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Raw path bytes.
    pub path: Vec<u8>,
    pub sha256: Option<[u8; 32]>,
    pub size: Option<u64>,
    /// Seconds since the epoch (the detection keeps whole seconds).
    pub mtime: Option<i64>,
}

impl FileFacts {
    /// The file of a `file` detection (`path_bytes_hex` when the path is
    /// not UTF-8, else `path`).
    pub fn of(d: &Detection) -> Option<FileFacts> {
        if d.object.kind != "file" {
            return None;
        }
        let f = &d.object.fields;
        let path = match f.get("path_bytes_hex").and_then(Value::as_str) {
            Some(h) => hex::decode(h).ok()?,
            None => f.get("path").and_then(Value::as_str)?.as_bytes().to_vec(),
        };
        if path.is_empty() {
            return None;
        }
        let sha256 = f
            .get("sha256")
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        let mtime = f
            .get("mtime")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp());
        Some(FileFacts {
            path,
            sha256,
            size: f.get("size").and_then(Value::as_u64),
            mtime,
        })
    }

    /// How the file at hand differs from what detection saw, if it does.
    pub fn changed(&self, sha256: &[u8; 32], size: u64, mtime: i64) -> Option<String> {
        if let Some(expected) = &self.sha256 {
            if expected != sha256 {
                return Some(format!(
                    "changed since detection: sha256 {} now, {} at detection",
                    hex::encode(sha256),
                    hex::encode(expected)
                ));
            }
        }
        if let Some(expected) = self.size {
            if expected != size {
                return Some(format!(
                    "changed since detection: {size} bytes now, {expected} at detection"
                ));
            }
        }
        if let Some(expected) = self.mtime {
            if expected != mtime {
                return Some(format!(
                    "changed since detection: modified at {mtime} now, {expected} at detection"
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ObjectRef;
    use serde_json::json;

    fn detection(kind: &'static str, fields: Value) -> Detection {
        Detection {
            ioc_id: "i".into(),
            ioc_name: "n".into(),
            ioc_description: None,
            ioc_source: "s".into(),
            object: ObjectRef {
                kind,
                fields: fields.as_object().unwrap().clone(),
            },
            matched_items: vec![],
        }
    }

    #[test]
    fn file_facts_prefer_the_raw_bytes() {
        let d = detection(
            "file",
            json!({"path": "/tmp/\u{fffd}", "path_bytes_hex": hex::encode(b"/tmp/\xff"), "size": 3, "mtime": "2024-01-02T03:04:05Z"}),
        );
        let f = FileFacts::of(&d).unwrap();
        assert_eq!(f.path, b"/tmp/\xff");
        assert_eq!(f.size, Some(3));
        assert_eq!(f.mtime, Some(1704164645));
        assert_eq!(
            Target::of(&d),
            Target::File {
                path: "/tmp/\\xff".into(),
                path_hex: Some(hex::encode(b"/tmp/\xff"))
            }
        );
    }

    #[test]
    fn process_and_other_targets() {
        let d = detection(
            "process",
            json!({"pid": 42, "start_time": 1700000000, "path": "/usr/bin/x"}),
        );
        assert_eq!(
            Target::of(&d),
            Target::Process {
                pid: 42,
                start_time: Some(1700000000),
                start_boottime_ns: None,
                path: Some("/usr/bin/x".into())
            }
        );
        let d = detection(
            "event",
            json!({"event_type": "processEvent", "event": "start", "pid": 42, "start_time": 1700000000}),
        );
        assert_eq!(
            Target::of(&d),
            Target::Process {
                pid: 42,
                start_time: Some(1700000000),
                start_boottime_ns: None,
                path: None
            },
            "a process start event acts as its process"
        );
        let d = detection("event", json!({"event_type": "processEvent", "event": "end", "pid": 42}));
        assert_eq!(Target::of(&d), Target::Other { object_kind: "event".into() }, "an ended process is gone");
        let d = detection("port", json!({"pid": 42}));
        assert_eq!(
            Target::of(&d),
            Target::Other {
                object_kind: "port".into()
            }
        );
    }

    #[test]
    fn changed_names_the_difference() {
        let f = FileFacts {
            path: b"/x".to_vec(),
            sha256: Some([1; 32]),
            size: Some(3),
            mtime: Some(5),
        };
        assert!(f.changed(&[1; 32], 3, 5).is_none());
        assert!(f.changed(&[2; 32], 3, 5).unwrap().contains("sha256"));
        assert!(f.changed(&[1; 32], 4, 5).unwrap().contains("bytes"));
        assert!(f.changed(&[1; 32], 3, 6).unwrap().contains("modified"));
    }
}
