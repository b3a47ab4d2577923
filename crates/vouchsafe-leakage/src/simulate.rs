//! The ideal simulator: from a view, a view drawn from the stated leakage function only (docs/LEAKAGE.md §2, §9).
//!
//! Kept from the input (the leakage function): the params record; per voucher its account, client state, batch,
//! arrival time, index in the batch, length and outcome; per client state its opened count and threshold state.
//! Everything else is drawn afresh from the ideal distribution, deterministically from a ChaCha20 seed:
//!
//! * `id`: 16 uniform bytes (a `duplicate` voucher whose id repeats an earlier voucher of the input gets that
//!   voucher's new id: the repeat is what the outcome says);
//! * `x`: uniform non-zero scalar mod ℓ; `share`: uniform scalar mod ℓ (canonical little-endian);
//! * `x_prime`, `r₁..r_s`: uniform in 𝔽_p;
//! * `ct_index`: uniform in `0..3`;
//! * a `duplicate` voucher with a payload repeats the new payload of the voucher it duplicates (a fresh one if
//!   there is none);
//! * `distinct` of an account record: the number of distinct new `x` (so `opened` with overwhelming probability).
//!
//! A client state that crossed the threshold is simulated the same way, so its simulated columns show no relation:
//! the simulator is the ideal *below* the threshold, where the leakage function is the whole of the server's view.

use std::collections::{HashMap, HashSet};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::scalar::{random_fp, random_nonzero_scalar, random_scalar};
use crate::view::{AccountRecord, Bytes, Hex16, Opened, Outcome, StateKey, View, ViewError, VoucherRecord};

/// A ChaCha20 generator from a 64-bit seed (the seed little-endian in the first 8 bytes of the key, zeros after,
/// as the protocol's known-answer vectors do).
pub fn seeded_rng(seed: u64) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    if let Some(head) = key.get_mut(..8) {
        head.copy_from_slice(&seed.to_le_bytes());
    }
    ChaCha20Rng::from_seed(key)
}

/// One ideal payload for synthetic cap `s`.
pub fn ideal_opened<R: Rng + ?Sized>(s: usize, rng: &mut R) -> Opened {
    let mut id_byte = [0u8; 1];
    let x_prime = random_fp(rng);
    let r = (0..s).map(|_| random_fp(rng)).collect();
    let x = Bytes(random_nonzero_scalar(rng));
    let share = Bytes(random_scalar(rng));
    // ct_index uniform in 0..3 by rejection on a byte's low two bits.
    let ct_index = loop {
        rng.fill_bytes(&mut id_byte);
        let [b] = id_byte;
        let v = b & 3;
        if v < 3 {
            break v;
        }
    };
    Opened { x_prime, r, x, share, ct_index }
}

fn random_id<R: Rng + ?Sized>(rng: &mut R) -> Hex16 {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    Bytes(b)
}

/// [`simulate_with`] with [`seeded_rng`]`(seed)`.
pub fn simulate(view: &View, seed: u64) -> Result<View, ViewError> {
    simulate_with(view, &mut seeded_rng(seed))
}

