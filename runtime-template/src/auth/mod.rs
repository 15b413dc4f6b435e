//! Authentication and authorization of a request against its resource's [`Security`]:
//! find the credential the resource accepts, validate it, check scopes and API access, and
//! answer a failure the WSO2 way.
//!
//! - OAuth2 bearer tokens: signed JWTs offline ([`jwt`], keys from PEM files or [`jwks`]);
//!   opaque tokens by RFC 7662 introspection at the key manager ([`introspection`]).
//! - WSO2 API keys (signed JWTs with `allowedAPIs`) in the header, query parameter or cookie
//!   ([`cookie`]) the resource names, verified offline; [`apikey_issuer`] signs them for `GET /apikey`.
//! - Basic authentication against `[[security.users]]` ([`basic`]).

pub mod apikey_issuer;
pub mod basic;
pub mod cache;
pub mod cookie;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod jwt_crypto;
pub mod outbound;

#[cfg(test)]
mod remote_tests;
#[cfg(test)]
mod test_server;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::fault::{self, Fault};
use crate::model::{Api, ApiKeyLocation, AuthScheme, Security};
use apikey_issuer::ApiKeyIssuer;
use basic::{BasicError, BasicUsers};
use cache::{CacheKey, CredentialKind, Grant, TokenCache};
use introspection::{Introspected, Introspector};
use jwt::{JwtVerifier, TokenError};

/// A refused request: the fault to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The WSO2 fault.
    pub fault: Fault,
    /// Sent as `WWW-Authenticate`.
    pub challenge: Option<&'static str>,
}

const CHALLENGE: &str = "Bearer realm=\"micro-gw\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"micro-gw\", error=\"invalid_token\"";
const CHALLENGE_SCOPE: &str = "Bearer realm=\"micro-gw\", error=\"insufficient_scope\"";
const CHALLENGE_BASIC: &str = "Basic realm=\"micro-gw\"";

/// Validates credentials; built once at start-up.
#[derive(Debug)]
pub struct Authenticator {
    jwt: JwtVerifier,
    api_keys: Option<JwtVerifier>,
    introspector: Option<Introspector>,
    users: BasicUsers,
    apikey_issuer: Option<ApiKeyIssuer>,
    cache: TokenCache,
    max_token_bytes: usize,
}

/// The validators an [`Authenticator`] puts together.
#[derive(Debug)]
pub struct Validators {
    /// OAuth2 JWT issuers.
    pub jwt: JwtVerifier,
    /// The API-key issuer, when API keys are accepted.
    pub api_keys: Option<JwtVerifier>,
    /// The key manager, when opaque tokens are accepted.
    pub introspector: Option<Introspector>,
    /// Basic-auth users.
    pub users: BasicUsers,
    /// The `GET /apikey` signer, when served.
    pub apikey_issuer: Option<ApiKeyIssuer>,
}

