//! Counters in Redis, shared by replicas: every decision is one `EVALSHA` of a small Lua
//! script on one key, so it is atomic on the server and exact across replicas.
//!
//! The calls are async, on the `redis` crate's multiplexed connections (many requests in
//! flight on one socket, answers matched in order): one connection per worker thread (at most
//! [`MAX_LINKS`]), so a request never waits for a pool or a blocking thread. A Redis Cluster
//! (comma-separated seeds or a `redis+cluster://` seed, as `[store] redis`) is reached through
//! the crate's async cluster client: keys are hashed normally, so the counters spread over
//! every primary, and `MOVED`/`ASK` answers are followed by the client.
//!
//! Every call is bounded by the timeout twice: the connection's own connect and response
//! timeouts and a `tokio::time::timeout` around the whole decision (connecting included), so a
//! request never waits longer, even on a Redis that accepts connections and never answers
//! (SIGSTOP). A connection that failed or timed out is dropped and made again by a later call.
//! After a failure no call is made until a back-off has passed (100 ms, doubling up to 2 s);
//! then one request probes Redis while the others keep deciding without it. One warning line
//! per interval says how many decisions were taken without Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{AsyncConnectionConfig, Client, Cmd, RedisError, TlsCertificates};

use super::{now_us, Algorithm, Decision, Limit, Source};

/// The most connections kept to Redis (one per worker thread up to this).
pub const MAX_LINKS: usize = 16;
/// The first pause after a failure.
const FIRST_BACKOFF_MS: u64 = 100;
/// The longest pause between two attempts.
const MAX_BACKOFF_MS: u64 = 2_000;
/// How long the start-up may wait for each connection, and for all of them and the scripts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(2);
const STARTUP_TOTAL: Duration = Duration::from_secs(5);

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

/// Where the counters live: one Redis server, or a Redis Cluster.
// One per process, never moved after start-up: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Target {
    Node(Client),
    Cluster(ClusterClient),
}

