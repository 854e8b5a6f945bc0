//! Every host collector on this machine's real files, and Mandiant's real
//! IOCs run through the scan adapter: no panic, no abort, and no detection of
//! Windows malware on this Linux host.

use crate::collect_util::observe;
use ioc_scan::collect::host::{all_collectors, scan_collectors, HostRoot};
use ioc_scan::eval::{CompiledCollection, Observation, Outcome};
use ioc_scan::openioc;

#[test]
fn every_collector_runs_on_this_host() {
    for c in all_collectors() {
        let (obs, stats) = observe(c.as_ref(), &HostRoot::system());
        assert_eq!(obs.len() as u64, stats.objects, "{}", c.document());
        for o in &obs {
            assert!(!o.object.kind.is_empty());
        }
        match c.document() {
            "ProcessItem" | "PortItem" | "SystemInfoItem" | "AgentInfo" | "UserItem" | "GroupItem" | "VolumeItem" | "RouteEntryItem" => {
                assert!(!obs.is_empty(), "{} observed nothing on this host", c.document())
            }
            _ => {}
        }
    }
}

#[test]
fn mandiant_iocs_run_against_the_host_collectors() {
    let dir = crate::common::shared_openioc().join("mandiant-iocs");
    if !dir.exists() && std::env::var_os("CI").is_none() {
        // A developer's worktree may not have ../shared beside it; CI does.
        eprintln!("skipped: {} not found", dir.display());
        return;
    }
    let collection = openioc::load_files(&[dir]);
    assert!(collection.iocs.len() >= 20, "{} IOCs", collection.iocs.len());
    let (compiled, _) = CompiledCollection::compile(&collection.iocs);
    let collectors = scan_collectors(&compiled, &HostRoot::system());
    let docs: Vec<_> = collectors.iter().map(|c| c.document()).collect();
    assert!(docs.contains(&"ProcessItem"), "{docs:?}");
    let mut hits = Vec::new();
    let mut matcher = compiled.matcher();
    for c in &collectors {
        let mut evaluate = |obs: &dyn Observation| {
            let o = matcher.evaluate(obs);
            if let Outcome::Hits(h) = &o {
                hits.extend(h.iter().map(|h| (h.ioc, h.object.clone())));
            }
            o
        };
        let summary = c.collect(&mut evaluate);
        assert_eq!(summary.document, c.document());
    }
    assert!(hits.is_empty(), "Windows IOCs matched this Linux host: {hits:?}");
}
