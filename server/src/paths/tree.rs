//! The file-management calls beneath the root: list, stat, mkdir, remove,
//! rename and truncate, with the errors Python's `os` functions raise.
//!
//! Each call is confined as Map's opens are. The folder holding the name
//! it acts on is opened with `RESOLVE_BENEATH`, and the call then acts on
//! the last name relative to that folder, so a folder swapped for a
//! symlink halfway through (the rename race) cannot lead it out of the
//! root. Walks into sub-folders open each one with `O_NOFOLLOW` relative to
//! its parent, so a walk never follows a link either.
//!
//! Knows nothing of mappings: the registry passes a check that refuses
//! to touch files a live mapping uses, and runs it under its own lock.
#![forbid(unsafe_code)]

use std::{
    ffi::CString,
    os::fd::OwnedFd,
    path::{Component, Path},
};

use rustix::{
    fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat},
    io::Errno,
};

use super::{Root, Symlinks, os};
use crate::error::{Error, Result};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link (only when not followed).
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// One file or folder beneath the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the root ("" for the root).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime`, in seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// `st_mode & 0o7777`.
    pub mode: u32,
    /// Where a symlink points, as written.
    pub target: Option<String>,
    /// The inode's identity, `(st_dev, st_ino)`: what mappings are
    /// grouped by.
    pub inode: (u64, u64),
}

impl Entry {
    fn new(path: String, st: &Stat, target: Option<String>) -> Entry {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo
            | FileType::Socket
            | FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Unknown => Kind::Other,
        };
        Entry {
            path,
            kind,
            size: st.st_size.max(0) as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec.clamp(0, 999_999_999) as u32),
            mode: st.st_mode & 0o7777,
            target,
            inode: (st.st_dev, st.st_ino),
        }
    }
}

/// What a Truncate does about a missing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A missing file is FileNotFoundError (`os.truncate`).
    Never,
    /// A missing file is made, then sized like any other.
    IfMissing,
    /// A missing file is made and sized; an existing one is left as it is
    /// (`open(O_CREAT)`, `touch`).
    OnlyNew,
}

/// Which paths a caller may see: a listing shows an entry, and a walk
/// enters a folder, only where this says yes.
pub type Visible<'a> = &'a dyn Fn(&str) -> bool;

/// One page of a listing, and whether more entries follow it.
#[derive(Debug)]
pub struct Listed {
    /// Entries in path order.
    pub entries: Vec<Entry>,
    /// Whether entries past the last one exist.
    pub more: bool,
}

impl Root {
    /// A client path for the calls that accept the root itself: "" and
    /// "." name it, anything else is normalized as Map's paths are.
    pub fn normalize_or_root(path: &str) -> Result<String> {
        if Path::new(path).components().all(|c| c == Component::CurDir) {
            return Ok(String::new());
        }
        Root::normalize(path)
    }

    /// `os.stat`: symlinks inside the root are followed (unless the caller
    /// may not follow them at all).
    pub fn stat(&self, rel: &str, symlinks: Symlinks) -> Result<Entry> {
        let st = if rel.is_empty() {
            rustix::fs::fstat(&self.dir)
        } else {
            self.open_at(rel, OFlags::PATH | OFlags::CLOEXEC, symlinks)
                .and_then(rustix::fs::fstat)
        }
        .map_err(|e| os(e, rel))?;
        Ok(Entry::new(rel.to_owned(), &st, None))
    }

    /// `os.lstat`: a symlink as the last name is described, not followed.
    pub fn lstat(&self, rel: &str, symlinks: Symlinks) -> Result<Entry> {
        if rel.is_empty() {
            return self.stat(rel, symlinks);
        }
        let (parent, name) = self.open_parent(rel, symlinks)?;
        self.lstat_in(&parent, name, rel)
    }

    /// `os.lstat` of a name inside an opened folder.
    fn lstat_in<N: rustix::path::Arg + Copy>(
        &self,
        dir: &OwnedFd,
        name: N,
        path: &str,
    ) -> Result<Entry> {
        let st =
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| os(e, path))?;
        let target = (FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
            .then(|| rustix::fs::readlinkat(dir, name, Vec::new()).ok())
            .flatten()
            .map(|t| t.to_string_lossy().into_owned());
        Ok(Entry::new(path.to_owned(), &st, target))
    }

