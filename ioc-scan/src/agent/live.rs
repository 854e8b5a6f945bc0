//! The live part of a task run: after the scan, the eBPF sensors watch the
//! device for the task's duration ([`crate::collect::ebpf::live`]) and each
//! live detection (a process, connection or DNS answer) is recorded in the
//! same run with the task's responses.
//!
//! Monitoring runs on a thread of its own (its event loop is a tokio
//! runtime, and the caller may be inside one); detections come back over a
//! channel and are responded to and recorded here, in order.
//!
//! Responses: terminate goes through [`crate::respond::terminate`] (pidfd,
//! start time checked). With terminate among the task's actions, the exec
//! program also kills at exec the processes the IOCs name decisively
//! ([`rules::kill_rules`]); such a detection records the kernel's kill
//! instead of a second, pointless attempt. Nothing is blocked: blocking
//! connections is not a task action.
//!
//! Where BPF is unavailable the run says so (its error, `live_failed` = 1);
//! what the scan found stands.

use super::engine::{detection_record, response_outcomes};
use super::execute::{RunSink, ScanJob};
use crate::collect::ebpf::live::{
    self as sensors, DetectionContext, LiveAction, LiveOptions, LiveSink, LiveSummary, Notice,
};
use crate::collect::ebpf::rules;
use crate::eval::{CompiledCollection, Detection};
use crate::respond::{self, Action, ActionRecord, Outcome, Responder, ResponsePlan, Target};
use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

/// What the live part adds to the run.
#[derive(Debug, Default)]
pub struct LiveReport {
    pub counts: Vec<(String, u64)>,
    pub error: Option<String>,
}

/// What the monitoring thread hands the recording one.
enum Message {
    Detection(Box<(Detection, Option<LiveAction>)>),
    Notice(NoticeKind),
}

#[derive(Debug, Clone, Copy)]
enum NoticeKind {
    SensorUnavailable,
    NoExecDetails,
    KillWithoutExec,
}

/// Sends detections to the recording thread.
struct Forward {
    tx: mpsc::Sender<Message>,
}

impl LiveSink for Forward {
    fn notice(&mut self, notice: Notice<'_>) {
        let kind = match notice {
            Notice::SensorUnavailable(p) => {
                tracing::warn!(
                    "live monitoring: sensor {} unavailable ({} on {}): {}",
                    p.sensor,
                    p.program,
                    p.attach,
                    p.unavailable.as_deref().unwrap_or("")
                );
                NoticeKind::SensorUnavailable
            }
            Notice::NoExecDetails(why) => {
                tracing::warn!("live monitoring: exec events lack parent, start time, inode and arguments: {why}");
                NoticeKind::NoExecDetails
            }
            Notice::KillWithoutExec => NoticeKind::KillWithoutExec,
            Notice::BadEvent(e) => {
                tracing::debug!("live monitoring: bad kernel event: {e}");
                return;
            }
        };
        let _ = self.tx.send(Message::Notice(kind));
    }

    fn detection(&mut self, detection: &Detection, context: &DetectionContext<'_>) {
        let _ = self.tx.send(Message::Detection(Box::new((
            detection.clone(),
            context.kernel_kill.cloned(),
        ))));
    }
}

/// The record of the kernel's kill at exec, as a terminate action's.
fn kernel_kill_record(d: &Detection, kill: &LiveAction) -> ActionRecord {
    let outcome = match kill.outcome {
        "done" => Outcome::Done,
        "refused" => Outcome::Refused(kill.reason.clone()),
        _ => Outcome::Failed(kill.reason.clone()),
    };
    let mut details = serde_json::json!({"by": "kernel", "when": "exec", "pid": kill.pid});
    if outcome.is_done() {
        details["signals"] = serde_json::json!(["SIGKILL"]);
        details["how"] = serde_json::json!(kill.reason);
    }
    ActionRecord::new(Action::Terminate, Target::of(d), outcome, details)
}

