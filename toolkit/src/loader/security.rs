//! Which credentials each resource accepts, decided at build time from OpenAPI `security`
//! requirements and schemes and WSO2's security extensions, in WSO2 API Microgateway's order:
//!
//! 1. `x-wso2-disable-security` (resource level wins over API level) and `x-auth-type: None`
//!    make a resource open;
//! 2. `x-wso2-application-security` (resource, then API level) names the schemes outright;
//! 3. otherwise the OpenAPI `security` requirements (operation, then root) and their schemes;
//! 4. with nothing declared, OAuth2 is required.
//!
//! Scopes come from the OAuth2 requirements and `x-scope`.

use mgw_runtime::model::{
    ApiKeyLocation, AuthScheme, Security, DEFAULT_API_KEY_NAME, DEFAULT_AUTH_HEADER,
};
use serde_json::Value;

use super::diagnostics::Diagnostics;
use super::document::{child, Document};
use super::openapi::SpecVersion;

/// What an API declares once, for all its resources.
#[derive(Debug, Clone)]
pub struct ApiSecurity {
    disabled: Option<bool>,
    application: Option<(Vec<AuthScheme>, bool)>,
    auth_header: String,
    version: SpecVersion,
}

/// Reads the API-level declarations.
pub fn api_security(doc: &Document, version: SpecVersion, diags: &mut Diagnostics) -> ApiSecurity {
    let auth_header = match doc.get("/x-wso2-auth-header") {
        None => DEFAULT_AUTH_HEADER.to_string(),
        Some(Value::String(name))
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok() =>
        {
            name.clone()
        }
        Some(other) => {
            diags.error(
                &doc.file,
                doc.line("/x-wso2-auth-header"),
                format!("x-wso2-auth-header must be a header name, not {other}"),
            );
            DEFAULT_AUTH_HEADER.to_string()
        }
    };
    ApiSecurity {
        disabled: doc.get("/x-wso2-disable-security").and_then(Value::as_bool),
        application: application_security(doc, "/x-wso2-application-security", version, diags),
        auth_header,
        version,
    }
}

/// The security of the operation at `op_pointer`; `None` means open.
pub fn resource_security(
    doc: &Document,
    api: &ApiSecurity,
    op_pointer: &str,
    diags: &mut Diagnostics,
) -> Option<Security> {
    let operation = doc.get(op_pointer)?;
    let disabled = operation
        .get("x-wso2-disable-security")
        .and_then(Value::as_bool)
        .or(api.disabled);
    if disabled == Some(true) {
        return None;
    }
    match operation.get("x-auth-type") {
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("none") => return None,
        Some(Value::String(kind)) => diags.warn(
            &doc.file,
            doc.line(&child(op_pointer, "x-auth-type")),
            format!("x-auth-type {kind:?} is treated as OAuth2 (only \"None\" changes anything)"),
        ),
        _ => {}
    }
    let mut scopes: Vec<String> = Vec::new();
    let (schemes, optional) = match application_security(
        doc,
        &child(op_pointer, "x-wso2-application-security"),
        api.version,
        diags,
    )
    .or_else(|| api.application.clone())
    {
        Some(declared) => declared,
        None => (
            requirement_schemes(doc, op_pointer, api.version, &mut scopes, diags),
            false,
        ),
    };
    if let Some(scope) = operation.get("x-scope").and_then(Value::as_str) {
        scopes.push(scope.to_string());
    }
    scopes.sort();
    scopes.dedup();
    Some(Security {
        schemes,
        optional,
        scopes,
        auth_header: api.auth_header.clone(),
    })
}

