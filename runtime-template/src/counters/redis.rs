//! Counters in Redis, shared by replicas: every decision is one `EVALSHA` of a small Lua
//! script on one key, so it is atomic on the server and exact across replicas.
//!
//! Calls run on tokio's blocking pool over the synchronous client (the one `store::redis`
//! uses), each bounded by the timeout twice: the socket's read/write/connect timeouts and a
//! `tokio::time::timeout` around the call, so a request never waits longer, even on a Redis
//! that accepts connections and never answers (SIGSTOP). After a failure no call is made
//! until a back-off has passed (100 ms, doubling up to 2 s); then one request probes Redis
//! while the others keep deciding without it. One warning line per interval says how many
//! decisions were taken without Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::{Client, Connection, RedisError};

use super::{now_us, Algorithm, Decision, Limit, Source};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 64;
/// The first pause after a failure.
const FIRST_BACKOFF_MS: u64 = 100;
/// The longest pause between two attempts.
const MAX_BACKOFF_MS: u64 = 2_000;

/// Fixed window (rate-limit-redis's `INCR` + `PTTL` + `PEXPIRE`, in one script): returns
/// `{count, ttl_ms}`.
const FIXED_WINDOW: &str = "\
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if c == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}";

/// Takes one hit back from a fixed window that still exists.
const FIXED_UNDO: &str = "\
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DECR', KEYS[1])
end
return {0}";

/// GCRA on Redis's clock (`TIME`, microseconds). ARGV: emission interval, tolerance (µs).
/// Returns `{admitted, slack_us, full_in_us}` (see `Decision::gcra`).
const GCRA: &str = "\
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local te = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if now < tat - tau then
  return {0, tat - tau - now, tat - now}
end
local new = tat + te
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1)
return {1, now + tau + te - new, new - now}";

/// Takes one interval back from a GCRA key.
const GCRA_UNDO: &str = "\
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat then
  local new = tat - tonumber(ARGV[1])
  if new > now then
    redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1)
  else
    redis.call('DEL', KEYS[1])
  end
end
return {0}";

struct Script {
    text: &'static str,
    sha: String,
}

impl Script {
    fn new(text: &'static str) -> Self {
        use sha1::Digest;
        let digest = sha1::Sha1::digest(text.as_bytes());
        let sha = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self { text, sha }
    }
}

