//! The Express Gateway routing tables: reference §1 and §7/§9 (`/wms`, `/wms*`, `/wms/*`,
//! `:param`, case, trailing slash, query, host wildcards, declaration order), EG's
//! `test/routing/*` cases, and path-to-regexp 0.1.13's expressions.

use super::*;
use crate::model::express::{ExpressRoute, HostPattern, PathPattern};

fn path(p: &str) -> ExpressPath {
    ExpressPath::compile(p).unwrap()
}

fn yes(p: &str, paths: &[&str]) {
    let c = path(p);
    for x in paths {
        assert_eq!(c.test(x), PathMatch::Yes, "{p} should match {x}");
    }
}

fn no(p: &str, paths: &[&str]) {
    let c = path(p);
    for x in paths {
        assert_eq!(c.test(x), PathMatch::No, "{p} should not match {x}");
    }
}

#[test]
fn exact_route_with_optional_trailing_slash() {
    yes("/wms", &["/wms", "/wms/", "/WMS", "/Wms/", "/wms?x=1"]);
    no("/wms", &["/wms/x", "/wmsx", "/wm", "/", "/wms//", "//wms"]);
    // EG test/routing/path-general.test.js
    yes("/admin", &["/admin", "/admin/"]);
    no("/admin", &["/admin/new", "/student", "/adm"]);
    assert!(path("/wms").is_fast());
}

#[test]
fn star_suffix() {
    yes(
        "/wms*",
        &["/wms", "/wms/", "/wmsfoo", "/wms/a/b", "/WMS", "/wms?x"],
    );
    no("/wms*", &["/wmts", "/wm", "/"]);
    yes(
        "/open*",
        &["/open", "/open/", "/openx", "/open/a/b", "/OPEN"],
    );
    assert!(path("/wms*").is_fast());
}

#[test]
fn slash_star() {
    yes("/wms/*", &["/wms/", "/wms/anything/deep", "/WMS/x"]);
    no("/wms/*", &["/wms", "/wmsx"]);
    yes("/k2/*", &["/k2/", "/k2/a/b"]);
    no("/k2/*", &["/k2"]);
    yes("/admin/*", &["/admin/", "/admin/new", "/admin/new/1/test"]);
    assert!(path("/k2/*").is_fast());
}

#[test]
fn params() {
    yes("/p/:id/x/*", &["/p/1/x/", "/p/abc/x/a/b", "/P/1/X/"]);
    no("/p/:id/x/*", &["/p//x/", "/p/1/x", "/p/1/2/x/", "/p/x/"]);
    yes("/users/:id", &["/users/1", "/users/1/", "/users/a.b"]);
    no("/users/:id", &["/users", "/users/", "/users/1/2"]);
    yes("/:a/:b", &["/x/y", "/x/y/"]);
    assert!(path("/p/:id/x/*").is_fast());
    assert!(path("/users/:id").is_fast());
}

#[test]
fn star_only_and_root() {
    yes("*", &["/", "/anything/at/all", "/x?y"]);
    yes("/*", &["/", "/x", "/x/y"]);
    yes("/", &["/", ""]);
    no("/", &["/x"]);
    yes("", &["/", ""]);
}

#[test]
fn rare_forms_follow_path_to_regexp() {
    // Optional parameter.
    yes("/a/:id?", &["/a", "/a/", "/a/1"]);
    no("/a/:id?", &["/a/1/2"]);
    // Format parameter.
    yes("/f/:name.:ext", &["/f/a.json", "/f/a.b.c"]);
    no("/f/:name.:ext", &["/f/a"]);
    // Custom capture.
    yes("/n/:id(\\d+)", &["/n/12"]);
    no("/n/:id(\\d+)", &["/n/ab"]);
    // Parameter with a star modifier.
    yes("/s/:p*", &["/s/a", "/s/a/b/c"]);
    // A star in the middle.
    yes("/a*/b", &["/a/b", "/axx/b", "/a/x/b"]);
    no("/a*/b", &["/a/c"]);
    // Regex characters keep their meaning, as in Express 4.
    yes("/ab+c", &["/abc", "/abbbc"]);
    yes("/ab?c", &["/ac", "/abc"]);
    yes("/a(bc)?d", &["/ad", "/abcd"]);
    // A literal before a parameter in one segment: one-character backtrack.
    yes("/:from-:to", &["/a-b", "/x-y/"]);
    no("/:from-:to", &["/a-"]);
    yes("/:a.json", &["/x.json"]);
    assert!(!path("/a/:id?").is_fast());
}

