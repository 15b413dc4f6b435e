//! The access log's bounded queue and its writer thread. A request hands its record over with
//! a non-blocking `try_send`; when the queue is full the record is dropped and counted, and a
//! warning with the count is logged at most once per [`DROP_REPORT_INTERVAL`]. The writer
//! renders records in batches and writes each batch with one call, so its lines never
//! interleave with the `tracing` lines on the same standard output.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{self, RouteTemplates};
use super::AccessRecord;
use crate::config::AccessLogFormat;
use crate::model::GatewayModel;

/// The shortest time between two "lines dropped" warnings.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Bytes rendered before the writer writes them out, even with more records waiting.
const BATCH_BYTES: usize = 64 * 1024;

/// The request side of the access log: where finished records go.
#[derive(Debug)]
pub struct AccessLog {
    queue: SyncSender<Box<AccessRecord>>,
    drops: Arc<Drops>,
}

/// Counts records the full queue turned away, and says so in the log now and then.
#[derive(Debug)]
pub struct Drops {
    capacity: usize,
    /// Every drop since start-up.
    total: AtomicU64,
    /// Drops not yet reported in a warning.
    unreported: AtomicU64,
    /// Milliseconds after `epoch` of the last warning (0: none yet).
    last_report_ms: AtomicU64,
    epoch: Instant,
}

impl Drops {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            total: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            last_report_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Counts one dropped record; the first drop of an interval logs the warning.
    fn count(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.unreported.fetch_add(1, Ordering::Relaxed);
        // Never 0, so that 0 can mean "no warning yet".
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last_report_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= DROP_REPORT_INTERVAL.as_millis() as u64;
        if due
            && self
                .last_report_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.report();
        }
    }

    /// Logs the drops not reported yet, if any.
    fn report(&self) {
        let dropped = self.unreported.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                "access log: {dropped} line(s) dropped because the queue was full (log.access_log_queue = {}; {} dropped since start-up): standard output is not read fast enough",
                self.capacity,
                self.total.load(Ordering::Relaxed)
            );
        }
    }

    /// Every record dropped since start-up.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

impl AccessLog {
    /// Starts the writer thread writing `format` lines to standard output, behind a queue of
    /// `capacity` records.
    pub fn start(
        format: AccessLogFormat,
        capacity: usize,
        model: &GatewayModel,
    ) -> std::io::Result<(Arc<AccessLog>, AccessLogWriter)> {
        Self::start_with(format, capacity, model, std::io::stdout())
    }

    /// [`AccessLog::start`] writing to `out`.
    pub fn start_with(
        format: AccessLogFormat,
        capacity: usize,
        model: &GatewayModel,
        out: impl Write + Send + 'static,
    ) -> std::io::Result<(Arc<AccessLog>, AccessLogWriter)> {
        let (queue, records) = mpsc::sync_channel(capacity);
        let (done_tx, done) = mpsc::sync_channel(1);
        let templates = RouteTemplates::new(model);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                write_all(&records, format, &templates, out);
                let _ = done_tx.send(());
            })?;
        let drops = Arc::new(Drops::new(capacity));
        let log = Arc::new(AccessLog {
            queue,
            drops: drops.clone(),
        });
        Ok((log, AccessLogWriter { done, drops }))
    }

    /// Queues `record` for the writer, or drops and counts it when the queue is full.
    pub fn send(&self, record: Box<AccessRecord>) {
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.drops.count(),
            // The writer is gone (only at exit): nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Records dropped since start-up.
    pub fn dropped(&self) -> u64 {
        self.drops.total()
    }
}

/// The writer thread, to be waited for at shutdown.
pub struct AccessLogWriter {
    done: Receiver<()>,
    drops: Arc<Drops>,
}

impl AccessLogWriter {
    /// Waits (up to `timeout`) for the writer to write every queued line, which it does once
    /// every [`AccessLog`] handle is gone, then reports drops not reported yet. Returns whether
    /// everything was written.
    pub fn finish(self, timeout: Duration) -> bool {
        let written = self.done.recv_timeout(timeout).is_ok();
        self.drops.report();
        if !written {
            tracing::warn!(
                "access log: lines still queued after {} s were not written (standard output is blocked)",
                timeout.as_secs()
            );
        }
        written
    }
}

/// The writer loop: waits for a record, renders every record already queued (up to a batch),
/// writes the batch, and ends when every sender is gone and the queue is empty.
fn write_all(
    records: &Receiver<Box<AccessRecord>>,
    format: AccessLogFormat,
    templates: &RouteTemplates,
    mut out: impl Write,
) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    while let Ok(first) = records.recv() {
        let mut next = Some(first);
        while let Some(record) = next.take() {
            match format {
                AccessLogFormat::Text => format::text(&mut batch, &record),
                AccessLogFormat::Json => format::json(&mut batch, &record, templates),
            }
            if batch.len() < BATCH_BYTES {
                next = records.try_recv().ok();
            }
        }
        // A failed write (standard output closed) loses these lines; later ones still try.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, StatusCode};
    use std::sync::Mutex;

    /// A writer that blocks until the test lets it go, then keeps what it is given.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Gate {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(i: usize) -> Box<AccessRecord> {
        Box::new(AccessRecord::new(
            "127.0.0.1:1".parse().unwrap(),
            Method::GET,
            format!("/r/{i}"),
            StatusCode::OK,
            Instant::now(),
        ))
    }

    fn model() -> GatewayModel {
        GatewayModel {
            format: crate::model::MODEL_FORMAT,
            project: "t".into(),
            apis: Vec::new(),
            endpoints: Vec::new(),
            pipelines: Vec::new(),
            express: Vec::new(),
        }
    }

    #[test]
    fn a_blocked_writer_makes_requests_drop_and_count_never_wait() {
        let gate = Gate::default();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Json, 4, &model(), gate.clone()).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            log.send(record(i));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "sending never blocks"
        );
        // The queue holds four, the blocked writer the few it took before blocking.
        let dropped = log.dropped();
        assert!(dropped >= 50, "{dropped}");
        gate.open();
        drop(log);
        assert!(writer.finish(Duration::from_secs(10)));
        let written = String::from_utf8(gate.written.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count() as u64, 100 - dropped);
        assert!(written.starts_with("{\"time\":"), "{written}");
        assert!(written.contains("\"path\":\"/r/0\""), "{written}");
    }

    #[test]
    fn finishing_writes_every_queued_line() {
        let gate = Gate::default();
        gate.open();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Text, 1000, &model(), gate.clone()).unwrap();
        for i in 0..500 {
            log.send(record(i));
        }
        drop(log);
        assert!(writer.finish(Duration::from_secs(10)));
        let written = String::from_utf8(gate.written.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 500);
        assert!(written.lines().last().unwrap().contains(" GET /r/499 200 "));
    }
}
