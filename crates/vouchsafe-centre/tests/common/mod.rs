//! A whole Centre deployment in a temporary directory, built with the orders, release and case crates from a
//! fixed-seed RNG: an authority and its order, the Centre's key, indicator database and release 1, a provider
//! and its key, and `centre.toml`; plus report, withdrawal and feedback builders and a loopback client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vouchsafe_case::{
    CentreReceiptKey, Decision, IndicatorCount, IndicatorFeedback, Message, ProviderSigningKey, ReasonCode, Receipt,
    Report, ReportItem, Role, SignedReceipt, Verdict, Withdrawal,
};
use vouchsafe_centre::{AUTHORITY_PUBLIC_HEADER, CENTRE_KEY_HEADER, CentreConfig, PROVIDER_PUBLIC_HEADER};
use vouchsafe_orders::{
    AuthoritySigningKey, DetectionOrder, MaterialKind, OrderTerms, Revocation, RevocationReason, Scope, SignedOrder,
    TableSigningKey,
};
use vouchsafe_phash::{AssociatedData, HashConfig, ImageHashes, hash_image};
use vouchsafe_proto::v1::centre_client::CentreClient;
use vouchsafe_release::{CentreDb, CentreSigningKey, ImportEntry, ReleaseChain, SignedRelease, SourceId};

pub const SERVICE: &str = "messenger.example";
pub const LINE: &str = "demo";
pub const PROVIDER: &str = "provider-a";

pub fn now() -> i64 {
    vouchsafe_centre::unix_now()
}

/// Image hashes of a benign synthetic image (`seed`).
pub fn image(seed: u64) -> ImageHashes {
    let img = vouchsafe_phash::fixtures::benign_image(seed, 256, 192);
    hash_image(&HashConfig::V1, &image::DynamicImage::ImageRgb8(img)).unwrap()
}

pub fn primary(h: &ImageHashes) -> Vec<u8> {
    h.primary.to_canonical_bytes()
}

pub fn ad(h: &ImageHashes, n: u8) -> Vec<u8> {
    AssociatedData::new(&HashConfig::V1, h, [n; 32], 1_700_000_000 + u64::from(n)).unwrap().encode()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: CentreConfig,
    pub config_path: PathBuf,
    pub rng: ChaCha20Rng,
    pub authority: AuthoritySigningKey,
    pub centre: CentreSigningKey,
    pub provider: ProviderSigningKey,
    pub order: SignedOrder,
    pub db: CentreDb,
    pub chain: ReleaseChain,
    pub release_hash: [u8; 32],
    /// Images A, B, C (in release 1, attested by two sources).
    pub images: Vec<ImageHashes>,
    revocations: usize,
}

fn key_file(path: &Path, header: &str, key: &[u8; 32]) {
    std::fs::write(path, vouchsafe_files::key_text(header, key).as_bytes()).unwrap();
}

impl Fixture {
    pub fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let authority = AuthoritySigningKey::generate(&mut rng);
        let centre = CentreSigningKey::generate(&mut rng);
        let provider = ProviderSigningKey::generate(&mut rng);
        let table = TableSigningKey::generate(&mut rng);
        key_file(&d.join("authority.pub"), AUTHORITY_PUBLIC_HEADER, &authority.public_key().to_bytes());
        key_file(&d.join("centre.key"), CENTRE_KEY_HEADER, &centre.to_bytes());
        key_file(&d.join("provider.pub"), PROVIDER_PUBLIC_HEADER, &provider.public().to_bytes());

        let images: Vec<ImageHashes> = (1..=3).map(image).collect();
        let mut db = CentreDb::new(HashConfig::V1.id());
        for source in ["source-a", "source-b"] {
            let entries: Vec<ImportEntry> = images
                .iter()
                .enumerate()
                .map(|(i, h)| ImportEntry {
                    primary: primary(h),
                    secondary: h.secondary.to_canonical_bytes(),
                    reference: format!("{source}-{i}"),
                })
                .collect();
            db.import(&SourceId::new(source).unwrap(), HashConfig::V1.id(), &entries).unwrap();
        }
        std::fs::create_dir_all(d.join("releases")).unwrap();
        let next = db.next_release(LINE, None, 2, now() - 7200, &[]).unwrap();
        let signed = centre.sign(&next.release);
        std::fs::write(d.join("releases").join(format!("{LINE}-000001.bin")), signed.encode()).unwrap();
        let verified = signed.verify(&centre.public()).unwrap();
        let chain = ReleaseChain::new(&verified).unwrap();
        std::fs::write(d.join("centre.db"), db.encode()).unwrap();

