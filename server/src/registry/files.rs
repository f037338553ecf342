//! The Files calls in registry terms: each path is checked against the
//! caller's access, and every change that could pull a file from under a
//! live mapping (Remove, Rename, a shrinking Truncate) is refused as
//! MAPPING_BUSY. The check and the change run under the inode-group lock
//! that a Map takes to register its file, and a Map checks afterwards that
//! its path still names the file it opened, so neither can slip between
//! the other's check and act.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use rustix::io::Errno;

use super::Registry;
use crate::{
    access::{Caller, FileAction},
    error::{Error, Result},
    paths::{Create, Entry, Kind, Root, os},
};

/// A file or folder as the Files service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// What the file system says.
    pub entry: Entry,
    /// Whether a live mapping uses it (for a folder: a file beneath it).
    pub mapped: bool,
}

/// One page of a Files listing.
#[derive(Debug, Clone)]
pub struct FilesPage {
    /// Entries in path order.
    pub entries: Vec<FileInfo>,
    /// The path to pass as the next page's token; empty on the last page.
    pub next_token: String,
}

/// The files live mappings use, taken under the group lock.
#[derive(Debug, Default)]
struct InUse {
    /// Inode → the name of a mapping of it. A group whose Map is still
    /// being made counts too.
    inodes: HashMap<(u64, u64), String>,
    /// Folder inode → the name of a mapping of a file beneath it.
    folders: HashMap<(u64, u64), String>,
    /// Whether any file is mapped (the root holds it).
    any: bool,
}

impl InUse {
    /// The mapping that stops `entry` from being removed or renamed.
    fn user(&self, entry: &Entry) -> Option<&str> {
        match entry.kind {
            Kind::File => self.inodes.get(&entry.inode).map(String::as_str),
            Kind::Dir if entry.path.is_empty() => self.any.then_some("(any)"),
            Kind::Dir => self.folders.get(&entry.inode).map(String::as_str),
            Kind::Symlink | Kind::Other => None,
        }
    }

    fn check(&self, entry: &Entry) -> Result<()> {
        match self.user(entry) {
            Some(name) => Err(Error::Busy {
                path: entry.path.clone(),
                name: name.to_owned(),
            }),
            None => Ok(()),
        }
    }

    fn info(&self, entry: Entry) -> FileInfo {
        FileInfo {
            mapped: self.user(&entry).is_some(),
            entry,
        }
    }
}

/// What a path's spelling asks beyond the name it normalizes to, as the
/// kernel reads it for `os` calls: a trailing `/` wants a folder, and a
/// last `.` names a folder by itself, which cannot be removed or renamed.
#[derive(Debug, Clone, Copy)]
struct Spelling {
    wants_dir: bool,
    dot: bool,
}

impl Spelling {
    fn of(path: &str) -> Spelling {
        let dot = path == "." || path.ends_with("/.");
        Spelling {
            wants_dir: dot || path.ends_with('/'),
            dot,
        }
    }
}

/// NotADirectoryError unless `entry` is a folder.
fn must_be_dir(entry: &Entry, path: &str) -> Result<()> {
    match entry.kind {
        Kind::Dir => Ok(()),
        Kind::File | Kind::Symlink | Kind::Other => Err(os(Errno::NOTDIR, path)),
    }
}

impl Registry {
    /// The files live mappings use, from the groups table.
    fn in_use(groups: &HashMap<(u64, u64), std::sync::Weak<crate::mapping::FileGroup>>) -> InUse {
        let mut used = InUse::default();
        for (inode, group) in groups {
            let Some(group) = group.upgrade() else {
                continue;
            };
            let live = group.live();
            let name = live
                .first()
                .map_or_else(|| "(being mapped)".to_owned(), |m| m.name().to_owned());
            for folder in group.folders() {
                used.folders.entry(folder).or_insert_with(|| name.clone());
            }
            used.inodes.insert(*inode, name);
            used.any = true;
        }
        used
    }

    /// A client path, normalized, within the path-length limit.
    fn file_path(&self, path: &str) -> Result<String> {
        if path.len() > self.limits.max_path_length as usize {
            return Err(Error::Os {
                errno: Errno::NAMETOOLONG.raw_os_error(),
                path: Some(super::cut(path, 64)),
            });
        }
        Root::normalize_or_root(path)
    }

