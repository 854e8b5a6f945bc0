//! `cargo xtask bench-scan [--runs N] [--million]`: how fast `ioc-scan scan`
//! is on a synthetic tree, against `find | xargs -P2 sha256sum` and against
//! the raw SHA-256 speed of the machine, measured in the same run.
//!
//! The tree is built once under `target/bench-tree/` (50,000 files of
//! 1–16 KiB in nested directories, 8 × 128 MiB files; with `--million`, also
//! 1,000,000 empty files) and reused. Every measurement is taken after one
//! warm-up run (warm page cache) and is the median of `--runs` runs.
//!
//! Targets: ≥ 3× the files/s of `find | xargs -P2 sha256sum` on the small
//! files; ≥ 80 % of the raw two-core SHA-256 speed on the large files;
//! a name-only scan reads no content; < 100 MiB peak memory on a million
//! files.

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SMALL_FILES: usize = 50_000;
const SMALL_TOP: usize = 50;
const SMALL_SUB: usize = 10;
const LARGE_FILES: usize = 8;
const LARGE_SIZE: usize = 128 << 20;
const MILLION: usize = 1_000_000;

pub struct Options {
    pub runs: usize,
    pub million: bool,
}

fn build_small(dir: &Path) -> Result<()> {
    let stamp = dir.with_extension("complete");
    if stamp.exists() {
        return Ok(());
    }
    println!("building {} ({SMALL_FILES} files of 1-16 KiB)...", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    // Seeded: the same tree on every machine.
    let mut rng = fastrand::Rng::with_seed(0x1234_5678_9abc_def1);
    let per_leaf = SMALL_FILES / (SMALL_TOP * SMALL_SUB);
    let mut buf = vec![0u8; 16 << 10];
    for t in 0..SMALL_TOP {
        for s in 0..SMALL_SUB {
            let leaf = dir.join(format!("d{t:02}")).join(format!("s{s}"));
            std::fs::create_dir_all(&leaf)?;
            for f in 0..per_leaf {
                let size = rng.usize(1024..=16 * 1024);
                rng.fill(&mut buf[..size]);
                std::fs::write(leaf.join(format!("f{f:03}.bin")), &buf[..size])?;
            }
        }
    }
    std::fs::write(stamp, b"")?;
    Ok(())
}

fn build_large(dir: &Path) -> Result<()> {
    let stamp = dir.with_extension("complete");
    if stamp.exists() {
        return Ok(());
    }
    println!(
        "building {} ({LARGE_FILES} x {} MiB)...",
        dir.display(),
        LARGE_SIZE >> 20
    );
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut rng = fastrand::Rng::with_seed(0xfeed_beef_cafe_f00d);
    let mut buf = vec![0u8; 8 << 20];
    for i in 0..LARGE_FILES {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("large{i}.bin")))?);
        for _ in 0..LARGE_SIZE / buf.len() {
            rng.fill(&mut buf);
            f.write_all(&buf)?;
        }
        f.flush()?;
    }
    std::fs::write(stamp, b"")?;
    Ok(())
}

fn build_million(dir: &Path) -> Result<()> {
    let stamp = dir.with_extension("complete");
    if stamp.exists() {
        return Ok(());
    }
    println!("building {} ({MILLION} empty files; takes a while)...", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    for d in 0..1000 {
        let leaf = dir.join(format!("d{:02}", d / 100)).join(format!("e{d:03}"));
        std::fs::create_dir_all(&leaf)?;
        for f in 0..MILLION / 1000 {
            std::fs::File::create(leaf.join(format!("f{f:04}")))?;
        }
    }
    std::fs::write(stamp, b"")?;
    Ok(())
}

/// Write an IOC (one OR over `items`: term, content type, value), streaming
/// (100,000 items must not inflate this process: its peak memory is
/// inherited by the children it measures, see [`measure`]).
fn ioc_file(path: &Path, id: &str, items: impl Iterator<Item = (&'static str, &'static str, String)>) -> Result<()> {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<OpenIOC xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\" id=\"{id}\">\n<metadata><short_description>{id}</short_description></metadata>\n<criteria><Indicator operator=\"OR\" id=\"{id}-root\">\n"
    )?;
    for (n, (term, ty, value)) in items.enumerate() {
        writeln!(
            out,
            "<IndicatorItem id=\"{id}-{n}\" condition=\"is\"><Context document=\"FileItem\" search=\"FileItem/{term}\" type=\"mir\"/><Content type=\"{ty}\">{value}</Content></IndicatorItem>"
        )?;
    }
    write!(out, "</Indicator></criteria>\n</OpenIOC>\n")?;
    out.flush()?;
    Ok(())
}

