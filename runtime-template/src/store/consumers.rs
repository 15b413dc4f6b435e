//! Consumers in memory, written through a [`Backend`]: Express Gateway's users, applications,
//! credentials and scopes with EG 1.16's rules (`lib/services/{users,applications,credentials}`),
//! read by the authentication policies without touching the disk.
//!
//! Writes are serialised (one writer at a time), made durable by the backend, then applied to
//! the in-memory state under a short write lock; the request path takes a read lock for one
//! hash lookup and clones an `Arc`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use hashbrown::{Equivalent, HashMap};

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::backend::{Backend, BackendError, Kind, Write};
use super::date::now_js;
use super::records::{self, ConsumerKind, CredentialType};

/// A JSON object.
pub type Doc = Map<String, Value>;

/// Why a consumer operation was refused; each maps onto Express Gateway's admin API status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerError {
    /// 404: the named user, application, credential or scope does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: it exists already.
    #[error("{0}")]
    Conflict(String),
    /// 400: the request is malformed (a required field missing, a wrong type).
    #[error("{0}")]
    Invalid(String),
    /// 422: it refers to something that does not exist (a credential's consumer, a scope).
    #[error("{0}")]
    Unprocessable(String),
    /// 503: the store could not write; nothing changed.
    #[error("{0}")]
    Unavailable(String),
}

impl From<BackendError> for ConsumerError {
    fn from(e: BackendError) -> Self {
        ConsumerError::Unavailable(e.0)
    }
}

/// A consumer as the request path sees it.
#[derive(Debug, Clone)]
pub struct ConsumerView {
    /// Its id.
    pub id: Arc<str>,
    /// `req.user`: the public document with `type` set.
    pub user: Arc<Doc>,
    /// `id` as the `eg-consumer-id` header's value, made once with the view (`None` when the
    /// id is empty or cannot be a header value).
    pub header: Option<http::HeaderValue>,
}

impl ConsumerView {
    /// The view of the consumer `id` whose `req.user` is `user`.
    pub fn new(id: Arc<str>, user: Arc<Doc>) -> Self {
        let header = (!id.is_empty())
            .then(|| http::HeaderValue::from_str(&id).ok())
            .flatten();
        Self { id, user, header }
    }
}

/// Hashes and compares as the credential map's `(CredentialType, String)` key, borrowing the
/// id: the request path looks a presented `keyId` (or a token's `sub`) up without copying it.
#[derive(Hash)]
struct CredentialRef<'a>(CredentialType, &'a str);

