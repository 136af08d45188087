//! Cooperative threads (🧵) and scheduling inside synchronous calls: the
//! reference's `test_threads`, `test_sync_threads`,
//! `test_thread_cancel_callback`, `test_cross_component_realloc` and the
//! thread part of `test_cancel_subtask`, rewritten over the scripted host
//! (or the bare `Store` where the embedder's own steps are the subject),
//! plus one test per thread trap.

use std::cell::Cell;
use std::rc::Rc;

use canon_async::script::{HostAnswer, Ret, Script};
use canon_async::{
    Action, ElemClass, ElemType, EndKind, EventCode, LiftKind, Lifted, Reading, ResultDelivery,
    ResumeValue, Running, Seeded, Step, Store, SubtaskId, SubtaskState, ThreadSwitch, Trap,
    BLOCKED, SYNC_CALL_FUNC,
};

const STARTED: u32 = SubtaskState::Started as u32;
const RETURNED: u32 = SubtaskState::Returned as u32;
const CANCELLED_BEFORE_RETURNED: u32 = SubtaskState::CancelledBeforeReturned as u32;

fn log_is(s: &Script, expected: &[&str]) {
    let got = s.log();
    assert_eq!(
        got,
        expected.iter().map(|l| l.to_string()).collect::<Vec<_>>()
    );
}

/// The scenario of `test_threads`, on a script over `store`: the main
/// thread of a sync-lifted async export runs helper threads with each
/// switch built-in, then five threads increment a counter twice each.
fn five_threads(store: Store) -> Script {
    let mut s = Script::with_store(store);
    let inst = s.instance();
    let t1 = s.table_fn(|g, a| async move {
        g.log(format!("t1 arg {}", a[0]));
        Ok(Ret::Exit)
    });
    let t2 = s.table_fn(|g, a| async move {
        let c = g
            .switch(ThreadSwitch::YieldThenResume, true, a[0] as u32)
            .await?;
        g.log(format!("t2 resumed {c}"));
        Ok(Ret::Exit)
    });
    let t3 = s.table_fn(|g, a| async move {
        g.store()
            .running()
            .unwrap()
            .thread_resume_later(a[0] as u32)?;
        g.log("t3 made main ready");
        Ok(Ret::Exit)
    });
    let t4 = s.table_fn(|g, a| async move {
        let ptr = a[0] as u32;
        for _ in 0..2 {
            assert_eq!(g.yield_(false).await?, 0);
            let v = g.load_u32(ptr);
            g.store_u32(ptr, v + 1);
        }
        let me = g.store().running().unwrap().thread_index()?;
        g.log(format!("t4 #{me} done"));
        Ok(Ret::Exit)
    });
    let f = s.func(inst, LiftKind::Sync, true, move |g, _| async move {
        let main = g.store().running().unwrap().thread_index()?;
        g.log(format!("main #{main}"));
        let t = g.store().running().unwrap().thread_new_indirect(t1, 13)?;
        g.log(format!("new #{t}"));
        assert_eq!(g.switch(ThreadSwitch::YieldThenResume, true, t).await?, 0);
        g.log("main after yield-then-resume");
        let t = g.store().running().unwrap().thread_new_indirect(t2, main)?;
        g.log(format!("new #{t}"));
        assert_eq!(g.switch(ThreadSwitch::SuspendThenResume, true, t).await?, 0);
        g.log("main after suspend-then-resume");
        let t = g.store().running().unwrap().thread_new_indirect(t3, main)?;
        g.log(format!("new #{t}"));
        g.store().running().unwrap().thread_resume_later(t)?;
        assert_eq!(g.suspend(true).await?, 0);
        g.log("main after suspend");
        let ptr = 4;
        g.store_u32(ptr, 0);
        for _ in 0..5 {
            let t = g.store().running().unwrap().thread_new_indirect(t4, ptr)?;
            g.store().running().unwrap().thread_resume_later(t)?;
        }
        let mut yields = 0;
        while g.load_u32(ptr) != 10 {
            assert_eq!(g.yield_(false).await?, 0);
            yields += 1;
        }
        g.log(format!("main saw 10 after {yields} yields"));
        Ok(Ret::Values(vec![42]))
    });
    let task = s.invoke(f, vec![]).unwrap();
    assert_eq!(s.run_to_completion(task), Ok(vec![42]));
    assert_eq!(s.store().live_tasks(), 0);
    s
}

/// `test_threads`, with the deterministic schedule checked step by step:
/// each switch built-in runs its target directly, `thread.resume-later`
/// makes a thread ready for the tick, and freed thread indices are reused
/// most recent first.
#[test]
fn threads() {
    let s = five_threads(Store::new());
    log_is(
        &s,
        &[
            "main #1",
            "new #2",
            "t1 arg 13",
            "main after yield-then-resume",
            "new #2",
            "main after suspend-then-resume",
            "new #3",
            "t2 resumed 0",
            "t3 made main ready",
            "main after suspend",
            "t4 #3 done",
            "t4 #2 done",
            "t4 #4 done",
            "t4 #5 done",
            "t4 #6 done",
            "main saw 10 after 3 yields",
        ],
    );
}

/// `test_threads` under random schedules (and random early returns of
/// `thread.yield`): the counter always reaches 10 and the call returns 42.
#[test]
fn threads_any_schedule() {
    for seed in 0..32 {
        let s = five_threads(Store::with_chooser(Box::new(Seeded::new(seed))));
        let log = s.log();
        assert_eq!(log.iter().filter(|l| l.starts_with("t4 ")).count(), 5);
        assert!(log.last().unwrap().starts_with("main saw 10"));
    }
}

