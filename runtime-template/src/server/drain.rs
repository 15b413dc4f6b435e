//! The graceful stop of client connections: one [`Drain`] per accept loop, one [`Stop`] per
//! connection it accepts.
//!
//! When the stop comes, a connection finishes the request it is serving (its response says
//! `Connection: close`) and closes; one waiting for a request closes at once. hyper's
//! connections are told through their own `graceful_shutdown`, the lean HTTP/1.1 server
//! ([`super::h1`]) watches its [`Stop`] itself. [`Drain::shutdown`] returns once every
//! connection's [`Stop`] is dropped, that is once every connection has ended.
//!
//! hyper-util's `GracefulShutdown` does the same for hyper's connections only: its watcher
//! cannot be asked whether the stop has come, which the lean server needs.
//!
//! The same way closes an HTTP/2 connection that has gone quiet ([`Idle`]): hyper's HTTP/2
//! server has no idle timeout of its own, and such a connection would hold one of
//! `limits.max_connections` for as long as its client likes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;

/// The stop signal of the connections one accept loop spawned.
pub struct Drain {
    signal: watch::Sender<()>,
}

/// One connection's view of its [`Drain`]: whether the stop has come. The drain waits for it
/// (and its clones) to be dropped.
#[derive(Clone)]
pub struct Stop {
    signal: watch::Receiver<()>,
    stopped: bool,
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    /// A drain no connection watches yet.
    pub fn new() -> Self {
        Drain {
            signal: watch::Sender::new(()),
        }
    }

    /// The [`Stop`] of a connection about to be served (one atomic increment).
    pub fn watcher(&self) -> Stop {
        Stop {
            signal: self.signal.subscribe(),
            stopped: false,
        }
    }

    /// Tells every connection to stop, then waits until all have ended. The caller bounds
    /// the wait (`listener.shutdown_timeout_seconds`).
    pub async fn shutdown(self) {
        self.signal.send_replace(());
        self.signal.closed().await;
    }
}

impl Stop {
    /// Resolves once the stop has come (at once if it already has).
    pub async fn stopped(&mut self) {
        if !self.stopped {
            // An error: the drain is gone, which is a stop too.
            let _ = self.signal.changed().await;
            self.stopped = true;
        }
    }

    /// Whether the stop has come, without waiting (an atomic load).
    pub fn has_stopped(&self) -> bool {
        self.stopped || self.signal.has_changed().unwrap_or(true)
    }

