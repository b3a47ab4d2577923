//! The server's view of one order, as JSON lines (docs/LEAKAGE.md §9).
//!
//! One JSON object per line, tagged by the field `"kind"`:
//!
//! * `params` (first line, exactly once): the order's public parameters;
//! * `voucher` (one per voucher received): who sent it, when, in which batch, and what opening it gave;
//! * `account` (one per client state, after the vouchers): the threshold state of that client state.
//!
//! Decoding is strict: unknown fields, missing fields, wrong types, non-canonical hex, out-of-range field
//! elements and scalars, inconsistent outcomes and counts are errors that name the line (1-based).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::scalar;

/// A fixed-length byte string, written as lowercase hex in JSON (`hex16` = `Bytes<16>`, `hex32` = `Bytes<32>`).
/// Decoding accepts exactly `2·N` hex digits (either case).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Bytes<N> {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(2 * N);
        for b in &self.0 {
            s.push(nibble_char(b >> 4));
            s.push(nibble_char(b & 0x0f));
        }
        s
    }

    /// Parses exactly `2·N` hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        if s.len() != 2 * N {
            return Err(format!("expected {} hex digits, got {}", 2 * N, s.len()));
        }
        let mut out = [0u8; N];
        for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let (hi, lo) = match pair {
                [a, b] => (hex_value(*a), hex_value(*b)),
                _ => (None, None),
            };
            match (hi, lo) {
                (Some(h), Some(l)) => *o = (h << 4) | l,
                _ => return Err(format!("not a hex string: {s:?}")),
            }
        }
        Ok(Bytes(out))
    }
}

fn nibble_char(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of {} hex digits", 2 * N)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes<N>, E> {
                Bytes::from_hex(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V::<N>)
    }
}

/// 16 bytes (order id, client state id, batch id, voucher id).
pub type Hex16 = Bytes<16>;
/// 32 bytes (a scalar mod ℓ, canonical little-endian).
pub type Hex32 = Bytes<32>;

/// The `params` record: the order's public parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Order id.
    pub order: Hex16,
    /// Table epoch.
    pub epoch: u64,
    /// Threshold T (at least 2).
    pub threshold: u16,
    /// Synthetic cap s (the number of detectable-hash values per voucher).
    pub synthetic_cap: u16,
    /// Synthetic rate as a fraction of 2³².
    pub synthetic_rate: u32,
    /// Padded associated-data length.
    pub ad_len: u16,
    /// The length every voucher has (`VoucherLayout::voucher_len`).
    pub voucher_len: u64,
}

/// What opening a voucher gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// No position ciphertext opened (a non-matching or a null voucher).
    NonMatch,
    /// Exactly one position ciphertext opened and the payload decoded (a real match or a synthetic voucher).
    Opened,
    /// Malformed, or several ciphertexts opened, or the payload did not decode.
    Invalid,
    /// It opened, but its id repeats a voucher already stored (a replay); not counted again.
    Duplicate,
}

/// The payload of an opened voucher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opened {
    /// x′, the detectable-hash abscissa, in 𝔽_p (`< 2⁶⁴ − 59`).
    pub x_prime: u64,
    /// r₁..r_s in 𝔽_p (exactly `synthetic_cap` values).
    pub r: Vec<u64>,
    /// The Shamir abscissa x: a non-zero canonical scalar mod ℓ, 32 bytes little-endian.
    pub x: Hex32,
    /// The share f(x): a canonical scalar mod ℓ.
    pub share: Hex32,
    /// Which of the three (shuffled) position ciphertexts opened, `0..=2`.
    pub ct_index: u8,
}

/// The `voucher` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoucherRecord {
    /// The account's pseudonym.
    pub account: String,
    /// The client-state id the batch named.
    pub client_state: Hex16,
    /// The batch id.
    pub batch: Hex16,
    /// When the batch arrived (milliseconds, any fixed origin).
    pub arrival_ms: i64,
    /// Position of the voucher in its batch.
    pub index: u32,
    /// The voucher id.
    pub id: Hex16,
    /// The voucher's length in bytes.
    pub length: u64,
    /// What opening gave.
    pub outcome: Outcome,
    /// The payload: present for `opened`, optional for `duplicate`, `null` otherwise.
    pub opened: Option<Opened>,
}

/// Threshold state of a client state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdState {
    /// Detection found nothing.
    Below,
    /// Threshold crossed and revealed.
    Revealed,
    /// A dependency was found but reconstruction failed.
    Failed,
}