impl Equivalent<(CredentialType, String)> for CredentialRef<'_> {
    fn equivalent(&self, key: &(CredentialType, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// The answer of [`Consumers::key_auth`].
#[derive(Debug, Clone)]
pub enum KeyAuthOutcome {
    /// The key is valid, active, of an active consumer, with every endpoint scope.
    Accepted(ConsumerView),
    /// Unknown key, wrong secret, inactive credential or consumer: 401.
    Unauthorized,
    /// A valid key without every endpoint scope: 403.
    Forbidden,
}

/// What [`Consumers::basic_credential`] finds for a basic-auth username.
#[derive(Debug, Clone)]
pub struct BasicCredential {
    /// The consumer.
    pub consumer: ConsumerView,
    /// Its bcrypt (or argon2) hash.
    pub hash: Arc<str>,
    /// The credential's scopes.
    pub scopes: Vec<String>,
}

/// A stored document with what the request path reads from it, taken out once when the
/// document is stored (every change of a document makes a new entry), so an authentication
/// reads fields instead of walking the document's map.
#[derive(Debug, Clone)]
struct Entry {
    /// As stored (private fields included for credentials).
    doc: Arc<Doc>,
    /// `isActive` ([`records::is_active`]).
    active: bool,
    /// What a consumer (user or application) is to the request path; `None` for credentials.
    view: Option<ConsumerView>,
    /// A credential's `consumerId`.
    consumer_id: Option<Box<str>>,
    /// A key-auth credential's `keySecretHmac`, decoded.
    key_hmac: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, Entry>,
    usernames: HashMap<String, String>,
    apps: HashMap<String, Entry>,
    credentials: HashMap<(CredentialType, String), Entry>,
    scopes: BTreeSet<String>,
}

impl State {
    /// EG `findByUsernameOrId`: the username first, then the id.
    fn user_id(&self, id_or_name: &str) -> Option<String> {
        if let Some(id) = self.usernames.get(id_or_name) {
            return Some(id.clone());
        }
        self.users
            .contains_key(id_or_name)
            .then(|| id_or_name.to_string())
    }

    /// EG `findByNameOrId`: the id first, then the name.
    fn app_id(&self, id_or_name: &str) -> Option<String> {
        if self.apps.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        // EG keeps a set of ids per app name; the first one answers.
        let mut named: Vec<&String> = self
            .apps
            .iter()
            .filter(|(_, e)| records::text(&e.doc, "name") == Some(id_or_name))
            .map(|(id, _)| id)
            .collect();
        named.sort();
        named.first().map(|id| (*id).clone())
    }

    fn consumer(&self, id: &str) -> Option<&Entry> {
        self.users.get(id).or_else(|| self.apps.get(id))
    }

    /// The credential of `kind` with `id`, without copying `id`.
    fn credential(&self, kind: CredentialType, id: &str) -> Option<&Entry> {
        self.credentials.get(&CredentialRef(kind, id))
    }

    /// The active consumer of the active credential `entry`, as the request path sees it.
    fn active_consumer(&self, entry: &Entry) -> Option<&ConsumerView> {
        if !entry.active {
            return None;
        }
        let consumer = self.consumer(entry.consumer_id.as_deref()?)?;
        consumer.active.then_some(consumer.view.as_ref()?)
    }

    fn credentials_of(&self, consumer: &str) -> Vec<(CredentialType, String)> {
        let mut out: Vec<(CredentialType, String)> = self
            .credentials
            .iter()
            .filter(|(_, e)| records::text(&e.doc, "consumerId") == Some(consumer))
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    fn put(&mut self, kind: Kind, id: &str, doc: Doc) {
        match kind {
            Kind::User => {
                if let Some(old) = self.users.get(id) {
                    if let Some(name) = records::text(&old.doc, "username") {
                        self.usernames.remove(name);
                    }
                }
                if let Some(name) = records::text(&doc, "username") {
                    self.usernames.insert(name.to_string(), id.to_string());
                }
                self.users
                    .insert(id.to_string(), consumer_entry(id, doc, ConsumerKind::User));
            }
            Kind::App => {
                self.apps.insert(
                    id.to_string(),
                    consumer_entry(id, doc, ConsumerKind::Application),
                );
            }
            Kind::Credential => {
                if let Some(key) = credential_key(id) {
                    self.credentials.insert(key, credential_entry(doc));
                }
            }
            Kind::Scope => {
                self.scopes.insert(id.to_string());
            }
            Kind::Meta => {}
        }
    }

    fn delete(&mut self, kind: Kind, id: &str) {
        match kind {
            Kind::User => {
                if let Some(old) = self.users.remove(id) {
                    if let Some(name) = records::text(&old.doc, "username") {
                        self.usernames.remove(name);
                    }
                }
            }
            Kind::App => {
                self.apps.remove(id);
            }
            Kind::Credential => {
                if let Some(key) = credential_key(id) {
                    self.credentials.remove(&key);
                }
            }
            Kind::Scope => {
                self.scopes.remove(id);
            }
            Kind::Meta => {}
        }
    }
}

fn consumer_entry(id: &str, doc: Doc, kind: ConsumerKind) -> Entry {
    let mut user = records::public(&doc);
    user.insert("type".into(), Value::String(kind.as_str().into()));
    Entry {
        active: records::is_active(&doc),
        view: Some(ConsumerView::new(Arc::from(id), Arc::new(user))),
        consumer_id: None,
        key_hmac: None,
        doc: Arc::new(doc),
    }
}

fn credential_entry(doc: Doc) -> Entry {
    Entry {
        active: records::is_active(&doc),
        view: None,
        consumer_id: records::text(&doc, "consumerId").map(Box::from),
        key_hmac: records::text(&doc, "keySecretHmac").and_then(decode_hex32),
        doc: Arc::new(doc),
    }
}

/// Every document of `backend` in a new state, and the stored key-auth secret key.
fn load_state(backend: &dyn Backend) -> Result<(State, Option<[u8; 32]>), BackendError> {
    let documents = backend.load()?;
    let mut state = State::default();
    let mut key = None;
    let mut bad = 0usize;
    for (kind, id, text) in documents {
        if kind == Kind::Meta {
            if id == "credential-key" {
                key = serde_json::from_str::<String>(&text)
                    .ok()
                    .and_then(|hex| decode_hex32(&hex));
            }
            continue;
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(doc)) => state.put(kind, &id, doc),
            Ok(_) if kind == Kind::Scope => state.put(kind, &id, Doc::new()),
            _ => bad += 1,
        }
    }
    if bad > 0 {
        tracing::warn!(
            "consumer store {}: {bad} unreadable document(s) ignored",
            backend.describe()
        );
    }
    Ok((state, key))
}

/// `<type>:<id>` → the credential's key.
fn credential_key(id: &str) -> Option<(CredentialType, String)> {
    let (kind, rest) = id.split_once(':')?;
    Some((CredentialType::parse(kind)?, rest.to_string()))
}

fn credential_id(kind: CredentialType, id: &str) -> String {
    format!("{}:{id}", kind.as_str())
}

/// Every consumer, in memory, backed by a durable store.
pub struct Consumers {
    state: RwLock<State>,
    writer: Mutex<()>,
    backend: Box<dyn Backend>,
    key: [u8; 32],
    /// HMAC-SHA256 keyed with `key`, ready (ring keeps the inner and outer states hashed
    /// with the key): a digest costs two SHA-256 blocks for a short secret. ring rather than
    /// RustCrypto's `sha2` for its SSSE3/AVX assembly on CPUs without SHA extensions (both use
    /// the extensions where the CPU has them).
    /// again (two SHA-256 blocks fewer per key-auth request).
    keyed: ring::hmac::Key,
    bcrypt_cost: u32,
}

impl std::fmt::Debug for Consumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumers")
            .field("backend", &self.backend.describe())
            .finish()
    }
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Users.
    pub users: usize,
    /// Applications.
    pub apps: usize,
    /// Credentials.
    pub credentials: usize,
    /// Scopes.
    pub scopes: usize,
}

/// Express Gateway's default bcrypt cost (`crypto.saltRounds`).
pub const DEFAULT_BCRYPT_COST: u32 = 10;

