//! `canon lower`: a guest calls a guest export or a host function.
//!
//! `definitions.py`'s `canon_lower` calls the callee (`canon_lift`, or host
//! code) and carries on when the callee blocks or returns. Here the caller
//! suspends into a [`Frame::Lower`]; the callee runs as a thread of its own
//! (or as host code); popping the frame finishes the call:
//!
//! | step | `definitions.py` (pinned commit) |
//! |------|----------------------------------|
//! | [`Running::canon_lower`] | `trap_if(not thread.task.inst.may_leave)`; `subtask = Subtask()`; `subtask.on_cancel = callee(on_start, on_resolve, caller = thread.task.inst)` |
//! | guest callee | `Store.lift`'s `trap_if(not inst.may_enter_from(caller))`, `enter_from(caller)`, then `canon_lift` ([`Store::push_lift`](crate::Store)) |
//! | host callee | `on_start()` at once, then [`Action::HostCall`] |
//! | [`Store::finish_lower`], sync | `if not subtask.resolved(): thread.wait_until(subtask.resolved)`; `subtask.deliver_resolve()`; `return subtask.flat_results` |
//! | [`Store::finish_lower`], async | `if subtask.resolved(): subtask.deliver_resolve(); return [RETURNED]`, else `subtaski = thread.task.inst.handles.add(subtask)`; `return [subtask.state \| (subtaski << 4)]` |

use crate::action::{Action, ResumeValue};
use crate::error::EmbedderError;
use crate::ids::{InstanceId, SubtaskId, ThreadId, WaitableId};
use crate::instance::Handle;
use crate::running::{Cur, Running};
use crate::sched::Frame;
use crate::store::Store;
use crate::subtask::{Callee, Subtask, SubtaskState};
use crate::task::{Caller, Lifted};
use crate::thread::{Blocked, Resume, WaitCond};
use crate::trap::{trap_if, Trap};
use crate::waitable::{Waitable, WaitableKind};

/// The callee of a lowered call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowerCallee {
    /// A lifted function of a component instance.
    Guest(Lifted),
    /// A host function of a non-async type: the core answers [`Action::HostCall`].
    Host,
    /// A host function of an `async` function type (a synchronous task
    /// that lowers it synchronously may block: see
    /// [`Reading`](crate::Reading)); otherwise like [`LowerCallee::Host`].
    AsyncHost,
}

impl Store {
    #[inline]
    fn canon_lower_inner(
        &mut self,
        (t, _, inst): Cur,
        callee: LowerCallee,
        async_: bool,
    ) -> Result<SubtaskId, Trap> {
        if let LowerCallee::Guest(f) = callee {
            trap_if(self.is_poisoned(f.inst), Trap::CannotEnter)?;
            let top_level = |i: InstanceId| {
                self.instances
                    .get(i.key())
                    .is_some_and(|n| n.parent.is_none())
            };
            if top_level(f.inst) && top_level(inst) {
                // Two top-level instances: the checks below come down to
                // these (each instance is its only ancestor, and the
                // entering set is the callee alone).
                trap_if(
                    f.inst == inst || !self.inst(f.inst).may_enter,
                    Trap::CannotEnter,
                )?;
            } else {
                // The reference suite (trap-on-reenter.wast) pins that a call
                // between an instance and itself or an ancestor traps.
                trap_if(
                    self.is_ancestor_or_self(f.inst, inst)
                        || self.is_ancestor_or_self(inst, f.inst),
                    Trap::CannotEnter,
                )?;
                // `Store.lift`: `trap_if(not inst.may_enter_from(caller))`: no
                // instance on the call chain may be entered again (X -> Y -> X).
                trap_if(!self.may_enter_from(f.inst, Some(inst)), Trap::CannotEnter)?;
            }
        }
        let w = WaitableId::from_key(self.waitables.insert(Waitable::new(
            inst,
            WaitableKind::Subtask(Subtask {
                state: SubtaskState::Starting,
                callee: Callee::Host,
                lenders: crate::subtask::NO_LENDS,
                delivered: false,
                cancellation_requested: false,
                async_,
            }),
        )));
        self.thread_mut(t).resume = Resume::Wasm(Blocked::Call { subtask: w });
        self.sched.call(Frame::Lower {
            caller: t,
            subtask: w,
        });
        match callee {
            LowerCallee::Guest(f) => {
                // `Store.lift`'s `enter_from(caller)`, left when the lower's
                // frame is popped (`canon_lift` returned).
                self.enter_from(f.inst, Some(inst));
                let (task, thread) = self.new_task(f, Caller::Guest(SubtaskId(w)));
                self.sub_mut(w).callee = Callee::Task(task);
                self.push_lift(task, thread);
            }
            LowerCallee::Host | LowerCallee::AsyncHost => {
                // A host callee starts at once (`on_start`).
                self.sub_mut(w).state = SubtaskState::Started;
                self.sched.emit(
                    Action::HostCall {
                        subtask: SubtaskId(w),
                    },
                    true,
                );
            }
        }
        Ok(SubtaskId(w))
    }

