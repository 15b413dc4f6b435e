//! `micro-gw import <project> (-a <name> -v <version> | -l <label>)`: definitions from WSO2 API
//! Manager. Settings come from flags, then the saved settings, then prompts (only on a
//! terminal); the definitions are validated with the project's own before anything is written.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::apim::client::{ApimClient, ClientCredentials, TokenError};
use crate::apim::definition::{self, Prepared};
use crate::apim::secrets::{self, SecretStore, Secrets};
use crate::apim::settings::{self, Flow, Settings, DEFAULT_BASE_URL};
use crate::apim::{export, publisher, ApimApi, ApimError, Selection};
use crate::fsutil::write_and_remove_atomic;
use crate::http_client::Trust;
use crate::loader::{self, SourceFile};
use crate::project::{Project, ProjectError};

/// The API Manager flags of `import`.
#[derive(Default, clap::Args)]
#[command(next_help_heading = "Import from WSO2 API Manager")]
pub struct ApimArgs {
    /// Microgateway label (API Manager 3.x) or gateway environment (4.x).
    #[arg(short = 'l', long, value_name = "LABEL")]
    pub label: Option<String>,
    /// API name (with -v).
    #[arg(short = 'a', long = "api-name", value_name = "NAME")]
    pub api_name: Option<String>,
    /// API version (with -a).
    #[arg(short = 'v', long = "version", value_name = "VERSION")]
    pub api_version: Option<String>,
    /// Publisher user (saved; prompted on a terminal when missing).
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,
    /// Password (never saved; prompted on a terminal when missing).
    #[arg(
        short = 'p',
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// API Manager base URL, e.g. https://apim.example.com:9443 (saved).
    #[arg(short = 's', long = "server-url", value_name = "URL")]
    pub server_url: Option<String>,
    /// PEM bundle of the certificates to trust for the API Manager (saved).
    #[arg(short = 't', long, value_name = "PEM")]
    pub truststore: Option<PathBuf>,
    /// API Manager version: 3.x uses the publisher REST API, 4.x the gateway export (saved).
    #[arg(long = "apim-version", value_name = "VERSION")]
    pub apim_version: Option<String>,
}

/// The password is never shown, not even in debug output.
impl std::fmt::Debug for ApimArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApimArgs")
            .field("label", &self.label)
            .field("api_name", &self.api_name)
            .field("api_version", &self.api_version)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_stdin", &self.password_stdin)
            .field("server_url", &self.server_url)
            .field("truststore", &self.truststore)
            .field("apim_version", &self.apim_version)
            .finish()
    }
}

/// The longest password line `--password-stdin` reads.
const MAX_PASSWORD_BYTES: usize = 4096;

