//! The gateway's own log (`tracing` to standard output: written by the thread that logs
//! until the gateway is ready, then by `tracing-appender`'s thread, see [`Output`]) and the
//! filter that chooses what it shows: `log.level` from the settings, or the `RUST_LOG`
//! environment variable when it is set. Both take `target=level` directives
//! (`tracing_subscriber::filter::Targets`): no span or field filters, so no regex engine.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;

/// The environment variable whose directives replace `log.level`.
pub const RUST_LOG: &str = "RUST_LOG";

/// The target of access-log lines (`access=off` in the filter turns the access log off).
pub const ACCESS_TARGET: &str = "access";

/// The filter: `rust_log` (the value of `RUST_LOG`) when set and not blank, else `level`
/// (`log.level`, checked when the settings were read). An unusable `RUST_LOG` is an error
/// naming it.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<Targets, String> {
    if let Some(directives) = rust_log.filter(|v| !v.trim().is_empty()) {
        return directives.trim().parse().map_err(|e| {
            format!(
                "{RUST_LOG}={directives:?} is not a list of log directives ({e}): use a level (error, warn, info, debug, trace) or comma-separated target=level pairs such as RUST_LOG=info,mgw_runtime=debug, or unset it to use log.level"
            )
        });
    }
    level.parse().map_err(|e| {
        format!("log.level = {level:?} is not a level ({e}): use error, warn, info, debug or trace")
    })
}

/// Whether `filter` lets access-log lines through (they are written at level `info`).
pub fn shows_access_log(filter: &Targets) -> bool {
    filter.would_enable(ACCESS_TARGET, &tracing::Level::INFO)
}

/// Lines of the gateway's own log that may wait for the writer thread; past that, new lines
/// are dropped (the writer is lossy, so a stalled stdout never blocks a request).
///
/// `tracing-appender`'s default is 128,000 lines, and its queue is an array allocated and
/// written in full when the writer starts: 4 MB of resident memory (a third of an idle
/// gateway's) for a log that writes a few lines at start-up and warnings after. The access
/// log has its own queue (`log.access_log_queue`); 1,024 lines take 32 kB.
pub const LOG_QUEUE_LINES: usize = 1024;

/// The name of the thread that writes the queued lines.
pub const WRITER_THREAD: &str = "log-writer";

const STARTING: u8 = 0;
const SERVING: u8 = 1;
const ENDED: u8 = 2;

/// Where the gateway's own log lines go, in three phases:
///
/// - **starting**, until [`Output::ready`]: the thread that logs a line writes it itself.
///   Nothing is served yet, so a slow standard output delays the start-up only, and the
///   start-up lines are out as soon as they are logged.
/// - **serving**: a line goes into a bounded, lossy queue ([`LOG_QUEUE_LINES`]) that a thread
///   of its own ([`WRITER_THREAD`], `tracing-appender`'s worker) writes out, so a stalled
///   standard output never blocks a request. That thread is started by the first line of
///   this phase, not before: a gateway that logs nothing while it serves (one worker, no
///   access log, no warning) keeps a single thread, as an nginx worker does, and glibc then
///   skips the bookkeeping of its cancellation points, two locking instructions around each
///   system call (glibc 2.36 `SYSCALL_CANCEL`; 8 of 64 locking instructions and 200 of 18,260
///   instructions a proxied `get1k` request: docs/benchmarks.md, "twenty-fifth pass"). If
///   the thread cannot be started, lines are written directly.
/// - **ended**, after [`Output::end`]: the queue is flushed (for up to about a second,
///   `tracing-appender`'s bound) and later lines are written directly again.
///
/// `W` is the destination: [`Stdout`] in the gateway, a clone for each direct line and one
/// for the writer thread.
pub struct Output<W> {
    writer: W,
    phase: AtomicU8,
    /// The queue, once the first line of the serving phase has started its thread (`None`
    /// inside when the thread could not be started).
    queue: OnceLock<Option<NonBlocking>>,
    /// Flushes and stops the writer thread when dropped.
    worker: Mutex<Option<WorkerGuard>>,
}