    /// Serves a hyper connection to its end; when the stop comes first, asks it to finish
    /// what it is doing and close (hyper's `graceful_shutdown`), then waits for that.
    ///
    /// With `idle`, a connection that serves no request and on which no byte has moved either
    /// way for a whole [`Idle::after`] is asked the same (for HTTP/2, a `GOAWAY`); if it still
    /// serves no request at the end of the next period (a client that does not answer the
    /// `GOAWAY`'s `PING`, whatever else it sends), it is dropped (closed). Detection takes one
    /// to two periods: the check runs once a period. nginx closes an HTTP/2 connection without
    /// streams after its `keepalive_timeout` the same way.
    pub async fn watch<C: GracefulConnection>(
        mut self,
        connection: C,
        idle: Option<Idle>,
    ) -> Result<(), C::Error> {
        let mut connection = std::pin::pin!(connection);
        let mut quiet = Quiet::new(idle);
        let went_quiet = {
            let mut stopped = std::pin::pin!(self.stopped());
            let mut watchers = Watchers::new();
            // `Err`: the connection ended first, with this result; `Ok`: whether it went quiet
            // (else the stop came).
            let ended = std::future::poll_fn(|cx| {
                // The connection first: bytes handed over with it (a request that arrived as
                // the stop came) are read before it is told to finish.
                if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
                    return Poll::Ready(Err(ended));
                }
                // The stop and the idle timer are polled only when one of them woke the task,
                // not on each of its other wake-ups (hyper's reads and writes, several a
                // request): polling them costs a lock and a timer registration each time.
                let Some(mut watched) = watchers.woken(cx) else {
                    return Poll::Pending;
                };
                if stopped.as_mut().poll(&mut watched).is_ready() {
                    return Poll::Ready(Ok(false));
                }
                loop {
                    match quiet.poll_period(&mut watched) {
                        Poll::Ready(true) => return Poll::Ready(Ok(true)),
                        // The next period has started: its timer is polled to be woken.
                        Poll::Ready(false) => continue,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await;
            match ended {
                Ok(went_quiet) => went_quiet,
                Err(ended) => return ended,
            }
        };
        connection.as_mut().graceful_shutdown();
        if !went_quiet {
            return connection.await;
        }
        tracing::debug!("closing a connection on which nothing moved for the idle timeout");
        loop {
            tokio::select! {
                biased;
                ended = connection.as_mut() => return ended,
                _ = std::future::poll_fn(|cx| quiet.poll_period(cx)) => if quiet.serves_nothing() {
                    return Ok(());
                },
            }
        }
    }
}

/// The wake-ups of a watched connection's task that came from its watchers (its [`Stop`] and
/// its idle timer): they are polled with a waker of their own, which notes that they woke
/// the task before it wakes it.
struct Watchers {
    signal: Arc<WatcherSignal>,
    /// The waker given to the watchers.
    waker: Waker,
    /// The task's waker last handed to `signal` (compared without a lock).
    task: Option<Waker>,
}

struct WatcherSignal {
    /// A watcher woke the task since it last polled them (set at first: they were never
    /// polled).
    woken: AtomicBool,
    /// The task to wake.
    task: Mutex<Option<Waker>>,
}

impl Wake for WatcherSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Watchers {
    fn new() -> Self {
        let signal = Arc::new(WatcherSignal {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Watchers {
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }

    /// The context to poll the watchers with when one of them woke the task (or they were
    /// never polled); `None` otherwise. Keeps the task's waker for the watchers' wake-ups
    /// first, so that one coming while they are polled is not lost.
    fn woken(&mut self, cx: &Context<'_>) -> Option<Context<'_>> {
        if !self
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            let task = cx.waker().clone();
            *self
                .signal
                .task
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(task.clone());
            self.task = Some(task);
        }
        self.signal
            .woken
            .swap(false, Ordering::AcqRel)
            .then(|| Context::from_waker(&self.waker))
    }
}

/// An idle timeout for [`Stop::watch`]: the connection's [`Activity`] and how long it may stay
/// quiet.
pub struct Idle {
    /// Told of every read or write that moved bytes (see [`super::h1::Replay::watched`]).
    pub activity: Activity,
    /// The quiet period after which the connection is asked to close.
    pub after: Duration,
}

/// What a connection did since its idle check last asked: whether bytes moved (set by its
/// reads and writes) and how many requests it is serving (each held by a [`InFlight`]). One
/// per connection, shared by nothing else: a load (and a store when the flag was clear) per
/// read or write.
#[derive(Clone, Debug, Default)]
pub struct Activity(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    moved: AtomicBool,
    in_flight: AtomicUsize,
}

impl Activity {
    /// Bytes moved.
    pub fn moved(&self) {
        if !self.0.moved.load(Ordering::Relaxed) {
            self.0.moved.store(true, Ordering::Relaxed);
        }
    }

    /// A request being served, until the guard is dropped: the connection is not idle
    /// meanwhile, however long its upstream takes to answer (the upstream's timeouts bound
    /// that) and however slowly its client reads the answer.
    pub fn in_flight(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.0.clone())
    }

    /// Whether the connection was quiet since the last call: no bytes moved and no request
    /// being served. Clears the bytes' flag.
    fn quiet(&self) -> bool {
        // The count first: a request that ends between the two reads has set the flag
        // before it left the count (see `InFlight`'s drop), so it is seen one way or the other.
        let serving = self.serves_nothing();
        let moved = self.0.moved.swap(false, Ordering::AcqRel);
        !moved && serving
    }

    /// Whether no request is being served.
    fn serves_nothing(&self) -> bool {
        self.0.in_flight.load(Ordering::Acquire) == 0
    }
}

/// One request of a connection being served ([`Activity::in_flight`]).
#[derive(Debug)]
pub struct InFlight(Arc<Counts>);

pin_project_lite::pin_project! {
    /// A response body that keeps its request [`InFlight`] until it is dropped (sent, or
    /// given up when the client resets the stream): an answer streaming from a slow upstream
    /// (server-sent events, long polls) keeps its connection from being idle.
    pub struct Held<B> {
        #[pin]
        body: B,
        in_flight: Option<InFlight>,
    }
}

impl<B> Held<B> {
    /// `body`, holding `in_flight` (`None`: nothing to hold, the body as it is).
    pub fn new(body: B, in_flight: Option<InFlight>) -> Self {
        Held { body, in_flight }
    }
}

pin_project_lite::pin_project! {
    /// The gateway's future for one request of a watched connection: its answer's body holds
    /// the request's [`InFlight`] ([`Held`]). A plain struct, not an async block, so that it
    /// moves into its box as the size of the gateway's future, once.
    pub struct Holding<F> {
        #[pin]
        answer: F,
        in_flight: Option<InFlight>,
    }
}

impl<F> Holding<F> {
    /// `answer`, whose response body will hold `in_flight`.
    pub fn new(answer: F, in_flight: Option<InFlight>) -> Self {
        Holding { answer, in_flight }
    }
}

impl<F, B, E> std::future::Future for Holding<F>
where
    F: std::future::Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<Held<B>>, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        let in_flight = this.in_flight.take();
        std::task::Poll::Ready(
            answer.map(|response| response.map(|body| Held::new(body, in_flight))),
        )
    }
}

impl<B: http_body::Body> http_body::Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Its end starts the quiet period, as the last byte of its answer would; the flag
        // before the count (see `Activity::quiet`).
        self.0.moved.store(true, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// The periods of an [`Idle`] check: [`Quiet::poll_period`] is ready at the end of each.
struct Quiet {
    idle: Option<(Activity, Duration, std::pin::Pin<Box<tokio::time::Sleep>>)>,
}

impl Quiet {
    fn new(idle: Option<Idle>) -> Self {
        debug_assert!(idle.as_ref().is_none_or(|idle| !idle.after.is_zero()));
        Quiet {
            idle: idle.map(|idle| {
                let sleep = Box::pin(tokio::time::sleep(idle.after));
                (idle.activity, idle.after, sleep)
            }),
        }
    }

    /// Ready when the current period has ended (never without an idle timeout): starts the
    /// next one (whose timer must be polled to wake the task) and tells whether the one that
    /// ended was quiet.
    fn poll_period(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Some((activity, after, sleep)) = self.idle.as_mut() else {
            return Poll::Pending;
        };
        std::task::ready!(sleep.as_mut().poll(cx));
        // A whole period from here when the check itself came late (a busy worker), so
        // that no period is judged on less than its length.
        let now = tokio::time::Instant::now();
        let next = sleep.deadline() + *after;
        sleep
            .as_mut()
            .reset(if next <= now { now + *after } else { next });
        Poll::Ready(activity.quiet())
    }

    /// Whether the connection serves no request (true without an idle timeout).
    fn serves_nothing(&self) -> bool {
        self.idle
            .as_ref()
            .is_none_or(|(activity, _, _)| activity.serves_nothing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The stop reaches every watcher, and the drain ends only when the last one is dropped.
    #[tokio::test]
    async fn the_drain_waits_for_every_connection() {
        let drain = Drain::new();
        let mut first = drain.watcher();
        let mut second = drain.watcher();
        assert!(!first.has_stopped());
        let waiting = tokio::spawn(async move {
            first.stopped().await;
            assert!(first.has_stopped());
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let shutdown = tokio::spawn(drain.shutdown());
        waiting.await.unwrap();
        second.stopped().await;
        assert!(second.has_stopped());
        assert!(!shutdown.is_finished(), "one watcher is still there");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .expect("the drain ends once every watcher is gone")
            .unwrap();
    }

    type Answer = http::Response<Held<http_body_util::Full<bytes::Bytes>>>;

    /// An HTTP/2 connection served as the gateway serves one (hyper's server over a watched
    /// [`super::super::h1::Replay`], each request in flight until its body is dropped), with
    /// an idle period of 10 s; `/slow` answers after 100 s. Returns the client's sender, the
    /// client connection's task and the server's watch.
    async fn http2_pair() -> (
        hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
        tokio::task::JoinHandle<Result<(), hyper::Error>>,
        tokio::task::JoinHandle<Result<(), hyper::Error>>,
    ) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let served = serve_watched(server_io);
        let (sender, client) = http2_client(client_io).await;
        (sender, client, served)
    }

    /// An HTTP/2 client over `client_io`: its sender and its connection's task.
    async fn http2_client(
        client_io: tokio::io::DuplexStream,
    ) -> (
        hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
        tokio::task::JoinHandle<Result<(), hyper::Error>>,
    ) {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let (sender, client) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_io))
                .await
                .unwrap();
        (sender, tokio::spawn(client))
    }

    /// Sends the stop and waits for `served` to end, at most `within` (`expect` says what
    /// failed), and for the drain to end with it.
    async fn stop_and_wait(
        drain: Drain,
        served: tokio::task::JoinHandle<Result<(), hyper::Error>>,
        within: Duration,
        expect: &str,
    ) {
        let shutdown = tokio::spawn(drain.shutdown());
        let _ended = tokio::time::timeout(within, served)
            .await
            .expect(expect)
            .unwrap();
        shutdown.await.unwrap();
    }

    /// Serves `server_io` as [`http2_pair`] describes.
    fn serve_watched(
        server_io: tokio::io::DuplexStream,
    ) -> tokio::task::JoinHandle<Result<(), hyper::Error>> {
        let drain = Drain::new();
        let watched = watched(server_io, drain.watcher());
        tokio::spawn(async move {
            let _drain = drain;
            watched.await
        })
    }

    /// The watched HTTP/2 connection of [`serve_watched`] (idle timeout 10 s), with `stop`.
    fn watched(
        server_io: tokio::io::DuplexStream,
        stop: Stop,
    ) -> impl Future<Output = Result<(), hyper::Error>> + Send {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        let activity = Activity::default();
        let idle = Idle {
            activity: activity.clone(),
            after: Duration::from_secs(10),
        };
        let service = hyper::service::service_fn(move |request: http::Request<_>| {
            let in_flight = activity.in_flight();
            async move {
                if request.uri().path() == "/slow" {
                    tokio::time::sleep(Duration::from_secs(100)).await;
                }
                Ok::<Answer, std::convert::Infallible>(http::Response::new(Held::new(
                    http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    Some(in_flight),
                )))
            }
        });
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(
                TokioIo::new(super::super::h1::Replay::watched(
                    bytes::Bytes::new(),
                    server_io,
                    idle.activity.clone(),
                )),
                service,
            );
        stop.watch(connection, Some(idle))
    }

    /// Polls its future with a new waker each time; the previous one no longer wakes anything
    /// (as when a task's waker changes between polls).
    struct FreshWakers<F> {
        inner: std::pin::Pin<Box<F>>,
        last: Option<Arc<Relay>>,
    }

    struct Relay(Mutex<Option<Waker>>);

    impl Wake for Relay {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            if let Some(waker) = self.0.lock().unwrap().as_ref() {
                waker.wake_by_ref();
            }
        }
    }

    impl<F: Future> Future for FreshWakers<F> {
        type Output = F::Output;

        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            if let Some(old) = self.last.take() {
                *old.0.lock().unwrap() = None;
            }
            let relay = Arc::new(Relay(Mutex::new(Some(cx.waker().clone()))));
            self.last = Some(relay.clone());
            let waker = Waker::from(relay);
            self.inner.as_mut().poll(&mut Context::from_waker(&waker))
        }
    }

    /// The stop reaches a connection watched with an idle timer at once, not at the timer's
    /// next tick (the watchers' own waker), also when its task's waker changes from poll to
    /// poll.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_stop_reaches_a_connection_with_an_idle_timer_at_once() {
        for fresh_wakers in [false, true] {
            let drain = Drain::new();
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let watched = watched(server_io, drain.watcher());
            let served = if fresh_wakers {
                tokio::spawn(FreshWakers {
                    inner: Box::pin(watched),
                    last: None,
                })
            } else {
                tokio::spawn(watched)
            };
            let (mut sender, _client) = http2_client(client_io).await;
            assert_eq!(get(&mut sender, "/").await.unwrap(), http::StatusCode::OK);
            // Parked, its idle timer set 10 s ahead.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(!served.is_finished());
            stop_and_wait(
                drain,
                served,
                Duration::from_secs(1),
                "the stop ended it before the idle timer's tick",
            )
            .await;
        }
    }

    /// After its GOAWAY, a connection that serves no request is dropped a period later even
    /// when its client keeps sending frames (and never answers the GOAWAY's PING).
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn after_its_goaway_a_chatty_client_is_dropped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server_io) = tokio::io::duplex(64 * 1024);
        let served = serve_watched(server_io);
        // The preface and an empty SETTINGS frame.
        let mut hello = crate::server::preface::PREFACE.to_vec();
        hello.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
        client.write_all(&hello).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut read = Vec::new();
        let mut chunk = [0u8; 4096];
        // Frames from the server until a GOAWAY (type 7) is among them.
        let goaway = |bytes: &[u8]| {
            let mut at = 0;
            while let Some(head) = bytes.get(at..at + 9) {
                let len =
                    usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
                if head[3] == 0x7 {
                    return true;
                }
                at += 9 + len;
            }
            false
        };
        while !goaway(&read) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no GOAWAY in 30 s"
            );
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(1), client.read(&mut chunk)).await
            {
                read.extend_from_slice(&chunk[..n]);
            }
        }
        assert!(
            started.elapsed() >= Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let told = tokio::time::Instant::now();
        // A PING every 2 s from now on, the server's answers read and thrown away.
        let ping = [0, 0, 8, 0x6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        while !served.is_finished() {
            assert!(
                told.elapsed() < Duration::from_secs(30),
                "still served 30 s after the GOAWAY"
            );
            let _ = client.write_all(&ping).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), client.read(&mut chunk)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            told.elapsed() <= Duration::from_secs(12),
            "dropped {:?} after the GOAWAY",
            told.elapsed()
        );
    }

    async fn get(
        sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
        path: &str,
    ) -> Result<http::StatusCode, hyper::Error> {
        let request = http::Request::get(format!("http://localhost{path}"))
            .body(http_body_util::Empty::new())
            .unwrap();
        Ok(sender.send_request(request).await?.status())
    }

    /// A connection that keeps sending requests stays; one whose request waits 100 s for its
    /// answer stays (nothing moves, but a request is in flight); one that goes quiet is told
    /// to go away within two periods, and the client sees it end.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_quiet_http2_connection_goes_away_and_a_busy_one_stays() {
        let (mut sender, client, served) = http2_pair().await;
        for _ in 0..15 {
            assert_eq!(get(&mut sender, "/").await.unwrap(), http::StatusCode::OK);
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        assert!(
            !served.is_finished(),
            "served for 60 s with a request every 4 s"
        );
        let asked = tokio::time::Instant::now();
        assert_eq!(
            get(&mut sender, "/slow").await.unwrap(),
            http::StatusCode::OK
        );
        assert!(asked.elapsed() >= Duration::from_secs(100));
        assert!(!served.is_finished(), "a request in flight is not idle");

        let quiet = tokio::time::Instant::now();
        // Ok, or the write error of a client that closed on reading the GOAWAY first.
        let _ended = tokio::time::timeout(Duration::from_secs(25), served)
            .await
            .expect("closed within two periods")
            .unwrap();
        assert!(
            quiet.elapsed() >= Duration::from_secs(10),
            "{:?}",
            quiet.elapsed()
        );
        tokio::time::timeout(Duration::from_secs(5), client)
            .await
            .expect("the client sees the end")
            .unwrap()
            .unwrap();
        assert!(get(&mut sender, "/").await.is_err());
    }

    /// Without an idle timeout nothing changes: a quiet connection stays until its stop.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn without_an_idle_timeout_a_quiet_connection_stays() {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let service = hyper::service::service_fn(|_: http::Request<hyper::body::Incoming>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                bytes::Bytes,
            >::new()))
        });
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(server_io), service);
        let drain = Drain::new();
        let served = tokio::spawn(drain.watcher().watch(connection, None));
        let (mut sender, _client) = http2_client(client_io).await;
        let request = http::Request::get("http://localhost/")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        assert!(sender.send_request(request).await.is_ok());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!served.is_finished());
        stop_and_wait(
            drain,
            served,
            Duration::from_secs(5),
            "the stop still ends it",
        )
        .await;
    }
}
