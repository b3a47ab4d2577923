//! After the threshold (DESIGN.md §5, docs/GOVERNANCE.md §10): human review of the cases the worker filed, the
//! provider-signed report to the Centre, the notice to the user, the appeal, the indicator feedback and the
//! statistics. Domain code only: the Review API (`review_grpc`) and the device RPCs (`grpc`) are thin adapters,
//! and the delivery to the Centre is `outbox`.
//!
//! Every change is one store transaction that also appends its typed audit events ([`crate::events::Event`]) and,
//! where something must leave the provider, queues the signed message in the durable outbox: a decision and its
//! report, an upheld appeal and its withdrawal, are committed together or not at all.

pub(crate) mod outbox;
pub(crate) mod png;

use vouchsafe_case::{
    Decision, IndicatorCount, IndicatorFeedback, Message, ProviderSigningKey, ReasonCode, Report, ReportItem, Role,
    SignedTransparencyReport, TransparencyReport, Verdict, Withdrawal,
};
use vouchsafe_log::{Leaf, LeafKind};
use vouchsafe_phash::AssociatedData;
use vouchsafe_store::{
    AppealRecord, AppealStatus, CaseFilter, CaseId, CaseStatus, CaseSummary, DecideAppeal, DecideCase, NewDecision,
    NewOutbox, NoticeId, NoticeRecord, OrderStats, Store, StoredDecision,
};

use crate::auth::{Authenticator, Reviewer};
use crate::config::{ReviewConfig, ReviewRole, ServerConfig, unix_now};
use crate::error::{Result, ServerError};
use crate::events::{Audited, Event, entries};
use crate::service::Served;

/// First line of a provider signing-key file.
pub const PROVIDER_KEY_HEADER: &str = "vouchsafe-provider-key v1";
/// First line of a provider public-key file.
pub const PROVIDER_PUBLIC_KEY_HEADER: &str = "vouchsafe-provider-public-key v1";
/// Longest comment or reason a reviewer or supervisor may write, in bytes.
pub const MAX_COMMENT: usize = 2000;
/// Longest appeal text, in bytes.
pub const MAX_APPEAL_TEXT: usize = 4000;
/// Most cases or appeals one list call returns.
pub const MAX_LIST: usize = 1000;

/// Reads a provider signing-key file.
pub fn load_provider_key(path: &std::path::Path) -> Result<ProviderSigningKey> {
    let what = || format!("provider key {}", path.display());
    let secret =
        vouchsafe_files::read_key_text(path, PROVIDER_KEY_HEADER).map_err(|e| ServerError::governance(what(), e))?;
    Ok(ProviderSigningKey::from_secret_bytes(&secret))
}

fn random_id() -> Result<[u8; 16]> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
        .map_err(|_| ServerError::Internal("the operating system random number generator failed"))?;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    Ok(id)
}

fn check_text(text: &str, max: usize, what: &'static str) -> Result<()> {
    if text.len() > max {
        return Err(ServerError::InvalidRequest(what));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ServerError::InvalidRequest("text must not contain control characters"));
    }
    Ok(())
}

/// Maps the store's refusals to what the caller can act on.
fn refusal(e: vouchsafe_store::StoreError) -> ServerError {
    match e {
        vouchsafe_store::StoreError::Conflict(m) => ServerError::Conflict(m.to_string()),
        vouchsafe_store::StoreError::NotFound(what) => ServerError::NotFound(what),
        e => ServerError::Store(e),
    }
}

/// A review decision as the Review API receives it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecideInput<'a> {
    pub(crate) case: u64,
    pub(crate) verdict: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) comment: &'a str,
    pub(crate) urgent: bool,
}

/// One item of a case as a reviewer sees it.
pub(crate) struct ItemView {
    pub(crate) voucher_id: [u8; 16],
    pub(crate) attachment_ref: [u8; 32],
    pub(crate) time: u64,
    pub(crate) png: Vec<u8>,
    pub(crate) secondary_distance: u32,
}

