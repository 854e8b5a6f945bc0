//! Network isolation: cut a cgroup (by default the cgroup v2 root: every
//! process of the device) off the network for a set time, except loopback,
//! an allow list (the console, named DNS servers) and DHCP.
//!
//! The kernel side is `ioc-scan-ebpf/src/isolate.rs` (cgroup skb ingress and
//! egress programs). Its maps and its two links are pinned in bpffs under
//! `/sys/fs/bpf/ioc-scan/NAME/` (NAME `isolation`; bpffs is mounted there if
//! it is not), so isolation outlives the process that turned it on: the
//! links stay attached until their pins are removed. A description (cgroup,
//! allow list, times) is kept in `/run/ioc-scan/NAME.json`; both vanish at
//! reboot, and so does isolation.
//!
//! Expiry is enforced by the programs themselves (they compare
//! `CLOCK_BOOTTIME` with the expiry in their state map), so traffic flows
//! again at expiry even if no ioc-scan runs; the pins are removed by the
//! next ioc-scan command that checks ([`lift_if_expired`]), by `isolation
//! status`, or by `isolation off`.

use super::fsx::boottime_ns;
use super::target::Target;
use super::{Action, ActionRecord, Outcome};
use crate::collect::ebpf::loader::{cgroup2_root, error_chain as chain, is_permission};
use crate::collect::ebpf::object;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, Map, MapData};
use aya::programs::links::FdLink;
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType};
use aya::EbpfLoader;
use ioc_scan_common as k;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where bpffs is (mounted there if it is not).
pub const BPFFS: &str = "/sys/fs/bpf";
/// The default isolation name (pins under /sys/fs/bpf/ioc-scan/isolation).
pub const DEFAULT_NAME: &str = "isolation";
/// Longest isolation accepted: 30 days.
pub const MAX_SECONDS: u64 = 30 * 24 * 3600;

const PIN_STATE: &str = "state";
const PIN_ALLOW_V4: &str = "allow_v4";
const PIN_ALLOW_V6: &str = "allow_v6";
const PIN_EGRESS: &str = "egress_link";
const PIN_INGRESS: &str = "ingress_link";

/// How to isolate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Peers always reachable (the console, DNS servers).
    pub allow: Vec<IpNet>,
    /// The cgroup v2 directory to isolate; None: the cgroup v2 root (the
    /// whole device).
    pub cgroup: Option<PathBuf>,
    /// Names the pins and the state file, so that separate isolations
    /// (tests) do not meet.
    pub name: String,
    /// Let DHCP through (the device keeps its address).
    pub dhcp: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow: Vec::new(),
            cgroup: None,
            name: DEFAULT_NAME.into(),
            dhcp: true,
        }
    }
}

impl Options {
    /// The defaults with `IOC_SCAN_ISOLATION_ALLOW` (CIDRs or addresses,
    /// separated by commas or spaces), `IOC_SCAN_ISOLATION_CGROUP` and
    /// `IOC_SCAN_ISOLATION_NAME`. Unparsable entries are skipped with a
    /// warning.
    pub fn from_env() -> Options {
        let mut o = Options::default();
        if let Ok(list) = std::env::var("IOC_SCAN_ISOLATION_ALLOW") {
            for item in list.split([',', ' ']).filter(|s| !s.is_empty()) {
                match parse_net(item) {
                    Some(net) => o.allow.push(net),
                    None => tracing::warn!("IOC_SCAN_ISOLATION_ALLOW: {item:?} is not an address or CIDR; ignored"),
                }
            }
        }
        if let Some(cg) = std::env::var_os("IOC_SCAN_ISOLATION_CGROUP").filter(|v| !v.is_empty()) {
            o.cgroup = Some(PathBuf::from(cg));
        }
        if let Ok(name) = std::env::var("IOC_SCAN_ISOLATION_NAME") {
            if valid_name(&name) {
                o.name = name;
            } else {
                tracing::warn!("IOC_SCAN_ISOLATION_NAME: {name:?} is not [a-z0-9_-]{{1,64}}; using {DEFAULT_NAME}");
            }
        }
        o
    }

    fn pins(&self) -> PathBuf {
        Path::new(BPFFS).join("ioc-scan").join(&self.name)
    }

