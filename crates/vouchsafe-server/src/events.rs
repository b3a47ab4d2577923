//! The typed audit events of the server: every step after a voucher opened, and every governance change, is one
//! [`Event`] appended to the store's hash-chained audit log. The action is the event's stable name and the detail
//! its fields as a JSON object (`serde_json`, keys in declaration order), so the log is read back into the same
//! types ([`Event::parse`]) instead of strings parsed by hand. `vouchsafe status` verifies the chain and that every
//! entry parses.
//!
//! No event carries a secret, associated data, a derivative, a hash of an image or free text a reviewer or user
//! wrote (reason codes only): the audit log is shown to auditors.

use serde::{Deserialize, Serialize};
use vouchsafe_store::{AuditEntry, AuditRecord};

/// Actions the store itself appends (inside its own transactions); they parse as [`Event::Store`].
pub const STORE_ACTIONS: &[&str] = &["case.create", "case.status", "order.purge", "case.purge", "case.close"];

/// One audit event. Field values are hex for ids and hashes, decimal for numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum Event {
    /// An account crossed the threshold under an order.
    ThresholdReveal {
        /// The account.
        account: String,
        /// Order id (hex).
        order: String,
        /// Real, synthetic and rejected opened vouchers at the reveal.
        real: u64,
        /// Synthetic vouchers identified and discarded.
        synthetic: u64,
        /// Opened vouchers the reconstruction rejected.
        rejected: u64,
    },
    /// A reconstruction failed cleanly on what the device sent.
    ThresholdFailed {
        /// The account.
        account: String,
        /// Order id (hex).
        order: String,
        /// The protocol's error, without secrets.
        error: String,
    },
    /// The second-hash check dropped an item before any person saw it.
    ItemDropped {
        /// The account.
        account: String,
        /// Order id (hex).
        order: String,
        /// Voucher id (hex).
        voucher: String,
        /// `SecondHashFailure::as_str`.
        reason: String,
    },
    /// Items were added to an existing case.
    CaseItems {
        /// Case id.
        case: u64,
        /// Items added.
        added: u64,
    },
    /// A reviewer opened a case's derivatives.
    CaseViewed {
        /// Case id.
        case: u64,
        /// Reviewer name.
        reviewer: String,
        /// `"blurred"` or `"full"`.
        view: String,
    },
    /// A review decision.
    CaseDecided {
        /// Case id.
        case: u64,
        /// Reviewer name.
        reviewer: String,
        /// `"reviewer"` or `"supervisor"`.
        role: String,
        /// `"confirm"` or `"reject"`.
        verdict: String,
        /// Reason code.
        reason: String,
        /// The case's status after the decision.
        status: String,
    },
    /// A signed message was queued for the Centre.
    MessageQueued {
        /// `"report"`, `"withdrawal"` or `"feedback"`.
        kind: String,
        /// Message id (hex).
        message: String,
        /// The case it concerns, if any.
        case: Option<u64>,
    },
    /// The Centre acknowledged a message with a signed receipt.
    MessageDelivered {
        /// Message kind.
        kind: String,
        /// Message id (hex).
        message: String,
        /// The receipt's verdict (`"forwarded"`, `"false-positive"`, `"withdrawn"`, `"recorded"`).
        verdict: String,
        /// Attempts it took.
        attempts: u64,
    },
    /// A notice was issued to the user.
    NoticeIssued {
        /// Case id.
        case: u64,
        /// The account.
        account: String,
        /// Appeal deadline, Unix seconds.
        appeal_deadline: i64,
    },
    /// The user appealed.
    AppealFiled {
        /// The notice appealed (one appeal per notice).
        notice: u64,
        /// Case id.
        case: u64,
    },
    /// A supervisor decided an appeal.
    AppealDecided {
        /// Appeal id.
        appeal: u64,
        /// Case id.
        case: u64,
        /// Supervisor name.
        by: String,
        /// Whether it was upheld (report withdrawn, action reversed).
        upheld: bool,
    },
    /// The table was reloaded.
    TableReload {
        /// The epoch.
        epoch: u64,
        /// Version served before.
        from_version: u64,
        /// Version served now.
        to_version: u64,
        /// Indicators in the table now.
        indicators: u64,
        /// Table root (hex).
        root: String,
        /// Revocations known.
        revocations: u64,
    },
    /// The set of revocations naming the order changed.
    OrderRevocations {
        /// Order id (hex).
        order: String,
        /// Revocations now known.
        revocations: u64,
    },
    /// An inbox batch could not be read back and was counted invalid.
    InboxUnreadable {
        /// Inbox row.
        inbox_batch: i64,
        /// Vouchers in it.
        vouchers: u64,
        /// Why.
        reason: String,
    },
    /// A signed transparency report was appended to the log.
    TransparencyPublished {
        /// Order id (hex).
        order: String,
        /// Period start (0: the order's start).
        from: i64,
        /// Period end (0: now).
        to: i64,
        /// Its leaf index in the transparency log.
        leaf: u64,
    },
    /// An entry the store appended itself (`STORE_ACTIONS`); its detail is the store's.
    #[serde(skip)]
    Store {
        /// The action.
        action: String,
        /// The detail.
        detail: String,
    },
}

