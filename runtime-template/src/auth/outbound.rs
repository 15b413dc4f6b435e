//! The gateway's own small HTTP client for the services credentials are checked against
//! (JWKS servers, the key manager): every call has a deadline and a size cap, so a slow or
//! hostile server costs a bounded wait and bounded memory, never a hang.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::proxy::error_chain;

/// Why a call failed; the text goes to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The URL is not usable.
    #[error("invalid URL {0}")]
    Url(String),
    /// Connection refused, reset, TLS failure.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No complete answer before the deadline.
    #[error("{url} did not answer within {0:?}", .timeout)]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The answer is larger than allowed.
    #[error("{url} answered with more than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        max: usize,
    },
}

/// A response read in full.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// A pooled client over HTTP or HTTPS (rustls, trust from `[upstream] truststore`).
#[derive(Clone)]
pub struct OutboundClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboundClient")
    }
}

impl OutboundClient {
    /// Builds the client with the given TLS trust.
    pub fn new(tls: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Self { client }
    }

    /// `GET url`, the whole answer within `timeout`.
    pub async fn get(
        &self,
        url: &str,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Answer, CallError> {
        self.call(
            Method::GET,
            url,
            HeaderMap::new(),
            Bytes::new(),
            timeout,
            max_bytes,
        )
        .await
    }

    /// `POST url` with a form body and extra headers (credentials), within `timeout`.
    pub async fn post_form(
        &self,
        url: &str,
        mut headers: HeaderMap,
        form: String,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Answer, CallError> {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self.call(
            Method::POST,
            url,
            headers,
            Bytes::from(form),
            timeout,
            max_bytes,
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Answer, CallError> {
        let uri: http::Uri = url.parse().map_err(|_| CallError::Url(url.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(CallError::Url(url.to_string()));
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .map_err(|_| CallError::Url(url.to_string()))?;
        *request.headers_mut() = headers;
        request
            .headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| CallError::Unreachable {
                        url: url.to_string(),
                        reason: error_chain(&e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        CallError::TooLarge {
                            url: url.to_string(),
                            max: max_bytes,
                        }
                    } else {
                        CallError::Unreachable {
                            url: url.to_string(),
                            reason: e.to_string(),
                        }
                    }
                })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout {
                url: url.to_string(),
                timeout,
            })?
    }
}

/// A client that trusts no HTTPS server: the tests' servers speak plain HTTP on loopback.
#[cfg(test)]
pub(crate) fn test_client() -> OutboundClient {
    crate::tls::install_crypto_provider();
    OutboundClient::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}

/// `max-age` of a `Cache-Control` header, if any.
pub fn max_age(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| value.trim().trim_matches('"').parse().ok())?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_any_directive_position() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=120, must-revalidate"),
        );
        assert_eq!(max_age(&headers), Some(120));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&headers), None);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=x"));
        assert_eq!(max_age(&headers), None);
    }
}
