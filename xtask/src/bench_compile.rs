//! `cargo xtask bench-compile`: the worst collections the console accepts
//! (32 MiB: 8 files of 4 MiB, one IOC each) against the compile budget.
//! Per shape, in a fresh process: parse time, one compile (what an agent
//! does), the upload check (what the console and `validate` do: two
//! compiles), the cost charged, what was refused, and the peak RSS of the
//! whole process. Targets: a compile under 2 s, the process under 512 MiB.
//!
//! Built with optimizations: a debug xtask re-runs itself in release.

use anyhow::{bail, Context};
use ioc_scan::eval::{CompiledCollection, Severity};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const FILES: usize = 8;
const FILE_BYTES: usize = (4 << 20) - 4096;
const TARGET_SECONDS: f64 = 2.0;
const TARGET_RSS_MIB: f64 = 512.0;

const CASES: &[&str] = &[
    "and-over-or",
    "small-and-over-or",
    "many-ors-under-and",
    "deep-nesting",
    "hash-list",
    "regex-heavy",
    "contains-heavy",
];

pub fn run(root: &Path) -> anyhow::Result<()> {
    if crate::rerun_in_release(root, "bench-compile")? {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!(
        "{:<20} {:>6} {:>8} {:>7} {:>8} {:>7} {:>8} {:>10} {:>9} {:>8} {:>6}",
        "case", "MiB", "items", "parse", "compile", "check", "peak", "work", "charged", "refused", "skip"
    );
    let mut failed = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir()?;
        let bytes = generate(case, dir.path())?;
        let out =
            Command::new(&exe).args(["compile-case", "--dir"]).arg(dir.path()).output().context("running the case")?;
        if !out.status.success() {
            bail!("{case}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<20} {:>6.1} {:>8} {:>6.2}s {:>7.2}s {:>6.2}s {:>5.0}MiB {:>10} {:>6.0}MiB {:>8} {:>6}",
            case,
            bytes as f64 / (1 << 20) as f64,
            v["items"],
            f("parse_s"),
            f("compile_s"),
            f("check_s"),
            f("peak_rss_mib"),
            v["work"],
            f("memory") / (1 << 20) as f64,
            v["refused"],
            v["distributions_skipped"],
        );
        if f("compile_s") > TARGET_SECONDS || f("peak_rss_mib") > TARGET_RSS_MIB {
            failed.push(*case);
        }
    }
    println!(
        "\ntargets: a compile under {TARGET_SECONDS} s, peak RSS under {TARGET_RSS_MIB} MiB \
         (parse, compile and upload check together)"
    );
    if !failed.is_empty() {
        bail!("over target: {}", failed.join(", "));
    }
    Ok(())
}

/// (bench-compile helper) Reads the IOC files of `dir` as the console does,
/// compiles them, prints the figures as JSON.
pub fn case(dir: &Path) -> anyhow::Result<()> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.sort();
    let t = Instant::now();
    let mut iocs = Vec::new();
    for p in &paths {
        let bytes = std::fs::read(p)?;
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let parsed = ioc_scan::openioc::parse_bytes(&name, &bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        iocs.push(parsed.ioc);
    }
    let parse_s = t.elapsed().as_secs_f64();
    let items: usize =
        iocs.iter().map(|i| i.nodes.iter().filter(|n| matches!(n, ioc_scan::indicator::Node::Item(_))).count()).sum();
    let t = Instant::now();
    let (compiled, _) = CompiledCollection::compile(&iocs);
    let compile_s = t.elapsed().as_secs_f64();
    let cost = compiled.cost();
    drop(compiled);
    let t = Instant::now();
    let (diagnostics, _) = CompiledCollection::check(&iocs);
    let check_s = t.elapsed().as_secs_f64();
    let refused = diagnostics.iter().filter(|d| d.over_budget && d.severity == Severity::Error).count();
    let v = serde_json::json!({
        "items": items,
        "parse_s": parse_s,
        "compile_s": compile_s,
        "check_s": check_s,
        "work": cost.work,
        "memory": cost.memory,
        "distributions_skipped": cost.distributions_skipped,
        "refused": refused,
        "peak_rss_mib": peak_rss_kib()? as f64 / 1024.0,
    });
    println!("{v}");
    Ok(())
}

fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM")?.parse()?)
}

fn item(out: &mut String, id: &str, search: &str, condition: &str, kind: &str, value: &str) {
    let doc = search.split('/').next().unwrap_or("FileItem");
    let _ = writeln!(
        out,
        "<IndicatorItem id=\"{id}\" condition=\"{condition}\"><Context document=\"{doc}\" search=\"{search}\" type=\"mir\"/><Content type=\"{kind}\">{value}</Content></IndicatorItem>"
    );
}

fn header(id: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<OpenIOC xmlns=\"http://openioc.org/schemas/OpenIOC_1.1\" id=\"{id}\">\
         <metadata><short_description>{id}</short_description></metadata><criteria>\n"
    )
}

const FOOTER: &str = "</criteria></OpenIOC>\n";

