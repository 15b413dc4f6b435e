//! Where the consumer commands (`micro-gw users|apps|credentials|scopes`, `micro-gw consumers`)
//! send their requests: a running gateway's admin API over HTTP, or, when the gateway is
//! stopped, the project's embedded store file through the same route table the gateway serves
//! (`mgw_runtime::admin::routes`), so both answer alike.
//!
//! The admin URL comes from `--admin-url`, `MGW_ADMIN_URL`, or the project (its
//! `express-gateway/gateway.config.yml` `admin` host and port, `[express_gateway] admin_port`
//! overriding the port); the token from `--admin-token`, `MGW_ADMIN_TOKEN`, the project's
//! `[admin] token`, or the `admin.token` file the gateway writes beside its store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use mgw_runtime::admin::routes::dispatch;
use mgw_runtime::admin::Answer;
use mgw_runtime::store::sqlite::SqliteBackend;
use mgw_runtime::store::Consumers;
use serde_json::Value;

use crate::http_client::{self, Redirects, Trust};

/// The admin URL's environment variable.
pub const ADMIN_URL_ENV: &str = "MGW_ADMIN_URL";
/// The admin token's environment variable (the gateway reads it too).
pub const ADMIN_TOKEN_ENV: &str = "MGW_ADMIN_TOKEN";
/// Express Gateway's default admin port.
const DEFAULT_ADMIN_PORT: u16 = 9876;

/// How to reach the admin API, as given on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdminArgs {
    /// The admin API's base URL (default: MGW_ADMIN_URL, else from --project, else
    /// http://127.0.0.1:9876).
    #[arg(long, global = true, value_name = "URL")]
    pub admin_url: Option<String>,
    /// The admin API's bearer token (default: MGW_ADMIN_TOKEN, else the project's [admin]
    /// token or its data/admin.token).
    #[arg(long, global = true, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// The project whose gateway (or, with --offline, whose store file) to use.
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Work on the project's store file directly (the gateway must be stopped).
    #[arg(long, global = true, requires = "project")]
    pub offline: bool,
}

/// What the project says about its admin API and store.
#[derive(Debug, Clone)]
pub struct ProjectAdmin {
    /// `http://host:port` of the admin listener.
    pub url: String,
    /// The token, when one is configured or was written by the gateway.
    pub token: Option<String>,
    /// The store file (`[store] path`).
    pub store: PathBuf,
    /// `[store] bcrypt_cost`.
    pub bcrypt_cost: u32,
    /// `[store] redis` as written (empty: the embedded store file holds the consumers).
    pub redis: String,
}

impl ProjectAdmin {
    /// The store file to work on with the gateway stopped. Errors when the project keeps its
    /// consumers in Redis: the file would take changes no gateway of the project reads.
    pub fn offline_store(&self, project: &Path) -> anyhow::Result<&Path> {
        if !self.redis.is_empty() {
            bail!(
                "project {} keeps its consumers in Redis ([store] redis in conf/micro-gw.toml), not in {}: start a gateway of the project and run the command again without --offline (it then goes through the admin API, which writes to Redis)",
                project.display(),
                self.store.display()
            );
        }
        Ok(&self.store)
    }
}

