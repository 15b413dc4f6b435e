//! Offline validation of signed JWTs — OAuth2 access tokens and WSO2 API keys — against
//! configured issuers.
//!
//! The rules that keep keys and algorithms from being confused: the issuer (from the `iss`
//! claim, read before verification only to pick the configuration) pins its key (a PEM file or
//! its JWKS URL) and allowed algorithms; the token's `alg` must be one of them and of the key's
//! family; `none` does not parse; tokens naming or carrying their own keys (`jku`, `x5u`, `jwk`,
//! `x5c` headers) or critical extensions (`crit`) are refused outright, so no token ever causes
//! a request to a place it chose; `exp` and `sub` are required, `nbf` and `aud` checked, with a
//! configurable leeway.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::Value;

use super::cache::{ApiRef, CredentialKind, Grant, KeyType, ThrottleClaims};
use super::jwks::JwksSource;
use super::outbound::OutboundClient;
use crate::config::{ApiKeyConfig, JwtIssuerConfig, SecurityConfig};

/// Longest a verified token without `exp` (an API key issued with validity -1) stays cached.
const NO_EXPIRY_CACHE_SECONDS: u64 = 900;

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Bad signature, format, issuer, audience, algorithm or header.
    Invalid,
    /// `exp` has passed (beyond the leeway).
    Expired,
}

/// Where an issuer's verification keys come from.
enum KeySource {
    /// The keys of a PEM file (one or more certificates or public keys, of any public-key
    /// families) or one HMAC secret, optionally pinned to one `kid`.
    Static {
        keys: Vec<DecodingKey>,
        kid: Option<String>,
    },
    /// The issuer's JWKS URL.
    Jwks(Arc<JwksSource>),
}

/// What a verified token of an issuer grants, beyond its validity.
struct GrantRules {
    kind: CredentialKind,
    scope_claim: String,
    consumer_key_claim: String,
    /// `subscribedAPIs` or `allowedAPIs`, when the issuer checks them.
    apis_claim: Option<&'static str>,
}

/// An issuer set up for verification.
struct Issuer {
    keys: KeySource,
    /// One validation per allowed algorithm, each listing only that algorithm: jsonwebtoken
    /// refuses the key when any listed algorithm is of another family than the key, so an
    /// allow-list spanning families (`RS256, ES256, EdDSA`) must never be passed as one.
    validations: Vec<(Algorithm, Validation)>,
    rules: GrantRules,
}

impl Issuer {
    /// The validation for a token signed with `alg`, when the issuer allows `alg`.
    fn validation_for(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find_map(|(allowed, validation)| (*allowed == alg).then_some(validation))
    }
}

/// The configured issuers, by `iss`.
pub struct JwtVerifier {
    issuers: HashMap<String, Issuer>,
}

/// An issuer configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{section} '{issuer}': {reason}")]
pub struct IssuerError {
    section: &'static str,
    issuer: String,
    reason: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Installs jsonwebtoken's crypto provider on ring ([`super::jwt_crypto::PROVIDER`]) once per
/// process.
pub fn install_crypto_provider() {
    let _ = super::jwt_crypto::PROVIDER.install_default();
}

/// Reads config-relative files and environment variables (injected for tests).
pub struct Sources<'a> {
    /// Makes a config-relative path absolute.
    pub resolve: &'a dyn Fn(&Path) -> PathBuf,
    /// Reads an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Fetches JWKS documents.
    pub client: &'a OutboundClient,
}

impl JwtVerifier {
    /// Builds the verifier of OAuth2 access tokens from `[[security.jwt_issuers]]`.
    pub fn new(config: &SecurityConfig, sources: &Sources<'_>) -> Result<Self, IssuerError> {
        install_crypto_provider();
        let mut issuers = HashMap::new();
        for entry in &config.jwt_issuers {
            let rules = GrantRules {
                kind: CredentialKind::Oauth2,
                scope_claim: entry.scope_claim.clone(),
                consumer_key_claim: entry.consumer_key_claim.clone(),
                apis_claim: entry.validate_subscription.then_some("subscribedAPIs"),
            };
            let issuer = build_issuer(entry, config, true, rules, sources).map_err(|reason| {
                IssuerError {
                    section: "security.jwt_issuers",
                    issuer: entry.issuer.clone(),
                    reason,
                }
            })?;
            issuers.insert(entry.issuer.clone(), issuer);
        }
        Ok(JwtVerifier { issuers })
    }

