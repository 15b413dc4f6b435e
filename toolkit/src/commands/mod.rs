//! One module per `micro-gw` command.

pub mod build;
pub mod hash;
pub mod import;
pub mod import_apim;
pub mod init;
pub mod reset;

use crate::loader::Diagnostic;

/// Prints load warnings the way every command does.
pub fn print_warnings(warnings: &[Diagnostic]) {
    for warning in warnings {
        eprintln!("micro-gw: warning: {warning}");
    }
}
