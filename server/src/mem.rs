//! The only module that touches mapped memory, and so the only one allowed
//! `unsafe`. Everything else reaches mapped bytes through [`Region`]'s
//! accessors, which copy through raw pointers under a SIGBUS guard.
//!
//! Soundness rests on these rules:
//! - a `Region` is only reached through the `RwLock` of its mapping, so
//!   `&Region` (shared read) and `&mut Region` (exclusive write, remap) are
//!   never held at the same time inside this process;
//! - no `&[u8]` or `&mut [u8]` is ever formed over mapped pages: other
//!   mappings of the same file (and other processes) may write them at any
//!   time, so bytes leave and enter only by raw-pointer copies, and scans
//!   (see `scan.rs`) work on bounded copies;
//! - every access runs inside [`Region::guarded`]. A file truncated under
//!   the mapping (or a hole the disk cannot fill) makes the kernel send
//!   SIGBUS; our handler (the technique of systemd's `sigbus.c`) marks the
//!   region broken, maps an anonymous zero page over the faulting page so
//!   the access can finish, and returns. The accessor then sees the mark
//!   and returns [`Broken`] instead of the zeros, and so does every later or
//!   concurrent access to that region. A SIGBUS outside a guarded access
//!   is a real bug and still kills the process.
//!
//! Only the faulting page is zero-mapped, not the whole region: views of an
//! old area may still be copying its good pages (those below a
//! truncation), and those must stay its bytes. A large copy past the end
//! then faults once per page, and the zero pages split the kernel's area
//! (sequential ones merge); if the kernel has no area left for the split,
//! the handler replaces the whole region instead, which needs none.
//! Nothing is lost that was not already lost: the region is broken, and the
//! pages of a shared mapping stay in the file's page cache.
//!
//! Zero-copy views (ReadStream chunks). A region's pages live in an
//! [`Area`] behind an `Arc`; [`Region::view`] hands out `Bytes` that own a
//! clone of it, so a close or a resize never unmaps memory a view points
//! at: a resize `mremap`s only while no view is alive, else it maps the
//! file afresh and the old area is unmapped with its last view. This is the
//! one place the no-`&[u8]` rule above is relaxed, and only under three
//! conditions that keep it sound in practice:
//! - views exist only over shared file mappings (READ / WRITE / DEFAULT).
//!   A private (COPY) map's pages are our own memory that our own writes
//!   change under the view, and an anonymous region's pages are RAM that
//!   would outlive its quota; both keep the copy path;
//! - a view's bytes are read by exactly one thing: the gRPC encoder's
//!   `memcpy` into its buffer ([`encode_guarded`], installed as the hook
//!   of `mmapd::codec`). Nothing branches on the bytes, so a concurrent
//!   write (by another process, or by a Write on the same mapping after the
//!   view was cut) can only make the chunk show the newer bytes, exactly as
//!   a `read(2)` racing a writer would;
//! - that copy runs under the same SIGBUS guard as every other access. The
//!   encoder finds the area from the view's address in a registry of live
//!   shared areas ([`LISTED`], looked up in normal context, never in the
//!   handler). A fault marks the area broken; the stream checks the mark
//!   (a [`Watch`]) before its next chunk and before its end, so the RPC
//!   ends with MAPPING_BROKEN instead of reporting the zeros as a success.
//!   The hook also tells the encoder that the area broke, and the encoder
//!   then empties that chunk's `data` (see `mmapd::codec`): the client gets
//!   an empty chunk and the error, never the zeros.
//!
//! Submodules: `sigbus` (the handler and process setup, also `unsafe`) and
//! `areas` (the `vm.max_map_count` budget, safe).
#![allow(unsafe_code)]

mod areas;
mod sigbus;

use std::{
    collections::BTreeMap,
    fs::File,
    io,
    ops::Range,
    ptr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
};

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw, RemapOptions};
use parking_lot::RwLock;
use rustix::mm::Advice;

use crate::error::Error;
use areas::{AREAS, Areas};
use sigbus::{Guard, with_guard};

pub(crate) use areas::set_map_area_budget;
pub(crate) use sigbus::{faults_caught, setup_process};

