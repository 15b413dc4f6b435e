//! `micro-gw build <project> [--offline] [-v]`: project -> validated model -> generated crate
//! -> cargo build (shared target directory) -> `<project>/target/<project>`, copied atomically.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::cargo_build::{self, CargoOptions};
use crate::codegen;
use crate::fsutil::copy_atomic;
use crate::loader;
use crate::paths;
use crate::project::Project;
use crate::runtime_sources;

/// Options of `build`.
#[derive(Debug)]
pub struct BuildOptions {
    /// The project directory.
    pub project: PathBuf,
    /// Build without network access.
    pub offline: bool,
    /// Show cargo's output.
    pub verbose: bool,
}

/// Builds the project's gateway binary.
pub fn run(options: &BuildOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let project = Project::existing(&options.project)?;
    let files = project
        .definition_files()
        .with_context(|| format!("reading the definitions of {}", project.root.display()))?;
    if files.is_empty() {
        bail!(
            "Nothing to build: {} has no API definition (.yaml, .yml or .json). Use \"micro-gw import {} --openapi <file|URL>\" to add one",
            project.api_definitions().display(),
            project.root.display()
        );
    }
    check_settings(&project);
    print!("Generating sources...");
    let loaded = match loader::load(&project.name, &files) {
        Ok(loaded) => loaded,
        Err(failed) => {
            println!("[ERROR]");
            super::print_warnings(&failed.warnings);
            println!("BUILD FAILED");
            bail!("{}", failed.error);
        }
    };
    let cache = paths::cache_dir();
    let runtime_dir = runtime_sources::unpack(&cache)?;
    let files = codegen::render(&loaded.model, &project.name, &runtime_dir)?;
    codegen::write(&project.gen_dir(), &files)?;
    println!("[DONE]");
    super::print_warnings(&loaded.warnings);
    if options.verbose {
        println!(
            "micro-gw: [verbose] generated crate: {}",
            project.gen_dir().display()
        );
        println!(
            "micro-gw: [verbose] runtime sources: {}",
            runtime_dir.display()
        );
        println!(
            "micro-gw: [verbose] shared target directory: {}",
            paths::target_dir().display()
        );
    }
    println!(
        "Compiling gateway '{}' ({} API(s), {} resource(s))...",
        project.name,
        loaded.model.apis.len(),
        loaded.model.resource_count()
    );
    if !cargo_build::runtime_compiled(&paths::target_dir()) {
        println!("{}", cargo_build::FIRST_BUILD_NOTE);
    }
    let cargo = CargoOptions {
        target_dir: paths::target_dir(),
        offline: options.offline,
        verbose: options.verbose,
    };
    let built = match cargo_build::build(
        &project.gen_dir(),
        &project.name,
        cargo_build::package_count(codegen::PINNED_LOCK),
        &cargo,
    ) {
        Ok(built) => built,
        Err(err) => {
            println!("BUILD FAILED");
            return Err(err);
        }
    };
    let target = project.binary();
    copy_atomic(&built, &target)
        .with_context(|| format!("copying the gateway to {}", target.display()))?;
    let target = std::path::absolute(&target).unwrap_or(target);
    println!(
        "BUILD SUCCESSFUL ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("Target: {}", target.display());
    println!("(Use \"gateway {}\" to start it)", target.display());
    Ok(())
}

/// Runtime settings are not compiled in, but a broken file is worth knowing about now.
fn check_settings(project: &Project) {
    let config = project.config_file();
    if let Err(err) = mgw_runtime::config::load(&config, &[], &[]) {
        eprintln!(
            "micro-gw: warning: {err} (the gateway will refuse to start until this is fixed)"
        );
    }
    let deployment = project.deployment_config();
    if let Ok(text) = std::fs::read_to_string(&deployment) {
        if let Err(err) = toml::from_str::<toml::Table>(&text) {
            eprintln!(
                "micro-gw: warning: {}: {} (the content is invalid TOML)",
                deployment.display(),
                err.message()
            );
        }
    }
}
