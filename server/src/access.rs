//! Who may do what: the access file (identities with a role and path
//! prefixes, found by bearer-token hash or client-certificate name), its
//! reload, and [`Caller`], the identity of one call, which every domain
//! check goes through. Knows nothing of gRPC: the transport layer resolves
//! a request's credentials into a `Caller`, and the adapters hand it on.
#![forbid(unsafe_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::RwLock;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, Result},
    mapping::Access,
    paths::{Root, Symlinks},
};

/// What an identity may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Map with READ or COPY access only; no Resize, Flush or Move.
    Read,
    /// Every data operation within its paths.
    Readwrite,
    /// Also sees every session and mapping.
    Admin,
}

/// One identity of the access file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its name; under mTLS, the subject CN of its certificate.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Prefixes of the paths (and anonymous-region names) it may map.
    pub paths: Vec<String>,
}

impl Identity {
    /// Whether `name` (a path under the root or a mapping name) lies under
    /// one of the identity's prefixes.
    pub fn covers(&self, name: &str) -> bool {
        self.paths.iter().any(|prefix| name.starts_with(prefix))
    }
}

/// The file's shape: `[[identity]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    identity: Vec<IdentityShape>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityShape {
    name: String,
    token_sha256: Option<String>,
    role: Role,
    paths: Vec<String>,
}

/// A parsed access file.
#[derive(Debug, Default)]
pub struct AccessFile {
    by_token: HashMap<[u8; 32], Arc<Identity>>,
    by_name: HashMap<String, Arc<Identity>>,
}

impl AccessFile {
    /// Parses the TOML text; every mistake names the identity it is in.
    pub fn parse(text: &str) -> std::result::Result<AccessFile, String> {
        let shape: FileShape = toml::from_str(text).map_err(|err| err.to_string())?;
        let mut file = AccessFile::default();
        for (i, entry) in shape.identity.into_iter().enumerate() {
            let at = format!("identity #{} ({:?})", i + 1, entry.name);
            if entry.name.is_empty() {
                return Err(format!("{at}: name is empty"));
            }
            let paths = entry
                .paths
                .iter()
                .map(|p| normalize_prefix(p).map_err(|err| format!("{at}: {err}")))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let identity = Arc::new(Identity {
                name: entry.name.clone(),
                role: entry.role,
                paths,
            });
            if let Some(hex) = entry.token_sha256 {
                let hash = parse_hash(&hex).ok_or_else(|| {
                    format!("{at}: token_sha256 must be 64 hex digits (a SHA-256)")
                })?;
                if file.by_token.insert(hash, Arc::clone(&identity)).is_some() {
                    return Err(format!("{at}: another identity has the same token"));
                }
            }
            if file.by_name.insert(entry.name, identity).is_some() {
                return Err(format!("{at}: the name is given twice"));
            }
        }
        Ok(file)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> std::result::Result<AccessFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read access file {}: {err}", path.display()))?;
        AccessFile::parse(&text).map_err(|err| format!("bad access file {}: {err}", path.display()))
    }

    /// The identity whose token this is.
    pub fn by_token(&self, token: &str) -> Option<Arc<Identity>> {
        self.by_token.get(&sha256(token.as_bytes())).cloned()
    }

    /// The identity of this name (a client certificate's CN).
    pub fn by_name(&self, name: &str) -> Option<Arc<Identity>> {
        self.by_name.get(name).cloned()
    }