/// A case as a reviewer sees it.
pub(crate) struct CaseView {
    pub(crate) summary: CaseSummary,
    pub(crate) items: Vec<ItemView>,
    pub(crate) decisions: Vec<StoredDecision>,
}

/// The after-threshold side of a server with `[review]`.
pub(crate) struct Aftercare {
    pub(crate) provider: String,
    key: ProviderSigningKey,
    pub(crate) review: ReviewConfig,
    pub(crate) reviewers: Authenticator<Reviewer>,
}

impl std::fmt::Debug for Aftercare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aftercare").field("provider", &self.provider).field("reviewers", &self.reviewers).finish()
    }
}

/// The statistics of an order and period, by stable counter name (docs/GOVERNANCE.md §11), and the decision times.
pub(crate) struct Statistics {
    pub(crate) order_id: [u8; 16],
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) counters: Vec<(String, u64)>,
    pub(crate) decision_seconds: Vec<u64>,
}

fn counters_of(s: &OrderStats) -> Vec<(String, u64)> {
    let c = [
        ("vouchers_received", s.vouchers_received),
        ("vouchers_non_matching", s.vouchers_non_matching),
        ("vouchers_invalid", s.vouchers_invalid),
        ("vouchers_opened", s.vouchers_opened),
        ("accounts", s.accounts),
        ("accounts_over_threshold", s.accounts_over_threshold),
        ("cases", s.cases),
        ("second_hash_dropped", s.second_hash_dropped),
        ("reviews_confirmed", s.reviews_confirmed),
        ("reviews_rejected", s.reviews_rejected),
        ("cases_confirmed", s.cases_confirmed),
        ("cases_rejected", s.cases_rejected),
        ("reports_queued", s.reports_queued),
        ("reports_sent", s.reports_sent),
        ("centre_forwarded", s.centre_forwarded),
        ("centre_false_positive", s.centre_false_positive),
        ("notices", s.notices),
        ("appeals_filed", s.appeals_filed),
        ("appeals_upheld", s.appeals_upheld),
        ("appeals_dismissed", s.appeals_dismissed),
        ("withdrawals_sent", s.withdrawals_sent),
        ("cases_closed", s.cases_closed),
        ("purged_items", s.purged_items),
        ("purged_vouchers", s.purged_vouchers),
    ];
    c.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
}

impl Aftercare {
    /// The after-threshold side of `config`, or `None` without `[review]`. Reads the provider key.
    pub(crate) fn load(config: &ServerConfig) -> Result<Option<Aftercare>> {
        let (Some(review), Some(provider)) = (&config.review, &config.provider) else { return Ok(None) };
        let key = load_provider_key(&provider.key)?;
        let reviewers = Authenticator::new(
            review.reviewers.iter().map(|r| (&r.token, Reviewer { id: r.id.clone(), role: r.role })),
        );
        Ok(Some(Aftercare { provider: provider.id.clone(), key, review: review.clone(), reviewers }))
    }

    /// Confirmations a case needs before its report goes out.
    pub(crate) fn confirmations_needed(&self) -> u32 {
        if self.review.four_eyes { 2 } else { 1 }
    }

    /// Cases by status (all if `None`), newest first.
    pub(crate) fn list_cases(
        &self,
        store: &dyn Store,
        status: Option<CaseStatus>,
        limit: usize,
    ) -> Result<Vec<CaseSummary>> {
        let filter =
            CaseFilter { status, limit: Some(limit.clamp(1, MAX_LIST)), newest_first: true, ..Default::default() };
        Ok(store.list_cases(&filter)?)
    }

