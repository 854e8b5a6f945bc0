//! Load the embedded kernel programs, hand them their settings and kill /
//! block lists, attach them, and say which sensors work on this host.
//!
//! Nothing is assumed about the kernel: every program is loaded and
//! attached for real, and a refusal (EPERM, missing hook) makes that
//! sensor "unavailable" with the kernel's reason, while the others run.
//! Reasons are cut to a line; `IOC_SCAN_VERIFIER_LOG=1` keeps the whole
//! verifier log (when changing the programs). `IOC_SCAN_TCP_TRACEPOINT=classic`
//! makes the TCP sensor use its fallback program, `IOC_SCAN_DNS_HOOK=cgroup_skb`
//! the DNS sensor (tests); `IOC_SCAN_EXEC_OFFSETS=none` runs the exec
//! program as on a kernel without BTF (no parent, start time or inode in
//! its events: tests of what user space does without them).

use super::btf::Btf;
use super::events::kernel_dev;
use super::object;
use super::rules::{BlockRule, KillRules};
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr, TracePoint};
use aya::{Ebpf, EbpfLoader};
use ioc_scan_common as k;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why the kernel programs cannot run at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("built without eBPF programs: run `cargo xtask setup`, then build again")]
    NotBuilt,
    #[error("BPF is not available to this process (run as root, with BPF enabled): {0}")]
    Unavailable(String),
    #[error("loading the eBPF object: {0}")]
    Object(String),
    #[error("eBPF map {map}: {reason}")]
    Map { map: &'static str, reason: String },
    #[error("cgroup {path}: {source}")]
    Cgroup { path: String, source: std::io::Error },
    #[error("no cgroup v2 mount found (looked in /proc/self/mounts)")]
    NoCgroup2,
}

/// How to load the programs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size of the event ring buffer (a power of two, multiple of the page size).
    pub ring_buffer_bytes: u32,
    /// The cgroup (v2 directory) the network programs attach to; `None`:
    /// the cgroup v2 root (every process).
    pub cgroup: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ring_buffer_bytes: 8 << 20,
            cgroup: None,
        }
    }
}

/// What user space hands the programs before they are attached.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub kill: bool,
    pub block: bool,
    pub kill_rules: KillRules,
    pub block_rules: Vec<BlockRule>,
}

/// Which optional sensors to attach (each program costs a little on every
/// event it sees, so only what the IOCs and options need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sensors {
    /// TCP state changes (`sock/inet_sock_set_state`).
    pub tcp: bool,
    /// The cgroup connect / sendmsg programs: UDP peers, the block list,
    /// and the DNS sockets (with their owners) the DNS programs report.
    pub udp: bool,
    /// The DNS answer program (`sock/sk_data_ready`), or its per-packet
    /// fallback (cgroup skb). Attaches the connect / sendmsg programs too:
    /// they tell it which sockets asked.
    pub dns: bool,
    /// With `dns`: also the per-packet egress program, so that a query no
    /// answer follows is seen with its name (the answer program sees a
    /// query only through its answer). Costs a cgroup skb run on every
    /// packet the cgroup sends.
    pub dns_queries: bool,
}

impl Sensors {
    pub fn all() -> Sensors {
        Sensors {
            tcp: true,
            udp: true,
            dns: true,
            dns_queries: true,
        }
    }
}

/// One program's fate on this host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgramStatus {
    /// `exec`, `exit`, `tcp`, `udp`, `dns`, `block`.
    pub sensor: &'static str,
    pub program: &'static str,
    /// Where it is attached (`sched/sched_process_exec`, a cgroup path).
    pub attach: String,
    /// None when attached; else why not.
    pub unavailable: Option<String>,
}

