//! Entry points for the cargo-fuzz targets in `fuzz/` (not a stable API): thin wrappers that
//! reach the parsers of untrusted bytes which are otherwise private to their modules, so a
//! target exercises exactly the code the gateway runs.

use http::{HeaderMap, HeaderValue};
use jsonwebtoken::Algorithm;

use crate::model::Security;

pub use crate::auth::basic::decode_credentials;
pub use crate::auth::cookie;
pub use crate::auth::introspection::read_answer as read_introspection_answer;
pub use crate::auth::outbound::max_age;
pub use crate::auth::{query_param, split_pair};

/// The algorithms a JWKS key may verify.
pub const PUBLIC_KEY_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// `("bearer" | "basic" | "other", value)` of an `Authorization`-style header; the value's
/// bytes are visible ASCII or tabs.
pub fn scheme_value(value: &HeaderValue) -> Option<(&'static str, &[u8])> {
    crate::auth::scheme_value(value)
}

/// The request target as the access log writes it, API-key query values hidden.
pub fn redacted_target(target: &str, secret_params: &[String]) -> String {
    crate::gateway::redacted_target(target, secret_params).into_owned()
}

/// Removes the credentials `security` accepts from a request head, as before proxying.
pub fn remove_credentials(security: &Security, parts: &mut http::request::Parts) {
    let auth_header = crate::auth::auth_header_name(security);
    crate::policies::authenticate::remove_credentials(security, auth_header.as_ref(), parts)
}

/// Parses a JWKS document as a fetch would, then looks a key up for every `kid` of the set (and
/// none) and every algorithm, and verifies `signature` over `message` with each key found (a
/// key taken from a document is used with whatever numbers it carries). Returns the number of
/// usable keys, or the reason the set is refused.
pub fn jwks_document(body: &[u8], message: &[u8], signature: &str) -> Result<usize, String> {
    let keys = crate::auth::jwks::parse_set(body)?;
    let mut kids: Vec<Option<&str>> = keys.iter().map(|(kid, _)| kid.as_deref()).collect();
    kids.push(None);
    for kid in kids {
        for alg in PUBLIC_KEY_ALGORITHMS {
            if let Some(key) = crate::auth::jwks::find_in(&keys, kid, alg) {
                assert!(
                    key.accepts(alg),
                    "a key was found for an algorithm it refuses"
                );
                crate::auth::jwt::install_crypto_provider();
                let _ = jsonwebtoken::crypto::verify(signature, message, &key.key, alg);
            }
        }
    }
    Ok(keys.len())
}

/// A header map of `name: value` lines (invalid lines skipped), for targets that read headers.
pub fn header_block(text: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_bytes(value.trim().as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// The HMAC issuers of [`jwt_verifier`]: `(iss, secret)`.
pub const JWT_ISSUERS: [(&str, &str); 2] = [
    (
        "https://idp.fuzz/oauth2/token",
        "fuzz-secret-number-one-long-enough-for-hs256",
    ),
    ("wso2", "fuzz-secret-number-two-long-enough-for-hs512"),
];

/// A verifier with the two [`JWT_ISSUERS`]: the first allows HS256 and checks the audience
/// `gateway` and the `subscribedAPIs` claim; the second allows HS256/384/512, reads scopes from
/// `scp`-style claim `roles` and the consumer from `azp`.
pub fn jwt_verifier() -> crate::auth::jwt::JwtVerifier {
    use crate::config::{JwtIssuerConfig, SecurityConfig};
    let issuer = |index: usize, algorithms: &[&str]| JwtIssuerConfig {
        issuer: JWT_ISSUERS[index].0.into(),
        audience: (index == 0).then(|| "gateway".into()),
        certificate: None,
        hmac_secret_env: Some(format!("FUZZ_SECRET_{index}")),
        hmac_secret_file: None,
        algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        kid: None,
        scope_claim: if index == 0 { "scope" } else { "roles" }.into(),
        jwks_url: None,
        consumer_key_claim: if index == 0 { "aud" } else { "azp" }.into(),
        validate_subscription: index == 0,
    };
    let config = SecurityConfig {
        jwt_issuers: vec![
            issuer(0, &["HS256"]),
            issuer(1, &["HS256", "HS384", "HS512"]),
        ],
        ..SecurityConfig::default()
    };
    crate::tls::install_crypto_provider();
    let client = crate::auth::outbound::OutboundClient::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    );
    let env = |name: &str| {
        name.strip_prefix("FUZZ_SECRET_")
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| JWT_ISSUERS.get(i))
            .map(|(_, secret)| secret.to_string())
    };
    crate::auth::jwt::JwtVerifier::new(
        &config,
        &crate::auth::jwt::Sources {
            resolve: &|p: &std::path::Path| p.to_path_buf(),
            env: &env,
            client: &client,
        },
    )
    .expect("the fuzzing issuers are valid")
}

