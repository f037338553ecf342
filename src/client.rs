//! The entry points: [`Client`] (a connection plus the admin calls) and
//! [`Session`] (a server-side lease that owns handles and is renewed in the
//! background), and [`MapOptions`], the arguments of `Session::map`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::{
    error::{Error, unary},
    pb::{self, admin_client::AdminClient, mmap_client::MmapClient},
    remote::RemoteMmap,
};

/// Largest gRPC message the stubs send or accept. The server's limit is the
/// same, and tonic's 4 MiB default would refuse a large `Read` or `GetSlice`.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// A connection to an mmapd server. Cheap to clone: clones share the channel.
#[derive(Debug, Clone)]
pub struct Client {
    mmap: MmapClient<Channel>,
    admin: AdminClient<Channel>,
    channel: Channel,
}

impl Client {
    /// Connects to `endpoint`, e.g. `http://127.0.0.1:50051`. A bare
    /// `host:port` is taken as plain-text HTTP/2.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self, Error> {
        let mut endpoint = endpoint.into();
        if !endpoint.contains("://") {
            endpoint.insert_str(0, "http://");
        }
        let channel = Endpoint::from_shared(endpoint.clone())
            .map_err(|source| Error::InvalidEndpoint {
                endpoint: endpoint.clone(),
                source,
            })?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|source| Error::connect(endpoint, source))?;
        Ok(Self::from_channel(channel))
    }

    /// Wraps an existing channel, for custom TLS, timeouts or lazy connects.
    pub fn from_channel(channel: Channel) -> Self {
        Self {
            mmap: MmapClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            admin: AdminClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            channel,
        }
    }

    /// The raw data-service stub, for calls this library does not wrap.
    pub fn mmap_stub(&self) -> MmapClient<Channel> {
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
        let response = unary(HealthClient::new(self.channel.clone()).check(request).await)?;
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
    stub: MmapClient<Channel>,
    id: String,
    ttl_seconds: Arc<AtomicU32>,
    keepalive: JoinHandle<()>,
}

impl Session {
    fn start(stub: MmapClient<Channel>, id: String, ttl_seconds: u32) -> Self {
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

async fn renew(mut stub: MmapClient<Channel>, id: &str) -> Result<u32, Error> {
    let request = pb::KeepAliveRequest {
        session_id: id.to_owned(),
    };
    Ok(unary(stub.keep_alive(request).await)?.ttl_seconds)
}

/// Renews every ttl/3 so that two consecutive failures (a server restart, a
/// network blip) still leave time for a third attempt before expiry.
async fn keep_alive_loop(stub: MmapClient<Channel>, id: String, ttl_seconds: Arc<AtomicU32>) {
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

    /// The access mode; `Access::Default` is read-write shared.
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
