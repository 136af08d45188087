//! The live-task count and its wakers.
//!
//! A task is live ("interesting") from its creation until it has exited:
//! resolved (returned or cancelled) and its last thread gone. The store
//! counts up in exactly one place ([`Store`](crate::Store)'s task creation)
//! and down in exactly one place (task exit, guarded by the task's `exited`
//! flag), store-wide and per instance. When a count reaches zero every
//! registered waker is woken, not only the last one registered.

use alloc::vec::Vec;
use core::task::Waker;

/// A set of wakers waiting for a live count to reach zero.
#[derive(Debug, Default)]
pub struct Wakers {
    wakers: Vec<Waker>,
}

impl Wakers {
    /// Registers `w`, unless a waker that would wake the same task is already registered.
    pub fn register(&mut self, w: &Waker) {
        if !self.wakers.iter().any(|x| x.will_wake(w)) {
            self.wakers.push(w.clone());
        }
    }

    /// Wakes and forgets every registered waker.
    #[inline]
    pub fn wake_all(&mut self) {
        if !self.wakers.is_empty() {
            self.wake_all_slow();
        }
    }

    #[cold]
    fn wake_all_slow(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// How many wakers are registered.
    pub fn len(&self) -> usize {
        self.wakers.len()
    }

    /// Whether no waker is registered.
    pub fn is_empty(&self) -> bool {
        self.wakers.is_empty()
    }
}