/// Reads the password for `--password-stdin`: the first line of `input`, at most
/// [`MAX_PASSWORD_BYTES`], without its line ending.
fn read_password_line(input: impl std::io::BufRead) -> anyhow::Result<String> {
    let mut line = Vec::new();
    input
        .take(MAX_PASSWORD_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .context("reading the password from standard input")?;
    if line.len() > MAX_PASSWORD_BYTES && !line.ends_with(b"\n") {
        bail!("--password-stdin: the first line of standard input is longer than {MAX_PASSWORD_BYTES} bytes; that is not a password");
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    let password = String::from_utf8(line)
        .map_err(|_| anyhow::anyhow!("--password-stdin: the password is not UTF-8 text"))?;
    if password.is_empty() {
        bail!("Micro gateway init failed: empty password. (--password-stdin: the first line of standard input was empty)");
    }
    Ok(password)
}

impl ApimArgs {
    /// True when any API Manager flag was given.
    pub fn any(&self) -> bool {
        self.label.is_some()
            || self.api_name.is_some()
            || self.api_version.is_some()
            || self.username.is_some()
            || self.password.is_some()
            || self.password_stdin
            || self.server_url.is_some()
            || self.truststore.is_some()
            || self.apim_version.is_some()
    }
}

/// WSO2's message for a 3.x import without a valid selection.
const MISSING_V3: &str = "Missing \"-l <label>\" or \"-a <api-name> -v <version>\" parameters";

/// `-l`, or `-a` with `-v`, as each API Manager version allows.
fn selection(flow: Flow, args: &ApimArgs) -> anyhow::Result<Selection> {
    let name_version = match (&args.api_name, &args.api_version) {
        (Some(name), Some(version)) => Some((name.clone(), version.clone())),
        (None, None) => None,
        _ => match flow {
            Flow::V3 => {
                bail!("{MISSING_V3} (-a <api-name> and -v <version> go together: give both)")
            }
            Flow::V4 => {
                bail!("-a <api-name> and -v <version> go together: give both (with -l <label>)")
            }
        },
    };
    match flow {
        Flow::V3 => match (&args.label, name_version) {
            (Some(label), None) => Ok(Selection {
                label: Some(label.clone()),
                name_version: None,
            }),
            (None, Some(nv)) => Ok(Selection {
                label: None,
                name_version: Some(nv),
            }),
            _ => bail!("{MISSING_V3} (give one of them; --openapi <file|URL> imports a definition file instead)"),
        },
        Flow::V4 => match &args.label {
            Some(label) => Ok(Selection {
                label: Some(label.clone()),
                name_version,
            }),
            None => bail!("Missing \"-l <label>\" parameter (with API Manager 4.x the label names the gateway environment to import from; -a/-v narrow it to one API)"),
        },
    }
}

/// Asks for what is missing, or says which flag to pass when there is no terminal.
struct Prompter {
    interactive: bool,
}

impl Prompter {
    fn detect() -> Prompter {
        Prompter {
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    fn missing(what: &str, flag: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "missing {what}: pass {flag} (standard input is not a terminal, so micro-gw does not ask)"
        )
    }

    fn input(
        &self,
        prompt: &str,
        default: Option<&str>,
        what: &str,
        flag: &str,
    ) -> anyhow::Result<String> {
        if !self.interactive {
            return Err(Self::missing(what, flag));
        }
        let mut input = dialoguer::Input::<String>::new().with_prompt(prompt);
        if let Some(default) = default {
            input = input.default(default.to_string());
        }
        let answer = input.interact_text().context("reading the answer")?;
        Ok(answer.trim().to_string())
    }

    fn optional(&self, prompt: &str) -> anyhow::Result<String> {
        let answer = dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .context("reading the answer")?;
        Ok(answer.trim().to_string())
    }

    fn password(&self, user: &str) -> anyhow::Result<String> {
        if !self.interactive {
            return Err(Self::missing(
                &format!("password for {user}"),
                "-p/--password or --password-stdin",
            ));
        }
        for prompt in [
            format!("Enter Password for {user}"),
            format!("Password can't be empty; enter password for {user}"),
        ] {
            let password = dialoguer::Password::new()
                .with_prompt(prompt)
                .allow_empty_password(true)
                .interact()
                .context("reading the password")?;
            if !password.is_empty() {
                return Ok(password);
            }
        }
        bail!("Micro gateway init failed: empty password. (nothing was imported)")
    }
}

/// Imports from the API Manager into `project_arg`.
pub fn run(project_arg: &Path, insecure: bool, args: &ApimArgs) -> anyhow::Result<()> {
    let project = match Project::existing(project_arg) {
        Err(ProjectError::Missing(name)) => bail!(
            "Project {name} does not exist. Please use 'micro-gw init {name}' to initialize the project."
        ),
        other => other?,
    };
    let path = settings::default_path();
    let mut settings = Settings::load(&path)?;
    let saved = settings.clone();
    if let Some(version) = &args.apim_version {
        settings.set_apim_version(version);
    }
    let selection = selection(settings.flow(), args)?;
    settings.check_rest_version(&path)?;
    let prompter = Prompter::detect();

    let base_url = match &args.server_url {
        Some(url) => url.trim().to_string(),
        None if !settings.token.base_url.trim().is_empty() => settings.token.base_url.clone(),
        None => prompter.input(
            "Enter APIM base URL",
            Some(DEFAULT_BASE_URL),
            "API Manager base URL",
            "-s/--server-url <URL>",
        )?,
    };
    let base_url = base_url.trim_end_matches('/').to_string();
    match url::Url::parse(&base_url) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.has_host() => {}
        _ => bail!("{base_url} is not an API Manager base URL: give one like {DEFAULT_BASE_URL}"),
    }
    if settings.token.base_url.trim_end_matches('/') != base_url {
        settings.token.client_id.clear();
    }
    settings.token.base_url = base_url.clone();
    eprintln!(
        "You are using REST version - {} and dynamic client registration version - {} of API Manager. \n (If you want to change this, go to {})",
        settings.rest_version(),
        settings.dcr_version(),
        path.display()
    );

    let username = match &args.username {
        Some(user) => user.trim().to_string(),
        None if !settings.token.username.trim().is_empty() => settings.token.username.clone(),
        None => prompter.input("Enter Username", None, "username", "-u/--username <USER>")?,
    };
    if username.is_empty() {
        bail!("the username is empty: pass -u/--username <USER>");
    }
    if settings.token.username != username {
        settings.token.client_id.clear();
    }
    settings.token.username = username.clone();

    let password = if let Some(password) = &args.password {
        password.clone()
    } else if args.password_stdin {
        if std::io::stdin().is_terminal() {
            bail!("--password-stdin: standard input is a terminal; pipe the password in (e.g. `pass show apim | micro-gw import … --password-stdin`), or leave out --password-stdin to be asked for it");
        }
        read_password_line(std::io::stdin().lock())?
    } else {
        prompter.password(&username)?
    };

    let trust_store = if insecure {
        eprintln!(
            "micro-gw: warning: -k/--insecure: the API Manager's certificate is not verified"
        );
        None
    } else {
        if let Some(store) = &args.truststore {
            let store = std::path::absolute(store).unwrap_or_else(|_| store.clone());
            settings.token.trust_store_location = Some(store.display().to_string());
        } else if settings.token.trust_store_location.is_none() && prompter.interactive {
            let answer = prompter.optional(
                "Enter Trust store location: [a PEM bundle; empty for the system's roots]",
            )?;
            let answer = if answer.is_empty() {
                answer
            } else {
                let store = PathBuf::from(answer);
                std::path::absolute(&store)
                    .unwrap_or(store)
                    .display()
                    .to_string()
            };
            settings.token.trust_store_location = Some(answer);
        }
        match settings.token.trust_store_location.as_deref() {
            Some(location) if !location.is_empty() => {
                let location = PathBuf::from(location);
                if !location.is_file() {
                    bail!(
                        "Provided trust store location does not exist. ({}: pass -t/--truststore with a PEM bundle, or fix trustStoreLocation in {})",
                        location.display(),
                        path.display()
                    );
                }
                check_pem_trust_store(&location, &path)?;
                Some(location)
            }
            _ => None,
        }
    };
    let trust = match (&trust_store, insecure) {
        (_, true) => Trust::Insecure,
        (Some(bundle), false) => Trust::Bundle(bundle),
        (None, false) => Trust::System,
    };

    let endpoints = settings.endpoints(&base_url, &path)?;
    let client = ApimClient::new(trust, settings.timeout(), endpoints, &base_url)?;
    let secrets = secrets::open();
    let store: Option<&dyn SecretStore> = match &secrets {
        Secrets::Keyring(store) => Some(store),
        Secrets::Unavailable(reason) => {
            eprintln!("micro-gw: note: {reason}: the API Manager client's secret is not kept, so a client is registered again next time");
            None
        }
    };
    let stored = stored_client(&settings, store);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client")?;
    let (token, credentials, fresh) =
        runtime.block_on(authenticate(&client, stored, &username, &password))?;
    // A newly registered client is saved now (it exists at the server whatever happens next);
    // every other changed value only once the import has succeeded.
    let mut on_disk = saved.clone();
    if fresh {
        remember_client(&mut settings, store, &credentials, &base_url);
        if let Some(interim) = client_only_update(&saved, &settings) {
            interim
                .save(&path)
                .context("saving the newly registered API Manager client")?;
            forget_replaced_client(&saved, &interim, store);
            on_disk = interim;
        }
    }

    let fetched = runtime.block_on(async {
        match settings.flow() {
            Flow::V3 => publisher::fetch(&client, &token, &selection)
                .await
                .map(|f| (f.apis, Vec::new(), f.warnings)),
            Flow::V4 => export::fetch(&client, &token, &selection)
                .await
                .map(|e| (e.apis, e.skipped, Vec::new())),
        }
    });
    let written = fetched
        .map_err(anyhow::Error::from)
        .and_then(|(apis, skipped, warnings)| {
            for warning in &warnings {
                eprintln!("micro-gw: warning: {warning}");
            }
            for item in &skipped {
                eprintln!(
                    "micro-gw: warning: skipped {item}: only APIs can be imported, not API Products"
                );
            }
            let written = write_definitions(&project, &apis)?;
            Ok((apis, written))
        });
    let (apis, written) = match written {
        Ok(done) => done,
        Err(err) => {
            // A client registered for settings that are not saved would never be used again.
            let unsaved = settings.token.client_id.trim();
            if fresh && !unsaved.is_empty() && on_disk.token.client_id.trim() != unsaved {
                if let Some(store) = store {
                    let _ = store.delete(&secrets::client_key(unsaved, &base_url));
                }
            }
            return Err(err);
        }
    };
    settings.fill_versions();
    if settings != on_disk {
        settings
            .save(&path)
            .context("saving the API Manager settings")?;
        forget_replaced_client(&on_disk, &settings, store);
    }
    for (api, prepared) in apis.iter().zip(&written) {
        println!("ID for API with name {} : {}", api.name, prepared.id);
    }
    println!(
        "(Use \"micro-gw build {}\" to build the project)",
        project.root.display()
    );
    Ok(())
}

/// Refuses a trust store that is not a PEM bundle (WSO2's toolkit took a PKCS12 file, and a
/// copied `toolkit-config.toml` may still point at one), saying how to convert it.
fn check_pem_trust_store(location: &Path, settings_path: &Path) -> anyhow::Result<()> {
    let extension = location
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut head = Vec::new();
    std::fs::File::open(location)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut head))
        .with_context(|| format!("reading the trust store {}", location.display()))?;
    let pem = String::from_utf8_lossy(&head).contains("-----BEGIN CERTIFICATE-----");
    if matches!(extension.as_str(), "p12" | "pfx" | "jks") || !pem {
        bail!(
            "the trust store {} is not a PEM bundle of certificates{}: micro-gw reads PEM, not the PKCS12 trust store WSO2's toolkit used. Convert it with `openssl pkcs12 -in {} -nokeys -out ts.pem` (it asks for the trust store password, `ballerina` by default), then pass -t ts.pem or set trustStoreLocation in {}",
            location.display(),
            if matches!(extension.as_str(), "p12" | "pfx" | "jks") {
                format!(" (.{extension})")
            } else {
                String::new()
            },
            location.display(),
            settings_path.display()
        );
    }
    Ok(())
}

