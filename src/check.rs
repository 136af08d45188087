//! The checking mode (cargo feature `check`): the store's invariants,
//! verified after every step of [`Store::next_action`] and after every
//! built-in (at the end of `Store::guard`).
//!
//! A violation panics with the invariant's name and the replay string of
//! the schedule so far (every choice the store asked its chooser for, as
//! [`Replay`](crate::Replay) would print it), so that a failing schedule
//! can be rerun with `explore::replay` (the `test-kit` feature).
//!
//! Without the feature nothing here is compiled and the store keeps no trace.
//!
//! The invariants:
//!
//! - `live-count`: the live-task count equals the number of tasks not yet
//!   exited, store-wide and per instance;
//! - `set-membership`: every waitable is in at most one set, the set's
//!   members and each member's set agree, and a set's pending count equals
//!   its members with a pending event;
//! - `set-waiters`: a set's waiter count equals the threads blocked on it
//!   (in instances that are not poisoned; a thread just taken by a
//!   `*-then-promote` still counts until it resumes);
//! - `thread-state`: a thread waits iff it is in the waiting list (once);
//!   a running thread is the current one or a caller parked in a frame;
//! - `exclusive`: at most one exclusive holder per instance, a live thread
//!   of that instance;
//! - `copy-state`: a copying end has a buffer, an idle or done one none; the
//!   pending side of a stream or future is one of its copying ends; the
//!   count of ends covers the end waitables;
//! - `tables`: every waitable's `index` names it in its instance's handle
//!   table and every handle names an object that exists; same for threads
//!   and the thread tables; a task's threads name it;
//! - `sync-waiter`: a waitable with a synchronous waiter is in no set and a
//!   thread waits for it (or was just taken by a `*-then-promote` from
//!   waiting for it);
//! - `may-enter`: an instance is non-enterable iff it is in the entering
//!   set of an entry not yet left, and every entry's frame is on the stack;
//! - `quiescent-leak`: when every task has exited and no frame is on the
//!   stack, no thread is left, every waitable (subtask or end) is reached by
//!   a handle, and every stream or future state has an end a handle reaches
//!   or is held by the host.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::copy::{CopyState, Party};
use crate::ids::*;
use crate::instance::Handle;
use crate::lift::LiftPhase;
use crate::sched::{Control, Frame};
use crate::store::Store;
use crate::thread::{Blocked, Resume, ThreadState};
use crate::waitable::WaitableKind;

