//! Prometheus metrics (`metrics_listen`, `GET /metrics`) and the per-request span of every gRPC call.
//!
//! What an operator pages on: vouchers received / opened / non-matching / invalid, batches stored and refused, RPC
//! outcomes by method and gRPC code with their latency, the worker's round time and its lag behind the intake, the
//! shared inbox's depth, the outbox to the Centre, store errors, the served table version and the order's validity.
//! Every label value comes from a fixed set (method names of the API, gRPC code names, fixed kinds): no account,
//! token, voucher, hash or request field is ever a label or a value, and a client cannot grow the label space.
//!
//! The counters are this process's; the gauges of shared state (inbox, outbox) are read from the store at each
//! scrape, so every replica reports the same inbox, and a dashboard sums counters over replicas but takes one
//! replica's value (or the max) for those gauges.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::config::unix_now;
use crate::service::Shared;
use crate::worker::ProcessReport;

/// The API's methods: the only values of the `method` label (anything else is `other`).
const METHODS: &[&str] = &[
    "GetManifest",
    "StreamTable",
    "GetUpdate",
    "SubmitVouchers",
    "GetNotices",
    "SubmitAppeal",
    "GetCheckpoint",
    "GetInclusionProof",
    "GetConsistencyProof",
    "GetLeaves",
    "AddCosignature",
    "ListCases",
    "GetCase",
    "Decide",
    "ListAppeals",
    "DecideAppeal",
    "GetStatistics",
    "PublishTransparencyReport",
    "Check",
    "Watch",
    "ServerReflectionInfo",
];

/// gRPC status code names by number.
const CODES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

/// What happened to a stored batch at intake.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub(crate) enum Intake {
    /// Stored.
    Inserted,
    /// A retry of a stored batch (acknowledged again, counted once).
    Duplicate,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntakeLabel {
    outcome: Intake,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreOp {
    op: &'static str,
}

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    rpc: Family<RpcLabels, Counter>,
    rpc_seconds: Family<MethodLabel, Histogram>,
    batches: Family<IntakeLabel, Counter>,
    vouchers_received: Counter,
    vouchers_opened: Counter,
    vouchers_non_matching: Counter,
    vouchers_invalid: Counter,
    reveals: Counter,
    case_items: Counter,
    cases_created: Counter,
    rounds: Counter,
    rounds_failed: Counter,
    rounds_dropped: Counter,
    round_seconds: Histogram,
    batch_latency_seconds: Histogram,
    worker_lag_seconds: Gauge,
    store_errors: Family<StoreOp, Counter>,
    inbox_batches: StoreGauge,
    inbox_vouchers: StoreGauge,
    inbox_bytes: StoreGauge,
    outbox_pending: StoreGauge,
    table_version: Gauge,
    indicators: Gauge,
    order_active: Gauge,
    order_expires_in: Gauge,
    backlog_refused: Counter,
    /// Refusals already counted (the backlog keeps a running total).
    refused_seen: AtomicU64,
}

/// A gauge read from the store at each scrape: NaN when that read fails, so that a scrape never shows the last
/// good value as if it were current (an inbox "empty" while the database is down).
type StoreGauge = Gauge<f64, AtomicU64>;

/// A new metric of type `M`, registered in `registry` as `name` with `help`.
fn registered<M: prometheus_client::registry::Metric + Clone + Default>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> M {
    let m = M::default();
    registry.register(name, help, m.clone());
    m
}

