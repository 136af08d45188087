//! `Store`: every instance, task, thread and waitable, the host's entry
//! points (`invoke`, `next_action`) and poisoning. The driving loop and the
//! five resumers a blocked thread returns to are in `sched.rs`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem;
use core::task::{Context, Poll};

use slab::Slab;
use smallvec::SmallVec;

use crate::action::{Action, ResumeValue};
use crate::chooser::{ChoicePoint, Chooser, Deterministic};
use crate::copy::Shared;
use crate::ids::*;
use crate::instance::{ComponentInstance, Handle};
use crate::live::Wakers;
use crate::sched::{Frame, Sched, Then};
use crate::set_events::SetEvents;
use crate::task::{Caller, LiftKind, Lifted, Task, TaskState};
use crate::thread::{Blocked, Resume, Thread, ThreadState, WaitCond};
use crate::trap::{trap_if, Trap};
use crate::wait_queue::{Key, WaitQueue};
use crate::waitable::{
    Callee, Event, EventCode, Pending, Subtask, SubtaskState, Waitable, WaitableSet,
};

/// `BLOCKED`: the result of an async copy, cancel or `subtask.cancel` that did not finish.
pub const BLOCKED: u32 = 0xffff_ffff;

/// Where the reference `.wast` suite (which Wasmtime passes) and
/// `definitions.py` at the pinned commit disagree, which one the store follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Reading {
    /// The suite's behaviour (the default):
    ///
    /// - a task of a non-async function type that has not resolved traps
    ///   with "cannot block a synchronous task before returning" as soon
    ///   as it calls a built-in that may block — `waitable-set.wait`,
    ///   `thread.suspend`, a synchronous `subtask.cancel`, stream or future
    ///   copy or cancel, or a synchronous lower of an async-typed callee —
    ///   before any other check of the call (`trap-if-block-and-sync.wast`);
    /// - cancelling a copy whose buffer was partly filled (or drained) but
    ///   is still the pending side of the rendezvous gives CANCELLED with
    ///   the progress, not COMPLETED (`cancel-stream.wast`);
    /// - a callback-lifted task blocked in a synchronous wait for an event
    ///   (`waitable-set.wait`, a synchronous stream or future copy or
    ///   cancel, a synchronous `subtask.cancel`) does not hold its
    ///   instance's exclusive lock: other callback tasks of the instance may
    ///   start, and it takes the lock back when it resumes
    ///   (`sync-streams.wast`); blocked in a synchronous call it keeps the
    ///   lock (`async-calls-sync.wast`);
    /// - `waitable-set.wait` on a set that already has an event returns it
    ///   without switching (`definitions.py`'s `wait_until` may switch
    ///   first, and always does in its deterministic profile): a stackful
    ///   callee that waits for an event already there returns before its
    ///   async caller's `canon lower` does, which sees RETURNED, not
    ///   STARTED (`big-interleaving-test.wast`, the `await` command).
    #[default]
    Suite,
    /// `definitions.py`'s behaviour: a synchronous task may block while
    /// another thread of its instance is ready (`during-sync-call-*.wast`,
    /// which the suite lists as not yet implemented anywhere); a cancel after
    /// partial progress reports COMPLETED; a callback task keeps the lock
    /// while blocked; `waitable-set.wait` with an event already there asks
    /// the chooser ([`ChoicePoint::WaitUntilEarly`]) whether to switch
    /// first. `run_tests.py`'s scenarios assume this reading.
    Definitions,
}

/// The answer of a built-in that may block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// The built-in finished with this value: return it to the guest.
    Done(T),
    /// The running thread blocked: park its continuation and call
    /// [`Store::next_action`]; an [`Action::Resume`] says when to resume it.
    Suspend,
}

/// Who receives a task's results (the spec's `on_resolve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultDelivery {
    /// The host invoked the task: lift the results for the host.
    Host(TaskId),
    /// A guest called it: lower the results into the caller of `subtask`
    /// (through its out-pointer for an async lower; as flat results handed
    /// over at [`ResumeValue::Returned`] for a sync lower).
    Guest(SubtaskId),
}

/// An error of the embedder API (never caused by guest input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbedderError {
    /// No thread is running (a built-in was called outside guest code).
    NoRunningThread,
    /// The id names nothing (it was freed, or never existed).
    UnknownId,
    /// The object is not in the state the call needs.
    WrongState,
}

impl core::fmt::Display for EmbedderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EmbedderError::NoRunningThread => "no thread is running",
            EmbedderError::UnknownId => "unknown id",
            EmbedderError::WrongState => "object is not in the state this call needs",
        })
    }
}

/// An error-context value (the message is kept by the embedder, if at all).
#[derive(Debug)]
pub(crate) struct ErrorContext {
    /// Handles referring to it across all instances.
    pub refs: u32,
    /// The embedder's id for the debug message.
    pub message: u32,
}

