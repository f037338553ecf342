//! The registry: sessions (leases), the handles they own, and the named
//! mappings those handles share. Handle lookup is on the data path, so the
//! handle table is sharded (`DashMap`); the session and name tables are
//! only touched when sessions and handles come and go.
#![forbid(unsafe_code)]

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use dashmap::DashMap;
use parking_lot::Mutex;
use rustix::io::Errno;

use crate::{
    error::{Error, Result},
    handle::Handle,
    mapping::{Access, Backing, FileGroup, Mapping, Spec},
    paths::Root,
};

/// Longest lease a client may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What `Map` asks for, in domain terms.
#[derive(Debug, Clone)]
pub struct MapArgs {
    /// Owning session.
    pub session_id: String,
    /// Path under the root; empty for anonymous or attach-by-name.
    pub path: String,
    /// Length (0 = whole file).
    pub length: i64,
    /// File offset.
    pub offset: i64,
    /// Python's access number (validated here, like CPython).
    pub access: i32,
    /// Registry name; empty = the path (or a fresh name when anonymous).
    pub name: String,
    /// Create a missing file.
    pub create: bool,
}

/// A lease.
#[derive(Debug)]
pub struct Session {
    id: String,
    client_name: String,
    ttl: Duration,
    deadline: Mutex<Instant>,
    handles: Mutex<HashSet<String>>,
}

/// A row of `ListSessions`.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Id.
    pub id: String,
    /// Client's name.
    pub client_name: String,
    /// TTL.
    pub ttl: Duration,
    /// Open handles.
    pub handles: u32,
}

/// A row of `ListMappings`.
#[derive(Debug, Clone)]
pub struct MappingInfo {
    /// Registry name.
    pub name: String,
    /// Relative path; empty when anonymous.
    pub path: String,
    /// Length.
    pub length: u64,
    /// Access it was created with.
    pub access: Access,
    /// Attached handles.
    pub handles: u32,
}

/// Sessions, handles and mappings of one server.
#[derive(Debug)]
pub struct Registry {
    root: Root,
    default_ttl: Duration,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    handles: DashMap<String, Arc<Handle>>,
    /// Shared mappings by name. Private (ACCESS_COPY) mappings are owned by
    /// their handle alone and are listed through the handle table.
    names: Mutex<HashMap<String, Arc<Mapping>>>,
    /// Mappings grouped by inode, so resizes cannot cut under siblings.
    groups: Mutex<HashMap<(u64, u64), Weak<FileGroup>>>,
}

impl Registry {
    /// A registry over an opened root.
    pub fn new(root: Root, default_ttl: Duration) -> Registry {
        Registry {
            root,
            // An operator's huge TTL must not overflow `Instant + ttl`.
            default_ttl: default_ttl.clamp(Duration::from_secs(1), MAX_TTL),
            sessions: Mutex::default(),
            handles: DashMap::new(),
            names: Mutex::default(),
            groups: Mutex::default(),
        }
    }

    /// The TTL given to sessions that ask for 0.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// Opens a session; returns its id and granted TTL.
    pub fn open_session(&self, client_name: &str, ttl_seconds: u32) -> (String, Duration) {
        let ttl = match ttl_seconds {
            0 => self.default_ttl,
            s => Duration::from_secs(s.into()).min(MAX_TTL),
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = Session {
            id: id.clone(),
            client_name: client_name.to_owned(),
            ttl,
            deadline: Mutex::new(Instant::now() + ttl),
            handles: Mutex::default(),
        };
        self.sessions.lock().insert(id.clone(), Arc::new(session));
        tracing::info!(session = %id, client = client_name, ttl = ttl.as_secs(), "session opened");
        (id, ttl)
    }

    fn session(&self, id: &str) -> Result<Arc<Session>> {
        self.sessions
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::SessionNotFound(id.to_owned()))
    }