impl<W: Write + Clone + Send + 'static> Output<W> {
    /// An output in its starting phase.
    pub fn new(writer: W) -> Self {
        Output {
            writer,
            phase: AtomicU8::new(STARTING),
            queue: OnceLock::new(),
            worker: Mutex::new(None),
        }
    }

    /// Ends the starting phase: lines from now on are queued (no effect once ended).
    pub fn ready(&self) {
        let _ = self
            .phase
            .compare_exchange(STARTING, SERVING, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Ends the serving phase: waits (bounded) until the queued lines are written, and writes
    /// later lines directly.
    pub fn end(&self) {
        self.phase.store(ENDED, Ordering::Release);
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(worker);
    }

    /// Whether the writer thread has been started.
    pub fn queue_started(&self) -> bool {
        matches!(self.queue.get(), Some(Some(_)))
    }

    /// The queue, starting its thread on the first call.
    fn queue(&self) -> Option<&NonBlocking> {
        self.queue
            .get_or_init(|| {
                let builder = NonBlockingBuilder::default()
                    .buffered_lines_limit(LOG_QUEUE_LINES)
                    .lossy(true)
                    .thread_name(WRITER_THREAD);
                let writer = self.writer.clone();
                // `finish` panics when the thread cannot be spawned (out of threads or
                // memory): a log line must not end the request that logged it.
                let (queue, worker) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        builder.finish(writer)
                    }))
                    .ok()?;
                *self.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(worker);
                Some(queue)
            })
            .as_ref()
    }
}

impl<'a, W: Write + Clone + Send + 'static> MakeWriter<'a> for Output<W> {
    type Writer = Line<W>;

    fn make_writer(&'a self) -> Line<W> {
        if self.phase.load(Ordering::Acquire) == SERVING {
            if let Some(queue) = self.queue() {
                return Line::Queued(queue.clone());
            }
        }
        Line::Direct(self.writer.clone())
    }
}

/// The writer of one log line: the destination itself, or the queue.
pub enum Line<W> {
    /// Written by the calling thread.
    Direct(W),
    /// Handed to the writer thread (dropped when the queue is full).
    Queued(NonBlocking),
}

impl<W: Write> Write for Line<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Line::Direct(w) => w.write(buf),
            Line::Queued(q) => q.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Line::Direct(w) => w.write_all(buf),
            Line::Queued(q) => q.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Line::Direct(w) => w.flush(),
            Line::Queued(q) => q.flush(),
        }
    }
}

/// The process's standard output, as a cloneable writer; a line is written under its lock.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        std::io::stdout().lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// The subscriber's writer: the output [`init`] installed.
struct Installed(&'static Output<Stdout>);

impl<'a> MakeWriter<'a> for Installed {
    type Writer = Line<Stdout>;

    fn make_writer(&'a self) -> Line<Stdout> {
        self.0.make_writer()
    }
}

/// The output [`init`] installed, for [`ready`].
static OUTPUT: OnceLock<Output<Stdout>> = OnceLock::new();

/// Ends the log's starting phase ([`Output`]): called once the gateway's start-up lines are
/// written. No effect when [`init`] was not called.
pub fn ready() {
    if let Some(output) = OUTPUT.get() {
        output.ready();
    }
}

/// Ends the log's serving phase when dropped: the queued lines are written (bounded).
#[must_use = "dropping the guard ends the log's serving phase"]
pub struct LogGuard(Option<&'static Output<Stdout>>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(output) = self.0 {
            output.end();
        }
    }
}

