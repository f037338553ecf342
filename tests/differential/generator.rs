//! The seeded random operation generator and its model of the maps.
//!
//! The model is what the generator aims at: which maps exist, their access
//! mode, length and cursor (copied from the oracle's answers after every
//! call) and the current size of every file. Values are drawn around the
//! interesting boundaries: 0, the length, one past it, the page size,
//! negative numbers and huge ones, with enough in-range values that most
//! calls also succeed and change the data.

use std::collections::BTreeMap;

use bytes::Bytes;
use mmapd::pb::{Access, Advice, Whence};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use crate::ops::{Call, MapState, Method, Op, slice_len};

/// Most maps open at once.
const MAX_OPEN: usize = 8;
/// Huge values for arguments CPython range-checks (or clamps) without
/// overflowing.
const HUGE: [i64; 4] = [1 << 40, -(1 << 40), i64::MAX, i64::MIN];
/// Bytes that data and needles are mostly made of, so that searches hit.
const ALPHABET: &[u8] = b"abcxyz\n\0";
/// The advice sent to both sides for file maps. MADV_FREE and the
/// THP/KSM/dump advice are left out: their result depends on the kernel
/// configuration and on the kind of memory (mmapd's memfd-backed anonymous
/// regions are not MAP_ANONYMOUS). MADV_RANDOM and MADV_SEQUENTIAL set VMA
/// flags, so advice on part of a map splits its VMA and a later growing
/// resize fails with EFAULT, on both sides alike.
const FILE_ADVICE: [Advice; 5] = [
    Advice::MadvNormal,
    Advice::MadvRandom,
    Advice::MadvSequential,
    Advice::MadvWillneed,
    Advice::MadvDontneed,
];
/// The advice sent to both sides for anonymous maps: only advice that leaves
/// VMA flags alone, which keeps the oracle's emulation of anonymous grows
/// (deviation 3 in `main.rs`) exact.
const ANONYMOUS_ADVICE: [Advice; 3] = [
    Advice::MadvNormal,
    Advice::MadvWillneed,
    Advice::MadvDontneed,
];
/// Advice mmapd refuses (deviation 4 in `main.rs`): the three dangerous ones
/// and numbers outside the enum.
pub const REFUSED_ADVICE: [i32; 9] = [
    Advice::MadvRemove as i32,
    Advice::MadvDontfork as i32,
    Advice::MadvDofork as i32,
    5,
    6,
    7,
    18,
    99,
    -1,
];

/// What the test knows about one map it created.
#[derive(Debug, Clone)]
pub struct MapModel {
    /// The file, or `None` for an anonymous map.
    pub path: Option<String>,
    /// The access mode asked for.
    pub access: i32,
    /// The file offset asked for.
    pub offset: i64,
    /// Whether it is still open.
    pub open: bool,
    /// `len(m)` (the last one, once closed).
    pub len: i64,
    /// `m.tell()`.
    pub pos: i64,
}

impl MapModel {
    /// Whether CPython lets it be resized (ACCESS_DEFAULT or ACCESS_WRITE).
    pub fn resizable(&self) -> bool {
        self.access == Access::Default as i32 || self.access == Access::Write as i32
    }
}

/// The access mode mmapd's replies (Map, Stat) report for one asked for:
/// ACCESS_DEFAULT behaves as ACCESS_WRITE and is reported so; CPython keeps
/// no such field, so this is mmapd's rule, not the oracle's.
pub fn reported_access(asked: i32) -> i32 {
    if asked == Access::Default as i32 {
        Access::Write as i32
    } else {
        asked
    }
}

/// The maps created so far and the current size of every test file.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every map that was created successfully, open or closed.
    pub maps: BTreeMap<usize, MapModel>,
    /// Size of each file in the data directories.
    pub file_sizes: BTreeMap<String, i64>,
    next_id: usize,
}

