//! The gRPC adapter for `mmapd.v1.Mmap`: each method converts the request
//! to domain arguments, calls the registry or handle, and converts back.
//! The per-handle calls and Pipeline share one dispatch (`ops.rs`). No
//! CPython semantics live here.
#![forbid(unsafe_code)]

use std::{collections::VecDeque, pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use mmapd::pb::{self, mmap_server::Mmap};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Limits,
    access::Caller,
    convert::{access_to_pb, at},
    error::{Error, Result},
    handle::{At, Chunk, Handle, Sent},
    layers::split,
    registry::{MapArgs, Registry},
};

mod ops;

/// Data operations touching more bytes than this run on the blocking
/// pool: a page fault on a cold page can take a disk read, and a big copy
/// takes milliseconds, either of which would stall every other call on
/// the async worker. Smaller ones stay inline, where latency matters.
const BLOCKING_THRESHOLD: u64 = 64 << 10;

/// The `Mmap` service.
#[derive(Debug, Clone)]
pub struct MmapService {
    registry: Arc<Registry>,
    limits: Limits,
    streams: Arc<StreamBudget>,
    io: crate::metrics::IoCounters,
}

/// Bytes ReadStreams may hold, server-wide ([`Limits::max_stream_buffer_bytes`]),
/// one permit per byte.
#[derive(Debug)]
struct StreamBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

impl MmapService {
    /// A service over a registry.
    pub fn new(registry: Arc<Registry>, limits: Limits) -> Self {
        let total = limits.max_stream_buffer_bytes.clamp(1, u64::from(u32::MAX)) as u32;
        Self {
            registry,
            limits,
            streams: Arc::new(StreamBudget {
                permits: Arc::new(Semaphore::new(total as usize)),
                total,
            }),
            io: Default::default(),
        }
    }

    /// Counts the bytes read and written into `io` (for `/metrics`).
    pub fn with_metrics(mut self, io: crate::metrics::IoCounters) -> Self {
        self.io = io;
        self
    }

    fn handle(&self, id: &str, caller: &Caller) -> Result<Arc<Handle>> {
        self.registry.handle(id, caller)
    }

    /// Largest payload a unary reply may carry, leaving room for framing.
    fn max_reply(&self) -> u64 {
        self.limits.max_reply()
    }
}

/// Where a ReadStream is, and the stream-buffer permits of the chunks it
/// produced that may still be buffered in the transport.
struct Reading {
    handle: Arc<Handle>,
    at: At,
    held: VecDeque<OwnedSemaphorePermit>,
    /// The last chunk sent; its bytes may be a view the encoder copied
    /// after we yielded it.
    sent: Option<Sent>,
}

impl StreamBudget {
    /// Reserves `chunk` bytes for the next chunk of `reading`. The chunk
    /// two back has left the transport by now (hyper asks for a chunk only
    /// once the previous one is sent or buffered), so its bytes come back
    /// first; if the budget is still short, the previous chunk's bytes are
    /// given back too, so that a waiting stream holds nothing and streams
    /// cannot wait on each other.
    async fn reserve(&self, reading: &mut Reading, chunk: usize) {
        let n = (chunk as u64).min(u64::from(self.total)) as u32;
        if reading.held.len() >= 2 {
            reading.held.pop_front();
        }
        let permit = match Arc::clone(&self.permits).try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(_) => {
                reading.held.clear();
                Arc::clone(&self.permits)
                    .acquire_many_owned(n)
                    .await
                    .expect("the stream budget is never closed")
            }
        };
        reading.held.push_back(permit);
    }
}

/// Runs blocking work (file opens, mmap, msync, mremap) off the async
/// workers, so a slow disk does not stall other clients' requests.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, Status> {
    offload(f).await.map_err(Status::from)
}

async fn offload<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        // Re-raised here so the RPC layer reports it like any handler panic.
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(Error::Internal(format!("worker failed: {join}").into())),
    }
}

