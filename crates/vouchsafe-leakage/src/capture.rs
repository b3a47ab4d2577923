//! An in-memory capture of the server's view from the real protocol (feature `protocol`): a blinded table of random
//! indicators, a few accounts each sending vouchers for `n` images of which `M` are indicators, the real opener and
//! the real threshold step. Nothing here is a test-only path of the protocol crate: the capture uses its public API
//! only (`ServerTable::build`, the chunked download, `ClientSession::voucher`, `Opener::open_bytes`,
//! `threshold::try_reveal`).
//!
//! `ct_index` is [`OpenedVoucher::position`], which the opener reports.

use std::collections::HashSet;
use std::fmt;

use rand_core::CryptoRng;
use vouchsafe_protocol::client::{ClientSession, ClientState, VoucherKind};
use vouchsafe_protocol::table::{BlindingKey, ClientTable, ServerTable, TableConfig, TableDownload};
use vouchsafe_protocol::threshold::{ThresholdOutcome, try_reveal};
use vouchsafe_protocol::voucher::{OpenOutcome, OpenedVoucher, Opener, VoucherLayout};

use crate::view::{AccountRecord, Bytes, Hex16, Opened, Outcome, Params, ThresholdState, View, VoucherRecord};

/// One account of a [`Scenario`] (one client state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    /// The account pseudonym.
    pub name: String,
    /// Distinct images it vouchers (`n`).
    pub images: usize,
    /// Of those, how many are indicators (`M`, at most `images` and at most the table's indicator count).
    pub matches: usize,
    /// Repeats of earlier images (null vouchers), on top of `images`.
    pub repeats: usize,
}

/// What to capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Threshold T.
    pub threshold: u16,
    /// Synthetic cap s.
    pub synthetic_cap: u16,
    /// Synthetic rate as a fraction of 2³².
    pub synthetic_rate: u32,
    /// Padded associated-data length.
    pub ad_len: u16,
    /// Indicators in the table (random 35-byte items).
    pub indicators: usize,
    /// The accounts.
    pub accounts: Vec<AccountSpec>,
    /// Vouchers per batch (the last batch of an account may be shorter).
    pub batch_size: usize,
    /// Mean time between two batches of an account, in ms (each gap is uniform on `[gap/2, 3·gap/2)`).
    pub batch_gap_ms: u32,
}

impl Scenario {
    /// `accounts` accounts `acct-0`, … each with `images` images of which `matches` match, no repeats; T, s, the
    /// rate as a probability; 64-byte ad; batches of 20 every minute; as many indicators as the largest `matches`
    /// (at least 16).
    pub fn uniform(accounts: usize, images: usize, matches: usize, threshold: u16, cap: u16, rate: f64) -> Self {
        let rate = (rate.clamp(0.0, 1.0) * 4_294_967_296.0).min(4_294_967_295.0) as u32;
        Scenario {
            threshold,
            synthetic_cap: cap,
            synthetic_rate: rate,
            ad_len: 64,
            indicators: matches.max(16),
            accounts: (0..accounts)
                .map(|i| AccountSpec { name: format!("acct-{i}"), images, matches, repeats: 0 })
                .collect(),
            batch_size: 20,
            batch_gap_ms: 60_000,
        }
    }
}

/// What the device made for a voucher, and what opening gave: the ground truth the server does not see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    /// A real voucher for a matching image (it opened).
    Real,
    /// A real voucher for a non-matching image.
    NonMatch,
    /// A synthetic voucher.
    Synthetic,
    /// A null voucher (a repeat).
    Null,
}

/// A captured view with the ground truth (`truth[i]` belongs to `view.vouchers[i]`).
#[derive(Clone, Debug)]
pub struct Capture {
    /// The server's view.
    pub view: View,
    /// The ground truth per voucher.
    pub truth: Vec<Truth>,
}

