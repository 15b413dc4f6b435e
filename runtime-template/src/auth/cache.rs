//! Verified tokens, remembered until they expire so a signature is checked once, not on every
//! request. Keyed by the token itself (as Express Gateway's introspection cache, `accesstoken.<token>`;
//! a password is kept only as a SHA-256 digest, see [`digest`]), bounded in entries and in bytes. One cache
//! type serves both dialects: the WSO2 routes' grants and the Express Gateway `jwt` step's
//! verified claims (anything [`Expiring`]).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use hashbrown::{Equivalent, HashMap};

use crate::server::worker::PerCore;

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

    /// The copy a worker's own map keeps of a value found in the shared map. A clone by
    /// default; an `Arc` is given an allocation of its own, so the requests of one worker
    /// count their references on a line no other core writes.
    fn worker_copy(&self) -> Self
    where
        Self: Clone,
    {
        self.clone()
    }
}

impl Expiring for Grant {
    fn valid_until(&self) -> u64 {
        self.valid_until
    }

    /// A copy whose shared parts a request clones (the consumer into the context, the
    /// throttling claims into the throttling step, the claims for Express Gateway's
    /// `req.user`) are allocations of its own: their reference counts are then written by one
    /// worker only. The scopes and APIs are only read.
    fn worker_copy(&self) -> Self {
        Grant {
            consumer: self.consumer.as_deref().map(Arc::from),
            claims: self.claims.as_deref().map(|c| Arc::new(c.clone())),
            throttling: self.throttling.as_deref().map(|t| Arc::new(t.clone())),
            ..self.clone()
        }
    }
}

impl<T: Expiring + Clone> Expiring for Arc<T> {
    fn valid_until(&self) -> u64 {
        T::valid_until(self)
    }

    fn worker_copy(&self) -> Self {
        Arc::new(T::worker_copy(self))
    }
}

/// A bounded map from credential to grant (or another [`Expiring`] value), in two levels.
///
/// - Each worker thread has a map of its own ([`PerCore`]), where a request looks first: a
///   request served from it writes no cache line another core writes (not a lock's word, as
///   every read of a shared `RwLock` does, not a grant's reference count: a worker keeps its
///   own copy, [`Expiring::worker_copy`]).
/// - A map all workers share, where a worker looks when its own map misses, before it
///   verifies anything, and which it copies what it finds from into its own: a credential
///   is verified (a signature, a key manager's answer, a password hash) once per gateway,
///   not once per worker.
///
/// Every entry is in the shared map, which holds to the bounds given ([`TokenCache::new`]);
/// the workers' maps share the same bounds between them (each gets its part of the entries
/// and bytes, at least one entry), so all the maps together keep about twice the bound (at
/// most three times: [`PerCore`] has a second set of maps for threads that are not marked
/// workers, used when such threads authenticate too). A worker's map that fills is emptied
/// and filled again from the shared one: a lookup and a copy, never a credential verified
/// again.
///
/// A grant is kept behind an `Arc`: a request served from the cache takes one reference
/// (one atomic increment, one decrement when it ends), where a `Grant`'s clone takes one per
/// shared field and copies the struct.
#[derive(Debug)]
pub struct TokenCache<V = Arc<Grant>> {
    slots: PerCore<Mutex<Entries<V>>>,
    shared: RwLock<Entries<V>>,
    /// The shared map's bounds (the cache's).
    bounds: Bounds,
    /// Each worker's map's bounds.
    worker_bounds: Bounds,
}

/// How much one map keeps at most.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    entries: usize,
    key_bytes: usize,
}

impl Bounds {
    fn of(entries: usize) -> Self {
        Self {
            entries,
            key_bytes: entries.saturating_mul(KEY_BYTES_PER_ENTRY),
        }
    }
}

#[derive(Debug)]
struct Entries<V> {
    map: HashMap<StoredKey, V>,
    /// The bytes of every key in `map`.
    key_bytes: usize,
}

/// Bytes of credentials a cache keeps per entry of its capacity, at most: a cache of 10,000
/// entries (`security.token_cache_entries`' default) keeps at most 19.5 MiB of tokens, whatever
/// their size (a token is at most `security.max_token_bytes`, 16 KiB by default).
pub const KEY_BYTES_PER_ENTRY: usize = 2048;