    /// Renews a lease; returns the TTL.
    pub fn keep_alive(&self, id: &str) -> Result<Duration> {
        let session = self.session(id)?;
        *session.deadline.lock() = Instant::now() + session.ttl;
        Ok(session.ttl)
    }

    /// Closes a session and every handle it owns.
    pub fn close_session(&self, id: &str) -> Result<()> {
        let session = self
            .sessions
            .lock()
            .remove(id)
            .ok_or_else(|| Error::SessionNotFound(id.to_owned()))?;
        self.close_handles_of(&session);
        tracing::info!(session = %id, "session closed");
        Ok(())
    }

    fn close_handles_of(&self, session: &Session) {
        let handles: Vec<String> = session.handles.lock().drain().collect();
        for handle in handles {
            self.close_handle(&handle);
        }
    }

    /// Closes every session whose lease ran out; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let expired: Vec<Arc<Session>> = {
            let mut sessions = self.sessions.lock();
            // Checked and removed under one lock, so a KeepAlive that got in
            // first keeps its session.
            let ids: Vec<String> = sessions
                .values()
                .filter(|s| *s.deadline.lock() <= now)
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in &expired {
            tracing::info!(session = %session.id, "session lease expired");
            self.close_handles_of(session);
        }
        expired.len()
    }

    /// A live handle, or CPython's "closed or invalid".
    pub fn handle(&self, id: &str) -> Result<Arc<Handle>> {
        self.handles
            .get(id)
            .map(|h| Arc::clone(&h))
            .ok_or(Error::Closed)
    }

    /// `mmap.mmap(...)`: maps, or attaches to the mapping of the same name.
    pub fn map(&self, args: MapArgs) -> Result<Arc<Handle>> {
        let session = self.session(&args.session_id)?;
        // CPython checks these before anything touches the file system
        // (our `create` must not create a file for a call that will fail).
        if args.length < 0 {
            return Err(Error::Overflow(
                "memory mapped length must be positive".into(),
            ));
        }
        if args.offset < 0 {
            return Err(Error::Overflow(
                "memory mapped offset must be positive".into(),
            ));
        }
        let access = Access::from_python(args.access)?;
        let mapping = self.find_or_create(&args, access)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let handle = Arc::new(Handle::new(id.clone(), session.id.clone(), access, mapping));
        self.handles.insert(id.clone(), Arc::clone(&handle));
        session.handles.lock().insert(id.clone());
        // The session may have expired between the lookup and now; then the
        // reaper never saw this handle, so close it here.
        if !self.sessions.lock().contains_key(&session.id) {
            self.close_handle(&id);
            return Err(Error::SessionNotFound(session.id.clone()));
        }
        Ok(handle)
    }

    fn find_or_create(&self, args: &MapArgs, access: Access) -> Result<Arc<Mapping>> {
        let normalized = match args.path.as_str() {
            "" => None,
            p => Some(Root::normalize(p)?),
        };
        let mut name = match (&args.name, &normalized) {
            (n, _) if !n.is_empty() => n.clone(),
            (_, Some(path)) => path.clone(),
            (_, None) => format!("anon-{}", uuid::Uuid::new_v4().simple()),
        };
        let mut names = self.names.lock();
        if let Some(existing) = names.get(&name).cloned() {
            match check_attach(&existing, args, normalized.as_deref(), access) {
                Ok(()) if access == Access::Copy => {
                    let copy = existing.private_copy(name)?;
                    copy.attach();
                    return Ok(copy);
                }
                Ok(()) => {
                    existing.attach();
                    return Ok(existing);
                }
                // Without an explicit name this is what CPython does with two
                // mmap objects over other bounds of one file: two mappings.
                Err(Error::MappingConflict { .. }) if args.name.is_empty() => {
                    name = format!("{name}#{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
                }
                Err(err) => return Err(err),
            }
        }
        if normalized.is_none() && !args.name.is_empty() && args.length == 0 {
            return Err(Error::MappingNotFound(name));
        }
        // Creating under the name lock keeps two racing Maps of one name
        // from making two mappings; Map is not on the data path.
        let mapping = self.create(args, access, name.clone(), normalized)?;
        if access != Access::Copy {
            names.insert(name, Arc::clone(&mapping));
        }
        Ok(mapping)
    }

    fn create(
        &self,
        args: &MapArgs,
        access: Access,
        name: String,
        path: Option<String>,
    ) -> Result<Arc<Mapping>> {
        let mut created = None;
        let spec = match path {
            Some(path) => {
                let create_len = match args.create {
                    false => None,
                    true => Some(args.offset.checked_add(args.length).ok_or_else(|| {
                        Error::Overflow("mmap offset + length is too large".into())
                    })? as u64),
                };
                let opened = self.root.open_file(
                    &path,
                    matches!(access, Access::Read | Access::Copy),
                    create_len,
                )?;
                if opened.created {
                    created = Some(opened.path.clone());
                }
                let group = Some(self.file_group(&opened.file)?);
                Spec {
                    name,
                    backing: Backing::File { path: opened.path },
                    file: opened.file,
                    file_writable: opened.writable,
                    length: args.length,
                    offset: args.offset,
                    access,
                    group,
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
                if let Some(path) = created {
                    self.root.remove(&path);
                }
                Err(err)
            }
        }
    }

    /// The group of every mapping of `file`'s inode, whatever its name.
    fn file_group(&self, file: &std::fs::File) -> Result<Arc<FileGroup>> {
        let st = rustix::fs::fstat(file).map_err(|e| Error::errno(e.raw_os_error()))?;
        let mut groups = self.groups.lock();
        groups.retain(|_, g| g.strong_count() > 0);
        let key = (st.st_dev, st.st_ino);
        if let Some(group) = groups.get(&key).and_then(Weak::upgrade) {
            return Ok(group);
        }
        let group = Arc::new(FileGroup::default());
        groups.insert(key, Arc::downgrade(&group));
        Ok(group)
    }

    /// Closes a handle; flushes and unmaps its mapping if it was the last.
    /// Closing a closed handle does nothing, as in CPython.
    pub fn close_handle(&self, id: &str) {
        let Some((_, handle)) = self.handles.remove(id) else {
            return;
        };
        handle.close();
        if let Ok(session) = self.session(handle.session_id()) {
            session.handles.lock().remove(id);
        }
        let mapping = handle.mapping();
        let mut names = self.names.lock();
        if mapping.detach() {
            if names
                .get(mapping.name())
                .is_some_and(|m| Arc::ptr_eq(m, mapping))
            {
                names.remove(mapping.name());
            }
            drop(names);
            if let Err(err) = mapping.flush_all() {
                tracing::error!(name = mapping.name(), %err, "flush on last close failed");
            }
        }
    }

    /// Every live session.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = self
            .sessions
            .lock()
            .values()
            .map(|s| SessionInfo {
                id: s.id.clone(),
                client_name: s.client_name.clone(),
                ttl: s.ttl,
                handles: s.handles.lock().len() as u32,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Every live mapping, shared ones first, then private copies.
    pub fn mappings(&self) -> Vec<MappingInfo> {
        let info = |m: &Mapping| MappingInfo {
            name: m.name().to_owned(),
            path: m.path().unwrap_or_default().to_owned(),
            length: m.len(),
            access: m.access(),
            handles: m.handles(),
        };
        let mut out: Vec<MappingInfo> = self.names.lock().values().map(|m| info(m)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(
            self.handles
                .iter()
                .filter(|h| h.mapping().is_private())
                .map(|h| info(h.mapping())),
        );
        out
    }

    /// Closes every session (and so flushes every mapping): shutdown.
    pub fn shutdown(&self) {
        let ids: Vec<String> = self.sessions.lock().keys().cloned().collect();
        for id in ids {
            let _ = self.close_session(&id);
        }
    }
}

/// Whether a Map of an existing name may attach to `existing`.
fn check_attach(
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
