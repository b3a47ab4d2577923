//! The channel to law enforcement: one directory per forwarded report, `exports/<export id hex>/`.
//!
//! * `bundle.json`: the report as the Centre verified it ([`Bundle`]), UTF-8 JSON, the exact bytes signed;
//! * `item-NN.png`: each item's visual derivative, grayscale, at full resolution (`NN` its index, from `00`);
//!   `bundle.json` names each file with the SHA-256 of its bytes, so the signature covers the images too;
//! * `bundle.sig`: 128 hex digits and a newline, the Ed25519 signature
//!   `CentreReceiptSigner::sign_export(bundle.json bytes)` (over `"vouchsafe/v1/centre/export/sign" ‖
//!   SHA-256(bundle.json)`), verifiable with the Centre's public key (`CentreReceiptKey::verify_export`).
//! * after an upheld appeal, `WITHDRAWN.json` ([`Withdrawn`]) and `WITHDRAWN.sig` (the same kind of signature
//!   over `WITHDRAWN.json`).
//!
//! A bundle is written into `exports/.tmp-<id>/` (every file fsynced), which is then renamed to `exports/<id>/`
//! and the directory fsynced: a recipient never sees half a bundle. The export id is derived from the message
//! digest, so a retry after a crash finds the bundle already written (it verifies and names the same digest)
//! and keeps it; a stale temporary directory is removed first.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vouchsafe_case::{CentreReceiptKey, CentreReceiptSigner, Report, Withdrawal};

use crate::check::CheckedReport;
use crate::error::{CentreError, Result};

/// Domain label of the export id.
pub const LABEL_EXPORT_ID: &[u8] = b"vouchsafe/v1/centre/export-id";
/// The `format` field of `bundle.json`.
pub const BUNDLE_FORMAT: &str = "vouchsafe-centre-export v1";
/// The `format` field of `WITHDRAWN.json`.
pub const WITHDRAWN_FORMAT: &str = "vouchsafe-centre-withdrawn v1";

/// `exports/<id>/` file names.
pub const BUNDLE_JSON: &str = "bundle.json";
/// The signature of `bundle.json`.
pub const BUNDLE_SIG: &str = "bundle.sig";
/// The withdrawal notice.
pub const WITHDRAWN_JSON: &str = "WITHDRAWN.json";
/// The signature of the withdrawal notice.
pub const WITHDRAWN_SIG: &str = "WITHDRAWN.sig";

/// The export id of a message: the first 16 bytes of `SHA-256("vouchsafe/v1/centre/export-id" ‖ digest)`.
pub fn export_id(message_digest: &[u8; 32]) -> [u8; 16] {
    let h: [u8; 32] = Sha256::new().chain_update(LABEL_EXPORT_ID).chain_update(message_digest).finalize().into();
    let mut id = [0u8; 16];
    id.copy_from_slice(h.get(..16).unwrap_or(&[0u8; 16]));
    id
}

/// The directory of an export.
pub fn export_dir(exports: &Path, id: &[u8; 16]) -> PathBuf {
    exports.join(hex::encode(id))
}

/// One item of `bundle.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct BundleItem {
    pub index: usize,
    pub voucher_id: String,
    pub attachment_ref: String,
    /// The item's time (Unix seconds, from its associated data).
    pub time: u64,
    /// Canonical primary hash, hex.
    pub primary: String,
    /// Canonical secondary hash, hex (the device's, recomputed by the Centre from the derivative).
    pub secondary: String,
    /// Hamming distance of the secondary hash to the indicator's.
    pub distance: u32,
    pub source_width: u32,
    pub source_height: u32,
    /// The file of the derivative in the bundle's directory.
    pub image: String,
    /// SHA-256 of that file's bytes, hex: so `bundle.sig` covers the images too.
    pub image_sha256: String,
}

/// One review decision of `bundle.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct BundleDecision {
    pub reviewer: String,
    pub role: String,
    pub verdict: String,
    pub reason: String,
    pub comment: String,
    pub at: i64,
}

/// `bundle.json`. Ids and hashes are lowercase hex; times are Unix seconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Bundle {
    pub format: String,
    pub export_id: String,
    /// The provider message's digest (`SignedMessage::digest`).
    pub message_digest: String,
    pub provider: String,
    pub report_id: String,
    pub case_id: u64,
    pub account: String,
    pub urgent: bool,
    pub four_eyes: bool,
    pub order_id: String,
    pub order_hash: String,
    pub service: String,
    pub release_line: String,
    pub release_number: u64,
    pub release_hash: String,
    pub threshold_at: i64,
    pub created_at: i64,
    pub received_at: i64,
    pub items: Vec<BundleItem>,
    pub decisions: Vec<BundleDecision>,
}

