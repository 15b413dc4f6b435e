//! Tests of the validators that talk to other servers — JWKS endpoints and the key manager —
//! against real HTTP servers on loopback, and of the [`Authenticator`] putting every scheme
//! together.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::introspection::{Introspected, Introspector};
use super::jwt::{JwtVerifier, Sources, TokenError};
use super::outbound::test_client;
use super::test_server::{Reply, TestServer};
use super::*;
use crate::config::{
    ApiKeyConfig, JwksConfig, JwtIssuerConfig, KeyManagerConfig, SecurityConfig, UserConfig,
};
use crate::model::{Api, ApiKeyLocation, AuthScheme, Security};

const ISS: &str = "https://idp.test/oauth2/token";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A P-256 signing key and its JWK.
struct EcKey {
    encoding: EncodingKey,
    x: String,
    y: String,
    cert_pem: String,
}

fn ec_key() -> EcKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let cert = rcgen::CertificateParams::new(vec!["keys.test".to_string()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    EcKey {
        encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        x: b64(&raw[1..33]),
        y: b64(&raw[33..65]),
        cert_pem: cert.pem(),
    }
}

fn jwk(key: &EcKey, kid: &str) -> serde_json::Value {
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": key.x, "y": key.y})
}

fn jwks(keys: &[serde_json::Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Also installs the crypto provider (every token's claims read the clock), so that no test
/// signs with jsonwebtoken's default before a verifier installed ring's.
fn now() -> u64 {
    super::jwt::install_crypto_provider();
    super::now()
}

fn token(key: &EcKey, kid: Option<&str>, extra: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_string);
    let mut claims = json!({"iss": ISS, "sub": "alice", "exp": now() + 300, "scope": "read"});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    encode(&header, &claims, &key.encoding).unwrap()
}

fn jwks_issuer(url: String) -> JwtIssuerConfig {
    JwtIssuerConfig {
        issuer: ISS.into(),
        audience: None,
        certificate: None,
        hmac_secret_env: None,
        hmac_secret_file: None,
        algorithms: vec!["ES256".into()],
        kid: None,
        scope_claim: "scope".into(),
        jwks_url: Some(url),
        consumer_key_claim: "azp".into(),
        validate_subscription: false,
    }
}

fn verifier(issuers: Vec<JwtIssuerConfig>, jwks: JwksConfig) -> JwtVerifier {
    let config = SecurityConfig {
        jwt_issuers: issuers,
        jwks,
        ..SecurityConfig::default()
    };
    let client = test_client();
    JwtVerifier::new(
        &config,
        &Sources {
            resolve: &|p: &Path| p.to_path_buf(),
            env: &|_| None,
            client: &client,
        },
    )
    .unwrap()
}

fn jwks_settings(cooldown: u64) -> JwksConfig {
    JwksConfig {
        refetch_cooldown_seconds: cooldown,
        timeout_ms: 500,
        ..JwksConfig::default()
    }
}

#[tokio::test]
async fn jwks_keys_verify_and_a_new_kid_is_fetched_on_rotation() {
    let k1 = ec_key();
    let k2 = ec_key();
    let first = jwks(&[jwk(&k1, "k1")]);
    let server = TestServer::start(move |_| Reply::json(first.clone())).await;
    let v = verifier(vec![jwks_issuer(server.url("/jwks"))], jwks_settings(0));
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    assert_eq!(server.hits(), 1, "fresh keys are reused");
    // A token without kid is accepted only while the set has one key.
    assert!(v.verify(&token(&k1, None, json!({}))).await.is_ok());
    // The identity provider rotates: k2 is added and used.
    let both = jwks(&[jwk(&k1, "k1"), jwk(&k2, "k2")]);
    server.set(move |_| Reply::json(both.clone()));
    assert!(v.verify(&token(&k2, Some("k2"), json!({}))).await.is_ok());
    assert_eq!(server.hits(), 2);
    assert_eq!(
        v.verify(&token(&k1, None, json!({}))).await,
        Err(TokenError::Invalid),
        "two keys and no kid: ambiguous"
    );
    // A token claiming k1 but signed by k2 fails the signature check.
    assert_eq!(
        v.verify(&token(&k2, Some("k1"), json!({}))).await,
        Err(TokenError::Invalid)
    );
}

/// Issue 10 item 17: a JWKS with RSA, EC and Ed25519 keys (normal for an identity provider
/// during an algorithm migration) and an issuer allowing `RS256, PS256, ES256, EdDSA` used to
/// refuse every token. Each token now verifies against the key of its own algorithm's family,
/// with or without a `kid`, and even when two families share one `kid`.
#[tokio::test]
async fn a_jwks_mixing_key_families_verifies_each_allowed_algorithm() {
    use rsa::traits::PublicKeyParts;
    let rsa_private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let rsa_public = rsa_private.to_public_key();
    let rsa_encoding = {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        EncodingKey::from_rsa_pem(rsa_private.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes())
            .unwrap()
    };
    let ec = ec_key();
    let ed_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ed_encoding = EncodingKey::from_ed_pem(ed_pair.serialize_pem().as_bytes()).unwrap();
    let keys = [
        json!({"kty": "RSA", "kid": "rsa", "use": "sig",
               "n": b64(&rsa_public.n().to_bytes_be()), "e": b64(&rsa_public.e().to_bytes_be())}),
        jwk(&ec, "ec"),
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed_pair.public_key_raw())}),
    ];
    let body = jwks(&keys);
    let server = TestServer::start(move |_| Reply::json(body.clone())).await;
    let mut issuer = jwks_issuer(server.url("/jwks"));
    issuer.algorithms = ["RS256", "PS256", "ES256", "EdDSA"]
        .map(String::from)
        .to_vec();
    let v = verifier(vec![issuer], jwks_settings(0));
    let claims = json!({"iss": ISS, "sub": "alice", "exp": now() + 300, "scope": "read"});
    let signers = [
        (Algorithm::RS256, "rsa", &rsa_encoding),
        (Algorithm::PS256, "rsa", &rsa_encoding),
        (Algorithm::ES256, "ec", &ec.encoding),
        (Algorithm::EdDSA, "ed", &ed_encoding),
    ];
    for (alg, kid, key) in signers {
        for kid in [Some(kid), None] {
            let mut header = Header::new(alg);
            header.kid = kid.map(str::to_string);
            let token = encode(&header, &claims, key).unwrap();
            assert!(v.verify(&token).await.is_ok(), "{alg:?} kid {kid:?}");
        }
        // The right key material under another family's kid finds no key.
        let mut header = Header::new(alg);
        header.kid = Some(if kid == "ec" { "rsa" } else { "ec" }.into());
        let token = encode(&header, &claims, key).unwrap();
        assert_eq!(v.verify(&token).await, Err(TokenError::Invalid), "{alg:?}");
    }
    // Allowed by the key set but not by the issuer.
    let mut header = Header::new(Algorithm::RS384);
    header.kid = Some("rsa".into());
    let token = encode(&header, &claims, &rsa_encoding).unwrap();
    assert_eq!(v.verify(&token).await, Err(TokenError::Invalid));

    // One kid for two families, and keys without any kid: matched by kid *and* algorithm.
    let shared = jwks(&[
        json!({"kty": "RSA", "kid": "2026", "n": b64(&rsa_public.n().to_bytes_be()),
               "e": b64(&rsa_public.e().to_bytes_be())}),
        json!({"kty": "EC", "crv": "P-256", "kid": "2026", "x": ec.x, "y": ec.y}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed_pair.public_key_raw())}),
    ]);
    let server = TestServer::start(move |_| Reply::json(shared.clone())).await;
    let mut issuer = jwks_issuer(server.url("/jwks"));
    issuer.algorithms = ["RS256", "ES256", "EdDSA"].map(String::from).to_vec();
    let v = verifier(vec![issuer], jwks_settings(0));
    for (alg, kid, key) in [
        (Algorithm::RS256, Some("2026"), &rsa_encoding),
        (Algorithm::ES256, Some("2026"), &ec.encoding),
        (Algorithm::EdDSA, None, &ed_encoding),
        (Algorithm::RS256, None, &rsa_encoding),
    ] {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        let token = encode(&header, &claims, key).unwrap();
        assert!(v.verify(&token).await.is_ok(), "{alg:?} kid {kid:?}");
    }
}