/// What an entry is looked up by: the credential's kind and its bytes (the same bytes presented
/// as another kind of credential are a different entry).
#[derive(Debug, Clone, Copy)]
pub struct CacheKey<'a> {
    kind: CredentialKind,
    bytes: &'a [u8],
}

impl<'a> CacheKey<'a> {
    /// The key of a credential of `kind`: a bearer token or API key as presented (the cache
    /// keeps a copy of it), or the [`digest`] of one that must not be kept.
    pub fn new(kind: CredentialKind, credential: &'a [u8]) -> Self {
        Self {
            kind,
            bytes: credential,
        }
    }
}

impl Hash for CacheKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.kind, self.bytes, state);
    }
}

/// The key as an entry keeps it.
#[derive(Debug)]
struct StoredKey {
    kind: CredentialKind,
    bytes: Box<[u8]>,
}

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.kind, &self.bytes, state);
    }
}

impl PartialEq for StoredKey {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && same_bytes(&self.bytes, &other.bytes)
    }
}

impl Eq for StoredKey {}

impl Equivalent<StoredKey> for CacheKey<'_> {
    fn equivalent(&self, key: &StoredKey) -> bool {
        self.kind == key.kind && same_bytes(self.bytes, &key.bytes)
    }
}

/// The kind and every byte (the same for a [`CacheKey`] and the [`StoredKey`] made from it, as
/// hashbrown's lookups need), with the map's randomly seeded foldhash. Every byte: the negative
/// introspection cache keeps tokens nobody verified, so a hash of part of a key would let a
/// client choose keys that all share one bucket (and tokens of an issuer with a fixed suffix
/// would share one anyway).
fn hash_key<H: Hasher>(kind: CredentialKind, bytes: &[u8], state: &mut H) {
    state.write_u8(kind as u8);
    state.write(bytes);
}

/// True when `a` and `b` are the same bytes, in a time that depends on their lengths only (a
/// presented token is compared with a verified one: how much of it matched is not told).
/// Eight bytes a step (which the compiler gathers 32 bytes a step in SSE2 registers), the last
/// bytes in an eight-byte word that overlaps the one before; on every cached request and every
/// repeated long field value ([`crate::server::field_values`]): `subtle`'s slice `ct_eq` (used
/// for basic-auth hashes) passes each byte through an optimisation barrier of its own. (An
/// explicit 32-byte lane array measured 111 instructions for a 190-byte token against the
/// eight-byte loop's 88.)
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |bytes: &[u8]| <[u8; 8]>::try_from(bytes).map(u64::from_ne_bytes);
    let (a_words, _) = a.as_chunks::<8>();
    let (b_words, _) = b.as_chunks::<8>();
    let mut difference = a_words
        .iter()
        .zip(b_words)
        .fold(0u64, |difference, (x, y)| {
            difference | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
        });
    match a.len().checked_sub(8) {
        // The last eight bytes (compared again where they overlap the words).
        Some(last) => match (a.get(last..).map(word), b.get(last..).map(word)) {
            (Some(Ok(x)), Some(Ok(y))) => difference |= x ^ y,
            _ => difference |= 1,
        },
        None => {
            for (x, y) in a.iter().zip(b) {
                difference |= u64::from(x ^ y);
            }
        }
    }
    std::hint::black_box(difference) == 0
}

/// The SHA-256 of a credential of `kind`, for a credential that must not be kept as it is (basic
/// authentication's user and password): the cache keeps the digest instead
/// (`CacheKey::new(kind, &digest(kind, credential))`).
///
/// ring's SHA-256 (the one rustls and the signatures use): SHA extensions where the CPU has
/// them, else SSSE3/AVX assembly, fewer instructions than `sha2`'s portable code.
pub fn digest(kind: CredentialKind, credential: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(&[kind as u8]);
    context.update(credential.as_bytes());
    let mut out = [0u8; 32];
    for (to, from) in out.iter_mut().zip(context.finish().as_ref()) {
        *to = *from;
    }
    out
}

impl<V: Expiring + Clone> TokenCache<V> {
    /// A cache of at most `capacity` credentials (0 disables it) and at most `capacity` ×
    /// [`KEY_BYTES_PER_ENTRY`] bytes of them, with a map for each of the gateway's workers
    /// ([`crate::server::worker::count`]: `listener.worker_threads`, else the CPUs), each
    /// keeping its part of those bounds. An empty map allocates nothing.
    pub fn new(capacity: usize) -> Self {
        Self::with_workers(capacity, crate::server::worker::count())
    }

