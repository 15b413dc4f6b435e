//! The server span of one request, described as OpenTelemetry's HTTP semantic conventions
//! (<https://opentelemetry.io/docs/specs/semconv/http/http-spans/>, stable since v1.23) ask:
//! its name, its attributes and its status, from the request's finished access record.
//!
//! Plain data, independent of the OpenTelemetry crates: [`crate::telemetry::otlp`] turns it
//! into the SDK's span and exports it (only in gateways built with the `otlp` feature, and only
//! for sampled requests; nothing here runs otherwise).

use std::net::IpAddr;

use http::Method;

use crate::access_log::{AccessRecord, RouteTable};
use crate::model::GatewayModel;

/// What a span says of a model route: its template and its API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteName {
    /// `http.route`: the WSO2 resource's full template (`/petstore/v1/pet/{petId}`) or the
    /// Express Gateway `paths` entry.
    template: String,
    /// `mgw.api`: the WSO2 API's name, or the Express Gateway API endpoint's.
    api: String,
}

/// Every route's template and API, made once at start-up (the same templates the access log
/// and the metrics show).
pub type RouteNames = RouteTable<RouteName>;

/// The route names of `model`.
pub fn route_names(model: &GatewayModel) -> RouteNames {
    RouteTable::new(model, |api, template| RouteName {
        template,
        api: api.to_string(),
    })
}

/// One attribute's value (the OTLP `AnyValue` kinds a server span uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue<'a> {
    /// A string, borrowed from the record or the route names.
    Str(&'a str),
    /// A string made for the span (an address).
    Owned(String),
    /// An integer.
    Int(i64),
}

/// The span's status (`Error` for a 5xx, as the conventions ask of server spans; a 4xx is the
/// client's error and leaves it unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    /// Not an error.
    Unset,
    /// The gateway or the upstream failed.
    Error,
}

/// A server span's name, attributes and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpan<'a> {
    /// `<METHOD> <route template>`, or the method alone when no model route matched (the
    /// conventions' low-cardinality name: never the raw path).
    pub name: String,
    /// Attributes, in a fixed order; absent ones are left out.
    pub attributes: Vec<(&'static str, AttributeValue<'a>)>,
    /// The status.
    pub status: SpanStatus,
}

/// The methods the conventions name; any other is reported as `_OTHER`, with the method as
/// sent in `http.request.method_original`.
const KNOWN_METHODS: [Method; 9] = [
    Method::CONNECT,
    Method::DELETE,
    Method::GET,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::POST,
    Method::PUT,
    Method::TRACE,
];

/// The span of the request `record` describes:
///
/// - `http.request.method` (and `http.request.method_original` for a method outside the
///   conventions' list), `http.route` and `mgw.api` when a model route matched;
/// - `url.scheme` (`http` or `https`: the listener's), `url.path` and `url.query`: the access
///   log's target, API keys already redacted;
/// - `http.response.status_code`, `client.address`, `server.port` (the port of the listener
///   that took the request: the local socket's, which the conventions name when the request
///   does not say otherwise);
/// - `error.type` for a 5xx: the upstream failure's kind (`refused`, `timeout`, `reset`,
///   `tls`, `other`, the metrics' labels) when the proxy failed, else the status code.
pub fn server_span<'a>(record: &'a AccessRecord, routes: &'a RouteNames) -> ServerSpan<'a> {
    let route = record.route.and_then(|r| routes.get(r));
    let known = KNOWN_METHODS.contains(&record.method);
    let method = if known {
        record.method.as_str()
    } else {
        "_OTHER"
    };
    let name = match route {
        Some(route) if known => format!("{method} {}", route.template),
        // The conventions' name of an unknown method is `HTTP`.
        Some(route) => format!("HTTP {}", route.template),
        None if known => method.to_string(),
        None => "HTTP".to_string(),
    };
    let mut attributes = Vec::with_capacity(10);
    attributes.push(("http.request.method", AttributeValue::Str(method)));
    if !known {
        attributes.push((
            "http.request.method_original",
            AttributeValue::Str(record.method.as_str()),
        ));
    }
    if let Some(route) = route {
        attributes.push(("http.route", AttributeValue::Str(&route.template)));
    }
    attributes.push((
        "url.scheme",
        AttributeValue::Str(if record.https { "https" } else { "http" }),
    ));
    let target = record.path.as_str();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    attributes.push(("url.path", AttributeValue::Str(path)));
    if let Some(query) = query {
        attributes.push(("url.query", AttributeValue::Str(query)));
    }
    let status = record.status.as_u16();
    attributes.push((
        "http.response.status_code",
        AttributeValue::Int(i64::from(status)),
    ));
    attributes.push((
        "client.address",
        AttributeValue::Owned(client_address(record.client)),
    ));
    if record.server_port != 0 {
        attributes.push((
            "server.port",
            AttributeValue::Int(i64::from(record.server_port)),
        ));
    }
    let failed = status >= 500;
    if failed {
        let error = match record.upstream_failure {
            Some(failure) => AttributeValue::Str(failure.label()),
            None => AttributeValue::Str(record.status.as_str()),
        };
        attributes.push(("error.type", error));
    }
    if let Some(route) = route {
        attributes.push(("mgw.api", AttributeValue::Str(&route.api)));
    }
    ServerSpan {
        name,
        attributes,
        status: if failed {
            SpanStatus::Error
        } else {
            SpanStatus::Unset
        },
    }
}