/// `test_sync_threads`: a non-async-typed export (stackful lift) returns
/// from its core function at once and is driven to `task.return` by its
/// cooperative threads, which the lift keeps resuming: plain yields,
/// resume-later chains, a thread waiting on a waitable set for a future
/// another thread completes, and a `*-then-promote` ping-pong. An earlier
/// async task of the instance that holds the exclusive lock is ready all
/// along but never resumed before the sync call returns.
#[test]
fn sync_threads() {
    // run_tests.py's scenario: definitions.py's reading of synchronous
    // tasks (they may block while other threads of the instance are ready).
    let mut store = Store::new();
    store.set_reading(Reading::Definitions);
    let mut s = Script::with_store(store);
    let inst = s.instance();
    let idx: Rc<[Cell<u32>; 8]> = Rc::new(Default::default());
    let (ping1, pong1) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (ping5, pong5) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let wsi = Rc::new(Cell::new(0u32));
    let sync_resolved = Rc::new(Cell::new(false));
    const T2: usize = 2;
    const T3: usize = 3;
    const T41: usize = 4;
    const T42: usize = 5;
    const T51: usize = 6;
    const T52: usize = 7;

    let (pi, po) = (ping1.clone(), pong1.clone());
    let ix = idx.clone();
    let f11 = s.table_fn(move |g, a| {
        let (pi, po, ix) = (pi.clone(), po.clone(), ix.clone());
        async move {
            assert_eq!(a, vec![131]);
            while pi.get() < 3 || po.get() < 3 {
                pi.set(pi.get() + 1);
                g.yield_(false).await?;
            }
            g.log("1_1 done");
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[T2].get())?;
            Ok(Ret::Exit)
        }
    });
    let (pi, po) = (ping1.clone(), pong1.clone());
    let f12 = s.table_fn(move |g, a| {
        let (pi, po) = (pi.clone(), po.clone());
        async move {
            assert_eq!(a, vec![132]);
            while pi.get() < 3 || po.get() < 3 {
                po.set(po.get() + 1);
                g.yield_(false).await?;
            }
            g.log("1_2 done");
            Ok(Ret::Exit)
        }
    });
    let ix = idx.clone();
    let f2 = s.table_fn(move |g, a| {
        let ix = ix.clone();
        async move {
            assert_eq!(a, vec![14]);
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[T3].get())?;
            g.log("2 done");
            Ok(Ret::Exit)
        }
    });
    let ix = idx.clone();
    let f3 = s.table_fn(move |g, a| {
        let ix = ix.clone();
        async move {
            assert_eq!(a, vec![15]);
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[T41].get())?;
            g.log("3 suspends");
            assert_eq!(g.suspend(false).await?, 0);
            g.log("3 done");
            Ok(Ret::Exit)
        }
    });
    let (ix, ws) = (idx.clone(), wsi.clone());
    let f41 = s.table_fn(move |g, a| {
        let (ix, ws) = (ix.clone(), ws.clone());
        async move {
            assert_eq!(a, vec![161]);
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[T3].get())?;
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[T42].get())?;
            ws.set(g.store().running().unwrap().waitable_set_new()?);
            g.log("4_1 waits");
            let e = g.wait(true, ws.get(), 0).await?;
            assert_eq!(e.code, EventCode::FutureRead);
            g.log("4_1 got the future");
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[T51].get())?;
            Ok(Ret::Exit)
        }
    });
    let ws = wsi.clone();
    let f42 = s.table_fn(move |g, a| {
        let ws = ws.clone();
        async move {
            assert_eq!(a, vec![162]);
            let unit = ElemType {
                id: 0,
                class: ElemClass::None,
                size: 0,
                align: 1,
            };
            let packed = g.store().running().unwrap().future_new(unit)?;
            let (r, w) = (packed as u32, (packed >> 32) as u32);
            let ret = g
                .copy(EndKind::Future, true, unit, true, r, 0xdead_beef, 1)
                .await?;
            assert_eq!(ret, BLOCKED);
            g.store().running().unwrap().waitable_join(r, ws.get())?;
            let ret = g
                .copy(EndKind::Future, false, unit, true, w, 0xdead_beef, 1)
                .await?;
            assert_eq!(ret, 0, "COMPLETED");
            g.log("4_2 wrote the future");
            Ok(Ret::Exit)
        }
    });
    let (ix, pi, po, res) = (
        idx.clone(),
        ping5.clone(),
        pong5.clone(),
        sync_resolved.clone(),
    );
    let f51 = s.table_fn(move |g, a| {
        let (ix, pi, po, res) = (ix.clone(), pi.clone(), po.clone(), res.clone());
        async move {
            assert_eq!(a, vec![171]);
            let other = ix[T52].get();
            while pi.get() < 3 {
                assert_eq!(pi.get(), po.get());
                // `other` is suspended, not ready: this is a plain yield.
                g.switch(ThreadSwitch::YieldThenPromote, false, other)
                    .await?;
                assert_eq!(pi.get(), po.get());
                g.store().running().unwrap().thread_resume_later(other)?;
                // Now it is ready: promoted and run at once.
                g.switch(ThreadSwitch::YieldThenPromote, false, other)
                    .await?;
                assert_eq!(pi.get() + 1, po.get());
                pi.set(pi.get() + 1);
            }
            g.task_return(vec![42])?;
            res.set(true);
            g.log("5_1 returned 42");
            g.store().running().unwrap().thread_resume_later(other)?;
            Ok(Ret::Exit)
        }
    });
    let (ix, po) = (idx.clone(), pong5.clone());
    let f52 = s.table_fn(move |g, a| {
        let (ix, po) = (ix.clone(), po.clone());
        async move {
            assert_eq!(a, vec![172]);
            while po.get() < 3 {
                po.set(po.get() + 1);
                g.switch(ThreadSwitch::SuspendThenPromote, false, ix[T51].get())
                    .await?;
            }
            g.log("5_2 done");
            Ok(Ret::Exit)
        }
    });

    // The earlier task: a sync-lifted async export (it takes the
    // exclusive lock) blocked in a host call until the host sets its bit.
    let bit = Rc::new(Cell::new(None::<SubtaskId>));
    let b = bit.clone();
    let host = s.host_fn(move |_, sub, _| {
        b.set(Some(sub));
        HostAnswer::Pending
    });
    let res = sync_resolved.clone();
    let other = s.func(inst, LiftKind::Sync, true, move |g, _| {
        let res = res.clone();
        async move {
            g.call_host(host, vec![]).await?;
            if !res.get() {
                return Err(Trap::Wasm(
                    "the lock holder ran during the sync call".into(),
                ));
            }
            g.log("other task runs");
            Ok(Ret::Values(vec![43]))
        }
    });
    let other_task = s.invoke(other, vec![]).unwrap();
    s.run().unwrap();
    assert_eq!(s.host_results(other_task), None);
    s.complete_host(bit.get().unwrap(), vec![]).unwrap();

    let fis = [f11, f12, f2, f3, f41, f42, f51, f52];
    let args = [131, 132, 14, 15, 161, 162, 171, 172];
    let ix = idx.clone();
    let f = s.func(inst, LiftKind::AsyncStackful, false, move |g, a| {
        let ix = ix.clone();
        async move {
            assert!(a.is_empty());
            for k in 0..8 {
                ix[k].set(
                    g.store()
                        .running()
                        .unwrap()
                        .thread_new_indirect(fis[k], args[k])?,
                );
            }
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[0].get())?;
            g.store()
                .running()
                .unwrap()
                .thread_resume_later(ix[1].get())?;
            g.log("main exits");
            Ok(Ret::Exit)
        }
    });
    let task = s.invoke(f, vec![]).unwrap();
    s.run().unwrap();
    assert_eq!(s.host_results(task), Some(vec![42]));
    assert_eq!(s.host_results(other_task), Some(vec![43]));
    assert_eq!((ping1.get(), pong1.get()), (3, 3));
    assert_eq!((ping5.get(), pong5.get()), (3, 3));
    log_is(
        &s,
        &[
            "main exits",
            "1_1 done",
            "1_2 done",
            "2 done",
            "3 suspends",
            "4_1 waits",
            "3 done",
            "4_2 wrote the future",
            "4_1 got the future",
            "5_1 returned 42",
            "other task runs",
            "5_2 done",
        ],
    );
    assert_eq!(s.store().live_tasks(), 0);
}

