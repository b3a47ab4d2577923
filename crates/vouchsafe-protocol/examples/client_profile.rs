//! Makes real vouchers in a loop (for profiling the client: `perf record --call-graph dwarf`).
//! `cargo run --release -p vouchsafe-protocol --example client_profile -- 3000`
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableConfig, TableDownload};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut rng = ChaCha20Rng::from_seed([5u8; 32]);
    let cfg = TableConfig {
        epoch: 1,
        order_id: [7u8; 16],
        threshold: 30,
        synthetic_cap: 60,
        synthetic_rate: 0,
        ad_len: 4189 + 11,
        chunk_slots: 4096,
    };
    let items: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let mut v = vec![0u8; 11];
            rng.fill_bytes(&mut v);
            v
        })
        .collect();
    let table = ServerTable::build(&cfg, BlindingKey::random(&mut rng), items, &mut rng)?;
    let mut dl = TableDownload::new(table.manifest());
    for i in 0..table.chunk_count() {
        dl.add_chunk(&table.chunk(i).ok_or("chunk out of range")?.encode())?;
    }
    let client = dl.finish()?;
    let mut session = ClientSession::new(ClientState::new(table.params(), &mut rng))?;
    let ad = vec![0x5au8; 4187];
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut y = vec![0u8; 11];
        rng.fill_bytes(&mut y);
        std::hint::black_box(session.voucher(&client, &y, &ad, &mut rng)?);
    }
    println!("{:.1} µs per real voucher", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    Ok(())
}
