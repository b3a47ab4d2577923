//! The tonic adapter: converts generated proto types to domain calls and maps every error in one place
//! ([`to_status`]). Private: generated types never leave this module.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_server::Matching;
use vouchsafe_proto::v1::transparency_server::Transparency;

use crate::error::{ErrorChain, ServerError};
use crate::service::{Served, Shared};

pub(crate) use vouchsafe_proto::v1::matching_server::MatchingServer;
pub(crate) use vouchsafe_proto::v1::transparency_server::TransparencyServer;

/// Metadata key naming a refusal where the status code alone does not say it (docs/OPERATIONS.md §4).
pub(crate) const REFUSAL_HEADER: &str = "vouchsafe-refusal";
/// Its value for the client-state limit (`limits.max_client_states`): RESOURCE_EXHAUSTED that retrying cannot cure.
pub(crate) const CLIENT_STATE_LIMIT: &str = "client-state-limit";

/// Maps a server error to a gRPC status. The only place that does. Internal failures are logged here, with their
/// whole source chain, and reach the client as a bare INTERNAL without details.
///
/// Every code names one thing the client can act on, so no client ever has to read a message:
/// * FAILED_PRECONDITION means only "no detection order is active" (the system is not in the state the call needs,
///   and retrying will not help until it is): the client stops scanning and sends attachments as usual.
/// * NOT_FOUND means "the table version you named is not served": from StreamTable (fetch the manifest again) and
///   from GetUpdate, where the entity that does not exist is the update from that base version (the history no
///   longer reaches it): the client downloads the table in full. Before, GetUpdate answered FAILED_PRECONDITION and
///   a client could not tell "resync fully" from "no order". OUT_OF_RANGE was the other candidate, but tonic itself
///   reports an over-limit message as OUT_OF_RANGE, and StreamTable uses it for a bad `first_chunk`; a code that
///   only this server emits, for only this reason, is one a client can trust.
pub(crate) fn to_status(e: ServerError) -> Status {
    match e {
        ServerError::Unauthenticated => Status::unauthenticated(e.to_string()),
        ServerError::PermissionDenied(_) => Status::permission_denied(e.to_string()),
        ServerError::OrderInactive(_)
        | ServerError::StaleCheckpoint
        | ServerError::Conflict(_)
        | ServerError::Case(_) => Status::failed_precondition(e.to_string()),
        ServerError::NotFound(_) => Status::not_found(e.to_string()),
        ServerError::InvalidRequest(_)
        | ServerError::MalformedVoucher { .. }
        | ServerError::VersionAhead { .. }
        | ServerError::BadCosignature(_) => Status::invalid_argument(e.to_string()),
        ServerError::BatchTooLarge { .. } | ServerError::RateLimited => Status::resource_exhausted(e.to_string()),
        ServerError::TooManyClientStates { .. } => {
            // The code alone says "retry later"; this refusal does not pass with time, so it is marked.
            let mut s = Status::resource_exhausted(e.to_string());
            s.metadata_mut().insert(REFUSAL_HEADER, tonic::metadata::MetadataValue::from_static(CLIENT_STATE_LIMIT));
            s
        }
        ServerError::Overloaded => Status::unavailable(e.to_string()),
        ServerError::BatchConflict => Status::already_exists(e.to_string()),
        ServerError::TableVersionNotServed { .. } | ServerError::UpdateUnavailable { .. } => {
            Status::not_found(e.to_string())
        }
        ServerError::ChunkOutOfRange { .. } | ServerError::LogRange(_) => Status::out_of_range(e.to_string()),
        ServerError::Config { .. }
        | ServerError::Io { .. }
        | ServerError::TableMismatch { .. }
        | ServerError::TableReload { .. }
        | ServerError::Governance { .. }
        | ServerError::Log(_)
        | ServerError::Protocol(_)
        | ServerError::Store(_)
        | ServerError::Transport(_)
        | ServerError::Centre(_)
        | ServerError::Internal(_) => {
            tracing::error!(error = %ErrorChain(&e), "request failed");
            Status::internal("internal error")
        }
    }
}

