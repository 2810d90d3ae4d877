//! JWT authentication: key set-up, token verification (pure) and token extraction from a
//! Socket.IO handshake.
//!
//! Only the configured algorithms are accepted (default HS256 alone), so `none`, HS512 when
//! HS256 is configured, and HS/RS confusion are all `TOKEN_INVALID`. Nothing here touches the
//! database: whether the user exists and is active is the caller's next check.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use thiserror::Error;

use crate::config::AuthConfig;
use crate::socketio::{ConnectError, Handshake};

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY_S: u64 = 5;

/// A role as a token claims it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `user`.
    User,
    /// `admin`.
    Admin,
}

/// The claims we read; `sub` or `userId` names the user.
#[allow(missing_docs)] // the JWT claims of the same names (docs/security.md)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub role: Role,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user (`sub` or `userId`).
    pub user_id: String,
    /// The token's `email`.
    pub email: Option<String>,
    /// The role (the stored one once the users table was asked).
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Why a connect was refused; `code()` is the `connect_error` `data.code`.
#[allow(missing_docs)] // each variant's message says what
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("Authentication required")]
    Required,
    #[error("Token expired")]
    Expired,
    #[error("Invalid token")]
    Invalid,
    #[error("Account disabled")]
    Disabled,
}

impl AuthError {
    /// The `connect_error` `data.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Required => "AUTH_REQUIRED",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::Invalid => "TOKEN_INVALID",
            AuthError::Disabled => "ACCOUNT_DISABLED",
        }
    }

    /// The CONNECT_ERROR a client sees.
    pub fn connect_error(&self) -> ConnectError {
        ConnectError::new(self.to_string()).with_data(json!({ "code": self.code() }))
    }
}

/// A bad authentication set-up, found at start.
#[allow(missing_docs)] // each variant's message says what
#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("unknown JWT algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("HMAC and public-key algorithms cannot be mixed (algorithm confusion)")]
    MixedAlgorithms,
    #[error("a public-key algorithm needs auth.public_key_path")]
    MissingPublicKey,
    #[error("cannot read or create {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("invalid key: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
    #[error("minting needs an HMAC secret (HS256/HS384/HS512)")]
    CannotMint,
    #[error("the JWT secret must be at least {MIN_SECRET} bytes long")]
    WeakSecret,
}

/// Shortest HMAC secret accepted (JWT and webhooks): 256 bits, as HS256 wants.
pub const MIN_SECRET: usize = 32;

/// Verifies tokens (and mints them when an HMAC secret is configured).
#[derive(Clone)]
pub struct Verifier {
    decoding: DecodingKey,
    encoding: Option<(EncodingKey, Algorithm)>,
    validation: Validation,
    /// Longest accepted lifetime, seconds.
    max_lifetime_s: u64,
}

fn parse_alg(s: &str) -> Result<Algorithm, AuthSetupError> {
    s.parse::<Algorithm>()
        .map_err(|_| AuthSetupError::UnknownAlgorithm(s.to_owned()))
}

