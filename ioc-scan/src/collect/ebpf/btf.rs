//! Kernel struct offsets from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), for the exec, TCP state and DNS answer
//! programs.
//!
//! The Rust eBPF toolchain emits no CO-RE relocations, so the program
//! cannot ask the loader to fix up `task->real_parent` and friends; user
//! space reads the offsets here and hands them in ([`TaskOffsets`]). Only
//! the few fields the program follows are looked up, each checked for the
//! size the program reads. A small reader of the BTF type section: aya's
//! own parser keeps its type accessors private.

use ioc_scan_common::{DnsOffsets, SockOffsets, TaskOffsets};
use std::collections::HashMap;
use std::path::Path;

/// Why the offsets could not be found.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not BTF data ({why})")]
    Format { path: String, why: &'static str },
    #[error("kernel BTF has no {0}")]
    Missing(String),
    #[error("kernel BTF: {field} is {found} bytes, the program reads {expected}")]
    Size { field: String, found: u32, expected: u32 },
    #[error("kernel BTF: {field} is at byte {offset}, beyond what the program can address")]
    TooFar { field: String, offset: u32 },
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Nesting of anonymous structs/unions searched for a member.
const MAX_ANON_DEPTH: usize = 8;
/// typedef/const/volatile chains followed.
const MAX_MODIFIERS: usize = 16;

/// The type section of a BTF blob, indexed by type id.
pub struct Btf {
    data: Vec<u8>,
    strings_at: usize,
    strings_len: usize,
    /// Byte offset (in `data`) of type id `i` (id 0 is void: no entry used).
    type_offsets: Vec<usize>,
    structs: HashMap<String, u32>,
}

struct Type {
    name_off: u32,
    kind: u32,
    kind_flag: bool,
    vlen: usize,
    size_or_type: u32,
    extra_at: usize,
}

impl Btf {
    pub fn from_sys_fs() -> Result<Btf, BtfError> {
        Btf::from_file(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Btf::parse(data).map_err(|why| BtfError::Format {
            path: path.display().to_string(),
            why,
        })
    }

    /// Parse a little-endian BTF blob (the kernel's own byte order here).
    pub fn parse(data: Vec<u8>) -> Result<Btf, &'static str> {
        let u16_at = |at: usize| data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |at: usize| data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if u16_at(0) != Some(0xeb9f) {
            return Err("bad magic");
        }
        let hdr_len = u32_at(4).ok_or("short header")? as usize;
        let (type_off, type_len) = (
            u32_at(8).ok_or("short header")? as usize,
            u32_at(12).ok_or("short header")? as usize,
        );
        let (str_off, str_len) = (
            u32_at(16).ok_or("short header")? as usize,
            u32_at(20).ok_or("short header")? as usize,
        );
        let types_at = hdr_len.checked_add(type_off).ok_or("bad offsets")?;
        let types_end = types_at.checked_add(type_len).ok_or("bad offsets")?;
        let strings_at = hdr_len.checked_add(str_off).ok_or("bad offsets")?;
        if types_end > data.len() || strings_at.checked_add(str_len).is_none_or(|end| end > data.len()) {
            return Err("sections past the end");
        }
        let mut btf = Btf {
            data,
            strings_at,
            strings_len: str_len,
            type_offsets: vec![0],
            structs: HashMap::new(),
        };
        let mut at = types_at;
        while at < types_end {
            if at + 12 > types_end {
                return Err("truncated type");
            }
            btf.type_offsets.push(at);
            let t = btf.type_at(at).ok_or("truncated type")?;
            let extra = match t.kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * t.vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * t.vlen,
                0..=19 => 0,
                _ => return Err("unknown type kind"),
            };
            at = at + 12 + extra;
        }
        for id in 1..btf.type_offsets.len() {
            if let Some(t) = btf.type_at(btf.type_offsets[id]) {
                if t.kind == KIND_STRUCT {
                    if let Some(name) = btf.string(t.name_off).filter(|n| !n.is_empty()) {
                        btf.structs.entry(name.to_string()).or_insert(id as u32);
                    }
                }
            }
        }
        Ok(btf)
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        self.data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn type_at(&self, at: usize) -> Option<Type> {
        let info = self.u32_at(at + 4)?;
        Some(Type {
            name_off: self.u32_at(at)?,
            kind: (info >> 24) & 0x1f,
            kind_flag: info >> 31 == 1,
            vlen: (info & 0xffff) as usize,
            size_or_type: self.u32_at(at + 8)?,
            extra_at: at + 12,
        })
    }

    fn type_by_id(&self, id: u32) -> Option<Type> {
        let at = *self.type_offsets.get(id as usize).filter(|_| id != 0)?;
        self.type_at(at)
    }

    fn string(&self, off: u32) -> Option<&str> {
        let off = off as usize;
        if off >= self.strings_len {
            return None;
        }
        let bytes = &self.data[self.strings_at + off..self.strings_at + self.strings_len];
        let end = bytes.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&bytes[..end]).ok()
    }

    /// Skip typedef, const, volatile, restrict and type tags.
    fn resolve(&self, mut id: u32) -> Option<(u32, Type)> {
        for _ in 0..MAX_MODIFIERS {
            let t = self.type_by_id(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// Byte size of a (resolved) type: ints, pointers, structs, enums.
    fn size_of(&self, id: u32) -> Option<u32> {
        let (_, t) = self.resolve(id)?;
        match t.kind {
            KIND_PTR => Some(8),
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 => Some(t.size_or_type),
            _ => None,
        }
    }

    /// Byte offset and type id of `member` in struct `name`, searching
    /// anonymous struct/union members too.
    pub fn member(&self, name: &str, member: &str) -> Option<(u32, u32)> {
        let id = *self.structs.get(name)?;
        // (type id, bit offset of that type within the outer struct, depth)
        let mut stack = vec![(id, 0u32, 0usize)];
        while let Some((id, base_bits, depth)) = stack.pop() {
            let (_, t) = self.resolve(id)?;
            if t.kind != KIND_STRUCT && t.kind != KIND_UNION {
                continue;
            }
            for i in 0..t.vlen {
                let at = t.extra_at + 12 * i;
                let (name_off, ty, off) = (self.u32_at(at)?, self.u32_at(at + 4)?, self.u32_at(at + 8)?);
                let bits = if t.kind_flag { off & 0x00ff_ffff } else { off };
                let member_name = self.string(name_off).unwrap_or("");
                if member_name == member {
                    return Some(((base_bits + bits) / 8, ty));
                }
                if member_name.is_empty() && depth < MAX_ANON_DEPTH {
                    stack.push((ty, base_bits + bits, depth + 1));
                }
            }
        }
        None
    }

    /// The offset of `name.member`, checking that it is `size` bytes.
    fn field(&self, name: &str, member: &str, size: u32) -> Result<u32, BtfError> {
        let field = format!("{name}.{member}");
        let (offset, ty) = self.member(name, member).ok_or_else(|| BtfError::Missing(field.clone()))?;
        match self.size_of(ty) {
            Some(found) if found == size => Ok(offset),
            Some(found) => Err(BtfError::Size {
                field,
                found,
                expected: size,
            }),
            None => Err(BtfError::Missing(format!("the size of {field}"))),
        }
    }

    /// The offsets the exec program needs.
    pub fn task_offsets(&self) -> Result<TaskOffsets, BtfError> {
        Ok(TaskOffsets {
            task_real_parent: self.field("task_struct", "real_parent", 8)?,
            task_group_leader: self.field("task_struct", "group_leader", 8)?,
            task_tgid: self.field("task_struct", "tgid", 4)?,
            task_flags: self.field("task_struct", "flags", 4)?,
            task_start_boottime: self.field("task_struct", "start_boottime", 8)?,
            task_mm: self.field("task_struct", "mm", 8)?,
            mm_arg_start: self.field("mm_struct", "arg_start", 8)?,
            mm_arg_end: self.field("mm_struct", "arg_end", 8)?,
            mm_exe_file: self.field("mm_struct", "exe_file", 8)?,
            file_f_inode: self.field("file", "f_inode", 8)?,
            inode_i_ino: self.field("inode", "i_ino", 8)?,
            inode_i_sb: self.field("inode", "i_sb", 8)?,
            sb_s_dev: self.field("super_block", "s_dev", 4)?,
            _pad: 0,
        })
    }
}

impl Btf {
    /// The offsets the TCP state program needs, in `struct sock` (whose
    /// first member is `struct sock_common __sk_common`). Without IPv6 in
    /// the kernel, the IPv6 offsets are 0.
    pub fn sock_offsets(&self) -> Result<SockOffsets, BtfError> {
        let (common, _) = self
            .member("sock", "__sk_common")
            .ok_or_else(|| BtfError::Missing("sock.__sk_common".into()))?;
        let short = |field: &str, offset: u32| {
            u16::try_from(offset).map_err(|_| BtfError::TooFar {
                field: field.to_string(),
                offset,
            })
        };
        let in_common = |member: &str, size: u32| -> Result<u16, BtfError> {
            let offset = self.field("sock_common", member, size)?;
            short(member, common + offset)
        };
        let (v6_daddr, v6_rcv_saddr) = match (in_common("skc_v6_daddr", 16), in_common("skc_v6_rcv_saddr", 16)) {
            (Ok(d), Ok(s)) => (d, s),
            (Err(BtfError::Missing(_)), _) | (_, Err(BtfError::Missing(_))) => (0, 0),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        Ok(SockOffsets {
            daddr: in_common("skc_daddr", 4)?,
            rcv_saddr: in_common("skc_rcv_saddr", 4)?,
            dport: in_common("skc_dport", 2)?,
            num: in_common("skc_num", 2)?,
            family: in_common("skc_family", 2)?,
            v6_daddr,
            v6_rcv_saddr,
            protocol: short("sk_protocol", self.field("sock", "sk_protocol", 2)?)?,
        })
    }
}

impl Btf {
    /// The offsets the DNS answer program needs: the socket's protocol and
    /// receive queue, and the fields of `struct sk_buff` that locate a
    /// datagram's headers and payload.
    pub fn dns_offsets(&self) -> Result<DnsOffsets, BtfError> {
        let short = |field: &str, offset: u32| {
            u16::try_from(offset).map_err(|_| BtfError::TooFar {
                field: field.to_string(),
                offset,
            })
        };
        let skb = |member: &str, size: u32| -> Result<u16, BtfError> { short(member, self.field("sk_buff", member, size)?) };
        let queue = self.field("sock", "sk_receive_queue", self.struct_size("sk_buff_head")?)?;
        let prev = self.field("sk_buff_head", "prev", 8)?;
        Ok(DnsOffsets {
            protocol: short("sk_protocol", self.field("sock", "sk_protocol", 2)?)?,
            receive_queue: short("sk_receive_queue", queue)?,
            receive_queue_prev: short("sk_receive_queue.prev", queue + prev)?,
            skb_head: skb("head", 8)?,
            skb_data: skb("data", 8)?,
            skb_len: skb("len", 4)?,
            skb_data_len: skb("data_len", 4)?,
            skb_transport_header: skb("transport_header", 2)?,
            skb_network_header: skb("network_header", 2)?,
            _pad: 0,
        })
    }

    /// The byte size of struct `name`.
    fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        self.structs
            .get(name)
            .and_then(|&id| self.size_of(id))
            .ok_or_else(|| BtfError::Missing(format!("struct {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob built by hand: int (id 1), ptr → int (id 2), and
    /// `struct outer { int a; union { int b; void *c; }; }` with the union
    /// anonymous (ids 3, 4).
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0outer\0a\0b\0c\0".to_vec(); // int@1 outer@5 a@11 b@13 c@15
        let mut types = Vec::new();
        let mut push = |words: &[u32]| words.iter().for_each(|w| types.extend_from_slice(&w.to_le_bytes()));
        push(&[1, KIND_INT << 24, 4, 32]); // id 1: int, 4 bytes
        push(&[0, KIND_PTR << 24, 1]); // id 2: int *
        push(&[5, (KIND_STRUCT << 24) | 2, 16, 11, 1, 0, 0, 4, 64]); // id 3: outer { a@0, <anon>@64 bits }
        push(&[0, (KIND_UNION << 24) | 2, 8, 13, 1, 0, 15, 2, 0]); // id 4: union { b, c }
        let mut data = Vec::new();
        data.extend_from_slice(&0xeb9fu16.to_le_bytes());
        data.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            data.extend_from_slice(&w.to_le_bytes());
        }
        data.extend_from_slice(&types);
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn finds_members_inside_anonymous_unions() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.member("outer", "a").map(|m| m.0), Some(0));
        assert_eq!(btf.member("outer", "b").map(|m| m.0), Some(8));
        assert_eq!(btf.member("outer", "c").map(|m| m.0), Some(8));
        assert_eq!(btf.field("outer", "c", 8).unwrap(), 8);
        assert!(matches!(btf.field("outer", "b", 8), Err(BtfError::Size { found: 4, .. })));
        assert!(btf.member("outer", "nope").is_none());
        assert!(btf.member("inner", "a").is_none());
    }

    #[test]
    fn truncated_or_foreign_data_is_an_error_not_a_panic() {
        let full = blob();
        for cut in 0..full.len() {
            let _ = Btf::parse(full[..cut].to_vec());
        }
        assert!(Btf::parse(b"not btf at all".to_vec()).is_err());
    }

    #[test]
    fn this_kernel_has_the_exec_fields() {
        // Where the kernel publishes BTF (CI and this project's machines do),
        // every offset the exec program needs must be found.
        let Ok(btf) = Btf::from_sys_fs() else { return };
        let offsets = btf.task_offsets().unwrap();
        assert!(offsets.task_real_parent > 0 && offsets.mm_exe_file > 0);
    }

    #[test]
    fn this_kernel_has_the_tcp_state_fields() {
        let Ok(btf) = Btf::from_sys_fs() else { return };
        let o = btf.sock_offsets().unwrap();
        // Each field its own bytes; the protocol lies in struct sock, beyond
        // struct sock_common (which holds the IPv6 addresses).
        let mut at = vec![o.daddr, o.rcv_saddr, o.dport, o.num, o.family, o.v6_daddr, o.v6_rcv_saddr, o.protocol];
        at.sort_unstable();
        at.dedup();
        assert_eq!(at.len(), 8, "{o:?}");
        assert!(o.protocol > o.v6_daddr.max(o.v6_rcv_saddr).max(o.family), "{o:?}");
    }

    #[test]
    fn this_kernel_has_the_dns_answer_fields() {
        let Ok(btf) = Btf::from_sys_fs() else { return };
        let o = btf.dns_offsets().unwrap();
        // The newest-skb pointer is the queue head's second pointer; the
        // socket fields agree with the TCP program's.
        assert_eq!(o.receive_queue_prev, o.receive_queue + 8, "{o:?}");
        assert_eq!(o.protocol, btf.sock_offsets().unwrap().protocol);
        let mut at = vec![o.skb_head, o.skb_data, o.skb_len, o.skb_data_len, o.skb_transport_header, o.skb_network_header];
        at.sort_unstable();
        at.dedup();
        assert_eq!(at.len(), 6, "{o:?}");
        assert!(o.skb_head > 0 && o.skb_len > 0, "{o:?}");
    }
}
