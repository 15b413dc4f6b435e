//! Profile-guided optimisation of a gateway: `micro-gw build --profile-generate`, a run under
//! the user's own traffic, then `micro-gw build --profile-use`.
//!
//! The mechanism is rustc's (the rustc book, "Profile-guided Optimization"):
//! `-Cprofile-generate=<dir>` makes a binary that counts its branches and calls and writes
//! them to `<dir>/default_<signature>_0.profraw` when it exits normally (the gateway does on
//! SIGTERM and Ctrl-C); `llvm-profdata merge` turns those files into one `.profdata`;
//! `-Cprofile-use=<file>` compiles with the counts, which lays out each function's hot paths
//! together and inlines by measured frequency. Both flags go to the runtime and the gateway's
//! own crate only ([`Scope::Runtime`], through [`crate::rustc_wrapper`]), or with `--lto` to
//! every crate ([`Scope::Whole`]). The `llvm-profdata` must
//! be the one of the compiler's own LLVM: rustup's `llvm-tools` component
//! (`<sysroot>/lib/rustlib/<host>/bin/llvm-profdata`); another version may not read the files.
//!
//! Measured on the bench project (docs/benchmarks.md, "Issue 16: seventeenth pass", every
//! crate compiled with a profile of the bench's own scenarios): a `get1k` request executes 21 %
//! fewer instructions and misses the instruction cache about a third as often; "thirty-first
//! pass" (the runtime alone, with a profile of other traffic): 7 % less CPU per `get1k` request
//! than the default build, 0.91-0.95x nginx's in three invocations.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that names the `llvm-profdata` to use instead of the toolchain's.
pub const LLVM_PROFDATA_ENV: &str = "MGW_LLVM_PROFDATA";

/// What a profile-guided build is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pgo {
    /// An instrumented gateway that writes its counts into this directory (absolute).
    Generate(PathBuf),
    /// A gateway compiled with this merged profile (absolute).
    Use(PathBuf),
}

impl Pgo {
    /// The rustc flag of this mode, e.g. `-Cprofile-generate=/p/target/pgo`.
    pub fn rustc_flag(&self) -> String {
        match self {
            Pgo::Generate(dir) => format!("-Cprofile-generate={}", dir.display()),
            Pgo::Use(file) => format!("-Cprofile-use={}", file.display()),
        }
    }

    /// The sub-directory of the shared target directory this mode compiles in with
    /// [`Scope::Whole`]: changing rustc's flags compiles every crate again, so each mode keeps
    /// its own copies and a default build after a profile-guided one still finds its crates
    /// compiled.
    pub fn target_subdir(&self) -> &'static str {
        match self {
            Pgo::Generate(_) => "profile-generate",
            Pgo::Use(_) => "profile-use",
        }
    }
}

/// Which crates a profile-guided build compiles with [`Pgo::rustc_flag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The runtime and the gateway's own crate only (their `profile-guided` feature), in the
    /// shared target directory: `micro-gw` itself (this path) runs as cargo's rustc wrapper and
    /// adds the flag to those compiles ([`crate::rustc_wrapper`]); every other crate is the
    /// default build's. What `--profile-generate` and `--profile-use` build without `--lto`:
    /// the runtime holds most of the request path's code (docs/benchmarks.md, "Issue 16:
    /// thirty-first pass").
    Runtime(PathBuf),
    /// Every crate: the flag among rustc's own ([`flag_route`]), in the mode's own target
    /// subdirectory ([`Pgo::target_subdir`]). What `--lto` builds with a profile, which compiles
    /// every crate again anyway.
    Whole,
}

/// A profile-guided build: what it does and to which crates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileGuided {
    /// Instrumented, or with a profile.
    pub mode: Pgo,
    /// The crates compiled so.
    pub scope: Scope,
}

