//! `micro-gw echo-backend`: a small HTTP backend that describes every request it receives, for
//! trying a gateway without an outside service (the quickstart, getting-started). It lives in
//! the toolkit so that trying micro-gw compiles no third program: its HTTP server crates are
//! the ones every gateway build compiles anyway, in the same shared target directory.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub mod respond;

/// Options of `micro-gw echo-backend`.
#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// The loopback port to listen on (0: a free one).
    pub port: u16,
    /// The name in every answer (`"backend"` field, `x-backend` header).
    pub name: String,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
}

/// Serves on 127.0.0.1 until interrupted; prints its URL
/// (`mgw-echo-backend '<name>' listening on http://127.0.0.1:<port>`) once listening.
pub fn run(options: &EchoOptions) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if options.threads > 0 {
        runtime.worker_threads(options.threads);
    }
    let runtime = runtime.build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("the listening address")?;
        println!(
            "mgw-echo-backend '{}' listening on http://{local}",
            options.name
        );
        let name: Arc<str> = options.name.as_str().into();
        tokio::select! {
            () = accept(listener, name) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

/// Accepts connections (HTTP/1.1 and h2c) forever.
async fn accept(listener: TcpListener, name: Arc<str>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let name = name.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond::handle(name.clone(), request));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request over a plain TCP connection: the answer describes it.
    #[test]
    fn echoes_a_request() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(accept(listener, "petstore-backend".into()));
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(b"POST /pet/42?verbose=true HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc")
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.contains("x-backend: petstore-backend"), "{answer}");
            let body = answer.split("\r\n\r\n").nth(1).unwrap();
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["method"], "POST");
            assert_eq!(json["path"], "/pet/42");
            assert_eq!(json["query"], "verbose=true");
            assert_eq!(json["body_bytes"], 3);
            assert_eq!(json["body_checksum"], 97 + 98 + 99);
        });
    }
}
