//! The access log's bounded queue and its writer thread. A request hands its record over by
//! value, never waiting: the queue is a channel whose slots come in blocks of 31, allocated as
//! it grows and freed as the writer empties them (no allocation per record, and no memory held
//! by an idle queue), bounded by a count of the records not yet taken. When that count reaches
//! `log.access_log_queue` the record is dropped and counted, and a warning with the count is
//! logged at most once per [`DROP_REPORT_INTERVAL`]. The writer
//! renders records in batches and writes each batch with one call, so its lines never
//! interleave with the `tracing` lines on the same standard output.
//!
//! The writer is not woken per record (a futex call and a context switch per request): while
//! lines come, it takes what has queued every [`WRITE_INTERVAL`], or at once when the queue is
//! half full. After [`IDLE_TICKS`] empty rounds it sleeps until the next record wakes it, so an
//! idle gateway does not tick.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::format::{LineWriter, RouteTemplates};
use super::AccessRecord;
use crate::config::AccessLogFormat;
use crate::model::GatewayModel;

/// The shortest time between two "lines dropped" warnings.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// How long a line may wait for the writer while lines keep coming (the longest delay between
/// a response's end and its line; a queue half full is taken at once).
pub const WRITE_INTERVAL: Duration = Duration::from_millis(10);

/// Empty rounds of [`WRITE_INTERVAL`] after which the writer sleeps until a record wakes it.
pub const IDLE_TICKS: u32 = 100;

/// Bytes rendered before the writer writes them out, even with more records waiting.
const BATCH_BYTES: usize = 64 * 1024;

/// The request side of the access log: where finished records go.
#[derive(Debug)]
pub struct AccessLog {
    // Declared before `wake`: fields drop in order, so the last handle closes the queue
    // before it wakes the writer to finish.
    queue: Sender<AccessRecord>,
    drops: Arc<Drops>,
    wake: WriterWake,
}

/// What the request side and the writer share to decide when the writer must be woken.
#[derive(Debug, Default)]
struct Pace {
    /// Records admitted and not yet taken by the writer: counted before they are sent, so
    /// never below the records in the channel; the queue's bound.
    queued: AtomicUsize,
    /// The writer sleeps until a record arrives (it found nothing for [`IDLE_TICKS`] rounds).
    asleep: AtomicBool,
}

/// Wakes the writer: when the queue reaches half its capacity, when the writer sleeps, and
/// once when the last [`AccessLog`] handle goes (so it writes what is left and ends).
#[derive(Debug)]
struct WriterWake {
    writer: Thread,
    pace: Arc<Pace>,
    /// The queue's capacity (`log.access_log_queue`).
    capacity: usize,
    /// Half the queue's capacity (at least 1).
    half: usize,
}

