//! `subtask.cancel` and `subtask.drop`, and `Task.request_cancellation`.
//!
//! The cancellation as a state machine: the caller suspends into a
//! [`Frame::Cancel`] while the request is delivered, and popping the frame
//! finishes the built-in:
//!
//! | step | `definitions.py` (pinned commit) |
//! |------|----------------------------------|
//! | [`Running::subtask_cancel`] | `trap_if(subtask.resolve_delivered())`; `trap_if(subtask.cancellation_requested)`; `trap_if(subtask.in_waitable_set() and not async_)`; `if subtask.resolved(): ...get_pending_event()`; `subtask.cancellation_requested = True`; `subtask.on_cancel(thread.task.inst)` |
//! | [`Store::request_cancellation`], not started | `self.state = CANCEL_DELIVERED`; `self.implicit_thread.resume(Cancelled.TRUE)` (the backpressure gate) |
//! | [`Store::request_cancellation`], started | `candidates = { t for t in self.threads if t.cancellable }` (less the implicit thread if another holds the lock); `if candidates and may_enter_from(caller)`: `enter_from`, `random.choice(...).resume(Cancelled.TRUE)`; else `PENDING_CANCEL` |
//! | host callee | [`Action::HostCancel`] |
//! | [`Store::finish_subtask_cancel`] | `if not subtask.resolved(): if not async_: subtask.wait_for_pending_event() else: return [BLOCKED]`; `code,index,payload = subtask.get_pending_event()`; `return [subtask.state]` |

use smallvec::SmallVec;

use crate::action::{Action, ResumeValue};
use crate::chooser::ChoicePoint;
use crate::ids::{InstanceId, SubtaskId, TaskId, ThreadId, WaitableId};
use crate::instance::Handle;
use crate::running::{Cur, Running};
use crate::sched::Frame;
use crate::store::{Step, Store, BLOCKED};
use crate::subtask::Callee;
use crate::task::TaskState;
use crate::thread::{Blocked, Resume, ThreadState};
use crate::trap::{trap_if, Trap};

impl Store {
    /// The subtask at handle index `i` of `inst`.
    pub(crate) fn subtask_at(&self, inst: InstanceId, i: u32) -> Result<WaitableId, Trap> {
        match self.inst(inst).handles.get(i)? {
            Handle::Waitable(w) if self.w(*w).subtask().is_some() => Ok(*w),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    fn subtask_cancel_inner(
        &mut self,
        (t, _, inst): Cur,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let w = self.subtask_at(inst, i)?;
        let s = self.sub(w);
        trap_if(s.resolve_delivered(), Trap::SubtaskResolveDelivered)?;
        trap_if(s.cancellation_requested, Trap::SubtaskCancelTwice)?;
        trap_if(
            self.w(w).wset().is_some() && !async_,
            Trap::SyncInWaitableSet,
        )?;
        if s.state.resolved() {
            debug_assert!(self.w(w).pending.is_some());
            return Ok(Step::Done(self.get_pending_event(w).payload));
        }
        let callee = s.callee;
        self.sub_mut(w).cancellation_requested = true;
        self.thread_mut(t).resume = Resume::Wasm(Blocked::Cancel { subtask: w });
        self.sched.call(Frame::Cancel {
            caller: t,
            subtask: w,
            async_,
        });
        match callee {
            Callee::Task(task) => self.request_cancellation(task, inst),
            Callee::Gone => self.sched.return_to_frame(),
            Callee::Host => self.sched.emit(
                Action::HostCancel {
                    subtask: SubtaskId(w),
                },
                true,
            ),
        }
        Ok(Step::Suspend)
    }

    /// `Task.request_cancellation`: deliver the cancellation to a
    /// cancellable thread now, or leave it pending (no candidate, or the
    /// task's instance may not be entered from `caller`: it is on the call
    /// chain). Delivering enters the instance until the `Cancel` frame on
    /// top of the stack is popped.
    pub(crate) fn request_cancellation(&mut self, task: TaskId, caller: InstanceId) {
        let tk = self.task(task);
        if tk.state == TaskState::Initial {
            // A task that has not started still has its implicit thread
            // (waiting at the backpressure gate).
            debug_assert!(tk.implicit_thread().is_some());
            if let Some(t) = tk.implicit_thread() {
                self.task_mut(task).state = TaskState::CancelDelivered;
                self.sched.resume(t, true);
                return;
            }
        }
        debug_assert_eq!(tk.state, TaskState::Started);
        let implicit = tk.implicit_thread();
        let f = tk.func();
        let excl = self.inst(f.inst).exclusive_thread;
        let skip_implicit =
            f.async_type && f.needs_exclusive() && excl.is_some() && excl != implicit;
        let cands: SmallVec<[ThreadId; 4]> = tk
            .threads()
            .filter(|&t| {
                let th = self.thread(t);
                th.cancellable
                    && th.state != ThreadState::Running
                    && !(skip_implicit && Some(t) == implicit)
            })
            .collect();
        if cands.is_empty() || !self.may_enter_from(f.inst, Some(caller)) {
            self.task_mut(task).state = TaskState::PendingCancel;
            self.sched.return_to_frame();
        } else {
            self.task_mut(task).state = TaskState::CancelDelivered;
            self.enter_from(f.inst, Some(caller));
            let k = self.choose(ChoicePoint::CancelTarget, cands.len());
            self.sched.resume(cands[k], true);
        }
    }

    /// The rest of `subtask.cancel` after `request_cancellation` returned.
    pub(crate) fn finish_subtask_cancel(
        &mut self,
        caller: ThreadId,
        w: WaitableId,
        async_: bool,
    ) -> Result<Option<Action>, Trap> {
        self.sched.run(caller);
        self.thread_mut(caller).resume = Resume::Running;
        if !self.sub(w).state.resolved() {
            if async_ {
                return Ok(Some(Action::Resume {
                    thread: caller,
                    value: ResumeValue::I32(BLOCKED),
                }));
            }
            if self.wait_for_pending_event(caller, w).is_none() {
                return Ok(None);
            }
        }
        let payload = self.get_pending_event(w).payload;
        Ok(Some(Action::Resume {
            thread: caller,
            value: ResumeValue::I32(payload),
        }))
    }
}

impl Running<'_> {
    /// `canon subtask.cancel`: the subtask's state once resolved, or
    /// `BLOCKED` (async) when the callee did not resolve yet.
    pub fn subtask_cancel(self, async_: bool, i: u32) -> Result<Step<u32>, Trap> {
        self.leave_blocking(!async_, |s, cur| s.subtask_cancel_inner(cur, async_, i))
    }

    /// `canon subtask.drop`.
    pub fn subtask_drop(self, i: u32) -> Result<(), Trap> {
        self.leave(|s, (_, _, inst)| {
            let w = s.subtask_at(inst, i)?;
            trap_if(!s.sub(w).resolve_delivered(), Trap::SubtaskNotResolved)?;
            s.inst_mut(inst).handles.remove(i)?;
            s.drop_waitable(w);
            Ok(())
        })
    }
}
