//! Request routing: full path template (base path + resource path) and method to a route.
//!
//! Built once at start-up (and at `micro-gw build`, to report conflicts early) from the model.
//! Matching runs on the normalised request path (see [`crate::path`]), so percent-encoding
//! reaches the upstream as the client sent it, in canonical case.
//!
//! # Templates
//!
//! A template is split at `/` into segments. Each segment is one of:
//! - a literal (`pets`, `städte`): matched byte for byte against the request segment, after
//!   both are put into one canonical form ([`crate::path::canonical_literal`]; a non-ASCII
//!   literal means its percent-encoded UTF-8, RFC 3987 §3.1);
//! - a parameter (`{petId}`): any non-empty segment;
//! - a segment mixing literals and parameters (`{id}.json`, `{category}.{ext}`, `{id}{ext}`,
//!   `certificates(alg={alg},thumbprint={tp})`): the literals must appear in order, each
//!   parameter takes at least one byte, and parameters never span a `/`;
//! - a final `*` (from the resource `/*`): the catch-all, which matches the rest of the path,
//!   including nothing at all, so `/ctx/*` answers `/ctx`, `/ctx/` and `/ctx/a/b` (as WSO2's
//!   `/*` resource does for the API's root).
//!
//! A template ending in `/` (the resource `/` under a base path) also answers the path without
//! that slash, unless that path is itself declared.
//!
//! # Precedence
//!
//! Where several templates match one request, segment by segment from the left:
//! 1. a literal segment beats everything else;
//! 2. then mixed segments, the one with more literal bytes first (then fewer parameters, then
//!    the template text, so the order never depends on the order of declaration);
//! 3. then a plain parameter;
//! 4. then the catch-all.
//!
//! Matching is method-aware: when the most specific template that matches the path has no
//! operation for the request's method, the next one that matches is tried, so
//! `GET /users/me` and `PUT /users/{id}` coexist and `PUT /users/me` reaches the second. Only
//! when no matching template has the method is the answer 405, with the methods of all of
//! them in `Allow`. HEAD is answered by GET where there is no HEAD (RFC 9110 §9.3.2).
//!
//! Two operations conflict only when they have the same method and templates that differ
//! at most in parameter names; every conflict is reported (see [`Router::build`]).
//!
//! A lookup visits each node of the table at most once (the depth of a node is the index of
//! the request segment it is matched against), so its cost is bounded by the size of the
//! table whatever the request path is.

pub mod express;
pub mod glob;
pub mod jsregex;

use std::collections::BTreeSet;

use http::{HeaderValue, Method};

use crate::model::{join_path, GatewayModel};
use crate::path::canonical_literal;

/// The host and port of a request's authority (an HTTP/2 `:authority`, an HTTP/1.0
/// absolute-form target), as a `Host` field would carry them: without the userinfo
/// (`user:pass@`, which RFC 9110 §4.2.4 deprecates and `http`'s `Authority::host` also skips).
/// Host routing, `hostMatch`, rate-limit keys by host name, expressions' `host` and the
/// upstream `Host` all read it so.
pub fn authority_host(authority: &http::uri::Authority) -> &str {
    let text = authority.as_str();
    text.rsplit_once('@').map_or(text, |(_, host)| host)
}

/// Index of a resource in the flattened route table.
pub type RouteId = usize;

/// Where a route leads.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index of the API in the model.
    pub api: usize,
    /// Index of the resource within the API.
    pub resource: usize,
    /// Number of path segments that belong to the base path (0 for `/`).
    pub base_segments: usize,
}

impl Route {
    /// The part of a normalised request path after the base path: `/pet/1` for
    /// `/petstore/v1/pet/1` under `/petstore/v1`, `""` for `/petstore/v1` itself and `/` for
    /// `/petstore/v1/`. Counted in segments, never in bytes, so it is right whatever the
    /// base path's spelling (encoded or templated) and total for any input: a path shorter
    /// than the base path gives `""`.
    pub fn remainder<'p>(&self, path: &'p str) -> &'p str {
        if self.base_segments == 0 {
            return path;
        }
        // The byte offset of the slash after the base path's last segment.
        let slash = path
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'/')
            .nth(self.base_segments);
        match slash {
            Some((i, _)) => path.get(i..).unwrap_or(""),
            None => "",
        }
    }
}

