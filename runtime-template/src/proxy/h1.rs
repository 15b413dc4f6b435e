//! A lean HTTP/1.1 client for the proxy's most common exchanges: a request **without a body
//! or with a body of known length** (`Content-Length`, no `Transfer-Encoding`) to a plain
//! `http://` endpoint. Every other exchange (a chunked upload, `https://`) goes through
//! hyper's client as before (`super::pool::Connector`).
//!
//! Why: hyper's HTTP/1 client runs each connection as a task of its own and hands the request,
//! the response head and every body frame between tasks over channels. For a proxied `GET`
//! that costs about a third of the gateway's instructions per request (`scripts/bench
//! --instructions`, docs/benchmarks.md "Issue 16: sixth pass"). Here the exchange runs on the
//! client connection's own task: the head is written with one `write`, the answer is read into
//! the connection's buffer and parsed with `httparse` (the parser hyper uses), and the body is
//! read from the socket as the client's side asks for it. No task, no channel, no timer of its
//! own. A request body is sent while the answer is awaited; an answer that comes before all of
//! it was sent (an early `413`) is read by a task of its own that sends the rest meanwhile, as
//! hyper's connection task would ([`response_body`]).
//!
//! What is read follows RFC 9112 and hyper's client where they leave a choice:
//! - **Head**: at most [`MAX_HEADERS`] fields and the configured number of bytes
//!   (`limits.max_upstream_header_bytes`); interim `1xx` answers other than `101` are skipped
//!   (hyper's client does the same); a `101` is an error, since the proxy never asks for an
//!   upgrade (`Upgrade` is hop-by-hop and removed). A reason phrase other than the status's
//!   canonical one is kept as hyper's [`hyper::ext::ReasonPhrase`], so the client sees it.
//! - **Body length** (RFC 9112 §6.3): none for `HEAD`, `1xx`, `204` and `304`; chunked when
//!   `Transfer-Encoding` ends in `chunked` (then `Content-Length` is removed, and the connection
//!   is not reused: RFC 9112 §6.1 asks to close after such a message); read to the close when
//!   `Transfer-Encoding` ends otherwise, or when neither field is there; else `Content-Length`,
//!   whose values must all agree (else the answer is refused, as hyper does).
//!   `Transfer-Encoding` in an HTTP/1.0 answer is refused (hyper's rule).
//! - **Chunked bodies**: hexadecimal sizes of at most 16 digits, optional whitespace and
//!   extensions (ignored) within [`MAX_CHUNK_LINE`] bytes per size line, CRLF after each
//!   chunk's data; trailer fields (at most [`MAX_TRAILER_BYTES`]) become a trailers frame.
//! - **Fields passed on as received**: when the caller asks for it (the lean server writes the
//!   answer and no step has a response phase) and the answer qualifies (one `Content-Length`,
//!   no hop-by-hop field, no name twice: [`FieldLines::check`]), its fields stay in the head's
//!   bytes and the head's map stays empty ([`super::field_lines`]).
//! - A connection goes back to its pool only when its body ended exactly at the end of what
//!   was read (no stray bytes after the answer) and the answer kept it alive.
//!
//! Everything read is the upstream's and treated as hostile: every slice is bounds-checked,
//! every count is checked for overflow, and every buffer is bounded.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::field_lines::{FieldLines, Span};
use super::field_names::FieldNames;
use super::fields::ProxyFields;
use super::upstream::CheckedTarget;

/// Most header fields in an answer's head (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// Most bytes of one chunk-size line, extensions included.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Most bytes of a chunked body's trailer section.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Most bytes of chunk extensions in one body (hyper's client has the same bound).
pub const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;
/// Bytes the buffer is grown by before a read when it has less room than this.
const READ_ROOM: usize = 8 * 1024;
/// Largest read of a long body at once.
const MAX_READ: usize = 64 * 1024;

/// Why an exchange on a lean connection failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The upstream closed the connection before a complete response head (a kept-alive
    /// connection it had given up on, or a crash): for the proxy, a lost connection (as a
    /// reset, which comes as [`Error::Io`], is: `proxy::connection_lost`).
    #[error("the upstream closed the connection before a complete response head")]
    Closed,
    /// Reading or writing the socket failed.
    #[error("upstream I/O error")]
    Io(#[source] io::Error),
    /// The response head is longer than the limit, or has more than [`MAX_HEADERS`] fields.
    #[error("the upstream's response head is larger than the limit")]
    HeadTooLarge,
    /// The response head is not valid HTTP/1.x.
    #[error("invalid response head: {0}")]
    Head(&'static str),
    /// The body ended (the upstream closed) before its announced length.
    #[error("the upstream closed the connection before the end of the response body")]
    BodyCut,
    /// The chunked framing of the body is invalid.
    #[error("invalid chunked response body: {0}")]
    Chunked(&'static str),
    /// The request body could not be sent: the client's (its limits, a broken stream; the
    /// source says which) or a length that does not match its `Content-Length`.
    #[error("the request body could not be sent")]
    Upload(#[source] super::body::BoxError),
}

/// One upstream HTTP/1.1 connection and what it has read but not yet handed out. Boxed once
/// per connection: a response body that holds it stays small to move.
#[derive(Debug)]
pub struct Connection(Box<Socket>);

struct Socket {
    io: TcpStream,
    buf: BytesMut,
    /// Room for the places of a head's fields, reused.
    spans: Vec<Span>,
    /// The field names of the connection's answers so far.
    names: FieldNames,
    /// Room for a request head as written ([`encode_head`]), reused.
    out: Vec<u8>,
}

impl std::fmt::Debug for Socket {
    // Lengths only: the buffers hold the upstream's and the client's bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("io", &self.io)
            .field("unread", &self.buf.len())
            .finish()
    }
}

/// A request body on its way upstream on a lean connection: exactly the announced length.
pub struct Upload {
    body: super::body::ReclaimableBody,
    /// Taken from the body, not yet written.
    pending: Bytes,
    /// Bytes the announced length still expects from the body: 0 once all were taken (the
    /// body is then complete, as hyper's client decides; the client's side may tell its end
    /// only later).
    left: u64,
    /// The body's error met by [`Upload::take_ready`], told by the next [`Upload::poll_send`].
    failed: Option<Error>,
}

impl std::fmt::Debug for Upload {
    // Lengths only: `pending` is the client's body.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("pending", &self.pending.len())
            .field("left", &self.left)
            .finish()
    }
}

impl Upload {
    /// `body`, announced as `length` bytes (its `Content-Length`).
    pub fn new(body: super::body::ReclaimableBody, length: u64) -> Self {
        Upload {
            body,
            pending: Bytes::new(),
            left: length,
            failed: None,
        }
    }

    /// Takes what the body has at once into `pending` (nothing when the body is waiting);
    /// an error is kept for [`Upload::poll_send`] to tell.
    fn take_ready(&mut self, cx: &mut Context<'_>) {
        if self.pending.is_empty() && self.left > 0 && self.failed.is_none() {
            if let Poll::Ready(Err(err)) = self.poll_take(cx) {
                self.failed = Some(err);
            }
        }
    }

    /// Takes the body's next frame into `pending` (a data frame; others are skipped).
    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let length = data.len() as u64;
                    if length > self.left {
                        return Poll::Ready(Err(Error::Upload(
                            "the request body is longer than its Content-Length".into(),
                        )));
                    }
                    self.left -= length;
                    self.pending = data;
                }
                Poll::Ready(Ok(()))
            }
            Some(Err(err)) => Poll::Ready(Err(Error::Upload(err))),
            None => Poll::Ready(Err(Error::Upload(
                "the request body is shorter than its Content-Length".into(),
            ))),
        }
    }

    /// Sends what the body has, as far as `io` takes it: `Ready(Ok)` once all of it is
    /// sent. A client's body error (its limits, a broken stream) is [`Error::Upload`]; a
    /// socket error [`Error::Io`].
    fn poll_send(&mut self, io: &mut TcpStream, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        use bytes::Buf as _;
        use tokio::io::AsyncWrite as _;
        loop {
            if !self.pending.is_empty() {
                let written =
                    ready!(Pin::new(&mut *io).poll_write(cx, &self.pending)).map_err(Error::Io)?;
                if written == 0 {
                    return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
                }
                self.pending.advance(written.min(self.pending.len()));
                continue;
            }
            if self.left == 0 {
                return Poll::Ready(Ok(()));
            }
            if let Some(err) = self.failed.take() {
                return Poll::Ready(Err(err));
            }
            ready!(self.poll_take(cx))?;
        }
    }
}

