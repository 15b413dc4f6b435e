//! Authentication and authorization of a request against its resource's [`Security`]:
//! find the credential, validate it, check scopes, and answer a failure the WSO2 way.
//!
//! Supported now: OAuth2 access tokens that are signed JWTs, validated offline ([`jwt`]).
//! Opaque tokens (introspection), WSO2 API keys and basic auth are refused with a 401 that
//! says so, so a resource that asks for them fails closed.

pub mod cache;
pub mod jwt;

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use crate::fault::{self, Fault};
use crate::model::{AuthScheme, Security};
use cache::{digest, TokenCache};
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

/// Validates credentials; built once at start-up.
#[derive(Debug)]
pub struct Authenticator {
    jwt: JwtVerifier,
    cache: TokenCache,
    max_token_bytes: usize,
}

impl Authenticator {
    /// Puts the verifier and the cache together.
    pub fn new(jwt: JwtVerifier, cache_entries: usize, max_token_bytes: usize) -> Self {
        Self {
            jwt,
            cache: TokenCache::new(cache_entries),
            max_token_bytes,
        }
    }

    /// Checks the request's credentials against `security`.
    pub fn authenticate(&self, security: &Security, headers: &HeaderMap) -> Result<(), Rejection> {
        let credential = headers.get(security.auth_header.as_str());
        let Some(credential) = credential else {
            if security.optional {
                return Ok(());
            }
            return Err(Rejection {
                fault: fault::MISSING_CREDENTIALS,
                challenge: Some(CHALLENGE),
            });
        };
        if credential.len() > self.max_token_bytes {
            return Err(invalid());
        }
        let wants_oauth2 = security.schemes.contains(&AuthScheme::Oauth2);
        let token = bearer_token(credential);
        match token {
            Some(token) if wants_oauth2 => {
                let grant = self.verify(token)?;
                if security
                    .scopes
                    .iter()
                    .all(|needed| grant.scopes.iter().any(|s| s == needed))
                {
                    Ok(())
                } else {
                    Err(Rejection {
                        fault: fault::INVALID_SCOPE,
                        challenge: Some(CHALLENGE_SCOPE),
                    })
                }
            }
            _ if security
                .schemes
                .iter()
                .any(|s| matches!(s, AuthScheme::Basic))
                && is_basic(credential) =>
            {
                Err(Rejection {
                    fault: fault::BASIC_AUTH_UNSUPPORTED,
                    challenge: Some("Basic realm=\"micro-gw\""),
                })
            }
            _ => Err(invalid()),
        }
    }

    fn verify(&self, token: &str) -> Result<cache::Grant, Rejection> {
        // Only a JWT (three dot-separated parts) can be validated offline; opaque tokens need
        // a key manager.
        if token.split('.').count() != 3 {
            return Err(Rejection {
                fault: fault::OPAQUE_TOKEN_UNSUPPORTED,
                challenge: Some(CHALLENGE_INVALID),
            });
        }
        let now = now();
        let key = digest(token);
        if let Some(grant) = self.cache.get(&key, now) {
            return Ok(grant);
        }
        match self.jwt.verify(token) {
            Ok(grant) => {
                self.cache.insert(key, grant.clone(), now);
                Ok(grant)
            }
            Err(TokenError::Expired) => Err(Rejection {
                fault: fault::TOKEN_EXPIRED,
                challenge: Some(CHALLENGE_INVALID),
            }),
            Err(TokenError::Invalid) => Err(invalid()),
        }
    }
}

fn invalid() -> Rejection {
    Rejection {
        fault: fault::INVALID_CREDENTIALS,
        challenge: Some(CHALLENGE_INVALID),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Bearer <token>` (scheme case-insensitive).
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn is_basic(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|t| t.trim().split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_found_case_insensitively() {
        assert_eq!(
            bearer_token(&HeaderValue::from_static("Bearer abc")),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&HeaderValue::from_static("bearer  abc ")),
            Some("abc")
        );
        assert_eq!(bearer_token(&HeaderValue::from_static("Basic abc")), None);
        assert_eq!(bearer_token(&HeaderValue::from_static("Bearer")), None);
    }
}
