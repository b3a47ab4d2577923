//! Shared fixtures for the case tests, and `spec`: an encoder written from the byte layouts in the docs alone
//! (no validation), which the vector test checks against the crate and the refusal tests use to build encodings
//! that break one rule each.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vouchsafe_case::*;

/// ChaCha20 seeded with `seed` little-endian in the first 8 bytes, zeros after.
pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

pub const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

pub struct Keys {
    pub provider: ProviderSigningKey,
    pub other_provider: ProviderSigningKey,
    pub centre_secret: [u8; 32],
    pub centre: CentreReceiptSigner,
    pub other_centre: CentreReceiptSigner,
}

/// Draws, in order: the provider's 32-byte seed, another provider's, the Centre's, another Centre's.
pub fn keys(seed: u64) -> Keys {
    let mut r = rng(seed);
    let provider = ProviderSigningKey::generate(&mut r);
    let other_provider = ProviderSigningKey::generate(&mut r);
    let mut centre_secret = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut r, &mut centre_secret);
    let mut other = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut r, &mut other);
    Keys {
        provider,
        other_provider,
        centre: CentreReceiptSigner::from_secret_bytes(&centre_secret),
        centre_secret,
        other_centre: CentreReceiptSigner::from_secret_bytes(&other),
    }
}

pub fn report() -> Report {
    Report {
        report_id: *b"kat-report-00001",
        provider: "provider-a.example".into(),
        order_id: *b"kat-order-000001",
        order_hash: [0x0a; 32],
        signed_order: b"authority-signed order bytes (opaque here)".to_vec(),
        release_number: 3,
        release_hash: [0x5a; 32],
        case_id: 42,
        account: "account:7f3e\u{e9}".into(),
        urgent: true,
        four_eyes: true,
        threshold_at: T0 + 3600,
        created_at: T0 + 7200,
        items: vec![
            ReportItem { voucher_id: [0x11; 16], ad: b"associated data of item one".to_vec() },
            ReportItem { voucher_id: [0x01; 16], ad: vec![0xad; 40] },
        ],
        decisions: vec![
            Decision {
                reviewer: "alice@review".into(),
                role: Role::Reviewer,
                verdict: Verdict::Confirm,
                reason: ReasonCode::KnownImage,
                comment: "matches the indicator\nboth items".into(),
                at: T0 + 5000,
            },
            Decision {
                reviewer: "bob.s".into(),
                role: Role::Supervisor,
                verdict: Verdict::Confirm,
                reason: ReasonCode::KnownImage,
                comment: String::new(),
                at: T0 + 6000,
            },
        ],
    }
}

pub fn withdrawal() -> Withdrawal {
    Withdrawal {
        withdrawal_id: *b"kat-withdraw-001",
        provider: "provider-a.example".into(),
        report_id: *b"kat-report-00001",
        order_id: *b"kat-order-000001",
        reason: "appeal upheld".into(),
        at: T0 + 86_400,
    }
}

pub fn feedback() -> IndicatorFeedback {
    IndicatorFeedback {
        feedback_id: *b"kat-feedback-001",
        provider: "provider-a.example".into(),
        order_id: *b"kat-order-000001",
        release_number: 3,
        entries: vec![
            IndicatorCount { primary: vec![0x01; 8], second_hash_drops: 2, review_rejections: 0 },
            IndicatorCount { primary: vec![0x01, 0x02], second_hash_drops: 0, review_rejections: 1 },
            IndicatorCount { primary: vec![0xfe; 64], second_hash_drops: 5, review_rejections: 7 },
        ],
        at: T0 + 2 * 86_400,
    }
}

pub fn receipts(k: &Keys) -> Vec<Receipt> {
    let signed = |m: Message| k.provider.sign(&m).unwrap();
    let rep = signed(Message::Report(report()));
    let wd = signed(Message::Withdrawal(withdrawal()));
    let fb = signed(Message::Feedback(feedback()));
    vec![
        Receipt {
            message_id: rep.message_unverified().unwrap().id(),
            message_digest: rep.digest(),
            kind: MessageKind::Report,
            verdict: ReceiptVerdict::Forwarded { export_id: *b"kat-export-00001" },
            at: T0 + 7300,
        },
        Receipt {
            message_id: rep.message_unverified().unwrap().id(),
            message_digest: rep.digest(),
            kind: MessageKind::Report,
            verdict: ReceiptVerdict::ManifestFalsePositive {
                reason: "indicator 0101010101010101 is marked a false positive".into(),
            },
            at: T0 + 7300,
        },
        Receipt {
            message_id: withdrawal().withdrawal_id,
            message_digest: wd.digest(),
            kind: MessageKind::Withdrawal,
            verdict: ReceiptVerdict::Withdrawn,
            at: T0 + 86_500,
        },
        Receipt {
            message_id: feedback().feedback_id,
            message_digest: fb.digest(),
            kind: MessageKind::Feedback,
            verdict: ReceiptVerdict::Recorded,
            at: T0 + 2 * 86_400 + 100,
        },
    ]
}

pub fn transparency() -> TransparencyReport {
    TransparencyReport {
        provider: "provider-a.example".into(),
        order_id: *b"kat-order-000001",
        from: T0,
        to: T0 + 30 * 86_400,
        counters: vec![
            ("accounts_over_threshold".into(), 3),
            ("cases".into(), 3),
            ("reports_sent".into(), 1),
            ("reviews_rejected".into(), 2),
        ],
        decision_seconds: vec![600, 3600, 86_400],
        created_at: T0 + 31 * 86_400,
    }
}

