//! `Thread` (`definitions.py`'s `class Thread`): the unit the core
//! schedules, and its methods `block`, `wait_until`, `resume`, `ready`.
//! The embedder owns each thread's continuation; the core owns its state
//! and says when to resume it.
//!
//! A thread's state is three fields read together: [`ThreadState`] (does
//! it run, is it suspended, or does it wait for a [`WaitCond`]), and
//! [`Resume`] (what resuming it does: a lift phase, an explicit thread's
//! start, or a parked wasm continuation, whose [`Blocked`] says the value
//! it resumes with). Every combination that occurs:
//!
//! | `state` | `resume` | the thread is | it goes on with |
//! |---------|----------|---------------|-----------------|
//! | `Running` | `Running` | the current thread: its guest code runs | — |
//! | `Running` | `Wasm(Call)` | a `canon lower` caller; its callee runs ([`Frame::Lower`](crate::sched::Frame::Lower)) | the frame's return: the call's result |
//! | `Running` | `Wasm(Cancel)` | a `subtask.cancel` caller; the cancellation is delivered ([`Frame::Cancel`](crate::sched::Frame::Cancel)) | the frame's return: the subtask's state or `BLOCKED` |
//! | `Suspended` | `Lift(Enter)` | a new task's implicit thread (resumed at once) | `enter_implicit_thread` |
//! | `Waiting(NoBackpressure)` | `Lift(Gate)` | at the backpressure gate | `Action::Start`, or the task is cancelled before it started |
//! | `Waiting(NoExclusive)` | `Lift(CallbackYield)` | a callback task after `YIELD` | `Action::Callback` with `NONE` / `TASK_CANCELLED` |
//! | `Waiting(SetEvent(_, Some))` | `Lift(CallbackWait)` | a callback task after `WAIT` | `Action::Callback` with the event / `TASK_CANCELLED` |
//! | `Suspended` | `Explicit` | a new explicit thread (`thread.new-indirect`) | `Action::StartThread` |
//! | `Suspended` | `Wasm(Cancelled)` | in `thread.suspend` or the suspend side of a switch | `Action::Resume` with `Cancelled` |
//! | `Waiting(Always)` | `Wasm(Cancelled)` | in `thread.yield`, the yield side of a switch, or after `thread.resume-later` | `Action::Resume` with `Cancelled` |
//! | `Waiting(SetEvent(_, None))` | `Wasm(Wait)` | in `waitable-set.wait` | `Action::Resume` with the event |
//! | `Waiting(PendingEvent)` | `Wasm(SyncEvent)` | in a synchronous copy, copy cancel or `subtask.cancel` | `Action::Resume` with the event's payload |
//! | `Waiting(SubtaskResolved)` | `Wasm(SyncLower)` | in a synchronous `canon lower` whose callee blocked | `Action::Resume` with `Returned` |
//!
//! A waiting thread is in `Store.waiting` (the [`WaitQueue`](crate::wait_queue::WaitQueue));
//! `relock` marks a callback task's thread that gave its instance's
//! exclusive lock up while blocked ([`Reading::Suite`]) and takes it back
//! on resume.

use core::mem;

use crate::action::{Action, ResumeValue};
use crate::chooser::ChoicePoint;
use crate::ids::{InstanceId, SetId, SubtaskId, TaskId, ThreadId, WaitableId};
use crate::lift::LiftPhase;
use crate::store::{Reading, Store};
use crate::task::LiftKind;
use crate::trap::Trap;
use crate::wait_queue::Key;
use crate::waitable::Event;

/// What makes a waiting thread ready: the spec's `ready_func` closures,
/// as data evaluated against the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitCond {
    /// `lambda: True` (`thread.yield`, `resume_later`).
    Always,
    /// `subtask.resolved` (a synchronous lower into an async callee).
    SubtaskResolved(WaitableId),
    /// `Waitable.has_pending_event` (`wait_for_pending_event`).
    PendingEvent(WaitableId),
    /// `WaitableSet.has_pending_event`, and no exclusive holder when the
    /// instance is given (the callback loop's WAIT).
    SetEvent(SetId, Option<InstanceId>),
    /// `not inst.exclusive_thread` (the callback loop's YIELD).
    NoExclusive(InstanceId),
    /// `not has_backpressure()` (the gate of `enter_implicit_thread`).
    NoBackpressure(TaskId),
}

/// Whether the thread runs, is suspended, or waits for a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    Running,
    Suspended,
    Waiting(WaitCond),
}

