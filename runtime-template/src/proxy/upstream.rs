//! Upstream endpoints as the runtime uses them: parsed URLs (after runtime overrides), the
//! round-robin cursor, the order in which URLs are tried, and each URL's connection pool.

use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(feature = "server")]
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;

#[cfg(feature = "server")]
use super::pool::{HostPool, PoolLimits};
use crate::model::{Endpoint, EndpointKind, GatewayModel};

/// One upstream URL split into what the proxy needs per request.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host:port`.
    pub authority: Authority,
    /// Path prefix without a trailing `/` (may be empty).
    pub prefix: String,
    /// A query the endpoint URL carries; the request's query is appended to it.
    pub query: Option<String>,
    /// The URL as configured, for logs (shared with each request's log record).
    pub display: std::sync::Arc<str>,
    /// The `Host` header the upstream client would make for this URL (the host, and the port
    /// unless it is the scheme's default), rendered once.
    pub host_header: http::HeaderValue,
    /// `scheme://authority`, what the connector opens a connection to.
    #[cfg(feature = "server")]
    pub origin: Uri,
    /// The idle connections to this origin, shared by every URL of the same scheme and
    /// authority ([`resolve`] makes them once at start-up; [`Target::parse`] alone leaves an
    /// empty pool that keeps nothing).
    #[cfg(feature = "server")]
    pub pool: Arc<HostPool>,
}

impl Target {
    /// Parses an absolute `http`/`https` URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a valid URL ({e})"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("{url:?} has no scheme: use http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!(
                "{url:?} uses scheme {scheme}: only http and https are supported"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("{url:?} has no host"))?;
        let host_header = host_header(&uri).ok_or_else(|| format!("{url:?} has no valid host"))?;
        #[cfg(feature = "server")]
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("{url:?} is not a valid URL ({e})"))?;
        Ok(Target {
            host_header,
            #[cfg(feature = "server")]
            origin,
            #[cfg(feature = "server")]
            pool: Arc::default(),
            scheme,
            authority,
            prefix: uri.path().trim_end_matches('/').to_string(),
            query: uri.query().filter(|q| !q.is_empty()).map(str::to_string),
            display: std::sync::Arc::from(url),
        })
    }

    /// The upstream request target (RFC 9112 §3.2.1 origin form: path and query) for a
    /// request whose path after the base path is `rest` (raw) with the raw `query`, if any.
    pub fn uri_for(&self, rest: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let extra = self.query.as_ref().map_or(0, String::len) + query.map_or(0, str::len);
        let mut path = String::with_capacity(self.prefix.len() + rest.len() + extra + 3);
        path.push_str(&self.prefix);
        if !rest.starts_with('/') && (!rest.is_empty() || self.prefix.is_empty()) {
            path.push('/');
        }
        path.push_str(rest);
        if path.is_empty() {
            path.push('/');
        }
        match (self.query.as_deref(), query) {
            (Some(own), Some(query)) => {
                path.push('?');
                path.push_str(own);
                path.push('&');
                path.push_str(query);
            }
            (Some(only), None) | (None, Some(only)) => {
                path.push('?');
                path.push_str(only);
            }
            (None, None) => {}
        }
        // What `Uri::builder().path_and_query(path).build()` makes, without the builder's
        // steps (about 250 instructions a request): the path is checked all the same.
        PathAndQuery::try_from(path)
            .map(Uri::from)
            .map_err(Into::into)
    }
}

/// The `Host` value hyper-util's client sets on a request to `uri` that has none
/// (`client::legacy::Client::send_request`): the host, then `:port` unless the port is the
/// scheme's default (443 for https and wss, 80 otherwise).
fn host_header(uri: &Uri) -> Option<http::HeaderValue> {
    let host = uri.host()?;
    let secure = matches!(uri.scheme_str(), Some("https" | "wss"));
    let value = match (uri.port().map(|p| p.as_u16()), secure) {
        (Some(443), true) | (Some(80), false) | (None, _) => host.to_string(),
        (Some(_), _) => format!("{host}:{}", uri.port()?),
    };
    http::HeaderValue::from_str(&value).ok()
}

/// An endpoint ready for traffic.
#[derive(Debug)]
pub struct Upstream {
    /// The endpoint's name (for logs).
    pub name: String,
    /// Distribution across targets.
    pub kind: EndpointKind,
    /// The URLs, in order.
    pub targets: Vec<Target>,
    /// Upstream response timeout.
    pub timeout: Duration,
    cursor: AtomicUsize,
}

impl Upstream {
    /// Index of the first target to try for the next request.
    pub fn first(&self) -> usize {
        match self.kind {
            EndpointKind::LoadBalance if self.targets.len() > 1 => {
                self.cursor.fetch_add(1, Ordering::Relaxed) % self.targets.len()
            }
            _ => 0,
        }
    }
}

/// An override argument or variable that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OverrideError(pub String);

