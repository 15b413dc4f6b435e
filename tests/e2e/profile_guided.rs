//! `micro-gw build --profile-generate`, then `--profile-use` (without `--lto`): the runtime and
//! the gateway's own crate are compiled with rustc's profile flag by `micro-gw` as cargo's rustc
//! wrapper (toolkit/src/rustc_wrapper.rs); every other crate is the default build's, and the
//! default build's own runtime is kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mgw_e2e::backend;
use mgw_e2e::client;
use mgw_e2e::harness::{self, text, write_file, GatewayProcess};

/// `micro-gw <args>` in `dir` with the shared cache, without the suites' build variant
/// (`MGW_E2E_BUILD_ARGS`): this test is about what a build without `--lto` compiles.
fn toolkit(dir: &Path, args: &[&str]) -> Output {
    Command::new(harness::toolkit_bin("micro-gw"))
        .args(args)
        .current_dir(dir)
        .env("MGW_CACHE_DIR", harness::cache_dir())
        .env_remove("RUSTC_WRAPPER")
        .stdin(Stdio::null())
        .output()
        .expect("running micro-gw")
}

/// The packages cargo compiled in a `micro-gw build -v` (its `Compiling <name> v…` lines).
fn compiled(output: &Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("Compiling "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The shared target directory a `micro-gw build -v` names.
fn target_dir(output: &Output) -> PathBuf {
    let out = String::from_utf8_lossy(&output.stdout);
    out.lines()
        .find_map(|line| line.strip_prefix("micro-gw: [verbose] shared target directory: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no target directory in:\n{out}"))
}

/// The runtime compiled with `flag`: the name of its dep-info file in `target`
/// (`release/deps/mgw_runtime-<hash>.d`, the cargo unit), found by the variable rustc lists
/// there (`# env-dep:MGW_RUNTIME_PGO=<flag>`), which makes cargo compile it again when the flag
/// changes.
fn runtime_unit(target: &Path, flag: &str) -> String {
    let wanted = format!("# env-dep:MGW_RUNTIME_PGO={flag}");
    let deps = target.join("release").join("deps");
    let found: Vec<String> = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("mgw_runtime-") && name.ends_with(".d"))
        .filter(|name| {
            std::fs::read_to_string(deps.join(name))
                .is_ok_and(|text| text.lines().any(|line| line == wanted))
        })
        .collect();
    assert_eq!(found.len(), 1, "{wanted} in {}: {found:?}", deps.display());
    found.into_iter().next().unwrap_or_default()
}

/// `--version` of a gateway binary.
fn version(binary: &Path) -> String {
    let out = Command::new(binary).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_alone_is_compiled_with_the_gateways_own_profile() {
    if let Err(err) = micro_gw::pgo::llvm_profdata(Path::new(".")) {
        // .ci/run installs rustup's llvm-tools: there a missing tool fails the test.
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{err}");
        eprintln!("skipped: {err}");
        return;
    }
    let be = backend::spawn("tuned", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let init = toolkit(dir.path(), &["init", "tuned"]);
    assert!(init.status.success(), "{}", text(&init));
    let project = dir.path().join("tuned");
    write_file(
        &project.join("api_definitions"),
        "api.yaml",
        &format!(
            "openapi: 3.0.0
info: {{title: Tuned, version: '1'}}
x-wso2-basePath: /tuned
x-wso2-disable-security: true
x-wso2-production-endpoints: {{urls: ['{}']}}
paths:
  /ping: {{get: {{}}}}
",
            be.url()
        ),
    );
    let binary = project.join("target").join("tuned");
    let profiles = std::path::absolute(project.join("target").join("pgo")).unwrap();

    // The default build first: whatever it lacks in the shared target directory is compiled
    // now, so that what the profile-guided builds compile is theirs alone.
    let out = toolkit(dir.path(), &["build", "tuned"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !version(&binary).contains("compiled with"),
        "{}",
        version(&binary)
    );

    // Step 1: the runtime and the gateway's crate, instrumented; nothing else compiled.
    let generated = toolkit(dir.path(), &["build", "tuned", "--profile-generate", "-v"]);
    assert!(generated.status.success(), "{}", text(&generated));
    assert!(
        String::from_utf8_lossy(&generated.stdout)
            .contains("the runtime is compiled again, instrumented"),
        "{}",
        text(&generated)
    );
    let both: BTreeSet<String> = ["mgw-gateway", "mgw-runtime"].map(String::from).into();
    assert_eq!(compiled(&generated), both, "{}", text(&generated));
    let generated_unit = runtime_unit(
        &target_dir(&generated),
        &format!("-Cprofile-generate={}", profiles.display()),
    );
    let instrumented = version(&binary);
    assert!(
        instrumented.ends_with(&format!(
            "; compiled with -Cprofile-generate={})",
            profiles.display()
        )),
        "{instrumented}"
    );

    // Step 2: traffic, then SIGTERM: the gateway writes its counts where it was built to.
    for entry in std::fs::read_dir(&profiles).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let mut gw = GatewayProcess::start(&binary, &[], false);
    for _ in 0..50 {
        let reply = client::get(&format!("http://{}/tuned/ping", gw.http)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-backend"), Some("tuned"));
    }
    gw.terminate();
    let status = gw.wait_exit(Duration::from_secs(20)).expect("no exit");
    assert!(status.success(), "{status}");
    let raws = micro_gw::pgo::raw_profiles(&profiles).unwrap();
    assert_eq!(raws.len(), 1, "{raws:?}");

    // Step 3: the same two crates compiled with the merged profile, as the same cargo unit
    // (the profile names functions by the crate's identity), nothing else.
    let used = toolkit(dir.path(), &["build", "tuned", "--profile-use", "-v"]);
    assert!(used.status.success(), "{}", text(&used));
    assert_eq!(compiled(&used), both, "{}", text(&used));
    let profiled = version(&binary);
    let file = profiled
        .split("; compiled with -Cprofile-use=")
        .nth(1)
        .map(|rest| PathBuf::from(rest.trim_end_matches(')')))
        .unwrap_or_else(|| panic!("{profiled}"));
    assert_eq!(file.parent(), Some(profiles.as_path()), "{profiled}");
    assert!(file.is_file(), "{profiled}");
    let target = target_dir(&used);
    assert_eq!(
        runtime_unit(&target, &format!("-Cprofile-use={}", file.display())),
        generated_unit,
        "the profiled runtime is not the instrumented one's cargo unit"
    );
    let gw = GatewayProcess::start(&binary, &[], false);
    let reply = client::get(&format!("http://{}/tuned/ping", gw.http)).await;
    assert_eq!(reply.status, 200);
    drop(gw);

    // The same profile again: the profiled runtime is kept. The default build after it: its own
    // runtime was kept, and no profile in it. (The gateway's own crate, under a second to
    // compile, may be compiled again: the rest of the suite builds in the same target directory
    // meanwhile, and once made cargo find it stale here.)
    let again = toolkit(dir.path(), &["build", "tuned", "--profile-use", "-v"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !compiled(&again).contains("mgw-runtime"),
        "{}",
        text(&again)
    );
    assert_eq!(version(&binary), profiled);
    let default = toolkit(dir.path(), &["build", "tuned", "-v"]);
    assert!(default.status.success(), "{}", text(&default));
    assert!(
        !compiled(&default).contains("mgw-runtime"),
        "{}",
        text(&default)
    );
    assert!(
        !version(&binary).contains("compiled with"),
        "{}",
        version(&binary)
    );
}