/// What a wasm continuation is parked in: decides the value it resumes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// `thread.suspend`, `thread.yield`, the switch built-ins: resumes with `Cancelled`.
    Cancelled,
    /// `waitable-set.wait`: resumes with the event.
    Wait { set: SetId, ptr: u32 },
    /// A call through `canon lower` into a guest or host callee.
    Call { subtask: WaitableId },
    /// A synchronous lower waiting for its callee to resolve.
    SyncLower { subtask: WaitableId },
    /// A synchronous copy, cancel or `subtask.cancel` waiting for the event.
    SyncEvent { waitable: WaitableId },
    /// A `subtask.cancel` whose cancellation request is being delivered.
    Cancel { subtask: WaitableId },
}

/// What the core does when it resumes the thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// A task's implicit thread parked inside `canon_lift` (lift.rs).
    Lift(LiftPhase),
    /// An explicit thread not yet started.
    Explicit { func: u32, arg: u32 },
    /// A parked wasm continuation.
    Wasm(Blocked),
    /// The thread is running wasm (no continuation to resume).
    Running,
}

#[derive(Debug)]
pub(crate) struct Thread {
    pub task: TaskId,
    pub inst: InstanceId,
    pub state: ThreadState,
    pub cancellable: bool,
    /// Index in the instance's thread table; 0 while unregistered.
    pub index: u32,
    /// The two `context.get/set` slots.
    pub storage: [u64; 2],
    pub resume: Resume,
    /// Set while a callback task's thread is blocked inside a synchronous
    /// built-in with its exclusive lock released ([`Reading::Suite`]):
    /// it is ready only when the lock is free, and takes it back on resume.
    pub relock: bool,
}

impl Thread {
    /// A suspended, unregistered thread of `task` in `inst` that does
    /// `resume` when first resumed, with both context slots zero.
    pub fn new(task: TaskId, inst: InstanceId, resume: Resume) -> Self {
        Thread {
            task,
            inst,
            state: ThreadState::Suspended,
            cancellable: false,
            index: 0,
            storage: [0; 2],
            relock: false,
            resume,
        }
    }

    pub fn suspended(&self) -> bool {
        self.state == ThreadState::Suspended
    }
}

impl Store {
    #[inline]
    pub(crate) fn cond_ready(&self, c: WaitCond) -> bool {
        match c {
            WaitCond::Always => true,
            WaitCond::SubtaskResolved(w) => self.sub(w).state.resolved(),
            WaitCond::PendingEvent(w) => self.w(w).pending.is_some(),
            WaitCond::SetEvent(s, excl) => {
                self.sets[s.key()].num_pending > 0
                    && excl.is_none_or(|i| self.inst(i).exclusive_thread.is_none())
            }
            WaitCond::NoExclusive(i) => self.inst(i).exclusive_thread.is_none(),
            WaitCond::NoBackpressure(task) => !self.has_backpressure(task),
        }
    }

    /// `Thread.ready`.
    #[inline]
    pub(crate) fn thread_ready(&self, t: ThreadId) -> bool {
        let th = self.thread(t);
        match th.state {
            ThreadState::Waiting(c) => {
                self.cond_ready(c) && (!th.relock || self.inst(th.inst).exclusive_thread.is_none())
            }
            _ => false,
        }
    }

    pub(crate) fn stop_waiting(&mut self, t: ThreadId) {
        self.waiting.remove(t);
    }

    /// What a waiting thread whose condition does not hold now waits for,
    /// if its condition can only come true when that key is notified
    /// (`set_pending`, `join`, `resolve_subtask`).
    pub(crate) fn park_key(&self, t: ThreadId) -> Option<Key> {
        match self.thread(t).state {
            ThreadState::Waiting(c) => self.cond_park_key(c),
            _ => None,
        }
    }

    /// [`Store::park_key`] of a thread waiting for `c`.
    #[inline]
    fn cond_park_key(&self, c: WaitCond) -> Option<Key> {
        match c {
            WaitCond::SetEvent(s, _) if self.sets[s.key()].num_pending == 0 => Some(Key::Set(s)),
            WaitCond::PendingEvent(w) if self.w(w).pending.is_none() => Some(Key::Waitable(w)),
            WaitCond::SubtaskResolved(w) if !self.sub(w).state.resolved() => Some(Key::Waitable(w)),
            _ => None,
        }
    }

    /// `Thread.block_internal` / `switch_to_internal`: the running thread
    /// `t` stops; control goes to `switch_to`, or back to the top frame.
    #[inline]
    pub(crate) fn block(
        &mut self,
        t: ThreadId,
        cond: Option<WaitCond>,
        cancellable: bool,
        resume: Resume,
        switch_to: Option<ThreadId>,
    ) {
        if matches!(
            resume,
            Resume::Wasm(Blocked::SyncEvent { .. } | Blocked::Wait { .. })
        ) && self.reading == Reading::Suite
        {
            let (inst, task) = (self.thread(t).inst, self.thread(t).task);
            if self.inst(inst).exclusive_thread == Some(t)
                && self.task(task).func().kind == LiftKind::AsyncCallback
            {
                self.inst_mut(inst).exclusive_thread = None;
                self.thread_mut(t).relock = true;
            }
        }
        let th = self.thread_mut(t);
        debug_assert_eq!(th.state, ThreadState::Running);
        th.cancellable = cancellable;
        th.resume = resume;
        th.state = match cond {
            Some(c) => ThreadState::Waiting(c),
            None => ThreadState::Suspended,
        };
        if let Some(c) = cond {
            match self.cond_park_key(c) {
                Some(k) => self.waiting.push_parked(t, k),
                None => self.waiting.push(t),
            }
        }
        self.sched.stop(t);
        match switch_to {
            Some(o) => self.sched.resume(o, false),
            None => self.sched.return_to_frame(),
        }
    }

