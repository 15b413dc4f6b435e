//! The API Manager's front door: dynamic client registration and the password-grant token,
//! plus the one place where transport failures become [`ApimError`]s that say what to do.

use std::time::Duration;

use serde_json::Value;

use super::settings::Endpoints;
use super::{excerpt, ApimError};
use crate::http_client::{self, Redirects, Trust};

/// The scopes the import asks for, as WSO2's toolkit does.
pub const SCOPES: &str = "apim:tier_view apim:api_view apim:api_create apim:api_publish apim:api_import_export apim:api_manage";
/// The client name the registration uses.
pub const CLIENT_NAME: &str = "Micro_Gateway_Cli";
/// Answers larger than this are refused (definitions are text; exports are zips of text).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A registered OAuth client.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// `clientId`
    pub id: String,
    /// `clientSecret`
    pub secret: String,
}

/// The secret is never shown, not even in debug output.
impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The token call failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// 401: the client is unknown to the server (e.g. a stored client that was deleted).
    #[error("the token endpoint does not know this client")]
    InvalidClient,
    /// Anything else.
    #[error(transparent)]
    Apim(#[from] ApimError),
}

/// HTTP to one API Manager.
#[derive(Debug, Clone)]
pub struct ApimClient {
    http: reqwest::Client,
    /// The resolved endpoints.
    pub endpoints: Endpoints,
    base_url: String,
    timeout: Duration,
}

impl ApimClient {
    /// A client trusting `trust`, giving each call `timeout`.
    pub fn new(
        trust: Trust<'_>,
        timeout: Duration,
        endpoints: Endpoints,
        base_url: &str,
    ) -> Result<ApimClient, ApimError> {
        let http = http_client::client_with(trust, timeout, Redirects::Refuse).map_err(|e| {
            ApimError::Transport {
                call: "setting up TLS".into(),
                detail: format!("{e:#}"),
            }
        })?;
        Ok(ApimClient {
            http,
            endpoints,
            base_url: base_url.trim_end_matches('/').to_string(),
            timeout,
        })
    }

