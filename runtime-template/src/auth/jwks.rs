//! Public keys of an issuer, served from its JWKS URL.
//!
//! Keys are fetched once at start-up and again when they are older than their max age, or when
//! a token names a `kid` the set does not have (key rotation). Every fetch, whatever caused it,
//! is at most one per cooldown and one at a time (concurrent requests wait for the same fetch),
//! so a flood of tokens with made-up `kid`s cannot turn the gateway against the identity
//! provider. When a fetch fails, the keys fetched last keep serving until `max_stale_seconds`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::outbound::{max_age, OutboundClient};
use crate::config::JwksConfig;

/// The shortest max age a server's `Cache-Control` can ask for.
const MIN_MAX_AGE: Duration = Duration::from_secs(60);

/// A key from the set, with what it may verify.
#[derive(Clone)]
pub struct JwksKey {
    /// The decoding key.
    pub key: Arc<DecodingKey>,
    family: Family,
    algorithm: Option<Algorithm>,
}

impl JwksKey {
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        Family::of(alg) == Some(self.family) && self.algorithm.is_none_or(|a| a == alg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn of(alg: Algorithm) -> Option<Family> {
        Some(match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 => Family::P256,
            Algorithm::ES384 => Family::P384,
            Algorithm::EdDSA => Family::Ed25519,
            _ => return None,
        })
    }
}

struct KeySet {
    /// `(kid, key)` in document order. A set may hold keys of several families, with or
    /// without a `kid` (and even one `kid` per family), so keys are matched by `kid` *and*
    /// the token's algorithm, never by `kid` alone.
    keys: Vec<(Option<String>, JwksKey)>,
    fresh_until: Instant,
    stale_until: Instant,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
}

/// One issuer's JWKS endpoint and the keys last fetched from it.
pub struct JwksSource {
    url: String,
    client: OutboundClient,
    settings: JwksConfig,
    keys: RwLock<Option<Arc<KeySet>>>,
    fetch: tokio::sync::Mutex<FetchState>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("url", &self.url)
            .finish()
    }
}

/// Why no key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookupError {
    /// The set (fresh or stale) has no key for this `kid` and algorithm.
    NoMatchingKey,
    /// No keys at all: the JWKS server has not answered with a usable set.
    Unavailable,
}

impl JwksSource {
    /// A source for `url`; nothing is fetched until [`JwksSource::refresh`] or a lookup.
    pub fn new(url: String, client: OutboundClient, settings: JwksConfig) -> Self {
        Self {
            url,
            client,
            settings,
            keys: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The URL keys come from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many fetches were attempted (for tests and logs).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key that verifies a token with this `kid` and `alg`.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<JwksKey, KeyLookupError> {
        let now = Instant::now();
        let current = self.current();
        if let Some(set) = &current {
            if now < set.fresh_until {
                if let Some(key) = find(set, kid, alg) {
                    return Ok(key);
                }
            }
        }
        // Stale, missing, or an unknown kid: one fetch (if the cooldown allows), then look again.
        self.refresh_if_allowed(current.as_ref()).await;
        let now = Instant::now();
        match self.current() {
            Some(set) if now < set.stale_until => {
                find(&set, kid, alg).ok_or(KeyLookupError::NoMatchingKey)
            }
            _ => Err(KeyLookupError::Unavailable),
        }
    }

    /// Fetches the set now, subject to the cooldown (used at start-up to warm the cache).
    pub async fn refresh(&self) {
        let current = self.current();
        self.refresh_if_allowed(current.as_ref()).await;
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().ok().and_then(|keys| keys.clone())
    }

    async fn refresh_if_allowed(&self, seen: Option<&Arc<KeySet>>) {
        let mut state = self.fetch.lock().await;
        // Someone else fetched while we waited: use their result.
        let latest = self.current();
        let replaced = match (seen, &latest) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, Some(_)) => true,
            _ => false,
        };
        if replaced {
            return;
        }
        let cooldown = Duration::from_secs(self.settings.refetch_cooldown_seconds);
        if state
            .last_attempt
            .is_some_and(|last| last.elapsed() < cooldown)
        {
            return;
        }
        state.last_attempt = Some(Instant::now());
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch_set().await {
            Ok(set) => {
                tracing::debug!(url = %self.url, keys = set.keys.len(), "JWKS fetched");
                if let Ok(mut keys) = self.keys.write() {
                    *keys = Some(Arc::new(set));
                }
            }
            Err(reason) => {
                let serving = latest.is_some_and(|set| Instant::now() < set.stale_until);
                tracing::warn!(
                    url = %self.url,
                    "JWKS fetch failed ({reason}); {}",
                    if serving {
                        "the keys fetched last keep serving"
                    } else {
                        "tokens of this issuer are refused until a fetch succeeds"
                    }
                );
            }
        }
    }

