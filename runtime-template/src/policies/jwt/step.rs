//! The `jwt` step at run time, on the runtime's JWT primitives (`crate::auth::jwt`: algorithm
//! names, PEM keys, the usable-key check) and the `jsonwebtoken` crate.

use std::borrow::Cow;
use std::sync::Arc;

use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{JwtExtractor, JwtSpec};
use crate::auth::cache::{CacheKey, CredentialKind, Expiring, TokenCache};
use crate::auth::jwt::{install_crypto_provider, parse_algorithms, parse_public_keys};
use crate::expression::form_decode;
use crate::pipeline::step::Flow;
use crate::pipeline::{Context, Services};
use crate::policies::consumer_auth::{conclude, Verdict};
use crate::store::consumers::ConsumerView;

/// A ready `jwt` step.
pub struct JwtStep {
    keys: Vec<DecodingKey>,
    /// One validation per allowed algorithm, each listing only that algorithm (jsonwebtoken
    /// refuses a key when any listed algorithm is of another family, so the default list of a
    /// PEM key, RS, PS and ES together, must never be passed as one).
    validations: Vec<(Algorithm, Validation)>,
    source: TokenSource,
    check_credential_existence: bool,
    pass_through: bool,
    /// Tokens this step verified, until their `exp`: a repeated token costs a lookup and a
    /// comparison instead of two header decodes, a signature and a claims parse.
    verified: TokenCache<Verified>,
}

/// A token this step verified: its claims, until its `exp` (forever without one).
#[derive(Debug, Clone)]
struct Verified {
    valid_until: u64,
    /// Its `nbf` (0 without one), checked again on every request served from the cache, as
    /// the `exp` is (an entry ends there): a clock set back must not let a token in early.
    not_before: u64,
    /// The consumer without `checkCredentialExistence`: the claims' `id`, `req.user` the claims.
    view: ConsumerView,
    /// The claims' `sub` when it is a string: the `keyId` of the jwt credential
    /// `checkCredentialExistence` looks up on every request.
    sub: Option<Arc<str>>,
}

impl Expiring for Verified {
    fn valid_until(&self) -> u64 {
        self.valid_until
    }

    /// A copy with allocations of its own for what a request clones (the consumer's id,
    /// `req.user`, the `eg-consumer-id` value, the `sub`): their reference counts are then
    /// written by one worker only, as a WSO2 grant's are ([`crate::auth::cache::Grant`]).
    fn worker_copy(&self) -> Self {
        Self {
            valid_until: self.valid_until,
            not_before: self.not_before,
            view: ConsumerView::new(
                Arc::from(&*self.view.id),
                Arc::new((*self.view.user).clone()),
            ),
            sub: self.sub.as_deref().map(Arc::from),
        }
    }
}

/// Tokens remembered per step (as the WSO2 routes' `security.token_cache_entries` default).
const CACHE_ENTRIES: usize = 10_000;