/// The store: the spec's `Store` plus everything its objects point at.
///
/// See the [crate documentation](crate) for the driving contract.
pub struct Store {
    pub(crate) instances: Slab<ComponentInstance>,
    pub(crate) tasks: Slab<Task>,
    pub(crate) task_serials: Vec<u64>,
    pub(crate) threads: Slab<Thread>,
    pub(crate) waitables: Slab<Waitable>,
    pub(crate) sets: Slab<WaitableSet>,
    pub(crate) shared: Slab<Shared>,
    pub(crate) error_contexts: Slab<ErrorContext>,
    pub(crate) resource_types: Vec<InstanceId>,
    /// `Store.waiting`, in the order threads started waiting.
    pub(crate) waiting: WaitQueue,
    /// The members of each set with a pending event, in join order.
    set_events: SetEvents,
    /// The resumer stack, the pending control transfer and the running thread.
    pub(crate) sched: Sched,
    /// The `enter_from`s not yet left, innermost last.
    pub(crate) entered: Vec<crate::enter::Entered>,
    pub(crate) chooser: Box<dyn Chooser>,
    /// Which reading of the spec the store follows where the reference
    /// suite and `definitions.py` disagree.
    pub(crate) reading: Reading,
    next_serial: u64,
    live_tasks: usize,
    wakers: Wakers,
    /// Every choice the chooser made (the `check` feature's replay string).
    #[cfg(feature = "check")]
    pub(crate) check_trace: Vec<usize>,
    /// Whether the `check` feature's invariants and trace are on for this
    /// store (see `Store::set_invariant_checks`).
    #[cfg(feature = "check")]
    pub(crate) checking: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("instances", &self.instances.len())
            .field("tasks", &self.tasks.len())
            .field("threads", &self.threads.len())
            .field("live_tasks", &self.live_tasks)
            .field("current", &self.sched.current())
            .finish_non_exhaustive()
    }
}

type R<T> = Result<T, Trap>;

/// A store can move between threads (its chooser is `Send`).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Store>();
};

impl Store {
    /// An empty store with the [`Deterministic`] chooser.
    pub fn new() -> Self {
        Self::with_chooser(Box::new(Deterministic))
    }

    /// An empty store whose choice points are answered by `chooser`.
    pub fn with_chooser(chooser: Box<dyn Chooser>) -> Self {
        Store {
            instances: Slab::new(),
            tasks: Slab::new(),
            task_serials: Vec::new(),
            threads: Slab::new(),
            waitables: Slab::new(),
            sets: Slab::new(),
            shared: Slab::new(),
            error_contexts: Slab::new(),
            resource_types: Vec::new(),
            waiting: WaitQueue::default(),
            set_events: SetEvents::default(),
            sched: Sched::new(),
            entered: Vec::new(),
            chooser,
            reading: Reading::Suite,
            next_serial: 0,
            live_tasks: 0,
            wakers: Wakers::default(),
            #[cfg(feature = "check")]
            check_trace: Vec::new(),
            #[cfg(feature = "check")]
            checking: true,
        }
    }

    /// Chooses the [`Reading`] of the spec where the reference `.wast`
    /// suite and `definitions.py` disagree ([`Reading::Suite`] by default).
    pub fn set_reading(&mut self, reading: Reading) {
        self.reading = reading;
    }

    /// The [`Reading`] the store follows.
    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// `trap_if(not task.may_block())` of the suite's reading, for a
    /// built-in that would block (`blocks` false: an async form, no check).
    pub(crate) fn may_block_check(&self, task: TaskId, blocks: bool) -> Result<(), Trap> {
        if blocks && self.reading == Reading::Suite {
            let t = self.task(task);
            trap_if(
                !t.func.async_type && t.state != TaskState::Resolved,
                Trap::CannotBlockSync,
            )?;
        }
        Ok(())
    }

    /// [`Store::leaving`], then [`Store::may_block_check`].
    pub(crate) fn leaving_blocking(
        &self,
        blocks: bool,
    ) -> Result<(ThreadId, TaskId, InstanceId), Trap> {
        let r = self.leaving()?;
        self.may_block_check(r.1, blocks)?;
        Ok(r)
    }

    /// Replaces the chooser, returning the old one.
    pub fn set_chooser(&mut self, chooser: Box<dyn Chooser>) -> Box<dyn Chooser> {
        mem::replace(&mut self.chooser, chooser)
    }

    /// Creates a top-level component instance.
    pub fn new_instance(&mut self) -> InstanceId {
        InstanceId::from_key(self.instances.insert(ComponentInstance::new()))
    }

    /// Creates a component instance nested in `parent` (a child component
    /// instantiated inside it). Calls between an instance and its
    /// ancestors trap (see [`Store::canon_lower`]).
    pub fn new_child_instance(&mut self, parent: InstanceId) -> InstanceId {
        let mut i = ComponentInstance::new();
        i.parent = Some(parent);
        InstanceId::from_key(self.instances.insert(i))
    }

    /// Whether `a` is `b` or one of its ancestors.
    pub(crate) fn is_ancestor_or_self(&self, a: InstanceId, b: InstanceId) -> bool {
        let mut x = Some(b);
        while let Some(i) = x {
            if i == a {
                return true;
            }
            x = self.instances.get(i.key()).and_then(|n| n.parent);
        }
        false
    }

    /// Defines a resource type implemented by `inst` (its destructor, if
    /// any, is the embedder's to run when [`Store::resource_drop`] says so).
    pub fn new_resource_type(&mut self, inst: InstanceId) -> ResourceTypeId {
        self.resource_types.push(inst);
        ResourceTypeId((self.resource_types.len() - 1) as u32)
    }

    /// Whether a trap poisoned `inst`.
    pub fn is_poisoned(&self, inst: InstanceId) -> bool {
        self.instances.get(inst.key()).is_none_or(|i| i.poisoned)
    }

    /// The thread whose guest code runs now, if any.
    pub fn current_thread(&self) -> Option<ThreadId> {
        self.sched.current()
    }

    /// Whether `thread` still exists (it is gone once its core function
    /// returned, or a trap killed it): the embedder drops the continuation
    /// of a thread that is gone.
    pub fn thread_alive(&self, thread: ThreadId) -> bool {
        self.threads.contains(thread.key())
    }

