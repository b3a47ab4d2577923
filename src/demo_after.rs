//! Section 5 of the demo: what follows the threshold (DESIGN.md §5), with the provider's Review API, the Centre's
//! intake and the devices' notice API, all over loopback. Alice's case goes through four-eyes review, a signed
//! report, the Centre's forward, a notice, an appeal upheld and the withdrawal; dave's case (planted false
//! positives) is rejected and becomes indicator feedback that the Centre flags; the transparency report is signed,
//! logged and written as HTML. The demo fails if a step does not do what it says.

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::review_client::ReviewClient;
use vouchsafe_server::RunningServer;
use vouchsafe_server::governance::Fixture;
use vouchsafe_store::{CaseFilter, CaseStatus, CaseSummary, SqliteStore, Store};

use crate::demo::{AfterCtx, Device, drain, refused, utc, utc_secs};
use crate::error::{CliError, Result};

fn rt(e: impl std::fmt::Display) -> CliError {
    CliError::runtime(format!("demo: after the threshold: {e}"))
}

fn authed<T>(msg: T, token: &str) -> Result<tonic::Request<T>> {
    let mut r = tonic::Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| rt("a token is not a header value"))?;
    r.metadata_mut().insert("authorization", v);
    Ok(r)
}

fn case_of(store: &SqliteStore, account: &str) -> Result<Option<CaseSummary>> {
    let f = CaseFilter { account: Some(account.to_owned()), ..Default::default() };
    Ok(store.list_cases(&f).map_err(rt)?.pop())
}