/// The saved client, when its secret is in the keyring.
fn stored_client(
    settings: &Settings,
    store: Option<&dyn SecretStore>,
) -> Option<ClientCredentials> {
    let id = settings.token.client_id.trim();
    if id.is_empty() {
        return None;
    }
    let key = secrets::client_key(id, &settings.token.base_url);
    match store?.get(&key) {
        Ok(Some(secret)) => Some(ClientCredentials {
            id: id.to_string(),
            secret,
        }),
        Ok(None) => None,
        Err(err) => {
            eprintln!("micro-gw: note: {err}; registering a new client");
            None
        }
    }
}

/// A token, using the saved client when there is one and registering a new client when there
/// is none or the server no longer knows it. Returns the client used and whether it is new.
async fn authenticate(
    client: &ApimClient,
    stored: Option<ClientCredentials>,
    username: &str,
    password: &str,
) -> Result<(String, ClientCredentials, bool), ApimError> {
    if let Some(credentials) = stored {
        match client
            .password_token(&credentials, username, password)
            .await
        {
            Ok(token) => return Ok((token, credentials, false)),
            Err(TokenError::InvalidClient) => {}
            Err(TokenError::Apim(err)) => return Err(err),
        }
    }
    let credentials = client.register(username, password).await?;
    match client
        .password_token(&credentials, username, password)
        .await
    {
        Ok(token) => Ok((token, credentials, true)),
        Err(TokenError::InvalidClient) => Err(ApimError::Unauthorized {
            call: format!("token request (POST {})", client.endpoints.token),
            status: 401,
        }),
        Err(TokenError::Apim(err)) => Err(err),
    }
}

