//! The detection order: its terms, canonical encoding, signed form and the one validity check.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::{OrderError, Result};
use crate::keys::{AuthorityPublicKey, KeyId, public_key};
use crate::labels::{
    KEY_ID_LEN, MATERIAL_KNOWN_IMAGERY, MAX_CLASS_LEN, MAX_EXCLUDED_CLASSES, MAX_ORDER_SECONDS, MAX_RELEASE_LINE_LEN,
    MAX_SCOPE_ENTRIES, MAX_SCOPE_ENTRY_LEN, MAX_SERVICE_ID_LEN, MAX_SYNTHETIC_CAP, MAX_THRESHOLD, MIN_THRESHOLD,
    ORDER_ID_LEN, PUBLIC_KEY_LEN, SCOPE_COMPONENTS, SCOPE_GROUPS, SCOPE_WHOLE_SERVICE, SIGNATURE_LEN, VERSION,
};
use crate::revocation::VerifiedRevocation;
use crate::wire::{Reader, put_short};

/// Which part of the service an order covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every conversation of the service.
    WholeService,
    /// Only conversations in these components (1..=1024 ids of 1..=64 visible ASCII bytes; canonical form: sorted
    /// by bytes, no duplicates).
    Components(Vec<String>),
    /// Only conversations in these groups (same rules as components).
    Groups(Vec<String>),
}

/// What the order lets the service detect. v1 can express exactly one kind: known imagery (indicators the Centre
/// verified). There is deliberately no other variant, and the decoder refuses any other byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaterialKind {
    /// Known abuse imagery, matched against the Centre's verified indicators.
    KnownImagery,
}

/// The terms an authority fills in to make a [`DetectionOrder`] (plain data; [`DetectionOrder::new`] checks and
/// canonicalises it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is documented on the accessor of the same name on `DetectionOrder`
pub struct OrderTerms {
    pub order_id: [u8; ORDER_ID_LEN],
    pub service_id: String,
    pub scope: Scope,
    pub material: MaterialKind,
    pub not_before: i64,
    pub not_after: i64,
    pub threshold: u16,
    pub synthetic_rate: u32,
    pub synthetic_cap: u16,
    pub hash_config: u16,
    pub centre_key: [u8; PUBLIC_KEY_LEN],
    pub release_line: String,
    pub table_key: [u8; PUBLIC_KEY_LEN],
    pub excluded_classes: Vec<String>,
    pub authority_key_id: KeyId,
}

/// A detection order: valid terms in canonical form. Not yet signed; see [`SignedOrder`] and [`VerifiedOrder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectionOrder {
    terms: OrderTerms,
    centre_key: VerifyingKey,
    table_key: VerifyingKey,
}

fn service_id_ok(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_SERVICE_ID_LEN {
        return Err(OrderError::OutOfRange { what: "service id: 1..=255 bytes" });
    }
    if s.chars().any(char::is_control) {
        return Err(OrderError::InvalidText { what: "service id: no control characters" });
    }
    Ok(())
}

/// Identifiers that `covers` and `excludes` compare byte for byte: visible ASCII only, so that no two spellings
/// (Unicode normalisation, invisible characters) can name the same thing.
fn ident_ok(what: &'static str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() || s.len() > max {
        return Err(OrderError::OutOfRange { what });
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OrderError::InvalidText { what });
    }
    Ok(())
}

fn list_ok(what: &'static str, list: &[String], min: usize, max_count: usize, max_len: usize) -> Result<()> {
    if list.len() < min || list.len() > max_count {
        return Err(OrderError::OutOfRange { what });
    }
    for s in list {
        ident_ok(what, s, max_len)?;
    }
    if list.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
        return Err(OrderError::NonCanonical { what });
    }
    Ok(())
}

fn canonical(mut list: Vec<String>) -> Vec<String> {
    list.sort_unstable();
    list.dedup();
    list
}

