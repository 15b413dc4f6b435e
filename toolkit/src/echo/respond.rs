//! The echo backend's answers (shared with the end-to-end tests' backend, which includes this
//! file): `/bytes/<n>` answers `n` bytes of `x`; `/delay/<ms>/...` waits, then echoes; anything
//! else echoes the request as JSON: backend name, method, raw path and query, version, headers,
//! and the body's size and a checksum, counted while streaming (never buffered).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// Answers one request as the echo backend named `name`.
pub async fn handle(
    name: Arc<str>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        drain(request.into_body()).await;
        let mut response = Response::new(Full::new(Bytes::from(vec![b'x'; n.min(64 << 20)])));
        response.headers_mut().insert(
            "x-backend",
            http::HeaderValue::from_str(&name).unwrap_or(http::HeaderValue::from_static("backend")),
        );
        return Ok(response);
    }
    if let Some(ms) = path
        .strip_prefix("/delay/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(600_000))).await;
    }
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let query = request.uri().query().map(str::to_string);
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
            )
        })
        .collect();
    let (size, checksum) = drain(request.into_body()).await;
    let body = serde_json::json!({
        "backend": &*name,
        "method": method,
        "path": path,
        "query": query,
        "version": version,
        "headers": headers,
        "body_bytes": size,
        "body_checksum": checksum,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = http::HeaderValue::from_str(&name) {
        headers.insert("x-backend", value);
    }
    // A hop-by-hop header the gateway must not pass on.
    headers.insert("keep-alive", http::HeaderValue::from_static("timeout=30"));
    Ok(response)
}

/// Reads a body to its end frame by frame: returns its size and a simple additive checksum.
pub async fn drain(mut body: Incoming) -> (u64, u64) {
    let mut size = 0u64;
    let mut checksum = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            checksum = data
                .iter()
                .fold(checksum, |acc, b| acc.wrapping_add(u64::from(*b)));
        }
    }
    (size, checksum)
}