/// Why an audit record is not an event of this version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The action is no known event.
    #[error("audit entry {seq}: unknown action {action:?}")]
    UnknownAction {
        /// Position in the chain.
        seq: u64,
        /// The action.
        action: String,
    },
    /// The detail does not parse as the action's fields.
    #[error("audit entry {seq}: the detail of {action} does not parse")]
    BadDetail {
        /// Position in the chain.
        seq: u64,
        /// The action.
        action: String,
    },
}

impl Event {
    /// The stable action name.
    pub fn action(&self) -> &str {
        match self {
            Event::ThresholdReveal { .. } => "threshold.reveal",
            Event::ThresholdFailed { .. } => "threshold.failed",
            Event::ItemDropped { .. } => "case.item_dropped",
            Event::CaseItems { .. } => "case.items",
            Event::CaseViewed { .. } => "case.view",
            Event::CaseDecided { .. } => "case.decide",
            Event::MessageQueued { .. } => "outbox.queue",
            Event::MessageDelivered { .. } => "outbox.delivered",
            Event::NoticeIssued { .. } => "notice.issue",
            Event::AppealFiled { .. } => "appeal.file",
            Event::AppealDecided { .. } => "appeal.decide",
            Event::TableReload { .. } => "table.reload",
            Event::OrderRevocations { .. } => "order.revocations",
            Event::InboxUnreadable { .. } => "inbox.unreadable",
            Event::TransparencyPublished { .. } => "transparency.publish",
            Event::Store { action, .. } => action,
        }
    }

    /// The detail: the event's fields as one JSON object.
    pub fn detail(&self) -> String {
        if let Event::Store { detail, .. } = self {
            return detail.clone();
        }
        // `{"Variant":{fields}}` → `{fields}`; serialising these plain types cannot fail.
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => {
                m.into_iter().next().map(|(_, v)| v.to_string()).unwrap_or_else(|| "{}".into())
            }
            _ => "{}".into(),
        }
    }

    /// Reads an audit record back into its event.
    pub fn parse(record: &AuditRecord) -> Result<Event, EventError> {
        let action = record.action.as_str();
        if STORE_ACTIONS.contains(&action) {
            return Ok(Event::Store { action: record.action.clone(), detail: record.detail.clone() });
        }
        let variant = match action {
            "threshold.reveal" => "ThresholdReveal",
            "threshold.failed" => "ThresholdFailed",
            "case.item_dropped" => "ItemDropped",
            "case.items" => "CaseItems",
            "case.view" => "CaseViewed",
            "case.decide" => "CaseDecided",
            "outbox.queue" => "MessageQueued",
            "outbox.delivered" => "MessageDelivered",
            "notice.issue" => "NoticeIssued",
            "appeal.file" => "AppealFiled",
            "appeal.decide" => "AppealDecided",
            "table.reload" => "TableReload",
            "order.revocations" => "OrderRevocations",
            "inbox.unreadable" => "InboxUnreadable",
            "transparency.publish" => "TransparencyPublished",
            _ => return Err(EventError::UnknownAction { seq: record.seq, action: record.action.clone() }),
        };
        let bad = || EventError::BadDetail { seq: record.seq, action: record.action.clone() };
        let fields: serde_json::Value = serde_json::from_str(&record.detail).map_err(|_| bad())?;
        let mut m = serde_json::Map::new();
        m.insert(variant.to_owned(), fields);
        serde_json::from_value(serde_json::Value::Object(m)).map_err(|_| bad())
    }
}

