#![no_main]
//! The server's whole per-voucher path on attacker bytes: decode, α·Q, try the cts, open rct. Never panics.
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::sync::OnceLock;
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableConfig};
use vouchsafe_protocol::voucher::Opener;

fn opener() -> &'static Opener {
    static O: OnceLock<Opener> = OnceLock::new();
    O.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([9u8; 32]);
        let cfg = TableConfig {
            epoch: 1,
            order_id: [1u8; 16],
            threshold: 2,
            synthetic_cap: 1,
            synthetic_rate: 0,
            ad_len: 8,
            chunk_slots: 16,
        };
        let key = BlindingKey::random(&mut rng);
        let table = ServerTable::build(&cfg, key.clone(), vec![b"x".to_vec()], &mut rng).expect("table");
        Opener::new(key, table.params().clone()).expect("opener")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = opener().open_bytes(data);
});
