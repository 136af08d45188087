//! A tiny hand-driven embedder for scenario tests: the test plays the
//! guest code step by step, and these helpers check that the store asks
//! for exactly the next step the scenario expects.
#![allow(dead_code)]

use canon_async::{
    Action, Event, EventCode, InstanceId, LiftKind, Lifted, LowerCallee, ResumeValue, Store,
    SubtaskId, TaskId, ThreadId, Trap,
};

/// An async-typed, stackful (🚟) export.
pub fn stackful(inst: InstanceId, func: u32) -> Lifted {
    Lifted {
        inst,
        func,
        kind: LiftKind::AsyncStackful,
        async_type: true,
    }
}

/// An async-typed export lifted with a callback.
pub fn callback(inst: InstanceId, func: u32) -> Lifted {
    Lifted {
        inst,
        func,
        kind: LiftKind::AsyncCallback,
        async_type: true,
    }
}

/// An async-typed export lifted without `async` (a sync lift).
pub fn sync_lift_async_type(inst: InstanceId, func: u32) -> Lifted {
    Lifted {
        inst,
        func,
        kind: LiftKind::Sync,
        async_type: true,
    }
}

/// A sync-typed export (no `async` in the type, no `async` option).
pub fn sync_typed(inst: InstanceId, func: u32) -> Lifted {
    Lifted {
        inst,
        func,
        kind: LiftKind::Sync,
        async_type: false,
    }
}

/// The next action must start `func`: its thread and task.
#[track_caller]
pub fn expect_start(s: &mut Store, func: u32) -> (ThreadId, TaskId) {
    match s.next_action() {
        Action::Start {
            thread,
            task,
            func: f,
        } if f == func => (thread, task),
        a => panic!("expected Start of func {func}, got {a:?}"),
    }
}

/// The next action must resume `thread`: the value it resumes with.
#[track_caller]
pub fn expect_resume(s: &mut Store, thread: ThreadId) -> ResumeValue {
    match s.next_action() {
        Action::Resume { thread: t, value } if t == thread => value,
        a => panic!("expected Resume of {thread:?}, got {a:?}"),
    }
}

/// The next action must resume `thread` with a plain i32.
#[track_caller]
pub fn expect_resume_i32(s: &mut Store, thread: ThreadId) -> u32 {
    match expect_resume(s, thread) {
        ResumeValue::I32(v) => v,
        v => panic!("expected an i32 resume value, got {v:?}"),
    }
}

/// The next action must resume `thread` out of `waitable-set.wait`.
#[track_caller]
pub fn expect_event(s: &mut Store, thread: ThreadId) -> Event {
    match expect_resume(s, thread) {
        ResumeValue::Event { event, .. } => event,
        v => panic!("expected an event, got {v:?}"),
    }
}

/// The next action must resume `thread` from a sync lower of `sub`.
#[track_caller]
pub fn expect_returned(s: &mut Store, thread: ThreadId, sub: SubtaskId) {
    assert_eq!(expect_resume(s, thread), ResumeValue::Returned(sub));
}

/// The next action must call the callback of `thread`'s task: the event.
#[track_caller]
pub fn expect_callback(s: &mut Store, thread: ThreadId) -> Event {
    match s.next_action() {
        Action::Callback {
            thread: t, event, ..
        } if t == thread => event,
        a => panic!("expected Callback on {thread:?}, got {a:?}"),
    }
}

/// The next action must be a host call: its subtask.
#[track_caller]
pub fn expect_host_call(s: &mut Store) -> SubtaskId {
    match s.next_action() {
        Action::HostCall { subtask } => subtask,
        a => panic!("expected HostCall, got {a:?}"),
    }
}

/// The next action must be `Idle`.
#[track_caller]
pub fn expect_idle(s: &mut Store) {
    assert_eq!(s.next_action(), Action::Idle);
}

/// The next action must be a trap: it.
#[track_caller]
pub fn expect_trap(s: &mut Store) -> Trap {
    match s.next_action() {
        Action::Trap(t) => t,
        a => panic!("expected Trap, got {a:?}"),
    }
}

/// The running guest calls a host import synchronously and parks until the
/// host completes it (the reference tests' `wait_until(fut.is_set)`): the
/// subtask the host resolves with [`Store::host_return`] to "set the future".
#[track_caller]
pub fn block_on_host(s: &mut Store) -> SubtaskId {
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Host, false)
        .unwrap();
    assert_eq!(expect_host_call(s), sub);
    sub
}

/// The running guest calls `callee` asynchronously when the callee will not
/// start running guest code first (a host callee that answers later is not
/// this: it emits a host call first; a guest callee held by backpressure is):
/// the packed return value.
#[track_caller]
pub fn lower_async(s: &mut Store, callee: LowerCallee) -> u32 {
    let t = s.current_thread().expect("a running thread");
    s.running().unwrap().canon_lower(callee, true).unwrap();
    expect_resume_i32(s, t)
}

/// `(state, index)` of a packed async-lower result.
pub fn unpack(ret: u32) -> (u32, u32) {
    (ret & 0xf, ret >> 4)
}

/// A SUBTASK event.
pub fn subtask_event(index: u32, state: u32) -> Event {
    Event {
        code: EventCode::Subtask,
        index,
        payload: state,
    }
}

/// The NONE event.
pub fn none_event() -> Event {
    Event {
        code: EventCode::None,
        index: 0,
        payload: 0,
    }
}

/// The TASK_CANCELLED event.
pub fn cancelled_event() -> Event {
    Event {
        code: EventCode::TaskCancelled,
        index: 0,
        payload: 0,
    }
}
