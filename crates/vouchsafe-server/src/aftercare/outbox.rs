//! Delivery to the Centre from the durable outbox, and the after-threshold housekeeping (closing cases whose
//! appeal window ended, purging closed cases after their retention, queueing indicator feedback).
//!
//! Exactly once, across crashes on either side: a message is queued in the same store transaction as the decision
//! that produced it; it is sent until the Centre answers with a receipt signed by the order's Centre key that
//! names exactly this message (id and digest); the receipt and everything it changes (case status, notice) are
//! applied in one transaction. A `kill -9` between the Centre's commit and ours makes us send again, and the
//! Centre answers a message it holds with the receipt it gave the first time (its own idempotency), so the case
//! is applied once. Failures back off exponentially (`[centre] retry_initial_seconds` doubling up to
//! `retry_max_seconds`); a refusal by the Centre (a report it will never accept as is) is kept, retried at the
//! longest interval and shown by `vouchsafe status`, for an operator to look at.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use vouchsafe_case::{CentreReceiptKey, MessageKind, ReceiptVerdict, SignedMessage, SignedReceipt};
use vouchsafe_phash::AssociatedData;
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::centre_client::CentreClient;
use vouchsafe_store::{CaseStatus, Delivered, NewNotice, NewOutbox, OutboxEntry, StoreError};

use crate::config::{CentreConfig, unix_now};
use crate::error::{ErrorChain, Result, ServerError};
use crate::events::{Audited, Event, entries};
use crate::service::{Served, Shared};

