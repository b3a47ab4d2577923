//! Background matching: opens inbox batches, records results in one store transaction, runs the per-account
//! threshold step and opens cases.
//!
//! The worker goes in rounds of up to `worker.batches_per_round` batches: it opens all their vouchers on all cores
//! (rayon; chunks of 64 vouchers, each chunk sharing one field inversion), runs the threshold step once per client
//! state of the round (an account's devices and installs each have their own state; accounts and states in parallel,
//! each account's items filed together), then completes every batch of the round with [`Store::complete_batches`]
//! in one transaction, and gives the batches' room in the backlog back.
//! Rounds are pipelined: round N+1 is fetched and opened while round N's threshold step and transaction run.
//!
//! Crash safety and idempotency: the threshold step (which only creates or extends cases, deduplicated by voucher
//! id) runs *before* [`Store::complete_batches`], which records counters, opened vouchers and the accounts' revealed
//! state, marks the batches processed and deletes their raw vouchers, all in one transaction. A crash anywhere
//! leaves every batch of the round unprocessed; they are simply processed again after a restart, and the threshold
//! step then finds the same case and adds nothing twice. Non-matching vouchers leave nothing but counters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use vouchsafe_leakage::view::ThresholdState;
use vouchsafe_phash::{AssociatedData, HashConfig, HashKind, PerceptualHash, secondary_from_derivative};
use vouchsafe_protocol::table::ServerTable;
use vouchsafe_protocol::threshold::{Classified, RevealedAccount, RevealedItem, ThresholdOutcome, try_reveal};
use vouchsafe_protocol::voucher::{OpenOutcome, OpenedVoucher, Opener, Voucher, VoucherLayout};
use vouchsafe_release::ReleaseChain;
use vouchsafe_store::{
    BatchResults, CaseFilter, CaseItem, CaseStatus, Claim, ClientStateId, CompleteOutcome, InboxBatch, InboxId,
    NewCase, StateUpdate, Store, StoreError,
};
use zeroize::{Zeroize, Zeroizing};

use crate::backlog::Backlog;
use crate::capture::{CaptureSink, RoundCapture, state_record, voucher_record};
use crate::config::{ServerConfig, unix_now};
use crate::error::{Result, ServerError};
use crate::events::{Audited, Event, entries};
use crate::governance::Governance;
use crate::handoff::Handoff;

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
    /// Client states that crossed the threshold in this call (an account with several devices can cross once per
    /// device's state).
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
    /// Threshold reconstructions that failed (a client state that broke the protocol: more than s synthetics, or
    /// the shares of two states under one id).
    pub threshold_failures: u64,
    /// Threshold attempts skipped because a client state's last attempt failed and its opened vouchers have not
    /// doubled since.
    pub threshold_skipped: u64,
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
        self.threshold_failures += o.threshold_failures;
        self.threshold_skipped += o.threshold_skipped;
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
    /// The primary hash is in the table but not in the verified Centre release chain (cannot happen with a table
    /// `Governance::check_manifest` accepted; checked anyway).
    NotInRelease,
    /// The item's secondary hash is farther from the indicator's secondary hash (in the Centre's release) than the
    /// hash configuration allows: a primary-hash collision, adversarial or not.
    IndicatorSecondaryMismatch,
}

impl SecondHashFailure {
    /// Stable name, as audit events and statistics carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecondHashFailure::Undecodable => "undecodable",
            SecondHashFailure::WrongConfig => "wrong-hash-config",
            SecondHashFailure::SecondaryMismatch => "secondary-mismatch",
            SecondHashFailure::PrimaryNotIndicator => "primary-not-indicator",
            SecondHashFailure::NotInRelease => "not-in-release",
            SecondHashFailure::IndicatorSecondaryMismatch => "indicator-secondary-mismatch",
        }
    }
}

