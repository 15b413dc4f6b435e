//! `micro-gw import <project> --openapi <file|URL>`

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::fetch;
use crate::fsutil::write_atomic;
use crate::loader::{self, SourceFile};
use crate::project::Project;

/// Options of `import`.
#[derive(Debug)]
pub struct ImportOptions {
    /// The project directory.
    pub project: PathBuf,
    /// A definition file or URL.
    pub openapi: String,
    /// Skip certificate checks for a URL.
    pub insecure: bool,
}

/// Validates the definition together with the project's other definitions (base paths and
/// routes must not clash), then writes it atomically into `api_definitions/`.
pub fn run(options: &ImportOptions) -> anyhow::Result<()> {
    let project = Project::existing(&options.project)?;
    let fetched = fetch::fetch(&options.openapi, options.insecure)?;
    let target = project.api_definitions().join(&fetched.file_name);
    let target_name = project.display(&target);
    let mut files: Vec<SourceFile> = project
        .definition_files()
        .with_context(|| format!("reading the definitions of {}", project.root.display()))?
        .into_iter()
        .filter(|f| f.name != target_name)
        .collect();
    let replacing = target.exists();
    // Messages about the new definition name the file (or URL) the user gave, not the copy
    // that would be written into the project.
    let given = options.openapi.clone();
    files.push(SourceFile {
        name: given.clone(),
        text: fetched.text.clone(),
    });
    // The project's Express Gateway configuration takes part: a new API must not collide with
    // its routes on a shared port. Its unsupported steps are the build's business.
    let express = project.express_source()?;
    let load_options = loader::LoadOptions {
        allow_unsupported: true,
        ports: super::build::conf_ports(&project),
        cors_default: super::build::cors_default(&project),
        policies: super::build::policies_source(&project),
        validation: super::build::validation_default(&project),
    };
    let loaded = match loader::load_project(&project.name, &files, express.as_ref(), &load_options)
    {
        Ok(loaded) => loaded,
        Err(failed) => {
            super::print_changed_warnings(
                &failed.warnings,
                &|file| file == given,
                false,
                &project.root,
            );
            bail!(
                "{} was not imported, and the project is unchanged:\n{}",
                options.openapi,
                failed.error
            );
        }
    };
    super::print_changed_warnings(
        &loaded.warnings,
        &|file| file == given,
        false,
        &project.root,
    );
    write_atomic(&target, fetched.text.as_bytes(), None)
        .with_context(|| format!("writing {}", target.display()))?;
    let api = loaded
        .model
        .apis
        .iter()
        .find(|api| api.source == given)
        .context("the imported API is missing from the model")?;
    println!(
        "{} API '{}' {} (base path {}, {} resource(s)) as {}",
        if replacing { "Replaced" } else { "Imported" },
        api.name,
        api.version,
        api.base_path,
        api.resources.len(),
        target.display()
    );
    println!("ID for API with name {} : {}", api.name, api.id);
    println!(
        "(Use \"micro-gw build {}\" to build the project)",
        project.root.display()
    );
    Ok(())
}
