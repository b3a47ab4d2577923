//! The background worker loop: wakes on a submission or the poll interval, runs one matching round on the blocking
//! pool (`worker::Processor`), logs what it did, and stops between rounds once asked to.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::unix_now;
use crate::error::{ErrorChain, Result};
use crate::service::Shared;
use crate::worker::{self, ProcessReport};

/// The background worker: drains the inbox whenever a submission wakes it or the poll interval passes; all
/// crypto and SQLite work runs on the blocking pool. Stops between batches once `stop` is set.
pub(crate) async fn worker_loop(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut purged = false;
    let mut refused = shared.backlog().refused;
    while !stop.load(Ordering::SeqCst) {
        let s = Arc::clone(&shared);
        let st = Arc::clone(&stop);
        let check_purge = !purged;
        let round = tokio::task::spawn_blocking(move || -> Result<(ProcessReport, bool)> {
            // One table version for the whole round, even if a reload swaps the served table meanwhile.
            // A revocation dropped into the revocations directory takes effect within a poll interval.
            if let Err(e) = s.refresh_revocations() {
                tracing::error!(error = %ErrorChain(&e), "revocations not re-read; the served state is unchanged");
            }
            let state = s.state();
            let p = worker::Processor::new(&s.config, &state.gov, &state.table.table)?;
            let did_purge = check_purge && p.purge_if_due(&*s.store, unix_now())?;
            s.handoff.expire(std::time::Instant::now());
            let report = p.run(&*s.store, usize::MAX, &st, Some(&s.handoff), Some(&s.backlog))?;
            // Between runs no round is in flight: the moment to correct any drift of the backlog's counts.
            s.backlog.reset_if_idle(&*s.store)?;
            Ok((report, did_purge))
        })
        .await;
        match round {
            Ok(Ok((report, did_purge))) => {
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
            Ok(Err(e)) => {
                tracing::error!(error = %ErrorChain(&e), "worker round failed; retrying after the poll interval")
            }
            Err(_) => tracing::error!("worker round panicked; retrying after the poll interval"),
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
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(shared.config.worker.poll_interval()) => {}
        }
    }
}
