//! `GET /apikey`: signs WSO2-style API keys for basic-auth users — a JWT whose `allowedAPIs`
//! names the APIs it may call and whose `keytype` is PRODUCTION. The signing key is read from
//! a PEM file at start-up, never compiled into the binary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::jwt::{parse_algorithms, same_family};
use crate::config::ApiKeyIssuerConfig;
use crate::model::GatewayModel;

/// Signs API keys.
pub struct ApiKeyIssuer {
    key: EncodingKey,
    header: Header,
    issuer: String,
    audience: Option<String>,
    validity_seconds: Option<u64>,
    allowed: Vec<Value>,
    issued: AtomicU64,
}

impl std::fmt::Debug for ApiKeyIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyIssuer")
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// An issuer setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("security.apikey_issuer: {0}")]
pub struct ApiKeyIssuerError(String);

impl ApiKeyIssuer {
    /// Loads the signing key and works out `allowedAPIs` (the configured list, or every API).
    pub fn new(
        config: &ApiKeyIssuerConfig,
        model: &GatewayModel,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<Self, ApiKeyIssuerError> {
        let fail = ApiKeyIssuerError;
        if config.validity_seconds == 0 || config.validity_seconds < -1 {
            return Err(fail(
                "validity_seconds must be positive, or -1 for keys that never expire".into(),
            ));
        }
        super::jwt::install_crypto_provider();
        let algorithm = parse_algorithms(std::slice::from_ref(&config.algorithm)).map_err(fail)?[0];
        let path = resolve(&config.private_key);
        let pem = std::fs::read(&path)
            .map_err(|e| fail(format!("cannot read private_key {}: {e}", path.display())))?;
        let key = if same_family(Algorithm::RS256, algorithm) {
            EncodingKey::from_rsa_pem(&pem)
        } else {
            match algorithm {
                Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
                _ => {
                    return Err(fail(
                        "HMAC algorithms cannot sign API keys: use RS*, PS*, ES* or EdDSA".into(),
                    ))
                }
            }
        }
        .map_err(|e| {
            fail(format!(
                "private_key {} is not a PKCS#8 {algorithm:?} key ({e})",
                path.display()
            ))
        })?;
        let mut header = Header::new(algorithm);
        header.typ = Some("JWT".into());
        header.kid = config.kid.clone();
        let allowed: Vec<Value> = if config.apis.is_empty() {
            model
                .apis
                .iter()
                .map(|api| json!({"name": api.name, "version": api.version}))
                .collect()
        } else {
            config
                .apis
                .iter()
                .flat_map(|api| {
                    api.versions
                        .iter()
                        .map(move |version| json!({"name": api.name, "version": version.trim()}))
                })
                .collect()
        };
        let issuer = Self {
            key,
            header,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            validity_seconds: u64::try_from(config.validity_seconds)
                .ok()
                .filter(|v| *v > 0),
            allowed,
            issued: AtomicU64::new(0),
        };
        // Sign once now, so a key that cannot sign is a start-up error, not a 500 later.
        issuer
            .issue("start-up-check")
            .map_err(|e| fail(format!("private_key {} cannot sign: {e}", path.display())))?;
        Ok(issuer)
    }

    /// A signed API key for `user`.
    pub fn issue(&self, user: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = super::now();
        let serial = self.issued.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let jti: String = Sha256::digest(format!("{nanos}:{serial}:{}:{user}", std::process::id()))
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut claims = json!({
            "sub": user,
            "iss": self.issuer,
            "iat": now,
            "jti": jti,
            "keytype": "PRODUCTION",
            "allowedAPIs": self.allowed,
        });
        if let Some(audience) = &self.audience {
            claims["aud"] = json!(audience);
        }
        if let Some(validity) = self.validity_seconds {
            claims["exp"] = json!(now + validity);
        }
        jsonwebtoken::encode(&self.header, &claims, &self.key)
    }
}
