//! Keep-alive HTTP/1 connections to one upstream origin (scheme + authority), kept by the
//! proxy itself instead of a general-purpose client pool.
//!
//! Every endpoint URL's [`Target`](super::upstream::Target) holds the [`HostPool`] of its
//! origin, found once at start-up (targets of one origin share it), so a request reaches its
//! idle connections through a pointer: no key is hashed or compared per request.
//!
//! - A connection is made by the gateway's HTTP(S) connector (TCP_NODELAY, the connect timeout,
//!   rustls with the upstream trust store, SNI and ALPN `http/1.1`), then handed to hyper's
//!   HTTP/1 client (`hyper::client::conn::http1`).
//! - **No task per connection.** hyper splits a connection into a request half (`SendRequest`)
//!   and its I/O half (`Connection`, the client dispatcher: it writes the request and pulls its
//!   body, reads the response and feeds its body). Both are owned together
//!   ([`UpstreamConnection`]), in the idle entry and in the [`Lease`] of the exchange using
//!   it, and the I/O half is polled by whoever uses the connection, in the client
//!   connection's own task: the proxy step while it waits for the response head (the
//!   connection, then hyper's response future: [`UpstreamConnection::send_request`]), then
//!   [`UpstreamBody`] each time the client's connection pulls a frame of the response body
//!   (the connection, then the body). An exchange therefore never crosses to another task
//!   and back (hyper's request channel, its answer, each body frame): the wake-ups that did
//!   are gone. A request body (an upload) is pulled by the connection from the client's body,
//!   which the client's own connection feeds, in the same task.
//! - After a response, the connection goes back on its pool's idle stack when the response
//!   body has ENDED ([`UpstreamBody`] does it as it yields the last frame), not before. A
//!   connection still busy then (the upstream answered before the request body was all
//!   sent, e.g. an early 413, and the client is still sending it) is finished by a task of
//!   its own, which gives it back once idle. A body dropped before its end drops the
//!   connection, closing it: its unread rest can never be taken for the next response.
//! - Nobody polls an idle connection. One the upstream closed meanwhile is found closed when
//!   it is next taken: [`HostPool::checkout`] polls each connection once as it takes it, and
//!   skips those that end there. A close that races with the send (or that the reactor has
//!   not seen yet) fails the exchange, and the proxy's resend of an idempotent request on a
//!   new connection (RFC 9112 §9.3.1, see [`super::forward`]) covers it, as it did when each
//!   connection had a task. Until then a closed idle connection holds its socket (at most
//!   `pool_max_idle_per_host` per origin, per worker), and the last task that polled it is
//!   woken, for nothing, when the close arrives.
//! - The idle stack is LIFO (the most recently used connection is the warmest, and the oldest
//!   ones age out at the bottom), holds at most `pool_max_idle_per_host` connections, and forgets
//!   connections idle longer than `pool_idle_timeout_seconds` when it is next used (no sweeper
//!   task).
//! - Locking: one short `std::sync::Mutex` per idle stack around a push or a pop. With the
//!   work-stealing runtime an origin has one stack, shared by the worker threads: requests
//!   contend only with requests to the same origin, for a few instructions. With the
//!   thread-per-core runtime ([`PoolLimits::cores`]) an origin has one stack per worker, on
//!   cache lines of its own ([`PerCore`]): a worker takes and gives back only its own
//!   connections (whose sockets are registered with its own reactor), so its lock is never
//!   contended and no cache line of the pool moves between cores.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;

use super::body::{BoxError, ReclaimableBody};
use crate::server::worker::PerCore;

/// The transport of an upstream connection: TCP, or TLS over TCP.
pub type Io = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

/// The request half of one upstream HTTP/1 connection.
type Sender = http1::SendRequest<ReclaimableBody>;

/// The I/O half of one upstream HTTP/1 connection: hyper's client dispatcher (writes requests
/// and their bodies, reads responses and their bodies, notices a close).
type Dispatcher = http1::Connection<Io, ReclaimableBody>;

