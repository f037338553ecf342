//! A handle: one CPython `mmap` object over a shared [`Mapping`], with its
//! own cursor and access mode. Each method mirrors `Modules/mmapmodule.c`
//! of CPython 3.11: the same argument checks, in the same order, with the
//! same messages, and with CPython's signed (`Py_ssize_t`) arithmetic.
#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use rustix::{io::Errno, mm::Advice};

use crate::{
    error::{Error, Result},
    mapping::{Access, Mapping},
    mem::{self, Broken},
    scan, slice,
};

/// One chunk of a ReadStream.
#[derive(Debug)]
pub struct Chunk {
    /// Where the bytes start in the region.
    pub offset: u64,
    /// The bytes: a view of the mapping, or a copy.
    pub data: Bytes,
    /// Asked after the bytes were sent.
    pub sent: Sent,
}

/// Whether a chunk's bytes were still intact when the encoder copied them
/// (a view is read after [`Handle::read_chunk`] returns).
#[derive(Debug)]
pub struct Sent {
    watch: Option<mem::Watch>,
    mapping: Arc<Mapping>,
}

impl Sent {
    /// MAPPING_BROKEN when the pages under the view were lost (the file
    /// was truncated) while or before they were encoded: the chunk may
    /// have carried zeros, so the stream must not end in success.
    pub fn check(&self) -> Result<()> {
        match &self.watch {
            Some(watch) if watch.broke() => Err(self.mapping.broken()),
            Some(_) | None => Ok(()),
        }
    }
}

/// The cursor of a handle, and whether it is still open.
#[derive(Debug)]
struct Cursor {
    pos: i64,
    open: bool,
}

/// A CPython `mmap` object held by a session.
#[derive(Debug)]
pub struct Handle {
    id: String,
    session_id: String,
    /// The identity owning its session (`None` without access control).
    owner: Option<String>,
    access: Access,
    mapping: Arc<Mapping>,
    cursor: Mutex<Cursor>,
}

/// What `Stat` reports.
#[derive(Debug, Clone)]
pub struct Stat {
    /// `len(m)`.
    pub length: u64,
    /// `m.size()`.
    pub size: u64,
    /// `m.tell()`.
    pub position: u64,
    /// The handle's access.
    pub access: Access,
    /// Registry name.
    pub name: String,
    /// Path relative to the root; empty when anonymous.
    pub path: String,
    /// Offset in the file.
    pub offset: u64,
}

/// Where a streamed read or write starts.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// At the cursor, which advances.
    Cursor,
    /// At a fixed offset; the cursor stays.
    Offset(u64),
}

fn len_of(region: &mem::Region) -> i64 {
    region.len() as i64
}

impl Handle {
    /// A new open handle at position 0.
    pub fn new(
        id: String,
        session_id: String,
        owner: Option<String>,
        access: Access,
        mapping: Arc<Mapping>,
    ) -> Handle {
        Handle {
            id,
            session_id,
            owner,
            access,
            mapping,
            cursor: Mutex::new(Cursor { pos: 0, open: true }),
        }
    }

    /// The handle id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The owning session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The identity owning the handle's session.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The mapping behind the handle.
    pub fn mapping(&self) -> &Arc<Mapping> {
        &self.mapping
    }

    /// Whether the handle is still open (not yet closed by its client,
    /// its session's end or a reload).
    pub fn is_open(&self) -> bool {
        self.cursor.lock().open
    }

    /// `m.close()`; true if this call closed it.
    pub fn close(&self) -> bool {
        std::mem::replace(&mut self.cursor.lock().open, false)
    }

    /// Runs `f` with the cursor of an open handle (CHECK_VALID).
    fn open<R>(&self, f: impl FnOnce(&mut i64) -> Result<R>) -> Result<R> {
        let mut cursor = self.cursor.lock();
        if !cursor.open {
            return Err(Error::Closed);
        }
        f(&mut cursor.pos)
    }

    fn check_writable(&self) -> Result<()> {
        if self.access.writable() {
            Ok(())
        } else {
            Err(Error::AccessDenied(
                "mmap can't modify a readonly memory map.",
            ))
        }
    }