    /// Opens the folder holding `rel`, beneath the root, and returns it
    /// with `rel`'s last name.
    pub(super) fn open_parent<'a>(
        &self,
        rel: &'a str,
        symlinks: Symlinks,
    ) -> Result<(OwnedFd, &'a str)> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or((".", rel));
        let fd = self
            .open_at(
                parent,
                OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
                symlinks,
            )
            .map_err(|e| os(e, rel))?;
        Ok((fd, name))
    }

    /// One page of the entries beneath the folder `rel` (the whole tree
    /// with `recursive`), in path order, after the path `after`, at most
    /// `limit` of them.
    #[allow(clippy::too_many_arguments)] // one page's parameters; a struct would only rename them
    pub fn list(
        &self,
        rel: &str,
        recursive: bool,
        after: &str,
        limit: usize,
        max_depth: u32,
        symlinks: Symlinks,
        visible: Visible<'_>,
    ) -> Result<Listed> {
        let dir = self
            .open_at(
                if rel.is_empty() { "." } else { rel },
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                symlinks,
            )
            .map_err(|e| os(e, rel))?;
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let mut walk = Walk {
            recursive,
            after,
            limit: limit.max(1),
            max_depth,
            visible,
            out: Vec::new(),
        };
        walk.dir(self, dir, &prefix, 0)?;
        let more = walk.out.len() > walk.limit;
        walk.out.truncate(walk.limit);
        Ok(Listed {
            entries: walk.out,
            more,
        })
    }

    /// `os.mkdir`, or `os.makedirs(exist_ok=True)` with `parents`; says
    /// whether the folder was made.
    pub fn make_dir(&self, rel: &str, parents: bool, symlinks: Symlinks) -> Result<bool> {
        if rel.is_empty() {
            return if parents {
                Ok(false)
            } else {
                Err(os(Errno::EXIST, rel))
            };
        }
        if parents {
            return self.make_dirs(rel, symlinks);
        }
        let (parent, name) = self.open_parent(rel, symlinks)?;
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)).map_err(|e| os(e, rel))?;
        Ok(true)
    }

    /// Removes a file, a symlink or an empty folder, or with `recursive` a
    /// whole tree; returns how many entries went. `check` is asked about
    /// every entry first, and one refusal removes nothing.
    pub fn remove(
        &self,
        rel: &str,
        recursive: bool,
        max_depth: u32,
        symlinks: Symlinks,
        check: &dyn Fn(&Entry) -> Result<()>,
    ) -> Result<u64> {
        if rel.is_empty() {
            return Err(os(Errno::INVAL, rel));
        }
        let (parent, name) = self.open_parent(rel, symlinks)?;
        let entry = self.lstat_in(&parent, name, rel)?;
        check(&entry)?;
        if entry.kind != Kind::Dir {
            rustix::fs::unlinkat(&parent, name, AtFlags::empty()).map_err(|e| os(e, rel))?;
            return Ok(1);
        }
        if !recursive {
            rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR).map_err(|e| os(e, rel))?;
            return Ok(1);
        }
        let dir = open_child(&parent, name).map_err(|e| os(e, rel))?;
        // The check walks as deep as the removal will, so a tree too deep
        // is refused before anything goes.
        self.check_tree(&dir, rel, 0, max_depth, check)?;
        let removed = self.remove_tree(&dir, rel, 0, max_depth)?;
        rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR).map_err(|e| os(e, rel))?;
        Ok(removed + 1)
    }

    fn check_tree(
        &self,
        dir: &OwnedFd,
        path: &str,
        depth: u32,
        max_depth: u32,
        check: &dyn Fn(&Entry) -> Result<()>,
    ) -> Result<()> {
        for name in read_raw_names(dir, path)? {
            let child = format!("{path}/{}", name.to_string_lossy());
            let entry = match self.lstat_in(dir, name.as_c_str(), &child) {
                Err(Error::Os { errno, .. }) if errno == Errno::NOENT.raw_os_error() => continue,
                other => other?,
            };
            check(&entry)?;
            if entry.kind == Kind::Dir {
                too_deep(depth, max_depth)?;
                let sub = open_child(dir, name.as_c_str()).map_err(|e| os(e, &child))?;
                self.check_tree(&sub, &child, depth + 1, max_depth, check)?;
            }
        }
        Ok(())
    }

    fn remove_tree(&self, dir: &OwnedFd, path: &str, depth: u32, max_depth: u32) -> Result<u64> {
        let mut removed = 0;
        for name in read_raw_names(dir, path)? {
            let child = format!("{path}/{}", name.to_string_lossy());
            let name = name.as_c_str();
            let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(os(e, &child)),
            };
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                // Checked already, but the tree may have grown since.
                too_deep(depth, max_depth)?;
                let sub = open_child(dir, name).map_err(|e| os(e, &child))?;
                removed += self.remove_tree(&sub, &child, depth + 1, max_depth)?;
                rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
            } else {
                rustix::fs::unlinkat(dir, name, AtFlags::empty())
            }
            .map_err(|e| os(e, &child))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// `os.rename`, or `os.replace` with `replace`. `check` is asked
    /// about `from`, and about `to` when it exists and would be replaced.
    /// `slashed`: either side was spelled with a trailing `/`, which wants
    /// `from` to be a folder (checked where the kernel checks it: after
    /// both parents and `from` are found).
    #[allow(clippy::too_many_arguments)]
    pub fn rename(
        &self,
        from: &str,
        to: &str,
        replace: bool,
        slashed: bool,
        symlinks: Symlinks,
        check: &dyn Fn(&Entry) -> Result<()>,
    ) -> Result<()> {
        // An escape is found when a folder is opened (PATH_ESCAPE, naming
        // its side); EXDEV from the rename itself is a mount inside the root.
        let fail = |errno: Errno| Error::Rename {
            errno: errno.raw_os_error(),
            from: from.to_owned(),
            to: to.to_owned(),
        };
        let relabel = |err: Error| {
            if let Error::Os { errno, .. } = err {
                fail(Errno::from_raw_os_error(errno))
            } else {
                err
            }
        };
        if from.is_empty() || to.is_empty() {
            return Err(fail(Errno::INVAL));
        }
        let (from_dir, from_name) = self.open_parent(from, symlinks).map_err(relabel)?;
        let (to_dir, to_name) = self.open_parent(to, symlinks).map_err(relabel)?;
        let source = self.lstat_in(&from_dir, from_name, from).map_err(relabel)?;
        if slashed && source.kind != Kind::Dir {
            // The kernel's order: an existing target refused first.
            let taken = !replace && self.lstat_in(&to_dir, to_name, to).is_ok();
            return Err(fail(if taken { Errno::EXIST } else { Errno::NOTDIR }));
        }
        check(&source)?;
        if replace {
            match self.lstat_in(&to_dir, to_name, to) {
                Ok(existing) => check(&existing)?,
                Err(Error::Os { errno, .. }) if errno == Errno::NOENT.raw_os_error() => {}
                Err(err) => return Err(relabel(err)),
            }
        }
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, flags).map_err(fail)
    }

    /// `os.truncate`, and with [`Create`] also the making of a missing
    /// file (and its folders). `check` is asked before a file shrinks.
    pub fn truncate(
        &self,
        rel: &str,
        size: u64,
        create: Create,
        symlinks: Symlinks,
        check: &dyn Fn(&Entry) -> Result<()>,
    ) -> Result<Entry> {
        if rel.is_empty() {
            return Err(os(Errno::ISDIR, rel));
        }
        let make = (create != Create::Never).then_some(0..0);
        let opened = self
            .open_file_with(rel, false, make, symlinks)
            .map_err(|mut err| {
                // Map's word for a FIFO or device; `os.truncate` says EINVAL.
                if let Error::Os { errno, .. } = &mut err
                    && *errno == Errno::NODEV.raw_os_error()
                {
                    *errno = Errno::INVAL.raw_os_error();
                }
                err
            })?;
        let stat = |file: &std::fs::File| {
            rustix::fs::fstat(file)
                .map(|st| Entry::new(rel.to_owned(), &st, None))
                .map_err(|e| os(e, rel))
        };
        let before = stat(&opened.file)?;
        if create == Create::OnlyNew && !opened.created {
            return Ok(before);
        }
        if size < before.size {
            check(&before)?;
        }
        rustix::fs::ftruncate(&opened.file, size).map_err(|e| os(e, rel))?;
        stat(&opened.file)
    }

    /// The inodes of the folders on the way to `rel` (the root not
    /// counted), resolved as an open of `rel` would resolve them. One that
    /// cannot be opened is left out: the Map that asks has just opened
    /// `rel` through all of them.
    pub fn folders_of(&self, rel: &str, symlinks: Symlinks) -> Vec<(u64, u64)> {
        let Some((parents, _)) = rel.rsplit_once('/') else {
            return Vec::new();
        };
        let mut end = 0;
        parents
            .split('/')
            .filter_map(|name| {
                end += name.len() + usize::from(end > 0);
                self.stat(&parents[..end], symlinks).ok().map(|e| e.inode)
            })
            .collect()
    }

    /// Whether `rel` still names the inode `inode`: a Map checks this
    /// after it registered its file, so a Remove or Rename that raced it
    /// is noticed.
    pub fn names(&self, rel: &str, symlinks: Symlinks, inode: (u64, u64)) -> bool {
        self.stat(rel, symlinks).is_ok_and(|e| e.inode == inode)
    }
}

