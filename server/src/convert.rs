//! Conversions between proto types and domain types that more than one
//! adapter needs.
#![forbid(unsafe_code)]

use mmapd::pb;

use crate::{
    handle::{At, Stat},
    mapping::Access,
};

/// Domain access → the proto enum number of the mode it behaves as, for
/// every reply (Map, Stat, ListMappings). ACCESS_DEFAULT is shared,
/// write-through and resizable, which is ACCESS_WRITE, so a reply says WRITE:
/// a client learns what its handle does without knowing that rule, and
/// the mapping of a shared file looks the same whichever of the two it was
/// asked with.
pub fn access_to_pb(access: Access) -> i32 {
    let pb = match access {
        Access::Default | Access::Write => pb::Access::Write,
        Access::Read => pb::Access::Read,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply may only fold modes that behave alike: if ACCESS_DEFAULT
    /// ever stops behaving as ACCESS_WRITE, a reply saying WRITE would lie.
    #[test]
    fn the_reported_access_behaves_as_the_one_asked_for() {
        let all = [Access::Default, Access::Read, Access::Write, Access::Copy];
        for asked in all {
            let reported = Access::from_python(access_to_pb(asked)).unwrap();
            let behaviour = |a: Access| (a.writable(), a.resizable(), a.writes_through());
            assert_eq!(behaviour(reported), behaviour(asked), "{asked:?}");
            assert_ne!(reported, Access::Default, "{asked:?}");
        }
        assert_eq!(access_to_pb(Access::Default), pb::Access::Write as i32);
        assert_eq!(access_to_pb(Access::Copy), pb::Access::Copy as i32);
        assert_eq!(access_to_pb(Access::Read), pb::Access::Read as i32);
    }
}