    /// `m.read([n])`.
    pub fn read(&self, n: Option<i64>, max: u64) -> Result<Vec<u8>> {
        self.open(|pos| {
            let region = self.mapping.region().read();
            let len = len_of(&region);
            let remaining = if *pos < len { len - *pos } else { 0 };
            let n = match n {
                Some(n) if (0..=remaining).contains(&n) => n,
                _ => remaining,
            };
            if n as u64 > max {
                return Err(Error::TooLarge { len: n as u64, max });
            }
            let start = (*pos).min(len) as usize;
            let data = region
                .copy_out(start..start + n as usize)
                .map_err(|Broken| self.mapping.broken())?;
            *pos += n;
            Ok(data)
        })
    }

    /// `m.read_byte()`.
    pub fn read_byte(&self) -> Result<u8> {
        self.open(|pos| {
            let region = self.mapping.region().read();
            if *pos >= len_of(&region) {
                return Err(Error::PastEnd("read byte out of range".into()));
            }
            let byte = region
                .byte(*pos as usize)
                .map_err(|Broken| self.mapping.broken())?;
            *pos += 1;
            Ok(byte)
        })
    }

    /// `m.readline()`.
    pub fn readline(&self, max: u64) -> Result<Vec<u8>> {
        self.open(|pos| {
            let region = self.mapping.region().read();
            let len = len_of(&region);
            if *pos >= len {
                return Ok(Vec::new());
            }
            let start = *pos as usize;
            let end = scan::find_byte(&region, start..len as usize, b'\n')
                .map_err(|Broken| self.mapping.broken())?
                .map_or(len as usize, |i| i + 1);
            if (end - start) as u64 > max {
                return Err(Error::TooLarge {
                    len: (end - start) as u64,
                    max,
                });
            }
            let data = region
                .copy_out(start..end)
                .map_err(|Broken| self.mapping.broken())?;
            *pos = end as i64;
            Ok(data)
        })
    }

    /// `m.write(data)`; returns the bytes written.
    pub fn write(&self, data: &[u8]) -> Result<u64> {
        self.write_chunk(At::Cursor, data)?;
        Ok(data.len() as u64)
    }

    /// `m.write_byte(value)`.
    pub fn write_byte(&self, value: i64) -> Result<()> {
        self.open(|pos| {
            // The "b" argument format is checked before the access mode.
            let byte = unsigned_byte(value)?;
            self.check_writable()?;
            let mut region = self.mapping.region().write();
            if *pos >= len_of(&region) {
                return Err(Error::PastEnd("write byte out of range".into()));
            }
            region
                .set_byte(*pos as usize, byte)
                .map_err(|Broken| self.mapping.broken())?;
            *pos += 1;
            Ok(())
        })
    }

    /// `m.seek(pos, whence)`; returns the new position.
    pub fn seek(&self, dist: i64, whence: i32) -> Result<u64> {
        self.open(|pos| {
            let len = self.mapping.len() as i64;
            let out_of_range = || Error::PastEnd("seek out of range".into());
            let target = match whence {
                0 => dist,
                1 => pos.checked_add(dist).ok_or_else(out_of_range)?,
                2 => len.checked_add(dist).ok_or_else(out_of_range)?,
                _ => return Err(Error::BadValue("unknown seek type".into())),
            };
            if target < 0 || target > len {
                return Err(out_of_range());
            }
            *pos = target;
            Ok(target as u64)
        })
    }

    /// `m.tell()`.
    pub fn tell(&self) -> Result<u64> {
        self.open(|pos| Ok(*pos as u64))
    }

    /// `m.size()`.
    pub fn size(&self) -> Result<u64> {
        self.open(|_| self.mapping.file_size())
    }

    /// `len(m)`.
    pub fn length(&self) -> Result<u64> {
        self.open(|_| Ok(self.mapping.len()))
    }