/// A credential found in a request, by the scheme that accepts it.
enum Credential<'a> {
    /// The token after `Bearer ` ([`split_scheme`]'s bytes; visible ASCII by the time it is
    /// verified, see [`Authenticator::check_cached`]).
    Bearer(&'a [u8]),
    /// The part after `Basic ` (the same).
    Basic(&'a [u8]),
    ApiKey(std::borrow::Cow<'a, str>),
    /// The same credential offered twice with different values.
    Conflicting,
}

/// What [`Authenticator::check_cached`] decided without an `await`.
enum Checked<'a> {
    /// The answer: refused, let through without a credential, or granted from a cache.
    Done(Result<Option<Arc<Grant>>, Rejection>),
    /// A credential to verify.
    Verify(Credential<'a>),
}

impl Authenticator {
    /// Puts the validators and the verified-token cache together.
    pub fn new(validators: Validators, cache_entries: usize, max_token_bytes: usize) -> Self {
        Self {
            jwt: validators.jwt,
            api_keys: validators.api_keys,
            introspector: validators.introspector,
            users: validators.users,
            apikey_issuer: validators.apikey_issuer,
            cache: TokenCache::new(cache_entries),
            max_token_bytes,
        }
    }

    /// The JWT verifiers' JWKS sources, to warm at start-up.
    pub fn jwks_sources(&self) -> Vec<std::sync::Arc<jwks::JwksSource>> {
        let mut sources = self.jwt.jwks_sources();
        if let Some(api_keys) = &self.api_keys {
            sources.extend(api_keys.jwks_sources());
        }
        sources
    }

    /// Checks the request's credentials against `security` for a call to `api`. Returns what
    /// the credential grants, or `None` for an optional resource called without one.
    /// `auth_header` is `security.auth_header` parsed once, when the route was made
    /// ([`auth_header_name`]), rather than on every request.
    ///
    /// A credential verified before is answered from the cache without an `await`
    /// ([`Authenticator::check_cached`]); only the first sight of a credential (a signature to
    /// check, a key manager to ask, a password hash) runs the boxed, asynchronous part.
    pub async fn authenticate(
        &self,
        security: &Security,
        auth_header: Option<&HeaderName>,
        api: &Api,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<Grant>>, Rejection> {
        match self.check_cached(security, auth_header, api, headers, query) {
            Checked::Done(outcome) => outcome,
            Checked::Verify(credential) => {
                // Boxed: the verification (which may fetch keys or ask a key manager) is a
                // large future that would otherwise be part of every request's future.
                let grant = Box::pin(self.verify(credential)).await?;
                authorize(&grant, security, api)?;
                Ok(Some(grant))
            }
        }
    }

    /// [`Authenticator::authenticate`]'s answer when it needs no `await`: a refusal that
    /// verifies nothing, an optional resource called without a credential, or a credential
    /// found in a cache. `None` when the credential must be verified: then `authenticate`
    /// (which looks it up again, a miss being rare) gives the answer.
    pub fn authenticate_cached(
        &self,
        security: &Security,
        auth_header: Option<&HeaderName>,
        api: &Api,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Option<Result<Option<Arc<Grant>>, Rejection>> {
        match self.check_cached(security, auth_header, api, headers, query) {
            Checked::Done(outcome) => Some(outcome),
            Checked::Verify(_) => None,
        }
    }

    /// The part of [`Authenticator::authenticate`] that needs no `await`: finds the credential,
    /// refuses what is refused without verifying anything (two credentials, a missing or
    /// oversized one, a kind this gateway does not take) and answers a credential found in the
    /// cache. Anything else is [`Checked::Verify`].
    fn check_cached<'a>(
        &self,
        security: &Security,
        auth_header: Option<&HeaderName>,
        api: &Api,
        headers: &'a HeaderMap,
        query: Option<&'a str>,
    ) -> Checked<'a> {
        let mut auth_values = auth_header
            .map(|name| headers.get_all(name).iter())
            .into_iter()
            .flatten();
        let auth_value = auth_values.next();
        if auth_values.next().is_some() {
            // Two credentials: never let one of them win silently.
            return Checked::Done(Err(invalid()));
        }
        // The auth header's value is split without `scheme_value`'s check of its bytes: a
        // credential found in the cache is one verified before, whose bytes passed that check,
        // and this value differs from the one verified at most in its scheme's case and the
        // spaces and tabs around (so it passes too: the check of a 200-byte token is saved on
        // every cached request). Anything else is checked as `scheme_value` checks it.
        let unchecked = auth_value.and_then(|v| split_scheme(v.as_bytes()));
        let credential = find_credential(security, unchecked, headers, query);
        if let Some(grant) = credential
            .as_ref()
            .and_then(|c| self.cached_from_auth_header(c))
        {
            return Checked::Done(authorize(&grant, security, api).map(|()| Some(grant)));
        }
        let credential = match auth_value {
            Some(value) if unchecked.is_some() && !visible_ascii(value.as_bytes()) => {
                find_credential(security, None, headers, query)
            }
            _ => credential,
        };
        let Some(credential) = credential else {
            if auth_value.is_some() && uses_auth_header(security) {
                // A credential of a kind this resource does not accept.
                return Checked::Done(Err(invalid()));
            }
            if security.optional {
                return Checked::Done(Ok(None));
            }
            return Checked::Done(Err(Rejection {
                fault: fault::MISSING_CREDENTIALS,
                challenge: Some(first_challenge(security)),
            }));
        };
        let cached = match &credential {
            // Looked up above ([`Authenticator::cached_from_auth_header`]).
            Credential::Bearer(token) => {
                if token.len() > self.max_token_bytes {
                    return Checked::Done(Err(invalid()));
                }
                None
            }
            Credential::ApiKey(key) => {
                if key.len() > self.max_token_bytes {
                    return Checked::Done(Err(invalid()));
                }
                self.cache
                    .get(CacheKey::new(CredentialKind::ApiKey, key.as_bytes()), now())
            }
            Credential::Basic(encoded) => {
                if encoded.len() > self.max_token_bytes {
                    return Checked::Done(Err(basic_rejection(BasicError::Format)));
                }
                None
            }
            Credential::Conflicting => return Checked::Done(Err(invalid())),
        };
        match cached {
            Some(grant) => Checked::Done(authorize(&grant, security, api).map(|()| Some(grant))),
            None => Checked::Verify(credential),
        }
    }

    /// The grant of a bearer token or basic credentials from the auth header, found in the
    /// cache; `None` for another credential, one longer than `security.max_token_bytes` (not
    /// looked up) or one not found.
    ///
    /// Only a JWT (two dots) is ever kept under `Oauth2` in this cache: an opaque token's
    /// answer is in the introspector's own cache, so a hit needs no dot count.
    fn cached_from_auth_header(&self, credential: &Credential<'_>) -> Option<Arc<Grant>> {
        match credential {
            Credential::Bearer(token) if token.len() <= self.max_token_bytes => self
                .cache
                .get(CacheKey::new(CredentialKind::Oauth2, token), now()),
            Credential::Basic(encoded) if encoded.len() <= self.max_token_bytes => {
                self.users.cached(std::str::from_utf8(encoded).ok()?, now())
            }
            _ => None,
        }
    }

    /// Verifies a credential [`Authenticator::check_cached`] did not find in a cache (and
    /// caches what it grants).
    async fn verify(&self, credential: Credential<'_>) -> Result<Arc<Grant>, Rejection> {
        match credential {
            // Visible ASCII (`scheme_value`): never refused here.
            Credential::Bearer(token) => match std::str::from_utf8(token) {
                Ok(token) => self.oauth2(token).await,
                Err(_) => Err(invalid()),
            },
            Credential::ApiKey(key) => self.api_key(&key).await,
            Credential::Basic(encoded) => match std::str::from_utf8(encoded) {
                Ok(encoded) => self.basic(encoded).await,
                Err(_) => Err(basic_rejection(BasicError::Format)),
            },
            Credential::Conflicting => Err(invalid()),
        }
    }

    /// True when `[security.apikey_issuer]` is configured (`GET /apikey` is served).
    pub fn issues_api_keys(&self) -> bool {
        self.apikey_issuer.is_some()
    }

    /// `GET /apikey`: a signed API key for the basic-auth user in `headers`, or `None` when
    /// this gateway does not issue API keys.
    pub async fn issue_api_key(&self, headers: &HeaderMap) -> Option<Result<String, Rejection>> {
        let issuer = self.apikey_issuer.as_ref()?;
        let encoded = match headers.get(http::header::AUTHORIZATION).map(scheme_value) {
            Some(Some(("basic", value))) => match std::str::from_utf8(value) {
                Ok(value) => value,
                Err(_) => return Some(Err(basic_rejection(BasicError::Format))),
            },
            Some(_) => return Some(Err(basic_rejection(BasicError::Format))),
            None => {
                return Some(Err(Rejection {
                    fault: fault::MISSING_CREDENTIALS,
                    challenge: Some(CHALLENGE_BASIC),
                }))
            }
        };
        let grant = match self.basic(encoded).await {
            Ok(grant) => grant,
            Err(rejection) => return Some(Err(rejection)),
        };
        let user = grant.consumer.as_deref().unwrap_or_default();
        Some(issuer.issue(user).map_err(|err| {
            tracing::error!("cannot sign an API key: {err}");
            Rejection {
                fault: fault::INTERNAL_ERROR,
                challenge: None,
            }
        }))
    }

    async fn oauth2(&self, token: &str) -> Result<Arc<Grant>, Rejection> {
        if token.len() > self.max_token_bytes {
            return Err(invalid());
        }
        // A JWT has three dot-separated parts (two dots); anything else is an opaque token.
        if memchr::memchr_iter(b'.', token.as_bytes()).take(3).count() != 2 {
            let Some(introspector) = &self.introspector else {
                return Err(Rejection {
                    fault: fault::OPAQUE_TOKEN_UNSUPPORTED,
                    challenge: Some(CHALLENGE_INVALID),
                });
            };
            return match introspector.introspect(token).await {
                Ok(Introspected::Active(grant)) => Ok(grant),
                Ok(Introspected::Inactive) => Err(invalid()),
                Err(unavailable) => {
                    tracing::warn!("opaque token not checked: {unavailable}");
                    Err(Rejection {
                        fault: fault::KEY_MANAGER_UNAVAILABLE,
                        challenge: None,
                    })
                }
            };
        }
        self.verify_jwt(CredentialKind::Oauth2, &self.jwt, token)
            .await
    }

    async fn api_key(&self, key: &str) -> Result<Arc<Grant>, Rejection> {
        if key.len() > self.max_token_bytes {
            return Err(invalid());
        }
        let Some(verifier) = &self.api_keys else {
            tracing::debug!("an API key was offered but [security.api_keys] is not configured");
            return Err(invalid());
        };
        self.verify_jwt(CredentialKind::ApiKey, verifier, key).await
    }

    /// Checks a JWT's signature and claims (after [`Authenticator::check_cached`] missed it)
    /// and caches what it grants.
    async fn verify_jwt(
        &self,
        kind: CredentialKind,
        verifier: &JwtVerifier,
        token: &str,
    ) -> Result<Arc<Grant>, Rejection> {
        let now = now();
        match verifier.verify(token).await {
            Ok(grant) => {
                let grant = Arc::new(grant);
                self.cache
                    .insert(CacheKey::new(kind, token.as_bytes()), grant.clone(), now);
                Ok(grant)
            }
            Err(TokenError::Expired) => Err(Rejection {
                fault: fault::TOKEN_EXPIRED,
                challenge: Some(CHALLENGE_INVALID),
            }),
            Err(TokenError::Invalid) => Err(invalid()),
        }
    }

    async fn basic(&self, encoded: &str) -> Result<Arc<Grant>, Rejection> {
        if encoded.len() > self.max_token_bytes {
            return Err(basic_rejection(BasicError::Format));
        }
        self.users.verify(encoded).await.map_err(basic_rejection)
    }
}

/// Scopes (for OAuth2 tokens and users; API keys carry none) and the APIs a credential may call.
fn authorize(grant: &Grant, security: &Security, api: &Api) -> Result<(), Rejection> {
    if grant.kind != CredentialKind::ApiKey
        && !security
            .scopes
            .iter()
            .all(|needed| grant.scopes.iter().any(|s| s == needed))
    {
        return Err(Rejection {
            fault: fault::INVALID_SCOPE,
            challenge: Some(CHALLENGE_SCOPE),
        });
    }
    if let Some(apis) = &grant.apis {
        if !apis.iter().any(|a| a.matches(&api.name, &api.version)) {
            return Err(match grant.kind {
                CredentialKind::ApiKey => invalid(),
                _ => Rejection {
                    fault: fault::RESOURCE_FORBIDDEN,
                    challenge: None,
                },
            });
        }
    }
    Ok(())
}

/// `security.auth_header` as a header name; `None` when it is not one (then no header is
/// read as the credential, as a lookup by that text would find none).
pub fn auth_header_name(security: &Security) -> Option<HeaderName> {
    HeaderName::from_bytes(security.auth_header.as_bytes()).ok()
}

/// True when the resource reads its auth header at all (OAuth2 or basic); a resource that takes
/// only API keys leaves that header to the upstream.
pub fn uses_auth_header(security: &Security) -> bool {
    security
        .schemes
        .iter()
        .any(|s| matches!(s, AuthScheme::Oauth2 | AuthScheme::Basic))
}

/// The first credential, in the order of the resource's schemes, that the request carries.
/// `scheme` is the auth header's value split by [`split_scheme`].
fn find_credential<'a>(
    security: &Security,
    scheme: Option<(&'static str, &'a [u8])>,
    headers: &'a HeaderMap,
    query: Option<&'a str>,
) -> Option<Credential<'a>> {
    security.schemes.iter().find_map(|accepted| match accepted {
        AuthScheme::Oauth2 => match scheme {
            Some(("bearer", token)) => Some(Credential::Bearer(token)),
            _ => None,
        },
        AuthScheme::Basic => match scheme {
            Some(("basic", encoded)) => Some(Credential::Basic(encoded)),
            _ => None,
        },
        AuthScheme::ApiKey { location, name } => match location {
            ApiKeyLocation::Header => headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| Credential::ApiKey(v.trim().into())),
            ApiKeyLocation::Query => query_param(query?, name).map(Credential::ApiKey),
            ApiKeyLocation::Cookie => match cookie::find(headers, name) {
                cookie::Lookup::Absent => None,
                cookie::Lookup::Found(value) => Some(Credential::ApiKey(value)),
                cookie::Lookup::Conflict => Some(Credential::Conflicting),
            },
        },
    })
}

