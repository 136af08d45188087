//! The reference's scheduling scenarios (`run_tests.py`), rewritten as
//! hand-driven embeddings of the `Store`: the test plays each guest's core
//! code step by step and checks every return code, event, payload, handle
//! index and the order in which the store runs things.
//!
//! The reference's "host futures" (`RacyBool` + `wait_until`) are host
//! imports here: the guest calls a host function synchronously and parks
//! until the test resolves it with `host_return` ("sets the future").
//! Results lowered through a caller's out-pointer are modelled by a map
//! from the subtask to the value, written when `task.return` delivers it.

mod hand;

use std::collections::HashMap;

use canon_async::{
    LowerCallee, Reading, ResultDelivery, Step, Store, SubtaskId, SubtaskState, TaskState,
};
use hand::*;

/// run_tests.py's scenarios assume definitions.py's reading of the spec.
fn definitions_store() -> Store {
    let mut s = Store::new();
    s.set_reading(Reading::Definitions);
    s
}

const STARTING: u32 = SubtaskState::Starting as u32;
const STARTED: u32 = SubtaskState::Started as u32;
const RETURNED: u32 = SubtaskState::Returned as u32;
const CANCELLED_BEFORE_STARTED: u32 = SubtaskState::CancelledBeforeStarted as u32;
const CANCELLED_BEFORE_RETURNED: u32 = SubtaskState::CancelledBeforeReturned as u32;

/// The guest's `task.return` to a guest caller: lowers `v` into the
/// caller's memory (the map) and returns the subtask.
#[track_caller]
fn return_to_guest(s: &mut Store, mem: &mut HashMap<SubtaskId, u32>, v: u32) -> SubtaskId {
    match s.running().unwrap().task_return() {
        Ok(ResultDelivery::Guest(sub)) => {
            mem.insert(sub, v);
            sub
        }
        r => panic!("expected a guest delivery, got {r:?}"),
    }
}