    /// `m.find(sub, start, end)` or `m.rfind(...)`.
    pub fn find(
        &self,
        sub: &[u8],
        start: Option<i64>,
        end: Option<i64>,
        reverse: bool,
    ) -> Result<i64> {
        self.open(|pos| {
            let region = self.mapping.region().read();
            let len = len_of(&region);
            let clamp = |i: i64| {
                let i = if i < 0 { i + len } else { i };
                i.clamp(0, len)
            };
            let start = clamp(start.unwrap_or(*pos));
            let end = clamp(end.unwrap_or(len));
            if end < start {
                return Ok(-1);
            }
            let range = start as usize..end as usize;
            let found = if reverse {
                scan::rfind(&region, range, sub)
            } else {
                scan::find(&region, range, sub)
            };
            let found = found.map_err(|Broken| self.mapping.broken())?;
            Ok(found.map_or(-1, |i| i as i64))
        })
    }

    /// `m.flush([offset[, size]])`: durable on disk when it returns Ok.
    pub fn flush(&self, offset: Option<i64>, size: Option<i64>) -> Result<()> {
        let sync = self.open(|_| {
            let len = self.mapping.len() as i64;
            let offset = offset.unwrap_or(0);
            let size = size.unwrap_or(len);
            if size < 0 || offset < 0 || len - offset < size {
                return Err(Error::PastEnd("flush values out of range".into()));
            }
            if !self.access.writes_through() {
                return Ok(false);
            }
            // msync(2)'s own checks, made here so an unaligned offset fails
            // with CPython's EINVAL.
            if !(offset as usize).is_multiple_of(mem::page_size()) {
                return Err(Error::errno(Errno::INVAL.raw_os_error()));
            }
            Ok(size > 0)
        })?;
        // fdatasync writes back every page dirtied through any mapping of
        // the file, so it needs neither the cursor nor the region lock: a
        // slow disk does not stall readers and writers of this mapping.
        if sync {
            self.mapping.sync_data()
        } else {
            Ok(())
        }
    }

    /// `m.move(dest, src, count)`.
    pub fn move_(&self, dest: i64, src: i64, count: i64) -> Result<()> {
        self.open(|_| {
            self.check_writable()?;
            let mut region = self.mapping.region().write();
            let len = len_of(&region);
            if dest < 0 || src < 0 || count < 0 || len - dest < count || len - src < count {
                return Err(Error::PastEnd(
                    "source, destination, or count out of range".into(),
                ));
            }
            let (dest, src, count) = (dest as usize, src as usize, count as usize);
            region
                .copy_within(src, dest, count)
                .map_err(|Broken| self.mapping.broken())
        })
    }

    /// `m.resize(new_size)`; applies to every handle of the mapping.
    pub fn resize(&self, new_size: i64) -> Result<u64> {
        self.open(|_| {
            if !self.access.resizable() {
                return Err(Error::AccessDenied(
                    "mmap can't resize a readonly or copy-on-write memory map.",
                ));
            }
            let offset = self.mapping.offset() as i64;
            if new_size < 0 || i64::MAX - new_size < offset {
                return Err(Error::BadValue("new size out of range".into()));
            }
            // CPython truncates the file and then fails in mremap, leaving a
            // map that SIGBUSes; refusing up front loses nothing.
            if new_size == 0 {
                return Err(Error::BadValue(
                    "new size out of range: cannot resize to 0 bytes".into(),
                ));
            }
            // The server's quotas come after CPython's checks, and before
            // any memory is reserved.
            let claim = self.mapping.claim();
            claim.usage().check_length(new_size as u64)?;
            let anonymous = self.mapping.path().is_none();
            let growth = anonymous.then(|| claim.grow(new_size as u64)).transpose()?;
            // Reserve the blocks before taking the lock: a full disk fails
            // here, cleanly, instead of as SIGBUS on a later page fault.
            self.mapping.reserve(new_size as u64)?;
            let mut region = self.mapping.region().write();
            self.mapping.resize_locked(&mut region, new_size as u64)?;
            if let Some(growth) = growth {
                growth.settle(new_size as u64);
            }
            Ok(new_size as u64)
        })
    }

