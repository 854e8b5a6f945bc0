//! Which tasks are due, and the agent's loop: run what is due, prune on its
//! period, sleep until the next due time (at most one tick), until stopped.

use super::execute::{execute, Scanner};
use crate::store::{
    PruneBudget, RunError, RunRecordV1, RunTrigger, Schedule, Store, StoreError,
    TaskRecordV1,
};
use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The tasks to run now: those whose schedule is due at `now`, and the
/// `agent-start` ones when the agent has just started.
pub fn due_tasks<Tz: TimeZone>(
    store: &Store,
    now: DateTime<Utc>,
    tz: &Tz,
    agent_starting: bool,
) -> Result<Vec<(TaskRecordV1, RunTrigger)>, StoreError> {
    let mut due = Vec::new();
    for task in store.tasks()? {
        if task.schedule == Schedule::AgentStart {
            if agent_starting {
                due.push((task, RunTrigger::AgentStart));
            }
            continue;
        }
        if store.next_due(&task, tz)?.is_some_and(|at| at <= now) {
            due.push((task, RunTrigger::Schedule));
        }
    }
    Ok(due)
}

/// The earliest time a time-scheduled task falls due (to sleep until then).
fn next_wake<Tz: TimeZone>(store: &Store, tz: &Tz) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut next: Option<DateTime<Utc>> = None;
    for task in store.tasks()? {
        if let Some(at) = store.next_due(&task, tz)? {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    Ok(next)
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub device: String,
    /// Longest sleep between two looks at the schedules.
    pub tick: Duration,
    /// How often old results are pruned.
    pub prune_every: Duration,
    pub retention: chrono::Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            device: super::default_device_name(),
            tick: Duration::from_secs(30),
            prune_every: Duration::from_secs(3600),
            retention: chrono::Duration::days(crate::store::DEFAULT_RETENTION_DAYS as i64),
        }
    }
}

/// What the agent tells its caller as it goes (the CLI prints it).
pub trait AgentEvents {
    fn run_started(&mut self, _task: &TaskRecordV1, _trigger: RunTrigger) {}
    fn run_finished(&mut self, _run: &Result<RunRecordV1, RunError>) {}
    fn pruned(&mut self, _runs: u64) {}
}

impl AgentEvents for () {}

pub struct Agent<'a, Tz: TimeZone> {
    pub store: &'a Store,
    pub scanner: &'a dyn Scanner,
    pub config: AgentConfig,
    pub tz: Tz,
}

impl<Tz: TimeZone> Agent<'_, Tz> {
    /// Runs due tasks until `stop` is set (or once, with `once`). Errors of a
    /// single run are reported to `events` and do not stop the agent; a
    /// failing store does.
    pub fn run(
        &self,
        once: bool,
        stop: &AtomicBool,
        events: &mut dyn AgentEvents,
    ) -> Result<(), StoreError> {
        let mut starting = true;
        let mut last_prune: Option<Instant> = None;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= self.config.prune_every) {
                self.prune(stop, events)?;
                last_prune = Some(Instant::now());
            }
            self.run_due(starting, stop, events)?;
            starting = false;
            if once || stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = self.store.clock().now();
            let sleep = match next_wake(self.store, &self.tz)? {
                Some(at) => (at - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(self.config.tick),
                None => self.config.tick,
            };
            super::sleep_unless_stopped(sleep, stop);
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }

    /// Runs every task due now, one after the other.
    pub fn run_due(
        &self,
        starting: bool,
        stop: &AtomicBool,
        events: &mut dyn AgentEvents,
    ) -> Result<(), StoreError> {
        let now = self.store.clock().now();
        for (task, trigger) in due_tasks(self.store, now, &self.tz, starting)? {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            // Recorded before the run: a run that crashes the agent is not
            // retried in a loop, it waits for its next due time.
            self.store.record_fire(task.id, now)?;
            events.run_started(&task, trigger);
            let result = execute(
                self.store,
                task.id,
                &self.config.device,
                trigger,
                self.scanner,
                stop,
                &mut |_| {},
            );
            events.run_finished(&result);
        }
        Ok(())
    }

    fn prune(&self, stop: &AtomicBool, events: &mut dyn AgentEvents) -> Result<(), StoreError> {
        loop {
            let report = self
                .store
                .prune(self.config.retention, PruneBudget::default())?;
            if report.runs_deleted > 0 {
                events.pruned(report.runs_deleted);
            }
            if !report.more || stop.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }
}
