//! An upstream answer's header fields kept as they were received, for the lean HTTP/1.1
//! server to write to the client without a header map in between.
//!
//! A proxied answer normally goes through a `HeaderMap`: each field's name is looked up, each
//! value made a `HeaderValue` that shares the head's buffer (its reference count goes up, and
//! down again when the value is dropped: two locking instructions a field), appended to the
//! map, and drained from it again as the server writes the head. When nothing between the
//! upstream and the client reads or changes the answer's fields (the lean server serves the
//! request, and no step of the route's pipeline has a response phase that reads or changes
//! them: `pipeline::step::ReadyPolicy::keeps_answer_fields`), the fields stay in the head's bytes
//! ([`FieldLines`]) and the server writes them from there: each as `name: value` with the
//! name in lower case and the value without the whitespace around it, which are the bytes
//! hyper writes from the map (the map's names are lower case, and httparse gives a value
//! without that whitespace).
//!
//! Only an answer the proxy passes on unchanged is kept this way ([`FieldLines::check`]): its
//! framing is one `Content-Length` field of digits (not an answer to `HEAD`, nor a `204` or
//! `304`), it has no hop-by-hop field (those are removed, and `Connection` names more to
//! remove) nor one of the gateway's own that a step may set ([`GATEWAY_FIELDS`]), and no
//! name comes twice (a map gathers a name's values at its first place, so
//! `a, b, a` is written `a, a, b` from it; kept, the order would be the upstream's), within
//! [`MOST_FIELDS`] fields. Every other answer goes through the map as before.
//!
//! httparse has checked every name (a token) and every value (visible characters, spaces,
//! tabs and obs-text) by the rules `HeaderName::from_bytes` and `HeaderValue::from_bytes`
//! apply, and refuses obsolete line folding in answers: each line of the field section is one
//! field, which the writer finds again by its line ending (CRLF or a bare LF, as httparse
//! takes them).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The fields a response phase that keeps an answer's fields as received may set
/// ([`crate::pipeline::step::ReadyPolicy::keeps_answer_fields`]): an answer with one of them
/// goes through the map, where the step's value replaces the upstream's.
pub const GATEWAY_FIELDS: [&str; 3] = ["ratelimit", "ratelimit-policy", "eg-consumer-id"];

/// Most fields of an answer kept as received (each name is compared with those before it).
pub const MOST_FIELDS: usize = 32;

/// Where one header field lies in a head's bytes: name start and end, value start and end
/// (httparse's slices, as offsets).
pub(super) type Span = (usize, usize, usize, usize);

/// The header fields of an upstream answer's head, as received. Only one `Bytes` (32 bytes),
/// as a response is moved about ten times on its way to the client (`proxy::body`'s size
/// test), in one of two shapes:
/// - **as written**: every line is already what the server writes (a lower-case name, `: `,
///   the value, CRLF, as hyper-based upstreams send them): the lines alone, ending
///   in the last line's CRLF, written with one copy;
/// - **to rewrite**: the lines and the empty line that ends the section (so the bytes end in
///   an empty line, which tells the shapes apart), each line rewritten as it is written.
#[derive(Debug, Clone)]
pub struct FieldLines(Bytes);

/// What [`FieldLines::check`] found in a head that can be kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checked {
    /// Where the first field line begins.
    pub(super) start: usize,
    /// The `Content-Length`.
    pub(super) length: u64,
    /// Every line is `name: value` and CRLF, the name in lower case, and the section ends
    /// `end` bytes after `start`, before its empty line.
    pub(super) as_written: Option<usize>,
}

impl FieldLines {
    /// Whether the fields of a head (`spans` into `head`, httparse's, in order) can be passed
    /// on as received: at most [`MOST_FIELDS`], no name twice (in any case), exactly one
    /// `Content-Length`, of digits only, no hop-by-hop field ([`super::headers`]'s list,
    /// `Proxy-Connection` among them) and none of [`GATEWAY_FIELDS`]. The caller rules out the
    /// answers without a body (to `HEAD`, `204`, `304`).
    pub(super) fn check(head: &[u8], spans: &[Span]) -> Option<Checked> {
        if spans.len() > MOST_FIELDS {
            return None;
        }
        let start = spans.first()?.0;
        let mut length = None;
        // Where the next line begins while every line so far is as written.
        let mut next = start;
        let mut as_written = true;
        for (i, &(name_start, name_end, value_start, value_end)) in spans.iter().enumerate() {
            let name = head.get(name_start..name_end)?;
            // Lower-case names (most) are compared byte for byte, others in any case.
            let lower = !has_upper(name);
            let is = |known: &[u8]| {
                if lower {
                    name == known
                } else {
                    name.eq_ignore_ascii_case(known)
                }
            };
            if super::headers::among_hop_by_hop(name, |_, known| is(known))
                || GATEWAY_FIELDS
                    .iter()
                    .any(|own| own.len() == name.len() && is(own.as_bytes()))
            {
                return None;
            }
            let seen = spans.get(..i).unwrap_or_default();
            if seen.iter().any(|&(start, end, _, _)| {
                end - start == name.len()
                    && head
                        .get(start..end)
                        .is_some_and(|other| other.eq_ignore_ascii_case(name))
            }) {
                return None;
            }
            if name.len() == 14 && is(b"content-length") {
                if length.is_some() {
                    return None;
                }
                length = Some(super::h1::digits(head.get(value_start..value_end)?)?);
            }
            if as_written {
                as_written = lower
                    && next == name_start
                    && value_start == name_end + 2
                    && head.get(name_end + 1) == Some(&b' ')
                    && head.get(value_end..value_end + 2) == Some(b"\r\n");
                next = value_end + 2;
            }
        }
        Some(Checked {
            start,
            length: length?,
            as_written: as_written.then(|| next - start),
        })
    }