/// `WITHDRAWN.json`: the provider withdrew the report (an upheld appeal). Deterministic in the withdrawal
/// message, so writing it again after a crash gives the same bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Withdrawn {
    pub format: String,
    pub export_id: String,
    pub provider: String,
    pub report_id: String,
    pub withdrawal_id: String,
    pub reason: String,
    pub at: i64,
}

fn item_file(index: usize) -> String {
    format!("item-{index:02}.png")
}

/// The bundle of a checked report whose item images (PNG files) are `images`.
pub fn bundle(
    report: &Report,
    checked: &CheckedReport,
    digest: &[u8; 32],
    id: &[u8; 16],
    received_at: i64,
    images: &[Vec<u8>],
) -> Bundle {
    let items = report
        .items
        .iter()
        .zip(&checked.items)
        .zip(images)
        .enumerate()
        .map(|(index, ((item, c), png))| BundleItem {
            index,
            voucher_id: hex::encode(item.voucher_id),
            attachment_ref: hex::encode(c.ad.attachment_ref()),
            time: c.ad.time(),
            primary: hex::encode(&c.primary),
            secondary: hex::encode(c.ad.secondary().to_canonical_bytes()),
            distance: c.distance,
            source_width: c.ad.source_width(),
            source_height: c.ad.source_height(),
            image: item_file(index),
            image_sha256: hex::encode(Sha256::digest(png)),
        })
        .collect();
    let decisions = report
        .decisions
        .iter()
        .map(|d| BundleDecision {
            reviewer: d.reviewer.clone(),
            role: d.role.as_str().to_owned(),
            verdict: d.verdict.as_str().to_owned(),
            reason: d.reason.as_str().to_owned(),
            comment: d.comment.clone(),
            at: d.at,
        })
        .collect();
    Bundle {
        format: BUNDLE_FORMAT.to_owned(),
        export_id: hex::encode(id),
        message_digest: hex::encode(digest),
        provider: report.provider.clone(),
        report_id: hex::encode(report.report_id),
        case_id: report.case_id,
        account: report.account.clone(),
        urgent: report.urgent,
        four_eyes: report.four_eyes,
        order_id: hex::encode(report.order_id),
        order_hash: hex::encode(report.order_hash),
        service: checked.order.service_id().to_owned(),
        release_line: checked.release_line.clone(),
        release_number: report.release_number,
        release_hash: hex::encode(report.release_hash),
        threshold_at: report.threshold_at,
        created_at: report.created_at,
        received_at,
        items,
        decisions,
    }
}

fn png(ad: &vouchsafe_phash::AssociatedData) -> Result<Vec<u8>> {
    use image::ImageEncoder as _;
    let gray = ad.derivative().to_gray_image().map_err(|_| CentreError::Internal("a derivative is not an image"))?;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(gray.as_raw(), gray.width(), gray.height(), image::ExtendedColorType::L8)
        .map_err(|_| CentreError::Internal("PNG encoding failed"))?;
    Ok(out)
}

fn sig_text(sig: &[u8; 64]) -> String {
    format!("{}\n", hex::encode(sig))
}

/// Parses a `*.sig` file: 128 hex digits and an optional newline.
pub fn parse_sig(text: &[u8]) -> Option<[u8; 64]> {
    let text = std::str::from_utf8(text).ok()?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(text.strip_suffix('\n').unwrap_or(text), &mut sig).ok()?;
    Some(sig)
}

/// Reads `dir/bundle.json` and checks `bundle.sig` under `key`: the verified bundle.
pub fn read_bundle(dir: &Path, key: &CentreReceiptKey) -> Result<Bundle> {
    let what = || format!("export {}", dir.display());
    let json = std::fs::read(dir.join(BUNDLE_JSON)).map_err(|e| CentreError::evidence(what(), e.kind()))?;
    let sig = std::fs::read(dir.join(BUNDLE_SIG)).map_err(|e| CentreError::evidence(what(), e.kind()))?;
    let sig = parse_sig(&sig).ok_or_else(|| CentreError::evidence(what(), "bundle.sig is not 128 hex digits"))?;
    key.verify_export(&json, &sig).map_err(|_| CentreError::evidence(what(), "bundle.sig does not verify"))?;
    serde_json::from_slice(&json).map_err(|_| CentreError::evidence(what(), "bundle.json is not a bundle"))
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    vouchsafe_files::create_secret(&path, bytes).map_err(CentreError::io("export file", &path))
}