/// `value` as a [`StoreGauge`] sample.
fn gauge_value(value: u64) -> f64 {
    value as f64
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 0.5 ms .. about 65 s.
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 18)
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("vouchsafe");
        let rpc = Family::<RpcLabels, Counter>::default();
        registry.register("rpc_requests", "gRPC requests by method and status code", rpc.clone());
        let rpc_seconds = Family::<MethodLabel, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register("rpc_duration_seconds", "gRPC request latency by method", rpc_seconds.clone());
        let batches = Family::<IntakeLabel, Counter>::default();
        registry.register("batches_received", "Voucher batches acknowledged, by outcome", batches.clone());
        let counter = registered::<Counter>;
        let gauge = registered::<Gauge>;
        let store_gauge = registered::<StoreGauge>;
        let vouchers_received = counter(&mut registry, "vouchers_received", "Vouchers stored by this process's intake");
        let vouchers_opened = counter(&mut registry, "vouchers_opened", "Vouchers that opened (matches and synthetic)");
        let vouchers_non_matching = counter(&mut registry, "vouchers_non_matching", "Vouchers that did not open");
        let vouchers_invalid = counter(&mut registry, "vouchers_invalid", "Malformed, invalid or replayed vouchers");
        let reveals = counter(&mut registry, "threshold_reveals", "Client states revealed by the threshold step");
        let case_items = counter(&mut registry, "case_items", "Items filed into cases for review");
        let cases_created = counter(&mut registry, "cases_created", "Cases created");
        let rounds = counter(&mut registry, "worker_rounds", "Worker runs that processed at least one batch");
        let rounds_failed = counter(&mut registry, "worker_rounds_failed", "Worker runs that failed (retried)");
        let rounds_dropped = counter(
            &mut registry,
            "worker_rounds_dropped",
            "Rounds dropped because another replica took their accounts over (claims lapsed)",
        );
        let round_seconds = Histogram::new(seconds_buckets());
        registry.register("worker_run_duration_seconds", "Wall time of a worker run", round_seconds.clone());
        let batch_latency_seconds = Histogram::new(seconds_buckets());
        registry.register(
            "batch_latency_seconds",
            "From a batch's receipt to its processing (whole seconds of the stored times)",
            batch_latency_seconds.clone(),
        );
        let worker_lag_seconds =
            gauge(&mut registry, "worker_lag_seconds", "Age of the oldest batch in the worker's last round");
        let store_errors = Family::<StoreOp, Counter>::default();
        registry.register("store_errors", "Store errors, by the operation that met them", store_errors.clone());
        let inbox_batches = store_gauge(
            &mut registry,
            "inbox_batches_pending",
            "Unprocessed batches in the shared inbox (NaN: the store could not be read)",
        );
        let inbox_vouchers = store_gauge(
            &mut registry,
            "inbox_vouchers_pending",
            "Unprocessed vouchers in the shared inbox (NaN: the store could not be read)",
        );
        let inbox_bytes = store_gauge(
            &mut registry,
            "inbox_bytes_pending",
            "Bytes of unprocessed vouchers (NaN: the store could not be read)",
        );
        let outbox_pending = store_gauge(
            &mut registry,
            "outbox_pending",
            "Messages to the Centre not yet delivered (NaN: the store could not be read)",
        );
        let table_version = gauge(&mut registry, "table_version", "Version of the served table");
        let indicators = gauge(&mut registry, "table_indicators", "Indicators in the served table");
        let order_active = gauge(&mut registry, "order_active", "1 while the served detection order is valid, else 0");
        let order_expires_in =
            gauge(&mut registry, "order_expires_in_seconds", "Seconds until the order's not_after (negative: past)");
        let backlog_refused =
            counter(&mut registry, "backlog_refused", "Submissions refused because the backlog was at its bound");
        Metrics {
            registry,
            rpc,
            rpc_seconds,
            batches,
            vouchers_received,
            vouchers_opened,
            vouchers_non_matching,
            vouchers_invalid,
            reveals,
            case_items,
            cases_created,
            rounds,
            rounds_failed,
            rounds_dropped,
            round_seconds,
            batch_latency_seconds,
            worker_lag_seconds,
            store_errors,
            inbox_batches,
            inbox_vouchers,
            inbox_bytes,
            outbox_pending,
            table_version,
            indicators,
            order_active,
            order_expires_in,
            backlog_refused,
            refused_seen: AtomicU64::new(0),
        }
    }

    fn rpc(&self, method: &'static str, code: &'static str, seconds: f64) {
        self.rpc.get_or_create(&RpcLabels { method, code }).inc();
        self.rpc_seconds.get_or_create(&MethodLabel { method }).observe(seconds);
    }

    /// A batch acknowledged at intake with `vouchers` vouchers.
    pub(crate) fn intake(&self, outcome: Intake, vouchers: u64) {
        self.batches.get_or_create(&IntakeLabel { outcome }).inc();
        if outcome == Intake::Inserted {
            self.vouchers_received.inc_by(vouchers);
        }
    }

    /// A worker run's wall time (a run is every round until the inbox is empty).
    pub(crate) fn run_time(&self, r: &ProcessReport, seconds: f64) {
        if r.batches > 0 {
            self.rounds.inc();
            self.round_seconds.observe(seconds);
        }
    }

    /// A committed round's counts.
    pub(crate) fn round(&self, r: &ProcessReport) {
        self.vouchers_opened.inc_by(r.opened);
        self.vouchers_non_matching.inc_by(r.non_matches);
        self.vouchers_invalid.inc_by(r.invalid);
        self.reveals.inc_by(r.reveals);
        self.case_items.inc_by(r.case_items);
        self.cases_created.inc_by(r.cases_created);
    }

    /// A worker run that failed.
    pub(crate) fn run_failed(&self) {
        self.rounds_failed.inc();
    }

    /// A round dropped because its claims lapsed.
    pub(crate) fn round_dropped(&self) {
        self.rounds_dropped.inc();
    }

    /// The batches a round completed: their receipt times, against `now`.
    pub(crate) fn batches_processed(&self, received_at: impl Iterator<Item = i64>, now: i64) {
        let mut oldest = None::<i64>;
        for t in received_at {
            self.batch_latency_seconds.observe(now.saturating_sub(t).max(0) as f64);
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
        if let Some(o) = oldest {
            self.worker_lag_seconds.set(now.saturating_sub(o).max(0));
        }
    }

    /// A store error met by `op` (a fixed name).
    pub(crate) fn store_error(&self, op: &'static str) {
        self.store_errors.get_or_create(&StoreOp { op }).inc();
    }

    /// Reads the shared state into the gauges and renders every metric in the Prometheus text format.
    pub(crate) fn render(&self, shared: &Shared) -> String {
        match shared.store.backlog() {
            Ok(b) => {
                self.inbox_batches.set(gauge_value(b.batches));
                self.inbox_vouchers.set(gauge_value(b.vouchers));
                self.inbox_bytes.set(gauge_value(b.bytes));
            }
            Err(_) => {
                self.store_error("metrics.backlog");
                for g in [&self.inbox_batches, &self.inbox_vouchers, &self.inbox_bytes] {
                    g.set(f64::NAN);
                }
            }
        }
        match shared.store.outbox_pending() {
            Ok(n) => {
                self.outbox_pending.set(gauge_value(n));
            }
            Err(_) => {
                self.store_error("metrics.outbox");
                self.outbox_pending.set(f64::NAN);
            }
        }
        let state = shared.state();
        self.table_version.set(i64::try_from(state.table.version()).unwrap_or(i64::MAX));
        self.indicators.set(i64::try_from(state.table.table.indicator_count()).unwrap_or(i64::MAX));

        let now = unix_now();
        let active = state.gov.check_active(now, &state.revocations).is_ok();
        self.order_active.set(i64::from(active));
        self.order_expires_in.set(state.gov.order().not_after().saturating_sub(now));
        let refused = shared.backlog().refused;
        let seen = self.refused_seen.swap(refused, Ordering::Relaxed);
        self.backlog_refused.inc_by(refused.saturating_sub(seen));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            return String::from("# the metrics could not be encoded\n");
        }
        out
    }
}