    /// The fields of `head`, as [`FieldLines::check`] found them.
    pub(super) fn new(mut head: Bytes, checked: Checked) -> Self {
        // Moves the start (no reference count, unlike a slice).
        let start = checked.start.min(head.len());
        bytes::Buf::advance(&mut head, start);
        if let Some(end) = checked.as_written {
            head.truncate(end);
        }
        FieldLines(head)
    }

    /// Whether the lines are as the server writes them (see [`FieldLines`]).
    fn as_written(&self) -> bool {
        !(self.0.ends_with(b"\n\n") || self.0.ends_with(b"\n\r\n"))
    }

    /// The answer's `Content-Length` (bytes): checked by [`FieldLines::check`] (0 if it
    /// were not there).
    pub fn content_length(&self) -> u64 {
        self.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(b"content-length"))
            .and_then(|(_, value)| super::h1::digits(value))
            .unwrap_or(0)
    }

    /// Each field's name (as received) and value (without the whitespace around it), in
    /// order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines().map(|(name, value, _)| (name, value))
    }

    /// Each field's name, value and whole line (without its line ending).
    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let end = memchr::memchr(b'\n', rest)?;
            let (line, after) = rest.split_at(end);
            rest = after.get(1..).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = memchr::memchr(b':', line)?;
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            // Without the spaces and tabs around it (a value has no other whitespace byte).
            Some((name, value.trim_ascii(), line))
        })
    }

    /// Writes each field as `name: value` and CRLF into `out`, the name in lower case: the
    /// bytes hyper writes for the same fields from a header map. `Content-Length` only
    /// `with_length` (a server drops it from a response it sends without a body). True when
    /// a `Date` field was among them (the server then adds none).
    pub fn write(&self, out: &mut Vec<u8>, with_length: bool) -> bool {
        if with_length && self.as_written() {
            out.extend_from_slice(&self.0);
            // Lines begin at the start or after a LF (a value has neither CR nor LF). Not
            // `memmem::find`: it prepares a searcher per call, about 600 instructions here.
            let starts_date =
                |at: usize| self.0.get(at..).is_some_and(|l| l.starts_with(b"date: "));
            return starts_date(0)
                || memchr::memchr_iter(b'\n', &self.0).any(|at| starts_date(at + 1));
        }
        let mut date = false;
        for (name, value, line) in self.lines() {
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"date") => date = true,
                14 if !with_length && name.eq_ignore_ascii_case(b"content-length") => continue,
                _ => {}
            }
            let at = out.len();
            // Most lines are `name: value` already: copied whole.
            if line.len() == name.len() + 2 + value.len() && line.get(name.len() + 1) == Some(&b' ')
            {
                out.extend_from_slice(line);
            } else {
                out.extend_from_slice(name);
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
            }
            if let Some(written) = out.get_mut(at..at + name.len()) {
                written.make_ascii_lowercase();
            }
            out.extend_from_slice(b"\r\n");
        }
        date
    }

    /// Appends the fields to `map`, in order (for a path that needs them there). The values
    /// share the head's bytes.
    pub fn append_to(&self, map: &mut HeaderMap) {
        for (name, value) in self.iter() {
            // httparse checked both by the same rules: neither fails.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_maybe_shared(self.0.slice_ref(value)),
            ) {
                map.append(name, value);
            }
        }
    }
}

