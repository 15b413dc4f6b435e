//! WSO2 endpoint objects: `x-wso2-production-endpoints` / `x-wso2-sandbox-endpoints` (inline or
//! `"#/x-wso2-endpoints/<name>"`) and the named list under `x-wso2-endpoints`.

use std::collections::BTreeMap;

use mgw_runtime::model::{EndpointKind, DEFAULT_ENDPOINT_TIMEOUT_MS};
use serde_json::Value;

use super::diagnostics::Diagnostics;
use super::document::{child, Document};

/// The reference prefix WSO2 uses for named endpoints.
pub const ENDPOINT_REF_PREFIX: &str = "#/x-wso2-endpoints/";

/// A validated endpoint, before it gets its name and environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    /// Distribution across URLs.
    pub kind: EndpointKind,
    /// Absolute URLs.
    pub urls: Vec<String>,
    /// Response timeout.
    pub timeout_ms: u64,
}

/// An endpoint as a resource or API declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredEndpoint {
    /// The name from `#/x-wso2-endpoints/<name>`, for references.
    pub reference: Option<String>,
    /// The endpoint.
    pub spec: EndpointSpec,
}

/// Reads `x-wso2-endpoints`: a list of single-key maps `- name: {urls: [...], ...}`.
pub fn named_endpoints(doc: &Document, diags: &mut Diagnostics) -> BTreeMap<String, EndpointSpec> {
    let mut named = BTreeMap::new();
    let pointer = "/x-wso2-endpoints";
    let Some(list) = doc.get(pointer) else {
        return named;
    };
    let Some(items) = list.as_array() else {
        diags.error(
            &doc.file,
            doc.line(pointer),
            "x-wso2-endpoints must be a list of `- <name>: {urls: [...]}` entries",
        );
        return named;
    };
    for (i, item) in items.iter().enumerate() {
        let item_pointer = format!("{pointer}/{i}");
        let entries = item.as_object().filter(|m| m.len() == 1);
        let Some((name, value)) = entries.and_then(|m| m.iter().next()) else {
            diags.error(
                &doc.file,
                doc.line(&item_pointer),
                "each x-wso2-endpoints entry must be a single `<name>: {urls: [...]}` mapping",
            );
            continue;
        };
        let value_pointer = child(&item_pointer, name);
        if named.contains_key(name) {
            diags.error(
                &doc.file,
                doc.line(&value_pointer),
                format!("endpoint '{name}' is defined twice in x-wso2-endpoints: rename one"),
            );
            continue;
        }
        if let Some(spec) = endpoint_object(doc, &value_pointer, value, diags) {
            named.insert(name.clone(), spec);
        }
    }
    named
}

/// Reads the endpoint declared at `pointer` (an inline object or a reference string).
pub fn declared_endpoint(
    doc: &Document,
    pointer: &str,
    named: &BTreeMap<String, EndpointSpec>,
    diags: &mut Diagnostics,
) -> Option<DeclaredEndpoint> {
    let value = doc.get(pointer)?;
    let key = pointer.rsplit('/').next().unwrap_or_default();
    match value {
        Value::String(reference) => {
            let Some(name) = reference.strip_prefix(ENDPOINT_REF_PREFIX) else {
                diags.error(
                    &doc.file,
                    doc.line(pointer),
                    format!("{key}: {reference:?} is not an endpoint reference: use \"{ENDPOINT_REF_PREFIX}<name>\" or an inline {{urls: [...]}} object"),
                );
                return None;
            };
            match named.get(name) {
                Some(spec) => Some(DeclaredEndpoint {
                    reference: Some(name.to_string()),
                    spec: spec.clone(),
                }),
                None => {
                    let known: Vec<&str> = named.keys().map(String::as_str).collect();
                    diags.error(
                        &doc.file,
                        doc.line(pointer),
                        format!(
                            "{key}: reference {reference:?} does not resolve: x-wso2-endpoints has {}",
                            if known.is_empty() { "no entries".to_string() } else { format!("only {}", known.join(", ")) }
                        ),
                    );
                    None
                }
            }
        }
        Value::Object(_) => {
            endpoint_object(doc, pointer, value, diags).map(|spec| DeclaredEndpoint {
                reference: None,
                spec,
            })
        }
        _ => {
            diags.error(
                &doc.file,
                doc.line(pointer),
                format!("{key} must be an endpoint object {{urls: [...], type: ...}} or \"{ENDPOINT_REF_PREFIX}<name>\""),
            );
            None
        }
    }
}

