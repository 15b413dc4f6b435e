//! The registered client's secret, kept in the OS keyring (keyring-core with the Secret Service
//! store on Linux, in builds with the cargo feature `keyring`). Where no keyring service is
//! reachable, or the build has none, the secret is simply not kept: the toolkit says so once and
//! registers a client again next time. It is never written to a file.

use std::sync::Arc;

/// Disables the keyring (tests, machines where the keyring prompts or hangs).
pub const NO_KEYRING_ENV: &str = "MGW_NO_KEYRING";
/// The keyring service name of every entry the toolkit makes.
const SERVICE: &str = "micro-gw API Manager client";

/// A keyring operation failed.
#[derive(Debug, thiserror::Error)]
#[error("the OS keyring failed: {0}")]
pub struct SecretError(String);

/// Where client secrets go; a trait so the import logic is testable without a keyring.
pub trait SecretStore {
    /// The secret stored under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<String>, SecretError>;
    /// Stores `secret` under `key`, replacing any previous one.
    fn set(&self, key: &str, secret: &str) -> Result<(), SecretError>;
    /// Deletes the secret under `key`; true when there was one.
    fn delete(&self, key: &str) -> Result<bool, SecretError>;
}

/// The keyring entry name of a client: its id at the API Manager's base URL.
pub fn client_key(client_id: &str, base_url: &str) -> String {
    format!("{client_id}@{}", base_url.trim_end_matches('/'))
}

/// The OS keyring, or why there is none.
pub enum Secrets {
    /// A usable keyring.
    Keyring(KeyringStore),
    /// No keyring: the reason, to tell the user in one line.
    Unavailable(String),
}

/// Opens the platform's persistent keyring. Never fails: a missing service is reported as
/// [`Secrets::Unavailable`].
pub fn open() -> Secrets {
    if std::env::var_os(NO_KEYRING_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return Secrets::Unavailable(format!("the keyring is disabled by {NO_KEYRING_ENV}"));
    }
    platform_store()
}

/// How to get a build with the keyring, for the one-line note of a build without it.
pub const KEYRING_FEATURE_HINT: &str =
    "this micro-gw was built without the OS keyring (reinstall with `cargo install --path toolkit --features keyring` to keep the client between imports)";

#[cfg(all(target_os = "linux", feature = "keyring"))]
fn platform_store() -> Secrets {
    // zbus looks for the session bus here, or in $XDG_RUNTIME_DIR/bus.
    let has_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists());
    if !has_bus {
        return Secrets::Unavailable("no D-Bus session, so no Secret Service keyring".into());
    }
    match zbus_secret_service_keyring_store::Store::new() {
        Ok(store) => {
            let store: Arc<keyring_core::CredentialStore> = store;
            Secrets::Keyring(KeyringStore(store))
        }
        Err(err) => Secrets::Unavailable(format!("no Secret Service keyring ({err})")),
    }
}

#[cfg(all(target_os = "linux", not(feature = "keyring")))]
fn platform_store() -> Secrets {
    Secrets::Unavailable(KEYRING_FEATURE_HINT.into())
}

#[cfg(not(target_os = "linux"))]
fn platform_store() -> Secrets {
    Secrets::Unavailable("this build has no keyring store for this operating system".into())
}

/// A keyring-core credential store.
pub struct KeyringStore(Arc<keyring_core::CredentialStore>);

impl KeyringStore {
    /// Wraps any keyring-core store (the mock one in tests).
    pub fn new(store: Arc<keyring_core::CredentialStore>) -> KeyringStore {
        KeyringStore(store)
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, SecretError> {
        self.0
            .build(SERVICE, key, None)
            .map_err(|e| SecretError(e.to_string()))
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, key: &str) -> Result<Option<String>, SecretError> {
        match self.entry(key)?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(SecretError(e.to_string())),
        }
    }

    fn set(&self, key: &str, secret: &str) -> Result<(), SecretError> {
        self.entry(key)?
            .set_password(secret)
            .map_err(|e| SecretError(e.to_string()))
    }

    fn delete(&self, key: &str) -> Result<bool, SecretError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(SecretError(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", not(feature = "keyring")))]
    fn a_build_without_the_keyring_says_how_to_get_it() {
        // A D-Bus session or not, the reason names the feature and the install command.
        match platform_store() {
            Secrets::Unavailable(reason) => {
                assert!(reason.contains("--features keyring"), "{reason}");
            }
            Secrets::Keyring(_) => panic!("a build without the feature has no keyring"),
        }
    }

    #[test]
    fn keyring_store_round_trips_through_keyring_core() {
        let store = KeyringStore::new(keyring_core::mock::Store::new().unwrap());
        let key = client_key("id1", "https://apim:9443/");
        assert_eq!(key, "id1@https://apim:9443");
        // The mock keeps no state between entries, so only the error mapping is checked
        // across calls; one entry's round trip is checked below.
        assert_eq!(store.get(&key).unwrap(), None);
        assert!(!store.delete(&key).unwrap());
        let entry = store.entry(&key).unwrap();
        entry.set_password("s3cret").unwrap();
        assert_eq!(entry.get_password().unwrap(), "s3cret");
    }
}
