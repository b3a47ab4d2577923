//! What a provider sends the Centre after the threshold: a [`Report`] of a confirmed case, the [`Withdrawal`] of
//! a report after an upheld appeal, and [`IndicatorFeedback`] (second-hash drops and review rejections per
//! indicator). One [`Message`] type, one canonical encoding, signed as a [`SignedMessage`].
//!
//! ## Encoding of a [`Message`] (version 1)
//!
//! Integers are fixed width, little-endian (`i64` two's complement). `bytes(x)` is `u32 LE length ‖ x`; a
//! string is `bytes` of its UTF-8. A bool is one byte, `0x00` or `0x01`. Enum tags are one byte; tag `0x00` is
//! never used, so zeroed memory never decodes. Every decoder refuses an unknown tag, a value outside its rule,
//! truncation and trailing bytes, so decoding then encoding gives back the same bytes.
//!
//! `0x01 (version) ‖ kind tag (u8: 0x01 report, 0x02 withdrawal, 0x03 feedback) ‖ body`, the body being:
//!
//! **Report** (`0x01`):
//!
//! | bytes | field | rule |
//! |---|---|---|
//! | 16 | report_id | any (the message id) |
//! | 4 + n | provider, string | name: 1..=64 bytes of `[A-Za-z0-9._@-]` |
//! | 16 | order_id | any |
//! | 32 | order_hash | any (the order crate's `SignedOrder::hash`) |
//! | 4 + n | signed_order, bytes | 1..=65536 bytes, opaque here |
//! | 8 | release_number, u64 | any |
//! | 32 | release_hash | any |
//! | 8 | case_id, u64 | any |
//! | 4 + n | account, string | 1..=256 bytes of UTF-8, no control character (Unicode `Cc`) |
//! | 1 | urgent, bool | |
//! | 1 | four_eyes, bool | |
//! | 8 | threshold_at, i64 | Unix seconds |
//! | 8 | created_at, i64 | Unix seconds |
//! | 4 | item count, u32 | 1..=1024 |
//! | … | each item: voucher_id (16) ‖ ad, bytes | ad 1..=65535 bytes; voucher ids pairwise distinct (any order) |
//! | 4 | decision count, u32 | 1..=16 |
//! | … | each decision, see below | |
//!
//! A decision: `reviewer (string, a name as above) ‖ role (u8: 0x01 reviewer, 0x02 supervisor) ‖ verdict (u8:
//! 0x01 confirm, 0x02 reject) ‖ reason (u8: 0x01 known-image, 0x02 not-matching, 0x03 benign, 0x04 illegible,
//! 0x05 other) ‖ comment (string, text, may be empty) ‖ at (i64)`. A confirm must give `known-image`, a reject one
//! of the others.
//!
//! **Withdrawal** (`0x02`): `withdrawal_id (16) ‖ provider (string, name) ‖ report_id (16) ‖ order_id (16) ‖ reason
//! (string, text, 1..=4000 bytes) ‖ at (i64)`.
//!
//! **Feedback** (`0x03`): `feedback_id (16) ‖ provider (string, name) ‖ order_id (16) ‖ release_number (u64) ‖ entry
//! count (u32, 1..=100 000) ‖ entries ‖ at (i64)`, each entry `primary (bytes, 1..=64) ‖ second_hash_drops (u64) ‖
//! review_rejections (u64)`, strictly ascending by primary (bytewise; no duplicates).
//!
//! "Text" is UTF-8 of at most 4000 bytes without control characters except tab, LF and CR. The whole message
//! encoding is at most [`crate::MAX_MESSAGE_BODY`] bytes (so that its signed form fits
//! [`crate::MAX_MESSAGE_BYTES`]); [`Message::validate`] checks every rule above and the size, and
//! [`Message::decode`] validates.

use core::fmt;

use crate::error::{Error, Result, invalid};
use crate::labels::{
    KIND_FEEDBACK, KIND_REPORT, KIND_WITHDRAWAL, MAX_AD, MAX_DECISIONS, MAX_FEEDBACK_ENTRIES, MAX_ITEMS,
    MAX_MESSAGE_BODY, MAX_PRIMARY, MAX_SIGNED_ORDER, VERSION,
};
use crate::wire::{
    Reader, boolean, bytes, check_account, check_name, check_size, check_text, count, put_bool, put_bytes, put_count,
    string, unknown_tag,
};

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($(#[$vm:meta])* $v:ident = $tag:literal, $s:literal;)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every value, in tag order.
            pub const ALL: &[Self] = &[$($name::$v,)+];

            /// The lower-case name (what the CLI, the store and JSON use).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }

            /// The value of a lower-case name (`None` for any other text).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }

            /// The wire tag.
            pub fn tag(self) -> u8 {
                match self { $($name::$v => $tag,)+ }
            }

            /// The value of a wire tag.
            pub fn from_tag(tag: u8) -> Result<Self> {
                match tag { $($tag => Ok($name::$v),)+ got => Err(unknown_tag($what, got)) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl core::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::parse(s).ok_or(Error::Invalid { field: $what, reason: "unknown name" })
            }
        }
    };
}

