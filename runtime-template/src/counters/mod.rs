//! Rate-limit counters (DESIGN.md, "State"): one decision per request, for a key and a
//! [`Limit`], in memory by default or, with a Redis URL, in one atomic script that every
//! replica runs against the same Redis.
//!
//! Algorithms and the bounds they guarantee (`max` per `windowMs`, all replicas together when
//! the counters are in Redis):
//!
//! - [`Algorithm::FixedWindow`] (Express Gateway's, via express-rate-limit and
//!   rate-limit-redis): a key's window opens at its first hit and lasts `windowMs`; every hit
//!   counts (refused ones too) and a hit is admitted while the count is at most `max`. At most
//!   `max` admissions per window, so at most `2·max` in any interval of length `windowMs` (the
//!   end of one window and the start of the next).
//! - [`Algorithm::Gcra`] (generic cell rate algorithm, a smoother option): one admission per
//!   `windowMs / max` on average, with bursts of at most `burst` (default `max`). At most
//!   `burst + ⌊t · max / windowMs⌋` admissions in any interval of length `t`.
//!
//! With Redis, a decision is one `EVALSHA` (the fixed window counts with `INCR` and sets the
//! expiry with `PEXPIRE` on Redis's clock; GCRA reads Redis's `TIME`), so the bounds hold for
//! N replicas together, whatever their clocks. When Redis does not answer within the timeout
//! the decision is taken without it ([`Counters::hit`]).

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(not(feature = "redis"))]
#[path = "redis_absent.rs"]
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use memory::MemoryCounters;
pub use redis::RedisCounters;

/// How a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Fixed windows opened by a key's first hit (Express Gateway's).
    FixedWindow,
    /// Generic cell rate algorithm: a steady rate with bursts of at most `burst`.
    Gcra {
        /// The largest burst (at least 1).
        burst: u64,
    },
}

/// A quota: `max` hits per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Hits admitted per window; 0 admits everything (express-rate-limit's "disabled").
    pub max: u64,
    /// The window, in milliseconds (at least 1).
    pub window_ms: u64,
    /// How hits are counted.
    pub algorithm: Algorithm,
}

impl Limit {
    /// GCRA's emission interval: the window shared by `max` hits, in microseconds (≥ 1).
    pub fn emission_interval_us(&self) -> u64 {
        (self.window_ms.saturating_mul(1000) / self.max.max(1)).max(1)
    }

    /// GCRA's burst tolerance τ = (burst − 1) × interval, in microseconds.
    fn tolerance_us(&self) -> u64 {
        let burst = match self.algorithm {
            Algorithm::Gcra { burst } => burst.max(1),
            Algorithm::FixedWindow => 1,
        };
        (burst - 1).saturating_mul(self.emission_interval_us())
    }

    /// This limit divided between `replicas` (rounded up): what each replica admits on its
    /// own while the shared counters are unreachable.
    pub fn per_replica(&self, replicas: u64) -> Limit {
        let replicas = replicas.max(1);
        let share = |n: u64| n.div_ceil(replicas).max(1);
        Limit {
            max: if self.max == 0 { 0 } else { share(self.max) },
            window_ms: self.window_ms,
            algorithm: match self.algorithm {
                Algorithm::Gcra { burst } => Algorithm::Gcra {
                    burst: share(burst),
                },
                a => a,
            },
        }
    }
}

/// Where a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// In this process (no Redis configured).
    Memory,
    /// In Redis, shared by every replica.
    Shared,
    /// In this process with the per-replica share, because Redis did not answer (fail open).
    Fallback,
    /// Redis did not answer and the configuration says to refuse (fail closed).
    Unavailable,
}

/// The answer for one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The hit is admitted.
    pub allowed: bool,
    /// Hits in the current window, this one included (express-rate-limit's `current`).
    pub count: u64,
    /// Hits still admitted now (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// When the window ends or the bucket is full again: epoch milliseconds
    /// (`X-RateLimit-Reset`, in seconds rounded up).
    pub reset_ms: u64,
    /// When refused: how long until a hit would be admitted (milliseconds).
    pub retry_after_ms: u64,
    /// Where it was decided.
    pub source: Source,
}

impl Decision {
    /// A fixed-window decision from the count and the time left in the window.
    fn fixed_window(limit: &Limit, count: u64, left_ms: u64, now_ms: u64) -> Decision {
        let allowed = limit.max == 0 || count <= limit.max;
        Decision {
            allowed,
            count,
            remaining: limit.max.saturating_sub(count),
            reset_ms: now_ms + left_ms,
            retry_after_ms: if allowed { 0 } else { left_ms },
            source: Source::Memory,
        }
    }

    /// A GCRA decision from what the script (or the memory) computed:
    /// `admitted`; `slack_us` = remaining × interval when admitted, time to wait when not;
    /// `full_in_us` = time until the bucket is full again.
    fn gcra(limit: &Limit, admitted: bool, slack_us: u64, full_in_us: u64, now_us: u64) -> Self {
        let interval = limit.emission_interval_us();
        let remaining = if admitted { slack_us / interval } else { 0 };
        Decision {
            allowed: admitted,
            count: if admitted {
                limit.max.saturating_sub(remaining)
            } else {
                limit.max + 1
            },
            remaining,
            reset_ms: (now_us + full_in_us).div_ceil(1000),
            retry_after_ms: if admitted { 0 } else { slack_us.div_ceil(1000) },
            source: Source::Memory,
        }
    }
}