/// The client's address as the conventions write it: an IPv4-mapped IPv6 address as IPv4.
fn client_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::RouteRef;
    use crate::telemetry::metrics::UpstreamFailure;
    use http::StatusCode;
    use std::time::Instant;

    fn routes() -> RouteNames {
        RouteNames::from_parts(
            vec![vec![RouteName {
                template: "/petstore/v1/pet/{petId}".into(),
                api: "Petstore".into(),
            }]],
            vec![vec![RouteName {
                template: "/ip".into(),
                api: "api".into(),
            }]],
        )
    }

    fn record(method: Method, path: &str, status: u16, route: Option<RouteRef>) -> AccessRecord {
        let mut record = AccessRecord::new(
            "::ffff:10.0.0.7".parse().unwrap(),
            method,
            path.into(),
            StatusCode::from_u16(status).unwrap(),
            Instant::now(),
        );
        record.route = route;
        record.server_port = 9090;
        record
    }

    fn attribute<'a>(span: &'a ServerSpan<'_>, key: &str) -> Option<&'a AttributeValue<'a>> {
        span.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    const PET: Option<RouteRef> = Some(RouteRef::Wso2 {
        api: 0,
        resource: 0,
    });

    #[test]
    fn a_routed_request_is_named_by_its_template() {
        let names = routes();
        let r = record(Method::GET, "/petstore/v1/pet/42?api_key=***&x=1", 200, PET);
        let span = server_span(&r, &names);
        assert_eq!(span.name, "GET /petstore/v1/pet/{petId}");
        assert_eq!(span.status, SpanStatus::Unset);
        let keys: Vec<&str> = span.attributes.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "http.request.method",
                "http.route",
                "url.scheme",
                "url.path",
                "url.query",
                "http.response.status_code",
                "client.address",
                "server.port",
                "mgw.api"
            ]
        );
        assert_eq!(
            attribute(&span, "url.path"),
            Some(&AttributeValue::Str("/petstore/v1/pet/42"))
        );
        assert_eq!(
            attribute(&span, "server.port"),
            Some(&AttributeValue::Int(9090))
        );
        assert_eq!(
            attribute(&span, "url.scheme"),
            Some(&AttributeValue::Str("http"))
        );
        assert_eq!(
            attribute(&span, "url.query"),
            Some(&AttributeValue::Str("api_key=***&x=1"))
        );
        assert_eq!(
            attribute(&span, "http.response.status_code"),
            Some(&AttributeValue::Int(200))
        );
        assert_eq!(
            attribute(&span, "client.address"),
            Some(&AttributeValue::Owned("10.0.0.7".into()))
        );
        assert_eq!(
            attribute(&span, "mgw.api"),
            Some(&AttributeValue::Str("Petstore"))
        );
        let express = record(
            Method::POST,
            "/ip",
            201,
            Some(RouteRef::Express {
                config: 0,
                route: 0,
            }),
        );
        assert_eq!(server_span(&express, &names).name, "POST /ip");
        let mut tls = record(Method::GET, "/ip", 200, None);
        tls.https = true;
        assert_eq!(
            attribute(&server_span(&tls, &names), "url.scheme"),
            Some(&AttributeValue::Str("https"))
        );
    }

    #[test]
    fn an_unrouted_request_is_named_by_its_method_only() {
        let names = routes();
        let r = record(Method::DELETE, "/nowhere/42", 404, None);
        let span = server_span(&r, &names);
        assert_eq!(span.name, "DELETE");
        assert_eq!(attribute(&span, "http.route"), None);
        assert_eq!(attribute(&span, "mgw.api"), None);
        assert_eq!(attribute(&span, "url.query"), None);
        // A 4xx is the client's error: no error.type, status unset.
        assert_eq!(attribute(&span, "error.type"), None);
        assert_eq!(span.status, SpanStatus::Unset);
        // A route index the table does not have is no route (never a panic).
        let stale = record(
            Method::GET,
            "/x",
            200,
            Some(RouteRef::Wso2 {
                api: 9,
                resource: 9,
            }),
        );
        assert_eq!(server_span(&stale, &names).name, "GET");
    }

    #[test]
    fn unknown_methods_are_other_with_the_original_kept() {
        let names = routes();
        let method = Method::from_bytes(b"PURGE").unwrap();
        let r = record(method, "/petstore/v1/pet/1", 200, PET);
        let span = server_span(&r, &names);
        assert_eq!(span.name, "HTTP /petstore/v1/pet/{petId}");
        assert_eq!(
            attribute(&span, "http.request.method"),
            Some(&AttributeValue::Str("_OTHER"))
        );
        assert_eq!(
            attribute(&span, "http.request.method_original"),
            Some(&AttributeValue::Str("PURGE"))
        );
        let r = record(Method::from_bytes(b"PURGE").unwrap(), "/x", 404, None);
        assert_eq!(server_span(&r, &names).name, "HTTP");
    }

    #[test]
    fn server_errors_carry_an_error_type_and_status() {
        let names = routes();
        let mut r = record(Method::GET, "/petstore/v1/pet/1", 504, PET);
        r.upstream_failure = Some(UpstreamFailure::Timeout);
        let span = server_span(&r, &names);
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(
            attribute(&span, "error.type"),
            Some(&AttributeValue::Str("timeout"))
        );
        // A 500 of the upstream's own: the status code is the error type.
        let r = record(Method::GET, "/petstore/v1/pet/1", 500, PET);
        let span = server_span(&r, &names);
        assert_eq!(
            attribute(&span, "error.type"),
            Some(&AttributeValue::Str("500"))
        );
        assert_eq!(span.status, SpanStatus::Error);
    }

    #[test]
    fn ipv4_and_ipv6_clients() {
        assert_eq!(client_address("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(client_address("::1".parse().unwrap()), "::1");
        assert_eq!(
            client_address("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1"
        );
    }
}
