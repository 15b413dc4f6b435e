//! The Redis backend (`[store] redis`): replicas share their consumers through one Redis.
//!
//! Documents are string keys `<ns>:doc:<kind>:<id>` holding the JSON text. A batch is one
//! `MULTI`/`EXEC` transaction that also publishes the changed `(kind, id)` pairs on
//! `<ns>:changes`, so the notification is ordered with the writes. Every gateway runs a
//! [`spawn_subscriber`] thread that re-reads each changed document into its memory, and reloads
//! everything after it (re)connects, so changes made while it was cut off are not lost.
//!
//! Every call has a [`TIMEOUT`] (connect, read and write); a failure is a [`BackendError`]
//! (the admin API answers 503) and the connection is dropped, to be made again by the next
//! call. The request path never calls Redis: it reads the consumers in memory.
//!
//! **Redis Cluster** (`[store] redis` listing several seed nodes, comma-separated, or one
//! `redis+cluster://` / `rediss+cluster://` seed): the namespace becomes a hash tag, so every
//! key is `{<ns>}:doc:…` and the channel `{<ns>}:changes`, all in one slot. The backend asks a
//! seed which primary serves that slot (`CLUSTER KEYSLOT`, `CLUSTER SLOTS`) and talks to it as
//! to a single node: `MULTI`/`EXEC` stays valid (one slot), `SCAN` on that primary sees every
//! document, and classic `PUBLISH` reaches subscribers on every node. A failure (a `MOVED`
//! after a failover or resharding, a node gone) drops the connection and the next call asks
//! the seeds again. The `redis` crate's cluster client is not used here (this design needs no
//! per-key routing); the rate-limit counters use it (`counters::redis`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisError};

use super::backend::{Backend, BackendError, Kind, Write};
use super::consumers::Consumers;
pub use crate::config::redact_url;

/// The bound of every Redis call: connecting, sending a command, waiting for its answer.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// How many keys one `SCAN` step asks for (and one `MGET` reads).
const SCAN_COUNT: usize = 500;

/// The longest pause between two reconnection attempts of the subscriber.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Consumers in Redis. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    connection: Mutex<Option<Connection>>,
    namespace: String,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.inner.shown)
            .field("namespace", &self.inner.namespace)
            .finish()
    }
}

/// Where the backend connects.
enum Target {
    /// One Redis.
    Single(Client),
    /// A Redis Cluster: its seeds, and the client of the primary serving the namespace's slot
    /// (found again after any failure).
    Cluster {
        seeds: Vec<Client>,
        /// Scheme and user information of the first seed, for the primaries' URLs.
        template: (String, String),
        ca: Option<Vec<u8>>,
        primary: Mutex<Option<Client>>,
    },
}

/// The seed URLs of a cluster setting, or `None` for a single node: several comma-separated
/// URLs, or one with the `redis+cluster` or `rediss+cluster` scheme (given to the client as
/// `redis`/`rediss`).
pub fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.replacen("redis+cluster://", "redis://", 1).replacen(
                "rediss+cluster://",
                "rediss://",
                1,
            )
        })
        .collect();
    let marked = url.contains("+cluster://");
    (parts.len() > 1 || marked).then_some(parts)
}

fn client(url: &str, ca: Option<Vec<u8>>) -> Result<Client, RedisError> {
    match ca {
        Some(pem) => Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            },
        ),
        None => Client::open(url),
    }
}

