//! Keep-alive HTTP/1 connections to one upstream origin (scheme + authority), kept by the
//! proxy itself instead of a general-purpose client pool.
//!
//! Every endpoint URL's [`Target`](super::upstream::Target) holds the [`HostPool`] of its
//! origin, found once at start-up (targets of one origin share it), so a request reaches its
//! idle connections through a pointer: no key is hashed or compared per request.
//!
//! - A connection is made by the gateway's HTTP(S) connector (TCP_NODELAY, the connect timeout,
//!   rustls with the upstream trust store, SNI and ALPN `http/1.1`), then handed to hyper's
//!   HTTP/1 client (`hyper::client::conn::http1`); its I/O task is spawned once per connection.
//! - After a response, the connection goes back on its pool's idle stack when the response
//!   body has ENDED ([`UpstreamBody`] does it as it yields the last frame), not before: there is
//!   no task per request waiting for the connection to become free. A body dropped before its
//!   end drops the connection, which hyper then closes: its unread rest can never be taken for
//!   the next response.
//! - The idle stack is LIFO (the most recently used connection is the warmest, and the oldest
//!   ones age out at the bottom), holds at most `pool_max_idle_per_host` connections, and forgets
//!   connections idle longer than `pool_idle_timeout_seconds` when it is next used (no sweeper
//!   task; the upstream closing an idle connection ends its task, and the closed connection is
//!   skipped when it comes up).
//! - Connections of the lean client ([`super::h1`]: requests without a body or with one of
//!   known length to `http://` endpoints) have an idle stack of their own beside hyper's, aged the same way;
//!   `pool_max_idle_per_host` bounds both stacks together. No task watches them while idle: a
//!   connection the upstream closed meanwhile (or that received stray bytes) is seen when it
//!   comes up (a non-blocking one-byte read, no system call while the socket has nothing)
//!   and dropped; until then it holds its file descriptor. A plain connection moves between
//!   the two clients as the traffic asks: hyper's client adopts an idle lean socket for a
//!   request the lean client does not make (a chunked upload), and hands the socket back to the lean stack (its task ends without
//!   closing it) after serving a request the lean client makes.
//! - Locking: one short `std::sync::Mutex` per idle stack around a push or a pop. With the
//!   work-stealing runtime an origin has one stack, shared by the worker threads: requests
//!   contend only with requests to the same origin, for a few instructions. With the
//!   thread-per-core runtime ([`PoolLimits::cores`]) an origin has one stack per worker, on
//!   cache lines of its own ([`PerCore`]): a worker takes and gives back only its own
//!   connections (whose I/O tasks run on its own runtime), so its lock is never contended and
//!   no cache line of the pool moves between cores.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;

use super::body::{BoxError, ReclaimableBody};
use crate::server::worker::PerCore;

/// The request half of one upstream HTTP/1 connection.
pub type Sender = http1::SendRequest<ReclaimableBody>;

/// hyper's handle on one upstream connection and, for a plain `http://` connection, the way
/// to hand its socket over to the lean client ([`super::h1`]) when hyper lets it go.
#[derive(Debug)]
pub struct HyperConnection {
    /// The request half.
    pub sender: Sender,
    /// Sending what the connection keeps here, then dropping `sender`, ends hyper's task
    /// without closing the socket, and the task puts it on the lean client's idle stack.
    relay: Option<tokio::sync::oneshot::Sender<Spare>>,
}

/// How a plain connection's socket gets from hyper's client to the lean client: its pool,
/// and how to take the TCP stream out of the connector's stream type.
pub struct Relay<T> {
    /// The origin's pool.
    pub pool: Arc<HostPool>,
    /// The TCP stream inside the connector's stream (`None` for a TLS stream).
    pub into_tcp: fn(T) -> Option<tokio::net::TcpStream>,
}