/// How the body of an answer ends.
#[derive(Debug)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`: the bytes still to come.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(Chunked),
    /// Everything until the upstream closes the connection.
    Close,
}

/// A chunked body's decoding: where it stands, and what its limits have counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunked {
    state: Chunk,
    /// Bytes of chunk extensions so far, all chunks together (at most
    /// [`MAX_CHUNK_EXTENSIONS`], hyper's bound; 32 bits, as the decoder's state is part of
    /// every response's size: `proxy::body`'s size test).
    extensions: u32,
    /// Bytes of the trailer section already scanned for its end (each byte is looked at
    /// once, however slowly the section arrives).
    scanned: u32,
}

impl Chunked {
    fn new() -> Self {
        Chunked {
            state: Chunk::Size,
            extensions: 0,
            scanned: 0,
        }
    }
}

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data: the bytes still to come.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: the trailer section.
    Trailers,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    /// The status (never `1xx`).
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields, in the order received.
    pub headers: HeaderMap,
    /// The reason phrase, when it is not the status's canonical one.
    pub reason: Option<hyper::ext::ReasonPhrase>,
    /// Whether the connection can carry another exchange after this answer's body, as far as
    /// the framing goes (`Connection` is the caller's).
    pub framing_reusable: bool,
    /// A `Connection` field is among `headers`.
    has_connection: bool,
    framing: Framing,
    /// The fields as received, when they were kept so ([`FieldLines`]; `headers` is then
    /// empty). Taken by the body ([`ResponseBody::fields_as_received`]).
    pub as_received: Option<FieldLines>,
}

impl Head {
    /// False when the upstream said it closes the connection after this answer
    /// ([`super::pool::keeps_alive`]); the fields are looked at only when a `Connection` field
    /// came (without one, the version's default). For the head as read: whether a
    /// `Connection` field came was noted then, so a field added to `headers` since is not seen.
    pub fn keeps_alive(&self) -> bool {
        if self.has_connection {
            super::pool::keeps_alive(self.version, &self.headers)
        } else {
            self.version != Version::HTTP_10
        }
    }
}

impl Connection {
    /// A connection over `io` (connected, `TCP_NODELAY` set by the connector).
    pub fn new(io: TcpStream) -> Self {
        Connection(Box::new(Socket {
            io,
            buf: BytesMut::new(),
            spans: Vec::new(),
            names: FieldNames::default(),
            out: Vec::new(),
        }))
    }

