//! `Subtask`: the caller's side of a call of a lifted function or a host
//! function (`definitions.py`'s `class Subtask`).

use core::mem;

use crate::ids::{TaskId, WaitableId};
use crate::store::Store;
use crate::wait_queue::Key;
use crate::waitable::Pending;

/// `Subtask.State`, visible to wasm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SubtaskState {
    /// The callee has not started (backpressure).
    Starting = 0,
    /// The callee started and has not returned.
    Started = 1,
    /// The callee returned.
    Returned = 2,
    /// Cancelled before the callee started.
    CancelledBeforeStarted = 3,
    /// Cancelled after the callee started, before it returned.
    CancelledBeforeReturned = 4,
}

impl SubtaskState {
    /// `Subtask.resolved`.
    pub fn resolved(self) -> bool {
        !matches!(self, SubtaskState::Starting | SubtaskState::Started)
    }
}

/// The callee of a subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callee {
    Task(TaskId),
    Host,
    /// The callee's instance trapped: its task is gone, and the subtask
    /// never resolves (a cancellation of it stays pending).
    Gone,
}

#[derive(Debug)]
pub(crate) struct Subtask {
    pub state: SubtaskState,
    pub callee: Callee,
    /// The key in `Store::lends` of the lent borrow handles (handle
    /// indices in the caller's instance); `NO_LENDS` while none is lent
    /// (lends are rare, and a pending subtask stays small: 16 bytes).
    pub lenders: u32,
    /// `Subtask.resolve_delivered`: the lends have ended.
    pub delivered: bool,
    pub cancellation_requested: bool,
    pub async_: bool,
}

/// [`Subtask::lenders`] while no handle is lent.
pub(crate) const NO_LENDS: u32 = u32::MAX;

impl Subtask {
    pub fn resolve_delivered(&self) -> bool {
        self.delivered
    }
}

impl Store {
    /// `Subtask.deliver_resolve`: ends the lends of borrowed handles.
    #[inline]
    pub(crate) fn deliver_resolve(&mut self, w: WaitableId) {
        let wt = self.w_mut(w);
        let inst = wt.inst;
        let s = wt.subtask_mut().expect("waitable is a subtask");
        s.delivered = true;
        let k = mem::replace(&mut s.lenders, NO_LENDS);
        if k == NO_LENDS {
            return;
        }
        for h in self.lends.remove(k as usize) {
            if let Ok(r) = self.inst_mut(inst).resource_mut(h) {
                r.num_lends -= 1;
            }
        }
    }

    /// Handle `h` of the caller is lent for the call of `w`.
    pub(crate) fn add_lender(&mut self, w: WaitableId, h: u32) {
        let k = self.sub(w).lenders;
        if k == NO_LENDS {
            let k = self.lends.insert(smallvec::smallvec![h]) as u32;
            self.sub_mut(w).lenders = k;
        } else {
            self.lends[k as usize].push(h);
        }
    }

    /// Frees the lends of `w`, a subtask that is freed before its
    /// resolution was delivered (its caller's instance trapped).
    pub(crate) fn forget_lenders(&mut self, w: WaitableId) {
        if let Some(s) = self.w_mut(w).subtask_mut() {
            let k = mem::replace(&mut s.lenders, NO_LENDS);
            if k != NO_LENDS {
                self.lends.remove(k as usize);
            }
        }
    }

    /// `Subtask.resolve` with `on_progress`.
    #[inline]
    pub(crate) fn resolve_subtask(&mut self, w: WaitableId, state: SubtaskState) {
        let wt = self.w_mut(w);
        let has_handle = wt.index != 0;
        let s = wt.subtask_mut().expect("waitable is a subtask");
        debug_assert!(!s.state.resolved());
        debug_assert!(
            state != SubtaskState::CancelledBeforeStarted || s.state == SubtaskState::Starting
        );
        s.state = state;
        self.waiting.notify(Key::Waitable(w));
        self.subtask_progress(w, has_handle);
    }

    /// `on_progress`: an async-lowered subtask with a handle gets a SUBTASK
    /// event (`has_handle`: the waitable's `index != 0`, read by the caller
    /// on the borrow it already holds).
    #[inline]
    pub(crate) fn subtask_progress(&mut self, w: WaitableId, has_handle: bool) {
        if has_handle {
            self.set_pending(w, Some(Pending::Subtask));
        }
    }
}
