//! The one error type of the server: every way a request can fail, named
//! for the situation, with CPython's message as its `Display`. It knows
//! nothing of gRPC; `crate::status` maps each variant, exhaustively, to a
//! status code and one `google.rpc.ErrorInfo`, so every new variant forces
//! a decision there.

use std::{borrow::Cow, io};

/// Shorthand for results of domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The handle was closed, expired with its session, or never existed.
    #[error("mmap closed or invalid")]
    Closed,
    /// A write or resize on a map whose access mode forbids it (CPython's
    /// `TypeError`).
    #[error("{0}")]
    AccessDenied(&'static str),
    /// A position, range or offset past the end (CPython's `ValueError`).
    #[error("{0}")]
    PastEnd(Cow<'static, str>),
    /// An index past the end (CPython's `IndexError`).
    #[error("{0}")]
    IndexPastEnd(&'static str),
    /// A malformed argument that CPython rejects with `ValueError`.
    #[error("{0}")]
    BadValue(Cow<'static, str>),
    /// Slice assignment data of the wrong length (CPython's `IndexError`).
    #[error("{0}")]
    WrongSize(&'static str),
    /// An argument out of its C type's range (CPython's `OverflowError`).
    #[error("{0}")]
    Overflow(Cow<'static, str>),
    /// A failed system call, with CPython's `OSError` text.
    #[error("[Errno {errno}] {}{}", strerror(*.errno), path_suffix(.path.as_deref()))]
    Os {
        /// The errno value.
        errno: i32,
        /// The path involved, shown like Python's `FileNotFoundError`.
        path: Option<String>,
    },
    /// A failed rename, named as Python names it (`'from' -> 'to'`).
    #[error("[Errno {errno}] {}: '{from}' -> '{to}'", strerror(*.errno))]
    Rename {
        /// The errno value.
        errno: i32,
        /// The path renamed.
        from: String,
        /// Its new path.
        to: String,
    },
    /// A Remove, Rename or shrinking Truncate of a file that a live
    /// mapping uses: removing it would leave the mapping on a ghost, and
    /// shrinking it would cut pages from under the mapping.
    #[error("[Errno 16] Device or resource busy: '{path}' is used by mapping {name:?}")]
    Busy {
        /// The file (or folder) the call was refused on.
        path: String,
        /// A mapping that uses it.
        name: String,
    },
    /// A path that resolves outside the data root.
    #[error("[Errno 13] Permission denied: {0:?} is outside the data root")]
    PathEscape(String),
    /// An unknown or expired session.
    #[error("session {0:?} not found or expired")]
    SessionNotFound(String),
    /// No valid credential, on a server that checks them.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller's role or paths do not allow the call.
    #[error("identity {identity:?} may not {action}{}", target_suffix(.target))]
    Denied {
        /// The caller's identity.
        identity: String,
        /// What was refused ("map", "resize", "admin"...).
        action: &'static str,
        /// The path or name it was refused on; may be empty.
        target: String,
    },
    /// A handle of a session the caller does not own: as unknown to it as
    /// one that never existed.
    #[error("handle {0:?} not found")]
    HandleNotFound(String),
    /// Attaching by name to a mapping that does not exist.
    #[error("no mapping named {0:?}")]
    MappingNotFound(String),
    /// Attaching by name with arguments that contradict the mapping.
    #[error("mapping {name:?} already exists with a different {what}")]
    MappingConflict {
        /// The registry name.
        name: String,
        /// Which argument differs.
        what: &'static str,
    },
    /// A resize that would cut the file under another live mapping of it
    /// (CPython would crash with SIGBUS on that mapping's next access).
    #[error("cannot shrink the file below byte {end}: mapping {other:?} still maps it")]
    InUse {
        /// The other mapping's name.
        other: String,
        /// Where the other mapping ends in the file.
        end: u64,
    },
    /// madvise advice that is dangerous for a shared server or unknown.
    #[error("madvise option {0} is refused by this server")]
    AdviceRefused(i32),
    /// A unary reply that would exceed the message size limit.
    #[error("reply of {len} bytes exceeds the {max}-byte message limit; use ReadStream")]
    TooLarge {
        /// Bytes requested.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A streamed write that failed after `written` bytes had landed; the
    /// cause decides the code and reason, `metadata["written"]` the count.
    #[error("{cause}")]
    PartialWrite {
        /// Bytes of earlier chunks that were written.
        written: u64,
        /// Why the next chunk failed.
        cause: Box<Error>,
    },
    /// A request message over the message size limit (tonic's decoder
    /// refused it).
    #[error("{0}")]
    RequestTooLarge(Cow<'static, str>),
    /// A method this server does not have.
    #[error("{0}")]
    Unimplemented(Cow<'static, str>),
    /// A request that breaks the protocol (not a Python-level error).
    #[error("{0}")]
    Protocol(Cow<'static, str>),
    /// A request over one of the server's limits; nothing was done.
    #[error("{limit} limit of {value} reached")]
    Quota {
        /// The limit's name, as in `ServerLimits` (e.g. "max_sessions").
        limit: &'static str,
        /// Its configured value.
        value: u64,
    },
    /// The mapping lost pages under it (the file was truncated outside
    /// mmapd, or its blocks could not be allocated): the access faulted and
    /// was turned into this error. The handle must be closed and remapped.
    #[error(
        "[Errno 5] Input/output error: mapping {name:?} lost pages under it \
         (the file was truncated or could not be written); close it and map again"
    )]
    Broken {
        /// The mapping's name.
        name: String,
    },
    /// A server bug (a panicking handler) or an error from the transport
    /// that has no better class; the server keeps serving.
    #[error("{0}")]
    Internal(Cow<'static, str>),
}

impl Error {
    /// The OS error of an `io::Error`, for a path when there is one.
    pub fn os(err: &io::Error, path: Option<&str>) -> Self {
        Error::Os {
            errno: err.raw_os_error().unwrap_or(libc_eio()),
            path: path.map(str::to_owned),
        }
    }

    /// An OS error from a bare errno.
    pub fn errno(errno: i32) -> Self {
        Error::Os { errno, path: None }
    }
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

/// C's strerror text, which is what CPython puts in `OSError.strerror`.
fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; CPython does not.
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn path_suffix(path: Option<&str>) -> String {
    path.map(|p| format!(": '{p}'")).unwrap_or_default()
}

fn target_suffix(target: &str) -> String {
    match target {
        "" => String::new(),
        t => format!(" {t:?}"),
    }
}
