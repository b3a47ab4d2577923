//! What follows the threshold: review decisions, the outbox to the Centre,
//! notices, appeals, indicator feedback, closing, purging and per-order
//! statistics. Every refusal is checked to change nothing, against a dump of
//! every row of the database.

use vouchsafe_store::*;

use crate::support::{Backend, conformance};

const ORDER_A: [u8; 16] = [0xa1; 16];
const ORDER_B: [u8; 16] = [0xb2; 16];
const ORDER_HASH: [u8; 32] = [0x0d; 32];
const DAY: i64 = 86400;
const T0: i64 = 100 * DAY;

/// Asserts that `f` fails with `want` (by its message) and that the database is unchanged.
fn refused<T: std::fmt::Debug>(b: &Backend, want: &str, f: impl FnOnce() -> Result<T>) -> StoreError {
    let before = b.dump();
    let err = f().expect_err("refused");
    assert_eq!(err.to_string(), want);
    assert_eq!(b.dump(), before, "a refusal changed nothing");
    err
}

fn item(id: u8) -> CaseItem {
    CaseItem { voucher_id: [id; 16], ad: vec![id; 24] }
}

fn case(s: &dyn Store, account: &str, order: [u8; 16], at: i64, items: &[CaseItem], four_eyes: bool) -> CaseId {
    s.create_case(&NewCase {
        account,
        order_id: order,
        created_at: at,
        items,
        actor: "server",
        four_eyes,
        claimed_by: None,
    })
    .unwrap()
}

fn decision<'a>(reviewer: &'a str, verdict: &'a str, at: i64) -> NewDecision<'a> {
    NewDecision { reviewer, role: "reviewer", verdict, reason: "r-code", comment: "", at, urgent: false }
}

fn decide<'a>(c: CaseId, d: NewDecision<'a>, expected: u32, status: CaseStatus) -> DecideCase<'a> {
    DecideCase {
        case: c,
        decision: d,
        expected_decisions: expected,
        new_status: status,
        report_id: None,
        outbox: None,
        rejected_primaries: &[],
        audit: &[],
    }
}

fn report<'a>(c: CaseId, id: u8, bytes: &'a [u8], at: i64) -> NewOutbox<'a> {
    NewOutbox { message_id: [id; 16], kind: "report", case: Some(c), bytes, created_at: at }
}

