//! Keep-alive: a callback-lifted export returns its result first and keeps
//! working afterwards (YIELD, then WAIT on a subtask a host import
//! completes later). The live-task count reaches zero only when it exits,
//! and every waker registered through `poll_quiescent` /
//! `poll_quiescent_in` is woken exactly then.

mod hand;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use canon_async::{LowerCallee, ResultDelivery, Store};
use hand::*;

/// A waker that counts its wakes.
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

fn wakes(c: &Counter) -> usize {
    c.0.load(Ordering::SeqCst)
}

#[test]
fn task_stays_live_after_returning_until_it_exits() {
    let mut s = Store::new();
    let inst = s.new_instance();
    let other = s.new_instance();
    let (c1, w1) = counter();
    let (c2, w2) = counter();
    let (ci, wi) = counter();

    assert_eq!(
        s.poll_quiescent(&mut Context::from_waker(&w1)),
        Poll::Ready(())
    );
    let task = s.invoke(callback(inst, 1)).unwrap();
    assert_eq!(s.live_tasks(), 1);
    let (t, _) = expect_start(&mut s, 1);

    // The response goes out first.
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(task))
    );
    assert_eq!(s.live_tasks(), 1, "resolved, but still running");
    assert_eq!(
        s.poll_quiescent(&mut Context::from_waker(&w1)),
        Poll::Pending
    );
    assert_eq!(
        s.poll_quiescent(&mut Context::from_waker(&w2)),
        Poll::Pending
    );
    assert_eq!(
        s.poll_quiescent_in(inst, &mut Context::from_waker(&wi)),
        Poll::Pending
    );
    assert_eq!(
        s.poll_quiescent_in(other, &mut Context::from_waker(&wi)),
        Poll::Ready(()),
        "another instance has no live task"
    );
    s.callback_returned(1).unwrap(); // YIELD

    assert_eq!(expect_callback(&mut s, t), none_event());
    assert_eq!((wakes(&c1), wakes(&c2), wakes(&ci)), (0, 0, 0));
    // More work: a host import that completes later.
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .unwrap();
    assert_eq!(expect_host_call(&mut s), sub);
    let (state, i) = unpack(expect_resume_i32(&mut s, t));
    assert_eq!(state, 1, "STARTED");
    let si = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(i, si).unwrap();
    s.callback_returned(2 | (si << 4)).unwrap(); // WAIT

    // Nothing can run until the host completes the import.
    expect_idle(&mut s);
    assert_eq!(s.live_tasks(), 1);
    assert_eq!(s.live_tasks_in(inst), 1);
    assert_eq!((wakes(&c1), wakes(&c2), wakes(&ci)), (0, 0, 0));
    s.host_return(sub).unwrap();
    assert_eq!(expect_callback(&mut s, t), subtask_event(i, 2));
    s.running().unwrap().subtask_drop(i).unwrap();
    s.running().unwrap().waitable_set_drop(si).unwrap();
    assert_eq!((wakes(&c1), wakes(&c2), wakes(&ci)), (0, 0, 0));
    assert_eq!(s.live_tasks(), 1);

    // EXIT: now, and only now, the count reaches zero and every waker wakes.
    s.callback_returned(0).unwrap();
    assert_eq!(s.live_tasks(), 0);
    assert_eq!(s.live_tasks_in(inst), 0);
    assert_eq!((wakes(&c1), wakes(&c2), wakes(&ci)), (1, 1, 1));
    expect_idle(&mut s);
    assert_eq!(
        s.poll_quiescent(&mut Context::from_waker(&w1)),
        Poll::Ready(())
    );
    assert_eq!((wakes(&c1), wakes(&c2), wakes(&ci)), (1, 1, 1));
    assert_eq!(s.task_state(task), None, "the task is gone");
}

#[test]
fn per_instance_wakers_wake_when_their_instance_is_done() {
    // Two instances each serve one call; the per-instance waker of the
    // first wakes when its task exits, although the store is still busy.
    let mut s = Store::new();
    let a = s.new_instance();
    let b = s.new_instance();
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let (cs, ws) = counter();

    let ta = s.invoke(stackful(a, 1)).unwrap();
    let (t1, _) = expect_start(&mut s, 1);
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(ta))
    );
    let ha = block_on_host(&mut s);
    expect_idle(&mut s);
    let tb = s.invoke(stackful(b, 2)).unwrap();
    let (t2, _) = expect_start(&mut s, 2);
    assert_eq!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(tb))
    );
    let hb = block_on_host(&mut s);
    expect_idle(&mut s);

    let _ = s.poll_quiescent_in(a, &mut Context::from_waker(&wa));
    let _ = s.poll_quiescent_in(b, &mut Context::from_waker(&wb));
    assert_eq!(
        s.poll_quiescent(&mut Context::from_waker(&ws)),
        Poll::Pending
    );

    s.host_return(ha).unwrap();
    expect_returned(&mut s, t1, ha);
    s.exit_thread().unwrap();
    assert_eq!((wakes(&ca), wakes(&cb), wakes(&cs)), (1, 0, 0));
    assert_eq!(
        (s.live_tasks_in(a), s.live_tasks_in(b), s.live_tasks()),
        (0, 1, 1)
    );
    expect_idle(&mut s);

    s.host_return(hb).unwrap();
    expect_returned(&mut s, t2, hb);
    s.exit_thread().unwrap();
    assert_eq!((wakes(&ca), wakes(&cb), wakes(&cs)), (1, 1, 1));
    assert_eq!(s.live_tasks(), 0);
}
