//! Network-free verification: the signed order, revocations and signed manifest against the pins, manifests,
//! chunks, updates, invalid tables, and the local state, table, revocation and checkpoint files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use common::world::{Keys, World, flip, now};
use common::*;
use vouchsafe_client::verify::{
    self, ManifestInfo, ScanContext, UpdateInfo, apply_update, assemble_table, verify_manifest, verify_update,
};
use vouchsafe_client::{ClientConfig, ClientError, store};
use vouchsafe_orders::{OrderError, Scope};
use vouchsafe_protocol::client::ClientState;
use vouchsafe_protocol::table::{TableChunk, TableManifest};

fn reason(e: ClientError) -> &'static str {
    match e {
        ClientError::Verification { reason } => reason,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

fn order_err(e: ClientError) -> OrderError {
    match e {
        ClientError::Order(e) => e,
        other => panic!("expected an order refusal, got {other:?}"),
    }
}

fn cfg(w: &World) -> ClientConfig {
    w.config(std::path::Path::new("/nonexistent"))
}

fn verify(w: &World, info: &ManifestInfo) -> vouchsafe_client::Result<verify::VerifiedManifest> {
    verify_manifest(info, &cfg(w), &[], now())
}

#[test]
fn honest_table_verifies_and_assembles() {
    let w = World::new(1, vec![]);
    let v = verify(&w, &w.manifest_info()).unwrap();
    assert_eq!(v.root(), w.table.manifest().root());
    assert_eq!(v.order().order_id(), &ORDER);
    assert_eq!(v.order_leaf().unwrap().bytes(), w.order.encode());
    assert_eq!(v.manifest_leaf().unwrap().bytes(), w.current().signed.encode());
    // Chunks in reverse order are fine.
    let mut cs = chunks(&w.table);
    cs.reverse();
    let table = assemble_table(&v, cs).unwrap();
    assert_eq!(table.slots(), w.table.slots());
    assert_eq!(table.root(), v.root());
}

#[test]
fn flipped_bytes_in_order_revocation_and_manifest_are_refused() {
    let mut w = World::new(2, vec![]);
    let good = w.manifest_info();
    for i in 0..good.signed_order.len() {
        let mut m = good.clone();
        m.signed_order = flip(&good.signed_order, i);
        assert!(matches!(verify(&w, &m), Err(ClientError::Order(_))), "order byte {i} flipped was accepted");
    }
    for i in 0..good.signed_manifest.len() {
        let mut m = good.clone();
        m.signed_manifest = flip(&good.signed_manifest, i);
        assert!(matches!(verify(&w, &m), Err(ClientError::Order(_))), "manifest byte {i} flipped was accepted");
    }
    // A revocation of another order by the same authority: verified, so harmless; flipped: refused.
    let mut other_terms = w.keys.terms();
    other_terms.order_id = [0x77; 16];
    let other = w.keys.sign(other_terms);
    w.revocations = vec![w.keys.revoke(&other)];
    let with_rev = w.manifest_info();
    verify(&w, &with_rev).unwrap();
    let rev = &with_rev.revocations[0];
    for i in 0..rev.len() {
        let mut m = with_rev.clone();
        m.revocations[0] = flip(rev, i);
        assert!(matches!(verify(&w, &m), Err(ClientError::Order(_))), "revocation byte {i} flipped was accepted");
    }
}

#[test]
fn the_order_must_verify_be_active_and_fit_this_device() {
    let keys = Keys::new(3);
    let world_of = |edit: &dyn Fn(&mut vouchsafe_orders::OrderTerms)| {
        let keys = Keys::new(3);
        let mut t = keys.terms();
        edit(&mut t);
        let order = keys.sign(t);
        World::with_order(keys, order, vec![], 3)
    };

    // Signed by an authority the app does not pin.
    let other_id = keys.other_authority.key_id();
    let w = world_of(&|t| t.authority_key_id = other_id);
    assert_eq!(
        order_err(verify(&w, &w.manifest_info()).unwrap_err()),
        OrderError::UnknownAuthority { key_id: other_id }
    );

    let now = now();
    let w = world_of(&|t| {
        t.not_before = now + 3600;
        t.not_after = now + 7200;
    });
    assert!(matches!(order_err(verify(&w, &w.manifest_info()).unwrap_err()), OrderError::NotYetValid { .. }));

    let w = world_of(&|t| {
        t.not_before = now - 7200;
        t.not_after = now - 10;
    });
    assert!(matches!(order_err(verify(&w, &w.manifest_info()).unwrap_err()), OrderError::Expired { .. }));

    // The window is half-open (the one validity function): at not_after the order has ended.
    let w = World::new(3, vec![]);
    let not_after = w.order.order().not_after();
    let e = verify_manifest(&w.manifest_info(), &cfg(&w), &[], not_after).unwrap_err();
    assert_eq!(order_err(e), OrderError::Expired { not_after, now: not_after });
    assert!(verify_manifest(&w.manifest_info(), &cfg(&w), &[], not_after - 1).is_ok());

    // Revoked: by a revocation the server sends, or one the device already knows.
    let mut w = World::new(3, vec![]);
    let rev = w.keys.revoke(&w.order);
    w.revocations = vec![rev.clone()];
    assert!(matches!(order_err(verify(&w, &w.manifest_info()).unwrap_err()), OrderError::Revoked { .. }));
    w.revocations.clear();
    let known = cfg(&w).anchors.authorities.verify_revocation(&rev).unwrap();
    let e = verify_manifest(&w.manifest_info(), &cfg(&w), &[known], now).unwrap_err();
    assert!(matches!(order_err(e), OrderError::Revoked { .. }));

    // Another service.
    let w = World::new(3, vec![]);
    let mut c = cfg(&w);
    c.service_id = "other.service".into();
    match verify_manifest(&w.manifest_info(), &c, &[], now) {
        Err(ClientError::WrongService { expected, got }) => {
            assert_eq!((expected.as_str(), got.as_str()), ("other.service", SERVICE))
        }
        other => panic!("{other:?}"),
    }

    // An account in an excluded class; a class the order does not exclude is fine.
    let mut c = cfg(&w);
    c.account_classes = vec!["journalist".into(), "state-security".into()];
    match verify_manifest(&w.manifest_info(), &c, &[], now) {
        Err(ClientError::Excluded { class }) => assert_eq!(class, "state-security"),
        other => panic!("{other:?}"),
    }
    c.account_classes = vec!["journalist".into()];
    assert!(verify_manifest(&w.manifest_info(), &c, &[], now).is_ok());

    // An order naming another Centre key than the pinned one.
    let other_centre = Keys::new(99).centre.public().to_bytes();
    let w = world_of(&|t| t.centre_key = other_centre);
    assert!(matches!(verify(&w, &w.manifest_info()), Err(ClientError::UntrustedCentre)));

    // Parameters that disagree with the order (the table has T = 3).
    let w = world_of(&|t| t.threshold = 4);
    assert_eq!(
        reason(verify(&w, &w.manifest_info()).unwrap_err()),
        "the order's threshold or synthetic parameters differ from the epoch parameters"
    );
    // A hash configuration this build does not know.
    let w = world_of(&|t| t.hash_config = 99);
    assert!(reason(verify(&w, &w.manifest_info()).unwrap_err()).contains("hash configuration"));
}

#[test]
fn the_signed_manifest_must_be_by_the_orders_table_key_name_it_and_state_this_table() {
    let w = World::new(4, vec![]);
    let m = w.table.manifest();

    // Signed with another key than the order's table key.
    let mut info = w.manifest_info();
    info.signed_manifest = w.keys.sign_manifest_with(&w.keys.other_table, &w.order, &m).encode();
    assert_eq!(order_err(verify(&w, &info).unwrap_err()), OrderError::BadSignature { what: "signed manifest" });

    // Signed with the right key, but for another order (same table key).
    let mut t = w.keys.terms();
    t.order_id = [0x42; 16];
    let other = w.keys.sign(t);
    let mut info = w.manifest_info();
    info.signed_manifest = w.keys.sign_manifest_with(&w.keys.table, &other, &m).encode();
    assert_eq!(order_err(verify(&w, &info).unwrap_err()), OrderError::WrongOrder);

    // A valid signed manifest of another table.
    let other_table = build_table(1, vec![b"x".to_vec()], 44);
    let mut info = w.manifest_info();
    info.signed_manifest = w.keys.sign_manifest_with(&w.keys.table, &w.order, &other_table.manifest()).encode();
    assert_eq!(
        reason(verify(&w, &info).unwrap_err()),
        "the signed manifest describes another table than the one served"
    );

    // Missing altogether.
    let mut info = w.manifest_info();
    info.signed_manifest.clear();
    assert!(matches!(verify(&w, &info), Err(ClientError::Order(OrderError::Length { .. }))));
}

#[test]
fn wrong_root_and_inconsistent_manifests_are_refused() {
    let w = World::new(5, vec![]);
    let good = w.manifest_info();

    let mut m = good.clone();
    m.root[0] ^= 1;
    assert_eq!(reason(verify(&w, &m).unwrap_err()), "the manifest's root does not match its contents");

    let mut m = good.clone();
    m.chunk_hashes[1][5] ^= 1;
    assert_eq!(reason(verify(&w, &m).unwrap_err()), "the manifest's root does not match its contents");

    let mut m = good.clone();
    m.slot_count += 1;
    assert!(verify(&w, &m).is_err());

    let mut m = good.clone();
    m.chunk_hashes.pop();
    assert!(verify(&w, &m).is_err());

    let mut m = good.clone();
    m.params[30] ^= 1; // inside the order id of the epoch parameters
    assert_eq!(reason(verify(&w, &m).unwrap_err()), "the order id differs from the one in the epoch parameters");

    let mut c = cfg(&w);
    c.max_table_slots = 8;
    assert_eq!(
        reason(verify_manifest(&good, &c, &[], now()).unwrap_err()),
        "the table is larger than this client accepts"
    );
    assert!(verify(&w, &good).is_ok());
}

#[test]
fn scope_and_classes_are_checked_per_scan() {
    let keys = Keys::new(6);
    let mut t = keys.terms();
    t.scope = Scope::Components(vec!["chat".into()]);
    let order = keys.sign(t);
    let w = World::with_order(keys, order, vec![], 6);
    let v = verify(&w, &w.manifest_info()).unwrap();
    let c = cfg(&w);
    let check = |ctx: &ScanContext| verify::check_scan(v.order(), &c, &[], now(), ctx);
    check(&ScanContext::new().component("chat")).unwrap();
    check(&ScanContext::new().component("chat").group("g1")).unwrap();
    for ctx in [ScanContext::new(), ScanContext::new().component("channels"), ScanContext::new().group("chat")] {
        assert!(matches!(check(&ctx), Err(ClientError::OutOfScope { scope: "components" })), "{ctx:?}");
    }

    let keys = Keys::new(6);
    let mut t = keys.terms();
    t.scope = Scope::Groups(vec!["g1".into(), "g2".into()]);
    let order = keys.sign(t);
    let w = World::with_order(keys, order, vec![], 6);
    let v = verify(&w, &w.manifest_info()).unwrap();
    let c = cfg(&w);
    let check = |ctx: &ScanContext| verify::check_scan(v.order(), &c, &[], now(), ctx);
    check(&ScanContext::new().group("g2")).unwrap();
    assert!(matches!(check(&ScanContext::new().group("g3")), Err(ClientError::OutOfScope { scope: "groups" })));
    assert!(matches!(check(&ScanContext::new().component("chat")), Err(ClientError::OutOfScope { .. })));
}

#[test]
fn tampered_or_misplaced_chunks_are_refused() {
    let w = World::new(7, vec![]);
    let v = verify(&w, &w.manifest_info()).unwrap();
    let mut cs = chunks(&w.table);
    let last = cs[2].1.len() - 1;
    cs[2].1[last] ^= 1;
    assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), "chunk hash does not match the manifest");

    // Sent under another index than it encodes.
    let mut cs = chunks(&w.table);
    cs[0].0 = 1;
    assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), "a chunk's index differs from the one it was sent with");

    // A valid chunk of another table.
    let other = build_table(1, vec![], 4);
    let mut cs = chunks(&w.table);
    cs[0].1 = other.chunk(0).unwrap().encode();
    assert!(assemble_table(&v, cs).is_err());

    // Missing chunk.
    let mut cs = chunks(&w.table);
    cs.pop();
    assert!(assemble_table(&v, cs).is_err());

    // Truncated chunk.
    let mut cs = chunks(&w.table);
    cs[1].1.truncate(20);
    assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), "a chunk does not decode");
}

