//! The scheduler: which thread runs, what the driving loop does next, and
//! who gets control back when a thread blocks.
//!
//! The spec's `Thread.resume` runs a continuation until it blocks and then
//! returns to whoever resumed it: `Store.tick` (or `Store.invoke`),
//! `canon_lift` of a non-async function type, `canon_lower`,
//! `subtask.cancel` (`Task.request_cancellation`), or a synchronous call
//! the embedder makes itself (`realloc`, a start function). Those five
//! resumers are the [`Frame`]s of an explicit stack here; a thread that
//! blocks returns control to the top frame.
//!
//! [`Sched`] owns that stack, the pending [`Control`] transfer and the
//! running thread, behind a handful of operations; its fields are private
//! to this file, so every control transfer of the core is made here, by
//! the operations below or by the driving loop at the end of the file.
//!
//! | operation              | what it means                                                    |
//! |------------------------|------------------------------------------------------------------|
//! | [`Sched::resume`]      | the next step resumes a thread (switch to it)                    |
//! | [`Sched::stop`]        | the running thread stops (a transfer follows)                    |
//! | [`Sched::call`]        | the running thread suspends into a resumer frame (lower, cancel) |
//! | [`Sched::emit`]        | the next step hands an action to the embedder                    |
//! | [`Sched::return_to_frame`] | the next step returns to the frame below                    |
//! | [`Sched::push`]        | a resumer frame with no calling thread (a host call, a sync lift) |
//! | [`Sched::begin_nested`] / [`Sched::end_nested`] | a synchronous call the embedder makes   |
//! | [`Sched::run`]         | a frame gives the CPU back to its calling thread                 |
//! | [`Sched::reset`]       | a trap clears the stack                                          |

use alloc::vec::Vec;
use core::mem;

use smallvec::SmallVec;

use crate::action::Action;
use crate::chooser::ChoicePoint;
use crate::ids::{TaskId, ThreadId, WaitableId};
use crate::store::Store;
use crate::wait_queue::Key;

/// The resumers of the spec: who gets control back when a thread blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// `Store.tick` or `Store.invoke`: back to the host.
    Host,
    /// `canon_lift` of a non-async function type: keep resuming ready
    /// threads of the instance until the task resolves.
    SyncLift { task: TaskId, serial: u64 },
    /// `canon_lower`: finish the call of `caller`.
    Lower {
        caller: ThreadId,
        subtask: WaitableId,
    },
    /// `subtask.cancel`: finish it once the cancellation was delivered.
    Cancel {
        caller: ThreadId,
        subtask: WaitableId,
        async_: bool,
    },
    /// A synchronous call the embedder makes on a fresh thread (`realloc`,
    /// a start function): like `SyncLift`, and [`Store::end_sync_call`]
    /// pops it and gives the CPU back to `prev`.
    SyncCall {
        task: TaskId,
        serial: u64,
        prev: Option<ThreadId>,
    },
}

/// The control transfer the driving loop makes next (small and `Copy`:
/// the driving loop takes it at every step; an emitted action waits in
/// [`Sched`]'s `emitted`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    /// Nothing pending: tick.
    Tick,
    /// Resume the thread (a cancellation delivered to it if `cancelled`).
    Resume { thread: ThreadId, cancelled: bool },
    /// The running thread blocked or finished: return to the top frame.
    Return,
    /// Hand the emitted action to the embedder; afterwards return to the
    /// top frame if `then_return` (a host call: its caller's frame is on
    /// top), otherwise tick on (a callback's event, decided early).
    Emit { then_return: bool },
}

/// The resumer stack, the pending control transfer and the running thread.
#[derive(Debug)]
pub(crate) struct Sched {
    frames: Vec<Frame>,
    control: Control,
    /// The action of a pending [`Control::Emit`].
    emitted: Option<Action>,
    current: Option<ThreadId>,
    /// The `control` (and emitted action) of each open
    /// [`Frame::SyncCall`], restored when it ends.
    nested_saved: Vec<(Control, Option<Action>)>,
}

impl Sched {
    pub(crate) fn new() -> Self {
        Sched {
            frames: Vec::new(),
            control: Control::Tick,
            emitted: None,
            current: None,
            nested_saved: Vec::new(),
        }
    }

    /// The thread whose guest code runs now.
    #[inline]
    pub(crate) fn current(&self) -> Option<ThreadId> {
        self.current
    }

