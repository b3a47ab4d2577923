//! The tonic adapter of `vouchsafe.v1.Review` (reviewers and supervisors, on `[review] listen`) and the device
//! RPCs for notices and appeals. Converts, authenticates, calls `aftercare`, maps errors with `grpc::to_status`.
//! Every store call runs on the blocking pool.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::review_server::Review;
use vouchsafe_store::{AppealRecord, AppealStatus, CaseStatus, CaseSummary, NoticeRecord};

use crate::aftercare::{Aftercare, DecideInput};
use crate::auth::Reviewer;
use crate::error::{Result, ServerError};
use crate::grpc::to_status;
use crate::service::Shared;

pub(crate) use vouchsafe_proto::v1::review_server::ReviewServer;

/// Runs `f` with the after-threshold side on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&Shared, &Aftercare) -> Result<T> + Send + 'static,
) -> std::result::Result<T, Status> {
    let s = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let a = s.aftercare.as_ref().ok_or(ServerError::Internal("no [review] configured"))?;
        f(&s, a)
    })
    .await
    .map_err(|_| to_status(ServerError::Internal("review task failed")))?
    .map_err(to_status)
}

fn authorization<T>(r: &Request<T>) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    r.metadata().get("authorization").map(|v| zeroize::Zeroizing::new(v.as_bytes().to_vec()))
}

fn parse_status(s: &str) -> Result<Option<CaseStatus>> {
    if s.is_empty() {
        return Ok(None);
    }
    CaseStatus::parse(s).map(Some).ok_or(ServerError::InvalidRequest(
        "status must be one of open, awaiting-second, confirmed, rejected, forwarded, false-positive, withdrawn",
    ))
}

fn parse_order(s: &str, served: [u8; 16]) -> Result<[u8; 16]> {
    if s.is_empty() || s == "current" {
        return Ok(served);
    }
    let mut id = [0u8; 16];
    hex::decode_to_slice(s, &mut id).map_err(|_| ServerError::InvalidRequest("order_id must be 32 hex digits"))?;
    Ok(id)
}

fn limit(n: u32) -> usize {
    if n == 0 { 100 } else { n as usize }
}

pub(crate) fn summary_message(s: &CaseSummary) -> v1::CaseSummary {
    let needed = if s.four_eyes { 2 } else { 1 };
    v1::CaseSummary {
        case_id: s.id.0 as u64,
        order_id: hex::encode(s.order_id),
        account: s.account.clone(),
        status: s.status.as_str().to_owned(),
        created_at: s.created_at,
        items: s.items as u32,
        confirmations: s.confirmations,
        confirmations_needed: needed,
        closed_at: s.closed_at.unwrap_or(0),
        data_purged: s.ad_purged,
    }
}

fn appeal_message(a: &AppealRecord) -> v1::Appeal {
    v1::Appeal {
        appeal_id: a.id.0 as u64,
        case_id: a.case.0 as u64,
        account: a.account.clone(),
        status: a.status.as_str().to_owned(),
        text: a.text.clone(),
        filed_at: a.filed_at,
        decided_by: a.decided_by.clone().unwrap_or_default(),
        decided_at: a.decided_at.unwrap_or(0),
        reason: a.reason.clone().unwrap_or_default(),
    }
}

/// The user-facing notice: what was reported, what happens next and how to appeal, in plain words.
pub(crate) fn notice_message(n: &NoticeRecord) -> v1::Notice {
    let (appeal_status, appeal_reason) = match &n.appeal {
        None => ("none".to_owned(), String::new()),
        Some(a) => (a.status.as_str().to_owned(), a.reason.clone().unwrap_or_default()),
    };
    let next_steps = if n.action_reversed {
        "Your appeal was upheld: the provider withdraws its report with a signed withdrawal to the EU Centre, which \
         tells the authority it forwarded the report to, and the restriction on your account is lifted."
            .to_owned()
    } else {
        format!(
            "Under the detection order referenced here, {} of your attachments matched indicators of known child \
             sexual abuse material; a person at the provider reviewed the matches and confirmed them, and a report \
             was sent to the EU Centre, which checked it and forwarded it to the competent law-enforcement \
             authority. Your account is restricted while this stands.",
            n.attachments.len()
        )
    };
    v1::Notice {
        notice_id: n.id.0 as u64,
        order_id: hex::encode(n.order_id),
        order_hash: hex::encode(n.order_hash),
        reported_at: n.reported_at,
        attachment_refs: n.attachments.iter().map(|(r, _)| hex::encode(r)).collect(),
        attachment_times: n.attachments.iter().map(|(_, t)| *t).collect(),
        next_steps,
        appeal_deadline: n.appeal_deadline,
        how_to_appeal: "Send your appeal from the app (SubmitAppeal with this notice's id) before the deadline, in \
                        your own words; a supervisor who did not review the case decides it and you will see the \
                        outcome and its reason here."
            .to_owned(),
        appeal_status,
        appeal_reason,
        account_action: if n.action_reversed { "reversed" } else { "active" }.to_owned(),
    }
}

