//! # canon-async
//!
//! The WebAssembly Component Model's async Canonical ABI — tasks,
//! subtasks, cooperative threads, waitable sets, streams, futures,
//! backpressure, cancellation and error-contexts — as one sans-IO state
//! machine that any core-wasm engine can embed.
//!
//! ## The driving contract
//!
//! The core never runs guest code and never blocks. The embedder:
//!
//! 1. creates instances ([`Store::new_instance`]) and starts host calls of
//!    lifted functions ([`Store::invoke`]);
//! 2. asks [`Store::next_action`] what to do, and does it:
//!    - [`Action::Start`] / [`Action::StartThread`]: call a core function on
//!      a fresh continuation (a wasmi resumable call, a fiber, a Rust
//!      closure) for the named thread;
//!    - [`Action::Callback`]: call a callback-lifted task's callback;
//!    - [`Action::Resume`]: resume the thread's parked continuation with the value;
//!    - [`Action::HostCall`] / [`Action::HostCancel`]: run host code for a subtask;
//!    - [`Action::Idle`]: nothing can run until host work completes (if
//!      none is pending, it is a deadlock, which the embedder reports: the
//!      core itself never raises [`Trap::Deadlock`]; [`Store::describe_blocked`]
//!      says what every thread waits for);
//!    - [`Action::Trap`]: the call trapped;
//! 3. while a thread runs, calls the built-ins for it on the view
//!    [`Store::running`] gives (`store.running()?.waitable_set_wait(..)`,
//!    `store.running()?.canon_lower(..)`, ...; with no running thread it is
//!    an [`EmbedderError`], which changes nothing). A built-in that answers
//!    [`Step::Suspend`] means: park this continuation and go back to 2;
//! 4. when a core function returns, reports it: [`Store::lift_returned`]
//!    then [`Store::exit_thread`] (synchronous lift), [`Store::callback_returned`]
//!    (callback lift), [`Store::exit_thread`] (stackful lift, explicit thread).
//!
//! A host that wants a call back as soon as its result is delivered, with
//! what the callee left behind still running in later ticks, asks
//! [`Store::next_action_in_tick`] instead of [`Store::next_action`] once it
//! has the result: it finishes the current tick and stops at its boundary.
//!
//! Values never pass through the core: the embedder lifts and lowers them
//! (it knows the memories and the types), calling the transfer functions
//! ([`Store::lift_own`], [`Store::lower_borrow`], [`Store::lift_end`], ...)
//! for every handle inside a value.
//!
//! ```
//! use canon_async::{Action, LiftKind, Lifted, ResultDelivery, Store};
//!
//! let mut store = Store::new();
//! let inst = store.new_instance();
//! // An async, callback-lifted export that returns at once.
//! let f = Lifted { inst, func: 7, kind: LiftKind::AsyncCallback, async_type: true };
//! let task = store.invoke(f).unwrap();
//! let Action::Start { func: 7, .. } = store.next_action() else { panic!() };
//! // The guest code runs; it calls `task.return` ...
//! assert_eq!(store.running().unwrap().task_return().unwrap(), ResultDelivery::Host(task));
//! // ... and its core function returns EXIT.
//! store.callback_returned(0).unwrap();
//! assert_eq!(store.next_action(), Action::Idle);
//! assert_eq!(store.live_tasks(), 0);
//! ```
//!
//! ### Or let the core's loop call you: [`Host`]
//!
//! The same contract, pushed: a [`Host`] has one method per kind of action
//! and [`Host::run`] is the loop above, written once ([`Host::run_until`]
//! stops at the boundary of the tick in which a condition came true, as
//! `next_action_in_tick` does; [`Host::dispatch`] carries out one action for
//! an embedder that pulls). The scripted host of the test kit, the wasmi
//! runtime and the keep-alive example are `Host`s. The same call as above:
//!
//! ```
//! use canon_async::{Event, Host, LiftKind, Lifted, ResumeValue, Store};
//! use canon_async::{Error, SubtaskId, TaskId, ThreadId};
//!
//! struct OneShot(Store);
//!
//! impl Host for OneShot {
//!     type Error = Error;
//!     fn store(&mut self) -> impl core::ops::DerefMut<Target = Store> + '_ {
//!         &mut self.0
//!     }
//!     fn start(&mut self, _: ThreadId, _: TaskId, func: u32) -> Result<(), Error> {
//!         assert_eq!(func, 7);
//!         // The guest code calls `task.return`; its core function returns EXIT.
//!         self.0.running()?.task_return()?;
//!         self.0.callback_returned(0)
//!     }
//!     // This guest never waits, starts threads, parks or calls imports.
//!     fn callback(&mut self, _: ThreadId, _: TaskId, _: u32, _: Event) -> Result<(), Error> {
//!         unreachable!()
//!     }
//!     fn start_thread(&mut self, _: ThreadId, _: u32, _: u32) -> Result<(), Error> {
//!         unreachable!()
//!     }
//!     fn resume(&mut self, _: ThreadId, _: ResumeValue) -> Result<(), Error> {
//!         unreachable!()
//!     }
//!     fn host_call(&mut self, _: SubtaskId) -> Result<(), Error> {
//!         unreachable!()
//!     }
//! }
//!
//! let mut host = OneShot(Store::new());
//! let inst = host.0.new_instance();
//! let f = Lifted { inst, func: 7, kind: LiftKind::AsyncCallback, async_type: true };
//! host.0.invoke(f).unwrap();
//! host.run().unwrap(); // until Action::Idle
//! assert_eq!(host.0.live_tasks(), 0);
//! ```
//!
//! ## Threads
//!
//! Every task runs on threads: its implicit thread (the lifted core
//! function) and the explicit ones it creates with `thread.new-indirect`
//! ([`Running::thread_new_indirect`]; the embedder resolves the table element
//! and checks its type, and reports a bad one with
//! [`Running::thread_new_indirect_invalid`]). A new explicit thread is
//! suspended, with both context slots zero, until `thread.resume-later`
//! or a switch built-in runs it ([`Action::StartThread`]). The task stays
//! live until its last thread has left, and that last thread traps if the
//! task has not returned or been cancelled by then. A switch built-in
//! (`thread.suspend-then-resume`, `thread.yield-then-*`, ...) answers
//! [`Step::Suspend`] and the very next action runs its target: the core
//! never goes through the ready queue for it.
//!
//! A call of a non-async function type (and a start function or `realloc`,
//! which the embedder runs between [`Store::begin_sync_call`] /
//! [`Store::begin_realloc`] and [`Store::end_sync_call`] /
//! [`Store::end_realloc`]) may still block: until it returns, the core keeps
//! resuming ready threads of its own instance (never the holder of the
//! instance's exclusive lock, never another instance's threads) and traps
//! with [`Trap::CannotBlockSync`] when none is ready.
//!
//! How an engine maps threads onto its own machinery:
//!
//! - **Resumable calls** (wasmi's `ResumableCall`): every thread is a
//!   top-level resumable call of its own. [`Action::Start`] and
//!   [`Action::StartThread`] start one; a built-in answering
//!   [`Step::Suspend`] makes the host function return a "suspend" resumption
//!   request, and the embedder keeps the paused call in a map keyed by
//!   [`ThreadId`] until [`Action::Resume`] names it. Because a guest-to-guest
//!   call also suspends the caller (the callee runs as a thread of its
//!   own), no host-to-wasm call ever nests, except `realloc` (which cannot
//!   block: `may_leave` is off) and start functions (run them as top-level
//!   calls too).
//! - **Fibers** (or stackful coroutines, Rust futures as in
//!   `script`, in the `test-kit` feature): every thread is a fiber; [`Step::Suspend`] switches back to
//!   the driving loop, which calls [`Store::next_action`] and switches to
//!   the fiber the action names. Nested calls may suspend as well.
//! - **Neither** (an engine that can only run a call to completion): only
//!   callback lifts work. Their core functions and callbacks return between
//!   events, so no task holds a continuation while others run; the embedder
//!   runs each [`Action::Start`] / [`Action::Callback`] to completion. A
//!   `canon lower` inside one answers [`Step::Suspend`] too: the embedder
//!   then drives [`Store::next_action`] itself, nested, until the
//!   [`Action::Resume`] of the calling thread, which works as long as every
//!   callee on the way is callback-lifted. Guests that use stackful lifts,
//!   blocking built-ins (a synchronous `waitable-set.wait`, synchronous
//!   copies) or the `thread.*` built-ins (a callback returns `YIELD`
//!   instead of calling `thread.yield`) need one of the two above.
//!
//! ## Reading the core against the spec
//!
//! Each module holds one class of `definitions.py` with its methods, so
//! that one file can be read against one class:
//!
//! | `definitions.py` | here |
//! |------------------|------|
//! | `Thread` (`block`, `wait_until`, `resume`, `ready`) | `thread.rs`, with one table of the thread states |
//! | `Task` (`register_thread`, `unregister_thread`, `return_`, `cancel`) | `task.rs` |
//! | `Waitable`, `WaitableSet` (`set_pending_event`, `join`, `get_pending_event`) | `waitable.rs` |
//! | `Subtask` (`resolve`, `deliver_resolve`) | `subtask.rs` |
//! | `SharedStreamImpl`, `SharedFutureImpl`, the `CopyEnd`s | `copy/` |
//! | `canon_lift` (one state machine, each step with its line) | `lift.rs` |
//! | `canon_lower`, `canon_subtask_cancel`, `Task.request_cancellation` | `canon/lower.rs`, `canon/subtask.rs` |
//! | `Store.tick`, `Store.invoke` and who a blocked thread returns to | `sched.rs` (the private scheduler) and `store.rs` |
//! | every other `canon_*` built-in | `canon/`, one [`Running`] method each |
//!
//! `sched.rs` owns the resumer stack, the pending control transfer and the
//! running thread: no built-in touches them but through its handful of
//! operations, so every control transfer is in that one file.
//!
//! What the design keeps, on purpose:
//!
//! - the core never runs guest code and never sees values: it says what to
//!   run ([`Action`]) and what to move ([`Transfer`]), the embedder does it;
//! - spec names for spec things, and the `definitions.py` function a piece
//!   of code implements cited in its docs;
//! - one [`Trap`] variant per `trap_if`, whose message is the reference
//!   suite's text;
//! - every nondeterministic choice the spec allows goes through a
//!   [`Chooser`] ([`Deterministic`], [`Seeded`], and [`Replay`], which
//!   reruns one schedule exactly from its replay string);
//! - where the reference suite and `definitions.py` disagree, a
//!   [`Reading`] chooses, and `spec-tests/DIFFERENCES.md` lists each case;
//! - the live-task count goes up in one place (`new_task`) and down in one
//!   (`task_exited`);
//! - the `check` feature verifies the store's invariants after every step
//!   and built-in; the schedule explorer (`explore`) runs small programs
//!   under every schedule; the fuzz targets drive random operation programs
//!   (`ops`) and components through it.
//!
//! ## Features
//!
//! - `std` (default): `std` support (the core is `no_std` + `alloc` without it).
//! - `test-kit`: the scripted host (`script`: guest code as Rust futures
//!   over a store) and the schedule explorer (`explore`). Off by default,
//!   so that an embedder compiles the scheduler alone.
//! - `check`: the invariant checks (for tests and fuzzing; slow).
//! - `arbitrary`: `arbitrary::Arbitrary` operation programs (`ops`) for
//!   proptest and cargo-fuzz; implies `test-kit`.
//!
//! A [`Store`] is `Send` (a [`Chooser`] is), so a server's worker pool can
//! move it between threads.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod action;
pub mod canon;
#[cfg(feature = "check")]
mod check;
pub mod chooser;
pub mod copy;
mod enter;
mod error;
#[cfg(feature = "test-kit")]
pub mod explore;
mod host;
mod ids;
mod instance;
mod lift;
pub mod live;
#[cfg(feature = "arbitrary")]
pub mod ops;
mod running;
mod sched;
#[cfg(feature = "test-kit")]
pub mod script;
mod set_events;
mod store;
mod subtask;
mod table;
mod task;
mod thread;
mod trap;
mod wait_queue;
mod waitable;