const AUDIT: &[AuditEntry<'static>] = &[AuditEntry { at: 1, actor: "tester", action: "test.step", detail: "x=1" }];

/// Message id byte of the report of `c` made by [`confirmed`].
fn report_message(c: CaseId) -> u8 {
    0x50 + c.0 as u8
}

/// A confirmed case with its report queued: (case, outbox id).
fn confirmed(s: &dyn Store, account: &str, at: i64) -> (CaseId, OutboxId) {
    let c = case(s, account, ORDER_A, at, &[item(1), item(2)], false);
    let bytes = b"signed report".as_slice();
    let mut d = decide(c, decision("rev-1", "confirm", at + 10), 0, CaseStatus::Confirmed);
    d.report_id = Some([0x77; 16]);
    d.outbox = Some(report(c, report_message(c), bytes, at + 10));
    s.decide_case(&d).unwrap();
    let id = s.due_outbox(i64::MAX, 10).unwrap().iter().find(|e| e.case == Some(c)).unwrap().id;
    (c, id)
}

fn notice_for<'a>(account: &'a str, c: CaseId, at: i64, attachments: &'a [([u8; 32], u64)]) -> NewNotice<'a> {
    NewNotice {
        account,
        case: c,
        order_id: ORDER_A,
        order_hash: ORDER_HASH,
        reported_at: at,
        attachments,
        appeal_deadline: at + 1000,
    }
}

/// A forwarded case of `account` with its notice (deadline `at + 1000`).
fn forwarded(s: &dyn Store, account: &str, at: i64) -> (CaseId, NoticeId) {
    let (c, id) = confirmed(s, account, at);
    let attachments = [([0xaa; 32], 1234u64)];
    let d = Delivered {
        id,
        at,
        receipt: b"receipt",
        case_status: Some((CaseStatus::Forwarded, "forwarded to LE")),
        notice: Some(notice_for(account, c, at, &attachments)),
        audit: &[],
    };
    assert!(s.outbox_delivered(&d).unwrap());
    let n = s.notices(account).unwrap().iter().find(|n| n.case == c).unwrap().id;
    (c, n)
}

#[test]
fn case_status_names_round_trip() {
    for st in CaseStatus::ALL {
        assert_eq!(CaseStatus::parse(st.as_str()), Some(st));
    }
    assert_eq!(CaseStatus::AwaitingSecond.as_str(), "awaiting-second");
    assert_eq!(CaseStatus::FalsePositive.as_str(), "false-positive");
    for st in [AppealStatus::Pending, AppealStatus::Upheld, AppealStatus::Dismissed] {
        assert_eq!(AppealStatus::parse(st.as_str()), Some(st));
    }
    assert_eq!(CaseStatus::parse("closed"), None);
    assert_eq!(AppealStatus::parse("open"), None);
}

fn four_eyes_needs_two_different_reviewers_and_refusals_change_nothing(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let c = case(s, "alice", ORDER_A, 10, &[item(1)], true);

    // Unknown case.
    refused(path, "not found: case", || {
        s.decide_case(&decide(CaseId(999), decision("rev-1", "confirm", 20), 0, CaseStatus::AwaitingSecond))
    });
    // A four-eyes case cannot be confirmed by one reviewer.
    refused(path, "invalid argument: a four-eyes case needs two confirmations by different reviewers", || {
        s.decide_case(&decide(c, decision("rev-1", "confirm", 20), 0, CaseStatus::Confirmed))
    });

    let mut first = decide(c, decision("rev-1", "confirm", 20), 0, CaseStatus::AwaitingSecond);
    first.decision.urgent = true;
    first.audit = AUDIT;
    let sum = s.decide_case(&first).unwrap();
    assert_eq!((sum.status, sum.confirmations, sum.urgent, sum.closed_at), (CaseStatus::AwaitingSecond, 1, true, None));
    assert_eq!(sum.reviewer.as_deref(), Some("rev-1"));

    // The same reviewer again.
    refused(path, "conflict: this reviewer already decided the case: four-eyes needs a second reviewer", || {
        s.decide_case(&decide(c, decision("rev-1", "confirm", 30), 1, CaseStatus::Confirmed))
    });
    // A stale view of the case.
    refused(path, "conflict: the case changed since it was read", || {
        s.decide_case(&decide(c, decision("rev-2", "confirm", 30), 0, CaseStatus::Confirmed))
    });
    // An outbox message id already used for other bytes aborts the whole decision.
    let other = NewOutbox { message_id: [9; 16], kind: "feedback", case: None, bytes: b"other", created_at: 5 };
    s.enqueue_outbox(&other, &[]).unwrap();
    refused(path, "conflict: the message id is already used for another message", || {
        let mut d = decide(c, decision("rev-2", "confirm", 30), 1, CaseStatus::Confirmed);
        d.outbox = Some(report(c, 9, b"the report", 30));
        d.report_id = Some([1; 16]);
        d.audit = AUDIT;
        s.decide_case(&d)
    });

    let mut second = decide(c, decision("rev-2", "confirm", 30), 1, CaseStatus::Confirmed);
    second.report_id = Some([0x42; 16]);
    second.outbox = Some(report(c, 1, b"the report", 30));
    let sum = s.decide_case(&second).unwrap();
    assert_eq!(sum.status, CaseStatus::Confirmed);
    assert_eq!((sum.confirmations, sum.urgent, sum.report_id), (2, true, Some([0x42; 16])));
    assert_eq!((sum.reviewer.as_deref(), sum.decided_at, sum.closed_at), (Some("rev-2"), Some(30), None));
    let ds = s.case_decisions(c).unwrap();
    assert_eq!(ds.iter().map(|d| (d.reviewer.as_str(), d.at)).collect::<Vec<_>>(), [("rev-1", 20), ("rev-2", 30)]);
    assert_eq!(ds[0].role, "reviewer");
    let due = s.due_outbox(30, 10).unwrap();
    assert_eq!(due.iter().map(|e| e.message_id).collect::<Vec<_>>(), [[9; 16], [1; 16]]);
    assert_eq!(due[1].bytes, b"the report");
    assert_eq!(s.get_case(c).unwrap().unwrap().summary, sum);

    // A decided case takes no more decisions.
    refused(path, "conflict: the case is already decided", || {
        s.decide_case(&decide(c, decision("rev-3", "reject", 40), 2, CaseStatus::Rejected))
    });
    assert_eq!(
        s.verify_audit_chain().unwrap().entries,
        2,
        "case.create and the caller's entry: refusals appended nothing"
    );
}

fn inconsistent_decisions_are_invalid_arguments(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let c = case(s, "alice", ORDER_A, 10, &[item(1)], false);
    let cases: [(&str, DecideCase<'_>); 5] = [
        ("verdict must be confirm or reject", decide(c, decision("r", "maybe", 1), 0, CaseStatus::Rejected)),
        ("a reject verdict cannot confirm the case", decide(c, decision("r", "reject", 1), 0, CaseStatus::Confirmed)),
        (
            "a review decision leads to awaiting-second, confirmed or rejected",
            decide(c, decision("r", "confirm", 1), 0, CaseStatus::Forwarded),
        ),
        ("a report id goes only with a confirmed case", {
            let mut d = decide(c, decision("r", "reject", 1), 0, CaseStatus::Rejected);
            d.report_id = Some([1; 16]);
            d
        }),
        ("the outbox message must be about the decided case", {
            let mut d = decide(c, decision("r", "confirm", 1), 0, CaseStatus::Confirmed);
            d.outbox = Some(report(CaseId(c.0 + 1), 1, b"x", 1));
            d
        }),
    ];
    for (want, d) in cases {
        refused(path, &format!("invalid argument: {want}"), || s.decide_case(&d));
    }
}

fn rejection_closes_the_case_and_feeds_the_indicator_feedback(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let c = case(s, "alice", ORDER_A, 10, &[item(1), item(2)], false);
    let primaries = [vec![3u8; 8], vec![1u8; 8], vec![3u8; 8]];
    let mut d = decide(c, decision("rev-1", "reject", 50), 0, CaseStatus::Rejected);
    d.rejected_primaries = &primaries;
    let sum = s.decide_case(&d).unwrap();
    assert_eq!((sum.status, sum.closed_at, sum.confirmations), (CaseStatus::Rejected, Some(50), 0));

    assert_eq!(
        s.record_second_hash_drops(ORDER_A, &[([1; 16], vec![2u8; 8]), ([2; 16], vec![3u8; 8])], 40).unwrap(),
        2
    );
    // Idempotent per (order, voucher id); another order is separate.
    assert_eq!(s.record_second_hash_drops(ORDER_A, &[([1; 16], vec![2u8; 8])], 41).unwrap(), 0);
    assert_eq!(s.record_second_hash_drops(ORDER_B, &[([1; 16], vec![2u8; 8])], 41).unwrap(), 1);
    refused(path, "invalid argument: a dropped item's primary must not be empty", || {
        s.record_second_hash_drops(ORDER_A, &[([7; 16], vec![9]), ([8; 16], vec![])], 41)
    });

    let fb = s.indicator_feedback(ORDER_A).unwrap();
    let row = |p: u8, d: u64, r: u64| IndicatorFeedbackRow {
        primary: vec![p; 8],
        second_hash_drops: d,
        review_rejections: r,
    };
    assert_eq!(fb, vec![row(1, 0, 1), row(2, 1, 0), row(3, 1, 1)]);
    assert_eq!(s.indicator_feedback(ORDER_B).unwrap(), vec![row(2, 1, 0)]);
}

fn outbox_is_idempotent_on_the_message_id_and_retries_until_delivered(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let c = case(s, "alice", ORDER_A, 10, &[item(1)], false);
    let m = report(c, 1, b"report bytes", 100);
    let id = s.enqueue_outbox(&m, AUDIT).unwrap();
    let after_first = path.dump();
    // The same message again: the same id, nothing written (not even the audit entry).
    assert_eq!(s.enqueue_outbox(&m, AUDIT).unwrap(), id);
    assert_eq!(path.dump(), after_first);
    // The same id with other bytes, kind or case.
    for other in [report(c, 1, b"other bytes", 100), NewOutbox { kind: "feedback", ..m }, NewOutbox { case: None, ..m }]
    {
        refused(path, "conflict: the message id is already used for another message", || {
            s.enqueue_outbox(&other, AUDIT)
        });
    }
    refused(path, "not found: case", || s.enqueue_outbox(&report(CaseId(99), 2, b"x", 1), &[]));
    refused(path, "invalid argument: outbox kind must be report, withdrawal or feedback", || {
        s.enqueue_outbox(&NewOutbox { kind: "letter", ..report(c, 2, b"x", 1) }, &[])
    });
    refused(path, "invalid argument: outbox message must not be empty", || {
        s.enqueue_outbox(&report(c, 2, b"", 1), &[])
    });

    assert_eq!(s.outbox_pending().unwrap(), 1);
    assert!(s.due_outbox(99, 10).unwrap().is_empty(), "not due before its creation");
    let e = s.outbox_entry(id).unwrap().unwrap();
    assert_eq!((e.attempts, e.next_attempt_at, e.delivered_at, e.case), (0, 100, None, Some(c)));
    assert!(!format!("{e:?}").contains("report bytes") && format!("{e:?}").contains("bytes_len: 12"));

    let long = "é".repeat(800);
    assert!(s.outbox_failed(id, None, &long, 160).unwrap());
    assert!(s.outbox_failed(id, None, "connection refused", 200).unwrap());
    let e = s.outbox_entry(id).unwrap().unwrap();
    assert_eq!((e.attempts, e.next_attempt_at, e.last_error.as_deref()), (2, 200, Some("connection refused")));
    assert!(s.due_outbox(199, 10).unwrap().is_empty());
    assert_eq!(s.due_outbox(200, 10).unwrap(), vec![e]);
    assert!(s.outbox_failed(id, None, &long, 300).unwrap());
    assert_eq!(s.outbox_entry(id).unwrap().unwrap().last_error.unwrap().len(), 1000, "truncated at a char boundary");
    refused(path, "not found: outbox entry", || s.outbox_failed(OutboxId(99), None, "x", 1));

    // A feedback entry about no case cannot carry a verdict.
    let fb = s
        .enqueue_outbox(
            &NewOutbox { message_id: [5; 16], kind: "feedback", case: None, bytes: b"fb", created_at: 1 },
            &[],
        )
        .unwrap();
    refused(path, "invalid argument: only a report's delivery carries a verdict or a notice", || {
        s.outbox_delivered(&Delivered {
            id: fb,
            at: 2,
            receipt: b"r",
            case_status: Some((CaseStatus::Forwarded, "")),
            notice: None,
            audit: &[],
        })
    });
    assert!(
        s.outbox_delivered(&Delivered { id: fb, at: 2, receipt: b"r", case_status: None, notice: None, audit: &[] })
            .unwrap()
    );
    refused(path, "not found: outbox entry", || {
        s.outbox_delivered(&Delivered {
            id: OutboxId(99),
            at: 2,
            receipt: b"r",
            case_status: None,
            notice: None,
            audit: &[],
        })
    });
}

fn delivery_applies_the_verdict_and_the_notice_once(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let (c, id) = confirmed(s, "alice", 100);
    let attachments = [([0xaa; 32], 1234u64), ([0xbb; 32], 99)];
    let d = Delivered {
        id,
        at: 500,
        receipt: b"centre receipt",
        case_status: Some((CaseStatus::Forwarded, "forwarded to LE")),
        notice: Some(notice_for("alice", c, 500, &attachments)),
        audit: AUDIT,
    };
    // A notice that does not match the case is refused as a whole.
    refused(path, "invalid argument: the notice's account or order is not the case's", || {
        s.outbox_delivered(&Delivered { notice: Some(notice_for("bob", c, 500, &attachments)), ..d })
    });
    refused(path, "invalid argument: the notice is about another case than the report", || {
        s.outbox_delivered(&Delivered { notice: Some(notice_for("alice", CaseId(c.0 + 5), 500, &attachments)), ..d })
    });
    refused(path, "invalid argument: the Centre's verdict is forwarded or false-positive", || {
        s.outbox_delivered(&Delivered { case_status: Some((CaseStatus::Withdrawn, "")), ..d })
    });

    assert!(s.outbox_delivered(&d).unwrap());
    let sum = s.get_case(c).unwrap().unwrap().summary;
    assert_eq!(sum.status, CaseStatus::Forwarded);
    assert_eq!(
        (sum.centre_verdict.as_deref(), sum.centre_reason.as_deref()),
        (Some("forwarded"), Some("forwarded to LE"))
    );
    assert_eq!(sum.closed_at, None, "a forwarded case closes at the appeal deadline or decision");
    assert_eq!(s.outbox_pending().unwrap(), 0);
    assert_eq!(s.outbox_entry(id).unwrap().unwrap().delivered_at, Some(500));
    let notices = s.notices("alice").unwrap();
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert_eq!((n.case, n.order_id, n.order_hash, n.reported_at), (c, ORDER_A, ORDER_HASH, 500));
    assert_eq!((n.appeal_deadline, n.action_reversed, &n.appeal), (1500, false, &None));
    assert_eq!(n.attachments, attachments.to_vec());
    assert_eq!(s.notice(n.id).unwrap().as_ref(), Some(n));
    assert!(s.notices("bob").unwrap().is_empty());

    // Delivered twice: false, nothing changes.
    let before = path.dump();
    assert!(!s.outbox_delivered(&Delivered { at: 600, ..d }).unwrap());
    assert_eq!(path.dump(), before);

    // A false positive closes the case at delivery, without a notice.
    let (c2, id2) = confirmed(s, "bob", 200);
    let fp = Delivered {
        id: id2,
        at: 700,
        receipt: b"r",
        case_status: Some((CaseStatus::FalsePositive, "manifest false positive")),
        notice: None,
        audit: &[],
    };
    assert!(s.outbox_delivered(&fp).unwrap());
    let sum = s.get_case(c2).unwrap().unwrap().summary;
    assert_eq!((sum.status, sum.closed_at), (CaseStatus::FalsePositive, Some(700)));
}

fn appeals_refusals_change_nothing(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let (_c, n) = forwarded(s, "alice", 1000); // deadline 2000
    let (_c2, n2) = forwarded(s, "bob", 1000);

    // Another account's notice and a missing one give the same answer.
    let other = refused(path, "not found: notice", || s.file_appeal("bob", n, "not mine", 1100, AUDIT));
    let missing = refused(path, "not found: notice", || s.file_appeal("bob", NoticeId(999), "none", 1100, AUDIT));
    assert_eq!(format!("{other:?}"), format!("{missing:?}"));
    // After the deadline.
    refused(path, "conflict: the appeal deadline has passed", || s.file_appeal("alice", n, "late", 2001, AUDIT));

    // On the deadline still counts.
    let a = s.file_appeal("alice", n, "this is my holiday photo", 2000, AUDIT).unwrap();
    assert_eq!((a.notice, a.account.as_str(), a.status, a.filed_at), (n, "alice", AppealStatus::Pending, 2000));
    assert_eq!(s.notice(n).unwrap().unwrap().appeal, Some(a.clone()));
    refused(path, "conflict: the notice was already appealed", || s.file_appeal("alice", n, "again", 1500, AUDIT));

    let a2 = s.file_appeal("bob", n2, "", 1200, &[]).unwrap();
    assert_eq!(s.list_appeals(None, 10).unwrap().iter().map(|a| a.id).collect::<Vec<_>>(), [a2.id, a.id]);
    assert_eq!(s.list_appeals(Some(AppealStatus::Pending), 1).unwrap().len(), 1);
    assert_eq!(s.appeal(a.id).unwrap(), Some(a.clone()));
    assert_eq!(s.appeal(AppealId(999)).unwrap(), None);

    // Decisions.
    let dismiss = DecideAppeal {
        appeal: a2.id,
        uphold: false,
        by: "sup",
        reason: "the match stands",
        at: 2500,
        withdrawal: None,
        audit: AUDIT,
    };
    refused(path, "invalid argument: a dismissed appeal sends no withdrawal", || {
        s.decide_appeal(&DecideAppeal {
            withdrawal: Some(NewOutbox {
                message_id: [3; 16],
                kind: "withdrawal",
                case: Some(a2.case),
                bytes: b"w",
                created_at: 1,
            }),
            ..dismiss
        })
    });
    refused(path, "not found: appeal", || s.decide_appeal(&DecideAppeal { appeal: AppealId(999), ..dismiss }));
    let d2 = s.decide_appeal(&dismiss).unwrap();
    assert_eq!(
        (d2.status, d2.decided_by.as_deref(), d2.decided_at),
        (AppealStatus::Dismissed, Some("sup"), Some(2500))
    );
    let sum = s.get_case(a2.case).unwrap().unwrap().summary;
    assert_eq!((sum.status, sum.closed_at), (CaseStatus::Forwarded, Some(2500)));
    refused(path, "conflict: the appeal was already decided", || s.decide_appeal(&dismiss));

    let withdrawal = NewOutbox {
        message_id: [4; 16],
        kind: "withdrawal",
        case: Some(a.case),
        bytes: b"signed withdrawal",
        created_at: 2600,
    };
    let uphold = DecideAppeal {
        appeal: a.id,
        uphold: true,
        by: "sup",
        reason: "not a match",
        at: 2600,
        withdrawal: Some(withdrawal),
        audit: AUDIT,
    };
    refused(path, "invalid argument: an upheld appeal needs the withdrawal to send", || {
        s.decide_appeal(&DecideAppeal { withdrawal: None, ..uphold })
    });
    refused(path, "invalid argument: the withdrawal must be about the appealed case", || {
        s.decide_appeal(&DecideAppeal { withdrawal: Some(NewOutbox { case: Some(a2.case), ..withdrawal }), ..uphold })
    });
    let up = s.decide_appeal(&uphold).unwrap();
    assert_eq!(up.status, AppealStatus::Upheld);
    let sum = s.get_case(a.case).unwrap().unwrap().summary;
    assert_eq!((sum.status, sum.closed_at), (CaseStatus::Withdrawn, Some(2600)));
    assert!(s.notice(n).unwrap().unwrap().action_reversed);
    let due = s.due_outbox(2600, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].kind.as_str(), due[0].case, due[0].bytes.as_slice()),
        ("withdrawal", Some(a.case), &b"signed withdrawal"[..])
    );
    refused(path, "conflict: the appeal was already decided", || s.decide_appeal(&uphold));
    refused(path, "conflict: the appeal was already decided", || {
        s.decide_appeal(&DecideAppeal { uphold: false, withdrawal: None, ..uphold })
    });
    s.verify_audit_chain().unwrap();
}