/// Keeps a newly registered client: its secret in the keyring and its id in the settings, or
/// neither when the keyring cannot take it. The client it replaces is forgotten once the new
/// one is saved ([`forget_replaced_client`]).
fn remember_client(
    settings: &mut Settings,
    store: Option<&dyn SecretStore>,
    credentials: &ClientCredentials,
    base_url: &str,
) {
    settings.token.client_id.clear();
    let Some(store) = store else { return };
    match store.set(&secrets::client_key(&credentials.id, base_url), &credentials.secret) {
        Ok(()) => settings.token.client_id = credentials.id.clone(),
        Err(err) => eprintln!(
            "micro-gw: note: {err}: the client's secret is not kept, so a client is registered again next time"
        ),
    }
}

/// The saved settings with only the newly registered client changed, when that client belongs
/// to the saved base URL and user (otherwise it is saved with them, after a successful import).
fn client_only_update(saved: &Settings, settings: &Settings) -> Option<Settings> {
    let same_server =
        saved.token.base_url.trim_end_matches('/') == settings.token.base_url.trim_end_matches('/');
    let same_user = saved.token.username.trim() == settings.token.username.trim();
    if !same_server || !same_user || saved.token.client_id == settings.token.client_id {
        return None;
    }
    let mut interim = saved.clone();
    interim.token.client_id = settings.token.client_id.clone();
    Some(interim)
}

