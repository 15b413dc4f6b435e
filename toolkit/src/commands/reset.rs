//! `micro-gw reset`: forgets who the toolkit is to the API Manager (the saved username and
//! registered client, keyring entry included) and keeps where the API Manager is.

use std::path::Path;

use anyhow::bail;

use crate::apim::secrets::{self, SecretStore, Secrets};
use crate::apim::settings::{self, Settings};

/// Clears the username, client id and client secret, and says what it cleared.
pub fn run() -> anyhow::Result<()> {
    run_at(&settings::default_path())
}

/// [`run`] on the settings file at `path`.
fn run_at(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!(
            "nothing to reset: {} does not exist (no API Manager settings are saved)",
            path.display()
        );
    }
    let mut settings = Settings::load(path)?;
    let mut cleared = Vec::new();
    let username = std::mem::take(&mut settings.token.username);
    if !username.trim().is_empty() {
        cleared.push(format!("the username ({username})"));
    }
    let client_id = std::mem::take(&mut settings.token.client_id);
    if !client_id.trim().is_empty() {
        let key = secrets::client_key(&client_id, &settings.token.base_url);
        let secret = match secrets::open() {
            Secrets::Keyring(store) => match store.delete(&key) {
                Ok(true) => "and its secret from the OS keyring".to_string(),
                Ok(false) => "(its secret was not in the OS keyring)".to_string(),
                Err(err) => {
                    eprintln!("micro-gw: warning: {err}: delete the keyring entry {key} by hand");
                    "(its secret could not be deleted from the OS keyring)".to_string()
                }
            },
            Secrets::Unavailable(reason) => format!("({reason}, so no secret was kept)"),
        };
        cleared.push(format!("the client id ({client_id}) {secret}"));
    }
    if settings.dropped_client_secret() {
        cleared.push("the client secret WSO2's toolkit left (encrypted) in the file".to_string());
    }
    if cleared.is_empty() {
        println!(
            "Nothing to clear: {} holds no username or client",
            path.display()
        );
        return Ok(());
    }
    settings.save(path)?;
    println!("Cleared {} in {}", cleared.join(" and "), path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wso2_client_secret_is_blanked_even_without_a_client_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(settings::FILE_NAME);
        std::fs::write(
            &path,
            "[token]\nbaseURL = \"https://apim:9443\"\nusername = \"\"\nclientId = \"\"\nclientSecret = \"k+KUSUEt+jGHTCkm+O0IGZQHnz4xn2wEHHRrBp8CBj4=\"\n",
        )
        .unwrap();
        run_at(&path).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(!after.contains("k+KUSUEt"), "{after}");
        assert!(after.contains("baseURL = \"https://apim:9443\""), "{after}");
        // Nothing left to clear: the file is not rewritten.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        run_at(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    }
}
