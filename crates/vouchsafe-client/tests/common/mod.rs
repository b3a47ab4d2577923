//! Shared test fixtures: a table built with the protocol crate, images from the phash fixtures, and (in `world`)
//! the signed order, release, signed manifest and witnessed log the server side of issue 8 produces.
#![allow(dead_code)]

pub mod world;

use std::io::Cursor;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio_stream::StreamExt as _;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint, Uri};
use vouchsafe_phash::{HashConfig, fixtures, hash_bytes};
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableConfig};

pub const SERVICE: &str = "messenger.example";
pub const ORDER: [u8; 16] = [0x0d; 16];

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn png(seed: u64, w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, w, h));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn primary_of(png: &[u8]) -> Vec<u8> {
    hash_bytes(&HashConfig::V1, png).unwrap().primary.to_canonical_bytes()
}

pub fn table_config(epoch: u64) -> TableConfig {
    TableConfig {
        epoch,
        order_id: ORDER,
        threshold: 3,
        synthetic_cap: 2,
        synthetic_rate: 0,
        ad_len: (vouchsafe_phash::AssociatedData::ENCODED_LEN + 2) as u16,
        chunk_slots: 8,
    }
}

/// A table holding `indicators` plus 20 random filler indicators.
pub fn build_table(epoch: u64, mut indicators: Vec<Vec<u8>>, seed: u64) -> ServerTable {
    let mut r = rng(seed);
    for i in 0..20u8 {
        indicators.push(vec![i, 0xaa, 0x55, (seed & 0xff) as u8]);
    }
    ServerTable::build(&table_config(epoch), BlindingKey::random(&mut r), indicators, &mut r).unwrap()
}

pub fn chunks(t: &ServerTable) -> Vec<(u32, Vec<u8>)> {
    (0..t.chunk_count()).map(|i| (i, t.chunk(i).unwrap().encode())).collect()
}

/// Serves `router` in memory and returns a channel to it, as tonic's mock example does (HTTP/2 over
/// `tokio::io::duplex`, fed to the server by `serve_with_incoming`, the client end given to
/// `Endpoint::connect_with_connector_lazy`). Every connection the channel makes gets a fresh pipe, so reconnects and
/// several clients work. Must be called inside a tokio runtime.
pub fn in_memory(router: Router) -> Channel {
    let (tx, rx) = tokio::sync::mpsc::channel::<tokio::io::DuplexStream>(16);
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
        router.serve_with_incoming(incoming).await.unwrap();
    });
    Endpoint::from_static("http://in-memory.invalid").connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let tx = tx.clone();
        async move {
            let (client, server) = tokio::io::duplex(1 << 20);
            tx.send(server).await.map_err(|_| std::io::Error::other("the in-memory server stopped"))?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(client))
        }
    }))
}
