//! The push side of the driving contract: a [`Host`] says how to do each
//! kind of [`Action`], and its provided methods run the loop over
//! [`Store::next_action`] for it.
//!
//! The core is sans-IO either way: [`Host::run`] is nothing but the pull
//! loop (`next_action`, then the method for the action) written once, so
//! that a scripted host, an interpreter-backed runtime and a benchmark do
//! not each carry their own copy of it. An embedder that wants to decide
//! action by action (a debugger, a replay tool, a host that interleaves the
//! core with other work) keeps calling [`Store::next_action`] itself, and
//! may hand single actions to [`Host::dispatch`].
//!
//! The loop reaches the store through [`Host::store`] rather than taking
//! it as an argument, because real embedders keep it inside something else
//! (an engine's store data, a `RefCell` shared with guest code that calls
//! the built-ins while the loop is between actions). The store is borrowed
//! only to ask for the next action, never while a method runs.

use core::ops::DerefMut;

use crate::action::{Action, ResumeValue};
use crate::ids::{SubtaskId, TaskId, ThreadId};
use crate::store::Store;
use crate::trap::Trap;
use crate::waitable::Event;

/// How an embedder carries out the core's actions: one method per kind of
/// [`Action`]. See the [crate documentation](crate) for what each must do
/// and what the guest code it runs reports back to the store.
///
/// The [crate documentation](crate) has an example beside the pull loop it
/// replaces.
pub trait Host {
    /// What the methods fail with; an [`Action::Trap`] becomes one.
    type Error: From<Trap>;

    /// The store the actions come from. The loop holds the borrow only
    /// while it asks for the next action.
    fn store(&mut self) -> impl DerefMut<Target = Store> + '_;

    /// [`Action::Start`]: call the lifted core function `func` for the
    /// implicit thread `thread` of `task`, on a fresh continuation.
    fn start(&mut self, thread: ThreadId, task: TaskId, func: u32) -> Result<(), Self::Error>;

    /// [`Action::Callback`]: call the callback of the callback-lifted
    /// `task` with `event`, on its implicit thread `thread`.
    fn callback(
        &mut self,
        thread: ThreadId,
        task: TaskId,
        func: u32,
        event: Event,
    ) -> Result<(), Self::Error>;

    /// [`Action::StartThread`]: start the explicit thread `thread` by
    /// calling function-table element `func` with `arg`.
    fn start_thread(&mut self, thread: ThreadId, func: u32, arg: u32) -> Result<(), Self::Error>;

    /// [`Action::Resume`]: resume the parked continuation of `thread`; the
    /// built-in it blocked in returns `value`.
    fn resume(&mut self, thread: ThreadId, value: ResumeValue) -> Result<(), Self::Error>;

    /// [`Action::HostCall`]: run the host function of `subtask`, and
    /// resolve it now or later with [`Store::host_return`].
    fn host_call(&mut self, subtask: SubtaskId) -> Result<(), Self::Error>;

    /// [`Action::HostCancel`]: the guest cancels the host call of
    /// `subtask`. The default ignores the request, which the spec allows:
    /// the call goes on and returns normally.
    fn host_cancel(&mut self, subtask: SubtaskId) -> Result<(), Self::Error> {
        let _ = subtask;
        Ok(())
    }

    /// Called with every action before it is carried out (tracing,
    /// recording a schedule). The default does nothing.
    fn observe(&mut self, action: &Action) {
        let _ = action;
    }

    /// Called after every action a method carried out (not after
    /// [`Action::Idle`] or [`Action::Trap`]): host work the action made
    /// ready, such as an event loop's completions and due timers. The
    /// default does nothing.
    fn after_action(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Carries out one action: the method for its kind, then
    /// [`Host::after_action`]; [`Action::Idle`] does nothing and
    /// [`Action::Trap`] is returned as the error.
    fn dispatch(&mut self, action: Action) -> Result<(), Self::Error> {
        self.observe(&action);
        let done = match action {
            Action::Start { thread, task, func } => self.start(thread, task, func),
            Action::Callback {
                thread,
                task,
                func,
                event,
            } => self.callback(thread, task, func, event),
            Action::StartThread { thread, func, arg } => self.start_thread(thread, func, arg),
            Action::Resume { thread, value } => self.resume(thread, value),
            Action::HostCall { subtask } => self.host_call(subtask),
            Action::HostCancel { subtask } => self.host_cancel(subtask),
            Action::Idle => return Ok(()),
            Action::Trap(t) => return Err(t.into()),
        };
        done?;
        self.after_action()
    }

    /// Drives the store until it is idle ([`Action::Idle`]): nothing can
    /// run until host work completes. Host-invoked calls may still be
    /// pending then; their results say.
    fn run(&mut self) -> Result<(), Self::Error> {
        self.run_until(|_| false).map(|_| ())
    }

    /// Drives the store until `done` holds and the tick it came true in has
    /// finished ([`Store::next_action_in_tick`]), or until the store is
    /// idle. `done` is asked before each action. Returns whether `done`
    /// held: `false` means the store went idle first (for a call that
    /// waits for its result, a deadlock unless host work is pending).
    ///
    /// `run_until(|_| true)` finishes the current tick and nothing more.
    fn run_until(&mut self, mut done: impl FnMut(&mut Self) -> bool) -> Result<bool, Self::Error> {
        loop {
            let finished = done(self);
            let action = {
                let mut store = self.store();
                if finished {
                    match store.next_action_in_tick() {
                        Some(a) => a,
                        None => return Ok(true),
                    }
                } else {
                    store.next_action()
                }
            };
            if action == Action::Idle {
                return Ok(finished);
            }
            self.dispatch(action)?;
        }
    }
}
