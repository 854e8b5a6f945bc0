//! `cargo xtask bench-collect`: how long each host collector takes on this
//! host (median of several runs), then a full-host snapshot (processes,
//! ports, system) with 500 extra processes running. Target: snapshot < 1 s.
//!
//! Built with optimizations: a debug xtask re-runs itself in release.

use anyhow::Context as _;
use ioc_scan::collect::host::{all_collectors, CollectContext, HostCollector, HostRoot, Reply, Wanted};
use ioc_scan::collect::{port::PortCollector, process::ProcessCollector, system::SystemCollector};
use ioc_scan::eval::Observation;
use ioc_scan::terms::ids;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 7;
const EXTRA_PROCESSES: usize = 500;
const TARGET: Duration = Duration::from_secs(1);

/// Median time and object count of `RUNS` collections.
fn time(c: &dyn HostCollector, cx: &CollectContext) -> (Duration, u64, u64) {
    let mut times = Vec::new();
    let mut objects = 0;
    let mut errors = 0;
    for _ in 0..RUNS {
        let mut sink = |_: &dyn Observation| Reply::Done;
        let start = Instant::now();
        let stats = c.collect(cx, &mut sink);
        times.push(start.elapsed());
        objects = stats.objects;
        errors = stats.error_count();
    }
    times.sort();
    (times[RUNS / 2], objects, errors)
}

struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

pub fn run(workspace: &Path) -> anyhow::Result<()> {
    if crate::rerun_in_release(workspace, "bench-collect")? {
        return Ok(());
    }
    let root = HostRoot::system();
    let basic_process = Wanted::terms([
        ids::ProcessItem_pid,
        ids::ProcessItem_parentpid,
        ids::ProcessItem_name,
        ids::ProcessItem_path,
        ids::ProcessItem_arguments,
        ids::ProcessItem_Username,
        ids::ProcessItem_startTime,
    ]);
    println!("Per document on this host (median of {RUNS} runs, every term wanted unless said):");
    println!("{:<34} {:>10} {:>9} {:>7}", "document", "time", "objects", "errors");
    let show = |label: &str, (t, n, e): (Duration, u64, u64)| println!("{label:<34} {:>8.2}ms {n:>9} {e:>7}", t.as_secs_f64() * 1e3);
    for c in all_collectors() {
        let cx = CollectContext::new(root.clone(), Wanted::all());
        let label = if c.document() == "ProcessItem" {
            "ProcessItem (with open handles)"
        } else {
            c.document()
        };
        show(label, time(c.as_ref(), &cx));
    }
    show(
        "ProcessItem (no handles)",
        time(&ProcessCollector, &CollectContext::new(root.clone(), basic_process.clone())),
    );

    println!("\nFull-host snapshot with {EXTRA_PROCESSES} extra processes (processes without handles, ports, system):");
    let mut sleepers = Sleepers(Vec::new());
    for _ in 0..EXTRA_PROCESSES {
        sleepers.0.push(
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("starting sleep")?,
        );
    }
    let snapshot: [(&dyn HostCollector, Wanted); 3] = [
        (&ProcessCollector, basic_process),
        (&PortCollector, Wanted::all()),
        (&SystemCollector, Wanted::all()),
    ];
    let mut totals = Vec::new();
    let mut parts = vec![Vec::new(); snapshot.len()];
    for _ in 0..RUNS {
        let start = Instant::now();
        for (i, (c, wanted)) in snapshot.iter().enumerate() {
            let t = Instant::now();
            let mut sink = |_: &dyn Observation| Reply::Done;
            c.collect(&CollectContext::new(root.clone(), wanted.clone()), &mut sink);
            parts[i].push(t.elapsed());
        }
        totals.push(start.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    for (i, (c, _)) in snapshot.iter().enumerate() {
        println!("  {:<14} {:>8.2}ms", c.document(), median(&mut parts[i]).as_secs_f64() * 1e3);
    }
    let total = median(&mut totals);
    println!(
        "  {:<14} {:>8.2}ms (target < {} ms): {}",
        "total",
        total.as_secs_f64() * 1e3,
        TARGET.as_millis(),
        if total < TARGET { "OK" } else { "TOO SLOW" }
    );
    drop(sleepers);
    Ok(())
}