impl std::fmt::Debug for JwtStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtStep")
            .field("source", &self.source)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl JwtStep {
    /// Reads the key (settings expanded with `env`; a file relative to the working directory)
    /// and the checks to make. The error names the action's key at fault.
    pub fn new(spec: &JwtSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        install_crypto_provider();
        let setting = |name: &str, text: &Option<String>| -> Result<Option<String>, String> {
            text.as_deref()
                .map(|t| crate::env_template::expand(t, env).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let inline = setting("secretOrPublicKey", &spec.secret_or_public_key)?;
        let file = setting("secretOrPublicKeyFile", &spec.secret_or_public_key_file)?;
        let (text, name) = match (inline, file) {
            (Some(text), None) => (text, "secretOrPublicKey".to_string()),
            (None, Some(path)) => (
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("secretOrPublicKeyFile: cannot read {path}: {e}"))?,
                format!("secretOrPublicKeyFile {path}"),
            ),
            _ => {
                return Err(
                    "give exactly one of secretOrPublicKey and secretOrPublicKeyFile".to_string(),
                )
            }
        };
        let pem = text.contains("-----BEGIN");
        let keys = if pem {
            parse_public_keys(&text, &name)?
        } else {
            if text.is_empty() {
                return Err(format!("{name} is empty"));
            }
            vec![DecodingKey::from_secret(text.as_bytes())]
        };
        let algorithms = if spec.algorithms.is_empty() {
            if pem {
                vec![
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                    Algorithm::ES256,
                    Algorithm::ES384,
                ]
            } else {
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            }
        } else {
            parse_algorithms(&spec.algorithms).map_err(|e| format!("algorithms: {e}"))?
        };
        let audience = setting("audience", &spec.audience)?;
        let issuer = setting("issuer", &spec.issuer)?;
        let validations = algorithms
            .into_iter()
            .map(|algorithm| {
                let mut validation = Validation::new(algorithm);
                // The `jsonwebtoken` package: exp and nbf checked when present, no clock
                // tolerance, no claim required.
                validation.leeway = 0;
                validation.validate_nbf = true;
                validation.required_spec_claims.clear();
                match &audience {
                    Some(audience) => validation.set_audience(&[audience]),
                    None => validation.validate_aud = false,
                }
                if let Some(issuer) = &issuer {
                    validation.set_issuer(&[issuer]);
                }
                (algorithm, validation)
            })
            .collect();
        Ok(Self {
            keys,
            validations,
            source: TokenSource::of(&spec.extractor),
            check_credential_existence: spec.check_credential_existence,
            pass_through: spec.pass_through,
            verified: TokenCache::new(CACHE_ENTRIES),
        })
    }

    /// The response phase is needed to mark pass-through refusals.
    pub fn has_response_phase(&self) -> bool {
        self.pass_through
    }

    /// passport-jwt's extractors: the token's bytes. A header's value must be visible ASCII
    /// and tabs (`HeaderValue::to_str`'s rule, checked 32 bytes a step by
    /// [`crate::auth::visible_ascii`]), else no token is found, as before; such bytes are UTF-8.
    fn token<'p>(&self, parts: &'p Parts) -> Option<Cow<'p, [u8]>> {
        let visible = |value: &'p http::HeaderValue| {
            let bytes = value.as_bytes();
            crate::auth::visible_ascii(bytes).then_some(bytes)
        };
        match &self.source {
            TokenSource::Scheme(scheme) => {
                let value = visible(parts.headers.get(http::header::AUTHORIZATION)?)?;
                scheme.as_ref()?.token(value).map(Cow::Borrowed)
            }
            TokenSource::Header(name) => {
                visible(parts.headers.get(name.as_ref()?)?).map(Cow::Borrowed)
            }
            TokenSource::Query(field) => parts.uri.query()?.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(name) == field.as_str())
                    .then(|| Cow::Owned(form_decode(value).into_owned().into_bytes()))
            }),
        }
    }

    /// The verified payload, or `None`.
    fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let validation = self
            .validations
            .iter()
            .find_map(|(allowed, validation)| (*allowed == header.alg).then_some(validation))?;
        self.keys
            .iter()
            .filter(|key| key.family() == header.alg.family())
            .find_map(|key| {
                jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
                    .ok()
                    .map(|data| data.claims)
            })
    }

    /// The token's verified claims, from the cache when this step verified it before and it
    /// has not expired since (the same answer [`Self::verify`] would give: its checks depend on
    /// the token and the clock only, and an entry ends at the `exp` that check uses).
    /// A token is looked up by its bytes; one not in the cache is verified as text (a header's
    /// token is visible ASCII, a query's decoded into a `String`: never refused here).
    fn verified(&self, token: &[u8]) -> Option<Verified> {
        let now = crate::auth::now();
        let key = CacheKey::new(CredentialKind::Oauth2, token);
        if let Some(hit) = self.verified.get(key, now) {
            if hit.not_before <= now {
                return Some(hit);
            }
        }
        let claims = self.verify(std::str::from_utf8(token).ok()?)?;
        let valid_until = match claims.get("exp") {
            None => Some(u64::MAX),
            Some(exp) => exp.as_u64(),
        };
        let not_before = match claims.get("nbf") {
            None => Some(0),
            Some(nbf) => nbf.as_u64(),
        };
        let verified = Verified {
            valid_until: valid_until.unwrap_or(0),
            sub: claims.get("sub").and_then(Value::as_str).map(Arc::from),
            not_before: not_before.unwrap_or(u64::MAX),
            view: ConsumerView::new(
                Arc::from(claims.get("id").and_then(Value::as_str).unwrap_or("")),
                Arc::new(claims),
            ),
        };
        // An `exp` or `nbf` that is not a whole number of seconds: checked again on every
        // request.
        if valid_until.is_some() && not_before.is_some() {
            self.verified.insert(key, verified.clone(), now);
        }
        Some(verified)
    }

    /// Checks the token and concludes as every EG authentication step does.
    pub fn request(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
    ) -> Flow {
        let verdict = match self.token(parts).and_then(|token| self.verified(&token)) {
            None => Verdict::Unauthorized,
            Some(verified) if self.check_credential_existence => {
                // Looked up on every request, cached token or not: a credential or consumer
                // deactivated since is refused at once.
                let consumer = verified
                    .sub
                    .as_deref()
                    .zip(services.consumers.as_ref())
                    .and_then(|(sub, consumers)| consumers.jwt_consumer(sub));
                match consumer {
                    Some(consumer) => Verdict::Accepted(consumer),
                    None => Verdict::Unauthorized,
                }
            }
            Some(verified) => Verdict::Accepted(verified.view),
        };
        conclude(verdict, self.pass_through, context, parts)
    }
}

