//! The fuzzer's untyped call kinds: malformed raw bodies to every method
//! and requests over the message limit.

use bytes::Bytes;
use futures::StreamExt;
use mmapd::pb;
use prost::Message;
use tonic::{Request, Status, codegen::http::uri::PathAndQuery};

use crate::{
    raw::{METHODS, Method, RawCodec, Shape, hex_prefix, malformed, short},
    report::{Call, Expect, Outcome},
    state::{Fuzzer, answer, drain},
    values::OVERSIZE,
};

impl Fuzzer {
    /// Sends raw bodies (one per message of the call) to `method`.
    async fn send_raw(&mut self, method: &Method, bodies: Vec<Bytes>) -> Outcome {
        if let Err(err) = self.raw.ready().await {
            return Outcome::Err(Status::unavailable(format!("client not ready: {err}")));
        }
        let path = PathAndQuery::from_static(method.path);
        match method.shape {
            Shape::Unary => {
                let body = bodies.into_iter().next().unwrap_or_default();
                answer(self.raw.unary(Request::new(body), path, RawCodec))
                    .await
                    .0
            }
            Shape::ServerStream => {
                let body = bodies.into_iter().next().unwrap_or_default();
                drain(
                    self.raw
                        .server_streaming(Request::new(body), path, RawCodec),
                )
                .await
                .0
            }
            Shape::ClientStream => {
                let stream = futures::stream::iter(bodies).boxed();
                answer(
                    self.raw
                        .client_streaming(Request::new(stream), path, RawCodec),
                )
                .await
                .0
            }
        }
    }

    /// A well-formed body for `method` naming a live handle or session in
    /// field 1, for [`malformed`] to damage.
    fn valid_body(&mut self, method: &Method) -> Option<Bytes> {
        if !method.strings.contains(&1) {
            return None;
        }
        let id = if method.path.ends_with("Session") || method.path.ends_with("/Map") {
            self.session()
        } else {
            self.handle().0
        };
        Some(pb::CloseRequest { handle: id }.encode_to_vec().into())
    }

    /// A malformed raw body to a random method; for WriteStream, a valid
    /// first chunk may come before the malformed one.
    pub async fn raw_call(&mut self) {
        let method = self.g.pick(&METHODS);
        let valid = self.valid_body(&method);
        let (body, what) = malformed(&mut self.g, &method, valid);
        let mut bodies = vec![body.clone()];
        if method.shape == Shape::ClientStream && self.g.chance(0.5) {
            let (handle, _) = self.handle();
            let first = pb::WriteChunk {
                handle,
                offset: Some(0),
                data: self.g.bytes(),
            };
            bodies.insert(0, first.encode_to_vec().into());
        }
        let request = format!(
            "{what}: {} (message {} of {})",
            hex_prefix(&body),
            bodies.len(),
            bodies.len()
        );
        let call = self.call("raw", short(method.path), &request, Expect::Clean);
        let outcome = self.send_raw(&method, bodies).await;
        self.record(&call, &outcome);
    }

    /// A request over the server's message limit; the answer must be
    /// RESOURCE_EXHAUSTED / MESSAGE_TOO_LARGE.
    pub async fn oversize_call(&mut self) {
        let sent = std::time::Instant::now();
        let big = self.g.oversize();
        let big_string = || "x".repeat(OVERSIZE);
        let (handle, _) = self.handle();
        let (method, outcome, request): (&str, Outcome, String) = match self.g.below(9) {
            0 => {
                let req = pb::WriteRequest { handle, data: big };
                let shown = format!(
                    "Write {{ handle: {:?}, data: {} bytes }}",
                    req.handle,
                    req.data.len()
                );
                ("Mmap/Write", answer(self.c.write(req)).await.0, shown)
            }
            1 => {
                let req = pb::SetSliceRequest {
                    handle,
                    start: Some(0),
                    stop: Some(big.len() as i64),
                    step: None,
                    data: big,
                };
                let shown = format!(
                    "SetSlice {{ handle: {:?}, data: {} bytes }}",
                    req.handle,
                    req.data.len()
                );
                (
                    "Mmap/SetSlice",
                    answer(self.c.set_slice(req)).await.0,
                    shown,
                )
            }
            2 => {
                let req = pb::FindRequest {
                    handle,
                    sub: big,
                    start: None,
                    end: None,
                };
                let shown = format!(
                    "Find {{ handle: {:?}, sub: {} bytes }}",
                    req.handle,
                    req.sub.len()
                );
                ("Mmap/Find", answer(self.c.find(req)).await.0, shown)
            }
            3 => {
                let session_id = self.session();
                let req = pb::MapRequest {
                    session_id,
                    path: big_string(),
                    ..Default::default()
                };
                let shown = format!("Map {{ path: {} bytes }}", req.path.len());
                ("Mmap/Map", answer(self.c.map(req)).await.0, shown)
            }
            4 => {
                let req = pb::OpenSessionRequest {
                    client_name: big_string(),
                    ttl_seconds: 1,
                };
                let shown = format!(
                    "OpenSession {{ client_name: {} bytes }}",
                    req.client_name.len()
                );
                (
                    "Mmap/OpenSession",
                    answer(self.c.open_session(req)).await.0,
                    shown,
                )
            }
            5 | 6 => {
                // An over-limit chunk first, or after a good one (to a
                // handle only this code uses, so that it is surely good).
                let small = pb::WriteChunk {
                    handle: self.sink.clone(),
                    offset: Some(0),
                    data: self.g.fill(16),
                };
                let large = pb::WriteChunk {
                    handle: handle.clone(),
                    offset: None,
                    data: big,
                };
                let chunks = if self.g.chance(0.5) {
                    vec![large]
                } else {
                    vec![small, large]
                };
                let shown = format!(
                    "WriteStream {} chunks of {:?} bytes, the first to a good handle {:?}",
                    chunks.len(),
                    chunks.iter().map(|c| c.data.len()).collect::<Vec<_>>(),
                    chunks[0].handle
                );
                let stream = futures::stream::iter(chunks).boxed();
                let (outcome, _) = answer(self.c.write_stream(stream)).await;
                ("Mmap/WriteStream", outcome, shown)
            }
            _ => {
                let method = self.g.pick(&METHODS);
                let shown = format!("raw {} bytes: {}", big.len(), hex_prefix(&big));
                let outcome = self.send_raw(&method, vec![big]).await;
                (short(method.path), outcome, shown)
            }
        };
        let call = Call {
            kind: "oversize",
            method: method.to_owned(),
            request,
            expect: Expect::TooLarge,
            sent,
        };
        if self.trace {
            println!(
                "fuzz #{} oversize {method} {}",
                self.report.calls, call.request
            );
        }
        self.record(&call, &outcome);
    }
}