/// How the pages are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// `MAP_SHARED`, `PROT_READ | PROT_WRITE`: the file needs read-write.
    SharedWrite,
    /// `MAP_SHARED`, `PROT_READ`.
    SharedRead,
    /// `MAP_PRIVATE`, `PROT_READ | PROT_WRITE`: copy on write.
    Private,
}

/// An access faulted: the region lost pages under it and is now broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken;

/// Sub-range splits one region may be charged before its advice is applied
/// to the whole region instead.
const MAX_SPLITS_PER_REGION: u32 = 64;

/// Whole-page bytes from which a write to a file region goes through
/// `pwrite` (see [`Region::write_at`]); smaller writes are not worth the two
/// system calls.
const PWRITE_MIN: usize = 64 << 10;

/// One mapped region of a file (or memfd).
#[derive(Debug)]
pub(crate) struct Region {
    /// The pages; views share it, so it may outlive the region.
    area: Arc<Area>,
    sharing: Sharing,
    /// Where the region starts in the file, for a fresh remap.
    offset: u64,
}

/// One `mmap` of a region: what a region and its views keep alive. Dropped
/// (unlisted, then unmapped) with the last of them.
#[derive(Debug)]
struct Area {
    map: MmapRaw,
    /// Set by the SIGBUS handler, through the faulting thread's guard;
    /// shared with the registry and with [`Watch`]es, which may outlive
    /// the area.
    broken: Arc<AtomicBool>,
    /// Extra areas charged for madvise splits.
    splits: AtomicU32,
    areas: &'static Areas,
    /// Whether views may point into it (and so it is in [`LISTED`]).
    viewable: bool,
}

/// The live areas views may point into, by the start of their page span:
/// `start -> (end, broken)`. Read by the encoder hook to find the guard of
/// a view's address; written when an area is mapped, moved or unmapped.
/// Never touched by the signal handler.
static LISTED: RwLock<BTreeMap<usize, (usize, Arc<AtomicBool>)>> = RwLock::new(BTreeMap::new());

impl Area {
    fn new(map: MmapRaw, areas: &'static Areas, viewable: bool) -> Arc<Area> {
        let area = Area {
            map,
            broken: Arc::new(AtomicBool::new(false)),
            splits: AtomicU32::new(0),
            areas,
            viewable,
        };
        area.list();
        Arc::new(area)
    }

    /// The page-aligned address range the kernel maps for the area.
    fn span(&self) -> Range<usize> {
        let page = page_size();
        let start = self.map.as_ptr() as usize;
        let end = (start + self.map.len()).next_multiple_of(page);
        (start & !(page - 1))..end
    }

    fn list(&self) {
        if self.viewable {
            let span = self.span();
            LISTED
                .write()
                .insert(span.start, (span.end, Arc::clone(&self.broken)));
        }
    }

    fn unlist(&self) {
        if self.viewable {
            LISTED.write().remove(&self.span().start);
        }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // Before `map` is dropped (unmapped): once the address range is
        // free the kernel may hand it to a new area, which lists itself.
        self.unlist();
        let splits = self.splits.load(Ordering::Acquire);
        self.areas.release(1 + u64::from(splits));
    }
}

/// Tells a stream whether the area of a view it sent broke (a fault while
/// the encoder copied it), so that it ends with an error, not a success.
#[derive(Debug, Clone)]
pub(crate) struct Watch(Arc<AtomicBool>);

