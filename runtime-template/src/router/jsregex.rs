//! JavaScript regular expressions (as Express Gateway writes them: `pathRegex`, `hostRegex`, the
//! `pathMatch` condition, and the expressions path-to-regexp 0.1.x generates) run on
//! `regex-lite`, with JavaScript's meaning.
//!
//! A pattern is read with the grammar of ECMAScript RegExp *without* the `u` flag, including the
//! web-compatibility rules of ECMA-262 Annex B.1.2 (a `{`, `}` or `]` that starts nothing is a
//! literal; `\a` means `a`), and rewritten into an equivalent `regex-lite` expression:
//! - `.` becomes "any character but `\n`, `\r`, U+2028, U+2029" (ECMA-262 §22.2.2.7, no `s` flag);
//! - `\d`, `\w`, `\s` (and negations) become explicit classes with JavaScript's sets (`\s` is the
//!   Unicode white space and line terminators of §22.2.2.9, wider than `regex-lite`'s);
//! - literals and class members are written as `\x{..}` escapes, so no character can take a
//!   meaning in `regex-lite` that it did not have in JavaScript (`[` inside a class, `&&`, ...);
//! - named groups become numbered groups (matching never depends on names).
//!
//! Matching is a yes/no question for every caller (plus which groups took part, for
//! Express's parameter decoding), and every construct kept here denotes the same set of strings
//! in both engines, so the answers agree. `regex-lite` runs in time linear in the haystack
//! (no backtracking), where V8 may backtrack.
//!
//! What `regex-lite` cannot express is refused with [`JsRegexError::Unsupported`]: lookahead and
//! lookbehind, backreferences (and Annex B octal escapes, which share their spelling), `\k`,
//! lone surrogates, and — under the case-insensitive flag — non-ASCII characters that have case
//! (JavaScript folds them by `toUpperCase`, `regex-lite` only ASCII). The toolkit calls [`JsRegex::new`] at
//! build time, so such a pattern is a build error naming the file, never a runtime surprise.

use std::fmt::Write as _;

/// A JavaScript pattern that cannot be used, with the byte offset in the pattern where the
/// problem starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsRegexError {
    /// Valid JavaScript that has no equivalent here.
    #[error("regular expression '{pattern}': {what} (at offset {at}) is not supported; rewrite the expression without it")]
    Unsupported {
        /// The pattern as written.
        pattern: String,
        /// Byte offset of the construct.
        at: usize,
        /// What the construct is.
        what: &'static str,
    },
    /// Not a valid JavaScript regular expression (Express Gateway would fail to start).
    #[error("regular expression '{pattern}' is invalid: {what} (at offset {at})")]
    Syntax {
        /// The pattern as written.
        pattern: String,
        /// Byte offset of the problem.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The translated expression exceeds the engine's limits (size, repetition counts).
    #[error("regular expression '{pattern}' is too large or repeats too often: {message}")]
    Engine {
        /// The pattern as written.
        pattern: String,
        /// The engine's message.
        message: String,
    },
}

/// A compiled JavaScript regular expression.
#[derive(Debug, Clone)]
pub struct JsRegex {
    source: String,
    regex: regex_lite::Regex,
}

impl JsRegex {
    /// `new RegExp(source)`: no flags (the `pathMatch` condition, `pathRegex`).
    pub fn new(source: &str) -> Result<Self, JsRegexError> {
        Self::with_flags(source, false)
    }

