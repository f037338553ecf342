//! The fuzzer's random values: every integer extreme, values around the
//! page and the mapping's length, unknown enum numbers, hostile strings and
//! byte strings of odd sizes. All draws come from one seeded RNG, so a seed
//! replays a run.

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

/// The size of the over-limit bodies, above the server's message limit.
pub const OVERSIZE: usize = (1 << 20) + 4096;

/// Valid access numbers, then unknown ones.
const ACCESS: [i32; 9] = [0, 1, 2, 3, 4, 99, -1, i32::MIN, i32::MAX];
/// Valid whence numbers, then unknown ones.
const WHENCE: [i32; 6] = [0, 1, 2, 3, -1, i32::MAX];
/// Every advice the proto names (some refused), then unknown ones.
const ADVICE: [i32; 25] = [
    0,
    1,
    2,
    3,
    4,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    5,
    9,
    10,
    11,
    18,
    1000,
    -1,
    i32::MIN,
    i32::MAX,
    100,
];

/// Strings a careless or hostile client sends as paths, names and ids.
const STRINGS: [&str; 30] = [
    "",
    " ",
    ".",
    "..",
    "/",
    "../x",
    "a/../../b",
    "a/..",
    "./f0.bin",
    "/etc/passwd",
    "/tmp",
    "a\0b",
    "\0",
    "f0.bin\0.txt",
    "f0.bin/",
    "nodir/f.bin",
    "sub//f.bin",
    "sub",
    "empty.bin",
    "out",
    "loop",
    "in",
    "\u{FFFD}\u{FFFD}",
    "\u{80}\u{FF}\u{C3}\u{28}",
    "\u{10FFFF}\u{FEFF}",
    "\n\r\t\x1b[2J",
    "%s%n%x",
    "${HOME}~*?",
    "00000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffff",
];

/// The seeded source of every random choice.
pub struct Gen {
    rng: StdRng,
    page: i64,
    /// Over-limit payload, made once: filling a MiB per call is slow in a
    /// debug build.
    oversize: Bytes,
    /// Long strings (255, 256, 4096, 4097 bytes, 64 KiB and 200 KiB).
    long: Vec<String>,
}