/// The `method` label of a gRPC path (`/package.Service/Method`).
fn method_of(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or("");
    METHODS.iter().find(|m| **m == name).copied().unwrap_or("other")
}

/// The code name of a response's `grpc-status` header (a trailers-only response: every error tonic returns from a
/// handler). A response without it is OK at this point; a stream that fails later is counted as OK here.
fn code_of<B>(r: &http::Response<B>) -> &'static str {
    match r.headers().get("grpc-status") {
        None => "OK",
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .and_then(|n| CODES.get(n).copied())
            .unwrap_or("UNKNOWN"),
    }
}

/// Counts every request, times it, and runs it inside a span with a request id (so every log line of the request
/// carries it; JSON logs put it in `span.request_id`).
#[derive(Clone)]
pub(crate) struct RpcLayer {
    pub(crate) metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner, metrics: Arc::clone(&self.metrics) }
    }
}

/// See [`RpcLayer`].
#[derive(Clone)]
pub(crate) struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// A request id: unique in the process, not derived from anything the client sent.
fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{n:x}", std::process::id())
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = method_of(req.uri().path());
        let span = tracing::info_span!("rpc", method, request_id = %request_id());
        let start = Instant::now();
        let metrics = Arc::clone(&self.metrics);
        let fut = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let r = fut.await;
                let code = match &r {
                    Ok(resp) => code_of(resp),
                    Err(_) => "UNKNOWN",
                };
                let seconds = start.elapsed().as_secs_f64();
                metrics.rpc(method, code, seconds);
                // The access line (off by default: `RUST_LOG=info,vouchsafe::access=debug`), inside the span, so
                // it carries the method and the request id.
                tracing::debug!(target: "vouchsafe::access", code, ms = seconds * 1000.0, "rpc finished");
                r
            }
            .instrument(span),
        )
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let shared = Arc::clone(&shared);
            async move {
                let body = tokio::task::spawn_blocking(move || shared.metrics.render(&shared))
                    .await
                    .unwrap_or_else(|_| String::from("# the metrics could not be read\n"));
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(method_of("/vouchsafe.v1.Matching/SubmitVouchers"), "SubmitVouchers");
        assert_eq!(method_of("/vouchsafe.v1.Matching/alice-was-here"), "other");
        assert_eq!(method_of(""), "other");
        let r = http::Response::builder().header("grpc-status", "16").body(()).unwrap();
        assert_eq!(code_of(&r), "UNAUTHENTICATED");
        let r = http::Response::builder().header("grpc-status", "99").body(()).unwrap();
        assert_eq!(code_of(&r), "UNKNOWN");
        assert_eq!(code_of(&http::Response::new(())), "OK");
    }
}
