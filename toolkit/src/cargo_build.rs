//! Running `cargo build` on the generated crate: one shared target directory, the pinned lock
//! file (`--locked`), and progress instead of cargo's log unless `--verbose`.
//!
//! Progress comes from cargo itself: with `term.progress.when = "always"` cargo writes its
//! `Building [...] 97/205: hyper, tokio` line to stderr even through a pipe, which gives the exact
//! number of compile units (build scripts included) that a crate count from the lock file cannot.
//! On a terminal that drives an indicatif bar; otherwise a plain line every
//! [`PLAIN_PROGRESS_EVERY`] so a log shows a long first build advancing.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed when stderr is not a terminal.
pub const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How to run cargo.
#[derive(Debug, Clone)]
pub struct CargoOptions {
    /// The shared target directory.
    pub target_dir: PathBuf,
    /// Pass `--offline`.
    pub offline: bool,
    /// Show cargo's own output.
    pub verbose: bool,
    /// Features of the generated crate to enable beyond its defaults (`--features`): optional
    /// parts of the runtime asked for on the command line.
    pub features: Vec<&'static str>,
    /// `micro-gw build --lto`: the release profile with fat link-time optimisation and one
    /// codegen unit ([`LTO_PROFILE`]), over the generated crate's own profile.
    pub lto: bool,
    /// `micro-gw build --profile-generate` or `--profile-use`: rustc's profile flag for the
    /// runtime and the gateway's crate (through `micro-gw` as rustc wrapper, with their
    /// `profile-guided` feature) or for every crate (added to the user's own flags,
    /// [`crate::pgo::flag_route`]; `target_dir` should then be the mode's own,
    /// [`crate::pgo::Pgo::target_subdir`]).
    pub pgo: Option<crate::pgo::ProfileGuided>,
}

/// What `--lto` sets, as cargo `--config` values (they take precedence over the generated
/// `Cargo.toml`'s `[profile.release]`). Measured on the bench project (docs/benchmarks.md,
/// "Issue 16: mimalloc again, and the `--lto` build"): binary 17.8 -> 14.7 MB, idle RSS
/// 14.7 -> 12.7 MB, 6-8 % fewer instructions per request; a rebuild 167 s instead of 0.9 s.
/// Cargo compiles every dependency again for it (with bitcode), so an `--lto` build and a
/// default one keep separate copies in the shared target directory.
pub const LTO_PROFILE: [&str; 2] = [
    "profile.release.lto=\"fat\"",
    "profile.release.codegen-units=1",
];

/// Printed by `micro-gw build --lto` before cargo starts.
pub const LTO_NOTE: &str =
    "Link-time optimisation (--lto): the whole gateway is optimised as one unit.";

/// Printed by `micro-gw build --lto` (without a profile) before cargo starts when no base
/// gateway for the project's runtime features was built yet.
pub const LTO_BASE_NEW_NOTE: &str = "First --lto build with these runtime features: the base gateway is compiled and optimised once (minutes; the first --lto build on this machine also compiles every crate again). Later --lto builds of any project that needs the same features reuse it and take seconds.";

/// Printed by `micro-gw build --lto` (without a profile) after cargo when it found the base
/// gateway up to date.
pub const LTO_BASE_REUSED_NOTE: &str = "The optimised base gateway for these runtime features was up to date: the project's model is attached to a copy of it.";

/// Printed by `micro-gw build --lto` (without a profile) after cargo when it compiled the base
/// gateway.
pub const LTO_BASE_COMPILED_NOTE: &str = "The optimised base gateway for these runtime features was compiled: later --lto builds with the same features reuse it. The project's model is attached to a copy of it.";

/// An exclusive lock on the shared target directory, held from a project's `cargo build` until
/// its binary is copied out: every project's gateway crate is the same package, so two
/// projects with the same name leave their binaries at the same path
/// (`<target>/release/<name>`), and a second build finishing between the first's cargo and its
/// copy would hand the first project the second's binary (its routes, its upstreams). Cargo's
/// own lock covers only the compile. Released when dropped (or when the process ends).
#[derive(Debug)]
pub struct BuildLock {
    _file: std::fs::File,
}