/// The outcome of a lookup.
#[derive(Debug)]
pub enum Match {
    /// A resource for this method and path.
    Found(RouteId),
    /// The path exists, but not for this method: the value for `Allow`.
    MethodNotAllowed(HeaderValue),
    /// Nothing at this path.
    NotFound,
}

/// Two resources that cannot both be routed, or a template the router cannot express.
/// Indices refer to the model, so the toolkit can name the lines of both.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Two operations with the same method and templates that differ at most in parameter
    /// names.
    #[error("{method} {path} (API '{api_name}', {source_file}) conflicts with {method} {other_path} (API '{other_api_name}', {other_source}): {reason}; change one of the paths or base paths")]
    Conflict {
        /// Method of both.
        method: String,
        /// The full path of the later resource.
        path: String,
        /// Its API (index in the model).
        api: usize,
        /// Its resource (index in the API).
        resource: usize,
        /// Its API's name.
        api_name: String,
        /// Its definition file.
        source_file: String,
        /// The full path of the resource already there.
        other_path: String,
        /// Its API (index in the model).
        other_api: usize,
        /// Its resource (index in the API).
        other_resource: usize,
        /// Its API's name.
        other_api_name: String,
        /// Its definition file.
        other_source: String,
        /// Why they clash.
        reason: String,
    },
    /// A template the router cannot express.
    #[error("{method} {path} (API '{api_name}', {source_file}): {reason}")]
    Unsupported {
        /// Method.
        method: String,
        /// Full path.
        path: String,
        /// API (index in the model).
        api: usize,
        /// Resource (index in the API).
        resource: usize,
        /// API's name.
        api_name: String,
        /// Definition file.
        source_file: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// One piece of a segment that mixes literals and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Piece {
    /// Canonical literal bytes (never empty).
    Lit(String),
    /// `n` adjacent parameters: at least `n` bytes.
    Params(usize),
}

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Static(String),
    Param,
    Mixed(Vec<Piece>),
    CatchAll,
}

/// Checks that a path template can be routed; the error says what is wrong with it (an
/// unbalanced or nested brace, an unnamed `{}`).
pub fn check_template(template: &str) -> Result<(), String> {
    parse_template(template).map(|_| ())
}

/// Splits a full template into segments; the error says what is wrong.
fn parse_template(template: &str) -> Result<Vec<Segment>, String> {
    let Some(body) = template.strip_prefix('/') else {
        return Err("a path template must start with '/'".into());
    };
    let raw: Vec<&str> = body.split('/').collect();
    let last = raw.len().saturating_sub(1);
    let mut segments = Vec::with_capacity(raw.len());
    for (i, segment) in raw.iter().enumerate() {
        if *segment == "*" && i == last {
            segments.push(Segment::CatchAll);
            continue;
        }
        if !segment.contains(['{', '}']) {
            segments.push(Segment::Static(canonical_literal(segment)));
            continue;
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut rest = *segment;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(at) if rest.as_bytes().get(at) == Some(&b'}') => {
                    return Err(format!("segment {segment:?} has a '}}' without its '{{'"));
                }
                Some(at) => {
                    let (literal, open) = rest.split_at(at);
                    push_literal(&mut pieces, literal);
                    let after = open.get(1..).unwrap_or("");
                    let Some(close) = after.find('}') else {
                        return Err(format!("segment {segment:?} has a '{{' without its '}}'"));
                    };
                    let name = after.get(..close).unwrap_or("");
                    if name.contains('{') {
                        return Err(format!(
                            "segment {segment:?} nests '{{' in a parameter name"
                        ));
                    }
                    if name.trim().is_empty() {
                        return Err(format!("segment {segment:?} has an unnamed {{}} parameter"));
                    }
                    match pieces.last_mut() {
                        Some(Piece::Params(n)) => *n += 1,
                        _ => pieces.push(Piece::Params(1)),
                    }
                    rest = after.get(close + 1..).unwrap_or("");
                }
                None => {
                    push_literal(&mut pieces, rest);
                    rest = "";
                }
            }
        }
        segments.push(match pieces.as_slice() {
            [Piece::Params(1)] => Segment::Param,
            _ => Segment::Mixed(pieces),
        });
    }
    Ok(segments)
}