/// `test_thread_cancel_callback`: cancelling a callback task parked in
/// YIELD while another task of its instance holds the exclusive lock
/// cannot be delivered (BLOCKED); the cancellation stays pending and the
/// task later gets a plain NONE event and returns normally.
#[test]
fn thread_cancel_callback() {
    // run_tests.py's scenario: with definitions.py's reading the task that
    // holds the lock keeps it while blocked, so the cancel stays pending.
    let mut store = Store::new();
    store.set_reading(Reading::Definitions);
    let mut s = Script::with_store(store);
    let producer = s.instance();
    let consumer = s.instance();
    let p1 = s.callback_func(
        producer,
        |_, _| async { Ok(Ret::Code(1)) },
        |g, e| async move {
            assert_eq!((e.code, e.index, e.payload), (EventCode::None, 0, 0));
            g.task_return(vec![42])?;
            Ok(Ret::Code(0))
        },
    );
    let p2 = s.callback_func(
        producer,
        |g, _| async move {
            assert_eq!(g.yield_(false).await?, 0);
            g.task_return(vec![43])?;
            Ok(Ret::Code(0))
        },
        |_, _| async { Err(Trap::Wasm("unreachable callback".into())) },
    );
    let c = s.func(consumer, LiftKind::Sync, true, move |g, _| async move {
        let ret = g.call_async(p1, vec![], 8).await?;
        assert_eq!(ret, STARTED | 1 << 4);
        let ret = g.call_async(p2, vec![], 12).await?;
        assert_eq!(ret, STARTED | 2 << 4);
        assert_eq!(g.subtask_cancel(true, 1).await?, BLOCKED);
        let seti = g.store().running().unwrap().waitable_set_new()?;
        g.store().running().unwrap().waitable_join(1, seti)?;
        let e = g.wait(true, seti, 16).await?;
        assert_eq!(
            (e.code, e.index, e.payload),
            (EventCode::Subtask, 1, RETURNED)
        );
        assert_eq!(g.load_u32(8), 42);
        g.store().running().unwrap().waitable_join(2, seti)?;
        let e = g.wait(true, seti, 16).await?;
        assert_eq!(
            (e.code, e.index, e.payload),
            (EventCode::Subtask, 2, RETURNED)
        );
        assert_eq!(g.load_u32(12), 43);
        Ok(Ret::Values(vec![]))
    });
    let task = s.invoke(c, vec![]).unwrap();
    assert_eq!(s.run_to_completion(task), Ok(vec![]));
    assert_eq!(s.store().live_tasks(), 0);
}

