//! A kept timer for a deadline that is usually a little later than the last one: a client
//! connection's next head (the header timeout counts from each wait) and an upstream
//! connection's next exchange (the route's timeout counts from each request).
//!
//! Moving a tokio `Sleep` to a later deadline (`Sleep::reset`) turns the deadline into the
//! timer wheel's ticks and stores it in the timer's entry, for every request (about 160
//! instructions with the clock arithmetic, measured with callgrind). A timer here is only
//! moved when it must be ([`set_due`]): when it is set for a later moment than the new
//! deadline, or has fired. One still set for an earlier moment is left: it fires then,
//! early, and [`poll_due`] moves it to the deadline it now serves. With a timeout of
//! seconds and requests milliseconds apart, that is one move per timeout's length instead
//! of one per request, and one wake-up for nothing per timeout's length of a busy
//! connection. A timeout still ends when it is due, as tokio's timer would end it: within
//! the wheel's resolution of 1 ms after its deadline, never before it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// Sets `timer` for a wait that must end by `due`, moving it only when it would fire after
/// `due` or has fired already (it is then moved to `due`). A timer left set for an earlier
/// moment fires then, and [`poll_due`] moves it on: poll it with [`poll_due`] and the same
/// `due`, never with `Sleep::poll`.
pub(crate) fn set_due(timer: Pin<&mut Sleep>, due: Instant) {
    if timer.deadline() > due || timer.is_elapsed() {
        timer.reset(due);
    }
}

/// Polls `timer`, set with [`set_due`] for `due`: ready once `due` has come. A timer that
/// fires earlier (left set for an earlier deadline) is moved to `due` and polled again.
pub(crate) fn poll_due(mut timer: Pin<&mut Sleep>, due: Instant, cx: &mut Context<'_>) -> Poll<()> {
    if timer.as_mut().poll(cx).is_pending() {
        return Poll::Pending;
    }
    if Instant::now() >= due {
        return Poll::Ready(());
    }
    // Fired for an earlier deadline: moved to `due` and polled again, which registers the
    // waker (tokio rounds a deadline up to its next millisecond tick: it does not fire
    // before `due`).
    timer.as_mut().reset(due);
    timer.as_mut().poll(cx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Polls `timer` for `due` once: true when the wait has ended.
    fn ended(timer: Pin<&mut Sleep>, due: Instant) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        poll_due(timer, due, &mut cx).is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_when_it_is_due_whatever_the_timer_was_set_for() {
        let start = Instant::now();
        let timer = tokio::time::sleep(Duration::from_secs(86_400));
        let mut timer = std::pin::pin!(timer);

        // A timer set later than the wait's deadline is moved to it.
        let due = start + Duration::from_secs(10);
        set_due(timer.as_mut(), due);
        assert_eq!(timer.deadline(), due);
        assert!(!ended(timer.as_mut(), due));

        // The next wait, due later: the timer is left where it is...
        tokio::time::advance(Duration::from_secs(4)).await;
        let next = Instant::now() + Duration::from_secs(10);
        set_due(timer.as_mut(), next);
        assert_eq!(timer.deadline(), due, "not moved for a later deadline");
        // ... fires at the earlier moment, which does not end the wait: it is moved on.
        tokio::time::advance(Duration::from_secs(7)).await;
        assert!(!ended(timer.as_mut(), next), "an early firing ends nothing");
        assert_eq!(timer.deadline(), next);
        tokio::time::advance(Duration::from_millis(2_900)).await;
        assert!(
            !ended(timer.as_mut(), next),
            "still 100 ms before it is due"
        );
        tokio::time::advance(Duration::from_millis(101)).await;
        assert!(ended(timer.as_mut(), next), "ended once due");

        // A fired timer is moved to the next deadline, not left fired.
        let after = Instant::now() + Duration::from_secs(5);
        set_due(timer.as_mut(), after);
        assert_eq!(timer.deadline(), after);
        assert!(!ended(timer.as_mut(), after));

        // An earlier deadline (a route with a shorter timeout) moves it back.
        let sooner = Instant::now() + Duration::from_secs(1);
        set_due(timer.as_mut(), sooner);
        assert_eq!(timer.deadline(), sooner);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!ended(timer.as_mut(), sooner));
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(ended(timer.as_mut(), sooner));
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_firing_wakes_the_waiter_who_then_waits_on() {
        let start = Instant::now();
        let timer = tokio::time::sleep_until(start + Duration::from_secs(1));
        let mut timer = std::pin::pin!(timer);
        let due = start + Duration::from_secs(3);
        set_due(timer.as_mut(), due);
        // The runtime's own wait: the task is woken at 1 s, waits on, and ends at 3 s.
        let waited = std::future::poll_fn(|cx| poll_due(timer.as_mut(), due, cx));
        waited.await;
        let now = Instant::now();
        assert!(
            now >= due && now - due < Duration::from_millis(2),
            "{:?}",
            now - start
        );
    }
}
