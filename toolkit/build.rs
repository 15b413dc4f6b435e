//! Embeds the runtime crate's sources into the toolkit, so an installed `micro-gw` can build
//! gateways after the source checkout is gone. The content hash names the unpacked copy, so
//! every build of the same runtime shares one path (and one set of compiled dependencies).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// FNV-1a: a stable content hash without a dependency.
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for byte in bytes {
        *hash ^= u64::from(*byte);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let runtime = manifest.join("..").join("runtime-template");
    let mut files = vec![runtime.join("Cargo.toml")];
    collect(&runtime.join("src"), &mut files);
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut table = String::from("/// The runtime crate's files: path relative to the crate, content.\npub const RUNTIME_FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&runtime)
            .expect("inside runtime")
            .to_string_lossy()
            .replace('\\', "/");
        let content =
            std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        fnv1a(&mut hash, relative.as_bytes());
        fnv1a(&mut hash, &content);
        let absolute = file.canonicalize().expect("canonical path");
        writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?})),",
            absolute.to_string_lossy()
        )
        .unwrap();
        println!("cargo:rerun-if-changed={}", file.display());
    }
    table.push_str("];\n");
    writeln!(
        table,
        "/// Hash of the runtime's files.\npub const RUNTIME_HASH: &str = \"{hash:016x}\";"
    )
    .unwrap();
    println!("cargo:rerun-if-changed={}", runtime.join("src").display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("runtime_sources.rs");
    std::fs::write(out, table).expect("writing runtime_sources.rs");
}
