//! `vouchsafe authority …`: the issuing authority's key, signed detection orders and revocations. Wiring only: the
//! order type, its encoding, signatures and validity are `vouchsafe-orders`; secret files go through
//! `vouchsafe-files`.
//!
//! Files (all versioned; see docs/GOVERNANCE.md):
//! * secret key: the text `vouchsafe-authority-key v1`, a newline, 64 hex digits (the Ed25519 seed), a newline;
//!   mode 0600, never printed;
//! * public key: `vouchsafe-authority-public-key v1`, a newline, 64 hex digits, a newline (what apps pin);
//! * order and revocation: the binary canonical encodings of `SignedOrder` and `SignedRevocation`.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use vouchsafe_orders::labels::MAX_ORDER_SECONDS;
use vouchsafe_orders::{
    AuthorityKeyring, AuthorityPublicKey, AuthoritySigningKey, DetectionOrder, MaterialKind, OrderError, OrderTerms,
    Revocation, RevocationReason, Scope, SignedOrder, SignedRevocation, VerifiedOrder, VerifiedRevocation,
};
use zeroize::Zeroizing;

use crate::error::{CliError, Result};
use crate::keyfile::{hex32, now_secs, parse_key_text, pub_path, read_limited, write_new};

const SECRET_HEADER: &str = "vouchsafe-authority-key v1";
const PUBLIC_HEADER: &str = "vouchsafe-authority-public-key v1";

/// What `authority issue` signs.
#[derive(Debug)]
pub struct IssueArgs {
    /// The authority's secret key file.
    pub key: PathBuf,
    /// Service id.
    pub service: String,
    /// Listed components (empty: see `groups`; both empty: the whole service).
    pub components: Vec<String>,
    /// Listed groups.
    pub groups: Vec<String>,
    /// Start of validity, Unix seconds (None: now).
    pub not_before: Option<i64>,
    /// Length of validity in days (at most 731).
    pub days: u32,
    /// Threshold T.
    pub threshold: u16,
    /// Synthetic rate p in [0, 1].
    pub synthetic_rate: f64,
    /// Synthetic cap s.
    pub synthetic_cap: u16,
    /// Hash configuration id.
    pub hash_config: u16,
    /// The Centre's Ed25519 public key, 64 hex digits.
    pub centre_key: String,
    /// The Centre release line.
    pub release_line: String,
    /// The provider's table-signing Ed25519 public key, 64 hex digits.
    pub table_key: String,
    /// Excluded account classes.
    pub exclude: Vec<String>,
    /// Where to write the signed order.
    pub out: PathBuf,
}

fn load_signing_key(path: &Path) -> Result<AuthoritySigningKey> {
    let text = read_limited(path, "authority key")?;
    let secret = parse_key_text(&text, SECRET_HEADER, "authority key", path)?;
    Ok(AuthoritySigningKey::from_secret_bytes(&secret))
}

pub fn load_public_key(path: &Path) -> Result<AuthorityPublicKey> {
    let text = read_limited(path, "authority public key")?;
    let bytes = parse_key_text(&text, PUBLIC_HEADER, "authority public key", path)?;
    AuthorityPublicKey::from_bytes(&bytes)
        .map_err(|e| CliError::usage(format!("authority public key {}: {e}", path.display())))
}

fn public_text(key: &AuthorityPublicKey) -> String {
    format!("{PUBLIC_HEADER}\n{}\n", hex::encode(key.to_bytes()))
}

/// `vouchsafe authority keygen --out FILE`: a fresh Ed25519 key (mode 0600) and FILE.pub (what apps pin).
pub fn keygen(out: &Path) -> Result<()> {
    let mut rng = crate::cmd::os_rng()?;
    let key = AuthoritySigningKey::generate(&mut rng);
    let pub_file = pub_path(out);
    if std::fs::symlink_metadata(&pub_file).is_ok() {
        return Err(CliError::usage(format!(
            "authority keygen: {} exists; refusing to overwrite it",
            pub_file.display()
        )));
    }
    let secret = key.to_secret_bytes();
    let text = Zeroizing::new(format!("{SECRET_HEADER}\n{}\n", hex::encode(&secret[..])));
    write_new(out, text.as_bytes(), "authority keygen: key file")?;
    write_new(&pub_file, public_text(key.public_key()).as_bytes(), "authority keygen: public key file")?;
    println!("authority key id {}", key.key_id());
    println!("  secret key: {} (mode 0600; keep it offline)", out.display());
    println!("  public key: {} (apps pin it)", pub_file.display());
    Ok(())
}

