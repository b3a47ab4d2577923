//! The provider's signed transparency report per order (and period): totals only, never an account, case or
//! voucher id. The report is a leaf of the transparency log, and what auditors and the public read.
//!
//! ## Encoding of a [`TransparencyReport`] (version 1)
//!
//! | bytes | field | rule |
//! |---|---|---|
//! | 1 | version | `0x01` |
//! | 4 + n | provider, `u32 LE length ‖ UTF-8` | name: 1..=64 bytes of `[A-Za-z0-9._@-]` |
//! | 16 | order_id | any |
//! | 8 | from, i64 LE | Unix seconds, inclusive |
//! | 8 | to, i64 LE | Unix seconds, exclusive; `from ≤ to` (`0, 0` = the whole order) |
//! | 4 | counter count c, u32 LE | 0..=64 |
//! | c × … | `name (u32 LE length ‖ ASCII) ‖ value (u64 LE)` | name 1..=64 bytes of `[a-z0-9_]`; strictly ascending by name (bytewise) |
//! | 4 | decision time count d, u32 LE | 0..=100 000 |
//! | d × 8 | seconds from case to final decision, u64 LE each | in the order given |
//! | 8 | created_at, i64 LE | Unix seconds |
//!
//! A signed transparency report is `0x01 ‖ signature (64) ‖ report encoding` (the report runs to the end), the
//! signature the provider key's Ed25519 signature over `"vouchsafe/v1/provider/transparency-report/sign" ‖ report
//! encoding`.

use crate::error::{Result, invalid};
use crate::keys::ProviderKey;
use crate::labels::{
    LABEL_TRANSPARENCY_SIGN, MAX_COUNTER_NAME, MAX_COUNTERS, MAX_DECISION_TIMES, SIGNED_OVERHEAD, VERSION,
};
use crate::wire::{Reader, check_name, count, put_bytes, put_count, string};

const COUNTERS_RULE: &str = "at most 64 counters";
const TIMES_RULE: &str = "at most 100000 decision times";

/// A provider's statistics for one order over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransparencyReport {
    /// The provider's name.
    pub provider: String,
    /// The order.
    pub order_id: [u8; 16],
    /// Start of the period, inclusive (0 with `to` 0: the whole order).
    pub from: i64,
    /// End of the period, exclusive.
    pub to: i64,
    /// Named totals, names 1..=64 bytes of `[a-z0-9_]`, strictly ascending, at most [`MAX_COUNTERS`].
    pub counters: Vec<(String, u64)>,
    /// Seconds from each case's creation to its final review decision, at most [`MAX_DECISION_TIMES`].
    pub decision_seconds: Vec<u64>,
    /// When the provider made the report, Unix seconds.
    pub created_at: i64,
}

fn check_counter_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_COUNTER_NAME {
        return Err(invalid("counter name", "must be 1..=64 bytes"));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(invalid("counter name", "may hold only a-z 0-9 _"));
    }
    Ok(())
}

impl TransparencyReport {
    /// Checks every rule of the format (see the module docs).
    pub fn validate(&self) -> Result<()> {
        check_name("provider", &self.provider)?;
        if self.from > self.to {
            return Err(invalid("period", "from must not be after to"));
        }
        if self.counters.len() > MAX_COUNTERS {
            return Err(invalid("counters", COUNTERS_RULE));
        }
        self.counters.iter().try_for_each(|(n, _)| check_counter_name(n))?;
        if !self.counters.windows(2).all(|w| matches!(w, [(a, _), (b, _)] if a.as_bytes() < b.as_bytes())) {
            return Err(invalid("counters", "not strictly ascending by name (unsorted or duplicate)"));
        }
        if self.decision_seconds.len() > MAX_DECISION_TIMES {
            return Err(invalid("decision times", TIMES_RULE));
        }
        Ok(())
    }

    /// The canonical encoding; refuses a report that [`TransparencyReport::validate`] refuses.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = Vec::with_capacity(
            1 + 4
                + self.provider.len()
                + 16
                + 16
                + 4
                + self.counters.len() * (4 + MAX_COUNTER_NAME + 8)
                + 4
                + self.decision_seconds.len() * 8
                + 8,
        );
        out.push(VERSION);
        put_bytes(&mut out, self.provider.as_bytes());
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.from.to_le_bytes());
        out.extend_from_slice(&self.to.to_le_bytes());
        put_count(&mut out, self.counters.len());
        for (name, value) in &self.counters {
            put_bytes(&mut out, name.as_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        put_count(&mut out, self.decision_seconds.len());
        for s in &self.decision_seconds {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.extend_from_slice(&self.created_at.to_le_bytes());
        Ok(out)
    }

    /// Decodes and validates, refusing truncation and trailing bytes.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new("transparency report", b);
        r.version(VERSION)?;
        let provider = string(&mut r, "provider")?;
        let order_id = r.array()?;
        let from = r.i64()?;
        let to = r.i64()?;
        let n = count(&mut r, "counters", MAX_COUNTERS, COUNTERS_RULE)?;
        let mut counters = Vec::with_capacity(n.min(r.remaining() / (4 + 1 + 8)));
        for _ in 0..n {
            let name = string(&mut r, "counter name")?;
            counters.push((name, r.u64()?));
        }
        let n = count(&mut r, "decision times", MAX_DECISION_TIMES, TIMES_RULE)?;
        let mut decision_seconds = Vec::with_capacity(n.min(r.remaining() / 8));
        for _ in 0..n {
            decision_seconds.push(r.u64()?);
        }
        let created_at = r.i64()?;
        r.finish()?;
        let report = TransparencyReport { provider, order_id, from, to, counters, decision_seconds, created_at };
        report.validate()?;
        Ok(report)
    }

    /// The value of the counter `name`, if the report has it.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes()))
            .ok()
            .and_then(|i| self.counters.get(i).map(|(_, v)| *v))
    }
}

/// A [`TransparencyReport`] with the provider's signature.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedTransparencyReport {
    report: Vec<u8>,
    signature: [u8; 64],
}

impl SignedTransparencyReport {
    pub(crate) fn from_parts(report: Vec<u8>, signature: [u8; 64]) -> Self {
        SignedTransparencyReport { report, signature }
    }

    /// `0x01 ‖ signature (64) ‖ report encoding`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNED_OVERHEAD + self.report.len());
        out.push(VERSION);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.report);
        out
    }

    /// Decodes (without checking the signature); the report must decode and validate.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new("signed transparency report", b);
        r.version(VERSION)?;
        let signature = r.array()?;
        let report = r.rest();
        TransparencyReport::decode(report)?;
        r.finish()?;
        Ok(SignedTransparencyReport { report: report.to_vec(), signature })
    }

    /// The report, unverified (to find which provider's key to verify with).
    pub fn report_unverified(&self) -> Result<TransparencyReport> {
        TransparencyReport::decode(&self.report)
    }

    /// Verifies the provider's signature (strictly) under `key` and returns the report
    /// ([`crate::Error::BadSignature`] if it does not verify).
    pub fn verify(&self, key: &ProviderKey) -> Result<TransparencyReport> {
        key.verify(LABEL_TRANSPARENCY_SIGN, &self.report, &self.signature)?;
        TransparencyReport::decode(&self.report)
    }
}
