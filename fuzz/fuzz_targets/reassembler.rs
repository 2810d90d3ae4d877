//! A sequence of text and binary messages fed to the binary reassembler never panics.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use realtime_server::protocol::socket::Reassembler;

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
