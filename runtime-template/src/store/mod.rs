//! Runtime state behind small interfaces (DESIGN.md, "State"): the consumers of Express Gateway
//! configurations — users, applications, their credentials, and scopes.
//!
//! [`Consumers`] holds every consumer in memory, so the request path never waits on disk; every
//! change is written through a [`Backend`] (the embedded SQLite file by default,
//! [`sqlite::SqliteBackend`]; Redis for replicas, [`redis::RedisBackend`]) before it is applied in memory and acknowledged, so nothing
//! acknowledged is lost when the process dies.

pub mod backend;
pub mod consumers;
pub mod date;
pub mod records;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(all(feature = "server", not(feature = "redis")))]
#[path = "redis_absent.rs"]
pub mod redis;
pub mod sqlite;

pub use backend::{Backend, BackendError, Kind, Write};
pub use consumers::{ConsumerError, Consumers, KeyAuthOutcome};
pub use records::{ConsumerKind, CredentialType};
