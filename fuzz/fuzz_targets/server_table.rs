#![no_main]
//! Decoder must return an error, never panic; a value it accepts must re-encode to the same bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vouchsafe_protocol::table::ServerTable::from_secret_bytes(data);
});
