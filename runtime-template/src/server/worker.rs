//! Which worker thread is running, and state kept once per worker so that the request path
//! of one core never writes a cache line another core writes.
//!
//! In the thread-per-core runtime (`listener.runtime = "thread-per-core"`) worker `i` marks
//! its thread with [`set_index`] as it starts, and a request stays on that thread from accept
//! to the end of its response. Other threads (the work-stealing runtime's workers, the
//! control thread, tests) get a number of their own the first time they ask for it.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The next number for a thread that was not given one.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Marks the calling thread as worker `index` (a thread-per-core worker, as it starts).
pub fn set_index(index: usize) {
    INDEX.with(|slot| slot.set(Some(index)));
}

/// The calling thread's worker number: the one given by [`set_index`], else a number handed
/// out on the thread's first call (one shared counter, read once per thread).
pub fn index() -> usize {
    INDEX.with(|slot| match slot.get() {
        Some(index) => index,
        None => {
            let index = NEXT.fetch_add(1, Ordering::Relaxed);
            slot.set(Some(index));
            index
        }
    })
}

/// A value on a cache line of its own (128 bytes: two 64-byte lines, as the adjacent-line
/// prefetcher of x86 CPUs pulls lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per worker, each on its own cache lines. A thread uses the slot of its
/// [`index`] (modulo the number of slots): with one slot per thread-per-core worker, no two
/// workers touch the same slot. Readers that need the whole (a gauge's sum at scrape time)
/// walk [`PerCore::iter`].
#[derive(Debug)]
pub struct PerCore<T> {
    slots: Box<[Padded<T>]>,
}

impl<T> PerCore<T> {
    /// `count` slots (at least one), each made by `make`.
    pub fn new(count: usize, mut make: impl FnMut() -> T) -> Self {
        PerCore {
            slots: (0..count.max(1)).map(|_| Padded(make())).collect(),
        }
    }

    /// The calling thread's slot.
    pub fn local(&self) -> &T {
        // `slots` is never empty, so the remainder is always an index into it.
        let index = index() % self.slots.len();
        match self.slots.get(index) {
            Some(slot) => &slot.0,
            None => &self.slots[0].0,
        }
    }

    /// Every slot.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|slot| &slot.0)
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Never true: there is always at least one slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl<T: Default> Default for PerCore<T> {
    /// One slot.
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
        assert_eq!(values, [1, 2, 3]);
        assert_eq!(std::mem::align_of::<Padded<AtomicUsize>>(), 128);
    }

    #[test]
    fn a_thread_keeps_its_number_and_no_slot_count_is_zero() {
        let first = index();
        assert_eq!(index(), first);
        let one = PerCore::new(0, || 7u8);
        assert_eq!(one.len(), 1);
        assert_eq!(*one.local(), 7);
    }
}
