//! An upstream that misbehaves in exact bytes, the way real backends do: answers written
//! byte for byte by the test (stray bytes after a `204`, `HTTP/1.0`, a close right after a
//! complete response without `Connection: close`), and a record of every request it read,
//! including whether its body arrived complete.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A request as the raw backend read it.
#[derive(Debug, Clone)]
pub struct RawSeen {
    /// The connection it came on (0, 1, ... in accept order).
    pub connection: usize,
    /// Its place on that connection (0 for the first request).
    pub nth_on_connection: usize,
    /// The request line, e.g. `GET /x HTTP/1.1`.
    pub request_line: String,
    /// The whole head, as text.
    pub head: String,
    /// The body bytes read.
    pub body: Vec<u8>,
    /// True when the body was complete (per `Content-Length`, or the chunked terminator).
    pub complete: bool,
}

impl RawSeen {
    /// The method.
    pub fn method(&self) -> &str {
        self.request_line.split(' ').next().unwrap_or("")
    }

    /// The request target.
    pub fn target(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or("")
    }
}

/// What to write back: exact bytes, then keep the connection or close it.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// Written as one write.
    pub bytes: Vec<u8>,
    /// Close the connection after writing (no `Connection: close` is implied).
    pub close: bool,
    /// More bytes written after a pause (stray bytes that arrive late).
    pub later: Option<(Duration, Vec<u8>)>,
}

impl RawAnswer {
    /// `bytes`, keeping the connection open.
    pub fn keep(bytes: impl Into<Vec<u8>>) -> Self {
        RawAnswer {
            bytes: bytes.into(),
            close: false,
            later: None,
        }
    }

    /// `bytes`, then close.
    pub fn close(bytes: impl Into<Vec<u8>>) -> Self {
        RawAnswer {
            bytes: bytes.into(),
            close: true,
            later: None,
        }
    }

    /// Writes `bytes` too, `pause` after the answer.
    pub fn then_after(mut self, pause: Duration, bytes: impl Into<Vec<u8>>) -> Self {
        self.later = Some((pause, bytes.into()));
        self
    }
}

/// A running raw backend; stops when dropped.
pub struct RawBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<RawSeen>>>,
    connections: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl RawBackend {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request read so far, in order.
    pub fn seen(&self) -> Vec<RawSeen> {
        self.seen.lock().expect("request log").clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a raw backend. `answer` gets each complete request (and its index among all
/// requests) and returns the bytes to write; a request whose body ends early (the peer
/// closed) is recorded and not answered.
pub async fn spawn_raw<F>(answer: F) -> std::io::Result<RawBackend>
where
    F: Fn(usize, &RawSeen) -> RawAnswer + Send + Sync + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (stop, mut stopped) = oneshot::channel();
    let answer = Arc::new(answer);
    let (log, count) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let connection = count.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve_connection(stream, connection, answer.clone(), log.clone()));
                }
            }
        }
    });
    Ok(RawBackend {
        addr,
        seen,
        connections,
        _stop: stop,
    })
}

async fn serve_connection<F>(
    mut stream: TcpStream,
    connection: usize,
    answer: Arc<F>,
    log: Arc<Mutex<Vec<RawSeen>>>,
) where
    F: Fn(usize, &RawSeen) -> RawAnswer + Send + Sync + 'static,
{
    let mut buf: Vec<u8> = Vec::new();
    for nth_on_connection in 0.. {
        let Some(head_end) = read_until(&mut stream, &mut buf, |b| find(b, b"\r\n\r\n")).await
        else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let lower = head.to_ascii_lowercase();
        let length = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let chunked = lower
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        let (body, complete) = if chunked {
            let end = read_until(&mut stream, &mut buf, |b| {
                if b.starts_with(b"0\r\n\r\n") {
                    Some(0)
                } else {
                    find(b, b"\r\n0\r\n\r\n").map(|i| i + 2)
                }
            })
            .await;
            match end {
                Some(end) => {
                    let body: Vec<u8> = buf.drain(..end + 5).collect();
                    (body, true)
                }
                None => (std::mem::take(&mut buf), false),
            }
        } else if let Some(length) = length {
            let end = read_until(&mut stream, &mut buf, |b| (b.len() >= length).then_some(0)).await;
            match end {
                Some(_) => (buf.drain(..length).collect(), true),
                None => (std::mem::take(&mut buf), false),
            }
        } else {
            (Vec::new(), true)
        };
        let seen = RawSeen {
            connection,
            nth_on_connection,
            request_line: head.lines().next().unwrap_or("").to_string(),
            head,
            body,
            complete,
        };
        let index = {
            let mut log = log.lock().expect("request log");
            log.push(seen.clone());
            log.len() - 1
        };
        if !complete {
            return;
        }
        let reply = answer(index, &seen);
        if stream.write_all(&reply.bytes).await.is_err() {
            return;
        }
        if let Some((pause, bytes)) = &reply.later {
            tokio::time::sleep(*pause).await;
            if stream.write_all(bytes).await.is_err() {
                return;
            }
        }
        if reply.close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads into `buf` until `done` finds a position; `None` when the peer closed or went quiet
/// for 10 s first.
async fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(at) = done(buf) {
            return Some(at);
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}