    /// How many identities it holds.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether it holds none (then nobody gets in, except health checks).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A prefix in the form paths are matched in (`./a//b/` is `a/b/`), since
/// a prefix that is not could never match. One that climbs out of the root
/// or starts at `/` is a mistake, not a prefix.
fn normalize_prefix(prefix: &str) -> std::result::Result<String, String> {
    let bare = prefix.trim_end_matches('/');
    if bare.is_empty() {
        return match prefix {
            "" => Ok(String::new()),
            _ => Err(format!("path prefix {prefix:?} is not under the root")),
        };
    }
    let normalized = Root::normalize(bare)
        .map_err(|_| format!("path prefix {prefix:?} is not under the root"))?;
    Ok(match prefix.ends_with('/') {
        true => normalized + "/",
        false => normalized,
    })
}

/// The hex SHA-256 of a token, as the access file holds it.
pub fn token_hash(token: &str) -> String {
    sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// How a server decides who calls: the access file it was started with
/// (swapped whole on reload), and whether client certificates are verified.
#[derive(Debug)]
pub struct Policy {
    file: Option<(PathBuf, RwLock<Arc<AccessFile>>)>,
    client_certs: bool,
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Identities in the new file.
    pub identities: usize,
    /// Names removed, or whose role or paths changed.
    pub revoked: Vec<String>,
}

impl Policy {
    /// Loads the access file (if any); `client_certs` says that the TLS
    /// layer verifies client certificates against a CA.
    pub fn new(
        access_file: Option<&Path>,
        client_certs: bool,
    ) -> std::result::Result<Policy, String> {
        let file = match access_file {
            Some(path) => Some((
                path.to_owned(),
                RwLock::new(Arc::new(AccessFile::load(path)?)),
            )),
            None => None,
        };
        Ok(Policy { file, client_certs })
    }

    /// Whether calls need credentials at all.
    pub fn enforced(&self) -> bool {
        self.file.is_some() || self.client_certs
    }

    /// Reads the access file again; on failure the old one stays.
    /// Returns the identities the new file holds, and the names of those
    /// it removed or changed (their role or paths): what they were granted
    /// before must not outlive the reload, so `revoke` is called with them
    /// before the new file is released to callers. Why under the lock: a
    /// client that sees the new file (a new identity that now answers) must
    /// never also see a revoked identity's sessions still alive.
    pub fn reload(&self, revoke: impl FnOnce(&[String])) -> std::result::Result<Reloaded, String> {
        let Some((path, current)) = &self.file else {
            return Err("no --access-file was given: nothing to reload".into());
        };
        let fresh = AccessFile::load(path)?;
        let mut old = current.write();
        let mut revoked: Vec<String> = old
            .by_name
            .iter()
            .filter(|(name, was)| fresh.by_name.get(*name).is_none_or(|now| now != *was))
            .map(|(name, _)| name.clone())
            .collect();
        revoked.sort();
        let identities = fresh.len();
        *old = Arc::new(fresh);
        revoke(&revoked);
        drop(old);
        Ok(Reloaded {
            identities,
            revoked,
        })
    }

    /// The identity behind a request's bearer `token` and the subject CN
    /// of its verified client certificate (`cert`), tokens first: a wrong
    /// token is refused even when a certificate came with it, so a typo is
    /// noticed.
    pub fn identify(&self, token: Option<&str>, cert: Option<&str>) -> Result<Caller> {
        if !self.enforced() {
            return Ok(Caller::open());
        }
        let file = self.file.as_ref().map(|(_, f)| Arc::clone(&f.read()));
        let identity = match (token, cert, &file) {
            (Some(token), _, Some(file)) => file.by_token(token).ok_or(Error::Unauthenticated(
                "the bearer token matches no identity",
            ))?,
            (Some(_), _, None) => {
                return Err(Error::Unauthenticated(
                    "this server takes client certificates, not bearer tokens",
                ));
            }
            (None, Some(cn), Some(file)) => file.by_name(cn).ok_or(Error::Unauthenticated(
                "the client certificate's name matches no identity",
            ))?,
            // mTLS alone: the CA vouches for everyone it signed, but not
            // for their seeing each other's sessions and mappings.
            (None, Some(cn), None) => Arc::new(Identity {
                name: cn.to_owned(),
                role: Role::Readwrite,
                paths: vec![String::new()],
            }),
            (None, None, _) => {
                return Err(Error::Unauthenticated(
                    "credentials required: send `authorization: Bearer <token>` or a client certificate",
                ));
            }
        };
        Ok(Caller {
            identity: Some(identity),
            method: None,
        })
    }
}

/// The identity one call runs as; `open()` when the server checks nothing.
/// It carries the call's method for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    identity: Option<Arc<Identity>>,
    method: Option<Arc<str>>,
}

/// A guarded operation, named as the audit log and the error name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Resize a mapping.
    Resize,
    /// Flush a mapping to its file.
    Flush,
    /// Move bytes within a mapping.
    Move,
}

/// A call of the Files service, named as the audit log and the error
/// name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// List a folder.
    List,
    /// Stat a path.
    Stat,
    /// Make a folder.
    MakeDir,
    /// Remove a path.
    Remove,
    /// Rename a path (checked for both ends).
    Rename,
    /// Set a file's size, or create it.
    Truncate,
}

impl FileAction {
    fn name(self) -> &'static str {
        match self {
            FileAction::List => "list",
            FileAction::Stat => "stat",
            FileAction::MakeDir => "mkdir",
            FileAction::Remove => "remove",
            FileAction::Rename => "rename",
            FileAction::Truncate => "truncate",
        }
    }

    fn writes(self) -> bool {
        match self {
            FileAction::List | FileAction::Stat => false,
            FileAction::MakeDir
            | FileAction::Remove
            | FileAction::Rename
            | FileAction::Truncate => true,
        }
    }
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Resize => "resize",
            Action::Flush => "flush",
            Action::Move => "move",
        }
    }
}