impl Consumers {
    /// Loads every document of `backend` into memory. The key-auth secret key is read from the
    /// store, or made (32 random bytes) and stored on first use. `bcrypt_cost` hashes new
    /// passwords (Express Gateway's `crypto.saltRounds`, 10 by default; 4 to 31).
    pub fn open(backend: Box<dyn Backend>, bcrypt_cost: u32) -> Result<Self, BackendError> {
        let (state, key) = load_state(backend.as_ref())?;
        let key = match key {
            Some(key) => key,
            None => {
                let mut key = [0u8; 32];
                key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                // Replicas starting together on an empty store agree on the first key.
                let stored = backend.put_if_absent(
                    Kind::Meta,
                    "credential-key",
                    &Value::String(hex(&key)).to_string(),
                )?;
                serde_json::from_str::<String>(&stored)
                    .ok()
                    .and_then(|hex| decode_hex32(&hex))
                    .ok_or_else(|| {
                        BackendError(format!(
                            "consumer store {}: the stored credential-key is unreadable",
                            backend.describe()
                        ))
                    })?
            }
        };
        Ok(Self {
            state: RwLock::new(state),
            writer: Mutex::new(()),
            backend,
            keyed: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            key,
            bcrypt_cost: bcrypt_cost.clamp(4, 31),
        })
    }

    /// Replaces the in-memory state with everything the backend holds (after a replica's
    /// change subscription comes back: what changed meanwhile is not lost). Local writes wait
    /// meanwhile.
    pub fn reload(&self) -> Result<Counts, BackendError> {
        let _writer = self.lock_writer();
        let (state, key) = load_state(self.backend.as_ref())?;
        if key.is_some_and(|key| key != self.key) {
            tracing::warn!(
                "consumer store {}: its credential-key differs from the one this gateway started with; restart it to verify key-auth credentials made elsewhere",
                self.backend.describe()
            );
        }
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(self.counts())
    }

    /// Applies changes another replica made: re-reads each `(kind, id)` from the backend
    /// (absent: deleted) and applies them together, so the latest stored version wins.
    pub fn apply_remote(&self, changes: &[(Kind, String)]) -> Result<(), BackendError> {
        let changes: Vec<(Kind, String)> = changes
            .iter()
            .filter(|(kind, _)| *kind != Kind::Meta)
            .cloned()
            .collect();
        let docs = self.backend.get(&changes)?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for ((kind, id), text) in changes.into_iter().zip(docs) {
            match text.map(|t| serde_json::from_str::<Value>(&t)) {
                None => state.delete(kind, &id),
                Some(Ok(Value::Object(doc))) => state.put(kind, &id, doc),
                Some(Ok(_)) if kind == Kind::Scope => state.put(kind, &id, Doc::new()),
                Some(_) => tracing::warn!(
                    "consumer store {}: the changed {} {id:?} is unreadable; ignored",
                    self.backend.describe(),
                    kind.as_str()
                ),
            }
        }
        Ok(())
    }

