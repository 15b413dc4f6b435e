//! JWT verification as a request's bearer token reaches it: header and claims decoding, the
//! issuer lookup by the unverified `iss`, the signature, and every claim read of a verified
//! token (`exp`, `nbf`, `aud`, `sub`, scopes, `keytype`, `subscribedAPIs`, the consumer).
//!
//! Input: a first byte choosing the mode, then
//! - mode even: the token text as it came (any bytes, lossily UTF-8);
//! - mode odd: `header JSON` NUL `claims JSON`, encoded and signed here with the issuer secret
//!   the mode picks, so the claim reads behind a valid signature are reached too.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use mgw_runtime::auth::jwt::JwtVerifier;
use mgw_runtime::fuzzing::{jwt_verifier, verify_jwt, JWT_ISSUERS};

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(jwt_verifier)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (header, claims) = match rest.iter().position(|b| *b == 0) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &b"{}"[..]),
        };
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let signing_input = format!("{}.{}", b64(header), b64(claims));
        let (_, secret) = JWT_ISSUERS[usize::from(mode >> 1) % JWT_ISSUERS.len()];
        let alg = match mode >> 2 & 3 {
            0 | 1 => Algorithm::HS256,
            2 => Algorithm::HS384,
            _ => Algorithm::HS512,
        };
        mgw_runtime::auth::jwt::install_crypto_provider();
        let Ok(signature) = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(secret.as_bytes()),
            alg,
        ) else {
            return;
        };
        format!("{signing_input}.{signature}")
    };
    if let Ok(grant) = verify_jwt(verifier(), &token) {
        // Only a signed token of a configured issuer, with a subject, gets this far.
        assert!(
            grant.scopes.windows(2).all(|w| w[0] < w[1]),
            "scopes sorted, unique"
        );
    }
});
