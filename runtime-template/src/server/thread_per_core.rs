//! The thread-per-core runtime (`listener.runtime = "thread-per-core"`), as nginx's workers:
//! N OS threads, each running its own single-threaded tokio runtime with its own listening
//! socket on every API listener.
//!
//! - **Accepting.** Each listener's address is bound N times with `SO_REUSEPORT`; the kernel
//!   spreads new connections over the N sockets (by a hash of the connection's addresses), so
//!   no accept queue, lock or channel is shared between workers.
//! - **Serving.** A connection, its requests, the h2 streams and the upstream connections they
//!   open all run as tasks of the worker that accepted it: a request never changes thread.
//!   Per-core state is in [`super::worker::PerCore`] slots or blocks a worker allocates: the
//!   idle upstream connections (one stack per worker per origin, [`crate::proxy::pool`]),
//!   every metric series the request path writes ([`crate::telemetry::metrics`]: counters,
//!   histograms, the in-flight and open-connection gauges, summed at scrape time).
//! - **Shared on purpose.** The connection limit (`limits.max_connections`, one semaphore
//!   for the gateway: one atomic operation per connection, not per request, and the limit
//!   stays exact), and the state that is the gateway's by definition (rate-limit counters,
//!   the consumer store, token caches, the access-log queue). Still shared per request: the
//!   reference counts of the `Arc<Gateway>` and `Arc<Site>` the hyper service clones
//!   (docs/benchmarks.md, "Issue 16: scaling").
//! - **Pinning** (`listener.pin_workers`). Worker `i` is pinned to the `i`-th CPU of the
//!   process's affinity mask (what `taskset` or a cgroup cpuset leaves it), so its runtime,
//!   its cache lines and its sockets' softirq work stay on one CPU; the control thread stays
//!   unpinned. Fewer allowed CPUs than workers is a start-up error ([`PinError`]).
//! - **Stopping.** The control thread (which runs the admin and metrics listeners and waits
//!   for the stop signal) tells every worker to stop accepting; each closes its sockets, drains
//!   its connections within `listener.shutdown_timeout_seconds`, ends its runtime and reports
//!   whether everything finished in time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::{
    accept_failed, admit, spawn_plain, spawn_tls, BindError, ConnectionGauges, ServeError,
};
use crate::gateway::{Gateway, Site};

/// `listener.pin_workers = true` with fewer CPUs to run on than workers.
#[derive(Debug, thiserror::Error)]
#[error("listener.pin_workers = true pins each of the {workers} thread-per-core workers (listener.worker_threads) to a CPU of its own, but this process may run on {count} CPU(s) ({allowed}): set listener.worker_threads to {count} or fewer (0: one per CPU), give the process more CPUs (taskset, the container's cpuset), or set listener.pin_workers = false")]
pub struct PinError {
    workers: usize,
    count: usize,
    allowed: String,
}

/// The CPUs `workers` workers are pinned to: the first `workers` CPUs this process may run on,
/// in number order (worker `i` on the `i`-th).
pub fn cpus_for(workers: usize) -> Result<Vec<core_affinity::CoreId>, PinError> {
    let allowed = core_affinity::get_core_ids().unwrap_or_default();
    if allowed.len() < workers.max(1) {
        return Err(PinError {
            workers,
            count: allowed.len(),
            allowed: cpu_list(&allowed),
        });
    }
    Ok(allowed.into_iter().take(workers.max(1)).collect())
}

