//! Conversions between proto types and domain types that more than one
//! adapter needs.
#![forbid(unsafe_code)]

use mmapd::pb;

use crate::{
    handle::{At, Stat},
    mapping::Access,
};

/// Domain access → proto enum number.
pub fn access_to_pb(access: Access) -> i32 {
    let pb = match access {
        Access::Default => pb::Access::Default,
        Access::Read => pb::Access::Read,
        Access::Write => pb::Access::Write,
        Access::Copy => pb::Access::Copy,
    };
    pb as i32
}

/// A stream's optional offset → where it starts.
pub fn at(offset: Option<u64>) -> At {
    offset.map_or(At::Cursor, At::Offset)
}

/// A handle's description on the wire.
pub fn stat_to_pb(s: Stat) -> pb::StatResponse {
    pb::StatResponse {
        length: s.length,
        size: s.size,
        position: s.position,
        access: access_to_pb(s.access),
        name: s.name,
        path: s.path,
        offset: s.offset,
    }
}
