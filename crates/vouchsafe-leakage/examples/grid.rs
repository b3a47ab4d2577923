//! The posterior grid and the two charts of docs/LEAKAGE.md §4.
//!
//! ```text
//! cargo run -p vouchsafe-leakage --example grid -- --out docs/img
//! ```
//!
//! Writes `posterior-grid.md` (a Markdown table), `privacy-vs-rate.svg` (n = 1000, T = 30, one line per cap) and
//! `update-cover.svg` (m = 10⁶ slots, k = 3) into the directory given with `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use vouchsafe_leakage::grid::{CAPS, grid_markdown, posterior_grid, privacy_vs_rate_svg, update_cover_svg};

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a directory")?)),
            "-h" | "--help" => return Err("usage: grid --out DIR".into()),
            other => return Err(format!("unknown argument {other:?}; usage: grid --out DIR")),
        }
    }
    let out = out.ok_or("usage: grid --out DIR")?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let rows = posterior_grid().map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
        Ok::<(), String>(())
    };
    write("posterior-grid.md", &grid_markdown(&rows))?;
    write("privacy-vs-rate.svg", &privacy_vs_rate_svg(1000, 30, &CAPS).map_err(|e| e.to_string())?)?;
    write("update-cover.svg", &update_cover_svg(1_000_000, 3))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