/// A Redis call that failed.
#[derive(Debug, thiserror::Error)]
#[error("rate-limit counters in Redis {url}: {reason}")]
pub struct RedisCountersError {
    /// The URL without its password.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// Counters in one Redis (single node).
pub struct RedisCounters {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    prefix: String,
    timeout: Duration,
    shown: String,
    fixed: Script,
    fixed_undo: Script,
    gcra: Script,
    gcra_undo: Script,
    health: Health,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Whether Redis may be called now, and the warnings about it.
struct Health {
    /// 0 while Redis answers; else the epoch ms after which one request may probe it.
    retry_at_ms: AtomicU64,
    backoff_ms: AtomicU64,
    last_warn_ms: AtomicU64,
    warn_every_ms: u64,
    /// Decisions taken without Redis since the last warning.
    missed: AtomicU64,
    down: AtomicBool,
}

impl Health {
    fn may_call(&self, now_ms: u64) -> bool {
        let retry_at = self.retry_at_ms.load(Ordering::Acquire);
        if retry_at == 0 {
            return true;
        }
        if now_ms < retry_at {
            return false;
        }
        // One probe per back-off: the request that moves the deadline makes the call.
        let next = now_ms + self.backoff_ms.load(Ordering::Relaxed);
        self.retry_at_ms
            .compare_exchange(retry_at, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    fn up(&self, shown: &str) {
        // Reads only while Redis answers: no shared write per request.
        if self.retry_at_ms.load(Ordering::Relaxed) == 0 && !self.down.load(Ordering::Relaxed) {
            return;
        }
        if self.retry_at_ms.swap(0, Ordering::AcqRel) != 0 || self.down.load(Ordering::Relaxed) {
            self.backoff_ms.store(FIRST_BACKOFF_MS, Ordering::Relaxed);
            if self.down.swap(false, Ordering::AcqRel) {
                let missed = self.missed.swap(0, Ordering::Relaxed);
                tracing::warn!(
                    "rate-limit counters: Redis {shown} answers again; {missed} decisions were taken without it"
                );
            }
        }
    }

    fn failed(&self, now_ms: u64, shown: &str, reason: &str, fail_closed_hint: &str) {
        let backoff = if self.down.swap(true, Ordering::AcqRel) {
            let b = (self.backoff_ms.load(Ordering::Relaxed) * 2).min(MAX_BACKOFF_MS);
            self.backoff_ms.store(b, Ordering::Relaxed);
            b
        } else {
            self.backoff_ms.load(Ordering::Relaxed)
        };
        let _ = self
            .retry_at_ms
            .fetch_max(now_ms + backoff, Ordering::AcqRel);
        self.skipped(now_ms, shown, reason, fail_closed_hint);
    }

    fn skipped(&self, now_ms: u64, shown: &str, reason: &str, hint: &str) {
        let missed = self.missed.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if (last == 0 || now_ms.saturating_sub(last) >= self.warn_every_ms)
            && self
                .last_warn_ms
                .compare_exchange(last, now_ms.max(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.missed.store(0, Ordering::Relaxed);
            tracing::warn!(
                "rate-limit counters: Redis {shown} is unavailable ({reason}); {missed} decisions taken {hint} since the last warning"
            );
        }
    }
}

impl RedisCounters {
    /// Checks `url`, connects once (a wrong address stops the start-up) and loads the scripts.
    /// Keys are `<namespace>:rl:<step>:<key>`; every call is bounded by `timeout`; a warning
    /// about an unreachable Redis is written at most once per `warn_every`.
    pub fn open(
        url: &str,
        namespace: &str,
        ca: Option<Vec<u8>>,
        timeout: Duration,
        warn_every: Duration,
    ) -> Result<Self, RedisCountersError> {
        let shown = crate::config::redact_url(url);
        let url_shown = shown.clone();
        let error = move |reason: String| RedisCountersError {
            url: url_shown.clone(),
            reason,
        };
        let client = match ca {
            Some(pem) => Client::build_with_tls(
                url,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            ),
            None => Client::open(url),
        }
        .map_err(|e| {
            error(format!(
                "not a Redis URL ({})",
                e.detail().unwrap_or("invalid")
            ))
        })?;
        let counters = Self {
            client,
            idle: Mutex::new(Vec::new()),
            prefix: format!("{namespace}:rl:"),
            timeout,
            fixed: Script::new(FIXED_WINDOW),
            fixed_undo: Script::new(FIXED_UNDO),
            gcra: Script::new(GCRA),
            gcra_undo: Script::new(GCRA_UNDO),
            health: Health {
                retry_at_ms: AtomicU64::new(0),
                backoff_ms: AtomicU64::new(FIRST_BACKOFF_MS),
                last_warn_ms: AtomicU64::new(0),
                warn_every_ms: u64::try_from(warn_every.as_millis()).unwrap_or(u64::MAX),
                missed: AtomicU64::new(0),
                down: AtomicBool::new(false),
            },
            shown,
        };
        // Start-up may wait longer than a request: a second to connect and load the scripts.
        let mut connection = counters
            .client
            .get_connection_with_timeout(Duration::from_secs(1))
            .map_err(|e| error(e.to_string()))?;
        for script in [
            &counters.fixed,
            &counters.fixed_undo,
            &counters.gcra,
            &counters.gcra_undo,
        ] {
            let sha: String = ::redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script.text)
                .query(&mut connection)
                .map_err(|e| error(e.to_string()))?;
            if sha != script.sha {
                return Err(error(format!("SCRIPT LOAD answered {sha}")));
            }
        }
        Ok(counters)
    }

    /// The key of `key` in Redis.
    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// An idle connection (and `true`), or a new one.
    fn connection(&self) -> Result<(Connection, bool), RedisError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        if let Some(c) = idle {
            return Ok((c, true));
        }
        Ok((self.connect()?, false))
    }

    fn connect(&self) -> Result<Connection, RedisError> {
        let c = self.client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    /// Runs `script` on `key` (blocking): `EVALSHA`, or `EVAL` when Redis lost its scripts
    /// (a restart). An idle connection that turns out broken (Redis restarted) is replaced
    /// once, and the other idle ones dropped.
    fn eval(&self, script: &Script, key: &str, args: [u64; 2]) -> Result<Vec<i64>, RedisError> {
        let (mut connection, pooled) = self.connection()?;
        let mut result = Self::run(script, key, args, &mut connection);
        if let Err(e) = &result {
            if pooled && (e.is_io_error() || e.is_connection_dropped()) && !e.is_timeout() {
                self.idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clear();
                connection = self.connect()?;
                result = Self::run(script, key, args, &mut connection);
            }
        }
        match &result {
            Ok(_) => {
                let mut idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
            }
            Err(_) => self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear(),
        }
        result
    }

    fn run(
        script: &Script,
        key: &str,
        args: [u64; 2],
        connection: &mut Connection,
    ) -> Result<Vec<i64>, RedisError> {
        let mut call = ::redis::cmd("EVALSHA");
        call.arg(&script.sha)
            .arg(1)
            .arg(key)
            .arg(args[0])
            .arg(args[1]);
        match call.query::<Vec<i64>>(connection) {
            Err(e) if e.code() == Some("NOSCRIPT") => ::redis::cmd("EVAL")
                .arg(script.text)
                .arg(1)
                .arg(key)
                .arg(args[0])
                .arg(args[1])
                .query::<Vec<i64>>(connection),
            other => other,
        }
    }

    /// One decision from Redis (blocking).
    fn decide(&self, key: &str, limit: &Limit) -> Result<Decision, RedisError> {
        let key = self.key(key);
        let decision = match limit.algorithm {
            Algorithm::FixedWindow => {
                let reply = self.eval(&self.fixed, &key, [limit.window_ms, 0])?;
                let count = reply.first().copied().unwrap_or(1).max(0) as u64;
                let ttl = reply.get(1).copied().unwrap_or(0).max(0) as u64;
                Decision::fixed_window(limit, count, ttl, now_us() / 1000)
            }
            Algorithm::Gcra { .. } if limit.max == 0 => super::gcra(limit, 0, now_us()).0,
            Algorithm::Gcra { .. } => {
                let args = [limit.emission_interval_us(), limit.tolerance_us()];
                let reply = self.eval(&self.gcra, &key, args)?;
                let at = |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64;
                Decision::gcra(limit, at(0) == 1, at(1), at(2), now_us())
            }
        };
        Ok(Decision {
            source: Source::Shared,
            ..decision
        })
    }

    /// Counts one hit in Redis; `None` when Redis is unavailable or too slow (after at most
    /// the timeout), or still in its back-off.
    pub async fn hit(self: &Arc<Self>, key: &str, limit: &Limit) -> Option<Decision> {
        let now_ms = now_us() / 1000;
        if !self.health.may_call(now_ms) {
            self.health
                .skipped(now_ms, &self.shown, "waiting to reconnect", "without it");
            return None;
        }
        let this = Arc::clone(self);
        let owned = key.to_owned();
        let limit_copy = *limit;
        let call = tokio::task::spawn_blocking(move || this.decide(&owned, &limit_copy));
        let reason = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(Ok(decision))) => {
                self.health.up(&self.shown);
                return Some(decision);
            }
            Ok(Ok(Err(e))) if e.is_timeout() => {
                format!("no answer within {} ms", self.timeout.as_millis())
            }
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(e)) => format!("the call failed: {e}"),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        self.health
            .failed(now_us() / 1000, &self.shown, &reason, "without it");
        None
    }

