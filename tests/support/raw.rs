//! Raw HTTP/1 over TCP, for requests no well-behaved client would send: exact bytes, split
//! into writes with pauses, and an answer read until the server closes or a deadline passes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back.
#[derive(Debug)]
pub struct RawReply {
    /// Everything the server sent.
    pub text: String,
    /// True when the server closed the connection before the deadline.
    pub closed: bool,
    /// How long until the server closed (or the deadline).
    pub elapsed: Duration,
}

impl RawReply {
    /// Status codes of every response in the reply, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.text
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| self.text.get(i + 9..i + 12)?.parse().ok())
            .collect()
    }
}

/// Sends `chunks` one write each (pausing `pause` between them), then reads until the server
/// closes the connection or `wait` has passed since the last write.
pub async fn exchange(
    addr: SocketAddr,
    chunks: &[&[u8]],
    pause: Duration,
    wait: Duration,
) -> RawReply {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    let mut write_failed = false;
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if stream.write_all(chunk).await.is_err() {
            write_failed = true; // the server closed on us: read what it said
            break;
        }
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 16384];
    let deadline = tokio::time::Instant::now() + wait;
    let mut closed = write_failed;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    RawReply {
        text: String::from_utf8_lossy(&received).into_owned(),
        closed,
        elapsed: started.elapsed(),
    }
}

/// Opens a connection and keeps it open without sending anything.
pub async fn idle_connection(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connecting")
}

/// Sends `head`, then one byte of `body` every `interval` (a client trickling its body),
/// stopping as soon as the server answers, closes or `limit` has passed; then reads the
/// answer until the server closes or 3 s pass.
pub async fn trickle(
    addr: SocketAddr,
    head: &[u8],
    body: &[u8],
    interval: Duration,
    limit: Duration,
) -> RawReply {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(head).await.expect("sending the head");
    let mut received = Vec::new();
    let mut buf = [0u8; 16384];
    let mut closed = false;
    for byte in body {
        if started.elapsed() > limit {
            break;
        }
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        match tokio::time::timeout(interval, stream.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                received.extend_from_slice(&buf[..n]);
                break;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !closed {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed = true,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    RawReply {
        text: String::from_utf8_lossy(&received).into_owned(),
        closed,
        elapsed: started.elapsed(),
    }
}
