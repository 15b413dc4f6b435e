//! The lean HTTP/1.1 server of cleartext API listeners: requests without a body or with a
//! small one already read, served on the connection's own task with one buffer for reading and
//! one for writing, and every other request handed to hyper.
//!
//! A request this server takes is an HTTP/1.1 request whose head `httparse` (hyper's parser,
//! with hyper's settings) reads completely within `limits.max_header_bytes` and the field
//! limit, whose target `http` parses, with no `Transfer-Encoding`, no `Expect`, no
//! `Upgrade`, not `CONNECT`, and either no body or a `Content-Length` body of at most 64 KiB
//! that is all there once the head is, or within 5 ms of it ([`BODY_GRACE`]: read with it,
//! it reaches the gateway whole, [`ClientBody::Received`], and is sent upstream as a stream
//! is). Anything else, including every head hyper would refuse and a body still on its way
//! after that, goes to hyper's server unread: the socket and the bytes read from it and not yet served are
//! handed over ([`Ended::HandOver`], [`Replay`]) and hyper serves the connection from that
//! request on, answering exactly as it does when it serves a connection from the start (its
//! `400`, `431`, `414`, `100 Continue`, upgrades, streamed request bodies and their timeouts,
//! HTTP/1.0, an HTTP/2 preface on a connection's first bytes).
//!
//! What it does is hyper's (hyper 1.12, `proto/h1/role.rs`, `conn.rs`, `dispatch.rs`), so a
//! client cannot tell the two apart:
//! - The header timeout counts from the moment the server waits for a head (an idle
//!   keep-alive connection included); when it passes, the connection is closed without an
//!   answer. An end of the client's stream while its request is served drops the request
//!   (hyper's server does not allow half-closed connections by default). The socket is
//!   looked at before the gateway's future is first polled and at each wake-up while it
//!   waits, not on the wake-up that finds the answer ready: an end that arrives in the same
//!   wake-up as the answer lets the answer go out, where hyper would drop it (a race of
//!   microseconds either way).
//! - The response head: `HTTP/1.1` (`HTTP/1.0` when the response says so), the reason phrase
//!   of `hyper::ext::ReasonPhrase` or the canonical one, fields in their map order with names
//!   in lower case, `Content-Length`, `Transfer-Encoding`, `Connection` and `Trailer` values
//!   joined on one line, a `date` field unless the response has one. An upstream's answer
//!   whose fields nothing on the way reads carries them as received instead of in its map
//!   ([`CarriesFields`], `proxy::field_lines`): they are written first, as the map would have
//!   them first, in the bytes hyper writes from a map.
//! - The body's framing: no body for `HEAD`, `204`, `304`; the response's `Content-Length`, or
//!   chunked when the response says `Transfer-Encoding` (`, chunked` added when it is not
//!   the last coding) or when the length is unknown; trailers only when the request said
//!   `TE: trailers` and the response declared them in `Trailer`.
//! - Keep-alive: the connection closes after a response when the request or the response
//!   says `Connection: close` (the response then says so too), after a body shorter than its
//!   length, and after the stop ([`super::drain`]).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::drain::{Activity, Stop};
use super::field_values::FieldValues;
use crate::gateway::{Gateway, Site};
use crate::proxy::body::ClientBody;
use crate::proxy::field_lines::{CarriesFields, FieldLines};
use crate::proxy::field_names::FieldNames;
use crate::proxy::h1::digits;

/// Room for one read of a head (hyper's first read size).
const READ_ROOM: usize = 8 * 1024;
/// The most room a connection's reads of a head ask for: a connection whose last request
/// (head and body) was larger than [`READ_ROOM`] reads the next one with room for as much,
/// rounded up to 4 KiB, up to this (so that a 10 KiB upload is read in one system call, not
/// two). hyper's adaptive read strategy also grows its reads on a busy connection (it
/// doubles them when a read fills its buffer); this one follows the last request's size.
const MAX_READ_ROOM: usize = 2 * READ_ROOM;
/// Fields `httparse` is given room for: hyper's default limit, used when `limits.max_headers`
/// is not lower (a higher limit: hyper takes such heads).
const FIELD_ROOM: usize = 100;
/// hyper's longest request target (`MAX_URI_LEN`); a longer one is hyper's `414`.
const MAX_URI_LEN: usize = u16::MAX as usize - 1;
/// The largest request body read whole before the request is served (`Content-Length`); a
/// larger one, or one not all there within [`BODY_GRACE`] of its head, is hyper's to stream.
const MAX_BODY: usize = 64 * 1024;
/// How long the rest of a body of at most [`MAX_BODY`] is waited for once its head is read,
/// before the request goes to hyper. Clients that write a head and its body apart (Python's
/// `http.client`, and with it `requests`) send the body right after the head: on loopback or
/// a LAN it comes within microseconds, and 5 ms also covers 10 KiB at 20 Mbit/s. Without the
/// wait every such request went to hyper, and with it the rest of its connection (a POST
/// with a 10 KiB body: 32,800 instructions a request instead of 25,800, callgrind). A body that
/// takes longer reaches the gateway at most this much later than hyper would begin to
/// stream it (nginx waits for a whole body by default).
const BODY_GRACE: Duration = Duration::from_millis(5);
/// The read buffer's room kept between requests: the largest read of a head and the byte
/// more `poll_fill` asks for, with one to spare.
const IN_KEPT: usize = MAX_READ_ROOM + 2;
/// The output buffer's room kept between responses; a larger one (a large body was copied
/// into it) is given back.
const OUT_KEPT: usize = 8 * 1024;
/// Body bytes copied behind the head, or into one chunk's write; a larger piece is written
/// from its own buffer.
const COALESCE: usize = 16 * 1024;

/// The protocol limits both servers apply (`[limits]`, `[timeouts]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes read for a head that is not complete (hyper's `max_buf_size`).
    pub max_header_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
    /// Time a head may take, counted from the moment the server waits for it.
    pub header_timeout: Duration,
}

/// How a connection served here ended.
pub enum Ended {
    /// Closed: by the client, a timeout, the stop, an error, or `Connection: close`.
    Closed,
    /// A request this server does not take: hyper serves the connection from it on.
    HandOver {
        /// The connection.
        io: TcpStream,
        /// What was read from it and not served: the request's head (perhaps part of it)
        /// and whatever followed.
        read: Bytes,
        /// Nothing was served before it: the bytes may be an HTTP/2 preface.
        first: bool,
    },
}

/// Serves `io` (a connection from `peer` to a listener serving `site`) until it closes or a
/// request needs hyper ([`Ended::HandOver`]).
pub async fn serve(
    io: TcpStream,
    peer: SocketAddr,
    gateway: &Arc<Gateway>,
    site: &Arc<Site>,
    limits: Limits,
    stop: &Stop,
) -> Ended {
    serve_with(io, limits, stop, |request| {
        gateway.handle_borrowed(request, peer, site)
    })
    .await
}

/// [`serve`] with any service in place of the gateway's.
async fn serve_with<S, F, B>(io: TcpStream, limits: Limits, stop: &Stop, mut service: S) -> Ended
where
    S: FnMut(Request<ClientBody>) -> F,
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Body<Data = Bytes> + CarriesFields,
{
    let mut connection = Connection {
        io,
        buf: BytesMut::new(),
        out: Vec::with_capacity(1024),
        spans: Vec::new(),
        remembered: Remembered::default(),
        fields: HeaderMap::new(),
        read_room: READ_ROOM,
    };
    // One timer for the connection's heads, kept set for an earlier head's deadline until it
    // fires (`super::due`).
    let timer = tokio::time::sleep(super::timer::FAR_FUTURE);
    let mut timer = std::pin::pin!(timer);
    // The stop is awaited on a copy of the signal (while waiting for a head) and read on
    // the original (an atomic load) before each response.
    let (mut waiter, watch) = (stop.clone(), stop);
    let stopped = stop_signal(&mut waiter);
    let stopped = std::pin::pin!(stopped);
    let mut stopped = Signal::new(stopped, watch);
    let mut first = true;
    loop {
        let head = match connection
            .read_head(&limits, timer.as_mut(), &mut stopped)
            .await
        {
            Read::Head(head) => head,
            Read::Closed => return Ended::Closed,
            Read::Refer(head) => return connection.hand_over(head, first),
        };
        first = false;
        connection.read_room = read_room_after(head.size);
        let method = head.request.method().clone();
        // Pinned where it is made: the gateway's future is large, and every move of it is a
        // copy.
        let answer = std::pin::pin!(service(head.request));
        let Some(response) = connection.respond(answer).await else {
            return Ended::Closed;
        };
        let keep_alive = !head.close && !watch.has_stopped();
        let kept = connection
            .write_response(response, &method, keep_alive, head.trailers)
            .await;
        if connection.out.capacity() > OUT_KEPT {
            connection.out = Vec::with_capacity(1024);
        }
        if connection.buf.is_empty() && connection.buf.capacity() > IN_KEPT {
            // A large body was read: its room is not kept for an idle connection.
            connection.buf = BytesMut::new();
        }
        if !kept {
            let _ = connection.io.shutdown().await;
            return Ended::Closed;
        }
    }
}

/// The room the reads of a connection's next head ask for after a request of `size` bytes
/// (head and body): as much, rounded up to 4 KiB, from [`READ_ROOM`] to [`MAX_READ_ROOM`].
fn read_room_after(size: usize) -> usize {
    size.next_multiple_of(4096).clamp(READ_ROOM, MAX_READ_ROOM)
}

/// The future a connection waits on for the stop between heads, out of tokio's cooperative
/// budget: a poll of it with the budget spent would only reschedule the task without giving
/// the stop the task's waker, and [`Signal`] polls it again only when the stop may have come.
fn stop_signal(
    waiter: &mut Stop,
) -> tokio::task::coop::Unconstrained<impl Future<Output = ()> + '_> {
    tokio::task::coop::unconstrained(waiter.stopped())
}

/// A stop signal polled where it is needed, once resolved always resolved.
///
/// Polling the stop's future takes its channel's lock (two locking instructions) to look at
/// the waker it holds. Once it holds the task's waker it wakes the task when the stop comes,
/// so it is polled again only when `stop` says the stop has come (an atomic load) or the task's
/// waker has changed: a connection waiting for its next head takes no lock for it.
struct Signal<'a, F> {
    future: Pin<&'a mut F>,
    fired: bool,
    /// The waker the future was last polled with (it holds it while pending).
    registered: Option<std::task::Waker>,
    stop: &'a Stop,
}

