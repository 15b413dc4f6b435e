//! Express Gateway's `rate-limit` policy (EG 1.16 `lib/policies/rate-limit`, on
//! express-rate-limit 2.14 and rate-limit-redis 1.7): `max` hits per `windowMs` per key, the
//! key made from `rateLimitBy`, `X-RateLimit-*` headers on every response, and over the limit
//! `statusCode` with `Retry-After`, `Vary: Accept` and a content-negotiated `message`.
//!
//! The counters are [`crate::counters`]: in memory, or in Redis shared by replicas.

#[cfg(feature = "server")]
pub mod step;

use serde::{Deserialize, Serialize};

/// How a step counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateAlgorithm {
    /// Express Gateway's fixed window, opened by a key's first hit.
    #[default]
    FixedWindow,
    /// GCRA: a steady `max / windowMs` with bursts of at most `burst`.
    Gcra,
}

/// The action of a `rate-limit` step, with Express Gateway's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Hits per window (0: no limit).
    pub max: u64,
    /// The window in milliseconds.
    pub window_ms: u64,
    /// What a key is made of.
    pub key: Vec<KeyPart>,
    /// The answer's message when over the limit.
    pub message: String,
    /// The answer's status when over the limit.
    pub status: u16,
    /// `X-RateLimit-*` and `Retry-After` are sent.
    pub headers: bool,
    /// Answers with a status ≥ 400 do not count.
    pub skip_failed: bool,
    /// Answers with a status < 400 do not count.
    pub skip_successful: bool,
    /// Hits admitted before answers are delayed (0: never).
    pub delay_after: u64,
    /// The delay per hit beyond `delay_after`, in milliseconds (0: none).
    pub delay_ms: u64,
    /// The counting algorithm.
    #[serde(default)]
    pub algorithm: RateAlgorithm,
    /// GCRA's largest burst (0: `max`).
    #[serde(default)]
    pub burst: u64,
    /// Where the step is (pipeline and step number): its keys are its own.
    pub scope: String,
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            max: 5,
            window_ms: 60_000,
            key: vec![KeyPart::Ip],
            message: "Too many requests, please try again later.".into(),
            status: 429,
            headers: true,
            skip_failed: false,
            skip_successful: false,
            delay_after: 1,
            delay_ms: 1000,
            algorithm: RateAlgorithm::FixedWindow,
            burst: 0,
            scope: String::new(),
        }
    }
}

/// One piece of a rate-limit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "part", content = "value")]
pub enum KeyPart {
    /// Literal text of the template.
    Text(String),
    /// `req.ip`: the client's address.
    Ip,
    /// `req.hostname`: the `Host` without its port.
    Hostname,
    /// `req.headers.<name>`, `req.headers['<name>']`, `req.get('<name>')`,
    /// `req.header('<name>')`: a request header (lower case), `undefined` when absent.
    Header(String),
    /// `req.user.id` (or `consumer.id`, `egContext.consumer.id`, `req.egContext.consumer.id`):
    /// the consumer an authentication step identified.
    ConsumerId,
}

/// Why a `rateLimitBy` template is not one of the supported forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rateLimitBy {template:?}: {reason}")]
pub struct KeyError {
    /// The template.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

/// The forms `rateLimitBy` accepts, for messages.
pub const KEY_FORMS: &str = "${req.ip}, ${req.hostname}, ${req.headers.<name>} (or ${req.headers['<name>']}, ${req.get('<name>')}), ${req.user.id} (or ${egContext.consumer.id}), with literal text around them";

/// Parses a `rateLimitBy` template (a JavaScript template string) into its parts: literal
/// text and `${…}` of the supported forms.
pub fn parse_key(template: &str) -> Result<Vec<KeyPart>, KeyError> {
    let error = |reason: String| KeyError {
        template: template.to_string(),
        reason,
    };
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(KeyPart::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| error("a `${` is not closed by `}`".into()))?;
        let expr = after[..end].trim();
        parts.push(key_expression(expr).ok_or_else(|| {
            error(format!(
                "`${{{expr}}}` is not a supported key; use {KEY_FORMS}"
            ))
        })?);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(KeyPart::Text(rest.to_string()));
    }
    if parts.is_empty() {
        return Err(error("the key is empty".into()));
    }
    if parts.iter().all(|p| matches!(p, KeyPart::Text(_))) {
        return Err(error(format!(
            "the key has no `${{…}}` part, so every request would share one counter; use {KEY_FORMS}"
        )));
    }
    Ok(parts)
}

fn key_expression(expr: &str) -> Option<KeyPart> {
    let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    // The template runs in EG's egContext, which is also `egContext` and `req.egContext`.
    let mut compact = compact.as_str();
    for prefix in ["req.egContext.", "egContext."] {
        if let Some(rest) = compact.strip_prefix(prefix) {
            compact = rest;
            break;
        }
    }
    match compact {
        "req.ip" => return Some(KeyPart::Ip),
        "req.hostname" => return Some(KeyPart::Hostname),
        // `egContext.consumer` is `req.user`.
        "req.user.id" | "consumer.id" => return Some(KeyPart::ConsumerId),
        _ => {}
    }
    let header = |name: &str| {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        valid.then(|| KeyPart::Header(name.to_ascii_lowercase()))
    };
    if let Some(name) = compact.strip_prefix("req.headers.") {
        return header(name).filter(|_| !name.contains('.') && !name.contains('-'));
    }
    for (open, close) in [
        ("req.headers[", "]"),
        ("req.get(", ")"),
        ("req.header(", ")"),
    ] {
        if let Some(inner) = compact
            .strip_prefix(open)
            .and_then(|s| s.strip_suffix(close))
        {
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            return quoted.and_then(header);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_people_use_parse() {
        assert_eq!(parse_key("${req.ip}").unwrap(), vec![KeyPart::Ip]);
        assert_eq!(
            parse_key("${ req.hostname }").unwrap(),
            vec![KeyPart::Hostname]
        );
        for t in [
            "${req.user.id}",
            "${consumer.id}",
            "${egContext.consumer.id}",
            "${req.egContext.consumer.id}",
        ] {
            assert_eq!(parse_key(t).unwrap(), vec![KeyPart::ConsumerId], "{t}");
        }
        for t in [
            "${req.headers.apikey}",
            "${req.headers['ApiKey']}",
            "${req.headers[\"apikey\"]}",
            "${req.get('apikey')}",
            "${req.header('apikey')}",
        ] {
            assert_eq!(
                parse_key(t).unwrap(),
                vec![KeyPart::Header("apikey".into())],
                "{t}"
            );
        }
        assert_eq!(
            parse_key("ip:${req.ip}/${req.headers['x-tenant']}").unwrap(),
            vec![
                KeyPart::Text("ip:".into()),
                KeyPart::Ip,
                KeyPart::Text("/".into()),
                KeyPart::Header("x-tenant".into()),
            ]
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_forms() {
        for t in [
            "${req.body.user}",
            "${req.ip + 1}",
            "${Math.random()}",
            "constant",
            "${req.ip",
            "",
            "${req.headers.x-tenant}",
        ] {
            let err = parse_key(t).unwrap_err();
            assert_eq!(err.template, t);
        }
        assert!(parse_key("${req.query.x}")
            .unwrap_err()
            .to_string()
            .contains("${req.ip}"));
    }
}
