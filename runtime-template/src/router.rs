//! Request routing: full path template (base path + resource path) and method to a route.
//!
//! Built once at start-up (and at `micro-gw build`, to report conflicts early) from the model.
//! Matching runs on the raw request path, so percent-encoding reaches the upstream untouched.

use std::collections::HashMap;

use http::{HeaderValue, Method};

use crate::model::{join_path, GatewayModel};

/// Index of a resource in the flattened route table.
pub type RouteId = usize;

/// Where a route leads.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index of the API in the model.
    pub api: usize,
    /// Index of the resource within the API.
    pub resource: usize,
    /// Bytes of the request path that belong to the base path (0 for `/`).
    pub base_path_len: usize,
}

#[derive(Debug)]
struct PathEntry {
    methods: Vec<(Method, RouteId)>,
    allow: HeaderValue,
}

/// The outcome of a lookup.
#[derive(Debug)]
pub enum Match<'a> {
    /// A resource for this method and path.
    Found(RouteId),
    /// The path exists, but not for this method.
    MethodNotAllowed(&'a HeaderValue),
    /// Nothing at this path.
    NotFound,
}

/// Two resources that cannot both be routed, or a template the router cannot express.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Two templates that match the same requests.
    #[error("{method} {path} (API '{api}', {source_file}) conflicts with {other_path} (API '{other_api}', {other_source}): {reason}; change one of the paths or base paths")]
    Conflict {
        /// Method of the resource that did not fit.
        method: String,
        /// Its full path.
        path: String,
        /// Its API.
        api: String,
        /// Its definition file.
        source_file: String,
        /// The route already there.
        other_path: String,
        /// Its API.
        other_api: String,
        /// Its definition file.
        other_source: String,
        /// Why they clash.
        reason: String,
    },
    /// A template the router cannot express.
    #[error("{method} {path} (API '{api}', {source_file}): {reason}")]
    Unsupported {
        /// Method.
        method: String,
        /// Full path.
        path: String,
        /// API.
        api: String,
        /// Definition file.
        source_file: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// The compiled route table.
#[derive(Debug)]
pub struct Router {
    paths: matchit::Router<usize>,
    entries: Vec<PathEntry>,
    routes: Vec<Route>,
}

/// Converts an OpenAPI/WSO2 path template into matchit syntax (`/*` becomes a catch-all).
fn to_matchit(template: &str) -> String {
    match template.strip_suffix("/*") {
        Some(prefix) => format!("{prefix}/{{*wildcard}}"),
        None => template.to_string(),
    }
}

impl Router {
    /// Builds the table, reporting the first conflict.
    pub fn build(model: &GatewayModel) -> Result<Router, Box<RouteError>> {
        let mut paths = matchit::Router::new();
        let mut entries: Vec<PathEntry> = Vec::new();
        let mut routes = Vec::new();
        // matchit template -> (entry index, api index, display path)
        let mut by_template: HashMap<String, (usize, usize, String)> = HashMap::new();
        for (api_idx, api) in model.apis.iter().enumerate() {
            let base_path_len = if api.base_path == "/" {
                0
            } else {
                api.base_path.len()
            };
            for (res_idx, resource) in api.resources.iter().enumerate() {
                let full = join_path(&api.base_path, &resource.path);
                let method = Method::from_bytes(resource.method.as_bytes()).map_err(|_| {
                    Box::new(RouteError::Unsupported {
                        method: resource.method.clone(),
                        path: full.clone(),
                        api: api.name.clone(),
                        source_file: api.source.clone(),
                        reason: "not an HTTP method".into(),
                    })
                })?;
                let route_id = routes.len();
                routes.push(Route {
                    api: api_idx,
                    resource: res_idx,
                    base_path_len,
                });
                let mut templates = vec![to_matchit(&full)];
                // `/base/` also answers `/base`.
                if full.len() > 1 && full.ends_with('/') {
                    templates.push(full.trim_end_matches('/').to_string());
                }
                for (i, template) in templates.into_iter().enumerate() {
                    if let Some((entry, other_api, other_path)) = by_template.get(&template) {
                        let entry = &mut entries[*entry];
                        if let Some((_, existing)) =
                            entry.methods.iter().find(|(m, _)| *m == method)
                        {
                            if i > 0 {
                                continue; // the alias of a path that is itself declared
                            }
                            let other = &model.apis[routes[*existing].api];
                            return Err(Box::new(RouteError::Conflict {
                                method: method.to_string(),
                                path: full,
                                api: api.name.clone(),
                                source_file: api.source.clone(),
                                other_path: format!("{method} {other_path}"),
                                other_api: model.apis[*other_api].name.clone(),
                                other_source: other.source.clone(),
                                reason: "the same method and path are declared twice".into(),
                            }));
                        }
                        entry.methods.push((method.clone(), route_id));
                        continue;
                    }
                    let entry_idx = entries.len();
                    match paths.insert(template.clone(), entry_idx) {
                        Ok(()) => {
                            entries.push(PathEntry {
                                methods: vec![(method.clone(), route_id)],
                                allow: HeaderValue::from_static(""),
                            });
                            by_template.insert(template, (entry_idx, api_idx, full.clone()));
                        }
                        Err(_) if i > 0 => {} // alias clashes with a real route: the real one wins
                        Err(err) => {
                            let (other_path, other_api) = match &err {
                                matchit::InsertError::Conflict { with } => {
                                    let other = by_template.get(with);
                                    (
                                        other.map(|o| o.2.clone()).unwrap_or_else(|| with.clone()),
                                        other.map(|o| o.1),
                                    )
                                }
                                _ => {
                                    return Err(Box::new(RouteError::Unsupported {
                                        method: method.to_string(),
                                        path: full,
                                        api: api.name.clone(),
                                        source_file: api.source.clone(),
                                        reason: format!(
                                            "the path template cannot be routed ({err}); use one {{parameter}} per segment, and a wildcard only at the end"
                                        ),
                                    }))
                                }
                            };
                            let other_api = other_api.unwrap_or(api_idx);
                            return Err(Box::new(RouteError::Conflict {
                                method: method.to_string(),
                                path: full,
                                api: api.name.clone(),
                                source_file: api.source.clone(),
                                other_path,
                                other_api: model.apis[other_api].name.clone(),
                                other_source: model.apis[other_api].source.clone(),
                                reason: "the templates match the same paths (they differ only in parameter names)".into(),
                            }));
                        }
                    }
                }
            }
        }
        for entry in &mut entries {
            let mut names: Vec<&str> = entry.methods.iter().map(|(m, _)| m.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            entry.allow =
                HeaderValue::from_str(&names.join(", ")).expect("method names are tokens");
        }
        Ok(Router {
            paths,
            entries,
            routes,
        })
    }

    /// Looks a request up by method and raw path.
    pub fn lookup(&self, method: &Method, path: &str) -> Match<'_> {
        let Ok(found) = self.paths.at(path) else {
            return Match::NotFound;
        };
        let entry = &self.entries[*found.value];
        let find = |wanted: &Method| entry.methods.iter().find(|(m, _)| m == wanted);
        // HEAD is answered by the GET resource when there is no HEAD of its own (RFC 9110 §9.3.2).
        let found = find(method).or_else(|| {
            (method == Method::HEAD)
                .then(|| find(&Method::GET))
                .flatten()
        });
        match found {
            Some((_, route)) => Match::Found(*route),
            None => Match::MethodNotAllowed(&entry.allow),
        }
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
        assert_eq!(router.route(0).base_path_len, "/petstore/v1".len());
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
        let err = Router::build(&dup).unwrap_err().to_string();
        assert!(err.contains("declared twice"), "{err}");

        let clash = model(vec![
            api("a", "/x", &[("GET", "/pet/{id}")]),
            api("b", "/x/pet", &[("GET", "/{petId}")]),
        ]);
        let err = Router::build(&clash).unwrap_err().to_string();
        assert!(err.contains("API 'a'") && err.contains("API 'b'"), "{err}");
    }
}
