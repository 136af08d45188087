//! The cooperative thread built-ins (🧵) and `thread.yield` (🔀).

use crate::error::{EmbedderError, Error};
use crate::ids::{InstanceId, TaskId, ThreadId};
use crate::running::{Cur, Running};
use crate::store::{Step, Store};
use crate::task::{Caller, LiftKind, Lifted, TaskState};
use crate::thread::{Blocked, Resume, Thread, ThreadState, WaitCond};
use crate::trap::{trap_if, Trap};

/// The [`Lifted::func`] of the task of a synchronous call started with
/// [`Store::begin_sync_call`] (as [`Store::task_func`] reports it).
pub const SYNC_CALL_FUNC: u32 = u32::MAX;

/// Which of the four switch built-ins ([`Running::thread_switch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadSwitch {
    /// `thread.suspend-then-resume`: switch to suspended thread `i`,
    /// leaving this one suspended.
    SuspendThenResume,
    /// `thread.yield-then-resume`: switch to suspended thread `i`, leaving
    /// this one ready.
    YieldThenResume,
    /// `thread.suspend-then-promote`: switch to thread `i` if it is ready,
    /// else just suspend.
    SuspendThenPromote,
    /// `thread.yield-then-promote`: switch to thread `i` if it is ready,
    /// else just yield.
    YieldThenPromote,
}

impl ThreadSwitch {
    /// Whether this thread is left suspended (else ready).
    fn suspends(self) -> bool {
        matches!(
            self,
            ThreadSwitch::SuspendThenResume | ThreadSwitch::SuspendThenPromote
        )
    }

    /// Whether the target may be any thread, switched to only if ready
    /// (`Thread.suspend_then_promote`), rather than a suspended one.
    fn promotes(self) -> bool {
        matches!(
            self,
            ThreadSwitch::SuspendThenPromote | ThreadSwitch::YieldThenPromote
        )
    }
}

impl Store {
    /// The thread at index `i` of `inst`.
    #[inline]
    fn thread_at(&self, inst: InstanceId, i: u32) -> Result<ThreadId, Trap> {
        self.inst(inst)
            .threads
            .get(i)
            .copied()
            .map_err(|_| Trap::UnknownThread(i))
    }

