//! The runtime crate's sources, embedded at toolkit build time and unpacked once per runtime
//! version into the cache directory. Every generated gateway points at that one copy, so cargo
//! sees the same path dependency and reuses its compiled artifacts.

use std::path::{Path, PathBuf};

use anyhow::Context;

include!(concat!(env!("OUT_DIR"), "/runtime_sources.rs"));

/// Unpacks the runtime into `<cache>/runtime/<version>-<hash>/` unless it is already there,
/// and returns that directory. Unpacking goes to a temporary directory first, then is renamed,
/// so a concurrent or interrupted run never leaves a partial copy in place.
pub fn unpack(cache: &Path) -> anyhow::Result<PathBuf> {
    let root = cache.join("runtime");
    let dir = root.join(format!("{}-{}", mgw_runtime::VERSION, RUNTIME_HASH));
    if dir.join("Cargo.toml").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(&root)
        .with_context(|| format!("creating a temporary directory in {}", root.display()))?;
    for (relative, content) in RUNTIME_FILES {
        let path = temp.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    let staged = temp.keep();
    if let Err(err) = std::fs::rename(&staged, &dir) {
        let _ = std::fs::remove_dir_all(&staged);
        if !dir.join("Cargo.toml").is_file() {
            return Err(err)
                .with_context(|| format!("installing the runtime sources into {}", dir.display()));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_once_and_completely() {
        let cache = tempfile::tempdir().unwrap();
        let dir = unpack(cache.path()).unwrap();
        assert!(dir.join("Cargo.toml").is_file());
        assert!(dir.join("src/lib.rs").is_file());
        assert_eq!(unpack(cache.path()).unwrap(), dir);
        assert!(RUNTIME_FILES.len() > 5);
    }
}
