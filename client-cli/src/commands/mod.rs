//! Running a parsed command: the context every command shares (endpoint,
//! credentials, timeouts, output format), connecting, opening a one-shot
//! mapping and closing it again, and the dispatch to `admin`, `data`,
//! `files`, `shell` and `token`.

pub mod admin;
pub mod data;
pub mod files;
pub mod shell;
pub mod token;

use std::{path::PathBuf, time::Duration};

use mmapd::{Access, Client, ConnectOptions, MapOptions, RemoteMmap, Session};

use crate::{
    cli::{Command, GlobalArgs, Target},
    error::{CliError, Result},
    output::Printer,
};

/// How long to wait for a connection when `--timeout` is not given.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings from the global flags, shared by every command.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The server URL, with `http://` added to a bare `host:port`.
    pub endpoint: String,
    /// `--timeout`: for connecting and for each call.
    pub timeout: Option<Duration>,
    /// `--session-ttl`: the lease of sessions the command opens.
    pub session_ttl: Option<Duration>,
    /// Where results go.
    pub out: Printer,
    /// `--ca-cert`, `--cert`, `--key`: PEM files, read when connecting.
    pub ca_cert: Option<PathBuf>,
    /// The client certificate for mTLS.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// `--token`: sent as `authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Ctx {
    /// The context for the global flags.
    pub fn new(global: &GlobalArgs) -> Self {
        let mut endpoint = global.endpoint.trim().to_owned();
        if !endpoint.contains("://") {
            endpoint.insert_str(0, "http://");
        }
        Self {
            endpoint,
            timeout: global.timeout,
            session_ttl: global.session_ttl,
            out: Printer {
                format: global.output,
            },
            ca_cert: global.ca_cert.clone(),
            cert: global.cert.clone(),
            key: global.key.clone(),
            token: global.token.clone(),
        }
    }

    /// The credentials and timeouts of the global flags, files read.
    fn connect_options(&self) -> Result<ConnectOptions> {
        let read = |path: &Option<PathBuf>, flag: &str| {
            path.as_ref()
                .map(|path| {
                    std::fs::read(path).map_err(|err| {
                        CliError::local(format!("cannot read {flag} {}", path.display()), err)
                    })
                })
                .transpose()
        };
        Ok(ConnectOptions {
            ca_cert: read(&self.ca_cert, "--ca-cert")?,
            cert: read(&self.cert, "--cert")?,
            key: read(&self.key, "--key")?,
            token: self.token.clone(),
            connect_timeout: Some(self.timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
            timeout: self.timeout,
        })
    }

    /// Connects with the credentials of the global flags, applying
    /// `--timeout` to the dial and to every call.
    pub async fn connect(&self) -> Result<Client> {
        let options = self.connect_options()?;
        Client::connect_with(self.endpoint.clone(), options)
            .await
            .map_err(|err| self.connect_error(err))
    }

    /// A failed connect as the CLI reports it: unreachable (exit 3), or a
    /// usage error for a bad endpoint or bad credentials (exit 2).
    fn connect_error(&self, err: mmapd::Error) -> CliError {
        if let mmapd::Error::Connect {
            endpoint, detail, ..
        } = err
        {
            return CliError::Connect {
                endpoint,
                // tonic's outer "transport error" says nothing.
                detail: detail.replace("transport error: ", ""),
            };
        }
        if let mmapd::Error::InvalidEndpoint { source, .. } = &err {
            return CliError::Usage(format!(
                "invalid --endpoint {:?}: {} (expected e.g. http://127.0.0.1:50051)",
                self.endpoint,
                causes(source)
            ));
        }
        if let mmapd::Error::Options(message) = err {
            return CliError::Usage(message);
        }
        err.into()
    }

    /// Connects, opens a session named after `command` and maps `options`.
    pub async fn open(&self, command: &str, options: MapOptions) -> Result<Mapped> {
        let client = self.connect().await?;
        let session = client
            .open_session(&format!("mmapctl {command}"), self.session_ttl)
            .await?;
        match session.map(options).await {
            Ok(map) => Ok(Mapped {
                client,
                session,
                map,
            }),
            Err(err) => {
                // The map error is the one worth reporting.
                let _ = session.close().await;
                Err(err.into())
            }
        }
    }
}

/// A session holding one mapping, for the life of one command.
#[derive(Debug)]
pub struct Mapped {
    /// The connection, for calls beside the mapping (the shell's `ls`).
    pub client: Client,
    session: Session,
    /// The handle.
    pub map: RemoteMmap,
}

impl Mapped {
    /// Closes the handle and the session, then returns `result`: its error
    /// first, else any error closing.
    pub async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        let closed = self.map.close().await;
        let ended = self.session.close().await;
        let value = result?;
        closed?;
        ended?;
        Ok(value)
    }
}

/// The `Map` arguments for a command's target.
pub fn map_options(target: &Target, access: Access) -> MapOptions {
    let options = match (&target.path, &target.name) {
        (Some(path), Some(name)) => MapOptions::file(path.as_str()).name(name.as_str()),
        (Some(path), None) => MapOptions::file(path.as_str()),
        (None, Some(name)) => MapOptions::named(name.as_str()),
        // clap requires a path or a name; an empty path and name is an
        // anonymous region, which the server refuses at length 0.
        (None, None) => MapOptions::default(),
    };
    options.access(access)
}

/// The causes of a transport error, innermost last, without tonic's
/// uninformative outer "transport error".
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = err.source();
    while let Some(err) = cause {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cause = err.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

/// Runs one command to completion.
pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Info => admin::info(ctx).await,
        Command::Health { service } => admin::health(ctx, service).await,
        Command::Sessions => admin::sessions(ctx).await,
        Command::Mappings => admin::mappings(ctx).await,
        Command::Cat(args) => data::cat(ctx, args).await,
        Command::Get(args) => data::get(ctx, args).await,
        Command::Put(args) => data::put(ctx, args).await,
        Command::Read(args) => data::read(ctx, args).await,
        Command::Write(args) => data::write(ctx, args).await,
        Command::Find(args) => data::find(ctx, args, false).await,
        Command::Rfind(args) => data::find(ctx, args, true).await,
        Command::Size(args) => data::size(ctx, args).await,
        Command::Len(args) => data::len(ctx, args).await,
        Command::Resize(args) => data::resize(ctx, args).await,
        Command::Flush(args) => data::flush(ctx, args).await,
        Command::Move(args) => data::move_(ctx, args).await,
        Command::Madvise(args) => data::madvise(ctx, args).await,
        Command::Ls(args) => files::ls(ctx, args).await,
        Command::Stat(args) => files::stat(ctx, args).await,
        Command::Mkdir(args) => files::mkdir(ctx, args).await,
        Command::Rm(args) => files::rm(ctx, args).await,
        Command::Mv(args) => files::mv(ctx, args).await,
        Command::Truncate(args) => files::truncate(ctx, args).await,
        Command::Touch(args) => files::touch(ctx, args).await,
        Command::Shell(args) => shell::run(ctx, args).await,
        Command::Token(args) => token::run(ctx, args),
    }
}
