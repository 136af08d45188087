//! Handles inside values: the lift and lower halves the embedder calls
//! while it moves a value between instances (`lift_own`, `lower_own`,
//! `lift_borrow`, `lower_borrow`, `lift_async_value`, `lower_stream`,
//! `lower_future`, `lift_error_context`, `lower_error_context`).

use crate::copy::{CopyState, ElemType, EndKind};
use crate::ids::{ErrorContextId, InstanceId, ResourceTypeId, SharedId, SubtaskId, TaskId};
use crate::instance::{Handle, ResourceHandle};
use crate::store::Store;
use crate::trap::{trap_if, Trap};

impl Store {
    /// `lift_own`: removes the owned handle `i` from `inst`; its rep.
    pub fn lift_own(&mut self, inst: InstanceId, rt: ResourceTypeId, i: u32) -> Result<u32, Trap> {
        let h = self.resource_at(inst, rt, i)?;
        trap_if(h.num_lends != 0, Trap::ResourceBorrowed)?;
        trap_if(!h.own, Trap::NotOwned)?;
        let rep = h.rep;
        self.inst_mut(inst).remove_resource(i)?;
        Ok(rep)
    }

    /// `lower_own`: a new owned handle in `inst`.
    pub fn lower_own(
        &mut self,
        inst: InstanceId,
        rt: ResourceTypeId,
        rep: u32,
    ) -> Result<u32, Trap> {
        self.inst_mut(inst).add_resource(ResourceHandle {
            rt,
            rep,
            own: true,
            scope: TaskId(0),
            num_lends: 0,
        })
    }

    /// `lift_borrow`: lends handle `i` of the caller of `subtask` for the
    /// duration of the call; its rep.
    pub fn lift_borrow(
        &mut self,
        subtask: SubtaskId,
        rt: ResourceTypeId,
        i: u32,
    ) -> Result<u32, Trap> {
        let inst = self.w(subtask.0).inst;
        let rep = self.resource_at(inst, rt, i)?.rep;
        if let Ok(h) = self.inst_mut(inst).resource_mut(i) {
            h.num_lends += 1;
        }
        if !self.sub(subtask.0).delivered {
            self.add_lender(subtask.0, i);
        }
        Ok(rep)
    }

    /// `lower_borrow`: a borrow handle for `task` (the rep itself when the
    /// task's instance implements the resource type).
    pub fn lower_borrow(
        &mut self,
        task: TaskId,
        rt: ResourceTypeId,
        rep: u32,
    ) -> Result<u32, Trap> {
        let inst = self.task(task).inst();
        if self.resource_types.get(rt.0 as usize) == Some(&inst) {
            return Ok(rep);
        }
        let i = self.inst_mut(inst).add_resource(ResourceHandle {
            rt,
            rep,
            own: false,
            scope: task,
            num_lends: 0,
        })?;
        self.task_mut(task).num_borrows += 1;
        Ok(i)
    }

    /// `lift_async_value`: removes the readable end `i` of `inst` to pass it on.
    pub fn lift_end(
        &mut self,
        inst: InstanceId,
        kind: EndKind,
        elem: ElemType,
        i: u32,
    ) -> Result<SharedId, Trap> {
        let w = match self.inst(inst).handles.get(i)? {
            Handle::Waitable(w) => *w,
            _ => return Err(Trap::WrongHandleKind(i)),
        };
        let e = self.w(w).end().ok_or(Trap::WrongHandleKind(i))?;
        trap_if(e.kind != kind, Trap::WrongHandleKind(i))?;
        trap_if(!e.readable, Trap::LiftNotReadable(kind))?;
        trap_if(
            self.shared[e.shared.key()].elem != elem,
            Trap::EndTypeMismatch(kind),
        )?;
        match e.state {
            CopyState::Idle => {}
            CopyState::Done => return Err(Trap::LiftAfterDone(kind)),
            _ => return Err(Trap::LiftBusy(kind)),
        }
        trap_if(self.w(w).wset().is_some(), Trap::LiftInWaitableSet(kind))?;
        let s = e.shared;
        self.inst_mut(inst).handles.remove(i)?;
        // The end moves: the shared state keeps counting it while in transit.
        self.waitables.remove(w.key());
        Ok(s)
    }

    /// `lower_stream` / `lower_future`: a new readable end in `inst`.
    pub fn lower_end(&mut self, inst: InstanceId, shared: SharedId) -> Result<u32, Trap> {
        let i = self.new_end(inst, shared, true)?;
        self.shared[shared.key()].ends -= 1;
        Ok(i)
    }

    /// `lift_error_context`: the value at handle `i` (the handle stays).
    pub fn lift_error_context(&self, inst: InstanceId, i: u32) -> Result<ErrorContextId, Trap> {
        match self.inst(inst).handles.get(i)? {
            Handle::ErrorContext(e) => Ok(*e),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// `lower_error_context`: a new handle in `inst` to the value.
    pub fn lower_error_context(
        &mut self,
        inst: InstanceId,
        e: ErrorContextId,
    ) -> Result<u32, Trap> {
        let i = self.inst_mut(inst).handles.add(Handle::ErrorContext(e))?;
        self.error_contexts[e.key()].refs += 1;
        Ok(i)
    }
}
