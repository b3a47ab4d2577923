//! The vectors beyond the main flow (docs/PROTOCOL.md §12 "Vectors"): the harness's ChaCha20 stream checked against
//! an independent ChaCha20 block function, cuckoo builds reproduced by an independent placement (an eviction walk
//! and a rebuild after a failed placement), a covered table update, the server-table file, what follows the flow
//! (a real non-match, a voucher classified after the reveal, the client state, every threshold and opening
//! outcome), and the rejection-sampling retries forced with a scripted RNG.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, TryCryptoRng, TryRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use vouchsafe_protocol::Fp;
use vouchsafe_protocol::client::{ClientSession, ClientState, VoucherKind};
use vouchsafe_protocol::crypto::{hash_to_group, random_nonzero_scalar};
use vouchsafe_protocol::labels::LABEL_FILLER;
use vouchsafe_protocol::table::{BlindingKey, ClientTable, ServerTable, TableConfig, positions, slot_count_for};
use vouchsafe_protocol::threshold::{Classified, ThresholdOutcome, try_reveal};
use vouchsafe_protocol::voucher::{InvalidReason, OpenOutcome, OpenedVoucher, Opener};

use super::common::*;

// ---------------------------------------------------------------------------------------------------------------
// The RNG stream.

/// One ChaCha20 block (RFC 7539 quarter rounds, 20 rounds) with djb's layout: constants, key, 64-bit block
/// counter (words 12, 13), 64-bit stream id (words 14, 15).
fn chacha20_block(key: &[u8; 32], counter: u64, stream: u64) -> [u32; 16] {
    let mut s = [0u32; 16];
    s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        s[4 + i] = u32::from_le_bytes(key[4 * i..4 * i + 4].try_into().unwrap());
    }
    s[12] = counter as u32;
    s[13] = (counter >> 32) as u32;
    s[14] = stream as u32;
    s[15] = (stream >> 32) as u32;
    let mut x = s;
    fn qr(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(16);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(12);
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(8);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(7);
    }
    for _ in 0..10 {
        qr(&mut x, 0, 4, 8, 12);
        qr(&mut x, 1, 5, 9, 13);
        qr(&mut x, 2, 6, 10, 14);
        qr(&mut x, 3, 7, 11, 15);
        qr(&mut x, 0, 5, 10, 15);
        qr(&mut x, 1, 6, 11, 12);
        qr(&mut x, 2, 7, 8, 13);
        qr(&mut x, 3, 4, 9, 14);
    }
    for i in 0..16 {
        x[i] = x[i].wrapping_add(s[i]);
    }
    x
}

/// The harness's key for `rng(seed)`: the seed's 8 little-endian bytes, then 24 zero bytes.
fn harness_key(seed: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&seed.to_le_bytes());
    k
}

/// The word stream of `rng(seed)` by the documented rule: blocks 0, 1, 2, … of ChaCha20 under the harness key with
/// stream id 0, each block's 16 words in order.
fn stream_words(seed: u64, blocks: u64) -> Vec<u32> {
    (0..blocks).flat_map(|b| chacha20_block(&harness_key(seed), b, 0)).collect()
}

