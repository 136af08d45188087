//! Choice points: every nondeterministic choice the spec allows goes
//! through one [`Chooser`], with candidates in a deterministic order.

use alloc::vec::Vec;

/// Where a choice is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChoicePoint {
    /// `Store.tick`: which ready thread runs (candidates in waiting order).
    Tick,
    /// `WaitableSet.get_pending_event`: which member's event is delivered
    /// (candidates in join order).
    SetEvent,
    /// `Task.request_cancellation`: which cancellable thread receives it.
    CancelTarget,
    /// A synchronous-typed `canon_lift`: which ready thread of the instance
    /// it resumes (candidates in waiting order).
    SyncLiftCandidate,
    /// `Thread.wait_until`: whether a ready condition returns at once
    /// (1) instead of switching (0).
    WaitUntilEarly,
}

/// Picks one of `n > 1` candidates at a choice point.
///
/// `Send`, so that a [`Store`](crate::Store) (which owns its chooser) can
/// move between threads, as a server's worker pool needs.
pub trait Chooser: Send {
    /// Returns an index below `n`. Out-of-range answers are reduced modulo `n`.
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize;

    /// Whether this chooser always answers 0 without looking at `n`: the
    /// store may then stop at the first candidate instead of counting them
    /// all (a tick among many waiting threads stays O(1)).
    fn always_first(&self) -> bool {
        false
    }
}

/// The reference's deterministic profile: always the first candidate, and
/// `wait_until` always switches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Deterministic;

impl Chooser for Deterministic {
    fn choose(&mut self, _: ChoicePoint, _: usize) -> usize {
        0
    }

    fn always_first(&self) -> bool {
        true
    }
}

/// Seeded pseudo-random choices (xorshift64*), reproducible from the seed.
#[derive(Clone, Debug)]
pub struct Seeded {
    state: u64,
}

impl Seeded {
    /// A chooser seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Seeded {
            state: seed ^ 0x9e37_79b9_7f4a_7c15 | 1,
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Chooser for Seeded {
    fn choose(&mut self, _: ChoicePoint, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Replays a recorded list of choices, then records what a fallback
/// chooser picks. Its [`Replay::trace`] is every choice made, with how many
/// candidates there were: the input of a schedule explorer and a replay string.
#[derive(Debug)]
pub struct Replay<C> {
    prefix: Vec<usize>,
    pos: usize,
    fallback: C,
    trace: Vec<(usize, usize)>,
}

impl<C: Chooser> Replay<C> {
    /// Replays `prefix`, then asks `fallback`.
    pub fn new(prefix: Vec<usize>, fallback: C) -> Self {
        Replay {
            prefix,
            pos: 0,
            fallback,
            trace: Vec::new(),
        }
    }

    /// Every choice made so far: (chosen index, number of candidates).
    pub fn trace(&self) -> &[(usize, usize)] {
        &self.trace
    }

    /// The choices as a compact replay string (`"0.2.1"`).
    pub fn to_replay_string(&self) -> alloc::string::String {
        use core::fmt::Write;
        let mut s = alloc::string::String::new();
        for (i, (c, _)) in self.trace.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            let _ = write!(s, "{c}");
        }
        s
    }

    /// Parses a replay string made by [`Replay::to_replay_string`].
    pub fn parse(s: &str) -> Option<Vec<usize>> {
        if s.is_empty() {
            return Some(Vec::new());
        }
        s.split('.').map(|p| p.parse().ok()).collect()
    }
}

impl<C: Chooser> Chooser for Replay<C> {
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        let c = if let Some(&c) = self.prefix.get(self.pos) {
            c % n
        } else {
            self.fallback.choose(point, n) % n
        };
        self.pos += 1;
        self.trace.push((c, n));
        c
    }
}

impl<C: Chooser + ?Sized> Chooser for alloc::boxed::Box<C> {
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        (**self).choose(point, n)
    }

    fn always_first(&self) -> bool {
        (**self).always_first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_round_trips_and_seeded_is_reproducible() {
        let mut r = Replay::new(alloc::vec![1, 2], Deterministic);
        assert_eq!(r.choose(ChoicePoint::Tick, 3), 1);
        assert_eq!(r.choose(ChoicePoint::Tick, 2), 0);
        assert_eq!(r.choose(ChoicePoint::SetEvent, 4), 0);
        assert_eq!(r.to_replay_string(), "1.0.0");
        assert_eq!(
            Replay::<Deterministic>::parse("1.0.0"),
            Some(alloc::vec![1, 0, 0])
        );
        let a: Vec<usize> = {
            let mut s = Seeded::new(7);
            (0..8).map(|_| s.choose(ChoicePoint::Tick, 5)).collect()
        };
        let b: Vec<usize> = {
            let mut s = Seeded::new(7);
            (0..8).map(|_| s.choose(ChoicePoint::Tick, 5)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&c| c < 5));
    }
}