named_enum!(
    /// Who made a review decision.
    Role, "role", {
        /// A reviewer of the provider's review team.
        Reviewer = 1, "reviewer";
        /// A supervisor (the second pair of eyes, or an override).
        Supervisor = 2, "supervisor";
    }
);

named_enum!(
    /// A review decision's outcome.
    Verdict, "verdict", {
        /// The items are the known imagery the indicators name.
        Confirm = 1, "confirm";
        /// They are not: a false positive.
        Reject = 2, "reject";
    }
);

named_enum!(
    /// Why a reviewer decided as they did.
    ReasonCode, "reason code", {
        /// The images are the known images (the only reason a confirm may give).
        KnownImage = 1, "known-image";
        /// The images do not match the indicators' images.
        NotMatching = 2, "not-matching";
        /// The images are benign.
        Benign = 3, "benign";
        /// The derivatives cannot be judged.
        Illegible = 4, "illegible";
        /// Another reason (the comment says which).
        Other = 5, "other";
    }
);

named_enum!(
    /// The kind of a [`Message`] (also named in a receipt).
    MessageKind, "message kind", {
        /// A [`Report`].
        Report = 1, "report";
        /// A [`Withdrawal`].
        Withdrawal = 2, "withdrawal";
        /// An [`IndicatorFeedback`].
        Feedback = 3, "feedback";
    }
);

impl ReasonCode {
    /// Whether this reason may justify `verdict`: a confirm needs [`ReasonCode::KnownImage`], a reject any other.
    pub fn fits(self, verdict: Verdict) -> bool {
        match verdict {
            Verdict::Confirm => self == ReasonCode::KnownImage,
            Verdict::Reject => self != ReasonCode::KnownImage,
        }
    }
}

/// One review decision on a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The reviewer's name (1..=64 bytes of `[A-Za-z0-9._@-]`).
    pub reviewer: String,
    /// Their role.
    pub role: Role,
    /// The outcome.
    pub verdict: Verdict,
    /// Why; must [`ReasonCode::fits`] the verdict.
    pub reason: ReasonCode,
    /// Free text, at most [`crate::MAX_TEXT`] bytes (may be empty).
    pub comment: String,
    /// When, Unix seconds.
    pub at: i64,
}

/// One item of a report: the voucher it came from and its decrypted associated data (the protocol's
/// `AssociatedData` encoding, opaque here). `Debug` shows the voucher id and only the length of the data.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportItem {
    /// The voucher id.
    pub voucher_id: [u8; 16],
    /// The associated data, 1..=[`crate::MAX_AD`] bytes.
    pub ad: Vec<u8>,
}

impl fmt::Debug for ReportItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportItem")
            .field("voucher_id", &Hex(&self.voucher_id))
            .field("ad", &format_args!("<{} bytes>", self.ad.len()))
            .finish()
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A provider's report of a case its reviewers confirmed. See the module docs for the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The report id (the message id).
    pub report_id: [u8; 16],
    /// The provider's name, as the Centre knows it.
    pub provider: String,
    /// The detection order the case arose under.
    pub order_id: [u8; 16],
    /// That order's hash (`SignedOrder::hash`).
    pub order_hash: [u8; 32],
    /// The authority-signed order encoding, 1..=[`MAX_SIGNED_ORDER`] bytes (opaque here).
    pub signed_order: Vec<u8>,
    /// The Centre release the table was built from.
    pub release_number: u64,
    /// That release's hash.
    pub release_hash: [u8; 32],
    /// The provider's case id.
    pub case_id: u64,
    /// The provider's reference to the account (1..=[`crate::MAX_ACCOUNT`] bytes, no control characters).
    pub account: String,
    /// The reviewers flagged the case urgent (a child in present danger).
    pub urgent: bool,
    /// The case needed two reviewers.
    pub four_eyes: bool,
    /// When the account crossed the threshold, Unix seconds.
    pub threshold_at: i64,
    /// When the report was made, Unix seconds.
    pub created_at: i64,
    /// The case's items, 1..=[`MAX_ITEMS`], voucher ids pairwise distinct.
    pub items: Vec<ReportItem>,
    /// The review decisions, 1..=[`MAX_DECISIONS`], in the order they were made.
    pub decisions: Vec<Decision>,
}

