//! Background matching: opens inbox batches, records results in one store transaction, runs the per-account
//! threshold step and opens cases.
//!
//! The worker goes in rounds of up to `worker.batches_per_round` batches: it opens all their vouchers on all cores
//! (rayon; chunks of 64 vouchers, each chunk sharing one field inversion), runs the threshold step once per account
//! of the round, then completes every batch of the round with [`Store::complete_batches`] in one transaction.
//!
//! Crash safety and idempotency: the threshold step (which only creates or extends cases, deduplicated by voucher
//! id) runs *before* [`Store::complete_batches`], which records counters, opened vouchers and the accounts' revealed
//! state, marks the batches processed and deletes their raw vouchers, all in one transaction. A crash anywhere
//! leaves every batch of the round unprocessed; they are simply processed again after a restart, and the threshold
//! step then finds the same case and adds nothing twice. Non-matching vouchers leave nothing but counters.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use vouchsafe_phash::{AssociatedData, HashConfig, secondary_from_derivative};
use vouchsafe_protocol::table::ServerTable;
use vouchsafe_protocol::threshold::{Classified, RevealedAccount, RevealedItem, ThresholdOutcome, try_reveal};
use vouchsafe_protocol::voucher::{OpenOutcome, OpenedVoucher, Opener, Voucher};
use rayon::prelude::*;
use vouchsafe_store::{
    AuditEntry, BatchResults, CaseFilter, CaseItem, CaseStatus, InboxBatch, InboxId, NewCase, StateUpdate, Store,
};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{ServerConfig, unix_now};
use crate::error::{Result, ServerError};

/// Actor name of the server in audit entries.
pub const AUDIT_ACTOR: &str = "server";
/// Vouchers per parallel opening task: each task shares one field inversion across its vouchers
/// (`Opener::open_bytes_batch`); 64 keeps that cost negligible and still gives every core work in a 256-voucher
/// batch.
const OPEN_CHUNK: usize = 64;
/// Version byte of the account-state encoding kept in the store.
const ACCOUNT_STATE_VERSION: u8 = 1;

/// What a call to [`process_pending`] (or one worker round) did. Counts only; nothing about contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessReport {
    /// Batches completed.
    pub batches: u64,
    /// Vouchers in those batches.
    pub vouchers: u64,
    /// Vouchers that opened nothing.
    pub non_matches: u64,
    /// Vouchers that opened exactly one ciphertext.
    pub opened: u64,
    /// Malformed vouchers, vouchers of another epoch, or vouchers that opened more than once.
    pub invalid: u64,
    /// Accounts that crossed the threshold in this call.
    pub reveals: u64,
    /// Cases created.
    pub cases_created: u64,
    /// Items added to cases (new cases included).
    pub case_items: u64,
    /// Real items dropped by the second-hash check before review.
    pub second_hash_dropped: u64,
    /// Opened vouchers identified as synthetic and discarded from review.
    pub synthetic_discarded: u64,
    /// Opened vouchers rejected by the reconstruction (share off the polynomial, ad not decrypting, repeats).
    pub rejected: u64,
}

impl ProcessReport {
    fn add(&mut self, o: &ProcessReport) {
        self.batches += o.batches;
        self.vouchers += o.vouchers;
        self.non_matches += o.non_matches;
        self.opened += o.opened;
        self.invalid += o.invalid;
        self.reveals += o.reveals;
        self.cases_created += o.cases_created;
        self.case_items += o.case_items;
        self.second_hash_dropped += o.second_hash_dropped;
        self.synthetic_discarded += o.synthetic_discarded;
        self.rejected += o.rejected;
    }
}

/// Why the second-hash check dropped an item (never contains the item's content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondHashFailure {
    /// The associated data does not decode.
    Undecodable,
    /// It was made under another hash configuration than the order's.
    WrongConfig,
    /// The secondary hash recomputed from the derivative differs from the one in the associated data.
    SecondaryMismatch,
    /// The primary hash in the associated data is not an indicator of the current table.
    PrimaryNotIndicator,
}

impl SecondHashFailure {
    fn as_str(self) -> &'static str {
        match self {
            SecondHashFailure::Undecodable => "undecodable",
            SecondHashFailure::WrongConfig => "wrong-hash-config",
            SecondHashFailure::SecondaryMismatch => "secondary-mismatch",
            SecondHashFailure::PrimaryNotIndicator => "primary-not-indicator",
        }
    }
}

