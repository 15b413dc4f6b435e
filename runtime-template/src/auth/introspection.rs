//! Opaque access tokens, checked by RFC 7662 introspection at the key manager.
//!
//! The gateway authenticates to the key manager with basic auth, or with a bearer token it gets
//! by the client-credentials grant (kept until shortly before it expires). Answers are cached
//! by the token's hash: active ones until the earlier of their `exp` and `cache_seconds`,
//! inactive ones for `negative_cache_seconds`. A key manager that cannot be reached, answers
//! late, or answers something else than RFC 7662 JSON is reported as unavailable (503), never
//! as a valid or an invalid token.
//!
//! The same verifier serves Express Gateway's `oauth2-introspect` policy
//! ([`Introspector::express`]): a fixed `Authorization` value (`authorization_value`), no
//! negative cache, the answer read as EG 1.16 reads it ([`read_express_answer`]) and kept whole
//! (it becomes `req.user`). What the dialect makes of an unavailable endpoint is the policy's
//! business (EG: 401).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{header, HeaderMap, HeaderValue};
use serde::Deserialize;

use super::cache::{CacheKey, CredentialKind, Grant, KeyType, TokenCache};
use super::outbound::OutboundClient;
use crate::config::KeyManagerConfig;

/// Largest answer read from the key manager.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// A client-credentials token is renewed this long before it expires.
const TOKEN_RENEW_MARGIN: u64 = 30;

/// The outcome of asking about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspected {
    /// Active: what it grants.
    Active(Arc<Grant>),
    /// Not active (revoked, expired, unknown).
    Inactive,
}

/// The key manager could not give an answer.
#[derive(Debug, thiserror::Error)]
#[error("key manager {url}: {reason}")]
pub struct Unavailable {
    url: String,
    reason: String,
}

/// A key-manager setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("security.key_manager: {0}")]
pub struct KeyManagerError(String);

enum OwnCredentials {
    /// A fixed `Authorization` value, or none (EG's `authorization_value`).
    Fixed(Option<HeaderValue>),
    Basic(HeaderValue),
    ClientCredentials {
        token_url: String,
        basic: HeaderValue,
        token: tokio::sync::Mutex<Option<(HeaderValue, u64)>>,
    },
}

/// Introspects opaque tokens at one key manager.
pub struct Introspector {
    url: String,
    credentials: OwnCredentials,
    client: OutboundClient,
    timeout: Duration,
    cache_seconds: u64,
    negative_cache_seconds: u64,
    cache: TokenCache,
    negative: TokenCache,
    reading: Reading,
}

/// How an answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// RFC 7662 strictly ([`read_answer`]).
    Rfc7662,
    /// As Express Gateway 1.16 reads it ([`read_express_answer`]).
    Express,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("url", &self.url)
            .finish()
    }
}

