//! The measurement: every edit of every original, hashed and compared.
//!
//! For one configuration:
//! - each original is hashed; those the quality gate rejects cannot be indicators and are left out of recall (the
//!   report counts them by reason);
//! - each accepted original becomes an indicator: the Centre releases its table entries ([`Scheme::indicator`]: the
//!   primary hash, and with Centre-side variants the distinct hashes of its renderings);
//! - each edit of each remaining original is hashed; the edit is *detected* if the gate accepts it and one of its
//!   probes equals one of the original's table entries (at radius 0; radii up to [`MAX_RADIUS`] are kept for
//!   reference). A gate rejection of an edit is a miss: the device sends a null voucher;
//! - *unrelated pairs*: every pair of accepted originals, except a whole picture and its own tiles;
//! - *edit vs other originals*: every accepted edit of original `i` against every accepted original `j ≠ i`
//!   unrelated to `i` (same rule).
//!
//! Work runs on rayon's pool, over originals; `progress` is told how many (original, edit) items are done.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::EvalError;
use crate::corpus::{Corpus, Original};
use crate::edits::{EDITS, Family, NamedEdit, target};
use crate::scheme::{Hashed, Scheme, SchemeInfo, distance};
use crate::stats::{Fit, fit};

/// Largest radius whose recall the report keeps.
pub const MAX_RADIUS: u32 = 8;
/// Fewest accepted originals the measurement runs on.
pub const MIN_ORIGINALS: usize = 4;

/// Recall of one edit.
#[derive(Clone, Debug, Serialize)]
pub struct EditResult {
    /// The edit's name.
    pub name: String,
    /// Its family.
    pub family: Family,
    /// Its target recall, if the issue sets one.
    pub target: Option<f64>,
    /// Accepted originals it was applied to.
    pub trials: u64,
    /// Edits the quality gate rejected (misses).
    pub gate_rejected: u64,
    /// Exact matches the post-threshold secondary check confirms (the edit's secondary hash within the configuration's
    /// limit of the original's, which every table entry of the indicator carries); the rest would be dropped by the
    /// server. Equal to the exact matches for a configuration without a secondary hash.
    pub confirmed: u64,
    /// `within[r]`: edits accepted by the gate whose hash is within distance `r` of the original's, for
    /// `r` in `0..=MAX_RADIUS`.
    pub within: Vec<u64>,
    /// Histogram of the distance to the original's hash (gate-accepted edits), index = distance.
    pub distance_hist: Vec<u64>,
}

impl EditResult {
    /// Exact recall.
    pub fn recall(&self) -> f64 {
        self.recall_at(0)
    }
    /// Exact recall counting only the matches the secondary check confirms: what reaches a reviewer.
    pub fn confirmed_recall(&self) -> f64 {
        if self.trials == 0 { 0.0 } else { self.confirmed as f64 / self.trials as f64 }
    }
    /// Recall within radius `r` (capped at [`MAX_RADIUS`]).
    pub fn recall_at(&self, r: u32) -> f64 {
        let hits = self.within.get(r.min(MAX_RADIUS) as usize).copied().unwrap_or(0);
        if self.trials == 0 { 0.0 } else { hits as f64 / self.trials as f64 }
    }
    /// Whether it meets its target (`None` without one).
    pub fn meets_target(&self) -> Option<bool> {
        self.target.map(|t| self.recall() >= t)
    }
}

/// False matches over one set of pairs.
#[derive(Clone, Debug, Serialize)]
pub struct FalseMatches {
    /// Pairs compared.
    pub pairs: u64,
    /// Exact false matches: pairs where one of the device's probes equals one of the other image's table entries
    /// (for one probe and no variants: distance 0).
    pub exact: u64,
    /// What the count alone shows: a 95 % upper bound on the probability of an exact match per comparison
    /// (Poisson; 3 / pairs when none was seen). It needs no model, and it cannot get below 1 / pairs.
    pub exact_upper95: f64,
    /// Histogram of the primary hashes' distances, index = distance (without probes: the fit's input).
    pub hist: Vec<u64>,
    /// The binomial fit (see [`crate::stats`]).
    pub fit: Option<Fit>,
    /// The pairs at distance at most [`LIST_RADIUS`] (up to [`MAX_LISTED`], nearest first), so an analyst can look
    /// at each exact false match and near miss.
    pub listed: Vec<Listed>,
}

