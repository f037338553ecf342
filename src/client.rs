//! The entry points: [`Client`] (a connection plus the admin calls; the
//! file calls are in `files`) and
//! [`Session`] (a server-side lease that owns handles and is renewed in the
//! background), [`ConnectOptions`] (TLS, mTLS and the bearer token), and
//! [`MapOptions`], the arguments of `Session::map`.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::task::JoinHandle;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{
    error::{Error, unary},
    pb::{self, admin_client::AdminClient, files_client::FilesClient, mmap_client::MmapClient},
    remote::RemoteMmap,
};

/// Largest gRPC message the stubs send or accept. The server's limit is the
/// same, and tonic's 4 MiB default would refuse a large `Read` or `GetSlice`.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// How long a dial (TCP plus the TLS handshake) may take by default.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The transport every stub of this crate runs on: the channel, with the
/// bearer token (if any) added to each request.
pub type Transport = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to every request, including the
/// background renewals, so a token-protected server sees one identity for
/// the whole session. Without a token it adds nothing.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// The header value for `token`; refused if it cannot be sent as an HTTP
    /// header (control characters, non-ASCII).
    pub fn new(token: &str) -> Result<Self, Error> {
        let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| Error::Options("the token must be printable ASCII".to_owned()))?;
        // Keeps the token out of HPACK's dynamic table and of debug output.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

/// Never prints the token.
impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.0.is_some() {
            "Some(<redacted>)"
        } else {
            "None"
        };
        f.debug_tuple("BearerToken")
            .field(&format_args!("{shown}"))
            .finish()
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// HTTP/2 receive window of each stream the client opens: two of the
/// largest ReadStream chunks (4 MiB), so the server can send the next
/// chunk while the client takes the last.
const STREAM_WINDOW: u32 = 8 << 20;

/// HTTP/2 receive window of the connection: a few streams at full speed.
const CONNECTION_WINDOW: u32 = 32 << 20;

/// How [`Client::connect_with`] dials: TLS material as PEM bytes, the bearer
/// token, and timeouts. TLS needs an `https://` endpoint: an `https://`
/// endpoint always speaks TLS, and TLS options with any other endpoint are
/// refused rather than silently sent in plaintext.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// CA certificate(s) (PEM) the server's certificate must chain to.
    /// `None` trusts the public webpki roots.
    pub ca_cert: Option<Vec<u8>>,
    /// Client certificate chain (PEM) for mTLS; needs `key`.
    pub cert: Option<Vec<u8>>,
    /// Private key (PEM) of `cert`.
    pub key: Option<Vec<u8>>,
    /// Sent as `authorization: Bearer <token>` on every call.
    pub token: Option<String>,
    /// Limit on the dial and the TLS handshake; 10 s when `None`.
    pub connect_timeout: Option<Duration>,
    /// Limit on each call; none when `None`.
    pub timeout: Option<Duration>,
}

/// Never prints the token or the private key.
impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("ca_cert", &self.ca_cert.as_ref().map(|_| "<pem>"))
            .field("cert", &self.cert.as_ref().map(|_| "<pem>"))
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ConnectOptions {
    fn wants_tls(&self) -> bool {
        self.ca_cert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The endpoint for `url` (with `http://` added to a bare `host:port`),
    /// with TLS configured exactly when the scheme is `https`.
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, Error> {
        let url = normalize(url);
        let invalid = |source| Error::InvalidEndpoint {
            endpoint: url.clone(),
            source,
        };
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        // Receive windows for bulk reads: hyper's 2 MiB stream window is
        // half of one 4 MiB ReadStream chunk, so the server stalled on a
        // WINDOW_UPDATE inside every chunk. tonic 0.14's Endpoint cannot
        // ask for frames larger than 16 KiB (no max_frame_size), so frames
        // stay at the HTTP/2 default.
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(invalid)?
            .connect_timeout(connect_timeout)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW);
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls_config(connect_timeout)?)
                .map_err(|err| Error::Options(format!("bad TLS material: {}", chain(&err))))?;
        } else if self.wants_tls() {
            return Err(Error::Options(format!(
                "a CA certificate or client certificate needs an https:// endpoint, \
                 but {url} is plaintext"
            )));
        }
        Ok(endpoint)
    }

    fn tls_config(&self, handshake_timeout: Duration) -> Result<ClientTlsConfig, Error> {
        let mut tls = ClientTlsConfig::new().timeout(handshake_timeout);
        tls = match &self.ca_cert {
            Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
            None => tls.with_webpki_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(tls.identity(Identity::from_pem(cert, key))),
            (None, None) => Ok(tls),
            (Some(_), None) => Err(Error::Options(
                "a client certificate needs its private key".to_owned(),
            )),
            (None, Some(_)) => Err(Error::Options(
                "a client key needs its certificate".to_owned(),
            )),
        }
    }

    fn bearer(&self) -> Result<BearerToken, Error> {
        self.token
            .as_deref()
            .map_or(Ok(BearerToken::default()), BearerToken::new)
    }
}