/// The post-threshold second-hash check of one decrypted associated-data item: it must decode under the order's
/// hash configuration, the secondary hash recomputed from its visual derivative must equal the secondary hash it
/// carries (an adversarial collision of the primary hash rarely survives a second, independent hash of the same
/// pixels), and its primary hash must be an indicator of the current table (a removed indicator, i.e. a known false
/// positive, is dropped here too).
///
/// The indicators' own secondary hashes are not available to the server in v1 (the table holds primaries only); a
/// comparison against them belongs to the Centre's verification step.
pub fn second_hash_check(ad: &[u8], hash: &HashConfig, table: &ServerTable) -> Result<(), SecondHashFailure> {
    let ad = AssociatedData::decode(ad).map_err(|_| SecondHashFailure::Undecodable)?;
    if ad.config().id() != hash.id() {
        return Err(SecondHashFailure::WrongConfig);
    }
    let recomputed = secondary_from_derivative(hash, ad.derivative()).map_err(|_| SecondHashFailure::Undecodable)?;
    // PerceptualHash compares in constant time.
    if &recomputed != ad.secondary() {
        return Err(SecondHashFailure::SecondaryMismatch);
    }
    let primary = Zeroizing::new(ad.primary().to_canonical_bytes());
    if !table.contains(&primary) {
        return Err(SecondHashFailure::PrimaryNotIndicator);
    }
    Ok(())
}

fn encode_account_state(acc: &RevealedAccount) -> Zeroizing<Vec<u8>> {
    let inner = acc.encode();
    let mut out = Zeroizing::new(Vec::with_capacity(1 + inner.len()));
    out.push(ACCOUNT_STATE_VERSION);
    out.extend_from_slice(&inner);
    out
}

fn decode_account_state(bytes: &[u8]) -> Result<RevealedAccount> {
    match bytes.split_first() {
        Some((&ACCOUNT_STATE_VERSION, rest)) => Ok(RevealedAccount::decode(rest)?),
        _ => Err(ServerError::Internal("stored account state has an unknown version")),
    }
}

/// The matching side of the server for one epoch.
pub(crate) struct Processor<'a> {
    config: &'a ServerConfig,
    table: &'a ServerTable,
    opener: Opener,
    hash: HashConfig,
}

impl<'a> Processor<'a> {
    pub(crate) fn new(config: &'a ServerConfig, table: &'a ServerTable) -> Result<Self> {
        let opener = Opener::new(table.key().clone(), table.params().clone())?;
        Ok(Processor { config, table, opener, hash: config.hash_config()? })
    }

    /// Processes unprocessed batches until the inbox is empty, `max_batches` were done, or `stop` is set (checked
    /// between rounds of up to `worker.batches_per_round` batches, so the current round always finishes).
    pub(crate) fn run(&self, store: &dyn Store, max_batches: usize, stop: &AtomicBool) -> Result<ProcessReport> {
        let mut report = ProcessReport::default();
        let mut done = 0usize;
        let per_round = self.config.worker.batches_per_round.max(1);
        while done < max_batches && !stop.load(Ordering::SeqCst) {
            let batches = store.next_unprocessed(per_round.min(max_batches - done))?;
            if batches.is_empty() {
                break;
            }
            let r = self.process_round(store, &batches)?;
            report.add(&r);
            done += batches.len();
        }
        Ok(report)
    }

    /// Opens every voucher of `batches` on all cores (chunks of [`OPEN_CHUNK`], each with one shared inversion),
    /// runs the threshold step once per account, and completes all the batches in one store transaction.
    fn process_round(&self, store: &dyn Store, batches: &[InboxBatch]) -> Result<ProcessReport> {
        let epoch = self.opener.params().epoch;
        let order = self.opener.params().order_id;
        let mut report = ProcessReport::default();

        // Vouchers of another epoch are invalid here; the rest are opened in chunks, in parallel.
        let mut results: Vec<BatchResults> = Vec::with_capacity(batches.len());
        let mut chunks: Vec<(usize, Vec<&[u8]>)> = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            let (current, other): (Vec<&[u8]>, Vec<&[u8]>) = b
                .vouchers
                .iter()
                .map(Vec::as_slice)
                .partition(|v| matches!(Voucher::peek_epoch(v), Ok(e) if e == epoch));
            results.push(BatchResults { invalid: other.len() as u64, ..Default::default() });
            chunks.extend(current.chunks(OPEN_CHUNK).map(|c| (i, c.to_vec())));
        }
        let opened: Vec<(usize, Vec<OpenOutcome>)> =
            chunks.par_iter().map(|(i, c)| (*i, self.opener.open_bytes_batch(c))).collect();

