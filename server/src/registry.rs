//! The registry: sessions (leases), the handles they own, and the named
//! mappings those handles share. Handle lookup is on the data path, so the
//! handle table is sharded (`DashMap`); the session and name tables are
//! only touched when sessions and handles come and go, and never held
//! across disk work: a Map opens, reserves and maps under its name's own
//! lock. Every quota is checked before anything is done.
#![forbid(unsafe_code)]

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Weak,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use dashmap::DashMap;
use parking_lot::Mutex;
use rustix::io::Errno;

use crate::{
    Limits,
    access::Caller,
    error::{Error, Result},
    handle::Handle,
    mapping::{Access, FileGroup, Mapping},
    paths::Root,
    quota::Usage,
};

mod create;
use create::check_attach;
mod files;
mod spelling;
pub use files::{FileInfo, FilesPage};
mod gauges;
mod listing;
pub use listing::{MappingInfo, Page, SessionInfo};
#[cfg(test)]
mod tests;

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
    /// Who asks: the session must be theirs, and the path and name within
    /// their prefixes.
    pub caller: Caller,
}

/// A lease.
#[derive(Debug)]
pub struct Session {
    id: String,
    /// The identity that opened it; only it may use the session. `None`
    /// on a server without access control.
    owner: Option<String>,
    client_name: String,
    ttl: Duration,
    deadline: Mutex<Instant>,
    handles: Mutex<HashSet<String>>,
    /// Handles open or being mapped: the per-session quota counts Maps in
    /// flight too, so racing Maps cannot overshoot it.
    slots: AtomicU32,
}

/// One mapping name. Maps of the name serialize on `create`, which is held
/// across the open, fallocate and mmap; everything else only takes `state`,
/// briefly, so slow disk work for one name never stalls another.
#[derive(Debug, Default)]
struct Entry {
    create: Mutex<()>,
    state: Mutex<EntryState>,
}

#[derive(Debug, Default)]
struct EntryState {
    mapping: Option<Arc<Mapping>>,
    /// Removed from the name table: a Map that waited on `create` must look
    /// the name up again.
    dead: bool,
}

/// Sessions, handles and mappings of one server.
#[derive(Debug)]
pub struct Registry {
    root: Root,
    default_ttl: Duration,
    limits: Limits,
    sessions: Mutex<BTreeMap<String, Arc<Session>>>,
    handles: DashMap<String, Arc<Handle>>,
    /// Shared mappings by name. Private (ACCESS_COPY) mappings are owned by
    /// their handle alone and are listed through the handle table.
    names: Mutex<BTreeMap<String, Arc<Entry>>>,
    /// Mappings grouped by inode, so resizes cannot cut under siblings.
    groups: Mutex<HashMap<(u64, u64), Weak<FileGroup>>>,
    usage: Arc<Usage>,
}

/// Longest session id echoed back in an error: ids are ours (32 hex
/// digits), so a longer one is garbage that must not fill the reply.
const MAX_ECHOED_ID: usize = 64;

/// Sessions out of the table whose handles are not closed yet.
#[must_use = "their handles stay open until Registry::close_taken"]
#[derive(Debug)]
pub struct Taken {
    sessions: Vec<Arc<Session>>,
    why: &'static str,
}

impl Registry {
    /// A registry over an opened root, enforcing `limits`.
    pub fn new(root: Root, default_ttl: Duration, limits: Limits) -> Registry {
        Registry {
            root,
            // An operator's huge TTL must not overflow `Instant + ttl`.
            default_ttl: default_ttl.clamp(Duration::from_secs(1), MAX_TTL),
            limits,
            sessions: Mutex::default(),
            handles: DashMap::new(),
            names: Mutex::default(),
            groups: Mutex::default(),
            usage: Usage::new(&limits),
        }
    }

    /// The TTL given to sessions that ask for 0.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// Live sessions.
    pub fn session_count(&self) -> u32 {
        self.sessions.lock().len() as u32
    }

