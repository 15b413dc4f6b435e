//! Which worker thread is running, and state kept once per worker so that the request path
//! of one core never writes a cache line another core writes.
//!
//! In the thread-per-core runtime (`listener.runtime = "thread-per-core"`) worker `i` marks
//! its thread with [`set_index`] as it starts, and a request stays on that thread from accept
//! to the end of its response; the default runtime with one worker marks its one thread as
//! worker 0. Other threads (the work-stealing runtime's workers, the control thread, tests)
//! get a number of their own the first time they ask for it, and share slots: only a marked
//! worker is its slot's only writer.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

thread_local! {
    static NUMBER: Cell<Option<Number>> = const { Cell::new(None) };
}

/// A thread's worker number, and whether [`set_index`] gave it (a marked worker).
#[derive(Debug, Clone, Copy)]
struct Number {
    index: usize,
    marked: bool,
}

/// The next number for a thread that was not given one.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The gateway's worker count ([`set_count`]); 0 until it is set.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Records how many worker threads the gateway runs (`listener.worker_threads`, 0 read as one
/// per CPU), once at start-up before its state is built: per-worker state made where the count
/// is not passed down (the token caches) is laid out for it ([`count`]).
pub fn set_count(workers: usize) {
    COUNT.store(workers, Ordering::Relaxed);
}

/// The count [`set_count`] recorded, else the CPUs the process may use (tests, tools).
pub fn count() -> usize {
    match COUNT.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        workers => workers,
    }
}

/// Marks the calling thread as worker `index` (a thread-per-core worker as it starts, or the
/// one thread of the default runtime with one worker).
///
/// The caller promises that no other thread is marked with the same `index` while this one
/// writes the per-worker state of the same gateway: slot `index` of a [`PerCore`] then has
/// this thread as its only writer, which lets counters be added to without a locking
/// instruction ([`PerCore::local_sole`]).
pub fn set_index(index: usize) {
    NUMBER.with(|slot| {
        slot.set(Some(Number {
            index,
            marked: true,
        }))
    });
}

/// The calling thread's number and whether it was marked ([`set_index`]); an unmarked thread
/// gets a number on its first call (one shared counter, read once per thread).
fn number() -> Number {
    NUMBER.with(|slot| match slot.get() {
        Some(number) => number,
        None => {
            let number = Number {
                index: NEXT.fetch_add(1, Ordering::Relaxed),
                marked: false,
            };
            slot.set(Some(number));
            number
        }
    })
}

/// The calling thread's worker number: the one given by [`set_index`], else a number handed
/// out on the thread's first call (one shared counter, read once per thread).
pub fn index() -> usize {
    number().index
}

/// The number [`set_index`] gave the calling thread, `None` on a thread it did not mark (the
/// request path asks [`PerCore::local_sole`] or [`slot`] instead, which read it once).
#[cfg(test)]
fn marked() -> Option<usize> {
    let number = number();
    number.marked.then_some(number.index)
}

/// A value on a cache line of its own (128 bytes: two 64-byte lines, as the adjacent-line
/// prefetcher of x86 CPUs pulls lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per worker, each on its own cache lines, in two halves of `count` slots each.
///
/// - A thread marked as worker `i < count` ([`set_index`]: the thread-per-core workers, the
///   default runtime's one thread) uses slot `i` of the first half, and is the only thread
///   that does ([`PerCore::local_sole`]).
/// - Any other thread (the work-stealing runtime's workers, the control thread, tests, a
///   marked index past `count`) uses slot `index() % count` of the second half, which such
///   threads may share.
///
/// So no two marked workers touch the same slot, and no other thread touches theirs.
/// Readers that need the whole (a gauge's sum at scrape time) walk [`PerCore::iter`].
#[derive(Debug)]
pub struct PerCore<T> {
    /// `2 * owned` slots: the marked workers' first, the shared ones after.
    slots: Box<[Padded<T>]>,
    /// How many slots each half has (at least one).
    owned: usize,
}

impl<T> PerCore<T> {
    /// `count` slots (at least one) for marked workers and as many shared ones, each made by
    /// `make`.
    pub fn new(count: usize, mut make: impl FnMut() -> T) -> Self {
        let owned = owned_slots(count);
        PerCore {
            slots: (0..2 * owned).map(|_| Padded(make())).collect(),
            owned,
        }
    }

    /// The calling thread's slot.
    pub fn local(&self) -> &T {
        self.local_sole().0
    }

    /// The calling thread's slot, and `true` when the thread is that slot's only writer (a
    /// marked worker's own slot): a counter there can then be added to with a plain load and
    /// store ([`add_relaxed`]) instead of a locking read-modify-write, and concurrent readers
    /// still see whole values.
    pub fn local_sole(&self) -> (&T, bool) {
        let (index, sole) = slot_index(number(), self.owned);
        // `index` is below `2 * owned`, the slots' length; the fallback is never taken.
        match self.slots.get(index) {
            Some(slot) => (&slot.0, sole),
            None => (&self.slots[0].0, false),
        }
    }