impl Watch {
    /// Whether the watched area lost pages.
    pub(crate) fn broke(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The owner of a view's `Bytes`: keeps its area mapped.
struct View {
    area: Arc<Area>,
    at: usize,
    len: usize,
}

impl AsRef<[u8]> for View {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `at..at + len` was checked to lie inside the area, which
        // stays mapped while this view (holding it) lives. The slice is
        // only ever read by the encoder's guarded copy (module doc, on why
        // a slice over shared pages is tolerated here); `Bytes::from_owner`
        // calls this once, for the pointer and length.
        unsafe { std::slice::from_raw_parts(self.area.map.as_ptr().add(self.at), self.len) }
    }
}

/// The encoder hook (`mmapd::codec::set_view_guard`): runs `encode`, which
/// copies the bytes at `addr`, under the SIGBUS guard of the view area
/// holding `addr`, if there is one. Bytes that are not a view (the copy
/// path's, or a client's) lie in no listed area and are encoded as is.
/// The caller holds the view, so the area found is alive; the `Arc` of its
/// flag is held across the copy for the handler. Returns whether that area
/// is broken after the copy: a fault during it, or one before it that left
/// zero pages the copy read without faulting.
pub(crate) fn encode_guarded(addr: usize, encode: &mut dyn FnMut()) -> bool {
    let found = LISTED
        .read()
        .range(..=addr)
        .next_back()
        .filter(|(_, (end, _))| addr < *end)
        .map(|(&start, (end, broken))| (start, *end, Arc::clone(broken)));
    let Some((start, end, broken)) = found else {
        encode();
        return false;
    };
    let guard = Guard {
        start,
        end,
        broken: &*broken,
    };
    with_guard(guard, encode);
    broken.load(Ordering::SeqCst)
}

impl Region {
    /// Maps `len` bytes of `file` at `offset`. The caller has already checked
    /// what CPython checks (length, offset alignment, file size), so a
    /// failure here is the kernel's, or the area budget's.
    pub(crate) fn map(
        file: &File,
        offset: u64,
        len: usize,
        sharing: Sharing,
    ) -> Result<Region, Error> {
        Self::map_in(&AREAS, file, offset, len, sharing)
    }

    fn map_in(
        areas: &'static Areas,
        file: &File,
        offset: u64,
        len: usize,
        sharing: Sharing,
    ) -> Result<Region, Error> {
        if !areas.charge(1) {
            return Err(Error::Quota {
                limit: "max_map_areas",
                value: areas.budget.load(Ordering::Relaxed),
            });
        }
        match raw_map(file, offset, len, sharing) {
            Ok(map) => Ok(Region {
                area: Area::new(map, areas, viewable(sharing)),
                sharing,
                offset,
            }),
            Err(e) => {
                areas.release(1);
                Err(Error::os(&e, None))
            }
        }
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.area.map.len()
    }

    /// How the region is shared.
    pub(crate) fn sharing(&self) -> Sharing {
        self.sharing
    }

    /// Whether an access faulted; a broken region refuses every access.
    pub(crate) fn is_broken(&self) -> bool {
        self.area.broken.load(Ordering::SeqCst)
    }

    /// The page-aligned address range the kernel maps for the region.
    fn span(&self) -> Range<usize> {
        self.area.span()
    }

    fn check(&self, at: usize, len: usize) {
        assert!(
            at <= self.len() && len <= self.len() - at,
            "range outside region"
        );
    }

    fn check_writable(&self, at: usize, len: usize) {
        self.check(at, len);
        assert!(
            self.sharing != Sharing::SharedRead,
            "write to a read-only region"
        );
    }

    /// Runs `access` (given the region's base pointer) under the SIGBUS
    /// guard; its result is discarded if the region broke meanwhile, on
    /// this thread or any other.
    fn guarded<R>(&self, access: impl FnOnce(*mut u8) -> R) -> Result<R, Broken> {
        if self.is_broken() {
            return Err(Broken);
        }
        let span = self.span();
        let guard = Guard {
            start: span.start,
            end: span.end,
            broken: &*self.area.broken,
        };
        let out = with_guard(guard, || access(self.area.map.as_mut_ptr()));
        if self.is_broken() {
            Err(Broken)
        } else {
            Ok(out)
        }
    }

    /// Copies `dest.len()` bytes at `at` into `dest`.
    pub(crate) fn copy_into(&self, at: usize, dest: &mut [u8]) -> Result<(), Broken> {
        self.check(at, dest.len());
        // SAFETY: the source is inside the live mapping (checked), the
        // shared lock keeps it mapped, and `dest` is a caller's buffer, never
        // mapped by us. A fault is turned into zeros plus `Broken` by the
        // guard; the zeros are discarded by the callers.
        self.guarded(|base| unsafe {
            ptr::copy_nonoverlapping(base.add(at), dest.as_mut_ptr(), dest.len())
        })
    }

