//! Kargo's consumers files, read without running JavaScript:
//!
//! - the flat `consumers.config.json`: `{scopes: [...], users: {<user>: {<app>: {type, keyId,
//!   keySecret, password, scopes}}}}` (the credential's fields on the app itself);
//! - the nested `consumers.config.js`: `module.exports = {scopes: [...], users: {<user>: {<app>:
//!   {scopes: [...], credential: {type, password | keyId, keySecret}}}}}`.
//!
//! The `.js` file is read by a small reader of JavaScript object literals (strings in either
//! quote, unquoted keys, trailing commas, comments); anything else (a variable, a call,
//! `process.env`) is refused with its line, never evaluated. Errors and warnings carry
//! `file:line`.

use std::path::Path;

/// A consumers file, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumersFile {
    /// The scopes to exist.
    pub scopes: Vec<String>,
    /// The users, in file order.
    pub users: Vec<UserSpec>,
    /// What was read with a warning (`file:line: message`).
    pub warnings: Vec<String>,
}

/// A user of the file (created with its `username` only, as Kargo's populate does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Its username.
    pub username: String,
    /// Its applications, in file order.
    pub apps: Vec<AppSpec>,
    /// `file:line`.
    pub at: String,
}

/// An application of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Its name (unique per user).
    pub name: String,
    /// Its scopes: the app's `scopes` property (Kargo's `scopes` policy) and its credential's.
    pub scopes: Vec<String>,
    /// Its credential, if the file gives one.
    pub credential: Option<CredentialSpec>,
    /// `file:line`.
    pub at: String,
}

/// A credential of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSpec {
    /// `basic-auth`, `key-auth`, `jwt` or `oauth2`.
    pub kind: String,
    /// key-auth, jwt: the key id (generated when absent).
    pub key_id: Option<String>,
    /// key-auth, jwt: the secret (generated when absent).
    pub key_secret: Option<String>,
    /// basic-auth (`password`), oauth2 (`secret`): a password, or a bcrypt hash kept as is.
    pub password: Option<String>,
    /// `file:line`.
    pub at: String,
}

/// A file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Its content is not a consumers file.
    #[error("{0}")]
    Invalid(String),
}

/// The credential types Express Gateway knows.
const TYPES: [&str; 4] = ["basic-auth", "key-auth", "jwt", "oauth2"];

/// Reads `path` (JSON, or a `module.exports = {…}` module).
pub fn read(path: &Path) -> Result<ConsumersFile, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses the text of a consumers file named `name` (for messages).
pub fn parse(text: &str, name: &str) -> Result<ConsumersFile, FileError> {
    let mut reader = Reader {
        text: text.as_bytes(),
        pos: 0,
        name,
    };
    reader.skip_space()?;
    let exported = if reader.rest().starts_with(b"module.exports") {
        reader.pos += "module.exports".len();
        reader.skip_space()?;
        if reader.peek() != Some(b'=') {
            return Err(reader.error("expected `=` after module.exports"));
        }
        reader.pos += 1;
        true
    } else {
        false
    };
    let value = reader.value()?;
    reader.skip_space()?;
    if exported && reader.peek() == Some(b';') {
        reader.pos += 1;
        reader.skip_space()?;
    }
    if reader.peek().is_some() {
        return Err(reader.error(if exported {
            "only `module.exports = {…}` is read: nothing may follow it"
        } else {
            "unexpected text after the object"
        }));
    }
    interpret(&value, name)
}

/// A parsed literal, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    line: usize,
    value: Literal,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Text(String),
    Number(String),
    Bool(bool),
    Null,
}

struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
    name: &'a str,
}

