//! A recursive-descent parser for the supported subset of JavaScript expressions
//! (ECMA-262 §12 lexical grammar for literals, §13 expressions). Lookups are resolved to a
//! [`Path`] here, so evaluation does no name matching and anything we cannot evaluate is refused
//! before the gateway is built.

use http::HeaderName;

use super::{ExpressionError, Node, Path, Segment, TemplatePart};

/// How deep parentheses, operators and templates may nest (a bound on recursion).
const MAX_DEPTH: usize = 64;

/// The globals an expression may name (Express Gateway runs expressions with `egContext` as the
/// global object, so its properties are globals too).
const GLOBALS: &str = "req, res, egContext, consumer, requestID, apiEndpoint";
const KNOWN_GLOBALS: [&str; 6] = [
    "req",
    "res",
    "egContext",
    "consumer",
    "requestID",
    "apiEndpoint",
];

pub(super) struct Parser<'s> {
    src: &'s str,
    pos: usize,
    depth: usize,
    /// Subtracted from offsets in errors (the template wrapper's opening backtick).
    shift: usize,
}

type Result<T> = std::result::Result<T, ExpressionError>;

impl<'s> Parser<'s> {
    pub(super) fn new(src: &'s str, shift: usize) -> Self {
        Self {
            src,
            pos: 0,
            depth: 0,
            shift,
        }
    }

    pub(super) fn parse_all(mut self) -> Result<Node> {
        self.skip_space()?;
        if self.pos >= self.src.len() {
            return Err(self.error(self.pos, "the expression is empty"));
        }
        let node = self.expression()?;
        self.skip_space()?;
        if self.pos < self.src.len() {
            return Err(self.unexpected());
        }
        Ok(node)
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ExpressionError {
        let offset = offset.saturating_sub(self.shift);
        let original = self.src.get(self.shift..).unwrap_or("");
        let column = original
            .get(..offset.min(original.len()))
            .map_or(offset, |s| s.chars().count())
            + 1;
        ExpressionError {
            offset,
            column,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) -> Result<()> {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == '\u{feff}' {
                self.pos += c.len_utf8();
            } else if self.rest().starts_with("//") || self.rest().starts_with("/*") {
                return Err(self.error(self.pos, "comments are not supported"));
            } else {
                break;
            }
        }
        Ok(())
    }

    /// An error for whatever stands at the current position.
    fn unexpected(&self) -> ExpressionError {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return self.error(self.pos, "the expression ends too early");
        };
        let two = rest.get(..2).unwrap_or("");
        let message = match c {
            '(' => "function calls are not supported (only lookups such as req.headers['x-name'])"
                .to_string(),
            '=' if !rest.starts_with("==") => {
                "assignments are not supported: expressions may only read values".to_string()
            }
            ';' => "statements are not supported: write a single expression".to_string(),
            ',' => "the comma operator is not supported".to_string(),
            '-' | '*' | '/' | '%' | '<' | '>' | '&' | '|' | '^' | '~' => {
                let op: String = rest
                    .chars()
                    .take_while(|c| "-*/%<>&|^~=".contains(*c))
                    .collect();
                format!(
                    "the operator `{op}` is not supported (supported: + || && ?? ?: === !== == != !)"
                )
            }
            _ if two == "++" || two == "--" => {
                "increment and decrement are not supported".to_string()
            }
            _ => format!("unexpected `{c}`"),
        };
        self.error(self.pos, message)
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(self.pos, "the expression nests too deeply"));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Node> {
        self.enter()?;
        let node = self.conditional();
        self.depth -= 1;
        node
    }

    fn conditional(&mut self) -> Result<Node> {
        let test = self.nullish_or()?;
        self.skip_space()?;
        if self.rest().starts_with('?') && !self.rest().starts_with("??") && !self.optional_dot() {
            self.pos += 1;
            let then = self.expression()?;
            self.skip_space()?;
            if !self.eat(":") {
                return Err(self.error(self.pos, "expected `:` of a conditional `a ? b : c`"));
            }
            let otherwise = self.expression()?;
            return Ok(Node::Conditional(
                Box::new(test),
                Box::new(then),
                Box::new(otherwise),
            ));
        }
        Ok(test)
    }