pub fn rng_stream() -> Value {
    let w = stream_words(2026, 12);
    let w64 = |i: usize| u64::from(w[i]) | (u64::from(w[i + 1]) << 32);
    let mut r = rng(2026);
    assert_eq!(r.next_u32(), w[0], "next_u32 = the next word");
    assert_eq!(r.next_u64(), w64(1), "next_u64 = next word | following word << 32");
    let mut b5 = [0u8; 5];
    r.fill_bytes(&mut b5);
    assert_eq!(b5[..4], w[3].to_le_bytes(), "fill_bytes copies whole words little-endian");
    assert_eq!(b5[4], w[4].to_le_bytes()[0], "a partial last word gives its low bytes");
    assert_eq!(r.next_u32(), w[5], "the rest of a partly used word is discarded");
    for &x in &w[6..63] {
        assert_eq!(r.next_u32(), x);
    }
    assert_eq!(r.next_u64(), w64(63), "a u64 straddling the 4-block buffer is the same two consecutive words");
    let mut b70 = [0u8; 70];
    r.fill_bytes(&mut b70);
    let want: Vec<u8> = w[65..83].iter().flat_map(|x| x.to_le_bytes()).take(70).collect();
    assert_eq!(b70.to_vec(), want);
    assert_eq!(r.next_u32(), w[83]);
    for &x in &w[84..127] {
        assert_eq!(r.next_u32(), x);
    }
    assert_eq!(r.next_u64(), w64(127));
    // 32 bytes starting in the middle of a buffer and 16 bytes across the buffer boundary (words 129..137, 137..).
    let mut b = [0u8; 32];
    r.fill_bytes(&mut b);
    assert_eq!(b.to_vec(), w[129..137].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
    for &x in &w[137..190] {
        assert_eq!(r.next_u32(), x);
    }
    let mut b16 = [0u8; 16];
    r.fill_bytes(&mut b16);
    let next = stream_words(2026, 13);
    assert_eq!(b16.to_vec(), next[190..194].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
    json!({
        "seed": 2026,
        "key": hex::encode(harness_key(2026)),
        "block_0_words": w[..16].to_vec(),
        "block_1_words": w[16..32].to_vec(),
        "first_64_bytes": hex::encode(w[..16].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
    })
}

/// An RNG that serves the words of `rng(seed)` by the documented rules (`next_u64` = two words, low first;
/// `fill_bytes` = ⌈n/4⌉ words little-endian, the unused bytes of the last one discarded), with extra words
/// inserted before given positions of that stream (positions count words of `rng(seed)` only).
pub struct Scripted {
    inner: ChaCha20Rng,
    inject: BTreeMap<u64, Vec<u32>>,
    queue: VecDeque<u32>,
    /// Words taken from `rng(seed)`.
    pub inner_pos: u64,
    /// Inserted words served.
    pub extra: u64,
}

impl Scripted {
    pub fn new(seed: u64, inject: BTreeMap<u64, Vec<u32>>) -> Self {
        Scripted { inner: rng(seed), inject, queue: VecDeque::new(), inner_pos: 0, extra: 0 }
    }
    fn word(&mut self) -> u32 {
        if self.queue.is_empty()
            && let Some(v) = self.inject.remove(&self.inner_pos)
        {
            self.queue.extend(v);
        }
        if let Some(w) = self.queue.pop_front() {
            self.extra += 1;
            return w;
        }
        self.inner_pos += 1;
        self.inner.next_u32()
    }
}

impl TryRng for Scripted {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.word())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let lo = self.word();
        let hi = self.word();
        Ok(u64::from(lo) | (u64::from(hi) << 32))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for c in dst.chunks_mut(4) {
            let w = self.word().to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for Scripted {}

// ---------------------------------------------------------------------------------------------------------------
// Builds.

fn small_cfg() -> TableConfig {
    TableConfig {
        epoch: 5,
        order_id: *b"kat-order-000002",
        threshold: 3,
        synthetic_cap: 2,
        synthetic_rate: 1 << 31,
        ad_len: 40,
        chunk_slots: 4,
    }
}

const EMPTY: u32 = u32::MAX;

struct Sim {
    attempts: Vec<Value>,
    nonce: [u8; 16],
    slot_item: Vec<u32>,
    filler_seed: [u8; 32],
    evictions: usize,
}

/// The documented build placement, independently: per attempt a 16-byte nonce; items in sorted order; each goes to
/// the first free one of h1, h2, h3, else evicts `choices[u32 mod len]` (choices = its positions without the slot it
/// was just evicted from, in order) and the evicted item continues; 4096 evictions per insertion at most; after a
/// successful attempt the 32-byte filler seed.
fn simulate(items: &[Vec<u8>], m: u32, r: &mut ChaCha20Rng) -> Sim {
    let mut attempts = Vec::new();
    for _ in 0..64 {
        let mut nonce = [0u8; 16];
        r.fill_bytes(&mut nonce);
        let pos: Vec<[u32; 3]> = items.iter().map(|y| positions(&nonce, m, y)).collect();
        let mut slot = vec![EMPTY; m as usize];
        let mut walk = Vec::new();
        let mut failed = None;
        let mut draws = 0usize;
        'items: for i in 0..items.len() as u32 {
            let (mut cur, mut came) = (i, EMPTY);
            for _ in 0..4096 {
                let p = pos[cur as usize];
                if let Some(&f) = p.iter().find(|&&q| slot[q as usize] == EMPTY) {
                    slot[f as usize] = cur;
                    continue 'items;
                }
                let choices: Vec<u32> = p.iter().copied().filter(|&q| q != came).collect();
                let v = r.next_u32();
                draws += 1;
                let vs = choices[v as usize % choices.len()];
                walk.push(json!({"inserting": i, "moving": cur, "u32": v, "slot": vs, "evicted": slot[vs as usize]}));
                let victim = slot[vs as usize];
                slot[vs as usize] = cur;
                came = vs;
                cur = victim;
            }
            failed = Some(i);
            break;
        }
        if let Some(i) = failed {
            attempts.push(json!({"nonce": hex::encode(nonce), "failed_at_item": i, "u32_draws": draws}));
            continue;
        }
        let mut filler_seed = [0u8; 32];
        r.fill_bytes(&mut filler_seed);
        let evictions = walk.len();
        attempts.push(json!({"nonce": hex::encode(nonce), "evictions": walk}));
        return Sim { attempts, nonce, slot_item: slot, filler_seed, evictions };
    }
    panic!("64 failed attempts");
}

fn filler(seed: &[u8; 32], i: u32) -> [u8; 32] {
    let mut h = Sha512::new();
    h.update(LABEL_FILLER);
    h.update(seed);
    h.update(i.to_le_bytes());
    RistrettoPoint::from_hash(h).compress().to_bytes()
}

/// Checks the library's build against the simulation, through the server-table file.
fn check_table(table: &ServerTable, key: &BlindingKey, sorted: &[Vec<u8>], sim: &Sim) {
    assert_eq!(table.version(), 1, "a build is version 1");
    assert_eq!(table.params().nonce, sim.nonce);
    let secret = table.to_secret_bytes();
    let mut at = 1 + 88 + 32 + 8 + 4 + 4;
    for y in sorted {
        assert_eq!(&secret[at..at + 2], &(y.len() as u16).to_le_bytes());
        assert_eq!(&secret[at + 2..at + 2 + y.len()], &y[..], "items are stored in sorted order");
        at += 2 + y.len();
    }
    let m = sim.slot_item.len();
    let alpha = Scalar::from_bytes_mod_order(*key.to_bytes());
    for (i, &it) in sim.slot_item.iter().enumerate() {
        assert_eq!(&secret[at + 4 * i..at + 4 * i + 4], &it.to_le_bytes(), "slot {i} holds the simulated item");
        let want = if it == EMPTY {
            filler(&sim.filler_seed, i as u32)
        } else {
            (alpha * hash_to_group(&table.params().nonce, &sorted[it as usize])).compress().to_bytes()
        };
        assert_eq!(table.slots()[i], want, "slot {i} point");
    }
    assert_eq!(secret.len(), at + 36 * m);
}

/// The first seed ≥ 1 whose build with `n` random indicators satisfies `pred`; the build reproduced independently.
fn find_build(n: usize, pred: impl Fn(&Sim) -> bool, update: bool) -> Value {
    for seed in 1..100_000u64 {
        let mut r = rng(seed);
        let items = random_items(n, &mut r);
        let key = BlindingKey::random(&mut r);
        let mut sorted = items.clone();
        sorted.sort();
        sorted.dedup();
        let m = slot_count_for(sorted.len()) as u32;
        let mut sim_rng = r.clone();
        let sim = simulate(&sorted, m, &mut sim_rng);
        if !pred(&sim) {
            continue;
        }
        let cfg = small_cfg();
        let mut table = ServerTable::build(&cfg, key.clone(), items.clone(), &mut r).unwrap();
        check_table(&table, &key, &sorted, &sim);
        let mut probe = r.clone();
        assert_eq!(probe.next_u32(), sim_rng.next_u32(), "the build consumed exactly the simulated draws");
        let mut out = json!({
            "seed": seed,
            "config": {"epoch": cfg.epoch, "order_id": hex::encode(cfg.order_id), "threshold": cfg.threshold,
                       "synthetic_cap": cfg.synthetic_cap, "synthetic_rate": cfg.synthetic_rate, "ad_len": cfg.ad_len,
                       "chunk_slots": cfg.chunk_slots},
            "indicators": items.iter().map(hex::encode).collect::<Vec<_>>(),
            "alpha": hex::encode(&key.to_bytes()[..]),
            "m": m,
            "attempts": sim.attempts,
            "slot_item": sim.slot_item,
            "filler_seed": hex::encode(sim.filler_seed),
            "params": hex::encode(table.params().encode()),
            "manifest": hex::encode(table.manifest().encode()),
            "root": hex::encode(table.manifest().root()),
        });
        if update {
            out["server_table"] = json!(hex::encode(&table.to_secret_bytes()[..]));
            let before = download(&table);
            let add = random_items(1, &mut r);
            let remove = vec![sorted[1].clone()];
            let up = table.update(add.clone(), &remove, &mut r).unwrap();
            assert_eq!(table.version(), 2);
            let after = before.apply_update(&up, table.manifest()).unwrap();
            assert_eq!(after.slots(), table.slots());
            assert!(table.contains(&add[0]) && !table.contains(&remove[0]));
            out["update"] = json!({
                "add": add.iter().map(hex::encode).collect::<Vec<_>>(),
                "remove": remove.iter().map(hex::encode).collect::<Vec<_>>(),
                "cover_slots": vouchsafe_protocol::table::UpdateCover::DEFAULT.slots(m),
                "update": hex::encode(up.encode()),
                "manifest_after": hex::encode(table.manifest().encode()),
                "server_table_after": hex::encode(&table.to_secret_bytes()[..]),
            });
        }
        return out;
    }
    panic!("no seed found");
}

pub fn builds() -> Value {
    json!({
        "eviction": find_build(6, |s| s.attempts.len() == 1 && s.evictions >= 2, true),
        "rebuild": find_build(100, |s| s.attempts.len() > 1, false),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// After the flow.

fn outcome(o: &OpenOutcome) -> String {
    match o {
        OpenOutcome::NonMatch => "non-match".into(),
        OpenOutcome::Opened(_) => "opened".into(),
        OpenOutcome::Invalid(InvalidReason::Malformed(e)) => format!("invalid:malformed:{e}"),
        OpenOutcome::Invalid(InvalidReason::SeveralOpened) => "invalid:several-opened".into(),
        OpenOutcome::Invalid(InvalidReason::BadPayload) => "invalid:bad-payload".into(),
        OpenOutcome::Invalid(r) => format!("invalid:{r:?}"),
    }
}

fn reveal_json(r: vouchsafe_protocol::Result<ThresholdOutcome>) -> Value {
    match r {
        Err(e) => json!({"outcome": "error", "error": format!("{e}")}),
        Ok(ThresholdOutcome::Below { distinct }) => json!({"outcome": "below", "distinct": distinct}),
        Ok(ThresholdOutcome::Revealed(r)) => json!({
            "outcome": "revealed",
            "real": r.real.iter().map(|i| json!({"id": hex::encode(i.id), "ad": hex::encode(&i.ad[..])})).collect::<Vec<_>>(),
            "synthetic": r.synthetic.iter().map(hex::encode).collect::<Vec<_>>(),
            "rejected": r.rejected.iter().map(hex::encode).collect::<Vec<_>>(),
            "account": hex::encode(&r.account.encode()[..]),
        }),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn flow_after(
    cfg: &TableConfig,
    client: &ClientTable,
    opener: &Opener,
    session: &mut ClientSession,
    opened: &[OpenedVoucher],
    indicators: &[Vec<u8>],
    rng: &mut ChaCha20Rng,
) -> Value {
    let state_after_flow = hex::encode(&session.state().encode()[..]);
    let (order, t, s) = (&cfg.order_id, cfg.threshold, cfg.synthetic_cap);
    // The cap is used up, so a new image that is not an indicator gets a real voucher that does not match.
    let y_nm = random_items(1, rng).pop().unwrap();
    let nm = session.voucher(client, &y_nm, b"ad-nm", rng).unwrap();
    assert_eq!(nm.kind, VoucherKind::Real);
    let nm_bytes = nm.voucher.encode();
    let nm_out = opener.open_bytes(&nm_bytes);
    assert!(matches!(nm_out, OpenOutcome::NonMatch));
    // A real match made after the reveal.
    let later = session.voucher(client, &indicators[4], b"ad-later", rng).unwrap();
    assert_eq!(later.kind, VoucherKind::Real);
    let later_bytes = later.voucher.encode();
    let OpenOutcome::Opened(later_opened) = opener.open_bytes(&later_bytes) else { panic!("later voucher opens") };
    let state_after = hex::encode(&session.state().encode()[..]);
    let Ok(ThresholdOutcome::Revealed(rev)) = try_reveal(order, t, s, opened) else { panic!("flow reveals") };
    let classify = |v: &OpenedVoucher| match rev.account.classify(v) {
        Classified::Real(i) => json!({"class": "real", "id": hex::encode(i.id), "ad": hex::encode(&i.ad[..])}),
        Classified::Synthetic => json!({"class": "synthetic", "id": hex::encode(v.id())}),
        Classified::Rejected => json!({"class": "rejected", "id": hex::encode(v.id())}),
    };
    let classified_later = classify(&later_opened);
    let classified_synthetic = classify(&opened[1]);
    let mut tampered = later_opened.clone();
    let last = tampered.adct_mut().len() - 1;
    tampered.adct_mut()[last] ^= 1;
    let classified_tampered = classify(&tampered);

    let below = reveal_json(try_reveal(order, t, s, &opened[..2]));
    let mut dup = opened.to_vec();
    dup.push(opened[0].clone());
    let duplicate = reveal_json(try_reveal(order, t, s, &dup));
    let mut with_bad = opened.to_vec();
    with_bad.push(tampered.clone());
    let rejected_share = reveal_json(try_reveal(order, t, s, &with_bad));
    let mut with_later = opened.to_vec();
    with_later.push(later_opened.clone());
    let four_real = reveal_json(try_reveal(order, t, s, &with_later));

    // Invalid vouchers, all from the later real voucher's bytes.
    let mut invalid = Vec::new();
    let mut push = |name: &str, bytes: Vec<u8>| {
        let o = outcome(&opener.open_bytes(&bytes));
        invalid.push(json!({"case": name, "voucher": hex::encode(&bytes), "outcome": o}));
    };
    let mut b = later_bytes.clone();
    b.pop();
    push("truncated", b);
    let mut b = later_bytes.clone();
    b[1] ^= 1;
    push("wrong-epoch", b);
    let mut b = later_bytes.clone();
    b[0] = 2;
    push("wrong-version", b);
    let mut found = false;
    for j in 0..3 {
        let mut b = later_bytes.clone();
        let ct: Vec<u8> = b[57 + 60 * j..57 + 60 * (j + 1)].to_vec();
        for k in 0..3 {
            b[57 + 60 * k..57 + 60 * (k + 1)].copy_from_slice(&ct);
        }
        if matches!(opener.open_bytes(&b), OpenOutcome::Invalid(InvalidReason::SeveralOpened)) {
            push("several-opened", b);
            found = true;
        }
    }
    assert!(found);
    let mut b = later_bytes.clone();
    b[57 + 180 + 12] ^= 1;
    push("bad-payload", b);

    json!({
        "client_state_after_flow": state_after_flow,
        "real_non_match": {"image": hex::encode(&y_nm), "ad": hex::encode(b"ad-nm"), "kind": "Real",
                           "voucher": hex::encode(&nm_bytes), "server": outcome(&nm_out)},
        "later": {"image": hex::encode(&indicators[4]), "ad": hex::encode(b"ad-later"), "kind": "Real",
                  "voucher": hex::encode(&later_bytes), "opened": hex::encode(&later_opened.encode()[..]),
                  "classified": classified_later},
        "classified_synthetic": classified_synthetic,
        "classified_tampered": classified_tampered,
        "client_state_after": state_after,
        "reveal_below": below,
        "reveal_duplicate": duplicate,
        "reveal_rejected_share": rejected_share,
        "reveal_four_real": four_real,
        "invalid": invalid,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Rejection sampling.

pub fn rejection(client: &ClientTable, state_bytes: &[u8], y: &[u8]) -> Value {
    const P: u64 = 0xFFFF_FFFF_FFFF_FFC5;
    let fp_words = vec![0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFC5, 0xFFFF_FFFF, 0xFFFF_FFC4, 0xFFFF_FFFF];
    let mut r = Scripted::new(0, BTreeMap::from([(0, fp_words.clone())]));
    let v = Fp::random(&mut r).value();
    assert_eq!((v, r.extra, r.inner_pos), (P - 1, 6, 0), "u64 = 2^64 − 1 and u64 = p are drawn again; p − 1 is kept");

    let mut sc_words = vec![0u32; 16];
    sc_words.extend([0xFFFF_FFFFu32; 16]);
    let mut r = Scripted::new(0, BTreeMap::from([(0, sc_words.clone())]));
    let sc = random_nonzero_scalar(&mut r);
    assert_eq!((r.extra, r.inner_pos), (32, 0));
    assert_eq!(sc, Scalar::from_bytes_mod_order_wide(&[0xFF; 64]), "64 bytes reduced mod ℓ, no rejection above ℓ");

    // A voucher with every retry branch forced: the inserted words are consumed and rejected, so the voucher is
    // byte for byte the one made from the plain stream.
    let inject: Vec<(u64, Vec<u32>, &str)> = vec![
        (45, vec![0xFFFF_FFFF, 0xFFFF_FFFF], "x̃′: u64 2^64 − 1 ≥ p, drawn again"),
        (47, vec![0xFFFF_FFC5, 0xFFFF_FFFF], "r̃_1: u64 = p, drawn again"),
        (51, vec![0; 16], "x̃: 64 zero bytes = 0, drawn again"),
        (83, vec![0; 16], "β: 0, drawn again"),
        (99, vec![0; 16], "γ: 0, drawn again"),
        (130, vec![0xFFFF_FFFF], "shuffle i = 2: u32 ≥ 4294967295 = ⌊(2³²−1)/3⌋·3, drawn again"),
        (131, vec![0xFFFF_FFFE], "shuffle i = 1: u32 ≥ 4294967294 = ⌊(2³²−1)/2⌋·2, drawn again"),
    ];
    let make = |inj: BTreeMap<u64, Vec<u32>>| {
        let mut session = ClientSession::new(ClientState::decode(state_bytes).unwrap()).unwrap();
        let mut r = Scripted::new(99, inj);
        let v = session.voucher(client, y, b"ad-r", &mut r).unwrap();
        let first = (v.voucher.encode(), v.kind, r.inner_pos, r.extra);
        // The same image again: a null voucher, the same number of draws.
        let mut r2 = Scripted::new(100, BTreeMap::new());
        let n = session.voucher(client, y, b"ad-r", &mut r2).unwrap();
        assert_eq!((n.kind, r2.inner_pos), (VoucherKind::Null, 132));
        first
    };
    let plain = make(BTreeMap::new());
    let forced = make(inject.iter().map(|(k, w, _)| (*k, w.clone())).collect());
    assert_eq!(plain.2, 132, "a voucher at s = 2 takes 128 + 2·2 = 132 words");
    assert_eq!(forced.3, inject.iter().map(|(_, w, _)| w.len() as u64).sum::<u64>());
    assert_eq!(forced.2, 132);
    assert_eq!(plain.0, forced.0, "rejected draws leave no trace in the voucher");
    json!({
        "fp_random": {"words": fp_words, "value": v},
        "nonzero_scalar": {"words": sc_words, "scalar": hex::encode(sc.as_bytes())},
        "voucher": {
            "seed": 99,
            "image": hex::encode(y),
            "ad": hex::encode(b"ad-r"),
            "kind": format!("{:?}", plain.1),
            "words_per_voucher": 132,
            "inserted": inject.iter().map(|(k, w, what)| json!({"before_word": k, "words": w, "what": what})).collect::<Vec<_>>(),
            "voucher": hex::encode(&plain.0),
        },
    })
}
