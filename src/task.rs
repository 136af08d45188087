//! `Task`: one call of a lifted function, and the descriptors of lifts.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::ids::{InstanceId, SubtaskId, TaskId, ThreadId};
use crate::lift::LiftPhase;
use crate::store::{Reading, ResultDelivery, Store};
use crate::subtask::SubtaskState;
use crate::thread::{Resume, Thread};
use crate::trap::{trap_if, Trap};

/// How a function was lifted (`canon lift` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiftKind {
    /// No `async` option: the core function returns the flat results.
    Sync,
    /// `async` with `(callback f)`: the core function returns a packed
    /// callback code and the callback is called with each event.
    AsyncCallback,
    /// `async` without `callback` (🚟 stackful): the core function returns
    /// nothing and calls `task.return` itself.
    AsyncStackful,
}

/// A lifted function, as the embedder describes it to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lifted {
    /// The instance the function belongs to (the callee instance).
    pub inst: InstanceId,
    /// The embedder's own id for the core function (and its callback),
    /// echoed back in [`Action::Start`](crate::Action::Start) and
    /// [`Action::Callback`](crate::Action::Callback).
    pub func: u32,
    /// The lift options.
    pub kind: LiftKind,
    /// Whether the function type is `async` (`(func async ...)`).
    pub async_type: bool,
}

impl Lifted {
    /// `Task.needs_exclusive`: synchronous and callback lifts hold the
    /// instance's exclusive lock while their core code runs.
    pub fn needs_exclusive(&self) -> bool {
        self.kind != LiftKind::AsyncStackful
    }
}

/// Who called a task: the host (through [`Store::invoke`](crate::Store::invoke))
/// or a guest, through a subtask of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The host invoked the function.
    Host,
    /// A guest called it through `canon lower`.
    Guest(SubtaskId),
}

/// `Task.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Created, waiting to enter (backpressure).
    Initial,
    /// Entered: its core function was called.
    Started,
    /// A cancellation was requested and waits for a cancellation point.
    PendingCancel,
    /// `TASK_CANCELLED` (or a cancelled resume) was delivered.
    CancelDelivered,
    /// `task.return` or `task.cancel` happened.
    Resolved,
}

/// 40 bytes (path 7 of the benchmarks): the lifted function is kept
/// flattened, so that `state` and `implicit_registered` fill its padding,
/// and the caller packed in one word ([`Task::func`], [`Task::caller`]).
#[derive(Debug)]
pub(crate) struct Task {
    inst: InstanceId,
    func_id: u32,
    kind: LiftKind,
    async_type: bool,
    pub state: TaskState,
    /// The subtask's waitable key for a guest caller, `HOST_CALLER` for the host.
    caller: u32,
    pub num_borrows: u32,
    /// The implicit thread while it lives: cleared when it exits, so an
    /// explicit thread that reuses its slot is never taken for it
    /// (`definitions.py` compares thread objects).
    /// (Kept without an `Option`, `NO_THREAD` when cleared; see
    /// [`Task::implicit_thread`].)
    implicit: u32,
    /// The store-wide creation number of the task: a [`Frame::SyncLift`]
    /// or [`Frame::SyncCall`](crate::sched::Frame) names its task with it,
    /// so that a task that exited (and whose slot was reused) is told apart.
    ///
    /// [`Frame::SyncLift`]: crate::sched::Frame::SyncLift
    pub serial: u64,
    /// `Task.threads`, the registered threads in registration order, is
    /// the implicit thread (always the first to register: explicit threads
    /// are created by the task's running threads) while `implicit_registered`,
    /// then `explicit`. Boxed and `None` while the task has no explicit
    /// thread, which keeps a pending task small (path 7 of the benchmarks).
    pub implicit_registered: bool,
    // One word instead of a `Vec`'s three: the extra allocation is made
    // only by a task that creates explicit threads.
    #[allow(clippy::box_collection)]
    pub explicit: Option<Box<Vec<ThreadId>>>,
}

/// `Task::caller` of a task the host invoked.
const HOST_CALLER: u32 = u32::MAX;

/// `Task::implicit` once the implicit thread has left.
const NO_THREAD: u32 = u32::MAX;

