//! The capture log of a running matching server, and its assembly into a [`View`] (docs/LEAKAGE.md §9).
//!
//! With `worker.capture` set, the server's worker appends to a JSON-lines file, after each round has committed:
//!
//! * `params`: the order's public parameters ([`Params`]), whenever the worker starts a round under parameters other
//!   than the ones it last wrote (the first round after the server started, a new epoch);
//! * `voucher`: one [`VoucherRecord`] per voucher of the round's batches, as the opener classified it (`opened`,
//!   `non-match` or `invalid`; the log never says `duplicate`: see below). A voucher belongs to the last `params`
//!   line before it;
//! * `state`: one [`StateRecord`] per client state whose threshold step ran in the round, with the state it reached.
//!
//! [`assemble`] turns such a log into the view of one order: the vouchers of every `params` group of that order and
//! epoch (a restart writes the same parameters again), an opened voucher whose (account, id) repeats an earlier
//! opened one of the view marked `duplicate` (the store counts it once; it keeps its payload), and one
//! [`AccountRecord`] per client state that sent a voucher: its `opened` and distinct-`x` counts from the view and
//! the last state the log gives it (`below` without one).
//!
//! A capture holds what the server decrypts below the threshold: it is as sensitive as the store's opened vouchers,
//! and it also keeps what the store forgets (each voucher's id, arrival and outcome). It is meant for an order run
//! to measure leakage, not for production (docs/OPERATIONS.md).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::view::{
    AccountRecord, Hex16, Hex32, Outcome, Params, StateKey, ThresholdState, View, ViewError, VoucherRecord,
};

/// A client state's threshold state after one of its threshold steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRecord {
    /// The account's pseudonym.
    pub account: String,
    /// The client-state id.
    pub client_state: Hex16,
    /// The state the step reached.
    pub state: ThresholdState,
}

/// One line of a server's capture log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveRecord {
    /// Parameters the following records were captured under.
    Params(Params),
    /// A voucher, as the opener classified it.
    Voucher(VoucherRecord),
    /// A client state's threshold state after a step.
    State(StateRecord),
}

impl LiveRecord {
    /// The record as one JSON line, without the line break.
    pub fn to_line(&self) -> Result<String, ViewError> {
        serde_json::to_string(self).map_err(|e| ViewError::Json { line: 0, message: e.to_string() })
    }
}

/// Which order of a capture log to assemble.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Select {
    /// The order id; `None`: the log must hold exactly one order.
    pub order: Option<Hex16>,
    /// The epoch; `None`: the order must have exactly one epoch in the log.
    pub epoch: Option<u64>,
}

fn invalid(line: usize, reason: impl Into<String>) -> ViewError {
    ViewError::Invalid { line, reason: reason.into() }
}

