//! `ComponentInstance`: the per-instance state of the async Canonical ABI.

use slab::Slab;

use crate::ids::{ErrorContextId, ResourceTypeId, SetId, TaskId, ThreadId, WaitableId};
use crate::table::Table;
use crate::trap::Trap;

/// What a slot of an instance's handle table holds. Resources, waitables,
/// waitable sets and error-contexts share one table, so their indices
/// interleave exactly as the spec's single `handles` table does.
///
/// Eight bytes a slot (path 7 of the benchmarks: a pending callback task
/// holds two): a resource handle lives in the instance's `resources` slab
/// and the slot holds its key.
#[derive(Clone, Debug)]
pub(crate) enum Handle {
    /// The key of the [`ResourceHandle`] in [`ComponentInstance::resources`].
    Resource(u32),
    Waitable(WaitableId),
    Set(SetId),
    ErrorContext(ErrorContextId),
}

/// The spec's `ResourceHandle` (20 bytes: `borrow_scope` is kept without
/// an `Option`, as only borrows have one).
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
    /// The resource handles of `handles`, out of line (see [`Handle`]).
    pub resources: Slab<ResourceHandle>,
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

    /// `handles.add` of a resource handle.
    pub fn add_resource(&mut self, h: ResourceHandle) -> Result<u32, Trap> {
        let k = self.resources.insert(h);
        let r = self.handles.add(Handle::Resource(k as u32));
        if r.is_err() {
            self.resources.remove(k);
        }
        r
    }

    /// The resource handle at index `i` (`WrongHandleKind` for another kind).
    pub fn resource(&self, i: u32) -> Result<&ResourceHandle, Trap> {
        match self.handles.get(i)? {
            Handle::Resource(k) => Ok(&self.resources[*k as usize]),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// Mutable [`ComponentInstance::resource`].
    pub fn resource_mut(&mut self, i: u32) -> Result<&mut ResourceHandle, Trap> {
        match self.handles.get(i)? {
            Handle::Resource(k) => Ok(&mut self.resources[*k as usize]),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// `handles.remove` of the resource handle at `i`.
    pub fn remove_resource(&mut self, i: u32) -> Result<ResourceHandle, Trap> {
        self.resource(i)?;
        match self.handles.remove(i)? {
            Handle::Resource(k) => Ok(self.resources.remove(k as usize)),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }
}
