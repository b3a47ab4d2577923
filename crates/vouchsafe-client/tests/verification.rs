//! Network-free verification: manifests, chunks, updates, invalid tables, and the local state and table files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use common::*;
use vouchsafe_client::ClientError;
use vouchsafe_client::store;
use vouchsafe_client::verify::{self, UpdateInfo, apply_update, assemble_table, verify_manifest};
use vouchsafe_protocol::client::ClientState;
use vouchsafe_protocol::table::{TableChunk, TableManifest};

fn reason(e: ClientError) -> &'static str {
    match e {
        ClientError::Verification { reason } => reason,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

#[test]
fn honest_table_verifies_and_assembles() {
    let t = build_table(1, vec![], 1);
    let info = manifest_info(&t.manifest());
    let v = verify_manifest(&info, SERVICE, 1 << 20).unwrap();
    assert_eq!(v.root(), t.manifest().root());
    // Chunks in reverse order are fine.
    let mut cs = chunks(&t);
    cs.reverse();
    let table = assemble_table(&v, cs).unwrap();
    assert_eq!(table.slots(), t.slots());
    assert_eq!(table.root(), v.root());
}

#[test]
fn wrong_root_and_inconsistent_manifests_are_refused() {
    let t = build_table(1, vec![], 2);
    let good = manifest_info(&t.manifest());

    let mut m = good.clone();
    m.root[0] ^= 1;
    assert_eq!(
        reason(verify_manifest(&m, SERVICE, 1 << 20).unwrap_err()),
        "the manifest's root does not match its contents"
    );

    let mut m = good.clone();
    m.chunk_hashes[1][5] ^= 1;
    assert_eq!(
        reason(verify_manifest(&m, SERVICE, 1 << 20).unwrap_err()),
        "the manifest's root does not match its contents"
    );

    let mut m = good.clone();
    m.slot_count += 1;
    assert!(verify_manifest(&m, SERVICE, 1 << 20).is_err());

    let mut m = good.clone();
    m.chunk_hashes.pop();
    assert!(verify_manifest(&m, SERVICE, 1 << 20).is_err());

    assert_eq!(
        reason(verify_manifest(&good, "other.service", 1 << 20).unwrap_err()),
        "the order is for another service"
    );

    let mut m = good.clone();
    m.order.as_mut().unwrap().order_id[0] ^= 1;
    assert!(reason(verify_manifest(&m, SERVICE, 1 << 20).unwrap_err()).contains("order id"));

    let mut m = good.clone();
    let o = m.order.as_mut().unwrap();
    o.not_after = o.not_before + verify::MAX_ORDER_SECONDS + 1;
    assert_eq!(
        reason(verify_manifest(&m, SERVICE, 1 << 20).unwrap_err()),
        "the order is valid for more than 24 months"
    );

    let mut m = good.clone();
    m.order.as_mut().unwrap().hash_config_id = "99".into();
    assert!(verify_manifest(&m, SERVICE, 1 << 20).is_err());

    let mut m = good.clone();
    m.order.as_mut().unwrap().threshold += 1;
    assert!(verify_manifest(&m, SERVICE, 1 << 20).is_err());

    let mut m = good.clone();
    m.order = None;
    assert!(verify_manifest(&m, SERVICE, 1 << 20).is_err());

    assert_eq!(reason(verify_manifest(&good, SERVICE, 8).unwrap_err()), "the table is larger than this client accepts");
    assert!(verify_manifest(&good, SERVICE, 1 << 20).is_ok());
}

#[test]
fn tampered_or_misplaced_chunks_are_refused() {
    let t = build_table(1, vec![], 3);
    let v = verify_manifest(&manifest_info(&t.manifest()), SERVICE, 1 << 20).unwrap();
    let mut cs = chunks(&t);
    let last = cs[2].1.len() - 1;
    cs[2].1[last] ^= 1;
    assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), "chunk hash does not match the manifest");

    // Sent under another index than it encodes.
    let mut cs = chunks(&t);
    cs[0].0 = 1;
    assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), "a chunk's index differs from the one it was sent with");

    // A valid chunk of another table.
    let other = build_table(1, vec![], 4);
    let mut cs = chunks(&t);
    cs[0].1 = other.chunk(0).unwrap().encode();
    assert!(assemble_table(&v, cs).is_err());

    // Missing chunk.
    let mut cs = chunks(&t);
    cs.pop();
    assert!(assemble_table(&v, cs).is_err());

    // Truncated chunk.
    let mut cs = chunks(&t);
    cs[1].1.truncate(20);
    assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), "a chunk does not decode");
}

/// A manifest consistent with `slots` (so only the table validation can refuse it).
fn forged(t: &vouchsafe_protocol::table::ServerTable, slots: &[[u8; 32]]) -> (TableManifest, Vec<(u32, Vec<u8>)>) {
    let c = t.chunk_slots() as usize;
    let chunks: Vec<TableChunk> = slots
        .chunks(c)
        .enumerate()
        .map(|(i, s)| TableChunk { index: i as u32, first_slot: (i * c) as u32, slots: s.to_vec() })
        .collect();
    let m = TableManifest {
        params: t.params().clone(),
        table_version: 1,
        chunk_slots: t.chunk_slots(),
        chunk_hashes: chunks.iter().map(|c| c.hash()).collect(),
    };
    (m, chunks.iter().map(|c| (c.index, c.encode())).collect())
}

