//! The clock of a connection's poll: one read of the monotonic clock for every moment one
//! poll of a connection's task takes.
//!
//! A proxied request reads the clock at several moments: its arrival and the upstream
//! exchange's start (the route's timeout, the pool's idle check), the upstream's answer (the
//! upstream latency), the gateway's answer (the request's latency), the idle connection's
//! return to its pool and the next head's deadline. Each read is a call into the kernel's
//! vDSO: 23-31 ns on the benchmark machine (`clock_gettime(CLOCK_MONOTONIC)` in a loop), five
//! to seven times per request, none of which an instruction count under callgrind sees (its
//! clock is a system call).
//!
//! Within one poll of a task nothing waits: the moments one poll takes are microseconds
//! apart. [`now`] reads the clock once per poll of a task wrapped in [`PollClock`] and gives
//! that reading to every later call of the same poll (a [`PollClock`] polled inside another
//! reads for each of its own polls); outside such a poll (another task, a thread of its own)
//! it reads the clock every time. This is nginx's model, one read per turn
//! of its event loop (`ngx_time_update`, the cached `ngx_current_msec`), per poll instead of
//! per turn.
//!
//! What a moment may be off by: the synchronous work done earlier in the same poll, never a
//! wait (a wait ends the poll). The longest on the request path is a signature check (a JWT's
//! RSA signature: about 0.1 ms); password hashes run on blocking threads (a wait). A deadline
//! taken from [`now`] may therefore count from up to that much before the moment it is set,
//! and a latency may leave out the work of the poll that ends it. Other processes go on
//! meanwhile: an upstream's answer that comes during a long poll, and is read in it, gets a
//! latency short by that poll's length, which is why a poll inside another reads anew.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

/// The clock's state on this thread.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Not in a [`PollClock`]'s poll: every [`now`] reads the clock.
    Outside,
    /// In a [`PollClock`]'s poll that has not read the clock yet.
    Unread,
    /// In a [`PollClock`]'s poll that read the clock at this moment.
    Read(Instant),
}

thread_local! {
    static POLL: Cell<State> = const { Cell::new(State::Outside) };
}

/// The current moment: the clock's reading at the first [`now`] of this poll of a task
/// wrapped in [`PollClock`], a fresh reading outside one. `tokio::time::Instant`: tokio's
/// paused clock in tests.
pub fn now() -> Instant {
    POLL.with(|poll| match poll.get() {
        State::Read(now) => now,
        State::Unread => {
            let now = Instant::now();
            poll.set(State::Read(now));
            now
        }
        State::Outside => Instant::now(),
    })
}

/// The time from `earlier` to [`now`] (zero when `earlier` is later).
pub fn since(earlier: std::time::Instant) -> Duration {
    now().into_std().saturating_duration_since(earlier)
}

pin_project_lite::pin_project! {
    /// A future whose every poll has a clock of its own ([`now`]): a connection's task.
    #[derive(Debug)]
    pub struct PollClock<F> {
        #[pin]
        inner: F,
    }
}

impl<F> PollClock<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future> Future for PollClock<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = Scope::enter();
        self.project().inner.poll(cx)
    }
}

/// One poll's scope: it starts unread, and the state before it is put back when the poll
/// ends, by return or by panic (tokio catches a task's panic and goes on with other tasks on
/// the same thread). A [`PollClock`] polled inside another reads the clock again for each of
/// its own polls: hyper's connection may poll the gateway's service future several times
/// within one poll of the connection's task, and the upstream may answer in between. A reading
/// shared with the task's poll logged the quickstart's `POST` with an upstream latency of 0 ms
/// and as aborted (docs/benchmarks.md, "fourteenth pass"; the path is not pinned down).
struct Scope(State);

impl Scope {
    fn enter() -> Self {
        Scope(POLL.with(|poll| poll.replace(State::Unread)))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        POLL.with(|poll| poll.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `future` once with a waker that does nothing.
    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        future.poll(&mut cx)
    }

    #[test]
    fn one_poll_reads_the_clock_once_and_the_next_poll_again() {
        let mut polls = 0;
        let mut seen = Vec::new();
        let future = PollClock::new(std::future::poll_fn(|cx| {
            let first = now();
            std::thread::sleep(Duration::from_millis(2));
            // Later in the same poll: the same moment.
            assert_eq!(now(), first);
            seen.push(first);
            polls += 1;
            if polls == 2 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        let mut future = std::pin::pin!(future);
        assert!(poll_once(future.as_mut()).is_pending());
        std::thread::sleep(Duration::from_millis(2));
        assert!(poll_once(future.as_mut()).is_ready());
        // The second poll read the clock anew.
        assert!(seen[1] >= seen[0] + Duration::from_millis(4), "{seen:?}");
    }

    #[test]
    fn outside_a_poll_every_call_reads_the_clock() {
        let before = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() >= before + Duration::from_millis(2));
        // A poll ends its scope: later calls read again.
        let mut future = std::pin::pin!(PollClock::new(async { now() }));
        let Poll::Ready(inside) = poll_once(future.as_mut()) else {
            panic!("an async block without awaits is ready at once");
        };
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() >= inside + Duration::from_millis(2));
    }

    #[test]
    fn a_poll_inside_another_reads_for_itself_and_gives_the_outer_its_reading_back() {
        let mut future = std::pin::pin!(PollClock::new(async {
            let outer = now();
            std::thread::sleep(Duration::from_millis(2));
            let inner = PollClock::new(async { now() }).await;
            (outer, inner, now())
        }));
        let Poll::Ready((outer, inner, after)) = poll_once(future.as_mut()) else {
            panic!("nothing waits");
        };
        assert!(inner >= outer + Duration::from_millis(2));
        assert_eq!(after, outer);
    }

    #[test]
    fn a_panicking_poll_leaves_the_thread_reading_the_clock() {
        let mut future = std::pin::pin!(PollClock::new(std::future::poll_fn(|_| -> Poll<()> {
            now();
            panic!("the task fails");
        })));
        let failed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(future.as_mut())));
        assert!(failed.is_err());
        let before = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() >= before + Duration::from_millis(2));
    }

    #[test]
    fn since_is_zero_for_a_later_moment() {
        let later = std::time::Instant::now() + Duration::from_secs(5);
        assert_eq!(since(later), Duration::ZERO);
        let earlier = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(since(earlier) >= Duration::from_millis(2));
    }
}
