//! Messages about definitions: each names the file, the line when known, and what to do.

use std::fmt;

/// One finding about a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the user knows it (relative to the project when possible).
    pub file: String,
    /// 1-based line, when the location is known.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Errors and warnings collected while loading, so one run reports every problem.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// Problems that stop the build.
    pub errors: Vec<Diagnostic>,
    /// Things the user should know (fallbacks, extensions not applied).
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records an error.
    pub fn error(&mut self, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            file: file.to_string(),
            line,
            message: message.into(),
        });
    }

    /// Records a warning.
    pub fn warn(&mut self, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: file.to_string(),
            line,
            message: message.into(),
        });
    }

    /// True when nothing stops the build.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
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
        let count = self.errors.len();
        if count == 1 {
            return write!(f, "{}", self.errors[0]);
        }
        write!(f, "{count} problems in the API definitions:")?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}