    /// [`TokenCache::new`] with maps for `workers` marked workers (and as many shared ones).
    pub fn with_workers(capacity: usize, workers: usize) -> Self {
        Self {
            slots: PerCore::new(workers, || Mutex::new(Entries::default())),
            shared: RwLock::new(Entries::default()),
            bounds: Bounds::of(capacity),
            worker_bounds: Bounds::of(capacity.div_ceil(workers.max(1))),
        }
    }

    /// The grant of a credential verified before, not yet expired at `now`: from this worker's
    /// map, else from the shared one (and then kept in this worker's map too).
    pub fn get(&self, key: CacheKey<'_>, now: u64) -> Option<V> {
        // A map holds plain data, whole after any panic: a poisoned lock is used as it is.
        let mut local = self
            .slots
            .local()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(grant) = local.map.get(&key) {
            if grant.valid_until() > now {
                return Some(grant.clone());
            }
            // Expired here: another worker may have verified it again since.
        }
        let found = self
            .shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(&key)
            .filter(|grant| grant.valid_until() > now)?
            .worker_copy();
        local.put(key, found.clone(), now, self.worker_bounds);
        Some(found)
    }

    /// Remembers a verified credential, in the shared map and this worker's. When a map is
    /// full (in entries or in bytes), its expired entries go first, then everything (a simple
    /// bound that a flood of distinct valid tokens cannot grow past). A credential longer than
    /// the whole byte bound is not kept (nor, in a worker's map, one longer than its part).
    pub fn insert(&self, key: CacheKey<'_>, grant: V, now: u64) {
        if self.bounds.entries == 0 || key.bytes.len() > self.bounds.key_bytes {
            return;
        }
        let copy = grant.worker_copy();
        self.shared
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, grant, now, self.bounds);
        self.slots
            .local()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, copy, now, self.worker_bounds);
    }
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            key_bytes: 0,
        }
    }
}

impl<V: Expiring> Entries<V> {
    /// Keeps `grant` for `key` within `bounds` (see [`TokenCache::insert`]); a key longer
    /// than the whole byte bound is not kept.
    fn put(&mut self, key: CacheKey<'_>, grant: V, now: u64, bounds: Bounds) {
        let size = key.bytes.len();
        if bounds.entries == 0 || size > bounds.key_bytes {
            return;
        }
        if let Some(kept) = self.map.get_mut(&key) {
            *kept = grant;
            return;
        }
        let full = |entries: &Self| {
            entries.map.len() >= bounds.entries || entries.key_bytes + size > bounds.key_bytes
        };
        if full(self) {
            self.map.retain(|_, g| g.valid_until() > now);
            self.key_bytes = self.map.keys().map(|k| k.bytes.len()).sum();
            if full(self) {
                self.map.clear();
                self.key_bytes = 0;
            }
        }
        self.key_bytes += size;
        self.map.insert(
            StoredKey {
                kind: key.kind,
                bytes: Box::from(key.bytes),
            },
            grant,
        );
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

    /// The bytes of credentials kept, the same in this thread's map and the shared one when
    /// one thread made every insert.
    fn kept_bytes<V: Expiring + Clone>(cache: &TokenCache<V>) -> usize {
        let local = cache.slots.local().lock().unwrap().key_bytes;
        assert_eq!(local, cache.shared.read().unwrap().key_bytes);
        local
    }

    fn key(token: &str) -> CacheKey<'_> {
        CacheKey::new(CredentialKind::Oauth2, token.as_bytes())
    }

    #[test]
    fn expired_entries_are_not_served_and_size_is_bounded() {
        // One worker: its map has the whole bound, as the shared one (one thread inserts).
        let cache = TokenCache::with_workers(2, 1);
        cache.insert(key("t1"), grant(100), 50);
        assert!(cache.get(key("t1"), 99).is_some());
        assert!(cache.get(key("t1"), 100).is_none());
        cache.insert(key("t2"), grant(200), 50);
        cache.insert(key("t3"), grant(200), 150); // t1 expired: dropped first
        assert!(cache.get(key("t2"), 150).is_some());
        assert!(cache.get(key("t3"), 150).is_some());
        cache.insert(key("t4"), grant(300), 150);
        assert!(cache.slots.local().lock().unwrap().map.len() <= 2);
        assert!(cache.shared.read().unwrap().map.len() <= 2);
        assert!(TokenCache::<Grant>::new(0).get(key("x"), 0).is_none());
        // The same bytes as another kind of credential are another entry.
        let cache = TokenCache::with_workers(4, 1);
        cache.insert(key("t"), grant(100), 0);
        assert!(cache
            .get(CacheKey::new(CredentialKind::ApiKey, b"t"), 0)
            .is_none());
        // Inserting a key again replaces its grant and counts its bytes once.
        cache.insert(key("t"), grant(300), 0);
        assert_eq!(cache.get(key("t"), 200).map(|g| g.valid_until), Some(300));
        assert_eq!(kept_bytes(&cache), 1);
    }