fn cases_close_at_the_appeal_deadline_unless_an_appeal_is_pending(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let (c1, _) = forwarded(s, "alice", 1000); // deadline 2000, no appeal
    let (c2, n2) = forwarded(s, "bob", 1000); // appealed, pending
    s.file_appeal("bob", n2, "appeal", 1500, &[]).unwrap();
    let (c3, _) = forwarded(s, "carol", 1500); // deadline 2500

    let before = path.dump();
    assert_eq!(s.close_expired_cases(2000, "retention").unwrap(), 0, "the deadline itself is still open");
    assert_eq!(path.dump(), before);
    assert_eq!(s.close_expired_cases(2001, "retention").unwrap(), 1);
    let closed = |c: CaseId| s.get_case(c).unwrap().unwrap().summary.closed_at;
    assert_eq!((closed(c1), closed(c2), closed(c3)), (Some(2000), None, None));
    let last = s.audit_entries(0, 1000).unwrap().pop().unwrap();
    assert_eq!((last.action.as_str(), last.actor.as_str()), ("case.close", "retention"));
    assert_eq!(last.detail, format!("case={} reason=appeal-deadline", c1.0));
    assert_eq!(s.close_expired_cases(3000, "retention").unwrap(), 1, "c3 now; c2 waits for its appeal");
    assert_eq!(s.close_expired_cases(3000, "retention").unwrap(), 0);
    assert_eq!((closed(c2), closed(c3)), (None, Some(2500)));
}