/// The idle connections of one upstream origin, in a [`PerCore`]: a pair of stacks for each
/// marked worker (a thread-per-core worker, or the one thread of the default runtime with one
/// worker) and as many shared by the other threads (the work-stealing runtime's). A
/// connection is given back to the stacks of the thread that gives it back, and checked out
/// from the calling thread's: in the modes with marked workers every exchange, and every task
/// that gives a connection back (hyper's connection tasks, the lean client's relay), runs on
/// the worker's own thread. A connection given back from another thread would wait in a
/// shared stack, unseen by the worker, until the idle timeout closed it.
#[derive(Debug, Default)]
pub struct HostPool {
    stacks: PerCore<Mutex<Stacks>>,
    limits: PoolLimits,
}

/// One worker's idle stacks, under one lock: a connection given back counts both (the bound
/// is on their sum), and one lock taken is two locking instructions where two locks took
/// four (`scripts/bench --instructions`, "fourteenth pass").
#[derive(Debug, Default)]
struct Stacks {
    /// hyper's connections.
    hyper: Vec<Idle<HyperConnection>>,
    /// The lean client's ([`super::h1`]).
    lean: Vec<Idle<super::h1::Connection>>,
}

#[derive(Debug)]
struct Idle<C> {
    connection: C,
    spare: Spare,
    since: Instant,
}

/// What an upstream connection keeps from one exchange to the next besides hyper's handle,
/// so that an exchange on a reused connection allocates nothing for them and adds no entry to
/// tokio's timer wheel.
#[derive(Debug, Default)]
pub struct Spare {
    /// The timer of the upstream deadline, still armed for the last exchange's deadline (an
    /// exchange's timer outlives it: it serves the next deadline, [`crate::server::due`],
    /// where a new timer takes the timer driver's lock twice, to register and to cancel).
    /// When it fires between exchanges it wakes the last client connection that waited on
    /// it, once, for nothing.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Room for the copy of a request head that a resend may need (the proxy's), empty
    /// between exchanges: its capacity is kept.
    pub head: Vec<(HeaderName, HeaderValue)>,
}

