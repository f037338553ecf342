//! The CLI's error type and its exit codes: 0 success, 1 the server refused
//! (or a local file failed), 2 usage error, 3 cannot connect. A broken pipe
//! on stdout counts as success, so `mmapctl cat big | head` stays quiet.

use std::{fmt, io, process::ExitCode, time::Duration};

/// Exit code when the server refused a request or a local file failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage error (clap uses the same for its own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server cannot be reached.
pub const EXIT_CONNECT: u8 = 3;

/// Everything a command can fail with.
#[derive(Debug)]
pub enum CliError {
    /// A client-library error: a server refusal, a lost connection, or an
    /// I/O error of a reader or writer the library drove.
    Mmapd(mmapd::Error),
    /// The first connection to the server failed.
    Connect {
        /// The endpoint dialled.
        endpoint: String,
        /// The transport error's causes, innermost last.
        detail: String,
    },
    /// The command line is well-formed for clap but not usable.
    Usage(String),
    /// A local file, stdin or stdout failed.
    Local {
        /// What was being done, e.g. `cannot open data.bin`.
        context: String,
        /// The I/O error.
        source: io::Error,
    },
    /// Anything else that makes the command fail (exit 1).
    Failed(String),
    /// Failures already printed (by a shell script): exit with this code.
    Reported(u8),
}

/// Result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// Wraps an I/O error with what was being done.
    pub fn local(context: impl Into<String>, source: io::Error) -> Self {
        CliError::Local {
            context: context.into(),
            source,
        }
    }

    /// Whether the server could not be reached (at connect time or mid-call).
    fn is_connect(&self) -> bool {
        match self {
            CliError::Connect { .. } => true,
            CliError::Mmapd(err) => err.is_connect_error(),
            CliError::Usage(_)
            | CliError::Local { .. }
            | CliError::Failed(_)
            | CliError::Reported(_) => false,
        }
    }

    /// Whether this is stdout (or another writer) closing early: not an
    /// error for a command-line tool.
    pub fn is_broken_pipe(&self) -> bool {
        let io = match self {
            CliError::Local { source, .. } => source,
            CliError::Mmapd(mmapd::Error::Io(source)) => source,
            CliError::Mmapd(_)
            | CliError::Connect { .. }
            | CliError::Usage(_)
            | CliError::Failed(_)
            | CliError::Reported(_) => return false,
        };
        io.kind() == io::ErrorKind::BrokenPipe
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        if self.is_broken_pipe() {
            0
        } else if let CliError::Reported(code) = self {
            *code
        } else if self.is_connect() {
            EXIT_CONNECT
        } else if matches!(self, CliError::Usage(_)) {
            EXIT_USAGE
        } else {
            EXIT_FAILED
        }
    }

    /// Prints `mmapctl: error: ...` (and a hint for connection failures) to
    /// stderr and returns the exit code. A broken pipe prints nothing. With
    /// `-o json` the report is one JSON object on stderr instead, so that a
    /// script reading JSON gets its errors as JSON too.
    pub fn report(&self, endpoint: &str, json: bool) -> ExitCode {
        if !self.is_broken_pipe() && !matches!(self, CliError::Reported(_)) {
            let hints = self.hints(endpoint);
            if json {
                eprintln!("{}", self.to_json(&hints));
            } else {
                eprintln!("mmapctl: error: {self}");
                for hint in hints {
                    eprintln!("mmapctl: hint: {hint}");
                }
            }
        }
        ExitCode::from(self.exit_code())
    }

    /// What to try next, for connection failures and for server refusals
    /// whose fix is not in their message.
    fn hints(&self, endpoint: &str) -> Vec<String> {
        let mut hints = Vec::new();
        if let CliError::Mmapd(err) = self {
            hints.extend(refusal_hint(err).map(str::to_owned));
        }
        if self.is_connect() {
            hints.push(format!(
                "is mmapd running at {endpoint}? start it with \
                 `cargo run --release --bin mmapd`, or pass --endpoint URL \
                 (or set MMAPCTL_ENDPOINT)"
            ));
            if endpoint.starts_with("https://") {
                hints.push(
                    "https:// means TLS: a server without --tls-cert \
                     needs http://; a private CA needs --ca-cert FILE, and a server \
                     with --tls-client-ca needs --cert FILE --key FILE"
                        .to_owned(),
                );
            }
        }
        hints
    }

    /// The error as one JSON object: the message and exit code, and for a
    /// server refusal its status code, reason and metadata.
    fn to_json(&self, hints: &[String]) -> serde_json::Value {
        let mut out = serde_json::json!({
            "error": self.to_string(),
            "exit_code": self.exit_code(),
        });
        if let CliError::Mmapd(err) = self {
            if let Some(code) = err.code() {
                out["code"] = mmapd::code_name(code).into();
            }
            if let Some(reason) = err.reason() {
                out["reason"] = reason.into();
            }
            if let Some(metadata) = err.metadata() {
                out["metadata"] = serde_json::json!(metadata);
            }
        }
        if !hints.is_empty() {
            out["hints"] = serde_json::json!(hints);
        }
        out
    }
}

/// errno of "Directory not empty".
const ENOTEMPTY: i32 = 39;

