//! The tonic server: TLS, the listener, the HTTP/2 settings, the services (matching, health, reflection), graceful
//! shutdown, and the handle of a server running in the background. The RPCs themselves are in `grpc` (adapter)
//! and `service` (domain); the background matching loop in `worker_loop`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};
use tower::util::MapResponseLayer;
use vouchsafe_store::Store;

use crate::aftercare::outbox::outbox_loop;
use crate::config::ServerConfig;
use crate::error::{ErrorChain, Result, ServerError};
use crate::grpc::{MatchingServer, MatchingService, TransparencyServer, TransparencyService};
use crate::review_grpc::{ReviewServer, ReviewService};
use crate::service::Shared;
use crate::table::TableReload;
use crate::worker_loop::worker_loop;

/// HTTP/2 receive window per stream: a whole 256-voucher batch (about 1.25 MB) fits, so a submission is not
/// throttled by window updates.
const STREAM_WINDOW_BYTES: u32 = 4 << 20;
/// HTTP/2 receive window per connection (several batches in flight on one connection).
const CONNECTION_WINDOW_BYTES: u32 = 8 << 20;
/// TCP keepalive idle time on accepted connections.
const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(60);
/// HTTP/2 PING interval on idle connections, and how long to wait for the answer before closing.
const HTTP2_KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

pub(crate) async fn reload(shared: &Arc<Shared>) -> Result<TableReload> {
    let s = Arc::clone(shared);
    tokio::task::spawn_blocking(move || s.reload_table())
        .await
        .map_err(|_| ServerError::Internal("table reload panicked"))?
}

pub(crate) fn log_reload(r: &Result<TableReload>) {
    match r {
        Ok(r) if r.changed => tracing::info!(
            from_version = r.from_version,
            to_version = r.to_version,
            indicators = r.indicators,
            "table reloaded"
        ),
        Ok(r) => tracing::info!(table_version = r.to_version, "table reload: the files hold the served version"),
        Err(e) => tracing::error!(error = %ErrorChain(e), "table reload failed; the served table is unchanged"),
    }
}

/// Binds `config.listen` and runs the server until `shutdown` resolves; then stops accepting, finishes in-flight
/// requests, lets the worker finish its current batch, and returns.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let tls = load_tls(&config)?;
    let shared = prepare(config, store).await?;
    let listener = bind(shared.config.listen).await?;
    let review = bind_review(&shared).await?;
    let metrics = bind_metrics(&shared).await?;
    run(shared, listener, review, metrics, tls, shutdown).await
}

/// Binds `metrics_listen` if it is set.
async fn bind_metrics(shared: &Shared) -> Result<Option<TcpListener>> {
    match shared.config.metrics_listen {
        Some(addr) => Ok(Some(bind(addr).await?)),
        None => Ok(None),
    }
}

/// Binds `[review] listen` if the Review API is configured.
async fn bind_review(shared: &Shared) -> Result<Option<TcpListener>> {
    match &shared.config.review {
        Some(r) if shared.aftercare.is_some() => Ok(Some(bind(r.listen).await?)),
        _ => Ok(None),
    }
}

/// Reads the configured TLS certificate and key and checks that they make a usable server configuration, so that
/// a bad file stops the start instead of failing every handshake.
fn load_tls(config: &ServerConfig) -> Result<Option<ServerTlsConfig>> {
    let Some(t) = &config.tls else { return Ok(None) };
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map(zeroize::Zeroizing::new).map_err(|source| ServerError::Io {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert = read("TLS certificate", &t.cert)?;
    let key = read("TLS key", &t.key)?;
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(&*cert, &*key));
    tonic::transport::Server::builder()
        .tls_config(tls.clone())
        .map_err(|_| ServerError::config("tls", "the certificate or the key is not usable PEM"))?;
    Ok(Some(tls))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Io {
        what: "listen address",
        path: addr.to_string().into(),
        source,
    })
}