    /// Where the data lives.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// How many of each there are.
    pub fn counts(&self) -> Counts {
        let state = self.read();
        Counts {
            users: state.users.len(),
            apps: state.apps.len(),
            credentials: state.credentials.len(),
            scopes: state.scopes.len(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `writes` durably, then applies them in memory.
    fn commit(&self, writes: Vec<(Kind, String, Option<Doc>)>) -> Result<(), ConsumerError> {
        let batch: Vec<Write> = writes
            .iter()
            .map(|(kind, id, doc)| match doc {
                Some(doc) => Write::Put {
                    kind: *kind,
                    id: id.clone(),
                    doc: Value::Object(doc.clone()).to_string(),
                },
                None => Write::Delete {
                    kind: *kind,
                    id: id.clone(),
                },
            })
            .collect();
        self.backend.apply(&batch)?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for (kind, id, doc) in writes {
            match doc {
                Some(doc) => state.put(kind, &id, doc),
                None => state.delete(kind, &id),
            }
        }
        Ok(())
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// EG `findConsumer`: a user (by username, then id), else an application (by id, then
    /// name); its id.
    pub fn find_consumer(&self, id_or_name: &str) -> Option<String> {
        let state = self.read();
        state
            .user_id(id_or_name)
            .or_else(|| state.app_id(id_or_name))
    }

    // ---- users ----

    /// `POST /users`: `username` (a non-empty string) is required and unique; every other
    /// field is kept. Adds `id`, `isActive: true`, `createdAt`, `updatedAt`.
    pub fn create_user(&self, body: Doc) -> Result<Doc, ConsumerError> {
        let _writer = self.lock_writer();
        let username = required_text(&body, "username")?;
        if self.read().usernames.contains_key(&username) {
            return Err(ConsumerError::Conflict("username already exists".into()));
        }
        let id = records::uuid_v4();
        let doc = new_document(body, &id);
        self.commit(vec![(Kind::User, id, Some(doc.clone()))])?;
        Ok(doc)
    }

    /// `GET /users/:id` (by id or username).
    pub fn user(&self, id_or_name: &str) -> Result<Doc, ConsumerError> {
        let state = self.read();
        state
            .user_id(id_or_name)
            .and_then(|id| state.users.get(&id))
            .map(|e| records::public(&e.doc))
            .ok_or_else(|| ConsumerError::NotFound(format!("User not found: {id_or_name}")))
    }

    /// `GET /users`: every user, ordered by username.
    pub fn users(&self) -> Vec<Doc> {
        let state = self.read();
        let mut out: Vec<Doc> = state
            .users
            .values()
            .map(|e| records::public(&e.doc))
            .collect();
        out.sort_by(|a, b| records::text(a, "username").cmp(&records::text(b, "username")));
        out
    }

    /// `PUT /users/:id`: the given fields replace the stored ones (`id`, `isActive`,
    /// `createdAt` and `updatedAt` excepted); a new `username` must be free.
    pub fn update_user(&self, id_or_name: &str, body: Doc) -> Result<Doc, ConsumerError> {
        let _writer = self.lock_writer();
        let (id, mut doc) = {
            let state = self.read();
            let id = state
                .user_id(id_or_name)
                .ok_or_else(|| ConsumerError::NotFound(format!("User not found: {id_or_name}")))?;
            let doc = (*state.users[&id].doc).clone();
            if let Some(name) = body.get("username") {
                let name = name.as_str().filter(|n| !n.is_empty()).ok_or_else(|| {
                    ConsumerError::Invalid("username must be a non-empty string".into())
                })?;
                if state.usernames.get(name).is_some_and(|other| *other != id) {
                    return Err(ConsumerError::Conflict("username already exists".into()));
                }
            }
            (id, doc)
        };
        merge(&mut doc, body);
        self.commit(vec![(Kind::User, id, Some(doc.clone()))])?;
        Ok(doc)
    }

    /// `PUT /users/:id/status`: `Activated`/`Deactivated` when it changed, `Active`/`Inactive`
    /// when it already was.
    ///
    /// Deactivating a user deactivates its applications too (EG `user.service.js`);
    /// activating it does not reactivate them.
    pub fn set_user_status(
        &self,
        id_or_name: &str,
        active: bool,
    ) -> Result<&'static str, ConsumerError> {
        let _writer = self.lock_writer();
        let (id, doc, apps) = {
            let state = self.read();
            let id = state
                .user_id(id_or_name)
                .ok_or_else(|| ConsumerError::NotFound(format!("user not found: {id_or_name}")))?;
            let apps: Vec<(String, Doc)> = if active {
                Vec::new()
            } else {
                state
                    .apps
                    .iter()
                    .filter(|(_, e)| {
                        records::text(&e.doc, "userId") == Some(id.as_str())
                            && records::is_active(&e.doc)
                    })
                    .map(|(app, e)| (app.clone(), (*e.doc).clone()))
                    .collect()
            };
            (id.clone(), (*state.users[&id].doc).clone(), apps)
        };
        let answer = self.set_status(Kind::User, id, doc, active)?;
        let now = now_js();
        let writes = apps
            .into_iter()
            .map(|(app, mut doc)| {
                doc.insert("isActive".into(), Value::Bool(false));
                doc.insert("updatedAt".into(), Value::String(now.clone()));
                (Kind::App, app, Some(doc))
            })
            .collect::<Vec<_>>();
        if !writes.is_empty() {
            self.commit(writes)?;
        }
        Ok(answer)
    }

    fn set_status(
        &self,
        kind: Kind,
        id: String,
        mut doc: Doc,
        active: bool,
    ) -> Result<&'static str, ConsumerError> {
        if records::is_active(&doc) == active {
            return Ok(if active { "Active" } else { "Inactive" });
        }
        doc.insert("isActive".into(), Value::Bool(active));
        doc.insert("updatedAt".into(), Value::String(now_js()));
        self.commit(vec![(kind, id, Some(doc))])?;
        Ok(if active { "Activated" } else { "Deactivated" })
    }

    /// `DELETE /users/:id`: the user, its applications, and every credential of both.
    pub fn delete_user(&self, id_or_name: &str) -> Result<(), ConsumerError> {
        let _writer = self.lock_writer();
        let writes = {
            let state = self.read();
            let id = state
                .user_id(id_or_name)
                .ok_or_else(|| ConsumerError::NotFound(format!("User not found: {id_or_name}")))?;
            let mut writes = Vec::new();
            let apps: Vec<String> = state
                .apps
                .iter()
                .filter(|(_, e)| records::text(&e.doc, "userId") == Some(id.as_str()))
                .map(|(app, _)| app.clone())
                .collect();
            for consumer in apps.iter().chain(std::iter::once(&id)) {
                for (kind, cred) in state.credentials_of(consumer) {
                    writes.push((Kind::Credential, credential_id(kind, &cred), None));
                }
            }
            for app in apps {
                writes.push((Kind::App, app, None));
            }
            writes.push((Kind::User, id, None));
            writes
        };
        self.commit(writes)
    }

    // ---- applications ----

    /// `POST /apps`: `name` and `userId` (a user's id or username) are required; the name is
    /// unique per user.
    pub fn create_app(&self, mut body: Doc) -> Result<Doc, ConsumerError> {
        let _writer = self.lock_writer();
        let name = required_text(&body, "name")?;
        let owner = required_text(&body, "userId")?;
        let user_id = {
            let state = self.read();
            let user_id = state.user_id(&owner).ok_or_else(|| {
                ConsumerError::Conflict("The specified user does not exist".into())
            })?;
            let taken = state.apps.values().any(|e| {
                records::text(&e.doc, "userId") == Some(user_id.as_str())
                    && records::text(&e.doc, "name") == Some(name.as_str())
            });
            if taken {
                return Err(ConsumerError::Invalid(format!(
                    "Failed to insert application: {user_id} has already another application bound with {name} as name"
                )));
            }
            user_id
        };
        body.insert("userId".into(), Value::String(user_id));
        let id = records::uuid_v4();
        let doc = new_document(body, &id);
        self.commit(vec![(Kind::App, id, Some(doc.clone()))])?;
        Ok(doc)
    }

    /// `GET /apps/:id` (by id or name).
    pub fn app(&self, id_or_name: &str) -> Result<Doc, ConsumerError> {
        let state = self.read();
        state
            .app_id(id_or_name)
            .and_then(|id| state.apps.get(&id))
            .map(|e| records::public(&e.doc))
            .ok_or_else(|| ConsumerError::NotFound(format!("Application not found: {id_or_name}")))
    }

    /// `GET /apps`, ordered by name then id; with `user`, only that user's.
    pub fn apps(&self, user: Option<&str>) -> Vec<Doc> {
        let state = self.read();
        let owner = user.map(|u| state.user_id(u).unwrap_or_default());
        let mut out: Vec<Doc> = state
            .apps
            .values()
            .filter(|e| {
                owner
                    .as_deref()
                    .is_none_or(|o| records::text(&e.doc, "userId") == Some(o))
            })
            .map(|e| records::public(&e.doc))
            .collect();
        out.sort_by(|a, b| {
            (records::text(a, "name"), records::text(a, "id"))
                .cmp(&(records::text(b, "name"), records::text(b, "id")))
        });
        out
    }

    /// `PUT /apps/:id`.
    pub fn update_app(&self, id_or_name: &str, mut body: Doc) -> Result<Doc, ConsumerError> {
        let _writer = self.lock_writer();
        let (id, mut doc) = {
            let state = self.read();
            let id = state.app_id(id_or_name).ok_or_else(|| {
                ConsumerError::NotFound(format!("Application not found: {id_or_name}"))
            })?;
            (id.clone(), (*state.apps[&id].doc).clone())
        };
        // The owner does not change.
        body.remove("userId");
        merge(&mut doc, body);
        self.commit(vec![(Kind::App, id, Some(doc.clone()))])?;
        Ok(doc)
    }

    /// `PUT /apps/:id/status`.
    pub fn set_app_status(
        &self,
        id_or_name: &str,
        active: bool,
    ) -> Result<&'static str, ConsumerError> {
        let _writer = self.lock_writer();
        let (id, doc) = {
            let state = self.read();
            let id = state.app_id(id_or_name).ok_or_else(|| {
                ConsumerError::NotFound(format!("Application not found: {id_or_name}"))
            })?;
            (id.clone(), (*state.apps[&id].doc).clone())
        };
        self.set_status(Kind::App, id, doc, active)
    }

    /// `DELETE /apps/:id`: the application and its credentials.
    pub fn delete_app(&self, id_or_name: &str) -> Result<(), ConsumerError> {
        let _writer = self.lock_writer();
        let writes = {
            let state = self.read();
            let id = state.app_id(id_or_name).ok_or_else(|| {
                ConsumerError::NotFound(format!("Application not found: {id_or_name}"))
            })?;
            let mut writes: Vec<(Kind, String, Option<Doc>)> = state
                .credentials_of(&id)
                .into_iter()
                .map(|(kind, cred)| (Kind::Credential, credential_id(kind, &cred), None))
                .collect();
            writes.push((Kind::App, id, None));
            writes
        };
        self.commit(writes)
    }

    // ---- credentials ----

    /// `POST /credentials`: a credential of `kind` for the consumer `consumer` (a user's id or
    /// username, or an app's id or name). Key-auth and jwt get `keyId` and `keySecret`
    /// (uuid62 unless given); basic-auth a `password` (made when absent) and oauth2 a
    /// `secret`, one per consumer. `scopes` must exist. The secret is returned in this answer
    /// only; the store keeps a digest (key-auth, jwt: HMAC-SHA256 under the store's key) or a
    /// bcrypt hash (passwords and oauth2 secrets, as EG).
    pub fn create_credential(
        &self,
        consumer: &str,
        kind: CredentialType,
        mut fields: Doc,
    ) -> Result<Doc, ConsumerError> {
        let _writer = self.lock_writer();
        let (consumer_id, scopes) = {
            let state = self.read();
            let id = state
                .user_id(consumer)
                .or_else(|| state.app_id(consumer))
                .ok_or_else(|| {
                    ConsumerError::Unprocessable(format!("No consumer found with id: {consumer}"))
                })?;
            let scopes = scope_list(fields.get("scopes"))?;
            if scopes.iter().any(|s| !state.scopes.contains(s)) {
                return Err(ConsumerError::Invalid(
                    "One or more scopes don't exist".into(),
                ));
            }
            let existing = state.credentials.get(&(kind, id.clone()));
            if !kind.is_keyed() && existing.is_some_and(|e| records::is_active(&e.doc)) {
                return Err(ConsumerError::Invalid(
                    "Credential already exists and is active".into(),
                ));
            }
            (id, scopes)
        };
        let secret_field = kind.secret_field();
        let mut generated = kind.is_keyed();
        let (id, secret) = if kind.is_keyed() {
            let key_id = optional_text(&fields, "keyId")?.unwrap_or_else(records::uuid62);
            let secret = optional_text(&fields, "keySecret")?.unwrap_or_else(records::uuid62);
            if self
                .read()
                .credentials
                .contains_key(&(kind, key_id.clone()))
            {
                return Err(ConsumerError::Conflict(format!(
                    "Credential {} with keyId {key_id} already exists",
                    kind.as_str()
                )));
            }
            fields.insert("keyId".into(), Value::String(key_id.clone()));
            (key_id, secret)
        } else {
            // EG makes a uuid v4 password when none is given, and shows it once.
            let secret = match optional_text(&fields, secret_field)? {
                Some(given) => given,
                None => {
                    generated = true;
                    records::uuid_v4()
                }
            };
            (consumer_id.clone(), secret)
        };
        fields.remove(secret_field);
        fields.remove("scopes");
        let mut doc = Doc::new();
        doc.insert("isActive".into(), Value::Bool(true));
        let now = now_js();
        doc.insert("createdAt".into(), Value::String(now.clone()));
        doc.insert("updatedAt".into(), Value::String(now));
        for (k, v) in fields {
            if !records::PRIVATE_FIELDS.contains(&k.as_str()) {
                doc.insert(k, v);
            }
        }
        doc.insert("id".into(), Value::String(id.clone()));
        doc.insert("type".into(), Value::String(kind.as_str().into()));
        doc.insert("consumerId".into(), Value::String(consumer_id));
        doc.insert(
            "scopes".into(),
            if scopes.is_empty() {
                Value::Null
            } else {
                Value::Array(scopes.into_iter().map(Value::String).collect())
            },
        );
        if kind.is_keyed() {
            let digest = self.digest(&secret).ok_or_else(|| {
                ConsumerError::Unavailable(
                    "cannot hash the secret: HMAC tag of the wrong size".into(),
                )
            })?;
            doc.insert("keySecretHmac".into(), Value::String(hex(&digest)));
        } else {
            let hash = bcrypt::hash(&secret, self.bcrypt_cost)
                .map_err(|e| ConsumerError::Unavailable(format!("cannot hash the secret: {e}")))?;
            doc.insert("passwordHash".into(), Value::String(hash));
        }
        self.commit(vec![(
            Kind::Credential,
            credential_id(kind, &id),
            Some(doc.clone()),
        )])?;
        let mut shown = records::public(&doc);
        // Key-auth and jwt show their key once; a password only when it was made here.
        if generated {
            shown.insert(secret_field.into(), Value::String(secret));
        }
        Ok(shown)
    }

    /// Stores a credential whose secret is already hashed (a bcrypt `password` hash from an
    /// Express Gateway export), keeping it as it is.
    pub fn import_hashed_credential(
        &self,
        consumer: &str,
        kind: CredentialType,
        hash: &str,
        scopes: Vec<String>,
    ) -> Result<Doc, ConsumerError> {
        if kind.is_keyed() || !hash.starts_with("$2") {
            return Err(ConsumerError::Invalid(
                "only basic-auth and oauth2 credentials carry a bcrypt hash".into(),
            ));
        }
        let mut fields = Doc::new();
        fields.insert(
            "scopes".into(),
            Value::Array(scopes.into_iter().map(Value::String).collect()),
        );
        let created = self.create_credential(consumer, kind, fields)?;
        let id = records::text(&created, "id")
            .unwrap_or_default()
            .to_string();
        let _writer = self.lock_writer();
        // Looked up again under the writer lock: a removal (here, or from another replica
        // through `apply_remote`) may have come in between.
        let mut doc = match self.read().credentials.get(&(kind, id.clone())) {
            Some(entry) => (*entry.doc).clone(),
            None => {
                return Err(ConsumerError::NotFound(format!(
                    "Credential not found: {id}"
                )))
            }
        };
        doc.insert("passwordHash".into(), Value::String(hash.to_string()));
        self.commit(vec![(
            Kind::Credential,
            credential_id(kind, &id),
            Some(doc.clone()),
        )])?;
        Ok(records::public(&doc))
    }

    /// `GET /credentials/:type/:id`.
    pub fn credential(&self, kind: CredentialType, id: &str) -> Result<Doc, ConsumerError> {
        self.read()
            .credentials
            .get(&(kind, id.to_string()))
            .map(|e| records::public(&e.doc))
            .ok_or_else(|| ConsumerError::NotFound(format!("Credential not found: {id}")))
    }

    /// `GET /credentials` (every one) or `GET /credentials/:consumerId`.
    pub fn credentials(&self, consumer: Option<&str>) -> Vec<Doc> {
        let state = self.read();
        let consumer = consumer.map(|c| {
            state
                .user_id(c)
                .or_else(|| state.app_id(c))
                .unwrap_or_else(|| c.to_string())
        });
        let mut keys: Vec<&(CredentialType, String)> = state
            .credentials
            .iter()
            .filter(|(_, e)| {
                consumer
                    .as_deref()
                    .is_none_or(|c| records::text(&e.doc, "consumerId") == Some(c))
            })
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys.into_iter()
            .filter_map(|k| state.credentials.get(k))
            .map(|e| records::public(&e.doc))
            .collect()
    }

    /// `PUT /credentials/:type/:id/status`.
    pub fn set_credential_status(
        &self,
        kind: CredentialType,
        id: &str,
        active: bool,
    ) -> Result<&'static str, ConsumerError> {
        let _writer = self.lock_writer();
        let doc = self
            .stored_credential(kind, id)
            .map_err(|_| ConsumerError::NotFound(format!("No credential found with id: {id}")))?;
        self.set_status(Kind::Credential, credential_id(kind, id), doc, active)
    }