    /// `??` (cannot be mixed with `||`/`&&` without parentheses in JavaScript; we are lenient and
    /// give it the same level as `||`).
    fn nullish_or(&mut self) -> Result<Node> {
        let mut left = self.and()?;
        loop {
            self.skip_space()?;
            if self.eat("||") {
                let right = self.and()?;
                left = Node::Or(Box::new(left), Box::new(right));
            } else if self.eat("??") {
                let right = self.and()?;
                left = Node::Nullish(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn and(&mut self) -> Result<Node> {
        let mut left = self.equality()?;
        loop {
            self.skip_space()?;
            if self.eat("&&") {
                let right = self.equality()?;
                left = Node::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn equality(&mut self) -> Result<Node> {
        let mut left = self.additive()?;
        loop {
            self.skip_space()?;
            let (strict, negate) = if self.eat("===") {
                (true, false)
            } else if self.eat("!==") {
                (true, true)
            } else if self.eat("==") {
                (false, false)
            } else if self.eat("!=") {
                (false, true)
            } else {
                return Ok(left);
            };
            let right = self.additive()?;
            left = Node::Equals {
                strict,
                negate,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
    }

    fn additive(&mut self) -> Result<Node> {
        let mut left = self.unary()?;
        loop {
            self.skip_space()?;
            if self.rest().starts_with('+') && !self.rest().starts_with("++") {
                self.pos += 1;
                let right = self.unary()?;
                left = Node::Add(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Node> {
        self.skip_space()?;
        let rest = self.rest();
        if rest.starts_with("++") || rest.starts_with("--") {
            return Err(self.unexpected());
        }
        let op = match rest.chars().next() {
            Some(c @ ('!' | '-' | '+')) => c,
            _ => return self.postfix(),
        };
        self.pos += 1;
        self.enter()?;
        let operand = self.unary();
        self.depth -= 1;
        let operand = Box::new(operand?);
        Ok(match op {
            '!' => Node::Not(operand),
            '-' => Node::Negate(operand),
            _ => Node::ToNumber(operand),
        })
    }

    /// `?.` that is optional chaining, not `? .5 : 1`.
    fn optional_dot(&self) -> bool {
        let b = self.rest().as_bytes();
        b.starts_with(b"?.") && !b.get(2).is_some_and(u8::is_ascii_digit)
    }

    fn postfix(&mut self) -> Result<Node> {
        self.skip_space()?;
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.unexpected());
        };
        let primary = if c == '(' {
            self.pos += 1;
            let inner = self.expression()?;
            self.skip_space()?;
            if !self.eat(")") {
                return Err(self.error(self.pos, "expected `)`"));
            }
            inner
        } else if c == '\'' || c == '"' {
            Node::Str(self.string_literal(c)?.into())
        } else if c == '`' {
            self.template()?
        } else if c.is_ascii_digit()
            || (c == '.' && self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            Node::Number(self.number()?)
        } else if is_identifier_start(c) {
            let name = self.identifier();
            return self.lookup(name, start);
        } else {
            return Err(self.unexpected());
        };
        self.skip_space()?;
        if self.rest().starts_with('.') || self.rest().starts_with('[') || self.optional_dot() {
            return Err(self.error(
                self.pos,
                format!("properties can only be read from the globals {GLOBALS}"),
            ));
        }
        if self.rest().starts_with('(') {
            return Err(self.error(self.pos, "function calls are not supported"));
        }
        Ok(primary)
    }

    fn identifier(&mut self) -> &'s str {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !is_identifier_part(*c))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += len;
        &rest[..len]
    }

    /// A global and the property reads after it: resolved to a literal or a [`Path`].
    fn lookup(&mut self, name: &'s str, start: usize) -> Result<Node> {
        let literal = match name {
            "true" => Some(Node::Bool(true)),
            "false" => Some(Node::Bool(false)),
            "null" => Some(Node::Null),
            "undefined" => Some(Node::Undefined),
            "NaN" => Some(Node::Number(f64::NAN)),
            "Infinity" => Some(Node::Number(f64::INFINITY)),
            _ => None,
        };
        if literal.is_none() && !KNOWN_GLOBALS.contains(&name) {
            return match resolve_global(name, &[]) {
                Err((_, message)) => Err(self.error(start, message)),
                Ok(_) => Err(self.error(start, format!("unknown name `{name}`"))),
            };
        }
        let mut segments = Vec::new();
        loop {
            self.skip_space()?;
            let at = self.pos;
            let optional = self.optional_dot();
            if optional {
                self.pos += 2;
            }
            if self.eat("[") {
                self.enter()?;
                let key = self.expression();
                self.depth -= 1;
                let key = key?;
                self.skip_space()?;
                if !self.eat("]") {
                    return Err(self.error(self.pos, "expected `]`"));
                }
                let key = match key {
                    Node::Str(s) => s.into_string(),
                    Node::Number(n) => super::value::number_to_string(n),
                    Node::Template(parts) if parts.iter().all(|p| matches!(p, TemplatePart::Text(_))) => parts
                        .iter()
                        .map(|p| match p {
                            TemplatePart::Text(t) => t.as_ref(),
                            TemplatePart::Expr(_) => "",
                        })
                        .collect(),
                    _ => {
                        return Err(self.error(
                            at,
                            "computed property names must be string literals, as in req.headers['x-name']",
                        ))
                    }
                };
                segments.push(Segment {
                    name: key.into(),
                    optional,
                    offset: at,
                });
            } else if optional || self.eat(".") {
                self.skip_space()?;
                let name_at = self.pos;
                match self.peek() {
                    Some(c) if is_identifier_start(c) => {}
                    _ => return Err(self.error(name_at, "expected a property name")),
                }
                let name = self.identifier();
                segments.push(Segment {
                    name: name.into(),
                    optional,
                    offset: name_at,
                });
            } else {
                break;
            }
        }
        self.skip_space()?;
        if self.rest().starts_with('(') {
            let what = segments.last().map_or(name, |s| &s.name);
            let hint = match what {
                "get" | "header" => ": read req.headers['name'] instead",
                _ => "",
            };
            return Err(self.error(
                self.pos,
                format!("function calls are not supported (`{what}(...)`){hint}"),
            ));
        }
        if self.rest().starts_with('=') && !self.rest().starts_with("==")
            || self.rest().starts_with("++")
            || self.rest().starts_with("--")
            || ["+=", "-=", "*=", "/=", "%=", "||=", "&&=", "??="]
                .iter()
                .any(|op| self.rest().starts_with(op))
        {
            return Err(self.error(
                self.pos,
                "assignments are not supported: expressions may only read values",
            ));
        }
        if let Some(literal) = literal {
            if let Some(segment) = segments.first() {
                return Err(self.error(
                    segment.offset,
                    format!("reading a property of `{name}` is not supported"),
                ));
            }
            return Ok(literal);
        }
        resolve_global(name, &segments)
            .map(Node::Path)
            .map_err(|(offset, message)| self.error(offset.unwrap_or(start), message))
    }

    fn number(&mut self) -> Result<f64> {
        let start = self.pos;
        let rest = self.rest();
        let b = rest.as_bytes();
        let radix = match (b.first(), b.get(1).map(u8::to_ascii_lowercase)) {
            (Some(b'0'), Some(b'x')) => Some(16),
            (Some(b'0'), Some(b'o')) => Some(8),
            (Some(b'0'), Some(b'b')) => Some(2),
            _ => None,
        };
        let (value, len) = if let Some(radix) = radix {
            let digits: &str = &rest[2..];
            let n = digits
                .find(|c: char| !c.is_digit(radix))
                .unwrap_or(digits.len());
            if n == 0 {
                return Err(self.error(start, "a number needs digits after its prefix"));
            }
            let mut value = 0.0f64;
            for c in digits[..n].chars() {
                value = value * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0));
            }
            (value, n + 2)
        } else {
            let mut i = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i > 1 && b[0] == b'0' {
                return Err(self.error(
                    start,
                    "legacy octal numbers (a leading 0) are not supported",
                ));
            }
            if i < b.len() && b[i] == b'.' {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                let digits = j;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j == digits {
                    return Err(self.error(start, "a number's exponent needs digits"));
                }
                i = j;
            }
            let value = rest[..i]
                .parse::<f64>()
                .map_err(|_| self.error(start, "not a number"))?;
            (value, i)
        };
        self.pos += len;
        match self.peek() {
            Some('n') => Err(self.error(self.pos, "BigInt literals are not supported")),
            Some('_') => Err(self.error(self.pos, "numeric separators are not supported")),
            Some(c) if is_identifier_part(c) => {
                Err(self.error(self.pos, "an identifier cannot start right after a number"))
            }
            _ => Ok(value),
        }
    }

    /// `'…'` or `"…"` with JavaScript escapes (§12.9.4).
    fn string_literal(&mut self, quote: char) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, "this string is not closed"));
            };
            if c == quote {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\\' => self.escape(&mut out, false)?,
                '\n' | '\r' => {
                    return Err(self.error(
                        self.pos,
                        "a line break inside a quoted string (use \\n, or a template literal)",
                    ))
                }
                _ => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// One escape sequence at `self.pos` (the backslash), decoded into `out`.
    fn escape(&mut self, out: &mut String, template: bool) -> Result<()> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.error(start, "an escape sequence ends the text"));
        };
        self.pos += c.len_utf8();
        match c {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => out.push('\0'),
            '1'..='9' | '0' => {
                return Err(self.error(
                    start,
                    if template {
                        "octal escapes are not allowed in template literals"
                    } else {
                        "legacy octal escapes are not supported"
                    },
                ))
            }
            '\r' => {
                self.eat("\n");
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            'x' => {
                let hex = self.rest().get(..2).unwrap_or("");
                let code = (hex.len() == 2)
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| self.error(start, "\\x needs two hexadecimal digits"))?;
                self.pos += 2;
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            'u' => {
                let unit = self.unicode_escape(start)?;
                if (0xd800..0xdc00).contains(&unit) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    let low_at = self.pos;
                    if self.eat("\\u") {
                        let low = self.unicode_escape(low_at)?;
                        if (0xdc00..0xe000).contains(&low) {
                            let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            return Ok(());
                        }
                    }
                    return Err(self.error(start, "a lone surrogate escape is not supported"));
                }
                match char::from_u32(unit) {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(self.error(start, "a lone surrogate escape is not supported"))
                    }
                }
            }
            other => out.push(other),
        }
        Ok(())
    }

    /// The code after `\u`: four hexadecimal digits or `{…}`.
    fn unicode_escape(&mut self, start: usize) -> Result<u32> {
        let bad = |p: &Self| p.error(start, "\\u needs four hexadecimal digits or {code point}");
        if self.eat("{") {
            let rest = self.rest();
            let end = rest.find('}').ok_or_else(|| bad(self))?;
            let code = u32::from_str_radix(&rest[..end], 16).map_err(|_| bad(self))?;
            if end == 0 || code > 0x10ffff {
                return Err(bad(self));
            }
            self.pos += end + 1;
            Ok(code)
        } else {
            let hex = self.rest().get(..4).ok_or_else(|| bad(self))?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(self));
            }
            self.pos += 4;
            u32::from_str_radix(hex, 16).map_err(|_| bad(self))
        }
    }

