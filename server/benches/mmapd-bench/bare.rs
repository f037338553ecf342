//! The framework ceiling: a hand-written tonic service that answers
//! GetSlice, SetSlice, ReadStream, WriteStream and Pipeline on mmapd's own
//! paths with the same prost messages, doing no work beyond decoding and
//! encoding. The bench's client code then runs unchanged against it, so the
//! only difference between a scenario and its baseline is mmapd itself.
//! Written against `tonic::server::Grpc` (what tonic's codegen emits)
//! rather than a proto, because the layout of the repo is fixed and a
//! second build script for one bench would cost more than these lines.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use mmapd::pb;
use tonic::{
    Request, Response, Status, Streaming,
    body::Body,
    codegen::{BoxFuture, StdError, http},
    server::{ClientStreamingService, Grpc, NamedService, ServerStreamingService, UnaryService},
};
use tonic_prost::ProstCodec;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The service; `data` is what reads return (slices of it, never copies);
/// it must be at least 4 MiB, the largest chunk.
#[derive(Clone)]
pub struct Bare {
    pub data: Bytes,
}

impl NamedService for Bare {
    const NAME: &'static str = "mmapd.v1.Mmap";
}

const LIMIT: usize = mmapd::MAX_MESSAGE_SIZE;

/// A `Grpc` with mmapd's message limits, as the generated code builds it.
macro_rules! grpc {
    () => {
        Grpc::new(ProstCodec::default()).apply_max_message_size_config(Some(LIMIT), Some(LIMIT))
    };
}

impl<B> tonic::codegen::Service<http::Request<B>> for Bare
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        match req.uri().path() {
            "/mmapd.v1.Mmap/GetSlice" => {
                Box::pin(async move { Ok(grpc!().unary(this, req).await) })
            }
            "/mmapd.v1.Mmap/SetSlice" => {
                Box::pin(async move { Ok(grpc!().unary(SetSlice, req).await) })
            }
            "/mmapd.v1.Mmap/ReadStream" => {
                Box::pin(async move { Ok(grpc!().server_streaming(this, req).await) })
            }
            "/mmapd.v1.Mmap/WriteStream" => {
                Box::pin(async move { Ok(grpc!().client_streaming(this, req).await) })
            }
            "/mmapd.v1.Mmap/Pipeline" => {
                Box::pin(async move { Ok(grpc!().streaming(PipelineSvc(this), req).await) })
            }
            _ => Box::pin(async move {
                Ok(Status::unimplemented("not part of the bare baseline").into_http())
            }),
        }
    }
}

impl Bare {
    /// `stop - start` bytes of `data`. `data` is smaller than mmapd's file,
    /// so offsets wrap: the ceiling needs the same sizes, not the same bytes.
    fn slice(&self, start: Option<i64>, stop: Option<i64>) -> Bytes {
        let len = self.data.len();
        let start = start.unwrap_or(0).max(0) as usize;
        let stop = stop.map_or(len, |s| s.max(0) as usize);
        let n = stop.saturating_sub(start).min(len);
        let at = start % (len - n + 1);
        self.data.slice(at..at + n)
    }
}

impl UnaryService<pb::GetSliceRequest> for Bare {
    type Response = pb::GetSliceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<pb::GetSliceRequest>) -> Self::Future {
        let r = request.into_inner();
        let data = self.slice(r.start, r.stop);
        Box::pin(async move { Ok(Response::new(pb::GetSliceResponse { data })) })
    }
}

struct SetSlice;

impl UnaryService<pb::SetSliceRequest> for SetSlice {
    type Response = pb::SetSliceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, _request: Request<pb::SetSliceRequest>) -> Self::Future {
        Box::pin(async move { Ok(Response::new(pb::SetSliceResponse {})) })
    }
}

impl ServerStreamingService<pb::ReadStreamRequest> for Bare {
    type Response = pb::ReadChunk;
    type ResponseStream = BoxStream<pb::ReadChunk>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<pb::ReadStreamRequest>) -> Self::Future {
        let r = request.into_inner();
        let data = self.data.clone();
        let chunk = match r.chunk_size {
            0 => 256 << 10,
            n => (n as usize).min(4 << 20),
        }
        .min(data.len());
        let start = r.offset.unwrap_or(0) as usize;
        // A virtual stream of `length` bytes (unset: one buffer's worth).
        let end = start + r.length.map_or(data.len(), |n| n as usize);
        let chunks = futures::stream::iter((start..end).step_by(chunk).map(move |at| {
            Ok(pb::ReadChunk {
                offset: at as u64,
                data: data.slice(..(at + chunk).min(end) - at),
            })
        }));
        Box::pin(async move { Ok(Response::new(Box::pin(chunks) as BoxStream<_>)) })
    }
}

impl ClientStreamingService<pb::WriteChunk> for Bare {
    type Response = pb::WriteStreamResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<Streaming<pb::WriteChunk>>) -> Self::Future {
        let mut chunks = request.into_inner();
        Box::pin(async move {
            let mut written = 0;
            while let Some(chunk) = chunks.message().await? {
                written += chunk.data.len() as u64;
            }
            Ok(Response::new(pb::WriteStreamResponse { written }))
        })
    }
}

struct PipelineSvc(Bare);

impl tonic::server::StreamingService<pb::PipelineRequest> for PipelineSvc {
    type Response = pb::PipelineResponse;
    type ResponseStream = BoxStream<pb::PipelineResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<pb::PipelineRequest>>) -> Self::Future {
        let bare = self.0.clone();
        let responses = request.into_inner().map(move |batch| {
            let results = batch?
                .ops
                .into_iter()
                .map(|op| pb::OpResult {
                    result: Some(answer(&bare, op.op)),
                })
                .collect();
            Ok(pb::PipelineResponse { results })
        });
        Box::pin(async move { Ok(Response::new(Box::pin(responses) as BoxStream<_>)) })
    }
}

fn answer(bare: &Bare, op: Option<pb::op::Op>) -> pb::op_result::Result {
    use pb::{op::Op, op_result::Result as R};
    match op {
        Some(Op::GetSlice(r)) => R::GetSlice(pb::GetSliceResponse {
            data: bare.slice(r.start, r.stop),
        }),
        Some(Op::SetSlice(_)) => R::SetSlice(pb::SetSliceResponse {}),
        _ => R::Error(tonic_types::Status {
            code: tonic::Code::Unimplemented as i32,
            message: "not part of the bare baseline".into(),
            details: Vec::new(),
        }),
    }
}