    fn state_file(&self) -> PathBuf {
        Path::new("/run/ioc-scan").join(format!("{}.json", self.name))
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// An address (a /32 or /128) or a CIDR.
pub fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

/// What `/run/ioc-scan/NAME.json` says of an isolation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationState {
    pub name: String,
    /// The isolated cgroup (the cgroup v2 root: the whole device).
    pub cgroup: String,
    pub allow: Vec<String>,
    pub dhcp: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub expires_at: String,
    /// Seconds since the epoch.
    pub expires_unix: i64,
}

/// Whether isolation is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Status {
    Off,
    Active {
        #[serde(flatten)]
        state: IsolationState,
        remaining_seconds: u64,
    },
    /// Past its expiry: the programs let everything through; the pins are
    /// still there (they are removed by whoever reports this).
    Expired {
        #[serde(flatten)]
        state: IsolationState,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("built without eBPF programs: run `cargo xtask setup`, then build again")]
    NotBuilt,
    #[error("BPF is not available to this process (run as root, with BPF enabled): {0}")]
    Unavailable(String),
    #[error("bpffs at {BPFFS}: {0}")]
    Bpffs(String),
    #[error("cgroup {path}: {reason}")]
    Cgroup { path: String, reason: String },
    #[error("eBPF {what}: {reason}")]
    Kernel { what: String, reason: String },
    #[error("isolation is already on for cgroup {current}; turn it off first to isolate {asked}")]
    OtherCgroup { current: String, asked: String },
    #[error("duration {0} s: must be 1 s to {MAX_SECONDS} s")]
    Duration(u64),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
}

fn kernel(what: impl Into<String>) -> impl FnOnce(String) -> IsolationError {
    let what = what.into();
    move |reason| IsolationError::Kernel { what, reason }
}

/// Mount bpffs at /sys/fs/bpf unless a bpffs is there.
fn ensure_bpffs() -> Result<(), IsolationError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|e| IsolationError::Bpffs(e.to_string()))?;
    let mounted = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&BPFFS) && f.get(2) == Some(&"bpf")
    });
    if !mounted {
        nix::mount::mount(
            Some("bpf"),
            BPFFS,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            Some("mode=0700"),
        )
        .map_err(|e| IsolationError::Bpffs(format!("mounting: {e}")))?;
    }
    Ok(())
}

fn cgroup_path(opts: &Options) -> Result<PathBuf, IsolationError> {
    let path = match &opts.cgroup {
        Some(p) => p.clone(),
        None => cgroup2_root().map_err(|e| IsolationError::Cgroup {
            path: "(cgroup v2 root)".into(),
            reason: e.to_string(),
        })?,
    };
    let canon = path.canonicalize().map_err(|e| IsolationError::Cgroup {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if !canon.join("cgroup.procs").exists() {
        return Err(IsolationError::Cgroup {
            path: canon.display().to_string(),
            reason: "not a cgroup v2 directory".into(),
        });
    }
    Ok(canon)
}

fn now_rfc3339(offset_secs: i64) -> (String, i64) {
    let t = chrono::Utc::now() + chrono::Duration::seconds(offset_secs);
    (t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), t.timestamp())
}

fn read_state_file(opts: &Options) -> Option<IsolationState> {
    let bytes = std::fs::read(opts.state_file()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_state_file(opts: &Options, state: &IsolationState) -> Result<(), IsolationError> {
    let path = opts.state_file();
    let err = |reason: String| IsolationError::State {
        path: path.display().to_string(),
        reason,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(e.to_string()))?;
    }
    let tmp = path.with_extension("json.part");
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| err(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err(e.to_string()))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))
}

/// Both links are pinned: isolation is in place (maybe expired).
fn pinned(opts: &Options) -> bool {
    let pins = opts.pins();
    pins.join(PIN_EGRESS).exists() && pins.join(PIN_INGRESS).exists()
}

/// Remove every pin (links first: that detaches the programs) and the state file.
fn remove_pins(opts: &Options) -> Result<(), IsolationError> {
    let pins = opts.pins();
    for name in [PIN_EGRESS, PIN_INGRESS, PIN_STATE, PIN_ALLOW_V4, PIN_ALLOW_V6] {
        match std::fs::remove_file(pins.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(IsolationError::Bpffs(format!(
                    "removing {}: {e}",
                    pins.join(name).display()
                )))
            }
        }
    }
    let _ = std::fs::remove_dir(&pins);
    let _ = std::fs::remove_file(opts.state_file());
    Ok(())
}

fn open_pinned(opts: &Options, name: &str) -> Result<Map, IsolationError> {
    let path = opts.pins().join(name);
    let data = MapData::from_pin(&path).map_err(|e| kernel(format!("map {}", path.display()))(chain(&e)))?;
    Map::from_map_data(data).map_err(|e| kernel(format!("map {}", path.display()))(chain(&e)))
}

