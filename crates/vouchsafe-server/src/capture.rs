//! The leakage capture (`worker.capture`, docs/LEAKAGE.md §9): the server's own view of what it processes, appended
//! as JSON lines ([`vouchsafe_leakage::live`]) after each round has committed, for `vouchsafe leakage capture
//! --from` to assemble into a view that the toolkit's tests can read.
//!
//! Off by default. The file holds what the server decrypts below the threshold (shares, detectable-hash values) and
//! what the store forgets (every voucher's id, arrival and outcome), so it is created with mode 0600 and meant for
//! an order run to measure leakage. It never holds a voucher's bytes, an rkey, an `adct`, a token or a hash.
//!
//! A capture is a measurement, not the record: a write that fails is logged once and the capture stops (nothing
//! more is written; the file ends at or inside that round), and the round it belonged to stands. A later start
//! first ends a line left unfinished, so the damaged line is the only one `assemble` refuses.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use vouchsafe_leakage::live::{LiveRecord, StateRecord};
use vouchsafe_leakage::view::{Bytes, Opened, Outcome, Params, ThresholdState, VoucherRecord};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::voucher::{OpenOutcome, Voucher, VoucherLayout};
use vouchsafe_store::{ClientStateId, InboxBatch};

use crate::error::{Result, ServerError};

/// Where the capture goes, and what was last written there.
pub(crate) struct CaptureSink {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    /// `None` once a write failed: the capture has stopped.
    out: Option<BufWriter<File>>,
    /// The parameters of the last `params` line written by this process.
    params: Option<Params>,
}

impl std::fmt::Debug for CaptureSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureSink").field("path", &self.path).finish_non_exhaustive()
    }
}

/// What one round adds to the capture: its vouchers in batch order, then the client states' threshold states.
#[derive(Default)]
pub(crate) struct RoundCapture {
    pub(crate) vouchers: Vec<VoucherRecord>,
    pub(crate) states: Vec<StateRecord>,
}

/// The capture's parameters line for an epoch.
pub(crate) fn params_of(p: &EpochParams) -> Params {
    Params {
        order: Bytes(p.order_id),
        epoch: p.epoch,
        threshold: p.threshold,
        synthetic_cap: p.synthetic_cap,
        synthetic_rate: p.synthetic_rate,
        ad_len: p.ad_len,
        voucher_len: VoucherLayout::of(p).voucher_len() as u64,
    }
}

/// The record of voucher `index` of `batch`, as opening classified it (`None`: a voucher of another epoch, invalid
/// here).
pub(crate) fn voucher_record(batch: &InboxBatch, index: usize, outcome: Option<&OpenOutcome>) -> VoucherRecord {
    let bytes = batch.vouchers.get(index).map_or(&[][..], Vec::as_slice);
    let (outcome, opened): (Outcome, Option<Opened>) = match outcome {
        Some(OpenOutcome::NonMatch) => (Outcome::NonMatch, None),
        Some(OpenOutcome::Opened(o)) => match vouchsafe_leakage::capture::opened_record(o) {
            Some(rec) => (Outcome::Opened, Some(rec)),
            None => (Outcome::Invalid, None),
        },
        Some(OpenOutcome::Invalid(_)) | None => (Outcome::Invalid, None),
    };
    VoucherRecord {
        account: batch.account.clone(),
        client_state: Bytes(batch.client_state),
        batch: Bytes(batch.batch_id),
        // The store keeps the arrival to the second.
        arrival_ms: batch.received_at.saturating_mul(1000),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        // The id its encoding carries; zeros if it does not decode that far.
        id: Bytes(Voucher::peek_id(bytes).unwrap_or([0; 16])),
        length: bytes.len() as u64,
        outcome,
        opened,
    }
}

/// A client state's threshold state, for the capture.
pub(crate) fn state_record(account: &str, client_state: ClientStateId, state: ThresholdState) -> StateRecord {
    StateRecord { account: account.to_owned(), client_state: Bytes(client_state), state }
}

