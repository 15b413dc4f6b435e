//! JSON as `JSON.parse` reads it and `JSON.stringify` writes it (ECMA-262 §25.5), for the
//! transformers' body changes: objects keep JavaScript's key order (integer keys ascending, then
//! the others in insertion order; a repeated key keeps its first place and its last value),
//! strings are re-escaped as `JSON.stringify` does, whitespace is dropped.
//!
//! One deliberate difference: numbers keep the text they were written with, where JavaScript
//! would round them to doubles (`12345678901234567890` stays exact; `1.0` stays `1.0`).

use std::collections::HashMap;

use crate::expression::{number_to_string, Value};

/// How deep arrays and objects may nest (parsing, writing and dropping recurse).
pub(crate) const MAX_DEPTH: usize = 256;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number's text as written.
    Number(Box<str>),
    /// The string in `JSON.stringify`'s escaped form, without quotes.
    Str(String),
    Array(Vec<Json>),
    Object(Object),
}

/// An object's members in insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object {
    /// (key decoded, key in escaped form, value).
    members: Vec<(String, String, Json)>,
}

impl Object {
    /// `obj[key] = value`: replaces in place, or appends.
    pub(crate) fn set(&mut self, key: &str, value: Json) {
        match self.members.iter_mut().find(|(k, _, _)| k == key) {
            Some(member) => member.2 = value,
            None => {
                let mut escaped = String::new();
                escape_into(key, &mut escaped);
                self.members.push((key.to_string(), escaped, value));
            }
        }
    }

    /// `delete obj[key]`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _, _)| k != key);
    }

    /// A member read from the text: a repeated key keeps its first place and takes the last
    /// value. `seen` maps the keys read so far to their places, so a body with many keys costs
    /// linear time, not quadratic.
    fn set_parsed(
        &mut self,
        seen: &mut HashMap<String, usize>,
        key: String,
        escaped: String,
        value: Json,
    ) {
        match seen.get(&key) {
            Some(&at) => self.members[at].2 = value,
            None => {
                seen.insert(key.clone(), self.members.len());
                self.members.push((key, escaped, value));
            }
        }
    }
}

/// A JavaScript value as `JSON.stringify` would write it inside an object; `None` for
/// `undefined`, whose key `JSON.stringify` leaves out.
pub(crate) fn from_value(value: &Value<'_>) -> Option<Json> {
    Some(match value {
        Value::Undefined => return None,
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) if n.is_finite() => Json::Number(number_to_string(*n).into()),
        Value::Number(_) => Json::Null,
        Value::Str(s) => {
            let mut escaped = String::new();
            escape_into(s, &mut escaped);
            Json::Str(escaped)
        }
        // The only objects an expression can name (req.headers, egContext, ...) are not plain
        // data; they are written empty.
        Value::Object => Json::Object(Object::default()),
    })
}

/// Why a text is not JSON (`JSON.parse` would throw a SyntaxError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) message: &'static str,
}

/// `JSON.parse(text)`.
pub(crate) fn parse(text: &str) -> Result<Json, SyntaxError> {
    let mut p = Reader {
        b: text.as_bytes(),
        text,
        pos: 0,
    };
    p.space();
    let value = p.value(0)?;
    p.space();
    if p.pos < p.b.len() {
        return Err(p.error("unexpected text after the JSON value"));
    }
    Ok(value)
}

/// `JSON.stringify(value)`.
pub(crate) fn stringify(value: &Json) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

struct Reader<'t> {
    b: &'t [u8],
    text: &'t str,
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, message: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message,
        }
    }

    fn space(&mut self) {
        while matches!(self.b.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, SyntaxError> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected token"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        match self.b.get(self.pos) {
            None => Err(self.error("unexpected end of JSON input")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => Ok(Json::Str(self.string()?.1)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.error("nested too deeply"));
                }
                self.pos += 1;
                let mut items = Vec::new();
                self.space();
                if self.b.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.space();
                    items.push(self.value(depth + 1)?);
                    self.space();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.error("expected `,` or `]`")),
                    }
                }
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.error("nested too deeply"));
                }
                self.pos += 1;
                let mut object = Object::default();
                let mut seen = HashMap::new();
                self.space();
                if self.b.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(object));
                }
                loop {
                    self.space();
                    if self.b.get(self.pos) != Some(&b'"') {
                        return Err(self.error("expected a property name"));
                    }
                    let (key, escaped) = self.string()?;
                    self.space();
                    if self.b.get(self.pos) != Some(&b':') {
                        return Err(self.error("expected `:`"));
                    }
                    self.pos += 1;
                    self.space();
                    let value = self.value(depth + 1)?;
                    object.set_parsed(&mut seen, key, escaped, value);
                    self.space();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(object));
                        }
                        _ => return Err(self.error("expected `,` or `}`")),
                    }
                }
            }
            Some(_) => Err(self.error("unexpected token")),
        }
    }

    fn number(&mut self) -> Result<Json, SyntaxError> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let s = r.pos;
            while r.b.get(r.pos).is_some_and(u8::is_ascii_digit) {
                r.pos += 1;
            }
            r.pos - s
        };
        if self.b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.b.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.error("no number after minus sign")),
        }
        if self.b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error("unterminated fractional number"));
            }
        }
        if matches!(self.b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("exponent part is missing a number"));
            }
        }
        Ok(Json::Number(self.text[start..self.pos].into()))
    }

    /// A string at `self.pos` (the quote): (decoded, escaped as `JSON.stringify` writes it).
    /// A lone surrogate escape is kept escaped, and decoded as U+FFFD.
    fn string(&mut self) -> Result<(String, String), SyntaxError> {
        self.pos += 1;
        let mut decoded = String::new();
        let mut escaped = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok((decoded, escaped));
                }
                '\u{0}'..='\u{1f}' => return Err(self.error("bad control character in string")),
                '\\' => {
                    let Some(&e) = self.b.get(self.pos + 1) else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 2;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let unit = self.hex4()?;
                            if (0xd800..0xdc00).contains(&unit)
                                && self.b[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let low = self.hex4()?;
                                if (0xdc00..0xe000).contains(&low) {
                                    let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                                    let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                                    decoded.push(ch);
                                    escape_char(ch, &mut escaped);
                                    continue;
                                }
                                self.pos = save;
                            }
                            match char::from_u32(unit) {
                                Some(ch) => ch,
                                None => {
                                    // A lone surrogate: JSON.stringify writes it escaped.
                                    decoded.push('\u{fffd}');
                                    escaped.push_str(&format!("\\u{unit:04x}"));
                                    continue;
                                }
                            }
                        }
                        _ => return Err(self.error("bad escaped character")),
                    };
                    decoded.push(ch);
                    escape_char(ch, &mut escaped);
                }
                c => {
                    self.pos += c.len_utf8();
                    decoded.push(c);
                    escape_char(c, &mut escaped);
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("bad Unicode escape"))?;
        self.pos += 4;
        u32::from_str_radix(hex, 16).map_err(|_| self.error("bad Unicode escape"))
    }
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        escape_char(c, out);
    }
}