/// The `account` record: one per client state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRecord {
    /// The account's pseudonym.
    pub account: String,
    /// The client-state id.
    pub client_state: Hex16,
    /// Opened vouchers of this client state (outcome `opened`).
    pub opened: u64,
    /// Of those, the ones with distinct share abscissa x.
    pub distinct: u64,
    /// The threshold state after all vouchers.
    pub state: ThresholdState,
}

/// One line of a view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first line.
    Params(Params),
    /// A voucher.
    Voucher(VoucherRecord),
    /// A client state's threshold state.
    Account(AccountRecord),
}

/// The server's view of one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// The order's parameters.
    pub params: Params,
    /// The vouchers, in the order they were recorded.
    pub vouchers: Vec<VoucherRecord>,
    /// One record per client state.
    pub accounts: Vec<AccountRecord>,
}

/// The key of a client state: (account pseudonym, client-state id).
pub type StateKey = (String, Hex16);

/// An error reading or checking a view. `line` is 1-based; 0 means the view as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewError {
    /// A line is not a valid record (JSON syntax, unknown kind or field, wrong type, bad hex).
    Json {
        /// 1-based line number.
        line: usize,
        /// What serde_json said.
        message: String,
    },
    /// A record is well-formed but violates a rule of the format.
    Invalid {
        /// 1-based line number (0: the view as a whole).
        line: usize,
        /// Which rule.
        reason: String,
    },
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json { line, message } => write!(f, "line {line}: {message}"),
            Self::Invalid { line: 0, reason } => write!(f, "view: {reason}"),
            Self::Invalid { line, reason } => write!(f, "line {line}: {reason}"),
        }
    }
}

impl std::error::Error for ViewError {}

fn invalid(line: usize, reason: impl Into<String>) -> ViewError {
    ViewError::Invalid { line, reason: reason.into() }
}

