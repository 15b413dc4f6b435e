//! Forwarding to upstream endpoints over pooled keep-alive connections.

pub mod body;
pub mod field_lines;
pub mod field_names;
pub mod fields;
pub mod h1;
pub mod headers;
pub mod pool;
pub mod upstream;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use http::request::Parts;
use http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version,
};
use http_body::Body as _;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::config::{LimitsConfig, UpstreamConfig};
use crate::fault::{self, Fault};
use crate::telemetry::metrics::UpstreamFailure;
use body::{BodyLimits, BodySlot, BoxError, ClientBody, ClientBodyError};
use fields::{HostField, ProxyFields};
use pool::{ConnectError, LeanLease, Lease, PoolLimits, Spare, UpstreamBody};
use upstream::Upstream;

/// The upstream client: how connections are opened. The idle connections, and how long they
/// are kept, are in each URL's [`pool::HostPool`] ([`pool_limits`]).
#[derive(Clone)]
pub struct UpstreamClient {
    connector: pool::Connector<HttpsConnector<HttpConnector>>,
    /// Most bytes of a response head (`limits.max_upstream_header_bytes`), for the lean
    /// client ([`h1`]; hyper's has it in its settings).
    max_head: usize,
}

/// The bounds of every URL's idle connections, from `[upstream]`; `cores` idle stacks per
/// origin (1, or one per thread-per-core worker: [`PoolLimits::cores`]).
pub fn pool_limits(config: &UpstreamConfig, cores: usize) -> PoolLimits {
    PoolLimits {
        max_idle: config.pool_max_idle_per_host,
        idle_timeout: Duration::from_secs(config.pool_idle_timeout_seconds),
        cores,
    }
}

/// Builds the client: HTTP and HTTPS (rustls, trust from conf; HTTP/1.1, as ALPN says),
/// TCP_NODELAY, the connect timeout of `[upstream]`.
pub fn client(
    config: &UpstreamConfig,
    limits: &LimitsConfig,
    tls: rustls::ClientConfig,
) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let mut http1 = hyper::client::conn::http1::Builder::new();
    http1.max_buf_size(limits.max_upstream_header_bytes);
    UpstreamClient {
        connector: pool::Connector {
            transport: https,
            http1,
        },
        max_head: limits.max_upstream_header_bytes,
    }
}

impl UpstreamClient {
    /// Opens a plain TCP connection to an `http://` `origin` for the lean client, with the
    /// same connector (resolution, connect timeout, `TCP_NODELAY`) as hyper's connections.
    async fn connect_lean(&self, origin: http::Uri) -> Result<h1::Connection, ConnectError> {
        let io = self.connector.open(origin).await?;
        plain_tcp(io).map(h1::Connection::new).ok_or_else(|| {
            ConnectError::Transport("a TLS connection for a plain http:// endpoint".into())
        })
    }

    /// Hands an idle lean connection to hyper's client, for an exchange the lean client does
    /// not make (a chunked upload): every idle connection serves every kind of request.
    async fn adopt(
        &self,
        connection: h1::Connection,
        relay: Option<pool::Relay<Transport>>,
    ) -> Result<pool::HyperConnection, ConnectError> {
        let io = hyper_util::rt::TokioIo::new(connection.into_io());
        self.connector
            .handshake(hyper_rustls::MaybeHttpsStream::Http(io), relay)
            .await
    }
}

/// The connector's stream: TCP, or TLS over TCP.
type Transport = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

/// The TCP stream of a plain connection (for [`pool::Relay`]).
fn plain_tcp(io: Transport) -> Option<tokio::net::TcpStream> {
    match io {
        hyper_rustls::MaybeHttpsStream::Http(io) => Some(io.into_inner()),
        hyper_rustls::MaybeHttpsStream::Https(_) => None,
    }
}

/// An idle connection and what it kept, or nothing and a new [`Spare`] for a new one.
fn with_spare<T>(idle: Option<(T, Spare)>) -> (Option<T>, Spare) {
    match idle {
        Some((connection, spare)) => (Some(connection), spare),
        None => (None, Spare::default()),
    }
}

/// An idle connection taken for hyper's client: its own, or the lean client's.
enum Pooled {
    Hyper(pool::HyperConnection),
    Lean(h1::Connection),
}