    /// A template literal (§13.2.8) at `self.pos` (the opening backtick).
    fn template(&mut self) -> Result<Node> {
        let start = self.pos;
        self.pos += 1;
        self.enter()?;
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, "this template literal is not closed (missing `)"));
            };
            match c {
                '`' => {
                    self.pos += 1;
                    break;
                }
                '\\' => self.escape(&mut text, true)?,
                '$' if self.rest().starts_with("${") => {
                    self.pos += 2;
                    if !text.is_empty() {
                        parts.push(TemplatePart::Text(std::mem::take(&mut text).into()));
                    }
                    let inner = self.expression()?;
                    self.skip_space()?;
                    if !self.eat("}") {
                        return Err(
                            if self.pos >= self.src.len() || self.rest().starts_with('`') {
                                self.error(self.pos, "a `${` substitution is not closed with `}`")
                            } else {
                                self.unexpected()
                            },
                        );
                    }
                    parts.push(TemplatePart::Expr(inner));
                }
                '\r' => {
                    // Template literals normalise CR LF and CR to LF.
                    self.pos += 1;
                    self.eat("\n");
                    text.push('\n');
                }
                _ => {
                    text.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        self.depth -= 1;
        if !text.is_empty() || parts.is_empty() {
            parts.push(TemplatePart::Text(text.into()));
        }
        Ok(Node::Template(parts))
    }
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_identifier_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

type Resolved = std::result::Result<Path, (Option<usize>, String)>;

/// What a global with property reads names (Express Gateway `lib/gateway/context.js`: the
/// context object is the global, with `req`, `res`, `consumer` (= `req.user`), `requestID` and
/// `apiEndpoint`; Express 4 `req` properties).
fn resolve_global(name: &str, segments: &[Segment]) -> Resolved {
    match name {
        "req" => resolve_req(segments),
        "res" => resolve_res(segments),
        "egContext" => resolve_context(segments),
        "consumer" => Ok(Path::Consumer(segments.to_vec())),
        "requestID" => leaf(Path::RequestId, "requestID", segments),
        "apiEndpoint" => resolve_endpoint(segments),
        "this" => Err((None, "`this` is not supported: name egContext instead".into())),
        "typeof" | "void" | "delete" | "new" | "in" | "instanceof" | "function" | "var" | "let"
        | "const" | "return" | "if" | "for" | "while" | "await" | "yield" | "class" => Err((
            None,
            format!("`{name}` is not supported: expressions are lookups, literals and + || && ?: === !=="),
        )),
        _ => Err((
            None,
            format!("unknown name `{name}`: expressions can only read {GLOBALS}"),
        )),
    }
}

fn resolve_context(segments: &[Segment]) -> Resolved {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(Path::Object);
    };
    match &*first.name {
        "req" | "res" | "egContext" | "consumer" | "requestID" | "apiEndpoint" => {
            resolve_global(&first.name, rest)
        }
        other => Err((
            Some(first.offset),
            format!("egContext.{other} is not supported (egContext has {GLOBALS})"),
        )),
    }
}