/// Escapes the glob characters of `text` for `SCAN … MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisBackend {
    /// Checks `url` (`redis://[[user]:password@]host[:port][/db]` or `rediss://…`) and
    /// connects once, so a wrong address or password stops the start-up with a clear message.
    pub fn open(url: &str, namespace: &str) -> Result<Self, BackendError> {
        Self::open_with_ca(url, namespace, None)
    }

    /// [`RedisBackend::open`]; for `rediss://`, `ca` (PEM certificates) replaces the system's
    /// roots.
    pub fn open_with_ca(
        url: &str,
        namespace: &str,
        ca: Option<Vec<u8>>,
    ) -> Result<Self, BackendError> {
        let shown = redact_url(url);
        if namespace.is_empty() {
            return Err(BackendError(
                "[store] redis_namespace must not be empty".into(),
            ));
        }
        let invalid = |e: RedisError| {
            BackendError(format!(
                "[store] redis = {shown:?} is not a Redis URL ({}): use redis://[:password@]host:port/db or rediss://…, or for a Redis Cluster several comma-separated seed URLs or redis+cluster://host:port",
                e.detail().unwrap_or("invalid")
            ))
        };
        let (target, namespace) = match cluster_seeds(url) {
            None => (
                Target::Single(client(url, ca).map_err(invalid)?),
                namespace.to_string(),
            ),
            Some(seeds) => {
                let first = seeds.first().cloned().unwrap_or_default();
                let (scheme, rest) = first.split_once("://").unwrap_or(("redis", &first));
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                let userinfo = authority
                    .rsplit_once('@')
                    .map_or(String::new(), |(u, _)| format!("{u}@"));
                let clients = seeds
                    .iter()
                    .map(|seed| client(seed, ca.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                (
                    Target::Cluster {
                        seeds: clients,
                        template: (scheme.to_string(), userinfo),
                        ca,
                        primary: Mutex::new(None),
                    },
                    // The hash tag that keeps every key of the namespace in one slot.
                    format!("{{{namespace}}}"),
                )
            }
        };
        let backend = Self {
            inner: Arc::new(Inner {
                target,
                connection: Mutex::new(None),
                namespace,
                shown,
            }),
        };
        backend.with_connection(|c| redis::cmd("PING").query::<()>(c))?;
        Ok(backend)
    }

    /// The channel carrying the changed `(kind, id)` pairs.
    pub fn channel(&self) -> String {
        format!("{}:changes", self.inner.namespace)
    }

    fn prefix(&self) -> String {
        format!("{}:doc:", self.inner.namespace)
    }

    fn key(&self, kind: Kind, id: &str) -> String {
        format!("{}{}:{id}", self.prefix(), kind.as_str())
    }

    fn error(&self, e: &RedisError) -> BackendError {
        let what = if e.is_timeout() {
            format!("no answer within {} ms", TIMEOUT.as_millis())
        } else {
            e.to_string()
        };
        BackendError(format!(
            "consumer store {} (Redis) is unavailable: {what}; nothing was changed",
            self.inner.shown
        ))
    }

    fn connect(&self) -> Result<Connection, RedisError> {
        let connection = match &self.inner.target {
            Target::Single(client) => open_connection(client)?,
            Target::Cluster { primary, .. } => {
                let mut held = primary.lock().unwrap_or_else(|e| e.into_inner());
                if held.is_none() {
                    *held = Some(self.find_primary()?);
                }
                let found = held.as_ref().map(open_connection);
                match found {
                    Some(Ok(connection)) => connection,
                    Some(Err(e)) => {
                        *held = None;
                        return Err(e);
                    }
                    None => unreachable!("set above"),
                }
            }
        };
        Ok(connection)
    }

    /// Forgets the cluster primary, so the next connection asks the seeds again.
    fn forget_primary(&self) {
        if let Target::Cluster { primary, .. } = &self.inner.target {
            *primary.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Asks the seeds, in order, which primary serves the namespace's slot.
    fn find_primary(&self) -> Result<Client, RedisError> {
        let Target::Cluster {
            seeds,
            template,
            ca,
            ..
        } = &self.inner.target
        else {
            unreachable!("cluster only")
        };
        let channel = self.channel();
        let mut last = None;
        for seed in seeds {
            let found = open_connection(seed).and_then(|mut c| {
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&channel)
                    .query(&mut c)?;
                let ranges: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c)?;
                primary_of(&ranges, slot).ok_or_else(|| {
                    RedisError::from((
                        redis::ErrorKind::Client,
                        "no primary serves the namespace's slot",
                    ))
                })
            });
            match found {
                Ok((host, port)) => {
                    let (scheme, userinfo) = template;
                    let host = if host.contains(':') {
                        format!("[{host}]")
                    } else {
                        host
                    };
                    return client(&format!("{scheme}://{userinfo}{host}:{port}"), ca.clone());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            RedisError::from((redis::ErrorKind::Client, "no cluster seed given"))
        }))
    }

    /// Runs `call` on the shared connection (made when missing); on failure the connection
    /// is dropped.
    fn with_connection<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, BackendError> {
        let mut slot = self
            .inner
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.connect().map_err(|e| self.error(&e))?,
        };
        match call(&mut connection) {
            Ok(value) => {
                *slot = Some(connection);
                Ok(value)
            }
            Err(e) => {
                self.forget_primary();
                Err(self.error(&e))
            }
        }
    }

    /// A change message: `[["user","<id>"],["credential","key-auth:<id>"]]`.
    fn change_message(writes: &[Write]) -> String {
        let pairs: Vec<[&str; 2]> = writes
            .iter()
            .map(|w| match w {
                Write::Put { kind, id, .. } | Write::Delete { kind, id } => [kind.as_str(), id],
            })
            .collect();
        serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
    }
}