fn read_kernel_state(opts: &Options) -> Result<k::IsolateState, IsolationError> {
    let map = open_pinned(opts, PIN_STATE)?;
    let array: Array<MapData, k::IsolateState> =
        Array::try_from(map).map_err(|e| kernel(k::MAP_ISOLATE_STATE)(chain(&e)))?;
    array.get(&0, 0).map_err(|e| kernel(k::MAP_ISOLATE_STATE)(chain(&e)))
}

fn write_kernel_state(map: Map, state: k::IsolateState) -> Result<(), IsolationError> {
    let mut array: Array<MapData, k::IsolateState> =
        Array::try_from(map).map_err(|e| kernel(k::MAP_ISOLATE_STATE)(chain(&e)))?;
    array
        .set(0, state, 0)
        .map_err(|e| kernel(k::MAP_ISOLATE_STATE)(chain(&e)))
}

/// Add the allow list to the two tries.
fn fill_allow(v4_map: Map, v6_map: Map, allow: &[IpNet]) -> Result<(), IsolationError> {
    let mut v4: LpmTrie<MapData, [u8; 4], u8> =
        LpmTrie::try_from(v4_map).map_err(|e| kernel(k::MAP_ISOLATE_ALLOW_V4)(chain(&e)))?;
    let mut v6: LpmTrie<MapData, [u8; 16], u8> =
        LpmTrie::try_from(v6_map).map_err(|e| kernel(k::MAP_ISOLATE_ALLOW_V6)(chain(&e)))?;
    for net in allow {
        match net {
            IpNet::V4(n) => v4
                .insert(&Key::new(u32::from(n.prefix_len()), n.network().octets()), 1, 0)
                .map_err(|e| kernel(k::MAP_ISOLATE_ALLOW_V4)(chain(&e)))?,
            IpNet::V6(n) => v6
                .insert(&Key::new(u32::from(n.prefix_len()), n.network().octets()), 1, 0)
                .map_err(|e| kernel(k::MAP_ISOLATE_ALLOW_V6)(chain(&e)))?,
        }
    }
    Ok(())
}

/// How `on` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnResult {
    pub state: IsolationState,
    /// It was on already (for the same cgroup): expiry extended (never
    /// shortened), allow list added to.
    pub already: bool,
}

/// Isolate for `seconds` (see the module docs). Idempotent: when already
/// on for the same cgroup, the expiry becomes the later of the two and the
/// allow lists are merged.
pub fn on(seconds: u64, opts: &Options) -> Result<OnResult, IsolationError> {
    if seconds == 0 || seconds > MAX_SECONDS {
        return Err(IsolationError::Duration(seconds));
    }
    let data = object::object().ok_or(IsolationError::NotBuilt)?;
    let _ = lift_if_expired(opts);
    let cgroup = cgroup_path(opts)?;
    let cgroup_shown = cgroup.display().to_string();
    let flags = k::ISOLATE_ON | if opts.dhcp { k::ISOLATE_ALLOW_DHCP } else { 0 };
    let now_boot = boottime_ns();
    let want_expiry = now_boot.saturating_add(seconds.saturating_mul(1_000_000_000));

    if pinned(opts) {
        let current = read_state_file(opts);
        if let Some(cur) = &current {
            if cur.cgroup != cgroup_shown {
                return Err(IsolationError::OtherCgroup {
                    current: cur.cgroup.clone(),
                    asked: cgroup_shown,
                });
            }
        }
        let old = read_kernel_state(opts)?;
        let expiry = old.expires_boot_ns.max(want_expiry);
        fill_allow(
            open_pinned(opts, PIN_ALLOW_V4)?,
            open_pinned(opts, PIN_ALLOW_V6)?,
            &opts.allow,
        )?;
        write_kernel_state(
            open_pinned(opts, PIN_STATE)?,
            k::IsolateState {
                expires_boot_ns: expiry,
                flags: flags | (old.flags & k::ISOLATE_ALLOW_DHCP),
                _pad: 0,
            },
        )?;
        let mut allow: Vec<String> = current.as_ref().map(|c| c.allow.clone()).unwrap_or_default();
        for n in &opts.allow {
            if !allow.contains(&n.to_string()) {
                allow.push(n.to_string());
            }
        }
        let (expires_at, expires_unix) = now_rfc3339(((expiry - now_boot) / 1_000_000_000) as i64);
        let state = IsolationState {
            name: opts.name.clone(),
            cgroup: cgroup_shown,
            allow,
            dhcp: current.as_ref().map_or(opts.dhcp, |c| c.dhcp || opts.dhcp),
            started_at: current.map(|c| c.started_at).unwrap_or_else(|| now_rfc3339(0).0),
            expires_at,
            expires_unix,
        };
        write_state_file(opts, &state)?;
        return Ok(OnResult { state, already: true });
    }

    // Leftovers of an interrupted `on` (maps without links) go first.
    remove_pins(opts)?;
    ensure_bpffs()?;
    let pins = opts.pins();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&pins)
        .map_err(|e| IsolationError::Bpffs(format!("creating {}: {e}", pins.display())))?;
    let result = attach_fresh(
        data,
        &cgroup,
        opts,
        k::IsolateState {
            expires_boot_ns: want_expiry,
            flags,
            _pad: 0,
        },
    );
    if let Err(e) = result {
        let _ = remove_pins(opts);
        return Err(e);
    }
    let (started_at, _) = now_rfc3339(0);
    let (expires_at, expires_unix) = now_rfc3339(seconds as i64);
    let state = IsolationState {
        name: opts.name.clone(),
        cgroup: cgroup_shown,
        allow: opts.allow.iter().map(|n| n.to_string()).collect(),
        dhcp: opts.dhcp,
        started_at,
        expires_at,
        expires_unix,
    };
    write_state_file(opts, &state)?;
    Ok(OnResult { state, already: false })
}

