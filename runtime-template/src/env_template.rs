//! `${VAR}` references in Express Gateway settings, substituted when the gateway starts.
//!
//! Express Gateway 1.16 replaces variables in the *text* of `gateway.config.yml` before it parses
//! it (`envReplace` in `lib/config/config.js`), with the regular expression
//! `\$?\$\{([A-Za-z0-9_]+)(:-(.*?))?\}`. This module follows those rules, applied to one setting
//! value at a time:
//!
//! - a reference is `${NAME}` or `${NAME:-default}`; `NAME` is one or more ASCII letters, digits
//!   or `_`; the default runs to the first `}` on the same line;
//! - a set variable wins, even when its value is empty; otherwise a non-empty default is used;
//! - `$${NAME}` (and `$${NAME:-x}`) is an escape and is kept **exactly as written**, both `$`
//!   included, as Express Gateway keeps it;
//! - anything else containing `${` (`${req.ip}`, `${ X}`) is not a reference and is kept.
//!
//! Deliberate differences, documented in `docs/express-gateway-migration.md`:
//! - a variable that is not set and has no default is a **start-up error naming it**
//!   ([`MissingVariable`]); Express Gateway writes the text `null` in its place;
//! - `${NAME:-}` (an empty default) gives the empty string; Express Gateway treats an empty
//!   default as none and writes `null`;
//! - substitution applies to the settings' values only (listeners, TLS files, service endpoint
//!   URLs, host patterns), never to YAML syntax: a value cannot add keys.
//!
//! Which fields are settings is decided by the toolkit (`docs/express-gateway-migration.md`,
//! "Variables"); their raw text is compiled in and expanded here at start-up, so secrets never
//! enter the binary.

use crate::model::express::Listen;

/// A referenced variable is not set and the reference has no default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the environment variable {name} is not set and has no default: set it, or write ${{{name}:-<default>}} in the configuration")]
pub struct MissingVariable {
    /// The variable's name.
    pub name: String,
}

/// A setting cannot be used after substitution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A variable is missing.
    #[error("{setting}: {source}")]
    Missing {
        /// The setting, e.g. `http.port` of `express-gateway/gateway.config.yml`.
        setting: String,
        /// Which variable.
        source: MissingVariable,
    },
    /// A port is not a number from 0 to 65535.
    #[error("{setting} = {value:?} (written {raw:?}) is not a port: use a number from 0 to 65535")]
    Port {
        /// The setting.
        setting: String,
        /// The value after substitution.
        value: String,
        /// The text as written.
        raw: String,
    },
}

/// A reference that Express Gateway would not recognise although it looks like one was meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${NAME` or `${NAME:-default` with no `}` on the same line.
    #[error("`{text}` is not closed: a variable reference is ${{NAME}} or ${{NAME:-default}} on one line")]
    Unclosed {
        /// The start of the reference as written.
        text: String,
    },
}

/// One piece of a setting's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    /// Kept as written (including `$${...}` escapes).
    Text(&'a str),
    /// `${name}` or `${name:-default}`.
    Var {
        name: &'a str,
        default: Option<&'a str>,
    },
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Tries Express Gateway's pattern at byte `at` (which holds `$`); returns the end of the match
/// and whether it is an escape, the name and the default.
fn match_at(text: &str, at: usize) -> Option<(usize, bool, &str, Option<&str>)> {
    let bytes = text.as_bytes();
    let (escape, open) = if bytes.get(at + 1) == Some(&b'$') && bytes.get(at + 2) == Some(&b'{') {
        (true, at + 3)
    } else if bytes.get(at + 1) == Some(&b'{') {
        (false, at + 2)
    } else {
        return None;
    };
    let name_end = open
        + bytes
            .get(open..)?
            .iter()
            .take_while(|b| is_name_byte(**b))
            .count();
    if name_end == open {
        return None;
    }
    let name = text.get(open..name_end)?;
    match bytes.get(name_end) {
        Some(b'}') => Some((name_end + 1, escape, name, None)),
        Some(b':') if bytes.get(name_end + 1) == Some(&b'-') => {
            let start = name_end + 2;
            let rest = text.get(start..)?;
            let line = rest.split(['\n', '\r']).next().unwrap_or("");
            let close = line.find('}')?;
            Some((start + close + 1, escape, name, Some(&rest[..close])))
        }
        _ => None,
    }
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while let Some(offset) = text.get(i..).and_then(|rest| rest.find('$')) {
        let at = i + offset;
        match match_at(text, at) {
            Some((end, escape, name, default)) => {
                if escape {
                    // Kept verbatim: part of the surrounding text.
                    i = end;
                    continue;
                }
                if literal_start < at {
                    out.push(Piece::Text(&text[literal_start..at]));
                }
                out.push(Piece::Var { name, default });
                literal_start = end;
                i = end;
            }
            None => i = at + 1,
        }
    }
    if literal_start < text.len() {
        out.push(Piece::Text(&text[literal_start..]));
    }
    out
}

/// Substitutes every `${NAME}` / `${NAME:-default}` of `text` with `lookup(NAME)`, or the
/// default when the variable is not set (see the module documentation for the exact rules).
///
/// Errors: the first variable that is neither set nor defaulted.
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVariable> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, default } => match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(MissingVariable {
                        name: name.to_string(),
                    })
                }
            },
        }
    }
    Ok(out)
}

