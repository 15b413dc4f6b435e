//! Reading one definition file: YAML or JSON into a JSON value, plus a map from JSON pointer
//! to source line so later checks can say where a problem is.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// A parsed definition file.
#[derive(Debug)]
pub struct Document {
    /// The file name shown in messages.
    pub file: String,
    /// The content.
    pub value: Value,
    lines: HashMap<String, usize>,
}

/// The file does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line, when the parser knows it.
    pub line: Option<usize>,
    /// 1-based column, when the parser knows it.
    pub column: Option<usize>,
    /// The parser's message.
    pub message: String,
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends a segment to a pointer.
pub fn child(pointer: &str, segment: &str) -> String {
    format!("{pointer}/{}", escape_segment(segment))
}

impl Document {
    /// Parses `text`; JSON when the file name ends in `.json` or the text starts with `{`.
    pub fn parse(file: &str, text: &str) -> Result<Document, ParseError> {
        Self::parse_mapping(
            file,
            text,
            "an API definition must be a mapping with `openapi: 3.x` or `swagger: \"2.0\"` at the top",
        )
    }

    /// Like [`Document::parse`] for any file whose top level must be a mapping;
    /// `not_a_mapping` is the message when it is not.
    pub fn parse_mapping(
        file: &str,
        text: &str,
        not_a_mapping: &str,
    ) -> Result<Document, ParseError> {
        let is_json = file.ends_with(".json") || text.trim_start().starts_with('{');
        let value: Value = if is_json {
            serde_json::from_str(text).map_err(|e| ParseError {
                line: Some(e.line()),
                column: Some(e.column()).filter(|c| *c > 0),
                message: format!("not valid JSON: {e}"),
            })?
        } else {
            serde_yaml::from_str::<YamlValue>(text)
                .map_err(|e| ParseError {
                    line: e.location().map(|l| l.line()),
                    column: e.location().map(|l| l.column()),
                    message: format!("not valid YAML: {e}"),
                })?
                .0
        };
        if !value.is_object() {
            return Err(ParseError {
                line: Some(1),
                column: None,
                message: not_a_mapping.to_string(),
            });
        }
        let mut lines = HashMap::new();
        // Best effort: a document serde accepts but the span parser does not simply has no lines.
        if let Ok(node) = marked_yaml::parse_yaml(0, text) {
            index_lines(&node, String::new(), &mut lines);
        }
        Ok(Document {
            file: file.to_string(),
            value,
            lines,
        })
    }

    /// The line of the node at `pointer`, or of its nearest ancestor that has one.
    pub fn line(&self, pointer: &str) -> Option<usize> {
        let mut pointer = pointer;
        loop {
            if let Some(line) = self.lines.get(pointer) {
                return Some(*line);
            }
            match pointer.rfind('/') {
                Some(i) => pointer = &pointer[..i],
                None => return None,
            }
        }
    }

    /// The value at `pointer`.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }
}

/// A JSON value read from YAML. Integers outside 64 bits (`18446744073709551616`,
/// `-9223372036854776000`), which the YAML reader hands over as 128-bit numbers and
/// `serde_json::Value` refuses, are kept as the nearest float, as serde_json itself reads
/// them from a JSON document; everything else is read as `serde_json::Value` reads it.
struct YamlValue(Value);

impl<'de> serde::Deserialize<'de> for YamlValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlVisitor).map(YamlValue)
    }
}

struct YamlVisitor;

/// A float as `serde_json::Value` keeps it (`null` for NaN and infinities).
fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

impl<'de> serde::de::Visitor<'de> for YamlVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match (i64::try_from(v), u64::try_from(v)) {
            (Ok(small), _) => Value::from(small),
            (_, Ok(small)) => Value::from(small),
            // Out of 64 bits: the nearest float, as serde_json reads such a number from JSON.
            _ => float(v as f64),
        })
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(small) => Value::from(small),
            Err(_) => float(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        YamlValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(YamlValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some((key, YamlValue(value))) = map.next_entry::<String, YamlValue>()? {
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn index_lines(node: &marked_yaml::Node, pointer: String, lines: &mut HashMap<String, usize>) {
    use marked_yaml::Node;
    match node {
        Node::Mapping(map) => {
            for (key, value) in map.iter() {
                let path = child(&pointer, key.as_str());
                if let Some(start) = key.span().start() {
                    lines.insert(path.clone(), start.line());
                }
                index_lines(value, path, lines);
            }
        }
        Node::Sequence(seq) => {
            for (i, value) in seq.iter().enumerate() {
                let path = format!("{pointer}/{i}");
                if let Some(start) = value.span().start() {
                    lines.entry(path.clone()).or_insert(start.line());
                }
                index_lines(value, path, lines);
            }
        }
        Node::Scalar(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines_follow_pointers() {
        let text = "openapi: 3.0.0\ninfo:\n  title: t\npaths:\n  /pet/{id}:\n    get:\n      operationId: x\n";
        let doc = Document::parse("a.yaml", text).unwrap();
        assert_eq!(doc.line("/paths/~1pet~1{id}/get"), Some(6));
        assert_eq!(doc.line("/paths/~1pet~1{id}/get/responses"), Some(6));
        assert_eq!(doc.line("/info/title"), Some(3));
    }

    #[test]
    fn json_parses_with_lines() {
        let text = "{\n  \"swagger\": \"2.0\",\n  \"paths\": {\n    \"/a\": {}\n  }\n}\n";
        let doc = Document::parse("a.json", text).unwrap();
        assert_eq!(doc.value["swagger"], "2.0");
        assert_eq!(doc.line("/paths/~1a"), Some(4));
    }

    /// Issue 10 item 7: integers outside 64 bits load from YAML as they do from JSON.
    #[test]
    fn yaml_integers_beyond_64_bits_load() {
        let text = "openapi: 3.0.0\nx:\n  minimum: -9223372036854776000\n  maximum: 18446744073709551616\n  small: -5\n  big: 18446744073709551615\n  responses:\n    200: {description: ok}\n";
        let doc = Document::parse("a.yaml", text).unwrap();
        let json = Document::parse(
            "a.json",
            r#"{"x": {"minimum": -9223372036854776000, "maximum": 18446744073709551616}}"#,
        )
        .unwrap();
        assert_eq!(doc.value["x"]["minimum"], json.value["x"]["minimum"]);
        assert_eq!(doc.value["x"]["maximum"], json.value["x"]["maximum"]);
        assert_eq!(
            doc.value["x"]["minimum"].as_f64(),
            Some(-9.223372036854776e18)
        );
        assert_eq!(doc.value["x"]["small"], -5);
        assert_eq!(doc.value["x"]["big"], u64::MAX);
        assert!(doc.value["x"]["responses"]["200"].is_object());
    }

    #[test]
    fn parse_errors_have_lines() {
        let err = Document::parse("a.yaml", "openapi: 3.0.0\ninfo: [\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
        let err = Document::parse("a.json", "{\n\"a\": 1,,\n}").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(Document::parse("a.yaml", "- 1\n- 2\n").is_err());
    }
}