    /// One page of the entries beneath the folder `path`.
    pub fn list_files(
        &self,
        caller: &Caller,
        path: &str,
        recursive: bool,
        page_size: u32,
        token: &str,
    ) -> Result<FilesPage> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::List, &rel)?;
        // A token is a path the last page ended on.
        if token.len() > self.limits.max_path_length as usize {
            return Err(Error::Protocol("invalid page_token".into()));
        }
        let listed = self.root.list(
            &rel,
            recursive,
            token,
            self.page_size(page_size),
            self.limits.max_tree_depth,
            caller.symlinks(),
            &|path| caller.shows_path(path),
        )?;
        let used = Self::in_use(&self.groups.lock());
        let next_token = match (listed.more, listed.entries.last()) {
            (true, Some(last)) => last.path.clone(),
            _ => String::new(),
        };
        Ok(FilesPage {
            entries: listed.entries.into_iter().map(|e| used.info(e)).collect(),
            next_token,
        })
    }

    /// `os.stat(path)`.
    pub fn stat_path(&self, caller: &Caller, path: &str) -> Result<FileInfo> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::Stat, &rel)?;
        let entry = self.root.stat(&rel, caller.symlinks())?;
        if Spelling::of(path).wants_dir {
            must_be_dir(&entry, path)?;
        }
        Ok(Self::in_use(&self.groups.lock()).info(entry))
    }

    /// `os.mkdir`, or `os.makedirs(exist_ok=True)`; whether it was made.
    pub fn make_dir(&self, caller: &Caller, path: &str, parents: bool) -> Result<bool> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::MakeDir, &rel)?;
        self.root.make_dir(&rel, parents, caller.symlinks())
    }

    /// Removes a file, symlink or empty folder, or a tree; how many
    /// entries went. Nothing is removed if a live mapping uses any file.
    pub fn remove_path(&self, caller: &Caller, path: &str, recursive: bool) -> Result<u64> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::Remove, &rel)?;
        let spelling = Spelling::of(path);
        if spelling.dot {
            return Err(os(Errno::INVAL, path));
        }
        if spelling.wants_dir {
            must_be_dir(&self.root.lstat(&rel, caller.symlinks())?, path)?;
        }
        let groups = self.groups.lock();
        let used = Self::in_use(&groups);
        let removed = self.root.remove(
            &rel,
            recursive,
            self.limits.max_tree_depth,
            caller.symlinks(),
            &|e| used.check(e),
        )?;
        drop(groups);
        tracing::info!(
            path = rel,
            removed,
            identity = caller.owner().unwrap_or_default(),
            "removed"
        );
        Ok(removed)
    }

    /// `os.rename`, or `os.replace` with `replace`.
    pub fn rename_path(&self, caller: &Caller, from: &str, to: &str, replace: bool) -> Result<()> {
        let spelling = Spelling::of(from);
        let (asked_from, asked_to) = (from, to);
        let from = self.file_path(from)?;
        let to = self.file_path(to)?;
        caller.check_file(FileAction::Rename, &from)?;
        caller.check_file(FileAction::Rename, &to)?;
        let refuse = |errno: Errno| Error::Rename {
            errno: errno.raw_os_error(),
            from: asked_from.to_owned(),
            to: asked_to.to_owned(),
        };
        if spelling.dot {
            return Err(refuse(Errno::BUSY));
        }
        if spelling.wants_dir && self.root.lstat(&from, caller.symlinks())?.kind != Kind::Dir {
            return Err(refuse(Errno::NOTDIR));
        }
        let groups = self.groups.lock();
        let used = Self::in_use(&groups);
        self.root
            .rename(&from, &to, replace, caller.symlinks(), &|e| used.check(e))?;
        drop(groups);
        tracing::info!(
            from,
            to,
            identity = caller.owner().unwrap_or_default(),
            "renamed"
        );
        Ok(())
    }

    /// `os.truncate(path, size)`, making the file first as `create` says.
    pub fn truncate_path(
        &self,
        caller: &Caller,
        path: &str,
        size: u64,
        create: Create,
    ) -> Result<FileInfo> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::Truncate, &rel)?;
        if Spelling::of(path).wants_dir {
            // What opening `path/` for writing says.
            return Err(match self.root.stat(&rel, caller.symlinks()) {
                Ok(entry) if entry.kind == Kind::Dir => os(Errno::ISDIR, path),
                Ok(_) => os(Errno::NOTDIR, path),
                Err(_) if create != Create::Never => os(Errno::ISDIR, path),
                Err(err) => err,
            });
        }
        // A file that size could never be mapped whole; and a sparse file
        // of any size costs nothing now but fills the disk later.
        if size > self.limits.max_mapping_length {
            return Err(Error::Quota {
                limit: "max_mapping_length",
                value: self.limits.max_mapping_length,
            });
        }
        let groups = self.groups.lock();
        let used = Self::in_use(&groups);
        let entry = self
            .root
            .truncate(&rel, size, create, caller.symlinks(), &|e| used.check(e))?;
        drop(groups);
        Ok(used.info(entry))
    }
}