/// passport-jwt's extractor, made ready at start-up.
#[derive(Debug)]
enum TokenSource {
    /// `authBearer` or `authScheme`: the `Authorization` scheme (`None` when it is empty or
    /// has a space or tab: no first word is such a scheme).
    Scheme(Option<Scheme>),
    /// `header`: the field's name (`None` for a name no field can have: then no token is
    /// found, as a lookup by that text finds none).
    Header(Option<http::HeaderName>),
    /// `query`: the parameter's name.
    Query(String),
}

impl TokenSource {
    fn of(extractor: &JwtExtractor) -> Self {
        match extractor {
            JwtExtractor::AuthBearer => Self::Scheme(Scheme::new("bearer")),
            JwtExtractor::AuthScheme(scheme) => Self::Scheme(Scheme::new(scheme)),
            JwtExtractor::Header(name) => {
                Self::Header(http::HeaderName::from_bytes(name.as_bytes()).ok())
            }
            JwtExtractor::Query(field) => Self::Query(field.clone()),
        }
    }
}

/// An `Authorization` scheme that passport-jwt's `authBearer` or `authScheme` extractor takes:
/// the header's value matches `(\S+)\s+(\S+)` (its first two words; space and tab are the only
/// whitespace of a visible value), the first word is the scheme in any case, and the token is
/// the second word.
#[derive(Debug)]
struct Scheme {
    /// The scheme in lower case.
    lower: Box<[u8]>,
    /// Whether it is all ASCII letters (then compared by [`crate::auth::letters_in_any_case`]).
    letters: bool,
}

impl Scheme {
    /// `None` when the scheme is empty or has a space or tab (no first word is such a scheme).
    fn new(scheme: &str) -> Option<Self> {
        let lower = scheme.to_ascii_lowercase().into_bytes();
        if lower.is_empty() || lower.iter().any(|&b| b == b' ' || b == b'\t') {
            return None;
        }
        Some(Self {
            letters: lower.iter().all(u8::is_ascii_lowercase),
            lower: lower.into_boxed_slice(),
        })
    }