    /// Builds the verifier of WSO2 API keys from `[security.api_keys]` (keys may lack `exp`:
    /// WSO2 issues keys that never expire when their validity is -1).
    pub fn for_api_keys(
        api_keys: &ApiKeyConfig,
        config: &SecurityConfig,
        sources: &Sources<'_>,
    ) -> Result<Self, IssuerError> {
        install_crypto_provider();
        let entry = JwtIssuerConfig {
            issuer: api_keys.issuer.clone(),
            audience: api_keys.audience.clone(),
            certificate: Some(api_keys.certificate.clone()),
            hmac_secret_env: None,
            hmac_secret_file: None,
            algorithms: api_keys.algorithms.clone(),
            kid: None,
            scope_claim: "scope".into(),
            jwks_url: None,
            consumer_key_claim: "sub".into(),
            validate_subscription: false,
        };
        let rules = GrantRules {
            kind: CredentialKind::ApiKey,
            scope_claim: "scope".into(),
            consumer_key_claim: "sub".into(),
            apis_claim: api_keys.validate_allowed_apis.then_some("allowedAPIs"),
        };
        let issuer =
            build_issuer(&entry, config, false, rules, sources).map_err(|reason| IssuerError {
                section: "security.api_keys",
                issuer: entry.issuer.clone(),
                reason,
            })?;
        Ok(JwtVerifier {
            issuers: HashMap::from([(entry.issuer, issuer)]),
        })
    }

    /// True when no issuer is configured (every JWT will be refused).
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The JWKS sources of the issuers, to warm at start-up.
    pub fn jwks_sources(&self) -> Vec<Arc<JwksSource>> {
        self.issuers
            .values()
            .filter_map(|issuer| match &issuer.keys {
                KeySource::Jwks(source) => Some(source.clone()),
                KeySource::Static { .. } => None,
            })
            .collect()
    }

    /// Verifies `token` and returns what it grants.
    pub async fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(TokenError::Invalid);
        }
        // The issuer is read unverified only to choose the key that then verifies everything.
        let unverified: serde_json::Map<String, Value> =
            jsonwebtoken::dangerous::insecure_decode(token)
                .map(|data| data.claims)
                .map_err(|_| TokenError::Invalid)?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::Invalid)?;
        let issuer = self.issuers.get(iss).ok_or(TokenError::Invalid)?;
        // The token's own algorithm, which must be allowed, picks the key family.
        let validation = issuer
            .validation_for(header.alg)
            .ok_or(TokenError::Invalid)?;
        let decode = |key: &DecodingKey| {
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, validation).map_err(
                |err| match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                },
            )
        };
        let data = match &issuer.keys {
            KeySource::Static { keys, kid } => {
                if kid.is_some() && header.kid != *kid {
                    return Err(TokenError::Invalid);
                }
                // Each key of the token's family in turn (a PEM file may hold a P-256 and a
                // P-384 certificate, or an old and a new one during a rotation). Claims are
                // checked only after a valid signature, so the first verdict other than a
                // failed signature is final.
                let mut verdict = Err(TokenError::Invalid);
                for key in keys
                    .iter()
                    .filter(|key| key.family() == header.alg.family())
                {
                    verdict = decode(key);
                    if !matches!(verdict, Err(TokenError::Invalid)) {
                        break;
                    }
                }
                verdict?
            }
            KeySource::Jwks(source) => {
                let fetched = source
                    .key_for(header.kid.as_deref(), header.alg)
                    .await
                    .map_err(|_| TokenError::Invalid)?;
                decode(&fetched.key)?
            }
        };
        grant(&data.claims, &issuer.rules)
    }
}

fn grant(claims: &serde_json::Map<String, Value>, rules: &GrantRules) -> Result<Grant, TokenError> {
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(TokenError::Invalid);
    }
    let valid_until = match claims.get("exp") {
        Some(exp) => exp.as_u64().ok_or(TokenError::Invalid)?,
        None => super::now() + NO_EXPIRY_CACHE_SECONDS,
    };
    let key_type = match claims.get("keytype").and_then(Value::as_str) {
        Some(kind) if kind.eq_ignore_ascii_case("SANDBOX") => KeyType::Sandbox,
        _ => KeyType::Production,
    };
    let apis = rules
        .apis_claim
        .map(|claim| Arc::from(api_refs(claims.get(claim))));
    let consumer = match claims.get(&rules.consumer_key_claim) {
        Some(Value::String(text)) => Some(Arc::from(text.as_str())),
        Some(Value::Array(items)) => items.first().and_then(Value::as_str).map(Arc::from),
        _ => None,
    };
    Ok(Grant {
        valid_until,
        kind: rules.kind,
        scopes: Arc::from(scopes(claims, &rules.scope_claim)),
        key_type,
        apis,
        consumer,
        claims: None,
        throttling: throttle_claims(claims).map(Arc::new),
    })
}