/// Installs the global subscriber, writing to standard output through [`Output`]; the guard
/// flushes the queued lines when dropped. A second call installs nothing.
pub fn init(filter: Targets) -> LogGuard {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    if OUTPUT.set(Output::new(Stdout)).is_err() {
        return LogGuard(None);
    }
    let Some(output) = OUTPUT.get() else {
        return LogGuard(None);
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(Installed(output))
                .with_ansi(false),
        )
        .with(filter)
        .try_init();
    LogGuard(Some(output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing::Level;

    /// A write: its text and the name of the thread that made it.
    type Written = (String, Option<String>);

    /// A destination that remembers each write and the thread that made it.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Written>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let thread = std::thread::current().name().map(str::to_owned);
            let line = String::from_utf8_lossy(buf).into_owned();
            self.0.lock().unwrap().push((line, thread));
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Recorder {
        fn lines(&self) -> Vec<Written> {
            self.0.lock().unwrap().clone()
        }
    }

    fn log(output: &Output<Recorder>, line: &str) {
        output.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn start_up_lines_are_written_by_the_thread_that_logs_them_and_start_no_thread() {
        let recorder = Recorder::default();
        let output = Output::new(recorder.clone());
        log(&output, "listener is active\n");
        let here = std::thread::current().name().map(str::to_owned);
        assert_eq!(recorder.lines(), [("listener is active\n".into(), here)]);
        assert!(
            !output.queue_started(),
            "no writer thread before the gateway is ready"
        );
    }

    #[test]
    fn lines_after_ready_go_through_the_writer_thread_started_by_the_first_of_them() {
        let recorder = Recorder::default();
        let output = Output::new(recorder.clone());
        log(&output, "starting\n");
        output.ready();
        assert!(!output.queue_started(), "ready alone starts no thread");
        log(&output, "upstream refused\n");
        assert!(output.queue_started());
        log(&output, "draining\n");
        // Ending flushes the queue, then writes directly again.
        output.end();
        log(&output, "stopped\n");
        output.ready();
        log(&output, "after the end\n");
        let here = std::thread::current().name().map(str::to_owned);
        let writer = Some(WRITER_THREAD.to_owned());
        assert_eq!(
            recorder.lines(),
            [
                ("starting\n".into(), here.clone()),
                ("upstream refused\n".into(), writer.clone()),
                ("draining\n".into(), writer),
                ("stopped\n".into(), here.clone()),
                ("after the end\n".into(), here),
            ]
        );
    }

    #[test]
    fn a_full_queue_drops_lines_instead_of_blocking() {
        /// A destination that blocks until released.
        #[derive(Clone)]
        struct Stalled(Arc<(Mutex<bool>, std::sync::Condvar)>, Recorder);
        impl Write for Stalled {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let (open, released) = &*self.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = released.wait(open).unwrap();
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let recorder = Recorder::default();
        let output = Output::new(Stalled(gate.clone(), recorder.clone()));
        output.ready();
        let started = std::time::Instant::now();
        for i in 0..LOG_QUEUE_LINES * 3 {
            output
                .make_writer()
                .write_all(format!("{i}\n").as_bytes())
                .unwrap();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "a stalled output never blocks the thread that logs"
        );
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        output.end();
        let written = recorder.lines().len();
        assert!(
            written > 0 && written <= LOG_QUEUE_LINES + 2,
            "{written} lines written of {}: the queue holds {LOG_QUEUE_LINES}",
            LOG_QUEUE_LINES * 3
        );
    }

    #[test]
    fn rust_log_replaces_the_configured_level() {
        let conf = filter("warn", None).unwrap();
        assert!(!conf.would_enable("mgw_runtime", &Level::INFO));
        let env = filter("warn", Some("info,mgw_runtime::proxy=debug")).unwrap();
        assert!(env.would_enable("mgw_runtime", &Level::INFO));
        assert!(env.would_enable("mgw_runtime::proxy", &Level::DEBUG));
        assert!(!env.would_enable("mgw_runtime", &Level::DEBUG));
        // Blank is unset.
        let blank = filter("warn", Some("  ")).unwrap();
        assert!(!blank.would_enable("x", &Level::INFO));
    }

    #[test]
    fn an_unusable_rust_log_names_the_variable() {
        let err = filter("info", Some("loud=[")).unwrap_err();
        assert!(
            err.starts_with("RUST_LOG=\"loud=[\" is not a list of log directives"),
            "{err}"
        );
        assert!(err.contains("unset it"), "{err}");
    }

    #[test]
    fn the_access_target_follows_the_filter() {
        assert!(shows_access_log(&filter("info", None).unwrap()));
        assert!(!shows_access_log(&filter("warn", None).unwrap()));
        assert!(!shows_access_log(&filter("info,access=off", None).unwrap()));
        assert!(shows_access_log(
            &filter("warn", Some("warn,access=info")).unwrap()
        ));
    }
}
