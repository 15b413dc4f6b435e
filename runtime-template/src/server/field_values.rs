//! The long field values of the HTTP/1.1 request heads read on one connection, remembered as
//! `http`'s [`HeaderValue`]s.
//!
//! A client sends many fields with the same value on every request of a connection:
//! `Authorization` (a JWT is 200 bytes to a few KiB), `Cookie`, `User-Agent`, `Accept`.
//! [`HeaderValue::from_maybe_shared`] checks each byte of a value against the field-value rule
//! (RFC 9110, section 5.5: visible ASCII, obs-text, spaces and tabs), about 1.5 instructions a
//! byte, although `httparse` has already checked the same rule while reading the head. When a
//! field carries the value it carried on the connection's previous request, comparing the bytes
//! and cloning the value remembered then (a reference count) costs less: the bench's JWT
//! route, whose `Authorization` value is about 190 bytes, 21,916 → 21,669 instructions a
//! request, with the unsecured route's short fields made as before (`scripts/bench
//! --instructions`, docs/benchmarks.md, "twentieth pass").
//!
//! The comparison takes a time that depends on the lengths only
//! ([`crate::auth::cache::same_bytes`]): behind a proxy that pools its connections to the
//! gateway, the request before may be another user's, and how much of a guessed
//! `Authorization` value matched theirs must not be told.
//!
//! Values shorter than [`MIN_LEN`] are made as before (their check costs no more than the
//! comparison). A field whose value keeps changing (a `traceparent`, a request id) stops being
//! remembered after [`MAX_MISSES`] changes in a row, and the values remembered take at most
//! [`MAX_BYTES`] of copies (besides [`MAX_FIELDS`] slots of 48 bytes): nothing is kept before
//! the first valid value of [`MIN_LEN`] bytes among a head's first [`MAX_FIELDS`] fields.

use bytes::Bytes;
use http::HeaderValue;

/// Shortest value remembered, in bytes.
pub const MIN_LEN: usize = 32;

/// Fields of a head whose values are remembered: the first this many (heads repeat their
/// order, as [`crate::proxy::field_names::FieldNames`] also assumes).
pub const MAX_FIELDS: usize = 16;

/// Most bytes of values one connection keeps copies of (a copy of each: a remembered value
/// must not hold the connection's read buffer, which the next head reuses).
pub const MAX_BYTES: usize = 4096;

/// Changes in a row after which a field's value is no longer remembered on this connection.
pub const MAX_MISSES: u8 = 3;

/// The values the fields of a connection's last heads carried, by the field's place in its
/// head. Empty (and without an allocation) until a head carries a value of [`MIN_LEN`] bytes.
/// Its `Debug` shows how much it keeps, never the values (credentials among them).
#[derive(Default)]
pub struct FieldValues {
    places: Vec<Place>,
    /// The bytes of every value in `places`.
    bytes: usize,
}

impl std::fmt::Debug for FieldValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldValues")
            .field("places", &self.places.len())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// What is remembered of the field at one place in the heads.
#[derive(Default)]
struct Place {
    value: Option<HeaderValue>,
    /// Changes of the value in a row (0 after a request that repeated it).
    misses: u8,
}

impl FieldValues {
    /// The value `raw[start..end]` of the `index`th field of a head: the value remembered at
    /// that place when it is the same bytes, else `HeaderValue::from_maybe_shared` of that part
    /// of `raw` (then remembered when long enough, and when room and the place's changes allow).
    /// `None` when the range is outside `raw` or the bytes are not a field value (`http`'s
    /// `InvalidHeaderValue`: the same answer as before, never a remembered one).
    ///
    /// A short value is made here, inline, as it was before values were remembered.
    #[inline(always)]
    pub fn value(
        &mut self,
        index: usize,
        raw: &Bytes,
        start: usize,
        end: usize,
    ) -> Option<HeaderValue> {
        if start <= end && end - start < MIN_LEN && end <= raw.len() {
            return HeaderValue::from_maybe_shared(raw.slice(start..end)).ok();
        }
        self.long_value(index, raw, start, end)
    }