/// What throttling reads from a WSO2 token: `application.{id,uuid,tier}`, `sub` and
/// `subscribedAPIs[].subscriptionTier`; `None` when the token names no tier at all.
fn throttle_claims(claims: &serde_json::Map<String, Value>) -> Option<ThrottleClaims> {
    let application = claims.get("application");
    let field = |name: &str| -> Option<String> {
        match application?.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let subscriptions: Vec<(ApiRef, String)> = claims
        .get("subscribedAPIs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some((
                ApiRef {
                    name: entry.get("name")?.as_str()?.to_string(),
                    version: entry.get("version")?.as_str()?.to_string(),
                },
                entry.get("subscriptionTier")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let application_tier = field("tier");
    if application_tier.is_none() && subscriptions.is_empty() {
        return None;
    }
    Some(ThrottleClaims {
        application_id: field("id").or_else(|| field("uuid")),
        application_tier,
        user: claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        subscriptions,
    })
}

/// `[{name, version, …}]` entries of `subscribedAPIs` / `allowedAPIs`; anything else is none.
fn api_refs(claim: Option<&Value>) -> Vec<ApiRef> {
    claim
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(ApiRef {
                name: entry.get("name")?.as_str()?.to_string(),
                version: entry.get("version")?.as_str()?.to_string(),
            })
        })
        .collect()
}