impl DetectionOrder {
    /// Checks the terms and puts them in canonical form (scope lists and excluded classes sorted and
    /// deduplicated). Refuses everything the decoder refuses.
    pub fn new(mut terms: OrderTerms) -> Result<Self> {
        terms.scope = match terms.scope {
            Scope::WholeService => Scope::WholeService,
            Scope::Components(l) => Scope::Components(canonical(l)),
            Scope::Groups(l) => Scope::Groups(canonical(l)),
        };
        terms.excluded_classes = canonical(terms.excluded_classes);
        Self::validated(terms)
    }

    /// Every rule of the format, on terms that must already be canonical.
    fn validated(terms: OrderTerms) -> Result<Self> {
        service_id_ok(&terms.service_id)?;
        match &terms.scope {
            Scope::WholeService => {}
            Scope::Components(l) => {
                list_ok("scope components: 1..=1024 ids of 1..=64 bytes", l, 1, MAX_SCOPE_ENTRIES, MAX_SCOPE_ENTRY_LEN)?
            }
            Scope::Groups(l) => {
                list_ok("scope groups: 1..=1024 ids of 1..=64 bytes", l, 1, MAX_SCOPE_ENTRIES, MAX_SCOPE_ENTRY_LEN)?
            }
        }
        match terms.not_after.checked_sub(terms.not_before) {
            Some(d) if d > 0 && d <= MAX_ORDER_SECONDS => {}
            _ => return Err(OrderError::OutOfRange { what: "validity: 0 < not_after - not_before <= 731 days" }),
        }
        if !(MIN_THRESHOLD..=MAX_THRESHOLD).contains(&terms.threshold) {
            return Err(OrderError::OutOfRange { what: "threshold: 2..=1000" });
        }
        if terms.synthetic_cap > MAX_SYNTHETIC_CAP {
            return Err(OrderError::OutOfRange { what: "synthetic cap: 0..=1024" });
        }
        if terms.synthetic_rate > 0 && terms.synthetic_cap == 0 {
            return Err(OrderError::OutOfRange { what: "synthetic cap: > 0 when the synthetic rate is" });
        }
        ident_ok("release line: 1..=64 bytes", &terms.release_line, MAX_RELEASE_LINE_LEN)?;
        list_ok(
            "excluded classes: 0..=64 of 1..=32 bytes",
            &terms.excluded_classes,
            0,
            MAX_EXCLUDED_CLASSES,
            MAX_CLASS_LEN,
        )?;
        let centre_key = public_key("centre key", &terms.centre_key)?;
        let table_key = public_key("provider table key", &terms.table_key)?;
        Ok(DetectionOrder { terms, centre_key, table_key })
    }

    /// The terms, for building a modified copy (which must pass [`DetectionOrder::new`] again).
    pub fn terms(&self) -> &OrderTerms {
        &self.terms
    }

    /// The order id (16 bytes, chosen by the authority; the protocol binds every table and voucher to it).
    pub fn order_id(&self) -> &[u8; ORDER_ID_LEN] {
        &self.terms.order_id
    }
    /// The service the order is addressed to (1..=255 bytes of UTF-8, no control characters).
    pub fn service_id(&self) -> &str {
        &self.terms.service_id
    }
    /// The part of the service covered.
    pub fn scope(&self) -> &Scope {
        &self.terms.scope
    }
    /// What may be detected (always known imagery in v1).
    pub fn material(&self) -> MaterialKind {
        self.terms.material
    }
    /// Start of validity, Unix seconds, inclusive.
    pub fn not_before(&self) -> i64 {
        self.terms.not_before
    }
    /// End of validity, Unix seconds, exclusive.
    pub fn not_after(&self) -> i64 {
        self.terms.not_after
    }
    /// The threshold T of distinct matches before anything can be decrypted (2..=1000).
    pub fn threshold(&self) -> u16 {
        self.terms.threshold
    }
    /// The synthetic-match rate p: a voucher is synthetic with probability p / 2³².
    pub fn synthetic_rate(&self) -> u32 {
        self.terms.synthetic_rate
    }
    /// The cap s on synthetic vouchers per account (0..=1024; > 0 when p > 0).
    pub fn synthetic_cap(&self) -> u16 {
        self.terms.synthetic_cap
    }
    /// The perceptual-hash configuration id the indicators and devices must use.
    pub fn hash_config(&self) -> u16 {
        self.terms.hash_config
    }
    /// The Centre key the indicator release must be signed with.
    pub fn centre_key(&self) -> &VerifyingKey {
        &self.centre_key
    }
    /// The Centre release line the table must be built from (1..=64 visible ASCII bytes).
    pub fn release_line(&self) -> &str {
        &self.terms.release_line
    }
    /// The provider's key that must sign the table manifests.
    pub fn table_key(&self) -> &VerifyingKey {
        &self.table_key
    }
    /// Account classes the order excludes (sorted, distinct, 1..=32 visible ASCII bytes each).
    pub fn excluded_classes(&self) -> &[String] {
        &self.terms.excluded_classes
    }
    /// The key id of the authority key that signs the order.
    pub fn authority_key_id(&self) -> &KeyId {
        &self.terms.authority_key_id
    }