/// The `vouchsafe.v1.Review` implementation.
pub(crate) struct ReviewService {
    pub(crate) shared: Arc<Shared>,
}

impl ReviewService {
    fn reviewer<T>(&self, r: &Request<T>) -> std::result::Result<Reviewer, Status> {
        let auth = authorization(r);
        let a = self.shared.aftercare.as_ref().ok_or_else(|| to_status(ServerError::Internal("no [review]")))?;
        a.reviewers.authenticate(auth.as_ref().map(|v| v.as_slice())).cloned().map_err(to_status)
    }
}

#[tonic::async_trait]
impl Review for ReviewService {
    async fn list_cases(
        &self,
        request: Request<v1::ListCasesRequest>,
    ) -> std::result::Result<Response<v1::CaseList>, Status> {
        self.reviewer(&request)?;
        let r = request.into_inner();
        let cases = blocking(&self.shared, move |s, a| {
            let status = parse_status(&r.status)?;
            let list = a.list_cases(s.store.as_ref(), status, limit(r.limit))?;
            Ok(list.iter().map(summary_message).collect())
        })
        .await?;
        Ok(Response::new(v1::CaseList { cases }))
    }

    async fn get_case(
        &self,
        request: Request<v1::GetCaseRequest>,
    ) -> std::result::Result<Response<v1::CaseDetail>, Status> {
        let who = self.reviewer(&request)?;
        let r = request.into_inner();
        let detail = blocking(&self.shared, move |s, a| {
            let v = a.view_case(s.store.as_ref(), &s.state(), &who, r.case_id, r.full_view)?;
            Ok(v1::CaseDetail {
                summary: Some(summary_message(&v.summary)),
                items: v
                    .items
                    .into_iter()
                    .map(|i| v1::CaseItem {
                        voucher_id: hex::encode(i.voucher_id),
                        attachment_ref: hex::encode(i.attachment_ref),
                        time: i.time,
                        png: i.png,
                        secondary_distance: i.secondary_distance,
                    })
                    .collect(),
                decisions: v
                    .decisions
                    .into_iter()
                    .map(|d| v1::Decision {
                        reviewer: d.reviewer,
                        role: d.role,
                        verdict: d.verdict,
                        reason: d.reason,
                        comment: d.comment,
                        at: d.at,
                    })
                    .collect(),
                centre_verdict: v.summary.centre_verdict.clone().unwrap_or_default(),
                centre_reason: v.summary.centre_reason.clone().unwrap_or_default(),
            })
        })
        .await?;
        Ok(Response::new(detail))
    }

    async fn decide(
        &self,
        request: Request<v1::DecideRequest>,
    ) -> std::result::Result<Response<v1::CaseSummary>, Status> {
        let who = self.reviewer(&request)?;
        let r = request.into_inner();
        let summary = blocking(&self.shared, move |s, a| {
            let input = DecideInput {
                case: r.case_id,
                verdict: &r.verdict,
                reason: &r.reason,
                comment: &r.comment,
                urgent: r.urgent,
            };
            let c = a.decide(s.store.as_ref(), &s.state(), &who, input)?;
            s.outbox_wake.notify_one();
            Ok(summary_message(&c))
        })
        .await?;
        Ok(Response::new(summary))
    }

