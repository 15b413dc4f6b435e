//! The project directory: the single source of truth for one gateway.
//!
//! ```text
//! <project>/
//!   api_definitions/        OpenAPI / Swagger files (yaml, yml, json)
//!   gen/api_definitions/    definitions imported from an API Manager
//!   conf/micro-gw.toml      runtime settings
//!   conf/deployment-config.toml
//!   conf/tls/cert.pem, key.pem
//!   interceptors/
//!   express-gateway/        an imported Express Gateway configuration (one per project):
//!     gateway.config.yml    (or gateway.config.json) and system.config.yml
//!   policies.yaml           throttling tiers
//!   target/gen/             the generated crate
//!   target/<project>        the gateway binary
//! ```

use std::path::{Path, PathBuf};

use crate::loader::{ExpressSource, SourceFile, DEFINITION_EXTENSIONS};

/// File names of an Express Gateway configuration in `express-gateway/`, as Express Gateway
/// looks for them (`gateway.config.yml`, falling back to `.json`).
pub const EXPRESS_GATEWAY_FILES: [&str; 2] = ["gateway.config.yml", "gateway.config.json"];
/// The system configuration's name in `express-gateway/`.
pub const EXPRESS_SYSTEM_FILES: [&str; 2] = ["system.config.yml", "system.config.json"];

/// Names cargo reserves inside a target directory, so no binary may take them.
const RESERVED_NAMES: [&str; 6] = ["deps", "examples", "build", "incremental", "gen", "release"];

/// A project directory and its name.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory.
    pub root: PathBuf,
    /// Its last path component, which names the binary.
    pub name: String,
}

/// The project argument cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The name would not make a valid binary name.
    #[error("'{0}' cannot be a project name: use letters, digits, '-' and '_', starting with a letter or digit")]
    InvalidName(String),
    /// A name cargo keeps for itself.
    #[error("'{0}' is reserved by cargo and cannot be a project name: choose another")]
    Reserved(String),
    /// No such project.
    #[error("project {0} does not exist. Use 'micro-gw init {0}' to initialize it")]
    Missing(String),
}

impl Project {
    /// Reads a project argument (a directory path whose last component is the name).
    pub fn from_arg(arg: &Path) -> Result<Project, ProjectError> {
        let name = arg
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ProjectError::InvalidName(arg.display().to_string()));
        }
        if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ProjectError::Reserved(name));
        }
        Ok(Project {
            root: arg.to_path_buf(),
            name,
        })
    }

    /// Like [`Project::from_arg`], and the project must have been initialized.
    pub fn existing(arg: &Path) -> Result<Project, ProjectError> {
        let project = Project::from_arg(arg)?;
        if !is_project(&project.root) {
            return Err(ProjectError::Missing(arg.display().to_string()));
        }
        Ok(project)
    }

    /// `api_definitions/`
    pub fn api_definitions(&self) -> PathBuf {
        self.root.join("api_definitions")
    }

    /// `gen/api_definitions/` (definitions imported from an API Manager).
    pub fn imported_definitions(&self) -> PathBuf {
        self.root.join("gen").join("api_definitions")
    }

    /// `conf/`
    pub fn conf_dir(&self) -> PathBuf {
        self.root.join("conf")
    }

    /// `conf/micro-gw.toml`
    pub fn config_file(&self) -> PathBuf {
        self.conf_dir().join(mgw_runtime::config::CONFIG_FILE_NAME)
    }

    /// `conf/deployment-config.toml`
    pub fn deployment_config(&self) -> PathBuf {
        self.conf_dir().join("deployment-config.toml")
    }

    /// `conf/tls/`
    pub fn tls_dir(&self) -> PathBuf {
        self.conf_dir().join("tls")
    }

    /// `interceptors/`
    pub fn interceptors(&self) -> PathBuf {
        self.root.join("interceptors")
    }

    /// `express-gateway/`: the imported Express Gateway configuration.
    pub fn express_gateway(&self) -> PathBuf {
        self.root.join("express-gateway")
    }

    /// The project's Express Gateway configuration, if it has one. A project keeps one: two
    /// gateway files (`.yml` and `.json`) are an error saying which to remove.
    pub fn express_source(&self) -> std::io::Result<Option<ExpressSource>> {
        let dir = self.express_gateway();
        let read = |names: &[&str]| -> std::io::Result<Option<SourceFile>> {
            let present: Vec<PathBuf> = names
                .iter()
                .map(|n| dir.join(n))
                .filter(|p| p.is_file())
                .collect();
            if present.len() > 1 {
                return Err(std::io::Error::other(format!(
                    "{} and {} are both present; a project keeps one Express Gateway configuration: remove one, or import again with micro-gw import {} --express-gateway <file>",
                    self.display(&present[0]),
                    self.display(&present[1]),
                    self.root.display()
                )));
            }
            let Some(path) = present.into_iter().next() else {
                return Ok(None);
            };
            let text = std::fs::read_to_string(&path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            Ok(Some(SourceFile {
                name: self.display(&path),
                text,
            }))
        };
        let Some(gateway) = read(&EXPRESS_GATEWAY_FILES)? else {
            return Ok(None);
        };
        let system = read(&EXPRESS_SYSTEM_FILES)?;
        Ok(Some(ExpressSource { gateway, system }))
    }

    /// `policies.yaml`
    pub fn policies(&self) -> PathBuf {
        self.root.join("policies.yaml")
    }

    /// `target/`
    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    /// `target/gen/`: the generated crate.
    pub fn gen_dir(&self) -> PathBuf {
        self.target_dir().join("gen")
    }

    /// `target/<name>`: the gateway binary.
    pub fn binary(&self) -> PathBuf {
        self.target_dir().join(&self.name)
    }

    /// Every definition file, sorted by name, read as text.
    pub fn definition_files(&self) -> std::io::Result<Vec<SourceFile>> {
        let mut files = Vec::new();
        for dir in [self.api_definitions(), self.imported_definitions()] {
            if !dir.is_dir() {
                continue;
            }
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| is_definition(path))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
                })?;
                files.push(SourceFile {
                    name: self.display(&path),
                    text,
                });
            }
        }
        Ok(files)
    }

    /// A path relative to the project's parent, as users typed it.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) => self.root.join(rel).display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