/// A manifest consistent with `slots`, signed by the provider (so only the table validation can refuse it).
fn forged(w: &World, slots: &[[u8; 32]]) -> (ManifestInfo, Vec<(u32, Vec<u8>)>) {
    let t = &w.table;
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
    let mut info = w.manifest_info();
    info.root = m.root().to_vec();
    info.chunk_hashes = m.chunk_hashes.iter().map(|h| h.to_vec()).collect();
    info.signed_manifest = w.keys.sign_manifest_with(&w.keys.table, &w.order, &m).encode();
    (info, chunks.iter().map(|c| (c.index, c.encode())).collect())
}

#[test]
fn invalid_tables_are_refused() {
    let w = World::new(8, vec![]);
    type Edit = Box<dyn Fn(&mut Vec<[u8; 32]>)>;
    let cases: [(&str, Edit); 3] = [
        ("two slots are equal", Box::new(|s| s[3] = s[0])),
        ("a slot is the identity", Box::new(|s| s[4] = [0; 32])),
        ("a slot is not a canonical point", Box::new(|s| s[5] = [0xff; 32])),
    ];
    for (want, edit) in cases {
        let mut slots = w.table.slots().to_vec();
        edit(&mut slots);
        let (info, cs) = forged(&w, &slots);
        let v = verify(&w, &info).unwrap();
        assert_eq!(reason(assemble_table(&v, cs).unwrap_err()), want);
    }
    // The unmodified forge path accepts the honest slots (so the cases above fail for the stated reason only).
    let (info, cs) = forged(&w, w.table.slots());
    let v = verify(&w, &info).unwrap();
    assert!(assemble_table(&v, cs).is_ok());
}

