//! `X-Signature-256: t=<unix seconds>,v1=<hex>` (docs/http.md): HMAC-SHA256 with the webhook
//! secret over `{t}.{METHOD}.{path and query}.{raw body}`, so a signature is bound to one
//! request at one time. Checks are constant time; replays are refused by the caller, which
//! remembers every verified `(t, v1)` for the window (see [`crate::db::replay`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far `t` may be from the server's clock, either way (seconds).
pub const WINDOW_S: i64 = 300;

/// Most `v1=` entries one header may carry (key rotation needs two or three).
const MAX_V1: usize = 8;

/// Why a signature header was refused (the 401's message says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No header.
    Missing,
    /// Not `t=<digits>,v1=<64 hex>[,v1=…]` (the old `sha256=` form included).
    Malformed,
    /// `t` more than [`WINDOW_S`] from now.
    Stale,
    /// No `v1` matches.
    Wrong,
}

impl Refusal {
    /// The message of the 401.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "missing X-Signature-256",
            Refusal::Malformed => "malformed X-Signature-256 (expected t=<unix seconds>,v1=<hex>)",
            Refusal::Stale => {
                "X-Signature-256 timestamp is more than 300 s from the server's clock"
            }
            Refusal::Wrong => "invalid X-Signature-256",
        }
    }
}

/// A header that verified: its time and the matching MAC (the replay key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed time (unix seconds).
    pub t: i64,
    /// The matching `v1`, lower-case hex.
    pub v1: String,
}

/// The parts of a header: `t` and the `v1` MACs (decoded).
fn parse(header: &str) -> Option<(i64, Vec<[u8; 32]>)> {
    let mut t = None;
    let mut macs = Vec::new();
    for (i, part) in header.trim().split(',').enumerate() {
        // spaces after commas are allowed
        let part = if i == 0 { part } else { part.trim_start() };
        let (k, v) = part.split_once('=')?;
        match k {
            "t" if t.is_none() && !v.is_empty() && v.len() <= 12 => {
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                t = Some(v.parse::<i64>().ok()?);
            }
            "v1" if v.len() == 64 && macs.len() < MAX_V1 => {
                let mut mac = [0u8; 32];
                hex::decode_to_slice(v, &mut mac).ok()?;
                macs.push(mac);
            }
            _ => return None,
        }
    }
    if macs.is_empty() {
        return None;
    }
    Some((t?, macs))
}

fn mac(secret: &[u8], t: i64, method: &str, target: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(method.as_bytes());
    mac.update(b".");
    mac.update(target.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks `header` for the request (`method`, `target` = path and query as sent, `body`)
/// at `now` (unix seconds) under any of `secrets`.
pub fn verify(
    secrets: &[&[u8]],
    method: &str,
    target: &str,
    body: &[u8],
    header: Option<&str>,
    now: i64,
) -> Result<Verified, Refusal> {
    let header = header.ok_or(Refusal::Missing)?;
    let (t, macs) = parse(header).ok_or(Refusal::Malformed)?;
    if (now - t).abs() > WINDOW_S {
        return Err(Refusal::Stale);
    }
    for secret in secrets {
        let expected = mac(secret, t, method, target, body);
        for m in &macs {
            if expected.clone().verify_slice(m).is_ok() {
                return Ok(Verified {
                    t,
                    v1: hex::encode(m),
                });
            }
        }
    }
    Err(Refusal::Wrong)
}

/// What a request this server sends to `url` signs as its target: the path, and `?` and
/// the query when there is one.
pub fn sign_target(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The `X-Signature-256` value of a request this server sends (`t` in seconds).
pub fn sign(secret: &[u8], t: i64, method: &str, target: &str, body: &[u8]) -> String {
    let m = mac(secret, t, method, target, body);
    format!("t={t},v1={}", hex::encode(m.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_556_800;

    fn check(header: &str, method: &str, target: &str, body: &[u8]) -> Result<Verified, Refusal> {
        verify(&[b"k"], method, target, body, Some(header), NOW)
    }

    #[test]
    fn binds_time_method_target_and_body() {
        let s = sign(b"k", NOW, "PUT", "/internal/users/a", b"{}");
        assert_eq!(
            check(&s, "PUT", "/internal/users/a", b"{}").map(|v| v.t),
            Ok(NOW)
        );
        assert_eq!(
            check(&s, "PUT", "/internal/users/b", b"{}"),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            check(&s, "DELETE", "/internal/users/a", b"{}"),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            check(&s, "PUT", "/internal/users/a", b"{ }"),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            check(&s, "PUT", "/internal/users/a?x=1", b"{}"),
            Err(Refusal::Wrong)
        );
        let other = verify(
            &[b"other"],
            "PUT",
            "/internal/users/a",
            b"{}",
            Some(&s),
            NOW,
        );
        assert_eq!(other, Err(Refusal::Wrong));
    }

    #[test]
    fn known_vector() {
        // echo -n '1764556800.PUT./internal/users/alice.{}' | openssl dgst -sha256 -hmac k
        let s = sign(b"k", NOW, "PUT", "/internal/users/alice", b"{}");
        let mut m = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        m.update(b"1764556800.PUT./internal/users/alice.{}");
        assert_eq!(
            s,
            format!("t={NOW},v1={}", hex::encode(m.finalize().into_bytes()))
        );
    }

    #[test]
    fn window() {
        for (t, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let s = sign(b"k", t, "POST", "/p", b"");
            let r = check(&s, "POST", "/p", b"");
            assert_eq!(r.is_ok(), ok, "t={t}");
            if !ok {
                assert_eq!(r, Err(Refusal::Stale));
            }
        }
    }

    #[test]
    fn grammar() {
        let s = sign(b"k", NOW, "POST", "/p", b"x");
        let v1 = s.split_once(",v1=").unwrap().1.to_owned();
        let wrong = "0".repeat(64);
        // spaces after commas, several v1 (rotation), the matching one anywhere
        assert!(check(&format!("t={NOW}, v1={v1}"), "POST", "/p", b"x").is_ok());
        assert!(check(&format!("t={NOW},v1={wrong}, v1={v1}"), "POST", "/p", b"x").is_ok());
        assert!(check(
            &format!("t={NOW},v1={}", v1.to_uppercase()),
            "POST",
            "/p",
            b"x"
        )
        .is_ok());
        for bad in [
            format!("sha256={v1}"),
            format!("v1={v1}"),
            format!("t={NOW}"),
            format!("t=,v1={v1}"),
            format!("t=-5,v1={v1}"),
            format!("t=1e9,v1={v1}"),
            format!("t={NOW},v1={}", &v1[..62]),
            format!("t={NOW},v1={v1},x=1"),
            format!("t={NOW},t={NOW},v1={v1}"),
            format!("t={NOW} ,v1={v1}"),
            format!("t={NOW},v1={}zz", &v1[..62]),
            String::new(),
        ] {
            assert_eq!(
                check(&bad, "POST", "/p", b"x"),
                Err(Refusal::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&[b"k"], "POST", "/p", b"x", None, NOW),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn rotation_keys() {
        let s = sign(b"new", NOW, "POST", "/p", b"");
        assert!(verify(&[b"old", b"new"], "POST", "/p", b"", Some(&s), NOW).is_ok());
    }
}
