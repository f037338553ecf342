//! Opens files strictly beneath the data root. `openat2(RESOLVE_BENEATH)`
//! makes the kernel refuse any `..`, absolute path or symlink that would
//! leave the root, race-free; a lexical check first gives a clear error.
#![forbid(unsafe_code)]

use std::{
    fs::File,
    ops::Range,
    os::{fd::OwnedFd, unix::fs::MetadataExt},
    path::{Component, Path},
};

use rustix::{
    fs::{Mode, OFlags, ResolveFlags},
    io::Errno,
};

use crate::error::{Error, Result};

mod tree;

pub use tree::{Create, Entry, Kind, Listed, Visible};

/// The data root, held open so later renames of its path do not matter.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
}

/// An opened file and whether it is open for writing.
#[derive(Debug)]
pub struct Opened {
    /// The file.
    pub file: File,
    /// Opened read-write (else read-only).
    pub writable: bool,
    /// The normalized relative path.
    pub path: String,
    /// This call created the file.
    pub created: bool,
    /// The file's `(st_dev, st_ino)`.
    pub inode: (u64, u64),
}

impl Root {
    /// Opens the root directory, creating it if missing.
    pub fn open(path: &Path) -> std::io::Result<Root> {
        std::fs::create_dir_all(path)?;
        let dir = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { dir })
    }

    /// Normalizes a client path: relative, no `..`, no empty components.
    pub fn normalize(path: &str) -> Result<String> {
        let escape = || Error::PathEscape(path.to_owned());
        let mut parts = Vec::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str().ok_or_else(escape)?),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(escape());
                }
            }
        }
        if parts.is_empty() {
            return Err(Error::Os {
                errno: Errno::ISDIR.raw_os_error(),
                path: Some(path.to_owned()),
            });
        }
        Ok(parts.join("/"))
    }

    /// Opens `path` read-write, or read-only when `read_only_ok` and
    /// writing is not permitted. When `create` is given and the file is
    /// missing, makes it `create.end` zero bytes long, with the blocks of
    /// `create` (the part that will be mapped) reserved.
    pub fn open_file(
        &self,
        path: &str,
        read_only_ok: bool,
        create: Option<Range<u64>>,
    ) -> Result<Opened> {
        self.open_file_with(path, read_only_ok, create, Symlinks::Follow)
    }

    /// [`Root::open_file`], saying whether symlinks (inside the root) are
    /// followed. A caller confined to some prefixes must not follow them:
    /// a link under its prefix may point at another tenant's file.
    pub fn open_file_with(
        &self,
        path: &str,
        read_only_ok: bool,
        create: Option<Range<u64>>,
        symlinks: Symlinks,
    ) -> Result<Opened> {
        let rel = Self::normalize(path)?;
        let open_at = |rel: &str, flags| self.open_at(rel, flags, symlinks);
        // O_NONBLOCK: opening a FIFO or a device must never wait (a FIFO
        // with no writer would hold the Map forever).
        let base = OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let rdwr = base | OFlags::RDWR;
        let (fd, writable, created) = match open_at(&rel, rdwr) {
            Ok(fd) => (fd, true, false),
            Err(Errno::NOENT) if create.is_some() => {
                self.make_parents(&rel, symlinks)?;
                match open_at(&rel, rdwr | OFlags::CREATE | OFlags::EXCL) {
                    Ok(fd) => (fd, true, true),
                    // Someone created it first: theirs it is, as it stands.
                    Err(Errno::EXIST) => {
                        (open_at(&rel, rdwr).map_err(|e| os(e, &rel))?, true, false)
                    }
                    Err(e) => return Err(os(e, &rel)),
                }
            }
            Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) if read_only_ok => (
                open_at(&rel, base | OFlags::RDONLY).map_err(|e| os(e, &rel))?,
                false,
                false,
            ),
            Err(e) => return Err(os(e, &rel)),
        };
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| Error::os(&e, Some(&rel)))?;
        let inode = (meta.dev(), meta.ino());
        if !meta.is_file() {
            // What mmap(2) says of a file it cannot map; a directory keeps
            // CPython's EISDIR.
            let errno = if meta.is_dir() {
                Errno::ISDIR
            } else {
                Errno::NODEV
            };
            return Err(os(errno, &rel));
        }
        // Only a file we just made gets sized: an existing file, even an
        // empty one, is mapped as it is (CPython never grows a file on map).
        if created && let Some(range) = create.filter(|r| r.end > 0) {
            // Reserved now, so a full disk is ENOSPC here rather than a
            // SIGBUS on the first write; a failure leaves no file behind.
            let sized = file
                .set_len(range.end)
                .map_err(|e| Error::os(&e, Some(&rel)))
                .and_then(|()| crate::mapping::reserve(&file, range.start, range.end))
                .map_err(|err| with_path(err, &rel));
            if let Err(err) = sized {
                drop(file);
                self.remove_created(&rel, symlinks, inode);
                return Err(err);
            }
        }
        Ok(Opened {
            file,
            writable,
            path: rel,
            created,
            inode,
        })
    }

    /// Makes the missing folders on the way to `rel`, as `mkdir -p`.
    /// Folders stay if the Map fails later, as `os.makedirs` leaves them.
    fn make_parents(&self, rel: &str, symlinks: Symlinks) -> Result<()> {
        match rel.rsplit_once('/') {
            Some((parents, _)) => self.make_dirs(parents, symlinks).map(drop),
            None => Ok(()),
        }
    }

    /// `os.makedirs(dirs, exist_ok=True)`, each folder beneath the root:
    /// every prefix is opened with the same `RESOLVE_BENEATH` as a file (so
    /// a symlink out of the root is PATH_ESCAPE, and nothing is made
    /// outside), and a missing folder is made by name inside the one just
    /// opened. Says whether the last folder was made.
    fn make_dirs(&self, dirs: &str, symlinks: Symlinks) -> Result<bool> {
        let folder = OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC;
        let mut parent: Option<OwnedFd> = None;
        let mut end = 0;
        let mut made = false;
        for name in dirs.split('/') {
            end += name.len() + usize::from(end > 0);
            let prefix = &dirs[..end];
            // The folder after this one, which `os.makedirs` names when
            // this one is there but is no folder: it only finds out on
            // the mkdir inside it.
            let next = (end < dirs.len()).then(|| {
                let to = dirs[end + 1..]
                    .find('/')
                    .map_or(dirs.len(), |at| end + 1 + at);
                &dirs[..to]
            });
            made = false;
            let fd = match self.open_at(prefix, folder, symlinks) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    let at = parent.as_ref().unwrap_or(&self.dir);
                    let exists = match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            made = true;
                            false
                        }
                        // Another call made it first, or a dangling symlink
                        // holds the name.
                        Err(Errno::EXIST) => true,
                        Err(e) => return Err(os(e, prefix)),
                    };
                    self.open_at(prefix, folder, symlinks)
                        .map_err(|e| match (e, next) {
                            // The name exists but leads nowhere (a dangling
                            // symlink): the mkdir inside it finds nothing,
                            // or, as the last, a name in the way.
                            (Errno::NOENT, Some(next)) if exists => os(Errno::NOENT, next),
                            (Errno::NOENT, None) if exists => os(Errno::EXIST, prefix),
                            (e, _) => os(e, prefix),
                        })?
                }
                // `prefix` is a name that is no folder (a file, a symlink
                // loop): the mkdir inside it fails the same way, or, as
                // the last, a name is where the folder goes. A caller who
                // may not follow symlinks gets ELOOP for any link, as it
                // does everywhere else.
                Err(e @ (Errno::NOTDIR | Errno::LOOP))
                    if e == Errno::NOTDIR || symlinks == Symlinks::Follow =>
                {
                    return Err(match next {
                        Some(next) => os(e, next),
                        None => os(Errno::EXIST, prefix),
                    });
                }
                Err(e) => return Err(os(e, prefix)),
            };
            parent = Some(fd);
        }
        Ok(made)
    }

    /// Removes a file this server created, when the Map that created it
    /// failed. It is removed only if `rel` still names it (`inode`), and
    /// the path is resolved beneath the root as the caller's were: by then
    /// a client may have renamed a folder on the way, or put a symlink
    /// there, and the cleanup must not remove what that leads to. Best
    /// effort: the failure being reported matters more.
    pub fn remove_created(&self, rel: &str, symlinks: Symlinks, inode: (u64, u64)) {
        let removed = self.open_parent(rel, symlinks).and_then(|(parent, name)| {
            let st = rustix::fs::statat(&parent, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| os(e, rel))?;
            if (st.st_dev, st.st_ino) != inode {
                return Err(os(Errno::NOENT, rel));
            }
            rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty())
                .map_err(|e| os(e, rel))
        });
        if let Err(err) = removed {
            tracing::warn!(path = rel, %err, "left the file a failed Map created (it is not where the Map made it)");
        }
    }

    fn open_at(
        &self,
        rel: &str,
        flags: OFlags,
        symlinks: Symlinks,
    ) -> std::result::Result<OwnedFd, Errno> {
        let mut resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        if symlinks == Symlinks::Refuse {
            resolve |= ResolveFlags::NO_SYMLINKS;
        }
        // openat2 rejects a mode without O_CREAT (EINVAL), unlike openat.
        let mode = if flags.contains(OFlags::CREATE) {
            Mode::from_raw_mode(0o644)
        } else {
            Mode::empty()
        };
        rustix::fs::openat2(&self.dir, rel, flags, mode, resolve)
    }
}