/// The loaded programs. Dropping it detaches everything.
pub struct Kernel {
    ebpf: Ebpf,
    cgroup: PathBuf,
    ring_buffer_bytes: u32,
    /// The struct offsets given to the exec program, or why there are none.
    pub offsets: Result<k::TaskOffsets, String>,
    /// Why the BTF tracepoint for TCP states cannot be used (no BTF, no
    /// socket offsets): then the classic tracepoint program is.
    tcp_btf: Result<(), String>,
    /// Why the DNS answer program cannot be used (no BTF, no socket or skb
    /// offsets): then the cgroup skb programs are.
    dns_btf: Result<(), String>,
    /// The settings as last written ([`Kernel::configure`]), kept to add
    /// `CONFIG_BLOCK_*` bits when [`Kernel::block`] adds a kind of entry.
    config: Option<k::Config>,
    /// `CONFIG_BLOCK_*` bits of the entries in the block lists.
    block_kinds: u32,
    pub programs: Vec<ProgramStatus>,
}

/// Whether an error (or one of its causes) is the kernel saying "not
/// allowed" (EPERM / EACCES).
pub(crate) fn is_permission(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// The error and its causes on one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// [`error_chain`], cut to a line's worth.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error_chain(err);
    // Verifier logs can be long: keep the message to a line's worth
    // (unless IOC_SCAN_VERIFIER_LOG is set).
    if out.len() > 600 && std::env::var_os("IOC_SCAN_VERIFIER_LOG").is_none() {
        let mut end = 600;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("...");
    }
    out
}

/// The cgroup v2 mount point (`/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` in hybrid mode).
pub fn cgroup2_root() -> Result<PathBuf, LoadError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|_| LoadError::NoCgroup2)?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir.replace("\\040", " ")))
        })
        .next()
        .ok_or(LoadError::NoCgroup2)
}

