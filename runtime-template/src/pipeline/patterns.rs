//! Pattern matchers the conditions use. INTERIM: replaced by the router's EG matchers
//! (branch `express`) when they are merged.

/// Interim glob: only `*` (any run of characters).
#[derive(Debug)]
pub struct Glob(String);

impl Glob {
    /// Compiles a glob.
    pub fn new(pattern: &str) -> Result<Self, String> {
        Ok(Glob(pattern.to_ascii_lowercase()))
    }

    /// Matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        fn go(p: &[u8], t: &[u8]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, t.get(i..).unwrap_or(&[]))),
                Some((c, rest)) => t
                    .split_first()
                    .is_some_and(|(d, t)| c == &d.to_ascii_lowercase() && go(rest, t)),
            }
        }
        go(self.0.as_bytes(), text.as_bytes())
    }
}

/// Interim regular expression: a literal substring.
#[derive(Debug)]
pub struct Regex(String);

impl Regex {
    /// Searches `text`.
    pub fn is_match(&self, text: &str) -> bool {
        text.contains(&self.0)
    }
}

/// Compiles a JavaScript regular expression source.
pub fn js_regex(pattern: &str) -> Result<Regex, String> {
    Ok(Regex(pattern.to_string()))
}

/// Interim Express route matcher (exact, `*`, `:param`, case-insensitive, optional trailing
/// slash), replaced by the router's EG matcher when it is merged.
#[derive(Debug)]
pub struct ExpressRoutes {
    routes: Vec<(crate::model::express::ExpressRoute, Option<usize>)>,
}

impl ExpressRoutes {
    /// Builds the table for one configuration; `${VAR}` in vhost patterns already expanded.
    pub fn build(config: &crate::model::ExpressGateway) -> Result<Self, String> {
        use crate::model::express::PathPattern;
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let strip = match &r.path {
                    PathPattern::Express(p) => p.find(['*', ':']),
                    PathPattern::Regex(_) => Some(0),
                };
                (r.clone(), strip)
            })
            .collect();
        Ok(Self { routes })
    }

    /// The first route serving `method`, `host` and `path`: its index and strip position.
    pub fn lookup(
        &self,
        method: &str,
        host: Option<&str>,
        path: &str,
    ) -> Option<(usize, Option<usize>)> {
        use crate::model::express::{HostPattern, PathPattern};
        self.routes
            .iter()
            .enumerate()
            .find_map(|(i, (route, strip))| {
                let host_ok = match &route.host {
                    HostPattern::Any => true,
                    HostPattern::Vhost(p) => host
                        .map(|h| h.rsplit_once(':').map_or(h, |(n, _)| n))
                        .is_some_and(|h| vhost(p, h)),
                    HostPattern::Regex(_) => false,
                };
                let method_ok =
                    route.methods.is_empty() || route.methods.iter().any(|m| m == method);
                let path_ok = match &route.path {
                    PathPattern::Express(p) => express(p, path),
                    PathPattern::Regex(_) => false,
                };
                (host_ok && method_ok && path_ok).then_some((i, *strip))
            })
    }
}

fn vhost(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| *p == "*" && !h.is_empty() || p.eq_ignore_ascii_case(h))
}

fn express(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty() || t == b"/",
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, t.get(i..).unwrap_or(&[]))),
            Some((b':', rest)) => {
                let name_end = rest
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .unwrap_or(rest.len());
                let rest = rest.get(name_end..).unwrap_or(&[]);
                let seg = t.iter().position(|c| *c == b'/').unwrap_or(t.len());
                (1..=seg).any(|i| go(rest, t.get(i..).unwrap_or(&[])))
            }
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(d, t)| c.eq_ignore_ascii_case(d) && go(rest, t)),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}