    /// The token in `value` (visible ASCII and tabs) when its first word is this scheme. The
    /// scheme is compared where the first word starts, and must be followed by a blank: the
    /// first word is then exactly the scheme (it has no blank), without searching for its end.
    fn token<'v>(&self, value: &'v [u8]) -> Option<&'v [u8]> {
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = value.iter().position(|b| !blank(b))?;
        let word = value.get(start..start.checked_add(self.lower.len())?)?;
        let after = value.get(start + self.lower.len()..)?;
        let same = if self.letters {
            crate::auth::letters_in_any_case(word, &self.lower)
        } else {
            word.iter()
                .zip(self.lower.iter())
                .all(|(b, letter)| b.to_ascii_lowercase() == *letter)
        };
        if !same || !after.first().is_some_and(blank) {
            return None;
        }
        let tail = after.get(after.iter().position(|b| !blank(b))?..)?;
        let len = memchr::memchr2(b' ', b'\t', tail).unwrap_or(tail.len());
        tail.get(..len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn spec(extractor: JwtExtractor) -> JwtSpec {
        JwtSpec {
            secret_or_public_key: Some("${JWT_SECRET}".into()),
            secret_or_public_key_file: None,
            extractor,
            audience: Some("kargo".into()),
            issuer: None,
            algorithms: Vec::new(),
            check_credential_existence: false,
            pass_through: false,
        }
    }

    fn env(name: &str) -> Option<String> {
        (name == "JWT_SECRET").then(|| "s3cret".to_string())
    }

    fn token(claims: Value, secret: &str) -> String {
        install_crypto_provider();
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn parts(uri: &str, auth: Option<&str>) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        request.body(()).unwrap().into_parts().0
    }

    /// passport-jwt's `(\S+)\s+(\S+)` on a value of visible ASCII: the first two words.
    fn two_words(value: &str) -> Option<(&str, &str)> {
        let mut words = value.split([' ', '\t']).filter(|w| !w.is_empty());
        words.next().zip(words.next())
    }

    /// The token is the second word when the first is the scheme in any case, for every
    /// value made of words, blanks and scheme-like prefixes, and every kind of scheme.
    #[test]
    fn the_scheme_and_token_are_the_first_two_words() {
        let parts = [
            "", " ", "\t", "  \t ", "Bearer", "bearer", "BEARER", "BeArEr", "Bearerx", "Beare",
            "@EARER", "bearer\t", "jwt", "JWT", "Token-1", "token-1", "a.b.c", "x", "-", "A@B",
            "a`b", "@X", "@x", "`X", "[X]", "{x}",
        ];
        // Bytes that differ from a letter in bit 0x20 only (@, [, backslash, ], ^, backtick,
        // {, |, }, ~): a scheme with one of them is compared byte by byte, not by the letters'
        // OR and XOR.
        let schemes = ["bearer", "JWT", "Token-1", "x", "a`b", "@x", "{x}"];
        let mut values = Vec::new();
        for a in parts {
            for b in parts {
                for c in ["", " ", "\t", " a.b.c", "\ta.b.c d"] {
                    values.push(format!("{a}{b}{c}"));
                    values.push(format!("{a} {b}{c}"));
                    values.push(format!(" {a}\t{b} {c}"));
                }
            }
        }
        for scheme in schemes {
            let parsed = Scheme::new(scheme).unwrap();
            for value in &values {
                let expected = two_words(value)
                    .filter(|(first, _)| first.eq_ignore_ascii_case(scheme))
                    .map(|(_, second)| second.as_bytes());
                assert_eq!(
                    parsed.token(value.as_bytes()),
                    expected,
                    "{scheme:?} in {value:?}"
                );
            }
        }
        assert!(Scheme::new("").is_none());
        assert!(Scheme::new("two words").is_none());
        assert!(Scheme::new("tab\there").is_none());
    }

    #[test]
    fn tokens_are_read_and_verified_as_passport_jwt_does() {
        install_crypto_provider();
        let step = JwtStep::new(&spec(JwtExtractor::AuthBearer), &env).unwrap();
        let good = token(
            json!({"sub": "k1", "aud": "kargo", "exp": 4_000_000_000u64}),
            "s3cret",
        );
        for auth in [format!("Bearer {good}"), format!("bearer {good}")] {
            let p = parts("/", Some(&auth));
            let t = step.token(&p).unwrap();
            assert_eq!(
                step.verify(std::str::from_utf8(&t).unwrap()).unwrap()["sub"],
                json!("k1")
            );
        }
        // Wrong secret, wrong audience, expired: refused. No exp at all: accepted (not required).
        for bad in [
            token(json!({"sub": "k1", "aud": "kargo"}), "other"),
            token(json!({"sub": "k1", "aud": "elsewhere"}), "s3cret"),
            token(json!({"sub": "k1", "aud": "kargo", "exp": 1}), "s3cret"),
        ] {
            assert!(step.verify(&bad).is_none());
        }
        assert!(step
            .verify(&token(json!({"aud": "kargo"}), "s3cret"))
            .is_some());
        let query = JwtStep::new(&spec(JwtExtractor::Query("jwt".into())), &env).unwrap();
        let p = parts(&format!("/wms?SERVICE=WMS&jwt={good}"), None);
        let t = query.token(&p).unwrap();
        assert!(query.verify(std::str::from_utf8(&t).unwrap()).is_some());
        // Verified tokens are remembered until their exp, and only valid ones.
        let cached = step.verified(good.as_bytes()).unwrap();
        assert_eq!(cached.valid_until, 4_000_000_000);
        assert_eq!(
            step.verified(good.as_bytes()).unwrap().view.user["sub"],
            json!("k1")
        );
        let no_exp = token(json!({"aud": "kargo", "id": "c1"}), "s3cret");
        let forever = step.verified(no_exp.as_bytes()).unwrap();
        assert_eq!((forever.valid_until, &*forever.view.id), (u64::MAX, "c1"));
        let expired = token(json!({"sub": "k1", "aud": "kargo", "exp": 1}), "s3cret");
        assert!(step.verified(expired.as_bytes()).is_none());
        assert!(step.verified(expired.as_bytes()).is_none());
        let key = CacheKey::new(CredentialKind::Oauth2, expired.as_bytes());
        assert!(step.verified.get(key, 0).is_none());
        // A token verified once and expired since is verified again (and refused).
        let soon = token(
            json!({"sub": "k1", "aud": "kargo", "exp": crate::auth::now() + 1}),
            "s3cret",
        );
        assert!(step.verified(soon.as_bytes()).is_some());
        let key = CacheKey::new(CredentialKind::Oauth2, soon.as_bytes());
        assert!(step.verified.get(key, crate::auth::now() + 1).is_none());
        // A missing variable or key is a start-up error naming the key.
        let err = JwtStep::new(&spec(JwtExtractor::AuthBearer), &|_| None).unwrap_err();
        assert!(
            err.contains("secretOrPublicKey") && err.contains("JWT_SECRET"),
            "{err}"
        );
    }

    /// The default algorithms of a PEM key span three families (RS, PS, ES): they are checked
    /// one algorithm at a time, so an ES256 token verifies against a P-256 certificate (given
    /// to jsonwebtoken as one list, every token was refused).
    #[test]
    fn a_pem_key_with_the_default_algorithms_verifies_its_family() {
        install_crypto_provider();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["idp.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = cert.pem();
        let step = JwtStep::new(
            &JwtSpec {
                secret_or_public_key: Some(pem),
                audience: None,
                ..spec(JwtExtractor::AuthBearer)
            },
            &env,
        )
        .unwrap();
        let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let signed =
            |claims: Value| encode(&Header::new(Algorithm::ES256), &claims, &signing).unwrap();
        let good = signed(json!({"sub": "k1", "exp": 4_000_000_000u64}));
        assert_eq!(step.verify(&good).unwrap()["sub"], json!("k1"));
        // Another family's algorithm in the header, or an HMAC token: refused.
        assert!(step
            .verify(&token(json!({"sub": "k1"}), "s3cret"))
            .is_none());
    }

    /// A cached token is served only from its `nbf` on, and a token whose `nbf` or `exp` is
    /// not whole seconds is never cached.
    #[test]
    fn cached_tokens_keep_their_not_before() {
        install_crypto_provider();
        let step = JwtStep::new(&spec(JwtExtractor::AuthBearer), &env).unwrap();
        let now = crate::auth::now();
        let good = token(
            json!({"sub": "k1", "aud": "kargo", "nbf": now - 5}),
            "s3cret",
        );
        let verified = step.verified(good.as_bytes()).unwrap();
        assert_eq!(
            (verified.not_before, verified.sub.as_deref()),
            (now - 5, Some("k1"))
        );
        let key = CacheKey::new(CredentialKind::Oauth2, good.as_bytes());
        assert!(step.verified.get(key, now).is_some());
        // Not yet valid: refused, and not remembered.
        let early = token(json!({"aud": "kargo", "nbf": now + 60}), "s3cret");
        assert!(step.verified(early.as_bytes()).is_none());
        assert!(step
            .verified
            .get(CacheKey::new(CredentialKind::Oauth2, early.as_bytes()), now)
            .is_none());
        let fractional = token(json!({"aud": "kargo", "nbf": 1.5}), "s3cret");
        assert!(step.verified(fractional.as_bytes()).is_some());
        assert!(step
            .verified
            .get(
                CacheKey::new(CredentialKind::Oauth2, fractional.as_bytes()),
                now
            )
            .is_none());
    }

    /// A header's token is found only in a value of visible ASCII and tabs (`to_str`'s rule),
    /// by the `header` extractor's field name in any case.
    #[test]
    fn a_token_is_found_only_in_a_visible_value() {
        install_crypto_provider();
        let bearer = JwtStep::new(&spec(JwtExtractor::AuthBearer), &env).unwrap();
        let header = JwtStep::new(&spec(JwtExtractor::Header("X-JWT".into())), &env).unwrap();
        let with = |name: &str, value: &[u8]| {
            let mut p = parts("/", None);
            p.headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
            p
        };
        let found = |step: &JwtStep, p: &Parts| step.token(p).map(|t| t.into_owned());
        let p = with("authorization", b"BEARER\ta.b.c\tmore");
        assert_eq!(found(&bearer, &p), Some(b"a.b.c".to_vec()));
        for value in [
            &b"Bearer a.b.c \x80"[..],
            b"Bearer \xc3\xa9.b.c",
            b"Basic a.b.c",
        ] {
            assert_eq!(
                found(&bearer, &with("authorization", value)),
                None,
                "{value:?}"
            );
        }
        // The whole value, as passport-jwt's `fromHeader` takes it.
        assert_eq!(
            found(&header, &with("x-jwt", b" a.b.c ")),
            Some(b" a.b.c ".to_vec())
        );
        assert_eq!(found(&header, &with("x-jwt", b"a.b.\xffc")), None);
        assert_eq!(found(&header, &with("x-other", b"a.b.c")), None);
        let unusable = JwtStep::new(&spec(JwtExtractor::Header("bad name".into())), &env).unwrap();
        assert_eq!(found(&unusable, &with("x-jwt", b"a.b.c")), None);
    }

    /// A worker's copy of a verified token says the same and shares no reference count with
    /// the shared map's: no line another core writes on a cached request.
    #[test]
    fn a_workers_copy_shares_nothing_a_request_clones() {
        install_crypto_provider();
        let step = JwtStep::new(&spec(JwtExtractor::AuthBearer), &env).unwrap();
        let good = token(
            json!({"sub": "k1", "id": "consumer-1", "aud": "kargo", "role": "reader"}),
            "s3cret",
        );
        let verified = step.verified(good.as_bytes()).unwrap();
        let copy = verified.worker_copy();
        assert_eq!(
            (copy.valid_until, copy.not_before, copy.sub.as_deref()),
            (verified.valid_until, verified.not_before, Some("k1"))
        );
        assert_eq!(copy.view.id, verified.view.id);
        assert_eq!(copy.view.user, verified.view.user);
        assert_eq!(copy.view.header, verified.view.header);
        assert!(copy.view.header.is_some());
        assert!(!Arc::ptr_eq(&copy.view.id, &verified.view.id));
        assert!(!Arc::ptr_eq(&copy.view.user, &verified.view.user));
        assert!(!Arc::ptr_eq(
            copy.sub.as_ref().unwrap(),
            verified.sub.as_ref().unwrap()
        ));
        let bytes = |v: &Verified| v.view.header.as_ref().unwrap().as_bytes().as_ptr();
        assert_ne!(bytes(&copy), bytes(&verified));
    }
}
