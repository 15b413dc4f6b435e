//! rustls set-up for both directions: the HTTPS listener's certificate and the trust roots
//! for HTTPS endpoints. Always the ring provider (no aws-lc, no OpenSSL).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

/// TLS material that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file problem.
    #[error("{what} {path}: {reason}")]
    File {
        /// "certificate", "private key" or "trust store".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// rustls refused the combination.
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Installs the ring crypto provider once per process; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_err = |reason: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(file_err(
            "does not exist: check the path in conf/micro-gw.toml".into(),
        ));
    }
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(format!("cannot be read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// Server configuration for the HTTPS listener, offering h2 and http/1.1 by ALPN.
pub fn server_config(
    certificate: &Path,
    private_key: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    install_crypto_provider();
    let certs = read_certs(certificate, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(private_key).map_err(|e| TlsError::File {
        what: "private key",
        path: private_key.to_path_buf(),
        reason: format!(
            "cannot be used ({e}): it must be a PEM private key (PKCS#8, PKCS#1 or SEC1)"
        ),
    })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// One certificate of an SNI-selected set: a glob on the server name (`None`: the default).
#[derive(Debug, Clone)]
pub struct SniCertificateFiles {
    /// Express Gateway's `https.tls` key: a minimatch glob, or `None` for `default`.
    pub pattern: Option<String>,
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
}

/// Server configuration that picks its certificate by the client's SNI server name, as Express
/// Gateway's `https.tls` does (EG 1.16 `lib/gateway/server.js`): the globs in order, the first
/// that matches wins; else the `default` certificate; else the handshake fails.
pub fn sni_server_config(
    entries: &[SniCertificateFiles],
) -> Result<rustls::ServerConfig, TlsError> {
    install_crypto_provider();
    let mut resolver = SniResolver {
        by_name: Vec::new(),
        default: None,
    };
    for entry in entries {
        let certs = read_certs(&entry.certificate, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(&entry.private_key).map_err(|e| TlsError::File {
            what: "private key",
            path: entry.private_key.clone(),
            reason: format!(
                "cannot be used ({e}): it must be a PEM private key (PKCS#8, PKCS#1 or SEC1)"
            ),
        })?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(certs, signing));
        match &entry.pattern {
            None => resolver.default = Some(certified),
            Some(pattern) => {
                let glob = crate::router::glob::Glob::new(pattern).map_err(|e| TlsError::File {
                    what: "SNI pattern",
                    path: entry.certificate.clone(),
                    reason: format!("{pattern:?}: {e}"),
                })?;
                resolver.by_name.push((glob, certified));
            }
        }
    }
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct SniResolver {
    by_name: Vec<(crate::router::glob::Glob, Arc<rustls::sign::CertifiedKey>)>,
    default: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl SniResolver {
    fn choose(&self, server_name: Option<&str>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        server_name
            .and_then(|name| {
                self.by_name
                    .iter()
                    .find(|(glob, _)| glob.matches(name))
                    .map(|(_, key)| key.clone())
            })
            .or_else(|| self.default.clone())
    }
}

impl rustls::server::ResolvesServerCert for SniResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.choose(hello.server_name())
    }
}

/// Client configuration for HTTPS endpoints: `"system"` roots or a PEM bundle.
///
/// The system roots are read on first use ([`SystemRootsVerifier`]), not here: a gateway whose
/// endpoints are all `http://` never reads them (about 150 files and a few hundred kB of parsed
/// certificates). Call [`load_system_roots`] at start-up when an HTTPS endpoint is known, so
/// that the first request does not wait for the files.
pub fn client_config(
    truststore: &str,
    base: &dyn Fn(&Path) -> PathBuf,
) -> Result<rustls::ClientConfig, TlsError> {
    install_crypto_provider();
    if truststore == "system" {
        return Ok(rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SystemRootsVerifier::new()))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    let path = base(Path::new(truststore));
    let certs = read_certs(&path, "trust store")?;
    for cert in &certs {
        roots.add(cert.clone()).map_err(|e| TlsError::File {
            what: "trust store",
            path: path.clone(),
            reason: format!("holds a certificate rustls cannot use: {e}"),
        })?;
    }
    let verifier = TrustStoreVerifier::new(Arc::new(roots), certs)?;
    Ok(rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The operating system's trust roots (`rustls-native-certs`: `SSL_CERT_FILE`/`SSL_CERT_DIR`,
/// else the platform's store) as a WebPKI verifier, read once per process on first use; `None`
/// when no usable root was found (a warning says so, once).
static SYSTEM_ROOTS: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();

/// Reads the system trust roots now unless already read, and tells whether any was found. The
/// gateway calls it at start-up when an endpoint is `https://` and `upstream.truststore` is
/// `"system"`; otherwise the first HTTPS handshake reads them.
pub fn load_system_roots() -> bool {
    system_roots().is_some()
}

fn system_roots() -> Option<&'static Arc<WebPkiServerVerifier>> {
    SYSTEM_ROOTS
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for cert in loaded.certs {
                let _ = roots.add(cert);
            }
            let verifier = (!roots.is_empty())
                .then(|| {
                    let provider = Arc::new(rustls::crypto::ring::default_provider());
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .ok()
                })
                .flatten();
            if verifier.is_none() {
                tracing::warn!(
                    "no system trust roots found; HTTPS endpoints will fail to verify (set upstream.truststore to a PEM bundle)"
                );
            }
            verifier
        })
        .as_ref()
}

/// Server certificate verification against the system trust roots, which it reads when the
/// first certificate is verified ([`load_system_roots`] reads them earlier). The handshake
/// signatures are checked with the ring provider's algorithms, as rustls' own WebPKI verifier
/// does, without the roots. Without any system root, every certificate is refused as
/// `UnknownIssuer`, as an empty root store refuses it.
#[derive(Debug)]
pub struct SystemRootsVerifier {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl SystemRootsVerifier {
    /// A verifier that reads the system roots on first use.
    pub fn new() -> Self {
        Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl Default for SystemRootsVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for SystemRootsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match system_roots() {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Server certificate verification against a PEM trust store: WebPKI path validation, plus the
/// certificates people pin by hand.
///
/// A self-signed certificate made the usual way (`openssl req -x509 -newkey rsa:2048 -subj
/// /CN=localhost`) carries `basicConstraints CA:TRUE`; webpki refuses it as the server's own
/// certificate (`CaUsedAsEndEntity`), where curl (OpenSSL) and Java accept it when it is the
/// trusted certificate itself. So when — and only when — webpki's verdict is
/// `CaUsedAsEndEntity` and the server presented a certificate byte-equal to one of the trust
/// store, it is accepted, still checked for:
/// - validity dates: webpki checks the end entity's validity at `now` *before* its basic
///   constraints (rustls-webpki 0.103 `check_issuer_independent_properties`), so an expired or
///   not-yet-valid certificate fails with `Expired`/`NotValidYet` and never reaches here (the
///   tests hold this order to account);
/// - the server name: the certificate's subjectAltName by webpki; when it has no DNS name at
///   all (that `openssl req` line makes none), the subject's common name, compared exactly
///   without wildcards, as OpenSSL and Java do (RFC 6125 §6.4.4, for pinned certificates only);
/// - the handshake signature, verified by webpki as for any certificate, so the server must
///   hold the certificate's private key.
#[derive(Debug)]
pub struct TrustStoreVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl TrustStoreVerifier {
    /// A verifier trusting `roots`, which were read from the PEM `certificates`.
    pub fn new(
        roots: Arc<rustls::RootCertStore>,
        certificates: Vec<CertificateDer<'static>>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::General(format!("trust store: {e}")))?;
        Ok(Self {
            webpki,
            pinned: certificates,
        })
    }
}

impl ServerCertVerifier for TrustStoreVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(Error::InvalidCertificate(CertificateError::Other(other)))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) && self
                    .pinned
                    .iter()
                    .any(|pinned| pinned.as_ref() == end_entity.as_ref()) =>
            {
                verify_pinned_name(end_entity, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The name check of a pinned certificate: subjectAltName, else (no DNS name in it) the
/// subject's common name for a DNS server name.
fn verify_pinned_name(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> Result<(), Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
    let Err(mismatch) = rustls::client::verify_server_name(&parsed, server_name) else {
        return Ok(());
    };
    let cert = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if cert.valid_dns_names().next().is_some() {
        return Err(mismatch);
    }
    match server_name {
        ServerName::DnsName(dns)
            if common_names(cert.subject()).any(|cn| cn.eq_ignore_ascii_case(dns.as_ref())) =>
        {
            Ok(())
        }
        _ => Err(mismatch),
    }
}

/// The common names (OID 2.5.4.3) of a DER `Name`'s contents (the RDN sequence without its
/// outer tag, as webpki gives it). Malformed input yields nothing; nothing is indexed unchecked.
fn common_names(subject: &[u8]) -> impl Iterator<Item = &str> {
    const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    let mut rdns = subject;
    std::iter::from_fn(move || loop {
        let (tag, rdn, rest) = der_next(rdns)?;
        rdns = rest;
        if tag != 0x31 {
            return None;
        }
        // One RDN: a SET of AttributeTypeAndValue SEQUENCEs.
        let mut attributes = rdn;
        while let Some((0x30, attribute, rest)) = der_next(attributes) {
            attributes = rest;
            let Some((0x06, oid, value)) = der_next(attribute) else {
                continue;
            };
            // UTF8String, PrintableString or IA5String.
            if let Some((0x0c | 0x13 | 0x16, text, _)) = der_next(value) {
                if oid == COMMON_NAME {
                    if let Ok(text) = std::str::from_utf8(text) {
                        return Some(text);
                    }
                }
            }
        }
    })
}

/// One DER element: `(tag, contents, rest)`, for definite lengths of up to 4 length bytes.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = rest.get(..count)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, b| (len << 8) | usize::from(*b));
        (len, rest.get(count..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A certificate and its key, as PEM.
    struct Made {
        cert_pem: String,
        key_pem: String,
    }

    /// The shape `openssl req -x509 -newkey … -subj /CN=<cn>` makes: self-signed, subject CN
    /// only, `basicConstraints CA:TRUE`, no subjectAltName (unless `sans` are given).
    fn self_signed_ca(cn: &str, sans: &[&str], expired: bool) -> Made {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.self_signed(&key).unwrap();
        Made {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Express Gateway's `https.tls`: globs in declaration order, then `default`; no default and
    /// no match: no certificate (the handshake fails).
    #[test]
    fn sni_chooses_by_glob_then_default() {
        let dir = crate::temp_dir("tls-sni");
        let write = |name: &str, made: &Made| {
            let cert = dir.path().join(format!("{name}.crt"));
            let key = dir.path().join(format!("{name}.key"));
            std::fs::write(&cert, &made.cert_pem).unwrap();
            std::fs::write(&key, &made.key_pem).unwrap();
            (cert, key)
        };
        let entry = |pattern: Option<&str>, (certificate, private_key): (PathBuf, PathBuf)| {
            SniCertificateFiles {
                pattern: pattern.map(str::to_string),
                certificate,
                private_key,
            }
        };
        let wild = write("wild", &self_signed_ca("wild", &["a.example.com"], false));
        let api = write("api", &self_signed_ca("api", &["api.example.com"], false));
        let fallback = write("default", &self_signed_ca("default", &["localhost"], false));
        let entries = vec![
            entry(Some("api.example.com"), api.clone()),
            entry(Some("*.example.com"), wild.clone()),
            entry(None, fallback.clone()),
        ];
        // The config builds (keys usable), and the resolver picks as EG does.
        sni_server_config(&entries).unwrap();
        let mut resolver = SniResolver {
            by_name: Vec::new(),
            default: None,
        };
        let key_of = |(cert, key): &(PathBuf, PathBuf)| {
            let certs = read_certs(cert, "certificate").unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            Arc::new(rustls::sign::CertifiedKey::new(
                certs,
                rustls::crypto::ring::sign::any_supported_type(&key).unwrap(),
            ))
        };
        let (api_key, wild_key, default_key) = (key_of(&api), key_of(&wild), key_of(&fallback));
        resolver.by_name.push((
            crate::router::glob::Glob::new("api.example.com").unwrap(),
            api_key.clone(),
        ));
        resolver.by_name.push((
            crate::router::glob::Glob::new("*.example.com").unwrap(),
            wild_key.clone(),
        ));
        let chosen =
            |r: &SniResolver, name: Option<&str>| r.choose(name).map(|k| k.cert[0].clone());
        assert_eq!(
            chosen(&resolver, Some("api.example.com")),
            Some(api_key.cert[0].clone())
        );
        assert_eq!(
            chosen(&resolver, Some("x.example.com")),
            Some(wild_key.cert[0].clone())
        );
        assert_eq!(chosen(&resolver, Some("other.org")), None);
        assert_eq!(chosen(&resolver, None), None);
        resolver.default = Some(default_key.clone());
        assert_eq!(
            chosen(&resolver, Some("other.org")),
            Some(default_key.cert[0].clone())
        );
        // A pattern minimatch would refuse is a start-up error, not a silent mismatch.
        let bad = vec![entry(Some("@(a|b).com"), api)];
        assert!(sni_server_config(&bad).is_err());
    }

    /// Serves one TLS handshake with `server` (cert and key PEM) and connects to it as
    /// `name`, trusting the PEM file `truststore`. Ok when the client accepted the server.
    async fn handshake(server: (&str, &str), truststore: &Path, name: &str) -> Result<(), String> {
        let certs = CertificateDer::pem_slice_iter(server.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(server.1.as_bytes()).unwrap();
        install_crypto_provider();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"hi").await;
                let _ = tls.shutdown().await;
            }
        });
        let client = client_config(truststore.to_str().unwrap(), &|p| p.to_path_buf())
            .map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            let mut greeting = Vec::new();
            tls.read_to_end(&mut greeting)
                .await
                .map_err(|e| e.to_string())?;
            assert_eq!(greeting, b"hi");
            Ok(())
        })
        .await
        .expect("the handshake finishes");
        served.abort();
        result
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Issue 10 item 18: the self-signed `CA:TRUE` certificate given as the trust store was
    /// refused with `CaUsedAsEndEntity`; presented by the server as it is, it is accepted.
    #[tokio::test]
    async fn a_self_signed_ca_certificate_of_the_trust_store_is_accepted_as_the_server() {
        let dir = crate::temp_dir("tls-pinned");
        let made = self_signed_ca("localhost", &[], false);
        let store = write(&dir, "trust.pem", &made.cert_pem);
        let server = (made.cert_pem.as_str(), made.key_pem.as_str());
        handshake(server, &store, "localhost").await.unwrap();
        handshake(server, &store, "LOCALHOST").await.unwrap();
        // Among other certificates of a bundle, too.
        let other = self_signed_ca("other.test", &[], false);
        let bundle = write(
            &dir,
            "bundle.pem",
            &format!("{}{}", other.cert_pem, made.cert_pem),
        );
        handshake(server, &bundle, "localhost").await.unwrap();
        // With a subjectAltName, that name (and only that) counts.
        let with_san = self_signed_ca("localhost", &["api.test"], false);
        let store = write(&dir, "san.pem", &with_san.cert_pem);
        let server = (with_san.cert_pem.as_str(), with_san.key_pem.as_str());
        handshake(server, &store, "api.test").await.unwrap();
        let refused = handshake(server, &store, "localhost").await.unwrap_err();
        assert!(refused.contains("not valid for name"), "{refused}");
    }

    #[tokio::test]
    async fn pinned_certificates_still_need_their_dates_their_name_and_their_bytes() {
        let dir = crate::temp_dir("tls-negatives");
        // Expired.
        let expired = self_signed_ca("localhost", &[], true);
        let store = write(&dir, "expired.pem", &expired.cert_pem);
        let refused = handshake(
            (expired.cert_pem.as_str(), expired.key_pem.as_str()),
            &store,
            "localhost",
        )
        .await
        .unwrap_err();
        assert!(refused.contains("certificate expired"), "{refused}");
        // Another name.
        let made = self_signed_ca("localhost", &[], false);
        let store = write(&dir, "trust.pem", &made.cert_pem);
        for name in ["example.com", "127.0.0.1", "localhost.evil"] {
            let refused = handshake(
                (made.cert_pem.as_str(), made.key_pem.as_str()),
                &store,
                name,
            )
            .await
            .unwrap_err();
            assert!(refused.contains("not valid for name"), "{name}: {refused}");
        }
        // A different self-signed certificate, even with the same subject.
        let impostor = self_signed_ca("localhost", &[], false);
        let refused = handshake(
            (impostor.cert_pem.as_str(), impostor.key_pem.as_str()),
            &store,
            "localhost",
        )
        .await
        .unwrap_err();
        assert!(refused.contains("CaUsedAsEndEntity"), "{refused}");
        // The trusted certificate presented with another key: the handshake signature fails
        // (or the server cannot even pair them).
        let wrong_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let certs = CertificateDer::pem_slice_iter(made.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(wrong_key.serialize_der()));
        if rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .is_ok()
        {
            let refused = handshake(
                (made.cert_pem.as_str(), wrong_key.serialize_pem().as_str()),
                &store,
                "localhost",
            )
            .await
            .unwrap_err();
            assert!(!refused.is_empty());
        }
    }

    /// The certificate made exactly as people make it, by the `openssl` command (RSA 2048,
    /// `CA:TRUE`, no subjectAltName), when `openssl` is installed.
    #[tokio::test]
    async fn a_certificate_made_by_openssl_req_x509_is_accepted() {
        let dir = crate::temp_dir("tls-openssl");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
            ])
            .args(["-days", "2", "-keyout", "key.pem", "-out", "cert.pem"])
            .current_dir(dir.path())
            .output();
        match made {
            Ok(output) if output.status.success() => {}
            _ => {
                eprintln!(
                    "NOTICE: openssl is not installed: skipping the openssl-made certificate test"
                );
                return;
            }
        }
        let cert = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
        let key = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
        let store = dir.path().join("cert.pem");
        handshake((cert.as_str(), key.as_str()), &store, "localhost")
            .await
            .unwrap();
        let refused = handshake((cert.as_str(), key.as_str()), &store, "127.0.0.2.nip.io")
            .await
            .unwrap_err();
        assert!(refused.contains("not valid for name"), "{refused}");
    }

    #[test]
    fn common_names_are_read_from_any_subject_and_garbage_yields_none() {
        let made = self_signed_ca("böse.test", &[], false);
        let der = CertificateDer::from_pem_slice(made.cert_pem.as_bytes()).unwrap();
        let cert = webpki::EndEntityCert::try_from(&der).unwrap();
        assert_eq!(
            common_names(cert.subject()).collect::<Vec<_>>(),
            ["böse.test"]
        );
        for junk in [
            &b""[..],
            &[0x31],
            &[0x31, 0x85, 1, 2, 3, 4, 5],
            &[0x31, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x31, 0x05, 0x30, 0x03, 0x06, 0x01],
            &[0x30, 0x00],
        ] {
            assert_eq!(common_names(junk).count(), 0, "{junk:?}");
        }
    }
}
