//! The Centre over loopback: every check's refusal (with its precise status and nothing stored), the verdicts, the
//! export bundle and its signature, idempotency, withdrawals and feedback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use common::*;
use tonic::Code;
use vouchsafe_case::{
    Decision, MAX_MESSAGE_BYTES, Message, MessageKind, ProviderSigningKey, ReasonCode, ReceiptVerdict, Role, Verdict,
};
use vouchsafe_centre::export::{self, Bundle, Withdrawn};
use vouchsafe_centre::{RunningCentre, indicator_name};

async fn start(f: &Fixture) -> RunningCentre {
    vouchsafe_centre::start(f.config.clone()).await.unwrap()
}

/// Delivers `bytes` and expects a refusal with `code` whose message contains `needle`, and no new row.
async fn refused(f: &Fixture, centre: &RunningCentre, bytes: Vec<u8>, code: Code, needle: &str) {
    let before = f.rows();
    let exports = f.exports();
    let mut c = client(centre.local_addr()).await;
    let status = deliver(&mut c, bytes).await.expect_err("expected a refusal");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(needle), "{:?} does not contain {needle:?}", status.message());
    assert_eq!(f.rows(), before, "a refused message was stored");
    assert_eq!(f.exports(), exports, "a refused message left an export");
}

fn item_ads(f: &Fixture, which: &[usize]) -> Vec<Vec<u8>> {
    which.iter().map(|i| ad(&f.images[*i], u8::try_from(*i).unwrap())).collect()
}

