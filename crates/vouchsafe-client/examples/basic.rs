//! The integration a messenger needs, end to end: open, sync on start and periodically, scan every image
//! attachment before it is sent, submit in the background.
//!
//! ```text
//! VOUCHSAFE_ENDPOINT=http://127.0.0.1:50051 VOUCHSAFE_TOKEN=... VOUCHSAFE_SERVICE=messenger.example \
//!   cargo run -p vouchsafe-client --example basic -- photo.jpg
//! ```

use std::time::{Duration, SystemTime};

use vouchsafe_client::{BearerToken, Client, ClientConfig, ClientError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("VOUCHSAFE_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    // The token comes from the messenger's own login; never log it (BearerToken's Debug is redacted).
    let token = BearerToken::new(std::env::var("VOUCHSAFE_TOKEN").unwrap_or_default());
    let service = std::env::var("VOUCHSAFE_SERVICE").unwrap_or_else(|_| "messenger.example".into());
    // One data directory per account, inside the app's private storage.
    let data_dir = std::env::temp_dir().join("vouchsafe-example-account");

    let mut config = ClientConfig::new(endpoint, token, data_dir, service);
    config.max_batch = 32;
    let client = Client::open(config).await?;

    // 1. Sync on start (and then periodically, e.g. every few hours and on network change).
    match client.sync().await {
        Ok(report) => println!("table: {:?}, epoch {}, version {}", report.kind, report.epoch, report.table_version),
        // No order: nothing is scanned and attachments are sent as usual.
        Err(ClientError::NoActiveOrder { reason }) => println!("no active order: {reason}"),
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
    for path in std::env::args().skip(1) {
        let attachment_ref = [0u8; 32];
        match client.scan(std::path::PathBuf::from(&path), attachment_ref, SystemTime::now()).await {
            // Never send `outcome.kind` anywhere: it is for local diagnostics only.
            Ok(outcome) => println!("{path}: voucher queued ({} waiting)", outcome.queued),
            Err(ClientError::NoActiveOrder { .. }) => println!("{path}: no active order, nothing to do"),
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
