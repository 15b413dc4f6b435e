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
    Waiting(Arc<Mutex<Option<Incoming>>>),
    Streaming(Incoming),
    Done,
}

/// The handle that takes a body back after a failed connection attempt.
#[derive(Debug, Clone)]
pub struct BodySlot {
    body: Arc<Mutex<Option<Incoming>>>,
    limits: BodyLimits,
    started: tokio::time::Instant,
}

impl BodySlot {
    /// Holds `body` until a [`ReclaimableBody`] streams it; the body deadline counts from now.
    pub fn new(body: Incoming, limits: BodyLimits) -> Self {
        BodySlot {
            body: Arc::new(Mutex::new(Some(body))),
            limits,
            started: tokio::time::Instant::now(),
        }
    }

    /// A body for one attempt; it streams whatever is still in the slot.
    pub fn attempt(&self) -> ReclaimableBody {
        ReclaimableBody {
            state: State::Waiting(self.body.clone()),
            limits: self.limits,
            started: self.started,
            seen: 0,
            timer: None,
            timer_armed: false,
        }
    }

    /// True while no attempt has started sending the body, so another attempt may.
    pub fn is_untouched(&self) -> bool {
        self.body.lock().map(|slot| slot.is_some()).unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;

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