/// A provider's withdrawal of a report it sent (an upheld appeal, or an error found later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    /// The withdrawal id (the message id).
    pub withdrawal_id: [u8; 16],
    /// The provider's name.
    pub provider: String,
    /// The report withdrawn.
    pub report_id: [u8; 16],
    /// The order that report arose under.
    pub order_id: [u8; 16],
    /// Why, 1..=[`crate::MAX_TEXT`] bytes.
    pub reason: String,
    /// When, Unix seconds.
    pub at: i64,
}

/// One indicator's counts in an [`IndicatorFeedback`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndicatorCount {
    /// The indicator's primary hash, 1..=[`MAX_PRIMARY`] bytes.
    pub primary: Vec<u8>,
    /// Items of this indicator dropped by the second-hash check.
    pub second_hash_drops: u64,
    /// Items of this indicator whose case reviewers rejected.
    pub review_rejections: u64,
}

/// What a provider tells the Centre about the indicators of a release under an order: how often each produced a
/// second-hash drop or a review rejection (the Centre's input for removing false positives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndicatorFeedback {
    /// The feedback id (the message id).
    pub feedback_id: [u8; 16],
    /// The provider's name.
    pub provider: String,
    /// The order.
    pub order_id: [u8; 16],
    /// The release the counts are about.
    pub release_number: u64,
    /// The counts, 1..=[`MAX_FEEDBACK_ENTRIES`], strictly ascending by primary.
    pub entries: Vec<IndicatorCount>,
    /// When, Unix seconds.
    pub at: i64,
}

/// Anything a provider sends the Centre.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A report of a confirmed case.
    Report(Report),
    /// The withdrawal of a report.
    Withdrawal(Withdrawal),
    /// Indicator feedback.
    Feedback(IndicatorFeedback),
}

/// Length of a `bytes` field: the u32 prefix and the content.
fn field_len(n: usize) -> usize {
    n.saturating_add(4)
}

impl Decision {
    fn validate(&self) -> Result<()> {
        check_name("decision reviewer", &self.reviewer)?;
        if !self.reason.fits(self.verdict) {
            return Err(invalid("decision reason", "a confirm needs known-image, a reject another reason"));
        }
        check_text("decision comment", &self.comment, false)
    }

    fn encoded_len(&self) -> usize {
        field_len(self.reviewer.len()).saturating_add(3).saturating_add(field_len(self.comment.len())).saturating_add(8)
    }

    fn write(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.reviewer.as_bytes());
        out.push(self.role.tag());
        out.push(self.verdict.tag());
        out.push(self.reason.tag());
        put_bytes(out, self.comment.as_bytes());
        out.extend_from_slice(&self.at.to_le_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Decision {
            reviewer: string(r, "decision reviewer")?,
            role: Role::from_tag(r.u8()?)?,
            verdict: Verdict::from_tag(r.u8()?)?,
            reason: ReasonCode::from_tag(r.u8()?)?,
            comment: string(r, "decision comment")?,
            at: r.i64()?,
        })
    }
}

/// Smallest encodings of a list element, so that a decoder never reserves more than the input could fill.
const MIN_ITEM_LEN: usize = 16 + 4 + 1;
const MIN_DECISION_LEN: usize = 4 + 1 + 3 + 4 + 8;
const MIN_ENTRY_LEN: usize = 4 + 1 + 8 + 8;

/// Capacity to reserve for `n` elements of at least `min_len` bytes each: no more than the rest of the input
/// could hold, so a short input with a large count cannot make the decoder allocate.
fn capacity(n: usize, r: &Reader<'_>, min_len: usize) -> usize {
    n.min(r.remaining() / min_len)
}

const ITEMS_RULE: &str = "a report has 1..=1024 items";
const DECISIONS_RULE: &str = "a report has 1..=16 decisions";
const ENTRIES_RULE: &str = "a feedback has 1..=100000 entries";

