//! A whole log built in memory (authority, Centre, provider, log, two witnesses), replayed, and every kind of
//! tampering an auditor must catch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use rand_core::SeedableRng;
use vouchsafe_audit::{AuditPins, replay};
use vouchsafe_log::{
    Checkpoint, CheckpointPolicy, Leaf, LeafKind, Log, LogSigningKey, Note, TreeHead, Witness, WitnessSigningKey,
};
use vouchsafe_orders::{
    AuthorityKeyring, AuthoritySigningKey, DetectionOrder, ManifestStatement, MaterialKind, OrderTerms, Revocation,
    RevocationReason, Scope, TableSigningKey,
};
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableConfig};
use vouchsafe_release::{CentreDb, CentreSigningKey, ImportEntry, ReleaseChain, SourceId};

type Rng = rand_chacha::ChaCha20Rng;

struct World {
    rng: Rng,
    authority: AuthoritySigningKey,
    centre: CentreSigningKey,
    table_key: TableSigningKey,
    log_key: LogSigningKey,
    witnesses: Vec<Witness>,
    log: Log,
    leaves: Vec<Vec<u8>>,
}

const NOW: i64 = 1_800_000_000;

impl World {
    fn new() -> World {
        let mut rng = Rng::seed_from_u64(9);
        let authority = AuthoritySigningKey::generate(&mut rng);
        let centre = CentreSigningKey::generate(&mut rng);
        let table_key = TableSigningKey::generate(&mut rng);
        let log_key = LogSigningKey::generate("log.example", &mut rng).unwrap();
        let witnesses = ["w1.example", "w2.example"]
            .iter()
            .map(|n| {
                let mut w = Witness::new(WitnessSigningKey::generate(n, &mut rng).unwrap());
                w.follow(log_key.verifier()).unwrap();
                w
            })
            .collect();
        World { rng, authority, centre, table_key, log_key, witnesses, log: Log::new(), leaves: Vec::new() }
    }

    fn pins(&self) -> AuditPins {
        let ws = self.witnesses.iter().map(Witness::verifier).collect();
        AuditPins {
            policy: CheckpointPolicy::new(self.log_key.verifier(), ws, 2).unwrap(),
            authorities: AuthorityKeyring::new([self.authority.public_key().clone()]).unwrap(),
            providers: Vec::new(),
        }
    }

    fn append(&mut self, kind: LeafKind, bytes: Vec<u8>) -> u64 {
        let leaf = Leaf::new(kind, bytes).unwrap();
        self.leaves.push(leaf.encode());
        self.log.append(leaf).unwrap()
    }

    /// A checkpoint of the current log cosigned by both witnesses.
    fn checkpoint(&mut self) -> Vec<u8> {
        let cp = Checkpoint::new("log.example", self.log.tree_head()).unwrap();
        let mut note = self.log_key.sign_checkpoint(&cp).unwrap();
        let bytes = note.encode().into_bytes();
        for w in &mut self.witnesses {
            let old = w.last_cosigned("log.example").unwrap();
            let proof = self.log.consistency_proof(old.size, self.log.size()).unwrap();
            let sig = w.cosign(&bytes, &proof, NOW as u64).unwrap();
            note.add_signature(sig).unwrap();
        }
        note.encode().into_bytes()
    }

    fn order(&mut self, line: &str) -> vouchsafe_orders::SignedOrder {
        let terms = OrderTerms {
            order_id: [7; 16],
            service_id: "demo-messenger".into(),
            scope: Scope::WholeService,
            material: MaterialKind::KnownImagery,
            not_before: NOW - 100,
            not_after: NOW + 86_400,
            threshold: 3,
            synthetic_rate: 1 << 28,
            synthetic_cap: 8,
            hash_config: 1,
            centre_key: self.centre.public().to_bytes(),
            release_line: line.into(),
            table_key: self.table_key.public_key(),
            excluded_classes: vec![],
            authority_key_id: self.authority.key_id(),
        };
        self.authority.sign_order(DetectionOrder::new(terms).unwrap()).unwrap()
    }