    /// The canonical encoding (the crate documentation gives every byte).
    pub fn encode(&self) -> Vec<u8> {
        let t = &self.terms;
        let mut out = Vec::with_capacity(256);
        out.push(VERSION);
        out.extend_from_slice(&t.order_id);
        put_short(&mut out, t.service_id.as_bytes());
        let put_list = |out: &mut Vec<u8>, tag: u8, l: &[String]| {
            out.push(tag);
            out.extend_from_slice(&u16::try_from(l.len()).unwrap_or(u16::MAX).to_le_bytes());
            for s in l {
                put_short(out, s.as_bytes());
            }
        };
        match &t.scope {
            Scope::WholeService => out.push(SCOPE_WHOLE_SERVICE),
            Scope::Components(l) => put_list(&mut out, SCOPE_COMPONENTS, l),
            Scope::Groups(l) => put_list(&mut out, SCOPE_GROUPS, l),
        }
        out.push(match t.material {
            MaterialKind::KnownImagery => MATERIAL_KNOWN_IMAGERY,
        });
        out.extend_from_slice(&t.not_before.to_le_bytes());
        out.extend_from_slice(&t.not_after.to_le_bytes());
        out.extend_from_slice(&t.threshold.to_le_bytes());
        out.extend_from_slice(&t.synthetic_rate.to_le_bytes());
        out.extend_from_slice(&t.synthetic_cap.to_le_bytes());
        out.extend_from_slice(&t.hash_config.to_le_bytes());
        out.extend_from_slice(&t.centre_key);
        put_short(&mut out, t.release_line.as_bytes());
        out.extend_from_slice(&t.table_key);
        out.push(u8::try_from(t.excluded_classes.len()).unwrap_or(u8::MAX));
        for c in &t.excluded_classes {
            put_short(&mut out, c.as_bytes());
        }
        out.extend_from_slice(t.authority_key_id.as_bytes());
        out
    }

