//! Body types of the proxy path. Request bodies stream unless a step needs them whole
//! ([`collect`], under the same limits as streaming); responses stream unless a step rewrites
//! them ([`GatewayBody::Prefixed`] puts back what was read when the rewrite gives up).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

use super::pool::{UpstreamBody, UpstreamBodyError};

pin_project_lite::pin_project! {
    /// What the gateway answers with: a small gateway-made body or the upstream's stream.
    #[project = GatewayBodyProj]
    pub enum GatewayBody {
        /// A gateway-made body (faults, health).
        Full { #[pin] body: Full<Bytes> },
        /// The upstream response, streamed.
        Upstream { #[pin] body: UpstreamBody },
        /// An upstream response whose first bytes were already read (a step looked at them
        /// and left the body as it was): those bytes, then the rest of the stream. (Boxed,
        /// as rare as it is: the variants' size is every response's, moved about ten times.)
        Prefixed { prefix: Option<Bytes>, body: Pin<Box<UpstreamBody>> },
    }
}

/// A request body on its way upstream: the client's stream, or bytes a step read whole (and
/// perhaps rewrote). A buffered body can be sent again on a retry; a stream only once.
#[derive(Debug)]
pub enum ClientBody {
    /// The client's body, not read yet.
    Streaming(Incoming),
    /// The whole body (`None` once sent).
    Buffered(Option<Bytes>),
    /// The client's whole body as it arrived with its head, read by the lean HTTP/1.1 server
    /// (`server::h1`; `None` once sent). Sent as a stream is: an attempt that started sending
    /// it is not repeated, so whether a request is resent never depends on how its bytes were
    /// split into TCP segments. A step that reads the body makes it [`ClientBody::Buffered`].
    Received(Option<Bytes>),
}

impl From<Incoming> for ClientBody {
    fn from(body: Incoming) -> Self {
        ClientBody::Streaming(body)
    }
}

impl ClientBody {
    /// The body of a request hyper's server read, whose head announces a length
    /// (`Content-Length`) when `announced`: no body ([`ClientBody::Buffered`] with nothing)
    /// when it has ended already, else the client's stream.
    ///
    /// hyper gives a body of unannounced length an exact size of 0 only once it has ended (an
    /// HTTP/2 stream the client ended with its head, `hyper::body::Incoming::h2`; a bodiless
    /// HTTP/1.1 request); an announced length of 0 may still be followed by trailers, so that
    /// body is asked. Asking an HTTP/2 body whether it has ended takes its connection's lock
    /// (`h2::RecvStream::is_end_stream`, about 200 instructions and two locking
    /// instructions), and a request's body was asked that several times on its way (the
    /// proxy's choice of client, its resend slot); an empty body answers at once. The test
    /// `an_http2_request_ended_with_its_head_has_no_body` holds hyper to this rule.
    pub fn from_hyper(body: Incoming, announced: bool) -> Self {
        match body.size_hint().exact() {
            Some(0) if !announced || body.is_end_stream() => ClientBody::Buffered(None),
            _ => ClientBody::Streaming(body),
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Streaming(body) => Pin::new(body).poll_frame(cx),
            ClientBody::Buffered(bytes) | ClientBody::Received(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Streaming(body) => body.is_end_stream(),
            ClientBody::Buffered(bytes) | ClientBody::Received(bytes) => {
                bytes.as_ref().is_none_or(Bytes::is_empty)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Streaming(body) => body.size_hint(),
            ClientBody::Buffered(bytes) | ClientBody::Received(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// What [`read_upstream`] found.
pub enum UpstreamRead {
    /// The whole body, within the limit.
    Whole(Bytes),
    /// The body is longer than the limit: what was read, then the rest, streamed.
    TooLong(GatewayBody),
}

/// Reads an upstream response body whole when it has at most `limit` bytes. A longer body is
/// given back unread past the limit, to be streamed as it is. The error is the upstream's
/// (a reset, a cut-off body); the caller bounds the time.
pub async fn read_upstream(
    body: UpstreamBody,
    limit: usize,
) -> Result<UpstreamRead, UpstreamBodyError> {
    use http_body_util::BodyExt;
    if body
        .size_hint()
        .lower()
        .gt(&u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Ok(UpstreamRead::TooLong(GatewayBody::upstream(body)));
    }
    let mut body = body;
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
            if out.len() > limit {
                return Ok(UpstreamRead::TooLong(GatewayBody::Prefixed {
                    prefix: Some(out.freeze()),
                    body: Box::pin(body),
                }));
            }
        }
    }
    Ok(UpstreamRead::Whole(out.freeze()))
}

/// Reads a whole request body under `limits` (size, idle time, deadline), as streaming it
/// upstream would. The error says whose fault it was; after one, the body is partly read.
pub async fn collect(body: ClientBody, limits: BodyLimits) -> Result<Bytes, ClientBodyError> {
    use http_body_util::BodyExt;
    let mut attempt = BodySlot::new(body, limits, tokio::time::Instant::now()).attempt();
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = attempt.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Err(err) => {
                return Err(match err.downcast::<ClientBodyError>() {
                    Ok(err) => *err,
                    // ReclaimableBody only fails with ClientBodyError.
                    Err(_) => ClientBodyError::TooLarge,
                });
            }
        }
    }
    Ok(out.freeze())
}

impl super::field_lines::CarriesFields for GatewayBody {
    fn fields_as_received(&self) -> Option<&super::field_lines::FieldLines> {
        match self {
            // A step that read the first bytes of the body left the answer's fields alone.
            GatewayBody::Upstream { body } => body.fields_as_received(),
            GatewayBody::Prefixed { body, .. } => body.fields_as_received(),
            GatewayBody::Full { .. } => None,
        }
    }
}

impl From<Bytes> for GatewayBody {
    fn from(bytes: Bytes) -> Self {
        GatewayBody::Full {
            body: Full::new(bytes),
        }
    }
}

impl GatewayBody {
    /// Streams an upstream response body (an [`Incoming`] converts into one).
    pub fn upstream(body: impl Into<UpstreamBody>) -> Self {
        GatewayBody::Upstream { body: body.into() }
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        match self.project() {
            GatewayBodyProj::Full { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            GatewayBodyProj::Upstream { body } => body.poll_frame(cx),
            GatewayBodyProj::Prefixed { prefix, body } => match prefix.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => body.as_mut().poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Full { body } => body.is_end_stream(),
            GatewayBody::Upstream { body } => body.is_end_stream(),
            GatewayBody::Prefixed { prefix, body } => prefix.is_none() && body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Full { body } => body.size_hint(),
            GatewayBody::Upstream { body } => body.size_hint(),
            GatewayBody::Prefixed { prefix, body } => {
                let extra = prefix.as_ref().map_or(0, |b| b.len() as u64);
                let inner = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower().saturating_add(extra));
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper.saturating_add(extra));
                }
                hint
            }
        }
    }
}

/// Why a request body stopped on the client's side while it was being streamed upstream.
/// These are the client's errors (4xx), never counted as the upstream's.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// More bytes than `limits.max_request_body_bytes`.
    #[error("the request body is larger than the limit")]
    TooLarge,
    /// No data for `timeouts.request_body_idle_seconds`.
    #[error("the client sent no request body data within the idle timeout")]
    Idle,
    /// The body was not complete within `timeouts.request_body_seconds` plus one second per
    /// `timeouts.request_body_min_rate_bytes` received (Apache mod_reqtimeout's `MinRate`).
    #[error("the client sent the request body slower than the minimum rate")]
    TooSlow,
    /// The client's framing was invalid (bad chunk size, missing CRLF, ...) or the client
    /// closed the connection before the body ended.
    #[error("the client's request body is malformed or cut off")]
    Broken(#[source] hyper::Error),
}

/// How long a whole request body may take: `base` plus one second per `min_rate_bytes`
/// received (`min_rate_bytes` 0: `base` is a fixed deadline).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    /// Time every body gets, whatever its size.
    pub base: Duration,
    /// Bytes per second that earn one more second (0: none).
    pub min_rate_bytes: u64,
}

impl BodyDeadline {
    /// The moment a body that started at `started` and has `seen` bytes so far must be done.
    fn at(&self, started: tokio::time::Instant, seen: u64) -> tokio::time::Instant {
        let earned = seen
            .saturating_mul(1000)
            .checked_div(self.min_rate_bytes)
            .map_or(Duration::ZERO, Duration::from_millis);
        let allowed = self.base.saturating_add(earned);
        // Far beyond any connection's life when the sum does not fit.
        started
            .checked_add(allowed)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600))
    }
}

