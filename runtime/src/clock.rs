//! The host's clock and its timers.
//!
//! A store measures time with a clock ([`ClockKind`]): the real monotonic clock, or a
//! virtual one for tests, which stands still while anything can run and
//! jumps to the next timer's deadline when the store would otherwise be
//! idle (so a 30 ms sleep takes no real time and every run is the same).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// How a store tells time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockKind {
    /// The process's monotonic clock; timers wait for real.
    #[default]
    Real,
    /// A virtual clock starting at zero; waiting for a timer advances it
    /// to the timer's deadline at once.
    Virtual,
}

/// A store's clock: time since the store was created.
#[derive(Debug)]
pub(crate) struct Clock {
    kind: ClockKind,
    start: Instant,
    virtual_now: Duration,
}

impl Clock {
    pub(crate) fn new(kind: ClockKind) -> Self {
        Clock {
            kind,
            start: Instant::now(),
            virtual_now: Duration::ZERO,
        }
    }

    pub(crate) fn kind(&self) -> ClockKind {
        self.kind
    }

    /// Time since the store was created.
    pub(crate) fn now(&self) -> Duration {
        match self.kind {
            ClockKind::Real => self.start.elapsed(),
            ClockKind::Virtual => self.virtual_now,
        }
    }

    /// Waits until `deadline` (virtual: advances to it).
    pub(crate) fn wait_until(&mut self, deadline: Duration) {
        match self.kind {
            ClockKind::Real => {
                let now = self.start.elapsed();
                if deadline > now {
                    std::thread::sleep(deadline - now);
                }
            }
            ClockKind::Virtual => self.virtual_now = self.virtual_now.max(deadline),
        }
    }
}

/// Timers by deadline, first-come first-served among equal deadlines.
pub(crate) struct Timers<T> {
    heap: BinaryHeap<Reverse<(Duration, u64)>>,
    items: crate::idmap::IdMap<u64, T>,
    seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            items: crate::idmap::IdMap::default(),
            seq: 0,
        }
    }
}

impl<T> Timers<T> {
    pub(crate) fn push(&mut self, deadline: Duration, item: T) {
        self.seq += 1;
        self.heap.push(Reverse((deadline, self.seq)));
        self.items.insert(self.seq, item);
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((d, _))| *d)
    }

    /// Removes the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Duration) -> Option<T> {
        let Reverse((d, seq)) = *self.heap.peek()?;
        if d > now {
            return None;
        }
        self.heap.pop();
        self.items.remove(&seq)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_fifo_among_equals() {
        let mut t = Timers::default();
        t.push(Duration::from_millis(30), "a");
        t.push(Duration::from_millis(10), "b");
        t.push(Duration::from_millis(10), "c");
        assert_eq!(t.next_deadline(), Some(Duration::from_millis(10)));
        assert_eq!(t.pop_due(Duration::from_millis(9)), None);
        let now = Duration::from_millis(10);
        assert_eq!(t.pop_due(now), Some("b"));
        assert_eq!(t.pop_due(now), Some("c"));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.pop_due(Duration::from_millis(30)), Some("a"));
        assert!(t.is_empty());
    }

    #[test]
    fn virtual_clock_jumps_and_never_goes_back() {
        let mut c = Clock::new(ClockKind::Virtual);
        assert_eq!(c.now(), Duration::ZERO);
        c.wait_until(Duration::from_millis(30));
        assert_eq!(c.now(), Duration::from_millis(30));
        c.wait_until(Duration::from_millis(10));
        assert_eq!(c.now(), Duration::from_millis(30));
    }
}