/// Whether `name` has an upper-case letter (or a byte that is not ASCII, which a token never
/// has); eight bytes at a time.
fn has_upper(name: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = 0x80 * ONES;
    let mut words = name.chunks_exact(8);
    let upper_in_word = |word: u64| {
        // Per byte, each below 0x80 (so no carry crosses into the next): the high bit of
        // `b + (0x80 - 'A')` is set from 'A' up, that of `b + (0x80 - 'Z' - 1)` from past 'Z'.
        let from_a = word.wrapping_add((0x80 - u64::from(b'A')) * ONES);
        let past_z = word.wrapping_add((0x80 - u64::from(b'Z') - 1) * ONES);
        word & HIGH != 0 || from_a & !past_z & HIGH != 0
    };
    for word in words.by_ref() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        if upper_in_word(u64::from_ne_bytes(bytes)) {
            return true;
        }
    }
    // The rest, padded with zeros (not upper case).
    let rest = words.remainder();
    let mut bytes = [0; 8];
    if let Some(room) = bytes.get_mut(..rest.len()) {
        room.copy_from_slice(rest);
    }
    upper_in_word(u64::from_ne_bytes(bytes))
}

/// A response body that may carry its answer's header fields as received, for the lean
/// HTTP/1.1 server to write with the head. By default it carries none.
pub trait CarriesFields {
    /// The fields kept as received, if any (the response's map has none of them then).
    fn fields_as_received(&self) -> Option<&FieldLines> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::h1::head_from_bytes;
    use http::Method;

    /// The fields of `head` written both ways (`None` when they were not kept).
    fn both_ways(head: &[u8]) -> Option<(String, String)> {
        crate::fuzzing::upstream_fields_both_ways(head).map(|(a, b)| {
            (
                String::from_utf8_lossy(&a).into(),
                String::from_utf8_lossy(&b).into(),
            )
        })
    }

