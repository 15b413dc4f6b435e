//! `micro-gw build <project> [--offline] [-v] [--features PART,...] [--lto]
//! [--profile-generate | --profile-use[=DIR|FILE]]`: project ->
//! validated model -> generated crate -> cargo build (shared target directory) ->
//! `<project>/target/<project>`, copied atomically.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::cargo_build::{self, CargoOptions};
use crate::codegen;
use crate::fsutil::{copy_atomic, copy_with_tail_atomic};
use crate::loader;
use crate::paths;
use crate::pgo;
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
    /// Keep steps of unsupported Express Gateway policies with their stated behaviour.
    pub allow_unsupported: bool,
    /// `-d`: a deployment configuration that replaces `conf/deployment-config.toml`.
    pub deployment_config: Option<PathBuf>,
    /// Docker and Kubernetes artefacts asked for on the command line.
    pub deploy: crate::deploy::DeployOptions,
    /// `--features`: optional parts of the runtime to compile in beyond what the project needs.
    pub features: Vec<codegen::RuntimeFeature>,
    /// `--lto`: fat link-time optimisation and one codegen unit ([`CargoOptions::lto`]).
    pub lto: bool,
    /// `--allocator`: the gateway's global allocator.
    pub allocator: codegen::Allocator,
    /// `--profile-generate` or `--profile-use`: profile-guided optimisation ([`crate::pgo`]).
    pub profile: Option<ProfileRequest>,
}

/// A profile-guided build asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRequest {
    /// `--profile-generate`: an instrumented gateway writing into `<project>/target/pgo/`.
    Generate,
    /// `--profile-use[=DIR|FILE]`: the `.profraw` files of a directory (default
    /// `<project>/target/pgo/`), one `.profraw` file, or a merged `.profdata` file.
    Use(Option<PathBuf>),
}

/// The project's profile directory, `<project>/target/pgo/`, absolute (an instrumented
/// binary keeps the path it was built with).
fn profile_dir(project: &Project) -> PathBuf {
    let dir = project.target_dir().join("pgo");
    std::path::absolute(&dir).unwrap_or(dir)
}

/// What `request` compiles with: for `--profile-use`, the profile merged (or the given
/// `.profdata` copied) into the project's profile directory under a name of its content.
/// Errors before anything is compiled: no `llvm-profdata`, no profile, a merge that fails.
fn resolve_profile(project: &Project, request: &ProfileRequest) -> anyhow::Result<pgo::Pgo> {
    let dir = profile_dir(project);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    resolve_profile_in(project, request, dir)
}

/// Whether `profile` is a `--profile-use` profile that was already in the project's profile
/// directory before this build (the same content as the last build's): cargo then finds every
/// crate compiled with it.
fn profile_was_there(profile: &pgo::Pgo, before: &[std::ffi::OsString]) -> bool {
    match profile {
        pgo::Pgo::Use(file) => file
            .file_name()
            .is_some_and(|name| before.iter().any(|b| b == name)),
        pgo::Pgo::Generate(_) => false,
    }
}

/// [`resolve_profile`] in the (existing) profile directory `dir`.
fn resolve_profile_in(
    project: &Project,
    request: &ProfileRequest,
    dir: PathBuf,
) -> anyhow::Result<pgo::Pgo> {
    let from = match request {
        ProfileRequest::Generate => return Ok(pgo::Pgo::Generate(dir)),
        ProfileRequest::Use(from) => from.clone().unwrap_or_else(|| dir.clone()),
    };
    if from.is_file() && from.extension().is_some_and(|e| e == "profdata") {
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        let installed = pgo::install(&bytes, &dir)
            .with_context(|| format!("writing the profile into {}", dir.display()))?;
        return Ok(pgo::Pgo::Use(installed));
    }
    let raws = if from.is_dir() {
        pgo::raw_profiles(&from)?
    } else if from.is_file() && from.extension().is_some_and(|e| e == "profraw") {
        vec![from.clone()]
    } else if from == dir {
        Vec::new()
    } else {
        return Err(pgo::PgoError::NotAProfile {
            path: from.display().to_string(),
            missing: if from.exists() {
                ""
            } else {
                " (it does not exist)"
            },
        }
        .into());
    };
    if raws.is_empty() {
        return Err(pgo::PgoError::NoProfile {
            dir: from.display().to_string(),
            project: project.root.display().to_string(),
        }
        .into());
    }
    let tool = pgo::llvm_profdata(&project.root)?;
    print!(
        "Merging {} profile file(s) from {}...",
        raws.len(),
        from.display()
    );
    let merged = pgo::merge(&tool, &raws, &dir);
    println!("{}", if merged.is_ok() { "[DONE]" } else { "[ERROR]" });
    Ok(pgo::Pgo::Use(merged?))
}

