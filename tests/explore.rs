//! Small programs explored over every schedule (`canon_async::explore`),
//! with the store's invariants checked after every step (the `check`
//! feature, on for the tests). Each program asserts a property that must
//! hold on every schedule and returns an observable outcome; each test
//! prints how many schedules ran and bounds that number from below.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use canon_async::explore::{check_determinism, replay, Explorer, Report};
use canon_async::script::{Guest, HostAnswer, Ret, Script};
use canon_async::{
    ChoicePoint, Chooser, ElemClass, ElemType, EndKind, EventCode, InstanceId, LiftKind, Store,
    SubtaskState, ThreadSwitch, Trap, BLOCKED,
};

type Out = Result<Vec<String>, String>;

const STARTING: u32 = SubtaskState::Starting as u32;
const STARTED: u32 = SubtaskState::Started as u32;
const RETURNED: u32 = SubtaskState::Returned as u32;
const CANCELLED_BEFORE_RETURNED: u32 = SubtaskState::CancelledBeforeReturned as u32;
const COMPLETED: u32 = 0;
const DROPPED: u32 = 1;
const U32: ElemType = ElemType {
    id: 1,
    class: ElemClass::Number,
    size: 4,
    align: 4,
};

fn t(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs the script to idle and checks that every task exited.
fn finish(s: &mut Script) -> Out {
    s.run().map_err(t)?;
    let live = s.store().live_tasks();
    if live != 0 {
        return Err(format!(
            "{live} tasks still live: {}",
            s.store().describe_blocked()
        ));
    }
    Ok(s.log())
}

fn explore<P>(name: &str, program: P, at_least: usize) -> Report<Vec<String>>
where
    P: FnMut(Box<dyn Chooser>) -> Out,
{
    let report = Explorer::new()
        .dfs(program)
        .unwrap_or_else(|f| panic!("{name}: {f}"));
    println!(
        "{name}: {} schedules (complete: {}, depth {}), {} distinct outcomes",
        report.schedules,
        report.complete,
        report.max_depth,
        report.outcomes.len()
    );
    assert!(report.complete, "{name}: the search was cut");
    assert!(
        report.schedules >= at_least,
        "{name}: {} schedules, expected at least {at_least}",
        report.schedules
    );
    report
}

/// A copy, then (when it blocked) a wait for its event through set `set`.
#[allow(clippy::too_many_arguments)]
async fn copy_wait(
    g: &Guest,
    read: bool,
    i: u32,
    ptr: u32,
    len: u32,
    set: u32,
) -> Result<u32, Trap> {
    let r = g
        .copy(EndKind::Stream, read, U32, true, i, ptr, len)
        .await?;
    if r != BLOCKED {
        return Ok(r);
    }
    g.store().running().unwrap().waitable_join(i, set)?;
    let e = g.wait(false, set, 0).await?;
    g.store().running().unwrap().waitable_join(i, 0)?;
    assert_eq!(e.index, i);
    Ok(e.payload)
}

/// Waits on `set` until `n` SUBTASK events reported RETURNED; returns their indices.
async fn wait_returned(g: &Guest, set: u32, n: usize) -> Result<Vec<u32>, Trap> {
    let mut done = Vec::new();
    while done.len() < n {
        let e = g.wait(false, set, 0).await?;
        assert_eq!(e.code, EventCode::Subtask);
        if e.payload == RETURNED {
            g.store().running().unwrap().subtask_drop(e.index)?;
            done.push(e.index);
        }
    }
    Ok(done)
}

/// Cancellation racing completion: the callee yields (cancellably) once
/// and returns; the caller yields and then cancels synchronously. Every
/// schedule ends RETURNED (the callee won) or CANCELLED_BEFORE_RETURNED
/// (it saw the cancellation), consistently with what the callee did.
fn cancel_vs_complete(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let callee = s.func(b, LiftKind::AsyncStackful, true, |g, _| async move {
        if g.yield_(true).await? == 1 {
            g.log("callee cancelled");
            g.store().running().unwrap().task_cancel()?;
        } else {
            g.log("callee returned");
            g.task_return(vec![1])?;
        }
        Ok(Ret::Exit)
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let p = g.call_async(callee, vec![], 0).await?;
        let r = if p == RETURNED {
            RETURNED
        } else {
            assert_eq!(p & 0xf, STARTED);
            g.yield_(false).await?;
            let r = g.subtask_cancel(false, p >> 4).await?;
            g.store().running().unwrap().subtask_drop(p >> 4)?;
            r
        };
        g.log(format!("final {r}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    let ok = log.iter().any(|l| l == "callee returned") && log.contains(&"final 2".to_string())
        || log.iter().any(|l| l == "callee cancelled")
            && log.contains(&format!("final {CANCELLED_BEFORE_RETURNED}"));
    if !ok {
        return Err(format!("inconsistent outcome {log:?}"));
    }
    Ok(log)
}

#[test]
fn cancellation_racing_completion() {
    let r = explore("cancel-vs-complete", cancel_vs_complete, 3);
    // Both sides of the race happen on some schedule.
    assert!(r
        .outcomes
        .iter()
        .any(|(o, _)| o.contains(&"final 2".into())));
    assert!(r
        .outcomes
        .iter()
        .any(|(o, _)| o.contains(&"final 4".into())));
}

/// Backpressure with queued callers: a gate task raises backpressure and
/// yields; two callers queue (STARTING) and may only start after the gate
/// lowers it. All three return and the queued ones see their arguments.
fn backpressure(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let gate = s.func(b, LiftKind::AsyncStackful, true, |g, _| async move {
        g.store().running().unwrap().backpressure_inc()?;
        g.yield_(false).await?;
        g.log("dec");
        g.store().running().unwrap().backpressure_dec()?;
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let f = s.func(b, LiftKind::AsyncStackful, true, |g, args| async move {
        g.log(format!("f{}", args[0]));
        g.yield_(false).await?;
        g.task_return(vec![args[0]])?;
        Ok(Ret::Exit)
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let set = g.store().running().unwrap().waitable_set_new()?;
        let mut n = 0;
        let p = g.call_async(gate, vec![], 0).await?;
        if p != RETURNED {
            g.store().running().unwrap().waitable_join(p >> 4, set)?;
            n += 1;
        }
        for (k, arg) in [1u64, 2].into_iter().enumerate() {
            let p = g.call_async(f, vec![arg], 100 + 4 * k as u32).await?;
            if p != RETURNED {
                // Queued behind the gate, or started after it dropped.
                assert!(p & 0xf == STARTING || p & 0xf == STARTED, "{p}");
                g.store().running().unwrap().waitable_join(p >> 4, set)?;
                n += 1;
            }
        }
        wait_returned(&g, set, n).await?;
        let sum = g.load_u32(100) + g.load_u32(104);
        g.log(format!("sum {sum}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    let dec = log.iter().position(|l| l == "dec").ok_or("no dec")?;
    let f1 = log.iter().position(|l| l == "f1").ok_or("f1 never ran")?;
    let f2 = log.iter().position(|l| l == "f2").ok_or("f2 never ran")?;
    if f1 < dec || f2 < dec || !log.contains(&"sum 3".to_string()) {
        return Err(format!("backpressure broken: {log:?}"));
    }
    Ok(log)
}

#[test]
fn backpressure_with_queued_callers() {
    explore("backpressure", backpressure, 4);
}

/// Passes the readable end of a new u32 stream of the caller's instance
/// to instance `to`; returns (the end's index there, the writable end's index).
fn pass_stream(g: &Guest, to: InstanceId) -> Result<(u32, u32), Trap> {
    let rw = g.store().running().unwrap().stream_new(U32)?;
    let (r, w) = (rw as u32, (rw >> 32) as u32);
    let mut st = g.store();
    let sh = st.lift_end(g.instance(), EndKind::Stream, U32, r)?;
    Ok((st.lower_end(to, sh)?, w))
}

/// The reader of `stream_cancel_drop`: reads 2 at a time until DROPPED.
fn reader(s: &mut Script, b: InstanceId, chunk: u32) -> canon_async::Lifted {
    s.func(
        b,
        LiftKind::AsyncStackful,
        true,
        move |g, args| async move {
            let ri = args[0] as u32;
            let set = g.store().running().unwrap().waitable_set_new()?;
            let mut got = Vec::new();
            loop {
                g.yield_(false).await?;
                let r = copy_wait(&g, true, ri, 512, chunk, set).await?;
                for k in 0..r >> 4 {
                    got.push(g.load_u32(512 + 4 * k));
                }
                if r & 0xf == DROPPED {
                    break;
                }
                assert_eq!(r & 0xf, COMPLETED);
            }
            g.store().running().unwrap().stream_drop_readable(U32, ri)?;
            g.log(format!("read {got:?}"));
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        },
    )
}

/// Stream rendezvous with cancel and drop: the writer offers [10, 20, 30],
/// yields, cancels what is left and drops its end; the reader reads two
/// at a time until DROPPED. The reader got exactly the prefix the writer
/// says was written.
fn stream_cancel_drop(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let rd = reader(&mut s, b, 2);
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let (ri, w) = pass_stream(&g, b)?;
        let p = g.call_async(rd, vec![ri as u64], 0).await?;
        for (k, v) in [10, 20, 30].into_iter().enumerate() {
            g.store_u32(256 + 4 * k as u32, v);
        }
        let r = g.copy(EndKind::Stream, false, U32, true, w, 256, 3).await?;
        let written = if r == BLOCKED {
            g.yield_(false).await?;
            let c = g.cancel_copy(EndKind::Stream, false, U32, false, w).await?;
            c >> 4
        } else {
            r >> 4
        };
        g.store().running().unwrap().stream_drop_writable(U32, w)?;
        let expect: Vec<u32> = [10, 20, 30][..written as usize].to_vec();
        g.log(format!("wrote {expect:?}"));
        if p != RETURNED {
            let set = g.store().running().unwrap().waitable_set_new()?;
            g.store().running().unwrap().waitable_join(p >> 4, set)?;
            wait_returned(&g, set, 1).await?;
        }
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    let wrote = log.iter().find_map(|l| l.strip_prefix("wrote "));
    let read = log.iter().find_map(|l| l.strip_prefix("read "));
    if wrote.is_none() || wrote != read {
        return Err(format!("reader and writer disagree: {log:?}"));
    }
    Ok(log)
}

#[test]
fn stream_rendezvous_with_cancel_and_drop() {
    let r = explore("stream-cancel-drop", stream_cancel_drop, 3);
    println!(
        "  outcomes: {:?}",
        r.outcomes.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
}

/// Zero-length handshakes: the writer writes zero elements, then one (5);
/// the reader reads zero, then one at a time until DROPPED. Zero-length
/// copies complete with progress 0, and the reader gets exactly [5].
fn zero_length(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let rd = s.func(b, LiftKind::AsyncStackful, true, |g, args| async move {
        let ri = args[0] as u32;
        let set = g.store().running().unwrap().waitable_set_new()?;
        g.yield_(false).await?;
        let z = copy_wait(&g, true, ri, 512, 0, set).await?;
        g.log(format!("zero read {z}"));
        let mut got = Vec::new();
        loop {
            let r = copy_wait(&g, true, ri, 512, 1, set).await?;
            if r >> 4 == 1 {
                got.push(g.load_u32(512));
            }
            if r & 0xf == DROPPED {
                break;
            }
        }
        g.store().running().unwrap().stream_drop_readable(U32, ri)?;
        g.log(format!("read {got:?}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let (ri, w) = pass_stream(&g, b)?;
        let p = g.call_async(rd, vec![ri as u64], 0).await?;
        let set = g.store().running().unwrap().waitable_set_new()?;
        let z = copy_wait(&g, false, w, 256, 0, set).await?;
        g.log(format!("zero write {z}"));
        g.store_u32(256, 5);
        let one = copy_wait(&g, false, w, 256, 1, set).await?;
        g.log(format!("write {one}"));
        g.store().running().unwrap().stream_drop_writable(U32, w)?;
        if p != RETURNED {
            g.store().running().unwrap().waitable_join(p >> 4, set)?;
            wait_returned(&g, set, 1).await?;
        }
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    let ok = log.contains(&"read [5]".to_string())
        && log.contains(&format!("zero write {COMPLETED}"))
        && log.contains(&format!("zero read {COMPLETED}"))
        && log.contains(&format!("write {}", COMPLETED | 1 << 4));
    if !ok {
        return Err(format!("zero-length handshake broken: {log:?}"));
    }
    Ok(log)
}

#[test]
fn zero_length_handshakes() {
    explore("zero-length", zero_length, 2);
}

/// Threads switching and promoting: the main thread starts two threads,
/// makes one ready and switches to the other; each thread logs, promotes
/// the main thread (or yields) and logs again. Every thread logs twice and
/// the main thread returns after both finished.
fn threads(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let a = s.instance();
    // Threads finished, and whether the main thread is suspended.
    let state = Rc::new(Cell::new((0u32, false)));
    let c = state.clone();
    let tf = s.table_fn(move |g, args| {
        let c = c.clone();
        async move {
            let (id, main) = (args[0] as u32 % 10, args[0] as u32 / 10);
            g.log(format!("t{id} a"));
            g.switch(ThreadSwitch::YieldThenPromote, false, main)
                .await?;
            g.log(format!("t{id} b"));
            let (done, main_suspended) = c.get();
            c.set((done + 1, main_suspended));
            if done + 1 == 2 && main_suspended {
                g.store().running().unwrap().thread_resume_later(main)?;
            }
            Ok(Ret::Exit)
        }
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| {
        let c = state.clone();
        async move {
            let me = g.store().running().unwrap().thread_index()?;
            let t1 = g
                .store()
                .running()
                .unwrap()
                .thread_new_indirect(tf, me * 10 + 1)?;
            let t2 = g
                .store()
                .running()
                .unwrap()
                .thread_new_indirect(tf, me * 10 + 2)?;
            g.store().running().unwrap().thread_resume_later(t1)?;
            g.switch(ThreadSwitch::YieldThenResume, false, t2).await?;
            while c.get().0 < 2 {
                c.set((c.get().0, true));
                g.suspend(false).await?;
                c.set((c.get().0, false));
            }
            g.log("main done");
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        }
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    for l in ["t1 a", "t1 b", "t2 a", "t2 b"] {
        if log.iter().filter(|x| *x == l).count() != 1 {
            return Err(format!("{l} not logged once: {log:?}"));
        }
    }
    if log.last().map(String::as_str) != Some("main done") {
        return Err(format!("main finished early: {log:?}"));
    }
    Ok(log)
}

#[test]
fn threads_switching_and_promoting() {
    let r = explore("threads", threads, 4);
    assert!(r.outcomes.len() > 1);
}

/// The keep-alive count: two callback tasks return at once and keep
/// running (each waits for a pending host call). The caller has its
/// results while the callee instance's live count is still 2; completing
/// the host calls brings every count to 0.
fn keep_alive(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let pending = Rc::new(std::cell::RefCell::new(Vec::new()));
    let p2 = pending.clone();
    let h = s.host_fn(move |_, sub, _| {
        p2.borrow_mut().push(sub);
        HostAnswer::Pending
    });
    let keeper = s.callback_func(
        b,
        move |g, args| async move {
            g.task_return(vec![args[0]])?;
            g.yield_(false).await?;
            let p = g.call_host_async(h, vec![], 0).await?;
            assert_eq!(p & 0xf, STARTED);
            let set = g.store().running().unwrap().waitable_set_new()?;
            g.store().running().unwrap().waitable_join(p >> 4, set)?;
            Ok(Ret::Code(2 | set << 4))
        },
        |g, e| async move {
            assert_eq!((e.code, e.payload), (EventCode::Subtask, RETURNED));
            g.store().running().unwrap().subtask_drop(e.index)?;
            g.log("keeper done");
            Ok(Ret::Code(0))
        },
    );
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let set = g.store().running().unwrap().waitable_set_new()?;
        let mut n = 0;
        for k in 0..2u32 {
            let p = g
                .call_async(keeper, vec![k as u64 + 1], 100 + 4 * k)
                .await?;
            if p != RETURNED {
                g.store().running().unwrap().waitable_join(p >> 4, set)?;
                n += 1;
            }
        }
        wait_returned(&g, set, n).await?;
        g.log(format!("results {}", g.load_u32(100) + g.load_u32(104)));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let task = s.invoke(main, vec![]).map_err(t)?;
    s.run().map_err(t)?;
    if s.host_results(task).is_none() || s.store().live_tasks_in(b) != 2 {
        return Err(format!(
            "before completion: results {:?}, live in callee {}",
            s.host_results(task),
            s.store().live_tasks_in(b)
        ));
    }
    let subs: Vec<_> = pending.borrow_mut().drain(..).collect();
    for sub in subs {
        s.complete_host(sub, vec![]).map_err(|e| e.to_string())?;
        s.run().map_err(t)?;
    }
    if s.store().live_tasks_in(b) != 0 || s.store().live_tasks_in(a) != 0 {
        return Err("live tasks left".into());
    }
    let log = finish(&mut s)?;
    if !log.contains(&"results 3".to_string()) {
        return Err(format!("wrong results: {log:?}"));
    }
    Ok(log)
}

#[test]
fn keep_alive_count() {
    explore("keep-alive", keep_alive, 2);
}

/// Set event choice among several ready members: three callees resolve
/// before the caller waits; the set delivers their events in any order,
/// each exactly once, and the results sum to 1 + 2 + 3.
fn set_event_choice(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let a = s.instance();
    let pending = Rc::new(std::cell::RefCell::new(Vec::new()));
    let p2 = pending.clone();
    let h = s.host_fn(move |_, sub, _| {
        p2.borrow_mut().push(sub);
        HostAnswer::Pending
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let set = g.store().running().unwrap().waitable_set_new()?;
        for k in 0..3u32 {
            let p = g.call_host_async(h, vec![], 100 + 4 * k).await?;
            assert_eq!(p & 0xf, STARTED);
            g.store().running().unwrap().waitable_join(p >> 4, set)?;
        }
        // Blocks until the host completed the three calls (and this one).
        g.call_host(h, vec![]).await?;
        let order = wait_returned(&g, set, 3).await?;
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), order.len(), "an event delivered twice");
        g.log(format!("order {order:?}"));
        let sum: u32 = (0..3).map(|k| g.load_u32(100 + 4 * k)).sum();
        g.log(format!("sum {sum}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    s.run().map_err(t)?;
    let subs: Vec<_> = pending.borrow_mut().drain(..).collect();
    if subs.len() != 4 {
        return Err(format!("{} host calls pending", subs.len()));
    }
    for (k, sub) in subs.into_iter().enumerate() {
        s.complete_host(sub, vec![k as u64 + 1])
            .map_err(|e| e.to_string())?;
    }
    let log = finish(&mut s)?;
    if !log.contains(&"sum 6".to_string()) {
        return Err(format!("wrong sum: {log:?}"));
    }
    Ok(log)
}

#[test]
fn set_event_choice_among_ready_members() {
    let r = Explorer::new()
        .dfs(set_event_choice)
        .unwrap_or_else(|f| panic!("set-event: {f}"));
    println!(
        "set-event: {} schedules (complete: {}), {} distinct outcomes",
        r.schedules,
        r.complete,
        r.outcomes.len()
    );
    assert!(r.complete && r.schedules >= 6);
    // All 3! delivery orders happen.
    let orders: std::collections::BTreeSet<_> = r
        .outcomes
        .iter()
        .filter_map(|(o, _)| o.iter().find(|l| l.starts_with("order")).cloned())
        .collect();
    assert_eq!(orders.len(), 6, "{orders:?}");
}

/// Callback interleaving: two callback tasks of one instance, each
/// logging at its start and at each of two YIELD callbacks. The exclusive
/// lock means the log of one callback never splits another; every task
/// logs its three lines in order.
fn callbacks(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let step = Rc::new(Cell::new([0u32; 3]));
    let (s1, s2) = (step.clone(), step.clone());
    let cb = s.callback_func(
        b,
        move |g, args| {
            let st = s1.clone();
            async move {
                let id = args[0] as usize;
                g.store().running().unwrap().context_set(0, id as u64)?;
                g.log(format!("{id} start"));
                let mut v = st.get();
                v[id] = 1;
                st.set(v);
                Ok(Ret::Code(1))
            }
        },
        move |g, e| {
            let st = s2.clone();
            async move {
                assert_eq!(e.code, EventCode::None);
                let id = g.store().running().unwrap().context_get(0)? as usize;
                let mut v = st.get();
                v[id] += 1;
                st.set(v);
                g.log(format!("{id} cb{}", v[id]));
                if v[id] < 3 {
                    return Ok(Ret::Code(1));
                }
                g.task_return(vec![])?;
                Ok(Ret::Code(0))
            }
        },
    );
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let set = g.store().running().unwrap().waitable_set_new()?;
        let mut n = 0;
        for id in 1..=2u64 {
            let p = g.call_async(cb, vec![id], 0).await?;
            if p != RETURNED {
                g.store().running().unwrap().waitable_join(p >> 4, set)?;
                n += 1;
            }
        }
        wait_returned(&g, set, n).await?;
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    for id in 1..=2 {
        let mine: Vec<_> = log
            .iter()
            .filter(|l| l.starts_with(&format!("{id} ")))
            .cloned()
            .collect();
        let want: Vec<_> = ["start", "cb2", "cb3"]
            .iter()
            .map(|x| format!("{id} {x}"))
            .collect();
        if mine != want {
            return Err(format!("task {id} logged {mine:?}"));
        }
    }
    Ok(log)
}

#[test]
fn callback_interleaving() {
    let r = explore("callbacks", callbacks, 4);
    assert!(r.outcomes.len() > 1);
}

/// Sync-lift candidate choice: a synchronous function blocks (yields)
/// while two stackful tasks of its instance are ready; the sync-lift loop
/// chooses among them. The caller gets 42 and everyone finishes.
fn sync_lift(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let bg = s.func(b, LiftKind::AsyncStackful, true, |g, args| async move {
        g.yield_(false).await?;
        g.log(format!("bg{}", args[0]));
        g.yield_(false).await?;
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let sf = s.func(b, LiftKind::Sync, false, |g, _| async move {
        g.yield_(false).await?;
        g.log("sync");
        Ok(Ret::Values(vec![42]))
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let set = g.store().running().unwrap().waitable_set_new()?;
        let mut n = 0;
        for k in 1..=2u64 {
            let p = g.call_async(bg, vec![k], 0).await?;
            if p != RETURNED {
                g.store().running().unwrap().waitable_join(p >> 4, set)?;
                n += 1;
            }
        }
        let r = g.call(sf, vec![]).await?;
        g.log(format!("got {r:?}"));
        wait_returned(&g, set, n).await?;
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    if !log.contains(&"got [42]".to_string()) || !log.contains(&"bg1".into()) {
        return Err(format!("sync lift broken: {log:?}"));
    }
    Ok(log)
}

#[test]
fn sync_lift_candidate_choice() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let r = explore(
        "sync-lift",
        move |ch| {
            sync_lift(Box::new(Spy(
                ch,
                ChoicePoint::SyncLiftCandidate,
                s2.clone(),
            )))
        },
        4,
    );
    assert!(
        seen.load(Ordering::Relaxed) > 0,
        "no SyncLiftCandidate choice was made"
    );
    assert!(r.outcomes.len() > 1);
}

/// Counts the choices made at one kind of choice point.
struct Spy(Box<dyn Chooser>, ChoicePoint, Arc<AtomicUsize>);

impl Chooser for Spy {
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        if point == self.1 {
            self.2.fetch_add(1, Ordering::Relaxed);
        }
        self.0.choose(point, n)
    }
}

/// `wait_until` early return: the caller waits on a set whose member
/// already has its event (and yields while it is ready): each such wait
/// may return at once or switch away first. Either way it gets the one
/// RETURNED event of the callee.
fn wait_early(ch: Box<dyn Chooser>) -> Out {
    let mut s = Script::with_store(Store::with_chooser(ch));
    let (a, b) = (s.instance(), s.instance());
    let f = s.func(b, LiftKind::AsyncStackful, true, |g, _| async move {
        g.yield_(false).await?;
        g.log("callee");
        g.task_return(vec![9])?;
        Ok(Ret::Exit)
    });
    let main = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let p = g.call_async(f, vec![], 100).await?;
        let set = g.store().running().unwrap().waitable_set_new()?;
        if p != RETURNED {
            g.store().running().unwrap().waitable_join(p >> 4, set)?;
            g.yield_(false).await?;
            g.log("main yielded");
            let e = g.wait(false, set, 0).await?;
            assert_eq!(
                (e.code, e.index, e.payload),
                (EventCode::Subtask, p >> 4, RETURNED)
            );
            g.store().running().unwrap().subtask_drop(e.index)?;
        }
        g.log(format!("result {}", g.load_u32(100)));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).map_err(t)?;
    let log = finish(&mut s)?;
    if !log.contains(&"result 9".to_string()) {
        return Err(format!("wrong result: {log:?}"));
    }
    Ok(log)
}

#[test]
fn wait_until_early_return() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let r = explore(
        "wait-early",
        move |ch| wait_early(Box::new(Spy(ch, ChoicePoint::WaitUntilEarly, s2.clone()))),
        3,
    );
    assert!(
        seen.load(Ordering::Relaxed) > 0,
        "no WaitUntilEarly choice was made"
    );
    // Early return or not changes whether main logs before the callee.
    assert!(r.outcomes.len() > 1);
}

#[test]
fn replay_reruns_one_schedule_exactly() {
    let r = Explorer::new().dfs(cancel_vs_complete).unwrap();
    for (outcome, schedule) in &r.outcomes {
        let (again, trace) = replay(cancel_vs_complete, schedule);
        assert_eq!(again.as_ref(), Ok(outcome));
        assert_eq!(canon_async::explore::replay_string(&trace), *schedule);
        assert_eq!(
            check_determinism(cancel_vs_complete, schedule).as_ref(),
            Ok(outcome)
        );
    }
}

#[test]
fn sampling_searches_find_schedules() {
    let pct = Explorer::new().pct(set_event_choice, 1, 2, 100).unwrap();
    let rnd = Explorer::new().random(set_event_choice, 1, 100).unwrap();
    println!(
        "set-event: PCT found {} schedules, random {}",
        pct.schedules, rnd.schedules
    );
    assert!(pct.schedules > 1 && rnd.schedules > 1);
}
