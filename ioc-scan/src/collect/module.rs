//! ModuleItem: loaded kernel modules and the shared objects processes map.
//!
//! Kernel modules: /proc/modules, completed from /sys/module/NAME
//! (srcversion, version, parameters, holders, taint) and from the module's
//! file found through /lib/modules/RELEASE/modules.dep (its `.modinfo`
//! section: license, vermagic, aliases, intree, retpoline; its appended
//! signature: signer, key, hash algorithm, signature; compressed
//! `.ko.xz`/`.ko.zst` files are not opened). A module present in /sys/module
//! but missing from /proc/modules (a classic rootkit hiding trick) is
//! reported with status `hidden`.
//!
//! Shared objects: every file mapped executable by a process
//! (/proc/PID/maps), one observation per distinct file, status `mapped`.
//!
//! File digests are computed only when an IOC asks ([`Field::Pending`]).

use super::host::{
    field, object_ref, parse_lines, read_bounded, read_text, CollectContext, CollectStats, DigestKinds, Digests, HostCollector, HostRoot, Sink,
    CONFIG_LIMIT,
};
use super::process::{pids, ProcDir};
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// One module: a kernel module or a mapped shared object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    pub name: String,
    /// The file on the host (absolute, as the host sees it).
    pub filename: Option<String>,
    /// Load (or lowest mapping) address, `0x...`.
    pub address: Option<String>,
    pub size: Option<u64>,
    /// Kernel: `Live`, `Loading`, `Unloading`, `hidden`; shared object: `mapped`.
    pub status: String,
    pub used_by: Vec<String>,
    pub depends: Vec<String>,
    pub parameters: Vec<String>,
    pub aliases: Vec<String>,
    pub src_version: Option<String>,
    pub vermagic: Option<String>,
    pub license: Option<String>,
    pub intree: Option<bool>,
    pub retpoline: Option<bool>,
    /// Whether a signature is appended to the module file.
    pub signed: Option<bool>,
    /// What the appended signature says ([`super::module_sig`]).
    pub signature: Option<super::module_sig::ModuleSignature>,
    pub digests: Option<Digests>,
    /// `kernel` or `shared_object`.
    pub kind: &'static str,
    /// Processes mapping a shared object (first few).
    pub pids: Vec<u32>,
}

/// One line of /proc/modules: `name size refcount users state address [taint]`.
pub fn parse_modules_line(line: &str) -> Option<ModuleInfo> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() < 6 {
        return None;
    }
    Some(ModuleInfo {
        name: f[0].to_string(),
        size: Some(f[1].parse().ok()?),
        used_by: f[3].split(',').filter(|u| !u.is_empty() && *u != "-").map(str::to_string).collect(),
        status: f[4].to_string(),
        address: Some(f[5].to_string()),
        kind: "kernel",
        ..Default::default()
    })
}

/// Module name of a file path in modules.dep (`kernel/x/a-b.ko.xz` → `a_b`).
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// modules.dep: module name → (relative file, dependency names).
pub fn parse_modules_dep(text: &str) -> HashMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let (file, deps) = l.split_once(':')?;
            Some((
                module_name(file),
                (file.to_string(), deps.split_ascii_whitespace().map(module_name).collect()),
            ))
        })
        .collect()
}

