//! The cooperative thread built-ins (🧵) and `thread.yield` (🔀).

use crate::ids::ThreadId;
use crate::store::{Step, Store};
use crate::thread::{Blocked, Resume, Thread, ThreadState, WaitCond};
use crate::trap::{trap_if, Trap};

/// Which of the switch built-ins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Suspend,
    Yield,
}

impl Store {
    /// The thread at index `i` of the running thread's instance.
    fn thread_at(&self, i: u32) -> Result<ThreadId, Trap> {
        let (_, _, inst) = self.running()?;
        self.inst(inst)
            .threads
            .get(i)
            .copied()
            .map_err(|_| Trap::UnknownThread(i))
    }

    /// `Thread.stop_waiting_internal` of a ready thread being promoted.
    fn unwait(&mut self, t: ThreadId) {
        if let Some(pos) = self.waiting.iter().position(|&x| x == t) {
            self.waiting.remove(pos);
        }
        self.thread_mut(t).state = ThreadState::Suspended;
    }

    /// `canon thread.index`.
    pub fn thread_index(&mut self) -> Result<u32, Trap> {
        let r = self.leaving().map(|(t, _, _)| self.thread(t).index);
        self.guard(r)
    }

    /// `canon thread.new-indirect`: a new suspended thread of the running
    /// task that will call function-table element `func` with `arg`. The
    /// embedder has resolved `func` and checked its type
    /// ([`Trap::BadFunctionReference`] otherwise).
    pub fn thread_new_indirect(&mut self, func: u32, arg: u32) -> Result<u32, Trap> {
        let r = self.leaving().and_then(|(_, task, inst)| {
            let t = ThreadId::from_key(self.threads.insert(Thread {
                task,
                inst,
                state: ThreadState::Suspended,
                cancellable: false,
                index: 0,
                storage: [0; 2],
                resume: Resume::Explicit { func, arg },
            }));
            if let Err(e) = self.register_thread(task, t) {
                self.threads.remove(t.key());
                return Err(e);
            }
            Ok(self.thread(t).index)
        });
        self.guard(r)
    }

    /// `canon thread.resume-later`: a suspended thread becomes ready.
    pub fn thread_resume_later(&mut self, i: u32) -> Result<(), Trap> {
        let r = self.leaving().and_then(|_| {
            let o = self.thread_at(i)?;
            trap_if(!self.thread(o).suspended(), Trap::ThreadNotSuspended)?;
            self.thread_mut(o).state = ThreadState::Waiting(WaitCond::Always);
            self.waiting.push(o);
            Ok(())
        });
        self.guard(r)
    }

    /// `canon thread.suspend`: returns `Cancelled` (0 or 1) when resumed.
    pub fn thread_suspend(&mut self, cancellable: bool) -> Result<Step<u32>, Trap> {
        let r = self.leaving().map(|(t, task, _)| {
            if self.task_mut(task).deliver_pending_cancel(cancellable) {
                return Step::Done(1);
            }
            self.block(t, None, cancellable, Resume::Wasm(Blocked::Cancelled), None);
            Step::Suspend
        });
        self.guard(r)
    }

    /// `canon thread.yield`: lets other threads run; returns `Cancelled`.
    pub fn thread_yield(&mut self, cancellable: bool) -> Result<Step<u32>, Trap> {
        let r = self.leaving().map(|(t, _, _)| {
            match self.wait_until(
                t,
                WaitCond::Always,
                cancellable,
                Resume::Wasm(Blocked::Cancelled),
            ) {
                Some(c) => Step::Done(c as u32),
                None => Step::Suspend,
            }
        });
        self.guard(r)
    }

    /// `canon thread.suspend-then-resume`: switch to suspended thread `i`,
    /// leaving this one suspended.
    pub fn thread_suspend_then_resume(
        &mut self,
        cancellable: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let r = self.switch(cancellable, i, Then::Suspend, false);
        self.guard(r)
    }

    /// `canon thread.yield-then-resume`: switch to suspended thread `i`,
    /// leaving this one ready.
    pub fn thread_yield_then_resume(
        &mut self,
        cancellable: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let r = self.switch(cancellable, i, Then::Yield, false);
        self.guard(r)
    }

    /// `canon thread.suspend-then-promote`: switch to thread `i` if it is
    /// ready, else just suspend.
    pub fn thread_suspend_then_promote(
        &mut self,
        cancellable: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let r = self.switch(cancellable, i, Then::Suspend, true);
        self.guard(r)
    }

    /// `canon thread.yield-then-promote`: switch to thread `i` if it is
    /// ready, else just yield.
    pub fn thread_yield_then_promote(
        &mut self,
        cancellable: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let r = self.switch(cancellable, i, Then::Yield, true);
        self.guard(r)
    }

    fn switch(
        &mut self,
        cancellable: bool,
        i: u32,
        then: Then,
        promote: bool,
    ) -> Result<Step<u32>, Trap> {
        let (t, task, _) = self.leaving()?;
        let o = self.thread_at(i)?;
        if !promote {
            trap_if(!self.thread(o).suspended(), Trap::ThreadNotSuspended)?;
        }
        if self.task_mut(task).deliver_pending_cancel(cancellable) {
            return Ok(Step::Done(1));
        }
        let target = if !promote {
            Some(o)
        } else if self.thread_ready(o) {
            self.unwait(o);
            Some(o)
        } else {
            None
        };
        let blocked = Resume::Wasm(Blocked::Cancelled);
        match (then, target) {
            (Then::Suspend, target) => self.block(t, None, cancellable, blocked, target),
            (Then::Yield, Some(o)) => {
                self.block(t, Some(WaitCond::Always), cancellable, blocked, Some(o))
            }
            (Then::Yield, None) => {
                return Ok(
                    match self.wait_until(t, WaitCond::Always, cancellable, blocked) {
                        Some(c) => Step::Done(c as u32),
                        None => Step::Suspend,
                    },
                )
            }
        }
        Ok(Step::Suspend)
    }
}
