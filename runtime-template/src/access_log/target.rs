//! The request target an access record carries (path and query, credentials already
//! redacted), stored in the record itself when it is short, which is nearly always: the record
//! then travels to the writer thread without an allocation of its own, and the writer frees
//! nothing that another thread allocated.

use std::fmt;

/// Longest target kept inside the record (bytes); a longer one is boxed. With the length byte
/// and the variant's tag the value is 64 bytes, one cache line.
pub const INLINE_TARGET: usize = 62;

/// A request target: its bytes inline up to [`INLINE_TARGET`], boxed beyond.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestTarget(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// `bytes[..len]` is the target, whole UTF-8 text (it was copied from a `&str`).
    Inline {
        len: u8,
        bytes: [u8; INLINE_TARGET],
    },
    Boxed(Box<str>),
}

impl RequestTarget {
    /// A copy of `target` (no allocation up to [`INLINE_TARGET`] bytes).
    pub fn new(target: &str) -> Self {
        let text = target.as_bytes();
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE_TARGET => {
                let mut bytes = [0u8; INLINE_TARGET];
                if let Some(head) = bytes.get_mut(..text.len()) {
                    head.copy_from_slice(text);
                }
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Boxed(target.into())),
        }
    }

    /// The target's bytes (UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Boxed(text) => text.as_bytes(),
        }
    }

    /// The target's bytes followed by zeros up to [`INLINE_TARGET`] bytes, when it is short
    /// (its length is that of [`RequestTarget::as_bytes`]): for a copy of a fixed size.
    pub fn padded(&self) -> Option<&[u8; INLINE_TARGET]> {
        match &self.0 {
            Repr::Inline { bytes, .. } => Some(bytes),
            Repr::Boxed(_) => None,
        }
    }

    /// The target as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always valid: the bytes were copied whole from a `&str`.
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Boxed(text) => text,
        }
    }
}

impl From<&str> for RequestTarget {
    fn from(target: &str) -> Self {
        Self::new(target)
    }
}

impl fmt::Debug for RequestTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_targets_stay_inline_and_long_ones_are_boxed_whole() {
        assert_eq!(std::mem::size_of::<RequestTarget>(), 64);
        let at_limit = format!("/{}", "é".repeat((INLINE_TARGET - 1) / 2));
        for text in [
            "",
            "/",
            "/bench/get1k?x=1",
            at_limit.as_str(),
            &"/long".repeat(40),
            "/p/\u{1F600}?q=\"\\\n",
        ] {
            let target = RequestTarget::new(text);
            assert_eq!(target.as_str(), text);
            assert_eq!(target.as_bytes(), text.as_bytes());
            let inline = matches!(target.0, Repr::Inline { .. });
            assert_eq!(inline, text.len() <= INLINE_TARGET, "{text:?}");
            assert_eq!(target.padded().is_some(), inline, "{text:?}");
            if let Some(padded) = target.padded() {
                assert_eq!(&padded[..text.len()], text.as_bytes());
                assert!(padded[text.len()..].iter().all(|b| *b == 0));
            }
        }
    }
}