/// The live options of a task run.
fn options(job: &ScanJob<'_>, duration: Duration, plan: &ResponsePlan) -> LiveOptions {
    let terminate = plan.actions.contains(&Action::Terminate);
    LiveOptions {
        kill_at_exec: terminate,
        kill_rules: if terminate {
            rules::kill_rules(&job.collection.iocs)
        } else {
            rules::KillRules::default()
        },
        duration: Some(duration),
        ..LiveOptions::default()
    }
}

/// Monitors for `duration` (or until the job's stop flag), recording each
/// live detection not `recorded` already, with the `responder`'s actions.
pub fn run(
    job: &ScanJob<'_>,
    duration: Duration,
    plan: &ResponsePlan,
    responder: &mut Responder<'_, '_>,
    recorded: &mut HashSet<String>,
    sink: &mut dyn RunSink,
) -> LiveReport {
    let mut report = LiveReport::default();
    report
        .counts
        .push(("live_seconds".into(), duration.as_secs()));
    let (compiled, _diagnostics) =
        CompiledCollection::compile_with_support(&job.collection.iocs, sensors::live_support);
    if !sensors::has_live_indicators(&compiled) {
        // No indicator a live event answers: nothing the sensors could find.
        report.counts.push(("live_not_needed".into(), 1));
        return report;
    }
    let options = options(job, duration, plan);
    let stop = job.stop;
    let (tx, rx) = mpsc::channel::<Message>();
    let mut recorded_live = 0u64;
    let mut already = 0u64;
    let mut notices = [0u64; 3];
    let outcome = std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut forward = Forward { tx };
            sensors::monitor_blocking(&compiled, &options, stop, &mut forward)
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Message::Detection(found)) => {
                    let (d, kernel_kill) = *found;
                    if !recorded.insert(respond::detection_key(&d)) {
                        // The scan found it already (a process or socket
                        // that was there before the monitor).
                        already += 1;
                        continue;
                    }
                    let mut records = responder.respond(&d);
                    if let Some(kill) = &kernel_kill {
                        // Killed at exec: that is the terminate action.
                        records.retain(|r| r.action != Action::Terminate);
                        if plan.actions.contains(&Action::Terminate) {
                            records.insert(0, kernel_kill_record(&d, kill));
                        }
                    }
                    let mut rec = detection_record(d);
                    rec.responses = response_outcomes(&records);
                    sink.detection(rec);
                    recorded_live += 1;
                }
                Ok(Message::Notice(kind)) => notices[kind as usize] += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => sink.idle(),
                // Monitoring ended (its sink dropped).
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        monitor.join()
    });
    match outcome {
        Ok(Ok(summary)) => counts(&mut report, &summary, recorded_live, already, &notices),
        Ok(Err(e)) => {
            report.counts.push(("live_failed".into(), 1));
            report.error = Some(format!("live monitoring could not run: {e}"));
        }
        Err(_) => {
            report.counts.push(("live_failed".into(), 1));
            report.error = Some("live monitoring panicked".into());
        }
    }
    report
}

fn counts(
    report: &mut LiveReport,
    s: &LiveSummary,
    recorded: u64,
    already: u64,
    notices: &[u64; 3],
) {
    let c = &mut report.counts;
    c.push(("live_events".into(), s.events));
    c.push(("live_detections".into(), recorded));
    if already > 0 {
        c.push(("live_already_found_by_scan".into(), already));
    }
    c.push(("live_lost_events".into(), s.lost));
    if s.decode_errors > 0 {
        c.push(("live_decode_errors".into(), s.decode_errors));
    }
    let names = [
        "live_sensors_unavailable",
        "live_exec_without_details",
        "live_kill_at_exec_unavailable",
    ];
    for (name, n) in names.iter().zip(notices) {
        if *n > 0 {
            c.push((name.to_string(), *n));
        }
    }
}
