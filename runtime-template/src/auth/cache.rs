//! Verified tokens, remembered until they expire so a signature is checked once, not on every
//! request. Keyed by a SHA-256 of the token (the token itself is never kept), bounded in size.
//! One cache type serves both dialects: the WSO2 routes' grants and the Express Gateway `jwt`
//! step's verified claims (anything [`Expiring`]).

use std::sync::{Arc, RwLock};

use hashbrown::HashMap;

/// What a verified credential grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Until when (seconds since the epoch) this grant may be reused: the token's `exp`, or
    /// sooner for answers that must be asked again (introspection, basic auth).
    pub valid_until: u64,
    /// What kind of credential was verified.
    pub kind: CredentialKind,
    /// Scopes the credential carries.
    pub scopes: Arc<[String]>,
    /// Production or sandbox keys.
    pub key_type: KeyType,
    /// APIs the credential may call (`subscribedAPIs`, `allowedAPIs`), when they are checked.
    pub apis: Option<Arc<[ApiRef]>>,
    /// The application or user, for the access log.
    pub consumer: Option<Arc<str>>,
    /// The whole answer that granted it, when a policy exposes it (Express Gateway's
    /// `oauth2-introspect` makes the introspection answer `req.user`); `None` otherwise.
    pub claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// What WSO2's throttling reads from the credential (JWT claims), when it says anything.
    pub throttling: Option<Arc<ThrottleClaims>>,
}

/// The claims of a WSO2 token that throttling reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThrottleClaims {
    /// `application.id` (or `application.uuid`): the application's counters are its own.
    pub application_id: Option<String>,
    /// `application.tier`: the application policy.
    pub application_tier: Option<String>,
    /// The authorized user (`sub`): WSO2's application key is `<application id>:<user>`.
    pub user: String,
    /// `subscribedAPIs[]` entries with a `subscriptionTier`.
    pub subscriptions: Vec<(ApiRef, String)>,
}

/// The kind of a verified credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An OAuth2 access token (JWT or introspected opaque token).
    Oauth2,
    /// A WSO2 API key.
    ApiKey,
    /// Basic authentication.
    Basic,
}

/// Which endpoints a credential reaches (WSO2's `keytype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Production endpoints.
    Production,
    /// Sandbox endpoints.
    Sandbox,
}

/// An API named in `subscribedAPIs` or `allowedAPIs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRef {
    /// `info.title` of the API.
    pub name: String,
    /// Its version, or `*` for all.
    pub version: String,
}

impl ApiRef {
    /// True when this entry names the API `name` `version`.
    pub fn matches(&self, name: &str, version: &str) -> bool {
        self.name == name && (self.version == version || self.version == "*")
    }
}

/// What a cache keeps per verified token: anything that knows until when it may be reused.
pub trait Expiring {
    /// Seconds since the epoch until which the entry may be served (exclusive).
    fn valid_until(&self) -> u64;
}

impl Expiring for Grant {
    fn valid_until(&self) -> u64 {
        self.valid_until
    }
}

/// A bounded map from token digest to grant (or another [`Expiring`] value).
#[derive(Debug)]
pub struct TokenCache<V = Grant> {
    entries: RwLock<HashMap<[u8; 32], V>>,
    capacity: usize,
}

/// The cache key of a credential of `kind` (the same bytes presented as another kind of
/// credential are a different entry).
///
/// ring's SHA-256 (the one rustls and the signatures use): SHA extensions where the CPU has
/// them, else SSSE3/AVX assembly, fewer instructions than `sha2`'s portable code.
pub fn digest(kind: CredentialKind, token: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(&[kind as u8]);
    context.update(token.as_bytes());
    let mut out = [0u8; 32];
    for (to, from) in out.iter_mut().zip(context.finish().as_ref()) {
        *to = *from;
    }
    out
}

impl<V: Expiring + Clone> TokenCache<V> {
    /// A cache of at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The grant of a token verified before and not yet expired at `now`.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<V> {
        let entries = self.entries.read().ok()?;
        entries
            .get(key)
            .filter(|grant| grant.valid_until() > now)
            .cloned()
    }

    /// Remembers a verified token. When full, expired entries go first, then everything
    /// (a simple bound that a flood of distinct valid tokens cannot grow past).
    pub fn insert(&self, key: [u8; 32], grant: V, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, g| g.valid_until() > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, grant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(valid_until: u64) -> Grant {
        Grant {
            valid_until,
            kind: CredentialKind::Oauth2,
            scopes: Arc::from(vec!["a".to_string()]),
            key_type: KeyType::Production,
            apis: None,
            consumer: None,
            claims: None,
            throttling: None,
        }
    }

    fn digest(token: &str) -> [u8; 32] {
        super::digest(CredentialKind::Oauth2, token)
    }

    #[test]
    fn expired_entries_are_not_served_and_size_is_bounded() {
        let cache = TokenCache::new(2);
        cache.insert(digest("t1"), grant(100), 50);
        assert!(cache.get(&digest("t1"), 99).is_some());
        assert!(cache.get(&digest("t1"), 100).is_none());
        cache.insert(digest("t2"), grant(200), 50);
        cache.insert(digest("t3"), grant(200), 150); // t1 expired: dropped first
        assert!(cache.get(&digest("t2"), 150).is_some());
        assert!(cache.get(&digest("t3"), 150).is_some());
        cache.insert(digest("t4"), grant(300), 150);
        assert!(cache.entries.read().unwrap().len() <= 2);
        assert!(TokenCache::<Grant>::new(0).get(&digest("x"), 0).is_none());
        assert_ne!(
            super::digest(CredentialKind::ApiKey, "t"),
            super::digest(CredentialKind::Oauth2, "t")
        );
        // SHA-256 of the kind's byte then the token, as RustCrypto's `sha2` computes it.
        use sha2::Digest;
        let token = "eyJhbGciOiJIUzI1NiJ9.".repeat(9);
        let mut prefixed = vec![CredentialKind::ApiKey as u8];
        prefixed.extend_from_slice(token.as_bytes());
        assert_eq!(
            super::digest(CredentialKind::ApiKey, &token),
            <[u8; 32]>::from(sha2::Sha256::digest(&prefixed))
        );
    }
}
