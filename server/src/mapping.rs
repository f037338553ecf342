//! One mapped region: a file under the data root or a memfd-backed anonymous
//! region, shared by every handle that attached to it. Creation follows
//! CPython's `mmap.mmap()` checks in CPython's order, so errors match.
#![forbid(unsafe_code)]

use std::{
    fs::File,
    os::fd::AsFd,
    sync::{
        Arc, Weak,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use parking_lot::{Mutex, RwLock};
use rustix::io::Errno;

use crate::{
    error::{Error, Result},
    mem::{self, Region, Sharing},
    quota::Claim,
};

/// CPython's access modes, with Python's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `ACCESS_DEFAULT`: read-write shared.
    Default = 0,
    /// `ACCESS_READ`.
    Read = 1,
    /// `ACCESS_WRITE`: write-through shared.
    Write = 2,
    /// `ACCESS_COPY`: private copy on write.
    Copy = 3,
}

impl Access {
    /// Python's `access=` argument, rejected as CPython rejects it.
    pub fn from_python(value: i32) -> Result<Access> {
        match value {
            0 => Ok(Access::Default),
            1 => Ok(Access::Read),
            2 => Ok(Access::Write),
            3 => Ok(Access::Copy),
            _ => Err(Error::BadValue("mmap invalid access parameter.".into())),
        }
    }

    /// Whether CPython lets this access mode modify the bytes.
    pub fn writable(self) -> bool {
        self != Access::Read
    }

    /// Whether CPython lets this access mode resize.
    pub fn resizable(self) -> bool {
        matches!(self, Access::Default | Access::Write)
    }

    /// Whether the bytes go back to the file (and so need msync).
    pub fn writes_through(self) -> bool {
        self.resizable()
    }
}

/// Where a mapping's bytes live.
#[derive(Debug, Clone)]
pub enum Backing {
    /// A file; `path` is relative to the data root.
    File {
        /// Path relative to the data root, as shown to clients.
        path: String,
    },
    /// A memfd, so the region can grow without SIGBUS (CPython's anonymous
    /// maps cannot).
    Anonymous,
}

/// Every live mapping of one file (inode), under whatever names. Shrinking
/// the file under another mapping would SIGBUS the whole server, so the
/// creations and resizes of one file serialize on its group and a resize
/// may not cut below another member's end.
#[derive(Debug, Default)]
pub struct FileGroup {
    members: Mutex<Vec<Weak<Mapping>>>,
    /// The folders (inodes) on the paths the file was mapped by: a Files
    /// call may not remove or rename them while the group lives, whatever
    /// path (or symlink) it names them by.
    folders: Mutex<Vec<(u64, u64)>>,
}

impl FileGroup {
    /// The live mappings of the file.
    pub fn live(&self) -> Vec<Arc<Mapping>> {
        self.members
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Adds the folders on one more path the file is mapped by.
    pub fn add_folders(&self, folders: impl IntoIterator<Item = (u64, u64)>) {
        let mut held = self.folders.lock();
        for folder in folders {
            if !held.contains(&folder) {
                held.push(folder);
            }
        }
    }

    /// The folders on the paths the file is mapped by.
    pub fn folders(&self) -> Vec<(u64, u64)> {
        self.folders.lock().clone()
    }
}

/// What a new mapping is made of, after the arguments were checked.
#[derive(Debug)]
pub struct Spec {
    /// Registry name.
    pub name: String,
    /// File or memfd.
    pub backing: Backing,
    /// The open file (or memfd).
    pub file: File,
    /// Whether the file is open read-write.
    pub file_writable: bool,
    /// Length requested (0 = to the end of the file).
    pub length: i64,
    /// Offset in the file.
    pub offset: i64,
    /// The access of the creating handle.
    pub access: Access,
    /// The other mappings of the same file; `None` when anonymous.
    pub group: Option<Arc<FileGroup>>,
    /// The mapping's slot in the server's budgets.
    pub claim: Claim,
}

/// A live mapping.
#[derive(Debug)]
pub struct Mapping {
    name: String,
    backing: Backing,
    file: File,
    offset: u64,
    access: Access,
    file_writable: bool,
    /// Whether `file` is a regular file, whose page cache is what a shared
    /// mapping of it maps.
    regular: bool,
    region: RwLock<Region>,
    handles: AtomicU32,
    /// `offset + len`, readable without the region lock by the group's
    /// shrink check.
    end: AtomicU64,
    group: Option<Arc<FileGroup>>,
    /// Dropped with the mapping, which gives its budgets back.
    claim: Claim,
}

impl Mapping {
    /// Checks the arguments as `mmap.mmap(fd, length, access=, offset=)` does
    /// and maps. `spec.length`/`spec.offset` signs were checked by the caller
    /// (they come before opening the file in CPython's flow).
    pub fn create(spec: Spec) -> Result<Arc<Mapping>> {
        let group = spec.group.clone();
        // Hold the group so no sibling shrinks the file between our size
        // check and our mmap.
        let mut members = group.as_ref().map(|g| g.members.lock());
        let mapping = Arc::new(Self::create_unlocked(spec)?);
        if let Some(members) = members.as_mut() {
            members.retain(|m| m.strong_count() > 0);
            members.push(Arc::downgrade(&mapping));
        }
        Ok(mapping)
    }

    fn create_unlocked(spec: Spec) -> Result<Mapping> {
        let Spec {
            name,
            backing,
            file,
            file_writable,
            length,
            offset,
            access,
            group,
            claim,
        } = spec;
        let mut len = length;
        let path = match &backing {
            Backing::File { path } => Some(path.as_str()),
            Backing::Anonymous => None,
        };
        let mut regular = false;
        if path.is_some() {
            let meta = file.metadata().map_err(|e| Error::os(&e, path))?;
            let file_size = meta.len() as i64;
            regular = meta.is_file();
            if regular {
                if len == 0 {
                    if file_size == 0 {
                        return Err(Error::BadValue("cannot mmap an empty file".into()));
                    }
                    if offset >= file_size {
                        return Err(Error::PastEnd(
                            "mmap offset is greater than file size".into(),
                        ));
                    }
                    len = file_size - offset;
                } else if offset > file_size || file_size - offset < len {
                    return Err(Error::PastEnd(
                        "mmap length is greater than file size".into(),
                    ));
                }
            }
        }
        // The kernel's own checks, made here because memmap2 would quietly
        // align the offset and accept a zero length.
        if len == 0 || !(offset as u64).is_multiple_of(mem::page_size() as u64) {
            return Err(Error::errno(Errno::INVAL.raw_os_error()));
        }
        let sharing = match access {
            Access::Copy => Sharing::Private,
            Access::Read | Access::Default | Access::Write if !file_writable => Sharing::SharedRead,
            Access::Read | Access::Default | Access::Write => Sharing::SharedWrite,
        };
        // Whole-file lengths are only known here; an anonymous region or a
        // private copy is charged in full, as every page may become RAM.
        claim.usage().check_length(len as u64)?;
        if access == Access::Copy || path.is_none() {
            claim.charge_to(len as u64)?;
        }
        let len = usize::try_from(len).map_err(|_| Error::errno(Errno::NOMEM.raw_os_error()))?;
        // MAP_ANONYMOUS ignores the offset; our memfd stand-in holds just
        // `len` bytes, so it is mapped from 0 (mapping at the offset would
        // put every page past the memfd's end: SIGBUS).
        let file_offset = if path.is_some() { offset as u64 } else { 0 };
        let region = Region::map(&file, file_offset, len, sharing)?;
        Ok(Mapping {
            name,
            backing,
            file,
            offset: offset as u64,
            access,
            file_writable,
            regular,
            region: RwLock::new(region),
            handles: AtomicU32::new(0),
            end: AtomicU64::new(file_offset + len as u64),
            group,
            claim,
        })
    }

    /// The registry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path relative to the data root, or `None` when anonymous.
    pub fn path(&self) -> Option<&str> {
        match &self.backing {
            Backing::File { path } => Some(path),
            Backing::Anonymous => None,
        }
    }

    /// Offset of the region in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Access of the handle that created it.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether handles that write may attach (the file is open read-write).
    pub fn file_writable(&self) -> bool {
        self.file_writable
    }

    /// Whether this mapping is private to one handle (ACCESS_COPY).
    pub fn is_private(&self) -> bool {
        self.access == Access::Copy
    }

    /// Current length.
    pub fn len(&self) -> u64 {
        self.region.read().len() as u64
    }

    /// Whether the length is 0 (never, for a live mapping).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `m.size()`: the file's size, or the length of an anonymous region.
    pub fn file_size(&self) -> Result<u64> {
        match &self.backing {
            Backing::Anonymous => Ok(self.len()),
            Backing::File { .. } => rustix::fs::fstat(self.file.as_fd())
                .map(|st| st.st_size as u64)
                .map_err(|e| Error::errno(e.raw_os_error())),
        }
    }

    /// The file to `pwrite` whole pages of large writes into (see
    /// [`Region::write_at`]): a regular file's, never a memfd's, which keeps
    /// anonymous regions on the plain copy.
    pub(crate) fn page_cache(&self) -> Option<&File> {
        match self.backing {
            Backing::File { .. } if self.regular => Some(&self.file),
            Backing::File { .. } | Backing::Anonymous => None,
        }
    }

    /// The region lock. Readers share it; writes and resizes take it
    /// exclusively, so different mappings never contend.
    pub(crate) fn region(&self) -> &RwLock<Region> {
        &self.region
    }

    /// The error of an access to this mapping that faulted.
    pub fn broken(&self) -> Error {
        Error::Broken {
            name: self.name.clone(),
        }
    }

    /// Where a region of `len` bytes ends in the file (memfds map from 0).
    fn extent(&self, len: u64) -> u64 {
        match self.backing {
            Backing::File { .. } => self.offset + len,
            Backing::Anonymous => len,
        }
    }

    /// Reserves the blocks a resize to `new_len` will need.
    pub fn reserve(&self, new_len: u64) -> Result<()> {
        let current = self.file.metadata().map_err(|e| Error::os(&e, None))?.len();
        reserve(&self.file, current, self.extent(new_len))
    }

    /// `fdatasync`: every page dirtied through any mapping of the file is on
    /// disk when it returns.
    pub fn sync_data(&self) -> Result<()> {
        match self.backing {
            Backing::File { .. } => self.file.sync_data().map_err(|e| Error::os(&e, None)),
            Backing::Anonymous => Ok(()),
        }
    }

    /// Resizes the file (or memfd) and the region; CPython's errors, but
    /// all or nothing. The caller holds the write lock and passes the
    /// region in.
    pub(crate) fn resize_locked(&self, region: &mut Region, new_len: u64) -> Result<()> {
        if region.is_broken() {
            return Err(self.broken());
        }
        let file_len = self.extent(new_len);
        let members = self.group.as_ref().map(|g| g.members.lock());
        // CPython would truncate under the sibling and crash on its next
        // access; refuse instead, before anything changes.
        let blocker = members
            .iter()
            .flat_map(|m| m.iter())
            .filter_map(Weak::upgrade)
            .find(|m| {
                !std::ptr::eq(Arc::as_ptr(m), self) && m.end.load(Ordering::Acquire) > file_len
            });
        if let Some(other) = blocker {
            return Err(Error::InUse {
                other: other.name.clone(),
                end: other.end.load(Ordering::Acquire),
            });
        }
        // Nothing half-done, and never a page past the end: a growing file
        // grows before the region, a shrinking one after it, and a failure
        // of the second step undoes the first.
        let old_len = self.file.metadata().map_err(|e| Error::os(&e, None))?.len();
        let old_region = region.len();
        let remap = |region: &mut Region, len: usize| match region.resize(&self.file, len) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::os(&e, None)),
            Err(mem::Broken) => Err(self.broken()),
        };
        if file_len >= old_len {
            self.file
                .set_len(file_len)
                .map_err(|e| Error::os(&e, None))?;
            if let Err(err) = remap(region, new_len as usize) {
                // Cutting back to the old length needs no space.
                if let Err(undo) = self.file.set_len(old_len) {
                    tracing::error!(name = %self.name, %undo, "cannot restore the file length");
                }
                return Err(err);
            }
        } else {
            remap(region, new_len as usize)?;
            if let Err(e) = self.file.set_len(file_len) {
                // The file still has its old length, so the old region fits.
                if let Err(undo) = remap(region, old_region) {
                    tracing::error!(name = %self.name, %undo, "cannot restore the region length");
                }
                return Err(Error::os(&e, None));
            }
        }
        self.end.store(file_len, Ordering::Release);
        Ok(())
    }

    /// A private (ACCESS_COPY) mapping of the same bytes, for a handle that
    /// attaches by name with copy access.
    pub fn private_copy(&self, name: String) -> Result<Arc<Mapping>> {
        let claim = self.claim.usage().claim()?;
        claim.charge_to(self.len())?;
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::os(&e, self.path()))?;
        Mapping::create(Spec {
            name,
            backing: self.backing.clone(),
            file,
            file_writable: self.file_writable,
            length: self.len() as i64,
            offset: self.offset as i64,
            access: Access::Copy,
            group: self.group.clone(),
            claim,
        })
    }

    /// The mapping's budgets: its anonymous bytes are charged on resize.
    pub fn claim(&self) -> &Claim {
        &self.claim
    }

    /// Counts a new handle.
    pub fn attach(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts a handle; true when it was the last one.
    pub fn detach(&self) -> bool {
        self.handles.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Handles attached.
    pub fn handles(&self) -> u32 {
        self.handles.load(Ordering::Acquire)
    }

    /// Writes every dirty page back (msync of the whole region). Private and
    /// read-only mappings have nothing to write back.
    pub fn flush_all(&self) -> Result<()> {
        let region = self.region.read();
        // A broken region is anonymous memory now: nothing of it goes back.
        if region.sharing() != Sharing::SharedWrite || region.is_broken() {
            return Ok(());
        }
        region
            .flush(0, region.len())
            .map_err(|e| Error::os(&e, None))
    }
}

/// Allocates the blocks of `from..to` without changing the file's size, so
/// that pages later faulted in there cannot hit a full disk (SIGBUS). File
/// systems without fallocate keep today's sparse behaviour.
pub fn reserve(file: &File, from: u64, to: u64) -> Result<()> {
    if to <= from {
        return Ok(());
    }
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, from, to - from) {
        Ok(()) | Err(Errno::OPNOTSUPP | Errno::NOSYS) => Ok(()),
        Err(e) => Err(Error::errno(e.raw_os_error())),
    }
}
