//! `micro-gw` as cargo's rustc wrapper: the profile flag of `micro-gw build --profile-generate`
//! and `--profile-use` given to the runtime and the gateway's own crate only.
//!
//! Most of the request path's code is the runtime crate's, its own functions and the tokio,
//! hyper and `h2` generics it instantiates (docs/benchmarks.md, "Issue 16: thirtieth pass":
//! compiled with a profile, it alone brings the gain of the whole program compiled with one).
//! Cargo has no stable way to give one crate rustc flags of its own, and flags given to all
//! (`RUSTFLAGS`) compile every crate again. So `micro-gw build` runs cargo with the runtime's
//! `profile-guided` feature, `RUSTC_WRAPPER` naming `micro-gw` itself, [`WRAPPER_ENV`] set and
//! [`FLAG_ENV`] holding the flag; run that way ([`wrapper_main`]), `micro-gw` adds the flag to
//! the compiles of the crates that have the feature (the runtime, and the gateway's crate, which
//! links LLVM's profile runtime into an instrumented gateway) and hands every other compile to
//! rustc unchanged. The crates the default build compiled are reused.
//!
//! Two things keep the profile matched to the code it is used on. The instrumented runtime and
//! the profiled one are the same cargo unit (same features, hence the same `-C metadata`):
//! LLVM names a function in a profile by its symbol, which rustc derives from that identity,
//! so a runtime compiled with any other feature set would match none of them. And the runtime
//! reads [`FLAG_ENV`] (`mgw_runtime::profile_guided`, behind the feature): rustc lists the
//! variable among the crate's inputs, so cargo compiles the runtime again when the flag
//! changes, which it would not do for a flag it does not see.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Command, ExitCode};

/// Set (to `1`) for the cargo that `micro-gw build` runs with `RUSTC_WRAPPER` naming
/// `micro-gw`: a `micro-gw` started with it is that wrapper ([`wrapper_main`]), not the CLI.
pub const WRAPPER_ENV: &str = "MGW_RUSTC_WRAPPER";

/// The rustc flag for the crates with [`FEATURE`] (`-Cprofile-generate=<dir>` or
/// `-Cprofile-use=<file>`), read by the wrapper and by the runtime.
pub const FLAG_ENV: &str = "MGW_RUNTIME_PGO";

/// The user's own `RUSTC_WRAPPER` (sccache, …), which the wrapper runs in its turn.
pub const NEXT_WRAPPER_ENV: &str = "MGW_RUSTC_WRAPPER_NEXT";

/// The feature of the gateway crate and of the runtime that the flag goes with.
pub const FEATURE: &str = "profile-guided";

/// Sets up `command` (a `cargo build` with [`FEATURE`] among its features) so that the crates
/// with the feature are compiled with `flag`: `wrapper` (this `micro-gw`) as `RUSTC_WRAPPER`,
/// the user's own wrapper kept in [`NEXT_WRAPPER_ENV`] and run by ours (unless it is this
/// `micro-gw`, which would run itself for ever).
pub fn configure(command: &mut Command, wrapper: &Path, flag: &str) {
    if let Some(next) =
        std::env::var_os("RUSTC_WRAPPER").filter(|w| !w.is_empty() && Path::new(w) != wrapper)
    {
        command.env(NEXT_WRAPPER_ENV, next);
    } else {
        command.env_remove(NEXT_WRAPPER_ENV);
    }
    command
        .env("RUSTC_WRAPPER", wrapper)
        .env(WRAPPER_ENV, "1")
        .env(FLAG_ENV, flag);
}

