//! Statuses that leave the server without an ErrorInfo (tonic makes some
//! itself: decode errors, over-limit messages, unknown methods) get one,
//! classified through [`Error`] so the table stays in one place.
#![forbid(unsafe_code)]

use bytes::Bytes;
use http::HeaderMap;
use tonic::{Code, Status};

use crate::error::Error;

/// Gives a non-OK status in `headers` (trailers-only headers or trailers)
/// of a call to `path` an ErrorInfo if it has none.
pub(super) fn give_error_info(headers: &mut HeaderMap, path: &str) {
    let Some(code) = headers.get(Status::GRPC_STATUS) else {
        return;
    };
    if Code::from_bytes(code.as_bytes()) == Code::Ok
        || headers.contains_key(Status::GRPC_STATUS_DETAILS)
    {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    headers.remove(Status::GRPC_STATUS);
    headers.remove(Status::GRPC_MESSAGE);
    if let Err(err) = adopt(&status, path).add_header(headers) {
        // Only a message that is no header value gets here; the code alone
        // still reaches the client.
        tracing::warn!(%err, "cannot encode status");
        headers.insert(Status::GRPC_STATUS, code_value(status.code()));
    }
}

fn code_value(code: Code) -> http::HeaderValue {
    http::HeaderValue::from(code as i32)
}

/// The status tonic made for a call to `path`, classified through [`Error`].
fn adopt(status: &Status, path: &str) -> Status {
    let mut message = status.message().to_owned();
    if message.is_empty() && status.code() == Code::Unimplemented {
        message = format!("method {path} is not implemented by this server");
    }
    let err = match status.code() {
        Code::Internal if is_decode_error(&message) => Error::Protocol(message.into()),
        Code::OutOfRange if message.contains("message length too large") => {
            Error::RequestTooLarge(message.into())
        }
        Code::ResourceExhausted => Error::RequestTooLarge(message.into()),
        Code::Unimplemented => Error::Unimplemented(message.into()),
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::InvalidArgument
        | Code::DeadlineExceeded
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss
        | Code::Unauthenticated => Error::Internal(message.into()),
    };
    let fixed = Status::from(err);
    if fixed.code() == Code::Internal && status.code() != Code::Internal {
        // Keep a code that says more than INTERNAL (NotFound from health,
        // Cancelled, DeadlineExceeded...).
        return Status::with_details(
            status.code(),
            fixed.message(),
            Bytes::copy_from_slice(fixed.details()),
        );
    }
    fixed
}

/// tonic reports undecodable requests as INTERNAL; they are the client's.
fn is_decode_error(message: &str) -> bool {
    [
        "failed to decode",
        "protocol error",
        "Unexpected EOF decoding",
    ]
    .iter()
    .any(|prefix| message.contains(prefix))
}

#[cfg(test)]
pub(super) mod tests {
    use tonic_types::StatusExt;

    use super::*;

    /// The ErrorInfo reason of `status`; panics without one.
    pub(in crate::layers) fn reason(status: &Status) -> String {
        status
            .get_error_details()
            .error_info()
            .expect("ErrorInfo")
            .reason
            .clone()
    }

    #[test]
    fn tonic_statuses_are_classified() {
        let cases = [
            (
                Status::internal("failed to decode Protobuf message: invalid wire type"),
                Code::InvalidArgument,
                "INVALID_REQUEST",
            ),
            (
                Status::out_of_range("Error, decoded message length too large: found 9 bytes"),
                Code::ResourceExhausted,
                "MESSAGE_TOO_LARGE",
            ),
            (
                Status::unimplemented(""),
                Code::Unimplemented,
                "UNIMPLEMENTED",
            ),
            (
                Status::not_found("unknown service"),
                Code::NotFound,
                "INTERNAL",
            ),
            (Status::internal("boom"), Code::Internal, "INTERNAL"),
        ];
        for (status, code, why) in cases {
            let fixed = adopt(&status, "/x/Y");
            assert_eq!(fixed.code(), code, "{status:?}");
            assert_eq!(reason(&fixed), why, "{status:?}");
        }
    }

    #[test]
    fn headers_get_one_error_info_and_keep_existing_ones() {
        let mut headers = HeaderMap::new();
        Status::internal("failed to decode Protobuf message")
            .add_header(&mut headers)
            .unwrap();
        give_error_info(&mut headers, "/x/Y");
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status), "INVALID_REQUEST");

        let mut ours = HeaderMap::new();
        let original = Status::from(Error::Closed);
        original.add_header(&mut ours).unwrap();
        let before = ours.clone();
        give_error_info(&mut ours, "/x/Y");
        assert_eq!(ours, before, "a status with details is left alone");

        let mut ok = HeaderMap::new();
        Status::ok("").add_header(&mut ok).unwrap();
        give_error_info(&mut ok, "/x/Y");
        assert!(!ok.contains_key(Status::GRPC_STATUS_DETAILS));
    }
}
