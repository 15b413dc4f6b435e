//! Body types of the proxy path: nothing here buffers a body.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

pin_project_lite::pin_project! {
    /// What the gateway answers with: a small gateway-made body or the upstream's stream.
    #[project = GatewayBodyProj]
    pub enum GatewayBody {
        /// A gateway-made body (faults, health).
        Full { #[pin] body: Full<Bytes> },
        /// The upstream response, streamed.
        Upstream { #[pin] body: Incoming },
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
    /// Streams an upstream response body.
    pub fn upstream(body: Incoming) -> Self {
        GatewayBody::Upstream { body }
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.project() {
            GatewayBodyProj::Full { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            GatewayBodyProj::Upstream { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Full { body } => body.is_end_stream(),
            GatewayBody::Upstream { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Full { body } => body.size_hint(),
            GatewayBody::Upstream { body } => body.size_hint(),
        }
    }
}

/// Why a request body stopped: the client broke a limit while it was being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyLimitError {
    /// More bytes than `limits.max_request_body_bytes`.
    #[error("the request body is larger than the limit")]
    TooLarge,
    /// No data for `timeouts.request_body_idle_seconds`.
    #[error("the client sent no request body data within the idle timeout")]
    Idle,
}

/// The limits a streamed request body is held to.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Most bytes (0: no limit).
    pub max_bytes: u64,
    /// Longest pause between data.
    pub idle: Duration,
}

/// A request body that can be handed to another upstream when the first one refused the
/// connection: until the client first polls it, the incoming body stays in a shared slot.
/// While streaming it enforces the size limit and the idle timeout.
pub struct ReclaimableBody {
    state: State,
    limits: BodyLimits,
    seen: u64,
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
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
    Waiting(Arc<Mutex<Option<Incoming>>>),
    Streaming(Incoming),
    Done,
}

/// The handle that takes a body back after a failed connection attempt.
#[derive(Debug, Clone)]
pub struct BodySlot(Arc<Mutex<Option<Incoming>>>, BodyLimits);

impl BodySlot {
    /// Holds `body` until a [`ReclaimableBody`] streams it.
    pub fn new(body: Incoming, limits: BodyLimits) -> Self {
        BodySlot(Arc::new(Mutex::new(Some(body))), limits)
    }

    /// A body for one attempt; it streams whatever is still in the slot.
    pub fn attempt(&self) -> ReclaimableBody {
        ReclaimableBody {
            state: State::Waiting(self.0.clone()),
            limits: self.1,
            seen: 0,
            idle_timer: None,
            timer_armed: false,
        }
    }

    /// True while no attempt has started sending the body, so another attempt may.
    pub fn is_untouched(&self) -> bool {
        self.0.lock().map(|slot| slot.is_some()).unwrap_or(false)
    }
}

impl ReclaimableBody {
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
                        self.state = State::Done;
                        return Poll::Ready(Some(Err(Box::new(BodyLimitError::TooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Box::new(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + self.limits.idle;
                if !self.timer_armed {
                    self.timer_armed = true;
                    match &mut self.idle_timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => {
                            self.idle_timer = Some(Box::pin(tokio::time::sleep_until(deadline)))
                        }
                    }
                }
                if let Some(timer) = &mut self.idle_timer {
                    if timer.as_mut().poll(cx).is_ready() {
                        self.state = State::Done;
                        return Poll::Ready(Some(Err(Box::new(BodyLimitError::Idle))));
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
            let taken = slot.lock().ok().and_then(|mut s| s.take());
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
                .map(|s| s.as_ref().is_none_or(Body::is_end_stream))
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
                .and_then(|s| s.as_ref().map(Body::size_hint))
                .unwrap_or_else(|| SizeHint::with_exact(0)),
            State::Streaming(body) => body.size_hint(),
            State::Done => SizeHint::with_exact(0),
        }
    }
}