    /// The resumer stack, bottom first (read-only: poisoning walks it).
    #[inline]
    pub(crate) fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The number of frames on the stack.
    #[inline]
    pub(crate) fn depth(&self) -> usize {
        self.frames.len()
    }

    /// The pending transfer (read-only, for the invariant checks).
    #[cfg(feature = "check")]
    pub(crate) fn control(&self) -> &Control {
        &self.control
    }

    /// The action of a pending [`Control::Emit`] (for the invariant checks).
    #[cfg(feature = "check")]
    pub(crate) fn emitted(&self) -> Option<&Action> {
        self.emitted.as_ref()
    }

    /// No guest code runs and no call is part-way through its resumers.
    #[inline]
    pub(crate) fn at_boundary(&self) -> bool {
        self.current.is_none() && self.frames.is_empty()
    }

    /// Switch to `thread`: the driving loop resumes it next.
    #[inline]
    pub(crate) fn resume(&mut self, thread: ThreadId, cancelled: bool) {
        self.control = Control::Resume { thread, cancelled };
    }

    /// The next step returns to the frame below (the running thread, if
    /// any, already stopped).
    #[inline]
    pub(crate) fn return_to_frame(&mut self) {
        self.control = Control::Return;
    }

    /// The next step hands `action` to the embedder, then returns to the
    /// frame below (`then_return`) or ticks on.
    #[inline]
    pub(crate) fn emit(&mut self, action: Action, then_return: bool) {
        self.emitted = Some(action);
        self.control = Control::Emit { then_return };
    }

    /// The running thread `t` stops (it blocked, suspended or exited):
    /// nothing runs until the transfer that follows ([`Sched::resume`],
    /// [`Sched::return_to_frame`] or [`Sched::emit`]).
    #[inline]
    pub(crate) fn stop(&mut self, t: ThreadId) {
        if self.current == Some(t) {
            self.current = None;
        }
    }

    /// The running thread suspends into the resumer `frame` (`canon_lower`,
    /// `subtask.cancel`), which gives it the CPU back when it is popped.
    #[inline]
    pub(crate) fn call(&mut self, frame: Frame) {
        debug_assert!(matches!(frame, Frame::Lower { .. } | Frame::Cancel { .. }));
        self.frames.push(frame);
        self.current = None;
    }

    /// Pushes a resumer with no calling thread: the host's (`Store.invoke`,
    /// `Store.tick`), a synchronous-typed lift's loop, or such a loop's
    /// frame back on the stack when the loop goes on.
    #[inline]
    pub(crate) fn push(&mut self, frame: Frame) {
        debug_assert!(!matches!(frame, Frame::Lower { .. } | Frame::Cancel { .. }));
        self.frames.push(frame);
    }

    /// A frame gives the CPU back to its calling thread `t`, or a thread is
    /// resumed.
    #[inline]
    pub(crate) fn run(&mut self, t: ThreadId) {
        self.current = Some(t);
    }

    /// Begins a synchronous call the embedder makes on the fresh thread `t`
    /// of `task`: the running thread (if any) is set aside, with the
    /// pending transfer, until [`Sched::end_nested`].
    pub(crate) fn begin_nested(&mut self, task: TaskId, serial: u64, t: ThreadId) {
        self.frames.push(Frame::SyncCall {
            task,
            serial,
            prev: self.current,
        });
        let saved = mem::replace(&mut self.control, Control::Tick);
        self.nested_saved.push((saved, self.emitted.take()));
        self.current = Some(t);
    }

    /// The task and the set-aside thread of the synchronous call on top of
    /// the stack, if the top frame is one.
    pub(crate) fn nested_top(&self) -> Option<(TaskId, Option<ThreadId>)> {
        match self.frames.last() {
            Some(&Frame::SyncCall { task, prev, .. }) => Some((task, prev)),
            _ => None,
        }
    }

    /// Ends the synchronous call on top of the stack: the set-aside thread
    /// runs again, with its pending transfer.
    pub(crate) fn end_nested(&mut self) {
        let prev = match self.frames.pop() {
            Some(Frame::SyncCall { prev, .. }) => prev,
            f => {
                debug_assert!(false, "end_nested on {f:?}");
                None
            }
        };
        (self.control, self.emitted) = self.nested_saved.pop().unwrap_or((Control::Tick, None));
        self.current = prev;
    }

