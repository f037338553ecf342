//! The gRPC side of the op vocabulary: `pb::Op` → (handle id, [`Op`]),
//! [`Value`] → `pb::OpResult`, a domain error → the `google.rpc.Status` the
//! unary call would have failed with, the single async dispatch
//! [`MmapService::apply`] (access checks, handle lookup, blocking pool, I/O
//! counters), and the Pipeline stream built on it.
#![forbid(unsafe_code)]

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use mmapd::pb::{self, op_result::Result as PbResult};
use parking_lot::Mutex;
use prost::Message;
use tonic::{Status, Streaming};

use super::{MmapService, data_op, offload};
use crate::{
    access::Caller,
    error::{Error, Result},
    handle::Handle,
    op::{Cost, Op, Value, action, cost},
};

/// The response stream of Pipeline.
pub(super) type PipelineStream =
    Pin<Box<dyn Stream<Item = Result<pb::PipelineResponse, Status>> + Send>>;

impl MmapService {
    /// Runs `op` on handle `id` for `caller`, exactly as its unary call
    /// does: the caller must own the handle and may need a privilege; big
    /// or blocking work goes to the blocking pool; bytes are counted. A
    /// reply of more than `max` bytes fails with MESSAGE_TOO_LARGE.
    pub(super) async fn apply(&self, caller: &Caller, id: &str, op: Op, max: u64) -> Result<Value> {
        let handle = self.handle(id, caller)?;
        self.apply_to(caller, handle, op, max).await
    }

    /// [`MmapService::apply`] on a handle already looked up for `caller`.
    async fn apply_to(
        &self,
        caller: &Caller,
        handle: Arc<Handle>,
        op: Op,
        max: u64,
    ) -> Result<Value> {
        if let Some(action) = action(&op) {
            caller.check(action, handle.mapping().name())?;
        }
        let written = op.bytes_written();
        // The mapping's length without the cursor lock: a closed handle
        // fails in the op itself, with the op's own error.
        let value = match cost(&op, handle.mapping().len()) {
            Cost::Inline => handle.apply(op, max),
            Cost::Bytes(n) => data_op(n, move || handle.apply(op, max)).await,
            Cost::Blocking => offload(move || handle.apply(op, max)).await,
        }?;
        self.io.read(value.bytes_read());
        self.io.written(written);
        Ok(value)
    }

    /// Pipeline: one request at a time, in order. The next request is read
    /// only when the previous response has been handed to the transport,
    /// so a stream holds one request being run plus what HTTP/2 buffers;
    /// a client that sends faster is held back by flow control, never
    /// refused. An unreadable request (too large, undecodable) ends the
    /// stream with its status, after the responses before it.
    ///
    /// The results of one request share one reply message: each op may
    /// return what the results before it left of the unary reply limit
    /// (so the first op of a request has exactly the unary call's limit).
    /// A response that still ends up over the message limit (a huge batch
    /// of failing ops) ends the stream with MESSAGE_TOO_LARGE.
    pub(super) fn pipeline_stream(
        &self,
        caller: Caller,
        requests: Streaming<pb::PipelineRequest>,
    ) -> PipelineStream {
        let service = self.clone();
        let last = Arc::new(Mutex::new(None));
        let stream = requests.then(move |request| {
            let (service, caller, last) = (service.clone(), caller.clone(), Arc::clone(&last));
            async move {
                // The status layer gives tonic's own statuses (too large,
                // undecodable) their ErrorInfo on the way out.
                let request = request?;
                let limit = service.max_reply();
                let mut used = 0u64;
                let mut results = Vec::with_capacity(request.ops.len());
                for op in request.ops {
                    // Most ops run inline; a batch of thousands must still
                    // let the worker's other tasks run now and then.
                    tokio::task::coop::consume_budget().await;
                    let result = match op.op {
                        Some(op) => {
                            let (id, op) = Op::from_pb(op);
                            let max = limit.saturating_sub(used);
                            match service.handle_cached(&last, &id, &caller) {
                                Ok(handle) => service.apply_to(&caller, handle, op, max).await,
                                Err(err) => Err(err),
                            }
                        }
                        None => Err(Error::Protocol("an Op must set one operation".into())),
                    };
                    let result = result_to_pb(result);
                    // Tag and length prefix of the repeated field.
                    used += result.encoded_len() as u64 + 6;
                    results.push(result);
                }
                let response = pb::PipelineResponse { results };
                let len = response.encoded_len() as u64;
                let max = service.limits.max_message_size as u64;
                if len > max {
                    return Err(Error::TooLarge { len, max }.into());
                }
                Ok(response)
            }
        });
        Box::pin(stream)
    }
}

