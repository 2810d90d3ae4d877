//! Any string as a Socket.IO packet: decoding never panics; a decoded event re-encodes to a
//! packet that decodes to the same thing.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The protocol layer is pure (no I/O, no actix): its source is compiled in directly, so the
// fuzz build needs only its four small dependencies, not the whole server.
#[allow(dead_code, unused_imports)]
#[path = "../../src/protocol/mod.rs"]
mod protocol;
use protocol::socket::{self, PacketKind};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(p) = socket::decode(s) else { return };
    if p.kind == PacketKind::Event {
        if let Some(serde_json::Value::Array(a)) = &p.data {
            if let Some(serde_json::Value::String(name)) = a.first() {
                let enc = socket::encode_event(&p.nsp, name, &a[1..], p.id, 0, None);
                let text = std::str::from_utf8(&enc[1..]).expect("encoder writes UTF-8");
                let q = socket::decode(text).expect("re-encoded packet decodes");
                assert_eq!(q.data, p.data);
                assert_eq!(q.id, p.id);
            }
        }
    }
});