    /// The task a thread belongs to.
    pub fn thread_task(&self, thread: ThreadId) -> Option<TaskId> {
        self.threads.get(thread.key()).map(|t| t.task)
    }

    /// The instance a thread runs in.
    pub fn thread_instance(&self, thread: ThreadId) -> Option<InstanceId> {
        self.threads.get(thread.key()).map(|t| t.inst)
    }

    /// The state of a task, while it exists (until it exits).
    pub fn task_state(&self, task: TaskId) -> Option<TaskState> {
        self.tasks.get(task.key()).map(|t| t.state)
    }

    /// Who called a task.
    pub fn task_caller(&self, task: TaskId) -> Option<Caller> {
        self.tasks.get(task.key()).map(|t| t.caller)
    }

    /// The lifted function a task runs.
    pub fn task_func(&self, task: TaskId) -> Option<Lifted> {
        self.tasks.get(task.key()).map(|t| t.func)
    }

    /// The state of a subtask, while the caller holds it.
    pub fn subtask_state(&self, subtask: SubtaskId) -> Option<SubtaskState> {
        self.waitables
            .get(subtask.0.key())
            .and_then(|w| w.subtask())
            .map(|s| s.state)
    }

    /// The instance that made the call of a subtask.
    pub fn subtask_caller(&self, subtask: SubtaskId) -> Option<InstanceId> {
        self.waitables.get(subtask.0.key()).map(|w| w.inst)
    }

    // ----- the live-task count -------------------------------------------

    /// Tasks created and not yet exited, store-wide.
    pub fn live_tasks(&self) -> usize {
        self.live_tasks
    }

    /// Tasks of `inst` created and not yet exited.
    pub fn live_tasks_in(&self, inst: InstanceId) -> usize {
        self.instances.get(inst.key()).map_or(0, |i| i.live_tasks)
    }

    /// Ready when no task is live store-wide; otherwise registers the waker,
    /// which is woken (with every other registered one) when the count reaches zero.
    pub fn poll_quiescent(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.live_tasks == 0 {
            Poll::Ready(())
        } else {
            self.wakers.register(cx.waker());
            Poll::Pending
        }
    }