/// Verifies every governance file and opens the transparency log (file I/O and signatures: on the blocking pool).
async fn prepare(config: ServerConfig, store: Arc<dyn Store>) -> Result<Arc<Shared>> {
    let shared = tokio::task::spawn_blocking(move || Shared::open(config, store))
        .await
        .map_err(|_| ServerError::Internal("server start panicked"))??;
    Ok(Arc::new(shared))
}

/// A server running in the background (see [`start`]).
pub struct RunningServer {
    addr: SocketAddr,
    review_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address (useful with `127.0.0.1:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Review API's bound address, if `[review]` is configured.
    pub fn review_addr(&self) -> Option<SocketAddr> {
        self.review_addr
    }

    /// The address `GET /metrics` is served on (`metrics_listen`), if it is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The unprocessed backlog now, with its peaks since start and the submissions it refused.
    pub fn backlog(&self) -> crate::BacklogView {
        self.shared.backlog()
    }

    /// Re-reads and re-verifies every file named in the configuration (order, revocations, releases, table, signed
    /// manifest, update history) and serves them if the order is the same and the table a later version of the
    /// served epoch (same parameters, same blinding key); what `vouchsafe serve` does on SIGHUP after `vouchsafe
    /// table update`. Refused otherwise ([`ServerError::TableReload`], or the load error), and then the served
    /// state and the log are unchanged. A successful reload is written to the audit log first. Streams and
    /// worker rounds already running finish on the version they started with.
    pub async fn reload_table(&self) -> Result<TableReload> {
        let r = reload(&self.shared).await;
        log_reload(&r);
        r
    }

    /// Shuts down gracefully and waits until the server and its worker have stopped.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await.map_err(|_| ServerError::Internal("server task panicked"))?
    }
}

/// Verifies the signed order (under the pinned authority keys), the revocations, the Centre release chain
/// (under the order's Centre key and line), the table file and its signed manifest (under the order's table key),
/// opens the transparency log (refusing a rewritten one) and appends what it lacks; then binds `config.listen`
/// (use port 0 for a free port) and runs the server in a background task. Any refusal stops the start with a
/// precise error.
pub async fn start(config: ServerConfig, store: Arc<dyn Store>) -> Result<RunningServer> {
    let tls = load_tls(&config)?;
    let shared = prepare(config, store).await?;
    let listener = bind(shared.config.listen).await?;
    let addr = listener.local_addr().map_err(|source| ServerError::Io {
        what: "listen address",
        path: shared.config.listen.to_string().into(),
        source,
    })?;
    let review = bind_review(&shared).await?;
    let review_addr = review.as_ref().and_then(|l| l.local_addr().ok());
    let metrics = bind_metrics(&shared).await?;
    let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(Arc::clone(&shared), listener, review, metrics, tls, async move {
        let _ = rx.await;
    }));
    Ok(RunningServer { addr, review_addr, metrics_addr, shared, stop: Some(tx), task })
}