/// The limits a streamed request body is held to.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Most bytes (0: no limit).
    pub max_bytes: u64,
    /// Longest pause between data.
    pub idle: Duration,
    /// Total time allowed, growing with the bytes received (`None`: no deadline).
    pub deadline: Option<BodyDeadline>,
}

/// A request body that can be handed to another upstream when the first one refused the
/// connection: until the client first polls it, the incoming body stays in a shared slot.
/// While streaming it enforces the size limit, the idle timeout and the body deadline.
pub struct ReclaimableBody {
    state: State,
    limits: BodyLimits,
    started: tokio::time::Instant,
    seen: u64,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    timer_armed: bool,
}

impl std::fmt::Debug for ReclaimableBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReclaimableBody")
            .field("seen", &self.seen)
            .finish()
    }
}

/// The error type of a proxied request body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
enum State {
    Waiting(Arc<Mutex<Option<ClientBody>>>),
    Streaming(ClientBody),
    Done,
}

/// The handle that takes a body back after a failed connection attempt.
#[derive(Debug, Clone)]
pub struct BodySlot {
    /// `None` for a body that had already ended when the slot was made (a `GET`'s, a
    /// `Content-Length: 0` one): there is nothing to send or take back, and every attempt
    /// sends the same empty body, without a shared slot to allocate.
    body: Option<Arc<Mutex<Option<ClientBody>>>>,
    limits: BodyLimits,
    started: tokio::time::Instant,
}

