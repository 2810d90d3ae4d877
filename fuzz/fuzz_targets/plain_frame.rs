//! Any string as a plain WebSocket frame (`GET /ws`): decoding never panics; a decoded
//! envelope re-encoded as the server would answer it decodes to the same type, payload and id.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/protocol/mod.rs"]
mod protocol;
use protocol::plain;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(env) = plain::decode(s, 32) else { return };
    let args: Vec<serde_json::Value> = env.payload.iter().cloned().collect();
    let enc = match &env.id {
        Some(id) => plain::encode_ack(id, &args),
        None => plain::encode_event(&env.kind, &args, None),
    };
    let text = std::str::from_utf8(&enc).expect("encoder writes UTF-8");
    let back = plain::decode(text, 128).expect("an encoded frame decodes");
    assert_eq!(back.payload, env.payload);
    if env.id.is_some() {
        assert_eq!(back.kind, "ack");
        assert_eq!(back.id, env.id);
    } else {
        assert_eq!(back.kind, env.kind);
    }
});