/// The post-threshold second-hash check of one decrypted associated-data item, before any person sees it:
/// 1. it decodes under the order's hash configuration;
/// 2. the secondary hash recomputed from its visual derivative equals the secondary hash it carries (the device
///    cannot show a reviewer other pixels than it hashed);
/// 3. its primary hash is an indicator of the served table (a removed indicator, i.e. a known false positive, is
///    dropped here too) and of the verified Centre release chain;
/// 4. its secondary hash is within the configuration's `secondary_max_distance` of **the indicator's** secondary
///    hash, which the Centre's release carries and which is never in the table nor sent to a device. A forged
///    primary-hash collision has to collide with a second, independent hash of the same pixels it shows.
///
/// Returns the indicator's primary (canonical bytes) and the distance on success.
pub fn second_hash_check(
    ad: &[u8],
    hash: &HashConfig,
    table: &ServerTable,
    chain: &ReleaseChain,
) -> Result<(Vec<u8>, u32), SecondHashFailure> {
    let ad = AssociatedData::decode(ad).map_err(|_| SecondHashFailure::Undecodable)?;
    if ad.config().id() != hash.id() {
        return Err(SecondHashFailure::WrongConfig);
    }
    let recomputed = secondary_from_derivative(hash, ad.derivative()).map_err(|_| SecondHashFailure::Undecodable)?;
    // PerceptualHash compares in constant time.
    if &recomputed != ad.secondary() {
        return Err(SecondHashFailure::SecondaryMismatch);
    }
    let primary = ad.primary().to_canonical_bytes();
    if !table.contains(&primary) {
        return Err(SecondHashFailure::PrimaryNotIndicator);
    }
    let indicator = chain.secondary(&primary).ok_or(SecondHashFailure::NotInRelease)?;
    let indicator = PerceptualHash::from_canonical_bytes(HashKind::Secondary, indicator)
        .map_err(|_| SecondHashFailure::NotInRelease)?;
    let distance = ad.secondary_distance(&indicator).map_err(|_| SecondHashFailure::IndicatorSecondaryMismatch)?;
    if distance > hash.secondary_max_distance() {
        return Err(SecondHashFailure::IndicatorSecondaryMismatch);
    }
    Ok((primary, distance))
}

/// The primary hash an item claims, if its associated data decodes (for the per-indicator drop count).
fn claimed_primary(ad: &[u8]) -> Option<Vec<u8>> {
    AssociatedData::decode(ad).ok().map(|a| a.primary().to_canonical_bytes())
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

/// Encoded vouchers with their positions in their batch.
type Indexed<'a> = Vec<(usize, &'a [u8])>;
/// New revealed states with their reveal's audit entry, by the index of the batch of the round they are stored with.
type StateUpdates = Vec<(usize, Zeroizing<Vec<u8>>, Audited)>;
/// What one client state's threshold step gives: its counts, the real items it revealed, and its new state and the
/// reveal's audit entry (with the index of the batch they go with) if it was revealed now.
type StateStep = (ProcessReport, Vec<RevealedItem>, Option<(usize, Zeroizing<Vec<u8>>, Audited)>);
/// What one threshold step gives: the real items, and the new state and the reveal's audit entry if revealed now.
/// The entry is appended in the transaction that stores the state (with the batch), so the audit log records a
/// reveal exactly when it takes effect: a round redone after a crash or a takeover records it once.
type Revealed = (Vec<RevealedItem>, Option<(Zeroizing<Vec<u8>>, Audited)>);

/// One account's share of a round.
struct AccountRound {
    account: String,
    states: Vec<StateRound>,
}

/// One client state's share of a round.
struct StateRound {
    client_state: ClientStateId,
    fresh: Vec<OpenedVoucher>,
    last: usize,
}

/// The opened (not yet committed) results of one round. Opened payloads and states are zeroized on drop, whether
/// the round was committed or not.
#[derive(Default)]
struct OpenedRound {
    /// One per batch of the round, in order.
    results: Vec<BatchResults>,
    /// Per account (in order of first appearance): per client state, its fresh opened vouchers in submission order
    /// and the index of its last batch in the round (where its state update goes).
    accounts: Vec<AccountRound>,
    /// Counts of the opening.
    report: ProcessReport,
    /// The round's voucher records for the leakage capture, per batch, by position in the batch (empty without
    /// `worker.capture`). Not zeroized: they are written to the capture file as they are.
    capture: Vec<Vec<Option<vouchsafe_leakage::view::VoucherRecord>>>,
}

