//! Basic authentication against `[[security.users]]`.
//!
//! Password hashes are argon2 or bcrypt PHC strings (what `micro-gw hash` writes). WSO2's
//! unsalted forms — SHA-1 hex and `@sha256:`/`@sha512:` hex — are accepted so existing user
//! lists keep working, but they are fast to brute-force and are reported at start-up.
//! Slow hashes run on the blocking pool, a few at a time, so a burst of wrong passwords cannot
//! stall the proxy; a verified credential is remembered for a few minutes by its SHA-256.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::cache::{digest, CacheKey, CredentialKind, Grant, KeyType, TokenCache};
use crate::config::UserConfig;

/// How long a verified basic credential is reused without hashing again.
const VERIFIED_CACHE_SECONDS: u64 = 300;

/// Why basic credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicError {
    /// Not `Basic base64(user:password)` (WSO2 900912).
    Format,
    /// Unknown user or wrong password (WSO2 900911).
    Credentials,
}

/// A stored password hash.
#[derive(Debug, Clone)]
enum StoredHash {
    /// argon2 or bcrypt, kept as the PHC / modular-crypt string.
    Argon2(String),
    Bcrypt(String),
    /// WSO2 legacy, unsalted.
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    Sha512(Vec<u8>),
}

impl StoredHash {
    fn parse(text: &str) -> Result<StoredHash, String> {
        let text = text.trim();
        if text.starts_with("$argon2") {
            let parsed =
                PasswordHash::new(text).map_err(|e| format!("is not a valid argon2 hash ({e})"))?;
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err("is not a complete argon2 hash (salt and hash missing)".into());
            }
            return Ok(StoredHash::Argon2(text.to_string()));
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
            if text.len() != 60 {
                return Err("is not a valid bcrypt hash (60 characters expected)".into());
            }
            return Ok(StoredHash::Bcrypt(text.to_string()));
        }
        if let Some(hex) = text.strip_prefix("@sha256:") {
            return Ok(StoredHash::Sha256(fixed_hex(hex)?));
        }
        if let Some(hex) = text.strip_prefix("@sha512:") {
            return Ok(StoredHash::Sha512(fixed_hex::<64>(hex)?.to_vec()));
        }
        if text.len() == 40 {
            return Ok(StoredHash::Sha1(fixed_hex(text)?));
        }
        Err("is not a password hash: use `micro-gw hash` to make one (argon2id), or WSO2's SHA-1 hex / @sha256:{hex} forms".into())
    }

    fn is_legacy(&self) -> bool {
        matches!(
            self,
            StoredHash::Sha1(_) | StoredHash::Sha256(_) | StoredHash::Sha512(_)
        )
    }

    fn is_slow(&self) -> bool {
        !self.is_legacy()
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredHash::Argon2(phc) => PasswordHash::new(phc).is_ok_and(|hash| {
                argon2::Argon2::default()
                    .verify_password(password, &hash)
                    .is_ok()
            }),
            StoredHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            StoredHash::Sha1(expected) => Sha1::digest(password).ct_eq(expected).into(),
            StoredHash::Sha256(expected) => Sha256::digest(password).ct_eq(expected).into(),
            StoredHash::Sha512(expected) => {
                Sha512::digest(password).as_slice().ct_eq(expected).into()
            }
        }
    }
}

fn fixed_hex<const N: usize>(hex: &str) -> Result<[u8; N], String> {
    let hex = hex.trim();
    if hex.len() != N * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("is not {} hexadecimal digits", N * 2));
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

struct User {
    hash: StoredHash,
    scopes: Arc<[String]>,
    name: Arc<str>,
}

/// The configured users.
pub struct BasicUsers {
    users: HashMap<String, Arc<User>>,
    verified: TokenCache,
    slow_hashes: tokio::sync::Semaphore,
}

impl std::fmt::Debug for BasicUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicUsers")
            .field("users", &self.users.len())
            .finish()
    }
}

/// A user entry that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("security.users '{user}': password_hash {reason}")]
pub struct UserError {
    user: String,
    reason: String,
}

impl BasicUsers {
    /// Parses every user's hash; returns the users and the names of those with legacy hashes.
    pub fn new(
        users: &[UserConfig],
        cache_entries: usize,
    ) -> Result<(Self, Vec<String>), UserError> {
        let mut parsed = HashMap::new();
        let mut legacy = Vec::new();
        for user in users {
            let hash = StoredHash::parse(&user.password_hash).map_err(|reason| UserError {
                user: user.username.clone(),
                reason,
            })?;
            if user.username.is_empty() || user.username.contains(':') {
                return Err(UserError {
                    user: user.username.clone(),
                    reason: "belongs to an unusable username (empty or containing ':')".into(),
                });
            }
            if hash.is_legacy() {
                legacy.push(user.username.clone());
            }
            parsed.insert(
                user.username.clone(),
                Arc::new(User {
                    hash,
                    scopes: Arc::from(user.scopes.clone()),
                    name: Arc::from(user.username.as_str()),
                }),
            );
        }
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok((
            Self {
                users: parsed,
                verified: TokenCache::new(cache_entries),
                slow_hashes: tokio::sync::Semaphore::new(parallel),
            },
            legacy,
        ))
    }

