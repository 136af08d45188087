//! `canon_lift` (`definitions.py`): a task's implicit thread from its
//! creation to its exit, as one state machine.
//!
//! The spec writes `canon_lift` as one Python function whose nested
//! `thread_func` blocks in place. Here the points where the implicit thread
//! can be parked are the [`LiftPhase`]s (kept in the thread's
//! [`Resume::Lift`]), the core function runs between them in the
//! embedder, and every step names the line of `canon_lift` (or of the
//! `Task` method it calls) that it implements:
//!
//! | step | `definitions.py` (pinned commit) | then |
//! |------|----------------------------------|------|
//! | [`Store::push_lift`] | `task = Task(...)`; `thread = Thread(task, thread_func)`; `thread.resume()` | [`LiftPhase::Enter`]; a [`Frame::SyncLift`] too if `not ft.async_` |
//! | [`LiftPhase::Enter`] | `if not task.enter_implicit_thread(): return` | the gate, or start |
//! | [`LiftPhase::Gate`] | `enter_implicit_thread`: `cancelled = self.implicit_thread.wait_until(lambda: not has_backpressure(), cancellable = True)` | `self.cancel()` and `return False`, or start |
//! | start ([`Store::enter_finish`]) | `self.inst.exclusive_thread = self.implicit_thread`; `self.register_thread(...)`; `args = task.start()` | [`Action::Start`]: the core function runs |
//! | [`Store::lift_returned`] | `not opts.async_`: `task.return_(result)` | post-return, then exit |
//! | [`Store::exit_thread`] | `task.exit_implicit_thread()` (sync after post-return, stackful) | the thread is gone |
//! | [`Store::callback_returned`] | `[packed] = call_and_trap_on_throw(...)`; `code,si = unpack_callback_result(packed)`; `while code != CallbackCode.EXIT`: `inst.exclusive_thread = None` | EXIT: exit; YIELD: [`LiftPhase::CallbackYield`]; WAIT: [`LiftPhase::CallbackWait`] |
//! | [`LiftPhase::CallbackYield`] | `cancelled = thread.wait_until(lambda: not inst.exclusive_thread, cancellable = True)` | [`Action::Callback`] |
//! | [`LiftPhase::CallbackWait`] | `wset = inst.handles.get(si)`; `trap_if(not isinstance(wset, WaitableSet))`; `event = wset.wait_for_event_and(lambda: not inst.exclusive_thread, cancellable = True)` | [`Action::Callback`] |
//! | [`Store::callback_event`] | `inst.exclusive_thread = task.implicit_thread`; `call_and_trap_on_throw(opts.callback, [event_code, p1, p2])` | the callback runs |
//! | [`Store::sync_resume_ready`] ([`Frame::SyncLift`]) | `if not ft.async_: while task.state != Task.State.RESOLVED: candidates = ...; trap_if(not candidates); random.choice(list(candidates)).resume()` | a ready thread of the instance runs |
//!
//! `thread.wait_until` may return at once (the condition holds, or a
//! pending cancellation is delivered): the phase is then never stored, and
//! the step that follows runs in the same call.

use crate::action::Action;
use crate::chooser::ChoicePoint;
use crate::error::Error;
use crate::ids::{SetId, TaskId, ThreadId};
use crate::instance::Handle;
use crate::running::Cur;
use crate::sched::Frame;
use crate::store::{ResultDelivery, Store};
use crate::subtask::SubtaskState;
use crate::task::{Caller, Lifted, TaskState};
use crate::thread::{Resume, WaitCond};
use crate::trap::{trap_if, Trap};
use crate::waitable::Event;
use smallvec::SmallVec;

/// Where a task's implicit thread is parked inside `canon_lift`'s
/// `thread_func` (see the [module](self) table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LiftPhase {
    /// Created, not yet run: `thread.resume()` runs `enter_implicit_thread`.
    Enter,
    /// Waiting at the backpressure gate of `enter_implicit_thread`.
    Gate,
    /// A callback task between events, after `YIELD`.
    CallbackYield,
    /// A callback task between events, after `WAIT` on the set.
    CallbackWait(SetId),
}

impl Store {
    /// `canon_lift`'s first resume, and the sync-typed loop frame.
    #[inline]
    pub(crate) fn push_lift(&mut self, task: TaskId, thread: ThreadId) {
        if !self.task(task).func().async_type {
            let serial = self.task(task).serial;
            self.sched.push(Frame::SyncLift { task, serial });
        }
        self.sched.resume(thread, false);
    }