/// Why one attempt failed: no connection, or the exchange on it.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{}", if *.reused { "request on a kept-alive connection failed" } else { "request failed" })]
    Exchange {
        /// hyper's error, or the lean client's ([`h1::Error`]).
        #[source]
        source: BoxError,
        /// The connection came from the idle pool (it had carried a response before).
        reused: bool,
    },
}

/// A forwarded response and what the access log needs to know about it.
pub struct Forwarded {
    /// The upstream's response (hop-by-hop headers already removed).
    pub response: Response<UpstreamBody>,
    /// The URL that answered.
    pub target: std::sync::Arc<str>,
    /// Time to the upstream's response headers.
    pub latency: Duration,
}

/// A failed forward: the fault to answer with and the last URL tried.
pub struct ForwardError {
    /// The client-facing fault.
    pub fault: Fault,
    /// The URL tried last.
    pub target: Option<std::sync::Arc<str>>,
    /// Who failed. For [`Blame::Client`] the request body was left unfinished, so the
    /// client's HTTP/1 connection must be closed after the answer.
    pub blame: Blame,
    /// What went wrong with the upstream (metrics), for [`Blame::Upstream`].
    pub failure: UpstreamFailure,
}

/// Who caused a failed forward ("errors know who failed": client 4xx, upstream 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client: its request body broke a limit, was malformed, or stopped.
    Client,
    /// The upstream: refused, closed, timed out or answered something unusable.
    Upstream,
}

/// Where a request goes: the endpoint, the raw path to put after the endpoint URL's path, the
/// raw query, and the time the upstream has to answer.
pub struct Destination<'a> {
    /// The endpoint.
    pub upstream: &'a Upstream,
    /// Raw path after the endpoint's path (WSO2: after the base path).
    pub rest: &'a str,
    /// Raw query, if any.
    pub query: Option<&'a str>,
    /// Deadline for the response head, all attempts together.
    pub timeout: Duration,
    /// The URL's host is the upstream request's `Host` (in the place of the head's `Host`
    /// field, if it has one); else the head's own, and the URL's host only when it has none.
    pub change_origin: bool,
    /// The proxy's own fields (`X-Forwarded-*`, trace context), written with the head (lean
    /// client) or inserted into its map (hyper's); their `host` is chosen here, per URL, from
    /// `change_origin`.
    pub fields: ProxyFields<'a>,
    /// The answer's fields may stay as received ([`field_lines`]): the lean HTTP/1.1 server
    /// writes the answer, and nothing on the way reads or changes its fields. Kept only for
    /// an answer the lean client reads, and only when the proxy passes its fields on
    /// unchanged ([`field_lines::FieldLines::check`]).
    pub fields_as_received: bool,
}