/// When this process is the rustc wrapper ([`WRAPPER_ENV`] set): runs the compile (cargo gives
/// the compiler, then its arguments) and returns its exit code. `None` otherwise, for the CLI
/// to go on.
pub fn wrapper_main() -> Option<ExitCode> {
    std::env::var_os(WRAPPER_ENV)?;
    let mut args = std::env::args_os().skip(1);
    let Some(rustc) = args.next() else {
        eprintln!("micro-gw: {WRAPPER_ENV} is set but no compiler was given: it is meant for the cargo that micro-gw build runs (RUSTC_WRAPPER)");
        return Some(ExitCode::from(2));
    };
    let rest: Vec<OsString> = args.collect();
    let flag = std::env::var_os(FLAG_ENV).unwrap_or_default();
    let extra = extra_flags(&rest, &flag);
    let next = std::env::var_os(NEXT_WRAPPER_ENV).filter(|w| !w.is_empty());
    let mut command = match &next {
        Some(wrapper) => {
            let mut command = Command::new(wrapper);
            command.arg(&rustc);
            command
        }
        None => Command::new(&rustc),
    };
    command.args(&rest).args(extra);
    Some(run(command, next.as_deref().unwrap_or(&rustc)))
}

/// Replaces this process with `command` (on Unix), or runs it and passes its status on.
#[cfg(unix)]
fn run(mut command: Command, program: &OsStr) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let err = command.exec();
    eprintln!("micro-gw: running {}: {err}", program.to_string_lossy());
    ExitCode::from(1)
}

/// Replaces this process with `command` (on Unix), or runs it and passes its status on.
#[cfg(not(unix))]
fn run(mut command: Command, program: &OsStr) -> ExitCode {
    match command.status() {
        Ok(status) => match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::from(1),
        },
        Err(err) => {
            eprintln!("micro-gw: running {}: {err}", program.to_string_lossy());
            ExitCode::from(1)
        }
    }
}

/// What the wrapper adds to a compile with rustc arguments `args` (as cargo gives them):
/// `flag` for a crate compiled with `--cfg feature="profile-guided"` that is not a build
/// script (`--crate-name build_script_*`); nothing for any other compile, nor for cargo's own
/// questions to rustc (`-vV`, `--print`), nor when `flag` is empty.
pub fn extra_flags(args: &[OsString], flag: &OsStr) -> Vec<OsString> {
    if flag.is_empty() {
        return Vec::new();
    }
    let crate_name = args
        .windows(2)
        .find(|pair| pair[0] == "--crate-name")
        .map(|pair| pair[1].to_string_lossy().into_owned());
    let Some(crate_name) = crate_name else {
        return Vec::new();
    };
    let cfg = format!("feature=\"{FEATURE}\"");
    let has_feature = args
        .windows(2)
        .any(|pair| pair[0] == "--cfg" && pair[1] == cfg.as_str());
    if has_feature && !crate_name.starts_with("build_script_") {
        vec![flag.to_os_string()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_flag_goes_to_the_crates_with_the_feature_and_to_no_build_script() {
        let flag = OsStr::new("-Cprofile-use=/p/target/pgo/profile-0123456789abcdef.profdata");
        let runtime = args("--crate-name mgw_runtime --edition=2021 src/lib.rs --cfg feature=\"profile-guided\" --cfg feature=\"server\"");
        assert_eq!(extra_flags(&runtime, flag), vec![flag.to_os_string()]);
        // The gateway's own crate (named after the project) forwards the feature.
        let gateway = args("--crate-name petstore main.rs --cfg feature=\"profile-guided\"");
        assert_eq!(extra_flags(&gateway, flag), vec![flag.to_os_string()]);
        // The runtime of a default build, a dependency, a build script, cargo's questions.
        for other in [
            "--crate-name mgw_runtime src/lib.rs --cfg feature=\"server\"",
            "--crate-name tokio src/lib.rs --cfg feature=\"rt\"",
            "--crate-name build_script_build build.rs --cfg feature=\"profile-guided\"",
            "-vV",
            "- --crate-name ___ --print=file-names --crate-type bin",
        ] {
            assert!(extra_flags(&args(other), flag).is_empty(), "{other}");
        }
        // A feature of a similar name is not this one.
        let similar = args("--crate-name x lib.rs --cfg feature=\"profile-guided-x\"");
        assert!(extra_flags(&similar, flag).is_empty());
        assert!(extra_flags(&runtime, OsStr::new("")).is_empty());
    }
}