#[test]
fn incremental_update_applies_and_tampering_is_refused() {
    let mut w = World::new(9, vec![]);
    let v = verify(&w, &w.manifest_info()).unwrap();
    let held = assemble_table(&v, chunks(&w.table)).unwrap();
    w.update_table(vec![b"new indicator".to_vec()], 60);
    let info = w.update_info(1).unwrap();
    let (next, signed) = verify_update(v.order(), &held, &info).unwrap();
    assert_eq!(next.slots(), w.table.slots());
    assert_eq!(next.manifest().table_version, 2);
    assert_eq!(signed.signed(), &w.current().signed);
    assert_eq!(apply_update(&held, &info).unwrap().slots(), next.slots());

    let mut bad = info.clone();
    bad.root[0] ^= 1;
    assert_eq!(reason(apply_update(&held, &bad).unwrap_err()), "the update's root does not match its chunk hashes");

    // The signed manifest of the update must be the provider's, for this order, of the patched table.
    let mut bad = info.clone();
    bad.signed_manifest = w.versions[0].signed.encode();
    assert_eq!(
        reason(verify_update(v.order(), &held, &bad).unwrap_err()),
        "the signed manifest describes another table than the one served"
    );
    let mut bad = info.clone();
    bad.signed_manifest = flip(&info.signed_manifest, 70);
    assert!(matches!(verify_update(v.order(), &held, &bad), Err(ClientError::Order(_))));
    let mut bad = info.clone();
    bad.signed_manifest = w.keys.sign_manifest_with(&w.keys.other_table, &w.order, &w.current().manifest).encode();
    assert!(matches!(
        verify_update(v.order(), &held, &bad),
        Err(ClientError::Order(OrderError::BadSignature { what: "signed manifest" }))
    ));

    let mut tampered = w.current().update.clone().unwrap();
    tampered.changes[0].1 = w.table.slots()[(tampered.changes[0].0 as usize + 1) % w.table.slots().len()];
    let mut bad = info.clone();
    bad.update = tampered.encode();
    assert!(apply_update(&held, &bad).is_err());

    let mut bad: UpdateInfo = info.clone();
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
fn table_file_round_trip_is_revalidated_under_the_pins() {
    let d = tempfile::tempdir().unwrap();
    let w = World::new(10, vec![]);
    let c = w.config(d.path());
    let v = verify(&w, &w.manifest_info()).unwrap();
    let table = assemble_table(&v, chunks(&w.table)).unwrap();
    // A table of another manifest is not accepted as verified against this one.
    let other = World::new(11, vec![]);
    let ov = verify(&other, &other.manifest_info()).unwrap();
    let other_table = assemble_table(&ov, chunks(&other.table)).unwrap();
    assert!(matches!(store::LoadedTable::from_verified(other_table, &v), Err(ClientError::Verification { .. })));
    let loaded = store::LoadedTable::from_verified(table, &v).unwrap();
    store::save_table(d.path(), &loaded).unwrap();
    let back = store::load_table(d.path(), &c).unwrap().unwrap();
    assert_eq!(back.table().root(), loaded.table().root());
    assert_eq!(back.order(), loaded.order());
    assert_eq!(back.signed_manifest(), loaded.signed_manifest());
    assert!(!back.table().has_point_cache());
    let mut cached = c.clone();
    cached.point_cache = true;
    let back = store::load_table(d.path(), &cached).unwrap().unwrap();
    assert_eq!((back.table().root(), back.table().has_point_cache()), (loaded.table().root(), true));

    // Configured for another service, or pinning other keys: the stored table is refused.
    let mut other_service = c.clone();
    other_service.service_id = "other".into();
    assert!(matches!(store::load_table(d.path(), &other_service), Err(ClientError::WrongService { .. })));
    let other_pins = other.config(d.path());
    assert!(matches!(
        store::load_table(d.path(), &other_pins),
        Err(ClientError::Order(OrderError::UnknownAuthority { .. }))
    ));

    let path = store::table_path(d.path());
    let good = std::fs::read(&path).unwrap();
    let mut b = good.clone();
    let n = b.len();
    b[n / 2] ^= 1;
    std::fs::write(&path, &b).unwrap();
    assert!(matches!(store::load_table(d.path(), &c), Err(ClientError::Storage { file: "table", .. })));

    // A table file of format 1 (before signed orders) cannot be verified: ignored, replaced at the next sync.
    let mut v1 = good.clone();
    v1[8] = 1;
    v1[9] = 0;
    let body_end = v1.len() - 32;
    let sum: [u8; 32] =
        sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &v1[..body_end])).into();
    v1[body_end..].copy_from_slice(&sum);
    std::fs::write(&path, &v1).unwrap();
    assert!(store::load_table(d.path(), &c).unwrap().is_none());
}

