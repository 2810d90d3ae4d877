//! What the product scenarios need beside Socket.IO: HS256 tokens, signed `/internal/…`
//! calls over a small keep-alive HTTP/1.1 client.

use std::net::SocketAddr;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// An HS256 JWT for `sub`, valid for an hour.
pub fn token(secret: &str, sub: &str) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(serde_json::json!({"sub": sub, "role": "user", "exp": exp})
        .to_string()
        .as_bytes());
    let sig = b64(&hmac(
        secret.as_bytes(),
        format!("{head}.{body}").as_bytes(),
    ));
    format!("{head}.{body}.{sig}")
}

/// Reads header lines up to the empty one; answers the `Content-Length` (0 without one),
/// or `None` when the connection closed first. The start line must have been read.
pub async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<usize>> {
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some(len));
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection for signed internal calls.
pub struct Internal {
    stream: BufReader<TcpStream>,
    host: String,
    secret: Vec<u8>,
    /// The earliest `t` each signed request (method, target, body) used: the server refuses
    /// a signature twice, so a repeat is signed for an earlier second.
    signed: std::collections::HashMap<String, u64>,
}

impl Internal {
    pub async fn connect(addr: SocketAddr, secret: &str) -> Result<Internal, Error> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Internal {
            stream: BufReader::new(s),
            host: addr.to_string(),
            secret: secret.as_bytes().to_vec(),
            signed: std::collections::HashMap::new(),
        })
    }

    /// Sends a signed request; returns the status and body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), Error> {
        // X-Signature-256 (DESIGN 6): t=<unix seconds>,v1=HMAC over t.METHOD.target.body
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let request = format!("{method}./internal{path}.{body}");
        let t = match self.signed.get(&request) {
            Some(&earliest) if earliest + 250 > now => earliest - 1,
            _ => now,
        };
        self.signed.insert(request, t);
        let sig: String = hmac(
            &self.secret,
            format!("{t}.{method}./internal{path}.{body}").as_bytes(),
        )
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
        let req = format!(
            "{method} /internal{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Signature-256: t={t},v1={sig}\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let len = read_head(&mut self.stream)
            .await?
            .ok_or("connection closed in the answer's head")?;
        let mut buf = vec![0; len];
        self.stream.read_exact(&mut buf).await?;
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}
