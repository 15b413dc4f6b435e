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

/// How long opening waits for other processes that hold the file's locks (another gateway of
/// the project starting, a `micro-gw consumers` command writing), in total.
const OPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a connection and brings the file to the settings and schema this backend needs.
///
/// SQLite answers `SQLITE_BUSY` at once, without waiting out the busy timeout, when waiting could
/// deadlock: a connection that read the file and now needs to write it while another does the
/// same (switching a new file to WAL, creating the table), or a WAL file being recovered. Two
/// gateways of one project started together hit that on the shared file, so the whole sequence is
/// tried again, with short pauses, for up to [`OPEN_PATIENCE`]; any other error is returned as is.
fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let deadline = std::time::Instant::now() + OPEN_PATIENCE;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match try_open_connection(path) {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn try_open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers never block the writer, and a torn write is rolled back on open. The mode is
    // kept in the file, so it is set once (setting it needs the file to itself).
    let mode: String = connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        connection.pragma_update(None, "journal_mode", "WAL")?;
    }
    // synchronous=FULL: a commit is on disk before it returns (not only at checkpoints).
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

/// `SQLITE_BUSY` or `SQLITE_LOCKED`, with any extended code.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
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
        let connection = open_connection(path).map_err(|e| db_error(path, e))?;
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
        // IMMEDIATE: the write lock is taken first, waiting out the busy timeout, rather than a
        // read upgraded to a write, which another process's commit would fail at once.
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
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
        let dir = crate::temp_dir("sqlite");
        let path = dir.path().join("c.db");
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
    }

    /// Gateways of one project started together open the same new file at once: every one of
    /// them gets it (the e2e rate-limit suite starts several; one was refused with "database is
    /// locked" before opening retried).
    #[test]
    fn processes_opening_one_new_file_together_all_get_it() {
        let dir = crate::temp_dir("sqlite");
        for round in 0..20 {
            let path = dir.path().join(format!("c{round}.db"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let openers: Vec<_> = (0..6)
                .map(|i| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let backend = SqliteBackend::open(&path)?;
                        backend.apply(&[Write::Put {
                            kind: Kind::Scope,
                            id: format!("s{i}"),
                            doc: "true".into(),
                        }])?;
                        backend.load().map(|docs| docs.len())
                    })
                })
                .collect();
            for opener in openers {
                let seen = opener
                    .join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
                assert!((1..=6).contains(&seen));
            }
            assert_eq!(SqliteBackend::open(&path).unwrap().load().unwrap().len(), 6);
        }
    }
}
