//! One test per trap the issue-2 built-ins (tasks, subtasks, waitable
//! sets, backpressure, callbacks, resources, the driving loop) can raise.
//! Each checks the trap, its message (the reference suite's text where
//! the suite has one), and that the instance is poisoned afterwards.

mod hand;

use canon_async::{
    Action, InstanceId, LowerCallee, Reading, ResultDelivery, Step, Store, SubtaskId, ThreadId,
    Trap,
};
use hand::*;

/// A fresh store with one instance running a stackful export (func 1).
fn running() -> (Store, InstanceId, ThreadId) {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(stackful(inst, 1)).unwrap();
    let (t, _) = expect_start(&mut s, 1);
    (s, inst, t)
}

/// The built-in trapped with `trap`, its message contains `text`, and the
/// instance is poisoned.
#[track_caller]
fn assert_trap<T: std::fmt::Debug, E: Into<canon_async::Error>>(
    s: &Store,
    inst: InstanceId,
    r: Result<T, E>,
    trap: Trap,
    text: &str,
) {
    match r.map_err(Into::into) {
        Err(canon_async::Error::Embedder(e)) => panic!("expected a trap, got {e:?}"),
        Err(canon_async::Error::Trap(t)) => {
            assert_eq!(t, trap);
            assert!(
                t.message().contains(text),
                "{:?} does not contain {text:?}",
                t.message()
            );
        }
        Ok(v) => panic!("expected a trap, got {v:?}"),
    }
    assert!(s.is_poisoned(inst));
    assert_eq!(s.current_thread(), None, "the trapped thread is gone");
}

#[test]
fn unknown_handle_index() {
    let (mut s, inst, _) = running();
    let r = s.running().unwrap().waitable_set_drop(5);
    assert_trap(
        &s,
        inst,
        r,
        Trap::UnknownHandle(5),
        "unknown handle index 5",
    );
}

#[test]
fn stale_handle_index() {
    let (mut s, inst, _) = running();
    let si = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_set_drop(si).unwrap();
    let r = s.running().unwrap().waitable_set_wait(false, si, 0);
    assert_trap(
        &s,
        inst,
        r,
        Trap::UnknownHandle(1),
        "unknown handle index 1",
    );
}

#[test]
fn handle_index_of_the_wrong_kind() {
    let (mut s, inst, _) = running();
    let si = s.running().unwrap().waitable_set_new().unwrap();
    // A set is not a waitable.
    let r = s.running().unwrap().waitable_join(si, si);
    assert_trap(&s, inst, r, Trap::WrongHandleKind(1), "handle index 1");
}

#[test]
fn subtask_drop_of_a_waitable_set() {
    let (mut s, inst, _) = running();
    let si = s.running().unwrap().waitable_set_new().unwrap();
    let r = s.running().unwrap().subtask_drop(si);
    assert_trap(&s, inst, r, Trap::WrongHandleKind(1), "handle index 1");
}

/// A guest subtask of the running thread `t` on a host call left pending:
/// its handle index.
fn pending_host_subtask(s: &mut Store, t: ThreadId) -> (SubtaskId, u32) {
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .unwrap();
    assert_eq!(expect_host_call(s), sub);
    let (state, i) = unpack(expect_resume_i32(s, t));
    assert_eq!(state, 1, "STARTED");
    (sub, i)
}

#[test]
fn sync_subtask_cancel_of_a_waitable_in_a_set() {
    let (mut s, inst, t) = running();
    let (_, i) = pending_host_subtask(&mut s, t);
    let si = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(i, si).unwrap();
    let r = s.running().unwrap().subtask_cancel(false, i);
    assert_trap(
        &s,
        inst,
        r,
        Trap::SyncInWaitableSet,
        "waitable cannot be used synchronously while added to a waitable set",
    );
}

#[test]
fn join_during_a_sync_wait() {
    let (mut s, inst, t) = running();
    let (sub, i) = pending_host_subtask(&mut s, t);
    // A sync cancel the host ignores: the thread waits synchronously.
    assert_eq!(
        s.running().unwrap().subtask_cancel(false, i),
        Ok(Step::Suspend)
    );
    assert_eq!(s.next_action(), Action::HostCancel { subtask: sub });
    expect_idle(&mut s);
    // Another task of the same instance joins that waitable to a set.
    s.invoke(stackful(inst, 2)).unwrap();
    expect_start(&mut s, 2);
    let si = s.running().unwrap().waitable_set_new().unwrap();
    let r = s.running().unwrap().waitable_join(i, si);
    assert_trap(
        &s,
        inst,
        r,
        Trap::JoinWithSyncWaiter,
        "waitable cannot be used synchronously while added to a waitable set",
    );
}

