#![no_main]
//! The signed-manifest decoder and its verification against a fixed order must return an error, never panic; a
//! value the decoder accepts must re-encode to the same bytes.
use libfuzzer_sys::fuzz_target;
use vouchsafe_orders::{
    AuthorityKeyring, AuthoritySigningKey, DetectionOrder, ManifestStatement, MaterialKind, OrderTerms, Scope,
    SignedManifest, TableSigningKey, VerifiedOrder,
};

fn order() -> Option<VerifiedOrder> {
    let authority = AuthoritySigningKey::from_secret_bytes(&[7u8; 32]);
    let table = TableSigningKey::from_secret_bytes(&[8u8; 32]);
    let centre = AuthoritySigningKey::from_secret_bytes(&[9u8; 32]).public_key().to_bytes();
    let terms = OrderTerms {
        order_id: [1; 16],
        service_id: "fuzz".into(),
        scope: Scope::WholeService,
        material: MaterialKind::KnownImagery,
        not_before: 0,
        not_after: 86_400,
        threshold: 3,
        synthetic_rate: 0,
        synthetic_cap: 0,
        hash_config: 1,
        centre_key: centre,
        release_line: "line".into(),
        table_key: table.public_key(),
        excluded_classes: vec![],
        authority_key_id: authority.key_id(),
    };
    let signed = authority.sign_order(DetectionOrder::new(terms).ok()?).ok()?;
    AuthorityKeyring::new([authority.public_key().clone()]).ok()?.verify_order(&signed).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(order) = order() else { panic!("the fixed order must build") };
    if let Ok(v) = SignedManifest::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode must round-trip");
        let _ = order.verify_manifest(&v);
    }
    if let Ok(v) = ManifestStatement::decode(data) {
        assert_eq!(v.encode().ok().as_deref(), Some(data), "decode/encode must round-trip");
    }
});
