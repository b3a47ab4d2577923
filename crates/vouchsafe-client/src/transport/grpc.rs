//! The tonic transport: the only place that knows the generated `vouchsafe.v1` types and `tonic::Status`.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};
use vouchsafe_proto::v1 as pb;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_proto::v1::transparency_client::TransparencyClient;

use super::{
    AppealAck, BoxFuture, CheckpointMessage, ChunkMessage, ChunkStream, ConsistencyProofMessage, InclusionProofMessage,
    Notice, Received, RpcError, SubmitAck, Transport,
};
use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::verify::{ManifestInfo, UpdateInfo};

#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Rpc = MatchingClient<InterceptedService<Channel, Auth>>;
type LogRpc = TransparencyClient<InterceptedService<Channel, Auth>>;

/// [`Transport`] over gRPC with tonic: what [`crate::Client::open`] uses. Matching and Transparency share one
/// channel (the same server).
#[derive(Clone)]
pub struct GrpcTransport {
    rpc: Rpc,
    log: LogRpc,
}

impl core::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GrpcTransport").finish_non_exhaustive()
    }
}

/// Whether `host`, as a URI gives it (an IPv6 literal in brackets), is 127.0.0.0/8, `::1` or the name `localhost`:
/// the hosts a plain-HTTP endpoint may name without `allow_plaintext_remote`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl GrpcTransport {
    /// A lazily connecting channel to `config.endpoint`: `https://` with the configured trust roots, or plain
    /// `http://` to a loopback host (any host with `allow_plaintext_remote`), with the configured timeouts and
    /// message limit and the bearer token on every call. Does not touch the network.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let uri: Uri = config.endpoint.parse().map_err(|_| ClientError::Config { what: "endpoint is not a URI" })?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(match &config.tls_ca_pem {
                Some(pem) => {
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(ClientError::Config { what: "tls_ca_pem holds no PEM certificate" });
                    }
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                }
                None => ClientTlsConfig::new().with_webpki_roots(),
            }),
            Some("http") => {
                let host = uri.host().unwrap_or("");
                if !is_loopback_host(host) && !config.allow_plaintext_remote {
                    return Err(ClientError::Config {
                        what: "plain http is only allowed to a loopback host (the token would travel in clear)",
                    });
                }
                None
            }
            _ => return Err(ClientError::Config { what: "endpoint scheme must be http or https" }),
        };
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|_| ClientError::Config { what: "endpoint is not a valid URI" })?
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout);
        let endpoint = match tls {
            Some(tls) => endpoint
                .tls_config(tls)
                .map_err(|_| ClientError::Config { what: "the TLS configuration is invalid (tls_ca_pem)" })?,
            None => endpoint,
        };
        Self::with_channel(endpoint.connect_lazy(), config)
    }

    /// Over a channel the caller built (e.g. `Endpoint::connect_with_connector` to an in-memory server in tests).
    /// Uses `config.token` and `config.max_message_bytes`; the endpoint, TLS and timeout settings are the channel's.
    pub fn with_channel(channel: Channel, config: &ClientConfig) -> Result<Self> {
        let mut value = MetadataValue::try_from(format!("Bearer {}", config.token.expose()))
            .map_err(|_| ClientError::Config { what: "the token is not a valid header value" })?;
        value.set_sensitive(true);
        let auth = Auth(value);
        let rpc = MatchingClient::with_interceptor(channel.clone(), auth.clone())
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        let log = TransparencyClient::with_interceptor(channel, auth)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        Ok(GrpcTransport { rpc, log })
    }
}

fn wire_len(m: &impl prost::Message) -> u64 {
    u64::try_from(m.encoded_len()).unwrap_or(u64::MAX)
}

fn manifest_info(m: pb::Manifest) -> ManifestInfo {
    ManifestInfo {
        params: m.params,
        table_version: m.table_version,
        slot_count: m.slot_count,
        chunk_slots: m.chunk_slots,
        root: m.root,
        chunk_hashes: m.chunk_hashes,
        signed_order: m.signed_order,
        revocations: m.revocations,
        signed_manifest: m.signed_manifest,
        order_leaf_index: m.order_leaf_index,
        manifest_leaf_index: m.manifest_leaf_index,
    }
}

struct GrpcChunks(tonic::Streaming<pb::TableChunk>);

impl ChunkStream for GrpcChunks {
    fn next_chunk(&mut self) -> BoxFuture<'_, std::result::Result<Option<Received<ChunkMessage>>, RpcError>> {
        Box::pin(async move {
            let msg = self.0.message().await.map_err(|s| rpc_error(&s))?;
            Ok(msg.map(|m| {
                let wire_bytes = wire_len(&m);
                Received { message: ChunkMessage { index: m.index, chunk: m.chunk }, wire_bytes }
            }))
        })
    }
}