/// Why a capture failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureError {
    /// The scenario is inconsistent (e.g. more matches than images or than indicators).
    Scenario(&'static str),
    /// The protocol refused something (its error, as text).
    Protocol(String),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scenario(why) => write!(f, "invalid scenario: {why}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

fn proto(e: vouchsafe_protocol::Error) -> CaptureError {
    CaptureError::Protocol(e.to_string())
}

fn random_bytes<const N: usize, R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

/// Uniform in `0..n` (n > 0) by rejection.
fn below<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let v = rng.next_u64();
        if v < zone {
            return (v % n) as usize;
        }
    }
}

fn shuffle<T, R: CryptoRng + ?Sized>(v: &mut [T], rng: &mut R) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i + 1);
        v.swap(i, j);
    }
}

fn download(table: &ServerTable) -> Result<ClientTable, CaptureError> {
    let mut d = TableDownload::new(table.manifest());
    for i in 0..table.chunk_count() {
        let chunk = table.chunk(i).ok_or(CaptureError::Scenario("chunk index out of range"))?;
        d.add_chunk(&chunk.encode()).map_err(proto)?;
    }
    d.finish().map_err(proto)
}

/// The view's record of an opened voucher: x′, r, the share and the index of the ciphertext that opened. `None`
/// for a value decoded from storage, which does not know that index.
pub fn opened_record(o: &OpenedVoucher) -> Option<Opened> {
    Some(Opened {
        x_prime: o.x_prime().value(),
        r: o.r().iter().map(|v| v.value()).collect(),
        x: Bytes(o.share().x.to_bytes()),
        share: Bytes(o.share().y.to_bytes()),
        ct_index: o.position()?,
    })
}