/// The endpoint URL as dialled: a bare `host:port` is plaintext HTTP/2.
pub(crate) fn normalize(url: &str) -> String {
    let url = url.trim();
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        let part = err.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = err.source();
    }
    text
}

/// A connection to an mmapd server. Cheap to clone: clones share the channel.
#[derive(Debug, Clone)]
pub struct Client {
    mmap: MmapClient<Transport>,
    admin: AdminClient<Transport>,
    pub(crate) files: FilesClient<Transport>,
    transport: Transport,
}

impl Client {
    /// Connects to `endpoint`, e.g. `http://127.0.0.1:50051`, in plaintext,
    /// or `https://host:port` with TLS against the public webpki roots. A
    /// bare `host:port` is taken as plain-text HTTP/2.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self, Error> {
        Self::connect_with(endpoint, ConnectOptions::default()).await
    }

    /// Connects with TLS, mTLS or a bearer token (see [`ConnectOptions`]).
    /// An `https://` endpoint never falls back to plaintext: a server that
    /// does not speak TLS fails the handshake, reported as a connect error.
    pub async fn connect_with(
        endpoint: impl Into<String>,
        options: ConnectOptions,
    ) -> Result<Self, Error> {
        let url = normalize(&endpoint.into());
        let token = options.bearer()?;
        let tls = url.starts_with("https://");
        let channel = options
            .endpoint(&url)?
            .connect()
            .await
            .map_err(|source| Error::connect(url, tls, source))?;
        Ok(Self::from_channel_with_token(channel, token))
    }

    /// Wraps an existing channel, for custom TLS, timeouts or lazy connects.
    pub fn from_channel(channel: Channel) -> Self {
        Self::from_channel_with_token(channel, BearerToken::default())
    }

    /// Wraps an existing channel, sending `token` with every call.
    pub fn from_channel_with_token(channel: Channel, token: BearerToken) -> Self {
        let transport = InterceptedService::new(channel, token);
        Self {
            mmap: MmapClient::new(transport.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            admin: AdminClient::new(transport.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            files: FilesClient::new(transport.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            transport,
        }
    }

    /// The raw data-service stub, for calls this library does not wrap.
    pub fn mmap_stub(&self) -> MmapClient<Transport> {
        self.mmap.clone()
    }

    /// Version, page size, allocation granularity and limits of the server.
    pub async fn server_info(&self) -> Result<pb::ServerInfo, Error> {
        unary(
            self.admin
                .clone()
                .get_server_info(pb::GetServerInfoRequest {})
                .await,
        )
    }

    /// Every live session on the server, fetched page by page.
    pub async fn list_sessions(&self) -> Result<Vec<pb::SessionInfo>, Error> {
        let mut rows = Vec::new();
        let mut page_token = String::new();
        loop {
            let sent = page_token.clone();
            let request = pb::ListSessionsRequest {
                page_size: 0,
                page_token,
            };
            let page = unary(self.admin.clone().list_sessions(request).await)?;
            rows.extend(page.sessions);
            // A token that does not move on would loop forever.
            if page.next_page_token.is_empty() || page.next_page_token == sent {
                return Ok(rows);
            }
            page_token = page.next_page_token;
        }
    }

    /// Every live mapping on the server, fetched page by page.
    pub async fn list_mappings(&self) -> Result<Vec<pb::MappingInfo>, Error> {
        let mut rows = Vec::new();
        let mut page_token = String::new();
        loop {
            let sent = page_token.clone();
            let request = pb::ListMappingsRequest {
                page_size: 0,
                page_token,
            };
            let page = unary(self.admin.clone().list_mappings(request).await)?;
            rows.extend(page.mappings);
            // A token that does not move on would loop forever.
            if page.next_page_token.is_empty() || page.next_page_token == sent {
                return Ok(rows);
            }
            page_token = page.next_page_token;
        }
    }

    /// Asks the standard gRPC health service whether `service` is serving;
    /// `""` asks about the server as a whole.
    pub async fn health(&self, service: &str) -> Result<bool, Error> {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let response = unary(
            HealthClient::new(self.transport.clone())
                .check(request)
                .await,
        )?;
        Ok(response.status() == ServingStatus::Serving)
    }

    /// Opens a session named `client_name` (shown by `list_sessions`). `ttl`
    /// is the lease length, rounded up to whole seconds; `None` takes the
    /// server default. The returned session renews itself until closed or
    /// dropped.
    pub async fn open_session(
        &self,
        client_name: &str,
        ttl: Option<Duration>,
    ) -> Result<Session, Error> {
        let ttl_seconds = ttl.map_or(0, ceil_seconds);
        let request = pb::OpenSessionRequest {
            client_name: client_name.to_owned(),
            ttl_seconds,
        };
        let response = unary(self.mmap.clone().open_session(request).await)?;
        Ok(Session::start(
            self.mmap.clone(),
            response.session_id,
            response.ttl_seconds,
        ))
    }
}

/// Rounds up so a sub-second TTL never becomes 0, which means "default".
fn ceil_seconds(ttl: Duration) -> u32 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// A lease on the server that owns mapping handles. A background task renews
/// it every third of its TTL; the task stops when the session is closed or
/// dropped, after which the server expires the session (closing its handles)
/// once the TTL runs out.
#[derive(Debug)]
pub struct Session {
    stub: MmapClient<Transport>,
    id: String,
    ttl_seconds: Arc<AtomicU32>,
    keepalive: JoinHandle<()>,
}

impl Session {
    fn start(stub: MmapClient<Transport>, id: String, ttl_seconds: u32) -> Self {
        let ttl = Arc::new(AtomicU32::new(ttl_seconds));
        let keepalive = tokio::spawn(keep_alive_loop(stub.clone(), id.clone(), Arc::clone(&ttl)));
        Self {
            stub,
            id,
            ttl_seconds: ttl,
            keepalive,
        }
    }

    /// The opaque session identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The TTL most recently granted by the server.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.ttl_seconds.load(Ordering::Relaxed)))
    }

    /// Renews the lease now, returning the granted TTL. The background task
    /// already does this; call it only to check the session is still alive.
    pub async fn keep_alive(&self) -> Result<Duration, Error> {
        let ttl = renew(self.stub.clone(), &self.id).await?;
        self.ttl_seconds.store(ttl, Ordering::Relaxed);
        Ok(Duration::from_secs(u64::from(ttl)))
    }

    /// Maps a file, an anonymous region or an existing named mapping:
    /// `mmap.mmap(...)`. The handle belongs to this session.
    pub async fn map(&self, options: MapOptions) -> Result<RemoteMmap, Error> {
        let request = options.into_request(self.id.clone());
        let response = unary(self.stub.clone().map(request).await)?;
        Ok(RemoteMmap::new(self.stub.clone(), response))
    }

    /// Closes the session and, on the server, every handle it owns.
    pub async fn close(self) -> Result<(), Error> {
        self.keepalive.abort();
        let request = pb::CloseSessionRequest {
            session_id: self.id.clone(),
        };
        unary(self.stub.clone().close_session(request).await).map(drop)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

async fn renew(mut stub: MmapClient<Transport>, id: &str) -> Result<u32, Error> {
    let request = pb::KeepAliveRequest {
        session_id: id.to_owned(),
    };
    Ok(unary(stub.keep_alive(request).await)?.ttl_seconds)
}

/// Renews every ttl/3 so that two consecutive failures (a server restart, a
/// network blip) still leave time for a third attempt before expiry.
async fn keep_alive_loop(stub: MmapClient<Transport>, id: String, ttl_seconds: Arc<AtomicU32>) {
    loop {
        let ttl = Duration::from_secs(u64::from(ttl_seconds.load(Ordering::Relaxed).max(1)));
        tokio::time::sleep(ttl / 3).await;
        match renew(stub.clone(), &id).await {
            Ok(granted) => ttl_seconds.store(granted, Ordering::Relaxed),
            // Retrying cannot resurrect an expired or closed session.
            Err(err) if err.reason() == Some("SESSION_NOT_FOUND") => {
                tracing::warn!(session = %id, error = %err, "session lease lost; renewal stopped");
                return;
            }
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "session renewal failed; retrying")
            }
        }
    }
}

/// Arguments of [`Session::map`], mirroring `mmap.mmap(fileno, length,
/// access=, offset=)` plus the registry name and create flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct MapOptions {
    path: String,
    length: i64,
    offset: i64,
    access: pb::Access,
    name: String,
    create: bool,
}

