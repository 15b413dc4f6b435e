//! `mgw-echo-backend [--port N] [--name NAME]`: the test backend as a process, for the
//! quickstart and the benchmarks. Listens on 127.0.0.1 only; prints its URL, then serves
//! until interrupted.

use std::net::SocketAddr;

fn main() {
    let mut port = 0u16;
    let mut name = String::from("backend");
    let mut workers = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("mgw-echo-backend: {flag} needs a value");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--port" => port = value("--port").parse().unwrap_or_else(|_| usage()),
            "--name" => name = value("--name"),
            "--threads" => workers = value("--threads").parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if workers > 0 {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.build().expect("tokio runtime");
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let backend = match mgw_e2e::backend::spawn(&name, addr).await {
            Ok(backend) => backend,
            Err(err) => {
                eprintln!("mgw-echo-backend: cannot listen on {addr}: {err}");
                std::process::exit(1)
            }
        };
        println!("mgw-echo-backend '{name}' listening on {}", backend.url());
        let _ = tokio::signal::ctrl_c().await;
        drop(backend);
    });
}

fn usage() -> ! {
    eprintln!("usage: mgw-echo-backend [--port N] [--name NAME] [--threads N]");
    std::process::exit(2)
}