    /// A case with its items as PNG (blurred and grayscale unless `full`), audited as a view.
    pub(crate) fn view_case(
        &self,
        store: &dyn Store,
        served: &Served,
        who: &Reviewer,
        case: u64,
        full: bool,
    ) -> Result<CaseView> {
        let id = CaseId(i64::try_from(case).map_err(|_| ServerError::NotFound("case"))?);
        let c = store.get_case(id)?.ok_or(ServerError::NotFound("case"))?;
        let decisions = store.case_decisions(id)?;
        let hash = served.gov.hash_config();
        let mut items = Vec::with_capacity(c.items.len());
        for item in &c.items {
            if item.ad.is_empty() {
                continue;
            }
            let Ok(ad) = AssociatedData::decode(&item.ad) else { continue };
            let png = png::derivative_png(&ad, full)?;
            let distance = crate::worker::second_hash_check(&item.ad, &hash, &served.table.table, served.gov.chain())
                .map(|(_, d)| d)
                .unwrap_or(u32::MAX);
            items.push(ItemView {
                voucher_id: item.voucher_id,
                attachment_ref: *ad.attachment_ref(),
                time: ad.time(),
                png,
                secondary_distance: distance,
            });
        }
        let view = if full { "full" } else { "blurred" };
        let event = Event::CaseViewed { case, reviewer: who.id.clone(), view: view.into() };
        store.append_audit(&Audited::new(unix_now(), &who.id, &event).entry())?;
        Ok(CaseView { summary: c.summary, items, decisions })
    }

    /// Records a decision. A confirmation that completes the order's rule (one, or two different reviewers under
    /// four-eyes) builds, signs and queues the report to the Centre in the same transaction; a rejection records
    /// the items' indicators as review rejections (indicator feedback).
    pub(crate) fn decide(
        &self,
        store: &dyn Store,
        served: &Served,
        who: &Reviewer,
        input: DecideInput<'_>,
    ) -> Result<CaseSummary> {
        let verdict = Verdict::parse(input.verdict)
            .ok_or(ServerError::InvalidRequest("verdict must be \"confirm\" or \"reject\""))?;
        let reason = ReasonCode::parse(input.reason).ok_or(ServerError::InvalidRequest(
            "reason must be one of known-image, not-matching, benign, illegible, other",
        ))?;
        if !reason.fits(verdict) {
            return Err(ServerError::InvalidRequest(
                "a confirmation takes reason known-image; a rejection one of not-matching, benign, illegible, other",
            ));
        }
        check_text(input.comment, MAX_COMMENT, "comment is longer than 2000 bytes")?;
        let id = CaseId(i64::try_from(input.case).map_err(|_| ServerError::NotFound("case"))?);
        let case = store.get_case(id)?.ok_or(ServerError::NotFound("case"))?;
        if !matches!(case.summary.status, CaseStatus::Open | CaseStatus::AwaitingSecond) {
            return Err(ServerError::Conflict("the case is already decided".into()));
        }
        if case.summary.ad_purged {
            return Err(ServerError::Conflict("the case's data was purged".into()));
        }
        let prior = store.case_decisions(id)?;
        if prior.iter().any(|d| d.reviewer == who.id) {
            return Err(ServerError::Conflict(
                "this reviewer already decided the case: four-eyes needs a second reviewer".into(),
            ));
        }
        let confirms = prior.iter().filter(|d| d.verdict == Verdict::Confirm.as_str()).count() as u32
            + u32::from(verdict == Verdict::Confirm);
        let new_status = match verdict {
            Verdict::Reject => CaseStatus::Rejected,
            Verdict::Confirm if confirms >= self.confirmations_needed() => CaseStatus::Confirmed,
            Verdict::Confirm => CaseStatus::AwaitingSecond,
        };
        let now = unix_now();
        let role = match who.role {
            ReviewRole::Reviewer => Role::Reviewer,
            ReviewRole::Supervisor => Role::Supervisor,
        };
        let this =
            Decision { reviewer: who.id.clone(), role, verdict, reason, comment: input.comment.to_owned(), at: now };
        let mut report_bytes = None;
        let mut report_id = None;
        if new_status == CaseStatus::Confirmed {
            let rid = random_id()?;
            let signed = self.key.sign(&Message::Report(self.report(
                served,
                &case,
                &prior,
                this.clone(),
                rid,
                now,
                input.urgent,
            )?))?;
            report_bytes = Some(signed.encode());
            report_id = Some(rid);
        }
        let rejected_primaries: Vec<Vec<u8>> = if new_status == CaseStatus::Rejected {
            let mut p: Vec<Vec<u8>> = case
                .items
                .iter()
                .filter_map(|i| AssociatedData::decode(&i.ad).ok())
                .map(|a| a.primary().to_canonical_bytes())
                .collect();
            p.sort();
            p.dedup();
            p
        } else {
            Vec::new()
        };
        let mut events = vec![Audited::new(
            now,
            &who.id,
            &Event::CaseDecided {
                case: input.case,
                reviewer: who.id.clone(),
                role: who.role.as_str().into(),
                verdict: verdict.as_str().into(),
                reason: reason.as_str().into(),
                status: new_status.as_str().into(),
            },
        )];
        if let Some(rid) = report_id {
            events.push(Audited::new(
                now,
                &who.id,
                &Event::MessageQueued { kind: "report".into(), message: hex::encode(rid), case: Some(input.case) },
            ));
        }
        let audit = entries(&events);
        let outbox = match (&report_bytes, report_id) {
            (Some(bytes), Some(rid)) => {
                Some(NewOutbox { message_id: rid, kind: "report", case: Some(id), bytes, created_at: now })
            }
            _ => None,
        };
        let d = DecideCase {
            case: id,
            decision: NewDecision {
                reviewer: &who.id,
                role: who.role.as_str(),
                verdict: verdict.as_str(),
                reason: reason.as_str(),
                comment: input.comment,
                at: now,
                urgent: input.urgent,
            },
            expected_decisions: prior.len() as u32,
            new_status,
            report_id,
            outbox,
            rejected_primaries: &rejected_primaries,
            audit: &audit,
        };
        let summary = store.decide_case(&d).map_err(refusal)?;
        tracing::info!(case = input.case, status = new_status.as_str(), "review decision recorded");
        Ok(summary)
    }