fn purge_of_closed_cases_keeps_metadata_and_counts(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let (c1, _) = forwarded(s, "alice", 1000);
    let (c2, _) = forwarded(s, "bob", 1000);
    let c3 = case(s, "carol", ORDER_A, 1000, &[item(7)], false);
    s.decide_case(&decide(c3, decision("rev-1", "reject", 1100), 0, CaseStatus::Rejected)).unwrap();
    s.close_expired_cases(2001, "retention").unwrap(); // c1, c2 closed at 2000; c3 closed at 1100
    let before_c1 = s.get_case(c1).unwrap().unwrap();
    let report_entry = s.due_outbox(i64::MAX, 10).unwrap();
    assert!(report_entry.is_empty());

    // Closed before 1500: only c3.
    let r = s.purge_closed_cases(1500, 3000, "retention").unwrap();
    assert_eq!(r, PurgeReport { cases: 1, case_items: 1, ..PurgeReport::default() });
    let r = s.purge_closed_cases(2001, 3000, "retention").unwrap();
    assert_eq!(r, PurgeReport { cases: 2, case_items: 4, outbox_entries: 2, ..PurgeReport::default() });

    let after = s.get_case(c1).unwrap().unwrap();
    assert!(after.summary.ad_purged);
    assert_eq!(after.summary, CaseSummary { ad_purged: true, ..before_c1.summary.clone() }, "metadata stays");
    assert_eq!(after.items.len(), 2);
    assert!(after.items.iter().all(|i| i.ad.is_empty()));
    assert_eq!(after.items.iter().map(|i| i.voucher_id).collect::<Vec<_>>(), [[1; 16], [2; 16]]);
    assert_eq!(s.case_decisions(c1).unwrap().len(), 1);
    assert_eq!(s.notices("alice").unwrap().len(), 1, "the user's notice stays");
    assert!(!s.get_case(c2).unwrap().unwrap().items.iter().any(|i| !i.ad.is_empty()));
    // The delivered report's bytes are gone, its metadata stays; the message id still answers the same.
    let e = s.outbox_entry(OutboxId(1)).unwrap().unwrap();
    assert_eq!((e.bytes.len(), e.delivered_at, e.case), (0, Some(1000), Some(c1)));
    assert_eq!(s.enqueue_outbox(&report(c1, report_message(c1), b"signed report", 1010), &[]).unwrap(), OutboxId(1));

    let purges: Vec<AuditRecord> =
        s.audit_entries(0, 1000).unwrap().into_iter().filter(|a| a.action == "case.purge").collect();
    assert_eq!(purges.len(), 3);
    assert_eq!(purges[1].detail, format!("case={} items=2 outbox_entries=1", c1.0));
    s.verify_audit_chain().unwrap();
    // No associated data and no delivered message bytes left in the database.
    let left = |sql: &str| path.count(sql);
    assert_eq!(left("SELECT COUNT(*) FROM case_item WHERE ad IS NOT NULL"), 0);
    assert_eq!(left("SELECT COUNT(*) FROM outbox WHERE bytes IS NOT NULL"), 0);

    // Nothing left: a second run changes nothing.
    let before = path.dump();
    assert_eq!(s.purge_closed_cases(i64::MAX, 4000, "retention").unwrap(), PurgeReport::default());
    assert_eq!(path.dump(), before);
    let st = s.order_stats(ORDER_A, None, None).unwrap();
    assert_eq!((st.purged_items, st.cases, st.cases_closed, st.notices), (5, 3, 3, 2));
}