/// [`expand`] with the process environment (variables that are not valid UTF-8 count as unset).
pub fn expand_env(text: &str) -> Result<String, MissingVariable> {
    expand(text, |name| std::env::var(name).ok())
}

/// The names of the variables `text` refers to, in order (escapes excluded).
pub fn variables(text: &str) -> Vec<&str> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var { name, .. } => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// The variables `text` refers to, in order, each with whether that reference has a default
/// (`${NAME:-default}`, an empty default included).
pub fn variables_with_defaults(text: &str) -> Vec<(&str, bool)> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var { name, default } => Some((name, default.is_some())),
            Piece::Text(_) => None,
        })
        .collect()
}

/// True when `text` refers to at least one variable.
pub fn has_variables(text: &str) -> bool {
    pieces(text).iter().any(|p| matches!(p, Piece::Var { .. }))
}

/// The value `text` has when no referenced variable is set: every reference replaced by its
/// default; `None` when a reference has none. The toolkit uses it to compare ports at build.
pub fn default_value(text: &str) -> Option<String> {
    expand(text, |_| None).ok()
}

/// Build-time syntax check: refuses `${NAME` and `${NAME:-default` without a `}` on the same
/// line, which Express Gateway would silently keep as text.
pub fn check(text: &str) -> Result<(), TemplateError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = text.get(i..).and_then(|rest| rest.find("${")) {
        let at = i + offset;
        let escaped = at > 0 && bytes[at - 1] == b'$';
        let dollar = if escaped { at - 1 } else { at };
        if let Some((end, ..)) = match_at(text, dollar) {
            i = end;
            continue;
        }
        let open = at + 2;
        let name_len = bytes[open..]
            .iter()
            .take_while(|b| is_name_byte(**b))
            .count();
        let after = bytes.get(open + name_len);
        // A name followed by the end, a line break, or `:-` with no closing brace: a reference
        // was meant. Anything else (`${req.ip}`, `${ x }`) is ordinary text, as for EG.
        let meant = name_len > 0 && matches!(after, None | Some(b'\n') | Some(b'\r') | Some(b':'));
        if meant {
            let line_end = text[at..].find(['\n', '\r']).map_or(text.len(), |e| at + e);
            return Err(TemplateError::Unclosed {
                text: text[dollar..line_end].to_string(),
            });
        }
        i = open;
    }
    Ok(())
}

/// Where a listener binds, after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedListen {
    /// Address or host name to bind (`0.0.0.0` when the file gives none, unless the caller
    /// passes another default, e.g. `localhost` for `admin`).
    pub host: String,
    /// The port (0: any free port).
    pub port: u16,
}

