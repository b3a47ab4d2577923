//! Planted leaks: fixtures that rewrite a view so that it leaks in a known way, to measure the power of the
//! distinguishers ([`crate::distinguish`]). They rewrite views only; the protocol has no test-only path.
//!
//! Each fixture takes indices into `view.vouchers` (the caller chooses them, e.g. from a capture's ground truth),
//! touches only vouchers of outcome `opened` among them, and recomputes the account records' `opened` and
//! `distinct` counts so that the result is a valid view.

use std::collections::{HashMap, HashSet};

use vouchsafe_threshold::field::P;

use crate::view::{Outcome, StateKey, ThresholdState, View};

/// Recomputes every account record's `opened` and `distinct` from the vouchers.
pub fn recount(view: &mut View) {
    let mut opened: HashMap<StateKey, (u64, HashSet<[u8; 32]>)> = HashMap::new();
    for v in &view.vouchers {
        if let (Outcome::Opened, Some(o)) = (v.outcome, &v.opened) {
            let e = opened.entry((v.account.clone(), v.client_state)).or_default();
            e.0 += 1;
            e.1.insert(o.x.0);
        }
    }
    for a in &mut view.accounts {
        let (n, xs) = opened.get(&(a.account.clone(), a.client_state)).map_or((0, 0), |(n, x)| (*n, x.len() as u64));
        a.opened = n;
        a.distinct = xs;
    }
}

/// A biased generator: the top byte of the share of each target is zero (so the share's bits 248..252 are 0).
pub fn zero_top_byte_share(view: &mut View, targets: &[usize]) {
    for &i in targets {
        if let Some(top) = view.vouchers.get_mut(i).and_then(|v| v.opened.as_mut()).and_then(|o| o.share.0.last_mut()) {
            *top = 0;
        }
    }
}

/// A relation inside the column: `r₁ = x′ + 1 (mod p)` for each target.
pub fn r1_is_x_prime_plus_one(view: &mut View, targets: &[usize]) {
    for &i in targets {
        if let Some(o) = view.vouchers.get_mut(i).and_then(|v| v.opened.as_mut()) {
            let next = if o.x_prime + 1 >= P { 0 } else { o.x_prime + 1 };
            if let Some(r1) = o.r.first_mut() {
                *r1 = next;
            }
        }
    }
}

/// A repeated Shamir abscissa: voucher `to` gets the `x` of voucher `from` (both must be opened).
pub fn repeat_x(view: &mut View, from: usize, to: usize) {
    let x = view.vouchers.get(from).and_then(|v| v.opened.as_ref()).map(|o| o.x);
    if let (Some(x), Some(o)) = (x, view.vouchers.get_mut(to).and_then(|v| v.opened.as_mut())) {
        o.x = x;
    }
    recount(view);
}

/// Keeps, among the opened vouchers of `account`, only those in `keep`; every other opened voucher of that account
/// becomes a non-match (payload dropped), and the account's threshold state is set to `state`. With `keep` = T
/// real vouchers of one client state this is "an account with exactly T real matches and no synthetics".
pub fn keep_opened(view: &mut View, account: &str, keep: &[usize], state: ThresholdState) {
    let keep: HashSet<usize> = keep.iter().copied().collect();
    for (i, v) in view.vouchers.iter_mut().enumerate() {
        if v.account == account && v.outcome == Outcome::Opened && !keep.contains(&i) {
            v.outcome = Outcome::NonMatch;
            v.opened = None;
        }
    }
    for a in &mut view.accounts {
        if a.account == account {
            a.state = state;
        }
    }
    recount(view);
}
