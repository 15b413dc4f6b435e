//! What the steps of one request share: where it came from, what it matched, who it is, and
//! what the log phase will write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::cache::Grant;
use crate::model::express::ExpressRoute;
use crate::model::{Api, Resource};
use crate::store::records::base62;

/// What a request matched, as the steps need it.
#[derive(Debug, Clone, Copy)]
pub enum Matched<'a> {
    /// A gateway route of our own (`/health`, `/apikey`).
    Builtin,
    /// A WSO2 resource.
    Wso2 {
        /// Its API.
        api: &'a Api,
        /// The operation.
        resource: &'a Resource,
    },
    /// An Express Gateway API endpoint path.
    Express {
        /// The route (endpoint name, scopes).
        route: &'a ExpressRoute,
        /// Where `stripPath` cuts (`None` for a `pathRegex` route).
        strip: Option<crate::router::express::StripAt>,
    },
}

/// Per-request state shared by the steps of a pipeline.
pub struct Context<'a> {
    /// The client's address.
    pub client: SocketAddr,
    /// `http` or `https`: the listener the request came in on.
    pub proto: &'static str,
    /// When the request arrived.
    pub started: Instant,
    /// The request was HTTP/1.x (a client error then closes the connection).
    pub http1: bool,
    /// What the request matched.
    pub matched: Matched<'a>,
    /// The raw path after the API's base path (WSO2 routes).
    pub rest: String,
    /// A verified WSO2 credential.
    pub grant: Option<Arc<Grant>>,
    /// The consumer an authentication step identified (access log, `authenticated`).
    pub consumer: Option<Arc<str>>,
    /// An authentication step accepted the request (EG `req.isAuthenticated()`).
    pub authenticated: bool,
    /// The consumer's document as `req.user` reads it (EG authentication steps).
    pub user: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// A pass-through authentication step let the request go on anonymous: the response gets
    /// `eg-consumer-id: anonymous`.
    pub anonymous_marked: bool,
    /// The URL that answered, when proxied (access log).
    pub upstream: Option<Arc<str>>,
    /// Time to the upstream's response head (access log).
    pub upstream_latency: Option<Duration>,
    /// Why no upstream answered, when a proxy step failed that way (metrics).
    pub upstream_failure: Option<crate::telemetry::metrics::UpstreamFailure>,
    /// The route's metrics slot, set by the router.
    pub route: crate::telemetry::metrics::RouteKey,
    /// The client's HTTP/1 connection cannot carry another request (an unread body).
    pub close_connection: bool,
    /// The upstream's answer may keep its header fields as received
    /// ([`crate::proxy::field_lines`]): the lean HTTP/1.1 server writes this request's
    /// answer (set by the gateway) and every step of the pipeline leaves them alone (cleared by
    /// the pipeline otherwise: `ReadyPolicy::keeps_answer_fields`), so nothing on the way
    /// reads or changes them.
    pub fields_as_received: bool,
    /// What the rate-limit steps decided, for their response phase.
    pub rate_limits: Vec<crate::policies::rate_limit::step::RateNote>,
    /// What the WSO2 `throttle` step counted, for its response phase.
    pub throttle: Option<crate::policies::throttling::step::ThrottleNote>,
    /// The request's place in a W3C trace (`None` with `[tracing] propagate = false`): the
    /// proxy step sends it upstream, the access log shows its trace id.
    pub trace: Option<crate::telemetry::trace_context::TraceContext>,
    /// The request body as Express's parsers read it (`req.body`), once a `json-schema`
    /// condition has needed it (`pipeline::express_body`).
    pub body_json: Option<serde_json::Value>,
    /// Express Gateway's `egContext.requestID`, made on first use.
    request_id: Option<Arc<str>>,
}

impl<'a> Context<'a> {
    /// A context for a request that matched `matched`.
    pub fn new(
        client: SocketAddr,
        proto: &'static str,
        started: Instant,
        http1: bool,
        matched: Matched<'a>,
    ) -> Self {
        Self {
            client,
            proto,
            started,
            http1,
            matched,
            rest: String::new(),
            grant: None,
            consumer: None,
            authenticated: false,
            user: None,
            anonymous_marked: false,
            upstream: None,
            upstream_latency: None,
            upstream_failure: None,
            route: crate::telemetry::metrics::RouteKey::Unrouted,
            close_connection: false,
            fields_as_received: false,
            rate_limits: Vec::new(),
            throttle: None,
            trace: None,
            body_json: None,
            request_id: None,
        }
    }

    /// Express Gateway's per-request id (`eg-request-id`): made once, on first use, from the
    /// arrival time and a process-wide counter, in base 62 as EG's uuid62 ids are.
    pub fn request_id(&mut self) -> Arc<str> {
        self.request_id
            .get_or_insert_with(|| Arc::from(new_request_id()))
            .clone()
    }
}

fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        now ^ (u128::from(std::process::id()) << 64)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // A bijective mix of the counter so consecutive ids do not look consecutive.
    let mixed = (u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)) ^ seed;
    base62(mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_base62_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_eq!(base62(0), "0");
        assert_eq!(base62(61), "z");
        assert_eq!(base62(62), "10");
    }
}
