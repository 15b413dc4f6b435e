//! # micro-gw toolkit
//!
//! The `micro-gw` CLI turns API definitions into a dedicated gateway binary:
//! `init` lays out a project, `import` adds validated definitions, and `build` runs
//! [`loader`] (definitions -> one validated [`mgw_runtime::model::GatewayModel`]),
//! [`codegen`] (a tiny crate embedding that model as data) and [`cargo_build`] (one shared
//! target directory, a pinned lock file), then copies the binary into the project atomically.
//! The `gateway` launcher ([`launcher`]) runs a built binary with its project's settings.

pub mod admin_client;
pub mod apim;
pub mod cargo_build;
pub mod certificate;
pub mod cli;
pub mod codegen;
pub mod commands;
pub mod consumers_file;
pub mod deploy;
pub mod echo;
pub mod fetch;
pub mod fsutil;
pub mod http_client;
pub mod launcher;
pub mod loader;
pub mod paths;
pub mod pgo;
pub mod project;
pub mod runtime_sources;
pub mod rustc_wrapper;
