//! The `basic-auth` step at run time. bcrypt runs on the blocking pool, a few at a time; a
//! verified password is remembered for a few minutes under a digest of the stored hash and the
//! password, so a changed password or hash is never served from the memory.

use http::request::Parts;
use sha2::{Digest, Sha256};

use super::BasicAuthSpec;
use crate::auth::cache::{CacheKey, CredentialKind, Grant, KeyType, TokenCache};
use crate::pipeline::step::Flow;
use crate::pipeline::{Context, Matched, Services};
use crate::policies::consumer_auth::{conclude, Verdict};

/// How long a verified password is reused without hashing again, in seconds.
const VERIFIED_SECONDS: u64 = 300;

/// A ready `basic-auth` step.
pub struct BasicAuthStep {
    pass_through: bool,
    verified: TokenCache,
    slow_hashes: tokio::sync::Semaphore,
}

impl std::fmt::Debug for BasicAuthStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthStep")
            .field("pass_through", &self.pass_through)
            .finish()
    }
}

impl BasicAuthStep {
    /// A step remembering up to `cache_entries` verified passwords.
    pub fn new(spec: &BasicAuthSpec, cache_entries: usize) -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            pass_through: spec.pass_through,
            verified: TokenCache::new(cache_entries.max(1)),
            slow_hashes: tokio::sync::Semaphore::new(parallel),
        }
    }

    /// The response phase is needed to mark pass-through refusals.
    pub fn has_response_phase(&self) -> bool {
        self.pass_through
    }

    /// Checks the credentials and concludes as every EG authentication step does.
    pub async fn request(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
    ) -> Flow {
        let verdict = self.verdict(services, context, parts).await;
        conclude(verdict, self.pass_through, context, parts)
    }

    async fn verdict(&self, services: &Services, context: &Context<'_>, parts: &Parts) -> Verdict {
        let Some(consumers) = &services.consumers else {
            return Verdict::Unauthorized;
        };
        let Some((id, password)) = credentials(parts) else {
            return Verdict::Unauthorized;
        };
        let Some(found) = consumers.basic_credential(&id) else {
            return Verdict::Unauthorized;
        };
        let now = crate::auth::now();
        let digest: [u8; 32] = {
            let mut hasher = Sha256::new();
            hasher.update(found.hash.as_bytes());
            hasher.update([0]);
            hasher.update(password.as_bytes());
            hasher.finalize().into()
        };
        // A digest: the password is not kept.
        let key = CacheKey::new(CredentialKind::Basic, &digest);
        if self.verified.get(key, now).is_none() {
            let Ok(_permit) = self.slow_hashes.acquire().await else {
                return Verdict::Unauthorized;
            };
            let hash = found.hash.clone();
            let ok = tokio::task::spawn_blocking(move || {
                bcrypt::verify(password, &hash).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if !ok {
                return Verdict::Unauthorized;
            }
            self.verified.insert(
                key,
                std::sync::Arc::new(Grant {
                    valid_until: now + VERIFIED_SECONDS,
                    kind: CredentialKind::Basic,
                    scopes: std::sync::Arc::from(Vec::<String>::new()),
                    key_type: KeyType::Production,
                    apis: None,
                    consumer: Some(found.consumer.id.clone()),
                    claims: None,
                    throttling: None,
                }),
                now,
            );
        }
        // Every endpoint scope must be held; a missing one is 401 for basic-auth.
        if let Matched::Express { route, .. } = context.matched {
            if !route.scopes.iter().all(|s| found.scopes.contains(s)) {
                return Verdict::Unauthorized;
            }
        }
        Verdict::Accepted(found.consumer)
    }
}

/// passport-http's reading of `Authorization`: `<scheme> <base64>` where the scheme contains
/// `Basic` (any case); the decoded text split at `:`, the password ending at a second `:`;
/// both parts non-empty.
fn credentials(parts: &Parts) -> Option<(String, String)> {
    use base64::Engine;
    let value = parts.headers.get(http::header::AUTHORIZATION)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let mut pieces = text.split(' ');
    let scheme = pieces.next()?;
    let encoded = pieces.next()?;
    if !scheme.to_ascii_lowercase().contains("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim_end_matches('='))
        })
        .ok()?;
    let decoded = String::from_utf8_lossy(&decoded);
    let mut split = decoded.split(':');
    let id = split.next()?.to_string();
    let password = split.next()?.to_string();
    (!id.is_empty() && !password.is_empty()).then_some((id, password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn parts(value: &str) -> Parts {
        http::Request::builder()
            .header("authorization", value)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn credentials_are_read_as_passport_http_reads_them() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            credentials(&parts(&format!("Basic {}", b64("ann:pw")))),
            Some(("ann".into(), "pw".into()))
        );
        // The password ends at a second colon; any scheme containing "basic" passes.
        assert_eq!(
            credentials(&parts(&format!("xBASICx {}", b64("ann:pw:more")))),
            Some(("ann".into(), "pw".into()))
        );
        assert_eq!(credentials(&parts(&format!("Bearer {}", b64("a:b")))), None);
        assert_eq!(credentials(&parts(&format!("Basic {}", b64("ann:")))), None);
        assert_eq!(credentials(&parts(&format!("Basic  {}", b64("a:b")))), None);
        assert_eq!(credentials(&parts("Basic")), None);
    }
}