/// `cpus` as the log and errors show them: `0,1,2` (`none` when empty).
pub fn cpu_list(cpus: &[core_affinity::CoreId]) -> String {
    if cpus.is_empty() {
        return "none".to_string();
    }
    cpus.iter()
        .map(|cpu| cpu.id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The pending-connection queue of each socket (tokio's `TcpListener::bind` uses the same).
const BACKLOG: u32 = 1024;

/// One API listener as the workers serve it: one socket per worker.
pub struct Listener {
    /// The listening sockets, one per worker, all bound to the same address.
    pub sockets: Vec<std::net::TcpListener>,
    /// The TLS acceptor of an HTTPS listener.
    pub tls: Option<TlsAcceptor>,
    /// What it serves.
    pub site: Arc<Site>,
    /// Its `mgw_connections_open` gauges.
    pub(super) gauges: ConnectionGauges,
}

/// What every worker uses, made once.
pub struct Shared {
    /// The gateway.
    pub gateway: Arc<Gateway>,
    /// Client connection settings (limits, timeouts, h2).
    pub builder: Arc<auto::Builder<TokioExecutor>>,
    /// The lean HTTP/1.1 server's limits (the same as the builder's).
    pub limits: super::h1::Limits,
    /// The gateway-wide connection limit.
    pub connections: Arc<Semaphore>,
    /// `limits.max_connections`, for the refusal's log line.
    pub max_connections: usize,
    /// Time a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Time in-flight requests get after the stop.
    pub shutdown_timeout: Duration,
}

/// Binds `cores` listening sockets to `addr`, all with `SO_REUSEPORT`. The address is first
/// bound alone, without the option, and released: a port another process listens on (even
/// one that set `SO_REUSEPORT` too, and would otherwise share it) is refused as it is with the
/// work-stealing runtime, and port 0 becomes one free port that all the sockets then share.
/// Must run inside a tokio runtime (the sockets are handed to the workers' runtimes).
pub async fn bind(
    addr: SocketAddr,
    cores: usize,
    what: &str,
    setting: &str,
) -> Result<Vec<std::net::TcpListener>, BindError> {
    let failed = |source| BindError {
        what: what.to_string(),
        addr,
        setting: setting.to_string(),
        source,
    };
    let socket = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        socket.set_reuseaddr(true)?;
        Ok::<_, std::io::Error>(socket)
    };
    let addr = {
        let probe = socket().map_err(failed)?;
        probe.bind(addr).map_err(failed)?;
        probe.local_addr().map_err(failed)?
    };
    (0..cores.max(1))
        .map(|_| {
            let socket = socket()?;
            reuse_port(&socket)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)?.into_std()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn reuse_port(socket: &TcpSocket) -> std::io::Result<()> {
    socket.set_reuseport(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn reuse_port(_: &TcpSocket) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "listener.runtime = \"thread-per-core\" needs SO_REUSEPORT (Linux and other Unix systems); use \"work-stealing\"",
    ))
}

/// Starts `cores` worker threads serving `listeners` (no thread when there is no listener),
/// worker `i` pinned to `pins[i]` when there are pins ([`cpus_for`]). Each answers on its receiver, once it has stopped (after `stop` turns true), whether every
/// connection it had ended within the shutdown timeout.
pub fn start(
    listeners: Vec<Listener>,
    shared: Shared,
    cores: usize,
    pins: Option<Vec<core_affinity::CoreId>>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<oneshot::Receiver<bool>>, ServeError> {
    if listeners.is_empty() {
        return Ok(Vec::new());
    }
    // Hand each worker its socket of every listener.
    let mut per_worker: Vec<Vec<(std::net::TcpListener, usize)>> =
        (0..cores).map(|_| Vec::new()).collect();
    let mut served = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        for (socket, worker) in listener.sockets.into_iter().zip(per_worker.iter_mut()) {
            worker.push((socket, index));
        }
        served.push(Served {
            tls: listener.tls,
            site: listener.site,
            gauges: listener.gauges,
        });
    }
    let served: Arc<[Served]> = served.into();
    let shared = Arc::new(shared);
    let mut done = Vec::with_capacity(cores);
    for (index, sockets) in per_worker.into_iter().enumerate() {
        let (report, answer) = oneshot::channel();
        let served = served.clone();
        let shared = shared.clone();
        let stop = stop.clone();
        let pin = pins.as_ref().and_then(|pins| pins.get(index).copied());
        std::thread::Builder::new()
            .name(format!("mgw-worker-{index}"))
            .spawn(move || {
                super::worker::set_index(index);
                if let Some(cpu) = pin {
                    if !core_affinity::set_for_current(cpu) {
                        tracing::warn!(
                            "worker {index} could not be pinned to CPU {} (listener.pin_workers): it runs unpinned",
                            cpu.id
                        );
                    }
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        tracing::error!("worker {index} cannot start its runtime: {err}");
                        return;
                    }
                };
                // This thread runs this runtime only, until it ends.
                super::timer::reuse_here();
                let drained = runtime.block_on(work(sockets, served, shared, stop));
                super::timer::stop_reuse();
                // Tasks past the timeout hold access-log handles: end them before answering,
                // so the writer can see its queue close.
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = report.send(drained);
            })
            .map_err(|source| ServeError::Worker { index, source })?;
        done.push(answer);
    }
    Ok(done)
}

/// What a listener serves, without its sockets.
struct Served {
    tls: Option<TlsAcceptor>,
    site: Arc<Site>,
    gauges: ConnectionGauges,
}

/// One worker: accepts on its sockets until `stop`, then drains its connections.
async fn work(
    sockets: Vec<(std::net::TcpListener, usize)>,
    served: Arc<[Served]>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut listeners = Vec::with_capacity(sockets.len());
    for (socket, index) in sockets {
        match TcpListener::from_std(socket) {
            Ok(listener) => listeners.push((listener, index)),
            Err(err) => tracing::error!("a worker cannot serve one of its listeners: {err}"),
        }
    }
    let graceful = super::drain::Drain::new();
    let mut last_refusal_log: Option<Instant> = None;
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listeners, &mut next) => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, peer, index) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                accept_failed(err).await;
                continue;
            }
        };
        let Some(listener) = served.get(index) else {
            continue;
        };
        let Some(permit) = admit(
            &shared.connections,
            &mut last_refusal_log,
            shared.max_connections,
        ) else {
            continue;
        };
        let gauges = listener.gauges.local();
        match &listener.tls {
            None => spawn_plain(
                &shared.gateway,
                &listener.site,
                &shared.builder,
                shared.limits,
                graceful.watcher(),
                stream,
                peer,
                (permit, gauges),
            ),
            Some(acceptor) => spawn_tls(
                &shared.gateway,
                &listener.site,
                &shared.builder,
                graceful.watcher(),
                acceptor.clone(),
                (shared.handshake_timeout, shared.limits.header_timeout),
                stream,
                peer,
                (permit, gauges),
            ),
        }
    }
    drop(listeners);
    tokio::time::timeout(shared.shutdown_timeout, graceful.shutdown())
        .await
        .is_ok()
}