    /// Decodes the canonical encoding, refusing anything else: another version, an unknown tag, a value out of
    /// range, a list out of order or with a duplicate, invalid text or keys, trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("detection order", bytes);
        let order = Self::read(&mut r)?;
        r.finish()?;
        Ok(order)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        fn text(r: &mut Reader<'_>, len: usize, what: &'static str) -> Result<String> {
            let b = r.take(len)?;
            core::str::from_utf8(b).map(str::to_owned).map_err(|_| OrderError::InvalidText { what })
        }
        fn short(r: &mut Reader<'_>, what: &'static str) -> Result<String> {
            let len = usize::from(r.u8()?);
            text(r, len, what)
        }
        // Checks the count before reading (so a hostile count cannot make us allocate), the rest after.
        fn list(r: &mut Reader<'_>, count: usize, max: usize, what: &'static str) -> Result<Vec<String>> {
            if count > max {
                return Err(OrderError::OutOfRange { what });
            }
            (0..count).map(|_| short(r, what)).collect()
        }
        r.version(VERSION)?;
        let order_id = r.array()?;
        let service_id = short(r, "service id")?;
        let scope = match r.u8()? {
            SCOPE_WHOLE_SERVICE => Scope::WholeService,
            SCOPE_COMPONENTS => {
                let n = usize::from(r.u16()?);
                Scope::Components(list(r, n, MAX_SCOPE_ENTRIES, "scope components")?)
            }
            SCOPE_GROUPS => {
                let n = usize::from(r.u16()?);
                Scope::Groups(list(r, n, MAX_SCOPE_ENTRIES, "scope groups")?)
            }
            got => return Err(OrderError::UnknownTag { what: "scope", got }),
        };
        let material = match r.u8()? {
            MATERIAL_KNOWN_IMAGERY => MaterialKind::KnownImagery,
            got => return Err(OrderError::UnknownTag { what: "material kind", got }),
        };
        let not_before = r.i64()?;
        let not_after = r.i64()?;
        let threshold = r.u16()?;
        let synthetic_rate = r.u32()?;
        let synthetic_cap = r.u16()?;
        let hash_config = r.u16()?;
        let centre_key = r.array()?;
        let release_line = short(r, "release line")?;
        let table_key = r.array()?;
        let n = usize::from(r.u8()?);
        let excluded_classes = list(r, n, MAX_EXCLUDED_CLASSES, "excluded classes")?;
        let authority_key_id = KeyId(r.array::<KEY_ID_LEN>()?);
        Self::validated(OrderTerms {
            order_id,
            service_id,
            scope,
            material,
            not_before,
            not_after,
            threshold,
            synthetic_rate,
            synthetic_cap,
            hash_config,
            centre_key,
            release_line,
            table_key,
            excluded_classes,
            authority_key_id,
        })
    }
}

/// An order with the authority's Ed25519 signature over `LABEL_ORDER_SIGN ‖ encode(order)`. Not yet verified:
/// only [`crate::AuthorityKeyring::verify_order`] turns it into a [`VerifiedOrder`].
///
/// Encoding: `VERSION (0x01) ‖ signature (64 bytes) ‖ encode(order)` (the order runs to the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedOrder {
    order: DetectionOrder,
    signature: Signature,
}

impl SignedOrder {
    pub(crate) fn new(order: DetectionOrder, signature: Signature) -> Self {
        SignedOrder { order, signature }
    }

    /// The order (unverified).
    pub fn order(&self) -> &DetectionOrder {
        &self.order
    }

    /// The signature (unverified).
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let order = self.order.encode();
        let mut out = Vec::with_capacity(1 + SIGNATURE_LEN + order.len());
        out.push(VERSION);
        out.extend_from_slice(&self.signature.to_bytes());
        out.extend_from_slice(&order);
        out
    }

    /// Decodes (without verifying the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("signed order", bytes);
        r.version(VERSION)?;
        let signature = Signature::from_bytes(&r.array()?);
        let order = DetectionOrder::decode(r.rest())?;
        r.finish()?;
        Ok(SignedOrder { order, signature })
    }
}

/// An order whose signature verified under a pinned authority key. Constructible only by
/// [`crate::AuthorityKeyring::verify_order`]. Whether it is active *now* is [`VerifiedOrder::check_active`]'s
/// question, which client and server must both ask before every use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOrder {
    signed: SignedOrder,
    authority: AuthorityPublicKey,
}

impl VerifiedOrder {
    pub(crate) fn new(signed: SignedOrder, authority: AuthorityPublicKey) -> Self {
        VerifiedOrder { signed, authority }
    }

    /// The one validity check shared by client and server. `Ok` only if no revocation among `revocations` names
    /// this order and its authority key id ([`OrderError::Revoked`]; a revocation applies at once, whatever its
    /// `revoked_at`), and `now` (Unix seconds) lies in the half-open window `[not_before, not_after)`
    /// ([`OrderError::NotYetValid`], [`OrderError::Expired`]).
    pub fn check_active(&self, now: i64, revocations: &[VerifiedRevocation]) -> Result<()> {
        let o = &self.signed.order;
        if let Some(r) =
            revocations.iter().find(|r| r.order_id() == o.order_id() && r.authority_key_id() == o.authority_key_id())
        {
            return Err(OrderError::Revoked { revoked_at: r.revoked_at(), reason: r.reason() });
        }
        if now < o.not_before() {
            return Err(OrderError::NotYetValid { not_before: o.not_before(), now });
        }
        if now >= o.not_after() {
            return Err(OrderError::Expired { not_after: o.not_after(), now });
        }
        Ok(())
    }

