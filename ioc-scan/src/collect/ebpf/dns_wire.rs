//! A small, bounded reader of DNS messages (RFC 1035) as the DNS programs
//! copy them: header, questions and answer records (A, AAAA, names, MX,
//! TXT). Untrusted input: every read is checked, compression pointers are
//! followed a bounded number of times, counts are capped, nothing recurses.

use std::net::{Ipv4Addr, Ipv6Addr};

/// At most this many questions / answers are read from one message.
const MAX_QUESTIONS: usize = 8;
const MAX_ANSWERS: usize = 64;
/// A name is at most 255 bytes on the wire (RFC 1035 2.3.4).
const MAX_NAME: usize = 255;
/// Compression pointers followed per name.
const MAX_POINTERS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS message ends early at byte {0}")]
    Truncated(usize),
    #[error("bad DNS name at byte {0}")]
    BadName(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    /// QR bit: an answer (else a query).
    pub response: bool,
    pub rcode: u8,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// CNAME, NS, PTR: a host name.
    Name(String),
    Mx {
        preference: u16,
        host: String,
    },
    Txt(Vec<String>),
    /// Any other type: its raw bytes.
    Other(Vec<u8>),
}

/// The mnemonic of a record type (`A`, `AAAA`, `CNAME`...), or its number.
pub fn type_name(rtype: u16) -> String {
    match rtype {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DnsError::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DnsError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A (possibly compressed) name, dotted, without the trailing dot;
    /// the root is "".
    fn name(&mut self) -> Result<String, DnsError> {
        let mut out = String::new();
        let mut wire_len = 0usize;
        let mut at = self.pos;
        let mut jumped = false;
        let mut pointers = 0;
        loop {
            let len = *self.buf.get(at).ok_or(DnsError::Truncated(at))? as usize;
            match len & 0xc0 {
                0x00 => {
                    if len == 0 {
                        if !jumped {
                            self.pos = at + 1;
                        }
                        return Ok(out);
                    }
                    let label = self.buf.get(at + 1..at + 1 + len).ok_or(DnsError::Truncated(at))?;
                    wire_len += len + 1;
                    if wire_len > MAX_NAME {
                        return Err(DnsError::BadName(at));
                    }
                    if !out.is_empty() {
                        out.push('.');
                    }
                    // Labels are bytes; keep printable ASCII, escape the rest.
                    for &b in label {
                        if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                            out.push(b as char);
                        } else {
                            out.push_str(&format!("\\{b:03}"));
                        }
                    }
                    at += 1 + len;
                }
                0xc0 => {
                    let low = *self.buf.get(at + 1).ok_or(DnsError::Truncated(at))? as usize;
                    pointers += 1;
                    if pointers > MAX_POINTERS {
                        return Err(DnsError::BadName(at));
                    }
                    if !jumped {
                        self.pos = at + 2;
                        jumped = true;
                    }
                    at = ((len & 0x3f) << 8) | low;
                }
                _ => return Err(DnsError::BadName(at)),
            }
        }
    }
}

/// Parse a DNS message. Records past the caps are not read; a record
/// whose data is cut short ends the answer list (what came before stays).
pub fn parse(buf: &[u8]) -> Result<Message, DnsError> {
    let mut r = Reader { buf, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qdcount = r.u16()? as usize;
    let ancount = r.u16()? as usize;
    let _nscount = r.u16()?;
    let _arcount = r.u16()?;
    let mut msg = Message {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        questions: Vec::new(),
        answers: Vec::new(),
    };
    for _ in 0..qdcount.min(MAX_QUESTIONS) {
        let name = r.name()?;
        let qtype = r.u16()?;
        let _class = r.u16()?;
        msg.questions.push(Question { name, qtype });
    }
    if qdcount > MAX_QUESTIONS {
        return Ok(msg);
    }
    for _ in 0..ancount.min(MAX_ANSWERS) {
        match record(&mut r) {
            Ok(rec) => msg.answers.push(rec),
            Err(_) => break,
        }
    }
    Ok(msg)
}

fn record(r: &mut Reader<'_>) -> Result<Record, DnsError> {
    let name = r.name()?;
    let rtype = r.u16()?;
    let _class = r.u16()?;
    let ttl = r.u32()?;
    let rdlen = r.u16()? as usize;
    let start = r.pos;
    let rdata = r.bytes(rdlen)?;
    let data = match rtype {
        1 if rdlen == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        28 if rdlen == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(rdata);
            RData::Aaaa(Ipv6Addr::from(o))
        }
        2 | 5 | 12 => {
            // Names inside RDATA may point anywhere in the message.
            let mut inner = Reader { buf: r.buf, pos: start };
            RData::Name(inner.name()?)
        }
        15 if rdlen >= 3 => {
            let mut inner = Reader { buf: r.buf, pos: start };
            let preference = inner.u16()?;
            RData::Mx {
                preference,
                host: inner.name()?,
            }
        }
        16 => {
            let mut parts = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let n = rdata[i] as usize;
                let s = rdata.get(i + 1..i + 1 + n).ok_or(DnsError::Truncated(start + i))?;
                parts.push(String::from_utf8_lossy(s).into_owned());
                i += 1 + n;
            }
            RData::Txt(parts)
        }
        _ => RData::Other(rdata.to_vec()),
    };
    Ok(Record { name, rtype, ttl, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer for evil.example.com: CNAME to c.example.com (compressed),
    /// then A 127.0.0.9 and AAAA ::9 for the CNAME target.
    fn answer() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        // question at 12: evil.example.com A IN
        m.extend_from_slice(b"\x04evil\x07example\x03com\x00\x00\x01\x00\x01");
        // CNAME: name → pointer to 12; rdata "c" + pointer to example.com (offset 17)
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'c', 0xc0, 17]);
        let c_at = (m.len() - 4) as u8; // where "\x01c..." starts
        m.extend_from_slice(&[0xc0, c_at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 9]);
        m.extend_from_slice(&[0xc0, c_at, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        m
    }

    #[test]
    fn reads_questions_and_compressed_answers() {
        let msg = parse(&answer()).unwrap();
        assert!(msg.response);
        assert_eq!(msg.id, 0x1234);
        assert_eq!(
            msg.questions,
            vec![Question {
                name: "evil.example.com".into(),
                qtype: 1
            }]
        );
        assert_eq!(msg.answers.len(), 3);
        assert_eq!(msg.answers[0].data, RData::Name("c.example.com".into()));
        assert_eq!(msg.answers[1].name, "c.example.com");
        assert_eq!(msg.answers[1].data, RData::A(Ipv4Addr::new(127, 0, 0, 9)));
        assert_eq!(msg.answers[2].data, RData::Aaaa("::9".parse().unwrap()));
        assert_eq!(type_name(msg.answers[2].rtype), "AAAA");
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_answer_never_a_panic() {
        let full = answer();
        for cut in 0..full.len() {
            if let Ok(msg) = parse(&full[..cut]) {
                assert!(msg.answers.len() < 3);
            }
        }
    }

    #[test]
    fn pointer_loops_are_refused() {
        // A question whose name points at itself.
        let m = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert_eq!(parse(&m), Err(DnsError::BadName(12)));
    }

    #[test]
    fn garbage_does_not_panic() {
        // A cheap deterministic fuzz: bytes from a linear congruential generator.
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let len = (x % 80) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                buf.push((x >> 16) as u8);
            }
            let _ = parse(&buf);
        }
    }
}