/// Leases: what one sender leases, nobody finds due until the lease ends or the outcome is recorded; senders
/// leasing at once (several stores on one database, as replicas) get disjoint entries, every entry once.
fn outbox_leases_hand_each_due_message_to_one_sender(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let c = case(s, "alice", ORDER_A, 10, &[item(1)], false);
    let ids: Vec<OutboxId> =
        (0..40u8).map(|i| s.enqueue_outbox(&report(c, 0x80 + i, b"report", 100), &[]).unwrap()).collect();
    refused(path, "invalid argument: an outbox lease must end after now", || s.lease_outbox(100, 100, 10));
    assert!(s.lease_outbox(99, 500, 10).unwrap().is_empty(), "nothing due before its creation");

    // Four stores lease at once, five at a time, until nothing is due: every entry leased exactly once.
    let stores: Vec<std::sync::Arc<dyn Store>> = (0..4).map(|_| path.reopen()).collect();
    let leased: Vec<Vec<OutboxEntry>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|st| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = st.lease_outbox(100, 500, 5).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        assert!(got.windows(2).all(|w| w[0].id.0 < w[1].id.0), "oldest first");
                        mine.extend(got);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<OutboxId> = leased.iter().flatten().map(|e| e.id).collect();
    all.sort_by_key(|id| id.0);
    assert_eq!(all, ids, "every due entry leased once, by one store");
    for e in leased.iter().flatten() {
        assert_eq!((e.next_attempt_at, e.attempts, e.bytes.as_slice()), (500, 0, &b"report"[..]));
        assert_eq!(s.outbox_entry(e.id).unwrap().unwrap().next_attempt_at, 500, "the lease is stored");
    }
    assert!(s.due_outbox(499, 100).unwrap().is_empty(), "nothing due while leased");

    // Outcomes: one delivered, one failed (its own retry time, which overrides the lease); the rest due again at
    // the lease's end, for the next sender.
    let d = Delivered { id: ids[0], at: 200, receipt: b"r", case_status: None, notice: None, audit: &[] };
    assert!(s.outbox_delivered(&d).unwrap());
    assert!(s.outbox_failed(ids[1], Some(500), "connection refused", 300).unwrap());
    assert!(!s.outbox_failed(ids[0], Some(500), "late", 300).unwrap(), "a delivered entry records no failure");
    assert_eq!(s.lease_outbox(300, 400, 100).unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
    let again = s.lease_outbox(500, 900, 100).unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), ids[1..], "the delivered one never again");
    assert_eq!(s.outbox_entry(ids[1]).unwrap().unwrap().attempts, 1, "a lease is not an attempt");

    // Fencing: ids[2] was leased until 500 by a sender that is still trying; at 500 another sender leased it until
    // 900. The first one's failure, recorded late, leaves the newer lease alone; the second one's counts.
    assert!(!s.outbox_failed(ids[2], Some(500), "slow pass", 600).unwrap(), "a lease that ran out records nothing");
    let e = s.outbox_entry(ids[2]).unwrap().unwrap();
    assert_eq!((e.next_attempt_at, e.attempts, e.last_error), (900, 0, None), "the newer lease stands");
    assert!(s.outbox_failed(ids[2], Some(900), "connection refused", 1000).unwrap());
    let e = s.outbox_entry(ids[2]).unwrap().unwrap();
    assert_eq!((e.next_attempt_at, e.attempts), (1000, 1));
}

