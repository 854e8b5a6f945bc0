//! `ioc-scan alert RUN_ID [--json]`: the alert details of a run: per
//! detection the IOC, the matched items (with term, condition and value from
//! the collection version the run used), the object, and the response
//! actions with their outcome.

use super::task::{fmt_time, object_text, run_json, DbArgs};
use super::validate::printable;
use ioc_scan::indicator::{Ioc, Item};
use ioc_scan::store::{CollectionRecordV1, DetectionRecordV1, RunStatus};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    pub run_id: u64,
    /// One JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

fn find_item<'c>(
    c: Option<&'c CollectionRecordV1>,
    ioc_id: &str,
    item_id: &str,
) -> Option<(&'c Ioc, &'c Item)> {
    let ioc = c?.iocs.iter().find(|i| i.id == ioc_id)?;
    Some((ioc, ioc.items().find(|i| i.id == item_id)?))
}

fn detection_json(c: Option<&CollectionRecordV1>, d: &DetectionRecordV1) -> serde_json::Value {
    json!({
        "ioc": {"id": d.ioc_id, "name": d.ioc_name, "description": d.ioc_description},
        "matched_items": d.matched_items.iter().map(|id| match find_item(c, &d.ioc_id, id) {
            Some((_, item)) => json!({
                "id": id,
                "term": item.context.search,
                "condition": item.condition.as_str(),
                "negate": item.negate,
                "value": item.content.value,
            }),
            None => json!({"id": id}),
        }).collect::<Vec<_>>(),
        "object": d.object,
        "responses": d.responses,
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = args.db.open(false)?;
    let run = store.run(args.run_id)?;
    let detections = store.detections(run.id)?;
    // Missing only if the database was damaged: the details still show.
    let collection = store.collection(run.task_id, run.collection_version).ok();
    let c = collection.as_ref();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let doc = json!({
            "run": run_json(&run),
            "files": c.map(|c| c.files.clone()),
            "indicators": c.map(super::task::indicators_json),
            "detections": detections.iter().map(|d| detection_json(c, d)).collect::<Vec<_>>(),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "Run {}: {}", run.id, run.status)?;
        writeln!(
            out,
            "Task: {} {} (collection version {})",
            run.task_id,
            printable(&run.task_name),
            run.collection_version
        )?;
        writeln!(out, "Device: {}", printable(&run.device))?;
        let ended = run.ended_at.map(fmt_time).unwrap_or_else(|| "-".into());
        writeln!(out, "Started: {}  Ended: {ended}", fmt_time(run.started_at))?;
        writeln!(out, "Result: {}", printable(&super::results::summary(&run)))?;
        if let (Some(e), false) = (&run.error, run.status == RunStatus::Error) {
            // Detections, and a part of the run that failed (e.g. live monitoring).
            writeln!(out, "Error: {}", printable(e))?;
        }
        if !run.counts.is_empty() {
            let counts: Vec<String> = run.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(out, "Counts: {}", printable(&counts.join(", ")))?;
        }
        for (n, d) in detections.iter().enumerate() {
            writeln!(out)?;
            writeln!(
                out,
                "Detection {}: IOC {} {}",
                n + 1,
                printable(&d.ioc_id),
                printable(&d.ioc_name)
            )?;
            if let Some(desc) = d.ioc_description.as_deref().filter(|s| !s.is_empty()) {
                writeln!(out, "  Description: {}", printable(desc))?;
            }
            writeln!(out, "  Object: {}", object_text(&d.object))?;
            writeln!(out, "  Matched items:")?;
            for id in &d.matched_items {
                match find_item(c, &d.ioc_id, id) {
                    Some((_, item)) => writeln!(
                        out,
                        "    {} {} {}{} {:?}",
                        printable(id),
                        printable(&item.context.search),
                        if item.negate { "not " } else { "" },
                        item.condition.as_str(),
                        printable(&item.content.value)
                    )?,
                    None => writeln!(
                        out,
                        "    {} (not in collection version {})",
                        printable(id),
                        run.collection_version
                    )?,
                }
            }
            if d.responses.is_empty() {
                writeln!(out, "  Response: none")?;
            }
            for r in &d.responses {
                let detail = r
                    .detail
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  Response {}: {}{}",
                    printable(&r.action),
                    printable(&r.outcome),
                    printable(&detail)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