    /// Copies the bytes in `range` out.
    pub(crate) fn copy_out(&self, range: Range<usize>) -> Result<Vec<u8>, Broken> {
        assert!(range.start <= range.end, "range outside region");
        let len = range.end - range.start;
        self.check(range.start, len);
        // Not zero-filled first: replies can be 64 MiB.
        let mut out = Vec::with_capacity(len);
        // SAFETY: as in `copy_into`; `out` has `len` bytes of capacity.
        self.guarded(|base| unsafe {
            ptr::copy_nonoverlapping(base.add(range.start), out.as_mut_ptr(), len)
        })?;
        // SAFETY: the copy above initialised all `len` bytes.
        unsafe { out.set_len(len) };
        Ok(out)
    }

    /// The bytes in `range` without copying them: `Bytes` that keep the
    /// area mapped, and the [`Watch`] that tells whether copying them out
    /// later faulted. Only for regions [`Region::viewable`] says may.
    pub(crate) fn view(&self, range: Range<usize>) -> Result<(Bytes, Watch), Broken> {
        assert!(range.start <= range.end, "range outside region");
        assert!(self.area.viewable, "a view of a private or anonymous map");
        self.check(range.start, range.end - range.start);
        if self.is_broken() {
            return Err(Broken);
        }
        let watch = Watch(Arc::clone(&self.area.broken));
        if range.is_empty() {
            return Ok((Bytes::new(), watch));
        }
        let view = View {
            area: Arc::clone(&self.area),
            at: range.start,
            len: range.end - range.start,
        };
        Ok((Bytes::from_owner(view), watch))
    }

    /// Whether [`Region::view`] may be used: shared file mappings only
    /// (the module doc says why).
    pub(crate) fn viewable(&self) -> bool {
        self.area.viewable
    }

    /// The byte at `at`.
    pub(crate) fn byte(&self, at: usize) -> Result<u8, Broken> {
        self.check(at, 1);
        // SAFETY: `at` is inside the live mapping (checked); shared lock held.
        self.guarded(|base| unsafe { base.add(at).read() })
    }

    /// The bytes at `indices`, each inside the region (strided slices).
    pub(crate) fn gather(
        &self,
        indices: impl Iterator<Item = usize>,
        count: usize,
    ) -> Result<Vec<u8>, Broken> {
        let len = self.len();
        let mut out = Vec::with_capacity(count);
        self.guarded(|base| {
            for i in indices.take(count) {
                assert!(i < len, "range outside region");
                // SAFETY: `i` is inside the live mapping (asserted); shared
                // lock held; a plain byte read through a raw pointer.
                out.push(unsafe { base.add(i).read() });
            }
        })?;
        Ok(out)
    }

    /// Copies `src` into the region at `at`.
    ///
    /// `file` is the regular file whose page cache backs the region, if
    /// any. For a shared writable region of one, the whole pages of a large
    /// write go in by `pwrite` instead: stored through the mapping, each
    /// page not yet in memory costs a fault that reads (for a new file,
    /// zero-fills) the page only to overwrite it, while a whole-page
    /// `pwrite` fills the page cache straight from `src`. On Linux the page
    /// cache is the mapping's memory (MAP_SHARED), so readers through this
    /// or any other mapping see the bytes at once, and msync writes them
    /// back like any dirty page. The head and tail pages are copied as
    /// before, and anything `pwrite` does not finish falls back to the copy,
    /// so faults, and the broken region they leave, are what they were.
    pub(crate) fn write_at(
        &mut self,
        at: usize,
        src: &[u8],
        file: Option<&File>,
    ) -> Result<(), Broken> {
        self.check_writable(at, src.len());
        let page = page_size();
        // The region starts on a page of the file (mmap's offset rule), so
        // offsets aligned in the region are aligned in the file too.
        let pages = at.next_multiple_of(page)..(at + src.len()) / page * page;
        let file = file.filter(|_| {
            self.sharing == Sharing::SharedWrite
                && pages.end > pages.start
                && pages.end - pages.start >= PWRITE_MIN
        });
        let Some(file) = file else {
            return self.copy_in(at, src);
        };
        let (head, rest) = src.split_at(pages.start - at);
        let (middle, tail) = rest.split_at(pages.end - pages.start);
        self.copy_in(at, head)?;
        let done = self.write_through(file, pages.start, middle)?;
        self.copy_in(pages.start + done, &middle[done..])?;
        self.copy_in(pages.end, tail)
    }

