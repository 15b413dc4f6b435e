//! `authenticate`: a WSO2 resource's security — OAuth2 tokens (signed JWTs offline, opaque
//! tokens through the key manager), basic authentication and API keys ([`crate::auth`]). On
//! success the grant and consumer go into the context and, with
//! `security.remove_credential_header`, the credentials are removed before forwarding.

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::Response;

use crate::auth::{auth_header_name, query_param, split_pair, uses_auth_header, Rejection};
use crate::model::policy::Authenticate;
use crate::model::{ApiKeyLocation, AuthScheme, Security};
use crate::pipeline::step::Flow;
use crate::pipeline::{Context, Matched, Services};
use crate::proxy::body::GatewayBody;

/// A ready `authenticate` step.
pub struct AuthenticateStep {
    security: Security,
    /// `security.auth_header`, parsed once.
    auth_header: Option<HeaderName>,
}

impl AuthenticateStep {
    /// The step for `spec`.
    pub fn new(spec: &Authenticate) -> Self {
        Self {
            security: spec.security.clone(),
            auth_header: auth_header_name(&spec.security),
        }
    }

    /// The step's decision when it needs no `await` ([`crate::auth::Authenticator::authenticate_cached`]:
    /// a refusal, or a credential found in the cache), `None` when the credential must be
    /// verified ([`AuthenticateStep::request`]). A plain call: a cached request makes no
    /// future and copies no answer out of one.
    pub fn request_cached(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
    ) -> Option<Flow> {
        let Matched::Wso2 { api, .. } = context.matched else {
            return Some(Flow::Respond(crate::fault::INTERNAL_ERROR.response()));
        };
        let outcome = services.auth.authenticate_cached(
            &self.security,
            self.auth_header.as_ref(),
            api,
            &parts.headers,
            parts.uri.query(),
        )?;
        Some(self.conclude(outcome, services, context, parts))
    }

    /// Validates the request's credentials against the resource's security.
    pub async fn request(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
    ) -> Flow {
        let Matched::Wso2 { api, .. } = context.matched else {
            return Flow::Respond(crate::fault::INTERNAL_ERROR.response());
        };
        let outcome = services
            .auth
            .authenticate(
                &self.security,
                self.auth_header.as_ref(),
                api,
                &parts.headers,
                parts.uri.query(),
            )
            .await;
        self.conclude(outcome, services, context, parts)
    }

    /// Puts a grant into the context (and removes the credentials) or answers a refusal.
    fn conclude(
        &self,
        outcome: Result<Option<std::sync::Arc<crate::auth::cache::Grant>>, Rejection>,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
    ) -> Flow {
        match outcome {
            Ok(grant) => {
                context.consumer = grant.as_ref().and_then(|g| g.consumer.clone());
                context.authenticated = grant.is_some();
                context.grant = grant;
                if services.remove_credential_header {
                    remove_credentials(&self.security, self.auth_header.as_ref(), parts);
                }
                Flow::Continue
            }
            Err(rejection) => Flow::Respond(rejection_response(rejection)),
        }
    }
}

/// A WSO2 fault answer for a refused credential, with its `WWW-Authenticate` challenge.
pub fn rejection_response(rejection: Rejection) -> Response<GatewayBody> {
    let mut response: Response<GatewayBody> = rejection.fault.response();
    if let Some(challenge) = rejection.challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// Removes every credential the resource accepts — its auth header (when it takes OAuth2 or
/// basic; `auth_header` is `security.auth_header` parsed, see [`auth_header_name`]), API-key
/// headers, query parameters and cookies — so the upstream never sees them.
pub fn remove_credentials(
    security: &Security,
    auth_header: Option<&HeaderName>,
    parts: &mut Parts,
) {
    if let Some(name) = auth_header.filter(|_| uses_auth_header(security)) {
        parts.headers.remove(name);
    }
    for scheme in &security.schemes {
        let AuthScheme::ApiKey { location, name } = scheme else {
            continue;
        };
        match location {
            ApiKeyLocation::Header => {
                parts.headers.remove(name.as_str());
            }
            ApiKeyLocation::Cookie => {
                crate::auth::cookie::remove(&mut parts.headers, name);
            }
            ApiKeyLocation::Query => {
                let Some(query) = parts.uri.query() else {
                    continue;
                };
                if query_param(query, name).is_none() {
                    continue;
                }
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| split_pair(pair).0 != name)
                    .collect();
                let path = parts.uri.path();
                let target = if kept.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{}", kept.join("&"))
                };
                let mut uri = http::uri::Builder::new();
                if let Some(scheme) = parts.uri.scheme() {
                    uri = uri.scheme(scheme.clone());
                }
                if let Some(authority) = parts.uri.authority() {
                    uri = uri.authority(authority.clone());
                }
                if let Ok(rebuilt) = uri.path_and_query(target).build() {
                    parts.uri = rebuilt;
                }
            }
        }
    }
}
