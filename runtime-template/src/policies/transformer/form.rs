//! `application/x-www-form-urlencoded` bodies for the request transformer: read as Express's
//! `urlencoded` parser decodes them, written as the npm `form-urlencoded` 4 package (which
//! Express Gateway uses) encodes them.
//!
//! Difference from Express Gateway: the body is kept as a flat list of name/value pairs, where
//! `qs` builds nested objects and arrays (`a=1&a=2` and `a[b]=1`) that `form-urlencoded` then
//! writes back as `a[0]=1&a[1]=2` and `a[b]=1`. Here repeated names stay repeated and bracketed
//! names stay as they are; `add`/`remove` of `a` also replace/remove the `a[...]` pairs.

use crate::expression::form_decode;

/// Express's `urlencoded` parser refuses more parameters than this (413).
pub(crate) const PARAMETER_LIMIT: usize = 1000;

/// The decoded pairs, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

/// More than [`PARAMETER_LIMIT`] parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyParameters;

impl Form {
    /// Decodes a body (`+` and percent-escapes, UTF-8).
    pub(crate) fn parse(body: &str) -> Result<Self, TooManyParameters> {
        if body.split('&').count() > PARAMETER_LIMIT {
            return Err(TooManyParameters);
        }
        let pairs = body
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key = form_decode(key).into_owned();
                // `qs` drops pairs with an empty name.
                (!key.is_empty()).then(|| (key, form_decode(value).into_owned()))
            })
            .collect();
        Ok(Self { pairs })
    }

    /// The decoded pairs, in order.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// No pairs (Express Gateway then writes the body as JSON).
    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn names(name: &str, key: &str) -> bool {
        key == name
            || key
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('['))
    }

    /// `body[name] = value`: replaces the pairs of `name` at the place of the first, or appends.
    /// `None` (an `undefined` value) leaves the name out, as `form-urlencoded` does.
    pub(crate) fn set(&mut self, name: &str, value: Option<String>) {
        let at = self.pairs.iter().position(|(k, _)| Self::names(name, k));
        self.remove(name);
        if let Some(value) = value {
            let at = at.unwrap_or(self.pairs.len()).min(self.pairs.len());
            self.pairs.insert(at, (name.to_string(), value));
        }
    }

    /// `delete body[name]`.
    pub(crate) fn remove(&mut self, name: &str) {
        self.pairs.retain(|(k, _)| !Self::names(name, k));
    }

    /// Encodes the pairs as `form-urlencoded` does: letters, digits, `-`, `_` and `.` as they
    /// are, a space as `+`, everything else percent-encoded UTF-8 (upper-case hex).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            encode_into(key, &mut out);
            out.push('=');
            encode_into(value, &mut out);
        }
        out
    }
}

fn encode_into(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(char::from(b)),
            b' ' => out.push('+'),
            b => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// A decoded name as `form-urlencoded` would write it (for tests and messages).
#[cfg(test)]
fn encoded(text: &str) -> String {
    let mut out = String::new();
    encode_into(text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_form_urlencoded_4() {
        // Values checked with form-urlencoded 4.5.1 on Node 20.
        assert_eq!(encoded("a b!'()~*"), "a+b%21%27%28%29%7E%2A");
        assert_eq!(encoded("é€-_.x9"), "%C3%A9%E2%82%AC-_.x9");
        assert_eq!(encoded("a[b]"), "a%5Bb%5D");
    }

    #[test]
    fn add_and_remove_keep_the_order() {
        let mut form = Form::parse("hello=there&a%5Bb%5D=1&a=2&x=y+z&&=novalue&flag").unwrap();
        form.set("hello", Some("world".into()));
        form.set("new", Some("n".into()));
        form.set("x", None);
        form.remove("a");
        assert_eq!(form.encode(), "hello=world&flag=&new=n");
        assert!(Form::parse("").unwrap().is_empty());
        assert_eq!(
            Form::parse(&"a&".repeat(PARAMETER_LIMIT)),
            Err(TooManyParameters)
        );
        assert!(Form::parse(&"a&".repeat(PARAMETER_LIMIT - 1)).is_ok());
    }
}