    /// True when an idle connection can carry a request: nothing was left unread and no byte
    /// or close has arrived since. A non-blocking read of one byte: with tokio's readiness of
    /// the socket clear (the last read came back short), it answers "would block" without a
    /// system call; else one `recv` tells. A byte (stray bytes after the last answer) or the
    /// close means the connection is not used; the byte read is dropped with it. (Not
    /// `poll_read_ready`: under tokio's cooperative budget it answers `Pending` whatever the
    /// socket's state.)
    pub fn is_idle_and_open(&self) -> bool {
        if !self.0.buf.is_empty() {
            return false;
        }
        matches!(self.0.io.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The socket, for hyper's client to take over (an idle connection: nothing is left
    /// unread, see [`Connection::is_idle_and_open`]).
    pub fn into_io(self) -> TcpStream {
        self.0.io
    }

    /// Writes a request head (see [`encode_head`]); its body, if any, goes as the [`Upload`]
    /// `upload`. What the body has at once (a body read with its head) is written with the
    /// head in one vectored write, as hyper's client queues a head and its body; the rest is
    /// sent by [`Connection::read_head`] (and, after an early answer, by the answer's
    /// [`ResponseBody`]). The body is taken from its slot here, before the head is written:
    /// as with hyper's client, a request whose connection fails from then on is not resent
    /// (see `ClientBody::Received`).
    pub async fn send(
        &mut self,
        method: &Method,
        target: &CheckedTarget<'_>,
        headers: &HeaderMap,
        fields: &ProxyFields<'_>,
        length: Option<u64>,
        upload: Option<&mut Upload>,
    ) -> Result<(), Error> {
        use bytes::Buf as _;
        use tokio::io::AsyncWrite as _;
        let socket = &mut *self.0;
        encode_head(&mut socket.out, method, target, headers, fields, length);
        let Some(upload) = upload else {
            return socket.io.write_all(&socket.out).await.map_err(Error::Io);
        };
        let mut written = 0;
        let mut primed = false;
        std::future::poll_fn(|cx| {
            if !primed {
                upload.take_ready(cx);
                primed = true;
            }
            loop {
                let head = socket.out.get(written..).unwrap_or_default();
                if head.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let pieces = [io::IoSlice::new(head), io::IoSlice::new(&upload.pending)];
                let n = ready!(Pin::new(&mut socket.io).poll_write_vectored(cx, &pieces))
                    .map_err(Error::Io)?;
                if n == 0 {
                    return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
                }
                let of_head = n.min(head.len());
                written += of_head;
                upload
                    .pending
                    .advance((n - of_head).min(upload.pending.len()));
            }
        })
        .await
    }

    /// Reads the answer's head to a request of `method`: at most `limit` bytes (interim
    /// answers skipped). Its body is then read through [`ResponseBody`]. The answer's fields
    /// go into `recycle`'s map, emptied (the request's, whose room fits a head's fields), only
    /// once the head is complete: `recycle` is left as it was when this fails before.
    ///
    /// With an `upload` (the request's body), the body is sent meanwhile, as far as the
    /// socket takes it: an answer may come before the upload ends (an early `413`), and the
    /// rest of the upload is then sent by the answer's [`ResponseBody`]. `upload` is `None`
    /// once all of it is sent. When sending fails on the socket (the upstream stopped
    /// reading), an answer already on its way is still read; `broken` says so.
    pub async fn read_head(
        &mut self,
        method: &Method,
        limit: usize,
        recycle: &mut HeaderMap,
        as_received: bool,
        upload: &mut Option<Box<Upload>>,
        broken: &mut Option<io::Error>,
    ) -> Result<Head, Error> {
        // Bytes already parsed as a partial head: parsed again only when more arrive (the
        // upload's wake-ups bring none).
        let mut parsed = 0;
        let mut first = true;
        std::future::poll_fn(|cx| {
            // The answer first: one already here wins over a failing upload (as hyper's
            // client reads before it writes).
            let read = loop {
                let socket = &mut *self.0;
                if socket.buf.len() > parsed {
                    // Not while the upload goes on: its answer's body is relayed by a task of
                    // its own, and its fields go into the map.
                    if let Some(head) = parse_head(
                        &mut socket.buf,
                        &mut socket.spans,
                        &mut socket.names,
                        method,
                        limit,
                        recycle,
                        as_received && upload.is_none(),
                    )? {
                        return Poll::Ready(Ok(head));
                    }
                    parsed = socket.buf.len();
                }
                if socket.buf.len() >= limit {
                    return Poll::Ready(Err(Error::HeadTooLarge));
                }
                // The first look, just after the request was sent, asks for readiness only:
                // the answer is rarely there yet, and a read attempt's preparations (the
                // buffer's room, the read's wrappers) cost about 100 instructions more.
                if std::mem::take(&mut first)
                    && socket.buf.is_empty()
                    && socket.io.poll_read_ready(cx).is_pending()
                {
                    break Poll::Pending;
                }
                match self.poll_fill(cx, READ_ROOM) {
                    Poll::Ready(Ok(0)) => break Poll::Ready(()),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(Error::Io(err))),
                    Poll::Pending => break Poll::Pending,
                }
            };
            if read.is_ready() {
                // The upstream closed. hyper counts a head cut off part-way as an incomplete
                // message too; when the upload broke first, that is the error to tell.
                return Poll::Ready(Err(match broken.take() {
                    Some(err) => Error::Io(err),
                    None => Error::Closed,
                }));
            }
            if let Some(sending) = upload.as_mut() {
                match sending.poll_send(&mut self.0.io, cx) {
                    Poll::Ready(Ok(())) => *upload = None,
                    Poll::Ready(Err(Error::Io(err))) => {
                        // The upstream stopped reading: its answer may still come.
                        *upload = None;
                        *broken = Some(err);
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Reads what the socket has into the buffer, growing it first so that it has room for
    /// at least `want` bytes (at most [`MAX_READ`]). `Ok(0)`: the upstream closed.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let socket = &mut *self.0;
        let want = want.clamp(1, MAX_READ);
        if socket.buf.capacity() - socket.buf.len() < want.min(READ_ROOM) {
            // One byte more than wanted: the last read of a body comes back short, which
            // clears tokio's readiness of the socket (see `is_idle_and_open`).
            socket.buf.reserve(want.max(READ_ROOM) + 1);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut socket.io), cx, &mut socket.buf)
    }

    /// What was read and not yet handed out.
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.0.buf
    }
}

/// Writes a request head into `dst` (emptied first): the request line in origin form (RFC
/// 9112 §3.2.1), every field of `headers` in their order, names as `http` spells them (lower
/// case, as hyper writes them), with `Host` and the proxy's own fields as `fields` says (see
/// [`ProxyFields::write_fields`]), then `Content-Length: length` when given (a body of known
/// length whose head has none, as hyper's client adds it). The target was checked before a
/// connection was taken ([`super::upstream::Target::checked`]): writing it cannot fail.
pub fn encode_head(
    dst: &mut Vec<u8>,
    method: &Method,
    target: &CheckedTarget<'_>,
    headers: &HeaderMap,
    fields: &ProxyFields<'_>,
    length: Option<u64>,
) {
    dst.clear();
    dst.extend_from_slice(method.as_str().as_bytes());
    dst.push(b' ');
    target.write(dst);
    dst.extend_from_slice(b" HTTP/1.1\r\n");
    fields.write_fields(dst, headers);
    if let Some(length) = length {
        // Into `dst` directly (writing to a vector cannot fail).
        let _ = std::io::Write::write_fmt(dst, format_args!("content-length: {length}\r\n"));
    }
    dst.extend_from_slice(b"\r\n");
}

/// Parses one response head from the front of `buf` and takes it out; interim answers are
/// taken out and skipped. `None`: more bytes are needed. The fields go into `recycle`'s map
/// (emptied first; its room is reused), `spans` is room for their places, `names` holds the
/// names the connection's earlier heads carried. With `as_received`, fields that can be
/// passed on unchanged stay in the head's bytes instead ([`FieldLines`]).
fn parse_head(
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    names: &mut FieldNames,
    method: &Method,
    limit: usize,
    recycle: &mut HeaderMap,
    as_received: bool,
) -> Result<Option<Head>, Error> {
    let parser = httparse::ParserConfig::default();
    loop {
        // Not initialised: httparse writes the fields it finds (as hyper's client uses it).
        let mut fields =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match parser.parse_response_with_uninit_headers(&mut response, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
            Err(_) => return Err(Error::Head("not an HTTP/1.x response head")),
        };
        if len > limit {
            return Err(Error::HeadTooLarge);
        }
        let code = response.code.ok_or(Error::Head("no status"))?;
        let status = StatusCode::from_u16(code).map_err(|_| Error::Head("invalid status"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Head(
                "101 Switching Protocols without an upgrade asked for",
            ));
        }
        if status.is_informational() {
            // 100 Continue, 102, 103 ...: skipped, as hyper's client does.
            let _ = buf.split_to(len);
            if buf.is_empty() {
                return Ok(None);
            }
            continue;
        }
        let version = match response.version {
            Some(1) => Version::HTTP_11,
            _ => Version::HTTP_10,
        };
        let reason = response
            .reason
            .filter(|reason| Some(*reason) != status.canonical_reason())
            .and_then(|reason| {
                hyper::ext::ReasonPhrase::try_from(Bytes::copy_from_slice(reason.as_bytes())).ok()
            });
        // The fields' places in the head's bytes, which become one shared `Bytes` that every
        // value points into (no copy per value).
        let base = buf.as_ptr() as usize;
        spans.clear();
        spans.extend(response.headers.iter().map(|field| {
            // Offsets into `buf`, which the fields borrow; checked again when used.
            let name_at = (field.name.as_ptr() as usize).wrapping_sub(base);
            let value_at = (field.value.as_ptr() as usize).wrapping_sub(base);
            (
                name_at,
                name_at.saturating_add(field.name.len()),
                value_at,
                value_at.saturating_add(field.value.len()),
            )
        }));
        // An answer without a body by definition keeps the map's framing rules.
        let kept = (as_received
            && *method != Method::HEAD
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED)
            .then(|| {
                buf.get(..len)
                    .and_then(|head| FieldLines::check(head, spans))
            })
            .flatten();
        let raw = buf.split_to(len).freeze();
        let mut headers = std::mem::take(recycle);
        headers.clear();
        if let Some(checked) = kept {
            return Ok(Some(Head {
                status,
                version,
                headers,
                reason,
                framing_reusable: true,
                has_connection: false,
                framing: Framing::Length(checked.length),
                as_received: Some(FieldLines::new(raw, checked)),
            }));
        }
        headers.reserve(spans.len());
        // What the framing and the connection's reuse read, noted as the fields go in (a
        // lookup in the map costs a hash and a probe).
        let mut framing_fields = FramingFields::default();
        for (i, &(name_start, name_end, value_start, value_end)) in spans.iter().enumerate() {
            let name = raw
                .get(name_start..name_end)
                .and_then(|name| names.name(i, name))
                .ok_or(Error::Head("invalid header name"))?;
            if value_start > value_end || value_end > raw.len() {
                return Err(Error::Head("invalid header value"));
            }
            let value = HeaderValue::from_maybe_shared(raw.slice(value_start..value_end))
                .map_err(|_| Error::Head("invalid header value"))?;
            framing_fields.note(&name, &value);
            headers.append(name, value);
        }
        let (framing, framing_reusable) =
            framing(method, status, version, &mut headers, &framing_fields)?;
        return Ok(Some(Head {
            status,
            version,
            headers,
            reason,
            framing_reusable,
            has_connection: framing_fields.connection,
            framing,
            as_received: None,
        }));
    }
}

/// The body's framing of an answer (RFC 9112 §6.3) and whether the connection can be reused
/// after it as far as the framing goes.
fn framing(
    method: &Method,
    status: StatusCode,
    version: Version,
    headers: &mut HeaderMap,
    fields: &FramingFields,
) -> Result<(Framing, bool), Error> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Empty, true));
    }
    if fields.transfer_encoding {
        if version == Version::HTTP_10 {
            return Err(Error::Head("Transfer-Encoding in an HTTP/1.0 response"));
        }
        // Transfer-Encoding wins over a Content-Length, which must not travel on (RFC 9112
        // §6.3), and the connection is closed after such a message (§6.1).
        let both = headers.remove(header::CONTENT_LENGTH).is_some();
        if !ends_in_chunked(headers) {
            return Ok((Framing::Close, false));
        }
        return Ok((Framing::Chunked(Chunked::new()), !both));
    }
    match fields.content_length {
        Ok(Some(length)) => Ok((Framing::Length(length), true)),
        Ok(None) => Ok((Framing::Close, false)),
        Err(()) => Err(Error::Head("invalid Content-Length")),
    }
}

/// What a response head's fields say of its framing and its connection, noted field by
/// field as the head is read.
#[derive(Debug)]
struct FramingFields {
    /// A `Transfer-Encoding` field is there.
    transfer_encoding: bool,
    /// The `Content-Length` of the fields so far, as [`content_length`] reads it.
    content_length: Result<Option<u64>, ()>,
    /// A `Connection` field is there.
    connection: bool,
}