    /// [`Store::poll_quiescent`] for the tasks of one instance.
    pub fn poll_quiescent_in(&mut self, inst: InstanceId, cx: &mut Context<'_>) -> Poll<()> {
        match self.instances.get_mut(inst.key()) {
            Some(i) if i.live_tasks > 0 => {
                i.wakers.register(cx.waker());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }

    // ----- object access ---------------------------------------------------

    pub(crate) fn inst(&self, i: InstanceId) -> &ComponentInstance {
        &self.instances[i.key()]
    }

    pub(crate) fn inst_mut(&mut self, i: InstanceId) -> &mut ComponentInstance {
        &mut self.instances[i.key()]
    }

    pub(crate) fn thread(&self, t: ThreadId) -> &Thread {
        &self.threads[t.key()]
    }

    pub(crate) fn thread_mut(&mut self, t: ThreadId) -> &mut Thread {
        &mut self.threads[t.key()]
    }

    pub(crate) fn task(&self, t: TaskId) -> &Task {
        &self.tasks[t.key()]
    }

    pub(crate) fn task_mut(&mut self, t: TaskId) -> &mut Task {
        &mut self.tasks[t.key()]
    }

    pub(crate) fn w(&self, w: WaitableId) -> &Waitable {
        &self.waitables[w.key()]
    }

    pub(crate) fn w_mut(&mut self, w: WaitableId) -> &mut Waitable {
        &mut self.waitables[w.key()]
    }

    pub(crate) fn sub(&self, w: WaitableId) -> &Subtask {
        self.w(w).subtask().expect("waitable is a subtask")
    }

    pub(crate) fn sub_mut(&mut self, w: WaitableId) -> &mut Subtask {
        self.w_mut(w).subtask_mut().expect("waitable is a subtask")
    }

    /// The running thread, its task and its instance.
    pub(crate) fn running(&self) -> Result<(ThreadId, TaskId, InstanceId), Trap> {
        match self.sched.current() {
            Some(t) => {
                let th = self.thread(t);
                Ok((t, th.task, th.inst))
            }
            None => Err(Trap::Wasm("embedder error: no thread is running".into())),
        }
    }

    /// `trap_if(not inst.may_leave)` for the running thread; returns it.
    pub(crate) fn leaving(&self) -> Result<(ThreadId, TaskId, InstanceId), Trap> {
        let r = self.running()?;
        trap_if(!self.inst(r.2).may_leave, Trap::CannotLeave)?;
        Ok(r)
    }

    pub(crate) fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        debug_assert!(n > 0);
        if n <= 1 {
            0
        } else {
            let c = self.chooser.choose(point, n) % n;
            #[cfg(feature = "check")]
            if self.checking {
                self.check_trace.push(c);
            }
            c
        }
    }

    // ----- waitables and events ----------------------------------------------

    /// `Waitable.set_pending_event`, keeping the set's pending count.
    pub(crate) fn set_pending(&mut self, w: WaitableId, p: Option<Pending>) {
        let wt = self.w_mut(w);
        let had = wt.pending.is_some();
        wt.pending = p;
        let has = p.is_some();
        if let Some(s) = wt.wset {
            let set = &mut self.sets[s.key()];
            match (had, has) {
                (false, true) => {
                    set.num_pending += 1;
                    self.set_events.add(s, w);
                }
                (true, false) => {
                    set.num_pending -= 1;
                    self.set_events.remove(s, w);
                }
                _ => {}
            }
            if !had && has {
                self.waiting.notify(Key::Set(s));
            }
        }
        if !had && has {
            self.waiting.notify(Key::Waitable(w));
        }
    }

    /// `Waitable.join`.
    pub(crate) fn join(&mut self, w: WaitableId, set: Option<SetId>) {
        let (old, pending) = {
            let wt = self.w(w);
            (wt.wset, wt.pending.is_some())
        };
        if let Some(o) = old {
            let s = &mut self.sets[o.key()];
            if let Some(pos) = s.elems.iter().position(|&e| e == w) {
                s.elems.remove(pos);
            }
            if pending {
                s.num_pending -= 1;
                self.set_events.remove(o, w);
            }
        }
        self.w_mut(w).wset = set;
        if let Some(n) = set {
            let s = &mut self.sets[n.key()];
            s.elems.push(w);
            self.set_events.joined(w);
            if pending {
                s.num_pending += 1;
                self.set_events.add(n, w);
                self.waiting.notify(Key::Set(n));
            }
        }
    }

    /// `Waitable.get_pending_event`: takes the pending event and computes it.
    pub(crate) fn get_pending_event(&mut self, w: WaitableId) -> Event {
        let p = self.w(w).pending.expect("pending event");
        self.set_pending(w, None);
        let index = self.w(w).index;
        match p {
            Pending::Subtask => {
                let s = self.sub(w);
                let state = s.state;
                if state.resolved() && !s.resolve_delivered() {
                    self.deliver_resolve(w);
                }
                Event {
                    code: EventCode::Subtask,
                    index,
                    payload: state as u32,
                }
            }
            Pending::Copy(result, reclaim) => self.copy_event(w, result, reclaim),
        }
    }

    /// `WaitableSet.get_pending_event`: the chooser picks among the members
    /// with an event, in join order.
    pub(crate) fn set_get_pending_event(&mut self, s: SetId) -> Event {
        let set = &self.sets[s.key()];
        debug_assert!(set.num_pending > 0);
        let n = set.num_pending as usize;
        let k = self.choose(ChoicePoint::SetEvent, n);
        let w = self.set_events.nth(s, k).expect("member with an event");
        debug_assert_eq!(
            Some(w),
            self.sets[s.key()]
                .elems
                .iter()
                .copied()
                .filter(|&w| self.waitables[w.key()].pending.is_some())
                .nth(k)
        );
        self.get_pending_event(w)
    }

    /// `Subtask.deliver_resolve`: ends the lends of borrowed handles.
    pub(crate) fn deliver_resolve(&mut self, w: WaitableId) {
        let wt = self.w_mut(w);
        let inst = wt.inst;
        let s = wt.subtask_mut().expect("waitable is a subtask");
        s.delivered = true;
        let Some(lenders) = s.lenders.take() else {
            return;
        };
        for h in *lenders {
            if let Ok(Handle::Resource(r)) = self.inst_mut(inst).handles.get_mut(h) {
                r.num_lends -= 1;
            }
        }
    }

    // ----- threads -------------------------------------------------------------

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
    pub(crate) fn thread_ready(&self, t: ThreadId) -> bool {
        let th = self.thread(t);
        match th.state {
            ThreadState::Waiting(c) => {
                self.cond_ready(c) && (!th.relock || self.inst(th.inst).exclusive_thread.is_none())
            }
            _ => false,
        }
    }

    fn has_backpressure(&self, task: TaskId) -> bool {
        let f = self.task(task).func;
        let i = self.inst(f.inst);
        i.backpressure > 0 || (f.needs_exclusive() && i.exclusive_thread.is_some())
    }

    fn stop_waiting(&mut self, t: ThreadId) {
        self.waiting.remove(t);
    }

    /// What a waiting thread whose condition does not hold now waits for,
    /// if its condition can only come true when that key is notified
    /// (`set_pending`, `join`, `resolve_subtask`).
    pub(crate) fn park_key(&self, t: ThreadId) -> Option<Key> {
        match self.thread(t).state {
            ThreadState::Waiting(WaitCond::SetEvent(s, _))
                if self.sets[s.key()].num_pending == 0 =>
            {
                Some(Key::Set(s))
            }
            ThreadState::Waiting(WaitCond::PendingEvent(w)) if self.w(w).pending.is_none() => {
                Some(Key::Waitable(w))
            }
            ThreadState::Waiting(WaitCond::SubtaskResolved(w)) if !self.sub(w).state.resolved() => {
                Some(Key::Waitable(w))
            }
            _ => None,
        }
    }

    /// `Thread.block_internal` / `switch_to_internal`: the running thread
    /// `t` stops; control goes to `switch_to`, or back to the top frame.
    pub(crate) fn block(
        &mut self,
        t: ThreadId,
        cond: Option<WaitCond>,
        cancellable: bool,
        resume: Resume,
        switch_to: Option<ThreadId>,
    ) {
        let (inst, task) = (self.thread(t).inst, self.thread(t).task);
        if self.reading == Reading::Suite
            && matches!(
                resume,
                Resume::Wasm(Blocked::SyncEvent { .. } | Blocked::Wait { .. })
            )
            && self.inst(inst).exclusive_thread == Some(t)
            && self.task(task).func.kind == LiftKind::AsyncCallback
        {
            self.inst_mut(inst).exclusive_thread = None;
            self.thread_mut(t).relock = true;
        }
        let th = self.thread_mut(t);
        debug_assert_eq!(th.state, ThreadState::Running);
        th.cancellable = cancellable;
        th.resume = resume;
        th.state = match cond {
            Some(c) => ThreadState::Waiting(c),
            None => ThreadState::Suspended,
        };
        if cond.is_some() {
            match self.park_key(t) {
                Some(k) => self.waiting.push_parked(t, k),
                None => self.waiting.push(t),
            }
        }
        self.sched.stop(
            t,
            match switch_to {
                Some(o) => Then::SwitchTo(o),
                None => Then::ReturnToFrame,
            },
        );
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

    fn chooser_early(&mut self) -> bool {
        let c = self.chooser.choose(ChoicePoint::WaitUntilEarly, 2) % 2;
        #[cfg(feature = "check")]
        if self.checking {
            self.check_trace.push(c);
        }
        c == 1
    }

    /// `Task.register_thread`.
    pub(crate) fn register_thread(&mut self, task: TaskId, t: ThreadId) -> R<()> {
        let inst = self.task(task).inst();
        let index = self.inst_mut(inst).threads.add(t)?;
        self.thread_mut(t).index = index;
        self.task_mut(task).threads.push(t);
        Ok(())
    }

    /// `Task.unregister_thread`, and the thread is gone. Traps when the last
    /// thread leaves a task that has not resolved.
    pub(crate) fn unregister_thread(&mut self, t: ThreadId) -> R<()> {
        // The trap leaves the thread in place (the abort that follows drops
        // it with the rest of its instance), so the trap can name its instance.
        let th = self.thread(t);
        let (task, inst, index) = (th.task, th.inst, th.index);
        let tk = self.task_mut(task);
        let last = tk.threads.as_slice() == [t];
        trap_if(
            last && tk.state != TaskState::Resolved,
            Trap::TaskNotResolved,
        )?;
        if tk.implicit_thread == Some(t) {
            tk.implicit_thread = None;
        }
        if last {
            tk.threads.clear();
        } else if let Some(pos) = tk.threads.iter().position(|&x| x == t) {
            tk.threads.remove(pos);
        }
        let empty = tk.threads.is_empty();
        if empty {
            debug_assert_eq!(tk.state, TaskState::Resolved);
            debug_assert_eq!(tk.num_borrows, 0);
        }
        self.threads.remove(t.key());
        if index != 0 {
            let _ = self.inst_mut(inst).threads.remove(index);
        }
        if empty {
            self.task_exited(task);
        }
        Ok(())
    }

    /// Creates a task of `func` and its implicit thread (suspended, to be
    /// resumed at once). The one place the live count goes up.
    pub(crate) fn new_task(&mut self, func: Lifted, caller: Caller) -> (TaskId, ThreadId) {
        let entry = self.threads.vacant_entry();
        let thread = ThreadId::from_key(entry.key());
        let task = TaskId::from_key(self.tasks.insert(Task {
            func,
            caller,
            state: TaskState::Initial,
            num_borrows: 0,
            implicit_thread: Some(thread),
            threads: SmallVec::new(),
            exited: false,
        }));
        entry.insert(Thread {
            task,
            inst: func.inst,
            state: ThreadState::Suspended,
            cancellable: false,
            index: 0,
            storage: [0; 2],
            relock: false,
            resume: Resume::Enter,
        });
        self.next_serial += 1;
        let k = task.key();
        if self.task_serials.len() <= k {
            self.task_serials.resize(k + 1, 0);
        }
        self.task_serials[k] = self.next_serial;
        self.live_tasks += 1;
        self.inst_mut(func.inst).live_tasks += 1;
        (task, thread)
    }

    /// The one place the live count goes down: the task resolved and its
    /// last thread left (or it was cancelled before it started).
    pub(crate) fn task_exited(&mut self, task: TaskId) {
        let tk = self.task_mut(task);
        debug_assert!(!tk.exited, "a task exits once");
        if tk.exited {
            return;
        }
        tk.exited = true;
        let inst = tk.inst();
        self.tasks.remove(task.key());
        self.task_serials[task.key()] = 0;
        self.live_tasks -= 1;
        if self.live_tasks == 0 {
            self.wakers.wake_all();
        }
        let i = self.inst_mut(inst);
        i.live_tasks -= 1;
        if i.live_tasks == 0 {
            i.wakers.wake_all();
        }
    }

    pub(crate) fn task_resolved_or_gone(&self, task: TaskId, serial: u64) -> bool {
        self.task_serials.get(task.key()).copied() != Some(serial)
            || self.task(task).state == TaskState::Resolved
    }

    // ----- resolving tasks ---------------------------------------------------

    /// `Task.return_`: the checks, then `on_resolve(result)`.
    pub(crate) fn task_return_internal(&mut self, task: TaskId) -> R<ResultDelivery> {
        let tk = self.task_mut(task);
        trap_if(tk.state == TaskState::Resolved, Trap::TaskAlreadyResolved)?;
        trap_if(tk.num_borrows > 0, Trap::BorrowsRemain)?;
        let caller = tk.caller;
        tk.state = TaskState::Resolved;
        Ok(match caller {
            Caller::Host => ResultDelivery::Host(task),
            Caller::Guest(s) => {
                self.resolve_subtask(s.0, SubtaskState::Returned);
                ResultDelivery::Guest(s)
            }
        })
    }

    /// `Task.cancel`: the checks, then `on_resolve(None)`.
    pub(crate) fn task_cancel_internal(&mut self, task: TaskId) -> R<()> {
        let tk = self.task(task);
        trap_if(
            tk.state != TaskState::CancelDelivered,
            Trap::TaskCancelNotDelivered,
        )?;
        trap_if(tk.num_borrows > 0, Trap::BorrowsRemain)?;
        let caller = tk.caller;
        self.task_mut(task).state = TaskState::Resolved;
        if let Caller::Guest(s) = caller {
            let st = if self.sub(s.0).state == SubtaskState::Starting {
                SubtaskState::CancelledBeforeStarted
            } else {
                SubtaskState::CancelledBeforeReturned
            };
            self.resolve_subtask(s.0, st);
        }
        Ok(())
    }

    /// `Subtask.resolve` with `on_progress`.
    pub(crate) fn resolve_subtask(&mut self, w: WaitableId, state: SubtaskState) {
        let wt = self.w_mut(w);
        let has_handle = wt.index != 0;
        let s = wt.subtask_mut().expect("waitable is a subtask");
        debug_assert!(!s.state.resolved());
        debug_assert!(
            state != SubtaskState::CancelledBeforeStarted || s.state == SubtaskState::Starting
        );
        s.state = state;
        self.waiting.notify(Key::Waitable(w));
        self.subtask_progress(w, has_handle);
    }

    /// `on_progress`: an async-lowered subtask with a handle gets a SUBTASK
    /// event (`has_handle`: the waitable's `index != 0`, read by the caller
    /// on the borrow it already holds).
    #[inline]
    pub(crate) fn subtask_progress(&mut self, w: WaitableId, has_handle: bool) {
        if has_handle {
            self.set_pending(w, Some(Pending::Subtask));
        }
    }

    // ----- the driving loop ----------------------------------------------------

    /// Host entry: `Store.invoke` of a lifted function. The call runs when
    /// the embedder next calls [`Store::next_action`]; the results come back
    /// through [`ResultDelivery::Host`] when the task returns.
    pub fn invoke(&mut self, func: Lifted) -> Result<TaskId, Trap> {
        if !self.sched.at_boundary() {
            return Err(Trap::Wasm(
                "embedder error: invoke while guest code runs".into(),
            ));
        }
        trap_if(self.is_poisoned(func.inst), Trap::CannotEnter)?;
        let (task, thread) = self.new_task(func, Caller::Host);
        self.sched.push(Frame::Host);
        // `Store.lift`'s `enter_from(None)` (the stack is empty: every
        // instance may be entered).
        debug_assert!(self.may_enter_from(func.inst, None));
        self.enter_from(func.inst, None);
        self.push_lift(task, thread);
        Ok(task)
    }

    /// Whether the store is at a tick boundary: no guest code runs and no
    /// call is part-way through its resumers, so [`Store::invoke`] may
    /// start a new call. After [`Action::Idle`], and between the actions of
    /// a tick, this holds.
    pub fn at_tick_boundary(&self) -> bool {
        self.sched.at_boundary()
    }

    /// `canon_lift`'s first resume, and the sync-typed loop frame.
    pub(crate) fn push_lift(&mut self, task: TaskId, thread: ThreadId) {
        if !self.task(task).func.async_type {
            let serial = self.task_serials[task.key()];
            self.sched.push(Frame::SyncLift { task, serial });
        }
        self.sched.resume(thread, false);
    }

    /// What the embedder must do next. Call it whenever no guest code runs:
    /// after [`Store::invoke`], after a built-in answered [`Step::Suspend`],
    /// after reporting that a core function returned, and to tick.
    pub fn next_action(&mut self) -> Action {
        let a = self.next_action_inner(true).unwrap_or(Action::Idle);
        #[cfg(feature = "check")]
        self.check_invariants();
        a
    }

    /// Like [`Store::next_action`], but never starts a new tick: `None`
    /// once the store is at a tick boundary — no thread runs and no resumer
    /// is left on the stack (the host's `Store.invoke` or `Store.tick` of
    /// `definitions.py` has returned) — where `next_action` would pick the
    /// next ready thread.
    ///
    /// A host that wants its call back as soon as the result is delivered
    /// (`on_resolve`, [`ResultDelivery::Host`]) switches to this method once
    /// it has the result and does what it returns until `None`: the tick in
    /// which the result came finishes, and work the callee left behind (a
    /// thread that keeps yielding, a callback that keeps returning YIELD)
    /// stays in the store for later ticks. At the boundary [`Store::invoke`]
    /// may be called again.
    pub fn next_action_in_tick(&mut self) -> Option<Action> {
        let a = self.next_action_inner(false);
        #[cfg(feature = "check")]
        self.check_invariants();
        a
    }

    /// `Thread.resume`: the core's part of continuing `t`.
    pub(crate) fn resume_thread(&mut self, t: ThreadId, cancelled: bool) -> R<Option<Action>> {
        let th = self.thread_mut(t);
        let was_waiting = matches!(th.state, ThreadState::Waiting(_));
        debug_assert!(th.state != ThreadState::Running);
        debug_assert!(th.cancellable || !cancelled);
        th.state = ThreadState::Running;
        let resume = mem::replace(&mut th.resume, Resume::Running);
        let task = th.task;
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
            Resume::Enter => self.enter_implicit_thread(t, task),
            Resume::EnterGate => self.enter_gate_resumed(t, cancelled),
            Resume::Explicit { func, arg } => Ok(Some(Action::StartThread {
                thread: t,
                func,
                arg,
            })),
            Resume::CallbackYield => {
                let e = if cancelled {
                    Event::TASK_CANCELLED
                } else {
                    Event::NONE
                };
                Ok(Some(self.callback_event(t, e)))
            }
            Resume::CallbackWait(set) => {
                self.sets[set.key()].num_waiting -= 1;
                let e = if cancelled {
                    Event::TASK_CANCELLED
                } else {
                    self.set_get_pending_event(set)
                };
                Ok(Some(self.callback_event(t, e)))
            }
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
    fn resume_value(&mut self, b: Blocked, cancelled: bool) -> ResumeValue {
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

    /// Hands `event` to the callback of the task of `t`, re-acquiring the lock.
    fn callback_event(&mut self, t: ThreadId, event: Event) -> Action {
        let th = self.thread(t);
        let (task, inst) = (th.task, th.inst);
        debug_assert!(self.inst(inst).exclusive_thread.is_none());
        self.inst_mut(inst).exclusive_thread = Some(t);
        Action::Callback {
            thread: t,
            task,
            func: self.task(task).func.func,
            event,
        }
    }

    /// `Task.enter_implicit_thread`, up to the backpressure gate.
    fn enter_implicit_thread(&mut self, t: ThreadId, task: TaskId) -> R<Option<Action>> {
        let f = self.task(task).func;
        if f.async_type
            && (self.has_backpressure(task) || self.inst(f.inst).num_waiting_to_enter > 0)
        {
            self.inst_mut(f.inst).num_waiting_to_enter += 1;
            match self.wait_until(t, WaitCond::NoBackpressure(task), true, Resume::EnterGate) {
                None => return Ok(None),
                Some(c) => return self.enter_gate_resumed(t, c),
            }
        }
        self.enter_finish(t, task, f)
    }

    /// After the backpressure gate: cancelled before starting, or enter.
    fn enter_gate_resumed(&mut self, t: ThreadId, cancelled: bool) -> R<Option<Action>> {
        let task = self.thread(t).task;
        let inst = self.thread(t).inst;
        self.inst_mut(inst).num_waiting_to_enter -= 1;
        if cancelled {
            self.task_cancel_internal(task)?;
            // The thread function returns without ever registering the thread.
            self.threads.remove(t.key());
            self.task_mut(task).threads.clear();
            self.task_exited(task);
            self.sched.stop(t, Then::ReturnToFrame);
            return Ok(None);
        }
        let f = self.task(task).func;
        self.enter_finish(t, task, f)
    }

    /// The rest of `enter_implicit_thread`, then `task.start()` (`on_start`).
    fn enter_finish(&mut self, t: ThreadId, task: TaskId, f: Lifted) -> R<Option<Action>> {
        let i = self.inst_mut(f.inst);
        if f.async_type && f.needs_exclusive() {
            debug_assert!(i.exclusive_thread.is_none());
            i.exclusive_thread = Some(t);
        }
        // `register_thread` (the task's instance is `f.inst`).
        let index = i.threads.add(t)?;
        self.thread_mut(t).index = index;
        let tk = self.task_mut(task);
        tk.threads.push(t);
        debug_assert_eq!(tk.state, TaskState::Initial);
        tk.state = TaskState::Started;
        if let Caller::Guest(s) = tk.caller {
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
    pub(crate) fn sync_resume_ready(&mut self, task: TaskId, frame: Frame) -> R<Option<Action>> {
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

    /// The rest of `canon_lower` once the callee blocked or finished.
    pub(crate) fn finish_lower(&mut self, caller: ThreadId, w: WaitableId) -> R<Option<Action>> {
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

    /// After a trap: poison the instances of the trapped call, and drop
    /// every thread and task of a poisoned instance.
    pub(crate) fn abort(&mut self, inst: Option<InstanceId>) {
        let mut poison: SmallVec<[InstanceId; 4]> = SmallVec::new();
        let inst_of = |t: ThreadId| self.threads.get(t.key()).map(|th| th.inst);
        poison.extend(inst);
        poison.extend(self.sched.current().and_then(inst_of));
        for f in self.sched.frames() {
            match *f {
                Frame::Lower { caller, .. } | Frame::Cancel { caller, .. } => {
                    poison.extend(inst_of(caller))
                }
                Frame::SyncLift { task, serial } => {
                    if self.task_serials.get(task.key()) == Some(&serial) {
                        poison.push(self.task(task).inst())
                    }
                }
                Frame::SyncCall { task, serial, prev } => {
                    if self.task_serials.get(task.key()) == Some(&serial) {
                        poison.push(self.task(task).inst())
                    }
                    poison.extend(prev.and_then(inst_of));
                }
                Frame::Host => {}
            }
        }
        for &i in &poison {
            if let Some(x) = self.instances.get_mut(i.key()) {
                x.poisoned = true;
                x.exclusive_thread = None;
            }
        }
        self.sched.reset();
        self.leave_popped();
        let dead: Vec<ThreadId> = self
            .threads
            .iter()
            .filter(|(_, t)| self.inst(t.inst).poisoned)
            .map(|(k, _)| ThreadId::from_key(k))
            .collect();
        for t in dead {
            let th = self.threads.remove(t.key());
            if th.index != 0 {
                let _ = self.inst_mut(th.inst).threads.remove(th.index);
            }
        }
        self.waiting.retain(|t| self.threads.contains(t.key()));
        let dead_tasks: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| self.inst(t.inst()).poisoned)
            .map(|(k, _)| TaskId::from_key(k))
            .collect();
        for t in dead_tasks {
            // A caller outside the poisoned instances keeps its subtask
            // handle; it must never reach the freed task again.
            if let Caller::Guest(s) = self.task(t).caller {
                if let Some(st) = self
                    .waitables
                    .get_mut(s.0.key())
                    .and_then(|w| w.subtask_mut())
                {
                    st.callee = Callee::Gone;
                }
            }
            self.task_exited(t);
        }
        // Subtasks of a poisoned caller still in flight (no handle yet)
        // can never be reached again: free them.
        let orphans: Vec<WaitableId> = self
            .waitables
            .iter()
            .filter(|(_, w)| w.index == 0 && self.inst(w.inst).poisoned)
            .map(|(k, _)| WaitableId::from_key(k))
            .collect();
        for w in orphans {
            self.join(w, None);
            self.waitables.remove(w.key());
        }
    }

    /// Reports that the running thread's core wasm trapped (`unreachable`,
    /// an out-of-bounds access, a trap of a nested synchronous call, ...):
    /// the instances of the call are poisoned and its threads are gone.
    pub fn wasm_trapped(&mut self) {
        let inst = self.current_inst();
        self.abort(inst);
    }

    /// A built-in wrapper: on a trap, abort before returning it.
    pub(crate) fn guard<T>(&mut self, r: R<T>) -> R<T> {
        if r.is_err() {
            let inst = self.current_inst();
            self.abort(inst);
        }
        #[cfg(feature = "check")]
        self.check_invariants();
        r
    }

    /// The instance of the running thread, if any (and if it still exists).
    pub(crate) fn current_inst(&self) -> Option<InstanceId> {
        self.sched
            .current()
            .and_then(|t| self.threads.get(t.key()))
            .map(|th| th.inst)
    }

    /// A description of what every blocked thread waits for: the detail of
    /// a deadlock report.
    pub fn describe_blocked(&self) -> alloc::string::String {
        use core::fmt::Write;
        let mut s = alloc::string::String::new();
        for (k, th) in self.threads.iter() {
            let what = match (th.state, th.resume) {
                (ThreadState::Waiting(c), _) => alloc::format!("waits for {c:?}"),
                (ThreadState::Suspended, Resume::Explicit { .. }) => "was never resumed".into(),
                (ThreadState::Suspended, _) => "is suspended".into(),
                (ThreadState::Running, r) => alloc::format!("is in {r:?}"),
            };
            let _ = writeln!(
                s,
                "thread {k} (instance {}, index {}) {what}",
                th.inst.0, th.index
            );
        }
        s
    }

    // ----- core functions returning ---------------------------------------------

    /// A synchronously lifted core function returned its results: the
    /// spec's `task.return_` on them. The embedder then delivers the values
    /// as [`ResultDelivery`] says, runs `post-return` (between
    /// [`Store::set_may_leave`] `false` and `true`), and calls [`Store::exit_thread`].
    pub fn lift_returned(&mut self) -> Result<ResultDelivery, Trap> {
        let r = self
            .running()
            .and_then(|(_, task, _)| self.task_return_internal(task));
        self.guard(r)
    }

    /// Sets `may_leave` of the running thread's instance (off while
    /// `post-return` or `realloc` runs).
    pub fn set_may_leave(&mut self, may_leave: bool) {
        if let Some(t) = self.sched.current() {
            let inst = self.thread(t).inst;
            self.inst_mut(inst).may_leave = may_leave;
        }
    }

    /// The running thread's core function returned (a stackful lift, an
    /// explicit thread, or a sync lift after its post-return): the thread is
    /// gone. Traps when it was the last thread of a task that has not resolved.
    pub fn exit_thread(&mut self) -> Result<(), Trap> {
        let r = self.exit_thread_inner();
        self.guard(r)
    }

    fn exit_thread_inner(&mut self) -> R<()> {
        let (t, task, inst) = self.running()?;
        let tk = self.task(task);
        let (f, implicit) = (tk.func, tk.implicit_thread == Some(t));
        self.unregister_thread(t)?;
        if implicit && f.async_type && f.needs_exclusive() {
            let i = self.inst_mut(inst);
            debug_assert_eq!(i.exclusive_thread, Some(t));
            if i.exclusive_thread == Some(t) {
                i.exclusive_thread = None;
            }
        }
        self.sched.stop(t, Then::ReturnToFrame);
        Ok(())
    }

    /// A callback-lifted core function (or its callback) returned `packed`:
    /// EXIT, YIELD or WAIT on the set `packed >> 4`.
    pub fn callback_returned(&mut self, packed: u32) -> Result<(), Trap> {
        let r = self.callback_returned_inner(packed);
        self.guard(r)
    }

    fn callback_returned_inner(&mut self, packed: u32) -> R<()> {
        let (t, _, inst) = self.running()?;
        let code = packed & 0xf;
        trap_if(code > 2, Trap::UnsupportedCallbackCode(code))?;
        if code == 0 {
            return self.exit_thread_inner();
        }
        debug_assert_eq!(self.inst(inst).exclusive_thread, Some(t));
        self.inst_mut(inst).exclusive_thread = None;
        let early = if code == 1 {
            self.wait_until(t, WaitCond::NoExclusive(inst), true, Resume::CallbackYield)
                .map(|c| {
                    if c {
                        Event::TASK_CANCELLED
                    } else {
                        Event::NONE
                    }
                })
        } else {
            let si = packed >> 4;
            let task = self.thread(t).task;
            self.may_block_check(task, true)?;
            let set = match self.inst(inst).handles.get(si)? {
                Handle::Set(s) => *s,
                _ => return Err(Trap::WrongHandleKind(si)),
            };
            self.sets[set.key()].num_waiting += 1;
            let c = self.wait_until(
                t,
                WaitCond::SetEvent(set, Some(inst)),
                true,
                Resume::CallbackWait(set),
            );
            c.map(|c| {
                self.sets[set.key()].num_waiting -= 1;
                if c {
                    Event::TASK_CANCELLED
                } else {
                    self.set_get_pending_event(set)
                }
            })
        };
        if let Some(e) = early {
            let a = self.callback_event(t, e);
            self.sched.stop(t, Then::Emit(a));
        }
        Ok(())
    }
}
