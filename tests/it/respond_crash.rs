//! Kill -9 at every step of quarantine + delete (through `ioc-scan task
//! run`, paused by `IOC_SCAN_TEST_PAUSE_AFTER`): the file is always either
//! still in place, or gone with its verified copy and record in the store.

use crate::common::sha256_hex;
use crate::respond_common::{write_ioc, TaskEnv};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const PAYLOAD: &[u8] = b"\x7fELF not really, but detected\n";

/// Run the task paused after `step`, SIGKILL it there, return the env.
fn killed_after(step: &str) -> (TaskEnv, std::path::PathBuf) {
    let env = TaskEnv::new();
    let file = env.path("scan/implant.bin");
    std::fs::write(&file, PAYLOAD).unwrap();
    let ioc = write_ioc(
        &env.path("iocs"),
        "implant",
        &[("FileItem/Sha256sum", "is", &sha256_hex(PAYLOAD))],
    );
    let id = env.task(&ioc, &["quarantine", "delete"], true);
    let mut child = env
        .cmd(&["task", "run", &id])
        .env("IOC_SCAN_TEST_PAUSE_AFTER", step)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut paused = false;
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(&format!("test pause after {step}")) {
            paused = true;
            break;
        }
    }
    assert!(paused, "the run never reached {step}:\n{seen}");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    (env, file)
}

/// The verified records of the store after the crash.
fn verified_copies(env: &TaskEnv) -> usize {
    let records = env.quarantined();
    for r in &records {
        assert_eq!(r["sha256"], sha256_hex(PAYLOAD));
        let object = env.quarantine().join("objects").join(r["sha256"].as_str().unwrap());
        assert_eq!(
            std::fs::read(object).unwrap(),
            PAYLOAD,
            "a record always has its verified copy"
        );
        let show = env.ok(&["quarantine", "show", r["id"].as_str().unwrap()], 0);
        assert!(show.contains("verified"), "{show}");
    }
    records.len()
}

#[test]
fn kill_9_at_any_step_of_quarantine_and_delete_never_loses_the_file() {
    for step in ["copy", "object", "quarantine", "rehash"] {
        let (env, file) = killed_after(step);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            PAYLOAD,
            "killed after {step}: the file is still in place"
        );
        let copies = verified_copies(&env);
        assert_eq!(
            copies,
            usize::from(matches!(step, "quarantine" | "rehash")),
            "after {step}"
        );
        // The next run finishes the job (the earlier copy is reused).
        let id = "1";
        let (detections, run) = env.run_task(id, 1);
        assert_eq!(detections.len(), 1);
        assert!(!file.exists(), "after {step}, a complete run deletes it");
        assert_eq!(verified_copies(&env), 1);
        let alert = env.alert(&run["id"]);
        let outcomes: Vec<_> = crate::respond_common::responses(&alert["detections"][0])
            .into_iter()
            .map(|(a, o, _)| (a, o))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("quarantine".to_string(), "done".to_string()),
                ("delete".to_string(), "done".to_string())
            ]
        );
    }
    // Killed right after the unlink: gone from its place, safe in quarantine.
    let (env, file) = killed_after("delete");
    assert!(!file.exists());
    assert_eq!(verified_copies(&env), 1);
    let id = env.quarantined()[0]["id"].as_str().unwrap().to_string();
    env.ok(&["quarantine", "restore", &id], 0);
    assert_eq!(std::fs::read(&file).unwrap(), PAYLOAD);
}
