//! `Thread`: the unit the core schedules. The embedder owns each thread's
//! continuation; the core owns its state and says when to resume it.

use crate::ids::{InstanceId, SetId, TaskId, WaitableId};

/// What makes a waiting thread ready: the spec's `ready_func` closures,
/// as data evaluated against the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitCond {
    /// `lambda: True` (`thread.yield`, `resume_later`).
    Always,
    /// `subtask.resolved` (a synchronous lower into an async callee).
    SubtaskResolved(WaitableId),
    /// `Waitable.has_pending_event` (`wait_for_pending_event`).
    PendingEvent(WaitableId),
    /// `WaitableSet.has_pending_event`, and no exclusive holder when the
    /// instance is given (the callback loop's WAIT).
    SetEvent(SetId, Option<InstanceId>),
    /// `not inst.exclusive_thread` (the callback loop's YIELD).
    NoExclusive(InstanceId),
    /// `not has_backpressure()` (the gate of `enter_implicit_thread`).
    NoBackpressure(TaskId),
}

/// Whether the thread runs, is suspended, or waits for a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    Running,
    Suspended,
    Waiting(WaitCond),
}

/// What a wasm continuation is parked in: decides the value it resumes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// `thread.suspend`, `thread.yield`, the switch built-ins: resumes with `Cancelled`.
    Cancelled,
    /// `waitable-set.wait`: resumes with the event.
    Wait { set: SetId, ptr: u32 },
    /// A call through `canon lower` into a guest or host callee.
    Call { subtask: WaitableId },
    /// A synchronous lower waiting for its callee to resolve.
    SyncLower { subtask: WaitableId },
    /// A synchronous copy, cancel or `subtask.cancel` waiting for the event.
    SyncEvent { waitable: WaitableId },
    /// A `subtask.cancel` whose cancellation request is being delivered.
    Cancel { subtask: WaitableId },
}

/// What the core does when it resumes the thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The implicit thread of a new task: run `enter_implicit_thread`.
    Enter,
    /// Waiting at the backpressure gate.
    EnterGate,
    /// An explicit thread not yet started.
    Explicit { func: u32, arg: u32 },
    /// A callback task between events, after `YIELD`.
    CallbackYield,
    /// A callback task between events, after `WAIT` on the set.
    CallbackWait(SetId),
    /// A parked wasm continuation.
    Wasm(Blocked),
    /// The thread is running wasm (no continuation to resume).
    Running,
}

#[derive(Debug)]
pub(crate) struct Thread {
    pub task: TaskId,
    pub inst: InstanceId,
    pub state: ThreadState,
    pub cancellable: bool,
    /// Index in the instance's thread table; 0 while unregistered.
    pub index: u32,
    /// The two `context.get/set` slots.
    pub storage: [u64; 2],
    pub resume: Resume,
    /// Set while a callback task's thread is blocked inside a synchronous
    /// built-in with its exclusive lock released ([`Reading::Suite`](crate::Reading::Suite)):
    /// it is ready only when the lock is free, and takes it back on resume.
    pub relock: bool,
}

impl Thread {
    pub fn suspended(&self) -> bool {
        self.state == ThreadState::Suspended
    }
}
