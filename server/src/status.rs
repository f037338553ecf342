//! The gRPC side of [`Error`]: its single, exhaustive mapping to a status
//! code, a `google.rpc.ErrorInfo` reason and the Python exception a client
//! should raise (`classify` has no catch-all arm on purpose), and the
//! metadata each variant carries. Only the adapters (services, layers)
//! turn errors into statuses; the domain never sees a code or a reason.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

/// `ErrorInfo.domain` of every error the server returns.
pub const DOMAIN: &str = "mmapd";

/// What an error becomes on the wire.
struct Class {
    code: Code,
    reason: &'static str,
    /// The Python exception a client should raise; carried as metadata so
    /// that non-Python reasons still map to an exception.
    python: &'static str,
}

impl Error {
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
            Error::Rename { errno, .. } => {
                c(errno_code(*errno), "OS_ERROR", errno_exception(*errno))
            }
            Error::Busy { .. } => c(Code::FailedPrecondition, "MAPPING_BUSY", "OSError"),
            Error::PathEscape(_) => c(Code::PermissionDenied, "PATH_ESCAPE", "PermissionError"),
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
            Error::Rename { errno, from, to } => {
                md.insert("errno".into(), errno.to_string());
                md.insert("path".into(), from.clone());
                md.insert("path2".into(), to.clone());
            }
            Error::Busy { path, name } => {
                md.insert("errno".into(), "16".into());
                md.insert("path".into(), path.clone());
                md.insert("name".into(), name.clone());
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
        // The file is fine but not now, or not on this file system. EBUSY
        // on a path (a folder's own `.`, a mount point) is as lasting as
        // MAPPING_BUSY, which shares its errno: UNAVAILABLE would have
        // gRPC retry policies repeat it.
        E::TXTBSY | E::OPNOTSUPP | E::NOSYS | E::NOTEMPTY | E::BUSY => Code::FailedPrecondition,
        E::OVERFLOW => Code::OutOfRange,
        // Transient: the same call may succeed when retried.
        E::INTR | E::TIMEDOUT | E::STALE => Code::Unavailable,
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
            (E::BUSY, Code::FailedPrecondition),
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