impl Drop for OpenedRound {
    fn drop(&mut self) {
        for r in &mut self.results {
            for o in &mut r.opened {
                o.payload.zeroize();
            }
            for s in &mut r.state {
                s.state.zeroize();
            }
        }
    }
}

fn join(h: std::thread::ScopedJoinHandle<'_, Result<ProcessReport>>) -> Result<ProcessReport> {
    h.join().map_err(|_| ServerError::Internal("worker round panicked"))?
}

/// The matching side of the server for one epoch.
pub(crate) struct Processor<'a> {
    config: &'a ServerConfig,
    gov: &'a Governance,
    table: &'a ServerTable,
    opener: Opener,
    hash: HashConfig,
    /// The leakage capture, if `worker.capture` is set.
    capture: Option<&'a CaptureSink>,
    /// Threshold states reached by the round being finished, for the capture (written once it committed).
    capture_states: std::sync::Mutex<Vec<vouchsafe_leakage::live::StateRecord>>,
    /// The server's metrics, if it keeps them.
    metrics: Option<&'a crate::metrics::Metrics>,
}

/// This process's worker identity when `worker.id` is not set: host name, process id and start time (hex
/// nanoseconds), the same for every round of the process and different between processes.
pub fn default_worker_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| {
                h.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(64).collect()
            })
            .filter(|h: &String| !h.is_empty())
            .unwrap_or_else(|| "host".to_owned());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("{host}-{}-{nanos:x}", std::process::id())
    })
}

impl<'a> Processor<'a> {
    /// The worker identity its claims are made under.
    fn worker_id(&self) -> &str {
        self.config.worker.id.as_deref().unwrap_or_else(|| default_worker_id())
    }

