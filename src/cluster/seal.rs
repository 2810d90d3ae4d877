//! What nodes put in Redis is authenticated with the cluster secret (docs/security.md), so a client
//! of that Redis without the secret can neither forge nor replay anything a node believes:
//!
//! - channel messages are `{mac}{boot}.{seq}.{json}`: the MAC (64 hex, HMAC-SHA256 over the
//!   rest) binds the sending process (`boot`, random at start) and a sequence number that
//!   only grows; [`Freshness`] refuses a message older than [`WINDOW_MS`] or not newer than
//!   the last one of its sender, so a captured message cannot be published again;
//! - stored values (node figures, recoverable sessions) are `{mac}{json}` with the MAC over
//!   the key too, so a value cannot be moved to another key;
//! - presence members carry a 64-bit tag bound to their set.
//!
//! Pure: no I/O.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits of a full MAC.
const MAC_HEX: usize = 64;
/// Hex digits of a presence member's tag.
const TAG_HEX: usize = 16;
/// A channel message published longer ago than this (or this far in the future) is refused.
pub const WINDOW_MS: i64 = 30_000;

/// The cluster secret, ready to seal and open.
#[derive(Clone)]
pub struct Sealer {
    keyed: Hmac<Sha256>,
}

impl Sealer {
    /// A sealer keyed with `secret` (at least 32 bytes, checked at start).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC takes keys of any length.
        let keyed = Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Sealer { keyed }
    }

    fn mac(&self, context: &str, data: &[u8]) -> Hmac<Sha256> {
        let mut m = self.keyed.clone();
        m.update(context.as_bytes());
        m.update(b".");
        m.update(data);
        m
    }

    fn hex_mac(&self, context: &str, data: &[u8]) -> String {
        hex::encode(self.mac(context, data).finalize().into_bytes())
    }

    /// `data` sealed for `context` (a Redis key, or `bus` for the channel).
    pub fn seal(&self, context: &str, data: &[u8]) -> Vec<u8> {
        let mut out = self.hex_mac(context, data).into_bytes();
        out.extend_from_slice(data);
        out
    }

    /// [`Sealer::seal`] for text.
    pub fn seal_str(&self, context: &str, data: &str) -> String {
        let mut out = self.hex_mac(context, data.as_bytes());
        out.push_str(data);
        out
    }

    /// The data of `sealed` when its MAC is right for `context`.
    pub fn open<'a>(&self, context: &str, sealed: &'a [u8]) -> Option<&'a [u8]> {
        let (mac, data) = sealed.split_at_checked(MAC_HEX)?;
        let mac = hex::decode(mac).ok()?;
        self.mac(context, data).verify_slice(&mac).ok()?;
        Some(data)
    }

    /// [`Sealer::open`] for text.
    pub fn open_str<'a>(&self, context: &str, sealed: &'a str) -> Option<&'a str> {
        let data = self.open(context, sealed.as_bytes())?;
        std::str::from_utf8(data).ok()
    }

    /// `member` of set `key` with its tag appended (`member|tag`).
    pub fn tag_member(&self, key: &str, member: &str) -> String {
        let mac = self.hex_mac(key, member.as_bytes());
        format!("{member}|{}", &mac[..TAG_HEX])
    }

    /// The member inside `tagged` when its tag is right for set `key`.
    pub fn untag_member<'a>(&self, key: &str, tagged: &'a str) -> Option<&'a str> {
        let (member, tag) = tagged.rsplit_once('|')?;
        let tag = hex::decode(tag).ok().filter(|t| t.len() == TAG_HEX / 2)?;
        self.mac(key, member.as_bytes())
            .verify_truncated_left(&tag)
            .ok()?;
        Some(member)
    }

    /// A channel frame: `json` from process `boot`, its `seq`-th message.
    pub fn seal_message(&self, boot: u64, seq: u64, json: &[u8]) -> Vec<u8> {
        let mut body = format!("{boot:016x}.{seq}.").into_bytes();
        body.extend_from_slice(json);
        self.seal("bus", &body)
    }

    /// The sender's process, sequence number and JSON of a channel frame with a right MAC.
    pub fn open_message<'a>(&self, frame: &'a [u8]) -> Option<(u64, u64, &'a [u8])> {
        let body = self.open("bus", frame)?;
        let mut parts = body.splitn(3, |b| *b == b'.');
        let boot = u64::from_str_radix(std::str::from_utf8(parts.next()?).ok()?, 16).ok()?;
        let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        Some((boot, seq, parts.next()?))
    }
}