#[test]
fn path_to_regexp_sources() {
    for (p, re) in [
        ("/wms", "^/wms/?$"),
        ("/wms/", "^/wms/?$"),
        ("/wms*", "^/wms(.*)/?$"),
        ("/wms/*", "^/wms/(.*)/?$"),
        ("/p/:id", "^/p(?:/([^/]+?))/?$"),
        ("/p/:id?", "^/p(?:/([^/]+?))?/?$"),
        ("/f/:n.:e", "^/f(?:/([^/]+?))(?:\\.([^/\\.]+?))/?$"),
        ("/s/:p*", "^/s(?:/([^/]+?)((?:[/].+?)?))/?$"),
        ("/n/:id(\\d+)", "^/n(?:/(\\d+))/?$"),
        ("/c/:x(*)", "^/c(?:/((.*)))/?$"),
        ("/:a-:b", "^(?:/([^/]+?))-(?:((?:(?!/|-).)+?))/?$"),
        ("/a.b", "^/a\\.b/?$"),
        ("/(a)", "^/(?:a)/?$"),
        ("*", "^(.*)/?$"),
    ] {
        assert_eq!(path_to_regexp(p), re, "{p}");
    }
}

#[test]
fn refused_paths_have_reasons() {
    // A lookahead path-to-regexp makes for a multi-character literal before a parameter.
    let e = ExpressPath::compile("/:a-x-:b").unwrap_err();
    assert!(matches!(e, PathError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("lookahead"), "{e}");
    // Invalid JavaScript: Express would not start.
    let e = ExpressPath::compile("/a(b").unwrap_err();
    assert!(matches!(e, PathError::Invalid { .. }), "{e}");
    // Non-ASCII: written percent-encoded.
    let e = ExpressPath::compile("/städte").unwrap_err();
    assert!(e.to_string().contains("%C3%A4"), "{e}");
}

#[test]
fn query_never_matched() {
    yes("/wms", &["/wms?SERVICE=WMS", "/wms/?a/b"]);
    no("/wms", &["/x?/wms"]);
}

#[test]
fn groups_that_do_not_decode_are_400() {
    let p = path("/p/:id");
    assert_eq!(p.test("/p/%E0%A4%A"), PathMatch::Malformed);
    assert_eq!(p.test("/p/%FF"), PathMatch::Malformed);
    assert_eq!(p.test("/p/%C3%A4"), PathMatch::Yes);
    assert_eq!(p.test("/p/%zz"), PathMatch::Malformed);
    let s = path("/wms*");
    assert_eq!(s.test("/wms/%ED%A0%80"), PathMatch::Malformed);
    assert_eq!(s.test("/wms/%2F%20"), PathMatch::Yes);
    // No group, no decoding.
    assert_eq!(path("/a%FF").test("/a%ff"), PathMatch::Yes);
    // Regex routes too.
    assert_eq!(path("/r/:a?").test("/r/%FF"), PathMatch::Malformed);
    assert_eq!(path("/wms*").test("/wmt%FF"), PathMatch::No);
}

#[test]
fn decodes_is_decode_uri_component() {
    for ok in [
        "",
        "abc",
        "%41",
        "%c3%a4",
        "%E2%82%AC",
        "%F0%9F%98%80",
        "ä%20",
        "%7F",
    ] {
        assert!(decodes(ok), "{ok}");
    }
    for bad in [
        "%",
        "%4",
        "%G0",
        "%80",
        "%C3",
        "%C3a",
        "%C0%80",
        "%E0%80%80",
        "%ED%A0%80",
        "%F4%90%80%80",
        "%F8",
        "%C3%C3",
    ] {
        assert!(!decodes(bad), "{bad}");
    }
}

#[test]
fn path_regex_is_unanchored_and_case_sensitive() {
    let p = ExpressPath::regex("/api").unwrap();
    assert!(p.is_match("/v1/api/x"));
    assert!(!p.is_match("/v1/API/x"));
    let p = ExpressPath::regex("^/v[0-9]+/").unwrap();
    assert!(p.is_match("/v12/x"));
    assert!(!p.is_match("/x/v12/"));
}

#[test]
fn vhost_patterns() {
    let h = HostMatcher::vhost("*.acme.com").unwrap();
    assert!(h.matches(Some("abc.acme.com")));
    assert!(h.matches(Some("ABC.Acme.COM:8080")));
    assert!(!h.matches(Some("sub.abc.acme.com")));
    assert!(!h.matches(Some("acme.com")));
    assert!(!h.matches(Some(".acme.com")));
    assert!(!h.matches(None));
    let h = HostMatcher::vhost("*.*.example.com").unwrap();
    assert!(h.matches(Some("sub.abc.example.com")));
    assert!(!h.matches(Some("abc.example.com")));
    let h = HostMatcher::vhost("api-*.example.com").unwrap();
    assert!(h.matches(Some("api-eu.example.com")));
    assert!(!h.matches(Some("api-.example.com")));
    let h = HostMatcher::vhost("a*b*c.x").unwrap();
    assert!(h.matches(Some("abbbc.x")));
    assert!(h.matches(Some("aXbYc.x")));
    assert!(!h.matches(Some("abc.x")));
    let h = HostMatcher::vhost("example.com").unwrap();
    assert!(h.matches(Some("EXAMPLE.com")));
    assert!(!h.matches(Some("example.com.evil")));
    assert!(!h.matches(Some("wwwexample.com")));
    // IPv6 literals keep their colons.
    let h = HostMatcher::vhost("[::1]").unwrap();
    assert!(h.matches(Some("[::1]:8080")));
    assert!(matches!(HostMatcher::vhost("*").unwrap(), HostMatcher::Any));
    assert!(matches!(HostMatcher::vhost("").unwrap(), HostMatcher::Any));
    assert!(HostMatcher::vhost("bücher.de").is_err());
}

#[test]
fn host_regex_is_anchored_like_vhost() {
    let h = HostMatcher::regex("(a|b)\\.example\\.com").unwrap();
    assert!(h.matches(Some("A.example.com:443")));
    assert!(!h.matches(Some("c.a.example.com")));
    // vhost anchors by text: `^a|b$`.
    let h = HostMatcher::regex("a|b").unwrap();
    assert!(h.matches(Some("ax")));
    assert!(h.matches(Some("xb")));
    assert!(!h.matches(Some("xax")));
    let h = HostMatcher::regex("^x.*\\$").unwrap();
    assert!(h.matches(Some("xyz$")));
    assert!(h.matches(Some("xyz$$")));
    assert!(!h.matches(None));
}

#[test]
fn host_name_strips_the_port() {
    assert_eq!(host_name("a.com:80"), "a.com");
    assert_eq!(host_name("a.com"), "a.com");
    assert_eq!(host_name("[::1]:80"), "[::1]");
    assert_eq!(host_name("[::1]"), "[::1]");
    assert_eq!(host_name("[::1"), "[");
    assert_eq!(host_name(":80"), "");
}

fn route(name: &str, host: HostPattern, p: &str, methods: &[&str]) -> ExpressRoute {
    ExpressRoute {
        api_endpoint: name.into(),
        host,
        path: PathPattern::Express(p.into()),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        scopes: vec![],
        pipeline: Some(0),
    }
}

fn kargo() -> Vec<ExpressRoute> {
    let any = || HostPattern::Any;
    vec![
        route(
            "admin",
            HostPattern::Vhost("express-gateway".into()),
            "*",
            &[],
        ),
        route("prometheus", any(), "/metrics", &[]),
        route("wms", any(), "/wms*", &[]),
        route("wmts", any(), "/wmts*", &[]),
        route("k2", any(), "/k2/*", &[]),
        route("capture", any(), "/capture", &[]),
        route("mapcache_wmts", any(), "/ows/wmts*", &[]),
        route("mapcache_tms", any(), "/ows/tms*", &[]),
        route("mapcache_wms", any(), "/ows*", &[]),
    ]
}

fn name_of(
    routes: &[ExpressRoute],
    r: &ExpressRouter,
    m: &str,
    host: Option<&str>,
    p: &str,
) -> Option<String> {
    r.lookup(m, host, p)
        .map(|x| routes[x.route].api_endpoint.clone())
}

#[test]
fn kargo_routes_first_declared_wins() {
    let routes = kargo();
    let r = ExpressRouter::from_model(&routes).unwrap();
    let h = Some("api.example.com");
    let n = |p: &str| name_of(&routes, &r, "GET", h, p);
    assert_eq!(n("/wms").as_deref(), Some("wms"));
    assert_eq!(n("/WMS/x").as_deref(), Some("wms"));
    assert_eq!(
        n("/wmts/1.0.0/WMTSCapabilities.xml").as_deref(),
        Some("wmts")
    );
    assert_eq!(n("/ows/wmts/x").as_deref(), Some("mapcache_wmts"));
    assert_eq!(n("/ows/tms/1.0.0").as_deref(), Some("mapcache_tms"));
    assert_eq!(n("/ows?SERVICE=WMS").as_deref(), Some("mapcache_wms"));
    assert_eq!(n("/ows/wms").as_deref(), Some("mapcache_wms"));
    assert_eq!(n("/k2").as_deref(), None);
    assert_eq!(n("/k2/").as_deref(), Some("k2"));
    assert_eq!(n("/metrics").as_deref(), Some("prometheus"));
    assert_eq!(n("/metrics/x").as_deref(), None);
    assert_eq!(n("/capture").as_deref(), Some("capture"));
    assert_eq!(n("/nothing/here").as_deref(), None);
    // The admin vhost group comes first and takes everything for its host.
    assert_eq!(
        name_of(&routes, &r, "GET", Some("express-gateway:8080"), "/wms").as_deref(),
        Some("admin")
    );
    assert_eq!(r.resolve("GET", None, "/nothing"), Lookup::NotFound);
    let m = r.lookup("GET", h, "/wms/x").unwrap();
    assert_eq!(m.strip, Some(StripAt::At(4)));
    let m = r.lookup("GET", h, "/metrics").unwrap();
    assert_eq!(m.strip, Some(StripAt::None));
}

#[test]
fn host_groups_keep_order_of_first_appearance() {
    // a.com: [/x*, /xy], *: [/xy]; the a.com group comes first even for /xy.
    let routes = vec![
        route("one", HostPattern::Vhost("a.com".into()), "/x*", &[]),
        route("two", HostPattern::Any, "/xy", &[]),
        route("three", HostPattern::Vhost("a.com".into()), "/xy", &[]),
    ];
    let r = ExpressRouter::from_model(&routes).unwrap();
    assert_eq!(
        name_of(&routes, &r, "GET", Some("a.com"), "/xy").as_deref(),
        Some("one")
    );
    assert_eq!(
        name_of(&routes, &r, "GET", Some("b.com"), "/xy").as_deref(),
        Some("two")
    );
    // Regrouping after substitution: `three` joins `one`'s group, before `two`.
    let routes = vec![
        route("one", HostPattern::Vhost("a.com".into()), "/zz", &[]),
        route("two", HostPattern::Any, "/x*", &[]),
        route("three", HostPattern::Vhost("a.com".into()), "/xy", &[]),
    ];
    let r = ExpressRouter::from_model(&routes).unwrap();
    assert_eq!(
        name_of(&routes, &r, "GET", Some("a.com"), "/xy").as_deref(),
        Some("three")
    );
    assert_eq!(r.lookup("GET", Some("a.com"), "/xy").unwrap().route, 2);
}

#[test]
fn methods_head_and_options() {
    let routes = vec![
        route("ro", HostPattern::Any, "/items", &["GET", "POST"]),
        route("all", HostPattern::Any, "/items", &[]),
        route("put", HostPattern::Any, "/only-put", &["PUT"]),
        route(
            "other",
            HostPattern::Vhost("b.com".into()),
            "/only-put",
            &[],
        ),
    ];
    let r = ExpressRouter::from_model(&routes).unwrap();
    let n = |m: &str, p: &str| name_of(&routes, &r, m, Some("a.com"), p);
    assert_eq!(n("GET", "/items").as_deref(), Some("ro"));
    assert_eq!(n("post", "/items").as_deref(), Some("ro"));
    assert_eq!(n("HEAD", "/items").as_deref(), Some("ro"));
    assert_eq!(n("DELETE", "/items").as_deref(), Some("all"));
    assert_eq!(n("OPTIONS", "/items").as_deref(), Some("all"));
    assert_eq!(n("HEAD", "/only-put"), None);
    // OPTIONS on a path whose routes lack it: Express's automatic answer.
    assert_eq!(
        r.resolve("OPTIONS", Some("a.com"), "/only-put"),
        Lookup::Options("PUT".into())
    );
    let routes2 = vec![
        route("g", HostPattern::Any, "/r", &["GET"]),
        route("p", HostPattern::Any, "/r", &["POST", "GET"]),
        route("later", HostPattern::Vhost("a.com".into()), "/r", &[]),
    ];
    let r2 = ExpressRouter::from_model(&routes2).unwrap();
    assert_eq!(
        r2.resolve("OPTIONS", Some("a.com"), "/r"),
        Lookup::Options("GET,HEAD,POST".into())
    );
    assert_eq!(
        r2.resolve("DELETE", Some("a.com"), "/r"),
        Lookup::Route(ExpressMatch {
            route: 2,
            strip: Some(StripAt::None)
        })
    );
}

#[test]
fn malformed_group_stops_routing() {
    let routes = vec![
        route("p", HostPattern::Any, "/p/:id", &["POST"]),
        route("any", HostPattern::Any, "*", &[]),
    ];
    let r = ExpressRouter::from_model(&routes).unwrap();
    assert_eq!(r.resolve("GET", None, "/p/%FF"), Lookup::MalformedParam);
    assert_eq!(r.resolve("GET", None, "/q/%FF"), Lookup::MalformedParam);
    assert_eq!(r.lookup("GET", None, "/p/1").unwrap().route, 1);
}

#[test]
fn build_errors_name_the_route() {
    let routes = vec![
        route("ok", HostPattern::Any, "/a", &[]),
        route("bad", HostPattern::Any, "/:a-x-:b", &[]),
        route("badhost", HostPattern::Regex("(?=x)".into()), "/b", &[]),
    ];
    let errors = ExpressRouter::check(routes.iter().map(RouteInput::from));
    let at: Vec<usize> = errors.iter().map(|e| e.route()).collect();
    assert_eq!(at, [1, 2]);
    assert!(ExpressRouter::from_model(&routes).is_err());
    assert!(errors[1].to_string().contains("hostRegex"));
}

#[test]
fn strip_positions() {
    assert_eq!(StripAt::of_path("/wms"), StripAt::None);
    assert_eq!(StripAt::of_path("/wms*"), StripAt::At(4));
    assert_eq!(StripAt::of_path("/wms/*"), StripAt::At(5));
    assert_eq!(StripAt::of_path("/p/:id/x/*"), StripAt::At(3));
    assert_eq!(StripAt::of_path("*"), StripAt::At(0));
    assert_eq!(StripAt::of_pattern(&PathPattern::Regex("/x".into())), None);
}

fn upstream(endpoint: &str, route_path: &str, target: &str) -> String {
    join_upstream(
        endpoint,
        &stripped_target(target, StripAt::of_path(route_path)),
    )
}

#[test]
fn the_identity_join_is_the_join() {
    for target in [
        "/",
        "",
        "?q",
        "/a/b?c//d",
        "/a//b",
        "//",
        "/x/http:/y",
        "/x/https:/y",
        "/http:",
        "/a?http://x",
        "/p/%2F/q",
        "/a/b/",
        "/a?",
    ] {
        let full = {
            // join_upstream's own fast path, bypassed: the endpoint path "/" joins the same way
            // as none for a target starting with '/'.
            join_upstream("/", target)
        };
        if join_is_identity("", target) {
            assert_eq!(join_upstream("", target), target, "{target}");
            if target.starts_with('/') {
                assert_eq!(full, target, "{target}");
            }
        }
    }
    assert!(!join_is_identity("", "/a//b"));
    assert!(!join_is_identity("", "/x/http:/y"));
    assert!(!join_is_identity("/e", "/a"));
    assert!(join_is_identity("", "/a/b?c//d"));
}

#[test]
fn strip_path_live_examples() {
    // Reference §2/§9, Kargo's wms: `/wms*` to http://mapserver:80/cgi-bin/mapserv.
    let e = "/cgi-bin/mapserv";
    assert_eq!(upstream(e, "/wms*", "/wms"), "/cgi-bin/mapserv/");
    assert_eq!(
        upstream(e, "/wms*", "/wms?SERVICE=WMS"),
        "/cgi-bin/mapserv/?SERVICE=WMS"
    );
    assert_eq!(upstream(e, "/wms*", "/wms/foo"), "/cgi-bin/mapserv/foo");
    assert_eq!(upstream(e, "/wms*", "/wmsfoo"), "/cgi-bin/mapserv/foo");
    assert_eq!(
        upstream(e, "/wms*", "/wms/a%2Fb%20c?x=%41"),
        "/cgi-bin/mapserv/a%2Fb%20c?x=%41"
    );
    // prometheus: `/metrics` to http://localhost:9876/metrics.
    assert_eq!(upstream("/metrics", "/metrics", "/metrics"), "/metrics/");
    // A route without wildcard: `/` and the query.
    assert_eq!(stripped_target("/capture?x=1", StripAt::None), "/?x=1");
    assert_eq!(stripped_target("/capture", StripAt::None), "/");
    assert_eq!(stripped_target("/capture?", StripAt::None), "/?");
    // Kargo's capture keeps its path (stripPath: false) to http://kapture:3000 (path `/`).
    assert_eq!(join_upstream("/", "/capture?x=1"), "/capture?x=1");
    // k2: `/k2/*` to http://k2:8080.
    assert_eq!(upstream("/", "/k2/*", "/k2/a/b?x=1"), "/a/b?x=1");
    assert_eq!(upstream("/", "/k2/*", "/k2/"), "/");
    // Live run §7: the query is not stripped.
    assert_eq!(
        upstream("/", "/k2/*", "/k2/a?apiKey=kid1:ksecret1"),
        "/a?apiKey=kid1:ksecret1"
    );
    // `*`: unchanged.
    assert_eq!(upstream("/base", "*", "/x/y?z"), "/base/x/y?z");
    // Past the end.
    assert_eq!(stripped_target("/a", StripAt::At(9)), "/");
}

#[test]
fn url_join_quirks() {
    // Every run of slashes collapses, not only the seam.
    assert_eq!(join_upstream("/a//b/", "//c//d"), "/a/b/c/d");
    // ... but never in the query.
    assert_eq!(
        join_upstream("/a", "/b?u=http://x//y"),
        "/a/b?u=http://x//y"
    );
    // Only the first `?` splits; more stay in the query.
    assert_eq!(join_upstream("/a", "/b?c?d"), "/a/b?c?d");
    // http-proxy's guard for URLs in paths.
    assert_eq!(join_upstream("/p", "/http://x/y"), "/p/http://x/y");
    assert_eq!(join_upstream("/p", "/https://x"), "/p/https://x");
    assert_eq!(join_upstream("", "/x"), "/x");
    assert_eq!(join_upstream("/p", ""), "/p");
}

#[test]
fn stripping_is_char_safe() {
    // Positions are UTF-16 units; a cut never splits a character.
    assert_eq!(stripped_target("/é/x", StripAt::At(2)), "//x");
    assert_eq!(stripped_target("/😀x", StripAt::At(2)), "/x");
    assert_eq!(StripAt::of_path("/😀*"), StripAt::At(3));
}

/// The answers of the real JavaScript libraries (`scripts/express-oracle.js`, run on the
/// node_modules of express-gateway 1.16.11) for a corpus of inputs.
#[test]
fn oracle() {
    let o: serde_json::Value = serde_json::from_str(include_str!("oracle.json")).unwrap();
    let mut failures = Vec::new();
    for p in o["paths"].as_array().unwrap() {
        let route = p["route"].as_str().unwrap();
        if let Some(src) = p["source"].as_str() {
            if path_to_regexp(route) != src.replace("\\/", "/") {
                failures.push(format!(
                    "source of {route}: {} vs {src}",
                    path_to_regexp(route)
                ));
            }
        }
        let compiled = match ExpressPath::compile(route) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{route} refused: {e}"));
                continue;
            }
        };
        for (req, want) in p["results"].as_object().unwrap() {
            let got = match compiled.test(req) {
                PathMatch::Yes => "yes",
                PathMatch::No => "no",
                PathMatch::Malformed => "malformed",
            };
            if got != want.as_str().unwrap() {
                failures.push(format!("{route} on {req}: {got}, JS {want}"));
            }
        }
    }
    for r in o["regexes"].as_array().unwrap() {
        let src = r["source"].as_str().unwrap();
        let re = JsRegex::with_flags(src, r["flags"] == "i").unwrap();
        for case in r["results"].as_array().unwrap() {
            let (hay, want) = (case[0].as_str().unwrap(), case[1].as_bool().unwrap());
            if re.is_match(hay) != want {
                failures.push(format!("regex {src} on {hay:?}: JS {want}"));
            }
        }
    }
    for g in o["globs"].as_array().unwrap() {
        let pat = g["pattern"].as_str().unwrap();
        let glob = super::super::glob::Glob::new(pat).unwrap();
        for case in g["results"].as_array().unwrap() {
            let (s, want) = (case[0].as_str().unwrap(), case[1].as_bool().unwrap());
            if glob.matches(s) != want {
                failures.push(format!("glob {pat} on {s:?}: JS {want}"));
            }
        }
    }
    for h in o["hosts"].as_array().unwrap() {
        let pat = h["pattern"].as_str().unwrap();
        let m = if h["regex"].as_bool().unwrap() {
            HostMatcher::regex(pat).unwrap()
        } else {
            HostMatcher::vhost(pat).unwrap()
        };
        for case in h["results"].as_array().unwrap() {
            let (hh, want) = (case[0].as_str(), case[1].as_bool().unwrap());
            if m.matches(hh) != want {
                failures.push(format!("host {pat} on {hh:?}: JS {want}"));
            }
        }
    }
    for j in o["joins"].as_array().unwrap() {
        let (e, t, want) = (
            j[0].as_str().unwrap(),
            j[1].as_str().unwrap(),
            j[2].as_str().unwrap(),
        );
        if join_upstream(e, t) != want {
            failures.push(format!(
                "urlJoin({e:?}, {t:?}) = {:?}, JS {want:?}",
                join_upstream(e, t)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The regex-free matcher and the expression path-to-regexp builds agree on every path over a
/// small alphabet (all strings up to length 5, plus escapes), for every regex-free shape.
#[test]
fn fast_matcher_equals_the_expression() {
    let patterns = [
        "/",
        "/a",
        "/a/",
        "/a*",
        "/a/*",
        "/:x",
        "/a/:x",
        "/:x/a",
        "/:x/:y",
        "/a/:x/b/*",
        "*",
        "/*",
        "/a.b",
        "/a%2F",
        "/:x/*",
        "/A/b",
    ];
    let alphabet = ["/", "a", "A", "b", ".", "%2F", "%FF", "x"];
    let mut paths = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..5 {
        let mut next = Vec::new();
        for p in &frontier {
            for c in alphabet {
                next.push(format!("{p}{c}"));
            }
        }
        paths.extend(next.iter().cloned());
        frontier = next;
    }
    for pat in patterns {
        let fast = ExpressPath::compile(pat).unwrap();
        assert!(fast.is_fast(), "{pat}");
        let slow = ExpressPath {
            matcher: PathMatcher::Regex(
                JsRegex::with_flags(&path_to_regexp_for(pat, true), true).unwrap(),
            ),
        };
        for p in &paths {
            assert_eq!(fast.test(p), slow.test(p), "{pat} on {p}");
        }
    }
}

/// Random route paths and request paths (a fixed seed): no input panics any compiler or
/// matcher, and wherever the regex-free matcher runs it agrees with path-to-regexp's
/// expression.
#[test]
fn random_inputs_never_panic_and_fast_agrees() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6567);
    let atoms = [
        "/", "a", "B", ":id", ":x?", "*", ".", "-", "%FF", "%41", "(", ")", "?", "+", "[", "]",
        "\\", "{", "}", "|", "^", "$", ",", "!", "#", "ä", "//", "..", ":", "@", "\u{2028}",
    ];
    let path_atoms = [
        "/", "a", "b", "A", ".", "-", "%FF", "%C3%A4", "%zz", "?", "x", "//", "ä", ":", "@",
    ];
    for _ in 0..4000 {
        let n = rng.gen_range(0..8);
        let pattern: String = (0..n)
            .map(|_| atoms[rng.gen_range(0..atoms.len())])
            .collect();
        let paths: Vec<String> = (0..8)
            .map(|_| {
                let m = rng.gen_range(0..10);
                (0..m)
                    .map(|_| path_atoms[rng.gen_range(0..path_atoms.len())])
                    .collect()
            })
            .collect();
        let compiled = ExpressPath::compile(&pattern);
        let regex_form = JsRegex::with_flags(&path_to_regexp_for(&pattern, true), true);
        for p in &paths {
            if let Ok(c) = &compiled {
                let got = c.test(p);
                if c.is_fast() {
                    let slow = ExpressPath {
                        matcher: PathMatcher::Regex(regex_form.clone().unwrap()),
                    };
                    assert_eq!(got, slow.test(p), "{pattern:?} on {p:?}");
                }
            }
            let _ = ExpressPath::regex(&pattern).map(|r| r.test(p));
            let _ = super::super::glob::Glob::new(&pattern).map(|g| g.matches(p));
            let _ = HostMatcher::vhost(&pattern).map(|h| h.matches(Some(p)));
            let _ = HostMatcher::regex(&pattern).map(|h| h.matches(Some(p)));
            let _ = join_upstream(&pattern, &stripped_target(p, StripAt::of_path(&pattern)));
            let _ = decodes(p);
            let _ = host_name(p);
        }
    }
}
