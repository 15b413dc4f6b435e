//! The commands of docs/getting-started.md run as written, against the files in the repository
//! (issue 11 #10). Blocks are marked in the markdown:
//!
//! - `<!-- doc-test: run -->` before a ```sh block: every line (comments stripped) runs in a
//!   directory holding a copy of `docs/examples`, with `micro-gw` and `gateway` on `PATH`, and
//!   must succeed; a `gateway <binary>` line starts the gateway (on free ports) and must serve.
//! - `<!-- doc-test: transcript -->` before a block of `$ <command>` and its output: the command
//!   runs (in one directory shared by all transcripts, in document order) and every line shown
//!   must appear in its output, in order; `…` stands for any text.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mgw_e2e::harness::{self, text, GatewayProcess};

/// A marked block: its kind and lines.
struct Block {
    kind: String,
    lines: Vec<String>,
}

fn marked_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("<!-- doc-test: ") else {
            continue;
        };
        let kind = rest.split_whitespace().next().unwrap_or("").to_string();
        let fence = lines.next().unwrap_or("");
        assert!(
            fence.starts_with("```"),
            "a doc-test mark must precede a code block: {line}"
        );
        let body: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_string)
            .collect();
        blocks.push(Block { kind, lines: body });
    }
    blocks
}

/// A copy of the repository's example definitions, as paths in the docs name them.
fn workspace_with_examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("docs/examples");
    std::fs::create_dir_all(&examples).unwrap();
    for entry in std::fs::read_dir(harness::workspace_root().join("docs/examples")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), examples.join(entry.file_name())).unwrap();
    }
    dir
}

