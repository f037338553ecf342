//! The client's error type: gRPC statuses decoded into their mmapd reason
//! (the `google.rpc.ErrorInfo` detail every server error carries), connection
//! failures kept apart so a CLI can map them to their own exit code, and the
//! conversion into `std::io::Error` used by the tokio I/O traits.

use std::{collections::HashMap, fmt, io};

use tonic::Code;
use tonic_types::StatusExt;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status.
    #[error("{}", StatusDisplay { code: *code, reason, message })]
    Status {
        /// The gRPC status code.
        code: Code,
        /// The `ErrorInfo` reason, e.g. `VALUE_ERROR` or `SESSION_NOT_FOUND`;
        /// empty when the status carried no `ErrorInfo`.
        reason: String,
        /// The human-readable status message.
        message: String,
        /// The `ErrorInfo` metadata; `errno` for `OS_ERROR`.
        metadata: HashMap<String, String>,
    },
    /// The server could not be reached when connecting.
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect {
        /// The endpoint that was dialled.
        endpoint: String,
        /// The transport error and its causes, rendered once here because
        /// tonic's own `Display` says only "transport error".
        detail: String,
        /// The underlying transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The connection failed during a call: tonic reports this as
    /// `UNAVAILABLE` without the `ErrorInfo` a server-made error has.
    #[error("connection to the server lost: {message}")]
    Disconnected {
        /// The status message tonic produced.
        message: String,
    },
    /// The endpoint string is not a valid URI.
    #[error("invalid endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was rejected.
        #[source]
        source: tonic::transport::Error,
    },
    /// The connection options cannot be used: TLS material with a plaintext
    /// endpoint, a client certificate without its key, PEM that does not
    /// parse, or a token that cannot be sent as a header.
    #[error("invalid connection options: {0}")]
    Options(String),
    /// The server sent a response that breaks the wire contract.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A local reader or writer failed (upload/download helpers).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `<message> (<CODE>, <REASON>)`, the format the CLI prints.
struct StatusDisplay<'a> {
    code: Code,
    reason: &'a str,
    message: &'a str,
}

impl fmt::Display for StatusDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = if self.message.is_empty() {
            self.code.description()
        } else {
            self.message
        };
        let code = code_name(self.code);
        if self.reason.is_empty() {
            write!(f, "{message} ({code})")
        } else {
            write!(f, "{message} ({code}, {})", self.reason)
        }
    }
}

/// The canonical SCREAMING_SNAKE name of a gRPC code, as in the gRPC spec.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Error {
    /// Decodes a status, keeping the `ErrorInfo` reason and metadata.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let message = status.message().to_owned();
        match details.error_info() {
            Some(info) => Error::Status {
                code: status.code(),
                reason: info.reason.clone(),
                message,
                metadata: info.metadata.clone(),
            },
            None if status.code() == Code::Unavailable => Error::Disconnected { message },
            // Only the client's own transport attaches a source: a status
            // decoded from the server's trailers never has one. So this is a
            // broken connection (an h2 error, a TLS peer hanging up after
            // refusing our certificate), not an answer; `--timeout` expiring
            // is the one transport status that is not.
            None if transport_failure(status) => {
                let mut message = message;
                if let Some(source) = std::error::Error::source(status) {
                    let causes = crate::client::chain(source);
                    if causes.starts_with(&message) {
                        message = causes;
                    } else if !message.contains(&causes) {
                        message = format!("{message}: {causes}");
                    }
                }
                Error::Disconnected { message }
            }
            None => Error::Status {
                code: status.code(),
                reason: String::new(),
                message,
                metadata: HashMap::new(),
            },
        }
    }

    /// Wraps a failed dial, rendering the cause chain for `Display`. On a
    /// TLS endpoint a failure past the TCP connect is named as the TLS
    /// handshake, since rustls' own words ("corrupt message") do not say
    /// that the server probably speaks plaintext.
    pub(crate) fn connect(endpoint: String, tls: bool, source: tonic::transport::Error) -> Self {
        let mut detail = crate::client::chain(&source);
        if tls && !detail.contains("tcp connect error") {
            detail = format!(
                "TLS handshake failed (is the server serving TLS, and is its certificate \
                 trusted?): {detail}"
            );
        }
        Error::Connect {
            endpoint,
            detail,
            source,
        }
    }

    /// The gRPC code: the status code for server errors, `UNAVAILABLE` for
    /// connection failures, `None` for local errors.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status { code, .. } => Some(*code),
            Error::Connect { .. } | Error::Disconnected { .. } => Some(Code::Unavailable),
            Error::InvalidEndpoint { .. }
            | Error::Options(_)
            | Error::Protocol(_)
            | Error::Io(_) => None,
        }
    }

    /// The mmapd reason (`VALUE_ERROR`, `INDEX_ERROR`, `SESSION_NOT_FOUND`,
    /// ...) of a server error that carried one.
    pub fn reason(&self) -> Option<&str> {
        let Error::Status { reason, .. } = self else {
            return None;
        };
        (!reason.is_empty()).then_some(reason.as_str())
    }

    /// The `ErrorInfo` metadata of a server error.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        let Error::Status { metadata, .. } = self else {
            return None;
        };
        Some(metadata)
    }

    /// The status message of a server error.
    pub fn message(&self) -> Option<&str> {
        let Error::Status { message, .. } = self else {
            return None;
        };
        Some(message)
    }

    /// The server-side errno of an `OS_ERROR`.
    pub fn errno(&self) -> Option<i32> {
        self.metadata()?.get("errno")?.parse().ok()
    }

    /// Whether the server was unreachable (at connect time or mid-call), as
    /// opposed to having answered with an error.
    pub fn is_connect_error(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Disconnected { .. })
    }

    fn io_kind(&self) -> io::ErrorKind {
        if let Some(errno) = self.errno() {
            return io::Error::from_raw_os_error(errno).kind();
        }
        match self {
            Error::Connect { .. } => io::ErrorKind::ConnectionRefused,
            Error::Disconnected { .. } => io::ErrorKind::ConnectionAborted,
            Error::InvalidEndpoint { .. } | Error::Options(_) => io::ErrorKind::InvalidInput,
            Error::Protocol(_) => io::ErrorKind::InvalidData,
            Error::Io(err) => err.kind(),
            Error::Status { code, .. } => match code {
                Code::InvalidArgument | Code::OutOfRange => io::ErrorKind::InvalidInput,
                Code::NotFound => io::ErrorKind::NotFound,
                Code::AlreadyExists => io::ErrorKind::AlreadyExists,
                Code::PermissionDenied | Code::Unauthenticated => io::ErrorKind::PermissionDenied,
                Code::DeadlineExceeded => io::ErrorKind::TimedOut,
                Code::Unavailable => io::ErrorKind::ConnectionAborted,
                Code::Unimplemented => io::ErrorKind::Unsupported,
                Code::Ok
                | Code::Cancelled
                | Code::Unknown
                | Code::ResourceExhausted
                | Code::FailedPrecondition
                | Code::Aborted
                | Code::Internal
                | Code::DataLoss => io::ErrorKind::Other,
            },
        }
    }
}

