//! Body types of the proxy path: nothing here buffers a body.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

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

/// A request body that can be handed to another upstream when the first one refused the
/// connection: until the client first polls it, the incoming body stays in a shared slot.
#[derive(Debug)]
pub struct ReclaimableBody {
    state: State,
}

#[derive(Debug)]
enum State {
    Waiting(Arc<Mutex<Option<Incoming>>>),
    Streaming(Incoming),
    Done,
}

/// The handle that takes a body back after a failed connection attempt.
#[derive(Debug, Clone)]
pub struct BodySlot(Arc<Mutex<Option<Incoming>>>);

impl BodySlot {
    /// Holds `body` until a [`ReclaimableBody`] streams it.
    pub fn new(body: Incoming) -> Self {
        BodySlot(Arc::new(Mutex::new(Some(body))))
    }

    /// A body for one attempt; it streams whatever is still in the slot.
    pub fn attempt(&self) -> ReclaimableBody {
        ReclaimableBody {
            state: State::Waiting(self.0.clone()),
        }
    }

    /// True while no attempt has started sending the body, so another attempt may.
    pub fn is_untouched(&self) -> bool {
        self.0.lock().map(|slot| slot.is_some()).unwrap_or(false)
    }
}

impl Body for ReclaimableBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        loop {
            match &mut self.state {
                State::Waiting(slot) => {
                    let taken = slot.lock().ok().and_then(|mut s| s.take());
                    self.state = match taken {
                        Some(body) => State::Streaming(body),
                        None => State::Done,
                    };
                }
                State::Streaming(body) => return Pin::new(body).poll_frame(cx),
                State::Done => return Poll::Ready(None),
            }
        }
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
