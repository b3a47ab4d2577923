//! `vouchsafe eval`: detection quality of the hash configurations on a corpus of natural images
//! (docs/HASHING.md §8). Wiring only: the measurement is `vouchsafe_eval`.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use vouchsafe_eval::corpus::{self, CorpusLimits};
use vouchsafe_eval::report::{REPORT_VERSION, Report, distance_chart, recall_chart, to_html, to_json, to_text};
use vouchsafe_eval::{EvalError, measure, scheme};

use crate::demo::bar;
use crate::error::{CliError, Result};

/// What `vouchsafe eval` was asked.
#[derive(Debug)]
pub struct EvalOptions {
    /// The corpus directory.
    pub corpus: PathBuf,
    /// Where `eval.json` and `eval.html` go (created if missing); `None`: text only.
    pub out: Option<PathBuf>,
    /// Configurations by name.
    pub configs: Vec<String>,
    /// Bounds on loading.
    pub limits: CorpusLimits,
}

fn err(e: EvalError) -> CliError {
    match e {
        EvalError::NoCorpus(_) | EvalError::TooFewOriginals { .. } | EvalError::UnknownScheme(..) => {
            CliError::usage(format!("eval: {e}"))
        }
        _ => CliError::runtime(format!("eval: {e}")),
    }
}

fn write(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body).map_err(|e| CliError::runtime(format!("eval: writing {}: {e}", path.display())))
}

/// Runs the evaluation and prints the table; writes JSON and HTML if asked.
pub fn run(o: &EvalOptions) -> Result<()> {
    let schemes =
        o.configs.iter().map(|c| scheme::by_name(c)).collect::<std::result::Result<Vec<_>, _>>().map_err(err)?;
    if let Some(out) = &o.out {
        std::fs::create_dir_all(out).map_err(|e| CliError::usage(format!("eval: --out {}: {e}", out.display())))?;
    }
    let pb = ProgressBar::new_spinner().with_message("reading the corpus");
    let loaded = corpus::load(&o.corpus, o.limits, &|i, n| {
        pb.set_length(n as u64);
        pb.set_position(i as u64);
    })
    .map_err(err)?;
    pb.finish_and_clear();
    let mut results = Vec::new();
    for s in &schemes {
        let name = s.info().name;
        let pb = bar(0, &format!("{name}: edits and hashes"));
        let r = measure::measure_all(s.as_ref(), &loaded, &|i, n| {
            pb.set_length(n as u64);
            pb.set_position(i as u64);
        })
        .map_err(err)?;
        pb.finish_and_clear();
        results.push(r);
    }
    let report = Report {
        version: REPORT_VERSION,
        corpus_digest: corpus::digest(&loaded),
        corpus: loaded.summary,
        schemes: results,
    };
    print!("{}", to_text(&report));
    if let Some(out) = &o.out {
        let json = to_json(&report).map_err(|e| CliError::runtime(format!("eval: JSON: {e}")))?;
        write(&out.join("eval.json"), &json)?;
        write(&out.join("eval.html"), &to_html(&report))?;
        // The charts also as files of their own (docs/HASHING.md §8 embeds V1's).
        for (k, sr) in report.schemes.iter().enumerate() {
            let name = &sr.scheme.name;
            write(&out.join(format!("recall-{name}.svg")), &recall_chart(sr, &format!("recall{k}")))?;
            write(&out.join(format!("distances-{name}.svg")), &distance_chart(sr, &format!("dist{k}")))?;
        }
        println!(
            "\nwrote {}, {} and two charts per configuration ({}/recall-*.svg, distances-*.svg)",
            out.join("eval.json").display(),
            out.join("eval.html").display(),
            out.display()
        );
    }
    Ok(())
}
