//! Signed test tokens (HS256 with a secret the test chooses).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

/// The issuer the e2e gateways are configured with.
pub const ISSUER: &str = "https://e2e.test/oauth2/token";
/// The HMAC secret, passed to gateways through [`SECRET_ENV`].
pub const SECRET: &str = "e2e-hmac-secret-of-more-than-thirty-two-bytes";
/// The environment variable gateways read the secret from.
pub const SECRET_ENV: &str = "E2E_JWT_SECRET";

/// The `[[security.jwt_issuers]]` block for [`ISSUER`].
pub fn issuer_config() -> String {
    format!("\n[[security.jwt_issuers]]\nissuer = \"{ISSUER}\"\nalgorithms = [\"HS256\"]\nhmac_secret_env = \"{SECRET_ENV}\"\n")
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token for `sub` with `scopes`, expiring `valid_for` seconds from now (negative: expired).
pub fn token(scopes: &str, valid_for: i64) -> String {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let exp = (now() as i64 + valid_for).max(0);
    let claims = serde_json::json!({"iss": ISSUER, "sub": "e2e-user", "exp": exp, "scope": scopes});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signing a token")
}
