//! The gRPC adapter for `mmapd.v1.Mmap`: each method converts the request
//! to domain arguments, calls the registry or handle, and converts back.
//! No CPython semantics live here.
#![forbid(unsafe_code)]

use std::{collections::VecDeque, pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use mmapd::pb::{self, mmap_server::Mmap};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Limits,
    access::{Action, Caller},
    convert::{access_to_pb, at},
    error::{Error, Result},
    handle::{At, Handle},
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

    async fn find_in(
        &self,
        req: Request<pb::FindRequest>,
        reverse: bool,
    ) -> Reply<pb::FindResponse> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        // A missing start is the cursor; counting from 0 overestimates.
        let touched = span(handle.length()?, req.start, req.end);
        let index = data_op(touched, move || {
            handle.find(&req.sub, req.start, req.end, reverse)
        })
        .await?;
        ok(pb::FindResponse { index })
    }
}

/// Where a ReadStream is, and the stream-buffer permits of the chunks it
/// produced that may still be buffered in the transport.
struct Reading {
    handle: Arc<Handle>,
    at: At,
    held: VecDeque<OwnedSemaphorePermit>,
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
async fn blocking<T: Send + 'static>(
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

/// Bytes a `[start, end)` request may touch in a mapping of `len` bytes
/// (negative indices count from the end, as in Python).
fn span(len: u64, start: Option<i64>, end: Option<i64>) -> u64 {
    let at = |i: i64| {
        if i < 0 {
            len.saturating_sub(i.unsigned_abs())
        } else {
            (i as u64).min(len)
        }
    };
    let (start, end) = (start.map_or(0, at), end.map_or(len, at));
    end.saturating_sub(start)
}

type Reply<T> = Result<Response<T>, Status>;

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
        let (caller, req) = split(req)?;
        let s = self.handle(&req.handle, &caller)?.stat()?;
        ok(pb::StatResponse {
            length: s.length,
            size: s.size,
            position: s.position,
            access: access_to_pb(s.access),
            name: s.name,
            path: s.path,
            offset: s.offset,
        })
    }

    async fn read(&self, req: Request<pb::ReadRequest>) -> Reply<pb::ReadResponse> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        let len = handle.length()?;
        // A negative n reads to the end, as in Python.
        let touched = req
            .n
            .filter(|&n| n >= 0)
            .map_or(len, |n| (n as u64).min(len));
        let max = self.max_reply();
        let data = data_op(touched, move || handle.read(req.n, max)).await?;
        self.io.read(data.len());
        ok(pb::ReadResponse { data: data.into() })
    }

    async fn read_byte(&self, req: Request<pb::ReadByteRequest>) -> Reply<pb::ReadByteResponse> {
        let (caller, req) = split(req)?;
        let value = self.handle(&req.handle, &caller)?.read_byte()?;
        self.io.read(1);
        ok(pb::ReadByteResponse {
            value: value.into(),
        })
    }

    async fn read_line(&self, req: Request<pb::ReadLineRequest>) -> Reply<pb::ReadLineResponse> {
        let (caller, req) = split(req)?;
        let data = self
            .handle(&req.handle, &caller)?
            .readline(self.max_reply())?;
        self.io.read(data.len());
        ok(pb::ReadLineResponse { data: data.into() })
    }

    async fn write(&self, req: Request<pb::WriteRequest>) -> Reply<pb::WriteResponse> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        let data = req.data;
        let written = data_op(data.len() as u64, move || handle.write(&data)).await?;
        self.io.written(written as usize);
        ok(pb::WriteResponse { written })
    }

    async fn write_byte(&self, req: Request<pb::WriteByteRequest>) -> Reply<pb::WriteByteResponse> {
        let (caller, req) = split(req)?;
        self.handle(&req.handle, &caller)?.write_byte(req.value)?;
        self.io.written(1);
        ok(pb::WriteByteResponse {})
    }

    async fn seek(&self, req: Request<pb::SeekRequest>) -> Reply<pb::SeekResponse> {
        let (caller, req) = split(req)?;
        let position = self
            .handle(&req.handle, &caller)?
            .seek(req.pos, req.whence)?;
        ok(pb::SeekResponse { position })
    }

    async fn tell(&self, req: Request<pb::TellRequest>) -> Reply<pb::TellResponse> {
        let (caller, req) = split(req)?;
        let position = self.handle(&req.handle, &caller)?.tell()?;
        ok(pb::TellResponse { position })
    }

    async fn size(&self, req: Request<pb::SizeRequest>) -> Reply<pb::SizeResponse> {
        let (caller, req) = split(req)?;
        let size = self.handle(&req.handle, &caller)?.size()?;
        ok(pb::SizeResponse { size })
    }

    async fn len(&self, req: Request<pb::LenRequest>) -> Reply<pb::LenResponse> {
        let (caller, req) = split(req)?;
        let length = self.handle(&req.handle, &caller)?.length()?;
        ok(pb::LenResponse { length })
    }

    async fn find(&self, req: Request<pb::FindRequest>) -> Reply<pb::FindResponse> {
        self.find_in(req, false).await
    }

    async fn r_find(&self, req: Request<pb::FindRequest>) -> Reply<pb::FindResponse> {
        self.find_in(req, true).await
    }

    async fn flush(&self, req: Request<pb::FlushRequest>) -> Reply<pb::FlushResponse> {
        let (caller, req) = split(req)?;
        caller.check(Action::Flush)?;
        let handle = self.handle(&req.handle, &caller)?;
        blocking(move || handle.flush(req.offset, req.size)).await?;
        ok(pb::FlushResponse {})
    }

    async fn r#move(&self, req: Request<pb::MoveRequest>) -> Reply<pb::MoveResponse> {
        let (caller, req) = split(req)?;
        caller.check(Action::Move)?;
        self.handle(&req.handle, &caller)?
            .move_(req.dest, req.src, req.count)?;
        ok(pb::MoveResponse {})
    }

    async fn resize(&self, req: Request<pb::ResizeRequest>) -> Reply<pb::ResizeResponse> {
        let (caller, req) = split(req)?;
        caller.check(Action::Resize)?;
        let handle = self.handle(&req.handle, &caller)?;
        let length = blocking(move || handle.resize(req.new_size)).await?;
        ok(pb::ResizeResponse { length })
    }

    async fn madvise(&self, req: Request<pb::MadviseRequest>) -> Reply<pb::MadviseResponse> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        blocking(move || handle.madvise(req.option, req.start, req.length)).await?;
        ok(pb::MadviseResponse {})
    }

    async fn get_item(&self, req: Request<pb::GetItemRequest>) -> Reply<pb::GetItemResponse> {
        let (caller, req) = split(req)?;
        let value = self.handle(&req.handle, &caller)?.get_item(req.index)?;
        self.io.read(1);
        ok(pb::GetItemResponse {
            value: value.into(),
        })
    }

    async fn set_item(&self, req: Request<pb::SetItemRequest>) -> Reply<pb::SetItemResponse> {
        let (caller, req) = split(req)?;
        self.handle(&req.handle, &caller)?
            .set_item(req.index, req.value)?;
        self.io.written(1);
        ok(pb::SetItemResponse {})
    }

    async fn get_slice(&self, req: Request<pb::GetSliceRequest>) -> Reply<pb::GetSliceResponse> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        let touched = span(handle.length()?, req.start, req.stop);
        let max = self.max_reply();
        let data = data_op(touched, move || {
            handle.get_slice(req.start, req.stop, req.step, max)
        })
        .await?;
        self.io.read(data.len());
        ok(pb::GetSliceResponse { data: data.into() })
    }

    async fn set_slice(&self, req: Request<pb::SetSliceRequest>) -> Reply<pb::SetSliceResponse> {
        let (caller, req) = split(req)?;
        let handle = self.handle(&req.handle, &caller)?;
        let n = req.data.len();
        let data = req.data;
        data_op(data.len() as u64, move || {
            handle.set_slice(req.start, req.stop, req.step, &data)
        })
        .await?;
        self.io.written(n);
        ok(pb::SetSliceResponse {})
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
        };
        let stream = futures::stream::try_unfold(reading, move |mut reading| {
            let io = io.clone();
            let budget = Arc::clone(&budget);
            async move {
                budget.reserve(&mut reading, chunk).await;
                let (handle, at) = (Arc::clone(&reading.handle), reading.at);
                let (offset, data) =
                    data_op(chunk as u64, move || handle.read_chunk(at, limit, chunk)).await?;
                if data.is_empty() {
                    return Ok(None);
                }
                io.read(data.len());
                if let At::Offset(o) = reading.at {
                    reading.at = At::Offset(o + data.len() as u64);
                }
                Ok::<_, Status>(Some((
                    pb::ReadChunk {
                        offset,
                        data: data.into(),
                    },
                    reading,
                )))
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