    /// `new RegExp(source, case_insensitive ? 'i' : '')`.
    pub fn with_flags(source: &str, case_insensitive: bool) -> Result<Self, JsRegexError> {
        let translated = translate(source, case_insensitive)?;
        let regex = regex_lite::RegexBuilder::new(&translated)
            .build()
            .map_err(|e| JsRegexError::Engine {
                pattern: source.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    /// The JavaScript source it was made from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `regexp.test(haystack)`: true when the expression matches anywhere in `haystack`
    /// (anchors only where the pattern has `^`/`$`).
    pub fn is_match(&self, haystack: &str) -> bool {
        self.regex.is_match(haystack)
    }

    /// When the expression matches, calls `each` with the text of every capturing group that
    /// took part in the match (group 1 first) and returns `Some(all)`, `all` being true when
    /// every call returned true; `None` when it does not match. Allocates a capture buffer:
    /// meant for the rare routes that need it.
    pub fn match_groups(&self, haystack: &str, mut each: impl FnMut(&str) -> bool) -> Option<bool> {
        let caps = self.regex.captures(haystack)?;
        let mut all = true;
        for group in caps.iter().skip(1).flatten() {
            all &= each(group.as_str());
        }
        Some(all)
    }
}

/// Translates a JavaScript pattern into `regex-lite` syntax (see the module documentation).
pub fn translate(source: &str, case_insensitive: bool) -> Result<String, JsRegexError> {
    let mut p = Parser {
        src: source,
        chars: source.char_indices().collect(),
        i: 0,
        out: String::with_capacity(source.len() * 2 + 8),
        fold: case_insensitive,
    };
    if case_insensitive {
        p.out.push_str("(?i)");
    }
    p.disjunction(0)?;
    if p.i < p.chars.len() {
        // Only an unmatched ')' stops the top level.
        return Err(p.syntax("unmatched ')'"));
    }
    Ok(p.out)
}

/// JavaScript `.` without the `s` flag: anything but the line terminators.
const LINE_TERMINATORS: &[(u32, u32)] = &[(0xA, 0xA), (0xD, 0xD), (0x2028, 0x2029)];
/// JavaScript `\s`: WhiteSpace and LineTerminator (ECMA-262 §12.2, §12.3).
const JS_SPACE: &[(u32, u32)] = &[
    (0x9, 0xD),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
];
const JS_DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
const JS_WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

/// The complement of sorted, disjoint ranges over all Unicode scalar values.
fn complement(set: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next = 0u32;
    for &(lo, hi) in set {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = hi + 1;
    }
    if next <= 0x10FFFF {
        out.push((next, 0x10FFFF));
    }
    out
}

/// Writes a class of code point ranges for `regex-lite`: sorted, surrogates cut out, ASCII
/// case variants added when `fold` (JavaScript's `i` without `u` folds ASCII only for ASCII
/// members, which is all this is used with), and flagged `(?-i:..)` so that `regex-lite` does
/// not fold it again (it cannot fold ranges).
fn push_class(out: &mut String, negated: bool, ranges: &[(u32, u32)], fold: bool) {
    let mut all: Vec<(u32, u32)> = ranges.to_vec();
    if fold {
        for &(lo, hi) in ranges {
            for (a, z, delta) in [(0x41u32, 0x5Au32, 0x20i64), (0x61, 0x7A, -0x20)] {
                let (l, h) = (lo.max(a), hi.min(z));
                if l <= h {
                    all.push(((l as i64 + delta) as u32, (h as i64 + delta) as u32));
                }
            }
        }
    }
    all.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in all {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    if fold {
        out.push_str("(?-i:");
    }
    if merged.is_empty() {
        // `[]` matches nothing, `[^]` everything.
        out.push_str(if negated { r"[\s\S]" } else { r"[^\s\S]" });
    } else {
        out.push('[');
        if negated {
            out.push('^');
        }
        for (lo, hi) in merged {
            // Surrogates are not characters: cut them out of the range.
            let parts = if lo < 0xD800 && hi > 0xDFFF {
                vec![(lo, 0xD7FF), (0xE000, hi)]
            } else if (0xD800..=0xDFFF).contains(&lo) && (0xD800..=0xDFFF).contains(&hi) {
                vec![]
            } else {
                vec![(
                    if (0xD800..=0xDFFF).contains(&lo) {
                        0xE000
                    } else {
                        lo
                    },
                    if (0xD800..=0xDFFF).contains(&hi) {
                        0xD7FF
                    } else {
                        hi
                    },
                )]
            };
            for (l, h) in parts {
                if l == h {
                    let _ = write!(out, r"\x{{{l:X}}}");
                } else {
                    let _ = write!(out, r"\x{{{l:X}}}-\x{{{h:X}}}");
                }
            }
        }
        out.push(']');
    }
    if fold {
        out.push(')');
    }
}

struct Parser<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: String,
    fold: bool,
}

/// One member of a class: a character or a predefined set.
enum ClassAtom {
    Char(char),
    Set(&'static [(u32, u32)], bool),
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|&(_, c)| c)
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |&(o, _)| o)
    }

    fn syntax(&self, what: &'static str) -> JsRegexError {
        JsRegexError::Syntax {
            pattern: self.src.to_owned(),
            at: self.offset(),
            what,
        }
    }

    fn unsupported(&self, what: &'static str) -> JsRegexError {
        JsRegexError::Unsupported {
            pattern: self.src.to_owned(),
            at: self.offset(),
            what,
        }
    }

    fn disjunction(&mut self, depth: usize) -> Result<(), JsRegexError> {
        if depth > 64 {
            return Err(self.unsupported("groups nested more than 64 deep"));
        }
        loop {
            match self.peek() {
                None => return Ok(()),
                Some(')') => return Ok(()),
                Some('|') => {
                    self.i += 1;
                    self.out.push('|');
                }
                Some(_) => self.term(depth)?,
            }
        }
    }

    fn term(&mut self, depth: usize) -> Result<(), JsRegexError> {
        let c = self.peek().unwrap_or('\0');
        let quantifiable = match c {
            '^' | '$' => {
                self.i += 1;
                self.out.push(c);
                false
            }
            '\\' if matches!(self.peek_at(1), Some('b' | 'B')) => {
                self.out.push('\\');
                self.out.push(self.peek_at(1).unwrap_or('b'));
                self.i += 2;
                false
            }
            '\\' => {
                self.i += 1;
                match self.atom_escape()? {
                    ClassAtom::Char(ch) => self.literal(ch)?,
                    ClassAtom::Set(set, negated) => {
                        push_class(&mut self.out, negated, set, self.fold)
                    }
                }
                true
            }
            '.' => {
                self.i += 1;
                push_class(&mut self.out, true, LINE_TERMINATORS, self.fold);
                true
            }
            '(' => {
                self.group(depth)?;
                true
            }
            '[' => {
                self.class()?;
                true
            }
            '*' | '+' | '?' => return Err(self.syntax("nothing to repeat")),
            '{' if self.braced_quantifier().is_some() => {
                return Err(self.syntax("nothing to repeat"))
            }
            _ => {
                // Annex B: '{', '}' and ']' that start nothing are literals.
                self.i += 1;
                self.literal(c)?;
                true
            }
        };
        if self.quantifier_follows() {
            if !quantifiable {
                return Err(self.syntax("nothing to repeat"));
            }
            self.quantifier();
        }
        Ok(())
    }

    fn quantifier_follows(&self) -> bool {
        matches!(self.peek(), Some('*' | '+' | '?'))
            || (self.peek() == Some('{') && self.braced_quantifier().is_some())
    }

    /// `{n}`, `{n,}`, `{n,m}` at the cursor: its length in chars.
    fn braced_quantifier(&self) -> Option<usize> {
        let mut k = 1;
        let digits = |k: &mut usize| {
            let start = *k;
            while matches!(self.peek_at(*k), Some('0'..='9')) {
                *k += 1;
            }
            *k > start
        };
        if !digits(&mut k) {
            return None;
        }
        if self.peek_at(k) == Some(',') {
            k += 1;
            digits(&mut k);
        }
        (self.peek_at(k) == Some('}')).then_some(k + 1)
    }

    fn quantifier(&mut self) {
        let len = match self.peek() {
            Some('{') => self.braced_quantifier().unwrap_or(1),
            _ => 1,
        };
        for _ in 0..len {
            if let Some(c) = self.peek() {
                self.out.push(c);
            }
            self.i += 1;
        }
        if self.peek() == Some('?') {
            self.out.push('?');
            self.i += 1;
        }
    }

    fn group(&mut self, depth: usize) -> Result<(), JsRegexError> {
        // at '('
        if self.peek_at(1) == Some('?') {
            match (self.peek_at(2), self.peek_at(3)) {
                (Some(':'), _) => {
                    self.i += 3;
                    self.out.push_str("(?:");
                }
                (Some('=' | '!'), _) | (Some('<'), Some('=' | '!')) => {
                    return Err(self.unsupported("a lookahead or lookbehind assertion"))
                }
                (Some('<'), _) => {
                    // Named group: keep it as a numbered one.
                    let mut k = 3;
                    while let Some(c) = self.peek_at(k) {
                        if c == '>' {
                            break;
                        }
                        if !(c.is_alphanumeric() || c == '_' || c == '$') {
                            return Err(self.syntax("invalid capture group name"));
                        }
                        k += 1;
                    }
                    if self.peek_at(k) != Some('>') || k == 3 {
                        return Err(self.syntax("invalid capture group name"));
                    }
                    self.i += k + 1;
                    self.out.push('(');
                }
                _ => return Err(self.syntax("invalid group")),
            }
        } else {
            self.i += 1;
            self.out.push('(');
        }
        self.disjunction(depth + 1)?;
        if self.peek() != Some(')') {
            return Err(self.syntax("unterminated group"));
        }
        self.i += 1;
        self.out.push(')');
        Ok(())
    }

    /// After a `\` outside or inside a class (the class-only `\b` and `\-` are handled by the
    /// caller).
    fn atom_escape(&mut self) -> Result<ClassAtom, JsRegexError> {
        let Some(c) = self.peek() else {
            return Err(self.syntax("'\\' at end of pattern"));
        };
        self.i += 1;
        Ok(match c {
            'd' => ClassAtom::Set(JS_DIGIT, false),
            'D' => ClassAtom::Set(JS_DIGIT, true),
            'w' => ClassAtom::Set(JS_WORD, false),
            'W' => ClassAtom::Set(JS_WORD, true),
            's' => ClassAtom::Set(JS_SPACE, false),
            'S' => ClassAtom::Set(JS_SPACE, true),
            't' => ClassAtom::Char('\t'),
            'n' => ClassAtom::Char('\n'),
            'v' => ClassAtom::Char('\u{B}'),
            'f' => ClassAtom::Char('\u{C}'),
            'r' => ClassAtom::Char('\r'),
            '0' if !matches!(self.peek(), Some('0'..='9')) => ClassAtom::Char('\0'),
            '0'..='9' => {
                self.i -= 1;
                return Err(self.unsupported("a backreference or octal escape"));
            }
            'k' => {
                self.i -= 1;
                return Err(self.unsupported("the escape \\k"));
            }
            'c' => match self.peek() {
                Some(l) if l.is_ascii_alphabetic() => {
                    self.i += 1;
                    ClassAtom::Char(char::from(l as u8 % 32))
                }
                _ => {
                    self.i -= 1;
                    return Err(self.unsupported("'\\c' without a control letter"));
                }
            },
            'x' => match self.hex(2) {
                Some(v) => ClassAtom::Char(char::from_u32(v).unwrap_or('\0')),
                None => ClassAtom::Char('x'),
            },
            'u' => match self.hex(4) {
                Some(v) if (0xD800..0xDC00).contains(&v) => {
                    // A surrogate pair written as two escapes.
                    if self.peek() == Some('\\') && self.peek_at(1) == Some('u') {
                        self.i += 2;
                        match self.hex(4) {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                let cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                                ClassAtom::Char(char::from_u32(cp).unwrap_or('\0'))
                            }
                            _ => return Err(self.unsupported("a lone surrogate")),
                        }
                    } else {
                        return Err(self.unsupported("a lone surrogate"));
                    }
                }
                Some(v) => match char::from_u32(v) {
                    Some(ch) => ClassAtom::Char(ch),
                    None => return Err(self.unsupported("a lone surrogate")),
                },
                None => ClassAtom::Char('u'),
            },
            // Annex B identity escape: the character itself.
            other => ClassAtom::Char(other),
        })
    }

