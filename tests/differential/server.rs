//! Driver of the server side: a real mmapd started in-process on
//! `127.0.0.1:0`, spoken to over gRPC with the raw `mmapd::pb` stubs, by
//! unary calls or by `PipelineRequest`s on one Pipeline stream. Both build
//! the same wire request from a [`Call`] (`wire_op`) and read the same
//! result back (`answer`).
//!
//! Every reply is turned into the same [`Outcome`] the oracle produces. An
//! error status must carry exactly one `ErrorInfo` of domain "mmapd" whose
//! reason names the Python exception class; anything else is a contract
//! violation, reported as `Err(String)` by the methods here.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use mmapd::{
    Value,
    pb::{self, mmap_client::MmapClient, op::Op as PbOp, op_result::Result as PbResult},
};
use prost::Message;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_stream::{StreamExt, wrappers::UnboundedReceiverStream};
use tonic::{Code, Response, Status, Streaming, transport::Channel};
use tonic_types::{ErrorDetail, StatusExt};

use crate::{
    generator::reported_access,
    ops::{Call, Op, Outcome, PyErr, Val},
};

/// Largest gRPC message either side may send.
const MAX_MESSAGE: usize = 64 << 20;
/// A call that takes longer than this is reported as hung.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Lease asked for; the test renews it anyway.
const SESSION_TTL_SECONDS: u32 = 300;

/// A failed call as the server reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The gRPC status code.
    pub code: Code,
    /// The Python exception it stands for.
    pub err: PyErr,
    /// The ErrorInfo's reason and metadata as sent, so that the unary and
    /// the Pipeline answers are compared in full, not only as Python sees
    /// them.
    pub reason: String,
    pub metadata: BTreeMap<String, String>,
}

/// The server's answer to an [`Op`].
pub type Answer = Result<Val, Failure>;

/// Drops the gRPC code, keeping what is compared with CPython.
pub fn outcome(answer: &Answer) -> Outcome {
    answer.clone().map_err(|failure| failure.err)
}

/// What `Map` returned for one of the test's maps.
struct Registered {
    handle: String,
    name: String,
}

/// A running in-process server, a client and one session.
pub struct Server {
    root: PathBuf,
    client: MmapClient<Channel>,
    session: String,
    /// Server handle and registry name of each map the test created.
    handles: HashMap<usize, Registered>,
    /// The Pipeline stream, once [`Server::pipeline`] opened it.
    pipe: Option<(
        mpsc::UnboundedSender<pb::PipelineRequest>,
        Streaming<pb::PipelineResponse>,
    )>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
}

impl Server {
    /// Starts mmapd on `root`, connects and opens a session.
    pub async fn start(root: &Path) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let config = mmapd_server::Config::new(root);
        let task = tokio::spawn(mmapd_server::run(listener, config, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(RPC_TIMEOUT)
            .connect()
            .await
            .map_err(|e| format!("cannot connect to the in-process server at {addr}: {e:?}"))?;
        let mut client = MmapClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let request = pb::OpenSessionRequest {
            client_name: "differential".into(),
            ttl_seconds: SESSION_TTL_SECONDS,
        };
        let session = rpc(client.open_session(request))
            .await?
            .map_err(|s| format!("OpenSession failed: {s:?}"))?
            .session_id;
        Ok(Server {
            root: root.to_path_buf(),
            client,
            session,
            handles: HashMap::new(),
            pipe: None,
            shutdown,
            task,
        })
    }

    /// Renews the session's lease.
    pub async fn keep_alive(&mut self) -> Result<(), String> {
        let request = pb::KeepAliveRequest {
            session_id: self.session.clone(),
        };
        rpc(self.client.keep_alive(request))
            .await?
            .map(drop)
            .map_err(|s| format!("KeepAlive failed: {s:?}"))
    }

    /// Closes the session, stops the server and checks that it exited cleanly.
    pub async fn stop(mut self) -> Result<(), String> {
        // An open stream would hold the graceful shutdown: end it first.
        if let Some((requests, mut responses)) = self.pipe.take() {
            drop(requests);
            let ended = tokio::time::timeout(RPC_TIMEOUT, responses.next()).await;
            match ended {
                Ok(None) => {}
                Ok(Some(extra)) => return Err(format!("Pipeline answered no request: {extra:?}")),
                Err(_) => return Err("the Pipeline stream did not end".into()),
            }
        }
        let request = pb::CloseSessionRequest {
            session_id: self.session.clone(),
        };
        rpc(self.client.close_session(request))
            .await?
            .map_err(|s| format!("CloseSession failed: {s:?}"))?;
        let _ = self.shutdown.send(());
        match tokio::time::timeout(RPC_TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("the server failed: {e}")),
            Ok(Err(e)) => Err(format!("the server task panicked: {e}")),
            Err(_) => Err("the server did not stop within the timeout".into()),
        }
    }

