//! Where the toolkit keeps shared state: the unpacked runtime and the shared cargo target
//! directory, both under the user's cache directory.

use std::path::PathBuf;

/// Overrides the cache directory (runtime sources and the shared target directory).
pub const CACHE_DIR_ENV: &str = "MGW_CACHE_DIR";
/// Overrides only the shared cargo target directory.
pub const TARGET_DIR_ENV: &str = "MGW_TARGET_DIR";

/// `$MGW_CACHE_DIR`, else `<user cache dir>/micro-gw` (e.g. `~/.cache/micro-gw`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return absolute(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("micro-gw")
}

/// `$MGW_TARGET_DIR`, else `<cache>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os(TARGET_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => absolute(PathBuf::from(dir)),
        None => cache_dir().join("target"),
    }
}

fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}
