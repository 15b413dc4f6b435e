//! The access log's bounded queue and its writer thread. A request hands its record over by
//! value, never waiting: it appends the record to its own thread's buffer (one per worker
//! thread, [`Buffer`]: a vector behind a lock that only its thread and, once per round, the
//! writer take, so the lock is uncontended and no cache line is shared between workers). The
//! writer swaps each buffer for an empty one it kept from the round before, so in the steady
//! state nothing is allocated per record, and a buffer grown by a burst is freed once emptied.
//! `log.access_log_queue` is shared evenly among the buffers: a record that finds its buffer
//! full is dropped and counted, and a warning with the count is logged at most once per
//! [`DROP_REPORT_INTERVAL`]. The writer renders records in batches and writes each batch with
//! one call, so its lines never interleave with the `tracing` lines on the same standard
//! output.
//!
//! The writer is not woken per record (a futex call and a context switch per request): while
//! lines come, it takes what has queued every [`WRITE_INTERVAL`], or at once when a buffer is
//! half full. After [`IDLE_TICKS`] empty rounds it sleeps until the next record wakes it, so an
//! idle gateway does not tick. When the last [`AccessLog`] handle goes, the writer writes what
//! is left and ends ([`AccessLogWriter::finish`]).

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::format::{LineWriter, RouteTemplates, WallClock};
use super::{AccessRecord, RouteTable};
use crate::config::AccessLogFormat;
use crate::model::GatewayModel;

/// The shortest time between two "lines dropped" warnings.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// How long a line may wait for the writer while lines keep coming (the longest delay between
/// a response's end and its line; a buffer half full is taken at once).
pub const WRITE_INTERVAL: Duration = Duration::from_millis(10);

/// Empty rounds of [`WRITE_INTERVAL`] after which the writer sleeps until a record wakes it.
pub const IDLE_TICKS: u32 = 100;

/// Bytes rendered before the writer writes them out, even with more records waiting.
const BATCH_BYTES: usize = 64 * 1024;

/// Records an emptied buffer may keep room for (about 70 KB); a larger one is freed, so a
/// burst's memory is given back once written.
const KEPT_CAPACITY: usize = 256;

/// One worker thread's records not yet taken by the writer, on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Buffer(Mutex<Vec<AccessRecord>>);