/// `("bearer" | "basic" | other, value)` of an `Authorization`-style header, scheme lowercased
/// only for the two schemes we know (RFC 9110: the scheme is case-insensitive). `None` when the
/// value is not visible ASCII and tabs (`HeaderValue::to_str`'s rule, [`visible_ascii`]), has no
/// space after the scheme, or nothing after it; spaces and tabs before the scheme and around the
/// value are dropped (the scheme ends at the first space: a tab there stays part of it). The
/// value is bytes, all visible ASCII or tabs: `str::from_utf8` of it cannot fail.
///
/// Its value is often a 200-byte token, so it works on bytes: the check is [`visible_ascii`]'s,
/// 32 bytes a step, instead of `to_str`'s byte a step, the scheme's end is found by a scan from
/// the front (the scheme is a few bytes), and the value stays bytes, since a cached token is
/// looked up by its bytes and only a token verified for the first time needs a `&str`
/// (callgrind, bench JWT route, 2026-12-04: 402 → 269 instructions a request). A request's
/// credential is found with [`split_scheme`] and checked only when the cache does not have it
/// ([`Authenticator::check_cached`]).
pub(crate) fn scheme_value(value: &HeaderValue) -> Option<(&'static str, &[u8])> {
    let bytes = value.as_bytes();
    if !visible_ascii(bytes) {
        return None;
    }
    split_scheme(bytes)
}

