//! `Cache-Control` of a JWKS answer (a header block: any number of Cache-Control lines):
//! `max-age` wherever it is, quoted or not, never a panic on odd directives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgw_runtime::fuzzing::{header_block, max_age};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let headers = header_block(text);
    if let Some(seconds) = max_age(&headers) {
        let shown = seconds.to_string();
        assert!(
            headers
                .get_all(http::header::CACHE_CONTROL)
                .iter()
                .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(&shown)),
            "{seconds} came from nowhere"
        );
    }
});
