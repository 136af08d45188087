//! What the core asks the embedder to do next.

use crate::ids::{SubtaskId, TaskId, ThreadId};
use crate::trap::Trap;
use crate::waitable::Event;

/// The next thing the embedder must do, from [`Store::next_action`](crate::Store::next_action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start `thread`, the implicit thread of `task`, by calling the lifted
    /// core function `func` (the [`Lifted::func`](crate::Lifted::func) id)
    /// with the task's arguments. For a guest caller the embedder lifts the
    /// arguments from the caller now (the spec's `on_start`).
    Start {
        /// The thread to run the call on (a fresh continuation).
        thread: ThreadId,
        /// The task being started.
        task: TaskId,
        /// The embedder's id of the lifted function.
        func: u32,
    },
    /// Call the callback of `task` (its [`Lifted::func`](crate::Lifted::func)
    /// names it) with `event` on `thread`; report its packed result with
    /// [`Store::callback_returned`](crate::Store::callback_returned).
    Callback {
        /// The task's implicit thread.
        thread: ThreadId,
        /// The task.
        task: TaskId,
        /// The embedder's id of the lifted function.
        func: u32,
        /// The event to pass as `(code, index, payload)`.
        event: Event,
    },
    /// Start the explicit thread `thread` (`thread.new-indirect`) by calling
    /// the function-table element `func` with `arg`.
    StartThread {
        /// The new thread.
        thread: ThreadId,
        /// The function-table index the guest passed.
        func: u32,
        /// The closure argument the guest passed.
        arg: u32,
    },
    /// Resume the parked continuation of `thread` with `value`.
    Resume {
        /// The thread to resume.
        thread: ThreadId,
        /// What the blocked built-in returns.
        value: ResumeValue,
    },
    /// Run the host function of `subtask` (the caller's thread is parked).
    /// Resolve it now or later with [`Store::host_return`](crate::Store::host_return).
    HostCall {
        /// The subtask of the guest caller.
        subtask: SubtaskId,
    },
    /// The guest asked to cancel the host call of `subtask`; answer with
    /// [`Store::host_cancelled`](crate::Store::host_cancelled) now or later,
    /// or ignore it and return normally.
    HostCancel {
        /// The subtask being cancelled.
        subtask: SubtaskId,
    },
    /// Nothing is ready to run; the host must complete host work, or it is a deadlock.
    Idle,
    /// A trap happened in the core's own logic while it drove the call (a
    /// synchronous-typed call that would block with no other thread of its
    /// instance ready, [`Trap::CannotBlockSync`]; a handle or thread table
    /// that is full when a call starts or hands its caller a subtask
    /// handle, ...). The instances involved are poisoned and the threads of
    /// the trapped call are gone. A trap of a built-in (an invalid callback
    /// code, a bad handle) is the built-in's `Err` instead, not an action.
    Trap(Trap),
}

impl Action {
    /// The thread whose guest code this action runs, if any.
    pub fn thread(&self) -> Option<ThreadId> {
        match *self {
            Action::Start { thread, .. }
            | Action::Callback { thread, .. }
            | Action::StartThread { thread, .. }
            | Action::Resume { thread, .. } => Some(thread),
            _ => None,
        }
    }
}

/// The value a parked continuation resumes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeValue {
    /// A plain i32 result (a `Cancelled` flag, a packed call state, a copy result).
    I32(u32),
    /// `waitable-set.wait`: store [`Event::payload_bytes`] at `ptr` and return the code.
    Event {
        /// The event.
        event: Event,
        /// The address the guest passed.
        ptr: u32,
    },
    /// A synchronous lower returned: the embedder hands the callee's flat
    /// results (which it lowered when the callee resolved) to the caller.
    Returned(SubtaskId),
}