/// The next connection on any of `listeners` (with the listener's index), trying them in turn
/// from `next` so that a busy listener cannot starve the others.
async fn accept(
    listeners: &[(TcpListener, usize)],
    next: &mut usize,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr, usize)> {
    std::future::poll_fn(|cx| {
        let count = listeners.len();
        for offset in 0..count {
            let at = (*next + offset) % count;
            let Some((listener, index)) = listeners.get(at) else {
                continue;
            };
            if let Poll::Ready(accepted) = listener.poll_accept(cx) {
                *next = at + 1;
                return Poll::Ready(accepted.map(|(stream, peer)| (stream, peer, *index)));
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sockets share one port (port 0 becomes one free port), and a port already served by
    /// another listener is refused even though the sockets ask for `SO_REUSEPORT`.
    #[tokio::test]
    async fn the_workers_share_one_port_and_a_taken_port_is_refused() {
        let sockets = bind(
            "127.0.0.1:0".parse().unwrap(),
            3,
            "HTTP",
            "listener.http_port",
        )
        .await
        .unwrap();
        assert_eq!(sockets.len(), 3);
        let port = sockets[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(sockets
            .iter()
            .all(|s| s.local_addr().unwrap().port() == port));
        let again = bind(
            sockets[0].local_addr().unwrap(),
            2,
            "HTTP",
            "listener.http_port",
        )
        .await
        .unwrap_err();
        assert!(
            again.to_string().contains("change listener.http_port"),
            "{again}"
        );
        // Connections reach the sockets: each one is accepted by one of them.
        let listeners: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(i, s)| (TcpListener::from_std(s).unwrap(), i))
            .collect();
        let addr = listeners[0].0.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut next = 0;
        let (_, _, index) = accept(&listeners, &mut next).await.unwrap();
        assert!(index < 3);
    }
}