    async fn list_appeals(
        &self,
        request: Request<v1::ListAppealsRequest>,
    ) -> std::result::Result<Response<v1::AppealList>, Status> {
        self.reviewer(&request)?;
        let r = request.into_inner();
        let appeals = blocking(&self.shared, move |s, a| {
            let status = if r.status.is_empty() {
                None
            } else {
                Some(
                    AppealStatus::parse(&r.status)
                        .ok_or(ServerError::InvalidRequest("status must be one of pending, upheld, dismissed"))?,
                )
            };
            Ok(a.list_appeals(s.store.as_ref(), status, limit(r.limit))?.iter().map(appeal_message).collect())
        })
        .await?;
        Ok(Response::new(v1::AppealList { appeals }))
    }

    async fn decide_appeal(
        &self,
        request: Request<v1::DecideAppealRequest>,
    ) -> std::result::Result<Response<v1::Appeal>, Status> {
        let who = self.reviewer(&request)?;
        let r = request.into_inner();
        let appeal = blocking(&self.shared, move |s, a| {
            let out = a.decide_appeal(s.store.as_ref(), &s.state(), &who, r.appeal_id, r.uphold, &r.reason)?;
            s.outbox_wake.notify_one();
            Ok(appeal_message(&out))
        })
        .await?;
        Ok(Response::new(appeal))
    }

    async fn get_statistics(
        &self,
        request: Request<v1::GetStatisticsRequest>,
    ) -> std::result::Result<Response<v1::Statistics>, Status> {
        self.reviewer(&request)?;
        let r = request.into_inner();
        let stats = blocking(&self.shared, move |s, a| {
            let order = parse_order(&r.order_id, *s.state().gov.order().order_id())?;
            let st = a.statistics(s.store.as_ref(), order, r.from, r.to)?;
            Ok(v1::Statistics {
                order_id: hex::encode(st.order_id),
                from: st.from,
                to: st.to,
                counters: st.counters.into_iter().map(|(name, value)| v1::Counter { name, value }).collect(),
                decision_seconds: st.decision_seconds,
            })
        })
        .await?;
        Ok(Response::new(stats))
    }

    async fn publish_transparency_report(
        &self,
        request: Request<v1::GetStatisticsRequest>,
    ) -> std::result::Result<Response<v1::PublishedReport>, Status> {
        let who = self.reviewer(&request)?;
        let r = request.into_inner();
        let out = blocking(&self.shared, move |s, a| {
            let order = parse_order(&r.order_id, *s.state().gov.order().order_id())?;
            let (signed, leaf) = a.publish(s, &who, order, r.from, r.to)?;
            Ok(v1::PublishedReport { signed_report: signed.encode(), leaf_index: leaf })
        })
        .await?;
        Ok(Response::new(out))
    }
}

/// GetNotices for the device API: the authenticated account's own notices only.
pub(crate) async fn get_notices(
    shared: &Arc<Shared>,
    request: Request<v1::GetNoticesRequest>,
) -> std::result::Result<Response<v1::Notices>, Status> {
    let auth = authorization(&request);
    let account = shared.authenticate_device(auth.as_ref().map(|v| v.as_slice())).map_err(to_status)?.id.clone();
    if shared.aftercare.is_none() {
        return Ok(Response::new(v1::Notices { notices: Vec::new() }));
    }
    let notices =
        blocking(shared, move |s, a| Ok(a.notices(s.store.as_ref(), &account)?.iter().map(notice_message).collect()))
            .await?;
    Ok(Response::new(v1::Notices { notices }))
}

/// SubmitAppeal for the device API.
pub(crate) async fn submit_appeal(
    shared: &Arc<Shared>,
    request: Request<v1::SubmitAppealRequest>,
) -> std::result::Result<Response<v1::AppealAck>, Status> {
    let auth = authorization(&request);
    let account = shared.authenticate_device(auth.as_ref().map(|v| v.as_slice())).map_err(to_status)?.id.clone();
    if shared.aftercare.is_none() {
        return Err(to_status(ServerError::NotFound("notice")));
    }
    let r = request.into_inner();
    let a = blocking(shared, move |s, a| a.appeal(s.store.as_ref(), &account, r.notice_id, &r.text)).await?;
    Ok(Response::new(v1::AppealAck { appeal_id: a.id.0 as u64, filed_at: a.filed_at }))
}
