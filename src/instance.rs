//! `ComponentInstance`: the per-instance state of the async Canonical ABI.

use crate::ids::{ErrorContextId, ResourceTypeId, SetId, TaskId, ThreadId, WaitableId};
use crate::table::Table;

/// What a slot of an instance's handle table holds. Resources, waitables,
/// waitable sets and error-contexts share one table, so their indices
/// interleave exactly as the spec's single `handles` table does.
#[derive(Clone, Debug)]
pub(crate) enum Handle {
    Resource(ResourceHandle),
    Waitable(WaitableId),
    Set(SetId),
    ErrorContext(ErrorContextId),
}

/// The spec's `ResourceHandle` (20 bytes, and so is a handle-table slot:
/// `borrow_scope` is kept without an `Option`, as only borrows have one).
#[derive(Clone, Debug)]
pub(crate) struct ResourceHandle {
    pub rt: ResourceTypeId,
    pub rep: u32,
    pub own: bool,
    /// For a borrow (`!own`): the task it was lent to (its `num_borrows`
    /// counts it); unused for an own handle. See [`ResourceHandle::borrow_scope`].
    pub scope: TaskId,
    pub num_lends: u32,
}

impl ResourceHandle {
    /// `ResourceHandle.borrow_scope`: the task of a borrow, `None` for an own handle.
    #[inline]
    pub fn borrow_scope(&self) -> Option<TaskId> {
        (!self.own).then_some(self.scope)
    }
}

/// The spec's `ComponentInstance`, plus poisoning and live-task counting.
#[derive(Debug, Default)]
pub(crate) struct ComponentInstance {
    pub handles: Table<Handle>,
    pub threads: Table<ThreadId>,
    /// Off while the instance is on the current call chain (see `enter`).
    pub may_enter: bool,
    pub may_leave: bool,
    pub backpressure: u32,
    pub num_waiting_to_enter: u32,
    pub exclusive_thread: Option<ThreadId>,
    /// Set by a trap: every later entry traps with "cannot enter component instance".
    pub poisoned: bool,
    /// Tasks of this instance that are created and not yet exited.
    pub live_tasks: usize,
    pub wakers: crate::live::Wakers,
    /// The instance this one is nested in (component nesting).
    pub parent: Option<crate::ids::InstanceId>,
}

impl ComponentInstance {
    pub fn new() -> Self {
        ComponentInstance {
            may_enter: true,
            may_leave: true,
            ..Default::default()
        }
    }
}