    fn stored_credential(&self, kind: CredentialType, id: &str) -> Result<Doc, ConsumerError> {
        self.read()
            .credentials
            .get(&(kind, id.to_string()))
            .map(|e| (*e.doc).clone())
            .ok_or_else(|| ConsumerError::NotFound(format!("Credential not found: {id}")))
    }

    /// `PUT …/scopes` (replace), `PUT …/scopes/:scope` (add), `DELETE …/scopes/:scope`
    /// (remove): every scope added must exist.
    pub fn change_credential_scopes(
        &self,
        kind: CredentialType,
        id: &str,
        change: ScopeChange,
    ) -> Result<(), ConsumerError> {
        let _writer = self.lock_writer();
        let mut doc = self
            .stored_credential(kind, id)
            .map_err(|_| ConsumerError::Invalid("credential not found".into()))?;
        let mut scopes = records::scopes(&doc);
        let added: Vec<String> = match &change {
            ScopeChange::Set(list) => list.clone(),
            ScopeChange::Add(scope) => vec![scope.clone()],
            ScopeChange::Remove(_) => Vec::new(),
        };
        {
            let state = self.read();
            if added.iter().any(|s| !state.scopes.contains(s)) {
                return Err(ConsumerError::Invalid(
                    "One or more scopes don't exist".into(),
                ));
            }
        }
        match change {
            ScopeChange::Set(list) => scopes = list,
            ScopeChange::Add(scope) => {
                // EG: unique([scope, ...existing]), the new one first.
                scopes.retain(|s| *s != scope);
                scopes.insert(0, scope);
            }
            ScopeChange::Remove(scope) => scopes.retain(|s| *s != scope),
        }
        doc.insert(
            "scopes".into(),
            Value::Array(scopes.into_iter().map(Value::String).collect()),
        );
        doc.insert("updatedAt".into(), Value::String(now_js()));
        self.commit(vec![(Kind::Credential, credential_id(kind, id), Some(doc))])
    }