impl MapOptions {
    /// Maps the file at `path`, relative to the server's data root; the whole
    /// file unless `length` is set.
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// Maps an anonymous region of `length` bytes: `mmap(-1, length)`.
    pub fn anonymous(length: i64) -> Self {
        Self {
            length,
            ..Self::default()
        }
    }

    /// Attaches to the existing mapping registered as `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Bytes to map; 0 maps the whole file from `offset`.
    pub fn length(mut self, length: i64) -> Self {
        self.length = length;
        self
    }

    /// Offset into the file; a multiple of the allocation granularity.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = offset;
        self
    }

    /// The access mode; `Access::Default` is read-write shared, and the
    /// handle reports it as `Access::Write`, which behaves the same.
    pub fn access(mut self, access: pb::Access) -> Self {
        self.access = access;
        self
    }

    /// The registry name; defaults to the path. Handles mapped with the same
    /// name share one mapping.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Creates a missing file of `offset + length` zero bytes.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    fn into_request(self, session_id: String) -> pb::MapRequest {
        pb::MapRequest {
            session_id,
            path: self.path,
            length: self.length,
            offset: self.offset,
            access: self.access.into(),
            name: self.name,
            create: self.create,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let token = BearerToken::new("hunter2").expect("token");
        assert!(!format!("{token:?}").contains("hunter2"));
        let options = ConnectOptions {
            token: Some("hunter2".to_owned()),
            key: Some(b"PRIVATE KEY".to_vec()),
            ..ConnectOptions::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }

    #[test]
    fn the_interceptor_adds_the_bearer_header() {
        let mut token = BearerToken::new("t0k").expect("token");
        let request = token.call(tonic::Request::new(())).expect("passes");
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer t0k")
        );
        let request = BearerToken::default()
            .call(tonic::Request::new(()))
            .expect("passes");
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn https_is_tls_and_tls_material_needs_https() {
        let plain = ConnectOptions::default();
        assert!(plain.endpoint("127.0.0.1:1").is_ok());
        assert!(plain.endpoint("https://127.0.0.1:1").is_ok());
        let tls = ConnectOptions {
            ca_cert: Some(b"not pem".to_vec()),
            ..ConnectOptions::default()
        };
        assert!(matches!(
            tls.endpoint("http://127.0.0.1:1"),
            Err(Error::Options(_))
        ));
        assert!(matches!(
            tls.endpoint("127.0.0.1:1"),
            Err(Error::Options(_))
        ));
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(5)), 5);
        assert_eq!(ceil_seconds(Duration::from_millis(5001)), 6);
        assert_eq!(ceil_seconds(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn map_options_build_the_request() {
        let request = MapOptions::file("data/a.bin")
            .length(4096)
            .offset(8192)
            .access(pb::Access::Copy)
            .name("a")
            .create(true)
            .into_request("s1".to_owned());
        assert_eq!(
            request,
            pb::MapRequest {
                session_id: "s1".to_owned(),
                path: "data/a.bin".to_owned(),
                length: 4096,
                offset: 8192,
                access: pb::Access::Copy as i32,
                name: "a".to_owned(),
                create: true,
            }
        );
        assert_eq!(
            MapOptions::anonymous(10).into_request(String::new()).length,
            10
        );
        assert_eq!(MapOptions::named("n").into_request(String::new()).path, "");
    }
}
