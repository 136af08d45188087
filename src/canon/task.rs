//! `context.get/set`, `backpressure.inc/dec`, `task.return`, `task.cancel`.

use crate::running::Running;
use crate::store::ResultDelivery;
use crate::task::LiftKind;
use crate::trap::{trap_if, Trap};

impl Running<'_> {
    /// `canon context.get`: slot `i` (0 or 1) of the running thread.
    /// Not guarded by `may_leave`.
    pub fn context_get(self, i: u32) -> Result<u64, Trap> {
        Ok(self.store.thread(self.thread).storage[(i & 1) as usize])
    }

    /// `canon context.set`: sets slot `i` (0 or 1) of the running thread.
    pub fn context_set(self, i: u32, v: u64) -> Result<(), Trap> {
        self.store.thread_mut(self.thread).storage[(i & 1) as usize] = v;
        Ok(())
    }

    /// `canon backpressure.inc`: traps when the counter would reach `2^16`.
    pub fn backpressure_inc(self) -> Result<(), Trap> {
        self.run(|s, (_, _, inst)| {
            let i = s.inst_mut(inst);
            trap_if(i.backpressure + 1 >= 1 << 16, Trap::BackpressureOverflow)?;
            i.backpressure += 1;
            Ok(())
        })
    }

    /// `canon backpressure.dec`: traps below zero.
    pub fn backpressure_dec(self) -> Result<(), Trap> {
        self.run(|s, (_, _, inst)| {
            let i = s.inst_mut(inst);
            trap_if(i.backpressure == 0, Trap::BackpressureUnderflow)?;
            i.backpressure -= 1;
            Ok(())
        })
    }

    /// `canon task.return`: resolves the running task. The embedder checks
    /// the result type and options against the task's (it knows the
    /// types), then lifts the values and delivers them as the answer says.
    pub fn task_return(self) -> Result<ResultDelivery, Trap> {
        self.leave(|s, (_, task, _)| {
            trap_if(
                s.task(task).func().kind == LiftKind::Sync,
                Trap::TaskNotAsync,
            )?;
            s.task_return_internal(task)
        })
    }

    /// `canon task.cancel`: resolves the running task as cancelled, after a
    /// cancellation was delivered to it.
    pub fn task_cancel(self) -> Result<(), Trap> {
        self.leave(|s, (_, task, _)| {
            trap_if(
                s.task(task).func().kind == LiftKind::Sync,
                Trap::TaskNotAsync,
            )?;
            s.task_cancel_internal(task)
        })
    }
}