    /// The report of a case whose confirmation is complete.
    #[allow(clippy::too_many_arguments)] // one report: everything it says
    fn report(
        &self,
        served: &Served,
        case: &vouchsafe_store::Case,
        prior: &[StoredDecision],
        this: Decision,
        report_id: [u8; 16],
        now: i64,
        urgent: bool,
    ) -> Result<Report> {
        let order = served.gov.order();
        if case.summary.order_id != *order.order_id() {
            return Err(ServerError::Conflict(
                "the case was filed under another detection order than the served one: its report cannot be built \
                 from this server's order and release"
                    .into(),
            ));
        }
        let statement = served.table.signed_manifest.statement();
        let mut decisions = Vec::with_capacity(prior.len() + 1);
        for d in prior {
            decisions.push(Decision {
                reviewer: d.reviewer.clone(),
                role: Role::parse(&d.role).ok_or(ServerError::Internal("stored decision has an unknown role"))?,
                verdict: Verdict::parse(&d.verdict)
                    .ok_or(ServerError::Internal("stored decision has an unknown verdict"))?,
                reason: ReasonCode::parse(&d.reason)
                    .ok_or(ServerError::Internal("stored decision has an unknown reason"))?,
                comment: d.comment.clone(),
                at: d.at,
            });
        }
        decisions.push(this);
        Ok(Report {
            report_id,
            provider: self.provider.clone(),
            order_id: *order.order_id(),
            order_hash: order.signed().hash(),
            signed_order: order.signed().encode(),
            release_number: statement.release_number,
            release_hash: statement.release_hash,
            case_id: case.summary.id.0 as u64,
            account: case.summary.account.clone(),
            urgent: urgent || case.summary.urgent,
            four_eyes: self.review.four_eyes,
            threshold_at: case.summary.created_at,
            created_at: now,
            items: case.items.iter().map(|i| ReportItem { voucher_id: i.voucher_id, ad: i.ad.clone() }).collect(),
            decisions,
        })
    }

    /// The notices of `account`.
    pub(crate) fn notices(&self, store: &dyn Store, account: &str) -> Result<Vec<NoticeRecord>> {
        Ok(store.notices(account)?)
    }