/// The `vouchsafe.v1.Matching` implementation.
pub(crate) struct MatchingService {
    pub(crate) shared: Arc<Shared>,
}

fn manifest_message(s: &Served) -> v1::Manifest {
    let t = &s.table;
    let m = &t.manifest;
    v1::Manifest {
        params: m.params.encode(),
        table_version: m.table_version,
        slot_count: m.params.slot_count,
        chunk_slots: m.chunk_slots,
        root: t.root.to_vec(),
        chunk_hashes: m.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
        signed_order: s.gov.order().signed().encode(),
        revocations: s.revocations.iter().map(|r| r.signed().encode()).collect(),
        signed_manifest: t.signed_manifest.encode(),
        order_leaf_index: s.order_leaf,
        manifest_leaf_index: t.manifest_leaf,
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<v1::TableChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Matching for MatchingService {
    async fn get_manifest(&self, _: Request<v1::GetManifestRequest>) -> Result<Response<v1::Manifest>, Status> {
        let served = self.shared.manifest().map_err(to_status)?;
        Ok(Response::new(manifest_message(&served)))
    }

    type StreamTableStream = ChunkStream;

    async fn stream_table(
        &self,
        request: Request<v1::StreamTableRequest>,
    ) -> Result<Response<Self::StreamTableStream>, Status> {
        let r = request.into_inner();
        // The stream keeps the version it was asked for even if a reload replaces the served table meanwhile.
        let (served, range) = self.shared.stream_range(r.table_version, r.first_chunk).map_err(to_status)?;
        let stream = tokio_stream::iter(range.map(move |i| match served.table.chunk(i) {
            Some(c) => Ok(v1::TableChunk { index: i, chunk: c.encode() }),
            None => Err(to_status(ServerError::Internal("chunk index inside the range not found"))),
        }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_update(&self, request: Request<v1::GetUpdateRequest>) -> Result<Response<v1::TableUpdate>, Status> {
        let from = request.into_inner().from_version;
        let view = self.shared.update(from).map_err(to_status)?;
        Ok(Response::new(v1::TableUpdate {
            from_version: view.from_version,
            to_version: view.served.manifest.table_version,
            // Up to date: no update encoding at all (an empty `update`), to_version == from_version.
            update: view.update.map(|u| u.encode()).unwrap_or_default(),
            root: view.served.root.to_vec(),
            chunk_hashes: view.served.manifest.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
            signed_manifest: view.served.signed_manifest.encode(),
            manifest_leaf_index: view.served.manifest_leaf,
        }))
    }

    async fn submit_vouchers(
        &self,
        request: Request<v1::SubmitVouchersRequest>,
    ) -> Result<Response<v1::SubmitAck>, Status> {
        let auth = request.metadata().get("authorization").map(|v| zeroize::Zeroizing::new(v.as_bytes().to_vec()));
        let r = request.into_inner();
        let auth = auth.as_ref().map(|v| v.as_slice());
        let ack = self.shared.submit(auth, &r.batch_id, &r.client_state, r.vouchers).await.map_err(to_status)?;
        Ok(Response::new(v1::SubmitAck { batch_id: ack.batch_id.to_vec(), accepted: ack.accepted }))
    }

    async fn get_notices(&self, request: Request<v1::GetNoticesRequest>) -> Result<Response<v1::Notices>, Status> {
        crate::review_grpc::get_notices(&self.shared, request).await
    }

    async fn submit_appeal(
        &self,
        request: Request<v1::SubmitAppealRequest>,
    ) -> Result<Response<v1::AppealAck>, Status> {
        crate::review_grpc::submit_appeal(&self.shared, request).await
    }
}

/// The `vouchsafe.v1.Transparency` implementation: public, unauthenticated, read-only but for cosignatures.
pub(crate) struct TransparencyService {
    pub(crate) shared: Arc<Shared>,
}

impl TransparencyService {
    /// Runs `f` on the log on the blocking pool (proof generation, file writes).
    async fn log<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::translog::TransLog) -> crate::error::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.with_log(f))
            .await
            .map_err(|_| to_status(ServerError::Internal("log task failed")))?
            .map_err(to_status)
    }
}

#[tonic::async_trait]
impl Transparency for TransparencyService {
    async fn get_checkpoint(
        &self,
        _: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::LogCheckpoint>, Status> {
        let shared = Arc::clone(&self.shared);
        let note = tokio::task::spawn_blocking(move || shared.checkpoint())
            .await
            .map_err(|_| to_status(ServerError::Internal("log task failed")))?
            .map_err(to_status)?;
        Ok(Response::new(v1::LogCheckpoint { note: note.into_bytes() }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::LogInclusionProof>, Status> {
        let r = request.into_inner();
        let (leaf_index, tree_size) = (r.leaf_index, r.tree_size);
        let proof = self.log(move |l| l.inclusion_proof(leaf_index, tree_size)).await?;
        Ok(Response::new(v1::LogInclusionProof { leaf_index, tree_size, proof: proof.encode() }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::LogConsistencyProof>, Status> {
        let r = request.into_inner();
        let (old_size, new_size) = (r.old_size, r.new_size);
        let proof = self.log(move |l| l.consistency_proof(old_size, new_size)).await?;
        Ok(Response::new(v1::LogConsistencyProof { old_size, new_size, proof: proof.encode() }))
    }

    async fn get_leaves(&self, request: Request<v1::GetLeavesRequest>) -> Result<Response<v1::LogLeaves>, Status> {
        let r = request.into_inner();
        let (start, end) = (r.start, r.end);
        let leaves = self.log(move |l| l.leaves(start, end)).await?;
        Ok(Response::new(v1::LogLeaves { start, leaves }))
    }

    async fn add_cosignature(
        &self,
        request: Request<v1::AddCosignatureRequest>,
    ) -> Result<Response<v1::AddCosignatureResponse>, Status> {
        let r = request.into_inner();
        let cosignatures = self.log(move |l| l.add_cosignature(&r.checkpoint, &r.cosignature)).await?;
        tracing::info!(cosignatures, "witness cosignature added to the checkpoint");
        Ok(Response::new(v1::AddCosignatureResponse { cosignatures }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk I/O error")]
    struct Disk;

    #[derive(Debug, thiserror::Error)]
    #[error("database error")]
    struct Db(#[source] Disk);

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An internal failure reaches the client as a bare INTERNAL, and the log line has the whole cause.
    #[test]
    fn internal_errors_are_logged_with_their_source_chain() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let status = tracing::subscriber::with_default(subscriber, || {
            to_status(ServerError::Io {
                what: "inbox spool",
                path: "/var/lib/vouchsafe/spool".into(),
                source: std::io::Error::other(Db(Disk)),
            })
        });
        assert_eq!((status.code(), status.message()), (tonic::Code::Internal, "internal error"));
        let log = String::from_utf8(out.0.lock().unwrap_or_else(|e| e.into_inner()).clone()).unwrap_or_default();
        assert!(log.contains("inbox spool /var/lib/vouchsafe/spool: database error: disk I/O error"), "{log}");
    }

    #[test]
    fn no_order_and_no_update_have_distinct_codes() {
        let expired = vouchsafe_orders::OrderError::Expired { not_after: 10, now: 11 };
        let s = to_status(ServerError::OrderInactive(expired));
        assert_eq!((s.code(), s.message()), (tonic::Code::FailedPrecondition, "the detection order expired at 10"));
        assert_eq!(to_status(ServerError::UpdateUnavailable { from: 1, current: 3 }).code(), tonic::Code::NotFound);
    }
}