#[tokio::test]
async fn a_burst_of_unknown_kids_fetches_at_most_once_per_cooldown() {
    let k1 = ec_key();
    let set = jwks(&[jwk(&k1, "k1")]);
    let server = TestServer::start(move |_| Reply::json(set.clone())).await;
    let v = Arc::new(verifier(
        vec![jwks_issuer(server.url("/jwks"))],
        jwks_settings(60),
    ));
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let v = v.clone();
        let forged = token(&k1, Some(&format!("made-up-{i}")), json!({}));
        tasks.push(tokio::spawn(async move { v.verify(&forged).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Err(TokenError::Invalid));
    }
    assert_eq!(
        server.hits(),
        1,
        "unknown kids within the cooldown cause no fetch"
    );
    for kid in ["../../etc/passwd", "' OR 1=1--", &"k".repeat(65_536)] {
        assert_eq!(
            v.verify(&token(&k1, Some(kid), json!({}))).await,
            Err(TokenError::Invalid)
        );
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch_when_the_cooldown_allows_it() {
    let k1 = ec_key();
    let set = jwks(&[jwk(&k1, "k1")]);
    let server = TestServer::start(move |_| {
        let mut reply = Reply::json(set.clone());
        reply.delay = Duration::from_millis(100);
        reply
    })
    .await;
    let v = Arc::new(verifier(
        vec![jwks_issuer(server.url("/jwks"))],
        jwks_settings(3600),
    ));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let v = v.clone();
        let t = token(&k1, Some(if i % 2 == 0 { "k1" } else { "nope" }), json!({}));
        tasks.push(tokio::spawn(async move { v.verify(&t).await.is_ok() }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += usize::from(task.await.unwrap());
    }
    assert_eq!(ok, 25);
    assert_eq!(server.hits(), 1, "one fetch served every waiting request");
}

#[tokio::test]
async fn stale_keys_keep_serving_while_the_jwks_server_is_down() {
    let k1 = ec_key();
    let good = jwks(&[jwk(&k1, "k1")]);
    let server = TestServer::start(move |_| Reply::json(good.clone())).await;
    let settings = JwksConfig {
        max_age_seconds: 0,
        max_stale_seconds: 3600,
        ..jwks_settings(0)
    };
    let v = verifier(vec![jwks_issuer(server.url("/jwks"))], settings);
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    // Garbage, empty sets, wrong shapes and errors: each is a failed fetch, the old keys stay.
    for body in ["garbage", r#"{"keys":{}}"#, r#"{"keys":[]}"#] {
        let body = body.to_string();
        server.set(move |_| Reply::json(body.clone()));
        assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    }
    server.set(|_| Reply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: vec![],
        body: String::new(),
        delay: Duration::ZERO,
    });
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    let hits = server.hits();
    drop(server);
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    assert!(hits >= 5);
}

#[tokio::test]
async fn keys_past_max_stale_are_dropped_and_a_cold_start_without_jwks_refuses_quickly() {
    let k1 = ec_key();
    let good = jwks(&[jwk(&k1, "k1")]);
    let server = TestServer::start(move |_| Reply::json(good.clone())).await;
    let settings = JwksConfig {
        max_age_seconds: 0,
        max_stale_seconds: 1,
        ..jwks_settings(0)
    };
    let url = server.url("/jwks");
    let v = verifier(vec![jwks_issuer(url.clone())], settings.clone());
    assert!(v.verify(&token(&k1, Some("k1"), json!({}))).await.is_ok());
    drop(server);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        v.verify(&token(&k1, Some("k1"), json!({}))).await,
        Err(TokenError::Invalid)
    );
    // A JWKS server that never answers: refused at the fetch timeout, not later.
    let silent = TestServer::start(|_| {
        let mut reply = Reply::json("{}");
        reply.delay = Duration::from_secs(30);
        reply
    })
    .await;
    let v = verifier(vec![jwks_issuer(silent.url("/jwks"))], settings);
    let started = Instant::now();
    assert_eq!(
        v.verify(&token(&k1, Some("k1"), json!({}))).await,
        Err(TokenError::Invalid)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn header_supplied_key_locations_are_never_contacted() {
    let k1 = ec_key();
    let attacker = TestServer::start(|_| Reply::json("{}")).await;
    let set = jwks(&[jwk(&k1, "k1")]);
    let idp = TestServer::start(move |_| Reply::json(set.clone())).await;
    let v = verifier(vec![jwks_issuer(idp.url("/jwks"))], jwks_settings(0));
    for field in ["jku", "x5u"] {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        match field {
            "jku" => header.jku = Some(attacker.url("/jwks")),
            _ => header.x5u = Some(attacker.url("/cert")),
        }
        let forged = encode(
            &header,
            &json!({"iss": ISS, "sub": "a", "exp": now() + 60}),
            &k1.encoding,
        )
        .unwrap();
        assert_eq!(v.verify(&forged).await, Err(TokenError::Invalid));
    }
    assert_eq!(attacker.hits(), 0);
    assert_eq!(idp.hits(), 0, "refused before any key lookup");
}

fn key_manager(server: &TestServer, token_url: Option<String>) -> KeyManagerConfig {
    KeyManagerConfig {
        introspection_url: server.url("/oauth2/introspect"),
        username: "gateway".into(),
        password_env: Some("KM_PASSWORD".into()),
        password_file: None,
        token_url,
        timeout_ms: 400,
        cache_seconds: 300,
        negative_cache_seconds: 30,
    }
}

fn introspector(config: &KeyManagerConfig) -> Introspector {
    Introspector::new(config, 100, test_client(), &|p| p.to_path_buf(), &|name| {
        (name == "KM_PASSWORD").then(|| "km-secret".to_string())
    })
    .unwrap()
}

#[test]
fn a_request_that_finds_its_answer_cached_does_not_carry_the_exchange() {
    // A future is at least as large as the largest future it may await, and the gateway's is
    // copied whole on its way into its task: the exchange with the authorization server,
    // needed only on a miss, is boxed. Inline, `introspect`'s future was larger than the
    // exchange's (1,888 bytes in a release build).
    let config = KeyManagerConfig {
        introspection_url: "http://127.0.0.1:9/oauth2/introspect".into(),
        username: "gateway".into(),
        password_env: Some("KM_PASSWORD".into()),
        password_file: None,
        token_url: None,
        timeout_ms: 400,
        cache_seconds: 300,
        negative_cache_seconds: 30,
    };
    let km = introspector(&config);
    let lookup = std::mem::size_of_val(&km.introspect("token"));
    let exchange = std::mem::size_of_val(&km.ask("token"));
    assert!(
        lookup * 4 < exchange,
        "introspect's future is {lookup} bytes, the exchange's {exchange}"
    );
}

#[tokio::test]
async fn introspection_answers_are_honoured_and_cached() {
    let server = TestServer::start(|seen| {
        let form = String::from_utf8_lossy(&seen.body).to_string();
        if form.contains("token=good-token") {
            Reply::json(
                json!({"active": true, "scope": "read write", "client_id": "app-1", "exp": super::now() + 600})
                    .to_string(),
            )
        } else if form.contains("token=expired-token") {
            Reply::json(json!({"active": true, "exp": super::now() - 5}).to_string())
        } else {
            Reply::json(r#"{"active":false}"#)
        }
    })
    .await;
    let km = introspector(&key_manager(&server, None));
    let Ok(Introspected::Active(grant)) = km.introspect("good-token").await else {
        panic!("active token refused");
    };
    assert_eq!(&*grant.scopes, &["read".to_string(), "write".to_string()]);
    assert_eq!(grant.consumer.as_deref(), Some("app-1"));
    let seen = server.last().unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("gateway:km-secret")
    );
    assert_eq!(seen.headers["authorization"], expected.as_str());
    assert_eq!(seen.target, "/oauth2/introspect");
    assert!(km.introspect("good-token").await.is_ok());
    assert_eq!(server.hits(), 1, "positive answers are cached");
    assert_eq!(
        km.introspect("revoked").await.unwrap(),
        Introspected::Inactive
    );
    assert_eq!(
        km.introspect("revoked").await.unwrap(),
        Introspected::Inactive
    );
    assert_eq!(server.hits(), 2, "negative answers are cached");
    assert_eq!(
        km.introspect("expired-token").await.unwrap(),
        Introspected::Inactive
    );
    // Special characters travel form-encoded.
    let _ = km.introspect("a+b/c=").await;
    assert!(String::from_utf8_lossy(&server.last().unwrap().body).contains("token=a%2Bb%2Fc%3D"));
}

#[tokio::test]
async fn an_unreachable_slow_or_confused_key_manager_is_unavailable_not_a_verdict() {
    let server = TestServer::start(|_| Reply::json("this is not json")).await;
    let config = key_manager(&server, None);
    let km = introspector(&config);
    assert!(km.introspect("t1").await.is_err(), "malformed answer");
    server.set(|_| Reply {
        status: StatusCode::UNAUTHORIZED,
        headers: vec![],
        body: String::new(),
        delay: Duration::ZERO,
    });
    assert!(
        km.introspect("t2").await.is_err(),
        "the gateway's own credentials refused"
    );
    server.set(|_| {
        let mut reply = Reply::json(r#"{"active":true}"#);
        reply.delay = Duration::from_secs(30);
        reply
    });
    let started = Instant::now();
    assert!(km.introspect("t3").await.is_err(), "slow");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(server);
    let started = Instant::now();
    let err = km.introspect("t4").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        !err.to_string().contains("t4"),
        "the token is never in messages"
    );
}

#[tokio::test]
async fn client_credentials_tokens_authenticate_the_gateway_and_are_reused() {
    let server = TestServer::start(|seen| {
        if seen.target == "/oauth2/token" {
            assert!(String::from_utf8_lossy(&seen.body).contains("grant_type=client_credentials"));
            Reply::json(r#"{"access_token":"gw-token","token_type":"Bearer","expires_in":3600}"#)
        } else {
            let bearer = seen
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if bearer == Some("Bearer gw-token") {
                Reply::json(r#"{"active":true,"scope":"read"}"#)
            } else {
                Reply {
                    status: StatusCode::UNAUTHORIZED,
                    headers: vec![],
                    body: String::new(),
                    delay: Duration::ZERO,
                }
            }
        }
    })
    .await;
    let km = introspector(&key_manager(&server, Some(server.url("/oauth2/token"))));
    assert!(matches!(
        km.introspect("a").await,
        Ok(Introspected::Active(_))
    ));
    assert!(matches!(
        km.introspect("b").await,
        Ok(Introspected::Active(_))
    ));
    assert_eq!(server.hits(), 3, "one token request, two introspections");
}

// ---- The authenticator: every scheme, scopes, subscriptions, API keys, basic auth. ----

fn api() -> Api {
    Api {
        id: "api_x".into(),
        name: "PetStore".into(),
        version: "1.0.0".into(),
        base_path: "/pets".into(),
        source: "api_definitions/pets.yaml".into(),
        resources: vec![],
        allow_encoded_slash: false,
    }
}

fn security(schemes: Vec<AuthScheme>, scopes: &[&str]) -> Security {
    Security {
        schemes,
        optional: false,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        auth_header: "Authorization".into(),
    }
}

struct Fixture {
    auth: Authenticator,
    oauth_key: EcKey,
    api_key: EcKey,
    _dir: tempfile::TempDir,
}

fn fixture(validate_allowed_apis: bool) -> Fixture {
    let dir = crate::temp_dir("auth");
    let oauth_key = ec_key();
    let api_key = ec_key();
    std::fs::write(dir.path().join("oauth.pem"), &oauth_key.cert_pem).unwrap();
    std::fs::write(dir.path().join("apikey.pem"), &api_key.cert_pem).unwrap();
    let mut issuer = jwks_issuer(String::new());
    issuer.jwks_url = None;
    issuer.certificate = Some("oauth.pem".into());
    issuer.validate_subscription = true;
    let config = SecurityConfig {
        jwt_issuers: vec![issuer],
        api_keys: Some(ApiKeyConfig {
            issuer: "https://gw.test/apikey".into(),
            certificate: "apikey.pem".into(),
            algorithms: vec!["ES256".into()],
            audience: None,
            validate_allowed_apis,
        }),
        users: vec![UserConfig {
            username: "bob".into(),
            // SHA-1 of "builder" (WSO2 legacy form).
            password_hash: "f52318a05e518a5596012af2ed38de68ac26a468".into(),
            scopes: vec!["read".into()],
        }],
        ..SecurityConfig::default()
    };
    let client = test_client();
    let base = dir.path().to_path_buf();
    let resolve = move |p: &Path| base.join(p);
    let sources = Sources {
        resolve: &resolve,
        env: &|_| None,
        client: &client,
    };
    let jwt = JwtVerifier::new(&config, &sources).unwrap();
    let api_keys =
        JwtVerifier::for_api_keys(config.api_keys.as_ref().unwrap(), &config, &sources).unwrap();
    let (users, _) = BasicUsers::new(&config.users, 10).unwrap();
    let auth = Authenticator::new(
        Validators {
            jwt,
            api_keys: Some(api_keys),
            introspector: None,
            users,
            apikey_issuer: None,
        },
        100,
        16_384,
    );
    Fixture {
        auth,
        oauth_key,
        api_key,
        _dir: dir,
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn subscribed(name: &str, version: &str) -> serde_json::Value {
    json!({"subscribedAPIs": [{"name": name, "version": version, "context": "/pets"}]})
}

/// `auth.authenticate` for a call to [`api`], with the auth header's name parsed as a route's
/// step parses it.
async fn authenticate(
    auth: &Authenticator,
    security: &Security,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<Grant>>, Rejection> {
    auth.authenticate(
        security,
        auth_header_name(security).as_ref(),
        &api(),
        headers,
        query,
    )
    .await
}

#[tokio::test]
async fn subscriptions_keytype_and_scopes_decide_access() {
    let f = fixture(true);
    let oauth = security(vec![AuthScheme::Oauth2], &["read"]);
    let t = token(&f.oauth_key, None, subscribed("PetStore", "1.0.0"));
    let grant = authenticate(&f.auth, &oauth, &bearer(&t), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.key_type, cache::KeyType::Production);
    let sandbox = token(
        &f.oauth_key,
        None,
        json!({"keytype": "SANDBOX", "subscribedAPIs": [{"name": "PetStore", "version": "1.0.0"}]}),
    );
    let grant = authenticate(&f.auth, &oauth, &bearer(&sandbox), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.key_type, cache::KeyType::Sandbox);
    for other in [
        subscribed("PetStore", "2.0.0"),
        subscribed("Other", "1.0.0"),
        json!({}),
    ] {
        let t = token(&f.oauth_key, None, other);
        let rejection = authenticate(&f.auth, &oauth, &bearer(&t), None)
            .await
            .unwrap_err();
        assert_eq!(rejection.fault.code, 900908);
        assert_eq!(rejection.fault.status, StatusCode::FORBIDDEN);
    }
    let needs_admin = security(vec![AuthScheme::Oauth2], &["admin"]);
    let rejection = authenticate(&f.auth, &needs_admin, &bearer(&t), None)
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900910);
}

/// A credential the cache has is served without checking its bytes again, however its scheme
/// is cased and whatever spaces and tabs surround it; a value with a byte `scheme_value`
/// refuses is never served from the cache, and is decided exactly as `scheme_value` decides it
/// (no credential in the auth header: another scheme's credential, or 401).
#[tokio::test]
async fn a_cached_credential_is_served_and_anything_else_checked_first() {
    let f = fixture(true);
    let oauth = security(vec![AuthScheme::Oauth2], &["read"]);
    let t = token(&f.oauth_key, None, subscribed("PetStore", "1.0.0"));
    let cached = |headers: &HeaderMap, security: &Security| {
        f.auth.authenticate_cached(
            security,
            auth_header_name(security).as_ref(),
            &api(),
            headers,
            None,
        )
    };
    // Not yet verified: the cached path has no answer.
    assert!(cached(&bearer(&t), &oauth).is_none());
    let verified = authenticate(&f.auth, &oauth, &bearer(&t), None)
        .await
        .unwrap()
        .unwrap();
    let value = |bytes: &[u8]| {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_bytes(bytes).unwrap());
        headers
    };
    for presented in [
        format!("Bearer {t}"),
        format!("bEaReR {t}"),
        format!(" \tBearer  \t{t}\t "),
    ] {
        let served = cached(&value(presented.as_bytes()), &oauth)
            .unwrap_or_else(|| panic!("{presented:?} not served from the cache"))
            .unwrap()
            .unwrap();
        assert_eq!(*served, *verified);
    }
    // Obs-text after the token (a HeaderValue may hold it; `to_str` refuses it): not served,
    // and refused as a value without a credential is, before and after the change.
    let mut tainted = format!("Bearer {t}").into_bytes();
    tainted.push(0xff);
    let headers = value(&tainted);
    assert_eq!(scheme_value(headers.get("authorization").unwrap()), None);
    let rejection = cached(&headers, &oauth).unwrap().unwrap_err();
    assert_eq!(rejection.fault.code, 900901);
    // With an API key also accepted, that key is the credential, as when the value is refused.
    let either = security(
        vec![
            AuthScheme::Oauth2,
            AuthScheme::ApiKey {
                location: ApiKeyLocation::Header,
                name: "api_key".into(),
            },
        ],
        &[],
    );
    let key = api_key_token(&f, json!([{"name": "PetStore", "version": "1.0.0"}]));
    let mut headers = value(&tainted);
    headers.insert("api_key", HeaderValue::from_str(&key).unwrap());
    let grant = authenticate(&f.auth, &either, &headers, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.kind, cache::CredentialKind::ApiKey);
    // Basic credentials verified once are served the same way.
    let encoded = base64::engine::general_purpose::STANDARD.encode("bob:builder");
    let basic = security(vec![AuthScheme::Basic], &[]);
    let presented = value(format!("Basic {encoded}").as_bytes());
    assert!(cached(&presented, &basic).is_none());
    authenticate(&f.auth, &basic, &presented, None)
        .await
        .unwrap()
        .unwrap();
    let served = cached(&value(format!("basic \t{encoded} ").as_bytes()), &basic)
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(served.consumer.as_deref(), Some("bob"));
}

fn api_key_token(f: &Fixture, allowed: serde_json::Value) -> String {
    let claims = json!({
        "iss": "https://gw.test/apikey", "sub": "carol", "iat": now(),
        "keytype": "PRODUCTION", "allowedAPIs": allowed,
    });
    encode(&Header::new(Algorithm::ES256), &claims, &f.api_key.encoding).unwrap()
}

#[tokio::test]
async fn api_keys_are_read_from_their_header_or_query_and_check_allowed_apis() {
    let f = fixture(true);
    let in_header = security(
        vec![
            AuthScheme::ApiKey {
                location: ApiKeyLocation::Header,
                name: "api_key".into(),
            },
            AuthScheme::Oauth2,
        ],
        &["write"],
    );
    let key = api_key_token(&f, json!([{"name": "PetStore", "version": "1.0.0"}]));
    let mut headers = HeaderMap::new();
    headers.insert("api_key", HeaderValue::from_str(&key).unwrap());
    // API keys carry no scopes and are not checked against them (as in WSO2).
    assert!(authenticate(&f.auth, &in_header, &headers, None)
        .await
        .is_ok());
    // The same key in the query of a header-scheme resource is not a credential.
    let query = format!("api_key={key}");
    let rejection = authenticate(&f.auth, &in_header, &HeaderMap::new(), Some(&query))
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900902);
    let in_query = security(
        vec![AuthScheme::ApiKey {
            location: ApiKeyLocation::Query,
            name: "api_key_query".into(),
        }],
        &[],
    );
    let query = format!("x=1&api_key_query={key}");
    assert!(
        authenticate(&f.auth, &in_query, &HeaderMap::new(), Some(&query))
            .await
            .is_ok()
    );
    // An API-key-only resource ignores the Authorization header (it belongs to the upstream).
    let rejection = authenticate(&f.auth, &in_query, &bearer("for-the-backend"), None)
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900902);
    // Not allowed for this API, an empty list, or signed by the OAuth2 key: 401.
    for bad in [
        api_key_token(&f, json!([{"name": "Other", "version": "1.0.0"}])),
        api_key_token(&f, json!([])),
        token(&f.oauth_key, None, json!({"iss": "https://gw.test/apikey"})),
    ] {
        let query = format!("api_key_query={bad}");
        let rejection = authenticate(&f.auth, &in_query, &HeaderMap::new(), Some(&query))
            .await
            .unwrap_err();
        assert_eq!(rejection.fault.code, 900901);
    }
    // An API key presented as a bearer token is not an OAuth2 token.
    let oauth = security(vec![AuthScheme::Oauth2], &[]);
    assert!(authenticate(&f.auth, &oauth, &bearer(&key), None)
        .await
        .is_err());
    // Without validate_allowed_apis any API accepts the key.
    let lenient = fixture(false);
    let key = api_key_token(&lenient, json!([]));
    let query = format!("api_key_query={key}");
    assert!(
        authenticate(&lenient.auth, &in_query, &HeaderMap::new(), Some(&query))
            .await
            .is_ok()
    );
}

/// Issue 10 item 10: an API key in a cookie (`in: cookie`), among other cookies, in any of
/// several `Cookie` headers; two different values under the name are refused.
#[tokio::test]
async fn api_keys_are_read_from_their_cookie() {
    let f = fixture(true);
    let in_cookie = security(
        vec![AuthScheme::ApiKey {
            location: ApiKeyLocation::Cookie,
            name: "MGW_KEY".into(),
        }],
        &[],
    );
    let key = api_key_token(&f, json!([{"name": "PetStore", "version": "1.0.0"}]));
    let cookies = |values: &[String]| {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(http::header::COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers
    };
    for values in [
        vec![format!("MGW_KEY={key}")],
        vec![format!("theme=dark;MGW_KEY=\"{key}\" ; lang=en")],
        vec!["theme=dark".to_string(), format!("MGW_KEY={key}")],
        vec![format!("MGW_KEY={key}"), format!("MGW_KEY={key}")],
    ] {
        assert!(
            authenticate(&f.auth, &in_cookie, &cookies(&values), None)
                .await
                .is_ok(),
            "{values:?}"
        );
    }
    // Missing (or only in another place) → 900902; two different values, or a bad key → 900901.
    for (values, query, code) in [
        (vec!["theme=dark".to_string()], None, 900902),
        (vec!["MGW_KEY=".to_string()], None, 900902),
        (vec![], Some(format!("MGW_KEY={key}")), 900902),
        (
            vec![format!("MGW_KEY={key}"), "MGW_KEY=other".to_string()],
            None,
            900901,
        ),
        (vec!["MGW_KEY=not.a.key".to_string()], None, 900901),
    ] {
        let rejection = authenticate(&f.auth, &in_cookie, &cookies(&values), query.as_deref())
            .await
            .unwrap_err();
        assert_eq!(rejection.fault.code, code, "{values:?} {query:?}");
    }
    // The header of the same name is not the cookie.
    let mut headers = HeaderMap::new();
    headers.insert("MGW_KEY", HeaderValue::from_str(&key).unwrap());
    let rejection = authenticate(&f.auth, &in_cookie, &headers, None)
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900902);
}

#[tokio::test]
async fn basic_auth_and_credential_ambiguity() {
    let f = fixture(false);
    let both = security(vec![AuthScheme::Oauth2, AuthScheme::Basic], &["read"]);
    let basic = |user: &str, pass: &str| {
        let mut headers = HeaderMap::new();
        let value = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Basic {value}")).unwrap(),
        );
        headers
    };
    let grant = authenticate(&f.auth, &both, &basic("bob", "builder"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.consumer.as_deref(), Some("bob"));
    let wrong = authenticate(&f.auth, &both, &basic("bob", "wrong"), None)
        .await
        .unwrap_err();
    assert_eq!(wrong.fault.code, 900911);
    let mut malformed = HeaderMap::new();
    malformed.insert(
        "authorization",
        HeaderValue::from_static("Basic bm9jb2xvbg=="),
    );
    let rejection = authenticate(&f.auth, &both, &malformed, None)
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900912);
    // Basic on an OAuth2-only resource, and a JWT on a basic-only one: 401 invalid.
    let oauth_only = security(vec![AuthScheme::Oauth2], &[]);
    let rejection = authenticate(&f.auth, &oauth_only, &basic("bob", "builder"), None)
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900901);
    let basic_only = security(vec![AuthScheme::Basic], &[]);
    let jwt = token(&f.oauth_key, None, subscribed("PetStore", "1.0.0"));
    let rejection = authenticate(&f.auth, &basic_only, &bearer(&jwt), None)
        .await
        .unwrap_err();
    assert_eq!(rejection.fault.code, 900901);
    // Two Authorization headers: refused, never "first wins".
    let mut two = bearer(&jwt);
    two.append("authorization", HeaderValue::from_static("Bearer other"));
    let rejection = authenticate(&f.auth, &both, &two, None).await.unwrap_err();
    assert_eq!(rejection.fault.code, 900901);
}

/// Express Gateway's dialect of the same verifier: the fixed `authorization_value`, active
/// answers remembered `ttl`, inactive ones asked again every time (EG caches only active
/// tokens), the answer kept whole, an unreachable endpoint an error.
#[tokio::test]
async fn express_introspection_sends_the_fixed_value_and_caches_only_active_answers() {
    let server = TestServer::start(|seen| {
        let form = String::from_utf8_lossy(&seen.body).to_string();
        if form.contains("token=good") {
            Reply::json(json!({"active": true, "scopes": "read write", "id": "u1"}).to_string())
        } else {
            Reply::json(r#"{"active":false}"#)
        }
    })
    .await;
    let authorization = HeaderValue::from_static("YXBpMTpzZWNyZXQ=");
    let eg = Introspector::express(
        &server.url("/introspect"),
        Some(authorization),
        Duration::from_millis(400),
        60,
        100,
        test_client(),
    )
    .unwrap();
    let Ok(Introspected::Active(grant)) = eg.introspect("good").await else {
        panic!("active token refused");
    };
    assert_eq!(&*grant.scopes, ["read", "write"]);
    assert_eq!(grant.claims.as_ref().unwrap()["id"], "u1");
    let seen = server.last().unwrap();
    assert_eq!(seen.headers["authorization"], "YXBpMTpzZWNyZXQ=");
    assert_eq!(
        String::from_utf8_lossy(&seen.body),
        "token=good&token_type_hint=access_token"
    );
    assert!(eg.introspect("good").await.is_ok());
    assert_eq!(server.hits(), 1, "active answers are remembered");
    for _ in 0..2 {
        assert_eq!(eg.introspect("bad").await.unwrap(), Introspected::Inactive);
    }
    assert_eq!(server.hits(), 3, "inactive answers are not remembered");
    // ttl 0: nothing remembered; no authorization value: no header.
    let uncached = Introspector::express(
        &server.url("/introspect"),
        None,
        Duration::from_millis(400),
        0,
        100,
        test_client(),
    )
    .unwrap();
    assert!(uncached.introspect("good").await.is_ok());
    assert!(uncached.introspect("good").await.is_ok());
    assert_eq!(server.hits(), 5);
    assert!(server
        .last()
        .unwrap()
        .headers
        .get("authorization")
        .is_none());
    drop(server);
    assert!(uncached.introspect("good").await.is_err(), "endpoint down");
    assert!(Introspector::express("ftp://x/y", None, Duration::ZERO, 1, 1, test_client()).is_err());
}
