//! The `micro-gw` and `gateway` commands as users run them: outputs, exit codes, and that a
//! failure never leaves a half-written project or binary.

use mgw_e2e::backend;
use mgw_e2e::client;
use mgw_e2e::harness::{self, micro_gw, text, write_file, GatewayProcess};
use std::path::Path;

const MINIMAL: &str = "openapi: 3.0.0
info: {title: Mini, version: '1'}
x-wso2-basePath: /mini
x-wso2-production-endpoints: {urls: ['http://127.0.0.1:1']}
paths:
  /ping: {get: {}}
";

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn init_lays_out_a_project_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = micro_gw(dir.path(), &["init", "shop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("Project 'shop' is initialized successfully."),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("micro-gw import shop --openapi"),
        "it prints the next step: {}",
        text(&out)
    );
    let project = dir.path().join("shop");
    for path in [
        "api_definitions",
        "interceptors",
        "conf/micro-gw.toml",
        "conf/deployment-config.toml",
        "policies.yaml",
        "conf/tls/cert.pem",
        "conf/tls/key.pem",
    ] {
        assert!(project.join(path).exists(), "{path} is missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(project.join("conf/tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = snapshot(&project);
    let again = micro_gw(dir.path(), &["init", "shop"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).starts_with("micro-gw: "), "{}", text(&again));
    assert!(
        stderr(&again).contains("already exist") && stderr(&again).contains("--force"),
        "{}",
        text(&again)
    );
    assert_eq!(snapshot(&project), before, "a refused init touches nothing");

    write_file(&project.join("api_definitions"), "old.yaml", MINIMAL);
    let forced = micro_gw(dir.path(), &["init", "shop", "-f"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        project.join("api_definitions/old.yaml").exists(),
        "-f keeps the definitions"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no staging directories are left: {leftovers:?}"
    );
}

/// issue 11 #5: `init -f` deleted a folder that was never a project, and a project's
/// definitions, conf, keys and binary. It now changes only a micro-gw project, deletes nothing,
/// says what it replaces, and keeps definitions, conf and keys unless --reset-conf.
#[test]
fn init_force_never_deletes_what_micro_gw_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("somedir");
    std::fs::create_dir_all(other.join("notes")).unwrap();
    write_file(&other, "important.txt", "keep me");
    let before = snapshot(&other);
    for args in [
        &["init", "somedir", "-f"][..],
        &["init", "somedir"][..],
        &["init", "somedir", "-f", "--reset-conf"][..],
    ] {
        let out = micro_gw(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("somedir already exists and is not a micro-gw project")
                && err.contains("it holds: important.txt, notes/"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("Project name"),
            "a non-project is not called a project: {err}"
        );
        assert_eq!(snapshot(&other), before, "{args:?} changed somedir");
    }
    // An empty directory may become a project.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = micro_gw(dir.path(), &["init", "empty"]);
    assert!(out.status.success(), "{}", text(&out));

    // A project with the user's own files, conf edits and a built binary.
    assert!(micro_gw(dir.path(), &["init", "shop"]).status.success());
    let shop = dir.path().join("shop");
    write_file(&shop.join("api_definitions"), "mine.yaml", MINIMAL);
    let conf = shop.join("conf/micro-gw.toml");
    let edited = format!("{}\n# my edit\n", std::fs::read_to_string(&conf).unwrap());
    std::fs::write(&conf, &edited).unwrap();
    write_file(&shop.join("target"), "shop", "a binary");
    write_file(&shop, "README.md", "my notes");
    std::fs::remove_dir_all(shop.join("interceptors")).unwrap();
    let key = std::fs::read(shop.join("conf/tls/key.pem")).unwrap();
    let petstore = harness::workspace_root().join("docs/examples/petstore.yaml");
    let out = micro_gw(
        dir.path(),
        &["init", "shop", "-f", "-a", petstore.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.contains("create  shop/api_definitions/petstore.yaml (-a)")
            && said.contains("create  shop/interceptors/.keep (missing)")
            && said.contains("keep    shop/api_definitions (1 definition(s))")
            && said.contains("--reset-conf"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(std::fs::read(shop.join("conf/tls/key.pem")).unwrap(), key);
    for kept in ["api_definitions/mine.yaml", "target/shop", "README.md"] {
        assert!(shop.join(kept).is_file(), "{kept} was removed");
    }
    assert!(shop.join("api_definitions/petstore.yaml").is_file());

    // --reset-conf replaces conf and keys with the defaults and says so; definitions stay.
    let out = micro_gw(dir.path(), &["init", "shop", "-f", "--reset-conf"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("replace shop/conf/micro-gw.toml (--reset-conf)")
            && stdout(&out).contains("replace shop/conf/tls/key.pem (--reset-conf)"),
        "{}",
        text(&out)
    );
    assert!(!std::fs::read_to_string(&conf)
        .unwrap()
        .contains("# my edit"));
    assert_ne!(std::fs::read(shop.join("conf/tls/key.pem")).unwrap(), key);
    for kept in [
        "api_definitions/mine.yaml",
        "api_definitions/petstore.yaml",
        "target/shop",
        "README.md",
    ] {
        assert!(shop.join(kept).is_file(), "{kept} was removed");
    }
}

/// On a terminal, `init -f` lists what it would replace and asks; the default is no.
#[test]
fn init_force_asks_on_a_terminal_before_replacing() {
    use mgw_e2e::terminal::Terminal;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    assert!(micro_gw(dir.path(), &["init", "shop"]).status.success());
    let shop = dir.path().join("shop");
    let before = snapshot(&shop);
    let cache = harness::cache_dir();
    let mut terminal = Terminal::spawn(
        &harness::toolkit_bin("micro-gw"),
        &["init", "shop", "-f", "--reset-conf"],
        dir.path(),
        &[("MGW_CACHE_DIR", cache.as_os_str())],
        &[],
    );
    let wait = Duration::from_secs(20);
    terminal.expect("replace shop/conf/micro-gw.toml (--reset-conf)", wait);
    terminal.expect("Replace 7 file(s)?", wait);
    terminal.send_line("n");
    terminal.expect("nothing was changed", wait);
    assert!(!terminal.wait(wait), "exits with 1: {}", terminal.screen());
    assert_eq!(snapshot(&shop), before, "answering no changes nothing");
}

/// issue 11 #8: import prints the warnings of the definition it adds, and only a count of
/// the project's other warnings.
#[test]
fn import_prints_its_own_warnings_and_counts_the_others() {
    let dir = tempfile::tempdir().unwrap();
    assert!(micro_gw(dir.path(), &["init", "shop"]).status.success());
    let warned = MINIMAL.replace("paths:", "x-wso2-unknown-thing: 1\npaths:");
    write_file(
        &dir.path().join("shop/api_definitions"),
        "old.yaml",
        &warned,
    );
    let new = write_file(
        dir.path(),
        "new.yaml",
        &warned
            .replace("/mini", "/other")
            .replace("title: Mini", "title: Other"),
    );
    let out = micro_gw(dir.path(), &["import", "shop", "--openapi", "new.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("micro-gw: warning: new.yaml:"), "{err}");
    assert!(
        !err.contains("old.yaml"),
        "old warnings are not repeated: {err}"
    );
    assert!(
        err.contains("1 warning in 1 other definition; micro-gw build --verbose shop lists them"),
        "{err}"
    );
    drop(new);
}

/// issue 11 #6: errors name the file the user gave, with line and column, never the copy
/// in a project that does not exist.
#[test]
fn errors_name_the_file_the_user_gave() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "broken.yaml",
        "openapi: 3.0.0\ninfo: {title: B, version: '1'}\npaths:\n  /a:\n    get: {x: [1, }\n",
    );
    let out = micro_gw(dir.path(), &["init", "newproj", "-a", "broken.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("\nbroken.yaml:5:") && !stderr(&out).contains("api_definitions"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("newproj").exists());
    let line_col = stderr(&out)
        .lines()
        .find(|l| l.starts_with("broken.yaml:5:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse::<usize>();
    assert!(
        line_col.is_ok(),
        "a column follows the line: {}",
        text(&out)
    );

    assert!(micro_gw(dir.path(), &["init", "myproj"]).status.success());
    let out = micro_gw(
        dir.path(),
        &["import", "myproj", "--openapi", "broken.yaml"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("\nbroken.yaml:5:") && !stderr(&out).contains("api_definitions"),
        "{}",
        text(&out)
    );
    // Validation errors too (not only syntax), and warnings.
    write_file(dir.path(), "noend.yaml", "openapi: 3.0.0\ninfo: {title: N, version: '1'}\nx-wso2-basePath: /n\npaths:\n  /a:\n    get: {}\n");
    let out = micro_gw(dir.path(), &["import", "myproj", "--openapi", "noend.yaml"]);
    assert!(
        stderr(&out).contains("\nnoend.yaml:6: GET /a has no endpoint"),
        "{}",
        text(&out)
    );
}

#[test]
fn init_with_an_invalid_definition_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(dir.path(), "bad.yaml", "openapi: 3.0.0\ninfo: {title: B, version: '1'}\npaths:\n  /a:\n    get:\n      x-wso2-production-endpoints: {urls: ['ftp://x']}\n");
    let out = micro_gw(dir.path(), &["init", "shop", "-a", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("{}:6:", bad.display())) && stderr(&out).contains("ftp"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("shop").exists());

    let deploy = write_file(dir.path(), "deploy.toml", "[docker\n");
    let out = micro_gw(
        dir.path(),
        &["init", "shop", "-d", deploy.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("deployment configuration"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("shop").exists());
}

#[test]
fn version_and_help_work_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = micro_gw(dir.path(), &["version"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("micro-gw "), "{}", text(&out));
    for command in [
        "init",
        "import",
        "build",
        "reset",
        "version",
        "users",
        "apps",
        "credentials",
        "scopes",
        "consumers",
    ] {
        let out = micro_gw(dir.path(), &[command, "--help"]);
        assert!(out.status.success(), "{command} --help: {}", text(&out));
        assert!(stdout(&out).contains("Usage:"), "{command}: {}", text(&out));
    }
    let out = micro_gw(dir.path(), &["--help"]);
    assert!(stdout(&out).contains("init") && stdout(&out).contains("build"));
    let out = micro_gw(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("micro-gw: "), "{}", text(&out));

    let gateway = std::process::Command::new(harness::toolkit_bin("gateway"))
        .arg("version")
        .output()
        .unwrap();
    assert!(gateway.status.success());
    assert!(stdout(&gateway).contains("gateway"), "{}", text(&gateway));
}

#[tokio::test(flavor = "multi_thread")]
async fn import_validates_first_and_writes_nothing_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    assert!(micro_gw(dir.path(), &["init", "shop"]).status.success());
    let defs = dir.path().join("shop/api_definitions");

    let good = write_file(dir.path(), "mini.yaml", MINIMAL);
    let out = micro_gw(
        dir.path(),
        &["import", "shop", "--openapi", good.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("Imported API 'Mini'"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(defs.join("mini.yaml")).unwrap(),
        MINIMAL
    );

    let before = snapshot(&dir.path().join("shop"));
    let broken = write_file(
        dir.path(),
        "broken.json",
        "{\n  \"openapi\": \"3.0.0\",\n  \"info\": {\"title\": \"x\"\n",
    );
    let out = micro_gw(
        dir.path(),
        &["import", "shop", "--openapi", broken.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("broken.json:") && stderr(&out).contains("not valid JSON"),
        "{}",
        text(&out)
    );

    // Same base path as an API already in the project.
    let clash = write_file(
        dir.path(),
        "clash.yaml",
        &MINIMAL.replace("title: Mini", "title: Other"),
    );
    let out = micro_gw(
        dir.path(),
        &["import", "shop", "--openapi", clash.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("'/mini' is duplicated"),
        "{}",
        text(&out)
    );
    assert_eq!(
        snapshot(&dir.path().join("shop")),
        before,
        "a rejected import writes nothing"
    );

    let out = micro_gw(
        dir.path(),
        &["import", "nowhere", "--openapi", good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("micro-gw init nowhere"),
        "{}",
        text(&out)
    );

    // From a URL.
    let served = backend::spawn_fixed(
        200,
        MINIMAL
            .replace("/mini", "/remote")
            .replace("Mini", "Remote"),
    )
    .await
    .unwrap();
    let url = format!("{}/specs/remote.yaml", served.url());
    let out = micro_gw(dir.path(), &["import", "shop", "--openapi", &url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(defs.join("remote.yaml").is_file());
    let missing = backend::spawn_fixed(404, "not here".into()).await.unwrap();
    let out = micro_gw(
        dir.path(),
        &[
            "import",
            "shop",
            "--openapi",
            &format!("{}/x.yaml", missing.url()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404"), "{}", text(&out));
    let out = micro_gw(
        dir.path(),
        &[
            "import",
            "shop",
            "--openapi",
            &format!("http://127.0.0.1:{}/x.yaml", harness::closed_port()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is the server running"),
        "{}",
        text(&out)
    );
}

#[test]
fn build_errors_name_file_and_line_and_keep_the_previous_binary() {
    let dir = tempfile::tempdir().unwrap();
    let binary = harness::build_project(dir.path(), "keep", &[("mini.yaml", MINIMAL)]);
    let good = std::fs::read(&binary).unwrap();
    // The generated crate builds against the runtime sources the toolkit carries, unpacked
    // into the cache, never against this checkout: an installed micro-gw works without it.
    let manifest = std::fs::read_to_string(dir.path().join("keep/target/gen/Cargo.toml")).unwrap();
    let runtime_root = harness::cache_dir().join("runtime");
    assert!(
        manifest.contains(runtime_root.to_str().unwrap()),
        "{manifest}"
    );
    assert!(!manifest.contains("runtime-template"), "{manifest}");
    assert!(
        std::fs::read_to_string(dir.path().join("keep/target/gen/main.rs"))
            .unwrap()
            .contains("include_bytes!(\"model.json\")")
    );
    let defs = dir.path().join("keep/api_definitions");
    let cases: &[(&str, &str, &str)] = &[
        ("a.yaml", "openapi: 3.0.0\ninfo: {title: A, version: '1'}\nx-wso2-basePath: /a\npaths:\n  /x:\n    get:\n      x-wso2-production-endpoints: '#/x-wso2-endpoints/nope'\n", "a.yaml:7: x-wso2-production-endpoints: reference \"#/x-wso2-endpoints/nope\" does not resolve"),
        ("b.yaml", "openapi: 3.0.0\ninfo: {title: B, version: '1'}\nx-wso2-basePath: /b\nx-wso2-production-endpoints:\n  urls: ['http//broken']\npaths:\n  /x: {get: {}}\n", "b.yaml:5: endpoint URL \"http//broken\" is not valid"),
        ("c.yaml", "openapi: 3.0.0\ninfo: {title: C, version: '1'}\nx-wso2-basePath: /c\npaths:\n  /x:\n    get: {}\n", "c.yaml:6: GET /x has no endpoint"),
        ("d.yaml", "openapi: 3.0.0\ninfo: {title: D, version: '1'\n", "d.yaml:"),
        ("e.yaml", "openapi: 3.0.0\ninfo: {title: E, version: '1'}\nx-wso2-basePath: /mini\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /y: {get: {}}\n", "'/mini' is duplicated"),
        ("f.yaml", "openapi: 3.0.0\ninfo: {title: F, version: '1'}\nx-wso2-basePath: /f\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /x: {$ref: '#/x-defs/a'}\nx-defs:\n  a: {$ref: '#/x-defs/b'}\n  b: {$ref: '#/x-defs/a'}\n", "circular $ref"),
        ("g.yaml", "openapi: 3.0.0\ninfo: {title: G, version: '1'}\nx-wso2-basePath: /g\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /p/{a}: {get: {}}\n  /p/{b}: {get: {}}\n", "conflicts with"),
    ];
    for (file, content, expected) in cases {
        let path = write_file(&defs, file, content);
        let out = micro_gw(dir.path(), &["build", "keep"]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("micro-gw: ") && err.contains(expected),
            "{file}: expected {expected:?}\n{}",
            text(&out)
        );
        assert!(stdout(&out).contains("BUILD FAILED"), "{}", text(&out));
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{}",
            text(&out)
        );
        assert_eq!(
            std::fs::read(&binary).unwrap(),
            good,
            "{file}: the previous binary is intact"
        );
        std::fs::remove_file(path).unwrap();
    }
    // Unknown extensions are named in a warning, never silently ignored.
    write_file(
        &defs,
        "mini.yaml",
        &MINIMAL.replace("paths:", "x-wso2-nonsense: 1\npaths:"),
    );
    let out = micro_gw(dir.path(), &["build", "keep"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("mini.yaml:5: unknown extension x-wso2-nonsense"),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("BUILD SUCCESSFUL") && stdout(&out).contains("Target: "),
        "{}",
        text(&out)
    );

    let empty = tempfile::tempdir().unwrap();
    assert!(micro_gw(empty.path(), &["init", "nothing"])
        .status
        .success());
    let out = micro_gw(empty.path(), &["build", "nothing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Nothing to build"), "{}", text(&out));
    assert!(!empty.path().join("nothing/target/nothing").exists());
}

/// `--profile-use` without what it needs stops before generating or compiling anything, says
/// which step is missing, and leaves the project's files as they were (it may create the empty
/// `target/pgo/` it would have merged into). (The loop with a real profile and
/// the toolchain's llvm-profdata: `toolkit/src/cargo_build.rs`,
/// `a_profile_generated_by_the_instrumented_binary_reaches_rustc`.)
#[test]
fn a_profile_guided_build_without_its_profile_or_tool_stops_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    assert!(micro_gw(dir.path(), &["init", "tuned"]).status.success());
    write_file(
        &dir.path().join("tuned/api_definitions"),
        "mini.yaml",
        MINIMAL,
    );
    let stopped_early = |out: &std::process::Output| {
        assert_eq!(out.status.code(), Some(1), "{}", text(out));
        assert!(stdout(out).contains("BUILD FAILED"), "{}", text(out));
        assert!(
            !dir.path().join("tuned/target/gen").exists(),
            "{}",
            text(out)
        );
        assert!(!dir.path().join("tuned/target/tuned").exists());
    };

    // No instrumented gateway has run: the steps to take.
    let out = micro_gw(dir.path(), &["build", "tuned", "--profile-use"]);
    stopped_early(&out);
    let err = stderr(&out);
    assert!(err.contains("no profile in "), "{err}");
    assert!(err.contains("tuned/target/pgo"), "{err}");
    assert!(
        err.contains("micro-gw build tuned --profile-generate"),
        "{err}"
    );

    // A path that is no profile is named.
    let out = micro_gw(dir.path(), &["build", "tuned", "--profile-use=notes.txt"]);
    stopped_early(&out);
    assert!(
        stderr(&out)
            .contains("notes.txt is neither a directory of .profraw files, nor a .profraw file, nor a merged .profdata file (it does not exist)"),
        "{}",
        text(&out)
    );

    // A profile but no llvm-profdata: how to get it.
    std::fs::write(
        dir.path().join("tuned/target/pgo/default_1_0.profraw"),
        b"counts",
    )
    .unwrap();
    let out = std::process::Command::new(harness::toolkit_bin("micro-gw"))
        .args(["build", "tuned", "--profile-use"])
        .current_dir(dir.path())
        .env("MGW_CACHE_DIR", harness::cache_dir())
        .env(
            "MGW_LLVM_PROFDATA",
            dir.path().join("no-such-llvm-profdata"),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    stopped_early(&out);
    let err = stderr(&out);
    assert!(err.contains("no-such-llvm-profdata"), "{err}");
    assert!(err.contains("rustup component add llvm-tools"), "{err}");
    // The user's profile is left as it was.
    assert_eq!(
        std::fs::read(dir.path().join("tuned/target/pgo/default_1_0.profraw")).unwrap(),
        b"counts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_launcher_checks_binary_and_settings() {
    let project = crate::routing_project();
    let launcher = harness::toolkit_bin("gateway");
    let run = |args: &[&str], conf_dir: Option<&Path>| {
        let mut command = std::process::Command::new(&launcher);
        command.args(args).env_remove("MGW_CONF_DIR");
        if let Some(dir) = conf_dir {
            command.env("MGW_CONF_DIR", dir);
        }
        command.output().unwrap()
    };
    let out = run(&["/no/such/binary"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", text(&out));
    assert!(
        stderr(&out).starts_with("gateway: /no/such/binary does not exist"),
        "{}",
        text(&out)
    );

    let bin = project.binary.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            bin,
            "--config",
            dir.path().join("none.toml").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("none.toml does not exist"),
        "{}",
        text(&out)
    );

    let conf = write_file(
        dir.path(),
        "micro-gw.toml",
        "[listener]\nhttp_port = 1\nhttp_prot = 2\n",
    );
    let out = run(&[bin], Some(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{}", text(&out));
    assert!(
        err.contains(&format!("{}:3", conf.display())) && err.contains("http_prot"),
        "{}",
        text(&out)
    );

    write_file(
        dir.path(),
        "micro-gw.toml",
        "[listener]\nhttp_port = \"eighty\"\n",
    );
    let out = run(&[bin], Some(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("micro-gw.toml:2"), "{}", text(&out));

    // The binary itself refuses an unknown endpoint override by name.
    let out = std::process::Command::new(&project.binary)
        .args(["--listener.http_port=0", "--nope_prod_endpoint_0=http://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("petstoreBackend_prod_endpoint_<i>"),
        "{}",
        text(&out)
    );

    // Endpoint overrides also come from the environment (of that process only).
    let be = backend::spawn("env", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let gw = GatewayProcess::start_with_env(
        &project.binary,
        &[],
        false,
        &[("petstoreBackend_prod_endpoint_0", &be.url())],
    );
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.header("x-backend"), Some("env"));
}
