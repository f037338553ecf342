//! Raw gRPC calls: a codec over plain bytes, so the fuzzer can send bodies
//! no generated client would encode (random bytes, truncated varints, wrong
//! wire types, field 0, over-long lengths, invalid UTF-8 in strings), and
//! the makers of those malformed bodies.

use bytes::{Buf, BufMut, Bytes};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

use crate::values::Gen;

/// A codec that sends and receives message bodies as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// How a method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Unary,
    ServerStream,
    ClientStream,
}

/// A method path, its shape and the field numbers of its string fields.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub path: &'static str,
    pub shape: Shape,
    pub strings: &'static [u32],
}

const fn m(path: &'static str, strings: &'static [u32]) -> Method {
    Method {
        path,
        shape: Shape::Unary,
        strings,
    }
}

/// Every RPC of `Mmap` and `Admin`, and the health check.
pub const METHODS: [Method; 37] = [
    m("/mmapd.v1.Mmap/OpenSession", &[1]),
    m("/mmapd.v1.Mmap/KeepAlive", &[1]),
    m("/mmapd.v1.Mmap/CloseSession", &[1]),
    m("/mmapd.v1.Mmap/Map", &[1, 2, 6]),
    m("/mmapd.v1.Mmap/Close", &[1]),
    m("/mmapd.v1.Mmap/Stat", &[1]),
    m("/mmapd.v1.Mmap/Read", &[1]),
    m("/mmapd.v1.Mmap/ReadByte", &[1]),
    m("/mmapd.v1.Mmap/ReadLine", &[1]),
    m("/mmapd.v1.Mmap/Write", &[1]),
    m("/mmapd.v1.Mmap/WriteByte", &[1]),
    m("/mmapd.v1.Mmap/Seek", &[1]),
    m("/mmapd.v1.Mmap/Tell", &[1]),
    m("/mmapd.v1.Mmap/Size", &[1]),
    m("/mmapd.v1.Mmap/Len", &[1]),
    m("/mmapd.v1.Mmap/Find", &[1]),
    m("/mmapd.v1.Mmap/RFind", &[1]),
    m("/mmapd.v1.Mmap/Flush", &[1]),
    m("/mmapd.v1.Mmap/Move", &[1]),
    m("/mmapd.v1.Mmap/Resize", &[1]),
    m("/mmapd.v1.Mmap/Madvise", &[1]),
    m("/mmapd.v1.Mmap/GetItem", &[1]),
    m("/mmapd.v1.Mmap/SetItem", &[1]),
    m("/mmapd.v1.Mmap/GetSlice", &[1]),
    m("/mmapd.v1.Mmap/SetSlice", &[1]),
    Method {
        path: "/mmapd.v1.Mmap/ReadStream",
        shape: Shape::ServerStream,
        strings: &[1],
    },
    Method {
        path: "/mmapd.v1.Mmap/WriteStream",
        shape: Shape::ClientStream,
        strings: &[1],
    },
    m("/mmapd.v1.Admin/GetServerInfo", &[]),
    m("/mmapd.v1.Admin/ListSessions", &[2]),
    m("/mmapd.v1.Admin/ListMappings", &[2]),
    m("/grpc.health.v1.Health/Check", &[1]),
    // Files (typed calls: `Fuzzer::files_call`, in this order). The calls
    // that change files get no fuzzed strings here: one naming a prepared
    // file would take it from the Maps (the typed calls steer around them).
    m("/mmapd.v1.Files/List", &[1, 4]),
    m("/mmapd.v1.Files/StatPath", &[1]),
    m("/mmapd.v1.Files/MakeDir", &[1]),
    m("/mmapd.v1.Files/Remove", &[]),
    m("/mmapd.v1.Files/Rename", &[]),
    m("/mmapd.v1.Files/Truncate", &[]),
];

