//! Reading a definition from a local file or a URL.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::http_client::{self, Trust};

/// Definitions larger than this are refused (a definition is text, not a data set).
const MAX_DEFINITION_BYTES: usize = 32 << 20;

/// A definition's text and the file name to store it under.
#[derive(Debug)]
pub struct Fetched {
    /// The content.
    pub text: String,
    /// A file name ending in .yaml, .yml or .json.
    pub file_name: String,
}

/// True when `source` looks like an http(s) URL rather than a path.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Reads `source` (a path or an http(s) URL); `insecure` skips certificate checks for URLs.
pub fn fetch(source: &str, insecure: bool) -> anyhow::Result<Fetched> {
    if is_url(source) {
        return fetch_url(source, insecure);
    }
    let path = Path::new(source);
    if !path.is_file() {
        bail!("API definition {source} does not exist: give the path of an OpenAPI/Swagger file (.yaml, .yml or .json) or an http(s) URL");
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {source}"))?;
    if bytes.len() > MAX_DEFINITION_BYTES {
        bail!(
            "{source} is larger than {} MiB; that is not an API definition",
            MAX_DEFINITION_BYTES >> 20
        );
    }
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{source} is not UTF-8 text"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Fetched {
        file_name: file_name_for(&name, &text),
        text,
    })
}

fn fetch_url(url: &str, insecure: bool) -> anyhow::Result<Fetched> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url} is not a valid URL"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the download")?;
    let trust = if insecure {
        Trust::Insecure
    } else {
        Trust::System
    };
    let client = http_client::client(trust, Duration::from_secs(60))?;
    let text = runtime.block_on(async {
        let response = client.get(parsed.clone()).send().await.map_err(|e| {
            anyhow::anyhow!(
                "downloading {url} failed: {}",
                http_client::explain(&e, url)
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            bail!("downloading {url} failed: the server answered {status}");
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_DEFINITION_BYTES)
        {
            bail!(
                "{url} is larger than {} MiB; that is not an API definition",
                MAX_DEFINITION_BYTES >> 20
            );
        }
        let bytes = response.bytes().await.map_err(|e| {
            anyhow::anyhow!(
                "downloading {url} failed: {}",
                http_client::explain(&e, url)
            )
        })?;
        if bytes.len() > MAX_DEFINITION_BYTES {
            bail!(
                "{url} is larger than {} MiB; that is not an API definition",
                MAX_DEFINITION_BYTES >> 20
            );
        }
        String::from_utf8(bytes.to_vec())
            .map_err(|_| anyhow::anyhow!("{url} did not return UTF-8 text"))
    })?;
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
        .to_string();
    Ok(Fetched {
        file_name: file_name_for(&name, &text),
        text,
    })
}

/// A safe file name: the source's name when it is plain and has a known ending, else
/// `openapi.yaml` / `openapi.json` by content.
fn file_name_for(name: &str, text: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let known = crate::project::is_definition_name(name);
    if plain && known {
        return name.to_string();
    }
    let stem: String = name
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(name)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let stem = if stem.is_empty() {
        "openapi".to_string()
    } else {
        stem
    };
    if text.trim_start().starts_with('{') {
        format!("{stem}.json")
    } else {
        format!("{stem}.yaml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name_for("petstore.yaml", "a: 1"), "petstore.yaml");
        assert_eq!(file_name_for("api", "{}"), "api.json");
        assert_eq!(file_name_for("pass wd;", "a: 1"), "passwd.yaml");
        assert_eq!(file_name_for("", "a: 1"), "openapi.yaml");
        assert_eq!(file_name_for("swagger.JSON", "{}"), "swagger.JSON");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = fetch("/no/such/file.yaml", false).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
