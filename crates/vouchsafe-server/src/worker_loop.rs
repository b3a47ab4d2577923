//! The background worker loop: runs one matching round (`worker::Processor`) on every tick of a fixed grid of the
//! poll interval (and, under the `eager` schedule, also when a submission was stored), logs what it did, and stops
//! between rounds once asked to.
//!
//! Rounds run on their own threads at the lowest CPU priority (`worker.nice`), with their own rayon pool, never on
//! the runtime's blocking pool that the intake's storage tasks use: the intake always runs first, so an
//! acknowledgement's latency does not show what the worker is doing or finding (docs/LEAKAGE.md §6).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::unix_now;
use crate::error::{ErrorChain, Result};
use crate::service::Shared;
use crate::worker::{self, ProcessReport};

/// Lowers the calling thread's CPU priority to `nice` (Linux: `setpriority(PRIO_PROCESS, tid, nice)`, which applies
/// to that one thread; threads it creates inherit it). Best effort, and a no-op on other systems: a failure leaves
/// the default priority.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 && rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice).is_err() {
        tracing::debug!(nice, "could not lower the worker's CPU priority");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The next tick of the grid `start + k·period` strictly after `now`.
fn next_tick(start: Instant, period: Duration, now: Instant) -> Instant {
    let period_ns = period.as_nanos().max(1);
    let elapsed = now.saturating_duration_since(start).as_nanos();
    let k = elapsed / period_ns + 1;
    start + Duration::from_nanos(u64::try_from(k * period_ns).unwrap_or(u64::MAX))
}

/// Runs `f` on a fresh low-priority thread inside the worker's rayon pool and returns its result; `None` if it
/// panicked or the thread could not start.
async fn on_worker_thread<T: Send + 'static>(
    pool: &Arc<rayon::ThreadPool>,
    nice: i32,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let pool = Arc::clone(pool);
    let spawned = std::thread::Builder::new().name("vouchsafe-worker".into()).spawn(move || {
        lower_priority(nice);
        let _ = tx.send(pool.install(f));
    });
    if spawned.is_err() {
        return None;
    }
    rx.await.ok()
}

/// The background worker: drains the inbox on every tick (see the module documentation). Stops between batches
/// once `stop` is set.
pub(crate) async fn worker_loop(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut purged = false;
    let mut refused = shared.backlog().refused;
    let nice = shared.config.worker.nice;
    let pool = match rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("vouchsafe-open-{i}"))
        .start_handler(move |_| lower_priority(nice))
        .build()
    {
        Ok(p) => Arc::new(p),
        Err(e) => {
            tracing::error!(error = %e, "the worker's thread pool could not start; no voucher will be processed");
            return;
        }
    };
    let grid = Instant::now();
    let mut watch = TableWatch::new(&shared.config);
    while !stop.load(Ordering::SeqCst) {
        // A replica picks up a table update on its own: when the table's files change (another replica's
        // operator ran `vouchsafe table update` on the shared files, or they were copied in), it reloads them as on
        // SIGHUP. A refused reload is logged and the served table stays.
        if watch.changed() {
            crate::server::log_reload(&crate::server::reload(&shared).await);
        }
        let s = Arc::clone(&shared);
        let st = Arc::clone(&stop);
        let check_purge = !purged;
        let round = on_worker_thread(&pool, nice, move || -> Result<(ProcessReport, bool)> {
            // One table version for the whole round, even if a reload swaps the served table meanwhile.
            // A revocation dropped into the revocations directory takes effect within a poll interval.
            if let Err(e) = s.refresh_revocations() {
                tracing::error!(error = %ErrorChain(&e), "revocations not re-read; the served state is unchanged");
            }
            let state = s.state();
            let p = worker::Processor::new(&s.config, &state.gov, &state.table.table)?
                .with_capture(s.capture.as_ref())
                .with_metrics(&s.metrics);
            let did_purge = check_purge && p.purge_if_due(&*s.store, unix_now())?;
            s.handoff.expire(std::time::Instant::now());
            let started = Instant::now();
            let report = p.run(&*s.store, usize::MAX, &st, Some(&s.handoff), Some(&s.backlog));
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    s.metrics.run_failed();
                    if matches!(e, crate::error::ServerError::Store(_)) {
                        s.metrics.store_error("worker");
                    }
                    return Err(e);
                }
            };
            s.metrics.run_time(&report, started.elapsed().as_secs_f64());
            // Between runs no round is in flight: the moment to correct any drift of the backlog's counts.
            s.backlog.reset_if_idle(&*s.store)?;
            Ok((report, did_purge))
        })
        .await;
        match round {
            Some(Ok((report, did_purge))) => {
                purged |= did_purge;
                if report.batches > 0 {
                    tracing::info!(
                        batches = report.batches,
                        vouchers = report.vouchers,
                        opened = report.opened,
                        non_matches = report.non_matches,
                        invalid = report.invalid,
                        reveals = report.reveals,
                        case_items = report.case_items,
                        second_hash_dropped = report.second_hash_dropped,
                        threshold_failures = report.threshold_failures,
                        "worker round"
                    );
                }
            }
            Some(Err(e)) => {
                tracing::error!(error = %ErrorChain(&e), "worker round failed; retrying after the poll interval")
            }
            None => tracing::error!("worker round panicked; retrying after the poll interval"),
        }
        // Admission control is summarised once per round, never logged per refused request.
        let b = shared.backlog();
        if b.refused > refused {
            tracing::warn!(
                refused = b.refused - refused,
                batches_pending = b.batches,
                bytes_pending = b.bytes,
                "the backlog is at its bound: submissions were refused with UNAVAILABLE (devices retry)"
            );
            refused = b.refused;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // The next round starts on the grid, whatever arrived meanwhile. `wake` is notified by the shutdown and,
        // under the eager schedule only, by the intake.
        let tick = next_tick(grid, shared.config.worker.poll_interval(), Instant::now());
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(tick)) => {}
        }
    }
    // Stopping: the accounts this worker still claims go to the other replicas now, not when the claims lapse.
    let store = Arc::clone(&shared.store);
    let worker = shared.config.worker.id.clone().unwrap_or_else(|| worker::default_worker_id().to_owned());
    match tokio::task::spawn_blocking(move || store.release_claims(&worker)).await {
        Ok(Ok(n)) if n > 0 => tracing::info!(claims = n, "claims released"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %ErrorChain(&e), "claims not released; they lapse after worker.claim_seconds")
        }
        Err(_) => tracing::warn!("claims not released; they lapse after worker.claim_seconds"),
    }
}

/// The modification times of the table's files (the table, its signed manifest, the update history), to notice
/// that they changed.
struct TableWatch {
    paths: Vec<std::path::PathBuf>,
    seen: Vec<Option<std::time::SystemTime>>,
}

impl TableWatch {
    fn new(config: &crate::config::ServerConfig) -> Self {
        let mut paths = vec![config.table.clone(), config.manifest_path()];
        paths.extend(config.table_updates.clone());
        let seen = paths.iter().map(|p| mtime(p)).collect();
        TableWatch { paths, seen }
    }

    /// Whether any file's modification time differs from the last call's (the first call compares with start).
    fn changed(&mut self) -> bool {
        let now: Vec<_> = self.paths.iter().map(|p| mtime(p)).collect();
        let changed = now != self.seen;
        self.seen = now;
        changed
    }
}

fn mtime(p: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}