fn endpoint_object(
    doc: &Document,
    pointer: &str,
    value: &Value,
    diags: &mut Diagnostics,
) -> Option<EndpointSpec> {
    let file = &doc.file;
    let Some(map) = value.as_object() else {
        diags.error(
            file,
            doc.line(pointer),
            "an endpoint must be a mapping with `urls`",
        );
        return None;
    };
    let urls_pointer = child(pointer, "urls");
    let Some(raw_urls) = map
        .get("urls")
        .and_then(Value::as_array)
        .filter(|u| !u.is_empty())
    else {
        diags.error(
            file,
            doc.line(&urls_pointer),
            "an endpoint needs `urls`: a non-empty list of http:// or https:// URLs",
        );
        return None;
    };
    let mut urls = Vec::with_capacity(raw_urls.len());
    let mut ok = true;
    for (i, raw) in raw_urls.iter().enumerate() {
        let url_pointer = format!("{urls_pointer}/{i}");
        let Some(text) = raw.as_str() else {
            diags.error(
                file,
                doc.line(&url_pointer),
                "endpoint URLs must be strings",
            );
            ok = false;
            continue;
        };
        match endpoint_url(text) {
            Ok((url, etcd_key)) => {
                if let Some(key) = etcd_key {
                    diags.warn(
                        file,
                        doc.line(&url_pointer),
                        format!("etcd service discovery is not supported yet: etcd key '{key}' is ignored and the default URL {url} is used"),
                    );
                }
                urls.push(url);
            }
            Err(message) => {
                diags.error(file, doc.line(&url_pointer), message);
                ok = false;
            }
        }
    }
    let kind = match map.get("type") {
        None => {
            if urls.len() > 1 {
                EndpointKind::LoadBalance
            } else {
                EndpointKind::Http
            }
        }
        Some(Value::String(t)) if t.eq_ignore_ascii_case("http") => EndpointKind::Http,
        Some(Value::String(t)) if t.eq_ignore_ascii_case("load_balance") => {
            EndpointKind::LoadBalance
        }
        Some(Value::String(t)) if t.eq_ignore_ascii_case("failover") => EndpointKind::Failover,
        Some(other) => {
            diags.error(
                file,
                doc.line(&child(pointer, "type")),
                format!(
                    "endpoint type {other} is not supported: use http, load_balance or failover"
                ),
            );
            ok = false;
            EndpointKind::Http
        }
    };
    let mut timeout_ms = DEFAULT_ENDPOINT_TIMEOUT_MS;
    if let Some(advance) = map.get("advanceEndpointConfig") {
        let advance_pointer = child(pointer, "advanceEndpointConfig");
        match advance.as_object() {
            Some(advance) => {
                for (key, value) in advance {
                    let key_pointer = child(&advance_pointer, key);
                    match key.as_str() {
                        "timeoutInMillis" => match value.as_u64().filter(|ms| *ms > 0) {
                            Some(ms) => timeout_ms = ms,
                            None => {
                                diags.error(file, doc.line(&key_pointer), format!("timeoutInMillis must be a positive whole number of milliseconds, not {value}"));
                                ok = false;
                            }
                        },
                        "retryConfig" | "circuitBreaker" | "poolConfig" => diags.warn(
                            file,
                            doc.line(&key_pointer),
                            format!("advanceEndpointConfig.{key} is recognised but not applied yet by this micro-gw version"),
                        ),
                        other => diags.warn(file, doc.line(&key_pointer), format!("unknown advanceEndpointConfig key '{other}' is ignored")),
                    }
                }
            }
            None => {
                diags.error(
                    file,
                    doc.line(&advance_pointer),
                    "advanceEndpointConfig must be a mapping",
                );
                ok = false;
            }
        }
    }
    for key in map.keys() {
        match key.as_str() {
            "urls" | "type" | "advanceEndpointConfig" => {}
            "securityConfig" => diags.warn(
                file,
                doc.line(&child(pointer, key)),
                "endpoint securityConfig (backend basic auth) is recognised but not applied yet by this micro-gw version",
            ),
            other => diags.warn(file, doc.line(&child(pointer, key)), format!("unknown endpoint key '{other}' is ignored")),
        }
    }
    ok.then_some(EndpointSpec {
        kind,
        urls,
        timeout_ms,
    })
}