/// Writes the case's files into `dir`; returns their total size.
fn generate(case: &str, dir: &Path) -> anyhow::Result<usize> {
    let mut total = 0;
    let mut rng = fastrand::Rng::with_seed(14);
    for f in 0..FILES {
        let id = format!("{case}-{f}");
        let mut x = header(&id);
        let full = |x: &String| x.len() + FOOTER.len() + 600 > FILE_BYTES;
        let mut n = 0usize;
        match case {
            // AND(OR of Md5sum items, 8 x OR of 2 FileName items).
            "and-over-or" => {
                x.push_str("<Indicator operator=\"AND\" id=\"top\"><Indicator operator=\"OR\" id=\"md5s\">\n");
                let names: String = (0..8)
                    .map(|j| {
                        let mut s = format!("<Indicator operator=\"OR\" id=\"names{j}\">");
                        item(&mut s, &format!("n{j}a"), "FileItem/FileName", "is", "string", &format!("a{j}.exe"));
                        item(&mut s, &format!("n{j}b"), "FileItem/FileName", "is", "string", &format!("b{j}.exe"));
                        s + "</Indicator>\n"
                    })
                    .collect();
                while x.len() + names.len() + FOOTER.len() + 600 < FILE_BYTES {
                    item(&mut x, &format!("m{n}"), "FileItem/Md5sum", "is", "md5", &format!("{:032x}", rng.u128(..)));
                    n += 1;
                }
                x.push_str("</Indicator>\n");
                x.push_str(&names);
                x.push_str("</Indicator>\n");
            }
            // OR of many AND(FileExtension is exe, OR of 16 Md5sum items).
            "small-and-over-or" => {
                x.push_str("<Indicator operator=\"OR\" id=\"top\">\n");
                while !full(&x) {
                    let _ = write!(x, "<Indicator operator=\"AND\" id=\"a{n}\">");
                    item(&mut x, &format!("e{n}"), "FileItem/FileExtension", "is", "string", "exe");
                    let _ = write!(x, "<Indicator operator=\"OR\" id=\"o{n}\">");
                    for k in 0..16 {
                        item(
                            &mut x,
                            &format!("m{n}-{k}"),
                            "FileItem/Md5sum",
                            "is",
                            "md5",
                            &format!("{:032x}", rng.u128(..)),
                        );
                    }
                    x.push_str("</Indicator></Indicator>\n");
                    n += 1;
                }
                x.push_str("</Indicator>\n");
            }
            // AND of many OR(Md5sum, FileName).
            "many-ors-under-and" => {
                x.push_str("<Indicator operator=\"AND\" id=\"top\">\n");
                while !full(&x) {
                    let _ = write!(x, "<Indicator operator=\"OR\" id=\"o{n}\">");
                    item(&mut x, &format!("m{n}"), "FileItem/Md5sum", "is", "md5", &format!("{:032x}", rng.u128(..)));
                    item(&mut x, &format!("f{n}"), "FileItem/FileName", "is", "string", &format!("f{n}.bin"));
                    x.push_str("</Indicator>\n");
                    n += 1;
                }
                x.push_str("</Indicator>\n");
            }
            // Chains 3,000 indicators deep (AND and OR alternating), mixing
            // documents, each level with two items.
            "deep-nesting" => {
                x.push_str("<Indicator operator=\"OR\" id=\"top\">\n");
                'chains: loop {
                    let mut depth = 0;
                    while depth < 3000 {
                        if full(&x) {
                            for _ in 0..depth {
                                x.push_str("</Indicator>");
                            }
                            break 'chains;
                        }
                        let op = if depth % 2 == 0 { "AND" } else { "OR" };
                        let _ = write!(x, "<Indicator operator=\"{op}\" id=\"d{n}-{depth}\">");
                        item(
                            &mut x,
                            &format!("p{n}-{depth}"),
                            "ProcessItem/name",
                            "is",
                            "string",
                            &format!("p{depth}"),
                        );
                        item(
                            &mut x,
                            &format!("f{n}-{depth}"),
                            "FileItem/FileName",
                            "contains",
                            "string",
                            &format!("f{depth}"),
                        );
                        depth += 1;
                    }
                    for _ in 0..depth {
                        x.push_str("</Indicator>");
                    }
                    x.push('\n');
                    n += 1;
                }
                x.push_str("</Indicator>\n");
            }
            // The ordinary big IOC: one OR of digests.
            "hash-list" => {
                x.push_str("<Indicator operator=\"OR\" id=\"top\">\n");
                while !full(&x) {
                    item(
                        &mut x,
                        &format!("h{n}"),
                        "FileItem/Sha256sum",
                        "is",
                        "sha256",
                        &format!("{:032x}{:032x}", rng.u128(..), rng.u128(..)),
                    );
                    n += 1;
                }
                x.push_str("</Indicator>\n");
            }
            // Distinct regexes, each a few hundred bytes of program.
            "regex-heavy" => {
                x.push_str("<Indicator operator=\"OR\" id=\"top\">\n");
                while !full(&x) {
                    let re = format!("^[a-z]{{2,{}}}-{n}\\.(so|ko|bin)\\d{{0,4}}$", 2 + n % 7);
                    item(&mut x, &format!("r{n}"), "FileItem/FileName", "matches", "string", &re);
                    n += 1;
                }
                x.push_str("</Indicator>\n");
            }
            // Distinct `contains` literals (substring automaton).
            "contains-heavy" => {
                x.push_str("<Indicator operator=\"OR\" id=\"top\">\n");
                while !full(&x) {
                    let lit: String = (0..48).map(|_| rng.alphanumeric()).collect();
                    item(&mut x, &format!("c{n}"), "FileItem/FullPath", "contains", "string", &lit);
                    n += 1;
                }
                x.push_str("</Indicator>\n");
            }
            _ => bail!("unknown case {case}"),
        }
        x.push_str(FOOTER);
        total += x.len();
        std::fs::write(dir.join(format!("{id}.ioc")), &x)?;
    }
    Ok(total)
}