    /// Resumes the implicit thread `t` parked at `phase` (`cancelled`: a
    /// cancellation is delivered to it).
    #[inline]
    pub(crate) fn lift_resume(
        &mut self,
        t: ThreadId,
        phase: LiftPhase,
        cancelled: bool,
    ) -> Result<Option<Action>, Trap> {
        match phase {
            LiftPhase::Enter => {
                let task = self.thread(t).task;
                self.enter_implicit_thread(t, task)
            }
            LiftPhase::Gate => self.enter_gate_resumed(t, cancelled),
            LiftPhase::CallbackYield | LiftPhase::CallbackWait(_) => {
                let e = self.callback_wakes(phase, cancelled);
                Ok(Some(self.callback_event(t, e)))
            }
        }
    }

    /// The event a callback task's wait of `phase` ends with: `NONE` after
    /// `YIELD`, the set's event after `WAIT`, `TASK_CANCELLED` if cancelled.
    fn callback_wakes(&mut self, phase: LiftPhase, cancelled: bool) -> Event {
        if let LiftPhase::CallbackWait(set) = phase {
            self.sets[set.key()].num_waiting -= 1;
        }
        match phase {
            _ if cancelled => Event::TASK_CANCELLED,
            LiftPhase::CallbackWait(set) => self.set_get_pending_event(set),
            _ => Event::NONE,
        }
    }

    /// `Task.enter_implicit_thread`, up to the backpressure gate.
    #[inline]
    pub(crate) fn enter_implicit_thread(
        &mut self,
        t: ThreadId,
        task: TaskId,
    ) -> Result<Option<Action>, Trap> {
        let f = self.task(task).func();
        if f.async_type
            && (self.has_backpressure(task) || self.inst(f.inst).num_waiting_to_enter > 0)
        {
            self.inst_mut(f.inst).num_waiting_to_enter += 1;
            let gate = Resume::Lift(LiftPhase::Gate);
            match self.wait_until(t, WaitCond::NoBackpressure(task), true, gate) {
                None => return Ok(None),
                Some(c) => return self.enter_gate_resumed(t, c),
            }
        }
        self.enter_finish(t, task, f)
    }

    /// After the backpressure gate: cancelled before starting, or enter.
    pub(crate) fn enter_gate_resumed(
        &mut self,
        t: ThreadId,
        cancelled: bool,
    ) -> Result<Option<Action>, Trap> {
        let task = self.thread(t).task;
        let inst = self.thread(t).inst;
        self.inst_mut(inst).num_waiting_to_enter -= 1;
        if cancelled {
            self.task_cancel_internal(task)?;
            // The thread function returns without ever registering the thread.
            self.threads.remove(t.key());
            self.task_mut(task).clear_threads();
            self.task_exited(task);
            self.sched.stop(t);
            self.sched.return_to_frame();
            return Ok(None);
        }
        let f = self.task(task).func();
        self.enter_finish(t, task, f)
    }

    /// The rest of `enter_implicit_thread`, then `task.start()` (`on_start`).
    #[inline]
    pub(crate) fn enter_finish(
        &mut self,
        t: ThreadId,
        task: TaskId,
        f: Lifted,
    ) -> Result<Option<Action>, Trap> {
        let i = self.inst_mut(f.inst);
        if f.async_type && f.needs_exclusive() {
            debug_assert!(i.exclusive_thread.is_none());
            i.exclusive_thread = Some(t);
        }
        // `register_thread` (the task's instance is `f.inst`).
        let index = i.threads.add(t)?;
        self.thread_mut(t).index = index;
        let tk = self.task_mut(task);
        tk.push_thread(t);
        debug_assert_eq!(tk.state, TaskState::Initial);
        tk.state = TaskState::Started;
        if let Caller::Guest(s) = tk.caller() {
            let wt = self.w_mut(s.0);
            let has_handle = wt.index != 0;
            let st = wt.subtask_mut().expect("waitable is a subtask");
            debug_assert_eq!(st.state, SubtaskState::Starting);
            st.state = SubtaskState::Started;
            self.subtask_progress(s.0, has_handle);
        }
        Ok(Some(Action::Start {
            thread: t,
            task,
            func: f.func,
        }))
    }

    /// Hands `event` to the callback of the task of `t`, re-acquiring the lock.
    pub(crate) fn callback_event(&mut self, t: ThreadId, event: Event) -> Action {
        let th = self.thread(t);
        let (task, inst) = (th.task, th.inst);
        debug_assert!(self.inst(inst).exclusive_thread.is_none());
        self.inst_mut(inst).exclusive_thread = Some(t);
        Action::Callback {
            thread: t,
            task,
            func: self.task(task).func().func,
            event,
        }
    }

