//! A real HTTP server on 127.0.0.1 for the auth tests (JWKS endpoints, key managers): every
//! request is counted and answered by a closure the test can swap at any time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// What the server was asked.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query.
    pub target: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
}

/// An answer: status, extra headers, body, and a delay before it is sent.
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// The server; stopped when dropped (its runtime's task is aborted).
pub struct TestServer {
    pub addr: SocketAddr,
    handler: Arc<Mutex<Handler>>,
    hits: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<Seen>>>,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Drop for TestServer {
    /// Stops accepting and closes every open connection, like a server that went down.
    fn drop(&mut self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

impl TestServer {
    /// Starts on a free loopback port (inside a tokio runtime).
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler: Arc<Mutex<Handler>> = Arc::new(Mutex::new(Arc::new(handler)));
        let hits = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let (h, c, l) = (handler.clone(), hits.clone(), last.clone());
        let connections = Arc::new(Mutex::new(Vec::new()));
        let open = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, c, l) = (h.clone(), c.clone(), l.clone());
                let connection = tokio::spawn(async move {
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let (h, c, l) = (h.clone(), c.clone(), l.clone());
                            async move {
                                c.fetch_add(1, Ordering::SeqCst);
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let seen = Seen {
                                    target: parts
                                        .uri
                                        .path_and_query()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default(),
                                    headers: parts.headers,
                                    body,
                                };
                                let handler = h.lock().unwrap().clone();
                                let reply = handler(&seen);
                                *l.lock().unwrap() = Some(seen);
                                tokio::time::sleep(reply.delay).await;
                                let mut response =
                                    Response::new(Full::new(Bytes::from(reply.body)));
                                *response.status_mut() = reply.status;
                                for (name, value) in reply.headers {
                                    response.headers_mut().insert(name, value.parse().unwrap());
                                }
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                open.lock().unwrap().push(connection.abort_handle());
            }
        });
        TestServer {
            addr,
            handler,
            hits,
            last,
            task,
            connections,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The last request received.
    pub fn last(&self) -> Option<Seen> {
        self.last.lock().unwrap().clone()
    }

    /// Answers later requests with `handler`.
    pub fn set(&self, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }
}