    /// After a trap: no frame, nothing pending, nothing runs.
    pub(crate) fn reset(&mut self) {
        self.frames.clear();
        self.nested_saved.clear();
        self.current = None;
        self.control = Control::Tick;
        self.emitted = None;
    }
}

// ----- the driving loop ----------------------------------------------------

impl Store {
    /// The driving loop; with `new_tick` false it stops (`None`) where it
    /// would start a new tick, otherwise it never returns `None`.
    pub(crate) fn next_action_inner(&mut self, new_tick: bool) -> Option<Action> {
        if self.sched.current.is_some() {
            debug_assert!(false, "next_action while a thread runs");
            return Some(Action::Idle);
        }
        loop {
            let r = match mem::replace(&mut self.sched.control, Control::Tick) {
                Control::Emit { then_return } => {
                    if then_return {
                        self.sched.control = Control::Return;
                    }
                    let Some(action) = self.sched.emitted.take() else {
                        debug_assert!(false, "Control::Emit without an action");
                        continue;
                    };
                    self.sched.current = action.thread();
                    return Some(action);
                }
                // `control` stays `Tick`: the boundary.
                Control::Tick if !new_tick => return None,
                Control::Tick => match self.tick() {
                    Some(t) => {
                        self.sched.frames.push(Frame::Host);
                        // `Store.tick`: `thread.task.inst.enter_from(None)`.
                        let inst = self.thread(t).inst;
                        self.enter_from(inst, None);
                        self.sched.resume(t, false);
                        continue;
                    }
                    None => return Some(Action::Idle),
                },
                Control::Resume { thread, cancelled } => self.resume_thread(thread, cancelled),
                Control::Return => self.pop_frame(),
            };
            match r {
                Ok(Some(a)) => {
                    self.sched.current = a.thread();
                    return Some(a);
                }
                Ok(None) => {}
                Err(trap) => {
                    let inst = self.current_inst();
                    self.abort(inst);
                    return Some(Action::Trap(trap));
                }
            }
        }
    }

    /// `Store.tick`'s choice of a ready thread.
    fn tick(&mut self) -> Option<ThreadId> {
        debug_assert!(self.sched.frames.is_empty());
        if !self.waiting.has_active() {
            return None;
        }
        let first_only = self.chooser.always_first();
        if first_only {
            // The common case: the first thread in waiting order is ready
            // (nothing before it to park).
            if let Some(t) = self.waiting.active().next() {
                if self.thread_ready(t) {
                    return Some(t);
                }
            }
        }
        let mut ready: SmallVec<[ThreadId; 8]> = SmallVec::new();
        let mut park: SmallVec<[(ThreadId, Key); 8]> = SmallVec::new();
        let mut first = None;
        for t in self.waiting.active() {
            if self.thread_ready(t) {
                if first_only {
                    // The chooser would pick index 0 of the full list.
                    first = Some(t);
                    break;
                }
                ready.push(t);
            } else if let Some(k) = self.park_key(t) {
                park.push((t, k));
            }
        }
        for &(t, k) in park.iter() {
            self.waiting.park(t, k);
        }
        if first.is_some() {
            return first;
        }
        if ready.is_empty() {
            return None;
        }
        let k = self.choose(ChoicePoint::Tick, ready.len());
        Some(ready[k])
    }

    /// Control returns to the top frame.
    fn pop_frame(&mut self) -> Result<Option<Action>, crate::Trap> {
        debug_assert!(self.sched.current.is_none());
        loop {
            let frame = self.sched.frames.pop();
            self.leave_popped();
            return match frame {
                None | Some(Frame::Host) => {
                    self.sched.control = Control::Tick;
                    Ok(None)
                }
                Some(Frame::SyncLift { task, serial }) => {
                    if self.task_resolved_or_gone(task, serial) {
                        // The lift returns: control goes to the next frame
                        // (without a round trip through the driving loop).
                        continue;
                    }
                    self.sync_resume_ready(task, Frame::SyncLift { task, serial })
                }
                Some(f @ Frame::SyncCall { task, .. }) => self.sync_resume_ready(task, f),
                Some(Frame::Lower { caller, subtask }) => self.finish_lower(caller, subtask),
                Some(Frame::Cancel {
                    caller,
                    subtask,
                    async_,
                }) => self.finish_subtask_cancel(caller, subtask, async_),
            };
        }
    }
}
