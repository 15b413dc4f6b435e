//! `[store] redis` in a gateway built without the runtime's `redis` feature: the Redis client is
//! not compiled in, so [`RedisBackend`] cannot be made and opening one is the start-up error
//! that says to run `micro-gw build` again ([`not_built`]).
//!
//! `micro-gw build` enables the feature whenever the project's `conf/micro-gw.toml` names Redis
//! (or its Express Gateway `system.config.yml` has a `db.redis` server), so this is met only
//! when the URL is given at start-up alone (`MGW_STORE_REDIS`, `--store.redis`) or the binary
//! predates the setting.

use std::sync::Arc;

use super::{Backend, BackendError, Consumers, Kind, Write};

/// The start-up error for a Redis `url` (shown without its password) in a gateway built
/// without the Redis client. The caller adds which setting held the URL.
pub fn not_built(url: &str) -> String {
    format!(
        "Redis {} is asked for, but this gateway was built without the Redis client (the runtime's `redis` feature, compiled only for projects whose conf/micro-gw.toml names Redis): write the setting in conf/micro-gw.toml (a `${{VAR}}` substituted at start-up will do) and run `micro-gw build` again, or remove it",
        crate::config::redact_url(url)
    )
}

/// Never made: this gateway was built without the `redis` feature. (A private field of an
/// empty type, not an empty enum, so that the callers' code after an open stays reachable to
/// the compiler and builds without warnings.)
#[derive(Debug, Clone)]
pub struct RedisBackend {
    never: std::convert::Infallible,
}

impl RedisBackend {
    /// Always the error of [`not_built`].
    ///
    /// # Errors
    /// Always: the message names the URL (without its password) and the fix.
    pub fn open_with_ca(
        url: &str,
        _namespace: &str,
        _ca: Option<Vec<u8>>,
    ) -> Result<Self, BackendError> {
        Err(BackendError(not_built(url)))
    }
}

impl Backend for RedisBackend {
    fn load(&self) -> Result<Vec<(Kind, String, String)>, BackendError> {
        match self.never {}
    }

    fn apply(&self, _writes: &[Write]) -> Result<(), BackendError> {
        match self.never {}
    }

    fn describe(&self) -> String {
        match self.never {}
    }
}

/// Unreachable (no [`RedisBackend`] exists).
pub fn spawn_subscriber(
    backend: RedisBackend,
    _consumers: Arc<Consumers>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    match backend.never {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_without_the_feature_refuses_a_redis_url() {
        let err = RedisBackend::open_with_ca("redis://:s3cret@redis.internal:6379/0", "mgw", None)
            .unwrap_err()
            .0;
        assert!(err.contains("run `micro-gw build` again"), "{err}");
        assert!(err.contains("conf/micro-gw.toml"), "{err}");
        assert!(
            err.contains("redis.internal") && !err.contains("s3cret"),
            "{err}"
        );
    }
}