    /// Runs `op`, with `name` as the registry name of a `Map` (empty: let
    /// the server choose a unique one).
    pub async fn exec(&mut self, op: &Op, name: &str) -> Result<Answer, String> {
        if let Call::Map {
            path,
            length,
            offset,
            access,
        } = &op.call
        {
            return self
                .map(op.id, path.as_deref(), *length, *offset, *access, name)
                .await;
        }
        let handle = self.handle(op.id)?;
        let c = &mut self.client;
        let Some(request) = wire_op(&op.call, handle.clone()) else {
            // Close is no Pipeline op: it ends the handle the ops name.
            return match rpc(c.close(pb::CloseRequest { handle })).await? {
                Ok(_) => Ok(Ok(Val::None)),
                Err(status) => failure(&status).map(Err),
            };
        };
        let result = match request {
            PbOp::Read(r) => rpc(c.read(r)).await?.map(PbResult::Read),
            PbOp::ReadByte(r) => rpc(c.read_byte(r)).await?.map(PbResult::ReadByte),
            PbOp::ReadLine(r) => rpc(c.read_line(r)).await?.map(PbResult::ReadLine),
            PbOp::Write(r) => rpc(c.write(r)).await?.map(PbResult::Write),
            PbOp::WriteByte(r) => rpc(c.write_byte(r)).await?.map(PbResult::WriteByte),
            PbOp::Seek(r) => rpc(c.seek(r)).await?.map(PbResult::Seek),
            PbOp::Tell(r) => rpc(c.tell(r)).await?.map(PbResult::Tell),
            PbOp::Size(r) => rpc(c.size(r)).await?.map(PbResult::Size),
            PbOp::Len(r) => rpc(c.len(r)).await?.map(PbResult::Len),
            PbOp::Find(r) => rpc(c.find(r)).await?.map(PbResult::Find),
            PbOp::Rfind(r) => rpc(c.r_find(r)).await?.map(PbResult::Rfind),
            PbOp::Flush(r) => rpc(c.flush(r)).await?.map(PbResult::Flush),
            PbOp::Move(r) => rpc(c.r#move(r)).await?.map(PbResult::Move),
            PbOp::Resize(r) => rpc(c.resize(r)).await?.map(PbResult::Resize),
            PbOp::Madvise(r) => rpc(c.madvise(r)).await?.map(PbResult::Madvise),
            PbOp::GetItem(r) => rpc(c.get_item(r)).await?.map(PbResult::GetItem),
            PbOp::SetItem(r) => rpc(c.set_item(r)).await?.map(PbResult::SetItem),
            PbOp::GetSlice(r) => rpc(c.get_slice(r)).await?.map(PbResult::GetSlice),
            PbOp::SetSlice(r) => rpc(c.set_slice(r)).await?.map(PbResult::SetSlice),
            PbOp::Stat(r) => rpc(c.stat(r)).await?.map(PbResult::Stat),
        };
        match result {
            Ok(result) => answer(result),
            Err(status) => failure(&status).map(Err),
        }
    }

    /// Runs `ops` (none of them a `Map` or `Close`) as one `PipelineRequest`
    /// on this server's Pipeline stream, opened on first use and kept for
    /// the whole run, and returns one answer per op, in order.
    pub async fn pipeline(&mut self, ops: &[&Op]) -> Result<Vec<Answer>, String> {
        let mut request = pb::PipelineRequest::default();
        for op in ops {
            let handle = self.handle(op.id)?;
            let wire =
                wire_op(&op.call, handle).ok_or_else(|| format!("{op} cannot be pipelined"))?;
            request.ops.push(pb::Op { op: Some(wire) });
        }
        if self.pipe.is_none() {
            let (tx, rx) = mpsc::unbounded_channel();
            let responses = rpc(self.client.pipeline(UnboundedReceiverStream::new(rx)))
                .await?
                .map_err(|s| format!("Pipeline did not open: {s:?}"))?;
            self.pipe = Some((tx, responses));
        }
        let (tx, responses) = self.pipe.as_mut().expect("opened above");
        tx.send(request)
            .map_err(|_| "the Pipeline request stream is gone".to_string())?;
        let response = tokio::time::timeout(RPC_TIMEOUT, responses.next())
            .await
            .map_err(|_| format!("Pipeline did not answer within {RPC_TIMEOUT:?}"))?
            .ok_or("the Pipeline stream ended")?
            .map_err(|s| format!("the Pipeline stream failed: {s:?}"))?;
        if response.results.len() != ops.len() {
            return Err(format!(
                "Pipeline answered {} results to {} ops",
                response.results.len(),
                ops.len()
            ));
        }
        response
            .results
            .into_iter()
            .map(|r| answer(r.result.ok_or("an OpResult without a result")?))
            .collect()
    }

    async fn map(
        &mut self,
        id: usize,
        path: Option<&str>,
        length: i64,
        offset: i64,
        access: i32,
        name: &str,
    ) -> Result<Answer, String> {
        let request = pb::MapRequest {
            session_id: self.session.clone(),
            path: path.unwrap_or_default().into(),
            length,
            offset,
            access,
            name: name.into(),
            create: false,
        };
        let response = match rpc(self.client.map(request)).await? {
            Ok(response) => response,
            Err(status) => return failure(&status).map(Err),
        };
        let name_ok = if name.is_empty() {
            !response.name.is_empty()
        } else {
            response.name == name
        };
        let size = match path {
            None => response.length,
            Some(path) => std::fs::metadata(self.root.join(path))
                .map_err(|e| format!("stat {path}: {e}"))?
                .len(),
        };
        let reported = reported_access(access);
        if response.access != reported || !name_ok || response.size != size {
            return Err(format!(
                "Map answered access {} name {:?} size {}; expected access {reported} (asked {access}) name {name:?} size {size}",
                response.access, response.name, response.size
            ));
        }
        let registered = Registered {
            handle: response.handle,
            name: response.name,
        };
        self.handles.insert(id, registered);
        Ok(Ok(Val::Int(i128::from(response.length))))
    }

    /// `m[:]` of an open map, by `GetSlice` or by a positional `ReadStream` of
    /// `chunk_size`-byte chunks (whose offsets must be contiguous).
    pub async fn contents(
        &mut self,
        id: usize,
        stream_chunk: Option<u32>,
    ) -> Result<Vec<u8>, String> {
        let handle = self.handle(id)?;
        let Some(chunk_size) = stream_chunk else {
            let request = pb::GetSliceRequest {
                handle,
                start: None,
                stop: None,
                step: None,
            };
            return rpc(self.client.get_slice(request))
                .await?
                .map(|r| r.data.to_vec())
                .map_err(|s| format!("GetSlice of everything failed: {s:?}"));
        };
        let request = pb::ReadStreamRequest {
            handle,
            offset: Some(0),
            length: None,
            chunk_size,
        };
        let mut stream = rpc(self.client.read_stream(request))
            .await?
            .map_err(|s| format!("ReadStream failed: {s:?}"))?;
        let mut data = Vec::new();
        while let Some(chunk) = tokio::time::timeout(RPC_TIMEOUT, stream.next())
            .await
            .map_err(|_| "ReadStream hung".to_string())?
        {
            let chunk = chunk.map_err(|s| format!("ReadStream chunk failed: {s:?}"))?;
            if chunk.offset != data.len() as u64 {
                return Err(format!(
                    "ReadStream chunk at offset {} after {} bytes",
                    chunk.offset,
                    data.len()
                ));
            }
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }

    /// `Stat` of an open map.
    pub async fn stat(&mut self, id: usize) -> Result<pb::StatResponse, String> {
        let handle = self.handle(id)?;
        rpc(self.client.stat(pb::StatRequest { handle }))
            .await?
            .map_err(|s| format!("Stat failed: {s:?}"))
    }

    /// The registry name `Map` returned for map `id`.
    pub fn name(&self, id: usize) -> Option<&str> {
        self.handles.get(&id).map(|r| r.name.as_str())
    }

    fn handle(&self, id: usize) -> Result<String, String> {
        let registered = self.handles.get(&id);
        registered
            .map(|r| r.handle.clone())
            .ok_or_else(|| format!("no server handle for map {id}"))
    }
}

/// Awaits a unary or streaming call with the test's timeout.
async fn rpc<T>(
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<Result<T, Status>, String> {
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Ok(result) => Ok(result.map(Response::into_inner)),
        Err(_) => Err(format!("the call did not answer within {RPC_TIMEOUT:?}")),
    }
}

fn int(value: impl Into<i128>) -> Val {
    Val::Int(value.into())
}

/// Decodes an error status into the Python exception it stands for, checking
/// the error contract on the way (a light check of the codes: the full table
/// is tested elsewhere).
fn failure(status: &Status) -> Result<Failure, String> {
    let infos: Vec<_> = status
        .get_error_details_vec()
        .into_iter()
        .filter_map(|detail| {
            if let ErrorDetail::ErrorInfo(info) = detail {
                Some(info)
            } else {
                None
            }
        })
        .collect();
    let [info] = infos.as_slice() else {
        return Err(format!(
            "expected exactly one ErrorInfo, got {}: {status:?}",
            infos.len()
        ));
    };
    if info.domain != "mmapd" {
        return Err(format!(
            "ErrorInfo domain is {:?}, not \"mmapd\": {status:?}",
            info.domain
        ));
    }
    let class = match info.reason.as_str() {
        "VALUE_ERROR" => "ValueError",
        "INDEX_ERROR" => "IndexError",
        "TYPE_ERROR" => "TypeError",
        "OVERFLOW_ERROR" => "OverflowError",
        "OS_ERROR" => "OSError",
        other => other,
    };
    let errno =
        if class == "OSError" {
            let errno = info.metadata.get("errno").and_then(|e| e.parse().ok());
            Some(errno.ok_or_else(|| {
                format!("OS_ERROR without a numeric metadata[\"errno\"]: {status:?}")
            })?)
        } else {
            None
        };
    let code = status.code();
    let message = status.message();
    let expected_code = match message {
        "mmap closed or invalid" => Some(Code::FailedPrecondition),
        "mmap index out of range" | "seek out of range" => Some(Code::OutOfRange),
        _ => None,
    };
    if code == Code::Ok || code == Code::Unknown {
        return Err(format!("error with status code {code:?}: {status:?}"));
    }
    if expected_code.is_some_and(|expected| expected != code) {
        return Err(format!(
            "{message:?} came with code {code:?}, expected {expected_code:?}"
        ));
    }
    Ok(Failure {
        code,
        err: PyErr {
            class: class.into(),
            msg: message.into(),
            errno,
        },
        reason: info.reason.clone(),
        metadata: info.metadata.clone().into_iter().collect(),
    })
}

/// The wire request of `call` on `handle`, shared by the unary calls and
/// Pipeline: the shared vocabulary's own conversion. `None` for `Map` and
/// `Close`, which are not Pipeline ops.
fn wire_op(call: &Call, handle: String) -> Option<PbOp> {
    match call {
        Call::Map { .. } | Call::Close => None,
        Call::Method(method) => Some(method.clone().into_pb(handle)),
    }
}

/// The Python value of a unary response or a Pipeline result; a Pipeline
/// op's error status is decoded exactly like a unary call's.
fn answer(result: PbResult) -> Result<Answer, String> {
    let value = match Value::from_pb(result) {
        Ok(value) => value,
        Err(status) => {
            let status = Status::with_details(
                Code::from_i32(status.code),
                status.message.clone(),
                status.encode_to_vec().into(),
            );
            return failure(&status).map(Err);
        }
    };
    Ok(Ok(match value {
        Value::Read(data) | Value::ReadLine(data) | Value::GetSlice(data) => {
            Val::Bytes(data.to_vec())
        }
        Value::ReadByte(b) | Value::GetItem(b) => int(b),
        Value::Write(n)
        | Value::Seek(n)
        | Value::Tell(n)
        | Value::Size(n)
        | Value::Len(n)
        | Value::Resize(n) => int(n),
        Value::Find(i) | Value::RFind(i) => int(i),
        Value::WriteByte
        | Value::Flush
        | Value::Move
        | Value::Madvise
        | Value::SetItem
        | Value::SetSlice => Val::None,
        Value::Stat(r) => return Err(format!("a Stat result to a mmap method: {r:?}")),
    }))
}