#[tokio::test]
async fn a_forwarded_report_writes_a_bundle_whose_signature_verifies() {
    let f = Fixture::new(1);
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    let mut report = f.report(1, &item_ads(&f, &[0, 1]));
    report.urgent = true;
    report.four_eyes = true;
    report.decisions.push(Fixture::confirm("bob"));
    let bytes = f.sign(Message::Report(report.clone()));
    let digest = vouchsafe_case::SignedMessage::decode(&bytes).unwrap().digest();
    let receipt = open_receipt(&f.receipt_key(), &deliver(&mut c, bytes).await.unwrap());
    let id = export::export_id(&digest);
    assert_eq!(receipt.verdict, ReceiptVerdict::Forwarded { export_id: id });
    assert_eq!((receipt.message_id, receipt.message_digest, receipt.kind), ([1; 16], digest, MessageKind::Report));
    assert_eq!(f.rows(), 1);
    assert_eq!(f.exports(), vec![hex::encode(id)]);

    let dir = export::export_dir(&f.path().join("exports"), &id);
    let json = std::fs::read(dir.join("bundle.json")).unwrap();
    let sig = export::parse_sig(&std::fs::read(dir.join("bundle.sig")).unwrap()).unwrap();
    f.receipt_key().verify_export(&json, &sig).unwrap();
    // A changed byte does not verify.
    let mut tampered = json.clone();
    tampered[10] ^= 1;
    assert!(f.receipt_key().verify_export(&tampered, &sig).is_err());
    let bundle: Bundle = serde_json::from_slice(&json).unwrap();
    assert_eq!(bundle.export_id, hex::encode(id));
    assert_eq!(bundle.message_digest, hex::encode(digest));
    assert_eq!((bundle.provider.as_str(), bundle.service.as_str(), bundle.release_number), (PROVIDER, SERVICE, 1));
    assert_eq!(bundle.order_hash, hex::encode(f.order.hash()));
    assert_eq!(bundle.account, "account-ref-1");
    assert!(bundle.urgent);
    assert_eq!(bundle.items.len(), 2);
    assert_eq!(bundle.decisions.len(), 2);
    for (i, item) in bundle.items.iter().enumerate() {
        assert_eq!(item.primary, hex::encode(primary(&f.images[i])));
        assert_eq!(item.distance, 0);
        assert_eq!(item.voucher_id, hex::encode(report.items[i].voucher_id));
        let file = std::fs::read(dir.join(&item.image)).unwrap();
        assert_eq!(item.image_sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file)));
        let png = image::load_from_memory(&file).unwrap();
        assert_eq!(png.color(), image::ColorType::L8);
        assert_eq!(png.to_luma8().as_raw(), f.images[i].derivative.as_bytes());
    }
    assert!(!f.path().join("exports").join(format!(".tmp-{}", hex::encode(id))).exists());
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn redelivery_is_idempotent_and_another_message_under_the_same_id_is_refused() {
    let f = Fixture::new(2);
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    let report = f.report(2, &item_ads(&f, &[0]));
    let bytes = f.sign(Message::Report(report.clone()));
    let first = deliver(&mut c, bytes.clone()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = deliver(&mut c, bytes.clone()).await.unwrap();
    assert_eq!(first, second, "a redelivery gets the identical receipt bytes");
    assert_eq!(f.rows(), 1);
    assert_eq!(f.exports().len(), 1);

    let mut other = report;
    other.urgent = true;
    refused(&f, &centre, f.sign(Message::Report(other)), Code::AlreadyExists, "already delivered").await;
    centre.shutdown().await.unwrap();

    // After a restart the stored receipt is still the answer.
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    assert_eq!(deliver(&mut c, bytes).await.unwrap(), first);
    assert_eq!((f.rows(), f.exports().len()), (1, 1));
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_export_left_by_a_crash_before_the_commit_is_kept_on_retry() {
    let f = Fixture::new(3);
    let report = f.report(3, &item_ads(&f, &[0, 2]));
    let bytes = f.sign(Message::Report(report));
    let digest = vouchsafe_case::SignedMessage::decode(&bytes).unwrap().digest();
    let id = export::export_id(&digest);
    {
        // The first attempt: the export was written, then the process died before the transaction committed.
        let centre = start(&f).await;
        let mut c = client(centre.local_addr()).await;
        deliver(&mut c, bytes.clone()).await.unwrap();
        centre.shutdown().await.unwrap();
        let conn = rusqlite::Connection::open(&f.config.database).unwrap();
        conn.execute("DELETE FROM messages", []).unwrap();
        // And a stale temporary directory of another attempt.
        std::fs::create_dir_all(f.path().join("exports").join(format!(".tmp-{}", hex::encode(id)))).unwrap();
    }
    let before = std::fs::read(export::export_dir(&f.path().join("exports"), &id).join("bundle.json")).unwrap();
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    let receipt = open_receipt(&f.receipt_key(), &deliver(&mut c, bytes).await.unwrap());
    assert_eq!(receipt.verdict, ReceiptVerdict::Forwarded { export_id: id });
    assert_eq!(f.rows(), 1);
    assert_eq!(f.exports(), vec![format!(".tmp-{}", hex::encode(id)), hex::encode(id)]);
    let after = std::fs::read(export::export_dir(&f.path().join("exports"), &id).join("bundle.json")).unwrap();
    assert_eq!(before, after, "the bundle on disk is kept as it was");
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flagged_or_removed_indicator_makes_a_manifest_false_positive() {
    let mut f = Fixture::new(4);
    let a = primary(&f.images[0]);
    let c_primary = primary(&f.images[2]);
    f.flag(&a);
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    let receipt = open_receipt(
        &f.receipt_key(),
        &deliver(&mut c, f.sign(Message::Report(f.report(4, &item_ads(&f, &[1, 0]))))).await.unwrap(),
    );
    match receipt.verdict {
        ReceiptVerdict::ManifestFalsePositive { reason } => {
            assert!(reason.contains(&indicator_name(&a)) && reason.contains("marked a false positive"), "{reason}");
            assert!(!reason.contains(&hex::encode(&a)), "the reason names 8 hex digits, not the hash: {reason}");
        }
        other => panic!("expected a false positive, got {other:?}"),
    }
    assert!(f.exports().is_empty(), "a false positive is not exported");

    // C is flagged and removed in release 2; a report made against release 1 naming C is a false positive.
    f.flag(&c_primary);
    f.release(std::slice::from_ref(&c_primary));
    let receipt = open_receipt(
        &f.receipt_key(),
        &deliver(&mut c, f.sign(Message::Report(f.report(5, &item_ads(&f, &[2]))))).await.unwrap(),
    );
    assert!(
        matches!(&receipt.verdict, ReceiptVerdict::ManifestFalsePositive { reason } if reason.contains("marked")),
        "{receipt:?}"
    );
    // Unflag C in the database only: the removal in release 2 still makes it a false positive.
    let mut db = vouchsafe_release::CentreDb::new(vouchsafe_phash::HashConfig::V1.id());
    for r in f.db.records() {
        db.import(
            &r.attestations[0].source().clone(),
            vouchsafe_phash::HashConfig::V1.id(),
            &[vouchsafe_release::ImportEntry {
                primary: r.primary.clone(),
                secondary: r.secondary.clone(),
                reference: "x".into(),
            }],
        )
        .unwrap();
    }
    std::fs::write(f.path().join("centre.db"), db.encode()).unwrap();
    let receipt = open_receipt(
        &f.receipt_key(),
        &deliver(&mut c, f.sign(Message::Report(f.report(6, &item_ads(&f, &[2]))))).await.unwrap(),
    );
    assert!(
        matches!(&receipt.verdict, ReceiptVerdict::ManifestFalsePositive { reason }
            if reason.contains("removed as a false positive in release 2 of line demo")),
        "{receipt:?}"
    );
    // And an item of B alone is forwarded.
    let receipt = open_receipt(
        &f.receipt_key(),
        &deliver(&mut c, f.sign(Message::Report(f.report(7, &item_ads(&f, &[1]))))).await.unwrap(),
    );
    assert!(matches!(receipt.verdict, ReceiptVerdict::Forwarded { .. }), "{receipt:?}");
    assert_eq!(f.rows(), 4);
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn envelopes_that_do_not_decode_or_are_not_signed_by_a_pinned_provider_are_refused() {
    let mut f = Fixture::new(5);
    let centre = start(&f).await;
    let report = f.report(8, &item_ads(&f, &[0]));
    refused(&f, &centre, vec![1, 2, 3], Code::InvalidArgument, "does not decode").await;
    let mut trailing = f.sign(Message::Report(report.clone()));
    trailing.push(0);
    refused(&f, &centre, trailing, Code::InvalidArgument, "does not decode").await;
    // Unsigned: a zero signature.
    let mut unsigned = f.sign(Message::Report(report.clone()));
    unsigned[1..65].fill(0);
    refused(&f, &centre, unsigned, Code::Unauthenticated, "signature does not verify").await;
    // Forged: signed by another key under the pinned provider's name.
    let forger = ProviderSigningKey::generate(&mut f.rng);
    let forged = forger.sign(&Message::Report(report.clone())).unwrap().encode();
    refused(&f, &centre, forged, Code::Unauthenticated, "signature does not verify").await;
    // Unknown provider.
    let mut stranger = report;
    stranger.provider = "provider-z".into();
    let bytes = forger.sign(&Message::Report(stranger)).unwrap().encode();
    refused(&f, &centre, bytes, Code::Unauthenticated, "unknown provider").await;
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_are_refused_with_resource_exhausted() {
    let f = Fixture::new(6);
    let centre = start(&f).await;
    // Just over the limit: the Centre's own check; far over it: tonic's limit, reported the same way.
    for len in [MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES + (1 << 20)] {
        refused(&f, &centre, vec![1u8; len], Code::ResourceExhausted, "larger").await;
    }
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn order_refusals_name_the_check() {
    let mut f = Fixture::new(7);
    let centre = start(&f).await;
    let t = now();
    // Expired before the threshold time.
    let expired = f.issue([8; 16], t - 20 * 86_400, t - 86_400);
    let mut r = f.report(9, &item_ads(&f, &[0]));
    (r.order_id, r.order_hash, r.signed_order) = (*expired.order().order_id(), expired.hash(), expired.encode());
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "expired").await;
    // Not yet valid at the threshold.
    let future = f.issue([9; 16], t + 86_400, t + 10 * 86_400);
    let mut r = f.report(10, &item_ads(&f, &[0]));
    (r.order_id, r.order_hash, r.signed_order) = (*future.order().order_id(), future.hash(), future.encode());
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "not yet valid").await;
    // The order hash does not match.
    let mut r = f.report(11, &item_ads(&f, &[0]));
    r.order_hash[0] ^= 1;
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "order_hash").await;
    // A report from the future.
    let mut r = f.report(12, &item_ads(&f, &[0]));
    r.created_at = t + 3600;
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "future").await;
    // The release named is not the Centre's.
    let mut r = f.report(13, &item_ads(&f, &[0]));
    r.release_hash[0] ^= 1;
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "another hash").await;
    let mut r = f.report(14, &item_ads(&f, &[0]));
    r.release_number = 2;
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "no release 2").await;
    // Revoked: applies at once.
    let order = f.order.clone();
    f.revoke(&order);
    refused(
        &f,
        &centre,
        f.sign(Message::Report(f.report(15, &item_ads(&f, &[0])))),
        Code::FailedPrecondition,
        "revoked",
    )
    .await;
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_service_the_provider_may_not_report_under_is_refused() {
    let mut f = Fixture::new(8);
    let text = std::fs::read_to_string(&f.config_path).unwrap().replace(SERVICE, "other.example");
    std::fs::write(&f.config_path, text).unwrap();
    f.config = vouchsafe_centre::CentreConfig::load(&f.config_path).unwrap();
    let centre = start(&f).await;
    let bytes = f.sign(Message::Report(f.report(16, &item_ads(&f, &[0]))));
    refused(&f, &centre, bytes, Code::FailedPrecondition, "service").await;
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn item_refusals_name_the_item_and_the_check() {
    let f = Fixture::new(9);
    let centre = start(&f).await;
    // Primary not in the release: image 4 was never imported.
    let stranger = image(4);
    let mut items = item_ads(&f, &[0]);
    items.push(ad(&stranger, 9));
    refused(
        &f,
        &centre,
        f.sign(Message::Report(f.report(17, &items))),
        Code::FailedPrecondition,
        "item 1: the primary hash is not an indicator of release 1",
    )
    .await;
    // The stated secondary hash is not the derivative's (a bit flipped in the secondary field, offset 59).
    let mut bad = ad(&f.images[0], 0);
    bad[60] ^= 0x10;
    refused(
        &f,
        &centre,
        f.sign(Message::Report(f.report(18, &[bad]))),
        Code::FailedPrecondition,
        "item 0: the secondary hash is not the one of its derivative",
    )
    .await;
    // Associated data that does not decode.
    refused(
        &f,
        &centre,
        f.sign(Message::Report(f.report(19, &[vec![1, 2, 3]]))),
        Code::FailedPrecondition,
        "item 0: the associated data does not decode",
    )
    .await;
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_secondary_hash_that_disagrees_with_the_indicators_is_refused() {
    // An indicator whose secondary hash is another image's: the device's primary matches, its secondary (honestly
    // computed from its derivative) is far from the indicator's: an adversarial primary collision.
    let mut f = Fixture::new(10);
    let victim = image(5);
    let other = image(6);
    for source in ["source-a", "source-b"] {
        f.db.import(
            &vouchsafe_release::SourceId::new(source).unwrap(),
            vouchsafe_phash::HashConfig::V1.id(),
            &[vouchsafe_release::ImportEntry {
                primary: primary(&victim),
                secondary: other.secondary.to_canonical_bytes(),
                reference: "collision".into(),
            }],
        )
        .unwrap();
    }
    std::fs::write(f.path().join("centre.db"), f.db.encode()).unwrap();
    f.release(&[]);
    let centre = start(&f).await;
    let mut r = f.report(20, &[ad(&victim, 1)]);
    r.release_number = 2;
    r.release_hash = f.chain.head();
    refused(
        &f,
        &centre,
        f.sign(Message::Report(r)),
        Code::FailedPrecondition,
        "item 0: the secondary hash does not confirm the indicator's",
    )
    .await;
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn decisions_must_confirm_and_four_eyes_needs_two_reviewers() {
    let f = Fixture::new(11);
    let centre = start(&f).await;
    let reject = Decision {
        reviewer: "carol".into(),
        role: Role::Supervisor,
        verdict: Verdict::Reject,
        reason: ReasonCode::NotMatching,
        comment: String::new(),
        at: now() - 30,
    };
    let mut r = f.report(21, &item_ads(&f, &[0]));
    r.decisions = vec![reject.clone()];
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "rejects").await;
    let mut r = f.report(22, &item_ads(&f, &[0]));
    r.decisions.push(reject);
    refused(&f, &centre, f.sign(Message::Report(r)), Code::FailedPrecondition, "rejects").await;
    let mut r = f.report(23, &item_ads(&f, &[0]));
    r.four_eyes = true;
    refused(&f, &centre, f.sign(Message::Report(r.clone())), Code::FailedPrecondition, "four eyes").await;
    // Two confirmations by the same reviewer are one pair of eyes.
    r.decisions.push(Fixture::confirm("alice"));
    refused(&f, &centre, f.sign(Message::Report(r.clone())), Code::FailedPrecondition, "four eyes").await;
    r.decisions.push(Fixture::confirm("bob"));
    let mut c = client(centre.local_addr()).await;
    let receipt = open_receipt(&f.receipt_key(), &deliver(&mut c, f.sign(Message::Report(r))).await.unwrap());
    assert!(matches!(receipt.verdict, ReceiptVerdict::Forwarded { .. }));
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn withdrawals_need_a_held_report_and_tell_the_recipient() {
    let f = Fixture::new(12);
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    refused(
        &f,
        &centre,
        f.sign(Message::Withdrawal(f.withdrawal(30, [99; 16]))),
        Code::FailedPrecondition,
        "no report",
    )
    .await;
    let bytes = f.sign(Message::Report(f.report(24, &item_ads(&f, &[0]))));
    let receipt = open_receipt(&f.receipt_key(), &deliver(&mut c, bytes).await.unwrap());
    let ReceiptVerdict::Forwarded { export_id } = receipt.verdict else { panic!("{receipt:?}") };
    let mut w = f.withdrawal(31, [24; 16]);
    w.order_id = [1; 16];
    refused(&f, &centre, f.sign(Message::Withdrawal(w)), Code::FailedPrecondition, "another order").await;

    let w = f.withdrawal(32, [24; 16]);
    let bytes = f.sign(Message::Withdrawal(w.clone()));
    let first = deliver(&mut c, bytes.clone()).await.unwrap();
    let receipt = open_receipt(&f.receipt_key(), &first);
    assert_eq!(
        (receipt.verdict, receipt.kind, receipt.message_id),
        (ReceiptVerdict::Withdrawn, MessageKind::Withdrawal, [32; 16])
    );
    let dir = export::export_dir(&f.path().join("exports"), &export_id);
    let json = std::fs::read(dir.join("WITHDRAWN.json")).unwrap();
    let sig = export::parse_sig(&std::fs::read(dir.join("WITHDRAWN.sig")).unwrap()).unwrap();
    f.receipt_key().verify_export(&json, &sig).unwrap();
    let notice: Withdrawn = serde_json::from_slice(&json).unwrap();
    assert_eq!((notice.report_id, notice.withdrawal_id), (hex::encode([24; 16]), hex::encode([32; 16])));
    assert_eq!(notice.reason, "appeal upheld");
    // Redelivery: the same receipt; another withdrawal of the same report: refused.
    assert_eq!(deliver(&mut c, bytes).await.unwrap(), first);
    refused(
        &f,
        &centre,
        f.sign(Message::Withdrawal(f.withdrawal(33, [24; 16]))),
        Code::FailedPrecondition,
        "already withdrawn",
    )
    .await;
    assert_eq!(f.rows(), 2);
    let s = vouchsafe_centre::stats(&f.config).unwrap();
    assert_eq!(
        (s.total.reports, s.total.forwarded, s.total.withdrawals, s.total.withdrawals_of_forwarded),
        (1, 1, 1, 1)
    );
    centre.shutdown().await.unwrap();
}

#[tokio::test]
async fn feedback_is_recorded_latest_first_and_becomes_removal_proposals() {
    let f = Fixture::new(13);
    let centre = start(&f).await;
    let mut c = client(centre.local_addr()).await;
    let (a, b) = (primary(&f.images[0]), primary(&f.images[1]));
    let t = now();
    let fb = f.feedback(40, vec![(a.clone(), 0, 1), (b.clone(), 1, 0)], t - 100);
    let receipt = open_receipt(&f.receipt_key(), &deliver(&mut c, f.sign(Message::Feedback(fb))).await.unwrap());
    assert_eq!((receipt.verdict, receipt.kind), (ReceiptVerdict::Recorded, MessageKind::Feedback));
    // A later feedback replaces A's counts; an older one arriving afterwards does not.
    let newer = f.feedback(41, vec![(a.clone(), 0, 3)], t - 50);
    deliver(&mut c, f.sign(Message::Feedback(newer))).await.unwrap();
    let older = f.feedback(42, vec![(a.clone(), 0, 0)], t - 200);
    deliver(&mut c, f.sign(Message::Feedback(older))).await.unwrap();
    let rows = vouchsafe_centre::indicator_feedback(&f.config).unwrap();
    let get = |p: &[u8]| rows.iter().find(|r| r.primary == p).unwrap().clone();
    assert_eq!((get(&a).second_hash_drops, get(&a).review_rejections), (0, 3));
    assert_eq!((get(&b).second_hash_drops, get(&b).review_rejections), (1, 0));
    assert_eq!(vouchsafe_centre::removal_proposals(&rows, 2).len(), 2);
    assert_eq!(vouchsafe_centre::removal_proposals(&rows, 4), vec![b.clone()]);
    let s = vouchsafe_centre::stats(&f.config).unwrap();
    assert_eq!(
        (s.total.feedback_messages, s.feedback_indicators, s.second_hash_drops, s.review_rejections),
        (3, 2, 1, 3)
    );
    assert_eq!(s.providers[PROVIDER].feedback_messages, 3);
    centre.shutdown().await.unwrap();
}
