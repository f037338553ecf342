//! Making a mapping: the quotas it counts against, the file it opens (or
//! the memfd it makes) and the cleanup when any step fails. This runs under
//! the name's own lock only, never a registry-wide one.
#![forbid(unsafe_code)]

use std::sync::{Arc, Weak};

use rustix::io::Errno;

use super::{MapArgs, Registry, spelling::as_makedirs};
use crate::{
    error::{Error, Result},
    mapping::{Access, Backing, FileGroup, Mapping, Spec},
    paths::Symlinks,
};

impl Registry {
    pub(super) fn create(
        &self,
        args: &MapArgs,
        access: Access,
        name: String,
        path: Option<String>,
    ) -> Result<Arc<Mapping>> {
        let create = match (&path, args.create) {
            (Some(_), true) => {
                let end = args
                    .offset
                    .checked_add(args.length)
                    .ok_or_else(|| Error::Overflow("mmap offset + length is too large".into()))?;
                Some(args.offset as u64..end as u64)
            }
            _ => None,
        };
        // Quotas come before any work. An existing file's length is checked
        // (and a copy of it charged) in `Mapping::create`, after CPython's
        // own checks against the file's size, so that errors match.
        let makes = path.is_none() || create.is_some();
        if makes {
            self.usage.check_length(args.length as u64)?;
        }
        let claim = self.usage.claim()?;
        if makes && (access == Access::Copy || path.is_none()) {
            claim.charge_to(args.length as u64)?;
        }
        let mut created = None;
        let spec = match path {
            Some(path) => {
                // Errors name the path as the client spelled it, as
                // Python's `open` does.
                let opened = self
                    .root
                    .open_file_with(
                        &path,
                        matches!(access, Access::Read | Access::Copy),
                        create,
                        args.caller.symlinks(),
                    )
                    .map_err(as_makedirs(&path, &args.path, true))?;
                let symlinks = args.caller.symlinks();
                if opened.created {
                    created = Some((opened.path.clone(), symlinks, opened.inode));
                }
                let group = match self.file_group(&opened.file, &opened.path, symlinks) {
                    Ok(group) => group,
                    Err(err) => {
                        self.remove_created(created);
                        return Err(err);
                    }
                };
                Spec {
                    name,
                    backing: Backing::File { path: opened.path },
                    file: opened.file,
                    file_writable: opened.writable,
                    length: args.length,
                    offset: args.offset,
                    access,
                    group: Some(group),
                    claim,
                }
            }
            None => {
                let fd = rustix::fs::memfd_create("mmapd-anon", rustix::fs::MemfdFlags::CLOEXEC)
                    .map_err(|e| Error::errno(e.raw_os_error()))?;
                let file = std::fs::File::from(fd);
                if args.length > 0 {
                    // Reserving memory now turns an oversized request into
                    // an error instead of a SIGBUS or OOM kill later.
                    crate::mapping::reserve(&file, 0, args.length as u64)?;
                    file.set_len(args.length as u64)
                        .map_err(|e| Error::os(&e, None))?;
                }
                Spec {
                    name,
                    backing: Backing::Anonymous,
                    file,
                    file_writable: true,
                    length: args.length,
                    offset: args.offset,
                    access,
                    // Copies of a memfd must stop a shrink under them too.
                    group: Some(Arc::new(FileGroup::default())),
                    claim,
                }
            }
        };
        match Mapping::create(spec) {
            Ok(mapping) => {
                mapping.attach();
                Ok(mapping)
            }
            Err(err) => {
                // A failed Map leaves no trace: not even the file it created.
                self.remove_created(created);
                Err(err)
            }
        }
    }

    fn remove_created(&self, created: Option<(String, Symlinks, (u64, u64))>) {
        if let Some((path, symlinks, inode)) = created {
            self.root.remove_created(&path, symlinks, inode);
        }
    }

    /// The group of every mapping of `file`'s inode, whatever its name.
    /// Files calls check for live mappings under the same lock, so once
    /// the group is registered no Remove, Rename or shrink gets past them;
    /// one that came first is seen here, as `path` no longer naming the
    /// file that was opened.
    fn file_group(
        &self,
        file: &std::fs::File,
        path: &str,
        symlinks: Symlinks,
    ) -> Result<Arc<FileGroup>> {
        let st = rustix::fs::fstat(file).map_err(|e| Error::errno(e.raw_os_error()))?;
        let mut groups = self.groups.lock();
        let key = (st.st_dev, st.st_ino);
        if !self.root.names(path, symlinks, key) {
            return Err(crate::paths::os(Errno::NOENT, path));
        }
        // Registered under the same lock, so a folder rename cannot slip
        // between this Map's open and its mapping going live.
        let folders = self.root.folders_of(path, symlinks);
        groups.retain(|_, g| g.strong_count() > 0);
        if let Some(group) = groups.get(&key).and_then(Weak::upgrade) {
            group.add_folders(folders);
            return Ok(group);
        }
        let group = Arc::new(FileGroup::default());
        group.add_folders(folders);
        groups.insert(key, Arc::downgrade(&group));
        Ok(group)
    }
}

/// Whether a Map of an existing name may attach to `existing`.
pub(super) fn check_attach(
    existing: &Mapping,
    args: &MapArgs,
    path: Option<&str>,
    access: Access,
) -> Result<()> {
    let conflict = |what| Error::MappingConflict {
        name: existing.name().to_owned(),
        what,
    };
    if let Some(path) = path
        && existing.path() != Some(path)
    {
        return Err(conflict("path"));
    }
    let by_name = path.is_none();
    if args.offset as u64 != existing.offset() && !(by_name && args.offset == 0) {
        return Err(conflict("offset"));
    }
    // Length 0 means "to the end of the file" for a path, "as it is" by name.
    let wanted = match (args.length, by_name) {
        (0, true) => None,
        (0, false) => Some(existing.file_size()?.saturating_sub(existing.offset())),
        (n, _) => Some(n as u64),
    };
    if wanted.is_some_and(|len| len != existing.len()) {
        return Err(conflict("length"));
    }
    if access.writable() && access != Access::Copy && !existing.file_writable() {
        return Err(Error::Os {
            errno: Errno::ACCESS.raw_os_error(),
            path: existing.path().map(str::to_owned),
        });
    }
    Ok(())
}