    /// The host function of `subtask` returned (the spec's `on_resolve`
    /// with values): the embedder lowers the results into the caller itself.
    pub fn host_return(&mut self, subtask: SubtaskId) -> Result<(), EmbedderError> {
        self.host_resolve(subtask, SubtaskState::Returned)
    }

    /// The host function of `subtask` was cancelled (`on_resolve(None)`
    /// after [`Action::HostCancel`]).
    pub fn host_cancelled(&mut self, subtask: SubtaskId) -> Result<(), EmbedderError> {
        let s = self
            .waitables
            .get(subtask.0.key())
            .and_then(|w| w.subtask())
            .ok_or(EmbedderError::UnknownId)?;
        if !s.cancellation_requested {
            return Err(EmbedderError::WrongState);
        }
        self.host_resolve(subtask, SubtaskState::CancelledBeforeReturned)
    }

    /// The host failed the call of `subtask` (its host function trapped,
    /// panicked or returned values of the wrong type): the caller's
    /// instance traps, as when a built-in traps. A no-op for an unknown
    /// subtask.
    pub fn host_trapped(&mut self, subtask: SubtaskId) {
        if let Some(inst) = self.subtask_caller(subtask) {
            self.abort(Some(inst));
        }
    }

    fn host_resolve(
        &mut self,
        subtask: SubtaskId,
        state: SubtaskState,
    ) -> Result<(), EmbedderError> {
        let s = self
            .waitables
            .get(subtask.0.key())
            .and_then(|w| w.subtask())
            .ok_or(EmbedderError::UnknownId)?;
        if s.callee != Callee::Host || s.state != SubtaskState::Started {
            return Err(EmbedderError::WrongState);
        }
        self.resolve_subtask(subtask.0, state);
        Ok(())
    }

    /// The rest of `canon_lower` once the callee blocked or finished.
    #[inline]
    pub(crate) fn finish_lower(
        &mut self,
        caller: ThreadId,
        w: WaitableId,
    ) -> Result<Option<Action>, Trap> {
        self.sched.run(caller);
        self.thread_mut(caller).resume = Resume::Running;
        let s = self.sub(w);
        let (resolved, async_, state) = (s.state.resolved(), s.async_, s.state);
        if !async_ {
            if !resolved {
                let blocked = Resume::Wasm(Blocked::SyncLower { subtask: w });
                if self
                    .wait_until(caller, WaitCond::SubtaskResolved(w), false, blocked)
                    .is_none()
                {
                    return Ok(None);
                }
            }
            self.deliver_resolve(w);
            self.waitables.remove(w.key());
            return Ok(Some(Action::Resume {
                thread: caller,
                value: ResumeValue::Returned(SubtaskId(w)),
            }));
        }
        if resolved {
            self.deliver_resolve(w);
            self.waitables.remove(w.key());
            return Ok(Some(Action::Resume {
                thread: caller,
                value: ResumeValue::I32(SubtaskState::Returned as u32),
            }));
        }
        let inst = self.w(w).inst;
        let index = self.inst_mut(inst).handles.add(Handle::Waitable(w))?;
        self.w_mut(w).index = index;
        Ok(Some(Action::Resume {
            thread: caller,
            value: ResumeValue::I32(state as u32 | (index << 4)),
        }))
    }
}

impl Running<'_> {
    /// `canon lower` (`canon_lower`): the running thread calls `callee`, synchronously
    /// (`async_ == false`: it resumes with [`ResumeValue::Returned`]
    /// once the callee resolved) or asynchronously (it resumes with the
    /// packed `state | index << 4`, or a plain `RETURNED`).
    ///
    /// Traps with [`Trap::CannotEnter`] when the callee's instance is
    /// poisoned, or is the caller's instance, an ancestor or a descendant
    /// of it (the reference suite's reentrance rule), or is on the current
    /// call chain (`Store.lift`'s `may_enter_from`: X -> Y -> X).
    ///
    /// The caller always suspends (park its continuation and call
    /// [`Store::next_action`]): the callee runs as a thread of its own (or
    /// as host code), and the caller resumes when the callee returns or
    /// blocks. The returned id keys the call's arguments and results on
    /// the embedder's side ([`Caller::Guest`], [`ResultDelivery::Guest`](crate::ResultDelivery::Guest)).
    pub fn canon_lower(self, callee: LowerCallee, async_: bool) -> Result<SubtaskId, Trap> {
        let callee_async = match callee {
            LowerCallee::Guest(f) => f.async_type,
            LowerCallee::Host => false,
            LowerCallee::AsyncHost => true,
        };
        self.leave_blocking(callee_async && !async_, |s, cur| {
            s.canon_lower_inner(cur, callee, async_)
        })
    }
}