/// Load the programs, fill and pin the maps, attach, pin the links. The
/// maps are filled before anything is attached: the allow list is in place
/// from the first dropped packet on.
fn attach_fresh(data: &[u8], cgroup: &Path, opts: &Options, state: k::IsolateState) -> Result<(), IsolationError> {
    let pins = opts.pins();
    // The object holds the sensors' maps too; their ring buffer is made
    // as small as it can be, since nothing here reads it.
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(k::MAP_EVENTS, 4096)
        .load(data)
        .map_err(|e| {
            if is_permission(&e) {
                IsolationError::Unavailable(chain(&e))
            } else {
                IsolationError::Kernel {
                    what: "object".into(),
                    reason: chain(&e),
                }
            }
        })?;
    for (name, pin) in [
        (k::MAP_ISOLATE_STATE, PIN_STATE),
        (k::MAP_ISOLATE_ALLOW_V4, PIN_ALLOW_V4),
        (k::MAP_ISOLATE_ALLOW_V6, PIN_ALLOW_V6),
    ] {
        let map = ebpf
            .map(name)
            .ok_or_else(|| kernel(format!("map {name}"))("not in the object".into()))?;
        map.pin(pins.join(pin))
            .map_err(|e| kernel(format!("pinning map {name}"))(chain(&e)))?;
    }
    fill_allow(
        open_pinned(opts, PIN_ALLOW_V4)?,
        open_pinned(opts, PIN_ALLOW_V6)?,
        &opts.allow,
    )?;
    write_kernel_state(open_pinned(opts, PIN_STATE)?, state)?;
    let cg = File::open(cgroup).map_err(|e| IsolationError::Cgroup {
        path: cgroup.display().to_string(),
        reason: e.to_string(),
    })?;
    for (program, attach_type, pin) in [
        (k::PROG_ISOLATE_EGRESS, CgroupSkbAttachType::Egress, PIN_EGRESS),
        (k::PROG_ISOLATE_INGRESS, CgroupSkbAttachType::Ingress, PIN_INGRESS),
    ] {
        let err = kernel(format!("program {program}"));
        let prog: &mut CgroupSkb = match ebpf.program_mut(program).map(|p| p.try_into()) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(err(chain(&e))),
            None => return Err(err("not in the object".into())),
        };
        let err = || kernel(format!("program {program}"));
        prog.load().map_err(|e| {
            if is_permission(&e) {
                IsolationError::Unavailable(chain(&e))
            } else {
                err()(chain(&e))
            }
        })?;
        // A link (bpf_link_create) is always a multi-program attachment:
        // isolation runs alongside the monitor's programs, never replacing them.
        let id = prog
            .attach(&cg, attach_type, CgroupAttachMode::Single)
            .map_err(|e| err()(chain(&e)))?;
        let link = prog.take_link(id).map_err(|e| err()(chain(&e)))?;
        let fd_link: FdLink = link
            .try_into()
            .map_err(|e: aya::programs::links::LinkError| err()(chain(&e)))?;
        fd_link.pin(pins.join(pin)).map_err(|e| err()(chain(&e)))?;
    }
    Ok(())
}