/// Mount tracefs if it is not (tracepoint ids are read from it).
fn ensure_tracefs() {
    let mounted = ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"]
        .iter()
        .any(|p| Path::new(p).is_dir());
    if !mounted {
        if let Err(err) = nix::mount::mount(
            Some("tracefs"),
            "/sys/kernel/tracing",
            Some("tracefs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        ) {
            tracing::warn!("tracefs is not mounted and mounting it failed: {err}");
        }
    }
}

impl Kernel {
    /// Load the object and create its maps. Programs are not attached yet.
    pub fn open(opts: &Options) -> Result<Kernel, LoadError> {
        let data = object::object().ok_or(LoadError::NotBuilt)?;
        // Ring buffer memory is charged to the cgroup; the old RLIMIT_MEMLOCK
        // only matters on old kernels. Raising it may fail without
        // CAP_SYS_RESOURCE: harmless.
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
            tracing::debug!("setrlimit(RLIMIT_MEMLOCK) failed: {}", std::io::Error::last_os_error());
        }
        let cgroup = match &opts.cgroup {
            Some(p) => p.clone(),
            None => cgroup2_root()?,
        };
        let btf = Btf::from_sys_fs().map_err(|e| e.to_string());
        let offsets = if std::env::var_os("IOC_SCAN_EXEC_OFFSETS").is_some_and(|v| v == "none") {
            Err("IOC_SCAN_EXEC_OFFSETS=none: struct offsets not used".to_string())
        } else {
            btf.as_ref().map_err(Clone::clone).and_then(|b| b.task_offsets().map_err(|e| e.to_string()))
        };
        let sock_offsets = btf.as_ref().map_err(Clone::clone).and_then(|b| b.sock_offsets().map_err(|e| e.to_string()));
        let dns_offsets = btf.as_ref().map_err(Clone::clone).and_then(|b| b.dns_offsets().map_err(|e| e.to_string()));
        let mut loader = EbpfLoader::new();
        loader.map_max_entries(k::MAP_EVENTS, opts.ring_buffer_bytes);
        if let Ok(sock) = &sock_offsets {
            loader.override_global(k::GLOBAL_SOCK_OFFSETS, sock, true);
        }
        if let Ok(dns) = &dns_offsets {
            loader.override_global(k::GLOBAL_DNS_OFFSETS, dns, true);
        }
        let ebpf = loader
            .load(data)
            .map_err(|err| {
                if is_permission(&err) {
                    LoadError::Unavailable(chain(&err))
                } else {
                    LoadError::Object(chain(&err))
                }
            })?;
        Ok(Kernel {
            ebpf,
            cgroup,
            ring_buffer_bytes: opts.ring_buffer_bytes,
            offsets,
            tcp_btf: sock_offsets.map(|_| ()),
            dns_btf: dns_offsets.map(|_| ()),
            config: None,
            block_kinds: 0,
            programs: Vec::new(),
        })
    }

    /// Write the settings and the kill / block lists to the maps.
    pub fn configure(&mut self, settings: &Settings) -> Result<(), LoadError> {
        let rules = &settings.kill_rules;
        let mut flags = 0;
        if settings.kill {
            flags |= k::CONFIG_KILL;
        }
        if settings.block {
            flags |= k::CONFIG_BLOCK;
        }
        let offsets = match &self.offsets {
            Ok(o) => {
                flags |= k::CONFIG_OFFSETS;
                *o
            }
            Err(_) => k::TaskOffsets::default(),
        };
        if settings.kill {
            let names = self.kill_map::<[u8; k::COMM_LEN]>(k::MAP_KILL_COMM)?;
            let mut names = names;
            for (key, value) in rules.comm_keys() {
                if value & k::MATCH_CASELESS != 0 {
                    flags |= k::CONFIG_COMM_CASELESS;
                }
                names.insert(key, value, 0).map_err(|e| map_err(k::MAP_KILL_COMM, &e))?;
            }
            let mut paths = self.kill_map::<[u8; k::PATH_LEN]>(k::MAP_KILL_PATH)?;
            for (key, value) in rules.path_keys() {
                if value & k::MATCH_CASELESS != 0 {
                    flags |= k::CONFIG_PATH_CASELESS;
                }
                paths.insert(key, value, 0).map_err(|e| map_err(k::MAP_KILL_PATH, &e))?;
            }
            let mut inodes = self.kill_map::<k::InodeKey>(k::MAP_KILL_INODE)?;
            for &(dev, ino) in &rules.inodes {
                flags |= k::CONFIG_INODES;
                inodes
                    .insert(k::InodeKey { dev: kernel_dev(dev), ino }, 1, 0)
                    .map_err(|e| map_err(k::MAP_KILL_INODE, &e))?;
            }
            // ioc-scan's ancestors (the rule of respond::protect): an
            // ancestor that execs something on the lists is not killed.
            let map = self.ebpf.map_mut(k::MAP_PROTECTED).ok_or(LoadError::Map {
                map: k::MAP_PROTECTED,
                reason: "missing".into(),
            })?;
            let mut protected: BpfHashMap<&mut MapData, u32, k::ProtectedTask> =
                BpfHashMap::try_from(map).map_err(|e| map_err(k::MAP_PROTECTED, &e))?;
            let tick = crate::respond::protect::tick_ns();
            for (pid, start_ticks) in crate::respond::protect::ancestors()
                .into_iter()
                .take(k::PROTECTED_MAX as usize)
            {
                let task = k::ProtectedTask {
                    start_from_ns: start_ticks.saturating_mul(tick),
                    start_to_ns: start_ticks.saturating_add(1).saturating_mul(tick),
                };
                protected.insert(pid, task, 0).map_err(|e| map_err(k::MAP_PROTECTED, &e))?;
            }
        }
        if settings.block {
            for rule in &settings.block_rules {
                self.block(rule.ip, rule.port)?;
            }
        }
        // Wake the reader once 1/16 of the ring is waiting; it polls on a
        // timer for the rest (see `reader`).
        let config = k::Config {
            flags: flags | self.block_kinds,
            self_tgid: std::process::id(),
            wakeup_bytes: self.ring_buffer_bytes / 16,
            _pad: 0,
            offsets,
        };
        self.write_config(config)
    }

    fn write_config(&mut self, config: k::Config) -> Result<(), LoadError> {
        let map = self.ebpf.map_mut(k::MAP_CONFIG).ok_or(LoadError::Map {
            map: k::MAP_CONFIG,
            reason: "missing".into(),
        })?;
        let mut array: Array<&mut MapData, k::Config> = Array::try_from(map).map_err(|e| map_err(k::MAP_CONFIG, &e))?;
        array.set(0, config, 0).map_err(|e| map_err(k::MAP_CONFIG, &e))?;
        self.config = Some(config);
        Ok(())
    }

    fn kill_map<K: aya::Pod>(&mut self, name: &'static str) -> Result<BpfHashMap<&mut MapData, K, u32>, LoadError> {
        let map = self.ebpf.map_mut(name).ok_or(LoadError::Map {
            map: name,
            reason: "missing".into(),
        })?;
        BpfHashMap::try_from(map).map_err(|e| map_err(name, &e))
    }

    /// Add a destination to the block list (also while running, e.g. for
    /// addresses a listed domain resolved to). `None` = any address / port.
    pub fn block(&mut self, ip: Option<IpAddr>, port: Option<u16>) -> Result<(), LoadError> {
        self.insert_block(ip, port)?;
        // The entry is in the map before the programs are told to look for
        // its kind: a connect in between is let through, never wrongly refused.
        let kind = match (ip, port) {
            (Some(_), Some(p)) if p != 0 => k::CONFIG_BLOCK_EXACT,
            (Some(_), _) => k::CONFIG_BLOCK_ANY_PORT,
            (None, _) => k::CONFIG_BLOCK_ANY_ADDR,
        };
        if self.block_kinds & kind == 0 {
            self.block_kinds |= kind;
            if let Some(mut config) = self.config {
                config.flags |= kind;
                self.write_config(config)?;
            }
        }
        Ok(())
    }

    fn insert_block(&mut self, ip: Option<IpAddr>, port: Option<u16>) -> Result<(), LoadError> {
        let port = port.unwrap_or(0);
        match ip {
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let mut map = self.kill_map::<k::Block6Key>(k::MAP_BLOCK_V6)?;
                map.insert(
                    k::Block6Key {
                        addr: v6.octets(),
                        port,
                        _pad: 0,
                    },
                    1,
                    0,
                )
                .map_err(|e| map_err(k::MAP_BLOCK_V6, &e))
            }
            Some(IpAddr::V6(v6)) => {
                let v4 = v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                self.insert_block(Some(IpAddr::V4(v4)), Some(port))
            }
            Some(IpAddr::V4(v4)) => {
                let mut map = self.kill_map::<k::Block4Key>(k::MAP_BLOCK_V4)?;
                map.insert(
                    k::Block4Key {
                        addr: v4.octets(),
                        port,
                        _pad: 0,
                    },
                    1,
                    0,
                )
                .map_err(|e| map_err(k::MAP_BLOCK_V4, &e))
            }
            None => {
                // A port on any address: both families.
                let mut v4 = self.kill_map::<k::Block4Key>(k::MAP_BLOCK_V4)?;
                v4.insert(
                    k::Block4Key {
                        addr: [0; 4],
                        port,
                        _pad: 0,
                    },
                    1,
                    0,
                )
                .map_err(|e| map_err(k::MAP_BLOCK_V4, &e))?;
                let mut v6 = self.kill_map::<k::Block6Key>(k::MAP_BLOCK_V6)?;
                v6.insert(
                    k::Block6Key {
                        addr: [0; 16],
                        port,
                        _pad: 0,
                    },
                    1,
                    0,
                )
                .map_err(|e| map_err(k::MAP_BLOCK_V6, &e))
            }
        }
    }

    /// Load and attach the programs of the wanted sensors (exec and exit
    /// always: they keep the process table); each failure is recorded in
    /// [`Kernel::programs`] and the rest go on.
    pub fn attach(&mut self, wanted: &Sensors) -> &[ProgramStatus] {
        ensure_tracefs();
        let tracepoints: [(&'static str, &'static str, &'static str, &'static str); 2] = [
            ("exec", k::PROG_EXEC, "sched", "sched_process_exec"),
            ("exit", k::PROG_EXIT, "sched", "sched_process_exit"),
        ];
        for (sensor, program, category, name) in tracepoints {
            let result = self.attach_tracepoint(program, category, name);
            self.record(sensor, program, format!("{category}/{name}"), result);
        }
        if wanted.tcp {
            self.attach_tcp_state();
        }

        let cgroup_path = self.cgroup.clone();
        let cgroup = File::open(&cgroup_path);
        let sock_addr = [k::PROG_CONNECT4, k::PROG_CONNECT6, k::PROG_SENDMSG4, k::PROG_SENDMSG6];
        for program in sock_addr.into_iter().filter(|_| wanted.udp || wanted.dns) {
            let result = match &cgroup {
                Ok(fd) => self.attach_sock_addr(program, fd),
                Err(e) => Err(format!("opening the cgroup: {e}")),
            };
            self.record("udp", program, cgroup_path.display().to_string(), result);
        }
        if wanted.dns {
            self.attach_dns(&cgroup, &cgroup_path, wanted.dns_queries);
        }
        &self.programs
    }

    /// The DNS sensor: the answer program on `sock/sk_data_ready` where the
    /// offsets are known and the kernel takes it (it runs once per datagram
    /// queued on a socket, and only reads sockets the connect / sendmsg
    /// programs saw ask port 53), else the cgroup skb programs (which run
    /// on every packet of the cgroup). `IOC_SCAN_DNS_HOOK=cgroup_skb` picks
    /// the fallback (tests).
    fn attach_dns(&mut self, cgroup: &std::io::Result<File>, cgroup_path: &Path, queries: bool) {
        let forced = std::env::var_os("IOC_SCAN_DNS_HOOK").is_some_and(|v| v == "cgroup_skb");
        let btf = match self.dns_btf.clone() {
            _ if forced => Err("IOC_SCAN_DNS_HOOK=cgroup_skb".to_string()),
            Ok(()) => self.attach_btf_tracepoint(k::PROG_DNS_DATA_READY, "sk_data_ready"),
            Err(why) => Err(format!("no socket buffer offsets: {why}")),
        };
        let answers_at_socket = btf.is_ok();
        match btf {
            Ok(()) => self.record("dns", k::PROG_DNS_DATA_READY, "tp_btf/sk_data_ready".into(), Ok(())),
            Err(why) => tracing::debug!("BTF tracepoint for DNS answers unavailable ({why}); using the cgroup skb programs"),
        }
        let skb = [
            (k::PROG_DNS_EGRESS, CgroupSkbAttachType::Egress, queries || !answers_at_socket),
            (k::PROG_DNS_INGRESS, CgroupSkbAttachType::Ingress, !answers_at_socket),
        ];
        for (program, attach_type, _) in skb.into_iter().filter(|(_, _, wanted)| *wanted) {
            let result = match cgroup {
                Ok(fd) => self.attach_skb(program, fd, attach_type),
                Err(e) => Err(format!("opening the cgroup: {e}")),
            };
            self.record("dns", program, cgroup_path.display().to_string(), result);
        }
    }

    /// The TCP state sensor: the BTF tracepoint where the socket offsets
    /// are known and the kernel takes it, else the classic tracepoint (the
    /// same events, at a higher cost per connection).
    /// `IOC_SCAN_TCP_TRACEPOINT=classic` picks the classic one (tests).
    fn attach_tcp_state(&mut self) {
        let forced = std::env::var_os("IOC_SCAN_TCP_TRACEPOINT").is_some_and(|v| v == "classic");
        let btf = match self.tcp_btf.clone() {
            _ if forced => Err("IOC_SCAN_TCP_TRACEPOINT=classic".to_string()),
            Ok(()) => self.attach_btf_tracepoint(k::PROG_TCP_STATE_BTF, "inet_sock_set_state"),
            Err(why) => Err(format!("no socket offsets: {why}")),
        };
        match btf {
            Ok(()) => self.record("tcp", k::PROG_TCP_STATE_BTF, "tp_btf/inet_sock_set_state".into(), Ok(())),
            Err(why) => {
                tracing::debug!("BTF tracepoint for TCP states unavailable ({why}); using the classic tracepoint");
                let result = self.attach_tracepoint(k::PROG_TCP_STATE, "sock", "inet_sock_set_state");
                self.record("tcp", k::PROG_TCP_STATE, "sock/inet_sock_set_state".into(), result);
            }
        }
    }

    fn attach_btf_tracepoint(&mut self, program: &str, name: &str) -> Result<(), String> {
        let btf = aya::Btf::from_sys_fs().map_err(|e| chain(&e))?;
        let prog: &mut BtfTracePoint = self
            .ebpf
            .program_mut(program)
            .ok_or("not in the object")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| chain(&e))?;
        prog.load(name, &btf).map_err(|e| chain(&e))?;
        prog.attach().map_err(|e| chain(&e))?;
        Ok(())
    }

    fn record(&mut self, sensor: &'static str, program: &'static str, attach: String, result: Result<(), String>) {
        self.programs.push(ProgramStatus {
            sensor,
            program,
            attach,
            unavailable: result.err(),
        });
    }

    fn attach_tracepoint(&mut self, program: &str, category: &str, name: &str) -> Result<(), String> {
        let prog: &mut TracePoint = self
            .ebpf
            .program_mut(program)
            .ok_or("not in the object")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| chain(&e))?;
        prog.load().map_err(|e| chain(&e))?;
        prog.attach(category, name).map_err(|e| chain(&e))?;
        Ok(())
    }

    fn attach_sock_addr(&mut self, program: &str, cgroup: &File) -> Result<(), String> {
        let prog: &mut CgroupSockAddr = self
            .ebpf
            .program_mut(program)
            .ok_or("not in the object")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| chain(&e))?;
        prog.load().map_err(|e| chain(&e))?;
        prog.attach(cgroup, CgroupAttachMode::Single).map_err(|e| chain(&e))?;
        Ok(())
    }

    fn attach_skb(&mut self, program: &str, cgroup: &File, attach_type: CgroupSkbAttachType) -> Result<(), String> {
        let prog: &mut CgroupSkb = self
            .ebpf
            .program_mut(program)
            .ok_or("not in the object")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| chain(&e))?;
        prog.load().map_err(|e| chain(&e))?;
        prog.attach(cgroup, attach_type, CgroupAttachMode::Single).map_err(|e| chain(&e))?;
        Ok(())
    }

    /// Whether the programs of `sensor` are all attached.
    pub fn sensor_ok(&self, sensor: &str) -> bool {
        let mut any = false;
        for p in self.programs.iter().filter(|p| p.sensor == sensor) {
            if p.unavailable.is_some() {
                return false;
            }
            any = true;
        }
        any
    }

    /// The event ring buffer, to read with [`super::reader::EventReader`].
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self.ebpf.take_map(k::MAP_EVENTS).ok_or(LoadError::Map {
            map: k::MAP_EVENTS,
            reason: "missing (already taken?)".into(),
        })?;
        RingBuf::try_from(map).map_err(|e| map_err(k::MAP_EVENTS, &e))
    }

    /// Events dropped so far, by event kind (index = `EVENT_*`): those that
    /// found the ring buffer full (summed over CPUs), and the runs of the
    /// tracepoint programs the kernel skipped because the program was
    /// already running on that CPU (a softirq's TCP state change over one
    /// in process context): each would have been an event.
    pub fn lost(&self) -> Result<[u64; k::EVENT_KIND_COUNT as usize], LoadError> {
        let map = self.ebpf.map(k::MAP_LOST).ok_or(LoadError::Map {
            map: k::MAP_LOST,
            reason: "missing".into(),
        })?;
        let array: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).map_err(|e| map_err(k::MAP_LOST, &e))?;
        let mut out = [0u64; k::EVENT_KIND_COUNT as usize];
        for (kind, slot) in out.iter_mut().enumerate() {
            let values = array.get(&(kind as u32), 0).map_err(|e| map_err(k::MAP_LOST, &e))?;
            *slot = values.iter().sum();
        }
        for status in self.programs.iter().filter(|p| p.unavailable.is_none()) {
            let kind = match status.program {
                k::PROG_EXEC => k::EVENT_EXEC,
                k::PROG_EXIT => k::EVENT_EXIT,
                k::PROG_TCP_STATE | k::PROG_TCP_STATE_BTF => k::EVENT_CONN,
                _ => continue,
            };
            out[kind as usize] = out[kind as usize].saturating_add(self.recursion_misses(status.program));
        }
        Ok(out)
    }

    /// `bpf_prog_info.recursion_misses` of a loaded program (Linux 5.12+;
    /// 0 where the kernel does not count them).
    fn recursion_misses(&self, program: &str) -> u64 {
        use std::os::fd::{AsFd, AsRawFd};
        let Some(fd) = self.ebpf.program(program).and_then(|p| p.fd().ok()) else {
            return 0;
        };
        // The head of `struct bpf_prog_info` (UAPI, only ever extended at
        // its end) up to `recursion_misses`, at byte 208.
        #[repr(C)]
        struct ProgInfoHead {
            before: [u64; 26],
            recursion_misses: u64,
        }
        #[repr(C)]
        struct InfoByFd {
            bpf_fd: u32,
            info_len: u32,
            info: u64,
        }
        let mut info = ProgInfoHead {
            before: [0; 26],
            recursion_misses: 0,
        };
        let mut attr = InfoByFd {
            bpf_fd: fd.as_fd().as_raw_fd() as u32,
            info_len: std::mem::size_of::<ProgInfoHead>() as u32,
            info: std::ptr::addr_of_mut!(info) as u64,
        };
        const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
        // SAFETY: the kernel writes at most `info_len` bytes to `info`, which
        // lives until the call returns; `attr` is the command's attribute.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_OBJ_GET_INFO_BY_FD,
                std::ptr::addr_of_mut!(attr),
                std::mem::size_of::<InfoByFd>(),
            )
        };
        if ret == 0 {
            info.recursion_misses
        } else {
            0
        }
    }

    /// Count every program's runs and run time while the returned fd is
    /// open (`BPF_ENABLE_STATS`; costs a little per run: benchmarks only).
    pub fn enable_stats(&self) -> Result<std::os::fd::OwnedFd, LoadError> {
        aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(|e| LoadError::Unavailable(chain(&e)))
    }

    /// (program, runs, total run time in ns) of every attached program.
    pub fn program_stats(&self) -> Vec<(&'static str, u64, u64)> {
        let mut out = Vec::new();
        for status in self.programs.iter().filter(|p| p.unavailable.is_none()) {
            if let Some(info) = self.ebpf.program(status.program).and_then(|p| p.info().ok()) {
                out.push((status.program, info.run_count(), info.run_time().as_nanos() as u64));
            }
        }
        out
    }

    /// The cgroup the network programs are attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }
}

fn map_err(map: &'static str, err: &(dyn std::error::Error + 'static)) -> LoadError {
    LoadError::Map { map, reason: chain(err) }
}
