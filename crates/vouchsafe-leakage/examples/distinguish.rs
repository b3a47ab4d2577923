//! Runs the distinguisher battery on a view (JSON lines) and prints the report; with a second view, the two-sample
//! comparison instead.
//!
//! ```text
//! cargo run -p vouchsafe-leakage --example distinguish -- VIEW.jsonl [OTHER.jsonl]
//! ```
//!
//! Exit status: 0 if no test is flagged, 1 if some test is, 2 on an error (unreadable or invalid view).

use std::process::ExitCode;

use vouchsafe_leakage::distinguish::{compare, distinguish};
use vouchsafe_leakage::view::View;

fn read(path: &str) -> Result<View, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    View::from_jsonl(&text).map_err(|e| format!("{path}: {e}"))
}

fn run() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let report = match args.as_slice() {
        [a] => distinguish(&read(a)?).map_err(|e| e.to_string())?,
        [a, b] => compare(&read(a)?, &read(b)?).map_err(|e| e.to_string())?,
        _ => return Err("usage: distinguish VIEW.jsonl [OTHER.jsonl]".into()),
    };
    print!("{report}");
    Ok(report.passes())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