        let t = now();
        let order = issue(&authority, &centre, &table, [7; 16], t - 86_400, t + 30 * 86_400);
        let text = format!(
            r#"listen = "127.0.0.1:0"
key = "centre.key"
database = "centre-intake.sqlite"
indicators = "centre.db"
releases = "releases"
authority_keys = ["authority.pub"]
revocations = "revocations"
exports = "exports"
[[providers]]
id = "{PROVIDER}"
key = "provider.pub"
services = ["{SERVICE}"]
"#
        );
        let config_path = d.join("centre.toml");
        std::fs::write(&config_path, text).unwrap();
        let config = CentreConfig::load(&config_path).unwrap();
        Fixture {
            release_hash: verified.hash(),
            dir,
            config,
            config_path,
            rng,
            authority,
            centre,
            provider,
            order,
            db,
            chain,
            images,
            revocations: 0,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Another order of the same authority (for expired / not yet valid cases).
    pub fn issue(&mut self, id: [u8; 16], not_before: i64, not_after: i64) -> SignedOrder {
        let table = TableSigningKey::generate(&mut self.rng);
        issue(&self.authority, &self.centre, &table, id, not_before, not_after)
    }

    pub fn revoke(&mut self, order: &SignedOrder) {
        let r =
            Revocation::new(*order.order().order_id(), now(), RevocationReason::IssuedInError, self.authority.key_id());
        let signed = self.authority.sign_revocation(r).unwrap();
        let dir = self.path().join("revocations");
        std::fs::create_dir_all(&dir).unwrap();
        self.revocations += 1;
        std::fs::write(dir.join(format!("r{}.bin", self.revocations)), signed.encode()).unwrap();
    }

    /// Marks an indicator a false positive in the indicator database (what `centre flag` does).
    pub fn flag(&mut self, primary: &[u8]) {
        self.db.mark_false_positive(primary).unwrap();
        std::fs::write(self.path().join("centre.db"), self.db.encode()).unwrap();
    }

    /// Signs the next release of the line, removing `removals` (which must be flagged).
    pub fn release(&mut self, removals: &[Vec<u8>]) {
        let next = self.db.next_release(LINE, Some(&self.chain), 2, now() - 3600, removals).unwrap();
        let signed: SignedRelease = self.centre.sign(&next.release);
        let n = next.release.number();
        std::fs::write(self.path().join("releases").join(format!("{LINE}-{n:06}.bin")), signed.encode()).unwrap();
        self.chain.apply(&signed.verify(&self.centre.public()).unwrap()).unwrap();
    }

    pub fn receipt_key(&self) -> CentreReceiptKey {
        CentreReceiptKey::from_bytes(&self.centre.public().to_bytes()).unwrap()
    }

    pub fn confirm(reviewer: &str) -> Decision {
        Decision {
            reviewer: reviewer.to_owned(),
            role: Role::Reviewer,
            verdict: Verdict::Confirm,
            reason: ReasonCode::KnownImage,
            comment: "matches the known image".to_owned(),
            at: now() - 60,
        }
    }

    /// A report of the fixture's order and release 1, one item per image given.
    pub fn report(&self, id: u8, items: &[Vec<u8>]) -> Report {
        let t = now();
        Report {
            report_id: [id; 16],
            provider: PROVIDER.to_owned(),
            order_id: *self.order.order().order_id(),
            order_hash: self.order.hash(),
            signed_order: self.order.encode(),
            release_number: 1,
            release_hash: self.release_hash,
            case_id: u64::from(id),
            account: "account-ref-1".to_owned(),
            urgent: false,
            four_eyes: false,
            threshold_at: t - 600,
            created_at: t - 300,
            items: items
                .iter()
                .enumerate()
                .map(|(i, ad)| ReportItem { voucher_id: [u8::try_from(i).unwrap() + 1; 16], ad: ad.clone() })
                .collect(),
            decisions: vec![Self::confirm("alice")],
        }
    }

    pub fn withdrawal(&self, id: u8, report_id: [u8; 16]) -> Withdrawal {
        Withdrawal {
            withdrawal_id: [id; 16],
            provider: PROVIDER.to_owned(),
            report_id,
            order_id: *self.order.order().order_id(),
            reason: "appeal upheld".to_owned(),
            at: now() - 10,
        }
    }

    pub fn feedback(&self, id: u8, entries: Vec<(Vec<u8>, u64, u64)>, at: i64) -> IndicatorFeedback {
        let mut entries: Vec<IndicatorCount> = entries
            .into_iter()
            .map(|(primary, d, r)| IndicatorCount { primary, second_hash_drops: d, review_rejections: r })
            .collect();
        entries.sort_by(|a, b| a.primary.cmp(&b.primary));
        IndicatorFeedback {
            feedback_id: [id; 16],
            provider: PROVIDER.to_owned(),
            order_id: *self.order.order().order_id(),
            release_number: 1,
            entries,
            at,
        }
    }

    pub fn sign(&self, m: Message) -> Vec<u8> {
        self.provider.sign(&m).unwrap().encode()
    }

    pub fn rows(&self) -> u64 {
        vouchsafe_centre::message_count(&self.config).unwrap()
    }

    pub fn exports(&self) -> Vec<String> {
        let mut v: Vec<String> = match std::fs::read_dir(self.path().join("exports")) {
            Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

fn issue(
    authority: &AuthoritySigningKey,
    centre: &CentreSigningKey,
    table: &TableSigningKey,
    order_id: [u8; 16],
    not_before: i64,
    not_after: i64,
) -> SignedOrder {
    let terms = OrderTerms {
        order_id,
        service_id: SERVICE.to_owned(),
        scope: Scope::WholeService,
        material: MaterialKind::KnownImagery,
        not_before,
        not_after,
        threshold: 3,
        synthetic_rate: 0,
        synthetic_cap: 0,
        hash_config: HashConfig::V1.id(),
        centre_key: centre.public().to_bytes(),
        release_line: LINE.to_owned(),
        table_key: table.public_key(),
        excluded_classes: Vec::new(),
        authority_key_id: authority.key_id(),
    };
    authority.sign_order(DetectionOrder::new(terms).unwrap()).unwrap()
}

/// A loopback client of a running Centre.
pub async fn client(addr: std::net::SocketAddr) -> CentreClient<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60));
    CentreClient::new(endpoint.connect().await.unwrap())
        .max_decoding_message_size(1 << 20)
        .max_encoding_message_size(64 << 20)
}

pub async fn deliver(
    c: &mut CentreClient<tonic::transport::Channel>,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    c.deliver(vouchsafe_proto::v1::DeliverRequest { message: bytes }).await.map(|r| r.into_inner().receipt)
}

pub fn open_receipt(key: &CentreReceiptKey, bytes: &[u8]) -> Receipt {
    SignedReceipt::decode(bytes).unwrap().verify(key).unwrap()
}
