//! `micro-gw hash`: a password hash for `[[security.users]]` in `conf/micro-gw.toml`.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};

/// Hash algorithms `micro-gw hash` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashAlgorithm {
    /// argon2id with the crate's recommended parameters (m=19 MiB, t=2, p=1).
    Argon2id,
    /// bcrypt, cost 12.
    Bcrypt,
}

/// Reads the password (hidden prompt on a terminal, else the first line of stdin) and prints
/// its hash.
pub fn run(algorithm: HashAlgorithm) -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        dialoguer::Password::new()
            .with_prompt("Password")
            .with_confirmation("Repeat password", "The passwords do not match")
            .interact()
            .context("reading the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    println!("{}", hash(&password, algorithm)?);
    Ok(())
}

/// The PHC (argon2) or modular-crypt (bcrypt) string of `password`, with a fresh random salt.
pub fn hash(password: &str, algorithm: HashAlgorithm) -> anyhow::Result<String> {
    if password.is_empty() {
        bail!("the password is empty: give a password (on stdin, or at the prompt)");
    }
    Ok(match algorithm {
        HashAlgorithm::Argon2id => {
            let salt = SaltString::generate(&mut OsRng);
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))?
                .to_string()
        }
        HashAlgorithm::Bcrypt => bcrypt::hash(password, 12).context("bcrypt failed")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_runtime::config::UserConfig;

    #[test]
    fn hashes_are_salted_and_accepted_by_the_runtime() {
        let first = hash("pa:ss wörd", HashAlgorithm::Argon2id).unwrap();
        let second = hash("pa:ss wörd", HashAlgorithm::Argon2id).unwrap();
        assert!(first.starts_with("$argon2id$"));
        assert_ne!(first, second, "a fresh salt each time");
        let users: Vec<UserConfig> = [first, hash("x", HashAlgorithm::Bcrypt).unwrap()]
            .into_iter()
            .enumerate()
            .map(|(i, password_hash)| UserConfig {
                username: format!("u{i}"),
                password_hash,
                scopes: vec![],
            })
            .collect();
        let (_, legacy) = mgw_runtime::auth::basic::BasicUsers::new(&users, 4).unwrap();
        assert!(legacy.is_empty());
        assert!(hash("", HashAlgorithm::Argon2id).is_err());
    }
}