/// Validates one endpoint URL. `etcd(<key>, <default URL>)` yields the default and the key.
fn endpoint_url(text: &str) -> Result<(String, Option<String>), String> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed
        .strip_prefix("etcd(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let Some((key, default)) = inner.split_once(',') else {
            return Err(format!("{text:?} is not etcd(<key>, <default URL>)"));
        };
        let (url, _) = endpoint_url(default.trim())?;
        return Ok((url, Some(key.trim().to_string())));
    }
    let parsed = url::Url::parse(trimmed).map_err(|e| {
        format!("endpoint URL {text:?} is not valid ({e}): use an absolute http:// or https:// URL")
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(format!(
            "endpoint URL {text:?} uses scheme '{}': only http and https are supported",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("endpoint URL {text:?} has no host"));
    }
    if parsed.fragment().is_some() {
        return Err(format!("endpoint URL {text:?} has a #fragment: remove it"));
    }
    // The runtime parses it too: make sure it agrees.
    mgw_runtime::proxy::upstream::Target::parse(trimmed)
        .map_err(|e| format!("endpoint URL {e}"))?;
    Ok((trimmed.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Document, Diagnostics) {
        (
            Document::parse("e.yaml", text).unwrap(),
            Diagnostics::default(),
        )
    }

    #[test]
    fn reads_named_and_inline_endpoints() {
        let (doc, mut d) = load(
            "x-wso2-endpoints:\n  - a:\n      urls: [http://x:1/v1]\n      advanceEndpointConfig: {timeoutInMillis: 3000}\n\
x-wso2-production-endpoints: '#/x-wso2-endpoints/a'\n\
x-wso2-sandbox-endpoints:\n  urls: [http://s:1, http://s:2]\n  type: failover\n",
        );
        let named = named_endpoints(&doc, &mut d);
        let prod = declared_endpoint(&doc, "/x-wso2-production-endpoints", &named, &mut d).unwrap();
        assert_eq!(prod.reference.as_deref(), Some("a"));
        assert_eq!(prod.spec.timeout_ms, 3000);
        let sand = declared_endpoint(&doc, "/x-wso2-sandbox-endpoints", &named, &mut d).unwrap();
        assert_eq!(sand.spec.kind, EndpointKind::Failover);
        assert_eq!(sand.spec.urls.len(), 2);
        assert!(d.is_ok() && d.warnings.is_empty(), "{d:?}");
    }

    #[test]
    fn several_urls_without_type_load_balance() {
        let (doc, mut d) = load("x-wso2-production-endpoints:\n  urls: [http://a, http://b]\n");
        let ep = declared_endpoint(
            &doc,
            "/x-wso2-production-endpoints",
            &BTreeMap::new(),
            &mut d,
        )
        .unwrap();
        assert_eq!(ep.spec.kind, EndpointKind::LoadBalance);
        assert_eq!(ep.spec.timeout_ms, DEFAULT_ENDPOINT_TIMEOUT_MS);
    }

    #[test]
    fn errors_name_the_line() {
        let (doc, mut d) = load("x-wso2-production-endpoints:\n  urls:\n    - ftp://a\n    - 'not a url'\n  type: round_robin\n");
        assert!(declared_endpoint(
            &doc,
            "/x-wso2-production-endpoints",
            &BTreeMap::new(),
            &mut d
        )
        .is_none());
        let text: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert!(
            text[0].starts_with("e.yaml:3:") && text[0].contains("scheme 'ftp'"),
            "{text:?}"
        );
        assert!(text[1].starts_with("e.yaml:4:"), "{text:?}");
        assert!(
            text[2].starts_with("e.yaml:5:") && text[2].contains("round_robin"),
            "{text:?}"
        );
    }

    #[test]
    fn unresolved_reference_lists_known_names() {
        let (doc, mut d) = load("x-wso2-endpoints:\n  - a: {urls: [http://x]}\nx-wso2-production-endpoints: '#/x-wso2-endpoints/b'\n");
        let named = named_endpoints(&doc, &mut d);
        assert!(declared_endpoint(&doc, "/x-wso2-production-endpoints", &named, &mut d).is_none());
        assert!(d.errors[0].to_string().contains("only a"), "{:?}", d.errors);
        assert_eq!(d.errors[0].line, Some(3));
    }

    #[test]
    fn etcd_urls_fall_back_with_a_warning() {
        let (doc, mut d) =
            load("x-wso2-production-endpoints:\n  urls: ['etcd(k, http://localhost:1/x)']\n");
        let ep = declared_endpoint(
            &doc,
            "/x-wso2-production-endpoints",
            &BTreeMap::new(),
            &mut d,
        )
        .unwrap();
        assert_eq!(ep.spec.urls, vec!["http://localhost:1/x"]);
        assert_eq!(d.warnings.len(), 1);
    }
}