/// [`scheme_value`] without the check of the bytes: the scheme, and the value with the spaces
/// and tabs around it removed (only those: of visible ASCII and tabs, `trim_ascii` removes
/// no other byte, so on bytes that pass the check this is `scheme_value`).
fn split_scheme(bytes: &[u8]) -> Option<(&'static str, &[u8])> {
    let text = trim_blanks(bytes);
    let (scheme, rest) = if let Some(rest) = after_scheme(text, b"bearer") {
        ("bearer", rest)
    } else if let Some(rest) = after_scheme(text, b"basic") {
        ("basic", rest)
    } else {
        let space = text.iter().position(|&b| b == b' ')?;
        ("other", text.get(space + 1..)?)
    };
    let rest = trim_blanks(rest);
    (!rest.is_empty()).then_some((scheme, rest))
}

/// What follows `text`'s scheme and its space when the scheme is `name` (lowercase letters)
/// in any case ([`letters_in_any_case`]).
fn after_scheme<'a>(text: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let scheme = text.get(..name.len())?;
    if !letters_in_any_case(scheme, name) || text.get(name.len()) != Some(&b' ') {
        return None;
    }
    text.get(name.len() + 1..)
}

/// True when `bytes` are `letters` (ASCII lowercase letters only) in any case. A byte with bit
/// 0x20 set equals a lowercase letter only when it is that letter, upper or lower case: one
/// OR and one XOR a byte, with no early exit, where `eq_ignore_ascii_case` lowercases each
/// byte with a range check and a branch. (For a byte that is not a letter in `letters` the
/// rule does not hold: `@` would equal `` ` ``.)
pub(crate) fn letters_in_any_case(bytes: &[u8], letters: &[u8]) -> bool {
    bytes.len() == letters.len()
        && bytes
            .iter()
            .zip(letters)
            .fold(0u8, |differs, (&b, &letter)| {
                differs | ((b | 0x20) ^ letter)
            })
            == 0
}