impl Buffer {
    /// The records (a panic while the lock was held leaves them as they were).
    fn lock(&self) -> MutexGuard<'_, Vec<AccessRecord>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the request side and the writer share.
#[derive(Debug)]
struct Shared {
    /// One per thread that serves requests; a thread's is its number modulo their count.
    buffers: Box<[Buffer]>,
    /// The writer sleeps until a record arrives (it found nothing for [`IDLE_TICKS`] rounds).
    asleep: AtomicBool,
    /// The last [`AccessLog`] handle is gone: the writer writes what is left and ends.
    closed: AtomicBool,
}

impl Shared {
    /// `count` buffers (at least one).
    fn new(count: usize) -> Self {
        Self {
            buffers: (0..count.max(1)).map(|_| Buffer::default()).collect(),
            asleep: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// The buffer of the calling thread.
    fn own_buffer(&self) -> Option<&Buffer> {
        // Exactly as many buffers as threads, so each gets `access_log_queue / threads`: a
        // power of two with a mask would leave buffers no thread uses and shrink the others'
        // share (9 threads, 16 buffers: 56 % of the queue usable). One division per record.
        self.buffers
            .get(thread_number().checked_rem(self.buffers.len())?)
    }

    /// Whether no buffer holds a record.
    fn is_empty(&self) -> bool {
        self.buffers.iter().all(|buffer| buffer.lock().is_empty())
    }
}

thread_local! {
    /// The calling thread's number (`usize::MAX`: none yet), given in turn to the threads as
    /// they first log; the buffer a thread uses is its number modulo the buffers.
    static THREAD_NUMBER: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The next thread number to give.
static NEXT_THREAD_NUMBER: AtomicUsize = AtomicUsize::new(0);

fn thread_number() -> usize {
    THREAD_NUMBER.with(|number| {
        let mut n = number.get();
        if n == usize::MAX {
            n = NEXT_THREAD_NUMBER.fetch_add(1, Ordering::Relaxed);
            number.set(n);
        }
        n
    })
}

/// The request side of the access log: where finished records go.
#[derive(Debug)]
pub struct AccessLog {
    shared: Arc<Shared>,
    /// Records one buffer may hold: `log.access_log_queue` shared evenly (rounded up).
    share: usize,
    /// Half of `share` (at least 1): the record that fills a buffer to it wakes the writer.
    half: usize,
    drops: Arc<Drops>,
    writer: Thread,
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // No record can be sent any more: the writer takes what is left and ends.
        self.shared.closed.store(true, Ordering::SeqCst);
        self.writer.unpark();
    }
}

/// Counts records the full queue turned away, and says so in the log now and then.
#[derive(Debug)]
pub struct Drops {
    capacity: usize,
    /// Records one thread's buffer may hold (`capacity` shared by the threads).
    share: usize,
    /// Every drop since start-up.
    total: AtomicU64,
    /// Drops not yet reported in a warning.
    unreported: AtomicU64,
    /// Milliseconds after `epoch` of the last warning (0: none yet).
    last_report_ms: AtomicU64,
    epoch: Instant,
}

impl Drops {
    fn new(capacity: usize, share: usize) -> Self {
        Self {
            capacity,
            share,
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
                "access log: {dropped} line(s) dropped because the queue was full (log.access_log_queue = {}, {} per thread; {} dropped since start-up): standard output is not read fast enough",
                self.capacity,
                self.share,
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
    /// `capacity` records shared by `threads` buffers (the threads that serve requests: the
    /// workers and the thread that serves the admin listener).
    pub fn start(
        format: AccessLogFormat,
        capacity: usize,
        threads: usize,
        model: &GatewayModel,
    ) -> std::io::Result<(Arc<AccessLog>, AccessLogWriter)> {
        Self::start_with(format, capacity, threads, model, std::io::stdout())
    }

    /// [`AccessLog::start`] writing to `out`.
    pub fn start_with(
        format: AccessLogFormat,
        capacity: usize,
        threads: usize,
        model: &GatewayModel,
        out: impl Write + Send + 'static,
    ) -> std::io::Result<(Arc<AccessLog>, AccessLogWriter)> {
        let shared = Arc::new(Shared::new(threads));
        let (done_tx, done) = mpsc::sync_channel(1);
        let lines = LineWriter::new(RouteTemplates::new(model, |_api, template| template))
            .with_methods(&RouteTable::methods(model));
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                write_all(&writer_shared, format, lines, out);
                let _ = done_tx.send(());
            })?
            .thread()
            .clone();
        let share = capacity.max(1).div_ceil(shared.buffers.len());
        let drops = Arc::new(Drops::new(capacity, share));
        let log = Arc::new(AccessLog {
            shared,
            share,
            half: (share / 2).max(1),
            drops: drops.clone(),
            writer: writer.clone(),
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

    /// Appends `record` to the calling thread's buffer, or drops and counts it when that is
    /// full. Wakes the writer only when the buffer reaches half its share or the writer sleeps.
    pub fn send(&self, record: AccessRecord) {
        self.send_from(&mut Some(record));
    }

    /// [`AccessLog::send`] of the record in `slot`, moved from there into the buffer, leaving
    /// `None`.
    pub fn send_from(&self, slot: &mut Option<AccessRecord>) {
        let Some(buffer) = self.shared.own_buffer() else {
            *slot = None;
            return;
        };
        let mut records = buffer.lock();
        let queued = records.len() + 1;
        if queued > self.share {
            drop(records);
            *slot = None;
            self.drops.count();
            return;
        }
        records.extend(slot.take());
        drop(records);
        // Paired with the writer's store before its last look at the buffers (SeqCst, and
        // the buffer's lock): either it sees this record before it sleeps, or this sees it
        // asleep.
        let asleep = self.shared.asleep.load(Ordering::SeqCst)
            && self.shared.asleep.swap(false, Ordering::SeqCst);
        if asleep || queued == self.half {
            self.writer.unpark();
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

/// The writer loop: every [`WRITE_INTERVAL`] (or when woken), takes every buffer's records and
/// renders them, writing a batch each [`BATCH_BYTES`] and at the end of the round; sleeps after
/// [`IDLE_TICKS`] empty rounds; ends after the round that follows the last handle's going.
fn write_all(shared: &Shared, format: AccessLogFormat, mut lines: LineWriter, mut out: impl Write) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    // The records taken from one buffer; its room is handed to the next buffer.
    let mut taken: Vec<AccessRecord> = Vec::new();
    let mut idle = 0;
    loop {
        // Read before the buffers: once it is set, no record comes after this round's.
        let closed = shared.closed.load(Ordering::SeqCst);
        lines.set_clock(WallClock::now());
        let mut round = 0;
        for buffer in shared.buffers.iter() {
            {
                let mut records = buffer.lock();
                if records.is_empty() {
                    // Its room stays where it is used.
                    continue;
                }
                std::mem::swap(&mut *records, &mut taken);
            }
            round += taken.len();
            // Rendered where they lie, then dropped there (no copy out of the buffer).
            for record in &taken {
                match format {
                    AccessLogFormat::Text => lines.text(&mut batch, record),
                    AccessLogFormat::Json => lines.json(&mut batch, record),
                }
                if batch.len() >= BATCH_BYTES {
                    flush(&mut out, &mut batch);
                }
            }
            taken.clear();
            if taken.capacity() > KEPT_CAPACITY {
                taken = Vec::new();
            }
        }
        flush(&mut out, &mut batch);
        if closed {
            return;
        }
        idle = if round == 0 { idle + 1 } else { 0 };
        if idle < IDLE_TICKS {
            std::thread::park_timeout(WRITE_INTERVAL);
            continue;
        }
        // Nothing for a while: sleep until a sender sees `asleep` (see `AccessLog::send`),
        // unless a record came meanwhile or the last handle went.
        shared.asleep.store(true, Ordering::SeqCst);
        if shared.is_empty() && !shared.closed.load(Ordering::SeqCst) {
            std::thread::park();
        }
        shared.asleep.store(false, Ordering::SeqCst);
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
            "127.0.0.1".parse().unwrap(),
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
            AccessLog::start_with(AccessLogFormat::Json, 4, 1, &model(), gate.clone()).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            log.send(record(i));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "sending never blocks"
        );
        // One buffer (one thread) holds four, the blocked writer the few it took before
        // blocking.
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
        // The buffers hold records by value (docs/configuration.md gives the size of a
        // waiting line).
        let size = std::mem::size_of::<AccessRecord>();
        eprintln!("AccessRecord: {size} bytes");
        assert!(size <= 272, "{size} bytes");
    }

    #[test]
    fn finishing_writes_every_queued_line() {
        let gate = Gate::default();
        gate.open();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Text, 1000, 1, &model(), gate.clone()).unwrap();
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
            AccessLog::start_with(AccessLogFormat::Json, 1000, 1, &model(), gate.clone()).unwrap();
        for i in 1..=5 {
            log.send(record(i));
            // Far below half a buffer: no wake, the writer's own round takes it.
            assert!(
                wait_for_lines(&gate, i, WRITE_INTERVAL * 20),
                "line {i} within a few rounds"
            );
        }
        drop(log);
        assert!(writer.finish(Duration::from_secs(10)));
    }

    #[test]
    fn senders_wake_the_writer_only_at_half_a_buffer_or_when_it_sleeps() {
        // This thread plays the writer: whether it was unparked shows in how soon a park
        // returns.
        let woken = || {
            let parked = Instant::now();
            std::thread::park_timeout(Duration::from_millis(200));
            parked.elapsed() < Duration::from_millis(100)
        };
        let log = AccessLog {
            shared: Arc::new(Shared::new(1)),
            share: 6,
            half: 3,
            drops: Arc::new(Drops::new(6, 6)),
            writer: std::thread::current(),
        };
        log.send(record(1));
        assert!(!woken(), "1 of 6 queued");
        log.send(record(2));
        assert!(!woken(), "2 of 6 queued");
        log.send(record(3));
        assert!(woken(), "half the buffer");
        log.send(record(4));
        assert!(!woken(), "past half");
        log.shared.asleep.store(true, Ordering::SeqCst);
        log.send(record(5));
        assert!(woken(), "the writer sleeps");
        assert!(!log.shared.asleep.load(Ordering::SeqCst));
        log.send(record(6));
        assert!(!woken(), "awake again");
        log.send(record(7));
        assert_eq!(log.dropped(), 1, "6 of 6 queued: full");
        log.shared.buffers[0].lock().pop();
        log.send(record(8));
        assert_eq!(log.dropped(), 1, "one taken: room again");
        assert!(!log.shared.is_empty());
        drop(log);
        assert!(woken(), "the last handle is gone");
    }

    #[test]
    fn threads_keep_their_buffer_and_spread_over_the_buffers() {
        let shared = Shared::new(3);
        assert_eq!(shared.buffers.len(), 3, "one per thread");
        let mine = shared.own_buffer().map(|b| b as *const Buffer);
        assert_eq!(mine, shared.own_buffer().map(|b| b as *const Buffer));
        let numbers: Vec<usize> = (0..4)
            .map(|_| std::thread::spawn(thread_number).join().unwrap())
            .collect();
        for pair in numbers.windows(2) {
            assert_ne!(pair[0], pair[1], "{numbers:?}");
        }
    }

    /// The whole queue is usable: 9 threads (8 workers and the admin listener's) get a ninth
    /// each, not a sixteenth (the buffers were a power of two).
    #[test]
    fn the_queue_is_shared_by_exactly_the_threads() {
        let gate = Gate::default();
        gate.open();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Json, 8192, 9, &model(), gate).unwrap();
        assert_eq!(log.shared.buffers.len(), 9);
        assert_eq!(log.share, 911, "8192 / 9, rounded up");
        drop(log);
        assert!(writer.finish(Duration::from_secs(2)));
    }

    #[test]
    fn an_idle_writer_sleeps_until_the_next_record() {
        let gate = Gate::default();
        gate.open();
        let (log, writer) =
            AccessLog::start_with(AccessLogFormat::Json, 1000, 1, &model(), gate.clone()).unwrap();
        let until = Instant::now() + WRITE_INTERVAL * IDLE_TICKS * 5;
        while !log.shared.asleep.load(Ordering::SeqCst) {
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