/// Sends the request to `destination`. The request's head is lent, not given (a move would
/// copy it into each future on the way), but it is spent all the same: its fields may be gone
/// (taken for the upstream request, or their map's room reused for the answer's), for the
/// caller only to drop.
///
/// - When a URL refuses the connection before any of the body was sent, the next URL is tried
///   (failover, and load balancing past a dead node); everything shares one deadline.
/// - When an idempotent request (RFC 9110 §9.2.2) fails on a *reused* pooled connection that
///   the upstream closed or reset before answering, and none of its body was sent (a body a
///   step read whole is sent whole again), it is sent once more on a new connection (RFC 9112
///   §9.3.1).
/// - A response that has no body by definition (to HEAD, 204, 304) but whose head announces
///   one (`Content-Length` other than 0, `Transfer-Encoding`) leaves the connection unfit for
///   reuse: it is closed, so late bytes can never be read as the next request's response.
/// - The upstream's protocol version never reaches the client: responses are HTTP/1.1 for
///   the client's connection to use as it negotiated.
/// - The connection goes back to the URL's pool when the response body ends (see
///   [`pool`]), unless the upstream closes it or it carried a HEAD or a resend.
pub async fn forward(
    client: &UpstreamClient,
    destination: Destination<'_>,
    parts: &mut Parts,
    body: ClientBody,
    body_limits: BodyLimits,
) -> Result<Forwarded, ForwardError> {
    let Destination {
        upstream,
        rest,
        query,
        timeout,
        change_origin,
        mut fields,
        fields_as_received,
    } = destination;
    // One clock read: the latency's start, the deadline's and the request body's.
    let now = crate::server::clock::now();
    let started = now.into_std();
    // A timeout too large for the clock (from a definition or conf) means about 30 years, not
    // an overflow panic.
    let deadline = now
        .checked_add(timeout)
        .or_else(|| now.checked_add(crate::server::timer::FAR_FUTURE))
        .unwrap_or(now);
    parts.version = Version::HTTP_11;
    let head = parts.method == Method::HEAD;
    if head {
        // A HEAD answer is bodiless whatever it announces, and a backend that sends the body
        // anyway would desynchronise the connection: it is used for this request only.
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let count = upstream.targets.len();
    let first = upstream.first();
    // A request without a body, or with one of known length (its `Content-Length`, when the
    // head has one, agrees; no `Transfer-Encoding`), goes to an `http://` URL over the lean
    // client (`h1`); every other exchange (a chunked upload, `https://`) over hyper's.
    let bodiless = body.is_end_stream();
    let upload_length = body.size_hint().exact().filter(|&length| {
        length > 0
            && !parts.headers.contains_key(header::TRANSFER_ENCODING)
            && h1::content_length(&parts.headers)
                .is_ok_and(|announced| announced.is_none_or(|announced| announced == length))
    });
    // hyper's client adds the `Content-Length` a body of known length has no field for.
    let length_field =
        upload_length.filter(|_| !parts.headers.contains_key(header::CONTENT_LENGTH));
    let slot = BodySlot::new(body, body_limits, now);
    let idempotent = parts.method.is_idempotent();
    let mut may_resend = idempotent;
    let mut fresh = false;
    let mut attempt = 0;
    loop {
        let target = &upstream.targets[(first + attempt) % count];
        // A target neither client can send (`http`'s rules) is refused before a connection is
        // taken or made, on either path.
        let request_target = target.checked(rest, query).map_err(|_| {
            upstream_error(fault::UPSTREAM_UNREACHABLE, target, UpstreamFailure::Other)
        })?;
        // The URL's host in the place of the head's `Host` (`changeOrigin`), else added when
        // the head has none (as hyper-util's client would make it, but rendered once per URL).
        fields.host = if change_origin {
            HostField::Replace(&target.host_header)
        } else {
            HostField::Default(&target.host_header)
        };
        let more = attempt + 1 < count;
        let plain = target.scheme == http::uri::Scheme::HTTP;
        // The lean client takes a request it can make when it has an idle connection, or when
        // hyper's client has none either (so that mixed traffic keeps one set of connections);
        // a resend (`fresh`) wants a new connection.
        let lean_kind = plain && (bodiless || upload_length.is_some());
        let lean_idle = (lean_kind && !fresh)
            .then(|| target.pool.checkout_lean(started))
            .flatten();
        let lean = lean_kind && (lean_idle.is_some() || fresh || !target.pool.has_idle());
        let (err, mut spare) = if lean {
            // The headers stay in `parts` (they are written, not moved): a resend reuses them.
            let (pooled, mut spare) = with_spare(lean_idle);
            let reused = pooled.is_some();
            let mut timer = spare.timer(deadline);
            let parts = &mut *parts;
            let fields = &fields;
            let exchange = async {
                let mut connection = match pooled {
                    Some(connection) => connection,
                    None => Box::pin(client.connect_lean(target.origin.clone())).await?,
                };
                // The request's header map (its room fits a head) takes the answer's fields once
                // the answer's head is complete; a resend before that still has it.
                // The body, if any, is sent while the answer is awaited (it may come first).
                let mut upload =
                    upload_length.map(|length| Box::new(h1::Upload::new(slot.attempt(), length)));
                let mut broken = None;
                let exchanged = async {
                    connection
                        .send(
                            &parts.method,
                            &request_target,
                            &parts.headers,
                            fields,
                            length_field,
                            upload.as_deref_mut(),
                        )
                        .await?;
                    connection
                        .read_head(
                            &parts.method,
                            client.max_head,
                            &mut parts.headers,
                            fields_as_received,
                            &mut upload,
                            &mut broken,
                        )
                        .await
                };
                match exchanged.await {
                    Ok(response) => Ok((connection, response, upload, broken.is_none())),
                    Err(err) => Err(AttemptError::Exchange {
                        source: err.into(),
                        reused,
                    }),
                }
            };
            match within(timer.as_mut(), deadline, exchange)
                .await
                .ok_or_else(|| timed_out(target))?
            {
                Ok((connection, mut response, upload, sent_cleanly)) => {
                    let reusable = !head
                        && !fresh
                        && sent_cleanly
                        && response.framing_reusable
                        && response.keeps_alive()
                        && !announces_a_body_it_cannot_have(
                            head,
                            response.status,
                            &response.headers,
                        );
                    spare.keep(timer);
                    let lease = reusable.then(|| LeanLease::new(spare, target.pool.clone()));
                    let body = h1::response_body(connection, &mut response, lease, upload);
                    let mut forwarded = Response::new(body);
                    *forwarded.status_mut() = response.status;
                    *forwarded.headers_mut() = response.headers;
                    if let Some(reason) = response.reason {
                        forwarded.extensions_mut().insert(reason);
                    }
                    headers::strip_hop_by_hop(forwarded.headers_mut());
                    return Ok(Forwarded {
                        response: forwarded,
                        target: target.display.clone(),
                        latency: crate::server::clock::since(started),
                    });
                }
                Err(err) => (err, spare),
            }
        } else {
            // hyper's client (HTTPS, uploads of unknown length), boxed: its code and its state
            // stay out of the lean path's.
            let exchange = hyper_attempt(HyperAttempt {
                client,
                target,
                request_target: &request_target,
                parts: &mut *parts,
                fields: &fields,
                slot: &slot,
                deadline,
                started,
                head,
                fresh,
                lean_kind,
                may_resend,
            });
            match exchange.await {
                Ok(forwarded) => return Ok(forwarded),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Attempt(err, spare)) => (err, spare),
            }
        };
        let untouched = slot.is_untouched();
        match after_failure(
            &err,
            upstream,
            target,
            may_resend && untouched,
            more && untouched,
        ) {
            Retry::Resend => {
                if !lean {
                    parts.headers = copied_headers(&mut spare.head);
                }
                may_resend = false;
                fresh = true;
            }
            Retry::Next => {
                attempt += 1;
                fresh = false;
            }
            Retry::Fail(error) => return Err(error),
        }
    }
}

