//! The toolkit's saved API Manager settings: `toolkit-config.toml` in the user's config
//! directory (or `$MGW_CONFIG_DIR`), in the layout of WSO2's toolkit file so users can carry
//! theirs over. Secrets never go here: the password is never saved and the client secret lives
//! in the OS keyring ([`super::secrets`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// Points the toolkit's config directory elsewhere (tests, several profiles).
pub const CONFIG_DIR_ENV: &str = "MGW_CONFIG_DIR";
/// The settings file's name, as in WSO2's toolkit.
pub const FILE_NAME: &str = "toolkit-config.toml";
/// Base URL offered by the prompt.
pub const DEFAULT_BASE_URL: &str = "https://localhost:9443";
/// Dynamic client registration version (API Manager 3.x and 4.x).
pub const DEFAULT_DCR_VERSION: &str = "v0.17";
/// Publisher REST version of API Manager 3.2.
pub const DEFAULT_REST_VERSION_3: &str = "v1.2";
/// Publisher REST version of API Manager 4.x.
pub const DEFAULT_REST_VERSION_4: &str = "v4";
/// Total time allowed for one call to the API Manager, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

const PUBLISHER_TEMPLATE: &str = "{baseURL}/api/am/publisher/{restVersion}";
const REGISTRATION_TEMPLATE: &str = "{baseURL}/client-registration/{dcrVersion}/register";
const TOKEN_TEMPLATE: &str = "{baseURL}/oauth2/token";

/// The settings file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a value of the wrong type.
    #[error("{path} is not a valid toolkit settings file: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// API Manager 2.x's publisher REST API (v0.x), which this toolkit does not implement.
    #[error("restVersion = \"{version}\" in {path}: only the publisher REST API v1.x of API Manager 3.x (e.g. v1.2) is supported; the legacy mode of API Manager 2.x (REST v0.x, expand=true) is not implemented. Set restVersion = \"v1.2\", or apimVersion = \"4.x\" for API Manager 4.x")]
    LegacyRest {
        /// The configured version.
        version: String,
        /// The file.
        path: String,
    },
    /// An endpoint template does not make a URL.
    #[error("{key} = \"{value}\" in {path} does not make a valid URL ({message}); fix it or remove the line to use the default")]
    BadEndpoint {
        /// The setting.
        key: &'static str,
        /// The resolved value.
        value: String,
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// The whole file. Unknown keys and tables (e.g. WSO2's `[corsConfiguration]`) are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `[client]`
    #[serde(default)]
    pub client: ClientSection,
    /// `[token]`: where the API Manager is and who we are to it.
    #[serde(default)]
    pub token: TokenSection,
    #[serde(flatten)]
    other: toml::Table,
    /// True when the file read held a `clientSecret` (WSO2's, encrypted), which was dropped.
    #[serde(skip)]
    dropped_client_secret: bool,
}

/// `[client]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientSection {
    /// Total time for one call, in milliseconds.
    #[serde(rename = "httpRequestTimeout", skip_serializing_if = "Option::is_none")]
    pub http_request_timeout: Option<u64>,
    #[serde(flatten)]
    other: toml::Table,
}

/// `[token]`. Empty strings mean "not set", as in WSO2's file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSection {
    /// Empty or `3.x`: publisher REST API; `4.x`: the gateway export.
    #[serde(default)]
    pub apim_version: String,
    /// e.g. `https://apim.example.com:9443`
    #[serde(rename = "baseURL", default)]
    pub base_url: String,
    /// Publisher REST version; empty means the default of the API Manager version.
    #[serde(default)]
    pub rest_version: String,
    /// DCR version; empty means v0.17.
    #[serde(default)]
    pub dcr_version: String,
    /// Template or full URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub publisher_endpoint: String,
    /// Template or full URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registration_endpoint: String,
    /// Template or full URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_endpoint: String,
    /// The publisher user (never the password).
    #[serde(default)]
    pub username: String,
    /// The registered client; its secret is in the OS keyring.
    #[serde(default)]
    pub client_id: String,
    /// A PEM bundle; empty means the system's roots, absent means never asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_store_location: Option<String>,
    #[serde(flatten)]
    other: toml::Table,
}

/// Which REST flow the API Manager version selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// API Manager 3.x: publisher REST v1.x search + `/swagger`.
    V3,
    /// API Manager 4.x: `GET /apis/export` for a gateway environment.
    V4,
}

/// The URLs the import calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Publisher REST API base, without a trailing slash.
    pub publisher: url::Url,
    /// Dynamic client registration.
    pub registration: url::Url,
    /// OAuth2 token endpoint.
    pub token: url::Url,
}