fn push_literal(pieces: &mut Vec<Piece>, literal: &str) {
    if literal.is_empty() {
        return;
    }
    let literal = canonical_literal(literal);
    match pieces.last_mut() {
        Some(Piece::Lit(text)) => text.push_str(&literal),
        _ => pieces.push(Piece::Lit(literal)),
    }
}

/// Whether a request segment matches a mixed segment. Each literal is taken at its leftmost
/// place that leaves the parameters before it their minimum length, which is optimal for
/// patterns whose parameters are otherwise unbounded; linear in the segment for each literal.
fn mixed_matches(pieces: &[Piece], segment: &str) -> bool {
    let s = segment.as_bytes();
    let mut start = 0;
    let mut end = s.len();
    let mut pieces = pieces;
    if let Some((Piece::Lit(first), rest)) = pieces.split_first() {
        if !s.starts_with(first.as_bytes()) {
            return false;
        }
        start = first.len();
        pieces = rest;
    }
    if let Some((Piece::Lit(last), rest)) = pieces.split_last() {
        let tail = s.get(start..).unwrap_or(&[]);
        if !tail.ends_with(last.as_bytes()) {
            return false;
        }
        end -= last.len();
        pieces = rest;
    }
    let mut pos = start;
    let mut pending = 0usize;
    for piece in pieces {
        match piece {
            Piece::Params(n) => pending += n,
            Piece::Lit(literal) => {
                let from = pos + pending;
                let Some(hay) = s.get(from..end) else {
                    return false;
                };
                let needle = literal.as_bytes();
                let Some(found) = hay.windows(needle.len()).position(|w| w == needle) else {
                    return false;
                };
                pos = from + found + needle.len();
                pending = 0;
            }
        }
    }
    end.saturating_sub(pos) >= pending && pos <= end
}

/// Sort key of mixed segments: more literal bytes first, then fewer parameters, then text.
fn mixed_rank(pieces: &[Piece]) -> (std::cmp::Reverse<usize>, usize, Vec<Piece>) {
    let literal: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(l) => l.len(),
            Piece::Params(_) => 0,
        })
        .sum();
    let params: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Params(n) => *n,
            Piece::Lit(_) => 0,
        })
        .sum();
    (std::cmp::Reverse(literal), params, pieces.to_vec())
}

#[derive(Debug, Default)]
struct Node {
    /// Literal segments and their nodes, sorted by the segment's bytes: a binary search per
    /// level (no hashing of the request's segment).
    statics: Statics,
    /// Sorted by [`mixed_rank`].
    mixed: Vec<(Vec<Piece>, usize)>,
    param: Option<usize>,
    /// The operations of a template ending here.
    entry: Option<usize>,
    /// The operations of a template `.../*` whose catch-all starts here.
    catch_all: Option<usize>,
}

/// A node's literal children: (segment, node), sorted by segment.
#[derive(Debug, Default)]
struct Statics(Vec<(String, usize)>);

impl Statics {
    fn get(&self, segment: &str) -> Option<usize> {
        let at = self
            .0
            .binary_search_by(|(text, _)| text.as_str().cmp(segment))
            .ok()?;
        self.0.get(at).map(|(_, node)| *node)
    }

