//! A client's bytes as the lean HTTP/1.1 server reads the first request on a connection
//! (`server::h1`): the head with hyper's parser and settings, a `Content-Length` body read with
//! it, or the connection handed to hyper. Whatever the bytes, nothing panics; what is served
//! does not depend on how the bytes arrive (a bad head may be refused at once or only once its
//! end has come, as in hyper); every byte is either taken or handed over.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgw_runtime::server::h1::FirstRequest;

fuzz_target!(|data: &[u8]| {
    let whole = mgw_runtime::fuzzing::request_head(data, usize::MAX);
    let trickled = mgw_runtime::fuzzing::request_head(data, 1);
    let refused_late = matches!(
        (&whole, &trickled),
        (FirstRequest::HandedOver(_), FirstRequest::Incomplete)
            | (FirstRequest::Incomplete, FirstRequest::HandedOver(_))
    );
    assert!(whole == trickled || refused_late, "{whole:?} / {trickled:?}");
    match &whole {
        FirstRequest::Served { taken, body, .. } => {
            assert!(*taken <= data.len() && body.len() <= *taken)
        }
        FirstRequest::HandedOver(handed) => assert!(data.ends_with(handed)),
        FirstRequest::Incomplete => {}
    }
});