#[test]
fn invalid_tables_are_refused() {
    let t = build_table(1, vec![], 5);
    type Edit = Box<dyn Fn(&mut Vec<[u8; 32]>)>;
    let cases: [(&str, Edit); 3] = [
        ("two slots are equal", Box::new(|s| s[3] = s[0])),
        ("a slot is the identity", Box::new(|s| s[4] = [0; 32])),
        ("a slot is not a canonical point", Box::new(|s| s[5] = [0xff; 32])),
    ];
    for (want, edit) in cases {
        let mut slots = t.slots().to_vec();
        edit(&mut slots);
        let (m, cs) = forged(&t, &slots);
        let v = verify_manifest(&manifest_info(&m), SERVICE, 1 << 20).unwrap();
        assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), want);
    }
    // The unmodified forge path accepts the honest slots (so the cases above fail for the stated reason only).
    let (m, cs) = forged(&t, t.slots());
    let v = verify_manifest(&manifest_info(&m), SERVICE, 1 << 20).unwrap();
    assert!(assemble_table(&v, cs).is_ok());
}

#[test]
fn incremental_update_applies_and_tampering_is_refused() {
    let mut t = build_table(1, vec![], 6);
    let v = verify_manifest(&manifest_info(&t.manifest()), SERVICE, 1 << 20).unwrap();
    let held = assemble_table(&v, chunks(&t)).unwrap();
    let upd = t.update(vec![b"new indicator".to_vec()], &[], &mut rng(60)).unwrap();
    let m2 = t.manifest();
    let info = UpdateInfo {
        from_version: 1,
        to_version: 2,
        update: upd.encode(),
        root: m2.root().to_vec(),
        chunk_hashes: m2.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
    };
    let next = apply_update(&held, &info).unwrap();
    assert_eq!(next.slots(), t.slots());
    assert_eq!(next.manifest().table_version, 2);

    let mut bad = info.clone();
    bad.root[0] ^= 1;
    assert_eq!(reason(apply_update(&held, &bad).unwrap_err()), "the update's root does not match its chunk hashes");

    let mut tampered = upd.clone();
    tampered.changes[0].1 = t.slots()[(tampered.changes[0].0 as usize + 1) % t.slots().len()];
    let mut bad = info.clone();
    bad.update = tampered.encode();
    assert!(apply_update(&held, &bad).is_err());

    let mut bad = info.clone();
    bad.from_version = 2;
    assert!(apply_update(&held, &bad).is_err());
}

#[test]
fn state_file_round_trip_and_refusals() {
    let d = tempfile::tempdir().unwrap();
    let t = build_table(1, vec![], 7);
    let s = ClientState::new(t.params(), &mut rng(70));
    store::save_state(d.path(), &s).unwrap();
    assert_eq!(store::load_state(d.path(), &ORDER).unwrap().unwrap(), s);
    assert!(store::load_state(d.path(), &[9; 16]).unwrap().is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store::state_path(d.path(), &ORDER)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let path = store::state_path(d.path(), &ORDER);
    let good = std::fs::read(&path).unwrap();
    for cut in [0, 5, 17, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(
            matches!(store::load_state(d.path(), &ORDER), Err(ClientError::Storage { file: "state", .. })),
            "cut {cut}"
        );
    }
    for i in [0, 9, 30, good.len() - 40, good.len() - 1] {
        let mut b = good.clone();
        b[i] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(store::load_state(d.path(), &ORDER), Err(ClientError::Storage { .. })), "flip {i}");
    }
    // A state of one order under another order's name is refused.
    std::fs::write(store::state_path(d.path(), &[9; 16]), &good).unwrap();
    assert!(matches!(
        store::load_state(d.path(), &[9; 16]),
        Err(ClientError::Storage { reason: "the state belongs to another order", .. })
    ));
}

#[test]
fn table_file_round_trip_and_corruption() {
    let d = tempfile::tempdir().unwrap();
    let t = build_table(1, vec![], 8);
    let v = verify_manifest(&manifest_info(&t.manifest()), SERVICE, 1 << 20).unwrap();
    let table = assemble_table(&v, chunks(&t)).unwrap();
    // A table of another manifest is not accepted as verified against this one.
    let other = build_table(1, vec![], 9);
    let ov = verify_manifest(&manifest_info(&other.manifest()), SERVICE, 1 << 20).unwrap();
    let other_table = assemble_table(&ov, chunks(&other)).unwrap();
    assert!(matches!(store::LoadedTable::from_verified(other_table, &v), Err(ClientError::Verification { .. })));
    let loaded = store::LoadedTable::from_verified(table, &v).unwrap();
    store::save_table(d.path(), &loaded).unwrap();
    let back = store::load_table(d.path(), SERVICE, false).unwrap().unwrap();
    assert_eq!(back.table().root(), loaded.table().root());
    assert!(!back.table().has_point_cache());
    let cached = store::load_table(d.path(), SERVICE, true).unwrap().unwrap();
    assert_eq!((cached.table().root(), cached.table().has_point_cache()), (loaded.table().root(), true));
    assert_eq!(back.order(), loaded.order());
    // Configured for another service: the stored table is refused.
    assert!(store::load_table(d.path(), "other", false).is_err());
    let path = store::table_path(d.path());
    let mut b = std::fs::read(&path).unwrap();
    let n = b.len();
    b[n / 2] ^= 1;
    std::fs::write(&path, &b).unwrap();
    assert!(matches!(store::load_table(d.path(), SERVICE, true), Err(ClientError::Storage { file: "table", .. })));
}
