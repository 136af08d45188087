//! `context.get/set`, `backpressure.inc/dec`, `task.return`, `task.cancel`.

use crate::store::{ResultDelivery, Store};
use crate::task::LiftKind;
use crate::trap::{trap_if, Trap};

impl Store {
    /// `canon context.get`: slot `i` (0 or 1) of the running thread.
    /// Not guarded by `may_leave`.
    pub fn context_get(&self, i: u32) -> Result<u64, Trap> {
        let (t, _, _) = self.running()?;
        Ok(self.thread(t).storage[(i & 1) as usize])
    }

    /// `canon context.set`: sets slot `i` (0 or 1) of the running thread.
    pub fn context_set(&mut self, i: u32, v: u64) -> Result<(), Trap> {
        let (t, _, _) = self.running()?;
        self.thread_mut(t).storage[(i & 1) as usize] = v;
        Ok(())
    }

    /// `canon backpressure.inc`: traps when the counter would reach `2^16`.
    pub fn backpressure_inc(&mut self) -> Result<(), Trap> {
        let r = self.running().and_then(|(_, _, inst)| {
            let i = self.inst_mut(inst);
            trap_if(i.backpressure + 1 >= 1 << 16, Trap::BackpressureOverflow)?;
            i.backpressure += 1;
            Ok(())
        });
        self.guard(r)
    }

    /// `canon backpressure.dec`: traps below zero.
    pub fn backpressure_dec(&mut self) -> Result<(), Trap> {
        let r = self.running().and_then(|(_, _, inst)| {
            let i = self.inst_mut(inst);
            trap_if(i.backpressure == 0, Trap::BackpressureUnderflow)?;
            i.backpressure -= 1;
            Ok(())
        });
        self.guard(r)
    }

    /// `canon task.return`: resolves the running task. The embedder checks
    /// the result type and options against the task's (it knows the
    /// types), then lifts the values and delivers them as the answer says.
    pub fn task_return(&mut self) -> Result<ResultDelivery, Trap> {
        let r = self.leaving().and_then(|(_, task, _)| {
            trap_if(
                self.task(task).func().kind == LiftKind::Sync,
                Trap::TaskNotAsync,
            )?;
            self.task_return_internal(task)
        });
        self.guard(r)
    }

    /// `canon task.cancel`: resolves the running task as cancelled, after a
    /// cancellation was delivered to it.
    pub fn task_cancel(&mut self) -> Result<(), Trap> {
        let r = self.leaving().and_then(|(_, task, _)| {
            trap_if(
                self.task(task).func().kind == LiftKind::Sync,
                Trap::TaskNotAsync,
            )?;
            self.task_cancel_internal(task)
        });
        self.guard(r)
    }
}