    /// True when no user is configured.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The grant of `credentials` (the part of the header after `Basic `) verified before and
    /// not yet expired at `now`, without hashing a password: the cache's answer only.
    pub fn cached(&self, credentials: &str, now: u64) -> Option<Arc<Grant>> {
        let digest = digest(CredentialKind::Basic, credentials);
        self.verified
            .get(CacheKey::new(CredentialKind::Basic, &digest), now)
    }

    /// Checks `credentials`, the part of the header after `Basic `.
    pub async fn verify(&self, credentials: &str) -> Result<Arc<Grant>, BasicError> {
        let now = super::now();
        // A digest: the password is not kept.
        let digest = digest(CredentialKind::Basic, credentials);
        let key = CacheKey::new(CredentialKind::Basic, &digest);
        if let Some(grant) = self.verified.get(key, now) {
            return Ok(grant);
        }
        let (name, password) = decode_credentials(credentials)?;
        let user = self
            .users
            .get(&name)
            .cloned()
            .ok_or(BasicError::Credentials)?;
        let password = password.as_bytes().to_vec();
        let ok = if user.hash.is_slow() {
            let _permit = self
                .slow_hashes
                .acquire()
                .await
                .map_err(|_| BasicError::Credentials)?;
            let checked = user.clone();
            tokio::task::spawn_blocking(move || checked.hash.verify(&password))
                .await
                .unwrap_or(false)
        } else {
            user.hash.verify(&password)
        };
        if !ok {
            return Err(BasicError::Credentials);
        }
        let grant = Arc::new(Grant {
            valid_until: now + VERIFIED_CACHE_SECONDS,
            kind: CredentialKind::Basic,
            scopes: user.scopes.clone(),
            key_type: KeyType::Production,
            apis: None,
            consumer: Some(user.name.clone()),
            claims: None,
            throttling: None,
        });
        self.verified.insert(key, grant.clone(), now);
        Ok(grant)
    }
}

/// `(user, password)` of the part of an `Authorization: Basic` header after the scheme
/// (RFC 7617 §2: base64 of `user-id ":" password`, UTF-8). The user is everything before the
/// first `:` (so it never contains one); an empty password, invalid base64 or a text that is not
/// UTF-8 is [`BasicError::Format`].
pub fn decode_credentials(credentials: &str) -> Result<(String, String), BasicError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| BasicError::Format)?;
    let text = String::from_utf8(decoded).map_err(|_| BasicError::Format)?;
    let (name, password) = text.split_once(':').ok_or(BasicError::Format)?;
    if password.is_empty() {
        return Err(BasicError::Format);
    }
    Ok((name.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn user(name: &str, hash: &str) -> UserConfig {
        UserConfig {
            username: name.into(),
            password_hash: hash.into(),
            scopes: vec!["read".into()],
        }
    }

    fn header(user: &str, password: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn every_supported_hash_form_verifies_its_password_only() {
        let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let argon = argon2::Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        let bcrypt_hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = vec![
            user("argon", &argon),
            user("bcrypt", &bcrypt_hash),
            user("sha1", &hex(&Sha1::digest(b"s3cret"))),
            user(
                "sha256",
                &format!("@sha256:{}", hex(&Sha256::digest(b"s3cret"))),
            ),
            user(
                "sha512",
                &format!("@sha512:{}", hex(&Sha512::digest(b"s3cret"))),
            ),
        ];
        let (basic, legacy) = BasicUsers::new(&users, 16).unwrap();
        assert_eq!(legacy, vec!["sha1", "sha256", "sha512"]);
        for name in ["argon", "bcrypt", "sha1", "sha256", "sha512"] {
            let grant = basic.verify(&header(name, "s3cret")).await.unwrap();
            assert_eq!(grant.consumer.as_deref(), Some(name));
            assert_eq!(&*grant.scopes, &["read".to_string()]);
            assert_eq!(
                basic.verify(&header(name, "wrong")).await,
                Err(BasicError::Credentials),
                "{name}"
            );
        }
        // Served from the cache the second time, and still right.
        assert!(basic.verify(&header("argon", "s3cret")).await.is_ok());
    }

    #[tokio::test]
    async fn malformed_credentials_are_format_errors() {
        let (basic, _) = BasicUsers::new(&[user("a", &hex(&Sha1::digest(b"p")))], 4).unwrap();
        let no_colon = base64::engine::general_purpose::STANDARD.encode("apassword");
        let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']);
        for bad in [
            "%%%",
            no_colon.as_str(),
            not_utf8.as_str(),
            &header("a", ""),
        ] {
            assert_eq!(basic.verify(bad).await, Err(BasicError::Format), "{bad}");
        }
        assert_eq!(
            basic.verify(&header("nobody", "p")).await,
            Err(BasicError::Credentials)
        );
    }

    #[test]
    fn unusable_hashes_name_the_user() {
        for bad in ["plain-text", "$argon2id$broken", "$2b$short", "@sha256:xyz"] {
            let err = BasicUsers::new(&[user("eve", bad)], 4)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(err.contains("'eve'"), "{err}");
        }
    }
}
