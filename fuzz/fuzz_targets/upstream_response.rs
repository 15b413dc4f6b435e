//! An upstream's answer as the lean upstream client reads it (`proxy::h1`): the response head
//! (interim answers, framing, limits) and the body (Content-Length, chunked with extensions
//! and trailers, to the close). Whatever the bytes, nothing panics, the answer read from the
//! whole input equals the one read from the same bytes arriving one at a time, and a head
//! whose fields are kept as received (`proxy::field_lines`) writes the same fields as the
//! header map the same head is otherwise parsed into.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, bytes) = match data.split_first() {
        Some((first, rest)) => (first & 1 == 1, rest),
        None => return,
    };
    let whole = mgw_runtime::fuzzing::upstream_response(bytes, head, usize::MAX);
    let trickled = mgw_runtime::fuzzing::upstream_response(bytes, head, 1);
    assert_eq!(whole, trickled, "the answer depends on how its bytes arrive");
    if let Some((as_received, from_map)) = mgw_runtime::fuzzing::upstream_fields_both_ways(bytes) {
        assert_eq!(as_received, from_map, "the fields kept as received differ from the map's");
    }
});
