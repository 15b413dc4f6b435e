//! Counters in this process: a sharded map, so concurrent requests on different keys rarely
//! meet on a lock and never on a global one. Old windows are dropped by the shard that holds
//! them, a little at a time, when that shard is next used: there is no sweeper thread and no
//! pass over every shard at once.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use super::{Algorithm, Decision, Limit};

/// Shards of the map (a power of two).
const SHARDS: usize = 64;

/// A shard looks for expired entries at most this often (milliseconds).
const SWEEP_EVERY_MS: u64 = 1_000;

/// A shard with fewer entries than this is not swept (nothing worth freeing).
const SWEEP_MIN_ENTRIES: usize = 16;

/// One key's state.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// Fixed window: hits so far and when the window ends (epoch ms).
    Window { count: u64, ends_ms: u64 },
    /// GCRA: the theoretical arrival time (epoch µs).
    Gcra { tat_us: u64 },
}

impl Entry {
    /// The entry can be dropped at `now_us`: its window is over, or its bucket full again.
    fn expired(&self, now_us: u64) -> bool {
        match *self {
            Entry::Window { ends_ms, .. } => ends_ms.saturating_mul(1000) <= now_us,
            Entry::Gcra { tat_us } => tat_us <= now_us,
        }
    }
}

struct Shard {
    entries: HashMap<Box<str>, Entry>,
    next_sweep_ms: u64,
}

/// Counters held in memory (the default, and the fallback while Redis is unreachable).
pub struct MemoryCounters {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCounters").finish_non_exhaustive()
    }
}

