//! A gateway's model attached to the end of its executable file.
//!
//! `micro-gw build --lto` compiles one optimised *base* gateway per set of runtime features
//! and reuses it for every project: the project's binary is the base's bytes, then the model
//! (the JSON of [`crate::model::GatewayModel`], as `target/gen/model.json` holds it), then a
//! [`TRAILER_LEN`]-byte trailer. The trailer is the model's length in bytes (u64,
//! little-endian) followed by [`MAGIC`]. The ELF loader maps only what the program headers
//! name, so bytes after the last section are never executed. The base then reads them back
//! from its own file at start-up ([`read`]). A rebuild after a definition changed only
//! attaches a new model (seconds), where a link-time optimised build would otherwise
//! optimise the whole program again (minutes).
//!
//! Tools that rewrite an ELF file (`strip`, `objcopy`) drop bytes no section holds, and with
//! them the model. The gateway then refuses to start and says so ([`AttachedError::Missing`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last 16 bytes of a binary with an attached model.
pub const MAGIC: &[u8; 16] = b"micro-gw model\x00\x01";

/// Bytes after the model: its length (8) and [`MAGIC`] (16).
pub const TRAILER_LEN: usize = 24;

/// Why no model could be read from an executable file.
#[derive(Debug, thiserror::Error)]
pub enum AttachedError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file, as given.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The running gateway's own file could not be opened or read ([`read_own`]).
    #[error("cannot read {path}, this gateway's own executable file, which holds its model: {source}; the user the gateway runs as must be able to read the file (not only execute it), and /proc must be mounted")]
    OwnFile {
        /// The executable's path.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file does not end in a trailer: a base gateway never given a model, or a binary
    /// rewritten since its build.
    #[error("{path} has no model attached: it is micro-gw's base gateway rather than a project's, or it was rewritten after `micro-gw build` (strip and objcopy drop the model); build the project again with `micro-gw build <project> --lto`")]
    Missing {
        /// The file, as given.
        path: String,
    },
    /// The trailer names more bytes than the file holds before it.
    #[error("{path} is cut short: its trailer names a model of {declared} bytes, but only {available} bytes come before the trailer; build the project again")]
    Truncated {
        /// The file, as given.
        path: String,
        /// The length the trailer states.
        declared: u64,
        /// The bytes before the trailer.
        available: u64,
    },
}

/// The trailer for a model of `model_len` bytes.
pub fn trailer(model_len: u64) -> [u8; TRAILER_LEN] {
    let mut trailer = [0u8; TRAILER_LEN];
    let (len, magic) = trailer.split_at_mut(8);
    len.copy_from_slice(&model_len.to_le_bytes());
    magic.copy_from_slice(MAGIC);
    trailer
}

/// The model attached to the file at `path` (see the module's documentation).
///
/// Errors: the file cannot be read ([`AttachedError::Io`]), has no trailer
/// ([`AttachedError::Missing`]), or holds fewer bytes than its trailer says
/// ([`AttachedError::Truncated`]).
pub fn read(path: &Path) -> Result<Vec<u8>, AttachedError> {
    read_shown(path, path)
}

/// [`read`] of `path`, naming `shown` in errors.
fn read_shown(path: &Path, shown: &Path) -> Result<Vec<u8>, AttachedError> {
    let shown = || shown.display().to_string();
    let io = |source| AttachedError::Io {
        path: shown(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let trailer_len = TRAILER_LEN as u64;
    let Some(before) = size.checked_sub(trailer_len) else {
        return Err(AttachedError::Missing { path: shown() });
    };
    file.seek(SeekFrom::Start(before)).map_err(io)?;
    let mut trailer = [0u8; TRAILER_LEN];
    file.read_exact(&mut trailer).map_err(io)?;
    let (len, magic) = trailer.split_at(8);
    if magic != MAGIC {
        return Err(AttachedError::Missing { path: shown() });
    }
    let mut declared = [0u8; 8];
    declared.copy_from_slice(len);
    let declared = u64::from_le_bytes(declared);
    let Some(start) = before.checked_sub(declared) else {
        return Err(AttachedError::Truncated {
            path: shown(),
            declared,
            available: before,
        });
    };
    let len = usize::try_from(declared).map_err(|_| AttachedError::Truncated {
        path: shown(),
        declared,
        available: before,
    })?;
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut model = vec![0u8; len];
    file.read_exact(&mut model).map_err(io)?;
    Ok(model)
}

/// The model attached to the running executable: `/proc/self/exe` on Linux (the file the
/// process runs, even if its path was since replaced by a newer build), else
/// [`std::env::current_exe`].
///
/// Errors name the executable's path; one that cannot be opened or read is
/// [`AttachedError::OwnFile`].
pub fn read_own() -> Result<Vec<u8>, AttachedError> {
    let exe = std::env::current_exe();
    let shown = match &exe {
        Ok(exe) => exe.clone(),
        Err(_) => std::path::PathBuf::from(std::env::args().next().unwrap_or_default()),
    };
    let own = Path::new("/proc/self/exe");
    let read = if own.exists() {
        read_shown(own, &shown)
    } else {
        match exe {
            Ok(exe) => read(&exe),
            Err(source) => Err(AttachedError::Io {
                path: shown.display().to_string(),
                source,
            }),
        }
    };
    read.map_err(|err| match err {
        AttachedError::Io { path, source } => AttachedError::OwnFile { path, source },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `parts` under the system's temporary directory, removed when dropped.
    fn file_of(parts: &[&[u8]]) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .prefix("mgw-attached-")
            .tempfile()
            .unwrap();
        std::io::Write::write_all(&mut file, &parts.concat()).unwrap();
        file
    }

    #[test]
    fn the_model_before_its_trailer_is_read_back() {
        let model = br#"{"apis":[]}"#;
        let file = file_of(&[
            b"\x7fELF and the rest of a binary",
            model,
            &trailer(model.len() as u64),
        ]);
        assert_eq!(read(file.path()).unwrap(), model);
    }

    #[test]
    fn an_empty_model_is_read_as_empty() {
        let file = file_of(&[b"binary", &trailer(0)]);
        assert_eq!(read(file.path()).unwrap(), b"");
    }

    #[test]
    fn a_binary_without_a_trailer_has_no_model() {
        let file = file_of(&[b"\x7fELF a base gateway, never given a model, long enough"]);
        let err = read(file.path()).unwrap_err();
        assert!(matches!(err, AttachedError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("micro-gw build"), "{err}");
        // Shorter than a trailer.
        let file = file_of(&[b"short"]);
        assert!(matches!(
            read(file.path()),
            Err(AttachedError::Missing { .. })
        ));
    }

    #[test]
    fn a_trailer_naming_more_than_the_file_holds_is_refused() {
        let file = file_of(&[b"tiny", &trailer(1 << 40)]);
        match read(file.path()) {
            Err(AttachedError::Truncated {
                declared,
                available,
                ..
            }) => {
                assert_eq!(declared, 1 << 40);
                assert_eq!(available, 4);
            }
            other => panic!("{other:?}"),
        }
        let file = file_of(&[b"12345", &trailer(6)]);
        assert!(matches!(
            read(file.path()),
            Err(AttachedError::Truncated { .. })
        ));
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = read(Path::new("/nonexistent/mgw-gateway")).unwrap_err();
        assert!(matches!(err, AttachedError::Io { .. }));
        assert!(
            err.to_string().contains("/nonexistent/mgw-gateway"),
            "{err}"
        );
    }
}
