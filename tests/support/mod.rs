//! Shared end-to-end test harness: a real server from `mmapd_server::run` on
//! 127.0.0.1:0 over a temporary data root, raw gRPC stubs connected to it,
//! a [`Fixture`] bundling a server with a client and an open session,
//! request builders in [`rq`], and assertions on error statuses.
#![allow(dead_code)] // each test binary uses a different subset

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use mmapd::pb::{self, Access, admin_client::AdminClient, mmap_client::MmapClient};
use tokio::sync::oneshot;
use tonic::{Code, Status, transport::Channel};
use tonic_types::{ErrorDetail, StatusExt};

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusts the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut mmapd_server::Config)) -> TestServer {
        let root = tempfile::tempdir().expect("temp root");
        let mut config = mmapd_server::Config::new(root.path());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            mmapd_server::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("server run");
        });
        TestServer {
            addr,
            root,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A path inside the data root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Raw stubs with 64 MiB message limits.
    pub async fn clients(&self) -> (MmapClient<Channel>, AdminClient<Channel>) {
        let channel = Channel::from_shared(self.endpoint())
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let limit = 64 << 20;
        (
            MmapClient::new(channel.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            AdminClient::new(channel)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
    }

    /// Triggers graceful shutdown, waits for `run` to return, and hands back
    /// the data root so the test can inspect what the server left on disk.
    pub async fn shutdown(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).ok();
        tokio::time::timeout(Duration::from_secs(20), self.task.take().unwrap())
            .await
            .expect("server stops within 20 s")
            .expect("server task");
        std::mem::replace(&mut self.root, tempfile::tempdir().expect("temp root"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A server, one connected client pair and a session (default TTL) on it.
pub struct Fixture {
    pub server: TestServer,
    pub c: MmapClient<Channel>,
    pub admin: AdminClient<Channel>,
    pub sid: String,
}

impl Fixture {
    /// A default server with an empty data root.
    pub async fn new() -> Fixture {
        Self::on(TestServer::start().await).await
    }

    /// A default server whose data root holds `name` with `bytes`.
    pub async fn with_file(name: &str, bytes: impl AsRef<[u8]>) -> Fixture {
        Self::on_with_file(TestServer::start().await, name, bytes).await
    }

    /// Writes `name` into `server`'s data root, then connects as [`Fixture::on`].
    pub async fn on_with_file(server: TestServer, name: &str, bytes: impl AsRef<[u8]>) -> Fixture {
        std::fs::write(server.path(name), bytes).unwrap();
        Self::on(server).await
    }

    /// Connects to `server` and opens a session.
    pub async fn on(server: TestServer) -> Fixture {
        let (mut c, admin) = server.clients().await;
        let sid = session(&mut c, 0).await;
        Fixture {
            server,
            c,
            admin,
            sid,
        }
    }

    /// A request to map `path` whole in this fixture's session.
    pub fn file_req(&self, path: &str, access: Access) -> pb::MapRequest {
        map_req(&self.sid, path, "", access)
    }

    /// A request to map `path` (or attach to `name`) in this fixture's session.
    pub fn named_req(&self, path: &str, name: &str, access: Access) -> pb::MapRequest {
        map_req(&self.sid, path, name, access)
    }

    /// Maps `req` with this fixture's client.
    pub async fn map(&mut self, req: pb::MapRequest) -> Result<pb::MapResponse, Status> {
        map(&mut self.c, req).await
    }

    /// Maps `req`, which must succeed, and returns the handle.
    pub async fn handle(&mut self, req: pb::MapRequest) -> String {
        self.map(req).await.expect("map").handle
    }

    /// Maps `path` whole with `access` and returns the handle.
    pub async fn map_file(&mut self, path: &str, access: Access) -> String {
        self.handle(self.file_req(path, access)).await
    }
}

/// A request to map `path` (or attach to `name`) in `session_id`.
pub fn map_req(session_id: &str, path: &str, name: &str, access: Access) -> pb::MapRequest {
    pb::MapRequest {
        session_id: session_id.into(),
        path: path.into(),
        name: name.into(),
        access: access as i32,
        ..Default::default()
    }
}

/// Builders for the per-handle requests the tests send most.
pub mod rq {
    use mmapd::pb;

    pub fn read(handle: &str, n: Option<i64>) -> pb::ReadRequest {
        pb::ReadRequest {
            handle: handle.into(),
            n,
        }
    }

    pub fn write(handle: &str, data: impl Into<bytes::Bytes>) -> pb::WriteRequest {
        pb::WriteRequest {
            handle: handle.into(),
            data: data.into(),
        }
    }

    pub fn tell(handle: &str) -> pb::TellRequest {
        pb::TellRequest {
            handle: handle.into(),
        }
    }

    pub fn seek(handle: &str, pos: i64, whence: i32) -> pb::SeekRequest {
        pb::SeekRequest {
            handle: handle.into(),
            pos,
            whence,
        }
    }

    pub fn resize(handle: &str, new_size: i64) -> pb::ResizeRequest {
        pb::ResizeRequest {
            handle: handle.into(),
            new_size,
        }
    }

    pub fn get_item(handle: &str, index: i64) -> pb::GetItemRequest {
        pb::GetItemRequest {
            handle: handle.into(),
            index,
        }
    }

    pub fn set_item(handle: &str, index: i64, value: i64) -> pb::SetItemRequest {
        pb::SetItemRequest {
            handle: handle.into(),
            index,
            value,
        }
    }

    pub fn close(handle: &str) -> pb::CloseRequest {
        pb::CloseRequest {
            handle: handle.into(),
        }
    }

    /// Flushes the whole mapping.
    pub fn flush(handle: &str) -> pb::FlushRequest {
        pb::FlushRequest {
            handle: handle.into(),
            offset: None,
            size: None,
        }
    }

    pub fn read_stream(
        handle: &str,
        offset: Option<u64>,
        length: Option<u64>,
        chunk_size: u32,
    ) -> pb::ReadStreamRequest {
        pb::ReadStreamRequest {
            handle: handle.into(),
            offset,
            length,
            chunk_size,
        }
    }
}

/// Opens a session with the given TTL (0 = default).
pub async fn session(client: &mut MmapClient<Channel>, ttl: u32) -> String {
    client
        .open_session(pb::OpenSessionRequest {
            client_name: "test".into(),
            ttl_seconds: ttl,
        })
        .await
        .expect("open session")
        .into_inner()
        .session_id
}

/// Maps and returns the handle.
pub async fn map(
    client: &mut MmapClient<Channel>,
    req: pb::MapRequest,
) -> Result<pb::MapResponse, Status> {
    client.map(req).await.map(tonic::Response::into_inner)
}

/// Asserts a status has `code`, exactly one ErrorInfo with `reason` in
/// domain "mmapd", and `message`; returns the ErrorInfo metadata.
#[track_caller]
pub fn assert_error(
    status: &Status,
    code: Code,
    reason: &str,
    message: &str,
) -> std::collections::HashMap<String, String> {
    assert_eq!(status.code(), code, "code of {status:?}");
    assert_eq!(status.message(), message, "message of {status:?}");
    let infos = error_infos(status);
    assert_eq!(infos.len(), 1, "exactly one ErrorInfo in {status:?}");
    assert_eq!(infos[0].domain, "mmapd");
    assert_eq!(infos[0].reason, reason, "reason of {status:?}");
    infos[0].metadata.clone()
}

/// Every `google.rpc.ErrorInfo` in a status's details (the contract is
/// exactly one).
pub fn error_infos(status: &Status) -> Vec<tonic_types::ErrorInfo> {
    status
        .get_error_details_vec()
        .into_iter()
        .filter_map(|d| {
            if let ErrorDetail::ErrorInfo(info) = d {
                Some(info)
            } else {
                None
            }
        })
        .collect()
}
