//! A sequence of text and binary messages fed to the binary reassembler never panics.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

// The protocol layer is pure (no I/O, no actix): its source is compiled in directly, so the
// fuzz build needs only its four small dependencies, not the whole server.
#[allow(dead_code, unused_imports)]
#[path = "../../src/protocol/mod.rs"]
mod protocol;
use protocol::socket::Reassembler;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::default();
    // Records separated by 0xff; a record starting with 0 is binary, otherwise text.
    for rec in data.split(|b| *b == 0xff) {
        match rec.split_first() {
            Some((0, rest)) => {
                let _ = r.push_binary(Bytes::copy_from_slice(rest));
            }
            _ => {
                if let Ok(s) = std::str::from_utf8(rec) {
                    let _ = r.push_text(s);
                }
            }
        }
    }
});