/// `bytes` without the spaces and tabs at either end.
fn trim_blanks(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |last| last + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Bytes checked a chunk at a time by [`visible_ascii`]: two SSE2 registers.
const VISIBLE_CHUNK: usize = 32;

/// True when every byte is visible ASCII (`0x20..=0x7e`) or a tab: the rule of the `http`
/// crate's `HeaderValue::to_str`. A value of at least [`VISIBLE_CHUNK`] bytes is checked a
/// chunk at a time, without an early exit inside a chunk (which the compiler turns into a few
/// vector instructions for the chunk), its last bytes in a chunk that overlaps the one before.
pub(crate) fn visible_ascii(bytes: &[u8]) -> bool {
    let Some(last_chunk) = bytes.len().checked_sub(VISIBLE_CHUNK) else {
        return bytes.iter().all(|&b| visible_byte(b));
    };
    let chunks = bytes.chunks_exact(VISIBLE_CHUNK);
    chunks.into_iter().all(visible_chunk) && bytes.get(last_chunk..).is_some_and(visible_chunk)
}

#[inline(always)]
fn visible_chunk(chunk: &[u8]) -> bool {
    let Ok(chunk) = <&[u8; VISIBLE_CHUNK]>::try_from(chunk) else {
        return chunk.iter().all(|&b| visible_byte(b));
    };
    chunk
        .iter()
        .fold(0u8, |invisible, &b| invisible | u8::from(!visible_byte(b)))
        == 0
}

#[inline(always)]
fn visible_byte(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5f || b == b'\t'
}

/// The (percent-decoded) value of query parameter `name`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = split_pair(pair);
        (key == name && !value.is_empty()).then(|| percent_decode(value))
    })
}