#[test]
fn revocation_and_checkpoint_files_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let w = World::new(12, vec![]);
    let c = w.config(d.path());
    assert!(store::load_revocations(d.path(), &c.anchors.authorities).unwrap().is_empty());
    let r = c.anchors.authorities.verify_revocation(&w.keys.revoke(&w.order)).unwrap();
    store::save_revocations(d.path(), std::slice::from_ref(&r)).unwrap();
    assert_eq!(store::load_revocations(d.path(), &c.anchors.authorities).unwrap(), vec![r]);
    // Under a keyring without that authority the revocation no longer matters: dropped.
    let other = World::new(13, vec![]);
    assert!(store::load_revocations(d.path(), &other.config(d.path()).anchors.authorities).unwrap().is_empty());
    let path = store::revocations_path(d.path());
    let mut b = std::fs::read(&path).unwrap();
    b[20] ^= 1;
    std::fs::write(&path, &b).unwrap();
    assert!(matches!(store::load_revocations(d.path(), &c.anchors.authorities), Err(ClientError::Storage { .. })));

    assert!(store::load_checkpoint(d.path()).unwrap().is_none());
    let note = String::from_utf8(w.note.clone()).unwrap();
    store::save_checkpoint(d.path(), &note).unwrap();
    assert_eq!(store::load_checkpoint(d.path()).unwrap().unwrap(), w.note);
}
