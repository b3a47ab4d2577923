//! Shared fixtures for the protocol tests.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::table::{BlindingKey, ClientTable, ServerTable, TableConfig, TableDownload};
use vouchsafe_protocol::voucher::Opener;

pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

pub fn config(threshold: u16, synthetic_cap: u16, rate: u32) -> TableConfig {
    TableConfig {
        epoch: 7,
        order_id: *b"order-0000000001",
        threshold,
        synthetic_cap,
        synthetic_rate: rate,
        ad_len: 64,
        chunk_slots: 16,
    }
}

pub fn random_items(n: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut v = vec![0u8; 35];
            rng.fill_bytes(&mut v);
            v
        })
        .collect()
}

/// Server table, opener and a client table obtained through the chunked download path.
pub fn setup(cfg: &TableConfig, items: Vec<Vec<u8>>, rng: &mut ChaCha20Rng) -> (ServerTable, Opener, ClientTable) {
    let key = BlindingKey::random(rng);
    let table = ServerTable::build(cfg, key.clone(), items, rng).expect("build");
    let opener = Opener::new(key, table.params().clone()).expect("opener");
    let client = download(&table);
    (table, opener, client)
}

pub fn download(table: &ServerTable) -> ClientTable {
    let mut d = TableDownload::new(table.manifest());
    for i in 0..table.chunk_count() {
        d.add_chunk(&table.chunk(i).expect("chunk").encode()).expect("add chunk");
    }
    d.finish().expect("finish")
}

pub fn session(table: &ClientTable, rng: &mut ChaCha20Rng) -> ClientSession {
    ClientSession::new(ClientState::new(table.params(), rng)).expect("session")
}
