//! The `jwt` step at run time, on the runtime's JWT primitives (`crate::auth::jwt`: algorithm
//! names, PEM keys, the usable-key check) and the `jsonwebtoken` crate.

use std::sync::Arc;

use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{JwtExtractor, JwtSpec};
use crate::auth::cache::{digest, CredentialKind, Expiring, TokenCache};
use crate::auth::jwt::{install_crypto_provider, parse_algorithms, parse_public_keys};
use crate::expression::form_decode;
use crate::pipeline::step::Flow;
use crate::pipeline::{Context, Services};
use crate::policies::consumer_auth::{conclude, Verdict};
use crate::store::consumers::ConsumerView;

/// A ready `jwt` step.
pub struct JwtStep {
    keys: Vec<DecodingKey>,
    validation: Validation,
    extractor: JwtExtractor,
    check_credential_existence: bool,
    pass_through: bool,
    /// Tokens this step verified, until their `exp`: a repeated token costs a digest and a
    /// lookup instead of two header decodes, a signature and a claims parse.
    verified: TokenCache<Verified>,
}

/// A token this step verified: its claims, until its `exp` (forever without one).
#[derive(Debug, Clone)]
struct Verified {
    valid_until: u64,
    claims: Arc<Map<String, Value>>,
    /// The claims' `id` (the consumer id without `checkCredentialExistence`).
    id: Arc<str>,
}

impl Expiring for Verified {
    fn valid_until(&self) -> u64 {
        self.valid_until
    }
}

/// Tokens remembered per step (as the WSO2 routes' `security.token_cache_entries` default).
const CACHE_ENTRIES: usize = 10_000;

impl std::fmt::Debug for JwtStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtStep")
            .field("extractor", &self.extractor)
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
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        // The `jsonwebtoken` package: exp and nbf checked when present, no clock tolerance,
        // no claim required.
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        match setting("audience", &spec.audience)? {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = setting("issuer", &spec.issuer)? {
            validation.set_issuer(&[issuer]);
        }
        Ok(Self {
            keys,
            validation,
            extractor: spec.extractor.clone(),
            check_credential_existence: spec.check_credential_existence,
            pass_through: spec.pass_through,
            verified: TokenCache::new(CACHE_ENTRIES),
        })
    }

    /// The response phase is needed to mark pass-through refusals.
    pub fn has_response_phase(&self) -> bool {
        self.pass_through
    }

    /// passport-jwt's extractors.
    fn token<'p>(&self, parts: &'p Parts) -> Option<std::borrow::Cow<'p, str>> {
        let auth_scheme = |scheme: &str| {
            let value = parts
                .headers
                .get(http::header::AUTHORIZATION)?
                .to_str()
                .ok()?;
            // passport-jwt's `(\S+)\s+(\S+)`, the scheme compared in lower case.
            let mut words = value.split_whitespace();
            let (first, second) = (words.next()?, words.next()?);
            first
                .eq_ignore_ascii_case(scheme)
                .then_some(std::borrow::Cow::Borrowed(second))
        };
        match &self.extractor {
            JwtExtractor::AuthBearer => auth_scheme("bearer"),
            JwtExtractor::AuthScheme(scheme) => auth_scheme(scheme),
            JwtExtractor::Header(name) => parts
                .headers
                .get(name.to_ascii_lowercase().as_str())?
                .to_str()
                .ok()
                .map(std::borrow::Cow::Borrowed),
            JwtExtractor::Query(field) => parts.uri.query()?.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(name) == field.as_str())
                    .then(|| std::borrow::Cow::Owned(form_decode(value).into_owned()))
            }),
        }
    }

    /// The verified payload, or `None`.
    fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !self.validation.algorithms.contains(&header.alg) {
            return None;
        }
        self.keys
            .iter()
            .filter(|key| key.family() == header.alg.family())
            .find_map(|key| {
                jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
                    .ok()
                    .map(|data| data.claims)
            })
    }

    /// The token's verified claims, from the cache when this step verified it before and it
    /// has not expired since (the same answer [`Self::verify`] would give: its checks depend on
    /// the token and the clock only, and an entry ends at the `exp` that check uses).
    fn verified(&self, token: &str) -> Option<Verified> {
        let now = crate::auth::now();
        let key = digest(CredentialKind::Oauth2, token);
        if let Some(hit) = self.verified.get(&key, now) {
            return Some(hit);
        }
        let claims = self.verify(token)?;
        let valid_until = match claims.get("exp") {
            None => Some(u64::MAX),
            Some(exp) => exp.as_u64(),
        };
        let verified = Verified {
            valid_until: valid_until.unwrap_or(0),
            id: Arc::from(claims.get("id").and_then(Value::as_str).unwrap_or("")),
            claims: Arc::new(claims),
        };
        // An `exp` that is not a whole number of seconds: checked again on every request.
        if valid_until.is_some() {
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
                let consumer = verified
                    .claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .zip(services.consumers.as_ref())
                    .and_then(|(sub, consumers)| consumers.jwt_consumer(sub));
                match consumer {
                    Some(consumer) => Verdict::Accepted(consumer),
                    None => Verdict::Unauthorized,
                }
            }
            Some(verified) => Verdict::Accepted(ConsumerView {
                id: verified.id,
                user: verified.claims,
            }),
        };
        conclude(verdict, self.pass_through, context, parts)
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
            assert_eq!(step.verify(&t).unwrap()["sub"], json!("k1"));
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
        assert!(query.verify(&query.token(&p).unwrap()).is_some());
        // Verified tokens are remembered until their exp, and only valid ones.
        let cached = step.verified(&good).unwrap();
        assert_eq!(cached.valid_until, 4_000_000_000);
        assert_eq!(step.verified(&good).unwrap().claims["sub"], json!("k1"));
        let no_exp = token(json!({"aud": "kargo", "id": "c1"}), "s3cret");
        let forever = step.verified(&no_exp).unwrap();
        assert_eq!((forever.valid_until, &*forever.id), (u64::MAX, "c1"));
        let expired = token(json!({"sub": "k1", "aud": "kargo", "exp": 1}), "s3cret");
        assert!(step.verified(&expired).is_none());
        assert!(step.verified(&expired).is_none());
        let key = digest(CredentialKind::Oauth2, &expired);
        assert!(step.verified.get(&key, 0).is_none());
        // A token verified once and expired since is verified again (and refused).
        let soon = token(
            json!({"sub": "k1", "aud": "kargo", "exp": crate::auth::now() + 1}),
            "s3cret",
        );
        assert!(step.verified(&soon).is_some());
        let key = digest(CredentialKind::Oauth2, &soon);
        assert!(step.verified.get(&key, crate::auth::now() + 1).is_none());
        // A missing variable or key is a start-up error naming the key.
        let err = JwtStep::new(&spec(JwtExtractor::AuthBearer), &|_| None).unwrap_err();
        assert!(
            err.contains("secretOrPublicKey") && err.contains("JWT_SECRET"),
            "{err}"
        );
    }
}
