//! Upstream connections that remember whether they have already carried a response.
//!
//! The pooled client needs to know, when a request fails, whether it failed on a connection
//! that was reused from the pool (the backend may have closed it while it sat idle, RFC 9112
//! §9.3.1) or on a fresh one. The connector wraps every new connection in [`Tagged`], whose
//! [`ConnectionTag`] travels with the connection's metadata (`Connected::extra`): it is in the
//! extensions of every response from that connection and in the metadata a
//! `CaptureConnection` sees, also when the request failed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{CaptureConnection, Connected, Connection};

/// Shared facts about one upstream connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionTag {
    answered: Arc<AtomicBool>,
}

impl ConnectionTag {
    /// Records that a response head arrived on this connection: any later request on it is
    /// on a reused connection.
    pub fn mark_answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
    }

    /// True once a response arrived on this connection.
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    /// The tag of the connection a request went out on, if it got as far as a connection.
    pub fn of(capture: &CaptureConnection) -> Option<ConnectionTag> {
        let metadata = capture.connection_metadata();
        let connected = metadata.as_ref()?;
        let mut extensions = Extensions::new();
        connected.get_extras(&mut extensions);
        extensions.get::<ConnectionTag>().cloned()
    }
}

pin_project_lite::pin_project! {
    /// A connection with its [`ConnectionTag`]; reads and writes go straight through.
    #[derive(Debug)]
    pub struct Tagged<T> {
        #[pin]
        inner: T,
        tag: ConnectionTag,
    }
}

impl<T: Read> Read for Tagged<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: Write> Write for Tagged<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
}

impl<T: Connection> Connection for Tagged<T> {
    fn connected(&self) -> Connected {
        self.inner.connected().extra(self.tag.clone())
    }
}

/// A connector that tags every connection its inner connector makes.
#[derive(Debug, Clone)]
pub struct TaggingConnector<C>(pub C);

impl<C> tower_service::Service<Uri> for TaggingConnector<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = Tagged<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            Ok(Tagged {
                inner: connecting.await?,
                tag: ConnectionTag::default(),
            })
        })
    }
}
