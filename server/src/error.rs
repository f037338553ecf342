//! The one error type of the server and its single, exhaustive mapping to a
//! gRPC status with exactly one `google.rpc.ErrorInfo`.
//!
//! Variants are named for the situation, not the status code, so every new
//! variant forces a decision about its code, reason and Python exception in
//! [`Error::classify`] (which has no catch-all arm on purpose).

use std::{borrow::Cow, collections::HashMap, io};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every error the server returns.
pub const DOMAIN: &str = "mmapd";

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

/// What an error becomes on the wire.
struct Class {
    code: Code,
    reason: &'static str,
    /// The Python exception a client should raise; carried as metadata so
    /// that non-Python reasons still map to an exception.
    python: &'static str,
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

    fn classify(&self) -> Class {
        let c = |code, reason, python| Class {
            code,
            reason,
            python,
        };
        match self {
            Error::Closed => c(Code::FailedPrecondition, "VALUE_ERROR", "ValueError"),
            Error::AccessDenied(_) => c(Code::FailedPrecondition, "TYPE_ERROR", "TypeError"),
            Error::PastEnd(_) => c(Code::OutOfRange, "VALUE_ERROR", "ValueError"),
            Error::IndexPastEnd(_) => c(Code::OutOfRange, "INDEX_ERROR", "IndexError"),
            Error::BadValue(_) => c(Code::InvalidArgument, "VALUE_ERROR", "ValueError"),
            Error::WrongSize(_) => c(Code::InvalidArgument, "INDEX_ERROR", "IndexError"),
            Error::Overflow(_) => c(Code::InvalidArgument, "OVERFLOW_ERROR", "OverflowError"),
            Error::Os { errno, .. } => c(errno_code(*errno), "OS_ERROR", errno_exception(*errno)),
            Error::PathEscape(_) => c(Code::PermissionDenied, "OS_ERROR", "PermissionError"),
            Error::SessionNotFound(_) => c(Code::NotFound, "SESSION_NOT_FOUND", "OSError"),
            Error::Unauthenticated(_) => {
                c(Code::Unauthenticated, "UNAUTHENTICATED", "PermissionError")
            }
            Error::Denied { .. } => c(Code::PermissionDenied, "ACCESS_DENIED", "PermissionError"),
            Error::HandleNotFound(_) => c(Code::NotFound, "HANDLE_NOT_FOUND", "ValueError"),
            Error::MappingNotFound(_) => {
                c(Code::NotFound, "MAPPING_NOT_FOUND", "FileNotFoundError")
            }
            Error::MappingConflict { .. } => {
                c(Code::AlreadyExists, "MAPPING_CONFLICT", "ValueError")
            }
            Error::AdviceRefused(_) => c(Code::InvalidArgument, "VALUE_ERROR", "ValueError"),
            Error::InUse { .. } => c(Code::FailedPrecondition, "VALUE_ERROR", "ValueError"),
            Error::TooLarge { .. } => {
                c(Code::ResourceExhausted, "MESSAGE_TOO_LARGE", "MemoryError")
            }
            Error::RequestTooLarge(_) => {
                c(Code::ResourceExhausted, "MESSAGE_TOO_LARGE", "MemoryError")
            }
            Error::Unimplemented(_) => {
                c(Code::Unimplemented, "UNIMPLEMENTED", "NotImplementedError")
            }
            Error::Protocol(_) => c(Code::InvalidArgument, "INVALID_REQUEST", "ValueError"),
            Error::Quota { .. } => c(Code::ResourceExhausted, "QUOTA_EXCEEDED", "OSError"),
            Error::Broken { .. } => c(Code::DataLoss, "MAPPING_BROKEN", "OSError"),
            Error::Internal(_) => c(Code::Internal, "INTERNAL", "SystemError"),
            Error::PartialWrite { cause, .. } => cause.classify(),
        }
    }