impl Report {
    fn validate(&self) -> Result<()> {
        check_name("provider", &self.provider)?;
        if self.signed_order.is_empty() || self.signed_order.len() > MAX_SIGNED_ORDER {
            return Err(invalid("signed order", "must be 1..=65536 bytes"));
        }
        check_account(&self.account)?;
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            return Err(invalid("items", ITEMS_RULE));
        }
        if self.items.iter().any(|i| i.ad.is_empty() || i.ad.len() > MAX_AD) {
            return Err(invalid("item associated data", "must be 1..=65535 bytes"));
        }
        let mut ids: Vec<[u8; 16]> = self.items.iter().map(|i| i.voucher_id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
            return Err(invalid("items", "two items have the same voucher id"));
        }
        if self.decisions.is_empty() || self.decisions.len() > MAX_DECISIONS {
            return Err(invalid("decisions", DECISIONS_RULE));
        }
        self.decisions.iter().try_for_each(Decision::validate)
    }

    fn encoded_len(&self) -> usize {
        let items = self.items.iter().fold(4usize, |n, i| n.saturating_add(16).saturating_add(field_len(i.ad.len())));
        let decisions = self.decisions.iter().fold(4usize, |n, d| n.saturating_add(d.encoded_len()));
        [
            16,
            field_len(self.provider.len()),
            16 + 32,
            field_len(self.signed_order.len()),
            8 + 32 + 8,
            field_len(self.account.len()),
            2 + 8 + 8,
            items,
            decisions,
        ]
        .iter()
        .fold(0usize, |a, b| a.saturating_add(*b))
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.report_id);
        put_bytes(out, self.provider.as_bytes());
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.order_hash);
        put_bytes(out, &self.signed_order);
        out.extend_from_slice(&self.release_number.to_le_bytes());
        out.extend_from_slice(&self.release_hash);
        out.extend_from_slice(&self.case_id.to_le_bytes());
        put_bytes(out, self.account.as_bytes());
        put_bool(out, self.urgent);
        put_bool(out, self.four_eyes);
        out.extend_from_slice(&self.threshold_at.to_le_bytes());
        out.extend_from_slice(&self.created_at.to_le_bytes());
        put_count(out, self.items.len());
        for item in &self.items {
            out.extend_from_slice(&item.voucher_id);
            put_bytes(out, &item.ad);
        }
        put_count(out, self.decisions.len());
        for d in &self.decisions {
            d.write(out);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let report_id = r.array()?;
        let provider = string(r, "provider")?;
        let order_id = r.array()?;
        let order_hash = r.array()?;
        let signed_order = bytes(r)?.to_vec();
        let release_number = r.u64()?;
        let release_hash = r.array()?;
        let case_id = r.u64()?;
        let account = string(r, "account")?;
        let urgent = boolean(r, "urgent flag")?;
        let four_eyes = boolean(r, "four-eyes flag")?;
        let threshold_at = r.i64()?;
        let created_at = r.i64()?;
        let n = count(r, "items", MAX_ITEMS, ITEMS_RULE)?;
        let mut items = Vec::with_capacity(capacity(n, r, MIN_ITEM_LEN));
        for _ in 0..n {
            let voucher_id = r.array()?;
            let ad = bytes(r)?.to_vec();
            items.push(ReportItem { voucher_id, ad });
        }
        let n = count(r, "decisions", MAX_DECISIONS, DECISIONS_RULE)?;
        let mut decisions = Vec::with_capacity(capacity(n, r, MIN_DECISION_LEN));
        for _ in 0..n {
            decisions.push(Decision::read(r)?);
        }
        Ok(Report {
            report_id,
            provider,
            order_id,
            order_hash,
            signed_order,
            release_number,
            release_hash,
            case_id,
            account,
            urgent,
            four_eyes,
            threshold_at,
            created_at,
            items,
            decisions,
        })
    }
}

impl Withdrawal {
    fn validate(&self) -> Result<()> {
        check_name("provider", &self.provider)?;
        check_text("withdrawal reason", &self.reason, true)
    }

    fn encoded_len(&self) -> usize {
        (16 + 16 + 16 + 8usize)
            .saturating_add(field_len(self.provider.len()))
            .saturating_add(field_len(self.reason.len()))
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.withdrawal_id);
        put_bytes(out, self.provider.as_bytes());
        out.extend_from_slice(&self.report_id);
        out.extend_from_slice(&self.order_id);
        put_bytes(out, self.reason.as_bytes());
        out.extend_from_slice(&self.at.to_le_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Withdrawal {
            withdrawal_id: r.array()?,
            provider: string(r, "provider")?,
            report_id: r.array()?,
            order_id: r.array()?,
            reason: string(r, "withdrawal reason")?,
            at: r.i64()?,
        })
    }
}