/// Refuses channel messages seen before or too old: the last sequence number of every
/// sender process heard from within the window.
#[derive(Default)]
pub struct Freshness {
    last: HashMap<(String, u64), (u64, i64)>,
    checks: u64,
}

impl Freshness {
    /// Sender processes remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// None remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Whether message `seq` of process `boot` on node `origin`, published at
    /// `published_ms`, is new at `now_ms` (and remembers it when it is).
    pub fn accept(
        &mut self,
        origin: &str,
        boot: u64,
        seq: u64,
        published_ms: i64,
        now_ms: i64,
    ) -> bool {
        if (now_ms - published_ms).abs() > WINDOW_MS {
            return false;
        }
        self.checks += 1;
        if self.checks.is_multiple_of(4096) {
            // senders silent for two windows: anything of theirs is too old by now
            self.last.retain(|_, (_, at)| now_ms - *at <= 2 * WINDOW_MS);
        }
        match self.last.get_mut(&(origin.to_owned(), boot)) {
            Some((last, _)) if seq <= *last => false,
            Some(entry) => {
                *entry = (seq, now_ms);
                true
            }
            None => {
                self.last.insert((origin.to_owned(), boot), (seq, now_ms));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(b"cluster-secret-of-at-least-32-bytes!")
    }

    #[test]
    fn values_open_only_with_the_secret_and_their_key() {
        let s = sealer();
        let v = s.seal_str("rt:session:/:p1", r#"{"id":"a","rooms":["r"]}"#);
        assert_eq!(
            s.open_str("rt:session:/:p1", &v),
            Some(r#"{"id":"a","rooms":["r"]}"#)
        );
        assert_eq!(
            s.open_str("rt:session:/:p2", &v),
            None,
            "moved to another key"
        );
        let other = Sealer::new(b"another-secret-of-at-least-32-bytes");
        assert_eq!(other.open_str("rt:session:/:p1", &v), None);
        let mut forged = v.clone();
        forged.push('x');
        assert_eq!(s.open_str("rt:session:/:p1", &forged), None);
        assert_eq!(s.open_str("rt:session:/:p1", "short"), None);
        assert_eq!(s.open_str("rt:session:/:p1", ""), None);
    }

    #[test]
    fn members_carry_a_tag_of_their_set() {
        let s = sealer();
        let m = s.tag_member("rt:presence:/:lobby", "node-a|sock|user|with|bars");
        assert_eq!(
            s.untag_member("rt:presence:/:lobby", &m),
            Some("node-a|sock|user|with|bars")
        );
        assert_eq!(s.untag_member("rt:presence:/:other", &m), None);
        assert_eq!(
            s.untag_member("rt:presence:/:lobby", "node-a|sock|user"),
            None
        );
        assert_eq!(
            s.untag_member("rt:presence:/:lobby", "node-a|sock|user|0000000000000000"),
            None
        );
    }

    #[test]
    fn messages_carry_their_sender_and_sequence() {
        let s = sealer();
        let f = s.seal_message(0xabc, 42, br#"{"o":"n1"}"#);
        assert_eq!(s.open_message(&f), Some((0xabc, 42, &br#"{"o":"n1"}"#[..])));
        let mut bumped = f.clone();
        // the sequence number is under the MAC
        let at = MAC_HEX + 17;
        bumped[at] = b'9';
        assert_eq!(s.open_message(&bumped), None);
        assert_eq!(s.open_message(br#"{"o":"n1","k":"b"}"#), None, "unsealed");
    }

    #[test]
    fn a_message_is_accepted_once_and_only_while_fresh() {
        let mut f = Freshness::default();
        let now = 1_000_000;
        assert!(f.accept("a", 1, 1, now, now));
        assert!(!f.accept("a", 1, 1, now, now), "replayed");
        assert!(f.accept("a", 1, 2, now, now));
        assert!(!f.accept("a", 1, 1, now, now), "older");
        assert!(f.accept("a", 2, 1, now, now), "a restarted process");
        assert!(f.accept("b", 1, 1, now, now), "another node");
        assert!(!f.accept("a", 1, 3, now - WINDOW_MS - 1, now), "too old");
        assert!(
            !f.accept("a", 1, 4, now + WINDOW_MS + 1, now),
            "from the future"
        );
    }
}
