//! rustls set-up for both directions: the HTTPS listener's certificate and the trust roots
//! for HTTPS endpoints. Always the ring provider (no aws-lc, no OpenSSL).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// Client configuration for HTTPS endpoints: `"system"` roots or a PEM bundle.
pub fn client_config(
    truststore: &str,
    base: &dyn Fn(&Path) -> PathBuf,
) -> Result<rustls::ClientConfig, TlsError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    if truststore == "system" {
        let loaded = rustls_native_certs::load_native_certs();
        for cert in loaded.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!(
                "no system trust roots found; HTTPS endpoints will fail to verify (set upstream.truststore to a PEM bundle)"
            );
        }
    } else {
        let path = base(Path::new(truststore));
        for cert in read_certs(&path, "trust store")? {
            roots.add(cert).map_err(|e| TlsError::File {
                what: "trust store",
                path: path.clone(),
                reason: format!("holds a certificate rustls cannot use: {e}"),
            })?;
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth())
}
