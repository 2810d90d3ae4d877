//! Any bytes as one Engine.IO text frame: decoding never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realtime_server::protocol::engine;

fuzz_target!(|data: &[u8]| {
    let _ = engine::decode_text_bytes(data);
});