impl Store {
    /// The replay string of the choices made so far (`"0.2.1"`).
    pub(crate) fn check_replay_string(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.check_trace.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(&format!("{c}"));
        }
        s
    }

    /// Turns the invariant checks and the choice trace on (the default
    /// with the `check` feature) or off for this store: benchmarks built
    /// with the feature (it is on for every dev target) measure without them.
    pub fn set_invariant_checks(&mut self, on: bool) {
        self.checking = on;
    }

    /// Verifies every invariant; panics on the first violation.
    #[inline]
    pub(crate) fn check_invariants(&self) {
        if self.checking {
            self.check_invariants_now();
        }
    }

    #[inline(never)]
    fn check_invariants_now(&self) {
        if let Err((name, detail)) = self.invariants() {
            panic!(
                "canon-async invariant `{name}` violated: {detail} (replay schedule: \"{}\")",
                self.check_replay_string()
            );
        }
    }

    fn invariants(&self) -> Result<(), (&'static str, String)> {
        macro_rules! ensure {
            ($cond:expr, $name:literal, $($fmt:tt)*) => {
                if !$cond {
                    return Err(($name, format!($($fmt)*)));
                }
            };
        }

        // ----- live-count -----
        ensure!(
            self.live_tasks() == self.tasks.len(),
            "live-count",
            "store-wide count {} but {} tasks exist",
            self.live_tasks(),
            self.tasks.len()
        );
        for (k, tk) in self.tasks.iter() {
            ensure!(
                self.instances.contains(tk.inst().key()),
                "live-count",
                "task {k} of a missing instance"
            );
        }
        for (ik, inst) in self.instances.iter() {
            let n = self
                .tasks
                .iter()
                .filter(|(_, t)| t.inst().key() == ik)
                .count();
            ensure!(
                inst.live_tasks == n,
                "live-count",
                "instance {ik} counts {} live tasks but has {n}",
                inst.live_tasks
            );
        }

        // ----- set-membership -----
        for (wk, w) in self.waitables.iter() {
            ensure!(
                self.instances.contains(w.inst.key()),
                "tables",
                "waitable {wk} of a missing instance"
            );
            if let Some(s) = w.wset() {
                ensure!(
                    self.sets.contains(s.key()),
                    "set-membership",
                    "waitable {wk} in a freed set"
                );
            }
        }
        // Per set: its members (the waitables that name it) and those of
        // them with a pending event, in join order.
        let mut members: Vec<(u32, Vec<(u64, WaitableId)>)> = Vec::new();
        for (wk, w) in self.waitables.iter() {
            if let Some(s) = w.wset() {
                if members.len() <= s.key() {
                    members.resize_with(s.key() + 1, Default::default);
                }
                let m = &mut members[s.key()];
                m.0 += 1;
                if w.pending.is_some() {
                    let wid = WaitableId::from_key(wk);
                    m.1.push((self.set_events.joined_seq(wid), wid));
                }
            }
        }
        for (sk, set) in self.sets.iter() {
            let (n, mut pending) = members.get(sk).cloned().unwrap_or_default();
            pending.sort_unstable();
            ensure!(
                set.num_members == n,
                "set-membership",
                "set {sk} counts {} members but {n} waitables name it",
                set.num_members
            );
            ensure!(
                set.num_pending as usize == pending.len(),
                "set-membership",
                "set {sk} counts {} pending members but has {}",
                set.num_pending,
                pending.len()
            );
            ensure!(
                self.set_events.pending_of(SetId::from_key(sk)) == pending.as_slice(),
                "set-membership",
                "set {sk}'s members with an event are not those in join order: {:?} != {pending:?}",
                self.set_events.pending_of(SetId::from_key(sk))
            );
            // Every set is reached by exactly one handle.
            let handles = self
                .instances
                .iter()
                .flat_map(|(_, i)| i.handles.iter())
                .filter(|(_, h)| matches!(h, Handle::Set(x) if x.key() == sk))
                .count();
            ensure!(
                handles == 1,
                "tables",
                "set {sk} is reached by {handles} handles"
            );
        }

        // A thread taken by `thread.suspend-then-promote` / `yield-then-promote`
        // (`stop_waiting_internal`) is no longer waiting but is still blocked
        // in its built-in until the switch that is now pending resumes it:
        // it is still the waiter of its set or waitable.
        let promoted = match *self.sched.control() {
            Control::Resume { thread: t, .. } => self
                .threads
                .get(t.key())
                .filter(|th| th.state == ThreadState::Suspended)
                .map(|_| t),
            _ => None,
        };
        let blocked_in = |k: usize, state: ThreadState| {
            matches!(state, ThreadState::Waiting(_)) || promoted.is_some_and(|p| p.key() == k)
        };

        // ----- set-waiters -----
        for (ik, inst) in self.instances.iter() {
            if inst.poisoned {
                continue;
            }
            for (_, h) in inst.handles.iter() {
                let Handle::Set(s) = h else { continue };
                let blocked = self
                    .threads
                    .iter()
                    .filter(|(k, t)| match t.resume {
                        Resume::Wasm(Blocked::Wait { set, .. })
                        | Resume::Lift(LiftPhase::CallbackWait(set)) => {
                            set == *s && blocked_in(*k, t.state)
                        }
                        _ => false,
                    })
                    .count() as u32;
                ensure!(
                    self.sets[s.key()].num_waiting == blocked,
                    "set-waiters",
                    "set {} of instance {ik} counts {} waiters but {blocked} threads wait on it",
                    s.0,
                    self.sets[s.key()].num_waiting
                );
            }
        }

        // ----- thread-state -----
        let mut frame_callers: Vec<ThreadId> = Vec::new();
        for f in self.sched.frames() {
            match *f {
                Frame::Lower { caller, .. } | Frame::Cancel { caller, .. } => {
                    frame_callers.push(caller)
                }
                // The thread a synchronous call (realloc, a start function)
                // interrupted runs again when the call ends.
                Frame::SyncCall { prev, .. } => frame_callers.extend(prev),
                _ => {}
            }
        }
        // A thread whose next action is already decided (a callback's early
        // event) runs as soon as the embedder asks.
        if let Control::Emit { .. } = self.sched.control() {
            frame_callers.extend(self.sched.emitted().and_then(|a| a.thread()));
        }
        if let Some(c) = self.sched.current() {
            let Some(th) = self.threads.get(c.key()) else {
                return Err(("thread-state", format!("current thread {} is gone", c.0)));
            };
            ensure!(
                th.state == ThreadState::Running,
                "thread-state",
                "current thread {} is {:?}",
                c.0,
                th.state
            );
        }
        for (tk, th) in self.threads.iter() {
            let t = ThreadId::from_key(tk);
            let listed = self.waiting.contains(t) as usize;
            match th.state {
                ThreadState::Waiting(_) => ensure!(
                    listed == 1,
                    "thread-state",
                    "waiting thread {tk} is listed {listed} times"
                ),
                ThreadState::Running => {
                    ensure!(
                        listed == 0,
                        "thread-state",
                        "thread {tk} is both running and waiting"
                    );
                    ensure!(
                        self.sched.current() == Some(t) || frame_callers.contains(&t),
                        "thread-state",
                        "thread {tk} is running but neither current nor a parked caller"
                    );
                }
                ThreadState::Suspended => ensure!(
                    listed == 0,
                    "thread-state",
                    "suspended thread {tk} is in the waiting list"
                ),
            }
            ensure!(
                self.instances.contains(th.inst.key()),
                "tables",
                "thread {tk} of a missing instance"
            );
            let Some(task) = self.tasks.get(th.task.key()) else {
                return Err(("tables", format!("thread {tk} of an exited task")));
            };
            ensure!(
                task.inst() == th.inst,
                "tables",
                "thread {tk} runs in another instance than its task"
            );
            if th.index != 0 {
                ensure!(
                    task.has_thread(t),
                    "tables",
                    "registered thread {tk} is not among its task's threads"
                );
                ensure!(
                    self.inst(th.inst).threads.get(th.index).ok() == Some(&t),
                    "tables",
                    "thread {tk} has index {} that names another thread",
                    th.index
                );
            }
        }
        for t in self.waiting.all() {
            ensure!(
                self.threads
                    .get(t.key())
                    .is_some_and(|th| matches!(th.state, ThreadState::Waiting(_))),
                "thread-state",
                "thread {} is in the waiting list but does not wait",
                t.0
            );
        }
        for (k, tk) in self.tasks.iter() {
            for t in tk.threads() {
                ensure!(
                    self.threads
                        .get(t.key())
                        .is_some_and(|th| th.task.key() == k),
                    "tables",
                    "task {k} lists thread {} which is not its own",
                    t.0
                );
            }
        }

        // ----- exclusive -----
        for (ik, inst) in self.instances.iter() {
            if let Some(t) = inst.exclusive_thread {
                ensure!(
                    self.threads
                        .get(t.key())
                        .is_some_and(|th| th.inst.key() == ik),
                    "exclusive",
                    "instance {ik}'s exclusive holder {} is not a live thread of it",
                    t.0
                );
            }
            // Thread and handle tables name live objects of this instance.
            for (i, &t) in inst.threads.iter() {
                ensure!(
                    self.threads
                        .get(t.key())
                        .is_some_and(|th| th.index == i && th.inst.key() == ik),
                    "tables",
                    "thread table {ik}[{i}] names thread {} which does not name it back",
                    t.0
                );
            }
            for (i, h) in inst.handles.iter() {
                match h {
                    Handle::Waitable(w) => ensure!(
                        self.waitables
                            .get(w.key())
                            .is_some_and(|x| x.index == i && x.inst.key() == ik),
                        "tables",
                        "handle {ik}[{i}] names waitable {} which does not name it back",
                        w.0
                    ),
                    Handle::Set(s) => ensure!(
                        self.sets.contains(s.key()),
                        "tables",
                        "handle {ik}[{i}] names a freed set"
                    ),
                    Handle::ErrorContext(e) => ensure!(
                        self.error_contexts.contains(e.key()),
                        "tables",
                        "handle {ik}[{i}] names a freed error-context"
                    ),
                    Handle::Resource(_) => {}
                }
            }
        }

        // ----- waitables: tables, copy-state, sync-waiter -----
        for (wk, w) in self.waitables.iter() {
            if w.index != 0 {
                let named = self.inst(w.inst).handles.get(w.index).ok();
                ensure!(
                    matches!(named, Some(Handle::Waitable(x)) if x.key() == wk),
                    "tables",
                    "waitable {wk} has index {} that names something else",
                    w.index
                );
            }
            if w.has_sync_waiter {
                ensure!(
                    w.wset().is_none(),
                    "sync-waiter",
                    "waitable {wk} has a sync waiter and is in a set"
                );
                let waiter = self.threads.iter().any(|(k, t)| {
                    matches!(t.state, ThreadState::Waiting(crate::thread::WaitCond::PendingEvent(x)) if x.key() == wk)
                        || (promoted.is_some_and(|p| p.key() == k)
                            && matches!(t.resume, Resume::Wasm(Blocked::SyncEvent { waitable }) if waitable.key() == wk))
                });
                ensure!(
                    waiter || self.inst(w.inst).poisoned,
                    "sync-waiter",
                    "waitable {wk} has a sync waiter flag but no thread waits for it"
                );
            }
            if let WaitableKind::End(e) = &w.kind {
                let copying = matches!(e.state, CopyState::Copying | CopyState::CancellingCopy);
                ensure!(
                    copying == e.buffer.is_some(),
                    "copy-state",
                    "end {wk} is {:?} with buffer {:?}",
                    e.state,
                    e.buffer
                );
                if let Some(b) = e.buffer {
                    ensure!(
                        b.progress <= b.length,
                        "copy-state",
                        "end {wk} progressed {} past its length {}",
                        b.progress,
                        b.length
                    );
                }
                ensure!(
                    self.shared.contains(e.shared.key()),
                    "copy-state",
                    "end {wk} of a freed stream or future"
                );
            }
        }
        for (sk, sh) in self.shared.iter() {
            let ends = self
                .waitables
                .iter()
                .filter(|(_, w)| matches!(&w.kind, WaitableKind::End(e) if e.shared.key() == sk))
                .count() as u32;
            ensure!(
                sh.ends >= ends && sh.ends > 0,
                "copy-state",
                "stream/future {sk} counts {} ends but has {ends} end waitables",
                sh.ends
            );
            if let Some(p) = sh.pending {
                let ok = match p.end {
                    Party::Guest(end) => self.waitables.get(end.key()).is_some_and(|w| {
                        p.inst == Some(w.inst)
                            && matches!(&w.kind, WaitableKind::End(e)
                                if e.shared.key() == sk
                                    && matches!(e.state, CopyState::Copying | CopyState::CancellingCopy))
                    }),
                    Party::Host => sh.host.as_ref().is_some_and(|h| {
                        matches!(h.state, CopyState::Copying | CopyState::CancellingCopy)
                    }),
                };
                ensure!(
                    ok,
                    "copy-state",
                    "stream/future {sk}'s pending side {:?} is not one of its copying ends",
                    p.end
                );
            }
            if let Some(h) = &sh.host {
                let copying = matches!(h.state, CopyState::Copying | CopyState::CancellingCopy);
                ensure!(
                    copying == h.buffer.is_some(),
                    "copy-state",
                    "host end of {sk} is {:?} with buffer {:?}",
                    h.state,
                    h.buffer
                );
            }
        }

        // ----- may-enter -----
        let mut depth = 0;
        for e in &self.entered {
            ensure!(
                e.depth > depth && e.depth <= self.sched.depth(),
                "may-enter",
                "entry {e:?} is not on the stack of {} frames",
                self.sched.depth()
            );
            depth = e.depth;
        }
        for (ik, inst) in self.instances.iter() {
            let on_chain = self.entered.iter().any(|e| {
                self.entering_set(e.callee, e.caller)
                    .iter()
                    .any(|i| i.key() == ik)
            });
            ensure!(
                inst.may_enter != on_chain,
                "may-enter",
                "instance {ik} has may_enter {} but is {}on the call chain",
                inst.may_enter,
                if on_chain { "" } else { "not " }
            );
        }

        // ----- quiescent-leak -----
        if self.tasks.is_empty() && self.sched.at_boundary() {
            ensure!(
                self.threads.is_empty(),
                "quiescent-leak",
                "{} threads left with no task",
                self.threads.len()
            );
            ensure!(
                self.waiting.is_empty(),
                "quiescent-leak",
                "waiting list not empty"
            );
            for (wk, w) in self.waitables.iter() {
                ensure!(
                    w.index != 0,
                    "quiescent-leak",
                    "waitable {wk} ({}) is reached by no handle",
                    match w.kind {
                        WaitableKind::Subtask(_) => "a subtask in flight",
                        WaitableKind::End(_) => "a stream or future end",
                    }
                );
            }
            for (sk, sh) in self.shared.iter() {
                let reached = sh.host.is_some()
                    || self.waitables.iter().any(
                        |(_, w)| matches!(&w.kind, WaitableKind::End(e) if e.shared.key() == sk),
                    );
                ensure!(
                    reached,
                    "quiescent-leak",
                    "stream/future {sk} has no end a handle reaches"
                );
            }
        }
        Ok(())
    }
}