    /// Takes one hit back, in the background.
    pub fn undo(self: &Arc<Self>, key: &str, limit: &Limit) {
        if self.health.retry_at_ms.load(Ordering::Relaxed) != 0 {
            return;
        }
        let this = Arc::clone(self);
        let key = self.key(key);
        let limit = *limit;
        drop(tokio::task::spawn_blocking(move || {
            let result = match limit.algorithm {
                Algorithm::FixedWindow => this.eval(&this.fixed_undo, &key, [0, 0]),
                Algorithm::Gcra { .. } => {
                    this.eval(&this.gcra_undo, &key, [limit.emission_interval_us(), 0])
                }
            };
            if let Err(e) = result {
                tracing::debug!("rate-limit counters: a hit was not taken back: {e}");
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::test_server::RedisServer;

    fn open(server: &RedisServer, timeout_ms: u64) -> Arc<RedisCounters> {
        Arc::new(
            RedisCounters::open(
                &server.url(),
                "t",
                None,
                Duration::from_millis(timeout_ms),
                Duration::from_secs(60),
            )
            .expect("open"),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_window_is_shared_and_exact() {
        let Some(server) = RedisServer::start() else {
            eprintln!("redis-server not installed: skipped");
            return;
        };
        let a = open(&server, 200);
        let b = open(&server, 200);
        let limit = Limit {
            max: 25,
            window_ms: 60_000,
            algorithm: Algorithm::FixedWindow,
        };
        let mut tasks = Vec::new();
        for i in 0..100 {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move { c.hit("k", &limit).await }));
        }
        let mut admitted = 0;
        for t in tasks {
            let d = t.await.unwrap().expect("redis answers");
            assert_eq!(d.source, Source::Shared);
            admitted += u64::from(d.allowed);
        }
        assert_eq!(admitted, 25);
        // The window's reset is about a minute away.
        let d = a.hit("k", &limit).await.unwrap();
        assert_eq!(d.count, 101);
        assert!(
            d.retry_after_ms > 55_000 && d.retry_after_ms <= 60_000,
            "{d:?}"
        );
        a.undo("k", &limit);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gcra_runs_on_the_servers_clock() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let a = open(&server, 200);
        let limit = Limit {
            max: 5,
            window_ms: 60_000,
            algorithm: Algorithm::Gcra { burst: 5 },
        };
        let mut admitted = 0;
        for i in 0..8 {
            let d = a.hit("g", &limit).await.unwrap();
            if d.allowed {
                assert_eq!(d.remaining, 4 - admitted, "hit {i}");
            } else {
                assert!(
                    d.retry_after_ms > 11_000 && d.retry_after_ms <= 12_000,
                    "{d:?}"
                );
            }
            admitted += u64::from(d.allowed);
        }
        assert_eq!(admitted, 5);
    }

    /// A Redis that accepts connections and never answers (SIGSTOP): each call still ends
    /// within the timeout, then the back-off skips Redis; after SIGCONT it is used again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frozen_redis_never_holds_a_request_longer_than_the_timeout() {
        use std::process::{Command, Stdio};
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let signal = |name: &str| {
            let ok = Command::new("kill")
                .args([name, &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {name}");
        };
        let counters = Arc::new(
            RedisCounters::open(
                &format!("redis://127.0.0.1:{port}/0"),
                "t",
                None,
                Duration::from_millis(100),
                Duration::from_secs(60),
            )
            .unwrap(),
        );
        let limit = Limit {
            max: 5,
            window_ms: 60_000,
            algorithm: Algorithm::FixedWindow,
        };
        assert!(counters.hit("f", &limit).await.is_some());
        signal("-STOP");
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let started = std::time::Instant::now();
            assert!(counters.hit("f", &limit).await.is_none());
            slowest = slowest.max(started.elapsed());
        }
        signal("-CONT");
        assert!(slowest < Duration::from_millis(300), "{slowest:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while counters.hit("f", &limit).await.is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no recovery after SIGCONT"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_redis_costs_at_most_the_timeout() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let a = open(&server, 100);
        let limit = Limit {
            max: 5,
            window_ms: 60_000,
            algorithm: Algorithm::FixedWindow,
        };
        assert!(a.hit("s", &limit).await.is_some());
        server.stop();
        let started = std::time::Instant::now();
        assert!(a.hit("s", &limit).await.is_none());
        assert!(started.elapsed() < Duration::from_millis(400));
        // In the back-off, no call at all.
        let started = std::time::Instant::now();
        assert!(a.hit("s", &limit).await.is_none());
        assert!(started.elapsed() < Duration::from_millis(20));
        server.restart();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if a.hit("s", &limit).await.is_some() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no reconnection");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
