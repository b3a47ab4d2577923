//! The intake: one delivered message, checked in the documented order, its export written, then its row and
//! receipt committed in one SQLite transaction. Deliveries are serialised (one at a time), so a redelivery can
//! never race its first delivery.

use std::sync::Mutex;

use rusqlite::Connection;
use vouchsafe_case::{
    IndicatorFeedback, MAX_MESSAGE_BYTES, Message, Receipt, ReceiptVerdict, Report, SignedMessage, Withdrawal,
};

use crate::check::{ReportContext, ReportVerdict, check_report};
use crate::config::{CentreConfig, Keys};
use crate::db::{self, FeedbackEntry, MessageRow};
use crate::error::{CentreError, Result};
use crate::evidence::FileEvidence;
use crate::export::{export_id, write_export, write_withdrawn};

/// The Centre's intake: configuration, keys and the open intake database.
pub struct Intake {
    config: CentreConfig,
    keys: Keys,
    db: Mutex<Connection>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// What one accepted delivery did (for the log line; nothing of the content).
struct Outcome {
    verdict: ReceiptVerdict,
    receipt: Vec<u8>,
}

impl Intake {
    /// Reads the keys and opens (creates) the intake database and the exports directory.
    pub fn open(config: CentreConfig) -> Result<Self> {
        let keys = Keys::load(&config)?;
        if let Some(parent) = config.database.parent().filter(|p| !p.as_os_str().is_empty()) {
            vouchsafe_files::create_private_dir(parent).map_err(CentreError::io("database directory", parent))?;
        }
        let conn = db::open(&config.database)?;
        vouchsafe_files::create_private_dir(&config.exports)
            .map_err(CentreError::io("exports directory", &config.exports))?;
        Ok(Intake { config, keys, db: Mutex::new(conn) })
    }

    /// The configuration.
    pub fn config(&self) -> &CentreConfig {
        &self.config
    }

