//! Issue 13 item 3 end to end: `micro-gw consumers populate` fills a stopped gateway's store
//! file from a Kargo consumers file; the gateway started on it admits the file's key; the
//! `eg`-like `micro-gw users|credentials …` commands work against its admin API (token read
//! from the project); populating again with a changed file reports and makes the changes;
//! `micro-gw consumers clean` empties the store.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};

use mgw_e2e::harness::free_port;

async fn get(url: &str, key: &str) -> Reply {
    let header = format!("apiKey {key}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client::send(
            Protocol::Http1,
            Method::GET,
            url,
            &[("authorization", header.as_str())],
            client::empty(),
            Duration::from_secs(10),
        )
        .await
        {
            Ok(reply) => return reply,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{url}: {err}"),
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let output = harness::micro_gw(dir, args);
    assert!(
        output.status.success(),
        "{args:?}\n{}",
        harness::text(&output)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const FILE: &str = "// Kargo's nested format\nmodule.exports = {\n  scopes: ['maps', 'k2'],\n  users: {\n    alice: {\n      web: { scopes: ['maps'], credential: { type: 'key-auth', keyId: 'alicekey', keySecret: 'alice-secret' } },\n      qgis: { scopes: ['maps', 'k2'], credential: { type: 'basic-auth', password: 'pw' } },\n    },\n    bob: {\n      tool: { scopes: ['k2'], credential: { type: 'key-auth', keyId: 'bobkey', keySecret: 'bob-secret' } },\n    },\n  },\n};\n";

#[tokio::test(flavor = "multi_thread")]
async fn populate_offline_then_cli_and_sync_against_the_running_gateway() {
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["init", "shop"]);
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nadmin: {{port: 9876, host: localhost}}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy, key-auth]\napiEndpoints:\n  maps: {{path: '/maps/*', scopes: [maps]}}\npipelines:\n  maps:\n    apiEndpoints: [maps]\n    policies: [{{key-auth: }}, {{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n",
            be.url()
        ),
    );
    run(
        dir.path(),
        &["import", "shop", "--express-gateway", eg.to_str().unwrap()],
    );
    run(dir.path(), &["build", "shop"]);
    let file = harness::write_file(dir.path(), "consumers.config.js", FILE);
    let file = file.to_str().unwrap();

    // The gateway is stopped: populate writes the store file.
    let closed = format!("http://127.0.0.1:{}", harness::closed_port());
    let offline = run(
        dir.path(),
        &[
            "consumers",
            "populate",
            "shop",
            file,
            "--admin-url",
            &closed,
        ],
    );
    let report = stdout(&offline);
    assert!(
        String::from_utf8_lossy(&offline.stderr).contains("working on the store file"),
        "{}",
        harness::text(&offline)
    );
    for line in [
        "create scope maps",
        "create user alice",
        "create app alice/web (scopes maps)",
        "create credential key-auth alicekey for alice/web (new)",
        "create credential basic-auth for alice/qgis (new)",
        "create user bob",
        "populate: 10 created, 0 updated, 0 deactivated, 0 removed",
    ] {
        assert!(report.contains(line), "{line}\n{report}");
    }
    assert!(dir.path().join("shop/data/consumers.db").exists());

    // Started on that store: the file's key authenticates. No token configured: the gateway
    // writes one to data/admin.token, which the CLI reads with --project.
    let (port, admin_port) = (free_port(), free_port());
    let args = [
        format!("--express_gateway.http_port={port}"),
        format!("--express_gateway.admin_port={admin_port}"),
    ];
    let gw = GatewayProcess::start(&dir.path().join("shop/target/shop"), &args, false);
    let api = format!("http://127.0.0.1:{port}/maps/x");
    assert_eq!(get(&api, "alicekey:alice-secret").await.status, 200);
    assert_eq!(get(&api, "alicekey:wrong").await.status, 401);
    // bob's key lacks the scope.
    assert_eq!(get(&api, "bobkey:bob-secret").await.status, 403);

    let admin = format!("http://127.0.0.1:{admin_port}");
    let cli = |args: &[&str]| -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin-url", admin.as_str(), "--project", "shop"]);
        harness::micro_gw(dir.path(), &all)
    };
    // Without the token: the admin API's 401, in one line.
    let refused = harness::micro_gw(dir.path(), &["users", "list", "--admin-url", &admin]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(err.contains("the admin API answered 401"), "{err}");

    let created = cli(&[
        "users",
        "create",
        "-p",
        "username=carol",
        "-p",
        "firstname=Carol",
    ]);
    assert!(created.status.success(), "{}", harness::text(&created));
    let carol: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(carol["username"], "carol");
    assert_eq!(carol["isActive"], true);
    let listed = cli(&["users", "list", "-q"]);
    let names = stdout(&listed);
    for name in ["alice", "bob", "carol"] {
        assert!(
            names.lines().any(|l| l == name),
            "{}",
            harness::text(&listed)
        );
    }
    let info = cli(&["users", "info", "alice"]);
    let alice: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(alice["username"], "alice");
    let duplicate = cli(&["users", "create", "-p", "username=carol"]);
    assert!(!duplicate.status.success());
    assert!(
        String::from_utf8_lossy(&duplicate.stderr)
            .contains("POST /users: the admin API answered 409: username already exists"),
        "{}",
        harness::text(&duplicate)
    );
    let scope = cli(&[
        "credentials",
        "create",
        "-c",
        "carol",
        "-t",
        "key-auth",
        "-p",
        "scopes=maps",
        "-q",
    ]);
    assert!(scope.status.success(), "{}", harness::text(&scope));
    let key = stdout(&scope).trim().to_string();
    assert!(key.contains(':'), "{key}");
    assert_eq!(get(&api, &key).await.status, 200);
    let key_id = key.split(':').next().unwrap();
    let listed = cli(&["credentials", "list", "-c", "carol", "-q"]);
    assert_eq!(stdout(&listed).trim(), key_id, "{}", harness::text(&listed));
    let off = cli(&["credentials", "deactivate", key_id, "-t", "key-auth"]);
    assert!(off.status.success(), "{}", harness::text(&off));
    assert_eq!(get(&api, &key).await.status, 401);
    let off = cli(&["users", "deactivate", "carol"]);
    assert!(off.status.success(), "{}", harness::text(&off));
    assert!(String::from_utf8_lossy(&off.stderr).contains("Deactivated carol"));

    // A changed file, against the running gateway: alice's secret changes, bob goes, and
    // carol (not in the file) goes too.
    let changed = FILE
        .replace("'alice-secret'", "'alice-secret-2'")
        .replace(
            "    bob: {\n      tool: { scopes: ['k2'], credential: { type: 'key-auth', keyId: 'bobkey', keySecret: 'bob-secret' } },\n    },\n",
            "",
        );
    let changed_file = harness::write_file(dir.path(), "consumers2.config.js", &changed);
    let populate = |file: &str| {
        harness::micro_gw(
            dir.path(),
            &["consumers", "populate", "shop", file, "--admin-url", &admin],
        )
    };
    let online = populate(changed_file.to_str().unwrap());
    assert!(online.status.success(), "{}", harness::text(&online));
    let report = stdout(&online);
    for line in [
        "remove credential key-auth alicekey of alice/web (secret changed)",
        "create credential key-auth alicekey for alice/web (secret changed)",
        "remove user bob (not in the file; its apps and credentials too)",
        "remove user carol (not in the file; its apps and credentials too)",
        "populate: 1 created, 0 updated, 0 deactivated, 3 removed",
    ] {
        assert!(report.contains(line), "{line}\n{}", harness::text(&online));
    }
    assert!(String::from_utf8_lossy(&online.stderr).contains("the gateway is running"));
    assert_eq!(get(&api, "alicekey:alice-secret").await.status, 401);
    assert_eq!(get(&api, "alicekey:alice-secret-2").await.status, 200);
    // The same file again: nothing to do.
    let again = populate(changed_file.to_str().unwrap());
    assert!(
        stdout(&again).contains("populate: the store already equals the file (no change)"),
        "{}",
        harness::text(&again)
    );

    // Clean: everything, credentials included.
    let clean = harness::micro_gw(
        dir.path(),
        &["consumers", "clean", "shop", "--admin-url", &admin],
    );
    assert!(clean.status.success(), "{}", harness::text(&clean));
    assert!(
        stdout(&clean)
            .contains("clean: removed 1 user(s), 2 application(s), 2 credential(s), 2 scope(s)"),
        "{}",
        harness::text(&clean)
    );
    assert_eq!(get(&api, "alicekey:alice-secret-2").await.status, 401);
    let empty = cli(&["users", "list"]);
    assert_eq!(stdout(&empty).trim(), "You have no users");
    let creds = cli(&["credentials", "list"]);
    assert!(
        stdout(&creds).trim().is_empty(),
        "{}",
        harness::text(&creds)
    );

    // Stopped: a clear line saying so and what to do.
    drop(gw);
    let down = harness::micro_gw(dir.path(), &["users", "list", "--admin-url", &admin]);
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr).into_owned();
    assert!(
        err.contains(&format!("no gateway is running at {admin}")) && err.contains("--offline"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // --offline reads the store file.
    let offline = harness::micro_gw(
        dir.path(),
        &[
            "scopes",
            "list",
            "--project",
            "shop",
            "--offline",
            "--admin-url",
            &closed,
        ],
    );
    assert!(offline.status.success(), "{}", harness::text(&offline));
    assert_eq!(stdout(&offline).trim(), "You have no scopes");
}

/// The flat `consumers.config.json` (with the `auth-key` spelling) on a stopped project's store:
/// the warning names the line; `--dry-run` changes nothing; `--deactivate` keeps what the file
/// drops, inactive; the CLI reads the store with `--offline`.
#[test]
fn flat_json_offline_dry_run_and_deactivate() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["init", "shop"]);
    let closed = format!("http://127.0.0.1:{}", harness::closed_port());
    let flat = "{\n  \"scopes\": [\"maps\"],\n  \"users\": {\n    \"ann\": {\n      \"web\": {\"type\": \"auth-key\", \"keyId\": \"annkey\", \"keySecret\": \"s\", \"scopes\": [\"maps\"]},\n      \"old\": {\"type\": \"key-auth\", \"keyId\": \"oldkey\", \"keySecret\": \"s\"}\n    }\n  }\n}\n";
    let file = harness::write_file(dir.path(), "consumers.config.json", flat);
    let file = file.to_str().unwrap();
    let populate = |extra: &[&str]| {
        let mut args = vec![
            "consumers",
            "populate",
            "shop",
            file,
            "--admin-url",
            &closed,
        ];
        args.extend_from_slice(extra);
        run(dir.path(), &args)
    };
    let dry = populate(&["--dry-run"]);
    assert!(
        stdout(&dry).contains("populate (dry run, nothing changed): 6 created"),
        "{}",
        harness::text(&dry)
    );
    let warned = String::from_utf8_lossy(&dry.stderr).into_owned();
    assert!(
        warned.contains(
            "consumers.config.json:5: credential type \"auth-key\" of web read as \"key-auth\""
        ),
        "{warned}"
    );
    let offline = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--project",
            "shop",
            "--offline",
            "--admin-url",
            closed.as_str(),
        ]);
        run(dir.path(), &all)
    };
    assert_eq!(
        stdout(&offline(&["users", "list", "-q"])).trim(),
        "You have no users"
    );
    let done = populate(&[]);
    assert!(
        stdout(&done).contains("populate: 6 created"),
        "{}",
        harness::text(&done)
    );
    assert_eq!(stdout(&offline(&["users", "list", "-q"])).trim(), "ann");
    // `old` leaves the file: deactivated, not removed.
    let fewer = flat.replace(
        ",\n      \"old\": {\"type\": \"key-auth\", \"keyId\": \"oldkey\", \"keySecret\": \"s\"}",
        "",
    );
    harness::write_file(dir.path(), "consumers.config.json", &fewer);
    let kept = populate(&["--deactivate"]);
    let report = stdout(&kept);
    assert!(
        report.contains("deactivate app ann/old (not in the file)"),
        "{report}"
    );
    assert!(
        report.contains("populate: 0 created, 0 updated, 1 deactivated, 0 removed"),
        "{report}"
    );
    let app = offline(&["apps", "info", "old"]);
    let app: serde_json::Value = serde_json::from_slice(&app.stdout).unwrap();
    assert_eq!(app["isActive"], false);
    let removed = populate(&[]);
    assert!(
        stdout(&removed).contains("remove app ann/old (not in the file)"),
        "{}",
        harness::text(&removed)
    );
    let clean = run(
        dir.path(),
        &["consumers", "clean", "shop", "--admin-url", &closed],
    );
    assert!(
        stdout(&clean)
            .contains("clean: removed 1 user(s), 1 application(s), 1 credential(s), 1 scope(s)"),
        "{}",
        harness::text(&clean)
    );
}
