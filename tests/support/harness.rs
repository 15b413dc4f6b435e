//! Drives the real toolkit and the real gateway binaries: every test gets its own directory,
//! every gateway listens on free loopback ports (port 0, read back from its log), and every
//! process is stopped when its guard is dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `tests/fixtures` in the checkout: real configurations written by users of both gateway
/// families (see its README for where each comes from).
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests").join("fixtures")
}

/// The cargo profile directory the tests were built into (e.g. `target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("profile directory")
        .to_path_buf()
}

/// One cache (runtime sources + shared gateway target directory) for every test and run, so
/// the runtime compiles once. `MGW_CACHE_DIR` from the environment wins.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("MGW_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            profile_dir()
                .parent()
                .expect("target dir")
                .join("mgw-e2e-cache")
        })
}

/// Path of a toolkit binary (`micro-gw` or `gateway`). The e2e tests are the toolkit's
/// integration test, so cargo has built both, fresh, next to the test executable.
pub fn toolkit_bin(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Runs `micro-gw` with `args` in `dir`, with the shared cache.
pub fn micro_gw(dir: &Path, args: &[&str]) -> Output {
    micro_gw_with_env(dir, args, &[])
}

/// [`micro_gw`] with more environment variables (name, value).
pub fn micro_gw_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(toolkit_bin("micro-gw"))
        .args(with_build_variant(args))
        .current_dir(dir)
        .env("MGW_CACHE_DIR", cache_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running micro-gw")
}

/// Environment variable with more `micro-gw build` arguments for every build the tests run
/// through [`micro_gw`] (after each test's own): runs any suite against gateways built
/// another way, e.g. `MGW_E2E_BUILD_ARGS=--lto` (link-time optimised, each project's model
/// attached to a base gateway). Not the builds that `tests/e2e/docs.rs` runs as the docs
/// write them.
pub const BUILD_ARGS_ENV: &str = "MGW_E2E_BUILD_ARGS";

/// `args`, followed by [`BUILD_ARGS_ENV`]'s when they are a `build`.
pub fn with_build_variant(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if args.first() == Some(&"build") {
        if let Ok(extra) = std::env::var(BUILD_ARGS_ENV) {
            all.extend(extra.split_whitespace().map(str::to_string));
        }
    }
    all
}

/// stdout and stderr of a command, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("creating a directory");
    }
    std::fs::write(&path, text).expect("writing a file");
    path
}

/// The `[store] redis` the Redis suites write into a project's `conf/micro-gw.toml` before
/// `micro-gw build`: a variable that is unset when the gateways start (each test gives the
/// URL with `--store.redis` or `--rate_limit.redis`; without one the store is the file and
/// the counters are in memory). Naming Redis, even so, is what makes `micro-gw build` compile
/// the Redis client (the runtime's `redis` feature).
pub const REDIS_SETTING: &str = "redis = \"${MGW_E2E_UNSET_REDIS_URL:-}\"";

/// Writes [`REDIS_SETTING`] as `[store] redis` of `project`'s `conf/micro-gw.toml` (made by
/// `micro-gw init`, whose `[store]` comes before `[rate_limit]`).
pub fn name_redis_in_conf(project: &Path) {
    let conf = project.join("conf/micro-gw.toml");
    let text = std::fs::read_to_string(&conf).expect("reading conf/micro-gw.toml");
    let store = text.find("\n[store]\n").expect("a [store] section");
    let at = store
        + text[store..]
            .find("\nredis = \"\"\n")
            .expect("[store] redis = \"\"");
    let text = format!(
        "{}\n{REDIS_SETTING}\n{}",
        &text[..at],
        &text[at + "\nredis = \"\"\n".len()..]
    );
    std::fs::write(&conf, text).expect("writing conf/micro-gw.toml");
}

/// The `micro-gw build` argument the suites give every project that needs an optional part of
/// the runtime (storage, validation, OTLP, Redis): all of them, so those projects share one
/// compiled runtime instead of compiling it again for each combination (about 100 s each on
/// two cores, most of the suite's time before). Projects that need none keep the default
/// build, what most users run; the generated `Cargo.toml` still names only what a project
/// needs, which the suites check.
pub const ALL_PARTS: &str = "--features=all";

/// `micro-gw init` + `build` of a project made from `definitions` (file name, content);
/// panics with the toolkit's output on failure. Returns the binary.
pub fn build_project(dir: &Path, name: &str, definitions: &[(&str, &str)]) -> PathBuf {
    build_project_with(dir, name, definitions, &[])
}