/// One async connection (cheap to clone: clones share the socket).
// Cloned for every call: boxing the larger variant would allocate per request instead.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Link {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Link {
    async fn query(&mut self, cmd: &Cmd) -> Result<Vec<i64>, RedisError> {
        match self {
            Link::Node(c) => cmd.query_async(c).await,
            Link::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

/// Counters in one Redis server or one Redis Cluster.
pub struct RedisCounters {
    target: Target,
    /// `None` until connected, and again after a failure.
    links: Box<[Mutex<Option<Link>>]>,
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
            .field("cluster", &matches!(self.target, Target::Cluster(_)))
            .field("connections", &self.links.len())
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

/// Whether an error means the connection should be made again.
fn breaks_the_link(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

impl RedisCounters {
    /// Checks `url` (one server, or a cluster: comma-separated seeds or `redis+cluster://`),
    /// opens `connections` connections (1 to [`MAX_LINKS`]; a wrong address stops the
    /// start-up) and loads the scripts. Keys are `<namespace>:rl:<step>:<key>`; every call is
    /// bounded by `timeout`; a warning about an unreachable Redis is written at most once per
    /// `warn_every`. Must run inside the tokio runtime that serves the requests (the
    /// connections' tasks live there).
    pub async fn open(
        url: &str,
        namespace: &str,
        ca: Option<Vec<u8>>,
        timeout: Duration,
        warn_every: Duration,
        connections: usize,
    ) -> Result<Self, RedisCountersError> {
        let shown = crate::config::redact_url(url);
        let url_shown = shown.clone();
        let error = move |reason: String| RedisCountersError {
            url: url_shown.clone(),
            reason,
        };
        let certs = |pem: Vec<u8>| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        };
        let target = match crate::store::redis::cluster_seeds(url) {
            Some(seeds) => {
                // The cluster client follows MOVED/ASK and refreshes its slot map; its retries
                // stay within the timeout around every decision.
                let mut builder = ClusterClient::builder(seeds)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(1)
                    .max_retry_wait(timeout.as_millis().try_into().unwrap_or(u64::MAX));
                if let Some(pem) = ca {
                    builder = builder.certs(certs(pem));
                }
                builder.build().map(Target::Cluster)
            }
            None => match ca {
                Some(pem) => Client::build_with_tls(url, certs(pem)),
                None => Client::open(url),
            }
            .map(Target::Node),
        }
        .map_err(|e| {
            error(format!(
                "not a Redis URL ({})",
                e.detail().unwrap_or("invalid")
            ))
        })?;
        let counters = Self {
            target,
            links: (0..connections.clamp(1, MAX_LINKS))
                .map(|_| Mutex::new(None))
                .collect(),
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
        // Start-up may wait longer than a request: seconds to connect and load the scripts
        // (on a cluster, SCRIPT LOAD goes to every primary).
        let started = async {
            for slot in 0..counters.links.len() {
                counters.connect(slot, STARTUP_TIMEOUT).await?;
            }
            let mut link = counters
                .link(0)
                .ok_or_else(|| RedisError::from((::redis::ErrorKind::Client, "no connection")))?;
            for script in [
                &counters.fixed,
                &counters.fixed_undo,
                &counters.gcra,
                &counters.gcra_undo,
            ] {
                let mut load = ::redis::cmd("SCRIPT");
                load.arg("LOAD").arg(script.text);
                let sha: String = match &mut link {
                    Link::Node(c) => load.query_async(c).await?,
                    Link::Cluster(c) => load.query_async(c).await?,
                };
                if sha != script.sha {
                    return Err(RedisError::from((
                        ::redis::ErrorKind::Client,
                        "SCRIPT LOAD answered another digest",
                        sha,
                    )));
                }
            }
            Ok(())
        };
        match tokio::time::timeout(STARTUP_TOTAL, started).await {
            Ok(Ok(())) => Ok(counters),
            Ok(Err(e)) => Err(error(e.to_string())),
            Err(_) => Err(error(format!(
                "no answer within {} ms",
                STARTUP_TOTAL.as_millis()
            ))),
        }
    }

    /// The key of `key` in Redis.
    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// This thread's connection slot: each thread keeps the one it was given first, so the
    /// worker threads of the runtime spread over the connections without sharing a counter.
    fn slot(&self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        SLOT.with(|s| *s) % self.links.len()
    }

    /// The connection in `slot`, if there is one.
    fn link(&self, slot: usize) -> Option<Link> {
        self.links
            .get(slot)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops every connection (the next calls connect again).
    fn forget(&self) {
        for link in self.links.iter() {
            *link.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Connects `slot`, within `timeout`.
    async fn connect(&self, slot: usize, timeout: Duration) -> Result<Link, RedisError> {
        let link = match &self.target {
            Target::Node(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(self.timeout));
                Link::Node(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            Target::Cluster(client) => {
                let connecting = tokio::time::timeout(timeout, client.get_async_connection());
                Link::Cluster(connecting.await.map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no cluster connection in time",
                    ))
                })??)
            }
        };
        if let Some(cell) = self.links.get(slot) {
            *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
        }
        Ok(link)
    }

    /// Runs `script` on `key` in this thread's connection: `EVALSHA`, or `EVAL` when Redis
    /// lost its scripts (a restart). A kept connection that turns out broken (Redis restarted)
    /// is made again once, and the other kept ones dropped.
    async fn eval(
        &self,
        script: &Script,
        key: &str,
        args: [u64; 2],
    ) -> Result<Vec<i64>, RedisError> {
        let slot = self.slot();
        let (mut link, kept) = match self.link(slot) {
            Some(link) => (link, true),
            None => (self.connect(slot, self.timeout).await?, false),
        };
        let mut result = Self::run(script, key, args, &mut link).await;
        if let Err(e) = &result {
            if breaks_the_link(e) {
                self.forget();
                if kept && !e.is_timeout() {
                    let mut link = self.connect(slot, self.timeout).await?;
                    result = Self::run(script, key, args, &mut link).await;
                    if result.as_ref().is_err_and(breaks_the_link) {
                        self.forget();
                    }
                }
            }
        }
        result
    }

    async fn run(
        script: &Script,
        key: &str,
        args: [u64; 2],
        link: &mut Link,
    ) -> Result<Vec<i64>, RedisError> {
        let mut call = ::redis::cmd("EVALSHA");
        call.arg(&script.sha)
            .arg(1)
            .arg(key)
            .arg(args[0])
            .arg(args[1]);
        match link.query(&call).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                let mut call = ::redis::cmd("EVAL");
                call.arg(script.text)
                    .arg(1)
                    .arg(key)
                    .arg(args[0])
                    .arg(args[1]);
                link.query(&call).await
            }
            other => other,
        }
    }

    /// One decision from Redis.
    async fn decide(&self, key: &str, limit: &Limit) -> Result<Decision, RedisError> {
        let key = self.key(key);
        let decision = match limit.algorithm {
            Algorithm::FixedWindow => {
                let reply = self.eval(&self.fixed, &key, [limit.window_ms, 0]).await?;
                let count = reply.first().copied().unwrap_or(1).max(0) as u64;
                let ttl = reply.get(1).copied().unwrap_or(0).max(0) as u64;
                Decision::fixed_window(limit, count, ttl, now_us() / 1000)
            }
            Algorithm::Gcra { .. } if limit.max == 0 => super::gcra(limit, 0, now_us()).0,
            Algorithm::Gcra { .. } => {
                let args = [limit.emission_interval_us(), limit.tolerance_us()];
                let reply = self.eval(&self.gcra, &key, args).await?;
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
    pub async fn hit(&self, key: &str, limit: &Limit) -> Option<Decision> {
        let now_ms = now_us() / 1000;
        if !self.health.may_call(now_ms) {
            self.health
                .skipped(now_ms, &self.shown, "waiting to reconnect", "without it");
            return None;
        }
        let reason = match tokio::time::timeout(self.timeout, self.decide(key, limit)).await {
            Ok(Ok(decision)) => {
                self.health.up(&self.shown);
                return Some(decision);
            }
            Ok(Err(e)) if e.is_timeout() => {
                format!("no answer within {} ms", self.timeout.as_millis())
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => {
                // A connection that does not answer may be half open: make it again.
                self.forget();
                format!("no answer within {} ms", self.timeout.as_millis())
            }
        };
        self.health
            .failed(now_us() / 1000, &self.shown, &reason, "without it");
        None
    }

    /// Takes one hit back, in the background (bounded by the timeout).
    pub fn undo(self: &Arc<Self>, key: &str, limit: &Limit) {
        if self.health.retry_at_ms.load(Ordering::Relaxed) != 0 {
            return;
        }
        let this = Arc::clone(self);
        let key = self.key(key);
        let limit = *limit;
        drop(tokio::spawn(async move {
            let call = async {
                match limit.algorithm {
                    Algorithm::FixedWindow => this.eval(&this.fixed_undo, &key, [0, 0]).await,
                    Algorithm::Gcra { .. } => {
                        let args = [limit.emission_interval_us(), 0];
                        this.eval(&this.gcra_undo, &key, args).await
                    }
                }
            };
            match tokio::time::timeout(this.timeout, call).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!("rate-limit counters: a hit was not taken back: {e}"),
                Err(_) => tracing::debug!("rate-limit counters: a hit was not taken back in time"),
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::test_server::RedisServer;

    async fn open(server: &RedisServer, timeout_ms: u64) -> Arc<RedisCounters> {
        Arc::new(
            RedisCounters::open(
                &server.url(),
                "t",
                None,
                Duration::from_millis(timeout_ms),
                Duration::from_secs(60),
                2,
            )
            .await
            .expect("open"),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_window_is_shared_and_exact() {
        let Some(server) = RedisServer::start() else {
            eprintln!("redis-server not installed: skipped");
            return;
        };
        let a = open(&server, 200).await;
        let b = open(&server, 200).await;
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
        let a = open(&server, 200).await;
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

    /// Redis forgot its scripts (`SCRIPT FLUSH`, as after a restart): the next decision sends
    /// the script again and is still exact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_scripts_are_sent_again() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let a = open(&server, 200).await;
        let limit = Limit {
            max: 3,
            window_ms: 60_000,
            algorithm: Algorithm::FixedWindow,
        };
        assert_eq!(a.hit("n", &limit).await.unwrap().count, 1);
        let mut admin = ::redis::Client::open(server.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(1))
            .unwrap();
        let _: () = ::redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut admin)
            .unwrap();
        assert_eq!(a.hit("n", &limit).await.unwrap().count, 2);
        let gcra = Limit {
            algorithm: Algorithm::Gcra { burst: 2 },
            ..limit
        };
        assert!(a.hit("m", &gcra).await.unwrap().allowed);
    }

    /// A real three-node Redis Cluster: keys are hashed normally (the counters spread over
    /// every primary, the client follows the slots), and two replicas sharing it admit
    /// exactly `max` per key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_cluster_spreads_the_counters_and_stays_exact() {
        use crate::store::redis::test_server::RedisCluster;
        let Some(cluster) = RedisCluster::start() else {
            return;
        };
        let open = |url: String| async move {
            Arc::new(
                RedisCounters::open(
                    &url,
                    "t",
                    None,
                    Duration::from_millis(500),
                    Duration::from_secs(60),
                    2,
                )
                .await
                .expect("open the cluster"),
            )
        };
        let a = open(cluster.url()).await;
        let b = open(format!(
            "redis+cluster://127.0.0.1:{}",
            cluster.nodes[1].port
        ))
        .await;
        let limit = Limit {
            max: 7,
            window_ms: 60_000,
            algorithm: Algorithm::FixedWindow,
        };
        let keys: Vec<String> = (0..12).map(|i| format!("client-{i}")).collect();
        let mut tasks = Vec::new();
        for key in &keys {
            for i in 0..20 {
                let c = if i % 2 == 0 { a.clone() } else { b.clone() };
                let key = key.clone();
                tasks.push(tokio::spawn(async move {
                    let d = c.hit(&key, &limit).await;
                    (key, d)
                }));
            }
        }
        let mut admitted = std::collections::HashMap::new();
        for t in tasks {
            let (key, d) = t.await.unwrap();
            let d = d.expect("the cluster answers");
            assert_eq!(d.source, Source::Shared);
            *admitted.entry(key).or_insert(0u64) += u64::from(d.allowed);
        }
        assert_eq!(admitted.len(), 12);
        assert!(admitted.values().all(|&n| n == 7), "{admitted:?}");
        for node in &cluster.nodes {
            let mut c = ::redis::Client::open(node.url())
                .unwrap()
                .get_connection_with_timeout(Duration::from_secs(1))
                .unwrap();
            let keys: i64 = ::redis::cmd("DBSIZE").query(&mut c).unwrap();
            assert!(keys > 0, "node {} holds no counter", node.port);
        }
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
                2,
            )
            .await
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
        let a = open(&server, 100).await;
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
