//! # mgw-runtime
//!
//! The shared runtime behind every gateway that `micro-gw build` produces. A generated gateway
//! crate holds only its validated [`model::GatewayModel`] as embedded JSON and a `main` that
//! calls [`launch`]; all behaviour (listeners, routing, proxying, logging) lives here, compiled
//! once into the shared target directory and linked into each project binary. A `--lto` build
//! instead compiles a base gateway whose `main` calls [`launch_attached`], once per set of
//! features, and appends each project's model to a copy of it ([`attached_model`]).
//!
//! What an API *is* comes from the model and cannot change without a rebuild; where it *runs*
//! comes from `conf/micro-gw.toml`, environment variables and arguments ([`config`]).
//!
//! ## Cargo features
//!
//! - `server` (default): the server half, [`launch`] and everything it runs (listeners, proxy,
//!   credential validation, access log) with their dependencies (hyper, tokio, jsonwebtoken,
//!   password hashing). Every gateway is built with it. Without it only [`config`], [`model`],
//!   [`path`], [`router`], [`tls`] and `proxy::upstream` are compiled: what the toolkit needs to
//!   validate a project, which keeps its cold `cargo install` short.
//! - `store` (implied by `server`): the consumer store ([`store`]) and the admin API's route
//!   table (`admin::routes`) without the server, for the toolkit's consumer commands on a
//!   stopped gateway's store file.
//! - `mimalloc` (off in the crate's defaults; every gateway `micro-gw build` compiles has it
//!   unless built with `--allocator system`): mimalloc is the global allocator of whatever links
//!   the runtime with it. It is built without transparent huge pages (`no_thp`), which would put
//!   10 MB more in idle memory (docs/benchmarks.md, "Issue 16: mimalloc again"). The fuzz
//!   targets never take it (AddressSanitizer needs the system allocator).

/// The global allocator (feature `mimalloc`). glibc's malloc, in a process with more than one
/// thread, takes locking instructions on its paths beyond the per-thread cache: about 40 a
/// request of the bench's HTTPS h2 scenario, most in `malloc_consolidate` (run by each
/// allocation of 1 KiB or more while freed small blocks wait in its fast bins) and the frees
/// around it; mimalloc's thread-local pages take none. With it, under load on two cores: 6-8 %
/// less CPU per HTTPS h2 request, 1-6 % per 1 KiB `GET`, 0-3 % per 10 KiB `POST`
/// (docs/benchmarks.md, "Issue 16: twenty-first pass").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "server")]
pub mod access_log;
#[cfg(feature = "store")]
pub mod admin;
pub mod attached_model;
#[cfg(feature = "server")]
pub mod auth;
pub mod config;
#[cfg(feature = "server")]
pub mod counters;
pub mod env_template;
pub mod expression;
#[cfg(feature = "server")]
pub mod fault;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "server")]
pub mod gateway;
#[cfg(feature = "server")]
pub mod logging;
pub mod model;
pub mod path;
#[cfg(feature = "server")]
pub mod pipeline;
pub mod policies;
#[cfg(feature = "server")]
pub mod proxy;
#[cfg(feature = "server")]
pub mod respond;
/// Without the `server` feature only the upstream URL model is built (the toolkit checks
/// endpoint URLs with it); the files are the same as with the feature.
#[cfg(not(feature = "server"))]
pub mod proxy {
    pub mod upstream;
}
pub mod router;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "server")]
pub mod telemetry;
pub mod tls;

#[cfg(feature = "server")]
use std::net::{IpAddr, SocketAddr};
#[cfg(feature = "server")]
use std::path::PathBuf;
#[cfg(feature = "server")]
use std::process::ExitCode;
#[cfg(feature = "server")]
use std::sync::Arc;
#[cfg(feature = "server")]
use std::time::{Duration, Instant};

#[cfg(feature = "server")]
use tokio_rustls::TlsAcceptor;

#[cfg(feature = "server")]
use crate::config::{LoadedConfig, CONF_DIR_ENV};
#[cfg(feature = "server")]
use crate::gateway::Gateway;
#[cfg(feature = "server")]
use crate::model::GatewayModel;
#[cfg(feature = "server")]
use crate::router::Router;
#[cfg(feature = "server")]
use crate::server::{ProtocolSettings, ServerSettings};

/// Version of this runtime (printed by `version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The runtime's optional parts, its cargo features of these names: what `--version` lists and
/// `micro-gw build --features all` compiles in.
pub const OPTIONAL_FEATURES: [&str; 4] = ["storage", "validation", "otlp", "redis"];