impl BodySlot {
    /// Holds `body` until a [`ReclaimableBody`] streams it; the body deadline counts from
    /// `started` (the caller's "now": one clock read serves it and the caller's deadlines).
    pub fn new(
        body: impl Into<ClientBody>,
        limits: BodyLimits,
        started: tokio::time::Instant,
    ) -> Self {
        let body = body.into();
        BodySlot {
            body: (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Some(body)))),
            limits,
            started,
        }
    }

    /// A body for one attempt; it streams whatever is still in the slot.
    pub fn attempt(&self) -> ReclaimableBody {
        ReclaimableBody {
            state: match &self.body {
                Some(slot) => State::Waiting(slot.clone()),
                None => State::Done,
            },
            limits: self.limits,
            started: self.started,
            seen: 0,
            timer: None,
            timer_armed: false,
        }
    }

    /// True while no attempt has started sending the body, so another attempt may (always
    /// for a buffered body, which every attempt sends whole, and for a body that had ended).
    pub fn is_untouched(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(|body| body.lock().map(|slot| slot.is_some()).unwrap_or(false))
    }
}

impl ReclaimableBody {
    fn fail(&mut self, error: ClientBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        Poll::Ready(Some(Err(Box::new(error))))
    }

    fn poll_streaming(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let State::Streaming(body) = &mut self.state else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timer_armed = false;
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.limits.max_bytes > 0 && self.seen > self.limits.max_bytes {
                        return self.fail(ClientBodyError::TooLarge);
                    }
                    // Data that arrives after the deadline does not save a trickling body.
                    if let Some(deadline) = &self.limits.deadline {
                        let due = deadline.at(self.started, self.seen - data.len() as u64);
                        if tokio::time::Instant::now() > due {
                            return self.fail(ClientBodyError::TooSlow);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => self.fail(ClientBodyError::Broken(err)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if !self.timer_armed {
                    self.timer_armed = true;
                    let idle = tokio::time::Instant::now() + self.limits.idle;
                    let due = match &self.limits.deadline {
                        Some(deadline) => idle.min(deadline.at(self.started, self.seen)),
                        None => idle,
                    };
                    match &mut self.timer {
                        Some(timer) => timer.as_mut().reset(due),
                        None => self.timer = Some(Box::pin(tokio::time::sleep_until(due))),
                    }
                }
                if let Some(timer) = &mut self.timer {
                    if timer.as_mut().poll(cx).is_ready() {
                        let slow = self.limits.deadline.is_some_and(|deadline| {
                            tokio::time::Instant::now() >= deadline.at(self.started, self.seen)
                        });
                        return self.fail(if slow {
                            ClientBodyError::TooSlow
                        } else {
                            ClientBodyError::Idle
                        });
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl Body for ReclaimableBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let State::Waiting(slot) = &self.state {
            // A buffered body stays in the slot for the next attempt; a stream moves out.
            let taken = slot.lock().ok().and_then(|mut s| match s.as_ref() {
                Some(ClientBody::Buffered(bytes)) => Some(ClientBody::Buffered(bytes.clone())),
                _ => s.take(),
            });
            self.state = match taken {
                Some(body) => State::Streaming(body),
                None => State::Done,
            };
        }
        self.poll_streaming(cx)
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Waiting(slot) => slot
                .lock()
                .map(|s| s.as_ref().is_none_or(ClientBody::is_end_stream))
                .unwrap_or(true),
            State::Streaming(body) => body.is_end_stream(),
            State::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Waiting(slot) => slot
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(ClientBody::size_hint))
                .unwrap_or_else(|| SizeHint::with_exact(0)),
            State::Streaming(body) => body.size_hint(),
            State::Done => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A client's body sent as these frames, one a poll, of unknown length.
    struct Frames(std::collections::VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(Ok))
        }
    }

    /// What [`ClientBody::from_hyper`] made of each request a real HTTP/2 server read from a
    /// real client: `buffered` or `streaming`, then the body and its trailers' names as the
    /// gateway reads them.
    async fn through_hyper_h2(
        requests: Vec<http::Request<http_body_util::combinators::BoxBody<Bytes, Infallible>>>,
    ) -> Vec<String> {
        use http_body_util::BodyExt;
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let service = hyper::service::service_fn(|request: http::Request<Incoming>| async move {
            let announced = request.headers().contains_key(http::header::CONTENT_LENGTH);
            let body = ClientBody::from_hyper(request.into_body(), announced);
            let kind = match body {
                ClientBody::Streaming(_) => "streaming",
                ClientBody::Buffered(None) => "buffered",
                _ => "other",
            };
            let collected = body.collect().await.unwrap();
            let trailers = collected
                .trailers()
                .map(|t| t.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            let bytes = collected.to_bytes();
            let text = format!("{kind} {:?} [{trailers}]", String::from_utf8_lossy(&bytes));
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(text))))
        });
        tokio::spawn(
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server_io), service),
        );
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_io))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut seen = Vec::new();
        for request in requests {
            let response = sender.send_request(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            seen.push(String::from_utf8(body.to_vec()).unwrap());
        }
        seen
    }

    #[tokio::test]
    async fn an_http2_request_ended_with_its_head_has_no_body() {
        use http_body_util::BodyExt;
        type Boxed = http_body_util::combinators::BoxBody<Bytes, Infallible>;
        let frames = |frames: Vec<Frame<Bytes>>| -> Boxed { Frames(frames.into()).boxed() };
        let trailers = || {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-sum", http::HeaderValue::from_static("1"));
            Frame::trailers(trailers)
        };
        let request = |method: &str, length: Option<&str>, body: Boxed| {
            let mut builder = http::Request::builder()
                .method(method)
                .uri("http://gateway/up");
            if let Some(length) = length {
                builder = builder.header(http::header::CONTENT_LENGTH, length);
            }
            builder.body(body).unwrap()
        };
        let seen = through_hyper_h2(vec![
            // HEADERS with END_STREAM: nothing to ask the stream again.
            request("GET", None, Full::new(Bytes::new()).boxed()),
            request("POST", Some("0"), Full::new(Bytes::new()).boxed()),
            // A body of unannounced length, in two DATA frames: the stream.
            request(
                "POST",
                None,
                frames(vec![
                    Frame::data(Bytes::from_static(b"ab")),
                    Frame::data(Bytes::from_static(b"c")),
                ]),
            ),
            request(
                "POST",
                Some("3"),
                frames(vec![Frame::data(Bytes::from_static(b"abc"))]),
            ),
            // An announced length of 0 with trailers after the head: the stream, trailers kept.
            request("POST", Some("0"), frames(vec![trailers()])),
            request("POST", None, frames(vec![trailers()])),
        ])
        .await;
        assert_eq!(
            seen,
            [
                r#"buffered "" []"#,
                r#"buffered "" []"#,
                r#"streaming "abc" []"#,
                r#"streaming "abc" []"#,
                r#"streaming "" [x-sum]"#,
                r#"streaming "" [x-sum]"#,
            ]
        );
    }

    #[test]
    fn the_body_deadline_grows_with_the_bytes_received() {
        let started = tokio::time::Instant::now();
        let rate = BodyDeadline {
            base: Duration::from_secs(20),
            min_rate_bytes: 500,
        };
        assert_eq!(rate.at(started, 0) - started, Duration::from_secs(20));
        assert_eq!(
            rate.at(started, 250) - started,
            Duration::from_millis(20_500)
        );
        assert_eq!(rate.at(started, 5000) - started, Duration::from_secs(30));
        // Huge counts saturate instead of overflowing.
        assert!(rate.at(started, u64::MAX) > started + Duration::from_secs(3600));
        let fixed = BodyDeadline {
            base: Duration::from_secs(20),
            min_rate_bytes: 0,
        };
        assert_eq!(
            fixed.at(started, 1 << 40) - started,
            Duration::from_secs(20)
        );
    }
}

#[cfg(test)]
mod size {
    use std::mem::size_of;

    /// A response is moved about ten times on its way from the pipeline to the connection,
    /// each move a `memcpy` of its size, and glibc copies up to 256 bytes without a loop
    /// (docs/benchmarks.md, "ninth pass": 272 and 304 bytes before the rare and large parts
    /// were boxed). A body variant that grows past this is to be boxed too.
    #[test]
    fn responses_stay_small_to_move() {
        let gateway = size_of::<http::Response<super::GatewayBody>>();
        let logged = size_of::<crate::gateway::GatewayResponse>();
        assert!(gateway <= 256, "Response<GatewayBody> is {gateway} bytes");
        assert!(logged <= 256, "GatewayResponse is {logged} bytes");
    }
}
