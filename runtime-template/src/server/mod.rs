//! Listeners: plain HTTP (HTTP/1.1 and h2c prior knowledge) and HTTPS (rustls, ALPN h2 and
//! http/1.1), one accept loop (work-stealing runtime) or one per worker thread
//! ([`thread_per_core`]), and a graceful stop on SIGINT/SIGTERM in Kubernetes' order:
//! `/health` turns 503, the listeners go on serving for `listener.drain_delay_seconds`, then
//! they close and in-flight requests drain (bounded by `listener.shutdown_timeout_seconds`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

pub mod clock;
pub mod drain;
pub(crate) mod due;
pub mod field_values;
pub mod h1;
pub mod preface;
pub mod send;
pub mod thread_per_core;
pub mod timer;
pub mod worker;

use crate::gateway::{Gateway, Site};
use crate::proxy::body::ClientBody;
use crate::telemetry::metrics::{ConnectionGauge, GaugeGuard, LocalGauge, Metrics};
use drain::{Drain, Stop};

/// A listener that could not be opened. The message names both ways to choose another port:
/// the setting in `conf/micro-gw.toml`, and the one-run override `--listener.<key>=<port>`
/// (the `--<section>.<key>=<value>` argument form read by [`crate::config`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for {what}: {source} (is another process using the port? change {setting} in the config, or run once with --{setting}=<port>)")]
pub struct BindError {
    what: String,
    addr: SocketAddr,
    setting: String,
    source: std::io::Error,
}

/// One listener: where it binds, TLS, and what it serves.
pub struct ListenerSettings {
    /// Address to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// The TLS acceptor of an HTTPS listener.
    pub tls: Option<TlsAcceptor>,
    /// What it serves.
    pub site: Arc<Site>,
    /// How the log names it: `HTTP`, `HTTPS`, `Express Gateway HTTP`, ...
    pub what: String,
    /// The setting that chooses its port, e.g. `listener.http_port`.
    pub setting: String,
}

/// What the server needs besides the gateway.
pub struct ServerSettings {
    /// The listeners (WSO2 and Express Gateway), each on its own address.
    pub listeners: Vec<ListenerSettings>,
    /// Time a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Time in-flight requests get after a stop signal.
    pub shutdown_timeout: Duration,
    /// Time the listeners stay open after a stop signal while `/health` answers 503.
    pub drain_delay: Duration,
    /// Limits, timeouts and HTTP/2 settings for client connections.
    pub protocol: ProtocolSettings,
    /// Where the metrics listener binds (`[metrics]`), when metrics are enabled.
    pub metrics: Option<SocketAddr>,
    /// `Some(n)`: the thread-per-core runtime with `n` workers (`listener.runtime`); `None`:
    /// every listener served by the runtime [`serve`] runs on (work-stealing).
    pub cores: Option<usize>,
    /// Pin each thread-per-core worker to a CPU of its own (`listener.pin_workers`).
    pub pin_workers: bool,
}

/// Protocol-level protections, from `[limits]`, `[timeouts]` and `[http2]`.
#[derive(Debug, Clone)]
pub struct ProtocolSettings {
    /// HTTP/1 head buffer (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Most headers.
    pub max_headers: usize,
    /// Most connections at once.
    pub max_connections: usize,
    /// Deadline for a request head (and keep-alive idle).
    pub header_timeout: Duration,
    /// HTTP/2 concurrent streams.
    pub max_concurrent_streams: u32,
    /// HTTP/2 pending client resets.
    pub max_pending_accept_reset_streams: usize,
    /// HTTP/2 resets caused by client errors.
    pub max_local_error_reset_streams: usize,
}

async fn bind(addr: SocketAddr, what: &str, setting: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        what: what.to_string(),
        addr,
        setting: setting.to_string(),
        source,
    })
}

/// An accepted connection and the listener it came from.
type Accepted = (TcpStream, SocketAddr, usize);