impl Task {
    /// A task of `func` called by `caller`, whose implicit thread is
    /// `implicit`, in the state `Initial` with no thread registered.
    pub fn new(func: Lifted, caller: Caller, implicit: ThreadId, serial: u64) -> Self {
        Task {
            inst: func.inst,
            func_id: func.func,
            kind: func.kind,
            async_type: func.async_type,
            state: TaskState::Initial,
            caller: match caller {
                Caller::Host => HOST_CALLER,
                Caller::Guest(s) => s.0 .0,
            },
            num_borrows: 0,
            implicit: implicit.0,
            serial,
            implicit_registered: false,
            explicit: None,
        }
    }

    #[inline]
    pub fn inst(&self) -> InstanceId {
        self.inst
    }

    /// The lifted function the task runs.
    #[inline]
    pub fn func(&self) -> Lifted {
        Lifted {
            inst: self.inst,
            func: self.func_id,
            kind: self.kind,
            async_type: self.async_type,
        }
    }

    /// Who called the task.
    #[inline]
    pub fn caller(&self) -> Caller {
        if self.caller == HOST_CALLER {
            Caller::Host
        } else {
            Caller::Guest(SubtaskId(crate::ids::WaitableId(self.caller)))
        }
    }

    /// `Task.implicit_thread` while it lives: cleared when it exits, so an
    /// explicit thread that reuses its slot is never taken for it
    /// (`definitions.py` compares thread objects).
    #[inline]
    pub fn implicit_thread(&self) -> Option<ThreadId> {
        (self.implicit != NO_THREAD).then_some(ThreadId(self.implicit))
    }

    /// `Task.threads`, in registration order.
    pub fn threads(&self) -> impl Iterator<Item = ThreadId> + '_ {
        let implicit = self.implicit_thread().filter(|_| self.implicit_registered);
        implicit
            .into_iter()
            .chain(self.explicit.iter().flat_map(|v| v.iter().copied()))
    }

    /// Whether `t` is among `Task.threads`.
    #[cfg_attr(not(feature = "check"), allow(dead_code))]
    pub fn has_thread(&self, t: ThreadId) -> bool {
        self.threads().any(|x| x == t)
    }

    /// Whether no thread is registered.
    #[inline]
    pub fn no_threads(&self) -> bool {
        !self.implicit_registered && self.explicit.is_none()
    }

    /// `Task.threads.append(t)` (`register_thread`).
    #[inline]
    pub fn push_thread(&mut self, t: ThreadId) {
        if self.implicit_thread() == Some(t) {
            debug_assert!(!self.implicit_registered && self.explicit.is_none());
            self.implicit_registered = true;
        } else {
            self.explicit.get_or_insert_with(Default::default).push(t);
        }
    }

    /// `Task.threads.remove(t)` (`unregister_thread`); a no-op if `t` is not there.
    #[inline]
    pub fn remove_thread(&mut self, t: ThreadId) {
        if self.implicit_registered && self.implicit_thread() == Some(t) {
            self.implicit_registered = false;
        } else if let Some(v) = &mut self.explicit {
            if let Some(pos) = v.iter().position(|&x| x == t) {
                v.remove(pos);
            }
            if v.is_empty() {
                self.explicit = None;
            }
        }
    }

    /// Whether `t` is the only registered thread.
    #[inline]
    pub fn only_thread(&self, t: ThreadId) -> bool {
        match &self.explicit {
            None => self.implicit_registered && self.implicit_thread() == Some(t),
            Some(v) => !self.implicit_registered && v.as_slice() == [t],
        }
    }

    /// Forgets every registered thread.
    pub fn clear_threads(&mut self) {
        self.implicit_registered = false;
        self.explicit = None;
    }

    /// `Task.deliver_pending_cancel`.
    pub fn deliver_pending_cancel(&mut self, cancellable: bool) -> bool {
        if cancellable && self.state == TaskState::PendingCancel {
            self.state = TaskState::CancelDelivered;
            true
        } else {
            false
        }
    }
}