/// An event and when and by whom, ready for [`vouchsafe_store::Store::append_audits`] (which borrows).
#[derive(Clone, Debug)]
pub struct Audited {
    at: i64,
    actor: String,
    action: String,
    detail: String,
}

impl Audited {
    /// `event` done by `actor` at `at`.
    pub fn new(at: i64, actor: &str, event: &Event) -> Self {
        Audited { at, actor: actor.to_owned(), action: event.action().to_owned(), detail: event.detail() }
    }

    /// The borrowed entry.
    pub fn entry(&self) -> AuditEntry<'_> {
        AuditEntry { at: self.at, actor: &self.actor, action: &self.action, detail: &self.detail }
    }

    /// The entry, owning its strings (for [`vouchsafe_store::BatchResults::audit`]).
    pub fn into_owned(self) -> vouchsafe_store::OwnedAuditEntry {
        vouchsafe_store::OwnedAuditEntry { at: self.at, actor: self.actor, action: self.action, detail: self.detail }
    }
}

/// The entries of several [`Audited`] events.
pub fn entries(events: &[Audited]) -> Vec<AuditEntry<'_>> {
    events.iter().map(Audited::entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str, detail: &str) -> AuditRecord {
        AuditRecord {
            seq: 7,
            at: 1,
            actor: "server".into(),
            action: action.into(),
            detail: detail.into(),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn every_event_round_trips_through_its_entry() {
        let events = [
            Event::ThresholdReveal { account: "a".into(), order: "00".into(), real: 3, synthetic: 1, rejected: 0 },
            Event::ItemDropped {
                account: "a".into(),
                order: "00".into(),
                voucher: "11".into(),
                reason: "indicator-secondary-mismatch".into(),
            },
            Event::CaseViewed { case: 4, reviewer: "r1".into(), view: "full".into() },
            Event::CaseDecided {
                case: 4,
                reviewer: "r1".into(),
                role: "reviewer".into(),
                verdict: "confirm".into(),
                reason: "known-image".into(),
                status: "confirmed".into(),
            },
            Event::MessageQueued { kind: "report".into(), message: "ab".into(), case: Some(4) },
            Event::MessageQueued { kind: "feedback".into(), message: "ab".into(), case: None },
            Event::AppealDecided { appeal: 1, case: 4, by: "s".into(), upheld: true },
            Event::TransparencyPublished { order: "00".into(), from: 0, to: 0, leaf: 9 },
        ];
        for e in events {
            let a = Audited::new(5, "x", &e);
            let r = record(&a.action, &a.detail);
            assert_eq!(Event::parse(&r).unwrap(), e, "{}", a.detail);
        }
    }

    #[test]
    fn unknown_actions_and_bad_details_are_refused() {
        assert!(matches!(Event::parse(&record("case.nope", "{}")), Err(EventError::UnknownAction { seq: 7, .. })));
        assert!(matches!(Event::parse(&record("case.view", "case=4")), Err(EventError::BadDetail { .. })));
        assert!(matches!(
            Event::parse(&record("case.view", r#"{"case":4,"reviewer":"r","view":"full","extra":1}"#)),
            Err(EventError::BadDetail { .. })
        ));
        assert_eq!(
            Event::parse(&record("case.create", "case=1")).unwrap(),
            Event::Store { action: "case.create".into(), detail: "case=1".into() }
        );
    }
}