    /// `Thread.wait_until`: `Some(cancelled)` when it returns without
    /// switching, `None` when the thread blocked.
    pub(crate) fn wait_until(
        &mut self,
        t: ThreadId,
        cond: WaitCond,
        cancellable: bool,
        resume: Resume,
    ) -> Option<bool> {
        self.wait_until_or_now(t, cond, cancellable, resume, false)
    }

    /// [`Store::wait_until`]; with `now`, a condition that already holds
    /// returns at once instead of asking the chooser whether to switch.
    pub(crate) fn wait_until_or_now(
        &mut self,
        t: ThreadId,
        cond: WaitCond,
        cancellable: bool,
        resume: Resume,
        now: bool,
    ) -> Option<bool> {
        let task = self.thread(t).task;
        if self.task_mut(task).deliver_pending_cancel(cancellable) {
            return Some(true);
        }
        if self.cond_ready(cond) && (now || self.chooser_early()) {
            return Some(false);
        }
        self.block(t, Some(cond), cancellable, resume, None);
        None
    }

    pub(crate) fn chooser_early(&mut self) -> bool {
        let c = self.chooser.choose(ChoicePoint::WaitUntilEarly, 2) % 2;
        #[cfg(feature = "check")]
        if self.checking {
            self.check_trace.push(c);
        }
        c == 1
    }

    /// `Thread.resume`: the core's part of continuing `t`.
    #[inline]
    pub(crate) fn resume_thread(
        &mut self,
        t: ThreadId,
        cancelled: bool,
    ) -> Result<Option<Action>, Trap> {
        let th = self.thread_mut(t);
        let was_waiting = matches!(th.state, ThreadState::Waiting(_));
        debug_assert!(th.state != ThreadState::Running);
        debug_assert!(th.cancellable || !cancelled);
        th.state = ThreadState::Running;
        let resume = mem::replace(&mut th.resume, Resume::Running);
        if mem::take(&mut th.relock) {
            let inst = th.inst;
            let i = self.inst_mut(inst);
            debug_assert!(i.exclusive_thread.is_none());
            i.exclusive_thread.get_or_insert(t);
        }
        if was_waiting {
            self.stop_waiting(t);
        }
        self.sched.run(t);
        match resume {
            Resume::Lift(phase) => self.lift_resume(t, phase, cancelled),
            Resume::Explicit { func, arg } => Ok(Some(Action::StartThread {
                thread: t,
                func,
                arg,
            })),
            Resume::Wasm(b) => {
                let value = self.resume_value(b, cancelled);
                Ok(Some(Action::Resume { thread: t, value }))
            }
            Resume::Running => {
                debug_assert!(false, "resuming a running thread");
                Ok(None)
            }
        }
    }

    /// The value a blocked built-in returns when its thread is resumed.
    pub(crate) fn resume_value(&mut self, b: Blocked, cancelled: bool) -> ResumeValue {
        match b {
            Blocked::Cancelled => ResumeValue::I32(cancelled as u32),
            Blocked::Wait { set, ptr } => {
                self.sets[set.key()].num_waiting -= 1;
                let event = if cancelled {
                    Event::TASK_CANCELLED
                } else {
                    self.set_get_pending_event(set)
                };
                ResumeValue::Event { event, ptr }
            }
            Blocked::SyncLower { subtask } => {
                self.deliver_resolve(subtask);
                self.waitables.remove(subtask.key());
                ResumeValue::Returned(SubtaskId(subtask))
            }
            Blocked::SyncEvent { waitable } => {
                self.w_mut(waitable).has_sync_waiter = false;
                ResumeValue::I32(self.get_pending_event(waitable).payload)
            }
            Blocked::Call { .. } | Blocked::Cancel { .. } => {
                debug_assert!(false, "a caller is resumed by its frame");
                ResumeValue::I32(0)
            }
        }
    }

    /// `Thread.stop_waiting_internal` of a ready thread being promoted.
    pub(crate) fn unwait(&mut self, t: ThreadId) {
        self.waiting.remove(t);
        self.thread_mut(t).state = ThreadState::Suspended;
    }
}