/// One listed pair.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// Hamming distance.
    pub distance: u32,
    /// The edit (`original` for a pair of originals).
    pub edit: String,
    /// The (edited) original.
    pub first: String,
    /// The other original.
    pub second: String,
}

/// Pairs at most this far apart are listed by name.
pub const LIST_RADIUS: u32 = 4;
/// Most pairs listed by name (the nearest).
pub const MAX_LISTED: usize = 100;
/// Most pairs one worker collects before the nearest [`MAX_LISTED`] are kept.
const LIST_CAP: usize = 10_000;

/// A quality-gate rejection count.
#[derive(Clone, Debug, Serialize)]
pub struct Rejection {
    /// The reason.
    pub reason: String,
    /// Originals rejected for it.
    pub originals: u64,
}

/// Everything measured for one configuration.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeResult {
    /// The configuration.
    pub scheme: SchemeInfo,
    /// Originals hashed.
    pub originals: u64,
    /// Originals the gate accepted (the indicators).
    pub accepted: u64,
    /// Mean table entries per indicator: distinct hashes the Centre releases (1 without variants). The extrapolation
    /// multiplies by it and by the probes.
    pub table_entries: f64,
    /// Originals the gate rejected, by reason.
    pub rejected: Vec<Rejection>,
    /// Recall per edit, in [`EDITS`] order.
    pub edits: Vec<EditResult>,
    /// Unrelated originals.
    pub unrelated: FalseMatches,
    /// Every edit against every other original.
    pub edit_vs_other: FalseMatches,
    /// Seconds spent.
    pub seconds: f64,
}

impl SchemeResult {
    /// Mean exact recall over the edits of `family`.
    pub fn family_recall(&self, family: Family) -> Option<f64> {
        let rows: Vec<_> = self.edits.iter().filter(|e| e.family == family).collect();
        let (hits, trials) =
            rows.iter().fold((0u64, 0u64), |(h, t), e| (h + e.within.first().copied().unwrap_or(0), t + e.trials));
        (trials > 0).then(|| hits as f64 / trials as f64)
    }
}

/// 95 % upper confidence bound of a Poisson mean given `k` observed events (exact for k ≤ 4, Wilson–Hilferty
/// beyond).
pub fn poisson_upper95(k: u64) -> f64 {
    match k {
        0 => 2.996,
        1 => 4.744,
        2 => 6.296,
        3 => 7.754,
        4 => 9.154,
        _ => {
            let n = (k + 1) as f64;
            n * (1.0 - 1.0 / (9.0 * n) + 1.645 / (3.0 * n.sqrt())).powi(3)
        }
    }
}

fn related(a: &Original, b: &Original) -> bool {
    a.source == b.source && (a.tile != b.tile)
}

/// The false-match accounting of one worker: the histogram of primary distances (the fit's input), the exact matches
/// with probes, and the pairs within [`LIST_RADIUS`].
struct Tally {
    hist: Vec<u64>,
    listed: Vec<Listed>,
    exact: u64,
}

impl Tally {
    fn new(bits: usize) -> Self {
        Self { hist: vec![0; bits + 1], listed: Vec::new(), exact: 0 }
    }