/// A listing walk in path order that stops one entry past its page.
struct Walk<'a> {
    recursive: bool,
    after: &'a str,
    limit: usize,
    max_depth: u32,
    visible: Visible<'a>,
    out: Vec<Entry>,
}

impl Walk<'_> {
    /// Lists the folder `dir`, whose entries' paths start with `prefix`.
    /// A folder's own entry sorts at its path and its contents at its path
    /// plus "/", which is where they fall in plain string order ("a" <
    /// "a.txt" < "a/x"), so the walk yields exact path order and can skip
    /// whole subtrees that lie before the page.
    fn dir(&mut self, root: &Root, dir: OwnedFd, prefix: &str, depth: u32) -> Result<()> {
        enum Item {
            Entry(String),
            Tree(String),
        }
        // Names and kinds come from the folder read itself (d_type); only
        // the entries this page returns are stat'ed, so a page costs a sort
        // of the names, not a stat of every entry before it.
        let mut items = Vec::new();
        for (name, is_dir) in read_entries(&dir, prefix)? {
            let path = format!("{prefix}{name}");
            let is_dir = match is_dir {
                Some(is_dir) => is_dir,
                None => match root.lstat_in(&dir, &name, &path) {
                    Ok(entry) => entry.kind == Kind::Dir,
                    // Removed since it was read: as if never there.
                    Err(Error::Os { errno, .. }) if errno == Errno::NOENT.raw_os_error() => {
                        continue;
                    }
                    Err(err) => return Err(err),
                },
            };
            if self.recursive && is_dir {
                items.push((format!("{path}/"), Item::Tree(name.clone())));
            }
            items.push((path, Item::Entry(name)));
        }
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, item) in items {
            match item {
                Item::Entry(name) => {
                    if key.as_str() > self.after && (self.visible)(&key) {
                        match root.lstat_in(&dir, &name, &key) {
                            Ok(entry) => self.out.push(entry),
                            Err(Error::Os { errno, .. })
                                if errno == Errno::NOENT.raw_os_error() => {}
                            Err(err) => return Err(err),
                        }
                        if self.out.len() > self.limit {
                            return Ok(());
                        }
                    }
                }
                Item::Tree(name) => {
                    // Every path under `key` is at most `after` when `after`
                    // is past `key` without lying inside it.
                    let before_page = self.after > key.as_str() && !self.after.starts_with(&key);
                    if before_page || !(self.visible)(key.trim_end_matches('/')) {
                        continue;
                    }
                    too_deep(depth, self.max_depth)?;
                    let sub = match open_child(&dir, &name) {
                        Ok(sub) => sub,
                        // Removed or replaced since it was read.
                        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                        Err(e) => return Err(os(e, &key)),
                    };
                    self.dir(root, sub, &key, depth + 1)?;
                    if self.out.len() > self.limit {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Refuses to go below `depth` when that is the deepest a walk may go.
fn too_deep(depth: u32, max_depth: u32) -> Result<()> {
    if depth >= max_depth {
        return Err(Error::Quota {
            limit: "max_tree_depth",
            value: max_depth.into(),
        });
    }
    Ok(())
}

/// Opens the sub-folder `name` of `dir` for reading, never through a
/// symlink: whatever is there now is what the walk enters.
fn open_child<N: rustix::path::Arg>(dir: &OwnedFd, name: N) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Every name in a folder, without "." and "..", as bytes, with its kind
/// as the listing itself says (`FileType::Unknown` when it does not).
fn read_dir(dir: &OwnedFd, path: &str) -> Result<Vec<(CString, FileType)>> {
    let mut names = Vec::new();
    let mut entries = rustix::fs::Dir::read_from(dir).map_err(|e| os(e, path))?;
    while let Some(entry) = entries.read() {
        let entry = entry.map_err(|e| os(e, path))?;
        let name = entry.file_name();
        if !matches!(name.to_bytes(), b"." | b"..") {
            names.push((name.to_owned(), entry.file_type()));
        }
    }
    Ok(names)
}

/// Every name in a folder, as bytes: a recursive removal must take names a
/// client could not spell (not UTF-8) too, or their folder could never be
/// emptied. Errors and checks see them lossily.
fn read_raw_names(dir: &OwnedFd, path: &str) -> Result<Vec<CString>> {
    Ok(read_dir(dir, path)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// The names in a folder a client can spell (UTF-8; paths are strings on
/// the wire), each with whether it is a folder when the file system says
/// so in the listing itself (`None` when it does not: stat it).
fn read_entries(dir: &OwnedFd, path: &str) -> Result<Vec<(String, Option<bool>)>> {
    let mut names = Vec::new();
    for (name, kind) in read_dir(dir, path)? {
        match name.into_string() {
            Ok(name) => {
                let is_dir = (kind != FileType::Unknown).then_some(kind == FileType::Directory);
                names.push((name, is_dir));
            }
            Err(_) => tracing::debug!(folder = path, "skipping a name that is not UTF-8"),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