/// Runs `f` on the blocking pool when it touches `bytes` past
/// [`BLOCKING_THRESHOLD`], else inline.
async fn data_op<T: Send + 'static>(
    bytes: u64,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if bytes > BLOCKING_THRESHOLD {
        offload(f).await
    } else {
        f()
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// A unary per-handle call: the request becomes its `Op` (the variant of
/// `pb::op::Op` named `$op`), runs through [`MmapService::apply`] like a
/// Pipeline op, and its value comes back as the response of the same
/// variant, so the unary calls and Pipeline cannot drift apart.
macro_rules! unary {
    ($self:ident, $req:ident, $op:ident) => {{
        let (caller, req) = split($req)?;
        let (id, op) = crate::op::Op::from_pb(pb::op::Op::$op(req));
        let value = $self.apply(&caller, &id, op, $self.max_reply()).await?;
        let pb::op_result::Result::$op(response) = value.into() else {
            let bug = concat!(stringify!($op), " answered with another op's value");
            return Err(Error::Internal(bug.into()).into());
        };
        ok(response)
    }};
}

fn ok<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ReadChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Mmap for MmapService {
    async fn open_session(
        &self,
        req: Request<pb::OpenSessionRequest>,
    ) -> Reply<pb::OpenSessionResponse> {
        let (caller, req) = split(req)?;
        let (session_id, ttl) =
            self.registry
                .open_session(&req.client_name, req.ttl_seconds, &caller)?;
        ok(pb::OpenSessionResponse {
            session_id,
            ttl_seconds: ttl.as_secs() as u32,
        })
    }

    async fn keep_alive(&self, req: Request<pb::KeepAliveRequest>) -> Reply<pb::KeepAliveResponse> {
        let (caller, req) = split(req)?;
        let ttl = self.registry.keep_alive(&req.session_id, &caller)?;
        ok(pb::KeepAliveResponse {
            ttl_seconds: ttl.as_secs() as u32,
        })
    }

    async fn close_session(
        &self,
        req: Request<pb::CloseSessionRequest>,
    ) -> Reply<pb::CloseSessionResponse> {
        let registry = Arc::clone(&self.registry);
        let (caller, req) = split(req)?;
        blocking(move || registry.close_session(&req.session_id, &caller)).await?;
        ok(pb::CloseSessionResponse {})
    }

    async fn map(&self, req: Request<pb::MapRequest>) -> Reply<pb::MapResponse> {
        let (caller, req) = split(req)?;
        let args = MapArgs {
            session_id: req.session_id,
            path: req.path,
            length: req.length,
            offset: req.offset,
            access: req.access,
            name: req.name,
            create: req.create,
            caller,
        };
        let registry = Arc::clone(&self.registry);
        let session_id = args.session_id.clone();
        let handle = blocking(move || registry.map(args)).await?;
        // The lease may have run out since the handle was made.
        let stat = handle.stat().map_err(|err| {
            if matches!(err, Error::Closed) {
                Error::SessionNotFound(session_id)
            } else {
                err
            }
        })?;
        ok(pb::MapResponse {
            handle: handle.id().to_owned(),
            length: stat.length,
            size: stat.size,
            access: access_to_pb(stat.access),
            name: stat.name,
        })
    }

    async fn close(&self, req: Request<pb::CloseRequest>) -> Reply<pb::CloseResponse> {
        let registry = Arc::clone(&self.registry);
        let (caller, req) = split(req)?;
        blocking(move || registry.close(&req.handle, &caller)).await?;
        ok(pb::CloseResponse {})
    }

    async fn stat(&self, req: Request<pb::StatRequest>) -> Reply<pb::StatResponse> {
        unary!(self, req, Stat)
    }

    async fn read(&self, req: Request<pb::ReadRequest>) -> Reply<pb::ReadResponse> {
        unary!(self, req, Read)
    }

    async fn read_byte(&self, req: Request<pb::ReadByteRequest>) -> Reply<pb::ReadByteResponse> {
        unary!(self, req, ReadByte)
    }

    async fn read_line(&self, req: Request<pb::ReadLineRequest>) -> Reply<pb::ReadLineResponse> {
        unary!(self, req, ReadLine)
    }

    async fn write(&self, req: Request<pb::WriteRequest>) -> Reply<pb::WriteResponse> {
        unary!(self, req, Write)
    }

    async fn write_byte(&self, req: Request<pb::WriteByteRequest>) -> Reply<pb::WriteByteResponse> {
        unary!(self, req, WriteByte)
    }

    async fn seek(&self, req: Request<pb::SeekRequest>) -> Reply<pb::SeekResponse> {
        unary!(self, req, Seek)
    }

    async fn tell(&self, req: Request<pb::TellRequest>) -> Reply<pb::TellResponse> {
        unary!(self, req, Tell)
    }

    async fn size(&self, req: Request<pb::SizeRequest>) -> Reply<pb::SizeResponse> {
        unary!(self, req, Size)
    }

    async fn len(&self, req: Request<pb::LenRequest>) -> Reply<pb::LenResponse> {
        unary!(self, req, Len)
    }

    async fn find(&self, req: Request<pb::FindRequest>) -> Reply<pb::FindResponse> {
        unary!(self, req, Find)
    }

    async fn r_find(&self, req: Request<pb::FindRequest>) -> Reply<pb::FindResponse> {
        unary!(self, req, Rfind)
    }

    async fn flush(&self, req: Request<pb::FlushRequest>) -> Reply<pb::FlushResponse> {
        unary!(self, req, Flush)
    }

    async fn r#move(&self, req: Request<pb::MoveRequest>) -> Reply<pb::MoveResponse> {
        unary!(self, req, Move)
    }

    async fn resize(&self, req: Request<pb::ResizeRequest>) -> Reply<pb::ResizeResponse> {
        unary!(self, req, Resize)
    }

    async fn madvise(&self, req: Request<pb::MadviseRequest>) -> Reply<pb::MadviseResponse> {
        unary!(self, req, Madvise)
    }

    async fn get_item(&self, req: Request<pb::GetItemRequest>) -> Reply<pb::GetItemResponse> {
        unary!(self, req, GetItem)
    }

    async fn set_item(&self, req: Request<pb::SetItemRequest>) -> Reply<pb::SetItemResponse> {
        unary!(self, req, SetItem)
    }

    async fn get_slice(&self, req: Request<pb::GetSliceRequest>) -> Reply<pb::GetSliceResponse> {
        unary!(self, req, GetSlice)
    }

    async fn set_slice(&self, req: Request<pb::SetSliceRequest>) -> Reply<pb::SetSliceResponse> {
        unary!(self, req, SetSlice)
    }

    type ReadStreamStream = ChunkStream;

    async fn read_stream(&self, req: Request<pb::ReadStreamRequest>) -> Reply<ChunkStream> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        let chunk = self.limits.chunk_size(req.chunk_size);
        let at = at(req.offset);
        let len = handle.length()?;
        let start = match at {
            At::Cursor => handle.tell()?.min(len),
            At::Offset(o) if o > len => {
                return Err(Error::PastEnd("read offset out of range".into()).into());
            }
            At::Offset(o) => o,
        };
        let limit = req.length.map_or(len, |n| start.saturating_add(n));
        // Each chunk is read only when the transport asks for the next one,
        // and only once the stream budget has room for it, so a client that
        // does not read holds at most two chunks of server memory.
        let io = self.io.clone();
        let budget = Arc::clone(&self.streams);
        let reading = Reading {
            handle,
            at,
            held: VecDeque::with_capacity(2),
            sent: None,
        };
        let stream = futures::stream::try_unfold(reading, move |mut reading| {
            let io = io.clone();
            let budget = Arc::clone(&budget);
            async move {
                // The encoder has copied the previous chunk by the time the
                // stream is polled again; a fault in that copy ends the
                // stream here, before the next chunk or the end.
                if let Some(sent) = reading.sent.take() {
                    sent.check()?;
                }
                budget.reserve(&mut reading, chunk).await;
                let (handle, at) = (Arc::clone(&reading.handle), reading.at);
                let Chunk { offset, data, sent } =
                    data_op(chunk as u64, move || handle.read_chunk(at, limit, chunk)).await?;
                if data.is_empty() {
                    return Ok(None);
                }
                io.read(data.len());
                if let At::Offset(o) = reading.at {
                    reading.at = At::Offset(o + data.len() as u64);
                }
                reading.sent = Some(sent);
                Ok::<_, Status>(Some((pb::ReadChunk { offset, data }, reading)))
            }
        });
        ok(Box::pin(stream) as ChunkStream)
    }

    async fn write_stream(
        &self,
        req: Request<Streaming<pb::WriteChunk>>,
    ) -> Reply<pb::WriteStreamResponse> {
        let (caller, mut chunks) = split(req)?;
        let Some(first) = chunks.next().await.transpose()? else {
            return Err(Error::Protocol(
                "WriteStream needs at least one chunk naming the handle".into(),
            )
            .into());
        };
        let handle = self.handle(&first.handle, &caller)?;
        let mut at = at(first.offset);
        let mut written = 0u64;
        let mut data = first.data;
        loop {
            let (writer, chunk, to) = (Arc::clone(&handle), data.clone(), at);
            data_op(data.len() as u64, move || writer.write_chunk(to, &chunk))
                .await
                .map_err(|cause| match written {
                    0 => cause,
                    written => Error::PartialWrite {
                        written,
                        cause: Box::new(cause),
                    },
                })?;
            written += data.len() as u64;
            self.io.written(data.len());
            if let At::Offset(o) = at {
                at = At::Offset(o + data.len() as u64);
            }
            match chunks.next().await.transpose()? {
                Some(chunk) => data = chunk.data,
                None => break,
            }
        }
        ok(pb::WriteStreamResponse { written })
    }

    type PipelineStream = ops::PipelineStream;

    async fn pipeline(
        &self,
        req: Request<Streaming<pb::PipelineRequest>>,
    ) -> Reply<ops::PipelineStream> {
        let (caller, requests) = split(req)?;
        ok(self.pipeline_stream(caller, requests))
    }
}