impl Spare {
    /// The timer of an exchange due by `deadline`: the connection's own, set for `deadline`
    /// with [`crate::server::due::set_due`] (poll it with `poll_due`), or a new one for a new
    /// connection.
    pub fn timer(&mut self, deadline: tokio::time::Instant) -> Pin<Box<tokio::time::Sleep>> {
        match self.timer.take() {
            Some(mut timer) => {
                crate::server::due::set_due(timer.as_mut(), deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// Keeps `timer` (armed or fired) for the connection's next exchange, and empties the
    /// head's copy.
    pub fn keep(&mut self, timer: Pin<Box<tokio::time::Sleep>>) {
        self.timer = Some(timer);
        self.head.clear();
    }
}

/// How the idle stacks are bounded (`[upstream]` settings). The default keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolLimits {
    /// Most idle connections kept per origin (`pool_max_idle_per_host`; 0: none).
    pub max_idle: usize,
    /// Idle time after which a connection is not used again (`pool_idle_timeout_seconds`).
    pub idle_timeout: Duration,
    /// Idle stacks per origin, besides as many shared ones ([`HostPool`]): 1 for the
    /// work-stealing runtime (its workers share one shared stack; with one worker, that
    /// thread has its own), the number of workers for the thread-per-core runtime (one each;
    /// then `max_idle` bounds each worker's stack). 0 counts as 1.
    pub cores: usize,
}

impl HostPool {
    /// An empty pool bounded by `limits`.
    pub fn new(limits: PoolLimits) -> Self {
        HostPool {
            stacks: PerCore::new(limits.cores, Mutex::default),
            limits,
        }
    }

    /// The most recently returned idle connection that is still open and free, if any, with
    /// what it kept. Connections past the idle timeout are dropped (closing them), with every
    /// one below them on the stack, which are older.
    /// `now` is the caller's clock reading, for the idle timeout.
    pub async fn checkout(&self, now: Instant) -> Option<(HyperConnection, Spare)> {
        loop {
            let (mut connection, spare) = self.pop(now)?;
            if connection.sender.is_ready() {
                return Some((connection, spare));
            }
            if connection.sender.is_closed() {
                continue;
            }
            // Returned as its response body ended, but its I/O task has not yet marked it
            // free (it runs on another worker, or has not run since on this one): give that
            // task a turn, once. A connection
            // that stays busy (still writing a request body the upstream did not wait for)
            // is dropped rather than waited for.
            tokio::task::yield_now().await;
            if std::future::poll_fn(|cx| ready_now(&mut connection.sender, cx)).await {
                return Some((connection, spare));
            }
        }
    }

    fn pop(&self, now: Instant) -> Option<(HyperConnection, Spare)> {
        let mut stacks = self.local();
        self.pop_from(&mut stacks.hyper, now)
    }

    /// This thread's stacks, locked.
    fn local(&self) -> std::sync::MutexGuard<'_, Stacks> {
        self.stacks
            .local()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The top of `idle`, unless it is past the idle timeout at `now`: then the stack is
    /// emptied, every connection below being older still.
    fn pop_from<C>(&self, idle: &mut Vec<Idle<C>>, now: Instant) -> Option<(C, Spare)> {
        let top = idle.pop()?;
        if now.saturating_duration_since(top.since) > self.limits.idle_timeout {
            idle.clear();
            return None;
        }
        Some((top.connection, top.spare))
    }

    /// Pushes `connection` on `idle` unless it and `other` together hold
    /// `pool_max_idle_per_host` already; otherwise it is dropped, which closes it.
    fn push_onto<C, O>(
        &self,
        idle: &mut Vec<Idle<C>>,
        other: &[Idle<O>],
        connection: C,
        spare: Spare,
    ) {
        if idle.len() + other.len() < self.limits.max_idle {
            idle.push(Idle {
                connection,
                spare,
                since: crate::server::clock::now().into_std(),
            });
        }
    }

    /// Puts a connection whose exchange has ended back on the stack with what it keeps (or
    /// drops it, closing it, when the stack is full or the connection is closed).
    pub fn give_back(&self, connection: HyperConnection, spare: Spare) {
        if connection.sender.is_closed() {
            return;
        }
        let mut stacks = self.local();
        let Stacks { hyper, lean } = &mut *stacks;
        self.push_onto(hyper, lean, connection, spare);
    }
}

impl HostPool {
    /// True when hyper's idle stack holds a connection (perhaps one the upstream closed
    /// meanwhile): a request for the lean client then takes it rather than open another.
    pub fn has_idle(&self) -> bool {
        !self.local().hyper.is_empty()
    }

    /// The most recently returned idle lean connection ([`super::h1`]) that is still open,
    /// with what it kept; as [`HostPool::checkout`], without waiting at all.
    pub fn checkout_lean(&self, now: Instant) -> Option<(super::h1::Connection, Spare)> {
        loop {
            let popped = self.pop_from(&mut self.local().lean, now);
            let (connection, spare) = popped?;
            if connection.is_idle_and_open() {
                return Some((connection, spare));
            }
        }
    }

    /// Puts a lean connection whose exchange ended cleanly back on its stack (or drops it,
    /// closing it, when the stack is full).
    pub fn give_back_lean(&self, connection: super::h1::Connection, spare: Spare) {
        let mut stacks = self.local();
        let Stacks { hyper, lean } = &mut *stacks;
        self.push_onto(lean, hyper, connection, spare);
    }
}

/// Where a lean connection goes back when its answer's body ends cleanly: its pool, with
/// what it keeps.
#[derive(Debug)]
pub struct LeanLease {
    spare: Spare,
    pool: Arc<HostPool>,
}

impl LeanLease {
    /// A lease on `pool` keeping `spare` (its timer is kept, its head copy emptied).
    pub fn new(spare: Spare, pool: Arc<HostPool>) -> Self {
        LeanLease { spare, pool }
    }

    /// Gives `connection` back to its pool.
    pub fn release(self, connection: super::h1::Connection) {
        self.pool.give_back_lean(connection, self.spare);
    }
}

/// `poll_ready` once, without waiting: true when the connection can take a request now.
fn ready_now(sender: &mut Sender, cx: &mut Context<'_>) -> Poll<bool> {
    Poll::Ready(matches!(sender.poll_ready(cx), Poll::Ready(Ok(()))))
}

/// A connection lent to one exchange, to be given back when the response body ends.
#[derive(Debug)]
pub struct Lease {
    connection: HyperConnection,
    spare: Spare,
    pool: Arc<HostPool>,
    reusable: bool,
    to_lean: bool,
}

impl Lease {
    /// Lends `connection`, which belongs to `pool`, with what it keeps. A connection that is
    /// not `reusable` (the upstream closes it, or its framing cannot be trusted any more) is
    /// dropped at release. `to_lean`: the exchange was one the lean client makes (it found
    /// no idle connection of its own), so a plain connection goes to the lean client's idle
    /// stack at release rather than back to hyper's: idle connections follow the traffic.
    pub fn new(
        connection: HyperConnection,
        spare: Spare,
        pool: Arc<HostPool>,
        reusable: bool,
        to_lean: bool,
    ) -> Self {
        Lease {
            connection,
            spare,
            pool,
            reusable,
            to_lean,
        }
    }

    /// Ends the exchange: gives the connection back to its pool when it may carry another.
    pub fn release(self) {
        if !self.reusable {
            return;
        }
        let HyperConnection { sender, relay } = self.connection;
        match relay {
            Some(relay) if self.to_lean && !sender.is_closed() => {
                // hyper's task ends when `sender` goes, and hands the socket over.
                let _ = relay.send(self.spare);
            }
            relay => self
                .pool
                .give_back(HyperConnection { sender, relay }, self.spare),
        }
    }
}

/// False when the upstream said it closes the connection after this response: `Connection:
/// close`, or an HTTP/1.0 response without `Connection: keep-alive` (RFC 9112 §9.3). hyper
/// closes such a connection itself; knowing it here keeps it off the idle stack.
pub fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut keep_alive = version != Version::HTTP_10;
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("close") {
                return false;
            }
            if token.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    keep_alive
}

pin_project_lite::pin_project! {
    /// An upstream response body that gives its connection back to the pool as it ends.
    /// Dropped before the end, it drops the connection instead (which closes it).
    #[derive(Debug)]
    #[project = UpstreamBodyProj]
    pub enum UpstreamBody {
        /// Read by hyper's client (its connection's task). The lease (88 bytes, twice the
        /// body beside it) is boxed: with it inline this variant was the largest, and a
        /// response is moved about ten times on its way to the client (each move a copy of
        /// its bytes).
        Hyper {
            #[pin]
            body: Incoming,
            lease: Option<Box<Lease>>,
        },
        /// Read by the lean client ([`super::h1`]) on the task that polls it.
        Lean { body: super::h1::ResponseBody },
        /// Read by the lean client on a task of its own (an early answer while the request's
        /// body is still being sent: [`super::h1::response_body`]), frames handed over.
        Relayed {
            frames: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, super::h1::Error>>,
            hint: SizeHint,
        },
    }
}

/// Why an upstream response body failed: as hyper's client or the lean client saw it.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    /// From hyper's client.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// From the lean client.
    #[error(transparent)]
    Lean(#[from] super::h1::Error),
}

impl UpstreamBody {
    /// `body`, whose connection `lease` is given back at its end (`None`: nothing to give
    /// back, e.g. a body from another client).
    pub fn new(body: Incoming, lease: Option<Lease>) -> Self {
        UpstreamBody::Hyper {
            body,
            lease: lease.map(Box::new),
        }
    }
}

impl super::field_lines::CarriesFields for UpstreamBody {
    fn fields_as_received(&self) -> Option<&super::field_lines::FieldLines> {
        match self {
            UpstreamBody::Lean { body } => body.fields_as_received(),
            UpstreamBody::Hyper { .. } | UpstreamBody::Relayed { .. } => None,
        }
    }
}

impl From<Incoming> for UpstreamBody {
    fn from(body: Incoming) -> Self {
        UpstreamBody::new(body, None)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        let (mut body, lease) = match self.project() {
            UpstreamBodyProj::Hyper { body, lease } => (body, lease),
            UpstreamBodyProj::Lean { body } => {
                return Pin::new(body)
                    .poll_frame(cx)
                    .map(|frame| frame.map(|frame| frame.map_err(UpstreamBodyError::Lean)));
            }
            UpstreamBodyProj::Relayed { frames, .. } => {
                return frames
                    .poll_recv(cx)
                    .map(|frame| frame.map(|frame| frame.map_err(UpstreamBodyError::Lean)));
            }
        };
        let polled = body.as_mut().poll_frame(cx);
        match &polled {
            // The last frame of a body of known length, or the end.
            Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                if let Some(lease) = lease.take() {
                    lease.release();
                }
            }
            Poll::Ready(None) => {
                if let Some(lease) = lease.take() {
                    lease.release();
                }
            }
            // A broken body: its connection is not reused.
            Poll::Ready(Some(Err(_))) => *lease = None,
            _ => {}
        }
        polled.map(|frame| frame.map(|frame| frame.map_err(UpstreamBodyError::Hyper)))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper { body, .. } => body.is_end_stream(),
            UpstreamBody::Lean { body } => body.is_end_stream(),
            UpstreamBody::Relayed { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper { body, .. } => body.size_hint(),
            UpstreamBody::Lean { body } => body.size_hint(),
            UpstreamBody::Relayed { hint, .. } => *hint,
        }
    }
}

/// Opens connections: the HTTP(S) connector and hyper's HTTP/1 settings.
#[derive(Clone)]
pub struct Connector<C> {
    /// Makes the transport (TCP, TLS).
    pub transport: C,
    /// hyper's HTTP/1 client settings.
    pub http1: http1::Builder,
}

/// Why no connection could be opened. The transport's error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect, DNS or TLS failed, or the connect timeout passed.
    #[error("connect error")]
    Transport(#[source] BoxError),
    /// The HTTP/1 handshake failed.
    #[error("HTTP/1 handshake error")]
    Handshake(#[source] hyper::Error),
}

impl<C> Connector<C>
where
    C: tower_service::Service<Uri> + Clone + Send + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send,
{
    /// Opens a new connection to `origin` (a URI with scheme and authority) and spawns its
    /// I/O task, which ends when the connection closes.
    pub async fn connect(
        &self,
        origin: Uri,
        relay: Option<Relay<C::Response>>,
    ) -> Result<HyperConnection, ConnectError> {
        let io = self.open(origin).await?;
        self.handshake(io, relay).await
    }

    /// Opens the transport (TCP, and TLS for `https`) to `origin`, nothing on top of it: for
    /// hyper's client ([`Connector::connect`]) and for the lean client.
    pub async fn open(&self, origin: Uri) -> Result<C::Response, ConnectError> {
        let mut transport = self.transport.clone();
        std::future::poll_fn(|cx| transport.poll_ready(cx))
            .await
            .map_err(|e| ConnectError::Transport(e.into()))?;
        transport
            .call(origin)
            .await
            .map_err(|e| ConnectError::Transport(e.into()))
    }

    /// Starts hyper's HTTP/1 client on an open transport `io` and spawns the connection's
    /// I/O task, which ends when the connection closes. With a `relay` (a plain connection),
    /// the task hands the socket to the lean client's idle stack when the connection's
    /// [`Lease`] asks for it (nothing left unread; see [`Lease::new`]).
    pub async fn handshake(
        &self,
        io: C::Response,
        relay: Option<Relay<C::Response>>,
    ) -> Result<HyperConnection, ConnectError> {
        let (sender, connection) = self
            .http1
            .handshake(io)
            .await
            .map_err(ConnectError::Handshake)?;
        let Some(Relay { pool, into_tcp }) = relay else {
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!("upstream connection ended: {err}");
                }
            });
            return Ok(HyperConnection {
                sender,
                relay: None,
            });
        };
        let (relay, mut handed) = tokio::sync::oneshot::channel::<Spare>();
        tokio::spawn(async move {
            match connection.without_shutdown().await {
                Ok(parts) => {
                    if let (Ok(spare), true) = (handed.try_recv(), parts.read_buf.is_empty()) {
                        if let Some(tcp) = into_tcp(parts.io) {
                            pool.give_back_lean(super::h1::Connection::new(tcp), spare);
                        }
                    }
                }
                Err(err) => tracing::debug!("upstream connection ended: {err}"),
            }
        });
        Ok(HyperConnection {
            sender,
            relay: Some(relay),
        })
    }
}

