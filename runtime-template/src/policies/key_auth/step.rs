//! The `key-auth` step at run time.

use std::borrow::Cow;

use http::request::Parts;

use super::KeyAuthSpec;
use crate::expression::form_decode;
use crate::pipeline::step::Flow;
use crate::pipeline::{Context, Matched, Services};
use crate::policies::consumer_auth::{conclude, Verdict};
use crate::store::KeyAuthOutcome;

/// A ready `key-auth` step.
#[derive(Debug, Clone)]
pub struct KeyAuthStep {
    header: Option<http::HeaderName>,
    scheme: Option<String>,
    query_field: Option<String>,
    pass_through: bool,
}

impl KeyAuthStep {
    /// Checks the header name.
    pub fn new(spec: &KeyAuthSpec) -> Result<Self, String> {
        let header = if spec.disable_headers {
            None
        } else {
            Some(
                http::HeaderName::from_bytes(spec.header.to_ascii_lowercase().as_bytes())
                    .map_err(|_| format!("apiKeyHeader {:?} is not a header name", spec.header))?,
            )
        };
        Ok(Self {
            header,
            scheme: (!spec.disable_headers_scheme).then(|| spec.scheme.to_ascii_lowercase()),
            query_field: (!spec.disable_query_param).then(|| spec.query_field.clone()),
            pass_through: spec.pass_through,
        })
    }

    /// The response phase is needed to mark pass-through refusals.
    pub fn has_response_phase(&self) -> bool {
        self.pass_through
    }

    /// The key in the request: the header's last space-separated part when its first part is
    /// the scheme (or any, without a scheme), else the query parameter when it appears once.
    pub fn extract<'p>(&self, parts: &'p Parts) -> Option<Cow<'p, str>> {
        if let Some(name) = &self.header {
            if let Some(value) = parts.headers.get(name) {
                let key = match String::from_utf8_lossy(value.as_bytes()) {
                    Cow::Borrowed(text) => self.header_key(text).map(Cow::Borrowed),
                    Cow::Owned(text) => self
                        .header_key(&text)
                        .map(|key| Cow::Owned(key.to_string())),
                };
                if key.is_some() {
                    return key;
                }
            }
        }
        let field = self.query_field.as_deref()?;
        let query = parts.uri.query()?;
        let mut found = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = form_decode(name);
            if name == field {
                if found.is_some() {
                    // Repeated: Express's query parser makes an array, which is no key.
                    return None;
                }
                found = Some(form_decode(value).into_owned());
            } else if name.starts_with(field) && name[field.len()..].starts_with('[') {
                // `apiKey[x]=…` makes an object: no key.
                return None;
            }
        }
        found.filter(|k| !k.is_empty()).map(Cow::Owned)
    }

    /// The key in a header value: its last space-separated part, when the first part is the
    /// scheme (or any, without a scheme) and the key is not empty.
    fn header_key<'t>(&self, text: &'t str) -> Option<&'t str> {
        // Byte positions of the first and last space (a space is one byte in UTF-8, so both
        // are character boundaries): no pattern searchers for a value of a few dozen bytes.
        let bytes = text.as_bytes();
        let key = match bytes.iter().rposition(|&b| b == b' ') {
            Some(last) => text.get(last + 1..)?,
            None => text,
        };
        let scheme_ok = match &self.scheme {
            None => true,
            Some(scheme) => {
                let end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
                bytes
                    .get(..end)
                    .is_some_and(|first| first.eq_ignore_ascii_case(scheme.as_bytes()))
            }
        };
        (scheme_ok && !key.is_empty()).then_some(key)
    }

    /// Checks the key and concludes as every EG authentication step does.
    pub fn request(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
    ) -> Flow {
        let verdict = match (&services.consumers, self.extract(parts)) {
            (Some(consumers), Some(key)) => {
                let (key_id, secret) = key_parts(&key);
                if key_id.is_empty() || secret.is_empty() {
                    Verdict::Unauthorized
                } else {
                    let scopes: &[String] = match context.matched {
                        Matched::Express { route, .. } => &route.scopes,
                        _ => &[],
                    };
                    match consumers.key_auth(key_id, secret, scopes) {
                        KeyAuthOutcome::Accepted(consumer) => Verdict::Accepted(consumer),
                        KeyAuthOutcome::Unauthorized => Verdict::Unauthorized,
                        KeyAuthOutcome::Forbidden => Verdict::Forbidden,
                    }
                }
            }
            _ => Verdict::Unauthorized,
        };
        conclude(verdict, self.pass_through, context, parts)
    }
}

