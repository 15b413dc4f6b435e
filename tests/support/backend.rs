//! A real HTTP upstream for tests, benchmarks and the quickstart, bound to a free loopback port.
//!
//! Routes (all methods), the answers of `micro-gw echo-backend` (one source file, included):
//! - `/bytes/<n>`: answers `n` bytes of `x` (benchmarks: 1 KiB GET).
//! - `/delay/<ms>/...`: waits, then echoes (timeouts, graceful shutdown).
//! - anything else: echoes the request as JSON: backend name, method, raw path and query,
//!   headers, and the body's size and a checksum, counted while streaming (never buffered).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

// The toolkit's echo backend answers; the same file, so the quickstart's backend and the tests'
// answer alike.
#[path = "../../toolkit/src/echo/respond.rs"]
mod echo;

/// A running backend; stops when dropped (without waiting: use [`Backend::stop`] for a server
/// that is known to be down).
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests it has received.
    pub requests: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Backend {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:<port>`
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Requests received so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops it and returns once its listener and every connection it had open are closed: a
    /// connection made afterwards is refused, and one kept alive by a client is gone. Dropping
    /// only asks the server's task to stop, which it does on another worker thread, a moment
    /// later.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a backend named `name` on `addr` (use port 0 for a free port).
pub async fn spawn(name: &str, addr: SocketAddr) -> std::io::Result<Backend> {
    spawn_inner(name, addr, None).await
}

/// A certificate made for a test server: PEM files in a temporary directory.
pub struct TestCertificate {
    _dir: tempfile::TempDir,
    /// The PEM certificate (for localhost, 127.0.0.1 and ::1) to trust.
    pub cert_path: std::path::PathBuf,
    config: Arc<rustls::ServerConfig>,
}

impl TestCertificate {
    /// Generates a self-signed certificate and its key.
    pub fn new() -> TestCertificate {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])
        .expect("generating a certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert_path = dir.path().join("backend-cert.pem");
        std::fs::write(&cert_path, certified.cert.pem()).expect("writing the certificate");
        let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .expect("a private key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("a TLS server configuration");
        TestCertificate {
            _dir: dir,
            cert_path,
            config: Arc::new(config),
        }
    }
}

impl TestCertificate {
    /// A TLS acceptor serving this certificate (for other test servers, e.g. the fake API Manager).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

impl Default for TestCertificate {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts an HTTPS backend (HTTP/1.1) with `certificate`.
pub async fn spawn_tls(name: &str, certificate: &TestCertificate) -> std::io::Result<Backend> {
    let acceptor = tokio_rustls::TlsAcceptor::from(certificate.config.clone());
    spawn_inner(name, SocketAddr::from(([127, 0, 0, 1], 0)), Some(acceptor)).await
}

async fn spawn_inner(
    name: &str,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<Backend> {
    let listener = TcpListener::bind(addr).await?;
    let name: Arc<str> = name.into();
    serve(listener, tls, move |req| echo::handle(name.clone(), req))
}

/// Accepts connections on `listener` (over TLS when `tls` is set) until the returned guard is
/// dropped, counting requests and answering each with `respond`.
pub(crate) fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    respond: F,
) -> std::io::Result<Backend>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicU64::new(0));
    let (stop_tx, mut stop_rx) = oneshot::channel();
    let counter = requests.clone();
    let server = tokio::spawn(async move {
        // Open connections end with the backend too, like a server that went down: the stop
        // aborts their tasks and waits for them (their sockets closed), then the listener goes.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => {
                    connections.shutdown().await;
                    drop(listener);
                    break;
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let respond = respond.clone();
                    let counter = counter.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            counter.fetch_add(1, Ordering::SeqCst);
                            respond(req)
                        });
                        let builder = auto::Builder::new(TokioExecutor::new());
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                                }
                            }
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    });
                }
            }
        }
    });
    Ok(Backend {
        addr,
        requests,
        stop: Some(stop_tx),
        server: Some(server),
    })
}

/// Starts a server that answers every request with `status` and `body` (e.g. a definition
/// to download). Stops when the returned guard is dropped.
pub async fn spawn_fixed(status: u16, body: String) -> std::io::Result<Backend> {
    spawn_fixed_inner(status, body, None).await
}

/// Like [`spawn_fixed`], over HTTPS with `certificate`.
pub async fn spawn_fixed_tls(
    status: u16,
    body: String,
    certificate: &TestCertificate,
) -> std::io::Result<Backend> {
    spawn_fixed_inner(
        status,
        body,
        Some(tokio_rustls::TlsAcceptor::from(certificate.config.clone())),
    )
    .await
}

async fn spawn_fixed_inner(
    status: u16,
    body: String,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<Backend> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let body = Bytes::from(body);
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    serve(listener, tls, move |_req: Request<Incoming>| {
        let mut response = Response::new(Full::new(body.clone()));
        *response.status_mut() = status;
        async move { Ok::<_, Infallible>(response) }
    })
}

/// A request as a [`Scripted`] server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An answer of a [`Scripted`] server: status, extra headers, body.
pub type ScriptedReply = (u16, Vec<(&'static str, String)>, String);

/// A server that answers each request with what a closure returns and records every request
/// (a key manager, an API Manager endpoint). Stops when dropped.
pub struct Scripted {
    backend: Backend,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Scripted {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        self.backend.url()
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("request log").clone()
    }

    /// Stops it and returns once it is down ([`Backend::stop`]).
    pub async fn stop(self) {
        self.backend.stop().await;
    }
}

/// Starts a [`Scripted`] server answering with `respond`.
pub async fn spawn_scripted<F>(respond: F) -> std::io::Result<Scripted>
where
    F: Fn(&Seen) -> ScriptedReply + Send + Sync + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let respond = Arc::new(respond);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let backend = serve(listener, None, move |request: Request<Incoming>| {
        let respond = respond.clone();
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let request = Seen {
                method: parts.method.to_string(),
                target: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| "/".to_string(), |pq| pq.to_string()),
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let (status, headers, text) = respond(&request);
            log.lock().expect("request log").push(request);
            let mut response = Response::new(Full::new(Bytes::from(text)));
            *response.status_mut() =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            for (name, value) in headers {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            Ok::<_, Infallible>(response)
        }
    })?;
    Ok(Scripted { backend, seen })
}