impl IndicatorFeedback {
    fn validate(&self) -> Result<()> {
        check_name("provider", &self.provider)?;
        if self.entries.is_empty() || self.entries.len() > MAX_FEEDBACK_ENTRIES {
            return Err(invalid("feedback entries", ENTRIES_RULE));
        }
        if self.entries.iter().any(|e| e.primary.is_empty() || e.primary.len() > MAX_PRIMARY) {
            return Err(invalid("feedback primary", "must be 1..=64 bytes"));
        }
        if !self.entries.windows(2).all(|w| matches!(w, [a, b] if a.primary < b.primary)) {
            return Err(invalid("feedback entries", "not strictly ascending by primary (unsorted or duplicate)"));
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        let entries =
            self.entries.iter().fold(4usize, |n, e| n.saturating_add(field_len(e.primary.len())).saturating_add(16));
        (16 + 16 + 8 + 8usize).saturating_add(field_len(self.provider.len())).saturating_add(entries)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.feedback_id);
        put_bytes(out, self.provider.as_bytes());
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.release_number.to_le_bytes());
        put_count(out, self.entries.len());
        for e in &self.entries {
            put_bytes(out, &e.primary);
            out.extend_from_slice(&e.second_hash_drops.to_le_bytes());
            out.extend_from_slice(&e.review_rejections.to_le_bytes());
        }
        out.extend_from_slice(&self.at.to_le_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let feedback_id = r.array()?;
        let provider = string(r, "provider")?;
        let order_id = r.array()?;
        let release_number = r.u64()?;
        let n = count(r, "feedback entries", MAX_FEEDBACK_ENTRIES, ENTRIES_RULE)?;
        let mut entries = Vec::with_capacity(capacity(n, r, MIN_ENTRY_LEN));
        for _ in 0..n {
            let primary = bytes(r)?.to_vec();
            let second_hash_drops = r.u64()?;
            let review_rejections = r.u64()?;
            entries.push(IndicatorCount { primary, second_hash_drops, review_rejections });
        }
        let at = r.i64()?;
        Ok(IndicatorFeedback { feedback_id, provider, order_id, release_number, entries, at })
    }
}

impl Message {
    /// The message id: the report's, withdrawal's or feedback's id.
    pub fn id(&self) -> [u8; 16] {
        match self {
            Message::Report(r) => r.report_id,
            Message::Withdrawal(w) => w.withdrawal_id,
            Message::Feedback(f) => f.feedback_id,
        }
    }

    /// The kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Report(_) => MessageKind::Report,
            Message::Withdrawal(_) => MessageKind::Withdrawal,
            Message::Feedback(_) => MessageKind::Feedback,
        }
    }

    /// The provider that sent it (whose key must verify it).
    pub fn provider(&self) -> &str {
        match self {
            Message::Report(r) => &r.provider,
            Message::Withdrawal(w) => &w.provider,
            Message::Feedback(f) => &f.provider,
        }
    }

    /// The detection order it is about.
    pub fn order_id(&self) -> [u8; 16] {
        match self {
            Message::Report(r) => r.order_id,
            Message::Withdrawal(w) => w.order_id,
            Message::Feedback(f) => f.order_id,
        }
    }

    /// Checks every rule of the format (see the module docs), including that the encoding fits
    /// [`MAX_MESSAGE_BODY`].
    pub fn validate(&self) -> Result<()> {
        match self {
            Message::Report(r) => r.validate()?,
            Message::Withdrawal(w) => w.validate()?,
            Message::Feedback(f) => f.validate()?,
        }
        if self.encoded_len() > MAX_MESSAGE_BODY {
            return Err(invalid("message", "encoding larger than MAX_MESSAGE_BODY (16 MiB signed)"));
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        2usize.saturating_add(match self {
            Message::Report(r) => r.encoded_len(),
            Message::Withdrawal(w) => w.encoded_len(),
            Message::Feedback(f) => f.encoded_len(),
        })
    }

    /// The canonical encoding; refuses a message that breaks a rule ([`Message::validate`]).
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(VERSION);
        out.push(self.kind().tag());
        match self {
            Message::Report(r) => r.write(&mut out),
            Message::Withdrawal(w) => w.write(&mut out),
            Message::Feedback(f) => f.write(&mut out),
        }
        Ok(out)
    }

    /// Decodes and validates, refusing a version other than 1, an unknown kind, truncation, trailing bytes and
    /// anything [`Message::validate`] refuses.
    pub fn decode(bytes: &[u8]) -> Result<Message> {
        check_size("message", bytes, MAX_MESSAGE_BODY)?;
        let mut r = Reader::new("message", bytes);
        r.version(VERSION)?;
        let m = match r.u8()? {
            KIND_REPORT => Message::Report(Report::read(&mut r)?),
            KIND_WITHDRAWAL => Message::Withdrawal(Withdrawal::read(&mut r)?),
            KIND_FEEDBACK => Message::Feedback(IndicatorFeedback::read(&mut r)?),
            got => return Err(unknown_tag("message kind", got)),
        };
        r.finish()?;
        m.validate()?;
        Ok(m)
    }
}