impl WriterWake {
    /// Counts one record in, before it is sent: its place in the queue (1 for the first), or
    /// `None` when the queue is full (nothing counted).
    fn admit(&self) -> Option<usize> {
        // SeqCst, paired with the writer's: either it sees this record before sleeping, or
        // `queued` below sees it asleep.
        let before = self.pace.queued.fetch_add(1, Ordering::SeqCst);
        if before >= self.capacity {
            self.pace.queued.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(before + 1)
    }

    /// Called after the record admitted at `place` is sent. Only an atomic load unless a wake
    /// is due.
    fn queued(&self, place: usize) {
        let asleep = self.pace.asleep.load(Ordering::SeqCst)
            && self.pace.asleep.swap(false, Ordering::SeqCst);
        if asleep || place == self.half {
            self.writer.unpark();
        }
    }
}

impl Drop for WriterWake {
    fn drop(&mut self) {
        self.writer.unpark();
    }
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
        let (queue, records) = mpsc::channel();
        let (done_tx, done) = mpsc::sync_channel(1);
        let lines = LineWriter::new(RouteTemplates::new(model, |_api, template| template));
        let pace = Arc::new(Pace::default());
        let writer_pace = pace.clone();
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                write_all(&records, format, lines, out, &writer_pace);
                let _ = done_tx.send(());
            })?
            .thread()
            .clone();
        let drops = Arc::new(Drops::new(capacity));
        let log = Arc::new(AccessLog {
            queue,
            drops: drops.clone(),
            wake: WriterWake {
                writer: writer.clone(),
                pace,
                capacity,
                half: (capacity / 2).max(1),
            },
        });
        Ok((
            log,
            AccessLogWriter {
                done,
                drops,
                writer,
            },
        ))
    }

    /// Queues `record` for the writer, or drops and counts it when the queue is full.
    pub fn send(&self, record: AccessRecord) {
        let Some(place) = self.wake.admit() else {
            self.drops.count();
            return;
        };
        // An error means the writer is gone (only at exit): nothing to do.
        if self.queue.send(record).is_ok() {
            self.wake.queued(place);
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
    writer: Thread,
}

impl AccessLogWriter {
    /// Waits (up to `timeout`) for the writer to write every queued line, which it does once
    /// every [`AccessLog`] handle is gone, then reports drops not reported yet. Returns whether
    /// everything was written.
    pub fn finish(self, timeout: Duration) -> bool {
        self.writer.unpark();
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

/// The writer loop: every [`WRITE_INTERVAL`] (or when woken), renders every record queued,
/// writing a batch each [`BATCH_BYTES`] and at the end; sleeps after [`IDLE_TICKS`] empty
/// rounds; ends when every sender is gone and the queue is empty.
fn write_all(
    records: &Receiver<AccessRecord>,
    format: AccessLogFormat,
    mut lines: LineWriter,
    mut out: impl Write,
    pace: &Pace,
) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    let mut idle = 0;
    loop {
        // Taken this round; taken and not yet subtracted from `pace.queued`.
        let (mut round, mut taken) = (0usize, 0usize);
        let closed = loop {
            match records.try_recv() {
                Ok(record) => {
                    match format {
                        AccessLogFormat::Text => lines.text(&mut batch, &record),
                        AccessLogFormat::Json => lines.json(&mut batch, &record),
                    }
                    round += 1;
                    taken += 1;
                    if batch.len() >= BATCH_BYTES {
                        flush(&mut out, &mut batch);
                        // Rendered and written: room for new records.
                        pace.queued.fetch_sub(taken, Ordering::Relaxed);
                        taken = 0;
                    }
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        pace.queued.fetch_sub(taken, Ordering::Relaxed);
        flush(&mut out, &mut batch);
        if closed {
            return;
        }
        idle = if round == 0 { idle + 1 } else { 0 };
        if idle < IDLE_TICKS {
            std::thread::park_timeout(WRITE_INTERVAL);
            continue;
        }
        // Nothing for a while: sleep until a sender sees `asleep` (SeqCst on both sides, see
        // `WriterWake::queued`), unless a record came meanwhile.
        pace.asleep.store(true, Ordering::SeqCst);
        if pace.queued.load(Ordering::SeqCst) == 0 {
            std::thread::park();
        }
        pace.asleep.store(false, Ordering::SeqCst);
        idle = 0;
    }
}

/// Writes `batch` out (if any) and empties it. A failed write (standard output closed) loses
/// these lines; later ones still try.
fn flush(out: &mut impl Write, batch: &mut Vec<u8>) {
    if !batch.is_empty() {
        let _ = out.write_all(batch).and_then(|()| out.flush());
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

    fn record(i: usize) -> AccessRecord {
        AccessRecord::new(
            "127.0.0.1:1".parse().unwrap(),
            Method::GET,
            format!("/r/{i}").as_str().into(),
            StatusCode::OK,
            Instant::now(),
        )
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
    fn the_queue_s_slots_stay_small() {
        // The queue holds records by value in blocks of 31 slots, about 10 KB each (the
        // figure docs/logging.md gives).
        let size = std::mem::size_of::<AccessRecord>();
        eprintln!("AccessRecord: {size} bytes");
        assert!(size <= 320, "{size} bytes");
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

    /// Waits (bounded) until `gate` holds `lines` lines.
    fn wait_for_lines(gate: &Gate, lines: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if gate
                .written
                .lock()
                .unwrap()
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                >= lines
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn lines_are_written_within_the_interval_while_they_come() {
        let gate = Gate::default();
        gate.open();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Json, 1000, &model(), gate.clone()).unwrap();
        for i in 1..=5 {
            log.send(record(i));
            // Far below half the queue: no wake, the writer's own round takes it.
            assert!(
                wait_for_lines(&gate, i, WRITE_INTERVAL * 20),
                "line {i} within a few rounds"
            );
        }
        drop(log);
        assert!(writer.finish(Duration::from_secs(10)));
    }

    #[test]
    fn senders_wake_the_writer_only_at_half_the_queue_or_when_it_sleeps() {
        // This thread plays the writer: whether it was unparked shows in how soon a park
        // returns.
        let woken = || {
            let parked = Instant::now();
            std::thread::park_timeout(Duration::from_millis(200));
            parked.elapsed() < Duration::from_millis(100)
        };
        let wake = WriterWake {
            writer: std::thread::current(),
            pace: Arc::default(),
            capacity: 6,
            half: 3,
        };
        let queued = || {
            let place = wake.admit().expect("room");
            wake.queued(place);
        };
        queued();
        assert!(!woken(), "1 of 6 queued");
        queued();
        assert!(!woken(), "2 of 6 queued");
        queued();
        assert!(woken(), "half the queue");
        queued();
        assert!(!woken(), "past half");
        wake.pace.asleep.store(true, Ordering::SeqCst);
        queued();
        assert!(woken(), "the writer sleeps");
        assert!(!wake.pace.asleep.load(Ordering::SeqCst));
        queued();
        assert!(!woken(), "awake again");
        assert_eq!(wake.admit(), None, "6 of 6 queued: full");
        wake.pace.queued.fetch_sub(1, Ordering::Relaxed);
        assert_eq!(wake.admit(), Some(6), "one taken: room again");
        drop(wake);
        assert!(woken(), "the last handle is gone");
    }

    #[test]
    fn an_idle_writer_sleeps_until_the_next_record() {
        let gate = Gate::default();
        gate.open();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Json, 1000, &model(), gate.clone()).unwrap();
        let until = Instant::now() + WRITE_INTERVAL * IDLE_TICKS * 5;
        while !log.wake.pace.asleep.load(Ordering::SeqCst) {
            assert!(Instant::now() < until, "the writer sleeps once idle");
            std::thread::sleep(WRITE_INTERVAL);
        }
        log.send(record(1));
        assert!(wait_for_lines(&gate, 1, Duration::from_secs(2)));
        // Dropping the last handle wakes it to finish, asleep or not.
        std::thread::sleep(WRITE_INTERVAL * (IDLE_TICKS + 20));
        drop(log);
        assert!(writer.finish(Duration::from_secs(2)));
    }
}
