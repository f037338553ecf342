//! The gRPC adapter for `mmapd.v1.Mmap`: each method converts the request
//! to domain arguments, calls the registry or handle, and converts back.
//! No CPython semantics live here.
#![forbid(unsafe_code)]

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use mmapd::pb::{self, mmap_server::Mmap};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Limits,
    convert::{access_to_pb, at},
    error::{Error, Result},
    handle::{At, Handle},
    registry::{MapArgs, Registry},
};

/// The `Mmap` service.
#[derive(Debug, Clone)]
pub struct MmapService {
    registry: Arc<Registry>,
    limits: Limits,
}

impl MmapService {
    /// A service over a registry.
    pub fn new(registry: Arc<Registry>, limits: Limits) -> Self {
        Self { registry, limits }
    }

    fn handle(&self, id: &str) -> Result<Arc<Handle>> {
        self.registry.handle(id)
    }

    /// Largest payload a unary reply may carry, leaving room for framing.
    fn max_reply(&self) -> u64 {
        self.limits.max_reply()
    }
}

/// Runs blocking work (file opens, mmap, msync, mremap) off the async
/// workers, so a slow disk does not stall other clients' requests.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Status::from),
        Err(join) => Err(Status::internal(format!("worker failed: {join}"))),
    }
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
        let req = req.into_inner();
        let (session_id, ttl) = self
            .registry
            .open_session(&req.client_name, req.ttl_seconds)?;
        ok(pb::OpenSessionResponse {
            session_id,
            ttl_seconds: ttl.as_secs() as u32,
        })
    }

    async fn keep_alive(&self, req: Request<pb::KeepAliveRequest>) -> Reply<pb::KeepAliveResponse> {
        let ttl = self.registry.keep_alive(&req.into_inner().session_id)?;
        ok(pb::KeepAliveResponse {
            ttl_seconds: ttl.as_secs() as u32,
        })
    }

    async fn close_session(
        &self,
        req: Request<pb::CloseSessionRequest>,
    ) -> Reply<pb::CloseSessionResponse> {
        let registry = Arc::clone(&self.registry);
        let id = req.into_inner().session_id;
        blocking(move || registry.close_session(&id)).await?;
        ok(pb::CloseSessionResponse {})
    }

    async fn map(&self, req: Request<pb::MapRequest>) -> Reply<pb::MapResponse> {
        let req = req.into_inner();
        let args = MapArgs {
            session_id: req.session_id,
            path: req.path,
            length: req.length,
            offset: req.offset,
            access: req.access,
            name: req.name,
            create: req.create,
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
        let id = req.into_inner().handle;
        blocking(move || {
            registry.close_handle(&id);
            Ok(())
        })
        .await?;
        ok(pb::CloseResponse {})
    }

    async fn stat(&self, req: Request<pb::StatRequest>) -> Reply<pb::StatResponse> {
        let s = self.handle(&req.into_inner().handle)?.stat()?;
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
        let req = req.into_inner();
        let data = self.handle(&req.handle)?.read(req.n, self.max_reply())?;
        ok(pb::ReadResponse { data: data.into() })
    }

    async fn read_byte(&self, req: Request<pb::ReadByteRequest>) -> Reply<pb::ReadByteResponse> {
        let value = self.handle(&req.into_inner().handle)?.read_byte()?;
        ok(pb::ReadByteResponse {
            value: value.into(),
        })
    }

    async fn read_line(&self, req: Request<pb::ReadLineRequest>) -> Reply<pb::ReadLineResponse> {
        let data = self
            .handle(&req.into_inner().handle)?
            .readline(self.max_reply())?;
        ok(pb::ReadLineResponse { data: data.into() })
    }

    async fn write(&self, req: Request<pb::WriteRequest>) -> Reply<pb::WriteResponse> {
        let req = req.into_inner();
        let written = self.handle(&req.handle)?.write(&req.data)?;
        ok(pb::WriteResponse { written })
    }

    async fn write_byte(&self, req: Request<pb::WriteByteRequest>) -> Reply<pb::WriteByteResponse> {
        let req = req.into_inner();
        self.handle(&req.handle)?.write_byte(req.value)?;
        ok(pb::WriteByteResponse {})
    }

    async fn seek(&self, req: Request<pb::SeekRequest>) -> Reply<pb::SeekResponse> {
        let req = req.into_inner();
        let position = self.handle(&req.handle)?.seek(req.pos, req.whence)?;
        ok(pb::SeekResponse { position })
    }

    async fn tell(&self, req: Request<pb::TellRequest>) -> Reply<pb::TellResponse> {
        let position = self.handle(&req.into_inner().handle)?.tell()?;
        ok(pb::TellResponse { position })
    }

    async fn size(&self, req: Request<pb::SizeRequest>) -> Reply<pb::SizeResponse> {
        let size = self.handle(&req.into_inner().handle)?.size()?;
        ok(pb::SizeResponse { size })
    }

    async fn len(&self, req: Request<pb::LenRequest>) -> Reply<pb::LenResponse> {
        let length = self.handle(&req.into_inner().handle)?.length()?;
        ok(pb::LenResponse { length })
    }

    async fn find(&self, req: Request<pb::FindRequest>) -> Reply<pb::FindResponse> {
        let req = req.into_inner();
        let index = self
            .handle(&req.handle)?
            .find(&req.sub, req.start, req.end, false)?;
        ok(pb::FindResponse { index })
    }

    async fn r_find(&self, req: Request<pb::FindRequest>) -> Reply<pb::FindResponse> {
        let req = req.into_inner();
        let index = self
            .handle(&req.handle)?
            .find(&req.sub, req.start, req.end, true)?;
        ok(pb::FindResponse { index })
    }

    async fn flush(&self, req: Request<pb::FlushRequest>) -> Reply<pb::FlushResponse> {
        let req = req.into_inner();
        let handle = self.handle(&req.handle)?;
        blocking(move || handle.flush(req.offset, req.size)).await?;
        ok(pb::FlushResponse {})
    }

    async fn r#move(&self, req: Request<pb::MoveRequest>) -> Reply<pb::MoveResponse> {
        let req = req.into_inner();
        self.handle(&req.handle)?
            .move_(req.dest, req.src, req.count)?;
        ok(pb::MoveResponse {})
    }

    async fn resize(&self, req: Request<pb::ResizeRequest>) -> Reply<pb::ResizeResponse> {
        let req = req.into_inner();
        let handle = self.handle(&req.handle)?;
        let length = blocking(move || handle.resize(req.new_size)).await?;
        ok(pb::ResizeResponse { length })
    }

    async fn madvise(&self, req: Request<pb::MadviseRequest>) -> Reply<pb::MadviseResponse> {
        let req = req.into_inner();
        let handle = self.handle(&req.handle)?;
        blocking(move || handle.madvise(req.option, req.start, req.length)).await?;
        ok(pb::MadviseResponse {})
    }

    async fn get_item(&self, req: Request<pb::GetItemRequest>) -> Reply<pb::GetItemResponse> {
        let req = req.into_inner();
        let value = self.handle(&req.handle)?.get_item(req.index)?;
        ok(pb::GetItemResponse {
            value: value.into(),
        })
    }

    async fn set_item(&self, req: Request<pb::SetItemRequest>) -> Reply<pb::SetItemResponse> {
        let req = req.into_inner();
        self.handle(&req.handle)?.set_item(req.index, req.value)?;
        ok(pb::SetItemResponse {})
    }

    async fn get_slice(&self, req: Request<pb::GetSliceRequest>) -> Reply<pb::GetSliceResponse> {
        let req = req.into_inner();
        let data =
            self.handle(&req.handle)?
                .get_slice(req.start, req.stop, req.step, self.max_reply())?;
        ok(pb::GetSliceResponse { data: data.into() })
    }

    async fn set_slice(&self, req: Request<pb::SetSliceRequest>) -> Reply<pb::SetSliceResponse> {
        let req = req.into_inner();
        self.handle(&req.handle)?
            .set_slice(req.start, req.stop, req.step, &req.data)?;
        ok(pb::SetSliceResponse {})
    }

    type ReadStreamStream = ChunkStream;

    async fn read_stream(&self, req: Request<pb::ReadStreamRequest>) -> Reply<ChunkStream> {
        let req = req.into_inner();
        let handle = self.handle(&req.handle)?;
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
        // so a slow client holds at most a few chunks of server memory.
        let stream = futures::stream::try_unfold((handle, at), move |(handle, at)| async move {
            let (offset, data) = handle.read_chunk(at, limit, chunk)?;
            if data.is_empty() {
                return Ok(None);
            }
            let next = match at {
                At::Cursor => At::Cursor,
                At::Offset(o) => At::Offset(o + data.len() as u64),
            };
            Ok::<_, Status>(Some((
                pb::ReadChunk {
                    offset,
                    data: data.into(),
                },
                (handle, next),
            )))
        });
        ok(Box::pin(stream) as ChunkStream)
    }

    async fn write_stream(
        &self,
        req: Request<Streaming<pb::WriteChunk>>,
    ) -> Reply<pb::WriteStreamResponse> {
        let mut chunks = req.into_inner();
        let Some(first) = chunks.next().await.transpose()? else {
            return Err(Error::Protocol(
                "WriteStream needs at least one chunk naming the handle".into(),
            )
            .into());
        };
        let handle = self.handle(&first.handle)?;
        let mut at = at(first.offset);
        let mut written = 0u64;
        let mut data = first.data;
        loop {
            handle
                .write_chunk(at, &data)
                .map_err(|cause| match written {
                    0 => cause,
                    written => Error::PartialWrite {
                        written,
                        cause: Box::new(cause),
                    },
                })?;
            written += data.len() as u64;
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
}