impl Reader<'_> {
    fn rest(&self) -> &[u8] {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn line(&self) -> usize {
        1 + self
            .text
            .get(..self.pos)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn error(&self, message: &str) -> FileError {
        FileError::Invalid(format!("{}:{}: {message}", self.name, self.line()))
    }

    fn skip_space(&mut self) -> Result<(), FileError> {
        loop {
            match self.peek() {
                Some(b) if b.is_ascii_whitespace() => self.pos += 1,
                Some(b'/') if self.rest().starts_with(b"//") => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                Some(b'/') if self.rest().starts_with(b"/*") => {
                    let start = self.line();
                    match self.rest().windows(2).position(|w| w == b"*/") {
                        Some(end) => self.pos += end + 2,
                        None => {
                            return Err(FileError::Invalid(format!(
                                "{}:{start}: unterminated comment",
                                self.name
                            )))
                        }
                    }
                }
                // A UTF-8 byte-order mark.
                Some(0xEF) if self.rest().starts_with(&[0xEF, 0xBB, 0xBF]) => self.pos += 3,
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self) -> Result<Node, FileError> {
        self.skip_space()?;
        let line = self.line();
        let value = match self.peek() {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(quote @ (b'"' | b'\'')) => Literal::Text(self.string(quote)?),
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => Literal::Number(self.number()),
            Some(b) if is_ident_start(b) => {
                let word = self.identifier();
                match word.as_str() {
                    "true" => Literal::Bool(true),
                    "false" => Literal::Bool(false),
                    "null" | "undefined" => Literal::Null,
                    other => {
                        return Err(FileError::Invalid(format!(
                            "{}:{line}: `{other}` is JavaScript, not a literal value: only literals are read (the file is never run)",
                            self.name
                        )))
                    }
                }
            }
            Some(b'`') => {
                return Err(self.error(
                    "template strings are not read: use '…' or \"…\" (the file is never run)",
                ))
            }
            Some(_) => return Err(self.error("expected a value")),
            None => return Err(self.error("unexpected end of file")),
        };
        self.skip_space()?;
        if let Some(b) = self.peek() {
            if !matches!(b, b',' | b'}' | b']' | b';') {
                return Err(self.error(
                    "expected `,` or the end of the object or list (expressions are not read: the file is never run)",
                ));
            }
        }
        Ok(Node { line, value })
    }

    fn object(&mut self) -> Result<Literal, FileError> {
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.skip_space()?;
            let key = match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Literal::Object(members));
                }
                Some(quote @ (b'"' | b'\'')) => self.string(quote)?,
                Some(b) if is_ident_start(b) || b.is_ascii_digit() => self.identifier(),
                Some(_) => return Err(self.error("expected a key or `}`")),
                None => return Err(self.error("unexpected end of file in an object")),
            };
            self.skip_space()?;
            if self.peek() != Some(b':') {
                return Err(self.error(&format!("expected `:` after the key {key:?}")));
            }
            self.pos += 1;
            let value = self.value()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(FileError::Invalid(format!(
                    "{}:{}: the key {key:?} appears twice in this object",
                    self.name, value.line
                )));
            }
            members.push((key, value));
            self.skip_space()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Literal, FileError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Literal::Array(items));
            }
            if self.peek().is_none() {
                return Err(self.error("unexpected end of file in a list"));
            }
            items.push(self.value()?);
            self.skip_space()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, FileError> {
        let start_line = self.line();
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(FileError::Invalid(format!(
                    "{}:{start_line}: unterminated string",
                    self.name
                )));
            };
            self.pos += 1;
            match b {
                b if b == quote => break,
                b'\n' => {
                    return Err(FileError::Invalid(format!(
                        "{}:{start_line}: unterminated string",
                        self.name
                    )))
                }
                b'\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'0' => out.push(0),
                        b'\n' => {}
                        b'u' | b'x' => {
                            let len = if e == b'x' { 2 } else { 4 };
                            let code = self
                                .text
                                .get(self.pos..self.pos + len)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error("invalid escape in a string"))?;
                            self.pos += len;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("a string is not valid UTF-8"))
    }

    fn number(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        {
            self.pos += 1;
        }
        String::from_utf8_lossy(self.text.get(start..self.pos).unwrap_or_default()).into_owned()
    }

    fn identifier(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| is_ident_start(b) || b.is_ascii_digit())
        {
            self.pos += 1;
        }
        String::from_utf8_lossy(self.text.get(start..self.pos).unwrap_or_default()).into_owned()
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn interpret(root: &Node, name: &str) -> Result<ConsumersFile, FileError> {
    let at = |node: &Node| format!("{name}:{}", node.line);
    let bad = |node: &Node, message: String| FileError::Invalid(format!("{}: {message}", at(node)));
    let Literal::Object(members) = &root.value else {
        return Err(bad(
            root,
            "a consumers file is an object {scopes, users}".into(),
        ));
    };
    let mut file = ConsumersFile::default();
    for (key, node) in members {
        match key.as_str() {
            "scopes" => file.scopes = strings(node, "scopes", &bad)?,
            "users" => {
                let Literal::Object(users) = &node.value else {
                    return Err(bad(
                        node,
                        "users must be an object {<username>: {<app>: …}}".into(),
                    ));
                };
                for (username, user) in users {
                    let Literal::Object(apps) = &user.value else {
                        return Err(bad(
                            user,
                            format!("user {username:?} must be an object {{<app name>: …}}"),
                        ));
                    };
                    let mut spec = UserSpec {
                        username: username.clone(),
                        apps: Vec::new(),
                        at: at(user),
                    };
                    for (app_name, app) in apps {
                        spec.apps
                            .push(read_app(app_name, app, &at, &bad, &mut file.warnings)?);
                    }
                    file.users.push(spec);
                }
            }
            other => file.warnings.push(format!(
                "{}: key {other:?} is not read (a consumers file has scopes and users)",
                at(node)
            )),
        }
    }
    Ok(file)
}