impl Transport for GrpcTransport {
    fn get_manifest(&self) -> BoxFuture<'_, std::result::Result<Received<ManifestInfo>, RpcError>> {
        let mut rpc = self.rpc.clone();
        Box::pin(async move {
            let m = rpc.get_manifest(pb::GetManifestRequest {}).await.map_err(|s| rpc_error(&s))?.into_inner();
            let wire_bytes = wire_len(&m);
            Ok(Received { message: manifest_info(m), wire_bytes })
        })
    }

    fn stream_table(
        &self,
        table_version: u64,
        first_chunk: u32,
    ) -> BoxFuture<'_, std::result::Result<Box<dyn ChunkStream>, RpcError>> {
        let mut rpc = self.rpc.clone();
        Box::pin(async move {
            let req = pb::StreamTableRequest { table_version, first_chunk };
            let stream = rpc.stream_table(req).await.map_err(|s| rpc_error(&s))?.into_inner();
            Ok(Box::new(GrpcChunks(stream)) as Box<dyn ChunkStream>)
        })
    }

    fn get_update(&self, from_version: u64) -> BoxFuture<'_, std::result::Result<Received<UpdateInfo>, RpcError>> {
        let mut rpc = self.rpc.clone();
        Box::pin(async move {
            let u =
                rpc.get_update(pb::GetUpdateRequest { from_version }).await.map_err(|s| rpc_error(&s))?.into_inner();
            let wire_bytes = wire_len(&u);
            let message = UpdateInfo {
                from_version: u.from_version,
                to_version: u.to_version,
                update: u.update,
                root: u.root,
                chunk_hashes: u.chunk_hashes,
                signed_manifest: u.signed_manifest,
                manifest_leaf_index: u.manifest_leaf_index,
            };
            Ok(Received { message, wire_bytes })
        })
    }

    fn submit_vouchers<'a>(
        &'a self,
        batch_id: [u8; 16],
        client_state: [u8; 16],
        vouchers: &'a [Vec<u8>],
    ) -> BoxFuture<'a, std::result::Result<SubmitAck, RpcError>> {
        let mut rpc = self.rpc.clone();
        Box::pin(async move {
            let req = pb::SubmitVouchersRequest {
                batch_id: batch_id.to_vec(),
                vouchers: vouchers.to_vec(),
                client_state: client_state.to_vec(),
            };
            let ack = rpc.submit_vouchers(req).await.map_err(|s| rpc_error(&s))?.into_inner();
            Ok(SubmitAck { batch_id: ack.batch_id, accepted: ack.accepted })
        })
    }

    fn get_notices(&self) -> BoxFuture<'_, std::result::Result<Vec<Notice>, RpcError>> {
        let mut rpc = self.rpc.clone();
        Box::pin(async move {
            let n = rpc.get_notices(pb::GetNoticesRequest {}).await.map_err(|s| rpc_error(&s))?.into_inner();
            let mut out = Vec::with_capacity(n.notices.len());
            for m in n.notices {
                if m.attachment_refs.len() != m.attachment_times.len() {
                    return Err(RpcError::Server { code: "a notice's attachment lists differ in length" });
                }
                let mut attachments = Vec::with_capacity(m.attachment_refs.len());
                for (r, t) in m.attachment_refs.iter().zip(&m.attachment_times) {
                    let mut a = [0u8; 32];
                    hex::decode_to_slice(r, &mut a).map_err(|_| RpcError::Server {
                        code: "a notice's attachment reference is not 64 hex digits",
                    })?;
                    attachments.push((a, *t));
                }
                out.push(Notice {
                    id: m.notice_id,
                    order_id: m.order_id,
                    order_hash: m.order_hash,
                    reported_at: m.reported_at,
                    attachments,
                    next_steps: m.next_steps,
                    appeal_deadline: m.appeal_deadline,
                    how_to_appeal: m.how_to_appeal,
                    appeal_status: m.appeal_status,
                    appeal_reason: m.appeal_reason,
                    action_reversed: m.account_action == "reversed",
                });
            }
            Ok(out)
        })
    }

    fn submit_appeal<'a>(
        &'a self,
        notice_id: u64,
        text: &'a str,
    ) -> BoxFuture<'a, std::result::Result<AppealAck, RpcError>> {
        let mut rpc = self.rpc.clone();
        Box::pin(async move {
            let req = pb::SubmitAppealRequest { notice_id, text: text.to_owned() };
            match rpc.submit_appeal(req).await {
                Ok(a) => {
                    let a = a.into_inner();
                    Ok(AppealAck { appeal_id: a.appeal_id, filed_at: a.filed_at })
                }
                Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::FailedPrecondition) => {
                    Err(RpcError::AppealRefused { code: code_name(s.code()), message: s.message().to_owned() })
                }
                Err(s) => Err(rpc_error(&s)),
            }
        })
    }

    fn get_checkpoint(&self) -> BoxFuture<'_, std::result::Result<Received<CheckpointMessage>, RpcError>> {
        let mut log = self.log.clone();
        Box::pin(async move {
            let c = log.get_checkpoint(pb::GetCheckpointRequest {}).await.map_err(|s| rpc_error(&s))?.into_inner();
            let wire_bytes = wire_len(&c);
            Ok(Received { message: CheckpointMessage { note: c.note }, wire_bytes })
        })
    }

    fn get_inclusion_proof(
        &self,
        leaf_index: u64,
        tree_size: u64,
    ) -> BoxFuture<'_, std::result::Result<Received<InclusionProofMessage>, RpcError>> {
        let mut log = self.log.clone();
        Box::pin(async move {
            let req = pb::GetInclusionProofRequest { leaf_index, tree_size };
            let p = log.get_inclusion_proof(req).await.map_err(|s| rpc_error(&s))?.into_inner();
            let wire_bytes = wire_len(&p);
            let message = InclusionProofMessage { leaf_index: p.leaf_index, tree_size: p.tree_size, proof: p.proof };
            Ok(Received { message, wire_bytes })
        })
    }

    fn get_consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> BoxFuture<'_, std::result::Result<Received<ConsistencyProofMessage>, RpcError>> {
        let mut log = self.log.clone();
        Box::pin(async move {
            let req = pb::GetConsistencyProofRequest { old_size, new_size };
            let p = log.get_consistency_proof(req).await.map_err(|s| rpc_error(&s))?.into_inner();
            let wire_bytes = wire_len(&p);
            let message = ConsistencyProofMessage { old_size: p.old_size, new_size: p.new_size, proof: p.proof };
            Ok(Received { message, wire_bytes })
        })
    }
}