/// Why a profile-guided build cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PgoError {
    /// No `llvm-profdata` for the toolchain.
    #[error("llvm-profdata was not found ({looked}): --profile-use needs the one of your Rust toolchain; install it with \"rustup component add llvm-tools\" (or set {LLVM_PROFDATA_ENV} to an llvm-profdata of the same LLVM version as rustc's, \"rustc -vV\")")]
    NoProfdataTool {
        /// Where it was looked for.
        looked: String,
    },
    /// The profile directory holds no `.profraw` file.
    #[error("no profile in {dir}: build with \"micro-gw build {project} --profile-generate\", run that gateway under representative traffic and stop it (Ctrl-C or SIGTERM: it writes its .profraw files there on exit), then build with --profile-use again")]
    NoProfile {
        /// The directory looked in.
        dir: String,
        /// The project, for the command in the message.
        project: String,
    },
    /// The given profile path is neither a `.profdata` file nor a directory.
    #[error("{path} is neither a directory of .profraw files, nor a .profraw file, nor a merged .profdata file{missing}")]
    NotAProfile {
        /// The path given.
        path: String,
        /// `" (it does not exist)"` when it does not.
        missing: &'static str,
    },
    /// Reading the profile directory failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// `llvm-profdata merge` could not run or failed.
    #[error("llvm-profdata merge failed ({tool}): {detail}; a .profraw written by a gateway built with another Rust version cannot be merged: delete it from the profile directory and run the gateway again")]
    Merge {
        /// The tool run.
        tool: String,
        /// Its message, or why it could not start.
        detail: String,
    },
}

/// The `.profraw` files in `dir`, sorted (none when the directory does not exist).
pub fn raw_profiles(dir: &Path) -> Result<Vec<PathBuf>, PgoError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PgoError::Read {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "profraw") && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The `llvm-profdata` to merge with: `$MGW_LLVM_PROFDATA` when set, else the toolchain's
/// (`rustc --print sysroot` + `lib/rustlib/<host>/bin/llvm-profdata`, rustup's `llvm-tools`).
/// `rustc` is `$RUSTC` or `rustc` on the path, run in `dir` (the project: a rustup override or
/// `rust-toolchain.toml` there chooses the toolchain that will compile the gateway).
pub fn llvm_profdata(dir: &Path) -> Result<PathBuf, PgoError> {
    llvm_profdata_from(std::env::var_os(LLVM_PROFDATA_ENV), &rustc(), dir)
}

/// `$RUSTC`, else `rustc`, as cargo runs it.
fn rustc() -> std::ffi::OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// What `rustc <args>` prints in `dir`, when it succeeds.
fn rustc_output(rustc: &std::ffi::OsStr, dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(rustc)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host triple of the toolchain that compiles in `dir` (`rustc -vV`'s `host:` line).
pub fn rustc_host(dir: &Path) -> Option<String> {
    host_of(&rustc(), dir)
}

fn host_of(rustc: &std::ffi::OsStr, dir: &Path) -> Option<String> {
    rustc_output(rustc, dir, &["-vV"]).and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("host: "))
            .map(|h| h.trim().to_string())
    })
}

/// [`llvm_profdata`] with the variable's value and the compiler given.
fn llvm_profdata_from(
    named: Option<std::ffi::OsString>,
    rustc: &std::ffi::OsStr,
    dir: &Path,
) -> Result<PathBuf, PgoError> {
    if let Some(tool) = named.filter(|t| !t.is_empty()) {
        let tool = PathBuf::from(tool);
        return if tool.is_file() {
            Ok(tool)
        } else {
            Err(PgoError::NoProfdataTool {
                looked: format!("{LLVM_PROFDATA_ENV}={}", tool.display()),
            })
        };
    }
    let Some(sysroot) = rustc_output(rustc, dir, &["--print", "sysroot"]) else {
        return Err(PgoError::NoProfdataTool {
            looked: format!("\"{} --print sysroot\" failed", rustc.to_string_lossy()),
        });
    };
    let Some(host) = host_of(rustc, dir) else {
        return Err(PgoError::NoProfdataTool {
            looked: format!("\"{} -vV\" failed", rustc.to_string_lossy()),
        });
    };
    let tool = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-profdata");
    if tool.is_file() {
        Ok(tool)
    } else {
        Err(PgoError::NoProfdataTool {
            looked: tool.display().to_string(),
        })
    }
}

/// Merges `raws` with `tool` (`llvm-profdata merge`) into [`install`]'s file in `dir`.
/// Errors: the tool cannot start or rejects a file (its message; a `.profraw` of another
/// toolchain's binary makes the whole merge fail).
pub fn merge(tool: &Path, raws: &[PathBuf], dir: &Path) -> Result<PathBuf, PgoError> {
    let merging = dir.join(format!("profile.profdata.partial-{}", std::process::id()));
    let failed = |detail: String| PgoError::Merge {
        tool: tool.display().to_string(),
        detail,
    };
    let output = Command::new(tool)
        .arg("merge")
        .arg("-o")
        .arg(&merging)
        .args(raws)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    let bytes = if output.status.success() {
        std::fs::read(&merging).map_err(|e| failed(e.to_string()))
    } else {
        Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    };
    let _ = std::fs::remove_file(&merging);
    install(&bytes?, dir).map_err(|e| failed(e.to_string()))
}