/// The short name of a method path ("Mmap/Read").
pub fn short(path: &str) -> &str {
    path.trim_start_matches('/')
        .trim_start_matches("mmapd.v1.")
        .trim_start_matches("grpc.health.v1.")
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

/// Invalid UTF-8 sequences: a lone byte, a bad continuation, a surrogate,
/// an overlong slash, a truncated sequence.
const BAD_UTF8: [&[u8]; 6] = [
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"ok\xe2\x82",
    b"f0.bin\x80",
];

/// A malformed body for `method`, optionally built by damaging `valid`
/// (a correct encoding of a request to it). Returns the body and what was
/// done to it.
pub fn malformed(g: &mut Gen, method: &Method, valid: Option<Bytes>) -> (Bytes, &'static str) {
    let field = match method.strings {
        [] => 1 + g.below(8) as u64,
        fields => u64::from(g.pick(fields)),
    };
    let mut out = Vec::new();
    let what = match g.below(10) {
        0 => {
            let n = g.pick(&[0, 1, 2, 5, 17, 64, 2000]);
            out.extend_from_slice(&g.fill(n));
            "random bytes"
        }
        1 => {
            tag(&mut out, 1 + g.below(7) as u64, 0);
            for _ in 0..1 + g.below(9) {
                out.push(0x80 | g.below(128) as u8);
            }
            "truncated varint"
        }
        2 => {
            tag(&mut out, 1 + g.below(7) as u64, 0);
            out.extend_from_slice(&[0xff; 10]);
            out.push(0x01);
            "varint over 10 bytes"
        }
        3 => {
            // A string field as a varint, or a numeric field as bytes,
            // fixed32 or fixed64.
            let f = 1 + g.below(7) as u64;
            match g.below(4) {
                0 => {
                    tag(&mut out, f, 0);
                    varint(&mut out, g.bits());
                }
                1 => {
                    tag(&mut out, f, 1);
                    out.extend_from_slice(&g.bits().to_le_bytes());
                }
                2 => {
                    tag(&mut out, f, 5);
                    out.extend_from_slice(&(g.bits() as u32).to_le_bytes());
                }
                _ => {
                    tag(&mut out, f, 2);
                    out.extend_from_slice(&[3, b'a', b'b', b'c']);
                }
            }
            "wrong wire type"
        }
        4 => {
            tag(&mut out, 0, g.pick(&[0, 2]));
            out.extend_from_slice(&[1, b'x']);
            "field number 0"
        }
        5 => {
            tag(&mut out, field, 2);
            let claimed = g.pick(&[4, 1000, 1 << 31, 1 << 62, u64::MAX]);
            varint(&mut out, claimed);
            out.extend_from_slice(b"abc");
            "length prefix past the end"
        }
        6 => {
            let bad = g.pick(&BAD_UTF8);
            tag(&mut out, field, 2);
            varint(&mut out, bad.len() as u64);
            out.extend_from_slice(bad);
            "invalid UTF-8 in a string field"
        }
        7 => {
            // Groups (deprecated), the invalid wire types 6 and 7, and a
            // field number past 2^29 - 1.
            match g.below(4) {
                0 => tag(&mut out, 1 + g.below(7) as u64, 3),
                1 => tag(&mut out, 1 + g.below(7) as u64, 4),
                2 => tag(&mut out, 1 + g.below(7) as u64, 6 + g.below(2) as u64),
                _ => tag(&mut out, 1 << 29, 0),
            }
            out.push(1);
            "group, invalid wire type or field number"
        }
        _ => return damage(g, valid, field),
    };
    (out.into(), what)
}

/// A valid encoding cut short, with a flipped byte, or with invalid UTF-8
/// or garbage appended.
fn damage(g: &mut Gen, valid: Option<Bytes>, field: u64) -> (Bytes, &'static str) {
    let Some(valid) = valid.filter(|v| !v.is_empty()) else {
        return (Bytes::from_static(b"\x0a\x05ab"), "truncated string");
    };
    let mut out = valid.to_vec();
    let what = match g.below(4) {
        0 => {
            out.truncate(g.below(out.len()));
            "valid request truncated"
        }
        1 => {
            let i = g.below(out.len());
            out[i] ^= 1 << g.below(8);
            "valid request with a flipped bit"
        }
        2 => {
            let bad = g.pick(&BAD_UTF8);
            tag(&mut out, field, 2);
            varint(&mut out, bad.len() as u64);
            out.extend_from_slice(bad);
            "valid request plus an invalid UTF-8 string"
        }
        _ => {
            let n = 1 + g.below(8);
            out.extend_from_slice(&g.fill(n));
            "valid request plus garbage"
        }
    };
    (out.into(), what)
}

/// Hex of the first bytes of a body, for failure reports.
pub fn hex_prefix(body: &[u8]) -> String {
    let shown: String = body.iter().take(24).map(|b| format!("{b:02x}")).collect();
    if body.len() > 24 {
        format!("{shown}… ({} bytes)", body.len())
    } else {
        shown
    }
}
