//! `Subtask`: the caller's side of a call of a lifted function or a host
//! function (`definitions.py`'s `class Subtask`).

use alloc::boxed::Box;
use smallvec::SmallVec;

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
    /// Lent borrow handles (handle indices in the caller's instance);
    /// `None` while none is lent (boxed: lends are rare, and a pending
    /// subtask stays small).
    pub lenders: Option<Box<SmallVec<[u32; 2]>>>,
    /// `Subtask.resolve_delivered`: the lends have ended.
    pub delivered: bool,
    pub cancellation_requested: bool,
    pub async_: bool,
}

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
        let Some(lenders) = s.lenders.take() else {
            return;
        };
        for h in *lenders {
            if let Ok(r) = self.inst_mut(inst).resource_mut(h) {
                r.num_lends -= 1;
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