/// Writes a merged profile as `<dir>/profile-<first 16 hex digits of its SHA-256>.profdata`
/// unless it is already there, and returns the file. The same content is not written again:
/// rustc lists the profile among each crate's inputs, so a new modification time would make
/// cargo compile every crate again for nothing; a new profile has a new name and is compiled
/// with. Earlier merges stay until [`remove_other_profiles`], after a successful build.
pub fn install(profile: &[u8], dir: &Path) -> std::io::Result<PathBuf> {
    let digest = crate::fsutil::content_name(&[profile]);
    let file = dir.join(format!("profile-{digest}.profdata"));
    if !file.is_file() {
        crate::fsutil::write_atomic(&file, profile, None)?;
    }
    Ok(file)
}

/// Whether `name` is one of [`install`]'s file names: `profile-` and 16 lowercase hex digits,
/// then `.profdata`.
pub fn is_merged_profile(name: &str) -> bool {
    name.strip_prefix("profile-")
        .and_then(|rest| rest.strip_suffix(".profdata"))
        .is_some_and(|hex| {
            hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Removes [`install`]'s files in `dir` other than `keep` (earlier merges), and never a file
/// of another name; called once the gateway built with `keep` is in place.
pub fn remove_other_profiles(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        if path != keep && is_merged_profile(&name.to_string_lossy()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How rustc's profile flag reaches cargo without losing the user's own flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagRoute {
    /// Flags are set in the environment, which hides cargo's configuration files from it: set
    /// `CARGO_ENCODED_RUSTFLAGS` (flags joined by 0x1F) to them and ours, and remove
    /// `RUSTFLAGS`.
    Environment(String),
    /// No flags in the environment: this `--config` value, `target.<host>.rustflags = [ours]`,
    /// which cargo joins with the `target.<host>` and `target.'cfg(..)'` flags of the user's
    /// configuration files (not with `build.rustflags`, which any target flags replace).
    Config(String),
}

/// The [`FlagRoute`] for `flag`, given `CARGO_ENCODED_RUSTFLAGS` and `RUSTFLAGS` as set (set
/// but empty counts as set, as for cargo, which then reads no other source) and the host
/// triple (`None`: unknown, then the environment route with ours alone).
pub fn flag_route(
    encoded: Option<&str>,
    plain: Option<&str>,
    flag: &str,
    host: Option<&str>,
) -> FlagRoute {
    let mut flags: Vec<String> = match (encoded, plain) {
        (Some(""), _) => Vec::new(),
        (Some(encoded), _) => encoded.split('\u{1f}').map(str::to_string).collect(),
        (None, Some(plain)) => plain.split_whitespace().map(str::to_string).collect(),
        (None, None) => match host {
            Some(host) => {
                return FlagRoute::Config(format!(
                    "target.{}.rustflags=[{}]",
                    toml::Value::String(host.to_string()),
                    toml::Value::String(flag.to_string())
                ))
            }
            None => Vec::new(),
        },
    };
    flags.push(flag.to_string());
    FlagRoute::Environment(flags.join("\u{1f}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_own_flags_are_kept_whichever_way_they_come() {
        let ours = "-Cprofile-use=/p/x.profdata";
        let host = Some("x86_64-unknown-linux-gnu");
        // None in the environment: ours joins the configuration files' target flags.
        assert_eq!(
            flag_route(None, None, ours, host),
            FlagRoute::Config(
                "target.\"x86_64-unknown-linux-gnu\".rustflags=[\"-Cprofile-use=/p/x.profdata\"]"
                    .into()
            )
        );
        // A path with quotes and a backslash stays one TOML string, as cargo reads it.
        let odd = r#"-Cprofile-use=/p/a"b'c\d.profdata"#;
        let FlagRoute::Config(setting) = flag_route(None, None, odd, host) else {
            panic!("not a --config value");
        };
        let parsed: toml::Table = setting.parse().unwrap();
        assert_eq!(
            parsed["target"]["x86_64-unknown-linux-gnu"]["rustflags"],
            toml::Value::Array(vec![toml::Value::String(odd.into())])
        );
        assert_eq!(
            flag_route(None, Some(" -Ctarget-cpu=native  -Dwarnings "), ours, host),
            FlagRoute::Environment(
                "-Ctarget-cpu=native\u{1f}-Dwarnings\u{1f}-Cprofile-use=/p/x.profdata".into()
            )
        );
        // The encoded form wins over RUSTFLAGS, and keeps a flag with a space whole.
        assert_eq!(
            flag_route(Some("-Clink-arg=a b"), Some("-Dwarnings"), ours, host),
            FlagRoute::Environment("-Clink-arg=a b\u{1f}-Cprofile-use=/p/x.profdata".into())
        );
        // Set but empty is set, for cargo too: no flags of theirs, not RUSTFLAGS'.
        assert_eq!(
            flag_route(Some(""), Some("-Dwarnings"), ours, host),
            FlagRoute::Environment(ours.into())
        );
        assert_eq!(
            flag_route(None, Some(""), ours, host),
            FlagRoute::Environment(ours.into())
        );
        // No host known: ours alone, through the environment.
        assert_eq!(
            flag_route(None, None, ours, None),
            FlagRoute::Environment(ours.into())
        );
    }

    #[test]
    fn each_mode_has_its_flag_and_its_own_target_directory() {
        let generate = Pgo::Generate(PathBuf::from("/p/target/pgo"));
        let using = Pgo::Use(PathBuf::from("/p/target/pgo/profile-0a.profdata"));
        assert_eq!(generate.rustc_flag(), "-Cprofile-generate=/p/target/pgo");
        assert_eq!(
            using.rustc_flag(),
            "-Cprofile-use=/p/target/pgo/profile-0a.profdata"
        );
        assert_ne!(generate.target_subdir(), using.target_subdir());
    }

    #[test]
    fn only_profraw_files_are_profiles() {
        let dir = tempfile::tempdir().unwrap();
        assert!(raw_profiles(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
        for name in ["b.profraw", "a.profraw", "notes.txt", "profile-00.profdata"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("c.profraw")).unwrap();
        let found = raw_profiles(dir.path()).unwrap();
        assert_eq!(
            found,
            vec![dir.path().join("a.profraw"), dir.path().join("b.profraw")]
        );
    }

    #[test]
    fn a_profile_is_named_by_its_content_and_only_merges_are_removed_after() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.profraw"), b"counts").unwrap();
        std::fs::write(dir.path().join("profile-prod.profdata"), b"theirs").unwrap();
        let first = install(b"one", dir.path()).unwrap();
        let written = std::fs::metadata(&first).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(install(b"one", dir.path()).unwrap(), first);
        assert_eq!(
            std::fs::metadata(&first).unwrap().modified().unwrap(),
            written,
            "the same profile was written again"
        );
        let second = install(b"two", dir.path()).unwrap();
        assert_ne!(first, second);
        // Both stay until the build with the second one succeeded.
        assert!(first.is_file());
        remove_other_profiles(dir.path(), &second);
        assert!(!first.exists());
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
        let name = second.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_merged_profile(&name), "{name}");
        // Files micro-gw did not merge stay.
        assert!(dir.path().join("gw.profraw").is_file());
        assert!(dir.path().join("profile-prod.profdata").is_file());
        assert!(!is_merged_profile("profile-0123456789ABCDEF.profdata"));
        assert!(!is_merged_profile("profile-0123456789abcde.profdata"));
    }

    #[test]
    fn a_missing_tool_is_reported_with_where_it_was_looked_for_and_the_fix() {
        let here = Path::new(".");
        let named = llvm_profdata_from(
            Some("/nonexistent/llvm-profdata".into()),
            std::ffi::OsStr::new("rustc"),
            here,
        )
        .unwrap_err()
        .to_string();
        assert!(named.contains("/nonexistent/llvm-profdata"), "{named}");
        assert!(named.contains("rustup component add llvm-tools"), "{named}");
        let no_rustc = llvm_profdata_from(None, std::ffi::OsStr::new("/nonexistent/rustc"), here)
            .unwrap_err()
            .to_string();
        assert!(no_rustc.contains("/nonexistent/rustc"), "{no_rustc}");
    }
}