#[test]
fn drop_waitable_set_with_members() {
    let (mut s, inst, t) = running();
    let (_, i) = pending_host_subtask(&mut s, t);
    let si = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(i, si).unwrap();
    let r = s.running().unwrap().waitable_set_drop(si);
    assert_trap(&s, inst, r, Trap::SetNotEmpty, "cannot drop waitable set");
}

#[test]
fn drop_waitable_set_with_waiters() {
    let (mut s, inst, _) = running();
    let si = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(false, si, 0),
        Ok(Step::Suspend)
    );
    expect_idle(&mut s);
    s.invoke(stackful(inst, 2)).unwrap();
    expect_start(&mut s, 2);
    let r = s.running().unwrap().waitable_set_drop(si);
    assert_trap(
        &s,
        inst,
        r,
        Trap::SetHasWaiters,
        "cannot drop waitable set with waiters",
    );
}

#[test]
fn backpressure_overflow_at_2_pow_16() {
    let (mut s, inst, _) = running();
    for _ in 0..(1 << 16) - 1 {
        s.running().unwrap().backpressure_inc().unwrap();
    }
    assert!(!s.is_poisoned(inst));
    let r = s.running().unwrap().backpressure_inc();
    assert_trap(&s, inst, r, Trap::BackpressureOverflow, "backpressure");
}

#[test]
fn backpressure_underflow() {
    let (mut s, inst, _) = running();
    s.running().unwrap().backpressure_inc().unwrap();
    s.running().unwrap().backpressure_dec().unwrap();
    let r = s.running().unwrap().backpressure_dec();
    assert_trap(&s, inst, r, Trap::BackpressureUnderflow, "backpressure");
}

#[test]
fn unsupported_callback_code() {
    for packed in [3, 4, 15, 3 | (1 << 4)] {
        let mut s = Store::new();
        let inst = s.new_instance();
        s.invoke(callback(inst, 1)).unwrap();
        expect_start(&mut s, 1);
        let r = s.callback_returned(packed);
        let code = packed & 0xf;
        assert_trap(
            &s,
            inst,
            r,
            Trap::UnsupportedCallbackCode(code),
            "unsupported callback code",
        );
    }
}

#[test]
fn callback_wait_on_a_non_set() {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(callback(inst, 1)).unwrap();
    let (t, _) = expect_start(&mut s, 1);
    let (_, i) = pending_host_subtask(&mut s, t);
    let r = s.callback_returned(2 | (i << 4));
    assert_trap(
        &s,
        inst,
        r,
        Trap::WrongHandleKind(i),
        "used with the wrong type",
    );
}

#[test]
fn callback_wait_on_an_unknown_index() {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(callback(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    let r = s.callback_returned(2 | (7 << 4));
    assert_trap(
        &s,
        inst,
        r,
        Trap::UnknownHandle(7),
        "unknown handle index 7",
    );
}

#[test]
fn task_return_twice() {
    let (mut s, inst, _) = running();
    assert!(matches!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(_))
    ));
    let r = s.running().unwrap().task_return();
    assert_trap(&s, inst, r, Trap::TaskAlreadyResolved, "task.return");
}

