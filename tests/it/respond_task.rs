//! Response actions end to end through `ioc-scan task run`: with the switch
//! on, a running implant is killed, quarantined and deleted, and a critical
//! areas scan finds more; with the switch off, nothing on the host changes.

use crate::respond_common::{is_root, listing, responses, write_ioc, TaskEnv};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command};

/// A copy of `sleep` under a unique name in `scan/`, running; and a
/// second detected file in the critical areas.
struct Scene {
    env: TaskEnv,
    implant: PathBuf,
    second: PathBuf,
    child: Child,
    ioc: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let env = TaskEnv::new();
        let tag = format!("{:x}", std::process::id() ^ 0x5a5a);
        let implant = env.path(&format!("scan/implant-{tag}"));
        std::fs::copy("/bin/sleep", &implant).unwrap();
        std::fs::write(env.path("scan/harmless.txt"), b"nothing to see").unwrap();
        let second = env.path(&format!("critical/second-{tag}.bin"));
        std::fs::write(&second, b"dropper stage 2").unwrap();
        // Another test's fork may briefly hold the copy's write fd (ETXTBSY).
        let mut tries = 0;
        let child = loop {
            match Command::new(&implant).arg("600").spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        let ioc = write_ioc(
            &env.path("iocs"),
            "implant",
            &[
                ("FileItem/FileName", "is", &format!("implant-{tag}")),
                ("FileItem/FileName", "is", &format!("second-{tag}.bin")),
            ],
        );
        Scene {
            env,
            implant,
            second,
            child,
            ioc,
        }
    }

    /// Wait until the implant runs its own executable (the exec happened).
    fn wait_exec(&self) {
        let exe = format!("/proc/{}/exe", self.child.id());
        for _ in 0..1000 {
            if std::fs::read_link(&exe).is_ok_and(|p| p == self.implant) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the implant never ran");
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn by_path<'a>(alert: &'a Value, path: &std::path::Path) -> &'a Value {
    alert["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["object"]["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("no detection of {}: {alert:#}", path.display()))
}

#[test]
fn with_the_switch_on_the_implant_is_killed_quarantined_deleted_and_a_critical_areas_scan_finds_more() {
    let mut scene = Scene::new();
    scene.wait_exec();
    let env = &scene.env;
    let id = env.task(
        &scene.ioc,
        &["terminate", "quarantine", "delete", "critical-areas-scan"],
        true,
    );
    let (_, run) = env.run_task(&id, 1);
    assert_eq!(run["detections"], 2, "{run:#}");

    let status = scene.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!scene.implant.exists() && !scene.second.exists());
    assert!(env.path("scan/harmless.txt").exists());

    let alert = env.alert(&run["id"]);
    let first = responses(by_path(&alert, &scene.implant));
    let summary: Vec<_> = first.iter().map(|(a, o, _)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        summary,
        [("terminate", "done"), ("quarantine", "done"), ("delete", "done")],
        "{first:#?}"
    );
    let kill = &first[0].2;
    assert_eq!(kill["object"]["kind"], "process");
    assert_eq!(kill["object"]["pid"], scene.child.id());
    assert_eq!(kill["details"]["signals"], serde_json::json!(["SIGKILL"]));
    assert!(kill["object"]["start_time"].as_i64().is_some());
    assert_eq!(first[2].2["details"]["deleted"], true);

    let found_later = responses(by_path(&alert, &scene.second));
    let summary: Vec<_> = found_later.iter().map(|(a, o, _)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("critical-areas-scan", "done"),
            ("terminate", "refused"),
            ("quarantine", "done"),
            ("delete", "done")
        ],
        "{found_later:#?}"
    );
    assert_eq!(found_later[0].2["details"]["new_detections"], 1);
    let counts = run["counts"].to_string();
    assert!(counts.contains("critical_areas_scan_new_detections"), "{counts}");

    let q = env.quarantined();
    assert_eq!(q.len(), 2);
    // Restore brings the implant back, executable as it was.
    let rec = q
        .iter()
        .find(|r| r["original_path"] == scene.implant.to_str().unwrap())
        .unwrap();
    env.ok(&["quarantine", "restore", rec["id"].as_str().unwrap()], 0);
    assert_eq!(
        std::fs::read(&scene.implant).unwrap(),
        std::fs::read("/bin/sleep").unwrap()
    );
}

#[test]
fn with_the_switch_off_nothing_on_the_host_changes() {
    let mut scene = Scene::new();
    scene.wait_exec();
    let env = &scene.env;
    // Were isolation applied by mistake, it would hit only a test cgroup.
    let cgroup = is_root().then(|| {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })?;
        let cg = root.join(format!("ioc-scan-test-switch-off-{}", std::process::id()));
        std::fs::create_dir(&cg).ok().map(|_| cg)
    });
    let cgroup = cgroup.flatten();
    let name = format!("test-switch-off-{}", std::process::id());
    let id = env.task(
        &scene.ioc,
        &[
            "terminate",
            "quarantine",
            "delete",
            "isolate:10m",
            "critical-areas-scan",
        ],
        false,
    );
    let before_scan = listing(&env.path("scan"));
    let before_critical = listing(&env.path("critical"));

    let mut cmd = env.cmd(&["task", "run", &id, "--json"]);
    cmd.env("IOC_SCAN_ISOLATION_NAME", &name);
    if let Some(cg) = &cgroup {
        cmd.env("IOC_SCAN_ISOLATION_CGROUP", cg);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();

    assert_eq!(
        run["detections"], 1,
        "the implant is detected (the critical areas are not scanned)"
    );
    assert_eq!(
        listing(&env.path("scan")),
        before_scan,
        "names, sizes, modes, owners, mtimes and hashes unchanged"
    );
    assert_eq!(listing(&env.path("critical")), before_critical);
    assert!(scene.child.try_wait().unwrap().is_none(), "the implant still runs");
    assert!(!env.quarantine().exists(), "no quarantine store was even created");
    assert!(
        !std::path::Path::new("/sys/fs/bpf/ioc-scan").join(&name).exists(),
        "no isolation"
    );
    let alert = env.alert(&run["id"]);
    for d in alert["detections"].as_array().unwrap() {
        assert!(responses(d).is_empty(), "{d:#}");
    }
    assert!(!run["counts"].to_string().contains("critical_areas_scan"));
    if let Some(cg) = cgroup {
        std::fs::remove_dir(cg).unwrap();
    }
}
