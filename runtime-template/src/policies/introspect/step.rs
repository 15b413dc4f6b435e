//! The `oauth2-introspect` step at run time, on the runtime's introspection verifier.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::HeaderValue;

use super::IntrospectSpec;
use crate::auth::introspection::{Introspected, Introspector};
use crate::auth::outbound::OutboundClient;
use crate::expression::form_decode;
use crate::pipeline::step::Flow;
use crate::pipeline::{Context, Matched};
use crate::policies::consumer_auth::{conclude, Verdict};
use crate::store::consumers::ConsumerView;

/// Introspection answers remembered per step.
const CACHE_ENTRIES: usize = 10_000;

/// A ready `oauth2-introspect` step.
#[derive(Debug)]
pub struct IntrospectStep {
    introspector: Introspector,
    pass_through: bool,
}

/// Where a request's bearer token is, as passport-http-bearer 1.0 finds it.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer<'p> {
    /// One token.
    Token(Cow<'p, str>),
    /// None (passport's challenge) or a malformed or ambiguous one (its 400): both are EG's
    /// 401 through the common auth callback.
    Refused,
}

impl IntrospectStep {
    /// Expands the settings (`${VAR}` from `env`) and checks the endpoint; the error names the
    /// action's key at fault.
    pub fn new(
        spec: &IntrospectSpec,
        env: &dyn Fn(&str) -> Option<String>,
        client: &OutboundClient,
    ) -> Result<Self, String> {
        let endpoint = crate::env_template::expand(&spec.endpoint, env)
            .map_err(|e| format!("endpoint: {e}"))?;
        let authorization = spec
            .authorization_value
            .as_deref()
            .map(|text| {
                let text = crate::env_template::expand(text, env)
                    .map_err(|e| format!("authorization_value: {e}"))?;
                let mut value = HeaderValue::from_str(&text)
                    .map_err(|_| "authorization_value is not a valid header value".to_string())?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        let introspector = Introspector::express(
            &endpoint,
            authorization,
            Duration::from_millis(spec.timeout_ms),
            spec.ttl_seconds,
            CACHE_ENTRIES,
            client.clone(),
        )
        .map_err(|e| format!("endpoint {e}"))?;
        Ok(Self {
            introspector,
            pass_through: spec.pass_through,
        })
    }

    /// The response phase is needed to mark pass-through refusals.
    pub fn has_response_phase(&self) -> bool {
        self.pass_through
    }

    /// passport-http-bearer's extraction: an `Authorization` header of exactly two
    /// space-separated parts whose first is `Bearer` (any case) gives the token, a header of
    /// another shape refuses; then the `access_token` query parameter, refused when a header
    /// token is there too or when it is repeated or object-shaped (Express's query parser makes
    /// an array or an object of it). A request body is not read (EG parses none before its
    /// policies).
    pub fn bearer(parts: &Parts) -> Bearer<'_> {
        let mut token: Option<Cow<'_, str>> = None;
        if let Some(value) = parts.headers.get(http::header::AUTHORIZATION) {
            if !value.is_empty() {
                let Ok(text) = value.to_str() else {
                    return Bearer::Refused;
                };
                let mut pieces = text.split(' ');
                match (pieces.next(), pieces.next(), pieces.next()) {
                    (Some(scheme), Some(credentials), None) => {
                        if scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty() {
                            token = Some(Cow::Borrowed(credentials));
                        }
                    }
                    _ => return Bearer::Refused,
                }
            }
        }
        if let Some(query) = parts.uri.query() {
            let mut found: Option<Cow<'_, str>> = None;
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let name = form_decode(name);
                if name == "access_token" {
                    if found.is_some() {
                        return Bearer::Refused;
                    }
                    found = Some(Cow::Owned(form_decode(value).into_owned()));
                } else if name.starts_with("access_token[") {
                    return Bearer::Refused;
                }
            }
            if let Some(from_query) = found.filter(|t| !t.is_empty()) {
                if token.is_some() {
                    return Bearer::Refused;
                }
                token = Some(from_query);
            }
        }
        token.map_or(Bearer::Refused, Bearer::Token)
    }

    /// Introspects the token and concludes as every EG authentication step does.
    pub async fn request(&self, context: &mut Context<'_>, parts: &mut Parts) -> Flow {
        let verdict = match Self::bearer(parts) {
            Bearer::Refused => Verdict::Unauthorized,
            Bearer::Token(token) => {
                let scopes: &[String] = match context.matched {
                    Matched::Express { route, .. } => &route.scopes,
                    _ => &[],
                };
                match self.introspector.introspect(&token).await {
                    Ok(Introspected::Active(grant)) => {
                        if scopes.iter().all(|s| grant.scopes.contains(s)) {
                            let claims = grant.claims.clone().unwrap_or_default();
                            context.grant = Some(grant);
                            Verdict::Accepted(consumer(claims))
                        } else {
                            Verdict::Unauthorized
                        }
                    }
                    Ok(Introspected::Inactive) => Verdict::Unauthorized,
                    Err(unavailable) => {
                        // EG's `.catch(() => done(null, false))`: the caller gets 401.
                        tracing::warn!("oauth2-introspect: {unavailable}; answering 401");
                        Verdict::Unauthorized
                    }
                }
            }
        };
        conclude(verdict, self.pass_through, context, parts)
    }
}

/// `req.user` is the introspection answer; its `id`, when it has one, is `eg-consumer-id`.
fn consumer(claims: Arc<serde_json::Map<String, serde_json::Value>>) -> ConsumerView {
    let id = match claims.get("id") {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    ConsumerView::new(Arc::from(id), claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, auth: Option<&str>) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn token(uri: &str, auth: Option<&str>) -> Option<String> {
        match IntrospectStep::bearer(&parts(uri, auth)) {
            Bearer::Token(t) => Some(t.into_owned()),
            Bearer::Refused => None,
        }
    }

    #[test]
    fn bearer_tokens_are_found_as_passport_http_bearer_finds_them() {
        assert_eq!(token("/", Some("Bearer t1")).as_deref(), Some("t1"));
        assert_eq!(token("/", Some("bEaReR t1")).as_deref(), Some("t1"));
        assert_eq!(token("/?access_token=q%2B1", None).as_deref(), Some("q+1"));
        // Another scheme: the query is still read.
        assert_eq!(
            token("/?access_token=q", Some("Basic abc")).as_deref(),
            Some("q")
        );
        // A header of other than two parts refuses, the query notwithstanding.
        assert_eq!(token("/?access_token=q", Some("Bearer a b")), None);
        assert_eq!(token("/", Some("Bearer")), None);
        // Both places, repeated or object-shaped: refused. Empty: no token.
        assert_eq!(token("/?access_token=q", Some("Bearer t")), None);
        assert_eq!(token("/?access_token=a&access_token=b", None), None);
        assert_eq!(token("/?access_token[x]=a", None), None);
        assert_eq!(token("/?access_token=", None), None);
        assert_eq!(token("/", Some("Bearer ")), None);
        assert_eq!(token("/", None), None);
    }

    #[test]
    fn the_answer_is_the_consumer() {
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"active":true,"id":"u1","sub":"x"}"#).unwrap();
        let view = consumer(Arc::new(claims));
        assert_eq!(&*view.id, "u1");
        assert_eq!(view.user["sub"], "x");
        let view = consumer(Arc::new(serde_json::Map::new()));
        assert_eq!(&*view.id, "");
    }
}
