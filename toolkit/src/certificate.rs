//! The development certificate `micro-gw init` writes for the HTTPS listener.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;

/// How long the development certificate is valid.
const VALIDITY_DAYS: i64 = 365;

/// Writes a self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1 to
/// `cert_path`, and its key to `key_path` with mode 0600. Returns the SHA-256 fingerprint.
pub fn write_self_signed(cert_path: &Path, key_path: &Path) -> anyhow::Result<String> {
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .context("preparing the development certificate")?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "micro-gw development certificate",
    );
    let key = rcgen::KeyPair::generate().context("generating the TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the development certificate")?;
    write_atomic(key_path, key.serialize_pem().as_bytes(), Some(0o600))
        .with_context(|| format!("writing {}", key_path.display()))?;
    write_atomic(cert_path, cert.pem().as_bytes(), Some(0o644))
        .with_context(|| format!("writing {}", cert_path.display()))?;
    let digest = Sha256::digest(cert.der());
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_usable_certificate_and_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let fingerprint = write_self_signed(&cert, &key).unwrap();
        assert_eq!(fingerprint.len(), 32 * 3 - 1);
        mgw_runtime::tls::server_config(&cert, &key).expect("rustls accepts it");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
