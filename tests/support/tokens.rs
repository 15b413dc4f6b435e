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

/// An HS256 token of `claims` signed with `secret` (Express Gateway `jwt` steps).
pub fn hs256(claims: &serde_json::Value, secret: &str) -> String {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signing a token")
}

/// An ES256 issuer made in the test: its signing key and the JWKS document that publishes
/// the public key under `kid`.
pub struct EcIssuer {
    key: EncodingKey,
    /// The key id.
    pub kid: String,
    /// `{"keys":[…]}` with the public key.
    pub jwks: String,
}

impl EcIssuer {
    /// A fresh P-256 key pair.
    pub fn new(kid: &str) -> EcIssuer {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generating a P-256 key");
        let raw = pair.public_key_raw();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        }]})
        .to_string();
        EcIssuer {
            key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("an EC key"),
            kid: kid.to_string(),
            jwks,
        }
    }

    /// A token of `issuer` with `claims` (plus `exp` in five minutes unless given).
    pub fn token(&self, issuer: &str, mut claims: serde_json::Value) -> String {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        claims["iss"] = issuer.into();
        if claims.get("exp").is_none() {
            claims["exp"] = (now() + 300).into();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.key).expect("signing a token")
    }
}

/// An `Authorization` value for basic authentication.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