type Bad<'a> = dyn Fn(&Node, String) -> FileError + 'a;

fn read_app(
    name: &str,
    node: &Node,
    at: &dyn Fn(&Node) -> String,
    bad: &Bad<'_>,
    warnings: &mut Vec<String>,
) -> Result<AppSpec, FileError> {
    let Literal::Object(fields) = &node.value else {
        return Err(bad(node, format!("application {name:?} must be an object")));
    };
    let mut app = AppSpec {
        name: name.to_string(),
        scopes: Vec::new(),
        credential: None,
        at: at(node),
    };
    // The nested format keeps the credential under `credential`; the flat one on the app.
    let nested = fields.iter().find(|(k, _)| k == "credential");
    let (credential_fields, credential_node): (&[(String, Node)], &Node) = match nested {
        Some((_, c)) => match &c.value {
            Literal::Object(inner) => (inner.as_slice(), c),
            _ => return Err(bad(c, format!("{name}.credential must be an object"))),
        },
        None => (fields.as_slice(), node),
    };
    for (key, value) in fields {
        match key.as_str() {
            "scopes" => app.scopes = strings(value, &format!("{name}.scopes"), bad)?,
            "credential" => {}
            "type" | "keyId" | "keySecret" | "password" | "secret" if nested.is_none() => {}
            other => warnings.push(format!("{}: {name}.{other} is not read", at(value))),
        }
    }
    let field = |key: &str| -> Result<Option<String>, FileError> {
        match credential_fields.iter().find(|(k, _)| k == key) {
            None => Ok(None),
            Some((
                _,
                Node {
                    value: Literal::Null,
                    ..
                },
            )) => Ok(None),
            Some((
                _,
                Node {
                    value: Literal::Text(s),
                    ..
                },
            )) => Ok(Some(s.clone())),
            Some((
                _,
                Node {
                    value: Literal::Number(n),
                    ..
                },
            )) => Ok(Some(n.clone())),
            Some((_, other)) => Err(bad(other, format!("{name}: {key} must be a string"))),
        }
    };
    if nested.is_some() {
        for (key, value) in credential_fields {
            if !matches!(
                key.as_str(),
                "type" | "keyId" | "keySecret" | "password" | "secret" | "scopes"
            ) {
                warnings.push(format!(
                    "{}: {name}.credential.{key} is not read",
                    at(value)
                ));
            }
        }
    }
    let Some(mut kind) = field("type")? else {
        if nested.is_some() {
            return Err(bad(
                credential_node,
                format!("{name}.credential has no type (basic-auth, key-auth, jwt or oauth2)"),
            ));
        }
        return Ok(app);
    };
    if kind == "auth-key" {
        warnings.push(format!(
            "{}: credential type \"auth-key\" of {name} read as \"key-auth\" (Express Gateway's name)",
            at(credential_node)
        ));
        kind = "key-auth".into();
    }
    if !TYPES.contains(&kind.as_str()) {
        return Err(bad(
            credential_node,
            format!(
                "{name}: unknown credential type {kind:?} (basic-auth, key-auth, jwt or oauth2)"
            ),
        ));
    }
    let keyed = kind == "key-auth" || kind == "jwt";
    let password = if kind == "oauth2" {
        field("secret")?.or(field("password")?)
    } else {
        field("password")?
    };
    if keyed && password.is_some() {
        return Err(bad(
            credential_node,
            format!("{name}: a {kind} credential takes keyId and keySecret, not a password"),
        ));
    }
    if !keyed && (field("keyId")?.is_some() || field("keySecret")?.is_some()) {
        return Err(bad(
            credential_node,
            format!("{name}: a {kind} credential takes a password, not keyId/keySecret"),
        ));
    }
    app.credential = Some(CredentialSpec {
        kind,
        key_id: if keyed { field("keyId")? } else { None },
        key_secret: if keyed { field("keySecret")? } else { None },
        password,
        at: at(credential_node),
    });
    Ok(app)
}

fn strings(node: &Node, what: &str, bad: &Bad<'_>) -> Result<Vec<String>, FileError> {
    let Literal::Array(items) = &node.value else {
        return Err(bad(node, format!("{what} must be a list of names")));
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match &item.value {
            Literal::Text(s) if !s.is_empty() => {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            _ => {
                return Err(bad(
                    item,
                    format!("{what}: each scope is a non-empty string"),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