impl View {
    /// Parses a view from JSON lines and validates it ([`View::validate`]). Empty lines are errors.
    pub fn from_jsonl(text: &str) -> Result<View, ViewError> {
        let mut params = None;
        let mut vouchers = Vec::new();
        let mut accounts = Vec::new();
        let mut lines = Vec::new(); // line number of each voucher, then each account record
        let mut account_lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() {
                return Err(invalid(line, "empty line"));
            }
            let record: Record =
                serde_json::from_str(raw).map_err(|e| ViewError::Json { line, message: e.to_string() })?;
            match record {
                Record::Params(p) => {
                    if line != 1 {
                        return Err(invalid(line, "a params record may only be the first line"));
                    }
                    params = Some(p);
                }
                _ if params.is_none() => return Err(invalid(line, "the first line must be the params record")),
                Record::Voucher(v) => {
                    vouchers.push(v);
                    lines.push(line);
                }
                Record::Account(a) => {
                    accounts.push(a);
                    account_lines.push(line);
                }
            }
        }
        let params = params.ok_or_else(|| invalid(1, "the view is empty: no params record"))?;
        let view = View { params, vouchers, accounts };
        view.validate_with_lines(&lines, &account_lines)?;
        Ok(view)
    }

    /// Writes the view as JSON lines (params, then vouchers, then accounts), each line ending in `\n`.
    pub fn to_jsonl(&self) -> Result<String, ViewError> {
        let mut out = String::new();
        let ser =
            |r: &Record| serde_json::to_string(r).map_err(|e| ViewError::Json { line: 0, message: e.to_string() });
        out.push_str(&ser(&Record::Params(self.params.clone()))?);
        out.push('\n');
        for v in &self.vouchers {
            out.push_str(&ser(&Record::Voucher(v.clone()))?);
            out.push('\n');
        }
        for a in &self.accounts {
            out.push_str(&ser(&Record::Account(a.clone()))?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Checks the rules of the format (errors name the line the record would have in [`View::to_jsonl`]):
    ///
    /// * `threshold` in `2..=1000`, `synthetic_cap <= 1024`;
    /// * an `opened` voucher carries a payload, a `duplicate` may, the others carry `null`;
    /// * a payload has exactly `synthetic_cap` values `r`, `x_prime` and every `r_i` below p = 2⁶⁴ − 59,
    ///   `x` a non-zero canonical scalar, `share` a canonical scalar, `ct_index <= 2`;
    /// * at most one account record per client state; its `opened` equals the number of `opened` vouchers of that
    ///   state in the view and `distinct <= opened`.
    pub fn validate(&self) -> Result<(), ViewError> {
        let lines: Vec<usize> = (0..self.vouchers.len()).map(|i| i + 2).collect();
        let account_lines: Vec<usize> = (0..self.accounts.len()).map(|i| i + 2 + self.vouchers.len()).collect();
        self.validate_with_lines(&lines, &account_lines)
    }

    fn validate_with_lines(&self, lines: &[usize], account_lines: &[usize]) -> Result<(), ViewError> {
        let p = &self.params;
        if !(2..=1000).contains(&p.threshold) {
            return Err(invalid(1, "threshold must be in 2..=1000"));
        }
        if p.synthetic_cap > 1024 {
            return Err(invalid(1, "synthetic_cap must be at most 1024"));
        }
        let s = usize::from(p.synthetic_cap);
        let mut opened_per_state: HashMap<StateKey, u64> = HashMap::new();
        for (v, &line) in self.vouchers.iter().zip(lines) {
            match (v.outcome, &v.opened) {
                (Outcome::Opened, None) => return Err(invalid(line, "an opened voucher needs its payload")),
                (Outcome::NonMatch | Outcome::Invalid, Some(_)) => {
                    return Err(invalid(line, "only an opened or duplicate voucher carries a payload"));
                }
                _ => {}
            }
            if let Some(o) = &v.opened {
                check_opened(o, s).map_err(|r| invalid(line, r))?;
            }
            if v.outcome == Outcome::Opened {
                *opened_per_state.entry((v.account.clone(), v.client_state)).or_default() += 1;
            }
        }
        let mut seen = HashSet::new();
        for (a, &line) in self.accounts.iter().zip(account_lines) {
            let key = (a.account.clone(), a.client_state);
            let in_view = opened_per_state.get(&key).copied().unwrap_or(0);
            if !seen.insert(key) {
                return Err(invalid(line, "a second account record for the same client state"));
            }
            if a.opened != in_view {
                return Err(invalid(
                    line,
                    format!("opened = {} but the view has {in_view} opened vouchers of this client state", a.opened),
                ));
            }
            if a.distinct > a.opened {
                return Err(invalid(line, "distinct exceeds opened"));
            }
        }
        Ok(())
    }

    /// The client states, each with the indices (into `vouchers`) of its vouchers of outcome `opened`, in view order;
    /// sorted by key. Client states without an opened voucher are included if they sent any voucher.
    pub fn opened_by_state(&self) -> Vec<(StateKey, Vec<usize>)> {
        let mut map: HashMap<StateKey, Vec<usize>> = HashMap::new();
        for (i, v) in self.vouchers.iter().enumerate() {
            let e = map.entry((v.account.clone(), v.client_state)).or_default();
            if v.outcome == Outcome::Opened {
                e.push(i);
            }
        }
        let mut out: Vec<_> = map.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The payloads of the vouchers of outcome `opened`, in view order.
    pub fn opened_payloads(&self) -> impl Iterator<Item = &Opened> {
        self.vouchers.iter().filter(|v| v.outcome == Outcome::Opened).filter_map(|v| v.opened.as_ref())
    }
}

fn check_opened(o: &Opened, s: usize) -> Result<(), String> {
    if o.r.len() != s {
        return Err(format!("r has {} values, synthetic_cap is {s}", o.r.len()));
    }
    if o.x_prime >= vouchsafe_threshold::field::P {
        return Err("x_prime is not below p = 2^64 - 59".into());
    }
    if let Some(i) = o.r.iter().position(|&v| v >= vouchsafe_threshold::field::P) {
        return Err(format!("r[{i}] is not below p = 2^64 - 59"));
    }
    if !scalar::is_canonical(&o.x.0) || o.x.0 == [0u8; 32] {
        return Err("x is not a non-zero canonical scalar".into());
    }
    if !scalar::is_canonical(&o.share.0) {
        return Err("share is not a canonical scalar".into());
    }
    if o.ct_index > 2 {
        return Err("ct_index must be 0, 1 or 2".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &str = r#"{"kind":"params","order":"00112233445566778899aabbccddeeff","epoch":7,"threshold":3,"synthetic_cap":2,"synthetic_rate":429496730,"ad_len":64,"voucher_len":445}"#;

    fn voucher(outcome: &str, opened: &str) -> String {
        format!(
            r#"{{"kind":"voucher","account":"a","client_state":"{z}","batch":"{z}","arrival_ms":5,"index":0,"id":"{z}","length":445,"outcome":"{outcome}","opened":{opened}}}"#,
            z = "00".repeat(16)
        )
    }

    fn payload(x: &str) -> String {
        format!(r#"{{"x_prime":5,"r":[1,2],"x":"{x}","share":"{}","ct_index":1}}"#, "00".repeat(32))
    }

    fn one() -> String {
        format!("01{}", "00".repeat(31))
    }

    #[test]
    fn round_trip() {
        let account = r#"{"kind":"account","account":"a","client_state":"00000000000000000000000000000000","opened":1,"distinct":1,"state":"below"}"#;
        let text =
            format!("{PARAMS}\n{}\n{}\n{account}\n", voucher("opened", &payload(&one())), voucher("non-match", "null"));
        let view = View::from_jsonl(&text).unwrap();
        assert_eq!(view.vouchers.len(), 2);
        assert_eq!(view.accounts.len(), 1);
        assert_eq!(View::from_jsonl(&view.to_jsonl().unwrap()).unwrap(), view);
        assert_eq!(view.to_jsonl().unwrap(), text);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: Vec<(String, usize, &str)> = vec![
            (String::new(), 1, "empty"),
            (voucher("non-match", "null"), 1, "first line"),
            (format!("{PARAMS}\n{PARAMS}"), 2, "first line"),
            (format!("{PARAMS}\n\n"), 2, "empty line"),
            (format!("{PARAMS}\n{{\"kind\":\"nope\"}}"), 2, "unknown variant"),
            (format!("{PARAMS}\n{}", voucher("opened", "null")), 2, "payload"),
            (format!("{PARAMS}\n{}", voucher("non-match", &payload(&one()))), 2, "payload"),
            (format!("{PARAMS}\n{}", voucher("opened", &payload(&"00".repeat(32)))), 2, "non-zero"),
            (format!("{PARAMS}\n{}", voucher("opened", &payload(&"ff".repeat(32)))), 2, "canonical"),
            (format!("{PARAMS}\n{}", voucher("maybe", "null")), 2, "unknown variant"),
            (format!("{PARAMS}\n{}", voucher("opened", &payload("0102"))), 2, "hex digits"),
            (format!("{PARAMS}\n{}", voucher("opened", &payload(&format!("zz{}", "00".repeat(31))))), 2, "hex"),
            (format!("{PARAMS}\n{}", voucher("opened", &payload(&one()).replace("[1,2]", "[1]"))), 2, "r has"),
            (
                format!(
                    "{PARAMS}\n{}",
                    voucher("opened", &payload(&one()).replace("[1,2]", "[1,18446744073709551557]"))
                ),
                2,
                "r[1]",
            ),
            (
                format!(
                    "{PARAMS}\n{}",
                    voucher("opened", &payload(&one()).replace("\"ct_index\":1", "\"ct_index\":3"))
                ),
                2,
                "ct_index",
            ),
            (
                format!(
                    "{PARAMS}\n{}",
                    voucher("opened", &payload(&one())).replace("\"index\":0", "\"index\":0,\"extra\":1")
                ),
                2,
                "unknown field",
            ),
            (
                format!("{PARAMS}\n{}", voucher("opened", &payload(&one())).replace("\"index\":0,", "")),
                2,
                "missing field",
            ),
            (
                format!(
                    "{PARAMS}\n{}\n{}",
                    voucher("opened", &payload(&one())),
                    r#"{"kind":"account","account":"a","client_state":"00000000000000000000000000000000","opened":2,"distinct":1,"state":"below"}"#
                ),
                3,
                "opened = 2",
            ),
            (PARAMS.replace("\"threshold\":3", "\"threshold\":1"), 1, "threshold"),
            (PARAMS.replace("\"epoch\":7", "\"epoch\":-7"), 1, "invalid value"),
        ];
        for (text, line, needle) in cases {
            let err = View::from_jsonl(&text).unwrap_err();
            let got_line = match &err {
                ViewError::Json { line, .. } | ViewError::Invalid { line, .. } => *line,
            };
            assert_eq!(got_line, line, "{err} for {text}");
            assert!(err.to_string().contains(needle), "{err:?} does not mention {needle:?}");
        }
    }
}
