//! The ready `rate-limit` step: the request phase counts and decides, the response phase adds
//! the `X-RateLimit-*` headers and takes back hits the `skip*` options exclude.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, ACCEPT, HOST, RETRY_AFTER, VARY};
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};

use super::{KeyPart, RateAlgorithm, RateLimitSpec};
use crate::counters::{Algorithm, Decision, Limit, Source};
use crate::pipeline::context::Context;
use crate::pipeline::step::Flow;
use crate::pipeline::Services;
use crate::policies::terminate::express::{express_http_error, express_send, Answer};
use crate::proxy::body::GatewayBody;

/// `X-RateLimit-Limit`.
pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`.
pub const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The longest delay `delayAfter`/`delayMs` may impose on one request.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// What a rate-limit step decided for a request, for its response phase.
#[derive(Debug, Clone)]
pub struct RateNote {
    step: usize,
    key: String,
    decision: Decision,
    refused: bool,
}

/// A `rate-limit` step ready to run.
#[derive(Debug)]
pub struct RateLimitStep {
    id: usize,
    limit: Limit,
    key: Vec<KeyPart>,
    scope: String,
    headers: bool,
    skip_failed: bool,
    skip_successful: bool,
    delay_after: u64,
    delay_ms: u64,
    /// The two bodies of the answer over the limit, made once.
    html: Answer,
    json: Answer,
    /// `Retry-After` of the fixed window (express-rate-limit's `ceil(windowMs / 1000)`).
    retry_after_window: u64,
}

impl RateLimitStep {
    /// Checks the spec.
    pub fn new(spec: &RateLimitSpec) -> Result<Self, String> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        let status = StatusCode::from_u16(spec.status)
            .ok()
            .filter(|s| s.as_u16() >= 200)
            .ok_or_else(|| format!("statusCode {} is not a final HTTP status", spec.status))?;
        if spec.window_ms == 0 {
            return Err("windowMs must be at least 1".into());
        }
        if spec.key.is_empty() {
            return Err("rateLimitBy makes an empty key".into());
        }
        let json = serde_json::json!({ "message": spec.message }).to_string();
        let mut html = express_send(status, &spec.message, "text/html; charset=utf-8");
        // `res.end(message)`: no ETag.
        html.1.remove(http::header::ETAG);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            limit: Limit {
                max: spec.max,
                window_ms: spec.window_ms,
                algorithm: match spec.algorithm {
                    RateAlgorithm::FixedWindow => Algorithm::FixedWindow,
                    RateAlgorithm::Gcra => Algorithm::Gcra {
                        burst: if spec.burst == 0 {
                            spec.max
                        } else {
                            spec.burst
                        },
                    },
                },
            },
            key: spec.key.clone(),
            scope: spec.scope.clone(),
            headers: spec.headers,
            skip_failed: spec.skip_failed,
            skip_successful: spec.skip_successful,
            delay_after: spec.delay_after,
            delay_ms: spec.delay_ms,
            html,
            json: express_send(status, &json, "application/json; charset=utf-8"),
            retry_after_window: spec.window_ms.div_ceil(1000),
        })
    }

    /// Whether the response phase has anything to do.
    pub fn has_response_phase(&self) -> bool {
        self.headers || self.skip_failed || self.skip_successful
    }

    /// The counter key of this request: the step's scope, then `rateLimitBy`'s parts.
    pub fn key(&self, parts: &Parts, context: &Context<'_>) -> String {
        let mut key = String::with_capacity(self.scope.len() + 48);
        key.push_str(&self.scope);
        key.push(':');
        for part in &self.key {
            match part {
                KeyPart::Text(text) => key.push_str(text),
                KeyPart::Ip => key.push_str(&context.client.ip().to_string()),
                KeyPart::Hostname => key.push_str(hostname(parts).unwrap_or("undefined")),
                KeyPart::Header(name) => {
                    let mut values = parts
                        .headers
                        .get_all(name.as_str())
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()));
                    match values.next() {
                        Some(first) => {
                            key.push_str(&first);
                            for v in values {
                                key.push_str(", ");
                                key.push_str(&v);
                            }
                        }
                        None => key.push_str("undefined"),
                    }
                }
                KeyPart::ConsumerId => {
                    let id = context
                        .user
                        .as_ref()
                        .and_then(|u| u.get("id"))
                        .and_then(serde_json::Value::as_str);
                    match id {
                        Some(id) => key.push_str(id),
                        // EG's key generator throws on `req.user.id` without a user, logs
                        // it and returns `undefined`: every anonymous request shares one key.
                        None => {
                            key.truncate(self.scope.len() + 1);
                            key.push_str("undefined");
                            return key;
                        }
                    }
                }
            }
        }
        key
    }

    /// The request phase: count, then admit (after EG's delay, if any) or refuse.
    pub async fn request(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &Parts,
    ) -> Flow {
        let key = self.key(parts, context);
        let decision = services.counters.hit(&key, &self.limit).await;
        if decision.source == Source::Unavailable {
            let mut response = crate::respond::express_send_status(StatusCode::SERVICE_UNAVAILABLE);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(1u32));
            return Flow::Respond(response);
        }
        let refused = !decision.allowed;
        let note = RateNote {
            step: self.id,
            key,
            decision,
            refused,
        };
        if refused {
            let response = self.refusal(
                &parts.headers,
                parts.method == http::Method::HEAD,
                &decision,
            );
            context.rate_limits.push(note);
            return Flow::Respond(response);
        }
        context.rate_limits.push(note);
        if self.delay_after > 0 && self.delay_ms > 0 && decision.count > self.delay_after {
            let delay = Duration::from_millis(
                (decision.count - self.delay_after).saturating_mul(self.delay_ms),
            )
            .min(MAX_DELAY);
            tokio::time::sleep(delay).await;
        }
        Flow::Continue
    }

    /// The answer over the limit (express-rate-limit's handler).
    fn refusal(
        &self,
        request: &HeaderMap,
        head: bool,
        decision: &Decision,
    ) -> Response<GatewayBody> {
        let mut headers = HeaderMap::new();
        if self.headers {
            self.limit_headers(&mut headers, decision);
            let retry = match self.limit.algorithm {
                Algorithm::FixedWindow => self.retry_after_window,
                Algorithm::Gcra { .. } => decision.retry_after_ms.div_ceil(1000).max(1),
            };
            headers.insert(RETRY_AFTER, HeaderValue::from(retry));
        }
        headers.insert(VARY, HeaderValue::from_static("Accept"));
        let (status, answer_headers, body) = match negotiate(request) {
            Some(Format::Html) if head => {
                // `res.end(message)` on a HEAD request: Node sends no Content-Length (and
                // hyper writes none for an empty HEAD body).
                let (status, mut headers, _) = self.html.clone();
                headers.remove(http::header::CONTENT_LENGTH);
                (status, headers, bytes::Bytes::new())
            }
            Some(Format::Html) => self.html.clone(),
            Some(Format::Json) => self.json.clone(),
            None => express_http_error(StatusCode::NOT_ACCEPTABLE),
        };
        for (name, value) in &answer_headers {
            headers.insert(name, value.clone());
        }
        crate::respond::answer((status, headers, body))
    }

    fn limit_headers(&self, headers: &mut HeaderMap, decision: &Decision) {
        headers.insert(LIMIT, HeaderValue::from(self.limit.max));
        headers.insert(REMAINING, HeaderValue::from(decision.remaining));
        headers.insert(RESET, HeaderValue::from(decision.reset_ms.div_ceil(1000)));
    }

    /// The response phase: headers, and the hits `skipFailedRequests` and
    /// `skipSuccessfulRequests` exclude.
    pub fn response(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        response: &mut Response<GatewayBody>,
    ) {
        let Some(index) = context.rate_limits.iter().position(|n| n.step == self.id) else {
            return;
        };
        let note = context.rate_limits.swap_remove(index);
        if note.refused {
            return;
        }
        if self.headers {
            // The upstream's own headers of the same names win, as they do in EG (the proxy
            // copies them over the policy's).
            let mut ours = HeaderMap::new();
            self.limit_headers(&mut ours, &note.decision);
            let headers = response.headers_mut();
            for (name, value) in ours {
                if let Some(name) = name {
                    if !headers.contains_key(&name) {
                        headers.insert(name, value);
                    }
                }
            }
        }
        let failed = response.status().as_u16() >= 400;
        if (failed && self.skip_failed) || (!failed && self.skip_successful) {
            services
                .counters
                .undo(&note.key, &self.limit, note.decision.source);
        }
    }
}

/// `req.hostname` without `trust proxy`: the `Host` header (or the HTTP/2 authority) without
/// its port.
fn hostname(parts: &Parts) -> Option<&str> {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(crate::router::authority_host))?;
    if host.starts_with('[') {
        return host.find(']').map(|end| &host[..=end]);
    }
    Some(host.split(':').next().unwrap_or(host))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

/// Express's `res.format({html, json})` (negotiator): the better of `text/html` and
/// `application/json` for the request's `Accept`, html when there is none, `None` when
/// neither is acceptable (406).
fn negotiate(request: &HeaderMap) -> Option<Format> {
    let accept: Vec<&str> = request
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Some(Format::Html);
    }
    let joined = accept.join(",");
    // (q in thousandths, specificity, position in Accept) of the best range for each type.
    let best = |ty: &str, sub: &str| -> Option<(u32, u8, usize)> {
        let mut best: Option<(u32, u8, usize)> = None;
        for (position, range) in joined.split(',').enumerate() {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim();
            let Some((rt, rs)) = media.split_once('/') else {
                continue;
            };
            let (rt, rs) = (rt.trim(), rs.trim());
            let specificity = if rt.eq_ignore_ascii_case(ty) && rs.eq_ignore_ascii_case(sub) {
                6
            } else if rt.eq_ignore_ascii_case(ty) && rs == "*" {
                4
            } else if rt == "*" && rs == "*" {
                0
            } else {
                continue;
            };
            let mut q = 1000u32;
            for param in params {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v
                            .trim()
                            .parse::<f64>()
                            .map_or(0, |f| (f.clamp(0.0, 1.0) * 1000.0).round() as u32);
                    }
                }
            }
            let better = match best {
                None => true,
                Some((_, s, _)) => specificity > s,
            };
            if better {
                best = Some((q, specificity, position));
            }
        }
        best.filter(|(q, _, _)| *q > 0)
    };
    let html = best("text", "html");
    let json = best("application", "json");
    match (html, json) {
        (None, None) => None,
        (Some(_), None) => Some(Format::Html),
        (None, Some(_)) => Some(Format::Json),
        (Some(h), Some(j)) => {
            // negotiator: higher q, then more specific, then earlier in Accept, then the
            // order of `res.format` (html first).
            let key = |(q, s, o): (u32, u8, usize)| (q, s, std::cmp::Reverse(o));
            if key(j) > key(h) {
                Some(Format::Json)
            } else {
                Some(Format::Html)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn negotiation_follows_express() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Format::Html));
        assert_eq!(negotiate(&accept("*/*")), Some(Format::Html));
        assert_eq!(negotiate(&accept("application/json")), Some(Format::Json));
        assert_eq!(
            negotiate(&accept("application/json, text/plain, */*")),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(&accept("text/html;q=0.5, application/json")),
            Some(Format::Json)
        );
        assert_eq!(negotiate(&accept("text/plain")), None);
        assert_eq!(negotiate(&accept("application/*")), Some(Format::Json));
        assert_eq!(
            negotiate(&accept("text/html,application/xhtml+xml,*/*;q=0.8")),
            Some(Format::Html)
        );
    }

    #[test]
    fn refusal_has_eg_headers_and_bodies() {
        let step = RateLimitStep::new(&RateLimitSpec {
            max: 3,
            key: vec![KeyPart::Ip],
            ..RateLimitSpec::default()
        })
        .unwrap();
        let decision = Decision {
            allowed: false,
            count: 4,
            remaining: 0,
            reset_ms: 1_700_000_000_500,
            retry_after_ms: 30_000,
            source: Source::Memory,
        };
        let r = step.refusal(&accept("application/json"), false, &decision);
        assert_eq!(r.status(), 429);
        let h = r.headers();
        assert_eq!(h["x-ratelimit-limit"], "3");
        assert_eq!(h["x-ratelimit-remaining"], "0");
        assert_eq!(h["x-ratelimit-reset"], "1700000001");
        assert_eq!(h["retry-after"], "60");
        assert_eq!(h["vary"], "Accept");
        assert_eq!(h["content-type"], "application/json; charset=utf-8");
        let r = step.refusal(&HeaderMap::new(), false, &decision);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert!(r.headers().get("etag").is_none());
        assert_eq!(
            r.headers()["content-length"],
            "Too many requests, please try again later."
                .len()
                .to_string()
                .as_str()
        );
        let r = step.refusal(&accept("text/plain"), false, &decision);
        assert_eq!(r.status(), 406);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
    }

    #[test]
    fn hostname_drops_the_port() {
        let mut parts = http::Request::new(()).into_parts().0;
        parts
            .headers
            .insert(HOST, HeaderValue::from_static("api.example.com:8080"));
        assert_eq!(hostname(&parts), Some("api.example.com"));
        parts
            .headers
            .insert(HOST, HeaderValue::from_static("[::1]:8080"));
        assert_eq!(hostname(&parts), Some("[::1]"));
    }
}
