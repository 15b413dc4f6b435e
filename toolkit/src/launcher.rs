//! `gateway <project>/target/<name> [--config <file>] [args...]`: checks the binary and its
//! settings, then replaces itself with the gateway process.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use mgw_runtime::config::{self, CONF_DIR_ENV};

const HELP: &str = "Runs a gateway built by micro-gw.

Usage: gateway <project>/target/<name> [--config <file>] [--<section>.<key>=<value>]... [--<endpoint>_prod_endpoint_<i>=<url>]...
       gateway version

Settings: --config <file>, else $MGW_CONF_DIR/micro-gw.toml, else <project>/conf/micro-gw.toml.";

/// Runs the launcher and returns the exit code.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(first) = args.first() else {
        return Err("missing the gateway binary: gateway <project>/target/<name> (build one with micro-gw build <project>)".into());
    };
    match first.as_str() {
        "version" | "--version" | "-V" => {
            println!(
                "micro-gw gateway launcher {} (runtime {})",
                env!("CARGO_PKG_VERSION"),
                mgw_runtime::VERSION
            );
            return Ok(ExitCode::SUCCESS);
        }
        "help" | "--help" | "-h" => {
            println!("{HELP}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let binary = PathBuf::from(first);
    if !binary.is_file() {
        return Err(format!(
            "{} does not exist or is not a file: give the path of a built gateway, <project>/target/<project> (micro-gw build <project> makes it)",
            binary.display()
        ));
    }
    let (explicit, rest) = split_config(&args[1..])?;
    // The binary answers these itself; they need no settings.
    if rest.iter().any(|a| {
        matches!(
            a.as_str(),
            "version" | "--version" | "-V" | "help" | "--help" | "-h"
        )
    }) {
        let mut command = Command::new(absolute_program(&binary));
        command.args(&rest);
        return exec(command, &binary);
    }
    let conf_dir = std::env::var(CONF_DIR_ENV).ok();
    let config_path = config::locate(explicit.as_deref(), conf_dir.as_deref(), &binary)
        .map_err(|e| e.to_string())?;
    let settings: Vec<(String, String)> = rest
        .iter()
        .filter_map(|a| a.strip_prefix("--")?.split_once('='))
        .filter(|(name, _)| name.contains('.'))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    config::load(&config_path, &env, &settings).map_err(|e| e.to_string())?;
    let config_path = std::path::absolute(&config_path).unwrap_or(config_path);
    let mut command = Command::new(absolute_program(&binary));
    command.arg("--config").arg(&config_path).args(rest);
    exec(command, &binary)
}

/// Separates `--config <file>` / `--config=<file>` from the arguments passed through.
fn split_config(args: &[String]) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let mut config = None;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" || arg == "-c" {
            let file = iter
                .next()
                .ok_or("--config needs a file: --config <path/to/micro-gw.toml>")?;
            config = Some(PathBuf::from(file));
        } else if let Some(file) = arg.strip_prefix("--config=") {
            config = Some(PathBuf::from(file));
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((config, rest))
}

fn absolute_program(binary: &Path) -> PathBuf {
    std::path::absolute(binary).unwrap_or_else(|_| binary.to_path_buf())
}

#[cfg(unix)]
fn exec(mut command: Command, binary: &Path) -> Result<ExitCode, String> {
    use std::os::unix::process::CommandExt;
    let err = command.exec();
    Err(format!("cannot run {}: {err}", binary.display()))
}

#[cfg(not(unix))]
fn exec(mut command: Command, binary: &Path) -> Result<ExitCode, String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_split_from_passed_arguments() {
        let args: Vec<String> = [
            "--config",
            "c.toml",
            "--a_prod_endpoint_0=http://x",
            "--config=d.toml",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (config, rest) = split_config(&args).unwrap();
        assert_eq!(config, Some(PathBuf::from("d.toml")));
        assert_eq!(rest, vec!["--a_prod_endpoint_0=http://x".to_string()]);
    }

    #[test]
    fn missing_binary_is_an_error() {
        let err = run(&["/no/such/gateway".to_string()]).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
