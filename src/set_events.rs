//! The members of each waitable set that have a pending event, in join
//! order, so that `WaitableSet.get_pending_event` finds the chosen one
//! without scanning the members that have none.

use alloc::vec::Vec;

use crate::ids::{SetId, WaitableId};

/// Per set, its members with a pending event sorted by when they joined.
#[derive(Debug, Default)]
pub(crate) struct SetEvents {
    next_seq: u64,
    /// When each waitable last joined a set.
    joined: Vec<u64>,
    /// Per set: (join seq, member) of the members with a pending event.
    pending: Vec<Vec<(u64, WaitableId)>>,
}

impl SetEvents {
    fn list(&mut self, s: SetId) -> &mut Vec<(u64, WaitableId)> {
        let k = s.key();
        if self.pending.len() <= k {
            self.pending.resize_with(k + 1, Vec::new);
        }
        &mut self.pending[k]
    }

    /// `w` joins set `s` (last in its join order).
    pub fn joined(&mut self, w: WaitableId) {
        self.next_seq += 1;
        let k = w.key();
        if self.joined.len() <= k {
            self.joined.resize(k + 1, 0);
        }
        self.joined[k] = self.next_seq;
    }

    /// Member `w` of `s` got a pending event.
    pub fn add(&mut self, s: SetId, w: WaitableId) {
        let seq = self.joined[w.key()];
        let l = self.list(s);
        let pos = l.partition_point(|&(q, _)| q < seq);
        l.insert(pos, (seq, w));
    }

    /// Member `w` of `s` no longer has a pending event (or leaves `s`).
    pub fn remove(&mut self, s: SetId, w: WaitableId) {
        let seq = self.joined[w.key()];
        let l = self.list(s);
        let pos = l.partition_point(|&(q, _)| q < seq);
        debug_assert_eq!(l.get(pos).map(|e| e.1), Some(w));
        if l.get(pos).is_some_and(|e| e.1 == w) {
            l.remove(pos);
        }
    }

    /// When `w` last joined a set (for the invariant checks).
    #[cfg(feature = "check")]
    pub fn joined_seq(&self, w: WaitableId) -> u64 {
        self.joined.get(w.key()).copied().unwrap_or(0)
    }

    /// The members of `s` with a pending event, in join order (for the
    /// invariant checks).
    #[cfg(feature = "check")]
    pub fn pending_of(&self, s: SetId) -> &[(u64, WaitableId)] {
        self.pending.get(s.key()).map_or(&[], |l| l.as_slice())
    }

    /// The `k`-th member of `s` with a pending event, in join order.
    pub fn nth(&self, s: SetId, k: usize) -> Option<WaitableId> {
        self.pending.get(s.key())?.get(k).map(|e| e.1)
    }
}