/// True when `dir` is a micro-gw project: it has `conf/micro-gw.toml`, the file `init` always
/// writes and no gateway starts without. `import` and `build` accept only such a directory, and
/// `init -f` changes no other.
pub fn is_project(dir: &Path) -> bool {
    dir.join("conf")
        .join(mgw_runtime::config::CONFIG_FILE_NAME)
        .is_file()
}

/// True for a visible file ending in .yaml, .yml or .json.
pub fn is_definition(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_definition_name)
        && path.is_file()
}

/// True for a visible file name ending in .yaml, .yml or .json (any case).
pub fn is_definition_name(name: &str) -> bool {
    !name.starts_with('.')
        && name.rsplit_once('.').is_some_and(|(_, ext)| {
            DEFINITION_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(
            Project::from_arg(Path::new("a/b/petstore")).unwrap().name,
            "petstore"
        );
        assert!(Project::from_arg(Path::new("pet store")).is_err());
        assert!(Project::from_arg(Path::new("-x")).is_err());
        assert!(Project::from_arg(Path::new("deps")).is_err());
        assert!(Project::from_arg(Path::new("..")).is_err());
    }

    /// A project keeps one Express Gateway configuration: both spellings present is an error
    /// naming both files; none is no configuration.
    #[test]
    fn one_express_gateway_configuration_per_project() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::from_arg(&dir.path().join("p")).unwrap();
        assert!(project.express_source().unwrap().is_none());
        let eg = project.express_gateway();
        std::fs::create_dir_all(&eg).unwrap();
        std::fs::write(eg.join("gateway.config.yml"), "http: {port: 1}\n").unwrap();
        std::fs::write(eg.join("system.config.yml"), "db: {}\n").unwrap();
        let source = project.express_source().unwrap().unwrap();
        assert!(source
            .gateway
            .name
            .ends_with("express-gateway/gateway.config.yml"));
        assert!(source.system.is_some());
        std::fs::write(eg.join("gateway.config.json"), "{}").unwrap();
        let err = project.express_source().unwrap_err().to_string();
        assert!(
            err.contains("gateway.config.yml and")
                && err.contains("keeps one Express Gateway configuration"),
            "{err}"
        );
    }
}