/// An array index as JavaScript orders object keys: a canonical integer below 2³² − 1.
fn array_index(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n != u32::MAX && n.to_string() == key).then_some(n)
}

fn write(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Json::Object(object) => {
            out.push('{');
            let mut indexed: Vec<(u32, &(String, String, Json))> = object
                .members
                .iter()
                .filter_map(|m| array_index(&m.0).map(|i| (i, m)))
                .collect();
            indexed.sort_by_key(|(i, _)| *i);
            let named = object
                .members
                .iter()
                .filter(|m| array_index(&m.0).is_none());
            let mut first = true;
            for (_, escaped, value) in indexed.into_iter().map(|(_, m)| m).chain(named) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push('"');
                out.push_str(escaped);
                out.push_str("\":");
                write(value, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        stringify(&parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}")))
    }

    #[test]
    fn writes_what_json_stringify_writes() {
        assert_eq!(
            round_trip(" { \"a\" : [ 1 , true , null ] , \"b\" : {} } "),
            r#"{"a":[1,true,null],"b":{}}"#
        );
        // Integer keys first, ascending; a repeated key keeps its place and its last value.
        assert_eq!(
            round_trip(r#"{"b":1,"10":2,"a":3,"2":4,"b":5,"01":6}"#),
            r#"{"2":4,"10":2,"b":5,"a":3,"01":6}"#
        );
        // Escapes normalised: \/ and \u0041 written plainly, control characters as \u00xx.
        assert_eq!(
            round_trip(r#""\/\u0041\u00e9\u001f\n""#),
            r#""/Aé\u001f\n""#
        );
        assert_eq!(round_trip(r#""\ud83d\ude00""#), "\"😀\"");
        // A lone surrogate stays escaped (lower case), as well-formed JSON.stringify does.
        assert_eq!(round_trip(r#""\uD800x""#), r#""\ud800x""#);
        assert_eq!(round_trip("\"\u{2028}\""), "\"\u{2028}\"");
        // Numbers keep their text (a deliberate difference from rounding to doubles).
        assert_eq!(
            round_trip("[12345678901234567890, 1.0, -0, 1E+2]"),
            "[12345678901234567890,1.0,-0,1E+2]"
        );
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{'a':1}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "tru",
            "\"a",
            "\"\t\"",
            "\"\\x\"",
            "\"\\u12\"",
            "[1] 2",
            "NaN",
            "\u{feff}{}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).is_err());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(round_trip(&ok), ok);
    }

    #[test]
    fn many_keys_cost_linear_time() {
        // 100 000 distinct keys (about 1.2 MB) and one repeated: a search per key for an earlier
        // one was quadratic (minutes in a debug build).
        let mut text = String::from("{");
        for i in 0..100_000 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k5\":\"last\"}");
        let started = std::time::Instant::now();
        let Json::Object(object) = parse(&text).unwrap() else {
            panic!("not an object")
        };
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(object.members.len(), 100_000);
        assert_eq!(object.members[5].2, Json::Str("last".into()));
    }

    #[test]
    fn values_from_expressions() {
        let mut object = Object::default();
        object.set("s", from_value(&Value::Str("a\"b".into())).unwrap());
        object.set("n", from_value(&Value::Number(1.5)).unwrap());
        object.set("i", from_value(&Value::Number(f64::NAN)).unwrap());
        object.set("t", from_value(&Value::Bool(true)).unwrap());
        assert!(from_value(&Value::Undefined).is_none());
        object.set("s", from_value(&Value::Null).unwrap());
        assert_eq!(
            stringify(&Json::Object(object)),
            r#"{"s":null,"n":1.5,"i":null,"t":true}"#
        );
    }
}