    /// Every slot (both halves).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|slot| &slot.0)
    }

    /// How many slots there are (both halves: twice the count given to [`PerCore::new`], at
    /// least two).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Never true: there are always at least two slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// How many slots each half of a [`PerCore`] laid out for `count` workers has: at least one,
/// and few enough that both halves can be counted.
pub fn owned_slots(count: usize) -> usize {
    count.clamp(1, usize::MAX / 2)
}

/// Where a thread's slot is among `2 * owned` ([`PerCore`]'s layout), and whether the thread
/// is its only writer.
fn slot_index(number: Number, owned: usize) -> (usize, bool) {
    if number.marked && number.index < owned {
        (number.index, true)
    } else {
        (owned + number.index % owned, false)
    }
}

/// The calling thread's slot among `count` per-worker slots laid out as [`PerCore`]'s
/// (`2 * count`, at least two: marked workers' own, then shared ones), and whether the
/// thread is its only writer. For per-worker state kept outside a [`PerCore`] (a route's
/// series, allocated by each worker on first use).
pub fn slot(count: usize) -> (usize, bool) {
    slot_index(number(), owned_slots(count))
}

/// Adds `n` to `cell` (wrapping), for a counter written by one thread only when `sole`
/// says so: then with a relaxed load and store, not a `lock`-prefixed add (about 20 cycles
/// that wait for the stores before it). With `sole` false (threads may share the cell) the
/// add is an atomic read-modify-write, so no count is lost.
pub fn add_relaxed(cell: &AtomicU64, n: u64, sole: bool) {
    if sole {
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    } else {
        cell.fetch_add(n, Ordering::Relaxed);
    }
}

impl<T: Default> Default for PerCore<T> {
    /// One slot in each half.
    fn default() -> Self {
        PerCore::new(1, T::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_uses_its_own_slot() {
        let slots = std::sync::Arc::new(PerCore::new(3, || AtomicUsize::new(0)));
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    set_index(i);
                    slots.local().fetch_add(i + 1, Ordering::Relaxed);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let values: Vec<usize> = slots.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        assert_eq!(values, [1, 2, 3, 0, 0, 0]);
        assert_eq!(std::mem::align_of::<Padded<AtomicUsize>>(), 128);
    }

    #[test]
    fn a_thread_keeps_its_number_and_no_slot_count_is_zero() {
        let first = index();
        assert_eq!(index(), first);
        let one = PerCore::new(0, || 7u8);
        assert_eq!(one.len(), 2);
        assert_eq!(*one.local(), 7);
    }

    #[test]
    fn only_a_marked_worker_is_its_slots_sole_writer() {
        let number = |index, marked| Number { index, marked };
        // marked workers below the count: their own slot, alone
        assert_eq!(slot_index(number(0, true), 2), (0, true));
        assert_eq!(slot_index(number(1, true), 2), (1, true));
        // a marked index past the count, and unmarked threads: the shared half
        assert_eq!(slot_index(number(2, true), 2), (2, false));
        assert_eq!(slot_index(number(3, true), 2), (3, false));
        assert_eq!(slot_index(number(0, false), 2), (2, false));
        assert_eq!(slot_index(number(5, false), 2), (3, false));
        assert_eq!(slot_index(number(usize::MAX, false), 1), (1, false));
        // on this (unmarked) test thread
        assert_eq!(marked(), None);
        let slots = PerCore::new(4, || 0u8);
        let (_, sole) = slots.local_sole();
        assert!(!sole);
        assert!(slot(4).0 >= 4 && !slot(4).1);
    }

    #[test]
    fn an_unmarked_thread_never_writes_a_marked_workers_slot() {
        // One worker (as the bench runs): the control thread and others must not share its slot.
        let slots = std::sync::Arc::new(PerCore::new(1, || AtomicU64::new(0)));
        let worker = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                set_index(0);
                assert_eq!(marked(), Some(0));
                for _ in 0..100_000 {
                    let (cell, sole) = slots.local_sole();
                    assert!(sole);
                    add_relaxed(cell, 1, sole);
                }
            })
        };
        let others: Vec<_> = (0..3)
            .map(|_| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        let (cell, sole) = slots.local_sole();
                        assert!(!sole);
                        add_relaxed(cell, 1, sole);
                    }
                })
            })
            .collect();
        worker.join().unwrap();
        for other in others {
            other.join().unwrap();
        }
        let values: Vec<u64> = slots.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        // not one count lost: the worker's plain adds had its slot to themselves
        assert_eq!(values, [100_000, 300_000]);
    }
}