    /// A claim made now, holding for `worker.claim_seconds`.
    fn claim(&self) -> Claim<'_> {
        let now = unix_now();
        let hold = i64::try_from(self.config.worker.claim_seconds).unwrap_or(i64::MAX);
        Claim { worker: self.worker_id(), now, until: now.saturating_add(hold) }
    }

    pub(crate) fn new(config: &'a ServerConfig, gov: &'a Governance, table: &'a ServerTable) -> Result<Self> {
        let opener = Opener::new(table.key().clone(), table.params().clone())?;
        Ok(Processor {
            config,
            gov,
            table,
            opener,
            hash: gov.hash_config(),
            capture: None,
            capture_states: std::sync::Mutex::new(Vec::new()),
            metrics: None,
        })
    }

    /// Records each round's batch latencies, lag and dropped rounds into `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: &'a crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records what every round sees into `capture` (`worker.capture`).
    pub(crate) fn with_capture(mut self, capture: Option<&'a CaptureSink>) -> Self {
        self.capture = capture;
        self
    }

    /// Notes a client state's threshold state for the capture.
    fn capture_state(&self, account: &str, client_state: ClientStateId, state: ThresholdState) {
        if self.capture.is_some() {
            self.capture_states.lock().unwrap_or_else(|e| e.into_inner()).push(state_record(
                account,
                client_state,
                state,
            ));
        }
    }

    /// Processes unprocessed batches until the inbox is empty, `max_batches` were done, or `stop` is set (checked
    /// between rounds of up to `worker.batches_per_round` batches, so the current round always finishes).
    ///
    /// Rounds are pipelined: while round N's threshold step and store transaction run on a helper thread, round
    /// N+1 is fetched and opened (pure computation). Round N+1's threshold step starts only after round N is
    /// committed, so the per-account order of steps and the crash-safety argument are those of sequential rounds.
    ///
    /// Batches in `handoff` (left there by the intake) are taken from it instead of being read back from storage.
    pub(crate) fn run(
        &self,
        store: &dyn Store,
        max_batches: usize,
        stop: &AtomicBool,
        handoff: Option<&Handoff>,
        backlog: Option<&Backlog>,
    ) -> Result<ProcessReport> {
        let per_round = self.config.worker.batches_per_round.max(1);
        let mut report = ProcessReport::default();
        let mut cached = |account: &str, batch_id: &[u8; 16]| handoff.and_then(|h| h.take(account, batch_id));
        std::thread::scope(|scope| {
            // The round being finished, by the last inbox id it holds (ids grow with insertion, rounds are taken
            // oldest first, so the next round is the batches after it).
            let mut inflight: Option<(InboxId, std::thread::ScopedJoinHandle<'_, Result<ProcessReport>>)> = None;
            let mut done = 0usize;
            let mut pipeline = || -> Result<()> {
                while done < max_batches && !stop.load(Ordering::SeqCst) {
                    let want = per_round.min(max_batches - done);
                    let after = inflight.as_ref().map(|(last, _)| *last);
                    // Only batches of accounts no other replica holds: one worker at a time per account.
                    let batches = match store.claim_batches(&self.claim(), want, after, &mut cached) {
                        Err(StoreError::UnreadableBatch { id, vouchers, reason }) => {
                            self.set_aside(store, id, vouchers, reason)?;
                            // Its size is not known here: the count is corrected by the next idle reset.
                            if let Some(b) = backlog {
                                b.processed(1, 0);
                            }
                            continue;
                        }
                        r => r?,
                    };
                    let Some(last) = batches.iter().map(|b| b.id).max() else {
                        break;
                    };
                    let opened = self.open_round(&batches);
                    if let Some((_, h)) = inflight.take() {
                        report.add(&join(h)?);
                    }
                    done += batches.len();
                    inflight = Some((last, scope.spawn(move || self.finish_round(store, &batches, opened, backlog))));
                }
                Ok(())
            };
            let result = pipeline();
            // The round in flight always finishes (also after an error in the next one).
            if let Some((_, h)) = inflight.take() {
                let last = join(h);
                if let Ok(r) = &last {
                    report.add(r);
                }
                result?;
                last?;
            } else {
                result?;
            }
            Ok(report)
        })
    }

    /// Opens every voucher of `batches` on all cores (chunks of [`OPEN_CHUNK`], each with one shared inversion).
    /// Pure computation: nothing is read or written.
    fn open_round(&self, batches: &[InboxBatch]) -> OpenedRound {
        let epoch = self.opener.params().epoch;
        let order = self.opener.params().order_id;
        // Every voucher that does not open costs a cover write of an opened payload's size (docs/LEAKAGE.md §6).
        let cover_payload_len =
            if self.config.worker.cover_writes { VoucherLayout::of(self.opener.params()).opened_len() } else { 0 };
        let mut round = OpenedRound::default();

        // Vouchers of another epoch are invalid here; the rest are opened in chunks, in parallel. Each chunk keeps the
        // positions of its vouchers in their batch (for the capture).
        let mut chunks: Vec<(usize, Indexed<'_>)> = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            let (current, other): (Indexed<'_>, Indexed<'_>) = b
                .vouchers
                .iter()
                .map(Vec::as_slice)
                .enumerate()
                .partition(|(_, v)| matches!(Voucher::peek_epoch(v), Ok(e) if e == epoch));
            round.results.push(BatchResults {
                invalid: other.len() as u64,
                order_id: Some(order),
                cover_payload_len,
                ..Default::default()
            });
            if self.capture.is_some() {
                let mut records = vec![None; b.vouchers.len()];
                for (j, _) in &other {
                    if let Some(r) = records.get_mut(*j) {
                        *r = Some(voucher_record(b, *j, None));
                    }
                }
                round.capture.push(records);
            }
            chunks.extend(current.chunks(OPEN_CHUNK).map(|c| (i, c.to_vec())));
        }
        let opened: Vec<(usize, Vec<(usize, OpenOutcome)>)> = chunks
            .par_iter()
            .map(|(i, c)| {
                let bytes: Vec<&[u8]> = c.iter().map(|(_, v)| *v).collect();
                let outcomes = self.opener.open_bytes_batch(&bytes);
                (*i, c.iter().map(|(j, _)| *j).zip(outcomes).collect())
            })
            .collect();

        // Fresh opened vouchers per account and client state, in submission order; a state's update goes with its
        // last batch of the round (a batch of that state).
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, outcomes) in opened {
            let Some(r) = round.results.get_mut(i) else { continue };
            let Some(batch) = batches.get(i) else { continue };
            for (j, outcome) in outcomes {
                if let Some(r) = round.capture.get_mut(i).and_then(|b| b.get_mut(j)) {
                    *r = Some(voucher_record(batch, j, Some(&outcome)));
                }
                match outcome {
                    OpenOutcome::NonMatch => r.non_matches += 1,
                    OpenOutcome::Invalid(_) => r.invalid += 1,
                    OpenOutcome::Opened(o) => {
                        r.opened.push(vouchsafe_store::OpenedVoucher {
                            order_id: order,
                            voucher_id: *o.id(),
                            payload: o.encode().to_vec(),
                        });
                        let a = *index.entry(batch.account.as_str()).or_insert_with(|| {
                            round.accounts.push(AccountRound { account: batch.account.clone(), states: Vec::new() });
                            round.accounts.len() - 1
                        });
                        let Some(acc) = round.accounts.get_mut(a) else { continue };
                        match acc.states.iter_mut().find(|s| s.client_state == batch.client_state) {
                            Some(st) => {
                                st.fresh.push(o);
                                st.last = i;
                            }
                            None => acc.states.push(StateRound {
                                client_state: batch.client_state,
                                fresh: vec![o],
                                last: i,
                            }),
                        }
                    }
                }
            }
        }
        for (b, r) in batches.iter().zip(&round.results) {
            round.report.batches += 1;
            round.report.vouchers += b.vouchers.len() as u64;
            round.report.non_matches += r.non_matches;
            round.report.invalid += r.invalid;
            round.report.opened += r.opened.len() as u64;
        }
        round
    }

    /// Runs the threshold step of every client state of the round and files what it reveals, accounts in parallel
    /// (and an account's states in parallel, its items filed together, into one case), then completes every batch of
    /// the round with [`Store::complete_batches`] in one transaction and gives their room in the backlog back.
    fn finish_round(
        &self,
        store: &dyn Store,
        batches: &[InboxBatch],
        mut round: OpenedRound,
        backlog: Option<&Backlog>,
    ) -> Result<ProcessReport> {
        let order = self.opener.params().order_id;
        let mut report = round.report;
        let accounts = std::mem::take(&mut round.accounts);
        let steps: Vec<Result<(ProcessReport, StateUpdates)>> =
            accounts.into_par_iter().map(|a| self.account_step(store, a)).collect();
        for step in steps {
            let (r, updates) = step?;
            report.add(&r);
            for (last, state, reveal) in updates {
                if let Some(res) = round.results.get_mut(last) {
                    res.state.push(StateUpdate { order_id: order, state: state.to_vec() });
                    res.audit.push(reveal.into_owned());
                }
            }
        }
        let list: Vec<(InboxId, &BatchResults)> = batches.iter().map(|b| b.id).zip(round.results.iter()).collect();
        let states = std::mem::take(&mut *self.capture_states.lock().unwrap_or_else(|e| e.into_inner()));
        let outcomes = match store.complete_claimed(&self.claim(), &list, unix_now()) {
            // Another replica took the round's accounts over (this one stalled past `worker.claim_seconds`): it
            // processes the batches; nothing of this round was written, apart from case items it filed, which are
            // deduplicated by voucher id.
            Err(StoreError::Conflict(why)) => {
                tracing::warn!(batches = batches.len(), reason = why, "round dropped: its claims lapsed");
                if let Some(m) = self.metrics {
                    m.round_dropped();
                }
                return Ok(ProcessReport::default());
            }
            r => r?,
        };
        if let Some(m) = self.metrics {
            m.round(&report);
            let done = batches.iter().zip(&outcomes).filter(|(_, o)| !matches!(o, CompleteOutcome::AlreadyProcessed));
            m.batches_processed(done.map(|(b, _)| b.received_at), unix_now());
        }
        if let Some(c) = self.capture {
            // In batch order, each batch's vouchers in order; a batch another process completed first is not this
            // round's to record.
            let vouchers = std::mem::take(&mut round.capture)
                .into_iter()
                .zip(&outcomes)
                .filter(|(_, o)| !matches!(o, CompleteOutcome::AlreadyProcessed))
                .flat_map(|(b, _)| b.into_iter().flatten())
                .collect();
            c.write(self.opener.params(), &RoundCapture { vouchers, states });
        }
        if let Some(b) = backlog {
            let bytes = batches.iter().flat_map(|b| &b.vouchers).map(|v| v.len() as u64).sum();
            b.processed(batches.len() as u64, bytes);
        }
        tracing::debug!(
            batches = report.batches,
            vouchers = report.vouchers,
            opened = report.opened,
            "round processed"
        );
        Ok(report)
    }

    /// The threshold step of each client state of one account (in parallel), then the filing of everything they
    /// revealed, in one go.
    /// Returns the counts and the new states, by the index of the batch they go with.
    fn account_step(&self, store: &dyn Store, a: AccountRound) -> Result<(ProcessReport, StateUpdates)> {
        let mut report = ProcessReport::default();
        let mut items = Vec::new();
        let mut updates = Vec::new();
        // The states' threshold steps in parallel too (one account with many states is the hostile case); their
        // items are filed together afterwards.
        let account = a.account.as_str();
        let steps: Vec<Result<StateStep>> = a
            .states
            .into_par_iter()
            .map(|st| {
                let mut r = ProcessReport::default();
                let (revealed, state) = self.threshold_step(store, account, st.client_state, st.fresh, &mut r)?;
                Ok((r, revealed, state.map(|(s, reveal)| (st.last, s, reveal))))
            })
            .collect();
        for step in steps {
            let (r, mut revealed, update) = step?;
            report.add(&r);
            items.append(&mut revealed);
            updates.extend(update);
        }
        if !items.is_empty() {
            self.file_items(store, &a.account, items, &mut report)?;
        }
        Ok((report, updates))
    }

    /// Runs detection (or, for a revealed client state, classification) over one client state's opened vouchers.
    /// Returns the real items it revealed and the state to store if the client state was revealed in this step.
    ///
    /// A client state whose reconstruction failed (it broke the protocol) is attempted again only once its opened
    /// vouchers have doubled since the failed attempt: detection keeps the first dependency among the columns in
    /// the order they were stored, so appending columns cannot change it, and new vouchers rarely change the
    /// outcome; doubling bounds the work on such a state to O(n) in all (about log₂ n attempts) instead of one
    /// attempt over everything per batch.
    fn threshold_step(
        &self,
        store: &dyn Store,
        account: &str,
        client_state: ClientStateId,
        fresh: Vec<OpenedVoucher>,
        report: &mut ProcessReport,
    ) -> Result<Revealed> {
        let p = self.opener.params();
        let order = p.order_id;
        if let Some(bytes) = store.account_state(account, client_state, order)? {
            // Revealed: only the ids of what is stored are needed, to skip replayed vouchers.
            let mut ids: HashSet<[u8; 16]> =
                store.opened_voucher_ids(account, client_state, order)?.into_iter().collect();
            let acc = decode_account_state(&bytes)?;
            let mut items = Vec::new();
            for v in fresh.iter().filter(|o| ids.insert(*o.id())) {
                match acc.classify(v) {
                    Classified::Real(item) => items.push(item),
                    Classified::Synthetic => report.synthetic_discarded += 1,
                    Classified::Rejected => report.rejected += 1,
                }
            }
            self.capture_state(account, client_state, ThresholdState::Revealed);
            return Ok((items, None));
        }
        if let Some(f) = store.threshold_failure(account, client_state, order)? {
            // A count, not the stored vouchers: a skipped attempt costs one indexed count (replays among `fresh`
            // make it an upper bound, which only brings an attempt forward).
            let have = store.state_opened_count(account, client_state, order)?.saturating_add(fresh.len() as u64);
            if have < f.shares.saturating_mul(2) {
                report.threshold_skipped += 1;
                self.capture_state(account, client_state, ThresholdState::Failed);
                return Ok((Vec::new(), None));
            }
        }
        let stored = store.state_opened_vouchers(account, client_state, order)?;
        let mut ids: HashSet<[u8; 16]> = stored.iter().map(|o| o.voucher_id).collect();
        // Replayed voucher ids (already stored, or twice in this round) are not new evidence.
        let fresh: Vec<OpenedVoucher> = fresh.into_iter().filter(|o| ids.insert(*o.id())).collect();
        if fresh.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut all = Vec::with_capacity(stored.len() + fresh.len());
        for s in &stored {
            all.push(OpenedVoucher::decode(&s.payload)?);
        }
        all.extend(fresh);
        match try_reveal(&order, p.threshold, p.synthetic_cap, &all) {
            Ok(ThresholdOutcome::Below { .. }) => {
                self.capture_state(account, client_state, ThresholdState::Below);
                Ok((Vec::new(), None))
            }
            Ok(ThresholdOutcome::Revealed(r)) => {
                self.capture_state(account, client_state, ThresholdState::Revealed);
                report.reveals += 1;
                report.synthetic_discarded += r.synthetic.len() as u64;
                report.rejected += r.rejected.len() as u64;
                let reveal = Audited::new(
                    unix_now(),
                    AUDIT_ACTOR,
                    &Event::ThresholdReveal {
                        account: account.to_owned(),
                        order: hex::encode(order),
                        real: r.real.len() as u64,
                        synthetic: r.synthetic.len() as u64,
                        rejected: r.rejected.len() as u64,
                    },
                );
                tracing::info!(real = r.real.len(), "a client state crossed the threshold; case follows");
                Ok((r.real, Some((encode_account_state(&r.account), reveal))))
            }
            Err(e @ vouchsafe_protocol::Error::Invalid(_)) => {
                // Reconstruction failed cleanly on what the device sent (a client ignoring the synthetic cap, or
                // two states' shares under one id): nothing is decrypted, the vouchers stay stored. Counted, audited
                // once per attempt, and attempted again only after the state's vouchers doubled.
                report.threshold_failures += 1;
                let mark =
                    store.record_threshold_failure(account, client_state, order, all.len() as u64, unix_now())?;
                self.audit(
                    store,
                    &Event::ThresholdFailed {
                        account: account.to_owned(),
                        order: hex::encode(order),
                        error: e.to_string(),
                    },
                )?;
                if mark.failures == 1 {
                    tracing::warn!(
                        error = %crate::error::ErrorChain(&e),
                        "threshold reconstruction failed for a client state; retried once its vouchers double"
                    );
                } else {
                    tracing::debug!(failures = mark.failures, "threshold reconstruction failed again");
                }
                self.capture_state(account, client_state, ThresholdState::Failed);
                Ok((Vec::new(), None))
            }
            // A misuse or an internal error is this server's bug, not the device's: the round fails (and is retried)
            // instead of being recorded against the account.
            Err(e) => Err(e.into()),
        }
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
        let mut dropped: Vec<Audited> = Vec::new();
        let mut drops: Vec<([u8; 16], Vec<u8>)> = Vec::new();
        for item in items {
            if filed.contains(&item.id) {
                continue;
            }
            match second_hash_check(&item.ad, &self.hash, self.table, self.gov.chain()) {
                Ok(_) => keep.push(CaseItem { voucher_id: item.id, ad: item.ad.to_vec() }),
                Err(why) => {
                    if let Some(primary) = claimed_primary(&item.ad) {
                        drops.push((item.id, primary));
                    }
                    report.second_hash_dropped += 1;
                    dropped.push(Audited::new(
                        unix_now(),
                        AUDIT_ACTOR,
                        &Event::ItemDropped {
                            account: account.to_owned(),
                            order: hex::encode(order),
                            voucher: hex::encode(item.id),
                            reason: why.as_str().to_owned(),
                        },
                    ));
                }
            }
        }
        // One transaction for all of this step's drops (an entry each), not one commit per item.
        store.append_audits(&entries(&dropped))?;
        // Counted per indicator for the Centre (suspected collisions), idempotently per voucher: a round replayed
        // after a crash counts nothing twice.
        if !drops.is_empty() {
            store.record_second_hash_drops(order, &drops, unix_now())?;
        }
        if keep.is_empty() {
            return Ok(());
        }
        let filter = CaseFilter { account: Some(account.to_owned()), order_id: Some(order), ..CaseFilter::default() };
        let cases = store.list_cases(&filter)?;
        let open_case = cases.iter().rev().find(|c| c.status == CaseStatus::Open && !c.ad_purged);
        let result = match open_case {
            Some(c) => store
                .add_case_items(c.id, &keep)
                .map(|()| (c.id, Some(Event::CaseItems { case: c.id.0 as u64, added: keep.len() as u64 }))),
            None => store
                .create_case(&NewCase {
                    account,
                    order_id: order,
                    created_at: unix_now(),
                    items: &keep,
                    actor: AUDIT_ACTOR,
                    four_eyes: self.config.review.as_ref().is_some_and(|r| r.four_eyes),
                    // Refused if another replica took the account over: one case per account at a time.
                    claimed_by: Some(self.worker_id()),
                })
                .map(|id| {
                    report.cases_created += 1;
                    (id, None)
                }),
        };
        let n = keep.len() as u64;
        for k in &mut keep {
            k.ad.zeroize();
        }
        let (case, event) = result?;
        if let Some(e) = event {
            self.audit(store, &e)?;
        }
        report.case_items += n;
        tracing::info!(case = case.0, items = n, "case items filed for review");
        Ok(())
    }

    /// A batch whose vouchers cannot be read back (spool file missing or damaged, e.g. after restoring a backup
    /// without its spool) can never be opened. It is audited (`inbox.unreadable`) and completed with every voucher
    /// counted as invalid, so that the batches behind it are processed.
    fn set_aside(&self, store: &dyn Store, id: InboxId, vouchers: u64, reason: &str) -> Result<()> {
        tracing::error!(inbox_batch = id.0, vouchers, reason, "inbox batch cannot be read; counted as invalid");
        self.audit(store, &Event::InboxUnreadable { inbox_batch: id.0, vouchers, reason: reason.to_owned() })?;
        let results =
            BatchResults { invalid: vouchers, order_id: Some(self.opener.params().order_id), ..Default::default() };
        store.complete_batch(id, &results, unix_now())?;
        Ok(())
    }

    fn audit(&self, store: &dyn Store, event: &Event) -> Result<()> {
        store.append_audit(&Audited::new(unix_now(), AUDIT_ACTOR, event).entry())?;
        Ok(())
    }

    /// Purges the order's data once `retention.purge_after_seconds` have passed since the signed order's
    /// `not_after`.
    /// Returns whether it purged.
    pub(crate) fn purge_if_due(&self, store: &dyn Store, now: i64) -> Result<bool> {
        let o = self.gov.order();
        let due =
            o.not_after().saturating_add(i64::try_from(self.config.retention.purge_after_seconds).unwrap_or(i64::MAX));
        if now < due {
            return Ok(false);
        }
        let r = store.purge_order(*o.order_id(), now)?;
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
pub fn process_pending(
    config: &ServerConfig,
    gov: &Governance,
    table: &ServerTable,
    store: &dyn Store,
) -> Result<ProcessReport> {
    let p = Processor::new(config, gov, table)?;
    p.run(store, usize::MAX, &AtomicBool::new(false), None, None)
}