/// A failed forward blamed on the upstream, for `target`.
fn upstream_error(
    fault: Fault,
    target: &upstream::Target,
    failure: UpstreamFailure,
) -> ForwardError {
    ForwardError {
        fault,
        target: Some(target.display.clone()),
        blame: Blame::Upstream,
        failure,
    }
}

/// The upstream deadline passed before the answer's head: 504.
fn timed_out(target: &upstream::Target) -> ForwardError {
    upstream_error(fault::UPSTREAM_TIMEOUT, target, UpstreamFailure::Timeout)
}

/// What one attempt over hyper's client needs from [`forward`].
struct HyperAttempt<'a> {
    client: &'a UpstreamClient,
    target: &'a upstream::Target,
    request_target: &'a upstream::CheckedTarget<'a>,
    parts: &'a mut Parts,
    fields: &'a ProxyFields<'a>,
    slot: &'a BodySlot,
    deadline: tokio::time::Instant,
    started: std::time::Instant,
    /// The request is a HEAD.
    head: bool,
    /// A resend: a new connection, not an idle one.
    fresh: bool,
    /// The lean client could make this request (an idle lean connection may serve it).
    lean_kind: bool,
    /// The request may be sent again if a reused connection fails.
    may_resend: bool,
}

/// How an attempt over hyper's client ended when it did not answer.
enum Failure {
    /// `forward` ends with this error (no other attempt).
    Final(ForwardError),
    /// The attempt failed; the next may reuse what the connection kept.
    Attempt(AttemptError, Spare),
}

impl From<ForwardError> for Failure {
    fn from(error: ForwardError) -> Self {
        Self::Final(error)
    }
}