/// `x-wso2-application-security: {security-types: [...], optional: bool}` at `pointer`.
fn application_security(
    doc: &Document,
    pointer: &str,
    version: SpecVersion,
    diags: &mut Diagnostics,
) -> Option<(Vec<AuthScheme>, bool)> {
    let value = doc.get(pointer)?;
    let line = doc.line(pointer);
    let Some(types) = value.get("security-types").and_then(Value::as_array) else {
        diags.error(&doc.file, line, "x-wso2-application-security needs `security-types`: a list of oauth2, basic_auth and api_key");
        return None;
    };
    let mut schemes = Vec::new();
    for kind in types {
        match kind.as_str() {
            Some("oauth2") => schemes.push(AuthScheme::Oauth2),
            Some("basic_auth") => schemes.push(AuthScheme::Basic),
            Some("api_key") => schemes.extend(declared_api_keys(doc, version)),
            _ => diags.error(&doc.file, line, format!("x-wso2-application-security: security type {kind} is not one of oauth2, basic_auth, api_key")),
        }
    }
    if schemes.is_empty() {
        diags.error(&doc.file, line, "x-wso2-application-security lists no security type: name at least one, or use x-wso2-disable-security: true");
        return None;
    }
    let optional = match value.get("optional") {
        None => false,
        Some(Value::Bool(optional)) => *optional,
        Some(other) => {
            diags.error(
                &doc.file,
                line,
                format!("x-wso2-application-security: optional must be true or false, not {other}"),
            );
            false
        }
    };
    if optional {
        diags.error(
            &doc.file,
            line,
            "x-wso2-application-security: optional: true is only valid with x-wso2-mutual-ssl: mandatory, which micro-gw does not support yet: remove it",
        );
    }
    Some((schemes, optional))
}

/// The API key schemes the definition declares; WSO2's `apikey` header and query parameter
/// when it declares none.
fn declared_api_keys(doc: &Document, version: SpecVersion) -> Vec<AuthScheme> {
    let keys: Vec<AuthScheme> = scheme_table(doc, version)
        .map(|(_, table)| {
            table
                .values()
                .filter(|scheme| scheme.get("type").and_then(Value::as_str) == Some("apiKey"))
                .filter_map(api_key_of)
                .collect()
        })
        .unwrap_or_default();
    if !keys.is_empty() {
        return keys;
    }
    [ApiKeyLocation::Header, ApiKeyLocation::Query]
        .into_iter()
        .map(|location| AuthScheme::ApiKey {
            location,
            name: DEFAULT_API_KEY_NAME.to_string(),
        })
        .collect()
}

fn api_key_of(scheme: &Value) -> Option<AuthScheme> {
    let location = match scheme.get("in").and_then(Value::as_str)? {
        "header" => ApiKeyLocation::Header,
        "query" => ApiKeyLocation::Query,
        "cookie" => ApiKeyLocation::Cookie,
        _ => return None,
    };
    let name = scheme
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_API_KEY_NAME)
        .to_string();
    Some(AuthScheme::ApiKey { location, name })
}

/// `components.securitySchemes` (OpenAPI 3) or `securityDefinitions` (Swagger 2) and its
/// pointer; real definitions mix the two, so the other one is the fallback.
fn scheme_table(
    doc: &Document,
    version: SpecVersion,
) -> Option<(&'static str, &serde_json::Map<String, Value>)> {
    let order = match version {
        SpecVersion::OpenApi3 | SpecVersion::OpenApi32 => {
            ["/components/securitySchemes", "/securityDefinitions"]
        }
        SpecVersion::Swagger2 => ["/securityDefinitions", "/components/securitySchemes"],
    };
    order
        .into_iter()
        .find_map(|pointer| doc.get(pointer)?.as_object().map(|table| (pointer, table)))
}

/// The scheme named `name`, from whichever table has it.
fn find_scheme<'a>(doc: &'a Document, name: &str) -> Option<&'a Value> {
    ["/components/securitySchemes", "/securityDefinitions"]
        .into_iter()
        .find_map(|pointer| doc.get(pointer)?.get(name))
}

