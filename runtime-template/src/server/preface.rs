//! Which protocol a connection speaks, read from its first bytes within the header timeout,
//! before hyper takes it.
//!
//! hyper's HTTP/1 server times out a head that does not come (`header_read_timeout`), but
//! nothing bounds the wait before that: hyper-util's automatic builder reads a connection's
//! first bytes to tell the HTTP/2 connection preface (RFC 9113 §3.4) from an HTTP/1 request,
//! and the `h2` crate waits for the preface, with no deadline. A client that connects (or
//! completes a TLS handshake offering `h2`) and then sends nothing, or part of the preface,
//! would hold its connection, and one of `limits.max_connections`, for as long as it likes.
//! So the server reads those first bytes itself, within `timeouts.request_header_seconds`
//! (or until the gateway stops), and hands them to hyper with the connection
//! ([`super::h1::Replay`]). On a cleartext listener the lean HTTP/1.1 server has read them
//! first, within its own header timeout; the wait here starts when it hands them over, so a
//! partial h2c preface is held for at most two header timeouts. Once the whole preface has
//! come, the connection is hyper's HTTP/2 server's, with the idle timeout of
//! [`super::drain::Stop::watch`] (hyper's has none).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::drain::Stop;

/// The client connection preface every HTTP/2 connection starts with (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// Anything that is not the HTTP/2 preface (hyper's HTTP/1 server answers it, or refuses
    /// it as HTTP/1 does).
    Http1,
    /// The whole HTTP/2 preface.
    Http2,
}

/// What `read` (a connection's first bytes) says, once it says enough: a byte that differs
/// from the preface, or the whole preface. `None`: a part of the preface, so far.
pub fn classify(read: &[u8]) -> Option<Speaks> {
    if read.iter().zip(PREFACE.iter()).any(|(a, b)| a != b) {
        Some(Speaks::Http1)
    } else if read.len() >= PREFACE.len() {
        Some(Speaks::Http2)
    } else {
        None
    }
}

/// Reads `io` after `read` (bytes already read from it) until the bytes say which protocol
/// the connection speaks ([`classify`]), within `timeout`, and returns them all (to be
/// replayed). At most the preface's 24 bytes are waited for; what a read brings beyond them
/// is kept. `None`: the client closed, failed, or did not say within `timeout`, or the
/// gateway stopped meanwhile (`stop`); the connection is then dropped, as hyper drops one
/// that sends no head in time.
pub async fn read_until_known<I: AsyncRead + Unpin>(
    io: &mut I,
    read: Bytes,
    timeout: Duration,
    stop: &mut Stop,
) -> Option<(Speaks, Bytes)> {
    if let Some(speaks) = classify(&read) {
        return Some((speaks, read));
    }
    let mut buf = BytesMut::with_capacity(read.len().max(4096));
    buf.extend_from_slice(&read);
    let reading = async {
        loop {
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {
                    if let Some(speaks) = classify(&buf) {
                        return Some(speaks);
                    }
                }
            }
        }
    };
    let speaks = tokio::select! {
        biased;
        speaks = tokio::time::timeout(timeout, reading) => speaks.ok().flatten()?,
        () = stop.stopped() => return None,
    };
    Some((speaks, buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn the_first_differing_byte_or_the_whole_preface_decides() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n"), None);
        assert_eq!(classify(PREFACE), Some(Speaks::Http2));
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04"),
            Some(Speaks::Http2)
        );
        assert_eq!(classify(b"G"), Some(Speaks::Http1));
        assert_eq!(classify(b"PO"), Some(Speaks::Http1));
        assert_eq!(classify(b"PRI * HTTP/1.1\r\n"), Some(Speaks::Http1));
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\n"),
            Some(Speaks::Http1)
        );
    }

    #[tokio::test]
    async fn a_preface_in_pieces_is_read_whole_and_a_silent_client_is_let_go() {
        let drain = crate::server::drain::Drain::new();
        let mut stop = drain.watcher();
        let (mut client, mut server) = tokio::io::duplex(64);
        let already = Bytes::from_static(b"PRI * HT");
        let writing = tokio::spawn(async move {
            client.write_all(b"TP/2.0\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            client.write_all(b"\r\nSM\r\n\r\n\x00\x00").await.unwrap();
            client
        });
        let (speaks, read) =
            read_until_known(&mut server, already, Duration::from_secs(5), &mut stop)
                .await
                .expect("the preface");
        assert_eq!(speaks, Speaks::Http2);
        assert_eq!(&read[..], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00");
        let _client = writing.await.unwrap();

        // An HTTP/1 request is told at its first bytes, with no read.
        let (_client, mut server) = tokio::io::duplex(64);
        let head = Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n");
        let (speaks, read) =
            read_until_known(&mut server, head.clone(), Duration::from_secs(5), &mut stop)
                .await
                .expect("a request");
        assert_eq!((speaks, read), (Speaks::Http1, head));

        // Part of the preface, then nothing: let go at the timeout.
        let (_client, mut server) = tokio::io::duplex(64);
        let started = std::time::Instant::now();
        let silent = read_until_known(
            &mut server,
            Bytes::from_static(b"PRI * HTTP/2.0\r\n\r\n"),
            Duration::from_millis(100),
            &mut stop,
        )
        .await;
        assert!(silent.is_none());
        assert!(started.elapsed() >= Duration::from_millis(100));

        // A client that closes first.
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert!(
            read_until_known(&mut server, Bytes::new(), Duration::from_secs(5), &mut stop)
                .await
                .is_none()
        );

        // The gateway stopping while a client has said nothing yet: let go at once.
        let (_client, mut server) = tokio::io::duplex(64);
        let stopping = tokio::spawn(drain.shutdown());
        let started = std::time::Instant::now();
        assert!(read_until_known(
            &mut server,
            Bytes::new(),
            Duration::from_secs(30),
            &mut stop
        )
        .await
        .is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(stop);
        stopping.await.unwrap();
    }
}
