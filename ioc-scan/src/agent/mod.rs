//! The agent: the long-running ioc-scan process of a device. It runs the
//! tasks whose schedule is due ([`scheduler`]), records each run in the store
//! ([`execute`](mod@execute)), and prunes old results on its period.
//!
//! The scan itself is behind [`Scanner`], so that scheduling and recording
//! are tested with a scripted scanner; [`EngineScanner`] runs the real one
//! ([`crate::scan`]).

pub mod console_client;
pub mod engine;
pub mod execute;
pub mod live;
pub mod managed;
pub mod queue;
pub mod reachable;
pub mod scheduler;

pub use engine::EngineScanner;
pub use execute::{execute, RunSink, ScanJob, ScanReport, Scanner};
pub use scheduler::{due_tasks, Agent, AgentConfig, AgentEvents};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sleeps for `total`, or less if `stop` is raised (checked every 100 ms).
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let end = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The device name used when none is given: the host name.
pub fn default_device_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