pub use action::{Action, ResumeValue};
pub use canon::{
    CopyOutcome, GuestBuf, HostCopy, HostCopyDone, HostEnd, LowerCallee, ResourceDrop,
    ThreadSwitch, Transfer, TransferEnd, SYNC_CALL_FUNC,
};
pub use chooser::{ChoicePoint, Chooser, Deterministic, Replay, Seeded};
pub use copy::{CopyResult, CopyState, ElemClass, ElemType, EndKind};
pub use error::{EmbedderError, Error};
pub use host::Host;
pub use ids::{
    ErrorContextId, InstanceId, ResourceTypeId, SetId, SharedId, SubtaskId, TaskId, ThreadId,
    WaitableId,
};
pub use running::Running;
pub use store::{Reading, ResultDelivery, Step, Store, BLOCKED};
pub use subtask::SubtaskState;
pub use table::MAX_LENGTH;
pub use task::{Caller, LiftKind, Lifted, TaskState};
pub use trap::Trap;
pub use waitable::{Event, EventCode};

/// The README's code blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
/// The per-object sizes behind path 7 of the benchmarks (heap bytes per
/// pending callback task: its task, implicit thread, subtask waitable,
/// waitable set, two handle slots and waiting-queue slot).
#[cfg(test)]
mod layout_tests {
    use core::mem::size_of;

    #[test]
    fn objects_of_a_pending_task_stay_small() {
        assert_eq!(size_of::<crate::task::Task>(), 40);
        assert_eq!(size_of::<crate::thread::Thread>(), 56);
        assert_eq!(size_of::<crate::waitable::Waitable>(), 44);
        assert_eq!(size_of::<crate::waitable::WaitableSet>(), 12);
        assert_eq!(size_of::<Option<crate::instance::Handle>>(), 8);
    }
}