/// GCRA on a theoretical arrival time: the decision and, when admitted, the new time.
pub(crate) fn gcra(limit: &Limit, tat_us: u64, now_us: u64) -> (Decision, Option<u64>) {
    if limit.max == 0 {
        let d = Decision {
            allowed: true,
            count: 1,
            remaining: 0,
            reset_ms: now_us / 1000,
            retry_after_ms: 0,
            source: Source::Memory,
        };
        return (d, None);
    }
    let interval = limit.emission_interval_us();
    let tolerance = limit.tolerance_us();
    let tat = tat_us.max(now_us);
    let allow_at = tat.saturating_sub(tolerance);
    if now_us < allow_at {
        let d = Decision::gcra(limit, false, allow_at - now_us, tat - now_us, now_us);
        return (d, None);
    }
    let new = tat + interval;
    let slack = (now_us + tolerance + interval).saturating_sub(new);
    (
        Decision::gcra(limit, true, slack, new - now_us, now_us),
        Some(new),
    )
}

/// The wall clock in epoch microseconds.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What to do when Redis does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Refuse (503) instead of deciding locally.
    pub fail_closed: bool,
    /// Replicas sharing the quota: while Redis is unreachable each admits `max / replicas`.
    pub replicas: u64,
}

/// The counters every rate-limit step of a gateway uses.
pub struct Counters {
    memory: MemoryCounters,
    shared: Option<Arc<RedisCounters>>,
    failure: FailurePolicy,
    fallbacks: AtomicU64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("shared", &self.shared)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl Counters {
    /// Counters in this process only.
    pub fn in_memory() -> Self {
        Self {
            memory: MemoryCounters::new(),
            shared: None,
            failure: FailurePolicy {
                fail_closed: false,
                replicas: 1,
            },
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Counters in Redis, with `failure` deciding when it does not answer.
    pub fn shared(redis: RedisCounters, failure: FailurePolicy) -> Self {
        Self {
            memory: MemoryCounters::new(),
            shared: Some(Arc::new(redis)),
            failure,
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Decisions taken without Redis because it did not answer (fail open or closed).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Counts one hit on `key` and decides. Never waits longer than the Redis timeout.
    pub async fn hit(&self, key: &str, limit: &Limit) -> Decision {
        let Some(shared) = &self.shared else {
            return self.memory.hit(key, limit, now_us());
        };
        // Boxed: a Redis exchange is a 2.7 KB future, and every future that may wait on it
        // (the rate-limit and throttling steps, the pipeline, the gateway's request) would
        // be that much larger for every request, local counters included; next to the
        // round trip to Redis the allocation is nothing.
        if let Some(decision) = Box::pin(shared.hit(key, limit)).await {
            return decision;
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        if self.failure.fail_closed {
            return Decision {
                allowed: false,
                count: 0,
                remaining: 0,
                reset_ms: now_us() / 1000,
                retry_after_ms: 1000,
                source: Source::Unavailable,
            };
        }
        let local = limit.per_replica(self.failure.replicas);
        Decision {
            source: Source::Fallback,
            ..self.memory.hit(key, &local, now_us())
        }
    }

    /// Takes back a hit counted by a decision from `source` (`skipFailedRequests`,
    /// `skipSuccessfulRequests`). Does not wait for Redis.
    pub fn undo(&self, key: &str, limit: &Limit, source: Source) {
        match (source, &self.shared) {
            (Source::Shared, Some(shared)) => shared.undo(key, limit),
            (Source::Fallback, _) => {
                let local = limit.per_replica(self.failure.replicas);
                self.memory.undo(key, &local, now_us());
            }
            (Source::Memory, _) => self.memory.undo(key, limit, now_us()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_replica_share_rounds_up() {
        let limit = Limit {
            max: 10,
            window_ms: 1000,
            algorithm: Algorithm::FixedWindow,
        };
        assert_eq!(limit.per_replica(3).max, 4);
        assert_eq!(limit.per_replica(0).max, 10);
        assert_eq!(limit.per_replica(100).max, 1);
        let off = Limit { max: 0, ..limit };
        assert_eq!(off.per_replica(2).max, 0);
    }

    #[tokio::test]
    async fn in_memory_counters_decide_without_redis() {
        let counters = Counters::in_memory();
        let limit = Limit {
            max: 2,
            window_ms: 60_000,
            algorithm: Algorithm::FixedWindow,
        };
        assert!(counters.hit("a", &limit).await.allowed);
        let d = counters.hit("a", &limit).await;
        assert!(d.allowed);
        assert_eq!(d.source, Source::Memory);
        let d = counters.hit("a", &limit).await;
        assert!(!d.allowed);
        assert!(d.retry_after_ms > 59_000 && d.retry_after_ms <= 60_000);
        assert!(d.reset_ms >= now_us() / 1000 + 59_000);
    }
}
