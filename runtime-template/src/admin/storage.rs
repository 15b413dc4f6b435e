//! Kargo's `storage` plugin: `<path>/[<provider>/]<bucket>/<key…>` on the admin listener,
//! proxied to S3-compatible providers and signed with AWS Signature V4 (`aws-sigv4`, the AWS
//! SDK's own signer).
//!
//! What Kargo's `storage.js` does, and what this adds (docs/storage.md):
//! - the first segment names a provider, else it is the bucket of the `default: true` provider;
//! - Kargo serves `GET` only (aws-sdk `getObject` with `Range`); this serves `GET`, `HEAD`,
//!   `PUT` and `DELETE`, forwards `Range` and the conditional headers, streams both bodies
//!   (the payload is sent as `UNSIGNED-PAYLOAD`, so nothing is buffered) and passes S3's status
//!   and the object's headers back;
//! - a path that is not `[<provider>/]<bucket>/<key>` (unknown provider without a default, a
//!   bucket outside the provider's `buckets`, `.`/`..` segments, encoded slashes, bad escapes,
//!   an empty key) is Express's 404 `Cannot GET …`; an unreachable provider is `502 Bad
//!   gateway.`, as the proxy policy answers.
//!
//! Credentials are settings: `accessKeyId` and `secretAccessKey` are expanded from the
//! environment at start-up (Kargo's configuration names `${AWS_S3_SECRET_ACCESS_KEY}` and so
//! on). A provider whose two variables are both unset is not served (Kargo skips a provider
//! without credentials); one set without the other is a start-up error naming the variable.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::env_template;
use crate::model::express::Storage;
use crate::proxy::body::{ClientBody, GatewayBody};

/// The client's request headers forwarded to S3 (and signed), for every method.
const REQUEST_HEADERS: [HeaderName; 5] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// The client's request headers forwarded with a `PUT` (plus `x-amz-meta-*`).
const UPLOAD_HEADERS: [HeaderName; 7] = [
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::EXPIRES,
];

/// S3's response headers passed back to the client (plus `x-amz-meta-*`).
const RESPONSE_HEADERS: [&str; 14] = [
    "content-type",
    "content-length",
    "content-range",
    "etag",
    "last-modified",
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-version-id",
    "x-amz-delete-marker",
    "x-amz-request-id",
];

/// The environment variable read for a provider without `region`.
pub const REGION_VARIABLE: &str = "AWS_REGION";

type StorageClient = Client<HttpsConnector<HttpConnector>, Either<Empty<Bytes>, ClientBody>>;