/// `$MGW_CONFIG_DIR/toolkit-config.toml`, else `<user config dir>/micro-gw/toolkit-config.toml`.
pub fn default_path() -> PathBuf {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return std::path::absolute(&dir).unwrap_or(dir).join(FILE_NAME);
    }
    dirs::config_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))
        .unwrap_or_else(std::env::temp_dir)
        .join("micro-gw")
        .join(FILE_NAME)
}

impl Settings {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        Settings::parse(&text).map_err(|message| SettingsError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses the file's text. A `clientSecret` left by WSO2's toolkit is dropped: it is
    /// encrypted with the user's password and would otherwise be written back as is.
    pub fn parse(text: &str) -> Result<Settings, String> {
        let mut settings: Settings = toml::from_str(text).map_err(|e| e.message().to_string())?;
        settings.dropped_client_secret = settings.token.other.remove("clientSecret").is_some();
        Ok(settings)
    }

    /// True when the file held a `clientSecret` that [`Settings::parse`] dropped, so saving
    /// the settings removes it from the file.
    pub fn dropped_client_secret(&self) -> bool {
        self.dropped_client_secret
    }

    /// Writes the file atomically, readable by the user only.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let body = toml::to_string_pretty(self).map_err(|e| SettingsError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let text = format!(
            "# micro-gw toolkit settings for importing from WSO2 API Manager (docs/api-manager-import.md).\n\
             # Written by `micro-gw import`; `micro-gw reset` clears username and clientId.\n\
             # No password or client secret is ever stored here.\n\n{body}"
        );
        write_atomic(path, text.as_bytes(), Some(0o600)).map_err(|source| SettingsError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// The flow the API Manager version selects: `4.*` is the export, anything else 3.x.
    pub fn flow(&self) -> Flow {
        if self.token.apim_version.trim().starts_with("4.") {
            Flow::V4
        } else {
            Flow::V3
        }
    }

    /// The publisher REST version in effect.
    pub fn rest_version(&self) -> &str {
        match (self.token.rest_version.trim(), self.flow()) {
            ("", Flow::V3) => DEFAULT_REST_VERSION_3,
            ("", Flow::V4) => DEFAULT_REST_VERSION_4,
            (version, _) => version,
        }
    }

    /// The DCR version in effect.
    pub fn dcr_version(&self) -> &str {
        match self.token.dcr_version.trim() {
            "" => DEFAULT_DCR_VERSION,
            version => version,
        }
    }

    /// Sets the API Manager version; a change of major version also resets the REST version,
    /// which differs between 3.x and 4.x.
    pub fn set_apim_version(&mut self, version: &str) {
        let before = self.flow();
        self.token.apim_version = version.trim().to_string();
        if self.flow() != before {
            self.token.rest_version.clear();
        }
    }

    /// Refuses a 3.x publisher REST version that does not start with `v1.` (API Manager 2.x's
    /// legacy mode, not implemented).
    pub fn check_rest_version(&self, path: &Path) -> Result<(), SettingsError> {
        let version = self.rest_version();
        if self.flow() == Flow::V3 && !version.starts_with("v1.") {
            return Err(SettingsError::LegacyRest {
                version: version.to_string(),
                path: path.display().to_string(),
            });
        }
        Ok(())
    }

    /// Writes the REST and DCR versions in effect where the file leaves them empty, so the
    /// saved file says what was used.
    pub fn fill_versions(&mut self) {
        if self.token.rest_version.trim().is_empty() {
            self.token.rest_version = self.rest_version().to_string();
        }
        if self.token.dcr_version.trim().is_empty() {
            self.token.dcr_version = self.dcr_version().to_string();
        }
    }

    /// Call timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.client
                .http_request_timeout
                .filter(|ms| *ms > 0)
                .unwrap_or(DEFAULT_TIMEOUT_MS),
        )
    }

    /// Fills the endpoint templates for `base_url` (`{baseURL}`, `{restVersion}`, `{dcrVersion}`).
    pub fn endpoints(&self, base_url: &str, path: &Path) -> Result<Endpoints, SettingsError> {
        let base = base_url.trim_end_matches('/');
        let fill = |key: &'static str, configured: &str, default: &str| {
            let template = if configured.trim().is_empty() {
                default
            } else {
                configured.trim()
            };
            let value = template
                .replace("{baseURL}", base)
                .replace("{restVersion}", self.rest_version())
                .replace("{dcrVersion}", self.dcr_version());
            let value = value.trim_end_matches('/').to_string();
            match url::Url::parse(&value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
                Ok(_) => Err(SettingsError::BadEndpoint {
                    key,
                    value,
                    path: path.display().to_string(),
                    message: "only http and https are supported".into(),
                }),
                Err(e) => Err(SettingsError::BadEndpoint {
                    key,
                    value,
                    path: path.display().to_string(),
                    message: e.to_string(),
                }),
            }
        };
        Ok(Endpoints {
            publisher: fill(
                "publisherEndpoint",
                &self.token.publisher_endpoint,
                PUBLISHER_TEMPLATE,
            )?,
            registration: fill(
                "registrationEndpoint",
                &self.token.registration_endpoint,
                REGISTRATION_TEMPLATE,
            )?,
            token: fill("tokenEndpoint", &self.token.token_endpoint, TOKEN_TEMPLATE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wso2_files_are_read_and_unknown_keys_kept() {
        let text = r#"
[client]
httpRequestTimeout = 1000000
[token]
apimVersion = ""
baseURL = "https://apim:9443/"
restVersion = "v1.2"
dcrVersion = "v0.17"
publisherEndpoint = "{baseURL}/api/am/publisher/{restVersion}"
adminEndpoint = "{baseURL}/api/am/admin/{restVersion}"
username = "admin"
clientId = "abc"
clientSecret = "k+KUSUEt+jGHTCkm+O0IGZQHnz4xn2wEHHRrBp8CBj4="
trustStoreLocation = ""
trustStorePassword = ""
[corsConfiguration]
corsConfigurationEnabled = false
"#;
        let settings = Settings::parse(text).unwrap();
        assert_eq!(settings.flow(), Flow::V3);
        assert_eq!(settings.token.username, "admin");
        assert_eq!(settings.timeout().as_millis(), 1_000_000);
        let endpoints = settings
            .endpoints(&settings.token.base_url, Path::new("t.toml"))
            .unwrap();
        assert_eq!(
            endpoints.publisher.as_str(),
            "https://apim:9443/api/am/publisher/v1.2"
        );
        assert_eq!(
            endpoints.registration.as_str(),
            "https://apim:9443/client-registration/v0.17/register"
        );
        assert_eq!(endpoints.token.as_str(), "https://apim:9443/oauth2/token");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        settings.save(&path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(!written.contains("clientSecret"), "{written}");
        assert!(written.contains("adminEndpoint") && written.contains("corsConfigurationEnabled"));
        assert!(settings.dropped_client_secret());
        let reloaded = Settings::load(&path).unwrap();
        assert!(!reloaded.dropped_client_secret());
        assert_eq!(reloaded.token, settings.token);
        assert_eq!(reloaded.client, settings.client);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_apim_version_selects_flow_and_rest_version() {
        let mut settings = Settings::default();
        assert_eq!(
            (settings.flow(), settings.rest_version()),
            (Flow::V3, "v1.2")
        );
        settings.token.rest_version = "v1.1".into();
        settings.set_apim_version("4.2.0");
        assert_eq!((settings.flow(), settings.rest_version()), (Flow::V4, "v4"));
        settings.set_apim_version("4.3.0");
        settings.token.rest_version = "v3".into();
        settings.set_apim_version("4.4.0");
        assert_eq!(settings.rest_version(), "v3", "same major keeps it");
    }

    #[test]
    fn versions_in_effect_are_written_and_legacy_rest_refused() {
        let path = Path::new("t.toml");
        let mut settings = Settings::default();
        settings.fill_versions();
        assert_eq!(
            (
                settings.token.rest_version.as_str(),
                settings.token.dcr_version.as_str()
            ),
            ("v1.2", "v0.17")
        );
        assert!(settings.check_rest_version(path).is_ok());
        let mut v4 = Settings::default();
        v4.set_apim_version("4.2.0");
        v4.fill_versions();
        assert_eq!(v4.token.rest_version, DEFAULT_REST_VERSION_4);
        assert!(v4.check_rest_version(path).is_ok());
        // Once filled, a switch of major version still resets the REST version.
        settings.set_apim_version("4.1.0");
        assert_eq!(settings.rest_version(), DEFAULT_REST_VERSION_4);
        let mut legacy = Settings::default();
        legacy.token.rest_version = "v0.14".into();
        let err = legacy.check_rest_version(path).unwrap_err().to_string();
        assert!(
            err.contains("v0.14") && err.contains("not implemented"),
            "{err}"
        );
        legacy.token.rest_version = "v1.0".into();
        assert!(legacy.check_rest_version(path).is_ok());
    }

    #[test]
    fn missing_file_gives_defaults_and_bad_files_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        std::fs::write(&path, "[token]\nusername = 3\n").unwrap();
        let err = Settings::load(&path).unwrap_err().to_string();
        assert!(err.contains(FILE_NAME), "{err}");
        let settings = Settings {
            token: TokenSection {
                token_endpoint: "not a url".into(),
                ..TokenSection::default()
            },
            ..Settings::default()
        };
        let err = settings
            .endpoints("https://a", &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokenEndpoint"), "{err}");
    }
}