/// `(key, value)` of one `key=value` query pair (a bare `key` has an empty value).
pub fn split_pair(pair: &str) -> (&str, &str) {
    pair.split_once('=').unwrap_or((pair, ""))
}

fn percent_decode(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['%', '+']) {
        return value.into();
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

fn first_challenge(security: &Security) -> &'static str {
    match security.schemes.first() {
        Some(AuthScheme::Basic) => CHALLENGE_BASIC,
        _ => CHALLENGE,
    }
}

fn basic_rejection(error: BasicError) -> Rejection {
    Rejection {
        fault: match error {
            BasicError::Format => fault::BASIC_AUTH_FORMAT,
            BasicError::Credentials => fault::BASIC_AUTH_INVALID,
        },
        challenge: Some(CHALLENGE_BASIC),
    }
}

fn invalid() -> Rejection {
    Rejection {
        fault: fault::INVALID_CREDENTIALS,
        challenge: Some(CHALLENGE_INVALID),
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scheme_value` with its value as text (which it always is: visible ASCII).
    fn scheme_text(value: &HeaderValue) -> Option<(&'static str, &str)> {
        scheme_value(value)
            .map(|(scheme, bytes)| (scheme, std::str::from_utf8(bytes).expect("visible ASCII")))
    }

    #[test]
    fn schemes_are_found_case_insensitively() {
        let value = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(scheme_text(&value("Bearer abc")), Some(("bearer", "abc")));
        assert_eq!(scheme_text(&value("bearer  abc ")), Some(("bearer", "abc")));
        assert_eq!(scheme_text(&value("BASIC xyz")), Some(("basic", "xyz")));
        assert_eq!(scheme_text(&value("Digest xyz")), Some(("other", "xyz")));
        assert_eq!(scheme_text(&value("Bearer")), None);
        assert_eq!(scheme_text(&value("Bearer   ")), None);
        // Tabs are allowed, bytes above ASCII (obs-text) are not: `HeaderValue::to_str`'s rule.
        assert_eq!(scheme_text(&value("Bearer\tabc ")), None);
        assert_eq!(scheme_text(&value("Bearer a\tb")), Some(("bearer", "a\tb")));
        for text in ["Bearer abc\u{e9}", "Bearer \u{e9}"] {
            let utf8 = HeaderValue::from_bytes(text.as_bytes()).unwrap();
            assert!(utf8.to_str().is_err());
            assert_eq!(scheme_text(&utf8), None, "{text}");
        }
        let latin1 = HeaderValue::from_bytes(b"Bearer abc\xe9").unwrap();
        assert_eq!(scheme_text(&latin1), None);
    }

    /// The definition `scheme_value` was written from, kept to check the faster one against.
    fn scheme_value_by_definition(value: &HeaderValue) -> Option<(&'static str, &str)> {
        let text = value.to_str().ok()?;
        let (scheme, rest) = text.trim().split_once(' ')?;
        let rest = rest.trim();
        if rest.is_empty() {
            return None;
        }
        Some(if scheme.eq_ignore_ascii_case("bearer") {
            ("bearer", rest)
        } else if scheme.eq_ignore_ascii_case("basic") {
            ("basic", rest)
        } else {
            ("other", rest)
        })
    }

    #[test]
    fn scheme_value_agrees_with_its_definition_on_every_short_value() {
        // Every value of up to 5 bytes over the bytes that matter (space, tab, a scheme's
        // letters, a token's characters, obs-text), and longer ones around real schemes.
        let alphabet: &[u8] = b" \tbB.=\x80\xff";
        let mut values: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = values.clone();
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|v| {
                    alphabet.iter().map(move |&b| {
                        let mut next = v.clone();
                        next.push(b);
                        next
                    })
                })
                .collect();
            values.extend(last.iter().cloned());
        }
        for prefix in [
            "Bearer",
            "basic",
            "Digest",
            " bearer",
            "\tBasic",
            "BEARER",
            "bAsIc",
            "Bearerx",
            "Beare",
            "Basics",
            "Basi",
            "bearer\t",
            "Bearer\tx",
            "@EARER",
            "Rearer",
            "bearep",
        ] {
            for tail in [
                &b""[..],
                b" ",
                b"  x",
                b" x ",
                b"\tx",
                b" a b",
                b" x\t",
                b" \x80",
                b"\t \tx.y.z\t ",
            ] {
                values.push([prefix.as_bytes(), tail].concat());
            }
        }
        for bytes in values {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            assert_eq!(
                scheme_text(&value),
                scheme_value_by_definition(&value),
                "{bytes:?}"
            );
        }
    }

    /// Every byte value, at the start, in the middle and at the end of values around the chunk
    /// size (shorter, one chunk, a chunk and a byte, several with an overlapping last chunk):
    /// `visible_ascii` agrees with the byte-at-a-time rule of `HeaderValue::to_str`.
    #[test]
    fn visible_ascii_agrees_with_the_byte_rule_everywhere() {
        let rule = |bytes: &[u8]| {
            bytes
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        };
        for len in [0, 1, 7, 31, 32, 33, 63, 64, 65, 200, 215] {
            let clean = vec![b'a'; len];
            assert!(visible_ascii(&clean), "{len}");
            for at in [0, len / 2, len.saturating_sub(1)] {
                if at >= len {
                    continue;
                }
                for byte in 0..=u8::MAX {
                    let mut value = clean.clone();
                    value[at] = byte;
                    assert_eq!(visible_ascii(&value), rule(&value), "{len} {at} {byte}");
                }
            }
        }
    }

    #[test]
    fn query_parameters_are_found_and_decoded() {
        assert_eq!(
            query_param("a=1&api_key=k%2Ey+z&b", "api_key").as_deref(),
            Some("k.y z")
        );
        assert_eq!(query_param("api_key=&x=1", "api_key"), None);
        assert_eq!(query_param("api_keyx=1", "api_key"), None);
        assert_eq!(query_param("k=%zz%", "k").as_deref(), Some("%zz%"));
        assert_eq!(query_param("k=%C3%A9", "k").as_deref(), Some("é"));
    }
}