/// Takes the [`BuildLock`] of `target_dir` (creating the directory and
/// `micro-gw-build.lock` in it), saying so when another build holds it. Errors: the directory
/// or the file cannot be made. A file system that cannot lock gets a warning and no lock.
pub fn lock_target_dir(target_dir: &Path) -> anyhow::Result<BuildLock> {
    std::fs::create_dir_all(target_dir)
        .with_context(|| format!("creating {}", target_dir.display()))?;
    let path = target_dir.join("micro-gw-build.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            println!(
                "micro-gw: waiting for another build in {} to finish...",
                target_dir.display()
            );
            file.lock()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        // A file system without locks (NFS without its lock daemon, some virtual file
        // systems: ENOLCK, EOPNOTSUPP, ENOSYS): the build goes on unlocked, as cargo's own
        // does there, with a word on what that risks.
        Err(std::fs::TryLockError::Error(e)) => {
            eprintln!(
                "micro-gw: warning: cannot lock {} ({e}): building without it; do not build two projects of the same name at once",
                path.display()
            );
        }
    }
    Ok(BuildLock { _file: file })
}

/// `cargo build --release` of the binary `binary` of the crate in `gen_dir`, as
/// [`CargoOptions`] say (`$CARGO`, else `cargo` from the path): JSON messages on stdout, stderr
/// piped unless verbose.
fn cargo_command(gen_dir: &Path, binary: &str, options: &CargoOptions) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(gen_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&options.target_dir)
        .arg("--bin")
        .arg(binary)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if options.verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    if options.offline {
        command.arg("--offline");
    }
    let mut features = options.features.clone();
    if let Some(crate::pgo::ProfileGuided {
        mode,
        scope: crate::pgo::Scope::Runtime(wrapper),
    }) = &options.pgo
    {
        features.push(crate::rustc_wrapper::FEATURE);
        crate::rustc_wrapper::configure(&mut command, wrapper, &mode.rustc_flag());
    }
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    if options.lto {
        for setting in LTO_PROFILE {
            command.arg("--config").arg(setting);
        }
    }
    if let Some(crate::pgo::ProfileGuided {
        mode: pgo,
        scope: crate::pgo::Scope::Whole,
    }) = &options.pgo
    {
        let encoded = std::env::var("CARGO_ENCODED_RUSTFLAGS").ok();
        let plain = std::env::var("RUSTFLAGS").ok();
        let host = if encoded.is_none() && plain.is_none() {
            crate::pgo::rustc_host(gen_dir)
        } else {
            None
        };
        match crate::pgo::flag_route(
            encoded.as_deref(),
            plain.as_deref(),
            &pgo.rustc_flag(),
            host.as_deref(),
        ) {
            crate::pgo::FlagRoute::Environment(flags) => {
                command
                    .env("CARGO_ENCODED_RUSTFLAGS", flags)
                    .env_remove("RUSTFLAGS");
            }
            crate::pgo::FlagRoute::Config(setting) => {
                command.arg("--config").arg(setting);
            }
        }
        if let crate::pgo::Pgo::Generate(_) = pgo {
            // The build scripts are instrumented too and write their counts when cargo runs
            // them: into the target directory, not among the gateway's.
            command.env(
                "LLVM_PROFILE_FILE",
                options.target_dir.join("build-scripts-%m.profraw"),
            );
        }
    }
    if !options.verbose {
        // cargo's own progress line, parsed from the stderr pipe below.
        command
            .env("CARGO_TERM_PROGRESS_WHEN", "always")
            .env("CARGO_TERM_PROGRESS_WIDTH", "200")
            .env("CARGO_TERM_COLOR", "never");
    }
    command
}

/// What [`build`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The binary.
    pub executable: PathBuf,
    /// Whether cargo found the binary up to date and compiled nothing for it (its
    /// `compiler-artifact` message's `fresh`).
    pub fresh: bool,
}

