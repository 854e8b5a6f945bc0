//! The critical areas scan: after a detection, scan the places malware
//! lives and persists (system binaries, startup objects, temp dirs...,
//! [`crate::scan::CRITICAL_AREAS`], plus the paths the IOCs name and the
//! executables of running processes) with the same collection, as part of
//! the same run.

use super::target::Target;
use super::{detection_key, Action, ActionRecord, Outcome};
use crate::collect::host::{scan_collectors, HostRoot};
use crate::eval::{CompiledCollection, Detection};
use crate::scan::{Scan, ScanOptions};
use serde_json::json;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// New detections listed in full in the record (all are returned).
const MAX_LISTED: usize = 1000;

/// Where the follow-up scan looks: `IOC_SCAN_CRITICAL_AREAS` (paths
/// separated by `:`) replaces the built-in critical areas, e.g. to keep a
/// test or a small device's scan short; None: the built-in ones.
pub fn areas_from_env() -> Option<Vec<PathBuf>> {
    let v = std::env::var_os("IOC_SCAN_CRITICAL_AREAS")?;
    let paths: Vec<PathBuf> = std::env::split_paths(&v)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    (!paths.is_empty()).then_some(paths)
}

/// Scan the critical areas with `collection`; the record holds the scan's
/// summary and the detections not in `seen` (see [`detection_key`]), which
/// are also returned so that the run records them and responds to them.
pub fn critical_areas_scan(
    collection: Option<&CompiledCollection>,
    areas: Option<&[PathBuf]>,
    seen: &HashSet<String>,
) -> (ActionRecord, Vec<Detection>) {
    let scope = match areas {
        Some(a) => a.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
        None => "critical areas".to_string(),
    };
    let target = Target::Scan { scope };
    let Some(compiled) = collection else {
        let r = ActionRecord::new(
            Action::CriticalAreasScan,
            target,
            Outcome::Refused("no IOC collection to scan with".into()),
            serde_json::Value::Null,
        );
        return (r, Vec::new());
    };
    let options = match areas {
        Some(a) => ScanOptions {
            scopes: a.to_vec(),
            critical_areas: false,
            ..ScanOptions::default()
        },
        None => ScanOptions {
            critical_areas: true,
            ..ScanOptions::default()
        },
    };
    let found = Mutex::new(Vec::new());
    let scan = Scan::new(compiled, options).with_collectors(scan_collectors(compiled, &HostRoot::system()));
    let result = scan.run(&|d: Detection| found.lock().unwrap_or_else(|e| e.into_inner()).push(d));
    match result {
        Ok(summary) => {
            let mut new: Vec<Detection> = found.into_inner().unwrap_or_else(|e| e.into_inner());
            new.retain(|d| !seen.contains(&detection_key(d)));
            let listed: Vec<_> = new
                .iter()
                .take(MAX_LISTED)
                .map(|d| json!({"ioc_id": d.ioc_id, "ioc_name": d.ioc_name, "object": d.object, "matched_items": d.matched_items}))
                .collect();
            let details = json!({
                "summary": summary,
                "new_detections": new.len(),
                "detections": listed,
            });
            (
                ActionRecord::new(Action::CriticalAreasScan, target, Outcome::Done, details),
                new,
            )
        }
        Err(e) => (
            ActionRecord::new(
                Action::CriticalAreasScan,
                target,
                Outcome::Failed(e.to_string()),
                serde_json::Value::Null,
            ),
            Vec::new(),
        ),
    }
}