#[test]
fn task_return_in_a_sync_lift() {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(sync_lift_async_type(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    let r = s.running().unwrap().task_return();
    assert_trap(&s, inst, r, Trap::TaskNotAsync, "task.return");
}

#[test]
fn task_cancel_before_delivery() {
    let (mut s, inst, _) = running();
    let r = s.running().unwrap().task_cancel();
    assert_trap(&s, inst, r, Trap::TaskCancelNotDelivered, "task.cancel");
}

/// Caller instance `c` owns a resource of a type it defines and lends it
/// to a stackful callee in instance `d` (func 2): the store, the instances,
/// the caller's thread, the callee's thread, the resource type, the
/// caller's handle and the callee's borrow handle. The callee is running.
struct Lent {
    s: Store,
    c: InstanceId,
    d: InstanceId,
    ct: ThreadId,
    rt: canon_async::ResourceTypeId,
    own: u32,
    borrow: u32,
    sub: SubtaskId,
}

fn lend() -> Lent {
    let mut s = Store::new();
    let c = s.new_instance();
    let d = s.new_instance();
    let rt = s.new_resource_type(c);
    s.invoke(stackful(c, 1)).unwrap();
    let (ct, _) = expect_start(&mut s, 1);
    let own = s.running().unwrap().resource_new(rt, 77).unwrap();
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(stackful(d, 2)), true)
        .unwrap();
    let (_, task) = expect_start(&mut s, 2);
    // The embedder lifts the `borrow` argument from the caller and lowers it
    // into the callee.
    let rep = s.lift_borrow(sub, rt, own).unwrap();
    assert_eq!(rep, 77);
    let borrow = s.lower_borrow(task, rt, rep).unwrap();
    Lent {
        s,
        c,
        d,
        ct,
        rt,
        own,
        borrow,
        sub,
    }
}

#[test]
fn task_return_with_borrows_outstanding() {
    let mut l = lend();
    let (s, ct) = (&mut l.s, l.ct);
    // The callee blocks once, so the caller holds the subtask's handle
    // when the callee traps.
    let host = block_on_host(s);
    let (state, _) = unpack(expect_resume_i32(s, ct));
    assert_eq!(state, 1, "STARTED");
    s.host_return(host).unwrap();
    assert_eq!(s.running().unwrap().thread_yield(false), Ok(Step::Suspend));
    let Action::Resume { thread, .. } = s.next_action() else {
        panic!()
    };
    assert_ne!(thread, ct);
    let r = s.running().unwrap().task_return();
    assert_trap(
        &l.s,
        l.d,
        r,
        Trap::BorrowsRemain,
        "borrow handles still remain at the end of the call",
    );
}

#[test]
fn task_return_after_dropping_the_borrow_is_fine() {
    let mut l = lend();
    assert_eq!(
        l.s.running().unwrap().resource_drop(l.rt, l.borrow),
        Ok(None)
    );
    assert_eq!(
        l.s.running().unwrap().task_return(),
        Ok(ResultDelivery::Guest(l.sub))
    );
    assert!(!l.s.is_poisoned(l.d));
}

#[test]
fn task_cancel_with_borrows_outstanding() {
    let mut l = lend();
    let (s, ct) = (&mut l.s, l.ct);
    let si = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, si, 0),
        Ok(Step::Suspend)
    );
    let (_, i) = unpack(expect_resume_i32(s, ct));
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, i),
        Ok(Step::Suspend)
    );
    match s.next_action() {
        Action::Resume { value, .. } => assert_eq!(
            value,
            canon_async::ResumeValue::Event {
                event: cancelled_event(),
                ptr: 0
            }
        ),
        a => panic!("{a:?}"),
    }
    let r = s.running().unwrap().task_cancel();
    assert_trap(
        &l.s,
        l.d,
        r,
        Trap::BorrowsRemain,
        "borrow handles still remain at the end of the call",
    );
}

#[test]
fn resource_drop_while_lent() {
    let mut l = lend();
    let (s, ct) = (&mut l.s, l.ct);
    let _ = block_on_host(s);
    let (state, _) = unpack(expect_resume_i32(s, ct));
    assert_eq!(state, 1, "STARTED");
    let r = s.running().unwrap().resource_drop(l.rt, l.own);
    assert_trap(
        &l.s,
        l.c,
        r,
        Trap::ResourceBorrowed,
        "cannot remove owned resource while borrowed",
    );
}

#[test]
fn resource_drop_of_the_wrong_type() {
    let (mut s, inst, _) = running();
    let rt1 = s.new_resource_type(inst);
    let rt2 = s.new_resource_type(inst);
    let h = s.running().unwrap().resource_new(rt1, 5).unwrap();
    let r = s.running().unwrap().resource_drop(rt2, h);
    assert_trap(
        &s,
        inst,
        r,
        Trap::WrongResourceType(1),
        "handle index 1 used with the wrong type, expected guest-defined resource but found a different guest-defined resource",
    );
}

/// A subtask of the running caller on a callee that blocks on a host call
/// (so a cancel stays pending): (store, caller instance, caller thread,
/// handle index, host subtask).
fn blocked_callee() -> (Store, InstanceId, ThreadId, u32, SubtaskId) {
    let mut s = Store::new();
    let c = s.new_instance();
    let d = s.new_instance();
    s.invoke(stackful(c, 1)).unwrap();
    let (ct, _) = expect_start(&mut s, 1);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(stackful(d, 2)), true)
        .unwrap();
    expect_start(&mut s, 2);
    let host = block_on_host(&mut s);
    let (state, i) = unpack(expect_resume_i32(&mut s, ct));
    assert_eq!(state, 1, "STARTED");
    (s, c, ct, i, host)
}

