//! What the intake database says: counts per provider ([`stats`]) and the indicator feedback of all providers
//! with the removal proposals ([`indicator_feedback`], [`removal_proposals`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::CentreConfig;
use crate::db;
use crate::error::Result;

/// The counts of one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProviderStats {
    /// Reports accepted (forwarded + manifest false positives).
    pub reports: u64,
    /// Reports forwarded to law enforcement.
    pub forwarded: u64,
    /// Reports found to be manifest false positives.
    pub false_positives: u64,
    /// Urgent reports among them.
    pub urgent: u64,
    /// Withdrawals recorded.
    pub withdrawals: u64,
    /// Withdrawals of forwarded reports (the recipient was told).
    pub withdrawals_of_forwarded: u64,
    /// Feedback messages recorded.
    pub feedback_messages: u64,
}

/// Everything `vouchsafe centre stats` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CentreStats {
    /// Sum over the providers.
    pub total: ProviderStats,
    /// Per provider, by name.
    pub providers: BTreeMap<String, ProviderStats>,
    /// Indicators with feedback.
    pub feedback_indicators: u64,
    /// Second-hash drops over all latest feedback.
    pub second_hash_drops: u64,
    /// Review rejections over all latest feedback.
    pub review_rejections: u64,
}

fn add(a: &mut ProviderStats, b: &ProviderStats) {
    a.reports += b.reports;
    a.forwarded += b.forwarded;
    a.false_positives += b.false_positives;
    a.urgent += b.urgent;
    a.withdrawals += b.withdrawals;
    a.withdrawals_of_forwarded += b.withdrawals_of_forwarded;
    a.feedback_messages += b.feedback_messages;
}

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads the counts from the configured intake database (which must exist).
pub fn stats(config: &CentreConfig) -> Result<CentreStats> {
    let conn = db::open_existing(&config.database)?;
    let mut out = CentreStats::default();
    let mut q = conn.prepare(
        "SELECT provider, kind, verdict, COUNT(*), SUM(urgent), SUM(export_id IS NOT NULL)
         FROM messages GROUP BY provider, kind, verdict",
    )?;
    let rows = q.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    for row in rows {
        let (provider, kind, verdict, n, urgent, exported): (String, String, String, i64, i64, i64) = row?;
        let p = out.providers.entry(provider).or_default();
        match (kind.as_str(), verdict.as_str()) {
            ("report", v) => {
                p.reports += u(n);
                p.urgent += u(urgent);
                if v == "forwarded" {
                    p.forwarded += u(n);
                } else {
                    p.false_positives += u(n);
                }
            }
            ("withdrawal", _) => {
                p.withdrawals += u(n);
                p.withdrawals_of_forwarded += u(exported);
            }
            _ => p.feedback_messages += u(n),
        }
    }
    for p in out.providers.values() {
        let p = p.clone();
        add(&mut out.total, &p);
    }
    let (indicators, drops, rejections): (i64, i64, i64) = conn.query_row(
        "SELECT COUNT(DISTINCT primary_hash), COALESCE(SUM(second_hash_drops), 0), COALESCE(SUM(review_rejections), 0)
         FROM feedback",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    out.feedback_indicators = u(indicators);
    out.second_hash_drops = u(drops);
    out.review_rejections = u(rejections);
    Ok(out)
}

/// The feedback on one indicator, summed over every provider and order (each its latest counts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedbackRow {
    /// The indicator's primary hash, canonical bytes.
    #[serde(serialize_with = "as_hex")]
    pub primary: Vec<u8>,
    /// Second-hash drops: a device's primary hash matched, the recomputed secondary did not.
    pub second_hash_drops: u64,
    /// Review rejections: a reviewer found the match was not the known image.
    pub review_rejections: u64,
    /// Providers that sent feedback on it.
    pub providers: u64,
}

fn as_hex<S: serde::Serializer>(b: &[u8], s: S) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

impl FeedbackRow {
    /// Whether the indicator should be proposed for removal: any second-hash drop (an adversarial collision of
    /// the primary hash, or a bad indicator), or at least `min_rejections` review rejections.
    pub fn proposed(&self, min_rejections: u64) -> bool {
        self.second_hash_drops >= 1 || self.review_rejections >= min_rejections
    }
}

/// Default of `--min`: review rejections that make a removal proposal.
pub const DEFAULT_MIN_REJECTIONS: u64 = 2;

/// Every indicator with feedback, by primary hash.
pub fn indicator_feedback(config: &CentreConfig) -> Result<Vec<FeedbackRow>> {
    let conn = db::open_existing(&config.database)?;
    let mut q = conn.prepare(
        "SELECT primary_hash, SUM(second_hash_drops), SUM(review_rejections), COUNT(DISTINCT provider)
         FROM feedback GROUP BY primary_hash ORDER BY primary_hash",
    )?;
    let rows = q.query_map([], |r| {
        Ok(FeedbackRow {
            primary: r.get(0)?,
            second_hash_drops: u(r.get(1)?),
            review_rejections: u(r.get(2)?),
            providers: u(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<core::result::Result<Vec<_>, _>>()?)
}

/// The primaries proposed for removal ([`FeedbackRow::proposed`]).
pub fn removal_proposals(rows: &[FeedbackRow], min_rejections: u64) -> Vec<Vec<u8>> {
    rows.iter().filter(|r| r.proposed(min_rejections)).map(|r| r.primary.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_follow_the_rule() {
        let row =
            |p: u8, d, r| FeedbackRow { primary: vec![p], second_hash_drops: d, review_rejections: r, providers: 1 };
        let rows = [row(1, 0, 1), row(2, 1, 0), row(3, 0, 2), row(4, 0, 0)];
        assert_eq!(removal_proposals(&rows, 2), vec![vec![2], vec![3]]);
        assert_eq!(removal_proposals(&rows, 1), vec![vec![1], vec![2], vec![3]]);
    }
}
