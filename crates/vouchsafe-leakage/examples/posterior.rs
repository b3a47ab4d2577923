//! The server's posterior on an account's real match count below the threshold.
//!
//! ```text
//! cargo run -p vouchsafe-leakage --example posterior -- \
//!     --vouchers 1000 --opened 12 --rate 0.01 --cap 60 --threshold 30 [--match-rate 0.001]
//! ```
//!
//! Without `--match-rate` the prior is uniform on the number of matching images; with it, every
//! image matches independently with that rate. See `docs/LEAKAGE.md`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use vouchsafe_leakage::{LeakageParams, Posterior, Prior, innocent_opened_distribution, real_count_posterior};

const USAGE: &str = "usage: posterior --vouchers N --opened C --rate P --cap S --threshold T [--match-rate Q]

  --vouchers N     vouchers sent for distinct new images (null vouchers not counted)
  --opened C       vouchers that opened (real matches and synthetics), below the threshold
  --rate P         synthetic rate p, in [0, 1]
  --cap S          synthetic cap s
  --threshold T    threshold T (at least 2)
  --match-rate Q   prior: each image matches independently with rate Q (default: uniform prior)";

struct Args {
    params: LeakageParams,
    opened: u64,
    prior: Prior,
}

fn parse_value<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value.parse().map_err(|_| format!("{flag}: cannot parse {value:?}"))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut vouchers, mut opened, mut rate, mut cap, mut threshold, mut match_rate) =
        (None, None, None, None, None, None);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--vouchers" => vouchers = Some(parse_value::<u64>(&flag, it.next())?),
            "--opened" => opened = Some(parse_value::<u64>(&flag, it.next())?),
            "--rate" => rate = Some(parse_value::<f64>(&flag, it.next())?),
            "--cap" => cap = Some(parse_value::<u32>(&flag, it.next())?),
            "--threshold" => threshold = Some(parse_value::<u32>(&flag, it.next())?),
            "--match-rate" => match_rate = Some(parse_value::<f64>(&flag, it.next())?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let missing = |name: &str| format!("missing {name}");
    Ok(Args {
        params: LeakageParams {
            vouchers: vouchers.ok_or_else(|| missing("--vouchers"))?,
            synthetic_rate: rate.ok_or_else(|| missing("--rate"))?,
            synthetic_cap: cap.ok_or_else(|| missing("--cap"))?,
            threshold: threshold.ok_or_else(|| missing("--threshold"))?,
        },
        opened: opened.ok_or_else(|| missing("--opened"))?,
        prior: match match_rate {
            Some(q) => Prior::Binomial { match_rate: q },
            None => Prior::Uniform,
        },
    })
}

fn print_posterior(out: &mut String, args: &Args, post: &Posterior) {
    let p = &args.params;
    let prior = match &args.prior {
        Prior::Binomial { match_rate } => format!("binomial, match rate {match_rate}"),
        _ => "uniform on the number of matching images".to_owned(),
    };
    let _ = writeln!(
        out,
        "vouchers n = {}, opened c = {}, synthetic rate p = {}, cap s = {}, threshold T = {}",
        p.vouchers, args.opened, p.synthetic_rate, p.synthetic_cap, p.threshold
    );
    let _ = writeln!(out, "prior: {prior}");
    let _ = writeln!(out, "server's posterior of the real match count R (below the threshold):");
    let _ = writeln!(out, "{:>5}  {:>12}  {:>12}", "r", "P(R = r)", "P(R <= r)");
    let mut cdf = 0.0;
    let mut hidden = 0usize;
    for (r, &pr) in post.probabilities().iter().enumerate() {
        cdf += pr;
        if pr < 1e-6 {
            hidden += 1;
            continue;
        }
        let _ = writeln!(out, "{r:>5}  {pr:>12.6}  {cdf:>12.6}");
    }
    if hidden > 0 {
        let _ = writeln!(out, "({hidden} values of r with P < 1e-6 not shown)");
    }
    let _ = writeln!(out, "mean E[R | c]       = {:.4}", post.mean());
    let _ = writeln!(out, "std dev             = {:.4}", post.variance().sqrt());
    let _ = writeln!(out, "MAP                 = {}", post.map());
    let _ = writeln!(out, "95% upper bound     = {}", post.quantile(0.95));
    let _ = writeln!(out, "P(R >= 1 | c)       = {:.6}", post.prob_any_real());
}

fn print_innocent(out: &mut String, params: &LeakageParams, opened: u64) {
    let Ok(dist) = innocent_opened_distribution(params) else {
        return;
    };
    let mean: f64 = dist.iter().enumerate().map(|(c, p)| c as f64 * p).sum();
    let at_least: f64 = dist.iter().enumerate().filter(|(c, _)| *c as u64 >= opened).fold(0.0, |acc, (_, p)| acc + p);
    let mut acc = 0.0;
    let (mut lo, mut hi) = (None, None);
    for (c, p) in dist.iter().enumerate() {
        acc += p;
        if lo.is_none() && acc >= 0.025 {
            lo = Some(c);
        }
        if hi.is_none() && acc >= 0.975 {
            hi = Some(c);
        }
    }
    let _ = writeln!(out, "an account with zero real matches opens on average {mean:.3} vouchers");
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let _ = writeln!(out, "  (95% of such accounts open between {lo} and {hi});");
    }
    let _ = writeln!(out, "  P(it opens >= {opened}) = {at_least:.6}");
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            if msg.is_empty() {
                let _ = writeln!(std::io::stdout().lock(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match real_count_posterior(&args.params, args.opened, &args.prior) {
        Ok(post) => {
            let mut out = String::new();
            print_posterior(&mut out, &args, &post);
            print_innocent(&mut out, &args.params, args.opened);
            // A closed stdout (e.g. piped into `head`) is not an error worth a panic.
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