/// EG's `apiKey.split(':')`, parts 0 and 1: the key id, and the secret up to a second `:`
/// (empty when absent).
fn key_parts(key: &str) -> (&str, &str) {
    match key.split_once(':') {
        None => (key, ""),
        Some((id, rest)) => (id, rest.split_once(':').map_or(rest, |(secret, _)| secret)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, header: Option<(&str, &str)>) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn keys_split_as_eg_splits_them() {
        for (key, parts) in [
            ("id:secret", ("id", "secret")),
            ("id:secret:more", ("id", "secret")),
            ("id", ("id", "")),
            (":secret", ("", "secret")),
            ("id:", ("id", "")),
            ("id::x", ("id", "")),
            ("", ("", "")),
        ] {
            assert_eq!(key_parts(key), parts, "{key:?}");
            let mut split = key.split(':');
            let eg = (split.next().unwrap_or(""), split.next().unwrap_or(""));
            assert_eq!(key_parts(key), eg, "{key:?}");
        }
    }

    /// The header's key as the split-based reading gave it (first and last space-separated
    /// parts), on values with doubled, leading and trailing spaces and non-ASCII text.
    #[test]
    fn header_keys_are_the_last_part_after_the_scheme() {
        let old = |scheme: Option<&str>, text: &str| {
            let key = text.rsplit(' ').next().unwrap_or("");
            let ok = scheme.is_none_or(|s| {
                text.split(' ')
                    .next()
                    .is_some_and(|first| first.eq_ignore_ascii_case(s))
            });
            (ok && !key.is_empty()).then_some(key.to_string())
        };
        let with = KeyAuthStep::new(&KeyAuthSpec::default()).unwrap();
        let without = KeyAuthStep::new(&KeyAuthSpec {
            disable_headers_scheme: true,
            ..KeyAuthSpec::default()
        })
        .unwrap();
        for text in [
            "apiKey id:s",
            "ApiKey  id:s",
            " apiKey id:s",
            "apiKey id:s ",
            "apiKey",
            "",
            " ",
            "apiKey é:ü",
            "äpiKey id:s",
            "apiKeyX id:s",
            "a b c",
            "apikey\tid:s",
        ] {
            assert_eq!(
                with.header_key(text).map(str::to_string),
                old(Some("apikey"), text),
                "{text:?}"
            );
            assert_eq!(
                without.header_key(text).map(str::to_string),
                old(None, text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn keys_come_from_the_header_scheme_then_the_query() {
        let step = KeyAuthStep::new(&KeyAuthSpec::default()).unwrap();
        let key = |uri: &str, header: Option<(&str, &str)>| {
            step.extract(&parts(uri, header)).map(Cow::into_owned)
        };
        assert_eq!(
            key("/", Some(("authorization", "apiKey id:s"))).as_deref(),
            Some("id:s")
        );
        assert_eq!(
            key("/", Some(("authorization", "APIKEY id:s"))).as_deref(),
            Some("id:s")
        );
        // A wrong scheme falls back to the query.
        assert_eq!(
            key("/?apiKey=q:s", Some(("authorization", "Bearer id:s"))).as_deref(),
            Some("q:s")
        );
        assert_eq!(key("/", Some(("authorization", "Bearer id:s"))), None);
        assert_eq!(key("/?apiKey=a%3Ab", None).as_deref(), Some("a:b"));
        // Repeated or object-shaped parameters are no key.
        assert_eq!(key("/?apiKey=a&apiKey=b", None), None);
        assert_eq!(key("/?apiKey[x]=a", None), None);
        let custom = KeyAuthStep::new(&KeyAuthSpec {
            header: "X-Key".into(),
            disable_headers_scheme: true,
            disable_query_param: true,
            ..KeyAuthSpec::default()
        })
        .unwrap();
        assert_eq!(
            custom
                .extract(&parts("/", Some(("x-key", "k:s"))))
                .as_deref(),
            Some("k:s")
        );
        assert_eq!(custom.extract(&parts("/?apiKey=k:s", None)), None);
    }
}
