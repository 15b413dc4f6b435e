//! A small HTTP client for tests: HTTP/1.1, h2c with prior knowledge, and HTTPS (h2 or
//! http/1.1 by ALPN) trusting a given PEM certificate. A fresh client per request, so tests
//! never depend on pooled state.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A request body.
pub type TestBody = BoxBody<Bytes, Infallible>;

/// Which protocol to speak.
#[derive(Debug, Clone, Copy)]
pub enum Protocol<'a> {
    /// Plain HTTP/1.1.
    Http1,
    /// Plain HTTP/2 with prior knowledge.
    H2c,
    /// TLS, offering h2 only, trusting this PEM certificate.
    H2Tls(&'a Path),
    /// TLS, offering http/1.1 only, trusting this PEM certificate.
    Http1Tls(&'a Path),
}

/// A complete response.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Protocol version the server answered with.
    pub version: Version,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An empty body.
pub fn empty() -> TestBody {
    Full::new(Bytes::new()).boxed()
}

/// A body of `text`.
pub fn full(text: impl Into<Bytes>) -> TestBody {
    Full::new(text.into()).boxed()
}

/// A streamed body of `total` bytes in 64 KiB chunks, generated as it is sent.
pub fn streamed(total: u64) -> TestBody {
    RepeatBody {
        remaining: total,
        chunk: Bytes::from(vec![b'z'; 64 * 1024]),
    }
    .boxed()
}

/// Like [`streamed`], but without a known size, so HTTP/1 sends it chunked.
pub fn streamed_chunked(total: u64) -> TestBody {
    UnsizedBody(RepeatBody {
        remaining: total,
        chunk: Bytes::from(vec![b'z'; 1024]),
    })
    .boxed()
}

/// A body of `total` bytes sent one byte every `interval` (a client trickling its body),
/// of unknown size.
pub fn trickled(total: u64, interval: Duration) -> TestBody {
    TrickleBody {
        remaining: total,
        interval,
        sleep: None,
    }
    .boxed()
}

struct TrickleBody {
    remaining: u64,
    interval: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for TrickleBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let interval = self.interval;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        self.remaining -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

struct RepeatBody {
    remaining: u64,
    chunk: Bytes,
}

struct UnsizedBody(RepeatBody);

impl Body for UnsizedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn tls_config(cert: &Path) -> rustls::ClientConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("reading the certificate") {
        roots
            .add(c.expect("a PEM certificate"))
            .expect("a usable certificate");
    }
    // hyper-rustls sets ALPN from enable_http1/enable_http2.
    rustls::ClientConfig::builder()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth()
}

/// Sends one request and reads the whole response (bounded by `timeout`).
pub async fn send(
    protocol: Protocol<'_>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: TestBody,
    timeout: Duration,
) -> Result<Reply, String> {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body).map_err(|e| e.to_string())?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let exchange = async {
        let response = match protocol {
            Protocol::Http1 => {
                Client::builder(TokioExecutor::new())
                    .build(http)
                    .request(request)
                    .await
            }
            Protocol::H2c => {
                Client::builder(TokioExecutor::new())
                    .http2_only(true)
                    .build(http)
                    .request(request)
                    .await
            }
            Protocol::H2Tls(cert) => {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config(cert))
                    .https_only()
                    .enable_http2()
                    .wrap_connector(http);
                Client::builder(TokioExecutor::new())
                    .http2_only(true)
                    .build(https)
                    .request(request)
                    .await
            }
            Protocol::Http1Tls(cert) => {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config(cert))
                    .https_only()
                    .enable_http1()
                    .wrap_connector(http);
                Client::builder(TokioExecutor::new())
                    .build(https)
                    .request(request)
                    .await
            }
        }
        .map_err(|e| format!("request failed: {e:?}"))?;
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            version,
            headers,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no complete response within {timeout:?}"))?
}

/// `GET url` over HTTP/1.1 with a 10 s bound.
pub async fn get(url: &str) -> Reply {
    send(
        Protocol::Http1,
        Method::GET,
        url,
        &[],
        empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
