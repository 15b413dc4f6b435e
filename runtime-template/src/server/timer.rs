//! hyper's timer for client connections: tokio's timers, reused on a thread-per-core worker.
//!
//! hyper's HTTP/1 server arms a header timer (`[timeouts]`'s header timeout) each time it
//! starts reading a request head, and drops it once the head is read: with tokio's timer
//! (`hyper_util::rt::TokioTimer`) that is, for every request, a new boxed `tokio::time::Sleep`,
//! its registration in the runtime's timer wheel (the driver's lock) on first poll, and its
//! cancellation (the lock again) when dropped; and a new registration earlier than the
//! driver's next wake-up also wakes the driver (an eventfd write and one more turn of the
//! reactor). On a thread that runs one runtime ([`reuse_here`]: a thread-per-core worker, the
//! threads of the gateway's own runtime, until [`stop_reuse`]) a dropped timer is kept
//! instead, still armed, and the next head's timer is a kept one moved to its new deadline: a
//! later deadline is an atomic store, not a wheel operation (tokio moves the entry in the wheel
//! only when the old deadline comes). A kept timer that fires before it is reused wakes the
//! connection that last waited on it, once, for nothing. Elsewhere (tests, other runtimes)
//! every timer is new, as with `TokioTimer`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Timers kept per worker, at most: about as many as its connections waiting for a head at
/// once that a burst leaves behind; more are dropped.
const KEPT: usize = 64;

/// "Never", for a duration `Instant` cannot add: about 30 years, as tokio's own far future.
/// Also the upstream deadline's (proxy).
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

thread_local! {
    static REUSE: Cell<bool> = const { Cell::new(false) };
    static KEPT_TIMERS: RefCell<Vec<Pin<Box<tokio::time::Sleep>>>> = const { RefCell::new(Vec::new()) };
}

/// Marks the calling thread as one that runs a single tokio runtime until [`stop_reuse`] or
/// its end (a thread-per-core worker once its runtime is built, a thread of the gateway's own
/// runtime): timers dropped on it are kept for reuse. A timer belongs to the runtime it was
/// made in, hence kept only where one runtime runs.
pub fn reuse_here() {
    REUSE.with(|reuse| reuse.set(true));
}

/// Ends [`reuse_here`] on the calling thread (its runtime is done) and drops the kept timers.
pub fn stop_reuse() {
    let _ = REUSE.try_with(|reuse| reuse.set(false));
    let kept = KEPT_TIMERS
        .try_with(|kept| {
            kept.try_borrow_mut()
                .map(|mut kept| std::mem::take(&mut *kept))
        })
        .ok()
        .and_then(Result::ok);
    drop(kept);
}

/// The timer given to hyper's connection builders.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTimer;

impl hyper::rt::Timer for ServerTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // A duration past what `Instant` holds (a huge `[timeouts]` value) means never, as in
        // `tokio::time::sleep`, instead of an overflow panic in the connection's task.
        let now = Instant::now();
        let deadline = now
            .checked_add(duration)
            .or_else(|| now.checked_add(FAR_FUTURE))
            .unwrap_or(now);
        self.sleep_until(deadline)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let kept = if REUSE.with(Cell::get) {
            KEPT_TIMERS.with(|kept| kept.borrow_mut().pop())
        } else {
            None
        };
        let sleep = match kept {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Box::pin(ServerSleep { sleep: Some(sleep) })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<ServerSleep>() {
            Some(mut ours) => {
                if let Some(inner) = ours.sleep.as_mut() {
                    inner
                        .as_mut()
                        .reset(tokio::time::Instant::from_std(new_deadline));
                }
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// One of hyper's timers; given back to the worker's kept timers when dropped.
struct ServerSleep {
    /// Always `Some` until dropped.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for ServerSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for ServerSleep {}

impl Drop for ServerSleep {
    fn drop(&mut self) {
        let Some(sleep) = self.sleep.take() else {
            return;
        };
        if REUSE.with(Cell::get) {
            // `try_with`: a timer dropped while the thread's locals are being destroyed is
            // simply dropped.
            let _ = KEPT_TIMERS.try_with(|kept| {
                if let Ok(mut kept) = kept.try_borrow_mut() {
                    if kept.len() < KEPT {
                        kept.push(sleep);
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer as _;

    fn fired(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        sleep.as_mut().poll(&mut cx).is_ready()
    }

    /// A `[timeouts]` value too large for `Instant` is "never", not a panic.
    #[test]
    fn a_duration_past_instant_never_fires() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut sleep = ServerTimer.sleep(Duration::MAX);
            assert!(!fired(&mut sleep));
            tokio::time::advance(Duration::from_secs(86_400 * 365)).await;
            assert!(!fired(&mut sleep));
        });
    }

    /// The header timer's life on a worker that reuses timers: armed, dropped (kept), armed
    /// again for a later deadline, which alone counts; then reset by hyper to an earlier one.
    #[test]
    fn a_kept_timer_fires_at_its_new_deadline_only() {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            reuse_here();
            runtime.block_on(async {
                let timer = ServerTimer;
                let mut first = timer.sleep(Duration::from_secs(10));
                assert!(!fired(&mut first));
                drop(first);
                assert_eq!(KEPT_TIMERS.with(|k| k.borrow().len()), 1);
                let mut second = timer.sleep(Duration::from_secs(20));
                assert_eq!(KEPT_TIMERS.with(|k| k.borrow().len()), 0, "reused");
                tokio::time::advance(Duration::from_secs(15)).await;
                assert!(!fired(&mut second), "the first deadline no longer counts");
                tokio::time::advance(Duration::from_secs(6)).await;
                assert!(fired(&mut second));
                let now = timer.now();
                timer.reset(&mut second, now + Duration::from_secs(30));
                assert!(!fired(&mut second));
                timer.reset(&mut second, now + Duration::from_secs(2));
                tokio::time::advance(Duration::from_secs(3)).await;
                assert!(fired(&mut second));
            });
        })
        .join()
        .unwrap();
    }

    #[tokio::test]
    async fn elsewhere_timers_are_not_kept() {
        let timer = ServerTimer;
        drop(timer.sleep(Duration::from_secs(1)));
        assert_eq!(KEPT_TIMERS.with(|k| k.borrow().len()), 0);
    }
}