    /// `pwrite`s `src` at `at` in the region; returns how many bytes went
    /// in (all of them, unless the file is shorter than the region, which
    /// only a truncation behind our back makes it, or the kernel refused).
    fn write_through(&self, file: &File, at: usize, src: &[u8]) -> Result<usize, Broken> {
        use std::os::unix::fs::FileExt;
        if self.is_broken() {
            return Err(Broken);
        }
        let start = self.offset + at as u64;
        // A pwrite past the end would grow the file where the copy would
        // fault. Past this check, only a truncation racing the write can
        // make it grow, and then by at most what we write: still inside the
        // region.
        match file.metadata() {
            Ok(meta) if meta.len() >= start + src.len() as u64 => {}
            Ok(_) | Err(_) => return Ok(0),
        }
        let mut done = 0;
        while done < src.len() {
            match file.write_at(&src[done..], start + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The copy then meets the same trouble (ENOSPC, EIO) as a
                // fault, and so the same error as before.
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// Copies `src` into the region at `at` through the mapping.
    fn copy_in(&mut self, at: usize, src: &[u8]) -> Result<(), Broken> {
        // SAFETY: the destination is inside the live, writable mapping
        // (checked by `write_at`); `&mut self` means no remap runs; `src` is
        // a caller's buffer, not mapped by us.
        self.guarded(|base| unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), base.add(at), src.len())
        })
    }

    /// Sets the byte at `at`.
    pub(crate) fn set_byte(&mut self, at: usize, value: u8) -> Result<(), Broken> {
        self.check_writable(at, 1);
        // SAFETY: as in `copy_in`.
        self.guarded(|base| unsafe { base.add(at).write(value) })
    }

    /// Writes `data[k]` at the k-th of `indices` (strided slice assignment).
    pub(crate) fn scatter(
        &mut self,
        indices: impl Iterator<Item = usize>,
        data: &[u8],
    ) -> Result<(), Broken> {
        self.check_writable(0, 0);
        let len = self.len();
        self.guarded(|base| {
            for (i, &byte) in indices.zip(data) {
                assert!(i < len, "range outside region");
                // SAFETY: `i` is inside the live, writable mapping (asserted).
                unsafe { base.add(i).write(byte) }
            }
        })
    }

    /// `memmove` of `count` bytes from `src` to `dest` within the region.
    pub(crate) fn copy_within(
        &mut self,
        src: usize,
        dest: usize,
        count: usize,
    ) -> Result<(), Broken> {
        self.check_writable(src, count);
        self.check_writable(dest, count);
        // SAFETY: both ranges are inside the live, writable mapping
        // (checked); `ptr::copy` allows overlap, like memmove.
        self.guarded(|base| unsafe { ptr::copy(base.add(src), base.add(dest), count) })
    }

    /// `msync(MS_SYNC)` of a page-aligned range inside the region.
    pub(crate) fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        self.area.map.flush_range(offset, len)
    }

    /// `madvise` on `offset..offset+len`, passed to the kernel unaligned, as
    /// CPython does, so the kernel's EINVAL is the same. An advice that
    /// changes the areas' flags on a sub-range may split the region's area
    /// in three; when the splits would pass the area budget (or the
    /// per-region cap) the advice is applied to the whole region instead,
    /// which never adds areas.
    pub(crate) fn advise(
        &self,
        offset: usize,
        len: usize,
        advice: Advice,
    ) -> Result<io::Result<()>, Broken> {
        self.check(offset, len);
        if self.is_broken() {
            return Err(Broken);
        }
        let base = self.area.map.as_mut_ptr() as usize;
        let span = self.span();
        let start = base + offset;
        let page = page_size();
        let splits = if changes_flags(advice) && start.is_multiple_of(page) && len > 0 {
            u32::from(start > span.start)
                + u32::from((start + len).next_multiple_of(page) < span.end)
        } else {
            0
        };
        let charged = splits > 0 && self.charge_splits(splits);
        let (start, len) = if splits == 0 || charged {
            (start, len)
        } else {
            (base, self.len())
        };
        // SAFETY: the range is inside our mapping. The advice values that can
        // discard data (MADV_REMOVE) or change fork behaviour are refused by
        // the caller; MADV_DONTNEED/MADV_FREE on shared pages only drop
        // clean copies (the file or memfd keeps the data), and on a private
        // map they drop the handle's own copy, exactly as CPython does.
        let advised = unsafe { rustix::mm::madvise(start as *mut _, len, advice) };
        if advised.is_err() && charged {
            // A refused advice split nothing.
            self.area.splits.fetch_sub(splits, Ordering::AcqRel);
            self.area.areas.release(u64::from(splits));
        }
        Ok(advised.map_err(io::Error::from))
    }