    /// `m.madvise(option[, start[, length]])`.
    pub fn madvise(&self, option: i32, start: Option<i64>, length: Option<i64>) -> Result<()> {
        self.open(|_| {
            let region = self.mapping.region().read();
            let len = len_of(&region);
            let start = start.unwrap_or(0);
            let mut length = length.unwrap_or(len);
            if start < 0 || start >= len {
                return Err(Error::PastEnd("madvise start out of bounds".into()));
            }
            if length < 0 {
                return Err(Error::BadValue("madvise length invalid".into()));
            }
            if i64::MAX - start < length {
                return Err(Error::Overflow("madvise length too large".into()));
            }
            if start + length > len {
                length = len - start;
            }
            let advice = safe_advice(option)?;
            region
                .advise(start as usize, length as usize, advice)
                .map_err(|Broken| self.mapping.broken())?
                .map_err(|e| Error::os(&e, None))
        })
    }

    /// `m[index]`.
    pub fn get_item(&self, index: i64) -> Result<u8> {
        self.open(|_| {
            let region = self.mapping.region().read();
            let i = item_index(index, len_of(&region))?;
            region.byte(i).map_err(|Broken| self.mapping.broken())
        })
    }

    /// `m[index] = value`.
    pub fn set_item(&self, index: i64, value: i64) -> Result<()> {
        self.open(|_| {
            self.check_writable()?;
            let mut region = self.mapping.region().write();
            let i = item_index(index, len_of(&region))?;
            if !(0..=255).contains(&value) {
                return Err(Error::BadValue(
                    "mmap item value must be in range(0, 256)".into(),
                ));
            }
            region
                .set_byte(i, value as u8)
                .map_err(|Broken| self.mapping.broken())
        })
    }

    /// `m[start:stop:step]`.
    pub fn get_slice(
        &self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        max: u64,
    ) -> Result<Vec<u8>> {
        self.open(|_| {
            let region = self.mapping.region().read();
            let sel = slice::resolve(start, stop, step, len_of(&region))?;
            if sel.count as u64 > max {
                return Err(Error::TooLarge {
                    len: sel.count as u64,
                    max,
                });
            }
            if sel.count == 0 {
                return Ok(Vec::new());
            }
            let data = if sel.step == 1 {
                let s = sel.start as usize;
                region.copy_out(s..s + sel.count)
            } else {
                region.gather(sel.indices(), sel.count)
            };
            data.map_err(|Broken| self.mapping.broken())
        })
    }

    /// `m[start:stop:step] = data`.
    pub fn set_slice(
        &self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        data: &[u8],
    ) -> Result<()> {
        self.open(|_| {
            self.check_writable()?;
            let mut region = self.mapping.region().write();
            let len = region.len();
            let sel = slice::resolve(start, stop, step, len as i64)?;
            if data.len() != sel.count {
                return Err(Error::WrongSize("mmap slice assignment is wrong size"));
            }
            let written = if sel.step == 1 {
                region.write_at(sel.start as usize, data, self.mapping.page_cache())
            } else {
                region.scatter(sel.indices(), data)
            };
            written.map_err(|Broken| self.mapping.broken())
        })
    }

    /// What `Stat` reports.
    pub fn stat(&self) -> Result<Stat> {
        self.open(|pos| {
            Ok(Stat {
                length: self.mapping.len(),
                size: self.mapping.file_size()?,
                position: *pos as u64,
                access: self.access,
                name: self.mapping.name().to_owned(),
                path: self.mapping.path().unwrap_or_default().to_owned(),
                offset: self.mapping.offset(),
            })
        })
    }

