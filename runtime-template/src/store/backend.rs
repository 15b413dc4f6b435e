//! The storage interface under [`super::Consumers`]: documents by kind and id, loaded whole at
//! start-up and written in atomic batches.

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}