/// Builds the crate in `gen_dir` and returns the binary named `binary`, and whether cargo found
/// it up to date.
pub fn build(
    gen_dir: &Path,
    binary: &str,
    package_estimate: u64,
    options: &CargoOptions,
) -> anyhow::Result<Built> {
    let mut command = cargo_command(gen_dir, binary, options);
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "cargo was not found: micro-gw build compiles the gateway with the Rust toolchain; install it (rustup) or set CARGO to cargo's path"
            )
        } else {
            anyhow::anyhow!("cannot start cargo: {e}")
        }
    })?;

    // Collect stderr on a thread so cargo never blocks on a full pipe; its progress lines go
    // to the reporter, everything else is kept for the error message.
    let (events, received) = mpsc::channel::<Progress>();
    let artifacts = events.clone();
    let stderr_reader = child
        .stderr
        .take()
        .map(|stderr| std::thread::spawn(move || read_stderr(stderr, &events)));
    let reporter = {
        let mode = if options.verbose {
            Mode::Quiet
        } else if console_is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        };
        std::thread::spawn(move || report(&received, mode, package_estimate))
    };
    let mut executable: Option<PathBuf> = None;
    let mut fresh = false;
    let mut compiled = 0;
    let stdout = child.stdout.take().context("reading cargo's output")?;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message.get("reason").and_then(|r| r.as_str()) == Some("compiler-artifact") {
            // A fallback count, should this cargo print no progress line.
            compiled += 1;
            let name = message["target"]["name"].as_str().unwrap_or_default();
            let _ = artifacts.send(Progress {
                action: ARTIFACT.into(),
                done: compiled,
                total: package_estimate.max(compiled),
                current: name.to_string(),
            });
            if name == binary {
                if let Some(path) = message.get("executable").and_then(|e| e.as_str()) {
                    executable = Some(PathBuf::from(path));
                    fresh = message.get("fresh").and_then(|f| f.as_bool()) == Some(true);
                }
            }
        }
    }
    drop(artifacts);
    let status = child.wait().context("waiting for cargo")?;
    let stderr = stderr_reader
        .and_then(|h| h.join().ok())
        .unwrap_or_default();
    let _ = reporter.join();
    if !status.success() {
        // `exit status: 101` for a compile error; a signal's name when cargo was stopped (an
        // out-of-memory kill, a Ctrl-C), which may leave little of cargo's output to show.
        let mut message = format!("cargo build failed ({status})");
        if !stderr.trim().is_empty() {
            message.push_str(":\n");
            message.push_str(stderr.trim_end());
        }
        if stderr.contains("lock file") && stderr.contains("--locked") {
            message.push_str(
                "\nThe pinned lock file does not match the runtime's dependencies: this micro-gw was built from inconsistent sources (run scripts/update-gateway-lock.sh and reinstall).",
            );
        } else if options.offline && stderr.contains("offline") {
            message.push_str("\nWith --offline, every crate must already be in cargo's cache: run one build online first.");
        }
        bail!(message);
    }
    let built = executable.unwrap_or_else(|| options.target_dir.join("release").join(binary));
    if !built.is_file() {
        bail!(
            "cargo reported success but {} does not exist",
            built.display()
        );
    }
    Ok(Built {
        executable: built,
        fresh,
    })
}

/// One progress report of cargo's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What cargo is doing: `Building` or `Downloading`.
    pub action: String,
    /// Units (or crates) done.
    pub done: u64,
    /// Units (or crates) in all.
    pub total: u64,
    /// What is in progress now (crate names), possibly empty.
    pub current: String,
}

/// [`Progress::action`] of the fallback count of compiled crates from cargo's JSON messages.
const ARTIFACT: &str = "Compiled";