/// Whether the status was made by the client's transport from a connection
/// failure, as opposed to sent by the server or a deadline expiring.
fn transport_failure(status: &tonic::Status) -> bool {
    let mut cause = std::error::Error::source(status);
    if cause.is_none() {
        return false;
    }
    while let Some(err) = cause {
        if err.is::<tonic::TimeoutExpired>() {
            return false;
        }
        cause = err.source();
    }
    true
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::from_status(&status)
    }
}

impl Error {
    /// The error of one failed pipelined op, from its `google.rpc.Status`:
    /// the same error its unary call would have given.
    pub fn from_proto(status: &crate::op::StatusProto) -> Self {
        use prost::Message;
        Error::from_status(&tonic::Status::with_details(
            tonic::Code::from_i32(status.code),
            status.message.clone(),
            status.encode_to_vec().into(),
        ))
    }
}

/// Keeps the `mmapd::Error` as the inner error so callers of the tokio I/O
/// traits can downcast back to it; a wrapped local I/O error is unwrapped.
impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        if let Error::Io(err) = err {
            return err;
        }
        io::Error::new(err.io_kind(), err)
    }
}

/// The one place a unary tonic result becomes a client result.
pub(crate) fn unary<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Error> {
    result.map(tonic::Response::into_inner).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    fn status(code: Code, message: &str, reason: &str, metadata: &[(&str, &str)]) -> tonic::Status {
        let metadata: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        tonic::Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, "mmapd", metadata),
        )
    }

    #[test]
    fn status_keeps_reason_and_metadata() {
        let err = Error::from(status(
            Code::OutOfRange,
            "read byte out of range",
            "VALUE_ERROR",
            &[],
        ));
        assert_eq!(err.code(), Some(Code::OutOfRange));
        assert_eq!(err.reason(), Some("VALUE_ERROR"));
        assert_eq!(err.errno(), None);
        assert!(!err.is_connect_error());
        assert_eq!(
            err.to_string(),
            "read byte out of range (OUT_OF_RANGE, VALUE_ERROR)"
        );
    }

    #[test]
    fn os_error_exposes_errno() {
        let err = Error::from(status(
            Code::NotFound,
            "No such file or directory",
            "OS_ERROR",
            &[("errno", "2")],
        ));
        assert_eq!(err.errno(), Some(2));
        assert_eq!(err.reason(), Some("OS_ERROR"));
        let io = io::Error::from(err);
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        let inner = io
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .expect("inner mmapd::Error");
        assert_eq!(inner.errno(), Some(2));
    }

    #[test]
    fn unavailable_without_error_info_is_a_connection_failure() {
        let err = Error::from(tonic::Status::unavailable("tcp connect error"));
        assert!(err.is_connect_error());
        assert_eq!(err.code(), Some(Code::Unavailable));
        assert_eq!(err.reason(), None);
        assert_eq!(
            err.to_string(),
            "connection to the server lost: tcp connect error"
        );
    }

    #[test]
    fn unavailable_with_error_info_is_a_server_error() {
        let err = Error::from(status(
            Code::Unavailable,
            "shutting down",
            "SHUTTING_DOWN",
            &[],
        ));
        assert!(!err.is_connect_error());
        assert_eq!(
            err.to_string(),
            "shutting down (UNAVAILABLE, SHUTTING_DOWN)"
        );
    }

    #[test]
    fn plain_status_displays_code_only() {
        let err = Error::from(tonic::Status::internal("boom"));
        assert_eq!(err.reason(), None);
        assert_eq!(err.to_string(), "boom (INTERNAL)");
        let err = Error::from(tonic::Status::new(Code::InvalidArgument, ""));
        assert_eq!(
            err.to_string(),
            "Client specified an invalid argument (INVALID_ARGUMENT)"
        );
    }

    #[test]
    fn local_io_error_round_trips() {
        let err = Error::from(io::Error::new(io::ErrorKind::BrokenPipe, "pipe"));
        let io = io::Error::from(err);
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(io.to_string(), "pipe");
    }
}
