//! `Store.waiting`: the threads that wait for a condition, in the order
//! they started waiting, without scanning the ones that cannot be ready.
//!
//! A waiting thread is *active* (its condition may hold: the tick
//! evaluates it) or *parked* on a key (a waitable set without a pending
//! event, a waitable without one, a subtask that has not resolved): its
//! condition cannot hold until the key is notified, and the tick skips it.
//! Parking is only ever an optimisation: a parked thread is not ready, and
//! a notified key makes its threads active again with their original place
//! in the waiting order, so the candidates of a tick are exactly those of a
//! scan of the whole list, in the same order.
//!
//! Active threads are kept sorted by the sequence number of the moment
//! they started waiting; removal marks an entry stale (the thread's slot
//! generation moves on) and stale entries are compacted in bulk. Parked
//! threads form an intrusive doubly-linked list per key.

use alloc::vec::Vec;

use crate::ids::{SetId, ThreadId, WaitableId};

/// What a parked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A pending event in the set.
    Set(SetId),
    /// A pending event of, or the resolution of, the waitable.
    Waitable(WaitableId),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    gen: u32,
    t: ThreadId,
}

const NONE: u32 = u32::MAX;

/// A [`Key`] in one word: a set's key, or a waitable's with the top bit
/// set; `NONE` when the thread is not parked. (Slab keys stay far below
/// 2^31: each one is an object of tens of bytes.)
const WAITABLE_BIT: u32 = 1 << 31;

impl Key {
    #[inline]
    fn pack(self) -> u32 {
        let k = match self {
            Key::Set(s) => s.0,
            Key::Waitable(w) => w.0 | WAITABLE_BIT,
        };
        debug_assert!(k != NONE && (k & !WAITABLE_BIT) < WAITABLE_BIT - 1);
        k
    }

    #[inline]
    fn unpack(k: u32) -> Key {
        if k & WAITABLE_BIT == 0 {
            Key::Set(SetId(k))
        } else {
            Key::Waitable(WaitableId(k & !WAITABLE_BIT))
        }
    }
}

/// 24 bytes per thread that ever waited (path 7 of the benchmarks).
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The waiting order; 0 when the thread does not wait.
    seq: u64,
    /// Bumped whenever the thread leaves the active list: older entries are stale.
    gen: u32,
    /// The packed [`Key`] it is parked on (in that key's list), or `NONE`.
    key: u32,
    prev: u32,
    next: u32,
}

impl Slot {
    #[inline]
    fn parked(&self) -> bool {
        self.key != NONE
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            seq: 0,
            gen: 0,
            key: NONE,
            prev: NONE,
            next: NONE,
        }
    }
}

/// `Store.waiting`.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    next_seq: u64,
    /// Active entries sorted by `seq`, some stale.
    active: Vec<Entry>,
    /// Live entries of `active`.
    live: usize,
    /// Parked threads.
    parked: usize,
    slots: Vec<Slot>,
    /// Head of the parked list of each set / waitable (a thread key, or NONE).
    set_heads: Vec<u32>,
    w_heads: Vec<u32>,
}

impl WaitQueue {
    fn slot(&mut self, t: ThreadId) -> &mut Slot {
        let k = t.key();
        if self.slots.len() <= k {
            self.slots.resize(k + 1, Slot::default());
        }
        &mut self.slots[k]
    }

    fn is_live(&self, e: &Entry) -> bool {
        let s = &self.slots[e.t.key()];
        s.seq == e.seq && s.gen == e.gen && !s.parked()
    }

    fn head(&mut self, key: Key) -> &mut u32 {
        let (v, k) = match key {
            Key::Set(s) => (&mut self.set_heads, s.key()),
            Key::Waitable(w) => (&mut self.w_heads, w.key()),
        };
        if v.len() <= k {
            v.resize(k + 1, NONE);
        }
        &mut v[k]
    }

    fn has_parked(&self, key: Key) -> bool {
        let (v, k) = match key {
            Key::Set(s) => (&self.set_heads, s.key()),
            Key::Waitable(w) => (&self.w_heads, w.key()),
        };
        v.get(k).is_some_and(|&h| h != NONE)
    }

