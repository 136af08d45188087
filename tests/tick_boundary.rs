//! `Store::next_action_in_tick`: a host call can return once its result is
//! delivered and the tick it came in has finished, leaving the work its
//! callee left behind for later ticks; and the core's trap texts carry no
//! "wasm trap: " prefix of their own (the embedder prints one).

mod hand;

use canon_async::{Action, ResultDelivery, Step, Store, Trap};
use hand::*;

#[test]
fn returns_at_the_boundary_and_keeps_the_yield_loop() {
    let mut s = Store::new();
    let inst = s.new_instance();
    let t1 = s.invoke(stackful(inst, 1)).unwrap();
    let (th1, _) = expect_start(&mut s, 1);
    // The export resolves, then yields: the invoke's own resume ends there.
    assert_eq!(
        s.running().unwrap().task_return().unwrap(),
        ResultDelivery::Host(t1)
    );
    assert_eq!(
        s.running().unwrap().thread_yield(false).unwrap(),
        Step::Suspend
    );
    assert_eq!(s.next_action_in_tick(), None);
    // At the boundary: nothing runs, and asking again changes nothing.
    assert_eq!(s.current_thread(), None);
    assert_eq!(s.next_action_in_tick(), None);
    assert!(s.thread_alive(th1));

    // A later invoke into the same instance runs first (Store.invoke calls
    // the lifted function at once) ...
    let t2 = s.invoke(sync_typed(inst, 2)).unwrap();
    expect_start(&mut s, 2);
    assert_eq!(s.lift_returned().unwrap(), ResultDelivery::Host(t2));
    s.exit_thread().unwrap();
    assert_eq!(s.next_action_in_tick(), None);

    // ... and the left-behind loop is still there for later ticks, which
    // only `next_action` starts.
    for _ in 0..3 {
        assert_eq!(expect_resume_i32(&mut s, th1), 0);
        assert_eq!(
            s.running().unwrap().thread_yield(false).unwrap(),
            Step::Suspend
        );
        assert_eq!(s.next_action_in_tick(), None);
    }
}

#[test]
fn finishes_the_tick_the_result_came_in() {
    let mut s = Store::new();
    let inst = s.new_instance();
    let task = s.invoke(stackful(inst, 1)).unwrap();
    let (th, _) = expect_start(&mut s, 1);
    // The export yields before it resolves: the host ticks.
    assert_eq!(
        s.running().unwrap().thread_yield(false).unwrap(),
        Step::Suspend
    );
    assert_eq!(expect_resume_i32(&mut s, th), 0);
    // It resolves inside this tick and then starts a thread and switches
    // to it: that is still the same tick.
    assert_eq!(
        s.running().unwrap().task_return().unwrap(),
        ResultDelivery::Host(task)
    );
    let t = s.running().unwrap().thread_new_indirect(0, 5).unwrap();
    let new = match s
        .running()
        .unwrap()
        .thread_yield_then_resume(false, t)
        .unwrap()
    {
        Step::Suspend => match s.next_action_in_tick() {
            Some(Action::StartThread { thread, arg: 5, .. }) => thread,
            a => panic!("expected the switched-to thread to start, got {a:?}"),
        },
        r => panic!("expected a switch, got {r:?}"),
    };
    s.exit_thread().unwrap();
    assert_eq!(s.current_thread(), None);
    assert_eq!(s.next_action_in_tick(), None);
    assert!(!s.thread_alive(new));
    assert!(s.thread_alive(th));
}

#[test]
fn core_trap_texts_have_no_prefix() {
    let mut s = Store::new();
    let inst = s.new_instance();
    s.invoke(stackful(inst, 1)).unwrap();
    expect_start(&mut s, 1);
    // The stackful export returns without task.return.
    let e = s.exit_thread().unwrap_err();
    assert_eq!(e, canon_async::Error::Trap(Trap::TaskNotResolved));
    assert_eq!(
        e.to_string(),
        "cannot exit a task before it returned or was cancelled"
    );
    assert_eq!(
        Trap::Deadlock.to_string(),
        "deadlock detected: event loop cannot make further progress"
    );
}