    /// Order, release 1 and the manifest of a table built from it; returns the checkpoint.
    fn standard(&mut self) -> Vec<u8> {
        let order = self.order("main");
        let verified =
            AuthorityKeyring::new([self.authority.public_key().clone()]).unwrap().verify_order(&order).unwrap();
        self.append(LeafKind::Order, order.encode());
        let mut db = CentreDb::new(1);
        let e = |p: u8| ImportEntry { primary: vec![p; 8], secondary: vec![p; 4], reference: format!("r{p}") };
        db.import(&SourceId::new("a").unwrap(), 1, &[e(1), e(2), e(3)]).unwrap();
        db.import(&SourceId::new("b").unwrap(), 1, &[e(1), e(2)]).unwrap();
        let next = db.next_release("main", None, 2, NOW - 50, &[]).unwrap();
        let release = self.centre.sign(&next.release).verify(&self.centre.public()).unwrap();
        let record = self.centre.sign_record(&release).unwrap();
        self.append(LeafKind::Release, record.encode());
        let chain = ReleaseChain::new(&release).unwrap();
        let indicators: Vec<Vec<u8>> = chain.indicators().map(|i| i.primary.to_vec()).collect();
        let cfg = TableConfig {
            epoch: 1,
            order_id: [7; 16],
            threshold: 3,
            synthetic_cap: 8,
            synthetic_rate: 1 << 28,
            ad_len: 64,
            chunk_slots: 8,
        };
        let table = ServerTable::build(&cfg, BlindingKey::random(&mut self.rng), indicators, &mut self.rng).unwrap();
        let statement = ManifestStatement {
            order_id: [7; 16],
            order_hash: order.hash(),
            release_number: 1,
            release_hash: release.hash(),
            issued_at: NOW,
            table_manifest: table.manifest().encode(),
        };
        let signed = self.table_key.sign_manifest(&verified, statement).unwrap();
        self.append(LeafKind::Manifest, signed.encode());
        self.checkpoint()
    }
}

#[test]
fn an_honest_log_replays() {
    let mut w = World::new();
    let note = w.standard();
    let report = replay(&w.pins(), &note, &w.leaves, None).unwrap();
    assert_eq!(report.tree.size, 3);
    assert_eq!(report.orders.len(), 1);
    assert_eq!(report.orders[0].manifests, 1);
    assert_eq!(report.releases.len(), 1);
    assert_eq!(report.releases[0].record.additions, 2, "the indicator with one source is not in the release");
    assert_eq!(report.manifests[0].release, ("main".to_owned(), 1));
    // Auditing again later, from the head seen before.
    let before = report.tree;
    let rev = Revocation::new([7; 16], NOW, RevocationReason::Annulled, w.authority.key_id());
    let rev = w.authority.sign_revocation(rev).unwrap();
    w.append(LeafKind::Revocation, rev.encode());
    let note2 = w.checkpoint();
    let report = replay(&w.pins(), &note2, &w.leaves, Some(&before)).unwrap();
    assert_eq!(report.orders[0].revoked_at_leaf, Some(3));
}

#[test]
fn every_flipped_byte_of_every_leaf_is_caught() {
    let mut w = World::new();
    let note = w.standard();
    for leaf in 0..w.leaves.len() {
        for byte in 0..w.leaves[leaf].len() {
            let mut leaves = w.leaves.clone();
            leaves[leaf][byte] ^= 0x01;
            let err = replay(&w.pins(), &note, &leaves, None);
            assert!(err.is_err(), "leaf {leaf} byte {byte} flipped and accepted");
        }
    }
}

#[test]
fn refusals_name_what_is_wrong() {
    let mut w = World::new();
    let note = w.standard();
    let pins = w.pins();
    // A missing leaf.
    let e = replay(&pins, &note, &w.leaves[..2], None).unwrap_err();
    assert!(e.reason.contains("3 leaves, 2"), "{e}");
    // Leaves that hash to another root (a re-signed leaf would do the same): swap two leaves.
    let mut swapped = w.leaves.clone();
    swapped.swap(0, 1);
    let e = replay(&pins, &note, &swapped, None).unwrap_err();
    assert!(e.reason.contains("root"), "{e}");
    // A checkpoint with one witness is short of the quorum.
    let text = String::from_utf8(note.clone()).unwrap();
    let parsed = Note::parse(text.as_bytes()).unwrap();
    let mut one = Note::new(parsed.text()).unwrap();
    for s in parsed.signatures().iter().take(2) {
        one.add_signature(s.clone()).unwrap();
    }
    let e = replay(&pins, one.encode().as_bytes(), &w.leaves, None).unwrap_err();
    assert!(e.reason.contains("checkpoint"), "{e}");
    // A fork from what was audited before.
    let forged = TreeHead { size: 2, root: vouchsafe_log::Hash([9; 32]) };
    let e = replay(&pins, &note, &w.leaves, Some(&forged)).unwrap_err();
    assert!(e.reason.contains("fork"), "{e}");
    // A rollback.
    let bigger = TreeHead { size: 9, root: vouchsafe_log::Hash([9; 32]) };
    let e = replay(&pins, &note, &w.leaves, Some(&bigger)).unwrap_err();
    assert!(e.reason.contains("rollback"), "{e}");
    // An unknown authority.
    let mut other = World::new();
    other.authority = AuthoritySigningKey::generate(&mut other.rng);
    let pins_other = AuditPins { authorities: other.pins().authorities, ..pins.clone() };
    let e = replay(&pins_other, &note, &w.leaves, None).unwrap_err();
    assert_eq!(e.leaf, Some(0), "{e}");
}