/// The probability p as the order's u32 (p · 2^32, rounded, 1.0 → u32::MAX).
fn rate_u32(p: f64) -> Result<u32> {
    if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
        return Err(CliError::usage("authority issue: --synthetic-rate must be in [0, 1]"));
    }
    let scaled = (p * 4_294_967_296.0).round();
    Ok(if scaled >= 4_294_967_295.0 { u32::MAX } else { scaled as u32 })
}

/// `vouchsafe authority issue …`: signs a detection order.
pub fn issue(a: &IssueArgs) -> Result<()> {
    let key = load_signing_key(&a.key)?;
    let not_before = match a.not_before {
        Some(t) => t,
        None => now_secs()?,
    };
    let seconds = i64::from(a.days) * 86_400;
    if a.days == 0 || seconds > MAX_ORDER_SECONDS {
        return Err(CliError::usage(format!(
            "authority issue: --days must be 1..={} (an order lasts at most 24 months)",
            MAX_ORDER_SECONDS / 86_400
        )));
    }
    let not_after = not_before
        .checked_add(seconds)
        .ok_or_else(|| CliError::usage("authority issue: --not-before is out of range"))?;
    let scope = match (a.components.is_empty(), a.groups.is_empty()) {
        (true, true) => Scope::WholeService,
        (false, true) => Scope::Components(a.components.clone()),
        (true, false) => Scope::Groups(a.groups.clone()),
        (false, false) => return Err(CliError::usage("authority issue: give --components or --groups, not both")),
    };
    crate::cmd::hash_config("authority issue --hash-config", a.hash_config)?;
    let mut order_id = [0u8; 16];
    crate::cmd::os_rng()?.fill_bytes(&mut order_id);
    let terms = OrderTerms {
        order_id,
        service_id: a.service.clone(),
        scope,
        material: MaterialKind::KnownImagery,
        not_before,
        not_after,
        threshold: a.threshold,
        synthetic_rate: rate_u32(a.synthetic_rate)?,
        synthetic_cap: a.synthetic_cap,
        hash_config: a.hash_config,
        centre_key: hex32(&a.centre_key, "authority issue: --centre-key")?,
        release_line: a.release_line.clone(),
        table_key: hex32(&a.table_key, "authority issue: --table-key")?,
        excluded_classes: a.exclude.clone(),
        authority_key_id: key.key_id(),
    };
    let order = DetectionOrder::new(terms).map_err(|e| CliError::usage(format!("authority issue: {e}")))?;
    let signed = key.sign_order(order).map_err(|e| CliError::runtime(format!("authority issue: {e}")))?;
    write_new(&a.out, &signed.encode(), "authority issue: order file")?;
    println!("order {} signed by authority {}", hex::encode(order_id), key.key_id());
    println!("  valid [{not_before}, {not_after}) Unix seconds; written to {}", a.out.display());
    Ok(())
}

fn parse_reason(s: &str) -> Result<RevocationReason> {
    Ok(match s {
        "unspecified" => RevocationReason::Unspecified,
        "superseded" => RevocationReason::Superseded,
        "issued-in-error" => RevocationReason::IssuedInError,
        "annulled" => RevocationReason::Annulled,
        "key-compromise" => RevocationReason::KeyCompromise,
        _ => {
            return Err(CliError::usage(
                "authority revoke: --reason must be unspecified, superseded, issued-in-error, annulled or key-compromise",
            ));
        }
    })
}