/// `test_async_to_async`: async lowers into stackful async lifts; an eager
/// callee returns RETURNED without a handle, a backpressuring callee gives
/// STARTED, a callee held by backpressure STARTING; SUBTASK events carry
/// the state at delivery; `task.return` followed by more work.
#[test]
fn async_to_async() {
    let mut s = definitions_store();
    let producer = s.new_instance();
    let consumer = s.new_instance();
    let (eager, toggle, blocking, cons) = (
        stackful(producer, 1),
        stackful(producer, 2),
        stackful(producer, 3),
        stackful(consumer, 10),
    );
    let mut mem = HashMap::new();

    let top = s.invoke(cons).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(seti, 1);

    // The eager producer returns before the caller gets control back.
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(eager), true)
        .unwrap();
    let (e, _) = expect_start(&mut s, 1);
    let sub_eager = return_to_guest(&mut s, &mut mem, 43);
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, c), RETURNED);
    assert_eq!(mem[&sub_eager], 43);
    assert!(!s.thread_alive(e));

    // The toggle producer raises backpressure and blocks on fut1_1.
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(toggle), true)
        .unwrap();
    let (t, _) = expect_start(&mut s, 2);
    s.running().unwrap().backpressure_inc().unwrap();
    let fut1_1 = block_on_host(&mut s);
    let (state, subi1) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi1), (STARTED, 2));
    s.running().unwrap().waitable_join(subi1, seti).unwrap();

    // The blocking producer cannot start: backpressure.
    let ret = lower_async(&mut s, LowerCallee::Guest(blocking));
    let (state, subi2) = unpack(ret);
    assert_eq!((state, subi2), (STARTING, 3));
    s.running().unwrap().waitable_join(subi2, seti).unwrap();
    s.host_return(fut1_1).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, t, fut1_1);
    s.running().unwrap().task_return().unwrap();
    let fut1_2 = block_on_host(&mut s);
    assert_eq!(expect_event(&mut s, c), subtask_event(subi1, RETURNED));
    s.running().unwrap().subtask_drop(subi1).unwrap();
    s.host_return(fut1_2).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, t, fut1_2);
    s.running().unwrap().backpressure_dec().unwrap();
    s.exit_thread().unwrap();
    // Backpressure is gone: the blocking producer starts.
    let (b, _) = expect_start(&mut s, 3);
    let fut2 = block_on_host(&mut s);
    assert_eq!(expect_event(&mut s, c), subtask_event(subi2, STARTED));
    assert!(!mem.values().any(|&v| v == 44), "no result lowered yet");
    s.host_return(fut2).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, b, fut2);
    let sub_blocking = return_to_guest(&mut s, &mut mem, 44);
    let fut3 = block_on_host(&mut s);
    assert_eq!(expect_event(&mut s, c), subtask_event(subi2, RETURNED));
    assert_eq!(mem[&sub_blocking], 44);
    s.running().unwrap().subtask_drop(subi2).unwrap();
    s.host_return(fut3).unwrap();

    // The consumer waits for fut4, which the blocking producer sets after
    // its `task.return`, on its way out.
    let fut4 = block_on_host(&mut s);
    expect_returned(&mut s, b, fut3);
    s.host_return(fut4).unwrap();
    assert_eq!(s.live_tasks_in(producer), 1);
    s.exit_thread().unwrap();
    assert_eq!(s.live_tasks_in(producer), 0);
    expect_returned(&mut s, c, fut4);
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    assert_eq!(s.task_state(top), Some(TaskState::Resolved));
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_async_callback`: a callback-lifted consumer WAITs on a set of two
/// subtasks (`WAIT | si << 4`), gets SUBTASK events in its callback, YIELD
/// gives NONE, `context.get/set` persists across callbacks, EXIT.
#[test]
fn async_callback() {
    let mut s = definitions_store();
    let producer = s.new_instance();
    let consumer = s.new_instance();
    let (p1, p2, cons) = (
        stackful(producer, 1),
        stackful(producer, 2),
        callback(consumer, 10),
    );

    let top = s.invoke(cons).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(p1), true)
        .unwrap();
    let (t1, _) = expect_start(&mut s, 1);
    let fut1 = block_on_host(&mut s);
    let (state, subi1) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi1), (STARTED, 1));
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(p2), true)
        .unwrap();
    let (t2, _) = expect_start(&mut s, 2);
    let fut2 = block_on_host(&mut s);
    let (state, subi2) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi2), (STARTED, 2));
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(seti, 3);
    s.running().unwrap().waitable_join(subi1, seti).unwrap();
    s.running().unwrap().waitable_join(subi2, seti).unwrap();
    s.host_return(fut1).unwrap();
    s.running().unwrap().context_set(0, 42).unwrap();
    s.callback_returned(2 | (seti << 4)).unwrap();

    // Producer 1 runs to its return; then the consumer's callback sees it.
    expect_returned(&mut s, t1, fut1);
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_callback(&mut s, c), subtask_event(1, RETURNED));
    assert_eq!(s.running().unwrap().context_get(0), Ok(42));
    s.running().unwrap().subtask_drop(1).unwrap();
    s.running().unwrap().context_set(0, 52).unwrap();
    s.callback_returned(1).unwrap();

    assert_eq!(expect_callback(&mut s, c), none_event());
    assert_eq!(s.running().unwrap().context_get(0), Ok(52));
    s.host_return(fut2).unwrap();
    s.running().unwrap().context_set(0, 62).unwrap();
    s.callback_returned(2 | (seti << 4)).unwrap();

    expect_returned(&mut s, t2, fut2);
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_callback(&mut s, c), subtask_event(2, RETURNED));
    assert_eq!(s.running().unwrap().context_get(0), Ok(62));
    s.running().unwrap().subtask_drop(2).unwrap();
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    s.callback_returned(0).unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_callback_interleaving`: callback-lifted tasks of one instance
/// interleave only at their event loop, because each holds the instance's
/// exclusive lock while its core code runs, even while blocked in a
/// synchronous operation. The reference's futures are host imports here:
/// a sync `future.read` is a sync host call, an async one an async host
/// call whose SUBTASK event replaces FUTURE_READ, a `future.write` is the
/// host completing the call. `backpressure = True/False` is done by two
/// sync-typed producer exports (sync-typed calls ignore backpressure).
#[test]
fn callback_interleaving() {
    let mut s = definitions_store();
    let producer = s.new_instance();
    let consumer = s.new_instance();
    let prod = callback(producer, 1);
    let sync_callee = sync_lift_async_type(producer, 2);
    let (bp_inc, bp_dec) = (sync_typed(producer, 3), sync_typed(producer, 4));
    let cons = sync_lift_async_type(consumer, 10);
    let mut mem: HashMap<SubtaskId, u32> = HashMap::new();

    // A sync call to a sync-typed producer export that adjusts backpressure.
    let set_bp = |s: &mut Store, on: bool| {
        let c = s.current_thread().unwrap();
        let sub = s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Guest(if on { bp_inc } else { bp_dec }), false)
            .unwrap();
        expect_start(s, if on { 3 } else { 4 });
        if on {
            s.running().unwrap().backpressure_inc().unwrap();
        } else {
            s.running().unwrap().backpressure_dec().unwrap();
        }
        assert_eq!(s.lift_returned(), Ok(ResultDelivery::Guest(sub)));
        s.exit_thread().unwrap();
        expect_returned(s, c, sub);
    };

    let top = s.invoke(cons).unwrap();
    let (c, _) = expect_start(&mut s, 10);

    set_bp(&mut s, true);
    let (state, todie) = unpack(lower_async(&mut s, LowerCallee::Guest(prod)));
    assert_eq!((state, todie), (STARTING, 1));
    s.running()
        .unwrap()
        .subtask_cancel(false, todie)
        .unwrap_done(&mut s, c, CANCELLED_BEFORE_STARTED);
    set_bp(&mut s, false);

    // Producer 0 starts and blocks in its sync read of fut1, holding the lock.
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(prod), true)
        .unwrap();
    let (p0, _) = expect_start(&mut s, 1);
    s.running().unwrap().context_set(0, 0).unwrap();
    let fut11 = block_on_host(&mut s);
    let (state, subi1) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi1), (STARTED, 2));

    // Producer 1 cannot start while producer 0 holds the lock.
    let (state, todie) = unpack(lower_async(&mut s, LowerCallee::Guest(prod)));
    assert_eq!((state, todie), (STARTING, 3));
    s.running()
        .unwrap()
        .subtask_cancel(false, todie)
        .unwrap_done(&mut s, c, CANCELLED_BEFORE_STARTED);
    let (state, subi2) = unpack(lower_async(&mut s, LowerCallee::Guest(prod)));
    assert_eq!((state, subi2), (STARTING, 4));

    let seti = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(seti, 5);
    s.running().unwrap().waitable_join(subi1, seti).unwrap();
    s.running().unwrap().waitable_join(subi2, seti).unwrap();
    s.host_return(fut11).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    // Producer 0 resumes, reads fut2 asynchronously and WAITs (releasing
    // the lock); then producer 1 enters and blocks on its fut1.
    expect_returned(&mut s, p0, fut11);
    let p0_seti = s.running().unwrap().waitable_set_new().unwrap();
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .unwrap();
    let fut12 = expect_host_call(&mut s);
    let (state, p0_fut2) = unpack(expect_resume_i32(&mut s, p0));
    assert_eq!((p0_seti, state, p0_fut2), (1, STARTED, 2));
    s.running()
        .unwrap()
        .waitable_join(p0_fut2, p0_seti)
        .unwrap();
    s.callback_returned(2 | (p0_seti << 4)).unwrap();
    let (p1, _) = expect_start(&mut s, 1);
    s.running().unwrap().context_set(0, 1).unwrap();
    let fut21 = block_on_host(&mut s);
    assert_eq!(expect_event(&mut s, c), subtask_event(subi2, STARTED));

    // fut12 completes, but producer 0's callback cannot run: producer 1
    // holds the lock. Yields and polls see nothing.
    s.host_return(fut12).unwrap();
    for _ in 0..10 {
        assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
        assert_eq!(expect_resume_i32(&mut s, c), 0);
        assert_eq!(
            s.running().unwrap().waitable_set_poll(true, seti),
            Ok(none_event())
        );
    }
    s.host_return(fut21).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    // Producer 1 reads fut2 asynchronously and WAITs; producer 0's
    // callback then returns 42 and blocks on fut3 in its callback.
    expect_returned(&mut s, p1, fut21);
    let p1_seti = s.running().unwrap().waitable_set_new().unwrap();
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .unwrap();
    let fut22 = expect_host_call(&mut s);
    let (state, p1_fut2) = unpack(expect_resume_i32(&mut s, p1));
    assert_eq!((p1_seti, state, p1_fut2), (3, STARTED, 4));
    s.running()
        .unwrap()
        .waitable_join(p1_fut2, p1_seti)
        .unwrap();
    s.callback_returned(2 | (p1_seti << 4)).unwrap();
    assert_eq!(
        expect_callback(&mut s, p0),
        subtask_event(p0_fut2, RETURNED)
    );
    let i = s.running().unwrap().context_get(0).unwrap() as u32;
    assert_eq!(i, 0);
    let sub1 = return_to_guest(&mut s, &mut mem, 42 + i);
    let fut13 = block_on_host(&mut s);
    assert_eq!(expect_event(&mut s, c), subtask_event(subi1, RETURNED));
    assert_eq!(mem[&sub1], 42);
    s.running().unwrap().subtask_drop(subi1).unwrap();

    s.host_return(fut22).unwrap();
    for _ in 0..10 {
        assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
        assert_eq!(expect_resume_i32(&mut s, c), 0);
        assert_eq!(
            s.running().unwrap().waitable_set_poll(true, seti),
            Ok(none_event())
        );
    }
    s.host_return(fut13).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, p0, fut13);
    s.callback_returned(0).unwrap();
    assert_eq!(
        expect_callback(&mut s, p1),
        subtask_event(p1_fut2, RETURNED)
    );
    let i = s.running().unwrap().context_get(0).unwrap() as u32;
    assert_eq!(i, 1);
    let sub2 = return_to_guest(&mut s, &mut mem, 42 + i);
    let fut23 = block_on_host(&mut s);
    assert_eq!(expect_event(&mut s, c), subtask_event(subi2, RETURNED));
    assert_eq!(mem[&sub2], 43);
    s.running().unwrap().subtask_drop(subi2).unwrap();

    // A sync-lifted callee of the same instance stays STARTING while
    // producer 1 holds the lock.
    let (state, subi3) = unpack(lower_async(&mut s, LowerCallee::Guest(sync_callee)));
    assert_eq!((state, subi3), (STARTING, 4));
    s.running().unwrap().waitable_join(subi3, seti).unwrap();
    s.host_return(fut23).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, p1, fut23);
    s.callback_returned(0).unwrap();
    expect_start(&mut s, 2);
    let sub3 = match s.lift_returned() {
        Ok(ResultDelivery::Guest(sub)) => sub,
        r => panic!("{r:?}"),
    };
    mem.insert(sub3, 100);
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi3, RETURNED));
    assert_eq!(mem[&sub3], 100);

    assert_eq!(s.lift_returned(), Ok(ResultDelivery::Host(top)));
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// A `Step` answer checked in place: `Done(v)` without switching.
trait StepExt {
    fn unwrap_done(self, s: &mut Store, t: canon_async::ThreadId, v: u32);
}

