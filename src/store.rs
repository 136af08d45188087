//! `Store`: every instance, task, thread and waitable, the host's entry
//! points (`invoke`, `next_action`) and poisoning. The driving loop and the
//! five resumers a blocked thread returns to are in `sched.rs`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem;
use core::task::{Context, Poll};

use slab::Slab;
use smallvec::SmallVec;

use crate::action::Action;
use crate::chooser::{ChoicePoint, Chooser, Deterministic};
use crate::copy::Shared;
use crate::error::{EmbedderError, Error};
use crate::ids::*;
use crate::instance::ComponentInstance;
use crate::live::Wakers;
use crate::sched::{Frame, Sched};
use crate::set_events::SetEvents;
use crate::subtask::{Callee, Subtask, SubtaskState};
use crate::task::{Caller, Lifted, Task, TaskState};
use crate::thread::{Resume, Thread, ThreadState};
use crate::trap::{trap_if, Trap};
use crate::wait_queue::WaitQueue;
use crate::waitable::{Waitable, WaitableSet};

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
    /// over at [`ResumeValue::Returned`](crate::ResumeValue::Returned) for a sync lower).
    Guest(SubtaskId),
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
    pub(crate) threads: Slab<Thread>,
    pub(crate) waitables: Slab<Waitable>,
    pub(crate) sets: Slab<WaitableSet>,
    pub(crate) shared: Slab<Shared>,
    /// The lent borrow handles of subtasks that lend some ([`Subtask::lenders`]).
    pub(crate) lends: Slab<SmallVec<[u32; 2]>>,
    pub(crate) error_contexts: Slab<ErrorContext>,
    /// Message ids of freed error-contexts, for the embedder to free.
    pub(crate) freed_error_messages: alloc::vec::Vec<u32>,
    /// Streams and futures whose host end got an event since the embedder
    /// last looked ([`Store::take_host_events`]).
    pub(crate) host_events: Vec<SharedId>,
    pub(crate) resource_types: Vec<InstanceId>,
    /// `Store.waiting`, in the order threads started waiting.
    pub(crate) waiting: WaitQueue,
    /// The members of each set with a pending event, in join order.
    pub(crate) set_events: SetEvents,
    /// The resumer stack, the pending control transfer and the running thread.
    pub(crate) sched: Sched,
    /// The `enter_from`s not yet left, innermost last.
    pub(crate) entered: Vec<crate::enter::Entered>,
    pub(crate) chooser: Box<dyn Chooser>,
    /// Which reading of the spec the store follows where the reference
    /// suite and `definitions.py` disagree.
    pub(crate) reading: Reading,
    pub(crate) next_serial: u64,
    pub(crate) live_tasks: usize,
    pub(crate) wakers: Wakers,
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
            threads: Slab::new(),
            waitables: Slab::new(),
            sets: Slab::new(),
            shared: Slab::new(),
            lends: Slab::new(),
            error_contexts: Slab::new(),
            freed_error_messages: alloc::vec::Vec::new(),
            host_events: Vec::new(),
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
    /// ancestors trap (see [`Running::canon_lower`](crate::Running::canon_lower)).
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
    /// any, is the embedder's to run when [`Running::resource_drop`](crate::Running::resource_drop) says so).
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
        self.tasks.get(task.key()).map(|t| t.caller())
    }

    /// The lifted function a task runs.
    pub fn task_func(&self, task: TaskId) -> Option<Lifted> {
        self.tasks.get(task.key()).map(|t| t.func())
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

    // ----- the host's entry points --------------------------------------------

    /// Host entry: `Store.invoke` of a lifted function. The call runs when
    /// the embedder next calls [`Store::next_action`]; the results come back
    /// through [`ResultDelivery::Host`] when the task returns.
    ///
    /// Fails with [`EmbedderError::NotAtTickBoundary`] unless
    /// [`Store::at_tick_boundary`], [`EmbedderError::UnknownId`] for an
    /// unknown instance, and with [`Trap::CannotEnter`] for a poisoned one.
    pub fn invoke(&mut self, func: Lifted) -> Result<TaskId, Error> {
        if !self.sched.at_boundary() {
            return Err(EmbedderError::NotAtTickBoundary.into());
        }
        if !self.instances.contains(func.inst.key()) {
            return Err(EmbedderError::UnknownId.into());
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
                    if self.task_serial(task) == Some(serial) {
                        poison.push(self.task(task).inst())
                    }
                }
                Frame::SyncCall { task, serial, prev } => {
                    if self.task_serial(task) == Some(serial) {
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
            if let Caller::Guest(s) = self.task(t).caller() {
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
            self.forget_lenders(w);
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
    pub(crate) fn guard<T>(&mut self, r: Result<T, Trap>) -> Result<T, Trap> {
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

    /// Sets `may_leave` of the running thread's instance (off while
    /// `post-return` or `realloc` runs).
    pub fn set_may_leave(&mut self, may_leave: bool) {
        if let Some(t) = self.sched.current() {
            let inst = self.thread(t).inst;
            self.inst_mut(inst).may_leave = may_leave;
        }
    }
}