impl CaptureSink {
    /// Opens (creating it with mode 0600 if needed) the capture file for appending.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |source| ServerError::Io { what: "leakage capture file", path: path.to_owned(), source };
        let mut file = options.open(path).map_err(io)?;
        // A file left ending inside a line (a write that failed, a crash mid-write) gets its line ended, so that the
        // bad line stays one line and what follows parses.
        if file.metadata().map_err(io)?.len() > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1)).map_err(io)?;
            file.read_exact(&mut last).map_err(io)?;
            if last != *b"\n" {
                file.write_all(b"\n").map_err(io)?;
            }
        }
        tracing::warn!(
            path = %path.display(),
            "worker.capture is set: the server's view of every voucher (below-threshold payloads included) is \
             written to the capture file; meant for a measurement run, not for production"
        );
        Ok(CaptureSink {
            path: path.to_owned(),
            inner: Mutex::new(Inner { out: Some(BufWriter::new(file)), params: None }),
        })
    }

    /// Appends one committed round (a `params` line first if the parameters changed) and flushes it.
    pub(crate) fn write(&self, params: &EpochParams, round: &RoundCapture) {
        if round.vouchers.is_empty() && round.states.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { out, params: last } = &mut *inner;
        let Some(w) = out.as_mut() else { return };
        let p = params_of(params);
        let mut lines = Vec::with_capacity(round.vouchers.len() + round.states.len() + 1);
        if last.as_ref() != Some(&p) {
            lines.push(LiveRecord::Params(p.clone()));
        }
        lines.extend(round.vouchers.iter().cloned().map(LiveRecord::Voucher));
        lines.extend(round.states.iter().cloned().map(LiveRecord::State));
        let mut text = String::new();
        for r in &lines {
            match r.to_line() {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(e) => {
                    tracing::error!(error = %e, "a leakage capture record could not be encoded; the round is left out");
                    return;
                }
            }
        }
        match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
            Ok(()) => *last = Some(p),
            Err(e) => {
                tracing::error!(
                    path = %self.path.display(),
                    error = %e,
                    "the leakage capture could not be written and has stopped; the file ends at or inside this round"
                );
                *out = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use vouchsafe_leakage::live::{Select, assemble};

    fn params() -> EpochParams {
        EpochParams {
            epoch: 3,
            nonce: [1; 16],
            order_id: [2; 16],
            blinding_public: [0; 32],
            slot_count: 64,
            threshold: 5,
            synthetic_cap: 2,
            synthetic_rate: 0,
            ad_len: 64,
        }
    }

    fn round() -> RoundCapture {
        let batch = InboxBatch {
            id: vouchsafe_store::InboxId(1),
            account: "acct".into(),
            client_state: [3; 16],
            batch_id: [4; 16],
            vouchers: vec![vec![1u8; 40], vec![2u8; 5]],
            received_at: 7,
        };
        RoundCapture {
            vouchers: vec![voucher_record(&batch, 0, Some(&OpenOutcome::NonMatch)), voucher_record(&batch, 1, None)],
            states: vec![state_record("acct", [3; 16], ThresholdState::Below)],
        }
    }

    #[test]
    fn params_once_then_rounds_and_an_unfinished_line_is_ended_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.jsonl");
        let sink = CaptureSink::open(&path).unwrap();
        sink.write(&params(), &round());
        sink.write(&params(), &round());
        drop(sink);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains("\"kind\":\"params\"")).count(), 1);
        let view = assemble(&text, Select::default()).unwrap();
        assert_eq!(view.vouchers.len(), 4);
        let v = &view.vouchers[0];
        assert_eq!((v.arrival_ms, v.index, v.length, v.id.0), (7000, 0, 40, [1; 16]));
        // Too short to carry an id; another epoch or malformed: invalid.
        let v = &view.vouchers[1];
        assert_eq!((v.id.0, v.outcome), ([0; 16], Outcome::Invalid));

        // A damaged tail: the next open ends the line, so only that line is bad.
        std::fs::write(&path, format!("{text}{{\"kind\":\"vou")).unwrap();
        let sink = CaptureSink::open(&path).unwrap();
        sink.write(&params(), &round());
        drop(sink);
        let text = std::fs::read_to_string(&path).unwrap();
        let bad = text.lines().position(|l| l == "{\"kind\":\"vou").unwrap();
        let e = assemble(&text, Select::default()).unwrap_err();
        assert!(e.to_string().starts_with(&format!("line {}:", bad + 1)), "{e}");
        let repaired: String = text.lines().filter(|l| *l != "{\"kind\":\"vou").map(|l| format!("{l}\n")).collect();
        assert_eq!(assemble(&repaired, Select::default()).unwrap().vouchers.len(), 6);
    }
}