    /// The access mode of this handle.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Reads up to `max` bytes for a stream, at the cursor (advancing it) or
    /// at an offset. `limit` is the stream's end; an empty chunk ends it.
    /// A shared file mapping's chunk is a zero-copy view of its pages (see
    /// `mem`), read later by the encoder: the stream must ask the chunk's
    /// [`Sent`] whether that read was intact before it goes on or ends.
    pub fn read_chunk(&self, at: At, limit: u64, max: usize) -> Result<Chunk> {
        self.open(|pos| {
            let region = self.mapping.region().read();
            let len = region.len() as u64;
            let start = match at {
                At::Cursor => (*pos).max(0) as u64,
                At::Offset(o) => o,
            };
            let end = limit.min(len).max(start.min(len));
            let start = start.min(end);
            let n = ((end - start) as usize).min(max);
            let range = start as usize..start as usize + n;
            // Anonymous regions are RAM a view would keep past their
            // close and quota; they are copied, like private maps.
            let (data, watch) = if region.viewable() && self.mapping.path().is_some() {
                let (data, watch) = region.view(range).map_err(|Broken| self.mapping.broken())?;
                (data, Some(watch))
            } else {
                let data = region
                    .copy_out(range)
                    .map_err(|Broken| self.mapping.broken())?;
                (data.into(), None)
            };
            // Like read(): a cursor past the end stays where it is.
            if let (At::Cursor, true) = (at, n > 0) {
                *pos = (start + n as u64) as i64;
            }
            Ok(Chunk {
                offset: start,
                data,
                sent: Sent {
                    watch,
                    mapping: Arc::clone(&self.mapping),
                },
            })
        })
    }

    /// `write()` at the cursor (advancing it), or at a fixed offset for
    /// positional stream writes, with the same checks in CPython's order.
    pub fn write_chunk(&self, at: At, data: &[u8]) -> Result<()> {
        self.open(|pos| {
            self.check_writable()?;
            let mut region = self.mapping.region().write();
            let len = region.len() as u64;
            let start = match at {
                At::Cursor => (*pos).max(0) as u64,
                At::Offset(o) => o,
            };
            if start > len || len - start < data.len() as u64 {
                return Err(Error::PastEnd("data out of range".into()));
            }
            let s = start as usize;
            region
                .write_at(s, data, self.mapping.page_cache())
                .map_err(|Broken| self.mapping.broken())?;
            if let At::Cursor = at {
                *pos = (start + data.len() as u64) as i64;
            }
            Ok(())
        })
    }
}

/// CPython's "b" argument format (unsigned char).
fn unsigned_byte(value: i64) -> Result<u8> {
    if value < 0 {
        Err(Error::Overflow(
            "unsigned byte integer is less than minimum".into(),
        ))
    } else if value > 255 {
        Err(Error::Overflow(
            "unsigned byte integer is greater than maximum".into(),
        ))
    } else {
        Ok(value as u8)
    }
}

fn item_index(index: i64, len: i64) -> Result<usize> {
    let i = if index < 0 { index + len } else { index };
    if i < 0 || i >= len {
        return Err(Error::IndexPastEnd("mmap index out of range"));
    }
    Ok(i as usize)
}

/// Advice a shared server may pass to the kernel. MADV_REMOVE punches holes
/// in the file (data loss), DONTFORK/DOFORK change the server process, and
/// unknown values could be anything a future kernel adds.
fn safe_advice(option: i32) -> Result<Advice> {
    Ok(match option {
        0 => Advice::Normal,
        1 => Advice::Random,
        2 => Advice::Sequential,
        3 => Advice::WillNeed,
        4 => Advice::LinuxDontNeed,
        8 => Advice::LinuxFree,
        12 => Advice::LinuxMergeable,
        13 => Advice::LinuxUnmergeable,
        14 => Advice::LinuxHugepage,
        15 => Advice::LinuxNoHugepage,
        16 => Advice::LinuxDontDump,
        17 => Advice::LinuxDoDump,
        other => return Err(Error::AdviceRefused(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_byte_messages() {
        assert_eq!(
            unsigned_byte(256).unwrap_err().to_string(),
            "unsigned byte integer is greater than maximum"
        );
        assert_eq!(
            unsigned_byte(-1).unwrap_err().to_string(),
            "unsigned byte integer is less than minimum"
        );
        assert_eq!(unsigned_byte(255).unwrap(), 255);
    }

    #[test]
    fn dangerous_advice_is_refused() {
        for option in [9, 10, 11, 100, -1] {
            assert!(matches!(safe_advice(option), Err(Error::AdviceRefused(o)) if o == option));
        }
        assert!(safe_advice(4).is_ok());
    }
}