    /// Whether the order's scope covers a conversation in `component` and `group` (either unknown: `None`). A
    /// whole-service order covers everything; a component (group) scope covers only a conversation whose component
    /// (group) is listed, so an unknown one is not covered. Says nothing about time: ask
    /// [`VerifiedOrder::check_active`] too.
    pub fn covers(&self, component: Option<&str>, group: Option<&str>) -> bool {
        let listed =
            |l: &[String], x: Option<&str>| x.is_some_and(|x| l.binary_search_by(|e| e.as_str().cmp(x)).is_ok());
        match self.signed.order.scope() {
            Scope::WholeService => true,
            Scope::Components(l) => listed(l, component),
            Scope::Groups(l) => listed(l, group),
        }
    }

    /// Whether the order excludes accounts of this class (exact byte comparison).
    pub fn excludes(&self, class: &str) -> bool {
        self.signed.order.excluded_classes().binary_search_by(|e| e.as_str().cmp(class)).is_ok()
    }

    /// The verified order.
    pub fn order(&self) -> &DetectionOrder {
        &self.signed.order
    }
    /// The signed order, as verified (its [`SignedOrder::encode`] is what the transparency log holds).
    pub fn signed(&self) -> &SignedOrder {
        &self.signed
    }
    /// The pinned authority key that verified it.
    pub fn authority(&self) -> &AuthorityPublicKey {
        &self.authority
    }
    /// See [`DetectionOrder::order_id`].
    pub fn order_id(&self) -> &[u8; ORDER_ID_LEN] {
        self.signed.order.order_id()
    }
    /// See [`DetectionOrder::service_id`].
    pub fn service_id(&self) -> &str {
        self.signed.order.service_id()
    }
    /// See [`DetectionOrder::scope`].
    pub fn scope(&self) -> &Scope {
        self.signed.order.scope()
    }
    /// See [`DetectionOrder::material`].
    pub fn material(&self) -> MaterialKind {
        self.signed.order.material()
    }
    /// See [`DetectionOrder::not_before`].
    pub fn not_before(&self) -> i64 {
        self.signed.order.not_before()
    }
    /// See [`DetectionOrder::not_after`].
    pub fn not_after(&self) -> i64 {
        self.signed.order.not_after()
    }
    /// See [`DetectionOrder::threshold`].
    pub fn threshold(&self) -> u16 {
        self.signed.order.threshold()
    }
    /// See [`DetectionOrder::synthetic_rate`].
    pub fn synthetic_rate(&self) -> u32 {
        self.signed.order.synthetic_rate()
    }
    /// See [`DetectionOrder::synthetic_cap`].
    pub fn synthetic_cap(&self) -> u16 {
        self.signed.order.synthetic_cap()
    }
    /// See [`DetectionOrder::hash_config`].
    pub fn hash_config(&self) -> u16 {
        self.signed.order.hash_config()
    }
    /// See [`DetectionOrder::centre_key`].
    pub fn centre_key(&self) -> &VerifyingKey {
        self.signed.order.centre_key()
    }
    /// See [`DetectionOrder::release_line`].
    pub fn release_line(&self) -> &str {
        self.signed.order.release_line()
    }
    /// See [`DetectionOrder::table_key`].
    pub fn table_key(&self) -> &VerifyingKey {
        self.signed.order.table_key()
    }
    /// See [`DetectionOrder::excluded_classes`].
    pub fn excluded_classes(&self) -> &[String] {
        self.signed.order.excluded_classes()
    }
    /// See [`DetectionOrder::authority_key_id`].
    pub fn authority_key_id(&self) -> &KeyId {
        self.signed.order.authority_key_id()
    }
}
