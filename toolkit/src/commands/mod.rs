//! One module per `micro-gw` command.

pub mod build;
pub mod hash;
pub mod import;
pub mod import_apim;
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