fn open_connection(client: &Client) -> Result<Connection, RedisError> {
    let connection = client.get_connection_with_timeout(TIMEOUT)?;
    connection.set_read_timeout(Some(TIMEOUT))?;
    connection.set_write_timeout(Some(TIMEOUT))?;
    Ok(connection)
}

/// The primary `(host, port)` serving `slot` in a `CLUSTER SLOTS` answer
/// (`[[start, end, [host, port, id…], replicas…]…]`).
fn primary_of(ranges: &[redis::Value], slot: i64) -> Option<(String, u16)> {
    use redis::Value;
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    ranges.iter().find_map(|range| {
        let Value::Array(items) = range else {
            return None;
        };
        let (start, end) = (int(items.first()?)?, int(items.get(1)?)?);
        if !(start..=end).contains(&slot) {
            return None;
        }
        let Value::Array(node) = items.get(2)? else {
            return None;
        };
        let port = u16::try_from(int(node.get(1)?)?).ok()?;
        Some((text(node.first()?)?, port))
    })
}

/// Reads a change message; `None` when it is not one.
pub fn parse_change_message(text: &str) -> Option<Vec<(Kind, String)>> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text).ok()?;
    pairs
        .into_iter()
        .map(|(kind, id)| Some((Kind::parse(&kind)?, id)))
        .collect()
}

impl Backend for RedisBackend {
    fn load(&self) -> Result<Vec<(Kind, String, String)>, BackendError> {
        let prefix = self.prefix();
        let pattern = format!("{}*", glob_escape(&prefix));
        self.with_connection(|c| {
            let mut out = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .cursor_arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(c)?;
                if !keys.is_empty() {
                    let docs: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(c)?;
                    for (key, doc) in keys.into_iter().zip(docs) {
                        let Some(doc) = doc else { continue };
                        let parsed = key
                            .strip_prefix(&prefix)
                            .and_then(|rest| rest.split_once(':'))
                            .and_then(|(kind, id)| Some((Kind::parse(kind)?, id.to_string())));
                        match parsed {
                            Some((kind, id)) => out.push((kind, id, doc)),
                            None => tracing::warn!(
                                "consumer store {}: key {key:?} is not a document; ignored",
                                self.inner.shown
                            ),
                        }
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            Ok(out)
        })
    }

    fn apply(&self, writes: &[Write]) -> Result<(), BackendError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for write in writes {
            match write {
                Write::Put { kind, id, doc } => {
                    pipe.set(self.key(*kind, id), doc).ignore();
                }
                Write::Delete { kind, id } => {
                    pipe.del(self.key(*kind, id)).ignore();
                }
            }
        }
        pipe.publish(self.channel(), Self::change_message(writes))
            .ignore();
        self.with_connection(|c| pipe.query::<()>(c))
    }

    fn get(&self, keys: &[(Kind, String)]) -> Result<Vec<Option<String>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = keys.iter().map(|(k, id)| self.key(*k, id)).collect();
        self.with_connection(|c| redis::cmd("MGET").arg(&names).query(c))
    }

