//! Detection quality of vouchsafe's perceptual hashing, measured on natural images (`vouchsafe eval`).
//!
//! - [`corpus`]: reads a directory of natural images (filled by `scripts/fetch-eval-corpus.sh` from Debian's
//!   packages), de-duplicates, bounds and tiles them.
//! - [`edits`]: the edits a messenger and a user make ([`edits::EDITS`]).
//! - [`scheme`]: a hash configuration as the evaluation sees it (gate, primary hash, probes, variants).
//! - [`pdq`]: Meta's PDQ, written from its reference, as a candidate.
//! - [`variants`]: Centre-side variants, rendered with a second JPEG encoder and resampler.
//! - [`measure`]: recall per edit, false matches among unrelated pairs and between every edit and every other
//!   original, quality-gate rejections.
//! - [`stats`]: the effective number of independent bits and the extrapolated false matches per day.
//! - [`report`]: the table, JSON and an HTML page with charts.
//!
//! See docs/HASHING.md §8 for the method and the figures.

#![forbid(unsafe_code)]

pub mod corpus;
pub mod edits;
pub mod measure;
pub mod pdq;
pub mod report;
pub mod scheme;
pub mod stats;
pub mod variants;

use std::path::Path;

/// Errors of the evaluation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The corpus directory does not exist.
    #[error("no corpus at {0} (run scripts/fetch-eval-corpus.sh first)")]
    NoCorpus(String),
    /// The corpus holds too few usable originals.
    #[error("the corpus has {found} usable originals; at least {needed} are needed")]
    TooFewOriginals {
        /// Found.
        found: usize,
        /// Needed.
        needed: usize,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An edit failed (an encoder or decoder error).
    #[error("edit failed: {0}")]
    Edit(String),
    /// Hashing failed for a reason other than the quality gate.
    #[error("hashing failed: {0}")]
    Hash(String),
    /// An unknown hash configuration was asked for.
    #[error("unknown hash configuration {0:?} (known: {1})")]
    UnknownScheme(String, String),
}

impl EvalError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }
}