/// Messages sent per pass.
const PER_PASS: usize = 16;
/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a pass holds the entries it leased (`Store::lease_outbox`): past the longest pass (every entry
/// timing out in turn) with a minute to spare, so that another replica does not send them meanwhile. An entry of
/// a replica that died mid-pass is due again after it.
const LEASE_SECONDS: i64 = PER_PASS as i64 * DELIVERY_TIMEOUT.as_secs() as i64 + 60;
/// Actor of the housekeeping's audit entries.
pub const RETENTION_ACTOR: &str = "retention";

/// The Centre's channel (lazy: connects on first use, reconnects after failures).
pub(crate) fn centre_channel(c: &CentreConfig) -> Result<Channel> {
    let mut ep = Endpoint::from_shared(c.endpoint.clone())
        .map_err(|_| ServerError::config("centre.endpoint", "not a valid URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(DELIVERY_TIMEOUT);
    if c.endpoint.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = &c.ca {
            let pem = std::fs::read(ca).map_err(|source| ServerError::Io {
                what: "centre CA certificate",
                path: ca.clone(),
                source,
            })?;
            tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep.tls_config(tls).map_err(|_| ServerError::config("centre.ca", "not a usable CA certificate"))?;
    }
    Ok(ep.connect_lazy())
}

/// How a delivery ended.
enum Outcome {
    /// The Centre answered with a receipt; its bytes.
    Receipt(Vec<u8>),
    /// Retry later; the reason (no secrets: a status code and the Centre's message, or a transport error kind).
    Retry { reason: String, refused: bool },
}

async fn send(client: &mut CentreClient<Channel>, bytes: Vec<u8>) -> Outcome {
    match client.deliver(v1::DeliverRequest { message: bytes }).await {
        Ok(r) => Outcome::Receipt(r.into_inner().receipt),
        Err(s) => {
            use tonic::Code::*;
            let refused = matches!(
                s.code(),
                InvalidArgument | FailedPrecondition | Unauthenticated | PermissionDenied | AlreadyExists | NotFound
            );
            let mut msg = s.message().to_owned();
            msg.truncate(300);
            Outcome::Retry { reason: format!("{:?}: {msg}", s.code()), refused }
        }
    }
}

/// The backoff after `attempts` failed attempts.
fn backoff(c: &CentreConfig, attempts: u32, refused: bool) -> i64 {
    let max = c.retry_max_seconds;
    let d = if refused { max } else { c.retry_initial_seconds.saturating_mul(1u64 << attempts.min(20)).min(max) };
    i64::try_from(d).unwrap_or(i64::MAX)
}

/// Checks a receipt against the message it answers and applies it (one transaction). Returns the verdict name.
fn apply_receipt(shared: &Shared, served: &Served, entry: &OutboxEntry, receipt: &[u8]) -> Result<String> {
    let Some(after) = shared.aftercare.as_ref() else { return Err(ServerError::Internal("no [review]")) };
    let bad = |why: &str| ServerError::Centre(format!("the Centre's receipt is refused: {why}"));
    let key = CentreReceiptKey::from_bytes(&served.gov.order().centre_key().to_bytes())
        .map_err(|_| bad("the order's Centre key is not usable"))?;
    let signed = SignedReceipt::decode(receipt).map_err(|e| bad(&e.to_string()))?;
    let r = signed.verify(&key).map_err(|_| bad("not signed by the order's Centre key"))?;
    let message =
        SignedMessage::decode(&entry.bytes).map_err(|_| ServerError::Internal("an outbox entry does not decode"))?;
    if r.message_id != entry.message_id || r.message_digest != message.digest() {
        return Err(bad("it names another message"));
    }
    let kind = MessageKind::parse(&entry.kind).ok_or(ServerError::Internal("an outbox entry of unknown kind"))?;
    if r.kind != kind {
        return Err(bad("it is for another kind of message"));
    }
    let now = unix_now();
    let case = match entry.case {
        Some(id) => shared.store.get_case(id)?,
        None => None,
    };
    let (status, reason): (Option<CaseStatus>, String) = match &r.verdict {
        ReceiptVerdict::Forwarded { export_id } => {
            (Some(CaseStatus::Forwarded), format!("export {}", hex::encode(export_id)))
        }
        ReceiptVerdict::ManifestFalsePositive { reason } => (Some(CaseStatus::FalsePositive), reason.clone()),
        _ => (None, String::new()),
    };
    let mut events = vec![Audited::new(
        now,
        crate::AUDIT_ACTOR,
        &Event::MessageDelivered {
            kind: entry.kind.clone(),
            message: hex::encode(entry.message_id),
            verdict: r.verdict.as_str().into(),
            attempts: u64::from(entry.attempts) + 1,
        },
    )];
    // A forwarded report is notified to the user (the account action is taken with it); a manifest false positive
    // goes no further and closes the case.
    let mut attachments: Vec<([u8; 32], u64)> = Vec::new();
    let mut notice = None;
    if let (Some(CaseStatus::Forwarded), Some(c)) = (status, &case) {
        for item in &c.items {
            if let Ok(ad) = AssociatedData::decode(&item.ad) {
                attachments.push((*ad.attachment_ref(), ad.time()));
            }
        }
        let deadline = now.saturating_add(i64::try_from(after.review.appeal_seconds).unwrap_or(i64::MAX));
        events.push(Audited::new(
            now,
            crate::AUDIT_ACTOR,
            &Event::NoticeIssued {
                case: c.summary.id.0 as u64,
                account: c.summary.account.clone(),
                appeal_deadline: deadline,
            },
        ));
        notice = Some((c.summary.account.clone(), c.summary.id, c.summary.order_id, deadline));
    }
    let order_hash = served.gov.order().signed().hash();
    let audit = entries(&events);
    let d = Delivered {
        id: entry.id,
        at: now,
        receipt,
        case_status: status.map(|s| (s, reason.as_str())),
        notice: notice.as_ref().map(|(account, case, order_id, deadline)| NewNotice {
            account,
            case: *case,
            order_id: *order_id,
            order_hash,
            reported_at: now,
            attachments: &attachments,
            appeal_deadline: *deadline,
        }),
        audit: &audit,
    };
    shared.store.outbox_delivered(&d)?;
    Ok(r.verdict.as_str().to_owned())
}

/// Housekeeping, then the due entries, leased to this pass, on the blocking pool.
fn prepare(shared: &Shared) -> Result<Vec<OutboxEntry>> {
    let Some(after) = shared.aftercare.as_ref() else { return Ok(Vec::new()) };
    let now = unix_now();
    let store = shared.store.as_ref();
    let closed = store.close_expired_cases(now, RETENTION_ACTOR)?;
    if closed > 0 {
        tracing::info!(cases = closed, "cases closed: their appeal window ended");
    }
    let keep = i64::try_from(shared.config.retention.case_after_close_seconds).unwrap_or(i64::MAX);
    let r = store.purge_closed_cases(now.saturating_sub(keep), now, RETENTION_ACTOR)?;
    if r.case_items > 0 {
        tracing::info!(case_items = r.case_items, "closed cases purged after their retention");
    }
    let served = shared.state();
    if let Some((id, bytes)) = after.feedback_message(store, &served)? {
        let m = NewOutbox { message_id: id, kind: "feedback", case: None, bytes: &bytes, created_at: now };
        let event = Event::MessageQueued { kind: "feedback".into(), message: hex::encode(id), case: None };
        let audit = [Audited::new(now, crate::AUDIT_ACTOR, &event)];
        match store.enqueue_outbox(&m, &entries(&audit)) {
            // The same counts were queued before (same id); the bytes differ only in their time.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(store.lease_outbox(now, now.saturating_add(LEASE_SECONDS), PER_PASS)?)
}

/// One pass: housekeeping, then every due message sent once. Returns how many were delivered.
pub(crate) async fn pass(
    shared: &Arc<Shared>,
    client: &mut CentreClient<Channel>,
    centre: &CentreConfig,
) -> Result<usize> {
    let s = Arc::clone(shared);
    let due = tokio::task::spawn_blocking(move || prepare(&s))
        .await
        .map_err(|_| ServerError::Internal("outbox task panicked"))??;
    let mut delivered = 0;
    for entry in due {
        let outcome = send(client, entry.bytes.clone()).await;
        let s = Arc::clone(shared);
        let c = centre.clone();
        let ok = tokio::task::spawn_blocking(move || -> Result<bool> {
            let (reason, refused) = match outcome {
                Outcome::Receipt(receipt) => {
                    let served = s.state();
                    match apply_receipt(&s, &served, &entry, &receipt) {
                        Ok(verdict) => {
                            tracing::info!(kind = %entry.kind, verdict = %verdict, "delivered to the Centre");
                            return Ok(true);
                        }
                        Err(e @ ServerError::Centre(_)) => (e.to_string(), false),
                        Err(e) => return Err(e),
                    }
                }
                Outcome::Retry { reason, refused } => (reason, refused),
            };
            let next = unix_now().saturating_add(backoff(&c, entry.attempts, refused));
            if refused {
                tracing::error!(kind = %entry.kind, reason = %reason, "the Centre refused a message; an operator must look");
            } else {
                tracing::warn!(kind = %entry.kind, reason = %reason, "delivery to the Centre failed; retrying later");
            }
            // Only while this pass's lease holds: a pass slower than its lease leaves the entry to the pass that
            // leased it since.
            if !s.store.outbox_failed(entry.id, Some(entry.next_attempt_at), &reason, next)? {
                tracing::warn!(kind = %entry.kind, "the lease ran out before the attempt ended; another pass has it");
            }
            Ok(false)
        })
        .await
        .map_err(|_| ServerError::Internal("outbox task panicked"))??;
        delivered += usize::from(ok);
    }
    Ok(delivered)
}

/// The outbox loop: a pass every poll interval or when woken (a decision queued something), until `stop`.
pub(crate) async fn outbox_loop(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let Some(centre) = shared.config.centre.clone() else { return };
    if shared.aftercare.is_none() {
        return;
    }
    let channel = match centre_channel(&centre) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %ErrorChain(&e), "the Centre's endpoint is not usable; nothing is delivered");
            return;
        }
    };
    let mut client = CentreClient::new(channel).max_decoding_message_size(1 << 20);
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = pass(&shared, &mut client, &centre).await {
            tracing::error!(error = %ErrorChain(&e), "outbox pass failed; retrying after the poll interval");
        }
        tokio::select! {
            _ = shared.outbox_wake.notified() => {}
            _ = tokio::time::sleep(shared.config.worker.poll_interval()) => {}
        }
    }
}
