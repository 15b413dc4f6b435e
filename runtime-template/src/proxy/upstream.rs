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
    /// request whose path after the base path is `rest` (raw) with the raw `query`, if any,
    /// made and checked by `http` alone: the tests' reference for [`Target::checked`].
    #[cfg(test)]
    pub fn uri_for(&self, rest: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let pieces = self.pieces(rest, query);
        let mut path = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
        for piece in pieces {
            path.extend_from_slice(piece);
        }
        // What `Uri::builder().path_and_query(path).build()` makes, without the builder's
        // steps (about 250 instructions a request): the path is checked all the same.
        PathAndQuery::try_from(path)
            .map(Uri::from)
            .map_err(Into::into)
    }

    /// The upstream request target (RFC 9112 §3.2.1 origin form: path and query) for a
    /// request whose path after the base path is `rest` (raw) with the raw `query`, if any,
    /// checked: ready to be written without making a `Uri` (an allocation and a check of about
    /// 10 instructions a byte). `Err` exactly when `http`'s `PathAndQuery` refuses the target
    /// (see `origin_form_end`). Checked once, before a
    /// connection is taken or made, so that a target neither client can send is refused the
    /// same way on either client's path.
    pub fn checked<'a>(
        &'a self,
        rest: &'a str,
        query: Option<&'a str>,
    ) -> Result<CheckedTarget<'a>, InvalidTarget> {
        let pieces = self.pieces(rest, query);
        let len = origin_form_end(&pieces)?;
        Ok(CheckedTarget { pieces, len })
    }

    /// The target's bytes before they are checked, in pieces: the URL's path, `rest` after a
    /// `/` when it has none, `/` for nothing at all, then the URL's query and `query` joined
    /// by `&`.
    fn pieces<'a>(&'a self, rest: &'a str, query: Option<&'a str>) -> [&'a [u8]; 7] {
        let slash: &[u8] = if !rest.starts_with('/') && (!rest.is_empty() || self.prefix.is_empty())
        {
            b"/"
        } else {
            b""
        };
        let (mark, first, and, second): (&[u8], &str, &[u8], &str) =
            match (self.query.as_deref(), query) {
                (Some(own), Some(query)) => (b"?", own, b"&", query),
                (Some(only), None) | (None, Some(only)) => (b"?", only, b"", ""),
                (None, None) => (b"", "", b"", ""),
            };
        [
            self.prefix.as_bytes(),
            slash,
            rest.as_bytes(),
            mark,
            first.as_bytes(),
            and,
            second.as_bytes(),
        ]
    }
}

/// A request target `http`'s `PathAndQuery` would refuse (a byte it does not take, or too
/// long): the upstream request is not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upstream request target is not a valid path and query")]
pub struct InvalidTarget;

/// A request target in origin form (RFC 9112 §3.2.1: path and query) that
/// [`Target::checked`] found valid: its pieces, and its length without a fragment.
#[derive(Debug, Clone, Copy)]
pub struct CheckedTarget<'a> {
    pieces: [&'a [u8]; 7],
    len: usize,
}

impl CheckedTarget<'_> {
    /// Appends the target's bytes to `dst` (a fragment left out, as `http` leaves it out).
    pub fn write(&self, dst: &mut Vec<u8>) {
        let start = dst.len();
        // (Most of the seven pieces are empty: no call to copy nothing.)
        for piece in self.pieces.iter().filter(|piece| !piece.is_empty()) {
            dst.extend_from_slice(piece);
        }
        dst.truncate(start + self.len);
    }

    /// The target as a `Uri` (hyper's client takes one).
    pub fn to_uri(&self) -> Result<Uri, http::Error> {
        let mut path = Vec::with_capacity(self.len);
        self.write(&mut path);
        PathAndQuery::try_from(path)
            .map(Uri::from)
            .map_err(Into::into)
    }
}