    /// Whether the credential `kind`/`id` holds `secret` (micro-gw's `POST
    /// /credentials/:type/:id/verify`, for `micro-gw consumers populate`, which must tell an
    /// unchanged secret from a changed one without reading it back): key-auth and jwt compare
    /// the keyed digest; basic-auth and oauth2 verify the password against the bcrypt hash, or
    /// compare the hash itself when `secret` is a bcrypt hash (an imported one).
    pub fn secret_matches(
        &self,
        kind: CredentialType,
        id: &str,
        secret: &str,
    ) -> Result<bool, ConsumerError> {
        let doc = self.stored_credential(kind, id)?;
        if kind.is_keyed() {
            let stored = records::text(&doc, "keySecretHmac").unwrap_or_default();
            let Some(given) = self.digest(secret) else {
                return Ok(false);
            };
            return Ok(bool::from(stored.as_bytes().ct_eq(hex(&given).as_bytes())));
        }
        let stored = records::text(&doc, "passwordHash").unwrap_or_default();
        if secret.starts_with("$2") {
            return Ok(bool::from(stored.as_bytes().ct_eq(secret.as_bytes())));
        }
        Ok(stored.starts_with("$2") && bcrypt::verify(secret, stored).unwrap_or(false))
    }

    /// Removes a credential (used by `consumers clean` and the sync).
    pub fn delete_credential(&self, kind: CredentialType, id: &str) -> Result<(), ConsumerError> {
        let _writer = self.lock_writer();
        self.stored_credential(kind, id)?;
        self.commit(vec![(Kind::Credential, credential_id(kind, id), None)])
    }