    /// The loop of a synchronous-typed `canon_lift` while its task has not
    /// resolved: resume a ready thread of the task's instance (never the
    /// holder of the exclusive lock), keeping `frame` on the stack; trap
    /// when there is none. The candidates are the instance's *registered*
    /// threads (`definitions.py`, `canon_lift`: `{ t for t in inst.threads
    /// if t.ready() and t is not inst.exclusive_thread }`): the implicit
    /// thread of a task still waiting at the backpressure gate is not one.
    /// Candidates come in waiting order, as for the
    /// tick, so the deterministic chooser goes round-robin (table order
    /// would let the first of two yielding threads starve the second).
    pub(crate) fn sync_resume_ready(
        &mut self,
        task: TaskId,
        frame: Frame,
    ) -> Result<Option<Action>, Trap> {
        let inst = self.task(task).inst();
        let excl = self.inst(inst).exclusive_thread;
        let cands: SmallVec<[ThreadId; 8]> = self
            .waiting
            .active()
            .filter(|&t| {
                let th = self.thread(t);
                th.inst == inst && th.index != 0 && Some(t) != excl && self.thread_ready(t)
            })
            .collect();
        // Back on the stack either way: a trap poisons the frame's instance
        // even when the task's implicit thread is already gone.
        self.sched.push(frame);
        trap_if(cands.is_empty(), Trap::CannotBlockSync)?;
        let k = self.choose(ChoicePoint::SyncLiftCandidate, cands.len());
        self.sched.resume(cands[k], false);
        Ok(None)
    }

    /// A synchronously lifted core function returned its results: the
    /// spec's `task.return_` on them. The embedder then delivers the values
    /// as [`ResultDelivery`] says, runs `post-return` (between
    /// [`Store::set_may_leave`] `false` and `true`), and calls [`Store::exit_thread`].
    pub fn lift_returned(&mut self) -> Result<ResultDelivery, Error> {
        Ok(self
            .running()?
            .run(|s, (_, task, _)| s.task_return_internal(task))?)
    }

    /// The running thread's core function returned (a stackful lift, an
    /// explicit thread, or a sync lift after its post-return): the thread is
    /// gone. Traps when it was the last thread of a task that has not resolved.
    pub fn exit_thread(&mut self) -> Result<(), Error> {
        Ok(self.running()?.run(|s, cur| s.exit_thread_inner(cur))?)
    }

    #[inline]
    fn exit_thread_inner(&mut self, (t, task, inst): Cur) -> Result<(), Trap> {
        let tk = self.task(task);
        let (f, implicit) = (tk.func(), tk.implicit_thread() == Some(t));
        self.unregister_thread(t)?;
        if implicit && f.async_type && f.needs_exclusive() {
            let i = self.inst_mut(inst);
            debug_assert_eq!(i.exclusive_thread, Some(t));
            if i.exclusive_thread == Some(t) {
                i.exclusive_thread = None;
            }
        }
        self.sched.stop(t);
        self.sched.return_to_frame();
        Ok(())
    }

    /// A callback-lifted core function (or its callback) returned `packed`:
    /// EXIT, YIELD or WAIT on the set `packed >> 4`.
    pub fn callback_returned(&mut self, packed: u32) -> Result<(), Error> {
        Ok(self
            .running()?
            .run(|s, cur| s.callback_returned_inner(cur, packed))?)
    }

    fn callback_returned_inner(&mut self, cur: Cur, packed: u32) -> Result<(), Trap> {
        let (t, _, inst) = cur;
        let code = packed & 0xf;
        trap_if(code > 2, Trap::UnsupportedCallbackCode(code))?;
        if code == 0 {
            return self.exit_thread_inner(cur);
        }
        debug_assert_eq!(self.inst(inst).exclusive_thread, Some(t));
        self.inst_mut(inst).exclusive_thread = None;
        let (cond, phase) = if code == 1 {
            (WaitCond::NoExclusive(inst), LiftPhase::CallbackYield)
        } else {
            let si = packed >> 4;
            let task = self.thread(t).task;
            self.may_block_check(task, true)?;
            let set = match self.inst(inst).handles.get(si)? {
                Handle::Set(s) => *s,
                _ => return Err(Trap::WrongHandleKind(si)),
            };
            self.sets[set.key()].num_waiting += 1;
            (
                WaitCond::SetEvent(set, Some(inst)),
                LiftPhase::CallbackWait(set),
            )
        };
        let early = self
            .wait_until(t, cond, true, Resume::Lift(phase))
            .map(|cancelled| self.callback_wakes(phase, cancelled));
        if let Some(e) = early {
            let a = self.callback_event(t, e);
            self.sched.stop(t);
            self.sched.emit(a, false);
        }
        Ok(())
    }
}