impl<'a, F: Future<Output = ()>> Signal<'a, F> {
    fn new(future: Pin<&'a mut F>, stop: &'a Stop) -> Self {
        Signal {
            future,
            fired: false,
            registered: None,
            stop,
        }
    }

    /// Whether the stop has come (the task is woken when it comes).
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if self.fired {
            return true;
        }
        let held = self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if held && !self.stop.has_stopped() {
            return false;
        }
        if self.future.as_mut().poll(cx).is_ready() {
            self.fired = true;
        } else if !held {
            self.registered = Some(cx.waker().clone());
        }
        self.fired
    }
}

/// One client connection's state between requests.
struct Connection {
    io: TcpStream,
    /// What was read and not yet served.
    buf: BytesMut,
    /// What is about to be written.
    out: Vec<u8>,
    /// Room for the fields' places in a head.
    spans: Vec<Span>,
    /// The field names and long values of the connection's requests so far.
    remembered: Remembered,
    /// The last response's emptied field map, room for the next request's fields (as hyper
    /// keeps it).
    fields: HeaderMap,
    /// What the reads of the next head ask for, in bytes: from [`READ_ROOM`] to
    /// [`MAX_READ_ROOM`], after the size of the last request.
    read_room: usize,
}

/// What a connection remembers of its requests' fields, to make the next head's fields
/// cheaply: the names as spelled ([`FieldNames`]) and the long values ([`FieldValues`]).
#[derive(Debug, Default)]
struct Remembered {
    names: FieldNames,
    values: FieldValues,
}

/// What reading a head gave. (The head is the common case: boxed, it would cost an
/// allocation per request.)
#[allow(clippy::large_enum_variant)]
enum Read {
    Head(Head),
    Closed,
    /// For hyper: the head's bytes when they were already taken out of the buffer.
    Refer(Option<Bytes>),
}

/// A request head this server serves.
struct Head {
    request: Request<ClientBody>,
    /// `Connection: close`.
    close: bool,
    /// `TE: trailers`: the response may carry trailers.
    trailers: bool,
    /// The request's bytes on the wire: its head and its body.
    size: usize,
}

/// Where one field lies in a head: name start and end, value start and end.
type Span = (usize, usize, usize, usize);

/// What parsing the front of the buffer gave.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Partial,
    /// A head with a body not all read yet: the head's and the body's length together.
    NeedBody(usize),
    Head(Head),
    Refer(Option<Bytes>),
}

/// What reading a request needs next ([`HeadReader::next`]).
#[allow(clippy::large_enum_variant)]
enum Next {
    /// A head this server serves (with its body, if any).
    Head(Head),
    /// A request for hyper: the head's bytes when they were already taken out of the buffer.
    Refer(Option<Bytes>),
    /// More of a head: a read of at most this many bytes.
    More(usize),
    /// The rest of a body read with its head: at most this many bytes, if the socket has them
    /// now or within [`BODY_GRACE`] (else the request is hyper's).
    Body(usize),
}

/// The reading of one request from a connection's buffer: when to parse, what to read next.
/// One rule for the server ([`Connection::read_head`]) and for [`first_request_from_bytes`].
struct HeadReader {
    /// The length of a partial head already parsed: parsed again only once the bytes after
    /// it end a head (hyper's `is_complete_fast`), so a head arriving byte by byte costs one
    /// scan, and errors in it show when hyper would show them.
    partial: Option<usize>,
    /// The length of a complete head and its body when the body was not all there: the head
    /// is parsed again only once the buffer holds that much (a body arriving in many pieces
    /// costs one parse of its head, not one per piece).
    whole: Option<usize>,
    /// The most a read of the head asks for, in bytes.
    room: usize,
}

impl HeadReader {
    /// Reads of at most `room` bytes (within the head's limit).
    fn with_room(room: usize) -> Self {
        HeadReader {
            partial: None,
            whole: None,
            room,
        }
    }

    /// Parses what `buf` holds when it may be a whole head, and says what comes next.
    fn next(
        &mut self,
        buf: &mut BytesMut,
        spans: &mut Vec<Span>,
        remembered: &mut Remembered,
        fields: &mut HeaderMap,
        limits: &Limits,
    ) -> Next {
        if let Some(whole) = self.whole {
            if buf.len() < whole {
                return Next::Body(whole - buf.len());
            }
        }
        let ready = match self.partial {
            None => !buf.is_empty(),
            Some(before) => buf.len() > before && ends_a_head(buf, before),
        };
        if ready {
            match parse_request(
                buf,
                spans,
                remembered,
                fields,
                limits.max_headers,
                limits.max_header_bytes,
            ) {
                Parsed::Head(head) => return Next::Head(head),
                Parsed::Refer(head) => return Next::Refer(head),
                Parsed::NeedBody(whole) => {
                    self.whole = Some(whole);
                    return Next::Body(whole.saturating_sub(buf.len()));
                }
                Parsed::Partial => self.partial = Some(buf.len()),
            }
        }
        if buf.len() >= limits.max_header_bytes {
            // hyper answers 431 to this head.
            return Next::Refer(None);
        }
        Next::More((limits.max_header_bytes - buf.len()).min(self.room))
    }
}