fn shell(dir: &Path, line: &str) -> std::process::Output {
    let bin = harness::toolkit_bin("micro-gw");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .env("MGW_CACHE_DIR", harness::cache_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running sh")
}

/// True when `expected` (with `…` as a wildcard) matches `actual`.
fn matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split('…').collect();
    let mut rest = actual;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if i == parts.len() - 1 && !part.is_empty() {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn getting_started_commands_run_as_written() {
    let markdown =
        std::fs::read_to_string(harness::workspace_root().join("docs/getting-started.md")).unwrap();
    let blocks = marked_blocks(&markdown);
    assert!(
        blocks.iter().any(|b| b.kind == "run") && blocks.iter().any(|b| b.kind == "transcript"),
        "the marks are missing from getting-started.md"
    );
    let transcripts = workspace_with_examples();
    for block in &blocks {
        match block.kind.as_str() {
            "transcript" => {
                let command = block.lines[0]
                    .strip_prefix("$ ")
                    .expect("a transcript starts with `$ <command>`");
                let out = shell(transcripts.path(), command);
                assert!(out.status.success(), "{command}: {}", text(&out));
                let printed = String::from_utf8_lossy(&out.stdout).into_owned();
                let mut lines = printed.lines();
                for expected in &block.lines[1..] {
                    assert!(
                        lines.any(|l| matches(expected, l)),
                        "{command}: `{expected}` is not printed (in order):\n{printed}"
                    );
                }
            }
            "run" => {
                let dir = workspace_with_examples();
                for line in &block.lines {
                    let command = line.split(" #").next().unwrap().trim();
                    if command.is_empty() || command.starts_with('#') {
                        continue;
                    }
                    if let Some(binary) = command.strip_prefix("gateway ") {
                        let gateway =
                            GatewayProcess::start(&dir.path().join(binary.trim()), &[], true);
                        // The bundled petstore has security disabled: it reaches its endpoint
                        // (502 unless a backend runs on 8081); orders keeps the OAuth2 default.
                        let answer = get(gateway.http, "/petstore/v1/pet/42");
                        assert!(
                            !answer.starts_with("HTTP/1.1 401")
                                && !answer.starts_with("HTTP/1.1 404"),
                            "{answer}"
                        );
                        let answer = get(gateway.http, "/orders/v2/orders");
                        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
                        // The access log has the fields getting-started shows.
                        let logged = gateway
                            .wait_for_log("GET /petstore/v1/pet/42 ", Duration::from_secs(10))
                            .expect("an access log line");
                        for field in [
                            "bytes_out=",
                            "upstream=",
                            "upstream_ms=",
                            "total_ms=",
                            "consumer=",
                            " trace=",
                        ] {
                            assert!(logged.contains(field), "{field}: {logged}");
                        }
                        assert!(markdown.contains("total_ms=0.83 consumer=-"));
                        continue;
                    }
                    let out = shell(dir.path(), command);
                    assert!(out.status.success(), "{command}: {}", text(&out));
                    if command.starts_with("micro-gw build") {
                        // Item 4: the OAuth2 default without an issuer is said in one line.
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(
                            err.lines().any(|l| l.contains("answers 401")
                                && l.contains("x-wso2-disable-security: true")),
                            "{err}"
                        );
                    }
                }
            }
            other => panic!("unknown doc-test mark {other:?}"),
        }
    }
}

#[test]
fn wildcards_match() {
    assert!(matches(
        "ID for API with name Orders : api_…",
        "ID for API with name Orders : api_12"
    ));
    assert!(matches(
        "TLS: … (SHA-256 …); replace it",
        "TLS: a b (SHA-256 ab); replace it"
    ));
    assert!(!matches("Imported API 'X'", "Imported API 'Y'"));
}

/// The metrics reference in docs/operations.md names every series the runtime registers, and
/// the example Grafana dashboard (valid JSON) queries only series of that reference.
#[test]
fn the_metrics_reference_and_the_dashboard_match_the_runtime() {
    let root = harness::workspace_root();
    let guide = std::fs::read_to_string(root.join("docs/operations.md")).expect("operations.md");
    let reference = guide
        .split("## Metrics reference")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a \"## Metrics reference\" section in docs/operations.md");
    let model = serde_json::json!({
        "format": mgw_runtime::model::MODEL_FORMAT,
        "project": "docs",
        "apis": [],
        "endpoints": [],
    });
    let model =
        mgw_runtime::model::GatewayModel::from_json(model.to_string().as_bytes()).expect("a model");
    use mgw_runtime::telemetry::metrics::{
        AuthOutcome, AuthScheme, LimitPolicy, Metrics, Outcome, RouteKey, UpstreamFailure,
    };
    // A family shows in /metrics once it has a series: give each one.
    let metrics = Metrics::new(&model);
    let method = http::Method::GET;
    let outcome = |status: u16| Outcome {
        route: RouteKey::Unrouted,
        method: &method,
        status: http::StatusCode::from_u16(status).expect("a status"),
        elapsed: Duration::from_millis(1),
        upstream_latency: None,
        upstream_failure: None,
    };
    metrics.record(Outcome {
        upstream_latency: Some(Duration::from_millis(1)),
        ..outcome(200)
    });
    metrics.record(Outcome {
        upstream_failure: Some(UpstreamFailure::Timeout),
        ..outcome(504)
    });
    metrics.record(outcome(414));
    metrics.auth(AuthScheme::Jwt, AuthOutcome::Success);
    metrics.limit(LimitPolicy::RateLimit, true);
    let _connections = metrics.connections("listener.http", false, "auto");
    let encoded = metrics.encode();
    let families: Vec<&str> = encoded
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(families.len() >= 10, "{encoded}");
    for family in &families {
        assert!(
            reference.contains(&format!("`{family}")),
            "{family} is not in the metrics reference of docs/operations.md"
        );
    }

    let dashboard = std::fs::read_to_string(root.join("docs/examples/grafana-dashboard.json"))
        .expect("the dashboard");
    let dashboard: serde_json::Value =
        serde_json::from_str(&dashboard).expect("docs/examples/grafana-dashboard.json is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut used = 0;
    for expr in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
    {
        let mut rest = expr;
        while let Some(at) = rest.find("mgw_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                reference.contains(&format!("`{family}`")),
                "the dashboard queries {name}, which the metrics reference does not list"
            );
            used += 1;
        }
    }
    assert!(used >= 10, "the dashboard queries {used} series");
}