/// The stable name of a gRPC code (no status message: server messages are not trusted to be secret-free here).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A TLS failure while connecting, as rustls reports it: an `io::Error` of kind `InvalidData` in the status's
/// source chain (only local transport errors have a source; a server's status never does).
fn tls_failure(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let mut next = std::error::Error::source(status);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return Some(io.to_string());
        }
        next = e.source();
    }
    None
}

/// Maps a status to the client's terms. The only place that does. Each code means one thing (see the server's
/// `to_status` and `proto/vouchsafe/v1/matching.proto`): FAILED_PRECONDITION is "no active order" only, NOT_FOUND
/// "that table version (or an update from it) is not served".
/// The metadata key a server uses to say which refusal a status is, where the code alone does not (the
/// `vouchsafe-server` constant of the same name; docs/API.md §6).
const REFUSAL_HEADER: &str = "vouchsafe-refusal";
/// Its value for the client-state limit.
const CLIENT_STATE_LIMIT: &str = "client-state-limit";

pub(crate) fn rpc_error(status: &tonic::Status) -> RpcError {
    use tonic::Code;
    if let Some(reason) = tls_failure(status) {
        return RpcError::Tls { reason };
    }
    match status.code() {
        Code::Unauthenticated => RpcError::Unauthenticated,
        Code::PermissionDenied => RpcError::PermissionDenied,
        Code::FailedPrecondition => RpcError::NoActiveOrder,
        Code::NotFound => RpcError::VersionNotServed,
        Code::InvalidArgument => RpcError::InvalidArgument,
        Code::ResourceExhausted
            if status.metadata().get(REFUSAL_HEADER).and_then(|v| v.to_str().ok()) == Some(CLIENT_STATE_LIMIT) =>
        {
            RpcError::TooManyClientStates
        }
        Code::ResourceExhausted => RpcError::ResourceExhausted,
        c @ (Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled | Code::Unknown) => {
            RpcError::Unavailable { code: code_name(c) }
        }
        c => RpcError::Server { code: code_name(c) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_means_one_thing() {
        let of = |c| rpc_error(&tonic::Status::new(c, "whatever the server says"));
        assert_eq!(of(tonic::Code::FailedPrecondition), RpcError::NoActiveOrder);
        assert_eq!(of(tonic::Code::NotFound), RpcError::VersionNotServed);
        assert_eq!(of(tonic::Code::OutOfRange), RpcError::Server { code: "OUT_OF_RANGE" });
        let mut limit = tonic::Status::resource_exhausted("whatever");
        limit.metadata_mut().insert(REFUSAL_HEADER, tonic::metadata::MetadataValue::from_static(CLIENT_STATE_LIMIT));
        assert_eq!(rpc_error(&limit), RpcError::TooManyClientStates);
        assert!(!rpc_error(&limit).is_retryable());
        assert!(of(tonic::Code::Unavailable).is_retryable() && of(tonic::Code::ResourceExhausted).is_retryable());
        assert!(!of(tonic::Code::Internal).is_retryable());
    }
}