    fn insert(&mut self, segment: String, node: usize) {
        match self
            .0
            .binary_search_by(|(text, _)| text.as_str().cmp(&segment))
        {
            Ok(at) => {
                if let Some(slot) = self.0.get_mut(at) {
                    slot.1 = node;
                }
            }
            Err(at) => self.0.insert(at, (segment, node)),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Method, route, and whether the route is only a trailing-slash alias.
    methods: Vec<(Method, RouteId, bool)>,
    allow: HeaderValue,
}

impl Entry {
    fn find(&self, method: &Method) -> Option<RouteId> {
        let find = |wanted: &Method| {
            self.methods
                .iter()
                .find(|(m, _, _)| m == wanted)
                .map(|(_, r, _)| *r)
        };
        find(method).or_else(|| {
            (method == Method::HEAD)
                .then(|| find(&Method::GET))
                .flatten()
        })
    }
}

/// The compiled route table.
#[derive(Debug)]
pub struct Router {
    nodes: Vec<Node>,
    entries: Vec<Entry>,
    routes: Vec<Route>,
}

/// What a lookup walk is after.
enum Want<'m> {
    Method(&'m Method),
    /// Every entry that matches the path (for `Allow`).
    All(Vec<usize>),
}

impl Router {
    /// Builds the table. Every conflict and every template that cannot be routed is
    /// reported, not only the first.
    pub fn build(model: &GatewayModel) -> Result<Router, Vec<RouteError>> {
        let mut router = Router {
            nodes: vec![Node::default()],
            entries: Vec::new(),
            routes: Vec::new(),
        };
        let mut errors = Vec::new();
        for (api_idx, api) in model.apis.iter().enumerate() {
            let base_segments = match api.base_path.trim_matches('/') {
                "" => 0,
                base => base.split('/').count(),
            };
            for (res_idx, resource) in api.resources.iter().enumerate() {
                let full = join_path(&api.base_path, &resource.path);
                let unsupported = |reason: String| RouteError::Unsupported {
                    method: resource.method.clone(),
                    path: full.clone(),
                    api: api_idx,
                    resource: res_idx,
                    api_name: api.name.clone(),
                    source_file: api.source.clone(),
                    reason,
                };
                let Ok(method) = Method::from_bytes(resource.method.as_bytes()) else {
                    errors.push(unsupported("not an HTTP method".into()));
                    continue;
                };
                let segments = match parse_template(&full) {
                    Ok(segments) => segments,
                    Err(reason) => {
                        errors.push(unsupported(reason));
                        continue;
                    }
                };
                let route_id = router.routes.len();
                router.routes.push(Route {
                    api: api_idx,
                    resource: res_idx,
                    base_segments,
                });
                if let Some(existing) = router.insert(&segments, &method, route_id, false) {
                    let other = &router.routes[existing];
                    let other_api = &model.apis[other.api];
                    let other_path = join_path(
                        &other_api.base_path,
                        &other_api.resources[other.resource].path,
                    );
                    let reason = if other_path == full {
                        "the same method and path are declared twice"
                    } else {
                        "the templates match the same paths (they differ only in parameter names)"
                    };
                    errors.push(RouteError::Conflict {
                        method: method.to_string(),
                        path: full.clone(),
                        api: api_idx,
                        resource: res_idx,
                        api_name: api.name.clone(),
                        source_file: api.source.clone(),
                        other_path,
                        other_api: other.api,
                        other_resource: other.resource,
                        other_api_name: other_api.name.clone(),
                        other_source: other_api.source.clone(),
                        reason: reason.into(),
                    });
                    continue;
                }
                // `/base/` also answers `/base`, unless that is declared itself.
                if segments.len() > 1 && segments.last() == Some(&Segment::Static(String::new())) {
                    let alias = &segments[..segments.len() - 1];
                    router.insert(alias, &method, route_id, true);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for entry in &mut router.entries {
            let names: BTreeSet<&str> = entry.methods.iter().map(|(m, _, _)| m.as_str()).collect();
            let names: Vec<&str> = names.into_iter().collect();
            entry.allow = HeaderValue::from_str(&names.join(", "))
                .unwrap_or_else(|_| HeaderValue::from_static(""));
        }
        Ok(router)
    }

    fn child(&mut self, node: usize, segment: &Segment) -> usize {
        let existing = match segment {
            Segment::Static(text) => self.nodes[node].statics.get(text),
            Segment::Param => self.nodes[node].param,
            Segment::Mixed(pieces) => self.nodes[node]
                .mixed
                .iter()
                .find(|(p, _)| p == pieces)
                .map(|(_, n)| *n),
            Segment::CatchAll => None,
        };
        if let Some(existing) = existing {
            return existing;
        }
        let created = self.nodes.len();
        self.nodes.push(Node::default());
        let parent = &mut self.nodes[node];
        match segment {
            Segment::Static(text) => {
                parent.statics.insert(text.clone(), created);
            }
            Segment::Param => parent.param = Some(created),
            Segment::Mixed(pieces) => {
                parent.mixed.push((pieces.clone(), created));
                parent.mixed.sort_by_cached_key(|(p, _)| mixed_rank(p));
            }
            Segment::CatchAll => {}
        }
        created
    }

    /// Adds one operation; returns the route already there for the same method, if any
    /// (an alias never displaces nor reports anything).
    fn insert(
        &mut self,
        segments: &[Segment],
        method: &Method,
        route: RouteId,
        alias: bool,
    ) -> Option<RouteId> {
        let mut node = 0;
        let mut catch_all = false;
        for segment in segments {
            if *segment == Segment::CatchAll {
                catch_all = true;
                break;
            }
            node = self.child(node, segment);
        }
        let slot = if catch_all {
            &mut self.nodes[node].catch_all
        } else {
            &mut self.nodes[node].entry
        };
        let entry_idx = match *slot {
            Some(entry) => entry,
            None => {
                let created = self.entries.len();
                *slot = Some(created);
                self.entries.push(Entry {
                    methods: Vec::new(),
                    allow: HeaderValue::from_static(""),
                });
                created
            }
        };
        let entry = &mut self.entries[entry_idx];
        match entry.methods.iter_mut().find(|(m, _, _)| m == method) {
            Some(_) if alias => None,
            Some(existing) if existing.2 => {
                *existing = (method.clone(), route, false);
                None
            }
            Some(existing) => Some(existing.1),
            None => {
                entry.methods.push((method.clone(), route, alias));
                None
            }
        }
    }

    /// Looks a request up by method and normalised path.
    pub fn lookup(&self, method: &Method, path: &str) -> Match {
        let Some(rest) = path.strip_prefix('/') else {
            return Match::NotFound;
        };
        let mut want = Want::Method(method);
        if let Some(route) = self.walk(0, Some(rest), &mut want) {
            return Match::Found(route);
        }
        let mut all = Want::All(Vec::new());
        self.walk(0, Some(rest), &mut all);
        let Want::All(found) = all else {
            return Match::NotFound;
        };
        match found.as_slice() {
            [] => Match::NotFound,
            [one] => Match::MethodNotAllowed(self.entries[*one].allow.clone()),
            many => {
                let names: BTreeSet<&str> = many
                    .iter()
                    .flat_map(|e| self.entries[*e].methods.iter().map(|(m, _, _)| m.as_str()))
                    .collect();
                let names: Vec<&str> = names.into_iter().collect();
                Match::MethodNotAllowed(
                    HeaderValue::from_str(&names.join(", "))
                        .unwrap_or_else(|_| HeaderValue::from_static("")),
                )
            }
        }
    }

    /// Offers an entry to the walk: the route when it has the method, else records it.
    fn offer(&self, entry: Option<usize>, want: &mut Want<'_>) -> Option<RouteId> {
        let entry = entry?;
        match want {
            Want::Method(method) => self.entries.get(entry)?.find(method),
            Want::All(found) => {
                found.push(entry);
                None
            }
        }
    }

    /// Depth-first walk in precedence order; `rest` is the path after the current node's
    /// segment and its `/`, `None` when the path ends at this node.
    fn walk(&self, node: usize, rest: Option<&str>, want: &mut Want<'_>) -> Option<RouteId> {
        let here = self.nodes.get(node)?;
        let Some(rest) = rest else {
            return self
                .offer(here.entry, want)
                .or_else(|| self.offer(here.catch_all, want));
        };
        let (segment, next) = match rest.bytes().position(|b| b == b'/') {
            Some(at) => (rest.get(..at).unwrap_or(""), rest.get(at + 1..)),
            None => (rest, None),
        };
        if let Some(child) = here.statics.get(segment) {
            if let Some(found) = self.walk(child, next, want) {
                return Some(found);
            }
        }
        if !segment.is_empty() {
            for (pieces, child) in &here.mixed {
                if mixed_matches(pieces, segment) {
                    if let Some(found) = self.walk(*child, next, want) {
                        return Some(found);
                    }
                }
            }
            if let Some(child) = here.param {
                if let Some(found) = self.walk(child, next, want) {
                    return Some(found);
                }
            }
        }
        self.offer(here.catch_all, want)
    }

    /// The route behind an id from [`Router::lookup`].
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id]
    }

    /// Number of routes (resources).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no resource is routed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authoritys_host_leaves_out_its_userinfo() {
        for (authority, host) in [
            ("c.example:8080", "c.example:8080"),
            ("user:secret@c.example:8080", "c.example:8080"),
            ("u@[::1]:81", "[::1]:81"),
            ("@c.example", "c.example"),
        ] {
            let authority = http::uri::Authority::try_from(authority).unwrap();
            assert_eq!(authority_host(&authority), host);
        }
    }
    use crate::model::{Api, Resource, MODEL_FORMAT};

    fn api(name: &str, base: &str, resources: &[(&str, &str)]) -> Api {
        Api {
            id: format!("api_{name}"),
            name: name.into(),
            version: "1".into(),
            base_path: base.into(),
            source: format!("{name}.yaml"),
            resources: resources
                .iter()
                .map(|(m, p)| Resource {
                    method: m.to_string(),
                    path: p.to_string(),
                    operation_id: None,
                    production: Some(0),
                    sandbox: None,
                    security: None,
                    pipeline: 0,
                })
                .collect(),
            allow_encoded_slash: false,
        }
    }

    fn model(apis: Vec<Api>) -> GatewayModel {
        GatewayModel {
            format: MODEL_FORMAT,
            project: "p".into(),
            apis,
            endpoints: vec![],
            pipelines: vec![],
            express: vec![],
        }
    }

    #[test]
    fn routes_by_method_path_and_parameters() {
        let m = model(vec![api(
            "pets",
            "/petstore/v1",
            &[
                ("GET", "/pet/{petId}"),
                ("DELETE", "/pet/{petId}"),
                ("GET", "/pet/findByStatus"),
            ],
        )]);
        let router = Router::build(&m).unwrap();
        assert!(matches!(
            router.lookup(&Method::GET, "/petstore/v1/pet/1"),
            Match::Found(0)
        ));
        assert!(matches!(
            router.lookup(&Method::DELETE, "/petstore/v1/pet/1"),
            Match::Found(1)
        ));
        assert!(matches!(
            router.lookup(&Method::GET, "/petstore/v1/pet/findByStatus"),
            Match::Found(2)
        ));
        match router.lookup(&Method::POST, "/petstore/v1/pet/1") {
            Match::MethodNotAllowed(allow) => assert_eq!(allow, "DELETE, GET"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            router.lookup(&Method::GET, "/petstore/v2/pet/1"),
            Match::NotFound
        ));
        assert!(matches!(
            router.lookup(&Method::GET, "/petstore/v1/pet/a%2Fb"),
            Match::Found(0)
        ));
        assert_eq!(router.route(0).base_segments, 2);
    }

    #[test]
    fn wildcard_and_root_resources() {
        let m = model(vec![
            api("any", "/any", &[("GET", "/*")]),
            api("root", "/r", &[("GET", "/")]),
        ]);
        let router = Router::build(&m).unwrap();
        assert!(matches!(
            router.lookup(&Method::GET, "/any/a/b/c"),
            Match::Found(0)
        ));
        assert!(matches!(
            router.lookup(&Method::GET, "/r/"),
            Match::Found(1)
        ));
        assert!(matches!(router.lookup(&Method::GET, "/r"), Match::Found(1)));
    }

    #[test]
    fn duplicate_and_conflicting_templates_are_reported() {
        let dup = model(vec![api("a", "/x", &[("GET", "/p"), ("GET", "/p")])]);
        let err = Router::build(&dup).unwrap_err()[0].to_string();
        assert!(err.contains("declared twice"), "{err}");

        let clash = model(vec![
            api("a", "/x", &[("GET", "/pet/{id}")]),
            api("b", "/x/pet", &[("GET", "/{petId}")]),
        ]);
        let err = Router::build(&clash).unwrap_err()[0].to_string();
        assert!(err.contains("API 'a'") && err.contains("API 'b'"), "{err}");
    }

    fn found(router: &Router, method: Method, path: &str) -> Option<RouteId> {
        match router.lookup(&method, path) {
            Match::Found(id) => Some(id),
            _ => None,
        }
    }

    /// Issue 10 item 1: `/*` under a base path is also the API's root, with and without `/`.
    #[test]
    fn catch_all_covers_the_base_path_itself() {
        let m = model(vec![
            api("ctx", "/ctx", &[("GET", "/*")]),
            api("root", "/", &[("POST", "/*")]),
            api("deep", "/d", &[("GET", "/a/*"), ("GET", "/a/b")]),
        ]);
        let router = Router::build(&m).unwrap();
        for path in ["/ctx", "/ctx/", "/ctx/a/b", "/ctx/a/"] {
            assert_eq!(found(&router, Method::GET, path), Some(0), "{path}");
        }
        assert_eq!(found(&router, Method::POST, "/"), Some(1));
        assert_eq!(found(&router, Method::POST, "/anything/at/all"), Some(1));
        assert_eq!(found(&router, Method::GET, "/d/a"), Some(2));
        assert_eq!(
            found(&router, Method::GET, "/d/a/b"),
            Some(3),
            "literal first"
        );
        assert_eq!(found(&router, Method::GET, "/d/a/b/c"), Some(2));
        assert_eq!(found(&router, Method::GET, "/ctxs"), None);
        let route = router.route(0);
        assert_eq!(route.remainder("/ctx"), "");
        assert_eq!(route.remainder("/ctx/"), "/");
        assert_eq!(route.remainder("/ctx/a/b"), "/a/b");
    }

    /// A node's literal children are found by binary search whatever order they were added
    /// in; adding a segment again replaces its node.
    #[test]
    fn literal_children_are_found_in_any_insertion_order() {
        let mut statics = Statics::default();
        let names = ["pets", "a", "zoo", "store", "", "Pets", "st%C3%A4dte", "b"];
        for (node, name) in names.iter().enumerate() {
            statics.insert(name.to_string(), node);
        }
        for (node, name) in names.iter().enumerate() {
            assert_eq!(statics.get(name), Some(node), "{name:?}");
        }
        assert_eq!(statics.get("pet"), None);
        assert_eq!(statics.get("zz"), None);
        statics.insert("zoo".into(), 42);
        assert_eq!(statics.get("zoo"), Some(42));
        assert_eq!(statics.0.len(), names.len());
    }

    /// Issue 10 item 2: the remainder is counted in segments and total on any path.
    #[test]
    fn remainder_is_total() {
        let route = Route {
            api: 0,
            resource: 0,
            base_segments: 3,
        };
        for (path, rest) in [
            ("/bank/payments/v1/x/y", "/x/y"),
            ("/bank/payments/v1", ""),
            ("/bank", ""),
            ("/", ""),
            ("", ""),
            ("/b/p/%C3%A4/z", "/z"),
        ] {
            assert_eq!(route.remainder(path), rest, "{path}");
        }
    }

    /// Issue 10 item 3: a non-ASCII literal means its percent-encoded UTF-8.
    #[test]
    fn non_ascii_literals_route_in_encoded_form() {
        let m = model(vec![api(
            "geo",
            "/geo",
            &[
                ("GET", "/st\u{e4}dte/{name}"),
                ("GET", "/caf%c3%a9s/{id}.json"),
            ],
        )]);
        let router = Router::build(&m).unwrap();
        assert_eq!(
            found(&router, Method::GET, "/geo/st%C3%A4dte/k%C3%B6ln"),
            Some(0)
        );
        let raw = crate::path::normalise("/geo/st\u{e4}dte/k\u{f6}ln").unwrap();
        assert_eq!(found(&router, Method::GET, &raw.path), Some(0));
        assert_eq!(
            found(&router, Method::GET, "/geo/caf%C3%A9s/1.json"),
            Some(1)
        );
        assert_eq!(found(&router, Method::GET, "/geo/stadte/x"), None);
    }

    /// Issue 10 item 4: several parameters in one segment, split by literal separators.
    #[test]
    fn several_parameters_in_one_segment() {
        let m = model(vec![api(
            "multi",
            "/m",
            &[
                ("GET", "/profiles/{id}{ext}"),
                ("GET", "/search/{category}.{ext}"),
                ("GET", "/certificates(alg={alg},thumbprint={tp})"),
                ("GET", "/search/{category}.json"),
                ("GET", "/search/{category}"),
                ("GET", "/files/{name}.tar.gz"),
            ],
        )]);
        let router = Router::build(&m).unwrap();
        assert_eq!(found(&router, Method::GET, "/m/profiles/7.xml"), Some(0));
        assert_eq!(found(&router, Method::GET, "/m/profiles/ab"), Some(0));
        assert_eq!(
            found(&router, Method::GET, "/m/profiles/a"),
            None,
            "two parameters, one byte"
        );
        assert_eq!(found(&router, Method::GET, "/m/search/books.csv"), Some(1));
        assert_eq!(
            found(&router, Method::GET, "/m/search/books.json"),
            Some(3),
            "more literal bytes first"
        );
        assert_eq!(found(&router, Method::GET, "/m/search/books"), Some(4));
        assert_eq!(
            found(&router, Method::GET, "/m/search/.csv"),
            Some(4),
            "parameters are never empty"
        );
        assert_eq!(
            found(
                &router,
                Method::GET,
                "/m/certificates(alg=RS256,thumbprint=ab:cd)"
            ),
            Some(2)
        );
        assert_eq!(
            found(&router, Method::GET, "/m/certificates(alg=RS256)"),
            None
        );
        assert_eq!(found(&router, Method::GET, "/m/files/a.b.tar.gz"), Some(5));
        assert_eq!(found(&router, Method::GET, "/m/files/.tar.gz"), None);
    }

    #[test]
    fn mixed_segments_match_exactly() {
        let p = |t: &str| match parse_template(t).unwrap().pop().unwrap() {
            Segment::Mixed(pieces) => pieces,
            other => panic!("{other:?}"),
        };
        let cases = [
            ("/{a}.{b}", "x.y", true),
            ("/{a}.{b}", "x.", false),
            ("/{a}.{b}", ".y", false),
            ("/{a}.{b}", "x.y.z", true),
            ("/a{b}a", "aa", false),
            ("/a{b}a", "aba", true),
            ("/ab{x}ba", "aba", false),
            ("/{x}-{y}-{z}", "1-2-3", true),
            ("/{x}-{y}-{z}", "1--3", false),
            ("/{x}{y}{z}", "abc", true),
            ("/{x}{y}{z}", "ab", false),
            ("/pre{x}", "pre", false),
            ("/pre{x}", "prex", true),
            ("/{x}post", "post", false),
        ];
        for (template, segment, expected) in cases {
            assert_eq!(
                mixed_matches(&p(template), segment),
                expected,
                "{template} {segment}"
            );
        }
        for bad in ["/{a", "/a}", "/{}", "/{a{b}}"] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }

    /// Issue 10 item 5: the method is part of a conflict, and a lookup tries the next
    /// matching template when the first has no operation for the method.
    #[test]
    fn conflicts_are_method_aware_and_all_reported() {
        let m = model(vec![api(
            "v1",
            "/v1",
            &[("GET", "/{groupName}"), ("PUT", "/{name}"), ("GET", "/me")],
        )]);
        let router = Router::build(&m).unwrap();
        assert_eq!(found(&router, Method::PUT, "/v1/x"), Some(1));
        assert_eq!(
            found(&router, Method::PUT, "/v1/me"),
            Some(1),
            "method-aware fallback"
        );
        assert_eq!(found(&router, Method::GET, "/v1/me"), Some(2));
        match router.lookup(&Method::DELETE, "/v1/me") {
            Match::MethodNotAllowed(allow) => assert_eq!(allow, "GET, PUT"),
            other => panic!("{other:?}"),
        }

        let clash = model(vec![
            api(
                "a",
                "/v1",
                &[("GET", "/{a}"), ("PUT", "/{b}"), ("POST", "/x/{c}.{d}")],
            ),
            api(
                "b",
                "/v1",
                &[("GET", "/{c}"), ("PUT", "/{d}"), ("POST", "/x/{e}.{f}")],
            ),
        ]);
        let errors = Router::build(&clash).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        let RouteError::Conflict {
            api,
            resource,
            other_api,
            other_resource,
            ..
        } = &errors[1]
        else {
            panic!("{errors:?}");
        };
        assert_eq!((*api, *resource, *other_api, *other_resource), (1, 1, 0, 1));
    }

    #[test]
    fn trailing_slash_alias_never_displaces_a_declared_path() {
        let m = model(vec![api(
            "a",
            "/a",
            &[("GET", "/"), ("GET", "/x/"), ("GET", "/x")],
        )]);
        let router = Router::build(&m).unwrap();
        assert_eq!(found(&router, Method::GET, "/a"), Some(0));
        assert_eq!(found(&router, Method::GET, "/a/"), Some(0));
        assert_eq!(found(&router, Method::GET, "/a/x/"), Some(1));
        assert_eq!(found(&router, Method::GET, "/a/x"), Some(2));
        assert_eq!(found(&router, Method::HEAD, "/a/x"), Some(2));
    }
}