impl MemoryCounters {
    /// Empty counters.
    pub fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    entries: HashMap::new(),
                    next_sweep_ms: 0,
                })
            })
            .collect();
        Self {
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let index = (self.hasher.hash_one(key) as usize) & (SHARDS - 1);
        // `index < SHARDS == self.shards.len()`.
        &self.shards[index]
    }

    /// Counts one hit on `key` at `now_us` (epoch microseconds) and decides.
    pub fn hit(&self, key: &str, limit: &Limit, now_us: u64) -> Decision {
        let now_ms = now_us / 1000;
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now_ms >= shard.next_sweep_ms {
            shard.next_sweep_ms = now_ms + SWEEP_EVERY_MS;
            if shard.entries.len() >= SWEEP_MIN_ENTRIES {
                shard.entries.retain(|_, e| !e.expired(now_us));
            }
        }
        let entry = shard.entries.get_mut(key);
        match limit.algorithm {
            Algorithm::FixedWindow => {
                let (count, ends_ms) = match entry {
                    Some(Entry::Window { count, ends_ms }) if *ends_ms > now_ms => {
                        *count += 1;
                        (*count, *ends_ms)
                    }
                    Some(e) => {
                        let ends_ms = now_ms + limit.window_ms;
                        *e = Entry::Window { count: 1, ends_ms };
                        (1, ends_ms)
                    }
                    None => {
                        let ends_ms = now_ms + limit.window_ms;
                        shard
                            .entries
                            .insert(key.into(), Entry::Window { count: 1, ends_ms });
                        (1, ends_ms)
                    }
                };
                Decision::fixed_window(limit, count, ends_ms.saturating_sub(now_ms), now_ms)
            }
            Algorithm::Gcra { .. } => {
                let tat_us = match entry {
                    Some(Entry::Gcra { tat_us }) => *tat_us,
                    _ => now_us,
                };
                let (decision, new_tat) = super::gcra(limit, tat_us, now_us);
                if let Some(new_tat) = new_tat {
                    match entry {
                        Some(e) => *e = Entry::Gcra { tat_us: new_tat },
                        None => {
                            shard
                                .entries
                                .insert(key.into(), Entry::Gcra { tat_us: new_tat });
                        }
                    }
                }
                decision
            }
        }
    }

    /// Takes back one hit on `key` (`skipFailedRequests`, `skipSuccessfulRequests`).
    pub fn undo(&self, key: &str, limit: &Limit, now_us: u64) {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match shard.entries.get_mut(key) {
            Some(Entry::Window { count, ends_ms }) if ends_ms.saturating_mul(1000) > now_us => {
                *count = count.saturating_sub(1);
            }
            Some(Entry::Gcra { tat_us }) => {
                let interval = limit.emission_interval_us();
                *tat_us = tat_us.saturating_sub(interval).max(now_us);
            }
            _ => {}
        }
    }

    /// Keys held (for tests).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }

    /// No key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(max: u64, window_ms: u64) -> Limit {
        Limit {
            max,
            window_ms,
            algorithm: Algorithm::FixedWindow,
        }
    }

    #[test]
    fn fixed_window_counts_rejects_and_resets_at_the_boundary() {
        let counters = MemoryCounters::new();
        let limit = fixed(3, 1000);
        let t0 = 1_000_000_000_000u64; // µs
        for i in 1..=3 {
            let d = counters.hit("k", &limit, t0 + i * 1000);
            assert!(d.allowed, "hit {i}");
            assert_eq!(d.count, i);
            assert_eq!(d.remaining, 3 - i);
        }
        let d = counters.hit("k", &limit, t0 + 10_000);
        assert!(!d.allowed);
        assert_eq!(
            d.count, 4,
            "a refused hit counts, as express-rate-limit does"
        );
        assert_eq!(d.remaining, 0);
        // The window began at the first hit (t0 + 1 ms) and lasts 1000 ms.
        let d = counters.hit("k", &limit, t0 + 1000 + 999_000);
        assert!(!d.allowed, "still inside the window, 1 µs before its end");
        let d = counters.hit("k", &limit, t0 + 1000 + 1_000_000);
        assert!(d.allowed, "a new window");
        assert_eq!(d.count, 1);
        // Other keys are independent.
        assert!(counters.hit("other", &limit, t0 + 10_000).allowed);
    }

    #[test]
    fn max_zero_disables_the_limit() {
        let counters = MemoryCounters::new();
        let limit = fixed(0, 1000);
        for _ in 0..10 {
            assert!(counters.hit("k", &limit, 5_000_000).allowed);
        }
    }

    #[test]
    fn undo_takes_a_hit_back() {
        let counters = MemoryCounters::new();
        let limit = fixed(1, 1000);
        assert!(counters.hit("k", &limit, 5_000_000).allowed);
        counters.undo("k", &limit, 5_000_001);
        assert!(counters.hit("k", &limit, 5_000_002).allowed);
        assert!(!counters.hit("k", &limit, 5_000_003).allowed);
    }

    #[test]
    fn expired_windows_are_swept_by_their_shard() {
        let counters = MemoryCounters::new();
        let limit = fixed(5, 100);
        let t0 = 10_000_000u64;
        for i in 0..2000 {
            counters.hit(&format!("key{i}"), &limit, t0);
        }
        assert_eq!(counters.len(), 2000);
        // Long after: each shard drops its old entries when it is next used.
        let later = t0 + 10_000_000;
        for i in 0..2000 {
            counters.hit(&format!("new{i}"), &limit, later);
        }
        assert!(counters.len() < 2100, "{} entries kept", counters.len());
    }

    #[test]
    fn gcra_admits_a_burst_then_one_per_interval() {
        let counters = MemoryCounters::new();
        // 4 per second, burst 4: one every 250 ms after the burst.
        let limit = Limit {
            max: 4,
            window_ms: 1000,
            algorithm: Algorithm::Gcra { burst: 4 },
        };
        let t0 = 50_000_000u64;
        for i in 0..4 {
            let d = counters.hit("g", &limit, t0);
            assert!(d.allowed, "burst hit {i}");
            assert_eq!(d.remaining, 3 - i);
        }
        let d = counters.hit("g", &limit, t0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 250);
        assert!(!counters.hit("g", &limit, t0 + 249_999).allowed);
        assert!(counters.hit("g", &limit, t0 + 250_000).allowed);
        assert!(!counters.hit("g", &limit, t0 + 250_001).allowed);
    }

    #[test]
    fn gcra_bound_over_any_interval() {
        // Hammer every millisecond for 5 s: in every interval of length t the admitted count
        // is at most burst + floor(t / interval).
        let counters = MemoryCounters::new();
        let limit = Limit {
            max: 10,
            window_ms: 1000,
            algorithm: Algorithm::Gcra { burst: 10 },
        };
        let t0 = 1_000_000_000u64;
        let mut admitted = Vec::new();
        for ms in 0..5000u64 {
            let now = t0 + ms * 1000;
            if counters.hit("g", &limit, now).allowed {
                admitted.push(ms);
            }
        }
        for (i, start) in admitted.iter().enumerate() {
            // Every window [start, start + 1000] (closed, length = windowMs).
            let n = admitted[i..]
                .iter()
                .take_while(|&&t| t <= start + 1000)
                .count() as u64;
            assert!(n <= 10 + 10, "{n} in the window from {start} ms");
        }
        // In the long run the rate holds: 10 + 10 per second over 5 s at most.
        assert!(admitted.len() as u64 <= 10 + 5 * 10, "{}", admitted.len());
    }
}