impl Connection {
    /// Reads the next request head: at most `limits.max_header_bytes` before it is complete,
    /// within the header timeout.
    async fn read_head<F: Future<Output = ()>>(
        &mut self,
        limits: &Limits,
        mut timer: Pin<&mut tokio::time::Sleep>,
        stopped: &mut Signal<'_, F>,
    ) -> Read {
        let due = super::clock::now() + limits.header_timeout;
        let mut armed = false;
        // When the rest of a small body is waited for until (`BODY_GRACE`).
        let mut body_due = None;
        let mut reader = HeadReader::with_room(self.read_room);
        let mut first = true;
        std::future::poll_fn(|cx| loop {
            match reader.next(
                &mut self.buf,
                &mut self.spans,
                &mut self.remembered,
                &mut self.fields,
                limits,
            ) {
                Next::Head(head) => return Poll::Ready(Read::Head(head)),
                Next::Refer(head) => return Poll::Ready(Read::Refer(head)),
                Next::Body(room) => match poll_fill(&mut self.io, &mut self.buf, cx, room) {
                    Poll::Ready(Err(_)) => return Poll::Ready(Read::Closed),
                    Poll::Ready(Ok(n)) if n > 0 => {
                        if n >= room && body_due.is_some() {
                            // The body waited for came: the timer, moved to the body's
                            // moment, goes back to a head's deadline (a later one: no wheel
                            // operation), so that it does not fire for nothing while the
                            // request is served.
                            timer.as_mut().reset(due);
                        }
                        continue;
                    }
                    // On its way: waited for a moment, then left to hyper with what came.
                    Poll::Pending => {
                        let body_due = *body_due.get_or_insert_with(|| {
                            let body_due = super::clock::now() + BODY_GRACE;
                            super::due::set_due(timer.as_mut(), body_due);
                            body_due
                        });
                        if super::due::poll_due(timer.as_mut(), body_due, cx).is_ready() {
                            return Poll::Ready(Read::Refer(None));
                        }
                        return Poll::Pending;
                    }
                    // Cut off by the client's end: hyper reads the rest (and answers a
                    // cut-off body as it does).
                    Poll::Ready(Ok(_)) => return Poll::Ready(Read::Refer(None)),
                },
                // The first look for a head, as the last answer has just been written, asks
                // for readiness only (as the client-gone watcher does).
                Next::More(_)
                    if std::mem::take(&mut first)
                        && self.buf.is_empty()
                        && self.io.poll_read_ready(cx).is_pending() => {}
                Next::More(room) => match poll_fill(&mut self.io, &mut self.buf, cx, room) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Read::Closed),
                    Poll::Ready(Ok(_)) => continue,
                    Poll::Pending => {}
                },
            }
            // Waiting. The stop closes a connection between requests; a head under way is
            // read on.
            if self.buf.is_empty() && stopped.poll(cx) {
                return Poll::Ready(Read::Closed);
            }
            if !armed {
                super::due::set_due(timer.as_mut(), due);
                armed = true;
            }
            if super::due::poll_due(timer.as_mut(), due, cx).is_ready() {
                return Poll::Ready(Read::Closed);
            }
            return Poll::Pending;
        })
        .await
    }

    /// Awaits the gateway's response; `None` when the client's stream ended first (the
    /// request is then dropped, as hyper drops it).
    async fn respond<R>(
        &mut self,
        mut service: Pin<&mut impl Future<Output = Result<R, Infallible>>>,
    ) -> Option<R> {
        let mut first = true;
        std::future::poll_fn(|cx| {
            // The socket first, as hyper reads before it polls the service: the client's end
            // drops the request; a pipelined request is kept for later (and nothing more is
            // read until then). Once the service waits, the socket is looked at while it
            // waits: a poll that finds the answer ready sends it (the watcher's waker is
            // registered already, and the client's end is read before the next request).
            // That saves a look at the socket on most requests, whose answer wakes the task.
            let looked = std::mem::take(&mut first);
            if looked && self.client_gone(cx) {
                return Poll::Ready(None);
            }
            match service.as_mut().poll(cx) {
                Poll::Ready(Ok(response)) => Poll::Ready(Some(response)),
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending if !looked && self.client_gone(cx) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Whether the client's stream has ended (or failed), read while nothing of the next
    /// request is buffered; otherwise its bytes are kept.
    fn client_gone(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        // Readiness first: while the client sends nothing, as it waits for the answer, this
        // only registers the task's waker, without a read attempt's preparations (the
        // buffer's room, the read's wrappers: about 100 instructions, twice a request).
        if self.io.poll_read_ready(cx).is_pending() {
            return false;
        }
        // Into the room the buffer has (the request's head still points into it, so growing
        // it would allocate): `poll_fill` adds one byte to what it is asked for.
        let spare = self.buf.capacity() - self.buf.len();
        matches!(
            poll_fill(
                &mut self.io,
                &mut self.buf,
                cx,
                (spare.max(2) - 1).min(READ_ROOM)
            ),
            Poll::Ready(Ok(0) | Err(_))
        )
    }

    /// Writes `response` to a request of `method`. `true`: the connection stays open for
    /// the next request.
    async fn write_response<B>(
        &mut self,
        response: Response<B>,
        method: &Method,
        keep_alive: bool,
        trailers: bool,
    ) -> bool
    where
        B: Body<Data = Bytes> + CarriesFields,
    {
        let (mut parts, body) = response.into_parts();
        let mut body = std::pin::pin!(body);
        let length = if body.is_end_stream() {
            None
        } else {
            Some(body.size_hint().exact())
        };
        if !keep_alive {
            ask_to_close(&mut parts.headers);
        }
        self.out.clear();
        let head = ResponseHead {
            method,
            length,
            keep_alive,
            as_received: body.fields_as_received(),
        };
        let Ok(mut encoder) = encode_head(&mut self.out, &mut parts, head) else {
            return false;
        };
        // The emptied map keeps its room for the next request's fields.
        self.fields = std::mem::take(&mut parts.headers);
        if !encoder.wants_body() {
            return self.flush().await.is_ok() && !encoder.last;
        }
        loop {
            let frame =
                match std::future::poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await {
                    Poll::Ready(frame) => frame,
                    Poll::Pending => {
                        // Nothing more yet: what is written so far goes out first, then the
                        // body and the client are awaited (its end drops the response, as
                        // hyper drops it).
                        if self.flush().await.is_err() {
                            return false;
                        }
                        let next = std::future::poll_fn(|cx| {
                            if self.client_gone(cx) {
                                return Poll::Ready(None);
                            }
                            body.as_mut().poll_frame(cx).map(Some)
                        });
                        match next.await {
                            Some(frame) => frame,
                            None => return false,
                        }
                    }
                };
            let frame = match frame {
                None => break,
                // The body failed (an upstream reset, a timeout): the connection is closed
                // without the body's end, as hyper does.
                Some(Err(_)) => return false,
                Some(Ok(frame)) => frame,
            };
            let frame = match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    if !data.is_empty() && self.put(&mut encoder, data).await.is_err() {
                        return false;
                    }
                    if !encoder.wants_body() {
                        // A body longer than its length: the rest is not sent.
                        return self.flush().await.is_ok() && !encoder.last;
                    }
                    if end {
                        break;
                    }
                    continue;
                }
                Err(frame) => frame,
            };
            if let Ok(fields) = frame.into_trailers() {
                if trailers && encoder.put_trailers(&fields, &mut self.out) {
                    return self.flush().await.is_ok() && !encoder.last;
                }
                break;
            }
        }
        let complete = encoder.finish(&mut self.out);
        self.flush().await.is_ok() && complete && !encoder.last
    }

    /// Frames `data` into the output, written out first when it would grow too large.
    async fn put(&mut self, encoder: &mut Encoder, data: Bytes) -> io::Result<()> {
        let data = match encoder.kind {
            Kind::Length(remaining) => {
                let take = usize::try_from(remaining).unwrap_or(usize::MAX);
                encoder.kind = Kind::Length(remaining.saturating_sub(data.len() as u64));
                if data.len() > take {
                    data.slice(..take)
                } else {
                    data
                }
            }
            Kind::Chunked(_) => {
                let _ =
                    std::io::Write::write_fmt(&mut self.out, format_args!("{:X}\r\n", data.len()));
                data
            }
            Kind::Close => data,
        };
        if self.out.len() + data.len() <= COALESCE {
            self.out.extend_from_slice(&data);
        } else {
            self.flush().await?;
            self.io.write_all(&data).await?;
        }
        if let Kind::Chunked(_) = encoder.kind {
            self.out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    /// Writes out what the output holds.
    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// The connection for hyper: the socket and what was read and not served, `head` (a head
    /// already taken out of the buffer) first.
    fn hand_over(self, head: Option<Bytes>, first: bool) -> Ended {
        let read = match head {
            None => self.buf.freeze(),
            Some(head) => {
                let mut read = BytesMut::with_capacity(head.len() + self.buf.len());
                read.extend_from_slice(&head);
                read.extend_from_slice(&self.buf);
                read.freeze()
            }
        };
        Ended::HandOver {
            io: self.io,
            read,
            first,
        }
    }
}

/// Whether the bytes of `buf` after its first `before` (less three, for an end split across
/// reads) may hold the end of a head: LF LF or LF CRLF (hyper's `is_complete_fast`).
fn ends_a_head(buf: &[u8], before: usize) -> bool {
    let from = before.saturating_sub(3);
    let new = buf.get(from..).unwrap_or_default();
    new.windows(2).any(|w| w == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n")
}

/// Reads what the socket has into `buf`, at most `room` bytes and one more. `Ok(0)`: the
/// client's stream ended.
fn poll_fill(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
    room: usize,
) -> Poll<io::Result<usize>> {
    // Room for one byte more: a read that takes what was wanted comes back short, which
    // clears tokio's readiness, so the next poll costs no system call.
    let room = room.max(1) + 1;
    if buf.capacity() - buf.len() < room {
        buf.reserve(room);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut (&mut *buf).limit(room))
}

/// `Connection: close` added to a response unless it says so already (hyper's
/// `enforce_version` for an HTTP/1.1 client whose connection is not kept).
fn ask_to_close(headers: &mut HeaderMap) {
    match headers.entry(header::CONNECTION) {
        header::Entry::Occupied(mut entry) => {
            if !entry.iter().any(connection_close) {
                entry.append(HeaderValue::from_static("close"));
            }
        }
        header::Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("close"));
        }
    }
}

/// Parses a request head at the front of `buf` and takes it out; a head this server does not
/// serve is left for hyper. The fields go into `fields`' map (emptied, its room reused).
fn parse_request(
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    remembered: &mut Remembered,
    fields: &mut HeaderMap,
    max_headers: usize,
    max_header_bytes: usize,
) -> Parsed {
    if max_headers > FIELD_ROOM {
        // More fields than this server makes room for: hyper's.
        return Parsed::Refer(None);
    }
    let mut room = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; FIELD_ROOM];
    let room = room.get_mut(..max_headers).unwrap_or_default();
    let mut request = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        room,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        // Refused heads, too many fields: hyper's 400 or 431.
        Err(_) => return Parsed::Refer(None),
    };
    let (Some(1), Some(method), Some(target)) = (request.version, request.method, request.path)
    else {
        // HTTP/1.0: hyper's keep-alive rules.
        return Parsed::Refer(None);
    };
    if len > max_header_bytes || target.len() > MAX_URI_LEN {
        return Parsed::Refer(None);
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Refer(None);
    };
    if method == Method::CONNECT {
        return Parsed::Refer(None);
    }
    let mut close = false;
    let mut trailers = false;
    let mut length_seen = false;
    let base = buf.as_ptr() as usize;
    let at = |part: &[u8]| (part.as_ptr() as usize).wrapping_sub(base);
    let target_at = at(target.as_bytes());
    let target_span = (target_at, target_at.saturating_add(target.len()));
    spans.clear();
    let mut length = 0;
    for field in request.headers.iter() {
        let name = field.name.as_bytes();
        // Fields that change how the request is read: hyper's.
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::Refer(None);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            // One length (hyper keeps one of repeated equal ones), of digits only, small
            // enough to be read whole.
            match digits(field.value) {
                Some(declared) if !length_seen && declared <= MAX_BODY as u64 => {
                    length = declared as usize;
                    length_seen = true;
                }
                _ => return Parsed::Refer(None),
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            // hyper reads only values of visible ASCII here.
            close |= visible(field.value) && list_has(field.value, b"close");
        } else if name.eq_ignore_ascii_case(b"te") {
            trailers |= visible(field.value) && list_has(field.value, b"trailers");
        }
        let name_at = at(name);
        let value_at = at(field.value);
        spans.push((
            name_at,
            name_at.saturating_add(name.len()),
            value_at,
            value_at.saturating_add(field.value.len()),
        ));
    }
    if buf.len() - len < length {
        return Parsed::NeedBody(len + length);
    }
    let raw = buf.split_to(len).freeze();
    let Some(head) = build(&raw, target_span, spans, remembered, fields) else {
        return Parsed::Refer(Some(raw));
    };
    let (mut uri, headers) = head;
    let body = (length > 0).then(|| buf.split_to(length).freeze());
    let mut request = Request::new(match body {
        Some(body) => ClientBody::Received(Some(body)),
        None => ClientBody::Buffered(None),
    });
    *request.method_mut() = method;
    std::mem::swap(request.uri_mut(), &mut uri);
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Head(Head {
        request,
        close,
        trailers,
        size: len + length,
    })
}

/// The target and the field map of a head whose bytes are `raw`; `None` when the target or a
/// field is not one `http` takes (hyper's 400).
fn build(
    raw: &Bytes,
    target: (usize, usize),
    spans: &[Span],
    remembered: &mut Remembered,
    fields: &mut HeaderMap,
) -> Option<(Uri, HeaderMap)> {
    let (start, end) = target;
    if start > end || end > raw.len() {
        return None;
    }
    let uri = Uri::from_maybe_shared(raw.slice(start..end)).ok()?;
    let mut headers = std::mem::take(fields);
    headers.clear();
    headers.reserve(spans.len());
    for (i, &(name_start, name_end, value_start, value_end)) in spans.iter().enumerate() {
        let name = raw
            .get(name_start..name_end)
            .and_then(|name| remembered.names.name(i, name));
        let value = remembered.values.value(i, raw, value_start, value_end);
        match (name, value) {
            (Some(name), Some(value)) => {
                headers.append(name, value);
            }
            _ => {
                *fields = headers;
                return None;
            }
        }
    }
    Some((uri, headers))
}

/// Whether a field value is visible ASCII (hyper's `to_str`).
fn visible(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b))
}

/// Whether a comma-separated list holds `token` (ASCII case ignored), as hyper reads
/// `Connection` and `TE`.
fn list_has(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether a `Connection` value asks to close (hyper's `connection_close`).
fn connection_close(value: &HeaderValue) -> bool {
    visible(value.as_bytes()) && list_has(value.as_bytes(), b"close")
}

/// How a response body is framed.
#[derive(Debug, PartialEq)]
enum Kind {
    /// `Content-Length`: the bytes still owed.
    Length(u64),
    /// Chunked; the trailer fields the response declared (`Trailer`), if it did.
    Chunked(Option<Vec<HeaderName>>),
    /// To the end of the connection (HTTP/1.0 responses of unknown length).
    Close,
}

/// A response body's framing, and whether the connection closes after it.
#[derive(Debug)]
struct Encoder {
    kind: Kind,
    last: bool,
}

impl Encoder {
    /// Whether body bytes are still to be written.
    fn wants_body(&self) -> bool {
        self.kind != Kind::Length(0)
    }

    /// Ends the body: the last chunk when chunked. `false`: the body ended short of its
    /// length (the connection must close).
    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        match self.kind {
            Kind::Length(0) => true,
            Kind::Length(_) => false,
            Kind::Chunked(_) => {
                out.extend_from_slice(b"0\r\n\r\n");
                true
            }
            Kind::Close => {
                self.last = true;
                true
            }
        }
    }

    /// Writes the last chunk with the trailer fields the response declared (those allowed
    /// in a trailer section). `false`: none to write (the body then ends plainly).
    fn put_trailers(&mut self, trailers: &HeaderMap, out: &mut Vec<u8>) -> bool {
        let Kind::Chunked(Some(allowed)) = &self.kind else {
            return false;
        };
        let start = out.len();
        out.extend_from_slice(b"0\r\n");
        let mut any = false;
        for (name, value) in trailers {
            if allowed.contains(name) && allowed_in_trailers(name) {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
                any = true;
            }
        }
        if !any {
            out.truncate(start);
            return false;
        }
        out.extend_from_slice(b"\r\n");
        self.kind = Kind::Length(0);
        true
    }
}

/// Fields never sent as trailers (hyper's list, from RFC 9110 §6.5.1).
fn allowed_in_trailers(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::TE
    )
}