/// The thread part of `test_cancel_subtask`: the callee's main thread
/// parks three helper threads with `thread.suspend-then-resume` (one of
/// them cancellable) and suspends non-cancellably; `subtask.cancel`
/// reaches the one cancellable helper, which resumes with "cancelled",
/// switches back to main and later returns 45.
#[test]
fn cancel_reaches_explicit_thread() {
    let mut s = Script::new();
    let callee_inst = s.instance();
    let caller_inst = s.instance();
    let helper = |cancellable: bool| {
        move |g: canon_async::script::Guest, a: Vec<u64>| async move {
            let main = a[0] as u32;
            let me = g.store().running().unwrap().thread_index()?;
            if cancellable {
                let c = g
                    .switch(ThreadSwitch::SuspendThenResume, true, main)
                    .await?;
                g.log(format!("#{me} resumed {c}"));
                let c = g
                    .switch(ThreadSwitch::SuspendThenResume, true, main)
                    .await?;
                g.log(format!("#{me} resumed {c}"));
                g.task_return(vec![45])?;
            } else {
                let c = g
                    .switch(ThreadSwitch::SuspendThenResume, false, main)
                    .await?;
                g.log(format!("#{me} resumed {c}"));
            }
            Ok(Ret::Exit)
        }
    };
    let cfi = s.table_fn(helper(true));
    let ncfi = s.table_fn(helper(false));
    let callee = s.func(
        callee_inst,
        LiftKind::AsyncStackful,
        true,
        move |g, a| async move {
            assert_eq!(a, vec![14]);
            let main = g.store().running().unwrap().thread_index()?;
            let mut ts = vec![];
            for fi in [ncfi, cfi, ncfi] {
                let t = g.store().running().unwrap().thread_new_indirect(fi, main)?;
                assert_eq!(g.switch(ThreadSwitch::SuspendThenResume, true, t).await?, 0);
                ts.push(t);
            }
            g.log("main suspends");
            assert_eq!(g.suspend(false).await?, 0);
            g.log("main resumed");
            for t in ts {
                g.store().running().unwrap().thread_resume_later(t)?;
            }
            Ok(Ret::Exit)
        },
    );
    let caller = s.func(
        caller_inst,
        LiftKind::AsyncStackful,
        true,
        move |g, _| async move {
            let ret = g.call_async(callee, vec![14], 0).await?;
            assert_eq!(ret, STARTED | 1 << 4);
            assert_eq!(g.subtask_cancel(true, 1).await?, BLOCKED);
            let seti = g.store().running().unwrap().waitable_set_new()?;
            g.store().running().unwrap().waitable_join(1, seti)?;
            let e = g.wait(true, seti, 4).await?;
            assert_eq!(
                (e.code, e.index, e.payload),
                (EventCode::Subtask, 1, RETURNED)
            );
            assert_eq!(g.load_u32(0), 45);
            g.store().running().unwrap().subtask_drop(1)?;
            g.store().running().unwrap().waitable_set_drop(seti)?;
            g.task_return(vec![42])?;
            Ok(Ret::Exit)
        },
    );
    let task = s.invoke(caller, vec![]).unwrap();
    assert_eq!(s.run_to_completion(task), Ok(vec![42]));
    log_is(
        &s,
        &[
            "main suspends",
            "#3 resumed 1",
            "main resumed",
            "#2 resumed 0",
            "#3 resumed 0",
            "#4 resumed 0",
        ],
    );
    assert_eq!(s.store().live_tasks(), 0);
}

/// Which switch built-in a cancellation test uses.
#[derive(Clone, Copy, Debug)]
enum Switch {
    Suspend,
    Yield,
    SuspendThenResume,
    YieldThenResume,
    SuspendThenPromote,
    YieldThenPromote,
}

