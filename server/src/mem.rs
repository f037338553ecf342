//! The only module that touches mapped memory, and so the only one allowed
//! `unsafe`. Everything else reaches mapped bytes through [`Region`]'s
//! scoped accessors, which is where SIGBUS protection and zero-copy reads
//! will live.
//!
//! Soundness rests on two rules the rest of the server keeps:
//! - a `Region` is only reached through the `RwLock` of its mapping, so
//!   `&Region` (shared read) and `&mut Region` (exclusive write, remap) are
//!   never held at the same time inside this process;
//! - slices handed to closures never escape them, so a remap cannot leave a
//!   dangling slice behind.
//!
//! Other processes (or other mappings of the same file) may still change the
//! bytes underneath; like every mmap user we treat that as a data race on
//! plain bytes, never on Rust invariants: we only copy bytes in and out.
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

    /// Runs `f` over the bytes in `range`.
    ///
    /// # Panics
    /// If `range` is not within the region (a bug in the caller's checks).
    pub fn with_bytes<R>(&self, range: Range<usize>, f: impl FnOnce(&[u8]) -> R) -> R {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "range outside region"
        );
        // SAFETY: the range is inside the live mapping (checked above); the
        // caller holds a shared lock, so no `&mut Region` exists and no remap
        // can run while the slice lives; the slice does not outlive `f`.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(range.start), range.end - range.start)
        };
        f(bytes)
    }

    /// Runs `f` over the bytes in `range`, mutably.
    ///
    /// # Panics
    /// If `range` is not within the region, or the region is read-only.
    pub fn with_bytes_mut<R>(&mut self, range: Range<usize>, f: impl FnOnce(&mut [u8]) -> R) -> R {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "range outside region"
        );
        assert!(
            self.sharing != Sharing::SharedRead,
            "write to a read-only region"
        );
        // SAFETY: as in `with_bytes`, and `&mut self` proves exclusive
        // access within this process; the pages are mapped writable.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_mut_ptr().add(range.start),
                range.end - range.start,
            )
        };
        f(bytes)
    }

    /// Copies the bytes in `range` out.
    pub fn copy_out(&self, range: Range<usize>) -> Vec<u8> {
        self.with_bytes(range, <[u8]>::to_vec)
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