/// Whether a response to `method` with `status` has a body, chunked or not.
fn can_have_body(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Whether a response with `status` may carry `Content-Length`.
fn can_have_content_length(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// A response head the connection cannot send (conflicting or invalid lengths, framing
/// fields after a length): hyper closes the connection without an answer.
#[derive(Debug)]
struct BadHead;

/// What a response head is written for, beside its parts.
struct ResponseHead<'a> {
    /// The request's method.
    method: &'a Method,
    /// `None` for a response without a body, `Some(None)` for a body of unknown length.
    length: Option<Option<u64>>,
    /// The connection may serve another request after this one.
    keep_alive: bool,
    /// The upstream answer's fields, kept as received ([`FieldLines`]): written first, as a
    /// map holding them would have them first.
    as_received: Option<&'a FieldLines>,
}

/// Writes the response head into `out` and gives the body's framing. The fields are drained
/// from `parts` (its map is kept for reuse).
fn encode_head(
    out: &mut Vec<u8>,
    parts: &mut http::response::Parts,
    head: ResponseHead<'_>,
) -> Result<Encoder, BadHead> {
    let ResponseHead {
        method,
        mut length,
        keep_alive,
        mut as_received,
    } = head;
    let mut status = parts.status;
    let mut last = !keep_alive;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        last = true;
    } else if status.is_informational() {
        // hyper cannot answer with an interim status: a 500 without fields.
        status = StatusCode::INTERNAL_SERVER_ERROR;
        parts.version = Version::HTTP_11;
        parts.headers.clear();
        parts.extensions.clear();
        as_received = None;
        length = None;
        last = true;
    }
    let http10 = parts.version == Version::HTTP_10;
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    if !http10 && status == StatusCode::OK && reason.is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        match reason {
            Some(reason) => out.extend_from_slice(reason.as_bytes()),
            None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    let can_chunk = !http10 && can_have_body(method, status);
    let mut kind = Kind::Length(0);
    let mut wrote_len = false;
    let mut wrote_date = false;
    let mut declared: Option<Vec<HeaderName>> = None;
    let mut previous_length = None;
    // A joined line (`Content-Length`, `Transfer-Encoding`, `Connection`, `Trailer`) is open.
    let mut open = false;
    let mut add_chunked = false;
    let mut current: Option<HeaderName> = None;
    if let Some(fields) = as_received {
        // What the loop below does with a map's `Content-Length` and `Date` (the fields
        // have no other field it treats apart: `FieldLines::check`).
        let with_length = length.is_some() || *method == Method::HEAD;
        wrote_date = fields.write(out, with_length);
        wrote_len = with_length;
        match length {
            Some(Some(known)) => kind = Kind::Length(known),
            Some(None) => kind = Kind::Length(fields.content_length()),
            None => {}
        }
    }
    for (name, value) in parts.headers.drain() {
        if let Some(name) = name {
            if open {
                out.extend_from_slice(if add_chunked {
                    b", chunked\r\n"
                } else {
                    b"\r\n"
                });
                open = false;
            }
            current = Some(name);
        }
        let Some(name) = current.as_ref() else {
            continue;
        };
        match *name {
            header::CONTENT_LENGTH => {
                if wrote_len && !open {
                    return Err(BadHead);
                }
                match length {
                    Some(Some(known)) => {
                        if !open {
                            kind = Kind::Length(known);
                            out.extend_from_slice(b"content-length: ");
                            out.extend_from_slice(value.as_bytes());
                            wrote_len = true;
                            open = true;
                        }
                        continue;
                    }
                    Some(None) => {
                        let Some(declared_length) = digits(value.as_bytes()) else {
                            return Err(BadHead);
                        };
                        match previous_length {
                            Some(previous) if previous != declared_length => return Err(BadHead),
                            Some(_) => {}
                            None => {
                                kind = Kind::Length(declared_length);
                                out.extend_from_slice(b"content-length: ");
                                out.extend_from_slice(value.as_bytes());
                                wrote_len = true;
                                open = true;
                                previous_length = Some(declared_length);
                            }
                        }
                        continue;
                    }
                    // No body: the field is kept only for HEAD (it tells the length a GET
                    // would have).
                    None if *method == Method::HEAD => wrote_len = true,
                    None => continue,
                }
            }
            header::TRANSFER_ENCODING => {
                if wrote_len && !open {
                    return Err(BadHead);
                }
                if !can_chunk {
                    continue;
                }
                wrote_len = true;
                add_chunked = !is_chunked(&value);
                if open {
                    out.extend_from_slice(b", ");
                } else {
                    kind = Kind::Chunked(None);
                    open = true;
                    out.extend_from_slice(b"transfer-encoding: ");
                }
                out.extend_from_slice(value.as_bytes());
                continue;
            }
            header::CONNECTION => {
                if !last && connection_close(&value) {
                    last = true;
                }
                if open {
                    out.extend_from_slice(b", ");
                } else {
                    open = true;
                    out.extend_from_slice(b"connection: ");
                }
                out.extend_from_slice(value.as_bytes());
                continue;
            }
            header::DATE => wrote_date = true,
            header::TRAILER => {
                if !can_chunk {
                    continue;
                }
                if open {
                    out.extend_from_slice(b", ");
                } else {
                    open = true;
                    out.extend_from_slice(b"trailer: ");
                }
                out.extend_from_slice(value.as_bytes());
                if let Ok(text) = value.to_str() {
                    declared
                        .get_or_insert_with(Vec::new)
                        .extend(text.split(',').filter_map(|name| {
                            HeaderName::from_bytes(name.trim().as_bytes()).ok()
                        }));
                }
                continue;
            }
            _ => {}
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if open {
        out.extend_from_slice(if add_chunked {
            b", chunked\r\n"
        } else {
            b"\r\n"
        });
    }
    if !wrote_len {
        kind = match length {
            Some(None) if !can_chunk => Kind::Close,
            Some(None) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Kind::Chunked(None)
            }
            None | Some(Some(0)) => {
                if can_have_content_length(status) && *method != Method::HEAD {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Kind::Length(0)
            }
            Some(Some(_)) if !can_have_content_length(status) => Kind::Length(0),
            Some(Some(known)) => {
                let _ = std::io::Write::write_fmt(out, format_args!("content-length: {known}\r\n"));
                Kind::Length(known)
            }
        };
    }
    if !can_have_body(method, status) {
        kind = Kind::Length(0);
    }
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        date::put(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if let (Kind::Chunked(fields), Some(declared)) = (&mut kind, declared) {
        *fields = Some(declared);
    }
    if kind == Kind::Close {
        last = true;
    }
    Ok(Encoder { kind, last })
}

/// Whether a `Transfer-Encoding` value ends in `chunked`.
fn is_chunked(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|text| {
        text.rsplit(',')
            .next()
            .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
    })
}

/// The `date` field's value (RFC 9110 §5.6.7), formatted once a second per thread.
mod date {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        /// The formatted date, and the moment of the monotonic clock when its second ends.
        static NOW: RefCell<(Option<tokio::time::Instant>, String)> =
            const { RefCell::new((None, String::new())) };
    }

    /// Appends the current time as an HTTP date. The wall clock is read once a second (when
    /// the monotonic clock, [`super::super::clock`], says the second written last has
    /// ended): a step of the wall clock shows within a second, as a formatted date would.
    pub(super) fn put(out: &mut Vec<u8>) {
        let now = super::super::clock::now();
        NOW.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0.is_none_or(|ends| now >= ends) {
                let wall = SystemTime::now();
                let into_second = wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(Duration::ZERO, |since| {
                        Duration::from_nanos(u64::from(since.subsec_nanos()))
                    });
                cached.0 = Some(now + (Duration::from_secs(1) - into_second));
                cached.1 = httpdate::fmt_http_date(wall);
            }
            out.extend_from_slice(cached.1.as_bytes());
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The `date` written now, read back.
        fn date_now() -> SystemTime {
            let mut out = Vec::new();
            put(&mut out);
            httpdate::parse_http_date(std::str::from_utf8(&out).unwrap()).unwrap()
        }

        #[test]
        fn the_date_is_the_wall_clocks_second_and_moves_with_it() {
            // Read once a second: it must still be the wall clock's second, never one behind.
            for _ in 0..3 {
                let before = SystemTime::now();
                let written = date_now();
                let after = SystemTime::now();
                let second =
                    |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
                let written = second(written);
                assert!(
                    (second(before)..=second(after)).contains(&written),
                    "{written} outside {}..={}",
                    second(before),
                    second(after)
                );
                std::thread::sleep(Duration::from_millis(600));
            }
        }
    }
}

/// What [`first_request_from_bytes`] found at the front of a client's bytes.
#[derive(Debug, PartialEq)]
pub enum FirstRequest {
    /// Served here: method, target, the fields in order, the body, and how many of the
    /// input's bytes it took.
    Served {
        method: String,
        target: String,
        fields: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        taken: usize,
    },
    /// Handed to hyper: the bytes hyper gets, from the request on (to the input's end).
    HandedOver(Vec<u8>),
    /// The input ended before a head did.
    Incomplete,
}

/// Reads the first request of `bytes` as [`serve`] reads a connection's (the same parse, the
/// same re-parse rule, the same limits and read sizes), each read giving at most `piece`
/// bytes (at least 1) of what is left, as a socket that has them all would: for the fuzz
/// target (`fuzz/fuzz_targets/request_head.rs`) and tests. However the bytes are split, the
/// result is the same, and every byte is either taken or handed over.
pub fn first_request_from_bytes(bytes: &[u8], piece: usize, limits: Limits) -> FirstRequest {
    let piece = piece.max(1);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut spans = Vec::new();
    let mut names = Remembered::default();
    let mut fields = HeaderMap::new();
    // A connection's first request: hyper's first read size.
    let mut reader = HeadReader::with_room(READ_ROOM);
    // What hyper gets: `head` (already out of the buffer), the buffer, and what is not read.
    let handed = |head: Option<Bytes>, buf: &BytesMut, fed: usize| {
        let mut handed = head.map(|h| h.to_vec()).unwrap_or_default();
        handed.extend_from_slice(buf);
        handed.extend_from_slice(bytes.get(fed..).unwrap_or_default());
        FirstRequest::HandedOver(handed)
    };
    loop {
        let (room, body) = match reader.next(&mut buf, &mut spans, &mut names, &mut fields, &limits)
        {
            Next::Head(head) => {
                let (parts, body) = head.request.into_parts();
                let body = match body {
                    ClientBody::Received(body) | ClientBody::Buffered(body) => {
                        body.map(|b| b.to_vec()).unwrap_or_default()
                    }
                    ClientBody::Streaming(_) => Vec::new(),
                };
                return FirstRequest::Served {
                    method: parts.method.to_string(),
                    target: parts.uri.to_string(),
                    fields: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                        .collect(),
                    body,
                    taken: fed - buf.len(),
                };
            }
            Next::Refer(head) => return handed(head, &buf, fed),
            Next::More(room) => (room, false),
            Next::Body(room) => (room, true),
        };
        // One read, as `poll_fill` reads: at most one byte more than asked, and `piece`.
        let n = piece.min(room.max(1) + 1).min(bytes.len() - fed);
        buf.extend_from_slice(bytes.get(fed..fed + n).unwrap_or_default());
        fed += n;
        if n == 0 {
            // The input's end: a head cut off, or a body not there (hyper's).
            return if body {
                handed(None, &buf, fed)
            } else {
                FirstRequest::Incomplete
            };
        }
    }
}

/// A connection handed to hyper: the bytes already read from it, then the connection (a
/// socket, or a TLS stream).
pub struct Replay<I = TcpStream> {
    read: Bytes,
    io: I,
    /// Told of reads and writes that move bytes, for an idle timeout ([`Replay::watched`]).
    activity: Option<Activity>,
}

impl<I> Replay<I> {
    /// `read` comes before what `io` has not given yet.
    pub fn new(read: Bytes, io: I) -> Self {
        Replay {
            read,
            io,
            activity: None,
        }
    }

    /// As [`Replay::new`], telling `activity` of every read or write that moves bytes (the
    /// idle timeout of [`super::drain::Stop::watch`]).
    pub fn watched(read: Bytes, io: I, activity: Activity) -> Self {
        Replay {
            read,
            io,
            activity: Some(activity),
        }
    }

    fn moved(&self) {
        if let Some(activity) = &self.activity {
            activity.moved();
        }
    }

    /// `written`, told to the activity when it moved bytes.
    fn wrote(&self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        written
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Replay<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.read.is_empty() {
            let n = this.read.len().min(buf.remaining());
            buf.put_slice(&this.read.split_to(n));
            this.moved();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved();
        }
        read
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Replay<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    //! The lean server against hyper's own HTTP/1 server: the same request bytes, the same
    //! response from the service, the same bytes on the wire (the `date` value aside).

    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use http_body::{Frame, SizeHint};
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use crate::server::drain::Drain;

    /// A response body of given frames and a chosen size hint (`None`: unknown).
    struct Frames {
        frames: VecDeque<Result<Frame<Bytes>, io::Error>>,
        exact: Option<u64>,
        /// An upstream's fields kept as received, as a proxied answer's body carries them.
        as_received: Option<FieldLines>,
    }

    impl CarriesFields for Frames {
        fn fields_as_received(&self) -> Option<&FieldLines> {
            self.as_received.as_ref()
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.get_mut().frames.pop_front())
        }

        fn is_end_stream(&self) -> bool {
            self.frames.is_empty()
        }

        fn size_hint(&self) -> SizeHint {
            self.exact
                .map_or_else(SizeHint::default, SizeHint::with_exact)
        }
    }

    /// One response the service gives.
    #[derive(Clone, Default)]
    struct Answer {
        status: u16,
        http10: bool,
        reason: Option<&'static str>,
        fields: Vec<(&'static str, &'static str)>,
        data: Vec<&'static str>,
        trailers: Vec<(&'static str, &'static str)>,
        /// The body fails after its data.
        fails: bool,
        /// The size hint; `None`: the data's length when there is one piece, else unknown.
        exact: Option<Option<u64>>,
        /// An upstream's answer head whose fields come before `fields`: kept as received
        /// for the lean server ([`FieldLines`]), in the map for hyper's.
        upstream: Option<&'static [u8]>,
    }

    impl Answer {
        fn ok(data: &'static str) -> Self {
            Answer {
                status: 200,
                data: vec![data],
                ..Answer::default()
            }
        }

        /// A 200 whose body comes in two pieces (`hel`, `lo`), its length not known.
        fn split() -> Self {
            Answer {
                data: vec!["hel", "lo"],
                ..Answer::ok("")
            }
        }

        fn response(&self) -> Response<Frames> {
            self.response_for(false)
        }

        /// The response for the lean server (`lean`) or for hyper's.
        fn response_for(&self, lean: bool) -> Response<Frames> {
            let mut frames: VecDeque<_> = self
                .data
                .iter()
                .filter(|d| !d.is_empty() || self.data.len() > 1)
                .map(|d| Ok(Frame::data(Bytes::from_static(d.as_bytes()))))
                .collect();
            if !self.trailers.is_empty() {
                let mut map = HeaderMap::new();
                for (name, value) in &self.trailers {
                    map.append(
                        HeaderName::from_static(name),
                        HeaderValue::from_static(value),
                    );
                }
                frames.push_back(Ok(Frame::trailers(map)));
            }
            if self.fails {
                frames.push_back(Err(io::Error::other("upstream reset")));
            }
            let exact = self.exact.unwrap_or(match self.data.as_slice() {
                [one] => Some(one.len() as u64),
                _ => None,
            });
            let mut response = Response::new(Frames {
                frames,
                exact,
                as_received: None,
            });
            if let Some(head) = self.upstream {
                let kept = crate::proxy::h1::head_from_bytes(head, &Method::GET, lean)
                    .unwrap()
                    .unwrap();
                assert_eq!(kept.as_received.is_some(), lean, "kept as received");
                *response.headers_mut() = kept.headers;
                response.body_mut().as_received = kept.as_received;
            }
            *response.status_mut() = StatusCode::from_u16(self.status).unwrap();
            if self.http10 {
                *response.version_mut() = Version::HTTP_10;
            }
            if let Some(reason) = self.reason {
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
            }
            for (name, value) in &self.fields {
                response.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            response
        }
    }

    /// What the service saw of a request: method, target, version, fields in order.
    type Seen = (String, String, Version, Vec<(String, Vec<u8>)>);

    fn seen<B>(request: &Request<B>) -> Seen {
        (
            request.method().to_string(),
            request.uri().to_string(),
            request.version(),
            request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    const LIMITS: Limits = Limits {
        max_header_bytes: 8 * 1024,
        max_headers: 100,
        header_timeout: Duration::from_secs(5),
    };

    /// Sends `request` to a server and reads until it closes or goes quiet: the bytes (the
    /// `date` value masked) and whether it closed.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> (String, bool) {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(request).await.unwrap();
        let mut got = Vec::new();
        let closed = loop {
            let mut piece = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(300), client.read(&mut piece)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => got.extend_from_slice(&piece[..n]),
                Err(_) => break false,
            }
        };
        let text = String::from_utf8_lossy(&got).into_owned();
        let masked = text
            .split("\r\n")
            .map(|line| match line.strip_prefix("date: ") {
                Some(_) => "date: <now>",
                None => line,
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        (masked, closed)
    }

    /// `request` through hyper's HTTP/1 server answering `answer` to every request.
    async fn through_hyper(request: &[u8], answer: &Answer) -> (String, bool, Vec<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (answer.clone(), requests.clone());
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |request: Request<_>| {
                log.lock().unwrap().push(seen(&request));
                let response = answer.response();
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
        let (text, closed) = exchange(addr, request).await;
        server.abort();
        let seen = requests.lock().unwrap().clone();
        (text, closed, seen)
    }

    /// `request` through the lean server answering `answer` to every request.
    async fn through_lean(request: &[u8], answer: &Answer) -> (String, bool, Vec<Seen>, bool) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (answer.clone(), requests.clone());
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            let drain = Drain::new();
            let stop = drain.watcher();
            let ended = serve_with(io, LIMITS, &stop, |request| {
                log.lock().unwrap().push(seen(&request));
                let response = answer.response_for(true);
                async move { Ok::<_, Infallible>(response) }
            })
            .await;
            matches!(ended, Ended::HandOver { .. })
        });
        let (text, closed) = exchange(addr, request).await;
        let handed_over = tokio::time::timeout(Duration::from_secs(1), server)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let seen = requests.lock().unwrap().clone();
        (text, closed, seen, handed_over)
    }

    const GET: &[u8] = b"GET /pets?id=1 HTTP/1.1\r\nHost: example\r\n\r\n";

    /// Every response shape is written byte for byte as hyper writes it, and the connection
    /// is kept or closed as hyper keeps or closes it.
    #[tokio::test]
    async fn responses_are_written_as_hyper_writes_them() {
        let cases: Vec<(&str, &[u8], Answer)> = vec![
            ("a known length", GET, Answer::ok("hello")),
            ("an empty body", GET, Answer::ok("")),
            (
                "the response's own Content-Length",
                GET,
                Answer {
                    fields: vec![("content-length", "5"), ("x-a", "1")],
                    ..Answer::ok("hello")
                },
            ),
            (
                "repeated fields, an unknown status, no body",
                GET,
                Answer {
                    status: 599,
                    fields: vec![("x-a", "1"), ("x-b", "2"), ("x-a", "3"), ("set-cookie", "c=1")],
                    data: vec![],
                    ..Answer::default()
                },
            ),
            (
                "a custom reason phrase",
                GET,
                Answer {
                    status: 404,
                    reason: Some("Nothing Here"),
                    ..Answer::ok("gone")
                },
            ),
            (
                "an unknown length: chunked",
                GET,
                Answer {
                    data: vec!["hel", "", "lo"],
                    ..Answer::ok("")
                },
            ),
            (
                "a declared length with an unknown size hint",
                GET,
                Answer {
                    fields: vec![("content-length", "5")],
                    ..Answer::split()
                },
            ),
            (
                "a body longer than its declared length is cut",
                GET,
                Answer {
                    data: vec!["hel", "lo world"],
                    fields: vec![("content-length", "5")],
                    ..Answer::ok("")
                },
            ),
            (
                "a body shorter than its length closes the connection",
                GET,
                Answer {
                    exact: Some(Some(10)),
                    ..Answer::split()
                },
            ),
            (
                "conflicting lengths: no answer",
                GET,
                Answer {
                    fields: vec![("content-length", "5"), ("content-length", "6")],
                    ..Answer::split()
                },
            ),
            (
                "a coding before chunked",
                GET,
                Answer {
                    fields: vec![("transfer-encoding", "gzip")],
                    ..Answer::split()
                },
            ),
            (
                "trailers declared and asked for",
                b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n",
                Answer {
                    fields: vec![("trailer", "x-sum, x-other")],
                    trailers: vec![("x-sum", "9"), ("x-undeclared", "1"), ("content-type", "no")],
                    ..Answer::split()
                },
            ),
            (
                "trailers not asked for",
                GET,
                Answer {
                    fields: vec![("trailer", "x-sum")],
                    trailers: vec![("x-sum", "9")],
                    ..Answer::split()
                },
            ),
            (
                "trailers not declared",
                b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n",
                Answer {
                    trailers: vec![("x-sum", "9")],
                    ..Answer::split()
                },
            ),
            (
                "HEAD keeps the length of the body it does not send",
                b"HEAD /pets HTTP/1.1\r\nHost: x\r\n\r\n",
                Answer::ok("hello"),
            ),
            (
                "HEAD with a declared length and no body",
                b"HEAD /pets HTTP/1.1\r\nHost: x\r\n\r\n",
                Answer {
                    fields: vec![("content-length", "42")],
                    data: vec![],
                    ..Answer::default()
                },
            ),
            (
                "204",
                GET,
                Answer {
                    status: 204,
                    fields: vec![("content-length", "0")],
                    data: vec![],
                    ..Answer::default()
                },
            ),
            (
                "304 with a length hint",
                GET,
                Answer {
                    status: 304,
                    fields: vec![("etag", "\"x\"")],
                    ..Answer::ok("stale")
                },
            ),
            (
                "an interim status becomes a 500",
                GET,
                Answer {
                    status: 103,
                    fields: vec![("link", "</a>")],
                    ..Answer::ok("x")
                },
            ),
            (
                "an HTTP/1.0 response of unknown length is close-delimited",
                GET,
                Answer {
                    http10: true,
                    ..Answer::split()
                },
            ),
            (
                "the response's own date",
                GET,
                Answer {
                    fields: vec![("date", "Sun, 06 Nov 1994 08:49:37 GMT")],
                    ..Answer::ok("x")
                },
            ),
            (
                "the response says close",
                GET,
                Answer {
                    fields: vec![("connection", "keep-alive"), ("connection", "close")],
                    ..Answer::ok("x")
                },
            ),
            (
                "the request says close",
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n",
                Answer {
                    fields: vec![("connection", "x-private")],
                    ..Answer::ok("x")
                },
            ),
            (
                "a request's close among bytes that are not visible ASCII is not read",
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close, \xff\r\nTE: trailers, \xff\r\n\r\n",
                Answer {
                    fields: vec![("trailer", "x-sum")],
                    trailers: vec![("x-sum", "9")],
                    ..Answer::split()
                },
            ),
            (
                "a body that fails part-way",
                GET,
                Answer {
                    fails: true,
                    ..Answer::split()
                },
            ),
            (
                "pipelined requests, answered in order",
                b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n\r\n",
                Answer::ok("hello"),
            ),
            (
                "an upstream's fields kept as received",
                GET,
                Answer {
                    upstream: Some(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Mixed-Case:  spaced value \t\r\nSet-Cookie: a=1\r\n\r\n",
                    ),
                    ..Answer::ok("hello")
                },
            ),
            (
                "an upstream's fields kept as received, its own date, the gateway's field after them",
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                Answer {
                    upstream: Some(
                        b"HTTP/1.1 404 Not Found\nDate: Thu, 03 Dec 2026 10:00:00 GMT\nContent-Length: 4\nx-a: 1\n\n",
                    ),
                    status: 404,
                    fields: vec![("x-gateway", "1")],
                    ..Answer::ok("gone")
                },
            ),
            (
                "an upstream's fields kept as received, as the server writes them",
                GET,
                Answer {
                    upstream: Some(
                        b"HTTP/1.1 200 OK\r\nx-backend: bench\r\ncontent-length: 5\r\ndate: Thu, 03 Dec 2026 15:07:52 GMT\r\n\r\n",
                    ),
                    ..Answer::ok("hello")
                },
            ),
            (
                "an upstream's fields kept as received, an empty body",
                GET,
                Answer {
                    upstream: Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n"),
                    ..Answer::ok("")
                },
            ),
            (
                "a large body",
                GET,
                Answer {
                    data: vec![LARGE, "end", LARGE],
                    ..Answer::ok("")
                },
            ),
        ];
        for (case, request, answer) in &cases {
            let (hyper_text, hyper_closed, hyper_seen) = through_hyper(request, answer).await;
            let (lean_text, lean_closed, lean_seen, handed_over) =
                through_lean(request, answer).await;
            assert!(!handed_over, "{case}: served, not handed over");
            assert_eq!(lean_text, hyper_text, "{case}: the bytes differ");
            assert_eq!(lean_closed, hyper_closed, "{case}: {lean_text}");
            assert_eq!(
                lean_seen, hyper_seen,
                "{case}: the service saw other requests"
            );
        }
    }

    const LARGE: &str = concat!(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );

    /// Requests reach the service as hyper gives them: method, target, version and fields.
    #[tokio::test]
    async fn requests_are_read_as_hyper_reads_them() {
        let requests: &[&[u8]] = &[
            b"GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nX-Many: 1\r\nx-many: 2\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET http://example.com/abs?q HTTP/1.1\r\nHost: other\r\n\r\n",
            b"PURGE /cache HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"DELETE /pets/1 HTTP/1.1\r\nHost: x\r\nX-Obs: caf\xc3\xa9\r\nX-Empty:\r\nX-Spaces:   padded   \r\n\r\n",
            b"GET / HTTP/1.1\nHost: bare-lf\n\n",
            b"get /lower HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
            b"PATCH /zeros HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n",
            // Long values, repeated, changed, moved and with obs-text on one connection
            // (`field_values` remembers them).
            b"GET /t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.cccccccccccccccc\r\nUser-Agent: a client of more than thirty-two bytes\r\n\r\n",
            b"GET /t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.cccccccccccccccc\r\nUser-Agent: a client of more than thirty-two bytes\r\n\r\n",
            b"GET /t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.dddddddddddddddd\r\nUser-Agent: a client of more than thirty-two bytes\r\n\r\n",
            b"GET /t HTTP/1.1\r\nUser-Agent: a client of more than thirty-two bytes\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.dddddddddddddddd\r\n\r\n",
            b"GET /t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.dddddddddddddddd\r\nUser-Agent: caf\xc3\xa9, a client of more than thirty-two bytes\r\n\r\n",
        ];
        for request in requests {
            let answer = Answer::ok("ok");
            let (hyper_text, _, hyper_seen) = through_hyper(request, &answer).await;
            let (lean_text, _, lean_seen, handed_over) = through_lean(request, &answer).await;
            let shown = String::from_utf8_lossy(request);
            assert!(!handed_over, "{shown}: served, not handed over");
            assert_eq!(hyper_seen.len(), 1, "{shown}");
            assert_eq!(lean_seen, hyper_seen, "{shown}");
            assert_eq!(lean_text, hyper_text, "{shown}");
        }
        // All of them, one after the other on one connection: the later heads are read with
        // the names and long values of the earlier ones remembered (`proxy::field_names`,
        // `field_values`), in other orders and spellings, and read the same.
        let all = requests.concat();
        let answer = Answer::ok("ok");
        let (hyper_text, _, hyper_seen) = through_hyper(&all, &answer).await;
        let (lean_text, _, lean_seen, handed_over) = through_lean(&all, &answer).await;
        assert!(!handed_over, "served, not handed over");
        assert_eq!(hyper_seen.len(), requests.len());
        assert_eq!(lean_seen, hyper_seen);
        assert_eq!(lean_text, hyper_text);
    }

    /// Heads this server does not take are left whole for hyper, and the bytes behind them
    /// too; requests served before such a head are answered first.
    #[tokio::test]
    async fn other_heads_are_left_to_hyper_with_every_byte() {
        let others: &[&[u8]] = &[
            b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\nhello",
            b"POST /p HTTP/1.1\r\nHost: x\r\ncontent-length: +0\r\n\r\n",
            b"GET /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ];
        for other in others {
            let mut buf = BytesMut::from(*other);
            let parsed = parse_request(
                &mut buf,
                &mut Vec::new(),
                &mut Remembered::default(),
                &mut HeaderMap::new(),
                100,
                8192,
            );
            let shown = String::from_utf8_lossy(other);
            match parsed {
                Parsed::Refer(None) => assert_eq!(&buf[..], *other, "{shown}: left whole"),
                Parsed::Refer(Some(head)) => {
                    let mut whole = head.to_vec();
                    whole.extend_from_slice(&buf);
                    assert_eq!(&whole[..], *other, "{shown}: given back whole");
                }
                Parsed::Head(_) | Parsed::Partial | Parsed::NeedBody(_) => {
                    panic!("{shown}: taken")
                }
            }
        }
        // Served, served, then handed over with every byte from the third request on.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            let drain = Drain::new();
            let stop = drain.watcher();
            serve_with(io, LIMITS, &stop, |_| async {
                Ok::<_, Infallible>(Answer::ok("x").response())
            })
            .await
        });
        let rest: &[u8] =
            b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /4 HTTP/1.1\r\n";
        let mut bytes =
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        bytes.extend_from_slice(rest);
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&bytes).await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        let Ended::HandOver { read, first, .. } = ended else {
            let mut answers = vec![0u8; 1024];
            let n = client.read(&mut answers).await.unwrap_or(0);
            panic!(
                "not handed over: {}",
                String::from_utf8_lossy(&answers[..n])
            );
        };
        assert!(!first);
        assert_eq!(&read[..], rest);
        let mut answers = vec![0u8; 1024];
        let n = client.read(&mut answers).await.unwrap();
        let answers = String::from_utf8_lossy(&answers[..n]);
        assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");
    }

    /// Serves the first connection to `listener`, `wait` after accepting it, answering every
    /// request `200`; the requests' paths and bodies as the service saw them (a body hyper
    /// streams: `<streaming>`).
    #[allow(clippy::type_complexity)]
    fn recording_server(
        listener: TcpListener,
        wait: Duration,
    ) -> (
        tokio::task::JoinHandle<Ended>,
        Arc<Mutex<Vec<(String, Bytes)>>>,
    ) {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let log = bodies.clone();
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            tokio::time::sleep(wait).await;
            let drain = Drain::new();
            let stop = drain.watcher();
            serve_with(io, LIMITS, &stop, |request: Request<ClientBody>| {
                let body = match request.body() {
                    ClientBody::Received(body) | ClientBody::Buffered(body) => {
                        body.clone().unwrap_or_default()
                    }
                    ClientBody::Streaming(_) => Bytes::from_static(b"<streaming>"),
                };
                log.lock()
                    .unwrap()
                    .push((request.uri().path().to_string(), body));
                async { Ok::<_, Infallible>(Answer::ok("x").response()) }
            })
            .await
        });
        (server, bodies)
    }

    /// A body of known length that is there with its head reaches the service whole; one
    /// still on its way is left to hyper with every byte read so far.
    #[tokio::test]
    async fn bodies_that_are_there_are_read_whole_and_others_left_to_hyper() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Every byte of the first three requests is there before anything is read.
        let (server, bodies) = recording_server(listener, Duration::from_millis(100));
        let large = "z".repeat(20_000);
        let whole = format!(
            "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
             POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
             PUT /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n{large}"
        );
        let later: &[u8] = b"POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab";
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(whole.as_bytes()).await.unwrap();
        let mut answers = Vec::new();
        while answers
            .windows(15)
            .filter(|w| w == b"HTTP/1.1 200 OK")
            .count()
            < 3
        {
            let mut piece = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut piece))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "answers: {}", String::from_utf8_lossy(&answers));
            answers.extend_from_slice(&piece[..n]);
        }
        client.write_all(later).await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        let Ended::HandOver { read, first, .. } = ended else {
            panic!("a body on its way is hyper's");
        };
        assert!(!first);
        assert_eq!(&read[..], later);
        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(
            bodies,
            vec![
                ("/1".to_string(), Bytes::from_static(b"hello")),
                ("/2".to_string(), Bytes::new()),
                ("/3".to_string(), Bytes::from(large)),
            ]
        );
    }

    /// A body written apart from its head (as Python's `http.client` writes them) is waited
    /// for a moment (`BODY_GRACE`): the request is this server's. One that does not come in
    /// time is hyper's, with every byte read. (The body comes 1 ms after its head; on a busy
    /// machine a stall may still let the moment pass, so five connections try and one must
    /// be served here: without the wait none is.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_written_apart_from_its_head_is_waited_for_a_moment() {
        /// Serves one connection; its requests' paths and bodies as the service saw them.
        async fn one(
            head: &[u8],
            body: Option<&[u8]>,
        ) -> (Ended, Vec<(String, Bytes)>, Vec<u8>, std::time::Duration) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (server, bodies) = recording_server(listener, Duration::ZERO);
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.set_nodelay(true).unwrap();
            let started = std::time::Instant::now();
            client.write_all(head).await.unwrap();
            if let Some(body) = body {
                tokio::time::sleep(Duration::from_millis(1)).await;
                client.write_all(body).await.unwrap();
            }
            // The answer (then the client leaves), or the server's end first (a request for
            // hyper is not answered here).
            let mut answer = Vec::new();
            let mut server = server;
            let ended = tokio::time::timeout(Duration::from_secs(5), async {
                let mut piece = [0u8; 1024];
                let reading = async {
                    while !answer.windows(15).any(|w| w == b"HTTP/1.1 200 OK") {
                        match client.read(&mut piece).await {
                            Ok(n) if n > 0 => answer.extend_from_slice(&piece[..n]),
                            _ => break,
                        }
                    }
                };
                tokio::select! {
                    ended = &mut server => ended,
                    () = reading => {
                        drop(client);
                        (&mut server).await
                    }
                }
            })
            .await
            .unwrap();
            let elapsed = started.elapsed();
            let bodies = bodies.lock().unwrap().clone();
            (ended.unwrap(), bodies, answer, elapsed)
        }

        let head = b"POST /apart HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
        let mut served_here = 0;
        for _ in 0..5 {
            let (ended, bodies, answer, _) = one(head, Some(b"hello")).await;
            match ended {
                Ended::Closed => {
                    assert_eq!(
                        bodies,
                        vec![("/apart".to_string(), Bytes::from_static(b"hello"))]
                    );
                    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
                    served_here += 1;
                }
                Ended::HandOver { read, .. } => {
                    // The head, and what came of the body by then.
                    assert!(bodies.is_empty());
                    let whole = [&head[..], b"hello"].concat();
                    assert!(read.len() >= head.len() && whole.starts_with(&read));
                }
            }
        }
        assert!(served_here > 0, "no body written apart was waited for");

        // The rest of this one does not come: after the moment, hyper's.
        let late: &[u8] = b"POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab";
        let (ended, bodies, _, elapsed) = one(late, None).await;
        let Ended::HandOver { read, first, .. } = ended else {
            panic!("a body still on its way after the moment is hyper's");
        };
        assert!(elapsed >= BODY_GRACE, "{elapsed:?}");
        assert!(first);
        assert_eq!(&read[..], late);
        assert!(bodies.is_empty());
    }

    /// A head is parsed again only once its end has arrived: an error in a head still
    /// arriving shows when hyper would show it (not before), and a head sent a byte at a time
    /// is not scanned over and over.
    #[tokio::test]
    async fn a_partial_head_is_parsed_again_only_once_it_ends() {
        assert!(!ends_a_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 20));
        assert!(ends_a_head(b"GET / HTTP/1.1\nHost: x\n\n", 24));
        assert!(!ends_a_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r", 25));
        // A bare LF ending the last field, then CRLF (httparse takes it, so does hyper).
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: x\n\r\n", 25));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let drain = Drain::new();
        let stop = drain.watcher();
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            serve_with(io, LIMITS, &stop, |_| async {
                Ok::<_, Infallible>(Answer::ok("x").response())
            })
            .await
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(b"Bad Header\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!server.is_finished(), "no verdict before the head ends");
        client.write_all(b"\r\n").await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(ended, Ended::HandOver { .. }),
            "hyper answers the bad head"
        );
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counted(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn the_stop_is_polled_again_only_once_it_came_or_for_another_waker() {
        use std::sync::atomic::Ordering;
        use std::task::Waker;

        let drain = super::super::drain::Drain::new();
        let stop = drain.watcher();
        let mut waiter = stop.clone();
        let stopped = stop_signal(&mut waiter);
        let mut stopped = std::pin::pin!(stopped);
        let polls = std::cell::Cell::new(0);
        let counted = std::future::poll_fn(|cx| {
            polls.set(polls.get() + 1);
            stopped.as_mut().poll(cx)
        });
        let counted = std::pin::pin!(counted);
        let mut signal = Signal::new(counted, &stop);
        let (first, second) = (Arc::new(Counted::default()), Arc::new(Counted::default()));
        let first_waker = Waker::from(first.clone());
        let second_waker = Waker::from(second.clone());
        let mut first_cx = Context::from_waker(&first_waker);
        let mut second_cx = Context::from_waker(&second_waker);

        assert!(!signal.poll(&mut first_cx));
        assert!(!signal.poll(&mut first_cx));
        assert!(!signal.poll(&mut first_cx));
        assert_eq!(
            polls.get(),
            1,
            "the future holds the waker: not polled again"
        );
        // Another waker: the future must hold that one.
        assert!(!signal.poll(&mut second_cx));
        assert_eq!(polls.get(), 2);
        // The stop wakes the waker held, and the next poll sees it.
        let shutdown = drain.shutdown();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut noop = Context::from_waker(Waker::noop());
        assert!(shutdown.as_mut().poll(&mut noop).is_pending());
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(signal.poll(&mut second_cx));
        assert_eq!(polls.get(), 3);
        // Once fired, always fired, without polling.
        assert!(signal.poll(&mut first_cx));
        assert_eq!(polls.get(), 3);
    }

    /// tokio's cooperative budget may be spent when a connection starts waiting for a head:
    /// the stop's future must still take the task's waker then, since [`Signal`] polls it
    /// again only when the stop may have come.
    #[tokio::test]
    async fn the_stop_reaches_a_connection_that_began_waiting_with_its_budget_spent() {
        use std::sync::atomic::Ordering;
        use std::task::Waker;

        let drain = super::super::drain::Drain::new();
        let stop = drain.watcher();
        let mut waiter = stop.clone();
        let stopped = stop_signal(&mut waiter);
        let stopped = std::pin::pin!(stopped);
        let mut signal = Signal::new(stopped, &stop);
        let counted = Arc::new(Counted::default());
        let waker = Waker::from(counted.clone());
        std::future::poll_fn(|cx| {
            while tokio::task::coop::has_budget_remaining() {
                let spend = std::pin::pin!(tokio::task::coop::consume_budget());
                let _ = spend.poll(cx);
            }
            let mut counted_cx = Context::from_waker(&waker);
            assert!(!signal.poll(&mut counted_cx));
            assert!(!signal.poll(&mut counted_cx));
            Poll::Ready(())
        })
        .await;
        let before = counted.0.load(Ordering::SeqCst);
        let shutdown = drain.shutdown();
        let mut shutdown = std::pin::pin!(shutdown);
        assert!(shutdown
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        assert!(
            counted.0.load(Ordering::SeqCst) > before,
            "the stop woke the waiting connection"
        );
        assert!(signal.poll(&mut Context::from_waker(&waker)));
    }

    /// While a body comes in pieces its head is not parsed again: a piece only says how much
    /// more is needed (a head spoilt after its first parse still reads as a body being
    /// waited for), and the head is parsed once the whole request is there.
    #[test]
    fn a_head_is_parsed_once_however_many_pieces_its_body_comes_in() {
        let (mut spans, mut names, mut fields) =
            (Vec::new(), Remembered::default(), HeaderMap::new());
        let head = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n";
        let mut next = |reader: &mut HeadReader, buf: &mut BytesMut| {
            reader.next(buf, &mut spans, &mut names, &mut fields, &LIMITS)
        };
        // A whole request, its body in pieces.
        let mut reader = HeadReader::with_room(READ_ROOM);
        let mut buf = BytesMut::from(&head[..]);
        assert!(matches!(next(&mut reader, &mut buf), Next::Body(4)));
        for (piece, more) in [(&b"a"[..], 3), (b"bc", 1)] {
            buf.extend_from_slice(piece);
            assert!(matches!(next(&mut reader, &mut buf), Next::Body(n) if n == more));
        }
        buf.extend_from_slice(b"d");
        let Next::Head(parsed) = next(&mut reader, &mut buf) else {
            panic!("the whole request reads as a head with its body");
        };
        assert!(
            matches!(parsed.request.body(), ClientBody::Received(Some(body)) if body == "abcd")
        );
        // The head spoilt after its first parse: the pieces do not parse it again.
        let mut reader = HeadReader::with_room(READ_ROOM);
        let mut buf = BytesMut::from(&head[..]);
        assert!(matches!(next(&mut reader, &mut buf), Next::Body(4)));
        buf[0] = b'\x01';
        buf.extend_from_slice(b"abc");
        assert!(matches!(next(&mut reader, &mut buf), Next::Body(1)));
        buf.extend_from_slice(b"d");
        assert!(
            matches!(next(&mut reader, &mut buf), Next::Refer(_)),
            "parsed again once whole"
        );
    }

    /// A client that sends its request and ends its stream gets no answer (hyper drops the
    /// request), and one that goes away while a response streams ends the response.
    #[tokio::test]
    async fn a_client_that_ends_its_stream_is_not_served() {
        for half_close in [true, false] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let drain = Drain::new();
            let stop = drain.watcher();
            let served = Arc::new(Mutex::new(0));
            let count = served.clone();
            let server = tokio::spawn(async move {
                let (io, _) = listener.accept().await.unwrap();
                // The request, and the end of the stream, are there before anything is read.
                tokio::time::sleep(Duration::from_millis(100)).await;
                serve_with(io, LIMITS, &stop, |_| {
                    let count = count.clone();
                    // A body that gives one piece, then nothing more, ever.
                    let body = Frames {
                        frames: VecDeque::from([Ok(Frame::data(Bytes::from_static(b"tick")))]),
                        exact: None,
                        as_received: None,
                    };
                    let endless = Chain(body, Endless);
                    async move {
                        *count.lock().unwrap() += 1;
                        Ok::<_, Infallible>(Response::new(endless))
                    }
                })
                .await
            });
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(GET).await.unwrap();
            if half_close {
                client.shutdown().await.unwrap();
            } else {
                let mut piece = [0u8; 512];
                let n = client.read(&mut piece).await.unwrap();
                assert!(piece[..n].ends_with(b"4\r\ntick\r\n"), "{:?}", &piece[..n]);
                drop(client);
            }
            let ended = tokio::time::timeout(Duration::from_secs(3), server)
                .await
                .expect("the connection ends with the client's stream")
                .unwrap();
            assert!(matches!(ended, Ended::Closed));
            assert_eq!(
                *served.lock().unwrap(),
                usize::from(!half_close),
                "half close: {half_close}"
            );
        }
    }

    /// A client that ends its stream while the service waits for its answer is not served
    /// either: the socket is looked at while the service waits, not only before it starts.
    #[tokio::test]
    async fn a_client_that_ends_its_stream_while_the_answer_is_awaited_is_not_served() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let drain = Drain::new();
        let stop = drain.watcher();
        let answered = Arc::new(Mutex::new(false));
        let flag = answered.clone();
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            serve_with(io, LIMITS, &stop, |_| {
                let flag = flag.clone();
                async move {
                    // Longer than the client takes to end its stream.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    *flag.lock().unwrap() = true;
                    Ok::<_, Infallible>(Response::new(Frames {
                        frames: VecDeque::from([Ok(Frame::data(Bytes::from_static(b"late")))]),
                        exact: Some(4),
                        as_received: None,
                    }))
                }
            })
            .await
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(GET).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.shutdown().await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .expect("the connection ends with the client's stream")
            .unwrap();
        assert!(matches!(ended, Ended::Closed));
        assert!(
            !*answered.lock().unwrap(),
            "the service's future was dropped"
        );
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }

    /// One body's frames, then another's.
    struct Chain<A, B>(A, B);

    impl<A, B> CarriesFields for Chain<A, B> {}

    impl<A, B> Body for Chain<A, B>
    where
        A: Body<Data = Bytes, Error = io::Error> + Unpin,
        B: Body<Data = Bytes, Error = io::Error> + Unpin,
    {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            let this = self.get_mut();
            match Pin::new(&mut this.0).poll_frame(cx) {
                Poll::Ready(None) => Pin::new(&mut this.1).poll_frame(cx),
                other => other,
            }
        }
    }

    /// A body that never gives anything.
    struct Endless;

    impl CarriesFields for Endless {}

    impl Body for Endless {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Pending
        }
    }

    /// A head that does not come within the header timeout, a client that goes away while
    /// its request is served, and the stop while idle: the connection closes.
    #[tokio::test]
    async fn slow_heads_departed_clients_and_the_stop_close_the_connection() {
        let limits = Limits {
            header_timeout: Duration::from_millis(200),
            ..LIMITS
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let drain = Drain::new();
        let stop = drain.watcher();
        let served = Arc::new(Mutex::new(0));
        let count = served.clone();
        let server = tokio::spawn(async move {
            let mut ends = Vec::new();
            for _ in 0..3 {
                let (io, _) = listener.accept().await.unwrap();
                let count = count.clone();
                let started = std::time::Instant::now();
                let ended = serve_with(io, limits, &stop, move |request| {
                    let count = count.clone();
                    async move {
                        if request.uri().path() == "/slow" {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        *count.lock().unwrap() += 1;
                        Ok::<_, Infallible>(Answer::ok("x").response())
                    }
                })
                .await;
                ends.push((matches!(ended, Ended::Closed), started.elapsed()));
            }
            ends
        });
        // A head that never ends.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(3), slow.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "closed without an answer"
        );
        // A client that leaves while its request is served: the request is dropped.
        let mut gone = TcpStream::connect(addr).await.unwrap();
        gone.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        gone.shutdown().await.unwrap();
        drop(gone);
        // An idle keep-alive connection when the stop comes.
        let (text, _) = exchange(addr, GET).await;
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        let shutdown = tokio::spawn(drain.shutdown());
        let ends = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("every connection ended")
            .unwrap();
        assert!(ends.iter().all(|(closed, _)| *closed), "{ends:?}");
        assert!(
            ends[1].1 < Duration::from_secs(5),
            "the departed client's request was dropped"
        );
        assert_eq!(*served.lock().unwrap(), 1);
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .unwrap()
            .unwrap();
    }
}