/// [`build_project`] with more `micro-gw build` arguments (e.g. [`ALL_PARTS`]).
pub fn build_project_with(
    dir: &Path,
    name: &str,
    definitions: &[(&str, &str)],
    build_args: &[&str],
) -> PathBuf {
    build_project_with_env(dir, name, definitions, build_args, &[])
}

/// [`build_project_with`], the build run with more environment variables (name, value).
pub fn build_project_with_env(
    dir: &Path,
    name: &str,
    definitions: &[(&str, &str)],
    build_args: &[&str],
    env: &[(&str, &str)],
) -> PathBuf {
    let init = micro_gw(dir, &["init", name]);
    assert!(init.status.success(), "init failed\n{}", text(&init));
    for (file, content) in definitions {
        write_file(&dir.join(name).join("api_definitions"), file, content);
    }
    let mut args = vec!["build", name];
    args.extend_from_slice(build_args);
    let build = micro_gw_with_env(dir, &args, env);
    assert!(build.status.success(), "build failed\n{}", text(&build));
    let binary = dir.join(name).join("target").join(name);
    assert!(
        binary.is_file(),
        "no binary at {}\n{}",
        binary.display(),
        text(&build)
    );
    binary
}

/// Environment variable with settings arguments given to every gateway the tests start,
/// before each test's own (which win): runs any suite in another configuration, e.g.
/// `MGW_E2E_GATEWAY_ARGS="--listener.runtime=thread-per-core --listener.worker_threads=2"`.
pub const GATEWAY_ARGS_ENV: &str = "MGW_E2E_GATEWAY_ARGS";

/// The thread-per-core runtime with two workers (tests/e2e/thread_per_core.rs).
pub const THREAD_PER_CORE: &[&str] = &[
    "--listener.runtime=thread-per-core",
    "--listener.worker_threads=2",
];

thread_local! {
    static VARIANT: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Gateways started with [`VARIANT`]'s arguments.
    static STARTED_WITH_VARIANT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `test` with `args` given to every gateway it starts on this thread (before the test's
/// own arguments, which win): the same test in another configuration. The gateways must be
/// started on the calling thread, as a `#[tokio::test]` body is; a test that started none
/// there fails (it would otherwise pass without testing the configuration).
pub fn with_gateway_args<R>(args: &[&str], test: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            VARIANT.with(|v| v.borrow_mut().clear());
        }
    }
    VARIANT.with(|v| *v.borrow_mut() = args.iter().map(|a| a.to_string()).collect());
    STARTED_WITH_VARIANT.with(|n| n.set(0));
    let _reset = Reset;
    let result = test();
    assert!(
        STARTED_WITH_VARIANT.with(|n| n.get()) > 0,
        "no gateway was started on this thread with {args:?}"
    );
    result
}

/// The variant's arguments: [`GATEWAY_ARGS_ENV`]'s, then [`with_gateway_args`]'s.
fn variant_args() -> Vec<String> {
    let mut args: Vec<String> = std::env::var(GATEWAY_ARGS_ENV)
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    VARIANT.with(|v| {
        let variant = v.borrow();
        if !variant.is_empty() {
            STARTED_WITH_VARIANT.with(|n| n.set(n.get() + 1));
        }
        args.extend(variant.iter().cloned());
    });
    args
}

