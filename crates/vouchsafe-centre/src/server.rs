//! The tonic server: the listener, the limits, graceful shutdown, and the handle of a Centre running in the
//! background ([`start`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::config::CentreConfig;
use crate::error::{CentreError, Result};
use crate::grpc::{CentreServer, CentreService};
use crate::intake::Intake;

/// tonic's decoding limit: a whole `SignedMessage` of `MAX_MESSAGE_BYTES` plus the `DeliverRequest` framing (a tag
/// and a length); anything larger is refused before it is read (RESOURCE_EXHAUSTED).
pub const MAX_REQUEST_BYTES: usize = vouchsafe_case::MAX_MESSAGE_BYTES + 16;
/// A delivery that takes longer is cancelled (a slow client cannot hold the intake).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Concurrent requests per connection (each can buffer up to [`MAX_REQUEST_BYTES`]).
pub const MAX_CONCURRENT_STREAMS: u32 = 8;
/// How long a shutdown waits for open connections to finish before closing them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A Centre running in the background (see [`start`]).
pub struct RunningCentre {
    addr: SocketAddr,
    intake: Arc<Intake>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl std::fmt::Debug for RunningCentre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningCentre").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RunningCentre {
    /// The bound address (useful with `127.0.0.1:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The intake behind the server (for tests and tools in the same process).
    pub fn intake(&self) -> &Arc<Intake> {
        &self.intake
    }

    /// Stops accepting, finishes the deliveries in flight, and waits until the server has stopped.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await.map_err(|_| CentreError::Internal("the server task panicked"))?
    }
}

async fn open(config: CentreConfig) -> Result<Arc<Intake>> {
    let intake = tokio::task::spawn_blocking(move || Intake::open(config))
        .await
        .map_err(|_| CentreError::Internal("the Centre start panicked"))??;
    Ok(Arc::new(intake))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| CentreError::Io {
        what: "listen address",
        path: addr.to_string().into(),
        kind: e.kind(),
    })
}

/// Reads the keys, opens the intake database, binds `config.listen` and runs the Centre in a background task.
/// Every delivery is durable when answered (export on disk, then one committed transaction), so the process may
/// be killed at any moment: a retry of the same message gets exactly one row and one export.
pub async fn start(config: CentreConfig) -> Result<RunningCentre> {
    let listen = config.listen;
    let intake = open(config).await?;
    let listener = bind(listen).await?;
    let addr = listener.local_addr().map_err(|e| CentreError::Io {
        what: "listen address",
        path: listen.to_string().into(),
        kind: e.kind(),
    })?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(Arc::clone(&intake), listener, async move {
        let _ = rx.await;
    }));
    Ok(RunningCentre { addr, intake, stop: Some(tx), task })
}

/// Runs the Centre until `shutdown` resolves, then finishes the deliveries in flight and returns.
pub async fn serve(config: CentreConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let listen = config.listen;
    let intake = open(config).await?;
    let listener = bind(listen).await?;
    run(intake, listener, shutdown).await
}

async fn run(
    intake: Arc<Intake>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr().ok();
    let service = CentreServer::new(CentreService { intake })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(64 << 10);
    tracing::info!(listen = ?addr, "centre intake started");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE));
    let (began, began_rx) = oneshot::channel::<()>();
    let serving = tonic::transport::Server::builder()
        .timeout(REQUEST_TIMEOUT)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        // tonic's own refusals (an oversized or undecodable request) answered as the proto promises: the servers'
        // shared rewrite (RESOURCE_EXHAUSTED, INVALID_ARGUMENT).
        .layer(tower::util::MapResponseLayer::new(|r| vouchsafe_proto::statuses::rewrite(r, MAX_REQUEST_BYTES)))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new connections, finishing deliveries in flight");
            let _ = began.send(());
        });
    tokio::pin!(serving);
    // A peer that keeps its connection open after the GOAWAY cannot hold the shutdown beyond the grace period. A
    // delivery cut off then was not answered, and is either committed or not stored at all: the retry is safe.
    let grace = async move {
        match began_rx.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let result = tokio::select! {
        r = &mut serving => r.map_err(|_| CentreError::Internal("the gRPC transport failed")),
        () = grace => {
            tracing::warn!("connections still open after the shutdown grace period: closing them");
            Ok(())
        }
    };
    tracing::info!("centre intake stopped");
    result
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