/// Endpoint URL overrides, as WSO2 users give them: `<name>_prod_endpoint_<i>=<url>` (or
/// `_sand_`) from arguments (`--` stripped) and from the environment; arguments win.
/// An argument naming an unknown endpoint is an error; unrelated environment variables are not.
/// Every origin (scheme and authority) gets one connection pool bounded by `pool_limits`.
pub fn resolve(
    model: &GatewayModel,
    args: &[(String, String)],
    env: &[(String, String)],
    #[cfg(feature = "server")] pool_limits: PoolLimits,
) -> Result<Vec<Upstream>, OverrideError> {
    let mut upstreams = Vec::with_capacity(model.endpoints.len());
    let mut used_args = vec![false; args.len()];
    // One pool per origin: URLs that differ only in their path share connections.
    #[cfg(feature = "server")]
    let mut pools: Vec<(Scheme, Authority, Arc<HostPool>)> = Vec::new();
    for endpoint in &model.endpoints {
        let urls = overridden_urls(endpoint, args, env, &mut used_args)?;
        #[cfg_attr(not(feature = "server"), allow(unused_mut))]
        let mut targets = urls
            .iter()
            .map(|url| Target::parse(url))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OverrideError(format!("endpoint '{}': {e}", endpoint.name)))?;
        #[cfg(feature = "server")]
        for target in &mut targets {
            match pools.iter().find(|(scheme, authority, _)| {
                *scheme == target.scheme && *authority == target.authority
            }) {
                Some((_, _, pool)) => target.pool = pool.clone(),
                None => {
                    target.pool = Arc::new(HostPool::new(pool_limits));
                    pools.push((
                        target.scheme.clone(),
                        target.authority.clone(),
                        target.pool.clone(),
                    ));
                }
            }
        }
        upstreams.push(Upstream {
            name: endpoint.name.clone(),
            kind: endpoint.kind,
            targets,
            timeout: Duration::from_millis(endpoint.timeout_ms),
            cursor: AtomicUsize::new(0),
        });
    }
    if let Some(i) = used_args.iter().position(|used| !used) {
        let mut names: Vec<String> = model
            .endpoints
            .iter()
            .map(|e| format!("{}_{}_endpoint_<i>", e.name, e.environment.override_infix()))
            .collect();
        names.sort();
        names.dedup();
        return Err(OverrideError(format!(
            "--{}: no endpoint of this gateway has that name; known overrides: {}",
            args[i].0,
            names.join(", ")
        )));
    }
    Ok(upstreams)
}