/// What to do about a server refusal, when its message does not say.
fn refusal_hint(err: &mmapd::Error) -> Option<&'static str> {
    match err.reason() {
        Some("MAPPING_BUSY") => Some(
            "a live mapping uses this file; `mmapctl mappings` lists them. Close it (or let \
             its session expire) and try again",
        ),
        Some("PATH_ESCAPE") => Some(
            "paths are relative to the server's data root and must stay inside it: no \
             leading /, no .. above the root, no symlink that points outside",
        ),
        Some("OS_ERROR") if err.errno() == Some(ENOTEMPTY) => Some(
            "the folder is not empty; `mmapctl rm -r PATH` removes a folder with everything \
                 in it (should `rm -r` say this, something was added meanwhile, or a name in it \
                 is not UTF-8 and cannot be named over the wire)",
        ),
        Some("OS_ERROR")
            if err
                .metadata()
                .and_then(|m| m.get("exception"))
                .map(String::as_str)
                == Some("FileExistsError") =>
        {
            Some(
                "the path exists already: `mmapctl mv --replace` replaces a file (or an empty \
                 folder with a folder); `mmapctl mkdir -p` accepts an existing folder, not a file",
            )
        }
        Some(_) | None if err.code() == Some(tonic::Code::Unimplemented) => Some(
            "the server does not offer this call; it may be older than this mmapctl \
             (`mmapctl info` shows its version)",
        ),
        Some(_) | None => None,
    }
}

impl CliError {
    /// Rewrites tonic's bare "Timeout expired" for a call cut short by
    /// `--timeout` into a message that names the flag.
    pub fn explain_timeout(self, timeout: Option<Duration>) -> Self {
        let Some(timeout) = timeout else {
            return self;
        };
        match &self {
            CliError::Mmapd(err)
                if err.code() == Some(tonic::Code::Cancelled)
                    && err.message().is_some_and(|m| m.contains("Timeout expired")) =>
            {
                CliError::Failed(format!(
                    "no answer within --timeout {} (DEADLINE_EXCEEDED)",
                    humantime::format_duration(timeout)
                ))
            }
            CliError::Mmapd(_)
            | CliError::Connect { .. }
            | CliError::Usage(_)
            | CliError::Local { .. }
            | CliError::Failed(_)
            | CliError::Reported(_) => self,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Mmapd(err) => write!(f, "{err}"),
            CliError::Connect { endpoint, detail } => {
                write!(f, "cannot connect to {endpoint}: {detail}")
            }
            CliError::Usage(message) | CliError::Failed(message) => f.write_str(message),
            CliError::Local { context, source } => write!(f, "{context}: {source}"),
            CliError::Reported(code) => write!(f, "failed (exit status {code})"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<mmapd::Error> for CliError {
    fn from(err: mmapd::Error) -> Self {
        CliError::Mmapd(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let pipe = CliError::local("stdout", io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 0);
        let missing = CliError::local("x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing.exit_code(), EXIT_FAILED);
        assert_eq!(CliError::Usage("bad".into()).exit_code(), EXIT_USAGE);
        let connect = CliError::Connect {
            endpoint: "http://h:1".into(),
            detail: "refused".into(),
        };
        assert_eq!(connect.exit_code(), EXIT_CONNECT);
        let lost = CliError::from(mmapd::Error::from(tonic::Status::unavailable("gone")));
        assert_eq!(lost.exit_code(), EXIT_CONNECT);
        let refused = CliError::from(mmapd::Error::from(tonic::Status::not_found("no")));
        assert_eq!(refused.exit_code(), EXIT_FAILED);
        assert_eq!(refused.to_string(), "no (NOT_FOUND)");
    }

    fn refusal(code: tonic::Code, reason: &str, metadata: &[(&str, &str)]) -> CliError {
        CliError::Mmapd(mmapd::Error::Status {
            code,
            reason: reason.to_owned(),
            message: "refused".to_owned(),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        })
    }

    #[test]
    fn file_refusals_get_hints() {
        use tonic::Code;
        let hint = |err: CliError| err.hints("http://h:1").join(" ");
        let busy = refusal(Code::FailedPrecondition, "MAPPING_BUSY", &[("errno", "16")]);
        assert!(hint(busy).contains("mmapctl mappings"));
        let escape = refusal(Code::PermissionDenied, "PATH_ESCAPE", &[("errno", "13")]);
        assert!(hint(escape).contains("data root"));
        let full = refusal(Code::FailedPrecondition, "OS_ERROR", &[("errno", "39")]);
        assert!(hint(full).contains("rm -r"));
        let exists = refusal(
            Code::AlreadyExists,
            "OS_ERROR",
            &[("errno", "17"), ("exception", "FileExistsError")],
        );
        assert!(hint(exists).contains("mv --replace"));
        let old = refusal(Code::Unimplemented, "UNIMPLEMENTED", &[]);
        assert!(hint(old).contains("older than this mmapctl"));
        let plain = CliError::from(mmapd::Error::from(tonic::Status::unimplemented("no")));
        assert!(hint(plain).contains("older"));
        let missing = refusal(
            Code::NotFound,
            "OS_ERROR",
            &[("errno", "2"), ("exception", "FileNotFoundError")],
        );
        assert_eq!(hint(missing), "");
    }
}