/// Largest Review API request (decisions, appeals and statistics requests are small).
const REVIEW_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    review_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let tls_on = tls.is_some();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls.clone() {
        builder = builder
            .tls_config(tls)
            .map_err(|_| ServerError::config("tls", "the certificate or the key is not usable PEM"))?;
    }
    let addr = listener.local_addr().ok();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = tokio::spawn(worker_loop(Arc::clone(&shared), Arc::clone(&stop)));
    let outbox = tokio::spawn(outbox_loop(Arc::clone(&shared), Arc::clone(&stop)));
    // The Review API: its own listener and its own token table (a device token is unknown there and a reviewer's
    // token unknown on the device API), the same TLS identity, stopped with the rest.
    let (review_stop, review_stopped) = oneshot::channel::<()>();
    let (metrics_stop, metrics_stopped) = oneshot::channel::<()>();
    let metrics = metrics_listener.map(|l| {
        tracing::info!(listen = %shown(l.local_addr().ok()), "metrics endpoint started");
        tokio::spawn(crate::metrics::serve(Arc::clone(&shared), l, async move {
            let _ = metrics_stopped.await;
        }))
    });
    let rpc_layer = crate::metrics::RpcLayer { metrics: Arc::clone(&shared.metrics) };
    let review_max = REVIEW_MAX_MESSAGE_BYTES;
    let review = match review_listener {
        None => None,
        Some(l) => {
            let mut b = tonic::transport::Server::builder();
            if let Some(tls) = tls.clone() {
                b = b
                    .tls_config(tls)
                    .map_err(|_| ServerError::config("tls", "the certificate or the key is not usable PEM"))?;
            }
            let addr = l.local_addr().ok();
            let incoming = TcpIncoming::from(l).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE));
            let svc = ReviewServer::new(ReviewService { shared: Arc::clone(&shared) })
                .max_decoding_message_size(REVIEW_MAX_MESSAGE_BYTES);
            tracing::info!(listen = %shown(addr), "review API started");
            Some(tokio::spawn(
                b.timeout(shared.config.limits.request_timeout())
                    .http2_max_header_list_size(shared.config.limits.max_header_list_bytes)
                    .layer(rpc_layer.clone())
                    .layer(MapResponseLayer::new(move |r| vouchsafe_proto::statuses::rewrite(r, review_max)))
                    .add_service(svc)
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = review_stopped.await;
                    }),
            ))
        }
    };

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<MatchingServer<MatchingService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vouchsafe_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|_| ServerError::Internal("reflection descriptor set does not load"))?;
    let max = shared.config.limits.max_message_bytes;
    let matching = MatchingServer::new(MatchingService { shared: Arc::clone(&shared) }).max_decoding_message_size(max);
    let transparency =
        TransparencyServer::new(TransparencyService { shared: Arc::clone(&shared) }).max_decoding_message_size(max);

    tracing::info!(
        listen = %shown(addr),
        tls = tls_on,
        epoch = shared.served().table.params().epoch,
        table_version = shared.served().version(),
        indicators = shared.served().table.indicator_count(),
        log_size = shared.with_log(|l| Ok(l.size())).unwrap_or(0),
        "matching server started"
    );
    // TCP_NODELAY: a reply is written in several small pieces (headers, message, trailers); with Nagle's algorithm
    // and the peer's delayed ACK each acknowledgement could wait ~40 ms.
    // TCP keepalive finds peers that vanished without closing; HTTP/2 pings (below) find stalled connections.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE));
    let result = builder
        // A 256-voucher batch is about 1.25 MB: HTTP/2's default 64 KiB windows would cost a round trip per
        // 64 KiB of every submission.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .timeout(shared.config.limits.request_timeout())
        .max_concurrent_streams(shared.config.limits.max_concurrent_streams)
        .http2_max_header_list_size(shared.config.limits.max_header_list_bytes)
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .layer(rpc_layer)
        .layer(MapResponseLayer::new(move |r| vouchsafe_proto::statuses::rewrite(r, max)))
        .add_service(health)
        .add_service(reflection)
        .add_service(matching)
        .add_service(transparency)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            let _ = review_stop.send(());
            let _ = metrics_stop.send(());
            tracing::info!("shutdown requested: no new connections, finishing in-flight requests");
            reporter.set_not_serving::<MatchingServer<MatchingService>>().await;
        })
        .await;

    stop.store(true, Ordering::SeqCst);
    shared.wake.notify_one();
    shared.outbox_wake.notify_one();
    let worker_result = worker.await;
    let _ = outbox.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    if let Some(r) = review {
        match r.await {
            Ok(Err(e)) => tracing::error!(error = %ErrorChain(&e), "review API stopped with an error"),
            Err(_) => tracing::error!("review API task panicked"),
            Ok(Ok(())) => {}
        }
    }
    tracing::info!("matching server stopped");
    result?;
    worker_result.map_err(|_| ServerError::Internal("worker task panicked"))
}

/// A listening address for a log line: `127.0.0.1:50051`, not `Some(127.0.0.1:50051)`.
fn shown(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}