/// A start-up problem of the storage plugin's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// One credential variable set without the other, a missing endpoint variable, ….
    #[error("storage provider {provider:?}: {setting}: {source}")]
    Missing {
        /// The provider.
        provider: String,
        /// `accessKeyId`, `secretAccessKey`, `endpoint`, `region`.
        setting: &'static str,
        /// Which variable.
        source: env_template::MissingVariable,
    },
    /// A setting's value is not usable.
    #[error("storage provider {provider:?}: {message}")]
    Invalid {
        /// The provider.
        provider: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Where a provider is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]` as written.
    authority: String,
    /// An IP address or `localhost`: virtual-hosted buckets are impossible.
    literal_host: bool,
    /// The endpoint's path without a trailing `/` (usually empty).
    base_path: String,
}

impl Endpoint {
    fn parse(text: &str) -> Result<Endpoint, String> {
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("https://{text}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|e| format!("endpoint {text:?} is not a URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_string(),
            _ => return Err(format!("endpoint {text:?}: use an http or https URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("endpoint {text:?} has no host"))?;
        if uri.query().is_some() || authority.as_str().contains('@') {
            return Err(format!(
                "endpoint {text:?}: no user information or query string"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Endpoint {
            scheme,
            authority: authority.as_str().to_string(),
            literal_host: host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost"),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// A provider ready to sign.
#[derive(Debug)]
struct Signer {
    endpoint: Endpoint,
    region: String,
    credentials: Credentials,
    path_style: bool,
}

/// One configured provider.
#[derive(Debug)]
struct Provider {
    name: String,
    /// `None`: no credentials in the environment, not served.
    signer: Option<Signer>,
    /// How long the provider may take to start its answer.
    timeout: Duration,
    buckets: Vec<String>,
}

/// How long a provider may take to start its answer (the response head; a body then streams
/// for as long as it flows) when its `httpOptions.timeout` does not say: aws-sdk v2's default
/// `httpOptions.timeout`, two minutes.
const DEFAULT_RESPONSE_TIMEOUT_MS: u64 = 120_000;

/// The storage route, shared by the admin listener's connections.
pub struct StorageRoute {
    path: String,
    providers: Vec<Provider>,
    default: Option<usize>,
    client: StorageClient,
}

impl std::fmt::Debug for StorageRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageRoute")
            .field("path", &self.path)
            .field(
                "providers",
                &self.providers.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Expands an optional setting: `Ok(None)` when absent, the missing variable as `Err`.
fn expand(
    text: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, env_template::MissingVariable> {
    text.map(|t| env_template::expand(t, env)).transpose()
}

impl StorageRoute {
    /// Resolves the providers' settings from `env` (credentials, endpoints, regions) and
    /// builds the client (TLS from `tls`, connections within `connect_timeout`).
    pub fn new(
        storage: &Storage,
        env: &dyn Fn(&str) -> Option<String>,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
    ) -> Result<StorageRoute, StorageError> {
        let mut providers = Vec::new();
        for provider in &storage.providers {
            let name = provider.name.clone();
            let timeout =
                Duration::from_millis(provider.timeout_ms.unwrap_or(DEFAULT_RESPONSE_TIMEOUT_MS));
            let missing = |setting: &'static str, source| StorageError::Missing {
                provider: name.clone(),
                setting,
                source,
            };
            let key = expand(provider.access_key_id.as_deref(), env);
            let secret = expand(provider.secret_access_key.as_deref(), env);
            let (key, secret) = match (key, secret) {
                (Ok(Some(key)), Ok(Some(secret))) if !key.is_empty() && !secret.is_empty() => {
                    (key, secret)
                }
                (Ok(None) | Err(_), Ok(None) | Err(_)) => {
                    tracing::warn!(
                        "storage provider {name:?} is not served: neither accessKeyId nor secretAccessKey is set (as Kargo, which skips it)"
                    );
                    providers.push(Provider {
                        name,
                        signer: None,
                        timeout,
                        buckets: provider.buckets.clone(),
                    });
                    continue;
                }
                (Err(source), _) => return Err(missing("accessKeyId", source)),
                (_, Err(source)) => return Err(missing("secretAccessKey", source)),
                _ => {
                    return Err(StorageError::Invalid {
                        provider: name,
                        message: "accessKeyId and secretAccessKey must both be set and not empty"
                            .into(),
                    })
                }
            };
            let region = match expand(provider.region.as_deref(), env) {
                Ok(Some(region)) if !region.is_empty() => region,
                Ok(_) => env(REGION_VARIABLE)
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "us-east-1".into()),
                Err(source) => return Err(missing("region", source)),
            };
            let endpoint = match expand(provider.endpoint.as_deref(), env) {
                Ok(Some(endpoint)) if !endpoint.is_empty() => endpoint,
                Ok(_) if region == "us-east-1" => "https://s3.amazonaws.com".into(),
                Ok(_) => format!("https://s3.{region}.amazonaws.com"),
                Err(source) => return Err(missing("endpoint", source)),
            };
            let endpoint = Endpoint::parse(&endpoint).map_err(|message| StorageError::Invalid {
                provider: name.clone(),
                message,
            })?;
            let credentials = Credentials::new(key, secret, None, None, "micro-gw");
            tracing::info!(
                "storage provider {name:?}: {}://{} ({region})",
                endpoint.scheme,
                endpoint.authority
            );
            providers.push(Provider {
                name,
                timeout,
                signer: Some(Signer {
                    path_style: provider.force_path_style || endpoint.literal_host,
                    endpoint,
                    region,
                    credentials,
                }),
                buckets: provider.buckets.clone(),
            });
        }
        let default = storage.providers.iter().position(|p| p.default);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(StorageRoute {
            path: storage.path.trim_end_matches('/').to_string(),
            providers,
            default,
            client,
        })
    }

    /// Whether this route answers `request`: a served method on a path under its prefix.
    pub fn matches<B>(&self, request: &Request<B>) -> bool {
        matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        ) && remainder(&self.path, request.uri().path()).is_some()
    }

    /// Forwards `request` (one that [`Self::matches`]) to its provider.
    pub async fn forward(&self, request: Request<ClientBody>) -> Response<GatewayBody> {
        let not_found = || {
            crate::respond::express_not_found(
                request.method().as_str(),
                request.uri().path_and_query().map_or("/", |pq| pq.as_str()),
            )
        };
        let Some(rest) = remainder(&self.path, request.uri().path()) else {
            return not_found();
        };
        let names: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
        let Some(object) = parse_object_path(rest, &names, self.default) else {
            return not_found();
        };
        let Some(provider) = self.providers.get(object.provider) else {
            return not_found();
        };
        if !provider.buckets.is_empty() && !provider.buckets.contains(&object.bucket) {
            return not_found();
        }
        let Some(signer) = &provider.signer else {
            return not_found();
        };
        let upstream = match signed_request(signer, &object, request) {
            Ok(upstream) => upstream,
            Err(message) => {
                tracing::error!("storage provider {:?}: {message}", provider.name);
                return crate::respond::express_send_status(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                );
            }
        };
        let answer = tokio::time::timeout(provider.timeout, self.client.request(upstream)).await;
        let Ok(answer) = answer else {
            tracing::warn!(
                "storage provider {:?} did not answer within {} ms (httpOptions.timeout)",
                provider.name,
                provider.timeout.as_millis()
            );
            return crate::respond::express_bad_gateway();
        };
        match answer {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                if matches!(parts.status.as_u16(), 401 | 403) {
                    tracing::warn!(
                        "storage provider {:?} refused a request ({}): check its credentials and region",
                        provider.name,
                        parts.status
                    );
                }
                let mut out = Response::new(GatewayBody::upstream(body));
                *out.status_mut() = parts.status;
                for (name, value) in &parts.headers {
                    let name_str = name.as_str();
                    if RESPONSE_HEADERS.contains(&name_str) || name_str.starts_with("x-amz-meta-") {
                        out.headers_mut().append(name.clone(), value.clone());
                    }
                }
                out
            }
            Err(e) => {
                tracing::warn!("storage provider {:?} unreachable: {e}", provider.name);
                crate::respond::express_bad_gateway()
            }
        }
    }
}

/// The part of `path` after `<prefix>/` (prefix compared ignoring ASCII case, as Express).
fn remainder<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    let rest = path.get(prefix.len()..)?.strip_prefix('/')?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// A request's object: which provider, which bucket, and the key (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjectPath {
    provider: usize,
    bucket: String,
    key: String,
}

/// Decodes one path segment; `None` for a bad escape, non-UTF-8, an encoded `/` or `\0`, or a
/// `.`/`..` segment.
fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    if text.contains(['/', '\0']) || text == "." || text == ".." {
        return None;
    }
    Some(text)
}

/// S3's bucket naming rules, loosely (legacy names with `_` and capitals included): never a
/// path trick.
fn valid_bucket(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !name.starts_with('.')
}

/// `[<provider>/]<bucket>/<key…>` (raw, percent-encoded) against the provider names; the
/// default provider takes a first segment that names none.
fn parse_object_path(rest: &str, providers: &[&str], default: Option<usize>) -> Option<ObjectPath> {
    let mut segments = rest.split('/').map(decode_segment);
    let first = segments.next()??;
    let (provider, bucket) = match providers.iter().position(|p| *p == first) {
        Some(index) => (index, segments.next()??),
        None => (default?, first),
    };
    if !valid_bucket(&bucket) {
        return None;
    }
    let key = segments.collect::<Option<Vec<String>>>()?.join("/");
    if key.is_empty() {
        return None;
    }
    Some(ObjectPath {
        provider,
        bucket,
        key,
    })
}

/// S3's URI encoding of a key: every byte but the unreserved ones escaped, `/` kept.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A bucket usable as a host name label (`<bucket>.<endpoint>`).
fn dns_compatible(bucket: &str, https: bool) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.'])
        && !(https && bucket.contains('.'))
}

/// The object's URL at the provider and its `Host`.
fn object_url(signer: &Signer, object: &ObjectPath) -> (String, String) {
    let endpoint = &signer.endpoint;
    let key = encode_key(&object.key);
    let virtual_host =
        !signer.path_style && dns_compatible(&object.bucket, endpoint.scheme == "https");
    if virtual_host {
        let host = format!("{}.{}", object.bucket, endpoint.authority);
        let url = format!("{}://{host}{}/{key}", endpoint.scheme, endpoint.base_path);
        (url, host)
    } else {
        let url = format!(
            "{}://{}{}/{}/{key}",
            endpoint.scheme, endpoint.authority, endpoint.base_path, object.bucket
        );
        (url, endpoint.authority.clone())
    }
}

/// The signed request to the provider: the forwarded headers, `Host`, and the signature with
/// `x-amz-content-sha256: UNSIGNED-PAYLOAD` (the body streams through unread).
fn signed_request(
    signer: &Signer,
    object: &ObjectPath,
    request: Request<ClientBody>,
) -> Result<Request<Either<Empty<Bytes>, ClientBody>>, String> {
    let (parts, body) = request.into_parts();
    let (url, host) = object_url(signer, object);
    let upload = parts.method == Method::PUT;
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(&url)
        .body(if upload {
            Either::Right(body)
        } else {
            Either::Left(Empty::new())
        })
        .map_err(|e| format!("cannot build the request to {url}: {e}"))?;
    let headers = out.headers_mut();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host).map_err(|e| format!("host {host:?}: {e}"))?,
    );
    for name in &REQUEST_HEADERS {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    if upload {
        for name in &UPLOAD_HEADERS {
            if let Some(value) = parts.headers.get(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &parts.headers {
            if name.as_str().starts_with("x-amz-meta-") {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = signer.credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&signer.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let pairs = out
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|v| (name.as_str(), v))
                .map_err(|_| format!("header {name} is not visible ASCII"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signable = SignableRequest::new(
        parts.method.as_str(),
        url.as_str(),
        pairs.into_iter(),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["aws", "ovh", "scw"];

    fn parse(rest: &str, default: Option<usize>) -> Option<(usize, String, String)> {
        parse_object_path(rest, &NAMES, default).map(|o| (o.provider, o.bucket, o.key))
    }

    #[test]
    fn provider_bucket_and_key_as_kargo_splits_them() {
        let t = |p: usize, b: &str, k: &str| Some((p, b.to_string(), k.to_string()));
        assert_eq!(parse("ovh/maps/a/b.tif", Some(0)), t(1, "maps", "a/b.tif"));
        // Not a provider name: the default provider's bucket.
        assert_eq!(parse("maps/a/b.tif", Some(0)), t(0, "maps", "a/b.tif"));
        assert_eq!(parse("maps/a/b.tif", None), None);
        // Decoded once; S3 keys may hold spaces, `+`, unicode, empty segments.
        assert_eq!(
            parse("aws/maps/dir//a%20b+c%C3%A9.txt", None),
            t(0, "maps", "dir//a b+cé.txt")
        );
        // The provider name is exact (lodash `includes`).
        assert_eq!(parse("AWS/maps/x", Some(2)), t(2, "AWS", "maps/x"));
    }

    #[test]
    fn path_tricks_never_reach_another_bucket() {
        for rest in [
            "aws/maps/../other/x",
            "aws/maps/%2e%2e/other/x",
            "aws/maps/a%2Fb",
            "aws/%2e%2e/x",
            "aws/./x",
            "aws/maps/x/..",
            "aws/maps/x%00",
            "aws/maps/x%zz",
            "aws/maps/x%C3",
            "aws/maps/",
            "aws/maps",
            "aws/ma%2Fps/x",
            "aws/ma:ps/x",
            "aws//x",
            "",
        ] {
            assert_eq!(parse(rest, Some(0)), None, "{rest}");
        }
    }

    #[test]
    fn keys_are_encoded_as_s3_signs_them() {
        assert_eq!(encode_key("a b/c+d~é.txt"), "a%20b/c%2Bd~%C3%A9.txt");
    }

    #[test]
    fn prefix_is_case_insensitive_and_needs_a_slash() {
        assert_eq!(remainder("/s3", "/S3/b/k"), Some("b/k"));
        assert_eq!(remainder("/s3", "/s3"), None);
        assert_eq!(remainder("/s3", "/s3x/b"), None);
        assert_eq!(remainder("/s3", "/é"), None);
    }

    #[test]
    fn endpoints_and_addressing_styles() {
        let e = Endpoint::parse("s3.gra.io.cloud.ovh.net").unwrap();
        assert_eq!(e.scheme, "https");
        assert!(!e.literal_host);
        let local = Endpoint::parse("http://127.0.0.1:4568/").unwrap();
        assert!(local.literal_host);
        assert_eq!(local.base_path, "");
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("https://u:p@x").is_err());
        let signer = |endpoint, path_style| Signer {
            endpoint,
            region: "us-east-1".into(),
            credentials: Credentials::new("a", "b", None, None, "t"),
            path_style,
        };
        let object = ObjectPath {
            provider: 0,
            bucket: "maps".into(),
            key: "a b".into(),
        };
        assert_eq!(
            object_url(&signer(e.clone(), false), &object),
            (
                "https://maps.s3.gra.io.cloud.ovh.net/a%20b".to_string(),
                "maps.s3.gra.io.cloud.ovh.net".to_string()
            )
        );
        assert_eq!(
            object_url(&signer(e, true), &object).0,
            "https://s3.gra.io.cloud.ovh.net/maps/a%20b"
        );
        assert!(!dns_compatible("my.bucket", true));
        assert!(dns_compatible("my.bucket", false));
        assert!(!dns_compatible("My_Bucket", false));
    }

    #[test]
    fn credentials_come_from_the_environment() {
        let storage = Storage {
            path: "/s3".into(),
            providers: vec![
                crate::model::express::StorageProvider {
                    name: "aws".into(),
                    default: true,
                    endpoint: None,
                    region: None,
                    access_key_id: Some("${AK}".into()),
                    secret_access_key: Some("${SK}".into()),
                    force_path_style: false,
                    timeout_ms: None,
                    buckets: vec![],
                },
                crate::model::express::StorageProvider {
                    name: "ovh".into(),
                    default: false,
                    endpoint: Some("${OVH_ENDPOINT}".into()),
                    region: None,
                    access_key_id: Some("${OVH_AK}".into()),
                    secret_access_key: Some("${OVH_SK}".into()),
                    force_path_style: false,
                    timeout_ms: None,
                    buckets: vec![],
                },
            ],
        };
        let tls = || crate::tls::client_config("system", &|p| p.to_path_buf()).unwrap();
        let build = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            StorageRoute::new(
                &storage,
                &|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                tls(),
                Duration::from_secs(1),
            )
        };
        // A key without its secret names the secret's variable.
        let err = build(&[("AK", "id")]).unwrap_err().to_string();
        assert!(
            err.contains("secretAccessKey") && err.contains("SK"),
            "{err}"
        );
        // Nothing set for ovh: not served; aws served with the default region.
        let route = build(&[("AK", "id"), ("SK", "secret")]).unwrap();
        assert!(route.providers[1].signer.is_none());
        let aws = route.providers[0].signer.as_ref().unwrap();
        assert_eq!(aws.endpoint.authority, "s3.amazonaws.com");
        assert_eq!(aws.region, "us-east-1");
        // A served provider with an unset endpoint variable names it.
        let err = build(&[("AK", "a"), ("SK", "b"), ("OVH_AK", "c"), ("OVH_SK", "d")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("endpoint") && err.contains("OVH_ENDPOINT"),
            "{err}"
        );
        let route = build(&[("AK", "a"), ("SK", "b"), ("AWS_REGION", "eu-west-3")]).unwrap();
        let aws = route.providers[0].signer.as_ref().unwrap();
        assert_eq!(aws.endpoint.authority, "s3.eu-west-3.amazonaws.com");
    }
}