/// A pending cancellation is delivered first by every cancellable switch
/// built-in: it returns "cancelled" at once, without switching to its
/// target (for `*-then-promote` even when the target is ready), and the
/// non-cancellable forms leave it pending.
#[test]
fn pending_cancel_is_delivered_first() {
    use Switch::*;
    for sw in [
        Suspend,
        Yield,
        SuspendThenResume,
        YieldThenResume,
        SuspendThenPromote,
        YieldThenPromote,
    ] {
        let mut s = Script::new();
        let callee_inst = s.instance();
        let caller_inst = s.instance();
        // For the promote forms main is ready (it yielded); for the resume
        // forms it must be suspended.
        let main_yields = matches!(sw, SuspendThenPromote | YieldThenPromote | Yield);
        let helper = s.table_fn(move |g, a| async move {
            let main = a[0] as u32;
            // Non-cancellable: the pending cancellation stays pending.
            if !main_yields {
                assert_eq!(g.yield_(false).await?, 0);
            }
            let c = match sw {
                Suspend => g.suspend(true).await?,
                Yield => g.yield_(true).await?,
                SuspendThenResume => {
                    g.switch(ThreadSwitch::SuspendThenResume, true, main)
                        .await?
                }
                YieldThenResume => g.switch(ThreadSwitch::YieldThenResume, true, main).await?,
                SuspendThenPromote => {
                    g.switch(ThreadSwitch::SuspendThenPromote, true, main)
                        .await?
                }
                YieldThenPromote => g.switch(ThreadSwitch::YieldThenPromote, true, main).await?,
            };
            g.log(format!("helper got {c}"));
            g.store().running().unwrap().task_cancel()?;
            if !main_yields {
                g.store().running().unwrap().thread_resume_later(main)?;
            }
            Ok(Ret::Exit)
        });
        let callee = s.func(
            callee_inst,
            LiftKind::AsyncStackful,
            true,
            move |g, _| async move {
                let main = g.store().running().unwrap().thread_index()?;
                let t = g
                    .store()
                    .running()
                    .unwrap()
                    .thread_new_indirect(helper, main)?;
                g.store().running().unwrap().thread_resume_later(t)?;
                if main_yields {
                    assert_eq!(g.yield_(false).await?, 0);
                } else {
                    assert_eq!(g.suspend(false).await?, 0);
                }
                g.log("main resumed");
                Ok(Ret::Exit)
            },
        );
        let caller = s.func(caller_inst, LiftKind::AsyncStackful, true, move |g, _| {
            async move {
                let ret = g.call_async(callee, vec![], 0).await?;
                assert_eq!(ret, STARTED | 1 << 4);
                // Nothing cancellable yet: the cancellation stays pending.
                assert_eq!(g.subtask_cancel(true, 1).await?, BLOCKED);
                let seti = g.store().running().unwrap().waitable_set_new()?;
                g.store().running().unwrap().waitable_join(1, seti)?;
                let e = g.wait(false, seti, 4).await?;
                assert_eq!(e.payload, CANCELLED_BEFORE_RETURNED);
                g.task_return(vec![7])?;
                Ok(Ret::Exit)
            }
        });
        let task = s.invoke(caller, vec![]).unwrap();
        assert_eq!(s.run_to_completion(task), Ok(vec![7]), "{sw:?}");
        log_is(&s, &["helper got 1", "main resumed"]);
        assert_eq!(s.store().live_tasks(), 0);
    }
}

/// `test_cross_component_realloc`, with the embedder's steps spelled out:
/// the producer's results are lowered into the consumer, whose `realloc`
/// runs as a synchronous call on a fresh thread of a fresh task (context
/// slots zero, `may_leave` off); the producer's and the consumer's
/// context slots are untouched.
#[test]
fn cross_component_realloc() {
    let mut s = Store::new();
    let pi = s.new_instance();
    let ci = s.new_instance();
    let producer = Lifted {
        inst: pi,
        func: 1,
        kind: LiftKind::Sync,
        async_type: false,
    };
    let consumer = Lifted {
        inst: ci,
        func: 2,
        kind: LiftKind::Sync,
        async_type: false,
    };
    let top = s.invoke(consumer).unwrap();
    let Action::Start { thread: ct, .. } = s.next_action() else {
        panic!()
    };
    s.running().unwrap().context_set(0, 42).unwrap();
    s.running().unwrap().context_set(1, 43).unwrap();
    let sub = s
        .running()
        .unwrap()
        .canon_lower(canon_async::LowerCallee::Guest(producer), false)
        .unwrap();
    let Action::Start { thread: pt, .. } = s.next_action() else {
        panic!()
    };
    s.running().unwrap().context_set(0, 0xdead).unwrap();
    assert_eq!(s.lift_returned(), Ok(ResultDelivery::Guest(sub)));
    // Lowering the list into the consumer's memory calls its realloc.
    let live = s.live_tasks();
    let rt = s.begin_realloc(ci).unwrap();
    assert_eq!(s.current_thread(), Some(rt));
    assert_ne!(rt, ct);
    let rtask = s.thread_task(rt).unwrap();
    assert_ne!(Some(rtask), s.thread_task(ct));
    assert_eq!(s.task_func(rtask).unwrap().func, SYNC_CALL_FUNC);
    assert_eq!(s.thread_instance(rt), Some(ci));
    assert_eq!(s.live_tasks(), live + 1);
    assert_eq!(s.running().unwrap().context_get(0), Ok(0));
    assert_eq!(s.running().unwrap().context_get(1), Ok(0));
    s.running().unwrap().context_set(0, 0xfeed).unwrap();
    assert_eq!(s.running().unwrap().context_get(0), Ok(0xfeed));
    s.end_realloc().unwrap();
    assert_eq!(s.live_tasks(), live);
    assert!(!s.thread_alive(rt));
    // Back on the producer's thread, its slot intact.
    assert_eq!(s.current_thread(), Some(pt));
    assert_eq!(s.running().unwrap().context_get(0), Ok(0xdead));
    s.exit_thread().unwrap();
    assert_eq!(
        s.next_action(),
        Action::Resume {
            thread: ct,
            value: ResumeValue::Returned(sub)
        }
    );
    assert_eq!(s.running().unwrap().context_get(0), Ok(42));
    assert_eq!(s.running().unwrap().context_get(1), Ok(43));
    // The consumer may leave again (realloc's `may_leave` was restored).
    assert!(s.running().unwrap().waitable_set_new().is_ok());
    assert_eq!(s.lift_returned(), Ok(ResultDelivery::Host(top)));
    s.exit_thread().unwrap();
    assert_eq!(s.next_action(), Action::Idle);
    assert_eq!(s.live_tasks(), 0);
}

