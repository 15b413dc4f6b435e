//! The signatures of `jsonwebtoken` on ring, the crypto library rustls already links, in place
//! of the crate's `rust_crypto` backend (RustCrypto's RSA, P-256, P-384 and Ed25519, with their
//! big-number and curve crates: cold-build time every gateway paid for code it already had).
//!
//! [`PROVIDER`] is a `jsonwebtoken::crypto::CryptoProvider` (jsonwebtoken 11): a signer and a
//! verifier per algorithm, over the key formats jsonwebtoken's own `DecodingKey` and
//! `EncodingKey` hold:
//! - HMAC (HS256/384/512): the secret's bytes;
//! - RSA (RS256/384/512 PKCS #1 v1.5, PS256/384/512 PSS): a public key as PKCS #1
//!   `RSAPublicKey` DER or as modulus and exponent (JWKS); a private key as PKCS #1 DER;
//! - ECDSA (ES256 on P-256, ES384 on P-384): a public key as an uncompressed SEC1 point, the
//!   signature as `r || s` (RFC 7518 §3.4); a private key as PKCS #8 DER;
//! - EdDSA (Ed25519): the 32-byte public key; a private key as PKCS #8 DER.
//!
//! One difference from the RustCrypto backend: ring refuses RSA keys shorter than 2048 bits,
//! which RFC 7518 §3.3 requires anyway (a token signed with a shorter key is refused as badly
//! signed). The JWK helpers of `KeyUtils` (thumbprints, a JWK from a private key) are not
//! provided: nothing in micro-gw makes a JWK, and they would panic if called.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{self as ring_signature, RsaPublicKeyComponents, UnparsedPublicKey};

/// jsonwebtoken's process-wide provider on ring (installed by
/// [`crate::auth::jwt::install_crypto_provider`]).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn invalid_key() -> Error {
    ErrorKind::InvalidKeyFormat.into()
}