/// Schemes from the OpenAPI `security` requirements in force for the operation.
fn requirement_schemes(
    doc: &Document,
    op_pointer: &str,
    version: SpecVersion,
    scopes: &mut Vec<String>,
    diags: &mut Diagnostics,
) -> Vec<AuthScheme> {
    let (pointer, requirements) = match doc.get(&child(op_pointer, "security")) {
        Some(found) => (child(op_pointer, "security"), found),
        None => match doc.get("/security") {
            Some(found) => ("/security".to_string(), found),
            None => return vec![AuthScheme::Oauth2],
        },
    };
    let Some(requirements) = requirements.as_array() else {
        diags.error(
            &doc.file,
            doc.line(&pointer),
            "`security` must be a list of security requirements",
        );
        return vec![AuthScheme::Oauth2];
    };
    if requirements.is_empty() {
        diags.warn(
            &doc.file,
            doc.line(&pointer),
            "`security: []` does not open a resource in WSO2 API Microgateway: OAuth2 stays required; use x-wso2-disable-security: true to open it",
        );
        return vec![AuthScheme::Oauth2];
    }
    let _ = version;
    let mut schemes = Vec::new();
    for (i, requirement) in requirements.iter().enumerate() {
        let requirement_pointer = format!("{pointer}/{i}");
        let Some(requirement) = requirement.as_object() else {
            // e.g. `- petstore_auth:[]` (no space): a string, not a mapping.
            diags.warn(
                &doc.file,
                doc.line(&requirement_pointer),
                format!("security requirement {requirement} is not a `name: [scopes]` mapping (a missing space after ':'?): OAuth2 is required instead"),
            );
            schemes.push(AuthScheme::Oauth2);
            continue;
        };
        if requirement.len() > 1 {
            diags.warn(
                &doc.file,
                doc.line(&requirement_pointer),
                format!(
                    "this security requirement asks for {} together; the gateway accepts any one of them",
                    requirement.keys().cloned().collect::<Vec<_>>().join(" and ")
                ),
            );
        }
        for (name, required_scopes) in requirement {
            let Some(scheme) = find_scheme(doc, name) else {
                // WSO2 tolerated these; the safe reading is the default, OAuth2.
                diags.warn(
                    &doc.file,
                    doc.line(&child(&requirement_pointer, name)),
                    format!("security requirement {name:?} names no scheme in components.securitySchemes or securityDefinitions: OAuth2 is required instead; define the scheme"),
                );
                schemes.push(AuthScheme::Oauth2);
                continue;
            };
            let kind = scheme
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let http_scheme = scheme
                .get("scheme")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase();
            match (kind, http_scheme.as_str()) {
                ("oauth2" | "openIdConnect", _) | ("http", "bearer") => {
                    schemes.push(AuthScheme::Oauth2);
                    scopes.extend(required_scopes.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string));
                }
                ("basic", _) | ("http", "basic") => schemes.push(AuthScheme::Basic),
                ("apiKey", _) => match api_key_of(scheme) {
                    Some(key) => schemes.push(key),
                    None => diags.error(
                        &doc.file,
                        doc.line(&child(&requirement_pointer, name)),
                        format!("API key scheme {name:?} must be `in: header`, `in: query` or `in: cookie`"),
                    ),
                },
                _ => diags.error(
                    &doc.file,
                    doc.line(&child(&requirement_pointer, name)),
                    format!("security scheme {name:?} of type {kind:?} is not supported: use oauth2, openIdConnect, http basic/bearer or apiKey"),
                ),
            }
        }
    }
    schemes.dedup();
    if schemes.is_empty() {
        schemes.push(AuthScheme::Oauth2);
    }
    schemes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security_of(text: &str, op: &str) -> (Option<Security>, Diagnostics) {
        let doc = Document::parse("s.yaml", text).unwrap();
        let mut d = Diagnostics::default();
        let version = super::super::openapi::spec_version(&doc).unwrap();
        let api = api_security(&doc, version, &mut d);
        (resource_security(&doc, &api, op, &mut d), d)
    }

    const BASE: &str = "openapi: 3.0.0\ninfo: {title: S, version: '1'}\n";

    #[test]
    fn nothing_declared_means_oauth2() {
        let (s, d) = security_of(
            &format!("{BASE}paths:\n  /a:\n    get: {{}}\n"),
            "/paths/~1a/get",
        );
        let s = s.unwrap();
        assert_eq!(s.schemes, vec![AuthScheme::Oauth2]);
        assert_eq!(s.auth_header, "Authorization");
        assert!(d.is_ok());
    }

    #[test]
    fn disable_security_resource_level_wins() {
        let text = format!("{BASE}x-wso2-disable-security: true\npaths:\n  /a:\n    get: {{}}\n    post: {{x-wso2-disable-security: false}}\n");
        assert!(security_of(&text, "/paths/~1a/get").0.is_none());
        assert!(security_of(&text, "/paths/~1a/post").0.is_some());
        let text = format!("{BASE}paths:\n  /a:\n    get: {{x-auth-type: None}}\n");
        assert!(security_of(&text, "/paths/~1a/get").0.is_none());
    }

    #[test]
    fn openapi_requirements_give_schemes_and_scopes() {
        let text = format!(
            "{BASE}security: [{{oauth: [read]}}]\ncomponents:\n  securitySchemes:\n    oauth: {{type: oauth2, flows: {{}}}}\n    basic: {{type: http, scheme: basic}}\n    key: {{type: apiKey, in: query, name: token}}\npaths:\n  /a:\n    get: {{x-scope: admin}}\n    post:\n      security: [{{basic: []}}, {{key: []}}]\n"
        );
        let get = security_of(&text, "/paths/~1a/get").0.unwrap();
        assert_eq!(get.schemes, vec![AuthScheme::Oauth2]);
        assert_eq!(get.scopes, vec!["admin", "read"]);
        let post = security_of(&text, "/paths/~1a/post").0.unwrap();
        assert_eq!(
            post.schemes,
            vec![
                AuthScheme::Basic,
                AuthScheme::ApiKey {
                    location: ApiKeyLocation::Query,
                    name: "token".into()
                }
            ]
        );
    }

    /// Issue 10 item 10: `in: cookie` was refused; it is an API key read from that cookie,
    /// from the OpenAPI requirement and from `x-wso2-application-security: [api_key]` alike.
    /// Anything else (`in: body`) stays an error naming the line.
    #[test]
    fn api_keys_in_a_cookie_are_accepted_and_other_locations_are_errors() {
        let text = format!(
            "{BASE}components:\n  securitySchemes:\n    session: {{type: apiKey, in: cookie, name: MGW_KEY}}\n    weird: {{type: apiKey, in: body, name: k}}\npaths:\n  /a:\n    get:\n      security: [{{session: []}}]\n    put:\n      x-wso2-application-security: {{security-types: [api_key]}}\n    post:\n      security:\n        - weird: []\n"
        );
        let cookie = AuthScheme::ApiKey {
            location: ApiKeyLocation::Cookie,
            name: "MGW_KEY".into(),
        };
        let (get, d) = security_of(&text, "/paths/~1a/get");
        assert_eq!(get.unwrap().schemes, vec![cookie.clone()]);
        assert!(d.is_ok(), "{:?}", d.errors);
        let (put, d) = security_of(&text, "/paths/~1a/put");
        assert_eq!(put.unwrap().schemes, vec![cookie]);
        assert!(d.is_ok(), "{:?}", d.errors);
        let (_, d) = security_of(&text, "/paths/~1a/post");
        assert!(
            d.errors[0]
                .message
                .contains("`in: header`, `in: query` or `in: cookie`"),
            "{:?}",
            d.errors
        );
        assert_eq!(d.errors[0].line, Some(15));
    }

    #[test]
    fn application_security_overrides_requirements() {
        let text = format!(
            "{BASE}x-wso2-auth-header: X-Auth\nx-wso2-application-security: {{security-types: [basic_auth, api_key]}}\nsecurity: [{{oauth: []}}]\ncomponents:\n  securitySchemes:\n    oauth: {{type: oauth2}}\npaths:\n  /a:\n    get: {{}}\n"
        );
        let s = security_of(&text, "/paths/~1a/get").0.unwrap();
        assert_eq!(s.auth_header, "X-Auth");
        assert_eq!(s.schemes[0], AuthScheme::Basic);
        assert!(s.schemes.contains(&AuthScheme::ApiKey {
            location: ApiKeyLocation::Header,
            name: "apikey".into()
        }));
    }

    #[test]
    fn bad_declarations_are_errors_with_lines() {
        let text = format!("{BASE}paths:\n  /a:\n    get:\n      security:\n        - nope: []\n");
        let (s, d) = security_of(&text, "/paths/~1a/get");
        assert_eq!(
            s.unwrap().schemes,
            vec![AuthScheme::Oauth2],
            "an unknown scheme falls back to the safe default"
        );
        assert!(
            d.warnings[0].message.contains("\"nope\" names no scheme"),
            "{:?}",
            d.warnings
        );
        assert_eq!(d.warnings[0].line, Some(7));
        let text = format!("{BASE}paths:\n  /a:\n    get:\n      security: [{{weird: []}}]\ncomponents:\n  securitySchemes:\n    weird: {{type: mutualTLS}}\n");
        let (_, d) = security_of(&text, "/paths/~1a/get");
        assert!(
            d.errors[0].message.contains("not supported"),
            "{:?}",
            d.errors
        );
        let text = format!("{BASE}x-wso2-application-security: {{security-types: [magic]}}\npaths:\n  /a:\n    get: {{}}\n");
        let (_, d) = security_of(&text, "/paths/~1a/get");
        assert!(!d.is_ok());
        let text = format!("{BASE}paths:\n  /a:\n    get:\n      security: []\n");
        let (s, d) = security_of(&text, "/paths/~1a/get");
        assert_eq!(
            s.unwrap().schemes,
            vec![AuthScheme::Oauth2],
            "an empty list does not open the resource"
        );
        assert_eq!(d.warnings.len(), 1);
    }
}
