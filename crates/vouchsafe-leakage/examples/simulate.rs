//! Reads a view (JSON lines) and writes a view drawn from the leakage function only, or, with `--capture`
//! (feature `protocol`), writes an in-memory capture of the real protocol.
//!
//! ```text
//! cargo run -p vouchsafe-leakage --example simulate -- VIEW.jsonl [--seed N] > SIMULATED.jsonl
//! cargo run -p vouchsafe-leakage --features protocol --example simulate -- --capture \
//!     [--accounts 8 --images 250 --matches 5 --threshold 10 --cap 30 --rate 0.05] [--seed N] > CAPTURE.jsonl
//! ```

use std::io::Write as _;
use std::process::ExitCode;

use vouchsafe_leakage::simulate::simulate;
use vouchsafe_leakage::view::View;

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
}

#[cfg(feature = "protocol")]
fn capture(a: &std::collections::HashMap<String, String>, seed: u64) -> Result<View, String> {
    use vouchsafe_leakage::capture::{Scenario, protocol_view};
    let get = |k: &str, d: &str| a.get(k).cloned().unwrap_or_else(|| d.to_string());
    let s = Scenario::uniform(
        value("--accounts", Some(get("--accounts", "8")))?,
        value("--images", Some(get("--images", "250")))?,
        value("--matches", Some(get("--matches", "5")))?,
        value("--threshold", Some(get("--threshold", "10")))?,
        value("--cap", Some(get("--cap", "30")))?,
        value("--rate", Some(get("--rate", "0.05")))?,
    );
    protocol_view(&s, &mut vouchsafe_leakage::simulate::seeded_rng(seed)).map_err(|e| e.to_string())
}

#[cfg(not(feature = "protocol"))]
fn capture(_: &std::collections::HashMap<String, String>, _: u64) -> Result<View, String> {
    Err("--capture needs --features protocol".into())
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut path, mut seed, mut do_capture) = (None, 0u64, false);
    let mut opts = std::collections::HashMap::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = value("--seed", args.next())?,
            "--capture" => do_capture = true,
            f @ ("--accounts" | "--images" | "--matches" | "--threshold" | "--cap" | "--rate") => {
                let v = args.next().ok_or_else(|| format!("{f} needs a value"))?;
                opts.insert(f.to_string(), v);
            }
            p if !p.starts_with("--") && path.is_none() => path = Some(p.to_string()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = if do_capture {
        capture(&opts, seed)?
    } else {
        let path = path.ok_or("usage: simulate VIEW.jsonl [--seed N] | --capture [...]")?;
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let view = View::from_jsonl(&text).map_err(|e| format!("{path}: {e}"))?;
        simulate(&view, seed).map_err(|e| e.to_string())?
    };
    let text = out.to_jsonl().map_err(|e| e.to_string())?;
    std::io::stdout().write_all(text.as_bytes()).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
