//! Opaque access tokens, checked by RFC 7662 introspection at the key manager.
//!
//! The gateway authenticates to the key manager with basic auth, or with a bearer token it gets
//! by the client-credentials grant (kept until shortly before it expires). Answers are cached
//! by the token's hash: active ones until the earlier of their `exp` and `cache_seconds`,
//! inactive ones for `negative_cache_seconds`. A key manager that cannot be reached, answers
//! late, or answers something else than RFC 7662 JSON is reported as unavailable (503), never
//! as a valid or an invalid token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{header, HeaderMap, HeaderValue};
use serde::Deserialize;

use super::cache::{digest, CredentialKind, Grant, KeyType, TokenCache};
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
    Active(Grant),
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

enum Credentials {
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
    credentials: Credentials,
    client: OutboundClient,
    timeout: Duration,
    cache_seconds: u64,
    negative_cache_seconds: u64,
    cache: TokenCache,
    negative: TokenCache,
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
            let uri: http::Uri = url
                .parse()
                .map_err(|_| KeyManagerError(format!("{name} {url:?} is not a URL")))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(KeyManagerError(format!(
                    "{name} {url:?} must be an http(s) URL"
                )));
            }
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
            None => Credentials::Basic(basic),
            Some(token_url) => Credentials::ClientCredentials {
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
        })
    }

    /// Asks (or remembers) whether `token` is active.
    pub async fn introspect(&self, token: &str) -> Result<Introspected, Unavailable> {
        let now = super::now();
        let key = digest(CredentialKind::Oauth2, token);
        if let Some(grant) = self.cache.get(&key, now) {
            return Ok(Introspected::Active(grant));
        }
        if self.negative.get(&key, now).is_some() {
            return Ok(Introspected::Inactive);
        }
        let authorization = self.authorization().await?;
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, authorization);
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
        let grant = read_answer(&answer.body, now, self.cache_seconds)
            .map_err(|reason| self.unavailable(reason))?;
        let Some(grant) = grant else {
            self.negative
                .insert(key, inactive_marker(now + self.negative_cache_seconds), now);
            return Ok(Introspected::Inactive);
        };
        self.cache.insert(key, grant.clone(), now);
        Ok(Introspected::Active(grant))
    }

    fn unavailable(&self, reason: String) -> Unavailable {
        Unavailable {
            url: self.url.clone(),
            reason,
        }
    }

    async fn authorization(&self) -> Result<HeaderValue, Unavailable> {
        match &self.credentials {
            Credentials::Basic(basic) => Ok(basic.clone()),
            Credentials::ClientCredentials {
                token_url,
                basic,
                token,
            } => {
                let mut held = token.lock().await;
                let now = super::now();
                if let Some((value, until)) = held.as_ref() {
                    if *until > now {
                        return Ok(value.clone());
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
                Ok(value)
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
        throttling: None,
    }))
}

fn inactive_marker(valid_until: u64) -> Grant {
    Grant {
        valid_until,
        kind: CredentialKind::Oauth2,
        scopes: Arc::from(Vec::new()),
        key_type: KeyType::Production,
        apis: None,
        consumer: None,
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

    #[test]
    fn form_values_are_escaped() {
        assert_eq!(url_encode("a b+c/=&"), "a%20b%2Bc%2F%3D%26");
        assert_eq!(url_encode("plain-Token_1.x~"), "plain-Token_1.x~");
    }
}
