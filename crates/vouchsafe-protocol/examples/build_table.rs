//! Builds a blinded table of N random indicators and reports time, peak memory and wire size.
//!
//! `cargo run --release -p vouchsafe-protocol --example build_table -- 1000000`

use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vouchsafe_protocol::table::{BlindingKey, DEFAULT_CHUNK_SLOTS, ServerTable, TableConfig, TableDownload};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 100_000,
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("usage: build_table [N > 0]");
            std::process::exit(2);
        }
    };
    let mut rng = ChaCha20Rng::from_seed([1u8; 32]);
    let items: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut v = vec![0u8; 35];
            rng.fill_bytes(&mut v);
            v
        })
        .collect();
    let cfg = TableConfig {
        epoch: 1,
        order_id: [0u8; 16],
        threshold: 30,
        synthetic_cap: 60,
        synthetic_rate: 0,
        ad_len: 1200,
        chunk_slots: DEFAULT_CHUNK_SLOTS,
    };
    let key = BlindingKey::random(&mut rng);
    let t = Instant::now();
    let table = match ServerTable::build(&cfg, key, items, &mut rng) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("build failed: {e}");
            std::process::exit(1);
        }
    };
    let build = t.elapsed();
    let manifest = table.manifest();
    let chunk_bytes: usize =
        (0..table.chunk_count()).map(|i| table.chunk(i).map(|c| c.encode().len()).unwrap_or(0)).sum();
    let manifest_bytes = manifest.encode().len();
    println!(
        "indicators: {n}, slots: {} ({:.3} per indicator), threads: {}",
        table.slots().len(),
        table.slots().len() as f64 / n as f64,
        rayon::current_num_threads()
    );
    println!(
        "build: {:.2} s = {:.1} µs per indicator (wall, all cores)",
        build.as_secs_f64(),
        build.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "wire: chunks {} B + manifest {} B = {:.2} bytes per indicator (bar ≤ 36)",
        chunk_bytes,
        manifest_bytes,
        (chunk_bytes + manifest_bytes) as f64 / n as f64
    );
    let t = Instant::now();
    let mut dl = TableDownload::new(manifest);
    for i in 0..table.chunk_count() {
        if let Some(c) = table.chunk(i) {
            dl.add_chunk(&c.encode())?;
        }
    }
    let client = dl.finish()?;
    println!("client verify + validate: {:.2} s for {} slots", t.elapsed().as_secs_f64(), client.slots().len());
    let mut upd_rng = ChaCha20Rng::from_seed([2u8; 32]);
    let mut table = table;
    let adds: Vec<Vec<u8>> = (0..1000)
        .map(|_| {
            let mut v = vec![0u8; 35];
            upd_rng.fill_bytes(&mut v);
            v
        })
        .collect();
    match table.update(adds, &[], &mut upd_rng) {
        Ok(u) => println!(
            "update adding 1000 indicators: {} changed slots, {} B = {:.2} bytes per changed slot (bar ≤ 40)",
            u.changes.len(),
            u.encode().len(),
            u.encode().len() as f64 / u.changes.len().max(1) as f64
        ),
        Err(e) => println!("update: {e}"),
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS: {mib:.0} MiB (includes the input indicators and the client copy)");
    }
    Ok(())
}