    /// Files `account`'s appeal of its notice `notice`.
    pub(crate) fn appeal(&self, store: &dyn Store, account: &str, notice: u64, text: &str) -> Result<AppealRecord> {
        if text.trim().is_empty() {
            return Err(ServerError::InvalidRequest("the appeal text is empty"));
        }
        check_text(text, MAX_APPEAL_TEXT, "the appeal text is longer than 4000 bytes")?;
        let nid = NoticeId(i64::try_from(notice).map_err(|_| ServerError::NotFound("notice"))?);
        let now = unix_now();
        // One appeal per notice: the event names the notice (the appeal's id only exists after the insert, which
        // appends this entry in its own transaction). A notice of another account is NOT_FOUND, here and in the
        // store.
        let n = store.notice(nid)?.filter(|n| n.account == account).ok_or(ServerError::NotFound("notice"))?;
        let event = Event::AppealFiled { notice, case: n.case.0 as u64 };
        let audit = [Audited::new(now, "device", &event)];
        let a = store.file_appeal(account, nid, text, now, &entries(&audit)).map_err(refusal)?;
        tracing::info!(appeal = a.id.0, "appeal filed");
        Ok(a)
    }

    /// Appeals by status (all if `None`), newest first.
    pub(crate) fn list_appeals(
        &self,
        store: &dyn Store,
        status: Option<AppealStatus>,
        limit: usize,
    ) -> Result<Vec<AppealRecord>> {
        Ok(store.list_appeals(status, limit.clamp(1, MAX_LIST))?)
    }

    /// A supervisor's decision on an appeal. Upholding it signs and queues the withdrawal of the case's report.
    pub(crate) fn decide_appeal(
        &self,
        store: &dyn Store,
        served: &Served,
        who: &Reviewer,
        appeal: u64,
        uphold: bool,
        reason: &str,
    ) -> Result<AppealRecord> {
        if who.role != ReviewRole::Supervisor {
            return Err(ServerError::PermissionDenied("only a supervisor decides appeals"));
        }
        if reason.trim().is_empty() {
            return Err(ServerError::InvalidRequest("a reason is required: the user reads it"));
        }
        check_text(reason, MAX_COMMENT, "reason is longer than 2000 bytes")?;
        let aid = vouchsafe_store::AppealId(i64::try_from(appeal).map_err(|_| ServerError::NotFound("appeal"))?);
        let a = store.appeal(aid)?.ok_or(ServerError::NotFound("appeal"))?;
        if a.status != AppealStatus::Pending {
            return Err(ServerError::Conflict("the appeal was already decided".into()));
        }
        let case = store.get_case(a.case)?.ok_or(ServerError::NotFound("case"))?;
        let now = unix_now();
        let mut events = vec![Audited::new(
            now,
            &who.id,
            &Event::AppealDecided { appeal, case: a.case.0 as u64, by: who.id.clone(), upheld: uphold },
        )];
        let mut withdrawal = None;
        let mut wid = None;
        if uphold {
            let report_id =
                case.summary.report_id.ok_or(ServerError::Internal("an appealed case without a report id"))?;
            let id = random_id()?;
            let w = Withdrawal {
                withdrawal_id: id,
                provider: self.provider.clone(),
                report_id,
                order_id: case.summary.order_id,
                reason: reason.to_owned(),
                at: now,
            };
            let _ = served;
            withdrawal = Some(self.key.sign(&Message::Withdrawal(w))?.encode());
            wid = Some(id);
            events.push(Audited::new(
                now,
                &who.id,
                &Event::MessageQueued {
                    kind: "withdrawal".into(),
                    message: hex::encode(id),
                    case: Some(a.case.0 as u64),
                },
            ));
        }
        let audit = entries(&events);
        let d = DecideAppeal {
            appeal: aid,
            uphold,
            by: &who.id,
            reason,
            at: now,
            withdrawal: match (&withdrawal, wid) {
                (Some(bytes), Some(id)) => {
                    Some(NewOutbox { message_id: id, kind: "withdrawal", case: Some(a.case), bytes, created_at: now })
                }
                _ => None,
            },
            audit: &audit,
        };
        let out = store.decide_appeal(&d).map_err(refusal)?;
        tracing::info!(appeal, upheld = uphold, "appeal decided");
        Ok(out)
    }