/// The `.modinfo` section of a module file: `key=value` strings.
pub fn modinfo(elf: &[u8]) -> Option<Vec<(String, String)>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).ok()?;
    let section = file.section_by_name(".modinfo")?;
    let data = section.data().ok()?;
    Some(
        data.split(|&b| b == 0)
            .filter_map(|kv| {
                let s = std::str::from_utf8(kv).ok()?;
                let (k, v) = s.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

const SIG_MAGIC: &[u8] = b"~Module signature appended~\n";

/// The ModuleItem observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleObservation(pub ModuleInfo);

pub const TERMS: &[TermId] = &[
    ids::ModuleItem_Address,
    ids::ModuleItem_AliasList_Alias_Name,
    ids::ModuleItem_DependsList_Depends_Module,
    ids::ModuleItem_Filename,
    ids::ModuleItem_Intree,
    ids::ModuleItem_License,
    ids::ModuleItem_Md5sum,
    ids::ModuleItem_Module,
    ids::ModuleItem_ParmList_Parm_Name,
    ids::ModuleItem_Retpoline,
    ids::ModuleItem_Sha1sum,
    ids::ModuleItem_Sha256sum,
    ids::ModuleItem_Size,
    ids::ModuleItem_SrcVersion,
    ids::ModuleItem_Status,
    ids::ModuleItem_UsedByList_Module,
    ids::ModuleItem_Vermagic,
    ids::ModuleItem_ModuleName,
    ids::ModuleItem_ModulePath,
    ids::ModuleItem_ModuleAddress,
    ids::ModuleItem_ModuleSize,
    ids::ModuleItem_Signer,
    ids::ModuleItem_SigKey,
    ids::ModuleItem_SigHashAlgorithm,
    ids::ModuleItem_Signat,
];

fn list(items: &[String]) -> Field<'_> {
    Field::Values(items.iter().map(|s| Value::Str(Cow::Borrowed(s.as_str()))).collect())
}

impl ModuleObservation {
    fn digest_field(&self, pick: impl Fn(&Digests) -> Option<&[u8]>) -> Field<'_> {
        if self.0.filename.is_none() {
            return Field::Absent;
        }
        match &self.0.digests {
            None => Field::Pending,
            Some(d) => pick(d).map_or(Field::Absent, |b| Field::One(Value::Digest(Cow::Borrowed(b)))),
        }
    }
}

impl Observation for ModuleObservation {
    fn document(&self) -> &'static str {
        "ModuleItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        let m = &self.0;
        match term {
            ids::ModuleItem_Address | ids::ModuleItem_ModuleAddress => field::opt_str(m.address.as_deref()),
            ids::ModuleItem_AliasList_Alias_Name => list(&m.aliases),
            ids::ModuleItem_DependsList_Depends_Module => list(&m.depends),
            ids::ModuleItem_Filename | ids::ModuleItem_ModulePath => field::opt_str(m.filename.as_deref()),
            ids::ModuleItem_Intree => m.intree.map_or(Field::Absent, field::bool),
            ids::ModuleItem_License => field::opt_str(m.license.as_deref()),
            ids::ModuleItem_Module | ids::ModuleItem_ModuleName => field::str(&m.name),
            ids::ModuleItem_ParmList_Parm_Name => list(&m.parameters),
            ids::ModuleItem_Retpoline => m.retpoline.map_or(Field::Absent, field::bool),
            ids::ModuleItem_Size | ids::ModuleItem_ModuleSize => field::opt_uint(m.size),
            ids::ModuleItem_SrcVersion => field::opt_str(m.src_version.as_deref()),
            ids::ModuleItem_Status => field::str(&m.status),
            ids::ModuleItem_UsedByList_Module => list(&m.used_by),
            ids::ModuleItem_Vermagic => field::opt_str(m.vermagic.as_deref()),
            ids::ModuleItem_Signer => field::opt_str(m.signature.as_ref().and_then(|s| s.signer.as_deref())),
            ids::ModuleItem_SigKey => field::opt_str(m.signature.as_ref().map(|s| s.key.as_str())),
            ids::ModuleItem_SigHashAlgorithm => field::opt_str(m.signature.as_ref().map(|s| s.hash_algorithm.as_str())),
            ids::ModuleItem_Signat => field::opt_str(m.signature.as_ref().map(|s| s.signature.as_str())),
            ids::ModuleItem_Md5sum => self.digest_field(|d| d.md5.as_ref().map(|b| &b[..])),
            ids::ModuleItem_Sha1sum => self.digest_field(|d| d.sha1.as_ref().map(|b| &b[..])),
            ids::ModuleItem_Sha256sum => self.digest_field(|d| d.sha256.as_ref().map(|b| &b[..])),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let m = &self.0;
        object_ref(
            "module",
            [
                ("name", m.name.clone().into()),
                ("module_kind", m.kind.into()),
                ("path", m.filename.clone().into()),
                ("status", m.status.clone().into()),
                (
                    "pids",
                    if m.pids.is_empty() {
                        serde_json::Value::Null
                    } else {
                        m.pids.clone().into()
                    },
                ),
            ],
        )
    }
}

fn complete_digests(root: &HostRoot, obs: &mut ModuleObservation, terms: &[TermId]) {
    let kinds = DigestKinds {
        md5: terms.contains(&ids::ModuleItem_Md5sum),
        sha1: terms.contains(&ids::ModuleItem_Sha1sum),
        sha256: terms.contains(&ids::ModuleItem_Sha256sum),
    };
    let Some(file) = obs.0.filename.as_ref() else { return };
    let d = super::safe_read::open_system(&root.path(file))
        .and_then(|f| f.digest(kinds, super::safe_read::PROGRAM_LIMIT))
        .unwrap_or_default();
    obs.0.digests = Some(d);
}

fn sys_list(dir: PathBuf) -> Vec<String> {
    super::safe_read::system_dir_names(&dir)
}

/// Loaded kernel modules under `root`.
pub fn kernel_modules(root: &HostRoot, stats: &mut CollectStats) -> Vec<ModuleInfo> {
    let mut modules: BTreeMap<String, ModuleInfo> = BTreeMap::new();
    let proc_modules = root.proc_path("modules");
    if proc_modules.exists() {
        for m in parse_lines(&proc_modules, CONFIG_LIMIT, 0, parse_modules_line, "not a modules line", stats) {
            modules.insert(m.name.clone(), m);
        }
    }
    // Loadable modules (they have an initstate) that /proc/modules does not list.
    let sys = root.path("/sys/module");
    for name in sys_list(sys.clone()) {
        let dir = sys.join(&name);
        let Ok(state) = read_text(&dir.join("initstate")) else { continue };
        modules.entry(name.clone()).or_insert_with(|| ModuleInfo {
            name: name.clone(),
            status: if proc_modules.exists() {
                "hidden".into()
            } else {
                state.trim().to_string()
            },
            size: read_text(&dir.join("coresize")).ok().and_then(|s| s.trim().parse().ok()),
            kind: "kernel",
            ..Default::default()
        });
    }
    let release = read_text(&root.proc_path("sys/kernel/osrelease"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let moddir = root.path(format!("/lib/modules/{release}"));
    let deps = read_text(&moddir.join("modules.dep"))
        .map(|t| parse_modules_dep(&t))
        .unwrap_or_default();
    for m in modules.values_mut() {
        let dir = sys.join(&m.name);
        m.src_version = read_text(&dir.join("srcversion")).ok().map(|s| s.trim().to_string());
        m.parameters = sys_list(dir.join("parameters"));
        for holder in sys_list(dir.join("holders")) {
            if !m.used_by.contains(&holder) {
                m.used_by.push(holder);
            }
        }
        if let Ok(taint) = read_text(&dir.join("taint")) {
            m.intree = Some(!taint.contains('O'));
        }
        let Some((file, depends)) = deps.get(&m.name) else { continue };
        m.depends = depends.clone();
        let abs = format!("/lib/modules/{release}/{file}");
        if file.ends_with(".ko") {
            match read_bounded(&root.path(&abs), 256 << 20) {
                Ok(bytes) => {
                    m.signed = Some(bytes.ends_with(SIG_MAGIC));
                    match super::module_sig::parse(&bytes) {
                        Ok(sig) => m.signature = sig,
                        Err(e) => stats.error(super::host::CollectError::Other {
                            what: format!("{abs}: module signature"),
                            reason: e.to_string(),
                        }),
                    }
                    for (k, v) in modinfo(&bytes).unwrap_or_default() {
                        match k.as_str() {
                            "license" => m.license = Some(v),
                            "vermagic" => m.vermagic = Some(v),
                            "alias" => m.aliases.push(v),
                            "intree" => m.intree = Some(v == "Y"),
                            "retpoline" => m.retpoline = Some(v == "Y"),
                            "srcversion" => {
                                m.src_version.get_or_insert(v);
                            }
                            _ => {}
                        }
                    }
                    if m.retpoline.is_none() && m.vermagic.is_some() {
                        m.retpoline = Some(false);
                    }
                }
                Err(e) => stats.error(e),
            }
        }
        m.filename = Some(abs);
    }
    modules.into_values().collect()
}

/// One line of /proc/PID/maps, if it maps a file executable:
/// (start, end, path).
pub fn parse_maps_line(line: &str) -> Option<(u64, u64, &str)> {
    let mut f = line.splitn(6, |c: char| c.is_ascii_whitespace());
    let range = f.next()?;
    let perms = f.next()?;
    let _offset = f.next()?;
    let _dev = f.next()?;
    let _inode = f.next()?;
    let path = f.next()?.trim_start();
    if !perms.contains('x') || !path.starts_with('/') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?, path))
}

/// Most pids listed for one shared object.
const MAX_PIDS: usize = 16;

/// Shared objects mapped executable by processes, one per file.
pub fn shared_objects(root: &HostRoot, stats: &mut CollectStats) -> Vec<ModuleInfo> {
    let mut objects: BTreeMap<String, ModuleInfo> = BTreeMap::new();
    for pid in pids(root, stats) {
        let Ok(dir) = ProcDir::open(root, pid) else { continue };
        let exe = dir.exe().map(|(p, _)| p);
        let Ok(maps) = dir.read("maps", 64 << 20) else { continue };
        let maps = String::from_utf8_lossy(&maps);
        let mut seen_here: Vec<&str> = Vec::new();
        for line in maps.lines() {
            let Some((start, end, path)) = parse_maps_line(line) else {
                continue;
            };
            if exe.as_deref() == Some(path) || seen_here.contains(&path) {
                continue;
            }
            seen_here.push(path);
            let clean = path.strip_suffix(" (deleted)").unwrap_or(path);
            let m = objects.entry(clean.to_string()).or_insert_with(|| ModuleInfo {
                name: clean.rsplit('/').next().unwrap_or(clean).to_string(),
                filename: Some(clean.to_string()),
                address: Some(format!("0x{start:x}")),
                size: Some(end.saturating_sub(start)),
                status: if path.ends_with(" (deleted)") {
                    "mapped (deleted)".into()
                } else {
                    "mapped".into()
                },
                kind: "shared_object",
                ..Default::default()
            });
            if m.pids.len() < MAX_PIDS {
                m.pids.push(pid);
            }
        }
    }
    objects.into_values().collect()
}

/// The ModuleItem collector.
pub struct ModuleCollector;

impl HostCollector for ModuleCollector {
    fn document(&self) -> &'static str {
        "ModuleItem"
    }

    fn collect(&self, cx: &CollectContext, sink: &mut Sink<'_>) -> CollectStats {
        let mut stats = CollectStats::new("ModuleItem");
        let mut all = kernel_modules(&cx.root, &mut stats);
        all.extend(shared_objects(&cx.root, &mut stats));
        for m in all {
            stats.emit(sink, &mut ModuleObservation(m), |obs, terms| complete_digests(&cx.root, obs, terms));
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_modules() {
        let m = parse_modules_line("nf_nat 49152 2 xt_MASQUERADE,nft_chain_nat, Live 0xffffffffc0a1b000").unwrap();
        assert_eq!(m.name, "nf_nat");
        assert_eq!(m.size, Some(49152));
        assert_eq!(m.used_by, ["xt_MASQUERADE", "nft_chain_nat"]);
        assert_eq!(m.status, "Live");
        assert_eq!(parse_modules_line("x 1 0 - Live").map(|m| m.name), None);
        assert!(parse_modules_line("x 1 0 - Live 0x0 (OE)").unwrap().used_by.is_empty());
    }

    #[test]
    fn parses_modules_dep_and_maps() {
        let d = parse_modules_dep("kernel/net/a-b.ko.xz: kernel/net/c.ko kernel/d-e.ko\nkernel/c.ko:\n");
        assert_eq!(
            d["a_b"],
            ("kernel/net/a-b.ko.xz".to_string(), vec!["c".to_string(), "d_e".to_string()])
        );
        assert!(d["c"].1.is_empty());
        assert_eq!(
            parse_maps_line("7f00a000-7f00b000 r-xp 00001000 fe:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6"),
            Some((0x7f00a000, 0x7f00b000, "/usr/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(
            parse_maps_line("7f00a000-7f00b000 r--p 00001000 fe:01 1234 /usr/lib/libc.so.6"),
            None
        );
        assert_eq!(parse_maps_line("7f00a000-7f00b000 r-xp 00000000 00:00 0 [vdso]"), None);
        assert_eq!(parse_maps_line("zz-7f00b000 r-xp 0 0 0 /x"), None);
    }

    #[test]
    fn modinfo_of_an_elf_without_the_section_is_none() {
        let me = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(modinfo(&me), None);
        assert_eq!(modinfo(b"not elf"), None);
    }
}