    fn metadata(&self, python: &str) -> HashMap<String, String> {
        let mut md = HashMap::from([("exception".to_owned(), python.to_owned())]);
        match self {
            Error::PartialWrite { written, cause } => {
                md = cause.metadata(python);
                md.insert("written".into(), written.to_string());
            }
            Error::Os { errno, path } => {
                md.insert("errno".into(), errno.to_string());
                if let Some(p) = path {
                    md.insert("path".into(), p.clone());
                }
            }
            Error::PathEscape(p) => {
                md.insert("errno".into(), "13".into());
                md.insert("path".into(), p.clone());
            }
            Error::SessionNotFound(id) => {
                md.insert("session_id".into(), id.clone());
            }
            Error::HandleNotFound(id) => {
                md.insert("handle".into(), id.clone());
            }
            Error::Denied {
                identity,
                action,
                target,
            } => {
                md.insert("identity".into(), identity.clone());
                md.insert("action".into(), (*action).to_owned());
                if !target.is_empty() {
                    md.insert("target".into(), target.clone());
                }
            }
            Error::MappingNotFound(name)
            | Error::MappingConflict { name, .. }
            | Error::InUse { other: name, .. } => {
                md.insert("name".into(), name.clone());
            }
            Error::AdviceRefused(option) => {
                md.insert("option".into(), option.to_string());
            }
            Error::Quota { limit, value } => {
                md.insert("limit".into(), (*limit).to_owned());
                md.insert("value".into(), value.to_string());
            }
            Error::Broken { name } => {
                md.insert("errno".into(), "5".into());
                md.insert("name".into(), name.clone());
            }
            Error::Closed
            | Error::AccessDenied(_)
            | Error::PastEnd(_)
            | Error::IndexPastEnd(_)
            | Error::BadValue(_)
            | Error::WrongSize(_)
            | Error::Overflow(_)
            | Error::TooLarge { .. }
            | Error::RequestTooLarge(_)
            | Error::Unimplemented(_)
            | Error::Protocol(_)
            | Error::Unauthenticated(_)
            | Error::Internal(_) => {}
        }
        md
    }

    /// The gRPC status code this error maps to.
    pub fn code(&self) -> Code {
        self.classify().code
    }

    /// The `ErrorInfo.reason` this error maps to.
    pub fn reason(&self) -> &'static str {
        self.classify().reason
    }
}

/// Longest message or metadata value a status carries: a huge path or
/// name must not push the trailers past HTTP/2's header-list limits.
const MAX_TEXT: usize = 1024;

/// `text` cut to [`MAX_TEXT`] bytes at a char boundary, with an ellipsis.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT - '…'.len_utf8();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let class = err.classify();
        let metadata: HashMap<_, _> = err
            .metadata(class.python)
            .into_iter()
            .map(|(k, v)| (k, bounded(v)))
            .collect();
        let details = ErrorDetails::with_error_info(class.reason, DOMAIN, metadata);
        Status::with_error_details(class.code, bounded(err.to_string()), details)
    }
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

/// errno → status code: the caller's mistakes are client errors, the
/// machine's troubles are server errors.
fn errno_code(errno: i32) -> Code {
    use rustix::io::Errno as E;
    match E::from_raw_os_error(errno) {
        E::NOENT => Code::NotFound,
        E::ACCESS | E::PERM | E::ROFS => Code::PermissionDenied,
        E::INVAL | E::NODEV | E::ISDIR | E::NOTDIR | E::BADF | E::NAMETOOLONG | E::LOOP => {
            Code::InvalidArgument
        }
        // EAGAIN from mmap/mremap/madvise: the kernel is short of memory
        // or map areas, not a server bug.
        E::NOMEM | E::AGAIN | E::NOSPC | E::FBIG | E::MFILE | E::NFILE | E::DQUOT => {
            Code::ResourceExhausted
        }
        E::EXIST => Code::AlreadyExists,
        // A path naming something that cannot be mapped: a socket (ENXIO),
        // like a FIFO or a device (ENODEV).
        E::NXIO | E::SPIPE | E::MLINK | E::XDEV => Code::InvalidArgument,
        // The file is fine but not now, or not on this file system.
        E::TXTBSY | E::OPNOTSUPP | E::NOSYS => Code::FailedPrecondition,
        E::OVERFLOW => Code::OutOfRange,
        // Transient: the same call may succeed when retried.
        E::BUSY | E::INTR | E::TIMEDOUT | E::STALE => Code::Unavailable,
        // The disk lost written data (writeback errors surface at fsync).
        E::IO => Code::DataLoss,
        _ => Code::Internal,
    }
}