        // Fresh opened vouchers per account, in submission order; the account's state update goes with its last
        // batch of the round.
        let mut accounts: Vec<(&str, Vec<OpenedVoucher>, usize)> = Vec::new();
        for (i, outcomes) in opened {
            let Some(r) = results.get_mut(i) else { continue };
            let Some(batch) = batches.get(i) else { continue };
            for outcome in outcomes {
                match outcome {
                    OpenOutcome::NonMatch => r.non_matches += 1,
                    OpenOutcome::Invalid(_) => r.invalid += 1,
                    OpenOutcome::Opened(o) => {
                        r.opened.push(vouchsafe_store::OpenedVoucher {
                            order_id: order,
                            voucher_id: o.id,
                            payload: o.encode().to_vec(),
                        });
                        match accounts.iter_mut().find(|(a, _, _)| *a == batch.account) {
                            Some(entry) => {
                                entry.1.push(o);
                                entry.2 = i;
                            }
                            None => accounts.push((&batch.account, vec![o], i)),
                        }
                    }
                }
            }
        }
        for (b, r) in batches.iter().zip(&results) {
            report.batches += 1;
            report.vouchers += b.vouchers.len() as u64;
            report.non_matches += r.non_matches;
            report.invalid += r.invalid;
            report.opened += r.opened.len() as u64;
        }

        let mut step = Ok(());
        for (account, fresh, last) in accounts {
            match self.threshold_step(store, account, fresh, &mut report) {
                Ok(Some(state)) => {
                    if let Some(r) = results.get_mut(last) {
                        r.state.push(StateUpdate { order_id: order, state: state.to_vec() });
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    step = Err(e);
                    break;
                }
            }
        }
        let outcome = step.and_then(|()| {
            let list: Vec<(InboxId, &BatchResults)> = batches.iter().map(|b| b.id).zip(results.iter()).collect();
            Ok(store.complete_batches(&list, unix_now())?)
        });
        for r in &mut results {
            for o in &mut r.opened {
                o.payload.zeroize();
            }
            for s in &mut r.state {
                s.state.zeroize();
            }
        }
        outcome?;
        tracing::debug!(batches = report.batches, vouchers = report.vouchers, opened = report.opened, "round processed");
        Ok(report)
    }

    /// Runs detection (or, for a revealed account, classification) and files real items. Returns the account
    /// state to store if the account was revealed in this step.
    fn threshold_step(
        &self,
        store: &dyn Store,
        account: &str,
        fresh: Vec<OpenedVoucher>,
        report: &mut ProcessReport,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let p = self.opener.params();
        let order = p.order_id;
        let (items, new_state) = match store.account_state(account, order)? {
            Some(bytes) => {
                // Revealed: only the ids of what is stored are needed, to skip replayed vouchers.
                let mut ids: HashSet<[u8; 16]> = store.opened_voucher_ids(account, order)?.into_iter().collect();
                let acc = decode_account_state(&bytes)?;
                let mut items = Vec::new();
                for v in fresh.iter().filter(|o| ids.insert(o.id)) {
                    match acc.classify(v) {
                        Classified::Real(item) => items.push(item),
                        Classified::Synthetic => report.synthetic_discarded += 1,
                        Classified::Rejected => report.rejected += 1,
                    }
                }
                (items, None)
            }
            None => {
                let stored = store.opened_vouchers(account, order)?;
                let mut ids: HashSet<[u8; 16]> = stored.iter().map(|o| o.voucher_id).collect();
                // Replayed voucher ids (already stored, or twice in this round) are not new evidence.
                let fresh: Vec<OpenedVoucher> = fresh.into_iter().filter(|o| ids.insert(o.id)).collect();
                if fresh.is_empty() {
                    return Ok(None);
                }
                let mut all = Vec::with_capacity(stored.len() + fresh.len());
                for s in &stored {
                    all.push(OpenedVoucher::decode(&s.payload)?);
                }
                all.extend(fresh);
                match try_reveal(&order, p.threshold, p.synthetic_cap, &all) {
                    Ok(ThresholdOutcome::Below { .. }) => return Ok(None),
                    Ok(ThresholdOutcome::Revealed(r)) => {
                        report.reveals += 1;
                        report.synthetic_discarded += r.synthetic.len() as u64;
                        report.rejected += r.rejected.len() as u64;
                        let detail = format!(
                            "account={account} order={} real={} synthetic={} rejected={}",
                            hex::encode(order),
                            r.real.len(),
                            r.synthetic.len(),
                            r.rejected.len()
                        );
                        self.audit(store, "threshold.reveal", &detail)?;
                        tracing::info!(real = r.real.len(), "an account crossed the threshold; case follows");
                        (r.real, Some(encode_account_state(&r.account)))
                    }
                    Err(e) => {
                        // Reconstruction failed cleanly (e.g. a client ignoring the synthetic cap): nothing is
                        // decrypted. Record it; the vouchers stay stored and later batches retry.
                        let detail = format!("account={account} order={} error={e}", hex::encode(order));
                        self.audit(store, "threshold.failed", &detail)?;
                        tracing::warn!(error = %e, "threshold reconstruction failed");
                        return Ok(None);
                    }
                }
            }
        };
        if !items.is_empty() {
            self.file_items(store, account, items, report)?;
        }
        Ok(new_state)
    }