    // ---- scopes ----

    /// `GET /scopes`, sorted.
    pub fn scopes(&self) -> Vec<String> {
        self.read().scopes.iter().cloned().collect()
    }

    /// `GET /scopes/:scope`.
    pub fn scope(&self, name: &str) -> Result<String, ConsumerError> {
        if self.read().scopes.contains(name) {
            Ok(name.to_string())
        } else {
            Err(ConsumerError::NotFound(format!("scope not found: {name}")))
        }
    }

    /// `POST /scopes`: every name must be new.
    pub fn create_scopes(&self, names: &[String]) -> Result<(), ConsumerError> {
        let _writer = self.lock_writer();
        {
            let state = self.read();
            if names.iter().any(|n| state.scopes.contains(n)) {
                return Err(ConsumerError::Conflict(
                    "One or more scopes already exist.".into(),
                ));
            }
        }
        if names.iter().any(|n| n.is_empty()) {
            return Err(ConsumerError::Invalid(
                "a scope name cannot be empty".into(),
            ));
        }
        self.commit(
            names
                .iter()
                .map(|n| (Kind::Scope, n.clone(), Some(Doc::new())))
                .collect(),
        )
    }

    /// `DELETE /scopes/:scope`: also removed from every credential holding it.
    pub fn delete_scope(&self, name: &str) -> Result<(), ConsumerError> {
        let _writer = self.lock_writer();
        let writes = {
            let state = self.read();
            if !state.scopes.contains(name) {
                // EG answers 204 whether it existed or not.
                return Ok(());
            }
            let mut writes: Vec<(Kind, String, Option<Doc>)> = Vec::new();
            for ((kind, id), entry) in &state.credentials {
                let scopes = records::scopes(&entry.doc);
                if scopes.iter().any(|s| s == name) {
                    let mut doc = (*entry.doc).clone();
                    doc.insert(
                        "scopes".into(),
                        Value::Array(
                            scopes
                                .into_iter()
                                .filter(|s| s != name)
                                .map(Value::String)
                                .collect(),
                        ),
                    );
                    writes.push((Kind::Credential, credential_id(*kind, id), Some(doc)));
                }
            }
            writes.push((Kind::Scope, name.to_string(), None));
            writes
        };
        self.commit(writes)
    }

