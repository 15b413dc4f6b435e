//! Reading parameters from a request as JSON values to validate: path segments by the
//! resource's template, query fields, headers; each text read as its [`ValueType`].
//!
//! Covered: `simple` path parameters (arrays split at `,`), `form` query parameters (exploded
//! arrays from repeated fields, non-exploded split at `,`), `spaceDelimited` and
//! `pipeDelimited` arrays, Swagger 2.0's `collectionFormat`s, and single-valued headers.
//! Objects in parameters (`deepObject`, exploded `form` objects), `label` and `matrix` path
//! styles are not read: such a parameter is validated as its raw text.

use serde_json::Value;

use super::ValueType;

/// The raw text of each `{name}` of `template` in `path` (both after the API's base path),
/// percent-decoded. Segments are matched one to one; a template segment may hold literal text
/// around one `{name}` (`{id}.json`). Returns nothing for a path the template does not fit.
pub fn path_values(template: &str, path: &str) -> Vec<(String, String)> {
    let mut values = Vec::new();
    let mut template_segments = template.trim_start_matches('/').split('/');
    let mut path_segments = path.trim_start_matches('/').split('/');
    loop {
        match (template_segments.next(), path_segments.next()) {
            (Some(t), Some(p)) => {
                let (Some(open), Some(close)) = (t.find('{'), t.rfind('}')) else {
                    continue;
                };
                let (Some(prefix), Some(suffix), Some(name)) =
                    (t.get(..open), t.get(close + 1..), t.get(open + 1..close))
                else {
                    continue;
                };
                if let Some(raw) = p
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                {
                    values.push((name.to_string(), percent_decode(raw, false)));
                }
            }
            _ => return values,
        }
    }
}

/// The values of query field `name` in `query` (without `?`), decoded (`+` is a space).
pub fn query_values<'q>(query: &'q str, name: &'q str) -> impl Iterator<Item = String> + 'q {
    query.split('&').filter_map(move |field| {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        (percent_decode(key, true) == name).then(|| percent_decode(value, true))
    })
}

/// Reads `texts` (every value the request gave for the parameter) as `value`. Text that does
/// not read as the type stays a string, so the schema's `type` reports it.
pub fn read_value(texts: &[String], value: &ValueType) -> Value {
    match value {
        ValueType::Array { items, separator } => {
            let parts: Vec<Value> = match separator {
                Some(separator) => texts
                    .first()
                    .filter(|t| !t.is_empty())
                    .map(|t| t.split(*separator).map(|p| read_text(p, items)).collect())
                    .unwrap_or_default(),
                None => texts.iter().map(|t| read_text(t, items)).collect(),
            };
            Value::Array(parts)
        }
        scalar => texts
            .first()
            .map_or(Value::Null, |text| read_text(text, scalar)),
    }
}

fn read_text(text: &str, value: &ValueType) -> Value {
    let as_string = || Value::String(text.to_string());
    match value {
        ValueType::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| as_string()),
        ValueType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| {
                // Whole numbers stay integers (`multipleOf`, exact `enum` matches).
                text.parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| serde_json::Number::from_f64(n).map(Value::Number))
            })
            .unwrap_or_else(as_string),
        ValueType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => as_string(),
        },
        ValueType::Array { items, .. } => read_text(text, items),
        ValueType::String | ValueType::Any => as_string(),
    }
}

/// Decodes `%XX` escapes (and `+` as a space in a query); a bad escape is kept as it is and
/// bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    if !text.contains(['%', '+']) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
        match b {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    // Two hex digits: at most 0xFF.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'%'));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_parameters_come_from_their_segments() {
        assert_eq!(
            path_values("/pet/{petId}/photo/{name}.png", "/pet/12/photo/a%20b.png"),
            vec![
                ("petId".to_string(), "12".to_string()),
                ("name".to_string(), "a b".to_string())
            ]
        );
        assert!(path_values("/pet/{id}", "/pet").is_empty());
    }

    #[test]
    fn query_values_are_decoded_and_repeated_fields_kept() {
        let q = "tags=a&tags=b+c&limit=%31%30&bad=%zz";
        assert_eq!(query_values(q, "tags").collect::<Vec<_>>(), ["a", "b c"]);
        assert_eq!(query_values(q, "limit").collect::<Vec<_>>(), ["10"]);
        assert_eq!(query_values(q, "bad").collect::<Vec<_>>(), ["%zz"]);
    }

    #[test]
    fn texts_read_as_their_types_or_stay_strings() {
        let t = |s: &str| vec![s.to_string()];
        assert_eq!(read_value(&t("12"), &ValueType::Integer), json!(12));
        assert_eq!(read_value(&t("1.5"), &ValueType::Integer), json!("1.5"));
        assert_eq!(read_value(&t("1.5"), &ValueType::Number), json!(1.5));
        assert_eq!(read_value(&t("true"), &ValueType::Boolean), json!(true));
        assert_eq!(read_value(&t("yes"), &ValueType::Boolean), json!("yes"));
        let csv = ValueType::Array {
            items: Box::new(ValueType::Integer),
            separator: Some(','),
        };
        assert_eq!(read_value(&t("1,x,3"), &csv), json!([1, "x", 3]));
        let exploded = ValueType::Array {
            items: Box::new(ValueType::String),
            separator: None,
        };
        assert_eq!(
            read_value(&["a".into(), "b".into()], &exploded),
            json!(["a", "b"])
        );
    }
}