#[test]
fn a_manifest_after_a_revocation_or_from_an_unlogged_release_is_refused() {
    let mut w = World::new();
    let _ = w.standard();
    let manifest = w.leaves[2].clone();
    let rev = Revocation::new([7; 16], NOW, RevocationReason::Annulled, w.authority.key_id());
    let rev = w.authority.sign_revocation(rev).unwrap();
    w.append(LeafKind::Revocation, rev.encode());
    let leaf = Leaf::decode(&manifest).unwrap();
    w.append(LeafKind::Manifest, leaf.bytes().to_vec());
    let note = w.checkpoint();
    let e = replay(&w.pins(), &note, &w.leaves, None).unwrap_err();
    assert_eq!(e.leaf, Some(4), "{e}");
    assert!(e.reason.contains("revocation") || e.reason.contains("version"), "{e}");

    // A log without the release record: the manifest names a release nobody can see.
    let mut w = World::new();
    let _ = w.standard();
    let mut v = World::new();
    v.authority = AuthoritySigningKey::from_secret_bytes(&w.authority.to_secret_bytes());
    v.table_key = TableSigningKey::from_secret_bytes(&w.table_key.to_secret_bytes());
    v.centre = CentreSigningKey::from_bytes(&w.centre.to_bytes());
    v.append(LeafKind::Order, Leaf::decode(&w.leaves[0]).unwrap().bytes().to_vec());
    v.append(LeafKind::Manifest, Leaf::decode(&w.leaves[2]).unwrap().bytes().to_vec());
    let note = v.checkpoint();
    let e = replay(&v.pins(), &note, &v.leaves, None).unwrap_err();
    assert_eq!(e.leaf, Some(1), "{e}");
    assert!(e.reason.contains("not logged"), "{e}");
}

fn transparency(order_id: [u8; 16], counters: &[(&str, u64)]) -> vouchsafe_case::TransparencyReport {
    let mut counters: Vec<(String, u64)> = counters.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
    counters.sort();
    vouchsafe_case::TransparencyReport {
        provider: "provider-a".into(),
        order_id,
        from: 0,
        to: 0,
        counters,
        decision_seconds: vec![60, 120],
        created_at: NOW,
    }
}

#[test]
fn transparency_reports_are_checked_against_the_pinned_provider_and_the_logged_order() {
    let mut w = World::new();
    w.standard();
    let provider = vouchsafe_case::ProviderSigningKey::generate(&mut w.rng);
    let good = transparency(
        [7; 16],
        &[
            ("vouchers_received", 100),
            ("vouchers_opened", 5),
            ("reports_sent", 1),
            ("notices", 1),
            ("appeals_filed", 1),
        ],
    );
    w.append(LeafKind::TransparencyReport, provider.sign_transparency(&good).unwrap().encode());
    let note = w.checkpoint();
    let mut pins = w.pins();

    // Nothing pinned: the leaf cannot be checked, and the audit says so.
    let e = replay(&pins, &note, &w.leaves, None).unwrap_err();
    assert_eq!(e.leaf, Some(3));
    assert!(e.reason.contains("not signed by a pinned provider key"), "{e}");

    pins.providers = vec![provider.public()];
    let r = replay(&pins, &note, &w.leaves, None).unwrap();
    assert_eq!(r.transparency_reports.len(), 1);
    assert_eq!(r.transparency_reports[0].report, good);

    // A report about an order that is not in the log, and one whose counts contradict each other.
    for (report, why) in [
        (transparency([9; 16], &[]), "not logged before it"),
        (transparency([7; 16], &[("appeals_upheld", 2), ("appeals_filed", 1)]), "appeals_upheld = 2 exceeds"),
    ] {
        let mut w2 = World::new();
        w2.standard();
        w2.append(LeafKind::TransparencyReport, provider.sign_transparency(&report).unwrap().encode());
        let note = w2.checkpoint();
        let e = replay(&pins, &note, &w2.leaves, None).unwrap_err();
        assert!(e.reason.contains(why), "{e}");
    }
}