fn scopes(claims: &serde_json::Map<String, Value>, claim: &str) -> Vec<String> {
    let mut found = Vec::new();
    for name in [claim, "scp"] {
        match claims.get(name) {
            Some(Value::String(text)) => found.extend(text.split_whitespace().map(str::to_string)),
            Some(Value::Array(items)) => {
                found.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
    }
    found.sort();
    found.dedup();
    found
}

fn is_hmac(alg: &Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Parses the configured algorithm names of one issuer, refusing `none` and mixed families.
pub fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
    let algorithms = names
        .iter()
        .map(|name| {
            if name.eq_ignore_ascii_case("none") {
                return Err("algorithm 'none' is never accepted".to_string());
            }
            Algorithm::from_str(name).map_err(|_| format!("unknown algorithm {name:?}: use RS256/384/512, PS256/384/512, ES256/384, EdDSA or HS256/384/512"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if algorithms.is_empty() {
        return Err("algorithms is empty: list the algorithms this issuer signs with".into());
    }
    if !algorithms.iter().all(is_hmac) && algorithms.iter().any(is_hmac) {
        return Err(
            "algorithms mixes HMAC (HS*) with public-key algorithms: one issuer key has one family"
                .into(),
        );
    }
    Ok(algorithms)
}

/// True when `a` can be verified with a key that verifies `family`.
pub fn same_family(family: Algorithm, a: Algorithm) -> bool {
    let rsa = |x: Algorithm| {
        matches!(
            x,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        )
    };
    if rsa(family) {
        rsa(a)
    } else {
        a == family
    }
}

fn build_issuer(
    entry: &JwtIssuerConfig,
    config: &SecurityConfig,
    require_exp: bool,
    rules: GrantRules,
    sources: &Sources<'_>,
) -> Result<Issuer, String> {
    let algorithms = parse_algorithms(&entry.algorithms)?;
    let keys = if algorithms.iter().all(is_hmac) {
        let secret = match (&entry.hmac_secret_env, &entry.hmac_secret_file) {
            (Some(var), None) => (sources.env)(var).ok_or_else(|| format!("environment variable {var} (hmac_secret_env) is not set"))?,
            (None, Some(file)) => {
                let path = (sources.resolve)(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read hmac_secret_file {}: {e}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            }
            _ => return Err("HS* algorithms need exactly one of hmac_secret_env or hmac_secret_file (secrets never go in this file)".into()),
        };
        if secret.len() < 32 {
            return Err(
                "the HMAC secret is shorter than 32 bytes: use a longer random secret".into(),
            );
        }
        if entry.certificate.is_some() || entry.jwks_url.is_some() {
            return Err(
                "certificate or jwks_url is set for HS* algorithms: use them with public-key algorithms only"
                    .into(),
            );
        }
        KeySource::Static {
            keys: vec![DecodingKey::from_secret(secret.as_bytes())],
            kid: entry.kid.clone(),
        }
    } else {
        match (&entry.certificate, &entry.jwks_url) {
            (Some(_), Some(_)) => {
                return Err("set either certificate or jwks_url, not both".into());
            }
            (None, None) => {
                return Err("public-key algorithms need `certificate` (a PEM certificate or public key) or `jwks_url`".into());
            }
            (None, Some(url)) => {
                let uri: http::Uri = url
                    .parse()
                    .map_err(|_| format!("jwks_url {url:?} is not a URL"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(format!("jwks_url {url:?} must be an http(s) URL"));
                }
                if entry.kid.is_some() {
                    return Err("kid pins the key of a certificate; with jwks_url the token's kid selects the key".into());
                }
                KeySource::Jwks(Arc::new(JwksSource::new(
                    url.clone(),
                    sources.client.clone(),
                    config.jwks.clone(),
                )))
            }
            (Some(certificate), None) => {
                let path = (sources.resolve)(certificate);
                let keys = read_public_keys(&path)?;
                for alg in &algorithms {
                    if !keys.iter().any(|key| key.family() == alg.family()) {
                        return Err(format!(
                            "algorithm {alg:?} needs {} key, but certificate {} holds none: add the issuer's {alg:?} certificate or public key to that file, or remove {alg:?} from algorithms",
                            family_name(alg.family()),
                            path.display()
                        ));
                    }
                }
                KeySource::Static {
                    keys,
                    kid: entry.kid.clone(),
                }
            }
        }
    };
    let mut validation = Validation::new(algorithms[0]);
    validation.leeway = config.leeway_seconds;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.required_spec_claims = HashSet::from(["sub".to_string(), "iss".to_string()]);
    if require_exp {
        validation.required_spec_claims.insert("exp".to_string());
    }
    validation.set_issuer(&[entry.issuer.as_str()]);
    match &entry.audience {
        Some(audience) => {
            validation.set_audience(&[audience.as_str()]);
            validation.required_spec_claims.insert("aud".to_string());
        }
        None => validation.validate_aud = false,
    }
    let validations = algorithms
        .iter()
        .map(|alg| {
            let mut one = validation.clone();
            one.algorithms = vec![*alg];
            (*alg, one)
        })
        .collect();
    Ok(Issuer {
        keys,
        validations,
        rules,
    })
}

/// False for a key jsonwebtoken cannot verify with safely: an Ed25519 key must be exactly 32
/// bytes (jsonwebtoken 11 slices the first 32 bytes unchecked and panics on a shorter key, which
/// would take down the connection verifying a token). Every key, from a PEM file or a JWKS
/// document, passes here before it is kept.
pub fn is_usable_key(key: &DecodingKey) -> bool {
    key.family() != AlgorithmFamily::Ed
        || key.try_get_as_bytes().is_ok_and(|bytes| bytes.len() == 32)
}

/// How a key family is named in messages.
fn family_name(family: AlgorithmFamily) -> &'static str {
    match family {
        AlgorithmFamily::Rsa => "an RSA",
        AlgorithmFamily::Ec => "an EC (P-256 or P-384)",
        AlgorithmFamily::Ed => "an Ed25519",
        _ => "an HMAC",
    }
}

/// Reads every certificate and public key of a PEM file (`CERTIFICATE`, `PUBLIC KEY` or
/// `RSA PUBLIC KEY` blocks; RSA, EC P-256/P-384 and Ed25519 keys), in file order. Other blocks
/// are skipped; a file without any usable key is an error naming it.
pub fn read_public_keys(path: &Path) -> Result<Vec<DecodingKey>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read certificate {}: {e}", path.display()))?;
    parse_public_keys(&text, &path.display().to_string())
}

/// [`read_public_keys`] of PEM text; `name` says where it came from in messages.
pub fn parse_public_keys(text: &str, name: &str) -> Result<Vec<DecodingKey>, String> {
    let mut keys = Vec::new();
    for (index, block) in pem_blocks(text).enumerate() {
        let bytes = block.as_bytes();
        let key = DecodingKey::from_rsa_pem(bytes)
            .or_else(|_| DecodingKey::from_ec_pem(bytes))
            .or_else(|_| DecodingKey::from_ed_pem(bytes));
        match key {
            Ok(key) if !is_usable_key(&key) => {
                return Err(format!(
                    "certificate {}: PEM block {} holds an Ed25519 key that is not 32 bytes long",
                    name,
                    index + 1
                ))
            }
            Ok(key) => keys.push(key),
            Err(_) if !block.starts_with("-----BEGIN CERTIFICATE-----")
                && !block.contains("PUBLIC KEY-----") =>
            {
                // A private key or parameters next to the certificate: not ours to read.
            }
            Err(e) => {
                return Err(format!(
                    "certificate {}: PEM block {} is not an RSA, EC (P-256/P-384) or Ed25519 certificate or public key ({e})",
                    name,
                    index + 1
                ))
            }
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "certificate {} holds no PEM certificate or public key: give the issuer's certificate (-----BEGIN CERTIFICATE-----) or public key",
            name
        ));
    }
    Ok(keys)
}

/// The `-----BEGIN …-----` to `-----END …-----` blocks of a PEM text, each with its lines.
fn pem_blocks(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = text.lines().map(str::trim);
    std::iter::from_fn(move || {
        let begin = lines
            .by_ref()
            .find(|line| line.starts_with("-----BEGIN "))?;
        let mut block = format!("{begin}\n");
        for line in lines.by_ref() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                break;
            }
        }
        Some(block)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const ISS: &str = "https://idp.test/oauth2/token";
    const SECRET: &str = "a-test-hmac-secret-that-is-long-enough-for-hs256";

    #[test]
    fn throttle_claims_read_application_and_subscription_tiers() {
        let claims = json!({"sub": "alice", "application": {"id": 7, "tier": "Gold"},
            "subscribedAPIs": [{"name": "A", "version": "1", "subscriptionTier": "Silver"},
                               {"name": "B", "version": "1"}]});
        let c = throttle_claims(claims.as_object().unwrap()).unwrap();
        assert_eq!(c.application_id.as_deref(), Some("7"));
        assert_eq!(c.application_tier.as_deref(), Some("Gold"));
        assert_eq!(c.user, "alice");
        assert_eq!(c.subscriptions.len(), 1);
        assert_eq!(c.subscriptions[0].1, "Silver");
        assert!(throttle_claims(json!({"sub": "bob"}).as_object().unwrap()).is_none());
    }

    /// Also installs the crypto provider, so that no test signs (with jsonwebtoken's default)
    /// before a verifier installed ring's: every token's claims read the clock.
    fn now() -> u64 {
        install_crypto_provider();
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut base =
            json!({"iss": ISS, "sub": "alice", "exp": now() + 300, "scope": "read write"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    }

    struct Keys {
        _dir: tempfile::TempDir,
        verifier: JwtVerifier,
    }

    fn issuer(
        algorithms: &[&str],
        certificate: Option<&str>,
        hmac_env: Option<&str>,
    ) -> JwtIssuerConfig {
        JwtIssuerConfig {
            issuer: ISS.into(),
            audience: None,
            certificate: certificate.map(PathBuf::from),
            hmac_secret_env: hmac_env.map(str::to_string),
            hmac_secret_file: None,
            algorithms: algorithms.iter().map(|s| s.to_string()).collect(),
            kid: None,
            scope_claim: "scope".into(),
            jwks_url: None,
            consumer_key_claim: "aud".into(),
            validate_subscription: false,
        }
    }

    /// Runs the async verifier to completion (these tests need no network).
    trait Check {
        fn check(&self, token: &str) -> Result<Grant, TokenError>;
    }

    impl Check for JwtVerifier {
        fn check(&self, token: &str) -> Result<Grant, TokenError> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(self.verify(token))
        }
    }

    fn build(
        config: &SecurityConfig,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JwtVerifier, IssuerError> {
        let client = crate::auth::outbound::test_client();
        let resolve = |p: &Path| dir.join(p);
        JwtVerifier::new(
            config,
            &Sources {
                resolve: &resolve,
                env,
                client: &client,
            },
        )
    }

    fn verifier(entries: Vec<JwtIssuerConfig>, dir: &Path) -> JwtVerifier {
        let config = SecurityConfig {
            jwt_issuers: entries,
            ..SecurityConfig::default()
        };
        build(&config, dir, &|name| {
            (name == "JWT_SECRET").then(|| SECRET.to_string())
        })
        .unwrap()
    }

    fn hmac_keys() -> Keys {
        let dir = crate::temp_dir("jwt-hs");
        let verifier = verifier(
            vec![issuer(&["HS256"], None, Some("JWT_SECRET"))],
            dir.path(),
        );
        Keys {
            _dir: dir,
            verifier,
        }
    }

    fn hs256(claims: &serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// An EC or Ed25519 key pair from rcgen: (private key PEM, certificate PEM).
    fn rcgen_pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["idp.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (key.serialize_pem(), cert.pem())
    }

    fn b64(json: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    #[test]
    fn valid_hmac_token_grants_its_scopes() {
        let keys = hmac_keys();
        let grant = keys.verifier.check(&hs256(&claims(json!({})))).unwrap();
        assert_eq!(&*grant.scopes, &["read".to_string(), "write".to_string()]);
        let grant = keys
            .verifier
            .check(&hs256(&claims(json!({"scope": null, "scp": ["x", "y"]}))))
            .unwrap();
        assert_eq!(&*grant.scopes, &["x".to_string(), "y".to_string()]);
    }

    #[test]
    fn alg_none_in_every_spelling_is_refused() {
        let keys = hmac_keys();
        for alg in ["none", "None", "NONE", "nOnE"] {
            let token = format!(
                "{}.{}.",
                b64(&json!({"alg": alg, "typ": "JWT"})),
                b64(&claims(json!({})))
            );
            assert_eq!(
                keys.verifier.check(&token),
                Err(TokenError::Invalid),
                "{alg}"
            );
            let signed = format!("{token}c2ln");
            assert_eq!(
                keys.verifier.check(&signed),
                Err(TokenError::Invalid),
                "{alg}"
            );
        }
        let dir = crate::temp_dir("jwt-none");
        let config = SecurityConfig {
            jwt_issuers: vec![issuer(&["none"], None, None)],
            ..SecurityConfig::default()
        };
        assert!(
            build(&config, dir.path(), &|_| None).is_err(),
            "none cannot be configured"
        );
    }

    #[test]
    fn expiry_and_not_before_respect_the_leeway() {
        let keys = hmac_keys();
        let t = now();
        assert_eq!(
            keys.verifier
                .check(&hs256(&claims(json!({"exp": t - 120})))),
            Err(TokenError::Expired)
        );
        assert!(
            keys.verifier
                .check(&hs256(&claims(json!({"exp": t - 30}))))
                .is_ok(),
            "within the 60 s leeway"
        );
        assert_eq!(
            keys.verifier
                .check(&hs256(&claims(json!({"nbf": t + 120})))),
            Err(TokenError::Invalid)
        );
        assert!(keys
            .verifier
            .check(&hs256(&claims(json!({"nbf": t + 30}))))
            .is_ok());
        assert_eq!(
            keys.verifier.check(&hs256(&claims(json!({"exp": null})))),
            Err(TokenError::Invalid),
            "exp is required"
        );
        assert_eq!(
            keys.verifier.check(&hs256(&claims(json!({"sub": null})))),
            Err(TokenError::Invalid),
            "sub is required"
        );
    }

    #[test]
    fn issuer_audience_and_malformed_tokens_are_refused() {
        let dir = crate::temp_dir("jwt-aud");
        let mut entry = issuer(&["HS256"], None, Some("JWT_SECRET"));
        entry.audience = Some("gateway".into());
        let v = verifier(vec![entry], dir.path());
        assert!(v.check(&hs256(&claims(json!({"aud": "gateway"})))).is_ok());
        assert!(v
            .check(&hs256(&claims(json!({"aud": ["other", "gateway"]}))))
            .is_ok());
        assert_eq!(
            v.check(&hs256(&claims(json!({"aud": "other"})))),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            v.check(&hs256(&claims(json!({"aud": null})))),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            v.check(&hs256(&claims(json!({"iss": "https://evil/"})))),
            Err(TokenError::Invalid)
        );
        for junk in [
            "",
            "a.b.c",
            "!!!.???.###",
            "eyJhbGciOiJIUzI1NiJ9.not-json.sig",
            "onlyonepart",
        ] {
            assert_eq!(v.check(junk), Err(TokenError::Invalid), "{junk}");
        }
        let huge = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "HS256"})),
            "A".repeat(100_000),
            "B".repeat(100)
        );
        let started = std::time::Instant::now();
        assert_eq!(v.check(&huge), Err(TokenError::Invalid));
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
    }

    #[test]
    fn header_supplied_keys_are_refused() {
        let keys = hmac_keys();
        for field in ["jku", "x5u"] {
            let mut header = Header::new(Algorithm::HS256);
            match field {
                "jku" => header.jku = Some("http://127.0.0.1:1/jwks".into()),
                _ => header.x5u = Some("http://127.0.0.1:1/cert".into()),
            }
            let token = encode(
                &header,
                &claims(json!({})),
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap();
            assert_eq!(
                keys.verifier.check(&token),
                Err(TokenError::Invalid),
                "{field}"
            );
        }
        // An embedded jwk header, hand-made (signature valid for our secret, still refused).
        let header = json!({"alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}});
        let signing_input = format!("{}.{}", b64(&header), b64(&claims(json!({}))));
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(
            keys.verifier.check(&format!("{signing_input}.{signature}")),
            Err(TokenError::Invalid)
        );
    }

    /// A token with a hand-made header, validly signed with the test secret.
    fn hand_signed(header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let signing_input = format!("{}.{}", b64(header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{signing_input}.{signature}")
    }

    #[test]
    fn critical_extensions_embedded_certificates_and_malformed_parts_are_refused() {
        let keys = hmac_keys();
        let good = claims(json!({}));
        assert!(keys
            .verifier
            .check(&hand_signed(&json!({"alg": "HS256"}), &good))
            .is_ok());
        for header in [
            json!({"alg": "HS256", "crit": ["exp-ext"], "exp-ext": 1}),
            json!({"alg": "HS256", "x5c": ["MIIB"]}),
            json!(["HS256"]),
            json!({"alg": "HS256", "kid": 7}),
        ] {
            assert_eq!(
                keys.verifier.check(&hand_signed(&header, &good)),
                Err(TokenError::Invalid),
                "{header}"
            );
        }
        // Duplicate alg keys: whichever the parser keeps, it never verifies as none.
        let signing_input = format!(
            "{}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"alg":"HS256","alg":"none"}"#),
            b64(&good)
        );
        assert_eq!(
            keys.verifier.check(&format!("{signing_input}.")),
            Err(TokenError::Invalid)
        );
        // Claims that are not an object; a non-numeric exp.
        assert_eq!(
            keys.verifier
                .check(&hand_signed(&json!({"alg": "HS256"}), &json!([1, 2]))),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            keys.verifier.check(&hand_signed(
                &json!({"alg": "HS256"}),
                &claims(json!({"exp": "tomorrow"}))
            )),
            Err(TokenError::Invalid)
        );
        // Standard base64 (padding, + and /) where base64url is required, whitespace, 2 or 4 parts.
        let token = hs256(&good);
        let parts: Vec<&str> = token.split('.').collect();
        for bad in [
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}+/", parts[0], parts[1], parts[2]),
            format!("{} .{}.{}", parts[0], parts[1], parts[2]),
            format!("{}\n.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}.{}", parts[2]),
        ] {
            assert_eq!(keys.verifier.check(&bad), Err(TokenError::Invalid), "{bad}");
        }
        // Exact issuer match: a trailing slash or other case is another issuer.
        for iss in [format!("{ISS}/"), ISS.to_uppercase()] {
            assert_eq!(
                keys.verifier.check(&hs256(&claims(json!({"iss": iss})))),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn public_key_algorithms_are_pinned_to_their_family() {
        for (alg, name) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "ES256"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ES384"),
            (&rcgen::PKCS_ED25519, "EdDSA"),
        ] {
            let dir = crate::temp_dir(&format!("jwt-{name}"));
            let (private_pem, cert_pem) = rcgen_pair(alg);
            std::fs::write(dir.path().join("issuer.pem"), &cert_pem).unwrap();
            let v = verifier(vec![issuer(&[name], Some("issuer.pem"), None)], dir.path());
            let algorithm = Algorithm::from_str(name).unwrap();
            let key = match algorithm {
                Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
                _ => EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
            };
            let good = encode(&Header::new(algorithm), &claims(json!({})), &key).unwrap();
            assert!(v.check(&good).is_ok(), "{name}");
            // HS256 signed with the public certificate's bytes as the secret (key confusion).
            let confused = encode(
                &Header::new(Algorithm::HS256),
                &claims(json!({})),
                &EncodingKey::from_secret(cert_pem.as_bytes()),
            )
            .unwrap();
            assert_eq!(v.check(&confused), Err(TokenError::Invalid), "{name}");
            // A token signed by another key of the same kind.
            let (other_private, _) = rcgen_pair(alg);
            let other_key = match algorithm {
                Algorithm::EdDSA => EncodingKey::from_ed_pem(other_private.as_bytes()).unwrap(),
                _ => EncodingKey::from_ec_pem(other_private.as_bytes()).unwrap(),
            };
            let forged = encode(&Header::new(algorithm), &claims(json!({})), &other_key).unwrap();
            assert_eq!(v.check(&forged), Err(TokenError::Invalid), "{name}");
        }
    }

    #[test]
    fn rsa_tokens_verify_and_kid_is_enforced_when_configured() {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
        let dir = crate::temp_dir("jwt-rsa");
        std::fs::write(dir.path().join("issuer.pem"), &public_pem).unwrap();
        let mut entry = issuer(&["RS256", "PS256"], Some("issuer.pem"), None);
        entry.kid = Some("key-1".into());
        let v = verifier(vec![entry], dir.path());
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        for alg in [Algorithm::RS256, Algorithm::PS256] {
            let mut header = Header::new(alg);
            header.kid = Some("key-1".into());
            assert!(
                v.check(&encode(&header, &claims(json!({})), &key).unwrap())
                    .is_ok(),
                "{alg:?}"
            );
            header.kid = Some("key-2".into());
            assert_eq!(
                v.check(&encode(&header, &claims(json!({})), &key).unwrap()),
                Err(TokenError::Invalid),
                "mismatched kid"
            );
        }
        // RS512 is of the family but not configured.
        let mut header = Header::new(Algorithm::RS512);
        header.kid = Some("key-1".into());
        assert_eq!(
            v.check(&encode(&header, &claims(json!({})), &key).unwrap()),
            Err(TokenError::Invalid)
        );
        // HS256 with the RSA public key as the HMAC secret.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".into());
        let confused = encode(
            &header,
            &claims(json!({})),
            &EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.check(&confused), Err(TokenError::Invalid));
    }

    /// An RSA key pair made in the test: (private key, public key PEM).
    fn rsa_pair() -> (EncodingKey, String) {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
        (
            EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
            public_pem,
        )
    }

    /// Issue 10 item 17: an allow-list spanning key families (`RS256, PS256, ES256, ES384,
    /// EdDSA`) used to refuse every token, because all of them were handed to jsonwebtoken with
    /// one key. A PEM file holding one key per family now verifies each family's tokens.
    #[test]
    fn every_family_of_a_mixed_allow_list_verifies_against_its_own_pem_key() {
        let dir = crate::temp_dir("jwt-mixed");
        let (rsa_key, rsa_public) = rsa_pair();
        let (p256_private, p256_cert) = rcgen_pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (p384_private, p384_cert) = rcgen_pair(&rcgen::PKCS_ECDSA_P384_SHA384);
        let (ed_private, ed_cert) = rcgen_pair(&rcgen::PKCS_ED25519);
        // Odd but real: CRLF line ends, indentation and text between the blocks.
        let bundle = format!(
            "issuer keys\r\n{rsa_public}\n  {p256_cert}\nrotated 2026:\n{p384_cert}{}",
            ed_cert.replace('\n', "\r\n")
        );
        std::fs::write(dir.path().join("issuer.pem"), bundle).unwrap();
        let allowed = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];
        let v = verifier(vec![issuer(&allowed, Some("issuer.pem"), None)], dir.path());
        let signers = [
            (Algorithm::RS256, rsa_key.clone()),
            (Algorithm::PS256, rsa_key.clone()),
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(p256_private.as_bytes()).unwrap(),
            ),
            (
                Algorithm::ES384,
                EncodingKey::from_ec_pem(p384_private.as_bytes()).unwrap(),
            ),
            (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(ed_private.as_bytes()).unwrap(),
            ),
        ];
        for (alg, key) in &signers {
            let token = encode(&Header::new(*alg), &claims(json!({})), key).unwrap();
            assert!(v.check(&token).is_ok(), "{alg:?}");
            let expired = encode(
                &Header::new(*alg),
                &claims(json!({"exp": now() - 600})),
                key,
            )
            .unwrap();
            assert_eq!(v.check(&expired), Err(TokenError::Expired), "{alg:?}");
        }
        // The token's alg must be allowed even though a key of its family is there.
        let rs512 = encode(&Header::new(Algorithm::RS512), &claims(json!({})), &rsa_key).unwrap();
        assert_eq!(v.check(&rs512), Err(TokenError::Invalid));
        // A key of another family never verifies: the P-256 key's token relabelled ES384, an
        // Ed25519 signature relabelled ES256, and a foreign key of each family.
        let es256 = encode(
            &Header::new(Algorithm::ES256),
            &claims(json!({})),
            &signers[2].1,
        )
        .unwrap();
        let relabelled = format!(
            "{}.{}",
            b64(&json!({"typ": "JWT", "alg": "ES384"})),
            es256.split_once('.').unwrap().1
        );
        assert_eq!(v.check(&relabelled), Err(TokenError::Invalid));
        let eddsa = encode(
            &Header::new(Algorithm::EdDSA),
            &claims(json!({})),
            &signers[4].1,
        )
        .unwrap();
        let relabelled = format!(
            "{}.{}",
            b64(&json!({"typ": "JWT", "alg": "ES256"})),
            eddsa.split_once('.').unwrap().1
        );
        assert_eq!(v.check(&relabelled), Err(TokenError::Invalid));
        for (alg, scheme) in [
            (Algorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256),
            (Algorithm::ES384, &rcgen::PKCS_ECDSA_P384_SHA384),
            (Algorithm::EdDSA, &rcgen::PKCS_ED25519),
        ] {
            let (other, _) = rcgen_pair(scheme);
            let key = match alg {
                Algorithm::EdDSA => EncodingKey::from_ed_pem(other.as_bytes()).unwrap(),
                _ => EncodingKey::from_ec_pem(other.as_bytes()).unwrap(),
            };
            let forged = encode(&Header::new(alg), &claims(json!({})), &key).unwrap();
            assert_eq!(v.check(&forged), Err(TokenError::Invalid), "{alg:?}");
        }
        let (other_rsa, _) = rsa_pair();
        let forged = encode(
            &Header::new(Algorithm::PS256),
            &claims(json!({})),
            &other_rsa,
        )
        .unwrap();
        assert_eq!(v.check(&forged), Err(TokenError::Invalid));
    }

    #[test]
    fn an_allowed_algorithm_without_a_key_of_its_family_is_a_configuration_error() {
        let dir = crate::temp_dir("jwt-nofamily");
        let (_, rsa_public) = rsa_pair();
        std::fs::write(dir.path().join("rsa.pem"), &rsa_public).unwrap();
        std::fs::write(dir.path().join("empty.pem"), "no PEM here\n").unwrap();
        std::fs::write(
            dir.path().join("broken.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let make = |entry: JwtIssuerConfig| {
            let config = SecurityConfig {
                jwt_issuers: vec![entry],
                ..SecurityConfig::default()
            };
            build(&config, dir.path(), &|_| None)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let message = make(issuer(&["RS256", "ES256"], Some("rsa.pem"), None));
        assert!(
            message.contains("ES256 needs an EC (P-256 or P-384) key")
                && message.contains("rsa.pem")
                && message.contains("remove ES256"),
            "{message}"
        );
        let message = make(issuer(&["RS256"], Some("empty.pem"), None));
        assert!(message.contains("holds no PEM certificate"), "{message}");
        let message = make(issuer(&["RS256"], Some("broken.pem"), None));
        assert!(message.contains("PEM block 1 is not"), "{message}");
    }

    #[test]
    fn bad_issuer_configurations_are_refused() {
        let dir = crate::temp_dir("jwt-bad");
        let make = |entry: JwtIssuerConfig| {
            let config = SecurityConfig {
                jwt_issuers: vec![entry],
                ..SecurityConfig::default()
            };
            build(&config, dir.path(), &|_| Some("short".into()))
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(make(issuer(&["HS256", "RS256"], None, Some("X"))).contains("mixes"));
        assert!(make(issuer(&["HS256"], None, Some("X"))).contains("shorter than 32"));
        assert!(make(issuer(&["HS256"], None, None)).contains("hmac_secret_env"));
        assert!(make(issuer(&["RS256"], None, None)).contains("certificate"));
        assert!(make(issuer(&["RS256"], Some("missing.pem"), None)).contains("cannot read"));
        assert!(make(issuer(&["XS999"], None, None)).contains("unknown algorithm"));
    }
}