    /// `t` starts waiting (last in the order), active.
    #[inline]
    pub fn push(&mut self, t: ThreadId) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let s = self.slot(t);
        debug_assert_eq!(s.seq, 0, "a thread waits once");
        s.seq = seq;
        debug_assert!(!s.parked());
        let gen = s.gen;
        self.active.push(Entry { seq, gen, t });
        self.live += 1;
    }

    /// `t` starts waiting (last in the order), parked on `key` at once.
    pub fn push_parked(&mut self, t: ThreadId, key: Key) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let s = self.slot(t);
        debug_assert_eq!(s.seq, 0, "a thread waits once");
        s.seq = seq;
        self.link(t, key);
    }

    fn link(&mut self, t: ThreadId, key: Key) {
        let h = *self.head(key);
        let tk = t.key() as u32;
        {
            let s = &mut self.slots[t.key()];
            s.key = key.pack();
            s.prev = NONE;
            s.next = h;
        }
        if h != NONE {
            self.slots[h as usize].prev = tk;
        }
        *self.head(key) = tk;
        self.parked += 1;
    }

    fn unlink(&mut self, t: ThreadId) {
        let s = self.slots[t.key()];
        debug_assert!(s.parked());
        if s.prev != NONE {
            self.slots[s.prev as usize].next = s.next;
        } else {
            *self.head(Key::unpack(s.key)) = s.next;
        }
        if s.next != NONE {
            self.slots[s.next as usize].prev = s.prev;
        }
        let s = &mut self.slots[t.key()];
        s.key = NONE;
        s.prev = NONE;
        s.next = NONE;
        self.parked -= 1;
    }

    /// Whether `t` waits.
    pub fn contains(&self, t: ThreadId) -> bool {
        self.slots.get(t.key()).is_some_and(|s| s.seq != 0)
    }

    /// `t` stops waiting (no-op if it does not wait).
    #[inline]
    pub fn remove(&mut self, t: ThreadId) {
        if !self.contains(t) {
            return;
        }
        if self.slots[t.key()].parked() {
            self.unlink(t);
        } else {
            self.live -= 1;
        }
        let s = &mut self.slots[t.key()];
        s.seq = 0;
        s.gen = s.gen.wrapping_add(1);
        self.maybe_compact();
    }

    /// An active thread whose condition cannot hold until `key` is notified.
    pub fn park(&mut self, t: ThreadId, key: Key) {
        let s = &mut self.slots[t.key()];
        debug_assert!(s.seq != 0 && !s.parked());
        s.gen = s.gen.wrapping_add(1);
        self.live -= 1;
        self.link(t, key);
        self.maybe_compact();
    }

    /// The condition of the threads parked on `key` may hold now: they
    /// become active again, in their place in the waiting order.
    #[inline]
    pub fn notify(&mut self, key: Key) {
        if self.has_parked(key) {
            self.notify_slow(key);
        }
    }

    #[cold]
    fn notify_slow(&mut self, key: Key) {
        while let h @ 0..=0xffff_fffe = *self.head(key) {
            let t = ThreadId::from_key(h as usize);
            self.unlink(t);
            let s = self.slots[t.key()];
            let e = Entry {
                seq: s.seq,
                gen: s.gen,
                t,
            };
            let pos = self.active.partition_point(|x| x.seq < e.seq);
            self.active.insert(pos, e);
            self.live += 1;
        }
    }

    fn maybe_compact(&mut self) {
        let stale = self.active.len() - self.live;
        if self.live == 0 {
            self.active.clear();
        } else if stale > 32 && stale > self.live {
            let slots = &self.slots;
            self.active.retain(|e| {
                let s = &slots[e.t.key()];
                s.seq == e.seq && s.gen == e.gen && !s.parked()
            });
        }
    }

    /// The active threads, in waiting order.
    pub fn active(&self) -> impl Iterator<Item = ThreadId> + '_ {
        self.active.iter().filter(|e| self.is_live(e)).map(|e| e.t)
    }

    /// Whether some thread waits and is active (not parked).
    #[inline]
    pub fn has_active(&self) -> bool {
        self.live != 0
    }

    /// Whether no thread waits.
    #[cfg_attr(not(feature = "check"), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.live == 0 && self.parked == 0
    }

    /// Every waiting thread, in waiting order (slow: for checks and aborts).
    pub fn all(&self) -> Vec<ThreadId> {
        let mut v: Vec<(u64, ThreadId)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.seq != 0)
            .map(|(k, s)| (s.seq, ThreadId::from_key(k)))
            .collect();
        v.sort_unstable_by_key(|&(seq, _)| seq);
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// Keeps only the waiting threads for which `f` holds.
    pub fn retain(&mut self, mut f: impl FnMut(&ThreadId) -> bool) {
        for t in self.all() {
            if !f(&t) {
                self.remove(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: usize) -> ThreadId {
        ThreadId::from_key(k)
    }

    #[test]
    fn a_slot_is_three_words() {
        assert_eq!(core::mem::size_of::<Slot>(), 24);
        for k in [
            Key::Set(SetId(0)),
            Key::Set(SetId(7)),
            Key::Waitable(WaitableId(0)),
        ] {
            assert_eq!(Key::unpack(k.pack()), k);
        }
    }

    #[test]
    fn notified_threads_keep_their_place_in_the_waiting_order() {
        let mut q = WaitQueue::default();
        let set = Key::Set(SetId(3));
        q.push(t(5));
        q.push_parked(t(1), set);
        q.push(t(2));
        q.push(t(7));
        q.park(t(7), Key::Waitable(WaitableId(9)));
        assert_eq!(q.active().collect::<Vec<_>>(), [t(5), t(2)]);
        q.notify(set);
        q.notify(Key::Set(SetId(4)));
        assert_eq!(q.active().collect::<Vec<_>>(), [t(5), t(1), t(2)]);
        q.remove(t(5));
        q.notify(Key::Waitable(WaitableId(9)));
        assert_eq!(q.active().collect::<Vec<_>>(), [t(1), t(2), t(7)]);
        assert_eq!(q.all(), [t(1), t(2), t(7)]);
        // A thread that waits again goes last; stale entries never reappear.
        q.remove(t(1));
        q.push(t(1));
        q.park(t(2), set);
        q.notify(set);
        assert_eq!(q.active().collect::<Vec<_>>(), [t(2), t(7), t(1)]);
        q.retain(|&x| x != t(7));
        assert_eq!(q.all(), [t(2), t(1)]);
        q.remove(t(2));
        q.remove(t(1));
        assert!(q.is_empty());
        assert_eq!(q.active().count(), 0);
    }
}