/// Deletes the keyring entry of the client `before` named, once `after` (now saved) names
/// another one.
fn forget_replaced_client(before: &Settings, after: &Settings, store: Option<&dyn SecretStore>) {
    let old = before.token.client_id.trim();
    let same = old == after.token.client_id.trim()
        && before.token.base_url.trim_end_matches('/')
            == after.token.base_url.trim_end_matches('/');
    if old.is_empty() || same {
        return;
    }
    if let Some(store) = store {
        let _ = store.delete(&secrets::client_key(old, &before.token.base_url));
    }
}

/// The file name the same API has in the other format.
fn other_format_name(prepared: &Prepared) -> String {
    if prepared.file_name.ends_with("swagger.json") {
        format!("{}openAPI.yaml", prepared.id)
    } else {
        format!("{}swagger.json", prepared.id)
    }
}

/// Validates the definitions together with the project's others, then writes all of them or
/// none into `gen/api_definitions/`.
fn write_definitions(project: &Project, apis: &[ApimApi]) -> anyhow::Result<Vec<Prepared>> {
    let prepared = apis
        .iter()
        .map(definition::prepare)
        .collect::<Result<Vec<_>, _>>()?;
    let dir = project.imported_definitions();
    let targets: Vec<(PathBuf, String)> = prepared
        .iter()
        .map(|p| {
            let path = dir.join(&p.file_name);
            let name = project.display(&path);
            (path, name)
        })
        .collect();
    // The same API saved earlier in the other format (`swagger.json` vs `openAPI.yaml`) is
    // replaced too: removed in the same all-or-nothing write.
    let removals: Vec<(PathBuf, String)> = prepared
        .iter()
        .map(|p| {
            let path = dir.join(other_format_name(p));
            let name = project.display(&path);
            (path, name)
        })
        .filter(|(path, _)| !targets.iter().any(|(target, _)| target == path))
        .collect();
    let mut files: Vec<SourceFile> = project
        .definition_files()
        .with_context(|| format!("reading the definitions of {}", project.root.display()))?
        .into_iter()
        .filter(|f| {
            !targets
                .iter()
                .chain(&removals)
                .any(|(_, name)| *name == f.name)
        })
        .collect();
    for ((_, name), p) in targets.iter().zip(&prepared) {
        files.push(SourceFile {
            name: name.clone(),
            text: p.text.clone(),
        });
    }
    match loader::load(&project.name, &files) {
        Ok(loaded) => {
            let own: Vec<_> = loaded
                .warnings
                .iter()
                .filter(|w| targets.iter().any(|(_, name)| *name == w.file))
                .cloned()
                .collect();
            super::print_warnings(&own);
        }
        Err(failed) => {
            super::print_warnings(&failed.warnings);
            bail!(
                "nothing was imported, and the project is unchanged: the API Manager's definitions do not load:\n{}",
                failed.error
            );
        }
    }
    let writes: Vec<(PathBuf, Vec<u8>)> = targets
        .iter()
        .zip(&prepared)
        .map(|((path, _), p)| (path.clone(), p.text.clone().into_bytes()))
        .collect();
    let removals: Vec<PathBuf> = removals.into_iter().map(|(path, _)| path).collect();
    let created_dir = !dir.exists();
    if let Err(err) = write_and_remove_atomic(&writes, &removals, None) {
        if created_dir {
            let _ = std::fs::remove_dir(&dir);
            let _ = std::fs::remove_dir(project.root.join("gen"));
        }
        return Err(err).with_context(|| format!("writing into {}", dir.display()));
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MemoryStore(RefCell<HashMap<String, String>>);

    impl SecretStore for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<String>, secrets::SecretError> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, secret: &str) -> Result<(), secrets::SecretError> {
            self.0.borrow_mut().insert(key.into(), secret.into());
            Ok(())
        }
        fn delete(&self, key: &str) -> Result<bool, secrets::SecretError> {
            Ok(self.0.borrow_mut().remove(key).is_some())
        }
    }

    fn args(label: Option<&str>, name: Option<&str>, version: Option<&str>) -> ApimArgs {
        ApimArgs {
            label: label.map(Into::into),
            api_name: name.map(Into::into),
            api_version: version.map(Into::into),
            ..ApimArgs::default()
        }
    }

    fn menu_api(swagger2: bool) -> ApimApi {
        let definition = if swagger2 {
            serde_json::json!({
                "swagger": "2.0",
                "info": {"title": "x", "version": "1"},
                "basePath": "/menu",
                "x-wso2-production-endpoints": {"urls": ["http://127.0.0.1:9"], "type": "http"},
                "paths": {"/items": {"get": {"responses": {"200": {"description": "OK"}}}}}
            })
        } else {
            serde_json::json!({
                "openapi": "3.0.1",
                "info": {"title": "x", "version": "1"},
                "x-wso2-basePath": "/menu",
                "x-wso2-production-endpoints": {"urls": ["http://127.0.0.1:9"], "type": "http"},
                "paths": {"/items": {"get": {"responses": {"200": {"description": "OK"}}}}}
            })
        };
        ApimApi {
            name: "Menu".into(),
            version: "1".into(),
            definition: definition.to_string(),
        }
    }

    #[test]
    fn a_format_change_replaces_the_other_format_file() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::from_arg(&dir.path().join("shop")).unwrap();
        std::fs::create_dir_all(project.imported_definitions()).unwrap();
        let first = write_definitions(&project, &[menu_api(false)]).unwrap();
        let yaml = project.imported_definitions().join(&first[0].file_name);
        assert!(yaml.to_string_lossy().ends_with("openAPI.yaml"));
        assert!(yaml.is_file());
        // The API Manager now answers Swagger 2.0: same id, other file name, old file gone.
        let second = write_definitions(&project, &[menu_api(true)]).unwrap();
        assert_eq!(first[0].id, second[0].id);
        let json = project.imported_definitions().join(&second[0].file_name);
        assert!(json.is_file() && !yaml.exists());
        let names: Vec<_> = std::fs::read_dir(project.imported_definitions())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // And back again.
        write_definitions(&project, &[menu_api(false)]).unwrap();
        assert!(yaml.is_file() && !json.exists());
    }

    #[test]
    fn pkcs12_trust_stores_are_refused_with_the_conversion() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("toolkit-config.toml");
        let p12 = dir.path().join("ballerinaTruststore.p12");
        std::fs::write(&p12, [0x30u8, 0x82, 0x0a, 0x1f, 0x02, 0x01, 0x03]).unwrap();
        let err = check_pem_trust_store(&p12, &settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a PEM bundle")
                && err.contains("openssl pkcs12 -in")
                && err.contains("-nokeys -out ts.pem"),
            "{err}"
        );
        // Binary content under a PEM-looking name is refused too.
        let renamed = dir.path().join("ts.pem");
        std::fs::write(&renamed, [0x30u8, 0x82, 0x00]).unwrap();
        assert!(check_pem_trust_store(&renamed, &settings).is_err());
        let pem = dir.path().join("ca.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(check_pem_trust_store(&pem, &settings).is_ok());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let args = ApimArgs {
            username: Some("admin".into()),
            password: Some("hunter2".into()),
            ..ApimArgs::default()
        };
        let text = format!("{args:?}");
        assert!(
            text.contains("admin") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn password_stdin_reads_one_bounded_line() {
        assert_eq!(
            read_password_line(&b"pa ss\r\nsecond line\n"[..]).unwrap(),
            "pa ss"
        );
        assert_eq!(
            read_password_line(&b"no newline"[..]).unwrap(),
            "no newline"
        );
        let exact = "x".repeat(MAX_PASSWORD_BYTES);
        assert_eq!(read_password_line(exact.as_bytes()).unwrap(), exact);
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let err = read_password_line(long.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("longer than 4096 bytes"), "{err}");
        // An endless stream is not read to its end.
        let endless = std::io::BufReader::new(std::io::repeat(b'y'));
        assert!(read_password_line(endless).is_err());
        let err = read_password_line(&b"\nlater"[..]).unwrap_err().to_string();
        assert!(err.contains("empty password"), "{err}");
    }

    #[test]
    fn each_flow_takes_its_own_selection() {
        assert!(selection(Flow::V3, &args(Some("l"), None, None)).is_ok());
        assert!(selection(Flow::V3, &args(None, Some("a"), Some("1"))).is_ok());
        let err = selection(Flow::V3, &args(Some("l"), Some("a"), Some("1")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Missing \"-l <label>\" or \"-a <api-name> -v <version>\" parameters"),
            "{err}"
        );
        let err = selection(Flow::V3, &args(None, Some("a"), None))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(MISSING_V3) && err.contains("go together"),
            "{err}"
        );
        let err = selection(Flow::V4, &args(None, Some("a"), Some("1")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Missing \"-l <label>\" parameter"), "{err}");
        let both = selection(Flow::V4, &args(Some("env"), Some("a"), Some("1"))).unwrap();
        assert_eq!(both.name_version, Some(("a".into(), "1".into())));
    }

    /// An API Manager that knows one client (`new-id`/`new-secret`), issues it on registration,
    /// and refuses every other client at the token endpoint with 401.
    async fn apim_knowing_one_client() -> mgw_e2e::backend::Scripted {
        use mgw_e2e::tokens::basic;
        mgw_e2e::backend::spawn_scripted(|seen| {
            match (seen.method.as_str(), seen.target.as_str()) {
                ("POST", "/client-registration/v0.17/register")
                    if seen.header("content-type") == Some("application/json") =>
                {
                    if seen.header("authorization") == Some(&basic("admin", "pw")) {
                        (
                            200,
                            vec![],
                            r#"{"clientId":"new-id","clientSecret":"new-secret"}"#.into(),
                        )
                    } else {
                        (401, vec![], String::new())
                    }
                }
                ("POST", "/oauth2/token")
                    if seen.header("content-type") == Some("application/x-www-form-urlencoded")
                        && seen.body.contains("grant_type=password") =>
                {
                    if seen.header("authorization") == Some(&basic("new-id", "new-secret")) {
                        (200, vec![], r#"{"access_token":"tok"}"#.into())
                    } else {
                        (401, vec![], r#"{"error":"invalid_client"}"#.into())
                    }
                }
                _ => (415, vec![], String::new()),
            }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_saved_client_the_server_forgot_is_registered_again_once() {
        let server = apim_knowing_one_client().await;
        let client = crate::apim::client::tests::client_for(&server.url());
        let forgotten = ClientCredentials {
            id: "old-id".into(),
            secret: "old-secret".into(),
        };
        let (token, credentials, fresh) = authenticate(&client, Some(forgotten), "admin", "pw")
            .await
            .unwrap();
        assert_eq!(token, "tok");
        assert_eq!(credentials.id, "new-id");
        assert!(fresh);
        let calls: Vec<_> = server.seen().iter().map(|s| s.target.clone()).collect();
        assert_eq!(
            calls,
            [
                "/oauth2/token",
                "/client-registration/v0.17/register",
                "/oauth2/token"
            ]
        );
        // A saved client the server knows is used as is.
        let known = credentials.clone();
        let (_, used, fresh) = authenticate(&client, Some(known.clone()), "admin", "pw")
            .await
            .unwrap();
        assert_eq!((used, fresh), (known, false));
        assert_eq!(server.seen().len(), 4);
        // A wrong password: registration answers 401 and nothing loops.
        let err = authenticate(&client, None, "admin", "wrong")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApimError::Unauthorized { status: 401, .. }),
            "{err}"
        );
        assert_eq!(server.seen().len(), 5);
    }

    #[tokio::test]
    async fn a_new_client_refused_at_once_is_not_registered_again() {
        // Registration works, but the token endpoint refuses every client.
        let server = mgw_e2e::backend::spawn_scripted(|seen| match seen.target.as_str() {
            "/client-registration/v0.17/register" => {
                (200, vec![], r#"{"clientId":"c","clientSecret":"s"}"#.into())
            }
            _ => (401, vec![], r#"{"error":"invalid_client"}"#.into()),
        })
        .await
        .unwrap();
        let client = crate::apim::client::tests::client_for(&server.url());
        let stale = ClientCredentials {
            id: "old".into(),
            secret: "old".into(),
        };
        let err = authenticate(&client, Some(stale), "admin", "pw")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApimError::Unauthorized { status: 401, .. }),
            "{err}"
        );
        assert_eq!(
            server.seen().len(),
            3,
            "token, register, token: then it stops"
        );
    }

    #[test]
    fn only_a_new_client_is_saved_before_the_import_succeeds() {
        let mut saved = Settings::default();
        saved.token.base_url = "https://apim:9443".into();
        saved.token.username = "admin".into();
        saved.token.client_id = "old".into();
        let mut settings = saved.clone();
        settings.token.client_id = "new".into();
        settings.token.trust_store_location = Some("/tmp/ca.pem".into());
        settings.set_apim_version("4.2.0");
        let interim = client_only_update(&saved, &settings).unwrap();
        assert_eq!(interim.token.client_id, "new");
        assert_eq!(interim.token.trust_store_location, None);
        assert_eq!(interim.token.apim_version, "");
        // A client of another server or user waits for the import to succeed.
        let mut elsewhere = settings.clone();
        elsewhere.token.base_url = "https://other:9443".into();
        assert!(client_only_update(&saved, &elsewhere).is_none());
        let mut someone = settings.clone();
        someone.token.username = "bob".into();
        assert!(client_only_update(&saved, &someone).is_none());
        // Nothing new, nothing to save.
        assert!(client_only_update(&saved, &saved.clone()).is_none());
    }

    #[test]
    fn a_new_client_replaces_the_old_one_in_the_keyring() {
        let store = MemoryStore::default();
        let mut saved = Settings::default();
        saved.token.base_url = "https://apim:9443".into();
        saved.token.client_id = "old".into();
        store.set("old@https://apim:9443", "old-secret").unwrap();
        assert_eq!(
            stored_client(&saved, Some(&store)).map(|c| c.secret),
            Some("old-secret".into())
        );
        let mut settings = saved.clone();
        let fresh = ClientCredentials {
            id: "new".into(),
            secret: "new-secret".into(),
        };
        remember_client(&mut settings, Some(&store), &fresh, "https://apim:9443");
        assert_eq!(settings.token.client_id, "new");
        assert_eq!(stored_client(&settings, Some(&store)), Some(fresh.clone()));
        // The old secret goes once the new client is saved.
        assert!(store.get("old@https://apim:9443").unwrap().is_some());
        forget_replaced_client(&saved, &settings, Some(&store));
        assert_eq!(store.get("old@https://apim:9443").unwrap(), None);
        // Without a keyring nothing is kept, not even the id.
        let mut settings = saved.clone();
        remember_client(&mut settings, None, &fresh, "https://apim:9443");
        assert_eq!(settings.token.client_id, "");
        assert_eq!(stored_client(&saved, None), None);
    }
}