/// Assembles the [`View`] of one order and epoch from a capture log (see the module documentation). Errors name the
/// log's line (1-based): a line that is not a record, a record before the first `params`, two different parameter
/// sets for one order and epoch, a selection that matches nothing or more than one order / epoch, and whatever
/// [`View::validate`] refuses.
pub fn assemble(text: &str, select: Select) -> Result<View, ViewError> {
    let mut params: Option<(usize, Params)> = None;
    let mut chosen: Option<Params> = None;
    let mut seen: Vec<(Hex16, u64)> = Vec::new();
    let mut vouchers: Vec<VoucherRecord> = Vec::new();
    let mut states: HashMap<StateKey, ThresholdState> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let record: LiveRecord =
            serde_json::from_str(raw).map_err(|e| ViewError::Json { line, message: e.to_string() })?;
        let current = match (&record, &params) {
            (LiveRecord::Params(p), _) => {
                let key = (p.order, p.epoch);
                if !seen.contains(&key) {
                    seen.push(key);
                }
                params = Some((line, p.clone()));
                continue;
            }
            (_, None) => return Err(invalid(line, "a record before the first params record")),
            (_, Some((_, p))) => p,
        };
        let wanted = select.order.is_none_or(|o| o == current.order) && select.epoch.is_none_or(|e| e == current.epoch);
        if !wanted {
            continue;
        }
        match &chosen {
            None => chosen = Some(current.clone()),
            Some(c) if (c.order, c.epoch) != (current.order, current.epoch) => {
                return Err(invalid(
                    line,
                    format!(
                        "the capture holds more than one order or epoch ({}/{} and {}/{}); pick one with the order \
                         and epoch selection",
                        c.order.to_hex(),
                        c.epoch,
                        current.order.to_hex(),
                        current.epoch
                    ),
                ));
            }
            Some(c) if c != current => {
                let at = params.as_ref().map_or(line, |(l, _)| *l);
                return Err(invalid(at, "other parameters for an order and epoch already captured"));
            }
            Some(_) => {}
        }
        match record {
            LiveRecord::Voucher(v) => vouchers.push(v),
            LiveRecord::State(s) => {
                states.insert((s.account, s.client_state), s.state);
            }
            LiveRecord::Params(_) => {}
        }
    }
    let params = match chosen {
        Some(p) => p,
        None => {
            let list: Vec<String> = seen.iter().map(|(o, e)| format!("{}/{e}", o.to_hex())).collect();
            let what = match (select.order, select.epoch) {
                (None, None) => "the capture holds no voucher".to_owned(),
                _ => format!("no voucher of the selected order and epoch; the capture has {}", list.join(", ")),
            };
            return Err(invalid(0, what));
        }
    };
    // Replays: an opened voucher whose (account, id) was already opened in the view is a duplicate.
    let mut opened_ids: HashSet<(String, Hex16)> = HashSet::new();
    for v in &mut vouchers {
        if v.outcome == Outcome::Opened && !opened_ids.insert((v.account.clone(), v.id)) {
            v.outcome = Outcome::Duplicate;
        }
    }
    let mut order: Vec<StateKey> = Vec::new();
    let mut counts: HashMap<StateKey, (u64, HashSet<Hex32>)> = HashMap::new();
    for v in &vouchers {
        let key = (v.account.clone(), v.client_state);
        let e = counts.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (0, HashSet::new())
        });
        if v.outcome == Outcome::Opened {
            e.0 += 1;
            if let Some(o) = &v.opened {
                e.1.insert(o.x);
            }
        }
    }
    let accounts = order
        .into_iter()
        .map(|key| {
            let (opened, distinct) = counts.get(&key).map_or((0, 0), |(n, xs)| (*n, xs.len() as u64));
            let state = states.get(&key).copied().unwrap_or(ThresholdState::Below);
            AccountRecord { account: key.0, client_state: key.1, opened, distinct, state }
        })
        .collect();
    let view = View { params, vouchers, accounts };
    view.validate()?;
    Ok(view)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use crate::view::{Bytes, Opened};

    fn params(order: u8, epoch: u64) -> Params {
        Params {
            order: Bytes([order; 16]),
            epoch,
            threshold: 3,
            synthetic_cap: 1,
            synthetic_rate: 1 << 30,
            ad_len: 64,
            voucher_len: 500,
        }
    }

    fn voucher(account: &str, id: u8, x: u8) -> VoucherRecord {
        let opened = (x > 0).then(|| Opened {
            x_prime: 7,
            r: vec![9],
            x: Bytes([x; 32].map(|b| b & 0x0f)),
            share: Bytes([1; 32]),
            ct_index: 1,
        });
        VoucherRecord {
            account: account.into(),
            client_state: Bytes([0; 16]),
            batch: Bytes([5; 16]),
            arrival_ms: 1_000,
            index: 0,
            id: Bytes([id; 16]),
            length: 500,
            outcome: if x > 0 { Outcome::Opened } else { Outcome::NonMatch },
            opened,
        }
    }

    fn state(account: &str, state: ThresholdState) -> LiveRecord {
        LiveRecord::State(StateRecord { account: account.into(), client_state: Bytes([0; 16]), state })
    }

    fn log(records: &[LiveRecord]) -> String {
        records.iter().map(|r| r.to_line().unwrap() + "\n").collect()
    }

    #[test]
    fn assembles_counts_duplicates_and_states() {
        let text = log(&[
            LiveRecord::Params(params(1, 1)),
            LiveRecord::Voucher(voucher("a", 1, 2)),
            LiveRecord::Voucher(voucher("a", 2, 0)),
            LiveRecord::Voucher(voucher("b", 3, 2)),
            state("a", ThresholdState::Below),
            // A restart writes the same parameters again; a replay of voucher 1 follows.
            LiveRecord::Params(params(1, 1)),
            LiveRecord::Voucher(voucher("a", 1, 2)),
            LiveRecord::Voucher(voucher("a", 4, 3)),
            state("a", ThresholdState::Failed),
        ]);
        let view = assemble(&text, Select::default()).unwrap();
        assert_eq!(view.vouchers.len(), 5);
        assert_eq!(view.vouchers[3].outcome, Outcome::Duplicate);
        assert_eq!(view.accounts.len(), 2);
        let a = &view.accounts[0];
        assert_eq!((a.account.as_str(), a.opened, a.distinct, a.state), ("a", 2, 2, ThresholdState::Failed));
        let b = &view.accounts[1];
        assert_eq!((b.account.as_str(), b.opened, b.distinct, b.state), ("b", 1, 1, ThresholdState::Below));
        // The assembled view is a valid view file.
        assert_eq!(View::from_jsonl(&view.to_jsonl().unwrap()).unwrap(), view);
    }

    #[test]
    fn two_orders_need_a_selection_and_errors_name_the_line() {
        let text = log(&[
            LiveRecord::Params(params(1, 1)),
            LiveRecord::Voucher(voucher("a", 1, 2)),
            LiveRecord::Params(params(2, 1)),
            LiveRecord::Voucher(voucher("a", 2, 0)),
        ]);
        let e = assemble(&text, Select::default()).unwrap_err();
        assert!(matches!(&e, ViewError::Invalid { line: 4, reason } if reason.contains("more than one order")), "{e}");
        let one = assemble(&text, Select { order: Some(Bytes([2; 16])), epoch: None }).unwrap();
        assert_eq!((one.vouchers.len(), one.params.order), (1, Bytes([2; 16])));
        let none = assemble(&text, Select { order: Some(Bytes([3; 16])), epoch: None }).unwrap_err();
        assert!(none.to_string().contains("the capture has"), "{none}");

        let mut other = params(1, 1);
        other.threshold = 4;
        let text = log(&[
            LiveRecord::Params(params(1, 1)),
            LiveRecord::Voucher(voucher("a", 1, 2)),
            LiveRecord::Params(other),
            LiveRecord::Voucher(voucher("a", 2, 0)),
        ]);
        let e = assemble(&text, Select::default()).unwrap_err();
        assert!(matches!(&e, ViewError::Invalid { line: 3, .. }), "{e}");

        let e = assemble("{\"kind\":\"voucher\"}\n", Select::default()).unwrap_err();
        assert!(matches!(e, ViewError::Json { line: 1, .. }), "{e}");
        let e = assemble(&log(&[LiveRecord::Voucher(voucher("a", 1, 0))]), Select::default()).unwrap_err();
        assert!(e.to_string().contains("before the first params"), "{e}");
        assert!(assemble("", Select::default()).unwrap_err().to_string().contains("no voucher"));
    }
}
