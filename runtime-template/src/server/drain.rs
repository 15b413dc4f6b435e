//! The graceful stop of client connections: one [`Drain`] per accept loop, one [`Stop`] per
//! connection it accepts.
//!
//! When the stop comes, a connection finishes the request it is serving (its response says
//! `Connection: close`) and closes; one waiting for a request closes at once. hyper's
//! connections are told through their own `graceful_shutdown`, the lean HTTP/1.1 server
//! ([`super::h1`]) watches its [`Stop`] itself. [`Drain::shutdown`] returns once every
//! connection's [`Stop`] is dropped, that is once every connection has ended.
//!
//! hyper-util's `GracefulShutdown` does the same for hyper's connections only: its watcher
//! cannot be asked whether the stop has come, which the lean server needs.

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;

/// The stop signal of the connections one accept loop spawned.
pub struct Drain {
    signal: watch::Sender<()>,
}

/// One connection's view of its [`Drain`]: whether the stop has come. The drain waits for it
/// (and its clones) to be dropped.
#[derive(Clone)]
pub struct Stop {
    signal: watch::Receiver<()>,
    stopped: bool,
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    /// A drain no connection watches yet.
    pub fn new() -> Self {
        Drain {
            signal: watch::Sender::new(()),
        }
    }

    /// The [`Stop`] of a connection about to be served (one atomic increment).
    pub fn watcher(&self) -> Stop {
        Stop {
            signal: self.signal.subscribe(),
            stopped: false,
        }
    }

    /// Tells every connection to stop, then waits until all have ended. The caller bounds
    /// the wait (`listener.shutdown_timeout_seconds`).
    pub async fn shutdown(self) {
        self.signal.send_replace(());
        self.signal.closed().await;
    }
}

impl Stop {
    /// Resolves once the stop has come (at once if it already has).
    pub async fn stopped(&mut self) {
        if !self.stopped {
            // An error: the drain is gone, which is a stop too.
            let _ = self.signal.changed().await;
            self.stopped = true;
        }
    }

    /// Whether the stop has come, without waiting (an atomic load).
    pub fn has_stopped(&self) -> bool {
        self.stopped || self.signal.has_changed().unwrap_or(true)
    }

    /// Serves a hyper connection to its end; when the stop comes first, asks it to finish
    /// what it is doing and close (hyper's `graceful_shutdown`), then waits for that.
    pub async fn watch<C: GracefulConnection>(mut self, connection: C) -> Result<(), C::Error> {
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            // The connection first: bytes handed over with it (a request that arrived as the
            // stop came) are read before it is told to finish.
            biased;
            ended = connection.as_mut() => return ended,
            () = self.stopped() => {}
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The stop reaches every watcher, and the drain ends only when the last one is dropped.
    #[tokio::test]
    async fn the_drain_waits_for_every_connection() {
        let drain = Drain::new();
        let mut first = drain.watcher();
        let mut second = drain.watcher();
        assert!(!first.has_stopped());
        let waiting = tokio::spawn(async move {
            first.stopped().await;
            assert!(first.has_stopped());
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let shutdown = tokio::spawn(drain.shutdown());
        waiting.await.unwrap();
        second.stopped().await;
        assert!(second.has_stopped());
        assert!(!shutdown.is_finished(), "one watcher is still there");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .expect("the drain ends once every watcher is gone")
            .unwrap();
    }
}
