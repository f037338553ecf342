//! The operations the differential test applies to both sides (mmapd over
//! gRPC and CPython's `mmap` in the oracle), and their outcomes.
//!
//! The methods are the shared [`mmapd::Op`] vocabulary ([`Method`]), the
//! same one the server applies and the clients send. An [`Op`] serializes to
//! exactly the JSON request the oracle reads (see
//! `tests/oracle/mmap_oracle.py`); its `Display` is that JSON, which is also
//! how failures print it.

use std::fmt;

pub use mmapd::Op as Method;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::json;

/// One operation on the map numbered `id` (for `Map`, the map it creates).
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    /// The test's number for the map, shared by both sides.
    pub id: usize,
    /// The method and its arguments.
    #[serde(flatten)]
    pub call: Call,
}

/// What an [`Op`] does: open or close a map, or call one of its methods
/// in the vocabulary the server and the clients share ([`Method`]).
#[derive(Debug, Clone)]
pub enum Call {
    /// `mmap.mmap(fileno, length, access=, offset=)`; no `path` is fileno -1.
    Map {
        path: Option<String>,
        length: i64,
        offset: i64,
        access: i32,
    },
    /// `m.close()`.
    Close,
    /// Any other method of the map.
    Method(Method),
}

impl Call {
    /// The operation's name, as the oracle spells it (for statistics).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Map { .. } => "map",
            Call::Close => "close",
            Call::Method(m) => match m {
                Method::Read { .. } => "read",
                Method::ReadByte => "read_byte",
                Method::ReadLine => "read_line",
                Method::Write { .. } => "write",
                Method::WriteByte { .. } => "write_byte",
                Method::Seek { .. } => "seek",
                Method::Tell => "tell",
                Method::Size => "size",
                Method::Len => "len",
                Method::Find { .. } => "find",
                Method::RFind { .. } => "rfind",
                Method::Flush { .. } => "flush",
                Method::Move { .. } => "move",
                Method::Resize { .. } => "resize",
                Method::Madvise { .. } => "madvise",
                Method::GetItem { .. } => "get_item",
                Method::SetItem { .. } => "set_item",
                Method::GetSlice { .. } => "get_slice",
                Method::SetSlice { .. } => "set_slice",
                Method::Stat => "stat",
            },
        }
    }

    /// The oracle's JSON request: `op` names the call, the other fields
    /// are its arguments (`null` for Python's omitted ones), bytes in hex.
    fn json(&self) -> serde_json::Value {
        let mut json = match self {
            Call::Map {
                path,
                length,
                offset,
                access,
            } => json!({"path": path, "length": length, "offset": offset, "access": access}),
            Call::Close => json!({}),
            Call::Method(m) => match m {
                Method::Read { n } => json!({ "n": n }),
                Method::Write { data } => json!({ "data": to_hex(data) }),
                Method::WriteByte { value } => json!({ "value": value }),
                Method::Seek { pos, whence } => json!({"pos": pos, "whence": whence}),
                Method::Find { sub, start, end } | Method::RFind { sub, start, end } => {
                    json!({"sub": to_hex(sub), "start": start, "end": end})
                }
                Method::Flush { offset, size } => json!({"offset": offset, "size": size}),
                Method::Move { dest, src, count } => {
                    json!({"dest": dest, "src": src, "count": count})
                }
                Method::Resize { new_size } => json!({ "new_size": new_size }),
                Method::Madvise {
                    option,
                    start,
                    length,
                } => json!({"option": option, "start": start, "length": length}),
                Method::GetItem { index } => json!({ "index": index }),
                Method::SetItem { index, value } => json!({"index": index, "value": value}),
                Method::GetSlice { start, stop, step } => {
                    json!({"start": start, "stop": stop, "step": step})
                }
                Method::SetSlice {
                    start,
                    stop,
                    step,
                    data,
                } => json!({"start": start, "stop": stop, "step": step, "data": to_hex(data)}),
                Method::ReadByte
                | Method::ReadLine
                | Method::Tell
                | Method::Size
                | Method::Len
                | Method::Stat => json!({}),
            },
        };
        json["op"] = self.name().into();
        json
    }
}

impl Serialize for Call {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

/// A successful result: Python's `None`, an int or a bytes object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// `None`.
    None,
    /// An int (wide enough for both `u64` and `i64` wire values).
    Int(i128),
    /// A bytes object.
    Bytes(Vec<u8>),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::None => f.write_str("None"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Bytes(b) => f.write_str(&show_bytes(b)),
        }
    }
}

/// A Python exception: its class name, `str(exc)` and, for OSError, errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyErr {
    /// "ValueError", "IndexError", "TypeError", "OverflowError" or "OSError"
    /// (or whatever else either side reported, so that it mismatches).
    pub class: String,
    /// `str(exception)`, which is the gRPC status message.
    pub msg: String,
    /// The errno of an OSError; `None` for every other class.
    pub errno: Option<i64>,
}

impl fmt::Display for PyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.class, self.msg)?;
        if let Some(errno) = self.errno {
            write!(f, " errno={errno}")?;
        }
        Ok(())
    }
}

/// What a call did: a value or a Python exception.
pub type Outcome = Result<Val, PyErr>;

/// Formats an outcome for failure messages.
pub fn show_outcome(outcome: &Outcome) -> String {
    match outcome {
        Ok(val) => format!("Ok({val})"),
        Err(err) => format!("Err({err})"),
    }
}

/// `len(m)` and `m.tell()` of an open map, as the oracle reports them after
/// every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct MapState {
    /// `len(m)`.
    pub len: i64,
    /// `m.tell()` (which may exceed `len` after a shrinking resize).
    pub pos: i64,
}

/// Python-`repr`-like rendering of a byte string, shortened past 64 bytes.
pub fn show_bytes(bytes: &[u8]) -> String {
    const SHOWN: usize = 64;
    let mut out = String::from("b'");
    for &b in bytes.iter().take(SHOWN) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    if bytes.len() > SHOWN {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

/// Lowercase hex, the oracle's encoding of byte strings.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Decodes the oracle's hex.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd-length hex string of {} digits", digits.len()));
    }
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let (hi, lo) = (nibble(pair[0]), nibble(pair[1]));
            hi.zip(lo)
                .map(|(hi, lo)| hi << 4 | lo)
                .ok_or_else(|| format!("bad hex at {}", 2 * i))
        })
        .collect()
}

/// The length of `m[start:stop:step]` for a map of `len` bytes, computed the
/// way CPython's `PySlice_Unpack` and `PySlice_AdjustIndices` do; `None` for
/// step 0 (a ValueError).
pub fn slice_len(
    len: i64,
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
) -> Option<i64> {
    let step = i128::from(step.unwrap_or(1)).max(-i128::from(i64::MAX));
    if step == 0 {
        return None;
    }
    let len = i128::from(len);
    let adjust = |value: Option<i64>, default: i128| match value {
        None => default,
        Some(v) => {
            let v = i128::from(v);
            if v < 0 {
                let v = v + len;
                if v < 0 {
                    if step < 0 { -1 } else { 0 }
                } else {
                    v
                }
            } else if v >= len {
                if step < 0 { len - 1 } else { len }
            } else {
                v
            }
        }
    };
    let (start, stop) = if step < 0 {
        (adjust(start, len - 1), adjust(stop, -1))
    } else {
        (adjust(start, 0), adjust(stop, len))
    };
    let n = if step < 0 {
        if stop < start {
            (start - stop - 1) / -step + 1
        } else {
            0
        }
    } else if start < stop {
        (stop - start - 1) / step + 1
    } else {
        0
    };
    i64::try_from(n).ok()
}