#[cfg(test)]
mod reading {
    //! The first request's reading, whole and in pieces, over requests and mutations of them:
    //! the fuzz target's property, run here on a fixed set of inputs.

    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8 * 1024,
        max_headers: 100,
        header_timeout: Duration::from_secs(5),
    };

    /// Every byte is taken or handed over, and the pieces make no difference to what is
    /// served. (Whether a bad head is refused at once or only once its end has arrived does
    /// depend on them, in hyper as here: a head parsed partly is parsed again only when an
    /// end of head arrives.)
    fn check(input: &[u8]) {
        let whole = first_request_from_bytes(input, usize::MAX, LIMITS);
        for piece in [1, 2, 7, 100] {
            let trickled = first_request_from_bytes(input, piece, LIMITS);
            let refused_late = matches!(
                (&whole, &trickled),
                (FirstRequest::HandedOver(_), FirstRequest::Incomplete)
                    | (FirstRequest::Incomplete, FirstRequest::HandedOver(_))
            );
            assert!(
                whole == trickled || refused_late,
                "piece {piece}: {:?}\n{whole:?}\n{trickled:?}",
                String::from_utf8_lossy(input)
            );
        }
        match &whole {
            FirstRequest::Served { taken, body, .. } => {
                assert!(*taken <= input.len() && body.len() <= *taken);
            }
            FirstRequest::HandedOver(handed) => {
                assert!(
                    input.ends_with(handed),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
            FirstRequest::Incomplete => {}
        }
    }

    #[test]
    fn reads_grow_to_the_size_of_the_last_request_within_bounds() {
        // A bodiless request: hyper's first read size.
        assert_eq!(read_room_after(0), READ_ROOM);
        assert_eq!(read_room_after(300), READ_ROOM);
        assert_eq!(read_room_after(READ_ROOM), READ_ROOM);
        // A 10 KiB upload and its head: read in one go next time.
        assert_eq!(read_room_after(10 * 1024 + 180), 12 * 1024);
        assert_eq!(read_room_after(READ_ROOM + 1), 12 * 1024);
        // Never more than is kept between requests.
        assert_eq!(read_room_after(MAX_BODY + 4096), MAX_READ_ROOM);
        // The reader asks for that room, within the head's limit.
        let limits = Limits {
            max_header_bytes: 16 * 1024,
            ..LIMITS
        };
        let (mut buf, mut spans, mut fields) = (BytesMut::new(), Vec::new(), HeaderMap::new());
        let mut names = Remembered::default();
        let mut reader = HeadReader::with_room(read_room_after(10 * 1024 + 180));
        assert!(matches!(
            reader.next(&mut buf, &mut spans, &mut names, &mut fields, &limits),
            Next::More(room) if room == 12 * 1024
        ));
        let limits = Limits {
            max_header_bytes: 8 * 1024,
            ..limits
        };
        assert!(matches!(
            reader.next(&mut buf, &mut spans, &mut names, &mut fields, &limits),
            Next::More(room) if room == 8 * 1024
        ));
    }

    #[test]
    fn requests_and_their_mutations_read_the_same_in_any_pieces() {
        let seeds: &[&[u8]] = &[
            b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
            b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"\r\n :\t,0123456789aAzZ\x00\x7f\xff/?%-";
        for seed in seeds {
            check(seed);
            for _ in 0..400 {
                let mut input = seed.to_vec();
                for _ in 0..=(next() % 4) {
                    let at = (next() as usize) % (input.len() + 1);
                    match next() % 3 {
                        0 if at < input.len() => {
                            input.remove(at);
                        }
                        1 if at < input.len() => {
                            input[at] = alphabet[(next() as usize) % alphabet.len()];
                        }
                        _ => input.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    }
                }
                check(&input);
            }
        }
        // A head over the limit, and one of many small fields.
        let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        big.extend(std::iter::repeat_n(b'b', 9000));
        big.extend_from_slice(b"\r\n\r\n");
        check(&big);
        let many: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
        check(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
    }
}