    fn put_if_absent(&self, kind: Kind, id: &str, doc: &str) -> Result<String, BackendError> {
        let key = self.key(kind, id);
        self.with_connection(|c| {
            let (stored,): (Option<String>,) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(doc)
                .arg("NX")
                .ignore()
                .get(&key)
                .query(c)?;
            Ok(stored.unwrap_or_else(|| doc.to_string()))
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} (Redis, namespace {:?})",
            self.inner.shown, self.inner.namespace
        )
    }
}

/// Starts the thread that keeps `consumers` in step with the changes other replicas make:
/// it subscribes to the change channel, reloads everything (what changed while it was not
/// subscribed), then applies each change; when Redis goes away it retries every
/// ≤ [`MAX_BACKOFF`] and reloads again once back.
pub fn spawn_subscriber(
    backend: RedisBackend,
    consumers: Arc<Consumers>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mgw-redis-changes".into())
        .spawn(move || subscribe_forever(&backend, &consumers))
}

fn subscribe_forever(backend: &RedisBackend, consumers: &Consumers) {
    let channel = backend.channel();
    let mut backoff = Duration::from_millis(50);
    let mut down_since: Option<Instant> = None;
    loop {
        match follow(backend, consumers, &channel, &mut down_since) {
            Ok(()) => {}
            Err(e) => {
                backend.forget_primary();
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    tracing::warn!(
                        "consumer store {}: change subscription lost ({e}); consumers are served from memory, retrying",
                        backend.inner.shown
                    );
                }
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscription: returns when the connection fails.
fn follow(
    backend: &RedisBackend,
    consumers: &Consumers,
    channel: &str,
    down_since: &mut Option<Instant>,
) -> Result<(), String> {
    let mut connection = backend.connect().map_err(|e| {
        backend.forget_primary();
        backend.error(&e).0
    })?;
    let mut pubsub = connection.as_pubsub();
    pubsub
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    pubsub.subscribe(channel).map_err(|e| e.to_string())?;
    let counts = consumers.reload().map_err(|e| e.0)?;
    if let Some(since) = down_since.take() {
        tracing::info!(
            "consumer store {}: change subscription back after {} ms; reloaded {} user(s), {} application(s), {} credential(s), {} scope(s)",
            backend.inner.shown,
            since.elapsed().as_millis(),
            counts.users,
            counts.apps,
            counts.credentials,
            counts.scopes
        );
    }
    let mut idle = 0u32;
    loop {
        match pubsub.get_message() {
            Ok(message) => {
                idle = 0;
                let payload: String = message.get_payload().unwrap_or_default();
                match parse_change_message(&payload) {
                    Some(changes) => consumers.apply_remote(&changes).map_err(|e| e.0)?,
                    None => {
                        tracing::warn!(
                            "consumer store {}: unreadable change message on {channel}; reloading everything",
                            backend.inner.shown
                        );
                        consumers.reload().map_err(|e| e.0)?;
                    }
                }
            }
            Err(e) if e.is_timeout() => {
                // Quiet channel: every few seconds, check that Redis still answers (a
                // stopped or unreachable Redis sends no error of its own).
                idle += 1;
                if idle >= 4 {
                    idle = 0;
                    pubsub
                        .ping::<redis::Value>()
                        .map_err(|e| backend.error(&e).0)?;
                }
            }
            Err(e) => return Err(backend.error(&e).0),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_server {
    //! A real `redis-server` for tests, on a free port in a temporary folder.

    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A running `redis-server`, stopped when dropped.
    pub struct RedisServer {
        child: Option<Child>,
        /// Its port.
        pub port: u16,
        /// Its working directory (removed after the server is stopped, when dropped).
        dir: tempfile::TempDir,
        extra: Vec<String>,
        cluster: bool,
    }

    impl RedisServer {
        /// Starts one; `None` (after saying why) when `redis-server` is not installed,
        /// a panic when it is missing and `CI=true`.
        pub fn start() -> Option<Self> {
            Self::start_with(&[])
        }

        /// [`RedisServer::start`] with extra `redis-server` arguments.
        pub fn start_with(extra: &[&str]) -> Option<Self> {
            if Command::new("redis-server")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
            {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is not installed (CI=true): apt-get install -y redis-server"
                );
                eprintln!(
                    "skipped: redis-server is not installed (apt-get install -y redis-server)"
                );
                return None;
            }
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let dir = crate::temp_dir(&format!("redis-{port}"));
            let mut server = Self {
                child: None,
                port,
                dir,
                extra: extra.iter().map(|s| s.to_string()).collect(),
                cluster: false,
            };
            server.spawn();
            Some(server)
        }

        /// The URL of its database 0 (a cluster node has no other).
        pub fn url(&self) -> String {
            if self.cluster {
                format!("redis://127.0.0.1:{}", self.port)
            } else {
                format!("redis://127.0.0.1:{}/0", self.port)
            }
        }

        fn spawn(&mut self) {
            let child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Stops it (`SHUTDOWN SAVE`: the data is kept in its folder, as a Redis with
        /// persistence would).
        pub fn stop(&mut self) {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) {
                    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c);
                }
            }
            if let Some(mut child) = self.child.take() {
                let deadline = Instant::now() + Duration::from_secs(5);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        /// Starts it again on the same port with the saved data.
        pub fn restart(&mut self) {
            self.spawn();
        }
    }

    /// A real Redis Cluster of three primaries (`redis-server --cluster-enabled yes`, joined by
    /// `redis-cli --cluster create`), each in its own folder; stopped when dropped.
    pub struct RedisCluster {
        /// Its nodes.
        pub nodes: Vec<RedisServer>,
    }

    impl RedisCluster {
        /// Starts one; `None` as [`RedisServer::start`].
        pub fn start() -> Option<Self> {
            let mut nodes = Vec::new();
            for _ in 0..3 {
                let mut node = RedisServer::start_with(&["--cluster-enabled", "yes"])?;
                node.cluster = true;
                nodes.push(node);
            }
            let addresses: Vec<String> = nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port))
                .collect();
            let created = Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("redis-cli runs");
            assert!(
                created.status.success(),
                "redis-cli --cluster create: {}",
                String::from_utf8_lossy(&created.stderr)
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            for node in &nodes {
                loop {
                    let info: String = redis::Client::open(node.url())
                        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                        .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                        .unwrap_or_default();
                    if info.contains("cluster_state:ok") {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the cluster did not form: {info}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Some(Self { nodes })
        }

        /// `[store] redis` for it: every node, comma-separated.
        pub fn url(&self) -> String {
            self.nodes
                .iter()
                .map(|n| format!("redis://127.0.0.1:{}", n.port))
                .collect::<Vec<_>>()
                .join(",")
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::RedisServer;
    use super::*;
    use crate::store::ConsumerError;

    fn put(kind: Kind, id: &str, doc: &str) -> Write {
        Write::Put {
            kind,
            id: id.into(),
            doc: doc.into(),
        }
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("redis://:s3cret@db:6379/2"),
            "redis://:***@db:6379/2"
        );
        assert_eq!(
            redact_url("rediss://ann:p@ss@db/0"),
            "rediss://ann:***@db/0"
        );
        assert_eq!(redact_url("redis://db:6379"), "redis://db:6379");
        assert_eq!(glob_escape("a*b[c]"), "a\\*b\\[c\\]");
    }

    #[test]
    fn change_messages_round_trip() {
        let text = RedisBackend::change_message(&[
            put(Kind::User, "u1", "{}"),
            Write::Delete {
                kind: Kind::Credential,
                id: "key-auth:k:1".into(),
            },
        ]);
        assert_eq!(
            parse_change_message(&text),
            Some(vec![
                (Kind::User, "u1".into()),
                (Kind::Credential, "key-auth:k:1".into())
            ])
        );
        assert_eq!(parse_change_message("[[\"nope\",\"x\"]]"), None);
    }

    #[test]
    fn documents_load_apply_and_namespaces() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let a = RedisBackend::open(&server.url(), "mgw").unwrap();
        let other = RedisBackend::open(&server.url(), "other*").unwrap();
        a.apply(&[
            put(Kind::User, "u1", "{\"username\":\"ann\"}"),
            put(Kind::Credential, "key-auth:k1", "{\"keyId\":\"k1\"}"),
            put(Kind::Scope, "read", "true"),
        ])
        .unwrap();
        a.apply(&[Write::Delete {
            kind: Kind::Scope,
            id: "read".into(),
        }])
        .unwrap();
        other.apply(&[put(Kind::User, "u2", "{}")]).unwrap();
        let mut docs = a.load().unwrap();
        docs.sort();
        assert_eq!(
            docs,
            vec![
                (Kind::User, "u1".into(), "{\"username\":\"ann\"}".into()),
                (
                    Kind::Credential,
                    "key-auth:k1".into(),
                    "{\"keyId\":\"k1\"}".into()
                ),
            ]
        );
        assert_eq!(other.load().unwrap().len(), 1);
        assert_eq!(
            a.get(&[(Kind::User, "u1".into()), (Kind::User, "u9".into())])
                .unwrap(),
            vec![Some("{\"username\":\"ann\"}".into()), None]
        );
        // put_if_absent keeps the first value.
        assert_eq!(
            a.put_if_absent(Kind::Meta, "k", "\"one\"").unwrap(),
            "\"one\""
        );
        assert_eq!(
            a.put_if_absent(Kind::Meta, "k", "\"two\"").unwrap(),
            "\"one\""
        );
        // Many documents: SCAN pages through them.
        let many: Vec<Write> = (0..1200)
            .map(|i| put(Kind::App, &format!("a{i}"), "{}"))
            .collect();
        a.apply(&many).unwrap();
        assert_eq!(a.load().unwrap().len(), 2 + 1 + 1200);
    }

    #[test]
    fn batches_are_atomic_and_published_once() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let backend = RedisBackend::open(&server.url(), "mgw").unwrap();
        let client = Client::open(server.url()).unwrap();
        let mut listener = client.get_connection().unwrap();
        let mut pubsub = listener.as_pubsub();
        pubsub.subscribe(backend.channel()).unwrap();
        pubsub
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // A reader never sees half a batch.
        let reader = {
            let backend = backend.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let got = backend
                        .get(&[(Kind::User, "x".into()), (Kind::User, "y".into())])
                        .unwrap();
                    assert_eq!(got[0], got[1], "a batch was seen half applied");
                }
            })
        };
        for i in 0..300 {
            let doc = format!("{{\"n\":{i}}}");
            backend
                .apply(&[put(Kind::User, "x", &doc), put(Kind::User, "y", &doc)])
                .unwrap();
        }
        reader.join().unwrap();
        let first: String = pubsub.get_message().unwrap().get_payload().unwrap();
        assert_eq!(
            parse_change_message(&first),
            Some(vec![(Kind::User, "x".into()), (Kind::User, "y".into())])
        );
    }

    #[test]
    fn an_outage_is_a_prompt_error_and_changes_nothing() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let backend = RedisBackend::open(&server.url(), "mgw").unwrap();
        backend.apply(&[put(Kind::Scope, "a", "true")]).unwrap();
        server.stop();
        let started = Instant::now();
        let e = backend.apply(&[put(Kind::Scope, "b", "true")]).unwrap_err();
        assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
        assert!(
            e.0.contains("unavailable") && e.0.contains("nothing was changed"),
            "{e}"
        );
        assert!(backend.load().is_err());
        server.restart();
        backend.apply(&[put(Kind::Scope, "c", "true")]).unwrap();
        let mut ids: Vec<String> = backend.load().unwrap().into_iter().map(|d| d.1).collect();
        ids.sort();
        assert_eq!(ids, vec!["a", "c"]);
    }

    fn wait_for(what: &str, bound: Duration, mut done: impl FnMut() -> bool) -> Duration {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        started.elapsed()
    }

    #[test]
    fn replicas_share_consumers_and_catch_up_after_an_outage() {
        use crate::store::records::CredentialType;
        use crate::store::KeyAuthOutcome;
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let open = || {
            let backend = RedisBackend::open(&server.url(), "mgw").unwrap();
            let consumers = Arc::new(Consumers::open(Box::new(backend.clone()), 4).unwrap());
            spawn_subscriber(backend, consumers.clone()).unwrap();
            consumers
        };
        let a = open();
        let b = open();
        let doc = |v: serde_json::Value| v.as_object().unwrap().clone();
        a.create_user(doc(serde_json::json!({"username": "ann"})))
            .unwrap();
        let key = a
            .create_credential("ann", CredentialType::KeyAuth, doc(serde_json::json!({})))
            .unwrap();
        let key_id = key["keyId"].as_str().unwrap().to_string();
        let secret = key["keySecret"].as_str().unwrap().to_string();
        // Both replicas agree on the key-auth secret key, so b verifies a's key.
        let took = wait_for("b sees a's key", Duration::from_secs(1), || {
            matches!(
                b.key_auth(&key_id, &secret, &[]),
                KeyAuthOutcome::Accepted(_)
            )
        });
        eprintln!("propagation a -> b: {took:?}");
        // A deletion propagates too.
        b.set_credential_status(CredentialType::KeyAuth, &key_id, false)
            .unwrap();
        wait_for("a sees the deactivation", Duration::from_secs(1), || {
            matches!(
                a.key_auth(&key_id, &secret, &[]),
                KeyAuthOutcome::Unauthorized
            )
        });

        server.stop();
        // Memory still answers; writes fail fast with the reason.
        assert!(b.user("ann").is_ok());
        let started = Instant::now();
        let e = a
            .create_user(doc(serde_json::json!({"username": "bob"})))
            .unwrap_err();
        assert!(started.elapsed() < TIMEOUT * 3);
        assert!(
            matches!(&e, ConsumerError::Unavailable(m) if m.contains("unavailable")),
            "{e:?}"
        );
        server.restart();
        // A change written while b's subscriber is away (no message reaches it) is loaded
        // when it comes back.
        let direct = RedisBackend::open(&server.url(), "mgw").unwrap();
        direct
            .apply(&[Write::Put {
                kind: Kind::Scope,
                id: "quiet".into(),
                doc: "true".into(),
            }])
            .unwrap();
        a.create_user(doc(serde_json::json!({"username": "bob"})))
            .unwrap();
        wait_for("b catches up", Duration::from_secs(5), || {
            b.user("bob").is_ok() && b.scope("quiet").is_ok()
        });
        assert!(b
            .create_user(doc(serde_json::json!({"username": "bob"})))
            .is_err());
    }

    #[test]
    fn cluster_seeds_are_recognised() {
        assert_eq!(cluster_seeds("redis://a:1/0"), None);
        assert_eq!(
            cluster_seeds("redis://a:1, redis://b:2").unwrap(),
            ["redis://a:1", "redis://b:2"]
        );
        assert_eq!(
            cluster_seeds("rediss+cluster://:pw@a:1").unwrap(),
            ["rediss://:pw@a:1"]
        );
    }

    /// Issue 13 item 1: two replicas share their consumers through a real three-node Redis
    /// Cluster; every key of the namespace sits in one slot (hash tag), so transactions hold.
    #[test]
    fn replicas_share_consumers_through_a_redis_cluster() {
        use super::test_server::RedisCluster;
        use crate::store::records::CredentialType;
        use crate::store::KeyAuthOutcome;
        let Some(cluster) = RedisCluster::start() else {
            return;
        };
        let open = |url: &str| {
            let backend = RedisBackend::open(url, "EG").unwrap();
            let consumers = Arc::new(Consumers::open(Box::new(backend.clone()), 4).unwrap());
            spawn_subscriber(backend, consumers.clone()).unwrap();
            consumers
        };
        // Two replicas given the seeds in different orders (and one through a single seed).
        let a = open(&cluster.url());
        let b = open(&format!(
            "redis+cluster://127.0.0.1:{}",
            cluster.nodes[2].port
        ));
        let doc = |v: serde_json::Value| v.as_object().unwrap().clone();
        a.create_user(doc(serde_json::json!({"username": "ann"})))
            .unwrap();
        let key = a
            .create_credential("ann", CredentialType::KeyAuth, doc(serde_json::json!({})))
            .unwrap();
        let key_id = key["keyId"].as_str().unwrap().to_string();
        let secret = key["keySecret"].as_str().unwrap().to_string();
        let took = wait_for("b sees a's key", Duration::from_secs(1), || {
            matches!(
                b.key_auth(&key_id, &secret, &[]),
                KeyAuthOutcome::Accepted(_)
            )
        });
        eprintln!("propagation a -> b through the cluster: {took:?}");
        b.set_credential_status(CredentialType::KeyAuth, &key_id, false)
            .unwrap();
        let took = wait_for("a sees the deactivation", Duration::from_secs(1), || {
            matches!(
                a.key_auth(&key_id, &secret, &[]),
                KeyAuthOutcome::Unauthorized
            )
        });
        eprintln!("propagation b -> a through the cluster: {took:?}");
        // Every key carries the hash tag: one slot, on one primary.
        let backend = RedisBackend::open(&cluster.url(), "EG").unwrap();
        let loaded = backend.load().unwrap();
        assert!(loaded.len() >= 3, "{loaded:?}");
        let mut slots = std::collections::BTreeSet::new();
        for node in &cluster.nodes {
            let mut c = redis::Client::open(node.url())
                .unwrap()
                .get_connection()
                .unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
            for key in keys {
                assert!(key.starts_with("{EG}:doc:"), "{key}");
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&key)
                    .query(&mut c)
                    .unwrap();
                slots.insert(slot);
            }
        }
        assert_eq!(slots.len(), 1, "{slots:?}");
        // A fresh replica loads everything.
        let c = open(&cluster.url());
        assert!(c.user("ann").is_ok());
    }

    #[test]
    fn rediss_with_a_private_ca() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        drop(server);
        let temp = crate::temp_dir("rediss");
        let dir = temp.path();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("key.pem"))
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server (TLS) did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stopped before `temp` (declared earlier) is removed.
        struct Stop(std::process::Child);
        impl Drop for Stop {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _stop = Stop(child);
        let url = format!("rediss://127.0.0.1:{port}/0");
        // The system's roots do not know this certificate.
        let refused = RedisBackend::open(&url, "mgw").unwrap_err();
        assert!(refused.0.contains("unavailable"), "{refused}");
        let backend =
            RedisBackend::open_with_ca(&url, "mgw", Some(cert.pem().into_bytes())).unwrap();
        backend.apply(&[put(Kind::Scope, "tls", "true")]).unwrap();
        assert_eq!(backend.load().unwrap().len(), 1);
    }

    #[test]
    fn a_wrong_address_or_url_stops_the_start() {
        let e = RedisBackend::open("http://x", "mgw").unwrap_err();
        assert!(e.0.contains("is not a Redis URL"), "{e}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = RedisBackend::open(&format!("redis://:pw@127.0.0.1:{port}"), "mgw").unwrap_err();
        assert!(e.0.contains("unavailable") && !e.0.contains("pw@"), "{e}");
        // rediss:// is understood (rustls on ring): only the connection fails here.
        let e = RedisBackend::open(&format!("rediss://:pw@127.0.0.1:{port}/0"), "mgw").unwrap_err();
        assert!(e.0.contains("unavailable") && !e.0.contains("pw@"), "{e}");
    }
}
