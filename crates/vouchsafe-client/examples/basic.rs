//! The integration a messenger needs, end to end: open, sync on start and periodically, scan every image
//! attachment before it is sent, submit in the background.
//!
//! The pins (authority, Centre, log, witnesses, quorum) are what the app ships; here they come from the
//! environment so that the example runs against any deployment.
//!
//! ```text
//! VOUCHSAFE_ENDPOINT=http://127.0.0.1:50051 VOUCHSAFE_TOKEN=... VOUCHSAFE_SERVICE=messenger.example \
//! VOUCHSAFE_AUTHORITY=<64 hex> VOUCHSAFE_CENTRE=<64 hex> VOUCHSAFE_LOG=<name+id+key> \
//! VOUCHSAFE_WITNESSES=<name+id+key>,<name+id+key> VOUCHSAFE_QUORUM=2 \
//!   cargo run -p vouchsafe-client --example basic -- photo.jpg
//! ```

use std::time::{Duration, SystemTime};

use vouchsafe_client::vouchsafe_log::{LogVerifier, WitnessVerifier};
use vouchsafe_client::vouchsafe_orders::{AuthorityKeyring, AuthorityPublicKey};
use vouchsafe_client::{BearerToken, Client, ClientConfig, ClientError, ScanContext, TrustAnchors};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn hex32(name: &str) -> Result<[u8; 32], Box<dyn std::error::Error>> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(env(name)?.trim(), &mut out).map_err(|_| format!("{name}: expected 64 hex digits"))?;
    Ok(out)
}

/// The keys the app pins. In a real app they are compiled in or shipped with it, never fetched from the server.
fn pins() -> Result<TrustAnchors, Box<dyn std::error::Error>> {
    let authorities = AuthorityKeyring::new([AuthorityPublicKey::from_bytes(&hex32("VOUCHSAFE_AUTHORITY")?)?])?;
    let log: LogVerifier = env("VOUCHSAFE_LOG")?.parse()?;
    let witnesses = env("VOUCHSAFE_WITNESSES")?
        .split(',')
        .map(|w| w.trim().parse())
        .collect::<Result<Vec<WitnessVerifier>, _>>()?;
    let quorum = env("VOUCHSAFE_QUORUM")?.parse()?;
    Ok(TrustAnchors::new(authorities, hex32("VOUCHSAFE_CENTRE")?, log, witnesses, quorum)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("VOUCHSAFE_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    // The token comes from the messenger's own login; never log it (BearerToken's Debug is redacted).
    let token = BearerToken::new(std::env::var("VOUCHSAFE_TOKEN").unwrap_or_default());
    let service = std::env::var("VOUCHSAFE_SERVICE").unwrap_or_else(|_| "messenger.example".into());
    // One data directory per account, inside the app's private storage.
    let data_dir = std::env::temp_dir().join("vouchsafe-example-account");

    let mut config = ClientConfig::new(endpoint, token, data_dir, service, pins()?);
    config.max_batch = 32;
    // The account's classes as the messenger knows them; an order excluding one of them is never applied.
    config.account_classes = vec![];
    let client = Client::open(config).await?;

    // 1. Sync on start (and then periodically, e.g. every few hours and on network change).
    match client.sync().await {
        Ok(report) => println!("table: {:?}, epoch {}, version {}", report.kind, report.epoch, report.table_version),
        // No order: nothing is scanned and attachments are sent as usual.
        Err(ClientError::NoActiveOrder { reason }) => println!("no active order: {reason}"),
        // The device's own checks refused the order, the manifest or the log: nothing is scanned. Report it.
        Err(e) if e.is_refusal() => println!("refused: {e}"),
        // Transient: keep using the table held (if any) and retry later.
        Err(e) if e.is_transient() => println!("sync later: {e}"),
        Err(e) => return Err(e.into()),
    }
    let periodic = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
                let _ = client.sync().await;
            }
        })
    };

    // 2. Before sending each image attachment: scan it. The attachment reference is the messenger's own opaque
    //    32-byte id of the attachment (e.g. a hash of its encrypted blob id).
    //    The context says which conversation the attachment belongs to (the order may cover only some).
    let conversation = ScanContext::new().component("chat").group("family-group-id");
    for path in std::env::args().skip(1) {
        let attachment_ref = [0u8; 32];
        match client.scan(std::path::PathBuf::from(&path), attachment_ref, SystemTime::now(), &conversation).await {
            // Never send `outcome.kind` anywhere: it is for local diagnostics only.
            Ok(outcome) => println!("{path}: voucher queued ({} waiting)", outcome.queued),
            Err(ClientError::NoActiveOrder { .. }) => println!("{path}: no active order, nothing to do"),
            Err(e) if e.is_refusal() => println!("{path}: not scanned ({e})"),
            Err(e) => println!("{path}: not scanned: {e}"),
        }
        // ... send the attachment end-to-end encrypted as usual, whatever happened above ...
    }

    // 3. In the background: submit the outbox. Failures leave everything in the outbox for the next attempt.
    match client.submit().await {
        Ok(r) => println!("submitted {} vouchers in {} batches, {} waiting", r.vouchers, r.batches, r.remaining),
        Err(e) if e.is_transient() => println!("submit later: {e}"),
        Err(e) => println!("submit failed: {e}"),
    }
    periodic.abort();
    Ok(())
}
