//! Credential extraction and removal: auth scheme values, query parameters and their
//! percent-decoding, API-key cookies, the access log's redaction, and the removal of every
//! accepted credential before proxying.
//!
//! Input: the request target on the first line, then a header block (`name: value` lines).
//! The resource accepts OAuth2, basic auth and an API key named `apikey` in a header, the query
//! and a cookie. After removal, none of them may be left for the upstream.
#![no_main]

use http::header::{AUTHORIZATION, COOKIE};
use libfuzzer_sys::fuzz_target;
use mgw_runtime::fuzzing::{
    cookie, header_block, query_param, redacted_target, remove_credentials, scheme_value,
    split_pair,
};
use mgw_runtime::model::{ApiKeyLocation, AuthScheme, Security};

const KEY: &str = "apikey";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (target, block) = text.split_once('\n').unwrap_or((text, ""));
    let headers = header_block(block);

    for value in headers.get_all(AUTHORIZATION) {
        if let Some((scheme, credential)) = scheme_value(value) {
            assert!(["bearer", "basic", "other"].contains(&scheme));
            assert!(!credential.is_empty() && credential.trim_ascii() == credential);
            assert!(credential
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)));
        }
    }
    let query = target.split_once('?').map(|(_, q)| q);
    if let Some(query) = query {
        let _ = query_param(query, KEY);
    }
    if let cookie::Lookup::Found(value) = cookie::find(&headers, KEY) {
        assert!(!value.is_empty());
    }
    let redacted = redacted_target(target, &[KEY.to_string()]);
    if let Some((_, query)) = redacted.split_once('?') {
        for pair in query.split('&') {
            if split_pair(pair).0 == KEY {
                assert_eq!(pair, "apikey=***", "{redacted}");
            }
        }
    }

    let Ok(request) = http::Request::builder().uri(target).body(()) else {
        return;
    };
    let (mut parts, ()) = request.into_parts();
    parts.headers = headers;
    let security = Security {
        schemes: vec![
            AuthScheme::Oauth2,
            AuthScheme::Basic,
            AuthScheme::ApiKey {
                location: ApiKeyLocation::Header,
                name: KEY.into(),
            },
            AuthScheme::ApiKey {
                location: ApiKeyLocation::Query,
                name: KEY.into(),
            },
            AuthScheme::ApiKey {
                location: ApiKeyLocation::Cookie,
                name: KEY.into(),
            },
        ],
        scopes: Vec::new(),
        optional: false,
        auth_header: "Authorization".into(),
    };
    let cookies_before = parts.headers.get_all(COOKIE).iter().count();
    remove_credentials(&security, &mut parts);
    assert!(!parts.headers.contains_key(AUTHORIZATION));
    assert!(!parts.headers.contains_key(KEY));
    assert_eq!(cookie::find(&parts.headers, KEY), cookie::Lookup::Absent);
    for value in parts.headers.get_all(COOKIE) {
        assert!(cookie::pairs(value.as_bytes()).all(|(name, _)| name != KEY.as_bytes()));
    }
    assert!(parts.headers.get_all(COOKIE).iter().count() <= cookies_before.max(1));
    if let Some(query) = parts.uri.query() {
        assert_eq!(query_param(query, KEY), None, "{query}");
    }
});