/// One upstream HTTP/1 connection: its request half and its I/O half, owned together and
/// driven by whoever holds them (no task of its own; see the module documentation).
pub struct UpstreamConnection {
    sender: Sender,
    /// `None` once the connection has ended (closed by either side, or failed). Boxed (once
    /// per connection): hyper's dispatcher, with its buffers' handles and state, is about 1.8
    /// KiB, which every response that carries its connection would otherwise move around.
    io: Option<Box<Dispatcher>>,
}

impl std::fmt::Debug for UpstreamConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnection")
            .field("open", &self.io.is_some())
            .field("ready", &self.sender.is_ready())
            .finish()
    }
}

impl UpstreamConnection {
    /// Drives the connection's I/O as far as it can go now: `Ready` once it has ended (the
    /// upstream closed it, it failed, or it finished a `Connection: close` exchange).
    /// The waker of `cx` is woken when it can go further.
    pub fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(io) = &mut self.io else {
            return Poll::Ready(());
        };
        match Pin::new(&mut **io).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                if let Err(err) = result {
                    tracing::debug!("upstream connection ended: {err}");
                }
                self.io = None;
                Poll::Ready(())
            }
        }
    }

    /// True when the connection is open and idle: it can take a request now.
    fn is_ready(&self) -> bool {
        self.io.is_some() && self.sender.is_ready()
    }

    /// Sends `request` and drives the connection until the response head has arrived (the
    /// request body may still be streaming; the response body is read as it is pulled).
    ///
    /// # Errors
    ///
    /// hyper's error when the connection fails or closes before a complete response head,
    /// or when the request body fails (its source is then the body's error).
    pub async fn send_request(
        &mut self,
        request: Request<ReclaimableBody>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        // hyper's future does not borrow the sender: it waits on the dispatcher's answer. It
        // completes only when the dispatcher answers, which happens only as `poll_io` runs,
        // here, just before it: so it is polled with a waker that does nothing (the task is
        // woken by the I/O that `poll_io` waits on), which spares a second wake-up of this
        // task from inside its own poll. tokio's cooperative budget could make it return
        // `Pending` and count on that waker: it is exempt (it only reads a one-shot channel).
        let response = tokio::task::unconstrained(self.sender.send_request(request));
        let mut response = std::pin::pin!(response);
        std::future::poll_fn(|cx| {
            let _ = self.poll_io(cx);
            response
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
        })
        .await
    }
}

/// The idle connections of one upstream origin: one stack, or one per thread-per-core worker.
#[derive(Debug, Default)]
pub struct HostPool {
    idle: PerCore<Mutex<Vec<Idle>>>,
    limits: PoolLimits,
}

#[derive(Debug)]
struct Idle {
    connection: UpstreamConnection,
    since: Instant,
}

/// How the idle stacks are bounded (`[upstream]` settings). The default keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolLimits {
    /// Most idle connections kept per origin (`pool_max_idle_per_host`; 0: none).
    pub max_idle: usize,
    /// Idle time after which a connection is not used again (`pool_idle_timeout_seconds`).
    pub idle_timeout: Duration,
    /// Idle stacks per origin: 1 for the work-stealing runtime (one stack shared by its
    /// workers), the number of workers for the thread-per-core runtime (one each; then
    /// `max_idle` bounds each worker's stack). 0 counts as 1.
    pub cores: usize,
}

impl HostPool {
    /// An empty pool bounded by `limits`.
    pub fn new(limits: PoolLimits) -> Self {
        HostPool {
            idle: PerCore::new(limits.cores, Mutex::default),
            limits,
        }
    }

    /// The most recently returned idle connection that is still open, if any. Nobody polls
    /// an idle connection, so each one is polled once as it is taken: one the upstream
    /// closed meanwhile (when the reactor has seen it) ends there and is skipped.
    /// Connections past the idle timeout are dropped (closing them), with every one below
    /// them on the stack, which are older.
    pub fn checkout(&self) -> Option<UpstreamConnection> {
        // Polled with a waker that does nothing: the request sent next polls the connection
        // again with the task's own waker before anything waits on it, and the waker left
        // in the connection is the one a send wakes (that of the connection's last user
        // otherwise, woken for nothing).
        let mut quiet = Context::from_waker(Waker::noop());
        loop {
            let mut connection = self.pop()?;
            if connection.poll_io(&mut quiet).is_ready() {
                continue;
            }
            if connection.is_ready() {
                return Some(connection);
            }
        }
    }