/// A hash that no file of the tree has (n-th of a series).
fn fake_hex(n: usize, bytes: usize) -> String {
    let mut h = Sha256::new();
    h.update(b"ioc-scan bench ");
    h.update(n.to_le_bytes());
    let d = h.finalize();
    let mut s = String::new();
    while s.len() < bytes * 2 {
        for b in d.iter() {
            let _ = write!(s, "{b:02x}");
        }
    }
    s.truncate(bytes * 2);
    s
}

fn build_iocs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let sha256 = |n: usize| ("Sha256sum", "sha256", fake_hex(n, 32));
    ioc_file(&dir.join("sha256.ioc"), "bench-sha256", std::iter::once(sha256(0)))?;
    ioc_file(
        &dir.join("multi.ioc"),
        "bench-multi",
        [
            ("Md5sum", "md5", fake_hex(1, 16)),
            ("Sha1sum", "sha1", fake_hex(2, 20)),
            sha256(3),
        ]
        .into_iter(),
    )?;
    ioc_file(
        &dir.join("names.ioc"),
        "bench-names",
        [
            ("FileName", "string", "xmrig".to_string()),
            ("FileName", "string", "kdevtmpfsi".to_string()),
            ("FullPath", "string", "/tmp/.x/miner".to_string()),
        ]
        .into_iter(),
    )?;
    ioc_file(
        &dir.join("hash10.ioc"),
        "bench-hash10",
        (0..10).map(|i| sha256(100 + i)),
    )?;
    let many = dir.join("hash100k.ioc");
    if !many.exists() {
        ioc_file(&many, "bench-hash100k", (0..100_000).map(|i| sha256(1_000 + i)))?;
    }
    Ok(())
}

/// One child's wall time, peak RSS and stdout.
struct Measured {
    wall: Duration,
    max_rss_kib: u64,
    stdout: String,
}

/// Run `cmd`, reap it with wait4 to read its peak RSS. (A child spawned
/// with vfork inherits this process's peak RSS at exec: keep it small.)
fn measure(cmd: &mut Command) -> Result<Measured> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning")?;
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    ensure!(r == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // ioc-scan: 0 nothing found, 1 found; both fine here.
    ensure!(code == 0 || code == 1, "{:?} exited with {code}", cmd);
    Ok(Measured {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
        stdout,
    })
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Warm up once, then `runs` times; the median run and the last output.
fn bench(runs: usize, mut make: impl FnMut() -> Command) -> Result<(Duration, Measured)> {
    measure(&mut make())?;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let m = measure(&mut make())?;
        times.push(m.wall);
        last = Some(m);
    }
    let last = last.context("no run")?;
    Ok((median(times), last))
}

fn summary_of(stdout: &str) -> Result<serde_json::Value> {
    let line = stdout.lines().last().context("no output")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    ensure!(v["type"] == "summary", "last line is not the summary: {line}");
    Ok(v)
}

/// Raw SHA-256 throughput of `threads` threads over in-memory buffers.
/// `cargo xtask raw-sha256`: SHA-256 throughput of `threads` threads, each
/// hashing its own 64 MiB buffer (larger than the L3 cache: the data comes
/// from memory, as file data comes from the page cache) `rounds` times.
/// Printed as bytes/s. Run as a child of the benchmark so that its buffers
/// do not count in the peak memory of the scans measured after it.
pub fn raw_sha256(threads: usize, rounds: usize) {
    let bufs: Vec<Vec<u8>> = (0..threads.max(1)).map(|i| vec![0x5a ^ i as u8; 64 << 20]).collect();
    let _ = Sha256::digest(&bufs[0][..1 << 20]);
    let start = Instant::now();
    std::thread::scope(|s| {
        for buf in &bufs {
            s.spawn(move || {
                let mut h = Sha256::new();
                for _ in 0..rounds {
                    h.update(buf);
                }
                std::hint::black_box(h.finalize());
            });
        }
    });
    let bytes = bufs.len() * rounds * (64 << 20);
    println!("{}", bytes as f64 / start.elapsed().as_secs_f64());
}