/// Where the origin-form target made of `pieces` (by `Target::pieces` from `&str`s, so
/// UTF-8, starting with `/`) ends: at its first `#` (a fragment, left out), else its length.
/// `Err` for what `http::uri::PathAndQuery` refuses, so that both clients refuse the same
/// targets:
/// - longer than 65,534 bytes (`http`'s limit, `u16::MAX - 1`), fragment included;
/// - in the path: controls, space, DEL, `<`, `>` and `` ` `` (`"`, `{`, `}`, `|`, `\\` and
///   `^` are taken as they come, as `http` takes them for clients that send them raw);
/// - in the query (after the first `?`): controls, space, DEL, `"`, `<` and `>`;
/// - bytes from 0x80 are taken (UTF-8 already).
///
/// Both sets are the WHATWG URL standard's path and query percent-encode sets as `http` 1.5
/// applies them (the version in the lock files); the test
/// `written_targets_are_what_uri_for_makes` holds them to the `http` compiled in, so an
/// update of `http` that changes them fails it.
fn origin_form_end(pieces: &[&[u8]]) -> Result<usize, InvalidTarget> {
    const MAX_LEN: usize = u16::MAX as usize - 1;
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    let first = pieces.iter().find_map(|p| p.first());
    if len > MAX_LEN || first != Some(&b'/') {
        return Err(InvalidTarget);
    }
    let mut in_query = false;
    let mut at = 0;
    for piece in pieces {
        for &b in *piece {
            // One load and one test for a byte taken anywhere (most of them).
            match TARGET_BYTES[usize::from(b)] {
                ANYWHERE => {}
                FRAGMENT => return Ok(at),
                QUERY_MARK => in_query = true,
                PATH_ONLY if !in_query => {}
                QUERY_ONLY if in_query => {}
                _ => return Err(InvalidTarget),
            }
            at += 1;
        }
    }
    Ok(len)
}

/// A byte taken in the path and in the query.
const ANYWHERE: u8 = 0;
/// `#`: the fragment starts.
const FRAGMENT: u8 = 1;
/// `?`: the query starts (after it, one more `?` is a byte of the query).
const QUERY_MARK: u8 = 2;
/// Taken in the path only (`"`).
const PATH_ONLY: u8 = 3;
/// Taken in the query only (`` ` ``).
const QUERY_ONLY: u8 = 4;
/// Taken nowhere: controls, space, DEL, `<`, `>`.
const NOWHERE: u8 = 5;

/// Each byte's class for [`origin_form_end`] (see there).
const TARGET_BYTES: [u8; 256] = {
    let mut table = [ANYWHERE; 256];
    let mut b = 0;
    while b <= 0x20 {
        table[b] = NOWHERE;
        b += 1;
    }
    table[0x7f] = NOWHERE;
    table[b'<' as usize] = NOWHERE;
    table[b'>' as usize] = NOWHERE;
    table[b'#' as usize] = FRAGMENT;
    table[b'?' as usize] = QUERY_MARK;
    table[b'"' as usize] = PATH_ONLY;
    table[b'`' as usize] = QUERY_ONLY;
    table
};

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
    fn written_targets_are_what_uri_for_makes() {
        // Every ASCII byte in the path and in the query, beside the usual shapes, and the
        // length limit: written exactly when `uri_for` makes a target, and the same bytes.
        let mut rests: Vec<String> = ["", "/", "/pet/1", "pet", "/é", "//x", "/a?b", "/a#b?c"]
            .map(String::from)
            .to_vec();
        let mut queries: Vec<Option<String>> = vec![None, Some(String::new()), Some("q=1".into())];
        for b in 0u8..=0x7f {
            let c = char::from(b);
            rests.push(format!("/a{c}b"));
            queries.push(Some(format!("a{c}b")));
        }
        rests.push(format!("/{}", "a".repeat(65_533)));
        rests.push(format!("/{}", "a".repeat(65_534)));
        rests.push(format!("/{}#{}", "a".repeat(10), "b".repeat(65_534)));
        for base in ["http://h", "http://h/api/", "http://h/v1/find?a=1"] {
            let t = Target::parse(base).unwrap();
            for rest in &rests {
                for query in &queries {
                    let query = query.as_deref();
                    let made = t.uri_for(rest, query);
                    let mut dst = b"GET ".to_vec();
                    let checked = t.checked(rest, query);
                    let written = checked.map(|target| target.write(&mut dst));
                    let shown = || format!("{base} {:?} {query:?}", rest.get(..20));
                    match made {
                        Ok(uri) => {
                            assert_eq!(written, Ok(()), "{}", shown());
                            let expected = format!("GET {}", uri.path_and_query().unwrap());
                            assert_eq!(dst, expected.as_bytes(), "{}", shown());
                            assert_eq!(checked.unwrap().to_uri().unwrap(), uri, "{}", shown());
                        }
                        Err(_) => {
                            assert_eq!(written, Err(InvalidTarget), "{}", shown());
                            assert_eq!(dst, b"GET ", "left as it was: {}", shown());
                        }
                    }
                }
            }
        }
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
