//! Writes that never leave a half-written file: write a temporary file beside the target,
//! flush it, then rename it over the target.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Atomically replaces `path` with `contents`; `mode` sets Unix permissions (e.g. 0o600).
pub fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let temp = stage(path, contents, mode)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `contents` (with `mode`) to a flushed temporary file beside `path`, ready to be
/// renamed over it.
fn stage(
    path: &Path,
    contents: &[u8],
    mode: Option<u32>,
) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".mgw-tmp-")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    Ok(temp)
}

/// A name for content: 16 lowercase hexadecimal digits, the first 8 bytes of the SHA-256 of
/// `parts` one after the other.
pub fn content_name(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Atomically copies `from` to `to` (a binary: mode 0755).
pub fn copy_atomic(from: &Path, to: &Path) -> std::io::Result<()> {
    copy_with_tail_atomic(from, &[], to)
}

/// Copies `from` to `to` with `tail`'s parts appended, executable (0755 on Unix), through a
/// flushed temporary file beside `to` renamed over it: `to` is either as it was or complete.
pub fn copy_with_tail_atomic(from: &Path, tail: &[&[u8]], to: &Path) -> std::io::Result<()> {
    let dir = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".mgw-tmp-")
        .tempfile_in(dir)?;
    // File to file: the kernel copies (copy_file_range on Linux).
    std::io::copy(&mut std::fs::File::open(from)?, temp.as_file_mut())?;
    for part in tail {
        std::io::Write::write_all(temp.as_file_mut(), part)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    }
    temp.as_file().sync_all()?;
    temp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// Writes several files so that either all of them change or none does: every content is
/// written and flushed to a temporary file first, then each is renamed into place; if a rename
/// fails, the files already replaced get their previous content back (new ones are removed).
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)], mode: Option<u32>) -> std::io::Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, contents) in files {
        let temp = stage(path, contents, mode)?;
        let previous = match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        staged.push((path, temp, previous));
    }
    let mut done: Vec<(&PathBuf, Option<Vec<u8>>)> = Vec::new();
    for (path, temp, previous) in staged {
        if let Err(err) = temp.persist(path) {
            for (path, previous) in done {
                let _ = match previous {
                    Some(bytes) => write_atomic(path, &bytes, mode),
                    None => std::fs::remove_file(path),
                };
            }
            return Err(err.error);
        }
        done.push((path, previous));
    }
    Ok(())
}

/// Like [`write_all_atomic`], and also removes `removals` in the same all-or-nothing step: they
/// are first moved aside (beside themselves), then the files are written, then the moved-aside
/// copies are deleted. If anything fails, the moved-aside files are put back.
pub fn write_and_remove_atomic(
    files: &[(PathBuf, Vec<u8>)],
    removals: &[PathBuf],
    mode: Option<u32>,
) -> std::io::Result<()> {
    fn put_back(aside: Vec<(&PathBuf, tempfile::TempPath)>) {
        for (path, holder) in aside.into_iter().rev() {
            if std::fs::rename(&holder, path).is_ok() {
                let _ = holder.keep();
            }
        }
    }
    let mut aside = Vec::new();
    for path in removals {
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let holder = match tempfile::Builder::new()
            .prefix(".mgw-old-")
            .tempfile_in(dir)
        {
            Ok(holder) => holder.into_temp_path(),
            Err(err) => {
                put_back(aside);
                return Err(err);
            }
        };
        if let Err(err) = std::fs::rename(path, &holder) {
            put_back(aside);
            return Err(err);
        }
        aside.push((path, holder));
    }
    if let Err(err) = write_all_atomic(files, mode) {
        put_back(aside);
        return Err(err);
    }
    // Dropping the holders deletes the moved-aside files.
    drop(aside);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.txt");
        write_atomic(&path, b"one", None).unwrap();
        write_atomic(&path, b"two", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let leftovers = std::fs::read_dir(dir.path().join("sub")).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn a_copy_with_a_tail_is_the_source_then_the_parts_executable() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::write(&base, b"\x7fELF base").unwrap();
        let to = dir.path().join("target").join("gateway");
        copy_with_tail_atomic(&base, &[b"{model}", b"trailer"], &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"\x7fELF base{model}trailer");
        // Again, over the first: replaced whole, nothing left beside it.
        copy_with_tail_atomic(&base, &[b"{m2}"], &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"\x7fELF base{m2}");
        assert_eq!(std::fs::read_dir(to.parent().unwrap()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&to).unwrap().permissions().mode() & 0o777,
                0o755
            );
        }
        // A source that cannot be read leaves the target as it was.
        let err = copy_with_tail_atomic(&dir.path().join("missing"), &[b"x"], &to);
        assert!(err.is_err());
        assert_eq!(std::fs::read(&to).unwrap(), b"\x7fELF base{m2}");
        assert_eq!(std::fs::read_dir(to.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("gen").join("a.json");
        write_atomic(&a, b"old", None).unwrap();
        let b = dir.path().join("gen").join("b.json");
        // A directory in the way of the second rename: the first file gets its old content back.
        let blocked = dir.path().join("gen").join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let err = write_all_atomic(
            &[
                (a.clone(), b"new".to_vec()),
                (b.clone(), b"b".to_vec()),
                (blocked.clone(), b"x".to_vec()),
            ],
            None,
        );
        assert!(err.is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        assert!(!b.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("gen"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(".mgw-tmp-")),
            "{names:?}"
        );
        write_all_atomic(
            &[(a.clone(), b"new".to_vec()), (b.clone(), b"b".to_vec())],
            None,
        )
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"new");
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
    }

    #[test]
    fn removals_happen_with_the_writes_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let gen = dir.path().join("gen");
        let old = gen.join("a.yaml");
        write_atomic(&old, b"old format", None).unwrap();
        let new = gen.join("a.json");
        // The write fails (a file where its directory should be): the removal is undone.
        let blocked = gen.join("file");
        std::fs::write(&blocked, b"x").unwrap();
        let err = write_and_remove_atomic(
            &[
                (new.clone(), b"new".to_vec()),
                (blocked.join("x"), b"x".to_vec()),
            ],
            std::slice::from_ref(&old),
            None,
        );
        assert!(err.is_err());
        assert_eq!(std::fs::read(&old).unwrap(), b"old format");
        assert!(!new.exists());
        // Success: written and removed, nothing left over; a missing removal is fine.
        write_and_remove_atomic(
            &[(new.clone(), b"new".to_vec())],
            &[old.clone(), gen.join("never-there")],
            None,
        )
        .unwrap();
        assert!(!old.exists());
        assert_eq!(std::fs::read(&new).unwrap(), b"new");
        let mut names: Vec<_> = std::fs::read_dir(&gen)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.json", "file"]);
    }
}
