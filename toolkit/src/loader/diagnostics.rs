//! Messages about definitions: each names the file, the line when known, and what to do.
//!
//! The same finding is never reported twice (identical diagnostics are dropped when recorded),
//! and a finding that repeats many times in one file (a thousand operations without an
//! endpoint) is shown as one line with the count and the first few locations
//! ([`render_grouped`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

/// At this many diagnostics with the same file, level and message, they are shown as one line.
pub const GROUP_AT: usize = 4;
/// How many locations a grouped line names.
pub const GROUP_SHOWN: usize = 3;

/// One finding about a definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// The file, as the user knows it (the path or URL the user gave, or the project file).
    pub file: String,
    /// 1-based line, when the location is known.
    pub line: Option<usize>,
    /// 1-based column, when the location is known that precisely (parse errors).
    pub column: Option<usize>,
    /// What the finding is about when the same finding can concern many things, e.g.
    /// `GET /pets` (shown before the message: `GET /pets has no endpoint: …`); findings that
    /// differ only in their subject and place are grouped.
    pub subject: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Diagnostic {
    fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.file),
            (Some(line), None) => format!("{}:{line}", self.file),
            _ => self.file.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location())?;
        if let Some(subject) = &self.subject {
            write!(f, "{subject} ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Renders diagnostics as lines, in order of first appearance: those that share their file
/// and message [`GROUP_AT`] times or more become one line with the count and the first
/// [`GROUP_SHOWN`] locations (`a.yaml: <message> (1204 times: line 6 GET /x, line 9 POST /y,
/// line 12 GET /z and 1201 more)`); the others are shown one per line.
pub fn render_grouped(diagnostics: &[Diagnostic]) -> Vec<String> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<Vec<&Diagnostic>> = Vec::new();
    for diagnostic in diagnostics {
        let key = (diagnostic.file.as_str(), diagnostic.message.as_str());
        match index.get(&key) {
            Some(&at) => groups[at].push(diagnostic),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![diagnostic]);
            }
        }
    }
    let mut lines = Vec::new();
    for members in groups {
        let (file, message) = (&members[0].file, &members[0].message);
        if members.len() < GROUP_AT {
            lines.extend(members.iter().map(ToString::to_string));
            continue;
        }
        let shown: Vec<String> = members
            .iter()
            .take(GROUP_SHOWN)
            .map(|d| {
                let at = match (d.line, d.column) {
                    (Some(line), Some(column)) => format!("line {line}:{column}"),
                    (Some(line), None) => format!("line {line}"),
                    _ => "no line".to_string(),
                };
                match &d.subject {
                    Some(subject) => format!("{at} {subject}"),
                    None => at,
                }
            })
            .collect();
        lines.push(format!(
            "{file}: {message} ({} times: {} and {} more)",
            members.len(),
            shown.join(", "),
            members.len() - shown.len()
        ));
    }
    lines
}

/// Errors and warnings collected while loading, so one run reports every problem.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// Problems that stop the build.
    pub errors: Vec<Diagnostic>,
    /// Things the user should know (fallbacks, extensions not applied).
    pub warnings: Vec<Diagnostic>,
    seen: HashSet<(bool, Diagnostic)>,
}

impl Diagnostics {
    /// Records an error (once: the same error at the same place is kept only the first time).
    pub fn error(&mut self, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.push(true, diagnostic(file, line, None, message.into()));
    }

    /// Records an error about `subject` (e.g. `GET /pets`); the same message about many
    /// subjects is shown grouped.
    pub fn error_about(
        &mut self,
        file: &str,
        line: Option<usize>,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(
            true,
            diagnostic(file, line, Some(subject.into()), message.into()),
        );
    }

    /// Records a parse error with its column.
    pub fn parse_error(
        &mut self,
        file: &str,
        line: Option<usize>,
        column: Option<usize>,
        message: impl Into<String>,
    ) {
        let mut found = diagnostic(file, line, None, message.into());
        found.column = column;
        self.push(true, found);
    }

    /// Records a warning (once).
    pub fn warn(&mut self, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.push(false, diagnostic(file, line, None, message.into()));
    }

    /// Records a warning about `subject`; see [`Diagnostics::error_about`].
    pub fn warn_about(
        &mut self,
        file: &str,
        line: Option<usize>,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(
            false,
            diagnostic(file, line, Some(subject.into()), message.into()),
        );
    }

    fn push(&mut self, is_error: bool, found: Diagnostic) {
        if !self.seen.insert((is_error, found.clone())) {
            return;
        }
        if is_error {
            self.errors.push(found);
        } else {
            self.warnings.push(found);
        }
    }

    /// True when nothing stops the build.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

fn diagnostic(
    file: &str,
    line: Option<usize>,
    subject: Option<String>,
    message: String,
) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line,
        column: None,
        subject,
        message,
    }
}

/// Loading failed: every error found.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    /// The errors, in file order.
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = render_grouped(&self.errors);
        if let [only] = lines.as_slice() {
            if self.errors.len() == 1 {
                return write!(f, "{only}");
            }
        }
        write!(f, "{} problems in the API definitions:", self.errors.len())?;
        for line in lines {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_finding_is_recorded_once() {
        let mut d = Diagnostics::default();
        d.error("a.yaml", Some(3), "broken");
        d.error("a.yaml", Some(3), "broken");
        d.warn("a.yaml", Some(3), "broken");
        d.error("a.yaml", Some(4), "broken");
        assert_eq!(d.errors.len(), 2);
        assert_eq!(d.warnings.len(), 1);
    }

    /// issue 10 #9: a thousand operations without an endpoint are one line, not a thousand.
    #[test]
    fn repeated_findings_are_one_line_with_the_count_and_the_first_places() {
        let mut d = Diagnostics::default();
        d.error("big.yaml", Some(1), "the first problem");
        for i in 0..1200 {
            d.error_about(
                "big.yaml",
                Some(10 + i),
                format!("GET /r{i}"),
                "has no endpoint: add one",
            );
        }
        d.error_about("other.yaml", Some(5), "GET /x", "has no endpoint: add one");
        let err = LoadError { errors: d.errors };
        let text = err.to_string();
        assert_eq!(
            text,
            "1202 problems in the API definitions:\n  big.yaml:1: the first problem\n  big.yaml: has no endpoint: add one (1200 times: line 10 GET /r0, line 11 GET /r1, line 12 GET /r2 and 1197 more)\n  other.yaml:5: GET /x has no endpoint: add one"
        );
        // Below the threshold every place has its own line.
        let few: Vec<Diagnostic> = (0..GROUP_AT - 1)
            .map(|i| diagnostic("a.yaml", Some(i), None, "x".into()))
            .collect();
        assert_eq!(render_grouped(&few).len(), GROUP_AT - 1);
    }

    #[test]
    fn one_error_is_shown_alone_with_its_column() {
        let mut d = Diagnostics::default();
        d.parse_error("broken.yaml", Some(5), Some(7), "not valid YAML");
        let err = LoadError { errors: d.errors };
        assert_eq!(err.to_string(), "broken.yaml:5:7: not valid YAML");
    }
}
