//! `Task`: one call of a lifted function, and the descriptors of lifts.

use smallvec::SmallVec;

use crate::ids::{InstanceId, SubtaskId, ThreadId};

/// How a function was lifted (`canon lift` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiftKind {
    /// No `async` option: the core function returns the flat results.
    Sync,
    /// `async` with `(callback f)`: the core function returns a packed
    /// callback code and the callback is called with each event.
    AsyncCallback,
    /// `async` without `callback` (🚟 stackful): the core function returns
    /// nothing and calls `task.return` itself.
    AsyncStackful,
}

/// A lifted function, as the embedder describes it to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lifted {
    /// The instance the function belongs to (the callee instance).
    pub inst: InstanceId,
    /// The embedder's own id for the core function (and its callback),
    /// echoed back in [`Action::Start`](crate::Action::Start) and
    /// [`Action::Callback`](crate::Action::Callback).
    pub func: u32,
    /// The lift options.
    pub kind: LiftKind,
    /// Whether the function type is `async` (`(func async ...)`).
    pub async_type: bool,
}

impl Lifted {
    /// `Task.needs_exclusive`: synchronous and callback lifts hold the
    /// instance's exclusive lock while their core code runs.
    pub fn needs_exclusive(&self) -> bool {
        self.kind != LiftKind::AsyncStackful
    }
}

/// Who called a task: the host (through [`Store::invoke`](crate::Store::invoke))
/// or a guest, through a subtask of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The host invoked the function.
    Host,
    /// A guest called it through `canon lower`.
    Guest(SubtaskId),
}

/// `Task.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Created, waiting to enter (backpressure).
    Initial,
    /// Entered: its core function was called.
    Started,
    /// A cancellation was requested and waits for a cancellation point.
    PendingCancel,
    /// `TASK_CANCELLED` (or a cancelled resume) was delivered.
    CancelDelivered,
    /// `task.return` or `task.cancel` happened.
    Resolved,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub func: Lifted,
    pub caller: Caller,
    pub state: TaskState,
    pub num_borrows: u32,
    /// The implicit thread while it lives: cleared when it exits, so an
    /// explicit thread that reuses its slot is never taken for it
    /// (`definitions.py` compares thread objects).
    pub implicit_thread: Option<ThreadId>,
    pub threads: SmallVec<[ThreadId; 2]>,
    /// The live-count idempotence flag: set exactly once, when the task exits.
    pub exited: bool,
}

impl Task {
    pub fn inst(&self) -> InstanceId {
        self.func.inst
    }

    /// `Task.deliver_pending_cancel`.
    pub fn deliver_pending_cancel(&mut self, cancellable: bool) -> bool {
        if cancellable && self.state == TaskState::PendingCancel {
            self.state = TaskState::CancelDelivered;
            true
        } else {
            false
        }
    }
}