    /// `n` hex digits at the cursor (consumed only when all are there).
    fn hex(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for k in 0..n {
            v = v * 16 + self.peek_at(k)?.to_digit(16)?;
        }
        self.i += n;
        Some(v)
    }

    fn check_fold(&self, c: char) -> Result<(), JsRegexError> {
        let caseless = c.to_uppercase().eq([c]) && c.to_lowercase().eq([c]);
        if self.fold && !c.is_ascii() && !caseless {
            return Err(self.unsupported(
                "a non-ASCII character in a case-insensitive expression (write its percent-encoded form)",
            ));
        }
        Ok(())
    }

    fn literal(&mut self, c: char) -> Result<(), JsRegexError> {
        self.check_fold(c)?;
        if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-' {
            self.out.push(c);
        } else {
            let _ = write!(self.out, r"\x{{{:X}}}", u32::from(c));
        }
        Ok(())
    }

    fn class(&mut self) -> Result<(), JsRegexError> {
        // at '['
        self.i += 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.i += 1;
        }
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.syntax("unterminated character class"));
            };
            if c == ']' {
                // `[]` matches nothing, `[^]` any character.
                self.i += 1;
                break;
            }
            let first = self.class_atom()?;
            let is_range = self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']');
            if let (ClassAtom::Char(lo), true) = (&first, is_range) {
                let lo = *lo;
                let save = self.i;
                self.i += 1;
                match self.class_atom()? {
                    ClassAtom::Char(hi) => {
                        if hi < lo {
                            self.i = save;
                            return Err(self.syntax("range out of order in character class"));
                        }
                        self.check_fold(lo)?;
                        self.check_fold(hi)?;
                        ranges.push((u32::from(lo), u32::from(hi)));
                    }
                    // Annex B: `[a-\d]` is 'a', '-' and the digits.
                    second @ ClassAtom::Set(..) => {
                        self.add_atom(&mut ranges, ClassAtom::Char(lo))?;
                        self.add_atom(&mut ranges, ClassAtom::Char('-'))?;
                        self.add_atom(&mut ranges, second)?;
                    }
                }
            } else {
                self.add_atom(&mut ranges, first)?;
            }
        }
        push_class(&mut self.out, negated, &ranges, self.fold);
        Ok(())
    }

    fn add_atom(&self, ranges: &mut Vec<(u32, u32)>, atom: ClassAtom) -> Result<(), JsRegexError> {
        match atom {
            ClassAtom::Char(c) => {
                self.check_fold(c)?;
                ranges.push((u32::from(c), u32::from(c)));
            }
            ClassAtom::Set(set, false) => ranges.extend_from_slice(set),
            ClassAtom::Set(set, true) => ranges.extend(complement(set)),
        }
        Ok(())
    }

    fn class_atom(&mut self) -> Result<ClassAtom, JsRegexError> {
        let c = self.peek().unwrap_or('\0');
        self.i += 1;
        if c != '\\' {
            return Ok(ClassAtom::Char(c));
        }
        match self.peek() {
            Some('b') => {
                self.i += 1;
                Ok(ClassAtom::Char('\u{8}'))
            }
            Some('-') => {
                self.i += 1;
                Ok(ClassAtom::Char('-'))
            }
            _ => self.atom_escape(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(src: &str, hay: &str) -> bool {
        JsRegex::new(src).unwrap().is_match(hay)
    }

    fn mi(src: &str, hay: &str) -> bool {
        JsRegex::with_flags(src, true).unwrap().is_match(hay)
    }

    #[test]
    fn plain_and_anchors() {
        assert!(m("/api", "/foo/api/bar"));
        assert!(!m("^/api", "/foo/api"));
        assert!(m("^/api$", "/api"));
        assert!(!m("^/api$", "/api/"));
        assert!(m("a|b", "xbx"));
        assert!(m("", "anything"));
    }

    #[test]
    fn dot_excludes_js_line_terminators() {
        assert!(m("^a.b$", "a-b"));
        assert!(!m("^a.b$", "a\nb"));
        assert!(!m("^a.b$", "a\rb"));
        assert!(!m("^a.b$", "a\u{2028}b"));
        assert!(m("^a.b$", "aéb"));
    }

    #[test]
    fn perl_classes_have_js_sets() {
        assert!(m(r"^\s$", "\u{A0}"));
        assert!(m(r"^\s$", "\u{FEFF}"));
        assert!(!m(r"^\S$", "\u{3000}"));
        assert!(!m(r"^\w$", "é"));
        assert!(m(r"^\W$", "é"));
        assert!(!m(r"^\d$", "٣"));
        assert!(m(r"^[\s\d]+$", " 1\u{2029}"));
        assert!(m(r"^[^\d]$", "x"));
        assert!(m(r"^[\D]$", "x"));
        assert!(!m(r"^[\D]$", "5"));
    }

    #[test]
    fn annex_b_literals() {
        assert!(m("^a{,2}$", "a{,2}"));
        assert!(m("^}$", "}"));
        assert!(m("^]$", "]"));
        assert!(m(r"^\a\e\z\p$", "aezp"));
        assert!(m(r"^\x4g$", "x4g"));
        assert!(m(r"^\x41$", "A"));
        assert!(m(r"^\u0041$", "A"));
        assert!(m(r"^\u00e4$", "ä"));
        assert!(m(r"^\ud83d\ude00$", "😀"));
        assert!(m(r"^\cJ$", "\n"));
        assert!(m(r"^\0$", "\0"));
        assert!(m(r"^[\b]$", "\u{8}"));
        assert!(m(r"^\/\.$", "/."));
    }

    #[test]
    fn classes_are_rewritten_not_passed_through() {
        // `[` and `&&` are plain members in JavaScript.
        assert!(m("^[[a]$", "["));
        assert!(m("^[a&&b]$", "&"));
        assert!(m("^[a-c]$", "b"));
        assert!(m("^[a-]$", "-"));
        assert!(m(r"^[\w-z]$", "-"));
        assert!(m("^[^]$", "\n"));
        assert!(!m("^[]$", ""));
        assert!(!m("[]", "x"));
        assert!(m(r"^[\]]$", "]"));
    }

    #[test]
    fn quantifiers_and_groups() {
        assert!(m("^(ab)+$", "abab"));
        assert!(m("^(?:ab){2}$", "abab"));
        assert!(!m("^(?:ab){3,}$", "abab"));
        assert!(m("^a+?b*?c??$", "aab"));
        assert!(m("^(?<year>[0-9]{4})$", "2024"));
        assert!(m("^a{2,3}$", "aaa"));
    }

    #[test]
    fn case_insensitive_is_ascii_as_in_js_without_u() {
        assert!(mi("^/wms$", "/WmS"));
        assert!(mi("^[a-c]$", "B"));
        assert!(!mi("^s$", "\u{17F}"));
        assert!(!mi("^k$", "\u{212A}"));
        assert!(JsRegex::with_flags("^ä$", true).is_err());
        assert!(JsRegex::with_flags("^ä$", false).is_ok());
    }

    #[test]
    fn refused_constructs() {
        for src in [
            "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b", r"(a)\1", r"\01", r"\k<x>", r"\ud800", r"\c1",
        ] {
            assert!(
                matches!(JsRegex::new(src), Err(JsRegexError::Unsupported { .. })),
                "{src}"
            );
        }
    }

    #[test]
    fn syntax_errors() {
        for src in [
            "(", ")", "a)", "[a", "*", "a**", "+a", "{2}", "^*", "[z-a]", "\\", "(?x)",
        ] {
            assert!(
                matches!(JsRegex::new(src), Err(JsRegexError::Syntax { .. })),
                "{src}: {:?}",
                JsRegex::new(src)
            );
        }
    }

    #[test]
    fn groups_are_reported() {
        let re = JsRegex::new("^/a/([^/]+)(/x)?/(.*)$").unwrap();
        let mut seen = Vec::new();
        assert_eq!(
            re.match_groups("/a/b/c/d", |g| {
                seen.push(g.to_owned());
                true
            }),
            Some(true)
        );
        assert_eq!(seen, ["b", "c/d"]);
        assert_eq!(re.match_groups("/b", |_| true), None);
    }
}