impl StepExt for Result<Step<u32>, canon_async::Trap> {
    /// The built-in either finished at once with `v`, or suspended and the
    /// thread resumes with `v` before anything else runs guest code.
    #[track_caller]
    fn unwrap_done(self, s: &mut Store, t: canon_async::ThreadId, v: u32) {
        match self {
            Ok(Step::Done(x)) => assert_eq!(x, v),
            Ok(Step::Suspend) => assert_eq!(expect_resume_i32(s, t), v),
            Err(e) => panic!("trap: {e}"),
        }
    }
}

/// `test_sync_ignores_backpressure`: a sync-typed export barges into an
/// instance whose async task holds the exclusive lock (blocked in a sync
/// read, a sync host call here).
#[test]
fn sync_ignores_backpressure() {
    let mut s = definitions_store();
    let callee = s.new_instance();
    let caller = s.new_instance();
    let async_callee = sync_lift_async_type(callee, 1);
    let sync_callee = sync_typed(callee, 2);
    let mut mem = HashMap::new();

    let top = s.invoke(stackful(caller, 10)).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(async_callee), true)
        .unwrap();
    let (a, _) = expect_start(&mut s, 1);
    let fut = block_on_host(&mut s);
    let (state, subi) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi), (STARTED, 1));

    // The sync-typed call runs at once although the lock is held.
    let sub2 = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(sync_callee), false)
        .unwrap();
    expect_start(&mut s, 2);
    assert_eq!(s.lift_returned(), Ok(ResultDelivery::Guest(sub2)));
    mem.insert(sub2, 84 + 2);
    s.exit_thread().unwrap();
    expect_returned(&mut s, c, sub2);
    assert_eq!(mem[&sub2], 86);

    s.host_return(fut).unwrap();
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(subi, seti).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 12),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, a, fut);
    let sub1 = match s.lift_returned() {
        Ok(ResultDelivery::Guest(sub)) => sub,
        r => panic!("{r:?}"),
    };
    mem.insert(sub1, 42 + 1);
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi, RETURNED));
    assert_eq!(mem[&sub1], 43);
    s.running().unwrap().subtask_drop(subi).unwrap();
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_async_to_sync`: two sync-lifted async-typed callees of one
/// instance; the second stays STARTING (the first holds the exclusive
/// lock) until the first finishes; the caller loops on yield + poll.
#[test]
fn async_to_sync() {
    let mut s = definitions_store();
    let producer = s.new_instance();
    let consumer = s.new_instance();
    let (p1, p2) = (
        sync_lift_async_type(producer, 1),
        sync_lift_async_type(producer, 2),
    );

    let top = s.invoke(stackful(consumer, 10)).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(p1), true)
        .unwrap();
    let (t1, _) = expect_start(&mut s, 1);
    let fut = block_on_host(&mut s);
    let (state, subi1) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi1), (STARTED, 1));
    let (state, subi2) = unpack(lower_async(&mut s, LowerCallee::Guest(p2)));
    assert_eq!((state, subi2), (STARTING, 2));
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(subi1, seti).unwrap();
    s.running().unwrap().waitable_join(subi2, seti).unwrap();
    s.host_return(fut).unwrap();

    let (mut p1_done, mut p2_done) = (false, false);
    let mut remain = vec![subi1, subi2];
    let mut order = vec![];
    while !remain.is_empty() {
        assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
        // Run whatever the store schedules until the consumer resumes.
        loop {
            match s.next_action() {
                canon_async::Action::Resume { thread, value } if thread == t1 => {
                    assert_eq!(value, canon_async::ResumeValue::Returned(fut));
                    assert!(!p1_done && !p2_done);
                    s.lift_returned().unwrap();
                    p1_done = true;
                    s.exit_thread().unwrap();
                }
                canon_async::Action::Start { func: 2, .. } => {
                    assert!(p1_done, "producer 2 starts only after producer 1 finished");
                    s.lift_returned().unwrap();
                    p2_done = true;
                    s.exit_thread().unwrap();
                }
                canon_async::Action::Resume { thread, value } if thread == c => {
                    assert_eq!(value, canon_async::ResumeValue::I32(0));
                    break;
                }
                a => panic!("unexpected {a:?}"),
            }
        }
        let e = s.running().unwrap().waitable_set_poll(true, seti).unwrap();
        if e == none_event() {
            continue;
        }
        assert_eq!(e.code, canon_async::EventCode::Subtask);
        assert_eq!(e.payload, RETURNED);
        let pos = remain.iter().position(|&x| x == e.index).unwrap();
        remain.remove(pos);
        order.push(e.index);
        s.running().unwrap().subtask_drop(e.index).unwrap();
    }
    assert!(p1_done && p2_done);
    assert_eq!(order, [subi1, subi2]);
    s.running().unwrap().waitable_set_drop(seti).unwrap();
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_async_backpressure`: explicit `backpressure.inc` in a stackful
/// callee keeps the second call STARTING until `backpressure.dec`.
#[test]
fn async_backpressure() {
    let mut s = definitions_store();
    let producer = s.new_instance();
    let consumer = s.new_instance();
    let (p1, p2) = (stackful(producer, 1), stackful(producer, 2));

    let top = s.invoke(stackful(consumer, 10)).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(p1), true)
        .unwrap();
    let (t1, _) = expect_start(&mut s, 1);
    s.running().unwrap().backpressure_inc().unwrap();
    let fut = block_on_host(&mut s);
    let (state, subi1) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi1), (STARTED, 1));
    let (state, subi2) = unpack(lower_async(&mut s, LowerCallee::Guest(p2)));
    assert_eq!((state, subi2), (STARTING, 2));
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(subi1, seti).unwrap();
    s.running().unwrap().waitable_join(subi2, seti).unwrap();
    s.host_return(fut).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 8),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, t1, fut);
    s.running().unwrap().backpressure_dec().unwrap();
    s.running().unwrap().task_return().unwrap();
    // Producer 2 may enter now, but producer 1 is still running: both
    // tasks are live.
    assert_eq!(s.live_tasks_in(producer), 2);
    s.exit_thread().unwrap();
    let (_, t2) = expect_start(&mut s, 2);
    assert_eq!(s.task_state(t2), Some(TaskState::Started));
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi1, RETURNED));
    s.running().unwrap().subtask_drop(subi1).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 8),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, c), subtask_event(subi2, RETURNED));
    s.running().unwrap().subtask_drop(subi2).unwrap();
    s.running().unwrap().waitable_set_drop(seti).unwrap();
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_sync_using_wait`: a sync-lifted async-typed export waits on two
/// subtasks with `waitable-set.wait`, then drops them and the set.
#[test]
fn sync_using_wait() {
    let mut s = definitions_store();
    let producer = s.new_instance();
    let consumer = s.new_instance();
    let (p1, p2) = (stackful(producer, 1), stackful(producer, 2));

    let top = s.invoke(sync_lift_async_type(consumer, 10)).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(p1), true)
        .unwrap();
    let (t1, _) = expect_start(&mut s, 1);
    let fut1 = block_on_host(&mut s);
    let (state, subi1) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi1), (STARTED, 1));
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(p2), true)
        .unwrap();
    let (t2, _) = expect_start(&mut s, 2);
    let fut2 = block_on_host(&mut s);
    let (state, subi2) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!((state, subi2), (STARTED, 2));
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(seti, 3);
    s.running().unwrap().waitable_join(subi1, seti).unwrap();
    s.running().unwrap().waitable_join(subi2, seti).unwrap();
    s.host_return(fut1).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, t1, fut1);
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi1, RETURNED));
    s.host_return(fut2).unwrap();

    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 0),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, t2, fut2);
    s.running().unwrap().task_return().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi2, RETURNED));
    s.running().unwrap().subtask_drop(subi1).unwrap();
    s.running().unwrap().subtask_drop(subi2).unwrap();
    s.running().unwrap().waitable_set_drop(seti).unwrap();
    assert_eq!(s.lift_returned(), Ok(ResultDelivery::Host(top)));
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_cancel_subtask`, the parts without explicit threads (`callee6`
/// of the reference needs `thread.*`): every `subtask.cancel` path, sync
/// and async: before start; delivered through `waitable-set.wait`; the
/// callee returns or cancels, at once or after a yield (BLOCKED, then a
/// SUBTASK event); a cancel racing a return; a pending cancel delivered at
/// the callee's next cancellable wait (the reference checks that
/// `task.cancel` traps before that: here `task_state` is PENDING_CANCEL,
/// and the trap itself is in `tests/traps.rs`); a cancel while the callee
/// is inside a host call, which the host ignores.
#[test]
fn cancel_subtask() {
    let mut s = definitions_store();
    let callee = s.new_instance();
    let caller = s.new_instance();
    let (callee1, callee2, callee3, callee4, callee5) = (
        stackful(callee, 1),
        stackful(callee, 2),
        stackful(callee, 3),
        stackful(callee, 4),
        stackful(callee, 5),
    );
    let (bp_inc, bp_dec) = (sync_typed(callee, 8), sync_typed(callee, 9));
    let mut mem: HashMap<SubtaskId, u32> = HashMap::new();

    let set_bp = |s: &mut Store, on: bool| {
        let c = s.current_thread().unwrap();
        let sub = s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Guest(if on { bp_inc } else { bp_dec }), false)
            .unwrap();
        expect_start(s, if on { 8 } else { 9 });
        if on {
            s.running().unwrap().backpressure_inc().unwrap();
        } else {
            s.running().unwrap().backpressure_dec().unwrap();
        }
        s.lift_returned().unwrap();
        s.exit_thread().unwrap();
        expect_returned(s, c, sub);
    };

    let top = s.invoke(stackful(caller, 10)).unwrap();
    let (c, _) = expect_start(&mut s, 10);
    let seti = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(seti, 1);

    // Cancelled before starting: sync and async, both resolve at once.
    set_bp(&mut s, true);
    let (state, subi1) = unpack(lower_async(&mut s, LowerCallee::Guest(callee1)));
    assert_eq!((state, subi1), (STARTING, 2));
    let (state, subi2) = unpack(lower_async(&mut s, LowerCallee::Guest(callee1)));
    assert_eq!((state, subi2), (STARTING, 3));
    s.running()
        .unwrap()
        .subtask_cancel(false, subi2)
        .unwrap_done(&mut s, c, CANCELLED_BEFORE_STARTED);
    s.running()
        .unwrap()
        .subtask_cancel(true, subi1)
        .unwrap_done(&mut s, c, CANCELLED_BEFORE_STARTED);
    set_bp(&mut s, false);
    assert_eq!(s.live_tasks_in(callee), 0, "callee1 never ran");

    // Six callee2 calls, each blocked on an empty set, cancellable.
    let mut callee2s = vec![];
    for x in [1, 2, 3, 3, 4, 4] {
        let sub = s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Guest(callee2), true)
            .unwrap();
        let (t, _) = expect_start(&mut s, 2);
        let si = s.running().unwrap().waitable_set_new().unwrap();
        assert_eq!(
            s.running().unwrap().waitable_set_wait(true, si, 0),
            Ok(Step::Suspend)
        );
        let (state, i) = unpack(expect_resume_i32(&mut s, c));
        assert_eq!(state, STARTED);
        callee2s.push((x, i, t, sub));
    }
    let idx: Vec<u32> = callee2s.iter().map(|c| c.1).collect();
    assert_eq!(idx, [4, 5, 6, 7, 8, 9]);
    let [(_, subi1, t1, sub1), (_, subi2, t2, _), (_, subi3, t3, sub3), (_, subi3_2, t3_2, sub3_2), (_, subi4, t4, _), (_, subi4_2, t4_2, _)] =
        callee2s[..]
    else {
        unreachable!()
    };

    // x = 1: TASK_CANCELLED, then task.return(42): sync cancel → RETURNED.
    assert_eq!(
        s.running().unwrap().subtask_cancel(false, subi1),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, t1), cancelled_event());
    return_to_guest(&mut s, &mut mem, 42);
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, c), RETURNED);
    assert_eq!(mem.remove(&sub1), Some(42));
    s.running().unwrap().subtask_drop(subi1).unwrap();

    // x = 2: TASK_CANCELLED, then task.cancel: async cancel resolves at once.
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, subi2),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, t2), cancelled_event());
    s.running().unwrap().task_cancel().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, c), CANCELLED_BEFORE_RETURNED);
    assert!(mem.is_empty(), "nothing was lowered");
    s.running().unwrap().subtask_drop(subi2).unwrap();

    // x = 3, async: the callee yields first: BLOCKED, then RETURNED by event.
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, subi3),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, t3), cancelled_event());
    assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
    assert_eq!(expect_resume_i32(&mut s, c), canon_async::BLOCKED);
    assert!(!mem.contains_key(&sub3));
    s.running().unwrap().waitable_join(subi3, seti).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 8),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, t3), 0);
    return_to_guest(&mut s, &mut mem, 43);
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi3, RETURNED));
    assert_eq!(mem.remove(&sub3), Some(43));
    s.running().unwrap().subtask_drop(subi3).unwrap();

    // x = 3, sync: the caller waits for the resolution.
    assert_eq!(
        s.running().unwrap().subtask_cancel(false, subi3_2),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, t3_2), cancelled_event());
    assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
    assert_eq!(expect_resume_i32(&mut s, t3_2), 0);
    return_to_guest(&mut s, &mut mem, 43);
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, c), RETURNED);
    assert_eq!(mem.remove(&sub3_2), Some(43));
    s.running().unwrap().subtask_drop(subi3_2).unwrap();

    // x = 4, async: BLOCKED, then CANCELLED_BEFORE_RETURNED by event.
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, subi4),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, t4), cancelled_event());
    assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
    assert_eq!(expect_resume_i32(&mut s, c), canon_async::BLOCKED);
    s.running().unwrap().waitable_join(subi4, seti).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 8),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, t4), 0);
    s.running().unwrap().task_cancel().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(
        expect_event(&mut s, c),
        subtask_event(subi4, CANCELLED_BEFORE_RETURNED)
    );
    s.running().unwrap().subtask_drop(subi4).unwrap();

    // x = 4, sync.
    assert_eq!(
        s.running().unwrap().subtask_cancel(false, subi4_2),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_event(&mut s, t4_2), cancelled_event());
    assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
    assert_eq!(expect_resume_i32(&mut s, t4_2), 0);
    s.running().unwrap().task_cancel().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, c), CANCELLED_BEFORE_RETURNED);
    s.running().unwrap().subtask_drop(subi4_2).unwrap();
    assert!(mem.is_empty(), "nothing was lowered");

    // callee3 returns before the cancel arrives: the cancel just delivers RETURNED.
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(callee3), true)
        .unwrap();
    let (t, _) = expect_start(&mut s, 3);
    assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
    let (state, subi) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!(state, STARTED);
    let mut spins = 0;
    while s.subtask_state(sub) == Some(SubtaskState::Started) {
        spins += 1;
        assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
        if s.thread_alive(t) {
            assert_eq!(expect_resume_i32(&mut s, t), 0);
            return_to_guest(&mut s, &mut mem, 83);
            s.exit_thread().unwrap();
        }
        assert_eq!(expect_resume_i32(&mut s, c), 0);
    }
    assert_eq!(spins, 1);
    s.running()
        .unwrap()
        .subtask_cancel(true, subi)
        .unwrap_done(&mut s, c, RETURNED);
    assert_eq!(mem.remove(&sub), Some(83));
    s.running().unwrap().subtask_drop(subi).unwrap();

    // callee3 cancelled in its yield: task.cancel, resolved at once.
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(callee3), true)
        .unwrap();
    let (t, _) = expect_start(&mut s, 3);
    assert_eq!(s.running().unwrap().thread_yield(true), Ok(Step::Suspend));
    let (state, subi) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!(state, STARTED);
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, subi),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, t), 1);
    s.running().unwrap().task_cancel().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(expect_resume_i32(&mut s, c), CANCELLED_BEFORE_RETURNED);
    assert!(!mem.contains_key(&sub), "nothing was lowered");
    s.running().unwrap().subtask_drop(subi).unwrap();

    // callee4 is inside a sync host call (not cancellable): the cancel
    // stays pending and is delivered at its next cancellable wait.
    s.running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(callee4), true)
        .unwrap();
    let (t, task4) = expect_start(&mut s, 4);
    let host_fut4 = block_on_host(&mut s);
    let (state, subi) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!(state, STARTED);
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, subi),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, c), canon_async::BLOCKED);
    assert_eq!(s.task_state(task4), Some(TaskState::PendingCancel));
    s.host_return(host_fut4).unwrap();
    s.running().unwrap().waitable_join(subi, seti).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 4),
        Ok(Step::Suspend)
    );
    expect_returned(&mut s, t, host_fut4);
    assert_eq!(s.task_state(task4), Some(TaskState::PendingCancel));
    let si = s.running().unwrap().waitable_set_new().unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, si, 0),
        Ok(Step::Done(cancelled_event()))
    );
    assert_eq!(s.task_state(task4), Some(TaskState::CancelDelivered));
    assert_eq!(
        s.running().unwrap().waitable_set_poll(true, si),
        Ok(none_event())
    );
    s.running().unwrap().task_cancel().unwrap();
    s.exit_thread().unwrap();
    assert_eq!(
        expect_event(&mut s, c),
        subtask_event(subi, CANCELLED_BEFORE_RETURNED)
    );
    s.running().unwrap().subtask_drop(subi).unwrap();

    // callee5 cancels its host call synchronously; the host ignores the
    // cancel and returns later; meanwhile the caller's async cancel of
    // callee5 stays pending (BLOCKED) and callee5 returns normally.
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(callee5), true)
        .unwrap();
    let (t, task5) = expect_start(&mut s, 5);
    let host_sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .unwrap();
    assert_eq!(expect_host_call(&mut s), host_sub);
    let (state, hi) = unpack(expect_resume_i32(&mut s, t));
    assert_eq!(state, STARTED);
    assert_eq!(
        s.running().unwrap().subtask_cancel(false, hi),
        Ok(Step::Suspend)
    );
    assert_eq!(
        s.next_action(),
        canon_async::Action::HostCancel { subtask: host_sub }
    );
    let (state, subi) = unpack(expect_resume_i32(&mut s, c));
    assert_eq!(state, STARTED);
    assert_eq!(
        s.running().unwrap().subtask_cancel(true, subi),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, c), canon_async::BLOCKED);
    assert_eq!(s.task_state(task5), Some(TaskState::PendingCancel));
    s.host_return(host_sub).unwrap();
    s.running().unwrap().waitable_join(subi, seti).unwrap();
    assert_eq!(
        s.running().unwrap().waitable_set_wait(true, seti, 4),
        Ok(Step::Suspend)
    );
    assert_eq!(expect_resume_i32(&mut s, t), RETURNED);
    return_to_guest(&mut s, &mut mem, 44);
    s.exit_thread().unwrap();
    assert_eq!(expect_event(&mut s, c), subtask_event(subi, RETURNED));
    assert_eq!(mem.remove(&sub), Some(44));
    s.running().unwrap().subtask_drop(subi).unwrap();

    s.running().unwrap().waitable_set_drop(seti).unwrap();
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 0);
}

/// `test_async_flat_params`: the flattening itself (4 flat params passed
/// directly, 5 through a pointer) is the embedder's lowering, which the
/// core never sees. What the core does see: async lowers of host functions
/// that resolve during the call return a plain RETURNED and allocate no
/// handle, and the async-lifted caller then returns normally.
#[test]
fn async_host_calls_resolving_at_once() {
    let mut s = definitions_store();
    let inst = s.new_instance();
    let top = s.invoke(stackful(inst, 1)).unwrap();
    let (t, _) = expect_start(&mut s, 1);
    for _ in 0..3 {
        let sub = s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Host, true)
            .unwrap();
        assert_eq!(expect_host_call(&mut s), sub);
        s.host_return(sub).unwrap();
        assert_eq!(expect_resume_i32(&mut s, t), RETURNED);
        assert_eq!(s.subtask_state(sub), None, "no handle keeps it");
    }
    assert_eq!(
        s.running().unwrap().waitable_set_new(),
        Ok(1),
        "no handle was allocated"
    );
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(top))
    );
    s.exit_thread().unwrap();
    expect_idle(&mut s);
}