impl Default for FramingFields {
    fn default() -> Self {
        FramingFields {
            transfer_encoding: false,
            content_length: Ok(None),
            connection: false,
        }
    }
}

impl FramingFields {
    /// Notes the field `name: value`.
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) {
        if *name == header::CONTENT_LENGTH {
            if let Ok(length) = &mut self.content_length {
                if add_length(length, value).is_err() {
                    self.content_length = Err(());
                }
            }
        } else if *name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
        } else if *name == header::CONNECTION {
            self.connection = true;
        }
    }
}

/// True when the last transfer coding named is `chunked`.
fn ends_in_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|value| value.as_bytes().rsplit(|b| *b == b',').next())
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// A `Content-Length` value: a decimal number of digits only, no sign, no spaces (hyper's
/// rule); `None` when it is not one or does not fit in 64 bits.
pub(crate) fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |length, &b| {
        b.is_ascii_digit()
            .then(|| length.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// The `Content-Length` of `headers`: `None` when there is none, an error when a value is not
/// a decimal number or two values differ (lists and repeated fields alike).
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        add_length(&mut length, value)?;
    }
    Ok(length)
}

/// Reads one `Content-Length` field's `value` (a list of lengths) into `length`, the length
/// of the fields before it: an error when an item is not a decimal number or differs.
fn add_length(length: &mut Option<u64>, value: &HeaderValue) -> Result<(), ()> {
    for item in value.as_bytes().split(|b| *b == b',') {
        let parsed = digits(item.trim_ascii()).ok_or(())?;
        match *length {
            Some(known) if known != parsed => return Err(()),
            _ => *length = Some(parsed),
        }
    }
    Ok(())
}

/// The body of an answer read on a lean connection: read from the socket as it is asked for,
/// the connection given back (`release`) when it ends cleanly, dropped (closed) otherwise.
#[derive(Debug)]
pub struct ResponseBody {
    connection: Option<Connection>,
    framing: Framing,
    release: Option<super::pool::LeanLease>,
    /// The rest of the request's body, when the answer came before all of it was sent
    /// (boxed: a response body stays small to move).
    upload: Option<Box<Upload>>,
    /// The answer's fields, when they were kept as received (the head's map is then empty).
    as_received: Option<FieldLines>,
}

/// The body of the answer `head`, read from `connection`: read on the task that polls it
/// ([`ResponseBody`]), or, for an early answer (`upload` still has some of the request's body
/// to send), by a task of its own that sends the rest meanwhile ([`ResponseBody::relay`]),
/// its frames handed over through a small channel. At its end the connection goes back to its
/// pool through `release` when one is given.
pub fn response_body(
    connection: Connection,
    head: &mut Head,
    release: Option<super::pool::LeanLease>,
    upload: Option<Box<Upload>>,
) -> super::pool::UpstreamBody {
    if upload.is_some() {
        // The relayed body carries no fields: they go into the map (`read_head` keeps none
        // while an upload goes on).
        if let Some(fields) = head.as_received.take() {
            fields.append_to(&mut head.headers);
        }
    }
    let Some(upload) = upload else {
        return super::pool::UpstreamBody::Lean {
            body: ResponseBody::new(connection, head, release, None),
        };
    };
    let body = ResponseBody::new(connection, head, release, Some(upload));
    let hint = body.size_hint();
    let (frames, relayed) = tokio::sync::mpsc::channel(4);
    tokio::spawn(body.relay(frames));
    super::pool::UpstreamBody::Relayed {
        frames: relayed,
        hint,
    }
}

impl ResponseBody {
    /// The body of `head`, read from `connection`; at its end the connection goes back to its
    /// pool through `release` when one is given (`None`: it is closed).
    /// `upload` is the rest of the request's body still to send, sent as the answer's body is
    /// read (and after it, by a task of its own, when the answer ends first).
    pub fn new(
        connection: Connection,
        head: &mut Head,
        release: Option<super::pool::LeanLease>,
        upload: Option<Box<Upload>>,
    ) -> Self {
        let framing = std::mem::replace(&mut head.framing, Framing::Empty);
        let mut body = ResponseBody {
            connection: Some(connection),
            framing,
            release,
            upload,
            as_received: head.as_received.take(),
        };
        if matches!(body.framing, Framing::Empty | Framing::Length(0)) {
            body.finish();
        }
        body
    }

    /// The answer's header fields, when they were kept as received ([`FieldLines`]): the
    /// head's map has none of them.
    pub fn fields_as_received(&self) -> Option<&FieldLines> {
        self.as_received.as_ref()
    }

    /// The body ended cleanly: the connection goes back when nothing stray follows it (once
    /// the rest of the request's body is sent, by a task of its own).
    fn finish(&mut self) {
        let connection = self.connection.take();
        let release = self.release.take();
        self.framing = Framing::Empty;
        let Some(mut connection) = connection else {
            return;
        };
        match self.upload.take() {
            None => {
                if let Some(release) = release {
                    if connection.0.buf.is_empty() {
                        release.release(connection);
                    }
                }
            }
            Some(mut upload) => {
                // The answer ended before the upload (an early answer): the upstream may still
                // read the rest, as hyper's client lets it; then the connection may serve again.
                tokio::spawn(async move {
                    let sent =
                        std::future::poll_fn(|cx| upload.poll_send(&mut connection.0.io, cx)).await;
                    match (sent, release) {
                        (Ok(()), Some(release)) if connection.0.buf.is_empty() => {
                            release.release(connection)
                        }
                        (Err(err), _) => {
                            tracing::debug!("upload after an early answer stopped: {err}")
                        }
                        _ => {}
                    }
                });
            }
        }
    }

    /// Sends more of the request's body, if some is left. The upstream no longer reading
    /// ends the upload (the connection is then not reused) and the answer is read on; the
    /// client's body failing is returned: the answer then fails too, and its connection is
    /// closed, as hyper's client does (the upstream must not wait for the rest).
    fn send_more(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        let (Some(connection), Some(upload)) = (self.connection.as_mut(), self.upload.as_mut())
        else {
            return None;
        };
        match upload.poll_send(&mut connection.0.io, cx) {
            Poll::Ready(Ok(())) => self.upload = None,
            Poll::Ready(Err(Error::Io(err))) => {
                tracing::debug!("upload after an early answer stopped: {err}");
                self.upload = None;
                self.release = None;
            }
            Poll::Ready(Err(err)) => return Some(err),
            Poll::Pending => {}
        }
        None
    }

    /// Runs an early answer's exchange on a task of its own, as hyper's client connection
    /// task does: the rest of the upload goes on whether or not the client reads the answer
    /// (a client that sends all of its body before it reads would otherwise wait forever),
    /// and the answer's frames go to `frames` as the client takes them. A closed `frames`
    /// (the client gone) ends it, and the connection with it.
    async fn relay(mut self, frames: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Error>>) {
        loop {
            // Room for the next frame, the upload going on meanwhile (a finished upload's
            // branch is disabled, and the wait is for room alone).
            let room = tokio::select! {
                room = frames.reserve() => match room {
                    Ok(room) => room,
                    Err(_) => return,
                },
                Some(err) = std::future::poll_fn(|cx| match self.send_more(cx) {
                    Some(err) => Poll::Ready(Some(err)),
                    None if self.upload.is_none() => Poll::Ready(None),
                    None => Poll::Pending,
                }), if self.upload.is_some() => {
                    if let (Ok(room), Poll::Ready(Some(Err(err)))) =
                        (frames.reserve().await, self.fail(err))
                    {
                        room.send(Err(err));
                    }
                    return;
                }
            };
            match std::future::poll_fn(|cx| Pin::new(&mut self).poll_frame(cx)).await {
                Some(frame) => {
                    let failed = frame.is_err();
                    room.send(frame);
                    if failed {
                        return;
                    }
                }
                None => return,
            }
        }
    }