    /// One pair: `d` between the primary hashes, `pd` between the device's nearest probe and the other hash.
    fn add(&mut self, d: u32, pd: u32, edit: &str, first: &Original, second: &Original) {
        if let Some(s) = self.hist.get_mut(d as usize) {
            *s += 1;
        }
        if pd == 0 {
            self.exact += 1;
        }
        if pd <= LIST_RADIUS && self.listed.len() < LIST_CAP {
            self.listed.push(Listed {
                distance: pd,
                edit: edit.to_owned(),
                first: first.name.clone(),
                second: second.name.clone(),
            });
        }
    }

    fn merge(mut self, other: Self) -> Self {
        for (x, y) in self.hist.iter_mut().zip(&other.hist) {
            *x += y;
        }
        self.listed.extend(other.listed);
        self.exact += other.exact;
        self
    }

    fn finish(self, bits: u32, multiplicity: f64) -> FalseMatches {
        let Self { hist, mut listed, exact } = self;
        listed.sort();
        listed.truncate(MAX_LISTED);
        let pairs: u64 = hist.iter().sum();
        FalseMatches {
            pairs,
            exact,
            exact_upper95: poisson_upper95(exact) / (pairs.max(1) as f64),
            fit: fit(&hist, bits, multiplicity),
            hist,
            listed,
        }
    }
}