fn raw_sha256_bytes_per_sec(threads: usize) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["raw-sha256", "--threads", &threads.to_string()])
        .output()?;
    ensure!(out.status.success(), "raw-sha256 failed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .context("raw-sha256 output")
}

/// Print one table row; the seconds.
fn row(report: &mut String, name: &str, wall: Duration, files: u64, bytes: u64, rss_kib: u64) -> f64 {
    let s = wall.as_secs_f64();
    let _ = writeln!(
        report,
        "{:<48} {:>10.3} {:>12.0} {:>10.1} {:>9}",
        name,
        s,
        files as f64 / s,
        bytes as f64 / s / (1 << 20) as f64,
        // 0: not measured (a shell pipeline).
        if rss_kib == 0 { "-".to_string() } else { format!("{:.1}", rss_kib as f64 / 1024.0) }
    );
    s
}

pub fn run(root: &Path, opts: Options) -> Result<()> {
    let runs = opts.runs.max(1);
    let tree = root.join("target/bench-tree");
    let small = tree.join("small");
    let large = tree.join("large");
    let iocs = tree.join("iocs");
    build_small(&small)?;
    build_large(&large)?;
    build_iocs(&iocs)?;
    let bin = crate::build_release_binary(root)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);

    let scan = |ioc: &str, scope: &Path| {
        let mut c = Command::new(&bin);
        c.args(["scan", "--json", "--no-progress", "--ioc"])
            .arg(iocs.join(ioc))
            .arg("--scope")
            .arg(scope);
        c
    };
    let mut report = String::new();
    let mut failures = Vec::new();
    let _ = writeln!(
        report,
        "\n{:<48} {:>10} {:>12} {:>10} {:>9}",
        "measurement (median of runs)", "seconds", "files/s", "MiB/s", "RSS MiB"
    );

    // (1) One SHA-256 IOC vs find | xargs -P2 sha256sum, alternated run by
    // run so that both see the same machine load.
    let find_xargs = || {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "find '{}' -type f -print0 | xargs -0 -P2 sha256sum >/dev/null",
            small.display()
        ));
        c
    };
    measure(&mut scan("sha256.ioc", &small))?;
    measure(&mut find_xargs())?;
    let (mut ours_t, mut theirs_t, mut last) = (Vec::new(), Vec::new(), None);
    for _ in 0..runs {
        let m = measure(&mut scan("sha256.ioc", &small))?;
        ours_t.push(m.wall);
        last = Some(m);
        let f = measure(&mut find_xargs())?;
        theirs_t.push(f.wall);
    }
    let m = last.context("no run")?;
    let s = summary_of(&m.stdout)?;
    let files = s["files_examined"].as_u64().unwrap_or(0);
    ensure!(
        files == SMALL_FILES as u64,
        "examined {files} files, expected {SMALL_FILES}"
    );
    let bytes = s["bytes_hashed"].as_u64().unwrap_or(0);
    row(
        &mut report,
        "ioc-scan, 1 SHA-256 IOC, small files",
        median(ours_t.clone()),
        files,
        bytes,
        m.max_rss_kib,
    );
    row(
        &mut report,
        "find | xargs -0 -P2 sha256sum, small files",
        median(theirs_t.clone()),
        files,
        bytes,
        0,
    );
    // The median of the per-pair ratios (each pair ran back to back).
    let ratio = median_f64(
        theirs_t
            .iter()
            .zip(&ours_t)
            .map(|(t, o)| t.as_secs_f64() / o.as_secs_f64())
            .collect(),
    );

    // (2) MD5 + SHA-1 + SHA-256.
    let (t, m) = bench(runs, || scan("multi.ioc", &small))?;
    let s = summary_of(&m.stdout)?;
    row(
        &mut report,
        "ioc-scan, MD5+SHA1+SHA256 IOCs, small files",
        t,
        files,
        s["bytes_hashed"].as_u64().unwrap_or(0),
        m.max_rss_kib,
    );

    // (3) Name-only IOCs read nothing.
    let (t, m) = bench(runs, || scan("names.ioc", &small))?;
    let s = summary_of(&m.stdout)?;
    let names_read = s["bytes_read"].as_u64().unwrap_or(u64::MAX);
    row(
        &mut report,
        "ioc-scan, name-only IOCs, small files",
        t,
        files,
        0,
        m.max_rss_kib,
    );
    if names_read != 0 {
        failures.push(format!("name-only scan read {names_read} bytes (must be 0)"));
    }

    // (4) 10 vs 100,000 hash indicators.
    let (t10, m) = bench(runs, || scan("hash10.ioc", &small))?;
    row(
        &mut report,
        "ioc-scan, 10 SHA-256 indicators",
        t10,
        files,
        bytes,
        m.max_rss_kib,
    );
    let (t100k, m) = bench(runs, || scan("hash100k.ioc", &small))?;
    row(
        &mut report,
        "ioc-scan, 100,000 SHA-256 indicators",
        t100k,
        files,
        bytes,
        m.max_rss_kib,
    );

    // (5) Large files vs raw SHA-256 on every core, alternated so that both
    // see the same machine load.
    measure(&mut scan("sha256.ioc", &large))?;
    let (mut scan_times, mut raw_speeds, mut last) = (Vec::new(), Vec::new(), None);
    for _ in 0..runs {
        let m = measure(&mut scan("sha256.ioc", &large))?;
        scan_times.push(m.wall);
        last = Some(m);
        raw_speeds.push(raw_sha256_bytes_per_sec(threads)?);
    }
    let m = last.context("no run")?;
    let s = summary_of(&m.stdout)?;
    let large_bytes = s["bytes_hashed"].as_u64().unwrap_or(0);
    ensure!(
        large_bytes == (LARGE_FILES * LARGE_SIZE) as u64,
        "hashed {large_bytes} bytes of the large files"
    );
    row(
        &mut report,
        "ioc-scan, 1 SHA-256 IOC, 8 x 128 MiB",
        median(scan_times.clone()),
        LARGE_FILES as u64,
        large_bytes,
        m.max_rss_kib,
    );
    let raw_bps = median_f64(raw_speeds.clone());
    let large_pct = 100.0
        * median_f64(
            scan_times
                .iter()
                .zip(&raw_speeds)
                .map(|(t, raw)| large_bytes as f64 / t.as_secs_f64() / raw)
                .collect(),
        );
    let _ = writeln!(
        report,
        "{:<48} {:>10} {:>12} {:>10.1}",
        format!("raw SHA-256 in memory, {threads} threads"),
        "-",
        "-",
        raw_bps / (1 << 20) as f64
    );

    // (6) Peak memory on a million files.
    let mut million_rss = None;
    if opts.million {
        let dir = tree.join("million");
        build_million(&dir)?;
        let (t, m) = bench(1, || scan("sha256.ioc", &dir))?;
        let s = summary_of(&m.stdout)?;
        let n = s["files_examined"].as_u64().unwrap_or(0);
        row(
            &mut report,
            "ioc-scan, 1 SHA-256 IOC, 1,000,000 empty files",
            t,
            n,
            0,
            m.max_rss_kib,
        );
        million_rss = Some(m.max_rss_kib);
    }

    println!("{report}");
    println!("small files: ioc-scan is {ratio:.2}x find|xargs -P2 sha256sum (target >= 3x)");
    println!("large files: ioc-scan hashes at {large_pct:.0}% of raw {threads}-thread SHA-256 (target >= 80%)");
    println!(
        "100,000 vs 10 hash indicators: {:.2}x the time",
        t100k.as_secs_f64() / t10.as_secs_f64()
    );
    println!("name-only IOCs: {names_read} bytes read (target 0)");
    if ratio < 3.0 {
        failures.push(format!("small files ratio {ratio:.2} < 3"));
    }
    if large_pct < 80.0 {
        failures.push(format!("large files at {large_pct:.0}% < 80% of raw SHA-256"));
    }
    if let Some(kib) = million_rss {
        println!(
            "1,000,000 files: peak RSS {:.1} MiB (target < 100 MiB)",
            kib as f64 / 1024.0
        );
        if kib >= 100 * 1024 {
            failures.push(format!("million files peak RSS {} MiB >= 100", kib / 1024));
        }
    }
    if !failures.is_empty() {
        bail!("targets missed: {}", failures.join("; "));
    }
    Ok(())
}