    // ---- the request path ----

    /// The keyed HMAC-SHA256 of a key-auth secret. `None` only if the tag were not 32 bytes
    /// (HMAC-SHA256's always are): callers then refuse, never compare a stand-in value.
    fn digest(&self, secret: &str) -> Option<[u8; 32]> {
        let tag = ring::hmac::sign(&self.keyed, secret.as_bytes());
        tag.as_ref().try_into().ok()
    }

    /// Key-auth (EG `lib/policies/key-auth`): the credential `key_id` must exist, be active,
    /// hold `secret`, and belong to an active consumer (401 otherwise); it must hold every
    /// `endpoint_scopes` (403 otherwise).
    pub fn key_auth(
        &self,
        key_id: &str,
        secret: &str,
        endpoint_scopes: &[String],
    ) -> KeyAuthOutcome {
        let Some(digest) = self.digest(secret) else {
            return KeyAuthOutcome::Unauthorized;
        };
        let state = self.read();
        let Some(entry) = state.credential(CredentialType::KeyAuth, key_id) else {
            return KeyAuthOutcome::Unauthorized;
        };
        let matches = entry
            .key_hmac
            .is_some_and(|stored| bool::from(stored.ct_eq(&digest)));
        if !matches {
            return KeyAuthOutcome::Unauthorized;
        }
        let Some(consumer) = state.active_consumer(entry) else {
            return KeyAuthOutcome::Unauthorized;
        };
        if !endpoint_scopes.is_empty() {
            let held = records::scopes(&entry.doc);
            if !endpoint_scopes.iter().all(|s| held.contains(s)) {
                return KeyAuthOutcome::Forbidden;
            }
        }
        KeyAuthOutcome::Accepted(consumer.clone())
    }

    /// jwt's `checkCredentialExistence` (EG `lib/policies/jwt/jwt.js`): `key_id` (the token's
    /// `sub`) is an active `jwt` credential whose consumer is an active application or user
    /// with that id (no username lookup).
    pub fn jwt_consumer(&self, key_id: &str) -> Option<ConsumerView> {
        let state = self.read();
        let entry = state.credential(CredentialType::Jwt, key_id)?;
        state.active_consumer(entry).cloned()
    }

    /// Basic-auth's lookup (EG `lib/policies/basic-auth`): the user or application named
    /// `name` (username, app name, or id), active, with an active basic-auth credential. The
    /// caller checks the password against [`BasicCredential::hash`] off the async threads.
    pub fn basic_credential(&self, name: &str) -> Option<BasicCredential> {
        let state = self.read();
        // EG `validateConsumer(id, {checkUsername: true})`: an application's id, a user's id,
        // then a username (never an application's name).
        let id = if state.apps.contains_key(name) || state.users.contains_key(name) {
            name
        } else {
            state.usernames.get(name)?.as_str()
        };
        let consumer = state.consumer(id)?;
        if !consumer.active {
            return None;
        }
        let entry = state.credential(CredentialType::BasicAuth, id)?;
        if !entry.active {
            return None;
        }
        Some(BasicCredential {
            consumer: consumer.view.clone()?,
            hash: Arc::from(records::text(&entry.doc, "passwordHash")?),
            scopes: records::scopes(&entry.doc),
        })
    }
}

/// A change of a credential's scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeChange {
    /// Replace them all.
    Set(Vec<String>),
    /// Add one.
    Add(String),
    /// Remove one.
    Remove(String),
}

fn required_text(body: &Doc, field: &str) -> Result<String, ConsumerError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ConsumerError::Invalid(format!("{field} is required")))
        }
        Some(_) => Err(ConsumerError::Invalid(format!("{field} must be a string"))),
    }
}

fn optional_text(body: &Doc, field: &str) -> Result<Option<String>, ConsumerError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ConsumerError::Invalid(format!(
            "{field} must be a non-empty string"
        ))),
    }
}

/// `scopes` as given to the admin API: a list of strings, one string, or nothing.
fn scope_list(value: Option<&Value>) -> Result<Vec<String>, ConsumerError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ConsumerError::Invalid("scopes must be strings".into()))
            })
            .collect(),
        Some(_) => Err(ConsumerError::Invalid(
            "scopes must be a list of strings".into(),
        )),
    }
}

/// A new user or application document: the body's fields, then `id`, `isActive`, the dates.
fn new_document(body: Doc, id: &str) -> Doc {
    let mut doc = Doc::new();
    for (k, v) in body {
        if !matches!(k.as_str(), "id" | "isActive" | "createdAt" | "updatedAt")
            && !records::PRIVATE_FIELDS.contains(&k.as_str())
        {
            doc.insert(k, v);
        }
    }
    doc.insert("isActive".into(), Value::Bool(true));
    let now = now_js();
    doc.insert("createdAt".into(), Value::String(now.clone()));
    doc.insert("updatedAt".into(), Value::String(now));
    doc.insert("id".into(), Value::String(id.to_string()));
    doc
}

/// Applies an update: every field but the managed ones; `updatedAt` set.
fn merge(doc: &mut Doc, body: Doc) {
    for (k, v) in body {
        if !matches!(k.as_str(), "id" | "isActive" | "createdAt" | "updatedAt")
            && !records::PRIVATE_FIELDS.contains(&k.as_str())
        {
            doc.insert(k, v);
        }
    }
    doc.insert("updatedAt".into(), Value::String(now_js()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