impl Model {
    /// A model of no maps over files of the given sizes.
    pub fn new(file_sizes: BTreeMap<String, i64>) -> Self {
        Model {
            maps: BTreeMap::new(),
            file_sizes,
            next_id: 0,
        }
    }

    /// Ids of the open maps.
    pub fn open_ids(&self) -> Vec<usize> {
        self.maps
            .iter()
            .filter(|(_, m)| m.open)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Records what `op` did, from the oracle's report of the map afterwards
    /// and whether the call succeeded.
    pub fn apply(&mut self, op: &Op, state: Option<MapState>, succeeded: bool) {
        if let Call::Map {
            path,
            offset,
            access,
            ..
        } = &op.call
        {
            self.next_id = self.next_id.max(op.id + 1);
            if let Some(state) = state {
                let map = MapModel {
                    path: path.clone(),
                    access: *access,
                    offset: *offset,
                    open: true,
                    len: state.len,
                    pos: state.pos,
                };
                self.maps.insert(op.id, map);
            }
            return;
        }
        let Some(map) = self.maps.get_mut(&op.id) else {
            return;
        };
        match state {
            None => map.open = false,
            Some(state) => {
                map.len = state.len;
                map.pos = state.pos;
            }
        }
        if let (Call::Method(Method::Resize { .. }), Some(path), true) =
            (&op.call, &map.path, succeeded)
        {
            self.file_sizes.insert(path.clone(), map.offset + map.len);
        }
    }
}

/// The kinds of per-map calls and how often each is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Close,
    Read,
    ReadByte,
    ReadLine,
    Write,
    WriteByte,
    Seek,
    Tell,
    Size,
    Len,
    Find,
    Rfind,
    Flush,
    Move,
    Resize,
    Madvise,
    RefusedMadvise,
    GetItem,
    SetItem,
    GetSlice,
    SetSlice,
}

const WEIGHTS: [(Kind, u32); 21] = [
    (Kind::Close, 2),
    (Kind::Read, 8),
    (Kind::ReadByte, 4),
    (Kind::ReadLine, 5),
    (Kind::Write, 8),
    (Kind::WriteByte, 4),
    (Kind::Seek, 8),
    (Kind::Tell, 2),
    (Kind::Size, 2),
    (Kind::Len, 2),
    (Kind::Find, 6),
    (Kind::Rfind, 6),
    (Kind::Flush, 4),
    (Kind::Move, 5),
    (Kind::Resize, 5),
    (Kind::Madvise, 4),
    (Kind::RefusedMadvise, 1),
    (Kind::GetItem, 5),
    (Kind::SetItem, 5),
    (Kind::GetSlice, 6),
    (Kind::SetSlice, 6),
];

/// The seeded generator.
pub struct Gen {
    rng: StdRng,
    /// `mmap.PAGESIZE`: alignment of flush and madvise.
    page: i64,
    /// `mmap.ALLOCATIONGRANULARITY`: alignment of map offsets.
    granularity: i64,
}

