//! The blinded cuckoo table: server-side build and incremental updates, chunked distribution with a Merkle root,
//! and client-side verification and validation.
//!
//! * cuckoo placement: [`positions`], [`slot_count_for`];
//! * server side: [`BlindingKey`], [`TableConfig`], [`ServerTable`];
//! * distribution: [`TableChunk`], [`merkle_root`], [`TableManifest`], [`TableUpdate`];
//! * client side: [`TableDownload`], [`ClientTable`].

mod client;
mod cuckoo;
mod distribution;
mod server;

pub use client::{ClientTable, TableDownload};
pub use cuckoo::{positions, slot_count_for};
pub use distribution::{TableChunk, TableManifest, TableUpdate, merkle_root};
pub use server::{BlindingKey, ServerTable, TableConfig, UpdateCover};

use crate::error::{Error, InvalidInput, Result};

/// Default number of slots per distribution chunk.
pub const DEFAULT_CHUNK_SLOTS: u32 = 4096;
/// Largest chunk accepted.
pub const MAX_CHUNK_SLOTS: u32 = 1 << 16;
/// `items.iter().enumerate().map(f)`, on all cores with the `parallel` feature.
fn map_maybe_parallel<T: Sync, U: Send, F: Fn(usize, &T) -> U + Sync + Send>(items: &[T], f: F) -> Vec<U> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        items.par_iter().enumerate().with_min_len(64).map(|(i, t)| f(i, t)).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        items.iter().enumerate().map(|(i, t)| f(i, t)).collect()
    }
}

fn check_chunk_slots(chunk_slots: u32) -> Result<()> {
    if chunk_slots == 0 || chunk_slots > MAX_CHUNK_SLOTS {
        return Err(Error::Invalid(InvalidInput::Parameter { what: "chunk_slots must be in 1..=65536" }));
    }
    Ok(())
}
