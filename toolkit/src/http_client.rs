//! The toolkit's HTTP client (downloads of definitions; API Manager calls): reqwest on rustls
//! with the ring provider, trusting the system roots, a PEM bundle, or (with `-k`) anything.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// How the client decides whom to trust.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// The operating system's roots.
    System,
    /// A PEM bundle.
    Bundle(&'a Path),
    /// No verification at all (`-k/--insecure`).
    Insecure,
}

/// Whether the client follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow up to 5 (plain downloads that send no credentials).
    Follow,
    /// Never: a 3xx is answered to the caller. Calls carrying credentials (the API Manager
    /// client) use this, so a password or token is never re-sent to wherever a redirect points.
    Refuse,
}

/// Builds a client with sensible timeouts that follows redirects: for plain downloads only,
/// which send no credentials (`import --openapi <URL>`).
pub fn client(trust: Trust<'_>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    client_with(trust, timeout, Redirects::Follow)
}

/// Builds a client with sensible timeouts and the given redirect policy.
pub fn client_with(
    trust: Trust<'_>,
    timeout: Duration,
    redirects: Redirects,
) -> anyhow::Result<reqwest::Client> {
    mgw_runtime::tls::install_crypto_provider();
    let tls = match trust {
        Trust::System => mgw_runtime::tls::client_config("system", &|p| p.to_path_buf())?,
        Trust::Bundle(path) => {
            let path = path.to_string_lossy().into_owned();
            mgw_runtime::tls::client_config(&path, &|p| p.to_path_buf())?
        }
        Trust::Insecure => {
            let provider = rustls::crypto::CryptoProvider::get_default()
                .cloned()
                .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
                .with_no_client_auth()
        }
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .redirect(match redirects {
            Redirects::Follow => reqwest::redirect::Policy::limited(5),
            Redirects::Refuse => reqwest::redirect::Policy::none(),
        })
        .user_agent(concat!("micro-gw/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("creating the HTTP client")
}

/// `-k/--insecure`: accepts any certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Describes a request error with its causes, and what to do for the common ones.
pub fn explain(err: &reqwest::Error, url: &str) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    let mut certificate = false;
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        certificate |= cause_text.contains("certificate") || cause_text.contains("Certificate");
        text.push_str(": ");
        text.push_str(&cause_text);
        source = cause.source();
    }
    if certificate {
        text.push_str(
            " (the server's certificate did not verify: pass -k/--insecure to skip verification)",
        );
    } else if err.is_connect() {
        text.push_str(&format!(" (is the server running at {url}?)"));
    } else if err.is_timeout() {
        text.push_str(" (the server did not answer in time)");
    }
    text
}
