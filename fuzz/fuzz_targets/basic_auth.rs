//! `Authorization: Basic` decoding (RFC 7617): base64, UTF-8, the `user:password` split.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mgw_runtime::fuzzing::decode_credentials;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((user, password)) = decode_credentials(&text) {
        assert!(!user.contains(':'));
        assert!(!password.is_empty());
        let again = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        assert_eq!(decode_credentials(&again).unwrap(), (user, password));
    }
});
