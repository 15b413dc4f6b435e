//! The part of minimatch 3.x (`minimatch(subject, pattern)`, default options) that Express
//! Gateway uses on host names: the `hostMatch` condition (on the `Host` header, port included)
//! and the choice of an `https.tls` certificate by SNI server name (EG
//! `lib/conditions/predefined.js`, `lib/gateway/server.js`).
//!
//! With default options minimatch is case-sensitive; `*` is any run of characters but `/`
//! (so it crosses `.`: `*.example.com` matches `a.b.example.com`), `?` one character, `[...]` a
//! class (`[!...]` or `[^...]` negated), `**` alone a globstar, `\x` the character `x`; a
//! pattern that starts with a wildcard or a class does not match a subject that starts with `.`;
//! `{a,b}` expands into alternatives; a leading `!` negates; a leading `#` is a comment that
//! matches nothing; the empty pattern matches only the empty subject. A subject with `/` is split
//! into path segments as minimatch does.
//!
//! Refused with [`GlobError`] (the toolkit refuses them at build): extglobs (`+(a|b)`, `@(..)`,
//! `!(..)`, `?(..)`, `*(..)`), brace sequences (`{1..3}`) and braces that are not a plain
//! `{a,b}` list, `/` in a pattern (it can never match a host name), classes that are
//! unterminated, out of order, escaped inside or POSIX (`[[:alpha:]]`).