/// Log cosignatures: one line per witness and checkpoint, the latest kept, visible to every store on the
/// database; malformed ones refused without a change.
fn log_cosignatures_are_shared_one_per_witness_and_checkpoint(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let (cp1, cp2, cp3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let put = |origin: &str, checkpoint: &[u8; 32], tree_size: u64, witness: &str, line: &str, at: i64| {
        s.put_log_cosignature(&NewLogCosignature { origin, checkpoint, tree_size, witness, line, at })
    };
    assert_eq!(s.log_cosignatures("log.example", &cp1).unwrap(), LogCosignatures::default());
    put("log.example", &cp1, 5, "witness-b 0a0b0c0d", "\u{2014} witness-b AAAA", 10).unwrap();
    put("log.example", &cp1, 5, "witness-a 01020304", "\u{2014} witness-a BBBB", 11).unwrap();
    put("log.example", &cp2, 7, "witness-a 01020304", "\u{2014} witness-a CCCC", 12).unwrap();
    // Another log (another origin) on the same database: its sizes are its own.
    put("other.example", &cp3, 99, "witness-a 01020304", "\u{2014} witness-a EEEE", 12).unwrap();
    // A later cosignature of the same checkpoint by the same witness replaces its line.
    put("log.example", &cp1, 5, "witness-b 0a0b0c0d", "\u{2014} witness-b DDDD", 13).unwrap();
    let other = path.reopen();
    let got = other.log_cosignatures("log.example", &cp1).unwrap();
    assert_eq!(got.lines, ["\u{2014} witness-a BBBB", "\u{2014} witness-b DDDD"]);
    assert_eq!(got.largest_cosigned_size, 7, "the largest size over the origin's checkpoints");
    assert_eq!(other.log_cosignatures("log.example", &cp2).unwrap().lines, ["\u{2014} witness-a CCCC"]);
    let none = other.log_cosignatures("log.example", &[4u8; 32]).unwrap();
    assert_eq!((none.lines.len(), none.largest_cosigned_size), (0, 7));
    assert_eq!(other.log_cosignatures("other.example", &cp3).unwrap().largest_cosigned_size, 99);
    let line = "invalid argument: cosignature must be one line of 1..=8192 bytes";
    refused(path, line, || put("log.example", &cp1, 5, "w", "", 1));
    refused(path, line, || put("log.example", &cp1, 5, "w", "two\nlines", 1));
    refused(path, line, || put("log.example", &cp1, 5, "w", &"x".repeat(8193), 1));
    refused(path, "invalid argument: witness must be 1..=512 bytes", || put("log.example", &cp1, 5, "", "l", 1));
    refused(path, "invalid argument: log origin must be 1..=512 bytes", || put("", &cp1, 5, "w", "l", 1));
}

fn an_enqueued_message_survives_a_crash(b: &Backend) {
    let (path, s) = (b, &*b.store);
    let c = case(s, "alice", ORDER_A, 10, &[item(1)], false);
    let id = s.enqueue_outbox(&report(c, 1, b"report", 20), &[]).unwrap();
    // A second store on the same file, as a restarted process would open it
    // while the first one is gone without closing anything.
    let s2 = path.reopen();
    let due = s2.due_outbox(20, 10).unwrap();
    assert_eq!(due.iter().map(|e| (e.id, e.bytes.as_slice())).collect::<Vec<_>>(), [(id, &b"report"[..])]);

    drop(s2);
    let s3 = path.reopen();
    assert_eq!(s3.outbox_pending().unwrap(), 1);
    assert_eq!(s3.due_outbox(20, 10).unwrap()[0].id, id);
}

fn batch(s: &dyn Store, account: &str, id: u8, n: usize, results: BatchResults, at: i64) {
    let v: Vec<Vec<u8>> = (0..n).map(|i| vec![id, i as u8]).collect();
    s.insert_batch(account, [id; 16], &v, at).unwrap();
    let b = s.next_unprocessed(100).unwrap().into_iter().find(|b| b.batch_id == [id; 16]).unwrap();
    s.complete_batch(b.id, &results, at).unwrap();
}

fn order_stats_for_a_scripted_history(b: &Backend) {
    let s = &*b.store;
    let a = Some(ORDER_A);
    let opened = |id: u8| OpenedVoucher { order_id: ORDER_A, voucher_id: [id; 16], payload: vec![id] };
    // Day 0: alice 5 vouchers (3 non-matching, 1 invalid, 1 opened); day 1: bob 4 non-matching, alice 1.
    batch(
        s,
        "alice",
        1,
        5,
        BatchResults { non_matches: 3, invalid: 1, opened: vec![opened(1)], order_id: a, ..Default::default() },
        T0 + 10,
    );
    batch(s, "bob", 2, 4, BatchResults { non_matches: 4, order_id: a, ..Default::default() }, T0 + DAY + 10);
    // A replay counts as invalid.
    batch(s, "alice", 3, 1, BatchResults { opened: vec![opened(1)], order_id: a, ..Default::default() }, T0 + DAY + 20);
    // Not counted: another order, or no order.
    batch(s, "carol", 4, 2, BatchResults { non_matches: 2, order_id: Some(ORDER_B), ..Default::default() }, T0 + 10);
    batch(s, "dave", 5, 2, BatchResults { non_matches: 2, ..Default::default() }, T0 + 10);

    s.record_second_hash_drops(ORDER_A, &[([8; 16], vec![1]), ([9; 16], vec![2])], T0 + 50).unwrap();
    // c1 (alice, four-eyes): two confirmations on day 0, report queued.
    let c1 = case(s, "alice", ORDER_A, T0 + 100, &[item(1)], true);
    s.decide_case(&decide(c1, decision("r1", "confirm", T0 + 200), 0, CaseStatus::AwaitingSecond)).unwrap();
    let mut d = decide(c1, decision("r2", "confirm", T0 + 300), 1, CaseStatus::Confirmed);
    d.outbox = Some(report(c1, 1, b"report", T0 + 300));
    d.report_id = Some([1; 16]);
    s.decide_case(&d).unwrap();
    // c2 (bob): rejected on day 1.
    let c2 = case(s, "bob", ORDER_A, T0 + DAY + 100, &[item(2)], false);
    let prim = [vec![2u8]];
    let mut d = decide(c2, decision("r1", "reject", T0 + DAY + 400), 0, CaseStatus::Rejected);
    d.rejected_primaries = &prim;
    s.decide_case(&d).unwrap();
    // A case of another order.
    case(s, "carol", ORDER_B, T0 + 100, &[item(3)], false);
    // Day 1: the report is forwarded, alice appeals, it is upheld, the withdrawal delivered.
    let rep = s.due_outbox(i64::MAX, 10).unwrap()[0].id;
    let att = [([1; 32], 5u64)];
    let dl = Delivered {
        id: rep,
        at: T0 + DAY + 500,
        receipt: b"r",
        case_status: Some((CaseStatus::Forwarded, "")),
        notice: Some(NewNotice { appeal_deadline: T0 + DAY + 1500, ..notice_for("alice", c1, T0 + DAY + 500, &att) }),
        audit: &[],
    };
    assert!(s.outbox_delivered(&dl).unwrap());
    let n = s.notices("alice").unwrap()[0].id;
    let ap = s.file_appeal("alice", n, "no", T0 + DAY + 600, &[]).unwrap();
    let w =
        NewOutbox { message_id: [2; 16], kind: "withdrawal", case: Some(c1), bytes: b"w", created_at: T0 + DAY + 700 };
    s.decide_appeal(&DecideAppeal {
        appeal: ap.id,
        uphold: true,
        by: "sup",
        reason: "",
        at: T0 + DAY + 700,
        withdrawal: Some(w),
        audit: &[],
    })
    .unwrap();
    let wid = s.due_outbox(i64::MAX, 10).unwrap()[0].id;
    assert!(
        s.outbox_delivered(&Delivered {
            id: wid,
            at: T0 + DAY + 800,
            receipt: b"r",
            case_status: None,
            notice: None,
            audit: &[]
        })
        .unwrap()
    );
    // Day 3: closed cases purged, then the order.
    assert_eq!(s.purge_closed_cases(T0 + 3 * DAY, T0 + 3 * DAY, "retention").unwrap().case_items, 2);
    assert_eq!(s.purge_order(ORDER_A, T0 + 3 * DAY + 1).unwrap().opened_vouchers, 1);

    let whole = s.order_stats(ORDER_A, None, None).unwrap();
    let want = OrderStats {
        vouchers_received: 10,
        vouchers_opened: 1,
        vouchers_non_matching: 7,
        vouchers_invalid: 2,
        accounts: 2,
        accounts_over_threshold: 2,
        cases: 2,
        second_hash_dropped: 2,
        reviews_confirmed: 2,
        reviews_rejected: 1,
        cases_confirmed: 1,
        cases_rejected: 1,
        reports_queued: 1,
        reports_sent: 1,
        centre_forwarded: 1,
        centre_false_positive: 0,
        withdrawals_sent: 1,
        notices: 1,
        appeals_filed: 1,
        appeals_upheld: 1,
        appeals_dismissed: 0,
        purged_items: 2,
        purged_vouchers: 1,
        cases_closed: 2,
        decision_seconds: vec![200, 300],
    };
    assert_eq!(whole, want);

    let day0 = s.order_stats(ORDER_A, Some(T0), Some(T0 + DAY)).unwrap();
    assert_eq!(
        day0,
        OrderStats {
            vouchers_received: 5,
            vouchers_opened: 1,
            vouchers_non_matching: 3,
            vouchers_invalid: 1,
            accounts: 1,
            accounts_over_threshold: 1,
            cases: 1,
            second_hash_dropped: 2,
            reviews_confirmed: 2,
            cases_confirmed: 1,
            reports_queued: 1,
            decision_seconds: vec![200],
            ..OrderStats::default()
        }
    );
    let day1 = s.order_stats(ORDER_A, Some(T0 + DAY), Some(T0 + 2 * DAY)).unwrap();
    assert_eq!(
        day1,
        OrderStats {
            vouchers_received: 5,
            vouchers_non_matching: 4,
            vouchers_invalid: 1,
            accounts: 2,
            accounts_over_threshold: 1,
            cases: 1,
            reviews_rejected: 1,
            cases_rejected: 1,
            reports_sent: 1,
            centre_forwarded: 1,
            withdrawals_sent: 1,
            notices: 1,
            appeals_filed: 1,
            appeals_upheld: 1,
            cases_closed: 2,
            decision_seconds: vec![300],
            ..OrderStats::default()
        }
    );
    // A period that starts mid-day leaves that day's counters out; the events count by their time.
    let from_mid = s.order_stats(ORDER_A, Some(T0 + 1), None).unwrap();
    assert_eq!((from_mid.vouchers_received, from_mid.second_hash_dropped), (5, 2));
    let later = s.order_stats(ORDER_A, Some(T0 + 3 * DAY), None).unwrap();
    assert_eq!(later, OrderStats { purged_items: 2, purged_vouchers: 1, ..OrderStats::default() });
    let b = s.order_stats(ORDER_B, None, None).unwrap();
    assert_eq!((b.vouchers_received, b.accounts, b.cases, b.second_hash_dropped), (2, 1, 1, 0));
    assert_eq!(s.order_stats([0; 16], None, None).unwrap(), OrderStats::default());
}

fn list_cases_limits_and_orders(b: &Backend) {
    let s = &*b.store;
    let ids: Vec<CaseId> = (0..4).map(|i| case(s, "alice", ORDER_A, i, &[], i % 2 == 0)).collect();
    let listed = |f: CaseFilter| s.list_cases(&f).unwrap().iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(listed(CaseFilter::default()), ids);
    assert_eq!(listed(CaseFilter { newest_first: true, limit: Some(2), ..CaseFilter::default() }), [ids[3], ids[2]]);
    assert_eq!(listed(CaseFilter { limit: Some(1), ..CaseFilter::default() }), [ids[0]]);
    assert_eq!(listed(CaseFilter { limit: Some(0), ..CaseFilter::default() }), Vec::<CaseId>::new());
    let all = s.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(all.iter().map(|c| c.four_eyes).collect::<Vec<_>>(), [true, false, true, false]);
}

conformance!(
    four_eyes_needs_two_different_reviewers_and_refusals_change_nothing,
    inconsistent_decisions_are_invalid_arguments,
    rejection_closes_the_case_and_feeds_the_indicator_feedback,
    outbox_is_idempotent_on_the_message_id_and_retries_until_delivered,
    delivery_applies_the_verdict_and_the_notice_once,
    appeals_refusals_change_nothing,
    cases_close_at_the_appeal_deadline_unless_an_appeal_is_pending,
    purge_of_closed_cases_keeps_metadata_and_counts,
    outbox_leases_hand_each_due_message_to_one_sender,
    log_cosignatures_are_shared_one_per_witness_and_checkpoint,
    an_enqueued_message_survives_a_crash,
    order_stats_for_a_scripted_history,
    list_cases_limits_and_orders,
);