/// Waits (bounded) until `account`'s newest case has `status`.
async fn wait_status(store: &SqliteStore, account: &str, status: CaseStatus) -> Result<CaseSummary> {
    let start = Instant::now();
    loop {
        if let Some(c) = case_of(store, account)?
            && c.status == status
        {
            return Ok(c);
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(rt(format!("{account}'s case did not become {} within 30 s", status.as_str())));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[allow(clippy::too_many_arguments)] // one act of the demo script
pub(crate) async fn run(
    dir: &Path,
    fixture: &mut Fixture,
    server: &RunningServer,
    store: &SqliteStore,
    alice: &Device,
    mut dave: Device,
    after: &AfterCtx<'_>,
    time: u64,
) -> Result<()> {
    println!("== 5. After the threshold: review, report, Centre, notice, appeal, statistics ==");
    let review_addr = server.review_addr().ok_or_else(|| rt("the server has no review API"))?;
    let channel = Channel::from_shared(format!("http://{review_addr}")).map_err(rt)?.connect().await.map_err(rt)?;
    let mut review = ReviewClient::new(channel).max_decoding_message_size(64 << 20);
    let [r1, r2] = after.reviewers;
    let sup = after.supervisor;

    // Dave's device sends the planted false positives; he crosses the threshold too.
    dave.client.sync().await.map_err(rt)?;
    let pb = crate::demo::bar(after.planted.len() as u64, "dave's device scanning");
    dave.scan(after.planted, &pb, time).await?;
    pb.finish_and_clear();
    dave.client.submit().await.map_err(rt)?;
    drain(store).await?;
    let alice_case = case_of(store, "alice")?.ok_or_else(|| rt("alice has no case (the rounds did not reveal)"))?;
    let dave_case = case_of(store, "dave")?.ok_or_else(|| rt("dave has no case"))?;
    println!(
        "  REVIEW API on {review_addr} (its own listener and tokens: a device token is unknown there, a reviewer's on the device API)"
    );
    let list = review.list_cases(authed(v1::ListCasesRequest { status: "open".into(), limit: 10 }, r1)?).await;
    for c in list.map_err(rt)?.into_inner().cases {
        println!(
            "    case {} of {}: {} items, opened {}, needs {} confirmations (four-eyes)",
            c.case_id,
            c.account,
            c.items,
            utc_secs(c.created_at),
            c.confirmations_needed
        );
    }
    let device_token_on_review = review.list_cases(authed(v1::ListCasesRequest::default(), after.dave)?).await;
    refused("the Review API, for dave's device token", device_token_on_review.map_err(|s| s.message().to_owned()))?;

    // A blurred view, written as PNG files: what a reviewer's console shows first.
    let view = review
        .get_case(authed(v1::GetCaseRequest { case_id: alice_case.id.0 as u64, full_view: false }, r1)?)
        .await
        .map_err(rt)?
        .into_inner();
    let out = dir.join("review");
    vouchsafe_files::create_private_dir(&out).map_err(|e| rt(e.kind()))?;
    for (i, item) in view.items.iter().enumerate() {
        let path = out.join(format!("case-{}-item-{i:02}.png", alice_case.id.0));
        vouchsafe_files::write_secret(&path, &item.png).map_err(|e| rt(e.kind()))?;
        if i == 0 {
            println!(
                "  REVIEWER-1 opens case {} blurred and grayscale (audited): {} PNGs in {}, e.g. attachment {}…, secondary distance {} to the indicator",
                alice_case.id.0,
                view.items.len(),
                out.display(),
                &item.attachment_ref[..8],
                item.secondary_distance
            );
            if let Ok(img) = image::load_from_memory(&item.png) {
                for line in crate::ascii::render(&img.to_luma8(), 40) {
                    println!("      {line}");
                }
            }
        }
    }

    // Four-eyes: reviewer-1 confirms, the same reviewer cannot confirm twice, reviewer-2 confirms.
    let decide = |case: u64, verdict: &str, reason: &str, comment: &str| v1::DecideRequest {
        case_id: case,
        verdict: verdict.into(),
        reason: reason.into(),
        comment: comment.into(),
        urgent: false,
    };
    let a_id = alice_case.id.0 as u64;
    let s = review
        .decide(authed(decide(a_id, "confirm", "known-image", "matches the indicator"), r1)?)
        .await
        .map_err(rt)?
        .into_inner();
    println!(
        "  REVIEWER-1 confirms case {a_id}: {} ({} of {} confirmations)",
        s.status, s.confirmations, s.confirmations_needed
    );
    let again = review.decide(authed(decide(a_id, "confirm", "known-image", ""), r1)?).await;
    refused("the Review API, for reviewer-1 confirming again", again.map_err(|s| s.message().to_owned()))?;
    let s = review
        .decide(authed(decide(a_id, "confirm", "known-image", "second reviewer agrees"), r2)?)
        .await
        .map_err(rt)?
        .into_inner();
    println!(
        "  REVIEWER-2 confirms: {}; the provider signs the report (order, case, account, items with derivative, hashes, attachment references, decisions) and queues it",
        s.status
    );
    let d_id = dave_case.id.0 as u64;
    review
        .decide(authed(decide(d_id, "reject", "benign", "holiday photos, not what the indicators say"), r2)?)
        .await
        .map_err(rt)?;
    println!(
        "  REVIEWER-2 rejects dave's case {d_id} (benign): counted, its indicators go back to the Centre as feedback"
    );
    let again = review.decide(authed(decide(d_id, "confirm", "known-image", ""), r1)?).await;
    refused("the Review API, for a second decision on a decided case", again.map_err(|s| s.message().to_owned()))?;

    // The outbox delivers; the Centre checks and forwards.
    let c = wait_status(store, "alice", CaseStatus::Forwarded).await?;
    println!(
        "  CENTRE checks the report (provider signature, the order valid and covering it, every item's primary hash in the release, its secondary hash agreeing, the decisions) and forwards it: {}",
        c.centre_reason.unwrap_or_default()
    );
    let exports = dir.join("exports");
    let bundle_dir = std::fs::read_dir(&exports)
        .map_err(|e| rt(e.kind()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
        .ok_or_else(|| rt("no export bundle"))?;
    let bundle = std::fs::read(bundle_dir.join("bundle.json")).map_err(|e| rt(e.kind()))?;
    let sig_hex = std::fs::read_to_string(bundle_dir.join("bundle.sig")).map_err(|e| rt(e.kind()))?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_hex.trim(), &mut sig).map_err(|_| rt("bundle.sig is not hex"))?;
    vouchsafe_case::CentreReceiptKey::from_bytes(&fixture.centre_public())
        .and_then(|k| k.verify_export(&bundle, &sig))
        .map_err(|e| rt(format!("the export bundle does not verify: {e}")))?;
    println!(
        "    signed export bundle for the competent authority in {} (bundle.json, item PNGs, bundle.sig verified under the Centre key)",
        bundle_dir.display()
    );

    // The user is told and appeals.
    let notices = alice.client.notices().await.map_err(rt)?;
    let n = notices.first().ok_or_else(|| rt("alice got no notice"))?;
    println!(
        "  ALICE's app shows notice {}: order {}…, reported {}, {} attachments (e.g. hashed {}); appeal until {}",
        n.id,
        &n.order_id[..8],
        utc_secs(n.reported_at),
        n.attachments.len(),
        n.attachments.first().map(|(_, t)| utc(*t)).unwrap_or_default(),
        utc_secs(n.appeal_deadline)
    );
    println!("    \"{}\"", n.next_steps);
    let not_theirs = dave.client.appeal(n.id, "not mine").await;
    refused("the server, for dave appealing alice's notice", not_theirs)?;
    let a = alice.client.appeal(n.id, "These are my own photos; please look again.").await.map_err(rt)?;
    println!("  ALICE appeals (appeal {}); a second appeal of the same notice would be refused", a.appeal_id);
    let by_reviewer = review
        .decide_appeal(authed(
            v1::DecideAppealRequest { appeal_id: a.appeal_id, uphold: true, reason: "x".into() },
            r1,
        )?)
        .await;
    refused("the Review API, for a reviewer deciding an appeal", by_reviewer.map_err(|s| s.message().to_owned()))?;
    review
        .decide_appeal(authed(
            v1::DecideAppealRequest {
                appeal_id: a.appeal_id,
                uphold: true,
                reason: "On a second look the images are not the known imagery.".into(),
            },
            sup,
        )?)
        .await
        .map_err(rt)?;
    wait_status(store, "alice", CaseStatus::Withdrawn).await?;
    let start = Instant::now();
    while !bundle_dir.join("WITHDRAWN.json").exists() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(rt("the Centre did not record the withdrawal"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let n = alice.client.notices().await.map_err(rt)?;
    let n = n.first().ok_or_else(|| rt("alice's notice vanished"))?;
    println!(
        "  SUPERVISOR upholds it: a signed withdrawal reaches the Centre, which writes WITHDRAWN.json for the recipient; alice's app: appeal {}, account action {}",
        n.appeal_status,
        if n.action_reversed { "reversed" } else { "still active" }
    );

    // Indicator feedback: the Centre sees dave's rejected indicators and flags them.
    let start = Instant::now();
    let rows = loop {
        let rows = vouchsafe_centre::indicator_feedback(after.centre).map_err(rt)?;
        // Every item of dave's case is rejected (the planted images that became synthetic vouchers are not items).
        if rows.iter().map(|r| r.review_rejections).sum::<u64>() >= dave_case.items {
            break rows;
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(rt("the indicator feedback did not reach the Centre"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for r in &rows {
        fixture.flag(&r.primary).map_err(|e| CliError::from_server("demo: centre flag", e))?;
    }
    println!(
        "  CENTRE: feedback on {} indicators (review rejections); the analyst flags them as false positives, so later reports naming them are manifest false positives and the next release leaves them out",
        rows.len()
    );
    let cs = vouchsafe_centre::stats(after.centre).map_err(rt)?;
    println!(
        "    Centre statistics: {} reports received, {} forwarded, {} manifest false positives, {} withdrawals",
        cs.total.reports, cs.total.forwarded, cs.total.false_positives, cs.total.withdrawals
    );

    // The transparency report: signed, appended to the log, rendered.
    let published = review
        .publish_transparency_report(authed(v1::GetStatisticsRequest::default(), sup)?)
        .await
        .map_err(rt)?
        .into_inner();
    let key = fixture.provider.public();
    let order_hex = hex::encode(fixture.order.order().order_id());
    let view = crate::review::published_view(
        &published.signed_report,
        published.leaf_index,
        Some(&key),
        (&order_hex, 0, 0),
        Some("Transparency report of the demo's detection order".into()),
    )?;
    println!(
        "  PROVIDER signs the transparency report of the order and appends it to the log (leaf {}); the counts never identify a user:",
        published.leaf_index
    );
    for name in [
        "vouchers_received",
        "vouchers_opened",
        "accounts_over_threshold",
        "second_hash_dropped",
        "reviews_confirmed",
        "reviews_rejected",
        "reports_sent",
        "centre_forwarded",
        "notices",
        "appeals_filed",
        "appeals_upheld",
        "withdrawals_sent",
    ] {
        println!("    {name:<24} {}", view.counter(name).unwrap_or(0));
    }
    let html = dir.join("transparency-report.html");
    vouchsafe_files::write_secret(&html, vouchsafe_render::to_html(&view).as_bytes()).map_err(|e| rt(e.kind()))?;
    println!("    written with its charts to {}", html.display());
    let n = fixture.cosign_all(server.local_addr()).await.map_err(|e| CliError::from_server("demo: witnesses", e))?;
    println!(
        "  WITNESSES cosign the log grown by the report ({n} cosignatures); an auditor checks the leaf under the pinned provider key"
    );
    println!();
    Ok(())
}