/// Builds the project's gateway binary.
pub fn run(options: &BuildOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let project = Project::existing(&options.project)?;
    let definitions = project
        .definition_files()
        .with_context(|| format!("reading the definitions of {}", project.root.display()))?;
    let express = project.express_source()?;
    if definitions.is_empty() && express.is_none() {
        bail!(
            "Nothing to build: {} has no API definition (.yaml, .yml or .json) and the project has no Express Gateway configuration. Use \"micro-gw import {} --openapi <file|URL>\" (or --express-gateway <gateway.config.yml>) to add one",
            project.api_definitions().display(),
            project.root.display()
        );
    }
    // Every source file, for the record of what changed since the last build.
    let mut all_sources = definitions.clone();
    if let Some(express) = &express {
        all_sources.push(express.gateway.clone());
        all_sources.extend(express.system.clone());
    }
    if let Some(file) = &options.deployment_config {
        let text = super::init::read_deployment_config(file)?;
        crate::fsutil::write_atomic(&project.deployment_config(), text.as_bytes(), None)
            .with_context(|| format!("writing {}", project.deployment_config().display()))?;
    }
    let settings = check_settings(&project);
    // A deployment configuration that cannot be used fails before the long compile.
    check_deployment(&project)?;
    // Held from resolving the profile and generating the crate until the binary is copied
    // out: another build of this project would rewrite the crate (or its profile) under cargo,
    // and one of another project of the same name would replace the binary before the copy.
    let build_lock = cargo_build::lock_target_dir(&paths::target_dir())?;
    // The merges already there, to tell a new profile from the last build's.
    let merged_before: Vec<std::ffi::OsString> = match &options.profile {
        Some(ProfileRequest::Use(_)) => std::fs::read_dir(profile_dir(&project))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    // A profile that cannot be used fails before the long compile, too.
    let profile = match &options.profile {
        Some(request) => match resolve_profile(&project, request) {
            Ok(profile) => Some(profile),
            Err(err) => {
                println!("BUILD FAILED");
                return Err(err);
            }
        },
        None => None,
    };
    let seen = BuiltDefinitions::read(&project);
    let changed = |file: &str| seen.changed(file, &all_sources);
    print!("Generating sources...");
    let load_options = loader::LoadOptions {
        cors_default: cors_default(&project),
        allow_unsupported: options.allow_unsupported,
        ports: conf_ports(&project),
        policies: policies_source(&project),
        validation: validation_default(&project),
    };
    let loaded =
        match loader::load_project(&project.name, &definitions, express.as_ref(), &load_options) {
            Ok(loaded) => loaded,
            Err(failed) => {
                println!("[ERROR]");
                super::print_changed_warnings(
                    &failed.warnings,
                    &changed,
                    options.verbose,
                    &project.root,
                );
                println!("BUILD FAILED");
                bail!("{}", failed.error);
            }
        };
    let cache = paths::cache_dir();
    let runtime_dir = runtime_sources::unpack(&cache)?;
    let mut features = codegen::runtime_features(&loaded.model);
    if let Ok(settings) = mgw_runtime::config::load(&project.config_file(), &[], &[]) {
        features.extend(codegen::settings_features(&settings.config));
    }
    for feature in codegen::system_features(loaded.store.as_ref()) {
        if !features.contains(&feature) {
            features.push(feature);
        }
    }
    features.extend(options.allocator.cargo_feature());
    let files =
        codegen::render_with_features(&loaded.model, &features, &project.name, &runtime_dir)?;
    codegen::write(&project.gen_dir(), &files)?;
    println!("[DONE]");
    super::print_changed_warnings(&loaded.warnings, &changed, options.verbose, &project.root);
    if !loaded.unsupported.is_empty() {
        println!(
            "{} step(s) of policies not supported yet are kept (--allow-unsupported); each does this:",
            loaded.unsupported.len()
        );
        for step in &loaded.unsupported {
            println!("  {step}");
        }
    }
    if let Some(security) = &settings {
        if let Some(line) = unreachable_resources(&loaded.model, security, &project) {
            eprintln!("micro-gw: warning: {line}");
        }
    }
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
    let express_routes: usize = loaded.model.express.iter().map(|e| e.routes.len()).sum();
    if loaded.model.express.is_empty() {
        println!(
            "Compiling gateway '{}' ({} API(s), {} resource(s))...",
            project.name,
            loaded.model.apis.len(),
            loaded.model.resource_count()
        );
    } else {
        println!(
            "Compiling gateway '{}' ({} API(s), {} resource(s), {} Express Gateway route(s))...",
            project.name,
            loaded.model.apis.len(),
            loaded.model.resource_count(),
            express_routes
        );
    }
    // An --lto build has its own note: its first build and every rebuild take minutes.
    if !options.lto && !cargo_build::runtime_compiled(&paths::target_dir()) {
        println!("{}", cargo_build::FIRST_BUILD_NOTE);
    }
    // Asked-for parts go to cargo's --features: the generated Cargo.toml keeps saying what the
    // project itself needs.
    let extra = codegen::extra_features(&features, &options.features);
    if !extra.is_empty() {
        println!(
            "Runtime parts compiled in on request (--features): {}",
            extra.join(", ")
        );
    }
    if options.allocator == codegen::Allocator::System {
        println!("{}", codegen::SYSTEM_ALLOCATOR_NOTE);
    }
    // An --lto build without a profile compiles the base gateway for its runtime features (once,
    // shared by every project that needs them) and attaches the model to a copy of it.
    let all_features: Vec<&str> = features.iter().copied().chain(extra.clone()).collect();
    let base = if options.lto && profile.is_none() {
        match write_lto_base(&all_features, &runtime_dir, &cache) {
            Ok(base) => Some(base),
            Err(err) => {
                println!("BUILD FAILED");
                return Err(err);
            }
        }
    } else {
        None
    };
    if options.verbose {
        if let Some((_, dir)) = &base {
            println!(
                "micro-gw: [verbose] --lto base gateway's crate (built instead of the generated one, the model attached to it): {}",
                dir.display()
            );
        }
    }
    if options.lto {
        println!("{}", cargo_build::LTO_NOTE);
    }
    if let Some((name, _)) = &base {
        // Whether cargo finds it up to date is said after cargo.
        if !paths::target_dir().join("release").join(name).is_file() {
            println!("{}", cargo_build::LTO_BASE_NEW_NOTE);
        }
    }
    // With --lto every crate is compiled with the profile (it compiles every crate again
    // anyway); without, the runtime and the gateway's crate, through micro-gw as rustc wrapper.
    let profile = match profile {
        Some(mode) => match profile_scope(options.lto) {
            Ok(scope) => Some(pgo::ProfileGuided { mode, scope }),
            Err(err) => {
                println!("BUILD FAILED");
                return Err(err);
            }
        },
        None => None,
    };
    if let Some(profile) = &profile {
        println!("{}", profile_note(profile, &merged_before));
    }
    let target_dir = match &profile {
        Some(pgo::ProfileGuided {
            mode,
            scope: pgo::Scope::Whole,
        }) => paths::target_dir().join(mode.target_subdir()),
        _ => paths::target_dir(),
    };
    let cargo = CargoOptions {
        target_dir,
        offline: options.offline,
        verbose: options.verbose,
        // The base's manifest names all of them.
        features: if base.is_some() { Vec::new() } else { extra },
        lto: options.lto,
        pgo: profile.clone(),
    };
    let (crate_dir, binary) = match &base {
        Some((name, dir)) => (dir.clone(), name.as_str()),
        None => (project.gen_dir(), project.name.as_str()),
    };
    let built = match cargo_build::build(
        &crate_dir,
        binary,
        codegen::package_estimate(&all_features),
        &cargo,
    ) {
        Ok(built) => built,
        Err(err) => {
            println!("BUILD FAILED");
            return Err(err);
        }
    };
    let target = project.binary();
    let written = if base.is_some() {
        println!(
            "{}",
            if built.fresh {
                cargo_build::LTO_BASE_REUSED_NOTE
            } else {
                cargo_build::LTO_BASE_COMPILED_NOTE
            }
        );
        attach_model(&built.executable, &files, &target)
    } else {
        copy_atomic(&built.executable, &target)
            .with_context(|| format!("copying the gateway to {}", target.display()))
    };
    if let Err(err) = written {
        println!("BUILD FAILED");
        return Err(err);
    }
    // The gateway built with this profile is in place: earlier merges can go.
    if let Some(pgo::Pgo::Use(file)) = profile.as_ref().map(|p| &p.mode) {
        pgo::remove_other_profiles(&profile_dir(&project), file);
    }
    drop(build_lock);
    if let Err(err) = BuiltDefinitions::record(&project, &all_sources) {
        eprintln!("micro-gw: warning: cannot record the built definitions: {err:#}");
    }
    let deploy = crate::deploy::generate(&project, &loaded.model, &options.deploy)
        .map_err(|err| anyhow::anyhow!("{err}"));
    let deploy = match deploy {
        Ok(report) => report,
        Err(err) => {
            println!("BUILD FAILED");
            return Err(err);
        }
    };
    for warning in &deploy.warnings {
        eprintln!("micro-gw: warning: {warning}");
    }
    let instrumented = match profile.as_ref().map(|p| &p.mode) {
        Some(pgo::Pgo::Generate(dir)) => Some(dir),
        _ => None,
    };
    if instrumented.is_some() && !deploy.written.is_empty() {
        eprintln!("micro-gw: warning: the deployment artefacts hold the instrumented gateway (--profile-generate): build again without it before deploying");
    }
    let target = std::path::absolute(&target).unwrap_or(target);
    println!(
        "BUILD SUCCESSFUL ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("Target: {}", target.display());
    println!("(Use \"gateway {}\" to start it)", target.display());
    if let Some(dir) = instrumented {
        println!(
            "This gateway is instrumented (--profile-generate): run it under representative traffic, stop it (Ctrl-C or SIGTERM) so it writes its profile to {}, then run \"micro-gw build {} --profile-use\". Do not deploy it: it is slower than a default build.",
            dir.display(),
            project.root.display()
        );
    }
    for dir in &deploy.written {
        let dir = std::path::absolute(dir).unwrap_or(dir.clone());
        println!("Deployment artefacts: {}", dir.display());
    }
    for command in &deploy.next {
        println!("  {command}");
    }
    if !deploy.written.is_empty() && !options.lto && profile.is_none() {
        println!("{LTO_DEPLOY_TIP}");
    }
    Ok(())
}

/// Writes the crate of the `--lto` base gateway for `features` (every runtime part the
/// project compiles in, its own and those asked for) under `<cache>/lto-base/<name>/`, and
/// returns its binary's name and its directory. Every project with the same features, runtime
/// and toolkit shares it (`codegen::render_base` names it by what it is built from), so cargo
/// compiles and optimises it once and finds it fresh afterwards. Errors: rendering or writing
/// the crate's files.
fn write_lto_base(
    features: &[&str],
    runtime_dir: &Path,
    cache: &Path,
) -> anyhow::Result<(String, PathBuf)> {
    codegen::render_base(features, runtime_dir)
        .and_then(|(name, files)| {
            let dir = cache.join("lto-base").join(&name);
            codegen::write(&dir, &files)?;
            Ok((name, dir))
        })
        .context("writing the --lto base gateway's crate")
}

/// Writes the project's gateway to `target` as the `--lto` base binary at `base` followed by
/// the project's model (the generated `model.json` among `files`) and its trailer
/// (`mgw_runtime::attached_model`, which the gateway reads at start-up), through a temporary
/// file renamed into place. Errors: no `model.json` among `files`, or the copy failing.
fn attach_model(base: &Path, files: &[(&str, Vec<u8>)], target: &Path) -> anyhow::Result<()> {
    let model = files
        .iter()
        .find(|(name, _)| *name == "model.json")
        .map(|(_, model)| model.as_slice())
        .context("the generated files hold no model.json")?;
    let trailer = mgw_runtime::attached_model::trailer(model.len() as u64);
    copy_with_tail_atomic(base, &[model, &trailer], target)
        .with_context(|| format!("writing the gateway to {}", target.display()))
}

/// Printed after deployment artefacts that hold a gateway built without `--lto`: the build
/// for production is the link-time optimised one (figures: docs/benchmarks.md, "twenty-seventh"
/// and "twenty-eighth pass"), not the default only because of its first build's time.
pub const LTO_DEPLOY_TIP: &str = "Tip: the gateway in these artefacts is not link-time optimised. For production, build with --lto: 2-12 % less CPU per request and about 2 MB less memory; its first build with these runtime parts takes minutes, later ones under a second.";

/// Which crates a profile-guided build compiles with the profile: every one with `--lto`,
/// else the runtime and the gateway's crate, with this `micro-gw` as cargo's rustc wrapper.
/// Errors: this executable's path is unknown (`std::env::current_exe`).
fn profile_scope(lto: bool) -> anyhow::Result<pgo::Scope> {
    if lto {
        return Ok(pgo::Scope::Whole);
    }
    let exe = std::env::current_exe().context(
        "finding micro-gw's own executable, which a profile-guided build runs as rustc wrapper to compile the runtime with the profile (or build with --lto, which compiles every crate with it)",
    )?;
    Ok(pgo::Scope::Runtime(exe))
}

/// The line printed before cargo starts for a profile-guided build: what is compiled with the
/// profile and what that costs. `merged_before`: the file names in the project's profile
/// directory before this build merged into it.
fn profile_note(profile: &pgo::ProfileGuided, merged_before: &[std::ffi::OsString]) -> String {
    let whole = profile.scope == pgo::Scope::Whole;
    match &profile.mode {
        pgo::Pgo::Generate(_) if whole => "Profile-guided optimisation, step 1 (--profile-generate --lto): an instrumented gateway; its first build compiles every crate again.".to_string(),
        pgo::Pgo::Generate(_) => "Profile-guided optimisation, step 1 (--profile-generate): an instrumented gateway; the runtime is compiled again, instrumented (about a minute), every other crate is the default build's.".to_string(),
        pgo::Pgo::Use(file) if profile_was_there(&profile.mode, merged_before) => format!(
            "Profile-guided optimisation (--profile-use) with {}, the profile merged for an earlier build.",
            file.display()
        ),
        pgo::Pgo::Use(file) if whole => format!(
            "Profile-guided optimisation (--profile-use --lto) with {}, a new profile: every crate is compiled again with it (minutes).",
            file.display()
        ),
        pgo::Pgo::Use(file) => format!(
            "Profile-guided optimisation (--profile-use) with {}, a new profile: the runtime is compiled again with it (about a minute), every other crate is the default build's.",
            file.display()
        ),
    }
}

/// Parses `conf/deployment-config.toml` (when present) so a wrong key or value stops the
/// build with its file and line before anything is compiled.
fn check_deployment(project: &Project) -> anyhow::Result<()> {
    let path = project.deployment_config();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    if let Err(err) = crate::deploy::config::parse(&text, &project.display(&path)) {
        println!("BUILD FAILED");
        bail!("{err}");
    }
    Ok(())
}

/// The SHA-256 of every definition at the last successful build, in
/// `target/built-definitions.json` (`{"<file as shown>": "<hex>"}`). A definition is
/// "changed" when it is new or its content differs from that record: `build` prints the
/// warnings of changed definitions and only a count for the others.
#[derive(Debug, Default)]
struct BuiltDefinitions(std::collections::BTreeMap<String, String>);

impl BuiltDefinitions {
    fn path(project: &Project) -> PathBuf {
        project.target_dir().join("built-definitions.json")
    }

    /// The last record; none (every definition changed) when missing or unreadable.
    fn read(project: &Project) -> BuiltDefinitions {
        std::fs::read(Self::path(project))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .map(BuiltDefinitions)
            .unwrap_or_default()
    }

    fn hash(text: &str) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn changed(&self, file: &str, files: &[loader::SourceFile]) -> bool {
        let Some(current) = files.iter().find(|f| f.name == file) else {
            return true;
        };
        self.0.get(file) != Some(&Self::hash(&current.text))
    }

    fn record(project: &Project, files: &[loader::SourceFile]) -> anyhow::Result<()> {
        let record: std::collections::BTreeMap<&str, String> = files
            .iter()
            .map(|f| (f.name.as_str(), Self::hash(&f.text)))
            .collect();
        crate::fsutil::write_atomic(
            &Self::path(project),
            &serde_json::to_vec_pretty(&record)?,
            None,
        )?;
        Ok(())
    }
}

/// The project's `policies.yaml` (throttling tiers), when it has one.
pub fn policies_source(project: &Project) -> Option<loader::SourceFile> {
    std::fs::read_to_string(project.policies())
        .ok()
        .map(|text| loader::SourceFile {
            name: "policies.yaml".into(),
            text,
        })
}

/// The WSO2 listeners' ports and the `[express_gateway]` overrides of `conf/micro-gw.toml`, for
/// the mixed-project check; `None` when the file cannot be read (the build warns about it).
pub fn conf_ports(project: &Project) -> Option<loader::ConfPorts> {
    let path = project.config_file();
    let parsed = mgw_runtime::config::load(&path, &[], &[]).ok()?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let listener = &parsed.config.listener;
    let line_of = |section: &str, key: &str| -> Option<usize> {
        let mut current = String::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix('[') {
                current = header.trim_end_matches(']').trim().to_string();
            } else if current == section
                && line.split_once('=').is_some_and(|(k, _)| k.trim() == key)
            {
                return Some(i + 1);
            }
        }
        None
    };
    Some(loader::ConfPorts {
        file: project.display(&path),
        http: listener
            .http_enabled
            .then(|| (listener.http_port, line_of("listener", "http_port"))),
        https: listener
            .https_enabled
            .then(|| (listener.https_port, line_of("listener", "https_port"))),
        express_http: parsed.config.express_gateway.http_port,
        express_https: parsed.config.express_gateway.https_port,
    })
}

/// Runtime settings are not compiled in, but a broken file is worth knowing about now.
/// Returns the security settings when the configuration is valid.
fn check_settings(project: &Project) -> Option<mgw_runtime::config::SecurityConfig> {
    let config = project.config_file();
    let security = match mgw_runtime::config::load(&config, &[], &[]) {
        Ok(parsed) => Some(parsed.config.security),
        Err(err) => {
            eprintln!(
                "micro-gw: warning: {err} (the gateway will refuse to start until this is fixed)"
            );
            None
        }
    };
    security
}

/// The `[cors]` section of `conf/micro-gw.toml`, when it is enabled: the CORS step of WSO2
/// APIs without `x-wso2-cors`. Compiled in (CORS is what an API is); a settings file that does
/// not load was already reported by [`check_settings`], and then no default applies.
pub(crate) fn cors_default(project: &Project) -> Option<mgw_runtime::policies::cors::CorsSpec> {
    mgw_runtime::config::load(&project.config_file(), &[], &[])
        .ok()?
        .config
        .cors
        .spec()
}

/// The `[validation]` section of `conf/micro-gw.toml`: whether WSO2 resources validate
/// requests and responses unless `x-mgw-validation` says otherwise. Compiled in (it decides
/// whether the gateway links the validator); a file that does not load means off.
pub(crate) fn validation_default(project: &Project) -> loader::validation::ValidationDefault {
    mgw_runtime::config::load(&project.config_file(), &[], &[])
        .map(|parsed| loader::validation::ValidationDefault {
            request: parsed.config.validation.request,
            response: parsed.config.validation.response,
        })
        .unwrap_or_default()
}

/// One line when resources require credentials that nothing in `conf/micro-gw.toml` can
/// verify, so every request to them will answer 401: OAuth2 (the WSO2 default when a definition
/// declares no security) needs `[[security.jwt_issuers]]` or `[security.key_manager]`, basic
/// auth `[[security.users]]`, API keys `[security.api_keys]`. Resources with optional security
/// are not counted. The line names the count, the first resource and both fixes.
pub fn unreachable_resources(
    model: &mgw_runtime::model::GatewayModel,
    security: &mgw_runtime::config::SecurityConfig,
    project: &Project,
) -> Option<String> {
    use mgw_runtime::model::AuthScheme;
    let verifiable = |scheme: &AuthScheme| match scheme {
        AuthScheme::Oauth2 => !security.jwt_issuers.is_empty() || security.key_manager.is_some(),
        AuthScheme::Basic => !security.users.is_empty(),
        AuthScheme::ApiKey { .. } => security.api_keys.is_some(),
    };
    let mut first = None;
    let mut count = 0;
    let mut needs = std::collections::BTreeSet::new();
    for api in &model.apis {
        for resource in &api.resources {
            let Some(required) = &resource.security else {
                continue;
            };
            if required.optional || required.schemes.iter().any(verifiable) {
                continue;
            }
            count += 1;
            first.get_or_insert_with(|| {
                format!(
                    "{} {}{} ({})",
                    resource.method,
                    api.base_path.trim_end_matches('/'),
                    resource.path,
                    api.source
                )
            });
            for scheme in &required.schemes {
                needs.insert(match scheme {
                    AuthScheme::Oauth2 => {
                        "an issuer ([[security.jwt_issuers]], see docs/security.md)"
                    }
                    AuthScheme::Basic => "a user ([[security.users]])",
                    AuthScheme::ApiKey { .. } => "[security.api_keys]",
                });
            }
        }
    }
    let first = first?;
    Some(format!(
        "{count} resource(s), e.g. {first}, require credentials that {} cannot verify, so every request to them answers 401: add {} to {}, or set `x-wso2-disable-security: true` in the definition",
        project.config_file().display(),
        needs.into_iter().collect::<Vec<_>>().join(" or "),
        project.config_file().display(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{self, SourceFile};

    /// `--profile-use=FILE.profdata` copies the merged profile in under its content's name
    /// (no tool needed) and leaves the user's file; a directory without `.profraw` files is
    /// no profile, and says how to make one.
    #[test]
    fn a_given_profdata_is_copied_in_and_an_empty_directory_is_no_profile() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::from_arg(&dir.path().join("shop")).unwrap();
        let given = dir.path().join("prod.profdata");
        std::fs::write(&given, b"merged counts").unwrap();
        let resolved =
            resolve_profile(&project, &ProfileRequest::Use(Some(given.clone()))).unwrap();
        let pgo::Pgo::Use(file) = resolved else {
            panic!("not a profile to use: {resolved:?}");
        };
        assert_eq!(file.parent().unwrap(), profile_dir(&project));
        assert!(pgo::is_merged_profile(
            &file.file_name().unwrap().to_string_lossy()
        ));
        assert_eq!(std::fs::read(&file).unwrap(), b"merged counts");
        assert_eq!(std::fs::read(&given).unwrap(), b"merged counts");

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = resolve_profile(&project, &ProfileRequest::Use(Some(empty.clone())))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("no profile in {}", empty.display())),
            "{err}"
        );
        assert!(err.contains("--profile-generate"), "{err}");
    }

    /// `--profile-use` says whether cargo will compile every crate again: a profile of a new
    /// content (a new name) is new, the last build's profile merged again is not, and an
    /// instrumented build never reuses one.
    #[test]
    fn a_profile_merged_again_to_the_same_content_is_known_as_the_last_builds() {
        let dir = tempfile::tempdir().unwrap();
        let first = pgo::install(b"counts", dir.path()).unwrap();
        let before: Vec<std::ffi::OsString> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let again = pgo::install(b"counts", dir.path()).unwrap();
        assert!(profile_was_there(&pgo::Pgo::Use(again), &before));
        let other = pgo::install(b"other counts", dir.path()).unwrap();
        assert_ne!(other, first);
        assert!(!profile_was_there(&pgo::Pgo::Use(other), &before));
        assert!(!profile_was_there(
            &pgo::Pgo::Generate(dir.path().to_path_buf()),
            &before
        ));
    }

    /// issue 11 #8: "changed" for build means new or different since the last successful
    /// build (hashes recorded in target/), and the rest of the warnings are one count line.
    #[test]
    fn only_definitions_changed_since_the_last_build_count_as_changed() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::from_arg(&dir.path().join("shop")).unwrap();
        let file = |name: &str, text: &str| SourceFile {
            name: name.into(),
            text: text.into(),
        };
        let v1 = [file("a.yaml", "one"), file("b.yaml", "two")];
        let none = BuiltDefinitions::read(&project);
        assert!(none.changed("a.yaml", &v1) && none.changed("b.yaml", &v1));
        BuiltDefinitions::record(&project, &v1).unwrap();
        let v2 = [
            file("a.yaml", "one"),
            file("b.yaml", "two, edited"),
            file("c.yaml", "new"),
        ];
        let seen = BuiltDefinitions::read(&project);
        assert!(!seen.changed("a.yaml", &v2));
        assert!(seen.changed("b.yaml", &v2) && seen.changed("c.yaml", &v2));
        let warning = |f: &str| crate::loader::Diagnostic {
            file: f.into(),
            line: Some(1),
            column: None,
            subject: None,
            message: "w".into(),
        };
        let others = [warning("a.yaml"), warning("a.yaml"), warning("d.yaml")];
        assert_eq!(
            super::super::others_line(&others, &project.root).unwrap(),
            format!(
                "3 warnings in 2 other definitions; micro-gw build --verbose {} lists them",
                project.root.display()
            )
        );
        assert_eq!(super::super::others_line(&[], &project.root), None);
    }

    fn model(text: &str) -> mgw_runtime::model::GatewayModel {
        let file = SourceFile {
            name: "api_definitions/a.yaml".into(),
            text: text.into(),
        };
        loader::load("p", &[file]).unwrap().model
    }

    /// issue 11 #4: a definition with only a base path and an endpoint is OAuth2-secured (the
    /// WSO2 default); with no issuer configured the build says so in one line with both fixes.
    #[test]
    fn oauth2_without_an_issuer_is_one_line_with_both_fixes() {
        let project = Project::from_arg(std::path::Path::new("shop")).unwrap();
        let plain = "openapi: 3.0.0\ninfo: {title: A, version: '1'}\nx-wso2-basePath: /a\nx-wso2-production-endpoints: {urls: ['http://b']}\npaths:\n  /x: {get: {}, post: {}}\n";
        let defaults = mgw_runtime::config::SecurityConfig::default();
        let line = unreachable_resources(&model(plain), &defaults, &project).unwrap();
        assert!(!line.contains('\n'), "{line}");
        for part in [
            "2 resource(s), e.g. GET /a/x (api_definitions/a.yaml)",
            "answers 401",
            "[[security.jwt_issuers]]",
            "shop/conf/micro-gw.toml",
            "x-wso2-disable-security: true",
        ] {
            assert!(line.contains(part), "{part}: {line}");
        }
        // Fixed either way: an issuer in the config, or security disabled.
        let with_issuer: mgw_runtime::config::RuntimeConfig = mgw_runtime::config::parse(
            "[[security.jwt_issuers]]\nissuer = 'https://i'\nalgorithms = ['HS256']\nhmac_secret_env = 'X'\n",
            std::path::Path::new("micro-gw.toml"),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            unreachable_resources(&model(plain), &with_issuer.security, &project),
            None
        );
        let disabled = plain.replace("paths:", "x-wso2-disable-security: true\npaths:");
        assert_eq!(
            unreachable_resources(&model(&disabled), &defaults, &project),
            None
        );
        // The kind: basic auth without users is the same dead end.
        let basic = plain.replace(
            "paths:",
            "components: {securitySchemes: {b: {type: http, scheme: basic}}}\nsecurity: [{b: []}]\npaths:",
        );
        let line = unreachable_resources(&model(&basic), &defaults, &project).unwrap();
        assert!(line.contains("[[security.users]]"), "{line}");
    }
}