/// The [`OPTIONAL_FEATURES`] compiled into this binary, comma-separated, or `none`: what
/// `--version` says, so an operator can tell whether a binary can, say, keep its consumers in
/// Redis.
pub fn optional_parts() -> String {
    // In the order of OPTIONAL_FEATURES; the length is its, so a part added there and not
    // here does not compile.
    let compiled: [bool; OPTIONAL_FEATURES.len()] = [
        cfg!(feature = "storage"),
        cfg!(feature = "validation"),
        cfg!(feature = "otlp"),
        cfg!(feature = "redis"),
    ];
    let parts: Vec<&str> = OPTIONAL_FEATURES
        .into_iter()
        .zip(compiled)
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// The rustc profile flag this runtime was compiled with by `micro-gw build --profile-generate`
/// (`-Cprofile-generate=<dir>`: an instrumented gateway) or `--profile-use`
/// (`-Cprofile-use=<file>`), for `--version`; `None` for every other build. With the
/// `profile-guided` feature, the toolkit's rustc wrapper adds the flag to this crate's compile
/// and sets `MGW_RUNTIME_PGO` to the same flag. Reading the variable here puts it among the
/// crate's inputs (rustc's dep-info), so cargo compiles the runtime again when the flag
/// changes: the instrumented runtime and the profiled one are one cargo unit, since the profile
/// names functions by the crate's identity (docs/benchmarks.md, "Issue 16: thirtieth pass").
pub fn profile_guided() -> Option<&'static str> {
    #[cfg(feature = "profile-guided")]
    {
        option_env!("MGW_RUNTIME_PGO")
    }
    #[cfg(not(feature = "profile-guided"))]
    {
        None
    }
}

/// The global allocator compiled into this binary: `mimalloc` (the default of `micro-gw
/// build`) or `system` (`--allocator system`), for `--version`.
pub fn allocator() -> &'static str {
    if cfg!(feature = "mimalloc") {
        "mimalloc"
    } else {
        "system"
    }
}

#[cfg(feature = "server")]
/// Runs the gateway whose model is attached to its own executable file ([`attached_model`]):
/// the entry point of the base gateway that `micro-gw build --lto` compiles once per set of
/// runtime features. Returns exit code 1 with a one-line message when no model can be read,
/// else what [`launch`] returns.
pub fn launch_attached() -> ExitCode {
    match attached_model::read_own() {
        Ok(model) => launch(&model),
        Err(err) => {
            eprintln!("{}: {err}", program_name());
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "server")]
/// The name start-up errors begin with: the file name the gateway was started as, else
/// `gateway`.
fn program_name() -> String {
    let program = std::env::args().next().unwrap_or_default();
    std::path::Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gateway".into())
}

#[cfg(feature = "server")]
/// Runs a gateway: the single, non-generic entry point that generated binaries call.
/// Returns exit code 1 with a one-line message on any start-up error.
pub fn launch(model_json: &[u8]) -> ExitCode {
    let started = Instant::now();
    let name = program_name();
    match run(model_json, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "server")]
/// Command-line arguments of a gateway binary.
#[derive(Debug, Default, PartialEq)]
struct Args {
    version: bool,
    help: bool,
    config: Option<PathBuf>,
    settings: Vec<(String, String)>,
    endpoints: Vec<(String, String)>,
}

#[cfg(feature = "server")]
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "version" | "--version" | "-V" => parsed.version = true,
            "help" | "--help" | "-h" => parsed.help = true,
            "--config" | "-c" => {
                let file = args
                    .next()
                    .ok_or("--config needs a file: --config <path/to/micro-gw.toml>")?;
                parsed.config = Some(file.into());
            }
            _ => {
                let Some(flag) = arg.strip_prefix("--") else {
                    return Err(format!("unexpected argument '{arg}'; see --help"));
                };
                let Some((name, value)) = flag.split_once('=') else {
                    return Err(format!("--{flag} needs a value: --{flag}=<value>"));
                };
                if name == "config" {
                    parsed.config = Some(value.into());
                } else if name.contains('.') {
                    parsed.settings.push((name.to_string(), value.to_string()));
                } else if name.contains("_prod_endpoint_") || name.contains("_sand_endpoint_") {
                    parsed.endpoints.push((name.to_string(), value.to_string()));
                } else {
                    return Err(format!(
                        "unknown argument --{name}; use --<section>.<key>=<value> for settings or --<endpoint>_prod_endpoint_<i>=<url> for endpoints"
                    ));
                }
            }
        }
    }
    Ok(parsed)
}

#[cfg(feature = "server")]
const HELP: &str = "Runs this gateway.

Usage: <gateway> [--config <file>] [--<section>.<key>=<value>]... [--<endpoint>_prod_endpoint_<i>=<url>]...
       <gateway> version

Settings come from --config, else $MGW_CONF_DIR/micro-gw.toml, else <project>/conf/micro-gw.toml
(this binary sitting in <project>/target/). Environment variables MGW_<SECTION>_<KEY> and
--<section>.<key>=<value> arguments override single settings. Endpoint URLs can be replaced with
--<endpoint>_prod_endpoint_<i>=<url> (or _sand_) arguments or environment variables of that name.";