impl MmapService {
    /// The handle `id` for `caller`, reusing the stream's last one: the ops
    /// of a stream mostly name one handle, and the registry lookup hashes
    /// the id under a shard lock every time. Reuse is safe because a
    /// handle's id and owner never change and the stream's caller is fixed;
    /// a handle closed since (by its client, its session's end or a
    /// reload) is looked up again, so its error is the registry's.
    fn handle_cached(
        &self,
        last: &Mutex<Option<Arc<Handle>>>,
        id: &str,
        caller: &Caller,
    ) -> Result<Arc<Handle>> {
        let mut last = last.lock();
        if let Some(handle) = last.as_ref().filter(|h| h.id() == id && h.is_open()) {
            return Ok(Arc::clone(handle));
        }
        let handle = self.handle(id, caller)?;
        *last = Some(Arc::clone(&handle));
        Ok(handle)
    }
}

/// An op's outcome → its wire result; an error becomes the very status
/// (code, message, one ErrorInfo) its unary call would have returned.
pub(super) fn result_to_pb(result: Result<Value>) -> pb::OpResult {
    let result = match result {
        Ok(value) => PbResult::from(value),
        Err(err) => PbResult::Error(status_to_pb(&Status::from(err))),
    };
    pb::OpResult {
        result: Some(result),
    }
}

/// A tonic status → `google.rpc.Status`. The details of a status made
/// with ErrorInfo are already that message, encoded.
pub(super) fn status_to_pb(status: &Status) -> tonic_types::Status {
    tonic_types::Status::decode(status.details())
        .ok()
        .filter(|decoded| decoded.code == status.code() as i32)
        .unwrap_or_else(|| tonic_types::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: Vec::new(),
        })
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn reflection_describes_pipeline_and_its_status_type() {
        let set = prost_types::FileDescriptorSet::decode(mmapd::FILE_DESCRIPTOR_SET).unwrap();
        let names: Vec<_> = set.file.iter().map(|f| f.name()).collect();
        // Every import is in the set, so reflection clients can resolve
        // OpResult.error without knowing googleapis.
        for needed in [
            "google/rpc/status.proto",
            "google/rpc/error_details.proto",
            "google/protobuf/any.proto",
            "mmapd/v1/mmapd.proto",
        ] {
            assert!(names.contains(&needed), "{needed} missing from {names:?}");
        }
        let details = set
            .file
            .iter()
            .find(|f| f.name() == "google/rpc/error_details.proto");
        let details = details.unwrap().message_type.iter().map(|m| m.name());
        assert!(details.collect::<Vec<_>>().contains(&"ErrorInfo"));
        let mmapd = set.file.iter().find(|f| f.name() == "mmapd/v1/mmapd.proto");
        let service = &mmapd.unwrap().service[0];
        let pipeline = service.method.iter().find(|m| m.name() == "Pipeline");
        let pipeline = pipeline.expect("Pipeline in Mmap");
        assert!(pipeline.client_streaming() && pipeline.server_streaming());
    }

    #[test]
    fn an_errors_proto_status_is_its_unary_status() {
        let err = Error::PastEnd("seek out of range".into());
        let status = Status::from(Error::PastEnd("seek out of range".into()));
        let PbResult::Error(proto) = result_to_pb(Err(err)).result.unwrap() else {
            panic!("an error result");
        };
        assert_eq!(proto.code, Code::OutOfRange as i32);
        assert_eq!(proto.message, "seek out of range");
        assert_eq!(proto.details.len(), 1);
        let back = Status::with_details(
            Code::from_i32(proto.code),
            proto.message.clone(),
            proto.encode_to_vec().into(),
        );
        let info = |s: &Status| {
            let info = s.get_error_details().error_info().cloned().unwrap();
            (info.reason, info.domain, info.metadata)
        };
        assert_eq!(info(&back), info(&status));
    }
}