/// Spawns `command`, waiting out `ETXTBSY` for up to 5 s. A binary this test process has just
/// written (a test that copies a gateway, as an image would hold it) cannot be executed while
/// any process still has it open for writing, and a child that another test's thread forks in
/// that moment inherits the open file until it calls `exec`: a Linux race every
/// multi-threaded program that writes and then runs a file meets (rust-lang/rust#114554).
pub fn spawn_executable(command: &mut Command) -> std::io::Result<Child> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match command.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// Waits (bounded by `timeout`) until every reader thread has reached its stream's end, as
/// each does once the process that wrote it has exited.
pub(crate) fn read_to_the_end(readers: &[std::thread::JoinHandle<()>], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while readers.iter().any(|reader| !reader.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running gateway process; killed when dropped.
pub struct GatewayProcess {
    child: Child,
    /// The plain HTTP listener.
    pub http: SocketAddr,
    /// The HTTPS listener.
    pub https: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    /// The threads that read its standard output and error into `logs`; each ends at its
    /// stream's end.
    readers: Vec<std::thread::JoinHandle<()>>,
    /// When the process was spawned.
    pub spawned: Instant,
}

impl GatewayProcess {
    /// Starts `binary` (directly, or through the `gateway` launcher) on free loopback ports
    /// and waits (bounded) until both listeners are up.
    pub fn start(binary: &Path, extra_args: &[String], via_launcher: bool) -> GatewayProcess {
        Self::start_with_env(binary, extra_args, via_launcher, &[])
    }

    /// Like [`GatewayProcess::start`], with extra environment variables for that process.
    pub fn start_with_env(
        binary: &Path,
        extra_args: &[String],
        via_launcher: bool,
        env: &[(&str, &str)],
    ) -> GatewayProcess {
        let mut command = if via_launcher {
            let mut c = Command::new(toolkit_bin("gateway"));
            c.arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command
            .args([
                "--listener.host=127.0.0.1",
                "--listener.http_port=0",
                "--listener.https_port=0",
                // Gateways of parallel tests must not all take the default 9797.
                "--metrics.port=0",
            ])
            .args(variant_args())
            .args(extra_args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = spawn_executable(&mut command).expect("starting the gateway");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    logs.lock().expect("log lock").push(line);
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (http, https) = {
                let lines = logs.lock().expect("log lock");
                let ready = lines.iter().any(|l| l.contains("; ready in "));
                let http = find_addr(&lines, "http://");
                // A project with only an Express Gateway configuration opens no WSO2
                // listeners: once the gateway says it is ready, its first listener stands in.
                let https = find_addr(&lines, "https://").or(if ready { http } else { None });
                (http, https)
            };
            if let (Some(http), Some(https)) = (http, https) {
                return GatewayProcess {
                    child,
                    http,
                    https,
                    logs,
                    readers,
                    spawned,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                read_to_the_end(&readers, Duration::from_secs(2));
                panic!(
                    "the gateway exited with {status} before listening:\n{}",
                    logs.lock().expect("log lock").join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the gateway did not start within 20 s:\n{}",
                    logs.lock().expect("log lock").join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the gateway printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log lock").clone()
    }

    /// Waits (bounded) until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `timeout` for the process to exit, then (up to 2 s more) until everything
    /// it printed is in [`GatewayProcess::logs`].
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Its last lines may still be in the pipes when it has exited: `logs` holds
                // them once the readers have reached the streams' end.
                read_to_the_end(&self.readers, Duration::from_secs(2));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A field of `/proc/<pid>/status` in kB (e.g. `VmRSS`, `VmHWM`).
    pub fn memory_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("reading /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{field} not in /proc status"))
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_addr(lines: &[String], scheme: &str) -> Option<SocketAddr> {
    lines.iter().find_map(|line| {
        let rest = line.split("listener is active on ").nth(1)?;
        rest.strip_prefix(scheme)?.trim().parse().ok()
    })
}

/// The threads of process `pid`: each one's name (`/proc/<pid>/task/<tid>/comm`) and its
/// `/proc/<pid>/task/<tid>` folder, sorted by name; empty where there is no `/proc`.
pub fn threads(pid: u32) -> Vec<(String, PathBuf)> {
    let mut found: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| {
                    let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
                    Some((name.trim().to_string(), task.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// A loopback port that is free now, for a process that must be given its port before it
/// starts (a gateway's `--express_gateway.http_port=…`, a `redis-server --port`). Another
/// process may take it before that one binds; servers started by the harness itself bind
/// port 0 instead.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    listener.local_addr().expect("address").port()
}

/// Waits (at most `within`) for a gateway that must refuse to start, started with its stderr
/// piped: its exit status and what it wrote on stderr. Kills it and panics if it is still
/// running at the deadline.
pub fn wait_for_refusal(mut child: Child, within: Duration) -> (ExitStatus, String) {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the gateway") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the gateway was still running after {within:?}: it should have refused to start"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (status, stderr)
}

/// Sockets bound by [`closed_port`], held until the test process ends.
static HELD_PORTS: std::sync::Mutex<Vec<tokio::net::TcpSocket>> = std::sync::Mutex::new(Vec::new());

/// A loopback port that refuses connections: bound without listening (a connection to it is
/// reset: "connection refused"), and held so until the test process ends. A port bound and
/// closed again could be handed to another test's server binding port 0, which would then
/// answer where the test expects a refusal (a collector that is down, a dead upstream).
pub fn closed_port() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("binding a port");
    let port = socket.local_addr().expect("address").port();
    HELD_PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(socket);
    port
}