/// A start function runs as a synchronous call: it may use cooperative
/// threads of its instance, and its caller's pending work is untouched.
#[test]
fn start_function_runs_ready_threads() {
    let mut s = Store::new();
    let inst = s.new_instance();
    let st = s.begin_sync_call(inst).unwrap();
    let t = s.running().unwrap().thread_new_indirect(5, 77).unwrap();
    s.running().unwrap().thread_resume_later(t).unwrap();
    assert_eq!(s.running().unwrap().thread_yield(false), Ok(Step::Suspend));
    let Action::StartThread {
        thread: helper,
        func: 5,
        arg: 77,
    } = s.next_action()
    else {
        panic!()
    };
    s.exit_thread().unwrap();
    assert!(!s.thread_alive(helper));
    assert_eq!(
        s.next_action(),
        Action::Resume {
            thread: st,
            value: ResumeValue::I32(0)
        }
    );
    s.end_sync_call().unwrap();
    assert_eq!(s.current_thread(), None);
    assert_eq!(s.live_tasks(), 0);
    assert_eq!(s.next_action(), Action::Idle);
    assert!(!s.is_poisoned(inst));
}

// ----- traps -------------------------------------------------------------------

/// A callee instance with a stackful async export whose guest code is `body`,
/// run on a fresh script; returns the script, the instance and the result.
fn run_one<F, Fut>(
    kind: LiftKind,
    async_type: bool,
    body: F,
) -> (Script, canon_async::InstanceId, Result<(), Trap>)
where
    F: Fn(canon_async::script::Guest, Vec<u64>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<Ret, Trap>> + 'static,
{
    let mut s = Script::new();
    let inst = s.instance();
    // Table element 0: a thread function that returns at once.
    s.table_fn(|_, _| async { Ok(Ret::Exit) });
    let f = s.func(inst, kind, async_type, body);
    s.invoke(f, vec![]).unwrap();
    let r = s.run();
    (s, inst, r)
}

#[track_caller]
fn traps_and_poisons(r: (Script, canon_async::InstanceId, Result<(), Trap>), trap: Trap) {
    let (s, inst, r) = r;
    assert_eq!(r, Err(trap));
    assert!(s.store().is_poisoned(inst));
    assert_eq!(s.store().live_tasks(), 0);
}

#[test]
fn resume_later_of_a_thread_that_is_not_suspended_traps() {
    // Yourself (running).
    traps_and_poisons(
        run_one(LiftKind::AsyncStackful, true, |g, _| async move {
            let me = g.store().running().unwrap().thread_index()?;
            g.store().running().unwrap().thread_resume_later(me)?;
            Ok(Ret::Exit)
        }),
        Trap::ThreadNotSuspended,
    );
    // A thread that is already ready.
    traps_and_poisons(
        run_one(LiftKind::AsyncStackful, true, |g, _| async move {
            let t = g.store().running().unwrap().thread_new_indirect(0, 0)?;
            g.store().running().unwrap().thread_resume_later(t)?;
            g.store().running().unwrap().thread_resume_later(t)?;
            Ok(Ret::Exit)
        }),
        Trap::ThreadNotSuspended,
    );
}

#[test]
fn then_resume_of_a_thread_that_is_not_suspended_traps() {
    for yield_ in [false, true] {
        // Yourself.
        traps_and_poisons(
            run_one(LiftKind::AsyncStackful, true, move |g, _| async move {
                let me = g.store().running().unwrap().thread_index()?;
                if yield_ {
                    g.switch(ThreadSwitch::YieldThenResume, false, me).await?;
                } else {
                    g.switch(ThreadSwitch::SuspendThenResume, false, me).await?;
                }
                Ok(Ret::Exit)
            }),
            Trap::ThreadNotSuspended,
        );
        // A ready thread (even with a cancellation it could deliver: the
        // check comes first).
        traps_and_poisons(
            run_one(LiftKind::AsyncStackful, true, move |g, _| async move {
                let t = g.store().running().unwrap().thread_new_indirect(0, 0)?;
                g.store().running().unwrap().thread_resume_later(t)?;
                if yield_ {
                    g.switch(ThreadSwitch::YieldThenResume, true, t).await?;
                } else {
                    g.switch(ThreadSwitch::SuspendThenResume, true, t).await?;
                }
                Ok(Ret::Exit)
            }),
            Trap::ThreadNotSuspended,
        );
    }
}

/// Promoting yourself is no trap: you are not ready, so it is a plain
/// suspend or yield.
#[test]
fn promote_of_yourself_is_a_plain_yield() {
    let (s, _, r) = run_one(LiftKind::AsyncStackful, true, |g, _| async move {
        let me = g.store().running().unwrap().thread_index()?;
        assert_eq!(
            g.switch(ThreadSwitch::YieldThenPromote, false, me).await?,
            0
        );
        g.task_return(vec![1])?;
        Ok(Ret::Exit)
    });
    assert_eq!(r, Ok(()));
    assert_eq!(s.store().live_tasks(), 0);
}

#[test]
fn stale_and_foreign_thread_indices_trap() {
    // Index 0 is never a thread.
    traps_and_poisons(
        run_one(LiftKind::AsyncStackful, true, |g, _| async move {
            g.store().running().unwrap().thread_resume_later(0)?;
            Ok(Ret::Exit)
        }),
        Trap::UnknownThread(0),
    );
    // A thread that has exited.
    traps_and_poisons(
        run_one(LiftKind::AsyncStackful, true, |g, _| async move {
            let t = g.store().running().unwrap().thread_new_indirect(0, 0)?;
            g.store().running().unwrap().thread_resume_later(t)?;
            g.yield_(false).await?; // the helper runs and exits
            g.switch(ThreadSwitch::SuspendThenPromote, false, t).await?;
            Ok(Ret::Exit)
        }),
        Trap::UnknownThread(2),
    );
    // Thread tables are per instance: an index valid in another instance
    // names nothing here.
    let mut s = Script::new();
    let a = s.instance();
    let b = s.instance();
    let fb = s.func(b, LiftKind::AsyncStackful, true, |g, _| async move {
        for _ in 0..3 {
            g.store().running().unwrap().thread_new_indirect(0, 0)?;
        }
        assert_eq!(g.suspend(false).await?, 0);
        Ok(Ret::Exit)
    });
    let fa = s.func(a, LiftKind::AsyncStackful, true, |g, _| async move {
        g.store().running().unwrap().thread_resume_later(4)?;
        Ok(Ret::Exit)
    });
    s.invoke(fb, vec![]).unwrap();
    s.run().unwrap();
    s.invoke(fa, vec![]).unwrap();
    assert_eq!(s.run(), Err(Trap::UnknownThread(4)));
    assert!(s.store().is_poisoned(a));
    assert!(!s.store().is_poisoned(b));
}

#[test]
fn new_indirect_with_a_bad_function_reference_traps() {
    let mut s = Store::new();
    let inst = s.new_instance();
    let f = Lifted {
        inst,
        func: 0,
        kind: LiftKind::AsyncStackful,
        async_type: true,
    };
    s.invoke(f).unwrap();
    assert!(matches!(s.next_action(), Action::Start { .. }));
    assert_eq!(
        s.running().unwrap().thread_new_indirect_invalid(),
        Trap::BadFunctionReference
    );
    assert!(s.is_poisoned(inst));
    assert_eq!(s.current_thread(), None);
    assert_eq!(s.live_tasks(), 0);
    assert_eq!(s.invoke(f), Err(Trap::CannotEnter.into()));
}

/// Every thread built-in checks `may_leave` first (here during post-return).
#[test]
fn thread_builtins_trap_when_the_instance_may_not_leave() {
    type Op = fn(&mut Store) -> Result<(), Trap>;
    let ops: [Op; 10] = [
        |s| s.running().unwrap().thread_index().map(drop),
        |s| s.running().unwrap().thread_new_indirect(0, 0).map(drop),
        |s| Err(s.running().unwrap().thread_new_indirect_invalid()),
        |s| s.running().unwrap().thread_resume_later(1),
        |s| s.running().unwrap().thread_suspend(true).map(drop),
        |s| s.running().unwrap().thread_yield(true).map(drop),
        |s| {
            s.running()
                .unwrap()
                .thread_suspend_then_resume(true, 1)
                .map(drop)
        },
        |s| {
            s.running()
                .unwrap()
                .thread_yield_then_resume(true, 1)
                .map(drop)
        },
        |s| {
            s.running()
                .unwrap()
                .thread_suspend_then_promote(true, 1)
                .map(drop)
        },
        |s| {
            s.running()
                .unwrap()
                .thread_yield_then_promote(true, 1)
                .map(drop)
        },
    ];
    for op in ops {
        let mut s = Store::new();
        let inst = s.new_instance();
        let f = Lifted {
            inst,
            func: 0,
            kind: LiftKind::Sync,
            async_type: false,
        };
        s.invoke(f).unwrap();
        assert!(matches!(s.next_action(), Action::Start { .. }));
        s.lift_returned().unwrap();
        s.set_may_leave(false); // post-return runs
        assert_eq!(op(&mut s), Err(Trap::CannotLeave));
        assert!(s.is_poisoned(inst));
        assert_eq!(s.live_tasks(), 0);
    }
}

/// `thread.index` in `realloc` traps (`may_leave` is off), and the trap
/// poisons the instance of the lowering too.
#[test]
fn thread_index_in_realloc_traps() {
    let mut s = Store::new();
    let pi = s.new_instance();
    let ci = s.new_instance();
    let f = Lifted {
        inst: pi,
        func: 0,
        kind: LiftKind::Sync,
        async_type: false,
    };
    s.invoke(f).unwrap();
    assert!(matches!(s.next_action(), Action::Start { .. }));
    s.begin_realloc(ci).unwrap();
    assert_eq!(s.running().unwrap().context_get(0), Ok(0));
    assert_eq!(s.running().unwrap().thread_index(), Err(Trap::CannotLeave));
    assert!(s.is_poisoned(ci));
    assert!(s.is_poisoned(pi));
    assert_eq!(s.current_thread(), None);
    assert_eq!(s.live_tasks(), 0);
    assert_eq!(s.next_action(), Action::Idle);
}

/// The suite's reading (the default): a start function traps as soon as
/// it calls a built-in that may block, before any other check.
#[test]
fn blocking_in_a_start_function_traps_eagerly() {
    for block in [0, 1, 2] {
        let mut s = Store::new();
        let inst = s.new_instance();
        s.begin_sync_call(inst).unwrap();
        let r = match block {
            0 => s.running().unwrap().thread_suspend(false).map(drop),
            1 => s
                .running()
                .unwrap()
                .waitable_set_wait(false, 0xdead, 0)
                .map(drop),
            _ => s.running().unwrap().subtask_cancel(false, 0xdead).map(drop),
        };
        assert_eq!(r, Err(Trap::CannotBlockSync), "case {block}");
        assert!(Trap::CannotBlockSync
            .message()
            .contains("cannot block a synchronous task before returning"));
        assert!(s.is_poisoned(inst));
    }
}

/// With definitions.py's reading, blocking in a start function traps when
/// no other thread can run.
#[test]
fn blocking_in_a_start_function_traps() {
    for block in [0, 1, 2] {
        let mut s = Store::new();
        s.set_reading(Reading::Definitions);
        let inst = s.new_instance();
        s.begin_sync_call(inst).unwrap();
        let step = match block {
            0 => s.running().unwrap().thread_suspend(false).map(drop),
            1 => s.running().unwrap().thread_yield(true).map(drop), // itself ready: runs again
            _ => {
                let si = s.running().unwrap().waitable_set_new().unwrap();
                s.running()
                    .unwrap()
                    .waitable_set_wait(false, si, 0)
                    .map(drop)
            }
        };
        assert_eq!(step, Ok(()));
        if block == 1 {
            let Action::Resume { thread, .. } = s.next_action() else {
                panic!()
            };
            assert_eq!(s.current_thread(), Some(thread));
            assert_eq!(
                s.running().unwrap().thread_suspend(false),
                Ok(Step::Suspend)
            );
        }
        assert_eq!(s.next_action(), Action::Trap(Trap::CannotBlockSync));
        assert!(s.is_poisoned(inst));
        assert_eq!(s.live_tasks(), 0);
    }
}

/// A synchronous-typed lift that blocks with no ready thread of its own
/// instance traps, though another instance has a ready thread.
#[test]
fn sync_lift_blocking_with_nothing_ready_traps() {
    let mut s = Script::new();
    let other = s.instance();
    let inst = s.instance();
    let bit = Rc::new(Cell::new(None::<SubtaskId>));
    let b = bit.clone();
    let host = s.host_fn(move |_, sub, _| {
        b.set(Some(sub));
        HostAnswer::Pending
    });
    let fo = s.func(
        other,
        LiftKind::AsyncStackful,
        true,
        move |g, _| async move {
            g.call_host(host, vec![]).await?;
            g.task_return(vec![5])?;
            Ok(Ret::Exit)
        },
    );
    let f = s.func(inst, LiftKind::AsyncStackful, false, |g, _| async move {
        g.suspend(false).await?;
        Ok(Ret::Exit)
    });
    let ot = s.invoke(fo, vec![]).unwrap();
    s.run().unwrap();
    s.complete_host(bit.get().unwrap(), vec![]).unwrap();
    s.invoke(f, vec![]).unwrap();
    assert_eq!(s.run(), Err(Trap::CannotBlockSync));
    assert!(s.store().is_poisoned(inst));
    assert!(!s.store().is_poisoned(other));
    // The other instance goes on.
    assert_eq!(s.run_to_completion(ot), Ok(vec![5]));
    assert_eq!(s.store().live_tasks(), 0);
}

/// The last thread of a task leaving before the task resolved traps; the
/// implicit thread leaving first does not.
#[test]
fn last_thread_leaving_an_unresolved_task_traps() {
    traps_and_poisons(
        run_one(LiftKind::AsyncStackful, true, |g, _| async move {
            let t = g.store().running().unwrap().thread_new_indirect(0, 0)?;
            g.store().running().unwrap().thread_resume_later(t)?;
            Ok(Ret::Exit)
        }),
        Trap::TaskNotResolved,
    );
}

/// `Running::thread_switch`, the four switch built-ins in one: with a target
/// that is ready (made so by `thread.resume-later`), the resume forms trap
/// (the target is not suspended) and the promote forms switch to it at
/// once; the named methods behave the same.
#[test]
fn thread_switch_covers_the_four_switch_built_ins() {
    use ThreadSwitch::*;
    type Named = fn(Running<'_>, bool, u32) -> Result<Step<u32>, Trap>;
    let named: [(ThreadSwitch, Named); 4] = [
        (SuspendThenResume, |r, c, i| {
            r.thread_suspend_then_resume(c, i)
        }),
        (YieldThenResume, |r, c, i| r.thread_yield_then_resume(c, i)),
        (SuspendThenPromote, |r, c, i| {
            r.thread_suspend_then_promote(c, i)
        }),
        (YieldThenPromote, |r, c, i| {
            r.thread_yield_then_promote(c, i)
        }),
    ];
    for (kind, by_name) in named {
        for use_name in [false, true] {
            let mut store = Store::new();
            let inst = store.new_instance();
            let f = Lifted {
                inst,
                func: 1,
                kind: LiftKind::AsyncStackful,
                async_type: true,
            };
            store.invoke(f).unwrap();
            let Action::Start { thread: main, .. } = store.next_action() else {
                panic!("expected the start of the callee")
            };
            let i = store.running().unwrap().thread_new_indirect(9, 5).unwrap();
            store.running().unwrap().thread_resume_later(i).unwrap();
            let r = if use_name {
                by_name(store.running().unwrap(), false, i)
            } else {
                store.running().unwrap().thread_switch(kind, false, i)
            };
            match kind {
                SuspendThenResume | YieldThenResume => {
                    assert_eq!(r, Err(Trap::ThreadNotSuspended), "{kind:?}");
                    assert!(store.is_poisoned(inst));
                }
                SuspendThenPromote | YieldThenPromote => {
                    assert_eq!(r, Ok(Step::Suspend), "{kind:?}");
                    let Action::StartThread {
                        thread,
                        func: 9,
                        arg: 5,
                    } = store.next_action()
                    else {
                        panic!("{kind:?}: expected the promoted thread to start")
                    };
                    assert_ne!(thread, main);
                    assert_eq!(store.running().unwrap().thread_index().unwrap(), i);
                }
            }
        }
    }
}
