//! Vectored writes to a TCP socket with `send(2)` when there is one buffer (`sendmsg(2)` for
//! several) instead of `writev(2)`, which is what tokio's (and std's) `write_vectored` calls.
//!
//! Both end in the same TCP send, but `writev` gets there through the file layer (the file
//! table's position lock `fdget_pos`, `vfs_writev`'s checks and iterator, `sock_write_iter`);
//! `send` goes to the socket directly. rustls writes every TLS record through
//! `write_vectored`, nearly always as one buffer. Measured (docs/benchmarks.md, "twenty-fifth
//! pass"): a 1 KiB `send` on a loopback TCP socket costs 106 ns less CPU than a `writev` of
//! the same buffer (median of nine paired rounds of 200,000 calls each); `sendmsg` of two
//! buffers costs the same as `writev` of them (4 ns less). In the `h2tls` bench's kernel
//! profile the file layer's functions took about 1.2 % of the gateway's samples and are gone
//! with this writer. HAProxy writes with `send` too; std's `write` on a socket is a `send`.
//!
//! [`poll_send_vectored`] waits for and clears the socket's write readiness exactly as
//! `TcpStream::poll_write_vectored` does; [`SendStream`] is a `TcpStream` whose vectored
//! writes use it: the HTTPS listener's connections, under rustls.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// `MSG_NOSIGNAL` where the system has it: a peer gone away is `EPIPE`, never `SIGPIPE`
/// (std's writes pass it too; Rust programs also ignore `SIGPIPE`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const FLAGS: std::ffi::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const FLAGS: std::ffi::c_int = 0;

/// Writes `bufs` (in order, as far as the socket takes them) to `stream` with one `send` or
/// `sendmsg`: `Ready(Ok(n))` with the bytes written (0 for no bytes given), `Pending` (the
/// task woken when the socket is writable again) while its send buffer is full, or the
/// socket's error.
pub fn poll_send_vectored(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        // `try_io` clears the write readiness when the call would block: the next
        // `poll_write_ready` then waits for the socket.
        let sent = stream.try_io(Interest::WRITABLE, || {
            let socket = SockRef::from(stream);
            match bufs {
                [] => Ok(0),
                [one] => socket.send_with_flags(one, FLAGS),
                several => socket.send_vectored_with_flags(several, FLAGS),
            }
        });
        match sent {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            sent => return Poll::Ready(sent),
        }
    }
}

/// A TCP stream whose vectored writes are [`poll_send_vectored`]'s; everything else is the
/// stream's own.
#[derive(Debug)]
pub struct SendStream(pub TcpStream);

impl AsyncRead for SendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // std's `write` on a socket is already a `send`.
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_send_vectored(&self.get_mut().0, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn pair() -> (SendStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (SendStream(client.unwrap()), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn several_buffers_arrive_in_order_and_none_is_nothing() {
        let (mut sender, mut receiver) = pair().await;
        let n = std::future::poll_fn(|cx| poll_send_vectored(&sender.0, cx, &[]))
            .await
            .unwrap();
        assert_eq!(n, 0);
        let bufs = [
            IoSlice::new(b"HTTP/1.1 200 OK\r\n"),
            IoSlice::new(b""),
            IoSlice::new(b"content-length: 2\r\n\r\nok"),
        ];
        let n = std::future::poll_fn(|cx| Pin::new(&mut sender).poll_write_vectored(cx, &bufs))
            .await
            .unwrap();
        assert_eq!(n, 40);
        sender.write_all(b"!").await.unwrap();
        sender.shutdown().await.unwrap();
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok!");
    }

    /// A peer that reads nothing: the writes fill the send buffer, then wait (Pending), and go
    /// on in order once the peer reads.
    #[tokio::test]
    async fn a_full_send_buffer_waits_for_the_peer_and_loses_nothing() {
        let (mut sender, mut receiver) = pair().await;
        let total = 16 * 1024 * 1024;
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let writer = tokio::spawn(async move {
            let mut sent = 0;
            let mut waited = false;
            while sent < total {
                let offset = sent % chunk.len();
                let bufs = [
                    IoSlice::new(&chunk[offset..]),
                    IoSlice::new(&chunk[..offset]),
                ];
                let mut pending = false;
                let n = std::future::poll_fn(|cx| {
                    let polled = Pin::new(&mut sender).poll_write_vectored(cx, &bufs);
                    pending |= polled.is_pending();
                    polled
                })
                .await
                .unwrap();
                waited |= pending;
                sent += n.min(total - sent);
            }
            sender.shutdown().await.unwrap();
            waited
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).await.unwrap();
        assert!(
            writer.await.unwrap(),
            "the writer never found the buffer full"
        );
        assert!(got.len() >= total);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, b)| *b == (i % (64 * 1024) % 251) as u8),
            "the bytes arrived in order"
        );
    }

    #[tokio::test]
    async fn a_closed_peer_is_an_error_not_a_signal() {
        let (sender, receiver) = pair().await;
        drop(receiver);
        let mut failed = None;
        for _ in 0..100 {
            let bufs = [IoSlice::new(&[0u8; 4096]), IoSlice::new(&[1u8; 4096])];
            match std::future::poll_fn(|cx| poll_send_vectored(&sender.0, cx, &bufs)).await {
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                Err(err) => {
                    failed = Some(err.kind());
                    break;
                }
            }
        }
        assert!(
            matches!(
                failed,
                Some(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
            ),
            "{failed:?}"
        );
    }
}
