//! Counters in Redis in a gateway built without the runtime's `redis` feature: the Redis client
//! is not compiled in, so [`RedisCounters`] cannot be made and opening them is the start-up
//! error that says to run `micro-gw build` again (the same message as the consumer store's,
//! [`crate::store::redis::not_built`]).

use std::sync::Arc;
use std::time::Duration;

use super::{Decision, Limit};

/// A Redis call that failed; here only the refusal to open.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct RedisCountersError {
    /// What went wrong.
    pub reason: String,
}

/// Never made: this gateway was built without the `redis` feature (a private field of an empty
/// type, as [`crate::store::redis::RedisBackend`]).
#[derive(Debug)]
pub struct RedisCounters {
    never: std::convert::Infallible,
}

impl RedisCounters {
    /// Always the error of [`crate::store::redis::not_built`].
    ///
    /// # Errors
    /// Always: the message names the URL (without its password) and the fix.
    pub async fn open(
        url: &str,
        _namespace: &str,
        _ca: Option<Vec<u8>>,
        _timeout: Duration,
        _warn_every: Duration,
        _connections: usize,
    ) -> Result<Self, RedisCountersError> {
        Err(RedisCountersError {
            reason: crate::store::redis::not_built(url),
        })
    }

    /// Unreachable (no value exists).
    pub async fn hit(&self, _key: &str, _limit: &Limit) -> Option<Decision> {
        match self.never {}
    }

    /// Unreachable (no value exists).
    pub fn undo(self: &Arc<Self>, _key: &str, _limit: &Limit) {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gateway_without_the_feature_refuses_shared_counters() {
        let err = RedisCounters::open(
            "redis://10.0.0.1:7000,redis://10.0.0.2:7000",
            "mgw",
            None,
            Duration::from_millis(100),
            Duration::from_secs(1),
            1,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("run `micro-gw build` again"), "{err}");
    }
}