    /// [`FieldValues::value`] of a value of at least [`MIN_LEN`] bytes (or a range outside
    /// `raw`).
    #[inline(never)]
    fn long_value(
        &mut self,
        index: usize,
        raw: &Bytes,
        start: usize,
        end: usize,
    ) -> Option<HeaderValue> {
        let bytes = raw.get(start..end)?;
        if let Some(Place {
            value: Some(value),
            misses,
        }) = self.places.get_mut(index)
        {
            if crate::auth::cache::same_bytes(value.as_bytes(), bytes) {
                *misses = 0;
                return Some(value.clone());
            }
        }
        let value = HeaderValue::from_maybe_shared(raw.slice(start..end)).ok()?;
        self.remember(index, bytes);
        Some(value)
    }

    /// Remembers `bytes` (a valid field value) as the `index`th field's value, in place of the
    /// one remembered there.
    fn remember(&mut self, index: usize, bytes: &[u8]) {
        if index >= MAX_FIELDS {
            return;
        }
        if self.places.len() <= index {
            if self.places.is_empty() {
                self.places.reserve_exact(MAX_FIELDS);
            }
            self.places.resize_with(index + 1, Place::default);
        }
        let Some(place) = self.places.get_mut(index) else {
            return;
        };
        if let Some(before) = place.value.take() {
            self.bytes -= before.len();
            place.misses = place.misses.saturating_add(1);
        }
        if place.misses >= MAX_MISSES || self.bytes + bytes.len() > MAX_BYTES {
            return;
        }
        // Its own copy, checked again (once per change of the value, not per request).
        if let Ok(copy) = HeaderValue::from_bytes(bytes) {
            self.bytes += bytes.len();
            place.value = Some(copy);
        }
    }

