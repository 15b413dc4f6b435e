//! The field names of the HTTP/1.1 heads read on one connection, remembered as `http`'s
//! [`HeaderName`]s.
//!
//! A client or an upstream sends the same field names, spelled the same way, on every message
//! of a connection. [`HeaderName::from_bytes`] checks and lower-cases a name byte by byte and
//! looks it up among the standard names (about 150 instructions for a standard name; a
//! name outside them also copies it into a new allocation); comparing the bytes with one seen
//! before costs a length check and a short `memcmp`, and a remembered name is cloned (a copy
//! for a standard name, a reference count for another). `scripts/bench --instructions`: about
//! 400 instructions fewer per proxied `GET` (five names: two in the request, three in the
//! answer; docs/benchmarks.md, "ninth pass").

use http::HeaderName;

/// Most names one connection remembers. A connection that sends more different names (or a
/// new set on every message) has the rest made as before: never more memory than this.
pub const MAX_NAMES: usize = 16;

/// Longest name remembered, in bytes; longer ones are made every time.
pub const MAX_NAME_LEN: usize = 40;

/// Room for the names' bytes asked for with the first one (most heads' names fit); when it
/// is full, room for all [`MAX_NAMES`] names of [`MAX_NAME_LEN`] bytes is asked for at once.
const FIRST_ROOM: usize = 256;

/// The names a connection's heads have carried, exactly as spelled (`Host` and `host` are
/// two entries, both `host`), at most [`MAX_NAMES`] of at most [`MAX_NAME_LEN`] bytes. None
/// is allocated before a head is read; then two blocks, of at most 640 bytes each on 64-bit
/// targets (the names' bytes, and [`MAX_NAMES`] entries), plus, for a name outside the
/// standard ones, the block that keeps its lower-cased copy alive.
#[derive(Debug, Default)]
pub struct FieldNames {
    /// The names' bytes, one after the other.
    bytes: Vec<u8>,
    /// Each name: where its bytes end in `bytes` (they start where the previous one's end),
    /// and what `http` makes of them.
    seen: Vec<(usize, HeaderName)>,
}

impl FieldNames {
    /// The `HeaderName` of `raw`, the `index`th field of a head: `None` when `raw` is not a
    /// valid field name ([`HeaderName::from_bytes`]'s error). The `index`th name remembered is
    /// compared first (heads tend to repeat their order), then the others.
    pub fn name(&mut self, index: usize, raw: &[u8]) -> Option<HeaderName> {
        if let Some(name) = self.nth_if(index, raw) {
            return Some(name.clone());
        }
        let mut start = 0;
        for (end, name) in &self.seen {
            if self.bytes.get(start..*end) == Some(raw) {
                return Some(name.clone());
            }
            start = *end;
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        if self.seen.len() < MAX_NAMES && raw.len() <= MAX_NAME_LEN {
            if self.seen.is_empty() {
                self.seen.reserve_exact(MAX_NAMES);
                self.bytes.reserve_exact(FIRST_ROOM);
            }
            if self.bytes.capacity() - self.bytes.len() < raw.len() {
                // Never more than the bound: not the doubling `extend` would do.
                self.bytes
                    .reserve_exact(MAX_NAMES * MAX_NAME_LEN - self.bytes.len());
            }
            self.bytes.extend_from_slice(raw);
            self.seen.push((self.bytes.len(), name.clone()));
        }
        Some(name)
    }

    /// The `index`th name remembered, when it is spelled `raw`.
    fn nth_if(&self, index: usize, raw: &[u8]) -> Option<&HeaderName> {
        let (end, name) = self.seen.get(index)?;
        let start = match index.checked_sub(1) {
            Some(before) => self.seen.get(before)?.0,
            None => 0,
        };
        (self.bytes.get(start..*end)? == raw).then_some(name)
    }

    /// How many names are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_http_makes_of_them_in_any_order_and_spelling() {
        let mut names = FieldNames::default();
        let heads: [&[&[u8]]; 4] = [
            &[b"Host", b"content-length", b"X-Custom"],
            &[b"Host", b"content-length", b"X-Custom"],
            // Another order, another spelling, and a name seen only now.
            &[b"x-custom", b"HOST", b"Content-Length", b"Host", b"accept"],
            &[b"accept", b"X-Custom"],
        ];
        for head in heads {
            for (i, raw) in head.iter().enumerate() {
                assert_eq!(
                    names.name(i, raw),
                    Some(HeaderName::from_bytes(raw).unwrap()),
                    "{}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
        // Host, content-length, X-Custom, x-custom, HOST, Content-Length, accept.
        assert_eq!(names.len(), 7);
    }

    #[test]
    fn invalid_names_are_refused_and_not_remembered() {
        let mut names = FieldNames::default();
        for raw in [&b""[..], b"bad name", b"caf\xc3\xa9", b"a:b"] {
            assert_eq!(names.name(0, raw), None, "{raw:?}");
        }
        assert!(names.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_count_and_length() {
        let mut names = FieldNames::default();
        let long = vec![b'x'; MAX_NAME_LEN + 1];
        assert!(names.name(0, &long).is_some());
        assert!(names.is_empty(), "a long name is not remembered");
        for i in 0..MAX_NAMES * 3 {
            let raw = format!("x-field-{i}");
            assert_eq!(
                names.name(i, raw.as_bytes()),
                Some(HeaderName::from_bytes(raw.as_bytes()).unwrap())
            );
        }
        assert_eq!(names.len(), MAX_NAMES);
        assert_eq!(names.seen.capacity(), MAX_NAMES);
        assert!(names.bytes.capacity() <= MAX_NAMES * MAX_NAME_LEN);
        // The longest names there can be, all remembered, within the same room.
        let mut longest = FieldNames::default();
        for i in 0..MAX_NAMES {
            let raw = format!("{i:x<width$}", width = MAX_NAME_LEN);
            assert!(longest.name(i, raw.as_bytes()).is_some());
        }
        assert_eq!(longest.len(), MAX_NAMES);
        assert_eq!(longest.bytes.len(), MAX_NAMES * MAX_NAME_LEN);
        assert_eq!(longest.bytes.capacity(), MAX_NAMES * MAX_NAME_LEN);
        assert_eq!(longest.seen.capacity(), MAX_NAMES);
        // Names past the bound are still made correctly, every time.
        let late = format!("x-field-{}", MAX_NAMES * 2);
        assert_eq!(names.name(0, late.as_bytes()).unwrap().as_str(), late);
    }
}
