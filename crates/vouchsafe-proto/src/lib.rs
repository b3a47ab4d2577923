//! Generated gRPC code for the vouchsafe matching API (`proto/vouchsafe/v1`).
//!
//! This crate is codegen, plus the one piece of transport glue every server shares ([`statuses`]): `build.rs` compiles the `.proto` files with
//! `protox` (no system `protoc`) and generates prost messages plus a tonic
//! client and server with `tonic-prost-build`. Protocol objects travel inside
//! the messages as `bytes` in the protocol crate's canonical encodings; these
//! generated types must stay out of the public APIs of other crates (handlers
//! convert at the edge).

/// `vouchsafe.v1`: the `Matching` service and its messages.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]
pub mod v1 {
    tonic::include_proto!("vouchsafe.v1");
}

pub mod statuses;

/// Encoded `google.protobuf.FileDescriptorSet` of every vouchsafe proto file,
/// including source info, for `tonic-reflection`
/// (`Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vouchsafe_descriptor");

#[cfg(test)]
mod tests {
    use super::v1;
    use prost::Message as _;

    #[test]
    fn descriptor_set_decodes_and_describes_the_service() {
        let fds = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET);
        let fds = match fds {
            Ok(f) => f,
            Err(e) => panic!("descriptor set does not decode: {e}"),
        };
        let file = fds.file.iter().find(|f| f.name() == "vouchsafe/v1/matching.proto");
        let Some(file) = file else { panic!("matching.proto missing") };
        assert_eq!(file.package(), "vouchsafe.v1");
        let svc = file.service.iter().find(|s| s.name() == "Matching");
        let Some(svc) = svc else { panic!("service missing") };
        let mut methods: Vec<&str> = svc.method.iter().map(|m| m.name()).collect();
        methods.sort_unstable();
        assert_eq!(
            methods,
            ["GetManifest", "GetNotices", "GetUpdate", "StreamTable", "SubmitAppeal", "SubmitVouchers"]
        );
        // Source info is kept, so reflection clients see the API comments.
        assert!(file.source_code_info.is_some());
    }

    #[test]
    fn messages_round_trip() {
        let req = v1::SubmitVouchersRequest {
            batch_id: vec![7; 16],
            vouchers: vec![vec![1, 2, 3], vec![4; 40]],
            client_state: vec![5; 16],
        };
        let bytes = req.encode_to_vec();
        let back = v1::SubmitVouchersRequest::decode(bytes.as_slice()).ok();
        assert_eq!(back, Some(req));
    }

    #[test]
    fn service_name_matches_proto() {
        assert_eq!(
            <v1::matching_server::MatchingServer<Unimpl> as tonic::server::NamedService>::NAME,
            "vouchsafe.v1.Matching"
        );
    }

    /// Minimal server implementation, only to instantiate the generated server type.
    struct Unimpl;

    #[tonic::async_trait]
    impl v1::matching_server::Matching for Unimpl {
        async fn get_manifest(
            &self,
            _: tonic::Request<v1::GetManifestRequest>,
        ) -> Result<tonic::Response<v1::Manifest>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        type StreamTableStream = std::pin::Pin<
            Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<v1::TableChunk, tonic::Status>> + Send>,
        >;
        async fn stream_table(
            &self,
            _: tonic::Request<v1::StreamTableRequest>,
        ) -> Result<tonic::Response<Self::StreamTableStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        async fn get_update(
            &self,
            _: tonic::Request<v1::GetUpdateRequest>,
        ) -> Result<tonic::Response<v1::TableUpdate>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        async fn submit_vouchers(
            &self,
            _: tonic::Request<v1::SubmitVouchersRequest>,
        ) -> Result<tonic::Response<v1::SubmitAck>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        async fn get_notices(
            &self,
            _: tonic::Request<v1::GetNoticesRequest>,
        ) -> Result<tonic::Response<v1::Notices>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        async fn submit_appeal(
            &self,
            _: tonic::Request<v1::SubmitAppealRequest>,
        ) -> Result<tonic::Response<v1::AppealAck>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
    }
}