    fn pop(&self) -> Option<UpstreamConnection> {
        let mut idle = self.idle.local().lock().unwrap_or_else(|e| e.into_inner());
        let top = idle.pop()?;
        if top.since.elapsed() > self.limits.idle_timeout {
            // Every connection below is older still.
            idle.clear();
            return None;
        }
        Some(top.connection)
    }

    /// Puts an idle connection on the stack (or drops it, closing it, when the stack is
    /// full).
    fn push(&self, connection: UpstreamConnection) {
        let mut idle = self.idle.local().lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.limits.max_idle {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }
}

/// A connection lent to one exchange, to be given back when the response body ends.
#[derive(Debug)]
pub struct Lease {
    connection: UpstreamConnection,
    pool: Arc<HostPool>,
    reusable: bool,
}

impl Lease {
    /// Lends `connection`, which belongs to `pool`. A connection that is not `reusable` (the
    /// upstream closes it, or its framing cannot be trusted any more) is dropped at release.
    pub fn new(connection: UpstreamConnection, pool: Arc<HostPool>, reusable: bool) -> Self {
        Lease {
            connection,
            pool,
            reusable,
        }
    }

    /// Drives the connection's I/O (see [`UpstreamConnection::poll_io`]).
    pub fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.connection.poll_io(cx)
    }