    /// `Thread.suspend_then_resume` / `yield_then_resume` /
    /// `suspend_then_promote` / `yield_then_promote`.
    fn switch(
        &mut self,
        (t, task, inst): Cur,
        kind: ThreadSwitch,
        cancellable: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let promote = kind.promotes();
        let o = self.thread_at(inst, i)?;
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
        match (kind.suspends(), target) {
            (true, target) => self.block(t, None, cancellable, blocked, target),
            (false, Some(o)) => {
                self.block(t, Some(WaitCond::Always), cancellable, blocked, Some(o))
            }
            (false, None) => {
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

    // ----- synchronous calls made by the embedder ------------------------------

    /// Starts a synchronous call that the embedder itself makes into `inst`
    /// (a start function, `realloc`): the spec's `canon_lift` of a
    /// non-async function type on a fresh thread of a fresh task (its
    /// [`Lifted::func`] is [`SYNC_CALL_FUNC`]). The new thread runs at once
    /// ([`Store::current_thread`]): call its core function, with built-ins
    /// acting for it, then [`Store::end_sync_call`]. The previously running
    /// thread, if any, is untouched (its context slots included) and runs
    /// again after the end.
    ///
    /// A built-in that blocks in the call answers [`Step::Suspend`] as
    /// usual; [`Store::next_action`] then resumes ready threads of `inst`
    /// (as a synchronous-typed lift does) until the call's thread can go
    /// on, or answers [`Action::Trap`](crate::Action::Trap) with
    /// [`Trap::CannotBlockSync`] when none is ready. Calls nest.
    ///
    /// Fails with [`EmbedderError::UnknownId`] for an unknown instance, and
    /// traps with [`Trap::CannotEnter`] for a poisoned one.
    pub fn begin_sync_call(&mut self, inst: InstanceId) -> Result<ThreadId, Error> {
        if !self.instances.contains(inst.key()) {
            return Err(EmbedderError::UnknownId.into());
        }
        let r = self.begin_sync_call_inner(inst);
        if r.is_err() {
            self.abort(Some(inst));
        }
        Ok(r?)
    }

    fn begin_sync_call_inner(&mut self, inst: InstanceId) -> Result<ThreadId, Trap> {
        trap_if(self.is_poisoned(inst), Trap::CannotEnter)?;
        let func = Lifted {
            inst,
            func: SYNC_CALL_FUNC,
            kind: LiftKind::Sync,
            async_type: false,
        };
        let (task, t) = self.new_task(func, Caller::Host);
        // `enter_implicit_thread` of a non-async type: no gate, no lock.
        if let Err(e) = self.register_thread(task, t) {
            self.threads.remove(t.key());
            self.task_mut(task).clear_threads();
            self.task_exited(task);
            return Err(e);
        }
        self.task_mut(task).state = TaskState::Started;
        let th = self.thread_mut(t);
        th.state = ThreadState::Running;
        th.resume = Resume::Running;
        let serial = self.task(task).serial;
        self.sched.begin_nested(task, serial, t);
        Ok(t)
    }

    /// The running thread of the innermost synchronous call begun with
    /// [`Store::begin_sync_call`], or [`EmbedderError::NotInSyncCall`].
    fn sync_call_thread(&mut self) -> Result<Cur, EmbedderError> {
        let cur = self.running()?.cur();
        match self.sched.nested_top() {
            Some((k, _)) if k == cur.1 && self.task(k).implicit_thread() == Some(cur.0) => Ok(cur),
            _ => Err(EmbedderError::NotInSyncCall),
        }
    }

    /// The core function of the synchronous call begun with
    /// [`Store::begin_sync_call`] returned (the running thread must be that
    /// call's thread, else [`EmbedderError::NotInSyncCall`]): its task
    /// resolves, its thread is gone, and the previously running thread (if
    /// any) runs again.
    pub fn end_sync_call(&mut self) -> Result<(), Error> {
        let (t, task, _) = self.sync_call_thread()?;
        let r = self.end_sync_call_inner(t, task);
        Ok(self.guard(r)?)
    }

    fn end_sync_call_inner(&mut self, t: ThreadId, task: TaskId) -> Result<(), Trap> {
        self.task_return_internal(task)?;
        self.unregister_thread(t)?;
        self.sched.end_nested();
        self.leave_popped();
        Ok(())
    }

    /// [`Store::begin_sync_call`] for `realloc` of `inst`, with `inst`'s
    /// `may_leave` off while it runs (so every built-in but `context.get/set`,
    /// `backpressure.inc/dec` and `resource.rep` traps, `thread.index` included).
    pub fn begin_realloc(&mut self, inst: InstanceId) -> Result<ThreadId, Error> {
        let t = self.begin_sync_call(inst)?;
        self.inst_mut(inst).may_leave = false;
        Ok(t)
    }

    /// [`Store::end_sync_call`] for a call begun with [`Store::begin_realloc`]:
    /// `may_leave` is on again.
    pub fn end_realloc(&mut self) -> Result<(), Error> {
        let (_, _, inst) = self.sync_call_thread()?;
        self.inst_mut(inst).may_leave = true;
        self.end_sync_call()
    }
}

impl Running<'_> {
    /// `canon thread.index`.
    pub fn thread_index(self) -> Result<u32, Trap> {
        self.leave(|s, (t, _, _)| Ok(s.thread(t).index))
    }

    /// `canon thread.new-indirect`: a new suspended thread of the running
    /// task that will call function-table element `func` with `arg`. The
    /// embedder has resolved `func` and checked its type
    /// ([`Trap::BadFunctionReference`] otherwise).
    pub fn thread_new_indirect(self, func: u32, arg: u32) -> Result<u32, Trap> {
        self.leave(|s, (_, task, inst)| {
            let t = ThreadId::from_key(s.threads.insert(Thread::new(
                task,
                inst,
                Resume::Explicit { func, arg },
            )));
            if let Err(e) = s.register_thread(task, t) {
                s.threads.remove(t.key());
                return Err(e);
            }
            Ok(s.thread(t).index)
        })
    }

    /// `canon thread.new-indirect` whose table index is out of bounds or
    /// null, or whose element's type is not the built-in's `ft`: the
    /// embedder calls this instead of [`Running::thread_new_indirect`] and
    /// raises the returned trap ([`Trap::BadFunctionReference`], or
    /// [`Trap::CannotLeave`] first when `may_leave` is off, in the spec's order).
    pub fn thread_new_indirect_invalid(self) -> Trap {
        match self.leave(|_, _| Err::<(), _>(Trap::BadFunctionReference)) {
            Err(t) => t,
            Ok(()) => Trap::BadFunctionReference,
        }
    }

    /// `canon thread.resume-later`: a suspended thread becomes ready.
    pub fn thread_resume_later(self, i: u32) -> Result<(), Trap> {
        self.leave(|s, (_, _, inst)| {
            let o = s.thread_at(inst, i)?;
            trap_if(!s.thread(o).suspended(), Trap::ThreadNotSuspended)?;
            s.thread_mut(o).state = ThreadState::Waiting(WaitCond::Always);
            s.waiting.push(o);
            Ok(())
        })
    }

    /// `canon thread.suspend`: returns `Cancelled` (0 or 1) when resumed.
    pub fn thread_suspend(self, cancellable: bool) -> Result<Step<u32>, Trap> {
        self.leave_blocking(true, |s, (t, task, _)| {
            if s.task_mut(task).deliver_pending_cancel(cancellable) {
                return Ok(Step::Done(1));
            }
            s.block(t, None, cancellable, Resume::Wasm(Blocked::Cancelled), None);
            Ok(Step::Suspend)
        })
    }

    /// `canon thread.yield`: lets other threads run; returns `Cancelled`.
    pub fn thread_yield(self, cancellable: bool) -> Result<Step<u32>, Trap> {
        self.leave(|s, (t, _, _)| {
            let blocked = Resume::Wasm(Blocked::Cancelled);
            Ok(
                match s.wait_until(t, WaitCond::Always, cancellable, blocked) {
                    Some(c) => Step::Done(c as u32),
                    None => Step::Suspend,
                },
            )
        })
    }

    /// The switch built-ins (`canon thread.suspend-then-resume`,
    /// `thread.yield-then-resume`, `thread.suspend-then-promote`,
    /// `thread.yield-then-promote`) in one: returns `Cancelled` (0 or 1)
    /// when this thread is resumed, or at once when it does not switch.
    pub fn thread_switch(
        self,
        kind: ThreadSwitch,
        cancellable: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        self.leave(|s, cur| s.switch(cur, kind, cancellable, i))
    }

    /// `canon thread.suspend-then-resume` ([`Running::thread_switch`]).
    pub fn thread_suspend_then_resume(self, cancellable: bool, i: u32) -> Result<Step<u32>, Trap> {
        self.thread_switch(ThreadSwitch::SuspendThenResume, cancellable, i)
    }

    /// `canon thread.yield-then-resume` ([`Running::thread_switch`]).
    pub fn thread_yield_then_resume(self, cancellable: bool, i: u32) -> Result<Step<u32>, Trap> {
        self.thread_switch(ThreadSwitch::YieldThenResume, cancellable, i)
    }

    /// `canon thread.suspend-then-promote` ([`Running::thread_switch`]).
    pub fn thread_suspend_then_promote(self, cancellable: bool, i: u32) -> Result<Step<u32>, Trap> {
        self.thread_switch(ThreadSwitch::SuspendThenPromote, cancellable, i)
    }

    /// `canon thread.yield-then-promote` ([`Running::thread_switch`]).
    pub fn thread_yield_then_promote(self, cancellable: bool, i: u32) -> Result<Step<u32>, Trap> {
        self.thread_switch(ThreadSwitch::YieldThenPromote, cancellable, i)
    }
}
