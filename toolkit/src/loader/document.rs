//! Reading one definition file: YAML or JSON into a JSON value, plus a map from JSON pointer
//! to source line so later checks can say where a problem is.

use std::collections::HashMap;

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
        let is_json = file.ends_with(".json") || text.trim_start().starts_with('{');
        let value: Value = if is_json {
            serde_json::from_str(text).map_err(|e| ParseError {
                line: Some(e.line()),
                column: Some(e.column()).filter(|c| *c > 0),
                message: format!("not valid JSON: {e}"),
            })?
        } else {
            serde_yaml::from_str(text).map_err(|e| ParseError {
                line: e.location().map(|l| l.line()),
                column: e.location().map(|l| l.column()),
                message: format!("not valid YAML: {e}"),
            })?
        };
        if !value.is_object() {
            return Err(ParseError {
                line: Some(1),
                column: None,
                message: "an API definition must be a mapping with `openapi: 3.x` or `swagger: \"2.0\"` at the top".into(),
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

    #[test]
    fn parse_errors_have_lines() {
        let err = Document::parse("a.yaml", "openapi: 3.0.0\ninfo: [\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
        let err = Document::parse("a.json", "{\n\"a\": 1,,\n}").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(Document::parse("a.yaml", "- 1\n- 2\n").is_err());
    }
}
