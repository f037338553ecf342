//! The only module that touches mapped memory, and so the only one allowed
//! `unsafe`. Everything else reaches mapped bytes through [`Region`]'s
//! scoped accessors, which is where SIGBUS protection and zero-copy reads
//! will live.
//!
//! Soundness rests on three rules the rest of the server keeps:
//! - a `Region` is only reached through the `RwLock` of its mapping, so
//!   `&Region` (shared read) and `&mut Region` (exclusive write, remap) are
//!   never held at the same time inside this process;
//! - slices handed to closures never escape them, so a remap cannot leave a
//!   dangling slice behind;
//! - writes go through raw-pointer copies, never `&mut [u8]`, because other
//!   mappings of the same file (and other processes) share the pages.
//!
//! What remains is the caveat of every mmap reader: bytes under a `&[u8]`
//! scan may change if another mapping of the file writes them meanwhile.
//! A file truncated under a mapping by another process still raises SIGBUS;
//! guarding against that is planned here.
#![allow(unsafe_code)]

use std::{fs::File, io, ops::Range};

use memmap2::{MmapOptions, MmapRaw, RemapOptions};
use rustix::mm::Advice;

/// How the pages are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// `MAP_SHARED`, `PROT_READ | PROT_WRITE`: the file needs read-write.
    SharedWrite,
    /// `MAP_SHARED`, `PROT_READ`.
    SharedRead,
    /// `MAP_PRIVATE`, `PROT_READ | PROT_WRITE`: copy on write.
    Private,
}

/// One mapped region of a file (or memfd).
#[derive(Debug)]
pub struct Region {
    map: MmapRaw,
    sharing: Sharing,
}

impl Region {
    /// Maps `len` bytes of `file` at `offset`. The caller has already checked
    /// what CPython checks (length, offset alignment, file size), so a
    /// failure here is the kernel's.
    pub fn map(file: &File, offset: u64, len: usize, sharing: Sharing) -> io::Result<Region> {
        let mut opts = MmapOptions::new();
        opts.offset(offset).len(len);
        let map = match sharing {
            Sharing::SharedWrite => opts.map_raw(file)?,
            Sharing::SharedRead => opts.map_raw_read_only(file)?,
            // SAFETY: the private map's pages are ours alone once written;
            // until then they alias the file, which the module doc covers.
            Sharing::Private => MmapRaw::from(unsafe { opts.map_copy(file)? }),
        };
        Ok(Region { map, sharing })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the region has no bytes (never true for a live mapping).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// How the region is shared.
    pub fn sharing(&self) -> Sharing {
        self.sharing
    }

    fn check(&self, at: usize, len: usize) {
        assert!(
            at <= self.len() && len <= self.len() - at,
            "range outside region"
        );
    }

    /// Runs `f` over the bytes in `range`, for scans (find, readline,
    /// strided slices) that would be wasteful as a copy.
    ///
    /// # Panics
    /// If `range` is not within the region (a bug in the caller's checks).
    pub fn with_bytes<R>(&self, range: Range<usize>, f: impl FnOnce(&[u8]) -> R) -> R {
        assert!(range.start <= range.end, "range outside region");
        self.check(range.start, range.end - range.start);
        // SAFETY: the range is inside the live mapping (checked above); the
        // caller holds the region's shared lock, so no remap can run while
        // the slice lives, and the slice does not outlive `f`. Within this
        // `Region` nothing writes meanwhile (writers need `&mut`). Another
        // mapping of the same file (or another process) may still write the
        // same pages: the caveat every mmap reader lives with. Mutation in
        // this module never creates `&mut [u8]` (it copies through raw
        // pointers), so at least no Rust reference of ours is ever written.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(range.start), range.end - range.start)
        };
        f(bytes)
    }

    /// Copies the bytes in `range` out.
    pub fn copy_out(&self, range: Range<usize>) -> Vec<u8> {
        assert!(range.start <= range.end, "range outside region");
        let len = range.end - range.start;
        self.check(range.start, len);
        let mut out = Vec::with_capacity(len);
        // SAFETY: the source range is inside the live mapping (checked), the
        // shared lock keeps it mapped, and `out` has `len` bytes of capacity
        // that cannot overlap a mapping we own.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(range.start),
                out.as_mut_ptr(),
                len,
            );
            out.set_len(len);
        }
        out
    }

    /// The byte at `at`.
    pub fn byte(&self, at: usize) -> u8 {
        self.check(at, 1);
        // SAFETY: `at` is inside the live mapping (checked); shared lock held.
        unsafe { self.map.as_ptr().add(at).read() }
    }

    fn check_writable(&self, at: usize, len: usize) {
        self.check(at, len);
        assert!(
            self.sharing != Sharing::SharedRead,
            "write to a read-only region"
        );
    }

    /// Copies `src` into the region at `at`.
    pub fn write_at(&mut self, at: usize, src: &[u8]) {
        self.check_writable(at, src.len());
        // SAFETY: the destination is inside the live, writable mapping
        // (checked); `&mut self` means no slice of ours points into it and
        // no remap runs; `src` is a caller's buffer, not mapped by us.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.map.as_mut_ptr().add(at), src.len())
        }
    }

    /// Sets the byte at `at`.
    pub fn set_byte(&mut self, at: usize, value: u8) {
        self.check_writable(at, 1);
        // SAFETY: as in `write_at`.
        unsafe { self.map.as_mut_ptr().add(at).write(value) }
    }

    /// `memmove` of `count` bytes from `src` to `dest` within the region.
    pub fn copy_within(&mut self, src: usize, dest: usize, count: usize) {
        self.check_writable(src, count);
        self.check_writable(dest, count);
        // SAFETY: both ranges are inside the live, writable mapping
        // (checked); `ptr::copy` allows overlap, like memmove.
        unsafe {
            let base = self.map.as_mut_ptr();
            std::ptr::copy(base.add(src), base.add(dest), count);
        }
    }

    /// `msync(MS_SYNC)` of a page-aligned range inside the region.
    pub fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }

    /// `madvise` on `offset..offset+len`, passed to the kernel unaligned, as
    /// CPython does, so the kernel's EINVAL is the same.
    pub fn advise(&self, offset: usize, len: usize, advice: Advice) -> io::Result<()> {
        assert!(
            offset <= self.len() && len <= self.len() - offset,
            "range outside region"
        );
        // SAFETY: the range is inside our mapping. The advice values that can
        // discard data (MADV_REMOVE) or change fork behaviour are refused by
        // the caller; MADV_DONTNEED/MADV_FREE on shared pages only drop
        // clean copies (the file or memfd keeps the data), and on a private
        // map they drop the handle's own copy, exactly as CPython does.
        unsafe { rustix::mm::madvise(self.map.as_mut_ptr().add(offset).cast(), len, advice) }
            .map_err(io::Error::from)
    }

    /// Changes the mapped length with `mremap(MREMAP_MAYMOVE)`. The caller
    /// has already resized the file so no new page lies past its end.
    pub fn resize(&mut self, new_len: usize) -> io::Result<()> {
        // SAFETY: `&mut self` proves no slice into the old mapping is alive
        // (they never escape the accessors), so moving the mapping cannot
        // leave a dangling reference.
        unsafe { self.map.remap(new_len, RemapOptions::new().may_move(true)) }
    }
}

/// The system page size, which is also mmap's allocation granularity.
pub fn page_size() -> usize {
    rustix::param::page_size()
}