fn is_hmac(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The HMAC secret: configured, or kept in `secret_file` (generated on first start).
fn load_secret(cfg: &AuthConfig) -> Result<Vec<u8>, AuthSetupError> {
    if let Some(s) = cfg.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
        if s.len() < MIN_SECRET {
            return Err(AuthSetupError::WeakSecret);
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = Path::new(&cfg.secret_file);
    let io = |err| AuthSetupError::Io {
        path: cfg.secret_file.clone(),
        err,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().len() >= MIN_SECRET => return Ok(s.trim().as_bytes().to_vec()),
        Ok(s) if !s.trim().is_empty() => return Err(AuthSetupError::WeakSecret),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &secret).map_err(io)?;
    log::info!(
        "no JWT secret configured: generated one in {} (mint tokens with `realtime-server token`)",
        cfg.secret_file
    );
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, data: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &str) -> std::io::Result<()> {
    std::fs::write(path, data)
}

impl Verifier {
    /// Builds the verifier from configuration (may create the secret file).
    pub fn from_config(cfg: &AuthConfig) -> Result<Verifier, AuthSetupError> {
        let algs = cfg
            .algorithms
            .iter()
            .map(|a| parse_alg(a))
            .collect::<Result<Vec<_>, _>>()?;
        let algs = if algs.is_empty() {
            vec![Algorithm::HS256]
        } else {
            algs
        };
        let hmac = algs.iter().filter(|a| is_hmac(**a)).count();
        if hmac != 0 && hmac != algs.len() {
            return Err(AuthSetupError::MixedAlgorithms);
        }
        let (decoding, encoding) = if hmac > 0 {
            let secret = load_secret(cfg)?;
            (
                DecodingKey::from_secret(&secret),
                Some((EncodingKey::from_secret(&secret), algs[0])),
            )
        } else {
            let path = cfg
                .public_key_path
                .as_deref()
                .ok_or(AuthSetupError::MissingPublicKey)?;
            let pem = std::fs::read(path).map_err(|err| AuthSetupError::Io {
                path: path.to_owned(),
                err,
            })?;
            let key = match algs[0] {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem)?,
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem)?,
                _ => DecodingKey::from_rsa_pem(&pem)?,
            };
            (key, None)
        };
        let mut validation = Validation::new(algs[0]);
        validation.algorithms = algs;
        validation.leeway = LEEWAY_S;
        validation.validate_exp = true;
        // a token not valid yet is refused (TOKEN_INVALID), not accepted early
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        Ok(Verifier {
            decoding,
            encoding,
            validation,
            max_lifetime_s: crate::config::LimitsConfig::default().max_token_lifetime_s,
        })
    }

    /// Refuses tokens that live longer than `secs` (`exp − iat`, or `exp − now`).
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime_s = secs;
        self
    }

    /// Checks signature, algorithm and expiry; names the user.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?;
        let c = data.claims;
        let born = c.iat.unwrap_or_else(now_s);
        if c.exp.saturating_sub(born) > self.max_lifetime_s {
            return Err(AuthError::Invalid);
        }
        let user_id = c
            .sub
            .or(c.user_id)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::Invalid)?;
        Ok(Identity {
            user_id,
            email: c.email,
            role: c.role,
            exp: c.exp,
        })
    }

    /// Mints a token for local use (`realtime-server token`).
    pub fn mint(
        &self,
        user: &str,
        role: Role,
        email: Option<String>,
        ttl: std::time::Duration,
    ) -> Result<String, AuthSetupError> {
        let (key, alg) = self.encoding.as_ref().ok_or(AuthSetupError::CannotMint)?;
        let claims = Claims {
            sub: Some(user.to_owned()),
            user_id: None,
            email,
            role,
            exp: now_s() + ttl.as_secs(),
            iat: Some(now_s()),
            nbf: None,
        };
        Ok(jsonwebtoken::encode(&Header::new(*alg), &claims, key)?)
    }
}

/// Seconds since the epoch.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The CONNECT packet's auth `{token}`.
    Auth,
    /// `Authorization: Bearer`.
    Header,
    /// The `token` query parameter.
    Query,
}

/// The token of a handshake, in order: CONNECT auth `{token}`, `Authorization: Bearer`,
/// then (only when allowed) the `token` query parameter.
pub fn extract_token(hs: &Handshake, allow_query: bool) -> Option<(String, TokenSource)> {
    if let Some(t) = hs.auth.get("token").and_then(|t| t.as_str()) {
        return Some((t.to_owned(), TokenSource::Auth));
    }
    if let Some(h) = hs.header("authorization") {
        let mut parts = h.splitn(2, ' ');
        if let (Some(scheme), Some(t)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() {
                return Some((t.trim().to_owned(), TokenSource::Header));
            }
        }
    }
    if allow_query {
        if let Some(t) = hs.query("token").filter(|t| !t.is_empty()) {
            return Some((t.to_owned(), TokenSource::Query));
        }
    }
    None
}