fn overridden_urls(
    endpoint: &Endpoint,
    args: &[(String, String)],
    env: &[(String, String)],
    used_args: &mut [bool],
) -> Result<Vec<String>, OverrideError> {
    let prefix = format!(
        "{}_{}_endpoint_",
        endpoint.name,
        endpoint.environment.override_infix()
    );
    let mut urls = endpoint.urls.clone();
    let mut apply = |name: &str, value: &str| -> Result<(), OverrideError> {
        let Some(index) = name.strip_prefix(&prefix) else {
            return Ok(());
        };
        let index: usize = index.parse().map_err(|_| {
            OverrideError(format!(
                "{name}: the suffix after {prefix} must be a URL index (0, 1, ...)"
            ))
        })?;
        match index.cmp(&urls.len()) {
            std::cmp::Ordering::Less => urls[index] = value.to_string(),
            std::cmp::Ordering::Equal => urls.push(value.to_string()),
            std::cmp::Ordering::Greater => {
                return Err(OverrideError(format!(
                    "{name}: endpoint '{}' has {} URL(s); override index {} or below",
                    endpoint.name,
                    urls.len(),
                    urls.len()
                )))
            }
        }
        Ok(())
    };
    let mut sorted_env: Vec<&(String, String)> =
        env.iter().filter(|(n, _)| n.starts_with(&prefix)).collect();
    sorted_env.sort();
    for (name, value) in sorted_env {
        apply(name, value)?;
    }
    let mut arg_order: Vec<usize> = (0..args.len())
        .filter(|&i| args[i].0.starts_with(&prefix))
        .collect();
    arg_order.sort_by(|&a, &b| args[a].0.cmp(&args[b].0));
    for i in arg_order {
        used_args[i] = true;
        apply(&args[i].0, &args[i].1)?;
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Environment, MODEL_FORMAT};

    fn model() -> GatewayModel {
        GatewayModel {
            format: MODEL_FORMAT,
            project: "p".into(),
            apis: vec![],
            endpoints: vec![Endpoint {
                name: "myEndpoint".into(),
                environment: Environment::Production,
                kind: EndpointKind::LoadBalance,
                urls: vec!["http://a:1/v1".into(), "http://b:2".into()],
                timeout_ms: 1000,
            }],
            pipelines: vec![],
            express: vec![],
        }
    }

    #[test]
    fn uri_keeps_prefix_path_and_query() {
        let t = Target::parse("http://localhost:8080/api/").unwrap();
        assert_eq!(
            t.uri_for("/pet/a%2Fb", Some("x=1&y=%20"))
                .unwrap()
                .to_string(),
            "/api/pet/a%2Fb?x=1&y=%20"
        );
        assert_eq!(t.uri_for("", None).unwrap().to_string(), "/api");
        let root = Target::parse("http://localhost:8080").unwrap();
        assert_eq!(root.uri_for("", Some("q")).unwrap().to_string(), "/?q");
        let with_query = Target::parse("https://h:1/v1/find?a=1").unwrap();
        assert_eq!(
            with_query.uri_for("/x", Some("b=2")).unwrap().to_string(),
            "/v1/find/x?a=1&b=2"
        );
        assert_eq!(
            with_query.uri_for("", None).unwrap().to_string(),
            "/v1/find?a=1"
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("/relative").is_err());
    }

    #[test]
    fn uris_are_what_the_http_builder_makes_of_the_same_target() {
        let builder = |path: &str| Uri::builder().path_and_query(path).build();
        for base in ["http://h", "http://h/api/", "http://h/v1/find?a=1"] {
            let t = Target::parse(base).unwrap();
            for rest in [
                "", "/", "/pet/1", "pet", "/a b", "/x\u{7f}", "/é", "/a#b", "/%zz", "//x",
            ] {
                for query in [None, Some(""), Some("q=1"), Some("a b"), Some("#")] {
                    let ours = t.uri_for(rest, query);
                    // The path the builder is given: what uri_for renders, taken from its
                    // own result when it has one, else rendered the same way here.
                    let mut path = t.prefix.clone();
                    if !rest.starts_with('/') && (!rest.is_empty() || t.prefix.is_empty()) {
                        path.push('/');
                    }
                    path.push_str(rest);
                    if path.is_empty() {
                        path.push('/');
                    }
                    match (t.query.as_deref(), query) {
                        (Some(own), Some(q)) => path.push_str(&format!("?{own}&{q}")),
                        (Some(only), None) | (None, Some(only)) => {
                            path.push_str(&format!("?{only}"))
                        }
                        (None, None) => {}
                    }
                    let theirs = builder(&path);
                    assert_eq!(ours.is_ok(), theirs.is_ok(), "{base} {rest:?} {query:?}");
                    if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                        assert_eq!(ours, theirs, "{base} {rest:?} {query:?}");
                        assert_eq!(ours.to_string(), theirs.to_string());
                    }
                }
            }
        }
    }

    #[test]
    fn host_headers_are_what_the_upstream_client_would_send() {
        for (url, host) in [
            ("http://localhost:8080/api", "localhost:8080"),
            ("http://localhost:80", "localhost"),
            ("http://localhost", "localhost"),
            ("https://h:443/x", "h"),
            ("https://h:80/x", "h:80"),
            ("http://h:443", "h:443"),
            ("http://[::1]:9000/", "[::1]:9000"),
            ("http://127.0.0.1:08080", "127.0.0.1:8080"),
        ] {
            assert_eq!(Target::parse(url).unwrap().host_header, host, "{url}");
        }
    }

    #[test]
    fn overrides_from_args_beat_env() {
        let env = vec![(
            "myEndpoint_prod_endpoint_0".to_string(),
            "http://env:1".to_string(),
        )];
        let args = vec![(
            "myEndpoint_prod_endpoint_0".to_string(),
            "http://arg:1".to_string(),
        )];
        let up = resolve(&model(), &args, &env, PoolLimits::default()).unwrap();
        assert_eq!(&*up[0].targets[0].display, "http://arg:1");
        assert_eq!(&*up[0].targets[1].display, "http://b:2");
        let up = resolve(&model(), &[], &env, PoolLimits::default()).unwrap();
        assert_eq!(&*up[0].targets[0].display, "http://env:1");
    }

    #[test]
    fn override_errors_are_clear() {
        let args = vec![("other_prod_endpoint_0".to_string(), "http://x".to_string())];
        let err = resolve(&model(), &args, &[], PoolLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("myEndpoint_prod_endpoint_<i>"), "{err}");
        let args = vec![(
            "myEndpoint_prod_endpoint_5".to_string(),
            "http://x".to_string(),
        )];
        assert!(resolve(&model(), &args, &[], PoolLimits::default()).is_err());
        let args = vec![(
            "myEndpoint_prod_endpoint_0".to_string(),
            "not a url".to_string(),
        )];
        assert!(resolve(&model(), &args, &[], PoolLimits::default()).is_err());
    }

    #[test]
    fn urls_of_one_origin_share_a_pool() {
        let mut m = model();
        m.endpoints[0].urls = vec![
            "http://a:1/v1".into(),
            "http://A:1/v2".into(),
            "https://a:1/v1".into(),
            "http://a:2/v1".into(),
        ];
        let up = resolve(&m, &[], &[], PoolLimits::default()).unwrap();
        let t = &up[0].targets;
        assert!(Arc::ptr_eq(&t[0].pool, &t[1].pool));
        assert!(!Arc::ptr_eq(&t[0].pool, &t[2].pool));
        assert!(!Arc::ptr_eq(&t[0].pool, &t[3].pool));
        assert_eq!(t[2].origin.to_string(), "https://a:1/");
    }

    #[test]
    fn load_balance_rotates() {
        let up = resolve(&model(), &[], &[], PoolLimits::default()).unwrap();
        let picks: Vec<usize> = (0..4).map(|_| up[0].first()).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }
}