/// Whether opening a path follows symlinks that stay inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Follow them (escaping ones are refused either way).
    Follow,
    /// Refuse any symlink in the path (ELOOP).
    Refuse,
}

/// An OS error about `rel`, for errors raised without a path.
fn with_path(mut err: Error, rel: &str) -> Error {
    if let Error::Os {
        path: path @ None, ..
    } = &mut err
    {
        *path = Some(rel.to_owned());
    }
    err
}

/// The OS error `errno` about `rel`; EXDEV from RESOLVE_BENEATH means a
/// symlink tried to leave the root.
pub(crate) fn os(errno: Errno, rel: &str) -> Error {
    if errno == Errno::XDEV {
        Error::PathEscape(rel.to_owned())
    } else {
        Error::Os {
            errno: errno.raw_os_error(),
            path: Some(rel.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_escapes_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "a/.."] {
            assert!(
                matches!(Root::normalize(bad), Err(Error::PathEscape(_))),
                "{bad}"
            );
        }
        assert_eq!(Root::normalize("./a//b/").unwrap(), "a/b");
    }

    #[test]
    fn symlink_out_of_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        std::fs::create_dir(&root_dir).unwrap();
        std::fs::write(tmp.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root_dir.join("link")).unwrap();
        std::os::unix::fs::symlink("../secret", root_dir.join("rel")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        for link in ["link", "rel"] {
            let err = root.open_file(link, true, None).unwrap_err();
            assert!(matches!(err, Error::PathEscape(_)), "{link}: {err:?}");
        }
        std::fs::write(root_dir.join("inside"), b"y").unwrap();
        std::os::unix::fs::symlink("inside", root_dir.join("ok")).unwrap();
        assert!(root.open_file("ok", true, None).is_ok());
    }

    #[test]
    fn create_sizes_only_files_it_made() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let made = root.open_file("new", false, Some(0..10)).unwrap();
        assert_eq!(made.file.metadata().unwrap().len(), 10);
        std::fs::write(tmp.path().join("empty"), b"").unwrap();
        let kept = root.open_file("empty", false, Some(0..10)).unwrap();
        assert_eq!(kept.file.metadata().unwrap().len(), 0);
    }

    #[test]
    fn create_makes_missing_folders_beneath_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let root = Root::open(&root_dir).unwrap();
        let made = root.open_file("a/b/c/f.bin", false, Some(0..4)).unwrap();
        assert!(made.created);
        assert_eq!(
            std::fs::metadata(root_dir.join("a/b/c/f.bin"))
                .unwrap()
                .len(),
            4
        );
        // Part of the way exists already.
        root.open_file("a/b/d/g.bin", false, Some(0..4)).unwrap();
        // Without create nothing is made.
        let err = root.open_file("x/y.bin", false, None).unwrap_err();
        assert!(matches!(err, Error::Os { errno: 2, .. }), "{err:?}");
        assert!(!root_dir.join("x").exists());
        // A folder symlink out of the root: refused, nothing made outside.
        std::os::unix::fs::symlink(&outside, root_dir.join("out")).unwrap();
        let err = root
            .open_file("out/new/f.bin", false, Some(0..4))
            .unwrap_err();
        assert!(matches!(err, Error::PathEscape(_)), "{err:?}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // A file in the way is NotADirectory, as os.makedirs says.
        std::fs::write(root_dir.join("file"), b"").unwrap();
        let err = root.open_file("file/f.bin", false, Some(0..4)).unwrap_err();
        assert!(matches!(err, Error::Os { errno: 20, .. }), "{err:?}");
    }

    #[test]
    fn a_create_that_cannot_be_sized_or_reserved_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let err = root.open_file("huge", false, Some(0..1 << 62)).unwrap_err();
        assert!(
            matches!(&err, Error::Os { path: Some(p), .. } if p == "huge"),
            "{err:?}"
        );
        assert!(!tmp.path().join("huge").exists());
    }

    /// The cleanup of a failed Map removes only the file it made, where it
    /// made it: never what a folder renamed since, or a symlink put in its
    /// place, now leads to.
    #[test]
    fn the_cleanup_of_a_failed_create_removes_only_its_own_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), b"keep").unwrap();
        let root = Root::open(&root_dir).unwrap();
        let made = root.open_file("d/victim", false, Some(0..4)).unwrap();
        std::fs::rename(root_dir.join("d"), root_dir.join("dold")).unwrap();
        std::os::unix::fs::symlink(&outside, root_dir.join("d")).unwrap();
        root.remove_created("d/victim", Symlinks::Follow, made.inode);
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
        // Another file now at the path is not ours either.
        std::fs::remove_file(root_dir.join("d")).unwrap();
        std::fs::create_dir(root_dir.join("d")).unwrap();
        std::fs::write(root_dir.join("d/victim"), b"theirs").unwrap();
        root.remove_created("d/victim", Symlinks::Follow, made.inode);
        assert_eq!(std::fs::read(root_dir.join("d/victim")).unwrap(), b"theirs");
        // Where it still is, it goes.
        let again = root.open_file("e/f", false, Some(0..4)).unwrap();
        root.remove_created("e/f", Symlinks::Follow, again.inode);
        assert!(!root_dir.join("e/f").exists());
    }

    #[test]
    fn a_fifo_is_refused_at_once_and_a_directory_stays_eisdir() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        rustix::fs::mknodat(
            &root.dir,
            "fifo",
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o444),
            0,
        )
        .unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        for (path, errno) in [("fifo", Errno::NODEV), ("dir", Errno::ISDIR)] {
            for read_only_ok in [true, false] {
                match root.open_file(path, read_only_ok, None) {
                    Err(Error::Os { errno: e, .. }) => assert_eq!(e, errno.raw_os_error()),
                    other => panic!("{path}: {other:?}"),
                }
            }
        }
    }
}
