//! Express Gateway's `jwt` policy (EG 1.16 `lib/policies/jwt`, passport-jwt 4 and the
//! `jsonwebtoken` npm package): a token from the request, its signature, `exp`, `nbf`, `aud` and
//! `iss` checked; with `checkCredentialExistence` (the default) its `sub` must be the `keyId` of
//! an active `jwt` credential of an active consumer, who becomes `req.user`; otherwise the
//! payload is `req.user`. No endpoint scopes are checked (Kargo adds a `scopes` step).

use serde::{Deserialize, Serialize};

/// Where the token is read (`jwtExtractor`, with `jwtExtractorField`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", content = "field", rename_all = "kebab-case")]
pub enum JwtExtractor {
    /// `authBearer`: `Authorization: Bearer <token>` (scheme in any case).
    AuthBearer,
    /// `authScheme`: `Authorization: <field> <token>`.
    AuthScheme(String),
    /// `header`: the whole value of the header `field`.
    Header(String),
    /// `query`: the query parameter `field`.
    Query(String),
}

/// The action of a `jwt` step. The key, audience and issuer are *settings*: `${VAR}` in them is
/// substituted when the gateway starts, so a secret never enters the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    /// `secretOrPublicKey`: an HMAC secret, or a PEM public key or certificate (setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_or_public_key: Option<String>,
    /// `secretOrPublicKeyFile`: a file holding it, relative to the gateway's working directory
    /// as in EG (setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_or_public_key_file: Option<String>,
    /// `jwtExtractor` / `jwtExtractorField`.
    pub extractor: JwtExtractor,
    /// `audience` (setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `issuer` (setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `algorithms`; empty: the `jsonwebtoken` package's defaults for the key (HS256/384/512 for
    /// a secret; RS, PS and ES for a public key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// `checkCredentialExistence` (default true).
    pub check_credential_existence: bool,
    /// `passThrough`.
    pub pass_through: bool,
}

#[cfg(feature = "server")]
mod step;
#[cfg(feature = "server")]
pub use step::JwtStep;