impl Store {
    /// `trap_if(not task.may_block())` of the suite's reading, for a
    /// built-in that would block (`blocks` false: an async form, no check).
    pub(crate) fn may_block_check(&self, task: TaskId, blocks: bool) -> Result<(), Trap> {
        if blocks && self.reading == Reading::Suite {
            let t = self.task(task);
            trap_if(
                !t.async_type && t.state != TaskState::Resolved,
                Trap::CannotBlockSync,
            )?;
        }
        Ok(())
    }

    pub(crate) fn has_backpressure(&self, task: TaskId) -> bool {
        let f = self.task(task).func();
        let i = self.inst(f.inst);
        i.backpressure > 0 || (f.needs_exclusive() && i.exclusive_thread.is_some())
    }

    /// `Task.register_thread`.
    pub(crate) fn register_thread(&mut self, task: TaskId, t: ThreadId) -> Result<(), Trap> {
        let inst = self.task(task).inst();
        let index = self.inst_mut(inst).threads.add(t)?;
        self.thread_mut(t).index = index;
        self.task_mut(task).push_thread(t);
        Ok(())
    }

    /// `Task.unregister_thread`, and the thread is gone. Traps when the last
    /// thread leaves a task that has not resolved.
    #[inline]
    pub(crate) fn unregister_thread(&mut self, t: ThreadId) -> Result<(), Trap> {
        // The trap leaves the thread in place (the abort that follows drops
        // it with the rest of its instance), so the trap can name its instance.
        let th = self.thread(t);
        let (task, inst, index) = (th.task, th.inst, th.index);
        let tk = self.task_mut(task);
        let last = tk.only_thread(t);
        trap_if(
            last && tk.state != TaskState::Resolved,
            Trap::TaskNotResolved,
        )?;
        if last {
            tk.clear_threads();
        } else {
            tk.remove_thread(t);
        }
        if tk.implicit_thread() == Some(t) {
            tk.implicit = NO_THREAD;
        }
        let empty = tk.no_threads();
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
    #[inline]
    pub(crate) fn new_task(&mut self, func: Lifted, caller: Caller) -> (TaskId, ThreadId) {
        let entry = self.threads.vacant_entry();
        let thread = ThreadId::from_key(entry.key());
        let task = TaskId::from_key(self.tasks.insert(Task::new(
            func,
            caller,
            thread,
            self.next_serial + 1,
        )));
        entry.insert(Thread::new(task, func.inst, Resume::Lift(LiftPhase::Enter)));
        self.next_serial += 1;
        self.live_tasks += 1;
        self.inst_mut(func.inst).live_tasks += 1;
        (task, thread)
    }

    /// The one place the live count goes down: the task resolved and its
    /// last thread left (or it was cancelled before it started).
    #[inline]
    pub(crate) fn task_exited(&mut self, task: TaskId) {
        // The task leaves the table here, so a second exit finds nothing.
        let Some(tk) = self.tasks.try_remove(task.key()) else {
            debug_assert!(false, "a task exits once");
            return;
        };
        let inst = tk.inst();
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

    /// The serial of `task` while it exists (see [`Task::serial`]).
    #[inline]
    pub(crate) fn task_serial(&self, task: TaskId) -> Option<u64> {
        self.tasks.get(task.key()).map(|t| t.serial)
    }

    pub(crate) fn task_resolved_or_gone(&self, task: TaskId, serial: u64) -> bool {
        self.task_serial(task) != Some(serial) || self.task(task).state == TaskState::Resolved
    }

    /// `Task.return_`: the checks, then `on_resolve(result)`.
    #[inline]
    pub(crate) fn task_return_internal(&mut self, task: TaskId) -> Result<ResultDelivery, Trap> {
        let tk = self.task_mut(task);
        trap_if(tk.state == TaskState::Resolved, Trap::TaskAlreadyResolved)?;
        trap_if(tk.num_borrows > 0, Trap::BorrowsRemain)?;
        let caller = tk.caller();
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
    pub(crate) fn task_cancel_internal(&mut self, task: TaskId) -> Result<(), Trap> {
        let tk = self.task(task);
        trap_if(
            tk.state != TaskState::CancelDelivered,
            Trap::TaskCancelNotDelivered,
        )?;
        trap_if(tk.num_borrows > 0, Trap::BorrowsRemain)?;
        let caller = tk.caller();
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
}
