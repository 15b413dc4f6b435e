//! An RFC 7662 introspection answer from the key manager: JSON, `active`, `exp`, `scope`,
//! `client_id` / `username`, and how long the grant may be cached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgw_runtime::fuzzing::read_introspection_answer;

const NOW: u64 = 1_750_000_000;
const CACHE: u64 = 300;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(grant)) = read_introspection_answer(data, NOW, CACHE) {
        assert!(
            grant.valid_until > NOW && grant.valid_until <= NOW + CACHE,
            "{grant:?}"
        );
        assert!(!grant.scopes.iter().any(String::is_empty));
    }
    let _ = read_introspection_answer(data, u64::MAX - 1, u64::MAX);
});
