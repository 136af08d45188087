//! Scheduling-core bugs found by running random programs on both the core
//! and `definitions.py`, each reduced to a scripted scenario: the candidates
//! of a synchronous-typed lift's loop, a stale implicit-thread id, reentrance
//! through a third instance (`may_enter`), and `check` invariants around
//! `*-then-promote`.

use std::cell::Cell;
use std::rc::Rc;

use canon_async::script::{HostAnswer, Ret, Script};
use canon_async::{
    ElemClass, ElemType, EndKind, EventCode, LiftKind, Reading, Store, SubtaskState, ThreadSwitch,
    Trap, BLOCKED,
};

const U8: ElemType = ElemType {
    id: 1,
    class: ElemClass::Number,
    size: 1,
    align: 1,
};

/// A copy of one element that completed.
const ONE_COMPLETED: u32 = 1 << 4;
const STARTING: u32 = SubtaskState::Starting as u32;

fn log_is(s: &Script, expected: &[&str]) {
    let got = s.log();
    assert_eq!(
        got,
        expected.iter().map(|l| l.to_string()).collect::<Vec<_>>()
    );
}

// ----- the loop of a synchronous-typed lift ----------------------------------

/// `canon_lift`'s loop for a non-async function type picks among the
/// instance's *registered* threads (`inst.threads`): the implicit thread of a
/// callback task still queued at the backpressure gate is not one of them.
///
/// Instance `I`: `inc` (sync) turns backpressure on; `cb` (callback, async)
/// is called asynchronously from `H` and queues at the gate; `S` (sync
/// type, stackful lift) starts a helper thread `T` and blocks in a
/// synchronous `stream.write`. In `S`'s loop `T` turns backpressure off and
/// (when `read`) reads the element, so `S` is ready again. The queued `cb`
/// must not start inside `S`'s loop: with `read` `S` resumes first (one
/// candidate, not two); without it there is no candidate at all and the
/// loop traps, rather than starting `cb`.
fn sync_loop_with_a_queued_task(read: bool) -> (Script, Result<(), Trap>) {
    let mut store = Store::new();
    store.set_reading(Reading::Definitions);
    let mut s = Script::with_store(store);
    let i = s.instance();
    let h = s.instance();
    let inc = s.func(i, LiftKind::Sync, false, |g, _| async move {
        g.store().running().unwrap().backpressure_inc()?;
        Ok(Ret::Values(vec![]))
    });
    let cb = s.callback_func(
        i,
        |g, _| async move {
            g.log("cb started");
            g.task_return(vec![])?;
            Ok(Ret::Code(0))
        },
        |_g, _e| async move { Ok(Ret::Code(0)) },
    );
    let reader = Rc::new(Cell::new(0u32));
    let r = reader.clone();
    let t = s.table_fn(move |g, _| {
        let r = r.clone();
        async move {
            g.store().running().unwrap().backpressure_dec()?;
            g.log("T lowered backpressure");
            if read {
                let n = g
                    .copy(EndKind::Stream, true, U8, true, r.get(), 64, 1)
                    .await?;
                assert_eq!(n, ONE_COMPLETED);
                g.log("T read");
            }
            Ok(Ret::Exit)
        }
    });
    let r = reader.clone();
    let sync = s.func(i, LiftKind::AsyncStackful, false, move |g, _| {
        let r = r.clone();
        async move {
            let packed = g.store().running().unwrap().stream_new(U8)?;
            r.set(packed as u32);
            let w = (packed >> 32) as u32;
            let th = g.store().running().unwrap().thread_new_indirect(t, 0)?;
            g.store().running().unwrap().thread_resume_later(th)?;
            g.store_bytes(0, &[7]);
            let n = g.copy(EndKind::Stream, false, U8, false, w, 0, 1).await?;
            assert_eq!(n, ONE_COMPLETED);
            g.log("S wrote");
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        }
    });
    let main = s.func(h, LiftKind::AsyncStackful, true, move |g, _| async move {
        g.call(inc, vec![]).await?;
        let p = g.call_async(cb, vec![], 0).await?;
        assert_eq!(p & 0xf, STARTING);
        g.log("cb queued");
        g.call(sync, vec![]).await?;
        g.log("S returned");
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).unwrap();
    let r = s.run();
    (s, r)
}

#[test]
fn sync_lift_loop_does_not_start_a_task_queued_at_the_gate() {
    let (s, r) = sync_loop_with_a_queued_task(true);
    assert_eq!(r, Ok(()));
    log_is(
        &s,
        &[
            "cb queued",
            "T lowered backpressure",
            "T read",
            "S wrote",
            "S returned",
            "cb started",
        ],
    );
    assert_eq!(s.store().live_tasks(), 0);
}

#[test]
fn sync_lift_loop_with_only_a_queued_task_traps() {
    let (s, r) = sync_loop_with_a_queued_task(false);
    assert_eq!(r, Err(Trap::CannotBlockSync));
    log_is(&s, &["cb queued", "T lowered backpressure"]);
}

// ----- a stale implicit-thread id ---------------------------------------------

/// A callback-lifted task returns and exits its implicit thread while an
/// explicit thread of it lives on; that thread starts another one, which
/// takes the implicit thread's freed slot. It is an explicit thread all the
/// same (`definitions.py` compares thread objects): when it exits, it must
/// not be taken for the implicit thread releasing the exclusive lock.
#[test]
fn a_thread_reusing_the_implicit_threads_slot_is_not_the_implicit_thread() {
    let mut s = Script::new();
    let i = s.instance();
    let h = s.instance();
    let implicit = Rc::new(Cell::new(None));
    let reused = Rc::new(Cell::new(None));
    let r = reused.clone();
    let second = s.table_fn(move |g, _| {
        let r = r.clone();
        async move {
            r.set(Some(g.thread()));
            g.log("second runs");
            Ok(Ret::Exit)
        }
    });
    let first = s.table_fn(move |g, _| async move {
        let th = g
            .store()
            .running()
            .unwrap()
            .thread_new_indirect(second, 0)?;
        g.store().running().unwrap().thread_resume_later(th)?;
        assert_eq!(g.yield_(false).await?, 0);
        g.log("first done");
        Ok(Ret::Exit)
    });
    let im = implicit.clone();
    let cb = s.callback_func(
        i,
        move |g, _| {
            let im = im.clone();
            async move {
                im.set(Some(g.thread()));
                let th = g.store().running().unwrap().thread_new_indirect(first, 0)?;
                g.store().running().unwrap().thread_resume_later(th)?;
                g.task_return(vec![])?;
                Ok(Ret::Code(0))
            }
        },
        |_g, _e| async move { Ok(Ret::Code(0)) },
    );
    // Another callback task of the instance enters afterwards: the lock
    // is free.
    let again = s.callback_func(
        i,
        |g, _| async move {
            g.log("again");
            g.task_return(vec![])?;
            Ok(Ret::Code(0))
        },
        |_g, _e| async move { Ok(Ret::Code(0)) },
    );
    let main = s.func(h, LiftKind::AsyncStackful, true, move |g, _| async move {
        g.call(cb, vec![]).await?;
        // Let `first` run (and start `second`) before anything else takes
        // the implicit thread's freed slot.
        assert_eq!(g.yield_(false).await?, 0);
        g.call(again, vec![]).await?;
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let task = s.invoke(main, vec![]).unwrap();
    assert_eq!(s.run_to_completion(task), Ok(vec![]));
    // The scenario is the one meant: `second` took the slot.
    assert_eq!(implicit.get(), reused.get());
    let mut log = s.log();
    log.sort();
    assert_eq!(log, ["again", "first done", "second runs"]);
    assert_eq!(s.store().live_tasks(), 0);
}

/// The same stale id, seen by `Task.request_cancellation`: the callee's
/// only live thread reuses its implicit thread's slot while another task of
/// the instance holds the exclusive lock. `definitions.py` only discards the
/// implicit thread itself from the candidates, so the cancellation reaches
/// that explicit thread at once (it must not be left pending).
#[test]
fn cancel_reaches_a_thread_reusing_the_implicit_threads_slot() {
    let mut s = Script::new();
    let x = s.instance();
    let y = s.instance();
    let pending = Rc::new(Cell::new(None));
    let p = pending.clone();
    let hp = s.host_fn(move |_, sub, _| {
        p.set(Some(sub));
        HostAnswer::Pending
    });
    let implicit = Rc::new(Cell::new(None));
    let reused = Rc::new(Cell::new(None));
    let r = reused.clone();
    let second = s.table_fn(move |g, _| {
        let r = r.clone();
        async move {
            r.set(Some(g.thread()));
            let c = g.suspend(true).await?;
            g.log(format!("second resumed {c}"));
            g.store().running().unwrap().task_cancel()?;
            Ok(Ret::Exit)
        }
    });
    let first = s.table_fn(move |g, _| async move {
        let th = g
            .store()
            .running()
            .unwrap()
            .thread_new_indirect(second, 0)?;
        g.store().running().unwrap().thread_resume_later(th)?;
        Ok(Ret::Exit)
    });
    let im = implicit.clone();
    let t = s.callback_func(
        y,
        move |g, _| {
            let im = im.clone();
            async move {
                im.set(Some(g.thread()));
                let th = g.store().running().unwrap().thread_new_indirect(first, 0)?;
                g.store().running().unwrap().thread_resume_later(th)?;
                // EXIT without resolving: `first` lives on.
                Ok(Ret::Code(0))
            }
        },
        |_g, _e| async move { Ok(Ret::Code(0)) },
    );
    // Holds the instance's lock while blocked in a synchronous host call.
    let z = s.callback_func(
        y,
        move |g, _| async move {
            g.call_host(hp, vec![]).await?;
            g.task_return(vec![])?;
            Ok(Ret::Code(0))
        },
        |_g, _e| async move { Ok(Ret::Code(0)) },
    );
    let main = s.func(x, LiftKind::AsyncStackful, true, move |g, _| async move {
        let p = g.call_async(t, vec![], 0).await?;
        assert_eq!(p & 0xf, SubtaskState::Started as u32);
        // `first` runs, and `second` suspends, before anything else takes
        // the freed slot.
        assert_eq!(g.yield_(false).await?, 0);
        assert_eq!(g.yield_(false).await?, 0);
        let q = g.call_async(z, vec![], 0).await?;
        assert_eq!(q & 0xf, SubtaskState::Started as u32);
        let r = g.subtask_cancel(true, p >> 4).await?;
        g.log(format!("cancel answered {r:#x}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let task = s.invoke(main, vec![]).unwrap();
    assert_eq!(s.run_to_completion(task), Ok(vec![]));
    assert_eq!(implicit.get(), reused.get());
    log_is(
        &s,
        &[
            "second resumed 1",
            &format!(
                "cancel answered {:#x}",
                SubtaskState::CancelledBeforeReturned as u32
            ),
        ],
    );
    s.complete_host(pending.get().unwrap(), vec![]).unwrap();
    assert_eq!(s.run(), Ok(()));
    assert_eq!(s.store().live_tasks(), 0);
}

// ----- reentrance through a third instance ---------------------------------------

/// `X → Y → X`: at the pinned spec every instance on the call chain is
/// non-enterable (`Store.lift`: `trap_if(not inst.may_enter_from(caller))`),
/// not only an instance and its ancestors.
#[test]
fn reentrance_through_a_third_instance_traps() {
    let mut s = Script::new();
    let x = s.instance();
    let y = s.instance();
    let g_of_x = s.func(x, LiftKind::Sync, false, |g, _| async move {
        g.log("x.g entered");
        Ok(Ret::Values(vec![]))
    });
    let f_of_y = s.func(y, LiftKind::Sync, false, move |g, _| async move {
        g.call(g_of_x, vec![]).await?;
        Ok(Ret::Values(vec![]))
    });
    let main = s.func(x, LiftKind::AsyncStackful, true, move |g, _| async move {
        g.call(f_of_y, vec![]).await?;
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    s.invoke(main, vec![]).unwrap();
    assert_eq!(s.run(), Err(Trap::CannotEnter));
    log_is(&s, &[]);
    assert!(s.store().is_poisoned(y));
}

/// The same chain one level down an async call: `X` calls `Y` async and
/// `Y`'s synchronous part calls `X` back, which traps; once `Y` blocked
/// and the call returned, `Y`'s later code (resumed by the tick, with `X`
/// no longer on the chain) may call `X`.
#[test]
fn reentrance_only_while_the_instance_is_on_the_chain() {
    for early in [true, false] {
        let mut s = Script::new();
        let x = s.instance();
        let y = s.instance();
        let g_of_x = s.func(x, LiftKind::Sync, false, |g, _| async move {
            g.log("x.g entered");
            Ok(Ret::Values(vec![]))
        });
        let f_of_y = s.func(y, LiftKind::AsyncStackful, true, move |g, _| async move {
            if !early {
                assert_eq!(g.yield_(false).await?, 0);
            }
            g.call(g_of_x, vec![]).await?;
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        });
        let main = s.func(x, LiftKind::AsyncStackful, true, move |g, _| async move {
            let p = g.call_async(f_of_y, vec![], 0).await?;
            g.log(format!("call state {}", p & 0xf));
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        });
        s.invoke(main, vec![]).unwrap();
        if early {
            assert_eq!(s.run(), Err(Trap::CannotEnter));
            log_is(&s, &[]);
        } else {
            assert_eq!(s.run(), Ok(()));
            log_is(&s, &["call state 1", "x.g entered"]);
            assert_eq!(s.store().live_tasks(), 0);
        }
    }
}

/// `Task.request_cancellation` delivers to the callee only when its
/// instance may be entered from the canceller: `Y` is on the call chain
/// (`Y.main` called `C.h`), so `C.h`'s `subtask.cancel` of a `Y` task
/// leaves the cancellation pending and answers BLOCKED; the callee gets it
/// at its next cancellable wait.
#[test]
fn cancel_into_an_instance_on_the_chain_stays_pending() {
    let mut s = Script::new();
    let c = s.instance();
    let y = s.instance();
    let sub = Rc::new(Cell::new(0u32));
    let f_index = Rc::new(Cell::new(0u32));
    let fi = f_index.clone();
    let f_of_y = s.func(y, LiftKind::AsyncStackful, true, move |g, _| {
        let fi = fi.clone();
        async move {
            fi.set(g.store().running().unwrap().thread_index()?);
            let c = g.suspend(true).await?;
            g.log(format!("f resumed {c}"));
            if c == 0 {
                let c = g.yield_(true).await?;
                g.log(format!("f yielded {c}"));
            }
            g.store().running().unwrap().task_cancel()?;
            g.log("f cancelled");
            Ok(Ret::Exit)
        }
    });
    let sb = sub.clone();
    let setup = s.func(c, LiftKind::AsyncStackful, true, move |g, _| {
        let sb = sb.clone();
        async move {
            let p = g.call_async(f_of_y, vec![], 0).await?;
            assert_eq!(p & 0xf, SubtaskState::Started as u32);
            sb.set(p >> 4);
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        }
    });
    let sb = sub.clone();
    let h_of_c = s.func(c, LiftKind::AsyncStackful, true, move |g, _| {
        let sb = sb.clone();
        async move {
            let r = g.subtask_cancel(true, sb.get()).await?;
            g.log(format!("cancel answered {r:#x}"));
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        }
    });
    let fi = f_index.clone();
    let main_of_y = s.func(y, LiftKind::AsyncStackful, true, move |g, _| {
        let fi = fi.clone();
        async move {
            g.call(h_of_c, vec![]).await?;
            g.log("h returned");
            g.store().running().unwrap().thread_resume_later(fi.get())?;
            g.task_return(vec![])?;
            Ok(Ret::Exit)
        }
    });
    let t = s.invoke(setup, vec![]).unwrap();
    assert_eq!(s.run_to_completion(t), Ok(vec![]));
    let t = s.invoke(main_of_y, vec![]).unwrap();
    assert_eq!(s.run_to_completion(t), Ok(vec![]));
    log_is(
        &s,
        &[
            &format!("cancel answered {BLOCKED:#x}"),
            "h returned",
            "f resumed 0",
            "f yielded 1",
            "f cancelled",
        ],
    );
    assert_eq!(s.store().live_tasks(), 0);
}

// ----- `check` and `*-then-promote` -----------------------------------------------

#[derive(Clone, Copy, Debug)]
enum BlockedIn {
    SyncWrite,
    Wait,
    CallbackWait,
}

/// Thread `A` blocks in a synchronous `stream.write`, a `waitable-set.wait`
/// or a callback `WAIT`; thread `B` of the same task reads (so `A` is
/// ready) and takes `A` with `suspend-then-promote` or `yield-then-promote`.
/// The `check` feature's `sync-waiter` and `set-waiters` invariants hold
/// throughout (a promoted thread is no longer waiting, but it still is the
/// waiter until it resumes).
fn promote_a_blocked_thread(blocked: BlockedIn, suspend: bool) {
    let mut s = Script::new();
    let i = s.instance();
    let reader = Rc::new(Cell::new(0u32));
    let b_index = Rc::new(Cell::new(0u32));
    let r = reader.clone();
    let b = s.table_fn(move |g, a| {
        let r = r.clone();
        async move {
            let n = g
                .copy(EndKind::Stream, true, U8, true, r.get(), 64, 1)
                .await?;
            assert_eq!(n, ONE_COMPLETED);
            g.log("B read");
            let c = if suspend {
                g.switch(ThreadSwitch::SuspendThenPromote, false, a[0] as u32)
                    .await?
            } else {
                g.switch(ThreadSwitch::YieldThenPromote, false, a[0] as u32)
                    .await?
            };
            assert_eq!(c, 0);
            g.log("B done");
            Ok(Ret::Exit)
        }
    });
    // Opens the stream and starts `B`; the writable end's index.
    let (r, bi) = (reader.clone(), b_index.clone());
    let start = move |g: &canon_async::script::Guest| -> Result<u32, Trap> {
        let packed = g.store().running().unwrap().stream_new(U8)?;
        r.set(packed as u32);
        let me = g.store().running().unwrap().thread_index()?;
        let th = g.store().running().unwrap().thread_new_indirect(b, me)?;
        bi.set(th);
        g.store().running().unwrap().thread_resume_later(th)?;
        g.store_bytes(0, &[7]);
        Ok((packed >> 32) as u32)
    };
    let bi = b_index.clone();
    let finish = move |g: &canon_async::script::Guest| -> Result<(), Trap> {
        g.log("A resumed");
        g.task_return(vec![])?;
        if suspend {
            g.store().running().unwrap().thread_resume_later(bi.get())?;
        }
        Ok(())
    };
    let f = match blocked {
        BlockedIn::SyncWrite | BlockedIn::Wait => {
            s.func(i, LiftKind::AsyncStackful, true, move |g, _| {
                let (start, finish) = (start.clone(), finish.clone());
                async move {
                    let w = start(&g)?;
                    if let BlockedIn::SyncWrite = blocked {
                        let n = g.copy(EndKind::Stream, false, U8, false, w, 0, 1).await?;
                        assert_eq!(n, ONE_COMPLETED);
                    } else {
                        let n = g.copy(EndKind::Stream, false, U8, true, w, 0, 1).await?;
                        assert_eq!(n, BLOCKED);
                        let ws = g.store().running().unwrap().waitable_set_new()?;
                        g.store().running().unwrap().waitable_join(w, ws)?;
                        let e = g.wait(false, ws, 128).await?;
                        assert_eq!(e.code, EventCode::StreamWrite);
                    }
                    finish(&g)?;
                    Ok(Ret::Exit)
                }
            })
        }
        BlockedIn::CallbackWait => s.callback_func(
            i,
            move |g, _| {
                let start = start.clone();
                async move {
                    let w = start(&g)?;
                    let n = g.copy(EndKind::Stream, false, U8, true, w, 0, 1).await?;
                    assert_eq!(n, BLOCKED);
                    let ws = g.store().running().unwrap().waitable_set_new()?;
                    g.store().running().unwrap().waitable_join(w, ws)?;
                    Ok(Ret::Code(2 | ws << 4))
                }
            },
            move |g, e| {
                let finish = finish.clone();
                async move {
                    assert_eq!(e.code, EventCode::StreamWrite);
                    finish(&g)?;
                    Ok(Ret::Code(0))
                }
            },
        ),
    };
    let task = s.invoke(f, vec![]).unwrap();
    assert_eq!(
        s.run_to_completion(task),
        Ok(vec![]),
        "{blocked:?} suspend {suspend}"
    );
    log_is(&s, &["B read", "A resumed", "B done"]);
    assert_eq!(s.store().live_tasks(), 0);
}

#[test]
fn promoting_a_thread_blocked_in_a_sync_copy_keeps_the_invariants() {
    promote_a_blocked_thread(BlockedIn::SyncWrite, true);
    promote_a_blocked_thread(BlockedIn::SyncWrite, false);
}

#[test]
fn promoting_a_thread_blocked_in_a_wait_keeps_the_invariants() {
    promote_a_blocked_thread(BlockedIn::Wait, true);
    promote_a_blocked_thread(BlockedIn::Wait, false);
}

#[test]
fn promoting_a_callback_task_waiting_on_a_set_keeps_the_invariants() {
    promote_a_blocked_thread(BlockedIn::CallbackWait, true);
    promote_a_blocked_thread(BlockedIn::CallbackWait, false);
}