/// A response and the connection it came on, given back to its pool at the end of the body.
pub fn with_lease(response: Response<Incoming>, lease: Option<Lease>) -> Response<UpstreamBody> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, UpstreamBody::new(body, lease))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lean connection to a listener of its own (the accepted end is returned too: the
    /// connection stays open while it lives).
    async fn lean_connection() -> (super::super::h1::Connection, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (
            super::super::h1::Connection::new(client.unwrap()),
            accepted.unwrap().0,
        )
    }

    #[tokio::test]
    async fn the_bound_counts_both_stacks_and_an_expired_top_empties_its_stack() {
        let pool = HostPool::new(PoolLimits {
            max_idle: 2,
            idle_timeout: Duration::from_secs(60),
            cores: 1,
        });
        // One of hyper's connections, over an in-memory stream.
        let (client_io, _server_io) = tokio::io::duplex(1024);
        let (sender, connection) =
            http1::handshake::<_, ReclaimableBody>(hyper_util::rt::TokioIo::new(client_io))
                .await
                .unwrap();
        tokio::spawn(connection);
        pool.give_back(
            HyperConnection {
                sender,
                relay: None,
            },
            Spare::default(),
        );
        assert!(pool.has_idle());
        // Two lean ones: the second is one over the bound of both stacks together.
        let (first, _first_peer) = lean_connection().await;
        let (second, _second_peer) = lean_connection().await;
        pool.give_back_lean(first, Spare::default());
        pool.give_back_lean(second, Spare::default());
        assert_eq!(pool.local().lean.len(), 1);
        assert_eq!(pool.local().hyper.len(), 1);
        // Taken while fresh; given back; past the idle timeout it is dropped, with the
        // stack.
        let now = Instant::now();
        let (taken, spare) = pool.checkout_lean(now).expect("an open, fresh connection");
        pool.give_back_lean(taken, spare);
        assert!(pool.checkout_lean(now + Duration::from_secs(61)).is_none());
        assert!(pool.local().lean.is_empty());
        // hyper's stack is the other one: untouched.
        assert!(pool.has_idle());
    }

    /// Polls `timer` once for a wait due at `due`: true when the wait has ended.
    fn fired(timer: &mut Pin<Box<tokio::time::Sleep>>, due: tokio::time::Instant) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        crate::server::due::poll_due(timer.as_mut(), due, &mut cx).is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_serves_the_next_deadline_later_or_earlier() {
        let start = tokio::time::Instant::now();
        let mut spare = Spare::default();
        let first = start + Duration::from_secs(10);
        let mut timer = spare.timer(first);
        assert!(!fired(&mut timer, first));
        spare.keep(timer);
        // A later deadline (the usual case: the same timeout, a later request).
        let second = start + Duration::from_secs(20);
        let mut timer = spare.timer(second);
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(
            !fired(&mut timer, second),
            "the first deadline no longer counts"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(fired(&mut timer, second));
        // A fired timer kept, then set again.
        spare.keep(timer);
        let now = tokio::time::Instant::now();
        let third = now + Duration::from_secs(30);
        let mut timer = spare.timer(third);
        assert!(!fired(&mut timer, third));
        spare.keep(timer);
        // An earlier deadline (a route with a shorter timeout).
        let fourth = now + Duration::from_secs(5);
        let mut timer = spare.timer(fourth);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!fired(&mut timer, fourth));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(fired(&mut timer, fourth));
    }

    #[test]
    fn connection_close_and_http_1_0_are_not_kept_alive() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, http::HeaderValue::from_static(value));
            headers
        };
        let none = HeaderMap::new();
        assert!(keeps_alive(Version::HTTP_11, &none));
        assert!(!keeps_alive(Version::HTTP_11, &with("close")));
        assert!(!keeps_alive(Version::HTTP_11, &with("Upgrade, Close")));
        assert!(!keeps_alive(Version::HTTP_10, &none));
        assert!(keeps_alive(Version::HTTP_10, &with("Keep-Alive")));
        assert!(!keeps_alive(Version::HTTP_10, &with("keep-alive, close")));
    }
}