    /// Ends the exchange (the response has ended): gives the connection back to its pool
    /// when it may carry another. One still busy (still sending a request body the upstream
    /// answered early) is finished by a task of its own, then given back.
    pub fn release(mut self, cx: &mut Context<'_>) {
        if !self.reusable {
            return;
        }
        if !self.connection.is_ready() && self.connection.poll_io(cx).is_ready() {
            return;
        }
        if self.connection.is_ready() {
            self.pool.push(self.connection);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Lease {
            mut connection,
            pool,
            ..
        } = self;
        runtime.spawn(async move {
            let idle = std::future::poll_fn(|cx| {
                if connection.poll_io(cx).is_ready() {
                    return Poll::Ready(false);
                }
                if connection.is_ready() {
                    Poll::Ready(true)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if idle {
                pool.push(connection);
            }
        });
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
    /// Dropped before the end, it drops the connection instead (hyper closes it).
    #[derive(Debug)]
    pub struct UpstreamBody {
        #[pin]
        body: Incoming,
        lease: Option<Lease>,
    }
}

impl UpstreamBody {
    /// `body`, whose connection `lease` is given back at its end (`None`: nothing to give
    /// back, e.g. a body from another client).
    pub fn new(body: Incoming, lease: Option<Lease>) -> Self {
        UpstreamBody { body, lease }
    }
}

impl From<Incoming> for UpstreamBody {
    fn from(body: Incoming) -> Self {
        UpstreamBody::new(body, None)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let mut body = this.body;
        let polled = match this.lease.as_mut() {
            // The connection reads the body (and may still be sending the request's) only as
            // it is polled, here: a frame it has already produced is taken first; when there
            // is none, it is polled, then the body again. Only the connection feeds the body
            // (or ends it, by ending), so the body is polled with a waker that does nothing
            // (as the response future is in `send_request`): the task is woken by the
            // connection's I/O, not by its own poll handing over a frame.
            Some(lease) => {
                let mut quiet = Context::from_waker(Waker::noop());
                match body.as_mut().poll_frame(&mut quiet) {
                    Poll::Pending => {
                        let _ = lease.poll_io(cx);
                        body.as_mut().poll_frame(&mut quiet)
                    }
                    ready => ready,
                }
            }
            None => body.as_mut().poll_frame(cx),
        };
        match &polled {
            // The last frame of a body of known length, or the end.
            Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                if let Some(lease) = this.lease.take() {
                    lease.release(cx);
                }
            }
            Poll::Ready(None) => {
                if let Some(lease) = this.lease.take() {
                    lease.release(cx);
                }
            }
            // A broken body: its connection is not reused.
            Poll::Ready(Some(Err(_))) => *this.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
    C: tower_service::Service<Uri, Response = Io> + Clone + Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send,
{
    /// Opens a new connection to `origin` (a URI with scheme and authority). It has no task
    /// of its own: its holder drives it ([`UpstreamConnection::poll_io`]).
    pub async fn connect(&self, origin: Uri) -> Result<UpstreamConnection, ConnectError> {
        let mut transport = self.transport.clone();
        std::future::poll_fn(|cx| transport.poll_ready(cx))
            .await
            .map_err(|e| ConnectError::Transport(e.into()))?;
        let io = transport
            .call(origin)
            .await
            .map_err(|e| ConnectError::Transport(e.into()))?;
        let (sender, io) = self
            .http1
            .handshake(io)
            .await
            .map_err(ConnectError::Handshake)?;
        Ok(UpstreamConnection {
            sender,
            io: Some(Box::new(io)),
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
    use crate::proxy::body::{BodyLimits, BodySlot, ClientBody};
    use http_body_util::BodyExt;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback upstream that answers each request `ok` (`Content-Length: 2`) and closes
    /// a connection 50 ms after its `answers_per_connection`th answer (so that it is closed
    /// while idle). Counts the connections.
    async fn upstream(answers_per_connection: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    for _ in 0..answers_per_connection {
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                                _ => return,
                            }
                        }
                        head.clear();
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                });
            }
        });
        (addr, accepted)
    }

    fn connector() -> Connector<hyper_rustls::HttpsConnector<HttpConnector>> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        Connector {
            transport: hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http),
            http1: http1::Builder::new(),
        }
    }

    /// One GET on `connection`, its body read to the end through [`UpstreamBody`], which
    /// gives the connection back to `pool`.
    async fn get(connection: UpstreamConnection, pool: &Arc<HostPool>) -> Bytes {
        let mut connection = connection;
        let limits = BodyLimits {
            max_bytes: 0,
            idle: Duration::from_secs(10),
            deadline: None,
        };
        let request = Request::get("/")
            .header(header::HOST, "upstream")
            .body(BodySlot::new(ClientBody::Buffered(None), limits).attempt())
            .unwrap();
        let response = connection.send_request(request).await.unwrap();
        let lease = Lease::new(connection, pool.clone(), true);
        let body = with_lease(response, Some(lease)).into_body();
        body.collect().await.unwrap().to_bytes()
    }

    fn pool() -> Arc<HostPool> {
        Arc::new(HostPool::new(PoolLimits {
            max_idle: 4,
            idle_timeout: Duration::from_secs(60),
            cores: 1,
        }))
    }

    type HttpConnector = hyper_util::client::legacy::connect::HttpConnector;

    #[tokio::test]
    async fn a_connection_goes_back_idle_when_its_body_ends_and_carries_the_next_request() {
        let (addr, accepted) = upstream(usize::MAX).await;
        let origin: Uri = format!("http://{addr}").parse().unwrap();
        let pool = pool();
        let first = connector().connect(origin).await.unwrap();
        assert_eq!(&get(first, &pool).await[..], b"ok");
        for _ in 0..3 {
            let again = pool.checkout().expect("the connection is idle again");
            assert_eq!(&get(again, &pool).await[..], b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // A body dropped before its end takes its connection with it.
        let mut connection = pool.checkout().unwrap();
        let request = Request::get("/")
            .header(header::HOST, "upstream")
            .body(
                BodySlot::new(
                    ClientBody::Buffered(None),
                    BodyLimits {
                        max_bytes: 0,
                        idle: Duration::from_secs(10),
                        deadline: None,
                    },
                )
                .attempt(),
            )
            .unwrap();
        let response = connection.send_request(request).await.unwrap();
        drop(with_lease(
            response,
            Some(Lease::new(connection, pool.clone(), true)),
        ));
        assert!(pool.checkout().is_none());
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_skipped_when_taken() {
        let (addr, accepted) = upstream(1).await;
        let origin: Uri = format!("http://{addr}").parse().unwrap();
        let pool = pool();
        let first = connector().connect(origin).await.unwrap();
        assert_eq!(&get(first, &pool).await[..], b"ok");
        assert_eq!(
            pool.idle.local().lock().unwrap().len(),
            1,
            "idle after its body"
        );
        // Nobody polls the idle connection; the close is found when it is taken (the
        // reactor sees the FIN while this task sleeps).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            pool.checkout().is_none(),
            "the closed connection is not lent"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
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