/// Reads `project`'s admin URL, token and store path.
pub fn project_admin(project: &Path) -> anyhow::Result<ProjectAdmin> {
    let conf = project.join("conf").join("micro-gw.toml");
    let env: Vec<(String, String)> = std::env::vars().collect();
    let loaded = mgw_runtime::config::load(&conf, &env, &[])
        .with_context(|| format!("reading the settings of project {}", project.display()))?;
    let store = loaded.resolve(Path::new(&loaded.config.store.path));
    let (mut host, mut port) = ("127.0.0.1".to_string(), DEFAULT_ADMIN_PORT);
    for name in crate::project::EXPRESS_GATEWAY_FILES {
        let file = project.join("express-gateway").join(name);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
        if let Some(admin) = doc.get("admin") {
            if let Some(h) = admin
                .get("host")
                .or_else(|| admin.get("hostname"))
                .and_then(|h| h.as_str())
            {
                host = h.to_string();
            }
            match admin.get("port") {
                Some(serde_yaml::Value::Number(n)) => {
                    port = n
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(port);
                }
                Some(serde_yaml::Value::String(s)) => port = s.trim().parse().unwrap_or(port),
                _ => {}
            }
        }
        break;
    }
    if let Some(p) = loaded.config.express_gateway.admin_port {
        port = p;
    }
    if host == "localhost" || host == "0.0.0.0" || host == "::" || host.contains("${") {
        host = "127.0.0.1".into();
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let token = if !loaded.config.admin.token.is_empty() {
        Some(loaded.config.admin.token.clone())
    } else {
        let file = store
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("admin.token");
        std::fs::read_to_string(file)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    Ok(ProjectAdmin {
        url: format!("http://{host}:{port}"),
        token,
        store,
        bcrypt_cost: loaded.config.store.bcrypt_cost,
        redis: loaded.config.store.redis.clone(),
    })
}

/// An answer of the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, or `Value::String` for a text body, `Value::Null` for none.
    pub body: Value,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as one line of text, for an error message.
    pub fn text(&self) -> String {
        match &self.body {
            Value::String(s) => s.trim().to_string(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// Where requests go.
pub enum Target {
    /// A running gateway's admin API.
    Remote {
        /// The HTTP client.
        client: reqwest::Client,
        /// The runtime driving it.
        runtime: tokio::runtime::Runtime,
        /// Base URL without a trailing slash.
        url: String,
        /// Bearer token.
        token: Option<String>,
    },
    /// A stopped gateway's store file, opened here.
    Local {
        /// The store.
        consumers: Box<Consumers>,
        /// Its file.
        path: PathBuf,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A request could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Nothing listens at the URL.
    #[error("no gateway is running at {url} ({detail}): start it with `gateway <project>/target/<name>`, or work on its store file with --project <dir> --offline")]
    NotRunning {
        /// The admin URL.
        url: String,
        /// The connection error.
        detail: String,
    },
    /// Another transport failure.
    #[error("{0}")]
    Other(String),
}

impl Target {
    /// The admin API at `url`.
    pub fn remote(url: &str, token: Option<String>) -> anyhow::Result<Target> {
        let client =
            http_client::client_with(Trust::System, Duration::from_secs(120), Redirects::Refuse)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the HTTP runtime")?;
        Ok(Target::Remote {
            client,
            runtime,
            url: url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// The store file at `path` (created when missing).
    pub fn local(path: &Path, bcrypt_cost: u32) -> anyhow::Result<Target> {
        let backend = SqliteBackend::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let consumers =
            Consumers::open(Box::new(backend), bcrypt_cost).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Target::Local {
            consumers: Box::new(consumers),
            path: path.to_path_buf(),
        })
    }

    /// Where requests go, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Remote { url, .. } => format!("the gateway's admin API at {url}"),
            Target::Local { path, .. } => format!("the store file {}", path.display()),
        }
    }

    /// Whether this is a running gateway.
    pub fn is_remote(&self) -> bool {
        matches!(self, Target::Remote { .. })
    }

    /// Sends `method path` with an optional JSON body.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, TargetError> {
        match self {
            Target::Local { consumers, .. } => {
                let (path, query) = path.split_once('?').unwrap_or((path, ""));
                let body = body.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
                Ok(match dispatch(consumers, &method, path, query, body) {
                    Some(Answer::Json(status, value)) => Reply {
                        status: status.as_u16(),
                        body: value,
                    },
                    Some(Answer::Text(status, text)) => Reply {
                        status: status.as_u16(),
                        body: Value::String(text),
                    },
                    Some(Answer::Empty(status)) => Reply {
                        status: status.as_u16(),
                        body: Value::Null,
                    },
                    None => Reply {
                        status: 404,
                        body: Value::String(format!("Cannot {method} {path}")),
                    },
                })
            }
            Target::Remote {
                client,
                runtime,
                url,
                token,
            } => {
                let full = format!("{url}{path}");
                let mut request = client.request(method, &full);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
                runtime.block_on(async {
                    let response = request.send().await.map_err(|e| {
                        if e.is_connect() {
                            TargetError::NotRunning {
                                url: url.clone(),
                                detail: root_cause(&e),
                            }
                        } else {
                            TargetError::Other(http_client::explain(&e, &full))
                        }
                    })?;
                    let status = response.status().as_u16();
                    let json = response
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("json"));
                    let bytes = response
                        .bytes()
                        .await
                        .map_err(|e| TargetError::Other(http_client::explain(&e, &full)))?;
                    let body = if bytes.is_empty() {
                        Value::Null
                    } else if json {
                        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&bytes).into_owned())
                        })
                    } else {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    };
                    Ok(Reply { status, body })
                })
            }
        }
    }

    /// Like [`Target::call`], but a non-2xx answer is an error: `<status>: <text>`.
    pub fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Reply> {
        let reply = self.call(method.clone(), path, body)?;
        if reply.ok() {
            return Ok(reply);
        }
        let text = reply.text();
        let hint = match reply.status {
            401 if self.is_remote() => " (the admin API wants a token: --admin-token, MGW_ADMIN_TOKEN, or --project <dir> to read it from the project)",
            _ => "",
        };
        bail!(
            "{method} {path}: the admin API answered {}{}{}",
            reply.status,
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            },
            hint
        )
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The target the entity commands use: `--offline` opens the store file (after checking that
/// no gateway answers on the project's admin URL); otherwise the admin API.
pub fn connect(args: &AdminArgs) -> anyhow::Result<Target> {
    let project = match &args.project {
        Some(dir) => Some(project_admin(dir)?),
        None => None,
    };
    let url = args
        .admin_url
        .clone()
        .or_else(|| std::env::var(ADMIN_URL_ENV).ok().filter(|u| !u.is_empty()))
        .or_else(|| project.as_ref().map(|p| p.url.clone()))
        .unwrap_or_else(|| format!("http://127.0.0.1:{DEFAULT_ADMIN_PORT}"));
    let token = args
        .admin_token
        .clone()
        .or_else(|| {
            std::env::var(ADMIN_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty())
        })
        .or_else(|| project.as_ref().and_then(|p| p.token.clone()));
    let remote = Target::remote(&url, token)?;
    if !args.offline {
        return Ok(remote);
    }
    let Some(project) = project else {
        bail!("--offline needs --project <dir>");
    };
    if is_running(&remote) {
        bail!(
            "a gateway is running at {url}: its store file is in use; leave out --offline to go through its admin API"
        );
    }
    let store = project.offline_store(args.project.as_deref().unwrap_or(Path::new(".")))?;
    Target::local(store, project.bcrypt_cost)
}

/// Whether something answers at the target's admin URL.
pub fn is_running(target: &Target) -> bool {
    !matches!(
        target.call(reqwest::Method::GET, "/scopes", None),
        Err(TargetError::NotRunning { .. })
    )
}