pub const BUNDLE: &[u8] = b"{\"export\":\"kat\",\"items\":2}\n";

/// The docs' layouts, written out independently of the crate, with no validation at all.
pub mod spec {
    use super::*;

    pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }

    pub fn report(r: &Report) -> Vec<u8> {
        let mut o = vec![1u8, 1];
        o.extend_from_slice(&r.report_id);
        bytes(&mut o, r.provider.as_bytes());
        o.extend_from_slice(&r.order_id);
        o.extend_from_slice(&r.order_hash);
        bytes(&mut o, &r.signed_order);
        o.extend_from_slice(&r.release_number.to_le_bytes());
        o.extend_from_slice(&r.release_hash);
        o.extend_from_slice(&r.case_id.to_le_bytes());
        bytes(&mut o, r.account.as_bytes());
        o.push(r.urgent as u8);
        o.push(r.four_eyes as u8);
        o.extend_from_slice(&r.threshold_at.to_le_bytes());
        o.extend_from_slice(&r.created_at.to_le_bytes());
        o.extend_from_slice(&(r.items.len() as u32).to_le_bytes());
        for i in &r.items {
            o.extend_from_slice(&i.voucher_id);
            bytes(&mut o, &i.ad);
        }
        o.extend_from_slice(&(r.decisions.len() as u32).to_le_bytes());
        for d in &r.decisions {
            bytes(&mut o, d.reviewer.as_bytes());
            o.push(match d.role {
                Role::Reviewer => 1,
                Role::Supervisor => 2,
            });
            o.push(match d.verdict {
                Verdict::Confirm => 1,
                Verdict::Reject => 2,
            });
            o.push(match d.reason {
                ReasonCode::KnownImage => 1,
                ReasonCode::NotMatching => 2,
                ReasonCode::Benign => 3,
                ReasonCode::Illegible => 4,
                ReasonCode::Other => 5,
            });
            bytes(&mut o, d.comment.as_bytes());
            o.extend_from_slice(&d.at.to_le_bytes());
        }
        o
    }

    pub fn withdrawal(w: &Withdrawal) -> Vec<u8> {
        let mut o = vec![1u8, 2];
        o.extend_from_slice(&w.withdrawal_id);
        bytes(&mut o, w.provider.as_bytes());
        o.extend_from_slice(&w.report_id);
        o.extend_from_slice(&w.order_id);
        bytes(&mut o, w.reason.as_bytes());
        o.extend_from_slice(&w.at.to_le_bytes());
        o
    }

    pub fn feedback(f: &IndicatorFeedback) -> Vec<u8> {
        let mut o = vec![1u8, 3];
        o.extend_from_slice(&f.feedback_id);
        bytes(&mut o, f.provider.as_bytes());
        o.extend_from_slice(&f.order_id);
        o.extend_from_slice(&f.release_number.to_le_bytes());
        o.extend_from_slice(&(f.entries.len() as u32).to_le_bytes());
        for e in &f.entries {
            bytes(&mut o, &e.primary);
            o.extend_from_slice(&e.second_hash_drops.to_le_bytes());
            o.extend_from_slice(&e.review_rejections.to_le_bytes());
        }
        o.extend_from_slice(&f.at.to_le_bytes());
        o
    }

    pub fn message(m: &Message) -> Vec<u8> {
        match m {
            Message::Report(r) => report(r),
            Message::Withdrawal(w) => withdrawal(w),
            Message::Feedback(f) => feedback(f),
        }
    }

    pub fn receipt(r: &Receipt) -> Vec<u8> {
        let mut o = vec![1u8];
        o.extend_from_slice(&r.message_id);
        o.extend_from_slice(&r.message_digest);
        o.push(match r.kind {
            MessageKind::Report => 1,
            MessageKind::Withdrawal => 2,
            MessageKind::Feedback => 3,
        });
        match &r.verdict {
            ReceiptVerdict::Forwarded { export_id } => {
                o.push(1);
                o.extend_from_slice(export_id);
            }
            ReceiptVerdict::ManifestFalsePositive { reason } => {
                o.push(2);
                bytes(&mut o, reason.as_bytes());
            }
            ReceiptVerdict::Withdrawn => o.push(3),
            ReceiptVerdict::Recorded => o.push(4),
        }
        o.extend_from_slice(&r.at.to_le_bytes());
        o
    }

    pub fn transparency(t: &TransparencyReport) -> Vec<u8> {
        let mut o = vec![1u8];
        bytes(&mut o, t.provider.as_bytes());
        o.extend_from_slice(&t.order_id);
        o.extend_from_slice(&t.from.to_le_bytes());
        o.extend_from_slice(&t.to.to_le_bytes());
        o.extend_from_slice(&(t.counters.len() as u32).to_le_bytes());
        for (n, v) in &t.counters {
            bytes(&mut o, n.as_bytes());
            o.extend_from_slice(&v.to_le_bytes());
        }
        o.extend_from_slice(&(t.decision_seconds.len() as u32).to_le_bytes());
        for s in &t.decision_seconds {
            o.extend_from_slice(&s.to_le_bytes());
        }
        o.extend_from_slice(&t.created_at.to_le_bytes());
        o
    }

    /// `0x01 ‖ signature ‖ body`, the layout of every signed form, with an Ed25519 signature over `label ‖ body`
    /// by the raw 32-byte secret.
    pub fn signed(secret: &[u8; 32], label: &[u8], body: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(secret);
        let sig = key.sign(&[label, body].concat());
        let mut o = vec![1u8];
        o.extend_from_slice(&sig.to_bytes());
        o.extend_from_slice(body);
        o
    }
}