    /// The keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Delivers one signed message at `now` (Unix seconds): the encoded `SignedReceipt`, the same bytes for a
    /// redelivery of the same message. On any error nothing is stored.
    pub fn deliver(&self, bytes: &[u8], now: i64) -> Result<Vec<u8>> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(CentreError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_BYTES });
        }
        let signed = SignedMessage::decode(bytes).map_err(|e| CentreError::Malformed(e.to_string()))?;
        let unverified = signed.message_unverified().map_err(|e| CentreError::Malformed(e.to_string()))?;
        let provider = unverified.provider().to_owned();
        drop(unverified);
        let (key, services) = self.keys.provider(&provider).ok_or(CentreError::UnknownProvider)?;
        let message = signed.verify(key).map_err(|e| match e {
            vouchsafe_case::Error::BadSignature => CentreError::BadSignature,
            other => CentreError::Malformed(other.to_string()),
        })?;
        let digest = signed.digest();
        let id = message.id();

        let mut conn = self.db.lock().map_err(|_| CentreError::Internal("the intake database lock is poisoned"))?;
        if let Some(held) = db::held(&conn, &provider, &id)? {
            return if held.digest == digest {
                tracing::info!(kind = message.kind().as_str(), provider = %provider, "redelivery: the stored receipt");
                Ok(held.receipt)
            } else {
                Err(CentreError::Conflict)
            };
        }
        let outcome = match &message {
            Message::Report(r) => self.report(&mut conn, r, services, &digest, now)?,
            Message::Withdrawal(w) => self.withdrawal(&mut conn, w, &digest, now)?,
            Message::Feedback(f) => self.feedback(&mut conn, f, &digest, now)?,
        };
        tracing::info!(
            kind = message.kind().as_str(),
            provider = %provider,
            verdict = outcome.verdict.as_str(),
            "message accepted"
        );
        Ok(outcome.receipt)
    }

    fn sign(
        &self,
        message_id: [u8; 16],
        digest: &[u8; 32],
        kind: vouchsafe_case::MessageKind,
        verdict: &ReceiptVerdict,
        at: i64,
    ) -> Result<Vec<u8>> {
        let receipt = Receipt { message_id, message_digest: *digest, kind, verdict: verdict.clone(), at };
        let signed =
            self.keys.signer.sign(&receipt).map_err(|_| CentreError::Internal("the receipt does not encode"))?;
        Ok(signed.encode())
    }

    fn report(
        &self,
        conn: &mut Connection,
        r: &Report,
        services: &[String],
        digest: &[u8; 32],
        now: i64,
    ) -> Result<Outcome> {
        let c = &self.config;
        let evidence = FileEvidence::new(&c.releases, c.revocations.as_deref(), &c.indicators, &self.keys.centre);
        let ctx = ReportContext { now, services, authorities: &self.keys.authorities, centre: &self.keys.centre };
        let checked = check_report(r, &ctx, &evidence)?;
        let (verdict, reason, export, received_at) = match &checked.verdict {
            ReportVerdict::Forward => {
                // On disk before the commit: a crash in between leaves an export that the retry finds and keeps.
                let bundle = write_export(&c.exports, &self.keys.signer, r, &checked, digest, now)?;
                let id = export_id(digest);
                (ReceiptVerdict::Forwarded { export_id: id }, None, Some(id), bundle.received_at)
            }
            ReportVerdict::FalsePositive { reason } => {
                (ReceiptVerdict::ManifestFalsePositive { reason: reason.clone() }, Some(reason.clone()), None, now)
            }
        };
        let receipt = self.sign(r.report_id, digest, vouchsafe_case::MessageKind::Report, &verdict, now)?;
        let tx = db::begin(conn)?;
        db::insert_message(
            &tx,
            &MessageRow {
                provider: &r.provider,
                id: r.report_id,
                digest: *digest,
                kind: "report",
                order_id: r.order_id,
                received_at,
                verdict: verdict.as_str(),
                reason: reason.as_deref(),
                export_id: export,
                urgent: r.urgent,
                receipt: &receipt,
            },
        )?;
        tx.commit()?;
        Ok(Outcome { verdict, receipt })
    }

    fn withdrawal(&self, conn: &mut Connection, w: &Withdrawal, digest: &[u8; 32], now: i64) -> Result<Outcome> {
        let held = db::held_report(conn, &w.provider, &w.report_id)?.ok_or_else(|| {
            CentreError::refused("the withdrawal names no report of this provider that the Centre holds")
        })?;
        if held.order_id != w.order_id {
            return Err(CentreError::refused("the withdrawal names another order than its report's"));
        }
        if held.withdrawn {
            return Err(CentreError::refused("the report was already withdrawn"));
        }
        if let Some(export) = held.export_id {
            write_withdrawn(&self.config.exports, &self.keys.signer, &export, w)?;
        }
        let verdict = ReceiptVerdict::Withdrawn;
        let receipt = self.sign(w.withdrawal_id, digest, vouchsafe_case::MessageKind::Withdrawal, &verdict, now)?;
        let tx = db::begin(conn)?;
        db::insert_message(
            &tx,
            &MessageRow {
                provider: &w.provider,
                id: w.withdrawal_id,
                digest: *digest,
                kind: "withdrawal",
                order_id: w.order_id,
                received_at: now,
                verdict: verdict.as_str(),
                reason: None,
                export_id: held.export_id,
                urgent: false,
                receipt: &receipt,
            },
        )?;
        db::insert_withdrawal(&tx, &w.provider, &w.report_id, &w.withdrawal_id, &w.reason, w.at)?;
        tx.commit()?;
        Ok(Outcome { verdict, receipt })
    }

    fn feedback(&self, conn: &mut Connection, f: &IndicatorFeedback, digest: &[u8; 32], now: i64) -> Result<Outcome> {
        let count = |n: u64, i: usize| {
            i64::try_from(n).map_err(|_| CentreError::Malformed(format!("feedback entry {i}: a count out of range")))
        };
        let mut entries = Vec::with_capacity(f.entries.len());
        for (i, e) in f.entries.iter().enumerate() {
            entries.push(FeedbackEntry {
                primary: &e.primary,
                second_hash_drops: count(e.second_hash_drops, i)?,
                review_rejections: count(e.review_rejections, i)?,
            });
        }
        let verdict = ReceiptVerdict::Recorded;
        let receipt = self.sign(f.feedback_id, digest, vouchsafe_case::MessageKind::Feedback, &verdict, now)?;
        let tx = db::begin(conn)?;
        db::insert_message(
            &tx,
            &MessageRow {
                provider: &f.provider,
                id: f.feedback_id,
                digest: *digest,
                kind: "feedback",
                order_id: f.order_id,
                received_at: now,
                verdict: verdict.as_str(),
                reason: None,
                export_id: None,
                urgent: false,
                receipt: &receipt,
            },
        )?;
        for e in &entries {
            db::upsert_feedback(&tx, &f.provider, &f.order_id, &f.feedback_id, f.at, e)?;
        }
        tx.commit()?;
        Ok(Outcome { verdict, receipt })
    }

    /// Rows of the messages table.
    pub fn message_count(&self) -> Result<u64> {
        let conn = self.db.lock().map_err(|_| CentreError::Internal("the intake database lock is poisoned"))?;
        db::message_count(&conn)
    }
}