/// Adds `nets` to the allow list of the isolation in place, if one is on
/// (the managed agent keeps its console reachable this way when the
/// console's address changes). Returns the nets that were not allowed yet;
/// nothing when no isolation is on. Never turns isolation on, never
/// changes its expiry.
pub fn allow_more(opts: &Options, nets: &[IpNet]) -> Result<Vec<IpNet>, IsolationError> {
    if !pinned(opts) || !matches!(status(opts)?, Status::Active { .. }) {
        return Ok(Vec::new());
    }
    let mut state = read_state_file(opts);
    let known: Vec<String> = state.as_ref().map(|s| s.allow.clone()).unwrap_or_default();
    let new: Vec<IpNet> = nets.iter().copied().filter(|n| !known.contains(&n.to_string())).collect();
    if new.is_empty() {
        return Ok(new);
    }
    fill_allow(open_pinned(opts, PIN_ALLOW_V4)?, open_pinned(opts, PIN_ALLOW_V6)?, &new)?;
    if let Some(state) = state.as_mut() {
        state.allow.extend(new.iter().map(|n| n.to_string()));
        write_state_file(opts, state)?;
    }
    Ok(new)
}

/// Lift isolation now. Returns what was on, if anything.
pub fn off(opts: &Options) -> Result<Option<IsolationState>, IsolationError> {
    let was = pinned(opts);
    let state = read_state_file(opts);
    remove_pins(opts)?;
    Ok(if was {
        Some(state.unwrap_or_else(|| unknown_state(opts)))
    } else {
        None
    })
}

fn unknown_state(opts: &Options) -> IsolationState {
    IsolationState {
        name: opts.name.clone(),
        cgroup: "(unknown)".into(),
        allow: Vec::new(),
        dhcp: false,
        started_at: String::new(),
        expires_at: String::new(),
        expires_unix: 0,
    }
}

/// Whether isolation is on, from the pinned state map (the truth the
/// programs act on) and the state file (the description).
pub fn status(opts: &Options) -> Result<Status, IsolationError> {
    if !pinned(opts) {
        // Stray leftovers of an interrupted `on` / `off`.
        if opts.state_file().exists() || opts.pins().exists() {
            let _ = remove_pins(opts);
        }
        return Ok(Status::Off);
    }
    let ks = read_kernel_state(opts)?;
    let mut state = read_state_file(opts).unwrap_or_else(|| unknown_state(opts));
    let now = boottime_ns();
    if ks.flags & k::ISOLATE_ON == 0 || now >= ks.expires_boot_ns {
        return Ok(Status::Expired { state });
    }
    let remaining = (ks.expires_boot_ns - now).div_ceil(1_000_000_000);
    if state.expires_unix == 0 {
        let (at, unix) = now_rfc3339(remaining as i64);
        state.expires_at = at;
        state.expires_unix = unix;
    }
    Ok(Status::Active {
        state,
        remaining_seconds: remaining,
    })
}

/// Remove an expired isolation's pins. Cheap when there is none (one stat).
/// Returns the isolation lifted, if one was.
pub fn lift_if_expired(opts: &Options) -> Result<Option<IsolationState>, IsolationError> {
    if !opts.pins().exists() && !opts.state_file().exists() {
        return Ok(None);
    }
    match status(opts)? {
        Status::Expired { state } => {
            remove_pins(opts)?;
            Ok(Some(state))
        }
        _ => Ok(None),
    }
}

/// The isolate action of a run.
pub fn respond(seconds: u64, opts: &Options) -> ActionRecord {
    let cgroup = match cgroup_path(opts) {
        Ok(p) => p.display().to_string(),
        Err(_) => opts
            .cgroup
            .as_ref()
            .map_or_else(|| "(cgroup v2 root)".to_string(), |p| p.display().to_string()),
    };
    let target = Target::Network { cgroup };
    match on(seconds, opts) {
        Ok(r) => ActionRecord::new(
            Action::Isolate { seconds },
            target,
            Outcome::Done,
            serde_json::json!({
                "expires_at": r.state.expires_at,
                "allow": r.state.allow,
                "dhcp": r.state.dhcp,
                "already_isolated": r.already,
                "pins": opts.pins().display().to_string(),
            }),
        ),
        Err(e) => ActionRecord::new(
            Action::Isolate { seconds },
            target,
            Outcome::Failed(e.to_string()),
            serde_json::Value::Null,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets() {
        assert_eq!(parse_net("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert!(parse_net("nope").is_none());
    }

    #[test]
    fn names() {
        assert!(valid_name("isolation"));
        assert!(valid_name("test-1_a"));
        assert!(!valid_name("../x"));
        assert!(!valid_name(""));
    }

    #[test]
    fn zero_and_huge_durations_are_refused_before_anything() {
        let opts = Options {
            name: "never-used".into(),
            ..Options::default()
        };
        assert!(matches!(on(0, &opts), Err(IsolationError::Duration(0))));
        assert!(matches!(on(MAX_SECONDS + 1, &opts), Err(IsolationError::Duration(_))));
    }
}