/// Measures `scheme` on `corpus` with `edits` (normally [`EDITS`]).
pub fn measure(
    scheme: &dyn Scheme,
    corpus: &Corpus,
    edits: &[NamedEdit],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SchemeResult, EvalError> {
    let started = std::time::Instant::now();
    let info = scheme.info();
    let bits = info.bits as usize;
    let origs = &corpus.originals;
    let total = origs.len() * (edits.len() + 2);
    let done = AtomicUsize::new(0);
    let tick = || progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);

    let hashed: Vec<Hashed> = origs
        .par_iter()
        .map(|o| {
            let h = scheme.hash(&o.image);
            tick();
            h
        })
        .collect::<Result<_, _>>()?;
    let accepted: Vec<usize> =
        (0..origs.len()).filter(|&i| hashed.get(i).is_some_and(|h| h.rejected.is_none())).collect();
    if accepted.len() < MIN_ORIGINALS {
        return Err(EvalError::TooFewOriginals { found: accepted.len(), needed: MIN_ORIGINALS });
    }
    let mut rejected: Vec<Rejection> = Vec::new();
    for h in &hashed {
        if let Some(r) = &h.rejected {
            match rejected.iter_mut().find(|x| &x.reason == r) {
                Some(x) => x.originals += 1,
                None => rejected.push(Rejection { reason: r.clone(), originals: 1 }),
            }
        }
    }
    // Originals the gate rejected are not indicators: their edits are not tried.
    for _ in 0..(origs.len() - accepted.len()) * edits.len() {
        tick();
    }

    // The Centre's table entries of each accepted original (empty for the rejected ones).
    let tables: Vec<Vec<Vec<u8>>> = (0..origs.len())
        .into_par_iter()
        .map(|i| match (origs.get(i), hashed.get(i)) {
            (Some(o), Some(h)) if h.rejected.is_none() => {
                let t = scheme.indicator(&o.image, h);
                tick();
                t
            }
            _ => {
                tick();
                Ok(Vec::new())
            }
        })
        .collect::<Result<_, _>>()?;
    let table_entries =
        accepted.iter().map(|&i| tables.get(i).map_or(0, Vec::len)).sum::<usize>() as f64 / accepted.len() as f64;
    let table = |i: usize| tables.get(i).map_or(&[][..], Vec::as_slice);

    // For each accepted original, each edit's hash and its distance to the original (None: the gate rejected it).
    type Edited = Vec<Option<(Hashed, u32)>>;
    let per: Vec<(usize, Edited)> = accepted
        .par_iter()
        .map(|&i| -> Result<(usize, Edited), EvalError> {
            let o = origs.get(i).ok_or(EvalError::Hash("original index".into()))?;
            let own = table(i);
            let mut out = Vec::with_capacity(edits.len());
            for e in edits {
                let h = scheme.hash(&e.edit.apply(&o.image)?)?;
                out.push(h.rejected.is_none().then(|| {
                    let d = h.match_distance(own);
                    (h, d)
                }));
                tick();
            }
            Ok((i, out))
        })
        .collect::<Result<_, _>>()?;

    let mut results: Vec<EditResult> = edits
        .iter()
        .map(|e| EditResult {
            name: e.name.to_owned(),
            family: e.family,
            target: target(e),
            trials: 0,
            gate_rejected: 0,
            confirmed: 0,
            within: Vec::new(),
            distance_hist: vec![0; bits + 1],
        })
        .collect();
    for (i, edited) in &per {
        let own_secondary = hashed.get(*i).map_or(&[][..], |h| h.secondary.as_slice());
        for (r, outcome) in results.iter_mut().zip(edited) {
            r.trials += 1;
            match outcome {
                None => r.gate_rejected += 1,
                Some((h, d)) => {
                    if let Some(slot) = r.distance_hist.get_mut(*d as usize) {
                        *slot += 1;
                    }
                    let confirmed = match info.secondary_max_distance {
                        Some(limit) => distance(&h.secondary, own_secondary) <= limit,
                        None => true,
                    };
                    if *d == 0 && confirmed {
                        r.confirmed += 1;
                    }
                }
            }
        }
    }
    // within[r] is the cumulative histogram up to r.
    for r in &mut results {
        r.within = r
            .distance_hist
            .iter()
            .scan(0u64, |acc, &c| {
                *acc += c;
                Some(*acc)
            })
            .take(MAX_RADIUS as usize + 1)
            .collect();
        r.within.resize(MAX_RADIUS as usize + 1, r.within.last().copied().unwrap_or(0));
    }

    // Unrelated pairs of accepted originals.
    let unrelated = accepted
        .par_iter()
        .enumerate()
        .map(|(ai, &i)| {
            let mut t = Tally::new(bits);
            for &j in accepted.iter().skip(ai + 1) {
                let (Some(oi), Some(oj), Some(hi), Some(hj)) =
                    (origs.get(i), origs.get(j), hashed.get(i), hashed.get(j))
                else {
                    continue;
                };
                if related(oi, oj) {
                    continue;
                }
                // Either side can be the device's image: the nearer of the two probe sets counts.
                let pd = hi.match_distance(table(j)).min(hj.match_distance(table(i)));
                t.add(distance(&hi.primary, &hj.primary), pd, "original", oi, oj);
            }
            t
        })
        .reduce(|| Tally::new(bits), Tally::merge);
    // Every accepted edit against every other unrelated accepted original.
    let edit_vs_other = per
        .par_iter()
        .map(|(i, edited)| {
            let mut t = Tally::new(bits);
            let Some(oi) = origs.get(*i) else { return t };
            for &j in &accepted {
                let (Some(oj), Some(hj)) = (origs.get(j), hashed.get(j)) else { continue };
                if j == *i || related(oi, oj) {
                    continue;
                }
                for (outcome, e) in edited.iter().zip(edits) {
                    if let Some((eh, _)) = outcome {
                        t.add(distance(&eh.primary, &hj.primary), eh.match_distance(table(j)), e.name, oi, oj);
                    }
                }
            }
            t
        })
        .reduce(|| Tally::new(bits), Tally::merge);
    let multiplicity = f64::from(info.probes) * table_entries;
    Ok(SchemeResult {
        scheme: info.clone(),
        originals: origs.len() as u64,
        accepted: accepted.len() as u64,
        table_entries,
        rejected,
        edits: results,
        unrelated: unrelated.finish(info.bits, multiplicity),
        edit_vs_other: edit_vs_other.finish(info.bits, multiplicity),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`measure`] over every edit of [`EDITS`].
pub fn measure_all(
    scheme: &dyn Scheme,
    corpus: &Corpus,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SchemeResult, EvalError> {
    measure(scheme, corpus, EDITS, progress)
}
