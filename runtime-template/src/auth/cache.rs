//! Verified tokens, remembered until they expire so a signature is checked once, not on every
//! request. Keyed by a SHA-256 of the token (the token itself is never kept), bounded in size.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Scopes the token carries.
    pub scopes: Arc<[String]>,
}

/// A bounded map from token digest to grant.
#[derive(Debug)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Grant>>,
    capacity: usize,
}

/// The cache key of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The grant of a token verified before and not yet expired at `now`.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Grant> {
        let entries = self.entries.read().ok()?;
        entries.get(key).filter(|grant| grant.exp > now).cloned()
    }

    /// Remembers a verified token. When full, expired entries go first, then everything
    /// (a simple bound that a flood of distinct valid tokens cannot grow past).
    pub fn insert(&self, key: [u8; 32], grant: Grant, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, g| g.exp > now);
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

    fn grant(exp: u64) -> Grant {
        Grant {
            exp,
            scopes: Arc::from(vec!["a".to_string()]),
        }
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
        assert!(TokenCache::new(0).get(&digest("x"), 0).is_none());
    }
}