/// Runs [`crate::auth::jwt::JwtVerifier::verify`] to completion on a current-thread runtime
/// (HMAC issuers never reach the network).
pub fn verify_jwt(
    verifier: &crate::auth::jwt::JwtVerifier,
    token: &str,
) -> Result<crate::auth::cache::Grant, crate::auth::jwt::TokenError> {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(verifier.verify(token)))
}

/// Reads `bytes` as an upstream's answer to a `GET` (a `HEAD` when `head`) the way the lean
/// upstream client does (`proxy::h1`), fed `piece` bytes at a time: the status, the body and
/// the trailers, or `None` when the answer is refused.
pub fn upstream_response(
    bytes: &[u8],
    head: bool,
    piece: usize,
) -> Option<(u16, Vec<u8>, Option<HeaderMap>)> {
    let method = if head {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    crate::proxy::h1::read_from_bytes(bytes, &method, piece)
        .ok()
        .map(|(answer, body, trailers)| (answer.status.as_u16(), body, trailers))
}

/// An upstream's answer head (to a `GET`) read both ways the lean client reads it, each
/// written as the lean server writes its fields: kept as received ([`FieldLines`]) and
/// written from there, and parsed into a header map and written from that (`name: value`
/// lines in order, then the `Content-Length` each way found on a line of its own). `None`
/// unless the fields were kept; then the two must be equal.
///
/// [`FieldLines`]: crate::proxy::field_lines::FieldLines
pub fn upstream_fields_both_ways(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let method = http::Method::GET;
    let kept = crate::proxy::h1::head_from_bytes(bytes, &method, true).ok()??;
    let fields = kept.as_received.as_ref()?;
    let mapped = crate::proxy::h1::head_from_bytes(bytes, &method, false).ok()??;
    let mut from_lines = Vec::new();
    fields.write(&mut from_lines, true);
    from_lines.extend_from_slice(format!("{}\n", fields.content_length()).as_bytes());
    let mut from_map = Vec::new();
    for (name, value) in &mapped.headers {
        from_map.extend_from_slice(name.as_str().as_bytes());
        from_map.extend_from_slice(b": ");
        from_map.extend_from_slice(value.as_bytes());
        from_map.extend_from_slice(b"\r\n");
    }
    let length = crate::proxy::h1::content_length(&mapped.headers)
        .ok()
        .flatten()
        .map_or_else(|| "none".to_string(), |length| length.to_string());
    from_map.extend_from_slice(format!("{length}\n").as_bytes());
    Some((from_lines, from_map))
}

/// Reads the first request of a client's `bytes` as the lean HTTP/1.1 server does
/// (`server::h1`), fed `piece` bytes at a time, with the default limits (16 KiB head, 100
/// fields): served (method, target, fields, body, bytes taken), handed to hyper (the bytes it
/// gets), or incomplete.
pub fn request_head(bytes: &[u8], piece: usize) -> crate::server::h1::FirstRequest {
    crate::server::h1::first_request_from_bytes(
        bytes,
        piece,
        crate::server::h1::Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_timeout: std::time::Duration::from_secs(30),
        },
    )
}