    #[test]
    fn kept_fields_are_written_as_the_map_of_the_same_head() {
        let heads: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\n",
            // Names in any case, whitespace around values, empty values, tabs inside.
            b"HTTP/1.1 404 Not Found\r\nX-UPPER:  spaced  value \t\r\nx-empty:\r\nX-Tab:\tin\tside\t\r\ncontent-length:  0 \r\n\r\n",
            // obs-text is a value's byte like any other.
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-A: 1\r\nX-Obs: caf\xc3\xa9\r\nContent-Length: 3\r\n\r\n",
            // Bare LF line endings, as httparse takes them; HTTP/1.0.
            b"HTTP/1.0 200 OK\nContent-Length: 2\nX-B: 2\n\n",
            // A body already behind the head is not part of it.
            b"HTTP/1.1 201 Created\r\nLocation: /pets/1\r\nContent-Length: 4\r\n\r\nbody",
            // Lines as written (one copy), an empty value among them.
            b"HTTP/1.1 200 OK\r\nx-backend: bench\r\ncontent-length: 1024\r\nx-empty: \r\ndate: Thu, 03 Dec 2026 15:07:52 GMT\r\n\r\nxxxx",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n",
            // Nearly as written: one line is not.
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 1\r\nx-b:2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 1 \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx-a: 1\ncontent-length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-Length: 1\r\n\r\n",
        ];
        for head in heads {
            let (kept, mapped) = both_ways(head)
                .unwrap_or_else(|| panic!("{:?}: kept", String::from_utf8_lossy(head)));
            assert_eq!(kept, mapped, "{:?}", String::from_utf8_lossy(head));
        }
        // The date is found in both shapes; the shape is as the lines are.
        for (head, as_written) in [(heads[1], false), (heads[6], true)] {
            let fields = head_from_bytes(head, &Method::GET, true)
                .unwrap()
                .unwrap()
                .as_received
                .unwrap();
            assert_eq!(fields.as_written(), as_written);
            assert!(fields.write(&mut Vec::new(), true), "a date");
            assert!(fields.write(&mut Vec::new(), false), "a date");
        }
        let fields = head_from_bytes(heads[7], &Method::GET, true)
            .unwrap()
            .unwrap()
            .as_received
            .unwrap();
        assert!(fields.as_written() && !fields.write(&mut Vec::new(), true));
        for head in &heads[8..] {
            let fields = head_from_bytes(head, &Method::GET, true)
                .unwrap()
                .unwrap()
                .as_received
                .unwrap();
            assert!(!fields.as_written(), "{:?}", String::from_utf8_lossy(head));
            assert!(!fields.write(&mut Vec::new(), true), "no date");
        }
        let (kept, _) = both_ways(heads[2]).unwrap();
        assert_eq!(
            kept,
            "x-upper: spaced  value\r\nx-empty: \r\nx-tab: in\tside\r\ncontent-length: 0\r\n0\n"
        );
    }

    #[test]
    fn the_gateways_own_fields_are_the_steps_ones() {
        use crate::policies::{consumer_auth, throttling::step};
        let set = [
            step::RATELIMIT,
            step::RATELIMIT_POLICY,
            consumer_auth::EG_CONSUMER_ID,
        ];
        assert_eq!(set.map(|name| name.as_str().to_string()), GATEWAY_FIELDS);
        for own in ["RateLimit", "ratelimit-policy", "EG-Consumer-Id"] {
            let head = format!("HTTP/1.1 200 OK\r\n{own}: 1\r\nContent-Length: 1\r\n\r\n");
            let parsed = head_from_bytes(head.as_bytes(), &Method::GET, true)
                .unwrap()
                .unwrap();
            assert!(parsed.as_received.is_none(), "{own}");
        }
    }

    #[test]
    fn upper_case_letters_are_found_anywhere_in_a_name() {
        let base = b"abcdefghijklmnopqrstuvwxyz0123-_.";
        for len in 0..base.len() {
            let name = &base[..len];
            assert!(!has_upper(name), "{:?}", String::from_utf8_lossy(name));
            for at in 0..len {
                for (byte, upper) in [
                    (b'A', true),
                    (b'Z', true),
                    (b'@', false),
                    (b'[', false),
                    (0xC3, true),
                ] {
                    let mut changed = name.to_vec();
                    changed[at] = byte;
                    assert_eq!(has_upper(&changed), upper, "{changed:?}");
                }
            }
        }
    }

    #[test]
    fn only_answers_passed_on_unchanged_are_kept() {
        let not_kept: &[(&[u8], Method)] = &[
            // No body by definition.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD),
            (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", Method::GET),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", Method::GET),
            // Framing other than one Content-Length.
            (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", Method::GET),
            // A name twice: a map would gather its values.
            (b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-A: 1\r\nset-cookie: b=2\r\nContent-Length: 3\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\n\r\n", Method::GET),
            // Hop-by-hop fields, in any case, are removed by the map's path.
            (b"HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nKEEP-ALIVE: timeout=5\r\nContent-Length: 5\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nProxy-Connection: close\r\n\r\n", Method::GET),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nUpgrade: h2c\r\n\r\n", Method::GET),
        ];
        for (head, method) in not_kept {
            let parsed = head_from_bytes(head, method, true).unwrap().unwrap();
            assert!(
                parsed.as_received.is_none(),
                "{method} {:?}",
                String::from_utf8_lossy(head)
            );
        }
        // Too many fields.
        let mut many = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n".to_vec();
        for i in 0..MOST_FIELDS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(head_from_bytes(&many, &Method::GET, true)
            .unwrap()
            .unwrap()
            .as_received
            .is_none());
        // One fewer (`x-0: v` taken out): kept.
        many.drain(36..44);
        assert!(head_from_bytes(&many, &Method::GET, true)
            .unwrap()
            .unwrap()
            .as_received
            .is_some());
        // An invalid length is refused either way.
        for as_received in [true, false] {
            assert!(head_from_bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                &Method::GET,
                as_received
            )
            .is_err());
        }
        // Kept only when asked for.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let parsed = head_from_bytes(head, &Method::GET, false).unwrap().unwrap();
        assert!(parsed.as_received.is_none());
        assert_eq!(parsed.headers.len(), 1);
        let parsed = head_from_bytes(head, &Method::GET, true).unwrap().unwrap();
        let fields = parsed.as_received.as_ref().unwrap();
        assert!(parsed.headers.is_empty());
        assert_eq!(fields.content_length(), 5);
        assert!(!fields.write(&mut Vec::new(), true), "no date");
        assert!(parsed.keeps_alive() && parsed.framing_reusable);
        // HTTP/1.0 without `Connection` closes after the answer, kept or not.
        let parsed = head_from_bytes(
            b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
            &Method::GET,
            true,
        )
        .unwrap()
        .unwrap();
        assert!(parsed.as_received.is_some() && !parsed.keeps_alive());
    }

    #[test]
    fn kept_fields_go_into_a_map_as_the_map_path_reads_them() {
        let head: &[u8] =
            b"HTTP/1.1 200 OK\r\nX-A:  1 \r\nSet-Cookie: a=1\r\nX-B: 2\r\nContent-Length: 5\r\n\r\n";
        let kept = head_from_bytes(head, &Method::GET, true).unwrap().unwrap();
        let mapped = head_from_bytes(head, &Method::GET, false).unwrap().unwrap();
        let mut map = HeaderMap::new();
        kept.as_received.as_ref().unwrap().append_to(&mut map);
        assert_eq!(map, mapped.headers);
        // Without `Content-Length` when asked.
        let mut out = Vec::new();
        assert!(!kept.as_received.as_ref().unwrap().write(&mut out, false));
        assert_eq!(out, b"x-a: 1\r\nset-cookie: a=1\r\nx-b: 2\r\n");
    }
}