    async fn fetch_set(&self) -> Result<KeySet, String> {
        let answer = self
            .client
            .get(
                &self.url,
                Duration::from_millis(self.settings.timeout_ms),
                self.settings.max_bytes,
            )
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status.is_success() {
            return Err(format!("status {}", answer.status));
        }
        let keys = parse_set(&answer.body)?;
        let configured = Duration::from_secs(self.settings.max_age_seconds);
        let max_age = max_age(&answer.headers)
            .map(|seconds| {
                Duration::from_secs(seconds)
                    .max(MIN_MAX_AGE)
                    .min(configured)
            })
            .unwrap_or(configured);
        let now = Instant::now();
        Ok(KeySet {
            keys,
            fresh_until: now + max_age,
            stale_until: now + max_age + Duration::from_secs(self.settings.max_stale_seconds),
        })
    }
}

fn find(set: &KeySet, kid: Option<&str>, alg: Algorithm) -> Option<JwksKey> {
    find_in(&set.keys, kid, alg)
}

/// The key of `keys` for a token with this `kid` and `alg`.
pub(crate) fn find_in(
    keys: &[(Option<String>, JwksKey)],
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<JwksKey> {
    let mut usable = keys
        .iter()
        .filter(|(key_id, key)| key.accepts(alg) && (kid.is_none() || key_id.as_deref() == kid))
        .map(|(_, key)| key);
    let first = usable.next()?;
    // With a kid, the first key of the token's family under it answers; without one, only an
    // unambiguous set can answer (one key of the token's family).
    (kid.is_some() || usable.next().is_none()).then(|| first.clone())
}

/// Parses a JWKS document, keeping the signature keys this gateway can use. Symmetric (`oct`)
/// keys are never taken from a JWKS. An unusable entry is skipped; a set with none is an error.
pub(crate) fn parse_set(body: &[u8]) -> Result<Vec<(Option<String>, JwksKey)>, String> {
    let document: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut keys = Vec::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        if let Some(key) = usable_key(&jwk) {
            keys.push((jwk.common.key_id.clone(), key));
        }
    }
    if keys.is_empty() {
        return Err("no usable signature key in the set".into());
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk) -> Option<JwksKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(ref u) if *u != PublicKeyUse::Signature
    ) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Family::P256,
            EllipticCurve::P384 => Family::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => Family::Ed25519,
            _ => return None,
        },
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(declared) => {
            let alg = key_algorithm(declared)?;
            if Family::of(alg) != Some(family) {
                return None;
            }
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    if !super::jwt::is_usable_key(&key) {
        return None;
    }
    Some(JwksKey {
        key: Arc::new(key),
        family,
        algorithm,
    })
}

fn key_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_keep_only_usable_signature_keys() {
        let body = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"sig","alg":"ES256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"lying","alg":"RS256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"nonsense"}
        ]}"#;
        let keys = parse_set(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0.as_deref(), Some("sig"));
        let key = &keys[0].1;
        assert!(key.accepts(Algorithm::ES256));
        assert!(!key.accepts(Algorithm::ES384));
        assert!(!key.accepts(Algorithm::HS256));
    }

    /// Found by the `jwks_document` fuzz target: an Ed25519 key shorter than 32 bytes made
    /// jsonwebtoken panic (slicing `[..32]`) when a token was checked against it. Such keys
    /// are now skipped when the set is read.
    #[test]
    fn short_ed25519_keys_are_skipped_and_never_reach_verification() {
        let body = br#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "11qYAYKxURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "long", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoAAAA"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ok", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let keys = parse_set(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0.as_deref(), Some("ok"));
        // The fuzzer's input itself: parsed, looked up and checked without a panic.
        let crash = br#"{"keys": [{"kty": "RSA", "kid": "2026", "use": "sig", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps3aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl96", "kid": "2026", "use": "sig", "alg": null, "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStx_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}, {"kty": "OKP", "crv": "Ed25519", "kid": null, "x": "11qYAYKxURo"}]}"#;
        let _ = crate::fuzzing::jwks_document(crash, b"a.b", "AAAA");
        let ok = br#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        assert_eq!(crate::fuzzing::jwks_document(ok, b"a.b", "AAAA"), Ok(1));
    }

    #[test]
    fn garbage_and_empty_sets_are_errors() {
        for body in [
            &b"not json"[..],
            br#"{"keys":{}}"#,
            br#"{"keys":[]}"#,
            br#"[1,2]"#,
            br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
        ] {
            assert!(
                parse_set(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