fn leaf(path: Path, what: &str, rest: &[Segment]) -> Resolved {
    match rest.first() {
        None => Ok(path),
        Some(s) => Err((
            Some(s.offset),
            format!(
                "reading `{}` of {what} is not supported (it is a plain value)",
                s.name
            ),
        )),
    }
}

fn resolve_req(segments: &[Segment]) -> Resolved {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(Path::Object);
    };
    let what = format!("req.{}", first.name);
    let path = match &*first.name {
        "headers" => {
            return match rest.split_first() {
                None => Ok(Path::Object),
                Some((header, more)) => leaf(
                    Path::Header(HeaderName::from_bytes(header.name.as_bytes()).ok()),
                    &format!("req.headers.{}", header.name),
                    more,
                ),
            }
        }
        "query" => {
            return match rest.split_first() {
                None => Ok(Path::Object),
                Some((param, more)) => leaf(
                    Path::Query(param.name.clone()),
                    &format!("req.query.{}", param.name),
                    more,
                ),
            }
        }
        "user" => return Ok(Path::Consumer(rest.to_vec())),
        "egContext" => return resolve_context(rest),
        "ip" => Path::Ip,
        "hostname" | "host" => Path::Hostname,
        "method" => Path::Method,
        "url" => Path::Url,
        "originalUrl" => Path::OriginalUrl,
        "path" => Path::Pathname,
        "protocol" => Path::Protocol,
        "secure" => Path::Secure,
        other => {
            return Err((
                Some(first.offset),
                format!(
                    "req.{other} is not supported (supported: req.headers.<name>, req.query.<name>, req.user.<field>, req.ip, req.hostname, req.method, req.url, req.originalUrl, req.path, req.protocol, req.secure)"
                ),
            ))
        }
    };
    leaf(path, &what, rest)
}

fn resolve_res(segments: &[Segment]) -> Resolved {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(Path::Object);
    };
    match &*first.name {
        "statusCode" => leaf(Path::StatusCode, "res.statusCode", rest),
        other => Err((
            Some(first.offset),
            format!("res.{other} is not supported (supported: res.statusCode)"),
        )),
    }
}

fn resolve_endpoint(segments: &[Segment]) -> Resolved {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(Path::Object);
    };
    match &*first.name {
        "apiEndpointName" => leaf(Path::EndpointName, "apiEndpoint.apiEndpointName", rest),
        "scopes" => leaf(Path::Scopes, "apiEndpoint.scopes", rest),
        other => Err((
            Some(first.offset),
            format!(
                "apiEndpoint.{other} is not supported (supported: apiEndpoint.apiEndpointName, apiEndpoint.scopes)"
            ),
        )),
    }
}