#[derive(Deserialize)]
struct IntrospectionAnswer {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Introspector {
    /// Sets up introspection; the password comes from the environment or a file.
    pub fn new(
        config: &KeyManagerConfig,
        cache_entries: usize,
        client: OutboundClient,
        resolve: &dyn Fn(&Path) -> PathBuf,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, KeyManagerError> {
        for (name, url) in std::iter::once(("introspection_url", &config.introspection_url))
            .chain(config.token_url.iter().map(|u| ("token_url", u)))
        {
            check_url(url).map_err(|reason| KeyManagerError(format!("{name} {reason}")))?;
        }
        let password = match (&config.password_env, &config.password_file) {
            (Some(var), None) => env(var).ok_or_else(|| {
                KeyManagerError(format!(
                    "environment variable {var} (password_env) is not set"
                ))
            })?,
            (None, Some(file)) => {
                let path = resolve(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        KeyManagerError(format!(
                            "cannot read password_file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            }
            _ => return Err(KeyManagerError(
                "set exactly one of password_env or password_file (secrets never go in this file)"
                    .into(),
            )),
        };
        let basic = basic_header(&config.username, &password)?;
        let credentials = match &config.token_url {
            None => OwnCredentials::Basic(basic),
            Some(token_url) => OwnCredentials::ClientCredentials {
                token_url: token_url.clone(),
                basic,
                token: tokio::sync::Mutex::new(None),
            },
        };
        Ok(Self {
            url: config.introspection_url.clone(),
            credentials,
            client,
            timeout: Duration::from_millis(config.timeout_ms),
            cache_seconds: config.cache_seconds,
            negative_cache_seconds: config.negative_cache_seconds,
            cache: TokenCache::new(cache_entries),
            negative: TokenCache::new(cache_entries),
            reading: Reading::Rfc7662,
        })
    }

    /// Express Gateway's `oauth2-introspect`: `POST url` with `authorization` as the
    /// `Authorization` header (none when absent), an answer within `timeout`, active answers
    /// remembered `ttl_seconds` (never past their `exp`), inactive ones not remembered. The
    /// error says why `url` cannot be used.
    pub fn express(
        url: &str,
        authorization: Option<HeaderValue>,
        timeout: Duration,
        ttl_seconds: u64,
        cache_entries: usize,
        client: OutboundClient,
    ) -> Result<Self, String> {
        check_url(url)?;
        Ok(Self {
            url: url.to_string(),
            credentials: OwnCredentials::Fixed(authorization),
            client,
            timeout,
            cache_seconds: ttl_seconds,
            negative_cache_seconds: 0,
            cache: TokenCache::new(cache_entries),
            negative: TokenCache::new(0),
            reading: Reading::Express,
        })
    }

    /// Asks (or remembers) whether `token` is active.
    pub async fn introspect(&self, token: &str) -> Result<Introspected, Unavailable> {
        let now = super::now();
        let key = CacheKey::new(CredentialKind::Oauth2, token.as_bytes());
        if let Some(grant) = self.cache.get(key, now) {
            return Ok(Introspected::Active(grant));
        }
        if self.negative.get(key, now).is_some() {
            return Ok(Introspected::Inactive);
        }
        // Boxed: the exchange with the authorization server is a future of about 1.7 KB, and
        // a future is at least as large as the largest future it may await; a cached answer
        // (above) should not carry it (docs/benchmarks.md, "thirteenth pass").
        Box::pin(self.ask(token)).await
    }

    /// Asks the authorization server about `token` and caches the answer (a grant, or the
    /// token's inactivity for `negative_cache_seconds`).
    pub(super) async fn ask(&self, token: &str) -> Result<Introspected, Unavailable> {
        let key = CacheKey::new(CredentialKind::Oauth2, token.as_bytes());
        let mut headers = HeaderMap::new();
        if let Some(authorization) = self.authorization().await? {
            headers.insert(header::AUTHORIZATION, authorization);
        }
        let form = format!("token={}&token_type_hint=access_token", url_encode(token));
        let answer = self
            .client
            .post_form(&self.url, headers, form, self.timeout, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        if !answer.status.is_success() {
            // A 401/403 here means the gateway's own credentials are wrong: not the caller's fault.
            return Err(self.unavailable(format!("status {}", answer.status)));
        }
        let now = super::now();
        let grant = match self.reading {
            Reading::Rfc7662 => read_answer(&answer.body, now, self.cache_seconds),
            Reading::Express => read_express_answer(&answer.body, now, self.cache_seconds),
        }
        .map_err(|reason| self.unavailable(reason))?;
        let Some(grant) = grant else {
            if self.negative_cache_seconds > 0 {
                let marker = inactive_marker(now + self.negative_cache_seconds);
                self.negative.insert(key, Arc::new(marker), now);
            }
            return Ok(Introspected::Inactive);
        };
        let grant = Arc::new(grant);
        self.cache.insert(key, grant.clone(), now);
        Ok(Introspected::Active(grant))
    }

    fn unavailable(&self, reason: String) -> Unavailable {
        Unavailable {
            url: self.url.clone(),
            reason,
        }
    }

    async fn authorization(&self) -> Result<Option<HeaderValue>, Unavailable> {
        match &self.credentials {
            OwnCredentials::Fixed(value) => Ok(value.clone()),
            OwnCredentials::Basic(basic) => Ok(Some(basic.clone())),
            OwnCredentials::ClientCredentials {
                token_url,
                basic,
                token,
            } => {
                let mut held = token.lock().await;
                let now = super::now();
                if let Some((value, until)) = held.as_ref() {
                    if *until > now {
                        return Ok(Some(value.clone()));
                    }
                }
                let mut headers = HeaderMap::new();
                headers.insert(header::AUTHORIZATION, basic.clone());
                let answer = self
                    .client
                    .post_form(
                        token_url,
                        headers,
                        "grant_type=client_credentials".into(),
                        self.timeout,
                        MAX_ANSWER_BYTES,
                    )
                    .await
                    .map_err(|e| self.unavailable(format!("token endpoint: {e}")))?;
                if !answer.status.is_success() {
                    return Err(self.unavailable(format!(
                        "token endpoint {token_url} answered {}",
                        answer.status
                    )));
                }
                let parsed: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
                    self.unavailable(format!("token endpoint {token_url}: not a token ({e})"))
                })?;
                let value = HeaderValue::from_str(&format!("Bearer {}", parsed.access_token))
                    .map_err(|_| {
                        self.unavailable(format!("token endpoint {token_url}: unusable token"))
                    })?;
                let lifetime = parsed.expires_in.unwrap_or(300);
                let until = now + lifetime.saturating_sub(TOKEN_RENEW_MARGIN).max(1);
                *held = Some((value.clone(), until));
                Ok(Some(value))
            }
        }
    }
}

/// Reads an RFC 7662 answer received at `now` (seconds since the epoch): `Some(grant)` for an
/// active token (kept at most `cache_seconds`, never past its `exp`), `None` for an inactive or
/// expired one, an error (the reason) for anything that is not RFC 7662 JSON.
pub fn read_answer(body: &[u8], now: u64, cache_seconds: u64) -> Result<Option<Grant>, String> {
    let parsed: IntrospectionAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not RFC 7662 JSON ({e})"))?;
    let expired = parsed.exp.is_some_and(|exp| exp <= now);
    if !parsed.active || expired {
        return Ok(None);
    }
    let cache_until = now.saturating_add(cache_seconds);
    Ok(Some(Grant {
        valid_until: parsed.exp.map_or(cache_until, |exp| exp.min(cache_until)),
        kind: CredentialKind::Oauth2,
        scopes: Arc::from(
            parsed
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ),
        key_type: KeyType::Production,
        apis: None,
        consumer: parsed.client_id.or(parsed.username).map(Arc::from),
        claims: None,
        throttling: None,
    }))
}

/// Reads an introspection answer received at `now` as Express Gateway 1.16 does
/// (`lib/policies/oauth2-introspect`): active only when `active` is the JSON `true`; the
/// scopes are `scope`, else `scopes` (the first that is JavaScript-truthy), split on spaces,
/// and a truthy value that is not a string refuses the token (EG's `split` throws there); the
/// answer is kept whole as the grant's claims (`req.user`) and remembered at most
/// `ttl_seconds`, never past a numeric `exp`.
///
/// Where this differs from EG, on purpose: an answer whose `exp` has passed is inactive (EG
/// trusts `active` alone), and a body that is not a JSON object is an error (EG reads it as
/// `{}`, inactive); both end in the same 401 for the client.
pub fn read_express_answer(
    body: &[u8],
    now: u64,
    ttl_seconds: u64,
) -> Result<Option<Grant>, String> {
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a JSON object ({e})"))?;
    if claims.get("active") != Some(&serde_json::Value::Bool(true)) {
        return Ok(None);
    }
    // `exp - Date.now() / 1000` with a non-number is NaN: EG then keeps `ttl`.
    let exp = claims.get("exp").and_then(serde_json::Value::as_f64);
    if exp.is_some_and(|exp| exp <= now as f64) {
        return Ok(None);
    }
    let listed = ["scope", "scopes"]
        .iter()
        .filter_map(|name| claims.get(*name))
        .find(|value| js_truthy(value));
    let scopes: Vec<String> = match listed {
        None => Vec::new(),
        Some(serde_json::Value::String(text)) => text
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(_) => return Ok(None),
    };
    let ttl_until = now.saturating_add(ttl_seconds);
    let valid_until = match exp {
        // `exp` is later than `now` here; a fraction of a second is not remembered.
        Some(exp) if exp < ttl_until as f64 => exp.floor() as u64,
        _ => ttl_until,
    };
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    let consumer = text("client_id")
        .or_else(|| text("username"))
        .map(Arc::from);
    Ok(Some(Grant {
        valid_until,
        kind: CredentialKind::Oauth2,
        scopes: Arc::from(scopes),
        key_type: KeyType::Production,
        apis: None,
        consumer,
        claims: Some(Arc::new(claims)),
        throttling: None,
    }))
}

/// JavaScript truthiness of a JSON value.
fn js_truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Why `url` cannot be an introspection or token endpoint (an http(s) URL with a host).
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{url:?} must be an http(s) URL"));
    }
    Ok(())
}

fn inactive_marker(valid_until: u64) -> Grant {
    Grant {
        valid_until,
        kind: CredentialKind::Oauth2,
        scopes: Arc::from(Vec::new()),
        key_type: KeyType::Production,
        apis: None,
        consumer: None,
        claims: None,
        throttling: None,
    }
}

fn basic_header(user: &str, password: &str) -> Result<HeaderValue, KeyManagerError> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}").as_bytes());
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| KeyManagerError("username is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn express(body: &str, now: u64, ttl: u64) -> Option<Grant> {
        read_express_answer(body.as_bytes(), now, ttl).unwrap()
    }