#[test]
fn subtask_cancel_twice() {
    let (mut s, c, ct, i, _) = blocked_callee();
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, i),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, ct), canon_async::BLOCKED);
    let r = s.running().unwrap().subtask_cancel(true, i);
    assert_trap(&s, c, r, Trap::SubtaskCancelTwice, "cancel");
}

#[test]
fn subtask_cancel_after_resolution_delivered() {
    let (mut s, c, ct, i, host) = blocked_callee();
    s.host_return(host).unwrap();
    let si = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(i, si).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(false, si, 0),
        Ok(Step::Suspend)
    );
    let Action::Resume { thread: dt, .. } = s.next_action() else {
        panic!()
    };
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert!(!s.thread_alive(dt));
    assert_eq!(expect_event(&mut s, ct), subtask_event(i, 2));
    let r = s.running().unwrap().subtask_cancel(true, i);
    assert_trap(&s, c, r, Trap::SubtaskResolveDelivered, "cancel");
}

#[test]
fn subtask_drop_before_resolution() {
    let (mut s, c, _, i, _) = blocked_callee();
    let r = s.running().unwrap().subtask_drop(i);
    assert_trap(
        &s,
        c,
        r,
        Trap::SubtaskNotResolved,
        "cannot drop a subtask which has not yet resolved",
    );
}

#[test]
fn subtask_drop_after_resolution_not_yet_delivered() {
    // Resolved, but the event was not delivered: still a trap.
    let (mut s, c, ct, i, host) = blocked_callee();
    s.host_return(host).unwrap();
    assert_eq!(s.running().unwrap().thread_yield(false), Ok(Step::Suspend));
    let Action::Resume { .. } = s.next_action() else {
        panic!()
    };
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, ct), 0);
    let r = s.running().unwrap().subtask_drop(i);
    assert_trap(
        &s,
        c,
        r,
        Trap::SubtaskNotResolved,
        "cannot drop a subtask which has not yet resolved",
    );
}

#[test]
fn built_ins_when_may_leave_is_false() {
    type Call = fn(&mut Store) -> Result<(), Trap>;
    let calls: [(&str, Call); 9] = [
        ("task.return", |s| {
            s.running().unwrap().task_return().map(drop)
        }),
        ("task.cancel", |s| s.running().unwrap().task_cancel()),
        ("waitable-set.new", |s| {
            s.running().unwrap().waitable_set_new().map(drop)
        }),
        ("waitable-set.wait", |s| {
            s.running()
                .unwrap()
                .waitable_set_wait(false, 1, 0)
                .map(drop)
        }),
        ("waitable-set.poll", |s| {
            s.running().unwrap().waitable_set_poll(false, 1).map(drop)
        }),
        ("waitable-set.drop", |s| {
            s.running().unwrap().waitable_set_drop(1)
        }),
        ("waitable.join", |s| {
            s.running().unwrap().waitable_join(1, 0)
        }),
        ("subtask.drop", |s| s.running().unwrap().subtask_drop(1)),
        ("canon lower", |s| {
            s.running()
                .unwrap()
                .canon_lower(LowerCallee::Host, false)
                .map(drop)
        }),
    ];
    for (name, call) in calls {
        let (mut s, inst, _) = running();
        s.set_may_leave(false);
        // Not guarded: context.get/set and backpressure.inc/dec.
        s.running().unwrap().context_set(0, 1).unwrap();
        assert_eq!(s.running().unwrap().context_get(0), Ok(1));
        s.running().unwrap().backpressure_inc().unwrap();
        s.running().unwrap().backpressure_dec().unwrap();
        let r = call(&mut s);
        assert!(
            matches!(r, Err(Trap::CannotLeave)),
            "{name}: expected CannotLeave, got {r:?}"
        );
        assert_trap(
            &s,
            inst,
            r,
            Trap::CannotLeave,
            "cannot leave component instance",
        );
    }
}