/// Accepts on one listener and hands connections to the serve loop until it goes away.
async fn accept_loop(listener: TcpListener, index: usize, to: mpsc::Sender<Accepted>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if to.send((stream, peer, index)).await.is_err() {
                        return;
                    }
                }
                Err(err) => accept_failed(err).await,
            },
            () = to.closed() => return,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be opened.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// `listener.pin_workers`: fewer CPUs than workers.
    #[error(transparent)]
    Pin(#[from] thread_per_core::PinError),
    /// A thread-per-core worker thread could not be started.
    #[error(
        "cannot start worker thread {index} (listener.runtime = \"thread-per-core\"): {source}"
    )]
    Worker {
        /// The worker's number.
        index: usize,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Serves until SIGINT or SIGTERM, then (after the drain delay, while `/health` answers 503)
/// stops accepting and drains in-flight requests (bounded).
///
/// With the work-stealing runtime, every listener is served by the runtime this runs on. With
/// the thread-per-core runtime ([`ServerSettings::cores`]), each API listener is bound once
/// per worker with `SO_REUSEPORT` and served by the workers' own threads
/// ([`thread_per_core`]); the admin listeners and the metrics listener stay on this one.
pub async fn serve(
    gateway: Arc<Gateway>,
    mut settings: ServerSettings,
    started: Instant,
) -> Result<(), ServeError> {
    // The workers' CPUs are chosen before anything is bound: too few is a start-up error.
    let pins = match settings.cores {
        Some(cores) if settings.pin_workers => Some(thread_per_core::cpus_for(cores)?),
        _ => None,
    };
    // Every listener is bound before anything is served: a taken port is a start-up error.
    let mut bound = Vec::with_capacity(settings.listeners.len());
    let mut per_core = Vec::new();
    for (index, listener) in settings.listeners.iter().enumerate() {
        match settings.cores {
            Some(cores) if listener.site.admin.is_none() => per_core.push((
                index,
                thread_per_core::bind(listener.addr, cores, &listener.what, &listener.setting)
                    .await?,
            )),
            _ => bound.push((
                index,
                bind(listener.addr, &listener.what, &listener.setting).await?,
            )),
        }
    }
    let metrics_listener = match (settings.metrics, gateway.telemetry()) {
        (Some(addr), Some(metrics)) => {
            let socket = bind(addr, "metrics", "metrics.port").await?;
            if let Ok(addr) = socket.local_addr() {
                tracing::info!(
                    "metrics listener is active on http://{addr}{}",
                    crate::telemetry::exposition::PATH
                );
            }
            Some(tokio::spawn(crate::telemetry::exposition::serve(
                socket,
                metrics.clone(),
            )))
        }
        _ => None,
    };
    let gauges: Vec<ConnectionGauges> = settings
        .listeners
        .iter()
        .map(|l| ConnectionGauges::new(gateway.telemetry(), l))
        .collect();
    for (index, listener) in settings.listeners.iter_mut().enumerate() {
        let addr = bound
            .iter()
            .find(|(i, _)| *i == index)
            .and_then(|(_, socket)| socket.local_addr().ok())
            .or_else(|| {
                per_core
                    .iter()
                    .find(|(i, _)| *i == index)
                    .and_then(|(_, sockets)| sockets.first()?.local_addr().ok())
            });
        if let Some(addr) = addr {
            let scheme = if listener.tls.is_some() {
                "https"
            } else {
                "http"
            };
            tracing::info!("{} listener is active on {scheme}://{addr}", listener.what);
            // A port the system chose (port 0 in the settings): the site learns it here.
            if listener.site.port != addr.port() {
                let mut site = (*listener.site).clone();
                site.port = addr.port();
                listener.site = Arc::new(site);
            }
        }
    }
    let model = gateway.model();
    tracing::info!(
        "gateway '{}' serving {} API(s) with {} resource(s){}{}; ready in {} ms",
        model.project,
        model.apis.len(),
        model.resource_count(),
        match model.express.iter().map(|e| e.routes.len()).sum::<usize>() {
            0 => String::new(),
            n => format!(" and {n} Express Gateway route(s)"),
        },
        match (settings.cores, &pins) {
            (Some(cores), Some(pins)) => format!(
                " on {cores} thread-per-core worker(s) pinned to CPU(s) {}",
                thread_per_core::cpu_list(pins)
            ),
            (Some(cores), None) => format!(" on {cores} thread-per-core worker(s)"),
            (None, _) => String::new(),
        },
        started.elapsed().as_millis()
    );
    // The start-up lines are out: later lines go to the log's writer thread, started by the
    // first of them (`logging::Output`).
    crate::logging::ready();

    let builder = Arc::new(connection_builder(&settings.protocol));
    let limits = h1::Limits::from(&settings.protocol);
    // One limit for the whole gateway, whichever core accepted: a permit is taken once per
    // connection (one atomic operation), never per request.
    let connections = Arc::new(Semaphore::new(settings.protocol.max_connections));
    let (stop_cores, cores_stop) = tokio::sync::watch::channel(false);
    let cores = thread_per_core::start(
        per_core
            .into_iter()
            .filter_map(|(index, sockets)| {
                let listener = settings.listeners.get(index)?;
                Some(thread_per_core::Listener {
                    sockets,
                    tls: listener.tls.clone(),
                    site: listener.site.clone(),
                    gauges: gauges.get(index).cloned().unwrap_or_default(),
                })
            })
            .collect(),
        thread_per_core::Shared {
            gateway: gateway.clone(),
            builder: builder.clone(),
            limits,
            connections: connections.clone(),
            max_connections: settings.protocol.max_connections,
            handshake_timeout: settings.handshake_timeout,
            shutdown_timeout: settings.shutdown_timeout,
        },
        settings.cores.unwrap_or(0),
        pins,
        cores_stop,
    )?;
    let mut last_refusal_log: Option<Instant> = None;
    let graceful = Drain::new();
    let mut stop = std::pin::pin!(stop_signal());
    // Kubernetes' termination sequence: on the signal the readiness probe turns 503 at once,
    // the listeners keep accepting for the drain delay (the Service's endpoints take a few
    // seconds to drop the pod), then they close and in-flight requests drain.
    let delay = tokio::time::sleep(Duration::ZERO);
    let mut delay = std::pin::pin!(delay);
    let mut delaying = false;
    let (to_serve, mut accepted) = mpsc::channel::<Accepted>(64);
    // Without a listener here (thread-per-core, no admin listener) this loop only waits
    // for the signal.
    let mut serving = !bound.is_empty();
    let acceptors: Vec<_> = bound
        .into_iter()
        .map(|(index, socket)| tokio::spawn(accept_loop(socket, index, to_serve.clone())))
        .collect();
    drop(to_serve);
    loop {
        tokio::select! {
            next = accepted.recv(), if serving => {
                let Some((stream, peer, index)) = next else {
                    serving = false;
                    if cores.is_empty() { break } else { continue }
                };
                let Some(listener) = settings.listeners.get(index) else { continue };
                let Some(permit) = admit(&connections, &mut last_refusal_log, settings.protocol.max_connections) else { continue };
                let gauges = gauges.get(index).map(ConnectionGauges::local).unwrap_or_default();
                match &listener.tls {
                    None => spawn_plain(&gateway, &listener.site, &builder, limits, graceful.watcher(), stream, peer, (permit, gauges)),
                    Some(acceptor) => spawn_tls(&gateway, &listener.site, &builder, graceful.watcher(), acceptor.clone(), (settings.handshake_timeout, limits.header_timeout), stream, peer, (permit, gauges)),
                }
            }
            signal = &mut stop => {
                if delaying {
                    tracing::info!("{signal} received again: ending the drain delay");
                } else {
                    gateway.start_draining();
                    if !settings.drain_delay.is_zero() {
                        tracing::info!("{signal} received: /health answers 503; still serving for {} s (listener.drain_delay_seconds) before closing the listeners", settings.drain_delay.as_secs());
                        delaying = true;
                        delay.as_mut().reset(tokio::time::Instant::now() + settings.drain_delay);
                        stop.set(stop_signal());
                        continue;
                    }
                    tracing::info!("{signal} received: /health answers 503");
                }
                break;
            }
            () = &mut delay, if delaying => break,
        }
    }
    tracing::info!(
        "no new connections; letting in-flight requests finish (up to {} s)",
        settings.shutdown_timeout.as_secs()
    );
    // Every worker closes its listeners and drains its own connections.
    let _ = stop_cores.send(true);
    for acceptor in acceptors {
        acceptor.abort();
    }
    if let Some(metrics) = metrics_listener {
        metrics.abort();
    }
    drop(accepted);
    let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
    let here = tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_ok();
    // Each worker bounds its own drain by the same timeout, then ends its runtime (a second
    // at most) before it answers.
    let mut drained = here;
    for core in cores {
        drained &= core.await.unwrap_or(false);
    }
    if drained {
        tracing::info!("all connections closed; gateway stopped");
    } else {
        tracing::warn!("shutdown timeout reached with connections still open; gateway stopped");
    }
    Ok(())
}

impl From<&ProtocolSettings> for h1::Limits {
    fn from(protocol: &ProtocolSettings) -> Self {
        h1::Limits {
            max_header_bytes: protocol.max_header_bytes,
            max_headers: protocol.max_headers,
            header_timeout: protocol.header_timeout,
        }
    }
}

/// The connection builder with every protocol limit applied.
/// hyper's HTTP/1 header count limit when none is set (`hyper::proto::h1::role`).
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

fn connection_builder(protocol: &ProtocolSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(timer::ServerTimer)
        .max_buf_size(protocol.max_header_bytes)
        .header_read_timeout(protocol.header_timeout);
    // hyper's own limit is 100 headers, parsed into an inline array. Any explicit limit, even
    // 100, makes it build that array element by element for every request head (about 1,700
    // instructions per request): set it only when it differs.
    if protocol.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http1.max_headers(protocol.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(protocol.max_concurrent_streams)
        .max_header_list_size(u32::try_from(protocol.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(protocol.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(protocol.max_local_error_reset_streams);
    builder
}

/// A connection slot, or `None` (the connection is dropped) when all are taken. The refusal
/// is logged at most once a second so a flood cannot flood the log too.
fn admit(
    connections: &Arc<Semaphore>,
    last_log: &mut Option<Instant>,
    max: usize,
) -> Option<OwnedSemaphorePermit> {
    match connections.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => {
            if last_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                *last_log = Some(Instant::now());
                tracing::warn!(
                    "connection limit reached ({max} open): closing new connections until some end (limits.max_connections)"
                );
            }
            None
        }
    }
}

async fn accept_failed(err: std::io::Error) {
    // Running out of file descriptors must not spin the loop.
    tracing::warn!("accepting a connection failed: {err}");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Serves a cleartext connection: API listeners through the lean HTTP/1.1 server ([`h1`]),
/// which hands the connection to hyper at the first request it does not take (and the admin
/// listener through hyper from the start).
#[allow(clippy::too_many_arguments)]
fn spawn_plain(
    gateway: &Arc<Gateway>,
    site: &Arc<Site>,
    builder: &Arc<auto::Builder<TokioExecutor>>,
    limits: h1::Limits,
    stop: Stop,
    stream: TcpStream,
    peer: SocketAddr,
    (permit, gauges): (OwnedSemaphorePermit, LocalGauges),
) {
    let _ = stream.set_nodelay(true);
    let open = gauges.cleartext.map(GaugeGuard::open);
    let gateway = gateway.clone();
    let site = site.clone();
    let builder = builder.clone();
    // The connection's code reads the clock once per poll of its task (`clock`; the service
    // future hyper polls within it reads once per poll of its own).
    tokio::spawn(clock::PollClock::new(async move {
        let (stream, read, first) = if site.admin.is_none() {
            match h1::serve(stream, peer, &gateway, &site, limits, &stop).await {
                h1::Ended::Closed => {
                    drop(open);
                    drop(permit);
                    return;
                }
                h1::Ended::HandOver { io, read, first } => (io, read, first),
            }
        } else {
            (stream, bytes::Bytes::new(), true)
        };
        let (mut stream, mut stop) = (stream, stop);
        // An HTTP/2 preface is looked for on a connection's first bytes only, within the
        // header timeout (hyper would wait for them without one); the stop ends the wait.
        let (speaks, read) = if first {
            let known =
                preface::read_until_known(&mut stream, read, limits.header_timeout, &mut stop);
            let Some(known) = known.await else {
                return;
            };
            known
        } else {
            (preface::Speaks::Http1, read)
        };
        let (builder, io, idle) = served_as(&builder, speaks, read, stream, limits.header_timeout);
        let service = hyper_service(gateway, site, peer, idle.as_ref());
        let ended = stop
            .watch(builder.serve_connection(io, service), idle)
            .await;
        if let Err(err) = ended {
            tracing::debug!(%peer, "connection ended with an error: {err}");
        }
        drop(open);
        drop(permit);
    }));
}

/// hyper's builder for a connection that `speaks` one protocol, the connection (`read`, the
/// bytes already read from it, then `io`) and, for HTTP/2, its idle timeout: no request in
/// flight and no byte moved either way for `idle_after` (the header timeout, which is
/// HTTP/1.1's keep-alive idle timeout too). hyper's HTTP/2 server has none of its own;
/// HTTP/1.1's is hyper's header timeout.
fn served_as<I>(
    builder: &auto::Builder<TokioExecutor>,
    speaks: preface::Speaks,
    read: bytes::Bytes,
    io: I,
    idle_after: Duration,
) -> (
    auto::Builder<TokioExecutor>,
    TokioIo<h1::Replay<I>>,
    Option<drain::Idle>,
) {
    match speaks {
        preface::Speaks::Http1 => (
            builder.clone().http1_only(),
            TokioIo::new(h1::Replay::new(read, io)),
            None,
        ),
        preface::Speaks::Http2 => {
            let activity = drain::Activity::default();
            (
                builder.clone().http2_only(),
                TokioIo::new(h1::Replay::watched(read, io, activity.clone())),
                Some(drain::Idle {
                    activity,
                    after: idle_after,
                }),
            )
        }
    }
}

/// The gateway's answer as hyper serves it: the body holds its request's place in its
/// connection's [`drain::Activity`] until it is dropped.
type HeldResponse =
    http::Response<drain::Held<crate::access_log::LoggedBody<crate::proxy::body::GatewayBody>>>;

/// The gateway as hyper's service for a connection from `peer` to a listener serving `site`;
/// with `idle` (HTTP/2), each request counts as in flight in its activity until its answer's
/// body is dropped.
fn hyper_service(
    gateway: Arc<Gateway>,
    site: Arc<Site>,
    peer: SocketAddr,
    idle: Option<&drain::Idle>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = HeldResponse,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<HeldResponse, std::convert::Infallible>> + Send,
> + Clone {
    let activity = idle.map(|idle| idle.activity.clone());
    service_fn(move |request: http::Request<hyper::body::Incoming>| {
        // A request keeps its connection from being idle until its answer's body is gone.
        let in_flight = activity.as_ref().map(drain::Activity::in_flight);
        // Boxed: hyper moves the service's future several times (into each HTTP/2 stream's
        // task, through tokio's spawn), and the gateway's future is large; a box moves as a
        // pointer. (An async block around it here would be copied whole, about 3.5 KB, into
        // the box and again at its first poll.) The box is allocated first and the future
        // made in it: made first, it was copied on its way in (memcpy).
        let slot = Box::new_uninit();
        Box::into_pin(Box::write(
            slot,
            clock::PollClock::new(drain::Holding::new(
                gateway
                    .clone()
                    .handle(request.map(ClientBody::from), peer, site.clone()),
                in_flight,
            )),
        ))
    })
}

#[allow(clippy::too_many_arguments)]
fn spawn_tls(
    gateway: &Arc<Gateway>,
    site: &Arc<Site>,
    builder: &Arc<auto::Builder<TokioExecutor>>,
    stop: Stop,
    acceptor: TlsAcceptor,
    (handshake_timeout, header_timeout): (Duration, Duration),
    stream: TcpStream,
    peer: SocketAddr,
    (permit, gauges): (OwnedSemaphorePermit, LocalGauges),
) {
    let _ = stream.set_nodelay(true);
    let gateway = gateway.clone();
    let site = site.clone();
    let builder = builder.clone();
    let mut stop = stop;
    tokio::spawn(async move {
        let mut tls = match tokio::time::timeout(
            handshake_timeout,
            acceptor.accept(send::SendStream(stream)),
        )
        .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                tracing::debug!(%peer, "TLS handshake failed: {err}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        // Once ALPN has agreed on a protocol, the connection speaks only that one (RFC 9113
        // §3.3, RFC 7301): an invalid HTTP/2 preface gets a connection error, never an
        // HTTP/1.1 answer. Without ALPN, the preface decides. Either way the preface is read
        // within the header timeout (hyper's HTTP/2 server would wait for it without one);
        // HTTP/1.1's heads have hyper's header timeout.
        let alpn = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => Some(preface::Speaks::Http2),
            Some(b"http/1.1") => Some(preface::Speaks::Http1),
            _ => None,
        };
        let open = match alpn {
            Some(preface::Speaks::Http2) => gauges.h2,
            Some(preface::Speaks::Http1) => gauges.http1,
            None => gauges.cleartext,
        }
        .map(GaugeGuard::open);
        let (speaks, read) = if alpn == Some(preface::Speaks::Http1) {
            (preface::Speaks::Http1, bytes::Bytes::new())
        } else {
            let known =
                preface::read_until_known(&mut tls, bytes::Bytes::new(), header_timeout, &mut stop);
            let Some((speaks, read)) = known.await else {
                tracing::debug!(%peer, "no HTTP/2 preface or request in time");
                return;
            };
            // After ALPN `h2`, bytes that are not the preface get hyper's HTTP/2 error.
            (alpn.unwrap_or(speaks), read)
        };
        let (builder, io, idle) = served_as(&builder, speaks, read, tls, header_timeout);
        let service = hyper_service(gateway, site, peer, idle.as_ref());
        if let Err(err) = stop
            .watch(builder.serve_connection(io, service), idle)
            .await
        {
            tracing::debug!(%peer, "connection ended with an error: {err}");
        }
        drop(open);
        drop(permit);
    });
}

/// The `mgw_connections_open` gauges of one listener, made at start-up: a TLS listener's by
/// the protocol ALPN chose (`h2`, `http/1.1`; `auto` without ALPN), a cleartext listener's
/// `auto` (it serves HTTP/1.1 and h2c prior knowledge on the same port, told apart per
/// connection by the preface). All `None` when metrics are off.
#[derive(Clone, Default)]
struct ConnectionGauges {
    cleartext: Option<ConnectionGauge>,
    h2: Option<ConnectionGauge>,
    http1: Option<ConnectionGauge>,
}

/// The calling worker's counts of a listener's [`ConnectionGauges`], taken for each accepted
/// connection: the worker's own `Arc`s, so that opening and closing a connection writes no
/// cache line another worker writes.
#[derive(Default)]
struct LocalGauges {
    cleartext: Option<LocalGauge>,
    h2: Option<LocalGauge>,
    http1: Option<LocalGauge>,
}

impl ConnectionGauges {
    /// The calling worker's counts.
    fn local(&self) -> LocalGauges {
        LocalGauges {
            cleartext: self.cleartext.as_ref().and_then(ConnectionGauge::local),
            h2: self.h2.as_ref().and_then(ConnectionGauge::local),
            http1: self.http1.as_ref().and_then(ConnectionGauge::local),
        }
    }

    fn new(metrics: Option<&Arc<Metrics>>, listener: &ListenerSettings) -> Self {
        let Some(metrics) = metrics else {
            return Self::default();
        };
        // The listener's name is its port setting's: `listener.http`, `express_gateway.https`.
        let name = listener.setting.trim_end_matches("_port");
        let tls = listener.tls.is_some();
        Self {
            cleartext: Some(metrics.connections(name, tls, "auto")),
            h2: tls.then(|| metrics.connections(name, tls, "h2")),
            http1: tls.then(|| metrics.connections(name, tls, "http/1.1")),
        }
    }
}

async fn stop_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    };
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            name = ctrl_c => name,
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port in use names the setting and the one-run override with the setting's real key.
    #[tokio::test]
    async fn a_taken_port_names_the_setting_and_the_override() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr, "HTTP", "listener.http_port").await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("cannot listen on {addr} for HTTP: ")),
            "{message}"
        );
        assert!(
            message.contains("change listener.http_port in the config")
                && message.contains("run once with --listener.http_port=<port>"),
            "{message}"
        );
        // The named override, with a port filled in, is an argument the gateway accepts.
        let start = message.find("--listener.").unwrap();
        let named = message[start..].split_whitespace().next().unwrap();
        let argument = named.replace("<port>)", "0").replace("<port>", "0");
        let args = crate::parse_args([argument]).unwrap();
        let parsed = crate::config::parse(
            "",
            std::path::Path::new("micro-gw.toml"),
            &[],
            &args.settings,
        )
        .unwrap();
        assert_eq!(parsed.listener.http_port, 0);
    }
}