    #[test]
    fn express_answers_are_read_as_eg_reads_them() {
        // Active only for the JSON `true`.
        for inactive in [
            r#"{"active":false}"#,
            r#"{"active":"true"}"#,
            r#"{"scope":"a"}"#,
            r#"{"active":1}"#,
        ] {
            assert!(express(inactive, 1000, 60).is_none(), "{inactive}");
        }
        let grant = express(
            r#"{"active":true,"scope":"read write","id":"c1"}"#,
            1000,
            60,
        )
        .unwrap();
        assert_eq!(&*grant.scopes, ["read", "write"]);
        assert_eq!(grant.valid_until, 1060);
        assert_eq!(grant.claims.as_ref().unwrap()["id"], "c1");
        // `scope` first, `scopes` when `scope` is falsy.
        let grant = express(r#"{"active":true,"scope":"","scopes":"x y"}"#, 1000, 60).unwrap();
        assert_eq!(&*grant.scopes, ["x", "y"]);
        let grant = express(r#"{"active":true,"scope":"a","scopes":"b"}"#, 1000, 60).unwrap();
        assert_eq!(&*grant.scopes, ["a"]);
        // A truthy non-string list of scopes makes EG's `split` throw: refused.
        assert!(express(r#"{"active":true,"scopes":["a"]}"#, 1000, 60).is_none());
        assert!(
            express(r#"{"active":true,"scope":0,"scopes":null}"#, 1000, 60)
                .is_some_and(|g| g.scopes.is_empty())
        );
        // ttl, never past exp; a past exp is inactive; a non-numeric exp keeps ttl.
        assert_eq!(
            express(r#"{"active":true,"exp":1010}"#, 1000, 60)
                .unwrap()
                .valid_until,
            1010
        );
        assert_eq!(
            express(r#"{"active":true,"exp":5000}"#, 1000, 60)
                .unwrap()
                .valid_until,
            1060
        );
        assert!(express(r#"{"active":true,"exp":1000}"#, 1000, 60).is_none());
        assert_eq!(
            express(r#"{"active":true,"exp":"soon"}"#, 1000, 60)
                .unwrap()
                .valid_until,
            1060
        );
        // Not a JSON object: an error (the caller reports the endpoint as unavailable).
        assert!(read_express_answer(b"<html>", 1000, 60).is_err());
        assert!(read_express_answer(b"[true]", 1000, 60).is_err());
    }

    #[test]
    fn form_values_are_escaped() {
        assert_eq!(url_encode("a b+c/=&"), "a%20b%2Bc%2F%3D%26");
        assert_eq!(url_encode("plain-Token_1.x~"), "plain-Token_1.x~");
    }
}