/// Runs the scenario through the real protocol and records the server's view and the ground truth.
pub fn protocol_capture<R: CryptoRng + ?Sized>(scenario: &Scenario, rng: &mut R) -> Result<Capture, CaptureError> {
    let max_matches = scenario.accounts.iter().map(|a| a.matches).max().unwrap_or(0);
    if max_matches > scenario.indicators {
        return Err(CaptureError::Scenario("an account has more matches than the table has indicators"));
    }
    if scenario.accounts.iter().any(|a| a.matches > a.images) {
        return Err(CaptureError::Scenario("an account has more matches than images"));
    }
    if scenario.accounts.iter().any(|a| a.repeats > 0 && a.images == 0) {
        return Err(CaptureError::Scenario("repeats need at least one image"));
    }
    if scenario.batch_size == 0 {
        return Err(CaptureError::Scenario("batch_size must be positive"));
    }
    let cfg = TableConfig {
        epoch: 1,
        order_id: random_bytes(rng),
        threshold: scenario.threshold,
        synthetic_cap: scenario.synthetic_cap,
        synthetic_rate: scenario.synthetic_rate,
        ad_len: scenario.ad_len,
        chunk_slots: 256,
    };
    let indicators: Vec<Vec<u8>> = (0..scenario.indicators).map(|_| random_bytes::<35, R>(rng).to_vec()).collect();
    let key = BlindingKey::random(rng);
    let table = ServerTable::build(&cfg, key.clone(), indicators.clone(), rng).map_err(proto)?;
    let opener = Opener::new(key, table.params().clone()).map_err(proto)?;
    let client = download(&table)?;
    let voucher_len = VoucherLayout::of(table.params()).voucher_len() as u64;
    let params = Params {
        order: Bytes(cfg.order_id),
        epoch: cfg.epoch,
        threshold: cfg.threshold,
        synthetic_cap: cfg.synthetic_cap,
        synthetic_rate: cfg.synthetic_rate,
        ad_len: cfg.ad_len,
        voucher_len,
    };
    let mut vouchers = Vec::new();
    let mut truth = Vec::new();
    let mut accounts = Vec::new();
    let gap = i64::from(scenario.batch_gap_ms.max(2));
    for (k, spec) in scenario.accounts.iter().enumerate() {
        let state = ClientState::new(client.params(), rng);
        let state_id: Hex16 = Bytes(state.state_id().map_err(proto)?);
        let mut session = ClientSession::new(state).map_err(proto)?;
        // The images: M distinct indicators, the rest random non-indicators, in random order; repeats of earlier
        // images inserted at random later positions.
        let mut pick: Vec<usize> = (0..indicators.len()).collect();
        shuffle(&mut pick, rng);
        let mut images: Vec<Vec<u8>> =
            pick.iter().take(spec.matches).filter_map(|&i| indicators.get(i).cloned()).collect();
        while images.len() < spec.images {
            images.push(random_bytes::<35, R>(rng).to_vec());
        }
        shuffle(&mut images, rng);
        for _ in 0..spec.repeats {
            let at = 1 + below(rng, images.len());
            let from = below(rng, at.min(images.len()));
            let copy = images.get(from).cloned().ok_or(CaptureError::Scenario("repeat source out of range"))?;
            images.insert(at, copy);
        }
        let mut t = (k as i64) * 1_000 + below(rng, 1_000) as i64;
        let mut opened_vouchers = Vec::new();
        for batch in images.chunks(scenario.batch_size) {
            let batch_id: Hex16 = Bytes(random_bytes(rng));
            for (index, y) in batch.iter().enumerate() {
                let made = session.voucher(&client, y, b"capture", rng).map_err(proto)?;
                let bytes = made.voucher.encode();
                let (outcome, opened, fact) = match opener.open_bytes(&bytes) {
                    OpenOutcome::NonMatch => {
                        let fact = if made.kind == VoucherKind::Null { Truth::Null } else { Truth::NonMatch };
                        (Outcome::NonMatch, None, fact)
                    }
                    OpenOutcome::Opened(o) => {
                        let record = opened_record(&o).ok_or(CaptureError::Protocol(
                            "the opener did not report which ciphertext opened".into(),
                        ))?;
                        opened_vouchers.push(o);
                        let fact = if made.kind == VoucherKind::Synthetic { Truth::Synthetic } else { Truth::Real };
                        (Outcome::Opened, Some(record), fact)
                    }
                    OpenOutcome::Invalid(_) => (Outcome::Invalid, None, Truth::NonMatch),
                };
                vouchers.push(VoucherRecord {
                    account: spec.name.clone(),
                    client_state: state_id,
                    batch: batch_id,
                    arrival_ms: t,
                    index: u32::try_from(index).map_err(|_| CaptureError::Scenario("batch too large"))?,
                    id: Bytes(made.voucher.id),
                    length: bytes.len() as u64,
                    outcome,
                    opened,
                });
                truth.push(fact);
            }
            t += gap / 2 + below(rng, usize::try_from(gap).unwrap_or(2)) as i64;
        }
        let distinct = opened_vouchers.iter().map(|o| o.share().x.to_bytes()).collect::<HashSet<_>>().len() as u64;
        let state = match try_reveal(&cfg.order_id, cfg.threshold, cfg.synthetic_cap, &opened_vouchers) {
            Ok(ThresholdOutcome::Below { .. }) => ThresholdState::Below,
            Ok(ThresholdOutcome::Revealed(_)) => ThresholdState::Revealed,
            Err(_) => ThresholdState::Failed,
        };
        accounts.push(AccountRecord {
            account: spec.name.clone(),
            client_state: state_id,
            opened: opened_vouchers.len() as u64,
            distinct,
            state,
        });
    }
    let view = View { params, vouchers, accounts };
    view.validate().map_err(|e| CaptureError::Protocol(format!("the capture is not a valid view: {e}")))?;
    Ok(Capture { view, truth })
}

/// The server's view of the scenario (the capture without the ground truth).
pub fn protocol_view<R: CryptoRng + ?Sized>(scenario: &Scenario, rng: &mut R) -> Result<View, CaptureError> {
    Ok(protocol_capture(scenario, rng)?.view)
}
