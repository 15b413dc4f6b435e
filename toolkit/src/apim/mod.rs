//! Importing API definitions from WSO2 API Manager.
//!
//! The REST contract is WSO2's (see `docs/api-manager-import.md`): [`client`] registers an OAuth
//! client (DCR) and gets a password-grant token, then [`publisher`] (API Manager 3.x: search +
//! `/swagger`) or [`export`] (4.x: a gateway environment's zip) fetches the definitions, and
//! [`definition`] names them the way `build` reads them. [`settings`] and [`secrets`] keep what
//! may be remembered between runs. Nothing here prompts or prints: that is the command's job.

pub mod client;
pub mod definition;
pub mod export;
pub mod publisher;
pub mod secrets;
pub mod settings;

/// What to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Microgateway label (3.x) or gateway environment (4.x).
    pub label: Option<String>,
    /// API name and version.
    pub name_version: Option<(String, String)>,
}

/// One API as the API Manager gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApimApi {
    /// The API's name.
    pub name: String,
    /// The API's version.
    pub version: String,
    /// Its OpenAPI / Swagger text, with the `x-wso2-*` extensions the API Manager added.
    pub definition: String,
}

/// Why an import from the API Manager failed. Each message starts with WSO2's toolkit sentence
/// for the case, word for word, then says which call and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ApimError {
    /// 401 (or 400 invalid_grant from the token endpoint).
    #[error("Invalid user credentials or the user does not have required permissions ({call} answered {status})")]
    Unauthorized {
        /// e.g. `client registration (POST https://…/register)`.
        call: String,
        /// The HTTP status.
        status: u16,
    },
    /// Nothing listens there.
    #[error("Error occurred while trying to connect with server. Is the server running at {base_url}? ({call}: {detail})")]
    Connect {
        /// The call.
        call: String,
        /// The transport's message.
        detail: String,
        /// The API Manager base URL.
        base_url: String,
    },
    /// The server's certificate was not trusted.
    #[error("{call}: the server's TLS certificate did not verify ({detail}). Pass -t/--truststore <PEM bundle> with the certificate or CA that signed it, or -k/--insecure to skip verification")]
    Certificate {
        /// The call.
        call: String,
        /// What rustls said.
        detail: String,
    },
    /// No answer in time.
    #[error("{call}: no answer within {seconds} s; if the server is just slow, raise httpRequestTimeout (milliseconds) in the [client] section of the toolkit settings")]
    Timeout {
        /// The call.
        call: String,
        /// The limit.
        seconds: f64,
    },
    /// Any other transport failure.
    #[error("{call}: {detail}")]
    Transport {
        /// The call.
        call: String,
        /// The transport's message.
        detail: String,
    },
    /// A redirect, which is never followed: the request carried credentials.
    #[error("{call}: the server answered {status} redirecting to {location}; redirects are not followed, so credentials are never sent elsewhere: set the API Manager base URL (-s/--server-url) or the endpoint in the toolkit settings to the final address")]
    Redirect {
        /// The call.
        call: String,
        /// The HTTP status (3xx).
        status: u16,
        /// The `Location` header, or `(no Location)`.
        location: String,
    },
    /// Client registration answered an unexpected status.
    #[error(
        "Error occurred while creating oAuth application Status code: {status} ({call}{body})"
    )]
    RegistrationStatus {
        /// The call.
        call: String,
        /// The HTTP status.
        status: u16,
        /// `: <start of the body>` or empty.
        body: String,
    },
    /// The token endpoint answered an unexpected status.
    #[error("Error occurred while getting the token. Status code: {status} ({call}{body})")]
    TokenStatus {
        /// The call.
        call: String,
        /// The HTTP status.
        status: u16,
        /// `: <start of the body>` or empty.
        body: String,
    },
    /// An unexpected status.
    #[error("{call}: the server answered {status}{body}")]
    Status {
        /// The call.
        call: String,
        /// The HTTP status.
        status: u16,
        /// `: <start of the body>` or empty.
        body: String,
    },
    /// The answer is not what the documented contract says.
    #[error("{call}: the answer is not in the documented shape: {problem}")]
    Malformed {
        /// The call.
        call: String,
        /// What was wrong.
        problem: String,
    },
    /// Nothing matched.
    #[error("{0}")]
    NothingMatched(String),
    /// A 4.x export without deployments: WSO2's sentence, then the details.
    #[error("{message} ({call}: {detail})")]
    Deployments {
        /// `Deployment file does not exist` or `No deployments found in the deployments file`.
        message: &'static str,
        /// The call.
        call: String,
        /// What was found.
        detail: String,
    },
}

/// The text of a response body, cut to a line for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return String::new();
    }
    let cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() {
        format!(": {cut}…")
    } else {
        format!(": {cut}")
    }
}
