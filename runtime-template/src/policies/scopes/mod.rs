//! Kargo's `scopes` policy (a plugin of Kargo's Express Gateway image,
//! `build/express-gateway/plugins/scopes.js`), built in: when the API endpoint has scopes, the
//! consumer's `scopes` property (an application's, stored comma-joined by EG) must hold every
//! one of them, else `401 Unauthorized`; a request without a consumer or without `scopes` fails
//! as the plugin does (it throws: Express's 500). No parameters.

use serde::{Deserialize, Serialize};

/// The (empty) action of a `scopes` step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesSpec {}

/// What a `scopes` step decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopesVerdict {
    /// Every endpoint scope is held (or the endpoint has none).
    Allowed,
    /// One is missing: 401.
    Missing,
    /// No consumer, or a consumer without `scopes`: the plugin throws (500).
    NoScopes,
}

/// Checks `endpoint` scopes against the consumer's `scopes` property (`None` when there is no
/// consumer or no such property; a string is split at commas as the plugin does, a JSON array
/// read as its strings).
pub fn check(endpoint: &[String], consumer_scopes: Option<&serde_json::Value>) -> ScopesVerdict {
    if endpoint.is_empty() {
        return ScopesVerdict::Allowed;
    }
    let held: Vec<String> = match consumer_scopes {
        Some(serde_json::Value::String(text)) => text.split(',').map(str::to_string).collect(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return ScopesVerdict::NoScopes,
    };
    if endpoint.iter().all(|s| held.contains(s)) {
        ScopesVerdict::Allowed
    } else {
        ScopesVerdict::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_are_read_as_kargo_stores_them() {
        let wms = vec!["wms".to_string()];
        assert_eq!(check(&[], None), ScopesVerdict::Allowed);
        assert_eq!(check(&wms, Some(&json!("wfs,wms"))), ScopesVerdict::Allowed);
        assert_eq!(check(&wms, Some(&json!(["wms"]))), ScopesVerdict::Allowed);
        assert_eq!(check(&wms, Some(&json!("wfs"))), ScopesVerdict::Missing);
        assert_eq!(check(&wms, None), ScopesVerdict::NoScopes);
        assert_eq!(check(&wms, Some(&json!(null))), ScopesVerdict::NoScopes);
    }
}
