//! Running `cargo build` on the generated crate: one shared target directory, the pinned lock
//! file (`--locked`), and a progress bar instead of cargo's log unless `--verbose`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How to run cargo.
#[derive(Debug, Clone)]
pub struct CargoOptions {
    /// The shared target directory.
    pub target_dir: PathBuf,
    /// Pass `--offline`.
    pub offline: bool,
    /// Show cargo's own output.
    pub verbose: bool,
}

/// Builds the crate in `gen_dir` and returns the path of the binary named `binary`.
pub fn build(
    gen_dir: &Path,
    binary: &str,
    package_estimate: u64,
    options: &CargoOptions,
) -> anyhow::Result<PathBuf> {
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
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "cargo was not found: micro-gw build compiles the gateway with the Rust toolchain; install it (rustup) or set CARGO to cargo's path"
            )
        } else {
            anyhow::anyhow!("cannot start cargo: {e}")
        }
    })?;

    // Collect stderr on a thread so cargo never blocks on a full pipe.
    let stderr_reader = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });
    let progress = progress_bar(package_estimate, options.verbose);
    let mut executable: Option<PathBuf> = None;
    let stdout = child.stdout.take().context("reading cargo's output")?;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match message.get("reason").and_then(|r| r.as_str()) {
            Some("compiler-artifact") => {
                let name = message["target"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                progress.inc(1);
                progress.set_message(name.clone());
                if name == binary {
                    if let Some(path) = message.get("executable").and_then(|e| e.as_str()) {
                        executable = Some(PathBuf::from(path));
                    }
                }
            }
            Some("build-script-executed") => progress.tick(),
            _ => {}
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    progress.finish_and_clear();
    let stderr = stderr_reader
        .and_then(|h| h.join().ok())
        .unwrap_or_default();
    if !status.success() {
        let mut message = String::from("cargo build failed");
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
    Ok(built)
}

fn progress_bar(estimate: u64, verbose: bool) -> ProgressBar {
    if verbose || !console_is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(estimate.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} Compiling [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// The number of packages in a lock file: an estimate of how many crates a cold build compiles.
pub fn package_count(lock: &str) -> u64 {
    lock.lines().filter(|l| l.trim() == "[[package]]").count() as u64
}