impl Caller {
    /// Anyone, on a server without access control.
    pub fn open() -> Caller {
        Caller::default()
    }

    /// A caller with this identity.
    pub fn new(identity: Identity) -> Caller {
        Caller {
            identity: Some(Arc::new(identity)),
            method: None,
        }
    }

    /// The same caller, making a call to `method` (for the audit log).
    pub fn calling(mut self, method: &str) -> Caller {
        self.method = Some(method.into());
        self
    }

    /// The identity, if the server checks identities.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// The name sessions opened by this caller are owned by.
    pub fn owner(&self) -> Option<&str> {
        self.identity().map(|i| i.name.as_str())
    }

    /// Whether listings show this caller everything.
    pub fn sees_all(&self) -> bool {
        self.identity().is_none_or(|i| i.role == Role::Admin)
    }

    /// Whether opening paths for this caller may follow symlinks: only if
    /// it may map everything, since a link under one of its prefixes may
    /// point at a file outside them.
    pub fn symlinks(&self) -> Symlinks {
        match self.identity() {
            Some(identity) if !identity.covers("") => Symlinks::Refuse,
            Some(_) | None => Symlinks::Follow,
        }
    }

    /// Whether a session or handle owned by `owner` is this caller's.
    pub fn owns(&self, owner: Option<&str>) -> bool {
        self.owner() == owner
    }

    /// Whether the caller may Map `path` (may be empty: anonymous or by
    /// name) under `name` (may be empty: the path, or a fresh name) with
    /// Python's access number `access`.
    pub fn check_map(&self, path: &str, name: &str, access: i32, create: bool) -> Result<()> {
        let Some(identity) = self.identity() else {
            return Ok(());
        };
        if identity.role == Role::Read {
            if !matches!(Access::from_python(access), Ok(Access::Read | Access::Copy)) {
                return Err(self.denied("map writable", name_or(path, name)));
            }
            // Creating sizes the file and reserves its blocks: a write.
            if create && !path.is_empty() {
                return Err(self.denied("create", path));
            }
        }
        if !path.is_empty() {
            // An escaping path is refused later as PathEscape, whoever asks.
            if let Ok(normalized) = Root::normalize(path)
                && !identity.covers(&normalized)
            {
                return Err(self.denied("map", &normalized));
            }
        }
        if !name.is_empty() && !identity.covers(name) {
            return Err(self.denied("map", name));
        }
        Ok(())
    }

    /// Whether the caller may run the Files call `action` on `path` (a
    /// normalized path; "" is the root). Listing and stat need the path
    /// under one of the identity's prefixes, or on the way to one (a
    /// listing then shows only what leads to its prefixes); every change
    /// needs a writing role and the path under a prefix.
    pub fn check_file(&self, action: FileAction, path: &str) -> Result<()> {
        let Some(identity) = self.identity() else {
            return Ok(());
        };
        let name = action.name();
        if action.writes() && identity.role == Role::Read {
            return Err(self.denied(name, path));
        }
        let allowed = if action.writes() {
            identity.covers(path)
        } else {
            self.shows_path(path)
        };
        if allowed {
            Ok(())
        } else {
            Err(self.denied(name, path))
        }
    }

    /// Whether a listing shows `path` to this caller: it lies under one of
    /// the identity's prefixes, or is a folder on the way to one.
    pub fn shows_path(&self, path: &str) -> bool {
        self.identity().is_none_or(|identity| {
            identity.covers(path)
                || identity.paths.iter().any(|prefix| {
                    path.is_empty()
                        || prefix
                            .strip_prefix(path)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
        })
    }

    /// Whether the caller's role allows `action` on the mapping `target`.
    pub fn check(&self, action: Action, target: &str) -> Result<()> {
        match self.identity() {
            Some(identity) if identity.role == Role::Read => {
                Err(self.denied(action.name(), target))
            }
            Some(_) | None => Ok(()),
        }
    }

    /// Logs a refused call for the audit: one `warn` event, no secrets.
    pub fn audit(&self, action: &str, target: &str, reason: &str) {
        tracing::warn!(
            identity = self.owner().unwrap_or_default(),
            method = self.method.as_deref().unwrap_or_default(),
            action,
            target,
            reason,
            "call denied"
        );
    }

    /// The refusal of `action` on `target`, audited.
    fn denied(&self, action: &'static str, target: &str) -> Error {
        self.audit(action, target, "ACCESS_DENIED");
        let identity = self.owner().unwrap_or_default().to_owned();
        Error::Denied {
            identity,
            action,
            target: target.to_owned(),
        }
    }
}

fn name_or<'a>(path: &'a str, name: &'a str) -> &'a str {
    if name.is_empty() { path } else { name }
}

#[cfg(test)]
mod tests;
