//! A JWKS document as an identity provider (or anyone on the path) may serve it: parsing,
//! key selection by `kid` and algorithm, and a signature check with every key selected (keys
//! with odd numbers: zero or short moduli, points off the curve, wrong lengths).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A message and a signature of a plausible size; the check must answer, not panic.
const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhIn0";
const SIGNATURE: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8";

fuzz_target!(|data: &[u8]| {
    if let Ok(count) = mgw_runtime::fuzzing::jwks_document(data, MESSAGE, SIGNATURE) {
        assert!(count > 0, "an accepted set has a usable key");
    }
});
