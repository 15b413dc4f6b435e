//! End-to-end tests: the real `micro-gw` initializes, imports and builds real projects; the real
//! gateway binaries serve real HTTP, HTTPS and h2 to real backends on loopback.

mod access_log;
mod apim_import;
mod auth_schemes;
mod cli;
mod consumers;
mod consumers_cli;
mod cors;
mod deploy;
mod docs;
mod express_gateway;
mod fixtures;
mod hardening;
mod introspect;
mod lto_build;
mod metrics;
mod otlp;
mod profile_guided;
mod proxy;
mod rate_limit;
mod redis_replicas;
mod routing;
mod security;
mod storage;
mod thread_per_core;
mod throttling;
mod tracing;
mod validation;

use std::path::PathBuf;
use std::sync::OnceLock;

use mgw_e2e::harness;

/// The definitions of the shared routing project, beside the bundled petstore example.
const ROUTING_DEFINITIONS: &[(&str, &str)] = &[
    (
        "balanced.yaml",
        "openapi: 3.0.0
info: {title: Balanced, version: '1'}
x-wso2-basePath: /lb
x-wso2-disable-security: true
x-wso2-endpoints:
  - lbBackend:
      urls: [http://127.0.0.1:1, http://127.0.0.1:2]
      type: load_balance
x-wso2-production-endpoints: '#/x-wso2-endpoints/lbBackend'
paths:
  /who: {get: {}}
",
    ),
    (
        "failover.yaml",
        "openapi: 3.0.0
info: {title: Failover, version: '1'}
x-wso2-basePath: /fo
x-wso2-disable-security: true
x-wso2-endpoints:
  - foBackend:
      urls: [http://127.0.0.1:1, http://127.0.0.1:2]
      type: failover
x-wso2-production-endpoints: '#/x-wso2-endpoints/foBackend'
paths:
  /who: {get: {}, post: {}}
",
    ),
    (
        "slow.json",
        r##"{
  "swagger": "2.0",
  "info": {"title": "Slow", "version": "1"},
  "basePath": "/slow",
  "x-wso2-disable-security": true,
  "x-wso2-endpoints": [{"slowBackend": {"urls": ["http://127.0.0.1:1"], "advanceEndpointConfig": {"timeoutInMillis": 500}}}],
  "x-wso2-production-endpoints": "#/x-wso2-endpoints/slowBackend",
  "paths": {"/delay/{ms}": {"get": {}}}
}
"##,
    ),
    (
        "waiting.yml",
        "openapi: 3.1.0
info: {title: Waiting, version: '1'}
x-wso2-basePath: /wait
x-wso2-disable-security: true
x-wso2-endpoints:
  - waitBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/waitBackend'
paths:
  /delay/{ms}: {get: {}}
",
    ),
    (
        "down.yaml",
        "openapi: 3.0.0
info: {title: Down, version: '1'}
x-wso2-basePath: /down
x-wso2-disable-security: true
x-wso2-endpoints:
  - downBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/downBackend'
paths:
  /x: {get: {}}
",
    ),
];

/// A project with the bundled petstore and the routing definitions above, built once per
/// test run; tests start their own gateway processes from it.
pub struct RoutingProject {
    /// Keeps the directory alive.
    _dir: tempfile::TempDir,
    /// The gateway binary.
    pub binary: PathBuf,
    /// The project's TLS certificate.
    pub cert: PathBuf,
}

/// The shared routing project.
pub fn routing_project() -> &'static RoutingProject {
    static PROJECT: OnceLock<RoutingProject> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let petstore =
            std::fs::read_to_string(harness::workspace_root().join("docs/examples/petstore.yaml"))
                .expect("bundled example");
        let mut definitions: Vec<(&str, &str)> = ROUTING_DEFINITIONS.to_vec();
        definitions.push(("petstore.yaml", &petstore));
        let binary = harness::build_project(dir.path(), "routing", &definitions);
        RoutingProject {
            cert: dir.path().join("routing/conf/tls/cert.pem"),
            _dir: dir,
            binary,
        }
    })
}