    /// The statistics of `order` over `[from, to)` (0, 0: the whole order).
    pub(crate) fn statistics(&self, store: &dyn Store, order: [u8; 16], from: i64, to: i64) -> Result<Statistics> {
        if from < 0 || to < 0 || (to != 0 && to <= from) {
            return Err(ServerError::InvalidRequest("the period must have 0 <= from < to (or both 0)"));
        }
        let (f, t) = if from == 0 && to == 0 { (None, None) } else { (Some(from), Some(to)) };
        let s = store.order_stats(order, f, t)?;
        Ok(Statistics { order_id: order, from, to, counters: counters_of(&s), decision_seconds: s.decision_seconds })
    }

    /// Signs the transparency report of `order` and period and appends it to the transparency log; returns it and
    /// its leaf index.
    pub(crate) fn publish(
        &self,
        shared: &crate::service::Shared,
        who: &Reviewer,
        order: [u8; 16],
        from: i64,
        to: i64,
    ) -> Result<(SignedTransparencyReport, u64)> {
        if who.role != ReviewRole::Supervisor {
            return Err(ServerError::PermissionDenied("only a supervisor publishes the transparency report"));
        }
        let s = self.statistics(shared.store.as_ref(), order, from, to)?;
        let mut counters = s.counters;
        counters.sort();
        let mut times = s.decision_seconds;
        times.truncate(vouchsafe_case::MAX_DECISION_TIMES);
        let report = TransparencyReport {
            provider: self.provider.clone(),
            order_id: order,
            from,
            to,
            counters,
            decision_seconds: times,
            created_at: unix_now(),
        };
        let signed = self.key.sign_transparency(&report)?;
        let leaf =
            Leaf::new(LeafKind::TransparencyReport, signed.encode()).map_err(|e| ServerError::Log(e.to_string()))?;
        let index = shared.with_log(|log| log.ensure(std::slice::from_ref(&leaf)))?;
        let index = *index.first().ok_or(ServerError::Internal("no log index for the transparency report"))?;
        let event = Event::TransparencyPublished { order: hex::encode(order), from, to, leaf: index };
        shared.store.append_audit(&Audited::new(unix_now(), &who.id, &event).entry())?;
        tracing::info!(leaf = index, "transparency report published");
        Ok((signed, index))
    }

    /// The indicator feedback of `order` as a signed message, if there is any: per indicator, the second-hash drops
    /// and the review rejections so far. Its id is a hash of the counts, so the same counts are the same message
    /// (the outbox then keeps the first).
    pub(crate) fn feedback_message(&self, store: &dyn Store, served: &Served) -> Result<Option<([u8; 16], Vec<u8>)>> {
        let order = *served.gov.order().order_id();
        let rows = store.indicator_feedback(order)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let entries: Vec<IndicatorCount> = rows
            .into_iter()
            .map(|r| IndicatorCount {
                primary: r.primary,
                second_hash_drops: r.second_hash_drops,
                review_rejections: r.review_rejections,
            })
            .collect();
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"vouchsafe/v1/provider/feedback-id");
        h.update(order);
        for e in &entries {
            h.update((e.primary.len() as u32).to_le_bytes());
            h.update(&e.primary);
            h.update(e.second_hash_drops.to_le_bytes());
            h.update(e.review_rejections.to_le_bytes());
        }
        let digest: [u8; 32] = h.finalize().into();
        let mut id = [0u8; 16];
        id.copy_from_slice(digest.get(..16).ok_or(ServerError::Internal("digest length"))?);
        let fb = IndicatorFeedback {
            feedback_id: id,
            provider: self.provider.clone(),
            order_id: order,
            release_number: served.table.signed_manifest.statement().release_number,
            entries,
            at: unix_now(),
        };
        Ok(Some((id, self.key.sign(&Message::Feedback(fb))?.encode())))
    }
}