    /// `POST {registration}` with the user's Basic credentials.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
    ) -> Result<ClientCredentials, ApimError> {
        let url = self.endpoints.registration.clone();
        let call = format!("client registration (POST {url})");
        let body = serde_json::json!({
            "callbackUrl": "https://wso2.org",
            "clientName": CLIENT_NAME,
            "owner": username,
            "saasApp": true,
            "grantType": "password",
            "tokenScope": "PRODUCTION",
        });
        let request = self
            .http
            .post(url)
            .basic_auth(username, Some(password))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let (status, bytes) = self.send(&call, request).await?;
        match status {
            200 | 201 => {}
            401 | 403 => return Err(ApimError::Unauthorized { call, status }),
            _ => {
                return Err(ApimError::RegistrationStatus {
                    call,
                    status,
                    body: excerpt(&bytes),
                })
            }
        }
        let json = parse_json(&call, &bytes)?;
        Ok(ClientCredentials {
            id: required_str(&call, &json, "clientId")?,
            secret: required_str(&call, &json, "clientSecret")?,
        })
    }

    /// `POST {token}`: a password-grant access token with [`SCOPES`].
    pub async fn password_token(
        &self,
        client: &ClientCredentials,
        username: &str,
        password: &str,
    ) -> Result<String, TokenError> {
        let url = self.endpoints.token.clone();
        let call = format!("token request (POST {url})");
        // WSO2's toolkit sends this body unencoded; encoding it is what the form type requires.
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("password", password)
            .append_pair("scope", SCOPES)
            .append_pair("username", username)
            .finish();
        let request = self
            .http
            .post(url)
            .basic_auth(&client.id, Some(&client.secret))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let (status, bytes) = self.send(&call, request).await?;
        match status {
            200 => {}
            401 => return Err(TokenError::InvalidClient),
            // The OAuth2 answer to a wrong user password.
            400 if oauth_error(&bytes).as_deref() == Some("invalid_grant") => {
                return Err(ApimError::Unauthorized { call, status }.into())
            }
            _ => {
                return Err(ApimError::TokenStatus {
                    call,
                    status,
                    body: excerpt(&bytes),
                }
                .into())
            }
        }
        let json = parse_json(&call, &bytes)?;
        Ok(required_str(&call, &json, "access_token")?)
    }

    /// Sends a request with the bearer token and returns status and body.
    pub async fn get(
        &self,
        call: &str,
        url: url::Url,
        token: &str,
    ) -> Result<(u16, Vec<u8>, Option<String>), ApimError> {
        let request = self.http.get(url).bearer_auth(token);
        self.send_typed(call, request).await
    }

    async fn send(
        &self,
        call: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), ApimError> {
        let (status, body, _) = self.send_typed(call, request).await?;
        Ok((status, body))
    }

    /// Sends, reads the body (bounded), and turns transport failures into what to do.
    async fn send_typed(
        &self,
        call: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>, Option<String>), ApimError> {
        let mut response = request.send().await.map_err(|e| self.transport(call, &e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "(no Location)".to_string(), str::to_string);
            return Err(ApimError::Redirect {
                call: call.to_string(),
                status,
                location,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(call, &e))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ApimError::Malformed {
                    call: call.to_string(),
                    problem: format!("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body, content_type))
    }

    fn transport(&self, call: &str, err: &reqwest::Error) -> ApimError {
        let mut causes = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(err);
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        let certificate = causes
            .iter()
            .find(|c| c.contains("certificate") || c.contains("Certificate"));
        let call = call.to_string();
        if let Some(detail) = certificate {
            return ApimError::Certificate {
                call,
                detail: detail.clone(),
            };
        }
        if err.is_timeout() {
            return ApimError::Timeout {
                call,
                seconds: self.timeout.as_secs_f64(),
            };
        }
        let detail = causes.last().cloned().unwrap_or_default();
        if err.is_connect() {
            return ApimError::Connect {
                call,
                detail,
                base_url: self.base_url.clone(),
            };
        }
        ApimError::Transport {
            call,
            detail: causes.join(": "),
        }
    }
}

/// The body as JSON, or which call answered something else.
pub(crate) fn parse_json(call: &str, body: &[u8]) -> Result<Value, ApimError> {
    serde_json::from_slice(body).map_err(|e| ApimError::Malformed {
        call: call.to_string(),
        problem: format!("not JSON ({e})"),
    })
}

/// A string field of a JSON object, or which one was missing.
pub(crate) fn required_str(call: &str, json: &Value, field: &str) -> Result<String, ApimError> {
    match json.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(ApimError::Malformed {
            call: call.to_string(),
            problem: format!("`{field}` should be a non-empty string, not {other}"),
        }),
        None => Err(ApimError::Malformed {
            call: call.to_string(),
            problem: format!("`{field}` is missing"),
        }),
    }
}

fn oauth_error(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("error")?.as_str().map(str::to_string)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::apim::settings::Settings;
    use mgw_e2e::backend::spawn_scripted;

    /// A client for a plain-HTTP test server at `base`.
    pub(crate) fn client_for(base: &str) -> ApimClient {
        let endpoints = Settings::default()
            .endpoints(base, std::path::Path::new("t.toml"))
            .unwrap();
        ApimClient::new(Trust::System, Duration::from_secs(5), endpoints, base).unwrap()
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let credentials = ClientCredentials {
            id: "id-1".into(),
            secret: "s3cret".into(),
        };
        let text = format!("{credentials:?}");
        assert!(text.contains("id-1") && !text.contains("s3cret"), "{text}");
    }

    #[tokio::test]
    async fn redirects_are_reported_and_never_followed() {
        let elsewhere = spawn_scripted(|_| (200, vec![], r#"{"access_token":"t"}"#.into()))
            .await
            .unwrap();
        let target = format!("{}/steal", elsewhere.url());
        let apim =
            spawn_scripted(move |_| (307, vec![("Location", target.clone())], String::new()))
                .await
                .unwrap();
        let client = client_for(&apim.url());
        let credentials = ClientCredentials {
            id: "id".into(),
            secret: "secret".into(),
        };
        let err = client
            .password_token(&credentials, "admin", "hunter2")
            .await
            .unwrap_err();
        let TokenError::Apim(err) = err else {
            panic!("expected a redirect error")
        };
        assert!(
            matches!(err, ApimError::Redirect { status: 307, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("{}/steal", elsewhere.url())) && !text.contains("hunter2"),
            "{text}"
        );
        let err = client.register("admin", "hunter2").await.unwrap_err();
        assert!(matches!(err, ApimError::Redirect { .. }), "{err}");
        assert_eq!(apim.seen().len(), 2);
        assert!(elsewhere.seen().is_empty(), "the password went elsewhere");
    }

    #[test]
    fn required_fields_name_the_call_and_field() {
        let json = serde_json::json!({"clientId": "", "other": 1});
        let err = required_str("client registration (POST x)", &json, "clientId")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("client registration (POST x)") && err.contains("`clientId`"),
            "{err}"
        );
        let err = required_str("c", &json, "clientSecret")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`clientSecret` is missing"), "{err}");
        assert!(parse_json("c", b"<html>")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert_eq!(
            oauth_error(br#"{"error":"invalid_grant"}"#).as_deref(),
            Some("invalid_grant")
        );
    }
}
