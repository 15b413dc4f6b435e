//! The `micro-gw` command line: argument model, dispatch, and the one place where errors are
//! printed and turned into exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};

use crate::admin_client::AdminArgs;
use crate::commands::consumers_cli::{
    self, AppsCommand, Common, CredentialsCommand, ScopesCommand, UsersCommand,
};
use crate::commands::{build, consumers, hash, import, import_apim, import_express, init, reset};

/// micro-gw: compile API definitions into a dedicated, immutable gateway binary.
#[derive(Debug, Parser)]
#[command(name = "micro-gw", version, about, long_about = None, disable_help_subcommand = false)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run; boxing the import options would only complicate the matches.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Create a project: api_definitions/, conf/ (settings, TLS certificate, API-key signing key), interceptors/, policies.yaml.
    Init {
        /// Project directory to create (its last component names the gateway binary).
        project: PathBuf,
        /// Re-initialize an existing micro-gw project: add -a/-d and recreate what is missing.
        /// Lists what it replaces and asks on a terminal; definitions, conf and keys are kept,
        /// and a directory that is not a micro-gw project is never changed.
        #[arg(short, long)]
        force: bool,
        /// With -f: also replace conf/micro-gw.toml, conf/deployment-config.toml, policies.yaml,
        /// the TLS certificate and the API-key signing pair with the defaults and new keys.
        #[arg(long, requires = "force")]
        reset_conf: bool,
        /// First API definition: an OpenAPI/Swagger file or http(s) URL.
        #[arg(short = 'a', long = "api-definition", value_name = "FILE|URL")]
        api_definition: Option<String>,
        /// Deployment configuration to copy to conf/deployment-config.toml.
        #[arg(short = 'd', long = "deployment-config", value_name = "FILE")]
        deployment_config: Option<PathBuf>,
        /// Do not verify the TLS certificate when downloading the definition.
        #[arg(short = 'k', long)]
        insecure: bool,
    },
    /// Add API definitions to a project: a file or URL (--openapi), an Express Gateway
    /// configuration (--express-gateway), or from WSO2 API Manager (-a <name> -v <version>, or
    /// -l <label>). Validated first; nothing is written if invalid.
    Import {
        /// The project directory.
        project: PathBuf,
        /// OpenAPI 3.x or Swagger 2.0 definition: a file or http(s) URL.
        #[arg(long = "openapi", short = 'o', value_name = "FILE|URL")]
        openapi: Option<String>,
        /// Express Gateway gateway.config.yml (or .json), copied to <project>/express-gateway/
        /// (one per project: importing again replaces it).
        #[arg(
            long = "express-gateway",
            value_name = "FILE",
            conflicts_with = "openapi"
        )]
        express_gateway: Option<PathBuf>,
        /// With --express-gateway: its system.config.yml, copied beside it.
        #[arg(
            long = "system-config",
            value_name = "FILE",
            requires = "express_gateway"
        )]
        system_config: Option<PathBuf>,
        /// Do not verify TLS certificates (of the URL, or of the API Manager).
        #[arg(short = 'k', long)]
        insecure: bool,
        #[command(flatten)]
        apim: import_apim::ApimArgs,
    },
    /// Validate the project, generate its gateway crate and compile <project>/target/<project>.
    Build {
        /// The project directory.
        project: PathBuf,
        /// Build without network access (every crate must already be in cargo's cache).
        #[arg(long)]
        offline: bool,
        /// Show cargo's output instead of a progress bar, and the warnings of every definition
        /// (otherwise only of those changed since the last successful build, plus a count).
        #[arg(short, long)]
        verbose: bool,
        /// Build even when Express Gateway pipelines use policies this version does not
        /// support yet; each such step then behaves as the build states.
        #[arg(long)]
        allow_unsupported: bool,
        /// Replace conf/deployment-config.toml with this file (checked first) before building.
        #[arg(short = 'd', long, value_name = "FILE")]
        deployment_config: Option<PathBuf>,
        /// Also compile these optional parts of the runtime in, whether or not the project
        /// needs them (comma-separated). Projects built with the same parts share one compiled
        /// runtime; each other combination compiles it again (a few minutes).
        #[arg(long, value_enum, value_delimiter = ',', value_name = "PART[,PART...]")]
        features: Vec<crate::codegen::RuntimeFeature>,
        /// Optimise the whole gateway as one unit (fat link-time optimisation, one codegen
        /// unit): a smaller binary, about 2 MB less memory, 7 % fewer instructions and 2-12 %
        /// less CPU per request. The first such build with a set of runtime parts takes
        /// minutes (the first on a machine compiles every crate again); later ones of any
        /// project with the same parts attach the project's model to that optimised gateway
        /// and take seconds.
        #[arg(long)]
        lto: bool,
        /// The gateway's memory allocator: mimalloc (the default: fewer instructions and no
        /// locking instructions on its fast paths; 6-8 % less CPU per HTTPS h2 request) or the
        /// C library's malloc (`system`: for heap profilers that replace malloc, such as
        /// valgrind's dhat and massif, or heaptrack). Each compiles the runtime once.
        #[arg(long, value_enum, default_value_t = crate::codegen::Allocator::Mimalloc)]
        allocator: crate::codegen::Allocator,
        /// Build a gateway instrumented for profile-guided optimisation: run it under
        /// representative traffic and stop it (Ctrl-C or SIGTERM) to write its profile to
        /// <project>/target/pgo/, then build with --profile-use. It runs slower: not for
        /// production. The runtime (most of the request path) is instrumented and compiled
        /// again; with --lto, every crate.
        #[arg(long, conflicts_with = "profile_use")]
        profile_generate: bool,
        /// Build with the profile written by a --profile-generate gateway: the .profraw files
        /// in <project>/target/pgo/, or with `--profile-use=PATH` those of a directory, one
        /// .profraw file or a merged .profdata file. Needs rustup's llvm-tools component.
        /// The runtime is compiled with it (about a minute; other crates are the default
        /// build's); with --lto, every crate (minutes).
        #[arg(long, value_name = "DIR|FILE", num_args = 0..=1, require_equals = true)]
        profile_use: Option<Option<PathBuf>>,
        /// Also write target/docker/ (a Dockerfile and its build context), whatever
        /// [docker.dockerConfig] enable says in conf/deployment-config.toml.
        #[arg(long)]
        docker: bool,
        /// The image's name and tag (`name[:tag]`, e.g. registry.example.com/petstore:v2);
        /// implies --docker.
        #[arg(long, value_name = "NAME[:TAG]")]
        docker_image: Option<String>,
        /// The image's base image (default gcr.io/distroless/cc-debian12:nonroot); implies --docker.
        #[arg(long, value_name = "IMAGE")]
        docker_base_image: Option<String>,
        /// Also write target/kubernetes/ (Deployment, Service, ConfigMap, optional HPA),
        /// whatever [kubernetes.kubernetesDeployment] enable says.
        #[arg(long)]
        kubernetes: bool,
    },
    /// Print a password hash for [[security.users]] in conf/micro-gw.toml (reads the password
    /// from a hidden prompt, or the first line of stdin when it is not a terminal).
    Hash {
        /// Hash algorithm.
        #[arg(long, value_enum, default_value = "argon2id")]
        algorithm: hash::HashAlgorithm,
    },
    /// Express Gateway users, through a running gateway's admin API (as `eg users`).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Express Gateway applications (as `eg apps`).
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Express Gateway credentials (as `eg credentials` and `eg credential:scopes`).
    Credentials {
        #[command(subcommand)]
        command: CredentialsCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Express Gateway scopes (as `eg scopes`).
    Scopes {
        #[command(subcommand)]
        command: ScopesCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Sync the consumer store with a Kargo consumers file, or empty it: through the running
    /// gateway's admin API, or on the store file when the gateway is stopped.
    Consumers {
        #[command(subcommand)]
        command: ConsumersCommand,
    },
    /// Forget the saved API Manager username and client (its secret in the OS keyring too).
    Reset,
    /// Run a small backend on 127.0.0.1 that answers every request with a JSON description of
    /// it (method, path, query, headers, body size), to try a gateway without another service.
    EchoBackend {
        /// The port (0: a free one; the URL is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The name in every answer (`backend` field, `x-backend` header).
        #[arg(long, default_value = "backend")]
        name: String,
        /// Worker threads (0: one per CPU).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Print the toolkit version.
    Version,
}

/// `micro-gw consumers …`
#[derive(Debug, Subcommand)]
enum ConsumersCommand {
    /// Make the store equal a consumers file (Kargo's consumers.config.json or
    /// consumers.config.js): creates, updates, removes, one line per change and a summary.
    Populate {
        /// The project directory.
        project: PathBuf,
        /// The consumers file.
        file: PathBuf,
        /// Deactivate users, apps and credentials the file does not hold instead of removing
        /// them (scopes are kept).
        #[arg(long)]
        deactivate: bool,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        admin: ConsumersAdmin,
    },
    /// Remove every user, application, credential and scope.
    Clean {
        /// The project directory.
        project: PathBuf,
        #[command(flatten)]
        admin: ConsumersAdmin,
    },
}

/// How `micro-gw consumers` reaches the running gateway.
#[derive(Debug, Clone, clap::Args)]
struct ConsumersAdmin {
    /// The admin API's URL (default: MGW_ADMIN_URL, else the project's admin host and port).
    #[arg(long, value_name = "URL")]
    admin_url: Option<String>,
    /// The admin API's token (default: MGW_ADMIN_TOKEN, else the project's).
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Refuse to use the admin API: the gateway must be stopped; work on its store file.
    #[arg(long)]
    offline: bool,
}

impl ConsumersAdmin {
    fn args(&self, project: &std::path::Path) -> AdminArgs {
        AdminArgs {
            admin_url: self.admin_url.clone(),
            admin_token: self.admin_token.clone(),
            project: Some(project.to_path_buf()),
            offline: self.offline,
        }
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    // Run by cargo as `micro-gw build`'s rustc wrapper: the compile, not the CLI.
    if let Some(code) = crate::rustc_wrapper::wrapper_main() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = err.print();
                return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                };
            }
            let rendered = err.render().to_string();
            let message = rendered.trim_start_matches("error: ").trim_end();
            eprintln!("micro-gw: {message}");
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("micro-gw: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            project,
            force,
            reset_conf,
            api_definition,
            deployment_config,
            insecure,
        } => init::run(&init::InitOptions {
            project,
            force,
            reset_conf,
            api_definition,
            deployment_config,
            insecure,
        }),
        Command::Import {
            project,
            express_gateway: Some(gateway),
            system_config,
            apim,
            ..
        } => {
            if apim.any() {
                bail!("--express-gateway imports a configuration file; the API Manager options (-l, -a, -v, -u, -p, -s, -t) cannot be combined with it");
            }
            import_express::run(&import_express::ImportExpressOptions {
                project,
                gateway,
                system: system_config,
            })
        }
        Command::Import {
            project,
            openapi,
            insecure,
            apim,
            ..
        } => match openapi {
            Some(openapi) => {
                if apim.any() {
                    bail!("--openapi imports a definition file; the API Manager options (-l, -a, -v, -u, -p, -s, -t) cannot be combined with it");
                }
                import::run(&import::ImportOptions {
                    project,
                    openapi,
                    insecure,
                })
            }
            None => import_apim::run(&project, insecure, &apim),
        },
        Command::Build {
            project,
            offline,
            verbose,
            allow_unsupported,
            deployment_config,
            features,
            lto,
            allocator,
            profile_generate,
            profile_use,
            docker,
            docker_image,
            docker_base_image,
            kubernetes,
        } => build::run(&build::BuildOptions {
            project,
            offline,
            verbose,
            allow_unsupported,
            deployment_config,
            features,
            lto,
            allocator,
            profile: match (profile_generate, profile_use) {
                (true, _) => Some(build::ProfileRequest::Generate),
                (false, Some(from)) => Some(build::ProfileRequest::Use(from)),
                (false, None) => None,
            },
            deploy: crate::deploy::DeployOptions {
                docker,
                kubernetes,
                image: docker_image,
                base_image: docker_base_image,
            },
        }),
        Command::Users { command, common } => consumers_cli::users(command, &common),
        Command::Apps { command, common } => consumers_cli::apps(command, &common),
        Command::Credentials { command, common } => consumers_cli::credentials(command, &common),
        Command::Scopes { command, common } => consumers_cli::scopes(command, &common),
        Command::Consumers {
            command:
                ConsumersCommand::Populate {
                    project,
                    file,
                    deactivate,
                    dry_run,
                    admin,
                },
        } => consumers::populate(
            &project,
            &file,
            if deactivate {
                consumers::Extra::Deactivate
            } else {
                consumers::Extra::Remove
            },
            dry_run,
            &admin.args(&project),
        ),
        Command::Consumers {
            command: ConsumersCommand::Clean { project, admin },
        } => consumers::clean(&project, &admin.args(&project)),
        Command::Hash { algorithm } => hash::run(algorithm),
        Command::Reset => reset::run(),
        Command::EchoBackend {
            port,
            name,
            threads,
        } => crate::echo::run(&crate::echo::EchoOptions {
            port,
            name,
            threads,
        }),
        Command::Version => {
            println!(
                "micro-gw {} (runtime {})",
                env!("CARGO_PKG_VERSION"),
                mgw_runtime::VERSION
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::RuntimeFeature;

    #[test]
    fn build_takes_optional_parts_as_a_list() {
        let cli =
            Cli::try_parse_from(["micro-gw", "build", "shop", "--features", "redis,otlp"]).unwrap();
        let Command::Build { features, .. } = cli.command else {
            panic!("not a build: {cli:?}");
        };
        assert_eq!(features, [RuntimeFeature::Redis, RuntimeFeature::Otlp]);
        let cli = Cli::try_parse_from(["micro-gw", "build", "shop", "--features=all"]).unwrap();
        let Command::Build { features, .. } = cli.command else {
            panic!("not a build: {cli:?}");
        };
        assert_eq!(features, [RuntimeFeature::All]);
        // An unknown part is refused with the ones there are.
        let err = Cli::try_parse_from(["micro-gw", "build", "shop", "--features", "kafka"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kafka") && err.contains("storage, validation, otlp, redis, all"),
            "{err}"
        );
    }

    #[test]
    fn build_takes_lto_as_a_switch() {
        let lto_of = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Build { lto, .. } = cli.command else {
                panic!("not a build: {cli:?}");
            };
            lto
        };
        assert!(!lto_of(&["micro-gw", "build", "shop"]));
        assert!(lto_of(&["micro-gw", "build", "shop", "--lto"]));
        assert!(lto_of(&[
            "micro-gw",
            "build",
            "--lto",
            "shop",
            "--features=all"
        ]));
    }

    #[test]
    fn build_takes_a_profile_to_generate_or_to_use_not_both() {
        let profile_of = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Build {
                profile_generate,
                profile_use,
                ..
            } = cli.command
            else {
                panic!("not a build: {cli:?}");
            };
            (profile_generate, profile_use)
        };
        assert_eq!(profile_of(&["micro-gw", "build", "shop"]), (false, None));
        assert_eq!(
            profile_of(&["micro-gw", "build", "shop", "--profile-generate"]),
            (true, None)
        );
        // The project after the option is the project, not a profile path.
        assert_eq!(
            profile_of(&["micro-gw", "build", "--profile-use", "shop"]),
            (false, Some(None))
        );
        assert_eq!(
            profile_of(&["micro-gw", "build", "shop", "--profile-use"]),
            (false, Some(None))
        );
        assert_eq!(
            profile_of(&["micro-gw", "build", "shop", "--profile-use=prof/"]),
            (false, Some(Some(PathBuf::from("prof/"))))
        );
        let both = Cli::try_parse_from([
            "micro-gw",
            "build",
            "shop",
            "--profile-generate",
            "--profile-use",
        ])
        .unwrap_err()
        .to_string();
        assert!(both.contains("cannot be used with"), "{both}");
    }

    #[test]
    fn build_compiles_mimalloc_in_unless_asked_for_the_system_allocator() {
        use crate::codegen::Allocator;
        let allocator_of = |args: &[&str]| match Cli::try_parse_from(args).map(|cli| cli.command) {
            Ok(Command::Build { allocator, .. }) => Ok(allocator),
            Ok(other) => panic!("not a build: {other:?}"),
            Err(error) => Err(error.to_string()),
        };
        assert_eq!(
            allocator_of(&["micro-gw", "build", "shop"]),
            Ok(Allocator::Mimalloc)
        );
        assert_eq!(
            allocator_of(&["micro-gw", "build", "shop", "--allocator", "system"]),
            Ok(Allocator::System)
        );
        assert_eq!(
            allocator_of(&["micro-gw", "build", "--allocator=mimalloc", "shop"]),
            Ok(Allocator::Mimalloc)
        );
        let unknown =
            allocator_of(&["micro-gw", "build", "shop", "--allocator", "jemalloc"]).unwrap_err();
        assert!(
            unknown.contains("possible values: mimalloc, system"),
            "{unknown}"
        );
    }
}