/// Parses one of cargo's progress lines, `   Building [====>    ] 97/205: hyper, tokio`.
/// Returns `None` for any other line.
pub fn parse_progress(line: &str) -> Option<Progress> {
    let line = line.trim();
    let (action, rest) = line.split_once(' ')?;
    if action != "Building" && action != "Downloading" {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('[')?;
    let (_bar, rest) = rest.split_once(']')?;
    let rest = rest.trim_start();
    let (ratio, current) = match rest.split_once(':') {
        Some((ratio, current)) => (ratio, current.trim()),
        None => (rest, ""),
    };
    let (done, total) = ratio.trim().split_once('/')?;
    Some(Progress {
        action: action.to_string(),
        done: done.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        current: current.trim_end_matches("...").trim().to_string(),
    })
}

/// Reads cargo's stderr to the end: progress fragments (cargo separates redraws with `\r`)
/// go to `events`; the other lines are returned.
fn read_stderr(mut stderr: impl Read, events: &mpsc::Sender<Progress>) -> String {
    let mut kept = String::new();
    let mut pending = Vec::new();
    let mut buffer = [0_u8; 8192];
    let flush = |fragment: &[u8], kept: &mut String| {
        let text = String::from_utf8_lossy(fragment);
        if let Some(progress) = parse_progress(&text) {
            let _ = events.send(progress);
        } else if !text.trim().is_empty() && !is_status(&text) {
            kept.push_str(text.trim_end());
            kept.push('\n');
        }
    };
    loop {
        let read = match stderr.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for &byte in &buffer[..read] {
            if byte == b'\r' || byte == b'\n' {
                flush(&pending, &mut kept);
                pending.clear();
            } else {
                pending.push(byte);
            }
        }
    }
    flush(&pending, &mut kept);
    kept
}

/// cargo's per-crate status lines, which would bury an error message.
fn is_status(line: &str) -> bool {
    let line = line.trim_start();
    ["Compiling ", "Downloaded ", "Downloading ", "Fresh "]
        .iter()
        .any(|status| line.starts_with(status))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `--verbose`: cargo speaks for itself.
    Quiet,
    /// An indicatif bar on stderr.
    Bar,
    /// A plain line every [`PLAIN_PROGRESS_EVERY`].
    Plain,
}

/// Shows progress until `events` closes (cargo's stderr ended).
fn report(events: &mpsc::Receiver<Progress>, mode: Mode, estimate: u64) {
    let started = Instant::now();
    let bar = (mode == Mode::Bar).then(|| progress_bar(estimate));
    let mut last: Option<Progress> = None;
    let mut printed = started;
    let mut cargo_speaks = false;
    loop {
        match events.recv_timeout(Duration::from_millis(500)) {
            // cargo's own count, once seen, is the one shown.
            Ok(progress) if progress.action == ARTIFACT && cargo_speaks => {}
            Ok(progress) => {
                cargo_speaks |= progress.action != ARTIFACT;
                if let Some(bar) = &bar {
                    bar.set_length(progress.total.max(1));
                    bar.set_position(progress.done);
                    bar.set_prefix(if progress.action == "Downloading" {
                        "Downloading"
                    } else {
                        "Compiling"
                    });
                    bar.set_message(progress.current.clone());
                }
                last = Some(progress);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if mode == Mode::Plain && printed.elapsed() >= PLAIN_PROGRESS_EVERY {
            if let Some(progress) = &last {
                eprintln!("{}", plain_line(progress, started.elapsed()));
                printed = Instant::now();
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// The line printed every few seconds when not on a terminal.
pub fn plain_line(progress: &Progress, elapsed: Duration) -> String {
    let what = if progress.action == "Downloading" {
        "downloading crates"
    } else {
        "compiling the gateway"
    };
    let mut line = format!(
        "micro-gw: {what}: {}/{} ({} s)",
        progress.done,
        progress.total,
        elapsed.as_secs()
    );
    if !progress.current.is_empty() {
        line.push_str(": ");
        line.push_str(&progress.current);
    }
    line
}

fn progress_bar(estimate: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(estimate.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("Compiling");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Said before the first gateway build in a target directory.
pub const FIRST_BUILD_NOTE: &str = "The first build on this machine compiles the shared runtime (one to three minutes on two cores when micro-gw was installed through this target directory, as scripts/quickstart.sh does; longer otherwise, as it then compiles the TLS, HTTP and SQLite crates too); later builds of any project reuse it and take about a second.";

/// Whether a gateway was built in `target_dir` before (any project, any runtime version): then
/// the runtime is compiled and a build compiles only the small generated crate, unless the
/// runtime itself changed. (The toolkit's own `mgw-runtime`, left there by an install through
/// this directory, is not the gateways' runtime.)
pub fn runtime_compiled(target_dir: &Path) -> bool {
    std::fs::read_dir(target_dir.join("release").join(".fingerprint")).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("mgw-gateway-")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargos_progress_lines() {
        let line = "    Building [=======>                 ] 97/205: hyper, tokio, syn(build)...";
        assert_eq!(
            parse_progress(line),
            Some(Progress {
                action: "Building".into(),
                done: 97,
                total: 205,
                current: "hyper, tokio, syn(build)".into(),
            })
        );
        let download = parse_progress(" Downloading [==>  ] 3/120: serde").unwrap();
        assert_eq!(
            (download.action.as_str(), download.done, download.total),
            ("Downloading", 3, 120)
        );
        assert_eq!(parse_progress("    Building [=>] 1/2").unwrap().current, "");
        for other in [
            "   Compiling hyper v1.8.0",
            "error[E0425]: cannot find value `x` in this scope",
            "Building",
            "Building [=====",
            "Building [==] x/2: a",
            "",
        ] {
            assert_eq!(parse_progress(other), None, "{other}");
        }
    }

    #[test]
    fn stderr_keeps_messages_and_reports_progress() {
        let stderr = b"   Compiling a v1\r    Building [=> ] 1/4: a\r    Building [==> ] 2/4: b\rerror: it broke\n  --> src/main.rs:1:1\n";
        let (events, received) = mpsc::channel();
        let kept = read_stderr(&stderr[..], &events);
        drop(events);
        assert_eq!(kept, "error: it broke\n  --> src/main.rs:1:1\n");
        let seen: Vec<u64> = received.iter().map(|p| p.done).collect();
        assert_eq!(seen, vec![1, 2]);
    }

    #[test]
    fn one_build_at_a_time_holds_the_target_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let held = lock_target_dir(&target).unwrap();
        // Another open file description of the lock file cannot take it meanwhile.
        let other = std::fs::File::open(target.join("micro-gw-build.lock")).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        let (sender, taken) = mpsc::channel();
        let waiter = {
            let target = target.clone();
            std::thread::spawn(move || {
                let lock = lock_target_dir(&target).unwrap();
                sender.send(()).unwrap();
                drop(lock);
            })
        };
        // The second build waits while the first holds the lock...
        assert!(taken.recv_timeout(Duration::from_millis(300)).is_err());
        drop(held);
        // ...and goes on once it is released.
        taken.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
        other.try_lock().unwrap();
    }

    /// Writes the lock file of the probe crate in `dir` (no dependencies: offline).
    fn generate_lockfile(dir: &Path) {
        let locked = Command::new(env!("CARGO"))
            .args(["generate-lockfile", "--offline", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .status()
            .unwrap();
        assert!(locked.success());
    }

    /// A failed build says how cargo ended and shows the compiler's own error (the status's
    /// wording is Unix's).
    #[cfg(unix)]
    #[test]
    fn a_failed_build_says_how_cargo_ended_and_what_the_compiler_said() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [[bin]]\nname = \"broken\"\npath = \"main.rs\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("main.rs"),
            "fn main() { let x: u8 = \"no\"; }\n",
        )
        .unwrap();
        generate_lockfile(dir.path());
        let options = CargoOptions {
            target_dir: dir.path().join("target"),
            offline: true,
            verbose: false,
            features: Vec::new(),
            lto: false,
            pgo: None,
        };
        let err = build(dir.path(), "broken", 1, &options)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cargo build failed (exit status: 101):"),
            "{err}"
        );
        assert!(err.contains("mismatched types"), "{err}");
    }

    /// `--lto` reaches rustc over the crate's own release profile, which says what the
    /// generated one says (`lto = false`, 16 codegen units): cargo's `--config` wins. Builds a
    /// crate with no dependencies both ways and reads the binary's rustc line (`cargo -v`).
    #[test]
    fn lto_overrides_the_generated_crates_release_profile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"lto-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [[bin]]\nname = \"probe\"\npath = \"main.rs\"\n\n\
             [profile.release]\nlto = false\ncodegen-units = 16\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("main.rs"), "fn main() {}\n").unwrap();
        generate_lockfile(dir.path());
        for lto in [false, true] {
            let options = CargoOptions {
                // One each: a build the other left fresh prints no rustc line.
                target_dir: dir.path().join(format!("target-{lto}")),
                offline: true,
                verbose: false,
                features: Vec::new(),
                lto,
                pgo: None,
            };
            // Nothing but the option under test may set the profile: not the environment, not
            // a `.cargo/config.toml` above the directory cargo runs in.
            let output = cargo_command(dir.path(), "probe", &options)
                .arg("-v")
                .env_remove("CARGO_PROFILE_RELEASE_LTO")
                .env_remove("CARGO_PROFILE_RELEASE_CODEGEN_UNITS")
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{stderr}");
            let rustc = stderr
                .lines()
                .find(|line| line.contains("--crate-name probe"))
                .unwrap_or_else(|| panic!("no rustc line for the binary in:\n{stderr}"));
            let args: Vec<&str> = rustc.split_whitespace().collect();
            let codegen = |option: &str| args.windows(2).any(|w| w == ["-C", option]);
            assert_eq!(codegen("lto") || codegen("lto=fat"), lto, "{rustc}");
            assert_eq!(codegen("codegen-units=1"), lto, "{rustc}");
            assert_eq!(codegen("codegen-units=16"), !lto, "{rustc}");
        }
    }

    /// The whole profile-guided loop on a crate with no dependencies, with the toolchain's
    /// real `llvm-profdata`: the instrumented build writes nothing among the profiles (its
    /// build scripts' counts go to the target directory), its binary writes its counts on exit,
    /// they merge into a content-named profile, and the second build hands that profile to
    /// rustc and runs. A file that is not a profile gets the tool's own complaint. Without
    /// rustup's `llvm-tools` the test says so and stops, except under CI=true (`.ci/run`
    /// installs it), where that fails it.
    #[test]
    fn a_profile_generated_by_the_instrumented_binary_reaches_rustc() {
        let tool = match crate::pgo::llvm_profdata(Path::new(".")) {
            Ok(tool) => tool,
            Err(err) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped: {err}");
                return;
            }
            Err(err) => panic!("{err}"),
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"pgo-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [[bin]]\nname = \"probe\"\npath = \"main.rs\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("build.rs"), "fn main() {}\n").unwrap();
        std::fs::write(
            dir.path().join("main.rs"),
            "fn main() {\n    let n = std::env::args().count() as u64;\n    \
             let mut sum = 0u64;\n    for i in 0..10_000 * n {\n        \
             if i % 3 == 0 { sum += i } else { sum ^= i }\n    }\n    println!(\"{sum}\");\n}\n",
        )
        .unwrap();
        generate_lockfile(dir.path());
        let profiles = dir.path().join("pgo");
        std::fs::create_dir(&profiles).unwrap();
        let build = |pgo: crate::pgo::Pgo| {
            let options = CargoOptions {
                target_dir: dir.path().join("target").join(pgo.target_subdir()),
                offline: true,
                verbose: false,
                features: Vec::new(),
                lto: false,
                pgo: Some(crate::pgo::ProfileGuided {
                    mode: pgo,
                    scope: crate::pgo::Scope::Whole,
                }),
            };
            let output = cargo_command(dir.path(), "probe", &options)
                .arg("-v")
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{stderr}");
            let rustc = stderr
                .lines()
                .find(|line| line.contains("--crate-name probe"))
                .unwrap_or_else(|| panic!("no rustc line for the binary in:\n{stderr}"))
                .to_string();
            (options.target_dir.join("release/probe"), rustc)
        };
        let (instrumented, rustc) = build(crate::pgo::Pgo::Generate(profiles.clone()));
        assert!(
            rustc.contains(&format!("-Cprofile-generate={}", profiles.display())),
            "{rustc}"
        );
        assert!(
            crate::pgo::raw_profiles(&profiles).unwrap().is_empty(),
            "the build script's counts went among the profiles"
        );
        let ran = Command::new(&instrumented).arg("x").output().unwrap();
        assert!(ran.status.success());
        let raws = crate::pgo::raw_profiles(&profiles).unwrap();
        assert_eq!(raws.len(), 1, "{raws:?}");
        let merged = crate::pgo::merge(&tool, &raws, &profiles).unwrap();
        assert_eq!(crate::pgo::merge(&tool, &raws, &profiles).unwrap(), merged);
        assert!(merged.is_file());
        let (optimised, rustc) = build(crate::pgo::Pgo::Use(merged.clone()));
        assert!(
            rustc.contains(&format!("-Cprofile-use={}", merged.display())),
            "{rustc}"
        );
        let ran = Command::new(&optimised).arg("x").output().unwrap();
        assert!(ran.status.success());
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout).trim(),
            (0..20_000u64)
                .fold(0, |sum, i| if i % 3 == 0 { sum + i } else { sum ^ i })
                .to_string()
        );
        let bad = profiles.join("bad.profraw");
        std::fs::write(&bad, b"not a profile").unwrap();
        let err = crate::pgo::merge(&tool, &[bad], &profiles)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.profraw"), "{err}");
        assert!(merged.is_file(), "a failed merge removed the good profile");
    }

    #[test]
    fn a_target_directory_without_a_gateway_is_a_first_build() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!runtime_compiled(dir.path()));
        let release = dir.path().join("release");
        std::fs::create_dir_all(release.join("deps")).unwrap();
        // The toolkit's runtime (an install through this directory) is not the gateways'.
        std::fs::write(release.join("deps/libmgw_runtime-0123abcd.rlib"), b"").unwrap();
        std::fs::create_dir_all(release.join(".fingerprint/mgw-runtime-0123abcd")).unwrap();
        assert!(!runtime_compiled(dir.path()));
        std::fs::create_dir_all(release.join(".fingerprint/mgw-gateway-4567ef01")).unwrap();
        assert!(runtime_compiled(dir.path()));
    }

    /// What the installed toolkit compiles (`cargo tree -p micro-gw`, normal and build
    /// dependencies, this platform): never the server half of the runtime, the D-Bus keyring
    /// stack or a regex engine, each of which cost a cold `cargo install` tens of seconds.
    #[test]
    fn the_toolkit_compiles_no_server_half_no_dbus_stack_and_no_regex_engine() {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--locked",
                "--offline",
                "-e",
                "normal,build",
                "--prefix",
                "none",
            ])
            .args([
                "--format",
                "{p}",
                "--manifest-path",
                manifest,
                "-p",
                "micro-gw",
            ])
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
        assert!(names.contains(&"mgw-runtime"), "{tree}");
        // (hyper-rustls and tokio-rustls come with reqwest, the toolkit's HTTP client.)
        for heavy in [
            "jsonwebtoken",
            "tracing-appender",
            "zbus",
            "secret-service",
            "regex-automata",
        ] {
            assert!(
                !names.contains(&heavy),
                "the toolkit compiles {heavy}:\n{tree}"
            );
        }
    }

    /// `cargo tree` of a manifest: every package with its enabled features (normal and build
    /// dependencies, this platform), as `name version` -> the feature lists it is built with
    /// (a package built for the host and for the target may appear with two lists). Not
    /// `--offline`: the optional features' crates (Redis, OTLP, storage) are not in the cache of
    /// a machine that never built a gateway with them, and `cargo tree` reads their manifests
    /// (`--locked` keeps the lock file as it is; only missing sources are downloaded).
    fn features_by_package(
        manifest: &Path,
        package: Option<&str>,
        features: &[&str],
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut command = Command::new(env!("CARGO"));
        command.args([
            "tree",
            "--locked",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}|{f}",
            "--manifest-path",
        ]);
        command.arg(manifest);
        if let Some(package) = package {
            command.args(["-p", package]);
        }
        if !features.is_empty() {
            command.arg("--features").arg(features.join(","));
        }
        let out = command.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut packages = std::collections::BTreeMap::<_, std::collections::BTreeSet<_>>::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let line = line.trim_end_matches(" (*)").replace(" (proc-macro)", "");
            let Some((package, features)) = line.split_once('|') else {
                continue;
            };
            // Only registry crates: path packages (the runtime, the toolkit) are never shared.
            if package.contains(" (") {
                continue;
            }
            packages
                .entry(package.to_string())
                .or_default()
                .insert(features.to_string());
        }
        packages
    }

    /// The gateway crate's template rendered into a temporary directory with its pinned lock
    /// file, on the runtime's default features (a project's own are asked for with
    /// `--features`).
    fn rendered_template() -> tempfile::TempDir {
        let templates = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../templates/gateway"));
        let runtime = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime-template"));
        let gen = tempfile::tempdir().unwrap();
        let manifest = std::fs::read_to_string(templates.join("Cargo.toml"))
            .unwrap()
            .replace("{{ toolkit_version }}", "test")
            .replace("{{ binary }}", "gateway")
            .replace(
                "{{ runtime_path_literal }}",
                &format!("{:?}", runtime.canonicalize().unwrap()),
            )
            // What `micro-gw build` asks for a project that needs no optional part.
            .replace("{{ features }}", "[\"mimalloc\"]");
        std::fs::write(gen.path().join("Cargo.toml"), manifest).unwrap();
        std::fs::write(gen.path().join("main.rs"), "fn main() {}\n").unwrap();
        std::fs::copy(templates.join("build.rs"), gen.path().join("build.rs")).unwrap();
        std::fs::copy(templates.join("Cargo.lock"), gen.path().join("Cargo.lock")).unwrap();
        gen
    }

    /// The toolkit's `cargo install` into the gateways' shared target directory
    /// (scripts/quickstart.sh) leaves compiled what the first gateway build needs only when
    /// both builds enable the same features of every crate they share: the feature pins in
    /// toolkit/Cargo.toml and templates/gateway/Cargo.toml keep them equal. serde_json is the
    /// one exception: the toolkit keeps the key order of the documents it rewrites
    /// (`preserve_order`), gateways keep serde_json's own (sorted) maps.
    #[test]
    fn the_toolkit_and_the_gateway_share_compiled_crates() {
        let toolkit_manifest = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        // A project with mimalloc and no optional part (the common case; the optional
        // features' crates are their own, see `optional_features_compile_each_shared_crate_once`).
        let gen = rendered_template();

        let toolkit = features_by_package(toolkit_manifest, Some("micro-gw"), &[]);
        let gateway = features_by_package(&gen.path().join("Cargo.toml"), None, &[]);
        let mut differ = Vec::new();
        for (package, features) in &gateway {
            if package.starts_with("serde_json ") {
                continue;
            }
            // Every way the gateway builds a crate is a way the toolkit builds it (the toolkit
            // may build it once more, e.g. for its build scripts).
            if let Some(theirs) = toolkit.get(package) {
                if !features.is_subset(theirs) {
                    differ.push(format!(
                        "{package}: toolkit {theirs:?}, gateway {features:?}"
                    ));
                }
            }
        }
        assert!(
            differ.is_empty(),
            "crates the toolkit and a gateway both compile, with different features (pin them in toolkit/Cargo.toml or templates/gateway/Cargo.toml):\n{}",
            differ.join("\n")
        );
        // The same settings too: the gateway's release profile is the workspace's (cargo's
        // defaults where neither says), and every per-package setting of a shared crate is the
        // same in both; only the gateway binary itself is stripped.
        let workspace: toml::Table = toml::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
                .unwrap(),
        )
        .unwrap();
        let template: toml::Table =
            toml::from_str(&std::fs::read_to_string(gen.path().join("Cargo.toml")).unwrap())
                .unwrap();
        let release = |table: &toml::Table| table["profile"]["release"].as_table().unwrap().clone();
        let (ours, theirs) = (release(&workspace), release(&template));
        for key in [
            "opt-level",
            "lto",
            "codegen-units",
            "debug",
            "incremental",
            "strip",
        ] {
            let default = match key {
                "opt-level" => Some(toml::Value::Integer(3)),
                "lto" | "debug" | "incremental" => Some(toml::Value::Boolean(false)),
                _ => None,
            };
            let value = |t: &toml::Table| t.get(key).cloned().or_else(|| default.clone());
            assert_eq!(value(&ours), value(&theirs), "[profile.release] {key}");
        }
        let overrides = |t: &toml::Table| {
            t.get("package")
                .and_then(|p| p.as_table())
                .cloned()
                .unwrap_or_default()
        };
        let (ours, theirs) = (overrides(&ours), overrides(&theirs));
        let shared = |name: &str| {
            gateway.keys().any(|p| p.split(' ').next() == Some(name))
                && toolkit.keys().any(|p| p.split(' ').next() == Some(name))
        };
        for name in ours.keys().chain(theirs.keys()) {
            if shared(name) {
                assert_eq!(
                    ours.get(name),
                    theirs.get(name),
                    "[profile.release.package.{name}] differs between Cargo.toml and templates/gateway/Cargo.toml"
                );
            }
        }
        assert_eq!(
            theirs.get("mgw-gateway").and_then(|p| p.get("strip")),
            Some(&toml::Value::Boolean(true))
        );

        // What a gateway shares with the toolkit includes the heavy ones.
        for heavy in [
            "rustls ",
            "ring ",
            "tokio ",
            "h2 ",
            "hyper ",
            "libsqlite3-sys ",
            "syn ",
        ] {
            assert!(
                gateway.keys().any(|p| p.starts_with(heavy))
                    && toolkit.keys().any(|p| p.starts_with(heavy)),
                "{heavy}is no longer in both builds"
            );
        }
    }

    /// Projects that turn on different optional features of the runtime (`storage`,
    /// `validation`, `otlp`, `redis`, any combination) share one target directory: a crate
    /// compiled with other features is compiled again, and with it everything above it (a
    /// feature of `futures-util` or of the host's `syn` recompiles hyper or every derive macro:
    /// minutes). So every crate any combination compiles has one set of features in all of
    /// them; the pins in templates/gateway/Cargo.toml keep it so, and a project's first build
    /// with a feature compiles only that feature's crates and the runtime.
    #[test]
    fn optional_features_compile_each_shared_crate_once() {
        let gen = rendered_template();
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(gen.path().join("Cargo.toml")).unwrap())
                .unwrap();
        let optional: Vec<&str> = manifest["features"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|feature| *feature != "default")
            .collect();
        assert!(optional.len() >= 4, "{optional:?}");
        // package -> its feature lists -> the combinations that compile it so.
        let mut seen = std::collections::BTreeMap::<
            String,
            std::collections::BTreeMap<std::collections::BTreeSet<String>, Vec<String>>,
        >::new();
        for mask in 0u32..(1 << optional.len()) {
            let features: Vec<&str> = (0..optional.len())
                .filter(|bit| mask & (1 << bit) != 0)
                .map(|bit| optional[bit])
                .collect();
            let packages = features_by_package(&gen.path().join("Cargo.toml"), None, &features);
            for (package, lists) in packages {
                seen.entry(package)
                    .or_default()
                    .entry(lists)
                    .or_default()
                    .push(format!("{features:?}"));
            }
        }
        let differ: Vec<String> = seen
            .iter()
            .filter(|(_, ways)| ways.len() > 1)
            .map(|(package, ways)| format!("{package}: {ways:?}"))
            .collect();
        assert!(
            differ.is_empty(),
            "crates compiled with different features depending on a project's optional features (pin the union in templates/gateway/Cargo.toml):\n{}",
            differ.join("\n")
        );
    }

    #[test]
    fn the_plain_line_says_how_far_and_how_long() {
        let progress = parse_progress("Building [=> ] 97/205: hyper, tokio").unwrap();
        assert_eq!(
            plain_line(&progress, Duration::from_secs(42)),
            "micro-gw: compiling the gateway: 97/205 (42 s): hyper, tokio"
        );
    }
}