/// The `OSError` subclass CPython raises for an errno.
fn errno_exception(errno: i32) -> &'static str {
    use rustix::io::Errno as E;
    match E::from_raw_os_error(errno) {
        E::NOENT => "FileNotFoundError",
        E::ACCESS | E::PERM => "PermissionError",
        E::ISDIR => "IsADirectoryError",
        E::NOTDIR => "NotADirectoryError",
        E::EXIST => "FileExistsError",
        _ => "OSError",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: &Status) -> tonic_types::ErrorInfo {
        status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("one ErrorInfo")
    }

    #[test]
    fn closed_is_failed_precondition_value_error() {
        let status = Status::from(Error::Closed);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "mmap closed or invalid");
        let info = info(&status);
        assert_eq!(info.reason, "VALUE_ERROR");
        assert_eq!(info.domain, DOMAIN);
    }

    #[test]
    fn os_error_text_matches_python() {
        let err = Error::Os {
            errno: 2,
            path: Some("a/b".into()),
        };
        assert_eq!(
            err.to_string(),
            "[Errno 2] No such file or directory: 'a/b'"
        );
        let status = Status::from(err);
        assert_eq!(status.code(), Code::NotFound);
        let info = info(&status);
        assert_eq!(info.reason, "OS_ERROR");
        assert_eq!(info.metadata["errno"], "2");
        assert_eq!(info.metadata["exception"], "FileNotFoundError");
        assert_eq!(Error::errno(22).to_string(), "[Errno 22] Invalid argument");
    }

    #[test]
    fn errnos_a_client_can_cause_are_never_internal() {
        use rustix::io::Errno as E;
        for (errno, code) in [
            (E::NXIO, Code::InvalidArgument),
            (E::NODEV, Code::InvalidArgument),
            (E::NAMETOOLONG, Code::InvalidArgument),
            (E::AGAIN, Code::ResourceExhausted),
            (E::NOMEM, Code::ResourceExhausted),
            (E::NOSPC, Code::ResourceExhausted),
            (E::FBIG, Code::ResourceExhausted),
            (E::OVERFLOW, Code::OutOfRange),
            (E::TXTBSY, Code::FailedPrecondition),
            (E::BUSY, Code::Unavailable),
            (E::IO, Code::DataLoss),
        ] {
            let status = Status::from(Error::errno(errno.raw_os_error()));
            assert_eq!(status.code(), code, "{errno:?}");
            assert_eq!(info(&status).reason, "OS_ERROR");
        }
    }

    #[test]
    fn huge_paths_are_cut_in_message_and_metadata() {
        let path = "é".repeat(5_000);
        let status = Status::from(Error::Os {
            errno: 2,
            path: Some(path),
        });
        assert!(
            status.message().len() <= MAX_TEXT,
            "{}",
            status.message().len()
        );
        assert!(status.message().ends_with('…'));
        let path = &info(&status).metadata["path"];
        assert!(path.len() <= MAX_TEXT && path.ends_with('…'));
        assert!(path.starts_with("éé"));
        // Short texts are untouched.
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn past_end_is_out_of_range() {
        let status = Status::from(Error::PastEnd("seek out of range".into()));
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(info(&status).reason, "VALUE_ERROR");
    }
}