/// A glob this subset cannot run with minimatch's meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("glob '{pattern}': {what} is not supported; {fix}")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// What was found.
    pub what: &'static str,
    /// What to write instead.
    pub fix: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[...]`: ranges (single characters are `(c, c)`), negated or not.
    Class(bool, Vec<(char, char)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Alt {
    /// No magic: the unescaped text compared exactly.
    Exact(String),
    /// `**` alone.
    Globstar,
    /// Tokens; `no_dot`: the subject may not start with `.`.
    Magic { toks: Vec<Tok>, no_dot: bool },
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    negate: bool,
    comment: bool,
    empty: bool,
    alts: Vec<Alt>,
}

impl Glob {
    /// Compiles a pattern (see the module documentation for what is refused).
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let err = |what, fix| GlobError {
            pattern: pattern.to_owned(),
            what,
            fix,
        };
        let mut g = Glob {
            pattern: pattern.to_owned(),
            negate: false,
            comment: false,
            empty: false,
            alts: Vec::new(),
        };
        if pattern.starts_with('#') {
            g.comment = true;
            return Ok(g);
        }
        if pattern.is_empty() {
            g.empty = true;
            return Ok(g);
        }
        let bangs = pattern.bytes().take_while(|&b| b == b'!').count();
        g.negate = bangs % 2 == 1;
        let body = &pattern[bangs..];
        for alt in expand_braces(body).map_err(|(what, fix)| err(what, fix))? {
            if alt.contains('/') {
                return Err(err(
                    "a '/'",
                    "host names have no '/', so such a pattern never matches: remove it",
                ));
            }
            g.alts
                .push(parse(&alt).map_err(|(what, fix)| err(what, fix))?);
        }
        Ok(g)
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// `minimatch(subject, pattern)`.
    pub fn matches(&self, subject: &str) -> bool {
        if self.comment {
            return false;
        }
        if self.empty {
            return subject.is_empty();
        }
        let hit = self.alts.iter().any(|a| alt_matches(a, subject));
        hit != self.negate
    }
}

fn alt_matches(alt: &Alt, subject: &str) -> bool {
    if let Alt::Globstar = alt {
        // `**` swallows every segment, none of which may start with '.'.
        return subject.split('/').all(|s| !s.starts_with('.'));
    }
    // One pattern segment: the subject must be one segment, or one plus a trailing '/'.
    let seg = match subject.split_once('/') {
        None => subject,
        Some((first, "")) => first,
        Some(_) => return false,
    };
    match alt {
        Alt::Exact(s) => s == seg,
        Alt::Magic { toks, no_dot } => {
            let hidden = *no_dot && seg.starts_with('.');
            !seg.is_empty() && !hidden && toks_match(toks, seg)
        }
        // Handled above.
        Alt::Globstar => false,
    }
}

fn tok_matches(t: &Tok, c: char) -> bool {
    match t {
        Tok::Char(x) => *x == c,
        Tok::One => c != '/',
        Tok::Star => false,
        Tok::Class(neg, ranges) => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg,
    }
}

/// Wildcard matching with one backtrack point (linear in practice, O(n·m) at worst).
fn toks_match(toks: &[Tok], subject: &str) -> bool {
    let s: Vec<char> = subject.chars().collect();
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match toks.get(p) {
            Some(Tok::Star) => {
                p += 1;
                star = Some((p, i));
                continue;
            }
            Some(t) if tok_matches(t, s[i]) => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, si)) if s[si] != '/' => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            _ => return false,
        }
    }
    toks[p.min(toks.len())..].iter().all(|t| *t == Tok::Star)
}

type Refusal = (&'static str, &'static str);

/// brace-expansion's `{a,b}` lists (nested), for the forms minimatch expands.
fn expand_braces(s: &str) -> Result<Vec<String>, Refusal> {
    if !s.contains('{') && !s.contains('}') {
        return Ok(vec![s.to_owned()]);
    }
    const FIX: &str = "write the alternatives as '{a,b}' lists or as separate patterns";
    if s.contains('\\') || s.contains("${") {
        return Err(("an escape or '$' together with braces", FIX));
    }
    let Some(open) = s.find('{') else {
        return Err(("a '}' without '{'", FIX));
    };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return Err(("a '{' without '}'", FIX));
    };
    if commas.is_empty() {
        return Err(("a brace without a ',' list (or a '{1..3}' sequence)", FIX));
    }
    let (pre, post) = (&s[..open], &s[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let posts = expand_braces(post)?;
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        for alt in expand_braces(&s[w[0] + 1..w[1]])? {
            for p in &posts {
                out.push(format!("{pre}{alt}{p}"));
            }
        }
    }
    if out.len() > 1024 {
        return Err(("more than 1024 brace alternatives", FIX));
    }
    Ok(out)
}

fn parse(seg: &str) -> Result<Alt, Refusal> {
    if seg == "**" {
        return Ok(Alt::Globstar);
    }
    let chars: Vec<char> = seg.chars().collect();
    let mut toks = Vec::new();
    let mut magic = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                // `\x` is `x`; a trailing `\` is itself.
                toks.push(Tok::Char(chars.get(i + 1).copied().unwrap_or('\\')));
                i += 2;
                continue;
            }
            '?' | '*' | '+' | '@' | '!' if chars.get(i + 1) == Some(&'(') => {
                return Err((
                    "an extglob such as '+(a|b)'",
                    "write the alternatives as a '{a,b}' list",
                ))
            }
            '*' => {
                magic = true;
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
            }
            '?' => {
                magic = true;
                toks.push(Tok::One);
            }
            '[' => {
                let (tok, len) = class(&chars[i..])?;
                magic = true;
                toks.push(tok);
                i += len;
                continue;
            }
            _ => toks.push(Tok::Char(c)),
        }
        i += 1;
    }
    if !magic {
        return Ok(Alt::Exact(
            toks.iter()
                .map(|t| match t {
                    Tok::Char(c) => *c,
                    _ => '?',
                })
                .collect(),
        ));
    }
    let starts_magic = !matches!(toks.first(), Some(Tok::Char(_)));
    let no_dot = starts_magic && !seg.starts_with('.');
    Ok(Alt::Magic { toks, no_dot })
}

/// A class at the start of `chars` (which is at '['): the token and its length in chars.
fn class(chars: &[char]) -> Result<(Tok, usize), Refusal> {
    const FIX: &str = "write a plain class such as '[a-z0-9]' or '[!.]'";
    let mut i = 1;
    let negated = matches!(chars.get(1), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let first = i;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(("an unterminated '['", FIX));
        };
        if c == ']' && i > first {
            break;
        }
        if c == '\\' {
            return Err(("an escape inside a class", FIX));
        }
        if c == '[' && chars.get(i + 1) == Some(&':') {
            return Err(("a POSIX class such as '[[:alpha:]]'", FIX));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&n| n != ']') {
            let hi = chars[i + 2];
            if hi < c {
                return Err(("a class range out of order", FIX));
            }
            ranges.push((c, hi));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    Ok((Tok::Class(negated, ranges), i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, subject: &str) -> bool {
        Glob::new(pattern).unwrap().matches(subject)
    }

    #[test]
    fn star_crosses_dots_but_not_slashes() {
        assert!(m("*.example.com", "a.example.com"));
        assert!(m("*.example.com", "a.b.example.com"));
        assert!(!m("*.example.com", "example.com"));
        assert!(!m("*.example.com", ".example.com"));
        assert!(m("*", "example.com"));
        assert!(!m("*", ""));
        assert!(!m("*", "a/b"));
        assert!(m("*", "a/"));
    }

    #[test]
    fn host_match_includes_the_port() {
        assert!(!m("*.example.com", "a.example.com:8080"));
        assert!(m("*.example.com:*", "a.example.com:8080"));
        assert!(m("localhost:80??", "localhost:8080"));
    }

    #[test]
    fn case_sensitive_like_minimatch_defaults() {
        assert!(!m("*.Example.com", "a.example.com"));
        assert!(m("api.example.com", "api.example.com"));
        assert!(!m("api.example.com", "API.example.com"));
    }

    #[test]
    fn question_classes_and_escapes() {
        assert!(m("a?.com", "ab.com"));
        assert!(!m("a?.com", "a.com"));
        assert!(m("[ab]x.com", "bx.com"));
        assert!(!m("[!ab]x.com", "bx.com"));
        assert!(m("[^ab]x.com", "cx.com"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("[]a]x", "]x"));
        assert!(m("\\*.com", "*.com"));
        assert!(!m("\\*.com", "a.com"));
        assert!(!m("[a-z]*", ".hidden"));
        assert!(m(".*", ".hidden"));
    }

    #[test]
    fn braces_negation_comments_empty() {
        assert!(m("{a,b}.example.com", "b.example.com"));
        assert!(!m("{a,b}.example.com", "c.example.com"));
        assert!(m("x{,y}.com", "x.com"));
        assert!(m("{a,{b,c}d}.com", "cd.com"));
        assert!(m("!*.example.com", "example.org"));
        assert!(!m("!*.example.com", "a.example.com"));
        assert!(m("!!a", "a"));
        // A leading '!' negates before anything else: `!(a).com` is not an extglob.
        assert!(m("!(a).com", "b.com"));
        assert!(!m("!(a).com", "(a).com"));
        assert!(!m("#a", "#a"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("**", "a.b"));
        assert!(!m("**", ".a"));
        assert!(m("a**b", "axxb"));
    }

    #[test]
    fn refusals() {
        for p in [
            "+(a|b).com",
            "@(a).com",
            "*(a)",
            "?(a)",
            "{1..3}.com",
            "{a}.com",
            "a/b",
            "[a",
            "[z-a]",
            "[\\]]",
            "[[:alpha:]]",
            "${x}{a,b}",
            "{a,b",
        ] {
            assert!(Glob::new(p).is_err(), "{p}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let g = Glob::new("*a*a*a*a*a*a*a*b").unwrap();
        let subject = "a".repeat(5000);
        let t = std::time::Instant::now();
        assert!(!g.matches(&subject));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
