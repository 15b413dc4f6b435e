//! The storage interface under [`super::Consumers`]: documents by kind and id, loaded whole at
//! start-up and written in atomic batches.

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A user (`id` → the user document).
    User,
    /// An application.
    App,
    /// A credential (`<type>:<id>` → the credential document, secrets hashed).
    Credential,
    /// A scope (the name → `true`).
    Scope,
    /// The store's own settings (`credential-key`: the key-auth secret key).
    Meta,
}

impl Kind {
    /// The name stored with each document.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::App => "app",
            Kind::Credential => "credential",
            Kind::Scope => "scope",
            Kind::Meta => "meta",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "user" => Kind::User,
            "app" => Kind::App,
            "credential" => Kind::Credential,
            "scope" => Kind::Scope,
            "meta" => Kind::Meta,
            _ => return None,
        })
    }
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Create or replace a document (JSON text).
    Put {
        /// What it is.
        kind: Kind,
        /// Its id.
        id: String,
        /// The JSON document.
        doc: String,
    },
    /// Delete a document (nothing when it does not exist).
    Delete {
        /// What it is.
        kind: Kind,
        /// Its id.
        id: String,
    },
}

/// A backend failed: the change was not made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Durable storage of documents. Implementations are synchronous (callers run them on the
/// blocking pool) and make each [`Backend::apply`] batch atomic and durable before returning.
pub trait Backend: Send + Sync + 'static {
    /// Every document: `(kind, id, JSON text)`.
    fn load(&self) -> Result<Vec<(Kind, String, String)>, BackendError>;
    /// Applies `writes` all or nothing.
    fn apply(&self, writes: &[Write]) -> Result<(), BackendError>;
    /// Where the data lives, for messages (`/srv/gw/data/consumers.db`).
    fn describe(&self) -> String;

    /// The current text of each document of `keys` (`None`: absent), in order. The default
    /// reads everything; backends shared by replicas read only what is asked.
    fn get(&self, keys: &[(Kind, String)]) -> Result<Vec<Option<String>>, BackendError> {
        let all = self.load()?;
        Ok(keys
            .iter()
            .map(|(kind, id)| {
                all.iter()
                    .find(|(k, i, _)| k == kind && i == id)
                    .map(|(_, _, doc)| doc.clone())
            })
            .collect())
    }

    /// Stores `doc` unless the document exists; the stored text either way (so replicas
    /// starting together agree on one value).
    fn put_if_absent(&self, kind: Kind, id: &str, doc: &str) -> Result<String, BackendError> {
        if let Some(Some(existing)) = self.get(&[(kind, id.to_string())])?.pop() {
            return Ok(existing);
        }
        self.apply(&[Write::Put {
            kind,
            id: id.to_string(),
            doc: doc.to_string(),
        }])?;
        Ok(doc.to_string())
    }
}