    /// The bytes of the values remembered.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(values: &[&[u8]]) -> (Bytes, Vec<(usize, usize)>) {
        let mut raw = Vec::new();
        let mut spans = Vec::new();
        for value in values {
            raw.extend_from_slice(b"x: ");
            spans.push((raw.len(), raw.len() + value.len()));
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n");
        }
        (Bytes::from(raw), spans)
    }

    fn read(values: &mut FieldValues, fields: &[&[u8]]) -> Vec<Option<HeaderValue>> {
        let (raw, spans) = head(fields);
        spans
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| values.value(i, &raw, start, end))
            .collect()
    }

    const TOKEN: &[u8] = b"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLWJ5dGVz";

    #[test]
    fn every_value_is_what_http_makes_of_its_bytes() {
        let mut values = FieldValues::default();
        let heads: [&[&[u8]]; 5] = [
            &[
                b"short",
                TOKEN,
                b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko",
            ],
            &[
                b"short",
                TOKEN,
                b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko",
            ],
            // The token changed, and the fields moved.
            &[
                b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko",
                b"Bearer another.token.of-more-than-32-bytes",
                b"short",
            ],
            // Obs-text and tabs are field values; a control byte is not.
            &[
                b"caf\xc3\xa9 and more than thirty-two bytes\tof text",
                b"bad \x01 byte and more than thirty-two bytes",
                TOKEN,
            ],
            &[TOKEN, TOKEN, TOKEN],
        ];
        for fields in heads {
            let got = read(&mut values, fields);
            for (value, raw) in got.iter().zip(fields) {
                assert_eq!(
                    value.as_ref(),
                    HeaderValue::from_bytes(raw).ok().as_ref(),
                    "{raw:?}"
                );
            }
        }
        assert!(values.bytes() <= MAX_BYTES);
    }

    #[test]
    fn a_repeated_value_is_the_one_remembered() {
        let mut values = FieldValues::default();
        read(&mut values, &[b"short", TOKEN]);
        assert_eq!(values.bytes(), TOKEN.len(), "the short value is not kept");
        let (raw, spans) = head(&[b"short", TOKEN]);
        let (start, end) = spans[1];
        let value = values.value(1, &raw, start, end).unwrap();
        // Not a part of this head's bytes: the copy made on the first request.
        let inside = raw.as_ptr_range();
        assert!(!inside.contains(&value.as_bytes().as_ptr()));
        assert_eq!(value.as_bytes(), TOKEN);
        assert!(!value.is_sensitive());
    }

    #[test]
    fn a_value_that_keeps_changing_is_no_longer_remembered() {
        let mut values = FieldValues::default();
        for i in 0..10 {
            let traceparent = format!("00-{i:032x}-00f067aa0ba902b7-01");
            let got = read(&mut values, &[traceparent.as_bytes()]);
            assert_eq!(got[0].as_ref().unwrap().as_bytes(), traceparent.as_bytes());
            let kept = if i < usize::from(MAX_MISSES) {
                traceparent.len()
            } else {
                0
            };
            assert_eq!(values.bytes(), kept, "request {i}");
        }
        // A token that changes now and then stays remembered between its changes.
        let mut values = FieldValues::default();
        for i in 0..20 {
            let token = format!("Bearer token-of-the-hour-{}-and-its-signature", i / 4);
            read(&mut values, &[token.as_bytes()]);
            assert_eq!(values.bytes(), token.len(), "request {i}");
        }
    }

    /// Heads of up to 20 fields drawn at random (a fixed seed) from repeated long values,
    /// fresh values of any length, and bytes a value may not hold, half of them repeating the
    /// head before: every value is what `http` makes of its bytes (remembered or not), and the
    /// bounds hold after every head.
    #[test]
    fn random_heads_read_as_http_reads_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let alphabet: &[u8] = b"ab.-_ \t=Z9\x80\xff\x7f\x01";
        let repeated: Vec<Vec<u8>> = [
            TOKEN,
            b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            b"session=0123456789abcdef0123456789abcdef; theme=dark",
            b"caf\xc3\xa9 caf\xc3\xa9 caf\xc3\xa9 caf\xc3\xa9 caf\xc3\xa9 caf\xc3\xa9",
            b"an invalid \x01 value of more than thirty-two bytes",
        ]
        .iter()
        .map(|v| v.to_vec())
        .collect();
        let mut values = FieldValues::default();
        let mut fields: Vec<Vec<u8>> = Vec::new();
        for _ in 0..2000 {
            if next(2) == 0 {
                // Half the heads repeat the one before (their values found remembered), a
                // field changed in some.
                if let Some(field) = fields.get_mut(next(4)) {
                    *field = repeated[next(repeated.len())].clone();
                }
            } else {
                fields = (0..next(21))
                    .map(|_| match next(3) {
                        0 => repeated[next(repeated.len())].clone(),
                        _ => (0..next(80))
                            .map(|_| alphabet[next(alphabet.len())])
                            .collect(),
                    })
                    .collect();
            }
            let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
            for (value, raw) in read(&mut values, &refs).iter().zip(&refs) {
                assert_eq!(
                    value.as_ref(),
                    HeaderValue::from_bytes(raw).ok().as_ref(),
                    "{raw:?}"
                );
            }
            assert!(values.bytes() <= MAX_BYTES);
            assert!(values.places.len() <= MAX_FIELDS);
        }
    }

    /// A value of [`MIN_LEN`] bytes is kept, a shorter one is not; copies fill [`MAX_BYTES`]
    /// exactly, and a byte more does not fit; `Debug` tells no value.
    #[test]
    fn the_bounds_are_the_documented_ones() {
        let mut values = FieldValues::default();
        let at_min = vec![b'm'; MIN_LEN];
        let short = vec![b's'; MIN_LEN - 1];
        read(&mut values, &[&short, &at_min]);
        assert_eq!(values.bytes(), MIN_LEN);
        let mut values = FieldValues::default();
        let half = vec![b'h'; MAX_BYTES / 2];
        read(&mut values, &[&half, &half]);
        assert_eq!(values.bytes(), MAX_BYTES, "two halves fill it");
        let mut values = FieldValues::default();
        let over = vec![b'o'; MAX_BYTES / 2 + 1];
        read(&mut values, &[&half, &over]);
        assert_eq!(values.bytes(), MAX_BYTES / 2, "a byte more does not fit");
        read(&mut values, &[TOKEN]);
        let shown = format!("{values:?}");
        assert!(
            !shown.contains("Bearer") && shown.contains("bytes"),
            "{shown}"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut values = FieldValues::default();
        let long = vec![b'a'; 1500];
        let fields: Vec<&[u8]> = vec![&long; MAX_FIELDS + 4];
        for _ in 0..3 {
            let got = read(&mut values, &fields);
            assert!(got
                .iter()
                .all(|v| v.as_ref().unwrap().as_bytes() == long.as_slice()));
            assert_eq!(
                values.bytes(),
                2 * long.len(),
                "two of 1,500 bytes fit in {MAX_BYTES}"
            );
        }
        assert!(values.places.capacity() <= MAX_FIELDS);
        // A range outside the head is refused, not remembered.
        let (raw, _) = head(&[TOKEN]);
        assert_eq!(values.value(0, &raw, 4, raw.len() + 1), None);
        assert_eq!(values.value(0, &raw, 9, 4), None);
    }
}
