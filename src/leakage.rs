//! `vouchsafe leakage capture | simulate | distinguish`: the leakage toolkit of `vouchsafe-leakage` on the command
//! line (docs/LEAKAGE.md §9). Wiring only.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vouchsafe_leakage::capture::{Scenario, protocol_view};
use vouchsafe_leakage::distinguish::{compare, distinguish};
use vouchsafe_leakage::live::{Select, assemble};
use vouchsafe_leakage::simulate::simulate;
use vouchsafe_leakage::view::{Hex16, View};

use crate::error::CliError;

type Result<T> = std::result::Result<T, CliError>;

/// The scenario of `vouchsafe leakage capture` (without `--from`).
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Accounts (one client state each).
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
    /// Distinct images per account.
    #[arg(long, default_value_t = 200)]
    pub images: usize,
    /// Of those, how many match an indicator.
    #[arg(long, default_value_t = 2)]
    pub matches: usize,
    /// Threshold T.
    #[arg(long, default_value_t = 10)]
    pub threshold: u16,
    /// Synthetic cap s.
    #[arg(long, default_value_t = 10)]
    pub cap: u16,
    /// Synthetic rate p in [0, 1].
    #[arg(long, default_value_t = 0.02)]
    pub rate: f64,
    /// Vouchers per batch.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Seed of the ChaCha20 RNG (a capture is reproducible).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn read_view(path: &Path) -> Result<View> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("leakage: cannot read {}: {e}", path.display())))?;
    View::from_jsonl(&text).map_err(|e| CliError::usage(format!("leakage: {}: {e}", path.display())))
}

fn write_view(path: &Path, view: &View) -> Result<()> {
    let text = view.to_jsonl().map_err(|e| CliError::runtime(format!("leakage: cannot encode the view: {e}")))?;
    std::fs::write(path, text).map_err(|e| CliError::usage(format!("leakage: cannot write {}: {e}", path.display())))
}

/// `vouchsafe leakage capture`: the server's view of a scenario run through the real protocol (tables, client
/// sessions, the opener, the threshold step) in memory.
pub fn capture(a: &ScenarioArgs, out: &Path) -> Result<()> {
    if !(0.0..=1.0).contains(&a.rate) {
        return Err(CliError::usage("leakage capture: --rate must be in [0, 1]"));
    }
    if a.batch == 0 || a.accounts == 0 {
        return Err(CliError::usage("leakage capture: --accounts and --batch must be at least 1"));
    }
    let mut scenario = Scenario::uniform(a.accounts, a.images, a.matches, a.threshold, a.cap, a.rate);
    scenario.batch_size = a.batch;
    let mut rng = ChaCha20Rng::seed_from_u64(a.seed);
    let view = protocol_view(&scenario, &mut rng).map_err(|e| CliError::usage(format!("leakage capture: {e}")))?;
    write_view(out, &view)?;
    println!(
        "captured {} vouchers of {} accounts ({} opened) into {}",
        view.vouchers.len(),
        view.accounts.len(),
        view.opened_payloads().count(),
        out.display()
    );
    Ok(())
}

/// `vouchsafe leakage capture --from`: the view of one order assembled from a running server's capture log
/// (`worker.capture`, `vouchsafe_leakage::live`).
pub fn capture_from(log: &Path, order: Option<&str>, epoch: Option<u64>, out: &Path) -> Result<()> {
    let order = order
        .map(|h| Hex16::from_hex(h).map_err(|e| CliError::usage(format!("leakage capture: --order: {e}"))))
        .transpose()?;
    let text = std::fs::read_to_string(log)
        .map_err(|e| CliError::usage(format!("leakage capture: cannot read {}: {e}", log.display())))?;
    let view = assemble(&text, Select { order, epoch })
        .map_err(|e| CliError::usage(format!("leakage capture: {}: {e}", log.display())))?;
    write_view(out, &view)?;
    println!(
        "assembled {} vouchers of {} client states ({} opened) of order {} epoch {} into {}",
        view.vouchers.len(),
        view.accounts.len(),
        view.opened_payloads().count(),
        view.params.order.to_hex(),
        view.params.epoch,
        out.display()
    );
    Ok(())
}

/// `vouchsafe leakage simulate`: the view drawn from the stated leakage function only.
pub fn simulate_cmd(input: &Path, out: &Path, seed: u64) -> Result<()> {
    let view = read_view(input)?;
    let sim = simulate(&view, seed).map_err(|e| CliError::usage(format!("leakage simulate: {e}")))?;
    write_view(out, &sim)?;
    println!("simulated {} vouchers into {}", sim.vouchers.len(), out.display());
    Ok(())
}

/// `vouchsafe leakage distinguish`: the battery against the ideal (one view) or two-sample (two views). Exit 1 if
/// any test is flagged at the corrected level.
pub fn distinguish_cmd(view: &Path, against: Option<&Path>) -> Result<()> {
    let a = read_view(view)?;
    let report = match against {
        None => distinguish(&a),
        Some(b) => compare(&a, &read_view(b)?),
    }
    .map_err(|e| CliError::usage(format!("leakage distinguish: {e}")))?;
    print!("{report}");
    if report.passes() {
        Ok(())
    } else {
        Err(CliError::runtime(format!(
            "leakage distinguish: {} test(s) flagged at the corrected level",
            report.flagged().len()
        )))
    }
}
