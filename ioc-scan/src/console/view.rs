//! The JSON the API shows: IOCs with their items (each marked supported or
//! not), tasks, runs and alert details. Values are data only; escaping is
//! the page's job (it builds its DOM with `textContent`).

use super::tables::{DeviceRecordV1, GroupRecordV1, JobRecordV1, TargetsV1};
use crate::indicator::{self, Ioc, Item, Node, OpenIocVersion};
use crate::store::{clock, CollectionRecordV1, DetectionRecordV1, RunRecordV1, TaskRecordV1};
use crate::terms::support::ItemSupport;
use serde_json::{json, Value};

pub fn time(ms: i64) -> String {
    clock::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn opt_time(ms: Option<i64>) -> Value {
    ms.map(|t| Value::String(time(t))).unwrap_or(Value::Null)
}

/// Whether ioc-scan evaluates an item, and why not.
pub fn item_support(item: &Item) -> (&'static str, Option<String>) {
    let support = ItemSupport::of(item);
    (support.label(), support.reason().map(str::to_owned))
}

fn item_json(item: &Item) -> Value {
    let (support, reason) = item_support(item);
    json!({
        "id": item.id,
        "document": item.context.document,
        "term": item.context.search,
        "condition": item.condition.as_str(),
        "negate": item.negate,
        "preserve_case": item.preserve_case,
        "content_type": item.content.content_type,
        "value": item.content.value,
        "line": item.position.line,
        "column": item.position.column,
        "support": support,
        "reason": reason,
    })
}

/// An IOC with its tree flattened in document order (each node with its depth).
pub fn ioc(ioc: &Ioc) -> Value {
    let mut tree = Vec::with_capacity(ioc.nodes.len());
    let (mut items, mut unsupported) = (0usize, 0usize);
    for (depth, id) in ioc.walk() {
        match ioc.node(id) {
            Node::Indicator(ind) => tree.push(json!({
                "depth": depth, "kind": "indicator", "id": ind.id, "operator": ind.operator,
            })),
            Node::Item(item) => {
                items += 1;
                if item_support(item).0 != "supported" {
                    unsupported += 1;
                }
                let mut v = item_json(item);
                v["depth"] = json!(depth);
                v["kind"] = json!("item");
                tree.push(v);
            }
        }
    }
    let m = &ioc.meta;
    json!({
        "id": ioc.id,
        "name": ioc.name(),
        "description": m.description,
        "short_description": m.short_description,
        "authored_by": m.authored_by,
        "authored_date": m.authored_date,
        "last_modified": m.last_modified,
        "source": ioc.source,
        "format": match ioc.version { OpenIocVersion::V1_0 => "1.0", OpenIocVersion::V1_1 => "1.1" },
        "items": items,
        "unsupported_items": unsupported,
        "tree": tree,
    })
}

pub fn targets(t: &TargetsV1) -> Value {
    json!({ "all": t.all, "groups": t.groups, "devices": t.devices })
}

/// A task as listed.
pub fn task(t: &TaskRecordV1, c: Option<&CollectionRecordV1>, targets_: &TargetsV1) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "collection_version": t.collection_version,
        "scope": {
            "critical_areas": t.scope.critical_areas,
            "ioc_paths": t.scope.ioc_paths,
            "custom_paths": t.scope.custom_paths,
            "excludes": t.scope.excludes,
        },
        "paths_named_by_iocs": c.map(|c| indicator::paths_named(&c.iocs)).unwrap_or_default(),
        "response": {
            "apply": t.response.apply,
            "actions": t.response.actions,
        },
        "schedule": t.schedule.to_string(),
        // Live monitoring after the scan, in seconds (0: off).
        "monitor_seconds": t.monitor_seconds.unwrap_or(0),
        "targets": targets(targets_),
        "iocs": c.map(|c| c.iocs.len()).unwrap_or(0),
        "files": c.map(|c| c.files.iter().enumerate().map(|(i, f)| json!({
            "index": i, "name": f.name, "sha256": f.sha256, "size": f.size,
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "created_at": time(t.created_at),
        "updated_at": time(t.updated_at),
    })
}

pub fn device(d: &DeviceRecordV1, last_seen: Option<i64>, now: i64, groups: &[GroupRecordV1]) -> Value {
    let seen = last_seen.max(d.last_seen);
    json!({
        "id": d.id,
        "name": d.name,
        "hostname": d.hostname,
        "os": d.os,
        "agent_version": d.agent_version,
        "group_id": d.group_id,
        "group": d.group_id.and_then(|g| groups.iter().find(|x| x.id == g)).map(|g| g.name.clone()),
        "enrolled_at": time(d.enrolled_at),
        "last_seen": opt_time(seen),
        "online": seen.is_some_and(|s| now - s < 120_000),
    })
}

pub fn group(g: &GroupRecordV1, members: usize) -> Value {
    json!({ "id": g.id, "name": g.name, "description": g.description, "devices": members, "created_at": time(g.created_at) })
}

pub fn job(j: &JobRecordV1, device_name: Option<&str>) -> Value {
    json!({
        "id": j.id,
        "task_id": j.task_id,
        "collection_version": j.collection_version,
        "device_id": j.device_id,
        "device": device_name,
        "trigger": j.trigger,
        "status": j.status,
        "created_at": time(j.created_at),
        "not_before": opt_time(j.not_before),
        "dispatched_at": opt_time(j.dispatched_at),
        "done_at": opt_time(j.done_at),
        "run_id": j.run_id,
    })
}

/// One line of what a run found, for the results table.
pub fn run_summary(r: &RunRecordV1) -> String {
    let summary = run_status_summary(r);
    // A result cut down to fit the upload limit says how much it lacks.
    match r.counts.iter().find(|(k, _)| k == crate::agent::queue::LEFT_OUT).map(|(_, n)| *n) {
        Some(n) if n > 0 => format!("{summary}, {n} detection{} left out", if n == 1 { "" } else { "s" }),
        _ => summary,
    }
}

fn run_status_summary(r: &RunRecordV1) -> String {
    match r.status {
        crate::store::RunStatus::IocDetected => format!(
            "{} IOC{} detected ({} detection{})",
            r.iocs_detected,
            if r.iocs_detected == 1 { "" } else { "s" },
            r.detections,
            if r.detections == 1 { "" } else { "s" }
        ),
        crate::store::RunStatus::NoIocDetected => "no IOC detected".into(),
        crate::store::RunStatus::Error => format!("error: {}", r.error.as_deref().unwrap_or("unknown")),
        crate::store::RunStatus::Running => "running".into(),
        crate::store::RunStatus::Interrupted if r.detections > 0 => format!(
            "interrupted ({} detection{} before it stopped)",
            r.detections,
            if r.detections == 1 { "" } else { "s" }
        ),
        crate::store::RunStatus::Interrupted => "interrupted".into(),
    }
}

pub fn run(r: &RunRecordV1, device_id: Option<u64>) -> Value {
    json!({
        "id": r.id,
        "task_id": r.task_id,
        "task_name": r.task_name,
        "collection_version": r.collection_version,
        "device": r.device,
        "device_id": device_id,
        "trigger": r.trigger,
        "status": r.status,
        "started_at": time(r.started_at),
        "ended_at": opt_time(r.ended_at),
        "detections": r.detections,
        "iocs_detected": r.iocs_detected,
        "counts": r.counts.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "error": r.error,
        "summary": run_summary(r),
        // By the console's clock; the device's own times only when they were
        // out of bounds (then started_at/ended_at are the console's bounds).
        "received_at": opt_time(r.received_at),
        "device_times": r.device_times.map(|t| json!({"started_at": t.started_at, "ended_at": t.ended_at})),
    })
}

/// One detection with its matched items looked up in the run's collection version.
pub fn detection(d: &DetectionRecordV1, collection: Option<&CollectionRecordV1>) -> Value {
    let ioc = collection.and_then(|c| c.iocs.iter().find(|i| i.id == d.ioc_id));
    let items: Vec<Value> = d
        .matched_items
        .iter()
        .map(|id| match ioc.and_then(|i| i.items().find(|it| &it.id == id)) {
            Some(item) => item_json(item),
            None => json!({ "id": id }),
        })
        .collect();
    json!({
        "ioc_id": d.ioc_id,
        "ioc_name": d.ioc_name,
        "ioc_description": d.ioc_description,
        "ioc_source": ioc.map(|i| i.source.clone()),
        "matched_items": items,
        "object": d.object,
        "responses": d.responses,
    })
}