/// One attempt of [`forward`] over hyper's client: an HTTPS URL, or an upload of unknown
/// length. Boxed, and behind a `dyn` so that its poll is not inlined into the caller's: the
/// lean path, which most requests take, keeps a smaller future and fewer lines of code in
/// the instruction cache (docs/benchmarks.md, "twenty-second pass"). This path allocates per
/// request anyway (the box replaced the exchange's own).
fn hyper_attempt<'a>(
    attempt: HyperAttempt<'a>,
) -> Pin<Box<dyn Future<Output = Result<Forwarded, Failure>> + Send + 'a>> {
    Box::pin(async move {
        let HyperAttempt {
            client,
            target,
            request_target,
            parts,
            fields,
            slot,
            deadline,
            started,
            head,
            fresh,
            lean_kind,
            may_resend,
        } = attempt;
        let plain = target.scheme == http::uri::Scheme::HTTP;
        let relay = || {
            plain.then(|| pool::Relay {
                pool: target.pool.clone(),
                into_tcp: plain_tcp,
            })
        };
        let uri = request_target.to_uri().map_err(|_| {
            upstream_error(fault::UPSTREAM_UNREACHABLE, target, UpstreamFailure::Other)
        })?;
        // An idle connection, with what it kept from its last exchange (a resend wants a
        // new one). Taking it does not wait: one turn of the runtime at most.
        let pooled = if fresh {
            None
        } else {
            match target.pool.checkout(started).await {
                Some((sender, spare)) => Some((Pooled::Hyper(sender), spare)),
                // None of its own: an idle connection of the lean client, if any.
                None if plain => target
                    .pool
                    .checkout_lean(started)
                    .map(|(connection, spare)| (Pooled::Lean(connection), spare)),
                None => None,
            }
        };
        let (pooled, mut spare) = with_spare(pooled);
        let reused = pooled.is_some();
        let mut timer = spare.timer(deadline);
        let head_copy = &mut spare.head;
        let parts = &mut *parts;
        let exchange = async {
            let mut connection = match pooled {
                Some(Pooled::Hyper(connection)) => connection,
                // Boxed too: hyper's handshake over an idle lean connection is a 2.4 KB
                // future, rarely needed, and it made every request's future that much
                // larger (the gateway's is copied once per request).
                Some(Pooled::Lean(connection)) => {
                    Box::pin(client.adopt(connection, relay())).await?
                }
                // Boxed: opening a connection (TCP, TLS) is a large future that the
                // request path, which finds an idle connection, would otherwise move
                // around.
                None => Box::pin(client.connector.connect(target.origin.clone(), relay())).await?,
            };
            // The head is built once a connection is at hand: a failed connect leaves it
            // untouched for the next URL. Its headers go; a copy of them stays only when
            // a resend may need it: an idempotent request on a reused connection, which
            // the upstream may have closed meanwhile (hyper gives a request back only
            // when it was not written, and the upstream may close after reading it).
            let mut request = Request::new(slot.attempt());
            *request.method_mut() = parts.method.clone();
            *request.version_mut() = parts.version;
            *request.uri_mut() = uri;
            *request.headers_mut() = std::mem::take(&mut parts.headers);
            *request.extensions_mut() = std::mem::take(&mut parts.extensions);
            // hyper's client sends a map: the proxy's fields and `Host` go into it (again
            // after a resend: applying them twice is applying them once). hyper's
            // connection-level client sends the head as it is.
            fields.apply(request.headers_mut());
            if may_resend && reused {
                head_copy.extend(
                    request
                        .headers()
                        .iter()
                        .map(|(name, value)| (name.clone(), value.clone())),
                );
            }
            match connection.sender.send_request(request).await {
                Ok(response) => Ok((connection, response)),
                Err(source) => Err(AttemptError::Exchange {
                    source: source.into(),
                    reused,
                }),
            }
        };
        match within(timer.as_mut(), deadline, exchange)
            .await
            .ok_or_else(|| timed_out(target))?
        {
            Ok((connection, mut response)) => {
                // Not kept: a HEAD's connection (sent with `Connection: close`), the one
                // connection of a resend (as before), one the upstream closes, and one
                // whose framing cannot be trusted any more.
                let reusable = !head
                    && !fresh
                    && pool::keeps_alive(response.version(), response.headers())
                    && !announces_a_body_it_cannot_have(
                        head,
                        response.status(),
                        response.headers(),
                    );
                spare.keep(timer);
                let mut lease = Some(Lease::new(
                    connection,
                    spare,
                    target.pool.clone(),
                    reusable,
                    lean_kind,
                ));
                if response.body().is_end_stream() {
                    if let Some(lease) = lease.take() {
                        lease.release();
                    }
                }
                headers::strip_hop_by_hop(response.headers_mut());
                *response.version_mut() = Version::HTTP_11;
                Ok(Forwarded {
                    response: pool::with_lease(response, lease),
                    target: target.display.clone(),
                    latency: crate::server::clock::since(started),
                })
            }
            Err(err) => Err(Failure::Attempt(err, spare)),
        }
    })
}