/// Authenticates a handshake: the token's identity, or why not.
pub fn authenticate(
    verifier: &Verifier,
    hs: &Handshake,
    allow_query: bool,
) -> Result<Identity, AuthError> {
    let (token, source) = extract_token(hs, allow_query).ok_or(AuthError::Required)?;
    if source == TokenSource::Query {
        log::warn!("token passed in the query string (deprecated; use auth.token or a header)");
    }
    verifier.verify(&token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn verifier(algs: &[&str]) -> Verifier {
        let cfg = AuthConfig {
            jwt_secret: Some("test-secret-of-at-least-32-bytes!".into()),
            algorithms: algs.iter().map(|s| s.to_string()).collect(),
            ..AuthConfig::default()
        };
        Verifier::from_config(&cfg).unwrap()
    }

    fn sign(alg: Algorithm, claims: &serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn mints_and_verifies() {
        let v = verifier(&["HS256"]);
        let t = v
            .mint("u1", Role::Admin, None, Duration::from_secs(60))
            .unwrap();
        let id = v.verify(&t).unwrap();
        assert_eq!((id.user_id.as_str(), id.role), ("u1", Role::Admin));
    }

    #[test]
    fn user_id_claim_is_accepted() {
        let v = verifier(&["HS256"]);
        let t = sign(
            Algorithm::HS256,
            &json!({"userId": "u2", "role": "user", "exp": now_s() + 60}),
            "test-secret-of-at-least-32-bytes!",
        );
        assert_eq!(v.verify(&t).unwrap().user_id, "u2");
    }

    #[test]
    fn refuses_bad_tokens() {
        let v = verifier(&["HS256"]);
        let exp = now_s() + 60;
        let good = json!({"sub": "u1", "role": "user", "exp": exp});
        // expired (beyond the leeway)
        let old = json!({"sub": "u1", "role": "user", "exp": now_s() - 3600});
        assert_eq!(
            v.verify(&sign(
                Algorithm::HS256,
                &old,
                "test-secret-of-at-least-32-bytes!"
            )),
            Err(AuthError::Expired)
        );
        // wrong secret, other algorithm, garbage, no user, bad role, no exp
        for t in [
            sign(Algorithm::HS256, &good, "other"),
            sign(Algorithm::HS512, &good, "test-secret-of-at-least-32-bytes!"),
            "not.a.token".to_owned(),
            sign(
                Algorithm::HS256,
                &json!({"role": "user", "exp": exp}),
                "test-secret-of-at-least-32-bytes!",
            ),
            sign(
                Algorithm::HS256,
                &json!({"sub": "u1", "role": "root", "exp": exp}),
                "test-secret-of-at-least-32-bytes!",
            ),
            sign(
                Algorithm::HS256,
                &json!({"sub": "u1", "role": "user"}),
                "test-secret-of-at-least-32-bytes!",
            ),
        ] {
            assert_eq!(v.verify(&t), Err(AuthError::Invalid), "{t}");
        }
        // alg "none": header {"alg":"none"}, no signature
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                good.to_string()
            )
        );
        assert_eq!(v.verify(&none), Err(AuthError::Invalid));
    }

    #[test]
    fn mixed_algorithms_are_refused() {
        let cfg = AuthConfig {
            jwt_secret: Some("s".repeat(32)),
            algorithms: vec!["HS256".into(), "RS256".into()],
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::from_config(&cfg),
            Err(AuthSetupError::MixedAlgorithms)
        ));
    }

    #[test]
    fn token_sources_in_order() {
        let hs = |auth: serde_json::Value, headers: Vec<(&str, &str)>, query: Vec<(&str, &str)>| {
            Handshake {
                auth,
                request: Arc::new(crate::socketio::RequestInfo {
                    query: query
                        .into_iter()
                        .map(|(a, b)| (a.into(), b.into()))
                        .collect(),
                    headers: headers
                        .into_iter()
                        .map(|(a, b)| (a.into(), b.into()))
                        .collect(),
                    remote_addr: None,
                    client_ip: None,
                }),
            }
        };
        let h = hs(
            json!({"token": "A"}),
            vec![("authorization", "Bearer B")],
            vec![("token", "C")],
        );
        assert_eq!(
            extract_token(&h, true),
            Some(("A".into(), TokenSource::Auth))
        );
        let h = hs(
            json!({}),
            vec![("authorization", "Bearer B")],
            vec![("token", "C")],
        );
        assert_eq!(
            extract_token(&h, true),
            Some(("B".into(), TokenSource::Header))
        );
        let h = hs(json!({}), vec![], vec![("token", "C")]);
        assert_eq!(
            extract_token(&h, true),
            Some(("C".into(), TokenSource::Query))
        );
        assert_eq!(extract_token(&h, false), None);
    }

    #[test]
    fn lifetimes_and_not_before_are_checked() {
        let v = verifier(&["HS256"]);
        let s = "test-secret-of-at-least-32-bytes!";
        let now = now_s();
        let day = 24 * 3600;
        let token = |claims: serde_json::Value| sign(Algorithm::HS256, &claims, s);
        let ok = token(json!({"sub": "u", "role": "user", "iat": now, "exp": now + 30 * day}));
        assert!(v.verify(&ok).is_ok(), "30 days is the limit");
        for claims in [
            // longer than 30 days, with and without iat
            json!({"sub": "u", "role": "user", "iat": now, "exp": now + 30 * day + 60}),
            json!({"sub": "u", "role": "user", "exp": now + 100 * 365 * day}),
            // not valid before tomorrow
            json!({"sub": "u", "role": "user", "nbf": now + day, "exp": now + 2 * day}),
        ] {
            assert_eq!(
                v.verify(&token(claims.clone())),
                Err(AuthError::Invalid),
                "{claims}"
            );
        }
        let short = v.clone().with_max_lifetime(60);
        assert_eq!(short.verify(&ok), Err(AuthError::Invalid));
    }

    #[test]
    fn short_secrets_are_refused_at_start() {
        let cfg = AuthConfig {
            jwt_secret: Some("short".into()),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::from_config(&cfg),
            Err(AuthSetupError::WeakSecret)
        ));
    }
}