    /// The body failed: the connection is closed.
    fn fail(&mut self, err: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.connection = None;
        self.release = None;
        self.upload = None;
        self.framing = Framing::Empty;
        Poll::Ready(Some(Err(err)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.upload.is_some() {
            if let Some(err) = this.send_more(cx) {
                return this.fail(err);
            }
        }
        loop {
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.framing {
                Framing::Empty => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Framing::Length(remaining) => {
                    if connection.buf().is_empty() {
                        let want = usize::try_from(*remaining).unwrap_or(MAX_READ);
                        match ready!(connection.poll_fill(cx, want)) {
                            Ok(0) => return this.fail(Error::BodyCut),
                            Ok(_) => continue,
                            Err(err) => return this.fail(Error::Io(err)),
                        }
                    }
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(connection.buf().len());
                    *remaining -= take as u64;
                    let data = connection.buf().split_to(take).freeze();
                    if *remaining == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Close => {
                    if connection.buf().is_empty() {
                        match ready!(connection.poll_fill(cx, MAX_READ)) {
                            Ok(0) => {
                                // The end; the connection is closed, never reused.
                                this.connection = None;
                                this.release = None;
                                this.upload = None;
                                this.framing = Framing::Empty;
                                return Poll::Ready(None);
                            }
                            Ok(_) => {}
                            Err(err) => return this.fail(Error::Io(err)),
                        }
                    }
                    let data = connection.buf().split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(chunk) => match decode_chunk(connection.buf(), chunk) {
                    Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Decoded::Trailers(trailers)) => {
                        this.finish();
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Ok(Decoded::End) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::Again) => continue,
                    Ok(Decoded::NeedMore) => {
                        let want = match chunk.state {
                            Chunk::Data(remaining) => {
                                usize::try_from(remaining).unwrap_or(MAX_READ)
                            }
                            _ => READ_ROOM,
                        };
                        match ready!(connection.poll_fill(cx, want)) {
                            Ok(0) => return this.fail(Error::BodyCut),
                            Ok(_) => continue,
                            Err(err) => return this.fail(Error::Io(err)),
                        }
                    }
                    Err(err) => return this.fail(err),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.connection.is_none() || matches!(self.framing, Framing::Empty | Framing::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            _ if self.connection.is_none() => SizeHint::with_exact(0),
            Framing::Empty => SizeHint::with_exact(0),
            Framing::Length(remaining) => SizeHint::with_exact(remaining),
            _ => SizeHint::default(),
        }
    }
}

/// One step of a chunked body's decoding.
#[derive(Debug)]
enum Decoded {
    /// Data of a chunk.
    Data(Bytes),
    /// The trailer fields after the last chunk: the end of the body.
    Trailers(HeaderMap),
    /// The last chunk without trailers: the end of the body.
    End,
    /// The state moved on; decode again.
    Again,
    /// More bytes must be read first.
    NeedMore,
}

/// Decodes what `buf` holds of a chunked body from state `chunk`, taking the bytes it uses.
fn decode_chunk(buf: &mut BytesMut, chunk: &mut Chunked) -> Result<Decoded, Error> {
    match chunk.state {
        Chunk::Size => {
            let Some(line_end) = memchr::memchr(b'\n', buf) else {
                if buf.len() > MAX_CHUNK_LINE {
                    return Err(Error::Chunked("chunk-size line too long"));
                }
                return Ok(Decoded::NeedMore);
            };
            if line_end >= MAX_CHUNK_LINE {
                return Err(Error::Chunked("chunk-size line too long"));
            }
            let (size, extensions) = chunk_size(buf.get(..line_end).unwrap_or_default())?;
            chunk.extensions = chunk
                .extensions
                .saturating_add(u32::try_from(extensions).unwrap_or(u32::MAX));
            if chunk.extensions as usize > MAX_CHUNK_EXTENSIONS {
                return Err(Error::Chunked("chunk extensions too long"));
            }
            let _ = buf.split_to(line_end + 1);
            chunk.state = if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            };
            Ok(Decoded::Again)
        }
        Chunk::Data(remaining) => {
            if buf.is_empty() {
                return Ok(Decoded::NeedMore);
            }
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let left = remaining - take as u64;
            chunk.state = if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            };
            Ok(Decoded::Data(buf.split_to(take).freeze()))
        }
        Chunk::DataEnd => match buf.get(..2) {
            None if buf.first().is_none_or(|b| *b == b'\r') => Ok(Decoded::NeedMore),
            Some(b"\r\n") => {
                let _ = buf.split_to(2);
                chunk.state = Chunk::Size;
                Ok(Decoded::Again)
            }
            _ => Err(Error::Chunked("no CRLF after chunk data")),
        },
        Chunk::Trailers => {
            match buf.get(..2) {
                None if buf.first().is_none_or(|b| *b == b'\r') => return Ok(Decoded::NeedMore),
                Some(b"\r\n") => {
                    let _ = buf.split_to(2);
                    return Ok(Decoded::End);
                }
                _ => {}
            }
            let scanned = chunk.scanned as usize;
            let from = scanned.saturating_sub(3);
            let end = buf
                .get(from..)
                .and_then(|tail| memchr::memmem::find(tail, b"\r\n\r\n"))
                .map(|at| from + at + 4);
            // Only CRLF line ends (as hyper's decoder): a bare LF among the section's new
            // bytes fails (bytes after the section are not the body's).
            let section_end = end.unwrap_or(buf.len());
            let bare_lf = buf.first() == Some(&b'\n')
                || buf
                    .get(scanned.saturating_sub(1)..section_end)
                    .unwrap_or_default()
                    .windows(2)
                    .any(|pair| matches!(pair, [before, b'\n'] if *before != b'\r'));
            if bare_lf {
                return Err(Error::Chunked("a trailer line ends without CR"));
            }
            let Some(end) = end else {
                if buf.len() > MAX_TRAILER_BYTES {
                    return Err(Error::Chunked("trailer section too large"));
                }
                // At most `MAX_TRAILER_BYTES`, checked above.
                chunk.scanned = u32::try_from(buf.len()).unwrap_or(u32::MAX);
                return Ok(Decoded::NeedMore);
            };
            if end > MAX_TRAILER_BYTES {
                return Err(Error::Chunked("trailer section too large"));
            }
            let section = buf.split_to(end);
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::parse_headers(&section, &mut fields) {
                Ok(httparse::Status::Complete((_, parsed))) => {
                    let mut trailers = HeaderMap::with_capacity(parsed.len());
                    for field in parsed.iter() {
                        let name = HeaderName::from_bytes(field.name.as_bytes())
                            .map_err(|_| Error::Chunked("invalid trailer field name"))?;
                        let value = HeaderValue::from_bytes(field.value)
                            .map_err(|_| Error::Chunked("invalid trailer field value"))?;
                        trailers.append(name, value);
                    }
                    Ok(Decoded::Trailers(trailers))
                }
                Err(httparse::Error::TooManyHeaders) => {
                    Err(Error::Chunked("trailer section too large"))
                }
                Ok(httparse::Status::Partial) | Err(_) => {
                    Err(Error::Chunked("invalid trailer section"))
                }
            }
        }
    }
}

/// The size of a chunk-size line (without its LF): hexadecimal digits, then optional
/// spaces or tabs and extensions, then CR; and the bytes after the digits (extensions).
fn chunk_size(line: &[u8]) -> Result<(u64, usize), Error> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or(Error::Chunked("chunk-size line without CRLF"))?;
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 {
        return Err(Error::Chunked("chunk size is not hexadecimal"));
    }
    if digits > 16 {
        return Err(Error::Chunked("chunk size too large"));
    }
    let (hex, rest) = line.split_at(digits);
    let size = hex.iter().try_fold(0u64, |n, d| {
        let digit = char::from(*d).to_digit(16)?;
        n.checked_mul(16)?.checked_add(u64::from(digit))
    });
    let size = size.ok_or(Error::Chunked("chunk size too large"))?;
    let blank = rest
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(rest.len());
    let rest = rest.get(blank..).unwrap_or_default();
    if !(rest.is_empty() || rest.first() == Some(&b';')) {
        return Err(Error::Chunked("invalid characters after the chunk size"));
    }
    if rest.iter().any(|b| *b == b'\r' || *b == b'\n' || *b == 0) {
        return Err(Error::Chunked("invalid chunk extension"));
    }
    Ok((size, line.len() - digits))
}

/// Parses the answer head at the front of `bytes` (to a request of `method`, 64 KiB head
/// limit) as the lean client does, its fields kept as received when `as_received` and they
/// can be ([`FieldLines`]): for the fuzz target and tests. `None`: the head is incomplete.
pub fn head_from_bytes(
    bytes: &[u8],
    method: &Method,
    as_received: bool,
) -> Result<Option<Head>, Error> {
    parse_head(
        &mut BytesMut::from(bytes),
        &mut Vec::new(),
        &mut FieldNames::default(),
        method,
        64 * 1024,
        &mut HeaderMap::new(),
        as_received,
    )
}

/// What [`read_from_bytes`] read: the head, the body's bytes and its trailers.
pub type ReadAnswer = (Head, Vec<u8>, Option<HeaderMap>);

/// Reads a whole answer to a request of `method` from `bytes`, fed `piece` bytes at a time as
/// a socket would deliver them (at least 1), with the parser and decoder the connection uses
/// and a 64 KiB head limit: for the fuzz target (`fuzz/fuzz_targets/upstream_response.rs`)
/// and tests. The end of `bytes` is the upstream's close.
pub fn read_from_bytes(bytes: &[u8], method: &Method, piece: usize) -> Result<ReadAnswer, Error> {
    const LIMIT: usize = 64 * 1024;
    let mut input = Feed {
        bytes,
        fed: 0,
        piece: piece.max(1),
    };
    let mut buf = BytesMut::new();
    let mut spans = Vec::new();
    let mut recycle = HeaderMap::new();
    let mut head = loop {
        if let Some(head) = parse_head(
            &mut buf,
            &mut spans,
            &mut FieldNames::default(),
            method,
            LIMIT,
            &mut recycle,
            false,
        )? {
            break head;
        }
        if buf.len() >= LIMIT {
            return Err(Error::HeadTooLarge);
        }
        if !input.more(&mut buf) {
            return Err(Error::Closed);
        }
    };
    let mut body = Vec::new();
    match std::mem::replace(&mut head.framing, Framing::Empty) {
        Framing::Empty => {}
        Framing::Length(length) => {
            while (body.len() as u64) < length {
                if buf.is_empty() && !input.more(&mut buf) {
                    return Err(Error::BodyCut);
                }
                let left = usize::try_from(length - body.len() as u64).unwrap_or(usize::MAX);
                let data = buf.split_to(left.min(buf.len()));
                body.extend_from_slice(&data);
            }
        }
        Framing::Close => loop {
            body.extend_from_slice(&buf.split());
            if !input.more(&mut buf) {
                break;
            }
        },
        Framing::Chunked(mut chunk) => loop {
            match decode_chunk(&mut buf, &mut chunk)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::Trailers(trailers) => return Ok((head, body, Some(trailers))),
                Decoded::End => break,
                Decoded::Again => {}
                Decoded::NeedMore => {
                    if !input.more(&mut buf) {
                        return Err(Error::BodyCut);
                    }
                }
            }
        },
    }
    Ok((head, body, None))
}

/// Bytes handed out a piece at a time.
struct Feed<'a> {
    bytes: &'a [u8],
    fed: usize,
    piece: usize,
}

impl Feed<'_> {
    /// Appends the next piece to `buf`; false at the end.
    fn more(&mut self, buf: &mut BytesMut) -> bool {
        let end = self.fed.saturating_add(self.piece).min(self.bytes.len());
        match self.bytes.get(self.fed..end) {
            Some(piece) if !piece.is_empty() => {
                buf.extend_from_slice(piece);
                self.fed = end;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::fields::HostField;

    /// The head at the front of `bytes`, read as a connection's first answer. It is read
    /// again as a later answer (the names of another head already known, in another order
    /// and spelling), which must come out the same.
    fn head_of(bytes: &[u8], method: &Method) -> Result<Option<Head>, Error> {
        let read = |names: &mut FieldNames| {
            let mut buf = BytesMut::from(bytes);
            let mut recycle = HeaderMap::new();
            recycle.insert("x-old", HeaderValue::from_static("gone"));
            let head = parse_head(
                &mut buf,
                &mut Vec::new(),
                names,
                method,
                64 * 1024,
                &mut recycle,
                false,
            );
            if let Ok(Some(head)) = &head {
                assert!(
                    !head.headers.contains_key("x-old"),
                    "the recycled map is emptied"
                );
            }
            head
        };
        let mut later = FieldNames::default();
        let mut before = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nx-a: 0\r\ncontent-length: 0\r\nConnection: keep-alive\r\n\
               X-A: 1\r\ntransfer-encoding: gzip, chunked\r\nCONTENT-LENGTH: 0\r\n\r\n"[..],
        );
        parse_head(
            &mut before,
            &mut Vec::new(),
            &mut later,
            &Method::GET,
            64 * 1024,
            &mut HeaderMap::new(),
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!later.is_empty());
        let first = read(&mut FieldNames::default());
        let again = read(&mut later);
        match (&first, &again) {
            (Ok(Some(first)), Ok(Some(again))) => {
                assert_eq!(first.headers, again.headers);
                assert_eq!(
                    (first.status, first.version, &first.reason),
                    (again.status, again.version, &again.reason)
                );
                assert_eq!(
                    (first.framing_reusable, first.has_connection),
                    (again.framing_reusable, again.has_connection)
                );
                assert_eq!(
                    format!("{:?}", first.framing),
                    format!("{:?}", again.framing)
                );
            }
            (Ok(None), Ok(None)) => {}
            (Err(first), Err(again)) => assert_eq!(first.to_string(), again.to_string()),
            _ => panic!("read as a later answer: {again:?}, as the first: {first:?}"),
        }
        first
    }

    #[test]
    fn the_connection_is_kept_unless_the_answer_says_otherwise() {
        for (head, kept) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..], true),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            (
                b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
        ] {
            let parsed = head_of(head, &Method::GET).unwrap().unwrap();
            assert_eq!(
                parsed.keeps_alive(),
                super::super::pool::keeps_alive(parsed.version, &parsed.headers),
                "as the fields in the map say"
            );
            assert_eq!(
                parsed.keeps_alive(),
                kept,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_head_is_parsed_with_its_framing() {
        let head = head_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.version, Version::HTTP_11);
        assert!(head.reason.is_none());
        assert!(head.framing_reusable);
        assert!(matches!(head.framing, Framing::Length(5)));
        let values: Vec<_> = head.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn interim_answers_are_skipped_and_101_refused() {
        let head = head_of(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.status, StatusCode::NO_CONTENT);
        assert!(!head.headers.contains_key("link"));
        assert!(head_of(b"HTTP/1.1 100 Continue\r\n\r\n", &Method::GET)
            .unwrap()
            .is_none());
        assert!(matches!(
            head_of(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", &Method::GET),
            Err(Error::Head(_))
        ));
    }

    #[test]
    fn a_partial_head_waits_and_a_large_one_is_refused() {
        assert!(head_of(b"HTTP/1.1 200 OK\r\nContent-Le", &Method::GET)
            .unwrap()
            .is_none());
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.extend_from_slice(format!("x-big: {}\r\n\r\n", "a".repeat(200)).as_bytes());
        let mut buf = BytesMut::from(&big[..]);
        assert!(matches!(
            parse_head(
                &mut buf,
                &mut Vec::new(),
                &mut FieldNames::default(),
                &Method::GET,
                100,
                &mut HeaderMap::new(),
                false,
            ),
            Err(Error::HeadTooLarge)
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            head_of(&many, &Method::GET),
            Err(Error::HeadTooLarge)
        ));
    }

    #[test]
    fn a_custom_reason_phrase_is_kept() {
        let head = head_of(
            b"HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.reason.unwrap().as_bytes(), b"Fine");
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing_of = |bytes: &[u8], method: &Method| {
            let head = head_of(bytes, method).unwrap().unwrap();
            (head.framing, head.framing_reusable, head.headers)
        };
        let (f, reusable, _) = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            &Method::HEAD,
        );
        assert!(matches!(f, Framing::Empty) && reusable);
        let (f, _, _) = framing_of(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Empty));
        let (f, reusable, _) = framing_of(b"HTTP/1.1 200 OK\r\n\r\n", &Method::GET);
        assert!(matches!(f, Framing::Close) && !reusable);
        let (f, reusable, _) = framing_of(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Chunked(_)) && reusable);
        let (f, reusable, _) = framing_of(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Close) && !reusable);
        let (f, reusable, headers) = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Chunked(_)) && !reusable);
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
        let (f, _, _) = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Length(3)));
        let (f, _, _) = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 000000000000000000000003\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Length(3)));
        // A Transfer-Encoding of another kind: read to the close, its Content-Length gone.
        let (f, reusable, headers) = framing_of(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Close) && !reusable);
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
        // A Content-Length that is not one does not count where none would: beside a
        // Transfer-Encoding (it goes), on a bodiless answer.
        let (f, reusable, headers) = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Chunked(_)) && !reusable);
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
        let (f, reusable, _) = framing_of(
            b"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
            &Method::GET,
        );
        assert!(matches!(f, Framing::Empty) && reusable);
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(head_of(bad, &Method::GET), Err(Error::Head(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Decodes a whole chunked body fed in pieces of `step` bytes.
    fn dechunk(body: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>, usize), Error> {
        let mut buf = BytesMut::new();
        let mut chunk = Chunked::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match decode_chunk(&mut buf, &mut chunk)? {
                Decoded::Data(data) => out.extend_from_slice(&data),
                Decoded::Trailers(trailers) => return Ok((out, Some(trailers), buf.len())),
                Decoded::End => return Ok((out, None, buf.len())),
                Decoded::Again => {}
                Decoded::NeedMore => {
                    if fed >= body.len() {
                        return Err(Error::BodyCut);
                    }
                    let end = (fed + step).min(body.len());
                    buf.extend_from_slice(&body[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_in_any_pieces() {
        let body = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\n\r\n";
        for step in 1..body.len() {
            let (data, trailers, left) = dechunk(body, step).unwrap();
            assert_eq!(data, b"hello world", "step {step}");
            assert!(trailers.is_none());
            assert_eq!(left, 0);
        }
        let with_trailers = b"A \r\n0123456789\r\n0\r\nx-checksum: abc\r\n\r\n";
        for step in 1..with_trailers.len() {
            let (data, trailers, _) = dechunk(with_trailers, step).unwrap();
            assert_eq!(data, b"0123456789");
            assert_eq!(trailers.unwrap()["x-checksum"], "abc");
        }
    }

    #[test]
    fn bad_chunked_framing_is_an_error() {
        for bad in [
            &b"g\r\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"ffffffffffffffff0\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                matches!(dechunk(bad, 3), Err(Error::Chunked(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_line = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(matches!(
            dechunk(long_line.as_bytes(), 512),
            Err(Error::Chunked(_))
        ));
        let mut long_trailers = b"0\r\n".to_vec();
        while long_trailers.len() <= MAX_TRAILER_BYTES + 100 {
            long_trailers.extend_from_slice(b"x: y\r\n");
        }
        assert!(matches!(
            dechunk(&long_trailers, 1024),
            Err(Error::Chunked(_))
        ));
        // Cut off: more is needed when the input ends.
        assert!(matches!(dechunk(b"5\r\nhel", 2), Err(Error::BodyCut)));
        // Only spaces or tabs after the size, only CRLF line ends in the trailers (hyper's
        // rules), extensions bounded over the whole body.
        for bad in [
            &b"5\r\r\nhello\r\n0\r\n\r\n"[..],
            b"5\x0c\r\nhello\r\n0\r\n\r\n",
            b"0\r\n\n",
            b"0\r\nx: y\n\r\n",
        ] {
            for step in [1, 3, 64] {
                assert!(
                    matches!(dechunk(bad, step), Err(Error::Chunked(_))),
                    "{} in steps of {step}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
        let mut many_extensions = Vec::new();
        let extension = format!("1;{}\r\nx\r\n", "e".repeat(1000));
        while many_extensions.len() <= MAX_CHUNK_EXTENSIONS + 2000 {
            many_extensions.extend_from_slice(extension.as_bytes());
        }
        many_extensions.extend_from_slice(b"0\r\n\r\n");
        assert!(matches!(
            dechunk(&many_extensions, 4096),
            Err(Error::Chunked("chunk extensions too long"))
        ));
        assert!(dechunk(b"5 \t;a=b\r\nhello\r\n0\r\n\r\n", 1).is_ok());
        // What follows the trailer section is not the body's (a connection it leaves bytes on
        // is not reused), however the bytes arrive.
        for piece in [1, 5, 1000] {
            let (data, trailers, left) =
                dechunk(b"1\r\na\r\n0\r\nx: y\r\n\r\nz\nz", piece).unwrap();
            assert_eq!(
                (data, trailers.unwrap()["x"].as_bytes()),
                (b"a".to_vec(), &b"y"[..])
            );
            assert!(left <= 3);
        }
    }

    #[test]
    fn an_answer_reads_the_same_whatever_pieces_it_arrives_in() {
        let answers: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx: 1\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nto the close",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ];
        for answer in answers {
            let (head, body, trailers) = read_from_bytes(answer, &Method::GET, usize::MAX).unwrap();
            for piece in 1..answer.len() {
                let (again, same_body, same_trailers) =
                    read_from_bytes(answer, &Method::GET, piece).unwrap();
                assert_eq!(
                    (again.status, again.headers.len()),
                    (head.status, head.headers.len())
                );
                assert_eq!(
                    (&same_body, &same_trailers),
                    (&body, &trailers),
                    "piece {piece}"
                );
            }
        }
        assert!(matches!(
            read_from_bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
                &Method::GET,
                2
            ),
            Err(Error::BodyCut)
        ));
        assert!(matches!(
            read_from_bytes(b"HTTP/1.1 200 OK\r\nContent-Le", &Method::GET, 2),
            Err(Error::Closed)
        ));
    }

    /// Writes a `POST /up` head announcing `length` bytes of `body` (held to `limits`) on
    /// `connection`, with what the body has at once; returns the upload.
    async fn send_post(
        connection: &mut Connection,
        body: crate::proxy::body::ClientBody,
        length: u64,
        limits: crate::proxy::body::BodyLimits,
    ) -> Option<Box<Upload>> {
        let slot = crate::proxy::body::BodySlot::new(body, limits, tokio::time::Instant::now());
        let mut upload = Some(Box::new(Upload::new(slot.attempt(), length)));
        let origin = crate::proxy::upstream::Target::parse("http://upstream.test").unwrap();
        connection
            .send(
                &Method::POST,
                &origin.checked("/up", None).unwrap(),
                &HeaderMap::new(),
                &with_host_field(HostField::AsIs),
                Some(length),
                upload.as_deref_mut(),
            )
            .await
            .expect("the head is written");
        upload
    }

    /// The head of the answer to a POST whose `upload` is sent meanwhile.
    async fn post_answer_head(
        connection: &mut Connection,
        upload: &mut Option<Box<Upload>>,
    ) -> Result<Head, Error> {
        let mut broken = None;
        connection
            .read_head(
                &Method::POST,
                64 * 1024,
                &mut HeaderMap::new(),
                false,
                upload,
                &mut broken,
            )
            .await
    }

    #[tokio::test]
    async fn an_early_answer_lets_the_upload_finish_before_anyone_reads_it() {
        use crate::proxy::body::{BodyLimits, ClientBody};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const UPLOAD: usize = 4 << 20;
        // Socket buffers of a fixed size (no autotuning): the upload is far more than the
        // sockets take before the upstream reads, whatever the kernel's `tcp_wmem`, so the
        // answer comes while it is still being sent.
        const BUFFER: u32 = 64 << 10;
        let listening = tokio::net::TcpSocket::new_v4().unwrap();
        listening.set_recv_buffer_size(BUFFER).unwrap();
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listening.listen(8).unwrap();
        let address = listener.local_addr().unwrap();
        // The upstream answers at once with a long body (longer than the relay holds), then
        // reads the whole upload. It tells the upload's length as soon as it has read it: the
        // answer's last bytes may wait until the client reads (how much a socket holds
        // unread is the kernel's choice), so its writer is awaited only after the client has.
        let upstream = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut received = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).await.expect("the request head");
                assert!(n > 0, "the request head was cut off");
                received.extend_from_slice(&chunk[..n]);
            }
            let answer = vec![b'a'; 2 << 20];
            stream
                .write_all(
                    format!(
                        "HTTP/1.1 413 Too Large\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    )
                    .as_bytes(),
                )
                .await
                .expect("the answer's head");
            let (mut reader, mut writer) = stream.into_split();
            let writing = tokio::spawn(async move { writer.write_all(&answer).await });
            let head = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let mut body = received.len() - head;
            while body < UPLOAD {
                let n = reader.read(&mut chunk).await.expect("the upload");
                assert!(n > 0, "the upload stopped at {body} bytes");
                body += n;
            }
            (body, reader, writing)
        });
        let client = tokio::net::TcpSocket::new_v4().unwrap();
        client.set_send_buffer_size(BUFFER).unwrap();
        let mut connection = Connection::new(client.connect(address).await.unwrap());
        let limits = BodyLimits {
            max_bytes: 0,
            idle: std::time::Duration::from_secs(30),
            deadline: None,
        };
        let body = ClientBody::Buffered(Some(Bytes::from(vec![b'u'; UPLOAD])));
        let mut upload = send_post(&mut connection, body, UPLOAD as u64, limits).await;
        let mut head = post_answer_head(&mut connection, &mut upload)
            .await
            .unwrap();
        assert_eq!(head.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(upload.is_some(), "the answer came before the upload ended");
        let body = response_body(connection, &mut head, None, upload);
        // Nobody reads the answer until the upstream has the whole upload.
        let (received, _open, writing) =
            tokio::time::timeout(std::time::Duration::from_secs(20), upstream)
                .await
                .expect("the upload goes on while nobody reads the answer")
                .expect("the upstream");
        assert_eq!(received, UPLOAD);
        let read = http_body_util::BodyExt::collect(body)
            .await
            .expect("the answer")
            .to_bytes();
        assert_eq!(read.len(), 2 << 20);
        writing
            .await
            .expect("the answer's writer")
            .expect("the answer is written");
    }

    #[tokio::test]
    async fn a_body_that_is_there_goes_with_the_head_and_its_error_after_it() {
        use crate::proxy::body::{BodyLimits, ClientBody};
        use tokio::io::AsyncReadExt;
        let limits = |max_bytes| BodyLimits {
            max_bytes,
            idle: std::time::Duration::from_secs(30),
            deadline: None,
        };
        let body = Bytes::from(vec![b'b'; 10 * 1024]);
        let head = format!(
            "POST /up HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        for max_bytes in [0, 1024] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let upstream = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut sent = Vec::new();
                stream.read_to_end(&mut sent).await.unwrap();
                sent
            });
            // A send buffer of a fixed size that takes the head and the body whatever the
            // kernel's `tcp_wmem`.
            let client = tokio::net::TcpSocket::new_v4().unwrap();
            client.set_send_buffer_size(64 << 10).unwrap();
            let mut connection = Connection::new(client.connect(address).await.unwrap());
            let received = ClientBody::Received(Some(body.clone()));
            let length = body.len() as u64;
            let mut upload = send_post(&mut connection, received, length, limits(max_bytes)).await;
            if max_bytes == 0 {
                // The body was taken at once and written with the head.
                let sending = upload.as_ref().unwrap();
                assert_eq!((sending.left, sending.pending.len()), (0, 0));
                drop(connection);
                let sent = upstream.await.unwrap();
                assert_eq!(sent, [head.as_bytes(), &body[..]].concat());
            } else {
                // Too large for the limit: the head went, the error is told next (as hyper's
                // client fails the exchange once the body fails).
                let failed = post_answer_head(&mut connection, &mut upload)
                    .await
                    .expect_err("the body's error");
                assert!(
                    matches!(&failed, Error::Upload(err) if format!("{err:?}").contains("TooLarge")),
                    "{failed:?}"
                );
                drop(connection);
                assert_eq!(upstream.await.unwrap(), head.as_bytes());
            }
        }
    }

    /// The proxy's fields that set only `Host`, as `host` says.
    fn with_host_field(host: HostField<'_>) -> ProxyFields<'_> {
        let mut fields = ProxyFields::new();
        fields.host = host;
        fields
    }

    #[test]
    fn a_request_head_is_written_in_origin_form() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("b.test:8080"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let url = crate::proxy::upstream::Target::parse("http://b.test:8080/p/a?q=1").unwrap();
        let uri = url.checked("", None).unwrap();
        let mut out = Vec::new();
        encode_head(
            &mut out,
            &Method::GET,
            &uri,
            &headers,
            &with_host_field(HostField::AsIs),
            None,
        );
        assert_eq!(
            out,
            b"GET /p/a?q=1 HTTP/1.1\r\nhost: b.test:8080\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
        );
        headers.remove(header::HOST);
        let host = HeaderValue::from_static("c.test");
        encode_head(
            &mut out,
            &Method::DELETE,
            &uri,
            &headers,
            &with_host_field(HostField::Default(&host)),
            None,
        );
        assert_eq!(
            out,
            b"DELETE /p/a?q=1 HTTP/1.1\r\nx-a: 1\r\nx-a: 2\r\nhost: c.test\r\n\r\n"
        );
        encode_head(
            &mut out,
            &Method::POST,
            &uri,
            &headers,
            &with_host_field(HostField::AsIs),
            Some(12),
        );
        assert_eq!(
            out,
            b"POST /p/a?q=1 HTTP/1.1\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 12\r\n\r\n"
        );
        // Replaced: in the place of the head's first `Host` (the others left out), as an
        // insertion into the map puts it; after the fields when the head has none.
        encode_head(
            &mut out,
            &Method::GET,
            &uri,
            &headers,
            &with_host_field(HostField::Replace(&host)),
            None,
        );
        assert_eq!(
            out,
            b"GET /p/a?q=1 HTTP/1.1\r\nx-a: 1\r\nx-a: 2\r\nhost: c.test\r\n\r\n"
        );
        let mut with_host = HeaderMap::new();
        with_host.insert("x-b", HeaderValue::from_static("0"));
        with_host.append(header::HOST, HeaderValue::from_static("client.test"));
        with_host.append(header::HOST, HeaderValue::from_static("other.test"));
        with_host.append("x-a", HeaderValue::from_static("1"));
        for (host_field, expected) in [
            (HostField::AsIs, "host: client.test\r\nhost: other.test\r\n"),
            (
                HostField::Default(&host),
                "host: client.test\r\nhost: other.test\r\n",
            ),
            (HostField::Replace(&host), "host: c.test\r\n"),
        ] {
            encode_head(
                &mut out,
                &Method::GET,
                &uri,
                &with_host,
                &with_host_field(host_field),
                None,
            );
            let expected = format!("GET /p/a?q=1 HTTP/1.1\r\nx-b: 0\r\n{expected}x-a: 1\r\n\r\n");
            assert_eq!(String::from_utf8_lossy(&out), expected, "{host_field:?}");
            let mut inserted = with_host.clone();
            if let HostField::Replace(host) = host_field {
                inserted.insert(header::HOST, host.clone());
                let mut by_map = Vec::new();
                encode_head(
                    &mut by_map,
                    &Method::GET,
                    &uri,
                    &inserted,
                    &with_host_field(HostField::AsIs),
                    None,
                );
                assert_eq!(
                    by_map, out,
                    "the same as the map's insertion (hyper's client)"
                );
            }
        }
    }
}
