//! The key material `micro-gw init` writes: the HTTPS listener's development certificate and
//! the key pair that signs (and verifies) API keys.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;

/// How long the development certificate is valid.
const VALIDITY_DAYS: i64 = 365;

/// Writes a self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1 to
/// `cert_path`, and its key to `key_path` with mode 0600. Returns the SHA-256 fingerprint.
pub fn write_self_signed(cert_path: &Path, key_path: &Path) -> anyhow::Result<String> {
    let names = ["localhost", "127.0.0.1", "::1"];
    let der = write_pair(
        &names,
        "micro-gw development certificate",
        cert_path,
        key_path,
    )?;
    let digest = Sha256::digest(der);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Writes the ES256 key pair of `GET /apikey`: the PKCS#8 private key that signs API keys
/// (mode 0600) and a certificate holding its public key, which `[security.api_keys]` verifies
/// them with.
pub fn write_apikey_signing_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<()> {
    write_pair(
        &["apikey.micro-gw"],
        "micro-gw API key signer",
        cert_path,
        key_path,
    )?;
    Ok(())
}

fn write_pair(
    names: &[&str],
    common_name: &str,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<Vec<u8>> {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .with_context(|| format!("preparing the {common_name}"))?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().context("generating a P-256 key")?;
    let cert = params
        .self_signed(&key)
        .with_context(|| format!("signing the {common_name}"))?;
    for dir in [cert_path.parent(), key_path.parent()]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_atomic(key_path, key.serialize_pem().as_bytes(), Some(0o600))
        .with_context(|| format!("writing {}", key_path.display()))?;
    write_atomic(cert_path, cert.pem().as_bytes(), Some(0o644))
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(cert.der().to_vec())
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

    #[test]
    fn the_apikey_pair_signs_keys_the_runtime_accepts() {
        use mgw_runtime::config::{ApiKeyConfig, ApiKeyIssuerConfig, SecurityConfig};
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        write_apikey_signing_pair(&cert, &key).unwrap();
        let model = mgw_runtime::model::GatewayModel {
            format: mgw_runtime::model::MODEL_FORMAT,
            project: "p".into(),
            apis: vec![],
            endpoints: vec![],
            pipelines: vec![],
            express: vec![],
        };
        let issuer = mgw_runtime::auth::apikey_issuer::ApiKeyIssuer::new(
            &ApiKeyIssuerConfig {
                issuer: "https://gw/apikey".into(),
                private_key: key,
                algorithm: "ES256".into(),
                kid: None,
                audience: None,
                validity_seconds: 60,
                apis: vec![],
            },
            &model,
            &|p| p.to_path_buf(),
        )
        .unwrap();
        let api_keys = ApiKeyConfig {
            issuer: "https://gw/apikey".into(),
            certificate: cert,
            algorithms: vec!["ES256".into()],
            audience: None,
            validate_allowed_apis: false,
        };
        mgw_runtime::tls::install_crypto_provider();
        let client = mgw_runtime::auth::outbound::OutboundClient::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        );
        let verifier = mgw_runtime::auth::jwt::JwtVerifier::for_api_keys(
            &api_keys,
            &SecurityConfig::default(),
            &mgw_runtime::auth::jwt::Sources {
                resolve: &|p| p.to_path_buf(),
                env: &|_| None,
                client: &client,
            },
        )
        .unwrap();
        let key = issuer.issue("alice").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let grant = runtime.block_on(verifier.verify(&key)).unwrap();
        assert_eq!(grant.consumer.as_deref(), Some("alice"));
    }
}
