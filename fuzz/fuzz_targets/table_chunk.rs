#![no_main]
//! Decoder must return an error, never panic; a value it accepts must re-encode to the same bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = vouchsafe_protocol::table::TableChunk::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode must round-trip");
    }
});