fn hmac_algorithm(algorithm: Algorithm) -> hmac::Algorithm {
    match algorithm {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

/// The verification parameters of a public-key algorithm.
fn public_key_parameters(algorithm: Algorithm) -> &'static ring_signature::RsaParameters {
    match algorithm {
        Algorithm::RS384 => &ring_signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &ring_signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &ring_signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &ring_signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &ring_signature::RSA_PSS_2048_8192_SHA512,
        _ => &ring_signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

/// What checks a signature for one algorithm and key.
struct Verifier {
    algorithm: Algorithm,
    check: Check,
}

enum Check {
    Hmac(hmac::Key),
    Rsa {
        parameters: &'static ring_signature::RsaParameters,
        key: DecodingKey,
    },
    /// ECDSA or Ed25519 on the key's bytes.
    Curve {
        algorithm: &'static dyn ring_signature::VerificationAlgorithm,
        key: Vec<u8>,
    },
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let algorithm = *algorithm;
    if key.family() != algorithm.family() {
        return Err(invalid_key());
    }
    let check = match (algorithm.family(), key.kind()) {
        (AlgorithmFamily::Hmac, DecodingKeyKind::SecretOrDer(secret)) => {
            Check::Hmac(hmac::Key::new(hmac_algorithm(algorithm), secret))
        }
        (AlgorithmFamily::Rsa, _) => Check::Rsa {
            parameters: public_key_parameters(algorithm),
            key: key.clone(),
        },
        (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => Check::Curve {
            algorithm: if algorithm == Algorithm::ES384 {
                &ring_signature::ECDSA_P384_SHA384_FIXED
            } else {
                &ring_signature::ECDSA_P256_SHA256_FIXED
            },
            key: point.clone(),
        },
        (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(public)) => Check::Curve {
            algorithm: &ring_signature::ED25519,
            key: public.clone(),
        },
        _ => return Err(invalid_key()),
    };
    Ok(Box::new(Verifier { algorithm, check }))
}

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let checked = match &self.check {
            Check::Hmac(key) => hmac::verify(key, message, signature),
            Check::Rsa { parameters, key } => match key.kind() {
                DecodingKeyKind::SecretOrDer(der) => {
                    UnparsedPublicKey::new(*parameters, der).verify(message, signature)
                }
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    RsaPublicKeyComponents { n, e }.verify(parameters, message, signature)
                }
            },
            Check::Curve { algorithm, key } => {
                UnparsedPublicKey::new(*algorithm, key).verify(message, signature)
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// What signs for one algorithm and key.
struct Signer {
    algorithm: Algorithm,
    key: SigningKey,
}

enum SigningKey {
    Hmac(hmac::Key),
    Rsa(
        ring_signature::RsaKeyPair,
        &'static dyn ring_signature::RsaEncoding,
    ),
    Ecdsa(ring_signature::EcdsaKeyPair),
    Ed25519(ring_signature::Ed25519KeyPair),
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    let algorithm = *algorithm;
    if key.family() != algorithm.family() {
        return Err(invalid_key());
    }
    let der = key.as_bytes();
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            SigningKey::Hmac(hmac::Key::new(hmac_algorithm(algorithm), der))
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            let curve = if algorithm == Algorithm::ES384 {
                &ring_signature::ECDSA_P384_SHA384_FIXED_SIGNING
            } else {
                &ring_signature::ECDSA_P256_SHA256_FIXED_SIGNING
            };
            SigningKey::Ecdsa(
                ring_signature::EcdsaKeyPair::from_pkcs8(curve, der, &SystemRandom::new())
                    .map_err(|_| invalid_key())?,
            )
        }
        Algorithm::EdDSA => SigningKey::Ed25519(
            ring_signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| invalid_key())?,
        ),
        rsa => {
            let encoding: &'static dyn ring_signature::RsaEncoding = match rsa {
                Algorithm::RS384 => &ring_signature::RSA_PKCS1_SHA384,
                Algorithm::RS512 => &ring_signature::RSA_PKCS1_SHA512,
                Algorithm::PS256 => &ring_signature::RSA_PSS_SHA256,
                Algorithm::PS384 => &ring_signature::RSA_PSS_SHA384,
                Algorithm::PS512 => &ring_signature::RSA_PSS_SHA512,
                _ => &ring_signature::RSA_PKCS1_SHA256,
            };
            let pair = ring_signature::RsaKeyPair::from_der(der).map_err(|_| invalid_key())?;
            SigningKey::Rsa(pair, encoding)
        }
    };
    Ok(Box::new(Signer { algorithm, key }))
}

impl signature::Signer<Vec<u8>> for Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let failed = |_| signature::Error::new();
        match &self.key {
            SigningKey::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            SigningKey::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            SigningKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(failed),
            SigningKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for Signer {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every algorithm signs and verifies with ring, and a signature does not verify under
    /// another key or after a change of the message. (The JWT tests of `auth::jwt` cover the
    /// key formats: PEM files, certificates and JWKS documents.)
    #[test]
    fn each_algorithm_signs_and_verifies() {
        let ec256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ec384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cases = [
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(ec256.serialize_pem().as_bytes()).unwrap(),
                DecodingKey::from_ec_pem(ec256.public_key_pem().as_bytes()).unwrap(),
            ),
            (
                Algorithm::ES384,
                EncodingKey::from_ec_pem(ec384.serialize_pem().as_bytes()).unwrap(),
                DecodingKey::from_ec_pem(ec384.public_key_pem().as_bytes()).unwrap(),
            ),
            (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
                DecodingKey::from_ed_pem(ed.public_key_pem().as_bytes()).unwrap(),
            ),
            (
                Algorithm::HS384,
                EncodingKey::from_secret(b"secret"),
                DecodingKey::from_secret(b"secret"),
            ),
        ];
        for (algorithm, private, public) in &cases {
            let signer = new_signer(algorithm, private).unwrap();
            let verifier = new_verifier(algorithm, public).unwrap();
            let signature = signature::Signer::try_sign(&*signer, b"a.b").unwrap();
            assert!(signature::Verifier::verify(&*verifier, b"a.b", &signature).is_ok());
            assert!(signature::Verifier::verify(&*verifier, b"a.c", &signature).is_err());
        }
        // A key of another family is refused, as jsonwebtoken's own providers do.
        assert!(new_verifier(&Algorithm::RS256, &cases[0].2).is_err());
        assert!(new_signer(&Algorithm::HS256, &cases[2].1).is_err());
    }
}