/// What follows a failed attempt.
enum Retry {
    /// Send the request again, on a new connection.
    Resend,
    /// Try the next URL.
    Next,
    /// Answer with this error.
    Fail(ForwardError),
}

/// Decides and logs what follows a failed attempt on `target`: the client's error when its
/// body broke a limit (the rest of it is unread), a resend when `may_resend` (an idempotent
/// request whose body was not touched) and a reused connection was lost, the next URL when
/// `more` URLs are left and this one could not be reached, else the upstream's error. Kept
/// out of the request path's code (`#[cold]`): it runs only when an attempt fails.
#[cold]
#[inline(never)]
fn after_failure(
    err: &AttemptError,
    upstream: &Upstream,
    target: &upstream::Target,
    may_resend: bool,
    more: bool,
) -> Retry {
    if let Some(client_error) = cause::<ClientBodyError>(err) {
        tracing::debug!(
            endpoint = %upstream.name,
            url = %target.display,
            "client error, upstream request aborted: {}",
            error_chain(client_error)
        );
        return Retry::Fail(ForwardError {
            fault: match client_error {
                ClientBodyError::TooLarge => fault::PAYLOAD_TOO_LARGE,
                ClientBodyError::Idle => fault::REQUEST_TIMEOUT,
                ClientBodyError::TooSlow => fault::REQUEST_BODY_TOO_SLOW,
                ClientBodyError::Broken(_) => fault::MALFORMED_BODY,
            },
            target: Some(target.display.clone()),
            blame: Blame::Client,
            failure: UpstreamFailure::Other,
        });
    }
    let reused = matches!(err, AttemptError::Exchange { reused: true, .. });
    let resend = may_resend && reused && connection_lost(err);
    let next = !resend && matches!(err, AttemptError::Connect(_)) && more;
    tracing::warn!(
        endpoint = %upstream.name,
        url = %target.display,
        "upstream request failed: {}{}",
        error_chain(err),
        if resend {
            "; the kept-alive connection was closed by the upstream, sending it again on a new connection"
        } else if next {
            "; trying the next URL"
        } else {
            ""
        }
    );
    if resend {
        Retry::Resend
    } else if next {
        Retry::Next
    } else {
        Retry::Fail(upstream_error(
            fault::UPSTREAM_UNREACHABLE,
            target,
            failure_kind(err),
        ))
    }
}

/// The metrics' kind of a failed upstream request, from its error chain: refused (or not
/// connectable), timed out, closed or reset before the head, TLS, or other.
fn failure_kind(err: &AttemptError) -> UpstreamFailure {
    let connect = matches!(err, AttemptError::Connect(_));
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return UpstreamFailure::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An io::Error's `source` skips the error it wraps: look at that one too.
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return UpstreamFailure::Tls;
            }
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return UpstreamFailure::Refused,
                TimedOut => return UpstreamFailure::Timeout,
                _ => {}
            }
        }
        current = e.source();
    }
    if connection_lost(err) {
        UpstreamFailure::Reset
    } else if connect {
        UpstreamFailure::Refused
    } else {
        UpstreamFailure::Other
    }
}

/// True for a response that cannot have a body (to HEAD, 1xx, 204, 304: RFC 9112 §6.3) whose
/// head nevertheless announces one. Whatever the upstream sends after it is not part of any
/// response, so the connection must not carry another request.
fn announces_a_body_it_cannot_have(
    head: bool,
    status: StatusCode,
    headers: &http::HeaderMap,
) -> bool {
    let bodiless = head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    bodiless
        && (headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .any(|v| v != HeaderValue::from_static("0")))
}

/// True when the upstream closed or reset the connection before a complete response head:
/// the failure of a kept-alive connection the upstream had already given up on.
fn connection_lost(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed() {
                return true;
            }
        }
        if matches!(e.downcast_ref::<h1::Error>(), Some(h1::Error::Closed)) {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// The headers copied for a resend, as a map again: the same names in the same order, each
/// with its values in order (what iterating the sent map gave).
fn copied_headers(copy: &mut Vec<(HeaderName, HeaderValue)>) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(copy.len());
    for (name, value) in copy.drain(..) {
        headers.append(name, value);
    }
    headers
}