#[cfg(feature = "server")]
fn run(model_json: &[u8], started: Instant) -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let mut model = GatewayModel::from_json(model_json).map_err(|e| e.to_string())?;
    if args.version {
        let profile = profile_guided()
            .map(|flag| format!("; compiled with {flag}"))
            .unwrap_or_default();
        println!(
            "{} (micro-gw runtime {VERSION}; allocator: {}; optional parts: {}{profile})",
            model.project,
            allocator(),
            optional_parts()
        );
        return Ok(());
    }
    if args.help {
        println!("{HELP}");
        return Ok(());
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&model.project));
    let conf_dir = std::env::var(CONF_DIR_ENV).ok();
    let path = config::locate(args.config.as_deref(), conf_dir.as_deref(), &binary)
        .map_err(|e| e.to_string())?;
    let loaded = config::load(&path, &env, &args.settings).map_err(|e| e.to_string())?;
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    expand_express_settings(&mut model, &lookup)?;
    let thread_per_core = loaded.config.listener.runtime == config::ServerRuntime::ThreadPerCore;
    let workers = worker_count(loaded.config.listener.worker_threads);
    // Per-worker state built from here on (the token caches' maps) is laid out for this count.
    server::worker::set_count(workers);
    // Thread-per-core: each worker keeps its own idle upstream connections.
    let idle_stacks = if thread_per_core { workers } else { 1 };
    let upstreams = proxy::upstream::resolve(
        &model,
        &args.endpoints,
        &env,
        proxy::pool_limits(&loaded.config.upstream, idle_stacks),
    )
    .map_err(|e| e.to_string())?;
    let https_endpoint = upstreams
        .iter()
        .flat_map(|upstream| &upstream.targets)
        .any(|target| target.scheme == http::uri::Scheme::HTTPS);
    let router = Router::build(&model).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    // One worker needs no work stealing: the single-threaded scheduler does the same job
    // with less synchronisation on every task wake-up. Thread-per-core: this thread's runtime
    // only starts the gateway, waits for the stop signal and serves the admin and metrics
    // listeners; the workers have runtimes of their own (`server::thread_per_core`).
    let mut runtime = match loaded.config.listener.worker_threads {
        _ if thread_per_core => tokio::runtime::Builder::new_current_thread(),
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    runtime
        .enable_all()
        // Its threads run this runtime only: hyper's header timers are reused there.
        .on_thread_start(server::timer::reuse_here)
        .on_thread_stop(server::timer::stop_reuse);
    let runtime = runtime
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let filter = logging::filter(
        &loaded.config.log.level,
        lookup(logging::RUST_LOG).as_deref(),
    )?;
    let access_log = loaded.config.log.access_log && logging::shows_access_log(&filter);
    let _log_guard = logging::init(filter);
    let (access_log, access_writer) = if access_log {
        // A buffer per worker, and one for the thread that serves the admin listener.
        let (log, writer) = access_log::AccessLog::start(
            loaded.config.log.access_log_format,
            loaded.config.log.access_log_queue,
            workers + 1,
            &model,
        )
        .map_err(|e| format!("cannot start the access-log writer thread: {e}"))?;
        (Some(log), Some(writer))
    } else {
        (None, None)
    };
    // The system trust roots are read on first use; read them now when an endpoint is
    // HTTPS, so that its first request does not wait for them. A gateway whose endpoints are
    // all `http://` never reads them, unless a JWKS, key manager or OTLP URL needs them.
    if https_endpoint && loaded.config.upstream.truststore == "system" {
        tls::load_system_roots();
    }
    // This thread too runs the runtime (a current-thread one), until `block_on` returns.
    server::timer::reuse_here();
    if !thread_per_core && loaded.config.listener.worker_threads == 1 {
        // One worker and no work stealing: this thread serves every request, as a
        // thread-per-core worker does, and no other thread is marked: it is the only writer
        // of worker 0's per-worker state (counters without locking instructions).
        server::worker::set_index(0);
    }
    let served = runtime.block_on(async move {
        let (settings, (http, https)) = server_settings(&loaded)?;
        let tls = tls::client_config(&loaded.config.upstream.truststore, &|p| loaded.resolve(p))
            .map_err(|e| format!("{} (upstream.truststore in {})", e, loaded.path.display()))?;
        let outbound = auth::outbound::OutboundClient::new(tls.clone());
        let authenticator = build_authenticator(&model, &loaded, &env, outbound.clone())?;
        for source in authenticator.jwks_sources() {
            // Warm the keys now so the first request does not wait for them.
            tokio::spawn(async move { source.refresh().await });
        }
        let client = proxy::client(&loaded.config.upstream, &loaded.config.limits, tls.clone());
        let read_env = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let spans = telemetry::otlp::start(&loaded.config.tracing, &model, &read_env, tls.clone())
            .map_err(|e| format!("{e} ({})", loaded.path.display()))?;
        let flush_spans = spans
            .as_ref()
            .map(telemetry::otlp::SpanExport::shutdown_handle);
        let request_limits = gateway::RequestLimits {
            max_uri_bytes: loaded.config.limits.max_uri_bytes,
            max_body_bytes: loaded.config.limits.max_request_body_bytes,
            body_idle: Duration::from_secs(loaded.config.timeouts.request_body_idle_seconds),
            body_deadline: (loaded.config.timeouts.request_body_seconds > 0).then(|| {
                proxy::body::BodyDeadline {
                    base: Duration::from_secs(loaded.config.timeouts.request_body_seconds),
                    min_rate_bytes: loaded.config.timeouts.request_body_min_rate_bytes,
                }
            }),
        };
        let pipelines = pipeline::build_all(&model, &read_env, &outbound).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        let express = model
            .express
            .iter()
            .map(|config| {
                router::express::ExpressRouter::from_model(&config.routes)
                    .map_err(|e| format!("{e} ({})", config.source))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let consumers = open_consumers(&model, &loaded, &read_env)?;
        let metrics = Arc::new(policies::metrics::EgCounter::default());
        let telemetry = loaded.config.metrics.enabled.then(|| {
            // One set of metric cells per worker thread (`telemetry::metrics`).
            Arc::new(telemetry::metrics::Metrics::with_workers(&model, workers))
        });
        let counters = open_counters(&model, &loaded, &read_env).await?;
        let mut listeners = listeners(&model, &loaded, &read_env, http, https)?;
        if let Some(consumers) = &consumers {
            listeners.extend(admin_listeners(
                &model, &loaded, &read_env, consumers, &metrics, &tls,
            )?);
        }
        let settings = ServerSettings {
            listeners,
            ..settings
        };
        let gateway = Arc::new(Gateway::new(
            model,
            router,
            express,
            pipelines,
            pipeline::Services {
                upstreams,
                client,
                auth: authenticator,
                limits: request_limits,
                forwarding: loaded.config.forwarding.clone(),
                remove_credential_header: loaded.config.security.remove_credential_header,
                consumers,
                metrics,
                counters,
                telemetry,
                tracing: telemetry::trace_context::Propagation::new(&loaded.config.tracing),
            },
            access_log::RecordSinks {
                log: access_log,
                spans,
            },
        ));
        let served = server::serve(gateway, settings, started)
            .await
            .map_err(|e| e.to_string());
        // Drained: the spans still queued go now (bounded by `otlp_timeout_ms`).
        if let Some(flush) = flush_spans {
            flush.run().await;
        }
        served
    });
    server::timer::stop_reuse();
    // Tasks still running (connections past the shutdown timeout) hold access-log handles:
    // end them, so the writer sees the queue close and writes the last lines.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(writer) = access_writer {
        writer.finish(ACCESS_LOG_FLUSH_TIMEOUT);
    }
    served
}

#[cfg(feature = "server")]
/// How long the access-log writer gets at exit to write its queued lines.
const ACCESS_LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(feature = "server")]
/// The listeners to open: WSO2's from `[listener]` (when the project has WSO2 APIs, or nothing
/// else), each Express Gateway configuration's `http`/`https`; listeners on the same address
/// are one listener serving both (WSO2 routes first).
fn listeners(
    model: &GatewayModel,
    loaded: &LoadedConfig,
    env: &dyn Fn(&str) -> Option<String>,
    http: Option<SocketAddr>,
    https: Option<(SocketAddr, TlsAcceptor)>,
) -> Result<Vec<server::ListenerSettings>, String> {
    use gateway::Site;
    use model::Dialect;
    let mut out: Vec<server::ListenerSettings> = Vec::new();
    let wso2 = !model.apis.is_empty() || model.express.is_empty();
    if wso2 {
        if let Some(addr) = http {
            out.push(server::ListenerSettings {
                addr,
                tls: None,
                site: Arc::new(Site {
                    proto: "http",
                    wso2: true,
                    express: None,
                    dialect: Dialect::Wso2,
                    admin: None,
                    port: addr.port(),
                }),
                what: "HTTP".into(),
                setting: "listener.http_port".into(),
            });
        }
        if let Some((addr, acceptor)) = https {
            out.push(server::ListenerSettings {
                addr,
                tls: Some(acceptor),
                site: Arc::new(Site {
                    proto: "https",
                    wso2: true,
                    express: None,
                    dialect: Dialect::Wso2,
                    admin: None,
                    port: addr.port(),
                }),
                what: "HTTPS".into(),
                setting: "listener.https_port".into(),
            });
        }
    }
    for (index, config) in model.express.iter().enumerate() {
        if let Some(https) = &config.https {
            let addr = express_address(
                &https.listen,
                &format!("{} https", config.source),
                loaded.config.express_gateway.https_port,
                env,
            )?;
            let entries = https
                .certificates
                .iter()
                .map(|c| {
                    let file = |text: &str, what: &str| {
                        env_template::expand(text, env)
                            .map(PathBuf::from)
                            .map_err(|e| {
                                format!("{} https.tls.{}.{what}: {e}", config.source, c.pattern)
                            })
                    };
                    Ok(tls::SniCertificateFiles {
                        pattern: (c.pattern != "default").then(|| c.pattern.clone()),
                        certificate: file(&c.cert, "cert")?,
                        private_key: file(&c.key, "key")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let tls = tls::sni_server_config(&entries)
                .map_err(|e| format!("{e} (https.tls in {})", config.source))?;
            let acceptor = TlsAcceptor::from(Arc::new(tls));
            if let Some(shared) = out.iter_mut().find(|l| l.addr == addr) {
                return Err(format!(
                    "{} https listens on {addr}, which {} already uses: give one of them another port ([express_gateway] https_port)",
                    config.source, shared.what
                ));
            }
            out.push(server::ListenerSettings {
                addr,
                tls: Some(acceptor),
                site: Arc::new(Site {
                    proto: "https",
                    wso2: false,
                    express: Some(index),
                    dialect: Dialect::ExpressGateway,
                    admin: None,
                    port: addr.port(),
                }),
                what: format!("Express Gateway HTTPS ({})", config.source),
                setting: "express_gateway.https_port".into(),
            });
        }
        let Some(listen) = &config.http else {
            continue;
        };
        let addr = express_address(
            listen,
            &format!("{} http", config.source),
            loaded.config.express_gateway.http_port,
            env,
        )?;
        if let Some(shared) = out.iter_mut().find(|l| l.addr == addr && l.tls.is_none()) {
            let mut site = (*shared.site).clone();
            site.express = Some(index);
            shared.site = Arc::new(site);
            continue;
        }
        out.push(server::ListenerSettings {
            addr,
            tls: None,
            site: Arc::new(Site {
                proto: "http",
                wso2: false,
                express: Some(index),
                dialect: Dialect::ExpressGateway,
                admin: None,
                port: addr.port(),
            }),
            what: format!("Express Gateway HTTP ({})", config.source),
            setting: "express_gateway.http_port".into(),
        });
    }
    Ok(out)
}

#[cfg(feature = "server")]
/// The rate-limit counters of `[rate_limit]`: Redis only when some pipeline has a rate-limit
/// or WSO2 throttle step and a URL is known (here or in `[store] redis`).
async fn open_counters(
    model: &GatewayModel,
    loaded: &LoadedConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<counters::Counters>, String> {
    use config::{CountersBackend, RedisFailure};
    let settings = &loaded.config.rate_limit;
    let store = &loaded.config.store;
    let used = model.pipelines.iter().any(|p| {
        p.steps.iter().any(|s| {
            matches!(
                s.policy,
                model::PolicySpec::RateLimit(_) | model::PolicySpec::Throttle(_)
            )
        })
    });
    // The same URL rules as the consumer store: `${VAR}` substituted, `[store]
    // redis_password_env` applied when the counters share the store's Redis.
    let in_file = |e: String| format!("{e} ({})", loaded.path.display());
    let url = if settings.redis.is_empty() {
        store.redis_url(env).map_err(in_file)?
    } else {
        env_template::expand(&settings.redis, env)
            .map_err(|e| in_file(format!("[rate_limit] redis: {e}")))?
    };
    let url = &url;
    let shared = match settings.backend {
        CountersBackend::Memory => false,
        CountersBackend::Auto => !url.is_empty(),
        CountersBackend::Redis if url.is_empty() => {
            return Err(format!(
                "[rate_limit] backend = \"redis\" needs a URL: set [rate_limit] redis or [store] redis ({})",
                loaded.path.display()
            ))
        }
        CountersBackend::Redis => true,
    };
    if !used || !shared {
        return Ok(Arc::new(counters::Counters::in_memory()));
    }
    if settings.timeout_ms == 0 {
        return Err(format!(
            "[rate_limit] timeout_ms must be at least 1 ({})",
            loaded.path.display()
        ));
    }
    let namespace = store.namespace(env).map_err(in_file)?;
    let ca = redis_ca(loaded)?;
    // One multiplexed connection per worker thread (tokio's default: one per core).
    let workers = worker_count(loaded.config.listener.worker_threads);
    let redis = counters::RedisCounters::open(
        url,
        &namespace,
        ca,
        Duration::from_millis(settings.timeout_ms),
        Duration::from_secs(settings.warn_interval_seconds.max(1)),
        workers,
    )
    .await
    .map_err(|e| {
        // The setting that holds the URL (in the file, MGW_… or --…).
        let setting = if settings.redis.is_empty() {
            "[store] redis, shared by [rate_limit]"
        } else {
            "[rate_limit] redis"
        };
        format!("{e} ({setting}, in {})", loaded.path.display())
    })?;
    tracing::info!(
        "rate-limit counters in Redis {} (timeout {} ms, fail {})",
        config::redact_url(url),
        settings.timeout_ms,
        match settings.on_redis_error {
            RedisFailure::Open => "open",
            RedisFailure::Closed => "closed",
        }
    );
    Ok(Arc::new(counters::Counters::shared(
        redis,
        counters::FailurePolicy {
            fail_closed: settings.on_redis_error == RedisFailure::Closed,
            replicas: settings.replicas,
        },
    )))
}

#[cfg(feature = "server")]
/// The PEM of `[store] redis_ca` (relative to the settings file), `None` when it is not set;
/// the consumer store and the rate-limit counters both trust it.
fn redis_ca(loaded: &LoadedConfig) -> Result<Option<Vec<u8>>, String> {
    let file = &loaded.config.store.redis_ca;
    if file.is_empty() {
        return Ok(None);
    }
    let path = loaded.resolve(std::path::Path::new(file));
    std::fs::read(&path).map(Some).map_err(|e| {
        format!(
            "cannot read {}: {e} ([store] redis_ca in {})",
            path.display(),
            loaded.path.display()
        )
    })
}

#[cfg(feature = "server")]
/// Opens the consumer store when the project has Express Gateway configurations
/// (`[store] path`, relative to the settings file; or `[store] redis`, then a thread follows
/// the changes other replicas make).
fn open_consumers(
    model: &GatewayModel,
    loaded: &LoadedConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<store::Consumers>>, String> {
    if model.express.is_empty() {
        return Ok(None);
    }
    let settings = &loaded.config.store;
    // `${VAR}` substituted first: a variable that is empty or unset (`${REDIS_URL:-}`) means
    // the file, as it means in-memory counters.
    let url = settings.redis_url(env)?;
    let (consumers, redis) = if url.is_empty() {
        let path = loaded.resolve(std::path::Path::new(&settings.path));
        let backend = store::sqlite::SqliteBackend::open(&path)
            .map_err(|e| format!("{e} ([store] path in {})", loaded.path.display()))?;
        let consumers = store::Consumers::open(Box::new(backend), settings.bcrypt_cost)
            .map_err(|e| format!("{e} ([store] path in {})", loaded.path.display()))?;
        (consumers, None)
    } else {
        let ca = redis_ca(loaded)?;
        let namespace = settings.namespace(env)?;
        let backend = store::redis::RedisBackend::open_with_ca(&url, &namespace, ca)
            .map_err(|e| format!("{e} ([store] redis in {})", loaded.path.display()))?;
        let consumers = store::Consumers::open(Box::new(backend.clone()), settings.bcrypt_cost)
            .map_err(|e| format!("{e} ([store] redis in {})", loaded.path.display()))?;
        (consumers, Some(backend))
    };
    let counts = consumers.counts();
    tracing::info!(
        "consumer store {}: {} user(s), {} application(s), {} credential(s), {} scope(s)",
        consumers.describe(),
        counts.users,
        counts.apps,
        counts.credentials,
        counts.scopes
    );
    let consumers = Arc::new(consumers);
    if let Some(backend) = redis {
        store::redis::spawn_subscriber(backend, consumers.clone())
            .map_err(|e| format!("cannot start the Redis change subscriber: {e}"))?;
    }
    Ok(Some(consumers))
}

#[cfg(feature = "server")]
/// The admin API listener of each Express Gateway configuration with an `admin` key (default
/// host `localhost`, as EG), and who may use it: `[admin] token`, else on loopback a token
/// made now and written to `admin.token` beside the store (or no token with
/// `require_token = false`); another address without a token is refused.
fn admin_listeners(
    model: &GatewayModel,
    loaded: &LoadedConfig,
    env: &dyn Fn(&str) -> Option<String>,
    consumers: &Arc<store::Consumers>,
    metrics: &Arc<policies::metrics::EgCounter>,
    tls: &rustls::ClientConfig,
) -> Result<Vec<server::ListenerSettings>, String> {
    let mut out = Vec::new();
    for config in &model.express {
        let Some(listen) = &config.admin else {
            continue;
        };
        let resolved = env_template::resolve_listen(
            listen,
            &format!("{} admin", config.source),
            "localhost",
            loaded.config.express_gateway.admin_port,
            env,
        )
        .map_err(|e| e.to_string())?;
        let ip: IpAddr = match resolved.host.as_str() {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            other => other.parse().map_err(|_| {
                format!(
                    "{} admin.host {other:?} is not an IP address or localhost",
                    config.source
                )
            })?,
        };
        let addr = SocketAddr::new(ip, resolved.port);
        let access = admin_access(loaded, ip)?;
        let api = admin::AdminApi::new(
            consumers.clone(),
            access,
            config
                .metrics_path
                .clone()
                .map(|path| (path, metrics.clone())),
        );
        let api = with_storage(api, config, loaded, env, tls)?;
        out.push(server::ListenerSettings {
            addr,
            tls: None,
            site: Arc::new(gateway::Site {
                proto: "http",
                wso2: false,
                express: None,
                dialect: model::Dialect::ExpressGateway,
                admin: Some(Arc::new(api)),
                port: addr.port(),
            }),
            what: format!("Express Gateway admin API ({})", config.source),
            setting: "express_gateway.admin_port".into(),
        });
    }
    Ok(out)
}

#[cfg(feature = "storage")]
/// Kargo's storage route on the admin listener, when `system.config.yml` declares the plugin:
/// its credentials and endpoints resolved from the environment now.
fn with_storage(
    api: admin::AdminApi,
    config: &model::express::ExpressGateway,
    loaded: &LoadedConfig,
    env: &dyn Fn(&str) -> Option<String>,
    tls: &rustls::ClientConfig,
) -> Result<admin::AdminApi, String> {
    let Some(storage) = &config.storage else {
        return Ok(api);
    };
    let route = admin::storage::StorageRoute::new(
        storage,
        env,
        tls.clone(),
        Duration::from_millis(loaded.config.upstream.connect_timeout_ms),
    )
    .map_err(|e| format!("{e} (plugins.storage of {})", config.source))?;
    Ok(api.with_storage(Arc::new(route)))
}

#[cfg(all(feature = "server", not(feature = "storage")))]
/// Without the `storage` feature a model asking for the route cannot be served.
fn with_storage(
    api: admin::AdminApi,
    config: &model::express::ExpressGateway,
    _loaded: &LoadedConfig,
    _env: &dyn Fn(&str) -> Option<String>,
    _tls: &rustls::ClientConfig,
) -> Result<admin::AdminApi, String> {
    match &config.storage {
        None => Ok(api),
        Some(_) => Err(format!(
            "{} declares the storage plugin but this gateway was compiled without the runtime's storage feature: build it again with `micro-gw build`",
            config.source
        )),
    }
}

#[cfg(feature = "server")]
fn admin_access(loaded: &LoadedConfig, ip: IpAddr) -> Result<admin::Access, String> {
    let settings = &loaded.config.admin;
    if !settings.token.is_empty() {
        return Ok(admin::Access::Token(settings.token.clone()));
    }
    if !ip.is_loopback() {
        return Err(format!(
            "the admin API listens on {ip}, beyond this machine, without a token: set [admin] token in {} (or MGW_ADMIN_TOKEN), or listen on 127.0.0.1",
            loaded.path.display()
        ));
    }
    if !settings.require_token {
        return Ok(admin::Access::Open);
    }
    let store = loaded.resolve(std::path::Path::new(&loaded.config.store.path));
    let file = store
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("admin.token");
    let token = format!("{}{}", store::records::uuid62(), store::records::uuid62());
    write_private(&file, &token).map_err(|e| {
        format!(
            "cannot write the admin token to {}: {e} (set [admin] token instead)",
            file.display()
        )
    })?;
    tracing::info!(
        "admin API token written to {} (set [admin] token to choose one)",
        file.display()
    );
    Ok(admin::Access::Token(token))
}

#[cfg(feature = "server")]
/// Writes `text` to `path`, readable by its owner only (Unix).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(feature = "server")]
/// Substitutes `${VAR}` in the Express Gateway settings the model keeps as written (service
/// endpoint URLs, host patterns), when the gateway starts, as EG does when it loads its file.
fn expand_express_settings(
    model: &mut GatewayModel,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let express_endpoints: Vec<usize> = model
        .pipelines
        .iter()
        .filter(|p| p.dialect == model::Dialect::ExpressGateway)
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.policy {
            model::PolicySpec::Proxy(spec) => match spec.endpoint {
                policies::proxy::EndpointChoice::Service { endpoint } => Some(endpoint),
                _ => None,
            },
            _ => None,
        })
        .collect();
    for index in express_endpoints {
        if let Some(endpoint) = model.endpoints.get_mut(index) {
            let setting = format!("serviceEndpoints.{}", endpoint.name);
            endpoint.urls = env_template::resolve_urls(&endpoint.urls, &setting, lookup)
                .map_err(|e| e.to_string())?;
        }
    }
    for config in &mut model.express {
        for route in &mut config.routes {
            if let model::express::HostPattern::Vhost(pattern) = &mut route.host {
                *pattern = env_template::expand(pattern, lookup).map_err(|e| {
                    format!(
                        "apiEndpoints.{}.host: {e} ({})",
                        route.api_endpoint, config.source
                    )
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(feature = "server")]
/// The address of an Express Gateway listener: its settings expanded, the port override of
/// `[express_gateway]` applied.
fn express_address(
    listen: &model::express::Listen,
    setting: &str,
    port_override: Option<u16>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SocketAddr, String> {
    let resolved = env_template::resolve_listen(listen, setting, "0.0.0.0", port_override, env)
        .map_err(|e| e.to_string())?;
    let ip: IpAddr = match resolved.host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other.parse().map_err(|_| {
            format!("{setting}.hostname {other:?} is not an IP address or localhost")
        })?,
    };
    Ok(SocketAddr::new(ip, resolved.port))
}

#[cfg(feature = "server")]
/// Sets up every credential validator the settings and the model ask for, and says at
/// start-up what will be refused for want of configuration.
fn build_authenticator(
    model: &GatewayModel,
    loaded: &LoadedConfig,
    env: &[(String, String)],
    client: auth::outbound::OutboundClient,
) -> Result<auth::Authenticator, String> {
    let security = &loaded.config.security;
    let in_file = |e: &dyn std::fmt::Display| format!("{e} (in {})", loaded.path.display());
    let read_env = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let resolve = |p: &std::path::Path| loaded.resolve(p);
    let sources = auth::jwt::Sources {
        resolve: &resolve,
        env: &read_env,
        client: &client,
    };
    let jwt = auth::jwt::JwtVerifier::new(security, &sources).map_err(|e| in_file(&e))?;
    let api_keys = security
        .api_keys
        .as_ref()
        .map(|config| auth::jwt::JwtVerifier::for_api_keys(config, security, &sources))
        .transpose()
        .map_err(|e| in_file(&e))?;
    let introspector = security
        .key_manager
        .as_ref()
        .map(|config| {
            auth::introspection::Introspector::new(
                config,
                security.token_cache_entries,
                client.clone(),
                &resolve,
                &read_env,
            )
        })
        .transpose()
        .map_err(|e| in_file(&e))?;
    let (users, legacy) =
        auth::basic::BasicUsers::new(&security.users, security.token_cache_entries)
            .map_err(|e| in_file(&e))?;
    if !legacy.is_empty() {
        tracing::warn!(
            "users {} have unsalted SHA password hashes (WSO2 format): replace them with `micro-gw hash` output",
            legacy.join(", ")
        );
    }
    let apikey_issuer = security
        .apikey_issuer
        .as_ref()
        .map(|config| auth::apikey_issuer::ApiKeyIssuer::new(config, model, &resolve))
        .transpose()
        .map_err(|e| in_file(&e))?;
    if apikey_issuer.is_some() && users.is_empty() {
        tracing::warn!("[security.apikey_issuer] is set but [[security.users]] is empty: nobody can get an API key");
    }
    let count = |wanted: &dyn Fn(&model::AuthScheme) -> bool| {
        model
            .apis
            .iter()
            .flat_map(|api| &api.resources)
            .filter(|r| {
                r.security
                    .as_ref()
                    .is_some_and(|s| s.schemes.iter().any(wanted))
            })
            .count()
    };
    let unconfigured = [
        (
            count(&|s| matches!(s, model::AuthScheme::Oauth2)),
            jwt.is_empty() && introspector.is_none(),
            "OAuth2 tokens",
            "[[security.jwt_issuers]] and [security.key_manager] are",
        ),
        (
            count(&|s| matches!(s, model::AuthScheme::ApiKey { .. })),
            api_keys.is_none(),
            "API keys",
            "[security.api_keys] is",
        ),
        (
            count(&|s| matches!(s, model::AuthScheme::Basic)),
            users.is_empty(),
            "basic authentication",
            "[[security.users]] is",
        ),
    ];
    for (resources, missing, what, setting) in unconfigured {
        if resources > 0 && missing {
            tracing::warn!(
                "{resources} resource(s) accept {what} but {setting} not configured in {}: those credentials get 401",
                loaded.path.display()
            );
        }
    }
    Ok(auth::Authenticator::new(
        auth::Validators {
            jwt,
            api_keys,
            introspector,
            users,
            apikey_issuer,
        },
        security.token_cache_entries,
        security.max_token_bytes,
    ))
}

#[cfg(feature = "server")]
/// The number of worker threads `listener.worker_threads` asks for (0: one per CPU core).
fn worker_count(worker_threads: usize) -> usize {
    match worker_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

#[cfg(feature = "server")]
/// The WSO2 listeners' addresses (HTTP, HTTPS with its acceptor) from `[listener]` and `[tls]`.
type Wso2Listeners = (Option<SocketAddr>, Option<(SocketAddr, TlsAcceptor)>);

#[cfg(feature = "server")]
fn server_settings(loaded: &LoadedConfig) -> Result<(ServerSettings, Wso2Listeners), String> {
    let listener = &loaded.config.listener;
    let host: IpAddr = listener
        .host
        .parse()
        .map_err(|_| format!("listener.host {:?} is not an IP address", listener.host))?;
    let https = if listener.https_enabled {
        let certificate = loaded.resolve(&loaded.config.tls.certificate);
        let private_key = loaded.resolve(&loaded.config.tls.private_key);
        let tls = tls::server_config(&certificate, &private_key).map_err(|e| {
            format!(
                "{e} ([tls] in {}; or set listener.https_enabled = false)",
                loaded.path.display()
            )
        })?;
        Some((
            SocketAddr::new(host, listener.https_port),
            TlsAcceptor::from(Arc::new(tls)),
        ))
    } else {
        None
    };
    let http = listener
        .http_enabled
        .then(|| SocketAddr::new(host, listener.http_port));
    let settings = ServerSettings {
        listeners: Vec::new(),
        handshake_timeout: Duration::from_secs(listener.tls_handshake_timeout_seconds),
        shutdown_timeout: Duration::from_secs(listener.shutdown_timeout_seconds),
        drain_delay: Duration::from_secs(listener.drain_delay_seconds),
        protocol: ProtocolSettings {
            max_header_bytes: loaded.config.limits.max_header_bytes,
            max_headers: loaded.config.limits.max_headers,
            max_connections: loaded.config.limits.max_connections,
            header_timeout: Duration::from_secs(loaded.config.timeouts.request_header_seconds),
            max_concurrent_streams: loaded.config.http2.max_concurrent_streams,
            max_pending_accept_reset_streams: loaded.config.http2.max_pending_accept_reset_streams,
            max_local_error_reset_streams: loaded.config.http2.max_local_error_reset_streams,
        },
        metrics: metrics_address(loaded)?,
        cores: (listener.runtime == config::ServerRuntime::ThreadPerCore)
            .then(|| worker_count(listener.worker_threads)),
        pin_workers: listener.pin_workers,
    };
    Ok((settings, (http, https)))
}

#[cfg(feature = "server")]
/// Where the metrics listener binds, from `[metrics]`; `None` when metrics are off.
fn metrics_address(loaded: &LoadedConfig) -> Result<Option<SocketAddr>, String> {
    let metrics = &loaded.config.metrics;
    if !metrics.enabled {
        return Ok(None);
    }
    let host: IpAddr = metrics.host.parse().map_err(|_| {
        format!(
            "metrics.host {:?} is not an IP address (in {}): use 127.0.0.1, or 0.0.0.0 to let other hosts scrape",
            metrics.host,
            loaded.path.display()
        )
    })?;
    Ok(Some(SocketAddr::new(host, metrics.port)))
}

/// A directory of a test's own under the system's temporary directory, named
/// `mgw-<tag>-<random>`, removed with what it holds when dropped.
#[cfg(test)]
pub(crate) fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("mgw-{tag}-"))
        .tempdir()
        .expect("a temporary directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_config_settings_and_endpoint_overrides() {
        let parsed = args(&[
            "--config",
            "c.toml",
            "--listener.http_port=0",
            "--myEp_prod_endpoint_0=http://x",
        ])
        .unwrap();
        assert_eq!(parsed.config, Some(PathBuf::from("c.toml")));
        assert_eq!(
            parsed.settings,
            vec![("listener.http_port".into(), "0".into())]
        );
        assert_eq!(
            parsed.endpoints,
            vec![("myEp_prod_endpoint_0".into(), "http://x".into())]
        );
        assert!(args(&["version"]).unwrap().version);
    }

    #[test]
    fn rejects_unknown_arguments() {
        assert!(args(&["--bogus=1"]).is_err());
        assert!(args(&["stray"]).is_err());
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--listener.http_port"]).is_err());
    }
}
