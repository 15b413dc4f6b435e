//! One module per `micro-gw` command.

pub mod build;
pub mod consumers;
pub mod consumers_cli;
pub mod hash;
pub mod import;
pub mod import_apim;
pub mod import_express;
pub mod init;
pub mod reset;

use crate::loader::{diagnostics::render_grouped, Diagnostic};

/// Prints load warnings the way every command does (a warning repeated in many places of a
/// file is one line with the count: see [`render_grouped`]).
pub fn print_warnings(warnings: &[Diagnostic]) {
    for warning in render_grouped(warnings) {
        eprintln!("micro-gw: warning: {warning}");
    }
}

/// Prints the warnings about what this command changed, and one line counting the others
/// (`3 warnings in 2 other definitions; micro-gw build --verbose <project> lists them`), so a
/// project's old warnings are not repeated by every command. `all` prints every warning.
pub fn print_changed_warnings(
    warnings: &[Diagnostic],
    changed: &dyn Fn(&str) -> bool,
    all: bool,
    project: &std::path::Path,
) {
    let (mine, others): (Vec<Diagnostic>, Vec<Diagnostic>) = warnings
        .iter()
        .cloned()
        .partition(|w| all || changed(&w.file));
    print_warnings(&mine);
    if let Some(line) = others_line(&others, project) {
        eprintln!("micro-gw: {line}");
    }
}

/// The one-line count of warnings not shown, or `None` when there are none.
pub fn others_line(others: &[Diagnostic], project: &std::path::Path) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let files: std::collections::BTreeSet<&str> = others.iter().map(|w| w.file.as_str()).collect();
    Some(format!(
        "{} warning{} in {} other definition{}; micro-gw build --verbose {} lists them",
        others.len(),
        if others.len() == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        project.display()
    ))
}