/// Resolves a listener of an Express Gateway configuration at start-up: substitutes variables
/// in its port and host, applies `port_override` (`[express_gateway] http_port` and friends of
/// `conf/micro-gw.toml`) instead of the file's port, and checks the port.
///
/// `setting` names the listener in messages (e.g. `express-gateway/gateway.config.yml http`);
/// `default_host` is used when the file names no host.
pub fn resolve_listen(
    listen: &Listen,
    setting: &str,
    default_host: &str,
    port_override: Option<u16>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ResolvedListen, SettingError> {
    let host = match &listen.host {
        Some(raw) => expand(raw, &lookup).map_err(|source| SettingError::Missing {
            setting: format!("{setting}.hostname"),
            source,
        })?,
        None => default_host.to_string(),
    };
    let port = match port_override {
        Some(port) => port,
        None => {
            let value = expand(&listen.port, &lookup).map_err(|source| SettingError::Missing {
                setting: format!("{setting}.port"),
                source,
            })?;
            value.trim().parse().map_err(|_| SettingError::Port {
                setting: format!("{setting}.port"),
                value: value.clone(),
                raw: listen.port.clone(),
            })?
        }
    };
    Ok(ResolvedListen { host, port })
}

/// Substitutes variables in a service endpoint's URLs (or any list of settings) at start-up.
/// `setting` names them in messages (e.g. `serviceEndpoints.backend`).
pub fn resolve_urls(
    urls: &[String],
    setting: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, SettingError> {
    urls.iter()
        .map(|url| {
            expand(url, &lookup).map_err(|source| SettingError::Missing {
                setting: setting.to_string(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn variables_defaults_and_escapes_follow_express_gateway() {
        let e = env(&[("PORT", "81"), ("EMPTY", ""), ("A_1", "x")]);
        assert_eq!(expand("${PORT}", &e).unwrap(), "81");
        assert_eq!(expand("${PORT:-8080}", &e).unwrap(), "81");
        assert_eq!(expand("${NOPE:-8080}", &e).unwrap(), "8080");
        // A set but empty variable wins over the default (EG: hasOwnProperty).
        assert_eq!(expand("${EMPTY:-d}", &e).unwrap(), "");
        assert_eq!(
            expand("http://h:${PORT}/${A_1}", &e).unwrap(),
            "http://h:81/x"
        );
        // The default runs to the first `}`.
        assert_eq!(expand("${NOPE:-a:b}c}", &e).unwrap(), "a:bc}");
        // Escapes are kept exactly as written (EG returns the match unchanged).
        assert_eq!(
            expand("$${PORT} $${X:-1}", &e).unwrap(),
            "$${PORT} $${X:-1}"
        );
        // Not references: JS template expressions and other text.
        for text in ["${req.ip}", "${ PORT }", "$PORT", "${}", "$", "a$"] {
            assert_eq!(expand(text, &e).unwrap(), text, "{text}");
        }
        // Non-ASCII text around references survives.
        assert_eq!(expand("é${PORT}ü", &e).unwrap(), "é81ü");
    }

    /// Deliberate difference: EG writes `null`; micro-gw refuses to start, naming the variable.
    #[test]
    fn a_variable_without_value_or_default_is_an_error_naming_it() {
        let err = expand("a ${SECRET} b", env(&[])).unwrap_err();
        assert_eq!(err.name, "SECRET");
        assert!(err.to_string().contains("SECRET is not set"), "{err}");
        // An empty default is a default (EG: null).
        assert_eq!(expand("${X:-}", env(&[])).unwrap(), "");
    }

    #[test]
    fn variables_are_listed_and_defaults_computed() {
        assert_eq!(variables("${A}-$${B}-${C:-1}"), ["A", "C"]);
        assert!(has_variables("${EG_HTTP_PORT:-8080}"));
        assert!(!has_variables("$${X} ${req.url}"));
        assert_eq!(
            default_value("${EG_HTTP_PORT:-8080}").as_deref(),
            Some("8080")
        );
        assert_eq!(default_value("${EG_HTTP_PORT}"), None);
        assert_eq!(default_value("8080").as_deref(), Some("8080"));
    }

    #[test]
    fn unclosed_references_are_refused_at_build() {
        assert!(check("${A} ${B:-x} $${C} ${req.ip} plain").is_ok());
        for text in ["${PORT", "x ${PORT:-80", "${PORT:-80\n}"] {
            let err = check(text).unwrap_err();
            assert!(err.to_string().contains("is not closed"), "{text}: {err}");
        }
    }

    #[test]
    fn listeners_resolve_with_overrides_and_clear_errors() {
        let listen = Listen {
            port: "${EG_HTTP_PORT:-8080}".into(),
            host: None,
        };
        let got = resolve_listen(&listen, "http", "0.0.0.0", None, env(&[])).unwrap();
        assert_eq!(
            got,
            ResolvedListen {
                host: "0.0.0.0".into(),
                port: 8080
            }
        );
        let got = resolve_listen(
            &listen,
            "http",
            "0.0.0.0",
            None,
            env(&[("EG_HTTP_PORT", "81")]),
        )
        .unwrap();
        assert_eq!(got.port, 81);
        let got = resolve_listen(&listen, "http", "0.0.0.0", Some(0), env(&[])).unwrap();
        assert_eq!(got.port, 0);
        let bad = Listen {
            port: "${P}".into(),
            host: Some("${H:-localhost}".into()),
        };
        let err = resolve_listen(&bad, "gw.yml http", "0.0.0.0", None, env(&[("P", "high")]))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("gw.yml http.port = \"high\""),
            "{err}"
        );
        let err = resolve_listen(&bad, "gw.yml http", "0.0.0.0", None, env(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("gw.yml http.port: the environment variable P"),
            "{err}"
        );
        // An override does not need the port variable, the host still resolves.
        let got = resolve_listen(&bad, "http", "0.0.0.0", Some(9), env(&[])).unwrap();
        assert_eq!(
            got,
            ResolvedListen {
                host: "localhost".into(),
                port: 9
            }
        );
    }

    /// Every short text over the characters that matter (and a multi-byte one) expands,
    /// checks and lists its variables without panicking.
    #[test]
    fn no_text_panics() {
        let alphabet = ['$', '{', '}', ':', '-', 'A', '\n', 'é'];
        let mut texts = vec![String::new()];
        for _ in 0..6 {
            let mut longer = Vec::new();
            for t in &texts {
                for c in alphabet {
                    let mut n = t.clone();
                    n.push(c);
                    longer.push(n);
                }
            }
            for t in &longer {
                let _ = expand(t, |_| Some("v".into()));
                let _ = expand(t, |_| None);
                let _ = check(t);
                let _ = variables(t);
            }
            texts = longer;
        }
    }

    #[test]
    fn urls_resolve_or_name_the_variable() {
        let urls = vec!["http://${BACKEND:-b}:80/x".to_string(), "${U}".to_string()];
        let got = resolve_urls(&urls, "serviceEndpoints.s", env(&[("U", "http://u")])).unwrap();
        assert_eq!(got, ["http://b:80/x", "http://u"]);
        let err = resolve_urls(&urls, "serviceEndpoints.s", env(&[])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("serviceEndpoints.s: the environment variable U"));
    }
}
