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

use super::{
    Registry,
    spelling::{Spelling, as_asked, as_makedirs, must_be_dir},
};
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

/// The folder holding the last name of a normalized path ("" is the root).
fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(parent, _)| parent)
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
        let listed = self
            .root
            .list(
                &rel,
                recursive,
                token,
                self.page_size(page_size),
                self.limits.max_tree_depth,
                caller.symlinks(),
                &|path| caller.shows_path(path),
            )
            .map_err(as_asked(&rel, path))?;
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
        let entry = self
            .root
            .stat(&rel, caller.symlinks())
            .map_err(as_asked(&rel, path))?;
        if Spelling::of(path).wants_dir {
            must_be_dir(&entry, path)?;
        }
        Ok(Self::in_use(&self.groups.lock()).info(entry))
    }

    /// The folder a path ending in `.` names by itself, as the kernel finds
    /// it before it refuses to act on a `.`: a NotADirectoryError when a
    /// file is there, the lookup's error when nothing is.
    fn dot_folder(&self, caller: &Caller, rel: &str, path: &str) -> Result<()> {
        let entry = self
            .root
            .stat(rel, caller.symlinks())
            .map_err(as_asked(rel, path))?;
        must_be_dir(&entry, path)
    }

    /// What the kernel says to a truncate or an open of `path/` or
    /// `path/.` (a name spelled as a folder), made of the normalized `rel`:
    /// they want a file, and find a folder, a file, or nothing; open with
    /// O_CREAT refuses to make a file named as a folder once the folder
    /// that would hold it is found (create makes that one when missing).
    pub(super) fn folder_name_error(
        &self,
        caller: &Caller,
        rel: &str,
        path: &str,
        creating: bool,
    ) -> Error {
        let missing = |err: &Error| matches!(err, Error::Os { errno, .. } if *errno == Errno::NOENT.raw_os_error());
        if Spelling::of(path).dot {
            // `d/.` names the folder `d` itself.
            return match self.dot_folder(caller, rel, path) {
                Ok(()) => os(Errno::ISDIR, path),
                Err(err) if creating && missing(&err) => os(Errno::ISDIR, path),
                Err(err) => err,
            };
        }
        // Truncate looks at the name itself; a create, at its folder.
        let looked_up = if creating { parent_of(rel) } else { rel };
        match self.root.stat(looked_up, caller.symlinks()) {
            Ok(entry) if entry.kind == Kind::Dir => os(Errno::ISDIR, path),
            Ok(_) => os(Errno::NOTDIR, path),
            Err(err) if creating && missing(&err) => os(Errno::ISDIR, path),
            Err(Error::Os { errno, .. }) => Error::Os {
                errno,
                path: Some(path.to_owned()),
            },
            Err(err) => err,
        }
    }

    /// `os.mkdir`, or `os.makedirs(exist_ok=True)`; whether it was made.
    pub fn make_dir(&self, caller: &Caller, path: &str, parents: bool) -> Result<bool> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::MakeDir, &rel)?;
        if Spelling::of(path).dot {
            if !parents {
                // mkdir of a `.` finds only what is already there.
                self.dot_folder(caller, &rel, path)?;
                return Err(os(Errno::EXIST, path));
            }
            // `os.makedirs("d/.")`: with `d` there, a mkdir of `d/.` (a
            // file there is NotADirectoryError); without, `makedirs("d")`,
            // whose errors name `d`, not the caller's spelling.
            return match self.root.stat(&rel, caller.symlinks()) {
                Ok(entry) => must_be_dir(&entry, path).map(|()| false),
                Err(_) => self
                    .root
                    .make_dir(&rel, true, caller.symlinks())
                    .map_err(as_makedirs(&rel, path, false)),
            };
        }
        self.root
            .make_dir(&rel, parents, caller.symlinks())
            .map_err(as_makedirs(&rel, path, true))
    }

    /// Removes a file, symlink or empty folder, or a tree; how many
    /// entries went. Nothing is removed if a live mapping uses any file.
    pub fn remove_path(&self, caller: &Caller, path: &str, recursive: bool) -> Result<u64> {
        let rel = self.file_path(path)?;
        caller.check_file(FileAction::Remove, &rel)?;
        let spelling = Spelling::of(path);
        if spelling.dot {
            self.dot_folder(caller, &rel, path)?;
            return Err(os(Errno::INVAL, path));
        }
        if spelling.wants_dir {
            let entry = self
                .root
                .lstat(&rel, caller.symlinks())
                .map_err(as_asked(&rel, path))?;
            if entry.kind == Kind::Symlink {
                // `link/` is looked up through the link (a loop or a
                // dangling link fails as such), and no link is a folder
                // rmdir takes.
                self.root
                    .stat(&rel, caller.symlinks())
                    .map_err(as_asked(&rel, path))?;
                return Err(os(Errno::NOTDIR, path));
            }
            must_be_dir(&entry, path)?;
        }
        let groups = self.groups.lock();
        let used = Self::in_use(&groups);
        let removed = self
            .root
            .remove(
                &rel,
                recursive,
                self.limits.max_tree_depth,
                caller.symlinks(),
                &|e| used.check(e),
            )
            .map_err(as_asked(&rel, path))?;
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
        let (spelling, to_spelling) = (Spelling::of(from), Spelling::of(to));
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
        // Any OS error of a rename names both sides, as the caller spelled
        // them.
        let as_rename = |err: Error| {
            if let Error::Os { errno, .. } | Error::Rename { errno, .. } = err {
                refuse(Errno::from_raw_os_error(errno))
            } else {
                err
            }
        };
        if spelling.dot || to_spelling.dot {
            // A last `.` names a folder by itself, which the kernel will
            // not rename, nor rename onto; it says so once the folders
            // holding both names are found.
            for (rel, dot) in [(&from, spelling.dot), (&to, to_spelling.dot)] {
                let folder = if dot { rel.as_str() } else { parent_of(rel) };
                let entry = self
                    .root
                    .stat(folder, caller.symlinks())
                    .map_err(as_rename)?;
                if entry.kind != Kind::Dir {
                    return Err(refuse(Errno::NOTDIR));
                }
            }
            return Err(refuse(match (spelling.dot, replace) {
                (true, _) | (false, true) => Errno::BUSY,
                (false, false) => Errno::EXIST,
            }));
        }
        let groups = self.groups.lock();
        let used = Self::in_use(&groups);
        self.root
            .rename(
                &from,
                &to,
                replace,
                spelling.wants_dir || to_spelling.wants_dir,
                caller.symlinks(),
                &|e| used.check(e),
            )
            .map_err(as_rename)?;
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
            return Err(self.folder_name_error(caller, &rel, path, create != Create::Never));
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
            .truncate(&rel, size, create, caller.symlinks(), &|e| used.check(e))
            // Errors of the folders a create makes are makedirs's.
            .map_err(as_makedirs(&rel, path, true))?;
        drop(groups);
        Ok(used.info(entry))
    }
}
