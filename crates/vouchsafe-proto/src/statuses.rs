//! The statuses tonic itself answers before a request reaches a handler, made to say what the protos promise. Used
//! by every vouchsafe gRPC server (the matching server's services, its Review API, the Centre's intake).
//!
//! tonic reports a request it cannot decode (garbage, a wrong wire type, a truncated message or frame, a bad
//! compression flag) as INTERNAL with the decoder's text, and a message over `limits.max_message_bytes` as
//! OUT_OF_RANGE. The proto says INTERNAL is a server fault without details and that an oversize message is
//! RESOURCE_EXHAUSTED. This response layer rewrites exactly those statuses: INVALID_ARGUMENT with a short message
//! of our own, and RESOURCE_EXHAUSTED naming the limit. It recognises them by the [`tonic::Status`] tonic attaches
//! to a trailers-only response and by the texts of the tonic version the lock file pins (a test sends each kind of
//! bad request and checks the answer, so a tonic upgrade that changes them fails the suite, not a client).
//! Handler statuses are never touched: the servers' own INTERNAL is always the bare "internal error", and the
//! OUT_OF_RANGE of StreamTable and the Transparency RPCs has other texts.

use tonic::Code;
use tonic::codegen::http;

/// Prefixes of tonic's (and tonic-prost's) texts for a request that does not decode.
const DECODE_ERRORS: &[&str] = &[
    "failed to decode Protobuf message",
    "Unexpected EOF decoding stream",
    "protocol error: received message with",
    "Error decompressing",
];

/// Prefix of tonic's text for a message over the decoding limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// Our message for an undecodable request.
pub const UNDECODABLE: &str = "the request is not a valid protobuf message of the RPC's request type";

/// Rewrites a response if it is one of tonic's own decoding refusals (see the module documentation);
/// `max_message_bytes` is the decoding limit of the service, named in the RESOURCE_EXHAUSTED message.
pub fn rewrite<B>(mut response: http::Response<B>, max_message_bytes: usize) -> http::Response<B> {
    let Some(status) = response.extensions().get::<tonic::Status>() else {
        return response;
    };
    let replacement = match status.code() {
        Code::Internal if DECODE_ERRORS.iter().any(|p| status.message().starts_with(p)) => {
            tonic::Status::invalid_argument(UNDECODABLE)
        }
        Code::OutOfRange if status.message().starts_with(TOO_LARGE) => tonic::Status::resource_exhausted(format!(
            "the request message is larger than the server's limit of {max_message_bytes} bytes"
        )),
        _ => return response,
    };
    let headers = response.headers_mut();
    headers.remove(tonic::Status::GRPC_STATUS);
    headers.remove(tonic::Status::GRPC_MESSAGE);
    headers.remove(tonic::Status::GRPC_STATUS_DETAILS);
    // Cannot fail: the texts are plain ASCII and the code is valid.
    let _ = replacement.add_header(headers);
    response.extensions_mut().insert(replacement);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: tonic::Status) -> (Code, String) {
        let r: http::Response<()> = rewrite(status.into_http(), 1000);
        let s = tonic::Status::from_header_map(r.headers()).unwrap();
        (s.code(), s.message().to_owned())
    }

    #[test]
    fn decoding_refusals_are_rewritten_and_nothing_else() {
        let s = tonic::Status::internal("failed to decode Protobuf message: invalid wire type value: 7");
        assert_eq!(answer(s), (Code::InvalidArgument, UNDECODABLE.to_owned()));
        let s = tonic::Status::internal("Unexpected EOF decoding stream.");
        assert_eq!(answer(s).0, Code::InvalidArgument);
        let s = tonic::Status::out_of_range("Error, decoded message length too large: found 2000 bytes, the limit is");
        assert_eq!(
            answer(s),
            (Code::ResourceExhausted, "the request message is larger than the server's limit of 1000 bytes".into())
        );
        // Our own statuses pass unchanged.
        assert_eq!(answer(tonic::Status::internal("internal error")), (Code::Internal, "internal error".into()));
        let s = tonic::Status::out_of_range("first_chunk 9 is not below the chunk count 3");
        assert_eq!(answer(s).0, Code::OutOfRange);
    }
}
