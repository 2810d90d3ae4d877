//! `X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` checks (constant time).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// True when `header` is a valid signature of `body` under `secret`.
pub fn valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The header value for `body` (tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_signatures() {
        let s = sign(b"k", b"{}");
        assert!(valid(b"k", b"{}", Some(&s)));
        assert!(!valid(b"k", b"{ }", Some(&s)));
        assert!(!valid(b"other", b"{}", Some(&s)));
        assert!(!valid(b"k", b"{}", None));
        assert!(!valid(b"k", b"{}", Some("sha256=zz")));
        assert!(!valid(b"k", b"{}", Some(&s.replace("sha256=", "sha1="))));
    }
}