/// Writes the export of a forwarded report atomically (see the module documentation) and returns the bundle as
/// it is on disk: a bundle already there for the same digest (a retry after a crash) is kept as it is, and its
/// `received_at` is the one to record.
pub fn write_export(
    exports: &Path,
    signer: &CentreReceiptSigner,
    report: &Report,
    checked: &CheckedReport,
    digest: &[u8; 32],
    received_at: i64,
) -> Result<Bundle> {
    let id = export_id(digest);
    let final_dir = export_dir(exports, &id);
    vouchsafe_files::create_private_dir(exports).map_err(CentreError::io("exports directory", exports))?;
    if std::fs::symlink_metadata(&final_dir).is_ok() {
        let existing = read_bundle(&final_dir, &signer.public())?;
        if existing.message_digest != hex::encode(digest) || existing.export_id != hex::encode(id) {
            return Err(CentreError::evidence(
                format!("export {}", final_dir.display()),
                "it exists and belongs to another message",
            ));
        }
        return Ok(existing);
    }
    let images = checked.items.iter().map(|i| png(&i.ad)).collect::<Result<Vec<_>>>()?;
    let b = bundle(report, checked, digest, &id, received_at, &images);
    let json = serde_json::to_vec_pretty(&b).map_err(|_| CentreError::Internal("bundle.json cannot be written"))?;
    let sig = signer.sign_export(&json);

    let tmp = exports.join(format!(".tmp-{}", hex::encode(id)));
    match std::fs::remove_dir_all(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CentreError::Io { what: "export temporary directory", path: tmp, kind: e.kind() }),
    }
    vouchsafe_files::create_private_dir(&tmp).map_err(CentreError::io("export temporary directory", &tmp))?;
    for (index, image) in images.iter().enumerate() {
        write_file(&tmp, &item_file(index), image)?;
    }
    write_file(&tmp, BUNDLE_JSON, &json)?;
    write_file(&tmp, BUNDLE_SIG, sig_text(&sig).as_bytes())?;
    std::fs::rename(&tmp, &final_dir).map_err(CentreError::io("export directory", &final_dir))?;
    vouchsafe_files::sync_dir(exports).map_err(CentreError::io("exports directory", exports))?;
    Ok(b)
}

/// Writes `WITHDRAWN.json` and `WITHDRAWN.sig` into the export `id` (each atomically replaced; the same
/// withdrawal always gives the same bytes).
pub fn write_withdrawn(exports: &Path, signer: &CentreReceiptSigner, id: &[u8; 16], w: &Withdrawal) -> Result<()> {
    let dir = export_dir(exports, id);
    if !dir.is_dir() {
        return Err(CentreError::evidence(
            format!("export {}", dir.display()),
            "the forwarded report's export is missing",
        ));
    }
    let notice = Withdrawn {
        format: WITHDRAWN_FORMAT.to_owned(),
        export_id: hex::encode(id),
        provider: w.provider.clone(),
        report_id: hex::encode(w.report_id),
        withdrawal_id: hex::encode(w.withdrawal_id),
        reason: w.reason.clone(),
        at: w.at,
    };
    let json =
        serde_json::to_vec_pretty(&notice).map_err(|_| CentreError::Internal("WITHDRAWN.json cannot be written"))?;
    let sig = signer.sign_export(&json);
    let path = dir.join(WITHDRAWN_JSON);
    vouchsafe_files::write_secret(&path, &json).map_err(CentreError::io("withdrawal notice", &path))?;
    let path = dir.join(WITHDRAWN_SIG);
    vouchsafe_files::write_secret(&path, sig_text(&sig).as_bytes()).map_err(CentreError::io("withdrawal notice", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_id_is_labelled_and_deterministic() {
        let a = export_id(&[1; 32]);
        assert_eq!(a, export_id(&[1; 32]));
        assert_ne!(a, export_id(&[2; 32]));
        let h: [u8; 32] =
            Sha256::new().chain_update(b"vouchsafe/v1/centre/export-id").chain_update([1u8; 32]).finalize().into();
        assert_eq!(a[..], h[..16]);
    }

    #[test]
    fn sig_files_parse_strictly() {
        let s = [7u8; 64];
        assert_eq!(parse_sig(sig_text(&s).as_bytes()), Some(s));
        assert_eq!(parse_sig(hex::encode(s).as_bytes()), Some(s));
        assert_eq!(parse_sig(b"00"), None);
        assert_eq!(parse_sig(format!("{}\n\n", hex::encode(s)).as_bytes()), None);
    }
}