pin_project_lite::pin_project! {
    /// `future` bounded by `timer`, which is polled after it (as `tokio::time::timeout`
    /// does): `None` when the timer fires first.
    struct Within<'t, F> {
        timer: Pin<&'t mut tokio::time::Sleep>,
        due: tokio::time::Instant,
        #[pin]
        future: F,
    }
}

/// `future` bounded by `timer`, set for `due` (see [`Within`]).
fn within<F: Future>(
    timer: Pin<&mut tokio::time::Sleep>,
    due: tokio::time::Instant,
    future: F,
) -> Within<'_, F> {
    Within { timer, due, future }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        crate::server::due::poll_due(this.timer.as_mut(), *this.due, cx).map(|()| None)
    }
}

/// The first error of type `E` in the chain of causes.
fn cause<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// An error and its sources, joined with `: ` (for log lines).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodiless_responses_that_announce_a_body_retire_the_connection() {
        let with = |name: header::HeaderName, value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            headers
        };
        let five = with(header::CONTENT_LENGTH, "5");
        let zero = with(header::CONTENT_LENGTH, "0");
        let chunked = with(header::TRANSFER_ENCODING, "chunked");
        let none = http::HeaderMap::new();
        assert!(announces_a_body_it_cannot_have(
            false,
            StatusCode::NO_CONTENT,
            &five
        ));
        assert!(announces_a_body_it_cannot_have(
            false,
            StatusCode::NO_CONTENT,
            &chunked
        ));
        assert!(announces_a_body_it_cannot_have(
            false,
            StatusCode::NOT_MODIFIED,
            &five
        ));
        assert!(announces_a_body_it_cannot_have(true, StatusCode::OK, &five));
        assert!(!announces_a_body_it_cannot_have(
            false,
            StatusCode::NO_CONTENT,
            &zero
        ));
        assert!(!announces_a_body_it_cannot_have(
            false,
            StatusCode::NO_CONTENT,
            &none
        ));
        assert!(!announces_a_body_it_cannot_have(
            false,
            StatusCode::OK,
            &five
        ));
        assert!(!announces_a_body_it_cannot_have(
            true,
            StatusCode::OK,
            &none
        ));
    }

    #[test]
    fn only_a_closed_or_reset_connection_counts_as_lost() {
        use std::io::{Error, ErrorKind};
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::BrokenPipe,
            ErrorKind::ConnectionAborted,
            ErrorKind::UnexpectedEof,
        ] {
            assert!(connection_lost(&Error::from(kind)), "{kind:?}");
        }
        assert!(!connection_lost(&Error::from(ErrorKind::InvalidData)));
        assert!(!connection_lost(&Error::from(ErrorKind::TimedOut)));
        // The lean client's: a close before the head, or a reset under its I/O error.
        assert!(connection_lost(&h1::Error::Closed));
        assert!(connection_lost(&h1::Error::Io(Error::from(
            ErrorKind::ConnectionReset
        ))));
        assert!(!connection_lost(&h1::Error::HeadTooLarge));
    }

    #[test]
    fn the_copy_for_a_resend_gives_back_the_same_headers_in_the_same_order() {
        let mut sent = HeaderMap::new();
        sent.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        sent.append("x-custom", HeaderValue::from_static("one"));
        sent.insert(header::HOST, HeaderValue::from_static("example.test"));
        sent.append("x-custom", HeaderValue::from_static("two"));
        sent.append(header::ACCEPT, HeaderValue::from_static("text/plain"));
        sent.insert(header::USER_AGENT, HeaderValue::from_static("t"));
        // A removal moves the last entry into the gap: the order is not the insertion order.
        sent.remove(header::HOST);
        let mut copy: Vec<_> = sent.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        let again = copied_headers(&mut copy);
        assert!(
            copy.is_empty(),
            "the copy's room is emptied for the next exchange"
        );
        let pairs = |map: &HeaderMap| {
            map.iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&again), pairs(&sent));
        assert_eq!(again, sent);
    }
}