impl Gen {
    /// A generator for `seed` on a machine with `page`-byte pages.
    pub fn new(seed: u64, page: i64) -> Gen {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut big = vec![0u8; OVERSIZE + 64];
        rng.fill(&mut big[..]);
        let long = [255, 256, 4096, 4097, 64 << 10, 200 << 10]
            .iter()
            .map(|&n| "x".repeat(n))
            .chain(["a/".repeat(2100), "../".repeat(1400)])
            .collect();
        Gen {
            rng,
            page,
            oversize: big.into(),
            long,
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// A uniform integer in `range`.
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// One of `items`.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items.choose(&mut self.rng).expect("non-empty").clone()
    }

    /// A signed integer: an extreme, near a page, near `len` (the target
    /// mapping's length), small, inside `0..=len`, or anything.
    pub fn int(&mut self, len: i64) -> i64 {
        let page = self.page;
        match self.below(14) {
            0..=3 => self.pick(&[
                i64::MIN,
                i64::MIN + 1,
                i64::MAX,
                i64::MAX - 1,
                i32::MIN.into(),
                i32::MAX.into(),
                u32::MAX.into(),
                u64::MAX as i64,
                -1,
                0,
                1,
                1 << 31,
                1 << 32,
                1 << 40,
                1 << 62,
                -(1 << 62),
            ]),
            4..=5 => page * self.rng.random_range(-1..=3) + self.rng.random_range(-1..=1),
            6..=8 => {
                let near = self.pick(&[len, -len, 2 * len, len / 2]);
                near.saturating_add(self.rng.random_range(-2..=2))
            }
            9..=10 => self.rng.random_range(-16..=64),
            11..=12 => self.rng.random_range(0..=len.max(0)),
            _ => self.rng.random(),
        }
    }

    /// An optional signed integer (unset a quarter of the time).
    pub fn opt_int(&mut self, len: i64) -> Option<i64> {
        (!self.chance(0.25)).then(|| self.int(len))
    }

    /// An unsigned 64-bit integer with the same mix as [`Gen::int`], plus
    /// the values only an unsigned field can carry.
    pub fn uint(&mut self, len: i64) -> u64 {
        match self.below(6) {
            0 => self.pick(&[
                u64::MAX,
                u64::MAX - 1,
                i64::MAX as u64,
                i64::MAX as u64 + 1,
                u32::MAX.into(),
                1 << 63,
            ]),
            _ => self.int(len) as u64,
        }
    }

    /// An optional unsigned integer.
    pub fn opt_uint(&mut self, len: i64) -> Option<u64> {
        (!self.chance(0.25)).then(|| self.uint(len))
    }

    /// A 32-bit unsigned integer: extremes, chunk-size edges, small ones.
    pub fn u32(&mut self) -> u32 {
        match self.below(4) {
            0 => self.pick(&[
                0,
                1,
                u32::MAX,
                u32::MAX - 1,
                i32::MAX as u32,
                1 << 31,
                (4 << 20) - 1,
                4 << 20,
                (4 << 20) + 1,
                (1 << 20) - 1,
                1 << 20,
                (1 << 20) + 1,
            ]),
            1 => self.page as u32 + self.rng.random_range(0..=2) - 1,
            2 => self.rng.random_range(0..100),
            _ => self.rng.random(),
        }
    }

    /// An `Access` number, unknown ones included.
    pub fn access(&mut self) -> i32 {
        self.pick(&ACCESS)
    }

    /// A `Whence` number, unknown ones included.
    pub fn whence(&mut self) -> i32 {
        self.pick(&WHENCE)
    }

    /// An `Advice` number, refused and unknown ones included.
    pub fn advice(&mut self) -> i32 {
        self.pick(&ADVICE)
    }

    /// A hostile string: from the list, long, or random characters.
    pub fn string(&mut self) -> String {
        match self.below(10) {
            0..=5 => self.pick(&STRINGS).to_owned(),
            6 => self.pick(&self.long.clone()),
            _ => {
                let n = self.rng.random_range(1..24);
                (0..n)
                    .map(|_| match self.below(3) {
                        0 => self.rng.random_range(' '..='~'),
                        1 => self.rng.random_range('\0'..'\u{20}'),
                        _ => self.rng.random::<char>(),
                    })
                    .collect()
            }
        }
    }

    /// Bytes of an odd size (up to 70 KB).
    pub fn bytes(&mut self) -> Bytes {
        let page = self.page as usize;
        let n = match self.below(8) {
            0 => 0,
            1 => 1,
            2 => self.pick(&[3, 7, 255, 256, 257]),
            3 => self.pick(&[page - 1, page, page + 1]),
            4 => self.pick(&[65_535, 65_536, 70_001]),
            _ => self.rng.random_range(2..600),
        };
        self.fill(n)
    }

    /// `n` random bytes.
    pub fn fill(&mut self, n: usize) -> Bytes {
        let mut data = vec![0u8; n];
        self.rng.fill(&mut data[..]);
        data.into()
    }

    /// A payload just over the server's message limit.
    pub fn oversize(&mut self) -> Bytes {
        let extra = self.below(64);
        self.oversize.slice(..OVERSIZE - 64 + extra)
    }

    /// Random bits.
    pub fn bits(&mut self) -> u64 {
        self.rng.random()
    }
}

/// CPython's slice resolution (`PySlice_AdjustIndices`): how many bytes
/// `m[start:stop:step]` selects, or `None` when the step is 0.
pub fn slice_count(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    len: i64,
) -> Option<i64> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return None;
    }
    let step = step.max(-i64::MAX);
    let adjust = |v: Option<i64>, default: i64, lo: i64, hi: i64| match v {
        None => default,
        Some(v) if v < 0 => (v.saturating_add(len)).max(lo),
        Some(v) => v.min(hi),
    };
    let (start, stop) = if step > 0 {
        (adjust(start, 0, 0, len), adjust(stop, len, 0, len))
    } else {
        (
            adjust(start, len - 1, -1, len - 1),
            adjust(stop, -1, -1, len - 1),
        )
    };
    let count = if step > 0 && start < stop {
        (stop - start - 1) / step + 1
    } else if step < 0 && stop < start {
        (start - stop - 1) / (-step) + 1
    } else {
        0
    };
    Some(count)
}