/// The suite's reading (default): the blocking built-in itself traps.
#[test]
fn sync_typed_export_that_would_block_traps_eagerly() {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(sync_typed(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    let si = s.running().unwrap().waitable_set_new().unwrap();
    let r = s.running().unwrap().waitable_set_wait(false, si, 0);
    assert_trap(
        &s,
        inst,
        r,
        Trap::CannotBlockSync,
        "cannot block a synchronous task before returning",
    );
    assert_eq!(s.live_tasks(), 0);
}

/// The suite's reading: a synchronous lower of an async-typed callee traps
/// before the callee starts.
#[test]
fn sync_typed_export_calling_an_async_callee_traps_eagerly() {
    let mut s = Store::new();
    let inst = s.new_instance();
    let other = s.new_instance();
    s.invoke(sync_typed(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    let r = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(stackful(other, 2)), false);
    assert_trap(
        &s,
        inst,
        r,
        Trap::CannotBlockSync,
        "cannot block a synchronous task before returning",
    );
    assert_eq!(s.live_tasks(), 0);
    assert!(!s.is_poisoned(other));
}

/// definitions.py's reading: the task blocks, and traps when no other
/// thread of its instance can run.
#[test]
fn sync_typed_export_that_would_block() {
    let mut s = Store::new();
    s.set_reading(Reading::Definitions);
    let inst = s.new_instance();
    s.invoke(sync_typed(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    let si = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(false, si, 0),
        Ok(Step::Suspend)
    );
    let t = expect_trap(&mut s);
    assert_eq!(t, Trap::CannotBlockSync);
    assert!(t
        .message()
        .contains("cannot block a synchronous task before returning"));
    assert!(s.is_poisoned(inst));
    assert_eq!(s.live_tasks(), 0);
}

#[test]
fn sync_typed_export_calling_an_async_callee_that_blocks() {
    let mut s = Store::new();
    s.set_reading(Reading::Definitions);
    let inst = s.new_instance();
    let other = s.new_instance();
    s.invoke(sync_typed(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(stackful(other, 2)), false)
        .unwrap();
    expect_start(&mut s, 2);
    let _ = block_on_host(&mut s);
    let t = expect_trap(&mut s);
    assert!(t
        .message()
        .contains("cannot block a synchronous task before returning"));
    assert!(s.is_poisoned(inst));
}

#[test]
fn poisoned_instance_cannot_be_entered_while_others_go_on() {
    let mut s = Store::new();
    let bad = s.new_instance();
    let good = s.new_instance();
    // A task of `good` is parked on a host call when `bad` traps.
    let good_task = s.invoke(stackful(good, 1)).unwrap();
    let (gt, _) = expect_start(&mut s, 1);
    let host = block_on_host(&mut s);
    expect_idle(&mut s);
    s.invoke(stackful(bad, 2)).unwrap();
    expect_start(&mut s, 2);
    assert!(s.running().unwrap().backpressure_dec().is_err());
    assert!(s.is_poisoned(bad));
    assert!(!s.is_poisoned(good));
    // Entering `bad` again traps, from the host and from a guest.
    let e = s.invoke(stackful(bad, 3)).unwrap_err();
    assert_eq!(e, Trap::CannotEnter.into());
    assert!(e.to_string().contains("cannot enter component instance"));
    s.host_return(host).unwrap();
    expect_returned(&mut s, gt, host);
    let r = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(stackful(bad, 3)), true);
    assert_trap(
        &s,
        good,
        r,
        Trap::CannotEnter,
        "cannot enter component instance",
    );
    // ... which poisons the caller too; a third instance still works.
    let third = s.new_instance();
    let t = s.invoke(stackful(third, 4)).unwrap();
    expect_start(&mut s, 4);
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(t))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.task_state(good_task), None);
    assert_eq!(s.live_tasks(), 0);
}

#[test]
fn poisoned_instance_other_instance_keeps_running() {
    let mut s = Store::new();
    let bad = s.new_instance();
    let good = s.new_instance();
    let good_task = s.invoke(stackful(good, 1)).unwrap();
    let (gt, _) = expect_start(&mut s, 1);
    let host = block_on_host(&mut s);
    expect_idle(&mut s);
    s.invoke(stackful(bad, 2)).unwrap();
    expect_start(&mut s, 2);
    assert!(s.running().unwrap().task_cancel().is_err());
    // The parked task of `good` resumes and finishes.
    s.host_return(host).unwrap();
    expect_returned(&mut s, gt, host);
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(good_task))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert!(!s.is_poisoned(good));
    assert_eq!(s.live_tasks(), 0);
    assert_eq!(s.invoke(stackful(bad, 2)), Err(Trap::CannotEnter.into()));
}
#[test]
fn last_thread_exits_an_unresolved_task() {
    let (mut s, inst, _) = running();
    let r = s.exit_thread();
    assert_trap(&s, inst, r, Trap::TaskNotResolved, "task");
    assert_eq!(s.live_tasks(), 0);
}

#[test]
fn callback_exits_an_unresolved_task() {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(callback(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    let r = s.callback_returned(0);
    assert_trap(&s, inst, r, Trap::TaskNotResolved, "task");
}