    /// A worker looks in its own map first, then in the shared one: a credential verified on
    /// one worker is found on another without being verified again, and each worker then
    /// serves it from a copy of its own (its own `Arc`, whose count no other core writes).
    #[test]
    fn each_worker_serves_from_its_own_copy() {
        let cache = Arc::new(TokenCache::with_workers(4, 2));
        let on_worker = |index: usize, insert: bool| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                crate::server::worker::set_index(index);
                if insert {
                    let with_consumer = Grant {
                        consumer: Some(Arc::from("app")),
                        ..grant(100)
                    };
                    cache.insert(key("t"), Arc::new(with_consumer), 0);
                }
                let first = cache.get(key("t"), 0).unwrap();
                let again = cache.get(key("t"), 0).unwrap();
                assert!(
                    Arc::ptr_eq(&first, &again),
                    "served from the worker's own map"
                );
                let kept = cache.slots.local().lock().unwrap().map.len();
                (first, kept)
            })
            .join()
            .unwrap()
        };
        let (zero, kept) = on_worker(0, true);
        assert_eq!(kept, 1);
        let (one, kept) = on_worker(1, false);
        assert_eq!(kept, 1, "worker 1 copied the shared entry into its map");
        assert_eq!(*one, *zero);
        assert!(
            !Arc::ptr_eq(&one, &zero),
            "each worker has its own allocation"
        );
        // ... and its own consumer, which every request clones into its context.
        let consumer = |g: &Arc<Grant>| g.consumer.clone().unwrap();
        assert!(!Arc::ptr_eq(&consumer(&one), &consumer(&zero)));
        let shared = cache.shared.read().unwrap().map.len();
        assert_eq!(shared, 1);
        // Expired everywhere: found nowhere, whichever map is asked.
        assert!(on_worker_get(&cache, 0, 100).is_none());
    }

    /// The workers' maps share the cache's bounds: with two workers each keeps half of the
    /// entries; what falls out of a worker's map is still served, from the shared one, and
    /// nothing is verified again for it.
    #[test]
    fn a_workers_map_keeps_its_part_and_the_shared_map_the_rest() {
        let cache = Arc::new(TokenCache::with_workers(4, 2));
        let worker = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                crate::server::worker::set_index(0);
                for token in ["a", "b", "c", "d"] {
                    cache.insert(key(token), Arc::new(grant(100)), 0);
                }
                let local = cache.slots.local().lock().unwrap().map.len();
                let served = ["a", "b", "c", "d"]
                    .iter()
                    .filter(|token| cache.get(key(token), 0).is_some())
                    .count();
                (local, served)
            })
        };
        let (local, served) = worker.join().unwrap();
        assert!(local <= 2, "{local} entries in a worker's map of 2");
        assert_eq!(served, 4);
        assert_eq!(cache.shared.read().unwrap().map.len(), 4);
        // A token longer than a worker's part of the bytes is served from the shared map.
        let long = "x".repeat(3 * KEY_BYTES_PER_ENTRY);
        cache.insert(key(&long), Arc::new(grant(100)), 0);
        assert!(cache.get(key(&long), 0).is_some());
        assert_eq!(cache.slots.local().lock().unwrap().key_bytes, 0);
    }

    fn on_worker_get(cache: &Arc<TokenCache>, index: usize, now: u64) -> Option<Arc<Grant>> {
        let cache = cache.clone();
        std::thread::spawn(move || {
            crate::server::worker::set_index(index);
            cache.get(key("t"), now)
        })
        .join()
        .unwrap()
    }

    /// Tokens that differ anywhere (their ends alike, or only in their first byte) are
    /// different entries: a token is served only the grant of exactly the same token.
    #[test]
    fn only_the_same_token_is_served() {
        let cache = TokenCache::new(16);
        let signature = "s".repeat(43);
        let verified = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.{signature}");
        cache.insert(key(&verified), grant(100), 0);
        assert!(cache.get(key(&verified), 0).is_some());
        let forged = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiIn0.{signature}");
        assert!(cache.get(key(&forged), 0).is_none());
        let mut first = verified.clone().into_bytes();
        first[0] ^= 1;
        assert!(cache
            .get(CacheKey::new(CredentialKind::Oauth2, &first), 0)
            .is_none());
        assert!(cache.get(key(&verified[..verified.len() - 1]), 0).is_none());
        assert!(cache.get(key(&format!("{verified}s")), 0).is_none());
        // Equal bytes of another kind are not the same key, whatever their hashes.
        let stored = |kind| StoredKey {
            kind,
            bytes: Box::from(&b"token"[..]),
        };
        let presented = CacheKey::new(CredentialKind::Oauth2, b"token");
        assert!(presented.equivalent(&stored(CredentialKind::Oauth2)));
        assert!(!presented.equivalent(&stored(CredentialKind::ApiKey)));
        assert!(stored(CredentialKind::Basic) != stored(CredentialKind::ApiKey));
        assert!(!CacheKey::new(CredentialKind::Oauth2, b"tokeN")
            .equivalent(&stored(CredentialKind::Oauth2)));
        for (a, b, same) in [
            ("", "", true),
            ("abcdefghij", "abcdefghij", true),
            ("abcdefghij", "abcdefghiJ", false),
            ("abcdefghij", "Abcdefghij", false),
            ("abcdefgh", "abcdefgh", true),
            ("abcdefgh", "abcdefg", false),
        ] {
            assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), same, "{a} {b}");
        }
        // Around and past the words: a difference at any place is seen, in the whole words
        // and in the bytes after them.
        for len in [31, 32, 33, 63, 64, 65, 200, 1000] {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "{len}");
            for place in 0..len {
                for bit in [0x01, 0x20, 0x80] {
                    let mut b = a.clone();
                    b[place] ^= bit;
                    assert!(!same_bytes(&a, &b), "{len} bytes, {bit:#x} at {place}");
                }
            }
        }
    }

    /// The credentials kept stay within capacity × KEY_BYTES_PER_ENTRY bytes: large tokens
    /// make room by dropping expired entries, then everything; one larger than the bound is
    /// not kept.
    #[test]
    fn the_bytes_kept_are_bounded() {
        let cache = TokenCache::with_workers(4, 1);
        let budget = 4 * KEY_BYTES_PER_ENTRY;
        let big = |c: char| c.to_string().repeat(budget / 2);
        cache.insert(key(&big('a')), grant(100), 0);
        cache.insert(key(&big('b')), grant(300), 0);
        assert_eq!(kept_bytes(&cache), budget);
        // Full in bytes, not in entries: the expired one goes.
        cache.insert(key(&big('c')), grant(300), 200);
        assert!(cache.get(key(&big('a')), 0).is_none());
        assert!(cache.get(key(&big('b')), 200).is_some());
        assert!(cache.get(key(&big('c')), 200).is_some());
        // Still full with nothing expired: everything goes.
        cache.insert(key(&big('d')), grant(300), 200);
        let entries = cache.slots.local().lock().unwrap();
        assert_eq!((entries.map.len(), entries.key_bytes), (1, budget / 2));
        drop(entries);
        cache.insert(key(&"e".repeat(budget + 1)), grant(300), 200);
        assert!(cache.get(key(&"e".repeat(budget + 1)), 200).is_none());
        assert_eq!(kept_bytes(&cache), budget / 2);
    }

    /// A digest is SHA-256 of the kind's byte then the credential, as RustCrypto's `sha2`
    /// computes it.
    #[test]
    fn digests_are_sha256_of_the_kind_and_credential() {
        assert_ne!(
            digest(CredentialKind::ApiKey, "t"),
            digest(CredentialKind::Oauth2, "t")
        );
        use sha2::Digest;
        let token = "eyJhbGciOiJIUzI1NiJ9.".repeat(9);
        let mut prefixed = vec![CredentialKind::ApiKey as u8];
        prefixed.extend_from_slice(token.as_bytes());
        assert_eq!(
            digest(CredentialKind::ApiKey, &token),
            <[u8; 32]>::from(sha2::Sha256::digest(&prefixed))
        );
    }
}