    /// Live mappings (shared ones and private copies).
    pub fn mapping_count(&self) -> u32 {
        self.usage.mappings()
    }

    /// Bytes of anonymous regions and private copies.
    pub fn anonymous_bytes(&self) -> u64 {
        self.usage.anonymous_bytes()
    }

    /// Opens a session owned by `caller`; returns its id and granted TTL.
    pub fn open_session(
        &self,
        client_name: &str,
        ttl_seconds: u32,
        caller: &Caller,
    ) -> Result<(String, Duration)> {
        check_len(
            "max_client_name_length",
            client_name,
            self.limits.max_client_name_length,
        )?;
        let ttl = match ttl_seconds {
            0 => self.default_ttl,
            s => Duration::from_secs(s.into()).min(MAX_TTL),
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = Session {
            id: id.clone(),
            owner: caller.owner().map(str::to_owned),
            client_name: client_name.to_owned(),
            ttl,
            deadline: Mutex::new(Instant::now() + ttl),
            handles: Mutex::default(),
            slots: AtomicU32::new(0),
        };
        {
            let mut sessions = self.sessions.lock();
            let max = self.limits.max_sessions;
            if sessions.len() >= max as usize {
                return Err(Error::Quota {
                    limit: "max_sessions",
                    value: max.into(),
                });
            }
            sessions.insert(id.clone(), Arc::new(session));
        }
        tracing::info!(
            session = %id,
            client = client_name,
            identity = caller.owner().unwrap_or_default(),
            ttl = ttl.as_secs(),
            "session opened"
        );
        Ok((id, ttl))
    }

    fn session(&self, id: &str) -> Result<Arc<Session>> {
        self.sessions
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// The caller's session: another identity's is as unknown as a
    /// missing one, so ids cannot be probed.
    fn owned_session(&self, id: &str, caller: &Caller) -> Result<Arc<Session>> {
        let session = self.session(id)?;
        if !caller.owns(session.owner.as_deref()) {
            caller.audit("use session", id, "SESSION_NOT_FOUND");
            return Err(not_found(id));
        }
        Ok(session)
    }

    /// Renews the caller's lease; returns the TTL.
    pub fn keep_alive(&self, id: &str, caller: &Caller) -> Result<Duration> {
        let session = self.owned_session(id, caller)?;
        *session.deadline.lock() = Instant::now() + session.ttl;
        Ok(session.ttl)
    }

    /// Closes one of the caller's sessions and every handle it owns.
    pub fn close_session(&self, id: &str, caller: &Caller) -> Result<()> {
        let session = {
            let mut sessions = self.sessions.lock();
            match sessions.get(id) {
                Some(s) if caller.owns(s.owner.as_deref()) => sessions.remove(id),
                Some(_) => {
                    caller.audit("close session", id, "SESSION_NOT_FOUND");
                    None
                }
                None => None,
            }
        };
        let session = session.ok_or_else(|| not_found(id))?;
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

    /// Takes every session owned by one of `owners` (identities a reload
    /// removed or changed) out of the table: from here on their handles
    /// answer as closed. Closing those handles (which may flush mappings,
    /// slowly) is left to [`Registry::close_taken`], so a caller holding a
    /// lock others wait on takes only this quick step under it.
    pub fn take_sessions_of(&self, owners: &[String]) -> Taken {
        Taken {
            sessions: self.take_where(|s| s.owner.as_ref().is_some_and(|o| owners.contains(o))),
            why: "session closed: its identity was removed or changed",
        }
    }

    /// Closes the handles of sessions [`Registry::take_sessions_of`] took;
    /// returns how many sessions that was.
    pub fn close_taken(&self, taken: Taken) -> usize {
        for session in &taken.sessions {
            let identity = session.owner.as_deref().unwrap_or_default();
            tracing::info!(session = %session.id, identity, "{}", taken.why);
            self.close_handles_of(session);
        }
        taken.sessions.len()
    }

    /// Closes every session whose lease ran out; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let sessions = self.take_where(|s| *s.deadline.lock() <= now);
        self.close_taken(Taken {
            sessions,
            why: "session lease expired",
        })
    }

    /// Removes the sessions that match from the table, under one lock, so
    /// a KeepAlive that got in first keeps its session.
    fn take_where(&self, matches: impl Fn(&Session) -> bool) -> Vec<Arc<Session>> {
        let mut sessions = self.sessions.lock();
        let ids: Vec<String> = sessions
            .values()
            .filter(|s| matches(s))
            .map(|s| s.id.clone())
            .collect();
        ids.iter().filter_map(|id| sessions.remove(id)).collect()
    }

    /// A live handle of the caller's, or CPython's "closed or invalid".
    pub fn handle(&self, id: &str, caller: &Caller) -> Result<Arc<Handle>> {
        let handle = self
            .handles
            .get(id)
            .map(|h| Arc::clone(&h))
            .ok_or(Error::Closed)?;
        if !caller.owns(handle.owner()) {
            caller.audit("use handle", id, "HANDLE_NOT_FOUND");
            return Err(Error::HandleNotFound(cut(id, MAX_ECHOED_ID)));
        }
        Ok(handle)
    }

    /// `mmap.mmap(...)`: maps, or attaches to the mapping of the same name.
    /// Every quota is checked before the file system is touched.
    pub fn map(&self, args: MapArgs) -> Result<Arc<Handle>> {
        check_len("max_name_length", &args.name, self.limits.max_name_length)?;
        if args.path.len() > self.limits.max_path_length as usize {
            // What the kernel says of a path past PATH_MAX, with the path cut
            // short so the reply stays small.
            return Err(Error::Os {
                errno: Errno::NAMETOOLONG.raw_os_error(),
                path: Some(cut(&args.path, 64)),
            });
        }
        let session = self.owned_session(&args.session_id, &args.caller)?;
        args.caller
            .check_map(&args.path, &args.name, args.access, args.create)?;
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
        let max = self.limits.max_handles_per_session;
        session
            .slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Error::Quota {
                limit: "max_handles_per_session",
                value: max.into(),
            })?;
        let mapping = match self.find_or_create(&args, access) {
            Ok(mapping) => mapping,
            Err(err) => {
                session.slots.fetch_sub(1, Ordering::AcqRel);
                return Err(err);
            }
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let handle = Arc::new(Handle::new(
            id.clone(),
            session.id.clone(),
            session.owner.clone(),
            access,
            mapping,
        ));
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
        // A name spelled as a folder (`f/`, `d/.`) is refused as `open`
        // refuses it, before it could reach a mapping of the file.
        if let Some(rel) = &normalized
            && spelling::Spelling::of(&args.path).wants_dir
        {
            return Err(self.folder_name_error(&args.caller, rel, &args.path, args.create));
        }
        let mut name = match (&args.name, &normalized) {
            (n, _) if !n.is_empty() => n.clone(),
            (_, Some(path)) => path.clone(),
            (_, None) => format!("anon-{}", uuid::Uuid::new_v4().simple()),
        };
        loop {
            let entry = Arc::clone(self.names.lock().entry(name.clone()).or_default());
            // Maps of this name wait here; Maps of other names do not.
            let _creating = entry.create.lock();
            let existing = {
                let state = entry.state.lock();
                if state.dead {
                    continue;
                }
                state.mapping.clone()
            };
            if let Some(existing) = existing {
                match check_attach(&existing, args, normalized.as_deref(), access) {
                    Ok(()) if access == Access::Copy => {
                        let copy = existing.private_copy(name.clone());
                        // The shared mapping may have closed meanwhile.
                        self.forget_if_empty(&name, &entry);
                        return copy;
                    }
                    Ok(()) => {
                        let state = entry.state.lock();
                        // Its last handle may have closed since we looked.
                        if state
                            .mapping
                            .as_ref()
                            .is_some_and(|m| Arc::ptr_eq(m, &existing))
                        {
                            existing.attach();
                            return Ok(existing);
                        }
                        continue;
                    }
                    // Without an explicit name this is what CPython does with
                    // two mmap objects over other bounds of one file: two
                    // mappings.
                    Err(Error::MappingConflict { .. }) if args.name.is_empty() => {
                        let tag = uuid::Uuid::new_v4().simple().to_string();
                        name = format!("{name}#{}", &tag[..8]);
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            }
            let made = if normalized.is_none() && !args.name.is_empty() && args.length == 0 {
                Err(Error::MappingNotFound(name.clone()))
            } else {
                self.create(args, access, name.clone(), normalized.clone())
            };
            match &made {
                Ok(mapping) if access != Access::Copy => {
                    entry.state.lock().mapping = Some(Arc::clone(mapping));
                }
                _ => self.forget_if_empty(&name, &entry),
            }
            return made;
        }
    }

    /// Drops a name's entry that holds no mapping; the caller holds its
    /// `create` lock, so no Map is half-way through it.
    fn forget_if_empty(&self, name: &str, entry: &Arc<Entry>) {
        let mut names = self.names.lock();
        if names.get(name).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            let mut state = entry.state.lock();
            if state.mapping.is_none() {
                state.dead = true;
                names.remove(name);
            }
        }
    }

    /// Closes one of the caller's handles. Closing a closed handle does
    /// nothing, as in CPython; another identity's is not found.
    pub fn close(&self, id: &str, caller: &Caller) -> Result<()> {
        match self.handle(id, caller) {
            Ok(_) | Err(Error::Closed) => {
                self.close_handle(id);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Closes a handle; flushes and unmaps its mapping if it was the last.
    /// Closing a closed handle does nothing, as in CPython.
    pub fn close_handle(&self, id: &str) {
        let Some((_, handle)) = self.handles.remove(id) else {
            return;
        };
        handle.close();
        if let Ok(session) = self.session(handle.session_id())
            && session.handles.lock().remove(id)
        {
            session.slots.fetch_sub(1, Ordering::AcqRel);
        }
        let mapping = handle.mapping();
        if self.detach(mapping) {
            // Outside every lock: msync of a large mapping is slow.
            if let Err(err) = mapping.flush_all() {
                tracing::error!(name = mapping.name(), %err, "flush on last close failed");
            }
        }
    }

    /// Uncounts a handle of `mapping`; true when it was the last. The last
    /// detach and its removal from the name table happen under the entry's
    /// state lock, the one a Map attaches under, so no Map can attach to a
    /// mapping that is on its way out.
    fn detach(&self, mapping: &Arc<Mapping>) -> bool {
        if mapping.is_private() {
            return mapping.detach();
        }
        let mut names = self.names.lock();
        let Some(entry) = names.get(mapping.name()).cloned() else {
            return mapping.detach();
        };
        let mut state = entry.state.lock();
        let last = mapping.detach();
        if last
            && state
                .mapping
                .as_ref()
                .is_some_and(|m| Arc::ptr_eq(m, mapping))
        {
            state.mapping = None;
            // A Map busy with this name removes the entry itself if it fails.
            if entry.create.try_lock().is_some() {
                state.dead = true;
                names.remove(mapping.name());
            }
        }
        last
    }

    /// Closes every session (and so flushes every mapping): shutdown.
    pub fn shutdown(&self) {
        let sessions: Vec<Arc<Session>> = std::mem::take(&mut *self.sessions.lock())
            .into_values()
            .collect();
        for session in sessions {
            self.close_handles_of(&session);
        }
    }
}

/// An unknown session, echoing at most [`MAX_ECHOED_ID`] bytes of its id.
fn not_found(id: &str) -> Error {
    Error::SessionNotFound(cut(id, MAX_ECHOED_ID))
}

/// Refuses a client-chosen string longer than its limit.
fn check_len(limit: &'static str, value: &str, max: u32) -> Result<()> {
    if value.len() > max as usize {
        return Err(Error::Quota {
            limit,
            value: max.into(),
        });
    }
    Ok(())
}

/// The first `max` bytes of `s` (on a character boundary), marked as cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