/// The simulated view (see the module documentation). The input is validated first.
pub fn simulate_with<R: Rng + ?Sized>(view: &View, rng: &mut R) -> Result<View, ViewError> {
    view.validate()?;
    let s = usize::from(view.params.synthetic_cap);
    let mut new_id: HashMap<Hex16, Hex16> = HashMap::new();
    let mut new_payload: HashMap<Hex16, Opened> = HashMap::new();
    let mut vouchers = Vec::with_capacity(view.vouchers.len());
    for v in &view.vouchers {
        let original = (v.outcome == Outcome::Duplicate).then(|| new_id.get(&v.id).copied()).flatten();
        let id = original.unwrap_or_else(|| random_id(rng));
        new_id.entry(v.id).or_insert(id);
        let opened = match (v.outcome, &v.opened) {
            (Outcome::Opened, _) => {
                let o = ideal_opened(s, rng);
                new_payload.entry(v.id).or_insert_with(|| o.clone());
                Some(o)
            }
            (Outcome::Duplicate, Some(_)) => {
                Some(new_payload.get(&v.id).cloned().unwrap_or_else(|| ideal_opened(s, rng)))
            }
            _ => None,
        };
        vouchers.push(VoucherRecord {
            account: v.account.clone(),
            client_state: v.client_state,
            batch: v.batch,
            arrival_ms: v.arrival_ms,
            index: v.index,
            id,
            length: v.length,
            outcome: v.outcome,
            opened,
        });
    }
    let mut xs: HashMap<StateKey, HashSet<[u8; 32]>> = HashMap::new();
    for v in &vouchers {
        if let (Outcome::Opened, Some(o)) = (v.outcome, &v.opened) {
            xs.entry((v.account.clone(), v.client_state)).or_default().insert(o.x.0);
        }
    }
    let accounts = view
        .accounts
        .iter()
        .map(|a| AccountRecord {
            account: a.account.clone(),
            client_state: a.client_state,
            opened: a.opened,
            distinct: xs.get(&(a.account.clone(), a.client_state)).map_or(0, |x| x.len() as u64),
            state: a.state,
        })
        .collect();
    let out = View { params: view.params.clone(), vouchers, accounts };
    out.validate()?;
    Ok(out)
}

/// Whether two views agree on the leakage function (everything the simulator keeps). `simulate(v)` always agrees
/// with `v`.
pub fn same_leakage(a: &View, b: &View) -> bool {
    let meta =
        |v: &VoucherRecord| (v.account.clone(), v.client_state, v.batch, v.arrival_ms, v.index, v.length, v.outcome);
    let acct = |a: &AccountRecord| (a.account.clone(), a.client_state, a.opened, a.state);
    a.params == b.params
        && a.vouchers.len() == b.vouchers.len()
        && a.vouchers.iter().zip(&b.vouchers).all(|(x, y)| meta(x) == meta(y))
        && a.accounts.len() == b.accounts.len()
        && a.accounts.iter().zip(&b.accounts).all(|(x, y)| acct(x) == acct(y))
}

/// The shape of an ideal view made from nothing ([`ideal_view`]): every voucher opens independently with
/// probability `open_rate`, and every payload and id is ideal.
#[derive(Clone, Debug, PartialEq)]
pub struct IdealSpec {
    /// The params record.
    pub params: crate::view::Params,
    /// Accounts (one client state each), named `acct-0`, ….
    pub accounts: usize,
    /// Vouchers per account.
    pub vouchers: usize,
    /// Probability that a voucher opened.
    pub open_rate: f64,
    /// Vouchers per batch.
    pub batch_size: usize,
}

/// An ideal view of the given shape: a draw from the null hypothesis of every distinguisher.
pub fn ideal_view<R: Rng + ?Sized>(spec: &IdealSpec, rng: &mut R) -> Result<View, ViewError> {
    let s = usize::from(spec.params.synthetic_cap);
    let threshold = (spec.open_rate.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;
    let mut vouchers = Vec::new();
    let mut accounts = Vec::new();
    for a in 0..spec.accounts {
        let name = format!("acct-{a}");
        let state = random_id(rng);
        let mut t = (a as i64) * 997;
        let mut opened = 0u64;
        let mut batch = random_id(rng);
        for i in 0..spec.vouchers {
            let index = i % spec.batch_size.max(1);
            if index == 0 && i > 0 {
                batch = random_id(rng);
                t += 30_000 + i64::from(rng.next_u32() % 60_000);
            }
            let open = u64::from(rng.next_u32()) < threshold;
            opened += u64::from(open);
            vouchers.push(VoucherRecord {
                account: name.clone(),
                client_state: state,
                batch,
                arrival_ms: t,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                id: random_id(rng),
                length: spec.params.voucher_len,
                outcome: if open { Outcome::Opened } else { Outcome::NonMatch },
                opened: open.then(|| ideal_opened(s, rng)),
            });
        }
        accounts.push(AccountRecord {
            account: name,
            client_state: state,
            opened,
            distinct: opened,
            state: crate::view::ThresholdState::Below,
        });
    }
    let view = View { params: spec.params.clone(), vouchers, accounts };
    view.validate()?;
    Ok(view)
}
