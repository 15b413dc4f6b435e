//! Listeners: plain HTTP (HTTP/1.1 and h2c prior knowledge) and HTTPS (rustls, ALPN h2 and
//! http/1.1), one accept loop, and a graceful drain on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::gateway::Gateway;

/// A listener that could not be opened. The message names both ways to choose another port:
/// the setting in `conf/micro-gw.toml`, and the one-run override `--listener.<key>=<port>`
/// (the `--<section>.<key>=<value>` argument form read by [`crate::config`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for {what}: {source} (is another process using the port? change listener.{key} in the config, or run once with --listener.{key}=<port>)")]
pub struct BindError {
    what: &'static str,
    addr: SocketAddr,
    key: &'static str,
    source: std::io::Error,
}

/// What the server needs besides the gateway.
pub struct ServerSettings {
    /// Plain HTTP address, when enabled.
    pub http: Option<SocketAddr>,
    /// HTTPS address and TLS acceptor, when enabled.
    pub https: Option<(SocketAddr, TlsAcceptor)>,
    /// Time a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Time in-flight requests get after a stop signal.
    pub shutdown_timeout: Duration,
    /// Limits, timeouts and HTTP/2 settings for client connections.
    pub protocol: ProtocolSettings,
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

async fn bind(
    addr: SocketAddr,
    what: &'static str,
    key: &'static str,
) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        what,
        addr,
        key,
        source,
    })
}

async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Serves until SIGINT or SIGTERM, then drains in-flight requests (bounded).
pub async fn serve(
    gateway: Arc<Gateway>,
    settings: ServerSettings,
    started: Instant,
) -> Result<(), BindError> {
    let http = match settings.http {
        Some(addr) => Some(bind(addr, "HTTP", "http_port").await?),
        None => None,
    };
    let (https, acceptor) = match settings.https {
        Some((addr, acceptor)) => (
            Some(bind(addr, "HTTPS", "https_port").await?),
            Some(acceptor),
        ),
        None => (None, None),
    };
    if let Some(Ok(addr)) = http.as_ref().map(TcpListener::local_addr) {
        tracing::info!("HTTP listener is active on http://{addr}");
    }
    if let Some(Ok(addr)) = https.as_ref().map(TcpListener::local_addr) {
        tracing::info!("HTTPS listener is active on https://{addr}");
    }
    let model = gateway.model();
    tracing::info!(
        "gateway '{}' serving {} API(s) with {} resource(s); ready in {} ms",
        model.project,
        model.apis.len(),
        model.resource_count(),
        started.elapsed().as_millis()
    );

    let builder = connection_builder(&settings.protocol);
    let connections = Arc::new(Semaphore::new(settings.protocol.max_connections));
    let mut last_refusal_log: Option<Instant> = None;
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop_signal());
    loop {
        tokio::select! {
            accepted = accept(&http) => match accepted {
                Ok((stream, peer)) => {
                    if let Some(permit) = admit(&connections, &mut last_refusal_log, settings.protocol.max_connections) {
                        spawn_plain(&gateway, &builder, graceful.watcher(), stream, peer, permit);
                    }
                }
                Err(err) => accept_failed(err).await,
            },
            accepted = accept(&https) => match accepted {
                Ok((stream, peer)) => {
                    if let (Some(acceptor), Some(permit)) = (&acceptor, admit(&connections, &mut last_refusal_log, settings.protocol.max_connections)) {
                        spawn_tls(&gateway, &builder, graceful.watcher(), acceptor.clone(), settings.handshake_timeout, stream, peer, permit);
                    }
                }
                Err(err) => accept_failed(err).await,
            },
            signal = &mut stop => {
                tracing::info!("{signal} received: no new connections; letting in-flight requests finish (up to {} s)", settings.shutdown_timeout.as_secs());
                break;
            }
        }
    }
    drop(http);
    drop(https);
    match tokio::time::timeout(settings.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed; gateway stopped"),
        Err(_) => {
            tracing::warn!("shutdown timeout reached with connections still open; gateway stopped")
        }
    }
    Ok(())
}

/// The connection builder with every protocol limit applied.
fn connection_builder(protocol: &ProtocolSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(protocol.max_header_bytes)
        .max_headers(protocol.max_headers)
        .header_read_timeout(protocol.header_timeout);
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

fn spawn_plain(
    gateway: &Arc<Gateway>,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let gateway = gateway.clone();
    let service = service_fn(move |request| gateway.clone().handle(request, peer, "http"));
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    tokio::spawn(async move {
        if let Err(err) = watcher.watch(connection).await {
            tracing::debug!(%peer, "connection ended with an error: {err}");
        }
        drop(permit);
    });
}

#[allow(clippy::too_many_arguments)]
fn spawn_tls(
    gateway: &Arc<Gateway>,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let gateway = gateway.clone();
    let builder = builder.clone();
    tokio::spawn(async move {
        let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
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
        let service = service_fn(move |request| gateway.clone().handle(request, peer, "https"));
        // Once ALPN has agreed on a protocol, the connection speaks only that one (RFC 9113
        // §3.3, RFC 7301): an invalid HTTP/2 preface gets a connection error, never an
        // HTTP/1.1 answer. Without ALPN, the preface decides.
        let builder = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => builder.http2_only(),
            Some(b"http/1.1") => builder.http1_only(),
            _ => builder,
        };
        let connection = builder.serve_connection(TokioIo::new(tls), service);
        if let Err(err) = watcher.watch(connection).await {
            tracing::debug!(%peer, "connection ended with an error: {err}");
        }
        drop(permit);
    });
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
        let err = bind(addr, "HTTP", "http_port").await.unwrap_err();
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