    /// Second-hash check, then creates a case or extends the account's open case (items already filed are skipped).
    fn file_items(
        &self,
        store: &dyn Store,
        account: &str,
        items: Vec<RevealedItem>,
        report: &mut ProcessReport,
    ) -> Result<()> {
        let order = self.opener.params().order_id;
        let filed: HashSet<[u8; 16]> = store.case_voucher_ids(account, order)?.into_iter().collect();
        let mut keep: Vec<CaseItem> = Vec::new();
        for item in items {
            if filed.contains(&item.id) {
                continue;
            }
            match second_hash_check(&item.ad, &self.hash, self.table) {
                Ok(()) => keep.push(CaseItem { voucher_id: item.id, ad: item.ad.to_vec() }),
                Err(why) => {
                    report.second_hash_dropped += 1;
                    let detail = format!(
                        "account={account} order={} voucher={} reason={}",
                        hex::encode(order),
                        hex::encode(item.id),
                        why.as_str()
                    );
                    self.audit(store, "case.item_dropped", &detail)?;
                }
            }
        }
        if keep.is_empty() {
            return Ok(());
        }
        let filter = CaseFilter { status: None, account: Some(account.to_owned()), order_id: Some(order) };
        let cases = store.list_cases(&filter)?;
        let open_case = cases.iter().rev().find(|c| c.status == CaseStatus::Open && !c.ad_purged);
        let result = match open_case {
            Some(c) => {
                store.add_case_items(c.id, &keep).map(|()| {
                    let detail = format!("case={} items_added={}", c.id.0, keep.len());
                    (c.id, detail)
                })
            }
            None => store
                .create_case(&NewCase {
                    account,
                    order_id: order,
                    created_at: unix_now(),
                    items: &keep,
                    actor: AUDIT_ACTOR,
                })
                .map(|id| {
                    report.cases_created += 1;
                    (id, String::new())
                }),
        };
        let n = keep.len() as u64;
        for k in &mut keep {
            k.ad.zeroize();
        }
        let (case, detail) = result?;
        if !detail.is_empty() {
            self.audit(store, "case.items", &detail)?;
        }
        report.case_items += n;
        tracing::info!(case = case.0, items = n, "case items filed for review");
        Ok(())
    }

    fn audit(&self, store: &dyn Store, action: &str, detail: &str) -> Result<()> {
        store.append_audit(&AuditEntry { at: unix_now(), actor: AUDIT_ACTOR, action, detail })?;
        Ok(())
    }

    /// Purges the order's data once `retention.purge_after_seconds` have passed since `order.not_after`.
    /// Returns whether it purged.
    pub(crate) fn purge_if_due(&self, store: &dyn Store, now: i64) -> Result<bool> {
        let o = &self.config.order;
        let due = o.not_after.saturating_add(i64::try_from(self.config.retention.purge_after_seconds).unwrap_or(i64::MAX));
        if now < due {
            return Ok(false);
        }
        let r = store.purge_order(o.order_id, now)?;
        tracing::info!(
            opened_vouchers = r.opened_vouchers,
            states = r.states,
            case_items = r.case_items,
            "expired order purged"
        );
        Ok(true)
    }
}

/// Processes every unprocessed batch in the store now, synchronously (for tests and `vouchsafe` maintenance
/// commands; the running server does the same in its background worker).
pub fn process_pending(config: &ServerConfig, table: &ServerTable, store: &dyn Store) -> Result<ProcessReport> {
    let p = Processor::new(config, table)?;
    p.run(store, usize::MAX, &AtomicBool::new(false))
}
