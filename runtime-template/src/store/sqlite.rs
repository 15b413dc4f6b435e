//! The embedded backend: one SQLite database file (write-ahead log, `synchronous=FULL`), so a
//! change is on disk before it is acknowledged and a process killed mid-write leaves the last
//! committed state.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags};

use super::backend::{Backend, BackendError, Kind, Write};

/// The database file, open.
pub struct SqliteBackend {
    connection: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    doc  TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
";

fn db_error(path: &Path, e: rusqlite::Error) -> BackendError {
    BackendError(format!("consumer store {}: {e}", path.display()))
}

impl SqliteBackend {
    /// Opens (creating when missing, with its folder) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                BackendError(format!(
                    "cannot create the consumer store folder {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(path, e))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| db_error(path, e))?;
        // WAL: readers never block the writer, and a torn write is rolled back on open.
        // synchronous=FULL: a commit is on disk before it returns (not only at checkpoints).
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_error(path, e))?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db_error(path, e))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|e| db_error(path, e))?;
        Ok(Self {
            connection: Mutex::new(connection),
            path: path.to_path_buf(),
        })
    }
}

impl Backend for SqliteBackend {
    fn load(&self) -> Result<Vec<(Kind, String, String)>, BackendError> {
        let connection = self
            .connection
            .lock()
            .map_err(|_| BackendError("consumer store lock poisoned".into()))?;
        let mut statement = connection
            .prepare("SELECT kind, id, doc FROM documents")
            .map_err(|e| db_error(&self.path, e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| db_error(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, id, doc) = row.map_err(|e| db_error(&self.path, e))?;
            match Kind::parse(&kind) {
                Some(kind) => out.push((kind, id, doc)),
                None => tracing::warn!(
                    "consumer store {}: a document of unknown kind {kind:?} is ignored",
                    self.path.display()
                ),
            }
        }
        Ok(out)
    }

    fn apply(&self, writes: &[Write]) -> Result<(), BackendError> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| BackendError("consumer store lock poisoned".into()))?;
        let transaction = connection
            .transaction()
            .map_err(|e| db_error(&self.path, e))?;
        for write in writes {
            match write {
                Write::Put { kind, id, doc } => transaction.execute(
                    "INSERT INTO documents (kind, id, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc",
                    params![kind.as_str(), id, doc],
                ),
                Write::Delete { kind, id } => transaction.execute(
                    "DELETE FROM documents WHERE kind = ?1 AND id = ?2",
                    params![kind.as_str(), id],
                ),
            }
            .map_err(|e| db_error(&self.path, e))?;
        }
        transaction.commit().map_err(|e| db_error(&self.path, e))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_persist_and_reopen() {
        let dir = tempfile_dir();
        let path = dir.join("c.db");
        let backend = SqliteBackend::open(&path).unwrap();
        backend
            .apply(&[
                Write::Put {
                    kind: Kind::User,
                    id: "u1".into(),
                    doc: "{\"username\":\"ann\"}".into(),
                },
                Write::Put {
                    kind: Kind::Scope,
                    id: "read".into(),
                    doc: "true".into(),
                },
            ])
            .unwrap();
        backend
            .apply(&[Write::Delete {
                kind: Kind::Scope,
                id: "read".into(),
            }])
            .unwrap();
        drop(backend);
        let reopened = SqliteBackend::open(&path).unwrap();
        let docs = reopened.load().unwrap();
        assert_eq!(
            docs,
            vec![(Kind::User, "u1".into(), "{\"username\":\"ann\"}".into())]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mgw-sqlite-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