    /// Charges `n` more split areas to this region and to the budget, if
    /// both have room.
    fn charge_splits(&self, n: u32) -> bool {
        let area = &self.area;
        let fits = area
            .splits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s + n <= MAX_SPLITS_PER_REGION).then_some(s + n)
            })
            .is_ok();
        if fits && !area.areas.charge(u64::from(n)) {
            area.splits.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        fits
    }

    /// Changes the mapped length. `mremap(MREMAP_MAYMOVE)` first, when no
    /// view shares the area; it also fails when madvise split the region
    /// into several areas. Otherwise the file is mapped afresh at the new
    /// length: the old area goes now, or with its last view (a view of a
    /// shrunk tail then faults in the encoder's guard, never unguarded).
    /// The caller has already resized `file` so no new page lies past its
    /// end. On error the region is unchanged.
    pub(crate) fn resize(&mut self, file: &File, new_len: usize) -> Result<io::Result<()>, Broken> {
        if self.is_broken() {
            return Err(Broken);
        }
        if let Some(area) = Arc::get_mut(&mut self.area) {
            area.unlist();
            // SAFETY: `&mut self` proves no access to the old mapping is
            // running (accessors never let pointers escape), and the area
            // is not shared, so no view points into it: moving it is
            // harmless.
            let moved = unsafe { area.map.remap(new_len, RemapOptions::new().may_move(true)) };
            area.list();
            if moved.is_ok() {
                return Ok(Ok(()));
            }
        }
        match raw_map(file, self.offset, new_len, self.sharing) {
            Ok(fresh) => {
                let areas = self.area.areas;
                // The old area keeps its charge until it is unmapped; the
                // new one is charged past the budget if need be, as it
                // replaces an area (the excess is bounded by the views in
                // flight, which the stream budget bounds).
                areas.charge_anyway(1);
                self.area = Area::new(fresh, areas, self.area.viewable);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

/// Whether views may point into an area of this sharing.
fn viewable(sharing: Sharing) -> bool {
    match sharing {
        Sharing::SharedWrite | Sharing::SharedRead => true,
        Sharing::Private => false,
    }
}

fn raw_map(file: &File, offset: u64, len: usize, sharing: Sharing) -> io::Result<MmapRaw> {
    let mut opts = MmapOptions::new();
    opts.offset(offset).len(len);
    Ok(match sharing {
        Sharing::SharedWrite => opts.map_raw(file)?,
        Sharing::SharedRead => opts.map_raw_read_only(file)?,
        // SAFETY: memmap2 asks us to promise nobody changes the file under a
        // private map; we cannot, which is why no reference is ever formed
        // over its pages (the module doc).
        Sharing::Private => MmapRaw::from(unsafe { opts.map_copy(file)? }),
    })
}

/// Advice that sets flags on the areas it covers, so a sub-range splits.
fn changes_flags(advice: Advice) -> bool {
    matches!(
        advice,
        Advice::Normal
            | Advice::Random
            | Advice::Sequential
            | Advice::LinuxMergeable
            | Advice::LinuxUnmergeable
            | Advice::LinuxHugepage
            | Advice::LinuxNoHugepage
            | Advice::LinuxDontDump
            | Advice::LinuxDoDump
    )
}

/// The system page size, which is also mmap's allocation granularity.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

#[cfg(test)]
mod tests;