impl Gen {
    /// A generator for `seed` on a system with the given page size and
    /// allocation granularity.
    pub fn new(seed: u64, page: i64, granularity: i64) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            page,
            granularity,
        }
    }

    /// The contents of a test file of `len` bytes: short text lines, with a
    /// run of zero bytes now and then.
    pub fn file_contents(&mut self, len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            if self.chance(0.1) {
                data.extend(std::iter::repeat_n(0, self.between(1, 40) as usize));
            } else {
                let width = self.between(0, 60) as usize;
                data.extend((0..width).map(|_| self.rng.random_range(b'a'..=b'z')));
                data.push(b'\n');
            }
        }
        data.truncate(len);
        data
    }

    /// The next operation.
    pub fn next_op(&mut self, model: &Model) -> Op {
        let open = model.open_ids();
        if open.len() < 2 || (open.len() < MAX_OPEN && self.chance(0.07)) {
            return self.map(model);
        }
        let kind = if open.len() >= MAX_OPEN && self.chance(0.1) {
            Kind::Close
        } else {
            self.kind()
        };
        let id = self.target(model, kind, &open);
        let map = &model.maps[&id];
        Op {
            id,
            call: self.call(kind, map),
        }
    }

    fn kind(&mut self) -> Kind {
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.random_range(0..total);
        for (kind, weight) in WEIGHTS {
            if pick < weight {
                return kind;
            }
            pick -= weight;
        }
        unreachable!("the pick is below the total weight")
    }

    /// The map a call goes to: mostly an open one, sometimes a closed one
    /// (refused advice only goes to open maps, whose answer is defined), and
    /// resizes mostly to maps CPython can resize.
    fn target(&mut self, model: &Model, kind: Kind, open: &[usize]) -> usize {
        if kind == Kind::Resize && self.chance(0.75) {
            let resizable: Vec<usize> = open
                .iter()
                .copied()
                .filter(|&id| model.maps[&id].resizable())
                .collect();
            if let Some(&id) = resizable.choose(&mut self.rng) {
                return id;
            }
        }
        let closed: Vec<usize> = model
            .maps
            .iter()
            .filter(|(_, m)| !m.open)
            .map(|(&id, _)| id)
            .collect();
        if kind != Kind::RefusedMadvise && !closed.is_empty() && self.chance(0.08) {
            return self.pick(&closed);
        }
        self.pick(open)
    }

    fn map(&mut self, model: &Model) -> Op {
        let access =
            self.pick(&[Access::Default, Access::Read, Access::Write, Access::Copy]) as i32;
        let (g, page) = (self.granularity, self.page);
        let (path, length, offset) = if self.chance(0.25) {
            let length = match self.rng.random_range(0..10) {
                0..=3 => self.between(1, 200),
                4 => page,
                5..=6 => page * self.between(1, 3) + self.between(0, page - 1),
                7 => 0,
                _ => self.pick(&[-1, -page, i64::MIN]),
            };
            let offset = if self.chance(0.85) {
                0
            } else {
                self.pick(&[g, 2 * g, 1, -1, -g])
            };
            (None, length, offset)
        } else {
            let names: Vec<&String> = model.file_sizes.keys().collect();
            let name = self.pick(&names).clone();
            let size = model.file_sizes[&name];
            let offset = match self.rng.random_range(0..20) {
                0..=10 => 0,
                11..=14 => g * self.between(1, size / g + 1),
                15 => self.pick(&[1, g - 1, g + 1, size]),
                16 => self.pick(&[-g, -1]),
                17 => self.pick(&[1 << 40, i64::MAX]),
                _ => g * self.between(0, size / g),
            };
            let rest = (size - offset).max(0);
            let length = match self.rng.random_range(0..20) {
                0..=6 => 0,
                7..=10 => rest,
                11..=13 => self.between(1, rest.max(1)),
                14..=15 => rest + 1,
                16..=17 => self.pick(&[-1, -page, i64::MIN]),
                _ => self.pick(&[1 << 40, i64::MAX, size + page]),
            };
            (Some(name), length, offset)
        };
        Op {
            id: model.next_id,
            call: Call::Map {
                path,
                length,
                offset,
                access,
            },
        }
    }

    fn call(&mut self, kind: Kind, map: &MapModel) -> Call {
        let (len, pos, page) = (map.len, map.pos, self.page);
        Call::Method(match kind {
            Kind::Close => return Call::Close,
            Kind::Read => {
                let n = self.opt(0.25, |g| match g.rng.random_range(0..8) {
                    0 => g.pick(&[-1, i64::MIN]),
                    1 => 0,
                    2..=3 => g.between(1, 20),
                    4..=5 => g.between(0, len),
                    6 => len + 1,
                    _ => g.pick(&[i64::MAX, 1 << 40]),
                });
                Method::Read { n }
            }
            Kind::ReadByte => Method::ReadByte,
            Kind::ReadLine => Method::ReadLine,
            Kind::Write => {
                let remaining = (len - pos).max(0);
                let n = match self.rng.random_range(0..10) {
                    0 => 0,
                    1 => 1,
                    2..=4 => self.between(1, 16),
                    5 => remaining,
                    6 => remaining + 1,
                    7..=8 => self.between(0, remaining),
                    _ => self.between(page / 2, 2 * page),
                };
                Method::Write {
                    data: self.bytes(n).into(),
                }
            }
            Kind::WriteByte => Method::WriteByte {
                value: self.byte_value(),
            },
            Kind::Seek => {
                let whence = self.pick(&[Whence::Set, Whence::Cur, Whence::End]);
                let near = self.chance(0.7);
                let pos = match whence {
                    Whence::Cur if near => self.between(-pos - 1, len - pos + 1),
                    Whence::End if near => self.between(-len - 1, 1),
                    Whence::Set | Whence::Cur | Whence::End => self.position(len),
                };
                Method::Seek {
                    pos,
                    whence: whence as i32,
                }
            }
            Kind::Tell => Method::Tell,
            Kind::Size => Method::Size,
            Kind::Len => Method::Len,
            Kind::Find | Kind::Rfind => {
                let sub = if self.chance(0.15) {
                    Bytes::new()
                } else {
                    let n = self.between(1, 3);
                    self.bytes(n).into()
                };
                let start = self.opt(0.4, |g| g.position(len));
                let end = self.opt(0.4, |g| g.position(len));
                if kind == Kind::Find {
                    Method::Find { sub, start, end }
                } else {
                    Method::RFind { sub, start, end }
                }
            }
            Kind::Flush => {
                let offset = self.opt(0.35, |g| match g.rng.random_range(0..8) {
                    0..=1 => 0,
                    2..=4 => page * g.between(0, len / page + 1),
                    5 => g.pick(&[1, page / 2, page + 1]),
                    6 => g.pick(&[-1, len]),
                    _ => g.pick(&HUGE),
                });
                let size = self.opt(0.4, |g| match g.rng.random_range(0..8) {
                    0 => 0,
                    1 => len,
                    2..=3 => g.between(0, len),
                    4 => len.saturating_sub(offset.unwrap_or(0)),
                    5 => g.pick(&[len + 1, page]),
                    6 => -1,
                    _ => g.pick(&HUGE),
                });
                Method::Flush { offset, size }
            }
            Kind::Move => {
                let count = self.between(0, len);
                let mut args = [
                    self.between(0, len - count),
                    self.between(0, len - count),
                    count,
                ];
                if self.chance(0.3) {
                    let bad =
                        self.pick(&[-1, len + 1, len - count + 1, count + 1, i64::MAX, i64::MIN]);
                    let which = self.rng.random_range(0..3);
                    args[which] = bad;
                }
                let [dest, src, count] = args;
                Method::Move { dest, src, count }
            }
            Kind::Resize => Method::Resize {
                new_size: self.new_size(map),
            },
            Kind::RefusedMadvise => {
                // In-range arguments only: with bad ones, whether the range
                // check or the refusal comes first is not specified.
                let option = self.pick(&REFUSED_ADVICE);
                let start = self.opt(0.5, |_| 0);
                let length = self.opt(0.5, |g| g.between(0, len));
                Method::Madvise {
                    option,
                    start,
                    length,
                }
            }
            Kind::Madvise => {
                let advice: &[Advice] = if map.path.is_some() {
                    &FILE_ADVICE
                } else {
                    &ANONYMOUS_ADVICE
                };
                let option = self.pick(advice) as i32;
                let start = self.opt(0.3, |g| match g.rng.random_range(0..8) {
                    0..=1 => 0,
                    2..=4 => page * g.between(0, (len - 1) / page),
                    5 => g.pick(&[1, page - 1, page + 1]),
                    6 => g.pick(&[len, len - 1, -1]),
                    _ => g.pick(&HUGE),
                });
                let length = self.opt(0.35, |g| match g.rng.random_range(0..8) {
                    0 => 0,
                    1 => 1,
                    2 => len,
                    3 => page,
                    4..=5 => g.between(0, 2 * len),
                    6 => -1,
                    _ => g.pick(&[i64::MAX, 1 << 40, i64::MIN]),
                });
                Method::Madvise {
                    option,
                    start,
                    length,
                }
            }
            Kind::GetItem => Method::GetItem {
                index: self.position(len),
            },
            Kind::SetItem => Method::SetItem {
                index: self.position(len),
                value: self.byte_value(),
            },
            Kind::GetSlice => {
                let (start, stop, step) = self.slice(len);
                Method::GetSlice { start, stop, step }
            }
            Kind::SetSlice => {
                let (start, stop, step) = self.slice(len);
                let exact = slice_len(len, start, stop, step).unwrap_or(3);
                let n = if self.chance(0.85) {
                    exact
                } else {
                    self.pick(&[exact + 1, (exact - 1).max(0), 0])
                };
                Method::SetSlice {
                    start,
                    stop,
                    step,
                    data: self.bytes(n).into(),
                }
            }
        })
    }

    /// A resize argument: shrinks, grows (within a few pages), 0, negative.
    fn new_size(&mut self, map: &MapModel) -> i64 {
        let (len, page) = (map.len, self.page);
        let grow = len < 6 * page;
        match self.rng.random_range(0..10) {
            0 => 0,
            1 => self.pick(&[-1, -(1 << 40), i64::MIN]),
            2..=4 => self.between(1, len),
            5..=7 if grow => self.between(len + 1, len + 2 * page),
            5..=7 => self.between(1, len),
            8 => page * self.between(1, 4),
            _ => len,
        }
    }

    /// A slice `start:stop:step` around a map of `len` bytes, step 0 included.
    fn slice(&mut self, len: i64) -> (Option<i64>, Option<i64>, Option<i64>) {
        let start = self.opt(0.3, |g| g.position(len));
        let stop = self.opt(0.3, |g| g.position(len));
        let steps = [
            1,
            1,
            2,
            3,
            7,
            -1,
            -1,
            -2,
            -3,
            0,
            len,
            -len,
            i64::MAX,
            i64::MIN,
        ];
        let step = self.opt(0.45, |g| g.pick(&steps));
        (start, stop, step)
    }

    /// A position or index for a map of `len` bytes: mostly in range, often
    /// at or just past a boundary, sometimes negative or huge.
    fn position(&mut self, len: i64) -> i64 {
        match self.rng.random_range(0..10) {
            0..=3 => self.between(0, len),
            4 => self.pick(&[0, len - 1, len, len + 1]),
            5 => self.between(-len, -1),
            6 => self.pick(&[-1, -len, -len - 1]),
            7 => self.between(len + 1, len + 2 * self.page),
            8 => self.pick(&HUGE),
            _ => self.between(-2 * len - 2, 2 * len + 2),
        }
    }

    /// A byte value for write_byte and item assignment, sometimes invalid.
    fn byte_value(&mut self) -> i64 {
        if self.chance(0.88) {
            self.between(0, 255)
        } else {
            self.pick(&[256, -1, 1000, i64::MAX, i64::MIN])
        }
    }

    /// `n` bytes (0 when `n` is negative), mostly from [`ALPHABET`].
    fn bytes(&mut self, n: i64) -> Vec<u8> {
        let n = usize::try_from(n).unwrap_or(0);
        (0..n)
            .map(|_| {
                if self.chance(0.9) {
                    self.pick(ALPHABET)
                } else {
                    self.rng.random()
                }
            })
            .collect()
    }

    fn opt(&mut self, p_none: f64, value: impl FnOnce(&mut Self) -> i64) -> Option<i64> {
        if self.chance(p_none) {
            None
        } else {
            Some(value(self))
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// Uniform in `lo..=hi`, or `lo` when the range is empty.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            self.rng.random_range(lo..=hi)
        }
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        *choices
            .choose(&mut self.rng)
            .expect("a non-empty list of choices")
    }
}