/// `vouchsafe authority revoke --key K --order FILE --reason R --out FILE`: a signed revocation, effective at once.
pub fn revoke(key: &Path, order: &Path, reason: &str, out: &Path) -> Result<()> {
    let key = load_signing_key(key)?;
    let reason = parse_reason(reason)?;
    let bytes = read_limited(order, "order")?;
    let signed = SignedOrder::decode(&bytes).map_err(|e| CliError::usage(format!("order {}: {e}", order.display())))?;
    // Only the authority that signed an order revokes it: check before signing anything.
    let keyring = AuthorityKeyring::new([key.public_key().clone()])
        .map_err(|e| CliError::runtime(format!("authority revoke: {e}")))?;
    let verified = keyring
        .verify_order(&signed)
        .map_err(|e| CliError::usage(format!("authority revoke: {}: {e}", order.display())))?;
    let revocation = Revocation::new(*verified.order_id(), now_secs()?, reason, key.key_id());
    let signed_rev =
        key.sign_revocation(revocation).map_err(|e| CliError::runtime(format!("authority revoke: {e}")))?;
    write_new(out, &signed_rev.encode(), "authority revoke: revocation file")?;
    println!(
        "order {} revoked ({reason:?}); revocation written to {}",
        hex::encode(verified.order_id()),
        out.display()
    );
    Ok(())
}

fn scope_text(s: &Scope) -> String {
    match s {
        Scope::WholeService => "the whole service".to_owned(),
        Scope::Components(c) => format!("components {}", c.join(", ")),
        Scope::Groups(g) => format!("groups {}", g.join(", ")),
    }
}

fn print_order(o: &VerifiedOrder) {
    println!("order {} (verified: signed by authority {})", hex::encode(o.order_id()), o.authority_key_id());
    println!("  service:            {}", o.service_id());
    println!("  scope:              {}", scope_text(o.scope()));
    println!("  material:           {:?} (v1 can express nothing else)", o.material());
    println!("  valid:              [{}, {}) Unix seconds", o.not_before(), o.not_after());
    println!("  threshold T:        {}", o.threshold());
    println!("  synthetic p, s:     {:.6}, {}", f64::from(o.synthetic_rate()) / 4_294_967_296.0, o.synthetic_cap());
    println!("  hash configuration: {}", o.hash_config());
    println!("  Centre key:         {} (release line {})", hex::encode(o.centre_key().as_bytes()), o.release_line());
    println!("  table key:          {}", hex::encode(o.table_key().as_bytes()));
    let excluded = if o.excluded_classes().is_empty() { "none".to_owned() } else { o.excluded_classes().join(", ") };
    println!("  excluded classes:   {excluded}");
}

/// `vouchsafe authority show --authority PUB… ORDER [--revocation R…]`: verifies and prints an order and whether it
/// is active now. A file that does not verify is an error (exit 1); so is an order that is not active.
pub fn show(authorities: &[PathBuf], order: &Path, revocations: &[PathBuf], at: Option<i64>) -> Result<()> {
    let keys = authorities.iter().map(|p| load_public_key(p)).collect::<Result<Vec<_>>>()?;
    let keyring = AuthorityKeyring::new(keys).map_err(|e| CliError::usage(format!("authority show: {e}")))?;
    let bytes = read_limited(order, "order")?;
    let verified =
        keyring.verify_order_bytes(&bytes).map_err(|e| CliError::runtime(format!("order {}: {e}", order.display())))?;
    let revs: Vec<VerifiedRevocation> = revocations
        .iter()
        .map(|p| {
            let b = read_limited(p, "revocation")?;
            let signed = SignedRevocation::decode(&b)
                .map_err(|e| CliError::runtime(format!("revocation {}: {e}", p.display())))?;
            keyring
                .verify_revocation(&signed)
                .map_err(|e| CliError::runtime(format!("revocation {}: {e}", p.display())))
        })
        .collect::<Result<_>>()?;
    print_order(&verified);
    let now = match at {
        Some(t) => t,
        None => now_secs()?,
    };
    match verified.check_active(now, &revs) {
        Ok(()) => {
            println!("  status:             active at {now}");
            Ok(())
        }
        Err(e @ (OrderError::NotYetValid { .. } | OrderError::Expired { .. } | OrderError::Revoked { .. })) => {
            println!("  status:             NOT active: {e}");
            Err(CliError::runtime(format!("order {}: {e}", hex::encode(verified.order_id()))))
        }
        Err(e) => Err(CliError::runtime(format!("order {}: {e}", hex::encode(verified.order_id())))),
    }
}
